//! `s.name` and `e.name` without an exception on the way.
//!
//! PyO3's `__getattr__` runs CPython's generic lookup first and is called only after that lookup has made
//! (and formatted) an `AttributeError`: ~300 ns for `s.fitness` or `e.fitness`, against ~40 ns for
//! `e["fitness"]`. The stores and entries define `__getattribute__` instead, which runs the same generic
//! lookup with CPython's `suppress` flag (a missing attribute returns NULL without an exception) and then
//! looks the name up among the members. The order is unchanged: methods and properties first, members
//! second, so a member named like a method (`size`, `keys`) is still reached with `s[name]` / `e[name]`.

use std::os::raw::c_int;

use pyo3::exceptions::PyAttributeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

#[allow(unsafe_code)]
unsafe extern "C" {
    /// CPython's generic attribute lookup, the function `PyObject_GenericGetAttr` calls with
    /// `dict = NULL, suppress = 0`. With `suppress = 1` a missing attribute returns NULL *without* an
    /// exception; any other error (a property raising, say) is still raised. Declared `PyAPI_FUNC` in
    /// `Include/cpython/object.h` from CPython 3.7 through 3.14 (same signature and contract throughout), and
    /// exported by the 3.10-3.13 builds that `make test-versions` runs the tests on. It
    /// is a private API, so a CPython that dropped it would refuse to import this module (undefined
    /// symbol) rather than misbehave; PyPy and GraalPy, which lack it, are not supported, and neither is
    /// the limited API.
    fn _PyObject_GenericGetAttrWithDict(
        obj: *mut ffi::PyObject,
        name: *mut ffi::PyObject,
        dict: *mut ffi::PyObject,
        suppress: c_int,
    ) -> *mut ffi::PyObject;
}

/// The attribute `name` of `obj` found by the generic lookup (type attributes, descriptors, an instance
/// `__dict__`), or `None` if there is none. Errors other than a missing attribute propagate.
#[allow(unsafe_code)]
pub fn generic<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    // SAFETY: `obj` and `name` are live references (borrowed for the call; the function does not steal
    // them), `name` is a `str` as the function requires, the GIL is held (`py`), and `dict = NULL` asks
    // the function to find the instance dict itself. It returns a new reference or NULL.
    let p = unsafe { _PyObject_GenericGetAttrWithDict(obj.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 1) };
    if p.is_null() {
        return match PyErr::take(py) {
            Some(e) => Err(e),
            None => Ok(None),
        };
    }
    // SAFETY: `p` is a non-NULL new reference returned by CPython; the `Bound` takes ownership of it.
    Ok(Some(unsafe { Bound::from_owned_ptr(py, p) }))
}

/// The `AttributeError` for a name that is neither an attribute of `obj` nor a member. (PyO3 passes an
/// `AttributeError` from `__getattribute__` on to `__getattr__`, so both raise this one.)
pub fn missing(obj: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> PyErr {
    let tp = obj.get_type();
    let tname = tp.name().map_or_else(|_| "object".to_owned(), |n| n.to_string());
    PyAttributeError::new_err(format!("'{tname}' object has no attribute '{name}'"))
}

/// `object.__setattr__(obj, name, value)` (or `object.__delattr__` for `None`): the instance `__dict__` of a
/// Python subclass, a property's setter, or `AttributeError`.
#[allow(unsafe_code)]
pub fn generic_set(
    obj: &Bound<'_, PyAny>,
    name: &Bound<'_, PyString>,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let v = value.map_or(std::ptr::null_mut(), Bound::as_ptr);
    // SAFETY: `obj` and `name` are live references and `name` is a `str`; `v` is a live reference or NULL
    // (NULL deletes the attribute, as the C API documents); none is stolen; the GIL is held.
    let rc = unsafe { ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), v) };
    if rc < 0 {
        Err(PyErr::fetch(obj.py()))
    } else {
        Ok(())
    }
}

/// Whether a class in the method resolution order of `obj`'s type defines `name` (a method, property or
/// other class attribute — the type's own attributes, not its metaclass's, which `hasattr(type, name)`
/// would also see).
pub fn type_defines(obj: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> PyResult<bool> {
    let py = obj.py();
    for k in obj.get_type().getattr(pyo3::intern!(py, "__mro__"))?.try_iter()? {
        if k?.getattr(pyo3::intern!(py, "__dict__"))?.contains(name)? {
            return Ok(true);
        }
    }
    Ok(false)
}
