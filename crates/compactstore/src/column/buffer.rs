//! `AlignedBuf`: a zero-initialised byte buffer, 8-byte aligned, page-aligned once it is large, whose
//! memory is held by a shared owner: the heap, or memory the store borrows (a file mapping, a Python
//! buffer) through a [`Backing`].

use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use bytemuck::allocation::try_zeroed_slice_box;

use crate::error::{Error, Result};

const PAGE: usize = 4096;
/// Buffers of at least this many bytes start on a page boundary. Below it the padding page would cost
/// real memory: glibc serves such buffers from its heap and may clear (touch) the whole allocation, so a
/// 16 KiB column paid 4 KiB (25%) measured in B1. From 1 MiB on the padding is at most 0.4%, and such
/// buffers are mapped on their own, where untouched padding stays virtual.
const ALIGN_FROM: usize = 1 << 20;
/// Buffers of at least this many bytes are anonymous memory mappings of their own ([`Anon`]): the kernel
/// hands out zero pages that become resident only when written, whatever the C heap did before. From the
/// heap, a zeroed buffer may be recycled memory that `calloc` clears by writing it (glibc serves buffers
/// below its mmap threshold from the heap, and raises that threshold to the size of any mapped block
/// freed), which made the never-written slots of a dynamic or keyed store's last chunk resident.
const MAP_FROM: usize = 64 << 10;
const WORD: usize = std::mem::size_of::<u64>();

/// Memory that buffers can borrow: a file mapping, a Python buffer, or the heap allocation of an
/// [`AlignedBuf`] itself. It is held in an `Arc`: every buffer that points into it, and every export of
/// such a buffer (an Arrow array, say), keeps it alive, so no view of it ever dangles.
///
/// # Safety
/// An implementer promises that the `len()` bytes at `ptr()` are readable, never move and are never
/// freed for as long as the value lives, that they are not written by anyone else through a Rust
/// reference while it lives, and, if `writable()` is true, that writing them through the pointer is
/// allowed (a read-only file mapping must answer `false`: a write there is a segfault).
#[allow(unsafe_code)]
pub unsafe trait Backing: Send + Sync + std::panic::RefUnwindSafe + fmt::Debug {
    /// The first byte.
    fn ptr(&self) -> *const u8;
    /// How many bytes from [`Backing::ptr`] are the backing's.
    fn len(&self) -> usize;
    /// Whether the backing holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether the bytes may be written.
    fn writable(&self) -> bool;
}

/// A heap allocation of zeroed words: the backing of an owned buffer.
struct Heap {
    /// From `Box::into_raw`; freed in `Drop`. Never reached through a reference after construction:
    /// all access goes through the raw pointers the buffers keep.
    words: NonNull<[u64]>,
}

impl fmt::Debug for Heap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Heap({} words)", self.words.len())
    }
}

// SAFETY: `Heap` owns its allocation like a `Box<[u64]>` does (which is `Send + Sync`); it hands out
// only raw pointers, and the buffers that write through them need `&mut` of themselves to do so.
#[allow(unsafe_code)]
unsafe impl Send for Heap {}
// SAFETY: as for `Send`: a shared `&Heap` gives nothing but the pointer and the length.
#[allow(unsafe_code)]
unsafe impl Sync for Heap {}

impl Drop for Heap {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: `words` came from `Box::into_raw` in `AlignedBuf::try_zeroed` and is freed only here,
        // once, when the last `Arc` holder (a buffer or an export) lets go.
        drop(unsafe { Box::from_raw(self.words.as_ptr()) });
    }
}

// SAFETY: the words are a live heap allocation until `Drop`, never moved; they are readable and
// writable; nothing makes Rust references to them except through the buffers' raw pointers.
#[allow(unsafe_code)]
unsafe impl Backing for Heap {
    fn ptr(&self) -> *const u8 {
        self.words.as_ptr().cast::<u8>().cast_const()
    }
    fn len(&self) -> usize {
        self.words.len() * WORD
    }
    fn writable(&self) -> bool {
        true
    }
}

/// An anonymous private mapping: the backing of an owned buffer of `MAP_FROM` bytes or more. Its pages
/// are zero and not resident until written; unmapped on drop. Held as a `MmapRaw`, which hands out raw
/// pointers only (no slice of the whole mapping is ever made after construction).
struct Anon {
    map: memmap2::MmapRaw,
}

impl fmt::Debug for Anon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Anon({} bytes)", self.map.len())
    }
}

// SAFETY: the mapping lives, at one address, until `Anon` is dropped (memmap2 unmaps it then); it is
// private, readable and writable; `MmapRaw` gives only raw pointers, so nothing makes a Rust reference to
// it except the buffers, through the pointer `MmapRaw::as_mut_ptr` gave when it was made.
#[allow(unsafe_code)]
unsafe impl Backing for Anon {
    fn ptr(&self) -> *const u8 {
        self.map.as_ptr()
    }
    fn len(&self) -> usize {
        self.map.len()
    }
    fn writable(&self) -> bool {
        true
    }
}

/// A fixed-size, zero-initialised byte buffer that never moves once allocated.
///
/// An owned buffer of 64 KiB (`MAP_FROM`) or more is an anonymous mapping of its own (page-aligned;
/// pages that are never written are never made resident). A smaller one, or one the kernel refuses to
/// map (too many mappings, say), is a heap allocation with `calloc` semantics (`alloc_zeroed`); those of
/// 1 MiB (`ALIGN_FROM`) or more start on a page boundary: the allocation is over-sized by one page (the
/// padding is never written) and the buffer starts at the first boundary inside it, so writing one
/// member's buffer never dirties a page of another's.
///
/// ```text
///   words: [ pad (< 1 page, never touched) | buffer (len bytes, rounded up to a word) | rest of pad ]
///            ^ allocation                    ^ offset: first page boundary
/// ```
///
/// The memory belongs to an `Arc<dyn Backing>` that the buffer shares: [`AlignedBuf::owner`] hands it
/// to an export (an Arrow buffer), which then outlives any reset of the store. A borrowed buffer
/// ([`AlignedBuf::borrowed`]) points into someone else's memory (a file mapping); a read-only one
/// refuses [`AlignedBuf::try_bytes_mut`]. Writes need `&mut self` and go in place, so an export of a
/// buffer shows the store's later writes, as a numpy view does.
pub struct AlignedBuf {
    /// The buffer's first byte, inside `owner`'s memory, 8-byte aligned.
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
    /// Made by `try_zeroed` (a heap allocation or an anonymous mapping of its own), not `borrowed`.
    owned: bool,
    owner: Arc<dyn Backing>,
}

// SAFETY: an `AlignedBuf` is an owner of bytes like a `Box<[u8]>`: `&self` reads them, `&mut self`
// writes them; the `Arc<dyn Backing>` it holds is `Send + Sync`.
#[allow(unsafe_code)]
unsafe impl Send for AlignedBuf {}
// SAFETY: as for `Send`: shared access gives only `&[u8]`.
#[allow(unsafe_code)]
unsafe impl Sync for AlignedBuf {}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .field("writable", &self.writable)
            .field("owner", &self.owner)
            .finish()
    }
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

    /// [`AlignedBuf::try_zeroed`] for a buffer its caller is about to write whole (a store file read into
    /// memory): from 2 MiB on, its mapping asks the kernel for transparent huge pages (`MADV_HUGEPAGE`,
    /// where the system leaves that choice to the program), so filling it takes one page fault per 2 MiB
    /// instead of per 4 KiB, and random reads of it (a key table) miss the TLB far less. Not for column
    /// buffers, whose untouched pages must stay non-resident: one write would make 2 MiB resident.
    ///
    /// # Errors
    /// As [`AlignedBuf::try_zeroed`].
    pub fn try_zeroed_dense(len: usize) -> Result<AlignedBuf> {
        AlignedBuf::try_zeroed_as(len, true)
    }

    /// A zeroed buffer of `len` bytes, or an error if it cannot be allocated. Allocates once.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the allocation fails or `len` is beyond what can be allocated.
    pub fn try_zeroed(len: usize) -> Result<AlignedBuf> {
        AlignedBuf::try_zeroed_as(len, false)
    }

    fn try_zeroed_as(len: usize, huge: bool) -> Result<AlignedBuf> {
        let too_big = || Error::out_of_memory(len, "a column buffer");
        if len > isize::MAX as usize / 2 {
            return Err(too_big());
        }
        if len >= MAP_FROM {
            // Rounded up to a word, as the heap path does (a column's last word may be read whole).
            if let Ok(map) = memmap2::MmapMut::map_anon(len.div_ceil(WORD) * WORD) {
                #[cfg(target_os = "linux")]
                if huge && len >= 2 << 20 {
                    // Advice only: a kernel without transparent huge pages refuses it; 4 KiB pages serve.
                    let _ = map.advise(memmap2::Advice::HugePage);
                }
                let anon = Anon {
                    map: memmap2::MmapRaw::from(map),
                };
                let ptr = NonNull::new(anon.map.as_mut_ptr()).ok_or_else(too_big)?;
                return Ok(AlignedBuf {
                    ptr,
                    len,
                    writable: true,
                    owned: true,
                    owner: Arc::new(anon),
                });
            }
        }
        let nwords = len.div_ceil(WORD);
        let (nalloc, aligned) = if len < ALIGN_FROM {
            (nwords, false)
        } else {
            (nwords + PAGE / WORD - 1, true)
        };
        let words: Box<[u64]> = try_zeroed_slice_box(nalloc).map_err(|()| too_big())?;
        let offset = if aligned {
            (words.as_ptr() as usize).wrapping_neg() % PAGE
        } else {
            0
        };
        let heap = Heap {
            words: NonNull::from(Box::leak(words)),
        };
        let base = heap.words.cast::<u8>();
        // `offset` is below one page and the allocation has a page of padding when `aligned`, so the
        // buffer (len bytes from base + offset) lies inside the allocation; `NonNull::add` keeps it
        // non-null. An empty allocation's pointer is dangling but aligned, and no byte is read from it.
        #[allow(unsafe_code)]
        // SAFETY: `offset + len <= nalloc * WORD` (see above), so the pointer stays in the allocation.
        let ptr = unsafe { base.add(offset) };
        Ok(AlignedBuf {
            ptr,
            len,
            writable: true,
            owned: true,
            owner: Arc::new(heap),
        })
    }

    /// A buffer of `len` bytes at byte `offset` of `owner`'s memory, written in place if `writable`
    /// (which needs a writable backing). Copies nothing.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the bytes are not all inside the backing, are not 8-byte aligned,
    /// or are to be written but the backing is read-only.
    pub fn borrowed(
        owner: Arc<dyn Backing>,
        offset: usize,
        len: usize,
        writable: bool,
    ) -> Result<AlignedBuf> {
        let end = offset.checked_add(len);
        if end.is_none_or(|e| e > owner.len()) {
            return Err(Error::InvalidArgument(format!(
                "a buffer of {len} bytes at {offset} is outside its backing of {} bytes",
                owner.len()
            )));
        }
        if writable && !owner.writable() {
            return Err(Error::InvalidArgument(
                "a writable buffer of a read-only backing".into(),
            ));
        }
        let addr = (owner.ptr() as usize).wrapping_add(offset);
        if addr % WORD != 0 {
            return Err(Error::InvalidArgument(format!(
                "a buffer at {offset} of its backing is not 8-byte aligned"
            )));
        }
        // `wrapping_add` keeps the pointer's provenance; the range is inside the backing (checked).
        let ptr = NonNull::new(owner.ptr().wrapping_add(offset).cast_mut())
            .ok_or_else(|| Error::InvalidArgument("a null backing".into()))?;
        Ok(AlignedBuf {
            ptr,
            len,
            writable,
            owned: false,
            owner,
        })
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

    /// Whether the buffer may be written ([`AlignedBuf::try_bytes_mut`] succeeds).
    #[must_use]
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Whether the buffer owns its memory (a heap allocation or anonymous mapping of its own) rather than
    /// borrowing it.
    #[must_use]
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    /// Bytes allocated for the buffer itself (without the never-touched alignment padding).
    #[must_use]
    pub fn capacity_bytes(&self) -> usize {
        self.len.div_ceil(WORD) * WORD
    }

    /// The memory's owner: holding it keeps the buffer's bytes alive (an export holds it).
    #[must_use]
    pub fn owner(&self) -> Arc<dyn Backing> {
        Arc::clone(&self.owner)
    }

    /// The first byte's address.
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr().cast_const()
    }

    /// The buffer's bytes.
    #[must_use]
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        #[allow(unsafe_code)]
        // SAFETY: `ptr..ptr + len` lies inside `owner`'s memory (checked when made), which `owner`
        // keeps alive and in place while `self` holds it; it is initialised (zeroed or a backing's
        // bytes); no `&mut` to it exists while `&self` is borrowed (writes need `&mut self`).
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr(), self.len)
        }
    }

    /// The buffer's bytes, mutably.
    ///
    /// # Panics
    /// If the buffer is read-only (a read-only backing). Stores check before they write; the panic
    /// guards against a bug turning into a write to a read-only mapping (a segfault).
    /// [`AlignedBuf::try_bytes_mut`] is the fallible twin.
    #[must_use]
    #[inline]
    #[track_caller]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        assert!(self.writable, "a write to a read-only buffer");
        self.raw_bytes_mut()
    }

    /// The buffer's bytes, mutably, or an error if the buffer is read-only.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the buffer's backing is read-only.
    #[inline]
    pub fn try_bytes_mut(&mut self) -> Result<&mut [u8]> {
        if self.writable {
            Ok(self.raw_bytes_mut())
        } else {
            Err(Error::InvalidArgument("the buffer is read-only".into()))
        }
    }

    #[inline]
    fn raw_bytes_mut(&mut self) -> &mut [u8] {
        #[allow(unsafe_code)]
        // SAFETY: as in `bytes`, and the backing is writable (`writable` is only true for a writable
        // backing); `&mut self` makes this the only slice of the buffer on our side. Exports of the
        // buffer read it through raw pointers of their own (Arrow, numpy), as a numpy view of any
        // array does: a reader in another thread during this write sees torn values, as documented.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len)
        }
    }

    /// Whether the buffer starts on a page boundary.
    #[must_use]
    pub fn is_page_aligned(&self) -> bool {
        self.bytes().as_ptr() as usize % PAGE == 0
    }

    /// A copy in a new allocation of its own (as `try_zeroed` makes it), owned and writable. O(len).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated.
    pub fn try_clone(&self) -> Result<AlignedBuf> {
        let mut b = AlignedBuf::try_zeroed(self.len)?;
        b.raw_bytes_mut().copy_from_slice(self.bytes());
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

    /// Buffers from `MAP_FROM` on are anonymous mappings (zero pages, untouched until written); their
    /// owner keeps the mapping after the buffer is gone, and the last holder unmaps it.
    #[test]
    fn buffers_from_map_from_on_are_mappings_of_their_own() {
        for len in [MAP_FROM - 1, MAP_FROM, MAP_FROM + 3, ALIGN_FROM + 5] {
            let mut b = AlignedBuf::zeroed(len);
            let mapped = format!("{:?}", b.owner()).starts_with("Anon(");
            assert_eq!(mapped, len >= MAP_FROM, "len {len}");
            assert_eq!(b.bytes().len(), len);
            assert!(b.bytes().iter().all(|&x| x == 0));
            if mapped {
                assert!(b.is_page_aligned());
                assert!(b.owner().len() >= len);
            }
            b.bytes_mut()[len - 1] = 7;
            let owner = b.owner();
            let last = b.as_ptr() as usize + len - 1;
            drop(b);
            assert!(last < owner.ptr() as usize + owner.len());
            #[allow(unsafe_code)]
            // SAFETY: `last` is inside `owner`'s memory (asserted), which `owner` keeps mapped.
            let v = unsafe { *(last as *const u8) };
            assert_eq!(v, 7);
        }
    }

    /// A dense buffer (a file image) is a zeroed, writable mapping like any large buffer; the huge-page
    /// advice changes nothing a reader can see.
    #[test]
    fn dense_buffers_are_zeroed_writable_mappings() {
        for len in [100, MAP_FROM, (2 << 20) + 5, 5 << 20] {
            let mut b = AlignedBuf::try_zeroed_dense(len).unwrap();
            assert_eq!(b.len(), len);
            assert!(b.bytes().iter().all(|&x| x == 0));
            assert_eq!(format!("{:?}", b.owner()).starts_with("Anon("), len >= MAP_FROM);
            b.bytes_mut().fill(3);
            assert!(b.bytes().iter().all(|&x| x == 3));
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

    /// A backing over a `Vec<u64>` for the tests: read-only or writable.
    #[derive(Debug)]
    struct VecBacking {
        words: Box<[u64]>,
        writable: bool,
    }

    // SAFETY: the boxed words never move or get freed while the backing lives, and nothing writes them
    // through a reference after construction.
    #[allow(unsafe_code)]
    unsafe impl Backing for VecBacking {
        fn ptr(&self) -> *const u8 {
            self.words.as_ptr().cast()
        }
        fn len(&self) -> usize {
            self.words.len() * WORD
        }
        fn writable(&self) -> bool {
            self.writable
        }
    }

    fn backing(writable: bool) -> Arc<dyn Backing> {
        let words: Box<[u64]> = (0..8u64).collect();
        Arc::new(VecBacking { words, writable })
    }

    #[test]
    fn borrowed_buffers_read_the_backing_in_place() {
        let b = backing(false);
        let buf = AlignedBuf::borrowed(Arc::clone(&b), 8, 16, false).unwrap();
        assert_eq!(buf.as_ptr(), b.ptr().wrapping_add(8));
        assert_eq!(bytemuck::cast_slice::<u8, u64>(buf.bytes()), &[1, 2]);
        assert!(!buf.is_owned() && !buf.is_writable());
        let mut buf = buf;
        assert!(matches!(buf.try_bytes_mut(), Err(Error::InvalidArgument(_))));
        // A copy is owned and writable.
        let mut c = buf.try_clone().unwrap();
        assert!(c.is_owned());
        c.bytes_mut()[0] = 7;
        assert_eq!(buf.bytes()[0], 1);
    }

    #[test]
    #[should_panic(expected = "read-only buffer")]
    fn bytes_mut_of_a_read_only_buffer_panics_before_writing() {
        let mut buf = AlignedBuf::borrowed(backing(false), 0, 8, false).unwrap();
        let _ = buf.bytes_mut();
    }

    #[test]
    fn borrowed_refuses_bad_ranges_alignment_and_writes_to_read_only() {
        assert!(AlignedBuf::borrowed(backing(false), 0, 65, false).is_err());
        assert!(AlignedBuf::borrowed(backing(false), 64, 1, false).is_err());
        assert!(AlignedBuf::borrowed(backing(false), usize::MAX, 2, false).is_err());
        assert!(AlignedBuf::borrowed(backing(false), 3, 8, false).is_err());
        assert!(AlignedBuf::borrowed(backing(false), 0, 8, true).is_err());
        assert!(AlignedBuf::borrowed(backing(false), 64, 0, false).is_ok());
        let mut w = AlignedBuf::borrowed(backing(true), 0, 8, true).unwrap();
        w.bytes_mut()[0] = 42;
        assert_eq!(w.bytes()[0], 42);
    }

    #[test]
    fn the_owner_keeps_the_bytes_alive_after_the_buffer_is_dropped() {
        let mut a = AlignedBuf::zeroed(ALIGN_FROM);
        a.bytes_mut()[3] = 5;
        let (owner, ptr) = (a.owner(), a.as_ptr());
        drop(a);
        // Allocate and fill other memory: the owner's bytes must not be reused meanwhile.
        let other = vec![0xffu8; 4 * ALIGN_FROM];
        assert!(other.iter().all(|&x| x == 0xff));
        let off = (ptr as usize) - (owner.ptr() as usize);
        let again = AlignedBuf::borrowed(owner, off, ALIGN_FROM, false).unwrap();
        assert_eq!(again.bytes()[3], 5);
    }
}
