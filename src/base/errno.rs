//! The calling thread's `errno` in two instructions, on any thread.
//!
//! Every export saves errno on entry and writes it back on return (abi::Entry, issue 20), so its
//! cost is paid on every call. `__errno_location()` is a call through the PLT; the M's cached
//! pointer needs the M and, after the call, the M again (a migratable goroutine may have changed
//! threads). But glibc's errno is an initial-exec TLS variable of libc.so: it lies at the same
//! offset from the thread pointer in every thread (static TLS), so that offset, measured once at
//! load (and kept in a word of the assembly, `gs_errno_tp_off`), reaches the running thread's errno with one `%fs`-relative access, like `gs_tls_m`.
//! (callgrind: 13 instructions per call became 4.)
//!
//! The offset is checked on every thread that becomes an M (`check_thread`); if a C library ever
//! placed errno elsewhere the fast path is turned off for good and `__errno_location()` is used.

use crate::arch;
use core::ffi::c_int;

#[ctor::ctor]
fn measure() {
    // SAFETY: no preconditions.
    let loc = unsafe { libc::__errno_location() } as isize;
    let off = loc.wrapping_sub(arch::thread_pointer() as isize);
    // A static-TLS variable lies within a few pages of the thread pointer; anything else is a
    // layout we do not know: keep the slow path.
    if off != 0 && off.unsigned_abs() < 1 << 20 {
        arch::set_errno_tp_off(off);
    }
}

/// Checks the measured offset on the calling thread (a thread that is becoming an M). Turns the
/// fast path off if it does not hold here.
pub fn check_thread() {
    let off = arch::errno_tp_off();
    // SAFETY: no preconditions.
    let loc = unsafe { libc::__errno_location() } as isize;
    if off != 0 && loc.wrapping_sub(arch::thread_pointer() as isize) != off {
        arch::set_errno_tp_off(0);
    }
}

/// The calling thread's errno.
#[inline(always)]
pub fn get() -> c_int {
    let off = arch::errno_tp_off();
    if off == 0 {
        return get_slow();
    }
    arch::tls_load_i32(off)
}

/// Sets the calling thread's errno.
#[inline(always)]
pub fn set(v: c_int) {
    let off = arch::errno_tp_off();
    if off == 0 {
        return set_slow(v);
    }
    arch::tls_store_i32(off, v)
}

#[cold]
#[inline(never)]
fn get_slow() -> c_int {
    // SAFETY: this thread's errno.
    unsafe { *libc::__errno_location() }
}

#[cold]
#[inline(never)]
fn set_slow(v: c_int) {
    // SAFETY: this thread's errno.
    unsafe { *libc::__errno_location() = v }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_libc_on_every_thread() {
        let probe = || {
            check_thread();
            assert_ne!(arch::errno_tp_off(), 0, "the fast path should hold on glibc");
            for v in [0, 1, libc::EAGAIN, -7, i32::MAX] {
                set(v);
                // SAFETY: this thread's errno.
                assert_eq!(unsafe { *libc::__errno_location() }, v);
                // SAFETY: as above.
                unsafe { *libc::__errno_location() = v ^ 0x55 };
                assert_eq!(get(), v ^ 0x55);
            }
        };
        probe();
        let ts: Vec<_> = (0..4).map(|_| std::thread::spawn(probe)).collect();
        for t in ts {
            t.join().unwrap();
        }
    }
}
