//! Lazy iteration: a store's occupied slots (`s.indices()`), a keyed store's keys, entries and items
//! (`iter(pool)`, `pool.keys()`, `pool.values()`, `pool.items()`), and a member's values (`iter(m)`).
//!
//! An iterator holds the store and a cursor (the slot after the one it last returned) and finds the next
//! occupied slots in the engine, a bitmap word at a time ([`Store::next_occupied_word`]), so it allocates
//! nothing proportional to the store. As a dict's iterators do, an entry iterator raises `RuntimeError` once entries are added or
//! removed behind it (the store's size, or its change count when as many were added as removed), and is
//! then exhausted; writing members of existing entries is fine.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};

use compactstore::Store;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PySet, PyTuple};
use pyo3::IntoPyObjectExt;

use crate::container::PyContainer;
use crate::entry::PyEntry;
use crate::error::ToPyResult;
use crate::keyed::{AnyKeyed, PyKeyedStore};
use crate::on;
use crate::shared::{Handle, Inner};

/// What an entry iterator yields for each occupied slot.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Yield {
    /// The slot index (`s.indices()`).
    Index,
    /// The key (keyed stores).
    Key,
    /// A live `Entry` (keyed stores).
    Entry,
    /// `(key, Entry)` (keyed stores).
    Item,
}

/// A keyed store's next entry: its slot, key and generation.
type Found<'py> = (usize, Bound<'py, PyAny>, u32);

/// How the store changed under an iterator.
enum Changed {
    Size,
    Entries,
}

/// A lazy iterator over the occupied slots of a store, in slot order: their indices, or a keyed
/// store's keys, entries or `(key, entry)` items. `RuntimeError` if entries are added or removed while
/// it runs.
#[pyclass(frozen, module = "compactstore._native", name = "EntryIterator")]
pub struct PyEntryIterator {
    h: Handle,
    /// The store object: the owner of the entries made, kept alive while the iterator lives.
    owner: Py<PyAny>,
    what: Yield,
    /// The store's `len()` and `changes()` when the iterator was made.
    len: usize,
    changes: u64,
    /// The slot to look from once `bits` is spent.
    cursor: AtomicUsize,
    /// The occupied slots not yet returned of the bitmap word last read (bit `b`: slot `base + b`), so
    /// the bitmap is searched once a word, not once a slot. Still true while `changes` is unchanged.
    bits: AtomicU64,
    base: AtomicUsize,
    /// Entries not yet returned: at 0 the walk stops without scanning the store's tail.
    remaining: AtomicUsize,
    done: AtomicBool,
}

impl PyEntryIterator {
    /// An iterator over `h`'s store yielding `what`. O(1).
    pub fn new(h: Handle, owner: Py<PyAny>, what: Yield) -> PyResult<PyEntryIterator> {
        let (len, changes) = h.read(|v| Ok(on!(v, s => (s.len(), s.changes()))))?;
        Ok(PyEntryIterator {
            h,
            owner,
            what,
            len,
            changes,
            cursor: AtomicUsize::new(0),
            bits: AtomicU64::new(0),
            base: AtomicUsize::new(0),
            remaining: AtomicUsize::new(len),
            done: AtomicBool::new(false),
        })
    }

    /// The next occupied slot of `s`, advancing the cursor; `Err` if `s` changed since the iterator was
    /// made.
    #[inline]
    fn step<S: Store>(&self, s: &S) -> Result<Option<usize>, Changed> {
        if s.len() != self.len {
            return Err(Changed::Size);
        }
        if s.changes() != self.changes {
            return Err(Changed::Entries);
        }
        let remaining = self.remaining.load(Relaxed);
        if remaining == 0 {
            return Ok(None);
        }
        let (mut bits, mut base) = (self.bits.load(Relaxed), self.base.load(Relaxed));
        if bits == 0 {
            let Some((b, w)) = s.next_occupied_word(self.cursor.load(Relaxed)) else {
                return Ok(None);
            };
            (base, bits) = (b, w);
            self.base.store(base, Relaxed);
        }
        let slot = base + bits.trailing_zeros() as usize;
        self.bits.store(bits & (bits - 1), Relaxed);
        self.cursor.store(slot + 1, Relaxed);
        self.remaining.store(remaining - 1, Relaxed);
        Ok(Some(slot))
    }

    fn changed(&self, how: &Changed) -> PyErr {
        let keyed = self.what != Yield::Index;
        PyRuntimeError::new_err(match (how, keyed) {
            (Changed::Size, true) => "KeyedStore changed size during iteration",
            (Changed::Entries, true) => "KeyedStore keys changed during iteration",
            (Changed::Size, false) => "store changed size during iteration",
            (Changed::Entries, false) => "store entries changed during iteration",
        })
    }

    /// The next slot of a keyed store with its key and generation.
    fn next_keyed<'py>(
        &self,
        py: Python<'py>,
        k: &AnyKeyed,
    ) -> PyResult<Result<Option<Found<'py>>, Changed>> {
        let st = k.store();
        Ok(match self.step(st) {
            Ok(Some(slot)) => {
                // Only an entry needs the slot's generation.
                let generation = match self.what {
                    Yield::Entry | Yield::Item => st.generation(slot).py()?,
                    Yield::Index | Yield::Key => 0,
                };
                Ok(Some((slot, k.key_object(py, slot)?, generation)))
            }
            Ok(None) => Ok(None),
            Err(c) => Err(c),
        })
    }

    /// What a keyed store's iterator yields for `slot`, made after the store is released (making an
    /// object can run the garbage collector, whose finalisers may use the store).
    fn keyed_item<'py>(
        &self,
        py: Python<'py>,
        (slot, key, generation): Found<'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if self.what == Yield::Key {
            return Ok(key);
        }
        if self.what == Yield::Index {
            return slot.into_bound_py_any(py);
        }
        let entry = PyEntry::new(
            self.h.clone(),
            slot,
            generation,
            Some(key.clone().unbind()),
            Some(self.owner.clone_ref(py)),
        );
        let entry = Bound::new(py, entry)?.into_any();
        if self.what == Yield::Entry {
            Ok(entry)
        } else {
            Ok(PyTuple::new(py, [key, entry])?.into_any())
        }
    }
}

#[pymethods]
impl PyEntryIterator {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// The next slot index, key, entry or item; `RuntimeError` if entries were added or removed since
    /// the iterator was made.
    fn __next__<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (this, py) = (slf.get(), slf.py());
        if this.done.load(Relaxed) {
            return Ok(None);
        }
        let got = if this.what == Yield::Index {
            match this.h.read(|v| Ok(on!(v, s => this.step(s)))) {
                Ok(Ok(Some(i))) => i.into_bound_py_any(py).map(|o| Ok(Some(o))),
                Ok(Ok(None)) => Ok(Ok(None)),
                Ok(Err(c)) => Ok(Err(c)),
                Err(e) => Err(e),
            }
        } else {
            let next = match &*this.h.data.lock()? {
                Inner::Keyed(k) => this.next_keyed(py, k),
                _ => Ok(Ok(None)),
            };
            match next {
                Ok(Ok(Some(found))) => this.keyed_item(py, found).map(|o| Ok(Some(o))),
                Ok(Ok(None)) => Ok(Ok(None)),
                Ok(Err(c)) => Ok(Err(c)),
                Err(e) => Err(e),
            }
        };
        match got {
            Ok(Ok(Some(obj))) => Ok(Some(obj)),
            Ok(Ok(None)) => {
                this.done.store(true, Relaxed);
                Ok(None)
            }
            Ok(Err(c)) => {
                this.done.store(true, Relaxed);
                Err(this.changed(&c))
            }
            Err(e) => {
                this.done.store(true, Relaxed);
                Err(e)
            }
        }
    }

    /// How many items are left (for `list()` to size its result).
    fn __length_hint__(&self) -> usize {
        if self.done.load(Relaxed) {
            0
        } else {
            self.remaining.load(Relaxed)
        }
    }

    fn __traverse__(&self, visit: pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.owner)
    }
}

/// A lazy iterator over a member's values, slot 0 to the store's current size, as a list's iterator
/// walks a list (it follows growth and retraction).
#[pyclass(frozen, module = "compactstore._native", name = "ContainerIterator")]
pub struct PyContainerIterator {
    container: Py<PyContainer>,
    next: AtomicUsize,
    done: AtomicBool,
}

impl PyContainerIterator {
    pub fn new(container: Py<PyContainer>) -> PyContainerIterator {
        PyContainerIterator {
            container,
            next: AtomicUsize::new(0),
            done: AtomicBool::new(false),
        }
    }
}

#[pymethods]
impl PyContainerIterator {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// The value of the next slot.
    fn __next__<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (this, py) = (slf.get(), slf.py());
        if this.done.load(Relaxed) {
            return Ok(None);
        }
        let i = this.next.load(Relaxed);
        match this.container.get().value_at(py, i) {
            Ok(Some(v)) => {
                this.next.store(i + 1, Relaxed);
                Ok(Some(v))
            }
            other => {
                this.done.store(true, Relaxed);
                other
            }
        }
    }

    /// How many values are left (for `list()` to size its result).
    fn __length_hint__(&self) -> PyResult<usize> {
        if self.done.load(Relaxed) {
            return Ok(0);
        }
        let n = self.container.get().size()?;
        Ok(n.saturating_sub(self.next.load(Relaxed)))
    }

    fn __traverse__(&self, visit: pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.container)
    }
}

/// `set(view)`, for the set operations of key and item views.
fn as_set<'py>(view: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PySet>> {
    PySet::new(view.py(), view.try_iter()?.collect::<PyResult<Vec<_>>>()?)
}

/// `set(view).method(other)` for an iterable `other`; `NotImplemented` for anything else, so Python
/// raises its usual `TypeError`.
fn set_op<'py>(
    view: &Bound<'py, PyAny>,
    method: &str,
    other: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = view.py();
    if other.try_iter().is_err() {
        return Ok(py.NotImplemented().into_bound(py));
    }
    as_set(view)?.call_method1(method, (other,))
}

/// `set(other) - set(view)`.
fn set_rsub<'py>(view: &Bound<'py, PyAny>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = view.py();
    let Ok(it) = other.try_iter() else {
        return Ok(py.NotImplemented().into_bound(py));
    };
    let theirs = PySet::new(py, it.collect::<PyResult<Vec<_>>>()?)?;
    theirs.call_method1("difference", (as_set(view)?,))
}

/// A key or item view compared with a set as sets compare; `NotImplemented` for anything that is not a
/// `collections.abc.Set`.
fn set_compare<'py>(
    view: &Bound<'py, PyAny>,
    other: &Bound<'py, PyAny>,
    op: pyo3::basic::CompareOp,
) -> PyResult<Bound<'py, PyAny>> {
    let py = view.py();
    let abc_set = py.import("collections.abc")?.getattr("Set")?;
    if !other.is_instance(&abc_set)? {
        return Ok(py.NotImplemented().into_bound(py));
    }
    as_set(view)?.rich_compare(other, op)
}

/// Whether no element of `other` is in the view.
fn disjoint(view: &Bound<'_, PyAny>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
    for x in other.try_iter()? {
        if view.contains(x?)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The view classes of a keyed store: each holds the store and iterates it lazily. With `set`, the view
/// also has the set operations of `collections.abc.Set` (as a dict's key and item views have them):
/// each returns a new `set`.
macro_rules! keyed_view {
    (set $t:ident, $name:literal, $what:expr, $doc:literal, { $($extra:tt)* }) => {
        keyed_view!($t, $name, $what, $doc, {
            fn __and__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                set_op(slf.as_any(), "intersection", other)
            }
            fn __rand__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                set_op(slf.as_any(), "intersection", other)
            }
            fn __or__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                set_op(slf.as_any(), "union", other)
            }
            fn __ror__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                set_op(slf.as_any(), "union", other)
            }
            fn __xor__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                set_op(slf.as_any(), "symmetric_difference", other)
            }
            fn __rxor__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                set_op(slf.as_any(), "symmetric_difference", other)
            }
            fn __sub__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                set_op(slf.as_any(), "difference", other)
            }
            fn __rsub__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
                set_rsub(slf.as_any(), other)
            }
            fn __richcmp__<'py>(
                slf: &Bound<'py, Self>,
                other: &Bound<'py, PyAny>,
                op: pyo3::basic::CompareOp,
            ) -> PyResult<Bound<'py, PyAny>> {
                set_compare(slf.as_any(), other, op)
            }
            /// Whether the view and `other` have no element in common.
            #[pyo3(signature = (other, /))]
            fn isdisjoint(slf: &Bound<'_, Self>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
                disjoint(slf.as_any(), other)
            }
            $($extra)*
        });
    };
    ($t:ident, $name:literal, $what:expr, $doc:literal, { $($extra:tt)* }) => {
        #[doc = $doc]
        #[pyclass(frozen, module = "compactstore._native", name = $name)]
        pub struct $t {
            pool: Py<PyKeyedStore>,
        }

        impl $t {
            pub fn new(pool: Py<PyKeyedStore>) -> $t {
                $t { pool }
            }
        }

        #[pymethods]
        impl $t {
            /// Number of entries in the store.
            fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
                self.pool.bind(py).len()
            }

            /// A lazy iterator in slot order (`RuntimeError` if entries are added or removed while it runs).
            fn __iter__(&self, py: Python<'_>) -> PyResult<PyEntryIterator> {
                let h = self.pool.get().handle().clone();
                PyEntryIterator::new(h, self.pool.clone_ref(py).into_any(), $what)
            }

            /// The keyed store this view shows.
            #[getter]
            fn mapping(&self, py: Python<'_>) -> Py<PyKeyedStore> {
                self.pool.clone_ref(py)
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                Ok(format!("{}({})", $name, self.pool.bind(py).repr()?))
            }

            fn __traverse__(&self, visit: pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
                visit.call(&self.pool)
            }

            $($extra)*
        }
    };
}

keyed_view!(set PyKeyedKeys, "KeyedKeys", Yield::Key,
    "`pool.keys()`: a live view of a keyed store's keys, in slot order (a set, as a dict's keys are).", {
    /// Whether `key` is in the store.
    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.pool.bind(py).contains(key)
    }
});

keyed_view!(
    PyKeyedValues,
    "KeyedValues",
    Yield::Entry,
    "`pool.values()`: a live view of a keyed store's entries, in slot order.",
    {
        /// Whether some entry is `value` or equals it (a scan, as for a dict's values).
        fn __contains__(slf: &Bound<'_, Self>, value: &Bound<'_, PyAny>) -> PyResult<bool> {
            for v in slf.try_iter()? {
                let v = v?;
                if v.is(value) || v.eq(value)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
);

keyed_view!(set PyKeyedItems, "KeyedItems", Yield::Item,
    "`pool.items()`: a live view of a keyed store's `(key, entry)` pairs, in slot order (a set, as a dict's items are).", {
    /// Whether `item` is a `(key, value)` pair whose key is in the store with an entry equal to `value`.
    fn __contains__(&self, py: Python<'_>, item: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(t) = item.cast::<PyTuple>() else {
            return Ok(false);
        };
        if t.len() != 2 {
            return Ok(false);
        }
        let (key, value) = (t.get_item(0)?, t.get_item(1)?);
        let pool = self.pool.bind(py);
        if !pool.contains(&key)? {
            return Ok(false);
        }
        let entry = pool.get_item(&key)?;
        Ok(entry.is(&value) || entry.eq(&value)?)
    }
});

/// Register the keyed views with `collections.abc` (`KeysView`, `ValuesView`, `ItemsView`), as a
/// dict's views are registered.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PyEntryIterator>()?;
    m.add_class::<PyContainerIterator>()?;
    m.add_class::<PyKeyedKeys>()?;
    m.add_class::<PyKeyedValues>()?;
    m.add_class::<PyKeyedItems>()?;
    let abc = py.import("collections.abc")?;
    abc.getattr("KeysView")?
        .call_method1("register", (py.get_type::<PyKeyedKeys>(),))?;
    abc.getattr("ValuesView")?
        .call_method1("register", (py.get_type::<PyKeyedValues>(),))?;
    abc.getattr("ItemsView")?
        .call_method1("register", (py.get_type::<PyKeyedItems>(),))?;
    Ok(())
}
