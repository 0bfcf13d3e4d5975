//! Letting a caller stop a long call.
//!
//! A few engine calls run for seconds on large stores (bulk loads, `validate`, copies). A caller that
//! can be interrupted — the Python bindings, where Ctrl-C must raise `KeyboardInterrupt` promptly —
//! runs such a call inside [`with_check`], giving a check that says whether to stop. Long loops call
//! [`poll`] as they go; it runs the check every [`POLL_EVERY`] calls and turns a "stop" into
//! [`Error::Interrupted`]. The calls that poll are written so that stopping leaves nothing half
//! changed: they build a new store, or only read.
//!
//! Outside [`with_check`] (every plain Rust caller) [`poll`] costs a counter increment and never stops
//! anything.
//!
//! ```
//! use compactstore::interrupt::{poll, with_check};
//! use compactstore::Error;
//!
//! let mut asked = 0;
//! let r = with_check(&mut || { asked += 1; true }, || {
//!     for _ in 0..10_000_000u64 {
//!         poll()?;
//!     }
//!     Ok(())
//! });
//! assert_eq!(r, Err(Error::Interrupted));
//! assert_eq!(asked, 1);
//! ```

use std::cell::{Cell, RefCell};

use crate::error::{Error, Result};

/// How many [`poll`] calls pass between two runs of the check: about a millisecond of work in the
/// cheapest loops that poll, so a stop is prompt and the check's own cost is nothing.
pub const POLL_EVERY: u32 = 1 << 20;

/// The check installed by [`with_check`] for this thread, as a raw pointer to the caller's closure.
type Check = *mut (dyn FnMut() -> bool + 'static);

thread_local! {
    static CHECK: RefCell<Option<Check>> = const { RefCell::new(None) };
    static COUNT: Cell<u32> = const { Cell::new(0) };
}

/// Run `f` with `check` installed for this thread: [`poll`] calls made by `f` run `check` every
/// [`POLL_EVERY`] calls, and stop `f` with [`Error::Interrupted`] when it returns `true`. Calls nest;
/// the innermost check is the one asked.
///
/// # Errors
/// Whatever `f` returns, [`Error::Interrupted`] included.
pub fn with_check<R>(check: &mut dyn FnMut() -> bool, f: impl FnOnce() -> Result<R>) -> Result<R> {
    // Restores the previous check when `f` returns or unwinds.
    struct Restore(Option<Check>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            CHECK.with(|c| *c.borrow_mut() = prev);
        }
    }
    // The pointer is dereferenced only by `ask` while this frame is live: the guard removes it before
    // `check`'s borrow ends.
    let ptr: Check = erase(check);
    let prev = CHECK.with(|c| c.borrow_mut().replace(ptr));
    let _restore = Restore(prev);
    f()
}

/// Forget the lifetime of a check pointer (see [`with_check`] for why that is sound).
#[allow(unsafe_code)]
fn erase<'a>(ptr: *mut (dyn FnMut() -> bool + 'a)) -> Check {
    // SAFETY: a raw fat pointer changes only its trait object's lifetime bound; it is dereferenced
    // only in `poll`, and only while the `with_check` call that installed it is running, during which
    // the closure it points to is alive and borrowed by nothing else.
    unsafe { std::mem::transmute::<*mut (dyn FnMut() -> bool + 'a), Check>(ptr) }
}

/// Count one step of a long loop; every [`POLL_EVERY`] steps, ask the installed check (if any).
///
/// # Errors
/// [`Error::Interrupted`] if the check says to stop.
#[inline]
pub fn poll() -> Result<()> {
    let n = COUNT.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n
    });
    if n % POLL_EVERY != 0 {
        return Ok(());
    }
    ask()
}

/// Count `steps` steps of a long loop at once (a copy of `steps` slots), asking the installed check
/// (if any) each time the count passes a multiple of [`POLL_EVERY`].
///
/// # Errors
/// [`Error::Interrupted`] if the check says to stop.
#[inline]
pub fn poll_n(steps: usize) -> Result<()> {
    let steps = u32::try_from(steps).unwrap_or(u32::MAX);
    let (before, after) = COUNT.with(|c| {
        let before = c.get();
        let after = before.wrapping_add(steps);
        c.set(after);
        (before, after)
    });
    if before / POLL_EVERY == after / POLL_EVERY && steps < POLL_EVERY {
        return Ok(());
    }
    ask()
}

/// Ask the installed check now.
///
/// # Errors
/// [`Error::Interrupted`] if the check says to stop.
pub fn ask() -> Result<()> {
    // Taken out while it runs (and put back after, also on unwinding): a check that reaches engine code
    // again (a Python signal handler can) finds no check rather than a second borrow of this one.
    let Some(ptr) = CHECK.with(|c| c.borrow_mut().take()) else {
        return Ok(());
    };
    struct PutBack(Check);
    impl Drop for PutBack {
        fn drop(&mut self) {
            let ptr = self.0;
            CHECK.with(|c| *c.borrow_mut() = Some(ptr));
        }
    }
    let back = PutBack(ptr);
    if call(back.0) {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

#[allow(unsafe_code)]
fn call(ptr: Check) -> bool {
    // SAFETY: `ptr` was installed by a `with_check` call that is still running on this thread (it
    // removes the pointer before returning or unwinding), so the closure is alive; `ask` took it out of
    // the thread's slot before calling, so a re-entrant `ask` cannot borrow it a second time.
    unsafe { (*ptr)() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_check_never_stops() {
        for _ in 0..(3 * POLL_EVERY) {
            assert_eq!(poll(), Ok(()));
        }
    }

    #[test]
    fn a_check_stops_within_one_period_and_is_removed_after() {
        let mut asked = 0;
        let mut steps = 0u64;
        let r = with_check(
            &mut || {
                asked += 1;
                asked == 2
            },
            || loop {
                steps += 1;
                poll()?;
            },
        );
        assert_eq!(r, Err::<(), _>(Error::Interrupted));
        assert!(steps <= 2 * u64::from(POLL_EVERY));
        assert_eq!(asked, 2);
        assert_eq!(ask(), Ok(()));
    }

    #[test]
    fn poll_n_asks_when_the_count_passes_a_period() {
        let mut asked = 0;
        let r = with_check(
            &mut || {
                asked += 1;
                false
            },
            || {
                for _ in 0..10 {
                    poll_n(POLL_EVERY as usize / 2)?;
                }
                poll_n(usize::MAX)
            },
        );
        assert_eq!(r, Ok(()));
        assert!((5..=6).contains(&asked), "asked {asked} times");
    }

    #[test]
    fn a_check_that_reenters_sees_no_check() {
        let mut inner = None;
        let r = with_check(
            &mut || {
                inner = Some(ask());
                true
            },
            ask,
        );
        assert_eq!(r, Err(Error::Interrupted));
        assert_eq!(inner, Some(Ok(())));
    }

    #[test]
    fn nested_checks_restore_the_outer_one() {
        let mut outer = 0;
        let r = with_check(
            &mut || {
                outer += 1;
                false
            },
            || {
                let inner = with_check(&mut || true, ask);
                assert_eq!(inner, Err(Error::Interrupted));
                ask()
            },
        );
        assert_eq!(r, Ok(()));
        assert_eq!(outer, 1);
    }
}
