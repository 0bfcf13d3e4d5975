//! Engine errors as Python exceptions: one exhaustive `match`, per API.md.

use compactstore::Error;
use pyo3::exceptions::{
    PyAssertionError, PyIndexError, PyKeyError, PyMemoryError, PyOverflowError, PyTypeError, PyValueError,
};
use pyo3::PyErr;

/// Map an engine error to the Python exception API.md names for it.
///
/// Range → `IndexError`; unknown member, stale entry → `KeyError`; wrong type, read-only → `TypeError`;
/// int out of range, full store → `OverflowError`; wrong length, duplicate key, bad argument →
/// `ValueError`; memory the allocator refused → `MemoryError` (the call changed nothing); a broken
/// invariant → `AssertionError`. A new variant fails to compile here until it is mapped.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::IndexOutOfRange { .. } | Error::SlotFree { .. } => PyIndexError::new_err(msg),
        Error::UnknownMember { name } => PyKeyError::new_err(name),
        Error::StaleEntry { .. } => PyKeyError::new_err(msg),
        Error::WrongType { .. } | Error::ReadOnly { .. } => PyTypeError::new_err(msg),
        Error::ValueOutOfRange { .. } | Error::StoreFull { .. } => PyOverflowError::new_err(msg),
        Error::WrongLength { .. } | Error::DuplicateKey { .. } | Error::InvalidArgument(_) => {
            PyValueError::new_err(msg)
        }
        Error::OutOfMemory { .. } => PyMemoryError::new_err(msg),
        Error::Invariant(_) => PyAssertionError::new_err(msg),
    }
}

/// `?`-friendly conversion of an engine result into a Python one: `result.py()?` raises the engine's
/// error as the Python exception [`to_py`] maps it to. (Named for what it does; `IntoPy` was PyO3's own
/// name for a different conversion.)
pub trait ToPyResult<T> {
    /// The result with its error mapped by [`to_py`].
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> ToPyResult<T> for compactstore::Result<T> {
    #[inline]
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
