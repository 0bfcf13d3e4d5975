//! Columns: one buffer per member per store.
//!
//! Every member kind has a column type of its own, and [`Column`] dispatches between them, so the store
//! layers above see one interface: read or write a slot as a [`Value`], reset a slot to the default, count
//! the bytes held. Fixed-width members (scalars, fixed arrays) are [`FixedColumn`]s.

mod buffer;
mod fixed;

pub use buffer::AlignedBuf;
pub use fixed::FixedColumn;

use crate::error::Result;
use crate::schema::Member;
use crate::value::Value;

/// The storage of one member in one store.
#[derive(Debug, Clone)]
pub enum Column {
    /// A scalar or fixed-length array member.
    Fixed(FixedColumn),
}

impl Column {
    /// A column of `size` slots for `member`, every slot holding the member's default. Allocates once.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] if the buffers cannot be allocated.
    pub fn try_new(member: &Member, size: usize) -> Result<Column> {
        Ok(Column::Fixed(FixedColumn::try_new(
            member.ty().clone(),
            size,
            member.default_value(),
        )?))
    }

    /// Number of slots.
    #[must_use]
    pub fn size(&self) -> usize {
        match self {
            Column::Fixed(c) => c.size(),
        }
    }

    /// The value at `slot`.
    ///
    /// # Errors
    /// [`crate::Error::IndexOutOfRange`] if `slot >= size()`.
    pub fn get(&self, slot: usize) -> Result<Value> {
        match self {
            Column::Fixed(c) => c.get(slot),
        }
    }

    /// Write `v` at `slot`, converting it to the member's type. Nothing changes on error.
    ///
    /// # Errors
    /// [`crate::Error::IndexOutOfRange`], and the conversion errors of [`crate::MemberType::canonical`].
    pub fn set(&mut self, slot: usize, v: &Value) -> Result<()> {
        match self {
            Column::Fixed(c) => c.set(slot, v),
        }
    }

    /// Check that `v` could be written to this column, without writing it.
    ///
    /// # Errors
    /// The conversion errors of [`crate::MemberType::canonical`].
    pub fn check(&self, v: &Value) -> Result<()> {
        match self {
            Column::Fixed(c) => c.ty().canonical(v).map(drop),
        }
    }

    /// Put the member's default back at `slot` (`default` is the member's canonical default).
    ///
    /// # Errors
    /// [`crate::Error::IndexOutOfRange`] if `slot >= size()`.
    pub fn reset_slot(&mut self, slot: usize, default: &Value) -> Result<()> {
        match self {
            Column::Fixed(c) => {
                debug_assert!(c.ty().canonical(default).is_ok());
                c.reset_slot(slot)
            }
        }
    }

    /// Put the default back in every slot, in place (the buffers stay where they are).
    pub fn reset_all(&mut self, default: &Value) {
        match self {
            Column::Fixed(c) => c.fill(default),
        }
    }

    /// Bytes held by the column's buffers.
    #[must_use]
    pub fn nbytes(&self) -> usize {
        match self {
            Column::Fixed(c) => c.nbytes(),
        }
    }

    /// The fixed-width column, if this is one.
    #[must_use]
    pub fn as_fixed(&self) -> Option<&FixedColumn> {
        match self {
            Column::Fixed(c) => Some(c),
        }
    }

    /// The fixed-width column, mutably, if this is one.
    #[must_use]
    pub fn as_fixed_mut(&mut self) -> Option<&mut FixedColumn> {
        match self {
            Column::Fixed(c) => Some(c),
        }
    }
}
