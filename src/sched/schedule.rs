//! M:N scheduling: Ms (OS threads) acquire Ps and run goroutines; idle Ms sleep; work is
//! balanced by stealing (Go's proc.go, reduced to what a C runtime needs).
//!
//! - **Ps.** `nprocs` of them (`GOSTACK_MAXPROCS`, default: online CPUs). An M must hold a P to
//!   run goroutines. Idle Ps sit on `pidle`; a P released while some M waits for one (`pwait`:
//!   threads entering gs_run, Ms with pinned work) is handed to that M directly.
//! - **Where goroutines run.** With more than one P, worker Ms are started on demand (up to
//!   nprocs), so goroutines spawned from any thread run in the background as in Go. A thread in
//!   gs_run/gs_main is an M too; when it finds no idle P it queues on `pwait`, and the M holding a
//!   P hands it over at its next switch once it has held it for `HANDOFF_SLICE_NS`. With one P
//!   there are no worker threads: goroutines run in the threads inside gs_run/gs_main, one at a
//!   time, deterministically (yields strictly FIFO).
//! - **Pinning** (DESIGN.md, decided): C compilers cache TLS addresses such as errno's across
//!   calls, so a goroutine resumed on another thread mid-function could read another thread's
//!   errno. A goroutine may be stolen before its first run; from then on it is pinned to its M
//!   (`G::lockedm`) unless spawned with GS_SPAWN_MIGRATABLE or GOSTACK_MIGRATE=1. Invariant: a
//!   P's run queue holds only goroutines its holder may run; pinned goroutines readied by another
//!   M go to their M's `lockedq`, and an M moves its pinned goroutines out of a P it gives away.
//!   A thread that returns from gs_run/gs_main unpins the goroutines pinned to it (they would
//!   otherwise wait for that thread to come back).
//! - **Spinning** (issue 21). An M that finds nothing to run keeps its P and looks for work for
//!   a while before it sleeps (Go's spinning M, [`SPIN_NS`], adapted up to [`SPIN_MAX_NS`]): a
//!   goroutine pinned to it that another thread readies is then found with a load, not a futex
//!   wake-up. At most half the Ps in use and half the CPUs spin; `wakep` wakes (or starts) an M
//!   only when a P is idle and none spins (Go's nmspinning rule); a thread that queues a goroutine
//!   for a spinning M uncounts it (`unspin`), so the waker's own M may spin next.
//! - **Placement** (issue 21). New goroutines start on the spawner's P. An idle M takes queued
//!   goroutines from another P only when that pays ([`STEAL_WINDOW_NS`]): the P's goroutines run
//!   long between switches, or its ring holds goroutines that yielded (more ready work than it
//!   can run), or they waited [`STEAL_AGED_NS`]. A burst that overflowed into the global queue
//!   goes back to its P (`SchedLocked::spill_from`). Readied goroutines go to `runnext`, which is
//!   never stolen (and wakes nobody).
//! - **Deadlock.** When the last M goes idle with goroutines left, no timer pending, no queued
//!   work, and every thread that used the runtime either inside the scheduler or blocked in a
//!   gostack call (any other such thread could still wake someone; threads.rs), every thread in
//!   gs_run/gs_main is told: gs_run returns GS_EDEADLOCK, gs_main prints Go's message. A thread
//!   that used the runtime and exits makes them look again.

use super::deadlock::{all_done, all_done_status, in_sched_enter, in_sched_leave, wake_if_all_done};
use super::g::{MainWait, G, G_RUNNABLE};
use super::grow;
use super::m::{getm, getm_or_create, is_spinning, stop_m, unspin, wakep, workers_allowed, M};
use super::p::{keeps_pin, lockedq_put, pidleget, pidleput, release_p, runqput, take_p, P};
use super::park::{execute, whereami, Where};
use super::runq;
use super::runq::GQueue;
use super::spawn::{spawn_inner, Attr};
use super::timer::{run_timers, timer_due};
use super::{global_get, global_put, lock_sched, remove, SchedLocked, NO_SPILL, SCHED};
use crate::arch;
use crate::arch::RawFn;
use crate::base::clock::nanotime;
use crate::base::clock::nanotime_coarse;
use crate::base::types::*;
use core::ffi::c_int;
use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, Ordering::*};

/// Every this many schedules a P looks at the global run queue before its own (Go's 61: a prime,
/// so that it does not fall into step with a periodic pattern of goroutines), so that goroutines
/// queued globally are not starved by a busy local queue.
pub(crate) const GLOBAL_QUEUE_EVERY: u32 = 61;

/// How long an M keeps its P while another thread waits for one.
pub const HANDOFF_SLICE_NS: i64 = 1_000_000;

/// Finds a runnable G for m (which holds p).
///
/// # Safety
/// On m's g0; m holds p.
#[inline(always)]
pub unsafe fn find_runnable(m: *mut M, p: &P) -> Option<*mut G> {
    // SAFETY: per the contract.
    unsafe {
        // Goroutines pinned to this M that were readied elsewhere come first (Go's runnext
        // spirit: they were woken).
        if (*m).lockedq_len.load(Acquire) != 0 {
            let mut q = (*m).lockedq.lock();
            let g = q.pop();
            (*m).lockedq_len.store(q.len(), Release);
            if g.is_some() {
                return g;
            }
        }
        let pl = p.local();
        pl.schedtick = pl.schedtick.wrapping_add(1);
        let nprocs = SCHED.nprocs.load(Relaxed);
        // Fairness with several Ps: look at the global queue every 61st schedule (Go's constant).
        // Not while spinning: the local queue is empty then, and the global queue is looked at
        // below under the placement rule (global_head_aged).
        if nprocs > 1
            && pl.schedtick.is_multiple_of(GLOBAL_QUEUE_EVERY)
            && SCHED.runqsize.load(Relaxed) != 0
            && !is_spinning(m)
        {
            let mut misplaced = GQueue::new();
            let g = global_get_for(m, &mut lock_sched(), &mut misplaced);
            redirect(p, misplaced);
            if g.is_some() {
                return g;
            }
        }
        if let Some(g) = p.runq.get_fair(&mut pl.next_streak) {
            return Some(g);
        }
        if SCHED.runqsize.load(Relaxed) != 0 {
            let mut misplaced = GQueue::new();
            let mut s = lock_sched();
            if nprocs > 1 && !global_head_aged(m, p, &s) {
                drop(s);
                let g = steal(m, p, nprocs);
                (*m).young_work = true;
                return g;
            }
            let first = global_get_for(m, &mut s, &mut misplaced);
            if first.is_some() {
                // Refill the ring with a batch (Go's globrunqget), oldest first.
                let n = (s.runq.len() / nprocs.max(1) + 1).min(runq::RUNQ_SIZE / 2);
                for _ in 0..n {
                    match global_get_for(m, &mut s, &mut misplaced) {
                        Some(g) => {
                            if let Err(g) = p.runq.put_tail(g) {
                                global_put(&mut s, g);
                                break;
                            }
                        }
                        None => break,
                    }
                }
            }
            drop(s);
            redirect(p, misplaced);
            if first.is_some() {
                return first;
            }
        }
        if nprocs > 1 {
            return steal(m, p, nprocs);
        }
        None
    }
}

/// Takes the next goroutine of the global queue that `m` may run. One pinned to another M (with
/// one P a pinned goroutine can be queued globally, and the P can pass to another thread) is set
/// aside in `misplaced` for [`redirect`], after the scheduler lock is released (lock order:
/// an M's lockedq lock is taken before the scheduler lock elsewhere).
fn global_get_for(m: *mut M, s: &mut SchedLocked, misplaced: &mut GQueue) -> Option<*mut G> {
    loop {
        let g = global_get(s)?;
        // SAFETY: a queued G's lockedm is stable while it is queued.
        let lm = unsafe { (*g).lockedm };
        if lm.is_null() || lm == m {
            return Some(g);
        }
        misplaced.push(g);
    }
}

/// Hands goroutines pinned to other Ms to those Ms (or, if their thread left the scheduler,
/// unpins them and queues them on `p`, held by the caller).
fn redirect(p: &P, mut misplaced: GQueue) {
    while let Some(g) = misplaced.pop() {
        // SAFETY: g is RUNNABLE, pinned, and ours to queue.
        unsafe {
            if !lockedq_put((*g).lockedm, g, false) {
                (*g).lockedm = null_mut();
                runqput(p, g, false);
            }
        }
    }
}

/// Placement (issue 21, measured in PERFORMANCE.md "Many Ps"): goroutines spawned in a burst
/// by one goroutine are usually about to talk to each other (a pipeline, a ring, a fan-in),
/// and once run they are pinned to the thread they ran on. Stolen at once by an idle M, a burst
/// is split over threads and every message between the parts crosses threads for the rest of
/// the program. So an idle M takes queued goroutines from another P only when stealing pays:
/// when that P's goroutines run long between switches (it made at most [`STEAL_SLOW_STEPS`]
/// steps — goroutines resumed or queued — in the last [`STEAL_WINDOW_NS`]: CPU-bound work,
/// where a goroutine moved is a quarter of a millisecond or more saved per switch), or when
/// they have waited [`STEAL_AGED_NS`] anyway (a long queue of short jobs).
pub const STEAL_WINDOW_NS: i64 = 1_000_000;
/// See [`STEAL_WINDOW_NS`].
pub const STEAL_SLOW_STEPS: u64 = 4;
/// See [`STEAL_WINDOW_NS`].
pub const STEAL_AGED_NS: i64 = 10_000_000;

/// What a thief has seen of one victim P (times are nanotime; 0: nothing seen yet): goroutines
/// queued before ring index `tail` were there at time `at`, so while the victim's head has not
/// passed `tail` its head goroutine has waited at least `now - at` (once the head passes it, the
/// thief looks again); and the victim had made `steps` steps (goroutines resumed plus queued) at
/// `window`, the start of the current look at its pace. The victim pays nothing for this (no
/// time stamp per goroutine, no write to a line the thief reads).
#[derive(Clone, Copy, Default)]
pub struct Seen {
    tail: u32,
    at: i64,
    steps: u64,
    window: i64,
}

/// Whether `m` (holding `p`) may take the global queue's head now: always, unless it is a
/// goroutine that never ran, put there when another P's ring overflowed (a burst of spawns:
/// `runqput`, `SchedLocked::spill_from`), that has been the head for less than
/// [`STEAL_AGED_NS`]: that P's M takes it back when it runs out of work; others only once it
/// waited. Goroutines queued by threads outside the scheduler belong to no P: anyone takes them
/// (the first M takes a batch, so a few spawned together still start together).
///
/// # Safety
/// `m` is the calling thread's M.
unsafe fn global_head_aged(m: *mut M, p: &P, s: &SchedLocked) -> bool {
    let head = s.runq.peek();
    // SAFETY: a queued G's record is live; its stack is set only by its first run.
    if head.is_null() || s.spill_from == p.id() || s.spill_from == NO_SPILL || unsafe { (*head).stack.lo } != 0 {
        return true;
    }
    let now = nanotime();
    // SAFETY: per the contract: only this thread touches the record.
    let seen = unsafe { &mut (*m).global_seen };
    if seen.0 != head as usize {
        *seen = (head as usize, now);
    }
    now - seen.1 >= STEAL_AGED_NS
}

/// Whether a victim's ring `[h, t)` holds goroutines that have run before (they yielded, or a
/// wake-up pushed them out of `runnext`): its P has more work ready than it can run, so the
/// goroutines that never ran are better started elsewhere at once. A burst of talkers does not
/// look like this (each runs briefly and parks, leaving the ring); CPU-bound goroutines that
/// yield every few microseconds do, long before the pace rule could tell (their first runs
/// all happen within a few slices, and they are pinned after). Looks at the newest
/// [`READY_SCAN`] (yielders go to the tail).
fn holds_ready_work(victim: &P, h: u32, t: u32) -> bool {
    let n = t.wrapping_sub(h).min(READY_SCAN);
    (1..=n).any(|i| {
        let g = victim.runq.slot(t.wrapping_sub(i));
        // SAFETY: G records are never freed. The slot may be stale (its G taken and run since
        // the indices were read): only a G still RUNNABLE counts, and a wrong guess only moves
        // a goroutine early or late.
        unsafe { (*g).status.load(Relaxed) == G_RUNNABLE && !(*g).m.is_null() }
    })
}

/// How many of a victim's newest queued goroutines [`holds_ready_work`] looks at.
const READY_SCAN: u32 = 32;

/// Steals from a random victim's ring (only goroutines that may still move) under the placement
/// rule of [`STEAL_WINDOW_NS`]: half of the ring from a slow victim, else half of what has
/// waited [`STEAL_AGED_NS`], oldest first. Sets `m.young_work` when a victim holds movable
/// goroutines that may not be taken yet (the spinning M then keeps looking rather than sleep:
/// nobody would wake it when they may).
fn steal(m: *mut M, p: &P, nprocs: usize) -> Option<*mut G> {
    let me = p.id();
    // SAFETY: our M; its random state and steal records only its thread touches.
    let (start, seen) = unsafe {
        (*m).young_work = false;
        if (*m).steal_seen.len() < nprocs {
            (*m).steal_seen.resize(nprocs, Seen::default());
        }
        (crate::base::rand::nextn(&mut (*m).rand, nprocs), &mut (*m).steal_seen)
    };
    let mut now = 0;
    for i in 0..nprocs {
        let v = (start + i) % nprocs;
        if v == me {
            continue;
        }
        let victim = &SCHED.allp[v];
        let (h, t) = victim.runq.head_tail();
        if h == t {
            continue;
        }
        // A pinned head: nothing here may move to us (steal_into stops at it too).
        // SAFETY: G records are never freed; lockedm is stable while a G is queued (a stale read
        // only makes us look again later).
        let lm = unsafe { (*victim.runq.slot(h)).lockedm };
        if !lm.is_null() && lm != m {
            continue;
        }
        if now == 0 {
            now = nanotime();
        }
        let rec = &mut seen[v];
        if rec.at == 0 || rec.tail.wrapping_sub(h) as i32 <= 0 {
            // The goroutines seen before have been taken: start watching the ones queued now.
            (rec.tail, rec.at) = (t, now);
        }
        // The victim's pace: a goroutine resumed or one queued is a step (a spawner's burst
        // is busy, not slow).
        let steps = victim.switches.load(Relaxed).wrapping_add(t as u64);
        if rec.window == 0 || steps.wrapping_sub(rec.steps) > STEAL_SLOW_STEPS {
            (rec.steps, rec.window) = (steps, now);
        }
        let before = if now - rec.window >= STEAL_WINDOW_NS || holds_ready_work(victim, h, t) {
            None
        } else if now - rec.at >= STEAL_AGED_NS {
            Some(rec.tail)
        } else {
            // SAFETY: our M.
            unsafe { (*m).young_work = true };
            continue;
        };
        if let Some(g) = victim.runq.steal_into(&p.runq, m, before) {
            return Some(g);
        }
    }
    None
}

/// The scheduler loop, on g0. Never returns: runs a goroutine or leaves the scheduler.
///
/// # Safety
/// On m's g0, entered through gs_asm_mstart or an mcall.
pub unsafe fn schedule(m: *mut M) -> ! {
    // SAFETY: per the contract.
    unsafe {
        loop {
            if (*m).p.is_null() {
                if let Some(st) = stop_m(m) {
                    leave_scheduler(m, st);
                }
                continue;
            }
            let p = &*(*m).p;
            let mw = (*m).main_wait;
            if !mw.is_null() && (*mw).done.load(Acquire) {
                leave_scheduler(m, GS_OK);
            }
            if slice_over(m) {
                leave_scheduler(m, GS_ETIMEDOUT);
            }
            if p.id() >= SCHED.nprocs.load(Relaxed) {
                release_p(m, true);
                continue;
            }
            // With one P, a worker keeps a P only to run goroutines pinned to it.
            if (*m).is_worker && !workers_allowed() && (*m).lockedq_len.load(Acquire) == 0 {
                release_p(m, true);
                continue;
            }
            if SCHED.npwait.load(Relaxed) != 0 && nanotime() - (*m).p_since > HANDOFF_SLICE_NS {
                release_p(m, true);
                continue;
            }
            run_timers();
            // issue #13: goroutines whose fds became ready (netpoll.rs), before spinning and before
            // this M goes idle.
            let polled = || if super::netpoll::poll_nonblock() != 0 { find_runnable(m, p) } else { None };
            if let Some(g) = find_runnable(m, p).or_else(polled).or_else(|| spin(m, p)) {
                // Go's resetspinning: the last spinner found work; there may be more.
                if unspin(m) == Some(true) {
                    wakep();
                }
                execute(m, p, g);
            }
            // The others in gs_run are woken once our P is released (leave_scheduler).
            if !(*m).is_worker && all_done() {
                leave_scheduler(m, all_done_status(m));
            }
            if let Some(st) = stop_m(m) {
                leave_scheduler(m, st);
            }
        }
    }
}

/// How long an M that found nothing to run keeps looking, holding its P, before it sleeps (Go's
/// spinning M): a goroutine pinned to it that another thread readies meanwhile is found with a
/// load instead of a futex wake-up and a thread switch (~10 µs on an idle machine here, ~70 µs
/// under load: PERFORMANCE.md "Many Ps"). Spinning longer than a wake-up costs cannot pay.
pub const SPIN_NS: i64 = 50_000;

/// The longest an M spins: when wake-ups are slow (a loaded machine), an M spins longer, up to
/// this (m.rs: adapt_spin).
pub const SPIN_MAX_NS: i64 = 1_000_000;

/// How long a spinning M polls without giving up its CPU (then it yields it between looks).
const SPIN_PURE_NS: i64 = 10_000;

/// Loads of the M's own queue between two full looks for work while spinning (a full look reads
/// every P's ring and the clock).
const SPIN_POLLS: u32 = 32;

/// Whether `m` may start spinning: more than one P, nobody waiting for a P, and fewer spinning
/// Ms than half the Ps in use (Go's rule: `2 * nmspinning < nprocs - npidle`) and than half the
/// CPUs (spinners beyond the cores steal cycles from the Ms doing the work).
fn may_spin(m: *mut M, nprocs: usize) -> bool {
    if nprocs < 2 || SCHED.npwait.load(Relaxed) != 0 {
        return false;
    }
    // SAFETY: our M; only its thread touches these fields.
    unsafe {
        if is_spinning(m) {
            return true;
        }
        if (*m).is_worker && !workers_allowed() {
            return false;
        }
    }
    let busy = nprocs.saturating_sub(SCHED.npidle.load(Acquire));
    let cap = (busy / 2).min(SCHED.ncpu.load(Relaxed) / 2).max(1);
    let n = SCHED.nmspinning.load(Acquire);
    if n >= cap || SCHED.nmspinning.compare_exchange(n, n + 1, AcqRel, Relaxed).is_err() {
        return false;
    }
    // SAFETY: as above.
    unsafe { (*m).spinning.store(true, Release) };
    true
}

/// m (holding p) found nothing to run: spin for up to `m.spin_ns` ([`SPIN_NS`], adapted up to
/// [`SPIN_MAX_NS`] by m.rs's adapt_spin) looking for work (its pinned goroutines readied by
/// other threads, the global queue, other Ps' rings, due timers), one placement window longer
/// while another P holds movable goroutines that may become stealable (then it sleeps with a
/// deadline to look again, `recheck_at`). Returns with
/// a goroutine (m still counted as spinning: the caller uncounts it) or None, uncounted, when
/// m should sleep or something else needs the scheduler loop (a thread waits for a P, the P
/// retires, gs_main's goroutine is done, a time slice ended).
///
/// # Safety
/// On m's g0; m holds p.
#[cold]
#[inline(never)]
unsafe fn spin(m: *mut M, p: &P) -> Option<*mut G> {
    let nprocs = SCHED.nprocs.load(Relaxed);
    if !may_spin(m, nprocs) {
        return None;
    }
    // SAFETY: per the contract.
    unsafe {
        (*m).recheck_at = i64::MAX;
        let start = nanotime();
        let mut spun_last = 0;
        loop {
            // Between full looks, only what can be taken at once ends the wait early: goroutines
            // readied for this M, or a global queue that the last look did not find too young.
            let young = (*m).young_work;
            for _ in 0..SPIN_POLLS {
                if (*m).lockedq_len.load(Relaxed) != 0 || (!young && SCHED.runqsize.load(Relaxed) != 0) {
                    break;
                }
                core::hint::spin_loop();
            }
            // Past the first microseconds, give the CPU to any other runnable thread between
            // looks (sched_yield returns at once when there is none): with more runnable threads
            // than CPUs (two such programs at once on this 2-CPU machine: 12 s -> 2.4 s for
            // test_sched_spin), the partner this M waits for may be one of them. The price: on a
            // machine loaded by other programs, a yielding spinner may get its CPU back only
            // milliseconds later, and looks less often.
            if spun_last >= SPIN_PURE_NS {
                std::thread::yield_now();
            }
            let mw = (*m).main_wait;
            if SCHED.npwait.load(Relaxed) != 0
                || p.id() >= SCHED.nprocs.load(Relaxed)
                || ((*m).is_worker && !workers_allowed())
                || (!mw.is_null() && (*mw).done.load(Acquire))
                || slice_over(m)
            {
                break;
            }
            run_timers();
            if let Some(g) = find_runnable(m, p) {
                return Some(g);
            }
            let spun = nanotime() - start;
            spun_last = spun;
            // With goroutines elsewhere that may become stealable, spin on through one window
            // of the placement rule, then sleep until the next look (stop_m: recheck_at).
            let spin_ns = (*m).spin_ns;
            if spun >= spin_ns && (!(*m).young_work || spun >= spin_ns + STEAL_WINDOW_NS) {
                (*m).recheck_at = if (*m).young_work { nanotime() + STEAL_WINDOW_NS } else { i64::MAX };
                break;
            }
        }
        // Go's order: stop counting as a spinner, then look once more: a thread that queued work
        // while we were counted skipped its wakep, trusting us to find it.
        unspin(m);
        find_runnable(m, p)
    }
}

/// The checks both hand-offs share: everything `schedule()` and `find_runnable()` look at before
/// they take from the P's queue, and what `enter_m` would have to do for the running goroutine.
/// Returns this M, its running goroutine and its P when a hand-off may proceed. Under a sanitizer
/// never: every switch then goes through g0, where the fiber hooks are (the hand-offs have none,
/// which saves their flag tests on every switch; the flag is set once, before the first goroutine).
///
/// # Safety
/// On a goroutine's own stack.
#[inline(always)]
pub(super) unsafe fn handoff_start() -> Option<(*mut M, *mut G, &'static P)> {
    // SAFETY: m is this thread's M; its fields are only written by this thread (or atomics).
    unsafe {
        let m = getm();
        if m.is_null() {
            return None;
        }
        let (g, p) = ((*m).curg, (*m).p);
        if g.is_null() || p.is_null() || (*m).on_g0 != 0 {
            return None;
        }
        let mw = (*m).main_wait;
        if (*m).lockedq_len.load(Acquire) != 0
            || (!mw.is_null() && (*mw).done.load(Acquire))
            || slice_over(m)
            || ((*m).is_worker && !workers_allowed())
            || SCHED.npwait.load(Relaxed) != 0
            || timer_due()
            || grow::needs_settle(g)
            || super::sanitizer::any()
        {
            return None;
        }
        let pr: &'static P = &*p;
        let nprocs = SCHED.nprocs.load(Relaxed);
        if pr.id() >= nprocs || (nprocs > 1 && pr.local().schedtick.wrapping_add(1).is_multiple_of(GLOBAL_QUEUE_EVERY))
        {
            return None;
        }
        Some((m, g, pr))
    }
}

/// Whether this M's time slice (`leave_at`, gs_py_run) is over. A slice (20 ms for Python) may
/// end a clock tick late: the coarse clock costs a quarter of the precise one, and every switch
/// of a Python goroutine asks (`schedule()` and the hand-offs).
///
/// # Safety
/// `m` is the calling thread's M.
#[inline(always)]
unsafe fn slice_over(m: *mut M) -> bool {
    // SAFETY: per the contract.
    let leave_at = unsafe { (*m).leave_at };
    leave_at != i64::MAX && slice_over_at(leave_at)
}

#[cold]
#[inline(never)]
fn slice_over_at(leave_at: i64) -> bool {
    nanotime_coarse() >= leave_at
}

/// Leaves the scheduler: releases the P (unpinning goroutines pinned to this thread, which may not
/// come back) and resumes the thread inside gs_run/gs_main.
///
/// # Safety
/// On m's g0; m is not a worker.
pub unsafe fn leave_scheduler(m: *mut M, status: c_int) -> ! {
    // SAFETY: per the contract.
    unsafe {
        {
            let mut q = (*m).lockedq.lock();
            (*m).departed.store(true, Release);
            let mut s = lock_sched();
            let mut kept = GQueue::new();
            while let Some(g) = q.pop() {
                if keeps_pin(g) {
                    kept.push(g);
                } else {
                    (*g).lockedm = null_mut();
                    global_put(&mut s, g);
                }
            }
            while let Some(g) = kept.pop() {
                q.push(g);
            }
            (*m).lockedq_len.store(q.len(), Release);
            // A thread that leaves may still be queued for a P (it entered gs_run with none idle
            // and found every goroutine done before one came): a P handed to it later would be
            // lost, and all the others would wait for it for ever (seen with threads that run
            // gs_run and exit, c-tests/test_thread_exit at P=2). Leave every list; give back a P
            // handed over meanwhile.
            if let Some(i) = s.proc.pwait.iter().position(|&x| x == m) {
                s.proc.pwait.remove(i);
                SCHED.npwait.store(s.proc.pwait.len(), Relaxed);
            }
            remove(&mut s.proc.waiting, m);
            remove(&mut s.proc.midle, m);
            let handed = core::mem::replace(&mut (*m).nextp, null_mut());
            if !handed.is_null() {
                if (*m).p.is_null() {
                    take_p(m, handed);
                } else {
                    pidleput(&mut s, handed);
                }
            }
        }
        // Not spinning any more before the P goes: release_p's wakep for the work left on it
        // does nothing while a spinner is counted, and this one is leaving (a goroutine stayed
        // on an idle P's ring with every thread asleep: c-tests/test_thread_exit at P=1).
        unspin(m);
        if !(*m).p.is_null() {
            release_p(m, false);
        }
        // Only now, with no P of ours running, are the other gs_run threads woken if every
        // goroutine is done (wake_if_all_done says why not before).
        wake_if_all_done();
        (*m).exit_status = status;
        arch::set_tls_stack_guard(0);
        if SCHED.runqsize.load(Acquire) != 0 {
            wakep();
        }
        arch::gs_asm_gogo((*m).resume_sp, (*m).fpctl)
    }
}

/// Ends the [`run_until`] slice of the calling thread at its next switch, for the CPython
/// adapter's stop (embed/cpython.rs `stop_run`); nothing on a worker or outside a slice. Returns
/// false outside goroutines.
pub fn end_slice() -> bool {
    let m = getm();
    // SAFETY: m is this thread's M; leave_at is written only by this thread (gs_py_run's entry
    // and exit, and here, between them, on the goroutine this M runs).
    unsafe {
        if m.is_null() || (*m).curg.is_null() {
            return false;
        }
        if !(*m).is_worker && (*m).leave_at != i64::MAX {
            (*m).leave_at = 0;
        }
    }
    true
}

/// gs_run / gs_main: the calling thread joins the scheduler. With `main`, spawns it first and
/// returns once it has exited; otherwise returns once every goroutine has exited.
pub fn run(main: Option<(RawFn, *mut c_void)>) -> c_int {
    run_inner(main, i64::MAX)
}

/// Like `run(None)`, but leaves the scheduler with `GS_ETIMEDOUT` once `nanotime()` passes
/// `deadline` (at the next switch, or when the thread would sleep). The deadline is not a timer:
/// `GS_EDEADLOCK` is still returned when every goroutine is asleep for good (a goroutine that
/// sleeps until the deadline, the previous way to bound a run, hid deadlocks). For gs_py_run,
/// whose caller must get back to the interpreter now and then to run signal handlers.
pub fn run_until(deadline: i64) -> c_int {
    run_inner(None, deadline)
}

fn run_inner(main: Option<(RawFn, *mut c_void)>, leave_at: i64) -> c_int {
    let rc = run_body(main, leave_at);
    // ThreadSanitizer: the goroutines that exited happened before this return.
    super::sanitizer::exits_observed();
    rc
}

fn run_body(main: Option<(RawFn, *mut c_void)>, leave_at: i64) -> c_int {
    match whereami() {
        Where::Outside => {}
        _ => return GS_ESTATE,
    }
    let m = getm_or_create();
    // SAFETY: m is this thread's M; the scheduler touches it only while we are inside.
    unsafe {
        if (*m).in_scheduler {
            return GS_ESTATE;
        }
        let wait = MainWait { done: AtomicBool::new(false), goexit: AtomicBool::new(false), m };
        if let Some((f, arg)) = main {
            if let Err(e) = spawn_inner(Attr::default_attr(), f, arg, &wait) {
                return e;
            }
            (*m).main_wait = &wait;
        }
        // Cancellation waits until the thread left the scheduler (threads.rs).
        let cancel_state = super::threads::disable_cancel();
        in_sched_enter();
        {
            let _q = (*m).lockedq.lock();
            (*m).departed.store(false, Release);
        }
        (*m).in_scheduler = true;
        (*m).is_worker = false;
        (*m).leave_at = leave_at;
        {
            let mut s = lock_sched();
            let p = pidleget(&mut s);
            if !p.is_null() {
                take_p(m, p);
            } else {
                s.proc.pwait.push_back(m);
                SCHED.npwait.store(s.proc.pwait.len(), Relaxed);
            }
        }
        arch::gs_asm_mstart(&mut (*m).resume_sp, &mut (*m).g0_base, schedule_entry, m.cast());
        (*m).in_scheduler = false;
        (*m).leave_at = i64::MAX;
        (*m).main_wait = core::ptr::null();
        in_sched_leave();
        super::threads::restore_cancel(cancel_state);
        (*m).exit_status
    }
}

pub(crate) unsafe extern "C" fn schedule_entry(mp: *mut c_void) {
    // SAFETY: called by gs_asm_mstart on g0 with our M.
    // The thread's FP control state is the one saved by gs_asm_mstart.
    unsafe {
        let m = mp as *mut M;
        (*m).fpctl = arch::frame_fpctl((*m).resume_sp);
        schedule(m)
    }
}
