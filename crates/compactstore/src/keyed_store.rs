//! `KeyedStore`: a hash index key → slot over a dynamic store, with a dirty bit per slot.
//!
//! ```text
//!   table (hashbrown HashTable<u32>)      key column (one chunk per store chunk)    DynamicStore
//!   ┌───┬───┬───┬───┐                     slot → key                                slot → members
//!   │ · │ 7 │ · │ 2 │ ── hash/compare ──▶ ints:      Vec<i64> / Vec<u64> per chunk    (chunks of 2^k)
//!   └───┴───┴───┴───┘    through the      str/bytes: (start u32, len u32) per slot
//!     1 ctrl byte + 4 B   key column                 + one byte arena per chunk
//!     per bucket                          dirty bitmap: 1 bit per slot (`modified()`)
//! ```
//!
//! The table holds only slot numbers; it hashes and compares through the key column, as indexmap and
//! hashbrown's `HashTable` do. A key therefore costs its own width (8 bytes for an integer key; 8 bytes of
//! span plus its bytes for a string key) plus about 5 bytes per table bucket and one dirty bit — never a
//! boxed copy of itself.
//!
//! String and bytes keys live in one byte arena per chunk. Deleting a key leaves its bytes behind as
//! garbage; when a chunk's garbage exceeds both its live bytes and a minimum
//! ([`KeyedStore::with_compaction_threshold`]), the chunk's arena is rewritten without it. A compaction
//! costs O(chunk size + live bytes) and happens only after at least that many bytes were deleted, so its
//! cost is amortised over the deletes: no operation is O(n).

use std::borrow::Borrow;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use hashbrown::hash_table::Entry as TableEntry;
use hashbrown::HashTable;

use crate::column::FixedColumn;
use crate::dynamic_store::DynamicStore;
use crate::error::{Error, Result};
use crate::schema::{Dtype, Schema};
use crate::static_store::StaticStore;
use crate::store::Store;
use crate::value::{Element, Value};

/// The default `log2size` of a keyed store (chunks of 65,536 slots).
pub const DEFAULT_KEYED_LOG2SIZE: u32 = 16;

/// The default minimum garbage (bytes of deleted string/bytes keys in one chunk's arena) before that
/// arena may be compacted. The effective minimum is the larger of this and the chunk size, so that the
/// O(chunk size) scan of a compaction is always paid for by at least as many deleted bytes.
pub const DEFAULT_COMPACT_MIN: usize = 4096;

/// The largest number of entries a keyed store holds: slot numbers are stored as `u32` in the table.
pub const MAX_KEYED_LEN: usize = u32::MAX as usize;

/// What the hash table's memory is, in an [`Error::OutOfMemory`].
const TABLE_WHAT: &str = "a keyed store's hash table";
/// What the dirty bitmap's memory is, in an [`Error::OutOfMemory`].
const DIRTY_WHAT: &str = "a keyed store's modified bits";

/// A type that can key a [`KeyedStore`]: `i64`, `u64`, `String` (looked up by `&str`) and `Vec<u8>`
/// (looked up by `&[u8]`).
///
/// The trait is sealed: the key column layouts are part of the engine. Owned keys (`Self`) are what
/// [`KeyedStore::modified`], [`KeyedStore::find`] and the removing calls return; lookups and inserts
/// take the borrowed form, so inserting a string key never allocates a `String`.
pub trait Key: sealed::Sealed + Clone + Eq + Hash + Debug + Send + Sync + 'static {
    /// The form lookups take: `i64`, `u64`, `str` or `[u8]`.
    type Borrowed: ?Sized + Eq + Hash + Debug + ToOwned<Owned = Self>;

    /// The key column layout (engine-internal).
    #[doc(hidden)]
    type Column: sealed::KeyColumn;

    /// The key type's name as the Python package spells it: `"i64"`, `"u64"`, `"str"`, `"bytes"`.
    const NAME: &'static str;

    /// The stored form of a key (engine-internal).
    #[doc(hidden)]
    fn to_raw(key: &Self::Borrowed) -> &<Self::Column as sealed::KeyColumn>::Raw;

    /// The key a stored form holds (`None` only if the column is corrupt; engine-internal).
    #[doc(hidden)]
    fn from_raw(raw: &<Self::Column as sealed::KeyColumn>::Raw) -> Option<&Self::Borrowed>;
}

impl sealed::Sealed for i64 {}
impl sealed::Sealed for u64 {}
impl sealed::Sealed for String {}
impl sealed::Sealed for Vec<u8> {}

macro_rules! int_key {
    ($t:ty, $name:literal) => {
        impl Key for $t {
            type Borrowed = $t;
            type Column = IntKeys<$t>;
            const NAME: &'static str = $name;

            #[inline]
            fn to_raw(key: &$t) -> &$t {
                key
            }

            #[inline]
            fn from_raw(raw: &$t) -> Option<&$t> {
                Some(raw)
            }
        }
    };
}
int_key!(i64, "i64");
int_key!(u64, "u64");

impl Key for String {
    type Borrowed = str;
    type Column = ByteKeys;
    const NAME: &'static str = "str";

    #[inline]
    fn to_raw(key: &str) -> &[u8] {
        key.as_bytes()
    }

    #[inline]
    fn from_raw(raw: &[u8]) -> Option<&str> {
        // Only `&str` keys are ever stored, so this never fails on an intact column (validate checks it).
        std::str::from_utf8(raw).ok()
    }
}

impl Key for Vec<u8> {
    type Borrowed = [u8];
    type Column = ByteKeys;
    const NAME: &'static str = "bytes";

    #[inline]
    fn to_raw(key: &[u8]) -> &[u8] {
        key
    }

    #[inline]
    fn from_raw(raw: &[u8]) -> Option<&[u8]> {
        Some(raw)
    }
}

mod sealed {
    use std::fmt::Debug;
    use std::hash::Hash;

    use crate::dynamic_store::DynamicStore;
    use crate::error::Result;

    pub trait Sealed {}

    /// The storage of a keyed store's keys, indexed by global slot, one chunk per store chunk.
    pub trait KeyColumn: Clone + Debug + Send + Sync {
        /// What one slot stores: the integer, or the key's bytes.
        type Raw: ?Sized + Eq + Hash + Debug;

        /// An empty column of `2^log2` slots per chunk, with one chunk.
        fn new(log2: u32, compact_min: usize) -> Result<Self>;

        /// The key at `slot` (the zero key / empty bytes for a free slot); `None` beyond the chunks.
        fn raw(&self, slot: usize) -> Option<&Self::Raw>;

        /// Make storing `raw` in chunk `chunk` (the one the store will allocate from, already grown to)
        /// possible without allocating: check it fits, and reserve its room. Changes no key.
        fn prepare(&mut self, raw: &Self::Raw, chunk: usize) -> Result<()>;

        /// Store `raw` at free `slot` (within the chunks). `prepare` accepted `raw` for its chunk.
        fn put(&mut self, slot: usize, raw: &Self::Raw);

        /// Forget the key at `slot` (its entry was removed).
        fn erase(&mut self, slot: usize);

        /// Grow to `chunks` chunks (never shrinks); chunks allocated before a refused one are kept.
        fn grow_to(&mut self, chunks: usize) -> Result<()>;

        /// A copy in new buffers.
        fn try_clone(&self) -> Result<Self>;

        /// Keep at most `chunks` chunks (at least one).
        fn truncate(&mut self, chunks: usize);

        /// Forget every key; keep one chunk.
        fn clear(&mut self);

        /// Bytes held.
        fn nbytes(&self) -> usize;

        /// Bytes held by deleted keys awaiting compaction.
        fn garbage(&self) -> usize;

        /// Check the column against its store: one chunk per store chunk, free slots hold no key,
        /// arena accounting.
        fn validate(&self, store: &DynamicStore) -> Result<()>;
    }
}

use sealed::KeyColumn;

/// Integer keys: one plain `Vec<T>` per chunk, indexed by slot offset; a free slot holds 0.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct IntKeys<T> {
    chunks: Vec<Vec<T>>,
    log2: u32,
}

impl<T> KeyColumn for IntKeys<T>
where
    T: bytemuck::Zeroable + Copy + Eq + Hash + Debug + Default + Send + Sync,
{
    type Raw = T;

    fn new(log2: u32, _compact_min: usize) -> Result<Self> {
        let mut keys = IntKeys {
            chunks: Vec::new(),
            log2,
        };
        keys.grow_to(1)?;
        Ok(keys)
    }

    #[inline]
    fn raw(&self, slot: usize) -> Option<&T> {
        self.chunks
            .get(slot >> self.log2)?
            .get(slot & ((1 << self.log2) - 1))
    }

    fn prepare(&mut self, _raw: &T, _chunk: usize) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn put(&mut self, slot: usize, raw: &T) {
        let mask = (1 << self.log2) - 1;
        if let Some(k) = self
            .chunks
            .get_mut(slot >> self.log2)
            .and_then(|c| c.get_mut(slot & mask))
        {
            *k = *raw;
        }
    }

    #[inline]
    fn erase(&mut self, slot: usize) {
        let mask = (1 << self.log2) - 1;
        if let Some(k) = self
            .chunks
            .get_mut(slot >> self.log2)
            .and_then(|c| c.get_mut(slot & mask))
        {
            *k = T::default();
        }
    }

    fn grow_to(&mut self, chunks: usize) -> Result<()> {
        while self.chunks.len() < chunks {
            crate::alloc::reserve(&mut self.chunks, 1, KEYS_WHAT)?;
            let chunk = bytemuck::allocation::try_zeroed_vec(1 << self.log2)
                .map_err(|()| no_memory::<T>(self.log2))?;
            self.chunks.push(chunk);
        }
        Ok(())
    }

    fn try_clone(&self) -> Result<Self> {
        let mut chunks = Vec::new();
        crate::alloc::reserve_exact(&mut chunks, self.chunks.len(), KEYS_WHAT)?;
        for c in &self.chunks {
            chunks.push(crate::alloc::clone_vec(c, KEYS_WHAT)?);
        }
        Ok(IntKeys {
            chunks,
            log2: self.log2,
        })
    }

    fn truncate(&mut self, chunks: usize) {
        self.chunks.truncate(chunks.max(1));
    }

    fn clear(&mut self) {
        self.chunks.truncate(1);
        for c in &mut self.chunks {
            c.fill(T::default());
        }
    }

    fn nbytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| c.capacity() * std::mem::size_of::<T>())
            .sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<T>>()
    }

    fn garbage(&self) -> usize {
        0
    }

    fn validate(&self, store: &DynamicStore) -> Result<()> {
        check_chunk_count(self.chunks.len(), self.chunks.iter().map(Vec::len), store)?;
        for (c, (keys, chunk)) in self.chunks.iter().zip(store.chunks()).enumerate() {
            if let Some(o) = chunk.slots().free_iter().find(|&o| keys[o] != T::default()) {
                return Err(Error::Invariant(format!(
                    "free slot {} holds stale key {:?}",
                    (c << self.log2) + o,
                    keys[o]
                )));
            }
        }
        Ok(())
    }
}

/// What a key column's memory is, in an [`Error::OutOfMemory`].
const KEYS_WHAT: &str = "a keyed store's keys";

fn no_memory<T>(log2: u32) -> Error {
    Error::out_of_memory((std::mem::size_of::<T>()) << log2, KEYS_WHAT)
}

fn check_chunk_count(n: usize, mut sizes: impl Iterator<Item = usize>, store: &DynamicStore) -> Result<()> {
    if n != store.chunks().len() {
        return Err(Error::Invariant(format!(
            "key column has {n} chunks, store has {}",
            store.chunks().len()
        )));
    }
    if sizes.any(|s| s != store.chunk_size()) {
        return Err(Error::Invariant("a key chunk has the wrong size".into()));
    }
    Ok(())
}

/// Where one slot's key bytes lie in its chunk's arena. A free slot's span is `(0, 0)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Zeroable)]
#[repr(C)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

/// The keys of one chunk: a span per slot and one arena of key bytes.
#[derive(Debug, Clone)]
struct ByteChunk {
    spans: Vec<Span>,
    data: Vec<u8>,
    /// Bytes of `data` no span refers to (left by deleted keys).
    garbage: usize,
    /// A compaction was due but could not allocate its new arena: the garbage bound is not met until the
    /// next compaction succeeds (a delete never fails for want of an optional compaction).
    compaction_deferred: bool,
}

impl ByteChunk {
    fn new(log2: u32) -> Result<ByteChunk> {
        Ok(ByteChunk {
            spans: bytemuck::allocation::try_zeroed_vec(1 << log2).map_err(|()| no_memory::<Span>(log2))?,
            data: Vec::new(),
            garbage: 0,
            compaction_deferred: false,
        })
    }

    fn try_clone(&self) -> Result<ByteChunk> {
        Ok(ByteChunk {
            spans: crate::alloc::clone_vec(&self.spans, KEYS_WHAT)?,
            data: crate::alloc::clone_vec(&self.data, KEYS_WHAT)?,
            garbage: self.garbage,
            compaction_deferred: self.compaction_deferred,
        })
    }

    fn live(&self) -> usize {
        self.data.len() - self.garbage
    }

    /// Rewrite the arena with only the bytes spans refer to, with room for `extra` more bytes. O(chunk
    /// size + live bytes).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the new arena cannot be allocated (nothing changes).
    fn compact(&mut self, extra: usize) -> Result<()> {
        let mut data = Vec::new();
        crate::alloc::reserve_exact(&mut data, self.live().saturating_add(extra), KEYS_WHAT)?;
        for span in &mut self.spans {
            if span.len == 0 {
                *span = Span::default();
                continue;
            }
            let start = data.len();
            // Invariant: every span lies inside the arena (checked by `validate`).
            data.extend_from_slice(self.data.get(span.range()).unwrap_or_default());
            // `start + len <= live <= u32::MAX`: the arena never holds more than u32::MAX bytes.
            span.start = u32::try_from(start).unwrap_or(u32::MAX);
        }
        self.data = data;
        self.garbage = 0;
        self.compaction_deferred = false;
        Ok(())
    }
}

/// String and bytes keys: per chunk, an 8-byte span per slot into one byte arena, compacted when
/// deleted keys' bytes pass a threshold.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct ByteKeys {
    chunks: Vec<ByteChunk>,
    log2: u32,
    /// A chunk is compacted when its garbage exceeds both this and its live bytes.
    compact_min: usize,
    /// An upper bound of every chunk's arena length (lets `check` skip the chunk lookup).
    max_data: usize,
}

const ARENA_MAX: usize = u32::MAX as usize;

impl ByteKeys {
    fn locate(&self, slot: usize) -> (usize, usize) {
        (slot >> self.log2, slot & ((1 << self.log2) - 1))
    }
}

impl KeyColumn for ByteKeys {
    type Raw = [u8];

    fn new(log2: u32, compact_min: usize) -> Result<Self> {
        Ok(ByteKeys {
            chunks: vec![ByteChunk::new(log2)?],
            log2,
            compact_min,
            max_data: 0,
        })
    }

    #[inline]
    fn raw(&self, slot: usize) -> Option<&[u8]> {
        let (c, o) = self.locate(slot);
        let chunk = self.chunks.get(c)?;
        chunk.data.get(chunk.spans.get(o)?.range())
    }

    fn prepare(&mut self, raw: &[u8], chunk: usize) -> Result<()> {
        let Some(ch) = self.chunks.get_mut(chunk) else {
            return Ok(()); // not reached: the store grows the key column first
        };
        if raw.len().saturating_add(ch.live()) > ARENA_MAX {
            return Err(Error::InvalidArgument(format!(
                "a key of {} bytes does not fit the chunk's key arena ({} of {ARENA_MAX} bytes used)",
                raw.len(),
                ch.live()
            )));
        }
        if ch.data.len() + raw.len() > ARENA_MAX {
            // Only a compaction makes room: do it now, with the room, so `put` allocates nothing.
            ch.compact(raw.len())?;
            self.max_data = self.chunks.iter().map(|c| c.data.len()).max().unwrap_or(0);
        } else if ch.data.capacity() - ch.data.len() < raw.len() {
            crate::alloc::reserve(&mut ch.data, raw.len(), KEYS_WHAT)?;
        }
        Ok(())
    }

    fn put(&mut self, slot: usize, raw: &[u8]) {
        let (c, o) = self.locate(slot);
        let Some(chunk) = self.chunks.get_mut(c) else {
            return;
        };
        let Some(span) = chunk.spans.get_mut(o) else {
            return;
        };
        // The slot is free, so its span is empty; count anything else as garbage all the same.
        chunk.garbage += span.len as usize;
        let start = chunk.data.len();
        // `prepare` reserved the room (and made sure the arena stays within ARENA_MAX bytes).
        chunk.data.extend_from_slice(raw);
        // Both fit in u32: the arena never exceeds ARENA_MAX bytes (`prepare`).
        *span = Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            len: u32::try_from(raw.len()).unwrap_or(u32::MAX),
        };
        self.max_data = self.max_data.max(chunk.data.len());
    }

    fn erase(&mut self, slot: usize) {
        let (c, o) = self.locate(slot);
        let min = self.compact_min;
        let Some(chunk) = self.chunks.get_mut(c) else {
            return;
        };
        let Some(span) = chunk.spans.get_mut(o) else {
            return;
        };
        chunk.garbage += span.len as usize;
        *span = Span::default();
        if chunk.garbage > min && chunk.garbage > chunk.live() {
            // Optional: a compaction that cannot allocate waits for the next delete.
            chunk.compaction_deferred = chunk.compact(0).is_err();
            self.max_data = self.chunks.iter().map(|c| c.data.len()).max().unwrap_or(0);
        }
    }

    fn grow_to(&mut self, chunks: usize) -> Result<()> {
        while self.chunks.len() < chunks {
            crate::alloc::reserve(&mut self.chunks, 1, KEYS_WHAT)?;
            self.chunks.push(ByteChunk::new(self.log2)?);
        }
        Ok(())
    }

    fn try_clone(&self) -> Result<Self> {
        let mut chunks = Vec::new();
        crate::alloc::reserve_exact(&mut chunks, self.chunks.len(), KEYS_WHAT)?;
        for c in &self.chunks {
            chunks.push(c.try_clone()?);
        }
        Ok(ByteKeys {
            chunks,
            log2: self.log2,
            compact_min: self.compact_min,
            max_data: self.max_data,
        })
    }

    fn truncate(&mut self, chunks: usize) {
        self.chunks.truncate(chunks.max(1));
        self.max_data = self.chunks.iter().map(|c| c.data.len()).max().unwrap_or(0);
    }

    fn clear(&mut self) {
        self.chunks.truncate(1);
        for c in &mut self.chunks {
            c.spans.fill(Span::default());
            c.data = Vec::new();
            c.garbage = 0;
            c.compaction_deferred = false;
        }
        self.max_data = 0;
    }

    fn nbytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| c.spans.capacity() * std::mem::size_of::<Span>() + c.data.capacity())
            .sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<ByteChunk>()
    }

    fn garbage(&self) -> usize {
        self.chunks.iter().map(|c| c.garbage).sum()
    }

    fn validate(&self, store: &DynamicStore) -> Result<()> {
        check_chunk_count(
            self.chunks.len(),
            self.chunks.iter().map(|c| c.spans.len()),
            store,
        )?;
        for (c, (keys, chunk)) in self.chunks.iter().zip(store.chunks()).enumerate() {
            let base = c << self.log2;
            if let Some(o) = chunk
                .slots()
                .free_iter()
                .find(|&o| keys.spans[o] != Span::default())
            {
                return Err(Error::Invariant(format!(
                    "free slot {} holds a stale key",
                    base + o
                )));
            }
            let mut spans: Vec<Span> = chunk
                .slots()
                .occupied_iter()
                .map(|o| keys.spans[o])
                .filter(|s| s.len > 0)
                .collect();
            spans.sort_unstable_by_key(|s| s.start);
            let mut end = 0;
            let mut live = 0;
            for s in &spans {
                if (s.start as usize) < end || s.range().end > keys.data.len() {
                    return Err(Error::Invariant(format!(
                        "key span {s:?} of chunk {c} overlaps another or leaves the arena"
                    )));
                }
                end = s.range().end;
                live += s.len as usize;
            }
            if live + keys.garbage != keys.data.len() {
                return Err(Error::Invariant(format!(
                    "chunk {c}: {live} live + {} garbage key bytes, arena holds {}",
                    keys.garbage,
                    keys.data.len()
                )));
            }
            if keys.garbage > self.compact_min && keys.garbage > live && !keys.compaction_deferred {
                return Err(Error::Invariant(format!(
                    "chunk {c}: {} garbage key bytes were not compacted ({live} live)",
                    keys.garbage
                )));
            }
            if keys.data.len() > self.max_data {
                return Err(Error::Invariant(format!("chunk {c}: arena beyond max_data")));
            }
        }
        Ok(())
    }
}

/// A dictionary of entries: a hash index from keys to the slots of a [`DynamicStore`].
///
/// Each key owns one slot of the store; its members are read and written by `(slot, member)` like any
/// store's. Keys live in a column of their own and the hash table holds only `u32` slot numbers, so an
/// integer key costs 8 bytes plus about 5 bytes per table bucket (tables are at most 7/8 full) and one
/// dirty bit: ~14-19 bytes per key. Iteration is in slot order, not insertion order.
///
/// `modified()` lists the keys of entries written after their creation (by [`KeyedStore::set`],
/// [`KeyedStore::set_element`], [`KeyedStore::update`] or a replacing [`KeyedStore::insert`]) until
/// [`KeyedStore::clear_modified`].
///
/// Every fallible call checks everything before it changes anything: on an error the store is as before.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use compactstore::{Dtype, KeyedStore, Member, MemberType, Schema, Value};
///
/// let schema = Arc::new(Schema::new(vec![
///     Member::new("ref", MemberType::Scalar(Dtype::I64))?.read_only(true),
///     Member::new("fitness", MemberType::Scalar(Dtype::F32))?,
/// ])?);
/// let mut pool: KeyedStore<i64> = KeyedStore::new(schema, 4)?;
/// let (slot, was_present) = pool.insert(&42, &[(0, Value::Int(42)), (1, Value::Float(0.5))])?;
/// assert!(!was_present);
/// assert_eq!(pool.index_of(&42), Some(slot));
/// pool.set(slot, 1, &Value::Float(0.75))?;             // marks key 42 modified
/// assert!(pool.set(slot, 0, &Value::Int(7)).is_err());  // read-only
/// assert_eq!(pool.modified(), vec![42]);
///
/// // Replacing rewrites the same slot: members not given return to their defaults.
/// assert_eq!(pool.insert(&42, &[(0, Value::Int(43))])?, (slot, true));
/// assert_eq!(pool.get(slot, 1)?, Value::Float(0.0));
///
/// assert_eq!(pool.take(&42), Some(vec![Value::Int(43), Value::Float(0.0)]));
/// assert!(pool.is_empty() && pool.modified().is_empty());
/// pool.validate()?;
/// # Ok::<(), compactstore::Error>(())
/// ```
#[derive(Debug)]
pub struct KeyedStore<K: Key> {
    store: DynamicStore,
    keys: K::Column,
    /// Slot numbers, hashed by the key each one holds.
    table: HashTable<u32>,
    /// One bit per slot of the store: written since creation.
    dirty: Vec<u64>,
    hasher: foldhash::fast::RandomState,
}

impl<K: Key> Clone for KeyedStore<K> {
    /// An independent copy (see [`KeyedStore::try_clone`]).
    ///
    /// # Panics
    /// If the copy cannot be allocated; [`KeyedStore::try_clone`] is the fallible twin.
    #[track_caller]
    fn clone(&self) -> KeyedStore<K> {
        match self.try_clone() {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        }
    }
}

/// The hash of the key at `slot` (0 for a slot beyond the column, which the table never holds).
#[inline]
fn slot_hash<C: KeyColumn>(hasher: &foldhash::fast::RandomState, keys: &C, slot: u32) -> u64 {
    keys.raw(slot as usize).map_or(0, |r| hasher.hash_one(r))
}

impl<K: Key> KeyedStore<K> {
    /// An empty keyed store over a dynamic store of chunks of `2^log2size` slots
    /// ([`DEFAULT_KEYED_LOG2SIZE`] is the usual choice). Allocates one chunk.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `log2size > MAX_LOG2SIZE` or the first chunk cannot be allocated.
    pub fn new(schema: Arc<Schema>, log2size: u32) -> Result<KeyedStore<K>> {
        let min = DEFAULT_COMPACT_MIN.max(1usize.checked_shl(log2size).unwrap_or(usize::MAX));
        KeyedStore::with_compaction_threshold(schema, log2size, min)
    }

    /// As [`KeyedStore::new`], with the minimum garbage (bytes of deleted string/bytes keys in one chunk's
    /// arena) before that arena is compacted. A chunk is compacted when its garbage exceeds both
    /// `compact_min` and its live key bytes. Small values reach compaction with tiny data (tests); a value
    /// below the chunk size makes compaction's O(chunk size) scan more frequent than its deletes pay for.
    /// Integer keys ignore it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `log2size > MAX_LOG2SIZE` or the first chunk cannot be allocated.
    pub fn with_compaction_threshold(
        schema: Arc<Schema>,
        log2size: u32,
        compact_min: usize,
    ) -> Result<KeyedStore<K>> {
        let store = DynamicStore::new(schema, log2size)?;
        // Zeroed (calloc): untouched words stay untouched pages.
        let dirty = bytemuck::allocation::try_zeroed_vec(store.size().div_ceil(64))
            .map_err(|()| Error::out_of_memory(store.size().div_ceil(8), DIRTY_WHAT))?;
        Ok(KeyedStore {
            keys: K::Column::new(log2size, compact_min)?,
            store,
            table: HashTable::new(),
            dirty,
            hasher: foldhash::fast::RandomState::default(),
        })
    }

    /// Build a keyed store from whole columns at memory speed: entry `i` has key `keys[i]`, slot `i`, and
    /// member `m` of each `(m, bytes)` in `columns` taken from `bytes[i*w..(i+1)*w]`, where `w` is the
    /// member's [`crate::MemberType::entry_bytes`] and the bytes are the member's scalars in native byte
    /// order (what numpy's `tobytes()` gives for a native dtype; `bool` bytes must be 0 or 1). Members not
    /// given hold their defaults; a member given twice takes the later column. No entry is marked modified.
    ///
    /// Cost: one pass over the keys (hashing each into a table reserved once) and one `memcpy` per member
    /// per chunk.
    ///
    /// # Errors
    /// - [`Error::DuplicateKey`] for a duplicate key (naming it and both positions: keys must be unique,
    ///   as a dict built from them would silently drop all but the last).
    /// - [`Error::InvalidArgument`] for `log2size > MAX_LOG2SIZE`.
    /// - [`Error::OutOfMemory`] if the store, its keys or its table cannot be allocated.
    /// - [`Error::WrongLength`] if a column does not hold `keys.len() * w` bytes.
    /// - [`Error::IndexOutOfRange`] for a member position beyond the schema.
    /// - [`Error::WrongType`] for a member that is not fixed-width.
    /// - [`Error::ValueOutOfRange`] for a `bool` byte other than 0 or 1.
    /// - [`Error::StoreFull`] for more than [`MAX_KEYED_LEN`] keys.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use compactstore::{Dtype, KeyedStore, Member, MemberType, Schema, Value};
    /// let schema = Arc::new(Schema::new(vec![
    ///     Member::new("x", MemberType::Scalar(Dtype::I32))?,
    ///     Member::new("y", MemberType::Scalar(Dtype::F64))?,
    /// ])?);
    /// let xs: Vec<u8> = [1i32, 2, 3].iter().flat_map(|x| x.to_ne_bytes()).collect();
    /// let pool = KeyedStore::<String>::from_columns(schema, 1, &["a", "b", "c"], &[(0, &xs)])?;
    /// assert_eq!(pool.get(pool.index_of("c").unwrap(), 0)?, Value::Int(3));
    /// assert_eq!(pool.get(pool.index_of("c").unwrap(), 1)?, Value::Float(0.0));
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    pub fn from_columns<Q: Borrow<K::Borrowed>>(
        schema: Arc<Schema>,
        log2size: u32,
        keys: &[Q],
        columns: &[(usize, &[u8])],
    ) -> Result<KeyedStore<K>> {
        KeyedStore::from_columns_and_values(schema, log2size, keys, columns, &[])
    }

    /// [`KeyedStore::from_columns`] plus columns of [`Value`]s, for members that have no byte layout
    /// (str, bytes, interned, optional, object) or whose values are at hand as values: member `m` of each
    /// `(m, vals)` in `values` takes `vals[i]` at slot `i`, converted as a write would be (read-only
    /// members included: the entries are being created). Every value is checked before the store is
    /// built; no entry is marked modified.
    ///
    /// # Errors
    /// As [`KeyedStore::from_columns`]; [`Error::WrongLength`] if a value column's length is not
    /// `keys.len()`, and the conversion errors of a value that does not fit its member.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use compactstore::{Dtype, KeyedStore, Member, MemberType, Schema, Value};
    /// let schema = Arc::new(Schema::new(vec![
    ///     Member::new("x", MemberType::Scalar(Dtype::I32))?,
    ///     Member::new("name", MemberType::Str)?,
    /// ])?);
    /// let xs: Vec<u8> = [1i32, 2].iter().flat_map(|x| x.to_ne_bytes()).collect();
    /// let names = [Value::from("one"), Value::from("two")];
    /// let pool = KeyedStore::<i64>::from_columns_and_values(schema, 1, &[10, 20], &[(0, &xs)], &[(1, &names)])?;
    /// assert_eq!(pool.get(pool.index_of(&20).unwrap(), 1)?, Value::from("two"));
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    pub fn from_columns_and_values<Q: Borrow<K::Borrowed>>(
        schema: Arc<Schema>,
        log2size: u32,
        keys: &[Q],
        columns: &[(usize, &[u8])],
        values: &[(usize, &[Value])],
    ) -> Result<KeyedStore<K>> {
        let n = keys.len();
        for &(m, vals) in values {
            if vals.len() != n {
                return Err(Error::WrongLength {
                    expected: n,
                    got: vals.len(),
                });
            }
            let ty = schema.member(m)?.ty();
            for v in vals {
                crate::interrupt::poll()?;
                ty.check(v)?;
            }
        }
        let mut ks = KeyedStore::<K>::from_bytes(schema, log2size, keys, columns)?;
        // Checked above, so these writes succeed (a chunk's data buffer past u32::MAX bytes aside).
        for &(m, vals) in values {
            for (i, v) in vals.iter().enumerate() {
                crate::interrupt::poll()?;
                ks.store.write(i, m, v)?;
            }
        }
        Ok(ks)
    }

    fn from_bytes<Q: Borrow<K::Borrowed>>(
        schema: Arc<Schema>,
        log2size: u32,
        keys: &[Q],
        columns: &[(usize, &[u8])],
    ) -> Result<KeyedStore<K>> {
        let mut ks = KeyedStore::<K>::new(schema, log2size)?;
        let n = keys.len();
        if n > MAX_KEYED_LEN {
            return Err(Error::StoreFull { size: MAX_KEYED_LEN });
        }
        let proto = first_chunk(&ks.store)?;
        for &(m, bytes) in columns {
            let f = proto.column(m)?.as_fixed().ok_or_else(|| Error::WrongType {
                expected: "fixed-width member".into(),
                got: "variable-length member".into(),
            })?;
            let w = f.ty().entry_bytes();
            if bytes.len() != n * w {
                return Err(Error::WrongLength {
                    expected: n * w,
                    got: bytes.len(),
                });
            }
            if f.dtype() == Dtype::Bool {
                if let Some(b) = bytes.iter().find(|&&b| b > 1) {
                    return Err(Error::ValueOutOfRange {
                        value: b.to_string(),
                        dtype: Dtype::Bool.name().into(),
                    });
                }
            }
        }

        // Keys first: a duplicate fails before the slots are allocated and the columns copied.
        let log2 = ks.store.log2size();
        let chunks = n.div_ceil(ks.store.chunk_size()).max(1);
        ks.keys.grow_to(chunks)?;
        let (hasher, keys_col) = (&ks.hasher, &ks.keys);
        ks.table
            .try_reserve(n, |&s| slot_hash(hasher, keys_col, s))
            .map_err(|_| Error::out_of_memory(n.saturating_mul(5), TABLE_WHAT))?;
        for (i, q) in keys.iter().enumerate() {
            crate::interrupt::poll()?;
            let raw = K::to_raw(q.borrow());
            ks.keys.prepare(raw, i >> log2)?;
            ks.keys.put(i, raw);
            let (hasher, table, kc) = (&ks.hasher, &mut ks.table, &ks.keys);
            let h = hasher.hash_one(raw);
            match table.entry(
                h,
                |&t| kc.raw(t as usize) == Some(raw),
                |&t| slot_hash(hasher, kc, t),
            ) {
                TableEntry::Occupied(e) => {
                    return Err(Error::DuplicateKey {
                        key: format!("{:?}", q.borrow()),
                        first: *e.get() as usize,
                        second: i,
                    });
                }
                TableEntry::Vacant(e) => {
                    // i < n <= MAX_KEYED_LEN = u32::MAX, checked above.
                    e.insert(u32::try_from(i).unwrap_or(u32::MAX));
                }
            }
        }

        // The slots of a new store already hold their defaults: occupy 0..n without resetting them.
        ks.store.occupy_fresh(n)?;
        ks.grow_dirty()?;
        let cs = ks.store.chunk_size();
        for (c, chunk) in ks.store.chunks_mut(crate::store::INTERNAL).iter_mut().enumerate() {
            let (lo, hi) = (c * cs, ((c + 1) * cs).min(n));
            if lo >= hi {
                break;
            }
            for &(m, bytes) in columns {
                let Some(f) = chunk.column_mut(m)?.as_fixed_mut() else {
                    continue; // checked above: every given member is fixed-width
                };
                let w = f.ty().entry_bytes();
                // The loaded slots only: the chunk's slots beyond stay unfilled (untouched pages).
                if let Some(src) = bytes.get(lo * w..hi * w) {
                    f.load_prefix(src)?;
                }
            }
        }
        Ok(ks)
    }

    /// The hash of a key.
    #[inline]
    fn hash(&self, raw: &<K::Column as KeyColumn>::Raw) -> u64 {
        self.hasher.hash_one(raw)
    }

    /// The slot holding `key`, if any. O(1) expected: one hash and one probe through the key column.
    ///
    /// # Examples
    /// ```
    /// # use std::sync::Arc;
    /// # use compactstore::{Dtype, KeyedStore, Member, MemberType, Schema};
    /// # let schema = Arc::new(Schema::new(vec![Member::new("x", MemberType::Scalar(Dtype::I32))?])?);
    /// let mut pool = KeyedStore::<Vec<u8>>::new(schema, 4)?;
    /// let (slot, _) = pool.insert(b"abc", &[])?;
    /// assert_eq!(pool.index_of(b"abc"), Some(slot));
    /// assert_eq!(pool.index_of(b"abd"), None);
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    #[must_use]
    #[inline]
    pub fn index_of(&self, key: &K::Borrowed) -> Option<usize> {
        let raw = K::to_raw(key);
        self.table
            .find(self.hash(raw), |&t| self.keys.raw(t as usize) == Some(raw))
            .map(|&t| t as usize)
    }

    /// Whether `key` is present. O(1) expected.
    #[must_use]
    pub fn contains(&self, key: &K::Borrowed) -> bool {
        self.index_of(key).is_some()
    }

    /// Number of entries. O(1).
    #[must_use]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there is no entry. O(1).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The schema of the entries.
    #[must_use]
    pub fn schema(&self) -> &Arc<Schema> {
        self.store.schema()
    }

    /// The underlying dynamic store, for reads (member columns by chunk, generations, occupancy). There is
    /// deliberately no `&mut` access: writes go through [`KeyedStore::set`] and friends, which keep the
    /// dirty bits and the key index in step.
    #[must_use]
    pub fn store(&self) -> &DynamicStore {
        &self.store
    }

    /// Take every object reference out of the object members (see [`Store::take_objects`]).
    pub fn take_objects(&mut self) -> Vec<crate::value::ObjectRef> {
        self.store.take_objects()
    }

    /// See [`Store::reserve_writes`]: make room for writing the checked `values` at `slot` one by one.
    ///
    /// # Errors
    /// As [`Store::reserve_writes`].
    pub fn reserve_writes(&mut self, slot: usize, values: &[(usize, Value)]) -> Result<()> {
        self.store.reserve_writes(slot, values)
    }

    /// See [`Store::reserve_member_writes`]: make room for writing each `(slot, value)` to member `m`.
    ///
    /// # Errors
    /// As [`Store::reserve_member_writes`].
    pub fn reserve_member_writes(&mut self, m: usize, writes: &[(usize, &Value)]) -> Result<()> {
        self.store.reserve_member_writes(m, writes)
    }

    /// Put `obj` in object member `m` of occupied slot `slot` without it counting as a write (no modified
    /// mark; read-only members too): how the Python bindings give a copied store references of its own.
    ///
    /// # Errors
    /// [`Error::SlotFree`] / [`Error::IndexOutOfRange`] for the slot, [`Error::WrongType`] if `m` is not an
    /// object member.
    pub fn replace_object(&mut self, slot: usize, m: usize, obj: crate::value::ObjectRef) -> Result<()> {
        if !self.store.occupied(slot) {
            return Err(Error::SlotFree { index: slot });
        }
        if self.schema().member(m)?.ty() != &crate::schema::MemberType::Object {
            return Err(Error::WrongType {
                expected: "object member".into(),
                got: self.schema().member(m)?.ty().to_string(),
            });
        }
        self.store.write(slot, m, &Value::Object(obj))
    }

    /// Check every value of `values` against its member without writing it.
    fn check_values(&self, values: &[(usize, Value)]) -> Result<()> {
        let proto = first_chunk(&self.store)?;
        for (m, v) in values {
            proto.column(*m)?.check(v)?;
        }
        Ok(())
    }

    /// The chunk the store allocates its next slot from (the first with a free slot). O(chunks).
    fn next_chunk(&self) -> usize {
        self.store
            .chunks()
            .iter()
            .position(|c| c.space() > 0)
            .unwrap_or(self.store.chunks().len())
    }

    /// Insert or replace the entry of `key` with `values` (`(member, value)` pairs, read-only members
    /// included; a member given twice takes the later value). Returns the entry's slot and whether the key
    /// was present.
    ///
    /// A present key keeps its slot, which is rewritten in place: every member returns to its default, then
    /// `values` are written, and the key is marked modified (live views of the slot stay valid and see the
    /// new values). An absent key gets the lowest free slot, as [`Store::add`] does, and is not marked
    /// modified. Every value is checked before anything changes.
    ///
    /// Cost: O(1) expected for the index (the table may double, rehashing through the key column); O(members)
    /// to reset a replaced entry; a new entry may allocate a chunk of the store.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a member position beyond the schema, the conversion errors of
    /// [`crate::MemberType::canonical`] ([`Error::WrongType`], [`Error::ValueOutOfRange`],
    /// [`Error::WrongLength`]), [`Error::StoreFull`] beyond [`MAX_KEYED_LEN`] entries, and
    /// [`Error::InvalidArgument`] for a string/bytes key too long for a chunk's key arena (4 GiB), and
    /// [`Error::OutOfMemory`] for a new chunk, key or table room that cannot be allocated (nothing changes).
    pub fn insert(&mut self, key: &K::Borrowed, values: &[(usize, Value)]) -> Result<(usize, bool)> {
        self.check_values(values)?;
        if let Some(slot) = self.index_of(key) {
            self.rewrite(slot, values)?;
            set_bit(&mut self.dirty, slot);
            return Ok((slot, true));
        }
        if self.len() >= MAX_KEYED_LEN {
            return Err(Error::StoreFull { size: MAX_KEYED_LEN });
        }
        let raw = K::to_raw(key);
        let chunks = self.store.chunks().len();
        // Every allocation the new entry needs, before anything changes: the keys of the chunk the store
        // will grow by, the key's room in its chunk, a table bucket, the dirty bits. A refusal undoes the
        // key chunk (the table and dirty room stay reserved: capacity only).
        let grown = self.store.len() == self.store.size();
        let prepared = (|| {
            if grown {
                self.keys.grow_to(chunks + 1)?;
            }
            let next = self.next_chunk();
            self.keys.prepare(raw, next)?;
            let (hasher, keys) = (&self.hasher, &self.keys);
            self.table
                .try_reserve(1, |&s| slot_hash(hasher, keys, s))
                .map_err(|_| Error::out_of_memory(self.table.capacity().saturating_mul(10), TABLE_WHAT))?;
            let words = (self.store.size() + usize::from(grown) * self.store.chunk_size()).div_ceil(64);
            let more = words.saturating_sub(self.dirty.len());
            crate::alloc::reserve(&mut self.dirty, more, DIRTY_WHAT)
        })();
        let slot = match prepared.and_then(|()| crate::store::add_checked(&mut self.store, values)) {
            Ok(slot) => slot,
            Err(e) => {
                // A write can fail after the store grew (a value's memory refused): drop the new chunk.
                self.store.truncate_empty(chunks);
                self.keys.truncate(self.store.chunks().len());
                return Err(e);
            }
        };
        self.dirty.resize(self.store.size().div_ceil(64), 0);
        self.keys.put(slot, raw);
        clear_bit(&mut self.dirty, slot);
        let h = self.hash(raw);
        let (hasher, keys) = (&self.hasher, &self.keys);
        // The lowest free slot is at most len < u32::MAX (checked above).
        let t = u32::try_from(slot).unwrap_or(u32::MAX);
        // The room was reserved above: this does not allocate.
        self.table.insert_unique(h, t, |&s| slot_hash(hasher, keys, s));
        Ok((slot, false))
    }

    /// Extend the dirty bitmap to the store's size.
    fn grow_dirty(&mut self) -> Result<()> {
        let words = self.store.size().div_ceil(64);
        let more = words.saturating_sub(self.dirty.len());
        crate::alloc::reserve(&mut self.dirty, more, DIRTY_WHAT)?;
        self.dirty.resize(words, 0);
        Ok(())
    }

    /// An independent copy in new buffers: the same keys, entries, slots and modified marks (object
    /// members share their objects). O(size + data): the table is rebuilt through the copied keys.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated.
    pub fn try_clone(&self) -> Result<KeyedStore<K>> {
        let keys = self.keys.try_clone()?;
        let hasher = self.hasher.clone();
        let mut table = HashTable::new();
        table
            .try_reserve(self.table.len(), |&s| slot_hash(&hasher, &keys, s))
            .map_err(|_| Error::out_of_memory(self.table.allocation_size(), TABLE_WHAT))?;
        for &s in &self.table {
            crate::interrupt::poll()?;
            table.insert_unique(slot_hash(&hasher, &keys, s), s, |&t| slot_hash(&hasher, &keys, t));
        }
        Ok(KeyedStore {
            store: self.store.try_clone()?,
            keys,
            table,
            dirty: crate::alloc::clone_vec(&self.dirty, DIRTY_WHAT)?,
            hasher,
        })
    }

    /// Reset every member of occupied `slot` to its default, then write `values` (already checked).
    fn rewrite(&mut self, slot: usize, values: &[(usize, Value)]) -> Result<()> {
        // The one allocation a checked write may need, before anything is written.
        self.store.reserve_writes(slot, values)?;
        let schema = Arc::clone(self.store.schema());
        let mut given = vec![false; schema.len()];
        for (m, _) in values {
            if let Some(g) = given.get_mut(*m) {
                *g = true;
            }
        }
        for (m, member) in schema.members().iter().enumerate() {
            if !given[m] {
                self.store.write(slot, m, member.default_value())?;
            }
        }
        for (m, v) in values {
            self.store.write(slot, *m, v)?;
        }
        Ok(())
    }

    /// Check that `slot` holds an entry.
    fn check_occupied(&self, slot: usize) -> Result<()> {
        if slot >= self.store.size() {
            return Err(Error::IndexOutOfRange {
                index: slot as i64,
                len: self.store.size(),
            });
        }
        if !self.store.occupied(slot) {
            return Err(Error::SlotFree { index: slot });
        }
        Ok(())
    }

    /// Member `m` of `slot` (a free slot reads as the default, as in any store). O(1).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a slot or member out of range.
    pub fn get(&self, slot: usize, m: usize) -> Result<Value> {
        self.store.get(slot, m)
    }

    /// Element `k` of array member `m` at `slot`. O(1).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a slot, member or element out of range; [`Error::WrongType`] for a
    /// member that is not fixed-width.
    pub fn get_element(&self, slot: usize, m: usize, k: usize) -> Result<Value> {
        self.store.get_element(slot, m, k)
    }

    /// Every member of `slot`, in schema order. O(members).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a slot out of range.
    pub fn values(&self, slot: usize) -> Result<Vec<Value>> {
        (0..self.schema().len())
            .map(|m| self.store.get(slot, m))
            .collect()
    }

    /// Write member `m` of the entry at `slot` and mark its key modified. O(1).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a slot or member out of range, [`Error::SlotFree`] for a slot that
    /// holds no entry, [`Error::ReadOnly`] for a read-only member, and the conversion errors.
    pub fn set(&mut self, slot: usize, m: usize, v: &Value) -> Result<()> {
        self.check_occupied(slot)?;
        self.store.set(slot, m, v)?;
        set_bit(&mut self.dirty, slot);
        Ok(())
    }

    /// Write element `k` of array member `m` of the entry at `slot` and mark its key modified. O(1).
    ///
    /// # Errors
    /// As [`KeyedStore::set`], and [`Error::IndexOutOfRange`] for `k`, [`Error::WrongType`] for a member
    /// that is not an array.
    pub fn set_element(&mut self, slot: usize, m: usize, k: usize, v: &Value) -> Result<()> {
        self.check_occupied(slot)?;
        self.store.set_element(slot, m, k, v)?;
        set_bit(&mut self.dirty, slot);
        Ok(())
    }

    /// Write the typed scalar `x` to scalar member `m` of the entry at `slot` and mark its key modified
    /// (see [`Store::set_scalar`]). O(1).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a slot or member out of range, [`Error::SlotFree`] for a slot that
    /// holds no entry, [`Error::ReadOnly`] for a read-only member, [`Error::WrongType`] unless `m` is a
    /// scalar member of `x`'s dtype.
    pub fn set_scalar(&mut self, slot: usize, m: usize, x: crate::value::Scalar) -> Result<()> {
        self.check_occupied(slot)?;
        self.store.set_scalar(slot, m, x)?;
        set_bit(&mut self.dirty, slot);
        Ok(())
    }

    /// Write the given members of the entry at `slot` (the others keep their values), if it is still the
    /// entry of `generation`, and mark its key modified: the merge of `entry.update(mapping)`. All or
    /// nothing, as [`Store::update`]. O(values).
    ///
    /// # Errors
    /// As [`Store::update`]: [`Error::StaleEntry`] for a slot that no longer holds that entry, then
    /// [`Error::ReadOnly`], the conversion errors, [`Error::InvalidArgument`].
    pub fn update(&mut self, slot: usize, generation: u32, values: &[(usize, Value)]) -> Result<()> {
        self.store.update(slot, generation, values)?;
        if !values.is_empty() {
            set_bit(&mut self.dirty, slot);
        }
        Ok(())
    }

    /// Write `values[k]` to member `m` of the entry at `indices[k]` and mark their keys modified (see
    /// [`Store::scatter_values`]). Every slot must hold an entry; everything is checked before anything
    /// is written. O(values).
    ///
    /// # Errors
    /// As [`Store::scatter_values`], and [`Error::SlotFree`] for the first index that holds no entry.
    pub fn scatter_values(&mut self, m: usize, indices: &[usize], values: &[Value]) -> Result<()> {
        crate::store::check_scatter(&self.store, m, indices, values)?;
        if let Some(&i) = indices.iter().find(|&&i| !self.store.occupied(i)) {
            return Err(Error::SlotFree { index: i });
        }
        crate::store::write_scatter(&mut self.store, m, indices, values)?;
        for &i in indices {
            set_bit(&mut self.dirty, i);
        }
        Ok(())
    }

    /// The key of the entry at `slot`, or `None` if the slot holds no entry. O(1) (O(key length) for a
    /// `String` key, whose UTF-8 is re-checked).
    #[must_use]
    pub fn key_at(&self, slot: usize) -> Option<&K::Borrowed> {
        if !self.store.occupied(slot) {
            return None;
        }
        K::from_raw(self.keys.raw(slot)?)
    }

    /// `(key, slot)` of every entry, in slot order. O(size / 64 + len) for the whole iteration.
    pub fn iter(&self) -> impl Iterator<Item = (&K::Borrowed, usize)> + '_ {
        self.store
            .indices()
            .filter_map(move |s| Some((K::from_raw(self.keys.raw(s)?)?, s)))
    }

    /// The keys, in slot order.
    pub fn keys(&self) -> impl Iterator<Item = &K::Borrowed> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Free the entry at occupied `slot`: table, key column, dirty bit, store.
    fn remove_slot(&mut self, slot: usize) -> Option<()> {
        let h = self.hash(self.keys.raw(slot)?);
        let t = u32::try_from(slot).ok()?;
        // The store first: freeing a slot can fail (a chunk's per-slot generations are allocated by its
        // first free), and then nothing has changed. The table finds the slot through the key column,
        // which is still intact.
        self.store.remove(slot).ok()?;
        if let Ok(entry) = self.table.find_entry(h, |&s| s == t) {
            entry.remove();
        }
        self.keys.erase(slot);
        clear_bit(&mut self.dirty, slot);
        Some(())
    }

    /// Remove the entry of `key` and return the slot it held (now free), or `None` if absent. The slot's
    /// members return to their defaults and its generation changes, so views of it become stale. O(1)
    /// expected, plus an amortised share of key-arena compaction for string/bytes keys.
    pub fn remove(&mut self, key: &K::Borrowed) -> Option<usize> {
        let slot = self.index_of(key)?;
        self.remove_slot(slot)?;
        Some(slot)
    }

    /// Remove the entry of `key` and return its members' values (schema order), or `None` if absent: the
    /// snapshot `pool.pop(key)` returns. O(members) plus [`KeyedStore::remove`].
    pub fn take(&mut self, key: &K::Borrowed) -> Option<Vec<Value>> {
        let slot = self.index_of(key)?;
        // Invariant: the slot is in range, so every read succeeds.
        let values = self.values(slot).ok()?;
        self.remove_slot(slot)?;
        Some(values)
    }

    /// Remove the entry at the lowest occupied slot and return its key and values, or `None` when empty
    /// (`popitem`). O(members + chunks + chunk size / 64) worst case.
    pub fn pop_first(&mut self) -> Option<(K, Vec<Value>)> {
        let cs = self.store.chunk_size();
        let slot = self
            .store
            .chunks()
            .iter()
            .enumerate()
            .find(|(_, c)| !c.is_empty())
            .and_then(|(c, chunk)| chunk.slots().occupied_iter().next().map(|o| c * cs + o))?;
        let key = self.key_at(slot)?.to_owned();
        let values = self.values(slot).ok()?;
        self.remove_slot(slot)?;
        Some((key, values))
    }

    /// Remove every entry. The store keeps one chunk (the others are freed), the table keeps its
    /// capacity. O(chunk size + table capacity).
    pub fn clear(&mut self) {
        // A dynamic store's reset cannot fail (only a chunk's can).
        let _ = self.store.reset();
        self.keys.clear();
        self.table.clear();
        self.dirty.truncate(self.store.size().div_ceil(64));
        self.dirty.fill(0);
    }

    /// Reserve table room for `additional` more keys, so inserting them does not rehash.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the room cannot be allocated (nothing changes).
    pub fn reserve(&mut self, additional: usize) -> Result<()> {
        let (hasher, keys) = (&self.hasher, &self.keys);
        self.table
            .try_reserve(additional, |&s| slot_hash(hasher, keys, s))
            .map_err(|_| Error::out_of_memory(additional.saturating_mul(5), TABLE_WHAT))
    }

    /// Release the store's trailing chunks that hold no entry (always keeping one) with their keys.
    /// Returns how many were released.
    pub fn retract(&mut self) -> usize {
        let n = self.store.retract();
        self.keys.truncate(self.store.chunks().len());
        self.dirty.truncate(self.store.size().div_ceil(64));
        n
    }

    /// Whether the entry at `slot` was written after its creation. O(1).
    #[must_use]
    pub fn is_modified(&self, slot: usize) -> bool {
        self.dirty
            .get(slot / 64)
            .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    /// Slots of the entries written after their creation, ascending. O(size / 64 + modified).
    pub fn modified_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.dirty.iter().enumerate().flat_map(|(w, &word)| {
            let mut word = word;
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let b = word.trailing_zeros() as usize;
                word &= word - 1;
                Some(w * 64 + b)
            })
        })
    }

    /// Keys of the entries written after their creation (by `set`, `set_element`, `update` or a replacing
    /// `insert`), in slot order. O(size / 64 + modified).
    #[must_use]
    pub fn modified(&self) -> Vec<K> {
        self.modified_slots()
            .filter_map(|s| self.key_at(s).map(ToOwned::to_owned))
            .collect()
    }

    /// Forget every modification. O(size / 64).
    pub fn clear_modified(&mut self) {
        self.dirty.fill(0);
    }

    /// Forget the modification of the given keys; absent keys are ignored. O(1) expected per key.
    pub fn clear_modified_keys<'a>(&mut self, keys: impl IntoIterator<Item = &'a K::Borrowed>) {
        for key in keys {
            if let Some(slot) = self.index_of(key) {
                clear_bit(&mut self.dirty, slot);
            }
        }
    }

    /// Keys of the entries whose member `m` equals `v`, in slot order. `v` converts as a write would, so a
    /// bad value is an error, not an empty result. Floats compare as numbers (`-0.0 == 0.0`, NaN matches
    /// nothing). Fixed-width members are compared in place over each chunk's typed column: O(size / 64 +
    /// len), no `Value` per entry.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a member out of range, and the conversion errors of
    /// [`crate::MemberType::canonical`].
    pub fn find(&self, m: usize, v: &Value) -> Result<Vec<K>> {
        let member = self.schema().member(m)?;
        let want = member.ty().canonical(v)?;
        let mut out = Vec::new();
        let cs = self.store.chunk_size();
        let mut hit = |slot: usize| {
            if let Some(k) = self.key_at(slot) {
                out.push(k.to_owned());
            }
        };
        let mut needle = None;
        for (c, chunk) in self.store.chunks().iter().enumerate() {
            if chunk.is_empty() {
                continue;
            }
            let base = c * cs;
            let col = chunk.column(m)?;
            let occupied = chunk.slots().occupied_iter();
            let Some(f) = col.as_fixed() else {
                for o in occupied {
                    if col.get(o)? == want {
                        hit(base + o);
                    }
                }
                continue;
            };
            if needle.is_none() {
                let n = FixedColumn::try_new(f.ty().clone(), 1, &want)?;
                needle = Some(n);
            }
            let Some(n) = needle.as_ref() else { continue };
            match f.dtype() {
                Dtype::F32 => matches::<f32>(f, n.slot(0)?, occupied, base, &mut hit)?,
                Dtype::F64 => matches::<f64>(f, n.slot(0)?, occupied, base, &mut hit)?,
                // Integer and bool members compare as stored bytes.
                _ => {
                    for o in occupied {
                        if f.slot_bytes(o) == n.slot_bytes(0) {
                            hit(base + o);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Bytes held: the store's buffers, the key column, the hash table and the dirty bitmap.
    #[must_use]
    pub fn nbytes(&self) -> usize {
        self.store.nbytes()
            + self.keys.nbytes()
            + self.table.allocation_size()
            + self.dirty.capacity() * std::mem::size_of::<u64>()
    }

    /// Bytes of the string/bytes key arenas held by deleted keys and awaiting compaction (0 for integer
    /// keys). Never more than the live key bytes plus the compaction minimum per chunk.
    #[must_use]
    pub fn key_garbage(&self) -> usize {
        self.keys.garbage()
    }

    /// Check every invariant: the store's; one table entry per entry, each occupied slot's key finding
    /// that slot; free slots hold no key; the key arena's accounting and compaction bound; dirty bits only
    /// on occupied slots. O(size + len).
    ///
    /// # Errors
    /// [`Error::Invariant`] naming the first broken one.
    pub fn validate(&self) -> Result<()> {
        self.store.validate()?;
        if self.table.len() != self.store.len() {
            return Err(Error::Invariant(format!(
                "table holds {} keys, store {} entries",
                self.table.len(),
                self.store.len()
            )));
        }
        self.keys.validate(&self.store)?;
        for s in self.store.indices() {
            crate::interrupt::poll()?;
            let raw = self
                .keys
                .raw(s)
                .ok_or_else(|| Error::Invariant(format!("slot {s} has no key")))?;
            if K::from_raw(raw).is_none() {
                return Err(Error::Invariant(format!(
                    "key at slot {s} is not a valid {}",
                    K::NAME
                )));
            }
            let found = self
                .table
                .find(self.hash(raw), |&t| self.keys.raw(t as usize) == Some(raw));
            if found.map(|&t| t as usize) != Some(s) {
                return Err(Error::Invariant(format!(
                    "key {raw:?} at slot {s} finds slot {found:?}"
                )));
            }
        }
        if self.dirty.len() != self.store.size().div_ceil(64) {
            return Err(Error::Invariant(
                "dirty bitmap does not match the store size".into(),
            ));
        }
        if let Some(s) = self.modified_slots().find(|&s| !self.store.occupied(s)) {
            return Err(Error::Invariant(format!("free slot {s} is marked modified")));
        }
        Ok(())
    }
}

/// Call `hit(base + o)` for each occupied offset `o` of `f` whose item equals `needle` as numbers (a
/// slot the chunk has not filled yet compares its default).
fn matches<T: Element + PartialEq>(
    f: &FixedColumn,
    needle: &[T],
    occupied: impl Iterator<Item = usize>,
    base: usize,
    hit: &mut impl FnMut(usize),
) -> Result<()> {
    for o in occupied {
        if f.slot::<T>(o)? == needle {
            hit(base + o);
        }
    }
    Ok(())
}

fn first_chunk(store: &DynamicStore) -> Result<&StaticStore> {
    store
        .chunks()
        .first()
        .ok_or_else(|| Error::Invariant("store has no chunk".into()))
}

#[inline]
fn set_bit(bits: &mut [u64], i: usize) {
    if let Some(w) = bits.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

#[inline]
fn clear_bit(bits: &mut [u64], i: usize) {
    if let Some(w) = bits.get_mut(i / 64) {
        *w &= !(1 << (i % 64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Member, MemberType};

    fn schema() -> Arc<Schema> {
        Arc::new(
            Schema::new(vec![
                Member::new("ref", MemberType::Scalar(Dtype::I64))
                    .unwrap()
                    .read_only(true),
                Member::new("fitness", MemberType::Scalar(Dtype::F32))
                    .unwrap()
                    .with_default(Value::Float(0.5))
                    .unwrap(),
                Member::new("inputs", MemberType::Array(Dtype::U8, 3)).unwrap(),
                Member::new("alive", MemberType::Scalar(Dtype::Bool)).unwrap(),
            ])
            .unwrap(),
        )
    }

    #[test]
    fn replace_rewrites_the_same_slot_and_marks_it_modified() {
        let mut ks = KeyedStore::<i64>::new(schema(), 1).unwrap();
        let (a, new) = ks
            .insert(&7, &[(0, Value::Int(70)), (1, Value::Float(2.0))])
            .unwrap();
        assert!(!new);
        let (b, _) = ks.insert(&8, &[]).unwrap();
        assert!(ks.modified().is_empty());
        let g = ks.store().generation(a).unwrap();
        assert_eq!(ks.insert(&7, &[(0, Value::Int(71))]).unwrap(), (a, true));
        assert_eq!(ks.store().generation(a).unwrap(), g);
        assert_eq!(ks.values(a).unwrap()[..2], [Value::Int(71), Value::Float(0.5)]);
        assert_eq!(ks.modified(), vec![7]);
        assert!(!ks.is_modified(b));
        ks.validate().unwrap();
    }

    #[test]
    fn a_bad_value_changes_nothing() {
        let mut ks = KeyedStore::<i64>::new(schema(), 1).unwrap();
        let (a, _) = ks.insert(&1, &[(1, Value::Float(1.0))]).unwrap();
        let bad = [(1, Value::Float(3.0)), (2, vec![1i64, 2, 300].into())];
        assert!(matches!(ks.insert(&1, &bad), Err(Error::ValueOutOfRange { .. })));
        assert!(matches!(ks.insert(&2, &bad), Err(Error::ValueOutOfRange { .. })));
        assert!(matches!(
            ks.insert(&2, &[(9, Value::Int(0))]),
            Err(Error::IndexOutOfRange { .. })
        ));
        let g = ks.store().generation(a).unwrap();
        assert!(matches!(
            ks.update(a, g, &bad),
            Err(Error::ValueOutOfRange { .. })
        ));
        assert!(matches!(
            ks.update(a, g, &[(1, Value::Float(3.0)), (0, Value::Int(1))]),
            Err(Error::ReadOnly { .. })
        ));
        assert_eq!(
            ks.update(a, g + 1, &[(1, Value::Float(3.0))]),
            Err(Error::StaleEntry { index: a })
        );
        assert_eq!(ks.len(), 1);
        assert_eq!(ks.store().len(), 1);
        assert_eq!(ks.get(a, 1).unwrap(), Value::Float(1.0));
        assert!(ks.modified().is_empty());
        assert!(matches!(
            ks.set(1, 1, &Value::Float(1.0)),
            Err(Error::SlotFree { index: 1 })
        ));
        assert!(matches!(
            ks.set(99, 1, &Value::Float(1.0)),
            Err(Error::IndexOutOfRange { .. })
        ));
        ks.validate().unwrap();
    }

    #[test]
    fn typed_writes_update_and_scatter_mark_keys_modified() {
        let mut ks = KeyedStore::<i64>::new(schema(), 2).unwrap();
        let (a, _) = ks.insert(&1, &[(0, Value::Int(1))]).unwrap();
        let (b, _) = ks.insert(&2, &[(0, Value::Int(2))]).unwrap();
        let free = 2;
        assert!(!ks.store().occupied(free));
        // set_scalar: occupied slots only.
        assert_eq!(
            ks.set_scalar(free, 1, crate::value::Scalar::F32(1.0)),
            Err(Error::SlotFree { index: free })
        );
        assert!(matches!(
            ks.set_scalar(a, 1, crate::value::Scalar::F64(1.0)),
            Err(Error::WrongType { .. })
        ));
        assert_eq!(
            ks.set_scalar(a, 0, crate::value::Scalar::I64(5)),
            Err(Error::ReadOnly { name: "ref".into() })
        );
        assert!(ks.modified().is_empty());
        ks.set_scalar(a, 1, crate::value::Scalar::F32(1.5)).unwrap();
        assert_eq!(ks.get(a, 1).unwrap(), Value::Float(1.5));
        assert_eq!(ks.modified(), vec![1]);
        ks.clear_modified();
        // scatter_values: occupied slots only, checked before anything is written.
        let two = [Value::Float(7.0), Value::Float(8.0)];
        assert_eq!(
            ks.scatter_values(1, &[b, free], &two),
            Err(Error::SlotFree { index: free })
        );
        assert!(matches!(
            ks.scatter_values(1, &[b, a], &[Value::Float(7.0), Value::from("x")]),
            Err(Error::WrongType { .. })
        ));
        assert!(matches!(
            ks.scatter_values(0, &[b], &[Value::Int(3)]),
            Err(Error::ReadOnly { .. })
        ));
        assert_eq!(ks.get(b, 1).unwrap(), Value::Float(0.5));
        assert!(ks.modified().is_empty());
        ks.scatter_values(1, &[b], &two[..1]).unwrap();
        assert_eq!(ks.get(b, 1).unwrap(), Value::Float(7.0));
        assert_eq!(ks.modified(), vec![2]);
        ks.clear_modified();
        // update: the entry of a generation; an empty update marks nothing.
        let g = ks.store().generation(a).unwrap();
        ks.update(a, g, &[]).unwrap();
        assert!(ks.modified().is_empty());
        ks.update(a, g, &[(1, Value::Float(9.0))]).unwrap();
        assert_eq!(ks.modified(), vec![1]);
        assert_eq!(ks.remove(&1), Some(a));
        assert_eq!(
            ks.update(a, g, &[(1, Value::Float(9.0))]),
            Err(Error::StaleEntry { index: a })
        );
        ks.validate().unwrap();
    }

    #[test]
    fn remove_take_pop_and_clear() {
        let mut ks = KeyedStore::<u64>::new(schema(), 1).unwrap();
        for k in 0..10u64 {
            ks.insert(&k, &[(0, Value::Int(k as i64 * 10))]).unwrap();
        }
        assert_eq!(ks.store().chunks().len(), 5);
        assert_eq!(ks.remove(&3), Some(3));
        assert_eq!(ks.remove(&3), None);
        assert_eq!(ks.take(&4).unwrap()[0], Value::Int(40));
        assert_eq!(ks.take(&4), None);
        let (k, v) = ks.pop_first().unwrap();
        assert_eq!((k, v[0].clone()), (0, Value::Int(0)));
        assert_eq!(ks.len(), 7);
        ks.validate().unwrap();
        // The freed slots are reused lowest first, and the new key is found there.
        assert_eq!(ks.insert(&100, &[]).unwrap(), (0, false));
        assert_eq!(ks.key_at(0), Some(&100));
        assert_eq!(ks.key_at(3), None);
        ks.set(0, 1, &Value::Float(1.0)).unwrap();
        ks.clear();
        assert!(ks.is_empty() && ks.modified().is_empty());
        assert_eq!(ks.store().chunks().len(), 1);
        assert_eq!(ks.index_of(&100), None);
        ks.validate().unwrap();
        while ks.pop_first().is_some() {}
        assert_eq!(ks.insert(&5, &[]).unwrap(), (0, false));
    }

    #[test]
    fn string_keys_compact_their_arena() {
        let mut ks = KeyedStore::<String>::with_compaction_threshold(schema(), 2, 8).unwrap();
        let keys: Vec<String> = (0..40)
            .map(|i| format!("key-{i}-{}", "x".repeat(i % 7)))
            .collect();
        for k in &keys {
            ks.insert(k, &[]).unwrap();
        }
        ks.insert("", &[]).unwrap();
        let before = ks.nbytes();
        for k in &keys[..30] {
            assert!(ks.remove(k).is_some());
            ks.validate().unwrap();
        }
        assert!(ks.key_garbage() < 40 * 4);
        assert!(ks.nbytes() < before);
        for k in &keys[30..] {
            assert!(ks.contains(k), "{k}");
            let s = ks.index_of(k).unwrap();
            assert_eq!(ks.key_at(s), Some(k.as_str()));
        }
        assert!(ks.contains(""));
        assert_eq!(ks.len(), 11);
    }

    #[test]
    fn find_compares_values_in_place() {
        let mut ks = KeyedStore::<Vec<u8>>::new(schema(), 2).unwrap();
        for i in 0..12u8 {
            let f = if i % 3 == 0 { -0.0 } else { f64::from(i) };
            ks.insert(&[i], &[(1, Value::Float(f)), (2, vec![i % 2, 0, 1].into())])
                .unwrap();
        }
        let zeros = ks.find(1, &Value::Int(0)).unwrap();
        assert_eq!(zeros, vec![vec![0], vec![3], vec![6], vec![9]]);
        assert_eq!(ks.find(2, &vec![1u8, 0, 1].into()).unwrap().len(), 6);
        assert_eq!(ks.find(1, &Value::Float(f64::NAN)).unwrap().len(), 0);
        assert!(ks.find(2, &Value::Int(1)).is_err());
        assert!(ks.find(3, &Value::Int(1)).is_err());
        // The default value matches occupied slots only.
        assert_eq!(ks.find(3, &Value::Bool(false)).unwrap().len(), 12);
    }

    #[test]
    fn from_columns_and_values_writes_value_columns_at_creation() {
        let schema = Arc::new(
            Schema::new(vec![
                Member::new("ref", MemberType::Scalar(Dtype::I64))
                    .unwrap()
                    .read_only(true),
                Member::new("name", MemberType::Str).unwrap().read_only(true),
                Member::new("cat", MemberType::interned(MemberType::Str)).unwrap(),
                Member::new(
                    "opt",
                    MemberType::Optional(Box::new(MemberType::Scalar(Dtype::U8))),
                )
                .unwrap(),
            ])
            .unwrap(),
        );
        let keys = ["a", "b", "c"];
        let refs: Vec<u8> = [1i64, 2, 3].iter().flat_map(|k| k.to_ne_bytes()).collect();
        let names = [
            Value::from("x"),
            Value::from("a name longer than fifteen bytes"),
            Value::from(""),
        ];
        let cats = [Value::from("p"), Value::from("q"), Value::from("p")];
        let opts = [Value::Null, Value::Int(7), Value::UInt(255)];
        let vals: [(usize, &[Value]); 3] = [(1, &names), (2, &cats), (3, &opts)];
        let ks = KeyedStore::<String>::from_columns_and_values(
            Arc::clone(&schema),
            1,
            &keys,
            &[(0, &refs)],
            &vals,
        )
        .unwrap();
        ks.validate().unwrap();
        assert!(ks.modified().is_empty());
        let b = ks.index_of("b").unwrap();
        assert_eq!(
            ks.values(b).unwrap(),
            vec![Value::Int(2), names[1].clone(), Value::from("q"), Value::UInt(7)]
        );
        assert_eq!(ks.get(ks.index_of("a").unwrap(), 3).unwrap(), Value::Null);
        // refused before anything is built: a column of the wrong length, a value that does not fit
        let short: [(usize, &[Value]); 1] = [(2, &cats[..2])];
        assert_eq!(
            KeyedStore::<String>::from_columns_and_values(Arc::clone(&schema), 1, &keys, &[], &short).err(),
            Some(Error::WrongLength { expected: 3, got: 2 })
        );
        let bad = [Value::Null, Value::Int(256), Value::Null];
        let bad: [(usize, &[Value]); 1] = [(3, &bad)];
        assert!(matches!(
            KeyedStore::<String>::from_columns_and_values(Arc::clone(&schema), 1, &keys, &[], &bad),
            Err(Error::ValueOutOfRange { .. })
        ));
        let wrong = [Value::Int(1), Value::Int(2), Value::Int(3)];
        let wrong: [(usize, &[Value]); 1] = [(1, &wrong)];
        assert!(matches!(
            KeyedStore::<String>::from_columns_and_values(schema, 1, &keys, &[], &wrong),
            Err(Error::WrongType { .. })
        ));
    }

    #[test]
    fn from_columns_loads_and_refuses_bad_input() {
        let n = 10usize;
        let keys: Vec<i64> = (0..n as i64).map(|k| k * 7 - 20).collect();
        let refs: Vec<u8> = (0..n as i64).flat_map(|k| (k * 100).to_ne_bytes()).collect();
        let inputs: Vec<u8> = (0..n as u8 * 3).collect();
        let alive: Vec<u8> = (0..n as u8).map(|k| k % 2).collect();
        let cols: [(usize, &[u8]); 3] = [(0, &refs), (2, &inputs), (3, &alive)];
        let ks = KeyedStore::<i64>::from_columns(schema(), 2, &keys, &cols).unwrap();
        ks.validate().unwrap();
        assert_eq!(ks.len(), n);
        let s = ks.index_of(&(9 * 7 - 20)).unwrap();
        assert_eq!(
            ks.values(s).unwrap(),
            vec![
                Value::Int(900),
                Value::Float(0.5),
                vec![27u8, 28, 29].into(),
                Value::Bool(true)
            ]
        );
        assert!(ks.modified().is_empty());

        let mut dup = keys.clone();
        dup[7] = dup[2];
        let e = KeyedStore::<i64>::from_columns(schema(), 2, &dup, &cols).unwrap_err();
        assert_eq!(
            e,
            Error::DuplicateKey {
                key: dup[2].to_string(),
                first: 2,
                second: 7
            }
        );
        assert!(e.to_string().contains("positions 2 and 7"), "{e}");
        assert!(matches!(
            KeyedStore::<i64>::from_columns(schema(), 2, &keys[1..], &cols),
            Err(Error::WrongLength {
                expected: 72,
                got: 80
            })
        ));
        let two = vec![2u8; n];
        assert!(matches!(
            KeyedStore::<i64>::from_columns(schema(), 2, &keys, &[(3, &two)]),
            Err(Error::ValueOutOfRange { .. })
        ));
        assert!(matches!(
            KeyedStore::<i64>::from_columns(schema(), 2, &keys, &[(4, &two)]),
            Err(Error::IndexOutOfRange { .. })
        ));
        let empty = KeyedStore::<String>::from_columns::<&str>(schema(), 2, &[], &[]).unwrap();
        empty.validate().unwrap();

        // Exactly two full chunks: the next insert grows a third, and freed slots are reused first.
        let mut full = KeyedStore::<i64>::from_columns(schema(), 2, &keys[..8], &[]).unwrap();
        full.validate().unwrap();
        assert_eq!(full.insert(&1000, &[]).unwrap(), (8, false));
        assert_eq!(full.store().chunks().len(), 3);
        assert_eq!(full.remove(&keys[5]), Some(5));
        assert_eq!(full.insert(&1001, &[]).unwrap(), (5, false));
        full.validate().unwrap();
    }

    #[test]
    fn validate_catches_a_stale_dirty_bit_and_a_lost_key() {
        // validate() must be able to fail: corrupt each structure by hand.
        let mut ks = KeyedStore::<i64>::new(schema(), 1).unwrap();
        for k in 1..=3 {
            ks.insert(&k, &[]).unwrap(); // slots 0, 1, 2; slot 3 free
        }
        ks.validate().unwrap();
        let mut bad = ks.clone();
        set_bit(&mut bad.dirty, 3);
        assert!(bad.validate().is_err());
        let mut bad = ks.clone();
        bad.keys.put(1, &5); // an occupied slot whose key the table cannot find
        assert!(bad.validate().is_err());
        let mut bad = ks.clone();
        bad.keys.put(3, &5); // a free slot with a stale key
        assert!(bad.validate().is_err());
        let mut bad = ks.clone();
        bad.dirty.push(0);
        assert!(bad.validate().is_err());
        let mut bad = ks.clone();
        bad.table.clear();
        assert!(bad.validate().is_err());
        ks.validate().unwrap();
    }

    #[test]
    fn keyed_stores_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<KeyedStore<i64>>();
        check::<KeyedStore<String>>();
    }

    #[test]
    fn nbytes_counts_about_fourteen_bytes_per_integer_key() {
        let schema =
            Arc::new(Schema::new(vec![Member::new("x", MemberType::Scalar(Dtype::I64)).unwrap()]).unwrap());
        let n = 100_000usize;
        let keys: Vec<i64> = (0..n as i64).collect();
        let ks = KeyedStore::<i64>::from_columns(Arc::clone(&schema), 16, &keys, &[]).unwrap();
        let raw = DynamicStore::new(schema, 16).unwrap();
        let mut bare = raw.clone();
        for _ in 0..n {
            bare.next_index().unwrap();
        }
        let per_key = (ks.nbytes() - bare.nbytes()) as f64 / n as f64;
        // 8 (key) + 5 * buckets / n (table: 131072 buckets) + 1/8 (dirty) + chunk rounding.
        assert!(per_key < 24.0, "{per_key}");
    }

    #[test]
    fn str_interned_and_optional_members_in_a_keyed_store() {
        let schema = Arc::new(
            Schema::new(vec![
                Member::new("name", MemberType::Str).unwrap().with_compact_min(0),
                Member::new("cat", MemberType::interned(MemberType::Str)).unwrap(),
                Member::new("opt", MemberType::optional(MemberType::Scalar(Dtype::F64))).unwrap(),
            ])
            .unwrap(),
        );
        let dict_len = |p: &KeyedStore<String>| {
            p.store().chunks()[0]
                .column(1)
                .unwrap()
                .as_interned()
                .unwrap()
                .dictionary()
                .read()
                .unwrap()
                .len()
        };
        let mut p = KeyedStore::<String>::new(schema, 1).unwrap();
        for k in 0..5 {
            p.insert(
                &format!("k{k}"),
                &[
                    (0, Value::Str(format!("a name long enough to spill {k}"))),
                    (1, Value::from(if k < 3 { "low" } else { "high" })),
                    (
                        2,
                        if k == 0 {
                            Value::Null
                        } else {
                            Value::Float(f64::from(k))
                        },
                    ),
                ],
            )
            .unwrap();
        }
        assert_eq!(
            p.find(1, &Value::from("high")).unwrap(),
            vec!["k3".to_owned(), "k4".to_owned()]
        );
        assert_eq!(p.find(2, &Value::Null).unwrap(), vec!["k0".to_owned()]);
        assert_eq!(dict_len(&p), 2);
        // A failed insert changes nothing, dictionary included.
        assert!(p
            .insert("k9", &[(1, Value::from("new")), (2, Value::from("x"))])
            .is_err());
        assert!(p
            .insert("k1", &[(1, Value::from("new")), (0, Value::Null)])
            .is_err());
        assert_eq!((dict_len(&p), p.len()), (2, 5));
        // Replacing resets the members not given: "high" loses a reference, "" needs none.
        p.insert("k4", &[(2, Value::Null)]).unwrap();
        assert_eq!(
            p.values(p.index_of("k4").unwrap()).unwrap(),
            vec![Value::from(""), Value::from(""), Value::Null]
        );
        assert_eq!(
            p.take("k3"),
            Some(vec![
                Value::from("a name long enough to spill 3"),
                Value::from("low"),
                Value::Float(3.0)
            ])
            .map(|mut v| {
                v[1] = Value::from("high");
                v
            })
        );
        assert_eq!(dict_len(&p), 1, "high is reclaimed");
        let mut q = p.clone();
        q.set(q.index_of("k0").unwrap(), 1, &Value::from("only in q"))
            .unwrap();
        assert_eq!(dict_len(&p), 1);
        assert_eq!(dict_len(&q), 2);
        p.validate().unwrap();
        q.validate().unwrap();
        p.clear();
        assert_eq!(dict_len(&p), 0);
        p.validate().unwrap();
    }
}
