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

use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::OnceLock;

use pyo3::exceptions::PySystemError;
use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::impl_::trampoline::{self, MethodDef};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::Borrowed;

use crate::container::PyContainer;
use crate::entry::PyEntry;
use crate::keyed::PyKeyedStore;
use crate::store::PyStore;

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
    let keyed = py.get_type::<PyKeyedStore>().as_type_ptr();
    KEYED_TYPE.store(keyed, Ordering::Relaxed);
    install_get(keyed, &ORIG_KEYED_GET, keyed_subscript);
    install_set(keyed, &ORIG_KEYED_SET, keyed_ass_subscript);
    let entry = py.get_type::<PyEntry>().as_type_ptr();
    ENTRY_TYPE.store(entry, Ordering::Relaxed);
    install_get(entry, &ORIG_ENTRY_GET, entry_subscript);
    install_set(entry, &ORIG_ENTRY_SET, entry_ass_subscript);
    install_add(py)
}

/// Replace the `mp_ass_subscript` slot of type `tp` by `f`, keeping the one PyO3 generated in `orig` (as
/// [`install_get`]; the slot serves both `__setitem__` and `__delitem__`).
#[allow(unsafe_code)]
fn install_set(tp: *mut ffi::PyTypeObject, orig: &OnceLock<ffi::objobjargproc>, f: ffi::objobjargproc) {
    // SAFETY: as in `install_get`.
    unsafe {
        let mapping = (*tp).tp_as_mapping;
        if mapping.is_null() {
            return;
        }
        if let Some(set) = (*mapping).mp_ass_subscript {
            if orig.set(set).is_ok() {
                (*mapping).mp_ass_subscript = Some(f);
                retarget_wrapper(tp, c"__setitem__", set as *mut c_void, f as *mut c_void);
                retarget_wrapper(tp, c"__delitem__", set as *mut c_void, f as *mut c_void);
            }
        }
        ffi::PyType_Modified(tp);
    }
}

static ORIG_KEYED_SET: OnceLock<ffi::objobjargproc> = OnceLock::new();
static ORIG_ENTRY_SET: OnceLock<ffi::objobjargproc> = OnceLock::new();

/// Run `f` (a fast path: whether it did the write) with any panic raised as a `SystemError`: `Err(())`
/// then, and the caller returns -1.
#[inline(always)]
fn guarded_set(what: &'static str, f: impl FnOnce() -> bool) -> Result<bool, ()> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(done) => Ok(done),
        Err(_) => {
            raise(PySystemError::new_err(what));
            Err(())
        }
    }
}

/// `pool[key, name] = value` (and every other assignment or deletion, which the slot PyO3 generated
/// handles): see [`PyKeyedStore::fast_set_member`]. The fast path drops no reference.
#[allow(unsafe_code)]
unsafe extern "C" fn keyed_ass_subscript(
    slf: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
) -> std::ffi::c_int {
    // SAFETY: as for `keyed_subscript`; `value` is null (a deletion) or a valid borrowed object.
    unsafe {
        if !value.is_null() && ffi::PyTuple_CheckExact(key) != 0 && ffi::PyTuple_GET_SIZE(key) == 2 {
            let py = Python::assume_attached();
            if let Some(p) = keyed(py, slf) {
                let k = Borrowed::from_ptr(py, ffi::PyTuple_GET_ITEM(key, 0));
                let name = ffi::PyTuple_GET_ITEM(key, 1);
                let v = Borrowed::from_ptr(py, value);
                match guarded_set("compactstore: panic in pool[k, name] = v", || {
                    p.fast_set_member(&k, name, &v)
                }) {
                    Ok(true) => return 0,
                    Ok(false) => {}
                    Err(()) => return -1,
                }
            }
        }
        match ORIG_KEYED_SET.get() {
            Some(f) => f(slf, key, value),
            None => -1,
        }
    }
}

/// `e[name] = value` (and `del e[name]`, which the slot PyO3 generated refuses): see
/// [`PyEntry::fast_set`]. The fast path drops no reference.
#[allow(unsafe_code)]
unsafe extern "C" fn entry_ass_subscript(
    slf: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
) -> std::ffi::c_int {
    // SAFETY: as for `entry_subscript`; `value` is null (a deletion) or a valid borrowed object.
    unsafe {
        if !value.is_null() && ffi::Py_TYPE(slf) == ENTRY_TYPE.load(Ordering::Relaxed) {
            let py = Python::assume_attached();
            let e = Borrowed::from_ptr(py, slf).cast_unchecked::<PyEntry>();
            let e = e.get();
            let v = Borrowed::from_ptr(py, value);
            match guarded_set("compactstore: panic in e[name] = v", || e.fast_set(name, &v)) {
                Ok(true) => return 0,
                Ok(false) => {}
                Err(()) => return -1,
            }
        }
        match ORIG_ENTRY_SET.get() {
            Some(f) => f(slf, name, value),
            None => -1,
        }
    }
}

/// Replace the `mp_subscript` slot of type `tp` by `f`, keeping the one PyO3 generated in `orig`.
#[allow(unsafe_code)]
fn install_get(tp: *mut ffi::PyTypeObject, orig: &OnceLock<ffi::binaryfunc>, f: ffi::binaryfunc) {
    // SAFETY: as in `install`: `tp` is a live heap type made by PyO3 for this module, its mapping methods
    // live in its own heap type object, and the caller holds the GIL. Subclasses made later copy the slot.
    unsafe {
        let mapping = (*tp).tp_as_mapping;
        if mapping.is_null() {
            return;
        }
        if let Some(get) = (*mapping).mp_subscript {
            if orig.set(get).is_ok() {
                (*mapping).mp_subscript = Some(f);
                retarget_wrapper(tp, c"__getitem__", get as *mut c_void, f as *mut c_void);
            }
        }
        ffi::PyType_Modified(tp);
    }
}

/// Point the slot wrapper `name` of type `tp` (the `__getitem__` descriptor CPython made from the slot
/// PyO3 generated) at `new`, if it wraps `old`. A Python subclass (`cs.KeyedStore` is one) fills its own
/// slot from that descriptor's wrapped function, not from the base's slot: without this it would call
/// PyO3's slot directly and skip the fast path. Nothing changes unless the descriptor is a
/// `wrapper_descriptor` wrapping exactly `old`.
///
/// # Safety
/// `tp` is a live type object and the caller holds the GIL; `new` is a function of the same signature as
/// `old` that hands every case it does not take to `old`.
#[allow(unsafe_code)]
unsafe fn retarget_wrapper(tp: *mut ffi::PyTypeObject, name: &CStr, old: *mut c_void, new: *mut c_void) {
    // SAFETY: per the contract; the descriptor is borrowed from the type's dict (alive with the type), and
    // its fields are read as a `PyWrapperDescrObject` only once its type is `wrapper_descriptor`.
    unsafe {
        let dict = (*tp).tp_dict;
        if dict.is_null() {
            return;
        }
        let descr = ffi::PyDict_GetItemString(dict, name.as_ptr());
        if descr.is_null() || CStr::from_ptr((*ffi::Py_TYPE(descr)).tp_name) != c"wrapper_descriptor" {
            return;
        }
        let w = descr.cast::<ffi::PyWrapperDescrObject>();
        if (*w).d_wrapped == old {
            (*w).d_wrapped = new;
        }
    }
}

static ORIG_KEYED_GET: OnceLock<ffi::binaryfunc> = OnceLock::new();
static ORIG_ENTRY_GET: OnceLock<ffi::binaryfunc> = OnceLock::new();
/// The `Entry` type object (no subclasses: the exact-type test is PyO3's cast).
static ENTRY_TYPE: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(null_mut());

/// `KeyedStore` and the first subclass of it the slots met (`cs.KeyedStore`, nearly always), which is
/// kept alive by a reference of its own, so its address can never name another type: the slots test
/// these two before PyO3's subtype test.
static KEYED_TYPE: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(null_mut());
static KEYED_SUBTYPE: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(null_mut());

/// The keyed store `slf` is, if it is one (of `KeyedStore` or a subclass).
///
/// # Safety
/// `slf` is a valid object pointer and the caller is attached to the interpreter.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn keyed<'a>(py: Python<'a>, slf: *mut ffi::PyObject) -> Option<&'a PyKeyedStore> {
    // SAFETY: per the contract; a type equal to one of the two remembered is `KeyedStore` or a subclass
    // of it (the subclass is kept alive, so the address is still that type's), so the object is a
    // `PyKeyedStore` (frozen: `get` needs no borrow flag), alive for the caller's call.
    unsafe {
        let tp = ffi::Py_TYPE(slf);
        let b: Borrowed<'a, 'a, PyAny> = Borrowed::from_ptr(py, slf);
        if tp == KEYED_TYPE.load(Ordering::Relaxed) || tp == KEYED_SUBTYPE.load(Ordering::Relaxed) {
            return Some(&*std::ptr::from_ref(b.cast_unchecked::<PyKeyedStore>().get()));
        }
        let k = b.cast::<PyKeyedStore>().ok()?;
        if KEYED_SUBTYPE.load(Ordering::Relaxed).is_null() {
            ffi::Py_INCREF(tp.cast());
            KEYED_SUBTYPE.store(tp, Ordering::Relaxed);
        }
        Some(&*std::ptr::from_ref(k.get()))
    }
}

/// Whether the object `obj` has weak references (its type's weak-reference list is not empty).
///
/// # Safety
/// `obj` is a valid object pointer and the caller is attached to the interpreter.
#[allow(unsafe_code)]
#[inline]
pub(crate) unsafe fn has_weakrefs(obj: *mut ffi::PyObject) -> bool {
    // SAFETY: per the contract `obj` is valid; a positive `tp_weaklistoffset` is the offset of the
    // object's weak-reference list pointer within the object (PyO3's `weakref` classes have one).
    unsafe {
        let off = (*ffi::Py_TYPE(obj)).tp_weaklistoffset;
        if off <= 0 {
            return off != 0;
        }
        !(*obj.cast::<u8>().offset(off).cast::<*mut ffi::PyObject>()).is_null()
    }
}

/// Run `f` (a fast path returning a new reference, or `None` to hand over) with any panic raised as a
/// `SystemError`: `Err(())` then, and the caller returns null.
#[inline(always)]
fn guarded(
    what: &'static str,
    f: impl FnOnce() -> Option<*mut ffi::PyObject>,
) -> Result<Option<*mut ffi::PyObject>, ()> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Ok(r),
        Err(_) => {
            raise(PySystemError::new_err(what));
            Err(())
        }
    }
}

/// `pool[key]` and `pool[key, name]` on a keyed store (or a subclass that does not define
/// `__getitem__`).
///
/// `pool[key, name]` with a key that converts without the general path (an exact int, str or bytes), an
/// interned member name and a numeric scalar member reads straight from the column under one lock
/// ([`PyKeyedStore::fast_member`]); `pool[key]` reuses the store's cached Entry when nothing else holds it
/// ([`PyKeyedStore::fast_entry`]). Neither drops a reference PyO3 would need to know of (the old key of a
/// reused Entry is released with `Py_DECREF`, the store unlocked). Everything else, and every error, is
/// the slot PyO3 generated, which converts, makes the Entry, and raises.
#[allow(unsafe_code)]
unsafe extern "C" fn keyed_subscript(slf: *mut ffi::PyObject, key: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls this slot attached, with valid borrowed pointers to the store and the key;
    // tuple items are read only after the exact-tuple and length tests.
    unsafe {
        let py = Python::assume_attached();
        if let Some(p) = keyed(py, slf) {
            let got = if ffi::PyTuple_CheckExact(key) != 0 {
                if ffi::PyTuple_GET_SIZE(key) == 2 {
                    let k = Borrowed::from_ptr(py, ffi::PyTuple_GET_ITEM(key, 0));
                    let name = ffi::PyTuple_GET_ITEM(key, 1);
                    guarded("compactstore: panic in pool[k, name]", || {
                        p.fast_member(py, &k, name)
                    })
                } else {
                    Ok(None)
                }
            } else {
                let k = Borrowed::from_ptr(py, key);
                guarded("compactstore: panic in pool[k]", || p.fast_entry(py, &k))
            };
            match got {
                Ok(Some(v)) => return v,
                Ok(None) => {}
                Err(()) => return null_mut(),
            }
        }
        match ORIG_KEYED_GET.get() {
            Some(f) => f(slf, key),
            None => null_mut(),
        }
    }
}

/// `e[name]` on an Entry: an interned member name of a numeric scalar member reads straight from the
/// column, once the entry is checked live ([`PyEntry::fast_get`]); anything else, and every error, is the
/// slot PyO3 generated.
#[allow(unsafe_code)]
unsafe extern "C" fn entry_subscript(
    slf: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls this slot attached, with valid borrowed pointers; the exact-type test makes
    // `slf` a `PyEntry` (frozen: `get` needs no borrow flag).
    unsafe {
        if ffi::Py_TYPE(slf) == ENTRY_TYPE.load(Ordering::Relaxed) {
            let py = Python::assume_attached();
            let e = Borrowed::from_ptr(py, slf).cast_unchecked::<PyEntry>();
            let e = e.get();
            match guarded("compactstore: panic in e[name]", || e.fast_get(py, name)) {
                Ok(Some(v)) => return v,
                Ok(None) => {}
                Err(()) => return null_mut(),
            }
        }
        match ORIG_ENTRY_GET.get() {
            Some(f) => f(slf, name),
            None => null_mut(),
        }
    }
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

/// Replace `Store.add` (which PyO3 makes a `METH_FASTCALL | METH_KEYWORDS` method) by the same method
/// as `METH_VARARGS | METH_KEYWORDS`, same name and docstring (so the same text signature).
///
/// `s.add(**d)` is why: CPython passes a call with `**d` to a `METH_VARARGS | METH_KEYWORDS` function
/// with its keyword dict as it is, where a fastcall method has that dict unpacked into names and values
/// for the call and PyO3 builds a new dict from them for `**members`. `s.add(d)` pays one 1-tuple instead.
/// Both forms end in [`PyStore::add`], so behaviour and errors are PyO3's own: at most one positional
/// argument, and a `mapping=` keyword is the mapping.
#[allow(unsafe_code)]
fn install_add(py: Python<'_>) -> PyResult<()> {
    let tp = py.get_type::<PyStore>();
    let old = tp.getattr(intern!(py, "add"))?;
    // SAFETY: attached (`py`). `PyMethodDescr_Type` is CPython's static type object; the test makes sure
    // `old` is a method descriptor before its `d_method` is read. Its name and docstring are copied into
    // leaked C strings, and the new `PyMethodDef` is leaked too: a method descriptor keeps a pointer to
    // its def for the life of the process, as a static def would be. `PyDescr_NewMethod` returns a new
    // reference (or null with an exception set), which `from_owned_ptr_or_err` takes over.
    let def: &'static mut ffi::PyMethodDef = unsafe {
        if ffi::PyObject_TypeCheck(old.as_ptr(), std::ptr::addr_of_mut!(ffi::PyMethodDescr_Type)) == 0 {
            return Ok(());
        }
        let orig = (*old.as_ptr().cast::<ffi::PyMethodDescrObject>()).d_method;
        let name = CStr::from_ptr((*orig).ml_name).to_owned();
        let doc = if (*orig).ml_doc.is_null() {
            std::ptr::null()
        } else {
            CStr::from_ptr((*orig).ml_doc).to_owned().into_raw().cast_const()
        };
        Box::leak(Box::new(ffi::PyMethodDef {
            ml_name: name.into_raw().cast_const(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunctionWithKeywords: trampoline::cfunction_with_keywords::<AddKw>,
            },
            ml_flags: ffi::METH_VARARGS | ffi::METH_KEYWORDS,
            ml_doc: doc,
        }))
    };
    // SAFETY: as above; `tp` is the live `Store` type object and `def` lives forever.
    let new = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(tp.as_type_ptr(), def))? };
    tp.setattr(intern!(py, "add"), new)
}

/// `Store.add(*args, **kwargs)` as the `METH_VARARGS | METH_KEYWORDS` convention passes it: the
/// positional arguments as a tuple, the keywords as a dict (or null). The dict is only read: a `mapping`
/// keyword is taken out of a copy.
#[allow(unsafe_code)]
unsafe fn add_kw(
    py: Python<'_>,
    slf: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: CPython calls a method with valid borrowed pointers: `slf` (the descriptor has checked it
    // is a `Store`; the cast checks again), `args` a tuple, `kwargs` null or a dict; the casts check.
    let (slf, args, kwargs) = unsafe {
        (
            Borrowed::from_ptr(py, slf),
            Borrowed::from_ptr(py, args),
            (!kwargs.is_null()).then(|| Borrowed::from_ptr(py, kwargs)),
        )
    };
    let store = slf.cast::<PyStore>()?;
    let args = args.cast::<PyTuple>()?;
    let kwargs = kwargs.map(|k| k.cast::<PyDict>()).transpose()?;
    let mut mapping = match args.len() {
        0 => None,
        1 => Some(args.get_item(0)?),
        n => {
            return Err(PyTypeError::new_err(format!(
                "Store.add() takes from 0 to 1 positional arguments but {n} were given"
            )))
        }
    };
    let mut members = kwargs.map(|k| k.to_owned());
    if let Some(kw) = kwargs {
        let key = intern!(py, "mapping");
        if let Some(m) = kw.get_item(key)? {
            if mapping.is_some() {
                return Err(PyTypeError::new_err(
                    "Store.add() got multiple values for argument 'mapping'",
                ));
            }
            let rest = kw.copy()?;
            rest.del_item(key)?;
            mapping = Some(m);
            members = Some(rest);
        }
    }
    let i = store.get().add(py, mapping.as_ref(), members.as_ref())?;
    Ok(i.into_pyobject(py)?.into_ptr())
}

/// `add_kw` as PyO3's trampoline for `METH_VARARGS | METH_KEYWORDS` functions wants it.
struct AddKw;
impl MethodDef<trampoline::cfunction_with_keywords::Func> for AddKw {
    const METH: trampoline::cfunction_with_keywords::Func = add_kw;
}
