//! Python bindings of compactstore, built by maturin as `compactstore._native`.
//!
//! Thin by design: each method converts its arguments, calls the engine, and maps the engine's error to
//! the Python exception the docs name (`error.rs`). No store logic lives here.

mod args;
mod arrow;
mod attr;
mod cell;
mod container;
mod convert;
mod dynamic_store;
mod entry;
mod error;
mod fastpath;
mod iter;
mod keyed;
mod schema;
mod shared;
mod static_store;
mod store;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<schema::PySchema>()?;
    m.add_class::<store::PyStore>()?;
    m.add_class::<static_store::PyStaticStore>()?;
    m.add_class::<dynamic_store::PyDynamicStore>()?;
    m.add_class::<store::PyMemberAttr>()?;
    m.add_class::<container::PyContainer>()?;
    fastpath::install(m.py())?;
    m.add_class::<entry::PyEntry>()?;
    m.add_class::<keyed::PyKeyedStore>()?;
    iter::register(m)?;
    arrow::register(m)?;
    load_numpy_api(m.py())?;
    Ok(())
}

/// Load numpy's C API now, at import, where a failure is raised as itself.
///
/// rust-numpy loads the API on first use and panics if that fails. The failure that happens in practice
/// is Ctrl-C: a SIGINT that arrived during a long call is raised by the first Python code that runs,
/// which was the import inside the first numpy call, and the user got a `PanicException` instead of
/// `KeyboardInterrupt`. Importing the module ourselves first lets such an error through unchanged.
fn load_numpy_api(py: Python<'_>) -> PyResult<()> {
    if let Err(e) = py.import("numpy._core.multiarray") {
        if !e.is_instance_of::<pyo3::exceptions::PyModuleNotFoundError>(py) {
            return Err(e);
        }
        py.import("numpy.core.multiarray")?; // numpy 1.x
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = numpy::PyArray1::<u8>::zeros(py, 0, false);
    }))
    .map_err(|_| pyo3::exceptions::PyImportError::new_err("compactstore: cannot load numpy's C API"))
}
