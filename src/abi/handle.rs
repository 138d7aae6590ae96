//! The four handle types of the C API (`gs_chan`, `gs_waitgroup`, `gs_mutex`, `gs_sema`): one
//! conversion, one constructor and one `_free` for all of them, and the ThreadSanitizer
//! happens-before edges, which are keyed by the handle.

use super::*;
use crate::sync::chan::Chan;
use crate::sync::mutex::Mutex;
use crate::sync::sema::Sema;
use crate::sync::waitgroup::WaitGroup;
use core::ffi::{c_int, c_void};

/// A C handle type and the Rust object behind it: a handle is a `Box<Obj>` turned into a raw
/// pointer by [`new`]; [`get`] turns it back into a reference; [`free`] refuses while the object is
/// busy.
pub(super) trait Handle: Sized {
    type Obj;
    /// Whether goroutines or threads are blocked on the object, or (a mutex) it is held: `_free`
    /// refuses with `GS_EBUSY`.
    fn busy(o: &Self::Obj) -> bool;
    /// Destroys the object behind `h` (default: drops the Box).
    ///
    /// # Safety
    /// `h` came from [`new`] and is not busy; nobody uses it afterwards.
    unsafe fn destroy(h: *mut Self) {
        // SAFETY: per the contract, made by Box::into_raw in `new`.
        drop(unsafe { Box::from_raw(h.cast::<Self::Obj>()) })
    }
}

impl Handle for gs_chan {
    type Obj = Chan;
    fn busy(c: &Chan) -> bool {
        c.busy()
    }
    unsafe fn destroy(h: *mut Self) {
        // SAFETY: per the contract; the owner's reference goes (a select or timed receive woken by
        // the last operation may still hold one: the channel is freed when that one returns).
        unsafe { Chan::release(h as *const Chan) }
    }
}

impl Handle for gs_waitgroup {
    type Obj = WaitGroup;
    fn busy(w: &WaitGroup) -> bool {
        w.busy()
    }
}

impl Handle for gs_mutex {
    type Obj = Mutex;
    fn busy(m: &Mutex) -> bool {
        m.busy()
    }
}

impl Handle for gs_sema {
    type Obj = Sema;
    fn busy(s: &Sema) -> bool {
        s.busy()
    }
}

/// The handle of a new object; the caller (C) owns it until `_free`.
pub(super) fn new<H: Handle>(o: Box<H::Obj>) -> *mut H {
    Box::into_raw(o).cast()
}

/// The object behind a handle, or None for NULL.
///
/// # Safety
/// `h` is NULL or a live handle from [`new`].
#[inline(always)]
pub(super) unsafe fn get<'a, H: Handle>(h: *mut H) -> Option<&'a H::Obj> {
    // SAFETY: per the contract, a handle is a Box<H::Obj> turned into a raw pointer.
    unsafe { h.cast::<H::Obj>().cast_const().as_ref() }
}

/// `_free` of every handle type: `GS_EINVAL` for NULL, `GS_EBUSY` (nothing freed) while the
/// object is busy, else the object is destroyed and the handle is invalid afterwards.
///
/// # Safety
/// `h` is NULL or a live handle from [`new`] that no other goroutine or thread uses or is about
/// to use.
pub(super) unsafe fn free<H: Handle>(h: *mut H) -> c_int {
    // SAFETY: per the contract.
    let Some(o) = (unsafe { get(h) }) else { return GS_EINVAL };
    if H::busy(o) {
        return GS_EBUSY;
    }
    // SAFETY: made by `new`; not busy, and the caller's use was the last.
    unsafe { H::destroy(h) };
    GS_OK
}

// ---- ThreadSanitizer's happens-before edges (sched/sanitizer.rs) ------------------------------

/// Starts a happens-before edge on a handle (a send, close, unlock, done, release).
#[inline(always)]
pub(super) fn tsan_release<T>(h: *mut T) {
    crate::sched::sanitizer::release(h as *const c_void);
}

/// Ends the edges on a handle (a receive, lock, wait, acquire that succeeded).
#[inline(always)]
pub(super) fn tsan_acquire<T>(h: *mut T) {
    crate::sched::sanitizer::acquire(h as *const c_void);
}

/// `rc`, after acquiring `h`'s edges when the operation succeeded.
#[inline(always)]
pub(super) fn acquired<T>(h: *mut T, rc: c_int) -> c_int {
    if rc == GS_OK {
        tsan_acquire(h);
    }
    rc
}
