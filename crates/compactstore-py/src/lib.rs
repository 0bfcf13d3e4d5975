//! Python bindings of compactstore, built by maturin as `compactstore._native`.
//!
//! Thin by design: each method converts its arguments, calls the engine, and maps the engine's error to
//! the Python exception API.md names (`error.rs`). No store logic lives here.

mod attr;
mod cell;
mod container;
mod convert;
mod entry;
mod error;
mod fastpath;
mod iter;
mod keyed;
mod schema;
mod shared;
mod store;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<schema::PySchema>()?;
    m.add_class::<store::PyStore>()?;
    m.add_class::<store::PyStaticStore>()?;
    m.add_class::<store::PyDynamicStore>()?;
    m.add_class::<store::PyMemberAttr>()?;
    m.add_class::<container::PyContainer>()?;
    fastpath::install(m.py())?;
    m.add_class::<entry::PyEntry>()?;
    m.add_class::<keyed::PyKeyedStore>()?;
    iter::register(m)?;
    Ok(())
}
