//! Copying a stack (the mechanism of Go's `copystack`, for C): the live part of a goroutine
//! stack is copied to the same distance below the top of another reservation, and every word that
//! points into the old stack's live part is moved by the delta. No G, no M here: when and why a
//! stack moves is the scheduler's business (src/sched/grow.rs).
//!
//! ```text
//!   old stack                         new stack
//!   hi ┌──────────────┐               hi ┌──────────────┐
//!      │ frames       │  copy, adjust    │ frames       │  every aligned word v with
//!      │  &local ─────┼─┐  ─────────▶     │  &local ─────┼─┐ sp - 128 <= v < old.hi
//!      │ local  ◀─────┼─┘                │ local  ◀─────┼─┘ becomes v + delta
//!  sp-128 ─ ─ ─ ─ ─ ─┤               sp'-128 ─ ─ ─ ─ ─ ─┤ (and glibc-mangled words likewise)
//!   lo └──────────────┘                  │ free         │
//!      │ guard        │               lo └──────────────┘
//!      └──────────────┘                  │ guard        │
//! ```
//!
//! Conservative: C has no pointer maps, so an integer that equals a live stack address is moved
//! too, and so is a word the program only partly wrote whose stale bytes make it look like one
//! (issue #12: why the default stack is a window that never moves, docs/DESIGN.md).
//!
//! Per architecture (crate::arch): the red zone (128 bytes on x86_64, none on aarch64) and
//! glibc's pointer mangling (x86_64: `rol64(p ^ guard, 17)`; aarch64: `p ^ guard`); the
//! vectorised copy loops exist on x86_64 only (aarch64 runs the portable one).

#[cfg(test)]
use super::StackCache;
use super::{page, Stack};

/// Bytes below the stack pointer that a leaf function may use without moving it (the ABI's red
/// zone: 128 on x86_64, 0 on aarch64).
pub const RED_ZONE: usize = crate::arch::RED_ZONE;
/// Saved registers are adjusted if they point this far below the guard region (stack-clash probe
/// loops keep their end address there, notes/growth.md).
pub const REG_WINDOW_BELOW_GUARD: usize = 1 << 20;

/// glibc's pointer guard (x86_64: `%fs:0x30`; aarch64: read back from a `setjmp`).
pub use crate::arch::pointer_guard;
/// glibc's `PTR_MANGLE` is `rol64(p ^ guard, MANGLE_ROTATE)` (x86_64: 0x11; aarch64: 0).
pub use crate::arch::MANGLE_ROTATE;

/// The bits of a mangled pointer that come from the pointer guard alone: a user-space address
/// has its bits from `USER_ADDR_BITS` up clear, so after the xor (and the rotation) those bits
/// of a mangled user pointer equal the guard's. On x86_64 they are the low 17 bits, on aarch64
/// the top 16. Every candidate must pass this cheap filter before it is demangled.
pub const MANGLE_CAND_MASK: usize = (!0usize << crate::arch::USER_ADDR_BITS).rotate_left(MANGLE_ROTATE);

/// Moves values that point into `[lo, hi)` by `delta`.
#[derive(Clone, Copy, Debug)]
pub struct Mover {
    lo: usize,
    span: usize,
    delta: usize,
    guard: usize,
    /// A mangled user pointer's [`MANGLE_CAND_MASK`] bits equal these (the guard's, rotated):
    /// the cheap filter that makes the mangled test nearly free.
    guard_cand: usize,
}

impl Mover {
    /// `delta` is `new - old` (wrapping); `pointer_guard` as from [`pointer_guard`].
    pub fn new(lo: usize, hi: usize, delta: usize, pointer_guard: usize) -> Self {
        let guard_cand = pointer_guard.rotate_left(MANGLE_ROTATE) & MANGLE_CAND_MASK;
        Mover { lo, span: hi - lo, delta, guard: pointer_guard, guard_cand }
    }

    /// Whether `v` lies in the range this mover moves.
    #[inline(always)]
    pub fn inside(&self, v: usize) -> bool {
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
        if v & MANGLE_CAND_MASK == self.guard_cand {
            let p = v.rotate_right(MANGLE_ROTATE) ^ self.guard;
            if self.inside(p) {
                return (p.wrapping_add(self.delta) ^ self.guard).rotate_left(MANGLE_ROTATE);
            }
        }
        v
    }
}

/// The lowest byte of `old` that is live when its stack pointer is `sp`.
pub fn live_lo(old: &Stack, sp: usize) -> usize {
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

/// The [`Mover`] [`copy_and_adjust`] applies to the words it copies (`delta` as it returned), for
/// memory outside the stack that the move must fix up the same way (AddressSanitizer's fake
/// frames: src/sched/sanitizer.rs).
pub fn memory_mover(old: &Stack, sp: usize, delta: usize, pointer_guard: usize) -> Mover {
    Mover::new(adjust_lo(old, sp), old.hi, delta, pointer_guard)
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
    let mv = memory_mover(old, sp, delta, pointer_guard);
    let n = (old.hi - src_lo) / 8;
    super::valgrind::defined(src_lo, old.hi);
    super::valgrind::fresh(new.lo, new.hi);
    let (src, dst) = (src_lo as *const usize, dst_lo as *mut usize);
    // SAFETY: [src_lo, old.hi) and [dst_lo, new.hi) lie in the two stacks (per the contract and
    // the assert), which do not overlap; AVX2 is used only where the CPU has it.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        if std::arch::is_x86_feature_detected!("avx512f") {
            copy_words_avx512(&mv, src, dst, n)
        } else if std::arch::is_x86_feature_detected!("avx2") {
            copy_words_avx2(&mv, src, dst, n)
        } else {
            copy_words(&mv, src, dst, n)
        }
    }
    // SAFETY: as above.
    #[cfg(not(target_arch = "x86_64"))]
    unsafe {
        copy_words(&mv, src, dst, n)
    }
    delta
}

/// The portable copy loop: branch-free for plain words (one compare and one masked add per
/// word), with the rare glibc-mangled candidates (x86_64: low 17 bits == the pointer guard's top
/// 17 bits, ~1 in 131,072 random words; aarch64: top 16 bits == the guard's) redone one by one.
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
            mangled |= w & MANGLE_CAND_MASK == mv.guard_cand;
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
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn copy_words_avx2(mv: &Mover, src: *const usize, dst: *mut usize, n: usize) {
    use core::arch::x86_64::*;
    const BLOCK: usize = 32;
    let min = i64::MIN;
    let v_lo = _mm256_set1_epi64x(mv.lo as i64);
    let v_span = _mm256_set1_epi64x((mv.span as i64) ^ min);
    let v_min = _mm256_set1_epi64x(min);
    let v_delta = _mm256_set1_epi64x(mv.delta as i64);
    let v_low17 = _mm256_set1_epi64x(MANGLE_CAND_MASK as i64);
    let v_gtop = _mm256_set1_epi64x(mv.guard_cand as i64);
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
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn copy_words_avx512(mv: &Mover, src: *const usize, dst: *mut usize, n: usize) {
    use core::arch::x86_64::*;
    const BLOCK: usize = 32;
    let v_lo = _mm512_set1_epi64(mv.lo as i64);
    let v_span = _mm512_set1_epi64(mv.span as i64);
    let v_delta = _mm512_set1_epi64(mv.delta as i64);
    let v_low17 = _mm512_set1_epi64(MANGLE_CAND_MASK as i64);
    let v_gtop = _mm512_set1_epi64(mv.guard_cand as i64);
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
    let capped = max & !(page() - 1);
    (capped > old && need <= capped).then_some(capped)
}
#[cfg(test)]
mod tests {
    use super::*;

    use crate::arch::mangle;

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
                *w(a + 32) = mangle(a, pg); // mangled, as PTR_MANGLE does
                *w(a + 40) = old.hi; // one past the end: not inside
                *w(a + 48) = sp - RED_ZONE - 8; // a dead frame (stale bytes): not moved
                *w(a + 56) = sp - RED_ZONE; // the live part's lowest word: moved
                prev = a;
                a += 64;
            }
            // The red zone (x86_64's 128 bytes; aarch64 has none) is live and copied too.
            let red_zone = RED_ZONE.checked_sub(64).is_some(); // at least 64 bytes (clippy: 0 on aarch64)
            if red_zone {
                *w(sp - 64) = sp + 8;
            }
            let delta = copy_and_adjust(&old, &new, sp, pg);
            assert_eq!(delta, new.hi.wrapping_sub(old.hi));
            let mv = |v: usize| v.wrapping_add(delta);
            if red_zone {
                assert_eq!(*w(mv(sp - 64)), mv(sp + 8), "red zone copied and adjusted");
            }
            let mut a = sp;
            let mut prev = 0usize;
            while a < old.hi - 64 {
                let b = mv(a);
                assert_eq!(*w(b), if prev == 0 { 0 } else { mv(prev) });
                assert_eq!(*w(b + 8), b);
                assert_eq!(*w(b + 16), 12345);
                assert_eq!(*w(b + 24), old.lo - 100, "below the live part: left alone");
                assert_eq!((*w(b + 32)).rotate_right(MANGLE_ROTATE) ^ pg, b, "mangled word re-mangled");
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
                    1 => mangle(lo + (x % (hi - lo)), pg),
                    2 => hi + (x % 4096),
                    _ => x,
                }
            })
            .collect();
        let mut a = vec![0usize; src.len()];
        // SAFETY: the vector has src.len() elements.
        unsafe { copy_words(&mv, src.as_ptr(), a.as_mut_ptr(), src.len()) };
        for i in 0..src.len() {
            assert_eq!(a[i], mv.word(src[i]), "word {i}");
        }
        #[cfg(target_arch = "x86_64")]
        {
            let mut b = vec![0usize; src.len()];
            // SAFETY: the vectors have src.len() elements.
            unsafe {
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
                assert_eq!(b[i], a[i], "word {i}");
                assert_eq!(c[i], a[i], "word {i}");
            }
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
