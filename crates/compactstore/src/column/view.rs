//! `ViewColumn`: variable-length str/bytes values, one 16-byte view per slot.
//!
//! Every slot has a 16-byte view in one aligned buffer (the views of a chunk never move). A value of at
//! most [`INLINE_MAX`] (15) bytes lives entirely in its view; a longer one keeps a prefix in the view —
//! [`PREFIX_LEN`] (11) bytes for values of up to [`MEDIUM_MAX`] (254) bytes, [`LARGE_PREFIX_LEN`] (7)
//! beyond — and the rest in the chunk's data buffer:
//!
//! ```text
//!  inline, len <= 15:
//!   byte  0        1 ................................................ 15
//!        +--------+--------------------------------------------------+
//!        | len    | value bytes 0..len, then zero padding            |
//!        +--------+--------------------------------------------------+
//!  medium, 16 <= len <= 254:
//!   byte  0        1 ..................................... 11   12 ........ 15
//!        +--------+------------------------------------------+---------------+
//!        | len    | value bytes 0..11                        | offset (u32 LE)|
//!        +--------+------------------------------------------+---------------+
//!        data[offset .. offset + len - 11] holds value bytes 11..len
//!  large, len >= 255:
//!   byte  0        1 ..................... 7   8 ......... 11   12 ........ 15
//!        +--------+--------------------------+---------------+---------------+
//!        | 0xFF   | value bytes 0..7         | len (u32 LE)  | offset (u32 LE)|
//!        +--------+--------------------------+---------------+---------------+
//!        data[offset .. offset + len - 7] holds value bytes 7..len
//! ```
//!
//! **Why 15 inline and not Arrow's 12.** The layout was chosen for B2 (names of 12 to 20 ASCII letters,
//! 16 on average): with 15 bytes inline, 4/9 of the names need no data buffer at all (with 12, 1/9), and a
//! longer value stores only its bytes after the prefix in the buffer (Arrow repeats its 4-byte prefix
//! there): the tag byte doubles as the length up to 254 bytes, which leaves 11 bytes for the prefix, so an
//! 18-byte name costs 16 + 7 bytes instead of Arrow's 16 + 18. Together that is ~4 bytes per B2 entry
//! instead of ~15. The price is that the views do not export to Arrow's `StringViewArray` without a
//! conversion (one pass rewriting the views; the data buffer then needs the prefixes back).
//!
//! **Writes.** A short value is written into its view. A long value overwrites the old long value's bytes in
//! place when they fit; otherwise it is appended to the data buffer. Bytes no view refers to any more
//! (overwritten, deleted, or the tail of an in-place shrink) are *garbage*. When a chunk's garbage exceeds
//! both its live bytes and a minimum (the `compact_min` parameter; by default the larger of
//! [`DEFAULT_VIEW_COMPACT_MIN`] and the chunk size), the data buffer is rewritten with only the live bytes:
//! O(size + live), paid for by at least `max(compact_min, live)` bytes of garbage made since the last
//! compaction, so amortised O(1) per garbage byte and never O(n) per write. The buffer therefore never holds
//! more than `2 * live + compact_min` bytes. It grows by a quarter of its capacity at a time (not by
//! doubling), so its unused capacity stays under 25%. A chunk's data buffer holds at most `u32::MAX` bytes.

use super::{AlignedBuf, ByteArena, Relocator, SpanFault, ARENA_MAX};
use crate::error::{Error, Result};
use crate::schema::MemberType;
use crate::value::Value;

/// Bytes per view.
pub const VIEW_BYTES: usize = 16;
/// The longest value stored entirely in its view.
pub const INLINE_MAX: usize = 15;
/// Bytes of a medium value (16 to [`MEDIUM_MAX`] bytes) kept in its view (the rest lives in the data
/// buffer).
pub const PREFIX_LEN: usize = 11;
/// The longest value whose length is the view's tag byte.
pub const MEDIUM_MAX: usize = 254;
/// Bytes of a large value (over [`MEDIUM_MAX`] bytes) kept in its view.
pub const LARGE_PREFIX_LEN: usize = 7;
/// The default minimum garbage before compaction (the chunk size, if larger, is used instead).
pub const DEFAULT_VIEW_COMPACT_MIN: usize = 4096;
/// The tag byte of a large view.
const LARGE_TAG: u8 = 0xFF;
/// The largest data buffer of one chunk (offsets are `u32`).
const DATA_MAX: usize = ARENA_MAX;

type View = [u8; VIEW_BYTES];

/// What a chunk's data buffer is, in an [`Error::OutOfMemory`].
const DATA_WHAT: &str = "a chunk's str/bytes data";

/// Whether values are text (read back as [`Value::Str`]) or bytes ([`Value::Bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    /// UTF-8 text.
    Str,
    /// Bytes.
    Bytes,
}

impl VarKind {
    /// The kind of a `Str` or `Bytes` member type (looking through `Interned`), if it is one.
    #[must_use]
    pub fn of(ty: &MemberType) -> Option<VarKind> {
        match ty {
            MemberType::Str => Some(VarKind::Str),
            MemberType::Bytes => Some(VarKind::Bytes),
            MemberType::Interned(t) => VarKind::of(t),
            _ => None,
        }
    }

    /// The member type.
    #[must_use]
    pub fn member_type(self) -> MemberType {
        match self {
            VarKind::Str => MemberType::Str,
            VarKind::Bytes => MemberType::Bytes,
        }
    }

    /// The bytes of `v`, if it is a value of this kind.
    ///
    /// # Errors
    /// [`Error::WrongType`] for any other value (text and bytes never convert into each other).
    pub fn bytes_of(self, v: &Value) -> Result<&[u8]> {
        match (self, v) {
            (VarKind::Str, Value::Str(s)) => Ok(s.as_bytes()),
            (VarKind::Bytes, Value::Bytes(b)) => Ok(b),
            _ => Err(Error::WrongType {
                expected: self.member_type().to_string(),
                got: v.kind().to_owned(),
            }),
        }
    }

    /// `bytes` as a value of this kind (text that is not UTF-8 is repaired lossily; it cannot happen for
    /// bytes that came in as a `str`).
    #[must_use]
    pub fn value(self, bytes: Vec<u8>) -> Value {
        match self {
            VarKind::Str => match String::from_utf8(bytes) {
                Ok(s) => Value::Str(s),
                Err(e) => Value::Str(String::from_utf8_lossy(e.as_bytes()).into_owned()),
            },
            VarKind::Bytes => Value::Bytes(bytes),
        }
    }
}

/// A str/bytes member's storage in one chunk: a 16-byte view per slot and a data buffer (see the module
/// docs for the layout and the compaction rule).
#[derive(Debug, Clone)]
pub struct ViewColumn {
    kind: VarKind,
    size: usize,
    views: AlignedBuf,
    /// The bytes of long values after their prefixes; garbage-counted and compacted.
    data: ByteArena,
    compact_min: usize,
    /// One slot's default value.
    default: Vec<u8>,
    /// Slots `0..filled` hold their values in their views; the others have never been written, read as
    /// the default, and their views are zero (untouched pages). `size` for an eager column.
    filled: usize,
    /// Whether slots are filled with the default only when first written or reset (see
    /// [`ViewColumn::try_new_lazy`]).
    lazy: bool,
}

/// Bytes of a value of `len` (> [`INLINE_MAX`]) bytes kept in its view.
const fn prefix_len(len: usize) -> usize {
    if len <= MEDIUM_MAX {
        PREFIX_LEN
    } else {
        LARGE_PREFIX_LEN
    }
}

/// Where a long view's value lives: `prefix` bytes in the view (from byte 1), `n` bytes at `off` in the
/// data buffer.
#[derive(Debug, Clone, Copy)]
struct Long {
    prefix: usize,
    off: usize,
    n: usize,
}

fn long_parts(v: &View) -> Option<Long> {
    let len = match v[0] {
        0..=15 => return None,
        LARGE_TAG => u32::from_le_bytes([v[8], v[9], v[10], v[11]]) as usize,
        len => len as usize,
    };
    let off = u32::from_le_bytes([v[12], v[13], v[14], v[15]]) as usize;
    let prefix = prefix_len(len);
    Some(Long {
        prefix,
        off,
        n: len.saturating_sub(prefix),
    })
}

fn inline_view(bytes: &[u8]) -> View {
    debug_assert!(bytes.len() <= INLINE_MAX);
    let mut v = [0u8; VIEW_BYTES];
    // len <= 15, so it fits the tag byte and the value fits bytes 1..16.
    v[0] = bytes.len() as u8;
    v[1..=bytes.len()].copy_from_slice(bytes);
    v
}

fn long_view(bytes: &[u8], off: usize) -> View {
    let mut v = [0u8; VIEW_BYTES];
    let prefix = prefix_len(bytes.len());
    if let Ok(len @ 16..=254) = u8::try_from(bytes.len()) {
        v[0] = len;
    } else {
        v[0] = LARGE_TAG;
        // Fits in u32: values are at most DATA_MAX bytes (checked by `set_bytes`).
        v[8..12].copy_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
    }
    v[1..=prefix].copy_from_slice(&bytes[..prefix]);
    // Fits in u32: the data buffer holds at most DATA_MAX bytes.
    v[12..16].copy_from_slice(&u32::try_from(off).unwrap_or(u32::MAX).to_le_bytes());
    v
}

/// Move the data-buffer bytes of the long views among the first `filled` into a compacted buffer, in slot
/// order, and store their new offsets. Views beyond the filled ones are zero (inline, empty): nothing to
/// move, their pages left untouched.
fn relocate_views(views: &mut AlignedBuf, filled: usize, r: &mut Relocator<'_>) {
    let views: &mut [View] = bytemuck::cast_slice_mut(views.bytes_mut());
    for v in views.iter_mut().take(filled) {
        if let Some(Long { off, n, .. }) = long_parts(v) {
            let start = r.relocate(off, n);
            v[12..16].copy_from_slice(&start.to_le_bytes());
        }
    }
}

impl ViewColumn {
    /// A column of `size` slots of `kind`, each holding `default`, compacting when garbage exceeds both
    /// the live bytes and `compact_min`. Allocates the views once; an empty default touches no page, a
    /// long one is copied into the data buffer once per slot.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the views or the defaults' data cannot be allocated;
    /// [`Error::InvalidArgument`] if the defaults do not fit a chunk's data buffer.
    pub fn try_new(kind: VarKind, size: usize, default: &[u8], compact_min: usize) -> Result<ViewColumn> {
        ViewColumn::build(kind, size, default, compact_min, false)
    }

    /// As [`ViewColumn::try_new`], but a slot gets the default only when it is first written or reset:
    /// until then it reads as the default and its view's page stays untouched (for the chunks of dynamic
    /// and keyed stores: a non-empty default otherwise writes every view of a new chunk). Slots below
    /// [`ViewColumn::filled`] are filled; a write or reset fills the slots from the mark up to it.
    ///
    /// # Errors
    /// As [`ViewColumn::try_new`].
    pub fn try_new_lazy(
        kind: VarKind,
        size: usize,
        default: &[u8],
        compact_min: usize,
    ) -> Result<ViewColumn> {
        ViewColumn::build(kind, size, default, compact_min, true)
    }

    fn build(
        kind: VarKind,
        size: usize,
        default: &[u8],
        compact_min: usize,
        lazy: bool,
    ) -> Result<ViewColumn> {
        let bytes = size
            .checked_mul(VIEW_BYTES)
            .ok_or_else(|| Error::out_of_memory(usize::MAX, "a str/bytes column's views"))?;
        let mut c = ViewColumn {
            kind,
            size,
            views: AlignedBuf::try_zeroed(bytes)?,
            data: ByteArena::new(),
            compact_min,
            default: crate::alloc::to_vec(default, "a str/bytes default")?,
            filled: 0,
            lazy: lazy && !default.is_empty(),
        };
        // The views are freshly zeroed: a lazy column has nothing to write yet, an eager one its
        // defaults (nothing at all for an empty default, so its pages are never touched).
        if !c.lazy {
            c.write_defaults()?;
        }
        Ok(c)
    }

    /// Slots `0..filled()` hold their values; the others read as the default (`size()` unless lazy).
    #[must_use]
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// A copy in new buffers. O(size + data).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated.
    pub fn try_clone(&self) -> Result<ViewColumn> {
        Ok(ViewColumn {
            kind: self.kind,
            size: self.size,
            views: self.views.try_clone()?,
            data: self.data.try_clone(DATA_WHAT)?,
            compact_min: self.compact_min,
            default: self.default.clone(),
            filled: self.filled,
            lazy: self.lazy,
        })
    }

    /// Text or bytes.
    #[must_use]
    pub fn kind(&self) -> VarKind {
        self.kind
    }

    /// Number of slots.
    #[must_use]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes held: the views and the data buffer's capacity.
    #[must_use]
    pub fn nbytes(&self) -> usize {
        self.views.capacity_bytes() + self.data.capacity()
    }

    /// Bytes of the data buffer no view refers to.
    #[must_use]
    pub fn garbage(&self) -> usize {
        self.data.garbage()
    }

    /// Bytes of the data buffer views refer to.
    #[must_use]
    pub fn live(&self) -> usize {
        self.data.live()
    }

    /// The compaction minimum.
    #[must_use]
    pub fn compact_min(&self) -> usize {
        self.compact_min
    }

    fn check_slot(&self, slot: usize) -> Result<()> {
        super::check_slot(slot, self.size)
    }

    fn view(&self, slot: usize) -> View {
        let views: &[View] = bytemuck::cast_slice(self.views.bytes());
        // Callers check slot < size; an out-of-range slot reads as an empty view.
        views.get(slot).copied().unwrap_or_default()
    }

    fn put_view(&mut self, slot: usize, v: View) {
        let views: &mut [View] = bytemuck::cast_slice_mut(self.views.bytes_mut());
        if let Some(dst) = views.get_mut(slot) {
            *dst = v;
        }
    }

    /// The suffix of a long view in the data buffer (empty if the view is out of bounds, which
    /// `validate` reports).
    fn suffix(&self, off: usize, n: usize) -> &[u8] {
        self.data.get(off, n).unwrap_or_default()
    }

    /// The bytes at `slot`. O(len).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot >= size()`; [`Error::OutOfMemory`] if the copy cannot be
    /// allocated.
    pub fn get_bytes(&self, slot: usize) -> Result<Vec<u8>> {
        self.check_slot(slot)?;
        if slot >= self.filled {
            return crate::alloc::to_vec(&self.default, "a copy of a str/bytes value");
        }
        let v = self.view(slot);
        Ok(match long_parts(&v) {
            None => v[1..=(v[0] as usize).min(INLINE_MAX)].to_vec(),
            Some(Long { prefix, off, n }) => {
                let mut out = Vec::new();
                crate::alloc::reserve_exact(&mut out, prefix + n, "a copy of a str/bytes value")?;
                out.extend_from_slice(&v[1..=prefix]);
                out.extend_from_slice(self.suffix(off, n));
                out
            }
        })
    }

    /// The value at `slot` as two slices whose concatenation is the value (the bytes in its view, then
    /// those in the data buffer), without copying it: for an export that writes every value once
    /// (`crate::arrow`). Empty for a slot out of range. O(1).
    #[cfg(feature = "arrow")]
    pub(crate) fn parts(&self, slot: usize) -> (&[u8], &[u8]) {
        if slot >= self.size {
            return (&[], &[]);
        }
        if slot >= self.filled {
            return (&self.default, &[]);
        }
        let views: &[View] = bytemuck::cast_slice(self.views.bytes());
        let Some(v) = views.get(slot) else {
            return (&[], &[]);
        };
        match long_parts(v) {
            None => (&v[1..=(v[0] as usize).min(INLINE_MAX)], &[]),
            Some(Long { prefix, off, n }) => (&v[1..=prefix], self.suffix(off, n)),
        }
    }

    /// Append the values at `slots` to `data`, calling `end` with `data.len()` after each: the one pass of an
    /// Arrow export of the column (`crate::arrow`). `data` should have room for every value's bytes plus
    /// 16 (short values are copied as whole views, then cut to length). Slots out of range read as empty.
    /// Returns whether every value's first byte starts a UTF-8 character (not `0b10xx_xxxx`).
    #[cfg(feature = "arrow")]
    pub(crate) fn append_values(
        &self,
        slots: impl Iterator<Item = usize>,
        data: &mut Vec<u8>,
        mut end: impl FnMut(usize),
    ) -> bool {
        let views: &[View] = bytemuck::cast_slice(self.views.bytes());
        let mut starts = true;
        let default_starts = self.default.first().is_none_or(|&b| b & 0xC0 != 0x80);
        for slot in slots {
            let at = data.len();
            match views.get(slot) {
                Some(_) if slot >= self.filled => {
                    starts &= default_starts;
                    data.extend_from_slice(&self.default);
                }
                Some(v) => match long_parts(v) {
                    None => {
                        starts &= v[0] == 0 || v[1] & 0xC0 != 0x80;
                        // A fixed 15-byte copy (no call), then the length.
                        data.extend_from_slice(&v[1..VIEW_BYTES]);
                        data.truncate(at + (v[0] as usize).min(INLINE_MAX));
                    }
                    Some(Long { prefix, off, n }) => {
                        starts &= v[1] & 0xC0 != 0x80;
                        // The prefix as a fixed 15-byte copy too, cut to its length.
                        data.extend_from_slice(&v[1..VIEW_BYTES]);
                        data.truncate(at + prefix);
                        data.extend_from_slice(self.suffix(off, n));
                    }
                },
                None => {}
            }
            end(data.len());
        }
        starts
    }

    /// Whether the value at `slot` equals `bytes`, without copying it. O(len).
    #[must_use]
    pub fn eq_bytes(&self, slot: usize, bytes: &[u8]) -> bool {
        if slot >= self.size {
            return false;
        }
        if slot >= self.filled {
            return self.default == bytes;
        }
        let v = self.view(slot);
        match long_parts(&v) {
            None => v[1..=(v[0] as usize).min(INLINE_MAX)] == *bytes,
            Some(Long { prefix, off, n }) => {
                bytes.len() == prefix + n
                    && v[1..=prefix] == bytes[..prefix]
                    && self.suffix(off, n) == &bytes[prefix..]
            }
        }
    }

    /// The value at `slot`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot >= size()`.
    pub fn get(&self, slot: usize) -> Result<Value> {
        Ok(self.kind.value(self.get_bytes(slot)?))
    }

    /// Write `v` (a [`Value::Str`] for a str column, [`Value::Bytes`] for bytes) at `slot`. Nothing
    /// changes on error.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`], [`Error::WrongType`] for a value of another kind, and the errors of
    /// [`ViewColumn::set_bytes`].
    pub fn set(&mut self, slot: usize, v: &Value) -> Result<()> {
        self.check_slot(slot)?;
        let kind = self.kind;
        self.set_bytes(slot, kind.bytes_of(v)?)
    }

    /// Write `bytes` at `slot` (for a str column, the caller guarantees UTF-8). In place when the value is
    /// short or fits the old long value's bytes; appended otherwise. O(len), plus amortised compaction.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`]; [`Error::InvalidArgument`] if the chunk's live bytes would pass
    /// `u32::MAX`; [`Error::OutOfMemory`] if the data buffer cannot grow. Nothing changes on error.
    pub fn set_bytes(&mut self, slot: usize, bytes: &[u8]) -> Result<()> {
        self.check_slot(slot)?;
        // The unfilled slots below this one get their default first (they read as it before and after).
        self.fill_below(slot)?;
        let r = self.write_filled(slot, bytes);
        if r.is_ok() {
            self.filled = self.filled.max(slot + 1);
        }
        r
    }

    /// Fill the default into the unfilled slots below `slot`. O(slots filled).
    fn fill_below(&mut self, slot: usize) -> Result<()> {
        while self.filled < slot {
            let s = self.filled;
            let default = std::mem::take(&mut self.default);
            let r = self.write_filled(s, &default);
            self.default = default;
            r?;
            self.filled = s + 1;
        }
        Ok(())
    }

    /// [`ViewColumn::set_bytes`] of a slot whose lower slots are filled (its own view is valid: its
    /// value, or zero if it is not filled yet).
    fn write_filled(&mut self, slot: usize, bytes: &[u8]) -> Result<()> {
        let old = long_parts(&self.view(slot));
        let old_n = old.map_or(0, |l| l.n);
        if bytes.len() <= INLINE_MAX {
            self.put_view(slot, inline_view(bytes));
            self.data.free(old_n);
            self.maybe_compact();
            return Ok(());
        }
        let suffix = &bytes[prefix_len(bytes.len())..];
        if let Some(Long { off, n, .. }) = old.filter(|l| l.n >= suffix.len()) {
            // Overwrite in place; the old value's tail becomes garbage.
            if let Some(dst) = self.data.get_mut(off, suffix.len()) {
                dst.copy_from_slice(suffix);
                self.put_view(slot, long_view(bytes, off));
                self.data.free(n - suffix.len());
                self.maybe_compact();
                return Ok(());
            }
        }
        self.check_room(slot, bytes)?;
        // Room first (the only allocation), so that a refused allocation changes nothing.
        if self.data.len() + suffix.len() > DATA_MAX {
            // Rewrite the buffer without the garbage and without this slot's old value, with room for
            // the new one.
            self.compact_with_room(suffix.len(), Some(slot))?;
        } else if self.data.spare() < suffix.len() {
            // Grow by a quarter, not double: the buffer's slack stays under 25% (B2 counts it), and
            // growth stays geometric, so appends remain amortised O(len). Under memory pressure, exactly
            // what this value needs.
            let off = self.data.len();
            let more = suffix
                .len()
                .max(self.data.capacity() / 4)
                .max(64)
                .min(DATA_MAX - off);
            if self.data.reserve_exact(more, DATA_WHAT).is_err() {
                self.data.reserve_exact(suffix.len(), DATA_WHAT)?;
            }
        }
        // The old value becomes garbage (after a compaction it is gone already).
        if let Some(l) = long_parts(&self.view(slot)) {
            self.data.free(l.n);
        }
        let off = self.data.append(suffix) as usize;
        self.put_view(slot, long_view(bytes, off));
        self.maybe_compact();
        Ok(())
    }

    /// Whether writing `bytes` at `slot` fits the chunk's data buffer (what [`ViewColumn::set_bytes`]
    /// refuses otherwise): a check, no allocation.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`]; [`Error::InvalidArgument`] as `set_bytes` would raise it.
    pub fn check_room(&self, slot: usize, bytes: &[u8]) -> Result<()> {
        self.check_slot(slot)?;
        if bytes.len() <= INLINE_MAX {
            return Ok(());
        }
        let old_n = long_parts(&self.view(slot)).map_or(0, |l| l.n);
        let suffix = bytes.len() - prefix_len(bytes.len());
        if bytes.len() > DATA_MAX || self.live() - old_n + suffix > DATA_MAX {
            return Err(Error::InvalidArgument(format!(
                "a value of {} bytes does not fit the chunk's data buffer ({} of {DATA_MAX} bytes live)",
                bytes.len(),
                self.live()
            )));
        }
        Ok(())
    }

    /// Make room for writing `bytes` at `slot`, so that [`ViewColumn::set_bytes`] of them cannot fail: the
    /// checks of [`ViewColumn::check_room`], then the data buffer's growth (or its compaction near the 4 GiB
    /// limit) done ahead. Changes no value. For a caller writing several members of one entry, which must
    /// not fail halfway.
    ///
    /// # Errors
    /// As [`ViewColumn::check_room`]; [`Error::OutOfMemory`] if the room cannot be allocated.
    pub fn reserve_room(&mut self, slot: usize, bytes: &[u8]) -> Result<()> {
        self.check_room(slot, bytes)?;
        if bytes.len() <= INLINE_MAX {
            return Ok(());
        }
        let suffix = bytes.len() - prefix_len(bytes.len());
        if long_parts(&self.view(slot)).is_some_and(|l| l.n >= suffix) {
            return Ok(()); // written in place
        }
        if self.data.len() + suffix > DATA_MAX {
            return self.compact_with_room(suffix, None);
        }
        self.data.reserve_exact(suffix, DATA_WHAT)
    }

    /// The data-buffer bytes writing `bytes` at `slot` may append (0 for a value that stays in its view
    /// or overwrites the old one in place). O(1).
    #[must_use]
    pub fn append_bytes(&self, slot: usize, bytes: &[u8]) -> usize {
        if bytes.len() <= INLINE_MAX || slot >= self.size {
            return 0;
        }
        let suffix = bytes.len() - prefix_len(bytes.len());
        match long_parts(&self.view(slot)) {
            Some(l) if slot < self.filled && l.n >= suffix => 0,
            _ => suffix,
        }
    }

    /// Grow the data buffer so that `extra` more bytes append without allocating (capped at the 4 GiB
    /// limit, which the writes check themselves). Changes no value.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the room cannot be allocated.
    pub fn reserve_data(&mut self, extra: usize) -> Result<()> {
        let extra = extra.min(DATA_MAX.saturating_sub(self.data.len()));
        self.data.reserve_exact(extra, DATA_WHAT)
    }

    /// Put the column's default back at `slot`, releasing the old value's bytes. O(default length).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot >= size()`.
    pub fn reset_slot(&mut self, slot: usize) -> Result<()> {
        self.check_slot(slot)?;
        // The lower unfilled slots take the default while it is in place.
        self.fill_below(slot)?;
        let default = std::mem::take(&mut self.default);
        let r = self.set_bytes(slot, &default);
        self.default = default;
        r
    }

    /// Put the default in every slot and drop the data buffer. O(size).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `size` copies of a long default do not fit the data buffer;
    /// [`Error::OutOfMemory`] if they cannot be allocated.
    pub fn fill_default(&mut self) -> Result<()> {
        self.data.clear();
        if self.lazy {
            // Only the filled views were ever written: zero them, and the column reads as the default.
            let n = self.filled * VIEW_BYTES;
            self.views.bytes_mut()[..n].fill(0);
            self.filled = 0;
            return Ok(());
        }
        self.views.bytes_mut().fill(0);
        self.write_defaults()
    }

    /// Write the default into every slot of views that are all zero (an empty inline view each):
    /// nothing to write for an empty default, so the zeroed pages of a new column stay untouched.
    fn write_defaults(&mut self) -> Result<()> {
        self.filled = self.size;
        if self.default.is_empty() {
            return Ok(());
        }
        if self.default.len() > INLINE_MAX {
            let n = (self.default.len() - prefix_len(self.default.len())).saturating_mul(self.size);
            if n > DATA_MAX {
                return Err(Error::InvalidArgument(format!(
                    "{} copies of a {}-byte default do not fit a chunk's data buffer",
                    self.size,
                    self.default.len()
                )));
            }
            self.data.reserve_exact(n, DATA_WHAT)?;
        }
        for slot in 0..self.size {
            self.reset_slot(slot)?;
        }
        Ok(())
    }

    fn maybe_compact(&mut self) {
        // An optional compaction that cannot allocate its new buffer is deferred (validate then allows
        // the garbage until one succeeds): the write it follows has succeeded.
        let filled = self.filled;
        let views = &mut self.views;
        self.data
            .maybe_compact(self.compact_min, DATA_WHAT, |r| relocate_views(views, filled, r));
    }

    /// Rewrite the data buffer with only the bytes views refer to, in slot order. O(size + live).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the new buffer cannot be allocated (nothing changes).
    pub fn compact(&mut self) -> Result<()> {
        self.compact_with_room(0, None)
    }

    /// [`ViewColumn::compact`], dropping the value of `skip` (its view becomes empty) and leaving room
    /// for `extra` more bytes. The new buffer is allocated before anything changes.
    fn compact_with_room(&mut self, extra: usize, skip: Option<usize>) -> Result<()> {
        let dropped = skip.and_then(|s| long_parts(&self.view(s))).map_or(0, |l| l.n);
        let filled = self.filled;
        let views = &mut self.views;
        self.data.compact(dropped, extra, DATA_WHAT, |r| {
            if let Some(s) = skip {
                let views: &mut [View] = bytemuck::cast_slice_mut(views.bytes_mut());
                if let Some(v) = views.get_mut(s) {
                    *v = inline_view(&[]);
                }
            }
            relocate_views(views, filled, r);
        })
    }

    /// Check every view: a valid tag, zero padding after inline values, large values longer than
    /// [`MEDIUM_MAX`], long values inside the buffer without overlapping, UTF-8 for a str column; live plus garbage
    /// equals the buffer length; garbage within the compaction bound. O(size + live).
    ///
    /// # Errors
    /// [`Error::Invariant`] naming the first broken one.
    pub fn validate(&self) -> Result<()> {
        let views: &[View] = bytemuck::cast_slice(self.views.bytes());
        if views.len() != self.size || self.filled > self.size || (!self.lazy && self.filled != self.size) {
            return Err(Error::Invariant("view buffer has the wrong size".into()));
        }
        if let Some(s) = (self.filled..self.size).find(|&s| views[s] != [0; VIEW_BYTES]) {
            return Err(Error::Invariant(format!(
                "slot {s} is not filled but its view is set"
            )));
        }
        let mut spans = Vec::new();
        for (slot, v) in views.iter().enumerate() {
            crate::interrupt::poll()?;
            match long_parts(v) {
                None => {
                    let len = v[0] as usize;
                    if len > INLINE_MAX || v[1 + len..].iter().any(|&b| b != 0) {
                        return Err(Error::Invariant(format!("slot {slot}: bad inline view {v:?}")));
                    }
                }
                Some(Long { prefix, off, n }) => {
                    if (v[0] == LARGE_TAG && n + prefix <= MEDIUM_MAX) || off + n > self.data.len() {
                        return Err(Error::Invariant(format!(
                            "slot {slot}: long view ({off}, {n}) out of bounds of {} bytes",
                            self.data.len()
                        )));
                    }
                    spans.push((off, n));
                }
            }
            if self.kind == VarKind::Str && std::str::from_utf8(&self.get_bytes(slot)?).is_err() {
                return Err(Error::Invariant(format!("slot {slot}: not UTF-8")));
            }
        }
        match self.data.check_spans(&mut spans, self.compact_min) {
            Ok(_) => Ok(()),
            Err(SpanFault::Overlap(off, _)) => {
                Err(Error::Invariant(format!("long view at {off} overlaps another")))
            }
            // Not reached: every view was checked against the buffer above.
            Err(SpanFault::Outside(off, n)) => Err(Error::Invariant(format!(
                "long view ({off}, {n}) out of bounds of {} bytes",
                self.data.len()
            ))),
            Err(SpanFault::Count(live)) => Err(Error::Invariant(format!(
                "{live} live + {} garbage bytes, data buffer holds {}",
                self.data.garbage(),
                self.data.len()
            ))),
            Err(SpanFault::NotCompacted(live)) => Err(Error::Invariant(format!(
                "{} garbage bytes were not compacted ({live} live)",
                self.data.garbage()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn col(size: usize, min: usize) -> ViewColumn {
        ViewColumn::try_new(VarKind::Str, size, b"", min).unwrap()
    }

    #[test]
    fn short_values_stay_in_the_view_and_long_ones_keep_a_prefix() {
        let mut c = col(4, 0);
        c.set(0, &Value::from("fifteen bytes!!")).unwrap();
        assert_eq!(c.data.len(), 0);
        c.set(1, &Value::from("sixteen bytes!!!")).unwrap();
        assert_eq!(c.data.len(), 16 - PREFIX_LEN);
        assert_eq!(c.get(0).unwrap(), Value::from("fifteen bytes!!"));
        assert_eq!(c.get(1).unwrap(), Value::from("sixteen bytes!!!"));
        assert_eq!(c.get(2).unwrap(), Value::from(""));
        assert!(c.eq_bytes(1, b"sixteen bytes!!!"));
        assert!(!c.eq_bytes(1, b"sixteen bytes!!?"));
        assert!(!c.eq_bytes(1, b"sixteen bytes!!!!"));
        c.validate().unwrap();
        // around the medium/large boundary: 254 bytes keep 11 in the view, 255 keep 7
        let data = c.data.len();
        let medium = "m".repeat(MEDIUM_MAX);
        let large = "l".repeat(MEDIUM_MAX + 1);
        c.set(2, &Value::Str(medium.clone())).unwrap();
        assert_eq!(c.data.len() - data, MEDIUM_MAX - PREFIX_LEN);
        c.set(3, &Value::Str(large.clone())).unwrap();
        assert_eq!(
            c.data.len() - data,
            MEDIUM_MAX - PREFIX_LEN + MEDIUM_MAX + 1 - LARGE_PREFIX_LEN
        );
        assert_eq!(
            (c.get(2).unwrap(), c.get(3).unwrap()),
            (Value::Str(medium.clone()), Value::Str(large.clone()))
        );
        assert!(c.eq_bytes(2, medium.as_bytes()) && c.eq_bytes(3, large.as_bytes()));
        assert!(!c.eq_bytes(3, medium.as_bytes()) && !c.eq_bytes(2, large.as_bytes()));
        c.validate().unwrap();
        // a large value rewritten as a medium one (in place) and back
        c.set(3, &Value::Str(medium.clone())).unwrap();
        assert_eq!(c.get(3).unwrap(), Value::Str(medium));
        c.set(3, &Value::Str(large.clone())).unwrap();
        assert_eq!(c.get(3).unwrap(), Value::Str(large));
        c.validate().unwrap();
    }

    #[test]
    fn check_room_takes_what_set_takes() {
        let mut c = col(2, 0);
        c.set(0, &Value::from("a long value, longer than fifteen bytes"))
            .unwrap();
        for v in ["", "short", "another long value of some length"] {
            assert!(c.check_room(0, v.as_bytes()).is_ok());
            assert!(c.check_room(1, v.as_bytes()).is_ok());
        }
        assert!(matches!(
            c.check_room(2, b"x"),
            Err(Error::IndexOutOfRange { .. })
        ));
    }

    #[test]
    fn overwrites_in_place_and_compacts_garbage() {
        let mut c = col(2, 8);
        c.set(0, &Value::from("a fairly long value here")).unwrap();
        let n = c.data.len();
        c.set(0, &Value::from("a shorter long value")).unwrap();
        assert_eq!(c.data.len(), n, "shrinking long value is written in place");
        assert_eq!(c.garbage(), 4);
        c.set(0, &Value::from("x")).unwrap();
        // 17 garbage > 8 and > 0 live: compacted.
        assert_eq!((c.garbage(), c.data.len()), (0, 0));
        c.validate().unwrap();
    }

    #[test]
    fn kinds_do_not_mix_and_failures_change_nothing() {
        let mut s = col(2, 0);
        s.set(0, &Value::from("keep")).unwrap();
        for bad in [Value::Bytes(b"x".to_vec()), Value::Int(1), Value::Null] {
            assert!(matches!(s.set(0, &bad), Err(Error::WrongType { .. })));
        }
        assert!(matches!(
            s.set(2, &Value::from("x")),
            Err(Error::IndexOutOfRange { .. })
        ));
        assert_eq!(s.get(0).unwrap(), Value::from("keep"));
        let mut b = ViewColumn::try_new(VarKind::Bytes, 1, b"", 0).unwrap();
        assert!(matches!(
            b.set(0, &Value::from("x")),
            Err(Error::WrongType { .. })
        ));
        b.set(0, &Value::Bytes(vec![0; 40])).unwrap();
        assert_eq!(b.get(0).unwrap(), Value::Bytes(vec![0; 40]));
    }

    #[test]
    fn long_default_fills_every_slot_and_validate_catches_corruption() {
        let mut c = ViewColumn::try_new(VarKind::Str, 3, "a default of twenty".as_bytes(), 0).unwrap();
        assert_eq!(c.get(2).unwrap(), Value::from("a default of twenty"));
        c.validate().unwrap();
        c.set(1, &Value::from("")).unwrap();
        c.reset_slot(1).unwrap();
        assert_eq!(c.get(1).unwrap(), Value::from("a default of twenty"));
        c.validate().unwrap();
        c.data.add_garbage_for_test(1);
        assert!(c.validate().is_err());
        c.data.add_garbage_for_test(-1);
        c.data.truncate_for_test(3);
        assert!(c.validate().is_err());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(usize, String),
        Delete(usize),
        ResetAll,
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-z]{1,15}",
            "[a-z]{16,40}",
            "[a-z]{250,260}",
            "\\PC{0,12}",
            "[a\\x00é😀]{0,30}",
        ]
    }

    fn op(size: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..size, value()).prop_map(|(s, v)| Op::Set(s, v)),
            2 => (0..size).prop_map(Op::Delete),
            1 => Just(Op::ResetAll),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Random sets, overwrites, deletes and resets against a `Vec<Option<String>>` model (`None` =
        /// deleted, reads as the default), with a tiny compaction minimum so compaction runs often; eager
        /// and lazily filled columns, with empty, inline and long defaults.
        #[test]
        fn view_column_matches_a_vec_model(
            min in 0usize..24,
            lazy in any::<bool>(),
            default in prop_oneof![Just(String::new()), "[a-z]{1,15}", "[a-z]{16,40}"],
            ops in proptest::collection::vec(op(6), 1..80),
        ) {
            let size = 6;
            let mut c = if lazy {
                ViewColumn::try_new_lazy(VarKind::Str, size, default.as_bytes(), min).unwrap()
            } else {
                ViewColumn::try_new(VarKind::Str, size, default.as_bytes(), min).unwrap()
            };
            let mut model: Vec<Option<String>> = vec![None; size];
            for op in ops {
                match op {
                    Op::Set(s, v) => {
                        c.set(s, &Value::Str(v.clone())).unwrap();
                        model[s] = Some(v);
                    }
                    Op::Delete(s) => {
                        c.reset_slot(s).unwrap();
                        model[s] = None;
                    }
                    Op::ResetAll => {
                        c.fill_default().unwrap();
                        model = vec![None; size];
                    }
                }
                // a lazy column fills only up to the highest slot written
                let top = model.iter().rposition(Option::is_some);
                if lazy && !default.is_empty() {
                    prop_assert!(c.filled() <= size);
                    prop_assert!(top.is_none_or(|t| t < c.filled()));
                } else {
                    prop_assert_eq!(c.filled(), size);
                }
                for (s, want) in model.iter().enumerate() {
                    let want = want.clone().unwrap_or_else(|| default.clone());
                    prop_assert_eq!(c.get(s).unwrap(), Value::Str(want.clone()));
                    prop_assert!(c.eq_bytes(s, want.as_bytes()));
                }
                prop_assert!(c.validate().is_ok(), "{:?}", c.validate());
                prop_assert!(c.garbage() <= c.live().max(min), "garbage {} live {}", c.garbage(), c.live());
            }
        }
    }
}
