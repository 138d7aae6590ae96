//! Where a blocking call keeps what wakers touch: its frame, or the heap for a copy-stack
//! goroutine (`GS_STACK_COPY`, sched/copystack.rs invariant 4).
//!
//! A copy-stack goroutine's frame is copied out when it parks and its addresses then hold another
//! goroutine's frames, so a waker (on this M or another) must find the `WaitCtx`, the `Waiter`s
//! and the element buffers elsewhere. [`Home`] puts a record in the frame (no allocation: every
//! other goroutine and thread) or in a `Box`; [`Staged`] stands in for a channel element: the
//! caller's buffer itself, or a heap copy that is copied back once the wait fired.
//!
//! Rejected: staging for every caller (an allocation on every blocking call of the common kinds);
//! a per-G buffer (a select needs one per case, and a G would carry it while running).

use crate::sched::copystack::on_copy_stack;
use core::ops::{Deref, DerefMut};
use core::ptr::null_mut;

/// A record of a blocking call, at an address that stays valid (and owned by the caller) while
/// it is parked. Must not be moved once a pointer to its contents was handed out.
pub enum Home<T> {
    Frame(T),
    Heap(Box<T>),
}

impl<T> Home<T> {
    /// `v` in the caller's frame, or on the heap when the caller runs on a copy-stack goroutine.
    #[inline(always)]
    pub fn new(v: T) -> Home<T> {
        if on_copy_stack() {
            Home::Heap(Box::new(v))
        } else {
            Home::Frame(v)
        }
    }

    /// Whether the record is on the heap (the caller runs on a copy-stack goroutine).
    #[inline(always)]
    pub fn on_heap(&self) -> bool {
        matches!(self, Home::Heap(_))
    }
}

impl<T> Deref for Home<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        match self {
            Home::Frame(v) => v,
            Home::Heap(b) => b,
        }
    }
}

impl<T> DerefMut for Home<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        match self {
            Home::Frame(v) => v,
            Home::Heap(b) => b,
        }
    }
}

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
