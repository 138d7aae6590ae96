//! The netpoller (issue #13; Go's netpoll.go + netpoll_epoll.go): goroutines park on file
//! descriptor readiness instead of blocking their thread in `read`/`accept`/`connect`.
//!
//! ```text
//!   gs_read(fd) --EAGAIN--> wait(fd, IN, snapshot) --park--> [IO wait]
//!                                 |                                  ^ ready
//!   TABLE[fd] = PollDesc { lock, rseq, wseq, gen, waiters: FdWaiter <-> FdWaiter ... }
//!                                 ^ rseq++ / wseq++, unlink matching waiters
//!   one epoll instance (edge-triggered, every fd registered once for IN|OUT|RDHUP)
//!     <- epoll_wait by: an idle M (blocking, until the next timer), schedule() (non-blocking,
//!        when it finds nothing to run), the sysmon thread (non-blocking, when nobody polled
//!        for POLL_STARVE_NS while goroutines wait)
//! ```
//!
//! Protocol (invariants; SAFETY notes cite them by number):
//! 1. A waiter is queued on its `PollDesc`, and unlinked, only under that desc's lock
//!    (`FdWaiter::queued` says whether it is on the list). Whoever unlinks it owns its wake-up:
//!    it records `result` before releasing the lock and then readies the goroutine. Exactly one
//!    party unlinks: the poller (readiness), the timeout timer, `gs_fd_close`/a reset.
//! 2. Readiness is counted, not stored as a flag: every edge the kernel reports bumps `rseq`
//!    (readable, or error/hang-up) and/or `wseq` (writable, or error/hang-up) under the lock. A
//!    caller takes a snapshot of both *before* its system call; after `EAGAIN` it queues itself
//!    only if the counter it waits for is unchanged, checked under the lock. So an edge that
//!    came between the system call and the park is never lost (with edge-triggered epoll it would
//!    not come again), and many waiters on one fd each judge by their own snapshot (none
//!    consumes readiness another needs). Every waiter of a direction is woken by its edge: it
//!    retries its call, and whoever finds `EAGAIN` again waits again.
//! 3. `gen` is bumped by `gs_fd_close` and by a reset (the number names a new file: gs_accept's
//!    result, a socket gs_connect starts); a waiter whose snapshot has another `gen` is not
//!    queued (`GS_ECLOSED`), and the close/reset wakes every queued one with `GS_ECLOSED`.
//! 4. A waiter lives in the waiting goroutine's frame (the stack is secured on entry and a
//!    parked stack never moves), or on the heap for a copy-stack goroutine (whose frame is
//!    reused while it is parked: copystack.rs). It becomes visible to wakers when the park's commit function
//!    releases the desc lock on g0, after the goroutine is saved and WAITING. A timeout timer
//!    holds a pointer to it and clears `timer_busy` as its last access; an owner whose
//!    `timer_del` comes too late waits for that before leaving the frame.
//! 5. At most one thread blocks in (or polls) the epoll instance at a time (`POLLER_BUSY`); an M
//!    sleeping there does so through `Note::sleep_in`, so every wake-up of its note (work for it,
//!    an earlier timer, a P handed over) writes the eventfd and breaks the wait.
//! 6. `WAITERS` counts queued waiters and is decremented only after the goroutine was readied:
//!    deadlock detection (deadlock::asleep_locked) never sees "no waiter" while a woken goroutine is
//!    not yet queued to run.
//!
//! Rejected: a ready flag per direction that a waiter consumes (Go's `pdReady`): Go allows one
//! reader and one writer per fd (its fdMutex serialises the rest); C callers may have many, and
//! a consumed flag leaves the others waiting for an edge that already happened. A poll(2) per
//! park to re-check the fd: a system call per wait (gs_fd_wait, the public call that may be
//! used without a prior `EAGAIN`, does one: it promises "until ready", level-triggered).

use super::*;
use crate::base::clock::{nanotime, nanotime_coarse};
use crate::base::lock::Lock;
use crate::base::types::*;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, Ordering::*};
use core::sync::atomic::{AtomicI32, AtomicU8};

/// `events` bits of [`wait`] (the C API's GS_POLL_IN / GS_POLL_OUT).
pub const POLL_IN: u32 = 1;
pub const POLL_OUT: u32 = 2;

const CHUNK: usize = 256;
const NCHUNKS: usize = 16384;
/// File descriptors from 0 up to (not including) this have a `PollDesc` (4,194,304: above the
/// kernel's default `nr_open` of 1,048,576); larger ones are refused (`GS_EINVAL`).
pub const MAX_FD: i32 = (CHUNK * NCHUNKS) as i32;

/// The descriptors, in chunks of 256 allocated on first use and never freed (a waker may hold a
/// desc's address while its fd is closed and reused).
static TABLE: [AtomicPtr<PollDesc>; NCHUNKS] = [const { AtomicPtr::new(null_mut()) }; NCHUNKS];

/// What the runtime knows about one file descriptor number.
pub struct PollDesc {
    lock: Lock,
    /// Edges seen (invariant 2): readable (or error/hang-up), writable (or error/hang-up).
    rseq: AtomicU32,
    wseq: AtomicU32,
    /// Bumped by close and reset (invariant 3).
    gen: AtomicU32,
    /// REG_ADDED once added to epoll (gs_fd_close then takes it out), REG_NONE after a reset.
    reg: AtomicU8,
    /// KIND_*: whether recv/send with MSG_DONTWAIT work (a socket) or read/write are used.
    pub kind: AtomicU8,
    /// Queued waiters (under `lock`).
    head: UnsafeCell<*mut FdWaiter>,
}

const REG_NONE: u8 = 0;
const REG_ADDED: u8 = 1;

pub const KIND_UNKNOWN: u8 = 0;
pub const KIND_SOCKET: u8 = 1;
pub const KIND_OTHER: u8 = 2;

// SAFETY: `head` is touched only under `lock` (invariant 1); the rest is atomics.
unsafe impl Sync for PollDesc {}

impl PollDesc {
    const fn new() -> PollDesc {
        PollDesc {
            lock: Lock::new(),
            rseq: AtomicU32::new(0),
            wseq: AtomicU32::new(0),
            gen: AtomicU32::new(0),
            reg: AtomicU8::new(REG_NONE),
            kind: AtomicU8::new(KIND_UNKNOWN),
            head: UnsafeCell::new(null_mut()),
        }
    }

    /// The counters a caller compares against after its system call (invariant 2).
    #[inline]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { rseq: self.rseq.load(Acquire), wseq: self.wseq.load(Acquire), gen: self.gen.load(Acquire) }
    }
}

/// See [`PollDesc::snapshot`].
#[derive(Clone, Copy)]
pub struct Snapshot {
    rseq: u32,
    wseq: u32,
    gen: u32,
}

/// The desc of `fd`, allocating its chunk on first use; None for a negative or too large fd.
pub fn desc(fd: c_int) -> Option<&'static PollDesc> {
    if !(0..MAX_FD).contains(&fd) {
        return None;
    }
    let (c, i) = (fd as usize / CHUNK, fd as usize % CHUNK);
    let mut chunk = TABLE[c].load(Acquire);
    if chunk.is_null() {
        let fresh: Box<[PollDesc; CHUNK]> = Box::new([const { PollDesc::new() }; CHUNK]);
        let fresh = Box::into_raw(fresh) as *mut PollDesc;
        match TABLE[c].compare_exchange(null_mut(), fresh, AcqRel, Acquire) {
            Ok(_) => chunk = fresh,
            Err(other) => {
                // SAFETY: ours, never published.
                drop(unsafe { Box::from_raw(fresh as *mut [PollDesc; CHUNK]) });
                chunk = other;
            }
        }
    }
    // SAFETY: chunks hold CHUNK descs and are never freed.
    Some(unsafe { &*chunk.add(i) })
}

/// One goroutine waiting on one fd (invariant 4: lives in its frame).
struct FdWaiter {
    g: *mut G,
    events: u32,
    /// GS_OK, GS_ETIMEDOUT or GS_ECLOSED: written by whoever unlinks it (invariant 1).
    result: c_int,
    next: *mut FdWaiter,
    prev: *mut FdWaiter,
    queued: bool,
    pd: *const PollDesc,
    deadline: i64,
    timer_id: u64,
    timer_busy: AtomicU32,
}

/// Queued waiters, all fds (invariant 6).
static WAITERS: AtomicI64 = AtomicI64::new(0);
/// Someone blocks in or polls the epoll instance (invariant 5).
static POLLER_BUSY: AtomicBool = AtomicBool::new(false);
/// When the epoll instance was last looked at (nanotime), for the sysmon's starvation check.
static LAST_POLL: AtomicI64 = AtomicI64::new(0);

/// Goroutines waiting on fds (for deadlock detection: they are not asleep for good).
#[inline]
pub fn waiters() -> i64 {
    WAITERS.load(SeqCst)
}

// ---- the epoll instance ----------------------------------------------------------------------

static EPFD: AtomicI32 = AtomicI32::new(-1);
static EVFD: AtomicI32 = AtomicI32::new(-1);
static INIT_LOCK: Lock = Lock::new();
/// An eventfd write is pending (one is enough to break the wait).
static BREAK_PENDING: AtomicBool = AtomicBool::new(false);
/// epoll_pwait2 (nanosecond timeouts, Linux 5.11) answered ENOSYS: millisecond epoll_wait.
static NO_PWAIT2: AtomicBool = AtomicBool::new(false);
const BREAK_TOKEN: u64 = u64::MAX;

/// Whether the poller exists (an fd wait has happened).
#[inline]
pub fn inited() -> bool {
    EPFD.load(Acquire) >= 0
}

/// The epoll fd, created with the wake-up eventfd on first use; Err(errno) if that fails.
fn epfd() -> Result<c_int, c_int> {
    let fd = EPFD.load(Acquire);
    if fd >= 0 {
        return Ok(fd);
    }
    init_slow()
}

#[cold]
fn init_slow() -> Result<c_int, c_int> {
    INIT_LOCK.lock();
    let r = (|| {
        let fd = EPFD.load(Acquire);
        if fd >= 0 {
            return Ok(fd);
        }
        // SAFETY: plain system calls creating descriptors we own.
        unsafe {
            let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            if ep < 0 {
                return Err(errno());
            }
            let ev = libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC);
            if ev < 0 {
                let e = errno();
                libc::close(ep);
                return Err(e);
            }
            let mut e = libc::epoll_event { events: libc::EPOLLIN as u32, u64: BREAK_TOKEN };
            if libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, ev, &mut e) < 0 {
                let e = errno();
                libc::close(ep);
                libc::close(ev);
                return Err(e);
            }
            crate::base::futex::set_poll_break(netpoll_break);
            EVFD.store(ev, Release);
            EPFD.store(ep, Release);
            Ok(ep)
        }
    })();
    // SAFETY: taken above in this function.
    unsafe { INIT_LOCK.unlock() };
    r
}

fn errno() -> c_int {
    // SAFETY: the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Interrupts the thread blocked in epoll_wait (Go's netpollBreak): the note hook.
fn netpoll_break() {
    if BREAK_PENDING.swap(true, AcqRel) {
        return;
    }
    let one: u64 = 1;
    // SAFETY: writes 8 bytes to our eventfd (non-blocking; a full counter cannot happen: the
    // reader drains it).
    unsafe { libc::write(EVFD.load(Acquire), (&raw const one).cast(), 8) };
}

/// Adds `fd` to the epoll instance. Ok(true): watched (added now, or already: EEXIST),
/// Ok(false): epoll refuses it (regular files, directories: always ready), Err(errno).
///
/// Done at every park, not cached: epoll keys its entries by (file, fd number) and drops them
/// when the file is closed, so after a plain `close()` the number can name a new file that is
/// not watched; a cached "added" would park its waiters for ever (c-tests/test_io_edges.c). The
/// call is the check: EEXIST for the file already watched. One system call per park
/// (docs/PERFORMANCE.md, issue 13).
pub fn ensure_registered(fd: c_int, pd: &PollDesc) -> Result<bool, c_int> {
    let ep = epfd()?;
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
        u64: fd as u64,
    };
    // SAFETY: epoll_ctl on our epoll fd with a valid event.
    let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    if r == 0 || errno() == libc::EEXIST {
        pd.reg.store(REG_ADDED, Release);
        return Ok(true);
    }
    match errno() {
        libc::EPERM => Ok(false),
        e => Err(e),
    }
}

// ---- waiting ---------------------------------------------------------------------------------

/// Sentinel deadline: no timeout.
pub const NO_DEADLINE: i64 = i64::MAX;

/// Parks the calling goroutine until `fd` sees an edge for `events` after `snap` was taken
/// (invariant 2), the deadline passes, or the fd is closed/reset. `GS_OK`, `GS_ETIMEDOUT`,
/// `GS_ECLOSED`, `GS_EINVAL` (not an open fd), `GS_ENOMEM` (epoll could not take it),
/// `GS_ESTATE`/`GS_ENOTGOROUTINE` off a goroutine's own stack.
///
/// The caller has secured `RUNTIME_ENTRY_STACK` (the waiter lives in this frame: invariant 4).
pub fn wait(fd: c_int, pd: &'static PollDesc, events: u32, snap: Snapshot, deadline: i64) -> c_int {
    let g = match whereami() {
        Where::Goroutine(_, g) => g,
        Where::SystemStack => return GS_ESTATE,
        Where::Outside => return GS_ENOTGOROUTINE,
    };
    match ensure_registered(fd, pd) {
        Ok(true) => {}
        Ok(false) => return GS_OK,
        Err(libc::EBADF) | Err(libc::EINVAL) | Err(libc::ENOENT) => return GS_EINVAL,
        Err(_) => return GS_ENOMEM,
    }
    let w = FdWaiter {
        g,
        events,
        result: GS_OK,
        next: null_mut(),
        prev: null_mut(),
        queued: false,
        pd,
        deadline,
        timer_id: 0,
        timer_busy: AtomicU32::new(0),
    };
    // A copy-stack goroutine's frame holds other goroutines' frames while it is parked: its
    // waiter lives on the heap (copystack.rs, invariant 4); anyone else's in this frame.
    let (mut frame, mut heap) = (None, None);
    // SAFETY: g is the running goroutine (a live G record).
    let wp: *mut FdWaiter =
        if unsafe { copystack::is_copy(g) } { &raw mut **heap.insert(Box::new(w)) } else { frame.insert(w) };
    pd.lock.lock();
    if pd.gen.load(Relaxed) != snap.gen {
        // SAFETY: taken above in this function.
        unsafe { pd.lock.unlock() };
        return GS_ECLOSED;
    }
    if (events & POLL_IN != 0 && pd.rseq.load(Relaxed) != snap.rseq)
        || (events & POLL_OUT != 0 && pd.wseq.load(Relaxed) != snap.wseq)
    {
        // SAFETY: taken above in this function.
        unsafe { pd.lock.unlock() };
        return GS_OK;
    }
    if deadline != NO_DEADLINE && deadline <= nanotime() {
        // SAFETY: taken above in this function.
        unsafe { pd.lock.unlock() };
        return GS_ETIMEDOUT;
    }
    // SAFETY: under pd.lock (invariant 1); w outlives its time on the list (invariant 4).
    unsafe {
        link(pd, wp);
        if WAITERS.fetch_add(1, SeqCst) == 0 {
            super::syscall::sysmon_watch_fds();
        }
        (*g).waitfd = fd;
        // The commit releases pd.lock on g0 once we are saved (invariant 4).
        park(WaitReason::IoWait, Some(commit), wp.cast());
        if (*wp).deadline != NO_DEADLINE && !timer_del((*wp).timer_id) {
            // The timer fired (or is firing on another M): wait until it let go of w.
            while (*wp).timer_busy.load(Acquire) != 0 {
                core::hint::spin_loop();
            }
        }
        (*g).waitfd = -1;
        (*wp).result
    }
}

/// The park's commit (on g0, the goroutine saved and WAITING): arms the timeout, then makes the
/// waiter visible by releasing the desc lock (invariant 4).
unsafe fn commit(_g: *mut G, arg: *mut c_void) -> bool {
    let w = arg as *mut FdWaiter;
    // SAFETY: w is the parked goroutine's waiter, queued under the lock we still hold.
    unsafe {
        if (*w).deadline != NO_DEADLINE {
            (*w).timer_busy.store(1, Relaxed);
            (*w).timer_id = timer_add((*w).deadline, fd_timeout, w as usize, 0);
        }
        (*(*w).pd).lock.unlock(); // held since wait() queued w
    }
    true
}

/// The timeout timer of a waiter (invariant 4).
unsafe fn fd_timeout(arg: usize, _seq: u64) {
    let w = arg as *mut FdWaiter;
    // SAFETY: the owner keeps w alive while timer_busy is 1 (invariant 4); unlinking under the
    // lock makes us the one who wakes it (invariant 1).
    unsafe {
        let pd = &*(*w).pd;
        pd.lock.lock();
        let g = if (*w).queued {
            unlink(pd, w);
            (*w).result = GS_ETIMEDOUT;
            (*w).g
        } else {
            null_mut()
        };
        pd.lock.unlock();
        (*w).timer_busy.store(0, Release);
        if !g.is_null() {
            ready_with(g, false);
            WAITERS.fetch_sub(1, SeqCst);
        }
    }
}

/// # Safety
/// Under pd.lock; w is not queued.
unsafe fn link(pd: &PollDesc, w: *mut FdWaiter) {
    // SAFETY: per the contract.
    unsafe {
        let head = pd.head.get();
        (*w).next = *head;
        (*w).prev = null_mut();
        if !(*head).is_null() {
            (**head).prev = w;
        }
        *head = w;
        (*w).queued = true;
    }
}

/// # Safety
/// Under pd.lock; w is queued on pd.
unsafe fn unlink(pd: &PollDesc, w: *mut FdWaiter) {
    // SAFETY: per the contract.
    unsafe {
        if (*w).prev.is_null() {
            *pd.head.get() = (*w).next;
        } else {
            (*(*w).prev).next = (*w).next;
        }
        if !(*w).next.is_null() {
            (*(*w).next).prev = (*w).prev;
        }
        (*w).queued = false;
        (*w).next = null_mut();
        (*w).prev = null_mut();
    }
}

/// Goroutines to wake, collected under desc locks and readied after (a list of their `G`s).
pub(crate) struct WakeList {
    gs: Vec<*mut G>,
}

impl WakeList {
    fn new() -> WakeList {
        WakeList { gs: Vec::new() }
    }

    /// Readies every goroutine (to the tail: several in one batch keep their order).
    pub(crate) fn ready_all(self) -> usize {
        let n = self.gs.len();
        for g in self.gs {
            // SAFETY: each was unlinked by us (invariant 1): parked, and ours to ready.
            unsafe { ready_with(g, false) };
            WAITERS.fetch_sub(1, SeqCst);
        }
        n
    }
}

/// Unlinks the waiters of `pd` that `pred` selects, with `result`, onto `out`.
///
/// # Safety
/// Under pd.lock.
unsafe fn take_waiters(pd: &PollDesc, out: &mut WakeList, result: c_int, pred: impl Fn(u32) -> bool) {
    // SAFETY: per the contract; the waiters are alive while queued (invariant 4).
    unsafe {
        let mut w = *pd.head.get();
        while !w.is_null() {
            let next = (*w).next;
            if pred((*w).events) {
                unlink(pd, w);
                (*w).result = result;
                out.gs.push((*w).g);
            }
            w = next;
        }
    }
}

/// The fd's number now names another file (gs_fd_close, gs_accept's result, a socket gs_connect
/// starts): forget what was known and wake every waiter with `GS_ECLOSED` (invariant 3).
/// Returns whether it was in the epoll instance.
pub fn reset(pd: &PollDesc) -> bool {
    let mut wl = WakeList::new();
    pd.lock.lock();
    pd.gen.fetch_add(1, Release);
    let was = pd.reg.swap(REG_NONE, AcqRel) == REG_ADDED;
    pd.kind.store(KIND_UNKNOWN, Relaxed);
    // SAFETY: under the lock.
    unsafe { take_waiters(pd, &mut wl, GS_ECLOSED, |_| true) };
    // SAFETY: taken above in this function.
    unsafe { pd.lock.unlock() };
    wl.ready_all();
    was
}

/// gs_fd_close: wakes the waiters of `fd` (GS_ECLOSED), takes it out of epoll, closes it.
/// `GS_EINVAL` when it was not open.
pub fn close(fd: c_int) -> c_int {
    if fd < 0 {
        return GS_EINVAL;
    }
    if let Some(pd) = desc(fd) {
        if reset(pd) {
            let ep = EPFD.load(Acquire);
            let mut ev = libc::epoll_event { events: 0, u64: 0 };
            // SAFETY: plain system call; failure (already gone) is fine.
            unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, &mut ev) };
        }
    }
    // SAFETY: closing a descriptor the caller gave us to close.
    let r = unsafe { libc::close(fd) };
    if r < 0 && errno() == libc::EBADF {
        GS_EINVAL
    } else {
        GS_OK
    }
}

// ---- polling ---------------------------------------------------------------------------------

/// Looks at the epoll instance once: waits until `deadline` (nanotime; `NO_DEADLINE`: no
/// limit; in the past: does not block) and collects the goroutines whose wait ended. The caller
/// holds `POLLER_BUSY` (invariant 5).
fn poll_once(deadline: i64, out: &mut WakeList) {
    const N: usize = 128;
    let ep = EPFD.load(Acquire);
    let mut evs = [libc::epoll_event { events: 0, u64: 0 }; N];
    let n = if deadline == NO_DEADLINE {
        // SAFETY: evs has room for N events.
        unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), N as c_int, -1) }
    } else {
        let left = (deadline - nanotime()).max(0);
        epoll_wait_ns(ep, &mut evs, left)
    };
    LAST_POLL.store(nanotime_coarse(), Relaxed);
    for ev in evs.iter().take(n.max(0) as usize) {
        let (mask, data) = (ev.events, ev.u64);
        if data == BREAK_TOKEN {
            let mut buf = 0u64;
            // SAFETY: reads our eventfd's counter (non-blocking).
            unsafe { libc::read(EVFD.load(Acquire), (&raw mut buf).cast(), 8) };
            BREAK_PENDING.store(false, Release);
            continue;
        }
        let Some(pd) = desc(data as c_int) else { continue };
        let errhup = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
        let rd = mask & ((libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) as u32 | errhup) != 0;
        let wr = mask & (libc::EPOLLOUT as u32 | errhup) != 0;
        pd.lock.lock();
        if rd {
            pd.rseq.fetch_add(1, Release);
        }
        if wr {
            pd.wseq.fetch_add(1, Release);
        }
        // SAFETY: under the lock.
        unsafe {
            take_waiters(pd, out, GS_OK, |e| (rd && e & POLL_IN != 0) || (wr && e & POLL_OUT != 0));
        }
        // SAFETY: taken above in this function.
        unsafe { pd.lock.unlock() };
    }
}

/// epoll_wait with a nanosecond timeout (epoll_pwait2), or milliseconds rounded up.
fn epoll_wait_ns(ep: c_int, evs: &mut [libc::epoll_event], ns: i64) -> c_int {
    if !NO_PWAIT2.load(Relaxed) {
        let ts = libc::timespec { tv_sec: ns / 1_000_000_000, tv_nsec: ns % 1_000_000_000 };
        const SYS_EPOLL_PWAIT2: libc::c_long = 441;
        // SAFETY: epoll_pwait2(epfd, events, maxevents, timeout, sigmask = NULL, sigsetsize).
        let r = unsafe {
            libc::syscall(SYS_EPOLL_PWAIT2, ep, evs.as_mut_ptr(), evs.len() as c_int, &ts, null_mut::<c_void>(), 8)
        };
        if r >= 0 || errno() != libc::ENOSYS {
            return r as c_int;
        }
        NO_PWAIT2.store(true, Relaxed);
    }
    let ms = (ns + 999_999) / 1_000_000;
    // SAFETY: evs has room for evs.len() events.
    unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), evs.len() as c_int, ms.min(i32::MAX as i64) as c_int) }
}

/// Takes the poller role (invariant 5) if free.
fn try_poller() -> bool {
    !POLLER_BUSY.load(Relaxed) && !POLLER_BUSY.swap(true, Acquire)
}

/// An M about to sleep (m::stop_m, its P released): sleeps in epoll_wait if nobody else
/// does, else on its note, until `wake_at` or a wake-up; readies the goroutines whose fds
/// became ready. (issue #13 hook)
///
/// # Safety
/// `m` is the calling thread's M, on its g0, with no P.
pub(crate) unsafe fn idle_sleep(m: *mut M, wake_at: i64) {
    // SAFETY: per the contract, the note is ours to sleep on.
    let note = unsafe { &(*m).note };
    if !inited() || !try_poller() {
        note.sleep(wake_at);
        return;
    }
    let mut wl = WakeList::new();
    note.sleep_in(wake_at, |d| poll_once(d, &mut wl));
    POLLER_BUSY.store(false, SeqCst);
    wl.ready_all();
    if waiters() != 0 {
        // Nobody may look at epoll for a while now: the sysmon thread watches.
        super::syscall::sysmon_watch_fds();
    }
}

/// A non-blocking look at the epoll instance when goroutines wait on fds and nobody else is
/// looking (schedule() before its M goes idle; the sysmon thread). Returns how many goroutines
/// it readied. (issue #13 hook)
pub(crate) fn poll_nonblock() -> usize {
    if waiters() == 0 || !inited() || !try_poller() {
        return 0;
    }
    let mut wl = WakeList::new();
    poll_once(0, &mut wl);
    POLLER_BUSY.store(false, Release);
    wl.ready_all()
}

/// How long goroutines may wait on fds without anyone looking at epoll before the sysmon thread
/// looks (Go's sysmon: 10 ms).
pub const POLL_STARVE_NS: i64 = 10_000_000;

/// For the sysmon thread: goroutines wait on fds, threads run goroutines, and none of them sits
/// in epoll_wait (so an fd may be ready with nobody looking).
pub(crate) fn needs_watch() -> bool {
    waiters() != 0 && !POLLER_BUSY.load(SeqCst) && anyone_in_scheduler()
}

/// For the sysmon thread: poll if goroutines wait on fds and nobody has looked for
/// [`POLL_STARVE_NS`].
pub(crate) fn poll_if_starved() {
    if waiters() != 0 && !POLLER_BUSY.load(Relaxed) && nanotime_coarse() - LAST_POLL.load(Relaxed) > POLL_STARVE_NS {
        poll_nonblock();
    }
}

// ---- fork ------------------------------------------------------------------------------------

/// Fork child (fork.rs): the epoll instance and eventfd are the parent's (shared with it: the
/// child must not take the parent's events): close them; every desc is forgotten (its waiters
/// were the parent's goroutines, dropped in the child).
pub(crate) fn after_fork_child() {
    let (ep, ev) = (EPFD.swap(-1, AcqRel), EVFD.swap(-1, AcqRel));
    // SAFETY: our own descriptors (inherited copies).
    unsafe {
        if ep >= 0 {
            libc::close(ep);
        }
        if ev >= 0 {
            libc::close(ev);
        }
    }
    // SAFETY: the child's only thread; a holder in the parent does not exist here.
    unsafe { INIT_LOCK.unlock() };
    POLLER_BUSY.store(false, Relaxed);
    BREAK_PENDING.store(false, Relaxed);
    WAITERS.store(0, SeqCst);
    for c in TABLE.iter() {
        let chunk = c.load(Acquire);
        if chunk.is_null() {
            continue;
        }
        for i in 0..CHUNK {
            // SAFETY: a live chunk of never-freed descs.
            let pd = unsafe { &*chunk.add(i) };
            // SAFETY: the child's only thread: a holder was a thread of the parent.
            unsafe { pd.lock.unlock() };
            pd.gen.fetch_add(1, Relaxed);
            pd.reg.store(REG_NONE, Relaxed);
            pd.kind.store(KIND_UNKNOWN, Relaxed);
            // SAFETY: as above; the waiters are frames of dropped goroutines.
            unsafe { *pd.head.get() = null_mut() };
        }
    }
}

/// The fd a goroutine in `[IO wait]` waits on (gs_dump), -1 if none.
pub fn fd_of(g: &G) -> i32 {
    g.waitfd
}
