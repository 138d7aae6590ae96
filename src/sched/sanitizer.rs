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

use super::{G, M};
use core::ffi::c_void;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

type StartFn = unsafe extern "C" fn(*mut *mut c_void, *const c_void, usize);
type FinishFn = unsafe extern "C" fn(*mut c_void, *mut *const c_void, *mut usize);
type UnpoisonFn = unsafe extern "C" fn(*const c_void, usize);

static START: AtomicUsize = AtomicUsize::new(0);
static FINISH: AtomicUsize = AtomicUsize::new(0);
static UNPOISON: AtomicUsize = AtomicUsize::new(0);

fn lookup(name: &core::ffi::CStr) -> usize {
    // SAFETY: dlsym with a NUL-terminated name; RTLD_DEFAULT searches the loaded objects.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize }
}

/// Looks the sanitizer up (once, at load).
pub fn init() {
    let (s, f, u) = (
        lookup(c"__sanitizer_start_switch_fiber"),
        lookup(c"__sanitizer_finish_switch_fiber"),
        lookup(c"__asan_unpoison_memory_region"),
    );
    if s != 0 && f != 0 && u != 0 {
        UNPOISON.store(u, Relaxed);
        FINISH.store(f, Relaxed);
        START.store(s, Relaxed);
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
    unsafe { core::mem::transmute::<usize, FinishFn>(FINISH.load(Relaxed))(save, core::ptr::null_mut(), core::ptr::null_mut()) }
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
    if asan() {
        // SAFETY: per the contract.
        unsafe {
            let (lo, size) = g0_bounds(m);
            let save = if ending { core::ptr::null_mut() } else { &raw mut (*g).asan_fake };
            start(save, lo, size);
        }
    }
}

/// Goroutine `g` leaves its stack for goroutine `next`'s (a hand-off).
///
/// # Safety
/// On `g`'s stack; `next` has a stack.
#[inline(always)]
pub unsafe fn leave_g_for_g(g: *mut G, next: *mut G) {
    if asan() {
        // SAFETY: per the contract.
        unsafe { start(&raw mut (*g).asan_fake, (*next).stack.lo, (*next).stack.size()) }
    }
}

/// `m`'s g0 leaves for goroutine `g` (gogo, the end of a systemstack call).
///
/// # Safety
/// On `m`'s g0; `g` has a stack.
#[inline(always)]
pub unsafe fn leave_g0(m: *mut M, g: *mut G) {
    if asan() {
        // SAFETY: per the contract.
        unsafe { start(&raw mut (*m).asan_g0_fake, (*g).stack.lo, (*g).stack.size()) }
    }
}

/// Arrived on goroutine `g`'s stack (back from mcall or a hand-off; or its first instruction).
///
/// # Safety
/// On `g`'s stack, right after the switch.
#[inline(always)]
pub unsafe fn enter_g(g: *mut G) {
    if asan() {
        // SAFETY: per the contract.
        unsafe { finish((*g).asan_fake) }
    }
}

/// Arrived on `m`'s g0.
///
/// # Safety
/// On `m`'s g0, right after the switch.
#[inline(always)]
pub unsafe fn enter_g0(m: *mut M) {
    if asan() {
        // SAFETY: per the contract.
        unsafe { finish((*m).asan_g0_fake) }
    }
}

