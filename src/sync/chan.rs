//! Channels (Go's `hchan`): a lock, a ring buffer of `cap` elements of `elem_size` bytes, and
//! two queues of waiters (blocked receivers, blocked senders).
//!
//! Invariants (under the lock):
//! - a live waiter on `sendq` means the buffer is full (or the channel is unbuffered); a live
//!   waiter on `recvq` means the buffer is empty. (Claimed waiters whose owner has not yet
//!   unlinked itself may linger; `dequeue` skips them.)
//! - `closed` never goes back to false; after close both queues hold no live waiter.
//!
//! Lifetime: the owner's handle is one reference (`refs`); a blocked call that will touch the
//! channel again after it is woken (select's unlink pass, a timed wait's unlink after a timeout)
//! holds another, taken under the lock while its waiter is queued and dropped after its last
//! touch. `gs_chan_free` refuses (`GS_EBUSY`) while a waiter is queued, else drops the owner's
//! reference; the memory goes when the last reference does. So a sender may free a channel right
//! after the send that woke a select (Go code does the same, with a GC behind it), while that
//! select, woken but not yet run, still has to relock the channel. (Rejected: `GS_EBUSY` until
//! the select ran: the owner could not tell when to retry.)
//!
//! Fast paths as in Go's chansend/chanrecv: a sender hands its value straight to a waiting
//! receiver's buffer; a receiver takes straight from a waiting sender (unbuffered), or, on a
//! full buffered channel with waiting senders, takes the head and moves the first sender's value
//! into the freed tail slot (so FIFO order holds).

use super::home::{in_place, Place, Staged};
use super::waiter::{block, caller, wake, Caller, Lock, Locked, WaitCtx, WaitQueue, Waiter, NO_DEADLINE};
use crate::base::types::*;
use crate::sched::WaitReason;
use core::ffi::c_int;
use core::ptr::copy_nonoverlapping;
use core::sync::atomic::{AtomicUsize, Ordering::*};

pub struct Chan {
    /// Copy of `ChanState::elem_size` (immutable), readable without the lock.
    elem_size: usize,
    /// References: the owner's handle (until `gs_chan_free`) plus one per blocked call that will
    /// touch the channel after it is woken (see the module doc).
    refs: AtomicUsize,
    state: Locked<ChanState>,
}

pub struct ChanState {
    pub elem_size: usize,
    pub cap: usize,
    buf: *mut u8,
    qcount: usize,
    sendx: usize,
    recvx: usize,
    pub closed: bool,
    pub recvq: WaitQueue,
    pub sendq: WaitQueue,
}

// SAFETY: the raw pointers are the channel's own buffer and waiters protected by its lock.
unsafe impl Send for ChanState {}

/// What a send or receive attempt under the lock found.
pub enum Outcome {
    /// Done; wake this waiter's owner (if any) after unlocking.
    Done(Option<*const WaitCtx>),
    /// The channel is closed (send), or closed and drained (receive).
    Closed,
    /// Would block.
    Block,
}

/// How long an operation may wait.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    No,
    Forever,
    /// Until this nanotime.
    Until(i64),
}

/// Who would block: a non-blocking operation never does, so it needs no goroutine check.
#[inline(always)]
fn caller_for(wait: Wait) -> Result<Caller, c_int> {
    match wait {
        Wait::No => Ok(Caller::Thread),
        _ => caller(),
    }
}

const BUF_ALIGN: usize = 16;

impl Chan {
    /// A new channel; None if the buffer cannot be allocated or its size overflows, or if `cap`
    /// does not fit `gs_chan_cap`'s `int64_t` (any larger capacity read back as a negative
    /// number, -1 being `GS_EINVAL`).
    pub fn new(elem_size: usize, cap: usize) -> Option<Box<Chan>> {
        if cap > i64::MAX as usize {
            return None;
        }
        let bytes = elem_size.checked_mul(cap)?;
        if bytes > isize::MAX as usize / 2 {
            return None;
        }
        let buf = if bytes == 0 {
            core::ptr::NonNull::<u8>::dangling().as_ptr()
        } else {
            let layout = std::alloc::Layout::from_size_align(bytes, BUF_ALIGN).ok()?;
            // SAFETY: non-zero size.
            let p = unsafe { std::alloc::alloc(layout) };
            if p.is_null() {
                return None;
            }
            p
        };
        Some(Box::new(Chan {
            elem_size,
            refs: AtomicUsize::new(1),
            state: Locked::new(ChanState {
                elem_size,
                cap,
                buf,
                qcount: 0,
                sendx: 0,
                recvx: 0,
                closed: false,
                recvq: WaitQueue::new(),
                sendq: WaitQueue::new(),
            }),
        }))
    }

    pub fn elem_size(&self) -> usize {
        self.elem_size
    }

    /// Takes a reference for a blocked call that will touch the channel after it is woken.
    /// The caller holds the lock (or otherwise knows the channel is alive).
    pub fn hold(&self) {
        self.refs.fetch_add(1, Relaxed);
    }

    /// Drops a reference (the owner's, in `gs_chan_free`, or a blocked call's after its last
    /// touch); the last one frees the channel.
    ///
    /// # Safety
    /// `this` came from `Box::into_raw` of a `Chan` and the caller owns one reference, which it
    /// gives up: it must not touch the channel afterwards.
    pub unsafe fn release(this: *const Chan) {
        // SAFETY: per the contract, our reference keeps the channel alive until the decrement.
        if unsafe { (*this).refs.fetch_sub(1, Release) } != 1 {
            return;
        }
        // Every other reference's last touch happened before its decrement (Arc's pattern).
        core::sync::atomic::fence(Acquire);
        // SAFETY: the last reference: nobody else can reach the channel.
        drop(unsafe { Box::from_raw(this as *mut Chan) });
    }

    pub fn lock_ptr(&self) -> *const Lock {
        self.state.lock_ptr()
    }

    /// Takes the lock.
    #[allow(clippy::mut_from_ref)]
    pub fn lock(&self) -> &mut ChanState {
        self.state.lock()
    }

    /// # Safety
    /// The caller holds the lock.
    pub unsafe fn unlock(&self) {
        // SAFETY: per the contract.
        unsafe { self.state.unlock() }
    }

    /// # Safety
    /// The caller holds the lock.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn locked(&self) -> &mut ChanState {
        // SAFETY: per the contract.
        unsafe { self.state.get() }
    }

    /// Sends `*elem` (elem_size bytes).
    ///
    /// # Safety
    /// `elem` is readable for elem_size bytes (may be null when elem_size is 0) until this returns.
    #[inline(always)]
    pub unsafe fn send(&self, elem: *const u8, wait: Wait) -> c_int {
        let me = match caller_for(wait) {
            Ok(me) => me,
            Err(e) => return e,
        };
        let c = self.lock();
        // SAFETY: we hold the lock; elem per the contract.
        let outcome = unsafe { c.send_locked(elem) };
        // SAFETY: we hold the lock; conclude releases it unless we must block.
        if let Some(rc) = unsafe { self.conclude(outcome, wait) } {
            return rc;
        }
        // SAFETY: the lock is held, as send_block expects.
        unsafe { self.send_block(me, elem, wait) }
    }

    /// The blocking part of [`send`](Self::send), out of line so that the non-blocking path
    /// stays small.
    ///
    /// # Safety
    /// The lock is held; as `send`.
    #[inline(never)]
    unsafe fn send_block(&self, me: Caller, elem: *const u8, wait: Wait) -> c_int {
        // SAFETY: we hold the lock.
        let c = unsafe { self.locked() };
        // (A copy-stack goroutine keeps ctx, waiter and element on the heap: home.rs.)
        in_place!(P => {
            let ctx = P::put(WaitCtx::new(me, wait == Wait::Forever));
            // SAFETY: elem is readable for elem_size bytes (our contract).
            let mut elem = unsafe { Staged::new(elem as *mut u8, self.elem_size, P::HEAP) };
            let mut w = P::put(Waiter::new(&ctx, elem.ptr(), 0));
            // SAFETY: we hold the lock; w stays where it is until we are woken or unlink it.
            unsafe {
                c.sendq.push_back(&mut *w);
                self.finish(&ctx, &mut w, WaitReason::ChanSend, wait, true)
            }
        })
    }

    /// Receives into `out` (elem_size bytes; null discards the value).
    ///
    /// # Safety
    /// `out` is null or writable for elem_size bytes until this returns.
    #[inline(always)]
    pub unsafe fn recv(&self, out: *mut u8, wait: Wait) -> c_int {
        let me = match caller_for(wait) {
            Ok(me) => me,
            Err(e) => return e,
        };
        let c = self.lock();
        // SAFETY: we hold the lock; out per the contract.
        let outcome = unsafe { c.recv_locked(out) };
        // SAFETY: we hold the lock; conclude releases it unless we must block.
        if let Some(rc) = unsafe { self.conclude(outcome, wait) } {
            return rc;
        }
        // SAFETY: the lock is held, as recv_block expects.
        unsafe { self.recv_block(me, out, wait) }
    }

    /// The blocking part of [`recv`](Self::recv), out of line.
    ///
    /// # Safety
    /// The lock is held; as `recv`.
    #[inline(never)]
    unsafe fn recv_block(&self, me: Caller, out: *mut u8, wait: Wait) -> c_int {
        // SAFETY: we hold the lock.
        let c = unsafe { self.locked() };
        if let Wait::Until(d) = wait {
            if d <= crate::sched::nanotime() {
                // SAFETY: we hold the lock.
                unsafe { self.unlock() };
                return GS_ETIMEDOUT;
            }
        }
        in_place!(P => {
            let ctx = P::put(WaitCtx::new(me, wait == Wait::Forever));
            // SAFETY: out is null or writable for elem_size bytes (our contract).
            let mut out = unsafe { Staged::new(out, self.elem_size, P::HEAP) };
            let mut w = P::put(Waiter::new(&ctx, out.ptr(), 0));
            // SAFETY: we hold the lock; w stays where it is until we are woken or unlink it.
            let rc = unsafe {
                c.recvq.push_back(&mut *w);
                self.finish(&ctx, &mut w, WaitReason::ChanReceive, wait, false)
            };
            if !ctx.fired().is_null() {
                out.copy_back(); // (only what a waker may have written: it fired)
            }
            rc
        })
    }

    /// Ends an operation that did not block (the lock is held): unlocks, wakes the partner it
    /// completed with, and returns the status; `None` when the caller must block (lock still held).
    ///
    /// # Safety
    /// The caller holds this channel's lock.
    #[inline(always)]
    unsafe fn conclude(&self, outcome: Outcome, wait: Wait) -> Option<c_int> {
        // SAFETY: per the contract; a Done waiter was claimed by us under the lock.
        unsafe {
            match outcome {
                Outcome::Done(w) => {
                    self.unlock();
                    if let Some(w) = w {
                        wake(w);
                    }
                    Some(GS_OK)
                }
                Outcome::Closed => {
                    self.unlock();
                    Some(GS_ECLOSED)
                }
                Outcome::Block if wait == Wait::No => {
                    self.unlock();
                    Some(GS_EAGAIN)
                }
                Outcome::Block => None,
            }
        }
    }

    /// Blocks on the queued waiter `w` and turns the outcome into a status.
    ///
    /// # Safety
    /// We hold the lock and `w` (with ctx `ctx`) is queued on our sendq (`send`) or recvq.
    unsafe fn finish(&self, ctx: &WaitCtx, w: &mut Waiter, reason: WaitReason, wait: Wait, send: bool) -> c_int {
        let deadline = match wait {
            Wait::Until(d) => d,
            _ => NO_DEADLINE,
        };
        // A timed wait relocks the channel after a timeout, by which time the waker that
        // skipped our claimed waiter may have let the owner free it: hold a reference.
        let timed = deadline != NO_DEADLINE;
        if timed {
            self.hold();
        }
        // SAFETY: lock held, waiter queued, ctx made by the caller for itself.
        unsafe { block(ctx, reason, &[self.lock_ptr()], deadline) };
        let rc = if ctx.fired().is_null() {
            // Timed out: unlink ourselves (a waker may have unlinked us while skipping us).
            let c = self.lock();
            // SAFETY: lock held; w is ours.
            unsafe {
                if send {
                    c.sendq.remove(w);
                } else {
                    c.recvq.remove(w);
                }
                self.unlock();
            }
            GS_ETIMEDOUT
        } else if w.success {
            GS_OK
        } else {
            GS_ECLOSED
        };
        if timed {
            // SAFETY: the reference taken above; the channel is not touched after this.
            unsafe { Chan::release(self) };
        }
        rc
    }

    /// Closes the channel: every blocked receiver and sender wakes with `GS_ECLOSED`.
    pub fn close(&self) -> c_int {
        let c = self.lock();
        if c.closed {
            // SAFETY: we hold the lock.
            unsafe { self.unlock() };
            return GS_ECLOSED;
        }
        c.closed = true;
        let mut woken: Vec<*const WaitCtx> = Vec::new();
        // SAFETY: we hold the lock; claimed waiters stay valid until woken.
        unsafe {
            for q in [&mut c.recvq, &mut c.sendq] {
                while let Some(w) = q.dequeue() {
                    (*w).success = false;
                    woken.push((*w).ctx);
                }
            }
            self.unlock();
            for ctx in woken {
                wake(ctx);
            }
        }
        GS_OK
    }

    /// Elements buffered now.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        let c = self.lock();
        let n = c.qcount;
        // SAFETY: we hold the lock.
        unsafe { self.unlock() };
        n
    }

    pub fn cap(&self) -> usize {
        let c = self.lock();
        let n = c.cap;
        // SAFETY: we hold the lock.
        unsafe { self.unlock() };
        n
    }

    /// True when a goroutine or thread waits on this channel (it must not be freed then).
    pub fn busy(&self) -> bool {
        let c = self.lock();
        let b = !c.recvq.is_empty() || !c.sendq.is_empty();
        // SAFETY: we hold the lock.
        unsafe { self.unlock() };
        b
    }
}

impl ChanState {
    fn slot(&self, i: usize) -> *mut u8 {
        // SAFETY: i < cap, within the buffer (or elem_size 0: the dangling pointer, never read).
        unsafe { self.buf.add(i * self.elem_size) }
    }

    /// # Safety
    /// `src` readable and `dst` writable for elem_size bytes, unless null (skips the copy).
    #[inline(always)]
    unsafe fn copy(&self, src: *const u8, dst: *mut u8) {
        if dst.is_null() || src.is_null() {
            return;
        }
        // SAFETY: per the contract; distinct objects (a frame, a buffer slot, another frame).
        // Word-sized elements (the common case) are moved inline rather than through memcpy.
        unsafe {
            match self.elem_size {
                0 => {}
                8 => dst.cast::<u64>().write_unaligned(src.cast::<u64>().read_unaligned()),
                4 => dst.cast::<u32>().write_unaligned(src.cast::<u32>().read_unaligned()),
                16 => dst.cast::<u128>().write_unaligned(src.cast::<u128>().read_unaligned()),
                n => copy_nonoverlapping(src, dst, n),
            }
        }
    }

    /// One send attempt (Go's chansend without the blocking part).
    ///
    /// # Safety
    /// The channel lock is held; `elem` readable for elem_size bytes.
    #[inline]
    pub unsafe fn send_locked(&mut self, elem: *const u8) -> Outcome {
        if self.closed {
            return Outcome::Closed;
        }
        // SAFETY: lock held; a claimed waiter's elem is valid until we wake it.
        unsafe {
            if let Some(w) = self.recvq.dequeue() {
                self.copy(elem, (*w).elem);
                (*w).success = true;
                return Outcome::Done(Some((*w).ctx));
            }
            if self.qcount < self.cap {
                self.copy(elem, self.slot(self.sendx));
                self.sendx += 1;
                if self.sendx == self.cap {
                    self.sendx = 0;
                }
                self.qcount += 1;
                return Outcome::Done(None);
            }
        }
        Outcome::Block
    }

    /// One receive attempt (Go's chanrecv without the blocking part).
    ///
    /// # Safety
    /// The channel lock is held; `out` null or writable for elem_size bytes.
    #[inline]
    pub unsafe fn recv_locked(&mut self, out: *mut u8) -> Outcome {
        // SAFETY: lock held; a claimed waiter's elem is valid until we wake it.
        unsafe {
            if let Some(w) = self.sendq.dequeue() {
                if self.cap == 0 {
                    self.copy((*w).elem, out);
                } else {
                    // Full buffer: take the head, the sender's value becomes the tail.
                    debug_assert_eq!(self.qcount, self.cap);
                    let s = self.slot(self.recvx);
                    self.copy(s, out);
                    self.copy((*w).elem, s);
                    self.recvx += 1;
                    if self.recvx == self.cap {
                        self.recvx = 0;
                    }
                    self.sendx = self.recvx;
                }
                (*w).success = true;
                return Outcome::Done(Some((*w).ctx));
            }
            if self.qcount > 0 {
                self.copy(self.slot(self.recvx), out);
                self.recvx += 1;
                if self.recvx == self.cap {
                    self.recvx = 0;
                }
                self.qcount -= 1;
                return Outcome::Done(None);
            }
        }
        if self.closed {
            return Outcome::Closed;
        }
        Outcome::Block
    }
}

impl Drop for Chan {
    fn drop(&mut self) {
        let c = self.state.lock();
        let bytes = c.elem_size * c.cap;
        let buf = c.buf;
        // SAFETY: we hold the lock (taken just above).
        unsafe { self.state.unlock() };
        if bytes != 0 {
            // SAFETY: allocated in `new` with this layout.
            unsafe { std::alloc::dealloc(buf, std::alloc::Layout::from_size_align_unchecked(bytes, BUF_ALIGN)) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_fifo_close_drain() {
        let ch = Chan::new(8, 3).unwrap();
        // SAFETY: u64 locals, elem_size 8.
        unsafe {
            for v in 1u64..=3 {
                assert_eq!(ch.send(&v as *const u64 as *const u8, Wait::No), GS_OK);
            }
            let v = 4u64;
            assert_eq!(ch.send(&v as *const u64 as *const u8, Wait::No), GS_EAGAIN);
            assert_eq!(ch.len(), 3);
            assert_eq!(ch.close(), GS_OK);
            assert_eq!(ch.close(), GS_ECLOSED);
            assert_eq!(ch.send(&v as *const u64 as *const u8, Wait::No), GS_ECLOSED);
            for want in 1u64..=3 {
                let mut got = 0u64;
                assert_eq!(ch.recv(&mut got as *mut u64 as *mut u8, Wait::No), GS_OK);
                assert_eq!(got, want);
            }
            let mut got = 99u64;
            assert_eq!(ch.recv(&mut got as *mut u64 as *mut u8, Wait::No), GS_ECLOSED);
            assert_eq!(got, 99, "out untouched on ECLOSED");
        }
    }

    #[test]
    fn bad_sizes() {
        assert!(Chan::new(usize::MAX, 2).is_none());
        assert!(Chan::new(0, i64::MAX as usize).is_some(), "chan struct{{}} of any capacity gs_chan_cap can report");
        assert!(Chan::new(0, 1 << 63).is_none());
        assert!(Chan::new(0, usize::MAX).is_none());
    }

    #[test]
    fn thread_waiters() {
        // Unbuffered rendezvous between two plain threads (the thread-parker path).
        let ch = Chan::new(4, 0).unwrap();
        let p = &*ch as *const Chan as usize;
        let h = std::thread::spawn(move || {
            // SAFETY: the channel outlives the join below.
            let ch = unsafe { &*(p as *const Chan) };
            for i in 0..1000u32 {
                // SAFETY: u32 local, elem_size 4.
                assert_eq!(unsafe { ch.send(&i as *const u32 as *const u8, Wait::Forever) }, GS_OK);
            }
            ch.close();
        });
        let mut sum = 0u64;
        loop {
            let mut v = 0u32;
            // SAFETY: u32 local.
            match unsafe { ch.recv(&mut v as *mut u32 as *mut u8, Wait::Forever) } {
                GS_OK => sum += v as u64,
                GS_ECLOSED => break,
                e => panic!("recv: {e}"),
            }
        }
        h.join().unwrap();
        assert_eq!(sum, 999 * 1000 / 2);
        let mut v = 0u32;
        let t = crate::sched::nanotime();
        // SAFETY: u32 local.
        assert_eq!(unsafe { ch.recv(&mut v as *mut u32 as *mut u8, Wait::Until(t + 1_000_000)) }, GS_ECLOSED);
        let ch2 = Chan::new(4, 0).unwrap();
        // SAFETY: u32 local.
        assert_eq!(unsafe { ch2.recv(&mut v as *mut u32 as *mut u8, Wait::Until(t + 1_000_000)) }, GS_ETIMEDOUT);
        assert!(!ch2.busy());
    }
}
