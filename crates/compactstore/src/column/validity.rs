//! `OptionalColumn`: any non-interned column plus a validity bitmap in a buffer of its own.
//!
//! ```text
//!   valid:  [ u64 word 0: bit o = slot o holds a value | word 1 | ... ]   (1 bit per slot)
//!   values: the inner member's column (fixed or view), untouched by the bitmap
//! ```
//!
//! A `None` slot's bit is clear and its values-column slot holds the inner type's *zero* (`0`, `false`,
//! zeros, `""`, `b""`), never the member's default: the typed `&[T]` column of an `Optional(Scalar(..))` or
//! `Optional(Array(..))` member (`StaticStore::column_slice`) reads 0 where the entry is `None`, and a
//! `None` str slot holds no data-buffer bytes. `Optional(Interned(..))` members do not use this column:
//! they reserve a code for `None` (see [`super::InternedColumn`]).

use super::{AlignedBuf, Column, FixedColumn};
use crate::error::{Error, Result};
use crate::value::Value;

/// An optional member's storage in one chunk.
#[derive(Debug, Clone)]
pub struct OptionalColumn {
    values: Box<Column>,
    valid: AlignedBuf,
    /// The inner type's zero, held by `None` slots.
    zero: Value,
}

impl OptionalColumn {
    /// Wrap `values` (every slot already holding `default`, or the inner zero if `default` is `Null`) with
    /// a bitmap: all set if `default` is a value, all clear (no page touched) if it is `Null`.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the bitmap cannot be allocated.
    pub fn try_new(values: Column, zero: Value, default: &Value) -> Result<OptionalColumn> {
        let words = values.size().div_ceil(64);
        let mut c = OptionalColumn {
            valid: AlignedBuf::try_zeroed(words * 8)?,
            values: Box::new(values),
            zero,
        };
        c.fill_bits(!matches!(default, Value::Null));
        Ok(c)
    }

    /// A copy in new buffers. O(size).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated.
    pub fn try_clone(&self) -> Result<OptionalColumn> {
        Ok(OptionalColumn {
            values: Box::new(self.values.try_clone()?),
            valid: self.valid.try_clone()?,
            zero: self.zero.clone(),
        })
    }

    /// Save the bitmap, then the values column.
    pub(crate) fn save<'a>(&'a self, w: &mut crate::file::format::Writer<'a>) -> Result<()> {
        w.buf(crate::file::format::Piece::Borrowed(self.valid.bytes()));
        self.values.save(w)
    }

    /// An optional column over a loaded bitmap and values column.
    pub(crate) fn load(valid: AlignedBuf, values: Column, zero: Value) -> Result<OptionalColumn> {
        if valid.len() != values.size().div_ceil(64) * 8 {
            return Err(Error::Format("a validity bitmap of the wrong size".into()));
        }
        Ok(OptionalColumn {
            values: Box::new(values),
            valid,
            zero,
        })
    }

    fn bits(&self) -> &[u64] {
        bytemuck::cast_slice(self.valid.bytes())
    }

    fn bits_mut(&mut self) -> &mut [u64] {
        bytemuck::cast_slice_mut(self.valid.bytes_mut())
    }

    fn fill_bits(&mut self, on: bool) {
        let size = self.values.size();
        let bits = self.bits_mut();
        if !on {
            bits.fill(0);
            return;
        }
        bits.fill(u64::MAX);
        if size % 64 != 0 {
            if let Some(last) = bits.last_mut() {
                *last = (1u64 << (size % 64)) - 1;
            }
        }
    }

    /// Whether `slot` holds a value (`false` for `None` or out of range).
    #[must_use]
    pub fn is_valid(&self, slot: usize) -> bool {
        slot < self.values.size()
            && self
                .bits()
                .get(slot / 64)
                .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    fn set_bit(&mut self, slot: usize, on: bool) {
        if let Some(w) = self.bits_mut().get_mut(slot / 64) {
            if on {
                *w |= 1 << (slot % 64);
            } else {
                *w &= !(1 << (slot % 64));
            }
        }
    }

    /// The values column (a `None` slot holds the inner zero there).
    #[must_use]
    pub fn values(&self) -> &Column {
        &self.values
    }

    /// The values column, mutably (for [`Column::reserve_for`]: nothing that changes a value).
    pub(crate) fn values_mut(&mut self) -> &mut Column {
        &mut self.values
    }

    /// The values column as a fixed-width column, if the inner member is numeric.
    #[must_use]
    pub fn values_fixed(&self) -> Option<&FixedColumn> {
        self.values.as_fixed()
    }

    /// Number of slots.
    #[must_use]
    pub fn size(&self) -> usize {
        self.values.size()
    }

    /// Bytes held: the values column and the bitmap.
    #[must_use]
    pub fn nbytes(&self) -> usize {
        self.values.nbytes() + self.valid.capacity_bytes()
    }

    /// The value at `slot`, or `Value::Null`.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot >= size()`.
    pub fn get(&self, slot: usize) -> Result<Value> {
        if slot >= self.size() {
            return Err(Error::IndexOutOfRange {
                index: slot as i64,
                len: self.size(),
            });
        }
        if self.is_valid(slot) {
            self.values.get(slot)
        } else {
            Ok(Value::Null)
        }
    }

    /// Write `v` (a value of the inner type, or `Null`) at `slot`. Nothing changes on error.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`], and the errors of the inner column's `set`.
    pub fn set(&mut self, slot: usize, v: &Value) -> Result<()> {
        if matches!(v, Value::Null) {
            let zero = std::mem::replace(&mut self.zero, Value::Null);
            let r = self.values.set(slot, &zero);
            self.zero = zero;
            r?;
            self.set_bit(slot, false);
        } else {
            self.values.set(slot, v)?;
            self.set_bit(slot, true);
        }
        Ok(())
    }

    /// Put `default` (the member's canonical default) everywhere. O(size).
    pub fn reset_all(&mut self, default: &Value) {
        let fill = if matches!(default, Value::Null) {
            &self.zero
        } else {
            default
        };
        let fill = fill.clone();
        self.values.reset_all(&fill);
        self.fill_bits(!matches!(default, Value::Null));
    }

    /// Check the inner column, and that every `None` slot holds the inner zero and no bit is set beyond
    /// the size.
    ///
    /// # Errors
    /// [`Error::Invariant`] naming the first broken one.
    pub fn validate(&self) -> Result<()> {
        self.values.validate_local()?;
        let size = self.size();
        if self.bits().len() != size.div_ceil(64) {
            return Err(Error::Invariant("validity bitmap has the wrong size".into()));
        }
        if size % 64 != 0 && self.bits().last().is_some_and(|w| w >> (size % 64) != 0) {
            return Err(Error::Invariant("validity bit set beyond the size".into()));
        }
        for slot in (0..size).filter(|&s| !self.is_valid(s)) {
            if self.values.get(slot)? != self.zero {
                return Err(Error::Invariant(format!("None slot {slot} does not hold zero")));
            }
        }
        Ok(())
    }
}
