//! The exported C API. Every `#[no_mangle]` function of the library lives here and only here.
//!
//! Each export checks its arguments, converts them, calls into the runtime and returns a status;
//! `guard!` catches any Rust panic at the boundary and turns it into `GS_EPANIC` (no unwinding
//! crosses into C or through assembly frames).

pub mod python;
pub use crate::base::types;

use crate::arch;
use crate::base::errno;
use crate::sched;
use crate::sched::grow;
use core::ffi::{c_char, c_int, c_void};
pub use python::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
pub use types::*;

/// Runs `$body`, returning `$on_panic` if it panics.
macro_rules! guard {
    ($on_panic:expr, $body:block) => {
        match catch_unwind(AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(_) => $on_panic,
        }
    };
}

/// The common entry of exports that touch runtime state: [`Entry::enter`] (a status code for the
/// function's return type when it refuses, see [`FromCode`]), then `guard!`.
macro_rules! api {
    ($on_panic:expr, $body:block) => {{
        let _entry = match $crate::abi::Entry::enter() {
            Ok(e) => e,
            Err(code) => return $crate::abi::FromCode::from_code(code),
        };
        guard!($on_panic, $body)
    }};
}

/// What every export that touches runtime state does first, and last (on drop).
///
/// - **errno** (issue 20): saved on entry and written back on every return, so that gs_* calls
///   never change it (the runtime's own system calls and futex waits set it: ETIMEDOUT, EAGAIN)
///   and each goroutine keeps its own across a switch: goroutines switch only inside gs_* calls,
///   and the value saved by the call that switched out is restored when that call returns, on
///   whatever thread. This is the per-goroutine save/restore at no cost to the switch itself
///   (measured in docs/PERFORMANCE.md, "errno").
/// - **signal handlers**: `GS_ESTATE` when called from one (signal::in_handler: the stack pointer
///   is on the thread's signal stack), instead of switching
///   stacks under interrupted runtime code.
/// - **deadlock detection**: a call from outside a goroutine registers the thread as one that may
///   wake goroutines (sched::threads).
pub(crate) struct Entry {
    errno: c_int,
}

impl Entry {
    #[inline(always)]
    pub(crate) fn enter() -> Result<Entry, c_int> {
        check_caller()?;
        Ok(Entry { errno: errno::get() })
    }
}

impl Drop for Entry {
    #[inline(always)]
    fn drop(&mut self) {
        // The running thread's errno (a migratable goroutine may be on another thread now).
        errno::set(self.errno);
    }
}

/// The calling-context checks of [`Entry::enter`], without the errno part (for `gs_systemstack`,
/// whose function's errno is the caller's to see). No M is needed on this path (it runs on every
/// call): the signal stack is in the thread's own words, and `%fs:0x70` tells a goroutine
/// (non-zero) from everything else.
#[inline(always)]
fn check_caller() -> Result<(), c_int> {
    if crate::signal::in_handler() {
        return Err(GS_ESTATE);
    }
    if arch::tls_stack_guard() == 0 {
        // Outside a goroutine (or on g0).
        register_caller();
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn register_caller() {
    sched::threads::register_caller();
}

/// The value an export returns for a refused call with status `code`: the code for `int` and
/// `int64_t` results, NULL for constructors.
pub(crate) trait FromCode {
    fn from_code(code: c_int) -> Self;
}

impl FromCode for c_int {
    fn from_code(code: c_int) -> Self {
        code
    }
}

impl FromCode for i64 {
    fn from_code(code: c_int) -> Self {
        code as i64
    }
}

impl<T> FromCode for *mut T {
    fn from_code(_: c_int) -> Self {
        core::ptr::null_mut()
    }
}

mod sync;
pub use sync::*;

/// Fills `*attr` with the defaults: GROWABLE stack of the default initial size, 1 GiB limit, not
/// migratable, no name. Returns `GS_EINVAL` if `attr` is NULL.
/// # Safety
/// `attr` is NULL or points to writable memory for a `gs_attr`.
#[no_mangle]
pub unsafe extern "C" fn gs_attr_init(attr: *mut gs_attr) -> c_int {
    if attr.is_null() {
        return GS_EINVAL;
    }
    guard!(GS_EPANIC, {
        // SAFETY: non-NULL, and the caller promises it points to a gs_attr.
        unsafe {
            attr.write(gs_attr {
                stack_kind: GS_STACK_GROWABLE,
                flags: 0,
                stack_size: 0,
                max_stack_size: 0,
                name: core::ptr::null(),
            })
        };
        GS_OK
    })
}

/// Starts a goroutine running `func(arg)` with default attributes. Returns its id (> 0), or a
/// negative `GS_E*` code: `GS_EINVAL` if `func` is NULL, `GS_ENOMEM` if no stack could be reserved.
/// A GROWABLE goroutine (the default) takes its stack when it first runs, so goroutines spawned
/// in a burst reuse warm stacks; running out of memory then is fatal, as in Go (a FIXED stack is
/// reserved by the spawn itself, and failing is `GS_ENOMEM`).
///
/// Callable from any thread, inside or outside goroutines. The goroutine runs when a thread
/// schedules it (`gs_run`/`gs_main`). `arg` is passed through untouched; the caller keeps
/// ownership of whatever it points to.
/// # Safety
/// `func` must be safe to call with `arg` later, on any runtime thread.
#[no_mangle]
pub unsafe extern "C" fn gs_spawn(func: gs_fn, arg: *mut c_void) -> i64 {
    // SAFETY: NULL attr means defaults.
    guard!(GS_EPANIC as i64, { unsafe { gs_spawn_with(core::ptr::null(), func, arg) } })
}

/// Like `gs_spawn`, with attributes (`attr == NULL` means defaults; see `gs_attr`). The attribute
/// block and its name are copied: the caller may free them when this returns.
/// # Safety
/// `attr` is NULL or points to a valid `gs_attr` whose `name` is NULL or NUL-terminated; `func` must
/// be safe to call with `arg` later, on any runtime thread.
#[no_mangle]
pub unsafe extern "C" fn gs_spawn_with(attr: *const gs_attr, func: gs_fn, arg: *mut c_void) -> i64 {
    // Spawning may carve a new arena (allocation, system calls) on the caller's stack.
    grow::secure_stack(2 * grow::RUNTIME_ENTRY_STACK);
    api!(GS_EPANIC as i64, {
        let Some(f) = func else { return GS_EINVAL as i64 };
        let a = if attr.is_null() {
            sched::Attr::default_attr()
        } else {
            // SAFETY: the caller promises a valid gs_attr with a NUL-terminated or NULL name.
            match unsafe { sched::Attr::from_c(&*attr) } {
                Ok(a) => a,
                Err(e) => return e as i64,
            }
        };
        // SAFETY: f and arg are the caller's, under gs_spawn's documented contract.
        match unsafe { sched::spawn(a, f, arg) } {
            Ok(id) => id,
            Err(e) => e as i64,
        }
    })
}

/// Lets other goroutines run (Go's `runtime.Gosched`); the caller is queued behind them (FIFO).
/// `GS_ENOTGOROUTINE` outside a goroutine, `GS_ESTATE` inside a `gs_systemstack` function.
#[no_mangle]
pub extern "C" fn gs_yield() -> c_int {
    grow::secure_stack(grow::RUNTIME_ENTRY_STACK);
    api!(GS_EPANIC, { sched::yield_now() })
}

/// Ends the calling goroutine now (Go's `runtime.Goexit`); never returns inside a goroutine.
/// Frames above it are discarded without running any cleanup. `GS_ENOTGOROUTINE` outside a
/// goroutine, `GS_ESTATE` inside a `gs_systemstack` function.
#[no_mangle]
pub extern "C" fn gs_exit() -> c_int {
    grow::secure_stack(grow::RUNTIME_ENTRY_STACK);
    api!(GS_EPANIC, { sched::exit_now() })
}

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
    guard!(GS_EPANIC, { unsafe { sched::systemstack(f, arg) } })
}

/// The calling thread joins the scheduler and runs goroutines until every goroutine has exited;
/// then returns `GS_OK`; returns `GS_EDEADLOCK` if the remaining goroutines are all parked with no
/// timer pending and no live thread outside the scheduler that has used the runtime (and so might
/// still wake one): a thread counts from its first gs_* call (any; `gs_self()` will do) until it
/// exits, and while it is blocked in a gostack call it does not. The verdict is given after 50 ms
/// in that state with no thread making its first call meanwhile; threads that never call gostack
/// do not matter. `GS_ESTATE` when called from inside a goroutine (or a `gs_systemstack`
/// function) or re-entered. Blocks the calling thread.
#[no_mangle]
pub extern "C" fn gs_run() -> c_int {
    api!(GS_EPANIC, { sched::run(None) })
}

/// Go's `main`: runs `func(arg)` as a goroutine, the calling thread joining the scheduler, and
/// returns `GS_OK` when `func` returns. Other goroutines are not waited for (returning from C's
/// `main` then ends them, as in Go). `GS_EINVAL` if `func` is NULL; `GS_ESTATE` from inside a
/// goroutine. If `func`'s goroutine can never be woken again (every goroutine asleep, no timer
/// pending), prints Go's `fatal error: all goroutines are asleep - deadlock!` with a dump of every
/// goroutine and exits the process with status 2. If `func`'s goroutine ends with `gs_exit()`
/// (Go's `runtime.Goexit` in `main`), `gs_main` does not return: the other goroutines run on, and
/// once they have all exited the process exits with status 2 and Go's `fatal error: no goroutines
/// (main called gs_exit) - deadlock!`.
/// # Safety
/// `func` must be safe to call with `arg` on a goroutine.
#[no_mangle]
pub unsafe extern "C" fn gs_main(func: gs_fn, arg: *mut c_void) -> c_int {
    let Some(f) = func else { return GS_EINVAL };
    api!(GS_EPANIC, {
        match sched::run(Some((f, arg))) {
            GS_EDEADLOCK => sched::main_deadlock(),
            sched::MAIN_GOEXIT => sched::main_goexit_deadlock(),
            st => st,
        }
    })
}

/// Parks the calling goroutine for at least `nanoseconds` (other goroutines run meanwhile); from a
/// thread outside goroutines, sleeps that thread. `GS_EINVAL` if negative, `GS_ESTATE` inside a
/// `gs_systemstack` function.
#[no_mangle]
pub extern "C" fn gs_sleep(nanoseconds: i64) -> c_int {
    api!(GS_EPANIC, { sched::sleep(nanoseconds) })
}

/// Sets the number of Ps (threads running goroutines at once) to `n` and returns the previous
/// number; `n == 0` only returns the current number; `n < 0` is `GS_EINVAL`. Values above 256 are
/// capped. Callable from any thread, any time. With one P there are no worker threads: goroutines
/// run in the threads inside `gs_run`/`gs_main`, one at a time, and yields are strictly FIFO.
#[no_mangle]
pub extern "C" fn gs_set_maxprocs(n: c_int) -> c_int {
    if n < 0 {
        return GS_EINVAL;
    }
    api!(GS_EPANIC, {
        if n == 0 {
            sched::SCHED.nprocs.load(core::sync::atomic::Ordering::Relaxed) as c_int
        } else {
            sched::set_maxprocs(n as usize) as c_int
        }
    })
}

/// The number of Ps (env `GOSTACK_MAXPROCS`, default: online CPUs).
#[no_mangle]
pub extern "C" fn gs_maxprocs() -> c_int {
    guard!(GS_EPANIC, { sched::SCHED.nprocs.load(core::sync::atomic::Ordering::Relaxed) as c_int })
}

/// Writes a Go-style dump of every goroutine to file descriptor `fd`: `goroutine N [state or
/// wait reason]:` followed by its stack bounds, kind, name and thread. `GS_EINVAL` if `fd` is not
/// an open file descriptor or a write to it fails (closed pipe, full disk).
#[no_mangle]
pub extern "C" fn gs_dump(fd: c_int) -> c_int {
    if fd < 0 {
        return GS_EINVAL;
    }
    api!(GS_EPANIC, { sched::dump(fd) })
}

/// The id of the calling goroutine (also inside its `gs_systemstack` functions), 0 outside one.
/// Like every gs_* call outside a goroutine, registers the calling thread as one that may wake
/// goroutines later (deadlock detection counts such threads; see `gs_run`).
#[no_mangle]
pub extern "C" fn gs_self() -> i64 {
    guard!(GS_EPANIC as i64, {
        let g = sched::getg();
        if g.is_null() {
            // A host thread may call this to count as one that can wake goroutines (gs_run).
            sched::threads::register_caller();
            0
        } else {
            // SAFETY: the goroutine running on this thread.
            unsafe { (*g).goid() }
        }
    })
}

/// A static, NUL-terminated description of a status code (never NULL).
#[no_mangle]
pub extern "C" fn gs_strerror(code: c_int) -> *const c_char {
    guard!(c"internal error".as_ptr(), { strerror(code) })
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

/// Fills `*out` with runtime-wide counters. `GS_EINVAL` if `out` is NULL.
/// # Safety
/// `out` is NULL or points to writable memory for a `gs_stats`.
#[no_mangle]
pub unsafe extern "C" fn gs_get_stats(out: *mut gs_stats) -> c_int {
    if out.is_null() {
        return GS_EINVAL;
    }
    grow::secure_stack(2 * grow::RUNTIME_ENTRY_STACK);
    api!(GS_EPANIC, {
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
    api!(GS_EPANIC, {
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
    api!(GS_EPANIC, { grow::morestack(sp, bytes, false) })
}

/// The library's version, "MAJOR.MINOR.PATCH" (static string).
#[no_mangle]
pub extern "C" fn gs_version() -> *const c_char {
    guard!(core::ptr::null(), { concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast() })
}
