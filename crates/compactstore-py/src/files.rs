//! Files and pickling: `save`, `load` (into memory or mapped), and the bytes a pickle carries. The
//! engine does the work (`compactstore::file`); this converts arguments and maps errors.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use compactstore::column::Backing;
use compactstore::file::{self, FileInfo, Loaded, Mode, Source};
use compactstore::{Access, Store};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple, PyType};

use crate::dynamic_store::PyDynamicStore;
use crate::error::{to_py, ToPyResult};
use crate::keyed::{AnyKeyed, PyKeyedStore};
use crate::schema::schema_info;
use crate::shared::{Handle, Inner, Shared};
use crate::static_store::PyStaticStore;
use crate::store::{schema_of, Made, PyStore};

pyo3::create_exception!(
    compactstore._native,
    FormatError,
    PyValueError,
    "A file or buffer that is not a valid store: wrong magic or version, truncated, or a check failed."
);

/// Where a mapped store's memory comes from: its file, mode and what identifies the file's content.
#[derive(Clone, Debug)]
pub struct FileRef {
    /// The path given to `load`, made absolute.
    pub path: PathBuf,
    /// `"r"` or `"r+"` (`"c"` and in-memory stores pickle by value, but still show their mode).
    pub mode: &'static str,
    /// The random id the save wrote into the header.
    pub file_id: [u8; 16],
    /// Device, inode, size and modification time (ns) when it was opened.
    pub stat: (u64, u64, u64, i128),
}

fn stat_of(path: &std::path::Path) -> std::io::Result<(u64, u64, u64, i128)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((
        m.dev(),
        m.ino(),
        m.size(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    ))
}

fn file_error(e: file::FileError, path: &std::path::Path) -> PyErr {
    match e {
        file::FileError::Io(e) => io_error(&e, path),
        file::FileError::Store(e) => to_py(e),
    }
}

/// An I/O error as Python's own for `path`: `OSError(errno, strerror, filename)`, which Python makes the
/// subclass of the errno (`FileNotFoundError`, `PermissionError`, ...), with `errno` and `filename` set.
fn io_error(e: &std::io::Error, path: &std::path::Path) -> PyErr {
    match e.raw_os_error() {
        Some(code) => {
            let text = e.to_string();
            let strerror = text
                .strip_suffix(&format!(" (os error {code})"))
                .unwrap_or(&text)
                .to_owned();
            pyo3::exceptions::PyOSError::new_err((code, strerror, path.as_os_str().to_owned()))
        }
        None => pyo3::exceptions::PyOSError::new_err(format!("{}: {e}", path.display())),
    }
}

fn mode_of(mode: Option<&str>) -> PyResult<Mode> {
    Ok(match mode {
        None => Mode::Memory,
        Some("r") => Mode::ReadOnly,
        Some("c") => Mode::CopyOnWrite,
        Some("r+") => Mode::ReadWrite,
        Some(m) => {
            return Err(PyValueError::new_err(format!(
                "mmap_mode must be None, 'r', 'r+' or 'c', not {m:?}"
            )))
        }
    })
}

/// Run `f` on the store behind `obj` (any store object) as a save source.
fn with_source<R>(obj: &Bound<'_, PyAny>, f: impl FnOnce(Source<'_>) -> PyResult<R>) -> PyResult<R> {
    let h: &Handle = if let Ok(k) = obj.cast::<PyKeyedStore>() {
        return with_handle(k.get().handle(), f);
    } else if let Ok(s) = obj.cast::<PyStore>() {
        &s.get().h
    } else {
        return Err(PyTypeError::new_err("not a compactstore store"));
    };
    with_handle(h, f)
}

fn with_handle<R>(h: &Handle, f: impl FnOnce(Source<'_>) -> PyResult<R>) -> PyResult<R> {
    let g = h.data.lock()?;
    match (&*g, h.chunk) {
        (Inner::Static(s), _) => f(Source::Static(s)),
        (Inner::Dynamic(d), None) => f(Source::Dynamic(d)),
        (Inner::Dynamic(d), Some(k)) => match d.chunks().get(k).filter(|c| c.uid() == h.chunk_uid) {
            Some(_) => Err(PyTypeError::new_err(
                "a chunk of a dynamic store cannot be saved on its own: save the dynamic store",
            )),
            None => Err(PyValueError::new_err("the chunk was released")),
        },
        (Inner::Keyed(AnyKeyed::I64(k)), _) => f(Source::KeyedI64(k)),
        (Inner::Keyed(AnyKeyed::U64(k)), _) => f(Source::KeyedU64(k)),
        (Inner::Keyed(AnyKeyed::Str(k)), _) => f(Source::KeyedStr(k)),
        (Inner::Keyed(AnyKeyed::Bytes(k)), _) => f(Source::KeyedBytes(k)),
    }
}

/// Save `store` to `path` atomically (see `StaticStore.save`).
#[pyfunction]
pub fn _save(store: &Bound<'_, PyAny>, path: PathBuf) -> PyResult<()> {
    with_source(store, |src| {
        file::save(src, &path).map(drop).map_err(|e| file_error(e, &path))
    })
}

/// The whole store file of `store`, as a bytearray (pickling by value: a writable buffer, so a store
/// unpickled from it in band is an ordinary, writable one). With `objects`, object members are
/// carried as columns without their objects (a pickle image, never a file; the caller pickles the
/// objects); without, they are refused as by `save`.
#[pyfunction]
#[pyo3(signature = (store, objects = false))]
pub fn _to_bytes<'py>(
    store: &Bound<'py, PyAny>,
    objects: bool,
) -> PyResult<Bound<'py, pyo3::types::PyByteArray>> {
    let py = store.py();
    with_source(store, |src| {
        let image = if objects {
            file::Image::with_objects(src)
        } else {
            file::Image::of(src)
        }
        .py()?;
        let mut result = Ok(());
        // The image is written straight into the bytearray's memory: one copy of the store's buffers.
        let out = pyo3::types::PyByteArray::new_with(py, image.len(), |bytes| {
            result = image.write_into(bytes);
            Ok(())
        })?;
        result.py()?;
        Ok(out)
    })
}

/// A loaded store waiting for its Python type (`load` builds the type from `members()` if none was
/// given, then `build`).
#[pyclass(frozen, module = "compactstore._native", name = "_Loaded")]
pub struct PyLoaded {
    loaded: Mutex<Option<Loaded>>,
    file: Option<FileRef>,
    schema: Arc<compactstore::Schema>,
    kind: &'static str,
    key: Option<&'static str>,
}

impl PyLoaded {
    fn new(loaded: Loaded, file: Option<FileRef>) -> PyLoaded {
        let (kind, key) = match &loaded {
            Loaded::Static(_) => ("static", None),
            Loaded::Dynamic(_) => ("dynamic", None),
            Loaded::KeyedI64(_) => ("keyed", Some("i64")),
            Loaded::KeyedU64(_) => ("keyed", Some("u64")),
            Loaded::KeyedStr(_) => ("keyed", Some("str")),
            Loaded::KeyedBytes(_) => ("keyed", Some("bytes")),
        };
        PyLoaded {
            schema: Arc::clone(loaded.schema()),
            loaded: Mutex::new(Some(loaded)),
            file,
            kind,
            key,
        }
    }
}

#[pymethods]
impl PyLoaded {
    /// `"static"`, `"dynamic"` or `"keyed"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// A keyed store's key type name (`"i64"`, `"u64"`, `"str"`, `"bytes"`), else `None`.
    #[getter]
    fn key(&self) -> Option<&'static str> {
        self.key
    }

    /// The members as `(name, type_parts, default, read_only)`, to make a store type from.
    fn members<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        schema_info(py, &self.schema)
    }

    /// The store object: of class `cls` (the store type itself for a static store, the per-type
    /// `DynamicStore` class, or `KeyedStore`) holding entries of `store_type`. `TypeError` if
    /// `store_type`'s members differ from the file's. `ignore_unknown` and `key_name` are a keyed store's
    /// options.
    #[pyo3(signature = (cls, store_type, ignore_unknown = false, key_name = None))]
    fn build<'py>(
        &self,
        cls: &Bound<'py, PyType>,
        store_type: &Bound<'py, PyType>,
        ignore_unknown: bool,
        key_name: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let schema = schema_of(store_type)?;
        let schema = schema.bind(py).get();
        if *schema.schema != *self.schema {
            return Err(PyTypeError::new_err(format!(
                "the file holds a store of other members than {}'s",
                store_type.name()?
            )));
        }
        let loaded = self
            .loaded
            .lock()
            .map_err(|_| PyValueError::new_err("poisoned"))?
            .take()
            .ok_or_else(|| PyValueError::new_err("the loaded store was taken already"))?;
        // The loaded store uses the type's schema object (equal to the file's).
        let inner = match loaded {
            Loaded::Static(s) => Inner::Static(s),
            Loaded::Dynamic(d) => Inner::Dynamic(d),
            Loaded::KeyedI64(k) => Inner::Keyed(AnyKeyed::I64(k)),
            Loaded::KeyedU64(k) => Inner::Keyed(AnyKeyed::U64(k)),
            Loaded::KeyedStr(k) => Inner::Keyed(AnyKeyed::Str(k)),
            Loaded::KeyedBytes(k) => Inner::Keyed(AnyKeyed::Bytes(k)),
        };
        let (names, aliases) = schema.names_ref(py);
        let data = Shared::new(inner, names, aliases);
        if let Some(f) = &self.file {
            let _ = data.file.set(f.clone());
        }
        let h = Handle {
            data,
            chunk: None,
            chunk_uid: 0,
        };
        match self.kind {
            "static" => Made::instance(&py.get_type::<PyStaticStore>(), cls, PyStore { h, parent: None }),
            "dynamic" => Made::instance(
                &py.get_type::<PyDynamicStore>(),
                cls,
                (PyStore { h, parent: None }, store_type.clone().unbind()),
            ),
            _ => PyKeyedStore::made(py, cls, h, store_type.clone().unbind(), ignore_unknown, key_name),
        }
    }
}

/// Load the store file at `path` (`mmap_mode` None, `"r"`, `"c"` or `"r+"`).
#[pyfunction]
#[pyo3(signature = (path, mmap_mode = None))]
pub fn _load(py: Python<'_>, path: PathBuf, mmap_mode: Option<&str>) -> PyResult<PyLoaded> {
    let mode = mode_of(mmap_mode)?;
    let (loaded, info): (Loaded, FileInfo) =
        crate::error::interruptible(py, || file::load(&path, mode).map_err(|e| file_error(e, &path)))?;
    let file = match (mode, mmap_mode) {
        (Mode::Memory, _) | (_, None) => None,
        (_, Some(m)) => {
            let abs = std::path::absolute(&path)?;
            Some(FileRef {
                stat: stat_of(&abs)?,
                path: abs,
                mode: match m {
                    "r" => "r",
                    "c" => "c",
                    _ => "r+",
                },
                file_id: info.file_id,
            })
        }
    };
    Ok(PyLoaded::new(loaded, file))
}

/// A Python buffer (a pickle's out-of-band `PickleBuffer`, or bytes) as the backing of a store.
struct PyBacking {
    buf: pyo3::buffer::PyBuffer<u8>,
}

impl std::fmt::Debug for PyBacking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PyBacking({} bytes)", self.buf.len_bytes())
    }
}

// SAFETY: a `PyBuffer` holds the exporter's buffer (and a reference to the exporter) until it is
// released on drop, so the bytes stay alive and in place; it is C-contiguous (checked in `_from_buffer`);
// it is writable only if the exporter said so (`readonly` false), and then the store is its only
// writer (a pickle's buffers belong to the unpickled object).
#[allow(unsafe_code)]
unsafe impl Backing for PyBacking {
    fn ptr(&self) -> *const u8 {
        self.buf.buf_ptr().cast::<u8>().cast_const()
    }
    fn len(&self) -> usize {
        self.buf.len_bytes()
    }
    fn writable(&self) -> bool {
        !self.buf.readonly()
    }
}

impl std::panic::RefUnwindSafe for PyBacking {}

/// Load a store from `buffer` (the whole file's bytes: a pickle's). Read-only buffers give a
/// read-only store (as `mmap_mode="r"`); writable ones an ordinary store over them; bytes that are
/// not 8-byte aligned are copied first. With `objects`, an image made by `_to_bytes(..., objects=True)`
/// loads with its object members all None.
#[pyfunction]
#[pyo3(signature = (buffer, objects = false))]
pub fn _from_buffer(py: Python<'_>, buffer: &Bound<'_, PyAny>, objects: bool) -> PyResult<PyLoaded> {
    let buf = pyo3::buffer::PyBuffer::<u8>::get(buffer)?;
    if !buf.is_c_contiguous() {
        return Err(PyValueError::new_err("a store's buffer must be contiguous"));
    }
    let read_only = buf.readonly();
    let aligned = (buf.buf_ptr() as usize) % 8 == 0;
    let len = buf.len_bytes();
    let backing: Arc<dyn Backing> = Arc::new(PyBacking { buf });
    let (backing, base) = if aligned {
        (backing, 0)
    } else {
        // Copy into an aligned heap buffer (a bytes object's data is not 8-byte aligned).
        let mut copy = compactstore::column::AlignedBuf::try_zeroed(len).py()?;
        // SAFETY: `backing` is a live contiguous buffer of `len` bytes (see `PyBacking`), read once here.
        #[allow(unsafe_code)]
        let src = unsafe { std::slice::from_raw_parts(backing.ptr(), len) };
        copy.bytes_mut().copy_from_slice(src);
        let owner = copy.owner();
        let base = copy.as_ptr() as usize - owner.ptr() as usize;
        (owner, base)
    };
    let (loaded, _) = crate::error::interruptible(py, || {
        if objects {
            file::from_backing_with_objects(backing, base, len, read_only)
        } else {
            file::from_backing(backing, base, len, read_only)
        }
        .py()
    })?;
    Ok(PyLoaded::new(loaded, None))
}

/// `(filename, mmap_mode, file_id, stat)` of a mapped store, or `None`.
pub fn file_of(h: &Handle) -> Option<FileRef> {
    h.data.file.get().cloned()
}

/// Whether the store behind `h` is read-only or in-place only (mapped `"r"`/`"r+"`, or from
/// read-only buffers).
pub fn access_of(h: &Handle) -> PyResult<Access> {
    let g = h.data.lock()?;
    Ok(match &*g {
        Inner::Static(s) => s.access(),
        Inner::Dynamic(d) => d.access(),
        Inner::Keyed(k) => match k {
            AnyKeyed::I64(k) => k.access(),
            AnyKeyed::U64(k) => k.access(),
            AnyKeyed::Str(k) => k.access(),
            AnyKeyed::Bytes(k) => k.access(),
        },
    })
}

/// The reference a store mapped `"r"`/`"r+"` pickles as: `(path, mode, file_id, stat)`.
#[pyfunction]
pub fn _file_ref<'py>(py: Python<'py>, store: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let h = handle_of(store)?;
    let Some(f) = file_of(h) else { return Ok(None) };
    let stat = (f.stat.0, f.stat.1, f.stat.2, f.stat.3);
    Ok(Some(PyTuple::new(
        py,
        [
            f.path.into_pyobject(py)?.into_any(),
            f.mode.into_pyobject(py)?.into_any(),
            PyBytes::new(py, &f.file_id).into_any(),
            stat.into_pyobject(py)?.into_any(),
        ],
    )?))
}

/// Load the file a pickled mapped store refers to, refusing (`ValueError`) if it was replaced.
#[pyfunction]
pub fn _load_ref(
    py: Python<'_>,
    path: PathBuf,
    mode: &str,
    file_id: &[u8],
    stat: (u64, u64, u64, i128),
) -> PyResult<PyLoaded> {
    let now = stat_of(&path).map_err(|e| io_error(&e, &path))?;
    let loaded = _load(py, path.clone(), Some(mode))?;
    let same = loaded.file.as_ref().is_some_and(|f| f.file_id[..] == *file_id);
    if !same || now != stat {
        return Err(PyValueError::new_err(format!(
            "{} was replaced since the store was pickled",
            path.display()
        )));
    }
    Ok(loaded)
}

fn handle_of<'a>(store: &'a Bound<'_, PyAny>) -> PyResult<&'a Handle> {
    if let Ok(k) = store.cast::<PyKeyedStore>() {
        return Ok(k.get().handle());
    }
    if let Ok(s) = store.cast::<PyStore>() {
        return Ok(&s.get().h);
    }
    Err(PyTypeError::new_err("not a compactstore store"))
}

/// Put a pickled store's objects back into object member `name` of the store (loaded from an image with
/// objects): `(slot index, object)` pairs, written as `copy()` gives a copy its references — read-only
/// members too, and no modified mark on a keyed store.
#[pyfunction]
pub fn _put_objects(store: &Bound<'_, PyAny>, name: &str, objects: Vec<(usize, Py<PyAny>)>) -> PyResult<()> {
    let h = handle_of(store)?;
    let m = h.data.schema.index_of(name).py()?;
    if h.data.schema.member(m).py()?.ty() != &compactstore::MemberType::Object {
        return Err(PyTypeError::new_err(format!(
            "member {name:?} is not a cs.Object member"
        )));
    }
    h.write(move |mut v| {
        for (i, obj) in objects {
            let obj = compactstore::ObjectRef(Arc::new(crate::cell::PyObj::new(obj)));
            match v {
                crate::shared::ViewMut::Keyed(ref mut k) => k.replace_object(i, m, obj)?,
                crate::shared::ViewMut::Static(ref mut s) => {
                    s.write(i, m, &compactstore::Value::Object(obj))?
                }
                crate::shared::ViewMut::Dynamic(ref mut d) => {
                    d.write(i, m, &compactstore::Value::Object(obj))?
                }
            }
        }
        Ok(())
    })
}

/// `(filename, mmap_mode)` of a store: its file and mode if it was mapped, else `(None, None)`.
#[pyfunction]
pub fn _file_info(store: &Bound<'_, PyAny>) -> PyResult<(Option<PathBuf>, Option<&'static str>)> {
    let h = handle_of(store)?;
    Ok(match file_of(h) {
        Some(f) => (Some(f.path), Some(f.mode)),
        None => (None, None),
    })
}

/// Whether the store is read-only (mapped `"r"` or from read-only buffers).
#[pyfunction]
pub fn _read_only(store: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(access_of(handle_of(store)?)? == Access::ReadOnly)
}

/// Register the functions and classes.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("FormatError", m.py().get_type::<FormatError>())?;
    m.add_class::<PyLoaded>()?;
    m.add_function(wrap_pyfunction!(_save, m)?)?;
    m.add_function(wrap_pyfunction!(_to_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(_put_objects, m)?)?;
    m.add_function(wrap_pyfunction!(_load, m)?)?;
    m.add_function(wrap_pyfunction!(_from_buffer, m)?)?;
    m.add_function(wrap_pyfunction!(_file_ref, m)?)?;
    m.add_function(wrap_pyfunction!(_load_ref, m)?)?;
    m.add_function(wrap_pyfunction!(_file_info, m)?)?;
    m.add_function(wrap_pyfunction!(_read_only, m)?)?;
    Ok(())
}
