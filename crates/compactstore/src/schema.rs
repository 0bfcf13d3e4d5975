//! Member types, members and schemas: what a store holds per entry.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

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

/// The longest fixed-length array member: 65,536 elements per entry.
pub const MAX_ARRAY_LEN: usize = 1 << 16;

/// The type of one member: how each entry's value is stored.
///
/// - Numeric, fixed-width kinds ([`MemberType::Scalar`], [`MemberType::Array`]) are stored in one aligned
///   buffer per member per chunk, viewed as `&[T]` ([`MemberType::is_numeric`], [`MemberType::dtype`]).
/// - [`MemberType::Str`] and [`MemberType::Bytes`] are variable-length: a 16-byte view per slot with short
///   values inline and long ones in a per-chunk data buffer (see [`crate::column::ViewColumn`]).
/// - [`MemberType::Interned`] (of `Str` or `Bytes`) stores a `u32` code per slot into one dictionary shared
///   by every chunk of a store (see [`crate::column::InternedColumn`]).
/// - [`MemberType::Optional`] adds `None` to any other kind: a validity bitmap beside the values column
///   (see [`crate::column::OptionalColumn`]), or, for `Optional(Interned(..))`, a reserved code.
///
/// Everything above the column layer dispatches through this enum.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MemberType {
    /// One scalar per entry.
    Scalar(Dtype),
    /// `len` scalars per entry, contiguous (`len >= 1`).
    Array(Dtype, usize),
    /// Variable-length UTF-8 text ([`Value::Str`]).
    Str,
    /// Variable-length bytes ([`Value::Bytes`]).
    Bytes,
    /// Dictionary-encoded [`MemberType::Str`] or [`MemberType::Bytes`] (any other inner type is refused by
    /// [`Member::new`]). Reads and writes take the inner type's values.
    Interned(Box<MemberType>),
    /// The inner type or `None` ([`Value::Null`]). The inner type must not itself be optional.
    Optional(Box<MemberType>),
    /// An opaque, shared object reference per entry ([`Value::Object`], or [`Value::Null`] for none): what
    /// the Python bindings use for `cs.Object`. Neither compact nor fork-friendly; opt-in.
    Object,
}

impl MemberType {
    /// `Interned(inner)`, boxed for you.
    #[must_use]
    pub fn interned(inner: MemberType) -> MemberType {
        MemberType::Interned(Box::new(inner))
    }

    /// `Optional(inner)`, boxed for you.
    #[must_use]
    pub fn optional(inner: MemberType) -> MemberType {
        MemberType::Optional(Box::new(inner))
    }

    /// The scalar dtype of a numeric fixed-width member (`Scalar`, `Array`); `None` for every other kind,
    /// `Optional` included (see [`MemberType::values_dtype`]).
    #[must_use]
    pub const fn dtype(&self) -> Option<Dtype> {
        match self {
            MemberType::Scalar(d) | MemberType::Array(d, _) => Some(*d),
            _ => None,
        }
    }

    /// Whether this is a numeric fixed-width member (`Scalar` or `Array`): every slot holds numbers, and
    /// the typed paths (`column_slice`, `gather`, `scatter`, element access) take it.
    #[must_use]
    pub const fn is_numeric(&self) -> bool {
        self.dtype().is_some()
    }

    /// Number of scalars per entry of a numeric member (1 for a scalar, `n` for an array); `None` for
    /// the other kinds.
    #[must_use]
    pub const fn width(&self) -> Option<usize> {
        match self {
            MemberType::Scalar(_) => Some(1),
            MemberType::Array(_, n) => Some(*n),
            _ => None,
        }
    }

    /// The dtype of the typed values column: [`MemberType::dtype`], looking through `Optional` (an
    /// `Optional(Scalar(d))` or `Optional(Array(d, n))` member keeps a `&[T]` column of `d`, whose `None`
    /// slots hold zero). `None` for str, bytes and interned members.
    #[must_use]
    pub fn values_dtype(&self) -> Option<Dtype> {
        match self {
            MemberType::Optional(t) => t.dtype(),
            t => t.dtype(),
        }
    }

    /// Whether the member takes [`Value::Null`].
    #[must_use]
    pub const fn is_optional(&self) -> bool {
        matches!(self, MemberType::Optional(_))
    }

    /// Whether values are text or bytes (`Str`, `Bytes`, interned or optional of those).
    #[must_use]
    pub fn is_variable(&self) -> bool {
        match self {
            MemberType::Str | MemberType::Bytes => true,
            MemberType::Interned(t) | MemberType::Optional(t) => t.is_variable(),
            MemberType::Scalar(_) | MemberType::Array(..) | MemberType::Object => false,
        }
    }

    /// Bytes of fixed storage per entry: the scalars of a numeric member, the 16-byte view of a str/bytes
    /// member, the 4-byte code of an interned one. Not counted: data buffers, dictionaries and validity
    /// bitmaps (1 bit per entry).
    #[must_use]
    pub fn entry_bytes(&self) -> usize {
        match self {
            MemberType::Scalar(d) => d.size(),
            MemberType::Array(d, n) => d.size() * n,
            MemberType::Str | MemberType::Bytes => crate::column::VIEW_BYTES,
            MemberType::Interned(_) => std::mem::size_of::<u32>(),
            MemberType::Optional(t) => t.entry_bytes(),
            MemberType::Object => std::mem::size_of::<usize>() * 2,
        }
    }

    /// The value a member of this type has when no default is given: zero, `false`, zeros, `""`, `b""`,
    /// or `None` for an optional member.
    #[must_use]
    pub fn zero(&self) -> Value {
        match self {
            MemberType::Scalar(d) => Value::zero(*d),
            MemberType::Array(d, n) => Value::Array(vec![Value::zero(*d); *n]),
            MemberType::Str => Value::Str(String::new()),
            MemberType::Bytes => Value::Bytes(Vec::new()),
            MemberType::Interned(t) => t.zero(),
            MemberType::Optional(_) | MemberType::Object => Value::Null,
        }
    }

    /// Check that the type can be stored: arrays of length >= 1, interned str/bytes only, no optional of
    /// an optional.
    fn check_valid(&self) -> std::result::Result<(), String> {
        match self {
            MemberType::Array(_, 0) => Err("an array member has length 0".into()),
            MemberType::Array(_, n) if *n > MAX_ARRAY_LEN => {
                Err(format!("an array member has length {n} > {MAX_ARRAY_LEN}"))
            }
            MemberType::Interned(t) if !matches!(**t, MemberType::Str | MemberType::Bytes) => {
                Err(format!("only str and bytes can be interned, not {t}"))
            }
            MemberType::Optional(t) if t.is_optional() => Err("optional of an optional".into()),
            MemberType::Optional(t) if **t == MemberType::Object => {
                Err("an object member already takes None; optional[object] is not a type".into())
            }
            MemberType::Optional(t) => t.check_valid(),
            _ => Ok(()),
        }
    }
}

/// The spelling of a member type, the one [`MemberType::from_str`] parses: a dtype name (`i64`), an array
/// `<dtype>[<length>]` (`f32[3]`), `str`, `bytes`, `object`, `interned[<type>]`, `optional[<type>]`.
impl fmt::Display for MemberType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberType::Scalar(d) => write!(f, "{d}"),
            MemberType::Array(d, n) => write!(f, "{d}[{n}]"),
            MemberType::Str => f.write_str("str"),
            MemberType::Bytes => f.write_str("bytes"),
            MemberType::Interned(t) => write!(f, "interned[{t}]"),
            MemberType::Optional(t) => write!(f, "optional[{t}]"),
            MemberType::Object => f.write_str("object"),
        }
    }
}

/// A spelling that is not a member type (see [`MemberType::from_str`]); shows as
/// `unknown member type "<part>"`, naming the part that did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseMemberTypeError(String);

impl fmt::Display for ParseMemberTypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown member type {:?}", self.0)
    }
}

impl std::error::Error for ParseMemberTypeError {}

impl From<ParseMemberTypeError> for Error {
    fn from(e: ParseMemberTypeError) -> Error {
        Error::InvalidArgument(e.to_string())
    }
}

/// Parse the spelling [`MemberType`]'s `Display` prints: `i64`, `f32[3]`, `str`, `bytes`, `object`,
/// `interned[str]`, `optional[<type>]` (so `"optional[interned[str]]"`). The parse checks only the
/// spelling; [`Member::new`] checks that the type can be stored.
///
/// # Errors
/// [`ParseMemberTypeError`] naming the part that is not a member type, e.g. `unknown member type "i65"`
/// (it converts to [`Error::InvalidArgument`] with `?`).
impl FromStr for MemberType {
    type Err = ParseMemberTypeError;

    fn from_str(s: &str) -> std::result::Result<MemberType, ParseMemberTypeError> {
        let wrapped = |prefix: &str| s.strip_prefix(prefix).and_then(|r| r.strip_suffix(']'));
        if let Some(inner) = wrapped("optional[") {
            return Ok(MemberType::optional(inner.parse()?));
        }
        if let Some(inner) = wrapped("interned[") {
            return Ok(MemberType::interned(inner.parse()?));
        }
        let unknown = || ParseMemberTypeError(s.to_owned());
        Ok(match s {
            "str" => MemberType::Str,
            "bytes" => MemberType::Bytes,
            "object" => MemberType::Object,
            _ => match s.strip_suffix(']').and_then(|r| r.split_once('[')) {
                Some((name, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    let n = n.parse().map_err(|_| unknown())?;
                    MemberType::Array(Dtype::from_name(name).map_err(|_| unknown())?, n)
                }
                Some(_) => return Err(unknown()),
                None => MemberType::Scalar(Dtype::from_name(s).map_err(|_| unknown())?),
            },
        })
    }
}

/// One named member of a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    name: String,
    ty: MemberType,
    default: Value,
    read_only: bool,
    compact_min: Option<usize>,
}

impl Member {
    /// A member with the type's zero default, writable.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty name, an array of length 0, an interned type that is not
    /// str or bytes, or an optional of an optional.
    pub fn new(name: impl Into<String>, ty: MemberType) -> Result<Member> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::InvalidArgument("member name is empty".into()));
        }
        ty.check_valid()
            .map_err(|e| Error::InvalidArgument(format!("member {name:?}: {e}")))?;
        let default = ty.zero();
        Ok(Member {
            name,
            ty,
            default,
            read_only: false,
            compact_min: None,
        })
    }

    /// For a str/bytes member (optional or not): the minimum garbage, in bytes, a chunk's data buffer holds
    /// before it is compacted (it is compacted when its garbage exceeds both this and its live bytes).
    /// Without it, the minimum is the larger of [`crate::column::DEFAULT_VIEW_COMPACT_MIN`] and the chunk
    /// size, which keeps compaction's O(chunk size) scan amortised. Tiny values let tests reach compaction
    /// with tiny data. Other member kinds ignore it.
    #[must_use]
    pub fn with_compact_min(mut self, bytes: usize) -> Member {
        self.compact_min = Some(bytes);
        self
    }

    /// The compaction minimum set by [`Member::with_compact_min`], if any.
    #[must_use]
    pub fn compact_min(&self) -> Option<usize> {
        self.compact_min
    }

    /// Set the default value. A scalar default for an array member fills every element.
    ///
    /// # Errors
    /// The errors of a write of `default` to this member: [`Error::WrongType`], [`Error::ValueOutOfRange`],
    /// [`Error::WrongLength`].
    pub fn with_default(mut self, default: Value) -> Result<Member> {
        let array_len = match &self.ty {
            MemberType::Optional(t) => t.width().filter(|_| matches!(**t, MemberType::Array(..))),
            t => t.width().filter(|_| matches!(t, MemberType::Array(..))),
        };
        let default = match (array_len, default) {
            (Some(n), v @ (Value::Bool(_) | Value::Int(_) | Value::UInt(_) | Value::Float(_))) => {
                Value::Array(vec![v; n])
            }
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
        match self.members.get(m) {
            Some(x) => Ok(x),
            None => Err(Error::IndexOutOfRange {
                index: m as i64,
                len: self.members.len(),
            }),
        }
    }

    /// Bytes of fixed storage per entry, all members together.
    #[must_use]
    pub fn entry_bytes(&self) -> usize {
        self.members.iter().map(|m| m.ty.entry_bytes()).sum()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn member_type() -> impl Strategy<Value = MemberType> {
        let dtype = proptest::sample::select(Dtype::ALL.to_vec());
        let leaf = prop_oneof![
            dtype.clone().prop_map(MemberType::Scalar),
            (dtype, 0..=MAX_ARRAY_LEN + 1).prop_map(|(d, n)| MemberType::Array(d, n)),
            Just(MemberType::Str),
            Just(MemberType::Bytes),
            Just(MemberType::Object),
        ];
        leaf.prop_recursive(3, 8, 1, |inner| {
            prop_oneof![
                inner.clone().prop_map(MemberType::interned),
                inner.prop_map(MemberType::optional),
            ]
        })
    }

    #[test]
    fn spellings_parse() {
        let cases = [
            ("i64", MemberType::Scalar(Dtype::I64)),
            ("bool", MemberType::Scalar(Dtype::Bool)),
            ("f32[3]", MemberType::Array(Dtype::F32, 3)),
            ("str", MemberType::Str),
            ("bytes", MemberType::Bytes),
            ("object", MemberType::Object),
            ("interned[bytes]", MemberType::interned(MemberType::Bytes)),
            (
                "optional[interned[str]]",
                MemberType::optional(MemberType::interned(MemberType::Str)),
            ),
            (
                "optional[u8[2]]",
                MemberType::optional(MemberType::Array(Dtype::U8, 2)),
            ),
        ];
        for (spelling, ty) in cases {
            assert_eq!(spelling.parse::<MemberType>().unwrap(), ty, "{spelling}");
            assert_eq!(ty.to_string(), spelling);
        }
    }

    #[test]
    fn bad_spellings_are_refused() {
        for (spelling, part) in [
            ("", ""),
            ("i65", "i65"),
            ("optional[xyz]", "xyz"),
            ("interned[]", ""),
            ("optional[str", "optional[str"),
            ("i64[]", "i64[]"),
            ("i64[+3]", "i64[+3]"),
            ("i64[-1]", "i64[-1]"),
            ("i64[3", "i64[3"),
            ("str[3]", "str[3]"),
            ("i64[99999999999999999999999]", "i64[99999999999999999999999]"),
            (" i64", " i64"),
        ] {
            let e = spelling.parse::<MemberType>().unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("unknown member type {part:?}"),
                "{spelling}"
            );
            assert_eq!(
                Error::from(e).to_string(),
                format!("invalid argument: unknown member type {part:?}")
            );
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(ty in member_type()) {
            prop_assert_eq!(ty.to_string().parse::<MemberType>().unwrap(), ty);
        }
    }
}
