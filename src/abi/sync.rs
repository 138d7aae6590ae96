//! Exports of Go's sync package: wait groups, mutexes, semaphores.
//!
//! Every blocking function here parks the calling goroutine (other goroutines keep running on
//! the thread); called from a thread that is not running a goroutine, it blocks that thread
//! until a goroutine or another thread completes it; called inside a `gs_systemstack` function
//! it returns `GS_ESTATE` without blocking.

use super::handle::{self, acquired, tsan_release};
use super::*;
use crate::sync::mutex::Mutex;
use crate::sync::sema::Sema;
use crate::sync::waitgroup::WaitGroup;
use core::ffi::c_int;
use core::ptr::null_mut;

// ---- wait groups ----------------------------------------------------------------------------

/// Makes a wait group with counter 0 (NULL if out of memory). The caller owns it and frees it
/// with `gs_waitgroup_free`. Callable from any thread.
#[no_mangle]
pub extern "C" fn gs_waitgroup_new() -> *mut gs_waitgroup {
    export!({ handle::new::<gs_waitgroup>(Box::new(WaitGroup::new())) })
}

/// Adds `delta` (may be negative) to the counter; when it reaches 0 every waiter wakes. A
/// delta that would make the counter negative is `GS_EINVAL` and leaves it unchanged (Go
/// panics). Never blocks; callable from any thread. `GS_EINVAL` for NULL.
///
/// # Safety
/// `wg` is NULL or a live handle from `gs_waitgroup_new`.
#[no_mangle]
pub unsafe extern "C" fn gs_waitgroup_add(wg: *mut gs_waitgroup, delta: i64) -> c_int {
    tsan_release(wg);
    // SAFETY: the caller passes a live handle or NULL.
    export!({ unsafe { handle::get(wg) }.map_or(GS_EINVAL, |w| w.add(delta)) })
}

/// `gs_waitgroup_add(wg, -1)`.
///
/// # Safety
/// `wg` is NULL or a live handle from `gs_waitgroup_new`.
#[no_mangle]
pub unsafe extern "C" fn gs_waitgroup_done(wg: *mut gs_waitgroup) -> c_int {
    tsan_release(wg);
    // SAFETY: the caller passes a live handle or NULL.
    export!({ unsafe { handle::get(wg) }.map_or(GS_EINVAL, |w| w.add(-1)) })
}

/// Blocks until the counter is 0 (returns at once if it is). Blocks the calling goroutine, or
/// the calling thread outside goroutines; `GS_ESTATE` inside `gs_systemstack`; `GS_EINVAL` for
/// NULL.
///
/// # Safety
/// `wg` is NULL or a live handle from `gs_waitgroup_new`.
#[no_mangle]
pub unsafe extern "C" fn gs_waitgroup_wait(wg: *mut gs_waitgroup) -> c_int {
    // SAFETY: the caller passes a live handle or NULL.
    acquired(wg, export!({ unsafe { handle::get(wg) }.map_or(GS_EINVAL, |w| w.wait()) }))
}

/// Frees a wait group: `GS_EBUSY` (nothing freed) while someone waits on it, `GS_EINVAL` for
/// NULL. The handle is invalid afterwards.
///
/// # Safety
/// `wg` is NULL or a live handle from `gs_waitgroup_new`.
#[no_mangle]
pub unsafe extern "C" fn gs_waitgroup_free(wg: *mut gs_waitgroup) -> c_int {
    // SAFETY: the caller passes a live handle or NULL.
    export!({ unsafe { handle::free(wg) } })
}

// ---- mutexes --------------------------------------------------------------------------------

/// Makes an unlocked mutex (NULL if out of memory). The caller owns it and frees it with
/// `gs_mutex_free`. Callable from any thread.
#[no_mangle]
pub extern "C" fn gs_mutex_new() -> *mut gs_mutex {
    export!({ handle::new::<gs_mutex>(Box::new(Mutex::new())) })
}

/// Locks the mutex, blocking while another holder has it. Not recursive (locking it twice from
/// one goroutine blocks forever, as in Go). Fair under contention: a waiter that has waited
/// more than 1 ms is handed the mutex directly by the next unlock (Go's starvation mode).
/// Blocks the calling goroutine, or the calling thread outside goroutines; `GS_ESTATE` inside
/// `gs_systemstack`; `GS_EINVAL` for NULL.
///
/// # Safety
/// `m` is NULL or a live handle from `gs_mutex_new`.
#[no_mangle]
pub unsafe extern "C" fn gs_mutex_lock(m: *mut gs_mutex) -> c_int {
    // SAFETY: the caller passes a live handle or NULL.
    acquired(m, export!({ unsafe { handle::get(m) }.map_or(GS_EINVAL, |m| m.lock()) }))
}

/// Locks the mutex if it is free (`GS_OK`), else `GS_EAGAIN`. Never blocks; callable anywhere.
///
/// # Safety
/// `m` is NULL or a live handle from `gs_mutex_new`.
#[no_mangle]
pub unsafe extern "C" fn gs_mutex_trylock(m: *mut gs_mutex) -> c_int {
    // SAFETY: the caller passes a live handle or NULL.
    acquired(m, export!({ unsafe { handle::get(m) }.map_or(GS_EINVAL, |m| m.trylock()) }))
}

/// Unlocks the mutex (any goroutine or thread may unlock it, as in Go). `GS_ESTATE` if it is
/// not locked. Never blocks.
///
/// # Safety
/// `m` is NULL or a live handle from `gs_mutex_new`.
#[no_mangle]
pub unsafe extern "C" fn gs_mutex_unlock(m: *mut gs_mutex) -> c_int {
    tsan_release(m);
    // SAFETY: the caller passes a live handle or NULL.
    export!({ unsafe { handle::get(m) }.map_or(GS_EINVAL, |m| m.unlock()) })
}

/// Frees a mutex: `GS_EBUSY` (nothing freed) while it is locked or someone waits for it,
/// `GS_EINVAL` for NULL. The handle is invalid afterwards.
///
/// # Safety
/// `m` is NULL or a live handle from `gs_mutex_new`.
#[no_mangle]
pub unsafe extern "C" fn gs_mutex_free(m: *mut gs_mutex) -> c_int {
    // SAFETY: the caller passes a live handle or NULL.
    export!({ unsafe { handle::free(m) } })
}

// ---- semaphores -----------------------------------------------------------------------------

/// Makes a counting semaphore holding `initial` units (NULL if `initial < 0` or out of
/// memory). The caller owns it and frees it with `gs_sema_free`. Callable from any thread.
#[no_mangle]
pub extern "C" fn gs_sema_new(initial: i64) -> *mut gs_sema {
    if initial < 0 {
        return null_mut();
    }
    export!({ handle::new::<gs_sema>(Box::new(Sema::new(initial))) })
}

/// Takes one unit, blocking while there is none. Waiters are served first come, first served.
/// Blocks the calling goroutine, or the calling thread outside goroutines; `GS_ESTATE` inside
/// `gs_systemstack`; `GS_EINVAL` for NULL.
///
/// # Safety
/// `s` is NULL or a live handle from `gs_sema_new`.
#[no_mangle]
pub unsafe extern "C" fn gs_sema_acquire(s: *mut gs_sema) -> c_int {
    // SAFETY: the caller passes a live handle or NULL.
    acquired(s, export!({ unsafe { handle::get(s) }.map_or(GS_EINVAL, |s| s.acquire()) }))
}

/// Takes one unit if there is one (`GS_OK`), else `GS_EAGAIN`. Never blocks; callable anywhere.
///
/// # Safety
/// `s` is NULL or a live handle from `gs_sema_new`.
#[no_mangle]
pub unsafe extern "C" fn gs_sema_try_acquire(s: *mut gs_sema) -> c_int {
    // SAFETY: the caller passes a live handle or NULL.
    acquired(s, export!({ unsafe { handle::get(s) }.map_or(GS_EINVAL, |s| s.try_acquire()) }))
}

/// Gives back one unit, handing it to the first waiter if any. Never blocks; callable from any
/// thread.
///
/// # Safety
/// `s` is NULL or a live handle from `gs_sema_new`.
#[no_mangle]
pub unsafe extern "C" fn gs_sema_release(s: *mut gs_sema) -> c_int {
    tsan_release(s);
    // SAFETY: the caller passes a live handle or NULL.
    export!({ unsafe { handle::get(s) }.map_or(GS_EINVAL, |s| s.release()) })
}

/// Frees a semaphore: `GS_EBUSY` (nothing freed) while someone waits on it, `GS_EINVAL` for
/// NULL. The handle is invalid afterwards.
///
/// # Safety
/// `s` is NULL or a live handle from `gs_sema_new`.
#[no_mangle]
pub unsafe extern "C" fn gs_sema_free(s: *mut gs_sema) -> c_int {
    // SAFETY: the caller passes a live handle or NULL.
    export!({ unsafe { handle::free(s) } })
}
