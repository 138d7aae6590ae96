//! Introspection: the debugger's record (`DEBUG_INFO`), gs_get_stats, gs_get_stack_info,
//! gs_dump, and the running goroutine printed with a fatal error.

use super::g::{Gobuf, G, G_DEAD, G_IDLE, WAIT_REASON_NAMES};
use super::grow;
use super::m::{getg, M};
use super::{live_count, lock_sched, SCHED};
use crate::base::fatal::FdWriter;
use crate::base::types::*;
use crate::stack;
use crate::stack::Stack;
use core::ffi::c_int;
use core::fmt::Write;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::*};

/// What a debugger needs to list goroutines, in one record that tools/gdb/gostack.py finds by
/// its symbol (`gostack::sched::debug::DEBUG_INFO`) and reads as raw words, so that it works without
/// the library's type information (release builds carry line tables only): every G ever made
/// (`SchedLocked::allg`'s buffer and length, written under the scheduler lock after each push)
/// and the offsets of the fields it shows. `&str` and `Box<[u8]>` are read as (pointer, length)
/// pairs, `Option<Box<_>>` as a pointer (null: None): rustc's layout of them, checked by the gdb
/// test in tests/c_tests.rs.
#[repr(C)]
pub struct DebugInfo {
    /// `b"gostack1"`: the layout version of this record.
    pub magic: [u8; 8],
    pub allg: AtomicPtr<*mut G>,
    pub nallg: AtomicUsize,
    pub g_sched_sp: usize,
    pub g_stack_lo: usize,
    pub g_stack_hi: usize,
    pub g_goid: usize,
    pub g_status: usize,
    pub g_waitreason: usize,
    pub g_name: usize,
    pub g_m: usize,
    pub m_tid: usize,
    /// `G.waitreason` is one byte; the names, by its value: an array of `&str`.
    pub wait_reason_names: *const &'static str,
    pub n_wait_reasons: usize,
}

// SAFETY: the record is written once at compile time but for the two atomics; the names pointer
// points to an immutable static.
unsafe impl Sync for DebugInfo {}

pub static DEBUG_INFO: DebugInfo = DebugInfo {
    magic: *b"gostack1",
    allg: AtomicPtr::new(null_mut()),
    nallg: AtomicUsize::new(0),
    g_sched_sp: core::mem::offset_of!(G, sched) + core::mem::offset_of!(Gobuf, sp),
    g_stack_lo: core::mem::offset_of!(G, stack) + core::mem::offset_of!(Stack, lo),
    g_stack_hi: core::mem::offset_of!(G, stack) + core::mem::offset_of!(Stack, hi),
    g_goid: core::mem::offset_of!(G, goid),
    g_status: core::mem::offset_of!(G, status),
    g_waitreason: core::mem::offset_of!(G, waitreason),
    g_name: core::mem::offset_of!(G, name),
    g_m: core::mem::offset_of!(G, m),
    m_tid: core::mem::offset_of!(M, tid),
    wait_reason_names: WAIT_REASON_NAMES.as_ptr(),
    n_wait_reasons: WAIT_REASON_NAMES.len(),
};

pub fn stats() -> gs_stats {
    let n = SCHED.nprocs.load(Relaxed);
    let s = lock_sched();
    let threads = s.allm.len() as u32;
    let records = s.allg.len() as u64;
    // Stacks held by goroutines that have not exited (a racy snapshot of running ones' records).
    let in_use: u64 = s
        .allg
        .iter()
        .map(|&g| {
            // SAFETY: G records are never freed; a snapshot of a field another thread may write.
            let g = unsafe { &*g };
            let st = g.status.load(Acquire);
            if st == G_IDLE || st == G_DEAD {
                0
            } else {
                g.stack.size() as u64
            }
        })
        .sum();
    drop(s);
    let reserved = stack::reserved_bytes();
    gs_stats {
        goroutines_live: live_count().max(0) as u64,
        goroutines_total: SCHED.total.load(Relaxed) + SCHED.allp.iter().map(|p| p.spawned.load(Relaxed)).sum::<u64>(),
        switches: SCHED.allp.iter().map(|p| p.switches.load(Relaxed)).sum(),
        stack_reserved: reserved,
        stack_committed: stack::committed_bytes(),
        stack_grows: grow::GROWS.load(Relaxed),
        stack_shrinks: grow::SHRINKS.load(Relaxed),
        stack_moves: grow::GROWS.load(Relaxed) + grow::SHRINKS.load(Relaxed),
        stack_releases: grow::RELEASES.load(Relaxed),
        stack_in_use: in_use,
        stack_pooled: reserved.saturating_sub(in_use),
        goroutine_records: records,
        maxprocs: n as u32,
        threads,
    }
}

/// The calling goroutine's stack (its own stack pointer is taken here, in the caller's frame).
pub fn stack_info(sp: usize) -> Result<gs_stack_info, c_int> {
    let g = getg();
    if g.is_null() {
        return Err(GS_ENOTGOROUTINE);
    }
    // SAFETY: g is the goroutine running on this thread.
    let g = unsafe { &*g };
    let used = if sp >= g.stack.lo && sp < g.stack.hi { g.stack.hi - sp } else { 0 };
    Ok(gs_stack_info {
        lo: g.stack.lo,
        hi: g.stack.hi,
        size: g.stack.size(),
        used,
        kind: g.stack_kind,
        grows: g.grows as u64,
        shrinks: g.shrinks as u64,
    })
}

/// Writes `goroutine N [running]:` for the goroutine on this thread, for fatal errors. Async-signal
/// safe: no locks, no allocation.
pub fn dump_current_for_fatal(w: &mut FdWriter) {
    let g = getg();
    if g.is_null() {
        return;
    }
    // SAFETY: the running goroutine's record; read only.
    let g = unsafe { &*g };
    let _ = write!(w, "\ngoroutine {} [running", g.goid);
    if let Some(n) = &g.name {
        let _ = write!(w, ", {}", n.to_string_lossy());
    }
    let kind = super::copystack::kind_name(g.stack_kind);
    if g.stack.lo == 0 {
        // Failing at its first run: it has no stack yet.
        let _ = write!(w, "]:\n\tstack=none yet ({} bytes at its first run), {}\n", g.growth.initial, kind);
    } else {
        let _ = write!(w, "]:\n\tstack=[{:#x}, {:#x}) {} bytes, {}\n", g.stack.lo, g.stack.hi, g.stack.size(), kind);
    }
}

/// Go-style dump of every goroutine: `goroutine N [state]:` with its wait reason, stack and name.
/// `GS_EINVAL` when `fd` is not open or a write to it failed.
pub fn dump(fd: i32) -> c_int {
    // SAFETY: F_GETFD only queries the descriptor.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return GS_EINVAL;
    }
    let s = lock_sched();
    let gs: Vec<*mut G> = s.allg.clone();
    drop(s);
    let mut w = FdWriter::new(fd);
    for g in gs {
        // SAFETY: G records are never freed; fields may be racy snapshots of running goroutines.
        super::traceback::write_goroutine(&mut w, unsafe { &*g });
    }
    if w.finish() {
        GS_OK
    } else {
        GS_EINVAL
    }
}
