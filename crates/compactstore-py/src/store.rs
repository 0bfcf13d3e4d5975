//! The store classes: `Store` (what static and dynamic stores share), `StaticStore`, `DynamicStore`.

use compactstore::{DynamicStore, Error, MemberType, StaticStore, Store, Value, DEFAULT_LOG2SIZE};
use numpy::PyArray1;
use pyo3::exceptions::{PyBufferError, PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyType};

use crate::container::PyContainer;
use crate::convert::{checked_member_value, member_value, object_of, scalar_value};
use crate::entry::PyEntry;
use crate::error::IntoPy;
use crate::schema::PySchema;
use crate::shared::{Handle, Inner, Shared, View};
use crate::{on, on_mut};

/// Resolve member names to positions and convert their values; unknown name → `KeyError`.
///
/// With `check`, each value is also checked against its member type here, for callers that write value by
/// value and must change nothing on error (`Entry.update`); `add` leaves that to the engine, which checks
/// every value before it allocates.
pub fn convert_members(
    h: &Handle,
    mapping: Option<&Bound<'_, PyAny>>,
    kwargs: Option<&Bound<'_, PyDict>>,
    check: bool,
) -> PyResult<Vec<(usize, Value)>> {
    let schema = &h.data.schema;
    let mut out = Vec::new();
    let mut put = |k: &Bound<'_, PyAny>, val: &Bound<'_, PyAny>| -> PyResult<()> {
        if !k.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err("member names are str"));
        }
        let m = h.data.member_of(k)?;
        let ty = schema.member(m).py()?.ty();
        out.push((
            m,
            if check {
                checked_member_value(val, ty)?
            } else {
                member_value(val, ty)?
            },
        ));
        Ok(())
    };
    if let Some(mapping) = mapping {
        if let Ok(d) = mapping.cast::<PyDict>() {
            // A snapshot of the items: converting a value can run Python code (`__index__`), which could
            // change the dict under an iterator (PyO3's panics on that).
            for (k, val) in d.iter().collect::<Vec<_>>() {
                put(&k, &val)?;
            }
        } else if !mapping.is_none() {
            // A mapping, or an iterable of (name, value) pairs, as dict() takes.
            let items = if mapping.hasattr("items")? {
                mapping.call_method0("items")?
            } else {
                mapping.clone()
            };
            for item in items.try_iter()? {
                let item = item?;
                let (k, val): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
                put(&k, &val)?;
            }
        }
    }
    if let Some(kwargs) = kwargs {
        for (k, val) in kwargs.iter().collect::<Vec<_>>() {
            put(&k, &val)?;
        }
    }
    Ok(out)
}

/// `BufferError` if a numpy view of one of the dynamic store's chunks exists and the store has chunks
/// that `retract()` / `reset()` could drop (more than one): the view's memory must stay where it is.
fn refuse_dropping_exported_chunks(h: &Handle, what: &str) -> PyResult<()> {
    if h.data.exported() && h.read(|v| Ok(on!(v, s => s.chunks().len())))? > 1 {
        return Err(PyBufferError::new_err(format!(
            "cannot {what} a dynamic store while a numpy view of one of its chunks exists"
        )));
    }
    Ok(())
}

/// The values of `add(mapping, **members)`, converted in one pass: raw scalars while every value is an
/// exact int, float or bool that fits a numeric scalar member as it is (records of numbers: `add` writes
/// them without a `Value` each), else `Value`s. `None` when `mapping` is not a plain dict (the generic
/// conversion takes any mapping or iterable of pairs).
enum Converted {
    Raw(Vec<(usize, compactstore::Scalar)>),
    Values(Vec<(usize, Value)>),
}

fn convert_for_add(
    h: &Handle,
    mapping: Option<&Bound<'_, PyAny>>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Option<Converted>> {
    let dicts = match mapping {
        None => [None, kwargs],
        Some(m) if m.is_none() => [None, kwargs],
        Some(m) => match m.cast_exact::<PyDict>() {
            Ok(d) => [Some(d), kwargs],
            Err(_) => return Ok(None),
        },
    };
    let schema = &h.data.schema;
    let n = dicts.iter().flatten().map(|d| d.len()).sum();
    let mut raws = Vec::with_capacity(n);
    let mut values: Option<Vec<(usize, Value)>> = None;
    for d in dicts.into_iter().flatten() {
        for (k, v) in d.iter().collect::<Vec<_>>() {
            if !k.is_instance_of::<PyString>() {
                return Err(PyTypeError::new_err("member names are str"));
            }
            let m = h.data.member_of(&k)?;
            let ty = schema.member(m).py()?.ty();
            if let Some(values) = values.as_mut() {
                values.push((m, member_value(&v, ty)?));
                continue;
            }
            if let MemberType::Scalar(dt) = ty {
                if let Some(r) = <compactstore::Scalar as crate::container::ScalarPy>::of(&v, *dt) {
                    raws.push((m, r));
                    continue;
                }
            }
            // The first value the raw path cannot take: the rest are `Value`s.
            let mut vals: Vec<(usize, Value)> = Vec::with_capacity(n);
            vals.extend(raws.drain(..).map(|(m, r)| (m, r.to_value())));
            vals.push((m, member_value(&v, ty)?));
            values = Some(vals);
        }
    }
    Ok(Some(match values {
        Some(v) => Converted::Values(v),
        None => Converted::Raw(raws),
    }))
}

/// A slot index for `del`, `entry`, `occupied`: an int `0 <= i` (`bool` counts as an int).
pub fn slot_index(i: &Bound<'_, PyAny>) -> PyResult<i64> {
    match scalar_value(i) {
        Ok(Value::Int(i)) => Ok(i),
        Ok(Value::Bool(b)) => Ok(i64::from(b)),
        Ok(Value::UInt(_)) => Ok(i64::MAX),
        // An int beyond u64 is simply out of range.
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(i.py()) => Ok(i64::MAX),
        _ => Err(PyTypeError::new_err("slot indices are ints")),
    }
}

/// What static and dynamic stores share: a dictionary-like interface from member names to member
/// containers, and slot allocation. Not instantiated directly: derive from `StaticStore`, or make a
/// `DynamicStore(StoreType)`.
#[pyclass(subclass, frozen, module = "compactstore._native", name = "Store")]
pub struct PyStore {
    pub h: Handle,
    /// For a chunk view of a dynamic store: the dynamic store object, kept alive.
    parent: Option<Py<PyAny>>,
}

impl PyStore {
    fn container(slf: &Bound<'_, Self>, m: usize) -> PyResult<PyContainer> {
        PyContainer::new(slf.py(), slf.get().h.clone(), m, slf.clone().into_any().unbind())
    }

    fn member_index(&self, name: &str) -> PyResult<usize> {
        self.h.data.schema.index_of(name).py()
    }

    fn names(&self, py: Python<'_>) -> Vec<Py<PyString>> {
        self.h.data.names.iter().map(|n| n.clone_ref(py)).collect()
    }
}

#[pymethods]
impl PyStore {
    /// Number of occupied slots.
    fn __len__(&self) -> PyResult<usize> {
        self.h.read(|v| Ok(on!(v, s => s.len())))
    }

    /// Slots allocated (static: fixed; dynamic: chunks × chunk size).
    #[getter]
    fn size(&self) -> PyResult<usize> {
        self.h.read(|v| Ok(on!(v, s => s.size())))
    }

    /// Free slots before the store must grow (a dynamic store: `sys.maxsize`).
    #[getter]
    fn space(&self) -> PyResult<usize> {
        self.h
            .read(|v| Ok(on!(v, s => s.space().min(isize::MAX as usize))))
    }

    /// The index most recently returned by `next_index`/`add` (-1 before any).
    #[getter]
    fn last_index(&self) -> PyResult<i64> {
        self.h
            .read(|v| Ok(on!(v, s => s.last_index().map_or(-1, |i| i as i64))))
    }

    /// Bytes held by the store's data and bookkeeping buffers.
    #[getter]
    fn nbytes(&self) -> PyResult<usize> {
        self.h.read(|v| Ok(on!(v, s => s.nbytes())))
    }

    /// `sys.getsizeof(s)`: the Python object itself plus every buffer the store holds (`nbytes`).
    fn __sizeof__(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let object = slf.py().get_type::<pyo3::types::PyAny>();
        let own: usize = object.call_method1("__sizeof__", (slf,))?.extract()?;
        Ok(own + slf.get().nbytes()?)
    }

    /// Allocate the lowest free slot, set its members to their defaults and return its index.
    ///
    /// Raises `OverflowError` when a static store is full.
    fn next_index(&self) -> PyResult<usize> {
        self.h.write(true, |v| on_mut!(v, s => s.next_index()))
    }

    /// `next_index()`, then set the given members (read-only ones too); returns the index.
    ///
    /// Raises `KeyError` for an unknown member, `TypeError`/`OverflowError`/`ValueError` for a bad value;
    /// nothing is allocated then.
    #[pyo3(signature = (mapping = None, **members))]
    fn add(
        &self,
        mapping: Option<&Bound<'_, PyAny>>,
        members: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<usize> {
        let values = match convert_for_add(&self.h, mapping, members)? {
            // Every scalar is checked by the engine before it allocates.
            Some(Converted::Raw(raws)) => {
                return self.h.write(true, |v| on_mut!(v, s => s.add_scalars(&raws)))
            }
            Some(Converted::Values(values)) => values,
            None => convert_members(&self.h, mapping, members, false)?,
        };
        // The engine checks every value before it allocates.
        self.h.write(true, |v| on_mut!(v, s => s.add(&values)))
    }

    /// Free slot `i`: its members return to their defaults and it becomes reusable.
    ///
    /// Raises `IndexError` if `i` is out of range (`0 <= i < size`) or not occupied.
    fn __delitem__(&self, i: &Bound<'_, PyAny>) -> PyResult<()> {
        if i.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(
                "members cannot be deleted; del takes a slot index",
            ));
        }
        let i = slot_index(i)?;
        let size = self.size()?;
        if i < 0 || i as u64 >= size as u64 {
            return Err(PyIndexError::new_err(format!(
                "slot {i} out of range for size {size}"
            )));
        }
        self.h.write(true, |v| on_mut!(v, s => s.remove(i as usize)))
    }

    /// Whether slot `i` holds an entry (out of range → `False`).
    fn occupied(&self, i: &Bound<'_, PyAny>) -> PyResult<bool> {
        let i = slot_index(i)?;
        if i < 0 {
            return Ok(false);
        }
        self.h.read(|v| Ok(on!(v, s => s.occupied(i as usize))))
    }

    /// An iterator over the occupied slot indices, ascending.
    fn indices<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let idx: Vec<usize> = self.h.read(|v| Ok(on!(v, s => s.indices().collect())))?;
        Ok(PyList::new(py, idx)?.try_iter()?.into_any())
    }

    /// The free slot indices below `size`, ascending.
    fn empty_indices(&self) -> PyResult<Vec<usize>> {
        self.h.read(|v| Ok(on!(v, s => s.empty_indices())))
    }

    /// The member container for `name` (`KeyError` if there is none).
    fn __getitem__(slf: &Bound<'_, Self>, name: &str) -> PyResult<PyContainer> {
        let m = slf.get().member_index(name)?;
        Self::container(slf, m)
    }

    /// The seed's shorthand: set member `name` of the entry at `last_index` (read-only members too).
    ///
    /// Raises `IndexError` if there is no entry there (none yet, or it was deleted).
    fn __setitem__(&self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let m = self.member_index(name)?;
        let ty = self
            .h
            .read(|v| on!(v, s => s.schema().member(m).map(|x| x.ty().clone())))?;
        let val = member_value(value, &ty)?;
        self.h
            .write(false, |v| {
                on_mut!(v, s => {
                    let i = s.last_index().filter(|&i| s.occupied(i)).ok_or(Error::SlotFree { index: 0 })?;
                    s.write(i, m, &val)
                })
            })
            .map_err(|e| {
                if e.is_instance_of::<PyIndexError>(value.py()) {
                    PyIndexError::new_err("no entry at last_index (none allocated yet, or it was deleted)")
                } else {
                    e
                }
            })
    }

    /// `s.name`: the member container, unless the store type has an attribute of that name (`s.size`
    /// is the size even with a member `size`: reach that one with `s["size"]`); `AttributeError` if there
    /// is neither.
    fn __getattribute__<'py>(
        slf: &Bound<'py, Self>,
        name: &Bound<'py, PyString>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Some(v) = crate::attr::generic(slf.as_any(), name)? {
            return Ok(v);
        }
        let m = slf
            .get()
            .h
            .data
            .member_of(name.as_any())
            // A bare AttributeError: PyO3 passes it to `__getattr__`, which makes the message.
            .map_err(|_| pyo3::exceptions::PyAttributeError::new_err(()))?;
        Ok(Bound::new(slf.py(), Self::container(slf, m)?)?.into_any())
    }

    /// Called by PyO3 after `__getattribute__` raised `AttributeError`: the same error, with its message.
    fn __getattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyString>) -> PyResult<()> {
        Err(crate::attr::missing(slf.as_any(), name))
    }

    /// `s.name = v` for a member: the same as `s[name] = v` (the seed's shorthand: member `name` of the
    /// entry at `last_index`). Other names are ordinary attributes (a Python subclass's instance dict).
    fn __setattr__(
        slf: &Bound<'_, Self>,
        name: &Bound<'_, PyString>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if slf.get().h.data.member_of(name.as_any()).is_ok()
            && !crate::attr::type_defines(slf.as_any(), name)?
        {
            return slf.as_any().set_item(name, value);
        }
        crate::attr::generic_set(slf.as_any(), name, Some(value))
    }

    /// `del s.name`: members cannot be deleted (`AttributeError`); other names as for any object.
    fn __delattr__(slf: &Bound<'_, Self>, name: &Bound<'_, PyString>) -> PyResult<()> {
        if slf.get().h.data.member_of(name.as_any()).is_ok()
            && !crate::attr::type_defines(slf.as_any(), name)?
        {
            return Err(pyo3::exceptions::PyAttributeError::new_err(format!(
                "cannot delete member {:?} of a store",
                name.to_str()?
            )));
        }
        crate::attr::generic_set(slf.as_any(), name, None)
    }

    /// Iterate over member names.
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyList::new(py, self.names(py))?.try_iter()?.into_any())
    }

    /// Whether `name` is a member.
    fn __contains__(&self, name: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(name) = name.cast::<PyString>() else {
            return Ok(false);
        };
        Ok(self.member_index(name.to_str()?).is_ok())
    }

    /// Member names, in declaration order.
    fn keys(&self, py: Python<'_>) -> Vec<Py<PyString>> {
        self.names(py)
    }

    /// Member containers, in declaration order.
    fn values(slf: &Bound<'_, Self>) -> PyResult<Vec<PyContainer>> {
        (0..slf.get().h.data.names.len())
            .map(|m| Self::container(slf, m))
            .collect()
    }

    /// `(name, container)` pairs, in declaration order.
    fn items(slf: &Bound<'_, Self>) -> PyResult<Vec<(Py<PyString>, PyContainer)>> {
        let names = slf.get().names(slf.py());
        names
            .into_iter()
            .enumerate()
            .map(|(m, n)| Ok((n, Self::container(slf, m)?)))
            .collect()
    }

    /// An `Entry` view of slot `i` (`IndexError` if out of range or free).
    fn entry(slf: &Bound<'_, Self>, i: &Bound<'_, PyAny>) -> PyResult<PyEntry> {
        let this = slf.get();
        let i = slot_index(i)?;
        let slot = this.h.read(|v| {
            on!(v, s => {
                let size = s.size();
                if i < 0 || i as u64 >= size as u64 {
                    return Err(Error::IndexOutOfRange { index: i, len: size });
                }
                let i = i as usize;
                if !s.occupied(i) {
                    return Err(Error::SlotFree { index: i });
                }
                Ok((i, s.generation(i)?))
            })
        })?;
        Ok(PyEntry::new(
            this.h.clone(),
            slot.0,
            slot.1,
            None,
            slf.clone().into_any().unbind(),
        ))
    }

    /// Check internal invariants; raise `AssertionError` on a broken one.
    fn validate(&self, py: Python<'_>) -> PyResult<()> {
        crate::error::interruptible(py, || self.h.read(|v| on!(v, s => s.validate())))
    }

    /// The origin's name for `validate()`.
    fn assertions(&self, py: Python<'_>) -> PyResult<()> {
        self.validate(py)
    }

    /// A numpy array of the occupied indices whose member `name` equals `value` (converted like a write).
    fn find<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let m = self.member_index(name)?;
        let ty = self
            .h
            .read(|v| on!(v, s => s.schema().member(m).map(|x| x.ty().clone())))?;
        let found: Vec<usize> = if ty == MemberType::Object {
            // Python objects compare with Python's `==`, run after the store is released (it may run code).
            let held: Vec<(usize, Py<PyAny>)> = self.h.read(
                |v| on!(v, s => s.indices().map(|i| Ok((i, object_of(py, &s.get(i, m)?)))).collect()),
            )?;
            let mut found = Vec::new();
            for (i, obj) in held {
                if obj.bind(py).eq(value)? {
                    found.push(i);
                }
            }
            found
        } else {
            let val = member_value(value, &ty)?;
            self.h.read(|v| on!(v, s => s.find(m, &val)))?
        };
        Ok(PyArray1::from_iter(py, found.into_iter().map(|i| i as i64)).into_any())
    }

    /// `copy.copy(s)`: the same as `s.copy()` (object members' objects are shared).
    fn __copy__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.call_method0("copy")
    }

    /// `copy.deepcopy(s)`: `s.copy()` with object members' objects deep-copied.
    fn __deepcopy__<'py>(slf: &Bound<'py, Self>, memo: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let copy = slf.call_method0("copy")?;
        // Registered first, as `copy.deepcopy` expects: an object member referring back to this store
        // deep-copies to the copy, not to a second copy.
        memo.set_item(slf.as_ptr() as usize, &copy)?;
        own_objects(slf.py(), &copy.cast::<PyStore>()?.get().h, Some(memo))?;
        Ok(copy)
    }

    /// Stores are not picklable (`TypeError`): their memory is the point; copy them instead.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Err(PyTypeError::new_err(format!(
            "cannot pickle {}",
            slf.get_type().name()?
        )))
    }

    /// Python's garbage collector: the objects held by object members. Only the store object that owns
    /// the data reports them (a chunk view of a dynamic store shares its parent's and reports nothing), so
    /// each reference is visited once.
    fn __traverse__(&self, visit: pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.parent)?;
        if self.h.chunk.is_none() {
            self.h.data.traverse(&visit)?;
        }
        Ok(())
    }

    /// Break reference cycles: drop the objects held by object members.
    fn __clear__(&self) {
        if self.h.chunk.is_none() {
            drop(self.h.data.take_objects());
        }
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let name = slf.get_type().name()?.to_string();
        let this = slf.get();
        if let (Some(k), true) = (this.h.chunk, this.h.chunk_released()) {
            return Ok(format!("<{name}: chunk {k}, released by retract() or reset()>"));
        }
        Ok(format!("<{name} len={} size={}>", this.__len__()?, this.size()?))
    }
}

/// `Genes.fitness`: the attribute through which `s.fitness` reaches a member of a store type (a data
/// descriptor the Python package puts on each `StaticStore` subclass). With it the subclass keeps
/// CPython's generic attribute lookup, so method calls (`s.add(...)`, `s.entry(i)`) take CPython's fast
/// path instead of making a bound method each time; `s.fitness = v` is the shorthand `s["fitness"] = v`.
#[pyclass(frozen, module = "compactstore._native", name = "MemberAttr")]
pub struct PyMemberAttr {
    name: Py<PyString>,
    m: usize,
}

#[pymethods]
impl PyMemberAttr {
    #[new]
    fn new(name: Bound<'_, PyString>, m: usize) -> PyResult<Self> {
        // Interned, as a schema's names are, so matching one is a pointer comparison.
        let name = PyString::intern(name.py(), name.to_str()?).unbind();
        Ok(PyMemberAttr { name, m })
    }

    /// The member name.
    #[getter]
    fn name(&self, py: Python<'_>) -> Py<PyString> {
        self.name.clone_ref(py)
    }

    fn __get__<'py>(
        slf: &Bound<'py, Self>,
        obj: Option<&Bound<'py, PyAny>>,
        _owner: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        match obj {
            Some(obj) if !obj.is_none() => {
                let store = obj.cast::<PyStore>()?;
                let this = slf.get();
                // The descriptor names a member of its class's schema; a store of another schema (an
                // instance of an unrelated class reaching this descriptor) is looked up by name.
                let m = match store.get().h.data.names.get(this.m) {
                    Some(n) if n.bind(py).is(this.name.bind(py)) => this.m,
                    _ => store
                        .get()
                        .h
                        .data
                        .member_of(this.name.bind(py).as_any())
                        .map_err(|_| crate::attr::missing(obj, this.name.bind(py)))?,
                };
                Ok(Bound::new(py, PyStore::container(store, m)?)?.into_any())
            }
            _ => Ok(slf.clone().into_any()),
        }
    }

    fn __set__(&self, obj: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        obj.set_item(self.name.bind(obj.py()), value)
    }

    fn __delete__(&self, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(pyo3::exceptions::PyAttributeError::new_err(format!(
            "cannot delete member {:?} of a store",
            self.name.bind(obj.py()).to_str()?
        )))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<member {:?} of a store type>",
            self.name.bind(py).to_str()?
        ))
    }
}

/// Give every object member slot of `h` a Python reference of its own: `copy.deepcopy(obj, memo)` with a
/// memo (for `copy.deepcopy(s)`), else a new reference to the same object (for `s.copy()`, whose engine
/// clone shares one reference between the two stores: the garbage collector must see each reference
/// once, from one store).
pub(crate) fn own_objects(py: Python<'_>, h: &Handle, memo: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    if !h
        .data
        .schema
        .members()
        .iter()
        .any(|m| m.ty() == &compactstore::MemberType::Object)
    {
        return Ok(());
    }
    let objects: Vec<(usize, usize, Py<PyAny>)> = h.read(|v| {
        on!(v, s => {
            let mut out = Vec::new();
            for (m, member) in s.schema().members().iter().enumerate() {
                if member.ty() != &compactstore::MemberType::Object {
                    continue;
                }
                for i in 0..s.size() {
                    if let Value::Object(o) = s.get(i, m)? {
                        if let Some(obj) = o.0.downcast_ref::<crate::cell::PyObj>().and_then(crate::cell::PyObj::get) {
                            out.push((i, m, obj.clone_ref(py)));
                        }
                    }
                }
            }
            Ok(out)
        })
    })?;
    let deepcopy = match memo {
        Some(_) => Some(py.import("copy")?.getattr("deepcopy")?),
        None => None,
    };
    for (i, m, obj) in objects {
        let new = match (&deepcopy, memo) {
            (Some(f), Some(memo)) => f.call1((obj, memo))?.unbind(),
            _ => obj,
        };
        let obj = compactstore::ObjectRef(std::sync::Arc::new(crate::cell::PyObj::new(new)));
        h.write(false, |v| match v {
            crate::shared::ViewMut::Keyed(k) => k.replace_object(i, m, obj),
            v => on_mut!(v, s => s.write(i, m, &Value::Object(obj))),
        })?;
    }
    Ok(())
}

/// A handle on a new, independent copy of `src`'s data (`copy()`), made by `pick` from its view.
fn copied(
    src: &Bound<'_, PyStore>,
    pick: impl FnOnce(View<'_>) -> compactstore::Result<Inner>,
) -> PyResult<Handle> {
    let h = &src.get().h;
    let inner = h.read(pick)?;
    let (names, aliases) = h.data.names_ref(src.py());
    let copy = Handle {
        data: Shared::new(inner, names, aliases),
        chunk: None,
        chunk_uid: 0,
    };
    own_objects(src.py(), &copy, None)?;
    Ok(copy)
}

fn schema_of(cls: &Bound<'_, PyType>) -> PyResult<Py<PySchema>> {
    let schema = cls.getattr("_cs_schema").map_err(|_| {
        PyTypeError::new_err(format!(
            "{} has no members: derive a class with annotated members, or use compactstore.make_store",
            cls.name().map(|n| n.to_string()).unwrap_or_default()
        ))
    })?;
    Ok(schema
        .cast_into::<PySchema>()
        .map_err(|_| PyTypeError::new_err("_cs_schema is not a Schema"))?
        .unbind())
}

fn size_arg(size: &Bound<'_, PyAny>) -> PyResult<usize> {
    match scalar_value(size) {
        Ok(Value::Int(i)) if i >= 0 => Ok(i as usize),
        Ok(Value::Bool(b)) => Ok(usize::from(b)),
        Ok(Value::Int(_)) => Err(PyValueError::new_err("size must be >= 0")),
        Ok(Value::UInt(_)) => Err(PyValueError::new_err("size too large")),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(size.py()) => {
            Err(PyValueError::new_err("size too large"))
        }
        _ => Err(PyTypeError::new_err("size must be an int")),
    }
}

/// A store of a fixed number of slots, every member's column allocated once. Derive from it with
/// annotated members (`class Genes(StaticStore): ref: i64`), then `Genes(size)`.
#[pyclass(extends = PyStore, subclass, frozen, module = "compactstore._native", name = "StaticStore")]
pub struct PyStaticStore;

#[pymethods]
impl PyStaticStore {
    /// A store of `size` preallocated slots (default 65536), all free.
    #[new]
    #[classmethod]
    #[pyo3(signature = (size = None, *, _parent = None, _chunk = None, _copy_of = None))]
    fn new(
        cls: &Bound<'_, PyType>,
        size: Option<&Bound<'_, PyAny>>,
        _parent: Option<&Bound<'_, PyStore>>,
        _chunk: Option<usize>,
        _copy_of: Option<&Bound<'_, PyStore>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let py = cls.py();
        // The private arguments only ever come from this crate (chunk views, copies); still, a store of
        // one type never carries another type's data.
        for src in [_parent, _copy_of].into_iter().flatten() {
            let schema = schema_of(cls)?;
            if *schema.bind(py).get().schema != *src.get().h.data.schema {
                return Err(PyTypeError::new_err("the source store has another schema"));
            }
        }
        let h = if let (Some(parent), Some(k)) = (_parent, _chunk) {
            Handle {
                data: parent.get().h.data.clone(),
                chunk: Some(k),
                chunk_uid: parent.get().h.read(|v| match v {
                    View::Dynamic(d) => Ok(d.chunks().get(k).map_or(0, compactstore::StaticStore::uid)),
                    View::Static(_) => Ok(0),
                })?,
            }
        } else if let Some(src) = _copy_of {
            copied(src, |v| match v {
                View::Static(s) => Ok(Inner::Static(s.clone())),
                View::Dynamic(_) => Err(Error::InvalidArgument("not a static store".into())),
            })?
        } else {
            let schema = schema_of(cls)?;
            let schema = schema.bind(py).get();
            let size = match size {
                Some(s) => size_arg(s)?,
                None => 65536,
            };
            let store = StaticStore::try_new(schema.schema.clone(), size).py()?;
            let (names, aliases) = schema.names_ref(py);
            Handle {
                data: Shared::new(Inner::Static(store), names, aliases),
                chunk: None,
                chunk_uid: 0,
            }
        };
        let parent = _parent
            .filter(|_| _chunk.is_some())
            .map(|p| p.clone().into_any().unbind());
        Ok(PyClassInitializer::from(PyStore { h, parent }).add_subclass(PyStaticStore))
    }

    /// Drop every entry; with `size`, also change the size (refused with `BufferError` while a
    /// zero-copy numpy view of this store exists, since the buffers would move).
    #[pyo3(signature = (size = None))]
    fn reset(slf: &Bound<'_, Self>, size: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let h = &slf.as_super().get().h;
        match size {
            None => h.write(true, |v| on_mut!(v, s => s.reset())),
            Some(size) => {
                let size = size_arg(size)?;
                let same = h.read(|v| Ok(on!(v, s => s.size())))? == size;
                if !same && h.data.exported() {
                    return Err(PyBufferError::new_err(
                        "cannot resize a store while a numpy view of it exists (reset() without a size is safe)",
                    ));
                }
                h.write(true, |v| match v {
                    crate::shared::ViewMut::Static(s) => {
                        if s.size() == size {
                            s.reset()
                        } else {
                            s.reset_with_size(size)
                        }
                    }
                    _ => Err(Error::InvalidArgument("not a static store".into())),
                })
            }
        }
    }

    /// A new, empty store of the same type and size.
    fn clone<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let size = slf.as_super().get().size()?;
        slf.get_type().call1((size,))
    }

    /// An independent store with the same entries, free slots and `last_index`.
    fn copy<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let kwargs = PyDict::new(slf.py());
        kwargs.set_item("_copy_of", slf)?;
        slf.get_type().call((), Some(&kwargs))
    }
}

/// A store that grows by appending static stores (chunks) of `2**log2size` slots; existing data never
/// moves. `DynamicStore(Genes, log2size=11)`.
#[pyclass(extends = PyStore, subclass, frozen, module = "compactstore._native", name = "DynamicStore")]
pub struct PyDynamicStore {
    store_type: Py<PyType>,
}

#[pymethods]
impl PyDynamicStore {
    /// A dynamic store of `store_type` (a `StaticStore` subclass) growing in chunks of `2**log2size`.
    #[new]
    #[pyo3(signature = (store_type, log2size = None, *, _copy_of = None))]
    fn new(
        store_type: &Bound<'_, PyType>,
        log2size: Option<&Bound<'_, PyAny>>,
        _copy_of: Option<&Bound<'_, PyStore>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let py = store_type.py();
        if !store_type.is_subclass_of::<PyStaticStore>()? {
            return Err(PyTypeError::new_err("DynamicStore takes a StaticStore subclass"));
        }
        let h = if let Some(src) = _copy_of {
            copied(src, |v| match v {
                View::Dynamic(d) => Ok(Inner::Dynamic(d.clone())),
                View::Static(_) => Err(Error::InvalidArgument("not a dynamic store".into())),
            })?
        } else {
            let schema = schema_of(store_type)?;
            let schema = schema.bind(py).get();
            let k = match log2size {
                Some(k) => log2size_arg(k)?,
                None => DEFAULT_LOG2SIZE,
            };
            let store = DynamicStore::new(schema.schema.clone(), k).py()?;
            let (names, aliases) = schema.names_ref(py);
            Handle {
                data: Shared::new(Inner::Dynamic(store), names, aliases),
                chunk: None,
                chunk_uid: 0,
            }
        };
        Ok(
            PyClassInitializer::from(PyStore { h, parent: None }).add_subclass(PyDynamicStore {
                store_type: store_type.clone().unbind(),
            }),
        )
    }

    /// The static store type of the chunks.
    #[getter]
    fn store_type(&self, py: Python<'_>) -> Py<PyType> {
        self.store_type.clone_ref(py)
    }

    /// `log2` of the chunk size.
    #[getter]
    fn log2size(slf: &Bound<'_, Self>) -> PyResult<u32> {
        dynamic(slf, |d| Ok(d.log2size()))
    }

    /// Release trailing chunks that hold no entry (always keeps one); returns how many.
    fn retract(slf: &Bound<'_, Self>) -> PyResult<usize> {
        let h = &slf.as_super().get().h;
        refuse_dropping_exported_chunks(h, "retract")?;
        h.write(true, |v| match v {
            crate::shared::ViewMut::Dynamic(d) => Ok(d.retract()),
            _ => Err(Error::InvalidArgument("not a dynamic store".into())),
        })
    }

    /// The static stores this store is made of, in order: live views of the chunks, instances of the
    /// store type (they can read and write members, not allocate or free slots).
    #[getter]
    fn chunks<'py>(slf: &Bound<'py, Self>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let n = dynamic(slf, |d| Ok(d.chunks().len()))?;
        let ty = slf.get().store_type.bind(slf.py());
        (0..n)
            .map(|k| {
                let kwargs = PyDict::new(slf.py());
                kwargs.set_item("_parent", slf)?;
                kwargs.set_item("_chunk", k)?;
                ty.call((), Some(&kwargs))
            })
            .collect()
    }

    /// Drop every entry, keeping one chunk; with `log2size`, also change the chunk size.
    ///
    /// API.md's `s.reset(size=None)` names the argument `size` for every store; for a dynamic store it is
    /// the log2size, and both spellings are taken (`reset(4)`, `reset(log2size=4)`, `reset(size=4)`).
    #[pyo3(signature = (log2size = None, *, size = None))]
    fn reset(
        slf: &Bound<'_, Self>,
        log2size: Option<&Bound<'_, PyAny>>,
        size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let h = &slf.as_super().get().h;
        let log2size = match (log2size, size) {
            (Some(_), Some(_)) => return Err(PyTypeError::new_err("give log2size or size, not both")),
            (a, b) => a.or(b).filter(|k| !k.is_none()),
        };
        let k = log2size.map(log2size_arg).transpose()?;
        if k.is_some_and(|k| Self::log2size(slf).is_ok_and(|cur| cur != k)) && h.data.exported() {
            // A new chunk size replaces every chunk, the first one too.
            return Err(PyBufferError::new_err(
                "cannot change the chunk size of a dynamic store while a numpy view of one of its chunks exists",
            ));
        }
        refuse_dropping_exported_chunks(h, "reset")?;
        h.write(true, |v| match v {
            crate::shared::ViewMut::Dynamic(d) => match k {
                Some(k) if k != d.log2size() => d.reset_with_log2size(k),
                _ => d.reset(),
            },
            _ => Err(Error::InvalidArgument("not a dynamic store".into())),
        })
    }

    /// A new, empty dynamic store of the same type, chunk size and size (as many chunks, all empty).
    fn clone<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let k = Self::log2size(slf)?;
        let chunks = dynamic(slf, |d| Ok(d.chunks().len()))?;
        let new = slf.get_type().call1((slf.get().store_type.bind(slf.py()), k))?;
        // The same size: as many (empty) chunks as this store has.
        new.cast::<PyStore>()?.get().h.write(true, |v| match v {
            crate::shared::ViewMut::Dynamic(d) => {
                while d.chunks().len() < chunks {
                    d.grow()?;
                }
                Ok(())
            }
            _ => Err(Error::InvalidArgument("not a dynamic store".into())),
        })?;
        Ok(new)
    }

    /// An independent store with the same entries, free slots and `last_index`.
    fn copy<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let kwargs = PyDict::new(slf.py());
        kwargs.set_item("_copy_of", slf)?;
        slf.get_type()
            .call((slf.get().store_type.bind(slf.py()),), Some(&kwargs))
    }

    /// Python's garbage collector: the store type this store makes its chunks of.
    fn __traverse__(&self, visit: pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.store_type)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let base = slf.as_super().get();
        let name = slf.get().store_type.bind(slf.py()).name()?;
        Ok(format!(
            "<DynamicStore of {name} len={} size={} chunks={}>",
            base.__len__()?,
            base.size()?,
            dynamic(slf, |d| Ok(d.chunks().len()))?
        ))
    }
}

fn dynamic<R>(
    slf: &Bound<'_, PyDynamicStore>,
    f: impl FnOnce(&DynamicStore) -> compactstore::Result<R>,
) -> PyResult<R> {
    slf.as_super().get().h.read(|v| match v {
        View::Dynamic(d) => f(d),
        View::Static(_) => Err(Error::InvalidArgument("not a dynamic store".into())),
    })
}

pub(crate) fn log2size_arg(k: &Bound<'_, PyAny>) -> PyResult<u32> {
    match scalar_value(k) {
        Ok(Value::Int(i)) if (0..=i64::from(compactstore::MAX_LOG2SIZE)).contains(&i) => Ok(i as u32),
        Ok(Value::Int(_) | Value::UInt(_)) => Err(PyValueError::new_err(format!(
            "log2size must be 0..={}",
            compactstore::MAX_LOG2SIZE
        ))),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(k.py()) => Err(
            PyValueError::new_err(format!("log2size must be 0..={}", compactstore::MAX_LOG2SIZE)),
        ),
        _ => Err(PyTypeError::new_err("log2size must be an int")),
    }
}
