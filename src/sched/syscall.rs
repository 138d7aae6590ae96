//! Blocking calls that do not stall the scheduler (issue #13; Go's entersyscall/exitsyscall and
//! sysmon's retake), and the sysmon thread.
//!
//! `gs_blocking(fn, arg)` runs `fn(arg)` on the calling goroutine's thread, on its g0 stack (the
//! thread's own, as gs_systemstack: a blocking library call gets the stack it expects). Around
//! the call:
//!
//! ```text
//!  goroutine G on M (holds P)           sysmon thread
//!  entersyscall: rec {m, p, since} -> CALLS, M.p = null (spawns/readies from fn go global)
//!  fn(arg) ...                         every call older than RETAKE_AFTER_NS with work around
//!                                      (P's queue, global queue, timers, fd waiters) or older
//!                                      than IDLE_RETAKE_NS: CAS rec IN_CALL -> RETAKEN, move
//!                                      the P's goroutines pinned to M to M's private queue,
//!                                      hand the P to an idle M or a new worker (wakep)
//!  exitsyscall: CAS rec IN_CALL -> DONE ok: M.p = p again (fast path, no lock)
//!               else: G queued for M (pinned) or globally, M schedules: it waits for a P
//! ```
//!
//! Protocol (invariants):
//! 1. `rec.state` decides who owns the P: the first CAS out of IN_CALL wins. The M's thread
//!    touches neither the P nor `M.p` while `fn` runs; after losing, it never touches the P.
//! 2. `rec` lives in `blocking`'s frame; it is on `CALLS` (under its lock) from before `fn` to
//!    after the CAS on return, and sysmon uses it only under that lock.
//! 3. While a P is handed off (`HANDED > 0`) worker threads are allowed also with one P
//!    (m::workers_allowed): someone must run the goroutines that may move.
//!
//! Pinned goroutines (the caveat, docs/DESIGN.md): a goroutine that has run stays on its thread
//! (C code caches `&errno`), so the goroutines pinned to the blocked thread wait for `fn` to
//! return; the P's other goroutines (never run, or migratable), and every other thread's, keep
//! running. With one P, that is: goroutines not started yet, and GS_SPAWN_MIGRATABLE ones.

use super::timer::TIMER_NEXT;
use super::*;
use crate::arch::RawFn;
use crate::base::clock::{nanotime, nanotime_coarse};
use crate::base::futex::Mutex as FMutex;
use crate::base::types::*;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

/// How long a blocking call runs before its P may be handed to another thread (Go's sysmon
/// starts at 20 us).
pub const RETAKE_AFTER_NS: i64 = 20_000;
/// A call with no other work around keeps its P this long (Go: 10 ms), then gives it up anyway.
pub const IDLE_RETAKE_NS: i64 = 10_000_000;

const IN_CALL: u32 = 0;
const RETAKEN: u32 = 1;
const DONE: u32 = 2;

struct Call {
    m: *mut M,
    p: *mut P,
    since: i64,
    state: AtomicU32,
}

struct Calls(Vec<*const Call>);
// SAFETY: the records are only read under the lock while their owners keep them alive
// (invariant 2).
unsafe impl Send for Calls {}

static CALLS: FMutex<Calls> = FMutex::new(Calls(Vec::new()));
static NCALLS: AtomicUsize = AtomicUsize::new(0);
/// Bumped by every call that starts (sysmon's re-check after publishing its deadline).
static CALL_SEQ: AtomicU64 = AtomicU64::new(0);
/// Ps handed off and not yet back (invariant 3).
static HANDED: AtomicUsize = AtomicUsize::new(0);

/// Whether a P is handed away from a thread blocked in gs_blocking (m::workers_allowed).
#[inline]
pub fn handed_off() -> bool {
    HANDED.load(Relaxed) != 0
}

/// gs_blocking: runs `f(arg)`; see the module doc. Outside goroutines a direct call.
///
/// # Safety
/// `f` must be safe to call with `arg` on the thread's own stack.
pub unsafe fn blocking(f: RawFn, arg: *mut c_void) -> c_int {
    let (m, g) = match whereami() {
        Where::Goroutine(m, g) => (m, g),
        Where::SystemStack => return GS_ESTATE,
        Where::Outside => {
            // SAFETY: per the contract.
            unsafe { f(arg) };
            return GS_OK;
        }
    };
    // SAFETY: m is this thread's M running g; only this thread touches m.p (invariant 1).
    unsafe {
        let p = (*m).p;
        let call = Call { m, p, since: nanotime(), state: AtomicU32::new(IN_CALL) };
        (*g).waitreason = WaitReason::Syscall;
        {
            let mut c = CALLS.lock();
            c.0.push(&call);
            NCALLS.store(c.0.len(), SeqCst);
        }
        CALL_SEQ.fetch_add(1, SeqCst);
        sysmon_wake(call.since + RETAKE_AFTER_NS);
        (*m).p = null_mut();
        let rc = systemstack(f, arg);
        let err = *libc::__errno_location(); // fn's, for the caller (the slow path makes calls)
        let won = call.state.compare_exchange(IN_CALL, DONE, AcqRel, Acquire).is_ok();
        {
            let mut c = CALLS.lock();
            if let Some(i) = c.0.iter().position(|&x| core::ptr::eq(x, &call)) {
                c.0.swap_remove(i);
            }
            NCALLS.store(c.0.len(), SeqCst);
        }
        (*g).waitreason = WaitReason::None;
        if won {
            (*m).p = p;
        } else {
            // exitsyscall's slow path: wait for a P on g0 (the goroutine queued for its M).
            mcall(m, g, exitsyscall0);
            HANDED.fetch_sub(1, AcqRel);
        }
        *libc::__errno_location() = err; // this thread's (a migratable goroutine may have moved)
        rc
    }
}

/// On g0 after a blocking call lost its P: queues the goroutine where its M (pinned) or any M
/// will find it, and schedules; the M waits for a P there (m::stop_m).
unsafe extern "C" fn exitsyscall0(gp: *mut c_void) {
    let g = gp as *mut G;
    // SAFETY: on g0, g saved by mcall; RUNNABLE and on no queue.
    unsafe {
        let m = enter_m(g);
        (*g).status.store(G_RUNNABLE, Release);
        (*m).curg = null_mut();
        ready_any(g, false);
        schedule(m)
    }
}

/// Takes the P of a blocked call (invariant 1: `call.state` was won by the caller).
///
/// # Safety
/// Under CALLS' lock; the caller won the CAS IN_CALL -> RETAKEN.
unsafe fn retake(call: &Call) {
    // SAFETY: the P is ours now (invariant 1); Ms are never freed.
    unsafe {
        let p = &*call.p;
        let m = call.m;
        let mut mine = runq::GQueue::new();
        let mut others = runq::GQueue::new();
        while let Some(g) = p.runq.get() {
            if (*g).lockedm == m {
                mine.push(g);
            } else {
                others.push(g);
            }
        }
        while let Some(g) = others.pop() {
            if let Err(g) = p.runq.put_tail(g) {
                global_put(&mut lock_sched(), g);
            }
        }
        if !mine.is_empty() {
            let mut q = (*m).lockedq.lock();
            while let Some(g) = mine.pop() {
                q.push(g);
            }
            (*m).lockedq_len.store(q.len(), SeqCst);
        }
        HANDED.fetch_add(1, AcqRel);
        let mut s = lock_sched();
        super::p::pidleput(&mut s, call.p);
        drop(s);
        wakep();
    }
}

/// Whether a blocked call's P would find something to do elsewhere.
fn work_around(p: &P) -> bool {
    !p.runq.is_empty()
        || SCHED.runqsize.load(Relaxed) != 0
        || TIMER_NEXT.load(Relaxed) != i64::MAX
        || netpoll::waiters() != 0
}

// ---- the sysmon thread -------------------------------------------------------------------------

static SYSMON_STARTED: AtomicBool = AtomicBool::new(false);
static SYSMON_NOTE: Note = Note::new();
/// When sysmon will look next (nanotime; i64::MAX: it sleeps until woken).
static SYSMON_NEXT: AtomicI64 = AtomicI64::new(i64::MAX);

/// Makes sure sysmon looks at or before `when`.
fn sysmon_wake(when: i64) {
    if !SYSMON_STARTED.load(Acquire) {
        sysmon_start();
    }
    if SYSMON_NEXT.load(SeqCst) > when {
        SYSMON_NOTE.wakeup();
    }
}

/// Wakes sysmon when goroutines start waiting on fds while it sleeps with nothing to watch
/// (netpoll's starvation check).
pub(crate) fn sysmon_watch_fds() {
    if SYSMON_NEXT.load(SeqCst) == i64::MAX {
        sysmon_wake(nanotime_coarse() + netpoll::POLL_STARVE_NS);
    }
}

#[cold]
fn sysmon_start() {
    if SYSMON_STARTED.swap(true, AcqRel) {
        return;
    }
    // Its signals stay blocked, as the monitor's (spawn_runtime_thread).
    let r = super::threads::spawn_runtime_thread("gostack-sysmon", 256 << 10, |_| sysmon());
    if r.is_err() {
        SYSMON_STARTED.store(false, Release);
    }
}

/// Fork child (fork.rs): the thread does not exist there; no call is in flight.
pub(crate) fn after_fork_child() {
    SYSMON_STARTED.store(false, Relaxed);
    SYSMON_NEXT.store(i64::MAX, Relaxed);
    SYSMON_NOTE.reset();
    HANDED.store(0, Relaxed);
    if CALLS.is_locked() {
        // SAFETY: the child's only thread; the holder was a thread of the parent.
        unsafe { CALLS.force_unlock() };
    }
    let me = getm();
    let mut c = CALLS.lock();
    // The other records were frames of threads that do not exist here. A fork made inside
    // fn: the P went back to the idle list with the rest (fork.rs), so the call returns through
    // the slow path, as if retaken.
    c.0.retain(|&call| {
        // SAFETY: our own thread's record is alive (we are inside its call).
        let call = unsafe { &*call };
        if call.m != me {
            return false;
        }
        call.state.store(RETAKEN, Relaxed);
        HANDED.fetch_add(1, Relaxed);
        true
    });
    NCALLS.store(c.0.len(), Relaxed);
}

fn sysmon() {
    loop {
        let seq0 = CALL_SEQ.load(SeqCst);
        let now = nanotime();
        let mut next = i64::MAX;
        if NCALLS.load(SeqCst) != 0 {
            let c = CALLS.lock();
            for &call in &c.0 {
                // SAFETY: alive while on CALLS, which we hold (invariant 2).
                let call = unsafe { &*call };
                if call.state.load(Acquire) != IN_CALL {
                    continue;
                }
                let age = now - call.since;
                // SAFETY: Ps are static.
                let busy = age >= RETAKE_AFTER_NS && work_around(unsafe { &*call.p });
                if busy || age >= IDLE_RETAKE_NS {
                    if call.state.compare_exchange(IN_CALL, RETAKEN, AcqRel, Acquire).is_ok() {
                        // SAFETY: we won the CAS, under the lock (invariant 1, 2).
                        unsafe { retake(call) };
                    }
                } else if age < RETAKE_AFTER_NS {
                    next = next.min(call.since + RETAKE_AFTER_NS);
                } else {
                    // No work yet: look again soon (work may appear), at the latest at the idle limit.
                    next = next.min((now + 1_000_000).min(call.since + IDLE_RETAKE_NS));
                }
            }
        }
        if netpoll::needs_watch() {
            netpoll::poll_if_starved();
            next = next.min(now + netpoll::POLL_STARVE_NS);
        }
        SYSMON_NEXT.store(next, SeqCst);
        // Re-check after publishing (Dekker with sysmon_wake/sysmon_watch_fds, all SeqCst): a
        // call that started, or a poller that left, meanwhile may have read the old deadline.
        if CALL_SEQ.load(SeqCst) != seq0 || (next == i64::MAX && netpoll::needs_watch()) {
            continue;
        }
        SYSMON_NOTE.sleep(next);
    }
}
