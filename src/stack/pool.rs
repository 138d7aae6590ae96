//! Stacks of the size classes (8 KiB to 2 MiB): carved from arenas with their guards, cached
//! per P ([`StackCache`], no lock on spawn and exit), overflowing into the global pool, which keeps
//! [`GLOBAL_WARM_MAX`] per class warm and gives back the pages of the rest.

use super::large::{alloc_large, free_large};
use super::{
    class_of, class_size, guard_for, Arena, Global, Stack, DIRECT, GLOBAL, GUARD_BY_MADVISE, LARGE, MADV_GUARD_INSTALL,
    MPROTECT_GUARDS, MPROTECT_GUARDS_WARN, NCLASSES, P_CACHE_MAX, RESERVED,
};
use core::sync::atomic::{AtomicBool, Ordering::*};

/// Whether a guard installed by `MADV_GUARD_INSTALL` was seen to work (see [`guard_works`]).
static GUARD_BY_MADVISE_CHECKED: AtomicBool = AtomicBool::new(false);

/// Whether the freshly installed guard at `addr` is really inaccessible: the kernel must refuse
/// to read it (`write` from it into a pipe fails with EFAULT). An emulator may accept advice it
/// does not implement: qemu-user (7.2 to 10.0 at least) answers 0 to every `madvise` it does not
/// know, so without this check goroutine stacks there had no guards at all and ran into each
/// other. Async-signal-safe (the growth handler may install the first guard).
fn guard_works(addr: usize) -> bool {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: plain system calls on descriptors made here; the write only reads [addr, addr + 1).
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return true; // cannot tell: trust the kernel's answer
        }
        let n = libc::write(fds[1], addr as *const libc::c_void, 1);
        let efault = n < 0 && *libc::__errno_location() == libc::EFAULT;
        libc::close(fds[0]);
        libc::close(fds[1]);
        efault
    }
}

/// Installs the guard region `[addr, addr + len)`.
pub(super) fn install_guard(addr: usize, len: usize) -> bool {
    if GUARD_BY_MADVISE.load(Relaxed) {
        // SAFETY: the range lies inside a mapping we own.
        // (A guard accepted but not done, by an emulator, falls back to mprotect too.)
        if unsafe { libc::madvise(addr as *mut _, len, MADV_GUARD_INSTALL) } == 0
            && (GUARD_BY_MADVISE_CHECKED.load(Relaxed) || guard_works(addr))
        {
            GUARD_BY_MADVISE_CHECKED.store(true, Relaxed);
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
            let mut w = crate::base::fatal::FdWriter::stderr();
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

/// Address space kept below every mapping of stacks, a guard region itself (a guard marker, so
/// no mapping of its own where MADV_GUARD_INSTALL works; never committed): the growth handler
/// moves saved registers that point up to `REG_WINDOW_BELOW_GUARD` (1 MiB) below a stack's guard
/// (stack-clash probe loops keep their end there), so nothing but stacks of ours may lie there.
/// Without it, a register pointing at whatever the process mapped just below an arena (libc's
/// data, a malloc'd block) was "moved" by the delta: seen under qemu-user, which hands out
/// mappings bottom-up, so the first arena sat right above ld.so's and libc's data
/// (test_stack_grow_libc, one run in two). Inaccessible, so that a frame that jumps a lowest
/// stack's guard still faults there and is reported (test_stack_bigframe).
const SHADOW_BELOW: usize = super::copy::REG_WINDOW_BELOW_GUARD;

/// Maps `len` bytes for stacks (with [`SHADOW_BELOW`] bytes of guarded address space below them,
/// which [`unmap`] gives back with them).
pub(super) fn map(len: usize) -> Option<usize> {
    // SAFETY: anonymous private mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            SHADOW_BELOW + len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // Best effort: where even mprotect fails the shadow stays readable address space of ours,
    // which still keeps others' data out of the register window.
    let _ = install_guard(p as usize, SHADOW_BELOW);
    // Stacks are addressable only while a goroutine has them (valgrind.rs).
    super::valgrind::noaccess(p as usize, p as usize + SHADOW_BELOW + len);
    Some(p as usize + SHADOW_BELOW)
}

/// Unmaps `[base, base + len)`, which [`map`] returned, and the shadow below it.
///
/// # Safety
/// Nothing uses the memory any more.
pub(super) unsafe fn unmap(base: usize, len: usize) {
    // SAFETY: per the contract; the shadow was mapped with it.
    unsafe { libc::munmap((base - SHADOW_BELOW) as *mut _, SHADOW_BELOW + len) };
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
            unsafe { unmap(base, len) };
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
        super::valgrind::noaccess(s.lo, s.hi);
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
    super::valgrind::noaccess(s.lo, s.hi);
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
