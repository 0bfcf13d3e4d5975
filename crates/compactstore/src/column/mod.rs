//! Columns: one buffer per member per store.
//!
//! Every member kind has a column type of its own, and [`Column`] dispatches between them, so the store
//! layers above see one interface: read or write a slot as a [`Value`], reset a slot to the default, count
//! the bytes held, check invariants. Fixed-width members (scalars, fixed arrays) are [`FixedColumn`]s;
//! str/bytes members are [`ViewColumn`]s; interned members are [`InternedColumn`]s sharing one dictionary
//! per store; optional members are [`OptionalColumn`]s (a validity bitmap around one of the others), except
//! `Optional(Interned(..))`, an [`InternedColumn`] with a reserved `None` code.

mod arena;
mod buffer;
mod fixed;
mod interned;
mod object;
mod validity;
mod view;

pub(crate) use arena::{ByteArena, Relocator, SpanFault, ARENA_MAX};
pub use buffer::{AlignedBuf, Backing};
pub use fixed::FixedColumn;
pub use interned::{Dictionary, InternedColumn, SharedDictionary, DEFAULT_CODE, NONE_CODE};
pub use object::{object_ref, ObjectColumn};

/// `IndexOutOfRange` unless `slot < size`: the bounds check every column's slot access starts with.
fn check_slot(slot: usize, size: usize) -> Result<()> {
    if slot < size {
        Ok(())
    } else {
        Err(Error::IndexOutOfRange {
            index: slot as i64,
            len: size,
        })
    }
}
pub use validity::OptionalColumn;
pub use view::{
    VarKind, ViewColumn, DEFAULT_VIEW_COMPACT_MIN, INLINE_MAX, LARGE_PREFIX_LEN, MEDIUM_MAX, PREFIX_LEN,
    VIEW_BYTES,
};

use crate::error::{Error, Result};
use crate::schema::{Member, MemberType};
use crate::value::{Scalar, Value};

/// The storage of one member in one store.
#[derive(Debug, Clone)]
pub enum Column {
    /// A scalar or fixed-length array member.
    Fixed(FixedColumn),
    /// A str or bytes member.
    View(ViewColumn),
    /// An interned str/bytes member, optional or not.
    Interned(InternedColumn),
    /// Any other optional member.
    Optional(OptionalColumn),
    /// An object member.
    Object(ObjectColumn),
}

impl Column {
    /// A column of `size` slots for `member`, every slot holding the member's default. Allocates once.
    /// An interned member gets a new dictionary.
    ///
    /// # Errors
    /// [`crate::Error::OutOfMemory`] if the buffers cannot be allocated.
    pub fn try_new(member: &Member, size: usize) -> Result<Column> {
        Column::try_new_sharing(member, size, None, false)
    }

    /// As [`Column::try_new`], sharing the dictionary of `sibling` (the same member's column in another
    /// chunk of the same store) if this is an interned member. With `lazy`, fixed-width and str/bytes
    /// columns fill their default into a slot only when it is first written or reset (see
    /// [`FixedColumn`]'s docs): a dynamic or keyed store's chunks, whose memory is never handed out raw
    /// before it is filled.
    ///
    /// # Errors
    /// As [`Column::try_new`].
    pub fn try_new_sharing(
        member: &Member,
        size: usize,
        sibling: Option<&Column>,
        lazy: bool,
    ) -> Result<Column> {
        let compact_min = member
            .compact_min()
            .unwrap_or_else(|| DEFAULT_VIEW_COMPACT_MIN.max(size));
        build(
            member.ty(),
            size,
            member.default_value(),
            compact_min,
            sibling,
            lazy,
        )
    }

    /// A copy in new buffers (an interned member's with its own deep copy of the dictionary; an object
    /// member's sharing the objects). O(size + data).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated.
    pub fn try_clone(&self) -> Result<Column> {
        Ok(match self {
            Column::Fixed(c) => Column::Fixed(c.try_clone()?),
            Column::View(c) => Column::View(c.try_clone()?),
            Column::Interned(c) => Column::Interned(c.try_clone()?),
            Column::Optional(c) => Column::Optional(c.try_clone()?),
            Column::Object(c) => Column::Object(c.try_clone()?),
        })
    }

    /// As [`Column::try_clone`], an interned member sharing the dictionary of `sibling` (the copy of
    /// the same member's column in another chunk of the same store) instead of copying its own.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated.
    pub(crate) fn try_clone_sharing(&self, sibling: &Column) -> Result<Column> {
        match (self, sibling.as_interned()) {
            (Column::Interned(c), Some(s)) => Ok(Column::Interned(
                c.try_clone_with(std::sync::Arc::clone(s.dictionary()))?,
            )),
            _ => self.try_clone(),
        }
    }

    /// Number of slots.
    #[must_use]
    pub fn size(&self) -> usize {
        match self {
            Column::Fixed(c) => c.size(),
            Column::View(c) => c.size(),
            Column::Interned(c) => c.size(),
            Column::Optional(c) => c.size(),
            Column::Object(c) => c.size(),
        }
    }

    /// The value at `slot`.
    ///
    /// # Errors
    /// [`crate::Error::IndexOutOfRange`] if `slot >= size()`.
    pub fn get(&self, slot: usize) -> Result<Value> {
        match self {
            Column::Fixed(c) => c.get(slot),
            Column::View(c) => c.get(slot),
            Column::Interned(c) => c.get(slot),
            Column::Optional(c) => c.get(slot),
            Column::Object(c) => c.get(slot),
        }
    }

    /// Write `v` at `slot`, converting it to the member's type. Nothing changes on error.
    ///
    /// # Errors
    /// [`crate::Error::IndexOutOfRange`], and the conversion errors of [`crate::MemberType::canonical`].
    pub fn set(&mut self, slot: usize, v: &Value) -> Result<()> {
        match self {
            Column::Fixed(c) => c.set(slot, v),
            Column::View(c) => c.set(slot, v),
            Column::Interned(c) => c.set(slot, v),
            Column::Optional(c) => c.set(slot, v),
            Column::Object(c) => c.set(slot, v),
        }
    }

    /// Write the typed scalar `x` at `slot` (see [`FixedColumn::set_scalar`]). Nothing changes on error.
    ///
    /// # Errors
    /// [`crate::Error::WrongType`] unless this is a scalar member of `x`'s dtype,
    /// [`crate::Error::IndexOutOfRange`] if `slot >= size()`.
    #[inline]
    pub fn set_scalar(&mut self, slot: usize, x: Scalar) -> Result<()> {
        match self {
            Column::Fixed(c) => c.set_scalar(slot, x),
            _ => Err(self.not_scalar(x)),
        }
    }

    /// [`Column::set_scalar`] of a scalar and slot the caller checked ([`Column::check_scalar`], the
    /// slot against `size()`): writes nothing to any other column kind.
    #[inline]
    pub(crate) fn put_scalar(&mut self, slot: usize, x: Scalar) {
        if let Column::Fixed(c) = self {
            c.put_scalar(slot, x);
        }
    }

    /// Check that `x` could be written by [`Column::set_scalar`], without writing it.
    ///
    /// # Errors
    /// [`crate::Error::WrongType`] unless this is a scalar member of `x`'s dtype.
    #[inline]
    pub fn check_scalar(&self, x: Scalar) -> Result<()> {
        match self {
            Column::Fixed(c) => c.check_scalar(x),
            _ => Err(self.not_scalar(x)),
        }
    }

    #[cold]
    #[inline(never)]
    fn not_scalar(&self, x: Scalar) -> crate::Error {
        crate::Error::WrongType {
            expected: "numeric scalar member".into(),
            got: x.dtype().to_string(),
        }
    }

    /// Check that `v` could be written to this column, without writing it.
    ///
    /// # Errors
    /// The conversion errors of [`crate::MemberType::canonical`].
    pub fn check(&self, v: &Value) -> Result<()> {
        match self {
            Column::Fixed(c) => c.ty().check(v),
            Column::View(c) => c.kind().bytes_of(v).map(drop),
            Column::Interned(c) => c.code_of(v).map(drop),
            Column::Optional(c) => match v {
                Value::Null => Ok(()),
                v => c.values().check(v),
            },
            Column::Object(_) => MemberType::Object.check(v),
        }
    }

    /// Put the member's default back at `slot` (`default` is the member's canonical default), releasing
    /// the old value's data-buffer bytes or dictionary reference.
    ///
    /// # Errors
    /// [`crate::Error::IndexOutOfRange`] if `slot >= size()`.
    pub fn reset_slot(&mut self, slot: usize, default: &Value) -> Result<()> {
        match self {
            Column::Fixed(c) => {
                debug_assert!(c.ty().canonical(default).is_ok());
                c.reset_slot(slot)
            }
            Column::View(c) => c.reset_slot(slot),
            Column::Interned(c) => c.reset_slot(slot),
            Column::Optional(c) => c.set(slot, default),
            Column::Object(c) => c.reset_slot(slot),
        }
    }

    /// Make room for writing `v` at `slot` — an interned member's codes may need to widen (and its
    /// dictionary to grow); a str/bytes value must fit its chunk's data buffer, which grows ahead — so that
    /// a following write of the checked `v` does not fail. Changes no value. (A new interned value's own
    /// bytes are still allocated by the write.)
    ///
    /// # Errors
    /// As [`InternedColumn::reserve_for`] and [`ViewColumn::reserve_room`].
    pub fn reserve_for(&mut self, slot: usize, v: &Value) -> Result<()> {
        match (self, v) {
            (Column::Interned(c), v) => c.reserve_for(v),
            (Column::View(c), Value::Str(s)) => c.reserve_room(slot, s.as_bytes()),
            (Column::View(c), Value::Bytes(b)) => c.reserve_room(slot, b),
            (Column::Optional(c), v) if !matches!(v, Value::Null) => c.values_mut().reserve_for(slot, v),
            _ => Ok(()),
        }
    }

    /// The data-buffer bytes writing `v` at `slot` may append (str/bytes members, optional or not; 0 for
    /// the others), for [`Column::reserve_data`].
    #[must_use]
    pub fn append_bytes(&self, slot: usize, v: &Value) -> usize {
        match (self, v) {
            (Column::View(c), Value::Str(s)) => c.append_bytes(slot, s.as_bytes()),
            (Column::View(c), Value::Bytes(b)) => c.append_bytes(slot, b),
            (Column::Optional(c), v) => c.values().append_bytes(slot, v),
            _ => 0,
        }
    }

    /// Grow a str/bytes member's data buffer for `extra` more bytes (nothing for the others).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the room cannot be allocated.
    pub fn reserve_data(&mut self, extra: usize) -> Result<()> {
        match self {
            Column::View(c) => c.reserve_data(extra),
            Column::Optional(c) => c.values_mut().reserve_data(extra),
            _ => Ok(()),
        }
    }

    /// Put the default back in every slot, in place (the slot buffers stay where they are; data buffers
    /// are dropped and dictionary references released).
    pub fn reset_all(&mut self, default: &Value) {
        match self {
            Column::Fixed(c) => c.reset_all(),
            Column::View(c) => {
                // A default that fitted when the column was made fits again.
                let _ = c.fill_default();
            }
            Column::Interned(c) => c.reset_all(),
            Column::Optional(c) => c.reset_all(default),
            Column::Object(c) => c.reset_all(),
        }
    }

    /// Release what the column holds in state shared with other chunks (dictionary references), for a
    /// chunk about to be dropped. O(size) for interned members, O(1) otherwise.
    pub fn release_shared(&mut self) {
        if let Column::Interned(c) = self {
            c.release_all();
        }
    }

    /// Bytes held by the column's own buffers (views and data buffers, codes, bitmaps). A shared
    /// dictionary is not counted here: see [`Column::dictionary_nbytes`].
    #[must_use]
    pub fn nbytes(&self) -> usize {
        match self {
            Column::Fixed(c) => c.nbytes(),
            Column::View(c) => c.nbytes(),
            Column::Interned(c) => c.nbytes(),
            Column::Optional(c) => c.nbytes(),
            Column::Object(c) => c.nbytes(),
        }
    }

    /// Bytes held by the dictionary of an interned member (0 for others).
    #[must_use]
    pub fn dictionary_nbytes(&self) -> usize {
        match self {
            Column::Interned(c) => c.dictionary_nbytes(),
            _ => 0,
        }
    }

    /// Check the column's own invariants (views in bounds, garbage accounting, `None` slots at zero). A
    /// dictionary's refcounts span every chunk and are checked by the store.
    ///
    /// # Errors
    /// [`Error::Invariant`] naming the first broken one.
    pub fn validate_local(&self) -> Result<()> {
        match self {
            Column::Fixed(c) if c.filled() > c.size() || (c.is_eager() && c.filled() != c.size()) => {
                Err(Error::Invariant("filled mark beyond the size".into()))
            }
            Column::Fixed(_) | Column::Object(_) => Ok(()),
            Column::View(c) => c.validate(),
            Column::Interned(c) => c.count_codes(&mut Vec::new()),
            Column::Optional(c) => c.validate(),
        }
    }

    /// The value of slot `slot` of a scalar numeric member as a typed [`Scalar`] (see
    /// [`FixedColumn::scalar`]); `None` for any other column kind, an array member or a slot out of range.
    #[inline]
    #[must_use]
    pub fn scalar(&self, slot: usize) -> Option<Scalar> {
        match self {
            Column::Fixed(c) => c.scalar(slot),
            _ => None,
        }
    }

    /// The fixed-width column, if this is one (a numeric member).
    #[inline]
    #[must_use]
    pub fn as_fixed(&self) -> Option<&FixedColumn> {
        match self {
            Column::Fixed(c) => Some(c),
            _ => None,
        }
    }

    /// The fixed-width column, mutably, if this is one.
    #[must_use]
    pub fn as_fixed_mut(&mut self) -> Option<&mut FixedColumn> {
        match self {
            Column::Fixed(c) => Some(c),
            _ => None,
        }
    }

    /// The typed values column: the fixed-width column of a numeric member, or of an optional numeric
    /// member (whose `None` slots hold zero there).
    #[must_use]
    pub fn values_fixed(&self) -> Option<&FixedColumn> {
        match self {
            Column::Fixed(c) => Some(c),
            Column::Optional(c) => c.values_fixed(),
            _ => None,
        }
    }

    /// The view column, if this is a str/bytes member.
    #[must_use]
    pub fn as_view(&self) -> Option<&ViewColumn> {
        match self {
            Column::View(c) => Some(c),
            _ => None,
        }
    }

    /// The interned column, if this is an interned member (optional or not).
    #[must_use]
    pub fn as_interned(&self) -> Option<&InternedColumn> {
        match self {
            Column::Interned(c) => Some(c),
            _ => None,
        }
    }

    /// The object column, if this is an object member.
    #[must_use]
    pub fn as_object(&self) -> Option<&ObjectColumn> {
        match self {
            Column::Object(c) => Some(c),
            _ => None,
        }
    }

    /// The object column, mutably, if this is an object member.
    #[must_use]
    pub fn as_object_mut(&mut self) -> Option<&mut ObjectColumn> {
        match self {
            Column::Object(c) => Some(c),
            _ => None,
        }
    }

    /// The optional column, if this is an optional (non-interned) member.
    #[must_use]
    pub fn as_optional(&self) -> Option<&OptionalColumn> {
        match self {
            Column::Optional(c) => Some(c),
            _ => None,
        }
    }
}

impl Column {
    /// Save the column's fields and buffers (a tag byte first: 1 fixed, 2 str/bytes, 3 interned,
    /// 4 optional, 5 object). An object column is written (its tag only, none of its objects) only into
    /// an image that carries objects (a pickle image); a file cannot hold it.
    pub(crate) fn save<'a>(&'a self, w: &mut crate::file::format::Writer<'a>) -> Result<()> {
        match self {
            Column::Fixed(c) => {
                w.u8(1);
                c.save(w);
            }
            Column::View(c) => {
                w.u8(2);
                c.save(w);
            }
            Column::Interned(c) => {
                w.u8(3);
                c.save(w);
            }
            Column::Optional(c) => {
                w.u8(4);
                c.save(w)?;
            }
            Column::Object(_) if w.objects => w.u8(5),
            Column::Object(_) => {
                return Err(Error::WrongType {
                    expected: "members a file can hold".into(),
                    got: "object member".into(),
                })
            }
        }
        Ok(())
    }

    /// A column of `size` slots of type `ty` (default `default`) from a loaded file; an interned
    /// member's shares `dict`.
    pub(crate) fn load(
        ty: &MemberType,
        size: usize,
        default: &Value,
        dict: Option<&SharedDictionary>,
        r: &mut crate::file::format::Reader<'_>,
    ) -> Result<Column> {
        let tag = r.u8()?;
        let bad = || Error::Format(format!("a column tagged {tag} for a member of type {ty}"));
        Ok(match (tag, ty) {
            (1, MemberType::Scalar(_) | MemberType::Array(..)) => {
                let bytes = size
                    .checked_mul(ty.entry_bytes())
                    .ok_or_else(|| Error::Format("too many slots".into()))?;
                let buf = r.buf(bytes, "a fixed-width column")?;
                Column::Fixed(FixedColumn::load(ty.clone(), size, default, buf)?)
            }
            (2, MemberType::Str | MemberType::Bytes) => {
                let kind = VarKind::of(ty).ok_or_else(bad)?;
                Column::View(ViewColumn::load(kind, size, kind.bytes_of(default)?, r)?)
            }
            (3, MemberType::Interned(t)) => {
                let kind = VarKind::of(t).ok_or_else(bad)?;
                let dict = dict.ok_or_else(bad)?;
                Column::Interned(InternedColumn::load(
                    kind,
                    false,
                    size,
                    default,
                    std::sync::Arc::clone(dict),
                    r,
                )?)
            }
            (3, MemberType::Optional(t)) if matches!(&**t, MemberType::Interned(_)) => {
                let kind = VarKind::of(t).ok_or_else(bad)?;
                let dict = dict.ok_or_else(bad)?;
                Column::Interned(InternedColumn::load(
                    kind,
                    true,
                    size,
                    default,
                    std::sync::Arc::clone(dict),
                    r,
                )?)
            }
            (4, MemberType::Optional(inner))
                if !matches!(
                    &**inner,
                    MemberType::Interned(_) | MemberType::Optional(_) | MemberType::Object
                ) =>
            {
                let words = size.div_ceil(64);
                let valid = r.buf(words * 8, "a validity bitmap")?;
                let zero = inner.zero();
                let fill = if matches!(default, Value::Null) {
                    &zero
                } else {
                    default
                };
                let values = Column::load(inner, size, fill, None, r)?;
                Column::Optional(OptionalColumn::load(valid, values, zero)?)
            }
            (5, MemberType::Object) if r.objects => Column::Object(ObjectColumn::try_new(size)?),
            _ => return Err(bad()),
        })
    }
}

/// A column of type `ty` with `default` in every slot (filled lazily with `lazy`).
fn build(
    ty: &MemberType,
    size: usize,
    default: &Value,
    compact_min: usize,
    sibling: Option<&Column>,
    lazy: bool,
) -> Result<Column> {
    let shared = || {
        sibling
            .and_then(Column::as_interned)
            .map(|c| std::sync::Arc::clone(c.dictionary()))
    };
    let bad = || Error::InvalidArgument(format!("member type {ty} cannot be stored"));
    Ok(match ty {
        MemberType::Object => Column::Object(ObjectColumn::try_new(size)?),
        MemberType::Scalar(_) | MemberType::Array(..) => {
            if lazy {
                Column::Fixed(FixedColumn::try_new_lazy(ty.clone(), size, default)?)
            } else {
                Column::Fixed(FixedColumn::try_new(ty.clone(), size, default)?)
            }
        }
        MemberType::Str | MemberType::Bytes => {
            let kind = VarKind::of(ty).ok_or_else(bad)?;
            let v = kind.bytes_of(default)?;
            if lazy {
                Column::View(ViewColumn::try_new_lazy(kind, size, v, compact_min)?)
            } else {
                Column::View(ViewColumn::try_new(kind, size, v, compact_min)?)
            }
        }
        MemberType::Interned(t) => {
            let kind = VarKind::of(t).ok_or_else(bad)?;
            Column::Interned(InternedColumn::try_new(kind, false, size, default, shared())?)
        }
        MemberType::Optional(t) => match &**t {
            MemberType::Interned(inner) => {
                let kind = VarKind::of(inner).ok_or_else(bad)?;
                Column::Interned(InternedColumn::try_new(kind, true, size, default, shared())?)
            }
            MemberType::Optional(_) | MemberType::Object => return Err(bad()),
            inner => {
                let zero = inner.zero();
                let fill = if matches!(default, Value::Null) {
                    &zero
                } else {
                    default
                };
                let values = build(inner, size, fill, compact_min, None, lazy)?;
                Column::Optional(OptionalColumn::try_new(values, zero, default)?)
            }
        },
    })
}
