//! The scheduler: G, M, P (Go's names and shape).
//!
//! - A **G** is a goroutine. Its status says who owns its stack:
//!   `IDLE`/`DEAD`: nobody (a free G), `RUNNABLE`: a run queue (its switch frame is saved),
//!   `RUNNING`: the M in `G::m` (executing on it), `WAITING`: whoever will `ready` it (parked).
//! - An **M** is an OS thread that runs goroutines. Its g0 is the thread's own stack: the
//!   scheduler runs there, entered by `mcall` from a goroutine, always at the same base `g0_base`
//!   (so nothing accumulates on g0 between switches: Go's mstart/mcall design). A thread becomes
//!   an M when it first enters `gs_run`/`gs_main`; the M record then lives as long as the process.
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

pub mod runq;

use crate::abi::types::*;
use crate::arch::{self, RawFn};
use crate::fatal::{fatal, FdWriter};
use crate::stack::{self, Stack, StackCache};
use core::cell::{Cell, UnsafeCell};
use core::ffi::{c_int, c_void, CStr};
use core::fmt::Write;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use parking_lot::{Condvar, Mutex, MutexGuard};
use runq::{GQueue, LocalRunq};
use std::ffi::CString;

// ---- G -------------------------------------------------------------------------------------

pub const G_IDLE: u32 = 0;
pub const G_RUNNABLE: u32 = 1;
pub const G_RUNNING: u32 = 2;
pub const G_WAITING: u32 = 3;
pub const G_DEAD: u32 = 4;

/// Default stack reservation of a FIXED goroutine (lazily committed).
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Default initial reservation of a GROWABLE goroutine (chosen by measurement: docs/PERFORMANCE.md).
pub const DEFAULT_GROWABLE_STACK_SIZE: usize = 16 * 1024;
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
    pub max_stack: usize,
    /// The M running it (while RUNNING); the M it is pinned to once it ran, unless migratable.
    pub m: *mut M,
    pub lockedm: *mut M,
    /// Link for run queues and free lists.
    pub schedlink: *mut G,
    /// Why it is parked (Go's waitreason), shown by gs_dump.
    pub waitreason: &'static str,
    pub name: Option<CString>,
    pub grows: u64,
    pub shrinks: u64,
    /// Wake-up payload for the sync layer (Go's g.param).
    pub param: usize,
    /// Set for the goroutine of a gs_main call: signalled when it exits.
    pub main_wait: *const MainWait,
    /// Copy-growing stacks: old stacks to free, shrink state (src/stack/grow.rs).
    pub growth: crate::stack::grow::GrowState,
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
            waitreason: "",
            name: None,
            grows: 0,
            shrinks: 0,
            param: 0,
            main_wait: core::ptr::null(),
            growth: Default::default(),
        }
    }
}

/// The exit flag of a gs_main goroutine; lives on the gs_main caller's stack.
pub struct MainWait {
    pub done: AtomicBool,
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
}

thread_local! {
    /// The M of this thread; const-initialised so a signal handler may read it.
    static TLS_M: Cell<*mut M> = const { Cell::new(null_mut()) };
}

/// The calling thread's M, or null if it never ran goroutines.
#[inline]
pub fn getm() -> *mut M {
    TLS_M.with(|m| m.get())
}

/// The goroutine running on this thread (also while its gs_systemstack fn runs), or null.
#[inline]
pub fn getg() -> *mut G {
    let m = getm();
    if m.is_null() {
        null_mut()
    } else {
        // SAFETY: an M is never freed and only its own thread writes curg.
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
}

/// State of a P touched only by the M holding it.
pub struct PLocal {
    pub m: *mut M,
    pub schedtick: u32,
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
            inner: UnsafeCell::new(PLocal { m: null_mut(), schedtick: 0, gfree: Vec::new(), stacks: StackCache::new() }),
            switches: AtomicU64::new(0),
        }
    }

    /// This P's index in `SCHED.allp`.
    pub fn id(&self) -> usize {
        (self as *const P as usize - SCHED.allp.as_ptr() as usize) / core::mem::size_of::<P>()
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
    pub allm: Vec<*mut M>,
    pub initialised: bool,
}

// SAFETY: the raw pointers are to G/M/P records that live forever; access is under the lock.
unsafe impl Send for SchedLocked {}

pub struct Sched {
    pub lock: Mutex<SchedLocked>,
    /// Ms waiting for a P, for work, or for the end of all goroutines.
    pub cond: Condvar,
    /// Mirror of `runq.len()` readable without the lock.
    pub runqsize: AtomicUsize,
    pub goidgen: AtomicI64,
    pub mnext: AtomicI64,
    pub live: AtomicI64,
    pub total: AtomicU64,
    pub nprocs: AtomicUsize,
    pub allp: [P; MAX_PROCS],
}

pub static SCHED: Sched = Sched {
    lock: Mutex::new(SchedLocked {
        runq: GQueue::new(),
        pidle: Vec::new(),
        gfree: Vec::new(),
        allg: Vec::new(),
        allm: Vec::new(),
        initialised: false,
    }),
    cond: Condvar::new(),
    runqsize: AtomicUsize::new(0),
    goidgen: AtomicI64::new(0),
    mnext: AtomicI64::new(0),
    live: AtomicI64::new(0),
    total: AtomicU64::new(0),
    nprocs: AtomicUsize::new(1),
    allp: [const { P::new() }; MAX_PROCS],
};

/// Locks the scheduler, setting it up on first use.
fn lock_sched() -> MutexGuard<'static, SchedLocked> {
    let mut s = SCHED.lock.lock();
    if !s.initialised {
        s.initialised = true;
        let n = SCHED.nprocs.load(Relaxed);
        for i in (0..n).rev() {
            s.pidle.push(&SCHED.allp[i] as *const P as *mut P);
        }
    }
    s
}

fn global_put(s: &mut SchedLocked, g: *mut G) {
    s.runq.push(g);
    SCHED.runqsize.store(s.runq.len(), Relaxed);
}

fn global_get(s: &mut SchedLocked) -> Option<*mut G> {
    let g = s.runq.pop();
    SCHED.runqsize.store(s.runq.len(), Relaxed);
    g
}

/// Puts a runnable G on `p`'s queue (the calling M holds `p`).
///
/// # Safety
/// The calling M holds `p`; `g` is RUNNABLE and on no queue.
unsafe fn runqput(p: &P, g: *mut G, next: bool) {
    let mut g = g;
    if next {
        match p.runq.put_next(g) {
            None => return,
            Some(old) => g = old,
        }
    }
    let one_p = SCHED.nprocs.load(Relaxed) == 1;
    if !(one_p && SCHED.runqsize.load(Relaxed) != 0) {
        match p.runq.put_tail(g) {
            Ok(()) => return,
            Err(back) => g = back,
        }
    }
    let mut s = lock_sched();
    if !one_p {
        // Go's runqputslow: move half the ring to the global queue, then g.
        p.runq.take_half(&mut s.runq);
    }
    global_put(&mut s, g);
}

/// Makes a parked or new G runnable from any thread (Go's goready/newproc tail).
///
/// # Safety
/// `g` is RUNNABLE, on no queue, and owned by the caller.
unsafe fn ready_any(g: *mut G, next: bool) {
    let m = getm();
    // SAFETY: our M; only its thread touches m.p.
    let p = if m.is_null() { null_mut() } else { unsafe { (*m).p } };
    if !p.is_null() {
        // SAFETY: we hold p.
        unsafe { runqput(&*p, g, next) };
    } else {
        let mut s = lock_sched();
        global_put(&mut s, g);
        drop(s);
        SCHED.cond.notify_all();
    }
}

// ---- spawn ------------------------------------------------------------------------------------

/// Validated spawn attributes.
pub struct Attr {
    pub stack_kind: u32,
    pub flags: u32,
    pub stack_size: usize,
    pub max_stack: usize,
    pub name: Option<CString>,
}

impl Attr {
    pub fn default_attr() -> Attr {
        Attr { stack_kind: GS_STACK_GROWABLE, flags: 0, stack_size: DEFAULT_GROWABLE_STACK_SIZE, max_stack: DEFAULT_MAX_STACK, name: None }
    }

    /// Checks a C attribute block; `GS_EINVAL` for anything out of range.
    ///
    /// # Safety
    /// `a.name` is NULL or a NUL-terminated string.
    pub unsafe fn from_c(a: &gs_attr) -> Result<Attr, c_int> {
        if a.stack_kind != GS_STACK_GROWABLE && a.stack_kind != GS_STACK_FIXED {
            return Err(GS_EINVAL);
        }
        if a.flags & !GS_SPAWN_MIGRATABLE != 0 {
            return Err(GS_EINVAL);
        }
        let in_range = |v: usize| v == 0 || (GS_STACK_MIN..=GS_STACK_MAX).contains(&v);
        if !in_range(a.stack_size) || !in_range(a.max_stack_size) {
            return Err(GS_EINVAL);
        }
        let max_stack = if a.max_stack_size == 0 { DEFAULT_MAX_STACK } else { a.max_stack_size };
        let default_size = if a.stack_kind == GS_STACK_FIXED { DEFAULT_STACK_SIZE } else { DEFAULT_GROWABLE_STACK_SIZE };
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
        Ok(Attr { stack_kind: a.stack_kind, flags: a.flags, stack_size: stack::round_size(stack_size), max_stack, name })
    }
}

/// Starts a goroutine running `f(arg)`; returns its id. Callable from any thread.
pub fn spawn(attr: Attr, f: RawFn, arg: *mut c_void) -> Result<i64, c_int> {
    // SAFETY: spawn_inner's contract: attr is validated (round_size'd).
    unsafe { spawn_inner(attr, f, arg, core::ptr::null()) }
}

unsafe fn spawn_inner(attr: Attr, f: RawFn, arg: *mut c_void, main_wait: *const MainWait) -> Result<i64, c_int> {
    let m = getm();
    // SAFETY: our own M (if any); only this thread touches m.p.
    let p = if m.is_null() { null_mut() } else { unsafe { (*m).p } };
    let (stack, g) = if !p.is_null() {
        // SAFETY: this thread's M holds p.
        let pl = unsafe { (*p).local() };
        let Some(stack) = pl.stacks.alloc(attr.stack_size) else { return Err(GS_ENOMEM) };
        let g = match pl.gfree.pop() {
            Some(g) => g,
            None => alloc_g(),
        };
        (stack, g)
    } else {
        let Some(stack) = stack::alloc_global(attr.stack_size) else { return Err(GS_ENOMEM) };
        let free = lock_sched().gfree.pop();
        let g = free.unwrap_or_else(alloc_g);
        (stack, g)
    };
    let goid = SCHED.goidgen.fetch_add(1, Relaxed) + 1;
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
        gr.waitreason = "";
        gr.name = attr.name;
        gr.grows = 0;
        gr.shrinks = 0;
        gr.param = 0;
        gr.main_wait = main_wait;
        gr.growth.reset(stack.size());
        gr.sched.sp = arch::init_frame(stack.hi, f, arg, goexit1, g.cast(), arch::fp_control());
        gr.status.store(G_RUNNABLE, Release);
    }
    SCHED.live.fetch_add(1, Relaxed);
    SCHED.total.fetch_add(1, Relaxed);
    // SAFETY: g is RUNNABLE and on no queue.
    unsafe { ready_any(g, false) };
    Ok(goid)
}

fn alloc_g() -> *mut G {
    let g = Box::into_raw(Box::new(G::new()));
    lock_sched().allg.push(g);
    g
}

// ---- switching ------------------------------------------------------------------------------

/// Go's mcall: save the running G `g` and run `f(g)` on g0. Returns when `g` is resumed.
///
/// # Safety
/// Called on `g`'s stack, `m` is this thread's M with `m.curg == g`.
#[inline(always)]
pub(crate) unsafe fn mcall(m: *mut M, g: *mut G, f: RawFn) {
    // SAFETY: per the contract; the Gobuf outlives the switch (G records are never freed).
    unsafe { arch::gs_asm_mcall(&mut (*g).sched.sp, (*m).g0_base, f, g.cast()) }
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
pub fn yield_now() -> c_int {
    match whereami() {
        // SAFETY: we are on g's stack and m is ours.
        Where::Goroutine(m, g) => unsafe {
            mcall(m, g, gosched_m);
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
        (*m).fpctl = arch::frame_fpctl((*g).sched.sp);
        crate::stack::grow::settle(m, g);
        m
    }
}

unsafe extern "C" fn gosched_m(gp: *mut c_void) {
    let g = gp as *mut G;
    // SAFETY: on g0 of the M that ran g; g is saved.
    unsafe {
        let m = enter_m(g);
        crate::stack::grow::shrink_at_safe_point(m, g);
        (*g).status.store(G_RUNNABLE, Relaxed);
        (*m).curg = null_mut();
        runqput(&*(*m).p, g, false);
        schedule(m)
    }
}

/// gs_exit: Go's Goexit.
pub fn exit_now() -> c_int {
    match whereami() {
        // SAFETY: we are on g's stack; goexit0 never returns here.
        Where::Goroutine(m, g) => unsafe {
            mcall(m, g, goexit0);
            fatal!("goexit0 returned")
        },
        Where::SystemStack => GS_ESTATE,
        Where::Outside => GS_ENOTGOROUTINE,
    }
}

/// Called by gs_asm_goexit when a goroutine's function returns, on its own stack.
unsafe extern "C" fn goexit1(gp: *mut c_void) -> ! {
    let g = gp as *mut G;
    // SAFETY: g is running on this M.
    unsafe {
        mcall((*g).m, g, goexit0);
    }
    fatal!("goexit0 returned")
}

unsafe extern "C" fn goexit0(gp: *mut c_void) {
    let g = gp as *mut G;
    // SAFETY: on g0; g is dead from here on and owned by this M until freed.
    unsafe {
        let m = enter_m(g);
        let p = &*(*m).p;
        (*m).curg = null_mut();
        (*g).status.store(G_DEAD, Relaxed);
        let pl = p.local();
        pl.stacks.free((*g).stack);
        (*g).stack = Stack::default();
        (*g).name = None;
        (*g).m = null_mut();
        (*g).lockedm = null_mut();
        (*g).sched.sp = 0;
        let mw = (*g).main_wait;
        (*g).main_wait = core::ptr::null();
        if pl.gfree.len() < 256 {
            pl.gfree.push(g);
        } else {
            lock_sched().gfree.push(g);
        }
        let left = SCHED.live.fetch_sub(1, AcqRel) - 1;
        if !mw.is_null() {
            (*mw).done.store(true, Release);
        }
        if left == 0 || (!mw.is_null() && (*m).main_wait != mw) {
            // Wake threads waiting for the end of all goroutines, or for their gs_main goroutine.
            let _s = lock_sched();
            SCHED.cond.notify_all();
        }
        schedule(m)
    }
}

/// Runs `g` on `m` (which holds `p`). Never returns.
unsafe fn execute(m: *mut M, p: &P, g: *mut G) -> ! {
    // SAFETY: g was taken from a run queue: RUNNABLE and ours.
    unsafe {
        (*g).status.store(G_RUNNING, Relaxed);
        (*g).m = m;
        if (*g).lockedm.is_null() && (*g).flags & GS_SPAWN_MIGRATABLE == 0 {
            (*g).lockedm = m;
        }
        (*m).curg = g;
        p.switches.store(p.switches.load(Relaxed) + 1, Relaxed);
        arch::set_tls_stack_guard((*g).stackguard0);
        let sp = (*g).sched.sp;
        (*g).sched.sp = 0;
        arch::gs_asm_gogo(sp, (*m).fpctl)
    }
}

/// Finds a runnable G for `m`'s P: local ring, then the global queue.
unsafe fn find_runnable(p: &P) -> Option<*mut G> {
    // SAFETY: the caller's M holds p.
    let pl = unsafe { p.local() };
    pl.schedtick = pl.schedtick.wrapping_add(1);
    let one_p = SCHED.nprocs.load(Relaxed) == 1;
    // Fairness with several Ps: look at the global queue every 61st schedule (Go's constant).
    if !one_p && pl.schedtick % 61 == 0 && SCHED.runqsize.load(Relaxed) != 0 {
        if let Some(g) = global_get(&mut lock_sched()) {
            return Some(g);
        }
    }
    if let Some(g) = p.runq.get() {
        return Some(g);
    }
    if SCHED.runqsize.load(Relaxed) != 0 {
        let mut s = lock_sched();
        let first = global_get(&mut s)?;
        // Refill the ring with a batch (Go's globrunqget), oldest first.
        let n = (s.runq.len() / SCHED.nprocs.load(Relaxed).max(1) + 1).min(runq::RUNQ_SIZE / 2);
        for _ in 0..n {
            match global_get(&mut s) {
                Some(g) => {
                    if let Err(g) = p.runq.put_tail(g) {
                        global_put(&mut s, g);
                        break;
                    }
                }
                None => break,
            }
        }
        return Some(first);
    }
    None
}

/// The scheduler loop, on g0. Never returns: runs a goroutine or leaves the scheduler.
unsafe fn schedule(m: *mut M) -> ! {
    // SAFETY: on this M's g0; m holds a P.
    unsafe {
        loop {
            let p = &*(*m).p;
            let mw = (*m).main_wait;
            if !mw.is_null() && (*mw).done.load(Acquire) {
                leave_scheduler(m, GS_OK);
            }
            if let Some(g) = find_runnable(p) {
                execute(m, p, g);
            }
            if SCHED.live.load(Acquire) == 0 {
                leave_scheduler(m, GS_OK);
            }
            // Goroutines exist but none is runnable here: wait until one is readied (by another
            // thread) or everything ends.
            let mut s = lock_sched();
            if s.runq.is_empty() && SCHED.live.load(Acquire) != 0 && !(!mw.is_null() && (*mw).done.load(Acquire)) {
                SCHED.cond.wait(&mut s);
            }
        }
    }
}

unsafe extern "C" fn schedule_entry(mp: *mut c_void) {
    // SAFETY: called by gs_asm_mstart on g0 with our M.
    // The thread's FP control state is the one saved by gs_asm_mstart.
    unsafe {
        let m = mp as *mut M;
        (*m).fpctl = arch::frame_fpctl((*m).resume_sp);
        schedule(m)
    }
}

/// Leaves the scheduler: releases the P and resumes the thread inside gs_run/gs_main.
unsafe fn leave_scheduler(m: *mut M, status: c_int) -> ! {
    // SAFETY: on g0 of m, which holds a P.
    unsafe {
        let p = (*m).p;
        (*p).local().m = null_mut();
        (*m).p = null_mut();
        (*m).exit_status = status;
        arch::set_tls_stack_guard(0);
        {
            let mut s = lock_sched();
            s.pidle.push(p);
        }
        SCHED.cond.notify_all();
        arch::gs_asm_gogo((*m).resume_sp, (*m).fpctl)
    }
}

/// The calling thread's M, created on first use.
fn getm_or_create() -> *mut M {
    let m = getm();
    if !m.is_null() {
        return m;
    }
    let m = Box::into_raw(Box::new(M {
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
    }));
    lock_sched().allm.push(m);
    TLS_M.with(|c| c.set(m));
    crate::signal::on_new_m(m);
    m
}

/// gs_run / gs_main: the calling thread joins the scheduler. With `main`, spawns it first and
/// returns once it has exited; otherwise returns once every goroutine has exited.
pub fn run(main: Option<(RawFn, *mut c_void)>) -> c_int {
    match whereami() {
        Where::Outside => {}
        _ => return GS_ESTATE,
    }
    let m = getm_or_create();
    // SAFETY: m is this thread's M; nothing else writes its fields.
    unsafe {
        if (*m).in_scheduler {
            return GS_ESTATE;
        }
        let wait = MainWait { done: AtomicBool::new(false) };
        if let Some((f, arg)) = main {
            if let Err(e) = spawn_inner(Attr::default_attr(), f, arg, &wait) {
                return e;
            }
            (*m).main_wait = &wait;
        }
        let status = 'outer: loop {
            // Take a P, or return when there is nothing left to wait for.
            let p = {
                let mut s = lock_sched();
                loop {
                    if main.is_some() && wait.done.load(Acquire) {
                        break 'outer GS_OK;
                    }
                    if main.is_none() && SCHED.live.load(Acquire) == 0 {
                        break 'outer GS_OK;
                    }
                    if let Some(p) = s.pidle.pop() {
                        break p;
                    }
                    SCHED.cond.wait(&mut s);
                }
            };
            (*p).local().m = m;
            (*m).p = p;
            (*m).in_scheduler = true;
            arch::gs_asm_mstart(&mut (*m).resume_sp, &mut (*m).g0_base, schedule_entry, m.cast());
            (*m).in_scheduler = false;
            break (*m).exit_status;
        };
        (*m).main_wait = core::ptr::null();
        status
    }
}

// ---- systemstack ----------------------------------------------------------------------------

/// gs_systemstack: runs `f(arg)` on the thread's own stack (g0).
pub fn systemstack(f: RawFn, arg: *mut c_void) -> c_int {
    match whereami() {
        // SAFETY: m is ours; its g0 is free while a goroutine runs (g0 frames are discarded at
        // every gogo); on_g0 marks the nesting so the API refuses to switch meanwhile.
        Where::Goroutine(m, _) => unsafe {
            (*m).on_g0 += 1;
            arch::set_tls_stack_guard(0);
            arch::gs_asm_systemstack(f, arg, (*m).g0_base);
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
    drop(s);
    gs_stats {
        goroutines_live: SCHED.live.load(Relaxed).max(0) as u64,
        goroutines_total: SCHED.total.load(Relaxed),
        switches: SCHED.allp.iter().map(|p| p.switches.load(Relaxed)).sum(),
        stack_reserved: stack::reserved_bytes(),
        stack_committed: stack::committed_bytes(),
        stack_grows: crate::stack::grow::GROWS.load(Relaxed),
        stack_shrinks: crate::stack::grow::SHRINKS.load(Relaxed),
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
        grows: g.grows,
        shrinks: g.shrinks,
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
    let _ = write!(
        w,
        "]:\n\tstack=[{:#x}, {:#x}) {} bytes, {}\n",
        g.stack.lo,
        g.stack.hi,
        g.stack.size(),
        if g.stack_kind == GS_STACK_FIXED { "FIXED" } else { "GROWABLE" }
    );
}

#[allow(dead_code)]
fn _assert_sync() {
    fn is_sync<T: Sync>() {}
    is_sync::<Sched>();
    let _ = AtomicPtr::<G>::new(null_mut());
}
