//! `ByteArena`: a growable buffer of variable-length byte values with garbage accounting, shared by the
//! str/bytes columns ([`super::ViewColumn`]) and the byte-key column of keyed stores.
//!
//! Values are appended at the end and addressed by `(offset, len)` spans that the owner keeps (in views or
//! span tables). Bytes no span refers to any more are *garbage*: the owner frees them with
//! [`ByteArena::free`]. When the garbage exceeds both the live bytes and a minimum
//! ([`ByteArena::compaction_due`]), the owner compacts: [`ByteArena::compact`] allocates a new buffer for
//! the live bytes first (nothing changes if it cannot) and hands a [`Relocator`] to the owner, which moves
//! each live span and records its new offset. An arena holds at most [`ARENA_MAX`] (`u32::MAX`) bytes, so
//! offsets fit in `u32`.

use crate::error::Result;

/// The largest arena (offsets and lengths are `u32`).
pub(crate) const ARENA_MAX: usize = u32::MAX as usize;

/// Bytes addressed by spans, with the count of bytes no span refers to.
#[derive(Debug, Clone, Default)]
pub(crate) struct ByteArena {
    data: Vec<u8>,
    /// A loaded file's bytes, read in place (a store mapped read-only or in place, which never writes
    /// its arenas); `data` is empty meanwhile. A write would first copy them into `data` (`own`).
    mapped: Option<super::AlignedBuf>,
    /// Bytes of `data` no span refers to.
    garbage: usize,
    /// A compaction was due but its new buffer could not be allocated: the garbage bound is not met until
    /// the next compaction succeeds (a write or delete never fails for want of an optional compaction).
    compaction_deferred: bool,
}

/// Why [`ByteArena::check_spans`] refused a set of spans (the owner words the [`crate::error::Error::Invariant`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanFault {
    /// The span `(off, len)` leaves the arena.
    Outside(usize, usize),
    /// The span `(off, len)` overlaps an earlier one.
    Overlap(usize, usize),
    /// The spans hold `live` bytes, but live plus garbage is not the arena's length.
    Count(usize),
    /// The garbage passes the compaction bound of `live` bytes, and no compaction was deferred.
    NotCompacted(usize),
}

/// Moves live spans into a compacted arena's new buffer (see [`ByteArena::compact`]).
pub(crate) struct Relocator<'a> {
    old: &'a [u8],
    new: &'a mut Vec<u8>,
}

impl Relocator<'_> {
    /// Copy the span `(off, n)` of the old buffer to the end of the new one; its new offset. A span out
    /// of bounds (which validation reports) moves as empty.
    pub(crate) fn relocate(&mut self, off: usize, n: usize) -> u32 {
        let start = self.new.len();
        // Invariant: every span lies inside the arena (checked by `check_spans`).
        let bytes = self.old.get(off..off.saturating_add(n)).unwrap_or_default();
        // The new buffer was reserved for the live bytes: this does not allocate unless spans overlap.
        self.new.extend_from_slice(bytes);
        // start <= live <= ARENA_MAX.
        u32::try_from(start).unwrap_or(u32::MAX)
    }
}

impl ByteArena {
    /// An empty arena (allocates nothing).
    pub(crate) const fn new() -> ByteArena {
        ByteArena {
            data: Vec::new(),
            mapped: None,
            garbage: 0,
            compaction_deferred: false,
        }
    }

    /// A copy in a new buffer (of exactly the bytes held).
    ///
    /// # Errors
    /// [`crate::error::Error::OutOfMemory`] (naming `what`) if the copy cannot be allocated.
    /// An arena over loaded bytes, `garbage` of them unreferenced (checked: at most all of them): read
    /// in place if `in_place` (a store that never writes it), else copied.
    pub(crate) fn from_loaded(
        data: super::AlignedBuf,
        garbage: usize,
        in_place: bool,
        what: &'static str,
    ) -> Result<ByteArena> {
        if garbage > data.len() || data.len() > ARENA_MAX {
            return Err(crate::error::Error::Format(format!(
                "an arena of {} bytes with {garbage} of garbage",
                data.len()
            )));
        }
        let (data, mapped) = if in_place {
            (Vec::new(), Some(data))
        } else {
            (crate::alloc::to_vec(data.bytes(), what)?, None)
        };
        Ok(ByteArena {
            data,
            mapped,
            garbage,
            compaction_deferred: false,
        })
    }

    /// The arena's bytes.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        match &self.mapped {
            Some(m) => m.bytes(),
            None => &self.data,
        }
    }

    /// Make the bytes the arena's own (copy a loaded file's) before a write. Stores that read their
    /// arenas in place refuse writes before they get here: this keeps a write correct regardless.
    fn own(&mut self) {
        if let Some(m) = self.mapped.take() {
            self.data = m.bytes().to_vec();
        }
    }

    pub(crate) fn try_clone(&self, what: &'static str) -> Result<ByteArena> {
        Ok(ByteArena {
            data: crate::alloc::to_vec(self.bytes(), what)?,
            mapped: None,
            garbage: self.garbage,
            compaction_deferred: self.compaction_deferred,
        })
    }

    /// Bytes held, live and garbage.
    pub(crate) fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Bytes allocated.
    pub(crate) fn capacity(&self) -> usize {
        match &self.mapped {
            Some(m) => m.len(),
            None => self.data.capacity(),
        }
    }

    /// Bytes allocated but not yet used.
    pub(crate) fn spare(&self) -> usize {
        self.capacity() - self.len()
    }

    /// Bytes no span refers to.
    pub(crate) fn garbage(&self) -> usize {
        self.garbage
    }

    /// Bytes spans refer to.
    pub(crate) fn live(&self) -> usize {
        self.len() - self.garbage
    }

    /// Drop every byte and the buffer.
    pub(crate) fn clear(&mut self) {
        *self = ByteArena::new();
    }

    /// The bytes of the span `(off, n)`, if it lies inside the arena.
    #[inline]
    pub(crate) fn get(&self, off: usize, n: usize) -> Option<&[u8]> {
        self.bytes().get(off..off.checked_add(n)?)
    }

    /// The bytes of the span `(off, n)` to overwrite in place, if it lies inside the arena.
    pub(crate) fn get_mut(&mut self, off: usize, n: usize) -> Option<&mut [u8]> {
        self.own();
        self.data.get_mut(off..off.checked_add(n)?)
    }

    /// Append `bytes`; their offset. The caller has checked that the arena stays within [`ARENA_MAX`]
    /// bytes (and reserved room, if appending must not allocate).
    pub(crate) fn append(&mut self, bytes: &[u8]) -> u32 {
        self.own();
        let off = self.data.len();
        self.data.extend_from_slice(bytes);
        // off <= ARENA_MAX (the caller's check).
        u32::try_from(off).unwrap_or(u32::MAX)
    }

    /// Count `n` bytes that no span refers to any more as garbage.
    pub(crate) fn free(&mut self, n: usize) {
        self.garbage += n;
    }

    /// Whether the garbage exceeds both `compact_min` and the live bytes: the compaction rule, which keeps
    /// the arena under `2 * live + compact_min` bytes at amortised O(1) per garbage byte.
    pub(crate) fn compaction_due(&self, compact_min: usize) -> bool {
        self.garbage > compact_min && self.garbage > self.live()
    }

    /// Make sure `extra` more bytes append without allocating, growing by a quarter of the capacity (or
    /// `extra`, if more) at most up to `max` bytes in all: geometric growth, so appends stay amortised
    /// O(len), with at most a quarter of the buffer unused after a growth (doubling would leave half).
    /// Under memory pressure, exactly `extra`.
    ///
    /// # Errors
    /// [`crate::error::Error::OutOfMemory`] (naming `what`) if even `extra` cannot be allocated.
    pub(crate) fn reserve_bounded(&mut self, extra: usize, max: usize, what: &'static str) -> Result<()> {
        if self.spare() >= extra {
            return Ok(());
        }
        self.own(); // a mapped arena's bytes move to the heap first: the growth is measured on them
        let more = extra
            .max(self.data.capacity() / 4)
            .max(64)
            .min(max.saturating_sub(self.data.len()).max(extra));
        if self.reserve_exact(more, what).is_err() {
            self.reserve_exact(extra, what)?;
        }
        Ok(())
    }

    /// Make sure `extra` more bytes append without allocating, growing by exactly what is missing
    /// (as [`Vec::reserve_exact`]).
    ///
    /// # Errors
    /// [`crate::error::Error::OutOfMemory`] (naming `what`) if the buffer cannot grow.
    pub(crate) fn reserve_exact(&mut self, extra: usize, what: &'static str) -> Result<()> {
        if self.spare() < extra {
            self.own();
            crate::alloc::reserve_exact(&mut self.data, extra, what)?;
        }
        Ok(())
    }

    /// Rewrite the arena with only the live bytes (less `dropped` bytes the owner is about to release
    /// without freeing them), with room for `extra` more: the new buffer is allocated first, then
    /// `rewrite` relocates every live span (in the order the owner chooses) and stores the new offsets.
    /// The garbage is then zero and a deferred compaction done. O(live) plus the owner's walk.
    ///
    /// # Errors
    /// [`crate::error::Error::OutOfMemory`] (naming `what`) if the new buffer cannot be allocated; then nothing changes
    /// and `rewrite` is not called.
    pub(crate) fn compact(
        &mut self,
        dropped: usize,
        extra: usize,
        what: &'static str,
        rewrite: impl FnOnce(&mut Relocator<'_>),
    ) -> Result<()> {
        let mut data = Vec::new();
        let want = self.live().saturating_sub(dropped).saturating_add(extra);
        crate::alloc::reserve_exact(&mut data, want, what)?;
        rewrite(&mut Relocator {
            old: self.bytes(),
            new: &mut data,
        });
        self.data = data;
        self.mapped = None;
        self.garbage = 0;
        self.compaction_deferred = false;
        Ok(())
    }

    /// [`ByteArena::compact`] when [`ByteArena::compaction_due`]: an optional compaction that cannot
    /// allocate its new buffer is deferred (the validation then allows the garbage until one succeeds).
    pub(crate) fn maybe_compact(
        &mut self,
        compact_min: usize,
        what: &'static str,
        rewrite: impl FnOnce(&mut Relocator<'_>),
    ) {
        if self.compaction_due(compact_min) {
            self.compaction_deferred = self.compact(0, 0, what, rewrite).is_err();
        }
    }

    /// Check the live spans `(off, len)` (empty ones left out; sorted here): each inside the arena, none
    /// overlapping another, their bytes plus the garbage the arena's length, and the garbage within the
    /// compaction bound unless a compaction was deferred. The live bytes. O(spans log spans).
    ///
    /// # Errors
    /// The first [`SpanFault`] found.
    pub(crate) fn check_spans(
        &self,
        spans: &mut [(usize, usize)],
        compact_min: usize,
    ) -> std::result::Result<usize, SpanFault> {
        spans.sort_unstable();
        let mut end = 0;
        let mut live = 0usize;
        for &(off, n) in spans.iter() {
            if off < end {
                return Err(SpanFault::Overlap(off, n));
            }
            if off.saturating_add(n) > self.len() {
                return Err(SpanFault::Outside(off, n));
            }
            end = off + n;
            live += n;
        }
        if live + self.garbage != self.len() {
            return Err(SpanFault::Count(live));
        }
        if self.garbage > compact_min && self.garbage > live && !self.compaction_deferred {
            return Err(SpanFault::NotCompacted(live));
        }
        Ok(live)
    }

    /// Corrupt the garbage count (for tests of the validation).
    #[cfg(test)]
    pub(crate) fn add_garbage_for_test(&mut self, delta: isize) {
        self.garbage = self.garbage.wrapping_add_signed(delta);
    }

    /// Cut the buffer to `len` bytes without any accounting (for tests of the validation).
    #[cfg(test)]
    pub(crate) fn truncate_for_test(&mut self, len: usize) {
        self.own();
        self.data.truncate(len);
    }
}

#[cfg(test)]
mod bounded_growth_tests {
    use super::ByteArena;

    #[test]
    fn bounded_growth_leaves_at_most_a_quarter_unused() {
        let mut a = ByteArena::default();
        for n in [1usize, 7, 100, 3, 5000, 20] {
            for _ in 0..500 {
                a.reserve_bounded(n, usize::MAX, "test").unwrap();
                let spare_before = a.spare();
                assert!(spare_before >= n);
                a.append(&vec![7u8; n]);
                // After a growth, the unused room is at most a quarter of the capacity or the last request.
                assert!(
                    a.spare() <= (a.capacity() / 4).max(n).max(64),
                    "{n}: {} of {}",
                    a.spare(),
                    a.capacity()
                );
            }
        }
        // The cap: never beyond `max` unless the request itself needs it.
        let mut b = ByteArena::default();
        b.reserve_bounded(10, 40, "test").unwrap();
        assert!(b.capacity() >= 10 && b.capacity() <= 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHAT: &str = "a test arena";

    /// An arena holding `values` appended in order, with their spans.
    fn filled(values: &[&[u8]]) -> (ByteArena, Vec<(usize, usize)>) {
        let mut a = ByteArena::new();
        let spans = values
            .iter()
            .map(|v| {
                a.reserve_bounded(v.len(), usize::MAX, WHAT).unwrap();
                (a.append(v) as usize, v.len())
            })
            .collect();
        (a, spans)
    }

    #[test]
    fn an_arena_is_a_vec_an_optional_mapping_and_two_words() {
        // What the byte-key chunks and the str/bytes columns held before they shared the arena.
        assert_eq!(
            std::mem::size_of::<ByteArena>(),
            std::mem::size_of::<Vec<u8>>()
                + std::mem::size_of::<Option<super::super::AlignedBuf>>()
                + 2 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn append_reads_back_and_free_counts_garbage() {
        let (mut a, spans) = filled(&[b"hello", b"", b"world!"]);
        assert_eq!(spans, vec![(0, 5), (5, 0), (5, 6)]);
        assert_eq!((a.len(), a.live(), a.garbage()), (11, 11, 0));
        assert_eq!(a.get(5, 6), Some(&b"world!"[..]));
        assert_eq!(a.get(0, 0), Some(&b""[..]));
        a.get_mut(0, 5).unwrap().copy_from_slice(b"HELLO");
        assert_eq!(a.get(0, 5), Some(&b"HELLO"[..]));
        a.free(5);
        assert_eq!((a.len(), a.live(), a.garbage()), (11, 6, 5));
        assert!(a.capacity() >= a.len() && a.spare() == a.capacity() - a.len());
        let b = a.try_clone(WHAT).unwrap();
        assert_eq!((b.len(), b.garbage(), b.get(5, 6)), (11, 5, Some(&b"world!"[..])));
        a.clear();
        assert_eq!((a.len(), a.capacity(), a.garbage()), (0, 0, 0));
    }

    #[test]
    fn reads_out_of_bounds_are_none() {
        let (mut a, _) = filled(&[b"abc"]);
        assert_eq!(a.get(0, 4), None);
        assert_eq!(a.get(3, 1), None);
        assert_eq!(a.get(4, 0), None);
        assert_eq!(a.get(usize::MAX, 2), None);
        assert!(a.get_mut(2, 2).is_none());
        assert_eq!(a.get(3, 0), Some(&b""[..]));
    }

    #[test]
    fn compaction_is_due_when_garbage_passes_both_live_and_the_minimum() {
        let (mut a, _) = filled(&[b"0123456789", b"abcdefghij"]);
        a.free(10);
        // 10 garbage, 10 live: not more than live
        assert!(!a.compaction_due(0));
        a.free(1);
        // 11 garbage, 9 live
        assert!(a.compaction_due(0));
        assert!(a.compaction_due(10));
        assert!(!a.compaction_due(11));
        assert!(!ByteArena::new().compaction_due(0));
    }

    #[test]
    fn compact_keeps_live_spans_and_moves_them() {
        let (mut a, mut spans) = filled(&[b"dead", b"alive", b"gone!", b"kept"]);
        a.free(4 + 5);
        let live = [spans[1], spans[3]];
        a.compact(0, 7, WHAT, |r| {
            for s in [1, 3] {
                spans[s].0 = r.relocate(live[s / 2].0, live[s / 2].1) as usize;
            }
        })
        .unwrap();
        assert_eq!((a.len(), a.garbage(), a.live()), (9, 0, 9));
        assert!(a.capacity() >= 9 + 7);
        assert_eq!(a.get(spans[1].0, 5), Some(&b"alive"[..]));
        assert_eq!(a.get(spans[3].0, 4), Some(&b"kept"[..]));
        assert_eq!(a.check_spans(&mut [spans[3], spans[1]], 0), Ok(9));
    }

    #[test]
    fn maybe_compact_runs_only_when_due() {
        let (mut a, _) = filled(&[b"abcd", b"efgh"]);
        a.free(4);
        let mut called = false;
        a.maybe_compact(0, WHAT, |_| called = true);
        assert!(!called && a.len() == 8);
        a.free(1);
        let mut moved = 0;
        a.maybe_compact(0, WHAT, |r| moved = r.relocate(5, 3));
        assert_eq!((moved, a.len(), a.get(0, 3)), (0, 3, Some(&b"fgh"[..])));
    }

    #[test]
    fn check_spans_reports_each_fault() {
        let (mut a, spans) = filled(&[b"aaaa", b"bbbb", b"cccc"]);
        assert_eq!(a.check_spans(&mut spans.clone(), 0), Ok(12));
        assert_eq!(
            a.check_spans(&mut [(0, 4), (2, 4), (8, 4)], 0),
            Err(SpanFault::Overlap(2, 4))
        );
        assert_eq!(
            a.check_spans(&mut [(0, 4), (4, 4), (8, 5)], 0),
            Err(SpanFault::Outside(8, 5))
        );
        assert_eq!(a.check_spans(&mut [(0, 4), (8, 4)], 0), Err(SpanFault::Count(8)));
        a.free(4);
        assert_eq!(a.check_spans(&mut [(8, 4), (0, 4)], 0), Ok(8));
        a.free(4);
        // 8 garbage > 4 live and > 0, never compacted
        assert_eq!(a.check_spans(&mut [(8, 4)], 0), Err(SpanFault::NotCompacted(4)));
        assert_eq!(a.check_spans(&mut [(8, 4)], 8), Ok(4));
        a.add_garbage_for_test(-8);
        a.truncate_for_test(10);
        assert_eq!(a.check_spans(&mut [(8, 4)], 0), Err(SpanFault::Outside(8, 4)));
    }
}
