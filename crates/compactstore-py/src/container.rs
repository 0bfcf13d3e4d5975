//! The member container (`s[name]`): a live view of one member, indexable 0..N-1.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::Ordering;

use compactstore::{normalize_index, Dtype, Error, MemberType, Scalar, Store, Value};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::{PyBufferError, PyIndexError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PySlice, PyString, PyTuple};

use crate::args::{huge_index, int_index};
use crate::convert::{member_value, numpy_name, scalar_value, to_object};
use crate::error::ToPyResult;
use crate::iter::PyContainerIterator;
use crate::on;
use crate::shared::{Handle, Inner};

/// A live view of one member of a store: `m[i]`, `m[i] = v`, slices, gather/scatter, iteration.
/// `len(m)` is always the store's current size.
#[pyclass(frozen, weakref, module = "compactstore._native", name = "Container")]
pub struct PyContainer {
    h: Handle,
    m: usize,
    ty: MemberType,
    read_only: bool,
    name: Py<PyString>,
    /// The store object this view came from, kept alive (and visible to the garbage collector) while
    /// the view lives, so the store's object members are never cleared under it.
    owner: Py<PyAny>,
}

/// The Python side of the engine's typed [`Scalar`]: the fast paths of `m[i]` and `m[i] = v`, without
/// going through [`Value`].
pub(crate) trait ScalarPy: Sized {
    /// `obj` as a scalar of dtype `d` when it is an exact `int` (for an integer dtype) or `float` (for a
    /// float dtype) that fits as it is; `None` for anything else — bools, subclasses, numpy scalars,
    /// out-of-range ints, a float beyond f32 — which the generic conversion handles (and refuses).
    fn of(obj: &Bound<'_, PyAny>, d: Dtype) -> Option<Self>;

    /// The scalar as a Python `bool`, `int` or `float`.
    fn to_object(self, py: Python<'_>) -> Bound<'_, PyAny>;
}

impl ScalarPy for Scalar {
    fn of(obj: &Bound<'_, PyAny>, d: Dtype) -> Option<Scalar> {
        let is_bool = obj.is_exact_instance_of::<PyBool>();
        if d == Dtype::Bool {
            // bool_ takes bools only (and numpy bools, through the generic path).
            return is_bool.then(|| Scalar::Bool(obj.is(PyBool::new(obj.py(), true))));
        }
        // A bool counts as an int wherever an int is taken.
        if is_bool || obj.is_exact_instance_of::<PyInt>() {
            // One C call for any int that fits an i64 (no exception is raised for one that does not:
            // `overflow` is set instead); only a u64 beyond i64 takes a second.
            let mut overflow = 0;
            // SAFETY: `obj` is an exact int or bool (checked above) and the caller holds the GIL.
            #[allow(unsafe_code)]
            let v = unsafe { pyo3::ffi::PyLong_AsLongLongAndOverflow(obj.as_ptr(), &mut overflow) };
            if overflow != 0 {
                return match d {
                    Dtype::U64 => obj.extract().ok().map(Scalar::U64),
                    // Ints beyond i64 into other members: the generic path converts or refuses them.
                    _ => None,
                };
            }
            return Some(match d {
                Dtype::I8 => Scalar::I8(v.try_into().ok()?),
                Dtype::I16 => Scalar::I16(v.try_into().ok()?),
                Dtype::I32 => Scalar::I32(v.try_into().ok()?),
                Dtype::I64 => Scalar::I64(v),
                Dtype::U8 => Scalar::U8(v.try_into().ok()?),
                Dtype::U16 => Scalar::U16(v.try_into().ok()?),
                Dtype::U32 => Scalar::U32(v.try_into().ok()?),
                Dtype::U64 => Scalar::U64(v.try_into().ok()?),
                // An int into a float member, as `float(i)` rounds it (an i64 never overflows f32); a
                // bigger int takes the generic path.
                #[allow(clippy::cast_precision_loss)]
                Dtype::F64 => Scalar::F64(v as f64),
                #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
                Dtype::F32 => Scalar::F32(v as f64 as f32),
                Dtype::Bool => return None,
            });
        }
        if obj.is_exact_instance_of::<PyFloat>() {
            let x: f64 = obj.extract().ok()?;
            return match d {
                Dtype::F64 => Some(Scalar::F64(x)),
                // As the generic path converts; a finite value that overflows f32 is its error to raise.
                #[allow(clippy::cast_possible_truncation)]
                Dtype::F32 => {
                    let y = x as f32;
                    (x.is_finite() && y.is_finite()).then_some(Scalar::F32(y))
                }
                _ => None,
            };
        }
        None
    }

    #[inline]
    fn to_object(self, py: Python<'_>) -> Bound<'_, PyAny> {
        fn int<'py>(
            py: Python<'py>,
            v: impl IntoPyObject<
                'py,
                Target = PyInt,
                Output = Bound<'py, PyInt>,
                Error = std::convert::Infallible,
            >,
        ) -> Bound<'py, PyAny> {
            match v.into_pyobject(py) {
                Ok(o) => o.into_any(),
                Err(never) => match never {},
            }
        }
        match self {
            Scalar::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
            Scalar::I8(v) => int(py, v),
            Scalar::I16(v) => int(py, v),
            Scalar::I32(v) => int(py, v),
            Scalar::I64(v) => int(py, v),
            Scalar::U8(v) => int(py, v),
            Scalar::U16(v) => int(py, v),
            Scalar::U32(v) => int(py, v),
            Scalar::U64(v) => int(py, v),
            Scalar::F32(v) => PyFloat::new(py, f64::from(v)).into_any(),
            Scalar::F64(v) => PyFloat::new(py, v).into_any(),
        }
    }
}

/// Member `m` of slot `i` of `s` read straight from its column into a Python object when it is a numeric
/// scalar (`None` for other member types and out-of-range slots, which take [`Store::get`] and its
/// errors). Only an `Option` of a pointer is passed around: the hot path of `m[i]`, `e[name]` and
/// `pool[k, name]`.
#[inline]
pub(crate) fn read_scalar<'py, S: Store>(
    py: Python<'py>,
    s: &S,
    i: usize,
    m: usize,
) -> Option<Bound<'py, PyAny>> {
    s.scalar_at(i, m).map(|x| x.to_object(py))
}

/// An index into a container, parsed once.
enum Key {
    One(i64),
    Element(i64, i64),
    Many(Vec<i64>),
    Mask(Vec<bool>),
    Slice(Py<PySlice>),
}

fn parse_key(key: &Bound<'_, PyAny>) -> PyResult<Key> {
    if key.is_exact_instance_of::<PyInt>() {
        if let Ok(i) = key.extract::<i64>() {
            return Ok(Key::One(i));
        }
        return Err(huge_index(key));
    }
    if let Ok(s) = key.cast::<PySlice>() {
        return Ok(Key::Slice(s.clone().unbind()));
    }
    if let Ok(t) = key.cast::<PyTuple>() {
        if t.len() == 2 {
            return Ok(Key::Element(
                int_index(&t.get_item(0)?)?,
                int_index(&t.get_item(1)?)?,
            ));
        }
        return Err(PyTypeError::new_err("a container takes m[i] or m[i, k]"));
    }
    if key.is_instance_of::<PyList>() || key.hasattr("__array__")? && !key.is_instance_of::<PyString>() {
        let arr = key.py().import("numpy")?.call_method1("asarray", (key,))?;
        let kind: String = arr.getattr("dtype")?.getattr("kind")?.extract()?;
        let ndim: usize = arr.getattr("ndim")?.extract()?;
        if ndim == 0 && !key.is_instance_of::<PyList>() {
            // A numpy scalar (np.int64(3)) is an index, not an index array.
            return Ok(Key::One(int_index(key)?));
        }
        if ndim != 1 {
            return Err(PyIndexError::new_err("index arrays must be 1-d"));
        }
        return match kind.as_str() {
            "b" => Ok(Key::Mask(arr.call_method0("tolist")?.extract()?)),
            "i" | "u" => Ok(Key::Many(
                arr.call_method0("tolist")?
                    .cast::<PyList>()?
                    .iter()
                    .map(|x| x.extract::<i64>().map_err(|_| huge_index(&x)))
                    .collect::<PyResult<_>>()?,
            )),
            // An empty list is an empty index array, as in numpy.
            "f" if arr.len()? == 0 => Ok(Key::Many(Vec::new())),
            _ => Err(PyIndexError::new_err("index arrays must hold ints or bools")),
        };
    }
    Ok(Key::One(int_index(key)?))
}

/// The Python buffer-format character of a dtype.
fn format_of(d: Dtype) -> &'static CStr {
    match d {
        Dtype::Bool => c"?",
        Dtype::I8 => c"b",
        Dtype::I16 => c"h",
        Dtype::I32 => c"i",
        Dtype::I64 => c"q",
        Dtype::U8 => c"B",
        Dtype::U16 => c"H",
        Dtype::U32 => c"I",
        Dtype::U64 => c"Q",
        Dtype::F32 => c"f",
        Dtype::F64 => c"d",
    }
}

/// Shape and strides of an exported buffer; owned by the `Py_buffer` through its `internal` pointer.
struct BufMeta {
    shape: [ffi::Py_ssize_t; 2],
    strides: [ffi::Py_ssize_t; 2],
}

impl PyContainer {
    pub fn new(py: Python<'_>, h: Handle, m: usize, owner: Py<PyAny>) -> PyResult<PyContainer> {
        let (ty, read_only) =
            h.read(|v| on!(v, s => s.schema().member(m).map(|x| (x.ty().clone(), x.is_read_only()))))?;
        let name = h
            .data
            .names
            .get(m)
            .map(|n| n.clone_ref(py))
            .ok_or_else(|| PyIndexError::new_err("member"))?;
        Ok(PyContainer {
            h,
            m,
            ty,
            read_only,
            name,
            owner,
        })
    }

    /// Whether `m[i]` with an int `i` runs without touching a reference to anything but its arguments
    /// and result: a numeric scalar member (for `m[i] = v`, also a value [`PyContainer::scalar_of`]
    /// takes). The hand-written slots in `fastpath.rs` run these calls without PyO3's trampoline.
    pub(crate) fn plain_scalar(&self) -> bool {
        matches!(self.ty, MemberType::Scalar(_))
    }

    /// `value` as a scalar of this numeric scalar member when it is an exact int or float that fits as
    /// it is (see `Scalar::of`); `None` otherwise, or for any other member.
    #[inline]
    pub(crate) fn scalar_of(&self, value: &Bound<'_, PyAny>) -> Option<Scalar> {
        match self.ty {
            MemberType::Scalar(d) => Scalar::of(value, d),
            _ => None,
        }
    }

    /// `m[i] = x` for a scalar already converted by [`PyContainer::scalar_of`]: one typed engine write.
    #[inline]
    pub(crate) fn set_scalar_at(&self, py: Python<'_>, i: i64, x: Scalar) -> PyResult<()> {
        self.refuse_read_only(py)?;
        let m = self.m;
        self.h.write(|mut v| {
            let i = normalize_index(i, v.size())?;
            v.set_scalar(i, m, x)
        })
    }

    /// `m[i]` for an int `i` of a numeric scalar member, as a new reference: the typed read of
    /// [`Handle::scalar`] turned into a Python object. `None` where the general path ([`Self::get_one`])
    /// must run and report (an index out of range, a busy store, a released chunk, another member type).
    #[inline]
    pub(crate) fn fast_get(&self, py: Python<'_>, i: i64) -> Option<*mut ffi::PyObject> {
        self.h.scalar(i, self.m).map(|x| x.to_object(py).into_ptr())
    }

    /// `m[i]` for an int `i`: resolve the chunk and offset once, read the scalar straight from its column.
    /// The hot path, shared by `__getitem__` and the hand-written slot in `fastpath.rs`.
    pub(crate) fn get_one<'py>(&self, py: Python<'py>, i: i64) -> PyResult<Bound<'py, PyAny>> {
        let m = self.m;
        let got = self.h.read(|v| {
            on!(v, s => {
                let i = normalize_index(i, s.size())?;
                match read_scalar(py, s, i, m) {
                    Some(obj) => Ok(Ok(obj)),
                    None => s.get(i, m).map(Err),
                }
            })
        })?;
        match got {
            Ok(obj) => Ok(obj),
            Err(v) => to_object(py, v, self.ty.values_dtype()),
        }
    }

    /// The value of slot `i`, or `None` at or past the store's current size (the step of `iter(m)`).
    pub(crate) fn value_at<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Option<Bound<'py, PyAny>>> {
        let m = self.m;
        let got = self.h.read(|v| {
            on!(v, s => {
                if i >= s.size() {
                    return Ok(None);
                }
                match read_scalar(py, s, i, m) {
                    Some(obj) => Ok(Some(Ok(obj))),
                    None => s.get(i, m).map(|v| Some(Err(v))),
                }
            })
        })?;
        match got {
            None => Ok(None),
            Some(Ok(obj)) => Ok(Some(obj)),
            Some(Err(v)) => to_object(py, v, self.ty.values_dtype()).map(Some),
        }
    }

    /// The store's current size N.
    pub(crate) fn size(&self) -> PyResult<usize> {
        self.h.read(|v| Ok(on!(v, s => s.size())))
    }

    /// `m[i] = value` for an int `i` (the other hot path): one typed engine write
    /// ([`Store::set_scalar`]) for an exact int or float that fits a numeric member as it is, else the
    /// engine's generic write. The engine refuses read-only members and free keyed slots itself; the
    /// early refusal here only makes "read-only" win over a value's conversion error.
    pub(crate) fn set_one(&self, py: Python<'_>, i: i64, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let m = self.m;
        if let Some(x) = self.scalar_of(value) {
            return self.set_scalar_at(py, i, x);
        }
        self.refuse_read_only(py)?;
        // Off the fast path: a refused value's error names the member, as `add` and `pool[k] = d` do.
        let val = member_value(value, &self.ty).map_err(|e| self.in_this_member(py, e))?;
        self.h
            .write(|mut v| {
                let i = normalize_index(i, v.size())?;
                v.set(i, m, &val)
            })
            .map_err(|e| self.in_this_member(py, e))
    }

    /// `e` naming this container's member (see [`crate::error::in_member`]).
    #[cold]
    fn in_this_member(&self, py: Python<'_>, e: PyErr) -> PyErr {
        match self.name.bind(py).to_str() {
            Ok(name) => crate::error::in_member(py, e, name),
            Err(_) => e,
        }
    }

    /// The dtype of a numeric member; `WrongType` (Python `TypeError`) for the others.
    fn dtype_(&self) -> Result<Dtype, Error> {
        self.ty.dtype().ok_or_else(|| not_numeric(&self.ty))
    }

    /// `m[i, k]` of a scalar member: `IndexError`, as numpy's "too many indices".
    fn refuse_scalar_element(&self) -> PyResult<()> {
        if matches!(self.ty, MemberType::Scalar(_)) {
            return Err(PyIndexError::new_err(
                "too many indices: m[i, k] is for Array members, and this member is a scalar",
            ));
        }
        Ok(())
    }

    fn refuse_read_only(&self, py: Python<'_>) -> PyResult<()> {
        if self.read_only {
            return Err(PyTypeError::new_err(format!(
                "member {:?} is read-only: it is written only when its entry is created",
                self.name.bind(py).to_str()?
            )));
        }
        Ok(())
    }

    /// Normalised slot indices selected by a non-scalar key.
    fn select(&self, py: Python<'_>, key: Key) -> PyResult<Vec<usize>> {
        let n = self.h.read(|v| Ok(on!(v, s => s.size())))?;
        match key {
            Key::Slice(s) => {
                let ind = s.bind(py).indices(n as isize)?;
                let mut out = Vec::with_capacity(ind.slicelength);
                let mut i = ind.start;
                for _ in 0..ind.slicelength {
                    out.push(i as usize);
                    i += ind.step;
                }
                Ok(out)
            }
            Key::Many(idx) => idx
                .into_iter()
                .map(|i| normalize_index(i, n).map_err(crate::error::to_py))
                .collect(),
            Key::Mask(mask) => {
                if mask.len() != n {
                    return Err(PyIndexError::new_err(format!(
                        "boolean mask of length {} for size {n}",
                        mask.len()
                    )));
                }
                Ok(mask
                    .iter()
                    .enumerate()
                    .filter(|(_, &b)| b)
                    .map(|(i, _)| i)
                    .collect())
            }
            Key::One(_) | Key::Element(..) => Err(PyTypeError::new_err("not a multi-index")),
        }
    }

    /// A numpy array (a copy) of the member at `idx`: shape (len,) or (len, n) for an array member.
    fn gather<'py>(&self, py: Python<'py>, idx: &[usize]) -> PyResult<Bound<'py, PyAny>> {
        macro_rules! g {
            ($t:ty) => {{
                let mut out: Vec<$t> = Vec::new();
                self.h.read(|v| on!(v, s => s.gather::<$t>(self.m, idx, &mut out)))?;
                PyArray1::from_vec(py, out).into_any()
            }};
        }
        let flat = match self.dtype_().py()? {
            Dtype::Bool => g!(u8).call_method1("view", ("bool",))?,
            Dtype::I8 => g!(i8),
            Dtype::I16 => g!(i16),
            Dtype::I32 => g!(i32),
            Dtype::I64 => g!(i64),
            Dtype::U8 => g!(u8),
            Dtype::U16 => g!(u16),
            Dtype::U32 => g!(u32),
            Dtype::U64 => g!(u64),
            Dtype::F32 => g!(f32),
            Dtype::F64 => g!(f64),
        };
        match self.ty {
            MemberType::Array(_, w) => flat.call_method1("reshape", ((idx.len(), w),)),
            _ => Ok(flat),
        }
    }

    /// Write `values` (a sequence of the selection's length, or a scalar/row that broadcasts) to `idx`.
    fn scatter(&self, py: Python<'_>, idx: &[usize], values: &Bound<'_, PyAny>) -> PyResult<()> {
        self.refuse_read_only(py)?;
        // A set has no order: which value would land in which slot is arbitrary (numpy refuses it too).
        if values.is_instance_of::<PySet>() || values.is_instance_of::<PyFrozenSet>() {
            return Err(PyTypeError::new_err(format!(
                "cannot assign a {} to {}[...]: it has no order (use a list or an array)",
                values.get_type().name()?,
                self.name.bind(py).to_str()?
            )));
        }
        let broadcast = match self.ty {
            MemberType::Array(_, w) => {
                let ndim: usize = py.import("numpy")?.call_method1("ndim", (values,))?.extract()?;
                ndim <= 1 && (ndim == 0 || values.len()? == w) && !(idx.len() == w && ndim == 1 && w != 1)
            }
            _ => {
                !(values.is_instance_of::<PyList>()
                    || values.is_instance_of::<PyTuple>()
                    || values.hasattr("__len__")?)
                    || values.is_instance_of::<PyString>()
                    || values.is_instance_of::<pyo3::types::PyBytes>()
            }
        };
        let vals: Vec<Value> = if broadcast {
            let v = match self.ty {
                // A scalar broadcast into an Array member fills every element of every selected row.
                MemberType::Array(_, w)
                    if py
                        .import("numpy")?
                        .call_method1("ndim", (values,))?
                        .extract::<usize>()?
                        == 0 =>
                {
                    Value::Array(vec![scalar_value(values)?; w])
                }
                _ => member_value(values, &self.ty)?,
            };
            self.ty.check(&v).map_err(crate::error::to_py)?;
            // One value for every index: written from this one copy, never cloned per index (a large
            // str/bytes value broadcast to many slots would need their total size twice over).
            vec![v]
        } else if let Some(vals) = array_values(values, &self.ty, idx.len()) {
            vals
        } else {
            let items: Vec<Bound<'_, PyAny>> = if values.hasattr("__array__")? && values.hasattr("tolist")? {
                values
                    .call_method0("tolist")?
                    .cast_into::<PyList>()?
                    .iter()
                    .collect()
            } else {
                values.try_iter()?.collect::<PyResult<_>>()?
            };
            if items.len() != idx.len() {
                return Err(PyValueError::new_err(format!(
                    "cannot assign {} values to a selection of {}",
                    items.len(),
                    idx.len()
                )));
            }
            items
                .iter()
                .map(|x| member_value(x, &self.ty))
                .collect::<PyResult<Vec<_>>>()?
        };
        // The engine checks every value, index and (keyed store) occupancy, and makes room for str/bytes
        // data, before it writes any; one value is written to every index without a copy per index.
        self.h.write(|mut v| v.scatter_values(self.m, idx, &vals))
    }

    fn all_values<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let vals: Vec<Value> = self
            .h
            .read(|v| on!(v, s => (0..s.size()).map(|i| s.get(i, self.m)).collect()))?;
        vals.into_iter()
            .map(|v| to_object(py, v, self.ty.values_dtype()))
            .collect()
    }

    fn numpy_view<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        if !this.ty.is_numeric() {
            // str, bytes, interned and optional members: a copy, as an object array.
            let values = PyList::new(py, this.all_values(py)?)?;
            return py.import("numpy")?.call_method1("array", (values, "object"));
        }
        if this.h.exports_memory()? {
            let mv = pyo3::types::PyMemoryView::from(slf.as_any())?;
            py.import("numpy")?.call_method1("asarray", (mv,))
        } else {
            let n = this.h.read(|v| Ok(on!(v, s => s.size())))?;
            let idx: Vec<usize> = (0..n).collect();
            this.gather(py, &idx)
        }
    }
}

/// The values of a one-dimensional, contiguous numpy array of exactly a scalar member's dtype and of the
/// selection's length `n`, read straight from its memory (`m[a:b] = column`): every element is a valid
/// value of the member as it is, so none goes through a Python object. `None` for anything else (another
/// dtype, shape or length, a non-contiguous array, another member type), which the general conversion
/// converts, checks and reports on.
///
/// Only an exact `ndarray` (a subclass such as a masked array has values its elements do not show), and no
/// `bool_` member: a numpy bool array may hold bytes other than 0 and 1, which are not Rust `bool`s.
fn array_values(values: &Bound<'_, PyAny>, ty: &MemberType, n: usize) -> Option<Vec<Value>> {
    let MemberType::Scalar(d) = *ty else {
        return None;
    };
    let ndarray = values.py().import("numpy").ok()?.getattr("ndarray").ok()?;
    if !values.get_type().is(&ndarray) {
        return None;
    }
    macro_rules! typed {
        ($t:ty, $scalar:expr) => {{
            // The cast checks that it is an ndarray of one dimension and of this dtype exactly.
            let a = values.cast::<PyArray1<$t>>().ok()?.try_readonly().ok()?;
            let s = a.as_slice().ok()?;
            (s.len() == n).then(|| s.iter().map(|&x| $scalar(x).to_value()).collect())
        }};
    }
    match d {
        Dtype::Bool => None,
        Dtype::I8 => typed!(i8, Scalar::I8),
        Dtype::I16 => typed!(i16, Scalar::I16),
        Dtype::I32 => typed!(i32, Scalar::I32),
        Dtype::I64 => typed!(i64, Scalar::I64),
        Dtype::U8 => typed!(u8, Scalar::U8),
        Dtype::U16 => typed!(u16, Scalar::U16),
        Dtype::U32 => typed!(u32, Scalar::U32),
        Dtype::U64 => typed!(u64, Scalar::U64),
        Dtype::F32 => typed!(f32, Scalar::F32),
        Dtype::F64 => typed!(f64, Scalar::F64),
    }
}

#[pymethods]
impl PyContainer {
    /// The store's current size N.
    fn __len__(&self) -> PyResult<usize> {
        self.h.read(|v| Ok(on!(v, s => s.size())))
    }

    /// `m[i]` (`-N <= i < N`), `m[i, k]`, `m[a:b:c]`, `m[int_array]`, `m[bool_mask]`. Slices and index
    /// arrays return numpy copies; a row of an `Array` member is a read-only numpy copy.
    fn __getitem__<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let m = self.m;
        match parse_key(key)? {
            Key::One(i) => self.get_one(py, i),
            Key::Element(i, k) => {
                self.refuse_scalar_element()?;
                let v = self.h.read(|v| {
                    on!(v, s => {
                        let i = normalize_index(i, s.size())?;
                        let k = normalize_index(k, self.ty.width().ok_or_else(|| not_numeric(&self.ty))?)?;
                        s.get_element(i, m, k)
                    })
                })?;
                to_object(py, v, self.ty.values_dtype())
            }
            key => {
                let slice = matches!(key, Key::Slice(_));
                let idx = self.select(py, key)?;
                if self.ty.is_numeric() {
                    self.gather(py, &idx)
                } else if slice {
                    // str, bytes, interned and optional members: a slice is a list of values.
                    let vals: Vec<Value> = self
                        .h
                        .read(|v| on!(v, s => idx.iter().map(|&i| s.get(i, m)).collect()))?;
                    let objs = vals
                        .into_iter()
                        .map(|v| to_object(py, v, self.ty.values_dtype()))
                        .collect::<PyResult<Vec<_>>>()?;
                    Ok(PyList::new(py, objs)?.into_any())
                } else {
                    Err(PyTypeError::new_err(format!(
                        "index arrays and masks select numeric members only; {} is {}",
                        self.name.bind(py).to_str()?,
                        self.ty
                    )))
                }
            }
        }
    }

    /// `m[i] = v`, `m[i, k] = v`, `m[a:b:c] = values`, `m[idx] = values` (a scalar broadcasts).
    /// Bad values raise `TypeError`/`OverflowError`/`ValueError` and change nothing; a read-only member
    /// raises `TypeError`.
    fn __setitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let m = self.m;
        match parse_key(key)? {
            Key::One(i) => self.set_one(py, i, value),
            Key::Element(i, k) => {
                self.refuse_scalar_element()?;
                self.refuse_read_only(py)?;
                let val = scalar_value(value)?;
                self.h.write(|mut v| {
                    let i = normalize_index(i, on!(v.read(), s => s.size()))?;
                    let k = normalize_index(k, self.ty.width().ok_or_else(|| not_numeric(&self.ty))?)?;
                    v.set_element(i, m, k, &val)
                })
            }
            key => {
                if !self.ty.is_numeric() && !matches!(key, Key::Slice(_)) {
                    return Err(PyTypeError::new_err(format!(
                        "index arrays and masks select numeric members only; {} is {}",
                        self.name.bind(py).to_str()?,
                        self.ty
                    )));
                }
                let idx = self.select(py, key)?;
                self.scatter(py, &idx, value)
            }
        }
    }

    /// `del m[i]` is not a thing: a container has a value in every slot. Free the entry with `del s[i]`.
    fn __delitem__(&self, _key: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "a member container cannot delete values; free the entry with del store[i]",
        ))
    }

    /// A lazy iterator over the values of slots 0..N-1 in order (N read at each step, as a list's
    /// iterator reads the list's length).
    fn __iter__(slf: &Bound<'_, Self>) -> PyContainerIterator {
        PyContainerIterator::new(slf.clone().unbind())
    }

    /// `np.asarray(m)`: a zero-copy, writable view for a static store's member; a copy otherwise.
    #[pyo3(signature = (dtype = None, copy = None))]
    fn __array__<'py>(
        slf: &Bound<'py, Self>,
        dtype: Option<&Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if copy == Some(false) && !slf.get().h.exports_memory()? {
            return Err(PyValueError::new_err(
                "a dynamic store's (or chunk's) member cannot be viewed without a copy: use copy=None or True",
            ));
        }
        let mut arr = Self::numpy_view(slf)?;
        if let Some(dt) = dtype {
            if !dt.is_none() {
                arr = arr.call_method1("astype", (dt,))?;
            }
        }
        if copy == Some(true) {
            arr = arr.call_method0("copy")?;
        }
        Ok(arr)
    }

    /// Same as `np.asarray(m)`.
    fn to_numpy<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::numpy_view(slf)
    }

    /// The member's name.
    #[getter]
    fn name(&self, py: Python<'_>) -> Py<PyString> {
        self.name.clone_ref(py)
    }

    /// The member's numpy dtype (numeric members), or its member type (`cs.Str`, `cs.Interned(cs.Str)`,
    /// `cs.Optional(...)`).
    #[getter]
    fn dtype<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.ty.dtype() {
            Some(d) => py.import("numpy")?.call_method1("dtype", (numpy_name(d),)),
            None => {
                let parts = crate::schema::type_parts(py, &self.ty)?;
                py.import("compactstore")?
                    .call_method1("_member_type_from_parts", (parts,))
            }
        }
    }

    /// Whether the member is read-only.
    #[getter]
    fn read_only(&self) -> bool {
        self.read_only
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let (n, head): (usize, Vec<Value>) = self.h.read(|v| {
            on!(v, s => Ok((s.size(), (0..s.size().min(5)).map(|i| s.get(i, self.m)).collect::<Result<_, Error>>()?)))
        })?;
        let mut parts: Vec<String> = head.iter().map(ToString::to_string).collect();
        if n > 5 {
            parts.push("...".into());
        }
        Ok(format!(
            "<Container {:?} {} size={n} [{}]>",
            self.name.bind(py).to_str()?,
            self.ty,
            parts.join(", ")
        ))
    }

    /// Python's garbage collector: the store this view keeps alive.
    fn __traverse__(&self, visit: pyo3::gc::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.owner)
    }

    /// Export the member's memory (static stores only) through the buffer protocol.
    #[allow(unsafe_code)]
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("null view"));
        }
        let this = slf.get();
        let d = this.dtype_().py()?;
        let w = this.ty.width().ok_or_else(|| not_numeric(&this.ty)).py()?;
        let sz = d.size();
        let (buf, n) = {
            let mut g = this.h.data.lock()?;
            let s = match (&mut *g, this.h.chunk) {
                (Inner::Static(s), None) => s,
                // A chunk of a dynamic store is a static store too.
                (Inner::Dynamic(d), Some(k)) => {
                    d.chunk_mut(k)
                        .ok()
                        .filter(|c| c.uid() == this.h.chunk_uid)
                        .ok_or_else(|| PyBufferError::new_err("the chunk was released"))?
                }
                _ => {
                    return Err(PyBufferError::new_err(
                        "only a static store's members export their memory",
                    ))
                }
            };
            (s.export_buffer(this.m).py()?, s.size())
        };
        if flags & ffi::PyBUF_WRITABLE != 0 && !buf.is_writable() {
            return Err(PyBufferError::new_err("read-only member: no writable view"));
        }
        // A read-only member's buffer is exported read-only (`readonly = 1` below): the const pointer is
        // only cast for the C struct's field type.
        let ptr = buf.as_mut_ptr().unwrap_or_else(|| buf.as_ptr().cast_mut());
        let mut meta = Box::new(BufMeta {
            shape: [n as ffi::Py_ssize_t, w as ffi::Py_ssize_t],
            strides: [(w * sz) as ffi::Py_ssize_t, sz as ffi::Py_ssize_t],
        });
        let ndim = if matches!(this.ty, MemberType::Array(..)) {
            2
        } else {
            1
        };
        // SAFETY: `view` is non-null and points to a Py_buffer the caller (CPython) owns for this call.
        // `ptr` is the engine's export of the member (`StaticStore::export_buffer`): a column buffer
        // that is allocated once and never moved or freed while this export lives, and written through
        // it only if the engine said it is writable (`readonly` otherwise). The buffer is owned by the
        // engine store behind `this.h.data`, which the exporter
        // object stored in `view.obj` (a new strong reference to this container, which holds an Arc of
        // it) keeps alive; the only call that reallocates a static store's columns, `reset(size)`, refuses
        // while `exports > 0`, and so do the calls that drop a dynamic store's chunks (`retract`, `reset`:
        // a chunk's columns never move while the chunk exists, even when the list of chunks grows); the
        // count is incremented here and decremented in `__releasebuffer__`.
        // `shape`/`strides` live in `meta`, owned via `internal` and freed in `__releasebuffer__`.
        unsafe {
            (*view).buf = ptr.cast::<c_void>();
            (*view).obj = slf.clone().into_any().into_ptr();
            (*view).len = (n * w * sz) as ffi::Py_ssize_t;
            (*view).readonly = c_int::from(!buf.is_writable());
            (*view).itemsize = sz as ffi::Py_ssize_t;
            (*view).format = if flags & ffi::PyBUF_FORMAT != 0 {
                format_of(d).as_ptr().cast_mut()
            } else {
                std::ptr::null_mut::<c_char>()
            };
            (*view).ndim = ndim;
            (*view).shape = if flags & ffi::PyBUF_ND != 0 {
                meta.shape.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            };
            (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
                meta.strides.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = Box::into_raw(meta).cast::<c_void>();
        }
        this.h.data.exports.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Release an export made by `__getbuffer__`.
    #[allow(unsafe_code)]
    unsafe fn __releasebuffer__(&self, view: *mut ffi::Py_buffer) {
        // SAFETY: CPython calls this once per successful `__getbuffer__` with the same view, whose
        // `internal` is the `BufMeta` box made there (never freed elsewhere).
        unsafe {
            if !view.is_null() && !(*view).internal.is_null() {
                drop(Box::from_raw((*view).internal.cast::<BufMeta>()));
                (*view).internal = std::ptr::null_mut();
            }
        }
        self.h.data.exports.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The error for a numeric-only operation on a str, bytes, interned or optional member.
fn not_numeric(ty: &MemberType) -> Error {
    Error::WrongType {
        expected: "numeric member".into(),
        got: ty.to_string(),
    }
}
