//! The slot allocator of a fixed-size store: occupancy bitmap, lowest-free-first reuse, generations.
//!
//! ```text
//!   occupied: one bit per slot, 64 slots per word      generations: base + one u32 per slot
//!   word 0: bit i = slot i holds an entry               bumped (wrapping) each time slot i is freed
//! ```
//! An entry view remembers `(slot, generation)`; it is valid while the slot is occupied and its
//! generation is unchanged, so a view of a freed slot, or of a slot freed and reused, is stale.
//!
//! **Generations cost nothing until a slot is freed.** Every slot of a new allocator has the generation
//! `base`; the per-slot counters (one u32 each) are allocated, zeroed, the first time a slot is freed. A
//! store that is only filled (or filled and then cleared whole) never pays the 4 bytes per slot.

use bytemuck::allocation::try_zeroed_slice_box;

use crate::error::{Error, Result};

/// The allocator of `size` slots.
#[derive(Debug, Clone)]
pub struct Slots {
    /// One bit per slot, 64 per word: heap memory, or a loaded file's bitmap used in place (written
    /// only if writable; a read-only one is copied first, see `words_mut`).
    occupied: crate::column::AlignedBuf,
    /// The generation of every slot whose counter was never bumped (and the origin of the counters).
    base: u32,
    /// Empty until the first `free`, then one counter per slot: slot `i`'s generation is
    /// `base + bumps[i]` (wrapping).
    bumps: Vec<u32>,
    /// A loaded file's generations, read in place until the first change (`bumps_mut` copies them
    /// into `bumps`); `bumps` is empty meanwhile.
    file_bumps: Option<crate::column::AlignedBuf>,
    size: usize,
    len: usize,
    /// No free slot lies below this one.
    free_hint: usize,
    /// Bumped (wrapping) by every `alloc`, `free` and `clear`: see [`Slots::changes`].
    changes: u64,
}

impl Slots {
    /// `size` free slots. Allocates once.
    #[must_use]
    pub fn new(size: usize) -> Slots {
        Slots::with_generation(size, 0)
    }

    /// `size` free slots whose generations all start at `base`. A store that replaces dropped slots
    /// starts the new ones above every generation the dropped ones reached, so views of dropped slots stay
    /// stale. Allocates once.
    #[must_use]
    ///
    /// # Panics
    /// If the bookkeeping cannot be allocated; [`Slots::try_with_generation`] is the fallible twin.
    #[track_caller]
    pub fn with_generation(size: usize, base: u32) -> Slots {
        match Slots::try_with_generation(size, base) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    /// As [`Slots::with_generation`], returning an error when the buffers cannot be allocated.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the allocation fails.
    pub fn try_with_generation(size: usize, base: u32) -> Result<Slots> {
        // Zeroed allocations (calloc): pages of slots never used are never made resident.
        let occupied = crate::column::AlignedBuf::try_zeroed(size.div_ceil(64) * 8)?;
        Ok(Slots {
            occupied,
            base,
            bumps: Vec::new(),
            file_bumps: None,
            size,
            len: 0,
            free_hint: 0,
            changes: 0,
        })
    }

    /// Save the allocator: size, generation base, the occupancy bitmap and, if made, the generations.
    pub(crate) fn save<'a>(&'a self, w: &mut crate::file::format::Writer<'a>) {
        use crate::file::format::Piece;
        w.usize(self.size);
        w.u32(self.base);
        w.usize(self.len);
        w.buf(Piece::Borrowed(self.occupied.bytes()));
        w.u8(u8::from(!self.bumps().is_empty()));
        if !self.bumps().is_empty() {
            w.buf(Piece::Borrowed(bytemuck::cast_slice(self.bumps())));
        }
    }

    /// An allocator from a loaded file (the bitmap copied, bits past `size` cleared, the count and the
    /// free hint recomputed). O(size / 64), and O(size) if the store had freed slots (generations).
    pub(crate) fn load(r: &mut crate::file::format::Reader<'_>, size: usize) -> Result<Slots> {
        use crate::file::format::bad;
        if r.usize()? != size {
            return Err(bad("a slot allocator of the wrong size"));
        }
        let base = r.u32()?;
        let len = r.usize()?;
        if len > size {
            return Err(bad(format!("{len} entries in {size} slots")));
        }
        // Used in place: reading it all would make opening O(size). A bitmap whose count is not `len`,
        // or with bits past the size, is caught by `validate` (run at once for a writable load); a
        // mapped store's reads check slots against the size.
        let occupied = r.buf(size.div_ceil(64) * 8, "an occupancy bitmap")?;
        let file_bumps = match r.u8()? {
            0 => None,
            1 => Some(r.buf(size * 4, "slot generations")?),
            t => return Err(bad(format!("a generations tag {t}"))),
        };
        Ok(Slots {
            occupied,
            base,
            bumps: Vec::new(),
            file_bumps,
            size,
            len,
            free_hint: 0,
            changes: 0,
        })
    }

    /// A copy in new buffers. O(size).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated.
    pub fn try_clone(&self) -> Result<Slots> {
        Ok(Slots {
            occupied: self.occupied.try_clone()?,
            base: self.base,
            bumps: crate::alloc::to_vec(self.bumps(), "a chunk's generations")?,
            file_bumps: None,
            size: self.size,
            len: self.len,
            free_hint: self.free_hint,
            changes: self.changes,
        })
    }

    /// The highest generation of any slot (0 for no slot). O(size).
    #[must_use]
    pub fn max_generation(&self) -> u32 {
        if self.size == 0 {
            0
        } else if self.bumps().is_empty() {
            self.base
        } else {
            self.bumps()
                .iter()
                .map(|&b| self.base.wrapping_add(b))
                .max()
                .unwrap_or(0)
        }
    }

    /// Number of slots.
    #[must_use]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of occupied slots.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no slot is occupied.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `slot` holds an entry (`false` when out of range). O(1).
    #[must_use]
    #[inline]
    pub fn is_occupied(&self, slot: usize) -> bool {
        slot < self.size
            && self
                .words()
                .get(slot / 64)
                .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    /// The generation of `slot`, if in range.
    #[must_use]
    #[inline]
    pub fn generation(&self, slot: usize) -> Option<u32> {
        if slot >= self.size {
            return None;
        }
        let bump = self.bumps().get(slot).copied().unwrap_or(0);
        Some(self.base.wrapping_add(bump))
    }

    /// Allocate the per-slot counters (all zero: every generation stays `base`) if not yet done.
    fn materialize(&mut self) -> Result<()> {
        self.own_bumps();
        if self.bumps.is_empty() && self.size > 0 {
            let size = self.size;
            self.bumps = try_zeroed_slice_box(size)
                .map_err(|()| Error::out_of_memory(size.saturating_mul(4), "a chunk's generations"))?
                .into_vec();
        }
        Ok(())
    }

    /// The per-slot generation counters (empty until a slot is freed).
    #[inline]
    fn bumps(&self) -> &[u32] {
        match &self.file_bumps {
            Some(f) => bytemuck::try_cast_slice(f.bytes()).unwrap_or_default(),
            None => &self.bumps,
        }
    }

    /// Copy a loaded file's generations into `bumps` before changing one.
    fn own_bumps(&mut self) {
        if let Some(f) = self.file_bumps.take() {
            self.bumps = bytemuck::try_cast_slice(f.bytes()).unwrap_or_default().to_vec();
        }
    }

    /// The occupancy bitmap's words.
    #[inline]
    fn words(&self) -> &[u64] {
        // An `AlignedBuf` is 8-byte aligned and its length here a multiple of 8: the cast holds.
        bytemuck::try_cast_slice(self.occupied.bytes()).unwrap_or_default()
    }

    /// The occupancy bitmap's words, mutably: a read-only (loaded) bitmap is copied first. Stores
    /// mapped read-only refuse slot changes before they get here: this keeps a write correct anyway.
    fn words_mut(&mut self) -> &mut [u64] {
        if !self.occupied.is_writable() {
            if let Ok(copy) = self.occupied.try_clone() {
                self.occupied = copy;
            }
        }
        match self.occupied.try_bytes_mut() {
            Ok(b) => bytemuck::try_cast_slice_mut(b).unwrap_or_default(),
            Err(_) => &mut [],
        }
    }

    /// The lowest free slot, if any. O(size / 64) worst case, O(1) amortised for fill-then-free patterns.
    #[must_use]
    pub fn lowest_free(&self) -> Option<usize> {
        let start = self.free_hint / 64;
        for (w, &word) in self.words().iter().enumerate().skip(start) {
            if word != u64::MAX {
                let slot = w * 64 + (!word).trailing_zeros() as usize;
                return (slot < self.size).then_some(slot);
            }
        }
        None
    }

    /// Occupy the lowest free slot and return it, or `None` when full.
    pub fn alloc(&mut self) -> Option<usize> {
        let slot = self.lowest_free()?;
        if let Some(w) = self.words_mut().get_mut(slot / 64) {
            *w |= 1 << (slot % 64);
        }
        self.len += 1;
        self.free_hint = slot + 1;
        self.changes = self.changes.wrapping_add(1);
        Some(slot)
    }

    /// Free an occupied slot and bump its generation.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot >= size`, [`Error::SlotFree`] if it holds no entry,
    /// [`Error::OutOfMemory`] if the per-slot generations (allocated by the first `free`) cannot be
    /// allocated; nothing changes on error.
    pub fn free(&mut self, slot: usize) -> Result<()> {
        if slot >= self.size {
            return Err(Error::IndexOutOfRange {
                index: slot as i64,
                len: self.size,
            });
        }
        if !self.is_occupied(slot) {
            return Err(Error::SlotFree { index: slot });
        }
        self.materialize()?;
        if let Some(w) = self.words_mut().get_mut(slot / 64) {
            *w &= !(1 << (slot % 64));
        }
        self.bumps[slot] = self.bumps[slot].wrapping_add(1);
        self.len -= 1;
        self.free_hint = self.free_hint.min(slot);
        self.changes = self.changes.wrapping_add(1);
        Ok(())
    }

    /// Free every slot (bumping the generation of each occupied one; while no counter was ever bumped,
    /// the shared base is bumped instead, which allocates nothing).
    pub fn clear(&mut self) {
        self.own_bumps();
        if self.bumps.is_empty() {
            if self.len > 0 {
                self.base = self.base.wrapping_add(1);
            }
        } else {
            for w in 0..self.words().len() {
                let mut word = self.words()[w];
                while word != 0 {
                    let slot = w * 64 + word.trailing_zeros() as usize;
                    word &= word - 1;
                    self.bumps[slot] = self.bumps[slot].wrapping_add(1);
                }
            }
        }
        if self.len > 0 {
            self.changes = self.changes.wrapping_add(1);
        }
        self.words_mut().fill(0);
        self.len = 0;
        self.free_hint = 0;
    }

    /// How many times the set of occupied slots has changed (`alloc`, `free`, a `clear` that freed
    /// something; wrapping). An
    /// iterator remembers it to notice entries added or removed behind its back, even when as many were
    /// added as removed. O(1).
    #[must_use]
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Continue the change count of the allocator this one replaces (a store resized in place): `old`,
    /// plus one if the old one held entries (they are gone), so an iterator over it sees the change.
    pub fn continue_changes(&mut self, old: &Slots) {
        self.changes = old.changes.wrapping_add(u64::from(!old.is_empty()));
    }

    /// The lowest occupied slot at or after `from`, if any. Scans the bitmap a word (64 slots) at a
    /// time: O((next - from) / 64).
    #[must_use]
    #[inline]
    pub fn next_occupied(&self, from: usize) -> Option<usize> {
        self.next_occupied_word(from)
            .map(|(base, bits)| base + bits.trailing_zeros() as usize)
    }

    /// The first bitmap word holding an occupied slot at or after `from`: `(base, bits)`, where bit `b`
    /// of the non-zero `bits` set means slot `base + b` is occupied, and the bits of slots below `from`
    /// are cleared. A walk takes every slot of a word from one call. O((next - from) / 64).
    #[must_use]
    #[inline]
    pub fn next_occupied_word(&self, from: usize) -> Option<(usize, u64)> {
        if from >= self.size {
            return None;
        }
        let mut w = from / 64;
        let words = self.words();
        let mut word = words.get(w)? & (u64::MAX << (from % 64));
        while word == 0 {
            w += 1;
            word = *words.get(w)?;
        }
        // No bit at or beyond `size` is ever set (`validate` checks it).
        Some((w * 64, word))
    }

    /// Occupied slots, ascending.
    pub fn occupied_iter(&self) -> impl Iterator<Item = usize> + '_ {
        let size = self.size;
        self.words()
            .iter()
            .enumerate()
            .flat_map(move |(w, &word)| BitIter { word, base: w * 64 })
            .take_while(move |&s| s < size)
    }

    /// Free slots, ascending.
    pub fn free_iter(&self) -> impl Iterator<Item = usize> + '_ {
        let size = self.size;
        self.words()
            .iter()
            .enumerate()
            .flat_map(move |(w, &word)| BitIter {
                word: !word,
                base: w * 64,
            })
            .take_while(move |&s| s < size)
    }

    /// Test hook: set a slot's generation, so tests reach generation wrap-around.
    #[doc(hidden)]
    pub fn set_generation_for_test(&mut self, slot: usize, generation: u32) {
        if slot < self.size && self.materialize().is_ok() {
            self.bumps[slot] = generation.wrapping_sub(self.base);
        }
    }

    /// Whether the per-slot generation counters have been allocated (by a first `free`).
    #[must_use]
    pub fn has_generation_counters(&self) -> bool {
        !self.bumps().is_empty()
    }

    /// Check the allocator's invariants: the bitmap count equals `len`, no bit beyond `size` is set, and
    /// no free slot lies below the hint.
    ///
    /// # Errors
    /// [`Error::Invariant`] naming the broken invariant.
    pub fn validate(&self) -> Result<()> {
        let count: usize = self.words().iter().map(|w| w.count_ones() as usize).sum();
        if count != self.len {
            return Err(Error::Invariant(format!(
                "bitmap holds {count} entries, len is {}",
                self.len
            )));
        }
        if self.occupied_iter().any(|s| s >= self.size) || self.occupied_iter().count() != count {
            return Err(Error::Invariant("occupied bit set beyond size".into()));
        }
        if !(self.bumps().is_empty() || self.bumps().len() == self.size)
            || self.words().len() != self.size.div_ceil(64)
        {
            return Err(Error::Invariant("bookkeeping buffers do not match size".into()));
        }
        if let Some(f) = self.free_iter().next() {
            if f < self.free_hint {
                return Err(Error::Invariant(format!(
                    "free slot {f} below hint {}",
                    self.free_hint
                )));
            }
        }
        Ok(())
    }

    /// Bytes held by the bookkeeping buffers.
    #[must_use]
    pub fn nbytes(&self) -> usize {
        self.occupied.len() + self.bumps().len() * 4
    }
}

/// Iterates over the set bits of one word, as slot numbers.
struct BitIter {
    word: u64,
    base: usize,
}

impl Iterator for BitIter {
    type Item = usize;
    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.word == 0 {
            return None;
        }
        let b = self.word.trailing_zeros() as usize;
        self.word &= self.word - 1;
        Some(self.base + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_is_reused_first() {
        let mut s = Slots::new(130);
        for i in 0..130 {
            assert_eq!(s.alloc(), Some(i));
        }
        assert_eq!(s.alloc(), None);
        s.free(70).unwrap();
        s.free(3).unwrap();
        assert_eq!(s.alloc(), Some(3));
        assert_eq!(s.alloc(), Some(70));
        assert_eq!(s.free(130), Err(Error::IndexOutOfRange { index: 130, len: 130 }));
        s.free(5).unwrap();
        assert_eq!(s.free(5), Err(Error::SlotFree { index: 5 }));
        s.validate().unwrap();
    }

    #[test]
    fn iterators_stop_at_size() {
        let mut s = Slots::new(66);
        s.alloc();
        s.alloc();
        s.free(0).unwrap();
        assert_eq!(s.occupied_iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(s.free_iter().count(), 65);
        assert_eq!(s.free_iter().last(), Some(65));
    }

    #[test]
    fn generations_cost_nothing_until_a_free() {
        let mut s = Slots::with_generation(200, 7);
        for _ in 0..150 {
            s.alloc();
        }
        assert!(!s.has_generation_counters());
        assert_eq!(s.nbytes(), 4 * 8);
        assert_eq!(
            (s.generation(0), s.generation(199), s.generation(200)),
            (Some(7), Some(7), None)
        );
        assert_eq!(s.max_generation(), 7);
        // clearing a store that never freed a slot bumps the base: every old generation is stale
        s.clear();
        assert!(!s.has_generation_counters());
        assert_eq!(s.generation(3), Some(8));
        s.alloc();
        s.alloc();
        s.free(1).unwrap();
        assert!(s.has_generation_counters());
        assert_eq!(s.nbytes(), 4 * 8 + 200 * 4);
        assert_eq!((s.generation(0), s.generation(1)), (Some(8), Some(9)));
        assert_eq!(s.max_generation(), 9);
        s.clear();
        assert_eq!(
            (s.generation(0), s.generation(1), s.generation(2)),
            (Some(9), Some(9), Some(8))
        );
        s.validate().unwrap();
        assert_eq!(Slots::new(0).max_generation(), 0);
    }

    #[test]
    fn next_occupied_scans_words_and_stops_at_size() {
        let mut s = Slots::new(200);
        assert_eq!(s.next_occupied(0), None);
        for _ in 0..200 {
            s.alloc();
        }
        for i in 0..200 {
            if ![3, 64, 130, 199].contains(&i) {
                s.free(i).unwrap();
            }
        }
        let walk: Vec<usize> =
            std::iter::successors(s.next_occupied(0), |&i| s.next_occupied(i + 1)).collect();
        assert_eq!(walk, vec![3, 64, 130, 199]);
        assert_eq!(walk, s.occupied_iter().collect::<Vec<_>>());
        assert_eq!(
            (s.next_occupied(4), s.next_occupied(64), s.next_occupied(65)),
            (Some(64), Some(64), Some(130))
        );
        assert_eq!((s.next_occupied(200), s.next_occupied(usize::MAX)), (None, None));
        assert_eq!(Slots::new(0).next_occupied(0), None);
        assert_eq!(s.next_occupied_word(4), Some((64, 1)));
        assert_eq!(s.next_occupied_word(129), Some((128, 1 << 2)));
        assert_eq!(s.next_occupied_word(131), Some((192, 1 << 7)));
    }

    #[test]
    fn changes_count_every_alloc_free_and_clear() {
        let mut s = Slots::new(4);
        assert_eq!(s.changes(), 0);
        s.alloc();
        s.alloc();
        s.free(0).unwrap();
        assert_eq!(s.changes(), 3);
        // a refused free changes nothing
        assert!(s.free(0).is_err());
        s.alloc();
        assert_eq!((s.len(), s.changes()), (2, 4));
        let mut t = Slots::new(8);
        t.continue_changes(&s);
        assert_eq!(t.changes(), 5);
        s.clear();
        assert_eq!(s.changes(), 5);
        // clearing an empty allocator changes nothing
        s.clear();
        assert_eq!(s.changes(), 5);
        t.continue_changes(&s);
        assert_eq!(t.changes(), 5);
    }

    #[test]
    fn generation_bumps_on_free_and_wraps() {
        let mut s = Slots::new(1);
        s.alloc();
        s.set_generation_for_test(0, u32::MAX);
        s.free(0).unwrap();
        assert_eq!(s.generation(0), Some(0));
    }
}
