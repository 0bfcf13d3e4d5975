//! Stores built from Arrow record batches.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Schema as ArrowSchema};

use super::export::ArrowKey;
use super::{arrow_dtype, is_binary, is_string, ConvertError, ConvertResult};
use crate::column::{Column, INLINE_MAX, LARGE_PREFIX_LEN, MEDIUM_MAX, PREFIX_LEN};
use crate::dynamic_store::DynamicStore;
use crate::error::Error;
use crate::keyed_store::KeyedStore;
use crate::schema::{Dtype, Member, MemberType, Schema};
use crate::store::{chunk_mut, Store, INTERNAL};
use crate::value::Value;

/// The member type an Arrow type reads as (the type table backwards), if any: numbers and bools as
/// themselves, `fixed_size_list` of those as `Array`, strings as `Str`, binaries as `Bytes`, dictionaries
/// of strings or binaries as `Interned`.
#[must_use]
pub fn member_type_of(t: &DataType) -> Option<MemberType> {
    if let Some(d) = arrow_dtype(t) {
        return Some(MemberType::Scalar(d));
    }
    Some(match t {
        DataType::FixedSizeList(f, n) => MemberType::Array(
            arrow_dtype(f.data_type())?,
            usize::try_from(*n).ok().filter(|&n| n >= 1)?,
        ),
        t if is_string(t) => MemberType::Str,
        t if is_binary(t) => MemberType::Bytes,
        DataType::Dictionary(k, v) if k.is_dictionary_key_type() => match member_type_of(v)? {
            t @ (MemberType::Str | MemberType::Bytes) => MemberType::interned(t),
            _ => return None,
        },
        _ => return None,
    })
}

/// The key type (`"i64"`, `"u64"`, `"str"`, `"bytes"`) a key column of Arrow type `t` gives a keyed store:
/// signed ints and unsigned ones up to 32 bits are `i64`, `uint64` is `u64`; `None` for other types.
#[must_use]
pub fn key_type_of(t: &DataType) -> Option<&'static str> {
    Some(match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => "i64",
        DataType::UInt64 => "u64",
        t if is_string(t) => "str",
        t if is_binary(t) => "bytes",
        _ => return None,
    })
}

fn unsupported(name: &str, t: &DataType) -> ConvertError {
    ConvertError::column(
        name,
        Error::WrongType {
            expected: "an Arrow type a member can hold (bool, int, float, fixed_size_list of those, string, \
                       binary, dictionary of string or binary)"
                .into(),
            got: t.to_string(),
        },
    )
}

fn has_nulls(batches: &[RecordBatch], i: usize) -> bool {
    batches.iter().any(|b| b.column(i).logical_null_count() > 0)
}

/// The members a store type needs to hold `schema`'s columns (but the `key` column): the type table read
/// backwards, in column order; a column holding a null (in any of `batches`) becomes `Optional`.
///
/// # Errors
/// A column of an Arrow type no member takes (`WrongType`) or a name no member can have, naming it.
pub fn infer_members(
    schema: &ArrowSchema,
    batches: &[RecordBatch],
    key: Option<&str>,
) -> ConvertResult<Vec<Member>> {
    let mut out = Vec::with_capacity(schema.fields().len());
    for (i, f) in schema.fields().iter().enumerate() {
        if Some(f.name().as_str()) == key {
            continue;
        }
        let ty = member_type_of(f.data_type()).ok_or_else(|| unsupported(f.name(), f.data_type()))?;
        let ty = if has_nulls(batches, i) {
            MemberType::optional(ty)
        } else {
            ty
        };
        out.push(Member::new(f.name().clone(), ty).map_err(|e| ConvertError::column(f.name(), e))?);
    }
    Ok(out)
}

/// Whether a column of Arrow type `t` can be written to a member of type `ty` (values are then converted
/// as writes convert them).
fn accepts(ty: &MemberType, t: &DataType) -> bool {
    match (ty, t) {
        (MemberType::Optional(inner), t) => *t == DataType::Null || accepts(inner, t),
        (MemberType::Interned(inner), t) => accepts(inner, t),
        (MemberType::Scalar(_), t) => arrow_dtype(t).is_some(),
        (MemberType::Array(_, n), DataType::FixedSizeList(f, k)) => {
            usize::try_from(*k).is_ok_and(|k| k == *n) && arrow_dtype(f.data_type()).is_some()
        }
        (MemberType::Str, t) => is_string(t) || matches!(t, DataType::Dictionary(_, v) if is_string(v)),
        (MemberType::Bytes, t) => is_binary(t) || matches!(t, DataType::Dictionary(_, v) if is_binary(v)),
        _ => false,
    }
}

/// Each member's column: `(member, column index)` for every member, checked (names, types, nulls).
fn match_columns(
    schema: &Schema,
    arrow: &ArrowSchema,
    batches: &[RecordBatch],
    key: Option<&str>,
) -> ConvertResult<Vec<(usize, usize)>> {
    // Every batch must have the schema's columns (a stream's batches do; a hand-made one may not).
    for b in batches {
        let same = b.num_columns() == arrow.fields().len()
            && b.columns()
                .iter()
                .zip(arrow.fields())
                .all(|(c, f)| c.data_type() == f.data_type());
        if !same {
            return Err(
                Error::InvalidArgument("a record batch does not have the stream's schema".into()).into(),
            );
        }
    }
    let mut cols = vec![None; schema.len()];
    let mut key_seen = false;
    for (i, f) in arrow.fields().iter().enumerate() {
        let name = f.name().as_str();
        if Some(name) == key {
            key_seen = true;
            continue;
        }
        let m = schema.index_of(name).map_err(|_| {
            ConvertError::column(
                name,
                Error::InvalidArgument("the store type has no member of this name".into()),
            )
        })?;
        if cols[m].replace(i).is_some() {
            return Err(ConvertError::column(
                name,
                Error::InvalidArgument("given twice".into()),
            ));
        }
        let ty = schema.member(m)?.ty();
        if !accepts(ty, f.data_type()) {
            return Err(ConvertError::column(
                name,
                Error::WrongType {
                    expected: format!("an Arrow type member type {ty} takes"),
                    got: f.data_type().to_string(),
                },
            ));
        }
        if !ty.is_optional() && has_nulls(batches, i) {
            return Err(ConvertError::column(
                name,
                Error::InvalidArgument(format!("holds a null, but member type {ty} is not optional")),
            ));
        }
    }
    if let Some(k) = key {
        if !key_seen {
            return Err(ConvertError::column(
                k,
                Error::InvalidArgument("no such column to key the store by".into()),
            ));
        }
    }
    schema
        .members()
        .iter()
        .zip(cols)
        .enumerate()
        .map(|(m, (member, c))| {
            let i = c.ok_or_else(|| {
                ConvertError::column(
                    member.name(),
                    Error::InvalidArgument(
                        "missing: the store type has this member, the data no such column".into(),
                    ),
                )
            })?;
            Ok((m, i))
        })
        .collect()
}

/// A dynamic store of `schema` (chunks of `2^log2size` slots) holding the rows of `batches` (of Arrow
/// schema `arrow`) as entries `0..n`, in order.
///
/// # Errors
/// A missing or extra column, a column of a type the member does not take (`WrongType`), a null in a
/// member that is not optional, a value that does not convert (as a write's errors), each naming the
/// column; [`Error::OutOfMemory`]. Nothing is built.
pub fn import_dynamic(
    schema: Arc<Schema>,
    log2size: u32,
    arrow: &ArrowSchema,
    batches: &[RecordBatch],
) -> ConvertResult<DynamicStore> {
    let cols = match_columns(&schema, arrow, batches, None)?;
    let n = batches.iter().map(RecordBatch::num_rows).sum();
    let mut d = DynamicStore::new(Arc::clone(&schema), log2size)?;
    d.occupy_fresh(n)?;
    load(&mut d, &schema, &cols, batches)?;
    Ok(d)
}

/// A keyed store of `schema` keyed by column `key` of `batches` (not a member), its other columns the
/// members, entries in row order.
///
/// # Errors
/// As [`import_dynamic`]; a key column of another type than `K` takes, a null or duplicate key.
pub fn import_keyed<K: ArrowKey>(
    schema: Arc<Schema>,
    log2size: u32,
    arrow: &ArrowSchema,
    batches: &[RecordBatch],
    key: &str,
) -> ConvertResult<KeyedStore<K>> {
    let cols = match_columns(&schema, arrow, batches, Some(key))?;
    let ki = arrow.index_of(key).map_err(super::export::arrow_err)?;
    let mut keys: Vec<K> = Vec::new();
    for b in batches {
        let col = b.column(ki);
        let got = K::from_array(col.as_ref())
            .map_err(|e| match e {
                ConvertError::Store(e) => ConvertError::column(key, e),
                e => e,
            })?
            .ok_or_else(|| {
                ConvertError::column(
                    key,
                    Error::WrongType {
                        expected: format!("a key column of {} keys", K::NAME),
                        got: col.data_type().to_string(),
                    },
                )
            })?;
        keys.extend(got);
    }
    let mut ks = KeyedStore::<K>::from_columns(Arc::clone(&schema), log2size, &keys, &[])?;
    load(ks.store_for_load(), &schema, &cols, batches)?;
    Ok(ks)
}

/// Write the columns of `batches` into entries `0..n` of `d` (occupied, holding their defaults).
fn load(
    d: &mut DynamicStore,
    schema: &Schema,
    cols: &[(usize, usize)],
    batches: &[RecordBatch],
) -> ConvertResult<()> {
    let cs = d.chunk_size();
    let mut g = 0;
    for b in batches {
        let len = b.num_rows();
        let mut done = 0;
        while done < len {
            crate::interrupt::poll()?;
            let (c, o) = ((g + done) / cs, (g + done) % cs);
            let k = (cs - o).min(len - done);
            let chunk = chunk_mut(d.chunks_mut(INTERNAL), c)?;
            for &(m, ci) in cols {
                let member = schema.member(m)?;
                let col = chunk.column_mut(m)?;
                write_rows(col, member.ty(), b.column(ci), done, o, k)
                    .map_err(|e| ConvertError::column(member.name(), e))?;
            }
            done += k;
        }
        g += len;
    }
    Ok(())
}

/// The value bytes of rows `from..from + count` of a primitive array (its own buffer, no copy).
fn primitive_slice(a: &dyn Array, from: usize, count: usize, size: usize) -> Option<&[u8]> {
    macro_rules! slice_of {
        ($T:ty) => {{
            let v = a.as_primitive_opt::<$T>()?.values();
            let bytes: &[u8] = bytemuck::cast_slice(&v[..]);
            bytes.get(from * size..(from + count) * size)
        }};
    }
    match a.data_type() {
        DataType::Int8 => slice_of!(Int8Type),
        DataType::Int16 => slice_of!(Int16Type),
        DataType::Int32 => slice_of!(Int32Type),
        DataType::Int64 => slice_of!(Int64Type),
        DataType::UInt8 => slice_of!(UInt8Type),
        DataType::UInt16 => slice_of!(UInt16Type),
        DataType::UInt32 => slice_of!(UInt32Type),
        DataType::UInt64 => slice_of!(UInt64Type),
        DataType::Float32 => slice_of!(Float32Type),
        DataType::Float64 => slice_of!(Float64Type),
        _ => None,
    }
}

/// Write rows `from..from + count` of `a` to slots `slot..slot + count` of `col` (a member of type `ty`),
/// converting as writes do; numbers of the member's own type are copied in bulk.
fn write_rows(
    col: &mut Column,
    ty: &MemberType,
    a: &ArrayRef,
    from: usize,
    slot: usize,
    count: usize,
) -> crate::Result<()> {
    let no_nulls = a.logical_null_count() == 0;
    match (&mut *col, ty) {
        (Column::Fixed(f), MemberType::Scalar(d))
            if no_nulls && *d != Dtype::Bool && arrow_dtype(a.data_type()) == Some(*d) =>
        {
            let bytes = primitive_slice(a.as_ref(), from, count, d.size())
                .ok_or_else(|| Error::Invariant("a primitive column's values".into()))?;
            return f.load_at(slot, bytes);
        }
        (Column::Fixed(f), MemberType::Scalar(Dtype::Bool))
            if no_nulls && *a.data_type() == DataType::Boolean =>
        {
            let b = a.as_boolean();
            let bytes: Vec<u8> = (from..from + count).map(|i| u8::from(b.value(i))).collect();
            return f.load_at(slot, &bytes);
        }
        (Column::Fixed(f), MemberType::Array(d, n)) if no_nulls && *d != Dtype::Bool => {
            if let Some(l) = a.as_fixed_size_list_opt() {
                let child = l.values();
                if child.logical_null_count() == 0 && arrow_dtype(child.data_type()) == Some(*d) {
                    let off = l.value_offset_at(from);
                    if let Some(bytes) = primitive_slice(child.as_ref(), off, count * n, d.size()) {
                        return f.load_at(slot, bytes);
                    }
                }
            }
        }
        (Column::View(v), _) if no_nulls => {
            if let Some(r) = ByteReader::of(a.as_ref()) {
                // The data buffer grows once, by what the long values keep out of their views.
                let extra: usize = (from..from + count)
                    .map(|i| match r.get(i).len() {
                        n if n <= INLINE_MAX => 0,
                        n if n <= MEDIUM_MAX => n - PREFIX_LEN,
                        n => n - LARGE_PREFIX_LEN,
                    })
                    .sum();
                v.reserve_data(extra)?;
                for i in 0..count {
                    v.set_bytes(slot + i, r.get(from + i))?;
                }
                return Ok(());
            }
        }
        _ => {}
    }
    // Everything else: one value at a time, converted as a write converts it.
    let r = Reader::of(a.as_ref());
    for i in 0..count {
        col.set(slot + i, &r.value(from + i)?)?;
    }
    Ok(())
}

/// Reads the values of a string or binary array (not a dictionary) as bytes.
enum ByteReader<'a> {
    Utf8(&'a arrow_array::StringArray),
    LargeUtf8(&'a arrow_array::LargeStringArray),
    Utf8View(&'a arrow_array::StringViewArray),
    Binary(&'a arrow_array::BinaryArray),
    LargeBinary(&'a arrow_array::LargeBinaryArray),
    BinaryView(&'a arrow_array::BinaryViewArray),
}

impl<'a> ByteReader<'a> {
    fn of(a: &'a dyn Array) -> Option<ByteReader<'a>> {
        Some(match a.data_type() {
            DataType::Utf8 => ByteReader::Utf8(a.as_string_opt::<i32>()?),
            DataType::LargeUtf8 => ByteReader::LargeUtf8(a.as_string_opt::<i64>()?),
            DataType::Utf8View => ByteReader::Utf8View(a.as_string_view_opt()?),
            DataType::Binary => ByteReader::Binary(a.as_binary_opt::<i32>()?),
            DataType::LargeBinary => ByteReader::LargeBinary(a.as_binary_opt::<i64>()?),
            DataType::BinaryView => ByteReader::BinaryView(a.as_binary_view_opt()?),
            _ => return None,
        })
    }

    fn is_text(&self) -> bool {
        matches!(
            self,
            ByteReader::Utf8(_) | ByteReader::LargeUtf8(_) | ByteReader::Utf8View(_)
        )
    }

    /// The bytes of row `i` (in range: the caller's loop bounds).
    fn get(&self, i: usize) -> &'a [u8] {
        match self {
            ByteReader::Utf8(a) => a.value(i).as_bytes(),
            ByteReader::LargeUtf8(a) => a.value(i).as_bytes(),
            ByteReader::Utf8View(a) => a.value(i).as_bytes(),
            ByteReader::Binary(a) => a.value(i),
            ByteReader::LargeBinary(a) => a.value(i),
            ByteReader::BinaryView(a) => a.value(i),
        }
    }
}

/// Reads any supported array's rows as [`Value`]s.
enum Reader<'a> {
    Plain(&'a dyn Array),
    Dict {
        keys: Vec<usize>,
        nulls: Option<NullBuffer>,
        values: Box<Reader<'a>>,
        len: usize,
    },
}

impl<'a> Reader<'a> {
    fn of(a: &'a dyn Array) -> Reader<'a> {
        match a.as_any_dictionary_opt() {
            Some(d) => Reader::Dict {
                keys: d.normalized_keys(),
                nulls: d.keys().logical_nulls(),
                values: Box::new(Reader::of(d.values().as_ref())),
                len: d.values().len(),
            },
            None => Reader::Plain(a),
        }
    }

    fn value(&self, i: usize) -> crate::Result<Value> {
        match self {
            Reader::Dict {
                keys,
                nulls,
                values,
                len,
            } => {
                if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                    return Ok(Value::Null);
                }
                let k =
                    keys.get(i).copied().filter(|k| k < len).ok_or_else(|| {
                        Error::InvalidArgument("a dictionary key beyond its dictionary".into())
                    })?;
                values.value(k)
            }
            Reader::Plain(a) => value_at(*a, i),
        }
    }
}

/// Row `i` of a plain (not dictionary) array as a [`Value`].
fn value_at(a: &dyn Array, i: usize) -> crate::Result<Value> {
    if i >= a.len() {
        return Err(Error::IndexOutOfRange {
            index: i64::try_from(i).unwrap_or(i64::MAX),
            len: a.len(),
        });
    }
    if a.is_null(i) || *a.data_type() == DataType::Null {
        return Ok(Value::Null);
    }
    macro_rules! int {
        ($T:ty) => {
            Value::Int(i64::from(a.as_primitive::<$T>().value(i)))
        };
    }
    macro_rules! uint {
        ($T:ty) => {
            Value::UInt(u64::from(a.as_primitive::<$T>().value(i)))
        };
    }
    Ok(match a.data_type() {
        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => uint!(UInt8Type),
        DataType::UInt16 => uint!(UInt16Type),
        DataType::UInt32 => uint!(UInt32Type),
        DataType::UInt64 => uint!(UInt64Type),
        DataType::Float32 => Value::Float(f64::from(a.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => Value::Float(a.as_primitive::<Float64Type>().value(i)),
        DataType::FixedSizeList(_, _) => {
            let l = a.as_fixed_size_list();
            let child = l.values();
            let start = l.value_offset_at(i);
            let n = usize::try_from(l.value_length()).unwrap_or(0);
            let r = Reader::of(child.as_ref());
            Value::Array(
                (start..start + n)
                    .map(|k| r.value(k))
                    .collect::<crate::Result<_>>()?,
            )
        }
        _ => match ByteReader::of(a) {
            Some(r) if r.is_text() => Value::Str(String::from_utf8_lossy(r.get(i)).into_owned()),
            Some(r) => Value::Bytes(r.get(i).to_vec()),
            None => {
                return Err(Error::WrongType {
                    expected: "a supported Arrow type".into(),
                    got: a.data_type().to_string(),
                })
            }
        },
    })
}

fn null_key() -> ConvertError {
    Error::InvalidArgument("a key is null".into()).into()
}

/// The keys of an integer column as `T` (`None` for a column that is not of an integer type `T` takes).
pub(super) fn int_keys<T: TryFrom<i64> + TryFrom<u64>>(a: &dyn Array) -> ConvertResult<Option<Vec<T>>> {
    let want = if std::mem::size_of::<T>() == 8 && T::try_from(u64::MAX).is_ok() {
        "u64"
    } else {
        "i64"
    };
    if key_type_of(a.data_type()) != Some(want)
        && !(want == "u64"
            && matches!(
                a.data_type(),
                DataType::UInt8 | DataType::UInt16 | DataType::UInt32
            ))
    {
        return Ok(None);
    }
    if a.logical_null_count() > 0 {
        return Err(null_key());
    }
    let mut out = Vec::with_capacity(a.len());
    for i in 0..a.len() {
        let v = value_at(a, i)?;
        let k = match v {
            Value::Int(x) => T::try_from(x).ok(),
            Value::UInt(x) => T::try_from(x).ok(),
            _ => None,
        };
        out.push(k.ok_or_else(|| {
            ConvertError::from(Error::ValueOutOfRange {
                value: format!("{v:?}"),
                dtype: want.into(),
            })
        })?);
    }
    Ok(Some(out))
}

/// The keys of a string (`text`) or binary column, each made by `f` (`None` for a column of another type).
pub(super) fn byte_keys<T>(
    a: &dyn Array,
    text: bool,
    f: impl Fn(&[u8]) -> T,
) -> ConvertResult<Option<Vec<T>>> {
    let Some(r) = ByteReader::of(a).filter(|r| r.is_text() == text) else {
        return Ok(None);
    };
    if a.logical_null_count() > 0 {
        return Err(null_key());
    }
    Ok(Some((0..a.len()).map(|i| f(r.get(i))).collect()))
}
