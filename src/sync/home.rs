//! Where a blocking call keeps what wakers touch: its frame, or the heap for a copy-stack
//! goroutine (`GS_STACK_COPY`, sched/copystack.rs invariant 4).
//!
//! A copy-stack goroutine's frame is copied out when it parks and its addresses then hold another
//! goroutine's frames, so a waker (on this M or another) must find the `WaitCtx`, the `Waiter`s
//! and the element buffers elsewhere. [`Place`] puts a record in the frame (no allocation: every
//! other goroutine and thread) or in a `Box`; [`Staged`] stands in for a channel element: the
//! caller's buffer itself, or a heap copy that is copied back once the wait fired.
//!
//! Rejected: staging for every caller (an allocation on every blocking call of the common kinds);
//! a per-G buffer (a select needs one per case, and a G would carry it while running).

use core::ops::{Deref, DerefMut};
use core::ptr::null_mut;

/// Where the hot blocking calls (channel send and receive, mutex lock, the semaphore and wait
/// group queue) put their records, chosen once per call by [`in_place!`]: the body is compiled
/// twice, and the frame version is the code the calls had before copy-stack goroutines existed
/// (an enum of the two, checked at every use, cost a channel round trip 130 instructions of 950).
pub trait Place {
    /// Whether the records (and staged elements) are on the heap.
    const HEAP: bool;
    /// A record of type `T` in this place.
    type Of<T>: DerefMut<Target = T>;
    /// Puts `v` in this place.
    fn put<T>(v: T) -> Self::Of<T>;
}

/// The caller's frame (every goroutine but copy-stack ones, and threads).
pub struct InFrame;
/// The heap (copy-stack goroutines).
pub struct OnHeap;

/// A record kept in the caller's frame: the value itself.
#[repr(transparent)]
pub struct Local<T>(T);

impl<T> Deref for Local<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Local<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl Place for InFrame {
    const HEAP: bool = false;
    type Of<T> = Local<T>;
    #[inline(always)]
    fn put<T>(v: T) -> Local<T> {
        Local(v)
    }
}

impl Place for OnHeap {
    const HEAP: bool = true;
    type Of<T> = Box<T>;
    #[inline(always)]
    fn put<T>(v: T) -> Box<T> {
        Box::new(v)
    }
}

/// `in_place!(P => body)`: runs `body` with the type `P` naming the caller's [`Place`]
/// ([`OnHeap`] on a copy-stack goroutine, else [`InFrame`]); the body is expanded once for each.
macro_rules! in_place {
    ($p:ident => $body:expr) => {
        if $crate::sched::copystack::on_copy_stack() {
            type $p = $crate::sync::home::OnHeap;
            $body
        } else {
            type $p = $crate::sync::home::InFrame;
            $body
        }
    };
}
pub(crate) use in_place;

/// A channel element buffer as a waiter sees it: the caller's own (`user`), or when `staged` a
/// heap copy of it, of `size` bytes.
pub struct Staged {
    user: *mut u8,
    heap: Vec<u8>,
}

impl Staged {
    /// Stands in for `user` (null, or readable and writable for `size` bytes until the call
    /// returns); copies it to the heap when `stage`.
    ///
    /// # Safety
    /// As said of `user`.
    #[inline(always)]
    pub unsafe fn new(user: *mut u8, size: usize, stage: bool) -> Staged {
        if !stage || user.is_null() || size == 0 {
            return Staged { user, heap: Vec::new() };
        }
        // SAFETY: per the contract: `user` is readable for `size` bytes (a receiver's buffer
        // too: the copy back of an untouched copy is then the identity).
        let heap = unsafe { core::slice::from_raw_parts(user, size) }.to_vec();
        Staged { user, heap }
    }

    /// What the waiter points to.
    #[inline(always)]
    pub fn ptr(&mut self) -> *mut u8 {
        if self.heap.is_empty() {
            self.user
        } else {
            self.heap.as_mut_ptr()
        }
    }

    /// Copies a staged element back to the caller's buffer (a receive that fired).
    #[inline(always)]
    pub fn copy_back(&self) {
        if !self.heap.is_empty() {
            // SAFETY: `user` is writable for heap.len() bytes (the contract of `new`), distinct
            // from our heap copy.
            unsafe { core::ptr::copy_nonoverlapping(self.heap.as_ptr(), self.user, self.heap.len()) };
        }
    }
}

impl Default for Staged {
    fn default() -> Self {
        Staged { user: null_mut(), heap: Vec::new() }
    }
}
