//! Hand-written `mp_subscript` / `mp_ass_subscript` slots for member containers, for `m[i]` with an int.
//!
//! DESIGN.md B4 asks `m[i]` to beat numpy's scalar indexing; PyO3's generated slot wrapper (thread-local
//! bookkeeping, argument extraction) costs about as much as the read itself. These slots take the one
//! common case, an exact `int` key, straight to [`PyContainer::get_one`] / [`PyContainer::set_one`] and
//! hand every other key (slices, tuples, arrays, big ints) to the slot PyO3 generated, so behaviour and
//! errors are the same either way.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;
use std::sync::OnceLock;

use pyo3::exceptions::PySystemError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::Borrowed;

use crate::container::PyContainer;

static ORIG_GET: OnceLock<ffi::binaryfunc> = OnceLock::new();
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

/// `m[key]`.
#[allow(unsafe_code)]
unsafe extern "C" fn subscript(slf: *mut ffi::PyObject, key: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls this slot with the GIL held and valid pointers to the container (`slf`, an
    // instance of the type the slot was installed on, or a subclass) and the key, both borrowed.
    unsafe {
        if let Some(i) = small_int(key) {
            let py = Python::assume_attached();
            let obj = Borrowed::from_ptr(py, slf);
            if let Ok(c) = obj.cast::<PyContainer>() {
                match catch_unwind(AssertUnwindSafe(|| c.get().get_one(py, i))) {
                    Ok(Ok(v)) => return v.into_ptr(),
                    Ok(Err(e)) => {
                        e.restore(py);
                        return null_mut();
                    }
                    Err(_) => {
                        PySystemError::new_err("compactstore: panic in m[i]").restore(py);
                        return null_mut();
                    }
                }
            }
        }
        match ORIG_GET.get() {
            Some(f) => f(slf, key),
            None => null_mut(),
        }
    }
}

/// `m[key] = value` (`value` null: `del m[key]`, which the general slot refuses).
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
                let obj = Borrowed::from_ptr(py, slf);
                let val = Borrowed::from_ptr(py, value);
                if let Ok(c) = obj.cast::<PyContainer>() {
                    match catch_unwind(AssertUnwindSafe(|| c.get().set_one(py, i, &val))) {
                        Ok(Ok(())) => return 0,
                        Ok(Err(e)) => {
                            e.restore(py);
                            return -1;
                        }
                        Err(_) => {
                            PySystemError::new_err("compactstore: panic in m[i] = v").restore(py);
                            return -1;
                        }
                    }
                }
            }
        }
        match ORIG_SET.get() {
            Some(f) => f(slf, key, value),
            None => -1,
        }
    }
}
