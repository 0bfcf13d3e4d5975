//! `KeyedStore`: a dict of entries, key → live `Entry`, over the engine's keyed store.

use std::sync::atomic::{AtomicPtr, Ordering};

use compactstore::{DynamicStore, KeyedStore, MemberType, Store, Value, DEFAULT_KEYED_LOG2SIZE};
use numpy::PyReadonlyArray1;
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyCapsule, PyDict, PyList, PyMemoryView, PyString, PyTuple, PyType};
use pyo3::Borrowed;

use crate::container::{PyContainer, ScalarPy};
use crate::convert::{member_value, object_of, scalar_value, to_object};
use crate::entry::PyEntry;
use crate::error::{in_member, ToPyResult};
use crate::iter::{PyEntryIterator, PyKeyedItems, PyKeyedKeys, PyKeyedValues, Yield};
use crate::schema::PySchema;
use crate::shared::{Handle, Inner, Shared};
use crate::store::{convert_members, Made, Members};

/// What `from_columns` loads: the keys, the byte columns `(member, bytes)` and the value columns
/// `(member, values)`.
type Bulk<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    Vec<(String, PyReadonlyArray1<'py, u8>)>,
    Vec<(String, Bound<'py, PyList>)>,
);

/// `key`, `log2size` and `ignore_unknown` from the constructor's arguments after the store type. With
/// `strict` (the class runs `KeyedStore.__init__`) they are the public signature's, checked as Python
/// checks a call; else (a subclass's own `__init__` takes the arguments) only those given by keyword.
fn constructor_args<'py>(
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
    strict: bool,
) -> PyResult<[Option<Bound<'py, PyAny>>; 3]> {
    const NAMES: [&str; 3] = ["key", "log2size", "ignore_unknown"];
    let mut out: [Option<Bound<'py, PyAny>>; 3] = [None, None, None];
    if strict {
        if args.len() > NAMES.len() {
            return Err(PyTypeError::new_err(format!(
                "KeyedStore() takes at most {} positional arguments ({} given)",
                NAMES.len() + 1,
                args.len() + 1
            )));
        }
        for (slot, arg) in out.iter_mut().zip(args.iter()) {
            *slot = Some(arg);
        }
    }
    for (k, v) in kwargs.into_iter().flat_map(|d| d.iter()) {
        let name = k.cast::<PyString>()?.to_str()?.to_owned();
        match NAMES.iter().position(|n| *n == name) {
            Some(i) if out[i].is_some() => {
                return Err(PyTypeError::new_err(format!(
                    "KeyedStore() got multiple values for argument '{name}'"
                )))
            }
            Some(i) => out[i] = Some(v),
            None if strict => {
                return Err(PyTypeError::new_err(format!(
                    "KeyedStore() got an unexpected keyword argument '{name}'"
                )))
            }
            None => {}
        }
    }
    Ok(out)
}

/// The key type and log2size a keyed store is made with (`None` or an absent argument: i64 keys and
/// the default log2size), as the constructor and `__init__` read them.
fn keyed_args(
    key: Option<&Bound<'_, PyAny>>,
    log2size: Option<&Bound<'_, PyAny>>,
) -> PyResult<(KeyKind, u32)> {
    let kind = match key {
        Some(k) if !k.is_none() => key_kind(k)?,
        _ => KeyKind::I64,
    };
    let k = match log2size {
        Some(k) if !k.is_none() => crate::args::log2size_arg(k)?,
        _ => DEFAULT_KEYED_LOG2SIZE,
    };
    Ok((kind, k))
}

/// The engine keyed store for each key type.
pub enum AnyKeyed {
    I64(KeyedStore<i64>),
    U64(KeyedStore<u64>),
    Str(KeyedStore<String>),
    Bytes(KeyedStore<Vec<u8>>),
}

macro_rules! on_keyed {
    ($k:expr, $s:ident => $e:expr) => {
        match $k {
            AnyKeyed::I64($s) => $e,
            AnyKeyed::U64($s) => $e,
            AnyKeyed::Str($s) => $e,
            AnyKeyed::Bytes($s) => $e,
        }
    };
}

/// `$e` with `$K` the engine key type of `kind`.
macro_rules! on_kind {
    ($kind:expr, $K:ident => $e:expr) => {
        match $kind {
            KeyKind::I64 => {
                type $K = i64;
                $e
            }
            KeyKind::U64 => {
                type $K = u64;
                $e
            }
            KeyKind::Str => {
                type $K = String;
                $e
            }
            KeyKind::Bytes => {
                type $K = Vec<u8>;
                $e
            }
        }
    };
}

/// The key type of a keyed store.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    I64,
    U64,
    Str,
    Bytes,
}

/// A converted key, borrowed from its Python object where it can be (a str or bytes key is not copied).
#[derive(Clone, Copy)]
enum PyKey<'a> {
    I(i64),
    U(u64),
    S(&'a str),
    B(&'a [u8]),
}

/// What the bindings need of each engine key type: the key in a [`PyKey`], the keys of `from_columns`,
/// a stored key as a Python object, and the [`AnyKeyed`] arm.
trait PyKeyType: compactstore::Key + std::borrow::Borrow<<Self as compactstore::Key>::Borrowed> {
    /// The key as this type's borrowed form (`None` for a key of another type).
    fn of<'b>(k: &'b PyKey<'_>) -> Option<&'b Self::Borrowed>;
    /// `f` over the keys of `from_columns` (an int array is not copied).
    fn with_keys<R>(keys: &Bound<'_, PyAny>, f: impl FnOnce(&[Self]) -> PyResult<R>) -> PyResult<R>;
    fn to_py<'py>(py: Python<'py>, k: &Self::Borrowed) -> PyResult<Bound<'py, PyAny>>;
    fn wrap(s: KeyedStore<Self>) -> AnyKeyed;
}

macro_rules! py_key_type {
    ($t:ty, $arm:ident, $v:ident, $k:ident => $of:expr, $keys:ident, $f:ident => $with:expr, $py:ident, $x:ident => $to:expr) => {
        impl PyKeyType for $t {
            #[inline(always)]
            fn of<'b>($k: &'b PyKey<'_>) -> Option<&'b Self::Borrowed> {
                match $k {
                    PyKey::$v($k) => Some($of),
                    _ => None,
                }
            }
            fn with_keys<R>(
                $keys: &Bound<'_, PyAny>,
                $f: impl FnOnce(&[Self]) -> PyResult<R>,
            ) -> PyResult<R> {
                $with
            }
            fn to_py<'py>($py: Python<'py>, $x: &Self::Borrowed) -> PyResult<Bound<'py, PyAny>> {
                $to
            }
            fn wrap(s: KeyedStore<Self>) -> AnyKeyed {
                AnyKeyed::$arm(s)
            }
        }
    };
}

py_key_type!(i64, I64, I, k => k, keys, f => {
    let a: PyReadonlyArray1<'_, i64> = keys.extract()?;
    f(a.as_slice()?)
}, py, x => Ok(x.into_pyobject(py)?.into_any()));
py_key_type!(u64, U64, U, k => k, keys, f => {
    let a: PyReadonlyArray1<'_, u64> = keys.extract()?;
    f(a.as_slice()?)
}, py, x => Ok(x.into_pyobject(py)?.into_any()));
py_key_type!(String, Str, S, k => *k, keys, f => f(&keys.extract::<Vec<String>>()?),
    py, x => crate::convert::py_str(py, x));
py_key_type!(Vec<u8>, Bytes, B, k => *k, keys, f => f(&keys.extract::<Vec<Vec<u8>>>()?),
    py, x => crate::convert::py_bytes(py, x));

/// A new keyed store of key type `K`, loaded from `keys` and the columns.
fn from_columns<K: PyKeyType>(
    py: Python<'_>,
    schema: std::sync::Arc<compactstore::Schema>,
    log2size: u32,
    keys: &Bound<'_, PyAny>,
    cols: &[(usize, &[u8])],
    vals: &[(usize, &[Value])],
) -> PyResult<AnyKeyed> {
    K::with_keys(keys, |a| {
        crate::error::interruptible(py, || {
            KeyedStore::<K>::from_columns_and_values(schema, log2size, a, cols, vals).py()
        })
    })
    .map(K::wrap)
}

/// The key `k` in `s`'s borrowed key type (`None` for a key of another type).
#[inline(always)]
fn key_in<'b, K: PyKeyType>(_: &KeyedStore<K>, k: &'b PyKey<'_>) -> Option<&'b K::Borrowed> {
    K::of(k)
}

fn clear_modified_keys<K: PyKeyType>(s: &mut KeyedStore<K>, keys: &[PyKey<'_>]) {
    s.clear_modified_keys(keys.iter().filter_map(K::of))
}

fn key_object<'py, K: PyKeyType>(
    py: Python<'py>,
    s: &KeyedStore<K>,
    slot: usize,
) -> PyResult<Bound<'py, PyAny>> {
    K::to_py(
        py,
        s.key_at(slot)
            .ok_or_else(|| PyKeyError::new_err(format!("no key at slot {slot}")))?,
    )
}

impl AnyKeyed {
    /// See [`KeyedStore::set_scalar`].
    #[inline]
    pub fn set_scalar(&mut self, slot: usize, m: usize, x: compactstore::Scalar) -> compactstore::Result<()> {
        on_keyed!(self, s => s.set_scalar(slot, m, x))
    }

    /// See [`KeyedStore::update`].
    pub fn update(
        &mut self,
        slot: usize,
        generation: u32,
        values: &[(usize, Value)],
    ) -> compactstore::Result<()> {
        on_keyed!(self, s => s.update(slot, generation, values))
    }

    /// See [`KeyedStore::scatter_values`].
    pub fn scatter_values(
        &mut self,
        m: usize,
        indices: &[usize],
        values: &[Value],
    ) -> compactstore::Result<()> {
        on_keyed!(self, s => s.scatter_values(m, indices, values))
    }

    /// See [`KeyedStore::reserve_member_writes`].
    pub fn reserve_member_writes(
        &mut self,
        m: usize,
        writes: &[(usize, &Value)],
    ) -> compactstore::Result<()> {
        on_keyed!(self, s => s.reserve_member_writes(m, writes))
    }

    /// See [`KeyedStore::replace_object`].
    pub fn replace_object(
        &mut self,
        slot: usize,
        m: usize,
        obj: compactstore::ObjectRef,
    ) -> compactstore::Result<()> {
        on_keyed!(self, s => s.replace_object(slot, m, obj))
    }

    /// An independent copy (see [`KeyedStore::try_clone`]).
    pub fn try_clone(&self) -> compactstore::Result<AnyKeyed> {
        Ok(on_keyed!(self, s => PyKeyType::wrap(s.try_clone()?)))
    }

    pub fn store(&self) -> &DynamicStore {
        on_keyed!(self, s => s.store())
    }

    pub fn set(&mut self, slot: usize, m: usize, v: &Value) -> compactstore::Result<()> {
        on_keyed!(self, s => s.set(slot, m, v))
    }

    pub fn take_objects(&mut self) -> Vec<compactstore::ObjectRef> {
        on_keyed!(self, s => s.take_objects())
    }

    pub fn set_element(&mut self, slot: usize, m: usize, k: usize, v: &Value) -> compactstore::Result<()> {
        on_keyed!(self, s => s.set_element(slot, m, k, v))
    }

    #[inline]
    fn index_of(&self, k: &PyKey<'_>) -> Option<usize> {
        on_keyed!(self, s => s.index_of(key_in(s, k)?))
    }

    /// Insert or replace; a key of another type than the store's (not expected: keys are converted for
    /// the store's key type) is a `TypeError`.
    fn insert(&mut self, k: &PyKey<'_>, values: &[(usize, Value)]) -> PyResult<(usize, bool)> {
        on_keyed!(self, s => match key_in(s, k) {
            Some(k) => s.insert(k, values).py(),
            None => Err(PyTypeError::new_err("the key's type is not this store's key type")),
        })
    }

    /// [`AnyKeyed::insert`] of typed scalars (see [`KeyedStore::insert_scalars`]).
    fn insert_scalars(
        &mut self,
        k: &PyKey<'_>,
        values: &[(usize, compactstore::Scalar)],
    ) -> PyResult<(usize, bool)> {
        on_keyed!(self, s => match key_in(s, k) {
            Some(k) => s.insert_scalars(k, values).py(),
            None => Err(PyTypeError::new_err("the key's type is not this store's key type")),
        })
    }

    fn take(&mut self, k: &PyKey<'_>) -> Option<Vec<Value>> {
        on_keyed!(self, s => s.take(key_in(s, k)?))
    }

    pub(crate) fn key_object<'py>(&self, py: Python<'py>, slot: usize) -> PyResult<Bound<'py, PyAny>> {
        on_keyed!(self, s => key_object(py, s, slot))
    }

    fn slots(&self) -> Vec<usize> {
        on_keyed!(self, s => s.iter().map(|(_, slot)| slot).collect())
    }

    fn modified_slots(&self) -> Vec<usize> {
        on_keyed!(self, s => s.modified_slots().collect())
    }
}

/// Convert a key for storing: the wrong type → `TypeError`, an int out of range → `OverflowError`.
fn key_for_store<'a>(kind: KeyKind, obj: &'a Bound<'_, PyAny>) -> PyResult<PyKey<'a>> {
    // The common case first: an exact int that fits.
    if let Some(k) = int_key(kind, obj) {
        return Ok(k);
    }
    let wrong = || {
        let name = match kind {
            KeyKind::I64 => "an int (i64)",
            KeyKind::U64 => "an int (u64)",
            KeyKind::Str => "a str",
            KeyKind::Bytes => "bytes",
        };
        PyTypeError::new_err(format!("keys of this store are {name}"))
    };
    match kind {
        KeyKind::Str => Ok(PyKey::S(obj.cast::<PyString>().map_err(|_| wrong())?.to_str()?)),
        KeyKind::Bytes => Ok(PyKey::B(obj.cast::<PyBytes>().map_err(|_| wrong())?.as_bytes())),
        KeyKind::I64 | KeyKind::U64 => {
            if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
                return Err(wrong());
            }
            let v = match scalar_value(obj) {
                Ok(v @ (Value::Int(_) | Value::UInt(_) | Value::Bool(_))) => v,
                Ok(_) => return Err(wrong()),
                Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(obj.py()) => return Err(e),
                Err(_) => return Err(wrong()),
            };
            let d = if kind == KeyKind::I64 {
                compactstore::Dtype::I64
            } else {
                compactstore::Dtype::U64
            };
            match d.canonical(&v).py()? {
                Value::Int(i) => Ok(PyKey::I(i)),
                Value::UInt(u) => Ok(PyKey::U(u)),
                _ => Err(wrong()),
            }
        }
    }
}

/// An exact `int` that fits an int-keyed store's key type (`None` for anything else): the common key,
/// converted without the general path.
#[inline(always)]
fn int_key(kind: KeyKind, obj: &Bound<'_, PyAny>) -> Option<PyKey<'static>> {
    if !obj.is_exact_instance_of::<pyo3::types::PyInt>() {
        return None;
    }
    match kind {
        KeyKind::I64 => {
            let mut overflow = 0;
            // SAFETY: `obj` is a valid exact int (checked above) and the caller holds the GIL; an int
            // beyond i64 only sets `overflow` (no exception is raised).
            #[allow(unsafe_code)]
            let v = unsafe { pyo3::ffi::PyLong_AsLongLongAndOverflow(obj.as_ptr(), &mut overflow) };
            (overflow == 0).then_some(PyKey::I(v))
        }
        KeyKind::U64 => obj.extract::<u64>().ok().map(PyKey::U),
        KeyKind::Str | KeyKind::Bytes => None,
    }
}

/// Convert a key for a lookup: anything that could not be stored finds nothing (`None`).
#[inline(always)]
fn key_for_lookup<'a>(kind: KeyKind, obj: &'a Bound<'_, PyAny>) -> Option<PyKey<'a>> {
    if let Some(k) = int_key(kind, obj) {
        return Some(k);
    }
    match kind {
        KeyKind::Str => obj.cast::<PyString>().ok()?.to_str().ok().map(PyKey::S),
        KeyKind::Bytes => obj.cast::<PyBytes>().ok().map(|b| PyKey::B(b.as_bytes())),
        KeyKind::I64 | KeyKind::U64 => key_for_store(kind, obj).ok(),
    }
}

fn key_kind(key: &Bound<'_, PyAny>) -> PyResult<KeyKind> {
    let np = key.py().import("numpy")?;
    if key.is(&np.getattr("int64")?) || key.is(key.py().get_type::<pyo3::types::PyInt>()) {
        return Ok(KeyKind::I64);
    }
    if key.is(&np.getattr("uint64")?) {
        return Ok(KeyKind::U64);
    }
    if key.is(key.py().get_type::<PyString>())
        || key.getattr("__name__").is_ok_and(|n| n.to_string() == "Str")
    {
        return Ok(KeyKind::Str);
    }
    if key.is(key.py().get_type::<PyBytes>())
        || key.getattr("__name__").is_ok_and(|n| n.to_string() == "Bytes")
    {
        return Ok(KeyKind::Bytes);
    }
    Err(PyTypeError::new_err(
        "key must be cs.i64, cs.u64, cs.Str or cs.Bytes",
    ))
}

/// A dict of entries: key → live `Entry`, backed by a dynamic store and a Rust hash index.
/// `KeyedStore(Genes, key=cs.i64, log2size=16, ignore_unknown=False)`.
///
/// Memory the allocator refuses raises `MemoryError`, and the call changes nothing.
#[pyclass(
    subclass,
    frozen,
    weakref,
    module = "compactstore._native",
    name = "KeyedStore"
)]
pub struct PyKeyedStore {
    h: Handle,
    /// The key type (fixed at construction, so lookups need no lock to know it).
    key_kind: KeyKind,
    ignore_unknown: bool,
    store_type: Py<PyType>,
    /// The key column's name in Arrow exports (`key_name=`; "key" if `None`).
    key_name: Option<String>,
    /// The last Entry `pool[key]` made, kept for reuse (see [`EntryCache`]); only for a schema without
    /// object members, whose entries keep no owner alive.
    cache: EntryCache,
}

/// One Entry a keyed store keeps for reuse: `pool[key]` whose result is dropped right after use (`pool[k][n]`)
/// leaves it with no reference but this one, and the next `pool[key]` points it at its own key instead of
/// making a new object (the fast path in `fastpath.rs`). An owned reference, or null.
pub(crate) struct EntryCache(AtomicPtr<pyo3::ffi::PyObject>);

impl EntryCache {
    fn new() -> EntryCache {
        EntryCache(AtomicPtr::new(std::ptr::null_mut()))
    }

    /// The cached Entry (borrowed; null if none).
    #[inline]
    pub(crate) fn get(&self) -> *mut pyo3::ffi::PyObject {
        self.0.load(Ordering::Relaxed)
    }

    /// Keep `entry` instead of the cached one, which is released (through PyO3: the caller is a PyO3
    /// method, attached, so the reference drops at once).
    fn put(&self, py: Python<'_>, entry: &Bound<'_, PyEntry>) {
        let old = self.0.swap(entry.clone().into_ptr(), Ordering::Relaxed);
        if !old.is_null() {
            // SAFETY: `old` is the owned reference `put` stored before.
            #[allow(unsafe_code)]
            drop(unsafe { Bound::<PyAny>::from_owned_ptr(py, old) });
        }
    }
}

impl Drop for EntryCache {
    fn drop(&mut self) {
        let old = std::mem::replace(self.0.get_mut(), std::ptr::null_mut());
        if !old.is_null() {
            // SAFETY: `old` is an owned reference (see `put`); the cache drops with its keyed store, in
            // the store's deallocation, which CPython runs with the GIL held.
            #[allow(unsafe_code)]
            unsafe {
                pyo3::ffi::Py_DECREF(old);
            }
        }
    }
}

impl PyKeyedStore {
    /// The shared store (for the views and iterators).
    pub(crate) fn handle(&self) -> &Handle {
        &self.h
    }

    /// The key column's name in Arrow exports.
    pub(crate) fn key_name(&self) -> &str {
        self.key_name.as_deref().unwrap_or("key")
    }

    /// A keyed store object of `store_type` holding `inner` (an Arrow import), its key column `key_name`.
    pub(crate) fn from_inner(
        store_type: &Bound<'_, PyType>,
        inner: AnyKeyed,
        key_name: Option<String>,
    ) -> PyResult<Self> {
        let py = store_type.py();
        let key_kind = match &inner {
            AnyKeyed::I64(_) => KeyKind::I64,
            AnyKeyed::U64(_) => KeyKind::U64,
            AnyKeyed::Str(_) => KeyKind::Str,
            AnyKeyed::Bytes(_) => KeyKind::Bytes,
        };
        let schema = crate::store::schema_of(store_type)?;
        let (names, aliases) = schema.bind(py).get().names_ref(py);
        Ok(PyKeyedStore {
            h: Handle {
                data: Shared::new(Inner::Keyed(inner), names, aliases),
                chunk: None,
                chunk_uid: 0,
            },
            key_kind,
            ignore_unknown: false,
            store_type: store_type.clone().unbind(),
            key_name,
            cache: EntryCache::new(),
        })
    }

    /// A new keyed store object of this one's class with a copy of its data (object members hold the
    /// same objects, with references of their own), made without running `__init__`; its Python-level
    /// state is the caller's to copy.
    fn copy_with<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let inner = crate::error::interruptible(py, || this.with(|ks| ks.try_clone().py()))?;
        let (names, aliases) = this.h.data.names_ref(py);
        let h = Handle {
            data: Shared::new(Inner::Keyed(inner), names, aliases),
            chunk: None,
            chunk_uid: 0,
        };
        crate::store::own_objects(py, &h, None)?;
        let copy = PyKeyedStore {
            h,
            key_kind: this.key_kind,
            ignore_unknown: this.ignore_unknown,
            store_type: this.store_type.clone_ref(py),
            key_name: this.key_name.clone(),
            cache: EntryCache::new(),
        };
        Made::instance(&py.get_type::<PyKeyedStore>(), &slf.get_type(), copy)
    }

    /// A keyed store object of class `cls` over the handle of a loaded store.
    pub(crate) fn made<'py>(
        py: Python<'py>,
        cls: &Bound<'py, PyType>,
        h: Handle,
        store_type: Py<PyType>,
        ignore_unknown: bool,
        key_name: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key_kind = match &*h.data.lock()? {
            Inner::Keyed(AnyKeyed::I64(_)) => KeyKind::I64,
            Inner::Keyed(AnyKeyed::U64(_)) => KeyKind::U64,
            Inner::Keyed(AnyKeyed::Str(_)) => KeyKind::Str,
            Inner::Keyed(AnyKeyed::Bytes(_)) => KeyKind::Bytes,
            _ => return Err(PyTypeError::new_err("not a keyed store")),
        };
        let store = PyKeyedStore {
            h,
            key_kind,
            ignore_unknown,
            store_type,
            key_name,
            cache: EntryCache::new(),
        };
        Made::instance(&py.get_type::<PyKeyedStore>(), cls, store)
    }

    /// A new keyed store of `store_type`; with `bulk` (keys, byte columns, value columns), loaded from
    /// them (`from_columns`).
    fn build(
        store_type: &Bound<'_, PyAny>,
        key: Option<&Bound<'_, PyAny>>,
        log2size: Option<&Bound<'_, PyAny>>,
        ignore_unknown: bool,
        bulk: Option<Bulk<'_, '_>>,
        key_name: Option<String>,
    ) -> PyResult<Self> {
        let py = store_type.py();
        let store_type = store_type
            .cast::<PyType>()
            .map_err(|_| PyTypeError::new_err("KeyedStore takes a store type (a StaticStore subclass)"))?;
        let schema_obj = store_type
            .getattr("_cs_schema")
            .map_err(|_| PyTypeError::new_err("KeyedStore takes a store type (a StaticStore subclass)"))?;
        let schema_obj = schema_obj
            .cast_into::<PySchema>()
            .map_err(|_| PyTypeError::new_err("bad store type"))?;
        let schema = schema_obj.get().schema.clone();
        crate::arrow::check_key_name(&schema, key_name.as_deref())?;
        let (kind, k) = keyed_args(key, log2size)?;
        let inner = match bulk {
            Some((keys, columns, values)) => {
                let cols: Vec<(usize, &[u8])> = columns
                    .iter()
                    .map(|(name, arr)| Ok((schema.index_of(name).py()?, arr.as_slice()?)))
                    .collect::<PyResult<_>>()?;
                // Members without a byte layout (str, bytes, interned, optional, object): lists of values,
                // each converted as a write converts it.
                let vals: Vec<(usize, Vec<Value>)> = values
                    .iter()
                    .map(|(name, list)| {
                        let m = schema.index_of(name).py()?;
                        let ty = schema.member(m).py()?.ty();
                        Ok((
                            m,
                            list.iter()
                                .enumerate()
                                .map(|(i, x)| {
                                    crate::error::check_signals_every(py, i, 1 << 20)?;
                                    member_value(&x, ty).map_err(|e| in_member(py, e, name))
                                })
                                .collect::<PyResult<Vec<_>>>()?,
                        ))
                    })
                    .collect::<PyResult<_>>()?;
                let vals: Vec<(usize, &[Value])> = vals.iter().map(|(m, v)| (*m, v.as_slice())).collect();
                on_kind!(kind, K => from_columns::<K>(py, schema, k, keys, &cols, &vals)?)
            }
            None => on_kind!(kind, K => K::wrap(KeyedStore::new(schema, k).py()?)),
        };
        let (names, aliases) = schema_obj.get().names_ref(py);
        Ok(PyKeyedStore {
            key_kind: kind,
            h: Handle {
                data: Shared::new(Inner::Keyed(inner), names, aliases),
                chunk: None,
                chunk_uid: 0,
            },
            ignore_unknown,
            store_type: store_type.clone().unbind(),
            key_name,
            cache: EntryCache::new(),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&AnyKeyed) -> PyResult<R>) -> PyResult<R> {
        let g = self.h.data.lock()?;
        match &*g {
            Inner::Keyed(k) => f(k),
            _ => Err(PyTypeError::new_err("not a keyed store")),
        }
    }

    /// As [`Self::with_mut`] for a call that adds, removes or clears entries or modified marks: refused
    /// first (`TypeError`) for a store mapped read-only or in place, whose engine refuses such calls by
    /// doing nothing.
    fn with_structural<R>(&self, what: &str, f: impl FnOnce(&mut AnyKeyed) -> PyResult<R>) -> PyResult<R> {
        self.with_mut(|ks| {
            on_keyed!(ks, s => s.access().check_structure(what)).py()?;
            f(ks)
        })
    }

    fn with_mut<R>(&self, f: impl FnOnce(&mut AnyKeyed) -> PyResult<R>) -> PyResult<R> {
        let mut g = self.h.data.lock()?;
        match &mut *g {
            Inner::Keyed(k) => f(k),
            _ => Err(PyTypeError::new_err("not a keyed store")),
        }
    }

    /// Whether `pool[key]` keeps its Entry for reuse: a schema without object members, whose entries
    /// need not keep the store object alive (see [`EntryCache`]).
    #[inline]
    fn reuses_entries(&self) -> bool {
        !self
            .h
            .data
            .schema
            .members()
            .iter()
            .any(|m| *m.ty() == MemberType::Object)
    }

    /// The key as the store takes it, for the hot paths: an exact `int` that fits (int keys), an exact
    /// `str` (valid UTF-8) or `bytes`; `None` for anything else, which the general path converts.
    #[inline(always)]
    fn fast_key<'a>(&self, key: &'a Bound<'_, PyAny>) -> Option<PyKey<'a>> {
        match self.key_kind {
            KeyKind::I64 | KeyKind::U64 => int_key(self.key_kind, key),
            KeyKind::Str if key.is_exact_instance_of::<PyString>() => {
                key.cast::<PyString>().ok()?.to_str().ok().map(PyKey::S)
            }
            KeyKind::Bytes if key.is_exact_instance_of::<PyBytes>() => {
                key.cast::<PyBytes>().ok().map(|b| PyKey::B(b.as_bytes()))
            }
            KeyKind::Str | KeyKind::Bytes => None,
        }
    }

    /// `pool[key, name]` for a numeric scalar member, an interned member name and a key [`Self::fast_key`]
    /// takes: one lookup and a typed read, as a new reference. `None` for anything else (an absent key, an
    /// unknown member, a busy store, another member type): the general path runs and reports.
    #[inline]
    pub(crate) fn fast_member(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        name: *mut pyo3::ffi::PyObject,
    ) -> Option<*mut pyo3::ffi::PyObject> {
        let k = self.fast_key(key)?;
        let m = self.h.data.member_by_ptr(name)?;
        let x = {
            let g = self.h.data.try_lock()?;
            let Inner::Keyed(ks) = &*g else { return None };
            let slot = ks.index_of(&k)?;
            ks.store().scalar_at(slot, m)?
        };
        Some(x.to_object(py).into_ptr())
    }

    /// `pool[key, name] = value` for a key [`Self::fast_key`] takes, an interned member name, a numeric
    /// scalar member and a value that fits it as it is: one lookup and one typed write, which checks the
    /// rest (read-only, an entry in the slot), marks the key modified, and changes nothing on refusal.
    /// `false` for anything else: the general path runs and reports.
    #[inline]
    pub(crate) fn fast_set_member(
        &self,
        key: &Bound<'_, PyAny>,
        name: *mut pyo3::ffi::PyObject,
        value: &Bound<'_, PyAny>,
    ) -> bool {
        let Some((m, d)) = self.h.data.scalar_member_by_ptr(name) else {
            return false;
        };
        let (Some(k), Some(x)) = (
            self.fast_key(key),
            <compactstore::Scalar as ScalarPy>::of(value, d),
        ) else {
            return false;
        };
        let Some(mut g) = self.h.data.try_lock() else {
            return false;
        };
        let Inner::Keyed(ks) = &mut *g else { return false };
        match ks.index_of(&k) {
            Some(slot) => ks.set_scalar(slot, m, x).is_ok(),
            None => false,
        }
    }

    /// `pool[key]` through the cached Entry when nothing else references it: the entry is pointed at
    /// the key's slot and generation and returned as a new reference, with no allocation. `None` when
    /// there is no such Entry or the key is not one [`Self::fast_key`] takes or is absent: the general
    /// path then makes a new Entry (and keeps it for the next call).
    ///
    /// # Safety
    /// The caller is attached to the interpreter (a type slot CPython calls).
    #[allow(unsafe_code)]
    #[inline]
    pub(crate) unsafe fn fast_entry(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
    ) -> Option<*mut pyo3::ffi::PyObject> {
        let cached = self.cache.get();
        // SAFETY: `cached` is null or the live Entry the cache owns a reference to; reading its
        // reference count and weak-reference list is reading its header and a field of its layout.
        unsafe {
            if cached.is_null() || pyo3::ffi::Py_REFCNT(cached) != 1 || crate::fastpath::has_weakrefs(cached)
            {
                return None;
            }
        }
        let k = self.fast_key(key)?;
        let (slot, generation) = {
            let g = self.h.data.try_lock()?;
            let Inner::Keyed(ks) = &*g else { return None };
            let slot = ks.index_of(&k)?;
            (slot, ks.store().live_generation(slot)?)
        };
        // SAFETY: the cache holds only `PyEntry` objects (see `EntryCache::put`), alive while it does.
        let entry = unsafe { Borrowed::from_ptr(py, cached).cast_unchecked::<PyEntry>() };
        // SAFETY: the GIL is held (the caller's contract) and the cache's reference is the only one to the
        // Entry, with no weak reference (checked above), so nothing can read it while it is retargeted.
        let old = unsafe { entry.get().retarget(slot, generation, Some(key.clone().unbind())) };
        if let Some(old) = old {
            // The old key is an int, str or bytes (or whatever the general path stored): released now,
            // with the store unlocked.
            // SAFETY: `old` is an owned reference; the caller is attached.
            unsafe { pyo3::ffi::Py_DECREF(old.into_ptr()) };
        }
        // SAFETY: a new reference for the caller to return.
        unsafe { pyo3::ffi::Py_INCREF(cached) };
        Some(cached)
    }

    fn member_index(&self, name: &Bound<'_, PyAny>) -> PyResult<usize> {
        self.h.data.member_of(name)
    }

    /// Convert a mapping of member values, honouring `ignore_unknown`.
    fn values_of(&self, mapping: &Bound<'_, PyAny>) -> PyResult<Vec<(usize, Value)>> {
        let how = Members {
            check: true,
            ignore_unknown: self.ignore_unknown,
            mapping_only: Some("a keyed store's values are mappings of member values"),
        };
        convert_members(&self.h, Some(mapping), None, how)
    }

    fn snapshot<'py>(&self, py: Python<'py>, values: Vec<Value>) -> PyResult<Bound<'py, PyDict>> {
        let schema = &self.h.data.schema;
        let d = PyDict::new(py);
        for ((m, v), name) in values.into_iter().enumerate().zip(self.h.data.names.iter()) {
            d.set_item(
                name.bind(py),
                to_object(py, v, schema.member(m).py()?.ty().values_dtype())?,
            )?;
        }
        Ok(d)
    }
}

#[pymethods]
impl PyKeyedStore {
    /// A keyed store of `store_type`. The arguments after `store_type` are the public signature's, or,
    /// for a subclass with an `__init__` of its own (which may take other arguments), the `key`,
    /// `log2size` and `ignore_unknown` given by keyword (the rest are that `__init__`'s). Copies and
    /// `from_columns` come in through a [`Made`] instead.
    #[new]
    #[classmethod]
    #[pyo3(
        signature = (store_type, *args, **kwargs),
        text_signature = "(store_type, key=None, log2size=None, ignore_unknown=False, *, key_name=None)"
    )]
    fn new(
        cls: &Bound<'_, PyType>,
        store_type: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        if let (0, None) = (args.len(), kwargs) {
            if let Some(made) = Made::take::<PyKeyedStore>(store_type) {
                return Ok(made);
            }
        }
        let own = crate::store::runs_own_init(cls, &cls.py().get_type::<PyKeyedStore>())?;
        let (kwargs, key_name) = crate::arrow::split_key_name(kwargs)?;
        let [key, log2size, ignore_unknown] = constructor_args(args, kwargs.as_ref(), own)?;
        let ignore_unknown = match ignore_unknown {
            Some(v) => v.extract::<bool>()?,
            None => false,
        };
        Self::build(
            store_type,
            key.as_ref(),
            log2size.as_ref(),
            ignore_unknown,
            None,
            key_name,
        )
    }

    /// Check that the arguments are those the store was made with: `KeyedStore(...)` runs it, and a
    /// subclass's own `__init__` runs it through `super().__init__(store_type, key=..., ...)`.
    ///
    /// Raises `TypeError` if one differs (a subclass whose `__init__` takes other arguments passes
    /// `key`, `log2size` and `ignore_unknown` to the constructor by keyword).
    #[pyo3(signature = (store_type, key = None, log2size = None, ignore_unknown = false, *, key_name = None))]
    fn __init__(
        slf: &Bound<'_, Self>,
        store_type: &Bound<'_, PyAny>,
        key: Option<&Bound<'_, PyAny>>,
        log2size: Option<&Bound<'_, PyAny>>,
        ignore_unknown: bool,
        key_name: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let this = slf.get();
        let (kind, k) = keyed_args(key, log2size)?;
        let made_with = this.with(|ks| Ok(ks.store().log2size()))?;
        if !store_type.is(this.store_type.bind(slf.py()))
            || kind != this.key_kind
            || k != made_with
            || ignore_unknown != this.ignore_unknown
            || crate::arrow::key_name_arg(key_name)? != this.key_name
        {
            return Err(PyTypeError::new_err(
                "KeyedStore.__init__ takes the arguments the store was made with (a subclass whose __init__ \
                 takes other arguments passes key, log2size and ignore_unknown to the constructor by keyword)",
            ));
        }
        Ok(())
    }

    /// `from_columns`' constructor: a keyed store of class `cls` loaded from `keys`, byte `columns` and
    /// value `values` (made without running `__init__`).
    #[classmethod]
    #[allow(clippy::too_many_arguments)]
    fn _cs_from_columns<'py>(
        cls: &Bound<'py, PyType>,
        store_type: &Bound<'py, PyAny>,
        key: Option<&Bound<'py, PyAny>>,
        log2size: Option<&Bound<'py, PyAny>>,
        ignore_unknown: bool,
        keys: &Bound<'py, PyAny>,
        columns: Vec<(String, PyReadonlyArray1<'py, u8>)>,
        values: Vec<(String, Bound<'py, PyList>)>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = Self::build(
            store_type,
            key,
            log2size,
            ignore_unknown,
            Some((keys, columns, values)),
            None,
        )?;
        Made::instance(&cls.py().get_type::<PyKeyedStore>(), cls, store)
    }

    /// The Arrow schema of the entries (the key first, as column `key_name`): the PyCapsule interface.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        crate::arrow::keyed_schema(py, self)
    }

    /// The entries as an Arrow stream, one record batch per chunk (see the Arrow guide).
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        crate::arrow::keyed_stream(py, self, requested_schema, None)
    }

    /// `__arrow_c_stream__` of the key and `members` only (`to_arrow(members=...)`).
    fn _cs_arrow_stream<'py>(
        &self,
        py: Python<'py>,
        members: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        crate::arrow::keyed_stream(py, self, None, members)
    }

    /// Number of entries.
    fn __len__(&self) -> PyResult<usize> {
        self.with(|k| Ok(on_keyed!(k, s => s.len())))
    }

    /// `pool[key]`: a live `Entry` (`KeyError` if absent); `pool[key, name]`: one member's value.
    fn __getitem__<'py>(slf: &Bound<'py, Self>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (this, py) = (slf.get(), slf.py());
        let kind = this.key_kind;
        if let Ok(t) = key.cast::<PyTuple>() {
            if t.len() == 2 {
                let k0 = t.get_item(0)?;
                let k = key_for_lookup(kind, &k0).ok_or_else(|| PyKeyError::new_err(k0.clone().unbind()))?;
                let m = this.member_index(&t.get_item(1)?)?;
                let got = this.with(|ks| {
                    let slot = ks
                        .index_of(&k)
                        .ok_or_else(|| PyKeyError::new_err(k0.clone().unbind()))?;
                    let st = ks.store();
                    if let Some(obj) = crate::container::read_scalar(py, st, slot, m) {
                        return Ok(Err(obj));
                    }
                    Ok(Ok((
                        st.get(slot, m).py()?,
                        st.schema().member(m).py()?.ty().values_dtype(),
                    )))
                })?;
                return match got {
                    Err(obj) => Ok(obj),
                    Ok((v, d)) => to_object(py, v, d),
                };
            }
        }
        let k = key_for_lookup(kind, key).ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))?;
        // The slot and its generation in one borrow of the store.
        let (slot, generation) = this.with(|ks| {
            let slot = ks
                .index_of(&k)
                .ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))?;
            Ok((slot, ks.store().generation(slot).py()?))
        })?;
        let reuse = this.reuses_entries();
        let owner = (!reuse).then(|| slf.clone().into_any().unbind());
        let entry = Bound::new(
            py,
            PyEntry::new(
                this.h.clone(),
                slot,
                generation,
                Some(key.clone().unbind()),
                owner,
            ),
        )?;
        if reuse {
            this.cache.put(py, &entry);
        }
        Ok(entry.into_any())
    }

    /// `pool[key] = mapping` replaces the entry (members not given get their defaults; on a present key
    /// the same slot is rewritten and the key marked modified); `pool[key, name] = v` writes one member.
    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let kind = self.key_kind;
        if let Ok(t) = key.cast::<PyTuple>() {
            if t.len() == 2 {
                let k0 = t.get_item(0)?;
                let k = key_for_lookup(kind, &k0).ok_or_else(|| PyKeyError::new_err(k0.clone().unbind()))?;
                let m = self.member_index(&t.get_item(1)?)?;
                let member = self.h.data.schema.member(m).py()?;
                // A refused value's error names the member, as `pool[k] = d` does.
                let named = |e| in_member(key.py(), e, member.name());
                let val = member_value(value, member.ty()).map_err(named)?;
                return self.with_mut(|ks| {
                    let slot = ks
                        .index_of(&k)
                        .ok_or_else(|| PyKeyError::new_err(k0.clone().unbind()))?;
                    ks.set(slot, m, &val).py().map_err(named)
                });
            }
        }
        let k = key_for_store(kind, key)?;
        if let Some(scalars) = value
            .cast_exact::<PyDict>()
            .ok()
            .and_then(|d| self.h.data.scalars_of([Some(d), None]))
        {
            return self.with_mut(|ks| ks.insert_scalars(&k, &scalars).map(drop));
        }
        let values = self.values_of(value)?;
        self.with_mut(|ks| ks.insert(&k, &values).map(drop))
    }

    /// `del pool[key]` (`KeyError` if absent).
    fn __delitem__(&self, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let k =
            key_for_lookup(self.key_kind, key).ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))?;
        self.with_structural("deleting an entry", |ks| {
            ks.take(&k)
                .map(drop)
                .ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))
        })
    }

    /// Whether `key` is present (a key of the wrong type is simply absent).
    fn __contains__(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Some(k) = key_for_lookup(self.key_kind, key) else {
            return Ok(false);
        };
        self.with(|ks| Ok(ks.index_of(&k).is_some()))
    }

    /// A lazy iterator over the keys in slot order (`RuntimeError` if entries are added or removed while
    /// it runs, as for a dict).
    fn __iter__(slf: &Bound<'_, Self>) -> PyResult<PyEntryIterator> {
        PyEntryIterator::new(slf.get().h.clone(), slf.clone().into_any().unbind(), Yield::Key)
    }

    /// A live view of the keys: `len`, `in`, lazy iteration in slot order, set operations.
    fn keys(slf: &Bound<'_, Self>) -> PyKeyedKeys {
        PyKeyedKeys::new(slf.clone().unbind())
    }

    /// A live view of the entries (each a live `Entry`): `len`, `in`, lazy iteration in slot order.
    fn values(slf: &Bound<'_, Self>) -> PyKeyedValues {
        PyKeyedValues::new(slf.clone().unbind())
    }

    /// A live view of the `(key, entry)` pairs: `len`, `in`, lazy iteration in slot order, set operations.
    fn items(slf: &Bound<'_, Self>) -> PyKeyedItems {
        PyKeyedItems::new(slf.clone().unbind())
    }

    /// Remove `key` and return a plain `dict` snapshot of its entry; `default` if absent, else `KeyError`.
    #[pyo3(signature = (key, *default))]
    fn pop<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        default: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if default.len() > 1 {
            return Err(PyTypeError::new_err("pop expected at most 2 arguments"));
        }
        let taken = match key_for_lookup(self.key_kind, key) {
            Some(k) => self.with_structural("deleting an entry", |ks| Ok(ks.take(&k)))?,
            None => None,
        };
        match (taken, default.len()) {
            (Some(values), _) => Ok(self.snapshot(py, values)?.into_any()),
            (None, 1) => default.get_item(0),
            (None, _) => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }

    /// Remove some entry and return `(key, dict snapshot)`; `KeyError` when empty.
    fn popitem<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyDict>)> {
        let kind = self.key_kind;
        let (key, values) = self.with_structural("deleting an entry", |ks| {
            let slot = ks
                .slots()
                .into_iter()
                .last()
                .ok_or_else(|| PyKeyError::new_err("popitem(): keyed store is empty"))?;
            let key = ks.key_object(py, slot)?;
            let kv = key_for_store(kind, &key)?;
            let values = ks
                .take(&kv)
                .ok_or_else(|| PyKeyError::new_err("popitem(): entry vanished"))?;
            Ok((key, values))
        })?;
        Ok((key, self.snapshot(py, values)?))
    }

    /// Remove every entry.
    fn clear(&self) -> PyResult<()> {
        self.with_structural("clear", |ks| {
            on_keyed!(ks, s => s.clear());
            Ok(())
        })
    }

    /// The slot index of `key` (`KeyError` if absent).
    fn index_of(&self, key: &Bound<'_, PyAny>) -> PyResult<usize> {
        let k =
            key_for_lookup(self.key_kind, key).ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))?;
        self.with(|ks| {
            ks.index_of(&k)
                .ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))
        })
    }

    /// `{name: member container}`, the containers indexed by slot.
    #[getter]
    fn members<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyDict>> {
        let (this, py) = (slf.get(), slf.py());
        let d = PyDict::new(py);
        for (m, name) in this.h.data.names.iter().enumerate() {
            let owner = slf.clone().into_any().unbind();
            d.set_item(name.bind(py), PyContainer::new(py, this.h.clone(), m, owner)?)?;
        }
        Ok(d)
    }

    /// Keys whose member `name` equals `value` (converted like a write), in slot order.
    fn find<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let m = self.member_index(name)?;
        let ty = self.h.data.schema.member(m).py()?.ty();
        if *ty == MemberType::Object {
            // Python objects compare with Python's `==`, run after the store is released (it may run code).
            let held: Vec<(Bound<'py, PyAny>, Py<PyAny>)> = self.with(|ks| {
                let st = ks.store();
                st.indices()
                    .map(|i| Ok((ks.key_object(py, i)?, object_of(py, &st.get(i, m).py()?))))
                    .collect()
            })?;
            let mut found = Vec::new();
            for (key, obj) in held {
                if obj.bind(py).eq(value)? {
                    found.push(key);
                }
            }
            return Ok(found);
        }
        let val = member_value(value, ty)?;
        self.with(|ks| {
            let slots: Vec<usize> = ks.store().find(m, &val).py()?;
            slots.into_iter().map(|s| ks.key_object(py, s)).collect()
        })
    }

    /// Keys of entries written after creation, until `clear_modified()`.
    fn modified<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.with(|ks| {
            ks.modified_slots()
                .into_iter()
                .map(|s| ks.key_object(py, s))
                .collect()
        })
    }

    /// Clear the modified marks of every key, or of the given keys (absent keys are ignored).
    #[pyo3(signature = (keys = None))]
    fn clear_modified(&self, keys: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let kind = self.key_kind;
        match keys {
            None => self.with_structural("clearing modified marks", |ks| {
                on_keyed!(ks, s => s.clear_modified());
                Ok(())
            }),
            Some(keys) => {
                // A str or bytes is one key, not an iterable of keys: iterating it would clear the
                // one-character keys it spells and leave the intended key marked.
                if keys.is_instance_of::<PyString>()
                    || keys.is_instance_of::<PyBytes>()
                    || keys.is_instance_of::<PyByteArray>()
                    || keys.is_instance_of::<PyMemoryView>()
                {
                    return Err(PyTypeError::new_err(
                        "clear_modified takes an iterable of keys (a str or bytes is one key: write clear_modified([key]))",
                    ));
                }
                let objs = keys.try_iter()?.collect::<PyResult<Vec<_>>>()?;
                let keys: Vec<PyKey<'_>> = objs.iter().filter_map(|k| key_for_lookup(kind, k)).collect();
                self.with_structural("clearing modified marks", |ks| {
                    on_keyed!(ks, s => clear_modified_keys(s, &keys));
                    Ok(())
                })
            }
        }
    }

    /// Check internal invariants; `AssertionError` on a broken one.
    fn validate(&self, py: Python<'_>) -> PyResult<()> {
        crate::error::interruptible(py, || self.with(|ks| on_keyed!(ks, s => s.validate()).py()))
    }

    /// Bytes held by the store, the key column, the hash table and the modified bitmap.
    #[getter]
    fn nbytes(&self) -> PyResult<usize> {
        self.with(|ks| Ok(on_keyed!(ks, s => s.nbytes())))
    }

    /// `sys.getsizeof(s)`: the Python object itself plus every buffer the store holds (`nbytes`).
    fn __sizeof__(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let object = slf.py().get_type::<pyo3::types::PyAny>();
        let own: usize = object.call_method1("__sizeof__", (slf,))?.extract()?;
        Ok(own + slf.get().nbytes()?)
    }

    /// The static store type of the entries.
    #[getter]
    fn store_type(&self, py: Python<'_>) -> Py<PyType> {
        self.store_type.clone_ref(py)
    }

    /// Whether unknown members and `None` values in assigned mappings are dropped instead of refused.
    #[getter]
    fn ignore_unknown(&self) -> bool {
        self.ignore_unknown
    }

    /// The name of the key column in Arrow exports (`key_name=`, `"key"` by default).
    #[getter(key_name)]
    fn key_name_py(&self) -> &str {
        self.key_name()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<KeyedStore of {} len={}>",
            self.store_type.bind(py).name()?,
            self.__len__()?
        ))
    }

    /// An independent keyed store with the same keys, entries and modified marks (object members'
    /// objects are shared, as `dict.copy()` shares values; made without running `__init__`, a subclass
    /// instance's attributes copied shallowly, as `copy.copy` does).
    fn copy<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let copy = Self::copy_with(slf)?;
        crate::store::copy_instance_state(slf.as_any(), &copy, None)?;
        Ok(copy)
    }

    /// `copy.copy(pool)`: the same as `pool.copy()`.
    fn __copy__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::copy(slf)
    }

    /// `copy.deepcopy(pool)`: `pool.copy()` with object members' objects deep-copied.
    fn __deepcopy__<'py>(slf: &Bound<'py, Self>, memo: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let copy = Self::copy_with(slf)?;
        // Registered before the objects are deep-copied, as `copy.deepcopy` expects (see `PyStore`).
        memo.set_item(slf.as_ptr() as usize, &copy)?;
        crate::store::own_objects(slf.py(), &copy.cast::<PyKeyedStore>()?.get().h, Some(memo))?;
        crate::store::copy_instance_state(slf.as_any(), &copy, Some(memo))?;
        Ok(copy)
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err("cannot pickle a KeyedStore"))
    }

    /// Python's garbage collector: the objects held by object members.
    fn __traverse__(&self, visit: pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.store_type)?;
        self.h.data.traverse(&visit)
    }

    /// Break reference cycles: drop the objects held by object members.
    fn __clear__(&self) {
        drop(self.h.data.take_objects());
    }
}
