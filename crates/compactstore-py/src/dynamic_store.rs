//! The `DynamicStore` class: a store that grows by chunks.

use compactstore::{DynamicStore, StaticStore, Store, DEFAULT_LOG2SIZE};
use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::args::log2size_arg;
use crate::error::ToPyResult;
use crate::on;
use crate::shared::{Handle, Inner, Shared, StoreMut, View};
use crate::static_store::PyStaticStore;
use crate::store::{clone_with_state, copy_with_state, schema_of, wrong_kind, Made, PyStore};

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

/// A store that grows by appending static stores (chunks) of `2**log2size` slots; existing data never
/// moves. `DynamicStore(Genes, log2size=11)`.
#[pyclass(extends = PyStore, subclass, frozen, module = "compactstore._native", name = "DynamicStore")]
pub struct PyDynamicStore {
    pub(crate) store_type: Py<PyType>,
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
            StoreMut::Dynamic(d) => {
                // A mapped store's chunks are the file's: the engine drops none; say so.
                d.access().check_structure("retract")?;
                Ok(Some(d.retract()))
            }
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
