//! Go-style fatal errors, printable from anywhere: a signal handler, g0, a goroutine with little
//! stack left. Formatting goes into a fixed buffer on the stack (no allocation, no locks) and out
//! through write(2).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering::*};

/// A fixed-size, allocation-free writer to a file descriptor. Flushes when full and on drop.
pub struct FdWriter {
    fd: i32,
    len: usize,
    /// A write failed (bad descriptor, closed pipe, full disk): the rest is dropped.
    failed: bool,
    buf: [u8; 512],
}

impl FdWriter {
    pub const fn stderr() -> Self {
        FdWriter::new(2)
    }

    pub const fn new(fd: i32) -> Self {
        FdWriter { fd, len: 0, failed: false, buf: [0; 512] }
    }

    /// Flushes and says whether everything written so far reached the descriptor.
    pub fn finish(mut self) -> bool {
        self.flush();
        !self.failed
    }

    pub fn flush(&mut self) {
        let mut off = 0;
        while off < self.len {
            // SAFETY: writes initialised bytes of our own buffer.
            let n = unsafe { libc::write(self.fd, self.buf[off..].as_ptr().cast(), self.len - off) };
            if n <= 0 {
                // SAFETY: reads this thread's errno.
                if n < 0 && unsafe { *libc::__errno_location() } == libc::EINTR {
                    continue;
                }
                self.failed = true;
                break;
            }
            off += n as usize;
        }
        self.len = 0;
    }
}

impl Write for FdWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

impl Drop for FdWriter {
    fn drop(&mut self) {
        self.flush();
    }
}

/// What a fatal error prints after its message: the scheduler registers a writer of the running
/// goroutine (`sched::dump_current_for_fatal`) when it starts, so that this lowest layer never
/// calls up into it. A `fn(&mut FdWriter)` stored as an address; 0: none yet. It must be
/// async-signal-safe (fatal errors are raised in the SIGSEGV handler).
static DUMP_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Registers what [`throw`] prints after its message (see [`DUMP_HOOK`]).
pub fn set_dump_hook(f: fn(&mut FdWriter)) {
    DUMP_HOOK.store(f as usize, Release);
}

/// Prints `runtime: <details>` lines already written by the caller, then Go's
/// `fatal error: <msg>`, and aborts the process.
pub fn throw(msg: &str) -> ! {
    let mut w = FdWriter::stderr();
    let _ = writeln!(w, "fatal error: {msg}");
    w.flush();
    let hook = DUMP_HOOK.load(Acquire);
    if hook != 0 {
        // SAFETY: only set_dump_hook stores here, always a `fn(&mut FdWriter)`.
        let f: fn(&mut FdWriter) = unsafe { core::mem::transmute::<usize, fn(&mut FdWriter)>(hook) };
        f(&mut w);
    }
    w.flush();
    // SAFETY: abort is async-signal-safe and never returns.
    unsafe { libc::abort() }
}

/// `fatal!("format", args..)`: a runtime bug: print `runtime: <details>`, then
/// `fatal error: unexpected runtime state` (and the running goroutine) and abort. The details do
/// not start with `runtime:` (the macro writes it).
macro_rules! fatal {
    ($($arg:tt)*) => {
        $crate::base::fatal::fatal_as!("unexpected runtime state"; $($arg)*)
    };
}
pub(crate) use fatal;

/// `fatal_as!("go message"; "format", args..)`: print `runtime: <details>`, then Go's
/// `fatal error: <go message>` (e.g. `out of memory`) and abort.
macro_rules! fatal_as {
    ($msg:expr; $($arg:tt)*) => {{
        let mut w = $crate::base::fatal::FdWriter::stderr();
        let _ = core::fmt::Write::write_fmt(&mut w, format_args!("runtime: {}\n", format_args!($($arg)*)));
        drop(w);
        $crate::base::fatal::throw($msg)
    }};
}
pub(crate) use fatal_as;
