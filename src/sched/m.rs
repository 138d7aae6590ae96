//! The M record (an OS thread running goroutines), the calling thread's M (`getm`), and the
//! life of Ms: becoming one, worker threads started on demand (`wakep`), sleeping when idle
//! (`stop_m`), gs_systemstack on g0.

use super::deadlock::{
    all_done_locked, all_done_status, check_dead, dead_check_deadline, in_sched_enter, in_sched_leave, wake_waiting,
};
use super::g::{MainWait, G};
use super::grow;
use super::p::{pidleget, pidleput, take_p, MAX_PROCS, P};
use super::park::{whereami, UnlockFn, Where};
use super::runq::GQueue;
use super::sanitizer;
use super::schedule::{schedule_entry, Seen};
use super::threads;
use super::timer::TIMER_NEXT;
use super::{lock_sched, remove, SCHED};
use crate::arch;
use crate::arch::RawFn;
use crate::base::clock::nanotime;
use crate::base::fatal::fatal;
use crate::base::futex::Mutex;
use crate::base::types::*;
use core::ffi::c_int;
use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};

/// An OS thread that runs goroutines.
pub struct M {
    pub(super) id: i64,
    /// g0's base stack pointer: every mcall starts there.
    pub(super) g0_base: usize,
    /// Saved context of the thread inside gs_run/gs_main: gogo to it to leave the scheduler.
    pub(super) resume_sp: usize,
    /// The goroutine running on this M, or null while the scheduler runs.
    pub(super) curg: *mut G,
    pub(super) p: *mut P,
    /// > 0 while a gs_systemstack function runs on g0 on behalf of curg.
    pub(super) on_g0: u32,
    /// Inside gs_run/gs_main.
    pub(super) in_scheduler: bool,
    /// FP control state loaded on this thread while g0 runs (see arch::gs_asm_gogo), packed.
    pub(super) fpctl: u64,
    /// What gs_run/gs_main returns.
    pub(super) exit_status: c_int,
    /// The gs_main goroutine this M waits for, if any.
    pub(super) main_wait: *const MainWait,
    pub(super) tid: i32,
    /// This M's sigaltstack (mapping base, length), 0 if it uses one it found installed.
    pub(super) altstack: (usize, usize),
    /// The sigaltstack in use on this thread, `[lo, hi)` (ours or one found installed; (0, 0) if
    /// none): a stack pointer inside it means "in a signal handler" (abi's entry check).
    pub(super) sigstack: (usize, usize),
    /// gopark's unlock function and its argument, run on g0 once the G is saved.
    pub(super) waitunlockf: Option<UnlockFn>,
    pub(super) waitlock: *mut c_void,
    /// A worker thread started by the runtime (never leaves the scheduler).
    pub(super) is_worker: bool,
    /// Looking for work (counted in SCHED.nmspinning): woken by wakep, or spinning before it
    /// sleeps (schedule.rs: spin). Cleared, and uncounted, by [`unspin`]: by the M itself, or by
    /// a thread that queued a goroutine pinned to it (p.rs: lockedq_put).
    pub(super) spinning: AtomicBool,
    /// Runnable goroutines pinned to this M, queued by other threads.
    pub(super) lockedq: Mutex<GQueue>,
    pub(super) lockedq_len: AtomicUsize,
    /// The thread is outside gs_run/gs_main: goroutines pinned to it are unpinned when readied.
    pub(super) departed: AtomicBool,
    /// Where the M sleeps when idle.
    pub(super) note: Note,
    /// When it acquired its P (for hand-off slices).
    pub(super) p_since: i64,
    /// A P handed to this M while it slept (under the scheduler lock).
    pub(super) nextp: *mut P,
    /// Random state for picking steal victims (base::rand).
    pub(super) rand: u64,
    /// What this M has seen of each P's ring, for the steal rule (schedule.rs: steal), and
    /// whether its last look found movable goroutines not yet old enough to steal.
    pub(super) steal_seen: Vec<Seen>,
    pub(super) young_work: bool,
    /// The global queue's head (address) when this M, spinning, first saw it, and when.
    pub(super) global_seen: (usize, i64),
    /// When a sleeping M wakes to look again at goroutines other Ps hold that were not yet
    /// old enough to steal when it stopped spinning (`i64::MAX`: no such look).
    pub(super) recheck_at: i64,
    /// How long this M spins before it sleeps (adapted: [`adapt_spin`]).
    pub(super) spin_ns: i64,
    /// A thread in gs_py_run leaves the scheduler at this nanotime (`i64::MAX`: never). Not a
    /// timer: deadlock detection ignores it (see [`super::run_until`]).
    pub(super) leave_at: i64,
    /// Bytes `newstack_m` must provide (from the stack's top) for the goroutine growing on this M
    /// (set by `grow::morestack` just before its mcall).
    pub(super) grow_need: usize,
    /// Yields counted on this M, and whether the last count made it this M's turn to release
    /// stack pages (see `grow::safe_point_work`).
    pub(super) safe_points: u32,
    pub(super) release_pending: bool,
    /// AddressSanitizer (sched/sanitizer.rs): g0's fake-stack handle while a goroutine runs, and
    /// g0's stack bounds (found on first use).
    pub(super) asan_g0_fake: *mut c_void,
    pub(super) asan_g0_lo: usize,
    pub(super) asan_g0_size: usize,
    /// Between ASan's start and finish of a switch on this thread (sched/sanitizer.rs): a stack
    /// move in the signal handler then leaves ASan's stack bounds alone.
    pub(super) asan_switching: bool,
    /// ThreadSanitizer: the thread's own fiber (g0's), noted before its first goroutine runs.
    pub(super) tsan_g0: *mut c_void,
    /// Goroutines resumed on this M (written by its thread, read by the stall monitor).
    pub(super) ticks: AtomicU64,
    /// A worker whose thread is the only one of a fork child (fork.rs, rule 4): it leaves the
    /// scheduler once the goroutines are done, and the process exits.
    pub(super) forked_worker: bool,
    /// The shared stacks (slots) of this M's copy-stack goroutines and their residents
    /// (copystack.rs), each reserved at its first use; never freed (its goroutines stay pinned to
    /// this record and point at their slot).
    pub(super) copy_slots: super::copystack::Slots,
}

/// The calling thread's M, or null if it never ran goroutines. Reads the initial-exec TLS word
/// `gs_tls_m` defined in the assembly (no call; async-signal-safe).
#[inline(always)]
pub fn getm() -> *mut M {
    arch::tls_m().cast()
}

/// Sets the calling thread's M (once, when the thread becomes an M).
pub(super) fn setm(m: *mut M) {
    arch::set_tls_m(m.cast())
}

/// The goroutine running on this thread (also while its gs_systemstack fn runs), or null.
#[inline]
pub fn getg() -> *mut G {
    let m = getm();
    if m.is_null() {
        null_mut()
    } else {
        // SAFETY: an M record is never freed and only its own thread writes curg.
        unsafe { (*m).curg }
    }
}

pub use crate::base::futex::Note;

/// Whether worker Ms may run shared goroutines (more than one P). On the hand-offs' path.
#[inline]
pub(super) fn workers_allowed() -> bool {
    // issue #13: also while a P is handed away from a thread blocked in gs_blocking (syscall.rs).
    SCHED.nprocs.load(Relaxed) > 1 || super::syscall::handed_off()
}

/// Stops counting `m` as a spinning M if it still is one. Called by m itself, and by a thread
/// that queued a goroutine pinned to m: m will run it, so it no longer looks for work, and
/// uncounting it at once lets the waker's own M spin when it runs out of work a moment later
/// (with a spinner counted until m noticed, it slept instead: at P=2 a cross-thread hand-off
/// then cost a futex wake-up every other time). The CAS makes exactly one of them uncount it.
/// Returns Some(true) when this call uncounted the last spinner, None when m was not counted.
#[inline(always)]
pub(super) fn unspin(m: *mut M) -> Option<bool> {
    // SAFETY: M records are never freed; `spinning` is atomic.
    let sp = unsafe { &(*m).spinning };
    if sp.load(Relaxed) && sp.compare_exchange(true, false, AcqRel, Relaxed).is_ok() {
        Some(SCHED.nmspinning.fetch_sub(1, AcqRel) == 1)
    } else {
        None
    }
}

/// Whether `m` is counted as a spinning M.
///
/// # Safety
/// `m` is a live M record (they are never freed).
#[inline]
pub(super) unsafe fn is_spinning(m: *mut M) -> bool {
    // SAFETY: per the contract.
    unsafe { (*m).spinning.load(Relaxed) }
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
            (*m).spinning.store(true, Release);
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
    let r = super::threads::spawn_runtime_thread("gostack-m", WORKER_STACK, move |mask| {
        let sp = sp;
        let m = getm_or_create();
        // An M with its sigaltstack now: a handler's gs_* calls here are refused.
        crate::signal::restore_mask(&mask);
        // A worker never leaves the scheduler: never cancelled (threads.rs).
        super::threads::disable_cancel();
        in_sched_enter();
        // SAFETY: this thread's new M; p was taken from pidle for it.
        unsafe {
            (*m).is_worker = true;
            (*m).spinning.store(true, Release);
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

/// m has nothing to run: release its P and sleep until there is work, a P for its pinned work,
/// or (threads in gs_run/gs_main) a reason to leave. Returns with a P, or with the status to
/// leave the scheduler with.
///
/// # Safety
/// On m's g0.
pub(super) unsafe fn stop_m(m: *mut M) -> Option<c_int> {
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
            unspin(m);
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

            let wake_at = TIMER_NEXT.load(Acquire).min((*m).leave_at).min((*m).recheck_at);
            let wake_at = if (*m).is_worker { wake_at } else { wake_at.min(dead_check_deadline()) };
            let slept_at = nanotime();
            // issue #13: the M sleeps in epoll_wait when nobody else does (netpoll.rs).
            super::netpoll::idle_sleep(m, wake_at);
            adapt_spin(m, nanotime() - slept_at);

            if woken(m) {
                return None;
            }
        }
    }
}

/// [`stop_m`] after its sleep: leaves the idle lists and takes a P if one was handed over, if
/// pinned work waits, or if it was woken to look for work (then as a spinning M, under the
/// placement rule: schedule.rs, steal). True when it took a P.
///
/// # Safety
/// On m's g0, just woken in stop_m.
unsafe fn woken(m: *mut M) -> bool {
    // SAFETY: per the contract; lists and nextp are only touched under the scheduler lock.
    unsafe {
        let mut s = lock_sched();
        remove(&mut s.proc.midle, m);
        remove(&mut s.proc.waiting, m);
        if let Some(i) = s.proc.pwait.iter().position(|&x| x == m) {
            s.proc.pwait.remove(i);
            SCHED.npwait.store(s.proc.pwait.len(), Relaxed);
        }
        let mut p = core::mem::replace(&mut (*m).nextp, null_mut());
        let may_run_shared = !(*m).is_worker || workers_allowed();
        let mut looking = false;
        if p.is_null() {
            let now = nanotime();
            if (*m).lockedq_len.load(Acquire) != 0 {
                p = pidleget(&mut s);
            } else if may_run_shared
                && (TIMER_NEXT.load(Acquire) <= now || !s.runq.is_empty() || (*m).recheck_at <= now)
            {
                // Woken to look for work (a timer, the global queue, or goroutines another P
                // holds that may be old enough to steal now): a spinning M, under the
                // placement rule (schedule.rs: steal).
                p = pidleget(&mut s);
                looking = true;
            }
        }
        if !p.is_null() {
            take_p(m, p);
            (*m).recheck_at = i64::MAX;
            if looking && !is_spinning(m) {
                SCHED.nmspinning.fetch_add(1, AcqRel);
                (*m).spinning.store(true, Release);
            }
            return true;
        }
        false
    }
}

/// Adapts how long `m` spins before sleeping ([`super::schedule::SPIN_NS`] to
/// [`super::schedule::SPIN_MAX_NS`]) after it slept `slept` ns: a goroutine pinned to it was
/// readied soon after it gave up (the spin was nearly long enough: double it), or not (halve
/// it). Why: a cross-thread exchange is bistable. While each side spins as the other works, a
/// message costs a load; once a wake-up takes longer than the spin (a loaded machine: a woken
/// thread waits for a CPU), every spin times out before the answer comes, and every message
/// costs a futex wake-up, for good (measured: 40,000 sleeps in 20,000 round trips at a fixed
/// 50 µs). One spin longer than the partner's wake-up brings both back.
///
/// # Safety
/// `m` is the calling thread's M.
unsafe fn adapt_spin(m: *mut M, slept: i64) {
    use super::schedule::{SPIN_MAX_NS, SPIN_NS};
    // SAFETY: per the contract.
    unsafe {
        let cur = (*m).spin_ns;
        (*m).spin_ns = if (*m).lockedq_len.load(Relaxed) != 0 && slept < cur {
            (cur * 2).min(SPIN_MAX_NS)
        } else if slept >= 4 * cur {
            (cur / 2).max(SPIN_NS)
        } else {
            cur
        };
    }
}

/// The calling thread's M: created on first use, or a record left by an exited thread
/// (threads.rs), reinitialised. The thread is registered as a runtime user (threads.rs, invariant 1).
pub(crate) fn getm_or_create() -> *mut M {
    let m = getm();
    if !m.is_null() {
        return m;
    }
    threads::register_caller();
    let fresh = M {
        id: SCHED.mnext.fetch_add(1, Relaxed) + 1,
        g0_base: 0,
        resume_sp: 0,
        curg: null_mut(),
        p: null_mut(),
        on_g0: 0,
        in_scheduler: false,
        exit_status: GS_OK,
        fpctl: 0,
        main_wait: core::ptr::null(),
        // SAFETY: gettid has no preconditions.
        tid: unsafe { libc::gettid() },
        altstack: (0, 0),
        sigstack: (0, 0),
        waitunlockf: None,
        waitlock: null_mut(),
        is_worker: false,
        spinning: AtomicBool::new(false),
        lockedq: Mutex::new(GQueue::new()),
        lockedq_len: AtomicUsize::new(0),
        departed: AtomicBool::new(true),
        note: Note::new(),
        p_since: 0,
        nextp: null_mut(),
        // Fixed per M id (no clock): runs repeat as they did.
        rand: (SCHED.mnext.load(Relaxed) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        steal_seen: Vec::new(),
        young_work: false,
        global_seen: (0, 0),
        recheck_at: i64::MAX,
        spin_ns: super::schedule::SPIN_NS,
        leave_at: i64::MAX,
        grow_need: 0,
        safe_points: grow::RELEASE_EVERY,
        release_pending: false,
        asan_g0_fake: null_mut(),
        asan_g0_lo: 0,
        asan_g0_size: 0,
        asan_switching: false,
        tsan_g0: null_mut(),
        ticks: AtomicU64::new(0),
        forked_worker: false,
        copy_slots: Default::default(),
    };
    crate::base::errno::check_thread();
    let mut s = lock_sched();
    let m = match s.mfree.pop() {
        // SAFETY: a record of an exited thread, on no list and in no queue (threads::release_m).
        Some(m) => unsafe {
            (*m).reset(fresh);
            m
        },
        None => Box::into_raw(Box::new(fresh)),
    };
    s.allm.push(m);
    drop(s);
    // From setm until the signal stack is known a handler on this thread would be taken for
    // one on an M's goroutine or g0 without being seen as a handler: signals wait.
    let mask = crate::signal::block_async();
    setm(m);
    let alt = crate::signal::on_new_m();
    // SAFETY: the calling thread's new M; only it writes these fields.
    unsafe { ((*m).altstack, (*m).sigstack) = (alt.mapped, alt.range) };
    crate::signal::restore_mask(&mask);
    m
}

impl M {
    /// Reuses the record of an exited thread: every field from `fresh` except the locks
    /// (`lockedq`, `note`), which a waker that read this M's address before the thread left may
    /// still take (it then sees `departed` and backs off), and what the thread's copy-stack
    /// goroutines need: their slots (`copy_slots`) and `lockedq` with its length, where those
    /// that were runnable when the thread left wait (p.rs: keeps_pin; every other goroutine lost
    /// its pin then, schedule.rs: leave_scheduler). The new thread runs them. Written as a
    /// destructuring so that a new field cannot be forgotten.
    fn reset(&mut self, fresh: M) {
        let M {
            id,
            g0_base,
            resume_sp,
            curg,
            p,
            on_g0,
            in_scheduler,
            fpctl,
            exit_status,
            main_wait,
            tid,
            altstack,
            sigstack,
            waitunlockf,
            waitlock,
            is_worker,
            spinning,
            lockedq: _,
            lockedq_len: _,
            departed,
            note: _,
            p_since,
            nextp,
            rand,
            steal_seen,
            young_work,
            global_seen,
            recheck_at,
            spin_ns,
            leave_at,
            grow_need,
            safe_points,
            release_pending,
            ticks,
            forked_worker,
            asan_g0_fake,
            asan_g0_lo,
            asan_g0_size,
            asan_switching,
            tsan_g0,
            // Kept: copy-stack goroutines pinned to this record resume on it (copystack.rs).
            copy_slots: _,
        } = fresh;
        debug_assert!(self.lockedq.lock().is_empty());
        (self.id, self.g0_base, self.resume_sp, self.curg, self.p, self.on_g0) =
            (id, g0_base, resume_sp, curg, p, on_g0);
        (self.in_scheduler, self.fpctl, self.exit_status, self.main_wait, self.tid) =
            (in_scheduler, fpctl, exit_status, main_wait, tid);
        (self.altstack, self.sigstack, self.waitunlockf, self.waitlock) = (altstack, sigstack, waitunlockf, waitlock);
        (self.is_worker, self.departed) = (is_worker, departed);
        self.spinning.store(spinning.into_inner(), Relaxed);
        (self.p_since, self.nextp, self.rand, self.leave_at, self.grow_need, self.ticks) =
            (p_since, nextp, rand, leave_at, grow_need, ticks);
        (self.forked_worker, self.safe_points, self.release_pending) = (forked_worker, safe_points, release_pending);
        (self.steal_seen, self.young_work, self.global_seen, self.recheck_at, self.spin_ns) =
            (steal_seen, young_work, global_seen, recheck_at, spin_ns);
        (self.asan_g0_fake, self.asan_g0_lo, self.asan_g0_size, self.asan_switching, self.tsan_g0) =
            (asan_g0_fake, asan_g0_lo, asan_g0_size, asan_switching, tsan_g0);
    }
}

/// A gs_systemstack call under AddressSanitizer: the stack switches both ways are announced.
struct SanitizedCall {
    m: *mut M,
    g: *mut G,
    f: RawFn,
    arg: *mut c_void,
}

/// Runs on g0 for [`systemstack`] under AddressSanitizer.
unsafe extern "C" fn sanitized_systemstack_call(p: *mut c_void) {
    // SAFETY: p is the SanitizedCall on the goroutine's stack, alive until this returns.
    unsafe {
        let c = &*(p as *const SanitizedCall);
        sanitizer::enter_g0(c.m);
        (c.f)(c.arg);
        sanitizer::leave_g0(c.m, c.g);
    }
}

/// gs_systemstack: runs `f(arg)` on the thread's own stack (g0).
///
/// # Safety
/// `f` must be safe to call with `arg` (the C API's contract for `gs_systemstack`).
pub unsafe fn systemstack(f: RawFn, arg: *mut c_void) -> c_int {
    match whereami() {
        // SAFETY: m is ours; its g0 is free while a goroutine runs (g0 frames are discarded at
        // every gogo); on_g0 marks the nesting so the API refuses to switch meanwhile.
        Where::Goroutine(m, g) => unsafe {
            (*m).on_g0 += 1;
            arch::set_tls_stack_guard(0);
            if sanitizer::asan() {
                let mut call = SanitizedCall { m, g, f, arg };
                sanitizer::leave_g_for_g0(m, g, false);
                arch::gs_asm_systemstack(sanitized_systemstack_call, (&raw mut call).cast(), (*m).g0_base);
                sanitizer::enter_g(g);
            } else {
                arch::gs_asm_systemstack(f, arg, (*m).g0_base);
            }
            (*m).on_g0 -= 1;
            arch::set_tls_stack_guard((*(*m).curg).stackguard0);
            GS_OK
        },
        // Already on the thread's stack: a direct call.
        // SAFETY: f is a valid function per the API contract.
        _ => unsafe {
            f(arg);
            GS_OK
        },
    }
}
