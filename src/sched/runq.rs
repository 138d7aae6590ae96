//! Run queues: each P's local ring of 256 plus `runnext` (Go's runqput/runqget, lock-free for one
//! producer, the owning M, and any number of consumers), and the global queue, an intrusive list
//! through `G::schedlink` guarded by the scheduler lock.

use super::G;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering::*};

pub const RUNQ_SIZE: usize = 256;

/// Hand-offs through `runnext` in a row after which the ring's goroutines get their turn (see
/// [`LocalRunq::get_fair`]); Go bounds the same chain by time (runnext inherits the time slice
/// and sysmon preempts after 10 ms). At ~40 ns a hand-off this is a slice of ~10 µs.
pub const RUNNEXT_STREAK_MAX: u32 = 256;

/// A P's local run queue. Only the owning M puts; anyone may take (stealing comes with M:N).
pub struct LocalRunq {
    head: AtomicU32,
    tail: AtomicU32,
    buf: [AtomicPtr<G>; RUNQ_SIZE],
    /// A G to run next, ahead of the ring (woken goroutines go here: Go's runnext).
    runnext: AtomicPtr<G>,
}

impl LocalRunq {
    pub const fn new() -> Self {
        LocalRunq {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            buf: [const { AtomicPtr::new(null_mut()) }; RUNQ_SIZE],
            runnext: AtomicPtr::new(null_mut()),
        }
    }

    pub fn len(&self) -> usize {
        let h = self.head.load(Acquire);
        let t = self.tail.load(Acquire);
        t.wrapping_sub(h) as usize + (!self.runnext.load(Relaxed).is_null()) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Owner only. Puts `g` at the tail; returns it back if the ring is full.
    pub fn put_tail(&self, g: *mut G) -> Result<(), *mut G> {
        let h = self.head.load(Acquire);
        let t = self.tail.load(Relaxed);
        if t.wrapping_sub(h) as usize >= RUNQ_SIZE {
            return Err(g);
        }
        self.buf[t as usize % RUNQ_SIZE].store(g, Relaxed);
        self.tail.store(t.wrapping_add(1), Release);
        Ok(())
    }

    /// Owner only. Makes `g` the next to run; returns the G it displaced, if any.
    pub fn put_next(&self, g: *mut G) -> Option<*mut G> {
        let old = self.runnext.swap(g, AcqRel);
        (!old.is_null()).then_some(old)
    }

    /// Takes the next G: `runnext` first, then the ring's head.
    pub fn get(&self) -> Option<*mut G> {
        let next = self.runnext.load(Relaxed);
        if !next.is_null() && self.runnext.compare_exchange(next, null_mut(), AcqRel, Relaxed).is_ok() {
            return Some(next);
        }
        self.get_ring()
    }

    /// Like [`get`](Self::get), but once `runnext` has been taken `RUNNEXT_STREAK_MAX` times in a
    /// row (`streak`, the owner's counter) while the ring waits, the `runnext` goroutine goes to
    /// the ring's tail and the head runs: a pair of goroutines handing off to each other (a
    /// ping-pong, Go's runnext inheriting the time slice) cannot starve the rest of the queue.
    /// Owner only.
    pub fn get_fair(&self, streak: &mut u32) -> Option<*mut G> {
        let next = self.runnext.load(Relaxed);
        if !next.is_null() && self.runnext.compare_exchange(next, null_mut(), AcqRel, Relaxed).is_ok() {
            if self.next_may_run(*streak) {
                *streak += 1;
                return Some(next);
            }
            if let Err(next) = self.put_tail(next) {
                return Some(next); // a full ring: no room to wait in, run it
            }
        }
        *streak = 0;
        self.get_ring()
    }

    /// Whether `runnext` may run after `streak` hand-offs through it in a row: the chain's
    /// bound of [`get_fair`](Self::get_fair), which the scheduler's hand-offs respect too.
    #[inline(always)]
    pub fn next_may_run(&self, streak: u32) -> bool {
        streak < RUNNEXT_STREAK_MAX || self.ring_empty()
    }

    /// The `runnext` goroutine, without taking it (it may be stolen at any time).
    #[inline(always)]
    pub fn peek_next(&self) -> *mut G {
        self.runnext.load(Relaxed)
    }

    /// Takes `g` if it is still `runnext`. Owner only (no other thread puts there, so a `g`
    /// seen by [`peek_next`](Self::peek_next) cannot have been replaced by another use of it).
    #[inline(always)]
    pub fn take_next(&self, g: *mut G) -> bool {
        self.runnext.compare_exchange(g, null_mut(), AcqRel, Relaxed).is_ok()
    }

    /// The ring's head and its index, without taking it.
    #[inline(always)]
    pub fn peek_head(&self) -> Option<(u32, *mut G)> {
        let h = self.head.load(Acquire);
        let t = self.tail.load(Acquire);
        (t != h).then(|| (h, self.buf[h as usize % RUNQ_SIZE].load(Relaxed)))
    }

    /// Takes the head seen by [`peek_head`](Self::peek_head) if it is still the head. Owner only
    /// (only the owner writes slots, so the slot still holds the G that was seen).
    #[inline(always)]
    pub fn take_head(&self, h: u32) -> bool {
        self.head.compare_exchange(h, h.wrapping_add(1), AcqRel, Relaxed).is_ok()
    }

    /// Owner only: whether the ring has room for one more (stealers only ever make more).
    #[inline(always)]
    pub fn has_room(&self) -> bool {
        (self.tail.load(Relaxed).wrapping_sub(self.head.load(Acquire)) as usize) < RUNQ_SIZE
    }

    /// Owner only, with [`has_room`](Self::has_room): writes `g` into the slot after the tail and
    /// returns the tail value that publishes it, to be stored (release) into
    /// [`tail_ptr`](Self::tail_ptr) by the caller (see arch::gs_asm_yield_swap).
    #[inline(always)]
    pub fn prepare_tail(&self, g: *mut G) -> u32 {
        let t = self.tail.load(Relaxed);
        self.buf[t as usize % RUNQ_SIZE].store(g, Relaxed);
        t.wrapping_add(1)
    }

    /// The tail word, for a publication made by assembly.
    pub fn tail_ptr(&self) -> *mut u32 {
        self.tail.as_ptr()
    }

    /// True when the ring (not counting `runnext`) is empty.
    #[inline(always)]
    pub fn ring_empty(&self) -> bool {
        self.head.load(Acquire) == self.tail.load(Acquire)
    }

    /// Takes the ring's head, ignoring `runnext`.
    pub fn get_ring(&self) -> Option<*mut G> {
        loop {
            let h = self.head.load(Acquire);
            let t = self.tail.load(Acquire);
            if t == h {
                return None;
            }
            let g = self.buf[h as usize % RUNQ_SIZE].load(Relaxed);
            if self.head.compare_exchange(h, h.wrapping_add(1), AcqRel, Relaxed).is_ok() {
                return Some(g);
            }
        }
    }

    /// Owner only: takes half of the ring (the oldest) for the global queue, as Go's runqputslow,
    /// unless one of them is pinned to an M (pinned goroutines never go global).
    pub fn take_half_unpinned(&self, out: &mut GQueue) -> bool {
        let h = self.head.load(Acquire);
        let t = self.tail.load(Relaxed);
        let n = t.wrapping_sub(h) / 2;
        if n == 0 {
            return false;
        }
        let mut batch = [null_mut(); RUNQ_SIZE / 2];
        for i in 0..n {
            let g = self.buf[h.wrapping_add(i) as usize % RUNQ_SIZE].load(Relaxed);
            // SAFETY: Gs in the ring are live records.
            if unsafe { !(*g).lockedm.is_null() } {
                return false;
            }
            batch[i as usize] = g;
        }
        if self.head.compare_exchange(h, h.wrapping_add(n), AcqRel, Relaxed).is_err() {
            return false;
        }
        for &g in &batch[..n as usize] {
            out.push(g);
        }
        true
    }
}

impl LocalRunq {
    /// The ring's head and tail indices (a snapshot, for a thief's look at how long goroutines
    /// have waited: see `schedule::steal`).
    #[inline]
    pub fn head_tail(&self) -> (u32, u32) {
        let h = self.head.load(Acquire);
        (h, self.tail.load(Acquire))
    }

    /// The goroutine at ring index `i` as last written (a thief's peek: it may be taken meanwhile).
    #[inline]
    pub fn slot(&self, i: u32) -> *mut G {
        self.buf[i as usize % RUNQ_SIZE].load(Relaxed)
    }

    /// Steals up to half of this ring into `dst` (the thief's own ring), taking only goroutines
    /// that may run on `thief` (unpinned ones: the migration policy) and, if `before` is given,
    /// only among those queued before that ring index (the ones the thief has seen wait long
    /// enough: `schedule::steal`). Returns one to run now.
    pub fn steal_into(&self, dst: &LocalRunq, thief: *mut super::M, before: Option<u32>) -> Option<*mut G> {
        loop {
            let h = self.head.load(Acquire);
            let t = self.tail.load(Acquire);
            let avail = t.wrapping_sub(h);
            if avail == 0 || avail as usize > RUNQ_SIZE {
                return None;
            }
            let avail = match before {
                None => avail,
                Some(b) if (b.wrapping_sub(h) as i32) > 0 => avail.min(b.wrapping_sub(h)),
                Some(_) => return None,
            };
            let n = (avail - avail / 2).min(RUNQ_SIZE as u32 / 2);
            let mut batch = [null_mut(); RUNQ_SIZE / 2];
            let mut k = 0;
            for i in 0..n {
                let g = self.buf[h.wrapping_add(i) as usize % RUNQ_SIZE].load(Relaxed);
                // SAFETY: Gs in the ring are live records; lockedm is stable while queued.
                let lm = unsafe { (*g).lockedm };
                if !lm.is_null() && lm != thief {
                    break;
                }
                batch[k] = g;
                k += 1;
            }
            if k == 0 {
                return None;
            }
            if self.head.compare_exchange(h, h.wrapping_add(k as u32), AcqRel, Relaxed).is_ok() {
                for &g in &batch[1..k] {
                    if dst.put_tail(g).is_err() {
                        // The thief's ring is full (cannot happen when it was empty): run it later.
                        let mut s = super::lock_sched();
                        super::global_put(&mut s, g);
                    }
                }
                return Some(batch[0]);
            }
        }
    }
}

impl Default for LocalRunq {
    fn default() -> Self {
        Self::new()
    }
}

/// An intrusive FIFO of Gs through `G::schedlink`. Not synchronised: the owner provides that.
pub struct GQueue {
    head: *mut G,
    tail: *mut G,
    len: usize,
}

// SAFETY: a GQueue is only touched under the scheduler lock (or by one owner).
unsafe impl Send for GQueue {}

impl GQueue {
    pub const fn new() -> Self {
        GQueue { head: null_mut(), tail: null_mut(), len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    // Not `unsafe fn`: GQueue is the scheduler's internal intrusive list (public only through the
    // doc-hidden sched module); its owner holds the queue's lock and passes live G records, which
    // are never freed.
    #[allow(clippy::not_unsafe_ptr_arg_deref)]
    pub fn push(&mut self, g: *mut G) {
        // SAFETY: g is a live G not on any other queue; its schedlink is ours to set.
        unsafe { (*g).schedlink = null_mut() };
        if self.tail.is_null() {
            self.head = g;
        } else {
            // SAFETY: tail is a live G on this queue.
            unsafe { (*self.tail).schedlink = g };
        }
        self.tail = g;
        self.len += 1;
    }

    /// The first G, left queued (null when empty).
    pub fn peek(&self) -> *mut G {
        self.head
    }

    pub fn pop(&mut self) -> Option<*mut G> {
        let g = self.head;
        if g.is_null() {
            return None;
        }
        // SAFETY: head is a live G on this queue.
        self.head = unsafe { (*g).schedlink };
        if self.head.is_null() {
            self.tail = null_mut();
        }
        self.len -= 1;
        // SAFETY: as above.
        unsafe { (*g).schedlink = null_mut() };
        Some(g)
    }
}

impl Default for GQueue {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// G records for queue tests (leaked: the queues only hold their addresses).
    fn gs(n: usize) -> Vec<*mut G> {
        (0..n).map(|_| Box::into_raw(Box::new(G::new()))).collect()
    }

    #[test]
    fn runnext_streak_gives_the_ring_a_turn() {
        let q = Box::new(LocalRunq::new());
        let g = gs(3);
        let mut streak = 0;
        q.put_tail(g[0]).unwrap();
        for _ in 0..RUNNEXT_STREAK_MAX {
            assert!(q.put_next(g[1]).is_none());
            assert_eq!(q.get_fair(&mut streak), Some(g[1]));
        }
        // The chain had its slice: runnext goes behind the ring's head.
        assert!(q.put_next(g[1]).is_none());
        assert_eq!(q.get_fair(&mut streak), Some(g[0]));
        assert_eq!(streak, 0);
        assert_eq!(q.get_fair(&mut streak), Some(g[1]), "now from the ring's tail");
        assert_eq!(q.get_fair(&mut streak), None);
        // With nobody waiting in the ring, a chain runs as long as it likes.
        for _ in 0..2 * RUNNEXT_STREAK_MAX {
            assert!(q.put_next(g[2]).is_none());
            assert_eq!(q.get_fair(&mut streak), Some(g[2]));
        }
    }

    #[test]
    fn hand_off_primitives() {
        let q = Box::new(LocalRunq::new());
        let g = gs(3);
        assert!(q.peek_head().is_none());
        q.put_tail(g[0]).unwrap();
        let (h, head) = q.peek_head().unwrap();
        assert_eq!(head, g[0]);
        assert!(q.has_room());
        // The yield hand-off writes the slot first and publishes it later.
        let t = q.prepare_tail(g[1]);
        assert_eq!(q.len(), 1, "not visible before the tail is stored");
        assert!(q.take_head(h));
        assert!(!q.take_head(h), "a head is taken once");
        // SAFETY: what gs_asm_yield_swap does: a release store of the new tail by the owner.
        unsafe { q.tail_ptr().write(t) };
        assert_eq!(q.get(), Some(g[1]));
        assert!(q.get().is_none());
        assert!(q.put_next(g[2]).is_none());
        assert_eq!(q.peek_next(), g[2]);
        assert!(q.take_next(g[2]));
        assert!(!q.take_next(g[2]), "runnext is taken once");
        // A full ring has no room for a yielder.
        for _ in 0..RUNQ_SIZE {
            q.put_tail(g[0]).unwrap();
        }
        assert!(!q.has_room());
    }
}
