//! `Schema`: the member definitions of a store type, built by the Python package from annotations.

use std::sync::Arc;

use compactstore::{Member, MemberType, Schema};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple, PyType};

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
    /// The `(name, spec, length, default, read_only)` tuples it was built from: what it pickles as.
    spec: Py<PyList>,
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
        let spec = PyList::empty(py);
        for (name, ty, length, default, read_only) in &members {
            spec.append((name, ty, length, default.clone_ref(py), read_only))?;
        }
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
            spec: spec.unbind(),
        })
    }

    /// Member names in declaration order.
    fn names(&self, py: Python<'_>) -> Vec<Py<PyString>> {
        self.names.iter().map(|n| n.clone_ref(py)).collect()
    }

    fn __len__(&self) -> usize {
        self.schema.len()
    }

    /// Pickle support: `Schema(members)` again, from the tuples it was built from (a store class pickled
    /// by value, as cloudpickle sends a class defined in `__main__` to Ray's workers, carries its schema).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, PyType>, (Py<PyList>,)) {
        (slf.get_type(), (slf.get().spec.clone_ref(slf.py()),))
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

/// The member type a spec string names (see `PySchema::new`): the engine's spelling (`MemberType`'s
/// `FromStr`), with `length >= 1` making the numeric scalar inside an array of that many.
pub fn parse_spec(spec: &str, length: usize) -> PyResult<MemberType> {
    let ty = spec
        .parse::<MemberType>()
        .map_err(|e| PyTypeError::new_err(e.to_string()))?;
    Ok(with_length(ty, length))
}

/// `ty` with its numeric scalar (also inside `Optional`) an array of `length` when `length >= 1`.
fn with_length(ty: MemberType, length: usize) -> MemberType {
    match ty {
        MemberType::Scalar(d) if length > 0 => MemberType::Array(d, length),
        MemberType::Optional(t) => MemberType::optional(with_length(*t, length)),
        other => other,
    }
}

/// A member type as nested tuples for the Python package to turn into its type objects (what `m.dtype`
/// shows for a non-numeric member): `("scalar", dtype_name)`, `("array", dtype_name, length)`, `("str",)`,
/// `("bytes",)`, `("object",)`, `("interned", <inner>)`, `("optional", <inner>)`.
pub fn type_parts<'py>(py: Python<'py>, ty: &MemberType) -> PyResult<Bound<'py, PyTuple>> {
    match ty {
        MemberType::Scalar(d) => PyTuple::new(py, ["scalar", d.name()]),
        MemberType::Array(d, n) => ("array", d.name(), *n).into_pyobject(py),
        MemberType::Str => PyTuple::new(py, ["str"]),
        MemberType::Bytes => PyTuple::new(py, ["bytes"]),
        MemberType::Object => PyTuple::new(py, ["object"]),
        MemberType::Interned(t) => ("interned", type_parts(py, t)?).into_pyobject(py),
        MemberType::Optional(t) => ("optional", type_parts(py, t)?).into_pyobject(py),
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

/// The members of `schema` as `(name, type_parts, default, read_only)` tuples (see [`type_parts`]), for
/// the Python package to make a store type from (a loaded file's).
pub fn schema_info<'py>(py: Python<'py>, schema: &Schema) -> PyResult<Bound<'py, pyo3::types::PyList>> {
    let list = pyo3::types::PyList::empty(py);
    for m in schema.members() {
        let dtype = match m.ty() {
            MemberType::Scalar(d) | MemberType::Array(d, _) => Some(*d),
            MemberType::Optional(t) => match &**t {
                MemberType::Scalar(d) | MemberType::Array(d, _) => Some(*d),
                _ => None,
            },
            _ => None,
        };
        let default = crate::convert::to_object(py, m.default_value().clone(), dtype)?;
        list.append((m.name(), type_parts(py, m.ty())?, default, m.is_read_only()))?;
    }
    Ok(list)
}
