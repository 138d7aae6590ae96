//! `gs_sema`: a counting semaphore. `release` hands a unit straight to the first waiter (FIFO),
//! so a waiter cannot be overtaken by later `acquire`s.

use super::waiter::{caller, wait_in_queue, wake, Locked, WaitQueue};
use crate::base::types::*;
use crate::sched::WaitReason;
use core::ffi::c_int;

pub struct Sema {
    state: Locked<SemaState>,
}

struct SemaState {
    count: i64,
    waiters: WaitQueue,
}

// SAFETY: the queue's raw pointers are only used under the lock.
unsafe impl Send for SemaState {}

impl Sema {
    pub fn new(initial: i64) -> Sema {
        Sema { state: Locked::new(SemaState { count: initial, waiters: WaitQueue::new() }) }
    }

    pub fn try_acquire(&self) -> c_int {
        let s = self.state.lock();
        let rc = if s.count > 0 {
            s.count -= 1;
            GS_OK
        } else {
            GS_EAGAIN
        };
        // SAFETY: we hold the lock.
        unsafe { self.state.unlock() };
        rc
    }

    pub fn acquire(&self) -> c_int {
        let me = match caller() {
            Ok(g) => g,
            Err(e) => return e,
        };
        let s = self.state.lock();
        if s.count > 0 {
            s.count -= 1;
            // SAFETY: we hold the lock.
            unsafe { self.state.unlock() };
            return GS_OK;
        }
        // SAFETY: we hold the lock, which guards the queue.
        unsafe { wait_in_queue(&mut s.waiters, self.state.lock_ptr(), me, WaitReason::SemaAcquire) };
        GS_OK
    }

    pub fn release(&self) -> c_int {
        let s = self.state.lock();
        // SAFETY: lock held; a claimed waiter is valid until woken.
        unsafe {
            if let Some(w) = s.waiters.dequeue() {
                (*w).success = true;
                let ctx = (*w).ctx;
                self.state.unlock();
                wake(ctx);
                return GS_OK;
            }
            let rc = match s.count.checked_add(1) {
                Some(c) => {
                    s.count = c;
                    GS_OK
                }
                None => GS_EINVAL,
            };
            self.state.unlock();
            rc
        }
    }

    pub fn busy(&self) -> bool {
        let s = self.state.lock();
        let b = !s.waiters.is_empty();
        // SAFETY: we hold the lock.
        unsafe { self.state.unlock() };
        b
    }
}
