//! Exports that describe the runtime: status-code names, the version, counters, the goroutine
//! dump.

use super::*;
use crate::sched;
use crate::sched::grow;
use core::ffi::{c_char, c_int};

/// A static, NUL-terminated description of a status code (never NULL).
#[no_mangle]
pub extern "C" fn gs_strerror(code: c_int) -> *const c_char {
    export!(unchecked, { strerror(code) })
}

fn strerror(code: c_int) -> *const c_char {
    let s: &'static [u8] = match code {
        GS_OK => b"success\0",
        GS_EINVAL => b"invalid argument\0",
        GS_ENOMEM => b"out of memory\0",
        GS_ENOTGOROUTINE => b"not called from a goroutine\0",
        GS_ECLOSED => b"channel closed\0",
        GS_EDEADLOCK => b"all goroutines are asleep - deadlock\0",
        GS_ETIMEDOUT => b"timed out\0",
        GS_EAGAIN => b"operation would block\0",
        GS_EBUSY => b"object still in use\0",
        GS_ESTATE => b"wrong runtime state for this call\0",
        GS_EPANIC => b"internal error (panic caught at the API boundary)\0",
        _ => b"unknown gostack error code\0",
    };
    s.as_ptr().cast()
}

/// The library's version, "MAJOR.MINOR.PATCH" (static string).
#[no_mangle]
pub extern "C" fn gs_version() -> *const c_char {
    export!(unchecked, { concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast() })
}

/// Fills `*out` with runtime-wide counters. `GS_EINVAL` if `out` is NULL.
/// # Safety
/// `out` is NULL or points to writable memory for a `gs_stats`.
#[no_mangle]
pub unsafe extern "C" fn gs_get_stats(out: *mut gs_stats) -> c_int {
    if out.is_null() {
        return GS_EINVAL;
    }
    grow::secure_stack(2 * grow::RUNTIME_ENTRY_STACK);
    export!({
        // Record stacks the signal handler mapped, so that the counts include them.
        if let sched::Where::Goroutine(m, g) = sched::whereami() {
            // SAFETY: g runs on this thread, on its own stack, which was just secured.
            unsafe { grow::settle(m, g) };
        }
        let s = sched::stats();
        // SAFETY: non-NULL and the caller promises a gs_stats.
        unsafe { out.write(s) };
        GS_OK
    })
}

/// Writes a Go-style dump of every goroutine to file descriptor `fd`: `goroutine N [state or
/// wait reason]:` followed by its stack bounds, kind, name and thread. `GS_EINVAL` if `fd` is not
/// an open file descriptor or a write to it fails (closed pipe, full disk).
#[no_mangle]
pub extern "C" fn gs_dump(fd: c_int) -> c_int {
    if fd < 0 {
        return GS_EINVAL;
    }
    export!({ sched::dump(fd) })
}
