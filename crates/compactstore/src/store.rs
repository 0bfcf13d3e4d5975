//! The `Store` trait: what static and dynamic stores share, written once over chunks.

use std::sync::Arc;

use crate::column::Column;
use crate::error::{Error, Result};
use crate::schema::Schema;
use crate::static_store::StaticStore;
use crate::value::{Element, Scalar, Value};

/// Normalise a Python-style index (`-len <= i < len`) to `0 <= i < len`.
///
/// # Errors
/// [`Error::IndexOutOfRange`] outside that range.
///
/// # Examples
/// ```
/// assert_eq!(compactstore::normalize_index(-1, 10)?, 9);
/// assert!(compactstore::normalize_index(10, 10).is_err());
/// # Ok::<(), compactstore::Error>(())
/// ```
pub fn normalize_index(i: i64, len: usize) -> Result<usize> {
    let n = len as i64;
    let j = if i < 0 { i + n } else { i };
    if (0..n).contains(&j) {
        Ok(j as usize)
    } else {
        Err(Error::IndexOutOfRange { index: i, len })
    }
}

/// A token only the engine crate can make. [`Store::chunks_mut`] takes one, so code outside the engine
/// cannot reach a chunk's columns or slots mutably: every write goes through the store's checked calls,
/// which is what lets a chunk refuse writes it cannot take (a read-only backing, a chunk's allocation).
#[derive(Debug, Clone, Copy)]
pub struct Internal(());

/// The one [`Internal`] token.
pub(crate) const INTERNAL: Internal = Internal(());

/// The operations a static and a dynamic store share.
///
/// A store is a list of [`StaticStore`] chunks (one for a static store) addressed by a global slot index;
/// [`Store::locate`] maps a global index to `(chunk, offset)`. Everything else is written once here.
pub trait Store {
    /// The schema shared by every chunk.
    fn schema(&self) -> &Arc<Schema>;

    /// The chunks, in order (one for a static store).
    fn chunks(&self) -> &[StaticStore];

    /// The chunks, mutably: for the engine's own checked writes only (the token cannot be made outside
    /// the crate). Allocation state must only change through the store's own methods.
    #[doc(hidden)]
    fn chunks_mut(&mut self, token: Internal) -> &mut [StaticStore];

    /// Map a global slot index to `(chunk, offset)`. O(1).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `i >= size()`.
    fn locate(&self, i: usize) -> Result<(usize, usize)>;

    /// Occupy the lowest free slot, reset its members to their defaults and return its index.
    ///
    /// # Errors
    /// [`Error::StoreFull`] for a full static store (a dynamic store grows instead),
    /// [`Error::ChunkAllocation`] for a chunk of a dynamic store.
    fn next_index(&mut self) -> Result<usize>;

    /// Free occupied slot `i`: its members return to their defaults and the slot becomes reusable.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `i >= size()`, [`Error::SlotFree`] if it holds no entry,
    /// [`Error::ChunkAllocation`] for a chunk of a dynamic store.
    fn remove(&mut self, i: usize) -> Result<()>;

    /// The index most recently returned by `next_index`/`add`, if any.
    fn last_index(&self) -> Option<usize>;

    /// Drop every entry, keeping the size (a dynamic store keeps one chunk). Buffers stay in place.
    ///
    /// # Errors
    /// [`Error::ChunkAllocation`] for a chunk of a dynamic store (nothing changes); other stores always
    /// succeed.
    fn reset(&mut self) -> Result<()>;

    /// Number of occupied slots. O(1).
    fn len(&self) -> usize;

    /// Slots allocated. O(1).
    fn size(&self) -> usize;

    /// Free slots before the store must grow (`usize::MAX` for a dynamic store).
    fn space(&self) -> usize;

    /// Check internal invariants.
    ///
    /// # Errors
    /// [`Error::Invariant`] naming the first broken one.
    fn validate(&self) -> Result<()>;

    /// Whether no slot is occupied.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether slot `i` holds an entry (`false` when out of range). O(1).
    fn occupied(&self, i: usize) -> bool {
        match self.locate(i) {
            Ok((c, o)) => self.chunks().get(c).is_some_and(|s| s.slots().is_occupied(o)),
            Err(_) => false,
        }
    }

    /// The generation of slot `i` if it holds an entry (`None` if it is free or out of range): the
    /// liveness test of an entry view, `occupied` and `generation` with one `locate`. O(1).
    ///
    /// # Examples
    /// ```
    /// use compactstore::{Dtype, Member, MemberType, Schema, StaticStore, Store};
    /// let schema = Schema::new(vec![Member::new("x", MemberType::Scalar(Dtype::I32))?])?;
    /// let mut s = StaticStore::new(schema.into(), 2);
    /// let i = s.next_index()?;
    /// assert_eq!(s.live_generation(i), Some(s.generation(i)?));
    /// s.remove(i)?;
    /// assert_eq!((s.live_generation(i), s.live_generation(7)), (None, None));
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    #[inline]
    fn live_generation(&self, i: usize) -> Option<u32> {
        let (c, o) = self.locate(i).ok()?;
        let slots = self.chunks().get(c)?.slots();
        if slots.is_occupied(o) {
            slots.generation(o)
        } else {
            None
        }
    }

    /// The generation of slot `i` (bumped each time it is freed).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `i >= size()`.
    fn generation(&self, i: usize) -> Result<u32> {
        let (c, o) = self.locate(i)?;
        chunk(self.chunks(), c)?
            .slots()
            .generation(o)
            .ok_or_else(|| Error::IndexOutOfRange {
                index: i as i64,
                len: self.size(),
            })
    }

    /// Occupied slot indices, ascending.
    fn indices(&self) -> Box<dyn Iterator<Item = usize> + '_> {
        let cs = self.chunks().first().map_or(1, StaticStore::size);
        Box::new(
            self.chunks()
                .iter()
                .enumerate()
                .flat_map(move |(c, s)| s.slots().occupied_iter().map(move |o| c * cs + o)),
        )
    }

    /// The lowest occupied slot index at or after `from`, if any: the step of a lazy walk over the
    /// entries (`from` is one past the slot the walk last returned). Skips empty chunks in O(1) each and
    /// scans the others' bitmaps a word (64 slots) at a time; allocates nothing.
    ///
    /// # Examples
    /// ```
    /// # use compactstore::{Member, MemberType, Dtype, Schema, StaticStore, Store};
    /// # let schema = std::sync::Arc::new(Schema::new(vec![Member::new("x", MemberType::Scalar(Dtype::I64))?])?);
    /// let mut s = StaticStore::new(schema, 100);
    /// for _ in 0..3 {
    ///     s.next_index()?;
    /// }
    /// s.remove(1)?;
    /// assert_eq!((s.next_occupied(0), s.next_occupied(1), s.next_occupied(3)), (Some(0), Some(2), None));
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    fn next_occupied(&self, from: usize) -> Option<usize> {
        self.next_occupied_word(from)
            .map(|(base, bits)| base + bits.trailing_zeros() as usize)
    }

    /// The bitmap word holding the lowest occupied slot at or after `from`, as `(base, bits)`: bit `b`
    /// of the non-zero `bits` set means slot `base + b` is occupied (bits below `from` are cleared, and
    /// all of them lie in one chunk). A walk takes up to 64 slots from one call; cost as
    /// [`Store::next_occupied`].
    fn next_occupied_word(&self, from: usize) -> Option<(usize, u64)> {
        let chunks = self.chunks();
        let cs = chunks.first().map_or(0, StaticStore::size);
        if cs == 0 {
            return None;
        }
        // Shifts, not divisions, where it can: a dynamic store's chunk size is a power of two.
        let (mut c, mut o) = if from < cs {
            (0, from)
        } else if cs.is_power_of_two() {
            (from >> cs.trailing_zeros(), from & (cs - 1))
        } else {
            (from / cs, from % cs)
        };
        while let Some(chunk) = chunks.get(c) {
            if !chunk.slots().is_empty() {
                if let Some((base, bits)) = chunk.slots().next_occupied_word(o) {
                    return Some((c * cs + base, bits));
                }
            }
            c += 1;
            o = 0;
        }
        None
    }

    /// A count that changes whenever entries are added or removed (`next_index`, `remove`, `reset`, a
    /// resize), even when as many are added as removed: an iterator compares it to notice that the store
    /// changed under it. Member writes leave it alone. O(1).
    fn changes(&self) -> u64;

    /// Free slot indices below `size()`, ascending. O(size / 64 + free slots).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the list cannot be allocated (a store of billions of free slots).
    fn empty_indices(&self) -> Result<Vec<usize>> {
        let cs = self.chunks().first().map_or(1, StaticStore::size);
        let mut out = Vec::new();
        crate::alloc::reserve_exact(
            &mut out,
            self.size().saturating_sub(self.len()),
            "a list of free slots",
        )?;
        out.extend(
            self.chunks()
                .iter()
                .enumerate()
                .flat_map(|(c, s)| s.slots().free_iter().map(move |o| c * cs + o)),
        );
        Ok(out)
    }

    /// Bytes held by the data and bookkeeping buffers of every chunk, plus each interned member's
    /// dictionary once (the chunks share it: it is counted with the first chunk only).
    fn nbytes(&self) -> usize {
        self.chunks().iter().map(StaticStore::nbytes_own).sum::<usize>()
            + self.chunks().first().map_or(0, StaticStore::dictionaries_nbytes)
    }

    /// The column of member `m` in the chunk holding slot `i`, and the slot's offset in it.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a slot or member out of range.
    fn column_at(&self, i: usize, m: usize) -> Result<(&Column, usize)> {
        let (c, o) = self.locate(i)?;
        Ok((chunk(self.chunks(), c)?.column(m)?, o))
    }

    /// Scalar member `m` of slot `i` as a typed [`Scalar`], read straight from its column (free slots
    /// read as the default): the hot read of the bindings' `m[i]`, `e[name]` and `pool[k, name]`. `None`
    /// where [`Store::get`] would fail or return anything but a numeric scalar (a slot or member out of
    /// range, an array, str, bytes, interned, optional or object member): the caller takes the general
    /// path, which reports the error. O(1), no allocation.
    ///
    /// # Examples
    /// ```
    /// use compactstore::{Dtype, Member, MemberType, Scalar, Schema, StaticStore, Store};
    /// let schema = Schema::new(vec![Member::new("x", MemberType::Scalar(Dtype::I16))?])?;
    /// let mut s = StaticStore::new(schema.into(), 2);
    /// s.set_scalar(1, 0, Scalar::I16(-3))?;
    /// assert_eq!(s.scalar_at(1, 0), Some(Scalar::I16(-3)));
    /// assert_eq!(s.scalar_at(2, 0), None); // out of range
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    #[inline]
    fn scalar_at(&self, i: usize, m: usize) -> Option<Scalar> {
        let (c, o) = self.locate(i).ok()?;
        self.chunks().get(c)?.column(m).ok()?.scalar(o)
    }

    /// Member `m` of slot `i`. Free slots read as the default.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a slot or member out of range.
    fn get(&self, i: usize, m: usize) -> Result<Value> {
        let (col, o) = self.column_at(i, m)?;
        col.get(o)
    }

    /// Element `k` of array member `m` at slot `i`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a slot, member or element out of range; [`Error::WrongType`] for a
    /// member that is not fixed-width.
    fn get_element(&self, i: usize, m: usize, k: usize) -> Result<Value> {
        let (col, o) = self.column_at(i, m)?;
        fixed(col)?.get_element(o, k)
    }

    /// Write member `m` of slot `i` (free slots too). Nothing changes on error.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] for a read-only member, [`Error::IndexOutOfRange`], and the conversion errors
    /// of [`crate::MemberType::canonical`].
    fn set(&mut self, i: usize, m: usize, v: &Value) -> Result<()> {
        check_writable(self.schema(), m)?;
        self.write(i, m, v)
    }

    /// Write element `k` of array member `m` at slot `i`. Nothing changes on error.
    ///
    /// # Errors
    /// As [`Store::set`], and [`Error::IndexOutOfRange`] for `k`.
    fn set_element(&mut self, i: usize, m: usize, k: usize, v: &Value) -> Result<()> {
        check_writable(self.schema(), m)?;
        let (c, o) = self.locate(i)?;
        let col = chunk_mut(self.chunks_mut(INTERNAL), c)?.column_mut(m)?;
        col.as_fixed_mut()
            .ok_or_else(|| Error::WrongType {
                expected: "array member".into(),
                got: "other".into(),
            })?
            .set_element(o, k, v)
    }

    /// Write the typed scalar `x` to scalar member `m` of slot `i` (free slots too): the fast path of a
    /// numeric write, with no [`Value`] conversion. O(1). Nothing changes on error.
    ///
    /// # Errors
    /// [`Error::ReadOnly`] for a read-only member, [`Error::IndexOutOfRange`] for a slot or member out of
    /// range, [`Error::WrongType`] unless `m` is a scalar member of `x`'s dtype.
    ///
    /// # Examples
    /// ```
    /// use compactstore::{Dtype, Member, MemberType, Scalar, Schema, StaticStore, Store, Value};
    /// let schema = Schema::new(vec![Member::new("x", MemberType::Scalar(Dtype::F64))?])?;
    /// let mut s = StaticStore::new(schema.into(), 2);
    /// s.set_scalar(1, 0, Scalar::F64(2.5))?;
    /// assert_eq!(s.get(1, 0)?, Value::Float(2.5));
    /// assert!(s.set_scalar(1, 0, Scalar::F32(1.0)).is_err()); // another dtype
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    #[inline]
    fn set_scalar(&mut self, i: usize, m: usize, x: Scalar) -> Result<()> {
        check_writable(self.schema(), m)?;
        let (c, o) = self.locate(i)?;
        chunk_mut(self.chunks_mut(INTERNAL), c)?
            .column_mut(m)?
            .set_scalar(o, x)
    }

    /// [`Store::add`] for typed scalars: allocate a slot with [`Store::next_index`] and write `values`
    /// (`(member, scalar)` pairs, read-only members included). Every pair is checked before the slot is
    /// allocated, and the writes after it cannot fail: on any error nothing changes. O(values).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a member out of range, [`Error::WrongType`] unless each member is a
    /// scalar member of its scalar's dtype, [`Error::StoreFull`], [`Error::ChunkAllocation`].
    ///
    /// # Examples
    /// ```
    /// use compactstore::{Dtype, Member, MemberType, Scalar, Schema, StaticStore, Store, Value};
    /// let schema = Schema::new(vec![Member::new("ref", MemberType::Scalar(Dtype::U8))?.read_only(true)])?;
    /// let mut s = StaticStore::new(schema.into(), 2);
    /// assert!(s.add_scalars(&[(0, Scalar::I64(7))]).is_err());
    /// assert_eq!(s.len(), 0);
    /// let i = s.add_scalars(&[(0, Scalar::U8(7))])?;
    /// assert_eq!(s.get(i, 0)?, Value::UInt(7));
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    fn add_scalars(&mut self, values: &[(usize, Scalar)]) -> Result<usize> {
        let proto = self
            .chunks()
            .first()
            .ok_or_else(|| Error::Invariant("store has no chunk".into()))?;
        for &(m, x) in values {
            proto.column(m)?.check_scalar(x)?;
        }
        let i = self.next_index()?;
        let (c, o) = self.locate(i)?;
        let chunk = chunk_mut(self.chunks_mut(INTERNAL), c)?;
        for &(m, x) in values {
            // Checked above (member, scalar member, dtype), and `o` is in the chunk.
            chunk.column_mut(m)?.put_scalar(o, x);
        }
        Ok(i)
    }

    /// Write the given members of the entry at slot `i` (the others keep their values), if it is still
    /// the entry of `generation` (what [`Store::generation`] said when a view of it was made): the
    /// merge of `entry.update(mapping)`. All or nothing: the entry is checked, then every member and
    /// value, and room for str/bytes/interned values is made before the first write. O(values).
    ///
    /// # Errors
    /// In this order: [`Error::StaleEntry`] if slot `i` is free, out of range or holds a later entry;
    /// [`Error::IndexOutOfRange`] for a member out of range, [`Error::ReadOnly`] for a read-only member;
    /// the conversion errors of [`crate::MemberType::canonical`]; [`Error::InvalidArgument`] if the room
    /// cannot be allocated.
    ///
    /// # Examples
    /// ```
    /// use compactstore::{Dtype, Error, Member, MemberType, Schema, StaticStore, Store, Value};
    /// let schema = Schema::new(vec![Member::new("x", MemberType::Scalar(Dtype::I32))?])?;
    /// let mut s = StaticStore::new(schema.into(), 2);
    /// let i = s.next_index()?;
    /// let g = s.generation(i)?;
    /// s.update(i, g, &[(0, Value::Int(5))])?;
    /// s.remove(i)?;
    /// assert_eq!(s.update(i, g, &[(0, Value::Int(6))]), Err(Error::StaleEntry { index: i }));
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    fn update(&mut self, i: usize, generation: u32, values: &[(usize, Value)]) -> Result<()> {
        check_entry(self, i, generation)?;
        if let [(m, v)] = values {
            // One value: the checked write alone is all or nothing.
            check_writable(self.schema(), *m)?;
            return self.write(i, *m, v);
        }
        for (m, _) in values {
            check_writable(self.schema(), *m)?;
        }
        let proto = chunk(self.chunks(), 0)?;
        for (m, v) in values {
            proto.column(*m)?.check(v)?;
        }
        self.reserve_writes(i, values)?;
        for (m, v) in values {
            // Checked and reserved above: cannot fail.
            self.write(i, *m, v)?;
        }
        Ok(())
    }

    /// Write `values[k]` to member `m` of slot `indices[k]` (free slots too), converted as
    /// [`Store::set`] does; a single value is written to every slot (a broadcast, without a copy per
    /// slot). Everything is checked first — the member, the length, every value, every index — and room
    /// for str/bytes data is made for all the values, so nothing is written on error. O(values).
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::IndexOutOfRange`] for `m` or an index, [`Error::WrongLength`] if
    /// `values` and `indices` differ in length, and the conversion errors.
    ///
    /// # Examples
    /// ```
    /// use compactstore::{Member, MemberType, Schema, StaticStore, Store, Value};
    /// let schema = Schema::new(vec![Member::new("name", MemberType::Str)?])?;
    /// let mut s = StaticStore::new(schema.into(), 3);
    /// assert!(s.scatter_values(0, &[0, 2], &[Value::from("a"), Value::Int(1)]).is_err());
    /// assert_eq!(s.get(0, 0)?, Value::from(""));
    /// s.scatter_values(0, &[0, 2], &[Value::from("a"), Value::from("c")])?;
    /// assert_eq!(s.get(2, 0)?, Value::from("c"));
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    fn scatter_values(&mut self, m: usize, indices: &[usize], values: &[Value]) -> Result<()> {
        check_scatter(self, m, indices, values)?;
        write_scatter(self, m, indices, values)
    }

    /// Write member `m` of slot `i` even if it is read-only: the write that creates an entry (`add`, the
    /// `s[name] = v` shorthand, a keyed store's replace).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`], and the conversion errors.
    #[inline]
    fn write(&mut self, i: usize, m: usize, v: &Value) -> Result<()> {
        let (c, o) = self.locate(i)?;
        chunk_mut(self.chunks_mut(INTERNAL), c)?.column_mut(m)?.set(o, v)
    }

    /// Make room for writing `values` (`(member, value)` pairs, already checked) at slot `i` — a chunk's
    /// interned codes may need to widen, and long str/bytes values must fit its data buffer — so that
    /// writing them one by one cannot fail halfway. Changes no value.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`], [`Error::InvalidArgument`] for a value beyond a chunk's 4 GiB data
    /// buffer, and [`Error::OutOfMemory`] if the room cannot be allocated.
    fn reserve_writes(&mut self, i: usize, values: &[(usize, Value)]) -> Result<()> {
        let (c, o) = self.locate(i)?;
        let chunk = chunk_mut(self.chunks_mut(INTERNAL), c)?;
        for (m, v) in values {
            chunk.column_mut(*m)?.reserve_for(o, v)?;
        }
        Ok(())
    }

    /// Make room for writing each `(slot, value)` of `writes` to member `m` (already checked), so that a
    /// multi-slot write (a slice assignment) of str/bytes values does not run out of memory part of the
    /// way: each chunk's data buffer grows once by what its slots' values may append. Changes no value.
    /// (A new interned value's own bytes are still allocated by its write.)
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a slot or member; [`Error::OutOfMemory`] if the room cannot be
    /// allocated.
    fn reserve_member_writes(&mut self, m: usize, writes: &[(usize, &Value)]) -> Result<()> {
        let mut need = crate::alloc::filled(self.chunks().len(), 0usize, "a scratch list")?;
        for &(i, v) in writes {
            let (c, o) = self.locate(i)?;
            let n = chunk(self.chunks(), c)?.column(m)?.append_bytes(o, v);
            if let Some(x) = need.get_mut(c) {
                *x = x.saturating_add(n);
            }
        }
        for (c, n) in need.into_iter().enumerate().filter(|&(_, n)| n > 0) {
            chunk_mut(self.chunks_mut(INTERNAL), c)?
                .column_mut(m)?
                .reserve_data(n)?;
        }
        Ok(())
    }

    /// Allocate a slot with [`Store::next_index`] and write `values` (`(member, value)` pairs, read-only
    /// members included). Every value is checked first: on any error nothing is allocated or written.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for a member out of range, the conversion errors, and
    /// [`Error::StoreFull`].
    ///
    /// # Examples
    /// ```
    /// use compactstore::{Dtype, Member, MemberType, Schema, StaticStore, Store, Value};
    /// let schema = Schema::new(vec![Member::new("ref", MemberType::Scalar(Dtype::U8))?])?;
    /// let mut s = StaticStore::new(schema.into(), 2);
    /// assert!(s.add(&[(0, Value::Int(300))]).is_err());
    /// assert_eq!(s.len(), 0);
    /// let i = s.add(&[(0, Value::Int(7))])?;
    /// assert_eq!(s.get(i, 0)?, Value::UInt(7));
    /// # Ok::<(), compactstore::Error>(())
    /// ```
    fn add(&mut self, values: &[(usize, Value)]) -> Result<usize> {
        let proto = self
            .chunks()
            .first()
            .ok_or_else(|| Error::Invariant("store has no chunk".into()))?;
        for (m, v) in values {
            proto.column(*m)?.check(v)?;
        }
        add_checked(self, values)
    }

    /// Take every object reference out of the object members of every chunk, leaving them empty (as after
    /// a reset of those members). For a garbage collector that must break reference cycles; the caller
    /// decides when the references drop. O(size) per object member.
    fn take_objects(&mut self) -> Vec<crate::value::ObjectRef> {
        let mut out = Vec::new();
        for chunk in self.chunks_mut(INTERNAL) {
            for m in 0..chunk.schema().len() {
                if let Some(c) = chunk.column_mut(m).ok().and_then(Column::as_object_mut) {
                    out.extend(c.take_all());
                }
            }
        }
        out
    }

    /// Occupied slots whose member `m` equals `value` (converted like a write), ascending. O(len).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for `m`, and the conversion errors of [`crate::MemberType::canonical`].
    fn find(&self, m: usize, value: &Value) -> Result<Vec<usize>> {
        let target = self.schema().member(m)?.ty().canonical(value)?;
        let mut out = Vec::new();
        for i in self.indices() {
            if self.get(i, m)? == target {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// Copy member `m` of the given slots into `out` (`width` scalars per slot), as `T`.
    ///
    /// # Errors
    /// [`Error::WrongType`] if `T` does not match the member, [`Error::IndexOutOfRange`] for an index,
    /// [`Error::OutOfMemory`] if `out` cannot grow.
    fn gather<T: Element>(&self, m: usize, indices: &[usize], out: &mut Vec<T>) -> Result<()> {
        let w = self.schema().member(m)?.ty().width().unwrap_or(1);
        crate::alloc::reserve(out, indices.len().saturating_mul(w), "a gathered copy")?;
        for &i in indices {
            let (col, o) = self.column_at(i, m)?;
            // The slot's memory, or the default of a slot a lazy chunk has not filled yet.
            out.extend_from_slice(fixed(col)?.slot::<T>(o)?);
        }
        Ok(())
    }

    /// Write `values` (`width` scalars per slot) to member `m` of the given slots. All indices and the
    /// length are checked before anything is written.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], [`Error::WrongType`] if `T` does not match, [`Error::WrongLength`],
    /// [`Error::IndexOutOfRange`].
    fn scatter<T: Element>(&mut self, m: usize, indices: &[usize], values: &[T]) -> Result<()> {
        check_writable(self.schema(), m)?;
        let ty = self.schema().member(m)?.ty();
        let w = ty.width().ok_or_else(|| Error::WrongType {
            expected: "numeric member".into(),
            got: ty.to_string(),
        })?;
        if values.len() != indices.len() * w {
            return Err(Error::WrongLength {
                expected: indices.len() * w,
                got: values.len(),
            });
        }
        for &i in indices {
            self.locate(i)?;
        }
        if let Some(first) = self.chunks().first() {
            fixed(first.column(m)?)?.as_slice::<T>()?;
        }
        for (&i, v) in indices.iter().zip(values.chunks_exact(w.max(1))) {
            let (c, o) = self.locate(i)?;
            let col = chunk_mut(self.chunks_mut(INTERNAL), c)?.column_mut(m)?;
            col.as_fixed_mut()
                .ok_or_else(|| Error::WrongType {
                    expected: "numeric member".into(),
                    got: "other".into(),
                })?
                .slot_mut::<T>(o)?
                .copy_from_slice(v);
        }
        Ok(())
    }
}

/// [`Store::add`] for `values` already checked against their members: allocate, then write.
pub(crate) fn add_checked<S: Store + ?Sized>(s: &mut S, values: &[(usize, Value)]) -> Result<usize> {
    let i = s.next_index()?;
    for (m, v) in values {
        // Checked by the caller, so these writes cannot fail; if one did, free the slot again.
        if let Err(e) = s.write(i, *m, v) {
            let _ = s.remove(i);
            return Err(e);
        }
    }
    Ok(i)
}

/// [`Error::StaleEntry`] unless slot `i` holds the entry of `generation`.
pub(crate) fn check_entry<S: Store + ?Sized>(s: &S, i: usize, generation: u32) -> Result<()> {
    if s.occupied(i) && s.generation(i)? == generation {
        Ok(())
    } else {
        Err(Error::StaleEntry { index: i })
    }
}

/// The checks of [`Store::scatter_values`], in its order.
pub(crate) fn check_scatter<S: Store + ?Sized>(
    s: &S,
    m: usize,
    indices: &[usize],
    values: &[Value],
) -> Result<()> {
    check_writable(s.schema(), m)?;
    if values.len() != indices.len() && values.len() != 1 {
        return Err(Error::WrongLength {
            expected: indices.len(),
            got: values.len(),
        });
    }
    let col = chunk(s.chunks(), 0)?.column(m)?;
    for v in values {
        col.check(v)?;
    }
    for &i in indices {
        s.locate(i)?;
    }
    Ok(())
}

/// Write the values of a scatter that [`check_scatter`] passed.
pub(crate) fn write_scatter<S: Store + ?Sized>(
    s: &mut S,
    m: usize,
    indices: &[usize],
    values: &[Value],
) -> Result<()> {
    let value = |k: usize| values.get(if values.len() == 1 { 0 } else { k });
    if !s.schema().member(m)?.ty().is_numeric() {
        // Room for every str/bytes value first, so the writes cannot run out of memory part of the way.
        let writes = indices
            .iter()
            .enumerate()
            .filter_map(|(k, &i)| Some((i, value(k)?)))
            .collect::<Vec<_>>();
        s.reserve_member_writes(m, &writes)?;
    }
    for (k, &i) in indices.iter().enumerate() {
        if let Some(v) = value(k) {
            s.write(i, m, v)?;
        }
    }
    Ok(())
}

/// [`Error::ReadOnly`] for a read-only member, [`Error::IndexOutOfRange`] for one out of range. On the
/// hot path of every write: the errors are built out of line.
#[inline]
fn check_writable(schema: &Schema, m: usize) -> Result<()> {
    match schema.members().get(m) {
        Some(member) if !member.is_read_only() => Ok(()),
        _ => Err(not_writable(schema, m)),
    }
}

#[cold]
#[inline(never)]
fn not_writable(schema: &Schema, m: usize) -> Error {
    match schema.member(m) {
        Ok(member) => Error::ReadOnly {
            name: member.name().to_owned(),
        },
        Err(e) => e,
    }
}

fn fixed(col: &Column) -> Result<&crate::column::FixedColumn> {
    col.as_fixed().ok_or_else(|| Error::WrongType {
        expected: "numeric member".into(),
        got: "other".into(),
    })
}

pub(crate) fn chunk(chunks: &[StaticStore], c: usize) -> Result<&StaticStore> {
    match chunks.get(c) {
        Some(x) => Ok(x),
        None => Err(Error::IndexOutOfRange {
            index: c as i64,
            len: chunks.len(),
        }),
    }
}

pub(crate) fn chunk_mut(chunks: &mut [StaticStore], c: usize) -> Result<&mut StaticStore> {
    let len = chunks.len();
    match chunks.get_mut(c) {
        Some(x) => Ok(x),
        None => Err(Error::IndexOutOfRange { index: c as i64, len }),
    }
}
