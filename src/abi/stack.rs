//! Exports about the calling goroutine's stack: running on the thread's own stack, making room,
//! reading its bounds.

use super::*;
use crate::arch;
use crate::sched;
use crate::sched::grow;
use core::ffi::{c_int, c_void};

/// Runs `func(arg)` on the calling thread's own stack (the M's g0 stack) and returns `GS_OK` when it
/// returns. That is the stack of the thread running the goroutine: the thread in `gs_run`/`gs_main`,
/// or a runtime worker thread, whose stacks are 8 MiB (glibc's default). For deep recursion or code that publishes stack addresses. Inside `func`, calls that
/// would switch goroutines (`gs_yield`, blocking operations) return `GS_ESTATE`. Outside a
/// goroutine, a direct call. `GS_EINVAL` if `func` is NULL.
/// # Safety
/// `func` must be safe to call with `arg`.
#[no_mangle]
pub unsafe extern "C" fn gs_systemstack(func: gs_fn, arg: *mut c_void) -> c_int {
    let Some(f) = func else { return GS_EINVAL };
    grow::secure_stack(grow::RUNTIME_ENTRY_STACK);
    // errno is not restored: what `func` leaves in it is the caller's to read.
    if let Err(code) = check_caller() {
        return code;
    }
    // SAFETY: f and arg are the caller's, under gs_systemstack's documented contract.
    export!(unchecked, { unsafe { sched::systemstack(f, arg) } })
}

/// Fills `*out` with the calling goroutine's stack. `GS_EINVAL` if `out` is NULL,
/// `GS_ENOTGOROUTINE` outside a goroutine.
/// # Safety
/// `out` is NULL or points to writable memory for a `gs_stack_info`.
#[no_mangle]
pub unsafe extern "C" fn gs_get_stack_info(out: *mut gs_stack_info) -> c_int {
    if out.is_null() {
        return GS_EINVAL;
    }
    grow::secure_stack(grow::RUNTIME_ENTRY_STACK);
    let sp = arch::current_sp();
    export!({
        match sched::stack_info(sp) {
            Ok(info) => {
                // SAFETY: non-NULL and the caller promises a gs_stack_info.
                unsafe { out.write(info) };
                GS_OK
            }
            Err(e) => e,
        }
    })
}

/// Makes sure `bytes` bytes of stack are free below the caller's stack pointer, moving a
/// GROWABLE stack to a larger reservation first if needed (so every pointer into the stack held
/// outside it goes stale: see `GS_STACK_GROWABLE`). Prefer the `GS_STACK_CHECK(bytes)` macro, whose
/// fast path is an inline compare. Outside goroutines and inside `gs_systemstack`: `GS_OK`.
/// `GS_ENOMEM` if the stack cannot provide that much: a FIXED stack without that much room, or a
/// GROWABLE one that would pass its `max_stack_size` (nothing is moved then).
#[no_mangle]
pub extern "C" fn gs_stack_check(bytes: usize) -> c_int {
    let sp = arch::current_sp();
    export!({ grow::morestack(sp, bytes, false) })
}
