//! Fallible allocation: every buffer whose size caller input can drive is allocated through these
//! helpers (or through [`crate::column::AlignedBuf`]), so a refused allocation is an
//! [`Error::OutOfMemory`] that the caller can report, never a process abort.
//!
//! Rust's infallible collections (`Vec::push`, `extend_from_slice`, `to_vec`, hashbrown's `insert`) abort
//! the process when the allocator refuses; these reserve first with `try_reserve`, after which the
//! infallible call cannot allocate. Each helper reports the bytes asked for and what they were for.

use crate::error::{Error, Result};

/// Make room for `additional` more elements in `v` (exactly that many: the caller chose the growth).
///
/// # Errors
/// [`Error::OutOfMemory`] if the allocator refuses; `v` is unchanged.
pub(crate) fn reserve_exact<T>(v: &mut Vec<T>, additional: usize, what: &'static str) -> Result<()> {
    v.try_reserve_exact(additional)
        .map_err(|_| Error::out_of_memory(bytes_of::<T>(v.len().saturating_add(additional)), what))
}

/// Make room for `additional` more elements in `v`, growing geometrically (amortised O(1) pushes).
///
/// # Errors
/// [`Error::OutOfMemory`] if the allocator refuses; `v` is unchanged.
pub(crate) fn reserve<T>(v: &mut Vec<T>, additional: usize, what: &'static str) -> Result<()> {
    v.try_reserve(additional)
        .map_err(|_| Error::out_of_memory(bytes_of::<T>(v.len().saturating_add(additional)), what))
}

/// A copy of `s` in a new `Vec` of exactly its length.
///
/// # Errors
/// [`Error::OutOfMemory`] if the allocator refuses.
pub(crate) fn to_vec<T: Clone>(s: &[T], what: &'static str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    reserve_exact(&mut v, s.len(), what)?;
    v.extend_from_slice(s);
    Ok(v)
}

/// A copy of `s` in a new `String` of exactly its length.
///
/// # Errors
/// [`Error::OutOfMemory`] if the allocator refuses.
pub(crate) fn copy_str(s: &str, what: &'static str) -> Result<String> {
    let mut out = String::new();
    out.try_reserve_exact(s.len())
        .map_err(|_| Error::out_of_memory(s.len(), what))?;
    out.push_str(s);
    Ok(out)
}

/// `n` copies of `x` in a new `Vec`.
///
/// # Errors
/// [`Error::OutOfMemory`] if the allocator refuses.
pub(crate) fn filled<T: Clone>(n: usize, x: T, what: &'static str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    reserve_exact(&mut v, n, what)?;
    v.resize(n, x);
    Ok(v)
}

/// A copy of `s` in a new `Vec` whose capacity is kept (so the copy holds the same slack as the original:
/// a copied store reports the same `nbytes`).
///
/// # Errors
/// [`Error::OutOfMemory`] if the allocator refuses.
pub(crate) fn clone_vec<T: Clone>(s: &Vec<T>, what: &'static str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    reserve_exact(&mut v, s.capacity(), what)?;
    v.extend_from_slice(s);
    Ok(v)
}

/// `bytes` as a boxed slice.
///
/// # Errors
/// [`Error::OutOfMemory`] if the allocator refuses.
pub(crate) fn boxed(bytes: &[u8], what: &'static str) -> Result<Box<[u8]>> {
    Ok(to_vec(bytes, what)?.into_boxed_slice())
}

fn bytes_of<T>(n: usize) -> usize {
    n.saturating_mul(std::mem::size_of::<T>().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_requests_are_errors_not_aborts() {
        let mut v: Vec<u64> = vec![1, 2];
        let e = reserve_exact(&mut v, usize::MAX / 4, "a test").unwrap_err();
        assert!(matches!(e, Error::OutOfMemory { what: "a test", .. }), "{e:?}");
        assert!(matches!(
            reserve(&mut v, isize::MAX as usize, "x"),
            Err(Error::OutOfMemory { .. })
        ));
        assert_eq!(v, [1, 2]);
        assert!(matches!(
            filled(usize::MAX / 2, 0u8, "x"),
            Err(Error::OutOfMemory { .. })
        ));
        assert_eq!(to_vec(&[1u8, 2], "x").unwrap(), [1, 2]);
        assert_eq!(clone_vec(&v, "x").unwrap().capacity(), v.capacity());
        assert_eq!(&*boxed(b"ab", "x").unwrap(), b"ab");
    }
}
