//! Copy-growing stacks (Go's contiguous stacks: `newstack`/`copystack`/`shrinkstack`) for C.
//!
//! A GROWABLE goroutine stack that runs out is replaced by a reservation at least twice as large:
//! the live part `[sp - 128 (red zone), hi)` is copied to the same distance below the new `hi`,
//! pointers into the old stack are moved by `delta = new.hi - old.hi`, and the old stack is freed.
//!
//! ```text
//!   old stack                         new stack (2x or more)
//!   hi ┌──────────────┐               hi ┌──────────────┐
//!      │ frames       │  copy, adjust    │ frames       │  every aligned word v with
//!      │  &local ─────┼─┐  ─────────▶     │  &local ─────┼─┐ guard_lo <= v < old.hi
//!      │ local  ◀─────┼─┘                │ local  ◀─────┼─┘ becomes v + delta
//!  sp-128 ─ ─ ─ ─ ─ ─┤               sp'-128 ─ ─ ─ ─ ─ ─┤ (and glibc-mangled words likewise)
//!   lo └──────────────┘                  │ free         │
//!      │ guard        │               lo └──────────────┘
//!      └──────────────┘                  │ guard        │
//! ```
//!
//! Triggers, all ending in [`copy_and_adjust`]:
//! - **a guard fault** ([`grow_in_signal`], called by the SIGSEGV handler on the sigaltstack): the
//!   saved general registers (not rip) and vector lanes (stack/xsave.rs) are adjusted too, in a
//!   window reaching 1 MiB below the guard (stack-clash probe loops keep their end address there),
//!   and the faulting instruction retries on the new stack. Async-signal-safe: the new stack comes
//!   from [`super::alloc_in_signal`] (no lock, no allocation) and the old one is not freed here but
//!   chained into a list kept inside the dead old stacks themselves (`GrowState::pending`), which
//!   [`settle`] empties the next time the goroutine's M is on g0 (or in a runtime entry point).
//! - **an explicit check** ([`morestack`]: `gs_stack_check`, the `GS_STACK_CHECK` macro's slow path,
//!   and [`secure_stack`], which every gs_* entry point that may switch calls first so that a guard
//!   fault never lands inside the runtime): `mcall(newstack_m)` saves the goroutine's switch frame on
//!   its own stack, copies on g0 (the frame moves with the stack: `g.sched.sp += delta`) and
//!   `gogo`es back into the moved goroutine.
//!
//! Shrinking ([`shrink_at_safe_point`], from `gs_yield` only: never while the goroutine is parked,
//! since the sync layer will hold pointers into parked stacks): when less than a quarter has been in
//! use at two safe points in a row, the live part moves to the smallest power-of-two reservation
//! (not below the initial one) of which it uses at most a quarter, and the old stack's pages go back
//! to the kernel.
//!
//! Runtime-owned pointers into a stack are adjusted precisely: `G.sched.sp`, `G.stack`,
//! `G.stackguard0`, `%fs:0x70` (when the running goroutine moves). Everything else follows the
//! contract in the README: nothing outside a growable stack may point into it across a point where
//! it can grow.

use super::{Stack, StackCache, PAGE};
use crate::abi::types::*;
use crate::arch;
use crate::fatal::FdWriter;
use crate::sched::{self, Where, G, M, STACK_GUARD};
use core::ffi::{c_int, c_void};
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

/// Bytes below the stack pointer that a leaf function may use without moving it (SysV red zone).
pub const RED_ZONE: usize = 128;
/// Saved registers are adjusted if they point this far below the guard region (stack-clash probe
/// loops keep their end address there, notes/growth.md).
pub const REG_WINDOW_BELOW_GUARD: usize = 1 << 20;
/// Stack the runtime's own entry points secure before they run (their frames, mcall's switch
/// frame, formatting a fatal message).
pub const RUNTIME_ENTRY_STACK: usize = 4096;
/// An SI_KERNEL fault (the kernel could not push a signal frame, si_addr 0) counts as a growth
/// request when rsp is this close to the stack's low end; a frame needs ~3.4 KiB (more with AVX-512).
pub const KERNEL_FRAME_ROOM: usize = 8 * 1024;

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
    crate::fatal::throw("stack would move past its window")
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

impl GrowState {
    pub fn reset(&mut self, initial: usize) {
        *self = GrowState { initial, ..GrowState::default() };
    }
}

/// glibc's pointer guard (`%fs:0x30`, `tcbhead_t.pointer_guard`): `PTR_MANGLE(p)` is
/// `rol64(p ^ guard, 0x11)`.
#[inline]
pub fn pointer_guard() -> usize {
    let g: usize;
    // SAFETY: reads the thread's TCB slot at %fs:0x30 (glibc x86_64 layout).
    unsafe { core::arch::asm!("mov {}, qword ptr fs:[0x30]", out(reg) g, options(nostack, preserves_flags, readonly)) };
    g
}

/// Moves values that point into `[lo, hi)` by `delta`.
#[derive(Clone, Copy, Debug)]
pub struct Mover {
    lo: usize,
    span: usize,
    delta: usize,
    guard: usize,
    /// A mangled user pointer's low 17 bits equal the guard's top 17 bits (user addresses have
    /// their top 17 bits clear): the cheap filter that makes the mangled test nearly free.
    guard_top: usize,
}

impl Mover {
    /// `delta` is `new - old` (wrapping); `pointer_guard` as from [`pointer_guard`].
    pub fn new(lo: usize, hi: usize, delta: usize, pointer_guard: usize) -> Self {
        Mover { lo, span: hi - lo, delta, guard: pointer_guard, guard_top: pointer_guard >> 47 }
    }

    #[inline(always)]
    fn inside(&self, v: usize) -> bool {
        v.wrapping_sub(self.lo) < self.span
    }

    /// A plain value (a register).
    #[inline(always)]
    pub fn plain(&self, v: usize) -> usize {
        if self.inside(v) {
            v.wrapping_add(self.delta)
        } else {
            v
        }
    }

    /// A memory word: plain, or glibc-mangled (jmp_buf's rbp, rsp).
    #[inline(always)]
    pub fn word(&self, v: usize) -> usize {
        if self.inside(v) {
            return v.wrapping_add(self.delta);
        }
        if v & 0x1ffff == self.guard_top {
            let p = v.rotate_right(0x11) ^ self.guard;
            if self.inside(p) {
                return (p.wrapping_add(self.delta) ^ self.guard).rotate_left(0x11);
            }
        }
        v
    }
}

/// The lowest byte of `old` that is live when its stack pointer is `sp`.
fn live_lo(old: &Stack, sp: usize) -> usize {
    old.lo.max(sp.saturating_sub(RED_ZONE)) & !7
}

/// The lowest address a word in memory may point to and still be moved: the live part of the
/// stack, `[sp - RED_ZONE, hi)` (`sp` may lie in the guard region after a large `sub rsp`).
/// A value pointing lower points at dead frames. Such values are mostly stale bytes: an earlier
/// frame's pointer left in a word the current frame only partly wrote (a long double's padding,
/// a buffer's unwritten tail), which moving would corrupt (issue #12). Restricting the range to
/// the live part is what makes the moving path less hazardous (docs/PERFORMANCE.md has the
/// measured rates); registers keep the wide window (stack-clash probe loops).
fn adjust_lo(old: &Stack, sp: usize) -> usize {
    sp.saturating_sub(RED_ZONE).clamp(old.guard_lo(), old.hi)
}

/// Copies the live part of `old` (`[sp - RED_ZONE, hi)`) to the same distance below `new.hi`,
/// moving every word that points into the live part of `old` ([`adjust_lo`]; plain or
/// glibc-mangled) by the delta, which it returns (`new.hi - old.hi`, wrapping).
///
/// # Safety
/// `old` and `new` are distinct stacks owned by the caller; nothing runs on either; the live part
/// fits in `new`.
pub unsafe fn copy_and_adjust(old: &Stack, new: &Stack, sp: usize, pointer_guard: usize) -> usize {
    let src_lo = live_lo(old, sp);
    let delta = new.hi.wrapping_sub(old.hi);
    let dst_lo = src_lo.wrapping_add(delta);
    assert!(dst_lo >= new.lo && dst_lo < new.hi, "stack copy does not fit");
    let mv = Mover::new(adjust_lo(old, sp), old.hi, delta, pointer_guard);
    let n = (old.hi - src_lo) / 8;
    let (src, dst) = (src_lo as *const usize, dst_lo as *mut usize);
    // SAFETY: [src_lo, old.hi) and [dst_lo, new.hi) lie in the two stacks (per the contract and
    // the assert), which do not overlap; AVX2 is used only where the CPU has it.
    unsafe {
        if std::arch::is_x86_feature_detected!("avx512f") {
            copy_words_avx512(&mv, src, dst, n)
        } else if std::arch::is_x86_feature_detected!("avx2") {
            copy_words_avx2(&mv, src, dst, n)
        } else {
            copy_words(&mv, src, dst, n)
        }
    }
    delta
}

/// The portable copy loop: branch-free for plain words (one compare and one masked add per
/// word), with the rare glibc-mangled candidates (low 17 bits == the pointer guard's top 17 bits,
/// ~1 in 131,072 random words) redone one by one.
///
/// # Safety
/// `src[0..n]` readable, `dst[0..n]` writable, not overlapping.
#[inline(always)]
unsafe fn copy_words_impl(mv: &Mover, src: *const usize, dst: *mut usize, n: usize) {
    const CHUNK: usize = 8;
    let mut i = 0;
    while i + CHUNK <= n {
        let mut mangled = false;
        for j in i..i + CHUNK {
            // SAFETY: j < n (per the contract).
            let w = unsafe { src.add(j).read() };
            let inside = w.wrapping_sub(mv.lo) < mv.span;
            mangled |= w & 0x1ffff == mv.guard_top;
            // SAFETY: as above.
            unsafe { dst.add(j).write(w.wrapping_add(mv.delta & (inside as usize).wrapping_neg())) };
        }
        if mangled {
            for j in i..i + CHUNK {
                // SAFETY: as above.
                unsafe { dst.add(j).write(mv.word(src.add(j).read())) };
            }
        }
        i += CHUNK;
    }
    for j in i..n {
        // SAFETY: as above.
        unsafe { dst.add(j).write(mv.word(src.add(j).read())) };
    }
}

/// # Safety
/// As [`copy_words_impl`].
unsafe fn copy_words(mv: &Mover, src: *const usize, dst: *mut usize, n: usize) {
    // SAFETY: per the contract.
    unsafe { copy_words_impl(mv, src, dst, n) }
}

/// The copy loop with AVX2, 4 words per step: `inside` as a signed compare of `(w - lo) ^ MIN`
/// against `span ^ MIN` (AVX2 has no unsigned 64-bit compare), the delta added under that mask,
/// and the mangled-candidate test accumulated per 32-word block; a block with a candidate is
/// redone word by word.
///
/// # Safety
/// As [`copy_words_impl`], and the CPU supports AVX2.
#[target_feature(enable = "avx2")]
unsafe fn copy_words_avx2(mv: &Mover, src: *const usize, dst: *mut usize, n: usize) {
    use core::arch::x86_64::*;
    const BLOCK: usize = 32;
    let min = i64::MIN;
    let v_lo = _mm256_set1_epi64x(mv.lo as i64);
    let v_span = _mm256_set1_epi64x((mv.span as i64) ^ min);
    let v_min = _mm256_set1_epi64x(min);
    let v_delta = _mm256_set1_epi64x(mv.delta as i64);
    let v_low17 = _mm256_set1_epi64x(0x1ffff);
    let v_gtop = _mm256_set1_epi64x(mv.guard_top as i64);
    let mut i = 0;
    while i + BLOCK <= n {
        let mut cand = _mm256_setzero_si256();
        let mut j = i;
        while j < i + BLOCK {
            // SAFETY: j + 4 <= n (per the contract); unaligned loads and stores.
            unsafe {
                let w = _mm256_loadu_si256(src.add(j) as *const __m256i);
                let off = _mm256_xor_si256(_mm256_sub_epi64(w, v_lo), v_min);
                let inside = _mm256_cmpgt_epi64(v_span, off);
                let out = _mm256_add_epi64(w, _mm256_and_si256(inside, v_delta));
                _mm256_storeu_si256(dst.add(j) as *mut __m256i, out);
                cand = _mm256_or_si256(cand, _mm256_cmpeq_epi64(_mm256_and_si256(w, v_low17), v_gtop));
            }
            j += 4;
        }
        if _mm256_testz_si256(cand, cand) == 0 {
            for k in i..i + BLOCK {
                // SAFETY: k < n.
                unsafe { dst.add(k).write(mv.word(src.add(k).read())) };
            }
        }
        i += BLOCK;
    }
    for k in i..n {
        // SAFETY: k < n.
        unsafe { dst.add(k).write(mv.word(src.add(k).read())) };
    }
}

/// The copy loop with AVX-512F, 8 words per step: an unsigned compare gives the `inside` mask
/// directly and a masked add applies the delta (5 vector operations per 8 words against AVX2's 8
/// per 4); the mangled-candidate test is accumulated per 32-word block as in
/// [`copy_words_avx2`]. Measured on this Zen 4: the 100k × 64 KiB growth case, where the copy was
/// ~29% of the profile, PERFORMANCE.md.
///
/// # Safety
/// As [`copy_words_impl`], and the CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn copy_words_avx512(mv: &Mover, src: *const usize, dst: *mut usize, n: usize) {
    use core::arch::x86_64::*;
    const BLOCK: usize = 32;
    let v_lo = _mm512_set1_epi64(mv.lo as i64);
    let v_span = _mm512_set1_epi64(mv.span as i64);
    let v_delta = _mm512_set1_epi64(mv.delta as i64);
    let v_low17 = _mm512_set1_epi64(0x1ffff);
    let v_gtop = _mm512_set1_epi64(mv.guard_top as i64);
    let mut i = 0;
    while i + BLOCK <= n {
        let mut cand: __mmask8 = 0;
        let mut j = i;
        while j < i + BLOCK {
            // SAFETY: j + 8 <= n (per the contract); unaligned loads and stores.
            unsafe {
                let w = _mm512_loadu_si512(src.add(j) as *const __m512i);
                let inside = _mm512_cmplt_epu64_mask(_mm512_sub_epi64(w, v_lo), v_span);
                _mm512_storeu_si512(dst.add(j) as *mut __m512i, _mm512_mask_add_epi64(w, inside, w, v_delta));
                cand |= _mm512_cmpeq_epi64_mask(_mm512_and_si512(w, v_low17), v_gtop);
            }
            j += 8;
        }
        if cand != 0 {
            for k in i..i + BLOCK {
                // SAFETY: k < n.
                unsafe { dst.add(k).write(mv.word(src.add(k).read())) };
            }
        }
        i += BLOCK;
    }
    for k in i..n {
        // SAFETY: k < n.
        unsafe { dst.add(k).write(mv.word(src.add(k).read())) };
    }
}

/// The size a stack of `old` bytes grows to so that `need` bytes (from its top) fit: doubled
/// until it does.
pub fn grown_size(old: usize, need: usize) -> usize {
    let mut n = old.saturating_mul(2);
    while n < need {
        n = n.saturating_mul(2);
    }
    n
}

/// [`grown_size`] within the limit `max`: when doubling would pass a limit that is not a power
/// of two but `need` fits under it, the stack grows to the limit itself (rounded down to pages).
/// `None`: past the limit.
pub fn grown_size_within(old: usize, need: usize, max: usize) -> Option<usize> {
    let n = grown_size(old, need);
    if n <= max {
        return Some(n);
    }
    let capped = max & !(PAGE - 1);
    (capped > old && need <= capped).then_some(capped)
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
    g.stackguard0 = new.lo + STACK_GUARD;
    if running {
        arch::set_tls_stack_guard(g.stackguard0);
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
    unsafe { (*g).stack.class == super::DIRECT || (*g).growth.pending.lo != 0 }
}

#[cold]
#[inline(never)]
unsafe fn settle_slow(m: *mut M, g: *mut G) {
    // SAFETY: per the contract of settle, g's record is ours to update; only this thread touches
    // m.p.
    unsafe {
        let g = &mut *g;
        if g.stack.class == super::DIRECT {
            super::register_direct(&mut g.stack);
        }
        let p = if m.is_null() { core::ptr::null_mut() } else { (*m).p };
        while g.growth.pending.lo != 0 {
            let mut s = g.growth.pending;
            g.growth.pending = ((s.hi - 64) as *const Stack).read();
            // Recycled warm, like every other stack (a cold destination makes growth 4-5x slower).
            super::register_direct(&mut s);
            if p.is_null() {
                super::free_global(s);
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
        let gregs = &mut (*uc).uc_mcontext.gregs;
        let rsp = gregs[libc::REG_RSP as usize] as usize;
        let low = if fault == 0 { rsp.saturating_sub(2 * KERNEL_FRAME_ROOM) } else { fault.min(rsp) };
        let need = old.hi - low.min(old.hi) + STACK_GUARD + PAGE;
        let Some(size) = grown_size_within(old.size(), need, g.max_stack) else { return Err(GrowError::Limit) };
        if !may_move(g) {
            forbidden_move(g, rsp, need);
        }
        let p = (*m).p;
        let cache: Option<&mut StackCache> = if p.is_null() { None } else { Some(&mut (*p).local().stacks) };
        let Some(new) = super::alloc_in_signal(cache, size) else { return Err(GrowError::NoMemory) };
        let pg = pointer_guard();
        let delta = copy_and_adjust(&old, &new, rsp, pg);
        let regs = Mover::new(old.guard_lo().saturating_sub(REG_WINDOW_BELOW_GUARD), old.hi, delta, pg);
        // gregs[0..16] are r8-r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp; 16 is rip (not moved).
        for r in gregs.iter_mut().take(libc::REG_RIP as usize) {
            *r = regs.plain(*r as usize) as i64;
        }
        super::xsave::for_each_lane((*uc).uc_mcontext.fpregs.cast(), |v| regs.plain(v as usize) as u64);
        install(g, new, true);
        push_pending(g, old);
        g.grows = g.grows.wrapping_add(1);
        GROWS.fetch_add(1, Relaxed);
        log_move(g, "grow", &old, &new, gregs[libc::REG_RSP as usize] as usize, gregs[libc::REG_RBP as usize] as usize);
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
    // SAFETY: g runs on this thread (on its own stack) and m is ours.
    unsafe {
        let gr = &mut *g;
        if sp.checked_sub(bytes).is_some_and(|x| x >= gr.stackguard0) {
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
            crate::fatal::fatal!("newstack_m: request past the limit was not refused")
        };
        let pl = (*(*m).p).local();
        let Some(new) = pl.stacks.alloc(size) else { crate::fatal::fatal!("cannot allocate a {size}-byte goroutine stack") };
        let sp = gr.sched.sp;
        let delta = copy_and_adjust(&old, &new, sp, pointer_guard());
        gr.sched.sp = sp.wrapping_add(delta);
        install(gr, new, false);
        pl.stacks.free(old);
        gr.grows = gr.grows.wrapping_add(1);
        GROWS.fetch_add(1, Relaxed);
        log_move(gr, "grow", &old, &new, gr.sched.sp, frame_rbp(gr.sched.sp));
        resume(m, g)
    }
}

/// The rbp saved in the switch frame at `sp` (a saved goroutine's `sched.sp`).
fn frame_rbp(sp: usize) -> usize {
    // SAFETY: a saved goroutine's sched.sp points at its switch frame, on its own stack.
    unsafe { (*(sp as *const arch::SwitchFrame)).rbp }
}

/// gogo back into `g`, still RUNNING on `m`.
unsafe fn resume(m: *mut M, g: *mut G) -> ! {
    // SAFETY: g is saved (sched.sp), its M is m, we are on m's g0.
    unsafe {
        arch::set_tls_stack_guard((*g).stackguard0);
        let sp = (*g).sched.sp;
        (*g).sched.sp = 0;
        arch::gs_asm_gogo(sp, (*m).fpctl)
    }
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
pub const RELEASE_SLACK: usize = 4 * PAGE;

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

/// Counts a yield on `m`; true on every [`RELEASE_EVERY`]th.
#[inline(always)]
unsafe fn release_tick(m: *mut M) -> bool {
    // SAFETY: only this thread writes its M's counter.
    unsafe {
        let t = (*m).safe_points.wrapping_add(1);
        (*m).safe_points = t;
        t % RELEASE_EVERY == 0
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
        g.stack_kind == GS_STACK_GROWABLE && g.stack.size() > g.growth.initial && g.growth.initial < super::DEFAULT_WINDOW
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
        let size = (4 * used).next_power_of_two().max(gr.growth.initial).max(super::MIN_CLASS_SIZE);
        if size >= old.size() {
            return;
        }
        let pl = (*(*m).p).local();
        let Some(new) = pl.stacks.alloc(size) else { return };
        let delta = copy_and_adjust(&old, &new, sp, pointer_guard());
        gr.sched.sp = sp.wrapping_add(delta);
        install(gr, new, false);
        super::free_cold(&mut pl.stacks, old);
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
        if st.hi - sp >= quarter {
            return;
        }
        let page = (st.hi - quarter - PAGE) & !(PAGE - 1);
        let step = PAGE / RELEASE_PROBES;
        let touched = (0..RELEASE_PROBES).any(|i| ((page + i * step + step - 8) as *const u64).read_volatile() != 0);
        if !touched {
            return;
        }
        let keep = sp.saturating_sub(RED_ZONE + RELEASE_SLACK) & !(PAGE - 1);
        if keep <= st.lo {
            return;
        }
        libc::madvise(st.lo as *mut c_void, keep - st.lo, libc::MADV_DONTNEED);
        RELEASES.fetch_add(1, Relaxed);
    }
}

/// Go's message for a goroutine that ran out of stack, then abort. Async-signal-safe.
pub fn overflow(g: &G, sp: usize, fault: usize) -> ! {
    let mut w = FdWriter::stderr();
    let limit = if g.stack_kind == GS_STACK_FIXED { g.stack.size() } else { g.max_stack };
    let _ = write!(
        w,
        "runtime: goroutine {} stack exceeds {}-byte limit\nruntime: sp={:#x} fault={:#x} stack=[{:#x}, {:#x})\n",
        g.goid, limit, sp, fault, g.stack.lo, g.stack.hi
    );
    drop(w);
    crate::fatal::throw("stack overflow")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mangle(p: usize, guard: usize) -> usize {
        (p ^ guard).rotate_left(0x11)
    }

    #[test]
    fn mover_plain_and_mangled() {
        let guard = 0x9e37_79b9_7f4a_7c15usize;
        let (lo, hi) = (0x7f00_0000_0000usize, 0x7f00_0001_0000usize);
        let delta = 0x10_0000usize;
        let mv = Mover::new(lo, hi, delta, guard);
        assert_eq!(mv.word(lo), lo + delta);
        assert_eq!(mv.word(hi - 8), hi - 8 + delta);
        assert_eq!(mv.word(hi), hi);
        assert_eq!(mv.word(lo - 8), lo - 8);
        assert_eq!(mv.plain(lo + 16), lo + 16 + delta);
        let m = mangle(lo + 0x100, guard);
        assert_eq!(mv.word(m), mangle(lo + 0x100 + delta, guard));
        assert_eq!(mv.plain(m), m, "registers are never demangled");
        let outside = mangle(hi + 0x100, guard);
        assert_eq!(mv.word(outside), outside);
        // Negative deltas (shrinking) wrap correctly.
        let back = Mover::new(lo, hi, 0usize.wrapping_sub(delta), guard);
        assert_eq!(back.word(lo + 8), lo + 8 - delta);
    }

    /// Builds a fake live stack in a real reservation: a chain of frames linked through pointers,
    /// pointers into the guard region, a glibc-mangled stack pointer (as in a jmp_buf), integers
    /// that are not addresses; copies it into a reservation 4x as large and checks every word.
    #[test]
    fn copy_and_adjust_moves_pointers_only() {
        let mut cache = StackCache::new();
        let old = cache.alloc(16384).unwrap();
        let new = cache.alloc(65536).unwrap();
        let pg = pointer_guard();
        let sp = old.hi - 8192;
        let w = |a: usize| a as *mut usize;
        // SAFETY: both stacks are ours; every address written lies in [sp - RED_ZONE, old.hi).
        // Only values in the live part [sp - RED_ZONE, old.hi) are moved (adjust_lo).
        unsafe {
            let mut prev = 0usize;
            let mut a = sp;
            while a < old.hi - 64 {
                *w(a) = prev; // link to the previous frame (or 0)
                *w(a + 8) = a; // self pointer
                *w(a + 16) = 12345; // not an address
                *w(a + 24) = old.lo - 100; // into the guard region: below the live part
                *w(a + 32) = (a ^ pg).rotate_left(0x11); // mangled, as PTR_MANGLE does
                *w(a + 40) = old.hi; // one past the end: not inside
                *w(a + 48) = sp - RED_ZONE - 8; // a dead frame (stale bytes): not moved
                *w(a + 56) = sp - RED_ZONE; // the live part's lowest word: moved
                prev = a;
                a += 64;
            }
            *w(sp - 64) = sp + 8; // red zone
            let delta = copy_and_adjust(&old, &new, sp, pg);
            assert_eq!(delta, new.hi.wrapping_sub(old.hi));
            let mv = |v: usize| v.wrapping_add(delta);
            assert_eq!(*w(mv(sp - 64)), mv(sp + 8), "red zone copied and adjusted");
            let mut a = sp;
            let mut prev = 0usize;
            while a < old.hi - 64 {
                let b = mv(a);
                assert_eq!(*w(b), if prev == 0 { 0 } else { mv(prev) });
                assert_eq!(*w(b + 8), b);
                assert_eq!(*w(b + 16), 12345);
                assert_eq!(*w(b + 24), old.lo - 100, "below the live part: left alone");
                assert_eq!((*w(b + 32)).rotate_right(0x11) ^ pg, b, "mangled word re-mangled");
                assert_eq!(*w(b + 40), old.hi);
                assert_eq!(*w(b + 48), sp - RED_ZONE - 8, "a dead frame's address: left alone");
                assert_eq!(*w(b + 56), mv(sp - RED_ZONE));
                prev = a;
                a += 64;
            }
        }
        cache.free(old);
        cache.free(new);
        cache.drain();
    }

    /// Shrinking copies into a smaller stack (negative delta) the same way.
    #[test]
    fn copy_into_smaller_stack() {
        let mut cache = StackCache::new();
        let old = cache.alloc(1 << 20).unwrap();
        let new = cache.alloc(16384).unwrap();
        let sp = old.hi - 2048;
        // SAFETY: both stacks are ours.
        unsafe {
            for a in (sp..old.hi).step_by(8) {
                *(a as *mut usize) = a;
            }
            let delta = copy_and_adjust(&old, &new, sp, pointer_guard());
            for a in (sp..old.hi).step_by(8) {
                let b = a.wrapping_add(delta);
                assert!(b >= new.lo && b < new.hi);
                assert_eq!(*(b as *const usize), b);
            }
        }
        cache.free(old);
        cache.free(new);
        cache.drain();
    }

    /// The portable loop and the AVX2 loop agree word for word (random words, stack addresses,
    /// mangled ones, lengths that are not multiples of the block).
    #[test]
    fn copy_loops_agree() {
        let pg = pointer_guard();
        let (lo, hi) = (0x7f12_3450_0000usize, 0x7f12_3460_0000usize);
        let mv = Mover::new(lo, hi, 0x40_0000, pg);
        let mut x = 0x2545_f491_4f6c_dd1du64 as usize;
        let src: Vec<usize> = (0..1003)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match i % 5 {
                    0 => lo + (x % (hi - lo)),
                    1 => ((lo + (x % (hi - lo))) ^ pg).rotate_left(0x11),
                    2 => hi + (x % 4096),
                    _ => x,
                }
            })
            .collect();
        let mut a = vec![0usize; src.len()];
        let mut b = vec![0usize; src.len()];
        // SAFETY: the vectors have src.len() elements.
        unsafe {
            copy_words(&mv, src.as_ptr(), a.as_mut_ptr(), src.len());
            if std::arch::is_x86_feature_detected!("avx2") {
                copy_words_avx2(&mv, src.as_ptr(), b.as_mut_ptr(), src.len());
            } else {
                copy_words(&mv, src.as_ptr(), b.as_mut_ptr(), src.len());
            }
        }
        let mut c = vec![0usize; src.len()];
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: as above; the CPU has AVX-512F.
            unsafe { copy_words_avx512(&mv, src.as_ptr(), c.as_mut_ptr(), src.len()) };
        } else {
            c.copy_from_slice(&a);
        }
        for i in 0..src.len() {
            assert_eq!(a[i], mv.word(src[i]), "word {i}");
            assert_eq!(b[i], a[i], "word {i}");
            assert_eq!(c[i], a[i], "word {i}");
        }
    }

    #[test]
    fn grown_sizes() {
        assert_eq!(grown_size(16384, 1), 32768);
        assert_eq!(grown_size(16384, 32769), 65536);
        assert_eq!(grown_size(1 << 20, 5 << 20), 8 << 20);
        assert_eq!(grown_size_within(1 << 20, 1, 1 << 30), Some(2 << 20));
        assert_eq!(grown_size_within(1 << 20, 1, 1536 << 10), Some(1536 << 10));
        assert_eq!(grown_size_within(1 << 20, 1600 << 10, 1536 << 10), None);
        assert_eq!(grown_size_within(1536 << 10, 1, 1536 << 10), None);
    }
}
