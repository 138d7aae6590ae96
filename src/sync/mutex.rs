//! `gs_mutex`: a mutex that parks goroutines (or blocks foreign threads), with Go's starvation
//! rule.
//!
//! Normal mode: `unlock` releases the mutex and wakes the first waiter, which then competes
//! with goroutines arriving meanwhile (barging keeps throughput high). A waiter that loses goes
//! back to the *front* of the queue (Go's LIFO requeue), keeping its original start time.
//! Starvation: when the first waiter has waited more than 1 ms, `unlock` hands the mutex
//! directly to it (the mutex never becomes free), so no waiter can starve.

use super::home::{in_place, Place};
use super::waiter::{block, caller, wake, Locked, WaitCtx, WaitQueue, Waiter, NO_DEADLINE};
use crate::base::types::*;
use crate::sched::nanotime;
use crate::sched::WaitReason;
use core::ffi::c_int;

/// A waiter that waited longer than this gets the mutex handed over (Go's starvationThresholdNs).
pub const STARVATION_NS: i64 = 1_000_000;

pub struct Mutex {
    state: Locked<MutexState>,
}

struct MutexState {
    locked: bool,
    waiters: WaitQueue,
}

// SAFETY: the queue's raw pointers are only used under the lock.
unsafe impl Send for MutexState {}

impl Mutex {
    pub fn new() -> Mutex {
        Mutex { state: Locked::new(MutexState { locked: false, waiters: WaitQueue::new() }) }
    }

    pub fn lock(&self) -> c_int {
        let me = match caller() {
            Ok(g) => g,
            Err(e) => return e,
        };
        let mut since = 0;
        let mut requeue = false;
        loop {
            let s = self.state.lock();
            if !s.locked {
                s.locked = true;
                // SAFETY: we hold the lock.
                unsafe { self.state.unlock() };
                return GS_OK;
            }
            if since == 0 {
                since = nanotime();
            }
            // (A copy-stack goroutine keeps ctx and waiter on the heap: home.rs.)
            let handed = in_place!(P => {
                let ctx = P::put(WaitCtx::new(me, true));
                let mut w = P::put(Waiter::new(&ctx, core::ptr::null_mut(), 0));
                w.since = since;
                // SAFETY: lock held; w stays where it is until a waker dequeued it and woke us.
                unsafe {
                    if requeue {
                        s.waiters.push_front(&mut *w);
                    } else {
                        s.waiters.push_back(&mut *w);
                    }
                    block(&ctx, WaitReason::MutexLock, &[self.state.lock_ptr()], NO_DEADLINE);
                }
                w.success
            });
            if handed {
                return GS_OK; // handed over: we own the mutex
            }
            requeue = true;
        }
    }

    pub fn trylock(&self) -> c_int {
        let s = self.state.lock();
        let rc = if s.locked {
            GS_EAGAIN
        } else {
            s.locked = true;
            GS_OK
        };
        // SAFETY: we hold the lock.
        unsafe { self.state.unlock() };
        rc
    }

    pub fn unlock(&self) -> c_int {
        let s = self.state.lock();
        if !s.locked {
            // SAFETY: we hold the lock.
            unsafe { self.state.unlock() };
            return GS_ESTATE;
        }
        // SAFETY: lock held; a claimed waiter is valid until woken.
        unsafe {
            match s.waiters.dequeue() {
                Some(w) => {
                    if nanotime() - (*w).since > STARVATION_NS {
                        (*w).success = true; // hand-off: stays locked, now owned by w
                    } else {
                        (*w).success = false;
                        s.locked = false;
                    }
                    let ctx = (*w).ctx;
                    self.state.unlock();
                    wake(ctx);
                }
                None => {
                    s.locked = false;
                    self.state.unlock();
                }
            }
        }
        GS_OK
    }

    /// Locked, or goroutines/threads wait for it.
    pub fn busy(&self) -> bool {
        let s = self.state.lock();
        let b = s.locked || !s.waiters.is_empty();
        // SAFETY: we hold the lock.
        unsafe { self.state.unlock() };
        b
    }
}

impl Default for Mutex {
    fn default() -> Self {
        Self::new()
    }
}
