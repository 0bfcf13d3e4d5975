//! `Entry`: one slot seen as a dict, a live view checked against the slot's generation.

use std::cell::UnsafeCell;

use compactstore::{Error, MemberType, Store, Value};
use pyo3::exceptions::{PyAttributeError, PyKeyError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::container::ScalarPy;
use crate::convert::{member_value, object_of, to_object};
use crate::on;
use crate::shared::Handle;
use crate::store::{convert_members, Members};

/// One entry (slot) seen as a dict of member values: `e[name]`, `e[name] = v`, `e.name`, `keys()`,
/// `values()`, `items()`, `get()`, `update()`, `dict(e)`, `len(e)`, `e.index`, `e.key`.
///
/// A view whose slot has since been freed (or freed and reused) raises `KeyError` on any access. An
/// Entry cannot be copied or pickled (`TypeError`): a copy would be a second view of the same slot;
/// `dict(e)` is a snapshot of its values.
#[pyclass(frozen, weakref, module = "compactstore._native", name = "Entry")]
pub struct PyEntry {
    h: Handle,
    /// The slot, its generation and the key: fixed for the Entry's life, except that a keyed store may
    /// reuse an Entry nobody else holds for another key (see [`PyEntry::retarget`]).
    at: GilCell<At>,
    /// The store object this view came from, kept alive (and visible to the garbage collector); `None`
    /// for the entries of a keyed store without object members, which it may keep for reuse (the store
    /// keeps its data alive through `h`, and holds no Python object a collector would need to see).
    owner: Option<Py<PyAny>>,
}

/// Where an Entry points.
struct At {
    slot: usize,
    generation: u32,
    key: Option<Py<PyAny>>,
}

/// A value only the thread holding the GIL reads or writes: an Entry's [`At`].
struct GilCell<T>(UnsafeCell<T>);

// SAFETY: the value is only reached by code CPython runs with the GIL held (the Entry's methods and slots,
// its traverse, the keyed store's slot that reuses it), so two threads never reach it together; it is
// only written by `PyEntry::retarget`, whose contract (no other reference to the Entry exists) rules out
// a reader during the write on the same thread.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for GilCell<T> {}

impl PyEntry {
    pub fn new(
        h: Handle,
        slot: usize,
        generation: u32,
        key: Option<Py<PyAny>>,
        owner: Option<Py<PyAny>>,
    ) -> PyEntry {
        PyEntry {
            h,
            at: GilCell(UnsafeCell::new(At {
                slot,
                generation,
                key,
            })),
            owner,
        }
    }

    #[allow(unsafe_code)]
    #[inline(always)]
    fn at(&self) -> &At {
        // SAFETY: see `GilCell`: the only write is `retarget`'s, made while nothing else references the
        // Entry, so no `&At` handed out here is alive during it.
        unsafe { &*self.at.0.get() }
    }

    /// The entry's slot.
    #[inline(always)]
    pub(crate) fn slot(&self) -> usize {
        self.at().slot
    }

    #[inline(always)]
    fn generation(&self) -> u32 {
        self.at().generation
    }

    /// Point this Entry at `slot` of `generation` with `key` (a new reference), returning the old key's
    /// reference for the caller to release.
    ///
    /// # Safety
    /// The caller holds the GIL, and no reference to this Entry exists but the one it reuses it through
    /// (refcount 1, no weak references), so nothing reads `at` meanwhile.
    #[allow(unsafe_code)]
    #[inline]
    pub(crate) unsafe fn retarget(
        &self,
        slot: usize,
        generation: u32,
        key: Option<Py<PyAny>>,
    ) -> Option<Py<PyAny>> {
        // SAFETY: per the contract nothing else reads or writes `at` now.
        let at = unsafe { &mut *self.at.0.get() };
        at.slot = slot;
        at.generation = generation;
        std::mem::replace(&mut at.key, key)
    }

    /// `e[name]` for an interned member name of a numeric scalar member, as a new reference: the entry
    /// checked live and the value read straight from its column under one lock. `None` for anything else
    /// (a stale entry, an unknown or other member, a busy store): the general path runs and reports.
    #[inline]
    pub(crate) fn fast_get(
        &self,
        py: Python<'_>,
        name: *mut pyo3::ffi::PyObject,
    ) -> Option<*mut pyo3::ffi::PyObject> {
        let m = self.h.data.member_by_ptr(name)?;
        let at = self.at();
        let x = self.h.try_read(|v| {
            on!(v, s => {
                if s.live_generation(at.slot)? != at.generation {
                    return None;
                }
                s.scalar_at(at.slot, m)
            })
        })?;
        Some(x.to_object(py).into_ptr())
    }

    /// `e[name] = value` for an interned member name of a numeric scalar member and a value that fits it
    /// as it is (see `ScalarPy::of`): the entry checked live, then one typed write, which checks the rest
    /// (read-only) and changes nothing on refusal. `false` for anything else: the general path runs and
    /// reports.
    #[inline]
    pub(crate) fn fast_set(&self, name: *mut pyo3::ffi::PyObject, value: &Bound<'_, PyAny>) -> bool {
        let Some((m, d)) = self.h.data.scalar_member_by_ptr(name) else {
            return false;
        };
        let Some(x) = <compactstore::Scalar as ScalarPy>::of(value, d) else {
            return false;
        };
        let at = self.at();
        self.h
            .try_write(|mut v| {
                let live = on!(v.read(), s => s.live_generation(at.slot) == Some(at.generation));
                if !live {
                    return None;
                }
                v.set_scalar(at.slot, m, x).ok()
            })
            .is_some()
    }

    /// `Handle::read`, with a released chunk (its store dropped it) reported as a stale entry (`KeyError`).
    fn read<R>(&self, f: impl FnOnce(crate::shared::View<'_>) -> compactstore::Result<R>) -> PyResult<R> {
        self.h.read(f).map_err(|e| self.stale_if_released(e))
    }

    /// `Handle::write` (no allocation), with a released chunk reported as a stale entry.
    fn write<R>(&self, f: impl FnOnce(crate::shared::ViewMut<'_>) -> compactstore::Result<R>) -> PyResult<R> {
        self.h.write(f).map_err(|e| self.stale_if_released(e))
    }

    fn stale_if_released(&self, e: PyErr) -> PyErr {
        if self.h.chunk_released() {
            pyo3::exceptions::PyKeyError::new_err(format!(
                "entry at slot {} was released with its chunk",
                self.slot()
            ))
        } else {
            e
        }
    }

    /// Fail with `StaleEntry` unless the slot still holds the entry this view was made for.
    fn live<S: Store>(&self, s: &S) -> compactstore::Result<()> {
        if s.occupied(self.slot()) && s.generation(self.slot())? == self.generation() {
            Ok(())
        } else {
            Err(Error::StaleEntry { index: self.slot() })
        }
    }

    fn values_list<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let vals: Vec<(Value, Option<compactstore::Dtype>)> = self.read(|v| {
            on!(v, s => {
                self.live(s)?;
                (0..s.schema().len())
                    .map(|m| Ok((s.get(self.slot(), m)?, s.schema().member(m)?.ty().values_dtype())))
                    .collect()
            })
        })?;
        vals.into_iter().map(|(v, d)| to_object(py, v, d)).collect()
    }

    fn names<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyString>>> {
        self.read(|v| on!(v, s => self.live(s)))?;
        Ok(self.h.data.names.iter().map(|n| n.bind(py).clone()).collect())
    }
}

/// The `TypeError` of copying or pickling an `Entry`.
fn not_copyable(what: &str) -> PyErr {
    pyo3::exceptions::PyTypeError::new_err(format!(
        "an Entry is a live view of a slot in its store and cannot be {what}: use dict(entry) for a \
         snapshot of its values, or copy the store"
    ))
}

#[pymethods]
impl PyEntry {
    /// The value of member `name` (`KeyError` for an unknown member or a stale view).
    fn __getitem__<'py>(&self, py: Python<'py>, name: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.h.data.member_of(name)?;
        let v = self.read(|v| {
            on!(v, s => {
                self.live(s)?;
                match crate::container::read_scalar(py, s, self.slot(), m) {
                    Some(obj) => Ok(Err(obj)),
                    None => s.get(self.slot(), m).map(Ok),
                }
            })
        })?;
        let v = match v {
            Err(obj) => return Ok(obj),
            Ok(v) => v,
        };
        let d = self
            .h
            .data
            .schema
            .member(m)
            .map_or(None, |x| x.ty().values_dtype());
        to_object(py, v, d)
    }

    /// Set member `name` (`TypeError` for a read-only member; bad values change nothing).
    fn __setitem__(&self, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let m = self.h.data.member_of(name)?;
        let ty = self.h.data.schema.member(m).map_err(crate::error::to_py)?.ty();
        let val = member_value(value, ty)?;
        self.write(|mut v| v.update(self.slot(), self.generation(), &[(m, val)]))
    }

    /// `e.name`: the value of member `name`, unless `Entry` has an attribute of that name (`e.index` is
    /// the slot even with a member `index`: reach that one with `e["index"]`); `AttributeError` if there
    /// is neither.
    fn __getattribute__<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(v) = crate::attr::generic(slf.as_any(), name)? {
            return Ok(v);
        }
        if slf.get().h.data.member_of(name.as_any()).is_err() {
            // A bare AttributeError: PyO3 passes it to `__getattr__`, which makes the message.
            return Err(PyAttributeError::new_err(()));
        }
        slf.get().__getitem__(slf.py(), name.as_any())
    }

    /// Called by PyO3 after `__getattribute__` raised `AttributeError`: the same error, with its message.
    fn __getattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyString>) -> PyResult<()> {
        Err(crate::attr::missing(slf.as_any(), name))
    }

    /// `e.name = v`: set member `name`, as `e[name] = v` does (`AttributeError` if there is no such
    /// member; entries have no other attributes to set).
    fn __setattr__(&self, name: &Bound<'_, PyString>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.h.data.member_of(name).is_err() {
            return Err(PyAttributeError::new_err(format!(
                "Entry has no member {:?}",
                name.to_str()?
            )));
        }
        self.__setitem__(name.as_any(), value)
    }

    /// Member names.
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyString>>> {
        self.names(py)
    }

    /// Member values, in declaration order.
    fn values<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.values_list(py)
    }

    /// `(name, value)` pairs.
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Vec<(Bound<'py, PyString>, Bound<'py, PyAny>)>> {
        Ok(self.names(py)?.into_iter().zip(self.values_list(py)?).collect())
    }

    /// The value of member `name`, or `default` if there is no such member (a stale view still raises).
    #[pyo3(signature = (name, default = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.read(|v| on!(v, s => self.live(s)))?;
        let Ok(n) = name.cast::<PyString>() else {
            return Ok(default.unwrap_or_else(|| py.None().into_bound(py)));
        };
        match self.__getitem__(py, n) {
            Ok(v) => Ok(v),
            Err(e) if e.is_instance_of::<PyKeyError>(py) => {
                Ok(default.unwrap_or_else(|| py.None().into_bound(py)))
            }
            Err(e) => Err(e),
        }
    }

    /// Set the given members; strict: an unknown member raises `KeyError`, a read-only one `TypeError`,
    /// a bad value its error, and then nothing changes.
    #[pyo3(signature = (mapping = None, **members))]
    fn update(
        &self,
        mapping: Option<&Bound<'_, PyAny>>,
        members: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        self.read(|v| on!(v, s => self.live(s)))?;
        let values = convert_members(&self.h, mapping, members, Members::UPDATE)?;
        // The engine checks the entry, every member and value, and makes room, before the first write.
        self.write(|mut v| v.update(self.slot(), self.generation(), &values))
    }

    /// Number of members.
    fn __len__(&self) -> PyResult<usize> {
        self.h
            .read(|v| on!(v, s => self.live(s).map(|()| s.schema().len())))
    }

    /// Iterate over member names.
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyList::new(py, self.names(py)?)?.try_iter()?.into_any())
    }

    /// Whether `name` is a member.
    fn __contains__(&self, name: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.read(|v| on!(v, s => self.live(s)))?;
        let Ok(n) = name.cast::<PyString>() else {
            return Ok(false);
        };
        let n = n.to_str()?;
        self.read(|v| Ok(on!(v, s => s.schema().index_of(n).is_ok())))
    }

    /// The entry's slot index (`KeyError` once the entry was deleted).
    #[getter]
    fn index(&self) -> PyResult<usize> {
        self.read(|v| on!(v, s => self.live(s)))?;
        Ok(self.slot())
    }

    /// The entry's key (keyed stores only; `None` otherwise; `KeyError` once the entry was deleted).
    #[getter]
    fn key(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.read(|v| on!(v, s => self.live(s)))?;
        Ok(self
            .at()
            .key
            .as_ref()
            .map_or_else(|| py.None(), |k| k.clone_ref(py)))
    }

    /// Whether the slot still holds the entry this view was made for.
    #[getter]
    fn valid(&self) -> PyResult<bool> {
        self.read(|v| Ok(on!(v, s => self.live(s).is_ok())))
    }

    /// `e == mapping`: the same member names, each value equal as stored (an f32 member equals `0.1` when
    /// `float(np.float32(0.1))` does).
    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if !other.hasattr("keys")? || !other.hasattr("__getitem__")? {
            return Ok(py.NotImplemented());
        }
        let no = || -> PyResult<Py<PyAny>> { Ok(false.into_pyobject(py)?.to_owned().into_any().unbind()) };
        self.read(|v| on!(v, s => self.live(s)))?;
        let schema = &self.h.data.schema;
        // First everything that runs the other mapping's code, then one read of this entry that checks
        // it is still live: user code could have deleted or reused the slot meanwhile.
        if other.len()? != schema.len() {
            return no();
        }
        // Their values: converted as a write would (refused ones make the entries differ), except object
        // members' objects, which are compared with Python's `==` once the store is released.
        let mut theirs = Vec::with_capacity(schema.len());
        let mut their_objects = Vec::new();
        for (m, (name, member)) in self.h.data.names.iter().zip(schema.members()).enumerate() {
            let Ok(value) = other.get_item(name.bind(py)) else {
                return no();
            };
            let ty = member.ty();
            if *ty == MemberType::Object {
                their_objects.push((m, value));
                theirs.push(None);
                continue;
            }
            match member_value(&value, ty).ok().and_then(|v| ty.canonical(&v).ok()) {
                Some(v) => theirs.push(Some(v)),
                None => return no(),
            }
        }
        let mine = self.read(|v| {
            on!(v, s => {
                self.live(s)?;
                for (m, want) in theirs.iter().enumerate() {
                    if let Some(want) = want {
                        if &s.get(self.slot(), m)? != want {
                            return Ok(None);
                        }
                    }
                }
                their_objects
                    .iter()
                    .map(|(m, _)| Ok(object_of(py, &s.get(self.slot(), *m)?)))
                    .collect::<compactstore::Result<Vec<_>>>()
                    .map(Some)
            })
        })?;
        let Some(mine) = mine else {
            return no();
        };
        for (obj, (_, theirs)) in mine.iter().zip(&their_objects) {
            if !obj.bind(py).eq(theirs)? {
                return no();
            }
        }
        Ok(true.into_pyobject(py)?.to_owned().into_any().unbind())
    }

    /// `copy.copy(e)`: refused (`TypeError`). An `Entry` is a live view of one slot of its store: a
    /// copy would be a second view of the same slot, not a copy of its values. `dict(e)` is a snapshot of
    /// the values; `store.copy()` copies the store.
    fn __copy__(&self) -> PyResult<()> {
        Err(not_copyable("copied"))
    }

    /// `copy.deepcopy(e)`: refused (`TypeError`), as `copy.copy(e)` is.
    fn __deepcopy__(&self, _memo: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(not_copyable("deep-copied"))
    }

    /// `pickle.dumps(e)`: refused (`TypeError`): a view of a slot has no meaning apart from its store.
    fn __reduce__(&self) -> PyResult<()> {
        Err(not_copyable("pickled"))
    }

    /// Entries are mutable views: not hashable.
    #[classattr]
    fn __hash__() -> Option<Py<PyAny>> {
        None
    }

    /// Python's garbage collector: the key and the store this view keeps alive.
    fn __traverse__(&self, visit: pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.at().key)?;
        visit.call(&self.owner)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        match self.items(py) {
            Ok(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .take(8)
                    .map(|(k, v)| Ok(format!("{}: {}", k.to_str()?, v.repr()?)))
                    .collect::<PyResult<_>>()?;
                let more = if items.len() > 8 { ", ..." } else { "" };
                Ok(format!("<Entry {} {{{}{more}}}>", self.slot(), parts.join(", ")))
            }
            Err(_) => Ok(format!("<Entry {} (stale)>", self.slot())),
        }
    }
}
