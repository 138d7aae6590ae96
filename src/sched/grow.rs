//! When goroutine stacks grow, move, shrink and give memory back (Go's `newstack`,
//! `shrinkstack`), for C. The copying itself is src/stack/copy.rs.
//!
//! A GROWABLE stack is a **window** (256 KiB by default, `stack::DEFAULT_WINDOW`): the kernel
//! commits its pages as they are touched, so it grows by page faults and nothing moves. Only past
//! the window is it **moved** to a reservation at least twice as large ([`copy_and_adjust`]),
//! which C cannot do safely in general (issue #12; counted, logged with `GOSTACK_STACKMOVE=log`,
//! forbidden by `GS_SPAWN_NOMOVE` / `GOSTACK_STACKMOVE=fatal`: [`forbidden_move`]). Triggers:
//! - **a guard fault** ([`grow_in_signal`], called by the SIGSEGV handler on the sigaltstack): the
//!   saved general registers (not rip) and vector lanes (stack/xsave.rs) are adjusted too, in a
//!   window reaching 1 MiB below the guard (stack-clash probe loops keep their end address there),
//!   and the faulting instruction retries on the new stack. Async-signal-safe: the new stack comes
//!   from [`stack::alloc_in_signal`] (no lock, no allocation) and the old one is not freed here but
//!   chained into a list kept inside the dead old stacks themselves (`GrowState::pending`), which
//!   [`settle`] empties the next time the goroutine's M is on g0 (or in a runtime entry point).
//! - **an explicit check** ([`morestack`]: `gs_stack_check`, the `GS_STACK_CHECK` macro's slow path,
//!   and [`secure_stack`], which every gs_* entry point that may switch calls first so that a guard
//!   fault never lands inside the runtime): `mcall(newstack_m)` saves the goroutine's switch frame on
//!   its own stack, copies on g0 (the frame moves with the stack: `g.sched.sp += delta`) and
//!   `gogo`es back into the moved goroutine.
//!
//! Giving memory back, at `gs_yield` only (never while the goroutine is parked: the sync layer
//! holds pointers into parked stacks), from [`shrink_at_safe_point`]:
//! - **in place** ([`release_slow`]): every [`RELEASE_EVERY`]th yield on an M, a goroutine using
//!   less than a quarter of its stack that went deeper before gets the pages below its stack
//!   pointer taken back (`MADV_DONTNEED`). Nothing moves.
//! - **by moving** ([`shrink_slow`]): only a window asked smaller than the default (a user's
//!   choice of Go's density) moves back to a smaller reservation, when less than a quarter has been
//!   in use at two safe points in a row.
//!
//! Runtime-owned pointers into a stack are adjusted precisely: `G.sched.sp`, `G.stack`,
//! `G.stackguard0`, `%fs:0x70` (when the running goroutine moves). Everything else follows the
//! contract in the header (`GS_STACK_GROWABLE`): nothing outside a stack that may move points into
//! it across a point where it can move.

use crate::arch;
use crate::base::fatal::FdWriter;
use crate::base::types::*;
use crate::sched::{self, sanitizer, Where, G, M, STACK_GUARD};
pub use crate::stack::copy::REG_WINDOW_BELOW_GUARD;
use crate::stack::copy::{copy_and_adjust, grown_size_within, live_lo, memory_mover, pointer_guard, Mover, RED_ZONE};
use crate::stack::{self, page, Stack, StackCache};
use core::ffi::{c_int, c_void};
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

/// Stack the runtime's own entry points secure before they run (their frames, mcall's switch
/// frame, formatting a fatal message).
pub const RUNTIME_ENTRY_STACK: usize = 4096;
/// An SI_KERNEL fault (the kernel could not push a signal frame, si_addr 0) counts as a growth
/// request when the stack pointer is this close to the stack's low end (per architecture: the
/// size of a signal frame, with room to spare).
pub const KERNEL_FRAME_ROOM: usize = arch::KERNEL_FRAME_ROOM;

/// Copy-moves to a larger reservation (every trigger).
pub static GROWS: AtomicU64 = AtomicU64::new(0);
/// Copy-moves to a smaller reservation (only stacks whose window was asked smaller than the
/// default move back: [`may_shrink`]).
pub static SHRINKS: AtomicU64 = AtomicU64::new(0);
/// In-place releases: pages below a goroutine's stack pointer given back at a safe point
/// ([`release_slow`]); nothing moves.
pub static RELEASES: AtomicU64 = AtomicU64::new(0);

/// `GOSTACK_STACKMOVE` unset or `allow`: stacks move when they must (past their window).
pub const MOVE_ALLOW: u8 = 0;
/// `GOSTACK_STACKMOVE=log`: every move is printed to stderr (goroutine, sizes, depth, frames).
pub const MOVE_LOG: u8 = 1;
/// `GOSTACK_STACKMOVE=fatal`: a move any goroutine would need is a fatal error instead (as
/// `GS_SPAWN_NOMOVE` for one goroutine).
pub const MOVE_FATAL: u8 = 2;
/// The process-wide move policy (one of the `MOVE_*` values), read from the environment at load.
pub static STACKMOVE: AtomicU8 = AtomicU8::new(MOVE_ALLOW);

/// Parses a `GOSTACK_STACKMOVE` value.
pub fn parse_stackmove(v: &str) -> Option<u8> {
    match v.trim() {
        "" | "allow" => Some(MOVE_ALLOW),
        "log" => Some(MOVE_LOG),
        "fatal" => Some(MOVE_FATAL),
        _ => None,
    }
}

/// Whether `g`'s stack may be moved (copied to another reservation).
fn may_move(g: &G) -> bool {
    g.flags & GS_SPAWN_NOMOVE == 0 && STACKMOVE.load(Relaxed) != MOVE_FATAL
}

/// Frames on a stack reachable through the frame-pointer chain from `rbp` (code built without
/// frame pointers shows fewer, often 0): bounded, reads only inside `[sp, hi)`.
fn fp_frames(rbp: usize, sp: usize, hi: usize) -> usize {
    let (mut fp, mut n) = (rbp, 0);
    while fp >= sp && fp + 16 <= hi && fp % 8 == 0 && n < 100_000 {
        n += 1;
        // SAFETY: fp lies inside the goroutine's stack [sp, hi), which is mapped and ours.
        let next = unsafe { (fp as *const usize).read() };
        if next <= fp {
            break;
        }
        fp = next;
    }
    n
}

/// `GOSTACK_STACKMOVE=log`: one line per move. Async-signal-safe.
fn log_move(g: &G, what: &str, old: &Stack, new: &Stack, sp: usize, rbp: usize) {
    if STACKMOVE.load(Relaxed) != MOVE_LOG {
        return;
    }
    let mut w = FdWriter::stderr();
    let _ = writeln!(
        w,
        "gostack: goroutine {} stack moved ({what}): {} -> {} bytes, {} bytes live, {} frame-pointer frames",
        g.goid,
        old.size(),
        new.size(),
        new.hi - sp,
        fp_frames(rbp, sp, new.hi)
    );
}

/// Go-style fatal error for a move that `GS_SPAWN_NOMOVE` or `GOSTACK_STACKMOVE=fatal` forbids.
/// Async-signal-safe.
pub fn forbidden_move(g: &G, sp: usize, need: usize) -> ! {
    let why = if g.flags & GS_SPAWN_NOMOVE != 0 { "GS_SPAWN_NOMOVE" } else { "GOSTACK_STACKMOVE=fatal" };
    let mut w = FdWriter::stderr();
    let _ = write!(
        w,
        "runtime: goroutine {} stack must not move ({why}): it needs {need} bytes, its window is {} bytes\n\
         runtime: sp={sp:#x} depth={} stack=[{:#x}, {:#x})\n",
        g.goid,
        g.stack.size(),
        g.stack.hi.saturating_sub(sp),
        g.stack.lo,
        g.stack.hi
    );
    drop(w);
    crate::base::fatal::throw("stack would move past its window")
}

/// Growth bookkeeping of a G (the last field of `G`).
#[derive(Clone, Copy, Debug, Default)]
pub struct GrowState {
    /// Head of the list of old stacks waiting to be freed; each holds the next link in its top
    /// bytes (see [`push_pending`]). `lo == 0`: empty.
    pub pending: Stack,
    /// The reservation the goroutine started with: shrinking never goes below it.
    pub initial: usize,
    /// Consecutive safe points at which less than a quarter of the stack was in use.
    pub low_safe_points: u32,
}

/// Chains the dead stack `old` into `g`'s pending list (the link lives in its top 64 bytes, a
/// page that is surely committed). Async-signal-safe.
///
/// # Safety
/// `old` is dead (nothing runs on it) and owned by `g`.
unsafe fn push_pending(g: &mut G, old: Stack) {
    // SAFETY: per the contract; hi - 64 is 16-byte aligned and inside old.
    unsafe { ((old.hi - 64) as *mut Stack).write(g.growth.pending) };
    g.growth.pending = old;
}

/// Makes `new` the stack of `g` after a copy.
fn install(g: &mut G, new: Stack, running: bool) {
    g.stack = new;
    stack::valgrind::change(g.vg_stack, new.lo, new.hi);
    sanitizer::unpoison(new.lo, new.hi);
    g.stackguard0 = new.lo + STACK_GUARD;
    if running {
        arch::set_tls_stack_guard(g.stackguard0);
    }
}

/// After `copy_and_adjust(old, new, sp, ..)` returned `delta`: AddressSanitizer's fake frames
/// that the moved stack's live words or `regs` point into get the same adjustment
/// (sched/sanitizer.rs, item 1). Nothing when not under ASan (`fake` null). Async-signal-safe.
///
/// # Safety
/// `fake` is the fake stack of the stopped goroutine whose stack moved from `old` to `new`.
unsafe fn move_fake_frames(
    fake: *mut c_void,
    old: &Stack,
    new: &Stack,
    sp: usize,
    delta: usize,
    regs: impl Iterator<Item = usize>,
) {
    if fake.is_null() {
        return;
    }
    let mv = memory_mover(old, sp, delta, pointer_guard());
    let (lo, hi) = (live_lo(old, sp).wrapping_add(delta), new.hi);
    // SAFETY: [lo, hi) is the live part of the new stack, just written by the copy; per the
    // contract for the rest.
    unsafe {
        let words = (lo..hi).step_by(8).map(|a| (a as *const usize).read());
        sanitizer::move_fake_frames(fake, words.chain(regs), &mv)
    }
}

/// Frees the stacks `g` left behind when it grew in the signal handler and records a stack the
/// handler mapped. Takes locks and may allocate: call on g0 or at a runtime entry point, never in
/// a signal handler. `m` is the calling thread's M (null or without a P: the global pool).
///
/// # Safety
/// `g` is the goroutine running on (or just switched away from) this thread.
#[inline(always)]
pub unsafe fn settle(m: *mut M, g: *mut G) {
    // Inlined check on every switch: nothing to do unless the goroutine's stack moved.
    // SAFETY: per the contract.
    unsafe {
        if needs_settle(g) {
            settle_slow(m, g)
        }
    }
}

/// Whether [`settle`] has work for `g`: its stack moved in the signal handler (old stacks to
/// free, or a new one to register).
///
/// # Safety
/// `g` is a live G record owned by the caller's M.
#[inline(always)]
pub unsafe fn needs_settle(g: *mut G) -> bool {
    // SAFETY: per the contract.
    unsafe { (*g).stack.class == stack::DIRECT || (*g).growth.pending.lo != 0 }
}

#[cold]
#[inline(never)]
unsafe fn settle_slow(m: *mut M, g: *mut G) {
    // SAFETY: per the contract of settle, g's record is ours to update; only this thread touches
    // m.p.
    unsafe {
        let g = &mut *g;
        if g.stack.class == stack::DIRECT {
            stack::register_direct(&mut g.stack);
        }
        let p = if m.is_null() { core::ptr::null_mut() } else { (*m).p };
        while g.growth.pending.lo != 0 {
            let mut s = g.growth.pending;
            g.growth.pending = ((s.hi - 64) as *const Stack).read();
            // Recycled warm, like every other stack (a cold destination makes growth 4-5x slower).
            stack::register_direct(&mut s);
            if p.is_null() {
                stack::free_global(s);
            } else {
                (*p).local().stacks.free(s);
            }
        }
    }
}

/// Why a stack could not grow.
#[derive(Debug, PartialEq, Eq)]
pub enum GrowError {
    /// Past `max_stack`.
    Limit,
    /// No memory for the new reservation.
    NoMemory,
}

/// Grows the stack of the goroutine `g` running on this thread from the SIGSEGV handler: `fault`
/// is the faulting address in its guard region, or 0 for an SI_KERNEL fault (the kernel could not
/// push a signal frame). Adjusts the saved registers in `uc`; on return the faulting instruction
/// retries on the new stack.
///
/// # Safety
/// Called in the SIGSEGV handler, on the sigaltstack, of the thread whose M is `m` and whose
/// running goroutine `g` (GROWABLE) faulted on its own stack; `uc` is the handler's ucontext.
pub unsafe fn grow_in_signal(m: *mut M, g: *mut G, uc: *mut libc::ucontext_t, fault: usize) -> Result<(), GrowError> {
    // SAFETY: per the contract: the goroutine is stopped in the fault, its record and stack are
    // ours; the P's cache is touched only by this thread (runtime code never faults while
    // changing it: it secures its stack first).
    unsafe {
        let g = &mut *g;
        let old = g.stack;
        let rsp = arch::uc_sp(uc);
        let low = if fault == 0 { rsp.saturating_sub(2 * KERNEL_FRAME_ROOM) } else { fault.min(rsp) };
        // A stack-clash probe loop keeps its end in a register that may lie farther below than
        // the register window: grow to hold the whole frame at once and move that register too.
        let probe_end =
            arch::probe_loop_end(uc, rsp, fault).filter(|&(_, end)| end < low && old.hi - end <= g.max_stack);
        let low = probe_end.map_or(low, |(_, end)| end);
        let need = old.hi - low.min(old.hi) + STACK_GUARD + page();
        let Some(size) = grown_size_within(old.size(), need, g.max_stack) else { return Err(GrowError::Limit) };
        if !may_move(g) {
            forbidden_move(g, rsp, need);
        }
        let p = (*m).p;
        let cache: Option<&mut StackCache> = if p.is_null() { None } else { Some(&mut (*p).local().stacks) };
        let Some(new) = stack::alloc_in_signal(cache, size) else { return Err(GrowError::NoMemory) };
        let pg = pointer_guard();
        let fake = sanitizer::fake_stack_in_signal(m, &raw mut *g);
        let delta = copy_and_adjust(&old, &new, rsp, pg);
        let regs = Mover::new(old.guard_lo().saturating_sub(REG_WINDOW_BELOW_GUARD), old.hi, delta, pg);
        arch::for_each_saved_register(uc, |r| regs.plain(r));
        if let Some((reg, end)) = probe_end {
            if !regs.inside(end) {
                arch::set_saved_register(uc, reg, end.wrapping_add(delta));
            }
        }
        #[cfg(target_arch = "x86_64")]
        stack::xsave::for_each_lane((*uc).uc_mcontext.fpregs.cast(), |v| regs.plain(v as usize) as u64);
        #[cfg(target_arch = "aarch64")]
        arch::for_each_vector_lane(uc, |v| regs.plain(v as usize) as u64);
        if !fake.is_null() {
            let (mut saved, mut n) = ([0usize; 40], 0);
            arch::for_each_saved_register(uc, |r| {
                if n < saved.len() {
                    saved[n] = r;
                    n += 1;
                }
                r
            });
            move_fake_frames(fake, &old, &new, rsp, delta, saved[..n].iter().copied());
        }
        sanitizer::stack_moved_in_signal(m, new.lo, new.hi);
        install(g, new, true);
        push_pending(g, old);
        g.grows = g.grows.wrapping_add(1);
        GROWS.fetch_add(1, Relaxed);
        log_move(g, "grow", &old, &new, arch::uc_sp(uc), arch::uc_fp(uc));
        Ok(())
    }
}

/// Secures `bytes` bytes of stack below the caller's stack pointer before runtime code runs on a
/// goroutine stack (entry points that may switch). The fast path compares with `%fs:0x70` (0
/// outside goroutines and on g0, so it never fires there).
#[inline(always)]
pub fn secure_stack(bytes: usize) {
    secure_stack_below(arch::tls_stack_guard(), bytes)
}

/// [`secure_stack`] for a caller that has just read `%fs:0x70` (`guard`) itself.
#[inline(always)]
pub fn secure_stack_below(guard: usize, bytes: usize) {
    if arch::current_sp().wrapping_sub(bytes) < guard {
        secure_stack_slow(bytes);
    }
}

#[cold]
#[inline(never)]
fn secure_stack_slow(bytes: usize) {
    let _ = morestack(arch::current_sp(), bytes, true);
}

/// Makes room for `bytes` bytes below `sp` on the running goroutine's stack, growing a GROWABLE
/// stack synchronously if needed. `GS_ENOMEM` if it cannot: a FIXED stack without that much room,
/// or (unless `fatal_past_limit`, which aborts with Go's message instead) past the limit.
/// Outside goroutines: `GS_OK`.
pub fn morestack(sp: usize, bytes: usize, fatal_past_limit: bool) -> c_int {
    let Where::Goroutine(m, g) = sched::whereami() else { return GS_OK };
    // A signal handler on the sigaltstack, interrupting a goroutine: its stack pointer is not on
    // the goroutine's stack, and lies below the guard whenever the sigaltstack was mapped below
    // the goroutine's stack (always under qemu-user, which maps bottom-up). Growing the
    // goroutine's stack from there moved it under its interrupted frames (test_signal_handler,
    // aarch64 under qemu). The entry point's own check refuses the call (GS_ESTATE).
    if crate::signal::in_handler() {
        return GS_ESTATE;
    }
    // SAFETY: g runs on this thread (on its own stack) and m is ours.
    unsafe {
        let gr = &mut *g;
        if sp.checked_sub(bytes).is_some_and(|x| x >= gr.stackguard0) {
            return GS_OK;
        }
        if sp >= gr.stack.hi || sp < gr.stack.guard_lo() {
            // Not on the goroutine's stack: a signal handler on the thread's signal stack, which
            // can lie below it (a host's, or under valgrind, which maps bottom-up). The API
            // refuses the call next (abi: check_caller); growing here moved the stack under the
            // interrupted code.
            return GS_OK;
        }
        if gr.stack_kind != GS_STACK_GROWABLE {
            return GS_ENOMEM;
        }
        let need = (gr.stack.hi - sp).saturating_add(bytes).saturating_add(STACK_GUARD);
        if grown_size_within(gr.stack.size(), need, gr.max_stack).is_none() {
            if fatal_past_limit {
                overflow(gr, sp, 0);
            }
            return GS_ENOMEM;
        }
        if !may_move(gr) {
            if fatal_past_limit {
                forbidden_move(gr, sp, need);
            }
            return GS_ENOMEM;
        }
        (*m).grow_need = need;
        sched::mcall(m, g, newstack_m);
        GS_OK
    }
}

/// Go's newstack, on g0: moves the saved goroutine to a stack of at least `m.grow_need` bytes
/// and resumes it there.
unsafe extern "C" fn newstack_m(gp: *mut c_void) {
    let g = gp as *mut G;
    // SAFETY: on g0 of the M that ran g (mcall); g is saved and stays RUNNING on this M.
    unsafe {
        let m = sched::enter_m(g);
        let gr = &mut *g;
        let old = gr.stack;
        let Some(size) = grown_size_within(old.size(), (*m).grow_need, gr.max_stack) else {
            crate::base::fatal::fatal!("newstack_m: request past the limit was not refused")
        };
        let pl = (*(*m).p).local();
        let Some(new) = pl.stacks.alloc(size) else {
            crate::base::fatal::fatal_as!("out of memory"; "cannot allocate a {size}-byte stack for goroutine {}", gr.goid)
        };
        let sp = gr.sched.sp;
        let delta = copy_and_adjust(&old, &new, sp, pointer_guard());
        move_fake_frames(gr.asan_fake, &old, &new, sp, delta, core::iter::empty());
        gr.sched.sp = sp.wrapping_add(delta);
        install(gr, new, false);
        pl.stacks.free(old);
        gr.grows = gr.grows.wrapping_add(1);
        GROWS.fetch_add(1, Relaxed);
        log_move(gr, "grow", &old, &new, gr.sched.sp, frame_rbp(gr.sched.sp));
        sched::gogo(m, g)
    }
}

/// The frame pointer saved in the switch frame at `sp` (a saved goroutine's `sched.sp`).
fn frame_rbp(sp: usize) -> usize {
    // SAFETY: a saved goroutine's sched.sp points at its switch frame, on its own stack.
    unsafe { arch::frame_fp(sp) }
}

/// Every this many yields on an M, the yielding goroutine's stack is looked at for pages to give
/// back ([`release_slow`]). The look costs a few cache lines (and, the first time a stack is
/// probed, a minor fault that maps the kernel's zero page): too much for every 13 ns yield, noise
/// at one in ~1,000. A prime: with a power of two, goroutines yielding in a strict rotation of
/// an even length (two ping-ponging) made it always the same one's turn (seen in
/// test_stack_window).
pub const RELEASE_EVERY: u32 = 1021;
/// Bytes below the stack pointer (past the red zone) that a release keeps committed, so that a
/// goroutine that dips a little deeper after the safe point does not fault the pages in again.
pub const RELEASE_SLACK: usize = 16 * 1024;

/// At a safe point (`gs_yield`, on g0, `g` saved and RUNNABLE-to-be), gives memory back without
/// moving anything: when less than a quarter of the stack is in use and the goroutine went
/// deeper before, the pages below its stack pointer go back to the kernel in place
/// ([`release_slow`], every [`RELEASE_EVERY`] yields on this M). Only a stack whose window was
/// asked smaller than the default ([`may_shrink`]) moves back to a smaller reservation, as Go's
/// do: when less than a quarter has been in use at two safe points in a row.
///
/// # Safety
/// On g0 of `m`, which holds a P; `g` was just saved by mcall and nothing points into its stack
/// but its own frames and `g.sched.sp`.
#[inline(always)]
pub unsafe fn shrink_at_safe_point(m: *mut M, g: *mut G) {
    // SAFETY: per the contract.
    unsafe {
        if may_shrink(g) {
            shrink_slow(m, g)
        } else if release_due(m) {
            release_slow(g)
        }
    }
}

/// Whether a yield should take the slow path for stack work: a stack that may shrink, or this
/// M's turn to look for pages to release (counts the yield; the turn is kept for
/// [`shrink_at_safe_point`] in `release_pending`).
///
/// # Safety
/// `m` is the calling thread's M and `g` its running goroutine.
#[inline(always)]
pub unsafe fn safe_point_work(m: *mut M, g: *mut G) -> bool {
    // SAFETY: per the contract.
    unsafe {
        if may_shrink(g) {
            return true;
        }
        if release_tick(m) {
            (*m).release_pending = true;
            return true;
        }
        false
    }
}

/// Counts a yield on `m`; true on every [`RELEASE_EVERY`]th. A count-down, not a modulo: three
/// instructions on the yield hand-off path (callgrind: the modulo by 1021 cost 11 per yield).
#[inline(always)]
unsafe fn release_tick(m: *mut M) -> bool {
    // SAFETY: only this thread writes its M's counter.
    unsafe {
        let left = (*m).safe_points.wrapping_sub(1);
        if left == 0 {
            (*m).safe_points = RELEASE_EVERY;
            return true;
        }
        (*m).safe_points = left;
        false
    }
}

/// [`release_tick`] as seen from g0: a hand-off that gave up for this reason counted the yield
/// already and left its turn in `release_pending`.
#[inline(always)]
unsafe fn release_due(m: *mut M) -> bool {
    // SAFETY: only this thread writes its M's fields.
    unsafe { core::mem::replace(&mut (*m).release_pending, false) || release_tick(m) }
}

/// Whether [`shrink_at_safe_point`] would move `g`'s stack: only a GROWABLE stack that grew past
/// an initial window smaller than the default (a user's explicit choice of density over safety)
/// and that may move.
///
/// # Safety
/// `g` is a live G record owned by the caller's M.
#[inline(always)]
pub unsafe fn may_shrink(g: *mut G) -> bool {
    // SAFETY: per the contract.
    unsafe {
        let g = &*g;
        g.stack_kind == GS_STACK_GROWABLE
            && g.stack.size() > g.growth.initial
            && g.growth.initial < stack::DEFAULT_WINDOW
    }
}

#[cold]
#[inline(never)]
unsafe fn shrink_slow(m: *mut M, g: *mut G) {
    // SAFETY: per the contract of shrink_at_safe_point.
    unsafe {
        let gr = &mut *g;
        let old = gr.stack;
        let sp = gr.sched.sp;
        let used = old.hi - live_lo(&old, sp);
        if used >= old.size() / 4 || !may_move(gr) {
            gr.growth.low_safe_points = 0;
            return;
        }
        gr.growth.low_safe_points += 1;
        if gr.growth.low_safe_points < 2 {
            return;
        }
        gr.growth.low_safe_points = 0;
        let size = (4 * used).next_power_of_two().max(gr.growth.initial).max(stack::MIN_CLASS_SIZE);
        if size >= old.size() {
            return;
        }
        let pl = (*(*m).p).local();
        let Some(new) = pl.stacks.alloc(size) else { return };
        let delta = copy_and_adjust(&old, &new, sp, pointer_guard());
        move_fake_frames(gr.asan_fake, &old, &new, sp, delta, core::iter::empty());
        gr.sched.sp = sp.wrapping_add(delta);
        install(gr, new, false);
        stack::free_cold(&mut pl.stacks, old);
        gr.shrinks = gr.shrinks.wrapping_add(1);
        SHRINKS.fetch_add(1, Relaxed);
        log_move(gr, "shrink", &old, &new, gr.sched.sp, frame_rbp(gr.sched.sp));
    }
}

/// Probe points of [`release_slow`]: words spread over the page right below a stack's top
/// quarter. A page the goroutine never touched reads as zeros (the kernel maps its zero page,
/// which costs no memory); one it went through almost surely holds a non-zero word at one of
/// these (return addresses, saved registers, locals). A miss keeps pages committed (memory, not
/// correctness).
const RELEASE_PROBES: usize = 8;

/// Gives back the pages of `g`'s stack below its stack pointer (less [`RED_ZONE`] and
/// [`RELEASE_SLACK`]) with `MADV_DONTNEED`, in place, when less than a quarter of the stack is in
/// use and a probe shows the goroutine went below that quarter before. Nothing moves: the
/// memory below the stack pointer is dead (the ABI lets a signal handler overwrite it), and the
/// goroutine is saved on this M (it cannot run elsewhere while we look).
///
/// # Safety
/// As [`shrink_at_safe_point`].
#[cold]
#[inline(never)]
unsafe fn release_slow(g: *mut G) {
    // SAFETY: per the contract: g is saved on this M, its stack mapped and ours.
    unsafe {
        let gr = &mut *g;
        let st = gr.stack;
        let sp = gr.sched.sp;
        if st.lo == 0 || sp < st.lo || sp >= st.hi {
            return;
        }
        let quarter = st.size() / 4;
        if st.hi - sp >= quarter || stack::valgrind::active() {
            // (Under valgrind the probe would read below a stack pointer: memcheck says invalid.)
            return;
        }
        let page_size = page();
        let page = (st.hi - quarter - page_size) & !(page_size - 1);
        let step = page_size / RELEASE_PROBES;
        let touched = (0..RELEASE_PROBES).any(|i| ((page + i * step + step - 8) as *const u64).read_volatile() != 0);
        if !touched {
            return;
        }
        let keep = sp.saturating_sub(RED_ZONE + RELEASE_SLACK) & !(page_size - 1);
        if keep <= st.lo {
            return;
        }
        libc::madvise(st.lo as *mut c_void, keep - st.lo, libc::MADV_DONTNEED);
        RELEASES.fetch_add(1, Relaxed);
    }
}

/// The fatal error for a fault below a goroutine's guard region: a frame larger than the guard
/// jumped over it (code built without `-fstack-clash-protection`). Async-signal-safe.
pub fn jumped_guard(g: &G, sp: usize, fault: usize) -> ! {
    let mut w = FdWriter::stderr();
    let _ = write!(
        w,
        "runtime: goroutine {} touched {} bytes below its stack, past the {}-byte guard region: a stack frame \
         or alloca larger than the guard jumped over it (code built without -fstack-clash-protection?)\n\
         runtime: sp={sp:#x} fault={fault:#x} stack=[{:#x}, {:#x})\n",
        g.goid,
        g.stack.lo - fault,
        g.stack.guard,
        g.stack.lo,
        g.stack.hi
    );
    drop(w);
    crate::base::fatal::throw("stack frame larger than the guard region")
}

/// Go's message for a goroutine that ran out of stack, then abort. Async-signal-safe.
pub fn overflow(g: &G, sp: usize, fault: usize) -> ! {
    let mut w = FdWriter::stderr();
    let limit = if g.stack_kind != GS_STACK_GROWABLE { g.stack.size() } else { g.max_stack };
    let _ = write!(
        w,
        "runtime: goroutine {} stack exceeds {}-byte limit\nruntime: sp={:#x} fault={:#x} stack=[{:#x}, {:#x})\n",
        g.goid, limit, sp, fault, g.stack.lo, g.stack.hi
    );
    drop(w);
    crate::base::fatal::throw("stack overflow")
}
