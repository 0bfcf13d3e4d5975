//! The [`Key`] trait: the types that can key a keyed store, and the key column each one is kept in.

use std::fmt::Debug;
use std::hash::Hash;

use super::byte_keys::ByteKeys;
use super::int_keys::IntKeys;
#[cfg(doc)]
use super::KeyedStore;
use crate::dynamic_store::DynamicStore;
use crate::error::{Error, Result};
use crate::store::Store;

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

pub(super) mod sealed {
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

        /// The compaction threshold of the key bytes (0 for integer keys).
        fn compact_min(&self) -> usize;

        /// Whether a chunk's keys have a byte arena besides the per-slot words (str/bytes keys).
        const HAS_DATA: bool;

        /// The key at `slot` of a file's key column read in place ([`super::super::FileIndex`]).
        fn raw_in(index: &super::super::FileIndex, slot: usize) -> Option<&Self::Raw>;

        /// The key's hash in a file's table: [`crate::file::format::key_hash`] of its bytes (an integer
        /// key's 8 little-endian bytes).
        fn file_hash(raw: &Self::Raw) -> u64;

        /// Save the key chunks: per chunk, one word per slot (an integer key; a str/bytes key's
        /// `(start u32, len u32)` span), then for str/bytes keys the chunk's key bytes.
        fn save_chunks<'a>(&'a self, w: &mut crate::file::format::Writer<'a>);

        /// Bytes held by deleted keys awaiting compaction.
        fn garbage(&self) -> usize;

        /// Check the column against its store: one chunk per store chunk, free slots hold no key,
        /// arena accounting.
        fn validate(&self, store: &DynamicStore) -> Result<()>;
    }
}

/// What a key column's memory is, in an [`Error::OutOfMemory`].
pub(super) const KEYS_WHAT: &str = "a keyed store's keys";

pub(super) fn no_memory<T>(log2: u32) -> Error {
    Error::out_of_memory((std::mem::size_of::<T>()) << log2, KEYS_WHAT)
}

pub(super) fn check_chunk_count(
    n: usize,
    mut sizes: impl Iterator<Item = usize>,
    store: &DynamicStore,
) -> Result<()> {
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
