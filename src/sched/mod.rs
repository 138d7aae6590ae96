//! The scheduler: G, M, P (Go's names and shape). Everything that touches a G lives here.
//!
//! - A **G** is a goroutine. Its status says who owns its stack:
//!   `IDLE`/`DEAD`: nobody (a free G), `RUNNABLE`: a run queue (its switch frame is saved),
//!   `RUNNING`: the M in `G::m` (executing on it), `WAITING`: whoever will `ready` it (parked).
//! - An **M** is an OS thread that runs goroutines. Its g0 is the thread's own stack: the
//!   scheduler runs there, entered by `mcall` from a goroutine, always at the same base `g0_base`
//!   (so nothing accumulates on g0 between switches: Go's mstart/mcall design). A thread becomes
//!   an M when it first enters `gs_run`/`gs_main`; when the thread exits its M record goes to a free
//!   list for the next thread (never freed: see threads.rs).
//! - A **P** is the right to run goroutines: a local run queue (256 + `runnext`), caches of free
//!   Gs and stacks. An M holds one P while it schedules.
//!
//! Switch path of `gs_yield` (Go's Gosched): `mcall(gosched_m)` saves the G's callee-saved
//! registers on its own stack and switches to g0, `gosched_m` queues the G, `schedule` picks the
//! next one and `gogo`es into it. Functions ending in `_m` run on g0.
//!
//! Locking: `SCHED.lock` guards the global run queue, idle Ps, free Gs and the set of Ms; a P's
//! local state is touched only by the M holding it (the ring is lock-free for future stealing).
//! Ordering with one P: yields are strict FIFO. Every G in the local ring is older than every G
//! in the global queue: a G goes to the global queue only when that is non-empty or the ring is
//! full, and the ring refills from the global queue only when it is empty.
//!
//! Files (Go's runtime file for each in parentheses):
//! - `g.rs`: the G record, its statuses and wait reasons (runtime2.go)
//! - `m.rs`: the M record, getm/getg, starting, waking and idling Ms, gs_systemstack (proc.go)
//! - `p.rs`: the P record, idle Ps, putting runnable goroutines on queues (proc.go)
//! - `spawn.rs`: spawn, first run, exit (proc.go's newproc, goexit)
//! - `park.rs`: mcall, yield, park/ready, running a goroutine, the hand-offs (proc.go's gopark)
//! - `schedule.rs`: the scheduler loop, finding work, stealing, gs_run (proc.go's schedule)
//! - `deadlock.rs`: when every goroutine has exited or is asleep for good (proc.go's checkdead)
//! - `timer.rs`: timers and gs_sleep (time.go)
//! - `debug.rs`: gs_dump, gs_get_stats, the debugger's record (traceback.go, debug.go)
//! - `netpoll.rs`: the netpoller, fd waits (netpoll.go, netpoll_epoll.go); `syscall.rs`:
//!   gs_blocking and the sysmon thread (proc.go's entersyscall/exitsyscall, sysmon, retake)
//! - `runq.rs`, `grow.rs`, `threads.rs`, `fork.rs`, `monitor.rs`, `sanitizer.rs`,
//!   `traceback.rs`: run queues, stack growth, thread registry, fork, the stall monitor,
//!   ASan/TSan, SIGQUIT tracebacks.

pub mod copystack;
mod deadlock;
mod debug;
mod fault;
pub mod fork;
mod g;
pub mod grow;
mod m;
pub mod monitor;
pub mod netpoll; // issue #13
mod p;
mod park;
pub mod runq;
pub(crate) mod sanitizer;
mod schedule;
mod spawn;
pub mod syscall; // issue #13
pub mod threads;
mod timer;
mod traceback;

pub use deadlock::{
    all_done, all_done_locked, asleep_but_for_outside_threads, ext_block, ext_unblock_other, main_deadlock,
    main_goexit_deadlock, DEADLOCK_GRACE_NS, MAIN_GOEXIT,
};
pub(crate) use deadlock::{anyone_in_scheduler, recheck_deadlock, reset_monitor_after_fork, reset_thread_counts};
pub use debug::{dump, dump_current_for_fatal, stack_info, stats, DebugInfo, DEBUG_INFO};
pub use g::{
    EmbedHooks, Gobuf, MainWait, WaitReason, DEFAULT_GROWABLE_STACK_SIZE, DEFAULT_MAX_STACK, DEFAULT_STACK_SIZE, G,
    G_DEAD, G_IDLE, G_ORPHAN, G_RUNNABLE, G_RUNNING, G_WAITING, STACK_GUARD, WAIT_REASON_NAMES,
};
pub use m::{getg, getm, systemstack, wakep, Note, M};
pub use p::{ready_any, runqput, set_maxprocs, PLocal, MAX_PROCS, P, P_DEAD, P_IDLE, P_RUNNING};
use park::gogo;
pub(crate) use park::{enter_m, mcall, park_handoff};
pub use park::{park, ready, ready_with, whereami, yield_now, UnlockFn, Where};
pub use schedule::{end_slice, run, run_until, schedule, HANDOFF_SLICE_NS};
pub use spawn::{exit_now, spawn, spawn_default, Attr};
pub use timer::{sleep, timer_add, timer_del, TimerFn};

use crate::base::fatal::FdWriter;
use crate::base::futex::{Mutex, MutexGuard};
use core::ffi::{c_int, c_void};
use core::fmt::Write;
use core::ptr::null_mut;
use core::sync::atomic::AtomicU32;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use m::setm;
use runq::GQueue;
use std::collections::VecDeque;
use timer::TIMERS;

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

pub(super) fn remove(v: &mut Vec<*mut M>, m: *mut M) {
    if let Some(i) = v.iter().position(|&x| x == m) {
        v.swap_remove(i);
    }
}

/// State behind `SCHED.lock`.
pub struct SchedLocked {
    pub runq: GQueue,
    pub pidle: Vec<*mut P>,
    pub gfree: Vec<*mut G>,
    /// Every G ever allocated (G records are recycled, never freed): for gs_dump.
    pub allg: Vec<*mut G>,
    /// The rest of the current slab of G records ([`alloc_g`]): next free record, records left.
    pub gslab: (*mut G, usize),
    /// Ms of the threads alive that ever ran goroutines (gs_stats.threads counts them).
    pub allm: Vec<*mut M>,
    /// Records of exited threads' Ms, for reuse (threads.rs).
    pub mfree: Vec<*mut M>,
    pub initialised: bool,
    pub proc: ProcLocked,
    /// The P whose ring last overflowed into the global queue (a burst of spawns), while the
    /// queue holds goroutines; [`NO_SPILL`] otherwise (schedule.rs: global_head_aged).
    pub spill_from: usize,
}

/// `SchedLocked::spill_from` when no P's overflow is queued.
pub const NO_SPILL: usize = usize::MAX;

// SAFETY: the raw pointers are to G/M/P records that live forever; access is under the lock.
unsafe impl Send for SchedLocked {}

/// A value alone on its cache lines (128 bytes: x86 prefetches lines in pairs), so that writes to
/// it do not invalidate what other cores read next to it.
#[repr(align(128))]
pub struct CachePadded<T>(pub T);

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Fields are grouped by how they are used: `live` is written by every spawn and exit on every
/// P, the read-mostly group is read by every switch's hand-off checks on every P; sharing a line
/// made two Ps spawning at once 3x slower per goroutine (false sharing, PERFORMANCE.md).
pub struct Sched {
    pub lock: CachePadded<Mutex<SchedLocked>>,
    /// Goroutines spawned by threads that hold no P (the rest are counted per P, `P::live`).
    pub live: CachePadded<AtomicI64>,
    /// Read on every switch, written rarely.
    pub nprocs: AtomicUsize,
    pub npwait: AtomicUsize,
    /// GOSTACK_MIGRATE=1: every goroutine may migrate.
    pub migrate_all: AtomicBool,
    /// Mirror of `runq.len()` readable without the lock (written when the global queue changes).
    pub runqsize: CachePadded<AtomicUsize>,
    pub goidgen: AtomicI64,
    pub mnext: AtomicI64,
    pub total: AtomicU64,
    pub npidle: AtomicUsize,
    pub nmspinning: AtomicUsize,
    /// Online CPUs at start-up (bounds the spinning Ms).
    pub ncpu: AtomicUsize,
    pub allp: [P; MAX_PROCS],
}

pub static SCHED: Sched = Sched {
    lock: CachePadded(Mutex::new(SchedLocked {
        runq: GQueue::new(),
        pidle: Vec::new(),
        gfree: Vec::new(),
        allg: Vec::new(),
        gslab: (null_mut(), 0),
        allm: Vec::new(),
        mfree: Vec::new(),
        initialised: false,
        proc: ProcLocked::new(),
        spill_from: NO_SPILL,
    })),
    live: CachePadded(AtomicI64::new(0)),
    nprocs: AtomicUsize::new(1),
    npwait: AtomicUsize::new(0),
    migrate_all: AtomicBool::new(false),
    runqsize: CachePadded(AtomicUsize::new(0)),
    goidgen: AtomicI64::new(0),
    mnext: AtomicI64::new(0),
    total: AtomicU64::new(0),
    npidle: AtomicUsize::new(0),
    nmspinning: AtomicUsize::new(0),
    ncpu: AtomicUsize::new(1),
    allp: [const { P::new() }; MAX_PROCS],
};

/// Runtime set-up when the library loads: the number of Ps from GOSTACK_MAXPROCS (default: online
/// CPUs) and GOSTACK_MIGRATE.
#[ctor::ctor]
fn init_runtime() {
    init_once();
    fork::register();
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.trim().parse::<usize>().ok())
}

fn init_once() {
    crate::base::fatal::set_dump_hook(dump_current_for_fatal);
    crate::signal::set_fault_hook(fault::on_fault);
    traceback::init_from_env();
    sanitizer::init();
    let mut s = SCHED.lock.lock();
    if s.initialised {
        return;
    }
    s.initialised = true;
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let n = env_usize("GOSTACK_MAXPROCS").filter(|&n| n >= 1).unwrap_or(cpus).min(MAX_PROCS);
    SCHED.nprocs.store(n, Relaxed);
    SCHED.ncpu.store(cpus, Relaxed);
    for (i, p) in SCHED.allp.iter().enumerate() {
        p.index.store(i, Relaxed);
    }
    for i in (0..n).rev() {
        SCHED.allp[i].status.store(P_IDLE, Relaxed);
        s.pidle.push(&SCHED.allp[i] as *const P as *mut P);
    }
    SCHED.npidle.store(n, Relaxed);
    SCHED.migrate_all.store(std::env::var("GOSTACK_MIGRATE").is_ok_and(|v| v.trim() == "1"), Relaxed);
    if let Ok(v) = std::env::var("GOSTACK_STACK_KIND") {
        match v.trim() {
            "copy" => copystack::DEFAULT_KIND.store(crate::base::types::GS_STACK_COPY, Relaxed),
            "growable" | "" => {}
            _ => {
                let mut w = FdWriter::stderr();
                let _ = writeln!(w, "gostack: GOSTACK_STACK_KIND={v:?} not understood (growable or copy): growable");
            }
        }
    }
    if let Ok(v) = std::env::var("GOSTACK_STACKMOVE") {
        match grow::parse_stackmove(&v) {
            Some(mode) => grow::STACKMOVE.store(mode, Relaxed),
            None => {
                let mut w = FdWriter::stderr();
                let _ = writeln!(
                    w,
                    "gostack: GOSTACK_STACKMOVE={v:?} not understood (allow, log or fatal): stacks move when they must"
                );
            }
        }
    }
}

/// Locks the scheduler (set up by the library constructor, or here if that has not run).
pub(crate) fn lock_sched() -> MutexGuard<'static, SchedLocked> {
    let s = SCHED.lock.lock();
    if s.initialised {
        return s;
    }
    drop(s);
    init_once();
    SCHED.lock.lock()
}

#[inline]
pub(crate) fn global_put(s: &mut SchedLocked, g: *mut G) {
    s.runq.push(g);
    SCHED.runqsize.store(s.runq.len(), Relaxed);
}

#[inline]
pub(crate) fn global_get(s: &mut SchedLocked) -> Option<*mut G> {
    let g = s.runq.pop();
    SCHED.runqsize.store(s.runq.len(), Relaxed);
    if s.runq.is_empty() {
        s.spill_from = NO_SPILL;
    }
    g
}

/// Live goroutines: `SCHED.live` plus every P's `live`. Exact when no goroutine runs while it
/// is read (see deadlock.rs: all_done_locked); a snapshot otherwise.
pub fn live_count() -> i64 {
    SCHED.live.load(Acquire) + SCHED.allp.iter().map(|p| p.live.load(Acquire)).sum::<i64>()
}

pub use crate::base::clock::{nanotime, nanotime_coarse};

#[allow(dead_code)]
fn _assert_sync() {
    fn is_sync<T: Sync>() {}
    is_sync::<Sched>();
    let _ = AtomicPtr::<G>::new(null_mut());
}
