//! Hand-written `mp_subscript` / `mp_ass_subscript` slots for member containers, for `m[i]` with an int.
//!
//! `m[i]` is the hottest path of the package and should beat numpy's scalar indexing; PyO3's generated
//! slot wrapper (argument extraction, the general key dispatch) costs about as much as the read itself.
//! These slots take the one common case, an exact `int` key, straight to [`PyContainer::get_one`] /
//! [`PyContainer::set_one`] and hand every other key (slices, tuples, arrays, big ints) to the slot PyO3
//! generated, so behaviour and errors are the same either way.
//!
//! The int case still runs inside PyO3's slot trampoline (`pyo3::impl_::trampoline`, the function PyO3's
//! own generated slots call): it records that the thread is attached, so references dropped during the
//! call are released at once rather than parked in PyO3's deferred-release pool (which leaked replaced
//! objects and error state until the next ordinary PyO3 call), and it turns a panic into an exception.
//! `impl_` is PyO3's semver-exempt internals: the pyo3 version is pinned to 0.30.x in the workspace, and
//! a change there fails to compile rather than misbehave.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::OnceLock;

use pyo3::exceptions::PySystemError;
use pyo3::ffi;
use pyo3::impl_::trampoline::{self, MethodDef};
use pyo3::prelude::*;
use pyo3::Borrowed;

use crate::container::PyContainer;

static ORIG_GET: OnceLock<ffi::binaryfunc> = OnceLock::new();
/// The `Container` type object, for the exact-type test of the slots (the type admits no subclasses, so
/// it is the same test as PyO3's cast, without the call).
static CONTAINER_TYPE: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(null_mut());
static ORIG_SET: OnceLock<ffi::objobjargproc> = OnceLock::new();

/// Install the slots on the `Container` type (once, at module import).
#[allow(unsafe_code)]
pub fn install(py: Python<'_>) -> PyResult<()> {
    let tp = py.get_type::<PyContainer>();
    let tp_ptr = tp.as_type_ptr();
    // SAFETY: `tp_ptr` is the live heap type object of `PyContainer` (kept alive by the module); we hold
    // the GIL (`py`), so nothing else reads or writes the type's slots meanwhile. `tp_as_mapping` of a heap
    // type points into its own `PyHeapTypeObject`, so writing the two function pointers is allowed, and
    // `PyType_Modified` invalidates the method caches that may hold the old ones.
    unsafe {
        let mapping = (*tp_ptr).tp_as_mapping;
        CONTAINER_TYPE.store(tp_ptr, Ordering::Relaxed);
        if mapping.is_null() {
            return Ok(());
        }
        if let Some(get) = (*mapping).mp_subscript {
            if ORIG_GET.set(get).is_ok() {
                (*mapping).mp_subscript = Some(subscript);
            }
        }
        if let Some(set) = (*mapping).mp_ass_subscript {
            if ORIG_SET.set(set).is_ok() {
                (*mapping).mp_ass_subscript = Some(ass_subscript);
            }
        }
        ffi::PyType_Modified(tp_ptr);
    }
    Ok(())
}

/// An exact `int` key that fits an `i64`, or `None` (any error from the conversion is cleared: the
/// general slot will see the key and report on it).
#[allow(unsafe_code)]
unsafe fn small_int(key: *mut ffi::PyObject) -> Option<i64> {
    // SAFETY: the caller passes a valid object pointer and holds the GIL.
    unsafe {
        if ffi::PyLong_CheckExact(key) == 0 {
            return None;
        }
        let i = ffi::PyLong_AsSsize_t(key);
        if i == -1 && !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        i64::try_from(i).ok()
    }
}

/// The typed read behind `m[i]`, run inside PyO3's trampoline (see [`subscript`]).
#[allow(unsafe_code)]
unsafe fn get_int(
    py: Python<'_>,
    slf: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: `slf` is the borrowed container CPython passed to the slot, alive for the call.
    let obj = unsafe { Borrowed::from_ptr(py, slf) };
    let c = obj.cast::<PyContainer>()?;
    // SAFETY: `key` is a valid borrowed object (CPython's argument); `small_int` only reads it.
    let i = unsafe { small_int(key) }.unwrap_or(i64::MAX);
    Ok(c.get().get_one(py, i)?.into_ptr())
}

/// The typed write behind `m[i] = v`, run inside PyO3's trampoline (see [`ass_subscript`]).
#[allow(unsafe_code)]
unsafe fn set_int(
    py: Python<'_>,
    slf: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
) -> PyResult<std::ffi::c_int> {
    // SAFETY: `slf`, `key` and `value` are the valid borrowed objects CPython passed to the slot.
    let (obj, val) = unsafe { (Borrowed::from_ptr(py, slf), Borrowed::from_ptr(py, value)) };
    let c = obj.cast::<PyContainer>()?;
    // SAFETY: as in `get_int`.
    let i = unsafe { small_int(key) }.unwrap_or(i64::MAX);
    c.get().set_one(py, i, &val)?;
    Ok(0)
}

/// `get_int` as PyO3's `binaryfunc` trampoline wants it.
struct GetInt;
impl MethodDef<trampoline::binaryfunc::Func> for GetInt {
    const METH: trampoline::binaryfunc::Func = get_int;
}

/// `set_int` as PyO3's trampoline for `(object, object, object) -> int` slots wants it.
struct SetInt;
impl MethodDef<trampoline::setattrofunc::Func> for SetInt {
    const METH: trampoline::setattrofunc::Func = set_int;
}

/// Raise `e` from a slot that runs outside PyO3's trampoline. Making the exception drops references
/// (its type, its arguments); `Python::attach` records that the thread is attached, so they are
/// released at once rather than parked in PyO3's deferred-release pool. Only error paths pay for it.
fn raise(e: PyErr) {
    Python::attach(move |py| e.restore(py));
}

/// The container `slf` is, if it is one (an exact-type test: `Container` has no subclasses).
///
/// # Safety
/// `slf` is a valid object pointer and the caller is attached to the interpreter.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn container<'a>(py: Python<'a>, slf: *mut ffi::PyObject) -> Option<&'a PyContainer> {
    // SAFETY: per the contract, `slf` is valid; its type is `Container` exactly, so the object is a
    // PyO3 `PyContainer` (frozen: `get` needs no borrow flag), alive for the caller's call.
    unsafe {
        if ffi::Py_TYPE(slf) != CONTAINER_TYPE.load(Ordering::Relaxed) {
            return None;
        }
        let b: Borrowed<'a, 'a, PyAny> = Borrowed::from_ptr(py, slf);
        let c: &'a PyContainer = &*std::ptr::from_ref(b.cast_unchecked::<PyContainer>().get());
        Some(c)
    }
}

/// `m[key]`.
///
/// An exact small `int` key on a numeric scalar member reads straight from the column
/// ([`crate::shared::Handle::scalar`]: the lock, the bounds and the chunk's identity checked, no
/// allocation): nothing in that call drops a reference, so it needs none of PyO3's bookkeeping. Anything
/// that read refuses (an index out of range, a busy store) and any other member go through PyO3's own
/// slot trampoline ([`get_int`]), which records that the thread is attached, so every reference dropped
/// in the call (a replaced object, an error's state) is released at once, as CPython does, and which
/// reports the error. Any other key goes to the slot PyO3 generated.
#[allow(unsafe_code)]
unsafe extern "C" fn subscript(slf: *mut ffi::PyObject, key: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls this slot attached to the interpreter, with valid borrowed pointers to the
    // container (`slf`, an instance of the type the slot was installed on) and the key.
    unsafe {
        if let Some(i) = small_int(key) {
            let py = Python::assume_attached();
            if let Some(c) = container(py, slf) {
                if c.plain_scalar() {
                    match catch_unwind(AssertUnwindSafe(|| c.fast_get(py, i))) {
                        Ok(Some(v)) => return v,
                        Ok(None) => {}
                        Err(_) => {
                            raise(PySystemError::new_err("compactstore: panic in m[i]"));
                            return null_mut();
                        }
                    }
                }
                return trampoline::binaryfunc::<GetInt>(slf, key);
            }
        }
        match ORIG_GET.get() {
            Some(f) => f(slf, key),
            None => null_mut(),
        }
    }
}

/// `m[key] = value` (`value` null: `del m[key]`, which the general slot refuses).
///
/// As [`subscript`]: an exact int or float written to a numeric scalar member at an int key goes
/// straight to the column; other values and members go through PyO3's trampoline ([`set_int`]).
#[allow(unsafe_code)]
unsafe extern "C" fn ass_subscript(
    slf: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
) -> std::ffi::c_int {
    // SAFETY: as for `subscript`; `value` is null (a deletion) or a valid borrowed object.
    unsafe {
        if !value.is_null() {
            if let Some(i) = small_int(key) {
                let py = Python::assume_attached();
                let val = Borrowed::from_ptr(py, value);
                if let Some(c) = container(py, slf) {
                    // The value is converted once, here: only a scalar of a numeric member that
                    // fits as it is takes the direct path.
                    let Some(x) = c.scalar_of(&val) else {
                        return trampoline::setattrofunc::<SetInt>(slf, key, value);
                    };
                    match catch_unwind(AssertUnwindSafe(|| c.set_scalar_at(py, i, x))) {
                        Ok(Ok(())) => return 0,
                        Ok(Err(e)) => raise(e),
                        Err(_) => raise(PySystemError::new_err("compactstore: panic in m[i] = v")),
                    }
                    return -1;
                }
            }
        }
        match ORIG_SET.get() {
            Some(f) => f(slf, key, value),
            None => -1,
        }
    }
}
