//! The key column of integer keys (`i64`, `u64`).

use std::fmt::Debug;
use std::hash::Hash;

use super::key::sealed::KeyColumn;
use super::key::{check_chunk_count, no_memory, KEYS_WHAT};
use crate::dynamic_store::DynamicStore;
use crate::error::{Error, Result};
use crate::store::Store;

/// Integer keys: one plain `Vec<T>` per chunk, indexed by slot offset; a free slot holds 0.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct IntKeys<T> {
    chunks: Vec<Vec<T>>,
    log2: u32,
}

impl<T> KeyColumn for IntKeys<T>
where
    T: bytemuck::Pod + Eq + Hash + Debug + Default + Send + Sync,
{
    type Raw = T;

    const HAS_DATA: bool = false;

    fn raw_in(index: &crate::keyed_store::FileIndex, slot: usize) -> Option<&T> {
        let words = index.keys.get(slot >> index.log2)?;
        bytemuck::try_cast_slice::<u8, T>(words.bytes())
            .ok()?
            .get(slot & ((1 << index.log2) - 1))
    }

    fn file_hash(raw: &T) -> u64 {
        crate::file::format::key_hash(bytemuck::bytes_of(raw))
    }

    fn save_chunks<'a>(&'a self, w: &mut crate::file::format::Writer<'a>) {
        for c in &self.chunks {
            w.buf(crate::file::format::Piece::Borrowed(bytemuck::cast_slice(c)));
        }
    }

    fn new(log2: u32, _compact_min: usize) -> Result<Self> {
        let mut keys = IntKeys {
            chunks: Vec::new(),
            log2,
        };
        keys.grow_to(1)?;
        Ok(keys)
    }

    #[inline]
    fn compact_min(&self) -> usize {
        0
    }

    fn raw(&self, slot: usize) -> Option<&T> {
        self.chunks
            .get(slot >> self.log2)?
            .get(slot & ((1 << self.log2) - 1))
    }

    fn prepare(&mut self, _raw: &T, _chunk: usize) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn put(&mut self, slot: usize, raw: &T) {
        let mask = (1 << self.log2) - 1;
        if let Some(k) = self
            .chunks
            .get_mut(slot >> self.log2)
            .and_then(|c| c.get_mut(slot & mask))
        {
            *k = *raw;
        }
    }

    #[inline]
    fn erase(&mut self, slot: usize) {
        let mask = (1 << self.log2) - 1;
        if let Some(k) = self
            .chunks
            .get_mut(slot >> self.log2)
            .and_then(|c| c.get_mut(slot & mask))
        {
            *k = T::default();
        }
    }

    fn grow_to(&mut self, chunks: usize) -> Result<()> {
        while self.chunks.len() < chunks {
            crate::alloc::reserve(&mut self.chunks, 1, KEYS_WHAT)?;
            let chunk = bytemuck::allocation::try_zeroed_vec(1 << self.log2)
                .map_err(|()| no_memory::<T>(self.log2))?;
            self.chunks.push(chunk);
        }
        Ok(())
    }

    fn try_clone(&self) -> Result<Self> {
        let mut chunks = Vec::new();
        crate::alloc::reserve_exact(&mut chunks, self.chunks.len(), KEYS_WHAT)?;
        for c in &self.chunks {
            chunks.push(crate::alloc::clone_vec(c, KEYS_WHAT)?);
        }
        Ok(IntKeys {
            chunks,
            log2: self.log2,
        })
    }

    fn truncate(&mut self, chunks: usize) {
        self.chunks.truncate(chunks.max(1));
    }

    fn clear(&mut self) {
        self.chunks.truncate(1);
        for c in &mut self.chunks {
            c.fill(T::default());
        }
    }

    fn nbytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| c.capacity() * std::mem::size_of::<T>())
            .sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<T>>()
    }

    fn garbage(&self) -> usize {
        0
    }

    fn validate(&self, store: &DynamicStore) -> Result<()> {
        check_chunk_count(self.chunks.len(), self.chunks.iter().map(Vec::len), store)?;
        for (c, (keys, chunk)) in self.chunks.iter().zip(store.chunks()).enumerate() {
            if let Some(o) = chunk.slots().free_iter().find(|&o| keys[o] != T::default()) {
                return Err(Error::Invariant(format!(
                    "free slot {} holds stale key {:?}",
                    (c << self.log2) + o,
                    keys[o]
                )));
            }
        }
        Ok(())
    }
}
