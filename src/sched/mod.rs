//! The scheduler: G, M, P (Go's names and shape).
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

pub mod fork;
pub mod grow;
pub mod monitor;
pub mod proc;
pub mod runq;
pub(crate) mod sanitizer;
pub mod threads;
mod traceback;

use crate::abi::types::*;
use crate::arch::{self, RawFn};
use crate::base::futex::{Mutex, MutexGuard};
use crate::fatal::{fatal, FdWriter};
use crate::stack::{self, Stack, StackCache};
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void, CStr};
use core::fmt::Write;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
pub use proc::{
    dump, main_deadlock, main_goexit_deadlock, ready_any, run, run_until, runqput, schedule, set_maxprocs, wakep,
    MAIN_GOEXIT,
};
use proc::{Note, ProcLocked};
use runq::{GQueue, LocalRunq};
use std::ffi::CString;

// ---- G -------------------------------------------------------------------------------------

pub const G_IDLE: u32 = 0;
pub const G_RUNNABLE: u32 = 1;
pub const G_RUNNING: u32 = 2;
pub const G_WAITING: u32 = 3;
pub const G_DEAD: u32 = 4;
/// Dropped in a fork child (fork.rs): never runs again; a wake-up of it is ignored.
pub const G_ORPHAN: u32 = 5;

/// Why a goroutine is parked (Go's `waitReason`): one byte in the G, a name for dumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum WaitReason {
    /// Not parked (or parked by code that gives no reason).
    None = 0,
    ChanSend,
    ChanReceive,
    Select,
    Sleep,
    MutexLock,
    WaitGroupWait,
    SemaAcquire,
    /// The sync layer's own unit tests.
    Test,
}

impl WaitReason {
    /// The name `gs_dump` shows (Go's where Go has one).
    pub fn as_str(self) -> &'static str {
        WAIT_REASON_NAMES[self as usize]
    }
}

/// The names of the wait reasons, indexed by their value: `as_str`, and for debuggers through
/// DebugInfo (an array of `&str`, (pointer, length) pairs).
pub static WAIT_REASON_NAMES: [&str; 9] = [
    "",
    "chan send",
    "chan receive",
    "select",
    "sleep",
    "sync.Mutex.Lock",
    "sync.WaitGroup.Wait",
    "semacquire",
    "test",
];

// One name per reason: the last reason's value is the table's last index.
const _: () = assert!(WaitReason::Test as usize == WAIT_REASON_NAMES.len() - 1);

/// Default stack reservation of a FIXED goroutine (lazily committed).
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Default window of a GROWABLE goroutine (chosen by measurement: docs/DESIGN.md, "The default window").
pub const DEFAULT_GROWABLE_STACK_SIZE: usize = stack::DEFAULT_WINDOW;
/// Default limit of a GROWABLE stack.
pub const DEFAULT_MAX_STACK: usize = 1 << 30;
/// Bytes above `stack.lo` kept free for the runtime: `stackguard0 = lo + STACK_GUARD`.
pub const STACK_GUARD: usize = 1024;

/// Saved context of a G that is not running: `sp` points at its switch frame (arch::SwitchFrame).
#[repr(C)]
pub struct Gobuf {
    pub sp: usize,
}

/// A goroutine.
#[repr(C)]
pub struct G {
    /// Saved context; 0 while running.
    pub sched: Gobuf,
    /// `stack.lo + STACK_GUARD`: published in %fs:0x70 while running (GS_STACK_CHECK compares).
    pub stackguard0: usize,
    pub stack: Stack,
    pub goid: i64,
    pub status: AtomicU32,
    pub stack_kind: u32,
    pub flags: u32,
    pub grows: u32,
    pub shrinks: u32,
    /// FP control state (MXCSR, x87 control word) of the spawner, for the first run.
    pub start_fp: (u32, u16),
    pub max_stack: usize,
    /// The M running it (while RUNNING); the M it is pinned to once it ran, unless migratable.
    pub m: *mut M,
    pub lockedm: *mut M,
    /// Link for run queues and free lists.
    pub schedlink: *mut G,
    /// Why it is parked (Go's waitReason), shown by gs_dump, SIGQUIT tracebacks and gdb.
    pub waitreason: WaitReason,
    /// Boxed: one word in the record (most goroutines have no name).
    pub name: Option<Box<CString>>,
    /// Set for the goroutine of a gs_main call: signalled when it exits.
    pub main_wait: *const MainWait,
    /// Embedding hooks (foreign-runtime state to swap on every switch), null for plain C.
    pub embed_hooks: *const EmbedHooks,
    /// The embedder's per-goroutine data (e.g. a PyThreadState).
    pub embed_data: *mut c_void,
    /// Copy-growing stacks: old stacks to free, shrink state (src/stack/grow.rs).
    pub growth: grow::GrowState,
    /// A GROWABLE goroutine that has not run yet has no stack (`stack.lo == 0`): it takes one of
    /// `growth.initial` bytes at its first run ([`first_run`]), where it calls
    /// `start_fn(start_arg)` with the FP control state `start_fp` of its spawner.
    pub start_fn: Option<RawFn>,
    pub start_arg: *mut c_void,
    /// valgrind's id for the stack (stack::valgrind), 0 when not running under valgrind.
    pub vg_stack: u32,
    /// AddressSanitizer's fake-stack handle of this goroutine while it is switched out
    /// (sched/sanitizer.rs); null when not under ASan, and for a goroutine that has not run.
    pub asan_fake: *mut c_void,
    /// Its ThreadSanitizer fiber (sched/sanitizer.rs), made at its first run; null otherwise.
    pub tsan_fiber: *mut c_void,
}

/// Hooks an embedded runtime (src/embed) runs on every switch of its goroutines: `switch_in` just
/// before the goroutine resumes, `switch_out` just after it stopped (yield, park, exit). They run
/// on g0 of the goroutine's M, or, for a hand-off (proc::park_handoff / yield_handoff), on the
/// stack of the goroutine switching out, right before the switch. They must not switch goroutines
/// and must only touch per-thread state that nothing reads until the switch is done.
pub struct EmbedHooks {
    pub switch_in: unsafe fn(g: *mut G),
    pub switch_out: unsafe fn(g: *mut G),
}

impl G {
    fn new() -> Self {
        G {
            sched: Gobuf { sp: 0 },
            stackguard0: 0,
            stack: Stack::default(),
            goid: 0,
            status: AtomicU32::new(G_IDLE),
            stack_kind: GS_STACK_GROWABLE,
            flags: 0,
            max_stack: 0,
            m: null_mut(),
            lockedm: null_mut(),
            schedlink: null_mut(),
            waitreason: WaitReason::None,
            name: None,
            grows: 0,
            shrinks: 0,
            main_wait: core::ptr::null(),
            embed_hooks: core::ptr::null(),
            embed_data: null_mut(),
            growth: Default::default(),
            start_fn: None,
            start_arg: null_mut(),
            start_fp: (0, 0),
            vg_stack: 0,
            asan_fake: null_mut(),
            tsan_fiber: null_mut(),
        }
    }
}

/// The exit flag of a gs_main goroutine; lives on the gs_main caller's stack.
pub struct MainWait {
    pub done: AtomicBool,
    /// The goroutine ended by gs_exit (Go's Goexit in main): gs_main does not return; the other
    /// goroutines run on, then it is Go's "no goroutines (main called runtime.Goexit)" fatal error.
    pub goexit: AtomicBool,
    /// The thread in gs_main, woken when the goroutine exits.
    pub m: *mut M,
}

// ---- M -------------------------------------------------------------------------------------

/// An OS thread that runs goroutines.
pub struct M {
    pub id: i64,
    /// g0's base stack pointer: every mcall starts there.
    pub g0_base: usize,
    /// Saved context of the thread inside gs_run/gs_main: gogo to it to leave the scheduler.
    pub resume_sp: usize,
    /// The goroutine running on this M, or null while the scheduler runs.
    pub curg: *mut G,
    pub p: *mut P,
    /// > 0 while a gs_systemstack function runs on g0 on behalf of curg.
    pub on_g0: u32,
    /// Inside gs_run/gs_main.
    pub in_scheduler: bool,
    /// FP control state loaded on this thread while g0 runs (see arch::gs_asm_gogo), packed.
    pub fpctl: u64,
    /// What gs_run/gs_main returns.
    pub exit_status: c_int,
    /// The gs_main goroutine this M waits for, if any.
    pub main_wait: *const MainWait,
    pub tid: i32,
    /// This M's sigaltstack (mapping base, length), 0 if it uses one it found installed.
    pub altstack: (usize, usize),
    /// The sigaltstack in use on this thread, `[lo, hi)` (ours or one found installed; (0, 0) if
    /// none): a stack pointer inside it means "in a signal handler" (abi's entry check).
    pub sigstack: (usize, usize),
    /// gopark's unlock function and its argument, run on g0 once the G is saved.
    pub waitunlockf: Option<UnlockFn>,
    pub waitlock: *mut c_void,
    /// A worker thread started by the runtime (never leaves the scheduler).
    pub is_worker: bool,
    /// Looking for work after a wakep (counted in SCHED.nmspinning).
    pub spinning: bool,
    /// Runnable goroutines pinned to this M, queued by other threads.
    pub lockedq: Mutex<GQueue>,
    pub lockedq_len: AtomicUsize,
    /// The thread is outside gs_run/gs_main: goroutines pinned to it are unpinned when readied.
    pub departed: AtomicBool,
    /// Where the M sleeps when idle.
    pub note: Note,
    /// When it acquired its P (for hand-off slices).
    pub p_since: i64,
    /// A P handed to this M while it slept (under the scheduler lock).
    pub nextp: *mut P,
    /// xorshift state for picking steal victims.
    pub rand: u32,
    /// A thread in gs_py_run leaves the scheduler at this nanotime (`i64::MAX`: never). Not a
    /// timer: deadlock detection ignores it (see [`proc::run_until`]).
    pub leave_at: i64,
    /// Bytes `newstack_m` must provide (from the stack's top) for the goroutine growing on this M
    /// (set by `grow::morestack` just before its mcall).
    pub grow_need: usize,
    /// Yields counted on this M, and whether the last count made it this M's turn to release
    /// stack pages (see `grow::safe_point_work`).
    pub safe_points: u32,
    pub release_pending: bool,
    /// AddressSanitizer (sched/sanitizer.rs): g0's fake-stack handle while a goroutine runs, and
    /// g0's stack bounds (found on first use).
    pub asan_g0_fake: *mut c_void,
    pub asan_g0_lo: usize,
    pub asan_g0_size: usize,
    /// ThreadSanitizer: the thread's own fiber (g0's), noted before its first goroutine runs.
    pub tsan_g0: *mut c_void,
    /// Goroutines resumed on this M (written by its thread, read by the stall monitor).
    pub ticks: AtomicU64,
    /// The thread's errno (`__errno_location()`), for abi::Entry.
    pub errno_loc: *mut c_int,
    /// A worker whose thread is the only one of a fork child (fork.rs, rule 4): it leaves the
    /// scheduler once the goroutines are done, and the process exits.
    pub forked_worker: bool,
}

/// Called on g0 after a goroutine parked (its context is saved, its status WAITING): releases
/// whatever lock the parking code held. Returning false resumes the goroutine at once.
pub type UnlockFn = unsafe fn(g: *mut G, lock: *mut c_void) -> bool;

/// The calling thread's M, or null if it never ran goroutines. Reads the initial-exec TLS word
/// `gs_tls_m` defined in the assembly (no call; async-signal-safe).
#[inline(always)]
pub fn getm() -> *mut M {
    let m: *mut M;
    // SAFETY: gs_tls_m is an 8-byte .tbss object of this library; the GOT entry holds its offset
    // from the thread pointer.
    unsafe {
        core::arch::asm!(
            "mov {m}, qword ptr [rip + gs_tls_m@GOTTPOFF]",
            "mov {m}, qword ptr fs:[{m}]",
            m = out(reg) m,
            options(nostack, preserves_flags, readonly, pure)
        )
    };
    m
}

/// Sets the calling thread's M (once, when the thread becomes an M).
fn setm(m: *mut M) {
    // SAFETY: as getm; the slot is this thread's own.
    unsafe {
        core::arch::asm!(
            "mov {t}, qword ptr [rip + gs_tls_m@GOTTPOFF]",
            "mov qword ptr fs:[{t}], {m}",
            t = out(reg) _,
            m = in(reg) m,
            options(nostack, preserves_flags)
        )
    };
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

// ---- P -------------------------------------------------------------------------------------

pub const MAX_PROCS: usize = 256;

/// A processor: the right to run goroutines, with a local run queue and caches.
pub struct P {
    pub runq: LocalRunq,
    inner: UnsafeCell<PLocal>,
    /// Resumed goroutines (gs_stats.switches); written only by the M holding this P.
    pub switches: AtomicU64,
    /// Goroutines spawned through this P (part of gs_stats.goroutines_total).
    pub spawned: AtomicU64,
    /// Goroutines spawned through this P minus goroutines that exited on it (negative when more
    /// exited here than started here); written only by the M holding this P. The sum over all Ps
    /// plus `SCHED.live` is the number of live goroutines ([`live_count`]): one shared counter
    /// written by every spawn and exit made two Ps spawning at once ~3x slower per goroutine.
    pub live: AtomicI64,
    /// proc::P_IDLE, P_RUNNING or P_DEAD (beyond nprocs).
    pub status: AtomicU32,
    /// Index in SCHED.allp.
    pub index: AtomicUsize,
}

/// State of a P touched only by the M holding it.
pub struct PLocal {
    pub m: *mut M,
    /// Goroutine ids handed out by this P: [goid_next, goid_end) (Go's goidcache).
    pub goid_next: i64,
    pub goid_end: i64,
    pub schedtick: u32,
    /// Goroutines taken from `runnext` in a row (see runq::LocalRunq::get_fair).
    pub next_streak: u32,
    pub gfree: Vec<*mut G>,
    pub stacks: StackCache,
}

// SAFETY: PLocal is only accessed by the M that holds the P (ownership passes under SCHED.lock);
// the rest is atomics.
unsafe impl Sync for P {}

impl P {
    const fn new() -> Self {
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
            status: AtomicU32::new(proc::P_DEAD),
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
    pub unsafe fn local(&self) -> &mut PLocal {
        // SAFETY: per the contract, only the holder touches PLocal.
        unsafe { &mut *self.inner.get() }
    }
}

// ---- the scheduler ---------------------------------------------------------------------------

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
}

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
    crate::fatal::set_dump_hook(dump_current_for_fatal);
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
    for (i, p) in SCHED.allp.iter().enumerate() {
        p.index.store(i, Relaxed);
    }
    for i in (0..n).rev() {
        SCHED.allp[i].status.store(proc::P_IDLE, Relaxed);
        s.pidle.push(&SCHED.allp[i] as *const P as *mut P);
    }
    SCHED.npidle.store(n, Relaxed);
    SCHED.migrate_all.store(std::env::var("GOSTACK_MIGRATE").is_ok_and(|v| v.trim() == "1"), Relaxed);
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

pub(crate) fn global_put(s: &mut SchedLocked, g: *mut G) {
    s.runq.push(g);
    SCHED.runqsize.store(s.runq.len(), Relaxed);
}

pub(crate) fn global_get(s: &mut SchedLocked) -> Option<*mut G> {
    let g = s.runq.pop();
    SCHED.runqsize.store(s.runq.len(), Relaxed);
    g
}

// ---- spawn ------------------------------------------------------------------------------------

/// Validated spawn attributes.
pub struct Attr {
    pub stack_kind: u32,
    pub flags: u32,
    pub stack_size: usize,
    pub max_stack: usize,
    pub name: Option<CString>,
    /// For embedders: hooks and data attached to the goroutine (see [`EmbedHooks`]).
    pub embed: Option<(&'static EmbedHooks, *mut c_void)>,
}

impl Attr {
    pub fn default_attr() -> Attr {
        Attr {
            stack_kind: GS_STACK_GROWABLE,
            flags: 0,
            stack_size: DEFAULT_GROWABLE_STACK_SIZE,
            max_stack: DEFAULT_MAX_STACK,
            name: None,
            embed: None,
        }
    }

    /// Checks a C attribute block; `GS_EINVAL` for anything out of range.
    ///
    /// # Safety
    /// `a.name` is NULL or a NUL-terminated string.
    pub unsafe fn from_c(a: &gs_attr) -> Result<Attr, c_int> {
        if a.stack_kind != GS_STACK_GROWABLE && a.stack_kind != GS_STACK_FIXED {
            return Err(GS_EINVAL);
        }
        if a.flags & !(GS_SPAWN_MIGRATABLE | GS_SPAWN_NOMOVE) != 0 {
            return Err(GS_EINVAL);
        }
        let in_range = |v: usize| v == 0 || (GS_STACK_MIN..=GS_STACK_MAX).contains(&v);
        if !in_range(a.stack_size) || !in_range(a.max_stack_size) {
            return Err(GS_EINVAL);
        }
        let max_stack = if a.max_stack_size == 0 { DEFAULT_MAX_STACK } else { a.max_stack_size };
        let default_size =
            if a.stack_kind == GS_STACK_FIXED { DEFAULT_STACK_SIZE } else { DEFAULT_GROWABLE_STACK_SIZE };
        let stack_size = if a.stack_size == 0 { default_size.min(max_stack) } else { a.stack_size };
        if a.stack_kind == GS_STACK_GROWABLE && stack_size > max_stack {
            return Err(GS_EINVAL);
        }
        let name = if a.name.is_null() {
            None
        } else {
            // SAFETY: per the contract, a NUL-terminated string.
            Some(unsafe { CStr::from_ptr(a.name) }.to_owned())
        };
        Ok(Attr {
            stack_kind: a.stack_kind,
            flags: a.flags,
            stack_size: stack::round_size(stack_size),
            max_stack,
            name,
            embed: None,
        })
    }
}

/// Starts a goroutine running `f(arg)`; returns its id. Callable from any thread.
///
/// # Safety
/// `f` must be safe to call with `arg` on a goroutine stack, at any later time, on any thread
/// (the C API's contract for `gs_spawn`).
pub unsafe fn spawn(attr: Attr, f: RawFn, arg: *mut c_void) -> Result<i64, c_int> {
    // SAFETY: spawn_inner's contract: attr is validated (round_size'd); f/arg per ours.
    unsafe { spawn_inner(attr, f, arg, core::ptr::null()) }
}

pub(crate) unsafe fn spawn_inner(
    attr: Attr,
    f: RawFn,
    arg: *mut c_void,
    main_wait: *const MainWait,
) -> Result<i64, c_int> {
    let m = getm();
    // SAFETY: our own M (if any); only this thread touches m.p.
    let p = if m.is_null() { null_mut() } else { unsafe { (*m).p } };
    // A GROWABLE goroutine takes its stack at its first run (see `first_run`): 100,000
    // goroutines spawned at once and run one after another then reuse the same few warm stacks,
    // as Go's do (its stacks start at 2 KiB and are mostly untouched until run), instead of each
    // faulting in fresh pages. FIXED stacks (user-sized, possibly huge) are taken now, so that
    // failing to get one is GS_ENOMEM for the spawner.
    let lazy = attr.stack_kind == GS_STACK_GROWABLE;
    let (stack, g) = if !p.is_null() {
        // SAFETY: this thread's M holds p.
        let pl = unsafe { (*p).local() };
        let stack = if lazy {
            Stack::default()
        } else {
            let Some(stack) = pl.stacks.alloc(attr.stack_size) else { return Err(GS_ENOMEM) };
            stack
        };
        let g = match pl.gfree.pop() {
            Some(g) => g,
            None => gfget_slow(pl),
        };
        (stack, g)
    } else {
        let stack = if lazy {
            Stack::default()
        } else {
            let Some(stack) = stack::alloc_global(attr.stack_size) else { return Err(GS_ENOMEM) };
            stack
        };
        let free = lock_sched().gfree.pop();
        let g = free.unwrap_or_else(alloc_g);
        (stack, g)
    };
    let goid = if !p.is_null() {
        // SAFETY: this thread's M holds p.
        let pl = unsafe { (*p).local() };
        if pl.goid_next == pl.goid_end {
            const BATCH: i64 = 16;
            pl.goid_next = SCHED.goidgen.fetch_add(BATCH, Relaxed) + 1;
            pl.goid_end = pl.goid_next + BATCH;
        }
        pl.goid_next += 1;
        // SAFETY: as above.
        unsafe { (*p).spawned.store((*p).spawned.load(Relaxed) + 1, Relaxed) };
        pl.goid_next - 1
    } else {
        SCHED.total.fetch_add(1, Relaxed);
        SCHED.goidgen.fetch_add(1, Relaxed) + 1
    };
    // SAFETY: g is a free G we own; stack is ours and its top is writable.
    unsafe {
        let gr = &mut *g;
        gr.stack = stack;
        gr.stackguard0 = stack.lo + STACK_GUARD;
        gr.goid = goid;
        gr.stack_kind = attr.stack_kind;
        gr.flags = attr.flags;
        gr.max_stack = attr.max_stack;
        gr.m = null_mut();
        gr.lockedm = null_mut();
        gr.waitreason = WaitReason::None;
        gr.name = attr.name.map(Box::new);
        gr.grows = 0;
        gr.shrinks = 0;
        gr.asan_fake = null_mut();
        gr.main_wait = main_wait;
        match attr.embed {
            Some((h, d)) => {
                gr.embed_hooks = h;
                gr.embed_data = d;
            }
            None => {
                gr.embed_hooks = core::ptr::null();
                gr.embed_data = null_mut();
            }
        }
        if lazy {
            gr.growth.reset(attr.stack_size);
            gr.stackguard0 = 0;
            gr.start_fn = Some(f);
            gr.start_arg = arg;
            gr.start_fp = arch::fp_control();
            gr.sched.sp = 0;
        } else {
            gr.vg_stack = stack::valgrind::register(stack.lo, stack.hi);
            gr.growth.reset(stack.size());
            gr.start_fn = None;
            let (f, arg) = sanitized_entry(g, f, arg);
            gr.sched.sp = arch::init_frame(stack.hi, f, arg, goexit1, g.cast(), arch::fp_control());
        }
        sanitizer::release(g as *const c_void);
        gr.status.store(G_RUNNABLE, Release);
    }
    if p.is_null() {
        SCHED.live.fetch_add(1, Release);
    } else {
        // SAFETY: this thread's M holds p (only it writes p.live).
        let pr = unsafe { &*p };
        pr.live.store(pr.live.load(Relaxed) + 1, Release);
    }
    // SAFETY: g is RUNNABLE and on no queue.
    unsafe { ready_any(g, false) };
    Ok(goid)
}

/// The P's free G list is empty: refill a batch from the global list (Go's gfget), else allocate.
#[cold]
fn gfget_slow(pl: &mut PLocal) -> *mut G {
    {
        let mut s = lock_sched();
        let n = s.gfree.len().min(32);
        let at = s.gfree.len() - n;
        pl.gfree.extend(s.gfree.drain(at..));
    }
    pl.gfree.pop().unwrap_or_else(alloc_g)
}

/// G records per slab: records are never freed, so they are carved from slabs (no allocator
/// header or size-class rounding per record: 216 B each instead of 224; a million parked
/// goroutines are a million records).
const G_SLAB: usize = 256;

fn alloc_g() -> *mut G {
    let mut s = lock_sched();
    if s.gslab.1 == 0 {
        let mut slab: Vec<G> = Vec::with_capacity(G_SLAB);
        // The buffer's pointer covers its whole capacity; the Vec is forgotten (never freed).
        s.gslab = (slab.as_mut_ptr(), G_SLAB);
        core::mem::forget(slab);
    }
    let g = s.gslab.0;
    // SAFETY: g is the next unused record of a leaked slab with s.gslab.1 > 0 records left.
    unsafe {
        g.write(G::new());
        s.gslab = (g.add(1), s.gslab.1 - 1);
    }
    s.allg.push(g);
    DEBUG_INFO.allg.store(s.allg.as_mut_ptr(), Release);
    DEBUG_INFO.nallg.store(s.allg.len(), Release);
    g
}

/// What a debugger needs to list goroutines, in one record that tools/gdb/gostack.py finds by
/// its symbol (`gostack::sched::DEBUG_INFO`) and reads as raw words, so that it works without
/// the library's type information (release builds carry line tables only): every G ever made
/// (`SchedLocked::allg`'s buffer and length, written under the scheduler lock after each push)
/// and the offsets of the fields it shows. `&str` and `Box<[u8]>` are read as (pointer, length)
/// pairs, `Option<Box<_>>` as a pointer (null: None): rustc's layout of them, checked by the gdb
/// test in tests/c_tests.rs.
#[repr(C)]
pub struct DebugInfo {
    /// `b"gostack1"`: the layout version of this record.
    pub magic: [u8; 8],
    pub allg: AtomicPtr<*mut G>,
    pub nallg: AtomicUsize,
    pub g_sched_sp: usize,
    pub g_stack_lo: usize,
    pub g_stack_hi: usize,
    pub g_goid: usize,
    pub g_status: usize,
    pub g_waitreason: usize,
    pub g_name: usize,
    pub g_m: usize,
    pub m_tid: usize,
    /// `G.waitreason` is one byte; the names, by its value: an array of `&str`.
    pub wait_reason_names: *const &'static str,
    pub n_wait_reasons: usize,
}

// SAFETY: the record is written once at compile time but for the two atomics; the names pointer
// points to an immutable static.
unsafe impl Sync for DebugInfo {}

pub static DEBUG_INFO: DebugInfo = DebugInfo {
    magic: *b"gostack1",
    allg: AtomicPtr::new(null_mut()),
    nallg: AtomicUsize::new(0),
    g_sched_sp: core::mem::offset_of!(G, sched) + core::mem::offset_of!(Gobuf, sp),
    g_stack_lo: core::mem::offset_of!(G, stack) + core::mem::offset_of!(Stack, lo),
    g_stack_hi: core::mem::offset_of!(G, stack) + core::mem::offset_of!(Stack, hi),
    g_goid: core::mem::offset_of!(G, goid),
    g_status: core::mem::offset_of!(G, status),
    g_waitreason: core::mem::offset_of!(G, waitreason),
    g_name: core::mem::offset_of!(G, name),
    g_m: core::mem::offset_of!(G, m),
    m_tid: core::mem::offset_of!(M, tid),
    wait_reason_names: WAIT_REASON_NAMES.as_ptr(),
    n_wait_reasons: WAIT_REASON_NAMES.len(),
};

// ---- switching ------------------------------------------------------------------------------

/// Go's mcall: save the running G `g` and run `f(g)` on g0. Returns when `g` is resumed.
///
/// # Safety
/// Called on `g`'s stack, `m` is this thread's M with `m.curg == g`.
#[inline(always)]
pub(crate) unsafe fn mcall(m: *mut M, g: *mut G, f: RawFn) {
    // SAFETY: per the contract; the Gobuf outlives the switch (G records are never freed).
    unsafe {
        if sanitizer::any() {
            sanitizer::leave_g_for_g0(m, g, f as usize == goexit0 as *const () as usize);
        }
        arch::gs_asm_mcall(&mut (*g).sched.sp, (*m).g0_base, f, g.cast());
        sanitizer::enter_g(g);
    }
}

/// Where the calling code stands, for the API's argument checks.
pub enum Where {
    /// On a goroutine's own stack.
    Goroutine(*mut M, *mut G),
    /// Inside a gs_systemstack function called from a goroutine.
    SystemStack,
    /// On a thread outside any goroutine.
    Outside,
}

#[inline]
pub fn whereami() -> Where {
    let m = getm();
    if m.is_null() {
        return Where::Outside;
    }
    // SAFETY: our own M.
    unsafe {
        if (*m).curg.is_null() {
            Where::Outside
        } else if (*m).on_g0 != 0 {
            Where::SystemStack
        } else {
            Where::Goroutine(m, (*m).curg)
        }
    }
}

/// gs_yield: Go's Gosched.
#[inline(always)]
pub fn yield_now() -> c_int {
    match whereami() {
        // SAFETY: we are on g's stack (gs_yield secured it) and m is ours.
        Where::Goroutine(m, g) => unsafe {
            if !proc::yield_handoff() {
                mcall(m, g, gosched_m);
            }
            GS_OK
        },
        Where::SystemStack => GS_ESTATE,
        Where::Outside => GS_ENOTGOROUTINE,
    }
}

/// First thing every `_m` function does: note the FP control state the goroutine left loaded,
/// and free the stacks it left behind when it grew in the signal handler.
///
/// # Safety
/// On g0, `g` just saved by mcall on its M.
#[inline(always)]
pub(crate) unsafe fn enter_m(g: *mut G) -> *mut M {
    // SAFETY: g was just saved by mcall on its M.
    unsafe {
        let m = (*g).m;
        sanitizer::enter_g0(m);
        (*m).fpctl = arch::frame_fpctl((*g).sched.sp);
        if !(*g).embed_hooks.is_null() {
            ((*(*g).embed_hooks).switch_out)(g);
        }
        grow::settle(m, g);
        m
    }
}

unsafe extern "C" fn gosched_m(gp: *mut c_void) {
    let g = gp as *mut G;
    // SAFETY: on g0 of the M that ran g; g is saved.
    unsafe {
        let m = enter_m(g);
        grow::shrink_at_safe_point(m, g);
        (*g).status.store(G_RUNNABLE, Relaxed);
        (*m).curg = null_mut();
        runqput(&*(*m).p, g, false);
        schedule(m)
    }
}

/// gs_exit: Go's Goexit. In gs_main's goroutine, gs_main does not return: the others run on
/// (see [`MainWait::goexit`]).
pub fn exit_now() -> c_int {
    match whereami() {
        // SAFETY: we are on g's stack; goexit0 never returns here.
        Where::Goroutine(m, g) => unsafe {
            let mw = (*g).main_wait;
            if !mw.is_null() {
                (*mw).goexit.store(true, Release);
                (*g).main_wait = core::ptr::null();
            }
            sanitizer::goroutine_exits();
            mcall(m, g, goexit0);
            fatal!("goexit0 returned")
        },
        Where::SystemStack => GS_ESTATE,
        Where::Outside => GS_ENOTGOROUTINE,
    }
}

// ---- park / ready: the primitive the sync layer builds on ----------------------------------

/// Go's gopark: parks the running goroutine with a wait reason (shown by gs_dump). Once the
/// goroutine is saved and WAITING, `unlockf(g, lock)` runs on g0; if it returns false the
/// goroutine resumes at once, else it stays parked until someone calls [`ready`] on it.
/// Returns `GS_ENOTGOROUTINE`/`GS_ESTATE` when not on a goroutine's own stack.
///
/// # Safety
/// `unlockf` must be safe to call with `lock` on g0 (no stack of the parked goroutine may be
/// assumed to stay untouched: another thread may resume it as soon as the lock is released).
pub unsafe fn park(reason: WaitReason, unlockf: Option<UnlockFn>, lock: *mut c_void) -> c_int {
    match whereami() {
        // SAFETY: on g's own stack; park_m runs on g0 and resumes g only through ready/execute.
        Where::Goroutine(m, g) => unsafe {
            (*g).waitreason = reason;
            (*m).waitunlockf = unlockf;
            (*m).waitlock = lock;
            mcall(m, g, park_m);
            GS_OK
        },
        Where::SystemStack => GS_ESTATE,
        Where::Outside => GS_ENOTGOROUTINE,
    }
}

unsafe extern "C" fn park_m(gp: *mut c_void) {
    let g = gp as *mut G;
    // SAFETY: on g0; g is saved. Status becomes WAITING before the unlock so that a ready() that
    // follows the unlock sees it.
    unsafe {
        let m = enter_m(g);
        (*g).status.store(G_WAITING, Release);
        (*m).curg = null_mut();
        if let Some(f) = (*m).waitunlockf.take() {
            let lock = core::mem::replace(&mut (*m).waitlock, null_mut());
            if !f(g, lock) {
                (*g).status.store(G_RUNNABLE, Relaxed);
                execute(m, &*(*m).p, g);
            }
        }
        schedule(m)
    }
}

/// Go's goready: makes a parked goroutine runnable; it runs next on the caller's P when the caller
/// is a goroutine (Go's runnext), else it is queued globally. Callable from any thread.
///
/// # Safety
/// `g` is a goroutine parked by [`park`] that nobody else readies.
#[inline]
pub unsafe fn ready(g: *mut G) {
    // SAFETY: per the contract.
    unsafe { ready_with(g, true) }
}

/// Like [`ready`], `next` choosing between Go's runnext (the woken goroutine runs next: channel
/// hand-offs) and the tail of the run queue (timers: several expiring in one pass keep their
/// deadline order).
///
/// # Safety
/// As [`ready`].
#[inline]
pub unsafe fn ready_with(g: *mut G, next: bool) {
    // SAFETY: g is a live G record (never freed).
    let ok = unsafe { (*g).status.compare_exchange(G_WAITING, G_RUNNABLE, AcqRel, Relaxed) };
    if let Err(st) = ok {
        if st == G_ORPHAN {
            return; // a parent's goroutine, dropped in this fork child (fork.rs)
        }
        goready_not_waiting(g, st);
    }
    // SAFETY: RUNNABLE, on no queue, ours to queue.
    unsafe { ready_any(g, next) };
}

#[cold]
#[inline(never)]
fn goready_not_waiting(g: *mut G, st: u32) -> ! {
    // SAFETY: a live G record (never freed).
    fatal!("goready: goroutine {} has status {} (not waiting)", unsafe { (*g).goid }, st);
}

// ---- timers and sleep ---------------------------------------------------------------------

/// Live goroutines: `SCHED.live` plus every P's `live`. Exact when no goroutine runs while it
/// is read (see proc::all_done_locked); a snapshot otherwise.
pub fn live_count() -> i64 {
    SCHED.live.load(Acquire) + SCHED.allp.iter().map(|p| p.live.load(Acquire)).sum::<i64>()
}

pub use crate::base::clock::{nanotime, nanotime_coarse};

/// A timer callback: runs on some M's g0 (or a thread in the scheduler) with no runtime lock
/// held, after its deadline. It must not block; it typically calls [`ready`].
pub type TimerFn = unsafe fn(arg: usize, seq: u64);

struct Timer {
    when: i64,
    id: u64,
    f: TimerFn,
    arg: usize,
    seq: u64,
}

impl PartialEq for Timer {
    fn eq(&self, o: &Self) -> bool {
        self.when == o.when && self.id == o.id
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timer {
    // Min-heap on (when, id) through BinaryHeap's max-heap.
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        (o.when, o.id).cmp(&(self.when, self.id))
    }
}

struct Timers {
    heap: std::collections::BinaryHeap<Timer>,
    /// Ids armed and not yet fired or deleted (a deleted timer stays in the heap until it
    /// reaches the top, then is skipped).
    armed: std::collections::BTreeSet<u64>,
    next_id: u64,
}

static TIMERS: Mutex<Timers> = Mutex::new(Timers {
    heap: std::collections::BinaryHeap::new(),
    armed: std::collections::BTreeSet::new(),
    next_id: 1,
});
/// Deadline of the earliest timer (i64::MAX if none): checked without the lock.
pub(crate) static TIMER_NEXT: AtomicI64 = AtomicI64::new(i64::MAX);

/// Arms a timer: `f(arg, seq)` runs at or after `when` (nanotime). Returns its id for
/// [`timer_del`].
pub fn timer_add(when: i64, f: TimerFn, arg: usize, seq: u64) -> u64 {
    let mut t = TIMERS.lock();
    let id = t.next_id;
    t.next_id += 1;
    t.heap.push(Timer { when, id, f, arg, seq });
    t.armed.insert(id);
    let next = t.heap.peek().map_or(i64::MAX, |t| t.when);
    TIMER_NEXT.store(next, Release);
    drop(t);
    // Idle Ms may sleep until a later deadline: wake one to recompute (an earlier deadline).
    if next == when {
        let s = lock_sched();
        if let Some(&m) = s.proc.waiting.first().or(s.proc.midle.first()) {
            // SAFETY: Ms are never freed.
            unsafe { (*m).note.wakeup() };
        }
    }
    id
}

/// Disarms a timer. Returns true if it had not fired (and now never will).
pub fn timer_del(id: u64) -> bool {
    let mut t = TIMERS.lock();
    let was_armed = t.armed.remove(&id);
    // Deleted timers on top of the heap go now: left there, they kept TIMER_NEXT at their
    // deadline, and deadlock detection (which needs "no timer pending") waited for it (a select
    // with a 146-year timeout that completed at once hid every later deadlock).
    while t.heap.peek().is_some_and(|top| !t.armed.contains(&top.id)) {
        t.heap.pop();
    }
    TIMER_NEXT.store(t.heap.peek().map_or(i64::MAX, |t| t.when), Release);
    was_armed
}

/// Runs every timer whose deadline has passed. Returns true if any ran. Inlined check: no clock
/// read and no call when no timer is armed (the common case on the switch path).
#[inline(always)]
pub(crate) fn run_timers() -> bool {
    if !timer_due() {
        return false;
    }
    run_timers_slow()
}

/// Whether a timer's deadline has passed: one atomic load while no timer is armed, the clock
/// (out of line) only while one is. What `schedule()` and the hand-offs check.
#[inline(always)]
pub(crate) fn timer_due() -> bool {
    let next = TIMER_NEXT.load(Acquire);
    next != i64::MAX && timer_due_at(next)
}

#[cold]
#[inline(never)]
fn timer_due_at(next: i64) -> bool {
    nanotime() >= next
}

#[cold]
#[inline(never)]
fn run_timers_slow() -> bool {
    let mut ran = false;
    loop {
        let now = nanotime();
        let due = {
            let mut t = TIMERS.lock();
            let mut due = None;
            while let Some(top) = t.heap.peek() {
                if top.when > now {
                    break;
                }
                let top = t.heap.pop().unwrap();
                if t.armed.remove(&top.id) {
                    due = Some(top);
                    break;
                }
            }
            let next = t.heap.peek().map_or(i64::MAX, |t| t.when);
            TIMER_NEXT.store(next, Release);
            due
        };
        match due {
            // SAFETY: the callback's contract (TimerFn).
            Some(tm) => unsafe {
                (tm.f)(tm.arg, tm.seq);
                ran = true;
            },
            None => return ran,
        }
    }
}

unsafe fn sleep_wake(arg: usize, _seq: u64) {
    // SAFETY: arg is the G parked in sleep(); its timer fires once. Tail, not runnext: timers
    // that expire in the same pass must wake in deadline order.
    unsafe { ready_with(arg as *mut G, false) };
}

unsafe fn sleep_arm(g: *mut G, when: *mut c_void) -> bool {
    timer_add(when as i64, sleep_wake, g as usize, 0);
    true
}

/// gs_sleep: parks the calling goroutine for at least `ns` nanoseconds; from a thread outside
/// goroutines, sleeps that thread.
pub fn sleep(ns: i64) -> c_int {
    if ns < 0 {
        return GS_EINVAL;
    }
    match whereami() {
        Where::Goroutine(..) => {
            let when = nanotime().saturating_add(ns);
            // SAFETY: sleep_arm arms the timer after the G is saved, so its wake-up cannot race
            // ahead of the park.
            unsafe { park(WaitReason::Sleep, Some(sleep_arm), when as usize as *mut c_void) }
        }
        Where::SystemStack => GS_ESTATE,
        Where::Outside => {
            std::thread::sleep(std::time::Duration::from_nanos(ns as u64));
            GS_OK
        }
    }
}

/// Called by gs_asm_goexit when a goroutine's function returns, on its own stack.
unsafe extern "C" fn goexit1(gp: *mut c_void) -> ! {
    let g = gp as *mut G;
    // SAFETY: g is running on this M.
    unsafe {
        sanitizer::goroutine_exits();
        mcall((*g).m, g, goexit0);
    }
    fatal!("goexit0 returned")
}

unsafe extern "C" fn goexit0(gp: *mut c_void) {
    let g = gp as *mut G;
    // SAFETY: on g0; g is dead from here on and owned by this M until freed.
    unsafe {
        let m = enter_m(g);
        sanitizer::fiber_gone(g);
        let p = &*(*m).p;
        (*m).curg = null_mut();
        (*g).status.store(G_DEAD, Relaxed);
        let pl = p.local();
        stack::valgrind::deregister((*g).vg_stack);
        (*g).vg_stack = 0;
        pl.stacks.free((*g).stack);
        (*g).stack = Stack::default();
        (*g).name = None;
        (*g).m = null_mut();
        (*g).lockedm = null_mut();
        (*g).sched.sp = 0;
        let mw = (*g).main_wait;
        (*g).main_wait = core::ptr::null();
        (*g).embed_hooks = core::ptr::null();
        (*g).embed_data = null_mut();
        pl.gfree.push(g);
        if pl.gfree.len() > 256 {
            // Go's gfput: hand half to the global list in one go.
            let mut s = lock_sched();
            let half = pl.gfree.len() / 2;
            s.gfree.extend(pl.gfree.drain(..half));
        }
        // (Threads in gs_run waiting for the end of all goroutines are woken by the last M to go
        // idle, proc::stop_m, which can count exactly.)
        p.live.store(p.live.load(Relaxed) - 1, Release);
        if !mw.is_null() {
            (*mw).done.store(true, Release);
        }
        if !mw.is_null() && (*mw).m != m {
            (*(*mw).m).note.wakeup();
        }
        schedule(m)
    }
}

/// Runs `g` on `m` (which holds `p`). Never returns.
#[inline(always)]
pub unsafe fn execute(m: *mut M, p: &P, g: *mut G) -> ! {
    // SAFETY: g was taken from a run queue: RUNNABLE and ours.
    unsafe {
        set_running(m, p, g);
        if !(*g).embed_hooks.is_null() {
            ((*(*g).embed_hooks).switch_in)(g);
        }
        if (*g).stack.lo == 0 {
            first_run(p, g);
        }
        arch::set_tls_stack_guard((*g).stackguard0);
        sanitizer::leave_g0(m, g);
        let sp = (*g).sched.sp;
        (*g).sched.sp = 0;
        arch::gs_asm_gogo(sp, (*m).fpctl)
    }
}

/// The records' side of running `g` on `m` (which holds `p`): RUNNING, its M, its pin to that M
/// (from its first run on, unless migratable), m's current goroutine, the P's switch count. Shared
/// by `execute` and the hand-offs (proc::handoff_run).
///
/// # Safety
/// `g` was taken from `p`'s queue (or a hand-off's) by `m`, which holds `p`.
#[inline(always)]
pub(crate) unsafe fn set_running(m: *mut M, p: &P, g: *mut G) {
    // SAFETY: per the contract: g is ours.
    unsafe {
        (*g).status.store(G_RUNNING, Relaxed);
        (*g).m = m;
        if (*g).lockedm.is_null() && (*g).flags & GS_SPAWN_MIGRATABLE == 0 && !SCHED.migrate_all.load(Relaxed) {
            (*g).lockedm = m;
        }
        (*m).curg = g;
        p.switches.store(p.switches.load(Relaxed) + 1, Relaxed);
        (*m).ticks.store((*m).ticks.load(Relaxed) + 1, Relaxed);
    }
}

/// A GROWABLE goroutine's first run: takes its stack from the P's cache and builds the entry
/// frame that calls its function. Out of memory here is fatal (as in Go: the spawner is gone).
///
/// # Safety
/// On g0 of the M that holds `p` and is about to run `g`, which has no stack yet.
#[cold]
#[inline(never)]
unsafe fn first_run(p: &P, g: *mut G) {
    // SAFETY: per the contract: g is ours (RUNNING on this M), p is held by this M.
    unsafe {
        let gr = &mut *g;
        let Some(stack) = p.local().stacks.alloc(gr.growth.initial) else {
            crate::fatal::fatal_as!("out of memory"; "cannot allocate a {}-byte stack for goroutine {}", gr.growth.initial, gr.goid);
        };
        let Some(f) = gr.start_fn.take() else { fatal!("goroutine {} has neither a stack nor a function", gr.goid) };
        gr.stack = stack;
        gr.vg_stack = stack::valgrind::register(stack.lo, stack.hi);
        gr.stackguard0 = stack.lo + STACK_GUARD;
        let (f, arg) = sanitized_entry(g, f, gr.start_arg);
        gr.sched.sp = arch::init_frame(stack.hi, f, arg, goexit1, g.cast(), gr.start_fp);
    }
}

/// The function and argument a new goroutine's first frame calls: `f(arg)` itself, or under
/// AddressSanitizer [`asan_gostart`], which announces the arrival on the new stack first (it keeps
/// `f` and `arg` in the G's `start_fn`/`start_arg`) and unpoisons the stack.
///
/// # Safety
/// `g` is ours and has its stack.
unsafe fn sanitized_entry(g: *mut G, f: RawFn, arg: *mut c_void) -> (RawFn, *mut c_void) {
    if !sanitizer::asan() && !sanitizer::tsan() {
        return (f, arg);
    }
    // SAFETY: per the contract.
    unsafe {
        sanitizer::unpoison((*g).stack.lo, (*g).stack.hi);
        (*g).start_fn = Some(f);
        (*g).start_arg = arg;
    }
    (asan_gostart, g.cast())
}

/// A goroutine's first frame under AddressSanitizer (see [`sanitized_entry`]).
unsafe extern "C" fn asan_gostart(gp: *mut c_void) {
    let g = gp as *mut G;
    // SAFETY: g is the goroutine running here, at its first instruction.
    unsafe {
        sanitizer::enter_g(g);
        sanitizer::acquire(g as *const c_void);
        let Some(f) = (*g).start_fn.take() else { fatal!("goroutine {} started without a function", (*g).goid) };
        f((*g).start_arg)
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
        spinning: false,
        lockedq: Mutex::new(GQueue::new()),
        lockedq_len: AtomicUsize::new(0),
        departed: AtomicBool::new(true),
        note: Note::new(),
        p_since: 0,
        nextp: null_mut(),
        rand: 0x9e37_79b9 ^ (SCHED.mnext.load(Relaxed) as u32).wrapping_mul(2_654_435_761) | 1,
        leave_at: i64::MAX,
        grow_need: 0,
        safe_points: grow::RELEASE_EVERY,
        release_pending: false,
        asan_g0_fake: null_mut(),
        asan_g0_lo: 0,
        asan_g0_size: 0,
        tsan_g0: null_mut(),
        ticks: AtomicU64::new(0),
        forked_worker: false,
        // SAFETY: no preconditions; this thread's slot, valid while it lives.
        errno_loc: unsafe { libc::__errno_location() },
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
    setm(m);
    crate::signal::on_new_m(m);
    m
}

impl M {
    /// Reuses the record of an exited thread: every field from `fresh` except the locks
    /// (`lockedq`, `note`), which a waker that read this M's address before the thread left may
    /// still take (it then sees `departed` and backs off); `lockedq` is empty since the thread left
    /// the scheduler (proc::leave_scheduler). Written as a destructuring so that a new field
    /// cannot be forgotten.
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
            lockedq_len,
            departed,
            note: _,
            p_since,
            nextp,
            rand,
            leave_at,
            grow_need,
            safe_points,
            release_pending,
            ticks,
            forked_worker,
            errno_loc,
            asan_g0_fake,
            asan_g0_lo,
            asan_g0_size,
            tsan_g0,
        } = fresh;
        debug_assert!(self.lockedq.lock().is_empty());
        (self.id, self.g0_base, self.resume_sp, self.curg, self.p, self.on_g0) =
            (id, g0_base, resume_sp, curg, p, on_g0);
        (self.in_scheduler, self.fpctl, self.exit_status, self.main_wait, self.tid) =
            (in_scheduler, fpctl, exit_status, main_wait, tid);
        (self.altstack, self.sigstack, self.waitunlockf, self.waitlock) = (altstack, sigstack, waitunlockf, waitlock);
        (self.is_worker, self.spinning, self.lockedq_len, self.departed) = (is_worker, spinning, lockedq_len, departed);
        (self.p_since, self.nextp, self.rand, self.leave_at, self.grow_need, self.ticks) =
            (p_since, nextp, rand, leave_at, grow_need, ticks);
        (self.forked_worker, self.errno_loc, self.safe_points, self.release_pending) =
            (forked_worker, errno_loc, safe_points, release_pending);
        (self.asan_g0_fake, self.asan_g0_lo, self.asan_g0_size, self.tsan_g0) =
            (asan_g0_fake, asan_g0_lo, asan_g0_size, tsan_g0);
    }
}

// ---- systemstack ----------------------------------------------------------------------------

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

// ---- introspection --------------------------------------------------------------------------

pub fn stats() -> gs_stats {
    let n = SCHED.nprocs.load(Relaxed);
    let s = lock_sched();
    let threads = s.allm.len() as u32;
    let records = s.allg.len() as u64;
    // Stacks held by goroutines that have not exited (a racy snapshot of running ones' records).
    let in_use: u64 = s
        .allg
        .iter()
        .map(|&g| {
            // SAFETY: G records are never freed; a snapshot of a field another thread may write.
            let g = unsafe { &*g };
            let st = g.status.load(Acquire);
            if st == G_IDLE || st == G_DEAD {
                0
            } else {
                g.stack.size() as u64
            }
        })
        .sum();
    drop(s);
    let reserved = stack::reserved_bytes();
    gs_stats {
        goroutines_live: live_count().max(0) as u64,
        goroutines_total: SCHED.total.load(Relaxed) + SCHED.allp.iter().map(|p| p.spawned.load(Relaxed)).sum::<u64>(),
        switches: SCHED.allp.iter().map(|p| p.switches.load(Relaxed)).sum(),
        stack_reserved: reserved,
        stack_committed: stack::committed_bytes(),
        stack_grows: grow::GROWS.load(Relaxed),
        stack_shrinks: grow::SHRINKS.load(Relaxed),
        stack_moves: grow::GROWS.load(Relaxed) + grow::SHRINKS.load(Relaxed),
        stack_releases: grow::RELEASES.load(Relaxed),
        stack_in_use: in_use,
        stack_pooled: reserved.saturating_sub(in_use),
        goroutine_records: records,
        maxprocs: n as u32,
        threads,
    }
}

/// The calling goroutine's stack (its own stack pointer is taken here, in the caller's frame).
pub fn stack_info(sp: usize) -> Result<gs_stack_info, c_int> {
    let g = getg();
    if g.is_null() {
        return Err(GS_ENOTGOROUTINE);
    }
    // SAFETY: g is the goroutine running on this thread.
    let g = unsafe { &*g };
    let used = if sp >= g.stack.lo && sp < g.stack.hi { g.stack.hi - sp } else { 0 };
    Ok(gs_stack_info {
        lo: g.stack.lo,
        hi: g.stack.hi,
        size: g.stack.size(),
        used,
        kind: g.stack_kind,
        grows: g.grows as u64,
        shrinks: g.shrinks as u64,
    })
}

/// Writes `goroutine N [running]:` for the goroutine on this thread, for fatal errors. Async-signal
/// safe: no locks, no allocation.
pub fn dump_current_for_fatal(w: &mut FdWriter) {
    let g = getg();
    if g.is_null() {
        return;
    }
    // SAFETY: the running goroutine's record; read only.
    let g = unsafe { &*g };
    let _ = write!(w, "\ngoroutine {} [running", g.goid);
    if let Some(n) = &g.name {
        let _ = write!(w, ", {}", n.to_string_lossy());
    }
    let kind = if g.stack_kind == GS_STACK_FIXED { "FIXED" } else { "GROWABLE" };
    if g.stack.lo == 0 {
        // Failing at its first run: it has no stack yet.
        let _ = write!(w, "]:\n\tstack=none yet ({} bytes at its first run), {}\n", g.growth.initial, kind);
    } else {
        let _ = write!(w, "]:\n\tstack=[{:#x}, {:#x}) {} bytes, {}\n", g.stack.lo, g.stack.hi, g.stack.size(), kind);
    }
}

#[allow(dead_code)]
fn _assert_sync() {
    fn is_sync<T: Sync>() {}
    is_sync::<Sched>();
    let _ = AtomicPtr::<G>::new(null_mut());
}
