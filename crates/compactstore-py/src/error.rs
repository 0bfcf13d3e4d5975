//! Engine errors as Python exceptions: one exhaustive `match`, per API.md.

use compactstore::Error;
use pyo3::exceptions::{
    PyAssertionError, PyIndexError, PyKeyError, PyKeyboardInterrupt, PyOverflowError, PyTypeError,
    PyValueError,
};
use pyo3::{PyErr, PyResult, Python};

/// Map an engine error to the Python exception API.md names for it.
///
/// Range → `IndexError`; unknown member, stale entry → `KeyError`; wrong type, read-only → `TypeError`;
/// int out of range, full store → `OverflowError`; wrong length, bad argument → `ValueError`; a broken
/// invariant → `AssertionError`. A new variant fails to compile here until it is mapped.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::IndexOutOfRange { .. } | Error::SlotFree { .. } => PyIndexError::new_err(msg),
        Error::UnknownMember { name } => PyKeyError::new_err(name),
        Error::StaleEntry { .. } => PyKeyError::new_err(msg),
        Error::WrongType { .. } | Error::ReadOnly { .. } | Error::ChunkAllocation => {
            PyTypeError::new_err(msg)
        }
        Error::ValueOutOfRange { .. } | Error::StoreFull { .. } => PyOverflowError::new_err(msg),
        Error::WrongLength { .. } | Error::InvalidArgument(_) => PyValueError::new_err(msg),
        Error::Invariant(_) => PyAssertionError::new_err(msg),
        // Only long calls run under `interruptible` stop, and it raises what the signal handler raised;
        // this is the fallback should a check stop a call without one.
        Error::Interrupted => PyKeyboardInterrupt::new_err(()),
    }
}

/// Run `f`, a call that may run for seconds, so that Ctrl-C (any signal whose Python handler raises)
/// stops it promptly: the engine loops it runs ask [`Python::check_signals`] every million steps or so
/// (`compactstore::interrupt`), and the exception the handler raised — `KeyboardInterrupt` for Ctrl-C
/// — is what `f` returns. The engine calls that poll change nothing when stopped (they build a new
/// store, or only read).
pub fn interruptible<R>(py: Python<'_>, f: impl FnOnce() -> PyResult<R>) -> PyResult<R> {
    let mut pending: Option<PyErr> = None;
    let mut out: Option<PyResult<R>> = None;
    {
        let mut check = || match py.check_signals() {
            Ok(()) => false,
            Err(e) => {
                pending = Some(e);
                true
            }
        };
        // `f`'s result travels in `out`: `with_check` only carries engine errors.
        let _ = compactstore::interrupt::with_check(&mut check, || {
            out = Some(f());
            Ok(())
        });
    }
    match (out, pending) {
        (Some(Err(_)), Some(raised)) => Err(raised),
        (Some(r), _) => r,
        (None, raised) => Err(raised.unwrap_or_else(|| PyKeyboardInterrupt::new_err(()))),
    }
}

/// [`Python::check_signals`] every `every`-th call with `i` a multiple of it: for binding loops over
/// Python objects that may run for seconds (converting a column of values).
#[inline]
pub fn check_signals_every(py: Python<'_>, i: usize, every: usize) -> PyResult<()> {
    if i % every == every - 1 {
        py.check_signals()
    } else {
        Ok(())
    }
}

/// `?`-friendly conversion of engine results.
pub trait IntoPy<T> {
    /// The result with its error mapped by [`to_py`].
    fn py(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPy<T> for compactstore::Result<T> {
    #[inline]
    fn py(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
