//! The `Store` class (what static and dynamic stores share), its `MemberAttr` descriptor, and the
//! helpers both store classes use: converting members, copying and cloning, `Made`.

use compactstore::{Error, MemberType, Store, Value};
use numpy::PyArray1;
use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyType};

use crate::args::{slot_in_range, slot_index};
use crate::container::PyContainer;
use crate::convert::{checked_member_value, member_value, object_of};
use crate::dynamic_store::PyDynamicStore;
use crate::entry::PyEntry;
use crate::error::{in_failing_member, in_member, ToPyResult};
use crate::iter::{PyEntryIterator, Yield};
use crate::schema::PySchema;
use crate::shared::{Handle, Inner, Shared, View};
use crate::static_store::PyStaticStore;
use crate::{on, on_mut};

/// How [`convert_members`] takes a mapping of member values.
#[derive(Clone, Copy)]
pub struct Members {
    /// Check each value against its member type here, for callers that write value by value and must
    /// change nothing on error (`Entry.update`, `pool[k] = d`); `add` leaves that to the engine, which
    /// checks every value before it allocates.
    pub check: bool,
    /// Skip unknown names, and `None` for a member that cannot hold it (egp-stores' leniency, kept for
    /// ported code: such a `None` means "not given").
    pub ignore_unknown: bool,
    /// Take a mapping only: anything without `items` is a `TypeError` with this message. Else `None` is
    /// nothing and an object without `items` an iterable of (name, value) pairs, as `dict()` takes.
    pub mapping_only: Option<&'static str>,
}

impl Members {
    /// `add(mapping, **members)`: a mapping or pairs, unknown names refused, values checked by the engine.
    pub const ADD: Members = Members {
        check: false,
        ignore_unknown: false,
        mapping_only: None,
    };
    /// `Entry.update(mapping, **members)`: as `add`, each value checked here.
    pub const UPDATE: Members = Members {
        check: true,
        ..Members::ADD
    };
}

/// Resolve member names to positions and convert their values (`mapping`, then `kwargs`, as `how` says);
/// an unknown name → `KeyError`, a name that is not a str → `TypeError`, a refused value its error naming
/// the member.
pub fn convert_members(
    h: &Handle,
    mapping: Option<&Bound<'_, PyAny>>,
    kwargs: Option<&Bound<'_, PyDict>>,
    how: Members,
) -> PyResult<Vec<(usize, Value)>> {
    let schema = &h.data.schema;
    let dict = mapping.and_then(|m| m.cast::<PyDict>().ok());
    let mut out = Vec::with_capacity(dict.map_or(0, |d| d.len()));
    let mut put = |k: &Bound<'_, PyAny>, val: &Bound<'_, PyAny>| -> PyResult<()> {
        if !k.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err("member names are str"));
        }
        let m = match h.data.member_of(k) {
            Ok(m) => m,
            Err(_) if how.ignore_unknown => return Ok(()),
            Err(e) => return Err(e),
        };
        let member = schema.member(m).py()?;
        let ty = member.ty();
        if how.ignore_unknown && val.is_none() && !ty.is_optional() && ty != &MemberType::Object {
            return Ok(());
        }
        let value = if how.check {
            checked_member_value(val, ty)
        } else {
            member_value(val, ty)
        };
        out.push((m, value.map_err(|e| in_member(k.py(), e, member.name()))?));
        Ok(())
    };
    if let Some(d) = dict {
        // A snapshot of the items: converting a value can run Python code (`__index__`), which could
        // change the dict under an iterator (PyO3's panics on that).
        for (k, val) in d.iter().collect::<Vec<_>>() {
            put(&k, &val)?;
        }
    } else if let Some(mapping) = mapping.filter(|m| !m.is_none() || how.mapping_only.is_some()) {
        // A mapping, or (unless `mapping_only`) an iterable of (name, value) pairs, as dict() takes.
        let items = if mapping.hasattr("items")? {
            mapping.call_method0("items")?
        } else if let Some(message) = how.mapping_only {
            return Err(PyTypeError::new_err(message));
        } else {
            mapping.clone()
        };
        for item in items.try_iter()? {
            let item = item?;
            let (k, val): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            put(&k, &val)?;
        }
    }
    if let Some(kwargs) = kwargs {
        for (k, val) in kwargs.iter().collect::<Vec<_>>() {
            put(&k, &val)?;
        }
    }
    Ok(out)
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
    pub(crate) parent: Option<Py<PyAny>>,
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
    /// The Arrow schema of the entries: the PyCapsule interface (`pyarrow.schema(s)`).
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyCapsule>> {
        crate::arrow::store_schema(py, self)
    }

    /// The entries as an Arrow stream, one record batch per chunk: `pyarrow.table(s)`, `polars.DataFrame(s)`.
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyCapsule>> {
        crate::arrow::store_stream(py, self, requested_schema, None)
    }

    /// `__arrow_c_stream__` of `members` only (`to_arrow(members=...)`).
    fn _cs_arrow_stream<'py>(
        &self,
        py: Python<'py>,
        members: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyCapsule>> {
        crate::arrow::store_stream(py, self, None, members)
    }

    /// Number of occupied slots.
    pub(crate) fn __len__(&self) -> PyResult<usize> {
        self.h.read(|v| Ok(on!(v, s => s.len())))
    }

    /// Slots allocated (static: fixed; dynamic: chunks × chunk size).
    #[getter]
    pub(crate) fn size(&self) -> PyResult<usize> {
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
    pub(crate) fn add(
        &self,
        py: Python<'_>,
        mapping: Option<&Bound<'_, PyAny>>,
        members: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<usize> {
        // Records of numbers in one pass, from plain dicts (every scalar is checked by the engine before
        // it allocates); anything else through the general conversion.
        let plain = match mapping.filter(|m| !m.is_none()) {
            None => Some(None),
            Some(m) => m.cast_exact::<PyDict>().ok().map(Some),
        };
        if let Some(first) = plain {
            if let Some(raws) = self.h.data.scalars_of([first, members]) {
                return self.h.alloc(|v| on_mut!(v, s => s.add_scalars(&raws)));
            }
        }
        let values = convert_members(&self.h, mapping, members, Members::ADD)?;
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
        let written = self.h.write(|v| match v {
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
            Some(slf.clone().into_any().unbind()),
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

    /// A bare native store object is not picklable (`TypeError`); the package's store classes pickle
    /// through their `__reduce_ex__` (by value, or a mapped store by reference to its file).
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

    /// Pickle support: `MemberAttr(name, m)` again (a store class pickled by value, as cloudpickle
    /// sends a class defined in `__main__` to Ray's workers, carries its member descriptors).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, pyo3::types::PyType>, (Py<PyString>, usize)) {
        let this = slf.get();
        (slf.get_type(), (this.name.clone_ref(slf.py()), this.m))
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
        h.write(|v| match v {
            crate::shared::ViewMut::Keyed(k) => k.replace_object(i, m, obj),
            crate::shared::ViewMut::Static(s) => s.write(i, m, &Value::Object(obj)),
            crate::shared::ViewMut::Dynamic(d) => d.write(i, m, &Value::Object(obj)),
        })?;
    }
    Ok(())
}

/// `TypeError` for a store object whose handle does not hold the store kind its class makes (not
/// expected: each class's constructor makes its own kind).
pub(crate) fn wrong_kind(expected: &str) -> PyErr {
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
pub(crate) fn copy_with_state<'py>(src: &Bound<'py, PyStore>) -> PyResult<Bound<'py, PyAny>> {
    let copy = copy_store(src)?;
    copy_instance_state(src.as_any(), &copy, None)?;
    Ok(copy)
}

/// A new, empty store object of `src`'s class over `inner`, with `src`'s Python-level state (`clone()`).
pub(crate) fn clone_with_state<'py>(
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

pub(crate) fn schema_of(cls: &Bound<'_, PyType>) -> PyResult<Py<PySchema>> {
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
