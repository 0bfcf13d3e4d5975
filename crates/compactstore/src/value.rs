//! `Value`, the untyped path in and out of a store, and its conversions to each dtype.

use std::fmt;

use crate::error::{Error, Result};
use crate::schema::{Dtype, MemberType};

/// One member's value, untyped.
///
/// Writes convert a `Value` to the member's type with range checks (300 into `u8` is
/// [`Error::ValueOutOfRange`], never a wrap); reads return the canonical variant for the type: `Int` for
/// signed members, `UInt` for unsigned, `Float` for floats, `Bool` for bools, `Array` of those for arrays.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// A float.
    Float(f64),
    /// The elements of an array member.
    Array(Vec<Value>),
    /// Text (for variable-length members).
    Str(String),
    /// Bytes (for variable-length members).
    Bytes(Vec<u8>),
    /// No value (for optional and object members).
    Null,
    /// An opaque shared reference (for object members).
    Object(ObjectRef),
}

/// An opaque, shared, thread-safe object reference: the value of an object member. Equality is identity
/// (the same allocation). The Python bindings keep a Python object in it.
#[derive(Clone)]
pub struct ObjectRef(pub std::sync::Arc<dyn std::any::Any + Send + Sync>);

impl PartialEq for ObjectRef {
    fn eq(&self, other: &ObjectRef) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectRef({:p})", std::sync::Arc::as_ptr(&self.0))
    }
}

impl Value {
    /// The zero of a dtype: `false`, `0`, `0.0`.
    #[must_use]
    pub fn zero(d: Dtype) -> Value {
        match d {
            Dtype::Bool => Value::Bool(false),
            Dtype::F32 | Dtype::F64 => Value::Float(0.0),
            Dtype::U8 | Dtype::U16 | Dtype::U32 | Dtype::U64 => Value::UInt(0),
            Dtype::I8 | Dtype::I16 | Dtype::I32 | Dtype::I64 => Value::Int(0),
        }
    }

    /// A short name of the variant, for error messages.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::UInt(_) => "int",
            Value::Float(_) => "float",
            Value::Array(_) => "array",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Null => "None",
            Value::Object(_) => "object",
        }
    }

    /// The value as an integer wide enough for every int dtype, if it is one (bools count as 0/1).
    fn as_i128(&self) -> Option<i128> {
        match *self {
            Value::Bool(b) => Some(i128::from(b)),
            Value::Int(i) => Some(i128::from(i)),
            Value::UInt(u) => Some(i128::from(u)),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::UInt(u) => write!(f, "{u}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Array(a) => {
                f.write_str("[")?;
                for (k, v) in a.iter().enumerate() {
                    if k > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "{b:?}"),
            Value::Null => f.write_str("None"),
            Value::Object(o) => write!(f, "{o:?}"),
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Value {
        Value::Float(f64::from(v))
    }
}
macro_rules! from_int {
    ($variant:ident: $($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::$variant(v.into())
            }
        }
    )*};
}
from_int!(Int: i8, i16, i32, i64);
from_int!(UInt: u8, u16, u32, u64);
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Str(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Bytes(v.to_vec())
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Str(v.to_owned())
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Value {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

/// One numeric scalar with its type: the typed path into and out of a scalar member, with no [`Value`]
/// conversion ([`crate::Store::set_scalar`], [`crate::Store::add_scalars`]). Its variant names the dtype it
/// is written to; a value already in that dtype needs no range check.
///
/// # Examples
/// ```
/// use compactstore::{Dtype, Scalar, Value};
/// assert_eq!(Scalar::U8(7).dtype(), Dtype::U8);
/// assert_eq!(Value::from(Scalar::F32(0.5)), Value::Float(0.5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    /// A `bool` member's value.
    Bool(bool),
    /// An `i8` member's value.
    I8(i8),
    /// An `i16` member's value.
    I16(i16),
    /// An `i32` member's value.
    I32(i32),
    /// An `i64` member's value.
    I64(i64),
    /// A `u8` member's value.
    U8(u8),
    /// A `u16` member's value.
    U16(u16),
    /// A `u32` member's value.
    U32(u32),
    /// A `u64` member's value.
    U64(u64),
    /// An `f32` member's value.
    F32(f32),
    /// An `f64` member's value.
    F64(f64),
}

impl Scalar {
    /// The dtype this scalar is written to. O(1).
    #[must_use]
    #[inline]
    pub fn dtype(self) -> Dtype {
        match self {
            Scalar::Bool(_) => Dtype::Bool,
            Scalar::I8(_) => Dtype::I8,
            Scalar::I16(_) => Dtype::I16,
            Scalar::I32(_) => Dtype::I32,
            Scalar::I64(_) => Dtype::I64,
            Scalar::U8(_) => Dtype::U8,
            Scalar::U16(_) => Dtype::U16,
            Scalar::U32(_) => Dtype::U32,
            Scalar::U64(_) => Dtype::U64,
            Scalar::F32(_) => Dtype::F32,
            Scalar::F64(_) => Dtype::F64,
        }
    }

    /// The same scalar as the canonical [`Value`] of its dtype (`Int` for signed, `UInt` for unsigned,
    /// `Float`, `Bool`).
    #[must_use]
    pub fn to_value(self) -> Value {
        match self {
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::I8(v) => Value::Int(v.into()),
            Scalar::I16(v) => Value::Int(v.into()),
            Scalar::I32(v) => Value::Int(v.into()),
            Scalar::I64(v) => Value::Int(v),
            Scalar::U8(v) => Value::UInt(v.into()),
            Scalar::U16(v) => Value::UInt(v.into()),
            Scalar::U32(v) => Value::UInt(v.into()),
            Scalar::U64(v) => Value::UInt(v),
            Scalar::F32(v) => Value::Float(v.into()),
            Scalar::F64(v) => Value::Float(v),
        }
    }

    /// `v` converted to dtype `d`, with the checks of [`Dtype::canonical`].
    ///
    /// # Errors
    /// As [`Dtype::canonical`]: [`Error::WrongType`], [`Error::ValueOutOfRange`].
    pub fn of_value(v: &Value, d: Dtype) -> Result<Scalar> {
        Ok(match d {
            Dtype::Bool => Scalar::Bool(to_bool(v)? != 0),
            Dtype::I8 => Scalar::I8(to_int(v, d)?),
            Dtype::I16 => Scalar::I16(to_int(v, d)?),
            Dtype::I32 => Scalar::I32(to_int(v, d)?),
            Dtype::I64 => Scalar::I64(to_int(v, d)?),
            Dtype::U8 => Scalar::U8(to_int(v, d)?),
            Dtype::U16 => Scalar::U16(to_int(v, d)?),
            Dtype::U32 => Scalar::U32(to_int(v, d)?),
            Dtype::U64 => Scalar::U64(to_int(v, d)?),
            Dtype::F32 => Scalar::F32(to_f32(v)?),
            Dtype::F64 => Scalar::F64(to_f64(v)?),
        })
    }
}

impl From<Scalar> for Value {
    fn from(x: Scalar) -> Value {
        x.to_value()
    }
}

/// A Rust scalar type a fixed-width column can be viewed as (`&[T]`).
///
/// `bool` members are viewed as `u8` (0 or 1), since `bool` is not plain old data.
pub trait Element: bytemuck::Pod {
    /// Whether a column of `dtype` can be viewed as `&[Self]`.
    fn accepts(dtype: Dtype) -> bool;
}

macro_rules! element {
    ($($t:ty => $($d:ident)|+),* $(,)?) => {$(
        impl Element for $t {
            fn accepts(dtype: Dtype) -> bool {
                matches!(dtype, $(Dtype::$d)|+)
            }
        }
    )*};
}
element!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8 | Bool, u16 => U16, u32 => U32, u64 => U64,
         f32 => F32, f64 => F64);

fn wrong_type(expected: impl fmt::Display, v: &Value) -> Error {
    Error::WrongType {
        expected: expected.to_string(),
        got: v.kind().to_owned(),
    }
}

fn out_of_range(v: &Value, d: Dtype) -> Error {
    Error::ValueOutOfRange {
        value: v.to_string(),
        dtype: d.name().to_owned(),
    }
}

/// Convert `v` to an integer of type `T` (a dtype `d`), with a range check.
pub(crate) fn to_int<T: TryFrom<i128>>(v: &Value, d: Dtype) -> Result<T> {
    let i = v.as_i128().ok_or_else(|| wrong_type(d, v))?;
    T::try_from(i).map_err(|_| out_of_range(v, d))
}

/// Convert `v` to `f64` (ints and bools widen; a float passes).
pub(crate) fn to_f64(v: &Value) -> Result<f64> {
    match *v {
        Value::Float(x) => Ok(x),
        Value::Bool(b) => Ok(f64::from(u8::from(b))),
        Value::Int(i) => Ok(i as f64),
        Value::UInt(u) => Ok(u as f64),
        _ => Err(wrong_type(Dtype::F64, v)),
    }
}

/// Convert `v` to `f32`: a finite value beyond f32's range is an error, never a silent `inf`.
pub(crate) fn to_f32(v: &Value) -> Result<f32> {
    let x = to_f64(v).map_err(|_| wrong_type(Dtype::F32, v))?;
    let y = x as f32;
    if y.is_infinite() && x.is_finite() {
        return Err(out_of_range(v, Dtype::F32));
    }
    Ok(y)
}

/// Convert `v` to a bool byte: only `Value::Bool` is taken.
pub(crate) fn to_bool(v: &Value) -> Result<u8> {
    match *v {
        Value::Bool(b) => Ok(u8::from(b)),
        _ => Err(wrong_type(Dtype::Bool, v)),
    }
}

impl Dtype {
    /// Convert `v` to this dtype's canonical `Value`, checking type and range.
    ///
    /// # Errors
    /// [`Error::WrongType`] for a value of the wrong kind (a float into an int, an int into a bool),
    /// [`Error::ValueOutOfRange`] for a value that does not fit.
    pub fn canonical(self, v: &Value) -> Result<Value> {
        Ok(match self {
            Dtype::Bool => Value::Bool(to_bool(v)? != 0),
            Dtype::I8 => Value::Int(to_int::<i8>(v, self)?.into()),
            Dtype::I16 => Value::Int(to_int::<i16>(v, self)?.into()),
            Dtype::I32 => Value::Int(to_int::<i32>(v, self)?.into()),
            Dtype::I64 => Value::Int(to_int::<i64>(v, self)?),
            Dtype::U8 => Value::UInt(to_int::<u8>(v, self)?.into()),
            Dtype::U16 => Value::UInt(to_int::<u16>(v, self)?.into()),
            Dtype::U32 => Value::UInt(to_int::<u32>(v, self)?.into()),
            Dtype::U64 => Value::UInt(to_int::<u64>(v, self)?),
            Dtype::F32 => Value::Float(to_f32(v)?.into()),
            Dtype::F64 => Value::Float(to_f64(v)?),
        })
    }
}

/// What a copied value is, in an [`Error::OutOfMemory`].
const COPY_WHAT: &str = "a copy of a str/bytes value";

impl MemberType {
    /// Whether `v` converts to this member type: [`MemberType::canonical`] without building the converted
    /// value (a str/bytes value is not copied). O(1), O(n) for an `Array(_, n)`.
    ///
    /// # Errors
    /// As [`MemberType::canonical`], except [`Error::OutOfMemory`].
    pub fn check(&self, v: &Value) -> Result<()> {
        match (self, v) {
            (MemberType::Str, Value::Str(_)) | (MemberType::Bytes, Value::Bytes(_)) => Ok(()),
            (MemberType::Interned(t), _) => t.check(v),
            (MemberType::Optional(_), Value::Null) => Ok(()),
            (MemberType::Optional(t), _) => t.check(v),
            _ => self.canonical(v).map(drop),
        }
    }

    /// Convert `v` to this member type's canonical `Value` (see [`Dtype::canonical`]).
    ///
    /// # Errors
    /// As [`Dtype::canonical`], plus [`Error::WrongLength`] for an array of the wrong length and
    /// [`Error::WrongType`] for a scalar given to an array member or the reverse, anything but
    /// [`Value::Str`] given to a str member (anything but [`Value::Bytes`] to a bytes member: text and
    /// bytes never convert into each other), and [`Value::Null`] given to a member that is not optional;
    /// [`Error::OutOfMemory`] if a str/bytes value cannot be copied.
    pub fn canonical(&self, v: &Value) -> Result<Value> {
        match (self, v) {
            (MemberType::Scalar(d), _) => d.canonical(v),
            (MemberType::Array(d, n), Value::Array(items)) => {
                if items.len() != *n {
                    return Err(Error::WrongLength {
                        expected: *n,
                        got: items.len(),
                    });
                }
                items
                    .iter()
                    .map(|x| d.canonical(x))
                    .collect::<Result<Vec<_>>>()
                    .map(Value::Array)
            }
            (MemberType::Array(..), _) => Err(wrong_type(self, v)),
            (MemberType::Str, Value::Str(s)) => Ok(Value::Str(crate::alloc::copy_str(s, COPY_WHAT)?)),
            (MemberType::Bytes, Value::Bytes(b)) => Ok(Value::Bytes(crate::alloc::to_vec(b, COPY_WHAT)?)),
            (MemberType::Str | MemberType::Bytes, _) => Err(wrong_type(self, v)),
            (MemberType::Interned(t), _) => t.canonical(v),
            (MemberType::Optional(_), Value::Null) => Ok(Value::Null),
            (MemberType::Object, Value::Null | Value::Object(_)) => Ok(v.clone()),
            (MemberType::Object, _) => Err(wrong_type(self, v)),
            (MemberType::Optional(t), _) => t.canonical(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_ranges_are_checked_not_wrapped() {
        assert!(matches!(
            Dtype::U8.canonical(&Value::Int(300)),
            Err(Error::ValueOutOfRange { .. })
        ));
        assert!(matches!(
            Dtype::U32.canonical(&Value::Int(-1)),
            Err(Error::ValueOutOfRange { .. })
        ));
        assert!(matches!(
            Dtype::I64.canonical(&Value::UInt(u64::MAX)),
            Err(Error::ValueOutOfRange { .. })
        ));
        assert_eq!(
            Dtype::U64.canonical(&Value::UInt(u64::MAX)),
            Ok(Value::UInt(u64::MAX))
        );
        assert_eq!(Dtype::I8.canonical(&Value::Int(-128)), Ok(Value::Int(-128)));
        assert_eq!(Dtype::I16.canonical(&Value::Bool(true)), Ok(Value::Int(1)));
    }

    #[test]
    fn kinds_are_checked() {
        assert!(matches!(
            Dtype::I32.canonical(&Value::Float(1.0)),
            Err(Error::WrongType { .. })
        ));
        assert!(matches!(
            Dtype::Bool.canonical(&Value::Int(1)),
            Err(Error::WrongType { .. })
        ));
        assert!(matches!(
            Dtype::F64.canonical(&Value::Str("x".into())),
            Err(Error::WrongType { .. })
        ));
        assert_eq!(Dtype::F32.canonical(&Value::Int(3)), Ok(Value::Float(3.0)));
    }

    #[test]
    fn f32_overflow_is_an_error_but_inf_passes() {
        assert!(matches!(
            Dtype::F32.canonical(&Value::Float(1e39)),
            Err(Error::ValueOutOfRange { .. })
        ));
        assert_eq!(
            Dtype::F32.canonical(&Value::Float(f64::INFINITY)),
            Ok(Value::Float(f64::INFINITY))
        );
        assert_eq!(
            Dtype::F32.canonical(&Value::Float(0.1)),
            Ok(Value::Float(f64::from(0.1f32)))
        );
    }

    #[test]
    fn arrays_check_length_and_elements() {
        let t = MemberType::Array(Dtype::U8, 2);
        assert!(matches!(
            t.canonical(&vec![1u8].into()),
            Err(Error::WrongLength { expected: 2, got: 1 })
        ));
        assert!(matches!(
            t.canonical(&vec![1i64, 256].into()),
            Err(Error::ValueOutOfRange { .. })
        ));
        assert!(matches!(
            t.canonical(&Value::Int(1)),
            Err(Error::WrongType { .. })
        ));
        assert_eq!(
            t.canonical(&vec![1i64, 2].into()),
            Ok(Value::Array(vec![Value::UInt(1), Value::UInt(2)]))
        );
    }
}
