//! `StoreCell`: exclusive access to an engine store for the thread that holds the GIL.
//!
//! Every path into a store (`m[i]`, `e[name]`, `pool[k]`) takes this lock, so its cost is paid on every
//! hot call. A `Mutex` costs two atomic read-modify-writes (~13 ns here, as much as the read itself);
//! under the GIL they buy nothing, because only the thread holding the GIL can be running in here. This
//! cell keeps what the lock is for — one caller at a time, and a clear `RuntimeError` for a second
//! (re-entrant) one instead of aliasing — with a plain flag that only the GIL holder reads and writes.
//! The package targets GIL builds of CPython; a free-threaded build would need a real lock here.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use pyo3::exceptions::PyRuntimeError;
use pyo3::{ffi, Py, PyAny, PyResult};

/// How many store borrows are held. Only the thread holding the GIL borrows a store, so this counts that
/// thread's borrows; plain loads and stores suffice (no read-modify-write), and unlike a thread-local it
/// costs no TLS lookup on the hot path (`__tls_get_addr` in a shared library: ~3 ns a call, twice a call).
static HELD: AtomicUsize = AtomicUsize::new(0);
/// Whether `GRAVEYARD` may hold objects (so the common release path never touches the mutex).
static PENDING: AtomicBool = AtomicBool::new(false);
/// Python objects released while a store was borrowed, dropped once none is (see [`PyObj`]).
static GRAVEYARD: Mutex<Vec<Py<PyAny>>> = Mutex::new(Vec::new());

/// The Python object held by an object member. Dropping it while a store is borrowed (an overwrite, a
/// delete, a reset) defers the reference count decrement until the borrow ends, so a finaliser that the
/// decrement runs can use the store instead of meeting a busy one.
pub struct PyObj(Option<Py<PyAny>>);

impl PyObj {
    pub fn new(obj: Py<PyAny>) -> PyObj {
        PyObj(Some(obj))
    }

    /// The object (always there until the `PyObj` drops).
    pub fn get(&self) -> Option<&Py<PyAny>> {
        self.0.as_ref()
    }
}

impl Drop for PyObj {
    fn drop(&mut self) {
        if let Some(obj) = self.0.take() {
            if HELD.load(Ordering::Relaxed) > 0 {
                GRAVEYARD.lock().unwrap_or_else(PoisonError::into_inner).push(obj);
                PENDING.store(true, Ordering::Relaxed);
            }
            // else `obj` drops here (PyO3 decrements the count now if the GIL is held, or later).
        }
    }
}

/// A value that only the thread holding the GIL may reach, one borrow at a time.
pub struct StoreCell<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached through `lock`, which is only called by code CPython runs with the GIL
// held (see `lock`'s precondition) and which refuses a second live borrow. The GIL admits one thread at a time, and no code run while a guard lives
// releases it (the bindings never detach from the interpreter), so two threads never reach `value`
// together; `busy` turns a second borrow on the same thread (a re-entrant call from a finaliser, say)
// into an error. `T: Send` lets the value be used from whichever thread holds the GIL.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for StoreCell<T> {}

impl<T> StoreCell<T> {
    pub fn new(value: T) -> StoreCell<T> {
        StoreCell {
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Borrow the value exclusively. `RuntimeError` if the value is already borrowed (a re-entrant call).
    ///
    /// Precondition: the calling thread holds the GIL. Every caller is a `#[pymethods]` method, a type slot
    /// or `tp_traverse`/`tp_clear` of this crate, all of which CPython runs with the GIL held (the crate
    /// never detaches); debug builds check it.
    #[allow(unsafe_code)]
    #[inline]
    pub fn lock(&self) -> PyResult<CellGuard<'_, T>> {
        // SAFETY: PyGILState_Check only reads the calling thread's interpreter state.
        debug_assert!(
            unsafe { ffi::PyGILState_Check() } != 0,
            "StoreCell used without the GIL"
        );
        // Only the GIL holder gets here, so a relaxed load then store is not a race.
        if self.busy.load(Ordering::Relaxed) {
            return Err(PyRuntimeError::new_err("store is in use by another call"));
        }
        self.busy.store(true, Ordering::Relaxed);
        HELD.store(HELD.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        Ok(CellGuard { cell: self })
    }

    /// [`StoreCell::lock`] for the hot paths that hand any failure to a general path (which then takes
    /// `lock` and reports it): `None` instead of an error value when the value is already borrowed.
    /// Same precondition as `lock`.
    #[allow(unsafe_code)]
    #[inline]
    pub fn try_lock(&self) -> Option<CellGuard<'_, T>> {
        // SAFETY: PyGILState_Check only reads the calling thread's interpreter state.
        debug_assert!(
            unsafe { ffi::PyGILState_Check() } != 0,
            "StoreCell used without the GIL"
        );
        if self.busy.load(Ordering::Relaxed) {
            return None;
        }
        self.busy.store(true, Ordering::Relaxed);
        HELD.store(HELD.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        Some(CellGuard { cell: self })
    }
}

/// An exclusive borrow of a `StoreCell`'s value; released on drop.
pub struct CellGuard<'a, T> {
    cell: &'a StoreCell<T>,
}

impl<T> Deref for CellGuard<'_, T> {
    type Target = T;
    #[allow(unsafe_code)]
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: a guard exists only after `lock` set `busy` on the GIL-holding thread, so no other
        // reference to the value exists until the guard drops (see the `Sync` impl).
        unsafe { &*self.cell.value.get() }
    }
}

impl<T> DerefMut for CellGuard<'_, T> {
    #[allow(unsafe_code)]
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`; `&mut self` makes this the only borrow through the guard.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T> Drop for CellGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.cell.busy.store(false, Ordering::Relaxed);
        let held = HELD.load(Ordering::Relaxed).saturating_sub(1);
        HELD.store(held, Ordering::Relaxed);
        if held == 0 && PENDING.load(Ordering::Relaxed) {
            bury();
        }
    }
}

/// Drop the objects released while a store was borrowed (outside the mutex: their finalisers may use the
/// store). Out of line, so the guard's drop on the hot paths is a few loads and stores.
#[cold]
#[inline(never)]
fn bury() {
    PENDING.store(false, Ordering::Relaxed);
    let dead = std::mem::take(&mut *GRAVEYARD.lock().unwrap_or_else(PoisonError::into_inner));
    drop(dead);
}
