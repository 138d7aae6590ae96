//! Exports for the CPython adapter (`import gostack`; see src/embed/cpython.rs). C programs need
//! none of these; they do nothing useful outside a process that runs CPython.

use super::*;
use crate::embed::cpython;
use core::ffi::{c_int, c_void};

/// For Python (through `ctypes.PyDLL`, with the GIL held): starts a goroutine that calls the Python
/// object `callable` with no arguments, under a Python thread state of its own: with `stack_size`
/// 0 on its thread's shared stack (`GS_STACK_COPY`; a FIXED 8 MiB stack if the CPython layout
/// check of src/embed/cpython.rs fails or `GOSTACK_PY_STACK=fixed`), else on a FIXED stack of
/// `stack_size` bytes (committed only as touched). Takes a new reference to `callable`
/// (the caller keeps its own) and drops it when the call returns. An exception escaping the call is
/// passed to `sys.unraisablehook`. Returns the goroutine's id (> 0), `GS_EINVAL` (NULL callable,
/// stack size out of range), `GS_ESTATE` (the process does not run CPython, or the GIL-state slot
/// could not be located), `GS_ENOMEM`.
///
/// # Safety
/// The calling thread holds the GIL and `callable` points to a live Python object.
#[no_mangle]
pub unsafe extern "C" fn gs_py_spawn(callable: *mut c_void, stack_size: usize) -> i64 {
    // SAFETY: per this function's contract.
    export!(unchecked, { unsafe { cpython::spawn(callable, stack_size) } })
}

/// For Python (through `ctypes.PyDLL`, with the GIL held): as [`gs_py_spawn`], but the goroutine
/// calls `callable(*args)` (`args` a tuple, or NULL for no arguments) inside the
/// `contextvars.Context` `context` (entered with `PyContext_Enter` around the call; NULL: none),
/// so that a Python wrapper needs neither a `functools.partial` nor `Context.run`: fewer C
/// frames kept by every parked goroutine. Takes references to the three objects until the call
/// returns. `GS_EINVAL` also if `args` is not a tuple.
///
/// # Safety
/// The calling thread holds the GIL; `callable`, and `args` and `context` unless NULL, point to
/// live Python objects.
#[no_mangle]
pub unsafe extern "C" fn gs_py_spawn_call(
    callable: *mut c_void,
    args: *mut c_void,
    context: *mut c_void,
    stack_size: usize,
) -> i64 {
    // SAFETY: per this function's contract.
    export!(unchecked, { unsafe { cpython::spawn_call(callable, args, context, stack_size) } })
}

/// For Python (through `ctypes.CDLL`, GIL released): the calling thread runs goroutines for at
/// most about `slice_ns` nanoseconds (longer only while a goroutine runs without switching).
/// Returns 0 once no goroutine is left, 1 if some are (call again: in between, the interpreter runs
/// its signal handlers, so Ctrl-C is seen within a slice), `GS_EDEADLOCK` if every goroutine left
/// is blocked for good (as `gs_run`: no timer pending, every thread of the process in the
/// scheduler or blocked in a gostack call), `GS_EINVAL` if `slice_ns <= 0`,
/// `GS_ESTATE` from inside a goroutine or when re-entered. Blocks the calling thread.
#[no_mangle]
pub extern "C" fn gs_py_run(slice_ns: i64) -> c_int {
    export!(unchecked, { cpython::run_slice(slice_ns) })
}

/// For Python (through `ctypes.PyDLL`), from inside a goroutine: ends the calling thread's
/// `gs_py_run` slice at the goroutine's next switch, so that no other goroutine runs before
/// `gs_py_run` returns (`SystemExit` in a goroutine stops `run()` at once; the goroutines not
/// started yet keep their ids and order). No effect on a worker thread. Returns `GS_OK`,
/// `GS_ENOTGOROUTINE` outside goroutines.
#[no_mangle]
pub extern "C" fn gs_py_stop() -> c_int {
    export!(unchecked, { cpython::stop_run() })
}

/// For Python: 1 if goroutines are left and every one is asleep as far as the scheduler can tell
/// (every P idle, nothing queued, no timer pending), not counting whether a thread outside the
/// scheduler could still wake one (the Python side decides that with its own rule: only threads
/// that used gostack count); 0 otherwise.
#[no_mangle]
pub extern "C" fn gs_py_asleep() -> c_int {
    export!(unchecked, { cpython::asleep() })
}

/// For Python (through `ctypes.PyDLL`, with the GIL held, restype `py_object`): a new dict from
/// the names of the switching calls (`gs_yield`, `gs_sleep`, `gs_chan_send`, `gs_chan_recv`,
/// `gs_chan_recv_timeout`, `gs_select`, `gs_waitgroup_wait`, `gs_mutex_lock`, `gs_sema_acquire`,
/// `gs_fd_wait`) and a few hot others (`gs_self`, `gs_chan_try_send`, `gs_chan_try_recv`) to
/// Python built-in functions that call them: same arguments as the C functions, as Python ints
/// (pointers as addresses), the GIL released around the blocking ones, the result as an int.
/// They keep less C stack in a parked goroutine than ctypes calls and convert no arguments.
/// NULL if the CPython API is not found.
///
/// # Safety
/// The calling thread holds the GIL.
#[no_mangle]
pub unsafe extern "C" fn gs_py_fastcalls() -> *mut c_void {
    // SAFETY: per this function's contract.
    export!(unchecked, { unsafe { super::pyfast::table() } })
}
