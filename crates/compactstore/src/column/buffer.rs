//! `AlignedBuf`: a zero-initialised byte buffer, 8-byte aligned, page-aligned once it is large.

use bytemuck::allocation::try_zeroed_slice_box;

use crate::error::{Error, Result};

const PAGE: usize = 4096;
/// Buffers of at least this many bytes start on a page boundary. Below it the padding page would cost
/// real memory: glibc serves such buffers from its heap and may clear (touch) the whole allocation, so a
/// 16 KiB column paid 4 KiB (25%) measured in B1. From 1 MiB on the padding is at most 0.4%, and such
/// buffers are mapped on their own, where untouched padding stays virtual.
const ALIGN_FROM: usize = 1 << 20;
const WORD: usize = std::mem::size_of::<u64>();

/// A fixed-size, zero-initialised byte buffer that never moves once allocated.
///
/// It is allocated with `calloc` semantics (`alloc_zeroed`), so pages that are never written are never
/// made resident. Buffers of 1 MiB (`ALIGN_FROM`) or more start on a page boundary: the allocation is
/// over-sized by one page (the padding is never written) and the buffer starts at the first boundary inside it,
/// so writing one member's buffer never dirties a page of another's. The alignment is computed from the
/// address, with no pointer casts, and typed views go through `bytemuck`.
///
/// ```text
///   words: [ pad (< 1 page, never touched) | buffer (len bytes, rounded up to a word) | rest of pad ]
///            ^ allocation                    ^ offset: first page boundary
/// ```
#[derive(Debug)]
pub struct AlignedBuf {
    words: Vec<u64>,
    offset: usize,
    len: usize,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` bytes. Allocates once.
    ///
    /// # Panics
    /// If the allocation fails (as `Vec` does); [`AlignedBuf::try_zeroed`] is the fallible twin.
    #[must_use]
    #[track_caller]
    pub fn zeroed(len: usize) -> AlignedBuf {
        match AlignedBuf::try_zeroed(len) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    /// A zeroed buffer of `len` bytes, or an error if it cannot be allocated. Allocates once.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the allocation fails or `len` is beyond what can be allocated.
    pub fn try_zeroed(len: usize) -> Result<AlignedBuf> {
        let too_big = || Error::out_of_memory(len, "a column buffer");
        if len > isize::MAX as usize / 2 {
            return Err(too_big());
        }
        let nwords = len.div_ceil(WORD);
        let (nalloc, aligned) = if len < ALIGN_FROM {
            (nwords, false)
        } else {
            (nwords + PAGE / WORD - 1, true)
        };
        let words: Vec<u64> = try_zeroed_slice_box(nalloc).map_err(|()| too_big())?.into_vec();
        let offset = if aligned {
            (words.as_ptr() as usize).wrapping_neg() % PAGE / WORD
        } else {
            0
        };
        Ok(AlignedBuf { words, offset, len })
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes allocated for the buffer itself (without the never-touched alignment padding).
    #[must_use]
    pub fn capacity_bytes(&self) -> usize {
        self.len.div_ceil(WORD) * WORD
    }

    fn words(&self) -> &[u64] {
        // Invariant: offset + ceil(len / 8) <= words.len(), by construction in `zeroed`.
        &self.words[self.offset..self.offset + self.len.div_ceil(WORD)]
    }

    /// The buffer's bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(self.words())[..self.len]
    }

    /// The buffer's bytes, mutably.
    #[must_use]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let (offset, n, len) = (self.offset, self.len.div_ceil(WORD), self.len);
        &mut bytemuck::cast_slice_mut::<u64, u8>(&mut self.words[offset..offset + n])[..len]
    }

    /// Whether the buffer starts on a page boundary.
    #[must_use]
    pub fn is_page_aligned(&self) -> bool {
        self.bytes().as_ptr() as usize % PAGE == 0
    }

    /// A copy in a new allocation (page-aligned again if large). O(len).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated.
    pub fn try_clone(&self) -> Result<AlignedBuf> {
        let mut b = AlignedBuf::try_zeroed(self.len)?;
        b.bytes_mut().copy_from_slice(self.bytes());
        Ok(b)
    }
}

impl Clone for AlignedBuf {
    /// # Panics
    /// If the copy cannot be allocated; [`AlignedBuf::try_clone`] is the fallible twin.
    #[track_caller]
    fn clone(&self) -> AlignedBuf {
        match self.try_clone() {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_page_aligned_and_zeroed() {
        for len in [
            ALIGN_FROM,
            ALIGN_FROM + 1,
            ALIGN_FROM + 10 * PAGE + 3,
            4 * ALIGN_FROM,
        ] {
            let b = AlignedBuf::zeroed(len);
            assert!(b.is_page_aligned(), "len {len}");
            assert_eq!(b.bytes().len(), len);
            assert!(b.bytes().iter().all(|&x| x == 0));
        }
    }

    #[test]
    fn small_buffers_are_word_aligned() {
        for len in [0, 1, 7, 8, 100, PAGE - 1, PAGE, 16 * PAGE, ALIGN_FROM - 1] {
            let b = AlignedBuf::zeroed(len);
            assert_eq!(b.bytes().as_ptr() as usize % WORD, 0);
            assert_eq!(b.len(), len);
        }
    }

    #[test]
    fn clone_copies_and_realigns() {
        let mut a = AlignedBuf::zeroed(ALIGN_FROM + 3 * PAGE);
        a.bytes_mut()[5] = 9;
        let b = a.clone();
        assert!(b.is_page_aligned());
        assert_eq!(b.bytes()[5], 9);
        assert_ne!(a.bytes().as_ptr(), b.bytes().as_ptr());
    }
}
