//! `Schema`: the member definitions of a store type, built by the Python package from annotations.

use std::sync::Arc;

use compactstore::{Dtype, Member, MemberType, Schema};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::convert::member_value;
use crate::error::{in_member, ToPyResult};

/// The members of a store type, in declaration order (built by `compactstore` from annotations).
#[pyclass(frozen, module = "compactstore._native", name = "Schema")]
pub struct PySchema {
    pub schema: Arc<Schema>,
    /// Member names as interned Python strings, by position.
    pub names: Vec<Py<PyString>>,
    /// The name objects the schema was built from where they are not the interned ones (names made at
    /// run time, e.g. `make_store({f"m{j}": ...})`): lookups by their address find the member too, for a
    /// program that reuses them as keys (`dict(zip(names, row))`).
    pub aliases: Vec<(Py<PyString>, usize)>,
}

/// Member names by position, and alias name objects with the position they name.
pub type NameRefs = (Vec<Py<PyString>>, Vec<(Py<PyString>, usize)>);

/// One member as the Python package describes it: `(name, spec, length, default, read_only)`.
type MemberSpec<'py> = (Bound<'py, PyString>, String, usize, Py<PyAny>, bool);

impl PySchema {
    /// The names and aliases, as new references (for a store's [`crate::shared::Shared`]).
    pub fn names_ref(&self, py: Python<'_>) -> NameRefs {
        (
            self.names.iter().map(|n| n.clone_ref(py)).collect(),
            self.aliases.iter().map(|(n, m)| (n.clone_ref(py), *m)).collect(),
        )
    }
}

#[pymethods]
impl PySchema {
    /// Build a schema from `(name, spec, length, default, read_only)` tuples.
    ///
    /// `spec` is a dtype name (`"i64"`, `"bool"`, `"f32"`), `"str"`, `"bytes"`, `"interned[str]"`,
    /// `"interned[bytes]"` or `"optional[<spec>]"`; `length` 0 is a scalar member, `n >= 1` an array of n;
    /// `default` is `None` for the type's zero (for an optional member, `None` is its default). Raises `TypeError` for an unknown dtype or a
    /// default of the wrong type, `OverflowError` for a default out of range, `ValueError` for a duplicate
    /// name or a default array of the wrong length.
    #[new]
    fn new(py: Python<'_>, members: Vec<MemberSpec<'_>>) -> PyResult<Self> {
        let mut out = Vec::with_capacity(members.len());
        let mut names = Vec::with_capacity(members.len());
        let mut aliases = Vec::new();
        for (m, (given, spec, length, default, read_only)) in members.into_iter().enumerate() {
            let name = given.to_str()?.to_owned();
            let ty = parse_spec(&spec, length)?;
            let mut member = Member::new(name.clone(), ty.clone()).py()?.read_only(read_only);
            let default = default.bind(py);
            if !default.is_none() || ty.is_optional() {
                let value = default_value(default, &ty).map_err(|e| in_member(py, e, &name))?;
                member = member
                    .with_default(value)
                    .py()
                    .map_err(|e| in_member(py, e, &name))?;
            }
            let interned = PyString::intern(py, &name);
            if !given.is(&interned) {
                aliases.push((given.unbind(), m));
            }
            names.push(interned.unbind());
            out.push(member);
        }
        Ok(PySchema {
            schema: Arc::new(Schema::new(out).py()?),
            names,
            aliases,
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

/// The member type a spec string names (see `PySchema::new`).
pub fn parse_spec(spec: &str, length: usize) -> PyResult<MemberType> {
    if let Some(inner) = spec.strip_prefix("optional[").and_then(|s| s.strip_suffix(']')) {
        return Ok(MemberType::optional(parse_spec(inner, length)?));
    }
    Ok(match spec {
        "str" => MemberType::Str,
        "object" => MemberType::Object,
        "bytes" => MemberType::Bytes,
        "interned[str]" => MemberType::interned(MemberType::Str),
        "interned[bytes]" => MemberType::interned(MemberType::Bytes),
        _ => {
            let d = Dtype::from_name(spec)
                .map_err(|_| PyTypeError::new_err(format!("unknown member type {spec:?}")))?;
            if length == 0 {
                MemberType::Scalar(d)
            } else {
                MemberType::Array(d, length)
            }
        }
    })
}

/// The spec string and length of a member type (the inverse of [`parse_spec`]).
pub fn spec_of(ty: &MemberType) -> (String, usize) {
    match ty {
        MemberType::Scalar(d) => (d.name().to_owned(), 0),
        MemberType::Array(d, n) => (d.name().to_owned(), *n),
        MemberType::Optional(t) => {
            let (s, n) = spec_of(t);
            (format!("optional[{s}]"), n)
        }
        other => (other.to_string(), 0),
    }
}

/// A default as a `Value` of `ty`: a scalar default of an array member fills every element.
fn default_value(default: &Bound<'_, PyAny>, ty: &MemberType) -> PyResult<compactstore::Value> {
    let inner = match ty {
        MemberType::Optional(t) if !default.is_none() => t.as_ref(),
        t => t,
    };
    if let MemberType::Array(d, _) = inner {
        let is_seq = default.is_instance_of::<pyo3::types::PyList>()
            || default.is_instance_of::<pyo3::types::PyTuple>()
            || default.hasattr("__array__")?;
        if !is_seq {
            return member_value(default, &MemberType::Scalar(*d));
        }
    }
    member_value(default, ty)
}
