//! The runtime's spin lock: the lowest layer's lock, used by the stack pools (which the growth
//! signal handler may try-lock) and by every wait queue of the sync layer.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering::*};

/// The lock of every queue: a test-and-test-and-set spin lock. Critical sections are a few
/// dozen instructions and never block, so spinning is cheap, and unlocking is a plain release
/// store (parking_lot's RawMutex needs a second atomic read-modify-write to unlock, which cost
/// ~10% of an unbuffered round trip). It can be released from g0 after the goroutine that took
/// it parked (a guard object could not cross the switch). A waiter that spins long (its holder
/// was preempted, e.g. a host thread) yields its OS thread.
pub struct Lock {
    held: AtomicBool,
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl Lock {
    /// An unlocked lock.
    pub const fn new() -> Lock {
        Lock { held: AtomicBool::new(false) }
    }

    #[inline]
    pub fn lock(&self) {
        if !self.held.swap(true, Acquire) {
            return;
        }
        self.lock_slow();
    }

    /// Takes the lock if it is free, without waiting (usable in a signal handler).
    #[inline]
    pub fn try_lock(&self) -> bool {
        !self.held.load(Relaxed) && !self.held.swap(true, Acquire)
    }

    #[cold]
    fn lock_slow(&self) {
        let mut wait = SpinWait::new(200);
        loop {
            while self.held.load(Relaxed) {
                wait.pause();
            }
            if !self.held.swap(true, Acquire) {
                return;
            }
        }
    }

    /// # Safety
    /// The caller holds the lock.
    #[inline]
    pub unsafe fn unlock(&self) {
        self.held.store(false, Release);
    }

    /// The lock's byte (1 = held): storing 0 releases it (see sched::park::park_handoff).
    pub fn byte_ptr(&self) -> *mut u8 {
        self.held.as_ptr().cast()
    }
}

/// A value guarded by a [`Lock`] that is taken and released explicitly (so it can be released
/// on g0 by a park).
pub struct Locked<T> {
    pub lock: Lock,
    inner: UnsafeCell<T>,
}

// SAFETY: the inner value is only reached through `get` under the lock.
unsafe impl<T: Send> Sync for Locked<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Locked<T> {}

impl<T> Locked<T> {
    pub const fn new(v: T) -> Self {
        Locked { lock: Lock::new(), inner: UnsafeCell::new(v) }
    }

    /// Takes the lock and returns the value.
    #[allow(clippy::mut_from_ref)]
    pub fn lock(&self) -> &mut T {
        self.lock.lock();
        // SAFETY: we hold the lock until `unlock`.
        unsafe { &mut *self.inner.get() }
    }

    /// # Safety
    /// The caller holds the lock and drops every reference obtained from `lock`.
    pub unsafe fn unlock(&self) {
        // SAFETY: per the contract.
        unsafe { self.lock.unlock() }
    }

    /// Takes the lock if it is free and returns the value; None if it is held.
    #[allow(clippy::mut_from_ref)]
    pub fn try_lock(&self) -> Option<&mut T> {
        // SAFETY: we hold the lock until `unlock`.
        self.lock.try_lock().then(|| unsafe { &mut *self.inner.get() })
    }

    /// The value, for a caller that already holds the lock.
    ///
    /// # Safety
    /// The caller holds the lock.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut T {
        // SAFETY: per the contract.
        unsafe { &mut *self.inner.get() }
    }

    pub fn lock_ptr(&self) -> *const Lock {
        &self.lock
    }
}

/// Waiting for another thread's short step (a lock holder's critical section, a timer callback's
/// last access): spin `limit` times, then give the CPU away on each further look.
pub struct SpinWait {
    spins: u32,
    limit: u32,
}

impl SpinWait {
    pub const fn new(limit: u32) -> Self {
        SpinWait { spins: 0, limit }
    }

    /// One wait between two looks.
    #[inline]
    pub fn pause(&mut self) {
        self.spins += 1;
        if self.spins < self.limit {
            core::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}
