//! Conversions between Python objects and engine `Value`s, by the package's documented conversion rules.

use compactstore::{Dtype, MemberType, Value};
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyFloat, PyInt, PyList, PyMemoryView, PySequence, PyString, PyTuple,
};

use numpy::PyArray1;

use crate::container::ScalarPy;

/// Convert a Python scalar to a `Value` without looking at the member type.
///
/// `bool` (and numpy bools) → `Bool`; `int` (and anything with `__index__`, as numpy ints) → `Int`, or
/// `UInt` above `i64::MAX`; an int beyond `u64` → `OverflowError`; `float` and numpy floats → `Float`;
/// `str`, `bytes`, `None` → `Str`, `Bytes`, `Null`. Anything else → `TypeError`.
pub fn scalar_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if obj.is_exact_instance_of::<PyInt>() {
        return int_value(obj);
    }
    if obj.is_exact_instance_of::<PyFloat>() {
        return Ok(Value::Float(obj.extract::<f64>()?));
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(obj.extract::<bool>()?));
    }
    if obj.is_instance_of::<PyInt>() {
        return int_value(obj);
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Value::Float(obj.extract::<f64>()?));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(copy_str(s.to_str()?)?));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(copy_bytes(b.as_bytes())?));
    }
    let ty = obj.get_type();
    let tyname = ty.name()?.to_string();
    let module = ty.module().map(|m| m.to_string()).unwrap_or_default();
    if module == "numpy" {
        if tyname == "bool" || tyname == "bool_" {
            return Ok(Value::Bool(obj.is_truthy()?));
        }
        if obj.hasattr("__index__")? {
            return int_value(&obj.call_method0("__index__")?);
        }
        if tyname.starts_with("float") {
            return Ok(Value::Float(obj.call_method0("__float__")?.extract::<f64>()?));
        }
    } else if obj.hasattr("__index__")? {
        return int_value(&obj.call_method0("__index__")?);
    }
    Err(PyTypeError::new_err(format!(
        "unsupported value of type {tyname}"
    )))
}

/// `str` of `s`: `MemoryError` if Python cannot allocate it (`PyString::new` would panic).
pub fn py_str<'py>(py: Python<'py>, s: &str) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyString::from_bytes(py, s.as_bytes())?.into_any())
}

/// `bytes` of `b`: `MemoryError` if Python cannot allocate it (`PyBytes::new` would panic).
pub fn py_bytes<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyBytes::new_with(py, b.len(), |buf| {
        buf.copy_from_slice(b);
        Ok(())
    })?
    .into_any())
}

/// A copy of a value's bytes; `MemoryError` (not an abort) if it cannot be allocated.
pub fn copy_bytes(b: &[u8]) -> PyResult<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(b.len()).map_err(|_| no_memory(b.len()))?;
    v.extend_from_slice(b);
    Ok(v)
}

/// A copy of a value's text; `MemoryError` (not an abort) if it cannot be allocated.
pub fn copy_str(s: &str) -> PyResult<String> {
    let mut v = String::new();
    v.try_reserve_exact(s.len()).map_err(|_| no_memory(s.len()))?;
    v.push_str(s);
    Ok(v)
}

fn no_memory(n: usize) -> PyErr {
    pyo3::exceptions::PyMemoryError::new_err(format!(
        "cannot allocate {n} bytes for a copy of a str/bytes value"
    ))
}

fn int_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(i) = obj.extract::<i64>() {
        return Ok(Value::Int(i));
    }
    if let Ok(u) = obj.extract::<u64>() {
        return Ok(Value::UInt(u));
    }
    Err(PyOverflowError::new_err(format!(
        "int {} out of range",
        obj.repr()?
    )))
}

/// Convert a Python object to a `Value` for a member of type `ty`: a sequence or array for an `Array`
/// member (element by element), a scalar otherwise.
pub fn member_value(obj: &Bound<'_, PyAny>, ty: &MemberType) -> PyResult<Value> {
    match ty {
        // The common case first: an exact int or float that fits the dtype as it is.
        MemberType::Scalar(d) => match <compactstore::Scalar as ScalarPy>::of(obj, *d) {
            Some(r) => Ok(r.to_value()),
            None => typed_scalar_value(obj, *d),
        },
        MemberType::Array(d, _) => sequence_items(obj)?
            .iter()
            .map(|x| typed_scalar_value(x, *d))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array),
        MemberType::Str | MemberType::Bytes | MemberType::Interned(_) => {
            if takes_bytes(ty) {
                if let Some(b) = bytes_like(obj)? {
                    return Ok(Value::Bytes(b));
                }
            }
            not_an_overflow(obj, scalar_value(obj), ty)
        }
        MemberType::Optional(t) => {
            if obj.is_none() {
                Ok(Value::Null)
            } else {
                member_value(obj, t)
            }
        }
        // An object member holds a reference to any Python object (None is no object).
        MemberType::Object => Ok(if obj.is_none() {
            Value::Null
        } else {
            Value::Object(compactstore::ObjectRef(std::sync::Arc::new(
                crate::cell::PyObj::new(obj.clone().unbind()),
            )))
        }),
    }
}

/// Whether `ty` holds bytes (`Bytes` or `Interned(Bytes)`).
fn takes_bytes(ty: &MemberType) -> bool {
    match ty {
        MemberType::Bytes => true,
        MemberType::Interned(t) => matches!(**t, MemberType::Bytes),
        _ => false,
    }
}

/// The contents of a `bytearray` or `memoryview` (what `bytes(obj)` gives), or `None` for anything
/// else. A bytes member takes them as `bytes` of the same contents, as `bytes(obj)` would.
fn bytes_like(obj: &Bound<'_, PyAny>) -> PyResult<Option<Vec<u8>>> {
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Some(b.to_vec()));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let b = obj.py().get_type::<PyBytes>().call1((obj,))?;
        return Ok(Some(b.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    Ok(None)
}

/// [`member_value`], checked against the member type (so a write of it cannot fail): what a caller that
/// must change nothing on a refused value converts with. A scalar taken by the typed fast path is known
/// to fit and is not checked again.
pub fn checked_member_value(obj: &Bound<'_, PyAny>, ty: &MemberType) -> PyResult<Value> {
    if let MemberType::Scalar(d) = ty {
        if let Some(r) = <compactstore::Scalar as ScalarPy>::of(obj, *d) {
            return Ok(r.to_value());
        }
    }
    let v = member_value(obj, ty)?;
    ty.check(&v).map_err(crate::error::to_py)?;
    Ok(v)
}

/// [`scalar_value`] for a member of dtype `d`: a float member also takes a Python int beyond `u64` (as
/// `float(i)` does; one beyond `f64` still raises `OverflowError`), since a float member takes ints.
fn typed_scalar_value(obj: &Bound<'_, PyAny>, d: Dtype) -> PyResult<Value> {
    match scalar_value(obj) {
        Err(e)
            if d.is_float()
                && obj.is_instance_of::<PyInt>()
                && e.is_instance_of::<PyOverflowError>(obj.py()) =>
        {
            Ok(Value::Float(obj.extract::<f64>()?))
        }
        v if d == Dtype::Bool => not_an_overflow(obj, v, &MemberType::Scalar(d)),
        v => v,
    }
}

/// An int too large for any integer is the wrong type, not out of range, for a member that takes no ints
/// (bool, str, bytes, interned): `TypeError`, as for any other int.
fn not_an_overflow(obj: &Bound<'_, PyAny>, v: PyResult<Value>, ty: &MemberType) -> PyResult<Value> {
    match v {
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            Err(PyTypeError::new_err(format!("expected {ty}, got int")))
        }
        v => v,
    }
}

/// The items of a list, tuple, 1-d numpy array or other sequence (`range`, `array.array`, ...); `str`,
/// `bytes` and anything else → `TypeError`.
fn sequence_items<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let items: Vec<Bound<'py, PyAny>> = if let Ok(l) = obj.cast::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        t.iter().collect()
    } else if obj.hasattr("__array__")? && obj.hasattr("tolist")? {
        // An array of the wrong shape is a wrong length, as for numpy: `ValueError`.
        if let Ok(ndim) = obj.getattr("ndim").and_then(|n| n.extract::<usize>()) {
            if ndim > 1 {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "expected a 1-d array for an array member, got {ndim} dimensions"
                )));
            }
        }
        let list = obj.call_method0("tolist")?;
        let l = list
            .cast::<PyList>()
            .map_err(|_| PyTypeError::new_err("expected a 1-d array"))?;
        l.iter().collect()
    } else if let (false, Ok(seq)) = (
        obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>(),
        obj.cast::<PySequence>(),
    ) {
        seq.try_iter()?.collect::<PyResult<_>>()?
    } else {
        let tyname = obj.get_type().name()?.to_string();
        return Err(PyTypeError::new_err(format!(
            "expected a sequence for an array member, got {tyname}"
        )));
    };
    Ok(items)
}

/// A `Value` as a Python object. Arrays become read-only numpy arrays of the member's dtype.
pub fn to_object<'py>(py: Python<'py>, v: Value, dtype: Option<Dtype>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::UInt(u) => u.into_pyobject(py)?.into_any(),
        Value::Float(x) => PyFloat::new(py, x).into_any(),
        Value::Str(s) => py_str(py, &s)?,
        Value::Bytes(b) => py_bytes(py, &b)?,
        Value::Null => py.None().into_bound(py),
        Value::Object(o) => match o
            .0
            .downcast_ref::<crate::cell::PyObj>()
            .and_then(crate::cell::PyObj::get)
        {
            Some(obj) => obj.bind(py).clone(),
            None => {
                return Err(PyTypeError::new_err(
                    "an object member holds a value the bindings did not store",
                ))
            }
        },
        Value::Array(items) => {
            let dtype = dtype.ok_or_else(|| PyTypeError::new_err("an array value needs a numeric dtype"))?;
            let arr = array_of(py, &items, dtype)?;
            arr.getattr("flags")?.setattr("writeable", false)?;
            arr
        }
    })
}

/// The Python object an object member's value holds: `None` for [`Value::Null`] (and for any other value,
/// which an object member never holds).
pub fn object_of(py: Python<'_>, v: &Value) -> Py<PyAny> {
    match v {
        Value::Object(o) => match o
            .0
            .downcast_ref::<crate::cell::PyObj>()
            .and_then(crate::cell::PyObj::get)
        {
            Some(obj) => obj.clone_ref(py),
            None => py.None(),
        },
        _ => py.None(),
    }
}

/// A numpy array of `dtype` holding `items` (canonical values of that dtype).
fn array_of<'py>(py: Python<'py>, items: &[Value], dtype: Dtype) -> PyResult<Bound<'py, PyAny>> {
    macro_rules! typed {
        ($t:ty, $pat:pat => $x:expr) => {
            PyArray1::<$t>::from_iter(
                py,
                items.iter().map(|v| match *v {
                    $pat => $x,
                    _ => <$t>::default(),
                }),
            )
            .into_any()
        };
    }
    Ok(match dtype {
        Dtype::Bool => typed!(bool, Value::Bool(b) => b),
        Dtype::I8 => typed!(i8, Value::Int(i) => i as i8),
        Dtype::I16 => typed!(i16, Value::Int(i) => i as i16),
        Dtype::I32 => typed!(i32, Value::Int(i) => i as i32),
        Dtype::I64 => typed!(i64, Value::Int(i) => i),
        Dtype::U8 => typed!(u8, Value::UInt(u) => u as u8),
        Dtype::U16 => typed!(u16, Value::UInt(u) => u as u16),
        Dtype::U32 => typed!(u32, Value::UInt(u) => u as u32),
        Dtype::U64 => typed!(u64, Value::UInt(u) => u),
        Dtype::F32 => typed!(f32, Value::Float(x) => x as f32),
        Dtype::F64 => typed!(f64, Value::Float(x) => x),
    })
}

/// The numpy dtype name of a `Dtype`.
pub fn numpy_name(d: Dtype) -> &'static str {
    match d {
        Dtype::Bool => "bool",
        Dtype::I8 => "int8",
        Dtype::I16 => "int16",
        Dtype::I32 => "int32",
        Dtype::I64 => "int64",
        Dtype::U8 => "uint8",
        Dtype::U16 => "uint16",
        Dtype::U32 => "uint32",
        Dtype::U64 => "uint64",
        Dtype::F32 => "float32",
        Dtype::F64 => "float64",
    }
}
