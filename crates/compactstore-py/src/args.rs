//! Integer arguments: indices, slot indices, sizes and `log2size`, each classified once by [`int_arg`].

use compactstore::Value;
use pyo3::exceptions::{PyIndexError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::convert::scalar_value;

/// An int argument as given: an int that fits `i64`, a `bool`, an int beyond `i64` either way, or no int.
pub(crate) enum IntArg {
    Int(i64),
    Bool(bool),
    Huge,
    NotInt,
}

/// Classify an int argument (`bool` and numpy ints count; floats and strings do not).
#[inline]
pub(crate) fn int_arg(x: &Bound<'_, PyAny>) -> IntArg {
    match scalar_value(x) {
        Ok(Value::Int(i)) => IntArg::Int(i),
        Ok(Value::Bool(b)) => IntArg::Bool(b),
        Ok(Value::UInt(_)) => IntArg::Huge,
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(x.py()) => IntArg::Huge,
        _ => IntArg::NotInt,
    }
}

/// The text of an index as given (its `__index__`), else `fallback`.
fn index_text(i: &Bound<'_, PyAny>, fallback: impl FnOnce() -> String) -> String {
    i.call_method0("__index__")
        .and_then(|n| n.str())
        .map(|s| s.to_string())
        .unwrap_or_else(|_| fallback())
}

/// The `IndexError` of an int index beyond `i64`, naming the index as given (no size holds it).
pub(crate) fn huge_index(i: &Bound<'_, PyAny>) -> PyErr {
    let text = index_text(i, || "beyond the int64 range".into());
    PyIndexError::new_err(format!("index {text} out of range"))
}

/// A container index: an int (`bool` and numpy ints count; floats do not).
pub(crate) fn int_index(i: &Bound<'_, PyAny>) -> PyResult<i64> {
    match int_arg(i) {
        IntArg::Int(i) => Ok(i),
        IntArg::Bool(b) => Ok(i64::from(b)),
        // An int beyond i64 is out of range like any other too-large index: say which one it was.
        IntArg::Huge => Err(huge_index(i)),
        IntArg::NotInt => Err(PyTypeError::new_err(format!(
            "container indices must be ints, slices, int arrays or bool masks, not {}",
            i.get_type().name()?
        ))),
    }
}

/// A slot index for `del`, `entry`, `occupied`: an int `0 <= i` (`bool` counts as an int).
pub(crate) fn slot_index(i: &Bound<'_, PyAny>) -> PyResult<i64> {
    match int_arg(i) {
        IntArg::Int(i) => Ok(i),
        IntArg::Bool(b) => Ok(i64::from(b)),
        // An int beyond i64 is simply out of range.
        IntArg::Huge => Ok(i64::MAX),
        IntArg::NotInt => Err(PyTypeError::new_err("slot indices are ints")),
    }
}

/// A slot index for `del` and `entry`: `0 <= i < size`, else `IndexError` naming the index as given (an
/// int beyond `i64` too, never a clamped number).
pub(crate) fn slot_in_range(i: &Bound<'_, PyAny>, size: usize) -> PyResult<usize> {
    let k = slot_index(i)?;
    if k >= 0 && (k as u64) < size as u64 {
        return Ok(k as usize);
    }
    let text = index_text(i, || k.to_string());
    Err(PyIndexError::new_err(format!(
        "slot {text} out of range for size {size}"
    )))
}

/// A static store's size: an int `>= 0`.
pub(crate) fn size_arg(size: &Bound<'_, PyAny>) -> PyResult<usize> {
    match int_arg(size) {
        IntArg::Int(i) if i >= 0 => Ok(i as usize),
        IntArg::Bool(b) => Ok(usize::from(b)),
        IntArg::Int(_) => Err(PyValueError::new_err("size must be >= 0")),
        IntArg::Huge => Err(PyValueError::new_err("size too large")),
        IntArg::NotInt => Err(PyTypeError::new_err("size must be an int")),
    }
}

/// A chunk size exponent: an int `0..=MAX_LOG2SIZE` (a `bool` is not one).
pub(crate) fn log2size_arg(k: &Bound<'_, PyAny>) -> PyResult<u32> {
    match int_arg(k) {
        IntArg::Int(i) if (0..=i64::from(compactstore::MAX_LOG2SIZE)).contains(&i) => Ok(i as u32),
        IntArg::Int(_) | IntArg::Huge => Err(PyValueError::new_err(format!(
            "log2size must be 0..={}",
            compactstore::MAX_LOG2SIZE
        ))),
        IntArg::Bool(_) | IntArg::NotInt => Err(PyTypeError::new_err("log2size must be an int")),
    }
}
