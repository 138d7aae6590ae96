//! A lock and a wake-up flag, each on one futex word of its own (the scheduler's, and the stack
//! pool's).
//!
//! Why not parking_lot (used before): parking_lot keeps every waiter in one process-wide wait
//! table whose buckets are locked during each park and unpark. A `fork()` taken while another
//! thread was inside such an update leaves the child (which has only the forking thread) with a
//! bucket locked for ever, or with queue entries of threads that do not exist, and the child's
//! runtime hung on its first contended lock or wake-up (measured: about 1 fork in 50 while workers
//! were busy, c-tests/test_fork.c). Here the whole state of a lock or a note is its own word, so
//! sched/fork.rs can simply reset them in the child. Cost: the same one atomic read-modify-write
//! to lock and one to unlock on the uncontended path; contended, a futex wait/wake pair.

use core::sync::atomic::{AtomicU32, Ordering::*};

fn futex_wait(word: &AtomicU32, expected: u32, timeout_ns: Option<i64>) {
    let ts = timeout_ns.map(|ns| libc::timespec { tv_sec: ns / 1_000_000_000, tv_nsec: ns % 1_000_000_000 });
    let tsp = ts.as_ref().map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT on a word of ours; returns at once if it no longer holds `expected`.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG, expected, tsp)
    };
}

fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: FUTEX_WAKE on a word of ours.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, n) };
}

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
/// Locked, and a thread may be sleeping on the word (the unlock must wake one).
const CONTENDED: u32 = 2;

/// A futex mutex (Drepper's "Futexes are tricky", mutex 3), as a `lock_api` raw mutex.
pub struct RawLock {
    state: AtomicU32,
}

impl RawLock {
    /// Spins a little, then yields the CPU a few times (parking_lot's SpinWait: the holders' critical
    /// sections are short; sleeping in the kernel at once made a P=2 ping-pong 100x slower), then
    /// sleeps on the futex.
    #[cold]
    fn lock_slow(&self) {
        for spin in 0..10u32 {
            if self.state.load(Relaxed) == UNLOCKED
                && self.state.compare_exchange(UNLOCKED, LOCKED, Acquire, Relaxed).is_ok()
            {
                return;
            }
            if spin < 3 {
                for _ in 0..(2 << spin) {
                    core::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
        }
        while self.state.swap(CONTENDED, Acquire) != UNLOCKED {
            futex_wait(&self.state, CONTENDED, None);
        }
    }
}

// SAFETY: lock/unlock give mutual exclusion: the word goes from UNLOCKED to LOCKED/CONTENDED only
// by one winner's atomic operation, and back only by the holder's unlock.
unsafe impl lock_api::RawMutex for RawLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: RawLock = RawLock { state: AtomicU32::new(UNLOCKED) };
    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock(&self) {
        if self.state.compare_exchange(UNLOCKED, LOCKED, Acquire, Relaxed).is_err() {
            self.lock_slow();
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.state.compare_exchange(UNLOCKED, LOCKED, Acquire, Relaxed).is_ok()
    }

    #[inline]
    unsafe fn unlock(&self) {
        if self.state.swap(UNLOCKED, Release) == CONTENDED {
            futex_wake(&self.state, 1);
        }
    }
}

use parking_lot::lock_api;

/// The scheduler's mutex type.
pub type Mutex<T> = lock_api::Mutex<RawLock, T>;
pub type MutexGuard<'a, T> = lock_api::MutexGuard<'a, RawLock, T>;

const IDLE: u32 = 0;
const WOKEN: u32 = 1;
const SLEEPING: u32 = 2;
/// Sleeping somewhere else than on the futex ([`Note::sleep_in`]: the netpoller's `epoll_wait`):
/// a wake-up calls the registered break hook instead of FUTEX_WAKE.
const POLLING: u32 = 3;

/// What wakes a note's owner sleeping in [`Note::sleep_in`] (sched::netpoll registers its
/// eventfd write): a function pointer, 0 while none is registered. The lower layer calls up only
/// through this registered hook.
static POLL_BREAK: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Registers the function that interrupts a [`Note::sleep_in`] sleeper (issue #13: netpoll).
pub fn set_poll_break(f: fn()) {
    POLL_BREAK.store(f as usize, Release);
}

fn poll_break() {
    let f = POLL_BREAK.load(Acquire);
    if f != 0 {
        // SAFETY: only set_poll_break stores here, from a `fn()`.
        let f: fn() = unsafe { core::mem::transmute::<usize, fn()>(f) };
        f();
    }
}

/// A wake-up flag an M sleeps on (Go's note). Sticky: a wake-up before the sleep is not lost.
pub struct Note {
    word: AtomicU32,
}

impl Note {
    pub const fn new() -> Self {
        Note { word: AtomicU32::new(IDLE) }
    }

    pub fn wakeup(&self) {
        match self.word.swap(WOKEN, Release) {
            SLEEPING => futex_wake(&self.word, 1),
            POLLING => poll_break(),
            _ => {}
        }
    }

    /// Like [`sleep`](Self::sleep), but blocks in `block(deadline)` (the netpoller's
    /// `epoll_wait`) instead of on the futex; a [`wakeup`](Self::wakeup) meanwhile calls the
    /// registered break hook, which must make `block` return. Returns what `block` returned, or
    /// None when a wake-up was already pending (then `block` is not called).
    pub fn sleep_in<R>(&self, deadline: i64, block: impl FnOnce(i64) -> R) -> Option<R> {
        if self.word.compare_exchange(WOKEN, IDLE, Acquire, Relaxed).is_ok() {
            return None;
        }
        // IDLE, or SLEEPING left by a timed-out futex wait of ours.
        let cur = self.word.load(Relaxed);
        if cur == WOKEN || self.word.compare_exchange(cur, POLLING, Acquire, Relaxed).is_err() {
            self.word.store(IDLE, Relaxed); // woken just now: take it
            return None;
        }
        let r = block(deadline);
        self.word.swap(IDLE, Acquire); // POLLING, or WOKEN by a wake-up that broke the block
        Some(r)
    }

    /// Sleeps until woken or until `deadline` (nanotime; `i64::MAX`: none), then clears the flag.
    pub fn sleep(&self, deadline: i64) {
        loop {
            if self.word.compare_exchange(WOKEN, IDLE, Acquire, Relaxed).is_ok() {
                return;
            }
            // IDLE or SLEEPING (a timed-out futex wait of ours left it SLEEPING).
            if self.word.compare_exchange(IDLE, SLEEPING, Relaxed, Relaxed).is_err() && self.word.load(Relaxed) == WOKEN
            {
                continue;
            }
            let timeout = if deadline == i64::MAX {
                None
            } else {
                let left = deadline - super::clock::nanotime();
                if left <= 0 {
                    if self.word.compare_exchange(SLEEPING, IDLE, Relaxed, Relaxed).is_ok() {
                        return; // timed out
                    }
                    continue; // woken just now: take it
                }
                Some(left)
            };
            futex_wait(&self.word, SLEEPING, timeout);
        }
    }

    /// Fork child (fork.rs): forget any state of the parent's.
    pub(crate) fn reset(&self) {
        self.word.store(IDLE, Relaxed);
    }
}

impl Default for Note {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_sticky_timeout_and_cross_thread() {
        let n = Note::new();
        n.wakeup();
        n.sleep(i64::MAX); // sticky: returns at once
        let t0 = crate::base::clock::nanotime();
        n.sleep(t0 + 2_000_000);
        assert!(crate::base::clock::nanotime() - t0 >= 2_000_000);
        let n = std::sync::Arc::new(Note::new());
        let n2 = n.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(5));
            n2.wakeup();
        });
        n.sleep(i64::MAX);
        h.join().unwrap();
    }

    #[test]
    fn mutex_excludes() {
        static M: Mutex<u64> = Mutex::new(0);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..20_000 {
                        *M.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*M.lock(), 80_000);
    }
}
