//! Engine errors as Python exceptions: one exhaustive `match`.

use compactstore::Error;
use pyo3::exceptions::{
    PyAssertionError, PyIndexError, PyKeyError, PyKeyboardInterrupt, PyMemoryError, PyOverflowError,
    PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::PyErr;

/// Map an engine error to the Python exception the package documents for it.
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
        Error::WrongType { .. }
        | Error::ReadOnly { .. }
        | Error::ChunkAllocation
        | Error::StoreReadOnly(_) => PyTypeError::new_err(msg),
        Error::ValueOutOfRange { .. } | Error::StoreFull { .. } => PyOverflowError::new_err(msg),
        Error::WrongLength { .. } | Error::DuplicateKey { .. } | Error::InvalidArgument(_) => {
            PyValueError::new_err(msg)
        }
        Error::OutOfMemory { .. } => PyMemoryError::new_err(msg),
        Error::Format(_) => crate::files::FormatError::new_err(msg),
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

/// `e` with the member it concerns named first — `member 'x': 258 out of range for u8` — for an error made
/// while converting or checking one member's value among several (`add`, `pool[k] = mapping`,
/// `e.update`, a default). The same exception type (the original is its `__cause__`); a `TypeError`,
/// `ValueError` or `OverflowError` only, and one that names a member already is returned as it is.
pub fn in_member(py: Python<'_>, e: PyErr, name: &str) -> PyErr {
    let ty = e.get_type(py);
    let named = [
        py.get_type::<PyTypeError>(),
        py.get_type::<PyValueError>(),
        py.get_type::<PyOverflowError>(),
    ];
    if !named.iter().any(|t| ty.is(t)) {
        return e;
    }
    let msg = match e.value(py).str() {
        Ok(m) => m.to_string(),
        Err(_) => return e,
    };
    if msg.starts_with("member ") {
        return e;
    }
    match ty.call1((format!("member '{name}': {msg}"),)) {
        Ok(obj) => {
            let named = PyErr::from_value(obj);
            named.set_cause(py, Some(e));
            named
        }
        Err(_) => e,
    }
}

/// [`in_member`] for the first of `values` that does not convert to its member's type: the member an
/// engine error about several values (`Store::add`, `KeyedStore::insert`) was about, when the engine
/// refused one of them. Other errors are returned as they are.
pub fn in_failing_member(
    py: Python<'_>,
    e: PyErr,
    schema: &compactstore::Schema,
    values: &[(usize, compactstore::Value)],
) -> PyErr {
    let failing = values.iter().find_map(|(m, v)| {
        let member = schema.member(*m).ok()?;
        member.ty().check(v).is_err().then(|| member.name().to_owned())
    });
    match failing {
        Some(name) => in_member(py, e, &name),
        None => e,
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
