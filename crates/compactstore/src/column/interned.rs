//! `InternedColumn`: a small code per slot into one dictionary of distinct values shared by every chunk.
//!
//! ```text
//!   chunk 0 codes (u8):  [ 0 | 3 | 1 | 3 | ... ]     --+
//!   chunk 1 codes (u8):  [ 1 | 0 | NONE | ... ]      --+--> Arc<RwLock<Dictionary>>  (one per member per store)
//!                                                         code 1: "alpha" (refs 2)
//!                                                         code 2: free (reused by the next new value)
//!                                                         code 3: "gamma" (refs 2)
//!   code 0          the member's default (never in the dictionary, never counted: a new chunk is all
//!                   zeros and touches no page)
//!   code NONE       None, for an optional member whose default is not None: the largest value of the
//!                   chunk's code width (0xFF, 0xFFFF or u32::MAX; [`NONE_CODE`] outside the column)
//!   code c >= 1     dictionary value c
//! ```
//!
//! **Code width.** A chunk's codes start as one byte each and widen — to u16 when it must store code 255
//! or above, to u32 from 65,535 — by rewriting the chunk's codes once (O(chunk size), at most twice in a
//! chunk's life; a widening that cannot allocate fails the write and changes nothing). Chunks widen
//! independently: a store whose members hold a few hundred distinct values pays one or two bytes per slot,
//! not four. Freed codes are reused before new ones are made, so a dictionary that shrinks and regrows keeps
//! its codes small.
//!
//! Every value has exactly one code (the default is always 0, `None` is 0 when it is the default), so two
//! slots hold equal values exactly when they hold equal codes. The dictionary counts the slots holding
//! each code; a value no slot holds any more is removed and its code reused. A write interns the new value
//! before releasing the old one, so rewriting a slot with its own value never drops it.
//!
//! Sharing: the chunks of a [`crate::DynamicStore`] (and so of a [`crate::KeyedStore`]) hold clones of one
//! `Arc`. Cloning a column deep-copies its dictionary; a dynamic store's `clone` then makes its chunks share
//! the copy again, so a store's copy is independent of the original. Reads take the dictionary's read lock
//! (an atomic write to the lock word, the only write in a read path; it dirties one cache line of the
//! dictionary after `fork()`, not the codes).

use std::hash::BuildHasher;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::HashTable;

use super::view::VarKind;
use super::AlignedBuf;
use crate::error::{Error, Result};
use crate::value::Value;

/// The code of `None` in an optional interned member whose default is not `None`.
pub const NONE_CODE: u32 = u32::MAX;
/// The code of the member's default.
pub const DEFAULT_CODE: u32 = 0;

/// What a dictionary's memory is, in an [`Error::OutOfMemory`].
const DICT_WHAT: &str = "an interned member's dictionary";

/// The distinct values of one interned member of one store, with a reference count each.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    /// Value of code `c` at `c - 1`; a free code holds an empty value and refcount 0.
    values: Vec<Box<[u8]>>,
    refs: Vec<u64>,
    /// Free codes, reused last-freed first.
    free: Vec<u32>,
    /// Live codes, hashed by their value.
    table: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    /// Bytes of all live values.
    bytes: usize,
}

/// A dictionary shared by the chunks of a store.
pub type SharedDictionary = Arc<RwLock<Dictionary>>;

impl Dictionary {
    fn value_of(&self, code: u32) -> Option<&[u8]> {
        let i = (code as usize).checked_sub(1)?;
        match self.refs.get(i) {
            Some(&r) if r > 0 => self.values.get(i).map(|v| &**v),
            _ => None,
        }
    }

    /// The value of live code `code`, if it is one.
    #[must_use]
    pub fn get(&self, code: u32) -> Option<&[u8]> {
        self.value_of(code)
    }

    /// The code of `bytes`, if it is in the dictionary. O(1) expected.
    #[must_use]
    pub fn lookup(&self, bytes: &[u8]) -> Option<u32> {
        let h = self.hasher.hash_one(bytes);
        self.table.find(h, |&c| self.value_of(c) == Some(bytes)).copied()
    }

    /// Number of distinct values.
    #[must_use]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no value is interned.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// One past the largest code ever handed out: live codes are below it. O(1).
    #[cfg(feature = "arrow")]
    pub(crate) fn code_end(&self) -> usize {
        self.values.len() + 1
    }

    /// The number of slots holding `code` (0 for a free or unknown code).
    #[must_use]
    pub fn refcount(&self, code: u32) -> u64 {
        (code as usize)
            .checked_sub(1)
            .and_then(|i| self.refs.get(i).copied())
            .unwrap_or(0)
    }

    /// Bytes held: the value bytes, a 24-byte entry (box + refcount) per code, the table and free list.
    #[must_use]
    pub fn nbytes(&self) -> usize {
        self.bytes
            + self.values.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.refs.capacity() * std::mem::size_of::<u64>()
            + self.free.capacity() * std::mem::size_of::<u32>()
            + self.table.allocation_size()
    }

    /// The code the next new value will get.
    fn next_code(&self) -> u32 {
        match self.free.last() {
            Some(&c) => c,
            None => u32::try_from(self.values.len() + 1).unwrap_or(NONE_CODE - 1),
        }
    }

    /// Whether a new value could be interned (a code is free or can be made).
    fn has_room(&self) -> bool {
        !self.free.is_empty() || self.values.len() < (NONE_CODE - 1) as usize
    }

    /// Make room for one more value in the dictionary's own vectors and table (not the value's bytes),
    /// so that interning it allocates only those bytes.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the room cannot be allocated (nothing changes).
    fn reserve_one(&mut self) -> Result<()> {
        if self.free.is_empty() {
            crate::alloc::reserve(&mut self.values, 1, DICT_WHAT)?;
            crate::alloc::reserve(&mut self.refs, 1, DICT_WHAT)?;
        }
        let (values, hasher) = (&self.values, &self.hasher);
        self.table
            .try_reserve(1, |&k| {
                hasher.hash_one(values.get(k as usize - 1).map_or(&[][..], |v| &**v))
            })
            .map_err(|_| Error::out_of_memory(self.table.capacity().saturating_mul(10), DICT_WHAT))
    }

    /// The code of `bytes` with one more reference, interning it if new. O(len) expected.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the dictionary already holds `u32::MAX - 1` distinct values;
    /// [`Error::OutOfMemory`] if a new value cannot be stored (nothing changes).
    fn acquire(&mut self, bytes: &[u8]) -> Result<u32> {
        if let Some(c) = self.lookup(bytes) {
            if let Some(r) = self.refs.get_mut(c as usize - 1) {
                *r += 1;
            }
            return Ok(c);
        }
        if !self.has_room() {
            return Err(Error::InvalidArgument(
                "an interned member holds u32::MAX - 1 distinct values".into(),
            ));
        }
        // Every allocation before any change.
        self.reserve_one()?;
        let value = crate::alloc::boxed(bytes, DICT_WHAT)?;
        let c = match self.free.pop() {
            Some(c) => {
                let i = c as usize - 1;
                self.values[i] = value;
                self.refs[i] = 1;
                c
            }
            None => {
                self.values.push(value);
                self.refs.push(1);
                // values.len() < NONE_CODE - 1, checked by has_room.
                u32::try_from(self.values.len()).unwrap_or(NONE_CODE - 1)
            }
        };
        self.bytes += bytes.len();
        let h = self.hasher.hash_one(bytes);
        let (values, hasher) = (&self.values, &self.hasher);
        self.table.insert_unique(h, c, |&k| {
            hasher.hash_one(values.get(k as usize - 1).map_or(&[][..], |v| &**v))
        });
        Ok(c)
    }

    /// A deep copy in new buffers. O(values + bytes).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated.
    pub fn try_clone(&self) -> Result<Dictionary> {
        let mut values = Vec::new();
        crate::alloc::reserve_exact(&mut values, self.values.capacity(), DICT_WHAT)?;
        for v in &self.values {
            values.push(crate::alloc::boxed(v, DICT_WHAT)?);
        }
        let mut table = HashTable::new();
        let hasher = self.hasher.clone();
        let hash = |k: &u32| hasher.hash_one(values.get(*k as usize - 1).map_or(&[][..], |v| &**v));
        table
            .try_reserve(self.table.len(), hash)
            .map_err(|_| Error::out_of_memory(self.table.allocation_size(), DICT_WHAT))?;
        for &c in &self.table {
            table.insert_unique(hash(&c), c, hash);
        }
        Ok(Dictionary {
            values,
            refs: crate::alloc::clone_vec(&self.refs, DICT_WHAT)?,
            free: crate::alloc::clone_vec(&self.free, DICT_WHAT)?,
            table,
            hasher,
            bytes: self.bytes,
        })
    }

    /// Drop one reference to `code` (codes 0 and [`NONE_CODE`] are not counted); a value left with none
    /// is removed and its code freed.
    fn release(&mut self, code: u32) {
        let Some(i) = (code as usize).checked_sub(1) else {
            return;
        };
        let Some(r) = self.refs.get_mut(i) else {
            return;
        };
        if *r == 0 {
            return;
        }
        *r -= 1;
        if *r > 0 {
            return;
        }
        let old = std::mem::take(&mut self.values[i]);
        self.bytes -= old.len();
        let h = self.hasher.hash_one(&*old);
        if let Ok(e) = self.table.find_entry(h, |&c| c == code) {
            e.remove();
        }
        self.free.push(code);
    }

    /// Check the dictionary against `counts` (slots holding each code, all chunks together): refcounts
    /// equal the counts, free codes are in the free list, every live value is found under its code.
    ///
    /// # Errors
    /// [`Error::Invariant`] naming the first broken one.
    pub fn validate(&self, counts: &[u64]) -> Result<()> {
        if self.values.len() != self.refs.len() {
            return Err(Error::Invariant("dictionary values and refcounts differ".into()));
        }
        let mut live = 0;
        let mut bytes = 0;
        for (i, &r) in self.refs.iter().enumerate() {
            let c = i as u32 + 1;
            let n = counts.get(c as usize).copied().unwrap_or(0);
            if r != n {
                return Err(Error::Invariant(format!(
                    "dictionary code {c} has refcount {r}, {n} slots hold it"
                )));
            }
            if r > 0 {
                live += 1;
                bytes += self.values[i].len();
                if self.lookup(&self.values[i]) != Some(c) {
                    return Err(Error::Invariant(format!("dictionary value {c} is not found")));
                }
            } else if !self.free.contains(&c) {
                return Err(Error::Invariant(format!("dictionary code {c} is lost")));
            }
        }
        if counts.len() > self.refs.len() + 1 {
            return Err(Error::Invariant(
                "a slot holds a code beyond the dictionary".into(),
            ));
        }
        if live != self.table.len() || live + self.free.len() != self.values.len() || bytes != self.bytes {
            return Err(Error::Invariant("dictionary accounting is off".into()));
        }
        Ok(())
    }
}

impl Dictionary {
    /// Save the dictionary: value offsets (u64, one more than values), the values' bytes, the refcounts
    /// (u64) and the free codes (u32).
    pub(crate) fn save(&self, w: &mut crate::file::format::Writer<'_>) {
        use crate::file::format::Piece;
        let mut offsets = Vec::with_capacity((self.values.len() + 1) * 8);
        let mut data = Vec::with_capacity(self.bytes);
        offsets.extend_from_slice(&0u64.to_le_bytes());
        for v in &self.values {
            data.extend_from_slice(v);
            offsets.extend_from_slice(&(data.len() as u64).to_le_bytes());
        }
        w.buf(Piece::Owned(offsets));
        w.buf(Piece::Owned(data));
        w.buf(Piece::Owned(bytemuck::cast_slice(&self.refs).to_vec()));
        w.buf(Piece::Owned(bytemuck::cast_slice(&self.free).to_vec()));
    }

    /// A dictionary from a loaded file's buffers, its hash table rebuilt. O(distinct values). Checks
    /// that the offsets, refcounts and free codes agree; refcounts against the slots are `validate`'s.
    pub(crate) fn load(r: &mut crate::file::format::Reader<'_>) -> Result<Dictionary> {
        use crate::file::format::{bad, words};
        let offsets: Vec<u64> = words(r.any_buf("a dictionary's offsets")?.bytes(), "dictionary offsets")?;
        let data = r.any_buf("a dictionary's values")?;
        let refs: Vec<u64> = words(
            r.any_buf("a dictionary's refcounts")?.bytes(),
            "dictionary refcounts",
        )?;
        let free: Vec<u32> = words(
            r.any_buf("a dictionary's free codes")?.bytes(),
            "dictionary free codes",
        )?;
        let n = refs.len();
        if offsets.len() != n + 1 || n >= (NONE_CODE - 1) as usize {
            return Err(bad("dictionary offsets and refcounts differ"));
        }
        let mut d = Dictionary {
            hasher: foldhash::fast::FixedState::default(),
            ..Dictionary::default()
        };
        d.values.reserve_exact(n);
        let bytes = data.bytes();
        for (i, pair) in offsets.windows(2).enumerate() {
            crate::interrupt::poll_n(64)?;
            let (a, b) = (pair[0] as usize, pair[1] as usize);
            let v = bytes
                .get(a..b)
                .ok_or_else(|| bad(format!("dictionary value {} out of bounds", i + 1)))?;
            if refs[i] == 0 {
                d.values.push(Box::default());
                continue;
            }
            d.values.push(crate::alloc::boxed(v, DICT_WHAT)?);
        }
        let mut is_free = vec![false; n];
        for &c in &free {
            let i = (c as usize).wrapping_sub(1);
            if i >= n || refs[i] != 0 || std::mem::replace(&mut is_free[i], true) {
                return Err(bad(format!("dictionary free code {c} is not free")));
            }
        }
        if refs.iter().zip(&is_free).any(|(&r, &f)| r == 0 && !f) {
            return Err(bad("a dictionary code is neither used nor free"));
        }
        d.refs = refs;
        d.free = free;
        let (values, hasher) = (&d.values, &d.hasher);
        let hash = |k: &u32| hasher.hash_one(values.get(*k as usize - 1).map_or(&[][..], |v| &**v));
        for i in 0..n {
            if d.refs[i] == 0 {
                continue;
            }
            let c = i as u32 + 1;
            let v = &*d.values[i];
            let h = hasher.hash_one(v);
            if d.table
                .find(h, |&k| values.get(k as usize - 1).map(|x| &**x) == Some(v))
                .is_some()
            {
                return Err(bad(format!("dictionary value {c} is there twice")));
            }
            d.table.insert_unique(h, c, hash);
            d.bytes += v.len();
        }
        Ok(d)
    }
}

fn read(d: &SharedDictionary) -> RwLockReadGuard<'_, Dictionary> {
    d.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(d: &SharedDictionary) -> RwLockWriteGuard<'_, Dictionary> {
    d.write().unwrap_or_else(PoisonError::into_inner)
}

/// An interned member's storage in one chunk: a code per slot (1, 2 or 4 bytes: see the module docs) and
/// the store's shared dictionary.
#[derive(Debug)]
pub struct InternedColumn {
    kind: VarKind,
    optional: bool,
    size: usize,
    /// Bytes per code: 1, 2 or 4.
    width: usize,
    codes: AlignedBuf,
    dict: SharedDictionary,
    /// The member's default (code 0): bytes, or `None` for an optional member without a default.
    default: Option<Vec<u8>>,
}

impl InternedColumn {
    /// A copy with its own dictionary (a deep copy), in new buffers: writes to the copy never reach the
    /// original. O(size + dictionary).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated.
    pub fn try_clone(&self) -> Result<InternedColumn> {
        self.try_clone_with(Arc::new(RwLock::new(read(&self.dict).try_clone()?)))
    }

    /// A copy of the codes sharing `dict` (a copy of this column's dictionary, holding the same values
    /// under the same codes). O(size).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated.
    pub(crate) fn try_clone_with(&self, dict: SharedDictionary) -> Result<InternedColumn> {
        Ok(InternedColumn {
            kind: self.kind,
            optional: self.optional,
            size: self.size,
            width: self.width,
            codes: self.codes.try_clone()?,
            dict,
            default: self.default.clone(),
        })
    }
}

impl Clone for InternedColumn {
    /// A copy with its own dictionary (a deep copy): writes to the copy never reach the original.
    ///
    /// # Panics
    /// If the copy cannot be allocated; [`InternedColumn::try_clone`] is the fallible twin.
    fn clone(&self) -> InternedColumn {
        InternedColumn {
            kind: self.kind,
            optional: self.optional,
            size: self.size,
            width: self.width,
            codes: self.codes.clone(),
            dict: Arc::new(RwLock::new(read(&self.dict).clone())),
            default: self.default.clone(),
        }
    }
}

impl InternedColumn {
    /// A column of `size` slots, all at the default (code 0: no page is touched), sharing `dict` if given
    /// (the dictionary of another chunk of the same store) or with a new dictionary. `default` is the
    /// member's canonical default (`Value::Null` only when `optional`). Allocates one byte per slot (more
    /// only when the codes widen).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the codes cannot be allocated; [`Error::WrongType`] for a default of
    /// the wrong kind.
    pub fn try_new(
        kind: VarKind,
        optional: bool,
        size: usize,
        default: &Value,
        dict: Option<SharedDictionary>,
    ) -> Result<InternedColumn> {
        let default = match default {
            Value::Null if optional => None,
            v => Some(crate::alloc::to_vec(
                kind.bytes_of(v)?,
                "an interned member's default",
            )?),
        };
        Ok(InternedColumn {
            kind,
            optional,
            size,
            width: 1,
            codes: AlignedBuf::try_zeroed(size)?,
            dict: dict.unwrap_or_default(),
            default,
        })
    }

    /// Save the column's codes (its dictionary is saved once per store).
    pub(crate) fn save<'a>(&'a self, w: &mut crate::file::format::Writer<'a>) {
        w.u8(self.width as u8);
        w.buf(crate::file::format::Piece::Borrowed(self.codes.bytes()));
    }

    /// A column of `size` slots over a loaded file's codes, sharing `dict`.
    pub(crate) fn load(
        kind: VarKind,
        optional: bool,
        size: usize,
        default: &Value,
        dict: SharedDictionary,
        r: &mut crate::file::format::Reader<'_>,
    ) -> Result<InternedColumn> {
        let width = usize::from(r.u8()?);
        if !matches!(width, 1 | 2 | 4) {
            return Err(Error::Format(format!("a code width of {width}")));
        }
        let bytes = size
            .checked_mul(width)
            .ok_or_else(|| Error::Format("too many codes".into()))?;
        let codes = r.buf(bytes, "an interned column's codes")?;
        let mut c = InternedColumn::try_new(kind, optional, 0, default, Some(dict))?;
        c.size = size;
        c.width = width;
        c.codes = codes;
        Ok(c)
    }

    /// The shared dictionary.
    #[must_use]
    pub fn dictionary(&self) -> &SharedDictionary {
        &self.dict
    }

    /// Number of slots.
    #[must_use]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes per code in this chunk: 1, 2 or 4 (see the module docs).
    #[must_use]
    pub fn code_width(&self) -> usize {
        self.width
    }

    /// The code at `slot` (`NONE_CODE` for `None` whatever the width), if in range.
    #[must_use]
    #[inline]
    pub fn code(&self, slot: usize) -> Option<u32> {
        if slot >= self.size {
            return None;
        }
        decode(self.width, self.codes.bytes(), slot)
    }

    /// The codes, one per slot, as `u32` (`NONE_CODE` for `None`).
    pub fn codes(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.size).filter_map(|slot| decode(self.width, self.codes.bytes(), slot))
    }

    /// Make every code up to `code` storable, widening this chunk's codes if needed. Nothing changes on
    /// error.
    fn fit(&mut self, code: u32) -> Result<()> {
        if code == NONE_CODE || code < none_of(self.width) {
            return Ok(());
        }
        let width = if code < none_of(2) { 2 } else { 4 };
        let bytes = self
            .size
            .checked_mul(width)
            .ok_or_else(|| Error::out_of_memory(usize::MAX, "an interned member's codes"))?;
        let mut wide = AlignedBuf::try_zeroed(bytes)?;
        for slot in 0..self.size {
            let c = decode(self.width, self.codes.bytes(), slot).unwrap_or(DEFAULT_CODE);
            if c != DEFAULT_CODE {
                encode(width, wide.bytes_mut(), slot, c);
            }
        }
        self.codes = wide;
        self.width = width;
        Ok(())
    }

    /// Store `code` (which fits: see [`InternedColumn::fit`]) at `slot` (in range).
    fn put(&mut self, slot: usize, code: u32) {
        encode(self.width, self.codes.bytes_mut(), slot, code);
    }

    /// Bytes held by the codes (the dictionary is counted once per store, by the store).
    #[must_use]
    pub fn nbytes(&self) -> usize {
        self.codes.capacity_bytes()
    }

    /// Bytes held by the dictionary.
    #[must_use]
    pub fn dictionary_nbytes(&self) -> usize {
        read(&self.dict).nbytes()
    }

    fn code_at(&self, slot: usize) -> Result<u32> {
        match self.code(slot) {
            Some(x) => Ok(x),
            None => Err(Error::IndexOutOfRange {
                index: slot as i64,
                len: self.size,
            }),
        }
    }

    /// The code `v` would have without interning it: `Ok(None)` for a value not in the dictionary.
    ///
    /// # Errors
    /// [`Error::WrongType`] for a value of the wrong kind (or `Null` for a member that is not optional).
    pub fn code_of(&self, v: &Value) -> Result<Option<u32>> {
        match v {
            Value::Null if self.optional => Ok(Some(if self.default.is_none() {
                DEFAULT_CODE
            } else {
                NONE_CODE
            })),
            v => {
                let b = self.kind.bytes_of(v)?;
                if self.default.as_deref() == Some(b) {
                    return Ok(Some(DEFAULT_CODE));
                }
                Ok(read(&self.dict).lookup(b))
            }
        }
    }

    /// The value at `slot`. O(len).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot >= size()`.
    pub fn get(&self, slot: usize) -> Result<Value> {
        let code = self.code_at(slot)?;
        let bytes = match code {
            DEFAULT_CODE => self.default.clone(),
            NONE_CODE => None,
            c => Some(crate::alloc::to_vec(
                read(&self.dict)
                    .get(c)
                    .ok_or_else(|| Error::Invariant(format!("slot {slot} holds dead code {c}")))?,
                "a copy of an interned value",
            )?),
        };
        Ok(bytes.map_or(Value::Null, |b| self.kind.value(b)))
    }

    /// Write `v` at `slot`: intern it (or take one more reference), then release the old value. O(len)
    /// expected. Nothing changes on error.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`]; [`Error::WrongType`] for a value of the wrong kind or `Null` for a
    /// member that is not optional; [`Error::InvalidArgument`] if the dictionary is full;
    /// [`Error::OutOfMemory`] if the value or wider codes cannot be allocated.
    pub fn set(&mut self, slot: usize, v: &Value) -> Result<()> {
        let old = self.code_at(slot)?;
        let new = match self.code_of(v)? {
            Some(c @ (DEFAULT_CODE | NONE_CODE)) => c,
            _ => {
                let b = self.kind.bytes_of(v)?;
                write(&self.dict).acquire(b)?
            }
        };
        if let Err(e) = self.fit(new) {
            write(&self.dict).release(new);
            return Err(e);
        }
        write(&self.dict).release(old);
        self.put(slot, new);
        Ok(())
    }

    /// Widen this chunk's codes, if needed, so that writing `v` needs no allocation: a caller writing
    /// several checked values (one entry's members) reserves first, so the writes cannot fail halfway.
    /// Changes no value.
    ///
    /// # Errors
    /// [`Error::WrongType`] for a value of the wrong kind; [`Error::OutOfMemory`] if the wider codes or the
    /// dictionary's room cannot be allocated.
    pub fn reserve_for(&mut self, v: &Value) -> Result<()> {
        let code = match self.code_of(v)? {
            Some(c) => c,
            None => {
                let mut d = write(&self.dict);
                d.reserve_one()?;
                d.next_code()
            }
        };
        self.fit(code)
    }

    /// Put the default back at `slot`, releasing the old value. O(1).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot >= size()`.
    pub fn reset_slot(&mut self, slot: usize) -> Result<()> {
        let old = self.code_at(slot)?;
        write(&self.dict).release(old);
        self.put(slot, DEFAULT_CODE);
        Ok(())
    }

    /// Release every slot's value and put the default everywhere. O(size).
    pub fn reset_all(&mut self) {
        self.release_all();
        self.codes.bytes_mut().fill(0);
    }

    /// Release every slot's value from the dictionary without touching the codes: for a chunk about to
    /// be dropped. O(size).
    pub fn release_all(&mut self) {
        let mut d = write(&self.dict);
        for c in (0..self.size).filter_map(|slot| decode(self.width, self.codes.bytes(), slot)) {
            d.release(c);
        }
    }

    /// Add the number of slots holding each code to `counts` (indexed by code; `counts[0]` counts the
    /// default). Reports a code that is neither the default, a dictionary code nor an allowed `None`.
    ///
    /// # Errors
    /// [`Error::Invariant`] for a `NONE_CODE` in a member that cannot hold it.
    pub fn count_codes(&self, counts: &mut Vec<u64>) -> Result<()> {
        for (slot, c) in self.codes().enumerate() {
            crate::interrupt::poll()?;
            if c == NONE_CODE {
                if !self.optional || self.default.is_none() {
                    return Err(Error::Invariant(format!("slot {slot} holds a bad None code")));
                }
                continue;
            }
            let i = c as usize;
            if counts.len() <= i {
                counts.resize(i + 1, 0);
            }
            counts[i] += 1;
        }
        Ok(())
    }
}

/// The `None` code of a chunk whose codes are `width` bytes wide.
const fn none_of(width: usize) -> u32 {
    match width {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => NONE_CODE,
    }
}

/// The code at `slot` of `bytes` holding `width`-byte codes (`NONE_CODE` for the width's `None`).
#[inline]
fn decode(width: usize, bytes: &[u8], slot: usize) -> Option<u32> {
    let raw = match width {
        1 => u32::from(*bytes.get(slot)?),
        2 => u32::from(*bytemuck::cast_slice::<u8, u16>(bytes).get(slot)?),
        _ => *bytemuck::cast_slice::<u8, u32>(bytes).get(slot)?,
    };
    Some(if raw == none_of(width) { NONE_CODE } else { raw })
}

/// Write `code` (below the width's `None`, or `NONE_CODE`) at `slot` of `bytes`; out of range does nothing.
#[inline]
fn encode(width: usize, bytes: &mut [u8], slot: usize, code: u32) {
    let code = if code == NONE_CODE { none_of(width) } else { code };
    match width {
        1 => {
            if let (Some(b), Ok(c)) = (bytes.get_mut(slot), u8::try_from(code)) {
                *b = c;
            }
        }
        2 => {
            if let (Some(b), Ok(c)) = (
                bytemuck::cast_slice_mut::<u8, u16>(bytes).get_mut(slot),
                u16::try_from(code),
            ) {
                *b = c;
            }
        }
        _ => {
            if let Some(b) = bytemuck::cast_slice_mut::<u8, u32>(bytes).get_mut(slot) {
                *b = code;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(optional: bool, default: Value) -> InternedColumn {
        InternedColumn::try_new(VarKind::Str, optional, 4, &default, None).unwrap()
    }

    fn check(cols: &[&InternedColumn]) {
        let mut counts = Vec::new();
        for c in cols {
            c.count_codes(&mut counts).unwrap();
        }
        read(cols[0].dictionary()).validate(&counts).unwrap();
    }

    #[test]
    fn values_are_shared_counted_and_reclaimed() {
        let mut a = col(false, Value::from(""));
        let mut b = InternedColumn::try_new(
            VarKind::Str,
            false,
            4,
            &Value::from(""),
            Some(Arc::clone(a.dictionary())),
        )
        .unwrap();
        a.set(0, &Value::from("alpha")).unwrap();
        b.set(1, &Value::from("alpha")).unwrap();
        a.set(1, &Value::from("beta")).unwrap();
        assert_eq!(read(a.dictionary()).len(), 2);
        assert_eq!(b.get(1).unwrap(), Value::from("alpha"));
        assert_eq!(a.code(0), b.code(1));
        check(&[&a, &b]);
        a.set(1, &Value::from("beta")).unwrap(); // rewriting a value with itself keeps it
        assert_eq!(a.get(1).unwrap(), Value::from("beta"));
        let beta = a.code(1).unwrap();
        a.reset_slot(1).unwrap();
        assert_eq!(read(a.dictionary()).len(), 1, "beta is reclaimed");
        a.set(2, &Value::from("gamma")).unwrap();
        assert_eq!(a.code(2), Some(beta), "its code is reused");
        a.set(3, &Value::from("")).unwrap();
        assert_eq!(a.code(3), Some(DEFAULT_CODE));
        check(&[&a, &b]);
        b.reset_all();
        a.reset_all();
        assert!(read(a.dictionary()).is_empty());
        check(&[&a, &b]);
    }

    #[test]
    fn optional_codes_and_wrong_types() {
        let mut c = col(true, Value::Null);
        assert_eq!(c.get(0).unwrap(), Value::Null);
        c.set(0, &Value::from("x")).unwrap();
        c.set(0, &Value::Null).unwrap();
        assert_eq!(c.code(0), Some(DEFAULT_CODE));
        let mut d = col(true, Value::from("dflt"));
        d.set(1, &Value::Null).unwrap();
        assert_eq!((d.code(1), d.get(1).unwrap()), (Some(NONE_CODE), Value::Null));
        assert_eq!(d.get(0).unwrap(), Value::from("dflt"));
        let mut e = col(false, Value::from(""));
        e.set(0, &Value::from("keep")).unwrap();
        for bad in [Value::Null, Value::Bytes(b"keep".to_vec()), Value::Int(1)] {
            assert!(matches!(e.set(0, &bad), Err(Error::WrongType { .. })));
        }
        assert!(e.set(4, &Value::from("x")).is_err());
        assert_eq!(e.get(0).unwrap(), Value::from("keep"));
        assert_eq!(
            read(e.dictionary()).refcount(1),
            1,
            "failed writes change no refcount"
        );
        check(&[&c]);
        check(&[&d]);
        check(&[&e]);
    }

    #[test]
    fn codes_widen_from_one_byte_to_two_to_four_keeping_every_value() {
        let n = 70_000;
        let mut c = InternedColumn::try_new(VarKind::Str, true, n, &Value::from("dflt"), None).unwrap();
        assert_eq!((c.code_width(), c.nbytes()), (1, n));
        c.set(0, &Value::Null).unwrap();
        c.set(1, &Value::from("dflt")).unwrap();
        let want = |i: usize| match i {
            0 => Value::Null,
            1 => Value::from("dflt"),
            i => Value::Str(format!("v{i}")),
        };
        let mut widths = Vec::new();
        for i in 2..n {
            c.set(i, &want(i)).unwrap();
            if widths.last() != Some(&c.code_width()) {
                widths.push(c.code_width());
                // the codes written so far survive each widening, None and the default included
                for j in (0..=i).step_by(97).chain([0, 1, i - 1, i]) {
                    assert_eq!(
                        c.get(j).unwrap(),
                        want(j),
                        "slot {j} after widening to {}",
                        c.code_width()
                    );
                }
            }
        }
        assert_eq!(widths, [1, 2, 4]);
        assert_eq!(c.code(0), Some(NONE_CODE));
        assert_eq!(c.nbytes(), 4 * n);
        check(&[&c]);
        // a chunk sharing the dictionary stays narrow until it stores a wide code
        let mut d = InternedColumn::try_new(
            VarKind::Str,
            true,
            4,
            &Value::from("dflt"),
            Some(Arc::clone(c.dictionary())),
        )
        .unwrap();
        d.set(0, &Value::Null).unwrap();
        d.set(1, &Value::from("v2")).unwrap();
        assert_eq!(d.code_width(), 1);
        d.set(2, &Value::from("v69999")).unwrap();
        assert_eq!(d.code_width(), 4);
        assert_eq!(
            (d.get(0).unwrap(), d.get(1).unwrap(), d.get(2).unwrap()),
            (Value::Null, Value::from("v2"), Value::from("v69999"))
        );
        check(&[&c, &d]);
    }

    #[test]
    fn reserve_for_widens_before_the_write_and_changes_no_value() {
        let mut c = InternedColumn::try_new(VarKind::Str, false, 300, &Value::from(""), None).unwrap();
        for i in 0..254 {
            c.set(i, &Value::Str(format!("v{i}"))).unwrap();
        }
        assert_eq!(c.code_width(), 1);
        c.reserve_for(&Value::from("v3")).unwrap(); // an existing value: code 4 fits
        c.reserve_for(&Value::from("")).unwrap(); // the default
        assert_eq!(c.code_width(), 1);
        c.reserve_for(&Value::from("new")).unwrap(); // would get code 255
        assert_eq!(c.code_width(), 2);
        assert_eq!(read(c.dictionary()).len(), 254, "reserving interns nothing");
        assert_eq!(
            (c.get(0).unwrap(), c.get(254).unwrap()),
            (Value::from("v0"), Value::from(""))
        );
        assert!(matches!(
            c.reserve_for(&Value::Int(1)),
            Err(Error::WrongType { .. })
        ));
        check(&[&c]);
    }

    #[test]
    fn code_255_is_not_none_in_a_one_byte_chunk() {
        let mut c = InternedColumn::try_new(VarKind::Bytes, true, 300, &Value::Bytes(vec![1]), None).unwrap();
        for i in 0..255 {
            c.set(i, &Value::Bytes(vec![2, i as u8])).unwrap();
        }
        assert_eq!((c.code(254), c.code_width()), (Some(255), 2));
        assert_eq!(c.get(254).unwrap(), Value::Bytes(vec![2, 254]));
        c.set(299, &Value::Null).unwrap();
        assert_eq!(c.code(299), Some(NONE_CODE));
        check(&[&c]);
    }

    #[test]
    fn clone_deep_copies_the_dictionary() {
        let mut a = col(false, Value::from(""));
        a.set(0, &Value::from("x")).unwrap();
        let mut b = a.clone();
        b.set(0, &Value::from("y")).unwrap();
        assert_eq!(a.get(0).unwrap(), Value::from("x"));
        assert_eq!(read(a.dictionary()).len(), 1);
        check(&[&a]);
        check(&[&b]);
    }
}
