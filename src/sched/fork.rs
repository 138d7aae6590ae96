//! `fork()`: the child gets a runtime it can use (issue 20).
//!
//! A fork child has one thread, the one that called `fork`; the parent's worker Ms, the threads in
//! its `gs_run`/`gs_main` and every goroutine that was running on them do not exist there, but the
//! scheduler's records still said they did (the child's `gs_run` waited for ever for workers that
//! would never run). Handlers registered with `pthread_atfork` when the library loads:
//!
//! - **prepare** (parent, before the fork): takes the scheduler lock, the timer lock and the stack
//!   pool's lock, so that the child's copy of the records is consistent (no other thread is
//!   half-way through them) and no lock is owned by a thread that does not exist in the child.
//! - **parent**: releases them.
//! - **child**: [`after_fork_child`]: releases them and resets the runtime to what one thread can
//!   run.
//!
//! What the child keeps (decided, Go's rule in spirit: Go allows only exec or _exit in a fork
//! child; gostack gives the child a working runtime instead, but not the parent's goroutines):
//! 1. Every goroutine of the parent is **dropped** (status `G_ORPHAN`: never run, never shown by
//!    `gs_dump`, a later wake-up of it through a channel is ignored; records and stacks are not
//!    reclaimed), except the goroutine that called `fork`, if any: it goes on running in the child
//!    on the same P, as the only goroutine.
//! 2. No worker Ms: the calling thread's M (if it has one) is the only M; new workers start on
//!    demand as in a fresh process. Ps: all idle except the one the calling goroutine holds.
//!    The calling thread's copy-stack slots keep only the calling goroutine as a resident
//!    (copystack.rs, invariant 5).
//! 3. Timers are dropped (they belonged to dropped goroutines); deadlock detection counts the one
//!    thread.
//! 4. `fork` in a goroutine on a worker thread: the child's only thread is that worker; once its
//!    goroutines are done the child exits with status 0 (as a Go program whose main returned),
//!    instead of idling for ever. `fork` in a goroutine that is not gs_main's: gs_main returns
//!    `GS_OK` in the child (its goroutine is gone).
//!
//! Not covered: the large-stack pool's spin lock (src/stack) and a channel's lock held by another
//! thread at the fork (critical sections of a few dozen instructions): the child would spin on
//! them for ever; and a P-local structure (free G list, stack cache) half-way through a change
//! by a worker at the fork.
//!
//! Embedders (the Python adapter) need nothing: the handlers run for every `fork()` of the
//! process, `os.fork()` included; [`after_fork_child`] is the one entry point.

use super::*;

static REGISTER: std::sync::Once = std::sync::Once::new();

/// Registers the fork handlers (once; from the library constructor).
pub fn register() {
    REGISTER.call_once(|| {
        // SAFETY: plain pthread_atfork with handlers that have the C signature.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
}

extern "C" fn prepare() {
    // The guards are forgotten: the locks stay held across the fork and are released by the
    // parent and child handlers (force_unlock), which run on this same thread. The stack pool's
    // last: nothing takes the scheduler's lock while holding it.
    core::mem::forget(lock_sched());
    core::mem::forget(TIMERS.lock());
    crate::stack::fork_prepare();
}

extern "C" fn parent() {
    crate::stack::fork_release();
    // SAFETY: prepare took both locks on this thread and forgot the guards.
    unsafe {
        TIMERS.force_unlock();
        SCHED.lock.force_unlock();
    }
}

extern "C" fn child() {
    // The scheduler's and the stack pool's locks are futex words (base/futex.rs): unlocking leaves
    // them free whoever waited in the parent.
    crate::stack::fork_release();
    // SAFETY: as parent; in the child the copies are held by this thread too.
    unsafe {
        TIMERS.force_unlock();
        SCHED.lock.force_unlock();
    }
    after_fork_child();
}

/// Resets the runtime in a fork child (see the module doc). Runs automatically in every child
/// (pthread_atfork); the only thread of the process calls it, before `fork` returns there.
pub fn after_fork_child() {
    let me = getm();
    // SAFETY: our own M, if any.
    let (keep, held) = if me.is_null() { (null_mut(), null_mut()) } else { unsafe { ((*me).curg, (*me).p) } };
    super::timer::clear_after_fork();
    let mut s = lock_sched();
    // Goroutines (rule 1).
    for &g in &s.allg {
        if g == keep {
            continue;
        }
        // SAFETY: G records are never freed; no other thread exists to race with.
        let st = unsafe { &(*g).status };
        if matches!(st.load(Relaxed), G_RUNNABLE | G_RUNNING | G_WAITING) {
            st.store(G_ORPHAN, Relaxed);
        }
    }
    s.runq = GQueue::new();
    SCHED.runqsize.store(0, Relaxed);
    // Ps (rule 2).
    let n = SCHED.nprocs.load(Relaxed);
    s.pidle.clear();
    for p in SCHED.allp.iter() {
        while p.runq.get().is_some() {}
        p.live.store(0, Relaxed);
        let pp = p as *const P as *mut P;
        if pp == held {
            continue;
        }
        // SAFETY: nobody holds a P in the child but `me` (held).
        unsafe { p.local().m = null_mut() };
        if p.id() < n {
            p.status.store(P_IDLE, Relaxed);
            s.pidle.push(pp);
        } else {
            p.status.store(P_DEAD, Relaxed);
        }
    }
    s.pidle.reverse(); // pidleget pops: lowest index first, as init_once
    SCHED.npidle.store(s.pidle.len(), Relaxed);
    SCHED.nmspinning.store(0, Relaxed);
    SCHED.npwait.store(0, Relaxed);
    SCHED.live.store(if keep.is_null() { 0 } else { 1 }, Release);
    // Ms (rule 2): the others' records are dropped from the lists, not reused (their locks may
    // have been held by threads that no longer exist).
    s.allm.retain(|&m| m == me);
    s.mfree.clear();
    s.proc = ProcLocked::new();
    s.spill_from = super::NO_SPILL;
    let in_sched = !me.is_null() && {
        // SAFETY: our own M; no other thread exists.
        unsafe {
            let m = &mut *me;
            core::ptr::write(&mut m.lockedq, Mutex::new(GQueue::new()));
            // The dropped goroutines' bytes on this thread's copy-stack slots need no saving.
            copystack::after_fork(me, keep);
            m.lockedq_len.store(0, Relaxed);
            m.note.reset();
            m.nextp = null_mut();
            m.spinning.store(false, Relaxed);
            if m.is_worker {
                // Rule 4: leave the scheduler (and then the process) once the goroutines are done.
                m.is_worker = false;
                m.forked_worker = true;
            }
            let mw = m.main_wait;
            if !mw.is_null() && (keep.is_null() || (*keep).main_wait != mw) {
                (*mw).done.store(true, Release);
            }
            m.in_scheduler
        }
    };
    drop(s);
    // Rule 3.
    reset_thread_counts(in_sched as i64);
    threads::reset_after_fork();
    reset_monitor_after_fork();
    // issue #13: the parent's epoll instance and blocking calls.
    super::netpoll::after_fork_child();
    super::syscall::after_fork_child();
}
