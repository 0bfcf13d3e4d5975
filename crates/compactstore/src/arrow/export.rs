//! A store's entries as Arrow record batches, one per chunk.

use std::ptr::NonNull;
use std::sync::{Arc, PoisonError};

use arrow_array::builder::BinaryViewBuilder;
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_buffer::{BooleanBuffer, Buffer, MutableBuffer, NullBuffer};
use arrow_data::ArrayData;
use arrow_schema::{DataType, Field, Schema as ArrowSchema, SchemaRef};

use super::{is_binary, is_string, member_arrow, ConvertError, ConvertResult};
use crate::column::{AlignedBuf, Backing, Column, FixedColumn, InternedColumn, NONE_CODE};
use crate::error::Error;
use crate::keyed_store::{Key, KeyedStore};
use crate::schema::{Dtype, MemberType, Schema};
use crate::static_store::StaticStore;
use crate::store::Store;
use crate::value::Value;

/// Where an exported column comes from.
#[derive(Debug, Clone)]
enum Source {
    /// A keyed store's key.
    Key,
    /// Member `m`.
    Member(usize),
}

/// Which columns leave, in order, and as which Arrow types: the Arrow schema of an export.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use compactstore::{arrow::ExportPlan, DynamicStore, Dtype, Member, MemberType, Schema, Store, Value};
/// let schema = Arc::new(Schema::new(vec![
///     Member::new("x", MemberType::Scalar(Dtype::I64))?,
///     Member::new("name", MemberType::Str)?,
/// ])?);
/// let mut d = DynamicStore::new(schema.clone(), 2)?;
/// for i in 0..6 {
///     d.add(&[(0, Value::Int(i)), (1, Value::from("a"))])?;
/// }
/// let plan = ExportPlan::new(&schema, None, None).unwrap();
/// let batches = plan.export(&d).unwrap();
/// assert_eq!(batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(), [4, 2]);
/// # Ok::<(), compactstore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ExportPlan {
    schema: SchemaRef,
    sources: Vec<Source>,
}

impl ExportPlan {
    /// The default plan: the key first (`key`: its column name and Arrow type), then `members` (positions;
    /// every member if `None`) in the given order, each as the type table says.
    ///
    /// # Errors
    /// A member position out of range; an object member (it cannot leave: leave it out), naming it.
    pub fn new(
        schema: &Schema,
        key: Option<(&str, DataType)>,
        members: Option<&[usize]>,
    ) -> ConvertResult<ExportPlan> {
        let all: Vec<usize> = (0..schema.len()).collect();
        let members = members.unwrap_or(&all);
        let mut fields = Vec::with_capacity(members.len() + 1);
        let mut sources = Vec::with_capacity(members.len() + 1);
        if let Some((name, t)) = key {
            fields.push(Field::new(name, t, false));
            sources.push(Source::Key);
        }
        for &m in members {
            let member = schema.member(m)?;
            let (t, nullable) = member_arrow(member.ty()).ok_or_else(|| object_refused(member.name()))?;
            fields.push(Field::new(member.name(), t, nullable));
            sources.push(Source::Member(m));
        }
        Ok(ExportPlan {
            schema: Arc::new(ArrowSchema::new(fields)),
            sources,
        })
    }

    /// The plan a consumer's requested schema asks for: its fields, by name, in its order (a subset of
    /// the key and the members), each of the type the default plan gives it or, for str/bytes members
    /// (interned ones' dictionary values too) and str/bytes keys, another string/binary type (`string`,
    /// `large_string`, `string_view`; `binary`, `large_binary`, `binary_view`). `key` is as for
    /// [`ExportPlan::new`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field for an unknown name, a type that does not fit, a
    /// non-nullable field for an optional member, or a name asked for twice.
    pub fn with_requested(
        schema: &Schema,
        key: Option<(&str, DataType)>,
        requested: &ArrowSchema,
    ) -> ConvertResult<ExportPlan> {
        let mut fields = Vec::with_capacity(requested.fields().len());
        let mut sources = Vec::with_capacity(requested.fields().len());
        for f in requested.fields() {
            let bad = |why: &str| ConvertError::Column {
                what: "requested field",
                name: f.name().clone(),
                error: Error::InvalidArgument(format!(
                    "{why} (a requested schema may only pick the store's columns and change a string type)"
                )),
            };
            if fields.iter().any(|g: &Field| g.name() == f.name()) {
                return Err(bad("asked for twice"));
            }
            let (source, default, nullable) = match &key {
                Some((name, t)) if name == f.name() => (Source::Key, t.clone(), false),
                _ => {
                    let m = schema
                        .index_of(f.name())
                        .map_err(|_| bad("the store has no such column"))?;
                    let member = schema.member(m)?;
                    let (t, nullable) =
                        member_arrow(member.ty()).ok_or_else(|| object_refused(member.name()))?;
                    (Source::Member(m), t, nullable)
                }
            };
            if nullable && !f.is_nullable() {
                return Err(bad("the member is optional: its field must be nullable"));
            }
            if !fits(&default, f.data_type()) {
                return Err(bad(&format!(
                    "the store gives {default}, which cannot leave as {}",
                    f.data_type()
                )));
            }
            fields.push(Field::new(f.name(), f.data_type().clone(), nullable));
            sources.push(source);
        }
        Ok(ExportPlan {
            schema: Arc::new(ArrowSchema::new(fields)),
            sources,
        })
    }

    /// The Arrow schema of the batches.
    #[must_use]
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The store's entries, one record batch per chunk (see the module docs). A plan with a key column
    /// refuses a store that is not keyed.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a plan with a key; [`Error::Invariant`] for a broken store;
    /// [`Error::OutOfMemory`] for a string column of a chunk beyond 2 GiB asked for as `string`/`binary`.
    pub fn export<S: Store + ?Sized>(&self, store: &S) -> ConvertResult<Vec<RecordBatch>> {
        if self.sources.iter().any(|s| matches!(s, Source::Key)) {
            return Err(Error::InvalidArgument("a key column of a store that is not keyed".into()).into());
        }
        let dicts = self.dictionaries(store.chunks())?;
        store
            .chunks()
            .iter()
            .map(|chunk| self.batch(chunk, &rows_of(chunk), &dicts, |_| Err(unreachable_key())))
            .collect()
    }

    /// A keyed store's entries, one record batch per chunk, the key column as the plan places it.
    ///
    /// # Errors
    /// As [`ExportPlan::export`].
    pub fn export_keyed<K: ArrowKey>(&self, ks: &KeyedStore<K>) -> ConvertResult<Vec<RecordBatch>> {
        let store = ks.store();
        let dicts = self.dictionaries(store.chunks())?;
        let cs = store.chunk_size();
        let key_type = self
            .schema
            .fields()
            .iter()
            .zip(&self.sources)
            .find(|(_, s)| matches!(s, Source::Key))
            .map(|(f, _)| f.data_type().clone());
        store
            .chunks()
            .iter()
            .enumerate()
            .map(|(c, chunk)| {
                let rows = rows_of(chunk);
                self.batch(chunk, &rows, &dicts, |rows| {
                    let t = key_type.as_ref().ok_or_else(unreachable_key)?;
                    K::keys_array(ks, rows.iter().map(|s| c * cs + s), rows.len(), t)
                })
            })
            .collect()
    }

    /// One snapshot per interned member, shared by every chunk's batch (one dictionary per store).
    fn dictionaries(&self, chunks: &[StaticStore]) -> ConvertResult<Vec<Option<Dict>>> {
        let Some(first) = chunks.first() else {
            return Ok(vec![None; self.sources.len()]);
        };
        self.sources
            .iter()
            .zip(self.schema.fields())
            .map(|(s, f)| match s {
                Source::Member(m) => match first.column(*m)? {
                    Column::Interned(c) => {
                        let member = first.schema().member(*m)?;
                        let DataType::Dictionary(_, vt) = f.data_type() else {
                            return Err(Error::Invariant("an interned member's type".into()).into());
                        };
                        Ok(Some(Dict::of(c, member.default_value(), vt)?))
                    }
                    _ => Ok(None),
                },
                Source::Key => Ok(None),
            })
            .collect()
    }

    fn batch(
        &self,
        chunk: &StaticStore,
        rows: &Rows,
        dicts: &[Option<Dict>],
        key: impl FnOnce(&Rows) -> ConvertResult<ArrayData>,
    ) -> ConvertResult<RecordBatch> {
        let mut key = Some(key);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.sources.len());
        for ((source, field), dict) in self.sources.iter().zip(self.schema.fields()).zip(dicts) {
            crate::interrupt::poll()?;
            let data = match source {
                Source::Key => (key.take().ok_or_else(unreachable_key)?)(rows)?,
                Source::Member(m) => {
                    let member = chunk.schema().member(*m)?;
                    column_data(
                        chunk.column(*m)?,
                        member.ty(),
                        field.data_type(),
                        rows,
                        dict.as_ref(),
                    )
                    .map_err(|e| match e {
                        ConvertError::Store(e) => ConvertError::member(member.name(), e),
                        e => e,
                    })?
                }
            };
            columns.push(arrow_array::make_array(data));
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows.len()));
        RecordBatch::try_new_with_options(self.schema(), columns, &options).map_err(arrow_err)
    }
}

/// Whether a member whose default Arrow type is `default` may leave as `asked`.
fn fits(default: &DataType, asked: &DataType) -> bool {
    match (default, asked) {
        (a, b) if a == b => true,
        (a, b) if is_string(a) => is_string(b),
        (a, b) if is_binary(a) => is_binary(b),
        (DataType::Dictionary(ka, va), DataType::Dictionary(kb, vb)) => ka == kb && fits(va, vb),
        (DataType::FixedSizeList(fa, na), DataType::FixedSizeList(fb, nb)) => {
            na == nb && fa.data_type() == fb.data_type()
        }
        _ => false,
    }
}

fn object_refused(name: &str) -> ConvertError {
    ConvertError::member(
        name,
        Error::WrongType {
            expected: "a member Arrow can hold (leave cs.Object members out: members=[...])".into(),
            got: "an object member".into(),
        },
    )
}

fn unreachable_key() -> ConvertError {
    Error::Invariant("a key column without a keyed store".into()).into()
}

pub(super) fn arrow_err(e: arrow_schema::ArrowError) -> ConvertError {
    Error::InvalidArgument(format!("arrow: {e}")).into()
}

/// The rows of a chunk: its occupied slots in order.
pub(crate) enum Rows {
    /// Slots `0..n`, every one occupied: fixed-width columns can be shared.
    Prefix(usize),
    /// The occupied slots (holes between them).
    Slots(Vec<usize>),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Prefix(n) => *n,
            Rows::Slots(s) => s.len(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + Clone + '_ {
        let (n, slots) = match self {
            Rows::Prefix(n) => (*n, &[][..]),
            Rows::Slots(s) => (0, &s[..]),
        };
        (0..n).chain(slots.iter().copied())
    }
}

fn rows_of(chunk: &StaticStore) -> Rows {
    let slots = chunk.slots();
    let n = slots.len();
    if slots.lowest_free().is_none_or(|f| f >= n) {
        Rows::Prefix(n)
    } else {
        Rows::Slots(slots.occupied_iter().collect())
    }
}

/// Keeps a column buffer's memory alive for as long as an Arrow buffer points into it.
struct Owner(#[allow(dead_code)] Arc<dyn Backing>);

/// The first `len` bytes of `buf`, shared (no copy): the Arrow buffer holds `buf`'s owner.
fn shared(buf: &AlignedBuf, len: usize) -> ConvertResult<Buffer> {
    if len > buf.len() {
        return Err(Error::Invariant("a shared buffer beyond its column".into()).into());
    }
    let ptr = NonNull::new(buf.as_ptr().cast_mut())
        .ok_or_else(|| ConvertError::from(Error::Invariant("a null column buffer".into())))?;
    let owner: Arc<dyn arrow_buffer::alloc::Allocation> = Arc::new(Owner(buf.owner()));
    #[allow(unsafe_code)]
    // SAFETY: `ptr..ptr + len` lies inside the buffer (`len <= buf.len()`, checked), whose bytes are
    // readable, initialised and never move or get freed while `buf.owner()` is held (the `Backing`
    // contract); the Arrow buffer holds that owner in `Owner` until it is dropped, so it never dangles
    // (tests/test_arrow.py: an export outlives its store). Later in-place writes by the store are the
    // documented "writes show through" of a zero-copy export, as with a numpy view.
    let b = unsafe { Buffer::from_custom_allocation(ptr, len, owner) };
    Ok(b)
}

/// A gathered copy of `rows`' bytes, `width` bytes per slot read by `slot_bytes`.
fn gather<'a>(
    rows: &Rows,
    width: usize,
    slot_bytes: impl Fn(usize) -> Option<&'a [u8]>,
) -> ConvertResult<Buffer> {
    let mut out = MutableBuffer::with_capacity(rows.len() * width);
    for s in rows.iter() {
        let b = slot_bytes(s)
            .ok_or_else(|| ConvertError::from(Error::Invariant("a row beyond its chunk".into())))?;
        out.extend_from_slice(b);
    }
    Ok(out.into())
}

fn build(b: arrow_data::ArrayDataBuilder) -> ConvertResult<ArrayData> {
    b.build().map_err(arrow_err)
}

/// One member's values for `rows` as Arrow data of type `t`.
fn column_data(
    col: &Column,
    ty: &MemberType,
    t: &DataType,
    rows: &Rows,
    dict: Option<&Dict>,
) -> ConvertResult<ArrayData> {
    match col {
        Column::Fixed(f) => fixed_data(f, t, rows),
        Column::View(v) => match t {
            DataType::LargeUtf8 | DataType::LargeBinary | DataType::Utf8 | DataType::Binary => {
                view_offsets_data(v, t, rows)
            }
            _ => bytes_data(t, rows.len(), rows.iter().map(|s| v.parts(s))),
        },
        Column::Interned(c) => {
            let d = dict.ok_or_else(|| ConvertError::from(Error::Invariant("no dictionary".into())))?;
            d.keys(c, rows)
        }
        Column::Optional(o) => {
            let MemberType::Optional(inner) = ty else {
                return Err(Error::Invariant("an optional column of another type".into()).into());
            };
            let data = column_data(o.values(), inner, t, rows, dict)?;
            let mut i = rows.iter();
            let bits = BooleanBuffer::collect_bool(rows.len(), |_| i.next().is_some_and(|s| o.is_valid(s)));
            let nulls = NullBuffer::new(bits);
            build(
                data.into_builder()
                    .nulls((nulls.null_count() > 0).then_some(nulls)),
            )
        }
        Column::Object(_) => Err(Error::WrongType {
            expected: "a member Arrow can hold".into(),
            got: "an object member".into(),
        }
        .into()),
    }
}

fn fixed_data(f: &FixedColumn, t: &DataType, rows: &Rows) -> ConvertResult<ArrayData> {
    let n = rows.len();
    let w = f.width();
    let entry = f.ty().entry_bytes();
    let values = if f.dtype() == Dtype::Bool {
        let bytes = match rows {
            Rows::Prefix(n) if f.filled() >= *n => Buffer::from(f.bytes().get(..n * w).unwrap_or_default()),
            _ => gather(rows, entry, |s| f.slot_bytes(s))?,
        };
        let bits = BooleanBuffer::collect_bool(n * w, |i| bytes.get(i).is_some_and(|&b| b != 0));
        bits.into_inner()
    } else {
        match rows {
            Rows::Prefix(n) if f.filled() >= *n => shared(f.buffer(), n * entry)?,
            _ => gather(rows, entry, |s| f.slot_bytes(s))?,
        }
    };
    let scalar = super::dtype_arrow(f.dtype());
    let child = build(ArrayData::builder(scalar).len(n * w).add_buffer(values))?;
    match t {
        DataType::FixedSizeList(..) => build(ArrayData::builder(t.clone()).len(n).add_child_data(child)),
        _ => Ok(child),
    }
}

/// A str/bytes column's values at `rows` as `string`/`binary` (large or not) Arrow data, in one pass
/// over the views into buffers allocated once.
fn view_offsets_data(v: &crate::column::ViewColumn, t: &DataType, rows: &Rows) -> ConvertResult<ArrayData> {
    let n = rows.len();
    // At most the live data-buffer bytes plus every view's inline bytes; 16 more for the whole-view copies.
    let bound = v.live() + n * crate::column::VIEW_BYTES + 16;
    let large = matches!(t, DataType::LargeUtf8 | DataType::LargeBinary);
    let mut data: Vec<u8> = Vec::with_capacity(bound);
    let starts;
    let offsets = if large {
        let mut o: Vec<i64> = Vec::with_capacity(n + 1);
        o.push(0);
        // A length fits i64 (a Vec holds at most isize::MAX bytes).
        let mut push = |at: usize| o.push(at as i64);
        match rows {
            Rows::Prefix(n) => starts = v.append_values(0..*n, &mut data, &mut push),
            Rows::Slots(s) => starts = v.append_values(s.iter().copied(), &mut data, &mut push),
        }
        Buffer::from_vec(o)
    } else {
        let mut o: Vec<i32> = Vec::with_capacity(n + 1);
        o.push(0);
        let mut over = false;
        let mut push = |at: usize| match i32::try_from(at) {
            Ok(x) => o.push(x),
            Err(_) => over = true,
        };
        match rows {
            Rows::Prefix(n) => starts = v.append_values(0..*n, &mut data, &mut push),
            Rows::Slots(s) => starts = v.append_values(s.iter().copied(), &mut data, &mut push),
        }
        if over {
            return Err(too_big());
        }
        Buffer::from_vec(o)
    };
    // Text: the bytes must be UTF-8 and every value start on a character. Checked here in two tight passes
    // (the store keeps each str value UTF-8, so this only fails on a corrupt column) instead of arrow-rs's
    // per-value validation.
    if matches!(t, DataType::Utf8 | DataType::LargeUtf8) && (!starts || std::str::from_utf8(&data).is_err()) {
        return Err(Error::Invariant("a str column holds bytes that are not UTF-8".into()).into());
    }
    let b = ArrayData::builder(t.clone())
        .len(n)
        .add_buffer(offsets)
        .add_buffer(Buffer::from_vec(data));
    #[allow(unsafe_code)]
    // SAFETY: the offsets start at 0, never decrease (each is the data length after one more value) and
    // end at the data's length, as `append_values` wrote them; there are `n + 1` of them (one per row and
    // the leading 0) of the offset width `t` asks for; text was checked above to be UTF-8 with every value
    // starting on a character, so every value is UTF-8. tests/test_arrow.py reads such arrays back.
    let data = unsafe { b.build_unchecked() };
    Ok(data)
}

/// Variable-length values (each given as two slices to concatenate) as Arrow data of string/binary
/// type `t`, in one pass.
fn bytes_data<'a>(
    t: &DataType,
    n: usize,
    values: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
) -> ConvertResult<ArrayData> {
    match t {
        DataType::Utf8View | DataType::BinaryView => {
            let mut b = BinaryViewBuilder::with_capacity(n);
            let mut scratch = Vec::new();
            for (a, c) in values {
                if c.is_empty() {
                    b.append_value(a);
                } else {
                    scratch.clear();
                    scratch.extend_from_slice(a);
                    scratch.extend_from_slice(c);
                    b.append_value(&scratch);
                }
            }
            let arr = b.finish();
            if *t == DataType::Utf8View {
                Ok(arr.to_string_view().map_err(arrow_err)?.into_data())
            } else {
                Ok(arr.into_data())
            }
        }
        DataType::Utf8 | DataType::Binary | DataType::LargeUtf8 | DataType::LargeBinary => {
            // Two passes: the lengths first, so every buffer is allocated once at its size.
            let total: usize = values.clone().map(|(a, c)| a.len() + c.len()).sum();
            let large = matches!(t, DataType::LargeUtf8 | DataType::LargeBinary);
            if !large && i32::try_from(total).is_err() {
                return Err(too_big());
            }
            let mut data: Vec<u8> = Vec::with_capacity(total);
            let offsets = if large {
                let mut o: Vec<i64> = Vec::with_capacity(n + 1);
                o.push(0);
                for (a, c) in values {
                    data.extend_from_slice(a);
                    data.extend_from_slice(c);
                    // `data.len() <= total`, which fits (i64 holds any length of a Vec).
                    o.push(data.len() as i64);
                }
                Buffer::from_vec(o)
            } else {
                let mut o: Vec<i32> = Vec::with_capacity(n + 1);
                o.push(0);
                for (a, c) in values {
                    data.extend_from_slice(a);
                    data.extend_from_slice(c);
                    // `data.len() <= total`, checked to fit i32 above.
                    o.push(data.len() as i32);
                }
                Buffer::from_vec(o)
            };
            build(
                ArrayData::builder(t.clone())
                    .len(n)
                    .add_buffer(offsets)
                    .add_buffer(Buffer::from_vec(data)),
            )
        }
        other => Err(Error::Invariant(format!("{other} is not a string or binary type")).into()),
    }
}

fn too_big() -> ConvertError {
    Error::InvalidArgument("a chunk's string data beyond 2 GiB: ask for large_string / large_binary".into())
        .into()
}

/// An interned member's dictionary as exported: Arrow dictionary values (the default first, if it is a
/// value, then each live code's value) and each code's key.
#[derive(Debug, Clone)]
struct Dict {
    values: ArrayData,
    /// The key of each code (-1 for a free code, which no slot holds).
    keys: Vec<i32>,
    /// Code 0 is `None` (an optional member without a default).
    zero_is_null: bool,
    t: DataType,
}

impl Dict {
    fn of(c: &InternedColumn, default: &Value, vt: &DataType) -> ConvertResult<Dict> {
        let d = c.dictionary().read().unwrap_or_else(PoisonError::into_inner);
        let end = d.code_end();
        let mut keys = vec![-1i32; end];
        let mut values: Vec<&[u8]> = Vec::with_capacity(d.len() + 1);
        let default = match default {
            Value::Str(s) => Some(s.as_bytes()),
            Value::Bytes(b) => Some(&b[..]),
            _ => None,
        };
        if let Some(b) = default {
            keys[0] = 0;
            values.push(b);
        }
        for (code, key) in keys.iter_mut().enumerate().skip(1) {
            let Ok(c32) = u32::try_from(code) else { break };
            if let Some(b) = d.get(c32) {
                *key = i32::try_from(values.len()).map_err(|_| {
                    ConvertError::from(Error::InvalidArgument("a dictionary beyond 2^31 values".into()))
                })?;
                values.push(b);
            }
        }
        let data = bytes_data(vt, values.len(), values.iter().map(|b| (*b, &[][..])))?;
        Ok(Dict {
            values: data,
            keys,
            zero_is_null: default.is_none(),
            t: DataType::Dictionary(Box::new(DataType::Int32), Box::new(vt.clone())),
        })
    }

    fn keys(&self, c: &InternedColumn, rows: &Rows) -> ConvertResult<ArrayData> {
        let n = rows.len();
        let mut keys = MutableBuffer::with_capacity(n * 4);
        let mut valid = Vec::with_capacity(n);
        for s in rows.iter() {
            let code = c.code(s).unwrap_or(0);
            let k = if code == NONE_CODE || (code == 0 && self.zero_is_null) {
                None
            } else {
                self.keys.get(code as usize).copied().filter(|&k| k >= 0)
            };
            if k.is_none() && code != NONE_CODE && !(code == 0 && self.zero_is_null) {
                return Err(Error::Invariant(format!("slot {s} holds dead code {code}")).into());
            }
            keys.push(k.unwrap_or(0));
            valid.push(k.is_some());
        }
        let nulls = NullBuffer::from(valid);
        build(
            ArrayData::builder(self.t.clone())
                .len(n)
                .add_buffer(keys.into())
                .nulls((nulls.null_count() > 0).then_some(nulls))
                .add_child_data(self.values.clone()),
        )
    }
}

/// The key types of a keyed store as Arrow columns (`i64` → `int64`, `u64` → `uint64`, str →
/// `large_string`, bytes → `large_binary`).
pub trait ArrowKey: Key + std::borrow::Borrow<<Self as Key>::Borrowed> {
    /// The key column's default Arrow type.
    fn arrow_type() -> DataType;

    /// The keys at `slots` (occupied) as Arrow data of type `t` (`arrow_type()` or, for str/bytes keys,
    /// another string/binary type).
    ///
    /// # Errors
    /// As [`ExportPlan::export`].
    fn keys_array(
        ks: &KeyedStore<Self>,
        slots: impl Iterator<Item = usize> + Clone,
        n: usize,
        t: &DataType,
    ) -> ConvertResult<ArrayData>;

    /// The keys of an Arrow column (`None` if the column's type is not one this key type takes; a null
    /// is an error).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a null key.
    fn from_array(a: &dyn Array) -> ConvertResult<Option<Vec<Self>>>;
}

macro_rules! int_arrow_key {
    ($t:ty, $dt:expr) => {
        impl ArrowKey for $t {
            fn arrow_type() -> DataType {
                $dt
            }

            fn keys_array(
                ks: &KeyedStore<$t>,
                slots: impl Iterator<Item = usize> + Clone,
                n: usize,
                t: &DataType,
            ) -> ConvertResult<ArrayData> {
                let mut out = MutableBuffer::with_capacity(n * 8);
                for s in slots {
                    out.push(ks.key_at(s).copied().unwrap_or_default());
                }
                build(ArrayData::builder(t.clone()).len(n).add_buffer(out.into()))
            }

            fn from_array(a: &dyn Array) -> ConvertResult<Option<Vec<$t>>> {
                super::import::int_keys::<$t>(a)
            }
        }
    };
}
int_arrow_key!(i64, DataType::Int64);
int_arrow_key!(u64, DataType::UInt64);

impl ArrowKey for String {
    fn arrow_type() -> DataType {
        DataType::LargeUtf8
    }

    fn keys_array(
        ks: &KeyedStore<String>,
        slots: impl Iterator<Item = usize> + Clone,
        n: usize,
        t: &DataType,
    ) -> ConvertResult<ArrayData> {
        bytes_data(
            t,
            n,
            slots.map(|s| (ks.key_at(s).map(str::as_bytes).unwrap_or_default(), &[][..])),
        )
    }

    fn from_array(a: &dyn Array) -> ConvertResult<Option<Vec<String>>> {
        super::import::byte_keys(a, true, |b| String::from_utf8_lossy(b).into_owned())
    }
}

impl ArrowKey for Vec<u8> {
    fn arrow_type() -> DataType {
        DataType::LargeBinary
    }

    fn keys_array(
        ks: &KeyedStore<Vec<u8>>,
        slots: impl Iterator<Item = usize> + Clone,
        n: usize,
        t: &DataType,
    ) -> ConvertResult<ArrayData> {
        bytes_data(t, n, slots.map(|s| (ks.key_at(s).unwrap_or_default(), &[][..])))
    }

    fn from_array(a: &dyn Array) -> ConvertResult<Option<Vec<Vec<u8>>>> {
        super::import::byte_keys(a, false, <[u8]>::to_vec)
    }
}
