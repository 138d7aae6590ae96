//! The scheduler's half of a SIGSEGV/SIGBUS: the signal layer (below the scheduler, knowing
//! nothing of goroutines) asks [`on_fault`], registered at start-up, whether a fault is a guard
//! fault of the running goroutine's stack.
//!
//! - A guard fault of a GROWABLE stack is a growth request: [`grow_in_signal`] moves the stack
//!   (copy, adjust the saved registers and vector lanes) and the faulting instruction retries on
//!   the new stack. Past the goroutine's limit, and for FIXED stacks, it is fatal with Go's
//!   message. The kernel reports a signal frame that could not be pushed as SI_KERNEL with si_addr
//!   0: rsp within `KERNEL_FRAME_ROOM` of the stack's low end identifies it (the signal that
//!   needed the frame is lost; SA_ONSTACK on every handler is the real fix, src/signal).
//! - Everything here is async-signal-safe (no allocation, no lock): user code may have faulted
//!   inside malloc.

use super::grow::{grow_in_signal, jumped_guard, overflow, GrowError, KERNEL_FRAME_ROOM, REG_WINDOW_BELOW_GUARD};
use super::m::getm;
use crate::base::fatal::FdWriter;
use crate::base::types::GS_STACK_GROWABLE;
use core::fmt::Write;

/// The [`crate::signal::FaultFn`] the scheduler registers: true when the fault was a guard fault
/// of the running goroutine's stack that growth handled; false for a fault that is not ours
/// (chained); no return for a fatal one.
///
/// # Safety
/// Called by the SIGSEGV/SIGBUS handler with the kernel's arguments.
pub(super) unsafe fn on_fault(info: *mut libc::siginfo_t, uc: *mut libc::ucontext_t) -> bool {
    // SAFETY: the kernel passes valid info and ucontext pointers; the M pointer is an initial-exec TLS word and
    // M/G records are never freed, so reading them here is sound.
    unsafe {
        let addr = (*info).si_addr() as usize;
        let code = (*info).si_code;
        let rsp = crate::arch::uc_sp(uc);
        let m = getm();
        if !m.is_null() && !(*m).curg.is_null() && (*m).on_g0 == 0 {
            let gp = (*m).curg;
            let st = (*gp).stack;
            // The thread runs on the goroutine's stack (rsp may already be inside the guard, or
            // below it after a large `sub rsp`).
            let on_stack = rsp >= st.guard_lo().saturating_sub(REG_WINDOW_BELOW_GUARD) && rsp < st.hi;
            let kernel_frame = code == libc::SI_KERNEL && rsp >= st.guard_lo() && rsp < st.lo + KERNEL_FRAME_ROOM;
            if st.lo != 0 && on_stack && (st.in_guard(addr) || kernel_frame) {
                if (*gp).stack_kind == GS_STACK_GROWABLE {
                    let fault = if kernel_frame { 0 } else { addr };
                    match grow_in_signal(m, gp, uc, fault) {
                        Ok(()) => return true,
                        Err(GrowError::Limit) => {}
                        Err(GrowError::NoMemory) => {
                            let mut w = FdWriter::stderr();
                            let _ = writeln!(w, "runtime: cannot allocate a larger stack for goroutine {}", (*gp).goid);
                            drop(w);
                            crate::base::fatal::throw("out of memory")
                        }
                    }
                }
                overflow(&*gp, rsp, addr);
            }
            // A fault below the guard with the stack pointer there too: one frame (or alloca)
            // larger than the guard jumped over it, in code built without
            // -fstack-clash-protection (issue #20 item 4). Where that lands in mapped memory (a
            // neighbouring stack) nothing faults and nothing can be said; here something can.
            let below = st.guard_lo().saturating_sub(REG_WINDOW_BELOW_GUARD);
            if st.lo != 0
                && code != libc::SI_KERNEL
                && addr >= below
                && addr < st.guard_lo()
                && rsp >= below
                && rsp < st.hi
            {
                jumped_guard(&*gp, rsp, addr);
            }
        }
    }
    false
}
