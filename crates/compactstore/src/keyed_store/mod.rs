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

mod byte_keys;
mod int_keys;
mod key;

use std::borrow::Borrow;
use std::fmt::Debug;
use std::hash::BuildHasher;
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

use key::sealed::KeyColumn;
pub use key::Key;

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
    /// A loaded file's modified bits, read in place until the first change of a mark (`dirty_mut`
    /// copies them into `dirty`), so that opening a file does not read them all.
    file_dirty: Option<crate::column::AlignedBuf>,
    hasher: foldhash::fast::RandomState,
    /// A file's key column and key table, read in place (a store mapped read-only or in place, which
    /// never adds or removes keys). `keys` and `table` are empty meanwhile.
    file: Option<Box<FileIndex>>,
}

/// A file's key column and open-addressing key table, read in place (see the file format docs): per
/// chunk one word per slot (an integer key, or a str/bytes key's span) and a str/bytes chunk's key
/// bytes; the table holds a slot number (`u32`) per bucket, [`crate::file::format::EMPTY_BUCKET`] for
/// none, probed linearly from [`crate::file::format::key_hash`] of the key.
#[derive(Debug)]
#[doc(hidden)]
pub struct FileIndex {
    pub(crate) log2: u32,
    pub(crate) keys: Vec<crate::column::AlignedBuf>,
    pub(crate) data: Vec<crate::column::AlignedBuf>,
    garbage: Vec<usize>,
    table: crate::column::AlignedBuf,
    len: usize,
}

impl FileIndex {
    fn buckets(&self) -> &[u32] {
        bytemuck::try_cast_slice(self.table.bytes()).unwrap_or_default()
    }
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
            file: None,
            file_dirty: None,
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

    /// The dynamic store, mutably: for an Arrow import that writes the members of the entries
    /// `from_columns` has just made (no key changes; slots stay occupied).
    #[cfg(feature = "arrow")]
    pub(crate) fn store_for_load(&mut self) -> &mut DynamicStore {
        &mut self.store
    }

    /// The hash of a key.
    /// A keyed store over a loaded dynamic store: `keys` are the keys of its entries in slot order,
    /// `dirty` the modified bits. The key column and the hash table are rebuilt (O(entries)); a duplicate
    /// key or a key count that differs from the entry count is a format error.
    pub(crate) fn from_loaded<'k, Q: Borrow<K::Borrowed> + ?Sized + 'k>(
        store: DynamicStore,
        keys: impl ExactSizeIterator<Item = &'k Q>,
        dirty: Vec<u64>,
        compact_min: usize,
    ) -> Result<KeyedStore<K>> {
        let n = store.len();
        if keys.len() != n || n > MAX_KEYED_LEN {
            return Err(Error::Format(format!("{} keys for {n} entries", keys.len())));
        }
        if dirty.len() != store.size().div_ceil(64) {
            return Err(Error::Format("modified bits of the wrong size".into()));
        }
        let (kc, table, hasher) = build_index::<K, Q>(&store, keys, compact_min)?;
        let mut ks = KeyedStore {
            store,
            keys: kc,
            table,
            dirty,
            hasher,
            file: None,
            file_dirty: None,
        };
        // Modified bits of free slots mean nothing: clear them, as a delete does.
        let size = ks.store.size();
        for s in 0..size {
            if !ks.store.occupied(s) && ks.is_modified(s) {
                clear_bit(&mut ks.dirty, s);
            }
        }
        Ok(ks)
    }

    /// The compaction threshold of the key bytes (for saving).
    pub(crate) fn key_compact_min(&self) -> usize {
        self.keys.compact_min()
    }

    /// The modified bits (for saving).
    pub(crate) fn dirty_words(&self) -> &[u64] {
        match &self.file_dirty {
            Some(f) => bytemuck::try_cast_slice(f.bytes()).unwrap_or_default(),
            None => &self.dirty,
        }
    }

    /// The modified bits, to change: a file's are copied first (once).
    fn dirty_mut(&mut self) -> &mut Vec<u64> {
        if let Some(f) = self.file_dirty.take() {
            self.dirty = bytemuck::try_cast_slice(f.bytes()).unwrap_or_default().to_vec();
        }
        &mut self.dirty
    }

    /// What the store may write ([`crate::Access`]).
    #[must_use]
    pub fn access(&self) -> crate::Access {
        self.store.access()
    }

    /// The key at `slot` (of the file's column when read in place).
    #[inline]
    fn raw_key(&self, slot: usize) -> Option<&<K::Column as KeyColumn>::Raw> {
        match &self.file {
            Some(f) => K::Column::raw_in(f, slot),
            None => self.keys.raw(slot),
        }
    }

    /// The slot of `raw` in a file's key table: probed linearly, at most once around the table (a
    /// corrupt table without an empty bucket ends the search), and only occupied slots holding the key
    /// count.
    fn file_find(&self, f: &FileIndex, raw: &<K::Column as KeyColumn>::Raw) -> Option<usize> {
        let buckets = f.buckets();
        let mask = buckets.len().checked_sub(1)?;
        let mut i = (K::Column::file_hash(raw) as usize) & mask;
        for _ in 0..buckets.len() {
            let t = buckets[i];
            if t == crate::file::format::EMPTY_BUCKET {
                return None;
            }
            let t = t as usize;
            if self.store.occupied(t) && K::Column::raw_in(f, t) == Some(raw) {
                return Some(t);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Save the key column and a key table (see [`FileIndex`]).
    pub(crate) fn save_index<'a>(&'a self, w: &mut crate::file::format::Writer<'a>) -> Result<()> {
        use crate::file::format::Piece;
        if let Some(f) = &self.file {
            for (c, k) in f.keys.iter().enumerate() {
                w.buf(Piece::Borrowed(k.bytes()));
                if let Some(d) = f.data.get(c) {
                    w.buf(Piece::Borrowed(d.bytes()));
                    w.usize(f.garbage.get(c).copied().unwrap_or(0));
                }
            }
            w.buf(Piece::Borrowed(f.table.bytes()));
            w.usize(f.len);
            return Ok(());
        }
        self.keys.save_chunks(w);
        let len = self.len();
        let cap = len.saturating_mul(2).max(8).next_power_of_two();
        let make = move || self.key_table(cap);
        w.buf(Piece::Deferred {
            len: cap * 4,
            make: std::sync::Mutex::new(Some(Box::new(make))),
        });
        w.usize(len);
        Ok(())
    }

    /// The file's key table of the entries: `cap` buckets (a power of two), see [`FileIndex`].
    fn key_table(&self, cap: usize) -> Result<Vec<u32>> {
        use crate::file::format::EMPTY_BUCKET;
        let len = self.len();
        let mask = cap - 1;
        // Home buckets first, then the inserts grouped by the home's top 8 bits (a counting sort): the
        // table is then written a region (1/256 of it) at a time instead of at random.
        let mut homes: Vec<u64> = Vec::new();
        crate::alloc::reserve_exact(&mut homes, len, TABLE_WHAT)?;
        for s in self.store.indices() {
            crate::interrupt::poll()?;
            let Some(raw) = self.keys.raw(s) else { continue };
            let home = (K::Column::file_hash(raw) as usize & mask) as u64;
            // Slots are below MAX_KEYED_LEN = u32::MAX; a table of more than 2^32 buckets (2^31 keys)
            // keeps the home's low 32 bits only, which the insert below then probes from: still correct.
            homes.push(home << 32 | s as u64);
        }
        let bits = cap.trailing_zeros().min(32);
        let shift = bits.saturating_sub(8);
        let group = |x: u64| ((x >> 32) as usize) >> shift;
        let groups = 1usize << (bits - shift);
        let mut start = vec![0usize; groups + 1];
        for &x in &homes {
            start[group(x) + 1] += 1;
        }
        for g in 0..groups {
            start[g + 1] += start[g];
        }
        let mut grouped: Vec<u64> = crate::alloc::filled(homes.len(), 0, TABLE_WHAT)?;
        for &x in &homes {
            let g = group(x);
            grouped[start[g]] = x;
            start[g] += 1;
        }
        drop(homes);
        let mut buckets: Vec<u32> = crate::alloc::filled(cap, EMPTY_BUCKET, TABLE_WHAT)?;
        for x in grouped {
            let mut i = (x >> 32) as usize & mask;
            while buckets[i] != EMPTY_BUCKET {
                i = (i + 1) & mask;
            }
            buckets[i] = x as u32;
        }
        Ok(buckets)
    }

    /// A keyed store over a loaded dynamic store and the file's key column and table (`r`'s next
    /// buffers): read in place if `in_place` (checked: sizes and the entry count; the keys and
    /// buckets are checked as they are read), else rebuilt into a key column and hash table
    /// (O(entries), checked whole).
    pub(crate) fn load_index(
        store: DynamicStore,
        r: &mut crate::file::format::Reader<'_>,
        dirty: crate::column::AlignedBuf,
        compact_min: usize,
        in_place: bool,
    ) -> Result<KeyedStore<K>> {
        use crate::file::format::bad;
        let log2 = store.log2size();
        let chunks = store.chunks().len();
        let mut keys = Vec::with_capacity(chunks);
        let mut data = Vec::new();
        let mut garbage = Vec::new();
        for _ in 0..chunks {
            keys.push(r.buf(store.chunk_size() * 8, "a key chunk")?);
            if <K::Column as KeyColumn>::HAS_DATA {
                data.push(r.any_buf("a key chunk's bytes")?);
                garbage.push(r.usize()?);
            }
        }
        let table = r.any_buf("the key table")?;
        let len = r.usize()?;
        let cap = table.len() / 4;
        if table.len() % 4 != 0 || !cap.is_power_of_two() || len != store.len() || len >= cap {
            return Err(bad(format!(
                "a key table of {} bytes for {len} keys",
                table.len()
            )));
        }
        if dirty.len() != store.size().div_ceil(64) * 8 {
            return Err(bad("modified bits of the wrong size"));
        }
        let index = FileIndex {
            log2,
            keys,
            data,
            garbage,
            table,
            len,
        };
        // A writable store reads the file's index too until its first insert or delete, which builds
        // the key column and hash table from it (`own_index`): opening stays O(1) in the entries.
        let _ = in_place;
        Ok(KeyedStore {
            keys: K::Column::new(log2, compact_min)?,
            store,
            table: HashTable::new(),
            dirty: Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
            file: Some(Box::new(index)),
            file_dirty: Some(dirty),
        })
    }

    /// Build the key column and hash table from a file's index read in place, before a call that
    /// adds or removes keys (a writable loaded store's first). O(entries). Nothing changes on error.
    fn own_index(&mut self) -> Result<()> {
        let Some(f) = self.file.as_deref() else {
            return Ok(());
        };
        let mut found = Vec::new();
        crate::alloc::reserve_exact(&mut found, f.len, TABLE_WHAT)?;
        for s in self.store.indices() {
            let raw = K::Column::raw_in(f, s).ok_or_else(|| Error::Format(format!("slot {s} has no key")))?;
            found.push(
                K::from_raw(raw)
                    .ok_or_else(|| Error::Format(format!("the key at slot {s} is not a {}", K::NAME)))?,
            );
        }
        let (keys, table, hasher) =
            build_index::<K, _>(&self.store, found.iter().copied(), self.keys.compact_min())?;
        self.keys = keys;
        self.table = table;
        self.hasher = hasher;
        self.file = None;
        Ok(())
    }

    /// The checks of a store loaded writable: its full `validate`, the file's key table included (every
    /// key valid and finding its own slot, the table holding exactly the entries). A key column that
    /// does not match the table (a key twice, a key its bucket does not name) is refused here rather
    /// than left for a lookup to miss, since a lookup trusts the key it finds.
    pub(crate) fn validate_loaded(&self) -> Result<()> {
        self.validate()
    }

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
        if let Some(f) = &self.file {
            return self.file_find(f, raw);
        }
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
        match &self.file {
            Some(f) => f.len,
            None => self.table.len(),
        }
    }

    /// Whether there is no entry. O(1).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        self.access().check_structure("inserting or replacing an entry")?;
        self.own_index()?;
        self.check_values(values)?;
        if let Some(slot) = self.index_of(key) {
            self.rewrite(slot, values)?;
            set_bit(self.dirty_mut(), slot);
            return Ok((slot, true));
        }
        self.insert_new(key, |store| crate::store::add_checked(store, values))
    }

    /// [`KeyedStore::insert`] of typed scalars (`(member, scalar)` pairs, each of its scalar member's
    /// dtype, read-only members included): a new entry's values are written as they are, with no
    /// [`Value`] conversion (the path of `pool[key] = {name: number, ...}`); a present key's entry is
    /// rewritten as `insert` rewrites it. Every pair is checked before anything changes.
    ///
    /// # Errors
    /// As [`KeyedStore::insert`]; [`Error::WrongType`] unless each member is a scalar member of its
    /// scalar's dtype.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use compactstore::{Dtype, KeyedStore, Member, MemberType, Scalar, Schema, Store, Value};
    /// let schema = Arc::new(Schema::new(vec![Member::new("x", MemberType::Scalar(Dtype::I32))?])?);
    /// let mut pool: KeyedStore<i64> = KeyedStore::new(schema, 2)?;
    /// let (slot, _) = pool.insert_scalars(&5, &[(0, Scalar::I32(-1))])?;
    /// assert_eq!(pool.get(slot, 0)?, Value::Int(-1));
    /// assert!(pool.insert_scalars(&6, &[(0, Scalar::I64(1))]).is_err()); // another dtype
    /// assert_eq!(pool.insert_scalars(&5, &[(0, Scalar::I32(2))])?, (slot, true));
    /// assert_eq!((pool.len(), pool.get(slot, 0)?), (1, Value::Int(2)));
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    pub fn insert_scalars(
        &mut self,
        key: &K::Borrowed,
        values: &[(usize, crate::value::Scalar)],
    ) -> Result<(usize, bool)> {
        // As `insert`: refused by a read-only or in-place store, and a file's key index becomes the
        // store's own before a key is added.
        self.access().check_structure("inserting or replacing an entry")?;
        self.own_index()?;
        if let Some(proto) = self.store.chunks().first() {
            for &(m, x) in values {
                proto.column(m)?.check_scalar(x)?;
            }
        }
        if self.index_of(key).is_some() {
            let values: Vec<(usize, Value)> = values.iter().map(|&(m, x)| (m, x.to_value())).collect();
            return self.insert(key, &values);
        }
        self.insert_new(key, |store| store.add_scalars(values))
    }

    /// The entry of absent `key`, made in the lowest free slot by `add` (which checks its values before
    /// it allocates, and reports the slot), with every allocation the index needs made first.
    fn insert_new(
        &mut self,
        key: &K::Borrowed,
        add: impl FnOnce(&mut DynamicStore) -> Result<usize>,
    ) -> Result<(usize, bool)> {
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
            let more = words.saturating_sub(self.dirty_words().len());
            crate::alloc::reserve(self.dirty_mut(), more, DIRTY_WHAT)
        })();
        let slot = match prepared.and_then(|()| add(&mut self.store)) {
            Ok(slot) => slot,
            Err(e) => {
                // A write can fail after the store grew (a value's memory refused): drop the new chunk.
                self.store.truncate_empty(chunks);
                self.keys.truncate(self.store.chunks().len());
                return Err(e);
            }
        };
        let words = self.store.size().div_ceil(64);
        self.dirty_mut().resize(words, 0);
        self.keys.put(slot, raw);
        clear_bit(self.dirty_mut(), slot);
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
        let more = words.saturating_sub(self.dirty_words().len());
        crate::alloc::reserve(self.dirty_mut(), more, DIRTY_WHAT)?;
        self.dirty_mut().resize(words, 0);
        Ok(())
    }

    /// An independent copy in new buffers: the same keys, entries, slots and modified marks (object
    /// members share their objects). O(size + data): the table is rebuilt through the copied keys.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated.
    pub fn try_clone(&self) -> Result<KeyedStore<K>> {
        if self.file.is_some() {
            // A copy is in memory: its key column and hash table are built from the file's.
            let mut found = Vec::new();
            crate::alloc::reserve_exact(&mut found, self.len(), TABLE_WHAT)?;
            for s in self.store.indices() {
                let key = self
                    .key_at(s)
                    .ok_or_else(|| Error::Invariant(format!("slot {s} has no key")))?;
                found.push(key);
            }
            let dirty = crate::alloc::to_vec(self.dirty_words(), DIRTY_WHAT)?;
            let min = self.keys.compact_min();
            return KeyedStore::from_loaded(self.store.try_clone()?, found.iter().copied(), dirty, min)
                .map_err(|e| match e {
                    Error::Format(m) => Error::Invariant(m),
                    e => e,
                });
        }
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
            dirty: crate::alloc::to_vec(self.dirty_words(), DIRTY_WHAT)?,
            hasher,
            file: None,
            file_dirty: None,
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
        set_bit(self.dirty_mut(), slot);
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
        set_bit(self.dirty_mut(), slot);
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
        set_bit(self.dirty_mut(), slot);
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
            set_bit(self.dirty_mut(), slot);
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
            set_bit(self.dirty_mut(), i);
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
        K::from_raw(self.raw_key(slot)?)
    }

    /// `(key, slot)` of every entry, in slot order. O(size / 64 + len) for the whole iteration.
    pub fn iter(&self) -> impl Iterator<Item = (&K::Borrowed, usize)> + '_ {
        self.store
            .indices()
            .filter_map(move |s| Some((K::from_raw(self.raw_key(s)?)?, s)))
    }

    /// The keys, in slot order.
    pub fn keys(&self) -> impl Iterator<Item = &K::Borrowed> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Free the entry at occupied `slot`: table, key column, dirty bit, store.
    fn remove_slot(&mut self, slot: usize) -> Option<()> {
        self.access().check_structure("deleting an entry").ok()?;
        self.own_index().ok()?;
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
        clear_bit(self.dirty_mut(), slot);
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
        if self.access() != crate::Access::ReadWrite {
            return; // a mapped store's entries are the file's
        }
        self.file = None; // every key goes
                          // A dynamic store's reset cannot fail (only a chunk's can).
        let _ = self.store.reset();
        self.keys.clear();
        self.table.clear();
        let words = self.store.size().div_ceil(64);
        self.dirty_mut().truncate(words);
        self.dirty_mut().fill(0);
    }

    /// Reserve table room for `additional` more keys, so inserting them does not rehash.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the room cannot be allocated (nothing changes).
    pub fn reserve(&mut self, additional: usize) -> Result<()> {
        if self.access() == crate::Access::ReadWrite {
            self.own_index()?;
        }
        let (hasher, keys) = (&self.hasher, &self.keys);
        self.table
            .try_reserve(additional, |&s| slot_hash(hasher, keys, s))
            .map_err(|_| Error::out_of_memory(additional.saturating_mul(5), TABLE_WHAT))
    }

    /// Release the store's trailing chunks that hold no entry (always keeping one) with their keys.
    /// Returns how many were released.
    pub fn retract(&mut self) -> usize {
        if self.own_index().is_err() {
            return 0;
        }
        let n = self.store.retract();
        self.keys.truncate(self.store.chunks().len());
        let words = self.store.size().div_ceil(64);
        self.dirty_mut().truncate(words);
        n
    }

    /// Whether the entry at `slot` was written after its creation. O(1).
    #[must_use]
    pub fn is_modified(&self, slot: usize) -> bool {
        self.dirty_words()
            .get(slot / 64)
            .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    /// Slots of the entries written after their creation, ascending. O(size / 64 + modified).
    pub fn modified_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.dirty_words().iter().enumerate().flat_map(|(w, &word)| {
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
        if self.access() != crate::Access::ReadWrite {
            return; // a mapped store's marks are the file's
        }
        self.dirty_mut().fill(0);
    }

    /// Forget the modification of the given keys; absent keys are ignored. O(1) expected per key.
    pub fn clear_modified_keys<'a>(&mut self, keys: impl IntoIterator<Item = &'a K::Borrowed>) {
        if self.access() != crate::Access::ReadWrite {
            return; // a mapped store's marks are the file's
        }
        for key in keys {
            if let Some(slot) = self.index_of(key) {
                clear_bit(self.dirty_mut(), slot);
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
            + self.file.as_ref().map_or(0, |f| {
                f.table.len()
                    + f.keys
                        .iter()
                        .chain(&f.data)
                        .map(crate::column::AlignedBuf::len)
                        .sum::<usize>()
            })
            + self.dirty.capacity() * std::mem::size_of::<u64>()
            + self.file_dirty.as_ref().map_or(0, crate::column::AlignedBuf::len)
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
        if let Some(f) = &self.file {
            return self.validate_file_index(f);
        }
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
        self.validate_dirty()
    }
}

impl<K: Key> KeyedStore<K> {
    /// The modified marks' part of `validate`: one bit per slot, none on a free slot.
    fn validate_dirty(&self) -> Result<()> {
        if self.dirty_words().len() != self.store.size().div_ceil(64) {
            return Err(Error::Invariant(
                "dirty bitmap does not match the store size".into(),
            ));
        }
        if let Some(s) = self.modified_slots().find(|&s| !self.store.occupied(s)) {
            return Err(Error::Invariant(format!("free slot {s} is marked modified")));
        }
        Ok(())
    }

    /// `validate` of a store reading a file's key column and table in place: every entry has a valid
    /// key that finds its slot, the table holds exactly the entries, free slots are not modified.
    fn validate_file_index(&self, f: &FileIndex) -> Result<()> {
        if f.len != self.store.len() {
            return Err(Error::Invariant(format!(
                "the key table holds {} keys, the store {} entries",
                f.len,
                self.store.len()
            )));
        }
        for s in self.store.indices() {
            crate::interrupt::poll()?;
            let raw = self
                .raw_key(s)
                .ok_or_else(|| Error::Invariant(format!("slot {s} has no key")))?;
            if K::from_raw(raw).is_none() {
                return Err(Error::Invariant(format!(
                    "key at slot {s} is not a valid {}",
                    K::NAME
                )));
            }
            if self.file_find(f, raw) != Some(s) {
                return Err(Error::Invariant(format!("the key at slot {s} does not find it")));
            }
        }
        let used = f
            .buckets()
            .iter()
            .filter(|&&b| b != crate::file::format::EMPTY_BUCKET)
            .count();
        if used != f.len {
            return Err(Error::Invariant(format!(
                "{used} table buckets used for {} keys",
                f.len
            )));
        }
        self.validate_dirty()
    }
}

/// A key column and hash table of `store`'s entries, whose keys `keys` are in slot order (checked: one
/// per entry, no duplicate: a format error otherwise).
#[allow(clippy::type_complexity)]
fn build_index<'k, K: Key, Q: Borrow<K::Borrowed> + ?Sized + 'k>(
    store: &DynamicStore,
    keys: impl ExactSizeIterator<Item = &'k Q>,
    compact_min: usize,
) -> Result<(K::Column, HashTable<u32>, foldhash::fast::RandomState)> {
    let n = store.len();
    if keys.len() != n || n > MAX_KEYED_LEN {
        return Err(Error::Format(format!("{} keys for {n} entries", keys.len())));
    }
    let log2 = store.log2size();
    let mut kc = K::Column::new(log2, compact_min)?;
    kc.grow_to(store.chunks().len())?;
    let hasher = foldhash::fast::RandomState::default();
    let mut table: HashTable<u32> = HashTable::new();
    table
        .try_reserve(n, |&s| slot_hash(&hasher, &kc, s))
        .map_err(|_| Error::out_of_memory(n.saturating_mul(5), TABLE_WHAT))?;
    for (slot, q) in store.indices().zip(keys) {
        crate::interrupt::poll()?;
        let raw = K::to_raw(q.borrow());
        kc.prepare(raw, slot >> log2)?;
        kc.put(slot, raw);
        let h = hasher.hash_one(raw);
        let t = u32::try_from(slot).map_err(|_| Error::Format("a slot beyond u32".into()))?;
        match table.entry(
            h,
            |&s| kc.raw(s as usize) == Some(raw),
            |&s| slot_hash(&hasher, &kc, s),
        ) {
            TableEntry::Occupied(_) => {
                return Err(Error::Format(format!("the key {:?} is there twice", q.borrow())));
            }
            TableEntry::Vacant(e) => {
                e.insert(t);
            }
        }
    }
    Ok((kc, table, hasher))
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
mod tests;
