//! Threads that use the runtime: who could still wake a goroutine (deadlock detection), what a
//! thread gives back when it exits (its M record, its sigaltstack), and what happens when a thread
//! exits where it must not (inside the scheduler: `pthread_exit` or cancellation in a goroutine).
//!
//! Deadlock detection asks "could any thread still wake a goroutine?" and answers it from what the
//! runtime knows, never from `/proc` (a process may have threads that never touch gostack: a
//! logger, a JVM's, a Python interpreter's own):
//!
//! 1. A thread is *registered* (`USERS`) from its first gs_* call made outside a goroutine, or
//!    when it becomes an M (a worker, a thread entering `gs_run`/`gs_main`), until it exits: a
//!    pthread key's destructor unregisters it. Only registered threads can hold handles to the
//!    runtime's objects, so only they can wake anyone.
//! 2. Every thread counted in `deadlock.rs: IN_SCHED` (inside the scheduler) or `deadlock.rs: BLOCKED` (blocked
//!    without deadline in a gostack call) is registered: both counts are entered through exports
//!    that register first.
//! 3. So `USERS - IN_SCHED - BLOCKED` threads are running outside the runtime and may still call in;
//!    while that is > 0 nothing is declared deadlocked.
//! 4. A registered thread that exits makes a deadlock possible that was not before: its destructor
//!    wakes the threads sleeping in `gs_run`/`gs_main` so that they check again.
//! 5. A thread the host created but that has not called in yet is not counted: the verdict waits
//!    `deadlock.rs: DEADLOCK_GRACE_NS` (50 ms) with no new registration, which covers "pthread_create,
//!    then gs_run" where the thread's first call comes a moment later. A thread that calls in
//!    later than that must call any gs_* function first (`gs_self()` is enough).
//!
//! Exit: an M record is not freed (goroutines, queues and sleepers may still hold its address) but
//! goes on `SchedLocked::mfree` for the next thread that becomes an M, which reinitialises every
//! field but the locks (see `getm_or_create`); the sigaltstack the runtime mapped is unmapped. A
//! thread that exits while inside the scheduler (`in_scheduler`, or a goroutine running on it:
//! `pthread_exit` in a goroutine, a cancellation acted on inside one) takes a goroutine's stack and
//! a P with it: that is a Go-style fatal error naming the goroutine, not a silent hang.
//!
//! Cancellation: a thread inside `gs_run`/`gs_main` runs with cancellation disabled (workers
//! always), so `pthread_cancel` of it takes effect at its next cancellation point after it left
//! the scheduler. Rejected: cleanup handlers that hand the P back: the goroutine running when the
//! thread was cancelled is mid-call on a stack nobody can resume, and its locks and waiters are
//! in unknown states.

use super::*;

/// Starts one of the runtime's own threads (a worker M, the monitor, sysmon) with every signal
/// but the synchronous faults blocked from its first instruction (the creator's mask is blocked
/// around the creation, which the new thread inherits; Go's newosproc does the same). A thread
/// started with them open could run a handler before it is an M with a sigaltstack, where the
/// handler's gs_* calls are taken for a host thread's and accepted (a gs_spawn from a profiling
/// handler ran: test_signal_handler under qemu). `f` gets the creator's mask: a worker sets it
/// back once it is an M; the monitor and sysmon keep everything blocked, so process-directed
/// signals go to the program's threads.
pub(crate) fn spawn_runtime_thread<F>(name: &str, stack: usize, f: F) -> std::io::Result<()>
where
    F: FnOnce(libc::sigset_t) + Send + 'static,
{
    let mask = crate::signal::block_async();
    let r = std::thread::Builder::new().name(name.into()).stack_size(stack).spawn(move || f(mask));
    crate::signal::restore_mask(&mask);
    r.map(drop)
}

/// Registered threads alive (invariant 1).
static USERS: AtomicI64 = AtomicI64::new(0);
/// Registrations ever (a deadlock suspicion is reset by any: deadlock.rs: check_dead).
static REGISTRATIONS: AtomicU64 = AtomicU64::new(0);

/// Registrations since the library loaded.
pub fn registrations() -> u64 {
    REGISTRATIONS.load(SeqCst)
}

/// The per-thread record: a pthread key whose value is non-null once the thread registered.
/// A pthread key rather than a Rust `thread_local!` with `Drop`: glibc runs key destructors when
/// a thread ends (return from its function, `pthread_exit`, cancellation) but not on `exit()`,
/// which runs the calling thread's C++/Rust TLS destructors; a goroutine calling `exit(0)` (on a
/// thread inside the scheduler, legitimately) must not look like a thread leaving the scheduler.
static KEY: AtomicU32 = AtomicU32::new(NO_KEY);
const NO_KEY: u32 = u32::MAX;

#[inline(always)]
fn key() -> libc::pthread_key_t {
    let k = KEY.load(Acquire);
    if k != NO_KEY {
        return k;
    }
    make_key()
}

#[cold]
fn make_key() -> libc::pthread_key_t {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut k: libc::pthread_key_t = 0;
        // SAFETY: plain pthread call; the destructor has the C signature.
        if unsafe { libc::pthread_key_create(&mut k, Some(key_destructor)) } == 0 {
            KEY.store(k, Release);
        }
    });
    KEY.load(Acquire)
}

extern "C" fn key_destructor(_value: *mut c_void) {
    thread_exit(true);
}

/// Registers the calling thread (invariant 1); one `pthread_getspecific` after the first call.
/// Called by every export when used outside a goroutine, and when a thread becomes an M.
#[inline]
pub fn register_caller() {
    let k = key();
    if k == NO_KEY {
        return; // no key could be made: thread exits go unnoticed (deadlocks may be missed)
    }
    // SAFETY: a key of ours; the value is a flag, never dereferenced.
    unsafe {
        if libc::pthread_getspecific(k).is_null() {
            libc::pthread_setspecific(k, core::ptr::dangling::<c_void>());
            USERS.fetch_add(1, SeqCst);
            REGISTRATIONS.fetch_add(1, SeqCst);
        }
    }
}

/// Fork child (fork.rs): the calling thread is the only one left.
pub(crate) fn reset_after_fork() {
    let k = KEY.load(Acquire);
    // SAFETY: a key of ours (or none).
    let me = k != NO_KEY && unsafe { !libc::pthread_getspecific(k).is_null() };
    USERS.store(me as i64, SeqCst);
}

/// Registered threads alive (for deadlock.rs: check_dead and gs_stats).
pub fn users() -> i64 {
    USERS.load(SeqCst)
}

/// The calling thread is exiting (its thread-local destructors run).
fn thread_exit(registered: bool) {
    let m = getm();
    if !m.is_null() {
        // SAFETY: our own M; nothing else touches it while we are outside the scheduler.
        unsafe {
            if (*m).in_scheduler || !(*m).curg.is_null() {
                exited_in_scheduler(m);
            }
            release_m(m);
        }
    }
    if registered {
        USERS.fetch_sub(1, SeqCst);
        // Invariant 4: the threads in gs_run/gs_main look again.
        recheck_deadlock();
    }
}

/// A thread left by `pthread_exit` or cancellation while it ran goroutines: fatal.
#[cold]
unsafe fn exited_in_scheduler(m: *mut M) -> ! {
    // SAFETY: our own M.
    let (tid, g) = unsafe { ((*m).tid, (*m).curg) };
    let mut w = FdWriter::stderr();
    if g.is_null() {
        let _ = writeln!(
            w,
            "runtime: thread {tid} is exiting inside gs_run/gs_main (pthread_exit or cancellation in the scheduler)"
        );
    } else {
        // SAFETY: the goroutine running on this thread.
        let goid = unsafe { (*g).goid };
        let _ = writeln!(
            w,
            "runtime: thread {tid} is exiting while goroutine {goid} runs on it (pthread_exit or pthread_cancel inside a goroutine): \
             the goroutine cannot be resumed and the thread's P is lost; end a goroutine with return or gs_exit()"
        );
    }
    drop(w);
    crate::base::fatal::throw("thread exited inside the scheduler")
}

/// Gives the M's resources back and puts its record on the free list.
///
/// # Safety
/// `m` is the calling thread's M, outside the scheduler.
unsafe fn release_m(m: *mut M) {
    // SAFETY: per the contract: our own M, outside the scheduler; its sigaltstack is forgotten
    // before it goes.
    unsafe {
        let mapped = core::mem::take(&mut (*m).altstack);
        (*m).sigstack = (0, 0);
        crate::signal::on_m_exit(mapped);
    }
    let mut s = lock_sched();
    if let Some(i) = s.allm.iter().position(|&x| x == m) {
        s.allm.swap_remove(i);
    }
    s.mfree.push(m);
    drop(s);
    setm(null_mut());
}

// ---- cancellation -----------------------------------------------------------------------------

const PTHREAD_CANCEL_DISABLE: c_int = 1;

extern "C" {
    fn pthread_setcancelstate(state: c_int, oldstate: *mut c_int) -> c_int;
}

/// Disables cancellation for the calling thread; returns the previous state for
/// [`restore_cancel`].
pub fn disable_cancel() -> c_int {
    let mut old = 0;
    // SAFETY: plain pthread call on the calling thread.
    unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut old) };
    old
}

/// Restores the cancellation state saved by [`disable_cancel`] (a pending cancellation is acted on
/// at the thread's next cancellation point).
pub fn restore_cancel(old: c_int) {
    let mut prev = 0;
    // SAFETY: as above.
    unsafe { pthread_setcancelstate(old, &mut prev) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(sig: libc::c_int) -> bool {
        // SAFETY: reads the calling thread's mask into a local set.
        unsafe {
            let mut cur: libc::sigset_t = core::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, core::ptr::null(), &mut cur);
            libc::sigismember(&cur, sig) == 1
        }
    }

    /// A runtime thread runs with process-directed signals blocked from its start (before it
    /// could set anything itself) and the synchronous faults open; its creator's mask is as
    /// before; the mask it is handed is the creator's (what a worker sets back once it is an M).
    #[test]
    fn runtime_threads_start_with_signals_blocked() {
        assert!(!blocked(libc::SIGPROF) && !blocked(libc::SIGINT));
        let (tx, rx) = std::sync::mpsc::channel();
        spawn_runtime_thread("gostack-test", 256 << 10, move |mask| {
            let at_start =
                (blocked(libc::SIGPROF), blocked(libc::SIGINT), blocked(libc::SIGSEGV), blocked(libc::SIGBUS));
            // SAFETY: reads a set handed over by value.
            let handed = unsafe { libc::sigismember(&mask, libc::SIGPROF) };
            crate::signal::restore_mask(&mask);
            tx.send((at_start, handed, blocked(libc::SIGPROF))).unwrap();
        })
        .unwrap();
        let (at_start, handed, after) = rx.recv().unwrap();
        assert_eq!(at_start, (true, true, false, false));
        assert_eq!(handed, 0);
        assert!(!after);
        assert!(!blocked(libc::SIGPROF));
    }
}
