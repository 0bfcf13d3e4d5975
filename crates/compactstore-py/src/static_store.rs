//! The `StaticStore` class: a store of a fixed number of slots.

use compactstore::{StaticStore, Store};
use pyo3::exceptions::{PyBufferError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::args::size_arg;
use crate::error::ToPyResult;
use crate::shared::{Handle, Inner, Shared, StoreMut};
use crate::store::{clone_with_state, copy_with_state, schema_of, wrong_kind, Made, PyStore};
use crate::{on, on_mut};

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
