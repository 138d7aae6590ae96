//! Exports that start, stop, switch and schedule goroutines (Go's `go`, `Gosched`, `Goexit`,
//! `time.Sleep`, `GOMAXPROCS`).

use super::*;
use crate::sched;
use crate::sched::grow;
use core::ffi::{c_int, c_void};

/// Fills `*attr` with the defaults: GROWABLE stack (COPY with `GOSTACK_STACK_KIND=copy`) of the
/// default initial size, 1 GiB limit, not migratable, no name. Returns `GS_EINVAL` if `attr` is NULL.
/// # Safety
/// `attr` is NULL or points to writable memory for a `gs_attr`.
#[no_mangle]
pub unsafe extern "C" fn gs_attr_init(attr: *mut gs_attr) -> c_int {
    if attr.is_null() {
        return GS_EINVAL;
    }
    export!(unchecked, {
        // SAFETY: non-NULL, and the caller promises it points to a gs_attr.
        unsafe {
            attr.write(gs_attr {
                stack_kind: sched::copystack::default_kind(),
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
    export!(unchecked, { unsafe { gs_spawn_with(core::ptr::null(), func, arg) } })
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
    export!({
        let Some(f) = func else { return GS_EINVAL as i64 };
        let a = if attr.is_null() {
            // SAFETY: f and arg are the caller's, under gs_spawn's documented contract.
            return match unsafe { sched::spawn_default(f, arg) } {
                Ok(id) => id,
                Err(e) => e as i64,
            };
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
    export!({ sched::yield_now() })
}

/// Ends the calling goroutine now (Go's `runtime.Goexit`); never returns inside a goroutine.
/// Frames above it are discarded without running any cleanup. `GS_ENOTGOROUTINE` outside a
/// goroutine, `GS_ESTATE` inside a `gs_systemstack` function.
#[no_mangle]
pub extern "C" fn gs_exit() -> c_int {
    grow::secure_stack(grow::RUNTIME_ENTRY_STACK);
    export!({ sched::exit_now() })
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
    export!({ sched::run(None) })
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
    export!({
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
    export!({ sched::sleep(nanoseconds) })
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
    export!({
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
    export!(unchecked, { sched::SCHED.nprocs.load(core::sync::atomic::Ordering::Relaxed) as c_int })
}

/// The id of the calling goroutine (also inside its `gs_systemstack` functions), 0 outside one.
/// Like every gs_* call outside a goroutine, registers the calling thread as one that may wake
/// goroutines later (deadlock detection counts such threads; see `gs_run`).
#[no_mangle]
pub extern "C" fn gs_self() -> i64 {
    export!(unchecked, {
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
