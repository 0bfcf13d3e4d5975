//! The byte layout of a store file: the preamble, the header's little-endian fields, and the buffer
//! section (see `docs/design/file-format.md`). [`Writer`] collects a store's header fields and buffers;
//! [`Reader`] parses them back, checking every offset and length against the file.

use std::sync::Arc;

use crate::column::{AlignedBuf, Backing};
use crate::error::{Error, Result};
use crate::value::Value;

/// The first 8 bytes of every store file.
pub const MAGIC: [u8; 8] = *b"\x93CSTORE\n";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Bytes of the fixed preamble before the header.
pub const PREAMBLE: usize = 64;
/// Every buffer starts at a multiple of this many bytes from the start of the file.
pub const ALIGN: usize = 64;

/// The 64-bit checksum of the preamble and the header: FNV-1a over the bytes, then a final mix.
#[must_use]
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The hash of a key in a file's key table: FNV-1a (64-bit) over the key's bytes (an integer key's 8
/// little-endian bytes), then the splitmix64 finalizer. Fixed by the format: a file's table is probed
/// with it as it was built.
#[must_use]
pub fn key_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The empty bucket of a file's key table.
pub const EMPTY_BUCKET: u32 = u32::MAX;

/// What a store file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A static store.
    Static,
    /// A dynamic store.
    Dynamic,
    /// A keyed store with i64 keys.
    KeyedI64,
    /// A keyed store with u64 keys.
    KeyedU64,
    /// A keyed store with str keys.
    KeyedStr,
    /// A keyed store with bytes keys.
    KeyedBytes,
}

impl Kind {
    pub(crate) fn code(self) -> u8 {
        match self {
            Kind::Static => 0,
            Kind::Dynamic => 1,
            Kind::KeyedI64 => 2,
            Kind::KeyedU64 => 3,
            Kind::KeyedStr => 4,
            Kind::KeyedBytes => 5,
        }
    }

    pub(crate) fn from_code(c: u8) -> Result<Kind> {
        Ok(match c {
            0 => Kind::Static,
            1 => Kind::Dynamic,
            2 => Kind::KeyedI64,
            3 => Kind::KeyedU64,
            4 => Kind::KeyedStr,
            5 => Kind::KeyedBytes,
            c => return Err(bad(format!("unknown store kind {c}"))),
        })
    }
}

/// A [`Error::Format`].
pub(crate) fn bad(msg: impl Into<String>) -> Error {
    Error::Format(msg.into())
}

/// The bytes of one buffer as the writer gets them: borrowed from the store (written without a copy),
/// made for the file, or a prefix followed by a repeated pattern (a lazily filled column's defaults).
#[doc(hidden)]
pub enum Piece<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
    Words(Vec<u32>),
    /// `len` bytes of `u32` words made by `make` while the pieces before it are written (on a thread
    /// of its own: a keyed store's key table).
    Deferred {
        len: usize,
        make: DeferredWords<'a>,
    },
    Fill {
        prefix: &'a [u8],
        pattern: &'a [u8],
        count: usize,
    },
}

impl Piece<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Piece::Borrowed(b) => b.len(),
            Piece::Owned(b) => b.len(),
            Piece::Words(b) => b.len() * 4,
            Piece::Deferred { len, .. } => *len,
            Piece::Fill {
                prefix,
                pattern,
                count,
            } => prefix.len() + pattern.len() * count,
        }
    }
}

/// The maker of a [`Piece::Deferred`]: taken (once) by the writer.
pub type DeferredWords<'a> = std::sync::Mutex<Option<Box<dyn FnOnce() -> Result<Vec<u32>> + Send + 'a>>>;

/// Collects the header's fields and the buffers of a store being saved.
#[doc(hidden)]
pub struct Writer<'a> {
    pub(crate) header: Vec<u8>,
    pub(crate) pieces: Vec<(usize, Piece<'a>)>,
    next: usize,
    /// Whether object members may be written (as columns without buffers: a pickle image, never a
    /// file).
    pub(crate) objects: bool,
}

impl<'a> Writer<'a> {
    pub(crate) fn new() -> Writer<'a> {
        Writer {
            header: Vec::new(),
            pieces: Vec::new(),
            next: 0,
            objects: false,
        }
    }

    pub(crate) fn u8(&mut self, x: u8) {
        self.header.push(x);
    }

    pub(crate) fn u32(&mut self, x: u32) {
        self.header.extend_from_slice(&x.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, x: u64) {
        self.header.extend_from_slice(&x.to_le_bytes());
    }

    pub(crate) fn usize(&mut self, x: usize) {
        self.u64(x as u64);
    }

    pub(crate) fn opt(&mut self, x: Option<usize>) {
        match x {
            Some(x) => {
                self.u8(1);
                self.usize(x);
            }
            None => {
                self.u8(0);
                self.u64(0);
            }
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.usize(b.len());
        self.header.extend_from_slice(b);
    }

    pub(crate) fn value(&mut self, v: &Value) -> Result<()> {
        match v {
            Value::Null => self.u8(0),
            Value::Bool(b) => {
                self.u8(1);
                self.u8(u8::from(*b));
            }
            Value::Int(i) => {
                self.u8(2);
                self.u64(*i as u64);
            }
            Value::UInt(u) => {
                self.u8(3);
                self.u64(*u);
            }
            Value::Float(f) => {
                self.u8(4);
                self.u64(f.to_bits());
            }
            Value::Str(s) => {
                self.u8(5);
                self.bytes(s.as_bytes());
            }
            Value::Bytes(b) => {
                self.u8(6);
                self.bytes(b);
            }
            Value::Array(items) => {
                self.u8(7);
                self.usize(items.len());
                for x in items {
                    self.value(x)?;
                }
            }
            Value::Object(_) => {
                return Err(Error::WrongType {
                    expected: "a value a file can hold".into(),
                    got: "object".into(),
                })
            }
        }
        Ok(())
    }

    /// Add a buffer; its (offset from the data section, length) goes into the header.
    pub(crate) fn buf(&mut self, piece: Piece<'a>) {
        let len = piece.len();
        let off = self.next;
        self.usize(off);
        self.usize(len);
        self.next = (off + len).div_ceil(ALIGN) * ALIGN;
        self.pieces.push((off, piece));
    }

    /// Bytes of the data section.
    pub(crate) fn data_len(&self) -> usize {
        self.next
    }
}

/// Parses a header, handing out buffers that borrow the file's memory.
pub(crate) struct Reader<'h> {
    hdr: &'h [u8],
    pos: usize,
    backing: Arc<dyn Backing>,
    /// Offset in `backing` of the file's first byte.
    base: usize,
    /// Offset of the data section from the file's first byte.
    data: usize,
    len: usize,
    /// Whether the buffers may be written (a writable backing).
    pub(crate) writable: bool,
    /// Whether the loaded store may write (not mapped read-only or in place): then the parts that
    /// grow (arenas) are copied; otherwise they are read in place.
    pub(crate) writable_store: bool,
    /// Whether object members may be read (a pickle image: all-None object columns).
    pub(crate) objects: bool,
}

impl<'h> Reader<'h> {
    pub(crate) fn new(
        hdr: &'h [u8],
        backing: Arc<dyn Backing>,
        base: usize,
        data: usize,
        len: usize,
        writable: bool,
        writable_store: bool,
    ) -> Reader<'h> {
        Reader {
            hdr,
            pos: 0,
            backing,
            base,
            data,
            len,
            writable,
            writable_store,
            objects: false,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'h [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| bad("header field overflows"))?;
        let b = self
            .hdr
            .get(self.pos..end)
            .ok_or_else(|| bad("the header ends early"))?;
        self.pos = end;
        Ok(b)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn usize(&mut self) -> Result<usize> {
        usize::try_from(self.u64()?).map_err(|_| bad("a size beyond this machine's"))
    }

    /// A count of items of at least `each` bytes that must fit what is left of the header (so that a
    /// corrupt count never makes a loop run long or allocate much).
    pub(crate) fn count(&mut self, each: usize) -> Result<usize> {
        let n = self.usize()?;
        if n.saturating_mul(each.max(1)) > self.hdr.len() - self.pos {
            return Err(bad(format!("a count of {n} beyond the header")));
        }
        Ok(n)
    }

    pub(crate) fn opt(&mut self) -> Result<Option<usize>> {
        let tag = self.u8()?;
        let x = self.usize()?;
        match tag {
            0 => Ok(None),
            1 => Ok(Some(x)),
            t => Err(bad(format!("an option tag {t}"))),
        }
    }

    pub(crate) fn bytes(&mut self) -> Result<&'h [u8]> {
        let n = self.usize()?;
        self.take(n)
    }

    pub(crate) fn str(&mut self) -> Result<&'h str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| bad("a name that is not UTF-8"))
    }

    pub(crate) fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > 4 {
            return Err(bad("a default nested too deep"));
        }
        Ok(match self.u8()? {
            0 => Value::Null,
            1 => Value::Bool(self.u8()? != 0),
            2 => Value::Int(self.u64()? as i64),
            3 => Value::UInt(self.u64()?),
            4 => Value::Float(f64::from_bits(self.u64()?)),
            5 => Value::Str(
                String::from_utf8(self.bytes()?.to_vec())
                    .map_err(|_| bad("a str default that is not UTF-8"))?,
            ),
            6 => Value::Bytes(self.bytes()?.to_vec()),
            7 => {
                let n = self.count(1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            t => return Err(bad(format!("a value tag {t}"))),
        })
    }

    /// The next buffer, which must be `len` bytes: a view of the file's bytes (writable if the file is).
    pub(crate) fn buf(&mut self, len: usize, what: &str) -> Result<AlignedBuf> {
        let b = self.any_buf(what)?;
        if b.len() != len {
            return Err(bad(format!("{what}: {} bytes, expected {len}", b.len())));
        }
        Ok(b)
    }

    /// The next buffer, of any length.
    pub(crate) fn any_buf(&mut self, what: &str) -> Result<AlignedBuf> {
        let off = self.usize()?;
        let len = self.usize()?;
        let start = self
            .data
            .checked_add(off)
            .filter(|s| s % ALIGN == 0)
            .ok_or_else(|| bad(format!("{what}: a misaligned offset {off}")))?;
        if start.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(bad(format!(
                "{what}: {len} bytes at {start} pass the end of the file ({} bytes)",
                self.len
            )));
        }
        AlignedBuf::borrowed(Arc::clone(&self.backing), self.base + start, len, self.writable)
            .map_err(|e| bad(format!("{what}: {e}")))
    }

    /// Whether the whole header was read.
    pub(crate) fn finished(&self) -> bool {
        self.pos == self.hdr.len()
    }
}

/// `bytes` as little-endian words of type `T` (a copy), or a format error if the length does not fit.
pub(crate) fn words<T: bytemuck::Pod>(bytes: &[u8], what: &str) -> Result<Vec<T>> {
    let n = std::mem::size_of::<T>();
    if bytes.len() % n != 0 {
        return Err(bad(format!(
            "{what}: {} bytes is not a whole number of words",
            bytes.len()
        )));
    }
    let mut out: Vec<T> = bytemuck::allocation::try_zeroed_vec(bytes.len() / n)
        .map_err(|()| Error::out_of_memory(bytes.len(), "a loaded buffer"))?;
    bytemuck::cast_slice_mut::<T, u8>(&mut out).copy_from_slice(bytes);
    Ok(out)
}
