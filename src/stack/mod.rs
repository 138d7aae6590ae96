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
//!   [`LARGE_POOL_MAX`], trimmed to their top [`LARGE_KEEP_TOP`] bytes beyond a few warm ones):
//!   a Python goroutine's 8 MiB FIXED stack is reused instead of mapped and unmapped per
//!   goroutine. Only when the pool is full is a large stack unmapped.
//!
//! Invariant: a `Stack` is owned by exactly one of: a G (its stack, or its list of stacks waiting
//! to be freed), a P cache, the global pool, a spare slot.

pub mod copy;
pub mod valgrind;
pub mod xsave;

use crate::base::futex::Mutex;
use crate::base::lock::Locked;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};
use std::collections::BTreeMap;

pub const PAGE: usize = 4096;
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
        if n == MPROTECT_GUARDS_WARN {
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
    let guard = guard_for(size);
    let slot = size + guard;
    // Arenas of a class start small and double (8, 16, ... slots, up to ~32 MiB): each slot costs
    // a guard installation (~1.1 µs), which a program that grows one stack once should not pay
    // for hundreds of slots.
    let most = ((32 << 20) / slot).clamp(4, 1024);
    let nslots = (8usize << g.arenas_of_class[c].min(16)).min(most);
    g.arenas_of_class[c] += 1;
    let len = slot * nslots;
    let Some(base) = map(len) else { return false };
    for i in (0..nslots).rev() {
        let guard_lo = base + i * slot;
        if !install_guard(guard_lo, guard) {
            // SAFETY: unmapping the arena we just mapped and handed out nothing of.
            unsafe { libc::munmap(base as *mut _, len) };
            return false;
        }
        let lo = guard_lo + guard;
        g.free[c].push(Stack { lo, hi: lo + size, guard: guard as u32, class: c as u8 });
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
                g.cold[c] = g.cold[c].min(at);
                self.classes[c].pop()
            }
            None => alloc_large(size),
        }
    }

    /// Takes a stack of exactly `size` bytes if one is cached here, without refilling: no lock, no
    /// allocation (the signal handler's path).
    pub fn pop_exact(&mut self, size: usize) -> Option<Stack> {
        self.classes[class_of(size)?].pop()
    }

    /// Returns a stack; keeps it warm unless the cache is full.
    pub fn free(&mut self, s: Stack) {
        if s.class == LARGE || s.class == DIRECT {
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
            let s = g.free[c].pop();
            g.cold[c] = g.cold[c].min(g.free[c].len());
            s
        }
        None => alloc_large(size),
    }
}

/// Returns a stack without a P.
pub fn free_global(s: Stack) {
    if s.class == LARGE || s.class == DIRECT {
        free_large(s)
    } else {
        release_to_global(vec![s])
    }
}

/// Stacks per class the global pool keeps warm; beyond that, pooled stacks give their pages back.
/// A syscall per stack is too dear for every exit (~0.5 µs), but idle memory must stay bounded.
pub const GLOBAL_WARM_MAX: usize = 1024;
/// ... and at most this many bytes of reservation per class: with 256 KiB windows, 1,024 warm
/// stacks that each went deep could keep 256 MiB resident after their goroutines exited (32 MiB
/// with the old 32 KiB start); 32 MiB is 128 windows.
pub const GLOBAL_WARM_BYTES: usize = 32 << 20;

/// Warm stacks the global pool keeps in class `c`.
const fn global_warm_max(c: usize) -> usize {
    let by_bytes = GLOBAL_WARM_BYTES / class_size(c);
    if by_bytes < GLOBAL_WARM_MAX {
        by_bytes
    } else {
        GLOBAL_WARM_MAX
    }
}

fn release_to_global(v: Vec<Stack>) {
    if v.is_empty() {
        return;
    }
    let mut g = GLOBAL.lock();
    for s in v {
        let c = s.class as usize;
        g.free[c].push(s);
        // Cool the oldest warm entry, not the one just pushed: that one is reused first (LIFO),
        // and cooling it made every burst of spawns fault its stacks in again (12,000 madvise
        // calls for 50,000 spawns in batches of 1,000).
        if g.free[c].len() - g.cold[c] > global_warm_max(c) {
            let old = g.free[c][g.cold[c]];
            // SAFETY: a pooled stack: no goroutine uses it; its contents are dead.
            unsafe { libc::madvise(old.lo as *mut _, old.size(), libc::MADV_DONTNEED) };
            g.cold[c] += 1;
        }
    }
}

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
        unsafe { libc::munmap(base as *mut _, len) };
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
const NSPARES: usize = 16;

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
///   stack in the pool:  [lo ........ untouched/given back ........ | hi - LARGE_KEEP_TOP, hi)
///                                                                    └ stays committed ┘
/// ```
///
/// Invariants: the first [`LARGE_POOL_WARM`] stacks of a size are kept as they were freed (warm:
/// a goroutine that reuses one takes no page fault); every one beyond that has had everything
/// but its top [`LARGE_KEEP_TOP`] bytes given back (`MADV_DONTNEED`, ~2 µs on an 8 MiB stack)
/// and carries canary words right below them, or was trimmed so before and its last goroutine
/// left that canary intact (stayed in the top: [`went_below_top`]), so the pool's resident memory
/// is bounded by `LARGE_POOL_WARM` stacks per size plus ~`LARGE_KEEP_TOP` + a page + one
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
pub const LARGE_KEEP_TOP: usize = 2 * PAGE;

/// The pattern that fills the probe region of a trimmed pooled stack (see [`went_below_top`]).
const PROBE_CANARY: u64 = 0x9e37_79b9_7f4a_7c15;

/// Bytes right below a pooled stack's kept top that carry the canary (see [`went_below_top`]).
const PROBE_BYTES: usize = 1024;

/// The probe region of a pooled stack: the `PROBE_BYTES` right below its kept top.
fn probe_region(s: &Stack) -> *mut u64 {
    (s.hi - LARGE_KEEP_TOP - PROBE_BYTES) as *mut u64
}

/// Whether the goroutine that used a stack about to be pooled went below its top
/// `LARGE_KEEP_TOP` bytes, without a system call: a trimmed pooled stack carries
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
fn went_below_top(s: &Stack) -> bool {
    let p = probe_region(s);
    // SAFETY: the probe region lies inside the stack's mapping, which is ours (no goroutine uses
    // it); it is resident (filled by trim_for_pool) or reads as zeros.
    unsafe { (0..PROBE_BYTES / 8).any(|i| p.add(i).read_volatile() != PROBE_CANARY) }
}

/// Gives back everything below a pooled stack's kept top and fills its probe region.
fn trim_for_pool(s: &Stack) {
    // SAFETY: the stack is ours (no goroutine uses it); its contents are dead.
    unsafe {
        libc::madvise(s.lo as *mut _, s.size() - LARGE_KEEP_TOP, libc::MADV_DONTNEED);
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

fn alloc_large(size: usize) -> Option<Stack> {
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

fn free_large(s: Stack) {
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
    // SAFETY: the stack and its guard were one mapping of ours; nothing runs on it any more.
    unsafe { libc::munmap(s.guard_lo() as *mut _, s.size() + s.guard as usize) };
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

    fn resident(addr: usize) -> bool {
        let mut v = 0u8;
        // SAFETY: one page of a mapping of ours; v receives one byte.
        unsafe { libc::mincore(addr as *mut _, PAGE, &mut v) == 0 && v & 1 != 0 }
    }

    #[test]
    fn probe_tells_shallow_from_deep() {
        let size = round_size((6 << 20) + 5 * PAGE);
        let s = alloc_global(size).unwrap();
        // SAFETY: the stack is ours; every address written lies inside it.
        unsafe {
            *((s.hi - 8) as *mut u64) = 1;
            assert!(went_below_top(&s), "a fresh stack has no canary: it counts as used");
            *((s.lo + PAGE) as *mut u64) = 1;
            trim_for_pool(&s);
            assert!(!resident(s.lo + PAGE), "trimmed below the kept top");
            assert!(resident(s.hi - PAGE), "the kept top stays");
            assert!(!went_below_top(&s), "canary intact after the trim");
            // A goroutine that stayed in the kept top leaves the canary alone: no trim needed.
            core::ptr::write_bytes((s.hi - LARGE_KEEP_TOP) as *mut u8, 0xcd, LARGE_KEEP_TOP);
            assert!(!went_below_top(&s));
            // One that went deeper wrote frames into the probe region on the way.
            *((s.hi - LARGE_KEEP_TOP - 200) as *mut u64) = 0x4242;
            assert!(went_below_top(&s));
        }
        free_global(s);
    }

    #[test]
    fn large_stacks_are_pooled_and_trimmed() {
        // A size no other test uses: SPARES and the pool are process-wide.
        let size = round_size((5 << 20) + 3 * PAGE);
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
        assert!(stacks.iter().all(|s| resident(s.hi - PAGE)));
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
