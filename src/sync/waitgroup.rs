//! `gs_waitgroup`: Go's sync.WaitGroup. `add` that would make the counter negative is refused
//! (`GS_EINVAL`, counter unchanged) where Go panics; the counter reaching zero wakes every waiter.

use super::waiter::{caller, wait_in_queue, wake, Locked, WaitCtx, WaitQueue};
use crate::base::types::*;
use crate::sched::WaitReason;
use core::ffi::c_int;

pub struct WaitGroup {
    state: Locked<WgState>,
}

struct WgState {
    counter: i64,
    waiters: WaitQueue,
}

// SAFETY: the queue's raw pointers are only used under the lock.
unsafe impl Send for WgState {}

impl WaitGroup {
    pub fn new() -> WaitGroup {
        WaitGroup { state: Locked::new(WgState { counter: 0, waiters: WaitQueue::new() }) }
    }

    pub fn add(&self, delta: i64) -> c_int {
        let s = self.state.lock();
        let n = match s.counter.checked_add(delta) {
            Some(n) if n >= 0 => n,
            _ => {
                // SAFETY: we hold the lock.
                unsafe { self.state.unlock() };
                return GS_EINVAL;
            }
        };
        s.counter = n;
        let mut woken: Vec<*const WaitCtx> = Vec::new();
        // SAFETY: lock held; claimed waiters stay valid until woken.
        unsafe {
            if n == 0 {
                while let Some(w) = s.waiters.dequeue() {
                    (*w).success = true;
                    woken.push((*w).ctx);
                }
            }
            self.state.unlock();
            for c in woken {
                wake(c);
            }
        }
        GS_OK
    }

    pub fn wait(&self) -> c_int {
        let me = match caller() {
            Ok(g) => g,
            Err(e) => return e,
        };
        let s = self.state.lock();
        if s.counter == 0 {
            // SAFETY: we hold the lock.
            unsafe { self.state.unlock() };
            return GS_OK;
        }
        // SAFETY: we hold the lock, which guards the queue.
        unsafe { wait_in_queue(&mut s.waiters, self.state.lock_ptr(), me, WaitReason::WaitGroupWait) };
        GS_OK
    }

    pub fn busy(&self) -> bool {
        let s = self.state.lock();
        let b = !s.waiters.is_empty();
        // SAFETY: we hold the lock.
        unsafe { self.state.unlock() };
        b
    }
}

impl Default for WaitGroup {
    fn default() -> Self {
        Self::new()
    }
}
