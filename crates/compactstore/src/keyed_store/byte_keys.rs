//! The key column of `str` and `bytes` keys: a span per slot into one byte arena per chunk.

use super::key::sealed::KeyColumn;
use super::key::{check_chunk_count, no_memory, KEYS_WHAT};
use crate::column::{ByteArena, SpanFault, ARENA_MAX};
use crate::dynamic_store::DynamicStore;
use crate::error::{Error, Result};
use crate::store::Store;

/// Where one slot's key bytes lie in its chunk's arena. A free slot's span is `(0, 0)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Zeroable, bytemuck::Pod)]
#[repr(C)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn start(self) -> usize {
        self.start as usize
    }

    fn len(self) -> usize {
        self.len as usize
    }
}

/// The keys of one chunk: a span per slot and one arena of key bytes.
#[derive(Debug, Clone)]
struct ByteChunk {
    spans: Vec<Span>,
    /// The key bytes; its garbage is left by deleted keys. A compaction that was due but could not
    /// allocate its new arena is deferred (a delete never fails for want of an optional compaction).
    data: ByteArena,
}

impl ByteChunk {
    fn new(log2: u32) -> Result<ByteChunk> {
        Ok(ByteChunk {
            spans: bytemuck::allocation::try_zeroed_vec(1 << log2).map_err(|()| no_memory::<Span>(log2))?,
            data: ByteArena::new(),
        })
    }

    fn try_clone(&self) -> Result<ByteChunk> {
        Ok(ByteChunk {
            spans: crate::alloc::clone_vec(&self.spans, KEYS_WHAT)?,
            data: self.data.try_clone(KEYS_WHAT)?,
        })
    }

    fn live(&self) -> usize {
        self.data.live()
    }

    /// Give every non-empty span its offset in a compacted arena, in slot order (and every empty one
    /// the free slot's `(0, 0)`).
    fn relocate(spans: &mut [Span], r: &mut crate::column::Relocator<'_>) {
        for span in spans {
            if span.len == 0 {
                *span = Span::default();
                continue;
            }
            span.start = r.relocate(span.start(), span.len());
        }
    }

    /// Rewrite the arena with only the bytes spans refer to, with room for `extra` more bytes. O(chunk
    /// size + live bytes).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the new arena cannot be allocated (nothing changes).
    fn compact(&mut self, extra: usize) -> Result<()> {
        let spans = &mut self.spans;
        self.data
            .compact(0, extra, KEYS_WHAT, |r| ByteChunk::relocate(spans, r))
    }
}

/// String and bytes keys: per chunk, an 8-byte span per slot into one byte arena, compacted when
/// deleted keys' bytes pass a threshold.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct ByteKeys {
    chunks: Vec<ByteChunk>,
    log2: u32,
    /// A chunk is compacted when its garbage exceeds both this and its live bytes.
    compact_min: usize,
    /// An upper bound of every chunk's arena length (lets `check` skip the chunk lookup).
    max_data: usize,
}

impl ByteKeys {
    fn locate(&self, slot: usize) -> (usize, usize) {
        (slot >> self.log2, slot & ((1 << self.log2) - 1))
    }
}

impl KeyColumn for ByteKeys {
    type Raw = [u8];

    const HAS_DATA: bool = true;

    fn raw_in(index: &crate::keyed_store::FileIndex, slot: usize) -> Option<&[u8]> {
        let c = slot >> index.log2;
        let o = slot & ((1 << index.log2) - 1);
        let spans: &[Span] = bytemuck::try_cast_slice(index.keys.get(c)?.bytes()).ok()?;
        let span = spans.get(o)?;
        let data = index.data.get(c)?.bytes();
        data.get(span.start()..span.start().checked_add(span.len())?)
    }

    fn file_hash(raw: &[u8]) -> u64 {
        crate::file::format::key_hash(raw)
    }

    fn save_chunks<'a>(&'a self, w: &mut crate::file::format::Writer<'a>) {
        for c in &self.chunks {
            w.buf(crate::file::format::Piece::Borrowed(bytemuck::cast_slice(
                &c.spans,
            )));
            w.buf(crate::file::format::Piece::Borrowed(c.data.bytes()));
            w.usize(c.data.garbage());
        }
    }

    fn new(log2: u32, compact_min: usize) -> Result<Self> {
        Ok(ByteKeys {
            chunks: vec![ByteChunk::new(log2)?],
            log2,
            compact_min,
            max_data: 0,
        })
    }

    #[inline]
    fn compact_min(&self) -> usize {
        self.compact_min
    }

    fn raw(&self, slot: usize) -> Option<&[u8]> {
        let (c, o) = self.locate(slot);
        let chunk = self.chunks.get(c)?;
        let span = chunk.spans.get(o)?;
        chunk.data.get(span.start(), span.len())
    }

    fn prepare(&mut self, raw: &[u8], chunk: usize) -> Result<()> {
        let Some(ch) = self.chunks.get_mut(chunk) else {
            return Ok(()); // not reached: the store grows the key column first
        };
        if raw.len().saturating_add(ch.live()) > ARENA_MAX {
            return Err(Error::InvalidArgument(format!(
                "a key of {} bytes does not fit the chunk's key arena ({} of {ARENA_MAX} bytes used)",
                raw.len(),
                ch.live()
            )));
        }
        if ch.data.len() + raw.len() > ARENA_MAX {
            // Only a compaction makes room: do it now, with the room, so `put` allocates nothing.
            ch.compact(raw.len())?;
            self.max_data = self.chunks.iter().map(|c| c.data.len()).max().unwrap_or(0);
        } else {
            // Grows by a quarter, as a value column's data buffer: its slack stays under 25%.
            ch.data.reserve_bounded(raw.len(), ARENA_MAX, KEYS_WHAT)?;
        }
        Ok(())
    }

    fn put(&mut self, slot: usize, raw: &[u8]) {
        let (c, o) = self.locate(slot);
        let Some(chunk) = self.chunks.get_mut(c) else {
            return;
        };
        let Some(span) = chunk.spans.get_mut(o) else {
            return;
        };
        // The slot is free, so its span is empty; count anything else as garbage all the same.
        chunk.data.free(span.len());
        // `prepare` reserved the room (and made sure the arena stays within ARENA_MAX bytes).
        let start = chunk.data.append(raw);
        // Fits in u32: the arena never exceeds ARENA_MAX bytes (`prepare`).
        *span = Span {
            start,
            len: u32::try_from(raw.len()).unwrap_or(u32::MAX),
        };
        self.max_data = self.max_data.max(chunk.data.len());
    }

    fn erase(&mut self, slot: usize) {
        let (c, o) = self.locate(slot);
        let min = self.compact_min;
        let Some(chunk) = self.chunks.get_mut(c) else {
            return;
        };
        let Some(span) = chunk.spans.get_mut(o) else {
            return;
        };
        chunk.data.free(span.len());
        *span = Span::default();
        if chunk.data.compaction_due(min) {
            // Optional: a compaction that cannot allocate waits for the next delete.
            let spans = &mut chunk.spans;
            chunk
                .data
                .maybe_compact(min, KEYS_WHAT, |r| ByteChunk::relocate(spans, r));
            self.max_data = self.chunks.iter().map(|c| c.data.len()).max().unwrap_or(0);
        }
    }

    fn grow_to(&mut self, chunks: usize) -> Result<()> {
        while self.chunks.len() < chunks {
            crate::alloc::reserve(&mut self.chunks, 1, KEYS_WHAT)?;
            self.chunks.push(ByteChunk::new(self.log2)?);
        }
        Ok(())
    }

    fn try_clone(&self) -> Result<Self> {
        let mut chunks = Vec::new();
        crate::alloc::reserve_exact(&mut chunks, self.chunks.len(), KEYS_WHAT)?;
        for c in &self.chunks {
            chunks.push(c.try_clone()?);
        }
        Ok(ByteKeys {
            chunks,
            log2: self.log2,
            compact_min: self.compact_min,
            max_data: self.max_data,
        })
    }

    fn truncate(&mut self, chunks: usize) {
        self.chunks.truncate(chunks.max(1));
        self.max_data = self.chunks.iter().map(|c| c.data.len()).max().unwrap_or(0);
    }

    fn clear(&mut self) {
        self.chunks.truncate(1);
        for c in &mut self.chunks {
            c.spans.fill(Span::default());
            c.data.clear();
        }
        self.max_data = 0;
    }

    fn nbytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| c.spans.capacity() * std::mem::size_of::<Span>() + c.data.capacity())
            .sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<ByteChunk>()
    }

    fn garbage(&self) -> usize {
        self.chunks.iter().map(|c| c.data.garbage()).sum()
    }

    fn validate(&self, store: &DynamicStore) -> Result<()> {
        check_chunk_count(
            self.chunks.len(),
            self.chunks.iter().map(|c| c.spans.len()),
            store,
        )?;
        for (c, (keys, chunk)) in self.chunks.iter().zip(store.chunks()).enumerate() {
            let base = c << self.log2;
            if let Some(o) = chunk
                .slots()
                .free_iter()
                .find(|&o| keys.spans[o] != Span::default())
            {
                return Err(Error::Invariant(format!(
                    "free slot {} holds a stale key",
                    base + o
                )));
            }
            let mut spans: Vec<(usize, usize)> = chunk
                .slots()
                .occupied_iter()
                .map(|o| keys.spans[o])
                .filter(|s| s.len > 0)
                .map(|s| (s.start(), s.len()))
                .collect();
            match keys.data.check_spans(&mut spans, self.compact_min) {
                Ok(_) => {}
                Err(SpanFault::Outside(off, n) | SpanFault::Overlap(off, n)) => {
                    // Both fit in u32: they were read from a span.
                    let s = Span {
                        start: u32::try_from(off).unwrap_or(u32::MAX),
                        len: u32::try_from(n).unwrap_or(u32::MAX),
                    };
                    return Err(Error::Invariant(format!(
                        "key span {s:?} of chunk {c} overlaps another or leaves the arena"
                    )));
                }
                Err(SpanFault::Count(live)) => {
                    return Err(Error::Invariant(format!(
                        "chunk {c}: {live} live + {} garbage key bytes, arena holds {}",
                        keys.data.garbage(),
                        keys.data.len()
                    )));
                }
                Err(SpanFault::NotCompacted(live)) => {
                    return Err(Error::Invariant(format!(
                        "chunk {c}: {} garbage key bytes were not compacted ({live} live)",
                        keys.data.garbage()
                    )));
                }
            }
            if keys.data.len() > self.max_data {
                return Err(Error::Invariant(format!("chunk {c}: arena beyond max_data")));
            }
        }
        Ok(())
    }
}
