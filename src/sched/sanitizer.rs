//! AddressSanitizer's fiber interface (issue #14): a host program built with
//! `-fsanitize=address` gets its goroutine switches announced to ASan, so that its stack checks
//! and fake stacks (`detect_stack_use_after_return`) follow the goroutine that runs. The library
//! itself is not instrumented and never links the sanitizer: it looks the functions up at load
//! (`dlsym(RTLD_DEFAULT, ...)`) and does nothing when they are absent (one relaxed load and a
//! branch per switch).
//!
//! The protocol (compiler-rt's `common_interface_defs.h`): before a thread leaves one stack for
//! another, `__sanitizer_start_switch_fiber(&save, bottom, size)` names the destination and keeps
//! the current fiber's fake stack in `save` (a null `&save`: the fiber is ending, its fake stack
//! is freed); right after arriving, `__sanitizer_finish_switch_fiber(save, ...)` with what the
//! arriving fiber kept when it left. Here:
//!
//! ```text
//!   goroutine --mcall--> g0            leave_g (G.asan_fake)      enter_g0 (M.asan_g0_fake)
//!   g0 --gogo--> goroutine             leave_g0 (M.asan_g0_fake)  enter_g (G.asan_fake; null at first run)
//!   goroutine --hand-off--> goroutine  leave_g (G.asan_fake)      enter_g (next's)
//!   goroutine --systemstack--> g0 --> back: leave_g, enter_g0, leave_g0, enter_g
//! ```
//!
//! A stack a goroutine takes (first run, a move's destination) is unpoisoned first: a goroutine
//! that ended by `gs_exit` or longjmp leaves its frames' redzones poisoned in ASan's shadow.
//!
//! **Moving a stack under `detect_stack_use_after_return`.** ASan then keeps every local whose
//! address is taken in a *fake frame* of the goroutine's fake stack (its own mapping), not on the
//! stack itself. A stack move (src/sched/grow.rs) must therefore also:
//! 1. move the pointers into the old stack that live in fake frames ([`move_fake_frames`]): a
//!    `jmp_buf` is such a local, and its saved (mangled) stack and frame pointers point into the
//!    real stack. A live fake frame is found through the pointers to it that the moved stack (and,
//!    in the signal handler, the saved registers) holds: its function keeps its frame's address
//!    until it returns (`__asan_addr_is_in_fake_stack` gives the frame's bounds). (A saved
//!    register that points into the fake stack is left alone, as it must be: only stacks of ours
//!    lie in the register window below a guard, stack/pool.rs `SHADOW_BELOW`.)
//! 2. tell ASan the goroutine's new stack bounds when the move happens in the signal handler
//!    ([`stack_moved_in_signal`]: a switch from the goroutine to itself), or a `longjmp` before
//!    the next switch makes ASan unpoison from the new stack pointer up to the old stack's top
//!    (a range of unrelated memory, or, when the new stack lies above, "ASan is ignoring requested
//!    __asan_handle_no_return" and false reports after it). Not while ASan is itself in the
//!    middle of a switch on this thread (`M.asan_switching`: the fault hit the switch code; a
//!    nested start aborts with "starting fiber switch while in fiber switch"): the switch under
//!    way names the goroutine's stack again when the goroutine is next resumed, from `G.stack`.
//!
//! **ThreadSanitizer** likewise: each goroutine is a TSan fiber (`__tsan_create_fiber` at its first
//! run, destroyed when it exits), every M's g0 is the thread's own fiber, and each switch is a
//! `__tsan_switch_to_fiber` (synchronizing: goroutines that take turns on one thread are ordered,
//! as they are). The runtime's own synchronization is not instrumented, so every synchronizing API
//! call announces its happens-before edge ([`release`] before, [`acquire`] after, on the handle's
//! address): send -> receive and close -> receive on a channel, unlock -> lock, done/add -> wait,
//! release -> acquire of a semaphore, spawn -> the goroutine's first instruction, and every
//! goroutine's exit -> the return of `gs_run`/`gs_main`. A `gs_systemstack` call stays on its
//! goroutine's fiber.

use super::{G, M};
use crate::stack::copy::Mover;
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

type StartFn = unsafe extern "C" fn(*mut *mut c_void, *const c_void, usize);
type FinishFn = unsafe extern "C" fn(*mut c_void, *mut *const c_void, *mut usize);
type UnpoisonFn = unsafe extern "C" fn(*const c_void, usize);

/// Either sanitizer is present: the one flag a switch reads when neither is.
static ANY: AtomicBool = AtomicBool::new(false);
static START: AtomicUsize = AtomicUsize::new(0);
static TSAN_CURRENT: AtomicUsize = AtomicUsize::new(0);
static TSAN_CREATE: AtomicUsize = AtomicUsize::new(0);
static TSAN_DESTROY: AtomicUsize = AtomicUsize::new(0);
static TSAN_SWITCH: AtomicUsize = AtomicUsize::new(0);
static TSAN_ACQUIRE: AtomicUsize = AtomicUsize::new(0);
static TSAN_RELEASE: AtomicUsize = AtomicUsize::new(0);
/// The address every goroutine's exit releases and `gs_run`/`gs_main` acquire on return.
static EXIT_TOKEN: u8 = 0;
static FINISH: AtomicUsize = AtomicUsize::new(0);
static UNPOISON: AtomicUsize = AtomicUsize::new(0);
static FAKE_CURRENT: AtomicUsize = AtomicUsize::new(0);
static FAKE_FRAME: AtomicUsize = AtomicUsize::new(0);

fn lookup(name: &core::ffi::CStr) -> usize {
    // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the loaded objects.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize }
}

/// Looks the sanitizer up (once, at load).
/// Whether any debugging tool is present: a sanitizer, or valgrind (set by [`init`], before the
/// first goroutine). The spawn and exit paths test this one word before their tool hooks, which
/// are each a test of their own otherwise (callgrind: ~20 instructions per spawn+run+exit).
static TOOLS: AtomicBool = AtomicBool::new(false);

/// See [`TOOLS`].
#[inline(always)]
pub fn tools() -> bool {
    TOOLS.load(Relaxed)
}

pub fn init() {
    init_sanitizers();
    TOOLS.store(any() || crate::stack::valgrind::active(), Relaxed);
}

fn init_sanitizers() {
    let (s, f, u, fc, ff) = (
        lookup(c"__sanitizer_start_switch_fiber"),
        lookup(c"__sanitizer_finish_switch_fiber"),
        lookup(c"__asan_unpoison_memory_region"),
        lookup(c"__asan_get_current_fake_stack"),
        lookup(c"__asan_addr_is_in_fake_stack"),
    );
    if s != 0 && f != 0 && u != 0 && fc != 0 && ff != 0 {
        FAKE_CURRENT.store(fc, Relaxed);
        FAKE_FRAME.store(ff, Relaxed);
        UNPOISON.store(u, Relaxed);
        FINISH.store(f, Relaxed);
        START.store(s, Relaxed);
    }
    let t = [
        lookup(c"__tsan_get_current_fiber"),
        lookup(c"__tsan_create_fiber"),
        lookup(c"__tsan_destroy_fiber"),
        lookup(c"__tsan_acquire"),
        lookup(c"__tsan_release"),
        lookup(c"__tsan_switch_to_fiber"),
    ];
    if t.iter().all(|&a| a != 0) {
        TSAN_CURRENT.store(t[0], Relaxed);
        TSAN_CREATE.store(t[1], Relaxed);
        TSAN_DESTROY.store(t[2], Relaxed);
        TSAN_ACQUIRE.store(t[3], Relaxed);
        TSAN_RELEASE.store(t[4], Relaxed);
        TSAN_SWITCH.store(t[5], Relaxed);
    }
    ANY.store(asan() || tsan(), Relaxed);
}

/// Whether the host runs under AddressSanitizer or ThreadSanitizer (one load on the switch path).
#[inline(always)]
pub fn any() -> bool {
    ANY.load(Relaxed)
}

/// Whether the host runs under ThreadSanitizer.
#[inline(always)]
pub fn tsan() -> bool {
    TSAN_SWITCH.load(Relaxed) != 0
}

type FiberFn = unsafe extern "C" fn() -> *mut c_void;
type CreateFn = unsafe extern "C" fn(u32) -> *mut c_void;
type FiberArgFn = unsafe extern "C" fn(*mut c_void);
type SwitchFn = unsafe extern "C" fn(*mut c_void, u32);

fn tsan_addr(a: *const c_void, f: &AtomicUsize) {
    // SAFETY: init stores only the address of the __tsan_ function of this shape.
    unsafe { core::mem::transmute::<usize, FiberArgFn>(f.load(Relaxed))(a as *mut c_void) }
}

/// ThreadSanitizer: a happens-before edge starts here (see the module doc). No-op without TSan.
#[inline(always)]
pub fn release(addr: *const c_void) {
    if tsan() {
        tsan_addr(addr, &TSAN_RELEASE);
    }
}

/// ThreadSanitizer: the edges released on `addr` end here. No-op without TSan.
#[inline(always)]
pub fn acquire(addr: *const c_void) {
    if tsan() {
        tsan_addr(addr, &TSAN_ACQUIRE);
    }
}

/// A goroutine ends: its last writes happen before `gs_run`/`gs_main` return ([`exits_observed`]).
#[inline(always)]
pub fn goroutine_exits() {
    release((&raw const EXIT_TOKEN).cast());
}

/// `gs_run`/`gs_main` return: every exited goroutine happened before.
#[inline(always)]
pub fn exits_observed() {
    acquire((&raw const EXIT_TOKEN).cast());
}

/// g's TSan fiber, made on first use.
///
/// # Safety
/// `g` is ours.
unsafe fn fiber_of(g: *mut G) -> *mut c_void {
    // SAFETY: per the contract; init stores only the address of __tsan_create_fiber.
    unsafe {
        if (*g).tsan_fiber.is_null() {
            (*g).tsan_fiber = core::mem::transmute::<usize, CreateFn>(TSAN_CREATE.load(Relaxed))(0);
        }
        (*g).tsan_fiber
    }
}

unsafe fn switch_to(fiber: *mut c_void) {
    // SAFETY: init stores only the address of __tsan_switch_to_fiber; fiber is a live fiber.
    unsafe { core::mem::transmute::<usize, SwitchFn>(TSAN_SWITCH.load(Relaxed))(fiber, 0) }
}

/// `g` has exited and this thread is on g0: its fiber goes.
///
/// # Safety
/// On g0; `g` is dead and ours.
pub unsafe fn fiber_gone(g: *mut G) {
    if tsan() {
        // SAFETY: per the contract; init stores only the address of __tsan_destroy_fiber.
        unsafe {
            if !(*g).tsan_fiber.is_null() {
                core::mem::transmute::<usize, FiberArgFn>(TSAN_DESTROY.load(Relaxed))((*g).tsan_fiber);
                (*g).tsan_fiber = core::ptr::null_mut();
            }
        }
    }
}

/// Whether the host runs under AddressSanitizer.
#[inline(always)]
pub fn asan() -> bool {
    START.load(Relaxed) != 0
}

#[inline(always)]
unsafe fn start(save: *mut *mut c_void, lo: usize, size: usize) {
    // SAFETY: only init stores START, always the address of a function of this type.
    unsafe { core::mem::transmute::<usize, StartFn>(START.load(Relaxed))(save, lo as *const c_void, size) }
}

#[inline(always)]
unsafe fn finish(save: *mut c_void) {
    // SAFETY: as in `start`.
    unsafe {
        core::mem::transmute::<usize, FinishFn>(FINISH.load(Relaxed))(
            save,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
        )
    }
}

/// Makes `[lo, hi)` addressable in ASan's shadow (a stack about to be used afresh).
pub fn unpoison(lo: usize, hi: usize) {
    if asan() && lo != 0 {
        // SAFETY: as in `start`; the range is a stack of ours.
        unsafe { core::mem::transmute::<usize, UnpoisonFn>(UNPOISON.load(Relaxed))(lo as *const c_void, hi - lo) }
    }
}

/// The bounds of `m`'s g0 stack (the thread's own), found on first use on that thread.
///
/// # Safety
/// On `m`'s thread.
unsafe fn g0_bounds(m: *mut M) -> (usize, usize) {
    // SAFETY: per the contract, m's fields are this thread's.
    unsafe {
        if (*m).asan_g0_size == 0 {
            let mut attr: libc::pthread_attr_t = core::mem::zeroed();
            let (mut addr, mut size) = (core::ptr::null_mut(), 0usize);
            if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) == 0 {
                libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
                libc::pthread_attr_destroy(&mut attr);
            }
            (*m).asan_g0_lo = addr as usize;
            (*m).asan_g0_size = size;
        }
        ((*m).asan_g0_lo, (*m).asan_g0_size)
    }
}

/// Goroutine `g` leaves its stack for `m`'s g0 (mcall, systemstack); `ending`: it never comes
/// back (its fake stack is freed).
///
/// # Safety
/// On `g`'s stack, `m` this thread's M.
#[inline(always)]
pub unsafe fn leave_g_for_g0(m: *mut M, g: *mut G, ending: bool) {
    if any() {
        // SAFETY: the caller's contract, stated above.
        unsafe { leave_g_for_g0_slow(m, g, ending) }
    }
}

#[cold]
#[inline(never)]
unsafe fn leave_g_for_g0_slow(m: *mut M, g: *mut G, ending: bool) {
    if tsan() {
        // SAFETY: per the contract; the g0 fiber was noted before the first switch to a goroutine.
        unsafe { switch_to((*m).tsan_g0) };
    }
    if asan() {
        // SAFETY: per the contract.
        unsafe {
            let (lo, size) = g0_bounds(m);
            let save = if ending { core::ptr::null_mut() } else { &raw mut (*g).asan_fake };
            (*m).asan_switching = true;
            start(save, lo, size);
        }
    }
}

/// `m`'s g0 leaves for goroutine `g` (gogo, the end of a systemstack call).
///
/// # Safety
/// On `m`'s g0; `g` has a stack.
#[inline(always)]
pub unsafe fn leave_g0(m: *mut M, g: *mut G) {
    if any() {
        // SAFETY: the caller's contract, stated above.
        unsafe { leave_g0_slow(m, g) }
    }
}

#[cold]
#[inline(never)]
unsafe fn leave_g0_slow(m: *mut M, g: *mut G) {
    if tsan() {
        // SAFETY: per the contract: on g0, so the current fiber is the thread's own.
        unsafe {
            if (*m).tsan_g0.is_null() {
                (*m).tsan_g0 = core::mem::transmute::<usize, FiberFn>(TSAN_CURRENT.load(Relaxed))();
            }
            switch_to(fiber_of(g));
        }
    }
    if asan() {
        // SAFETY: per the contract.
        unsafe {
            (*m).asan_switching = true;
            start(&raw mut (*m).asan_g0_fake, (*g).stack.lo, (*g).stack.size())
        }
    }
}

/// Arrived on goroutine `g`'s stack (back from mcall or a hand-off; or its first instruction).
///
/// # Safety
/// On `g`'s stack, right after the switch.
#[inline(always)]
pub unsafe fn enter_g(g: *mut G) {
    if any() {
        // SAFETY: the caller's contract, stated above.
        unsafe { enter_g_slow(g) }
    }
}

#[cold]
#[inline(never)]
unsafe fn enter_g_slow(g: *mut G) {
    if asan() {
        // SAFETY: per the contract; this thread's M is live while a goroutine runs on it.
        unsafe {
            finish((*g).asan_fake);
            (*super::m::getm()).asan_switching = false;
        }
    }
}

/// Arrived on `m`'s g0.
///
/// # Safety
/// On `m`'s g0, right after the switch.
#[inline(always)]
pub unsafe fn enter_g0(m: *mut M) {
    if any() {
        // SAFETY: the caller's contract, stated above.
        unsafe { enter_g0_slow(m) }
    }
}

#[cold]
#[inline(never)]
unsafe fn enter_g0_slow(m: *mut M) {
    if asan() {
        // SAFETY: per the contract.
        unsafe {
            finish((*m).asan_g0_fake);
            (*m).asan_switching = false;
        }
    }
}

type FakeFrameFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut *mut c_void, *mut *mut c_void) -> *mut c_void;

/// ASan's fake stack (`detect_stack_use_after_return`) of goroutine `g`, running on `m`, from the
/// SIGSEGV handler: ASan's current one, or in the middle of a switch (ASan has put it aside) the
/// one `g` keeps. Null when not under ASan or when `g` has none.
///
/// # Safety
/// In the SIGSEGV handler of `m`'s thread, whose running goroutine is `g`.
pub unsafe fn fake_stack_in_signal(m: *mut M, g: *mut G) -> *mut c_void {
    if !asan() {
        return core::ptr::null_mut();
    }
    // SAFETY: per the contract. `__asan_get_current_fake_stack` reads ASan's thread-local slot
    // (async-signal-safe; ASan itself calls it in signal handlers' frames); init stores only the
    // address of that function.
    unsafe {
        if (*m).asan_switching {
            return (*g).asan_fake;
        }
        core::mem::transmute::<usize, FiberFn>(FAKE_CURRENT.load(Relaxed))()
    }
}

/// `[beg, end)` of the live fake frame of `fake` that `addr` points into (its locals; ASan's
/// frame header excluded), or None (also when `fake` is null: not under ASan).
#[inline]
pub fn fake_frame(fake: *mut c_void, addr: usize) -> Option<(usize, usize)> {
    if fake.is_null() {
        return None;
    }
    let (mut beg, mut end) = (core::ptr::null_mut(), core::ptr::null_mut());
    // SAFETY: init stores only the address of __asan_addr_is_in_fake_stack, which computes the
    // frame from the fake stack's layout and reads the frame's magic word (no lock, no
    // allocation: async-signal-safe); `fake` is a live fake stack.
    let real = unsafe {
        core::mem::transmute::<usize, FakeFrameFn>(FAKE_FRAME.load(Relaxed))(
            fake,
            addr as *mut c_void,
            &mut beg,
            &mut end,
        )
    };
    (!real.is_null()).then_some((beg as usize, end as usize))
}

/// After a stack move: moves (`mv`) the pointers into the old stack held by every live fake frame
/// of `fake` that a word of `refs` points into (the moved stack's live words, the saved
/// registers); see the module doc, item 1. Moving a word twice changes nothing (it points into the
/// new stack after the first time), so a frame seen through several references is only slower;
/// the last few frames are remembered. Async-signal-safe. No-op when `fake` is null.
///
/// # Safety
/// `fake` is the fake stack of the goroutine whose stack moved, and that goroutine is stopped.
pub unsafe fn move_fake_frames(fake: *mut c_void, refs: impl Iterator<Item = usize>, mv: &Mover) {
    if fake.is_null() {
        return;
    }
    let mut seen = [0usize; 8];
    let mut next = 0;
    for r in refs {
        let Some((beg, end)) = fake_frame(fake, r) else { continue };
        if seen.contains(&beg) {
            continue;
        }
        seen[next % seen.len()] = beg;
        next += 1;
        let mut a = beg & !7;
        while a + 8 <= end {
            // SAFETY: [beg, end) is a live fake frame (ASan's mapping, readable and writable; the
            // runtime is not instrumented, so these accesses are not checked), of the stopped
            // goroutine per the contract.
            unsafe {
                let w = (a as *const usize).read();
                let moved = mv.word(w);
                if moved != w {
                    (a as *mut usize).write(moved);
                }
            }
            a += 8;
        }
    }
}

/// Goroutine `g`, running on `m`, has just moved to `[lo, hi)` in the SIGSEGV handler: ASan's
/// notion of the thread's current stack follows (the module doc, item 2), by a switch from the
/// goroutine to itself that keeps its fake stack.
///
/// # Safety
/// In the SIGSEGV handler of `m`'s thread, whose running goroutine is `g`.
pub unsafe fn stack_moved_in_signal(m: *mut M, lo: usize, hi: usize) {
    // SAFETY: per the contract; start/finish only swap ASan's per-thread fields (no lock, no
    // allocation), and ASan is not in a switch on this thread (checked).
    unsafe {
        if !asan() || (*m).asan_switching {
            return;
        }
        let mut save = core::ptr::null_mut();
        start(&mut save, lo, hi - lo);
        finish(save);
    }
}
