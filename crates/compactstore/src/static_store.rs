//! `StaticStore`: a fixed number of slots, every member's column allocated once.

use std::sync::Arc;

use crate::column::Column;
use crate::error::{Error, Result};
use crate::schema::Schema;
use crate::slot::Slots;
use crate::store::{Internal, Store};
use crate::value::{Element, Scalar};

/// A store of a fixed size: one column per member, a slot allocator, allocated once and never moved.
///
/// # Examples
/// ```
/// use compactstore::{Dtype, Member, MemberType, Schema, StaticStore, Store, Value};
/// let schema = Schema::new(vec![
///     Member::new("ref", MemberType::Scalar(Dtype::I64))?,
///     Member::new("fitness", MemberType::Scalar(Dtype::F32))?.with_default(Value::Float(0.5))?,
/// ])?;
/// let mut s = StaticStore::new(Arc::new(schema), 4);
/// let i = s.next_index()?;
/// s.set(i, 0, &Value::Int(42))?;
/// assert_eq!(s.column_slice::<f32>(1)?[i], 0.5);
/// s.remove(i)?;                       // the slot is freed and reset...
/// assert_eq!(s.next_index()?, i);     // ...and reused lowest first
/// assert_eq!(s.get(i, 0)?, Value::Int(0));
/// # use std::sync::Arc;
/// # Ok::<(), compactstore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct StaticStore {
    schema: Arc<Schema>,
    columns: Vec<Column>,
    slots: Slots,
    last_index: Option<usize>,
    /// A number no other store made by this process has (clones keep it): lets a view of a dynamic store's
    /// chunk tell the chunk it was made for from a later chunk at the same position.
    uid: u64,
    /// Generation floor for slots made by a later `reset_with_size`: above every generation these slots
    /// (and those of any store this one replaced) reached, so no old view ever matches a new entry, even
    /// across a reset to size 0.
    next_base: u32,
    /// Whether this is a chunk of a dynamic store, which must not allocate, free or reset its own slots.
    chunk: ChunkFlag,
    /// What may be written: everything, or (a store mapped from a file) only fixed-width members in
    /// place, or nothing. Every mutation entry point checks it before changing anything.
    access: Access,
}

/// What a store's memory lets it do: a store made in memory, read into memory or mapped copy-on-write
/// is [`Access::ReadWrite`]; a shared mapping (`"r+"`) is [`Access::InPlace`]; a read-only mapping
/// (`"r"`) or read-only buffers are [`Access::ReadOnly`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// An ordinary store.
    #[default]
    ReadWrite,
    /// Only in-place writes of fixed-width members (numeric scalars and arrays, optional or not); no
    /// allocation, deletion, reset, or str/bytes/interned write.
    InPlace,
    /// Nothing may be written.
    ReadOnly,
}

impl Access {
    /// The refusal of a call that allocates, frees or resets slots (or grows or shrinks a store).
    ///
    /// # Errors
    /// [`Error::StoreReadOnly`] unless the store is [`Access::ReadWrite`].
    pub fn check_structure(self, what: &str) -> Result<()> {
        match self {
            Access::ReadWrite => Ok(()),
            Access::InPlace => Err(Error::StoreReadOnly(format!(
                "mapped with mode \"r+\": only fixed-width members can be written in place, not {what}"
            ))),
            Access::ReadOnly => Err(Error::StoreReadOnly(format!(
                "mapped read-only: {what} is refused"
            ))),
        }
    }
}

/// Whether a static store is a chunk of a dynamic store. A clone is a store of its own, never a chunk
/// (the dynamic store marks the chunks of its own clones).
#[derive(Debug, Default)]
struct ChunkFlag(bool);

impl Clone for ChunkFlag {
    fn clone(&self) -> ChunkFlag {
        ChunkFlag(false)
    }
}

/// Where a fixed-width member's buffer is, for handing it out without a copy (Python's buffer protocol,
/// numpy): [`StaticStore::export_buffer`].
///
/// The buffer is `len` bytes, the member's scalars slot-major in native byte order. A chunk's buffers are
/// allocated once and never move or shrink while the chunk exists (a dynamic store's growth adds chunks,
/// it never moves one), so the pointer stays valid as long as the store that owns the chunk holds it:
/// until the store is dropped, a static store is reset to another size
/// ([`StaticStore::reset_with_size`]), or a dynamic store drops the chunk (`retract`, `reset`). Keeping
/// the store alive and refusing those calls while an export lives is the exporter's part.
#[derive(Debug, Clone, Copy)]
pub struct ExportedBuffer {
    ptr: *mut u8,
    len: usize,
    writable: bool,
}

impl ExportedBuffer {
    /// The first byte.
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// The first byte, for writing: `None` for a read-only member, whose export must be read-only.
    #[must_use]
    pub fn as_mut_ptr(&self) -> Option<*mut u8> {
        self.writable.then_some(self.ptr)
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no bytes (a store of size 0).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the buffer may be written through [`ExportedBuffer::as_mut_ptr`].
    #[must_use]
    pub fn is_writable(&self) -> bool {
        self.writable
    }
}

static NEXT_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl StaticStore {
    /// The store's unique number (see the field docs). O(1).
    #[must_use]
    pub fn uid(&self) -> u64 {
        self.uid
    }

    /// A store of `size` free slots, every member at its default. Allocates each column once; columns
    /// whose default is zero touch no page until written.
    ///
    /// # Panics
    /// If the columns cannot be allocated; [`StaticStore::try_new`] is the fallible twin.
    #[must_use]
    #[track_caller]
    pub fn new(schema: Arc<Schema>, size: usize) -> StaticStore {
        match StaticStore::try_new(schema, size) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// The largest size a store can have (slot numbers fit in a `u32`).
    pub const MAX_SIZE: usize = 1 << 32;

    /// As [`StaticStore::new`], returning an error instead of panicking.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `size > MAX_SIZE`; [`Error::OutOfMemory`] if the columns cannot be
    /// allocated.
    pub fn try_new(schema: Arc<Schema>, size: usize) -> Result<StaticStore> {
        StaticStore::try_new_from(schema, size, 0, None, false)
    }

    /// As [`StaticStore::try_new`], with every slot's generation starting at `base`, interned members
    /// sharing the dictionaries of `sibling` (another chunk of the same store) if given, and with `lazy`
    /// defaults filled into a slot only when it is first written or allocated.
    ///
    /// **Why a dynamic store's chunks are lazy and a static store is not.** A static store's numeric
    /// members are exported zero-copy (`np.asarray(m)` is a view of the column's memory), so that memory
    /// must hold every slot's value, defaults included, from the start. A dynamic or keyed store's chunk
    /// is read through copies and engine calls, which know the high-water mark of filled slots
    /// ([`crate::column::FixedColumn::filled`]); filling there on allocation leaves the pages of unused
    /// slots untouched (a keyed store of 20 f64 members with non-zero defaults held 10 MiB for one key
    /// when its 65,536-slot chunk was filled up front). A chunk whose memory is handed out raw (a numpy
    /// view of a chunk) fills itself first and stays filled.
    pub(crate) fn try_new_from(
        schema: Arc<Schema>,
        size: usize,
        base: u32,
        sibling: Option<&StaticStore>,
        lazy: bool,
    ) -> Result<StaticStore> {
        if size > StaticStore::MAX_SIZE {
            return Err(Error::InvalidArgument(format!(
                "size {size} > {}",
                StaticStore::MAX_SIZE
            )));
        }
        let columns = schema
            .members()
            .iter()
            .enumerate()
            .map(|(i, m)| Column::try_new_sharing(m, size, sibling.and_then(|s| s.columns.get(i)), lazy))
            .collect::<Result<_>>()?;
        Ok(StaticStore {
            schema,
            columns,
            slots: Slots::try_with_generation(size, base)?,
            last_index: None,
            next_base: base,
            uid: NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            chunk: ChunkFlag(false),
            access: Access::ReadWrite,
        })
    }

    /// An independent copy in new buffers: the same entries, free slots, generations and `last_index`
    /// (interned members with their own deep copy of the dictionary). O(size + data).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated (nothing is left half-made).
    pub fn try_clone(&self) -> Result<StaticStore> {
        Ok(StaticStore {
            schema: Arc::clone(&self.schema),
            columns: self
                .columns
                .iter()
                .map(|c| {
                    crate::interrupt::poll_n(self.size())?;
                    c.try_clone()
                })
                .collect::<Result<_>>()?,
            slots: self.slots.try_clone()?,
            last_index: self.last_index,
            uid: self.uid,
            next_base: self.next_base,
            // A copy is a store of its own; a dynamic store marks the copies of its chunks.
            chunk: ChunkFlag(false),
            // A copy is in memory, owned and writable.
            access: Access::ReadWrite,
        })
    }

    /// As [`StaticStore::try_clone`], the interned members sharing the dictionaries of `first` (the copy
    /// of another chunk of the same store) instead of copying their own.
    pub(crate) fn try_clone_sharing(&self, first: &StaticStore) -> Result<StaticStore> {
        let mut columns = Vec::new();
        crate::alloc::reserve_exact(&mut columns, self.columns.len(), "a chunk's column list")?;
        for (c, f) in self.columns.iter().zip(&first.columns) {
            crate::interrupt::poll_n(self.size())?;
            columns.push(c.try_clone_sharing(f)?);
        }
        Ok(StaticStore {
            schema: Arc::clone(&self.schema),
            columns,
            slots: self.slots.try_clone()?,
            last_index: self.last_index,
            uid: self.uid,
            next_base: self.next_base,
            // A copy is a store of its own; a dynamic store marks the copies of its chunks.
            chunk: ChunkFlag(false),
            // A copy is in memory, owned and writable.
            access: Access::ReadWrite,
        })
    }

    /// A new, empty store of the same schema and size.
    #[must_use]
    pub fn clone_empty(&self) -> StaticStore {
        StaticStore::new(Arc::clone(&self.schema), self.size())
    }

    /// The slot allocator (read-only).
    #[must_use]
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// The column of member `m`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `m` is not a member position.
    pub fn column(&self, m: usize) -> Result<&Column> {
        match self.columns.get(m) {
            Some(x) => Ok(x),
            None => Err(Error::IndexOutOfRange {
                index: m as i64,
                len: self.columns.len(),
            }),
        }
    }

    /// The column of member `m`, mutably (writes through it bypass the read-only flag): for the engine's
    /// checked writes only.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `m` is not a member position.
    #[inline]
    pub(crate) fn column_mut(&mut self, m: usize) -> Result<&mut Column> {
        let len = self.columns.len();
        let access = self.access;
        match self.columns.get_mut(m) {
            Some(c) if access == Access::ReadWrite => Ok(c),
            Some(c) => check_column_write(access, c).map(|()| c),
            None => Err(member_out_of_range(m, len)),
        }
    }

    /// What this store may write ([`Access`]).
    #[must_use]
    pub fn access(&self) -> Access {
        self.access
    }

    /// The columns (for saving).
    pub(crate) fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// A store from its parts (a loaded file's chunk); the caller checked them against the schema.
    pub(crate) fn from_parts(
        schema: Arc<Schema>,
        columns: Vec<Column>,
        slots: Slots,
        last_index: Option<usize>,
        next_base: u32,
        access: Access,
    ) -> StaticStore {
        StaticStore {
            schema,
            columns,
            slots,
            last_index,
            uid: NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            next_base,
            chunk: ChunkFlag(false),
            access,
        }
    }

    pub(crate) fn next_base(&self) -> u32 {
        self.next_base
    }

    /// Member `m` as a typed slice of `size * width` scalars. O(1). An optional numeric member gives its
    /// values column, where `None` slots hold zero (see [`crate::column::OptionalColumn`]). For a chunk of
    /// a dynamic or keyed store, whose defaults are filled lazily, the slice covers the filled slots only
    /// (`filled * width` scalars: every slot that was ever allocated or written); the slots beyond read
    /// as the default (see [`crate::column::FixedColumn`]).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for `m`, [`Error::WrongType`] if `T` does not match the member's dtype
    /// (`bool` members are `u8`) or the member is not numeric (str, bytes, interned).
    pub fn column_slice<T: Element>(&self, m: usize) -> Result<&[T]> {
        self.column(m)?
            .values_fixed()
            .ok_or_else(|| Error::WrongType {
                expected: "numeric member".into(),
                got: "other".into(),
            })?
            .as_slice()
    }

    /// Member `m` as a mutable typed slice of every slot. Writes through it bypass the read-only flag.
    /// O(1); a lazily filled chunk's column is filled first, O(size), and stays filled.
    ///
    /// # Errors
    /// As [`StaticStore::column_slice`]; an optional member is refused too ([`Error::WrongType`]: a write
    /// through the slice could not set its validity bit).
    pub fn column_slice_mut<T: Element>(&mut self, m: usize) -> Result<&mut [T]> {
        self.column_mut(m)?
            .as_fixed_mut()
            .ok_or_else(|| Error::WrongType {
                expected: "numeric member".into(),
                got: "other".into(),
            })?
            .as_mut_slice()
    }

    /// Whether this store is a chunk of a dynamic store (reached through
    /// [`crate::DynamicStore::chunk_mut`]): its members can be written, but it refuses to allocate, free
    /// or reset slots ([`Error::ChunkAllocation`]), which only the dynamic store may do. O(1).
    #[must_use]
    pub fn is_chunk(&self) -> bool {
        self.chunk.0
    }

    /// Mark this store as a chunk of a dynamic store (see [`StaticStore::is_chunk`]).
    pub(crate) fn make_chunk(mut self) -> StaticStore {
        self.chunk = ChunkFlag(true);
        self
    }

    /// Hand out fixed-width member `m`'s buffer for export without a copy (see [`ExportedBuffer`] for
    /// how long it stays valid). A read-only member's buffer is read-only
    /// ([`ExportedBuffer::as_mut_ptr`] is `None`): writes to it would bypass the engine. O(1).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for `m`, [`Error::WrongType`] for a member that is not fixed-width
    /// (str, bytes, interned, optional, object).
    ///
    /// # Examples
    /// ```
    /// use compactstore::{Dtype, Member, MemberType, Schema, StaticStore};
    /// let schema = Schema::new(vec![
    ///     Member::new("x", MemberType::Scalar(Dtype::F64))?,
    ///     Member::new("ref", MemberType::Scalar(Dtype::I64))?.read_only(true),
    /// ])?;
    /// let mut s = StaticStore::new(schema.into(), 4);
    /// let b = s.export_buffer(0)?;
    /// assert_eq!((b.len(), b.is_writable()), (32, true));
    /// assert!(s.export_buffer(1)?.as_mut_ptr().is_none());
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    pub fn export_buffer(&mut self, m: usize) -> Result<ExportedBuffer> {
        if self.access == Access::ReadOnly {
            // A read-only export of the mapped bytes (a loaded column is filled: `bytes` is all of it).
            let f = self.column(m)?.as_fixed().ok_or_else(|| Error::WrongType {
                expected: "fixed-width member".into(),
                got: "variable-length member".into(),
            })?;
            let bytes = f.bytes();
            return Ok(ExportedBuffer {
                ptr: bytes.as_ptr().cast_mut(),
                len: bytes.len(),
                writable: false,
            });
        }
        let writable = !self.schema.member(m)?.is_read_only();
        let f = self
            .column_mut(m)?
            .as_fixed_mut()
            .ok_or_else(|| Error::WrongType {
                expected: "fixed-width member".into(),
                got: "variable-length member".into(),
            })?;
        let bytes = f.bytes_mut();
        Ok(ExportedBuffer {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            writable,
        })
    }

    /// [`Error::ChunkAllocation`] if this is a chunk of a dynamic store.
    fn refuse_chunk(&self) -> Result<()> {
        if self.chunk.0 {
            Err(Error::ChunkAllocation)
        } else {
            Ok(())
        }
    }

    /// Occupy the lowest free slot and reset its members: [`Store::next_index`] without the chunk check,
    /// for the dynamic store that owns this chunk.
    pub(crate) fn alloc_slot(&mut self) -> Result<usize> {
        self.alloc_slot_writing(&[])
    }

    /// [`StaticStore::alloc_slot`] for [`Store::add_scalars`]: the members `written` names are not reset,
    /// as the caller writes them next (a checked scalar of a scalar member: its write sets every byte of
    /// the slot's value, filling a lazy column up to it first, as a reset would).
    pub(crate) fn alloc_slot_writing(&mut self, written: &[(usize, Scalar)]) -> Result<usize> {
        self.access.check_structure("adding an entry")?;
        let slot = self.slots.alloc().ok_or_else(|| Error::StoreFull {
            size: self.slots.size(),
        })?;
        // Members 0..256 that `written` names; any member beyond is reset (and then written) as usual.
        let mut skip = [0u64; 4];
        for &(m, _) in written {
            if let Some(w) = skip.get_mut(m / 64) {
                *w |= 1 << (m % 64);
            }
        }
        let is_written = |m: usize| skip.get(m / 64).is_some_and(|w| w >> (m % 64) & 1 == 1);
        for (m, (col, member)) in self.columns.iter_mut().zip(self.schema.members()).enumerate() {
            if !is_written(m) {
                col.reset_slot(slot, member.default_value())?;
            }
        }
        self.last_index = Some(slot);
        Ok(slot)
    }

    /// Check `values` for [`Store::add_scalars`]: each member is a scalar member of its scalar's dtype.
    pub(crate) fn check_scalars(&self, values: &[(usize, Scalar)]) -> Result<()> {
        for &(m, x) in values {
            self.column(m)?.check_scalar(x)?;
        }
        Ok(())
    }

    /// Write `values` (checked by [`StaticStore::check_scalars`]) at `slot` (allocated): cannot fail.
    pub(crate) fn put_scalars(&mut self, slot: usize, values: &[(usize, Scalar)]) -> Result<()> {
        for &(m, x) in values {
            self.column_mut(m)?.put_scalar(slot, x);
        }
        Ok(())
    }

    /// Free slot `i`: [`Store::remove`] without the chunk check, for the dynamic store that owns this chunk.
    pub(crate) fn free_slot(&mut self, i: usize) -> Result<()> {
        self.access.check_structure("deleting an entry")?;
        self.slots.free(i)?;
        self.reset_slot(i)
    }

    /// Drop every entry: [`Store::reset`] without the chunk check, for the dynamic store that owns this
    /// chunk.
    pub(crate) fn clear_slots(&mut self) {
        self.slots.clear();
        for (col, m) in self.columns.iter_mut().zip(self.schema.members()) {
            col.reset_all(m.default_value());
        }
        self.last_index = None;
    }

    /// Bytes held by this chunk's own buffers (columns and slot bookkeeping), without the dictionaries of
    /// interned members, which the chunks of a store share.
    #[must_use]
    pub fn nbytes_own(&self) -> usize {
        self.columns.iter().map(Column::nbytes).sum::<usize>() + self.slots.nbytes()
    }

    /// Bytes held by the dictionaries of the interned members (shared by the chunks of a store).
    #[must_use]
    pub fn dictionaries_nbytes(&self) -> usize {
        self.columns.iter().map(Column::dictionary_nbytes).sum()
    }

    /// Release the references this chunk holds in dictionaries shared with other chunks: for a chunk that
    /// is about to be dropped from a dynamic store. O(size) per interned member.
    pub(crate) fn release_shared(&mut self) {
        for c in &mut self.columns {
            c.release_shared();
        }
    }

    /// Check this chunk's invariants, except the dictionary refcounts (which span every chunk).
    pub(crate) fn validate_chunk(&self) -> Result<()> {
        self.slots.validate()?;
        if self.columns.len() != self.schema.len() {
            return Err(Error::Invariant("one column per member".into()));
        }
        for (col, m) in self.columns.iter().zip(self.schema.members()) {
            if col.size() != self.size() {
                return Err(Error::Invariant(format!(
                    "column {:?} has the wrong size",
                    m.name()
                )));
            }
            col.validate_local().map_err(|e| e.in_member_check(m.name()))?;
        }
        if let Some(i) = self.last_index {
            if i >= self.size() {
                return Err(Error::Invariant(format!("last_index {i} beyond size")));
            }
        }
        Ok(())
    }

    /// Reset slot `slot` of every member to its default.
    fn reset_slot(&mut self, slot: usize) -> Result<()> {
        for (col, m) in self.columns.iter_mut().zip(self.schema.members()) {
            col.reset_slot(slot, m.default_value())?;
        }
        Ok(())
    }

    /// Drop every entry and change the size. Reallocates every column (old buffers are freed).
    ///
    /// # Errors
    /// As [`StaticStore::try_new`], and [`Error::ChunkAllocation`] for a chunk of a dynamic store;
    /// nothing changes on error.
    pub fn reset_with_size(&mut self, size: usize) -> Result<()> {
        self.refuse_chunk()?;
        self.access.check_structure("reset")?;
        // New slots start above every generation the old ones (and any before them) reached: old views
        // stay stale.
        let base = self.next_base.max(self.slots.max_generation().wrapping_add(1));
        let mut fresh = StaticStore::try_new_from(Arc::clone(&self.schema), size, base, None, false)?;
        fresh.slots.continue_changes(&self.slots);
        *self = fresh;
        Ok(())
    }

    /// Occupy the `n` lowest free slots without resetting their members: only for slots that still hold
    /// their defaults, as every slot of a new store does. The bulk-load path of `KeyedStore::from_columns`
    /// (`next_index` resets every member of the slot through a `Value`). O(n).
    ///
    /// # Errors
    /// [`Error::StoreFull`] if fewer than `n` slots are free.
    pub(crate) fn occupy_fresh(&mut self, n: usize) -> Result<()> {
        self.access.check_structure("adding entries")?;
        for _ in 0..n {
            let slot = self.slots.alloc().ok_or_else(|| Error::StoreFull {
                size: self.slots.size(),
            })?;
            self.last_index = Some(slot);
        }
        Ok(())
    }
}

impl Store for StaticStore {
    fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    fn chunks(&self) -> &[StaticStore] {
        std::slice::from_ref(self)
    }

    fn chunks_mut(&mut self, _: Internal) -> &mut [StaticStore] {
        std::slice::from_mut(self)
    }

    #[inline]
    fn locate(&self, i: usize) -> Result<(usize, usize)> {
        if i < self.slots.size() {
            Ok((0, i))
        } else {
            Err(Error::IndexOutOfRange {
                index: i as i64,
                len: self.slots.size(),
            })
        }
    }

    fn next_index(&mut self) -> Result<usize> {
        self.refuse_chunk()?;
        self.alloc_slot()
    }

    fn add_scalars(&mut self, values: &[(usize, Scalar)]) -> Result<usize> {
        self.refuse_chunk()?;
        self.check_scalars(values)?;
        let i = self.alloc_slot_writing(values)?;
        self.put_scalars(i, values)?;
        Ok(i)
    }

    fn remove(&mut self, i: usize) -> Result<()> {
        self.refuse_chunk()?;
        self.free_slot(i)
    }

    fn last_index(&self) -> Option<usize> {
        self.last_index
    }

    fn reset(&mut self) -> Result<()> {
        self.refuse_chunk()?;
        self.access.check_structure("reset")?;
        self.clear_slots();
        Ok(())
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn changes(&self) -> u64 {
        self.slots.changes()
    }

    fn size(&self) -> usize {
        self.slots.size()
    }

    fn space(&self) -> usize {
        self.slots.size() - self.slots.len()
    }

    fn validate(&self) -> Result<()> {
        self.validate_chunk()?;
        validate_dictionaries(std::slice::from_ref(self))
    }
}

/// Check the dictionaries of the interned members of `chunks` (the chunks of one store): every chunk
/// shares the first one's dictionary, and each refcount equals the number of slots holding its code.
/// Whether a store of `access` may write column `c` (see [`Access`]).
fn check_column_write(access: Access, c: &Column) -> Result<()> {
    let fixed = match c {
        Column::Fixed(_) => true,
        Column::Optional(o) => o.values_fixed().is_some(),
        _ => false,
    };
    match access {
        Access::ReadWrite => Ok(()),
        Access::InPlace if fixed => Ok(()),
        Access::InPlace => access.check_structure("writing a str, bytes or interned member"),
        Access::ReadOnly => access.check_structure("writing"),
    }
}

pub(crate) fn validate_dictionaries(chunks: &[StaticStore]) -> Result<()> {
    let Some(first) = chunks.first() else {
        return Ok(());
    };
    for (m, col) in first.columns.iter().enumerate() {
        let Some(ic) = col.as_interned() else {
            continue;
        };
        let mut counts = Vec::new();
        for (c, chunk) in chunks.iter().enumerate() {
            let other = chunk
                .columns
                .get(m)
                .and_then(Column::as_interned)
                .ok_or_else(|| Error::Invariant(format!("chunk {c}: member {m} is not interned")))?;
            if !Arc::ptr_eq(other.dictionary(), ic.dictionary()) {
                return Err(Error::Invariant(format!(
                    "chunk {c}: member {m} does not share the store's dictionary"
                )));
            }
            other.count_codes(&mut counts)?;
        }
        ic.dictionary()
            .read()
            .map_err(|_| Error::Invariant("dictionary lock poisoned".into()))?
            .validate(&counts)
            .map_err(|e| e.in_member_check(&m.to_string()))?;
    }
    Ok(())
}

/// [`Error::IndexOutOfRange`] for member `m` of `len`, built out of line (hot paths only test for it).
#[cold]
#[inline(never)]
fn member_out_of_range(m: usize, len: usize) -> Error {
    Error::IndexOutOfRange {
        index: i64::try_from(m).unwrap_or(i64::MAX),
        len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Dtype, Member, MemberType};
    use crate::value::Value;

    fn genes(size: usize) -> StaticStore {
        let schema = Schema::new(vec![
            Member::new("ref", MemberType::Scalar(Dtype::I64))
                .unwrap()
                .read_only(true),
            Member::new("fitness", MemberType::Scalar(Dtype::F32))
                .unwrap()
                .with_default(0.5f32.into())
                .unwrap(),
            Member::new("inputs", MemberType::Array(Dtype::U8, 8)).unwrap(),
        ])
        .unwrap();
        StaticStore::new(Arc::new(schema), size)
    }

    #[test]
    fn full_store_is_an_error_not_a_panic() {
        let mut s = genes(2);
        s.next_index().unwrap();
        s.next_index().unwrap();
        assert_eq!(s.next_index(), Err(Error::StoreFull { size: 2 }));
        assert_eq!(s.space(), 0);
        s.validate().unwrap();
    }

    #[test]
    fn entry_after_slot_reuse_is_stale() {
        // A view must see that its slot was freed and reused: the generation changes on free.
        let mut s = genes(4);
        let i = s.next_index().unwrap();
        let g = s.generation(i).unwrap();
        s.remove(i).unwrap();
        assert_eq!(s.next_index().unwrap(), i);
        assert_ne!(s.generation(i).unwrap(), g);
    }

    #[test]
    fn views_stay_stale_across_a_resize_to_zero() {
        // A reset to size 0 has no slots to remember generations by; the floor must carry over.
        let mut s = genes(1);
        let i = s.next_index().unwrap();
        s.remove(i).unwrap();
        let i = s.next_index().unwrap();
        let g = s.generation(i).unwrap();
        s.reset_with_size(0).unwrap();
        s.reset_with_size(1).unwrap();
        s.reset_with_size(2).unwrap();
        assert_eq!(s.next_index().unwrap(), i);
        assert!(s.generation(i).unwrap() > g);
    }

    #[test]
    fn views_survive_no_resize() {
        // reset_with_size makes new slots: their generations start above the old ones, so a view of an
        // old entry never reads the new entry in its slot.
        let mut s = genes(2);
        let i = s.next_index().unwrap();
        let g = s.generation(i).unwrap();
        s.reset_with_size(3).unwrap();
        assert_eq!(s.next_index().unwrap(), i);
        assert_ne!(s.generation(i).unwrap(), g);
    }

    #[test]
    fn read_only_members_are_written_only_at_creation() {
        let mut s = genes(4);
        let i = s.add(&[(0, Value::Int(9))]).unwrap();
        assert_eq!(s.get(i, 0).unwrap(), Value::Int(9));
        assert_eq!(
            s.set(i, 0, &Value::Int(1)),
            Err(Error::ReadOnly { name: "ref".into() })
        );
        assert_eq!(s.get(i, 0).unwrap(), Value::Int(9));
    }

    #[test]
    fn remove_resets_to_defaults_and_refuses_free_slots() {
        let mut s = genes(4);
        let i = s.next_index().unwrap();
        s.set(i, 1, &Value::Float(2.0)).unwrap();
        s.set_element(i, 2, 3, &Value::Int(200)).unwrap();
        s.remove(i).unwrap();
        assert_eq!(s.get(i, 1).unwrap(), Value::Float(0.5));
        assert_eq!(s.get_element(i, 2, 3).unwrap(), Value::UInt(0));
        assert_eq!(s.remove(i), Err(Error::SlotFree { index: i }));
        assert_eq!(s.remove(9), Err(Error::IndexOutOfRange { index: 9, len: 4 }));
    }

    #[test]
    fn indices_and_empty_indices_partition_the_slots() {
        let mut s = genes(5);
        for _ in 0..4 {
            s.next_index().unwrap();
        }
        s.remove(1).unwrap();
        assert_eq!(s.indices().collect::<Vec<_>>(), vec![0, 2, 3]);
        assert_eq!(s.empty_indices().unwrap(), vec![1, 4]);
        s.reset().unwrap();
        assert_eq!(s.len(), 0);
        assert_eq!(s.last_index(), None);
        assert_eq!(s.get(2, 1).unwrap(), Value::Float(0.5));
    }

    /// Every member of every slot, to show a refused call changed nothing.
    fn snapshot(s: &StaticStore) -> Vec<Value> {
        (0..s.size())
            .flat_map(|i| (0..3).map(move |m| (i, m)))
            .map(|(i, m)| s.get(i, m).unwrap())
            .collect()
    }

    #[test]
    fn set_scalar_writes_its_dtype_and_refuses_the_rest() {
        let mut s = genes(2);
        s.set_scalar(1, 1, Scalar::F32(2.5)).unwrap();
        assert_eq!(s.get(1, 1).unwrap(), Value::Float(2.5));
        let before = snapshot(&s);
        for (i, m, x) in [
            (0, 1, Scalar::F64(1.0)), // another dtype
            (0, 2, Scalar::U8(1)),    // an array member
        ] {
            assert!(
                matches!(s.set_scalar(i, m, x), Err(Error::WrongType { .. })),
                "{m} {x:?}"
            );
        }
        assert_eq!(
            s.set_scalar(0, 0, Scalar::I64(1)),
            Err(Error::ReadOnly { name: "ref".into() })
        );
        assert_eq!(
            s.set_scalar(2, 1, Scalar::F32(1.0)),
            Err(Error::IndexOutOfRange { index: 2, len: 2 })
        );
        assert!(matches!(
            s.set_scalar(0, 3, Scalar::F32(1.0)),
            Err(Error::IndexOutOfRange { .. })
        ));
        assert_eq!(snapshot(&s), before);
        s.validate().unwrap();
    }

    #[test]
    fn add_scalars_checks_everything_before_allocating() {
        let mut s = genes(1);
        let before = snapshot(&s);
        for bad in [
            vec![(0, Scalar::I64(1)), (1, Scalar::F64(1.0))],
            vec![(0, Scalar::I64(1)), (2, Scalar::U8(1))],
            vec![(7, Scalar::I64(1))],
        ] {
            assert!(s.add_scalars(&bad).is_err(), "{bad:?}");
            assert_eq!((s.len(), s.last_index()), (0, None));
        }
        assert_eq!(snapshot(&s), before);
        // Read-only members are written: the entry is being created.
        let i = s
            .add_scalars(&[(0, Scalar::I64(9)), (1, Scalar::F32(1.5))])
            .unwrap();
        assert_eq!(
            (s.get(i, 0).unwrap(), s.get(i, 1).unwrap()),
            (Value::Int(9), Value::Float(1.5))
        );
        let before = snapshot(&s);
        assert_eq!(
            s.add_scalars(&[(0, Scalar::I64(1))]),
            Err(Error::StoreFull { size: 1 })
        );
        assert_eq!(snapshot(&s), before);
        s.validate().unwrap();
    }

    /// `add_scalars` skips the reset of the members it writes: the others still get their defaults,
    /// also past the 256 members the skip mask covers, on a free slot that was written.
    #[test]
    fn add_scalars_resets_only_the_members_it_does_not_write() {
        let members = (0..300)
            .map(|j| {
                Member::new(format!("m{j}"), MemberType::Scalar(Dtype::I64))
                    .unwrap()
                    .with_default(Value::Int(-(j as i64) - 1))
                    .unwrap()
            })
            .collect();
        let schema = Arc::new(Schema::new(members).unwrap());
        fn check(st: &mut impl Store) {
            let written = [
                (3, Scalar::I64(30)),
                (299, Scalar::I64(2990)),
                (64, Scalar::I64(640)),
            ];
            let all: Vec<(usize, Value)> = (0..300).map(|j| (j, Value::Int(j as i64 * 7))).collect();
            let first = st.add(&all).unwrap();
            st.remove(first).unwrap();
            assert_eq!(first, 0);
            for k in 0..2 {
                // A free slot may be written (its values are reset when it is allocated): slot 0 was
                // used and deleted, slot 1 never used.
                for j in 0..300 {
                    st.set(k, j, &Value::Int(99)).unwrap();
                }
                let i = st.add_scalars(&written).unwrap();
                assert_eq!(i, k);
                for j in 0..300 {
                    let want = match written.iter().find(|w| w.0 == j) {
                        Some(&(_, Scalar::I64(v))) => v,
                        _ => -(j as i64) - 1,
                    };
                    assert_eq!(st.get(i, j).unwrap(), Value::Int(want), "member {j}");
                }
            }
            st.validate().unwrap();
        }
        check(&mut StaticStore::new(Arc::clone(&schema), 2));
        check(&mut crate::DynamicStore::new(schema, 1).unwrap());
    }

    #[test]
    fn update_is_all_or_nothing_and_checks_the_entry() {
        let mut s = genes(3);
        let i = s.add(&[(0, Value::Int(1))]).unwrap();
        let g = s.generation(i).unwrap();
        s.update(i, g, &[(1, Value::Float(2.0)), (2, vec![1u8; 8].into())])
            .unwrap();
        s.update(i, g, &[(1, Value::Float(3.0))]).unwrap();
        s.update(i, g, &[]).unwrap();
        assert_eq!(s.get(i, 1).unwrap(), Value::Float(3.0));
        assert_eq!(s.get_element(i, 2, 7).unwrap(), Value::UInt(1));
        let before = snapshot(&s);
        let bad_value = [
            (1, Value::Float(4.0)),
            (2, vec![1i64, 2, 3, 4, 5, 6, 7, 300].into()),
        ];
        assert!(matches!(
            s.update(i, g, &bad_value),
            Err(Error::ValueOutOfRange { .. })
        ));
        let read_only = [(1, Value::Float(4.0)), (0, Value::Int(2))];
        assert_eq!(
            s.update(i, g, &read_only),
            Err(Error::ReadOnly { name: "ref".into() })
        );
        assert_eq!(
            s.update(i, g, &[(0, Value::Int(2))]),
            Err(Error::ReadOnly { name: "ref".into() })
        );
        assert!(matches!(
            s.update(i, g, &[(1, Value::Float(4.0)), (5, Value::Int(2))]),
            Err(Error::IndexOutOfRange { .. })
        ));
        for (slot, gen) in [(i, g + 1), (1, 0), (3, 0)] {
            assert_eq!(
                s.update(slot, gen, &[(1, Value::Float(4.0))]),
                Err(Error::StaleEntry { index: slot })
            );
        }
        assert_eq!(snapshot(&s), before);
        // A freed and reused slot holds another entry.
        s.remove(i).unwrap();
        assert_eq!(s.next_index().unwrap(), i);
        assert_eq!(
            s.update(i, g, &[(1, Value::Float(4.0))]),
            Err(Error::StaleEntry { index: i })
        );
        s.validate().unwrap();
    }

    #[test]
    fn scatter_values_checks_everything_first() {
        let mut s = genes(3);
        s.scatter_values(1, &[2, 0], &[Value::Float(2.0), Value::Int(1)])
            .unwrap();
        assert_eq!(s.column_slice::<f32>(1).unwrap(), &[1.0, 0.5, 2.0]);
        let before = snapshot(&s);
        assert_eq!(
            s.scatter_values(0, &[0], &[Value::Int(1)]),
            Err(Error::ReadOnly { name: "ref".into() })
        );
        assert_eq!(
            s.scatter_values(1, &[0, 1], &vec![Value::Float(1.0); 3]),
            Err(Error::WrongLength { expected: 2, got: 3 })
        );
        assert!(matches!(
            s.scatter_values(1, &[0, 1], &[Value::Float(9.0), Value::Float(1e39)]),
            Err(Error::ValueOutOfRange { .. })
        ));
        assert!(matches!(
            s.scatter_values(1, &[0, 1], &[Value::Float(9.0), Value::from("x")]),
            Err(Error::WrongType { .. })
        ));
        assert_eq!(
            s.scatter_values(1, &[0, 3], &[Value::Float(9.0), Value::Float(9.0)]),
            Err(Error::IndexOutOfRange { index: 3, len: 3 })
        );
        assert!(matches!(
            s.scatter_values(4, &[0], &[Value::Float(9.0)]),
            Err(Error::IndexOutOfRange { .. })
        ));
        assert_eq!(snapshot(&s), before);
        // One value is written to every slot (a broadcast).
        s.scatter_values(1, &[0, 2], &[Value::Float(7.0)]).unwrap();
        assert_eq!(s.column_slice::<f32>(1).unwrap(), &[7.0, 0.5, 7.0]);
    }

    #[test]
    fn export_buffer_hands_out_a_fixed_members_bytes() {
        let mut s = genes(3);
        let p = s.column_slice::<f32>(1).unwrap().as_ptr().cast::<u8>();
        let b = s.export_buffer(1).unwrap();
        assert_eq!((b.as_ptr(), b.len(), b.is_writable()), (p, 12, true));
        assert!(!b.is_empty());
        let ro = s.export_buffer(0).unwrap();
        assert_eq!((ro.len(), ro.is_writable(), ro.as_mut_ptr()), (24, false, None));
        assert_eq!(s.export_buffer(2).unwrap().len(), 24);
        assert!(matches!(s.export_buffer(3), Err(Error::IndexOutOfRange { .. })));
        let schema = Schema::new(vec![Member::new("name", MemberType::Str).unwrap()]).unwrap();
        let mut t = StaticStore::new(Arc::new(schema), 2);
        assert!(matches!(t.export_buffer(0), Err(Error::WrongType { .. })));
    }

    #[test]
    fn gather_and_scatter_check_everything_first() {
        let mut s = genes(3);
        s.scatter::<f32>(1, &[0, 2], &[1.0, 3.0]).unwrap();
        let mut out = Vec::new();
        s.gather::<f32>(1, &[2, 1, 0], &mut out).unwrap();
        assert_eq!(out, vec![3.0, 0.5, 1.0]);
        assert!(s.scatter::<f32>(1, &[0, 3], &[9.0, 9.0]).is_err());
        assert!(s.scatter::<f64>(1, &[0], &[9.0]).is_err());
        assert!(s.scatter::<i64>(0, &[0], &[9]).is_err());
        assert_eq!(s.column_slice::<f32>(1).unwrap(), &[1.0, 0.5, 3.0]);
    }
}
