//! The key column of `str` and `bytes` keys: a span per slot into one byte arena per chunk.

use super::key::sealed::KeyColumn;
use super::key::{check_chunk_count, no_memory, KEYS_WHAT};
use crate::dynamic_store::DynamicStore;
use crate::error::{Error, Result};
use crate::store::Store;

/// Where one slot's key bytes lie in its chunk's arena. A free slot's span is `(0, 0)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, bytemuck::Zeroable)]
#[repr(C)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

/// The keys of one chunk: a span per slot and one arena of key bytes.
#[derive(Debug, Clone)]
struct ByteChunk {
    spans: Vec<Span>,
    data: Vec<u8>,
    /// Bytes of `data` no span refers to (left by deleted keys).
    garbage: usize,
    /// A compaction was due but could not allocate its new arena: the garbage bound is not met until the
    /// next compaction succeeds (a delete never fails for want of an optional compaction).
    compaction_deferred: bool,
}

impl ByteChunk {
    fn new(log2: u32) -> Result<ByteChunk> {
        Ok(ByteChunk {
            spans: bytemuck::allocation::try_zeroed_vec(1 << log2).map_err(|()| no_memory::<Span>(log2))?,
            data: Vec::new(),
            garbage: 0,
            compaction_deferred: false,
        })
    }

    fn try_clone(&self) -> Result<ByteChunk> {
        Ok(ByteChunk {
            spans: crate::alloc::clone_vec(&self.spans, KEYS_WHAT)?,
            data: crate::alloc::clone_vec(&self.data, KEYS_WHAT)?,
            garbage: self.garbage,
            compaction_deferred: self.compaction_deferred,
        })
    }

    fn live(&self) -> usize {
        self.data.len() - self.garbage
    }

    /// Rewrite the arena with only the bytes spans refer to, with room for `extra` more bytes. O(chunk
    /// size + live bytes).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the new arena cannot be allocated (nothing changes).
    fn compact(&mut self, extra: usize) -> Result<()> {
        let mut data = Vec::new();
        crate::alloc::reserve_exact(&mut data, self.live().saturating_add(extra), KEYS_WHAT)?;
        for span in &mut self.spans {
            if span.len == 0 {
                *span = Span::default();
                continue;
            }
            let start = data.len();
            // Invariant: every span lies inside the arena (checked by `validate`).
            data.extend_from_slice(self.data.get(span.range()).unwrap_or_default());
            // `start + len <= live <= u32::MAX`: the arena never holds more than u32::MAX bytes.
            span.start = u32::try_from(start).unwrap_or(u32::MAX);
        }
        self.data = data;
        self.garbage = 0;
        self.compaction_deferred = false;
        Ok(())
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

const ARENA_MAX: usize = u32::MAX as usize;

impl ByteKeys {
    fn locate(&self, slot: usize) -> (usize, usize) {
        (slot >> self.log2, slot & ((1 << self.log2) - 1))
    }
}

impl KeyColumn for ByteKeys {
    type Raw = [u8];

    fn new(log2: u32, compact_min: usize) -> Result<Self> {
        Ok(ByteKeys {
            chunks: vec![ByteChunk::new(log2)?],
            log2,
            compact_min,
            max_data: 0,
        })
    }

    #[inline]
    fn raw(&self, slot: usize) -> Option<&[u8]> {
        let (c, o) = self.locate(slot);
        let chunk = self.chunks.get(c)?;
        chunk.data.get(chunk.spans.get(o)?.range())
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
        } else if ch.data.capacity() - ch.data.len() < raw.len() {
            crate::alloc::reserve(&mut ch.data, raw.len(), KEYS_WHAT)?;
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
        chunk.garbage += span.len as usize;
        let start = chunk.data.len();
        // `prepare` reserved the room (and made sure the arena stays within ARENA_MAX bytes).
        chunk.data.extend_from_slice(raw);
        // Both fit in u32: the arena never exceeds ARENA_MAX bytes (`prepare`).
        *span = Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
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
        chunk.garbage += span.len as usize;
        *span = Span::default();
        if chunk.garbage > min && chunk.garbage > chunk.live() {
            // Optional: a compaction that cannot allocate waits for the next delete.
            chunk.compaction_deferred = chunk.compact(0).is_err();
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
            c.data = Vec::new();
            c.garbage = 0;
            c.compaction_deferred = false;
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
        self.chunks.iter().map(|c| c.garbage).sum()
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
            let mut spans: Vec<Span> = chunk
                .slots()
                .occupied_iter()
                .map(|o| keys.spans[o])
                .filter(|s| s.len > 0)
                .collect();
            spans.sort_unstable_by_key(|s| s.start);
            let mut end = 0;
            let mut live = 0;
            for s in &spans {
                if (s.start as usize) < end || s.range().end > keys.data.len() {
                    return Err(Error::Invariant(format!(
                        "key span {s:?} of chunk {c} overlaps another or leaves the arena"
                    )));
                }
                end = s.range().end;
                live += s.len as usize;
            }
            if live + keys.garbage != keys.data.len() {
                return Err(Error::Invariant(format!(
                    "chunk {c}: {live} live + {} garbage key bytes, arena holds {}",
                    keys.garbage,
                    keys.data.len()
                )));
            }
            if keys.garbage > self.compact_min && keys.garbage > live && !keys.compaction_deferred {
                return Err(Error::Invariant(format!(
                    "chunk {c}: {} garbage key bytes were not compacted ({live} live)",
                    keys.garbage
                )));
            }
            if keys.data.len() > self.max_data {
                return Err(Error::Invariant(format!("chunk {c}: arena beyond max_data")));
            }
        }
        Ok(())
    }
}
