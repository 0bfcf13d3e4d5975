//! The store classes: `Store` (what static and dynamic stores share), `StaticStore`, `DynamicStore`.

use compactstore::{DynamicStore, Error, MemberType, StaticStore, Store, Value, DEFAULT_LOG2SIZE};
use numpy::PyArray1;
use pyo3::exceptions::{PyBufferError, PyIndexError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use crate::container::PyContainer;
use crate::convert::{checked_member_value, member_value, object_of, scalar_value};
use crate::entry::PyEntry;
use crate::error::{in_failing_member, in_member, ToPyResult};
use crate::iter::{PyEntryIterator, Yield};
use crate::schema::PySchema;
use crate::shared::{Handle, Inner, Shared, StoreMut, View};
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
        let member = schema.member(m).py()?;
        let ty = member.ty();
        let value = if check {
            checked_member_value(val, ty)
        } else {
            member_value(val, ty)
        };
        out.push((m, value.map_err(|e| in_member(k.py(), e, member.name()))?));
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
            let member = schema.member(m).py()?;
            let ty = member.ty();
            let convert =
                |v: &Bound<'_, PyAny>| member_value(v, ty).map_err(|e| in_member(v.py(), e, member.name()));
            if let Some(values) = values.as_mut() {
                values.push((m, convert(&v)?));
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
            vals.push((m, convert(&v)?));
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

/// A slot index for `del` and `entry`: `0 <= i < size`, else `IndexError` naming the index as given (an
/// int beyond `i64` too, never a clamped number).
fn slot_in_range(i: &Bound<'_, PyAny>, size: usize) -> PyResult<usize> {
    let k = slot_index(i)?;
    if k >= 0 && (k as u64) < size as u64 {
        return Ok(k as usize);
    }
    let text = i
        .call_method0("__index__")
        .and_then(|n| n.str())
        .map(|s| s.to_string())
        .unwrap_or_else(|_| k.to_string());
    Err(PyIndexError::new_err(format!(
        "slot {text} out of range for size {size}"
    )))
}

/// What static and dynamic stores share: a dictionary-like interface from member names to member
/// containers, and slot allocation. Not instantiated directly: derive from `StaticStore`, or make a
/// `DynamicStore(StoreType)`.
///
/// Memory the allocator refuses (a store, a chunk, a copy, a large str/bytes value) raises `MemoryError`,
/// and the call changes nothing.
#[pyclass(subclass, frozen, weakref, module = "compactstore._native", name = "Store")]
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
        self.h.alloc(|v| on_mut!(v, s => s.next_index()))
    }

    /// `next_index()`, then set the given members (read-only ones too); returns the index.
    ///
    /// Raises `KeyError` for an unknown member, `TypeError`/`OverflowError`/`ValueError` for a bad value;
    /// nothing is allocated then.
    #[pyo3(signature = (mapping = None, **members))]
    fn add(
        &self,
        py: Python<'_>,
        mapping: Option<&Bound<'_, PyAny>>,
        members: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<usize> {
        let values = match convert_for_add(&self.h, mapping, members)? {
            // Every scalar is checked by the engine before it allocates.
            Some(Converted::Raw(raws)) => {
                return self.h.alloc(|v| on_mut!(v, s => s.add_scalars(&raws)));
            }
            Some(Converted::Values(values)) => values,
            None => convert_members(&self.h, mapping, members, false)?,
        };
        // The engine checks every value before it allocates (an error names the member it refused).
        self.h
            .alloc(|v| on_mut!(v, s => s.add(&values)))
            .map_err(|e| in_failing_member(py, e, &self.h.data.schema, &values))
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
        let i = slot_in_range(i, self.size()?)?;
        self.h.alloc(|v| on_mut!(v, s => s.remove(i)))
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
    fn indices(slf: &Bound<'_, Self>) -> PyResult<PyEntryIterator> {
        PyEntryIterator::new(slf.get().h.clone(), slf.clone().into_any().unbind(), Yield::Index)
    }

    /// The free slot indices below `size`, ascending.
    fn empty_indices(&self) -> PyResult<Vec<usize>> {
        self.h.read(|v| on!(v, s => s.empty_indices()))
    }

    /// The member container for `name` (`KeyError` if there is none).
    fn __getitem__(slf: &Bound<'_, Self>, name: &str) -> PyResult<PyContainer> {
        let m = slf.get().member_index(name)?;
        Self::container(slf, m)
    }

    /// The shorthand of egp-utils' store: set member `name` of the entry at `last_index` (read-only members too).
    ///
    /// Raises `IndexError` if there is no entry there (none yet, or it was deleted).
    fn __setitem__(&self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let m = self.member_index(name)?;
        let ty = self
            .h
            .read(|v| on!(v, s => s.schema().member(m).map(|x| x.ty().clone())))?;
        let val = member_value(value, &ty)?;
        /// Write the entry at `last_index`; `false` if there is none.
        fn put<S: Store>(s: &mut S, m: usize, val: &Value) -> compactstore::Result<bool> {
            match s.last_index().filter(|&i| s.occupied(i)) {
                Some(i) => s.write(i, m, val).map(|()| true),
                None => Ok(false),
            }
        }
        let written = self.h.write(false, |v| match v {
            crate::shared::ViewMut::Static(s) => put(s, m, &val),
            crate::shared::ViewMut::Dynamic(d) => put(d, m, &val),
            // Not a store object's handle: keyed stores have their own class.
            crate::shared::ViewMut::Keyed(_) => Ok(false),
        })?;
        if !written {
            return Err(PyIndexError::new_err(
                "no entry at last_index (none allocated yet, or it was deleted)",
            ));
        }
        Ok(())
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

    /// `s.name = v` for a member: the same as `s[name] = v` (egp-utils' shorthand: member `name` of the
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
        let i = slot_in_range(i, this.size()?)?;
        let slot = this.h.read(|v| {
            on!(v, s => {
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

    /// `validate()` under the name egp-utils' store used.
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
        let copy = copy_store(slf)?;
        // Registered first, as `copy.deepcopy` expects: an object member referring back to this store
        // deep-copies to the copy, not to a second copy.
        memo.set_item(slf.as_ptr() as usize, &copy)?;
        own_objects(slf.py(), &copy.cast::<PyStore>()?.get().h, Some(memo))?;
        copy_instance_state(slf.as_any(), &copy, Some(memo))?;
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
            crate::shared::ViewMut::Static(s) => s.write(i, m, &Value::Object(obj)),
            crate::shared::ViewMut::Dynamic(d) => d.write(i, m, &Value::Object(obj)),
        })?;
    }
    Ok(())
}

/// `TypeError` for a store object whose handle does not hold the store kind its class makes (not
/// expected: each class's constructor makes its own kind).
fn wrong_kind(expected: &str) -> PyErr {
    PyTypeError::new_err(format!("not a {expected} store"))
}

/// A handle on a new, independent copy of `src`'s data (`copy()`), made by `pick` from its view (`None`:
/// not the store kind `expected`).
fn copied(
    src: &Bound<'_, PyStore>,
    expected: &str,
    pick: impl FnOnce(View<'_>) -> compactstore::Result<Option<Inner>>,
) -> PyResult<Handle> {
    let h = &src.get().h;
    let inner =
        crate::error::interruptible(src.py(), || h.read(pick))?.ok_or_else(|| wrong_kind(expected))?;
    let (names, aliases) = h.data.names_ref(src.py());
    let copy = Handle {
        data: Shared::new(inner, names, aliases),
        chunk: None,
        chunk_uid: 0,
    };
    own_objects(src.py(), &copy, None)?;
    Ok(copy)
}

/// The private way into a store class's `__new__`: the data a copy, clone or chunk view is to hold, so
/// that the public constructors take no private arguments and a subclass's `__init__` (which may take
/// arguments of its own) is never run for them — as `copy.copy` makes an ordinary object: a new object,
/// its state copied. Only this crate makes one (the class is not in the module); each is used once.
#[pyclass(frozen, module = "compactstore._native", name = "_Made")]
pub(crate) struct Made(std::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>);

impl Made {
    /// An instance of `cls` (the native class `native` or a subclass of it) holding `value`, made by
    /// `native`'s `__new__` without running `__init__`.
    pub(crate) fn instance<'py, T: std::any::Any + Send>(
        native: &Bound<'py, PyType>,
        cls: &Bound<'py, PyType>,
        value: T,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let token = Bound::new(py, Made(std::sync::Mutex::new(Some(Box::new(value)))))?;
        native.call_method1(intern!(py, "__new__"), (cls, token))
    }

    /// The value `obj` carries if it is a `Made` holding a `T` (taken: a token is used once).
    pub(crate) fn take<T: std::any::Any>(obj: &Bound<'_, PyAny>) -> Option<T> {
        let made = obj.cast::<Made>().ok()?;
        let mut held = made.get().0.lock().ok()?;
        match held.take()?.downcast::<T>() {
            Ok(v) => Some(*v),
            Err(other) => {
                *held = Some(other);
                None
            }
        }
    }
}

/// Whether `cls` runs the `__init__` of `native` (its native base): then the constructor's arguments are
/// the public signature's. A subclass with an `__init__` of its own may take other arguments; it passes
/// the store's on through `super().__init__(...)`.
pub(crate) fn runs_own_init(cls: &Bound<'_, PyType>, native: &Bound<'_, PyType>) -> PyResult<bool> {
    let name = intern!(cls.py(), "__init__");
    Ok(cls.getattr(name)?.is(&native.getattr(name)?))
}

/// Give `new` the Python-level state a subclass added to `src` (its instance `__dict__` and the
/// `__slots__` of its own), as `copy.copy` does for an ordinary object; deep-copied with `memo`.
pub(crate) fn copy_instance_state(
    src: &Bound<'_, PyAny>,
    new: &Bound<'_, PyAny>,
    memo: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let py = src.py();
    let value = |v: Bound<'_, PyAny>| -> PyResult<Py<PyAny>> {
        Ok(match memo {
            Some(memo) => py.import("copy")?.getattr("deepcopy")?.call1((v, memo))?.unbind(),
            None => v.unbind(),
        })
    };
    let dict = intern!(py, "__dict__");
    if let (Some(from), Some(to)) = (crate::attr::generic(src, dict)?, crate::attr::generic(new, dict)?) {
        if from.len()? > 0 {
            to.call_method1(intern!(py, "update"), (value(from)?,))?;
        }
    }
    let slots = py
        .import("copyreg")?
        .getattr("_slotnames")?
        .call1((src.get_type(),))?;
    for name in slots.try_iter()? {
        let name = name?;
        let name = name.cast::<PyString>()?;
        if let Some(v) = crate::attr::generic(src, name)? {
            crate::attr::generic_set(new, name, Some(value(v)?.bind(py)))?;
        }
    }
    Ok(())
}

/// A new store object of `src`'s class holding an independent copy of its data (a chunk view copies its
/// chunk); its Python-level state is the caller's to copy.
fn copy_store<'py>(src: &Bound<'py, PyStore>) -> PyResult<Bound<'py, PyAny>> {
    let py = src.py();
    let cls = src.get_type();
    if let Ok(d) = src.cast::<PyDynamicStore>() {
        let h = copied(src, "dynamic", |v| match v {
            View::Dynamic(d) => Ok(Some(Inner::Dynamic(d.try_clone()?))),
            View::Static(_) => Ok(None),
        })?;
        let store_type = d.get().store_type.clone_ref(py);
        return Made::instance(
            &py.get_type::<PyDynamicStore>(),
            &cls,
            (PyStore { h, parent: None }, store_type),
        );
    }
    let h = copied(src, "static", |v| match v {
        View::Static(s) => Ok(Some(Inner::Static(s.try_clone()?))),
        View::Dynamic(_) => Ok(None),
    })?;
    Made::instance(&py.get_type::<PyStaticStore>(), &cls, PyStore { h, parent: None })
}

/// `s.copy()`: [`copy_store`], and the Python-level state of a subclass instance (shallow).
fn copy_with_state<'py>(src: &Bound<'py, PyStore>) -> PyResult<Bound<'py, PyAny>> {
    let copy = copy_store(src)?;
    copy_instance_state(src.as_any(), &copy, None)?;
    Ok(copy)
}

/// A new, empty store object of `src`'s class over `inner`, with `src`'s Python-level state (`clone()`).
fn clone_with_state<'py>(
    src: &Bound<'py, PyStore>,
    inner: Inner,
    store_type: Option<Py<PyType>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = src.py();
    let (names, aliases) = src.get().h.data.names_ref(py);
    let store = PyStore {
        h: Handle {
            data: Shared::new(inner, names, aliases),
            chunk: None,
            chunk_uid: 0,
        },
        parent: None,
    };
    let cls = src.get_type();
    let new = match store_type {
        Some(t) => Made::instance(&py.get_type::<PyDynamicStore>(), &cls, (store, t))?,
        None => Made::instance(&py.get_type::<PyStaticStore>(), &cls, store)?,
    };
    copy_instance_state(src.as_any(), &new, None)?;
    Ok(new)
}

/// Drop every entry of a static store and give it `size` slots (`reset(size)`, `__init__`).
fn reset_static(h: &Handle, size: usize) -> PyResult<()> {
    let same = h.read(|v| Ok(on!(v, s => s.size())))? == size;
    if !same && h.data.exported() {
        return Err(PyBufferError::new_err(
            "cannot resize a store while a numpy view of it exists (reset() without a size is safe)",
        ));
    }
    h.alloc(|v| match v {
        StoreMut::Static(s) => {
            if s.size() == size {
                s.reset()?;
            } else {
                s.reset_with_size(size)?;
            }
            Ok(true)
        }
        StoreMut::Dynamic(_) => Ok(false),
    })?
    .then_some(())
    .ok_or_else(|| wrong_kind("static"))
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
    /// A store type's instance; `__init__` gives it its size.
    ///
    /// The arguments are `__init__`'s (a subclass's `__init__` may take others): the store starts with no
    /// slots. Copies, clones and chunk views come in through a [`Made`] instead.
    #[new]
    #[classmethod]
    #[pyo3(signature = (*args, **kwargs), text_signature = "(size=None)")]
    fn new(
        cls: &Bound<'_, PyType>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let py = cls.py();
        let schema = schema_of(cls)?;
        let schema = schema.bind(py).get();
        if let (1, None) = (args.len(), kwargs) {
            if let Some(store) = Made::take::<PyStore>(&args.get_item(0)?) {
                // Only this crate makes one; still, a store of one type never carries another's data.
                if *schema.schema != *store.h.data.schema {
                    return Err(PyTypeError::new_err("the source store has another schema"));
                }
                return Ok(PyClassInitializer::from(store).add_subclass(PyStaticStore));
            }
        }
        let store = StaticStore::try_new(schema.schema.clone(), 0).py()?;
        let (names, aliases) = schema.names_ref(py);
        let h = Handle {
            data: Shared::new(Inner::Static(store), names, aliases),
            chunk: None,
            chunk_uid: 0,
        };
        Ok(PyClassInitializer::from(PyStore { h, parent: None }).add_subclass(PyStaticStore))
    }

    /// Give the store `size` slots (default 65536), all free: `Genes(size)` runs it, and a subclass's own
    /// `__init__` runs it through `super().__init__(size)`. Run again, it re-initialises the store as
    /// `list.__init__` does (every entry dropped), as `reset(size)`.
    ///
    /// Raises `TypeError` for a size that is not an int, `ValueError` for a negative or too large one.
    #[pyo3(signature = (size = None))]
    fn __init__(slf: &Bound<'_, Self>, size: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let size = match size {
            Some(s) => size_arg(s)?,
            None => 65536,
        };
        reset_static(&slf.as_super().get().h, size)
    }

    /// Drop every entry; with `size`, also change the size (refused with `BufferError` while a
    /// zero-copy numpy view of this store exists, since the buffers would move).
    #[pyo3(signature = (size = None))]
    fn reset(slf: &Bound<'_, Self>, size: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let h = &slf.as_super().get().h;
        match size {
            None => h.alloc(|v| on_mut!(v, s => s.reset())),
            Some(size) => reset_static(h, size_arg(size)?),
        }
    }

    /// A new, empty store of the same type and size (made without running `__init__`; a subclass
    /// instance's attributes are copied, as `copy()` copies them).
    fn clone<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let this = slf.as_super();
        let store = StaticStore::try_new(this.get().h.data.schema.clone(), this.get().size()?).py()?;
        clone_with_state(this, Inner::Static(store), None)
    }

    /// An independent store with the same entries, free slots and `last_index` (made without running
    /// `__init__`; a subclass instance's attributes are copied, shallowly, as `copy.copy` does).
    fn copy<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        copy_with_state(slf.as_super())
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
    /// A dynamic store of `store_type` (a `StaticStore` subclass); `__init__` gives it its chunk size.
    ///
    /// The other arguments are `__init__`'s (a subclass's `__init__` may take others): the store starts
    /// with one chunk of one slot. Copies and clones come in through a [`Made`] instead.
    #[new]
    #[pyo3(signature = (store_type, *args, **kwargs), text_signature = "(store_type, log2size=None)")]
    fn new(
        store_type: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let py = store_type.py();
        let made = match (args.len(), kwargs) {
            (0, None) => Made::take::<(PyStore, Py<PyType>)>(store_type),
            _ => None,
        };
        let (store, store_type) = match made {
            Some(made) => made,
            None => {
                let store_type = store_type
                    .cast::<PyType>()
                    .ok()
                    .filter(|t| t.is_subclass_of::<PyStaticStore>().unwrap_or(false))
                    .ok_or_else(|| PyTypeError::new_err("DynamicStore takes a StaticStore subclass"))?;
                let schema = schema_of(store_type)?;
                let schema = schema.bind(py).get();
                let store = DynamicStore::new(schema.schema.clone(), 0).py()?;
                let (names, aliases) = schema.names_ref(py);
                let h = Handle {
                    data: Shared::new(Inner::Dynamic(store), names, aliases),
                    chunk: None,
                    chunk_uid: 0,
                };
                (PyStore { h, parent: None }, store_type.clone().unbind())
            }
        };
        Ok(PyClassInitializer::from(store).add_subclass(PyDynamicStore { store_type }))
    }

    /// Give the store one empty chunk of `2**log2size` slots (default 11): `DynamicStore(T, log2size)`
    /// runs it, and a subclass's own `__init__` runs it through `super().__init__(store_type, log2size)`.
    /// Run again, it re-initialises the store (every entry dropped), as `reset(log2size)`.
    ///
    /// Raises `TypeError` if `store_type` is not the store type the store was made for, or `log2size` is
    /// not an int; `ValueError` for a log2size out of range.
    #[pyo3(signature = (store_type, log2size = None))]
    fn __init__(
        slf: &Bound<'_, Self>,
        store_type: &Bound<'_, PyAny>,
        log2size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if !store_type.is(slf.get().store_type.bind(slf.py())) {
            return Err(PyTypeError::new_err(format!(
                "this store was made for store type {}, not {}",
                slf.get().store_type.bind(slf.py()).name()?,
                store_type.repr()?
            )));
        }
        let k = match log2size {
            Some(k) => log2size_arg(k)?,
            None => DEFAULT_LOG2SIZE,
        };
        Self::reset_to(slf, Some(k))
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
        h.alloc(|v| match v {
            StoreMut::Dynamic(d) => Ok(Some(d.retract())),
            StoreMut::Static(_) => Ok(None),
        })?
        .ok_or_else(|| wrong_kind("dynamic"))
    }

    /// The static stores this store is made of, in order: live views of the chunks, instances of the
    /// store type (they can read and write members, not allocate or free slots).
    #[getter]
    fn chunks<'py>(slf: &Bound<'py, Self>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let py = slf.py();
        let uids = dynamic(slf, |d| {
            Ok(d.chunks().iter().map(StaticStore::uid).collect::<Vec<_>>())
        })?;
        let ty = slf.get().store_type.bind(py);
        let native = py.get_type::<PyStaticStore>();
        let data = &slf.as_super().get().h.data;
        uids.into_iter()
            .enumerate()
            .map(|(k, chunk_uid)| {
                let h = Handle {
                    data: data.clone(),
                    chunk: Some(k),
                    chunk_uid,
                };
                let parent = Some(slf.clone().into_any().unbind());
                Made::instance(&native, ty, PyStore { h, parent })
            })
            .collect()
    }

    /// Drop every entry, keeping one chunk; with `log2size`, also change the chunk size.
    ///
    /// The documented `s.reset(size=None)` names the argument `size` for every store; for a dynamic store it is
    /// the log2size, and both spellings are taken (`reset(4)`, `reset(log2size=4)`, `reset(size=4)`).
    #[pyo3(signature = (log2size = None, *, size = None))]
    fn reset(
        slf: &Bound<'_, Self>,
        log2size: Option<&Bound<'_, PyAny>>,
        size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let log2size = match (log2size, size) {
            (Some(_), Some(_)) => return Err(PyTypeError::new_err("give log2size or size, not both")),
            (a, b) => a.or(b).filter(|k| !k.is_none()),
        };
        let k = log2size.map(log2size_arg).transpose()?;
        Self::reset_to(slf, k)
    }

    /// A new, empty dynamic store of the same type, chunk size and size (as many chunks, all empty; made
    /// without running `__init__`, a subclass instance's attributes copied as `copy()` copies them).
    fn clone<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let k = Self::log2size(slf)?;
        let chunks = dynamic(slf, |d| Ok(d.chunks().len()))?;
        let mut store = DynamicStore::new(slf.as_super().get().h.data.schema.clone(), k).py()?;
        // The same size: as many (empty) chunks as this store has.
        while store.chunks().len() < chunks {
            store.grow().py()?;
        }
        let store_type = slf.get().store_type.clone_ref(slf.py());
        clone_with_state(slf.as_super(), Inner::Dynamic(store), Some(store_type))
    }

    /// An independent store with the same entries, free slots and `last_index` (made without running
    /// `__init__`; a subclass instance's attributes are copied, shallowly, as `copy.copy` does).
    fn copy<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        copy_with_state(slf.as_super())
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

impl PyDynamicStore {
    /// Drop every entry, keeping one chunk; with `k`, a chunk size of `2**k` (`reset`, `__init__`).
    fn reset_to(slf: &Bound<'_, Self>, k: Option<u32>) -> PyResult<()> {
        let h = &slf.as_super().get().h;
        if k.is_some_and(|k| Self::log2size(slf).is_ok_and(|cur| cur != k)) && h.data.exported() {
            // A new chunk size replaces every chunk, the first one too.
            return Err(PyBufferError::new_err(
                "cannot change the chunk size of a dynamic store while a numpy view of one of its chunks exists",
            ));
        }
        refuse_dropping_exported_chunks(h, "reset")?;
        h.alloc(|v| match v {
            StoreMut::Dynamic(d) => {
                match k {
                    Some(k) if k != d.log2size() => d.reset_with_log2size(k)?,
                    _ => d.reset()?,
                }
                Ok(true)
            }
            StoreMut::Static(_) => Ok(false),
        })?
        .then_some(())
        .ok_or_else(|| wrong_kind("dynamic"))
    }
}

fn dynamic<R>(
    slf: &Bound<'_, PyDynamicStore>,
    f: impl FnOnce(&DynamicStore) -> compactstore::Result<R>,
) -> PyResult<R> {
    slf.as_super()
        .get()
        .h
        .read(|v| match v {
            View::Dynamic(d) => f(d).map(Some),
            View::Static(_) => Ok(None),
        })?
        .ok_or_else(|| wrong_kind("dynamic"))
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
