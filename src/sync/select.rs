//! `gs_select`: Go's selectgo.
//!
//! 1. Poll order: the non-NULL cases shuffled uniformly (Fisher-Yates), so that among ready
//!    cases each is chosen with equal probability. Lock order: the same cases sorted by channel
//!    address; every channel lock is taken once, in that order, so that concurrent selects over
//!    overlapping channels cannot deadlock.
//! 2. Pass 1, all locks held: the first ready case in poll order fires.
//! 3. Nothing ready and `timeout_ns == 0`: `GS_EAGAIN` (Go's `default`).
//! 4. Pass 2: one waiter per case (all sharing one `WaitCtx`) is queued on its channel; the caller
//!    parks, the park's unlock function releasing every lock on g0. Exactly one party wins the
//!    `WaitCtx` (a channel operation on any of the channels, a close, or the timer): the
//!    selectDone CAS of Go, see `waiter`.
//! 5. Pass 3, after waking: all locks again, every waiter that is still queued is unlinked.
//!    By then the operation that woke us may have let a channel's owner free it (a sender frees
//!    the channel right after its send; a later operation skipped our claimed waiter on another
//!    channel, which then looked idle): pass 2 takes a reference on every channel (`Chan::hold`)
//!    and pass 3 drops them after its last unlock, so a channel freed meanwhile is released here.

use super::chan::{Chan, Outcome};
use super::home::{in_place, Place, Staged};
use super::waiter::{block, caller, lock_all, unlock_all, wake, Caller, Lock, WaitCtx, Waiter, NO_DEADLINE};
use crate::base::rand::fastrandn;
use crate::base::types::*;
use crate::sched::WaitReason;
use core::ffi::c_int;

/// Cases handled without heap allocation.
const INLINE: usize = 8;

/// Runs a select over `cases`. See `gs_select` for the contract.
///
/// Go's selectgo in four steps: check the cases ([`validate`]), choose the poll order (random) and
/// the lock order (by channel address, each once: [`orders`]), pass 1 (a case ready now,
/// [`try_ready`]), and passes 2 and 3 (queue a waiter on every channel, park, unlink:
/// [`park_on_all`]).
///
/// # Safety
/// `cases` points to `n` valid `gs_case`s whose `elem` buffers are valid for their channel's
/// element size until this returns.
pub unsafe fn select(cases: *mut gs_case, n: usize, timeout_ns: i64) -> c_int {
    if timeout_ns < -1 || n > i32::MAX as usize || (n > 0 && cases.is_null()) {
        return GS_EINVAL;
    }
    let cs: &mut [gs_case] = if n == 0 {
        &mut []
    } else {
        // SAFETY: per the contract.
        unsafe { core::slice::from_raw_parts_mut(cases, n) }
    };
    let nvalid = match validate(cs) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let me = if timeout_ns != 0 {
        match caller() {
            Ok(g) => g,
            Err(e) => return e,
        }
    } else {
        Caller::Thread // never blocks
    };
    if nvalid == 0 {
        return match timeout_ns {
            0 => GS_EAGAIN,
            -1 => GS_EDEADLOCK,
            t => match crate::sched::sleep(t) {
                GS_OK => GS_ETIMEDOUT,
                e => e,
            },
        };
    }
    let deadline = if timeout_ns > 0 { crate::sched::nanotime().saturating_add(timeout_ns) } else { NO_DEADLINE };

    let mut scratch = Scratch::new(nvalid);
    let (poll, order, locks, waiters) = scratch.slices(nvalid);
    let nlocks = orders(cs, poll, order, locks);
    let locks = &locks[..nlocks];
    // SAFETY: the lock slice is in lock order without duplicates; the channels are valid.
    if let Some(i) = unsafe { try_ready(cs, poll, locks) } {
        return i;
    }
    if timeout_ns == 0 {
        // SAFETY: try_ready returned with the locks held.
        unsafe { unlock_all(locks) };
        return GS_EAGAIN;
    }
    // SAFETY: the locks are held (try_ready); waiters live in this frame until it returns.
    unsafe { in_place!(P => park_on_all::<P>(cs, order, locks, waiters, me, deadline)) }
}

/// Checks the cases: every direction valid, a send's buffer present when the element has a size.
/// Returns the number of cases with a channel (NULL channels are never ready).
fn validate(cs: &[gs_case]) -> Result<usize, c_int> {
    let mut nvalid = 0;
    for c in cs.iter() {
        // A bad direction is a bug in the caller even on a NULL (never ready) case.
        if c.dir != GS_CASE_SEND && c.dir != GS_CASE_RECV {
            return Err(GS_EINVAL);
        }
        if c.chan.is_null() {
            continue;
        }
        // SAFETY: non-NULL channels are live channels per the API contract.
        let ch = unsafe { &*(c.chan as *const Chan) };
        if c.dir == GS_CASE_SEND && c.elem.is_null() && ch.elem_size() != 0 {
            return Err(GS_EINVAL);
        }
        nvalid += 1;
    }
    Ok(nvalid)
}

/// The per-case arrays of one select: on the stack up to [`INLINE`] valid cases, else on the heap.
struct Scratch {
    poll: [u32; INLINE],
    order: [u32; INLINE],
    locks: [*const Lock; INLINE],
    waiters: [Waiter; INLINE],
    heap: Option<HeapScratch>,
}

/// [`Scratch`]'s arrays for more than [`INLINE`] valid cases.
type HeapScratch = (Vec<u32>, Vec<u32>, Vec<*const Lock>, Vec<Waiter>);

/// The poll order, the lock order, the locks and the waiters of [`Scratch::slices`].
type Slices<'a> = (&'a mut [u32], &'a mut [u32], &'a mut [*const Lock], &'a mut [Waiter]);

impl Scratch {
    fn new(n: usize) -> Scratch {
        let heap = (n > INLINE)
            .then(|| (vec![0u32; n], vec![0u32; n], vec![core::ptr::null::<Lock>(); n], vec![Waiter::EMPTY; n]));
        Scratch {
            poll: [0; INLINE],
            order: [0; INLINE],
            locks: [core::ptr::null(); INLINE],
            waiters: [Waiter::EMPTY; INLINE],
            heap,
        }
    }

    fn slices(&mut self, n: usize) -> Slices<'_> {
        match &mut self.heap {
            Some((p, o, l, w)) => (&mut p[..], &mut o[..], &mut l[..], &mut w[..]),
            None => (&mut self.poll[..n], &mut self.order[..n], &mut self.locks[..n], &mut self.waiters[..n]),
        }
    }
}

/// Fills the poll order (an inside-out Fisher-Yates shuffle of the valid cases), the lock order
/// (the valid cases by channel address) and the lock list (each channel's lock once, in lock
/// order). Returns the number of locks.
fn orders(cs: &[gs_case], poll: &mut [u32], order: &mut [u32], locks: &mut [*const Lock]) -> usize {
    let mut k = 0;
    for (i, c) in cs.iter().enumerate() {
        if c.chan.is_null() {
            continue;
        }
        let j = fastrandn(k + 1);
        poll[k] = poll[j];
        poll[j] = i as u32;
        order[k] = i as u32;
        k += 1;
    }
    order.sort_unstable_by_key(|&i| cs[i as usize].chan as usize);
    let mut nlocks = 0;
    let mut prev = core::ptr::null::<Lock>();
    for &i in order.iter() {
        // SAFETY: valid channel (validate).
        let l = unsafe { (*(cs[i as usize].chan as *const Chan)).lock_ptr() };
        if l != prev {
            locks[nlocks] = l;
            nlocks += 1;
            prev = l;
        }
    }
    nlocks
}

/// The channel of case `i`.
///
/// # Safety
/// Case `i` has a valid channel (validate).
unsafe fn case_chan(cs: &[gs_case], i: u32) -> &Chan {
    // SAFETY: per the contract.
    unsafe { &*(cs[i as usize].chan as *const Chan) }
}

/// Pass 1: locks every channel and completes the first case, in poll order, that can proceed
/// now. Returns its index (its status set, the locks released, a claimed partner woken), or None
/// with every lock still held.
///
/// # Safety
/// `locks` are the cases' locks in lock order without duplicates; the cases' channels are valid
/// and their buffers as the API describes.
unsafe fn try_ready(cs: &mut [gs_case], poll: &[u32], locks: &[*const Lock]) -> Option<c_int> {
    // SAFETY: per the contract.
    unsafe { lock_all(locks) };
    for &i in poll.iter() {
        let c = &cs[i as usize];
        // SAFETY: we hold every lock; elem per the contract.
        let out = unsafe {
            let st = case_chan(cs, i).locked();
            if c.dir == GS_CASE_RECV {
                st.recv_locked(c.elem.cast())
            } else {
                st.send_locked(c.elem.cast())
            }
        };
        let status = match out {
            Outcome::Block => continue,
            Outcome::Closed => (GS_ECLOSED, None),
            Outcome::Done(w) => (GS_OK, w),
        };
        // SAFETY: we hold the locks; a claimed waiter is woken after unlocking.
        unsafe {
            unlock_all(locks);
            if let Some(w) = status.1 {
                wake(w);
            }
        }
        cs[i as usize].status = status.0;
        return Some(i as c_int);
    }
    None
}

/// Passes 2 and 3: queues a waiter on every channel, parks until one fires or the deadline
/// passes, then unlinks the waiters still queued. Returns the index of the case that fired (its
/// status set), or `GS_ETIMEDOUT`.
///
/// # Safety
/// The locks are held (as [`try_ready`] leaves them); `waiters` live until this returns.
unsafe fn park_on_all<P: Place>(
    cs: &mut [gs_case],
    order: &[u32],
    locks: &[*const Lock],
    waiters: &mut [Waiter],
    me: Caller,
    deadline: i64,
) -> c_int {
    let ctx = P::put(WaitCtx::new(me, false));
    // A copy-stack goroutine keeps ctx, waiters and elements on the heap (home.rs); the caller's
    // scratch may be in its frame.
    let mut heap_waiters = Vec::new();
    let mut staged: Vec<Staged> = Vec::new();
    let waiters = if P::HEAP {
        heap_waiters.resize(waiters.len(), Waiter::EMPTY);
        staged.resize_with(cs.len(), Default::default);
        &mut heap_waiters[..]
    } else {
        waiters
    };
    for (k, &i) in order.iter().enumerate() {
        let c = &cs[i as usize];
        let mut elem = c.elem.cast();
        if P::HEAP {
            // SAFETY: a case's elem is valid for its channel's element size (our contract).
            staged[i as usize] = unsafe { Staged::new(elem, case_chan(cs, i).elem_size(), true) };
            elem = staged[i as usize].ptr();
        }
        waiters[k] = Waiter::new(&ctx, elem, i);
        let w: *mut Waiter = &mut waiters[k];
        // SAFETY: we hold the lock; the waiters live in the caller's frame (or its heap block)
        // until pass 3 has unlinked them.
        unsafe {
            let st = case_chan(cs, i).locked();
            if c.dir == GS_CASE_RECV {
                st.recvq.push_back(w);
            } else {
                st.sendq.push_back(w);
            }
        }
    }
    // Pass 3 relocks every channel, whatever happened to it meanwhile: hold them (each once).
    for_each_channel(cs, order, |c| c.hold());
    // SAFETY: locks held, waiters queued, ctx is ours.
    unsafe { block(&ctx, WaitReason::Select, locks, deadline) };

    // Pass 3: unlink what is still queued.
    let fired = ctx.fired();
    // SAFETY: lock order as above; each waiter is on its own case's queue if queued.
    unsafe {
        lock_all(locks);
        for w in waiters.iter_mut() {
            if !w.queued {
                continue;
            }
            let st = case_chan(cs, w.index).locked();
            if cs[w.index as usize].dir == GS_CASE_RECV {
                st.recvq.remove(w);
            } else {
                st.sendq.remove(w);
            }
        }
        unlock_all(locks);
    }
    // SAFETY: the references taken before blocking; no channel is touched after this.
    for_each_channel(cs, order, |c| unsafe { Chan::release(c) });
    if fired.is_null() {
        return GS_ETIMEDOUT;
    }
    // SAFETY: fired points into `waiters`, which the caller owns.
    let (i, ok) = unsafe { ((*fired).index, (*fired).success) };
    if P::HEAP && cs[i as usize].dir == GS_CASE_RECV {
        staged[i as usize].copy_back();
    }
    cs[i as usize].status = if ok { GS_OK } else { GS_ECLOSED };
    i as c_int
}

/// Calls `f` once per distinct channel of the cases in `order` (sorted by channel address).
fn for_each_channel(cs: &[gs_case], order: &[u32], mut f: impl FnMut(&Chan)) {
    let mut prev = core::ptr::null_mut();
    for &i in order {
        let ch = cs[i as usize].chan;
        if ch != prev {
            // SAFETY: a valid channel (checked on entry), alive while we hold a reference.
            f(unsafe { &*(ch as *const Chan) });
            prev = ch;
        }
    }
}
