//! Go's SIGQUIT traceback (issue #14): with `GOSTACK_TRACEBACK=all` in the environment when the
//! library loads, SIGQUIT (Ctrl-\) prints every goroutine, as `gs_dump` does, and ends the process
//! with exit status 2, like a Go program. Off by default, so that a host's own SIGQUIT handling
//! is untouched.
//!
//! The handler may interrupt any thread anywhere, the scheduler lock's holder included, so it
//! takes no lock and allocates nothing: it walks `DEBUG_INFO`'s array of every G (published under
//! the scheduler lock, read here as a snapshot) and writes through a fixed buffer (`FdWriter`).

use super::{WaitReason, DEBUG_INFO, G, G_RUNNABLE, G_RUNNING, G_WAITING};
use crate::base::fatal::FdWriter;
use core::fmt::Write;
use core::sync::atomic::Ordering::Acquire;

/// Installs the SIGQUIT handler when `GOSTACK_TRACEBACK=all`. Called once at load.
pub fn init_from_env() {
    let Ok(v) = std::env::var("GOSTACK_TRACEBACK") else { return };
    match v.trim() {
        "all" => {}
        "" | "none" | "single" => return,
        other => {
            let mut w = FdWriter::stderr();
            let _ =
                writeln!(w, "gostack: GOSTACK_TRACEBACK={other:?} not understood (all or none): SIGQUIT left alone");
            return;
        }
    }
    // SAFETY: a plain sigaction installing an extern "C" handler of the SA_SIGINFO shape.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_sigquit as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGQUIT, &sa, core::ptr::null_mut());
    }
}

extern "C" fn on_sigquit(_sig: i32, _info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let mut w = FdWriter::stderr();
    let _ = writeln!(w, "SIGQUIT: quit");
    if !ctx.is_null() {
        // SAFETY: the kernel passes the interrupted context of this thread.
        let rip = unsafe { crate::arch::uc_pc(ctx as *const libc::ucontext_t) };
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) };
        let _ = writeln!(w, "PC={rip:#x} thread={tid}");
    }
    let _ = w.write_str("\n");
    write_all(&mut w);
    w.flush();
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(2) }
}

/// Every live goroutine, from `DEBUG_INFO` (no lock: see the module doc).
fn write_all(w: &mut FdWriter) {
    let base = DEBUG_INFO.allg.load(Acquire);
    let n = DEBUG_INFO.nallg.load(Acquire);
    for i in 0..n {
        // SAFETY: allg's buffer holds n published G pointers; G records are never freed (a buffer
        // replaced by a push stays readable: the Vec's old allocation may have been freed, which
        // is the risk every crash-time dump takes; Go's does the same).
        let g = unsafe { *base.add(i) };
        if !g.is_null() {
            // SAFETY: as above.
            write_goroutine(w, unsafe { &*g });
        }
    }
}

/// One goroutine the way `gs_dump` writes it: `goroutine N [state]:` and its stack, name, thread.
/// False for a goroutine that is not alive (idle or dead records are skipped).
pub fn write_goroutine(w: &mut FdWriter, g: &G) -> bool {
    let state = match g.status.load(Acquire) {
        G_RUNNABLE => "runnable",
        G_RUNNING if g.waitreason == WaitReason::Syscall => "syscall", // issue #13: gs_blocking
        G_RUNNING => "running",
        G_WAITING if g.waitreason == WaitReason::None => "waiting",
        G_WAITING => g.waitreason.as_str(),
        _ => return false,
    };
    // issue #13: an fd waiter names its fd.
    if g.status.load(Acquire) == G_WAITING && g.waitreason == WaitReason::IoWait && g.waitfd >= 0 {
        let _ = writeln!(w, "goroutine {} [{}, fd {}]:", g.goid, state, g.waitfd);
    } else {
        let _ = writeln!(w, "goroutine {} [{}]:", g.goid, state);
    }
    let kind = super::copystack::kind_name(g.stack_kind);
    if g.stack.lo == 0 {
        let _ = write!(w, "\tstack=none yet ({} bytes at its first run) {}", g.growth.initial, kind);
    } else {
        let _ = write!(w, "\tstack=[{:#x}, {:#x}) {} bytes {}", g.stack.lo, g.stack.hi, g.stack.size(), kind);
        if g.stack_kind == crate::base::types::GS_STACK_COPY {
            // Where its bytes are (copystack.rs, invariant 5).
            match super::copystack::residence(g) {
                None => {
                    let _ = w.write_str(" resident");
                }
                Some(n) => {
                    let _ = write!(w, " saved {n} bytes");
                }
            }
        }
    }
    if let Some(n) = &g.name {
        let _ = w.write_str(", name \"");
        let _ = w.write_str(core::str::from_utf8(n.to_bytes()).unwrap_or("(not UTF-8)"));
        let _ = w.write_str("\"");
    }
    if !g.lockedm.is_null() {
        // SAFETY: Ms are never freed.
        let _ = write!(w, ", on thread {}", unsafe { (*g.lockedm).tid });
    }
    let _ = w.write_str("\n\n");
    true
}
