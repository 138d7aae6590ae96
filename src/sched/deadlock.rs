//! When the scheduler is done (Go's checkdead): every goroutine exited, or every goroutine is
//! asleep for good with no thread that could still wake one (threads.rs), and Go's messages.

use super::debug::dump;
use super::m::{getm, M};
use super::p::{P, P_RUNNING};
use super::timer::TIMER_NEXT;
use super::{live_count, lock_sched, SchedLocked, SCHED};
use crate::base::clock::nanotime;
use crate::base::fatal::FdWriter;
use crate::base::types::*;
use core::ffi::c_int;
use core::fmt::Write;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering::*};

/// Is every goroutine asleep for good? (The scheduler lock is held.)
pub(super) fn check_dead(s: &SchedLocked) -> bool {
    let dead = looks_dead(s);
    // The verdict waits DEADLOCK_GRACE_NS with no thread registering meanwhile: a thread the host
    // created just before gs_run, whose first gs_* call is a moment away, is not counted yet
    // (threads.rs, invariant 1), and without the grace every goroutine waiting for it was declared
    // deadlocked (c-tests/test_sync_foreign_thread).
    let epoch = WAKE_EPOCH.load(SeqCst).wrapping_add(super::threads::registrations());
    let now = nanotime();
    if !dead {
        DEAD_SINCE.store(0, SeqCst);
        return false;
    }
    let since = DEAD_SINCE.load(SeqCst);
    if since == 0 || DEAD_EPOCH.load(SeqCst) != epoch {
        DEAD_EPOCH.store(epoch, SeqCst);
        DEAD_SINCE.store(now, SeqCst);
        // The threads in gs_run/gs_main sleep until then to confirm it (whoever suspects).
        wake_waiting(s);
        return false;
    }
    now - since >= DEADLOCK_GRACE_NS
}

/// How long every goroutine must look asleep for good, with no thread registering as a runtime user
/// meanwhile, before gs_run/gs_main report a deadlock (see check_dead).
pub const DEADLOCK_GRACE_NS: i64 = 50_000_000;
/// When the current deadlock suspicion began (nanotime), 0 for none; and the epoch it began at.
static DEAD_SINCE: AtomicI64 = AtomicI64::new(0);
static DEAD_EPOCH: AtomicU64 = AtomicU64::new(0);

/// The deadline a sleeping gs_run/gs_main thread must wake at to confirm a suspected deadlock.
pub(super) fn dead_check_deadline() -> i64 {
    match DEAD_SINCE.load(SeqCst) {
        0 => i64::MAX,
        t => t + DEADLOCK_GRACE_NS,
    }
}

/// Is every goroutine asleep for good right now? (The scheduler lock is held.)
fn looks_dead(s: &SchedLocked) -> bool {
    // Work queued or a thread woken by a thread outside the scheduler while we look makes the
    // snapshot inconsistent: such threads bump WAKE_EPOCH after queuing (see ready_any), so a
    // change means "not dead" (the M that looks will be woken by that work anyway).
    let epoch0 = WAKE_EPOCH.load(SeqCst);
    asleep_locked(s) && !outside_threads_may_wake() && WAKE_EPOCH.load(SeqCst) == epoch0
}

/// For an embedder with its own rule about threads outside the scheduler (the CPython adapter:
/// only threads that used gostack count, not every idle helper thread of the process): is every
/// goroutine asleep as far as the scheduler can tell (goroutines left, every P idle, no queued
/// work, no timer pending), leaving out whether an outside thread could still wake one?
pub fn asleep_but_for_outside_threads() -> bool {
    asleep_locked(&lock_sched())
}

/// [`check_dead`] without the outside-threads clause. (The scheduler lock is held.)
fn asleep_locked(s: &SchedLocked) -> bool {
    let n = SCHED.nprocs.load(Relaxed);
    if live_count() == 0 || SCHED.npidle.load(Acquire) < n || !s.runq.is_empty() {
        return false;
    }
    if TIMER_NEXT.load(Acquire) != i64::MAX {
        return false;
    }
    // issue #13: goroutines waiting on fds are not asleep for good.
    if super::netpoll::waiters() != 0 {
        return false;
    }
    if SCHED.allp[..n].iter().any(|p| !p.runq.is_empty()) {
        return false;
    }
    // SAFETY: Ms are never freed; lockedq_len is atomic.
    if s.allm.iter().any(|&m| unsafe { (*m).lockedq_len.load(SeqCst) } != 0) {
        return false;
    }
    true
}

/// What a thread in gs_run/gs_main leaves with once every goroutine has exited: `GS_OK`, or
/// [`MAIN_GOEXIT`] for a gs_main whose goroutine ended by gs_exit (Go: `no goroutines (main called
/// runtime.Goexit) - deadlock!`).
///
/// # Safety
/// `m` is the calling thread's M.
pub(super) unsafe fn all_done_status(m: *mut M) -> c_int {
    // SAFETY: our own M; its MainWait lives in the gs_main frame below us.
    unsafe {
        let mw = (*m).main_wait;
        if !mw.is_null() && (*mw).goexit.load(Acquire) {
            MAIN_GOEXIT
        } else {
            GS_OK
        }
    }
}

/// Internal status of [`run`]: gs_main's goroutine called gs_exit and every other goroutine has
/// exited since. Never returned to C (gs_main turns it into Go's fatal message).
pub const MAIN_GOEXIT: c_int = -1000;

/// Whether every goroutine has exited, counted exactly: under the scheduler lock no P can start
/// running (Ps become RUNNING only under it), so when no P but `held` (the caller's own, which
/// runs no goroutine now) is RUNNING, no goroutine runs anywhere and the per-P counters of
/// [`live_count`] stand still while they are summed. (A thread outside the scheduler may spawn
/// at the same moment; it then waits for the next gs_run, as it would a moment later.)
pub fn all_done_locked(_s: &SchedLocked, held: *mut P) -> bool {
    let others_run = SCHED.allp.iter().any(|p| p.status.load(Acquire) == P_RUNNING && !core::ptr::eq(p, held));
    !others_run && live_count() == 0
}

/// [`all_done_locked`] for a caller that holds its M's P (or none) and not the scheduler lock.
pub fn all_done() -> bool {
    let m = getm();
    // SAFETY: our own M, if any.
    let held = if m.is_null() { null_mut() } else { unsafe { (*m).p } };
    all_done_locked(&lock_sched(), held)
}

/// When every goroutine has exited and no P runs ([`all_done_locked`] with none held), wakes the
/// threads sleeping in gs_run/gs_main. For a thread leaving the scheduler, once it has released
/// its P (schedule.rs: leave_scheduler): woken while that P still ran, a sleeper would look,
/// see a P running, take it for a goroutine and sleep again, for good (two gs_run threads
/// sharing one P hung that way under qemu: c-tests/test_mn_pin_handoff).
pub(super) fn wake_if_all_done() {
    let s = lock_sched();
    if all_done_locked(&s, null_mut()) {
        wake_waiting(&s);
    }
}

/// Wakes every thread sleeping in gs_run/gs_main (the last goroutine exited, or every goroutine
/// is asleep for good). The scheduler lock is held.
pub(super) fn wake_waiting(s: &SchedLocked) {
    for &w in &s.proc.waiting {
        // SAFETY: Ms are never freed.
        unsafe { (*w).note.wakeup() };
    }
}

// ---- threads outside the scheduler (for deadlock detection) -------------------------------------
//
// Any thread that used the runtime and is not a scheduler thread could still call in and wake a
// goroutine (a C host can have threads that Go never would). So goroutines are declared deadlocked
// only when every registered thread (threads.rs) is either inside the scheduler (a worker, or in
// gs_run/gs_main) or blocked in a gostack call.

/// Bumped by threads outside the scheduler after they queue work or unblock a thread.
pub(super) static WAKE_EPOCH: AtomicU64 = AtomicU64::new(0);

/// Threads inside the scheduler: workers, and threads in gs_run/gs_main.
static IN_SCHED: AtomicI64 = AtomicI64::new(0);
/// Threads outside the scheduler blocked in a gostack call (channel receive, mutex, ...).
static BLOCKED: AtomicI64 = AtomicI64::new(0);

/// Could a thread outside the scheduler still wake a goroutine? (threads.rs, invariant 3.)
fn outside_threads_may_wake() -> bool {
    // Blocked first: a thread that blocks after this read was running before it (counted).
    let blocked = BLOCKED.load(SeqCst);
    let in_sched = IN_SCHED.load(SeqCst);
    super::threads::users() - in_sched - blocked > 0
}

/// A registered thread exited (threads.rs, invariant 4): the threads sleeping in gs_run/gs_main
/// check for a deadlock again.
pub(crate) fn recheck_deadlock() {
    let s = lock_sched();
    wake_waiting(&s);
}

/// Fork child (fork.rs): the one thread left is inside the scheduler or not; nobody is blocked.
pub(crate) fn reset_thread_counts(in_sched: i64) {
    IN_SCHED.store(in_sched, SeqCst);
    BLOCKED.store(0, SeqCst);
}

/// Fork child: the stall monitor thread does not exist there (started again on demand).
pub(crate) fn reset_monitor_after_fork() {
    super::monitor::reset_after_fork();
}

/// Is any thread inside the scheduler (for the stall monitor)?
pub(crate) fn anyone_in_scheduler() -> bool {
    IN_SCHED.load(Acquire) > 0
}

pub(crate) fn in_sched_enter() {
    IN_SCHED.fetch_add(1, AcqRel);
    super::monitor::wake_on_enter();
}

pub(crate) fn in_sched_leave() {
    IN_SCHED.fetch_sub(1, AcqRel);
}

/// A thread outside the scheduler blocks in a runtime call without a deadline (the sync layer):
/// while blocked it cannot wake anyone (a timed wait ends by itself, so it does not count). Returns true; whoever ends the wait (the waker, before waking it, or the
/// thread itself on a timeout) calls [`ext_unblock_other`] exactly once.
pub fn ext_block() -> bool {
    BLOCKED.fetch_add(1, SeqCst);
    true
}

/// Counts a thread blocked by [`ext_block`] as running again.
pub fn ext_unblock_other() {
    BLOCKED.fetch_sub(1, SeqCst);
    WAKE_EPOCH.fetch_add(1, SeqCst);
}

/// gs_main's goroutine called gs_exit and every other goroutine has exited: Go's message, exit(2).
pub fn main_goexit_deadlock() -> ! {
    let mut w = FdWriter::stderr();
    let _ = w.write_str("fatal error: no goroutines (main called gs_exit) - deadlock!\n");
    drop(w);
    // SAFETY: exit runs atexit handlers; fine from a thread outside goroutines.
    unsafe { libc::exit(2) }
}

/// gs_main found its goroutine asleep for good: Go's message, the dump, exit(2).
pub fn main_deadlock() -> ! {
    let mut w = FdWriter::stderr();
    let _ = w.write_str("fatal error: all goroutines are asleep - deadlock!\n\n");
    drop(w);
    dump(2);
    // SAFETY: exit runs atexit handlers; fine from a thread outside goroutines.
    unsafe { libc::exit(2) }
}
