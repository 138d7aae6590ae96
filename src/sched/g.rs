//! The G record (Go's runtime2.go `g`): a goroutine's stack, saved context, status and who
//! owns it, and the wait reasons shown by dumps.

use super::copystack;
use super::grow;
use super::m::M;
use crate::arch::RawFn;
use crate::base::types::*;
use crate::stack;
use crate::stack::Stack;
use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicU32};
use std::ffi::CString;

pub const G_IDLE: u32 = 0;
pub const G_RUNNABLE: u32 = 1;
pub const G_RUNNING: u32 = 2;
pub const G_WAITING: u32 = 3;
pub const G_DEAD: u32 = 4;
/// Dropped in a fork child (fork.rs): never runs again; a wake-up of it is ignored.
pub const G_ORPHAN: u32 = 5;

/// Why a goroutine is parked (Go's `waitReason`): one byte in the G, a name for dumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum WaitReason {
    /// Not parked (or parked by code that gives no reason).
    None = 0,
    ChanSend,
    ChanReceive,
    Select,
    Sleep,
    MutexLock,
    WaitGroupWait,
    SemaAcquire,
    /// The sync layer's own unit tests.
    Test,
    /// Waiting for an fd (netpoll.rs; `G::waitfd` says which). Go's "IO wait".
    IoWait,
    /// Running a gs_blocking call (syscall.rs; status RUNNING). Go's "syscall".
    Syscall,
}

impl WaitReason {
    /// The name `gs_dump` shows (Go's where Go has one).
    pub fn as_str(self) -> &'static str {
        WAIT_REASON_NAMES[self as usize]
    }
}

/// The names of the wait reasons, indexed by their value: `as_str`, and for debuggers through
/// DebugInfo (an array of `&str`, (pointer, length) pairs).
pub static WAIT_REASON_NAMES: [&str; 11] = [
    "",
    "chan send",
    "chan receive",
    "select",
    "sleep",
    "sync.Mutex.Lock",
    "sync.WaitGroup.Wait",
    "semacquire",
    "test",
    "IO wait",
    "syscall",
];

// One name per reason: the last reason's value is the table's last index.
const _: () = assert!(WaitReason::Syscall as usize == WAIT_REASON_NAMES.len() - 1);

/// Default stack reservation of a FIXED goroutine (lazily committed).
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;
/// Default window of a GROWABLE goroutine (chosen by measurement: docs/DESIGN.md, "The default window").
pub const DEFAULT_GROWABLE_STACK_SIZE: usize = stack::DEFAULT_WINDOW;
/// Default limit of a GROWABLE stack.
pub const DEFAULT_MAX_STACK: usize = 1 << 30;
/// Bytes above `stack.lo` kept free for the runtime: `stackguard0 = lo + STACK_GUARD`.
pub const STACK_GUARD: usize = 1024;

/// Saved context of a G that is not running: `sp` points at its switch frame (arch::SwitchFrame).
#[repr(C)]
pub struct Gobuf {
    pub sp: usize,
}

/// A goroutine.
#[repr(C)]
pub struct G {
    /// Saved context; 0 while running.
    pub(super) sched: Gobuf,
    /// `stack.lo + STACK_GUARD`: published in %fs:0x70 while running (GS_STACK_CHECK compares).
    pub(super) stackguard0: usize,
    pub(super) stack: Stack,
    pub(super) goid: i64,
    pub(super) status: AtomicU32,
    pub(super) stack_kind: u32,
    pub(super) flags: u32,
    pub(super) grows: u32,
    pub(super) shrinks: u32,
    /// FP control state (MXCSR, x87 control word) of the spawner, for the first run.
    pub(super) start_fp: crate::arch::FpControl,
    pub(super) max_stack: usize,
    /// The M running it (while RUNNING); the M it is pinned to once it ran, unless migratable.
    pub(super) m: *mut M,
    pub(super) lockedm: *mut M,
    /// Link for run queues and free lists.
    pub(super) schedlink: *mut G,
    /// Why it is parked (Go's waitReason), shown by gs_dump, SIGQUIT tracebacks and gdb.
    pub(super) waitreason: WaitReason,
    /// The fd waited on while `waitreason` is IoWait (netpoll.rs), -1 otherwise (issue #13; in
    /// the padding after `waitreason`).
    pub(super) waitfd: i32,
    /// Boxed: one word in the record (most goroutines have no name).
    pub(super) name: Option<Box<CString>>,
    /// Set for the goroutine of a gs_main call: signalled when it exits.
    pub(super) main_wait: *const MainWait,
    /// Embedding hooks (foreign-runtime state to swap on every switch), null for plain C.
    pub(super) embed_hooks: *const EmbedHooks,
    /// The embedder's per-goroutine data (e.g. a PyThreadState).
    pub(super) embed_data: *mut c_void,
    /// Copy-growing stacks: old stacks to free, shrink state (src/stack/grow.rs).
    pub(super) growth: grow::GrowState,
    /// A GROWABLE goroutine that has not run yet has no stack (`stack.lo == 0`): it takes one of
    /// `growth.initial` bytes at its first run ([`first_run`]), where it calls
    /// `start_fn(start_arg)` with the FP control state `start_fp` of its spawner.
    pub(super) start_fn: Option<RawFn>,
    pub(super) start_arg: *mut c_void,
    /// valgrind's id for the stack (stack::valgrind), 0 when not running under valgrind.
    pub(super) vg_stack: u32,
    /// AddressSanitizer's fake-stack handle of this goroutine while it is switched out
    /// (sched/sanitizer.rs); null when not under ASan, and for a goroutine that has not run.
    pub(super) asan_fake: *mut c_void,
    /// Its ThreadSanitizer fiber (sched/sanitizer.rs), made at its first run; null otherwise.
    pub(super) tsan_fiber: *mut c_void,
    /// A copy-stack goroutine's live stack while it is switched out (copystack.rs).
    pub(super) saved: copystack::Saved,
}

/// Hooks an embedded runtime (src/embed) runs on every switch of its goroutines: `switch_in` just
/// before the goroutine resumes, `switch_out` just after it stopped (yield, park, exit). They run
/// on g0 of the goroutine's M, or, for a hand-off (park.rs: park_handoff / yield_handoff), on the
/// stack of the goroutine switching out, right before the switch. They must not switch goroutines
/// and must only touch per-thread state that nothing reads until the switch is done.
///
/// `restored` runs only for a copy-stack goroutine (copystack.rs), right after its stack is back
/// in place (or found still resident on its slot) and right before it resumes: the first moment
/// pointers into its stack are valid again. On g0, or in a direct hand-off on the outgoing
/// goroutine's stack, which is then on another slot (`switch_in` runs earlier, before the
/// incoming goroutine's bytes are in place).
pub struct EmbedHooks {
    pub switch_in: unsafe fn(g: *mut G),
    pub switch_out: unsafe fn(g: *mut G),
    pub restored: unsafe fn(g: *mut G),
}

impl G {
    pub(super) fn new() -> Self {
        G {
            sched: Gobuf { sp: 0 },
            stackguard0: 0,
            stack: Stack::default(),
            goid: 0,
            status: AtomicU32::new(G_IDLE),
            stack_kind: GS_STACK_GROWABLE,
            flags: 0,
            max_stack: 0,
            m: null_mut(),
            lockedm: null_mut(),
            schedlink: null_mut(),
            waitreason: WaitReason::None,
            waitfd: -1,
            name: None,
            grows: 0,
            shrinks: 0,
            main_wait: core::ptr::null(),
            embed_hooks: core::ptr::null(),
            embed_data: null_mut(),
            growth: Default::default(),
            start_fn: None,
            start_arg: null_mut(),
            start_fp: Default::default(),
            vg_stack: 0,
            asan_fake: null_mut(),
            tsan_fiber: null_mut(),
            saved: Default::default(),
        }
    }

    /// Its id (gs_self).
    #[inline]
    pub fn goid(&self) -> i64 {
        self.goid
    }

    /// The embedder's per-goroutine data (see [`EmbedHooks`]).
    #[inline]
    pub fn embed_data(&self) -> *mut c_void {
        self.embed_data
    }

    /// The one (re)initialisation of a G record for a new goroutine (spawn.rs): every field from
    /// `fresh` (built on [`G::new`]'s defaults) but `status` (the spawner publishes it last, with
    /// Release), `schedlink` (the queue the G is on owns it; it is on none) and `tsan_fiber`
    /// (sanitizer.rs owns it; null since the last goroutine on this record exited) and `saved`
    /// (copystack.rs owns it; freed when the last goroutine exited). Written as a
    /// destructuring so that a new field cannot be forgotten.
    #[inline(always)] // one caller on the spawn path (callgrind: 45 instructions more per spawn out of line)
    pub(super) fn reset(&mut self, fresh: G) {
        let G {
            sched,
            stackguard0,
            stack,
            goid,
            status: _,
            stack_kind,
            flags,
            grows,
            shrinks,
            start_fp,
            max_stack,
            m,
            lockedm,
            schedlink: _,
            waitreason,
            waitfd,
            name,
            main_wait,
            embed_hooks,
            embed_data,
            growth,
            start_fn,
            start_arg,
            vg_stack,
            asan_fake,
            tsan_fiber: _,
            saved: _,
        } = fresh;
        (self.sched, self.stackguard0, self.stack, self.goid) = (sched, stackguard0, stack, goid);
        (self.stack_kind, self.flags, self.grows, self.shrinks) = (stack_kind, flags, grows, shrinks);
        (self.start_fp, self.max_stack, self.m, self.lockedm) = (start_fp, max_stack, m, lockedm);
        (self.waitreason, self.waitfd, self.name, self.main_wait) = (waitreason, waitfd, name, main_wait);
        (self.embed_hooks, self.embed_data, self.growth) = (embed_hooks, embed_data, growth);
        (self.start_fn, self.start_arg, self.vg_stack, self.asan_fake) = (start_fn, start_arg, vg_stack, asan_fake);
    }
}

/// The exit flag of a gs_main goroutine; lives on the gs_main caller's stack.
pub struct MainWait {
    pub done: AtomicBool,
    /// The goroutine ended by gs_exit (Go's Goexit in main): gs_main does not return; the other
    /// goroutines run on, then it is Go's "no goroutines (main called runtime.Goexit)" fatal error.
    pub goexit: AtomicBool,
    /// The thread in gs_main, woken when the goroutine exits.
    pub m: *mut M,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::Ordering::Relaxed;

    /// reset copies every field but the four with other owners.
    #[test]
    fn reset_keeps_status_link_and_fiber() {
        let mut g = G::new();
        let mut other = G::new();
        let other: *mut G = &mut other;
        g.status.store(G_DEAD, Relaxed);
        g.schedlink = other;
        g.tsan_fiber = other.cast();
        g.name = Some(Box::new(CString::new("old").unwrap()));
        g.reset(G { goid: 7, flags: 3, max_stack: 1 << 20, ..G::new() });
        assert_eq!((g.goid(), g.flags, g.max_stack), (7, 3, 1 << 20));
        assert!(g.name.is_none());
        assert_eq!(g.status.load(Relaxed), G_DEAD);
        assert_eq!((g.schedlink, g.tsan_fiber), (other, other.cast()));
    }

    #[test]
    fn every_wait_reason_has_a_name() {
        assert_eq!(WaitReason::None.as_str(), "");
        assert_eq!(WaitReason::ChanReceive.as_str(), "chan receive");
        assert_eq!(WaitReason::Test.as_str(), "test");
    }
}
