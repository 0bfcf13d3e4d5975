//! Store files: save a store atomically, load it back into memory or map it (see
//! `docs/design/file-format.md` for the layout and what is checked when).
//!
//! ```
//! use std::sync::Arc;
//! use compactstore::{file, Dtype, Member, MemberType, Schema, StaticStore, Store, Value};
//!
//! let schema = Arc::new(Schema::new(vec![Member::new("x", MemberType::Scalar(Dtype::I64))?])?);
//! let mut s = StaticStore::try_new(schema, 4)?;
//! let i = s.add(&[(0, Value::Int(7))])?;
//! let dir = std::env::temp_dir().join(format!("cs-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("s.cstore");
//! file::save(file::Source::Static(&s), &path).unwrap();
//! let (loaded, _) = file::load(&path, file::Mode::ReadOnly).unwrap();
//! let file::Loaded::Static(m) = loaded else { panic!() };
//! assert_eq!(m.get(i, 0)?, Value::Int(7));
//! assert!(m.chunks()[0].access() == compactstore::Access::ReadOnly);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), compactstore::Error>(())
//! ```

pub mod format;

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::column::{AlignedBuf, Backing, Column, Dictionary, SharedDictionary};
use crate::dynamic_store::DynamicStore;
use crate::error::{Error, Result};
use crate::keyed_store::{Key, KeyedStore};
use crate::schema::{Member, MemberType, Schema};
use crate::slot::Slots;
use crate::static_store::{Access, StaticStore};
use crate::store::Store;

use format::{bad, checksum, Kind, Piece, Reader, Writer, ALIGN, MAGIC, PREAMBLE, VERSION};

pub use format::Kind as FileKind;

/// How to open a store file (numpy's `mmap_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read the file into memory: an ordinary store.
    Memory,
    /// Map it read-only: nothing may be written.
    ReadOnly,
    /// Map it copy-on-write (private): an ordinary store; the file never changes.
    CopyOnWrite,
    /// Map it shared: in-place writes of fixed-width members reach the file.
    ReadWrite,
}

/// An error of saving or loading: the file system's, or the engine's (a format error, a store that
/// cannot be saved).
#[derive(Debug)]
pub enum FileError {
    /// Opening, reading, writing or renaming failed.
    Io(std::io::Error),
    /// The store cannot be saved, or the file is not a valid store ([`Error::Format`]).
    Store(Error),
}

impl From<Error> for FileError {
    fn from(e: Error) -> FileError {
        FileError::Store(e)
    }
}

impl From<std::io::Error> for FileError {
    fn from(e: std::io::Error) -> FileError {
        FileError::Io(e)
    }
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::Io(e) => write!(f, "{e}"),
            FileError::Store(e) => write!(f, "{e}"),
        }
    }
}

/// A store to save.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// A static store.
    Static(&'a StaticStore),
    /// A dynamic store.
    Dynamic(&'a DynamicStore),
    /// A keyed store with i64 keys.
    KeyedI64(&'a KeyedStore<i64>),
    /// A keyed store with u64 keys.
    KeyedU64(&'a KeyedStore<u64>),
    /// A keyed store with str keys.
    KeyedStr(&'a KeyedStore<String>),
    /// A keyed store with bytes keys.
    KeyedBytes(&'a KeyedStore<Vec<u8>>),
}

/// A loaded store.
#[derive(Debug)]
pub enum Loaded {
    /// A static store.
    Static(StaticStore),
    /// A dynamic store.
    Dynamic(DynamicStore),
    /// A keyed store with i64 keys.
    KeyedI64(KeyedStore<i64>),
    /// A keyed store with u64 keys.
    KeyedU64(KeyedStore<u64>),
    /// A keyed store with str keys.
    KeyedStr(KeyedStore<String>),
    /// A keyed store with bytes keys.
    KeyedBytes(KeyedStore<Vec<u8>>),
}

impl Loaded {
    /// The checks of a store loaded writable: `validate` (a keyed store's key table included).
    fn validate_loaded(&self) -> Result<()> {
        match self {
            Loaded::Static(s) => s.validate(),
            Loaded::Dynamic(d) => d.validate(),
            Loaded::KeyedI64(k) => k.validate_loaded(),
            Loaded::KeyedU64(k) => k.validate_loaded(),
            Loaded::KeyedStr(k) => k.validate_loaded(),
            Loaded::KeyedBytes(k) => k.validate_loaded(),
        }
    }

    /// The loaded store's schema.
    #[must_use]
    pub fn schema(&self) -> &Arc<Schema> {
        match self {
            Loaded::Static(s) => s.schema(),
            Loaded::Dynamic(d) => d.schema(),
            Loaded::KeyedI64(k) => k.schema(),
            Loaded::KeyedU64(k) => k.schema(),
            Loaded::KeyedStr(k) => k.schema(),
            Loaded::KeyedBytes(k) => k.schema(),
        }
    }

    /// The full check of every invariant (`Store::validate`).
    ///
    /// # Errors
    /// [`Error::Invariant`] naming the first broken one.
    pub fn validate(&self) -> Result<()> {
        match self {
            Loaded::Static(s) => s.validate(),
            Loaded::Dynamic(d) => d.validate(),
            Loaded::KeyedI64(k) => k.validate(),
            Loaded::KeyedU64(k) => k.validate(),
            Loaded::KeyedStr(k) => k.validate(),
            Loaded::KeyedBytes(k) => k.validate(),
        }
    }
}

/// What identifies a file's content: its random id (new at every save) and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfo {
    /// Written at random by each save.
    pub file_id: [u8; 16],
    /// The store kind in the file.
    pub kind: Kind,
}

// ---------------------------------------------------------------------------------------------- save

fn save_schema(w: &mut Writer<'_>, schema: &Schema) -> Result<()> {
    w.usize(schema.len());
    for m in schema.members() {
        if matches!(m.ty(), MemberType::Object) && !w.objects {
            return Err(Error::WrongType {
                expected: "members a file can hold".into(),
                got: format!("object member {:?}", m.name()),
            });
        }
        w.bytes(m.name().as_bytes());
        w.bytes(m.ty().to_string().as_bytes());
        w.u8(u8::from(m.is_read_only()));
        w.opt(m.compact_min());
        w.value(m.default_value())?;
    }
    Ok(())
}

fn save_dictionaries(w: &mut Writer<'_>, first: &StaticStore) {
    for c in first.columns() {
        if let Some(ic) = c.as_interned() {
            let d = ic
                .dictionary()
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            d.save(w);
        }
    }
}

fn save_chunk<'a>(w: &mut Writer<'a>, s: &'a StaticStore) -> Result<()> {
    w.usize(s.size());
    w.opt(Store::last_index(s));
    w.u32(s.next_base());
    s.slots().save(w);
    for c in s.columns() {
        c.save(w)?;
    }
    Ok(())
}

fn save_dynamic<'a>(w: &mut Writer<'a>, d: &'a DynamicStore) -> Result<()> {
    save_schema(w, d.schema())?;
    if let Some(first) = d.chunks().first() {
        save_dictionaries(w, first);
    }
    w.u32(d.log2size());
    w.opt(Store::last_index(d));
    w.u32(d.next_base());
    w.usize(d.chunks().len());
    for c in d.chunks() {
        save_chunk(w, c)?;
    }
    Ok(())
}

/// A key type's kind in a file.
trait FileKey: Key {
    const KIND: Kind;
}

impl FileKey for i64 {
    const KIND: Kind = Kind::KeyedI64;
}
impl FileKey for u64 {
    const KIND: Kind = Kind::KeyedU64;
}
impl FileKey for String {
    const KIND: Kind = Kind::KeyedStr;
}
impl FileKey for Vec<u8> {
    const KIND: Kind = Kind::KeyedBytes;
}

fn save_keyed<'a, K: FileKey>(w: &mut Writer<'a>, ks: &'a KeyedStore<K>) -> Result<()> {
    save_dynamic(w, ks.store())?;
    w.usize(ks.key_compact_min());
    w.buf(Piece::Borrowed(bytemuck::cast_slice(ks.dirty_words())));
    ks.save_index(w)
}

/// The header and buffers of `src`; object members only if `objects` (a pickle image).
fn collect<'a>(src: Source<'a>, objects: bool) -> Result<(Kind, Writer<'a>)> {
    let mut w = Writer::new();
    w.objects = objects;
    let kind = match src {
        Source::Static(s) => {
            save_schema(&mut w, s.schema())?;
            save_dictionaries(&mut w, s);
            save_chunk(&mut w, s)?;
            Kind::Static
        }
        Source::Dynamic(d) => {
            save_dynamic(&mut w, d)?;
            Kind::Dynamic
        }
        Source::KeyedI64(k) => {
            save_keyed(&mut w, k)?;
            i64::KIND
        }
        Source::KeyedU64(k) => {
            save_keyed(&mut w, k)?;
            u64::KIND
        }
        Source::KeyedStr(k) => {
            save_keyed(&mut w, k)?;
            String::KIND
        }
        Source::KeyedBytes(k) => {
            save_keyed(&mut w, k)?;
            <Vec<u8>>::KIND
        }
    };
    Ok((kind, w))
}

/// 16 bytes that differ between saves (time, process, a counter, std's random hasher keys).
fn new_file_id() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut out = [0u8; 16];
    for (i, half) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(t);
        h.write_u64(n);
        h.write_u32(std::process::id());
        h.write_usize(i);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// The preamble and header bytes (padded to the data section) of a writer's store.
fn head(kind: Kind, w: &Writer<'_>, file_id: [u8; 16]) -> (Vec<u8>, usize) {
    let data_start = (PREAMBLE + w.header.len()).div_ceil(ALIGN) * ALIGN;
    let file_len = data_start + w.data_len();
    let mut p = Vec::with_capacity(data_start);
    p.extend_from_slice(&MAGIC);
    p.extend_from_slice(&VERSION.to_le_bytes());
    p.push(kind.code());
    p.extend_from_slice(&[0, 0, 0]);
    p.extend_from_slice(&(w.header.len() as u64).to_le_bytes());
    p.extend_from_slice(&(file_len as u64).to_le_bytes());
    p.extend_from_slice(&file_id);
    p.extend_from_slice(&checksum(&w.header).to_le_bytes());
    let c = checksum(&p);
    p.extend_from_slice(&c.to_le_bytes());
    debug_assert_eq!(p.len(), PREAMBLE);
    p.extend_from_slice(&w.header);
    p.resize(data_start, 0);
    (p, file_len)
}

/// Write the whole file to `out`.
fn write_all(out: &mut impl Write, kind: Kind, w: &Writer<'_>, file_id: [u8; 16]) -> std::io::Result<usize> {
    // Deferred pieces (a key table) are made on threads of their own while the others are written.
    std::thread::scope(|scope| {
        let mut made = Vec::new();
        for (_, piece) in &w.pieces {
            if let Piece::Deferred { make, .. } = piece {
                let f = make.lock().ok().and_then(|mut m| m.take());
                made.push(f.map(|f| scope.spawn(f)));
            }
        }
        let mut made = made.into_iter();
        let (head, file_len) = head(kind, w, file_id);
        out.write_all(&head)?;
        let mut at = 0;
        let zeros = [0u8; ALIGN];
        for (off, piece) in &w.pieces {
            out.write_all(&zeros[..off - at])?;
            match piece {
                Piece::Borrowed(b) => out.write_all(b)?,
                Piece::Owned(b) => out.write_all(b)?,
                Piece::Words(b) => out.write_all(bytemuck::cast_slice(b))?,
                Piece::Deferred { len, .. } => {
                    let words = made
                        .next()
                        .flatten()
                        .ok_or_else(|| std::io::Error::other("a deferred piece was made twice"))?
                        .join()
                        .map_err(|_| std::io::Error::other("building a key table failed"))?
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                    let bytes: &[u8] = bytemuck::cast_slice(&words);
                    if bytes.len() != *len {
                        return Err(std::io::Error::other("a key table of the wrong size"));
                    }
                    out.write_all(bytes)?;
                }
                Piece::Fill {
                    prefix,
                    pattern,
                    count,
                } => {
                    out.write_all(prefix)?;
                    if !pattern.is_empty() {
                        let per = ((1 << 20) / pattern.len()).max(1);
                        let block = pattern.repeat(per.min(*count));
                        let mut left = *count;
                        while left > 0 {
                            let k = left.min(per);
                            out.write_all(&block[..k * pattern.len()])?;
                            left -= k;
                        }
                    }
                }
            }
            at = off + piece.len();
        }
        let end = w.data_len();
        out.write_all(&vec![0u8; end - at])?;
        Ok(file_len)
    })
}

/// Save `src` to `path` atomically: written to a temporary file in the same directory, synced, renamed
/// over `path`, and the directory synced. A file being replaced is never rewritten in place, so
/// processes that mapped it keep reading the old store. A store with object members is refused before
/// anything is written.
///
/// # Errors
/// [`FileError::Store`] ([`Error::WrongType`]) for object members; [`FileError::Io`] from the file
/// system (the temporary file is removed).
pub fn save(src: Source<'_>, path: &Path) -> std::result::Result<FileInfo, FileError> {
    let (kind, w) = collect(src, false)?;
    let file_id = new_file_id();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a path without a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".tmp-{}-{:016x}",
        std::process::id(),
        u64::from_le_bytes(file_id[..8].try_into().unwrap_or_default())
    ));
    let tmp = dir.join(tmp_name);
    let result = (|| -> std::io::Result<()> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
        write_all(&mut out, kind, &w, file_id)?;
        let f = out.into_inner().map_err(std::io::IntoInnerError::into_error)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename is durable once the directory is.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    Ok(FileInfo { file_id, kind })
}

/// The whole file of `src` in memory (for pickling by value).
///
/// # Errors
/// As [`save`], without the file system's.
pub fn to_bytes(src: Source<'_>) -> Result<Vec<u8>> {
    let image = Image::of(src)?;
    let mut out = vec![0u8; image.len()];
    image.write_into(&mut out)?;
    Ok(out)
}

/// A store's file image, collected but not yet written: its length is known, so a caller can make the
/// memory it goes to (a Python bytearray) and have it written there, with no copy in between.
pub struct Image<'a> {
    kind: Kind,
    w: Writer<'a>,
    len: usize,
}

impl<'a> Image<'a> {
    /// The image of `src` (borrowing its buffers).
    ///
    /// # Errors
    /// As [`save`], without the file system's.
    pub fn of(src: Source<'a>) -> Result<Image<'a>> {
        Image::collect(src, false)
    }

    /// The image of `src` with its object members (for pickling): each is written as a column
    /// without buffers (its type in the schema, a tag in the chunk, none of its objects), so the image
    /// loads (with [`from_backing_with_objects`]) to a store whose object members are all None; the
    /// caller carries the objects. Such an image is never a file: [`save`] refuses object members and
    /// [`load`] refuses such a file.
    ///
    /// # Errors
    /// As [`save`], without the file system's and the refusal of object members.
    pub fn with_objects(src: Source<'a>) -> Result<Image<'a>> {
        Image::collect(src, true)
    }

    fn collect(src: Source<'a>, objects: bool) -> Result<Image<'a>> {
        let (kind, w) = collect(src, objects)?;
        let len = (PREAMBLE + w.header.len()).div_ceil(ALIGN) * ALIGN + w.data_len();
        Ok(Image { kind, w, len })
    }

    /// The image's length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the image is empty (never: a store file has a preamble).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Write the image into `out`, which must be exactly [`Image::len`] bytes.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `out` has another length.
    pub fn write_into(self, out: &mut [u8]) -> Result<()> {
        if out.len() != self.len {
            return Err(Error::InvalidArgument(format!(
                "an image of {} bytes into {} bytes",
                self.len,
                out.len()
            )));
        }
        let mut cursor = std::io::Cursor::new(out);
        write_all(&mut cursor, self.kind, &self.w, new_file_id())
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------- load

/// A file mapping: the backing of a mapped store's buffers.
#[derive(Debug)]
struct Mapping {
    map: MapKind,
}

#[derive(Debug)]
enum MapKind {
    Read(memmap2::Mmap),
    Write(memmap2::MmapMut),
}

// SAFETY: the mapping lives (and stays at its address) as long as this value; `Mmap`/`MmapMut` are
// `Send + Sync`; a read-only mapping answers `writable() == false`, so no buffer over it is ever
// written; a writable one (private copy-on-write, or shared "r+") may be written through the pointer.
// The file itself is never rewritten in place by `save` (it renames a new file over it), so the
// pages stay what was checked; a file truncated by another program would fault (SIGBUS), as with
// any mapping (documented).
#[allow(unsafe_code)]
unsafe impl Backing for Mapping {
    fn ptr(&self) -> *const u8 {
        match &self.map {
            MapKind::Read(m) => m.as_ptr(),
            MapKind::Write(m) => m.as_ptr(),
        }
    }
    fn len(&self) -> usize {
        match &self.map {
            MapKind::Read(m) => m.len(),
            MapKind::Write(m) => m.len(),
        }
    }
    fn writable(&self) -> bool {
        matches!(self.map, MapKind::Write(_))
    }
}

/// Check the preamble and the header's checksum; the header's bytes and the file's length.
fn check_head(bytes: &[u8]) -> Result<(Kind, usize, usize, [u8; 16])> {
    if bytes.len() < PREAMBLE {
        return Err(bad(format!(
            "{} bytes is too short for a store file",
            bytes.len()
        )));
    }
    if bytes[..8] != MAGIC {
        return Err(bad("not a store file (wrong magic)"));
    }
    let word = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(a)
    };
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if word(56) != checksum(&bytes[..56]) {
        return Err(bad("the preamble's checksum does not match"));
    }
    if version != VERSION {
        return Err(bad(format!(
            "format version {version}, this build reads {VERSION}"
        )));
    }
    let kind = Kind::from_code(bytes[12])?;
    let header_len = usize::try_from(word(16)).map_err(|_| bad("header too long"))?;
    let file_len = usize::try_from(word(24)).map_err(|_| bad("file too long"))?;
    if header_len > (1 << 30) || PREAMBLE + header_len > bytes.len() {
        return Err(bad("the header passes the end of the file"));
    }
    if file_len != bytes.len() {
        return Err(bad(format!(
            "the file is {} bytes, its header says {file_len} (truncated or extended)",
            bytes.len()
        )));
    }
    if word(48) != checksum(&bytes[PREAMBLE..PREAMBLE + header_len]) {
        return Err(bad("the header's checksum does not match"));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&bytes[32..48]);
    Ok((kind, header_len, file_len, id))
}

fn load_schema(r: &mut Reader<'_>) -> Result<Arc<Schema>> {
    let n = r.count(16)?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.str()?.to_owned();
        let ty: MemberType = r
            .str()?
            .parse()
            .map_err(|e| bad(format!("member {name:?}: {e}")))?;
        if matches!(ty, MemberType::Object) && !r.objects {
            return Err(bad("an object member in a file"));
        }
        let read_only = r.u8()? != 0;
        let compact_min = r.opt()?;
        let default = r.value(0)?;
        let mut m = Member::new(name, ty)
            .map_err(|e| bad(e.to_string()))?
            .read_only(read_only)
            .with_default(default)
            .map_err(|e| bad(e.to_string()))?;
        if let Some(c) = compact_min {
            m = m.with_compact_min(c);
        }
        members.push(m);
    }
    Ok(Arc::new(Schema::new(members).map_err(|e| bad(e.to_string()))?))
}

fn load_dictionaries(r: &mut Reader<'_>, schema: &Schema) -> Result<Vec<Option<SharedDictionary>>> {
    schema
        .members()
        .iter()
        .map(|m| {
            let interned = match m.ty() {
                MemberType::Interned(_) => true,
                MemberType::Optional(t) => matches!(&**t, MemberType::Interned(_)),
                _ => false,
            };
            interned
                .then(|| Dictionary::load(r).map(|d| Arc::new(RwLock::new(d))))
                .transpose()
        })
        .collect()
}

fn load_chunk(
    r: &mut Reader<'_>,
    schema: &Arc<Schema>,
    dicts: &[Option<SharedDictionary>],
    access: Access,
    size_must_be: Option<usize>,
) -> Result<StaticStore> {
    let size = r.usize()?;
    if size > StaticStore::MAX_SIZE || size_must_be.is_some_and(|s| s != size) {
        return Err(bad(format!("a chunk of {size} slots")));
    }
    let last_index = r.opt()?;
    if last_index.is_some_and(|i| i >= size) {
        return Err(bad("last_index beyond the size"));
    }
    let next_base = r.u32()?;
    let slots = Slots::load(r, size)?;
    let mut columns = Vec::with_capacity(schema.len());
    for (m, member) in schema.members().iter().enumerate() {
        columns.push(Column::load(
            member.ty(),
            size,
            member.default_value(),
            dicts.get(m).and_then(Option::as_ref),
            r,
        )?);
    }
    Ok(StaticStore::from_parts(
        Arc::clone(schema),
        columns,
        slots,
        last_index,
        next_base,
        access,
    ))
}

fn load_dynamic(r: &mut Reader<'_>, access: Access) -> Result<DynamicStore> {
    let schema = load_schema(r)?;
    let dicts = load_dictionaries(r, &schema)?;
    let log2size = r.u32()?;
    if log2size > crate::MAX_LOG2SIZE {
        return Err(bad(format!("log2size {log2size}")));
    }
    let last_index = r.opt()?;
    let next_base = r.u32()?;
    let n = r.count(32)?;
    if n == 0 {
        return Err(bad("a dynamic store without chunks"));
    }
    let mut chunks = Vec::with_capacity(n);
    for _ in 0..n {
        chunks.push(load_chunk(r, &schema, &dicts, access, Some(1 << log2size))?);
    }
    if last_index.is_some_and(|i| i >= n << log2size) {
        return Err(bad("last_index beyond the size"));
    }
    Ok(DynamicStore::from_parts(
        schema, log2size, chunks, last_index, next_base,
    ))
}

fn load_keyed<K: FileKey>(r: &mut Reader<'_>, access: Access) -> Result<KeyedStore<K>> {
    let store = load_dynamic(r, access)?;
    let min = r.usize()?;
    let words = store.size().div_ceil(64);
    let dirty = r.buf(words * 8, "modified bits")?;
    let in_place = access != Access::ReadWrite;
    KeyedStore::load_index(store, r, dirty, min, in_place)
}

/// Build the store of a checked file (`bytes` is the whole file, at `base` in `backing`).
#[allow(clippy::too_many_arguments)]
fn build(
    kind: Kind,
    header: &[u8],
    backing: Arc<dyn Backing>,
    base: usize,
    header_len: usize,
    file_len: usize,
    mode: Mode,
    objects: bool,
) -> Result<Loaded> {
    let access = match mode {
        Mode::Memory | Mode::CopyOnWrite => Access::ReadWrite,
        Mode::ReadOnly => Access::ReadOnly,
        Mode::ReadWrite => Access::InPlace,
    };
    let writable = backing.writable();
    let data_start = (PREAMBLE + header_len).div_ceil(ALIGN) * ALIGN;
    if data_start > file_len {
        return Err(bad("the data section starts past the end"));
    }
    let mut r = Reader::new(
        header,
        backing,
        base,
        data_start,
        file_len,
        writable,
        access == Access::ReadWrite,
    );
    r.objects = objects;
    let loaded = match kind {
        Kind::Static => {
            let schema = load_schema(&mut r)?;
            let dicts = load_dictionaries(&mut r, &schema)?;
            Loaded::Static(load_chunk(&mut r, &schema, &dicts, access, None)?)
        }
        Kind::Dynamic => Loaded::Dynamic(load_dynamic(&mut r, access)?),
        Kind::KeyedI64 => Loaded::KeyedI64(load_keyed(&mut r, access)?),
        Kind::KeyedU64 => Loaded::KeyedU64(load_keyed(&mut r, access)?),
        Kind::KeyedStr => Loaded::KeyedStr(load_keyed(&mut r, access)?),
        Kind::KeyedBytes => Loaded::KeyedBytes(load_keyed(&mut r, access)?),
    };
    if !r.finished() {
        return Err(bad("bytes left over in the header"));
    }
    // A store that can be written is checked whole: its writes trust the invariants. A mapped
    // read-only or in-place store is not (that would read every page): its reads check bounds.
    if access == Access::ReadWrite {
        loaded.validate_loaded().map_err(|e| match e {
            Error::Interrupted => Error::Interrupted,
            e => bad(format!("the store fails its checks: {e}")),
        })?;
    }
    Ok(loaded)
}

/// Load a store from the `len` bytes at `base` of `backing` (a whole store file, as [`to_bytes`] makes
/// it): read-only (its buffers used in place, checked as a mapped file's) or writable (in place if the
/// backing is writable, else copied first; checked whole).
///
/// # Errors
/// [`Error::Format`] for bytes that are not a valid store.
pub fn from_backing(
    backing: Arc<dyn Backing>,
    base: usize,
    len: usize,
    read_only: bool,
) -> Result<(Loaded, FileInfo)> {
    from_backing_as(backing, base, len, read_only, false)
}

/// [`from_backing`] for an image that may carry object members ([`Image::with_objects`]): they load
/// as all-None object columns.
///
/// # Errors
/// [`Error::Format`] for bytes that are not a valid store image.
pub fn from_backing_with_objects(
    backing: Arc<dyn Backing>,
    base: usize,
    len: usize,
    read_only: bool,
) -> Result<(Loaded, FileInfo)> {
    from_backing_as(backing, base, len, read_only, true)
}

fn from_backing_as(
    backing: Arc<dyn Backing>,
    base: usize,
    len: usize,
    read_only: bool,
    objects: bool,
) -> Result<(Loaded, FileInfo)> {
    if base.checked_add(len).is_none_or(|e| e > backing.len()) {
        return Err(bad("the bytes are outside their buffer"));
    }
    let (backing, base): (Arc<dyn Backing>, usize) = if !read_only && !backing.writable() {
        let mut copy = AlignedBuf::try_zeroed(len)?;
        let view =
            AlignedBuf::borrowed(Arc::clone(&backing), base, len, false).map_err(|e| bad(e.to_string()))?;
        copy.bytes_mut().copy_from_slice(view.bytes());
        let owner = copy.owner();
        let base = copy.as_ptr() as usize - owner.ptr() as usize;
        (owner, base)
    } else {
        (backing, base)
    };
    let all = AlignedBuf::borrowed(Arc::clone(&backing), base, len, false).map_err(|e| bad(e.to_string()))?;
    let bytes = all.bytes();
    let (kind, header_len, file_len, file_id) = check_head(bytes)?;
    let header = &bytes[PREAMBLE..PREAMBLE + header_len];
    let mode = if read_only { Mode::ReadOnly } else { Mode::Memory };
    let loaded = build(
        kind,
        header,
        Arc::clone(&backing),
        base,
        header_len,
        file_len,
        mode,
        objects,
    )?;
    Ok((loaded, FileInfo { file_id, kind }))
}

/// Load the store in the file at `path`.
///
/// [`Mode::Memory`] reads the file into memory; the others map it ([`Mode::ReadOnly`] read-only,
/// [`Mode::CopyOnWrite`] private, [`Mode::ReadWrite`] shared). Opening a mapped file checks the
/// preamble, the header's checksum and every offset and length in it, and builds the store's columns
/// over the mapped pages: it does not read the buffers (see the format docs for what is checked when).
/// A store read into memory or mapped copy-on-write is checked whole (`validate`).
///
/// # Errors
/// [`FileError::Io`] if the file cannot be opened or read; [`FileError::Store`] with
/// [`Error::Format`] if it is not a valid store file.
pub fn load(path: &Path, mode: Mode) -> std::result::Result<(Loaded, FileInfo), FileError> {
    let mut f = match mode {
        Mode::ReadWrite => std::fs::OpenOptions::new().read(true).write(true).open(path)?,
        _ => File::open(path)?,
    };
    let len = usize::try_from(f.metadata()?.len()).map_err(|_| Error::Format("file too large".into()))?;
    if len < PREAMBLE {
        return Err(bad(format!("{len} bytes is too short for a store file")).into());
    }
    let (backing, base): (Arc<dyn Backing>, usize) = match mode {
        Mode::Memory => {
            let mut buf = AlignedBuf::try_zeroed_dense(len)?;
            f.read_exact(buf.bytes_mut())?;
            let owner = buf.owner();
            let base = buf.as_ptr() as usize - owner.ptr() as usize;
            (owner, base)
        }
        // SAFETY (of the three `map` calls): a mapping is undefined behaviour if the file is changed
        // under it by another process; `save` never rewrites a file in place (it renames a new one
        // over it), which is the documented contract for the files this maps.
        #[allow(unsafe_code)]
        Mode::ReadOnly => (
            Arc::new(Mapping {
                map: MapKind::Read(unsafe { memmap2::Mmap::map(&f)? }),
            }),
            0,
        ),
        #[allow(unsafe_code)]
        Mode::CopyOnWrite => (
            Arc::new(Mapping {
                map: MapKind::Write(unsafe { memmap2::MmapOptions::new().map_copy(&f)? }),
            }),
            0,
        ),
        #[allow(unsafe_code)]
        Mode::ReadWrite => (
            Arc::new(Mapping {
                map: MapKind::Write(unsafe { memmap2::MmapMut::map_mut(&f)? }),
            }),
            0,
        ),
    };
    if backing.len() < base + len {
        return Err(bad("the file changed while it was opened").into());
    }
    let all = AlignedBuf::borrowed(Arc::clone(&backing), base, len, false).map_err(|e| bad(e.to_string()))?;
    let bytes = all.bytes();
    let (kind, header_len, file_len, file_id) = check_head(bytes)?;
    let header = &bytes[PREAMBLE..PREAMBLE + header_len];
    let loaded = build(
        kind,
        header,
        Arc::clone(&backing),
        base,
        header_len,
        file_len,
        mode,
        false,
    )?;
    Ok((loaded, FileInfo { file_id, kind }))
}

/// Load a store from a copy of `bytes` (a whole store file): read-only (its buffers used as they are,
/// checked as a mapped file's) or writable (checked whole, as a file read into memory).
///
/// # Errors
/// [`Error::Format`] for bytes that are not a valid store.
pub fn from_bytes(bytes: &[u8], read_only: bool) -> Result<Loaded> {
    let mut copy = AlignedBuf::try_zeroed(bytes.len())?;
    copy.bytes_mut().copy_from_slice(bytes);
    let owner = copy.owner();
    let base = copy.as_ptr() as usize - owner.ptr() as usize;
    from_backing(owner, base, bytes.len(), read_only).map(|(l, _)| l)
}

/// Read every entry of `loaded` (every member of every occupied slot, every key), as a user iterating
/// the store would: for tests and the fuzzer, which check that no file makes a read crash.
///
/// # Errors
/// The first read error (a read of a corrupt mapped store may fail; it never panics).
pub fn read_all(loaded: &Loaded) -> Result<usize> {
    fn store<S: Store>(s: &S) -> Result<usize> {
        let mut n = 0;
        for i in s.indices() {
            for m in 0..s.schema().len() {
                let _ = s.get(i, m);
                n += 1;
            }
        }
        Ok(n)
    }
    match loaded {
        Loaded::Static(s) => store(s),
        Loaded::Dynamic(d) => store(d),
        Loaded::KeyedI64(k) => Ok(store(k.store())? + k.keys().count() + k.modified().len()),
        Loaded::KeyedU64(k) => Ok(store(k.store())? + k.keys().count() + k.modified().len()),
        Loaded::KeyedStr(k) => Ok(store(k.store())? + k.keys().count() + k.modified().len()),
        Loaded::KeyedBytes(k) => Ok(store(k.store())? + k.keys().count() + k.modified().len()),
    }
}
