//! `FixedColumn`: scalars or fixed-length arrays, one aligned buffer, viewed as `&[T]`.

use super::AlignedBuf;
use crate::error::{Error, Result};
use crate::schema::{Dtype, MemberType};
use crate::value::{to_bool, to_f32, to_f64, to_int, Element, Scalar, Value};

/// A fixed-width member's storage: `size * width` scalars of one dtype, slot-major
/// (slot `i`'s elements are `i*width .. (i+1)*width`).
///
/// **Defaults, eager or lazy.** A column made by [`FixedColumn::try_new`] writes a non-zero default into
/// every slot up front: its memory always holds every slot's value, which a zero-copy view of it (numpy's
/// `np.asarray(m)` of a static store) exposes. A column made by [`FixedColumn::try_new_lazy`] (the chunks
/// of dynamic and keyed stores, whose numeric members Python reads through copies) keeps a high-water mark
/// instead, [`FixedColumn::filled`]: slots below it hold their values in memory, slots at and above it
/// have never been written, read as the default, and their pages stay untouched (a 65,536-slot chunk of an
/// f64 member with default 1.5 costs one page, not 512 KiB, until its slots are used). A write or a
/// reset of slot `i` first fills the default into the slots from the mark up to `i` (with lowest-free-first
/// allocation that is only `i` itself) and moves the mark past `i`. Raw access follows the mark: the
/// typed slices ([`FixedColumn::as_slice`], [`FixedColumn::bytes`]) cover the filled prefix only, and
/// mutable raw access ([`FixedColumn::as_mut_slice`], [`FixedColumn::bytes_mut`]) fills every slot and
/// makes the column eager for good, since its memory may then be exposed. A zero default needs no
/// filling: such a column is always filled.
#[derive(Debug, Clone)]
pub struct FixedColumn {
    ty: MemberType,
    dtype: Dtype,
    width: usize,
    size: usize,
    buf: AlignedBuf,
    /// One slot's default, as stored bytes (word-aligned, so it reads as `&[T]`): resetting a slot is one
    /// copy, no conversion.
    default: AlignedBuf,
    /// Slots `0..filled` hold their values in memory; the others read as the default, untouched.
    filled: usize,
    /// Whether the column keeps every slot filled (`filled == size` always).
    eager: bool,
}

/// Run `$body` with `$T` bound to the storage type of dtype `$d` (`u8` for bool).
macro_rules! with_type {
    ($d:expr, $T:ident => $body:expr) => {
        match $d {
            Dtype::Bool | Dtype::U8 => {
                type $T = u8;
                $body
            }
            Dtype::I8 => {
                type $T = i8;
                $body
            }
            Dtype::I16 => {
                type $T = i16;
                $body
            }
            Dtype::I32 => {
                type $T = i32;
                $body
            }
            Dtype::I64 => {
                type $T = i64;
                $body
            }
            Dtype::U16 => {
                type $T = u16;
                $body
            }
            Dtype::U32 => {
                type $T = u32;
                $body
            }
            Dtype::U64 => {
                type $T = u64;
                $body
            }
            Dtype::F32 => {
                type $T = f32;
                $body
            }
            Dtype::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}

impl FixedColumn {
    /// A column of `size` slots of type `ty`, each holding `default` (the member's canonical default).
    /// Allocates once; an all-zero default touches no page.
    ///
    /// # Panics
    /// If the allocation fails; [`FixedColumn::try_new`] is the fallible twin.
    #[must_use]
    #[track_caller]
    pub fn new(ty: MemberType, size: usize, default: &Value) -> FixedColumn {
        match FixedColumn::try_new(ty, size, default) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    /// As [`FixedColumn::new`], returning an error instead of panicking when the buffer cannot be allocated.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the buffer cannot be allocated; [`Error::WrongType`] if `ty` is not a
    /// numeric member type.
    pub fn try_new(ty: MemberType, size: usize, default: &Value) -> Result<FixedColumn> {
        let mut c = FixedColumn::try_new_lazy(ty, size, default)?;
        c.materialize();
        Ok(c)
    }

    /// A column of `size` slots of type `ty` that fills its default (the member's canonical default) into
    /// a slot only when the slot is first written or reset: until then every slot reads as the default and
    /// no page is touched (see the type's docs). Allocates once.
    ///
    /// # Errors
    /// As [`FixedColumn::try_new`].
    pub fn try_new_lazy(ty: MemberType, size: usize, default: &Value) -> Result<FixedColumn> {
        let (Some(dtype), Some(width)) = (ty.dtype(), ty.width()) else {
            return Err(Error::WrongType {
                expected: "numeric member type".into(),
                got: ty.to_string(),
            });
        };
        let bytes = size
            .checked_mul(ty.entry_bytes())
            .ok_or_else(|| Error::out_of_memory(usize::MAX, "a column buffer"))?;
        let mut one = FixedColumn {
            ty: ty.clone(),
            dtype,
            width,
            size: 1,
            buf: AlignedBuf::try_zeroed(ty.entry_bytes())?,
            default: AlignedBuf::try_zeroed(0)?,
            filled: 1,
            eager: true,
        };
        one.set(0, default)?;
        let zero = is_zero(default);
        Ok(FixedColumn {
            ty,
            dtype,
            width,
            size,
            buf: AlignedBuf::try_zeroed(bytes)?,
            default: one.buf,
            filled: if zero { size } else { 0 },
            eager: false,
        })
    }

    /// A copy in new buffers. O(size).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] if the copy cannot be allocated.
    pub fn try_clone(&self) -> Result<FixedColumn> {
        Ok(FixedColumn {
            ty: self.ty.clone(),
            dtype: self.dtype,
            width: self.width,
            size: self.size,
            buf: self.buf.try_clone()?,
            default: self.default.try_clone()?,
            filled: self.filled,
            eager: self.eager,
        })
    }

    /// Save the column: its buffer with every slot filled (a lazy column's unfilled slots written as
    /// the default), so that a loaded column is filled and a mapped one can be written in place.
    pub(crate) fn save<'a>(&'a self, w: &mut crate::file::format::Writer<'a>) {
        let n = self.default.len();
        let filled = &self.buf.bytes()[..self.filled * n];
        if self.filled == self.size {
            w.buf(crate::file::format::Piece::Borrowed(filled));
        } else {
            w.buf(crate::file::format::Piece::Fill {
                prefix: filled,
                pattern: self.default.bytes(),
                count: self.size - self.filled,
            });
        }
    }

    /// A column of `size` filled slots over `buf` (a loaded file's bytes), with `default` for resets.
    pub(crate) fn load(ty: MemberType, size: usize, default: &Value, buf: AlignedBuf) -> Result<FixedColumn> {
        let mut c = FixedColumn::try_new_lazy(ty, 0, default)?;
        if Some(buf.len()) != size.checked_mul(c.default.len()) {
            return Err(Error::Format(format!(
                "a column of {} bytes for {size} slots of {} bytes",
                buf.len(),
                c.default.len()
            )));
        }
        c.buf = buf;
        c.size = size;
        c.filled = size;
        c.eager = true;
        Ok(c)
    }

    /// Slots `0..filled()` hold their values in memory; the others have never been written and read as
    /// the default (always `size()` for an eager column or a zero default). O(1).
    #[must_use]
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// Whether the column keeps every slot filled ([`FixedColumn::try_new`], or after mutable raw access).
    #[must_use]
    pub fn is_eager(&self) -> bool {
        self.eager
    }

    /// Fill the default into slots `filled()..=slot` (nothing if `slot` is below the mark). O(slots
    /// filled).
    #[inline]
    fn fill_to(&mut self, slot: usize) {
        if slot >= self.filled {
            self.fill_from_mark(slot);
        }
    }

    /// [`FixedColumn::fill_to`]'s work, out of line: the hot paths only compare with the mark.
    #[cold]
    #[inline(never)]
    fn fill_from_mark(&mut self, slot: usize) {
        let n = self.default.len();
        let end = (slot + 1).min(self.size);
        let (dst, src) = (self.buf.bytes_mut(), self.default.bytes());
        for s in self.filled..end {
            // Invariant: s < size, so (s + 1) * n <= buf.len().
            put_bytes(&mut dst[s * n..(s + 1) * n], src);
        }
        self.filled = end;
    }

    /// Fill every slot and keep the column filled from now on: its memory may be handed out raw.
    /// O(size) the first time.
    pub fn materialize(&mut self) {
        if self.size > 0 {
            self.fill_to(self.size - 1);
        }
        self.filled = self.size;
        self.eager = true;
    }

    /// The member type.
    #[must_use]
    pub fn ty(&self) -> &MemberType {
        &self.ty
    }

    /// The scalar dtype.
    #[must_use]
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Scalars per slot.
    #[must_use]
    pub fn width(&self) -> usize {
        self.width
    }

    /// Number of slots.
    #[must_use]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes held.
    #[must_use]
    pub fn nbytes(&self) -> usize {
        self.buf.capacity_bytes()
    }

    /// The raw bytes of the filled slots, `filled() * width * dtype.size()` of them (every slot's for an
    /// eager column).
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.buf.bytes()[..self.filled * self.default.len()]
    }

    /// The raw bytes of every slot, mutably. Fills every slot first and makes the column eager (its memory
    /// may now be exposed): O(size) the first time on a lazy column.
    #[must_use]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.materialize();
        self.buf.bytes_mut()
    }

    /// The value of slot `slot` of a scalar member as a typed [`Scalar`], from memory if filled, else the
    /// default: the read behind the bindings' `m[i]`. `None` for an array member or a slot out of range
    /// (the caller's general path reports those). O(1), no allocation, no error value made.
    #[inline]
    #[must_use]
    pub fn scalar(&self, slot: usize) -> Option<Scalar> {
        if !matches!(self.ty, MemberType::Scalar(_)) {
            return None;
        }
        // A filled slot's value is in the buffer, `slot` scalars in; any other slot below `size` reads as
        // the default (one scalar).
        let (b, k) = if slot < self.filled {
            (self.buf.bytes(), slot)
        } else if slot < self.size {
            (self.default.bytes(), 0)
        } else {
            return None;
        };
        macro_rules! rd {
            ($t:ty) => {{
                const N: usize = std::mem::size_of::<$t>();
                let p = k.checked_mul(N)?;
                <$t>::from_ne_bytes(b.get(p..p + N)?.try_into().ok()?)
            }};
        }
        Some(match self.dtype {
            Dtype::Bool => Scalar::Bool(rd!(u8) != 0),
            Dtype::I8 => Scalar::I8(rd!(i8)),
            Dtype::I16 => Scalar::I16(rd!(i16)),
            Dtype::I32 => Scalar::I32(rd!(i32)),
            Dtype::I64 => Scalar::I64(rd!(i64)),
            Dtype::U8 => Scalar::U8(rd!(u8)),
            Dtype::U16 => Scalar::U16(rd!(u16)),
            Dtype::U32 => Scalar::U32(rd!(u32)),
            Dtype::U64 => Scalar::U64(rd!(u64)),
            Dtype::F32 => Scalar::F32(rd!(f32)),
            Dtype::F64 => Scalar::F64(rd!(f64)),
        })
    }

    /// The bytes of slot `slot`: its memory if filled, else the default's. `None` if out of range. O(1).
    #[must_use]
    #[inline]
    pub fn slot_bytes(&self, slot: usize) -> Option<&[u8]> {
        let n = self.default.len();
        if slot >= self.size {
            None
        } else if slot < self.filled {
            self.buf.bytes().get(slot * n..(slot + 1) * n)
        } else {
            Some(self.default.bytes())
        }
    }

    /// Write `src` (whole slots: a multiple of the entry bytes, at most `size()` slots) into the first
    /// slots, leaving the others as they are. The bulk-load path: slots beyond stay unfilled. O(len).
    ///
    /// # Errors
    /// [`Error::WrongLength`] if `src` is not whole slots or holds more than `size()`.
    pub fn load_prefix(&mut self, src: &[u8]) -> Result<()> {
        let n = self.default.len().max(1);
        if src.len() % n != 0 || src.len() / n > self.size {
            return Err(Error::WrongLength {
                expected: self.size * n,
                got: src.len(),
            });
        }
        self.buf.bytes_mut()[..src.len()].copy_from_slice(src);
        self.filled = self.filled.max(src.len() / n);
        Ok(())
    }

    /// The slot buffer itself (every slot, filled or not): for an export that shares it
    /// (`crate::arrow`), holding [`AlignedBuf::owner`]. Read-only. O(1).
    #[cfg(feature = "arrow")]
    pub(crate) fn buffer(&self) -> &AlignedBuf {
        &self.buf
    }

    /// Write `src` (whole slots) into the slots from `slot` on, filling the default into the unfilled
    /// slots below `slot` first: the bulk path of an Arrow import, which loads a chunk's slots in order.
    /// O(len).
    ///
    /// # Errors
    /// [`Error::WrongLength`] if `src` is not whole slots or runs past the last slot.
    #[cfg(feature = "arrow")]
    pub(crate) fn load_at(&mut self, slot: usize, src: &[u8]) -> Result<()> {
        let n = self.default.len().max(1);
        let end = slot.saturating_add(src.len() / n);
        if src.len() % n != 0 || end > self.size {
            return Err(Error::WrongLength {
                expected: self.size.saturating_sub(slot) * n,
                got: src.len(),
            });
        }
        if slot > 0 {
            self.fill_to(slot - 1);
        }
        if let Some(dst) = self.buf.bytes_mut().get_mut(slot * n..slot * n + src.len()) {
            dst.copy_from_slice(src);
        }
        self.filled = self.filled.max(end);
        Ok(())
    }

    /// Whether the buffer starts on a page boundary (true for any buffer of 1 MiB or more).
    #[must_use]
    pub fn is_page_aligned(&self) -> bool {
        self.buf.is_page_aligned()
    }

    /// The filled slots as `&[T]`, `filled() * width` scalars (every slot's for an eager column: see the
    /// type's docs; [`FixedColumn::slot`] reads any slot). O(1).
    ///
    /// # Errors
    /// [`Error::WrongType`] if `T` does not match the dtype (`bool` columns are `u8`).
    #[inline]
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        if !T::accepts(self.dtype()) {
            return Err(self.type_mismatch::<T>());
        }
        Ok(bytemuck::cast_slice(self.bytes()))
    }

    /// The `width` scalars of slot `slot` as `&[T]`: from memory if filled, else the default. O(1).
    ///
    /// # Errors
    /// [`Error::WrongType`] if `T` does not match the dtype; [`Error::IndexOutOfRange`] for the slot.
    pub fn slot<T: Element>(&self, slot: usize) -> Result<&[T]> {
        if !T::accepts(self.dtype()) {
            return Err(self.type_mismatch::<T>());
        }
        let b = match self.slot_bytes(slot) {
            Some(x) => Ok(x),
            None => Err(Error::IndexOutOfRange {
                index: slot as i64,
                len: self.size,
            }),
        }?;
        Ok(bytemuck::cast_slice(b))
    }

    /// The `width` scalars of slot `slot` as `&mut [T]`, filling the default up to it first (the typed
    /// write path: it keeps a lazy column lazy). O(1) amortised.
    ///
    /// # Errors
    /// [`Error::WrongType`] if `T` does not match the dtype; [`Error::IndexOutOfRange`] for the slot.
    pub fn slot_mut<T: Element>(&mut self, slot: usize) -> Result<&mut [T]> {
        if !T::accepts(self.dtype()) {
            return Err(self.type_mismatch::<T>());
        }
        self.check_slot(slot)?;
        self.fill_to(slot);
        let n = self.default.len();
        // Invariant: slot < size, so (slot + 1) * n <= buf.len().
        Ok(bytemuck::cast_slice_mut(
            &mut self.buf.bytes_mut()[slot * n..(slot + 1) * n],
        ))
    }

    /// Every slot as `&mut [T]`. Fills every slot first and makes the column eager (see
    /// [`FixedColumn::bytes_mut`]). O(1) on an eager column.
    ///
    /// # Errors
    /// [`Error::WrongType`] if `T` does not match the dtype.
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T]> {
        if !T::accepts(self.dtype()) {
            return Err(self.type_mismatch::<T>());
        }
        Ok(bytemuck::cast_slice_mut(self.bytes_mut()))
    }

    #[cold]
    #[inline(never)]
    fn type_mismatch<T>(&self) -> Error {
        Error::WrongType {
            expected: self.dtype().to_string(),
            got: std::any::type_name::<T>().to_owned(),
        }
    }

    #[cold]
    #[inline(never)]
    fn slot_out_of_range(&self, slot: usize) -> Error {
        Error::IndexOutOfRange {
            index: slot as i64,
            len: self.size,
        }
    }

    fn check_slot(&self, slot: usize) -> Result<()> {
        super::check_slot(slot, self.size)
    }

    fn check_element(&self, slot: usize, k: usize) -> Result<usize> {
        self.check_slot(slot)?;
        let w = self.width();
        if k < w {
            Ok(slot * w + k)
        } else {
            Err(Error::IndexOutOfRange {
                index: k as i64,
                len: w,
            })
        }
    }

    /// Scalar number `pos` of the buffer as a `Value` (the default's for an unfilled slot); `pos < size
    /// * width` is the caller's invariant.
    fn read(&self, pos: usize) -> Value {
        let d = self.dtype();
        let w = self.width.max(1);
        let (bytes, pos) = if pos / w < self.filled {
            (self.buf.bytes(), pos)
        } else {
            (self.default.bytes(), pos % w)
        };
        with_type!(d, T => {
            let x: T = bytemuck::cast_slice::<u8, T>(bytes)[pos];
            scalar_value(d, x)
        })
    }

    /// Write `v` to scalar number `pos` (of a filled slot); converts first, so nothing changes on error.
    fn write(&mut self, pos: usize, v: &Value) -> Result<()> {
        let d = self.dtype();
        let bytes = self.buf.bytes_mut();
        match d {
            Dtype::Bool => bytemuck::cast_slice_mut::<u8, u8>(bytes)[pos] = to_bool(v)?,
            Dtype::F32 => bytemuck::cast_slice_mut::<u8, f32>(bytes)[pos] = to_f32(v)?,
            Dtype::F64 => bytemuck::cast_slice_mut::<u8, f64>(bytes)[pos] = to_f64(v)?,
            Dtype::U8 => bytemuck::cast_slice_mut::<u8, u8>(bytes)[pos] = to_int(v, d)?,
            Dtype::U16 => bytemuck::cast_slice_mut::<u8, u16>(bytes)[pos] = to_int(v, d)?,
            Dtype::U32 => bytemuck::cast_slice_mut::<u8, u32>(bytes)[pos] = to_int(v, d)?,
            Dtype::U64 => bytemuck::cast_slice_mut::<u8, u64>(bytes)[pos] = to_int(v, d)?,
            Dtype::I8 => bytemuck::cast_slice_mut::<u8, i8>(bytes)[pos] = to_int(v, d)?,
            Dtype::I16 => bytemuck::cast_slice_mut::<u8, i16>(bytes)[pos] = to_int(v, d)?,
            Dtype::I32 => bytemuck::cast_slice_mut::<u8, i32>(bytes)[pos] = to_int(v, d)?,
            Dtype::I64 => bytemuck::cast_slice_mut::<u8, i64>(bytes)[pos] = to_int(v, d)?,
        }
        Ok(())
    }

    /// The value at `slot`: a scalar, or a `Value::Array` for an array member.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot >= size()`.
    pub fn get(&self, slot: usize) -> Result<Value> {
        self.check_slot(slot)?;
        let w = self.width;
        Ok(match self.ty {
            MemberType::Array(..) => Value::Array((slot * w..(slot + 1) * w).map(|p| self.read(p)).collect()),
            _ => self.read(slot),
        })
    }

    /// Element `k` of the array at `slot` (`k == 0` for a scalar member).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot` or `k` is out of range.
    pub fn get_element(&self, slot: usize, k: usize) -> Result<Value> {
        let pos = self.check_element(slot, k)?;
        Ok(self.read(pos))
    }

    /// Write `v` at `slot`. Nothing changes on error.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`], and the conversion errors of [`MemberType::canonical`].
    pub fn set(&mut self, slot: usize, v: &Value) -> Result<()> {
        self.check_slot(slot)?;
        if slot >= self.filled {
            // A refused value fills nothing.
            self.ty.check(v)?;
            self.fill_to(slot);
        }
        match (&self.ty, v) {
            (MemberType::Scalar(_), _) => self.write(slot, v),
            (MemberType::Array(_, w), Value::Array(items)) => {
                let w = *w;
                // Validate every element before writing any.
                let canon = self.ty.canonical(v)?;
                debug_assert_eq!(items.len(), w);
                if let Value::Array(items) = canon {
                    for (k, x) in items.iter().enumerate() {
                        self.write(slot * w + k, x)?;
                    }
                }
                Ok(())
            }
            (MemberType::Array(..), _) => self.ty.canonical(v).map(drop),
            // Not reached: `try_new` takes numeric types only.
            _ => self.ty.canonical(v).map(drop),
        }
    }

    /// Write element `k` of the array at `slot`. Nothing changes on error.
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot` or `k` is out of range, and the conversion errors.
    pub fn set_element(&mut self, slot: usize, k: usize, v: &Value) -> Result<()> {
        let pos = self.check_element(slot, k)?;
        if slot >= self.filled {
            // A refused value fills nothing.
            self.dtype.canonical(v)?;
            self.fill_to(slot);
        }
        self.write(pos, v)
    }

    /// Check that `x` could be written by [`FixedColumn::set_scalar`]: this is a scalar member of `x`'s
    /// dtype.
    ///
    /// # Errors
    /// [`Error::WrongType`] for an array member or another dtype.
    #[inline]
    pub fn check_scalar(&self, x: Scalar) -> Result<()> {
        if matches!(self.ty, MemberType::Scalar(_)) && x.dtype() == self.dtype {
            Ok(())
        } else {
            Err(self.not_this_scalar(x))
        }
    }

    #[cold]
    #[inline(never)]
    fn not_this_scalar(&self, x: Scalar) -> Error {
        Error::WrongType {
            expected: self.ty.to_string(),
            got: x.dtype().to_string(),
        }
    }

    /// Write the typed scalar `x` at `slot` of a scalar member of `x`'s dtype: no conversion. O(1).
    /// Nothing changes on error.
    ///
    /// # Errors
    /// [`Error::WrongType`] as [`FixedColumn::check_scalar`], [`Error::IndexOutOfRange`] if
    /// `slot >= size()`.
    #[inline]
    pub fn set_scalar(&mut self, slot: usize, x: Scalar) -> Result<()> {
        self.check_scalar(x)?;
        if slot >= self.size {
            return Err(self.slot_out_of_range(slot));
        }
        self.put_scalar(slot, x);
        Ok(())
    }

    /// [`FixedColumn::set_scalar`] of a scalar and slot already checked by the caller (with
    /// [`FixedColumn::check_scalar`] and against `size()`): no check but the buffer's bounds. O(1).
    #[inline]
    pub(crate) fn put_scalar(&mut self, slot: usize, x: Scalar) {
        // A lazily filled column gets its defaults up to this slot first (a compare when already filled).
        self.fill_to(slot);
        let bytes = self.buf.bytes_mut();
        // The column holds `size` scalars of `x`'s dtype, so slot `slot < size` has its bytes in the
        // buffer; anything else writes nothing.
        macro_rules! put {
            ($t:ty, $v:expr) => {{
                const N: usize = std::mem::size_of::<$t>();
                if let Some(d) = slot.checked_mul(N).and_then(|p| bytes.get_mut(p..p + N)) {
                    d.copy_from_slice(&$v.to_ne_bytes());
                }
            }};
        }
        match x {
            Scalar::Bool(v) => put!(u8, u8::from(v)),
            Scalar::I8(v) => put!(i8, v),
            Scalar::I16(v) => put!(i16, v),
            Scalar::I32(v) => put!(i32, v),
            Scalar::I64(v) => put!(i64, v),
            Scalar::U8(v) => put!(u8, v),
            Scalar::U16(v) => put!(u16, v),
            Scalar::U32(v) => put!(u32, v),
            Scalar::U64(v) => put!(u64, v),
            Scalar::F32(v) => put!(f32, v),
            Scalar::F64(v) => put!(f64, v),
        }
    }

    /// Put the column's default back at `slot`: one copy of precomputed bytes. O(entry bytes).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] if `slot >= size()`.
    pub fn reset_slot(&mut self, slot: usize) -> Result<()> {
        self.check_slot(slot)?;
        if slot >= self.filled {
            // Filling up to the slot writes its default (the slot is being allocated: it is filled).
            self.fill_to(slot);
            return Ok(());
        }
        let n = self.default.len();
        // Invariant: slot < size, so (slot + 1) * n <= buf.len().
        put_bytes(
            &mut self.buf.bytes_mut()[slot * n..(slot + 1) * n],
            self.default.bytes(),
        );
        Ok(())
    }

    /// Put the default back in every slot. O(size) for an eager column; a lazy one zeroes only its filled
    /// slots and forgets them (the pages beyond stay untouched).
    pub fn reset_all(&mut self) {
        let n = self.default.len();
        let zero = self.default.bytes().iter().all(|&b| b == 0);
        if zero || !self.eager {
            self.buf.bytes_mut()[..self.filled * n].fill(0);
            self.filled = if zero { self.size } else { 0 };
            return;
        }
        let (dst, src) = (self.buf.bytes_mut(), self.default.bytes());
        for s in 0..self.size {
            // Invariant: s < size, so (s + 1) * n <= buf.len().
            put_bytes(&mut dst[s * n..(s + 1) * n], src);
        }
    }
}

fn scalar_value<T: ToValue>(d: Dtype, x: T) -> Value {
    x.to_value(d)
}

/// A storage scalar read back as a `Value` of its dtype.
trait ToValue {
    fn to_value(self, d: Dtype) -> Value;
}
macro_rules! to_value {
    ($($t:ty => $v:ident),*) => {$(
        impl ToValue for $t {
            #[inline]
            fn to_value(self, _d: Dtype) -> Value {
                Value::$v(self.into())
            }
        }
    )*};
}
to_value!(i8 => Int, i16 => Int, i32 => Int, i64 => Int, u16 => UInt, u32 => UInt, u64 => UInt,
          f32 => Float, f64 => Float);
impl ToValue for u8 {
    #[inline]
    fn to_value(self, d: Dtype) -> Value {
        if d == Dtype::Bool {
            Value::Bool(self != 0)
        } else {
            Value::UInt(self.into())
        }
    }
}

/// Whether `v` is stored as all-zero bytes (`-0.0` is not).
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::UInt(u) => *u == 0,
        Value::Float(x) => x.to_bits() == 0,
        Value::Array(a) => a.iter().all(is_zero),
        _ => false,
    }
}

/// `dst.copy_from_slice(src)` (same lengths), as one move for the common scalar widths instead of a call
/// to `memmove` (resetting a slot is on the path of every `next_index`).
#[inline]
fn put_bytes(dst: &mut [u8], src: &[u8]) {
    macro_rules! fixed {
        ($n:literal) => {
            if let (Ok(d), Ok(s)) = (
                <&mut [u8; $n]>::try_from(&mut *dst),
                <&[u8; $n]>::try_from(src),
            ) {
                *d = *s;
                return;
            }
        };
    }
    fixed!(8);
    fixed!(4);
    fixed!(1);
    fixed!(2);
    fixed!(16);
    dst.copy_from_slice(src);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_scalar_read_matches_get_for_every_dtype_filled_or_not() {
        for d in Dtype::ALL {
            let one = match d {
                Dtype::Bool => Value::Bool(true),
                Dtype::F32 | Dtype::F64 => Value::Float(-2.5),
                d if d.name().starts_with('u') => Value::UInt(9),
                _ => Value::Int(-9),
            };
            // A lazy column with a non-zero default: slots past the mark read as the default.
            let mut c = FixedColumn::try_new_lazy(MemberType::Scalar(d), 6, &one).unwrap();
            c.set(1, &Value::zero(d)).unwrap();
            for slot in 0..6 {
                assert_eq!(
                    c.scalar(slot).map(Value::from),
                    Some(c.get(slot).unwrap()),
                    "{d} {slot}"
                );
            }
            assert_eq!(c.scalar(6), None, "{d}");
            assert_eq!(c.scalar(usize::MAX), None, "{d}");
            // An array member has no scalar read.
            let a = FixedColumn::try_new_lazy(MemberType::Array(d, 1), 2, &Value::Array(vec![one.clone()]))
                .unwrap();
            assert_eq!(a.scalar(0), None, "{d}");
        }
    }

    #[test]
    fn scalar_round_trip_for_every_dtype() {
        for d in Dtype::ALL {
            let mut c = FixedColumn::new(MemberType::Scalar(d), 5, &Value::zero(d));
            let v = match d {
                Dtype::Bool => Value::Bool(true),
                Dtype::F32 | Dtype::F64 => Value::Float(1.5),
                d if d.name().starts_with('u') => Value::UInt(7),
                _ => Value::Int(-7),
            };
            c.set(3, &v).unwrap();
            assert_eq!(c.get(3).unwrap(), v, "{d}");
            assert_eq!(c.get(2).unwrap(), Value::zero(d), "{d}");
        }
    }

    #[test]
    fn failed_array_write_changes_nothing() {
        let mut c = FixedColumn::new(MemberType::Array(Dtype::U8, 3), 2, &vec![0u8; 3].into());
        c.set(1, &vec![1u8, 2, 3].into()).unwrap();
        assert!(c.set(1, &vec![9i64, 9, 300].into()).is_err());
        assert_eq!(c.get(1).unwrap(), vec![1u8, 2, 3].into());
        assert_eq!(c.as_slice::<u8>().unwrap(), &[0, 0, 0, 1, 2, 3]);
        assert!(c.as_slice::<i8>().is_err());
    }

    #[test]
    fn lazy_column_reads_defaults_and_fills_only_up_to_what_is_written() {
        // Bug: a keyed store's chunk wrote its non-zero defaults into all 65,536 slots up front (10 MiB
        // for 20 f64 members holding one key); a lazy column fills a slot when it is first used.
        let mut c =
            FixedColumn::try_new_lazy(MemberType::Scalar(Dtype::F64), 1000, &Value::Float(1.5)).unwrap();
        assert_eq!((c.filled(), c.bytes().len()), (0, 0));
        assert_eq!(c.get(999).unwrap(), Value::Float(1.5));
        assert_eq!(c.slot::<f64>(500).unwrap(), &[1.5]);
        c.reset_slot(0).unwrap(); // allocation
        c.set(2, &Value::Float(7.0)).unwrap(); // a write to a free slot fills the gap
        assert_eq!(c.filled(), 3);
        assert_eq!(c.as_slice::<f64>().unwrap(), &[1.5, 1.5, 7.0]);
        assert!(c.set(10, &Value::Str("x".into())).is_err());
        assert_eq!(
            c.get(10).unwrap(),
            Value::Float(1.5),
            "a refused write reads the default still"
        );
        *c.slot_mut::<f64>(4).unwrap().first_mut().unwrap() = 9.0;
        assert_eq!(
            (c.filled(), c.get(3).unwrap(), c.get(4).unwrap()),
            (5, Value::Float(1.5), Value::Float(9.0))
        );
        c.load_prefix(bytemuck::cast_slice(&[3.0f64, 4.0])).unwrap();
        assert_eq!(c.as_slice::<f64>().unwrap(), &[3.0, 4.0, 7.0, 1.5, 9.0]);
        c.reset_all();
        assert_eq!((c.filled(), c.get(4).unwrap()), (0, Value::Float(1.5)));
        assert!(
            c.buf.bytes().iter().all(|&b| b == 0),
            "a reset forgets the filled slots"
        );
        // raw mutable access fills everything and keeps the column filled
        c.set(1, &Value::Float(2.0)).unwrap();
        assert_eq!(c.as_mut_slice::<f64>().unwrap().len(), 1000);
        assert!(c.is_eager());
        c.reset_all();
        assert_eq!((c.filled(), c.as_slice::<f64>().unwrap()[999]), (1000, 1.5));
        // an array member's default, element by element
        let a =
            FixedColumn::try_new_lazy(MemberType::Array(Dtype::U8, 3), 4, &vec![1u8, 2, 3].into()).unwrap();
        assert_eq!(
            (a.get_element(3, 2).unwrap(), a.get(2).unwrap()),
            (Value::UInt(3), vec![1u8, 2, 3].into())
        );
    }

    #[test]
    fn nonzero_default_fills_every_slot() {
        let c = FixedColumn::new(MemberType::Scalar(Dtype::F32), 1000, &Value::Float(0.5));
        assert!(c.as_slice::<f32>().unwrap().iter().all(|&x| x == 0.5));
        assert!(c.get(1000).is_err());
    }
}
