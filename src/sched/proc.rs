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
//! - **Spinning.** `wakep` wakes (or starts) one M only when there is an idle P and no M is
//!   already looking for work (Go's nmspinning rule), so a burst of spawns does not wake every
//!   thread.
//! - **Deadlock.** When the last M goes idle with goroutines left, no timer pending, no queued
//!   work, and every thread that used the runtime either inside the scheduler or blocked in a
//!   gostack call (any other such thread could still wake someone; threads.rs), every thread in
//!   gs_run/gs_main is told: gs_run returns GS_EDEADLOCK, gs_main prints Go's message. A thread
//!   that used the runtime and exits makes them look again.

use super::*;
use std::collections::VecDeque;

/// Every this many schedules a P looks at the global run queue before its own (Go's 61: a prime,
/// so that it does not fall into step with a periodic pattern of goroutines), so that goroutines
/// queued globally are not starved by a busy local queue.
pub(crate) const GLOBAL_QUEUE_EVERY: u32 = 61;

/// How long an M keeps its P while another thread waits for one.
pub const HANDOFF_SLICE_NS: i64 = 1_000_000;

pub use crate::base::futex::Note;

/// Scheduler state behind `SCHED.lock` that only this module uses.
pub struct ProcLocked {
    /// Idle worker Ms.
    pub midle: Vec<*mut M>,
    /// Threads in gs_run/gs_main that sleep without a P.
    pub waiting: Vec<*mut M>,
    /// Ms waiting for a P (FIFO): threads entering gs_run, Ms with pinned work.
    pub pwait: VecDeque<*mut M>,
    pub nworkers: usize,
}

impl Default for ProcLocked {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcLocked {
    pub const fn new() -> Self {
        ProcLocked { midle: Vec::new(), waiting: Vec::new(), pwait: VecDeque::new(), nworkers: 0 }
    }
}

fn remove(v: &mut Vec<*mut M>, m: *mut M) {
    if let Some(i) = v.iter().position(|&x| x == m) {
        v.swap_remove(i);
    }
}

// ---- Ps -----------------------------------------------------------------------------------------

pub const P_IDLE: u32 = 0;
pub const P_RUNNING: u32 = 1;
pub const P_DEAD: u32 = 2;

/// Takes an idle P (the scheduler lock is held).
fn pidleget(s: &mut SchedLocked) -> *mut P {
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
fn pidleput(s: &mut SchedLocked, p: *mut P) {
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

// ---- waking and starting Ms ------------------------------------------------------------------------

fn workers_allowed() -> bool {
    SCHED.nprocs.load(Relaxed) > 1
}

/// Called when work was queued: if a P is idle and no M is looking for work, wake (or start) one.
pub fn wakep() {
    if SCHED.npidle.load(Acquire) == 0 || SCHED.nmspinning.load(Acquire) != 0 {
        return;
    }
    if SCHED.nmspinning.compare_exchange(0, 1, AcqRel, Relaxed).is_err() {
        return;
    }
    let mut s = lock_sched();
    let p = pidleget(&mut s);
    if p.is_null() {
        SCHED.nmspinning.fetch_sub(1, AcqRel);
        return;
    }
    // With one P, only threads inside gs_run/gs_main run goroutines (determinism), even if
    // workers are left from a time with more Ps.
    let m = if workers_allowed() { s.proc.midle.pop().or_else(|| s.proc.waiting.pop()) } else { s.proc.waiting.pop() };
    // SAFETY: Ms are never freed; nextp is only touched under the scheduler lock.
    let m = m.filter(|&m| unsafe { (*m).nextp.is_null() });
    if let Some(m) = m {
        // SAFETY: an idle M sleeping on its note; nextp/spinning are read by it under the lock.
        unsafe {
            (*m).nextp = p;
            (*m).spinning = true;
            (*m).note.wakeup();
        }
        return;
    }
    if workers_allowed() && s.proc.nworkers < MAX_PROCS {
        s.proc.nworkers += 1;
        drop(s);
        start_worker(p);
        return;
    }
    pidleput(&mut s, p);
    SCHED.nmspinning.fetch_sub(1, AcqRel);
}

/// A worker's own stack: its g0, where the scheduler runs and where gs_systemstack runs user code,
/// which was promised the thread's (large) stack. 8 MiB like glibc's default thread stack
/// (RLIMIT_STACK); virtual, committed as touched. (256 KiB crashed the demo's 512 KiB
/// gs_systemstack buffer once goroutines ran on workers.)
const WORKER_STACK: usize = 8 << 20;

struct SendP(*mut P);
// SAFETY: a P handed to a new thread is owned by it from then on.
unsafe impl Send for SendP {}

fn start_worker(p: *mut P) {
    let sp = SendP(p);
    let r = std::thread::Builder::new().name("gostack-m".into()).stack_size(WORKER_STACK).spawn(move || {
        let sp = sp;
        let m = getm_or_create();
        // A worker never leaves the scheduler: never cancelled (threads.rs).
        super::threads::disable_cancel();
        in_sched_enter();
        // SAFETY: this thread's new M; p was taken from pidle for it.
        unsafe {
            (*m).is_worker = true;
            (*m).spinning = true;
            (*m).in_scheduler = true;
            (*m).departed.store(false, Release);
            take_p(m, sp.0);
            arch::gs_asm_mstart(&mut (*m).resume_sp, &mut (*m).g0_base, schedule_entry, m.cast());
            if (*m).forked_worker {
                // The only thread of a fork child, its goroutines done (fork.rs, rule 4).
                (*m).in_scheduler = false;
                in_sched_leave();
                libc::exit(0);
            }
        }
        fatal!("worker M left the scheduler");
    });
    if r.is_err() {
        // Could not start a thread: give the P back; goroutines still run in gs_run threads.
        let mut s = lock_sched();
        s.proc.nworkers -= 1;
        pidleput(&mut s, p);
        SCHED.nmspinning.fetch_sub(1, AcqRel);
    }
}

/// m now holds p.
///
/// # Safety
/// m is the calling thread's M and p was given to it.
unsafe fn take_p(m: *mut M, p: *mut P) {
    // SAFETY: per the contract.
    unsafe {
        (*p).local().m = m;
        (*p).status.store(P_RUNNING, Relaxed);
        (*m).p = p;
        (*m).p_since = nanotime();
    }
}

// ---- queues -----------------------------------------------------------------------------------------

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
                if let Some(old) = (*p).runq.put_next(g) {
                    runqput(&*p, old, false);
                }
                if lm.is_null() && SCHED.nprocs.load(Relaxed) > 1 {
                    wakep();
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
        // SAFETY: Ms are never freed.
        unsafe {
            let mut q = (*lm).lockedq.lock();
            if !(*lm).departed.load(Acquire) {
                q.push(g);
                (*lm).lockedq_len.store(q.len(), SeqCst);
                drop(q);
                if p.is_null() {
                    WAKE_EPOCH.fetch_add(1, SeqCst);
                }
                (*lm).note.wakeup();
                return;
            }
            drop(q);
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
fn behind_global() -> bool {
    SCHED.nprocs.load(Relaxed) == 1 && SCHED.runqsize.load(Relaxed) != 0
}

/// Queues a G pinned to `m` on m's private queue.
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
        if nprocs > 1 && pl.schedtick.is_multiple_of(GLOBAL_QUEUE_EVERY) && SCHED.runqsize.load(Relaxed) != 0 {
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
        // SAFETY: g is RUNNABLE and ours to queue; Ms are never freed.
        unsafe {
            let lm = (*g).lockedm;
            let mut q = (*lm).lockedq.lock();
            if !(*lm).departed.load(Acquire) {
                q.push(g);
                (*lm).lockedq_len.store(q.len(), SeqCst);
                drop(q);
                (*lm).note.wakeup();
            } else {
                drop(q);
                (*g).lockedm = null_mut();
                runqput(p, g, false);
            }
        }
    }
}

/// Steals half of a random victim's queue (only goroutines that may still move).
fn steal(m: *mut M, p: &P, nprocs: usize) -> Option<*mut G> {
    let me = p.id();
    let start = fastrand(m) as usize % nprocs;
    for i in 0..nprocs {
        let v = (start + i) % nprocs;
        if v == me {
            continue;
        }
        let victim = &SCHED.allp[v];
        if victim.runq.is_empty() {
            continue;
        }
        if let Some(g) = victim.runq.steal_half_into(&p.runq, m) {
            return Some(g);
        }
    }
    None
}

fn fastrand(m: *mut M) -> u32 {
    // SAFETY: our M; xorshift state only it touches.
    unsafe {
        let mut x = (*m).rand;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        (*m).rand = x;
        x
    }
}

// ---- the loop ---------------------------------------------------------------------------------------

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
            if let Some(g) = find_runnable(m, p) {
                if (*m).spinning {
                    (*m).spinning = false;
                    if SCHED.nmspinning.fetch_sub(1, AcqRel) == 1 {
                        wakep();
                    }
                }
                execute(m, p, g);
            }
            if !(*m).is_worker && wake_if_all_done((*m).p) {
                leave_scheduler(m, all_done_status(m));
            }
            if let Some(st) = stop_m(m) {
                leave_scheduler(m, st);
            }
        }
    }
}

/// The common case of a park, done without g0 and the scheduler loop (Go's gopark + schedule
/// when `runnext` holds the goroutine the parking one just woke: a channel partner, a mutex
/// hand-off). When nothing would make [`schedule`] do anything but take `runnext` (no pinned
/// goroutines queued for this M, no timer due, no time slice over, no P hand-off or resize
/// pending, no stack to settle), parks the running goroutine — status WAITING,
/// `*gslot` = it, as the park's unlock function would publish — and switches straight to
/// `runnext` with [`arch::gs_asm_park_swap`], which releases `lock` (a held wait-queue lock byte)
/// only once the goroutine is saved and the thread has left its stack. Returns true when the
/// goroutine was parked and has been resumed (by any M); false, having changed nothing, when the
/// caller must take the general path.
///
/// # Safety
/// On a goroutine's own stack, with `RUNTIME_ENTRY_STACK` secured; `lock` is held by the caller
/// and is the only lock guarding the queue its waiter is on; no deadline.
#[inline]
pub(crate) unsafe fn park_handoff(reason: WaitReason, gslot: &AtomicPtr<G>, lock: *mut u8) -> bool {
    // SAFETY: per the contract; m is this thread's M, its P and curg are ours.
    unsafe {
        let Some((m, g, pr)) = handoff_start() else { return false };
        let next = pr.runq.peek_next();
        if next.is_null() || !take_runnext(pr, next) {
            return false;
        }
        // Park g (park_m's part): visible to wakers once the lock is released.
        (*g).waitreason = reason;
        gslot.store(g, Relaxed);
        (*g).status.store(G_WAITING, Release);
        handoff_hooks(g, next);
        let sp = handoff_run(m, pr, next);
        // (No sanitizer fiber hooks: handoff_start refuses when a sanitizer is present.)
        arch::gs_asm_park_swap(&mut (*g).sched.sp, sp, lock);
        true
    }
}

/// gs_yield without g0 and the scheduler loop (Go's Gosched for the common case): under the
/// conditions of [`park_handoff`], and when the yielding goroutine has no stack to shrink and
/// one P would not queue it behind the global queue, takes the goroutine `schedule()` would run
/// (`runnext`, else the ring's head), writes the yielding one into the slot after the tail and
/// switches with [`arch::gs_asm_yield_swap`], which publishes that slot (stores the new tail)
/// only once the yielder is saved and the thread has left its stack. Returns true when the
/// goroutine yielded and has been resumed; false, having changed nothing, otherwise.
///
/// # Safety
/// On a goroutine's own stack, with `RUNTIME_ENTRY_STACK` secured.
#[inline]
pub(crate) unsafe fn yield_handoff() -> bool {
    // SAFETY: per the contract; m is this thread's M, its P and curg are ours.
    unsafe {
        let Some((m, g, pr)) = handoff_start() else { return false };
        // gosched_m shrinks a grown stack (or releases pages) at this safe point; runqput's FIFO rule puts the
        // yielder behind the global queue.
        if grow::safe_point_work(m, g) || behind_global() || !pr.runq.has_room() {
            return false;
        }
        let next = pr.runq.peek_next();
        let next = if !next.is_null() {
            if !take_runnext(pr, next) {
                return false;
            }
            next
        } else {
            let Some((h, head)) = pr.runq.peek_head() else { return false };
            if !runnable_here(head) || !pr.runq.take_head(h) {
                return false;
            }
            pr.local().next_streak = 0;
            head
        };
        // Requeue g (gosched_m's part): at the tail, published by the switch.
        (*g).status.store(G_RUNNABLE, Relaxed);
        let tail = pr.runq.prepare_tail(g);
        handoff_hooks(g, next);
        let sp = handoff_run(m, pr, next);
        // (No sanitizer fiber hooks: handoff_start refuses when a sanitizer is present.)
        arch::gs_asm_yield_swap(&mut (*g).sched.sp, sp, pr.runq.tail_ptr(), tail);
        true
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
unsafe fn handoff_start() -> Option<(*mut M, *mut G, &'static P)> {
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

/// Takes `next`, seen in `pr`'s `runnext`, for a hand-off, as `get_fair` would: when it can be
/// resumed here, the chain through `runnext` has not had its slice, and no thief took it first.
/// Counts the chain's streak.
///
/// # Safety
/// `pr` is the P of the calling thread's M; `next` is a live G record.
#[inline(always)]
unsafe fn take_runnext(pr: &P, next: *mut G) -> bool {
    // SAFETY: per the contract: pr's local part is ours.
    unsafe {
        let pl = pr.local();
        if !runnable_here(next) || !pr.runq.next_may_run(pl.next_streak) || !pr.runq.take_next(next) {
            return false;
        }
        pl.next_streak += 1;
        true
    }
}

/// Whether a queued goroutine can be resumed by a hand-off: it has a stack (not a first run).
///
/// # Safety
/// `g` is a live G record seen on this P's queue.
#[inline(always)]
unsafe fn runnable_here(g: *mut G) -> bool {
    // SAFETY: G records are never freed; this field does not change while g is queued.
    unsafe { (*g).stack.lo != 0 }
}

/// The embedding hooks of a hand-off from `g` to `next`: what `enter_m` and `execute` run on g0
/// (`switch_out`, `switch_in`) runs here, on `g`'s stack just before the switch. The hooks only
/// swap per-goroutine thread state (CPython's GIL-state slot), which nothing reads between them
/// and the switch.
///
/// # Safety
/// `g` is the running goroutine, about to be switched out for `next`, which this M now runs.
#[inline(always)]
unsafe fn handoff_hooks(g: *mut G, next: *mut G) {
    // SAFETY: per the contract; the hooks' own contract (no switch inside) holds.
    unsafe {
        if !(*g).embed_hooks.is_null() {
            ((*(*g).embed_hooks).switch_out)(g);
        }
        if !(*next).embed_hooks.is_null() {
            ((*(*next).embed_hooks).switch_in)(next);
        }
    }
}

/// Makes `next` (just taken from `pr`'s queue) the running goroutine of `m` (find_runnable's
/// schedule count and execute's part) and returns its saved stack pointer.
///
/// # Safety
/// `next` was taken from the queue of `pr`, which `m` holds; it has a stack.
#[inline(always)]
unsafe fn handoff_run(m: *mut M, pr: &P, next: *mut G) -> usize {
    // SAFETY: per the contract: next is ours now.
    unsafe {
        let pl = pr.local();
        pl.schedtick = pl.schedtick.wrapping_add(1);
        super::set_running(m, pr, next);
        arch::set_tls_stack_guard((*next).stackguard0);
        let sp = (*next).sched.sp;
        (*next).sched.sp = 0;
        sp
    }
}

/// Gives up m's P: goroutines pinned to m leave its run queue for m's private queue (or lose their
/// pin when `unpin`... see leave_scheduler), the rest stay with the P.
///
/// # Safety
/// On m's g0; m holds a P.
unsafe fn release_p(m: *mut M, keep_pinned: bool) {
    // SAFETY: per the contract.
    unsafe {
        let p = &*(*m).p;
        let mut mine = GQueue::new();
        let mut others = GQueue::new();
        while let Some(g) = p.runq.get() {
            if (*g).lockedm == m {
                if keep_pinned {
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

/// m has nothing to run: release its P and sleep until there is work, a P for its pinned work,
/// or (threads in gs_run/gs_main) a reason to leave. Returns with a P, or with the status to
/// leave the scheduler with.
///
/// # Safety
/// On m's g0.
unsafe fn stop_m(m: *mut M) -> Option<c_int> {
    // SAFETY: per the contract; lists and nextp are only touched under the scheduler lock.
    unsafe {
        loop {
            let mut s = lock_sched();
            // A P handed to us (pidleput/wakep) while we were not yet asleep: take it. Clearing
            // it instead lost the P for good (every thread then slept forever), e.g. when a
            // worker handed its P to a thread between its gs_run queuing and its first sleep.
            if (*m).p.is_null() && !(*m).nextp.is_null() {
                let p = core::mem::replace(&mut (*m).nextp, null_mut());
                take_p(m, p);
                return None;
            }
            if !(*m).p.is_null() {
                // Last look under the lock: work queued globally or for us keeps the P.
                if !s.runq.is_empty() || (*m).lockedq_len.load(Acquire) != 0 {
                    return None;
                }
                let p = (*m).p;
                (*m).p = null_mut();
                pidleput(&mut s, p);
            }
            if (*m).spinning {
                (*m).spinning = false;
                SCHED.nmspinning.fetch_sub(1, AcqRel);
            }
            // The last M to go idle after the last goroutine exited wakes the threads in gs_run.
            let done = all_done_locked(&s, null_mut());
            if done {
                wake_waiting(&s);
            }
            if !(*m).is_worker {
                let mw = (*m).main_wait;
                if !mw.is_null() && (*mw).done.load(Acquire) {
                    return Some(GS_OK);
                }
                if done && (mw.is_null() || (*mw).goexit.load(Acquire)) {
                    return Some(all_done_status(m));
                }
            }
            if check_dead(&s) {
                wake_waiting(&s);
                if !(*m).is_worker {
                    return Some(GS_EDEADLOCK);
                }
            }
            if !(*m).is_worker && (*m).leave_at != i64::MAX && nanotime() >= (*m).leave_at {
                return Some(GS_ETIMEDOUT);
            }
            // Pinned work waiting for us needs a P.
            if (*m).lockedq_len.load(Acquire) != 0 {
                let p = pidleget(&mut s);
                if !p.is_null() {
                    take_p(m, p);
                    return None;
                }
                if !s.proc.pwait.contains(&m) {
                    s.proc.pwait.push_back(m);
                    SCHED.npwait.store(s.proc.pwait.len(), Relaxed);
                }
            }
            if (*m).is_worker {
                s.proc.midle.push(m);
            } else {
                s.proc.waiting.push(m);
            }
            drop(s);

            let wake_at = TIMER_NEXT.load(Acquire).min((*m).leave_at);
            let wake_at = if (*m).is_worker { wake_at } else { wake_at.min(dead_check_deadline()) };
            (*m).note.sleep(wake_at);

            let mut s = lock_sched();
            remove(&mut s.proc.midle, m);
            remove(&mut s.proc.waiting, m);
            if let Some(i) = s.proc.pwait.iter().position(|&x| x == m) {
                s.proc.pwait.remove(i);
                SCHED.npwait.store(s.proc.pwait.len(), Relaxed);
            }
            let mut p = core::mem::replace(&mut (*m).nextp, null_mut());
            let may_run_shared = !(*m).is_worker || workers_allowed();
            if p.is_null()
                && ((*m).lockedq_len.load(Acquire) != 0
                    || (may_run_shared && (TIMER_NEXT.load(Acquire) <= nanotime() || !s.runq.is_empty())))
            {
                p = pidleget(&mut s);
            }
            if !p.is_null() {
                take_p(m, p);
                return None;
            }
        }
    }
}

/// Is every goroutine asleep for good? (The scheduler lock is held.)
fn check_dead(s: &SchedLocked) -> bool {
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
fn dead_check_deadline() -> i64 {
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
unsafe fn all_done_status(m: *mut M) -> c_int {
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
            while let Some(g) = q.pop() {
                (*g).lockedm = null_mut();
                global_put(&mut s, g);
            }
            (*m).lockedq_len.store(0, Release);
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
        if (*m).spinning {
            (*m).spinning = false;
            SCHED.nmspinning.fetch_sub(1, AcqRel);
        }
        if !(*m).p.is_null() {
            release_p(m, false);
        }
        (*m).exit_status = status;
        arch::set_tls_stack_guard(0);
        if SCHED.runqsize.load(Acquire) != 0 {
            wakep();
        }
        arch::gs_asm_gogo((*m).resume_sp, (*m).fpctl)
    }
}

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

/// When every goroutine has exited ([`all_done_locked`]; `held`: the caller's own P, or null),
/// wakes the threads sleeping in gs_run/gs_main and returns true. One scheduler-lock section.
fn wake_if_all_done(held: *mut P) -> bool {
    let s = lock_sched();
    let done = all_done_locked(&s, held);
    if done {
        wake_waiting(&s);
    }
    done
}

/// Wakes every thread sleeping in gs_run/gs_main (the last goroutine exited, or every goroutine
/// is asleep for good). The scheduler lock is held.
fn wake_waiting(s: &SchedLocked) {
    for &w in &s.proc.waiting {
        // SAFETY: Ms are never freed.
        unsafe { (*w).note.wakeup() };
    }
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

// ---- threads outside the scheduler (for deadlock detection) -------------------------------------
//
// Any thread that used the runtime and is not a scheduler thread could still call in and wake a
// goroutine (a C host can have threads that Go never would). So goroutines are declared deadlocked
// only when every registered thread (threads.rs) is either inside the scheduler (a worker, or in
// gs_run/gs_main) or blocked in a gostack call.

/// Bumped by threads outside the scheduler after they queue work or unblock a thread.
static WAKE_EPOCH: AtomicU64 = AtomicU64::new(0);

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

// ---- gs_dump -----------------------------------------------------------------------------------

/// Go-style dump of every goroutine: `goroutine N [state]:` with its wait reason, stack and name.
/// `GS_EINVAL` when `fd` is not open or a write to it failed.
pub fn dump(fd: i32) -> c_int {
    // SAFETY: F_GETFD only queries the descriptor.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return GS_EINVAL;
    }
    let s = lock_sched();
    let gs: Vec<*mut G> = s.allg.clone();
    drop(s);
    let mut w = FdWriter::new(fd);
    for g in gs {
        // SAFETY: G records are never freed; fields may be racy snapshots of running goroutines.
        super::traceback::write_goroutine(&mut w, unsafe { &*g });
    }
    if w.finish() {
        GS_OK
    } else {
        GS_EINVAL
    }
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
