//! The state Python objects share: one engine store behind a lock, and the handle every view holds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::cell::{CellGuard, StoreCell};

use compactstore::{DynamicStore, MemberType, Scalar, StaticStore, Store, Value};

use crate::keyed::AnyKeyed;
use pyo3::exceptions::PyTypeError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use pyo3::PyTraverseError;

use crate::error::to_py;

/// The engine store behind a Python store object.
pub enum Inner {
    /// A `StaticStore` subclass instance.
    Static(StaticStore),
    /// A `DynamicStore`.
    Dynamic(DynamicStore),
    /// A `KeyedStore` (its entries live in a dynamic store).
    Keyed(AnyKeyed),
}

/// One engine store, shared by the store object, its member containers, entries and numpy views.
pub struct Shared {
    inner: StoreCell<Inner>,
    /// Live buffer exports (zero-copy numpy views); while non-zero the buffers must not move.
    pub exports: AtomicUsize,
    /// Member names as interned Python strings, by position.
    pub names: Vec<Py<PyString>>,
    /// The schema (immutable: read without the lock).
    pub schema: Arc<compactstore::Schema>,
    /// Member position by the address of its interned name: string literals in user code are the same
    /// interned objects, so most lookups never hash the text. The strings are kept alive by `names`, so
    /// no address is reused while this map lives.
    by_ptr: PtrTable,
    /// Name objects other than the interned ones that `by_ptr` also finds (see `PySchema::aliases`),
    /// kept alive so their addresses are never reused while `by_ptr` holds them.
    pub aliases: Vec<(Py<PyString>, usize)>,
    /// The file a mapped store's memory is (set once, by `load`).
    pub file: std::sync::OnceLock<crate::files::FileRef>,
}

impl Shared {
    pub fn new(inner: Inner, names: Vec<Py<PyString>>, aliases: Vec<(Py<PyString>, usize)>) -> Arc<Shared> {
        let schema = Arc::clone(match &inner {
            Inner::Static(s) => s.schema(),
            Inner::Dynamic(d) => d.schema(),
            Inner::Keyed(k) => k.store().schema(),
        });
        let by_ptr = PtrTable::new(
            names
                .iter()
                .enumerate()
                .chain(aliases.iter().map(|(n, m)| (*m, n)))
                .map(|(m, n)| (n.as_ptr() as usize, m)),
        );
        Arc::new(Shared {
            inner: StoreCell::new(inner),
            exports: AtomicUsize::new(0),
            names,
            aliases,
            schema,
            by_ptr,
            file: std::sync::OnceLock::new(),
        })
    }

    /// The names and aliases, as new references (for a copy's `Shared`).
    pub fn names_ref(&self, py: Python<'_>) -> crate::schema::NameRefs {
        (
            self.names.iter().map(|n| n.clone_ref(py)).collect(),
            self.aliases.iter().map(|(n, m)| (n.clone_ref(py), *m)).collect(),
        )
    }

    /// The position of the member called `name`: by the name object's address first (interned names),
    /// then by its text. `KeyError` for an unknown member or a name that is not a `str`.
    #[inline]
    pub fn member_of(&self, name: &Bound<'_, PyAny>) -> PyResult<usize> {
        if let Some(m) = self.by_ptr.get(name.as_ptr() as usize) {
            return Ok(m);
        }
        let text = name
            .cast::<PyString>()
            .map_err(|_| pyo3::exceptions::PyKeyError::new_err(name.clone().unbind()))?
            .to_str()?;
        self.schema.index_of(text).map_err(crate::error::to_py)
    }

    /// [`Shared::lock`] for hot paths that hand a busy store to a general path (`None`, no error made).
    #[inline]
    pub fn try_lock(&self) -> Option<CellGuard<'_, Inner>> {
        self.inner.try_lock()
    }

    /// The position of the member whose interned name object is `name` (the same object, not an equal
    /// string): the lookup of the hot paths, with no error made; `None` sends the caller to
    /// [`Shared::member_of`].
    #[inline]
    pub fn member_by_ptr(&self, name: *mut pyo3::ffi::PyObject) -> Option<usize> {
        self.by_ptr.get(name as usize)
    }

    /// The members of plain dicts of member names to numbers, in one pass, when every value is an exact
    /// `int`, `float` or `bool` that fits its numeric scalar member as it is (see `ScalarPy::of`): typed
    /// scalars, written without a `Value` each (`add(d)`, `add(**d)`, `pool[k] = d` of records of
    /// numbers). `None` for anything else (an unknown member, a name that is not an exact `str`, any other
    /// member type or value), which the caller's general conversion converts and reports on. The dicts'
    /// items come in order, so a member given twice keeps its last value, as the general path does.
    pub fn scalars_of(&self, dicts: [Option<&Bound<'_, PyDict>>; 2]) -> Option<Vec<(usize, Scalar)>> {
        use crate::container::ScalarPy;
        let mut out = Vec::with_capacity(dicts.iter().flatten().map(|d| d.len()).sum());
        for d in dicts.into_iter().flatten() {
            let py = d.py();
            let mut pos: pyo3::ffi::Py_ssize_t = 0;
            let (mut k, mut v) = (std::ptr::null_mut(), std::ptr::null_mut());
            // SAFETY: attached (`py`); `d` is a live dict; `PyDict_Next` sets `k` and `v` to borrowed
            // references to its items, valid while the dict is not changed. No Python code runs in this
            // loop while they are in use: names are found by address or read as exact str, values are
            // exact ints, floats and bools, whose conversion calls no Python code. The two conversions that
            // can fail (an int beyond a u64 member, a str with a lone surrogate) make an exception, whose
            // allocation may run the collector and so finalisers; each returns `None` at once, and no
            // borrowed item or the position is used after it. Keep it so: no `continue` after a failure.
            #[allow(unsafe_code)]
            while unsafe { pyo3::ffi::PyDict_Next(d.as_ptr(), &mut pos, &mut k, &mut v) } != 0 {
                #[allow(unsafe_code)]
                // SAFETY: as above: `k` and `v` are borrowed references to live items of `d`.
                let (k, v) = unsafe { (pyo3::Borrowed::from_ptr(py, k), pyo3::Borrowed::from_ptr(py, v)) };
                let m = match self.member_by_ptr(k.as_ptr()) {
                    Some(m) => m,
                    None => self
                        .schema
                        .index_of(k.cast_exact::<PyString>().ok()?.to_str().ok()?)
                        .ok()?,
                };
                out.push((m, <Scalar as ScalarPy>::of(&v, self.scalar_dtype(m)?)?));
            }
        }
        Some(out)
    }

    /// The dtype of member `m` if it is a numeric scalar member: what the typed write paths take.
    #[inline]
    pub fn scalar_dtype(&self, m: usize) -> Option<compactstore::Dtype> {
        match *self.schema.member(m).ok()?.ty() {
            MemberType::Scalar(d) => Some(d),
            _ => None,
        }
    }

    /// The position and dtype of the numeric scalar member whose interned name object is `name` (see
    /// [`Shared::member_by_ptr`]): the member lookup of the typed write paths (`e[name] = v`,
    /// `pool[k, name] = v`); `None` sends the caller to its general path.
    #[inline]
    pub fn scalar_member_by_ptr(
        &self,
        name: *mut pyo3::ffi::PyObject,
    ) -> Option<(usize, compactstore::Dtype)> {
        let m = self.member_by_ptr(name)?;
        Some((m, self.scalar_dtype(m)?))
    }

    /// Lock the store. A second caller while it is held (another thread, or a re-entrant call from a
    /// finaliser) gets a `RuntimeError` instead of a deadlock.
    #[inline]
    pub fn lock(&self) -> PyResult<CellGuard<'_, Inner>> {
        self.inner.lock()
    }

    /// Chunks of the store (for walking object members).
    fn chunks_of(inner: &Inner) -> &[StaticStore] {
        match inner {
            Inner::Static(s) => s.chunks(),
            Inner::Dynamic(d) => d.chunks(),
            Inner::Keyed(k) => k.store().chunks(),
        }
    }

    /// Visit every Python object held by the store's object members (`tp_traverse`). A store that is
    /// busy (the collector ran inside one of its calls) is skipped: its objects then count as referenced
    /// from outside, so nothing is collected wrongly.
    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        let Ok(g) = self.inner.lock() else { return Ok(()) };
        // One Python reference per `PyObj`, however many slots share it (a broadcast write): visit each
        // once. (Stores never share a `PyObj`: `copy()` gives the copy references of its own.)
        let mut shared = std::collections::HashSet::new();
        for chunk in Shared::chunks_of(&g) {
            for m in 0..chunk.schema().len() {
                if let Some(c) = chunk.column(m).ok().and_then(|c| c.as_object()) {
                    for (_, o) in c.objects() {
                        if std::sync::Arc::strong_count(&o.0) > 1
                            && !shared.insert(std::sync::Arc::as_ptr(&o.0).cast::<u8>())
                        {
                            continue;
                        }
                        if let Some(obj) =
                            o.0.downcast_ref::<crate::cell::PyObj>()
                                .and_then(crate::cell::PyObj::get)
                        {
                            visit.call(obj)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Take every object out of the store's object members (`tp_clear`); the caller drops them after
    /// the store is released, so finalisers that touch the store see it free.
    pub fn take_objects(&self) -> Vec<compactstore::ObjectRef> {
        let Ok(mut g) = self.inner.lock() else {
            return Vec::new();
        };
        match &mut *g {
            Inner::Static(s) => s.take_objects(),
            Inner::Dynamic(d) => d.take_objects(),
            Inner::Keyed(k) => k.take_objects(),
        }
    }

    pub fn exported(&self) -> bool {
        self.exports.load(Ordering::Acquire) > 0
    }
}

/// Member positions by the address of a name object: an open-addressing table of at most half load,
/// hashed by a multiply of the address, probed linearly. A lookup is a multiply, a shift and (nearly
/// always) one compare: the member lookup of every hot path.
struct PtrTable {
    /// `(address, member)`; address 0 marks an empty bucket (no object lives at 0).
    buckets: Box<[(usize, usize)]>,
    /// `64 - log2(buckets.len())`.
    shift: u32,
}

impl PtrTable {
    fn new(items: impl Iterator<Item = (usize, usize)>) -> PtrTable {
        let items: Vec<(usize, usize)> = items.collect();
        let n = (items.len() * 2).next_power_of_two().max(8);
        let mut t = PtrTable {
            buckets: vec![(0, 0); n].into_boxed_slice(),
            shift: 64 - n.trailing_zeros(),
        };
        for (p, m) in items {
            let mask = t.buckets.len() - 1;
            let mut b = t.bucket(p);
            // An address seen twice (a name that is also an alias) keeps its first member.
            while t.buckets[b].0 != 0 && t.buckets[b].0 != p {
                b = (b + 1) & mask;
            }
            if t.buckets[b].0 == 0 {
                t.buckets[b] = (p, m);
            }
        }
        t
    }

    #[inline(always)]
    fn bucket(&self, p: usize) -> usize {
        // Fibonacci hashing of the address (objects are 16-byte aligned: the low bits carry nothing).
        ((p as u64 >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    #[inline]
    fn get(&self, p: usize) -> Option<usize> {
        if p == 0 {
            return None;
        }
        let mask = self.buckets.len() - 1;
        let mut b = self.bucket(p);
        loop {
            let (q, m) = *self.buckets.get(b)?;
            if q == p {
                return Some(m);
            }
            if q == 0 {
                return None;
            }
            b = (b + 1) & mask;
        }
    }
}

/// A read view: a whole store or one chunk of a dynamic store.
pub enum View<'a> {
    Static(&'a StaticStore),
    Dynamic(&'a DynamicStore),
}

/// A write view.
pub enum ViewMut<'a> {
    Static(&'a mut StaticStore),
    Dynamic(&'a mut DynamicStore),
    /// A keyed store: member writes go through it so they mark the key modified.
    Keyed(&'a mut AnyKeyed),
}

impl ViewMut<'_> {
    /// The store as a read view.
    pub fn read(&self) -> View<'_> {
        match self {
            ViewMut::Static(s) => View::Static(s),
            ViewMut::Dynamic(d) => View::Dynamic(d),
            ViewMut::Keyed(k) => View::Dynamic(k.store()),
        }
    }

    /// The store's size (slots allocated).
    #[inline]
    pub fn size(&self) -> usize {
        match self {
            ViewMut::Static(s) => s.size(),
            ViewMut::Dynamic(d) => d.size(),
            ViewMut::Keyed(k) => k.store().size(),
        }
    }

    /// Write the typed scalar `x` to member `m` of slot `i` (refuses read-only members).
    #[inline]
    pub fn set_scalar(&mut self, i: usize, m: usize, x: Scalar) -> compactstore::Result<()> {
        match self {
            ViewMut::Static(s) => s.set_scalar(i, m, x),
            ViewMut::Dynamic(d) => d.set_scalar(i, m, x),
            ViewMut::Keyed(k) => k.set_scalar(i, m, x),
        }
    }

    /// Write the given members of the entry of `generation` at slot `i`, all or nothing.
    pub fn update(
        &mut self,
        i: usize,
        generation: u32,
        values: &[(usize, Value)],
    ) -> compactstore::Result<()> {
        match self {
            ViewMut::Static(s) => s.update(i, generation, values),
            ViewMut::Dynamic(d) => d.update(i, generation, values),
            ViewMut::Keyed(k) => k.update(i, generation, values),
        }
    }

    /// Write `values` to member `m` of the slots `indices`, everything checked first.
    pub fn scatter_values(
        &mut self,
        m: usize,
        indices: &[usize],
        values: &[Value],
    ) -> compactstore::Result<()> {
        match self {
            ViewMut::Static(s) => s.scatter_values(m, indices, values),
            ViewMut::Dynamic(d) => d.scatter_values(m, indices, values),
            ViewMut::Keyed(k) => k.scatter_values(m, indices, values),
        }
    }

    /// Write member `m` of slot `i` (refuses read-only members).
    pub fn set(&mut self, i: usize, m: usize, v: &Value) -> compactstore::Result<()> {
        match self {
            ViewMut::Static(s) => s.set(i, m, v),
            ViewMut::Dynamic(d) => d.set(i, m, v),
            ViewMut::Keyed(k) => k.set(i, m, v),
        }
    }

    /// Write element `k` of array member `m` of slot `i` (refuses read-only members).
    pub fn set_element(&mut self, i: usize, m: usize, k: usize, v: &Value) -> compactstore::Result<()> {
        match self {
            ViewMut::Static(s) => s.set_element(i, m, k, v),
            ViewMut::Dynamic(d) => d.set_element(i, m, k, v),
            ViewMut::Keyed(ks) => ks.set_element(i, m, k, v),
        }
    }
}

/// Run `$e` with `$s` bound to the store of a `View` or `ViewMut` (both implement `Store`).
#[macro_export]
macro_rules! on {
    ($v:expr, $s:ident => $e:expr) => {
        match $v {
            $crate::shared::View::Static($s) => $e,
            $crate::shared::View::Dynamic($s) => $e,
        }
    };
}

/// A store whose slots may be allocated and freed: a static or dynamic store, never a keyed store (whose
/// slots follow its keys). A chunk of a dynamic store is a `Static` one whose engine calls refuse it.
pub enum StoreMut<'a> {
    Static(&'a mut StaticStore),
    Dynamic(&'a mut DynamicStore),
}

/// As [`on!`] for a [`StoreMut`] (both implement `Store`).
#[macro_export]
macro_rules! on_mut {
    ($v:expr, $s:ident => $e:expr) => {
        match $v {
            $crate::shared::StoreMut::Static($s) => $e,
            $crate::shared::StoreMut::Dynamic($s) => $e,
        }
    };
}

/// The `ValueError` of a view of a dynamic store's chunk that the store has since released.
fn released(k: usize) -> PyErr {
    pyo3::exceptions::PyValueError::new_err(format!("chunk {k} was released by retract() or reset()"))
}

/// What a store object, container or entry holds: the shared store and, for a chunk of a dynamic store,
/// which chunk.
#[derive(Clone)]
pub struct Handle {
    pub data: Arc<Shared>,
    pub chunk: Option<usize>,
    /// For a chunk view: the chunk's `uid`, so a chunk released and replaced at the same position is not
    /// mistaken for the one the view was made for.
    pub chunk_uid: u64,
}

impl Handle {
    /// Run `f` on a read view, mapping engine errors to Python exceptions.
    #[inline]
    pub fn read<R>(&self, f: impl FnOnce(View<'_>) -> compactstore::Result<R>) -> PyResult<R> {
        let g = self.data.lock()?;
        let v = match (&*g, self.chunk) {
            (Inner::Static(s), _) => View::Static(s),
            (Inner::Dynamic(d), None) => View::Dynamic(d),
            (Inner::Dynamic(d), Some(k)) => View::Static(
                d.chunks()
                    .get(k)
                    .filter(|c| c.uid() == self.chunk_uid)
                    .ok_or_else(|| released(k))?,
            ),
            (Inner::Keyed(k), _) => View::Dynamic(k.store()),
        };
        f(v).map_err(to_py)
    }

    /// Numeric scalar member `m` of slot `i` (`-N <= i < N`, N the size of the store or chunk viewed),
    /// read straight from its column: the hot read of `m[i]`. `None` whenever the general path must run
    /// instead (and report the error, if any): a busy store, a released chunk, an index out of range, a
    /// member that is not a numeric scalar. Every check of [`Handle::read`] is made; nothing allocates.
    #[inline]
    pub fn scalar(&self, i: i64, m: usize) -> Option<Scalar> {
        #[inline(always)]
        fn at<S: Store>(s: &S, i: i64, m: usize) -> Option<Scalar> {
            let j = if i < 0 {
                i.checked_add(i64::try_from(s.size()).ok()?)?
            } else {
                i
            };
            s.scalar_at(usize::try_from(j).ok()?, m)
        }
        let g = self.data.try_lock()?;
        match (&*g, self.chunk) {
            (Inner::Static(s), _) => at(s, i, m),
            (Inner::Dynamic(d), None) => at(d, i, m),
            (Inner::Dynamic(d), Some(k)) => {
                at(d.chunks().get(k).filter(|c| c.uid() == self.chunk_uid)?, i, m)
            }
            (Inner::Keyed(k), _) => at(k.store(), i, m),
        }
    }

    /// Run `f` on a read view, for the hot paths: `None` for a busy store or a released chunk, as for
    /// anything `f` refuses, and the caller's general path then runs and reports (no error made here).
    #[inline]
    pub fn try_read<R>(&self, f: impl FnOnce(View<'_>) -> Option<R>) -> Option<R> {
        let g = self.data.try_lock()?;
        let v = match (&*g, self.chunk) {
            (Inner::Static(s), _) => View::Static(s),
            (Inner::Dynamic(d), None) => View::Dynamic(d),
            (Inner::Dynamic(d), Some(k)) => {
                View::Static(d.chunks().get(k).filter(|c| c.uid() == self.chunk_uid)?)
            }
            (Inner::Keyed(k), _) => View::Dynamic(k.store()),
        };
        f(v)
    }

    /// Run `f` on a write view, for the hot paths: `None` for a busy store or a released chunk, as for
    /// anything `f` refuses (and then changes nothing), so that the caller's general path runs and reports.
    #[inline]
    pub fn try_write<R>(&self, f: impl FnOnce(ViewMut<'_>) -> Option<R>) -> Option<R> {
        let mut g = self.data.try_lock()?;
        let v = match (&mut *g, self.chunk) {
            (Inner::Static(s), _) => ViewMut::Static(s),
            (Inner::Dynamic(d), None) => ViewMut::Dynamic(d),
            (Inner::Dynamic(d), Some(k)) => {
                ViewMut::Static(d.chunk_mut(k).ok().filter(|c| c.uid() == self.chunk_uid)?)
            }
            (Inner::Keyed(k), _) => ViewMut::Keyed(k),
        };
        f(v)
    }

    /// Run `f` on a write view: member values only (calls that allocate or free slots use
    /// [`Handle::alloc`]). A chunk of a dynamic store can have its members written.
    #[inline]
    pub fn write<R>(&self, f: impl FnOnce(ViewMut<'_>) -> compactstore::Result<R>) -> PyResult<R> {
        let mut g = self.data.lock()?;
        let v = match (&mut *g, self.chunk) {
            (Inner::Static(s), _) => ViewMut::Static(s),
            (Inner::Dynamic(d), None) => ViewMut::Dynamic(d),
            (Inner::Dynamic(d), Some(k)) => ViewMut::Static(
                d.chunk_mut(k)
                    .ok()
                    .filter(|c| c.uid() == self.chunk_uid)
                    .ok_or_else(|| released(k))?,
            ),
            (Inner::Keyed(k), _) => ViewMut::Keyed(k),
        };
        f(v).map_err(to_py)
    }

    /// Run `f` on the store to allocate or free its slots (or reset it): `TypeError` for a keyed store
    /// (its slots follow its keys); for a chunk of a dynamic store, the engine's refusal (the dynamic
    /// store counts its chunks' entries), also a `TypeError`.
    #[inline]
    pub fn alloc<R>(&self, f: impl FnOnce(StoreMut<'_>) -> compactstore::Result<R>) -> PyResult<R> {
        let mut g = self.data.lock()?;
        let v = match (&mut *g, self.chunk) {
            (Inner::Static(s), _) => StoreMut::Static(s),
            (Inner::Dynamic(d), None) => StoreMut::Dynamic(d),
            // The engine refuses a chunk's allocation, freeing and reset (`Error::ChunkAllocation`).
            (Inner::Dynamic(d), Some(k)) => StoreMut::Static(
                d.chunk_mut(k)
                    .ok()
                    .filter(|c| c.uid() == self.chunk_uid)
                    .ok_or_else(|| released(k))?,
            ),
            (Inner::Keyed(_), _) => {
                return Err(PyTypeError::new_err(
                    "a keyed store's slots are allocated and freed through its keys (pool[key] = ..., del pool[key])",
                ))
            }
        };
        f(v).map_err(to_py)
    }

    /// Whether this is a view of a dynamic store's chunk that `retract()`/`reset()` has since released.
    pub fn chunk_released(&self) -> bool {
        match (self.chunk, self.data.lock().as_deref()) {
            (Some(k), Ok(Inner::Dynamic(d))) => d.chunks().get(k).is_none_or(|c| c.uid() != self.chunk_uid),
            _ => false,
        }
    }

    /// Whether this handle views a static store's buffers — a static store's, or one chunk of a dynamic
    /// store — so zero-copy views are possible.
    pub fn exports_memory(&self) -> PyResult<bool> {
        Ok(match (&*self.data.lock()?, self.chunk) {
            (Inner::Static(_), None) => true,
            (Inner::Dynamic(d), Some(k)) => d.chunks().get(k).is_some_and(|c| c.uid() == self.chunk_uid),
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::PtrTable;

    #[test]
    fn ptr_table_finds_every_address_and_nothing_else() {
        for n in [0usize, 1, 3, 8, 40, 125, 1000] {
            // Addresses 16 apart (as objects are), also crowded into one stretch, plus aliases.
            let items: Vec<(usize, usize)> = (0..n).map(|m| (0x7f00_0000_1000 + 16 * m, m)).collect();
            let aliases: Vec<(usize, usize)> =
                (0..n.min(5)).map(|m| (0x5500_0000_0000 + 48 * m, m)).collect();
            let t = PtrTable::new(items.iter().chain(&aliases).copied());
            for &(p, m) in items.iter().chain(&aliases) {
                assert_eq!(t.get(p), Some(m), "{n} {p:#x}");
            }
            for p in [0usize, 8, 0x7f00_0000_1008, 0x7f00_0000_1000 + 16 * n, usize::MAX] {
                assert_eq!(t.get(p), None, "{n} {p:#x}");
            }
            // An address given twice keeps its first member.
            let t = PtrTable::new([(64, 1), (64, 2)].into_iter());
            assert_eq!(t.get(64), Some(1));
        }
    }
}
