//! The slot allocator of a fixed-size store: occupancy bitmap, lowest-free-first reuse, generations.
//!
//! ```text
//!   occupied: one bit per slot, 64 slots per word      generations: one u32 per slot
//!   word 0: bit i = slot i holds an entry               bumped (wrapping) each time slot i is freed
//! ```
//! An entry view remembers `(slot, generation)`; it is valid while the slot is occupied and its
//! generation is unchanged, so a view of a freed slot, or of a slot freed and reused, is stale.

use bytemuck::allocation::try_zeroed_slice_box;

use crate::error::{Error, Result};

/// The allocator of `size` slots.
#[derive(Debug, Clone)]
pub struct Slots {
    occupied: Vec<u64>,
    generations: Vec<u32>,
    size: usize,
    len: usize,
    /// No free slot lies below this one.
    free_hint: usize,
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
    /// [`Error::InvalidArgument`] if the allocation fails.
    pub fn try_with_generation(size: usize, base: u32) -> Result<Slots> {
        let too_big = || Error::InvalidArgument(format!("cannot allocate bookkeeping for {size} slots"));
        // Zeroed allocations (calloc): pages of slots never used are never made resident.
        let occupied: Vec<u64> = try_zeroed_slice_box(size.div_ceil(64))
            .map_err(|()| too_big())?
            .into_vec();
        let mut generations: Vec<u32> = try_zeroed_slice_box(size).map_err(|()| too_big())?.into_vec();
        if base != 0 {
            generations.fill(base);
        }
        Ok(Slots {
            occupied,
            generations,
            size,
            len: 0,
            free_hint: 0,
        })
    }

    /// The highest generation of any slot (0 for no slot). O(size).
    #[must_use]
    pub fn max_generation(&self) -> u32 {
        self.generations.iter().copied().max().unwrap_or(0)
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
        slot < self.size && self.occupied[slot / 64] & (1 << (slot % 64)) != 0
    }

    /// The generation of `slot`, if in range.
    #[must_use]
    #[inline]
    pub fn generation(&self, slot: usize) -> Option<u32> {
        self.generations.get(slot).copied()
    }

    /// The lowest free slot, if any. O(size / 64) worst case, O(1) amortised for fill-then-free patterns.
    #[must_use]
    pub fn lowest_free(&self) -> Option<usize> {
        let start = self.free_hint / 64;
        for (w, &word) in self.occupied.iter().enumerate().skip(start) {
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
        self.occupied[slot / 64] |= 1 << (slot % 64);
        self.len += 1;
        self.free_hint = slot + 1;
        Some(slot)
    }

    /// Free an occupied slot and bump its generation.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot >= size`, [`Error::SlotFree`] if it holds no entry.
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
        self.occupied[slot / 64] &= !(1 << (slot % 64));
        self.generations[slot] = self.generations[slot].wrapping_add(1);
        self.len -= 1;
        self.free_hint = self.free_hint.min(slot);
        Ok(())
    }

    /// Free every slot (bumping the generation of each occupied one).
    pub fn clear(&mut self) {
        for slot in self.occupied_iter().collect::<Vec<_>>() {
            self.generations[slot] = self.generations[slot].wrapping_add(1);
        }
        self.occupied.fill(0);
        self.len = 0;
        self.free_hint = 0;
    }

    /// Occupied slots, ascending.
    pub fn occupied_iter(&self) -> impl Iterator<Item = usize> + '_ {
        let size = self.size;
        self.occupied
            .iter()
            .enumerate()
            .flat_map(move |(w, &word)| BitIter { word, base: w * 64 })
            .take_while(move |&s| s < size)
    }

    /// Free slots, ascending.
    pub fn free_iter(&self) -> impl Iterator<Item = usize> + '_ {
        let size = self.size;
        self.occupied
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
        if let Some(g) = self.generations.get_mut(slot) {
            *g = generation;
        }
    }

    /// Check the allocator's invariants: the bitmap count equals `len`, no bit beyond `size` is set, and
    /// no free slot lies below the hint.
    ///
    /// # Errors
    /// [`Error::Invariant`] naming the broken invariant.
    pub fn validate(&self) -> Result<()> {
        let count: usize = self.occupied.iter().map(|w| w.count_ones() as usize).sum();
        if count != self.len {
            return Err(Error::Invariant(format!(
                "bitmap holds {count} entries, len is {}",
                self.len
            )));
        }
        if self.occupied_iter().any(|s| s >= self.size) || self.occupied_iter().count() != count {
            return Err(Error::Invariant("occupied bit set beyond size".into()));
        }
        if self.generations.len() != self.size || self.occupied.len() != self.size.div_ceil(64) {
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
        self.occupied.len() * 8 + self.generations.len() * 4
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
    fn generation_bumps_on_free_and_wraps() {
        let mut s = Slots::new(1);
        s.alloc();
        s.set_generation_for_test(0, u32::MAX);
        s.free(0).unwrap();
        assert_eq!(s.generation(0), Some(0));
    }
}
