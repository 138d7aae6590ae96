//! Signals: every M gets a sigaltstack; one SIGSEGV/SIGBUS handler (SA_ONSTACK | SA_SIGINFO)
//! handles faults in the guard regions of goroutine stacks and chains every other fault to the
//! handler that was installed before it, exactly as that handler expects (Go's c-shared mode).
//!
//! - Installed lazily, when the first thread becomes an M (first gs_run/gs_main), so a host that
//!   installs its own handlers at start-up is chained, not replaced.
//! - Handlers already installed without SA_ONSTACK get it added (Go's setsigstack): a signal
//!   frame (~3 KiB here) must never land on a small goroutine stack. Checked again whenever a
//!   thread becomes an M, since hosts may install handlers later.
//! - Which faults are ours is the scheduler's decision, not this layer's (it knows nothing of
//!   goroutines): the scheduler registers a [`FaultFn`] at start-up ([`set_fault_hook`]), which
//!   handles a guard fault of the running goroutine's stack (growth, or Go's fatal message) and
//!   answers false for every other fault, which is then chained (sched/fault.rs). Everything on
//!   that path is async-signal-safe (no allocation, no lock): user code may have faulted inside
//!   malloc.

use crate::stack::page;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::Once;

const NSIG: usize = 65;
static mut OLD_ACTIONS: [MaybeUninit<libc::sigaction>; NSIG] = [const { MaybeUninit::zeroed() }; NSIG];
static INSTALLED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Signal stacks are at least this large (the signal frame alone is ~3 KiB on this CPU, and the
/// handler formats messages).
/// glibc's `_SC_SIGSTKSZ` (bits/confname.h; not in the libc crate).
const SC_SIGSTKSZ: libc::c_int = 250;
const MIN_ALTSTACK: usize = 64 * 1024;

/// Decides a SIGSEGV/SIGBUS (`info`, and the interrupted context, a `ucontext_t`): returns true
/// when it handled the fault (the faulting instruction is retried), false to chain it to the
/// handler installed before ours. It may also not return (a fatal error).
///
/// # Safety
/// Called from the signal handler, on the sigaltstack, with the kernel's arguments; must be
/// async-signal-safe.
pub type FaultFn = unsafe fn(info: *mut libc::siginfo_t, uc: *mut libc::ucontext_t) -> bool;

/// The registered [`FaultFn`] as an address; 0: none (every fault is chained).
static FAULT_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Registers what decides a fault (the scheduler, at start-up, before any thread becomes an M).
pub fn set_fault_hook(f: FaultFn) {
    FAULT_HOOK.store(f as usize, Release);
}

/// A thread's signal stack: the mapping the runtime made for it (base, length; (0, 0) if it uses
/// one it found installed) and the stack in use, `[lo, hi)` ((0, 0) if none).
#[derive(Clone, Copy, Default)]
pub struct AltStack {
    pub mapped: (usize, usize),
    pub range: (usize, usize),
}

/// Called once per new M, on its thread: installs the handlers (once) and gives the thread a
/// sigaltstack unless it has one large enough.
pub fn on_new_m() -> AltStack {
    #[cfg(target_arch = "x86_64")]
    crate::stack::xsave::init();
    crate::arch::signal_init();
    INSTALL.call_once(install_handlers);
    add_onstack_to_handlers();
    let alt = ensure_altstack();
    // For in_handler, which reads it without the M.
    crate::arch::set_tls_sigstack(alt.range.0, alt.range.1 - alt.range.0);
    alt
}

fn install_handlers() {
    for sig in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: plain sigaction calls; OLD_ACTIONS is written once, here, before our handler can
        // run (it is installed by the same call), and only read afterwards.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            let old = (*core::ptr::addr_of_mut!(OLD_ACTIONS))[sig as usize].as_mut_ptr();
            libc::sigaction(sig, &sa, old);
        }
    }
    INSTALLED.store(true, Release);
}

/// Adds SA_ONSTACK to every installed handler that lacks it (Go's setsigstack).
fn add_onstack_to_handlers() {
    for sig in 1..NSIG as i32 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == libc::SIGSEGV || sig == libc::SIGBUS {
            continue;
        }
        // SAFETY: query, then re-install the same action with one flag more.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            if libc::sigaction(sig, core::ptr::null(), &mut sa) != 0 {
                continue;
            }
            if sa.sa_sigaction == libc::SIG_DFL || sa.sa_sigaction == libc::SIG_IGN {
                continue;
            }
            if sa.sa_flags & libc::SA_ONSTACK == 0 {
                sa.sa_flags |= libc::SA_ONSTACK;
                libc::sigaction(sig, &sa, core::ptr::null_mut());
            }
        }
    }
}

/// The signals a thread of the runtime never blocks: the synchronous faults, raised by the
/// faulting instruction itself (stack growth needs SIGSEGV/SIGBUS on every thread).
const SYNCHRONOUS: [libc::c_int; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGTRAP];

/// Blocks every signal but the synchronous faults on the calling thread; returns the mask it had
/// (for [`restore_mask`]). The runtime's threads that are not yet, or never, Ms with a
/// sigaltstack run this way: a process-directed signal (a profiling timer, SIGINT) goes to
/// another thread, and no handler runs where its gs_* calls could not be told from a host
/// thread's (sched/threads.rs: spawn_runtime_thread).
pub fn block_async() -> libc::sigset_t {
    // SAFETY: plain signal-mask calls on the calling thread, on sets that live on this stack.
    unsafe {
        let mut set: libc::sigset_t = core::mem::zeroed();
        let mut old: libc::sigset_t = core::mem::zeroed();
        libc::sigfillset(&mut set);
        for sig in SYNCHRONOUS {
            libc::sigdelset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        old
    }
}

/// Sets the calling thread's signal mask to `old` (from [`block_async`]); a signal that arrived
/// meanwhile is delivered now.
pub fn restore_mask(old: &libc::sigset_t) {
    // SAFETY: as in block_async; `old` is a valid set.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, core::ptr::null_mut()) };
}

/// Gives the calling thread a sigaltstack unless it has a big enough one already.
fn ensure_altstack() -> AltStack {
    // SAFETY: sigaltstack queries/sets the calling thread's signal stack; the mapping we install
    // is owned by the thread's M until the thread exits (on_m_exit).
    unsafe {
        let mut cur: libc::stack_t = core::mem::zeroed();
        libc::sigaltstack(core::ptr::null(), &mut cur);
        if cur.ss_flags & libc::SS_DISABLE == 0 && cur.ss_size >= MIN_ALTSTACK {
            return AltStack { mapped: (0, 0), range: (cur.ss_sp as usize, cur.ss_sp as usize + cur.ss_size) };
        }
        // aarch64: SIGSTKSZ is 16 KiB and a signal frame ~4.6 KiB (more with SVE state); 64 KiB
        // covers both architectures with room for the handler's own frames.
        let want = MIN_ALTSTACK.max(libc::sysconf(SC_SIGSTKSZ).max(0) as usize);
        let page = page();
        let want = (want + page - 1) & !(page - 1);
        let len = want + page; // a guard page below
        let p = libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return AltStack::default();
        }
        libc::mprotect(p, page, libc::PROT_NONE);
        let ss = libc::stack_t { ss_sp: (p as usize + page) as *mut _, ss_flags: 0, ss_size: want };
        if libc::sigaltstack(&ss, core::ptr::null_mut()) == 0 {
            return AltStack { mapped: (p as usize, len), range: (p as usize + page, p as usize + page + want) };
        }
        libc::munmap(p, len);
        AltStack::default()
    }
}

/// The calling thread, an M, is exiting (sched::threads): unmaps the sigaltstack the runtime
/// mapped for it (`mapped` of [`on_new_m`]'s answer: 2 mappings, the stack and its guard page),
/// after disabling it if it is still the thread's signal stack.
///
/// # Safety
/// `mapped` is what [`on_new_m`] mapped on the calling thread, which is outside the scheduler and
/// not in a signal handler, and nothing uses it afterwards.
pub unsafe fn on_m_exit(mapped: (usize, usize)) {
    crate::arch::set_tls_sigstack(0, 0);
    // SAFETY: per the contract; the mapping was made by ensure_altstack for this thread.
    unsafe {
        let (base, len) = mapped;
        if base == 0 {
            return;
        }
        let mut cur: libc::stack_t = core::mem::zeroed();
        libc::sigaltstack(core::ptr::null(), &mut cur);
        if cur.ss_flags & libc::SS_DISABLE == 0 && cur.ss_sp as usize == base + page() {
            let off = libc::stack_t { ss_sp: core::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
            if libc::sigaltstack(&off, core::ptr::null_mut()) != 0 {
                return; // still in use (cannot happen outside a handler): keep the mapping
            }
        }
        // (Otherwise the host replaced it with its own: ours is unused.)
        libc::munmap(base as *mut libc::c_void, len);
    }
}

/// Is the calling thread running a signal handler? Cheap (no system call, no M: three loads and
/// one compare), for the entry check of every export (abi::Entry): true when the stack pointer is
/// on the thread's signal stack (ours, or the host's if it had one when the thread became an M;
/// [`on_new_m`] records it in two words of the thread's own, beside the M pointer): every handler
/// the runtime saw installed got SA_ONSTACK, see above. Not detected: a handler without
/// SA_ONSTACK (installed after the thread became an M), which runs on the interrupted stack,
/// indistinguishable from the code it interrupted; a handler on a signal stack the host installs
/// later; and threads that never became an M.
///
/// (Until issue 18 it also refused a stack pointer outside the running goroutine's stack, for the
/// second case. That cost four loads and two branches on every call, 10% of a channel round trip,
/// for a case that needs the host to replace the runtime's signal stack on a goroutine thread.)
#[inline(always)]
pub fn in_handler() -> bool {
    let sp = crate::arch::current_sp();
    let (lo, size) = crate::arch::tls_sigstack();
    // One unsigned compare (`sp - lo < size`); no signal stack (0, 0) never matches.
    sp.wrapping_sub(lo) < size
}

/// The SIGSEGV/SIGBUS handler: errno is the interrupted code's and is given back as it was
/// (growth maps memory; a failed call on the way must not change what the code sees).
extern "C" fn handler(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: __errno_location is async-signal-safe and returns this thread's errno.
    let errno = unsafe { *libc::__errno_location() };
    handle(sig, info, ctx);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

fn handle(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let hook = FAULT_HOOK.load(Acquire);
    if hook != 0 {
        // SAFETY: only set_fault_hook stores here, always a `FaultFn`; the kernel's info and
        // context are what the hook's contract asks for.
        let f = unsafe { core::mem::transmute::<usize, FaultFn>(hook) };
        // SAFETY: as above.
        if unsafe { f(info, ctx.cast()) } {
            return;
        }
    }
    // SAFETY: our handler's own arguments, passed on unchanged.
    unsafe { chain(sig, info, ctx) };
}

/// Passes a fault we do not own to the handler installed before ours.
unsafe fn chain(sig: i32, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: OLD_ACTIONS was filled before our handler was installed and is never written again.
    let old = unsafe { &*(*core::ptr::addr_of!(OLD_ACTIONS))[sig as usize].as_ptr() };
    let h = old.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction runs again and the
        // kernel delivers the signal with its default action (core dump, exit status).
        // SAFETY: plain sigaction with a zeroed (SIG_DFL) action.
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &sa, core::ptr::null_mut());
        }
        // SAFETY: the kernel's siginfo for this signal.
        if unsafe { (*info).si_code } <= 0 {
            // Sent by kill/raise, not a fault: re-raise it so the default action happens now.
            // SAFETY: raise has no preconditions.
            unsafe { libc::raise(sig) };
        }
        return;
    }
    // SAFETY: the previous handler, called the way its flags say it expects.
    unsafe {
        if old.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) = core::mem::transmute(h);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(i32) = core::mem::transmute(h);
            f(sig);
        }
    }
}

/// Is our handler installed (for tests)?
#[allow(dead_code)]
pub fn installed() -> bool {
    INSTALLED.load(Acquire)
}
