//! Exports of the I/O API (issue #13): waiting for file descriptors (`gs_fd_wait`), POSIX-style
//! calls that park the goroutine instead of blocking its thread (`gs_read`, `gs_write`,
//! `gs_accept`, `gs_connect`), `gs_fd_close`, and `gs_blocking` for calls that cannot be made
//! non-blocking. The mechanisms are sched::netpoll and sched::syscall; this file is the argument
//! checks, the retry loops and errno.
//!
//! `gs_read` & co return what the POSIX call returns and set `errno` on failure (unlike the rest
//! of the API, which returns GS_E* codes and never touches errno); on success errno is left as
//! the caller had it.

use super::types::*;
use super::{check_caller, export, FromCode};
use crate::base::errno;
use crate::sched::grow;
use crate::sched::netpoll::{self, PollDesc, KIND_OTHER, KIND_SOCKET, KIND_UNKNOWN, NO_DEADLINE, POLL_IN, POLL_OUT};
use crate::sched::{self, Where};
use core::ffi::{c_int, c_void};
use core::sync::atomic::Ordering::Relaxed;

/// `gs_fd_wait` events bit: the fd is readable (data, a pending connection, end of file).
pub const GS_POLL_IN: c_int = 1;
/// `gs_fd_wait` events bit: the fd is writable (room in the buffer, a connect finished).
pub const GS_POLL_OUT: c_int = 2;

fn errno() -> c_int {
    errno::get()
}

fn set_errno(e: c_int) {
    errno::set(e)
}

/// The result of `gs_read` & co through [`export!`]: a caught panic is -1 with errno `EIO` (the
/// POSIX convention), not a GS_E* code.
struct Posix<T>(T);

impl<T: From<i8>> FromCode for Posix<T> {
    fn from_code(_: c_int) -> Self {
        set_errno(libc::EIO);
        Posix(T::from(-1))
    }
}

/// Waits on `fd` from a thread that is not running a goroutine: `ppoll`, retried on EINTR until
/// `deadline` (nanotime; `NO_DEADLINE`: none). `GS_OK` when ready (or an error/hang-up is
/// pending), `GS_ETIMEDOUT`, `GS_EINVAL` (not an open fd).
fn thread_wait(fd: c_int, events: u32, deadline: i64) -> c_int {
    let mut ev: libc::c_short = 0;
    if events & POLL_IN != 0 {
        ev |= libc::POLLIN;
    }
    if events & POLL_OUT != 0 {
        ev |= libc::POLLOUT;
    }
    loop {
        let mut pfd = libc::pollfd { fd, events: ev, revents: 0 };
        let ts;
        let tsp = if deadline == NO_DEADLINE {
            core::ptr::null()
        } else {
            let left = (deadline - sched::nanotime()).max(0);
            ts = libc::timespec { tv_sec: left / 1_000_000_000, tv_nsec: left % 1_000_000_000 };
            &ts as *const libc::timespec
        };
        // SAFETY: one pollfd; tsp is null or points to ts.
        let r = unsafe { libc::ppoll(&mut pfd, 1, tsp, core::ptr::null()) };
        if r < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return GS_EINVAL;
        }
        if r == 0 {
            return GS_ETIMEDOUT;
        }
        if pfd.revents & libc::POLLNVAL != 0 {
            return GS_EINVAL;
        }
        return GS_OK;
    }
}

/// The deadline of a relative timeout (`< 0`: none; saturating).
fn deadline_of(timeout_ns: i64) -> i64 {
    if timeout_ns < 0 {
        NO_DEADLINE
    } else {
        sched::nanotime().saturating_add(timeout_ns)
    }
}

/// Parks the calling goroutine until `fd` is ready for `events`, an error or hang-up is pending
/// on it (the caller's next call on the fd reports it), or `timeout_ns` nanoseconds passed
/// (`timeout_ns < 0`: no timeout; 0: only looks; `INT64_MAX`: for ever). `events` is
/// `GS_POLL_IN`, `GS_POLL_OUT` or both. Level-triggered: returns at once if the fd is ready now.
/// As with `epoll`, a `GS_OK` can be followed by `EAGAIN` (another goroutine took the data):
/// loop.
///
/// Returns `GS_OK`, `GS_ETIMEDOUT`, `GS_ECLOSED` (`gs_fd_close` closed the fd while waiting),
/// `GS_EINVAL` (negative or not open fd, an fd above 4,194,303, events 0 or with unknown bits),
/// `GS_ENOMEM` (the kernel refused to watch it), `GS_ESTATE` inside a `gs_systemstack` or
/// `gs_blocking` function. From a thread that is not running a goroutine it blocks that thread
/// (`ppoll`); `gs_fd_close` does not wake such a thread (it sees its timeout or the fd's own
/// events). Regular files are always ready.
///
/// An fd closed with plain `close()` while goroutines wait on it does not wake them (they wait
/// for their timeout, or until the number names a new file that gs_accept/gs_connect returns
/// or starts, or gs_fd_close is called on the number: then `GS_ECLOSED`); use gs_fd_close.
/// Such goroutines count as waiting for I/O, not as deadlocked.
#[no_mangle]
pub extern "C" fn gs_fd_wait(fd: c_int, events: c_int, timeout_ns: i64) -> c_int {
    if fd < 0 || events & !(GS_POLL_IN | GS_POLL_OUT) != 0 || events == 0 {
        return GS_EINVAL;
    }
    grow::secure_stack(grow::RUNTIME_ENTRY_STACK);
    export!({
        let events = events as u32;
        match sched::whereami() {
            Where::SystemStack => GS_ESTATE,
            Where::Outside => thread_wait(fd, events, deadline_of(timeout_ns)),
            Where::Goroutine(..) => {
                let Some(pd) = netpoll::desc(fd) else { return GS_EINVAL };
                let snap = pd.snapshot();
                match thread_wait(fd, events, 0) {
                    GS_ETIMEDOUT => {}
                    rc => return rc, // ready, or not open
                }
                if timeout_ns == 0 {
                    return GS_ETIMEDOUT;
                }
                netpoll::wait(fd, pd, events, snap, deadline_of(timeout_ns))
            }
        }
    })
}

/// Closes `fd` after waking every goroutine waiting on it in `gs_fd_wait` (`GS_ECLOSED`) or in
/// `gs_read`/`gs_write`/`gs_accept`/`gs_connect` (-1, `EBADF`), and takes it out of the poller.
/// `GS_OK`, or `GS_EINVAL` if it was not open. Callable from any thread. A goroutine that is
/// inside a system call on the fd at that moment (another thread) is not stopped; one about to
/// wait sees the close.
#[no_mangle]
pub extern "C" fn gs_fd_close(fd: c_int) -> c_int {
    export!({ netpoll::close(fd) })
}

/// What the I/O calls do when they cannot wait in the poller: `sched::netpoll::wait`'s status as
/// an errno.
fn wait_errno(rc: c_int) -> c_int {
    match rc {
        GS_ECLOSED | GS_EINVAL => libc::EBADF,
        GS_ENOMEM => libc::ENOMEM,
        _ => libc::EIO,
    }
}

/// The common frame of `gs_read` & co (inside `export!(unchecked, ..)`, which turns a panic
/// into -1/`EIO`): the caller's errno kept on success, set on failure.
fn posix_call<T: From<i8>>(body: impl FnOnce(bool) -> Result<T, c_int>) -> Posix<T> {
    grow::secure_stack(grow::RUNTIME_ENTRY_STACK);
    let saved = errno();
    // In a signal handler or off a goroutine: the thread blocks (ppoll).
    let in_goroutine = check_caller().is_ok() && matches!(sched::whereami(), Where::Goroutine(..));
    match body(in_goroutine) {
        Ok(v) => {
            set_errno(saved);
            Posix(v)
        }
        Err(e) => {
            set_errno(e);
            Posix(T::from(-1))
        }
    }
}

/// Makes `fd` non-blocking if it is not (F_GETFL, F_SETFL).
fn set_nonblock(fd: c_int) -> Result<(), c_int> {
    // SAFETY: plain fcntl calls.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl < 0 {
            return Err(errno());
        }
        if fl & libc::O_NONBLOCK == 0 && libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) < 0 {
            return Err(errno());
        }
    }
    Ok(())
}

/// The loop of `gs_read`/`gs_write` on a goroutine: `op(kind)` is the system call (recv/send
/// with MSG_DONTWAIT on a socket, read/write on anything else, made non-blocking first).
fn goroutine_rw(fd: c_int, pd: &'static PollDesc, dir: u32, mut op: impl FnMut(u8) -> isize) -> Result<isize, c_int> {
    loop {
        let snap = pd.snapshot();
        let kind = pd.kind.load(Relaxed);
        if kind == KIND_OTHER {
            // Not a socket: only O_NONBLOCK keeps read/write from blocking (checked every call:
            // the number may name another file since).
            set_nonblock(fd)?;
        }
        let n = op(kind);
        if n >= 0 {
            if kind == KIND_UNKNOWN {
                pd.kind.store(KIND_SOCKET, Relaxed);
            }
            return Ok(n);
        }
        match errno() {
            libc::EINTR => continue,
            libc::ENOTSOCK => pd.kind.store(KIND_OTHER, Relaxed),
            libc::EAGAIN => match netpoll::wait(fd, pd, dir, snap, NO_DEADLINE) {
                GS_OK => {}
                rc => return Err(wait_errno(rc)),
            },
            e => return Err(e),
        }
    }
}

/// The loop on a thread (not a goroutine): the call itself, `ppoll` on EAGAIN, EINTR retried.
fn thread_rw(fd: c_int, dir: u32, mut op: impl FnMut() -> isize) -> Result<isize, c_int> {
    loop {
        let n = op();
        if n >= 0 {
            return Ok(n);
        }
        match errno() {
            libc::EINTR => continue,
            libc::EAGAIN => {
                if thread_wait(fd, dir, NO_DEADLINE) == GS_EINVAL {
                    return Err(libc::EBADF);
                }
            }
            e => return Err(e),
        }
    }
}

/// `read(2)` for goroutines: on `EAGAIN` the goroutine parks until the fd is readable and the
/// call is retried (other goroutines run meanwhile); `EINTR` is retried. Returns the bytes read
/// (0 at end of file), or -1 with `errno` (`EBADF` also when `gs_fd_close` closed the fd while
/// waiting). Sockets are read with `recv(MSG_DONTWAIT)` and left as they are; other fds (pipes,
/// terminals) are made non-blocking (`O_NONBLOCK`, which other users of the same open file
/// see). Never blocks the thread when called from a goroutine; from a thread that is not running
/// one (or inside `gs_systemstack`/`gs_blocking`) it behaves like a blocking `read` (`ppoll` on
/// `EAGAIN`). Not from a signal handler on a goroutine's thread: there it blocks the thread too.
/// errno is read fresh on return: a migratable goroutine may have changed threads meanwhile.
///
/// # Safety
/// `buf` points to `count` writable bytes (as for `read`).
#[no_mangle]
pub unsafe extern "C" fn gs_read(fd: c_int, buf: *mut c_void, count: usize) -> libc::ssize_t {
    export!(unchecked, {
        posix_call(|in_g| {
            let rd = |kind: u8| -> isize {
                // SAFETY: the caller's buffer, as read(2)/recv(2) take it.
                unsafe {
                    if kind == KIND_OTHER {
                        libc::read(fd, buf, count)
                    } else {
                        libc::recv(fd, buf, count, libc::MSG_DONTWAIT)
                    }
                }
            };
            if fd < 0 {
                return Err(libc::EBADF);
            }
            match netpoll::desc(fd) {
                Some(pd) if in_g => goroutine_rw(fd, pd, POLL_IN, rd),
                _ => thread_rw(fd, POLL_IN, || rd(KIND_OTHER)),
            }
        })
    })
    .0
}

/// `write(2)` that writes everything (Go's `Write`): on a partial write it goes on with the
/// rest, on `EAGAIN` the goroutine parks until the fd is writable; `EINTR` is retried. Returns
/// `count`, or -1 with `errno` (some bytes may have been written before the error, as with Go's
/// `Write` returning n < len). Sockets are written with `send(MSG_DONTWAIT)` (a broken
/// connection raises SIGPIPE as `write` does), other fds are made non-blocking. Threads outside
/// goroutines: as `gs_read`.
///
/// # Safety
/// `buf` points to `count` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn gs_write(fd: c_int, buf: *const c_void, count: usize) -> libc::ssize_t {
    export!(unchecked, {
        posix_call(|in_g| {
            if fd < 0 {
                return Err(libc::EBADF);
            }
            let mut done = 0usize;
            loop {
                let wr = |kind: u8| -> isize {
                    // SAFETY: the caller's buffer, `done <= count`.
                    unsafe {
                        let p = (buf as *const u8).add(done).cast::<c_void>();
                        if kind == KIND_OTHER {
                            libc::write(fd, p, count - done)
                        } else {
                            libc::send(fd, p, count - done, libc::MSG_DONTWAIT)
                        }
                    }
                };
                let n = match netpoll::desc(fd) {
                    Some(pd) if in_g => goroutine_rw(fd, pd, POLL_OUT, wr)?,
                    _ => thread_rw(fd, POLL_OUT, || wr(KIND_OTHER))?,
                };
                done += n as usize;
                if done >= count {
                    return Ok(count as isize);
                }
            }
        })
    })
    .0
}

/// `accept4(2)` for goroutines: the returned connection is non-blocking and close-on-exec
/// (`SOCK_NONBLOCK | SOCK_CLOEXEC`); the listening socket is made non-blocking if it is not. On
/// `EAGAIN` the goroutine parks until a connection arrives; `EINTR` and `ECONNABORTED` are
/// retried. Returns the new fd, or -1 with `errno`. `addr`/`addrlen` as for `accept` (may be
/// NULL). Threads outside goroutines: as `gs_read`.
///
/// # Safety
/// `addr` and `addrlen` are NULL or valid as for `accept`.
#[no_mangle]
pub unsafe extern "C" fn gs_accept(fd: c_int, addr: *mut libc::sockaddr, addrlen: *mut libc::socklen_t) -> c_int {
    export!(unchecked, {
        posix_call(|in_g| {
            if fd < 0 {
                return Err(libc::EBADF);
            }
            let pd = netpoll::desc(fd).filter(|_| in_g);
            if pd.is_some() {
                set_nonblock(fd)?;
            }
            loop {
                let snap = pd.map(|pd| pd.snapshot());
                // SAFETY: the caller's out-parameters, as accept4 takes them.
                let r = unsafe { libc::accept4(fd, addr, addrlen, libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) };
                if r >= 0 {
                    if let Some(npd) = netpoll::desc(r) {
                        // A new file under this number (invariant 3 of netpoll).
                        netpoll::reset(npd);
                        npd.kind.store(KIND_SOCKET, Relaxed);
                    }
                    return Ok(r);
                }
                match errno() {
                    libc::EINTR | libc::ECONNABORTED => continue,
                    libc::EAGAIN => {
                        let rc = match (pd, snap) {
                            (Some(pd), Some(snap)) => netpoll::wait(fd, pd, POLL_IN, snap, NO_DEADLINE),
                            _ => thread_wait(fd, POLL_IN, NO_DEADLINE),
                        };
                        if rc != GS_OK {
                            return Err(wait_errno(rc));
                        }
                    }
                    e => return Err(e),
                }
            }
        })
    })
    .0
}

/// `connect(2)` for goroutines: makes the socket non-blocking, starts the connection and parks
/// the goroutine until it is established or failed (`EINTR` does not abandon it). Returns 0, or
/// -1 with `errno` (`ECONNREFUSED`, `ETIMEDOUT`, ... from `SO_ERROR`). Threads outside
/// goroutines: the socket keeps its mode; a non-blocking one is waited for with `ppoll`.
///
/// # Safety
/// `addr` points to `addrlen` bytes of a socket address.
#[no_mangle]
pub unsafe extern "C" fn gs_connect(fd: c_int, addr: *const libc::sockaddr, addrlen: libc::socklen_t) -> c_int {
    export!(unchecked, {
        posix_call(|in_g| {
            if fd < 0 {
                return Err(libc::EBADF);
            }
            let pd = netpoll::desc(fd).filter(|_| in_g);
            if let Some(pd) = pd {
                set_nonblock(fd)?;
                // A socket that starts a connection is a new file for the poller (invariant 3).
                netpoll::reset(pd);
                pd.kind.store(KIND_SOCKET, Relaxed);
            }
            let mut snap = pd.map(|pd| pd.snapshot());
            // SAFETY: the caller's address, as connect takes it.
            let r = unsafe { libc::connect(fd, addr, addrlen) };
            if r == 0 {
                return Ok(0);
            }
            match errno() {
                libc::EINPROGRESS | libc::EINTR | libc::EAGAIN => {}
                e => return Err(e),
            }
            loop {
                let rc = match (pd, snap) {
                    (Some(pd), Some(s)) => netpoll::wait(fd, pd, POLL_OUT, s, NO_DEADLINE),
                    _ => thread_wait(fd, POLL_OUT, NO_DEADLINE),
                };
                if rc != GS_OK {
                    return Err(wait_errno(rc));
                }
                snap = pd.map(|pd| pd.snapshot());
                // A wake-up is a hint: the connection is done when the socket is writable.
                if pd.is_some() && thread_wait(fd, POLL_OUT, 0) == GS_ETIMEDOUT {
                    continue;
                }
                let mut err: c_int = 0;
                let mut len = core::mem::size_of::<c_int>() as libc::socklen_t;
                // SAFETY: reads an int option into err.
                if unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, (&raw mut err).cast(), &mut len) }
                    < 0
                {
                    return Err(errno());
                }
                return if err == 0 { Ok(0) } else { Err(err) };
            }
        })
    })
    .0
}

/// Runs `func(arg)`, a call that may block (a disk read, `getaddrinfo`, a database client), on
/// the calling goroutine's thread, on the thread's own stack (as `gs_systemstack`), and returns
/// `GS_OK` when it returns. If it runs longer than ~20 us while other goroutines could use the
/// thread's P, a monitor thread hands the P to another thread (Go's entersyscall/sysmon); when
/// `func` returns the goroutine gets a P back (waiting for one if needed).
///
/// Who keeps running meanwhile: goroutines on other threads, and the P's goroutines that may
/// move: those not started yet and `GS_SPAWN_MIGRATABLE` ones (`GOSTACK_MIGRATE=1`: all).
/// Goroutines that already ran on this thread stay on it (compilers cache `&errno` across
/// calls) and wait for `func` to return; so with one P, spawn what must keep running during
/// blocking calls as migratable (docs/DESIGN.md, "Blocking calls").
///
/// Inside `func`, gs calls that would switch goroutines return `GS_ESTATE` (`gs_fd_wait` too);
/// `gs_read` & co block the thread like their POSIX namesakes; spawning, channel try-variants,
/// sends to buffered channels and waking goroutines work. The errno `func` leaves is the
/// caller's to see. Outside goroutines: a direct call. `GS_EINVAL` for a NULL `func`,
/// `GS_ESTATE` inside `gs_systemstack` or another `gs_blocking`.
///
/// # Safety
/// `func` must be safe to call with `arg`.
#[no_mangle]
pub unsafe extern "C" fn gs_blocking(func: gs_fn, arg: *mut c_void) -> c_int {
    let Some(f) = func else { return GS_EINVAL };
    grow::secure_stack(grow::RUNTIME_ENTRY_STACK);
    if let Err(code) = check_caller() {
        return code;
    }
    // SAFETY: f and arg are the caller's, under gs_blocking's documented contract.
    export!(unchecked, { unsafe { sched::syscall::blocking(f, arg) } })
}
