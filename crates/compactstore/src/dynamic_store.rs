//! `DynamicStore`: a list of static stores of `2^k` slots that grows a chunk at a time.
//!
//! ```text
//!   global index = chunk << k | offset        (k = log2size)
//!   chunks: [ StaticStore(2^k) ][ StaticStore(2^k) ] ...   growth appends; nothing ever moves
//! ```

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::schema::Schema;
use crate::static_store::{Access, StaticStore};
use crate::store::{chunk_mut, Internal, Store};
use crate::value::{Scalar, Value};

/// The largest supported `log2size` (chunks of 2^31 slots).
pub const MAX_LOG2SIZE: u32 = 31;

/// The default `log2size` (chunks of 2048 slots).
pub const DEFAULT_LOG2SIZE: u32 = 11;

/// A store that grows by appending chunks of `2^log2size` slots and never moves existing data.
///
/// Allocation is lowest-free-first across all chunks, which keeps entries dense at the front so that
/// [`DynamicStore::retract`] can release the tail.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use compactstore::{DynamicStore, Dtype, Member, MemberType, Schema, Store, Value};
/// let schema = Arc::new(Schema::new(vec![Member::new("x", MemberType::Scalar(Dtype::F64))?])?);
/// let mut d = DynamicStore::new(schema, 2)?;          // chunks of 4 slots
/// for k in 0..9 {
///     let i = d.next_index()?;
///     d.set(i, 0, &Value::Float(f64::from(k)))?;
/// }
/// assert_eq!((d.chunks().len(), d.size()), (3, 12));
/// for i in 4..9 {
///     d.remove(i)?;
/// }
/// assert_eq!(d.retract(), 2);                         // two empty trailing chunks released
/// assert_eq!(d.get(3, 0)?, Value::Float(3.0));
/// # Ok::<(), compactstore::Error>(())
/// ```
#[derive(Debug)]
pub struct DynamicStore {
    schema: Arc<Schema>,
    log2size: u32,
    chunks: Vec<StaticStore>,
    len: usize,
    last_index: Option<usize>,
    /// No chunk below this one has a free slot.
    free_chunk: usize,
    /// Generation new chunks start at: above every generation of a chunk dropped so far, so a view of
    /// a dropped slot never sees a later entry in its place.
    next_base: u32,
    /// See [`Store::changes`].
    changes: u64,
}

impl DynamicStore {
    /// An empty dynamic store with one chunk of `2^log2size` slots.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `log2size > MAX_LOG2SIZE`; [`Error::OutOfMemory`] if the first chunk
    /// cannot be allocated.
    pub fn new(schema: Arc<Schema>, log2size: u32) -> Result<DynamicStore> {
        DynamicStore::new_from(schema, log2size, 0)
    }

    fn new_from(schema: Arc<Schema>, log2size: u32, base: u32) -> Result<DynamicStore> {
        check_log2size(log2size)?;
        let first =
            StaticStore::try_new_from(Arc::clone(&schema), 1 << log2size, base, None, true)?.make_chunk();
        Ok(DynamicStore {
            schema,
            log2size,
            chunks: vec![first],
            len: 0,
            last_index: None,
            free_chunk: 0,
            next_base: base,
            changes: 0,
        })
    }

    /// Record that `chunk` is being dropped: later chunks start above its generations.
    fn forget(next_base: &mut u32, chunk: &StaticStore) {
        *next_base = (*next_base).max(chunk.slots().max_generation().wrapping_add(1));
    }

    /// `log2` of the chunk size.
    #[must_use]
    pub fn log2size(&self) -> u32 {
        self.log2size
    }

    /// What the store may write ([`Access`]): its chunks', which all have the same.
    #[must_use]
    pub fn access(&self) -> Access {
        self.chunks.first().map_or(Access::ReadWrite, StaticStore::access)
    }

    /// A store from its parts (a loaded file's); the caller checked them.
    pub(crate) fn from_parts(
        schema: Arc<Schema>,
        log2size: u32,
        chunks: Vec<StaticStore>,
        last_index: Option<usize>,
        next_base: u32,
    ) -> DynamicStore {
        let len = chunks.iter().map(StaticStore::len).sum();
        let free_chunk = chunks
            .iter()
            .position(|c| c.space() > 0)
            .unwrap_or(chunks.len().saturating_sub(1));
        DynamicStore {
            schema,
            log2size,
            chunks: chunks.into_iter().map(StaticStore::make_chunk).collect(),
            len,
            last_index,
            free_chunk,
            next_base,
            changes: 0,
        }
    }

    pub(crate) fn next_base(&self) -> u32 {
        self.next_base
    }

    /// Chunk `c`, mutably: its members can be written through the store's checked calls (those of
    /// [`Store`], which refuse read-only members), but it refuses to allocate, free or reset slots
    /// ([`Error::ChunkAllocation`]): only this store may, as it counts the entries of all its chunks. O(1).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `c` is not a chunk position.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use compactstore::{DynamicStore, Dtype, Error, Member, MemberType, Schema, Store, Value};
    /// let schema = Arc::new(Schema::new(vec![Member::new("x", MemberType::Scalar(Dtype::I32))?])?);
    /// let mut d = DynamicStore::new(schema, 1)?;
    /// let i = d.add(&[])?;
    /// let chunk = d.chunk_mut(0)?;
    /// chunk.set(i, 0, &Value::Int(3))?;
    /// assert_eq!(chunk.next_index(), Err(Error::ChunkAllocation));
    /// assert_eq!((d.len(), d.get(i, 0)?), (1, Value::Int(3)));
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    pub fn chunk_mut(&mut self, c: usize) -> Result<&mut StaticStore> {
        chunk_mut(&mut self.chunks, c)
    }

    /// Slots per chunk.
    #[must_use]
    pub fn chunk_size(&self) -> usize {
        1 << self.log2size
    }

    /// A new, empty store with the same schema and chunk size (one chunk).
    #[must_use]
    pub fn clone_empty(&self) -> DynamicStore {
        let first = StaticStore::new(Arc::clone(&self.schema), self.chunk_size()).make_chunk();
        DynamicStore {
            chunks: vec![first],
            len: 0,
            last_index: None,
            free_chunk: 0,
            next_base: 0,
            ..self.clone_meta()
        }
    }

    fn clone_meta(&self) -> DynamicStore {
        DynamicStore {
            schema: Arc::clone(&self.schema),
            log2size: self.log2size,
            chunks: Vec::new(),
            len: 0,
            last_index: None,
            free_chunk: 0,
            next_base: 0,
            changes: 0,
        }
    }

    /// Drop every entry and change the chunk size; frees every chunk and allocates one new one.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `log2size > MAX_LOG2SIZE` (nothing changes).
    pub fn reset_with_log2size(&mut self, log2size: u32) -> Result<()> {
        self.access().check_structure("reset")?;
        let mut base = self.next_base;
        for c in &self.chunks {
            DynamicStore::forget(&mut base, c);
        }
        let changes = self.changes.wrapping_add(u64::from(self.len > 0));
        *self = DynamicStore::new_from(Arc::clone(&self.schema), log2size, base)?;
        self.changes = changes;
        Ok(())
    }

    /// Release the trailing chunks that hold no entry, always keeping one. Returns how many were released.
    /// O(chunks released); frees their memory.
    pub fn retract(&mut self) -> usize {
        if self.access() != Access::ReadWrite {
            return 0; // a mapped store's chunks are the file's
        }
        let before = self.chunks.len();
        while self.chunks.len() > 1 && self.chunks.last().is_some_and(StaticStore::is_empty) {
            if let Some(mut c) = self.chunks.pop() {
                // Free slots may hold values written to them: release their dictionary references.
                c.release_shared();
                DynamicStore::forget(&mut self.next_base, &c);
            }
        }
        self.free_chunk = self.free_chunk.min(self.chunks.len() - 1);
        before - self.chunks.len()
    }

    /// Release the trailing empty chunks beyond the first `chunks` (a failed insert's new chunk), as
    /// [`DynamicStore::retract`] does.
    pub(crate) fn truncate_empty(&mut self, chunks: usize) {
        while self.chunks.len() > chunks.max(1) && self.chunks.last().is_some_and(StaticStore::is_empty) {
            if let Some(mut c) = self.chunks.pop() {
                c.release_shared();
                DynamicStore::forget(&mut self.next_base, &c);
            }
        }
        self.free_chunk = self.free_chunk.min(self.chunks.len() - 1);
    }

    /// Append one empty chunk. Allocates `2^log2size` slots of every member.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the chunk cannot be allocated (nothing changes).
    pub fn grow(&mut self) -> Result<()> {
        self.access().check_structure("adding an entry")?;
        crate::alloc::reserve(&mut self.chunks, 1, "a dynamic store's chunk list")?;
        let chunk = StaticStore::try_new_from(
            Arc::clone(&self.schema),
            self.chunk_size(),
            self.next_base,
            self.chunks.first(),
            true,
        )?;
        self.chunks.push(chunk.make_chunk());
        Ok(())
    }

    /// Occupy slots `0..n` of a new store (no entry, no write since `new`), growing as needed, without
    /// resetting their members: they already hold their defaults. The bulk-load path of
    /// `KeyedStore::from_columns`. O(n + chunks).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the store has entries; [`Error::OutOfMemory`] if a chunk cannot be
    /// allocated.
    pub(crate) fn occupy_fresh(&mut self, n: usize) -> Result<()> {
        if self.len != 0 {
            return Err(Error::InvalidArgument(
                "occupy_fresh on a store with entries".into(),
            ));
        }
        let cs = self.chunk_size();
        for c in 0..n.div_ceil(cs) {
            if c == self.chunks.len() {
                self.grow()?;
            }
            let k = (n - c * cs).min(cs);
            chunk_mut(&mut self.chunks, c)?.occupy_fresh(k)?;
            self.len += k;
        }
        // Chunks below n / cs are full.
        self.free_chunk = (n / cs).min(self.chunks.len() - 1);
        self.last_index = n.checked_sub(1);
        self.changes = self.changes.wrapping_add(1);
        Ok(())
    }
}

impl DynamicStore {
    /// An independent copy in new buffers: the chunks are copied and share one deep copy of each interned
    /// member's dictionary (never the original's). O(size + data).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated (nothing is left half-made).
    pub fn try_clone(&self) -> Result<DynamicStore> {
        let mut chunks = Vec::new();
        crate::alloc::reserve_exact(&mut chunks, self.chunks.len(), "a dynamic store's chunk list")?;
        for (k, c) in self.chunks.iter().enumerate() {
            // Only the first chunk's dictionaries are copied; the others share them.
            let copy = if k == 0 {
                c.try_clone()?.make_chunk()
            } else {
                c.try_clone_sharing(&chunks[0])?.make_chunk()
            };
            chunks.push(copy);
        }
        Ok(DynamicStore {
            chunks,
            len: self.len,
            last_index: self.last_index,
            free_chunk: self.free_chunk,
            next_base: self.next_base,
            changes: self.changes,
            ..self.clone_meta()
        })
    }
}

impl Clone for DynamicStore {
    /// An independent copy: the chunks are copied and share one deep copy of each interned member's
    /// dictionary (never the original's). O(size + data).
    ///
    /// # Panics
    /// If the copy cannot be allocated; [`DynamicStore::try_clone`] is the fallible twin.
    #[track_caller]
    fn clone(&self) -> DynamicStore {
        match self.try_clone() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }
}

impl DynamicStore {
    /// Occupy the lowest free slot (adding a chunk when every one is full) and reset its members but the
    /// ones `written` names (see [`StaticStore::alloc_slot_writing`]): [`Store::next_index`]'s work.
    fn alloc_in_chunk(&mut self, written: &[(usize, Scalar)]) -> Result<usize> {
        let mut c = self.free_chunk;
        while c < self.chunks.len() && self.chunks[c].space() == 0 {
            c += 1;
        }
        if c == self.chunks.len() {
            self.grow()?;
        }
        let o = chunk_mut(&mut self.chunks, c)?.alloc_slot_writing(written)?;
        self.free_chunk = c;
        self.len += 1;
        self.changes = self.changes.wrapping_add(1);
        let i = c << self.log2size | o;
        self.last_index = Some(i);
        Ok(i)
    }
}

fn check_log2size(log2size: u32) -> Result<()> {
    if log2size > MAX_LOG2SIZE {
        return Err(Error::InvalidArgument(format!(
            "log2size {log2size} > {MAX_LOG2SIZE}"
        )));
    }
    Ok(())
}

impl Store for DynamicStore {
    fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    fn chunks(&self) -> &[StaticStore] {
        &self.chunks
    }

    fn chunks_mut(&mut self, _: Internal) -> &mut [StaticStore] {
        &mut self.chunks
    }

    #[inline]
    fn locate(&self, i: usize) -> Result<(usize, usize)> {
        let c = i >> self.log2size;
        if c < self.chunks.len() {
            Ok((c, i & (self.chunk_size() - 1)))
        } else {
            Err(Error::IndexOutOfRange {
                index: i as i64,
                len: self.size(),
            })
        }
    }

    fn next_index(&mut self) -> Result<usize> {
        self.alloc_in_chunk(&[])
    }

    fn add_scalars(&mut self, values: &[(usize, Scalar)]) -> Result<usize> {
        chunk_mut(&mut self.chunks, 0)?.check_scalars(values)?;
        let i = self.alloc_in_chunk(values)?;
        let (c, o) = self.locate(i)?;
        chunk_mut(&mut self.chunks, c)?.put_scalars(o, values)?;
        Ok(i)
    }

    /// As [`Store::add`]; a write that fails after the store grew a chunk for the entry (its memory
    /// refused) releases that chunk again, so a failed `add` leaves the size as it was.
    fn add(&mut self, values: &[(usize, Value)]) -> Result<usize> {
        let proto = self
            .chunks
            .first()
            .ok_or_else(|| Error::Invariant("store has no chunk".into()))?;
        for (m, v) in values {
            proto.column(*m)?.check(v)?;
        }
        let chunks = self.chunks.len();
        crate::store::add_checked(self, values).inspect_err(|_| self.truncate_empty(chunks))
    }

    fn remove(&mut self, i: usize) -> Result<()> {
        let (c, o) = self.locate(i)?;
        chunk_mut(&mut self.chunks, c)?
            .free_slot(o)
            .map_err(|e| match e {
                Error::SlotFree { .. } => Error::SlotFree { index: i },
                e => e,
            })?;
        self.len -= 1;
        self.free_chunk = self.free_chunk.min(c);
        self.changes = self.changes.wrapping_add(1);
        Ok(())
    }

    fn last_index(&self) -> Option<usize> {
        self.last_index
    }

    fn reset(&mut self) -> Result<()> {
        self.access().check_structure("reset")?;
        self.changes = self.changes.wrapping_add(u64::from(self.len > 0));
        for c in self.chunks.iter_mut().skip(1) {
            c.release_shared();
            DynamicStore::forget(&mut self.next_base, c);
        }
        self.chunks.truncate(1);
        for c in &mut self.chunks {
            c.clear_slots();
        }
        self.len = 0;
        self.last_index = None;
        self.free_chunk = 0;
        Ok(())
    }

    fn len(&self) -> usize {
        self.len
    }

    fn changes(&self) -> u64 {
        self.changes
    }

    fn size(&self) -> usize {
        self.chunks.len() << self.log2size
    }

    fn space(&self) -> usize {
        usize::MAX
    }

    fn validate(&self) -> Result<()> {
        if self.chunks.is_empty() {
            return Err(Error::Invariant(
                "a dynamic store keeps at least one chunk".into(),
            ));
        }
        let mut len = 0;
        crate::static_store::validate_dictionaries(&self.chunks)?;
        for (c, s) in self.chunks.iter().enumerate() {
            s.validate_chunk()?;
            if !s.is_chunk() {
                return Err(Error::Invariant(format!("chunk {c} is not marked a chunk")));
            }
            if s.size() != self.chunk_size() {
                return Err(Error::Invariant(format!("chunk {c} has size {}", s.size())));
            }
            if c < self.free_chunk && s.space() > 0 {
                return Err(Error::Invariant(format!(
                    "chunk {c} has space below the free-chunk hint"
                )));
            }
            len += s.len();
        }
        if len != self.len {
            return Err(Error::Invariant(format!(
                "chunks hold {len} entries, len is {}",
                self.len
            )));
        }
        Ok(())
    }
}

impl StaticStore {
    /// Whether no slot is occupied (inherent twin of [`Store::is_empty`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        Store::is_empty(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Dtype, Member, MemberType};
    use crate::value::Value;

    fn store(k: u32) -> DynamicStore {
        let schema = Schema::new(vec![Member::new("x", MemberType::Scalar(Dtype::I32)).unwrap()]).unwrap();
        DynamicStore::new(Arc::new(schema), k).unwrap()
    }

    #[test]
    fn growth_never_moves_data() {
        let mut d = store(1);
        let i = d.next_index().unwrap();
        d.set(i, 0, &Value::Int(5)).unwrap();
        let p = d.chunks()[0].column_slice::<i32>(0).unwrap().as_ptr();
        for _ in 0..20 {
            d.next_index().unwrap();
        }
        assert_eq!(d.chunks()[0].column_slice::<i32>(0).unwrap().as_ptr(), p);
        assert_eq!(d.get(i, 0).unwrap(), Value::Int(5));
        assert_eq!(d.size(), 22);
        d.validate().unwrap();
    }

    #[test]
    fn lowest_free_first_across_chunks_and_retract_keeps_one() {
        let mut d = store(1);
        for _ in 0..6 {
            d.next_index().unwrap();
        }
        d.remove(1).unwrap();
        d.remove(4).unwrap();
        assert_eq!(d.next_index().unwrap(), 1);
        assert_eq!(d.remove(4), Err(Error::SlotFree { index: 4 }));
        assert_eq!(d.remove(6), Err(Error::IndexOutOfRange { index: 6, len: 6 }));
        for i in [0, 1, 2, 3, 5] {
            d.remove(i).unwrap();
        }
        assert_eq!(d.retract(), 2);
        assert_eq!(d.size(), 2);
        assert_eq!(d.retract(), 0);
        d.validate().unwrap();
    }

    #[test]
    fn views_of_dropped_chunks_stay_stale() {
        // A view remembers (slot, generation); a chunk dropped by retract/reset and grown again must not
        // hand the same generation to a new entry in that slot.
        let mut d = store(1);
        for _ in 0..4 {
            d.next_index().unwrap();
        }
        let g3 = d.generation(3).unwrap();
        d.remove(3).unwrap();
        d.remove(2).unwrap();
        assert_eq!(d.retract(), 1);
        d.next_index().unwrap();
        assert_eq!(d.next_index().unwrap(), 3);
        assert_ne!(d.generation(3).unwrap(), g3);
        let g0 = d.generation(0).unwrap();
        d.reset_with_log2size(2).unwrap();
        d.next_index().unwrap();
        assert_ne!(d.generation(0).unwrap(), g0);
        for _ in 0..5 {
            d.next_index().unwrap();
        }
        let g1 = d.generation(5).unwrap();
        d.reset().unwrap();
        for _ in 0..6 {
            d.next_index().unwrap();
        }
        assert_ne!(d.generation(5).unwrap(), g1);
    }

    #[test]
    fn a_chunk_refuses_to_allocate_free_or_reset_slots() {
        // Bug class: a chunk handed out mutably that allocates or frees its own slots desynchronises the
        // dynamic store's `len` and free-chunk hint.
        let mut d = store(1);
        for k in 0..3 {
            d.add(&[(0, Value::Int(k))]).unwrap();
        }
        let c = d.chunk_mut(1).unwrap();
        assert!(c.is_chunk());
        assert_eq!(c.next_index(), Err(Error::ChunkAllocation));
        assert_eq!(c.add(&[]), Err(Error::ChunkAllocation));
        assert_eq!(c.add_scalars(&[]), Err(Error::ChunkAllocation));
        assert_eq!(c.remove(0), Err(Error::ChunkAllocation));
        assert_eq!(c.reset(), Err(Error::ChunkAllocation));
        assert_eq!(c.reset_with_size(8), Err(Error::ChunkAllocation));
        // Its members can still be written, through the checked calls.
        c.set(0, 0, &Value::Int(20)).unwrap();
        c.set_scalar(1, 0, crate::value::Scalar::I32(21)).unwrap();
        assert_eq!((c.len(), c.size()), (1, 2));
        assert_eq!(d.len(), 3);
        assert_eq!(d.get(2, 0).unwrap(), Value::Int(20));
        assert_eq!(d.get(3, 0).unwrap(), Value::Int(21));
        d.validate().unwrap();
        assert!(matches!(d.chunk_mut(2), Err(Error::IndexOutOfRange { .. })));
        // The dynamic store itself still allocates, frees and resets through its chunks.
        assert_eq!(d.next_index().unwrap(), 3);
        d.remove(0).unwrap();
        assert_eq!(d.len(), 3);
        d.validate().unwrap();
        // A clone of a chunk is a store of its own; a clone of the dynamic store has chunks.
        let mut own = d.chunks()[1].clone();
        assert!(!own.is_chunk());
        own.remove(0).unwrap();
        own.reset().unwrap();
        let e = d.clone();
        assert!(e.chunks().iter().all(StaticStore::is_chunk));
        e.validate().unwrap();
        d.reset().unwrap();
        assert!(d.chunks()[0].is_chunk());
        d.validate().unwrap();
    }

    #[test]
    fn bad_log2size_is_an_error() {
        assert!(matches!(
            store(0).reset_with_log2size(40),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn next_occupied_walks_chunks_holes_and_empty_chunks() {
        // The step of the bindings' lazy iterators: it must agree with `indices()` across chunk edges.
        let mut d = store(2);
        for _ in 0..24 {
            d.next_index().unwrap();
        }
        for i in [0, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 23] {
            d.remove(i).unwrap();
        }
        let walk: Vec<usize> =
            std::iter::successors(d.next_occupied(0), |&i| d.next_occupied(i + 1)).collect();
        assert_eq!(walk, d.indices().collect::<Vec<_>>());
        assert_eq!(walk, vec![1, 8, 10, 11, 16, 17, 18, 19, 20, 21, 22]);
        assert_eq!(
            (d.next_occupied(2), d.next_occupied(12), d.next_occupied(23)),
            (Some(8), Some(16), None)
        );
        assert_eq!(d.next_occupied(usize::MAX), None);
    }

    #[test]
    fn changes_count_entries_added_and_removed_not_writes_or_retract() {
        let mut d = store(1);
        let c0 = d.changes();
        d.reset().unwrap(); // nothing to drop: no change
        assert_eq!(d.changes(), c0);
        for _ in 0..5 {
            d.next_index().unwrap();
        }
        let c = d.changes();
        d.set(0, 0, &Value::Int(3)).unwrap();
        d.remove(4).unwrap();
        d.remove(3).unwrap();
        let after_remove = d.changes();
        assert_ne!(after_remove, c);
        assert_eq!(d.retract(), 1);
        assert_eq!(d.changes(), after_remove);
        // as many added as removed: len is back, the count is not
        d.next_index().unwrap();
        d.next_index().unwrap();
        assert_eq!(d.len(), 5);
        assert_ne!(d.changes(), c);
        let before = d.changes();
        d.reset_with_log2size(3).unwrap();
        assert_ne!(d.changes(), before);
        let before = d.changes();
        d.reset_with_log2size(2).unwrap(); // empty: nothing dropped
        assert_eq!(d.changes(), before);
    }
}

#[cfg(test)]
mod member_tests {
    //! Str, bytes, interned and optional members through the store layers.
    use super::*;
    use crate::schema::{Dtype, Member, MemberType};
    use crate::value::Value;

    const NAME: usize = 0;
    const CAT: usize = 1;
    const OPT: usize = 2;
    const OCAT: usize = 3;
    const BLOB: usize = 4;
    const ONAME: usize = 5;

    fn schema() -> Arc<Schema> {
        Arc::new(
            Schema::new(vec![
                Member::new("name", MemberType::Str).unwrap().with_compact_min(4),
                Member::new("cat", MemberType::interned(MemberType::Str)).unwrap(),
                Member::new("opt", MemberType::optional(MemberType::Scalar(Dtype::I32))).unwrap(),
                Member::new(
                    "ocat",
                    MemberType::optional(MemberType::interned(MemberType::Bytes)),
                )
                .unwrap(),
                Member::new("blob", MemberType::Bytes)
                    .unwrap()
                    .with_default(Value::Bytes(b"a default longer than 15".to_vec()))
                    .unwrap(),
                Member::new("oname", MemberType::optional(MemberType::Str))
                    .unwrap()
                    .with_default(Value::from("dflt"))
                    .unwrap(),
            ])
            .unwrap(),
        )
    }

    fn dict_len(d: &DynamicStore, m: usize) -> usize {
        d.chunks()[0]
            .column(m)
            .unwrap()
            .as_interned()
            .unwrap()
            .dictionary()
            .read()
            .unwrap()
            .len()
    }

    #[test]
    fn defaults_display_and_type_helpers() {
        let s = schema();
        let types: Vec<String> = s.members().iter().map(|m| m.ty().to_string()).collect();
        assert_eq!(
            types,
            [
                "str",
                "interned[str]",
                "optional[i32]",
                "optional[interned[bytes]]",
                "bytes",
                "optional[str]"
            ]
        );
        assert_eq!(MemberType::Scalar(Dtype::I64).dtype(), Some(Dtype::I64));
        assert_eq!(MemberType::Str.dtype(), None);
        assert_eq!(s.member(OPT).unwrap().ty().values_dtype(), Some(Dtype::I32));
        assert!(!s.member(OPT).unwrap().ty().is_numeric());
        assert_eq!(MemberType::Array(Dtype::U8, 8).width(), Some(8));
        assert!(Member::new("x", MemberType::interned(MemberType::Scalar(Dtype::I8))).is_err());
        assert!(Member::new("x", MemberType::optional(MemberType::optional(MemberType::Str))).is_err());
        let d = DynamicStore::new(s, 1).unwrap();
        assert_eq!(d.get(0, NAME).unwrap(), Value::from(""));
        assert_eq!(d.get(0, CAT).unwrap(), Value::from(""));
        assert_eq!(d.get(0, OPT).unwrap(), Value::Null);
        assert_eq!(d.get(0, OCAT).unwrap(), Value::Null);
        assert_eq!(
            d.get(1, BLOB).unwrap(),
            Value::Bytes(b"a default longer than 15".to_vec())
        );
        assert_eq!(d.get(1, ONAME).unwrap(), Value::from("dflt"));
        d.validate().unwrap();
    }

    #[test]
    fn values_round_trip_across_chunks_and_share_one_dictionary() {
        let mut d = DynamicStore::new(schema(), 1).unwrap();
        for k in 0..6 {
            let cat = if k % 2 == 0 { "even" } else { "odd" };
            d.add(&[
                (NAME, Value::Str(format!("a long name number {k}"))),
                (CAT, Value::from(cat)),
                (OPT, if k % 3 == 0 { Value::Null } else { Value::Int(k) }),
                (
                    OCAT,
                    if k == 1 {
                        Value::Null
                    } else {
                        Value::Bytes(vec![k as u8])
                    },
                ),
                (ONAME, Value::Null),
            ])
            .unwrap();
        }
        assert_eq!(d.chunks().len(), 3);
        assert_eq!(dict_len(&d, CAT), 2, "one dictionary for all chunks");
        assert_eq!(d.get(5, NAME).unwrap(), Value::from("a long name number 5"));
        assert_eq!(d.get(4, CAT).unwrap(), Value::from("even"));
        assert_eq!(d.get(3, OPT).unwrap(), Value::Null);
        assert_eq!(d.get(4, OPT).unwrap(), Value::Int(4));
        assert_eq!(d.get(1, OCAT).unwrap(), Value::Null);
        assert_eq!(d.get(2, ONAME).unwrap(), Value::Null);
        // The typed values column of an optional numeric member holds 0 for None.
        assert_eq!(d.chunks()[1].column_slice::<i32>(OPT).unwrap(), &[2, 0]);
        assert!(d.chunk_mut(1).unwrap().column_slice_mut::<i32>(OPT).is_err());
        assert_eq!(d.find(CAT, &Value::from("odd")).unwrap(), vec![1, 3, 5]);
        assert_eq!(d.find(OPT, &Value::Null).unwrap(), vec![0, 3]);
        assert_eq!(
            d.find(NAME, &Value::from("a long name number 2")).unwrap(),
            vec![2]
        );
        assert!(d.find(NAME, &Value::Int(1)).is_err());
        d.validate().unwrap();
    }

    #[test]
    fn wrong_types_and_null_are_refused_and_change_nothing() {
        let mut d = DynamicStore::new(schema(), 1).unwrap();
        let i = d
            .add(&[(NAME, Value::from("keep")), (CAT, Value::from("c"))])
            .unwrap();
        let before = d.nbytes();
        for (m, bad) in [
            (NAME, Value::Null),
            (NAME, Value::Bytes(b"x".to_vec())),
            (NAME, Value::Int(3)),
            (CAT, Value::Null),
            (CAT, Value::Bytes(b"c".to_vec())),
            (BLOB, Value::from("text")),
            (OPT, Value::from("1")),
            (OCAT, Value::from("not bytes")),
        ] {
            assert!(
                matches!(d.set(i, m, &bad), Err(Error::WrongType { .. })),
                "{m} {bad:?}"
            );
        }
        assert!(matches!(
            d.add(&[(CAT, Value::from("new")), (NAME, Value::Null)]),
            Err(Error::WrongType { .. })
        ));
        assert_eq!(dict_len(&d, CAT), 1, "a failed add interns nothing");
        assert_eq!(d.len(), 1);
        assert_eq!(d.get(i, NAME).unwrap(), Value::from("keep"));
        assert_eq!(d.nbytes(), before);
        let mut out = Vec::<u8>::new();
        assert!(matches!(
            d.gather::<u8>(NAME, &[0], &mut out),
            Err(Error::WrongType { .. })
        ));
        assert!(matches!(
            d.scatter::<u32>(CAT, &[0], &[1]),
            Err(Error::WrongType { .. })
        ));
        assert!(matches!(
            d.scatter::<i32>(OPT, &[0], &[1]),
            Err(Error::WrongType { .. })
        ));
        assert!(matches!(d.get_element(i, NAME, 0), Err(Error::WrongType { .. })));
        d.validate().unwrap();
    }

    #[test]
    fn remove_reset_and_retract_release_space_and_references() {
        let mut d = DynamicStore::new(schema(), 1).unwrap();
        for k in 0..4 {
            d.add(&[
                (CAT, Value::Str(format!("c{k}"))),
                (NAME, Value::Str(format!("name long enough {k}"))),
            ])
            .unwrap();
        }
        assert_eq!(dict_len(&d, CAT), 4);
        d.remove(3).unwrap();
        assert_eq!(dict_len(&d, CAT), 3);
        // A write to a free slot holds a reference until the chunk is dropped.
        d.set(3, CAT, &Value::from("on a free slot")).unwrap();
        d.remove(2).unwrap();
        assert_eq!(dict_len(&d, CAT), 3);
        assert_eq!(d.retract(), 1);
        assert_eq!(dict_len(&d, CAT), 2);
        d.validate().unwrap();
        d.reset().unwrap();
        assert_eq!(dict_len(&d, CAT), 0);
        assert_eq!(d.get(0, NAME).unwrap(), Value::from(""));
        d.validate().unwrap();
    }

    #[test]
    fn clones_have_independent_dictionaries() {
        let mut d = DynamicStore::new(schema(), 1).unwrap();
        for k in 0..3 {
            d.add(&[(CAT, Value::Str(format!("c{k}")))]).unwrap();
        }
        let mut e = d.clone();
        e.validate().unwrap();
        e.set(0, CAT, &Value::from("changed")).unwrap();
        e.set(2, CAT, &Value::from("c0")).unwrap();
        assert_eq!(d.get(0, CAT).unwrap(), Value::from("c0"));
        assert_eq!(d.get(2, CAT).unwrap(), Value::from("c2"));
        assert_eq!(dict_len(&d, CAT), 3);
        d.validate().unwrap();
        e.validate().unwrap();
        let mut s = d.chunks()[0].clone();
        s.set(0, CAT, &Value::from("x")).unwrap();
        d.validate().unwrap();
    }

    #[test]
    fn nbytes_counts_views_data_and_one_dictionary() {
        let mut d = DynamicStore::new(schema(), 4).unwrap();
        let empty = d.nbytes();
        d.add(&[(CAT, Value::from("same"))]).unwrap();
        let one_chunk = d.nbytes() - empty;
        for _ in 0..20 {
            d.add(&[(CAT, Value::from("same"))]).unwrap();
        }
        assert_eq!(d.chunks().len(), 2);
        let dict = d.chunks()[0].dictionaries_nbytes();
        assert!(dict > 0 && one_chunk >= dict);
        assert_eq!(
            d.nbytes(),
            d.chunks().iter().map(StaticStore::nbytes_own).sum::<usize>() + dict
        );
    }
}
