//! Waiters (Go's `sudog`) and the one wake-up protocol every primitive of `sync` uses.
//!
//! ```text
//!   blocking call (goroutine stack, or a foreign thread's stack)
//!   +-----------------------------+        queue of a channel / mutex / ...
//!   | WaitCtx  state: WAITING     |<--ctx--  Waiter (elem, index, success) <-> Waiter <-> ...
//!   |          g or thread        |<--ctx--  Waiter (another select case)
//!   |          fired: *Waiter     |
//!   +-----------------------------+
//! ```
//!
//! Protocol (invariants):
//! 1. A waiter is put on a queue, and taken off it, only under that queue's lock (`queued` says
//!    whether it is on it).
//! 2. Whoever wants to complete a waiter (a channel operation, `close`, an unlock, a timer, a
//!    thread's own timeout) must first win `WaitCtx::state` WAITING -> CLAIMED with a CAS. Exactly
//!    one party wins per blocking call, so a select completed by two channels at once, or a
//!    wake-up racing a timeout, has one outcome. A loser skips the waiter (it may unlink it).
//! 3. The winner records the outcome (`fired`, `Waiter::success`, the copied element) under the
//!    queue lock, releases the lock and only then wakes the owner ([`wake`]): `sched::ready(g)`
//!    or, for a thread, the `woken` flag plus `unpark`.
//! 4. The owner's `WaitCtx` and `Waiter`s live in the blocking call's frame; nobody touches them
//!    after waking the owner. A goroutine's waiters become visible only when its park's unlock
//!    function releases the queue locks on g0, after the goroutine is saved and WAITING, so
//!    `ready` never sees a goroutine that is still running.
//! 5. A timer (timed waits of goroutines) holds a pointer to the `WaitCtx`: it marks
//!    `timer_busy = 0` as its last access to it; an owner whose `timer_del` comes too late waits
//!    for that before its frame goes away.

use crate::base::lock::SpinWait;
pub use crate::base::lock::{Lock, Locked};
use crate::base::types::{GS_ESTATE, GS_OK};
use crate::sched::{self, WaitReason, Where, G};
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};

const WAITING: u32 = 0;
const CLAIMED: u32 = 1;

/// One blocking call: who waits and what ended the wait.
pub struct WaitCtx {
    state: AtomicU32,
    /// No other party can compete for this wait (one queue, no timeout): whoever holds the
    /// queue lock may complete it without the CAS (Go's non-select sudogs).
    exclusive: bool,
    /// True for a thread outside goroutines (set before the waiters become visible).
    is_thread: AtomicBool,
    /// The parked goroutine: set by the park's commit on g0, before the waiters become visible.
    g: AtomicPtr<G>,
    /// The blocked thread (thread waiters only); written only before the waiters are visible.
    thread: UnsafeCell<Option<std::thread::Thread>>,
    /// Thread waiters: set by the winner after recording the outcome.
    woken: AtomicU32,
    /// The waiter that fired (set by the winner); null after a timeout.
    fired: AtomicPtr<Waiter>,
    /// 1 while an armed timer may still touch this record.
    timer_busy: AtomicU32,
    timer_id: AtomicU64,
    /// Thread waiters: the thread stopped counting as a possible waker while blocked (see
    /// sched::ext_block); whoever ends the wait counts it again, before the wake-up, so the
    /// deadlock detector never sees a woken thread as blocked.
    ext_blocked: AtomicBool,
}

impl WaitCtx {
    /// A record for the caller `who` (from [`caller`]). `exclusive`: the wait has a single
    /// waiter and no deadline, so only the holder of its queue's lock can complete it.
    pub fn new(who: Caller, exclusive: bool) -> WaitCtx {
        let is_thread = matches!(who, Caller::Thread);
        WaitCtx {
            state: AtomicU32::new(WAITING),
            exclusive,
            is_thread: AtomicBool::new(is_thread),
            g: AtomicPtr::new(null_mut()),
            ext_blocked: AtomicBool::new(false),
            thread: UnsafeCell::new(if is_thread { Some(std::thread::current()) } else { None }),
            woken: AtomicU32::new(0),
            fired: AtomicPtr::new(null_mut()),
            timer_busy: AtomicU32::new(0),
            timer_id: AtomicU64::new(0),
        }
    }

    /// The waiter that fired, null if the wait timed out. Valid once [`block`] returned.
    pub fn fired(&self) -> *mut Waiter {
        self.fired.load(Acquire)
    }
}

/// One queued interest of a blocking call (Go's sudog): lives in the caller's frame.
#[derive(Clone, Copy)]
pub struct Waiter {
    pub ctx: *const WaitCtx,
    /// Element to send from / receive into (channels); may be null.
    pub elem: *mut u8,
    next: *mut Waiter,
    prev: *mut Waiter,
    /// On a queue (under that queue's lock).
    pub queued: bool,
    /// Set by the winner: true when the operation completed (value moved, lock handed over),
    /// false when it ended for another reason (the channel was closed, a mutex woke us to compete).
    pub success: bool,
    /// The select case this waiter stands for.
    pub index: u32,
    /// When the owner started waiting (mutex starvation), nanotime.
    pub since: i64,
}

impl Waiter {
    pub const EMPTY: Waiter = Waiter {
        ctx: core::ptr::null(),
        elem: null_mut(),
        next: null_mut(),
        prev: null_mut(),
        queued: false,
        success: false,
        index: 0,
        since: 0,
    };

    pub fn new(ctx: &WaitCtx, elem: *mut u8, index: u32) -> Waiter {
        Waiter { ctx, elem, index, ..Waiter::EMPTY }
    }
}

/// A FIFO of waiters (intrusive doubly linked list), guarded by its owner's lock.
pub struct WaitQueue {
    first: *mut Waiter,
    last: *mut Waiter,
}

impl WaitQueue {
    pub const fn new() -> Self {
        WaitQueue { first: null_mut(), last: null_mut() }
    }

    /// True when no waiter is queued (claimed waiters whose owner has not yet unlinked itself
    /// still count: their owner will touch the queue again).
    pub fn is_empty(&self) -> bool {
        self.first.is_null()
    }

    /// # Safety
    /// The queue's lock is held; `w` is valid, not queued, and stays valid until unlinked.
    pub unsafe fn push_back(&mut self, w: *mut Waiter) {
        // SAFETY: per the contract; the list's nodes are valid while queued.
        unsafe {
            (*w).next = null_mut();
            (*w).prev = self.last;
            if self.last.is_null() {
                self.first = w;
            } else {
                (*self.last).next = w;
            }
            self.last = w;
            (*w).queued = true;
        }
    }

    /// # Safety
    /// As [`push_back`](Self::push_back).
    pub unsafe fn push_front(&mut self, w: *mut Waiter) {
        // SAFETY: per the contract.
        unsafe {
            (*w).prev = null_mut();
            (*w).next = self.first;
            if self.first.is_null() {
                self.last = w;
            } else {
                (*self.first).prev = w;
            }
            self.first = w;
            (*w).queued = true;
        }
    }

    /// Unlinks `w` if it is queued here.
    ///
    /// # Safety
    /// The queue's lock is held; `w` is valid and, if `queued`, on this queue.
    #[inline]
    pub unsafe fn remove(&mut self, w: *mut Waiter) {
        // SAFETY: per the contract.
        unsafe {
            if !(*w).queued {
                return;
            }
            let (p, n) = ((*w).prev, (*w).next);
            if p.is_null() {
                self.first = n;
            } else {
                (*p).next = n;
            }
            if n.is_null() {
                self.last = p;
            } else {
                (*n).prev = p;
            }
            (*w).next = null_mut();
            (*w).prev = null_mut();
            (*w).queued = false;
        }
    }

    /// The first waiter, not claimed (may still be claimed by someone else later).
    pub fn peek(&self) -> *mut Waiter {
        self.first
    }

    /// Takes the first waiter whose owner this call manages to claim (Go's dequeue with the
    /// selectDone CAS); waiters already claimed by someone else are unlinked and skipped. The
    /// caller must record the outcome and then [`wake`] the returned waiter's ctx after
    /// releasing the lock.
    ///
    /// # Safety
    /// The queue's lock is held.
    #[inline]
    pub unsafe fn dequeue(&mut self) -> Option<*mut Waiter> {
        loop {
            let w = self.first;
            if w.is_null() {
                return None;
            }
            // SAFETY: queued waiters are valid (invariant 4 of the module doc).
            unsafe {
                self.remove(w);
                if claim(w) {
                    return Some(w);
                }
            }
        }
    }
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// Tries to win `w`'s wait; on success records `w` as the one that fired.
///
/// # Safety
/// `w` is a valid waiter whose ctx is valid (its queue lock held, or it is our own).
#[inline]
unsafe fn claim(w: *mut Waiter) -> bool {
    // SAFETY: per the contract.
    unsafe {
        let ctx = &*(*w).ctx;
        if ctx.exclusive {
            // Nobody else can see this wait without our lock: no race to resolve.
            ctx.state.store(CLAIMED, Relaxed);
            ctx.fired.store(w, Release);
            true
        } else if ctx.state.compare_exchange(WAITING, CLAIMED, AcqRel, Acquire).is_ok() {
            ctx.fired.store(w, Release);
            true
        } else {
            false
        }
    }
}

/// Wakes the owner of a claimed wait. Call after releasing the queue lock; `ctx` must not be
/// touched afterwards by the caller.
///
/// # Safety
/// `ctx` was claimed by the caller (through [`WaitQueue::dequeue`]) and not yet woken.
#[inline(always)]
pub unsafe fn wake(ctx: *const WaitCtx) {
    // SAFETY: the owner cannot return before this wake-up, so ctx is valid until the last line.
    unsafe {
        let c = &*ctx;
        if !c.is_thread.load(Relaxed) {
            sched::ready(c.g.load(Relaxed));
        } else {
            wake_thread(ctx);
        }
    }
}

/// [`wake`] for a thread waiter.
///
/// # Safety
/// As [`wake`], the waiter being a thread.
#[inline(never)]
unsafe fn wake_thread(ctx: *const WaitCtx) {
    // SAFETY: as wake.
    unsafe {
        let c = &*ctx;
        let t = (*c.thread.get()).clone().expect("thread waiter without a thread");
        if c.ext_blocked.swap(false, AcqRel) {
            sched::ext_unblock_other();
        }
        c.woken.store(1, Release);
        // ctx may be gone from here on.
        t.unpark();
    }
}

/// Who is about to block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Caller {
    /// A goroutine on its own stack: it parks.
    Goroutine,
    /// A thread outside goroutines: it blocks itself.
    Thread,
}

/// The caller as a waiter; `GS_ESTATE` inside a `gs_systemstack` function (the goroutine's
/// stack is in use below us, it cannot park).
#[inline]
pub fn caller() -> Result<Caller, c_int> {
    // Fast path: the scheduler publishes the running goroutine's stack guard in %fs:0x70 and
    // keeps it 0 outside goroutines and inside gs_systemstack (see GS_STACK_CHECK), which
    // spares a thread-local lookup (a __tls_get_addr call in this shared library).
    let guard = crate::arch::tls_stack_guard();
    if guard != 0 {
        // (A host thread that set the slot itself is caught in `block`.) Secure the stack the
        // blocking call needs now: its waiters, once queued, must not move with a guard-fault
        // growth (the queues would point into the old stack).
        crate::sched::grow::secure_stack_below(guard, crate::sched::grow::RUNTIME_ENTRY_STACK);
        return Ok(Caller::Goroutine);
    }
    match sched::whereami() {
        Where::Goroutine(..) => {
            crate::sched::grow::secure_stack(crate::sched::grow::RUNTIME_ENTRY_STACK);
            Ok(Caller::Goroutine)
        }
        Where::Outside => Ok(Caller::Thread),
        Where::SystemStack => Err(GS_ESTATE),
    }
}

/// Locks `locks` in order.
///
/// # Safety
/// Every pointer is a valid lock; the slice is in the global lock order without duplicates.
pub unsafe fn lock_all(locks: &[*const Lock]) {
    for &l in locks {
        // SAFETY: per the contract.
        unsafe { (*l).lock() };
    }
}

/// Unlocks `n` locks read from `locks`, never reading the array after releasing the lock
/// that may let the array's owner (a parked goroutine) resume and reuse its stack.
///
/// # Safety
/// The caller holds every lock; `locks[..n]` is readable until the first unlock.
unsafe fn unlock_seq(locks: *const *const Lock, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: per the contract; each next pointer is read before the current lock is released.
    unsafe {
        let mut cur = *locks;
        for i in 1..n {
            let next = *locks.add(i);
            (*cur).unlock();
            cur = next;
        }
        (*cur).unlock();
    }
}

/// Unlocks `locks` (the caller holds them).
///
/// # Safety
/// As [`unlock_seq`].
pub unsafe fn unlock_all(locks: &[*const Lock]) {
    // SAFETY: per the contract.
    unsafe { unlock_seq(locks.as_ptr(), locks.len()) }
}

/// No deadline.
pub const NO_DEADLINE: i64 = i64::MIN;

struct ParkArg {
    ctx: *const WaitCtx,
    locks: *const *const Lock,
    n: usize,
    deadline: i64,
}

/// The park's unlock function, on g0 after the goroutine is saved and WAITING: records the G,
/// arms the timeout, then releases the queue locks (after which the goroutine may be readied at
/// once).
///
/// # Safety
/// `arg` points to the parked goroutine's `ParkArg`, whose locks are held by this M.
unsafe fn park_commit(g: *mut G, arg: *mut c_void) -> bool {
    // SAFETY: arg is the ParkArg in the parked goroutine's frame; every field is read before the
    // first unlock (after it the goroutine may resume and the frame may change).
    unsafe {
        let a = &*(arg as *const ParkArg);
        let (ctx, locks, n, deadline) = (a.ctx, a.locks, a.n, a.deadline);
        (*ctx).g.store(g, Relaxed);
        if deadline != NO_DEADLINE {
            (*ctx).timer_busy.store(1, Relaxed);
            let id = sched::timer_add(deadline, timeout_fire, ctx as usize, 0);
            (*ctx).timer_id.store(id, Release);
        }
        unlock_seq(locks, n);
    }
    true
}

/// Timer callback of a timed goroutine wait: claims the wait (if nobody did) and readies it.
///
/// # Safety
/// `arg` is the `WaitCtx` given to `timer_add` by `park_commit`; its owner keeps it alive while
/// `timer_busy` is 1.
unsafe fn timeout_fire(arg: usize, _seq: u64) {
    let ctx = arg as *const WaitCtx;
    // SAFETY: the owner does not leave its frame while timer_busy is 1 (invariant 5).
    unsafe {
        let g = (*ctx).g.load(Relaxed);
        let won = (*ctx).state.compare_exchange(WAITING, CLAIMED, AcqRel, Acquire).is_ok();
        (*ctx).timer_busy.store(0, Release);
        if won {
            // Tail, like gs_sleep: timeouts expiring in one pass wake in deadline order.
            sched::ready_with(g, false);
        }
    }
}

/// Queues the caller (`me`) at the back of `queue` and blocks it, without deadline, until a waker
/// dequeues and wakes it (Go's semacquire shape: one queue, one exclusive wait). On entry the
/// caller holds `lock`, which guards `queue`; it is released on return.
///
/// # Safety
/// `lock` is held and guards `queue`.
pub unsafe fn wait_in_queue(queue: &mut WaitQueue, lock: *const Lock, me: Caller, reason: WaitReason) {
    // (A copy-stack goroutine keeps ctx and waiter on the heap: home.rs.)
    use super::home::Place;
    super::home::in_place!(P => {
        let ctx = P::put(WaitCtx::new(me, true));
        let mut w = P::put(Waiter::new(&ctx, core::ptr::null_mut(), 0));
        // SAFETY: lock held; w stays where it is until a waker dequeued it and woke us.
        unsafe {
            queue.push_back(&mut *w);
            block(&ctx, reason, &[lock], NO_DEADLINE);
        }
    })
}

/// Blocks the caller until its wait is claimed and it is woken, or `deadline` (nanotime;
/// [`NO_DEADLINE`] for none) passes. On entry the caller holds `locks` (the locks of every queue
/// its waiters are on, in lock order) and its waiters are queued; on return the locks are
/// released. `ctx.fired()` is then the waiter that fired, or null after a timeout, in which case
/// the caller's waiters may still be queued and the caller must unlink them under the locks.
///
/// # Safety
/// `ctx` was made by [`WaitCtx::new`] for the calling goroutine or thread (see [`caller`]);
/// the locks are held; `reason` is shown by dumps. An `exclusive` ctx has no deadline.
#[inline(always)]
pub unsafe fn block(ctx: &WaitCtx, reason: WaitReason, locks: &[*const Lock], deadline: i64) {
    debug_assert!(!(ctx.exclusive && deadline != NO_DEADLINE));
    if !ctx.is_thread.load(Relaxed)
        && deadline == NO_DEADLINE
        && locks.len() == 1
        // SAFETY: a goroutine (caller() secured its stack) holding the one lock of its queue.
        && unsafe { sched::park_handoff(reason, &ctx.g, (*locks[0]).byte_ptr()) }
    {
        return;
    }
    // SAFETY: per the contract.
    unsafe { block_slow(ctx, reason, locks, deadline) }
}

/// [`block`] through the scheduler (a timed wait, several locks, anything `park_handoff`
/// declines) or as a thread.
///
/// # Safety
/// As [`block`].
#[inline(never)]
unsafe fn block_slow(ctx: &WaitCtx, reason: WaitReason, locks: &[*const Lock], deadline: i64) {
    if !ctx.is_thread.load(Relaxed) {
        let arg = ParkArg { ctx, locks: locks.as_ptr(), n: locks.len(), deadline };
        // SAFETY: park_commit releases the locks on g0 and touches nothing of ours after that.
        let rc = unsafe { sched::park(reason, Some(park_commit), &arg as *const ParkArg as *mut c_void) };
        if rc != GS_OK {
            // caller()'s fast path was wrong (a thread that set %fs:0x70 itself, e.g. C code
            // built with -fsplit-stack): park did nothing and we still hold the locks, so no
            // waker has seen ctx yet. Wait as the thread we are.
            // SAFETY: nobody else can read these fields before we release the locks.
            unsafe { *ctx.thread.get() = Some(std::thread::current()) };
            ctx.is_thread.store(true, Relaxed);
            // SAFETY: the caller's contract, unchanged.
            return unsafe { block_slow(ctx, reason, locks, deadline) };
        }
        if deadline != NO_DEADLINE && !sched::timer_del(ctx.timer_id.load(Acquire)) {
            // The timer fired (or is firing on another M): wait until it let go of ctx.
            let mut wait = SpinWait::new(1000);
            while ctx.timer_busy.load(Acquire) != 0 {
                wait.pause();
            }
        }
        return;
    }
    // A thread outside goroutines: block the thread itself. While blocked it cannot wake any
    // goroutine, which the deadlock detector needs to know.
    struct Blocked<'a>(&'a AtomicBool);
    impl Drop for Blocked<'_> {
        fn drop(&mut self) {
            // A timeout ends the wait without a waker: count ourselves again.
            if self.0.swap(false, AcqRel) {
                sched::ext_unblock_other();
            }
        }
    }
    // Only an untimed wait makes the thread unable to wake anyone for good.
    if deadline == NO_DEADLINE {
        ctx.ext_blocked.store(sched::ext_block(), Release);
    }
    let _blocked = Blocked(&ctx.ext_blocked);
    // SAFETY: the caller holds the locks.
    unsafe { unlock_all(locks) };
    let mut deadline = deadline;
    while ctx.woken.load(Acquire) == 0 {
        if deadline == NO_DEADLINE {
            std::thread::park();
            continue;
        }
        let now = sched::nanotime();
        if now >= deadline {
            if ctx.state.compare_exchange(WAITING, CLAIMED, AcqRel, Acquire).is_ok() {
                return; // timed out: fired stays null
            }
            // Someone claimed us just now: wait for their wake-up.
            deadline = NO_DEADLINE;
            continue;
        }
        std::thread::park_timeout(std::time::Duration::from_nanos((deadline - now) as u64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_fifo_and_remove() {
        let ctxs: Vec<WaitCtx> = (0..4).map(|_| WaitCtx::new(Caller::Thread, false)).collect();
        let mut ws: Vec<Waiter> = ctxs.iter().enumerate().map(|(i, c)| Waiter::new(c, null_mut(), i as u32)).collect();
        let mut q = WaitQueue::new();
        let p = ws.as_mut_ptr();
        // SAFETY: the waiters outlive the queue operations; single-threaded.
        unsafe {
            for i in 0..4 {
                q.push_back(p.add(i));
            }
            q.remove(p.add(1));
            assert!(!(*p.add(1)).queued);
            q.remove(p.add(1)); // not queued: no-op
                                // Waiter 2's owner was claimed elsewhere (e.g. its select fired on another channel).
            assert!(claim(p.add(2)));
            let a = q.dequeue().unwrap();
            assert_eq!((*a).index, 0);
            let b = q.dequeue().unwrap();
            assert_eq!((*b).index, 3, "claimed waiter 2 is skipped");
            assert!(!(*p.add(2)).queued, "skipped waiters are unlinked");
            assert!(q.dequeue().is_none());
            assert!(q.is_empty());
            q.push_front(p.add(1));
            assert_eq!(q.peek(), p.add(1));
        }
    }

    #[test]
    fn claim_once() {
        let c = WaitCtx::new(Caller::Thread, false);
        let mut a = Waiter::new(&c, null_mut(), 0);
        let mut b = Waiter::new(&c, null_mut(), 1);
        // SAFETY: local waiters.
        unsafe {
            assert!(claim(&mut a));
            assert!(!claim(&mut b), "one winner per wait");
        }
        assert_eq!(c.fired(), &mut a as *mut Waiter);
    }

    #[test]
    fn thread_wake_and_timeout() {
        // A thread waiter woken by another thread.
        let lock = Locked::new(WaitQueue::new());
        let c = WaitCtx::new(Caller::Thread, false);
        let mut w = Waiter::new(&c, null_mut(), 7);
        let q = lock.lock();
        // SAFETY: w outlives the wait (block returns only after the wake-up).
        unsafe { q.push_back(&mut w) };
        let lp = &lock as *const Locked<WaitQueue> as usize;
        let h = std::thread::spawn(move || {
            // SAFETY: the main thread waits on this lock's queue until we wake it.
            let l = unsafe { &*(lp as *const Locked<WaitQueue>) };
            let q = l.lock();
            // SAFETY: lock held.
            let got = unsafe { q.dequeue() }.unwrap();
            // SAFETY: lock held; then wake after unlocking.
            unsafe {
                (*got).success = true;
                l.unlock();
                wake((*got).ctx);
            }
        });
        // SAFETY: we hold the lock, our waiter is queued.
        unsafe { block(&c, WaitReason::Test, &[lock.lock_ptr()], NO_DEADLINE) };
        h.join().unwrap();
        assert_eq!(c.fired(), &mut w as *mut Waiter);
        assert!(w.success);

        // A thread waiter timing out.
        let c = WaitCtx::new(Caller::Thread, false);
        let mut w = Waiter::new(&c, null_mut(), 0);
        let q = lock.lock();
        // SAFETY: as above.
        unsafe { q.push_back(&mut w) };
        let t0 = sched::nanotime();
        // SAFETY: as above.
        unsafe { block(&c, WaitReason::Test, &[lock.lock_ptr()], t0 + 2_000_000) };
        assert!(sched::nanotime() - t0 >= 2_000_000);
        assert!(c.fired().is_null());
        let q = lock.lock();
        // SAFETY: lock held.
        unsafe {
            assert!(w.queued);
            q.remove(&mut w);
            lock.unlock();
        }
    }
}
