//! `Schema`: the member definitions of a store type, built by the Python package from annotations.

use std::sync::Arc;

use compactstore::{Dtype, Member, MemberType, Schema};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::convert::member_value;
use crate::error::IntoPy;

/// The members of a store type, in declaration order (built by `compactstore` from annotations).
#[pyclass(frozen, module = "compactstore._native", name = "Schema")]
pub struct PySchema {
    pub schema: Arc<Schema>,
    /// Member names as interned Python strings, by position.
    pub names: Vec<Py<PyString>>,
}

#[pymethods]
impl PySchema {
    /// Build a schema from `(name, dtype, length, default, read_only)` tuples.
    ///
    /// `dtype` is a short name (`"i64"`, `"bool"`, `"f32"`); `length` 0 is a scalar member, `n >= 1` an
    /// array of n; `default` is `None` for the type's zero. Raises `TypeError` for an unknown dtype or a
    /// default of the wrong type, `OverflowError` for a default out of range, `ValueError` for a duplicate
    /// name or a default array of the wrong length.
    #[new]
    fn new(py: Python<'_>, members: Vec<(String, String, usize, Py<PyAny>, bool)>) -> PyResult<Self> {
        let mut out = Vec::with_capacity(members.len());
        let mut names = Vec::with_capacity(members.len());
        for (name, dtype, length, default, read_only) in members {
            let d = Dtype::from_name(&dtype)
                .map_err(|_| PyTypeError::new_err(format!("unknown dtype {dtype:?}")))?;
            let ty = if length == 0 {
                MemberType::Scalar(d)
            } else {
                MemberType::Array(d, length)
            };
            let mut member = Member::new(name.clone(), ty.clone()).py()?.read_only(read_only);
            let default = default.bind(py);
            if !default.is_none() {
                let v = if length > 0
                    && (default.is_instance_of::<pyo3::types::PyList>()
                        || default.is_instance_of::<pyo3::types::PyTuple>()
                        || default.hasattr("__array__")?)
                {
                    member_value(default, &ty)?
                } else {
                    member_value(default, &MemberType::Scalar(d))?
                };
                member = member.with_default(v).py()?;
            }
            names.push(PyString::intern(py, &name).unbind());
            out.push(member);
        }
        Ok(PySchema {
            schema: Arc::new(Schema::new(out).py()?),
            names,
        })
    }

    /// Member names in declaration order.
    fn names(&self, py: Python<'_>) -> Vec<Py<PyString>> {
        self.names.iter().map(|n| n.clone_ref(py)).collect()
    }

    fn __len__(&self) -> usize {
        self.schema.len()
    }

    fn __repr__(&self) -> String {
        let parts: Vec<String> = self
            .schema
            .members()
            .iter()
            .map(|m| format!("{}: {}", m.name(), m.ty()))
            .collect();
        format!("Schema({})", parts.join(", "))
    }
}
