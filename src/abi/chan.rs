//! Exports of Go's channels and select.
//!
//! Every blocking function here parks the calling goroutine (other goroutines keep running on
//! the thread); called from a thread that is not running a goroutine, it blocks that thread
//! until a goroutine or another thread completes it; called inside a `gs_systemstack` function
//! it returns `GS_ESTATE` without blocking.

use super::handle::{self, tsan_acquire, tsan_release};
use super::*;
use crate::sync::chan::{Chan, Wait};
use core::ffi::{c_int, c_void};
use core::ptr::null_mut;

/// Makes a channel of `capacity` elements of `elem_size` bytes each. `capacity` 0 makes an
/// unbuffered channel: a send waits for a receiver and the value is copied directly from the
/// sender's buffer into the receiver's (a rendezvous). `elem_size` 0 is allowed (Go's
/// `chan struct{}`: only the synchronisation counts). Returns NULL if the buffer
/// (`elem_size * capacity` bytes) cannot be allocated or its size overflows, or if `capacity`
/// exceeds `INT64_MAX` (what `gs_chan_cap` can return).
///
/// The caller owns the channel and frees it with `gs_chan_free`. Callable from any thread.
#[no_mangle]
pub extern "C" fn gs_chan_new(elem_size: usize, capacity: usize) -> *mut gs_chan {
    export!({
        match Chan::new(elem_size, capacity) {
            Some(c) => handle::new(c),
            None => null_mut(),
        }
    })
}

/// Frees a channel. `GS_EBUSY` (and nothing is freed) while goroutines or threads are blocked
/// on it (in a send, receive or select); `GS_EINVAL` for NULL. Values still buffered are
/// dropped. The caller must make sure no other goroutine or thread uses or is about to use the
/// channel; the handle is invalid afterwards. Freeing right after the send or close that woke a
/// `gs_select` (or a timed receive) is fine: the woken call still holds the memory and releases it
/// when it returns.
///
/// # Safety
/// `ch` is NULL or a live handle from `gs_chan_new`; the buffers are as described above.
#[no_mangle]
pub unsafe extern "C" fn gs_chan_free(ch: *mut gs_chan) -> c_int {
    // SAFETY: the caller passes a live handle or NULL.
    export!({ unsafe { handle::free(ch) } })
}

/// Sends the `elem_size` bytes at `elem` (copied; the caller keeps its buffer). Blocks until a
/// receiver takes the value (unbuffered) or there is room in the buffer. `GS_ECLOSED` if the
/// channel is closed, also when it is closed while the sender is blocked (Go panics there).
/// `GS_EINVAL` for a NULL channel, or a NULL `elem` with `elem_size > 0`. Blocks the calling
/// goroutine, or the calling thread outside goroutines; `GS_ESTATE` inside `gs_systemstack`.
///
/// # Safety
/// `ch` is NULL or a live handle from `gs_chan_new`; the buffers are as described above.
#[no_mangle]
pub unsafe extern "C" fn gs_chan_send(ch: *mut gs_chan, elem: *const c_void) -> c_int {
    // SAFETY: argument checks in send_common; the caller's buffer is valid for the call.
    export!({ unsafe { send_common(ch, elem, Wait::Forever) } })
}

/// Like `gs_chan_send`, but never blocks: `GS_EAGAIN` when no receiver waits and the buffer is
/// full. Callable from any thread and inside `gs_systemstack`.
///
/// # Safety
/// `ch` is NULL or a live handle from `gs_chan_new`; the buffers are as described above.
#[no_mangle]
pub unsafe extern "C" fn gs_chan_try_send(ch: *mut gs_chan, elem: *const c_void) -> c_int {
    // SAFETY: as gs_chan_send.
    export!({ unsafe { send_common(ch, elem, Wait::No) } })
}

/// # Safety
/// `ch` is NULL or a live handle; `elem` is NULL or readable for the channel's element size.
#[inline(always)]
unsafe fn send_common(ch: *mut gs_chan, elem: *const c_void, wait: Wait) -> c_int {
    // SAFETY: the caller passes a live handle or NULL.
    let Some(c) = (unsafe { handle::get(ch) }) else { return GS_EINVAL };
    if elem.is_null() && c.elem_size() != 0 {
        return GS_EINVAL;
    }
    tsan_release(ch);
    // SAFETY: elem is readable for elem_size bytes per the API contract.
    unsafe { c.send(elem.cast(), wait) }
}

/// Receives one value into `out` (`elem_size` bytes; `out` may be NULL to discard it). Blocks
/// until a value is available. Buffered values are still received after `gs_chan_close`; once
/// the channel is closed and drained, returns `GS_ECLOSED` at once (`out` is not written), also
/// to receivers blocked when it is closed. `GS_EINVAL` for a NULL channel. Blocks the calling
/// goroutine, or the calling thread outside goroutines; `GS_ESTATE` inside `gs_systemstack`.
///
/// # Safety
/// `ch` is NULL or a live handle from `gs_chan_new`; the buffers are as described above.
#[no_mangle]
pub unsafe extern "C" fn gs_chan_recv(ch: *mut gs_chan, out: *mut c_void) -> c_int {
    // SAFETY: argument checks in recv_common; the caller's buffer is valid for the call.
    export!({ unsafe { recv_common(ch, out, Wait::Forever) } })
}

/// Like `gs_chan_recv`, but never blocks: `GS_EAGAIN` when no value is available (and the
/// channel is not closed). Callable from any thread and inside `gs_systemstack`.
///
/// # Safety
/// `ch` is NULL or a live handle from `gs_chan_new`; the buffers are as described above.
#[no_mangle]
pub unsafe extern "C" fn gs_chan_try_recv(ch: *mut gs_chan, out: *mut c_void) -> c_int {
    // SAFETY: as gs_chan_recv.
    export!({ unsafe { recv_common(ch, out, Wait::No) } })
}

/// Like `gs_chan_recv`, but gives up after `timeout_ns` nanoseconds with `GS_ETIMEDOUT` (`out`
/// not written). `timeout_ns == 0` only takes a value that is ready now (else `GS_ETIMEDOUT`);
/// negative is `GS_EINVAL`. Blocks like `gs_chan_recv`.
///
/// # Safety
/// `ch` is NULL or a live handle from `gs_chan_new`; the buffers are as described above.
#[no_mangle]
pub unsafe extern "C" fn gs_chan_recv_timeout(ch: *mut gs_chan, out: *mut c_void, timeout_ns: i64) -> c_int {
    if timeout_ns < 0 {
        return GS_EINVAL;
    }
    let deadline = crate::sched::nanotime().saturating_add(timeout_ns);
    // SAFETY: as gs_chan_recv.
    export!({ unsafe { recv_common(ch, out, Wait::Until(deadline)) } })
}

/// # Safety
/// `ch` is NULL or a live handle; `out` is NULL or writable for the channel's element size.
#[inline(always)]
unsafe fn recv_common(ch: *mut gs_chan, out: *mut c_void, wait: Wait) -> c_int {
    // SAFETY: the caller passes a live handle or NULL.
    let Some(c) = (unsafe { handle::get(ch) }) else { return GS_EINVAL };
    // SAFETY: out is NULL or writable for elem_size bytes per the API contract.
    let rc = unsafe { c.recv(out.cast(), wait) };
    if rc == GS_OK || rc == GS_ECLOSED {
        tsan_acquire(ch);
    }
    rc
}

/// Closes the channel: no more values may be sent; blocked receivers wake with `GS_ECLOSED`
/// once the buffer is drained, blocked senders with `GS_ECLOSED`. Closing twice returns
/// `GS_ECLOSED`. Never blocks; callable from any thread. The channel is still freed with
/// `gs_chan_free`.
///
/// # Safety
/// `ch` is NULL or a live handle from `gs_chan_new`; the buffers are as described above.
#[no_mangle]
pub unsafe extern "C" fn gs_chan_close(ch: *mut gs_chan) -> c_int {
    export!({
        // SAFETY: the caller passes a live handle or NULL.
        let Some(c) = (unsafe { handle::get(ch) }) else { return GS_EINVAL };
        tsan_release(ch);
        c.close()
    })
}

/// Number of values buffered now (Go's `len(ch)`; 0 for unbuffered channels), or `GS_EINVAL`
/// for NULL. A snapshot: other goroutines may change it at once.
///
/// # Safety
/// `ch` is NULL or a live handle from `gs_chan_new`; the buffers are as described above.
#[no_mangle]
pub unsafe extern "C" fn gs_chan_len(ch: *mut gs_chan) -> i64 {
    export!({
        // SAFETY: the caller passes a live handle or NULL.
        let Some(c) = (unsafe { handle::get(ch) }) else { return GS_EINVAL as i64 };
        c.len() as i64
    })
}

/// The channel's capacity (Go's `cap(ch)`), or `GS_EINVAL` for NULL.
///
/// # Safety
/// `ch` is NULL or a live handle from `gs_chan_new`; the buffers are as described above.
#[no_mangle]
pub unsafe extern "C" fn gs_chan_cap(ch: *mut gs_chan) -> i64 {
    export!({
        // SAFETY: the caller passes a live handle or NULL.
        let Some(c) = (unsafe { handle::get(ch) }) else { return GS_EINVAL as i64 };
        c.cap() as i64
    })
}

/// Go's `select` over `n` cases (any mix of sends and receives, see `gs_case`). Returns the
/// index of the case that fired and sets that case's `status` (`GS_OK`, or `GS_ECLOSED` for a
/// receive from a closed, drained channel or a send on a closed channel); other cases are not
/// written. When several cases are ready, one is picked uniformly at random.
///
/// `timeout_ns`: 0 = Go's `default` (`GS_EAGAIN` when no case is ready; never blocks, callable
/// anywhere); -1 = block until a case fires; > 0 = `GS_ETIMEDOUT` after that long. Cases with a
/// NULL channel are ignored (Go's nil channel): with no usable case, `timeout_ns == -1` returns
/// `GS_EDEADLOCK` (it could never return), > 0 sleeps then returns `GS_ETIMEDOUT`.
/// `GS_EINVAL`: `cases` NULL with `n > 0`, a bad `dir` (also in a case with a NULL channel), a send case with NULL `elem` on a channel
/// with `elem_size > 0`, `timeout_ns < -1`. Blocks like `gs_chan_recv`; the caller owns `cases`
/// and the `elem` buffers, which must stay valid until this returns.
///
/// # Safety
/// `cases` points to `n` cases whose channels are NULL or live and whose `elem` buffers are valid.
#[no_mangle]
pub unsafe extern "C" fn gs_select(cases: *mut gs_case, n: usize, timeout_ns: i64) -> c_int {
    // SAFETY: per the API contract (cases and their buffers valid for the call).
    export!({
        // SAFETY: per the API contract, `cases` holds n cases (read only here, for their channels).
        let all = || if cases.is_null() { &[][..] } else { unsafe { core::slice::from_raw_parts(cases, n) } };
        if crate::sched::sanitizer::tsan() {
            for c in all().iter().filter(|c| c.dir == GS_CASE_SEND) {
                tsan_release(c.chan);
            }
        }
        // SAFETY: per the API contract (cases and their buffers valid for the call).
        let rc = unsafe { crate::sync::select::select(cases, n, timeout_ns) };
        if rc >= 0 && (rc as usize) < n {
            tsan_acquire(all()[rc as usize].chan);
        }
        rc
    })
}
