//! Goroutine stacks: guarded virtual reservations, carved from arenas, recycled through pools.
//!
//! ```text
//!   arena (one mmap, MAP_NORESERVE, read/write)
//!   ┌────────────┬────────────┬────────────┬────────────┬─── ...
//!   │ guard      │ stack 0    │ guard      │ stack 1    │
//!   │ (no access)│ [lo, hi)   │ (no access)│ [lo, hi)   │
//!   └────────────┴────────────┴────────────┴────────────┴─── ...
//! ```
//!
//! - Guards are installed with `madvise(MADV_GUARD_INSTALL)` (Linux >= 6.13: no extra VMA per
//!   stack, so millions of stacks fit under `vm.max_map_count`), else `mprotect(PROT_NONE)` (one
//!   extra VMA per stack; we warn when the count nears the limit).
//! - Pages are committed by the kernel as they are touched: an idle goroutine costs the pages it
//!   touched, not its reservation.
//! - Sizes are powers of two from 8 KiB to 2 MiB (size classes, carved from arenas); larger stacks
//!   up to [`CARVE_MAX`] (a Python goroutine's 8 MiB) are carved from shared arenas too, never
//!   unmapped ([`carve_large`]: no VMA per stack); larger ones, and those the growth signal
//!   handler maps, get a mapping of their own.
//! - Recycling: each P keeps a small cache of warm stacks per class (no lock on spawn/exit); the
//!   global pool behind a mutex takes the overflow, keeps `GLOBAL_WARM_MAX` per class warm and
//!   gives back the pages of the rest, so idle pooled stacks cost little.
//!
//! - Growth (src/sched/grow.rs) needs stacks inside the SIGSEGV handler, where nothing may
//!   allocate or lock: [`alloc_in_signal`] only pops the P's cache, takes a warm spare from
//!   [`SPARES`] (a lock-free array) or maps a new reservation with two system calls; a stack mapped
//!   that way has class [`DIRECT`] until [`register_direct`] records it (on g0, later).
//! - Large stacks (> 2 MiB) freed by growth stay warm in [`SPARES`] up to [`SPARE_BYTES_MAX`]: a
//!   relocation into cold pages is 4-5x slower than into warm ones (notes/growth.md).
//! - Large stacks that do not fit there go to [`LARGE_POOL`] (per size, up to
//!   [`LARGE_POOL_MAX`], trimmed to their top [`large_keep_top`] bytes beyond a few warm ones):
//!   a Python goroutine's 8 MiB FIXED stack is reused instead of mapped and unmapped per
//!   goroutine. Only when the pool is full is a large stack unmapped.
//!
//! Invariant: a `Stack` is owned by exactly one of: a G (its stack, or its list of stacks waiting
//! to be freed), a P cache, the global pool, a spare slot.

//!
//! Files: this one (the `Stack` record, size classes, the global pool's state, statistics),
//! `pool.rs` (size-class stacks carved from arenas, the per-P [`StackCache`], the global pool),
//! `large.rs` (stacks past the classes: carved, directly mapped, the signal handler's spares,
//! the large pool), `copy.rs` (moving a stack), `xsave.rs`, `valgrind.rs`.

pub mod copy;
mod large;
mod pool;
pub mod valgrind;
#[cfg(target_arch = "x86_64")]
pub mod xsave;

pub use large::{
    alloc_in_signal, free_cold, large_keep_top, register_direct, Spares, CARVE_MAX, LARGE_POOL_MAX, LARGE_POOL_WARM,
    LARGE_POOL_WARM_BYTES, SPARES, SPARE_BYTES_MAX,
};
pub use pool::{alloc_global, free_global, StackCache, GLOBAL_WARM_BYTES, GLOBAL_WARM_MAX};

use crate::base::futex::Mutex;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::collections::BTreeMap;

/// The page size (`sysconf(_SC_PAGESIZE)`, read once): 4 KiB on x86_64; aarch64 Linux kernels
/// are built with 4, 16 or 64 KiB pages. Guards, stack sizes (at least one page: see
/// [`round_size`]), page releases and the sigaltstack's guard page are aligned to it.
#[inline]
pub fn page() -> usize {
    static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE_SIZE.load(Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions.
    let p = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 && (n as usize).is_power_of_two() => n as usize,
        _ => 4096,
    };
    PAGE_SIZE.store(p, Relaxed);
    p
}
/// Guard region below every stack larger than [`SMALL_STACK_MAX`]. Virtual only; sized so that
/// ordinary C frames cannot jump over it (see docs/DESIGN.md: a 256 KiB guard caught 100 KiB
/// frames; costs ~550 B of page tables per stack).
pub const GUARD_SIZE: usize = 256 * 1024;
/// Guard region below stacks up to [`SMALL_STACK_MAX`] (the default window included): page
/// tables are paid per 2 MiB of address space that holds a stack's top page or a guard marker, so
/// the spacing of stack tops (window + guard) sets the cost per parked goroutine: 320 KiB here,
/// ~640 B; a 256 KiB guard would make it ~1 KiB and break the 5 KB budget (docs/DESIGN.md).
/// Residual risk, documented in the README: a frame larger than 64 KiB compiled without
/// `-fstack-clash-protection` can jump over it.
pub const SMALL_GUARD_SIZE: usize = 64 * 1024;
pub const SMALL_STACK_MAX: usize = DEFAULT_WINDOW;

/// The default window of a GROWABLE goroutine: a reservation whose pages the kernel commits as
/// they are touched, so the stack grows by page faults and never moves while it fits. 256 KiB is
/// the largest power of two whose page tables keep a parked goroutine under 5 KB (with its
/// 64 KiB guard) and it holds what ordinary C does (measured in docs/DESIGN.md: glibc's printf of
/// a long double ~11 KiB, getaddrinfo, regcomp/regexec, iconv, qsort, a recursive-descent parser).
pub const DEFAULT_WINDOW: usize = 256 * 1024;

/// The guard region below a stack of `size` bytes.
pub const fn guard_for(size: usize) -> usize {
    if size <= SMALL_STACK_MAX {
        SMALL_GUARD_SIZE
    } else {
        GUARD_SIZE
    }
}
/// Smallest and largest pooled size class.
pub const MIN_CLASS_SIZE: usize = 8 * 1024;
pub const MAX_CLASS_SIZE: usize = 2 * 1024 * 1024;
pub const NCLASSES: usize = 9; // 8 KiB .. 2 MiB
/// Size class value of a stack with its own mapping.
pub const LARGE: u8 = u8::MAX;
/// Size class value of a stack mapped inside the signal handler and not yet recorded in the global
/// list of large stacks (see [`register_direct`]).
pub const DIRECT: u8 = u8::MAX - 1;

/// Stacks a P keeps per class before handing half to the global pool.
pub const P_CACHE_MAX: usize = 64;

const MADV_GUARD_INSTALL: i32 = 102;

/// A goroutine stack: usable range `[lo, hi)` with `guard` inaccessible bytes below `lo`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stack {
    pub lo: usize,
    pub hi: usize,
    /// Bytes of guard below `lo` (at most 256 KiB: a u32 keeps the G record small).
    pub guard: u32,
    pub class: u8,
}

impl Stack {
    pub const fn size(&self) -> usize {
        self.hi - self.lo
    }
    /// Lowest address of the guard region.
    pub const fn guard_lo(&self) -> usize {
        self.lo - self.guard as usize
    }
    /// Is `addr` in this stack's guard region?
    pub const fn in_guard(&self, addr: usize) -> bool {
        addr >= self.lo - self.guard as usize && addr < self.lo
    }
}

/// Rounds a requested size to the stack size actually reserved: a power of two for pooled
/// classes, a page multiple above them; never less than a page (with 16 or 64 KiB pages the
/// smaller classes are not used: guards and slots must be page-aligned).
pub fn round_size(bytes: usize) -> usize {
    let page = page();
    let b = bytes.max(MIN_CLASS_SIZE).max(page);
    if b <= MAX_CLASS_SIZE {
        b.next_power_of_two()
    } else {
        (b + page - 1) & !(page - 1)
    }
}

fn class_of(size: usize) -> Option<usize> {
    if size.is_power_of_two() && (MIN_CLASS_SIZE..=MAX_CLASS_SIZE).contains(&size) {
        Some((size.trailing_zeros() - MIN_CLASS_SIZE.trailing_zeros()) as usize)
    } else {
        None
    }
}

const fn class_size(c: usize) -> usize {
    MIN_CLASS_SIZE << c
}

struct Arena {
    base: usize,
    len: usize,
    slot: usize,
    size: usize,
}

struct Global {
    free: [Vec<Stack>; NCLASSES],
    /// `free[c][..cold[c]]` gave their pages back (the oldest entries; the pool is LIFO, so the
    /// warm ones on top are reused first).
    cold: [usize; NCLASSES],
    arenas: Vec<Arena>,
    arenas_of_class: [u32; NCLASSES],
    /// Stacks with their own mapping (in use, spare, in [`LARGE_POOL`], or pooled after the
    /// signal handler mapped them): lo -> hi, for the committed-bytes count. A map, not a list:
    /// with thousands of 8 MiB Python stacks alive, finding one to unmap by scanning cost
    /// ~5% of a spawn.
    large: BTreeMap<usize, usize>,
    /// Arenas that large stacks up to [`CARVE_MAX`] are carved from: base -> end. See
    /// [`carve_large`].
    carved: BTreeMap<usize, usize>,
    /// Per stack size, the arena being carved: (size, next slot, end).
    carving: Vec<(usize, usize, usize)>,
    /// Carved stacks given back (never unmapped: that would split their arena's mapping), per
    /// size, their pages given back too.
    carved_free: BTreeMap<usize, Vec<Stack>>,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
    free: [const { Vec::new() }; NCLASSES],
    cold: [0; NCLASSES],
    arenas: Vec::new(),
    arenas_of_class: [0; NCLASSES],
    large: BTreeMap::new(),
    carved: BTreeMap::new(),
    carving: Vec::new(),
    carved_free: BTreeMap::new(),
});

static RESERVED: AtomicU64 = AtomicU64::new(0);
static GUARD_BY_MADVISE: AtomicBool = AtomicBool::new(true);
static MPROTECT_GUARDS: AtomicUsize = AtomicUsize::new(0);
/// Stacks with mprotect guards (two mappings each) at which we warn: vm.max_map_count is 65,530
/// by default, so the process is about to run out of mappings near 32,000 such stacks.
const MPROTECT_GUARDS_WARN: usize = 30_000;

/// Bytes reserved for stacks (guards excluded), pools included.
pub fn reserved_bytes() -> u64 {
    RESERVED.load(Relaxed)
}

/// Bytes of stack memory resident now (mincore over every arena and large stack).
pub fn committed_bytes() -> u64 {
    let g = GLOBAL.lock();
    let mut total = 0u64;
    let mut vec: Vec<u8> = Vec::new();
    let mut count = |lo: usize, len: usize| {
        let pages = len / page();
        vec.clear();
        vec.resize(pages, 0);
        // SAFETY: [lo, lo+len) is a page-aligned range of one of our mappings; vec has one byte
        // per page.
        if unsafe { libc::mincore(lo as *mut _, len, vec.as_mut_ptr()) } == 0 {
            total += vec.iter().filter(|&&b| b & 1 != 0).count() as u64 * page() as u64;
        }
    };
    for a in &g.arenas {
        let n = a.len / a.slot;
        for i in 0..n {
            count(a.base + i * a.slot + (a.slot - a.size), a.size);
        }
    }
    for (&lo, &hi) in &g.large {
        count(lo, hi - lo);
    }
    total
}

/// fork() (sched/fork.rs, issue 20): the global pool's lock is held across the fork, so that the
/// child's copy is consistent and not owned by a thread that does not exist there. Prepare: lock.
pub fn fork_prepare() {
    core::mem::forget(GLOBAL.lock());
}

/// Parent and child after fork(): unlock. The lock is one futex word (base/futex.rs), so in the
/// child, where the threads that waited on it in the parent do not exist, unlocking leaves it free.
pub fn fork_release() {
    // SAFETY: fork_prepare took the lock on this thread and forgot the guard.
    unsafe { GLOBAL.force_unlock() };
}

#[cfg(test)]
mod tests {
    use super::large::{trim_for_pool, went_below_top, NSPARES};
    use super::*;

    #[test]
    fn round_sizes() {
        assert_eq!(round_size(0), 8192);
        assert_eq!(round_size(8193), 16384);
        assert_eq!(round_size(2 << 20), 2 << 20);
        assert_eq!(round_size((2 << 20) + 1), (2 << 20) + page());
        assert_eq!(class_of(8192), Some(0));
        assert_eq!(class_of(2 << 20), Some(8));
        assert_eq!(class_of(3 << 20), None);
    }

    #[test]
    fn alloc_touch_free() {
        let mut cache = StackCache::new();
        let s = cache.alloc(16384).unwrap();
        assert_eq!(s.size(), 16384);
        assert_eq!(s.lo % page(), 0);
        // SAFETY: the stack is ours.
        unsafe {
            core::ptr::write_bytes(s.lo as *mut u8, 0xab, s.size());
        }
        assert!(committed_bytes() >= 16384);
        cache.free(s);
        let big = cache.alloc(round_size(3 << 20)).unwrap();
        assert_eq!(big.class, LARGE);
        // SAFETY: as above.
        unsafe { *((big.hi - 8) as *mut u64) = 1 };
        cache.free(big);
        cache.drain();
    }

    fn resident(addr: usize) -> bool {
        let mut v = 0u8;
        // SAFETY: one page of a mapping of ours; v receives one byte.
        unsafe { libc::mincore(addr as *mut _, page(), &mut v) == 0 && v & 1 != 0 }
    }

    #[test]
    fn probe_tells_shallow_from_deep() {
        let size = round_size((6 << 20) + 5 * page());
        let s = alloc_global(size).unwrap();
        // SAFETY: the stack is ours; every address written lies inside it.
        unsafe {
            *((s.hi - 8) as *mut u64) = 1;
            assert!(went_below_top(&s), "a fresh stack has no canary: it counts as used");
            *((s.lo + page()) as *mut u64) = 1;
            trim_for_pool(&s);
            assert!(!resident(s.lo + page()), "trimmed below the kept top");
            assert!(resident(s.hi - page()), "the kept top stays");
            assert!(!went_below_top(&s), "canary intact after the trim");
            // A goroutine that stayed in the kept top leaves the canary alone: no trim needed.
            core::ptr::write_bytes((s.hi - large_keep_top()) as *mut u8, 0xcd, large_keep_top());
            assert!(!went_below_top(&s));
            // One that went deeper wrote frames into the probe region on the way.
            *((s.hi - large_keep_top() - 200) as *mut u64) = 0x4242;
            assert!(went_below_top(&s));
        }
        free_global(s);
    }

    #[test]
    fn large_stacks_are_pooled_and_trimmed() {
        // A size no other test uses: SPARES and the pool are process-wide.
        let size = round_size((5 << 20) + 3 * page());
        let n = NSPARES + LARGE_POOL_WARM + 8;
        let stacks: Vec<Stack> = (0..n).map(|_| alloc_global(size).unwrap()).collect();
        for s in &stacks {
            // SAFETY: the stacks are ours.
            unsafe {
                *(s.lo as *mut u8) = 1;
                *((s.hi - 1) as *mut u8) = 1;
            }
        }
        let reserved = reserved_bytes();
        for s in &stacks {
            free_global(*s);
        }
        // Nothing was unmapped: pooled stacks keep their reservation ...
        assert!(reserved_bytes() >= reserved);
        // ... every one kept its top warm, and the ones beyond the warm tiers gave back the rest.
        assert!(stacks.iter().all(|s| resident(s.hi - page())));
        let trimmed = stacks.iter().filter(|s| !resident(s.lo)).count();
        assert!(trimmed >= n - NSPARES - LARGE_POOL_WARM, "{trimmed} trimmed");
        // Spawning again reuses them all: no new mapping.
        let again: Vec<Stack> = (0..n).map(|_| alloc_global(size).unwrap()).collect();
        let mut a: Vec<usize> = stacks.iter().map(|s| s.lo).collect();
        let mut b: Vec<usize> = again.iter().map(|s| s.lo).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        for s in again {
            free_global(s);
        }
    }
}
