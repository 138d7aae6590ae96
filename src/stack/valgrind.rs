//! Telling valgrind about goroutine stacks (issue #14), with its client requests: the magic
//! instruction sequence of `valgrind.h`, a no-op on a real CPU (on x86_64 four rotates of rdi by
//! 128 bits in all, and `xchg rbx, rbx`; arch::valgrind_client_request), which valgrind's JIT
//! recognises. Without them memcheck sees every
//! switch to a goroutine stack as a multi-megabyte stack frame ("client switching stacks?") and
//! reports reads of the other stacks as invalid.
//!
//! Free when not under valgrind: [`active`] asks once (`RUNNING_ON_VALGRIND`), and every other
//! function returns at once when it said no. Under valgrind the scheduler registers a goroutine's
//! stack when the goroutine gets one (spawn of a FIXED stack, first run of a GROWABLE one), changes
//! the registration when the stack moves, and deregisters it when the goroutine exits; the id lives
//! in the G (`G::vg_stack`).
//!
//! Stack memory nobody runs on is **no-access** for memcheck ([`noaccess`]): every mapping of
//! stacks from the moment it is mapped (src/stack/pool.rs: `map`), and every stack given back to a
//! pool; [`register`] and [`fresh`] make a stack addressable again when a goroutine takes it. So a
//! pointer into the stack of a goroutine that has exited is an invalid access, as it is in Go, and
//! memcheck's leak check at exit skips the reservations: it reads every addressable word of the
//! process, and gigabytes of reserved arenas (10,000 goroutines of 256 KiB windows) took it more
//! than ten minutes (test_chan_classic).

use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

const RUNNING_ON_VALGRIND: usize = 0x1001;
const STACK_REGISTER: usize = 0x1501;
const STACK_DEREGISTER: usize = 0x1502;
const STACK_CHANGE: usize = 0x1503;
/// memcheck's requests (`VG_USERREQ_TOOL_BASE('M','C') + 0, + 1, + 2`); other tools ignore them.
const MAKE_MEM_NOACCESS: usize = 0x4d43_0000;
const MAKE_MEM_UNDEFINED: usize = 0x4d43_0001;
const MAKE_MEM_DEFINED: usize = 0x4d43_0002;

/// 0: not asked yet; 1: not under valgrind; 2: under valgrind.
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// One client request: `args[0]` is the request code, `args[1..]` its arguments; returns
/// valgrind's answer, or `default` on a real CPU (the instruction sequence: arch).
#[inline(always)]
fn request(default: usize, args: &[usize; 6]) -> usize {
    crate::arch::valgrind_client_request(default, args)
}

/// Whether the program runs under valgrind (asked once).
#[inline]
pub fn active() -> bool {
    match ACTIVE.load(Relaxed) {
        0 => {
            let on = request(0, &[RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0]) != 0;
            ACTIVE.store(if on { 2 } else { 1 }, Relaxed);
            on
        }
        a => a == 2,
    }
}

/// Registers `[lo, hi)` as a stack; returns valgrind's id for it (0 when not under valgrind).
/// The range becomes addressable with undefined contents, as a fresh stack is: a pooled stack
/// still carries the marks of its last user (memcheck made everything below that user's stack
/// pointer inaccessible).
pub fn register(lo: usize, hi: usize) -> u32 {
    if !active() {
        return 0;
    }
    fresh(lo, hi);
    request(0, &[STACK_REGISTER, lo, hi, 0, 0, 0]) as u32
}

/// `[lo, hi)` is a stack about to be used afresh (a move's destination): addressable, contents
/// undefined.
pub fn fresh(lo: usize, hi: usize) {
    if active() {
        request(0, &[MAKE_MEM_UNDEFINED, lo, hi - lo, 0, 0, 0]);
    }
}

/// `[lo, hi)` is stack memory no goroutine runs on (a new mapping, a stack back in a pool): any
/// access to it is an error until [`register`] or [`fresh`].
pub fn noaccess(lo: usize, hi: usize) {
    if active() {
        request(0, &[MAKE_MEM_NOACCESS, lo, hi - lo, 0, 0, 0]);
    }
}

/// `[lo, hi)` is about to be read word by word by the stack mover, which looks at every word
/// (is it a pointer into the stack?) and so would make memcheck report each uninitialised one.
/// The mover's reads are not the program's: mark them defined.
pub fn defined(lo: usize, hi: usize) {
    if active() {
        request(0, &[MAKE_MEM_DEFINED, lo, hi - lo, 0, 0, 0]);
    }
}

/// The stack with id `id` is now `[lo, hi)` (it moved).
pub fn change(id: u32, lo: usize, hi: usize) {
    if active() && id != 0 {
        request(0, &[STACK_CHANGE, id as usize, lo, hi, 0, 0]);
    }
}

/// Forgets the stack with id `id`.
pub fn deregister(id: u32) {
    if active() && id != 0 {
        request(0, &[STACK_DEREGISTER, id as usize, 0, 0, 0, 0]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn not_under_valgrind_every_request_is_a_no_op() {
        // `cargo test` runs natively: the magic sequence must leave everything as it was.
        if super::active() {
            return;
        }
        assert_eq!(super::register(0x1000, 0x2000), 0);
        super::change(0, 0x1000, 0x2000);
        super::deregister(0);
        assert_eq!(super::request(77, &[0x1001, 0, 0, 0, 0, 0]), 77);
    }
}
