//! Arrow through the PyCapsule interface: stores as Arrow stream producers (`__arrow_c_schema__`,
//! `__arrow_c_stream__`) and `from_arrow`'s reader. The conversions are the engine's (`compactstore::arrow`);
//! this file moves capsules and maps errors. No pyarrow is needed here.

use std::sync::Arc;

use compactstore::arrow::arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use compactstore::arrow::arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use compactstore::arrow::arrow_array::{RecordBatch, RecordBatchIterator, StructArray};
use compactstore::arrow::arrow_schema::{DataType, Schema as ArrowSchema, SchemaRef};
use compactstore::arrow::{self as ca, ArrowKey, ConvertError, ExportPlan};
use compactstore::KeyedStore;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods, PyDict, PyList, PyString, PyTuple, PyType};

use crate::error::to_py;
use crate::keyed::{AnyKeyed, PyKeyedStore};
use crate::shared::{Handle, Inner, Shared, View};
use crate::store::{schema_of, Made, PyStore};

const SCHEMA: &std::ffi::CStr = c"arrow_schema";
const STREAM: &std::ffi::CStr = c"arrow_array_stream";
const ARRAY: &std::ffi::CStr = c"arrow_array";

/// A conversion error as the Python exception its engine error maps to, with the column named.
fn convert_err(e: ConvertError) -> PyErr {
    let msg = e.to_string();
    let base = to_py(e.error().clone());
    Python::attach(|py| match base.get_type(py).call1((msg,)) {
        Ok(obj) => PyErr::from_value(obj),
        Err(_) => base,
    })
}

/// Run an engine conversion, turning a panic (a bug, or one in arrow-rs on malformed input) into a
/// `RuntimeError` instead of letting it reach Python as a `PanicException`.
fn guarded<R>(f: impl FnOnce() -> PyResult<R>) -> PyResult<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(pyo3::exceptions::PyRuntimeError::new_err(
            "compactstore: an Arrow conversion failed unexpectedly (a bug: please report it)",
        ))
    })
}

fn arrow_err(e: compactstore::arrow::arrow_schema::ArrowError) -> PyErr {
    PyValueError::new_err(format!("arrow: {e}"))
}

/// The member positions `members` names (`None`: every member).
fn member_list(data: &Shared, members: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<usize>>> {
    let Some(members) = members.filter(|m| !m.is_none()) else {
        return Ok(None);
    };
    if members.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "members is a list of member names, not one str",
        ));
    }
    members
        .try_iter()?
        .map(|n| data.member_of(&n?))
        .collect::<PyResult<Vec<_>>>()
        .map(Some)
}

/// The requested schema of a consumer (a schema capsule), if any.
fn requested(schema: Option<&Bound<'_, PyAny>>) -> PyResult<Option<ArrowSchema>> {
    let Some(obj) = schema.filter(|s| !s.is_none()) else {
        return Ok(None);
    };
    let capsule = obj
        .cast::<PyCapsule>()
        .map_err(|_| PyTypeError::new_err("requested_schema must be an arrow_schema PyCapsule"))?;
    let ptr = capsule.pointer_checked(Some(SCHEMA))?;
    #[allow(unsafe_code)]
    // SAFETY: an "arrow_schema" capsule holds an `ArrowSchema` C struct (the PyCapsule interface); we only
    // read it through a shared reference while the capsule (kept alive by `obj`) owns it.
    let ffi = unsafe { &*ptr.as_ptr().cast::<FFI_ArrowSchema>() };
    ArrowSchema::try_from(ffi).map(Some).map_err(arrow_err)
}

/// The key column of a keyed store's export: its name and default Arrow type.
fn key_of(k: &AnyKeyed) -> DataType {
    match k {
        AnyKeyed::I64(_) => i64::arrow_type(),
        AnyKeyed::U64(_) => u64::arrow_type(),
        AnyKeyed::Str(_) => String::arrow_type(),
        AnyKeyed::Bytes(_) => <Vec<u8>>::arrow_type(),
    }
}

/// The plan of an export: members (or a requested schema), after the key if `key` is given.
fn plan(
    schema: &compactstore::Schema,
    key: Option<(&str, DataType)>,
    members: Option<Vec<usize>>,
    requested_schema: Option<ArrowSchema>,
) -> PyResult<ExportPlan> {
    if let Some((name, _)) = &key {
        if schema.index_of(name).is_ok() {
            return Err(PyValueError::new_err(format!(
                "the key column {name:?} has a member's name: give the store another key_name"
            )));
        }
    }
    let plan = match requested_schema {
        Some(r) => ExportPlan::with_requested(schema, key, &r),
        None => ExportPlan::new(schema, key, members.as_deref()),
    };
    plan.map_err(convert_err)
}

/// A store's entries (a static or dynamic store, or one chunk) as `(schema, batches)`.
fn store_batches(
    h: &Handle,
    members: Option<&Bound<'_, PyAny>>,
    requested_schema: Option<&Bound<'_, PyAny>>,
) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    let p = plan(
        &h.data.schema,
        None,
        member_list(&h.data, members)?,
        requested(requested_schema)?,
    )?;
    let batches = h.read(|v| {
        Ok(match v {
            View::Static(s) => p.export(s),
            View::Dynamic(d) => p.export(d),
        })
    })?;
    Ok((p.schema(), batches.map_err(convert_err)?))
}

/// A keyed store's entries as `(schema, batches)`, its key first as column `key_name`.
fn keyed_batches(
    h: &Handle,
    key_name: &str,
    members: Option<&Bound<'_, PyAny>>,
    requested_schema: Option<&Bound<'_, PyAny>>,
) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
    let members = member_list(&h.data, members)?;
    let requested_schema = requested(requested_schema)?;
    let g = h.data.lock()?;
    let Inner::Keyed(k) = &*g else {
        return Err(PyTypeError::new_err("not a keyed store"));
    };
    let p = plan(
        &h.data.schema,
        Some((key_name, key_of(k))),
        members,
        requested_schema,
    )?;
    let batches = match k {
        AnyKeyed::I64(s) => p.export_keyed(s),
        AnyKeyed::U64(s) => p.export_keyed(s),
        AnyKeyed::Str(s) => p.export_keyed(s),
        AnyKeyed::Bytes(s) => p.export_keyed(s),
    };
    Ok((p.schema(), batches.map_err(convert_err)?))
}

fn schema_capsule<'py>(py: Python<'py>, schema: &ArrowSchema) -> PyResult<Bound<'py, PyCapsule>> {
    let ffi = FFI_ArrowSchema::try_from(schema).map_err(arrow_err)?;
    PyCapsule::new_with_value(py, ffi, SCHEMA)
}

fn stream_capsule(
    py: Python<'_>,
    (schema, batches): (SchemaRef, Vec<RecordBatch>),
) -> PyResult<Bound<'_, PyCapsule>> {
    let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
    PyCapsule::new_with_value(py, FFI_ArrowArrayStream::new(Box::new(reader)), STREAM)
}

/// `s.__arrow_c_schema__()` of a static or dynamic store.
pub(crate) fn store_schema<'py>(py: Python<'py>, store: &PyStore) -> PyResult<Bound<'py, PyCapsule>> {
    let p = plan(&store.h.data.schema, None, None, None)?;
    schema_capsule(py, &p.schema())
}

/// `s.__arrow_c_stream__(requested_schema)` of a static or dynamic store (`members`: the private
/// `_cs_arrow_stream`'s selection).
pub(crate) fn store_stream<'py>(
    py: Python<'py>,
    store: &PyStore,
    requested_schema: Option<&Bound<'py, PyAny>>,
    members: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyCapsule>> {
    stream_capsule(
        py,
        guarded(|| store_batches(&store.h, members, requested_schema))?,
    )
}

/// `pool.__arrow_c_schema__()` of a keyed store.
pub(crate) fn keyed_schema<'py>(py: Python<'py>, pool: &PyKeyedStore) -> PyResult<Bound<'py, PyCapsule>> {
    let h = pool.handle();
    let key = {
        let g = h.data.lock()?;
        match &*g {
            Inner::Keyed(k) => key_of(k),
            _ => return Err(PyTypeError::new_err("not a keyed store")),
        }
    };
    let p = plan(&h.data.schema, Some((pool.key_name(), key)), None, None)?;
    schema_capsule(py, &p.schema())
}

/// `pool.__arrow_c_stream__(requested_schema)` of a keyed store.
pub(crate) fn keyed_stream<'py>(
    py: Python<'py>,
    pool: &PyKeyedStore,
    requested_schema: Option<&Bound<'py, PyAny>>,
    members: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyCapsule>> {
    stream_capsule(
        py,
        guarded(|| keyed_batches(pool.handle(), pool.key_name(), members, requested_schema))?,
    )
}

/// Take `key_name` out of a keyed store constructor's keyword arguments: `(the others, key_name)`.
pub(crate) fn split_key_name<'py>(
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<(Option<Bound<'py, PyDict>>, Option<String>)> {
    let Some(kw) = kwargs else { return Ok((None, None)) };
    let Some(v) = kw.get_item("key_name")? else {
        return Ok((Some(kw.clone()), None));
    };
    let rest = kw.copy()?;
    rest.del_item("key_name")?;
    Ok((Some(rest), key_name_arg(Some(&v))?))
}

/// A `key_name` argument: `None` or a str.
pub(crate) fn key_name_arg(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => Ok(Some(
            v.cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("key_name must be a str"))?
                .to_str()?
                .to_owned(),
        )),
    }
}

/// `ValueError` if `key_name` is also a member's name.
pub(crate) fn check_key_name(schema: &compactstore::Schema, key_name: Option<&str>) -> PyResult<()> {
    match key_name {
        Some(n) if schema.index_of(n).is_ok() => Err(PyValueError::new_err(format!(
            "key_name {n:?} is also a member's name: the key column needs a name of its own"
        ))),
        _ => Ok(()),
    }
}

/// Record batches read from an Arrow producer (`from_arrow`): the whole stream, read once.
#[pyclass(frozen, module = "compactstore._native", name = "_ArrowData")]
pub struct PyArrowData {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

/// Read everything an object with `__arrow_c_stream__` or `__arrow_c_array__` produces.
#[pyfunction]
#[pyo3(name = "_arrow_read")]
pub fn arrow_read(data: &Bound<'_, PyAny>) -> PyResult<PyArrowData> {
    let py = data.py();
    if data.hasattr("__arrow_c_stream__")? {
        let capsule = data.call_method0("__arrow_c_stream__")?;
        let capsule = capsule
            .cast::<PyCapsule>()
            .map_err(|_| PyTypeError::new_err("__arrow_c_stream__ did not return a PyCapsule"))?;
        let ptr = capsule.pointer_checked(Some(STREAM))?;
        #[allow(unsafe_code)]
        // SAFETY: an "arrow_array_stream" capsule holds an `ArrowArrayStream` C struct (the PyCapsule
        // interface); `from_raw` moves it out and marks the capsule's copy released, so the capsule's
        // destructor does not release it again (tests/test_arrow_import.py reads such capsules).
        let reader = unsafe { RecordBatchStreamReader::from_raw(ptr.as_ptr().cast()) }.map_err(arrow_err)?;
        let schema = compactstore::arrow::arrow_array::RecordBatchReader::schema(&reader);
        let batches = py
            .detach(|| reader.collect::<Result<Vec<_>, _>>())
            .map_err(arrow_err)?;
        return Ok(PyArrowData { schema, batches });
    }
    if data.hasattr("__arrow_c_array__")? {
        let pair = data.call_method0("__arrow_c_array__")?;
        let pair = pair
            .cast::<PyTuple>()
            .map_err(|_| PyTypeError::new_err("__arrow_c_array__ did not return a tuple"))?;
        let schema_caps = pair.get_item(0)?;
        let array_caps = pair.get_item(1)?;
        let schema_caps = schema_caps.cast::<PyCapsule>()?;
        let array_caps = array_caps.cast::<PyCapsule>()?;
        let sp = schema_caps.pointer_checked(Some(SCHEMA))?;
        let ap = array_caps.pointer_checked(Some(ARRAY))?;
        #[allow(unsafe_code)]
        // SAFETY: the capsules hold an `ArrowSchema` and an `ArrowArray` C struct (the PyCapsule
        // interface); the schema is only read, the array is moved out (`from_raw` marks the capsule's copy
        // released, so its destructor does nothing) and imported with that schema.
        let data = unsafe {
            let schema = &*sp.as_ptr().cast::<FFI_ArrowSchema>();
            let array = FFI_ArrowArray::from_raw(ap.as_ptr().cast());
            from_ffi(array, schema)
        }
        .map_err(arrow_err)?;
        if !matches!(data.data_type(), DataType::Struct(_)) {
            return Err(PyTypeError::new_err(format!(
                "from_arrow takes a table or record batch; __arrow_c_array__ gave a {} array",
                data.data_type()
            )));
        }
        let batch = RecordBatch::from(StructArray::from(data));
        return Ok(PyArrowData {
            schema: batch.schema(),
            batches: vec![batch],
        });
    }
    Err(PyTypeError::new_err(format!(
        "from_arrow takes an Arrow producer (an object with __arrow_c_stream__ or __arrow_c_array__: a pyarrow \
         Table or RecordBatch, a polars DataFrame, a DuckDB result), not {}",
        data.get_type().name()?
    )))
}

#[pymethods]
impl PyArrowData {
    /// The members a store type needs for the columns (but `key`): `[(name, type parts)]`.
    #[pyo3(signature = (key = None))]
    fn infer<'py>(&self, py: Python<'py>, key: Option<&str>) -> PyResult<Bound<'py, PyList>> {
        self.check_key(key)?;
        let members = ca::infer_members(&self.schema, &self.batches, key).map_err(convert_err)?;
        let items = members
            .iter()
            .map(|m| Ok((m.name(), crate::schema::type_parts(py, m.ty())?)))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// The column names, in order.
    fn names(&self) -> Vec<String> {
        self.schema.fields().iter().map(|f| f.name().clone()).collect()
    }

    /// Number of rows.
    fn __len__(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// A dynamic store of class `cls` (the per-type class of `store_type`) holding the rows.
    fn to_dynamic<'py>(
        &self,
        cls: &Bound<'py, PyType>,
        store_type: &Bound<'py, PyType>,
        log2size: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let schema = schema_of(store_type)?;
        let schema = schema.bind(py).get();
        let k = match log2size {
            Some(k) if !k.is_none() => crate::args::log2size_arg(k)?,
            _ => compactstore::DEFAULT_LOG2SIZE,
        };
        let (arrow, batches) = (&self.schema, &self.batches);
        let d = crate::error::interruptible(py, || {
            guarded(|| ca::import_dynamic(schema.schema.clone(), k, arrow, batches).map_err(convert_err))
        })?;
        let (names, aliases) = schema.names_ref(py);
        let store = PyStore {
            h: Handle {
                data: Shared::new(Inner::Dynamic(d), names, aliases),
                chunk: None,
                chunk_uid: 0,
            },
            parent: None,
        };
        Made::instance(
            &py.get_type::<crate::dynamic_store::PyDynamicStore>(),
            cls,
            (store, store_type.clone().unbind()),
        )
    }

    /// A keyed store of class `cls` over `store_type`, keyed by column `key` (named so in exports).
    fn to_keyed<'py>(
        &self,
        cls: &Bound<'py, PyType>,
        store_type: &Bound<'py, PyType>,
        key: &str,
        log2size: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        self.check_key(Some(key))?;
        let schema = schema_of(store_type)?;
        let schema = schema.bind(py).get().schema.clone();
        check_key_name(&schema, Some(key))?;
        let k = match log2size {
            Some(k) if !k.is_none() => crate::args::log2size_arg(k)?,
            _ => compactstore::DEFAULT_KEYED_LOG2SIZE,
        };
        let t = self
            .schema
            .field_with_name(key)
            .map_err(arrow_err)?
            .data_type()
            .clone();
        let kind = ca::key_type_of(&t).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "column {key:?}: a key column is of an int, string or binary type, not {t}"
            ))
        })?;
        let (arrow, batches) = (&self.schema, &self.batches);
        let inner = crate::error::interruptible(py, || {
            guarded(|| {
                fn build<K: ArrowKey>(
                    s: Arc<compactstore::Schema>,
                    k: u32,
                    a: &ArrowSchema,
                    b: &[RecordBatch],
                    key: &str,
                ) -> PyResult<KeyedStore<K>> {
                    ca::import_keyed::<K>(s, k, a, b, key).map_err(convert_err)
                }
                Ok(match kind {
                    "u64" => AnyKeyed::U64(build(schema.clone(), k, arrow, batches, key)?),
                    "str" => AnyKeyed::Str(build(schema.clone(), k, arrow, batches, key)?),
                    "bytes" => AnyKeyed::Bytes(build(schema.clone(), k, arrow, batches, key)?),
                    _ => AnyKeyed::I64(build(schema.clone(), k, arrow, batches, key)?),
                })
            })
        })?;
        let pool = PyKeyedStore::from_inner(store_type, inner, Some(key.to_owned()))?;
        Made::instance(&py.get_type::<PyKeyedStore>(), cls, pool)
    }
}

impl PyArrowData {
    fn check_key(&self, key: Option<&str>) -> PyResult<()> {
        match key {
            Some(k) if self.schema.index_of(k).is_err() => Err(PyValueError::new_err(format!(
                "column {k:?}: no such column to key the store by"
            ))),
            _ => Ok(()),
        }
    }
}

/// Add the Arrow classes and functions to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyArrowData>()?;
    m.add_function(wrap_pyfunction!(arrow_read, m)?)?;
    Ok(())
}
