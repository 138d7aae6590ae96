//! The copy-stack goroutine kind (`GS_STACK_COPY`, issue #16; greenlet's and libaco's technique):
//! every copy-stack goroutine of an M runs on that M's one shared stack, always at the same
//! address. When it switches out (yield, park) its live part is copied to a heap save area sized
//! to fit; when it switches in, the save area is copied back to the same addresses. No word is
//! ever adjusted, so partly-written words are safe (unlike a moved stack, src/stack/copy.rs).
//!
//! ```text
//!   M's shared stack (8 MiB reservation,           G (parked)
//!   pages committed as touched, never moves)        ┌───────────────┐
//!   hi ┌────────────────────────┐                   │ saved.buf ────┼──▶ heap: hi-len .. hi
//!      │ live part of the G     │ ── switch out ──▶ │ saved.len     │    (copied verbatim)
//!      │ that runs now          │ ◀── switch in ─── │ sched.sp      │
//!   sp ├────────────────────────┤                   └───────────────┘
//!      │ free                   │
//!   lo └────────────────────────┘
//!      │ guard                  │
//! ```
//!
//! Invariants:
//! 1. While the M runs g0 (the scheduler), no copy-stack goroutine occupies the shared stack:
//!    the one that left was saved right after `mcall` ([`save`], in `enter_m`, the first thing
//!    every `_m` function does; an exit saves too, then frees), so [`restore`] (in `gogo`) or a
//!    first run may overwrite it. (A parked goroutine's frame stays
//!    intact until then: the park's unlock function still reads it on g0.)
//! 2. A copy-stack goroutine runs only on the M of its first run (`set_running` pins it whatever
//!    `GS_SPAWN_MIGRATABLE` says): its `stack` is that M's shared stack.
//! 3. The hand-offs that switch goroutine to goroutine without g0 (park.rs) go through g0 when
//!    either side is a copy-stack goroutine ([`handoff`]): two of them share one address range,
//!    so the outgoing one is saved from g0 before the incoming one is copied in. It is still a
//!    hand-off (no trip through the scheduler loop): mcall, save, publish, restore, gogo.
//! 4. Nothing but the goroutine itself reads or writes its stack while it is switched out. The
//!    runtime's waiters (src/sync: `WaitCtx`, `Waiter`, channel elements) of a copy-stack
//!    goroutine live on the heap ([`crate::sync`]'s `Home`), never in its frame.
//!
//! THE CONTRACT for user code: a pointer into a copy-stack goroutine's stack is valid only while
//! it runs. Handed to another goroutine (or thread), it points at whatever runs on that M's shared
//! stack at the time: reads see another goroutine's frames, writes corrupt them (silently).
//!
//! Sanitizers and valgrind cannot follow a stack copied in and out behind their back: under
//! ASan, TSan or valgrind a `GS_STACK_COPY` spawn gets a FIXED stack instead (spawn.rs).
//!
//! Rejected: an SSE copy loop of our own instead of `memcpy` (bench_copy: slower from 1 KiB live
//! up, 16 KiB 1.9 us against 1.5 us per round trip; glibc's AVX2 copy stores 32 bytes a step).
//!
//! Rejected: saving lazily (greenlet: the next goroutine to need the range saves the occupant):
//! fewer copies for a goroutine that yields to a non-copy one, but then a parked goroutine's
//! bytes live in two places, and dumps, exit and fork would have to know which.

use super::g::G;
use super::m::M;
use crate::base::types::{GS_STACK_COPY, GS_STACK_GROWABLE};
use crate::stack::{self, Stack};
use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering::*};

/// The stack kind of `gs_attr_init` and `gs_spawn`: `GS_STACK_GROWABLE`, or `GS_STACK_COPY` with
/// `GOSTACK_STACK_KIND=copy` (read at start-up, sched/mod.rs).
pub static DEFAULT_KIND: AtomicU32 = AtomicU32::new(GS_STACK_GROWABLE);

/// The default stack kind (see [`DEFAULT_KIND`]).
#[inline]
pub fn default_kind() -> u32 {
    DEFAULT_KIND.load(Relaxed)
}

/// A stack kind's name in dumps and fatal errors.
pub fn kind_name(kind: u32) -> &'static str {
    match kind {
        crate::base::types::GS_STACK_FIXED => "FIXED",
        GS_STACK_COPY => "COPY",
        _ => "GROWABLE",
    }
}

/// Reservation of an M's shared stack: pages are committed as touched (deep recursion of 1 MiB
/// and more fits), one per M, so the address space is cheap.
pub const SHARED_STACK_SIZE: usize = 8 << 20;

/// Save areas at least this large and four times what a save needs are shrunk to fit (a
/// goroutine that once went deep and now parks shallow gives the memory back).
const SHRINK_MIN: usize = 4096;

/// A switched-out copy-stack goroutine's live stack: `len` bytes that belong at
/// `[stack.hi - len, stack.hi)`, in a `malloc`ed buffer of `cap` bytes (kept across switches).
#[derive(Debug)]
pub struct Saved {
    buf: *mut u8,
    len: usize,
    cap: usize,
}

impl Default for Saved {
    fn default() -> Self {
        Saved { buf: null_mut(), len: 0, cap: 0 }
    }
}

/// Whether `g` is a copy-stack goroutine.
///
/// # Safety
/// `g` is a live G record.
#[inline(always)]
pub unsafe fn is_copy(g: *const G) -> bool {
    // SAFETY: per the contract; the kind is set at spawn and does not change while it lives.
    unsafe { (*g).stack_kind == GS_STACK_COPY }
}

/// Set when the first shared stack is reserved, which is before any copy-stack goroutine runs,
/// on the thread that will run it, and never cleared: until then no goroutine can be copy-stack
/// where the hot paths ask (a running goroutine, or one with a stack in a hand-off), and they
/// test one word instead of the G's kind (callgrind: channel round trip 994 -> 980).
static IN_USE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether any copy-stack goroutine may exist (see [`IN_USE`]).
#[inline(always)]
pub fn in_use() -> bool {
    IN_USE.load(Relaxed)
}

/// Whether the calling code runs on a copy-stack goroutine (the sync layer then keeps its waiters
/// off the stack, invariant 4).
#[inline]
pub fn on_copy_stack() -> bool {
    if !in_use() {
        return false;
    }
    let m = super::m::getm();
    if m.is_null() {
        return false;
    }
    // SAFETY: our own M; curg, if set, is a live G record.
    unsafe {
        let g = (*m).curg;
        !g.is_null() && is_copy(g)
    }
}

/// The shared stack of `m`, reserved at its first use. Out of memory is fatal (as a first run's
/// stack is: the spawner is gone).
///
/// # Safety
/// On g0 of `m`.
pub unsafe fn shared_stack(m: *mut M) -> Stack {
    // SAFETY: per the contract: only m's thread touches its copy_stack.
    unsafe {
        if (*m).copy_stack.lo == 0 {
            let Some(s) = stack::alloc_global(SHARED_STACK_SIZE) else {
                crate::base::fatal::fatal_as!("out of memory"; "cannot reserve the {}-byte shared stack of copy-stack goroutines", SHARED_STACK_SIZE);
            };
            (*m).copy_stack = s;
            IN_USE.store(true, Relaxed);
        }
        (*m).copy_stack
    }
}

/// Copies the live part of `g` (just saved by mcall: `[sched.sp, stack.hi)`) to its save area
/// (invariant 1).
///
/// # Safety
/// On g0 of the M that ran `g`, right after mcall saved it; `g` is a copy-stack goroutine.
#[inline]
pub unsafe fn save(g: *mut G) {
    // SAFETY: per the contract: g's record is ours, its live part is intact on the shared stack.
    unsafe {
        let g = &mut *g;
        let sp = g.sched.sp;
        let len = g.stack.hi - sp;
        let s = &mut g.saved;
        if s.cap < len || (s.cap >= SHRINK_MIN && s.cap / 4 >= len) {
            libc::free(s.buf.cast());
            let buf = libc::malloc(len) as *mut u8;
            if buf.is_null() {
                crate::base::fatal::fatal_as!("out of memory"; "cannot save {} bytes of goroutine {}'s stack", len, g.goid);
            }
            s.buf = buf;
            s.cap = libc::malloc_usable_size(buf.cast());
        }
        core::ptr::copy_nonoverlapping(sp as *const u8, s.buf, len);
        s.len = len;
    }
}

/// Copies `g`'s save area back to its place on the shared stack (before `gogo` resumes it).
///
/// # Safety
/// On g0 of `g`'s M (invariant 2), about to resume `g`; no other goroutine occupies the shared
/// stack (invariant 1).
#[inline]
pub unsafe fn restore(g: *mut G) {
    // SAFETY: per the contract.
    unsafe {
        let g = &mut *g;
        let s = &g.saved;
        if s.len != 0 {
            // (Not before its first switch-out: no save area yet, and a null pointer is not
            // allowed even for an empty copy.)
            core::ptr::copy_nonoverlapping(s.buf, (g.stack.hi - s.len) as *mut u8, s.len);
        }
    }
}

/// What a hand-off publishes once the outgoing goroutine is saved (as `gs_asm_yield_swap` and
/// `gs_asm_park_swap` do after their switch): the run queue's new tail (a yield: the slot holds
/// the yielder), or the release of a wait queue's lock byte (a park).
pub enum Publish {
    Tail(*mut u32, u32),
    Unlock(*mut u8),
}

/// A hand-off of park.rs (yield_handoff, park_handoff) from `g` to `next` when either is a
/// copy-stack goroutine (invariant 3): switches to g0, saves `g` (if copy-stack), publishes,
/// restores `next` (if copy-stack) and resumes it. Returns when `g` is resumed.
///
/// # Safety
/// On `g`'s stack, `m` its M; `next` was claimed for `m` (set_running) and has a saved context;
/// `publish` is what the hand-off must publish once `g` is saved; no sanitizer is present (the
/// hand-offs refuse then).
#[inline(never)]
pub(super) unsafe fn handoff(m: *mut M, g: *mut G, next: *mut G, publish: Publish) {
    let h = Handoff { m, g, next, publish };
    // SAFETY: per the contract; `h` is read by handoff_m before anything overwrites this frame.
    unsafe {
        crate::arch::gs_asm_mcall(&mut (*g).sched.sp, (*m).g0_base, handoff_m, &h as *const Handoff as *mut c_void)
    };
}

struct Handoff {
    m: *mut M,
    g: *mut G,
    next: *mut G,
    publish: Publish,
}

/// [`handoff`]'s part on g0.
unsafe extern "C" fn handoff_m(arg: *mut c_void) {
    // SAFETY: arg is the Handoff in g's frame, intact until restore(next) (invariant 1): read it
    // first. Then as mcall's `_m` functions: g is saved; next is ours.
    unsafe {
        let Handoff { m, g, next, publish } = core::ptr::read(arg as *const Handoff);
        (*m).fpctl = crate::arch::frame_fpctl((*g).sched.sp);
        if is_copy(g) {
            save(g);
        }
        match publish {
            Publish::Tail(tail, v) => AtomicU32::from_ptr(tail).store(v, Release),
            Publish::Unlock(lock) => AtomicU8::from_ptr(lock).store(0, Release),
        }
        super::park::gogo(m, next)
    }
}

/// Frees `g`'s save area (the goroutine exited).
///
/// # Safety
/// `g` is dead and owned by the caller.
pub unsafe fn release(g: *mut G) {
    // SAFETY: per the contract: the buffer came from malloc (or is null).
    unsafe {
        let s = core::mem::take(&mut (*g).saved);
        libc::free(s.buf.cast());
    }
}
