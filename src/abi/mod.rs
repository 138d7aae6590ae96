//! The exported C API: every `#[no_mangle]` function of the library lives under this module, one
//! file per topic (go, stack, chan, sync, io, info, python), and every one goes through [`export!`]:
//! the calling-context checks and errno of [`Entry`] (unless it is one of the few that must work
//! anywhere, even in a signal handler), and a `catch_unwind` that turns a Rust panic into
//! `GS_EPANIC` (NULL for constructors: [`FromCode`]), so that no unwinding crosses into C or
//! through assembly frames. `tests/layers.rs` checks that no export bypasses it. The four handle
//! types (`gs_chan`, `gs_waitgroup`, `gs_mutex`, `gs_sema`) share one conversion and one `_free`
//! ([`handle`]).

// In this order in include/gostack.h (cbindgen follows the declarations).
mod go;

mod stack;

mod chan;

mod sync;

mod io;

mod info;

pub mod python;

mod pyfast;

mod handle;
pub use crate::base::types;

pub use chan::*;
pub use go::*;
pub use info::*;
pub use io::*;
pub use python::*;
pub use stack::*;
pub use sync::*;
pub use types::*;

use crate::arch;
use crate::base::errno;
use crate::sched;
use core::ffi::{c_char, c_int};

/// The one wrapper of every export's body.
///
/// - `export!({ body })`: [`Entry::enter`] first (a refused call returns its status code, as
///   [`FromCode`] makes it for the function's return type), errno restored on every return.
/// - `export!(unchecked, { body })`: without the entry checks, for the exports that must work
///   anywhere (async-signal-safe ones: `gs_strerror`, `gs_version`, `gs_maxprocs`,
///   `gs_attr_init`), that decide the calling context themselves (`gs_systemstack`, `gs_self`), or
///   that CPython calls with its own rules (the `gs_py_*` functions).
///
/// Both run the body in `catch_unwind`: a panic returns `GS_EPANIC` (`FromCode`). A `return`
/// inside the body returns from the export.
macro_rules! export {
    (unchecked, $body:block) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(_) => $crate::abi::FromCode::from_code($crate::abi::GS_EPANIC),
        }
    };
    ($body:block) => {{
        let _entry = match $crate::abi::Entry::enter() {
            Ok(e) => e,
            Err(code) => return $crate::abi::FromCode::from_code(code),
        };
        export!(unchecked, $body)
    }};
}
pub(crate) use export;

/// What every export that touches runtime state does first, and last (on drop).
///
/// - **errno** (issue 20): saved on entry and written back on every return, so that gs_* calls
///   never change it (the runtime's own system calls and futex waits set it: ETIMEDOUT, EAGAIN)
///   and each goroutine keeps its own across a switch: goroutines switch only inside gs_* calls,
///   and the value saved by the call that switched out is restored when that call returns, on
///   whatever thread. This is the per-goroutine save/restore at no cost to the switch itself
///   (measured in docs/PERFORMANCE.md, "errno").
/// - **signal handlers**: `GS_ESTATE` when called from one (signal::in_handler: the stack pointer
///   is on the thread's signal stack), instead of switching
///   stacks under interrupted runtime code.
/// - **deadlock detection**: a call from outside a goroutine registers the thread as one that may
///   wake goroutines (sched::threads).
pub(crate) struct Entry {
    errno: c_int,
}

impl Entry {
    #[inline(always)]
    pub(crate) fn enter() -> Result<Entry, c_int> {
        check_caller()?;
        Ok(Entry { errno: errno::get() })
    }
}

impl Drop for Entry {
    #[inline(always)]
    fn drop(&mut self) {
        // The running thread's errno (a migratable goroutine may be on another thread now).
        errno::set(self.errno);
    }
}

/// The calling-context checks of [`Entry::enter`], without the errno part (for `gs_systemstack`,
/// whose function's errno is the caller's to see). No M is needed on this path (it runs on every
/// call): the signal stack is in the thread's own words, and `%fs:0x70` tells a goroutine
/// (non-zero) from everything else.
#[inline(always)]
fn check_caller() -> Result<(), c_int> {
    if crate::signal::in_handler() {
        return Err(GS_ESTATE);
    }
    if arch::tls_stack_guard() == 0 {
        // Outside a goroutine (or on g0).
        register_caller();
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn register_caller() {
    sched::threads::register_caller();
}

/// The value an export returns for a refused call or a caught panic with status `code`: the code
/// for `int` and `int64_t` results, NULL for constructors.
pub(crate) trait FromCode {
    fn from_code(code: c_int) -> Self;
}

impl FromCode for c_int {
    fn from_code(code: c_int) -> Self {
        code
    }
}

impl FromCode for i64 {
    fn from_code(code: c_int) -> Self {
        code as i64
    }
}

impl<T> FromCode for *mut T {
    fn from_code(_: c_int) -> Self {
        core::ptr::null_mut()
    }
}

/// For the exports that return a static string (`gs_strerror`, `gs_version`): never NULL.
impl FromCode for *const c_char {
    fn from_code(_: c_int) -> Self {
        c"gostack: internal error".as_ptr()
    }
}
