//! Switching away from a running goroutine and back (Go's gopark/goready/Gosched): `mcall`,
//! `yield_now`, `park`/`ready`, `execute` (the one way a saved goroutine is resumed), and the
//! hand-offs that switch goroutine to goroutine without g0.

use super::copystack;
use super::g::{WaitReason, G, G_ORPHAN, G_RUNNABLE, G_RUNNING, G_WAITING};
use super::grow;
use super::m::{getm, M};
use super::p::{behind_global, ready_any, runqput, P};
use super::sanitizer;
use super::schedule::{handoff_start, schedule};
use super::spawn::{first_run, goexit0};
use super::SCHED;
use crate::arch;
use crate::arch::RawFn;
use crate::base::fatal::fatal;
use crate::base::types::*;
use core::ffi::c_int;
use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, Ordering::*};

/// Called on g0 after a goroutine parked (its context is saved, its status WAITING): releases
/// whatever lock the parking code held. Returning false resumes the goroutine at once.
pub type UnlockFn = unsafe fn(g: *mut G, lock: *mut c_void) -> bool;

/// Go's mcall: save the running G `g` and run `f(g)` on g0. Returns when `g` is resumed.
///
/// # Safety
/// Called on `g`'s stack, `m` is this thread's M with `m.curg == g`.
#[inline(always)]
pub(crate) unsafe fn mcall(m: *mut M, g: *mut G, f: RawFn) {
    // SAFETY: per the contract; the Gobuf outlives the switch (G records are never freed).
    unsafe {
        if sanitizer::any() {
            sanitizer::leave_g_for_g0(m, g, f as usize == goexit0 as *const () as usize);
        }
        arch::gs_asm_mcall(&mut (*g).sched.sp, (*m).g0_base, f, g.cast());
        sanitizer::enter_g(g);
    }
}

/// Where the calling code stands, for the API's argument checks.
pub enum Where {
    /// On a goroutine's own stack.
    Goroutine(*mut M, *mut G),
    /// Inside a gs_systemstack function called from a goroutine.
    SystemStack,
    /// On a thread outside any goroutine.
    Outside,
}

#[inline]
pub fn whereami() -> Where {
    let m = getm();
    if m.is_null() {
        return Where::Outside;
    }
    // SAFETY: our own M.
    unsafe {
        if (*m).curg.is_null() {
            Where::Outside
        } else if (*m).on_g0 != 0 {
            Where::SystemStack
        } else {
            Where::Goroutine(m, (*m).curg)
        }
    }
}

/// gs_yield: Go's Gosched.
#[inline(always)]
pub fn yield_now() -> c_int {
    match whereami() {
        // SAFETY: we are on g's stack (gs_yield secured it) and m is ours.
        Where::Goroutine(m, g) => unsafe {
            if !yield_handoff() {
                mcall(m, g, gosched_m);
            }
            GS_OK
        },
        Where::SystemStack => GS_ESTATE,
        Where::Outside => GS_ENOTGOROUTINE,
    }
}

/// First thing every `_m` function does: note the FP control state the goroutine left loaded,
/// free the stacks it left behind when it grew in the signal handler. (A copy-stack goroutine
/// stays resident on its slot: it is evicted only when another goroutine needs the slot,
/// copystack.rs.)
///
/// # Safety
/// On g0, `g` just saved by mcall on its M.
#[inline(always)]
pub(crate) unsafe fn enter_m(g: *mut G) -> *mut M {
    // SAFETY: g was just saved by mcall on its M.
    unsafe {
        let m = (*g).m;
        sanitizer::enter_g0(m);
        (*m).fpctl = arch::frame_fpctl((*g).sched.sp);
        if !(*g).embed_hooks.is_null() {
            ((*(*g).embed_hooks).switch_out)(g);
        }
        grow::settle(m, g);
        m
    }
}

unsafe extern "C" fn gosched_m(gp: *mut c_void) {
    let g = gp as *mut G;
    // SAFETY: on g0 of the M that ran g; g is saved.
    unsafe {
        let m = enter_m(g);
        grow::shrink_at_safe_point(m, g);
        (*g).status.store(G_RUNNABLE, Relaxed);
        (*m).curg = null_mut();
        runqput(&*(*m).p, g, false);
        schedule(m)
    }
}

/// Go's gopark: parks the running goroutine with a wait reason (shown by gs_dump). Once the
/// goroutine is saved and WAITING, `unlockf(g, lock)` runs on g0; if it returns false the
/// goroutine resumes at once, else it stays parked until someone calls [`ready`] on it.
/// Returns `GS_ENOTGOROUTINE`/`GS_ESTATE` when not on a goroutine's own stack.
///
/// # Safety
/// `unlockf` must be safe to call with `lock` on g0 (no stack of the parked goroutine may be
/// assumed to stay untouched: another thread may resume it as soon as the lock is released).
pub unsafe fn park(reason: WaitReason, unlockf: Option<UnlockFn>, lock: *mut c_void) -> c_int {
    match whereami() {
        // SAFETY: on g's own stack; park_m runs on g0 and resumes g only through ready/execute.
        Where::Goroutine(m, g) => unsafe {
            (*g).waitreason = reason;
            (*m).waitunlockf = unlockf;
            (*m).waitlock = lock;
            mcall(m, g, park_m);
            GS_OK
        },
        Where::SystemStack => GS_ESTATE,
        Where::Outside => GS_ENOTGOROUTINE,
    }
}

unsafe extern "C" fn park_m(gp: *mut c_void) {
    let g = gp as *mut G;
    // SAFETY: on g0; g is saved. Status becomes WAITING before the unlock so that a ready() that
    // follows the unlock sees it.
    unsafe {
        let m = enter_m(g);
        (*g).status.store(G_WAITING, Release);
        (*m).curg = null_mut();
        if let Some(f) = (*m).waitunlockf.take() {
            let lock = core::mem::replace(&mut (*m).waitlock, null_mut());
            if !f(g, lock) {
                (*g).status.store(G_RUNNABLE, Relaxed);
                execute(m, &*(*m).p, g);
            }
        }
        schedule(m)
    }
}

/// Go's goready: makes a parked goroutine runnable; it runs next on the caller's P when the caller
/// is a goroutine (Go's runnext), else it is queued globally. Callable from any thread.
///
/// # Safety
/// `g` is a goroutine parked by [`park`] that nobody else readies.
#[inline]
pub unsafe fn ready(g: *mut G) {
    // SAFETY: per the contract.
    unsafe { ready_with(g, true) }
}

/// Like [`ready`], `next` choosing between Go's runnext (the woken goroutine runs next: channel
/// hand-offs) and the tail of the run queue (timers: several expiring in one pass keep their
/// deadline order).
///
/// # Safety
/// As [`ready`].
#[inline]
pub unsafe fn ready_with(g: *mut G, next: bool) {
    // SAFETY: g is a live G record (never freed).
    let ok = unsafe { (*g).status.compare_exchange(G_WAITING, G_RUNNABLE, AcqRel, Relaxed) };
    if let Err(st) = ok {
        if st == G_ORPHAN {
            return; // a parent's goroutine, dropped in this fork child (fork.rs)
        }
        goready_not_waiting(g, st);
    }
    // SAFETY: RUNNABLE, on no queue, ours to queue.
    unsafe { ready_any(g, next) };
}

#[cold]
#[inline(never)]
fn goready_not_waiting(g: *mut G, st: u32) -> ! {
    // SAFETY: a live G record (never freed).
    fatal!("goready: goroutine {} has status {} (not waiting)", unsafe { (*g).goid }, st);
}

/// Runs `g` on `m` (which holds `p`). Never returns.
#[inline(always)]
pub unsafe fn execute(m: *mut M, p: &P, g: *mut G) -> ! {
    // SAFETY: g was taken from a run queue: RUNNABLE and ours.
    unsafe {
        set_running(m, p, g);
        if !(*g).embed_hooks.is_null() {
            ((*(*g).embed_hooks).switch_in)(g);
        }
        if (*g).stack.lo == 0 {
            first_run(p, g);
        }
        gogo(m, g)
    }
}

/// Resumes `g`, saved and RUNNING on `m`, from m's g0 (execute, and growth's newstack_m).
///
/// # Safety
/// On m's g0; `g` is saved (`sched.sp`), has a stack, and was made m's running goroutine.
#[inline(always)]
pub(super) unsafe fn gogo(m: *mut M, g: *mut G) -> ! {
    // SAFETY: per the contract.
    unsafe {
        if copystack::is_copy(g) {
            copystack::make_resident(g);
            restored_hook(g);
        }
        let sp = take_context(g);
        sanitizer::leave_g0(m, g);
        arch::gs_asm_gogo(sp, (*m).fpctl)
    }
}

/// The resume sequence, written once: publish `g`'s stack guard in %fs:0x70 (GS_STACK_CHECK and
/// the API's entry checks read it) and take its saved context (`sched.sp`, 0 while it runs), for
/// [`gogo`] or a hand-off's switch.
///
/// # Safety
/// `g` is saved and about to run on the calling thread.
#[inline(always)]
unsafe fn take_context(g: *mut G) -> usize {
    // SAFETY: per the contract: g is ours until it runs.
    unsafe {
        arch::set_tls_stack_guard((*g).stackguard0);
        let sp = (*g).sched.sp;
        (*g).sched.sp = 0;
        sp
    }
}

/// The records' side of running `g` on `m` (which holds `p`): RUNNING, its M, its pin to that M
/// (from its first run on, unless migratable), m's current goroutine, the P's switch count. Shared
/// by `execute` and the hand-offs (park.rs: handoff_run).
///
/// # Safety
/// `g` was taken from `p`'s queue (or a hand-off's) by `m`, which holds `p`.
#[inline(always)]
pub(crate) unsafe fn set_running(m: *mut M, p: &P, g: *mut G) {
    // SAFETY: per the contract: g is ours.
    unsafe {
        (*g).status.store(G_RUNNING, Relaxed);
        (*g).m = m;
        // A copy-stack goroutine is pinned whatever it asked: its stack is this M's (copystack.rs).
        if (*g).lockedm.is_null()
            && (((*g).flags & GS_SPAWN_MIGRATABLE == 0 && !SCHED.migrate_all.load(Relaxed)) || copystack::is_copy(g))
        {
            (*g).lockedm = m;
        }
        (*m).curg = g;
        p.switches.store(p.switches.load(Relaxed) + 1, Relaxed);
        (*m).ticks.store((*m).ticks.load(Relaxed) + 1, Relaxed);
    }
}

/// The common case of a park, done without g0 and the scheduler loop (Go's gopark + schedule
/// when `runnext` holds the goroutine the parking one just woke: a channel partner, a mutex
/// hand-off). When nothing would make [`schedule`] do anything but take `runnext` (no pinned
/// goroutines queued for this M, no timer due, no time slice over, no P hand-off or resize
/// pending, no stack to settle), parks the running goroutine — status WAITING,
/// `*gslot` = it, as the park's unlock function would publish — and switches straight to
/// `runnext` with [`arch::gs_asm_park_swap`], which releases `lock` (a held wait-queue lock byte)
/// only once the goroutine is saved and the thread has left its stack. Returns true when the
/// goroutine was parked and has been resumed (by any M); false, having changed nothing, when the
/// caller must take the general path.
///
/// # Safety
/// On a goroutine's own stack, with `RUNTIME_ENTRY_STACK` secured; `lock` is held by the caller
/// and is the only lock guarding the queue its waiter is on; no deadline.
#[inline(always)] // one caller (waiter.rs block); out of line it cost 12 instructions per park (callgrind)
pub(crate) unsafe fn park_handoff(reason: WaitReason, gslot: &AtomicPtr<G>, lock: *mut u8) -> bool {
    // SAFETY: per the contract; m is this thread's M, its P and curg are ours.
    unsafe {
        let Some((m, g, pr)) = handoff_start() else { return false };
        let next = pr.runq.peek_next();
        if next.is_null() || !take_runnext(pr, next) {
            return false;
        }
        // Park g (park_m's part): visible to wakers once the lock is released.
        (*g).waitreason = reason;
        gslot.store(g, Relaxed);
        (*g).status.store(G_WAITING, Release);
        handoff_hooks(g, next);
        if copystack::in_use() && (copystack::is_copy(g) || copystack::is_copy(next)) {
            copy_handoff(m, pr, g, next, copystack::Publish::Unlock(lock));
            return true;
        }
        let sp = handoff_run(m, pr, next);
        // (No sanitizer fiber hooks: handoff_start refuses when a sanitizer is present.)
        arch::gs_asm_park_swap(&mut (*g).sched.sp, sp, lock);
        true
    }
}

/// gs_yield without g0 and the scheduler loop (Go's Gosched for the common case): under the
/// conditions of [`park_handoff`], and when the yielding goroutine has no stack to shrink and
/// one P would not queue it behind the global queue, takes the goroutine `schedule()` would run
/// (`runnext`, else the ring's head), writes the yielding one into the slot after the tail and
/// switches with [`arch::gs_asm_yield_swap`], which publishes that slot (stores the new tail)
/// only once the yielder is saved and the thread has left its stack. Returns true when the
/// goroutine yielded and has been resumed; false, having changed nothing, otherwise.
///
/// # Safety
/// On a goroutine's own stack, with `RUNTIME_ENTRY_STACK` secured.
#[inline]
pub(crate) unsafe fn yield_handoff() -> bool {
    // SAFETY: per the contract; m is this thread's M, its P and curg are ours.
    unsafe {
        let Some((m, g, pr)) = handoff_start() else { return false };
        // gosched_m shrinks a grown stack (or releases pages) at this safe point; runqput's FIFO rule puts the
        // yielder behind the global queue.
        if grow::safe_point_work(m, g) || behind_global() || !pr.runq.has_room() {
            return false;
        }
        let next = pr.runq.peek_next();
        let next = if !next.is_null() {
            if !take_runnext(pr, next) {
                return false;
            }
            next
        } else {
            let Some((h, head)) = pr.runq.peek_head() else { return false };
            if !runnable_here(head) || !pr.runq.take_head(h) {
                return false;
            }
            pr.local().next_streak = 0;
            head
        };
        // Requeue g (gosched_m's part): at the tail, published by the switch.
        (*g).status.store(G_RUNNABLE, Relaxed);
        let tail = pr.runq.prepare_tail(g);
        handoff_hooks(g, next);
        if copystack::in_use() && (copystack::is_copy(g) || copystack::is_copy(next)) {
            copy_handoff(m, pr, g, next, copystack::Publish::Tail(pr.runq.tail_ptr(), tail));
            return true;
        }
        let sp = handoff_run(m, pr, next);
        // (No sanitizer fiber hooks: handoff_start refuses when a sanitizer is present.)
        arch::gs_asm_yield_swap(&mut (*g).sched.sp, sp, pr.runq.tail_ptr(), tail);
        true
    }
}

/// The switch of [`park_handoff`] and [`yield_handoff`] when either side is a copy-stack
/// goroutine (copystack.rs, invariant 3): direct when [`copystack::handoff_ready`] got `next`'s
/// bytes in place, else through g0. `publish` is what the switch publishes once `g` is off its
/// stack (a park's lock byte, a yield's run-queue tail). Returns once `g` is resumed. Out of line,
/// so that the GROWABLE hand-offs keep the shape they had before the slots: inlined, the slot
/// tests cost them 2 instructions per yield (callgrind: register pressure around the switch).
///
/// # Safety
/// As the hand-off once it took `next`: on `g`'s stack, `m` its M holding `pr`; `publish` names
/// the held lock byte or the prepared tail.
#[inline(never)]
unsafe fn copy_handoff(m: *mut M, pr: &P, g: *mut G, next: *mut G, publish: copystack::Publish) {
    // SAFETY: per the contract.
    unsafe {
        if !copystack::handoff_ready(g, next) {
            handoff_claim(m, pr, next);
            copystack::handoff(m, g, next, publish);
            return;
        }
        if copystack::is_copy(next) {
            restored_hook(next);
        }
        let sp = handoff_run(m, pr, next);
        match publish {
            copystack::Publish::Unlock(lock) => arch::gs_asm_park_swap(&mut (*g).sched.sp, sp, lock),
            copystack::Publish::Tail(tail, v) => arch::gs_asm_yield_swap(&mut (*g).sched.sp, sp, tail, v),
        }
    }
}

/// Takes `next`, seen in `pr`'s `runnext`, for a hand-off, as `get_fair` would: when it can be
/// resumed here, the chain through `runnext` has not had its slice, and no thief took it first.
/// Counts the chain's streak.
///
/// # Safety
/// `pr` is the P of the calling thread's M; `next` is a live G record.
#[inline(always)]
unsafe fn take_runnext(pr: &P, next: *mut G) -> bool {
    // SAFETY: per the contract: pr's local part is ours.
    unsafe {
        let pl = pr.local();
        if !runnable_here(next) || !pr.runq.next_may_run(pl.next_streak) || !pr.runq.take_next(next) {
            return false;
        }
        pl.next_streak += 1;
        true
    }
}

/// Whether a queued goroutine can be resumed by a hand-off: it has a stack (not a first run).
///
/// # Safety
/// `g` is a live G record seen on this P's queue.
#[inline(always)]
unsafe fn runnable_here(g: *mut G) -> bool {
    // SAFETY: G records are never freed; this field does not change while g is queued.
    unsafe { (*g).stack.lo != 0 }
}

/// The embedding hooks of a hand-off from `g` to `next`: what `enter_m` and `execute` run on g0
/// (`switch_out`, `switch_in`) runs here, on `g`'s stack just before the switch. The hooks only
/// swap per-goroutine thread state (CPython's GIL-state slot), which nothing reads between them
/// and the switch.
///
/// # Safety
/// `g` is the running goroutine, about to be switched out for `next`, which this M now runs.
#[inline(always)]
unsafe fn handoff_hooks(g: *mut G, next: *mut G) {
    // SAFETY: per the contract; the hooks' own contract (no switch inside) holds.
    unsafe {
        if !(*g).embed_hooks.is_null() {
            ((*(*g).embed_hooks).switch_out)(g);
        }
        if !(*next).embed_hooks.is_null() {
            ((*(*next).embed_hooks).switch_in)(next);
        }
    }
}

/// The embedding's `restored` hook of a copy-stack goroutine `g` whose bytes were just put back in
/// place (or never left: resident), right before it resumes: from `gogo` on g0, or from a direct
/// copy-stack hand-off on the outgoing goroutine's stack, after [`copystack::handoff_ready`].
///
/// # Safety
/// `g` is a copy-stack goroutine resident on its slot, about to run on the calling thread.
#[inline(always)]
unsafe fn restored_hook(g: *mut G) {
    // SAFETY: per the contract; the hook's own contract (no switch inside) holds.
    unsafe {
        if !(*g).embed_hooks.is_null() {
            ((*(*g).embed_hooks).restored)(g);
        }
    }
}

/// Makes `next` (just taken from `pr`'s queue) the running goroutine of `m` (find_runnable's
/// schedule count and execute's part) and returns its saved stack pointer.
///
/// # Safety
/// `next` was taken from the queue of `pr`, which `m` holds; it has a stack.
#[inline(always)]
unsafe fn handoff_run(m: *mut M, pr: &P, next: *mut G) -> usize {
    // SAFETY: per the contract: next is ours now.
    unsafe {
        handoff_claim(m, pr, next);
        take_context(next)
    }
}

/// [`handoff_run`] but for taking the context: a hand-off through g0 (copystack::handoff) takes
/// it there, with [`gogo`].
///
/// # Safety
/// As [`handoff_run`].
#[inline(always)]
unsafe fn handoff_claim(m: *mut M, pr: &P, next: *mut G) {
    // SAFETY: per the contract: next is ours now.
    unsafe {
        let pl = pr.local();
        pl.schedtick = pl.schedtick.wrapping_add(1);
        set_running(m, pr, next);
    }
}
