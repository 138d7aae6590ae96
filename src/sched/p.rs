//! The P record (the right to run goroutines), idle Ps and `gs_set_maxprocs`, and putting a
//! runnable goroutine where an M that may run it will find it (`ready_any`, `runqput`; pinned
//! goroutines go to their M's `lockedq`).

use super::copystack;
use super::deadlock::WAKE_EPOCH;
use super::g::G;
use super::m::{getm, unspin, wakep, M};
use super::runq::GQueue;
use super::runq::LocalRunq;
use super::{global_put, lock_sched, SchedLocked, SCHED};
use crate::base::clock::nanotime;
use crate::stack::StackCache;
use core::cell::UnsafeCell;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

pub const MAX_PROCS: usize = 256;

/// A processor: the right to run goroutines, with a local run queue and caches.
pub struct P {
    pub(super) runq: LocalRunq,
    inner: UnsafeCell<PLocal>,
    /// Resumed goroutines (gs_stats.switches); written only by the M holding this P.
    pub(super) switches: AtomicU64,
    /// Goroutines spawned through this P (part of gs_stats.goroutines_total).
    pub(super) spawned: AtomicU64,
    /// Goroutines spawned through this P minus goroutines that exited on it (negative when more
    /// exited here than started here); written only by the M holding this P. The sum over all Ps
    /// plus `SCHED.live` is the number of live goroutines ([`live_count`]): one shared counter
    /// written by every spawn and exit made two Ps spawning at once ~3x slower per goroutine.
    pub(super) live: AtomicI64,
    /// P_IDLE, P_RUNNING or P_DEAD (beyond nprocs).
    pub(super) status: AtomicU32,
    /// Index in SCHED.allp.
    pub(super) index: AtomicUsize,
}

/// State of a P touched only by the M holding it.
pub struct PLocal {
    pub(super) m: *mut M,
    /// Goroutine ids handed out by this P: [goid_next, goid_end) (Go's goidcache).
    pub(super) goid_next: i64,
    pub(super) goid_end: i64,
    pub(super) schedtick: u32,
    /// Goroutines taken from `runnext` in a row (see runq::LocalRunq::get_fair).
    pub(super) next_streak: u32,
    pub(super) gfree: Vec<*mut G>,
    pub(super) stacks: StackCache,
}

// SAFETY: PLocal is only accessed by the M that holds the P (ownership passes under SCHED.lock);
// the rest is atomics.
unsafe impl Sync for P {}

impl P {
    pub(super) const fn new() -> Self {
        P {
            runq: LocalRunq::new(),
            inner: UnsafeCell::new(PLocal {
                m: null_mut(),
                goid_next: 0,
                goid_end: 0,
                schedtick: 0,
                next_streak: 0,
                gfree: Vec::new(),
                stacks: StackCache::new(),
            }),
            switches: AtomicU64::new(0),
            spawned: AtomicU64::new(0),
            live: AtomicI64::new(0),
            status: AtomicU32::new(P_DEAD),
            index: AtomicUsize::new(0),
        }
    }

    /// This P's index in `SCHED.allp` (set once by init_once).
    #[inline(always)]
    pub fn id(&self) -> usize {
        self.index.load(Relaxed)
    }

    /// # Safety
    /// The caller's M must hold this P.
    #[allow(clippy::mut_from_ref)]
    #[inline(always)]
    pub unsafe fn local(&self) -> &mut PLocal {
        // SAFETY: per the contract, only the holder touches PLocal.
        unsafe { &mut *self.inner.get() }
    }
}

pub const P_IDLE: u32 = 0;
pub const P_RUNNING: u32 = 1;
pub const P_DEAD: u32 = 2;

/// Takes an idle P (the scheduler lock is held).
pub(super) fn pidleget(s: &mut SchedLocked) -> *mut P {
    let n = SCHED.nprocs.load(Relaxed);
    while let Some(p) = s.pidle.pop() {
        // SAFETY: Ps live in the static SCHED.allp.
        let pr = unsafe { &*p };
        if pr.id() < n {
            pr.status.store(P_RUNNING, Relaxed);
            SCHED.npidle.store(s.pidle.len(), Relaxed);
            return p;
        }
        pr.status.store(P_DEAD, Relaxed);
    }
    SCHED.npidle.store(0, Relaxed);
    null_mut()
}

/// Releases a P: hands it to the first M waiting for one, else puts it on the idle list.
pub(super) fn pidleput(s: &mut SchedLocked, p: *mut P) {
    // SAFETY: Ps are static; the caller held p and gives it up.
    let pr = unsafe { &*p };
    // SAFETY: as above; nobody holds p now.
    unsafe { pr.local().m = null_mut() };
    if pr.id() >= SCHED.nprocs.load(Relaxed) {
        retire_idle_p(s, pr);
        return;
    }
    // A waiter that already got a P (it can be on both `waiting` and `pwait`) must not get a
    // second: overwriting its nextp would lose the first.
    // SAFETY: Ms are never freed; nextp is only touched under the scheduler lock.
    while s.proc.pwait.front().is_some_and(|&w| unsafe { !(*w).nextp.is_null() }) {
        s.proc.pwait.pop_front();
    }
    if let Some(w) = s.proc.pwait.pop_front() {
        SCHED.npwait.store(s.proc.pwait.len(), Relaxed);
        pr.status.store(P_RUNNING, Relaxed);
        // SAFETY: w is a live M sleeping on its note; nextp is read by it under the lock.
        unsafe {
            (*w).nextp = p;
            (*w).note.wakeup();
        }
        return;
    }
    pr.status.store(P_IDLE, Relaxed);
    s.pidle.push(p);
    SCHED.npidle.store(s.pidle.len(), Relaxed);
}

/// A P beyond nprocs that nobody holds: its queued goroutines (unpinned, see the module doc) go
/// to the global queue.
fn retire_idle_p(s: &mut SchedLocked, p: &P) {
    while let Some(g) = p.runq.get() {
        global_put(s, g);
    }
    p.status.store(P_DEAD, Relaxed);
}

/// Changes the number of Ps; returns the previous number.
pub fn set_maxprocs(n: usize) -> usize {
    let n = n.clamp(1, MAX_PROCS);
    let mut s = lock_sched();
    let old = SCHED.nprocs.swap(n, AcqRel);
    if n > old {
        for i in old..n {
            let p = &SCHED.allp[i];
            if p.status.load(Relaxed) == P_DEAD {
                p.status.store(P_IDLE, Relaxed);
                s.pidle.push(p as *const P as *mut P);
            }
        }
        SCHED.npidle.store(s.pidle.len(), Relaxed);
    } else if n < old {
        // Idle Ps beyond n retire now; held ones when their M next schedules.
        let mut keep = Vec::new();
        for p in s.pidle.drain(..).collect::<Vec<_>>() {
            // SAFETY: static P.
            let pr = unsafe { &*p };
            if pr.id() >= n {
                retire_idle_p(&mut s, pr);
            } else {
                keep.push(p);
            }
        }
        s.pidle = keep;
        SCHED.npidle.store(s.pidle.len(), Relaxed);
    }
    let queued = !s.runq.is_empty();
    drop(s);
    if queued {
        wakep();
    }
    old
}

/// m now holds p.
///
/// # Safety
/// m is the calling thread's M and p was given to it.
pub(super) unsafe fn take_p(m: *mut M, p: *mut P) {
    // SAFETY: per the contract.
    unsafe {
        (*p).local().m = m;
        (*p).status.store(P_RUNNING, Relaxed);
        (*m).p = p;
        (*m).p_since = nanotime();
    }
}

/// Puts a runnable G where an M that may run it will find it. Callable from any thread.
///
/// # Safety
/// `g` is RUNNABLE, on no queue, and owned by the caller.
#[inline(always)]
pub unsafe fn ready_any(g: *mut G, next: bool) {
    // The common case inline (a goroutine waking a partner that may run on its own M, as every
    // channel hand-off does): straight into runnext, no call.
    let m = getm();
    if next && !m.is_null() {
        // SAFETY: our M; only its thread touches m.p; g is ours to queue.
        unsafe {
            let p = (*m).p;
            let lm = (*g).lockedm;
            if !p.is_null() && (lm.is_null() || lm == m) {
                // No wakep for g itself: thieves never take runnext, so another M could only
                // look and go back to sleep (a futex wake-up per message at P=2 once the spinner
                // had given up: GOSTACK_MIGRATE=1 thread-ring 100-130 -> 66-100 ns per hop). The one
                // it displaces goes to the ring, where an idle M may take it.
                if let Some(old) = (*p).runq.put_next(g) {
                    let movable = (*old).lockedm.is_null(); // read while old is still ours
                    runqput(&*p, old, false);
                    if movable && SCHED.nprocs.load(Relaxed) > 1 {
                        wakep();
                    }
                }
                return;
            }
        }
    }
    // SAFETY: per the contract.
    unsafe { ready_any_slow(g, next, m) }
}

/// [`ready_any`] for every other case: pinned to another M, from a thread outside the scheduler,
/// or to the tail of the queue. `m` is the calling thread's M (null if it has none).
///
/// # Safety
/// As [`ready_any`].
#[inline(never)]
unsafe fn ready_any_slow(g: *mut G, next: bool, m: *mut M) {
    // SAFETY: our M (if any); only its thread touches m.p.
    let p = if m.is_null() { null_mut() } else { unsafe { (*m).p } };
    // SAFETY: g is ours to queue.
    let lm = unsafe { (*g).lockedm };
    if !lm.is_null() && (lm != m || p.is_null()) {
        // Pinned to another M (or to this thread while it is outside the scheduler).
        // SAFETY: g is pinned to lm and ours to queue.
        unsafe {
            if lockedq_put(lm, g, p.is_null()) {
                return;
            }
            (*g).lockedm = null_mut(); // its thread left the scheduler: unpinned
        }
    }
    if !p.is_null() {
        // Only another thread could use a wake-up, and it may run only goroutines that can still
        // move: waking it for a pinned one (a channel partner that already ran here) costs a
        // futex round trip for nothing (P=2 ping-pong: 1.4 futex calls per round trip).
        // SAFETY: read before the G is visible on a queue.
        let movable = unsafe { (*g).lockedm.is_null() };
        // SAFETY: this thread's M holds p.
        unsafe { runqput(&*p, g, next) };
        if movable && SCHED.nprocs.load(Relaxed) > 1 {
            wakep();
        }
    } else {
        let mut s = lock_sched();
        global_put(&mut s, g);
        drop(s);
        WAKE_EPOCH.fetch_add(1, SeqCst);
        wakep();
    }
}

/// Puts a runnable G on `p`'s queue.
///
/// # Safety
/// The calling M holds `p`; `g` is RUNNABLE, on no queue, and may run on the calling M.
#[inline]
pub unsafe fn runqput(p: &P, g: *mut G, next: bool) {
    let mut g = g;
    if next {
        match p.runq.put_next(g) {
            None => return,
            Some(old) => g = old,
        }
    }
    if !behind_global() {
        match p.runq.put_tail(g) {
            Ok(()) => return,
            Err(back) => g = back,
        }
    }
    let mut s = lock_sched();
    if SCHED.nprocs.load(Relaxed) != 1 {
        // Go's runqputslow: move half the ring to the global queue, then g. Pinned Gs must not
        // go global, so only a ring without them is halved (the common case for fresh spawns).
        p.runq.take_half_unpinned(&mut s.runq);
        s.spill_from = p.id(); // schedule.rs: global_head_aged
        SCHED.runqsize.store(s.runq.len(), Relaxed);
        // SAFETY: g is ours.
        if unsafe { !(*g).lockedm.is_null() } {
            drop(s);
            // A full ring of pinned work: keep g with its M.
            // SAFETY: g is pinned to this M.
            unsafe { lockedq_push((*g).lockedm, g) };
            return;
        }
    }
    global_put(&mut s, g);
}

/// With one P the queues are FIFO: a G queued while the global queue holds goroutines goes
/// behind them (to the global queue), not ahead in the P's ring.
#[inline(always)]
pub(super) fn behind_global() -> bool {
    SCHED.nprocs.load(Relaxed) == 1 && SCHED.runqsize.load(Relaxed) != 0
}

/// Queues `g`, pinned to `lm`, on lm's private queue and wakes lm; `outside`: the caller is a
/// thread outside the scheduler, which bumps `WAKE_EPOCH` after queuing (deadlock.rs). Returns
/// false, having queued nothing, when lm's thread has left the scheduler (`departed`): the
/// caller then unpins `g` and queues it elsewhere. A copy-stack goroutine is queued all the same:
/// it keeps its pin ([`keeps_pin`]) and waits for the thread to enter the scheduler again.
///
/// # Safety
/// `g` is RUNNABLE, on no queue, pinned to `lm`, and ours to queue.
#[inline]
pub(super) unsafe fn lockedq_put(lm: *mut M, g: *mut G, outside: bool) -> bool {
    // SAFETY: Ms are never freed; per the contract.
    unsafe {
        let mut q = (*lm).lockedq.lock();
        if (*lm).departed.load(Acquire) && !keeps_pin(g) {
            return false;
        }
        q.push(g);
        (*lm).lockedq_len.store(q.len(), SeqCst);
        drop(q);
        if outside {
            WAKE_EPOCH.fetch_add(1, SeqCst);
        }
        // A spinning lm finds g without a wake-up (the note's futex is called only for a
        // sleeper); it stops counting as a spinner now (see unspin).
        unspin(lm);
        (*lm).note.wakeup();
        true
    }
}

/// Whether `g` stays pinned to its thread when that thread leaves the scheduler (gs_run returns,
/// a CPython `run()` slice ends): a copy-stack goroutine does, its bytes are on that thread's
/// slots (copystack.rs, invariant 2); resumed by another thread it would share a slot with the
/// goroutines that thread runs when it comes back (seen: CPython goroutines at 2 Ps moved
/// between threads at slice ends, python/tests/test_copystack.py). It waits for the thread to
/// enter the scheduler again (README: Stacks).
///
/// # Safety
/// `g` is a live G record.
#[inline]
pub(super) unsafe fn keeps_pin(g: *mut G) -> bool {
    // SAFETY: per the contract.
    unsafe { copystack::in_use() && copystack::is_copy(g) }
}

/// Queues a G pinned to `m` on m's private queue (the calling M's own: no wake-up, and it has
/// not departed).
///
/// # Safety
/// g is RUNNABLE, on no queue, pinned to m.
unsafe fn lockedq_push(m: *mut M, g: *mut G) {
    // SAFETY: Ms are never freed.
    unsafe {
        let mut q = (*m).lockedq.lock();
        q.push(g);
        (*m).lockedq_len.store(q.len(), Release);
    }
}

/// Gives up m's P: goroutines pinned to m leave its run queue for m's private queue (or lose their
/// pin when `unpin`... see leave_scheduler), the rest stay with the P.
///
/// # Safety
/// On m's g0; m holds a P.
pub(super) unsafe fn release_p(m: *mut M, keep_pinned: bool) {
    // SAFETY: per the contract.
    unsafe {
        let p = &*(*m).p;
        let mut mine = GQueue::new();
        let mut others = GQueue::new();
        while let Some(g) = p.runq.get() {
            if (*g).lockedm == m {
                if keep_pinned || keeps_pin(g) {
                    mine.push(g);
                } else {
                    (*g).lockedm = null_mut();
                    others.push(g);
                }
            } else {
                others.push(g);
            }
        }
        while let Some(g) = others.pop() {
            if let Err(g) = p.runq.put_tail(g) {
                let mut s = lock_sched();
                global_put(&mut s, g);
            }
        }
        if !mine.is_empty() {
            let mut q = (*m).lockedq.lock();
            while let Some(g) = mine.pop() {
                q.push(g);
            }
            (*m).lockedq_len.store(q.len(), Release);
        }
        let had_work = !p.runq.is_empty();
        let mut s = lock_sched();
        if p.id() >= SCHED.nprocs.load(Relaxed) {
            p.local().m = null_mut();
            while let Some(g) = p.runq.get() {
                global_put(&mut s, g);
            }
            p.status.store(P_DEAD, Relaxed);
        } else {
            pidleput(&mut s, (*m).p);
        }
        (*m).p = null_mut();
        drop(s);
        if had_work {
            wakep();
        }
    }
}
