//! A goroutine's life at its ends (Go's newproc and goexit): spawn, the first run of a GROWABLE
//! goroutine (its stack is taken then), and exit.

use super::copystack;
use super::debug::DEBUG_INFO;
use super::g::{
    EmbedHooks, MainWait, DEFAULT_GROWABLE_STACK_SIZE, DEFAULT_MAX_STACK, DEFAULT_STACK_SIZE, G, G_DEAD, G_RUNNABLE,
    STACK_GUARD,
};
use super::grow::GrowState;
use super::m::getm;
use super::p::{ready_any, PLocal, P};
use super::park::{enter_m, mcall, whereami, Where};
use super::sanitizer;
use super::schedule::schedule;
use super::{lock_sched, SCHED};
use crate::arch;
use crate::arch::RawFn;
use crate::base::fatal::fatal;
use crate::base::types::*;
use crate::stack;
use crate::stack::Stack;
use core::ffi::c_int;
use core::ffi::c_void;
use core::ffi::CStr;
use core::ptr::null_mut;
use core::sync::atomic::Ordering::*;
use std::ffi::CString;

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
        Attr::defaults(copystack::default_kind())
    }

    /// The default attributes with stack kind `stack_kind`.
    #[inline(always)]
    pub fn defaults(stack_kind: u32) -> Attr {
        Attr {
            stack_kind,
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
        if a.stack_kind != GS_STACK_GROWABLE && a.stack_kind != GS_STACK_FIXED && a.stack_kind != GS_STACK_COPY {
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
#[inline(never)]
pub unsafe fn spawn(attr: Attr, f: RawFn, arg: *mut c_void) -> Result<i64, c_int> {
    // SAFETY: spawn_inner's contract: attr is validated (round_size'd); f/arg per ours.
    unsafe { spawn_inner(attr, f, arg, core::ptr::null()) }
}

/// `gs_spawn`'s path (no attribute block): with the default stack kind GROWABLE, the attributes
/// are constants here, and [`spawn_inner`] inlined on them folds away the attribute copy and the
/// kind tests (callgrind, spawn+run+exit: 717 -> 633 instructions per goroutine).
///
/// # Safety
/// As [`spawn`].
pub unsafe fn spawn_default(f: RawFn, arg: *mut c_void) -> Result<i64, c_int> {
    if copystack::default_kind() != GS_STACK_GROWABLE {
        // SAFETY: per our contract.
        return unsafe { spawn(Attr::default_attr(), f, arg) };
    }
    // SAFETY: as spawn: the default attributes are valid.
    unsafe { spawn_inner(Attr::defaults(GS_STACK_GROWABLE), f, arg, core::ptr::null()) }
}

#[inline(always)]
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
    // A copy-stack goroutine takes a slot of its M at its first run (copystack.rs); under a
    // sanitizer or valgrind, which cannot follow its stack being copied, it is a FIXED one.
    let mut attr = attr;
    if attr.stack_kind == GS_STACK_COPY && (sanitizer::any() || stack::valgrind::active()) {
        attr.stack_kind = GS_STACK_FIXED;
    }
    let lazy = attr.stack_kind == GS_STACK_GROWABLE || attr.stack_kind == GS_STACK_COPY;
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
        let (embed_hooks, embed_data) = match attr.embed {
            Some((h, d)) => (h as *const EmbedHooks, d),
            None => (core::ptr::null(), null_mut()),
        };
        let start_fp = arch::fp_control();
        // A lazy goroutine keeps its function for its first run, which takes the stack.
        gr.reset(G {
            stack,
            stackguard0: if lazy { 0 } else { stack.lo + STACK_GUARD },
            goid,
            stack_kind: attr.stack_kind,
            flags: attr.flags,
            max_stack: attr.max_stack,
            name: attr.name.map(Box::new),
            main_wait,
            embed_hooks,
            embed_data,
            growth: GrowState { initial: if lazy { attr.stack_size } else { stack.size() }, ..Default::default() },
            start_fn: if lazy { Some(f) } else { None },
            start_arg: if lazy { arg } else { null_mut() },
            start_fp,
            ..G::new()
        });
        if !lazy {
            let (f, arg) = if sanitizer::tools() { tools_entry(g, f, arg) } else { (f, arg) };
            gr.sched.sp = arch::init_frame(stack.hi, f, arg, goexit1, g.cast(), start_fp);
        }
        if sanitizer::tools() {
            sanitizer::release(g as *const c_void);
        }
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
            if sanitizer::tools() {
                sanitizer::goroutine_exits();
            }
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
        if sanitizer::tools() {
            sanitizer::goroutine_exits();
        }
        mcall((*g).m, g, goexit0);
    }
    fatal!("goexit0 returned")
}

pub(super) unsafe extern "C" fn goexit0(gp: *mut c_void) {
    let g = gp as *mut G;
    // SAFETY: on g0; g is dead from here on and owned by this M until freed.
    unsafe {
        let m = enter_m(g);
        if sanitizer::tools() {
            sanitizer::fiber_gone(g);
            stack::valgrind::deregister((*g).vg_stack);
            (*g).vg_stack = 0;
        }
        let p = &*(*m).p;
        (*m).curg = null_mut();
        (*g).status.store(G_DEAD, Relaxed);
        let pl = p.local();
        if copystack::is_copy(g) {
            copystack::release(g); // (its stack is a slot of its M: left empty if it was resident)
        } else {
            pl.stacks.free((*g).stack);
        }
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
        // idle, m.rs: stop_m, which can count exactly.)
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

/// A GROWABLE goroutine's first run: takes its stack from the P's cache and builds the entry
/// frame that calls its function. A copy-stack goroutine takes the next slot of its M instead
/// (evicting its resident: copystack.rs, invariant 1). Out of memory here is fatal (as in Go: the spawner is gone).
///
/// # Safety
/// On g0 of the M that holds `p` and is about to run `g`, which has no stack yet.
#[cold]
#[inline(never)]
pub(super) unsafe fn first_run(p: &P, g: *mut G) {
    // SAFETY: per the contract: g is ours (RUNNING on this M), p is held by this M.
    unsafe {
        let gr = &mut *g;
        if copystack::is_copy(g) {
            let Some(f) = gr.start_fn.take() else {
                fatal!("goroutine {} has neither a stack nor a function", gr.goid)
            };
            gr.stack = copystack::assign(gr.m, g);
            gr.stackguard0 = gr.stack.lo + STACK_GUARD;
            gr.sched.sp = arch::init_frame(gr.stack.hi, f, gr.start_arg, goexit1, g.cast(), gr.start_fp);
            return;
        }
        let Some(stack) = p.local().stacks.alloc(gr.growth.initial) else {
            crate::base::fatal::fatal_as!("out of memory"; "cannot allocate a {}-byte stack for goroutine {}", gr.growth.initial, gr.goid);
        };
        let Some(f) = gr.start_fn.take() else { fatal!("goroutine {} has neither a stack nor a function", gr.goid) };
        gr.stack = stack;
        gr.stackguard0 = stack.lo + STACK_GUARD;
        let (f, arg) = if sanitizer::tools() { tools_entry(g, f, gr.start_arg) } else { (f, gr.start_arg) };
        gr.sched.sp = arch::init_frame(stack.hi, f, arg, goexit1, g.cast(), gr.start_fp);
    }
}

/// Under a debugging tool ([`sanitizer::tools`]), what a new goroutine's stack needs before its
/// first frame is made: valgrind's registration, and the first frame's function and argument
/// ([`sanitized_entry`]).
///
/// # Safety
/// `g` is ours and has its stack.
#[cold]
#[inline(never)]
unsafe fn tools_entry(g: *mut G, f: RawFn, arg: *mut c_void) -> (RawFn, *mut c_void) {
    // SAFETY: per the contract.
    unsafe {
        (*g).vg_stack = stack::valgrind::register((*g).stack.lo, (*g).stack.hi);
        sanitized_entry(g, f, arg)
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
