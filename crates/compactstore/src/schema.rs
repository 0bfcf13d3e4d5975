//! Member types, members and schemas: what a store holds per entry.

use std::collections::HashMap;
use std::fmt;

use crate::error::{Error, Result};
use crate::value::Value;

/// The scalar types a fixed-width member can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// `bool`, stored as one byte (0 or 1).
    Bool,
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

impl Dtype {
    /// Every dtype, in declaration order.
    pub const ALL: [Dtype; 11] = [
        Dtype::Bool,
        Dtype::I8,
        Dtype::I16,
        Dtype::I32,
        Dtype::I64,
        Dtype::U8,
        Dtype::U16,
        Dtype::U32,
        Dtype::U64,
        Dtype::F32,
        Dtype::F64,
    ];

    /// Size of one value in bytes.
    #[must_use]
    pub const fn size(self) -> usize {
        match self {
            Dtype::Bool | Dtype::I8 | Dtype::U8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 4,
            Dtype::I64 | Dtype::U64 | Dtype::F64 => 8,
        }
    }

    /// The short name (`"i64"`, `"bool"`), as numpy and the Python package spell it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Dtype::Bool => "bool",
            Dtype::I8 => "i8",
            Dtype::I16 => "i16",
            Dtype::I32 => "i32",
            Dtype::I64 => "i64",
            Dtype::U8 => "u8",
            Dtype::U16 => "u16",
            Dtype::U32 => "u32",
            Dtype::U64 => "u64",
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }

    /// Parse a short name (`"i64"`, `"bool"`, `"f32"`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a name that is not a dtype.
    pub fn from_name(name: &str) -> Result<Dtype> {
        Dtype::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| Error::InvalidArgument(format!("unknown dtype {name:?}")))
    }

    /// Whether this is a signed or unsigned integer type.
    #[must_use]
    pub const fn is_int(self) -> bool {
        !matches!(self, Dtype::Bool | Dtype::F32 | Dtype::F64)
    }

    /// Whether this is `f32` or `f64`.
    #[must_use]
    pub const fn is_float(self) -> bool {
        matches!(self, Dtype::F32 | Dtype::F64)
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The type of one member: how each entry's value is stored.
///
/// Fixed-width kinds (scalars and fixed-length arrays) are stored in one aligned buffer per member per store.
/// Variable-length, interned and optional kinds get their own column layouts; the enum is the place they
/// are added, and everything above the column layer dispatches through it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MemberType {
    /// One scalar per entry.
    Scalar(Dtype),
    /// `len` scalars per entry, contiguous (`len >= 1`).
    Array(Dtype, usize),
}

impl MemberType {
    /// The scalar dtype underneath.
    #[must_use]
    pub const fn dtype(&self) -> Dtype {
        match self {
            MemberType::Scalar(d) | MemberType::Array(d, _) => *d,
        }
    }

    /// Number of scalars per entry (1 for a scalar member).
    #[must_use]
    pub const fn width(&self) -> usize {
        match self {
            MemberType::Scalar(_) => 1,
            MemberType::Array(_, n) => *n,
        }
    }

    /// Bytes of fixed storage per entry.
    #[must_use]
    pub const fn entry_bytes(&self) -> usize {
        self.dtype().size() * self.width()
    }

    /// The value a member of this type has when no default is given: zero, `false` or zeros.
    #[must_use]
    pub fn zero(&self) -> Value {
        let z = Value::zero(self.dtype());
        match self {
            MemberType::Scalar(_) => z,
            MemberType::Array(_, n) => Value::Array(vec![z; *n]),
        }
    }
}

impl fmt::Display for MemberType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberType::Scalar(d) => write!(f, "{d}"),
            MemberType::Array(d, n) => write!(f, "{d}[{n}]"),
        }
    }
}

/// One named member of a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    name: String,
    ty: MemberType,
    default: Value,
    read_only: bool,
}

impl Member {
    /// A member with the type's zero default, writable.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty name or an array of length 0.
    pub fn new(name: impl Into<String>, ty: MemberType) -> Result<Member> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::InvalidArgument("member name is empty".into()));
        }
        if let MemberType::Array(_, 0) = ty {
            return Err(Error::InvalidArgument(format!(
                "array member {name:?} has length 0"
            )));
        }
        let default = ty.zero();
        Ok(Member {
            name,
            ty,
            default,
            read_only: false,
        })
    }

    /// Set the default value. A scalar default for an array member fills every element.
    ///
    /// # Errors
    /// The errors of a write of `default` to this member: [`Error::WrongType`], [`Error::ValueOutOfRange`],
    /// [`Error::WrongLength`].
    pub fn with_default(mut self, default: Value) -> Result<Member> {
        let default = match (&self.ty, default) {
            (
                MemberType::Array(_, n),
                v @ (Value::Bool(_) | Value::Int(_) | Value::UInt(_) | Value::Float(_)),
            ) => Value::Array(vec![v; *n]),
            (_, v) => v,
        };
        self.default = self.ty.canonical(&default)?;
        Ok(self)
    }

    /// Mark the member read-only: written only when its entry is created.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Member {
        self.read_only = read_only;
        self
    }

    /// The member's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The member's type.
    #[must_use]
    pub fn ty(&self) -> &MemberType {
        &self.ty
    }

    /// The default value, already converted to the member's type.
    #[must_use]
    pub fn default_value(&self) -> &Value {
        &self.default
    }

    /// Whether the member is read-only.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }
}

/// The ordered, named members of a store type.
///
/// A schema is immutable once built and shared (`Arc`) by every chunk of a store.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    members: Vec<Member>,
    by_name: HashMap<String, usize, foldhash::fast::FixedState>,
}

impl Schema {
    /// Build a schema from members in order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if two members share a name.
    ///
    /// # Examples
    /// ```
    /// use compactstore::{Dtype, Member, MemberType, Schema};
    /// let schema = Schema::new(vec![
    ///     Member::new("ref", MemberType::Scalar(Dtype::I64))?,
    ///     Member::new("inputs", MemberType::Array(Dtype::U8, 8))?,
    /// ])?;
    /// assert_eq!(schema.index_of("inputs")?, 1);
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    pub fn new(members: Vec<Member>) -> Result<Schema> {
        let mut by_name =
            HashMap::with_capacity_and_hasher(members.len(), foldhash::fast::FixedState::default());
        for (i, m) in members.iter().enumerate() {
            if by_name.insert(m.name.clone(), i).is_some() {
                return Err(Error::InvalidArgument(format!("duplicate member {:?}", m.name)));
            }
        }
        Ok(Schema { members, by_name })
    }

    /// The members in declaration order.
    #[must_use]
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Number of members.
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the schema has no members.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The position of the member called `name`. O(1).
    ///
    /// # Errors
    /// [`Error::UnknownMember`] if there is none.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownMember {
                name: name.to_owned(),
            })
    }

    /// The member at position `m`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `m >= len()`.
    pub fn member(&self, m: usize) -> Result<&Member> {
        self.members.get(m).ok_or(Error::IndexOutOfRange {
            index: m as i64,
            len: self.members.len(),
        })
    }

    /// Bytes of fixed storage per entry, all members together.
    #[must_use]
    pub fn entry_bytes(&self) -> usize {
        self.members.iter().map(|m| m.ty.entry_bytes()).sum()
    }
}
