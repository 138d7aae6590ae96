//! The copy-stack goroutine kind (`GS_STACK_COPY`, issue #16; libaco's share stacks with
//! greenlet's lazy saving): every M has [`SLOTS`] shared stacks ("slots"). A copy-stack goroutine
//! takes one at its first run (the one fewest live goroutines use, round robin among equals) and
//! keeps it for life: its bytes
//! always live at the same addresses when it runs, so no word is ever adjusted and partly-written
//! words are safe (unlike a moved stack, src/stack/copy.rs). A slot's **resident** is the
//! goroutine whose bytes are in place there. Switching out copies nothing: the goroutine stays
//! resident. Switching in a goroutine that is not resident **evicts** the slot's resident (copies
//! its live part `[sched.sp, hi)` to its heap save area) and copies the incoming one's save area
//! back to the same addresses.
//!
//! ```text
//!   M's slot k (8 MiB reservation,                  G (switched out, not resident)
//!   pages committed as touched, never moves)        ┌───────────────┐
//!   hi ┌────────────────────────┐                   │ saved.buf ────┼──▶ heap: hi-len .. hi
//!      │ live part of the       │ ── evict ───────▶ │ saved.len     │    (copied verbatim)
//!      │ resident (running or   │ ◀── switch in ─── │ saved.slot ───┼──▶ slot k (for life)
//!      │ switched out)          │                   │ sched.sp      │
//!   sp ├────────────────────────┤                   └───────────────┘
//!      │ free                   │     Slot { stack, resident ──▶ the G whose bytes are here }
//!   lo └────────────────────────┘
//!      │ guard                  │
//! ```
//!
//! Invariants:
//! 1. A slot's bytes `[resident.sched.sp, hi)` are its resident's, whether it runs or is
//!    switched out; a copy-stack goroutine that is not its slot's resident has its live part in
//!    its save area. Only the thread about to run a goroutine of a slot changes that slot
//!    ([`make_resident`], [`assign`]), and only while no goroutine runs on the slot: from g0
//!    (`gogo`, a first run), or from a goroutine on another stack (a hand-off, [`handoff_ready`]).
//!    A goroutine that exits while resident leaves its slot empty ([`release`]).
//! 2. A copy-stack goroutine runs only on the M of its first run (`set_running` pins it whatever
//!    `GS_SPAWN_MIGRATABLE` says), so one thread uses each slot. It keeps that pin when its
//!    thread leaves the scheduler (p.rs `keeps_pin`: gs_run returned, a CPython `run()` slice
//!    ended), where other goroutines lose theirs: it waits in the M's private queue until the
//!    thread (or a new thread that reuses the M's record, slots and queue) enters again.
//!    (Should a goroutine still get to another thread's slot, eviction finds a running resident,
//!    which is fatal, not silent.)
//! 3. The hand-offs that switch goroutine to goroutine without g0 (park.rs) stay direct when the
//!    incoming goroutine is resident or not copy-stack (nothing to copy), and when it lives on
//!    another slot than the running one (the copy runs on the running goroutine's stack before the
//!    switch). Only when both share a slot and the incoming one is not resident do they go
//!    through g0 ([`handoff`]): the outgoing goroutine's frames are in the way. It is still a
//!    hand-off (no trip through the scheduler loop): mcall, evict, restore, publish, gogo.
//! 4. Nothing but the goroutine itself reads or writes its stack while it is switched out. The
//!    runtime's waiters (src/sync: `WaitCtx`, `Waiter`, channel elements) of a copy-stack
//!    goroutine live on the heap ([`crate::sync`]'s `Place`), never in its frame: it may be
//!    evicted and its addresses reused while it is parked.
//! 5. Who reads a switched-out goroutine's stack must ask where its bytes are ([`residence`]):
//!    dumps say `resident` or `saved N bytes`. `gs_get_stack_info` is the running goroutine's
//!    (always resident). A fork child keeps the forking thread's slots but for residents that
//!    are not the forking goroutine ([`after_fork`]: they are dropped goroutines). An M whose
//!    thread leaves keeps its slots and residents (the record is reused, never freed).
//!
//! THE CONTRACT for user code: a pointer into a copy-stack goroutine's stack is valid only while
//! it runs. Handed to another goroutine (or thread), it points at whatever is at that address
//! at the time: another goroutine's frames once it was evicted; reads see them, writes corrupt
//! them (silently). (While it stays resident, the pointer happens to work: do not rely on it.)
//!
//! Sanitizers and valgrind cannot follow a stack copied in and out behind their back: under
//! ASan, TSan or valgrind a `GS_STACK_COPY` spawn gets a FIXED stack instead (spawn.rs).
//!
//! Taken (2026-12-04, was rejected): saving lazily. The rejection said a parked goroutine's bytes
//! then live in one of two places, and dumps, exit and fork have to know which; that is so
//! (invariant 5: dumps ask [`residence`], exit empties the slot, fork drops the dropped
//! goroutines' residency), and is the price. What changed the answer is the measurement:
//! saving on every switch cost 4 copies and a trip through g0 per round trip, 212 ns against
//! GROWABLE's 51 ns at 1 KiB live (4.1x, target 2x); the copies alone at 1 KiB exceed the budget.
//! With slots and lazy saving, goroutines that take turns on fewer than [`SLOTS`] slots copy
//! nothing (docs/PERFORMANCE.md, "Stacks: the copy-stack kind").
//!
//! Rejected: an SSE copy loop of our own instead of `memcpy` (bench_copy: slower from 1 KiB live
//! up, 16 KiB 1.9 us against 1.5 us per round trip; glibc's AVX2 copy stores 32 bytes a step).
//!
//! Rejected: one shared stack per M with lazy saving (greenlet): two copy-stack goroutines that
//! take turns, the common case, evict each other at every switch, and every switch goes through
//! g0 (the outgoing one's frames are in the way). Slots make that case copy-free.

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

/// Reservation of each slot: pages are committed as touched (deep recursion of 1 MiB and more
/// fits), so the address space is cheap.
pub const SHARED_STACK_SIZE: usize = 8 << 20;

/// Slots per M. Goroutines that take turns on one M copy nothing while there are at most this
/// many of them: a first run takes the slot fewest live goroutines use ([`assign`]), so up to
/// this many live goroutines of an M have a slot each. More slots cost address space (8 MiB
/// each, reserved at first use) and, after deep recursion, the pages committed there.
pub const SLOTS: usize = 8;

/// Save areas at least this large and four times what a save needs are shrunk to fit (a
/// goroutine that once went deep and now parks shallow gives the memory back).
const SHRINK_MIN: usize = 4096;

/// One shared stack and the goroutine whose bytes are in place on it (invariant 1). Lives in its
/// M's record (never freed), so a G may point at it for life.
#[derive(Debug)]
pub struct Slot {
    stack: Stack,
    resident: *mut G,
    /// Live goroutines that have this slot (their bytes here or in their save areas).
    users: u32,
}

/// An M's slots and the next one to hand out.
#[derive(Debug)]
pub struct Slots {
    slot: [Slot; SLOTS],
    next: usize,
}

impl Default for Slots {
    fn default() -> Self {
        Slots {
            slot: core::array::from_fn(|_| Slot { stack: Stack::default(), resident: null_mut(), users: 0 }),
            next: 0,
        }
    }
}

/// A copy-stack goroutine's slot (from its first run) and, while it is not resident, its live
/// stack: `len` bytes that belong at `[stack.hi - len, stack.hi)`, in a `malloc`ed buffer of
/// `cap` bytes (kept across switches).
#[derive(Debug)]
pub struct Saved {
    buf: *mut u8,
    len: usize,
    cap: usize,
    slot: *mut Slot,
}

impl Default for Saved {
    fn default() -> Self {
        Saved { buf: null_mut(), len: 0, cap: 0, slot: null_mut() }
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

/// Set when the first slot is reserved, which is before any copy-stack goroutine runs, on the
/// thread that will run it, and never cleared: until then no goroutine can be copy-stack where
/// the hot paths ask (a running goroutine, or one with a stack in a hand-off), and they test one
/// word instead of the G's kind (callgrind: channel round trip 994 -> 980).
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

/// A copy-stack goroutine's first run: gives `g` the slot of `m` that fewest live goroutines use
/// (the first such from where the last choice left off: round robin among equals; reserved at
/// its first use), evicting its resident, and makes `g` the resident. (Plain round robin would
/// give a long-lived goroutine's slot to a newcomer after 7 short-lived ones came and went, and
/// the two would evict each other at every switch.) Returns the slot's stack, where the
/// caller builds `g`'s entry frame. Out of memory is fatal (as a first run's stack is: the
/// spawner is gone).
///
/// # Safety
/// On g0 of `m`, about to run `g` (a copy-stack goroutine that has never run).
pub unsafe fn assign(m: *mut M, g: *mut G) -> Stack {
    // SAFETY: per the contract: only m's thread touches its slots (invariant 2); on g0 no
    // goroutine runs on any slot (invariant 1).
    unsafe {
        let slots = &mut (*m).copy_slots;
        let mut k = slots.next;
        for i in 1..SLOTS {
            let j = (slots.next + i) % SLOTS;
            if slots.slot[j].users < slots.slot[k].users {
                k = j;
            }
        }
        slots.next = (k + 1) % SLOTS;
        slots.slot[k].users += 1;
        let slot: *mut Slot = &mut slots.slot[k];
        if (*slot).stack.lo == 0 {
            let Some(s) = stack::alloc_global(SHARED_STACK_SIZE) else {
                crate::base::fatal::fatal_as!("out of memory"; "cannot reserve the {}-byte shared stack of copy-stack goroutines", SHARED_STACK_SIZE);
            };
            (*slot).stack = s;
            IN_USE.store(true, Relaxed);
        }
        evict(slot);
        (*slot).resident = g;
        (*g).saved.slot = slot;
        (*slot).stack
    }
}

/// Copies the live part of `slot`'s resident, if any, to its save area and leaves the slot empty.
///
/// # Safety
/// No goroutine runs on `slot` and the caller may change it (invariant 1).
unsafe fn evict(slot: *mut Slot) {
    // SAFETY: per the contract: the resident is switched out, its live part intact on the slot.
    unsafe {
        let r = (*slot).resident;
        if r.is_null() {
            return;
        }
        let g = &mut *r;
        let sp = g.sched.sp;
        if sp == 0 {
            evict_running(g.goid);
        }
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
        (*slot).resident = null_mut();
    }
}

#[cold]
#[inline(never)]
fn evict_running(goid: i64) -> ! {
    crate::base::fatal::fatal!(
        "copy-stack goroutine {} runs on another thread while this one needs its slot (copystack.rs, invariant 2)",
        goid
    )
}

/// Makes `g` its slot's resident: evicts the resident and copies `g`'s save area back to its
/// place. Nothing when it is resident already.
///
/// # Safety
/// `g` is a copy-stack goroutine that has run, about to run on the calling thread; nothing runs
/// on its slot (invariant 1: the caller is on g0 or on another stack).
#[inline(always)]
pub unsafe fn make_resident(g: *mut G) {
    // SAFETY: per the contract.
    unsafe {
        let slot = (*g).saved.slot;
        if (*slot).resident != g {
            swap_in(slot, g);
        }
    }
}

/// [`make_resident`]'s copies.
///
/// # Safety
/// As [`make_resident`], and `g` is not resident.
#[inline(never)]
unsafe fn swap_in(slot: *mut Slot, g: *mut G) {
    // SAFETY: per the contract.
    unsafe {
        evict(slot);
        let g = &mut *g;
        let s = &g.saved;
        if s.len != 0 {
            core::ptr::copy_nonoverlapping(s.buf, (g.stack.hi - s.len) as *mut u8, s.len);
        }
        (*slot).resident = g;
    }
}

/// A hand-off (park.rs) from the running goroutine `g` to `next`: gets `next`'s bytes in place
/// when that can be done here, on `g`'s stack (invariant 3). Returns false when the hand-off must
/// go through g0 instead ([`handoff`]): `next` is not resident and lives on `g`'s slot.
///
/// # Safety
/// On `g`'s stack; `next` was claimed for this M and has run before.
#[inline(always)]
pub(super) unsafe fn handoff_ready(g: *mut G, next: *mut G) -> bool {
    // SAFETY: per the contract: next's slot is this M's (invariant 2); unless it is g's, nothing
    // runs on it.
    unsafe {
        if !is_copy(next) {
            return true;
        }
        let slot = (*next).saved.slot;
        if (*slot).resident == next {
            return true;
        }
        if is_copy(g) && (*g).saved.slot == slot {
            return false;
        }
        swap_in(slot, next);
        true
    }
}

/// Where a switched-out copy-stack goroutine's bytes are, for dumps: `None` when they are in
/// place on its slot (or it has not run), else the size of its save area's contents. A racy
/// snapshot when read from another thread.
pub fn residence(g: &G) -> Option<usize> {
    let slot = g.saved.slot;
    // SAFETY: slots live in M records, never freed.
    if slot.is_null() || core::ptr::eq(unsafe { (*slot).resident }, g) {
        None
    } else {
        Some(g.saved.len)
    }
}

/// What a hand-off publishes once the outgoing goroutine is off its stack (as `gs_asm_yield_swap`
/// and `gs_asm_park_swap` do after their switch): the run queue's new tail (a yield: the slot
/// holds the yielder), or the release of a wait queue's lock byte (a park).
pub enum Publish {
    Tail(*mut u32, u32),
    Unlock(*mut u8),
}

/// A hand-off of park.rs (yield_handoff, park_handoff) from `g` to `next` when [`handoff_ready`]
/// said no (invariant 3): switches to g0, evicts `g`, restores `next`, publishes and resumes
/// `next`. Returns when `g` is resumed.
///
/// # Safety
/// On `g`'s stack, `m` its M; `next` was claimed for `m` (set_running) and has a saved context;
/// `publish` is what the hand-off must publish once `g` is switched out; no sanitizer is present
/// (the hand-offs refuse then).
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
    // SAFETY: arg is the Handoff in g's frame, intact until next is restored over it: read it
    // first. Then as mcall's `_m` functions: g is saved; next is ours. The copies come before
    // the publication, which may let g be taken (a yield's tail) or readied (a park's lock).
    unsafe {
        let Handoff { m, g, next, publish } = core::ptr::read(arg as *const Handoff);
        (*m).fpctl = crate::arch::frame_fpctl((*g).sched.sp);
        make_resident(next);
        match publish {
            Publish::Tail(tail, v) => AtomicU32::from_ptr(tail).store(v, Release),
            Publish::Unlock(lock) => AtomicU8::from_ptr(lock).store(0, Release),
        }
        super::park::gogo(m, next)
    }
}

/// Frees `g`'s save area and leaves its slot empty if it was the resident (the goroutine exited).
///
/// # Safety
/// `g` is dead and owned by the caller, on the thread of its slot's M (invariant 2).
pub unsafe fn release(g: *mut G) {
    // SAFETY: per the contract: the buffer came from malloc (or is null); the slot is ours.
    unsafe {
        let s = core::mem::take(&mut (*g).saved);
        if !s.slot.is_null() {
            (*s.slot).users -= 1;
            if (*s.slot).resident == g {
                (*s.slot).resident = null_mut();
            }
        }
        libc::free(s.buf.cast());
    }
}

/// In a fork child: the slots of `m` (the forking thread's) keep only `keep` (the goroutine that
/// called `fork`, if any) as a resident and user; the others are dropped goroutines (fork.rs,
/// rule 1), whose bytes need not be saved before the slot is reused. Other Ms' records are not
/// used again in the child.
///
/// # Safety
/// `m` is the only M of a fork child, called from the child handler.
pub unsafe fn after_fork(m: *mut M, keep: *mut G) {
    // SAFETY: per the contract: no other thread exists.
    unsafe {
        for slot in (*m).copy_slots.slot.iter_mut() {
            if slot.resident != keep {
                slot.resident = null_mut();
            }
            slot.users = 0;
        }
        if !keep.is_null() && is_copy(keep) && !(*keep).saved.slot.is_null() {
            (*(*keep).saved.slot).users = 1;
        }
    }
}
