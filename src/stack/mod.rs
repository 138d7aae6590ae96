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
//!   get a mapping of their own.
//! - Recycling: each P keeps a small cache of warm stacks per class (no lock on spawn/exit); the
//!   global pool behind a mutex takes the overflow, keeps `GLOBAL_WARM_MAX` per class warm and
//!   gives back the pages of the rest, so idle pooled stacks cost little.
//!
//! Invariant: a `Stack` is owned by exactly one of: a G, a P cache, the global pool.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use parking_lot::Mutex;

pub const PAGE: usize = 4096;
/// Guard region below every stack. Virtual only; sized so that ordinary C frames cannot jump over
/// it (see docs/DESIGN.md: a 256 KiB guard caught 100 KiB frames; costs ~550 B of page tables).
pub const GUARD_SIZE: usize = 256 * 1024;
/// Smallest and largest pooled size class.
pub const MIN_CLASS_SIZE: usize = 8 * 1024;
pub const MAX_CLASS_SIZE: usize = 2 * 1024 * 1024;
pub const NCLASSES: usize = 9; // 8 KiB .. 2 MiB
/// Size class value of a stack with its own mapping.
pub const LARGE: u8 = u8::MAX;

/// Stacks a P keeps per class before handing half to the global pool.
pub const P_CACHE_MAX: usize = 64;

const MADV_GUARD_INSTALL: i32 = 102;

/// A goroutine stack: usable range `[lo, hi)` with `guard` inaccessible bytes below `lo`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stack {
    pub lo: usize,
    pub hi: usize,
    pub guard: usize,
    pub class: u8,
}

impl Stack {
    pub const fn size(&self) -> usize {
        self.hi - self.lo
    }
    /// Lowest address of the guard region.
    pub const fn guard_lo(&self) -> usize {
        self.lo - self.guard
    }
    /// Is `addr` in this stack's guard region?
    pub const fn in_guard(&self, addr: usize) -> bool {
        addr >= self.lo - self.guard && addr < self.lo
    }
}

/// Rounds a requested size to the stack size actually reserved: a power of two for pooled
/// classes, a page multiple above them.
pub fn round_size(bytes: usize) -> usize {
    let b = bytes.max(MIN_CLASS_SIZE);
    if b <= MAX_CLASS_SIZE {
        b.next_power_of_two()
    } else {
        (b + PAGE - 1) & !(PAGE - 1)
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
    arenas: Vec<Arena>,
    /// Stacks with their own mapping that are in use: (lo, hi) for the committed-bytes count.
    large: Vec<(usize, usize)>,
}

static GLOBAL: Mutex<Global> = Mutex::new(Global {
    free: [const { Vec::new() }; NCLASSES],
    arenas: Vec::new(),
    large: Vec::new(),
});

static RESERVED: AtomicU64 = AtomicU64::new(0);
static GUARD_BY_MADVISE: AtomicBool = AtomicBool::new(true);
static MPROTECT_GUARDS: AtomicUsize = AtomicUsize::new(0);

/// Installs the guard region `[addr, addr + len)`.
fn install_guard(addr: usize, len: usize) -> bool {
    if GUARD_BY_MADVISE.load(Relaxed) {
        // SAFETY: the range lies inside a mapping we own.
        if unsafe { libc::madvise(addr as *mut _, len, MADV_GUARD_INSTALL) } == 0 {
            return true;
        }
        // Kernels before 6.13 answer EINVAL: fall back for good.
        GUARD_BY_MADVISE.store(false, Relaxed);
    }
    // SAFETY: as above.
    let ok = unsafe { libc::mprotect(addr as *mut _, len, libc::PROT_NONE) } == 0;
    if ok {
        let n = MPROTECT_GUARDS.fetch_add(1, Relaxed) + 1;
        if n == 30_000 {
            let mut w = crate::fatal::FdWriter::stderr();
            let _ = core::fmt::Write::write_str(
                &mut w,
                "gostack: warning: 30000 stacks with mprotect guards (this kernel lacks \
                 MADV_GUARD_INSTALL); each costs a mapping and vm.max_map_count (65530 by default) \
                 caps them near 32k\n",
            );
        }
    }
    ok
}

fn map(len: usize) -> Option<usize> {
    // SAFETY: anonymous private mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        None
    } else {
        Some(p as usize)
    }
}

/// Carves a new arena for class `c` and pushes its stacks on `free`.
fn grow_class(g: &mut Global, c: usize) -> bool {
    let size = class_size(c);
    let slot = size + GUARD_SIZE;
    let nslots = (32 << 20) / slot;
    let nslots = nslots.clamp(4, 1024);
    let len = slot * nslots;
    let Some(base) = map(len) else { return false };
    for i in (0..nslots).rev() {
        let guard_lo = base + i * slot;
        if !install_guard(guard_lo, GUARD_SIZE) {
            // SAFETY: unmapping the arena we just mapped and handed out nothing of.
            unsafe { libc::munmap(base as *mut _, len) };
            return false;
        }
        let lo = guard_lo + GUARD_SIZE;
        g.free[c].push(Stack { lo, hi: lo + size, guard: GUARD_SIZE, class: c as u8 });
    }
    g.arenas.push(Arena { base, len, slot, size });
    RESERVED.fetch_add((size * nslots) as u64, Relaxed);
    true
}

/// A per-P cache of warm stacks.
pub struct StackCache {
    classes: [Vec<Stack>; NCLASSES],
}

impl Default for StackCache {
    fn default() -> Self {
        Self::new()
    }
}

impl StackCache {
    pub const fn new() -> Self {
        StackCache { classes: [const { Vec::new() }; NCLASSES] }
    }

    /// Takes a stack of exactly `size` bytes (a value returned by [`round_size`]).
    pub fn alloc(&mut self, size: usize) -> Option<Stack> {
        match class_of(size) {
            Some(c) => {
                if let Some(s) = self.classes[c].pop() {
                    return Some(s);
                }
                let mut g = GLOBAL.lock();
                let want = P_CACHE_MAX / 2;
                if g.free[c].len() < want && !grow_class(&mut g, c) && g.free[c].is_empty() {
                    return None;
                }
                let n = g.free[c].len().min(want);
                let at = g.free[c].len() - n;
                self.classes[c].extend(g.free[c].drain(at..));
                self.classes[c].pop()
            }
            None => alloc_large(size),
        }
    }

    /// Returns a stack; keeps it warm unless the cache is full.
    pub fn free(&mut self, s: Stack) {
        if s.class == LARGE {
            return free_large(s);
        }
        let c = s.class as usize;
        self.classes[c].push(s);
        if self.classes[c].len() > P_CACHE_MAX {
            let half = self.classes[c].len() / 2;
            let spill: Vec<Stack> = self.classes[c].drain(..half).collect();
            release_to_global(spill);
        }
    }

    /// Gives every cached stack back to the global pool (a P being destroyed).
    pub fn drain(&mut self) {
        for c in 0..NCLASSES {
            let v: Vec<Stack> = self.classes[c].drain(..).collect();
            release_to_global(v);
        }
    }
}

/// Takes a stack without a P (spawns from threads outside the scheduler).
pub fn alloc_global(size: usize) -> Option<Stack> {
    match class_of(size) {
        Some(c) => {
            let mut g = GLOBAL.lock();
            if g.free[c].is_empty() && !grow_class(&mut g, c) {
                return None;
            }
            g.free[c].pop()
        }
        None => alloc_large(size),
    }
}

/// Returns a stack without a P.
pub fn free_global(s: Stack) {
    if s.class == LARGE {
        free_large(s)
    } else {
        release_to_global(vec![s])
    }
}

/// Stacks per class the global pool keeps warm; beyond that, pooled stacks give their pages back.
/// A syscall per stack is too dear for every exit (~0.5 µs), but idle memory must stay bounded.
pub const GLOBAL_WARM_MAX: usize = 1024;

fn release_to_global(v: Vec<Stack>) {
    if v.is_empty() {
        return;
    }
    let mut g = GLOBAL.lock();
    for s in v {
        let c = s.class as usize;
        if g.free[c].len() >= GLOBAL_WARM_MAX {
            // SAFETY: the stack is ours (no goroutine uses it); its contents are dead.
            unsafe { libc::madvise(s.lo as *mut _, s.size(), libc::MADV_DONTNEED) };
        }
        g.free[c].push(s);
    }
}

fn alloc_large(size: usize) -> Option<Stack> {
    let len = size + GUARD_SIZE;
    let base = map(len)?;
    if !install_guard(base, GUARD_SIZE) {
        // SAFETY: unmapping what we just mapped.
        unsafe { libc::munmap(base as *mut _, len) };
        return None;
    }
    let lo = base + GUARD_SIZE;
    RESERVED.fetch_add(size as u64, Relaxed);
    GLOBAL.lock().large.push((lo, lo + size));
    Some(Stack { lo, hi: lo + size, guard: GUARD_SIZE, class: LARGE })
}

fn free_large(s: Stack) {
    {
        let mut g = GLOBAL.lock();
        if let Some(i) = g.large.iter().position(|&(lo, _)| lo == s.lo) {
            g.large.swap_remove(i);
        }
    }
    RESERVED.fetch_sub(s.size() as u64, Relaxed);
    // SAFETY: the stack and its guard were one mapping of ours; nothing runs on it any more.
    unsafe { libc::munmap(s.guard_lo() as *mut _, s.size() + s.guard) };
}

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
        let pages = len / PAGE;
        vec.clear();
        vec.resize(pages, 0);
        // SAFETY: [lo, lo+len) is a page-aligned range of one of our mappings; vec has one byte
        // per page.
        if unsafe { libc::mincore(lo as *mut _, len, vec.as_mut_ptr()) } == 0 {
            total += vec.iter().filter(|&&b| b & 1 != 0).count() as u64 * PAGE as u64;
        }
    };
    for a in &g.arenas {
        let n = a.len / a.slot;
        for i in 0..n {
            count(a.base + i * a.slot + (a.slot - a.size), a.size);
        }
    }
    for &(lo, hi) in &g.large {
        count(lo, hi - lo);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_sizes() {
        assert_eq!(round_size(0), 8192);
        assert_eq!(round_size(8193), 16384);
        assert_eq!(round_size(2 << 20), 2 << 20);
        assert_eq!(round_size((2 << 20) + 1), (2 << 20) + PAGE);
        assert_eq!(class_of(8192), Some(0));
        assert_eq!(class_of(2 << 20), Some(8));
        assert_eq!(class_of(3 << 20), None);
    }

    #[test]
    fn alloc_touch_free() {
        let mut cache = StackCache::new();
        let s = cache.alloc(16384).unwrap();
        assert_eq!(s.size(), 16384);
        assert_eq!(s.lo % PAGE, 0);
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
}
