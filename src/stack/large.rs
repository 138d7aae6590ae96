//! Stacks larger than the biggest size class, and stacks for the growth signal handler: carved
//! from shared arenas up to [`CARVE_MAX`], mapped on their own beyond; kept warm in [`SPARES`]
//! (lock-free, for the handler) and the bounded large pool.

use super::pool::{install_guard, map, unmap, StackCache};
use super::{
    class_of, guard_for, page, Global, Stack, DIRECT, GLOBAL, GUARD_BY_MADVISE, LARGE, MAX_CLASS_SIZE, RESERVED,
};
use crate::base::lock::Locked;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering::*};

/// Largest stack carved from a shared arena by [`carve_large`]; larger ones get a mapping of
/// their own ([`map_direct`], with transparent huge pages for deep recursion).
pub const CARVE_MAX: usize = 16 << 20;
/// Address space of one arena of [`carve_large`] (MAP_NORESERVE: reservation only).
const CARVE_ARENA_BYTES: usize = 512 << 20;

/// A large stack (<= [`CARVE_MAX`]) carved from an arena shared with other stacks of its size:
/// a given-back one ([`Global::carved_free`]) or the next slot of the size's newest arena, a new
/// arena when it is full. Class [`LARGE`], recorded in `Global::large`.
///
/// Why: a Python goroutine's 8 MiB FIXED stack with a mapping of its own cost two VMAs (the
/// mapping, split by the MADV_HUGEPAGE of its lower part), and `vm.max_map_count` (65,530)
/// capped a process near 32,770 live Python goroutines (issue 19). Carved stacks cost no VMA
/// (guards are guard markers, MADV_GUARD_INSTALL), a 512 MiB arena ~62 of them one; nothing is
/// ever unmapped (a hole would split the arena): freed carved stacks give their pages back and
/// wait in `carved_free`.
///
/// ```text
///   arena (one mmap, MAP_NORESERVE)                 slots carved bottom-up, on demand
///   ┌──────┬─────────────┬──────┬─────────────┬─── ... ──┐
///   │guard │ stack 0     │guard │ stack 1     │  not yet │
///   └──────┴─────────────┴──────┴─────────────┴─── ... ──┘
/// ```
///
/// Rejected: MADV_HUGEPAGE on carved stacks (a Python goroutine's spawn paid a 2 MiB clear when
/// its top landed in a huge page, ~300 us measured; advice on part of each slot would split the
/// arena into two VMAs per stack again); mapping a guard-less arena and `mprotect` guards (a VMA
/// per guard where MADV_GUARD_INSTALL is missing: then carving is no better than map_direct, and
/// we fall back to it).
fn carve_large(size: usize) -> Option<Stack> {
    let guard = guard_for(size);
    let slot = size + guard;
    let mut g = GLOBAL.lock();
    if let Some(s) = g.carved_free.get_mut(&size).and_then(|v| v.pop()) {
        g.large.insert(s.lo, s.hi);
        return Some(s);
    }
    if !GUARD_BY_MADVISE.load(Relaxed) {
        return None;
    }
    let guard_lo = match g.carving.iter_mut().find(|(sz, next, end)| *sz == size && *next + slot <= *end) {
        Some((_, next, _)) => {
            *next += slot;
            *next - slot
        }
        None => {
            let len = (CARVE_ARENA_BYTES / slot).max(4) * slot;
            let base = map(len)?;
            g.carved.insert(base, base + len);
            g.carving.retain(|(sz, _, _)| *sz != size);
            g.carving.push((size, base + slot, base + len));
            base
        }
    };
    if !install_guard(guard_lo, guard) {
        // The slot is lost to this arena (rare: the kernel refused the advice).
        return None;
    }
    let lo = guard_lo + guard;
    g.large.insert(lo, lo + size);
    RESERVED.fetch_add(size as u64, Relaxed);
    Some(Stack { lo, hi: lo + size, guard: guard as u32, class: LARGE })
}

/// The carved arena holding `addr`, if any: (base, end).
fn carved_arena_of(g: &Global, addr: usize) -> Option<(usize, usize)> {
    let (&base, &end) = g.carved.range(..=addr).next_back()?;
    (addr < end).then_some((base, end))
}

/// Maps a stack of its own (class [`DIRECT`]: not yet in the global list). Two system calls, no
/// lock, no allocation: usable in the signal handler.
fn map_direct(size: usize) -> Option<Stack> {
    let guard = guard_for(size);
    let len = size + guard;
    let base = map(len)?;
    if !install_guard(base, guard) {
        // SAFETY: unmapping what we just mapped.
        unsafe { unmap(base, len) };
        return None;
    }
    let lo = base + guard;
    if size > MAX_CLASS_SIZE {
        // Big stacks are filled by deep recursion: transparent huge pages cut the page faults
        // that dominate their growth (notes/growth.md: 32->64 MiB cold 34-46 ms, 12-14 ms with
        // THP). Advice only; ignored where THP is off.
        //
        // Not the top MAX_CLASS_SIZE bytes: a FIXED stack (a Python goroutine's 8 MiB) is touched
        // only a few KiB down from the top, and a huge page there cost its spawn a 2 MiB clear
        // (~300 µs measured) and 2 MiB resident. The range starts at the mapping's base (guard
        // included, where the advice is harmless) so that the stack stays two VMAs, as before:
        // [base, hi - 2 MiB) with the advice, the top without (vm.max_map_count).
        // SAFETY: the range lies inside the mapping we just made.
        unsafe { libc::madvise(base as *mut _, guard + size - MAX_CLASS_SIZE, libc::MADV_HUGEPAGE) };
    }
    RESERVED.fetch_add(size as u64, Relaxed);
    Some(Stack { lo, hi: lo + size, guard: guard as u32, class: DIRECT })
}

/// Records a [`DIRECT`] stack in the global list of stacks with their own mapping (for
/// `committed_bytes`). One of a pooled size joins that size class, so that it is recycled warm
/// like an arena stack (and never unmapped, like them); a larger one becomes an ordinary
/// [`LARGE`] stack. Takes the global lock: never call it in a signal handler.
pub fn register_direct(s: &mut Stack) {
    if s.class == DIRECT {
        GLOBAL.lock().large.insert(s.lo, s.hi);
        s.class = class_of(s.size()).map_or(LARGE, |c| c as u8);
    }
}

/// A stack for growth, from the signal handler: the P's cache (`cache`, if the M holds a P),
/// a warm spare, or a new mapping. Async-signal-safe: no lock, no allocation.
pub fn alloc_in_signal(cache: Option<&mut StackCache>, size: usize) -> Option<Stack> {
    if let Some(c) = cache {
        if let Some(s) = c.pop_exact(size) {
            return Some(s);
        }
    }
    SPARES.take(size).or_else(|| pool_take_nowait(size)).or_else(|| map_direct(size))
}

/// A free-standing stack slot of [`Spares`]: `state` is EMPTY, BUSY (someone is reading or
/// writing the other fields) or FULL.
struct Spare {
    state: AtomicU32,
    lo: AtomicUsize,
    hi: AtomicUsize,
    guard: AtomicUsize,
}

const SPARE_EMPTY: u32 = 0;
const SPARE_BUSY: u32 = 1;
const SPARE_FULL: u32 = 2;
/// Large stacks kept warm after they were freed, at most this many bytes in all.
pub const SPARE_BYTES_MAX: usize = 192 << 20;
pub(super) const NSPARES: usize = 16;

/// Warm large stacks (class [`LARGE`], still in the global list), lock-free so that the signal
/// handler can take one: a thread interrupted while a slot is BUSY only makes others skip it.
pub struct Spares {
    slots: [Spare; NSPARES],
    bytes: AtomicUsize,
}

pub static SPARES: Spares = Spares {
    slots: [const {
        Spare {
            state: AtomicU32::new(SPARE_EMPTY),
            lo: AtomicUsize::new(0),
            hi: AtomicUsize::new(0),
            guard: AtomicUsize::new(0),
        }
    }; NSPARES],
    bytes: AtomicUsize::new(0),
};

impl Spares {
    /// Takes a spare of exactly `size` bytes.
    pub fn take(&self, size: usize) -> Option<Stack> {
        if self.bytes.load(Relaxed) == 0 {
            return None;
        }
        for s in &self.slots {
            if s.state.compare_exchange(SPARE_FULL, SPARE_BUSY, Acquire, Relaxed).is_err() {
                continue;
            }
            let (lo, hi) = (s.lo.load(Relaxed), s.hi.load(Relaxed));
            if hi - lo != size {
                s.state.store(SPARE_FULL, Release);
                continue;
            }
            let guard = s.guard.load(Relaxed);
            s.state.store(SPARE_EMPTY, Release);
            self.bytes.fetch_sub(size, Relaxed);
            return Some(Stack { lo, hi, guard: guard as u32, class: LARGE });
        }
        None
    }

    /// Keeps `st` warm if there is room; gives it back otherwise.
    fn put(&self, st: Stack) -> Result<(), Stack> {
        if self.bytes.fetch_add(st.size(), Relaxed) + st.size() > SPARE_BYTES_MAX {
            self.bytes.fetch_sub(st.size(), Relaxed);
            return Err(st);
        }
        for s in &self.slots {
            if s.state.compare_exchange(SPARE_EMPTY, SPARE_BUSY, Acquire, Relaxed).is_ok() {
                s.lo.store(st.lo, Relaxed);
                s.hi.store(st.hi, Relaxed);
                s.guard.store(st.guard as usize, Relaxed);
                s.state.store(SPARE_FULL, Release);
                return Ok(());
            }
        }
        self.bytes.fetch_sub(st.size(), Relaxed);
        Err(st)
    }
}

/// Free large stacks (> [`MAX_CLASS_SIZE`], class [`LARGE`], still in `Global::large`) that did
/// not fit in [`SPARES`], per size: what keeps a Python goroutine's 8 MiB FIXED stack from costing
/// an `mmap`, a guard installation, `MADV_HUGEPAGE` (a VMA split) and a `munmap` per goroutine
/// (~12 µs of its ~27 µs spawn-to-exit, docs/PERFORMANCE.md).
///
/// ```text
///   LARGE_POOL: [(size, [stack, stack, ...]), ...]     LIFO per size
///   stack in the pool:  [lo ........ untouched/given back ........ | hi - large_keep_top(), hi)
///                                                                    └ stays committed ┘
/// ```
///
/// Invariants: the first [`LARGE_POOL_WARM`] stacks of a size are kept as they were freed (warm:
/// a goroutine that reuses one takes no page fault); every one beyond that has had everything
/// but its top [`large_keep_top`] bytes given back (`MADV_DONTNEED`, ~2 µs on an 8 MiB stack)
/// and carries canary words right below them, or was trimmed so before and its last goroutine
/// left that canary intact (stayed in the top: [`went_below_top`]), so the pool's resident memory
/// is bounded by `LARGE_POOL_WARM` stacks per size plus ~`large_keep_top()` + a page + one
/// page-table page per pooled stack. At most [`LARGE_POOL_MAX`] stacks
/// are pooled in all (reservations only: MAP_NORESERVE address space); the rest are unmapped.
/// Pooled stacks stay in `Global::large`, so `committed_bytes` counts what they keep.
///
/// One lock, not per-P caches: a ~20 ns uncontended lock is noise next to a Python goroutine's
/// spawn. The growth signal handler looks here after [`SPARES`] (its lock-free warm tier), with
/// a try-lock.
/// Rejected: unmapping beyond `SPARES` (the previous behaviour: every goroutine of a burst paid
/// mmap + munmap); trimming every stack on free (the warm ones would pay ~2 µs for nothing);
/// keeping all pooled stacks untrimmed (a burst of deep recursions would stay resident).
///
/// The lock is a spin lock (released by a store, never by a futex wake), so that the growth
/// signal handler can take a pooled stack with [`pool_take_nowait`] (try, else map a new one).
static LARGE_POOL: PoolLock = Locked::new(Vec::new());
type PoolLock = Locked<Vec<(usize, Vec<Stack>)>>;
/// Large stacks pooled in all (every size).
static LARGE_POOLED: AtomicUsize = AtomicUsize::new(0);
/// Most large stacks pooled (all sizes): 32768 8 MiB reservations are 264 GiB of address space,
/// ~400 MiB resident at most (8 KiB kept + a page-table page each), after a burst that had that
/// many goroutines alive at once (which used more).
pub const LARGE_POOL_MAX: usize = 32768;
/// Pooled stacks per size kept untrimmed ...
pub const LARGE_POOL_WARM: usize = 16;
/// ... as long as they reserve at most this much together: sixteen 8 MiB Python stacks (which
/// touch a few KiB each), but only one 128 MiB stack left by a deep growth (which may have
/// touched half of it). Without this bound, 16 such stacks per size stayed resident.
pub const LARGE_POOL_WARM_BYTES: usize = 128 << 20;
/// Bytes at the top of a trimmed pooled stack that stay committed: an empty Python goroutine
/// touches 1.7 KiB, a typical one 4-6 KiB (notes/cpython.md).
pub fn large_keep_top() -> usize {
    2 * page()
}

/// The pattern that fills the probe region of a trimmed pooled stack (see [`went_below_top`]).
const PROBE_CANARY: u64 = 0x9e37_79b9_7f4a_7c15;

/// Bytes right below a pooled stack's kept top that carry the canary (see [`went_below_top`]).
const PROBE_BYTES: usize = 1024;

/// The probe region of a pooled stack: the `PROBE_BYTES` right below its kept top.
fn probe_region(s: &Stack) -> *mut u64 {
    (s.hi - large_keep_top() - PROBE_BYTES) as *mut u64
}

/// Whether the goroutine that used a stack about to be pooled went below its top
/// `large_keep_top()` bytes, without a system call: a trimmed pooled stack carries
/// [`PROBE_CANARY`] words in the `PROBE_BYTES` right below that top (filled by
/// [`trim_for_pool`]), and a goroutine that went deeper wrote into them on the way (the return
/// address of a call made by a frame that ends there, saved registers, locals). The words are
/// cold by then, so the check costs their cache lines: 16 lines, ~0.05 µs; a whole page (64
/// lines) measured ~0.3 µs of a ~3.7 µs Python spawn, `mincore` ~1 µs (a VMA lookup among
/// thousands of stacks) and the `MADV_DONTNEED` of 8 MiB that most Python goroutines (they stay
/// in the top few KiB) do not need ~2 µs. A stack whose probe was never filled (fresh, or warm)
/// reads as used. The residual risk: a frame whose unwritten locals cover the whole probe (a
/// buffer of more than 1 KiB filled from its low end, say) lets a goroutine go deeper unseen; that
/// stack then keeps its deeper pages resident while pooled (memory, not correctness).
pub(super) fn went_below_top(s: &Stack) -> bool {
    let p = probe_region(s);
    // SAFETY: the probe region lies inside the stack's mapping, which is ours (no goroutine uses
    // it); it is resident (filled by trim_for_pool) or reads as zeros.
    unsafe { (0..PROBE_BYTES / 8).any(|i| p.add(i).read_volatile() != PROBE_CANARY) }
}

/// Gives back everything below a pooled stack's kept top and fills its probe region.
pub(super) fn trim_for_pool(s: &Stack) {
    // SAFETY: the stack is ours (no goroutine uses it); its contents are dead.
    unsafe {
        libc::madvise(s.lo as *mut _, s.size() - large_keep_top(), libc::MADV_DONTNEED);
        let p = probe_region(s);
        for i in 0..PROBE_BYTES / 8 {
            p.add(i).write_volatile(PROBE_CANARY);
        }
    }
}

fn pool_take(size: usize) -> Option<Stack> {
    pool_take_with(size, |l| Some(l.lock()))
}

/// [`pool_take`] for the signal handler: never waits (a held lock, perhaps by the interrupted
/// code of this very thread, means None), never allocates or frees.
fn pool_take_nowait(size: usize) -> Option<Stack> {
    pool_take_with(size, Locked::try_lock)
}

/// Pops a pooled stack of `size` bytes under the pool's lock, taken by `lock` (None: not taken).
fn pool_take_with(
    size: usize,
    lock: impl FnOnce(&'static PoolLock) -> Option<&'static mut Vec<(usize, Vec<Stack>)>>,
) -> Option<Stack> {
    if LARGE_POOLED.load(Relaxed) == 0 {
        return None;
    }
    let pool = lock(&LARGE_POOL)?;
    let s = pool_pop(pool, size);
    // SAFETY: `lock` took the lock.
    unsafe { LARGE_POOL.unlock() };
    s
}

fn pool_pop(pool: &mut [(usize, Vec<Stack>)], size: usize) -> Option<Stack> {
    let (_, v) = pool.iter_mut().find(|(sz, _)| *sz == size)?;
    let s = v.pop()?;
    LARGE_POOLED.fetch_sub(1, Relaxed);
    Some(s)
}

fn pool_put(s: Stack) -> Result<(), Stack> {
    if LARGE_POOLED.load(Relaxed) >= LARGE_POOL_MAX {
        return Err(s);
    }
    let size = s.size();
    let warm = {
        let pool = LARGE_POOL.lock();
        let n = pool.iter().find(|(sz, _)| *sz == size).map_or(0, |(_, v)| v.len());
        // SAFETY: we took the lock above.
        unsafe { LARGE_POOL.unlock() };
        n < LARGE_POOL_WARM && (n + 1) * size <= LARGE_POOL_WARM_BYTES
    };
    if !warm && went_below_top(&s) {
        // Trimmed before it is published (nobody else may be using it yet), outside the lock.
        // Another thread racing us may leave a size with a few more or fewer warm stacks than
        // LARGE_POOL_WARM: the bound is approximate, the trimming correct.
        trim_for_pool(&s);
    }
    let pool = LARGE_POOL.lock();
    match pool.iter_mut().find(|(sz, _)| *sz == size) {
        Some((_, v)) => v.push(s),
        None => pool.push((size, vec![s])),
    }
    LARGE_POOLED.fetch_add(1, Relaxed);
    // SAFETY: we took the lock above.
    unsafe { LARGE_POOL.unlock() };
    Ok(())
}

pub(super) fn alloc_large(size: usize) -> Option<Stack> {
    if let Some(s) = SPARES.take(size) {
        return Some(s);
    }
    if let Some(s) = pool_take(size) {
        return Some(s);
    }
    if size <= CARVE_MAX {
        if let Some(s) = carve_large(size) {
            return Some(s);
        }
    }
    let mut s = map_direct(size)?;
    register_direct(&mut s);
    debug_assert_eq!(s.class, LARGE);
    Some(s)
}

/// Frees a stack whose contents are dead and gives its memory back to the kernel (shrinking):
/// pooled stacks lose their pages, large ones are unmapped.
pub fn free_cold(cache: &mut StackCache, s: Stack) {
    if s.class == LARGE || s.class == DIRECT {
        return unmap_large(s);
    }
    // SAFETY: the stack is ours (no goroutine uses it); its contents are dead.
    unsafe { libc::madvise(s.lo as *mut _, s.size(), libc::MADV_DONTNEED) };
    cache.free(s);
}

pub(super) fn free_large(s: Stack) {
    if s.class == LARGE && s.size() > MAX_CLASS_SIZE {
        let Err(s) = SPARES.put(s) else { return };
        let Err(s) = pool_put(s) else { return };
        return unmap_large(s);
    }
    unmap_large(s)
}

fn unmap_large(s: Stack) {
    if s.class == LARGE {
        let mut g = GLOBAL.lock();
        g.large.remove(&s.lo);
        if carved_arena_of(&g, s.lo).is_some() {
            // SAFETY: the stack is ours (no goroutine uses it); its contents are dead. Its guard
            // (a guard marker, not a mapping) stays installed.
            unsafe { libc::madvise(s.lo as *mut _, s.size(), libc::MADV_DONTNEED) };
            g.carved_free.entry(s.size()).or_default().push(s);
            return;
        }
    }
    RESERVED.fetch_sub(s.size() as u64, Relaxed);
    // SAFETY: the stack and its guard were one mapping of ours (map_direct); nothing runs on it
    // any more.
    unsafe { unmap(s.guard_lo(), s.size() + s.guard as usize) };
}
