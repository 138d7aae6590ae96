//! Python built-in functions for the gostack calls that switch goroutines (`gs_yield`,
//! `gs_sleep`, channel and select, the waits of sync, `gs_fd_wait`) and a few hot non-blocking
//! ones, made at run time with the C API (`PyCFunction_NewEx`, `METH_FASTCALL`) instead of
//! going through ctypes.
//!
//! Why: a parked Python goroutine keeps the C frames of the call that parked it. On the copy
//! stack kind (cpython.rs) those are copied to its save area at every switch and kept there while
//! it is parked; through ctypes they were ~950 bytes (gdb, 3.11.7: `_PyObject_MakeTpCall` 208,
//! `PyCFuncPtr_call` 288, `_ctypes_callproc` 112, `ffi_call` 256, libffi 64, plus the argument
//! tuple and converted arguments on the heap), about a sixth of a parked goroutine. A built-in
//! called with `METH_FASTCALL` costs `cfunction_vectorcall_FASTCALL` and our own small frame, and
//! skips ctypes' argument conversion on every call (yield and channel round trips get faster).
//!
//! Each function takes Python ints only (handles and addresses as ints: `ctypes.addressof`),
//! converts them with `PyLong_AsLongLong`, and for the blocking ones releases the GIL around the
//! call (`PyEval_SaveThread`/`PyEval_RestoreThread`, what ctypes.CDLL does); it returns the C
//! function's result as an int. Wrong argument counts or non-integers raise `TypeError`. Only
//! stable-ABI functions are used, found with cpython.rs's `load!`.
//!
//! Rejected: doing this for every export (most are not on a hot path and take structures);
//! a C extension module (the package has no compiled part of its own, on purpose).

use super::{chan, go, io, sync};
use crate::embed::cpython::load;
use core::ffi::{c_char, c_int, c_void};
use core::ptr::null_mut;
use std::sync::OnceLock;

type Obj = *mut c_void;
type FastFn = unsafe extern "C" fn(Obj, *const Obj, isize) -> Obj;

/// CPython's `PyMethodDef` (methodobject.h, stable ABI).
#[repr(C)]
struct MethodDef {
    name: *const c_char,
    meth: FastFn,
    flags: c_int,
    doc: *const c_char,
}

/// `METH_FASTCALL` (methodobject.h; stable ABI since 3.10).
const METH_FASTCALL: c_int = 0x0080;

struct Defs([MethodDef; N]);
// SAFETY: the table is immutable and its pointers are to static strings and functions.
unsafe impl Sync for Defs {}

struct Api {
    new_fn: FnNew,
    as_ll: FnAsLl,
    from_ll: FnFromLl,
    err_occurred: FnToObj,
    bad_argument: FnToInt,
    save_thread: FnToObj,
    restore_thread: FnObj,
    dict_new: FnToObj,
    dict_set: FnDictSet,
    dec_ref: FnObj,
}

static API: OnceLock<Option<Api>> = OnceLock::new();

type FnNew = unsafe extern "C" fn(*const MethodDef, Obj, Obj) -> Obj;
type FnAsLl = unsafe extern "C" fn(Obj) -> i64;
type FnFromLl = unsafe extern "C" fn(i64) -> Obj;
type FnToObj = unsafe extern "C" fn() -> Obj;
type FnToInt = unsafe extern "C" fn() -> c_int;
type FnObj = unsafe extern "C" fn(Obj);
type FnDictSet = unsafe extern "C" fn(Obj, *const c_char, Obj) -> c_int;

fn api() -> Option<&'static Api> {
    API.get_or_init(|| {
        Some(Api {
            new_fn: load!("PyCFunction_NewEx", FnNew),
            as_ll: load!("PyLong_AsLongLong", FnAsLl),
            from_ll: load!("PyLong_FromLongLong", FnFromLl),
            err_occurred: load!("PyErr_Occurred", FnToObj),
            bad_argument: load!("PyErr_BadArgument", FnToInt),
            save_thread: load!("PyEval_SaveThread", FnToObj),
            restore_thread: load!("PyEval_RestoreThread", FnObj),
            dict_new: load!("PyDict_New", FnToObj),
            dict_set: load!("PyDict_SetItemString", FnDictSet),
            dec_ref: load!("Py_DecRef", FnObj),
        })
    })
    .as_ref()
}

/// The body of every function: `K` int arguments, `f` called with the GIL released if
/// `release`, its result returned as an int.
///
/// # Safety
/// Called by CPython as a `METH_FASTCALL` function (GIL held, `args[..nargs]` live objects),
/// after [`table`] loaded the API.
#[inline(always)]
unsafe fn call<const K: usize>(args: *const Obj, nargs: isize, release: bool, f: impl FnOnce([i64; K]) -> i64) -> Obj {
    // SAFETY: per the contract.
    unsafe {
        let Some(api) = API.get().and_then(|a| a.as_ref()) else { return null_mut() };
        let mut a = [0i64; K];
        if nargs != K as isize {
            (api.bad_argument)();
            return null_mut();
        }
        for (i, v) in a.iter_mut().enumerate() {
            *v = (api.as_ll)(*args.add(i));
            if *v == -1 && !(api.err_occurred)().is_null() {
                return null_mut();
            }
        }
        let rc = if release {
            let ts = (api.save_thread)();
            let rc = f(a);
            (api.restore_thread)(ts);
            rc
        } else {
            f(a)
        };
        (api.from_ll)(rc)
    }
}

macro_rules! fast {
    ($($name:ident, $k:literal, $release:expr, |$a:ident| $body:expr;)*) => {
        $(
            unsafe extern "C" fn $name(_self: Obj, args: *const Obj, nargs: isize) -> Obj {
                #[allow(unused_unsafe)]
                let f = |$a: [i64; $k]| -> i64 {
                    // SAFETY: the arguments are what the Python side passes to the ctypes
                    // function of the same name (handles and addresses it owns, see
                    // _ffi.SIGNATURES), so this is the call ctypes would make.
                    unsafe { $body }
                };
                // SAFETY: CPython calls us as METH_FASTCALL.
                unsafe { call::<$k>(args, nargs, $release, f) }
            }
        )*
        const N: usize = [$(stringify!($name)),*].len();
        static DEFS: Defs = Defs([$(MethodDef {
            name: concat!(stringify!($name), "\0").as_ptr().cast(),
            meth: $name,
            flags: METH_FASTCALL,
            doc: core::ptr::null(),
        }),*]);
    };
}

fast! {
    gs_yield, 0, true, |_a| go::gs_yield() as i64;
    gs_sleep, 1, true, |a| go::gs_sleep(a[0]) as i64;
    gs_self, 0, false, |_a| go::gs_self();
    gs_chan_send, 2, true, |a| chan::gs_chan_send(a[0] as _, a[1] as _) as i64;
    gs_chan_recv, 2, true, |a| chan::gs_chan_recv(a[0] as _, a[1] as _) as i64;
    gs_chan_try_send, 2, false, |a| chan::gs_chan_try_send(a[0] as _, a[1] as _) as i64;
    gs_chan_try_recv, 2, false, |a| chan::gs_chan_try_recv(a[0] as _, a[1] as _) as i64;
    gs_chan_recv_timeout, 3, true, |a| chan::gs_chan_recv_timeout(a[0] as _, a[1] as _, a[2]) as i64;
    gs_select, 3, true, |a| chan::gs_select(a[0] as _, a[1] as usize, a[2]) as i64;
    gs_waitgroup_wait, 1, true, |a| sync::gs_waitgroup_wait(a[0] as _) as i64;
    gs_mutex_lock, 1, true, |a| sync::gs_mutex_lock(a[0] as _) as i64;
    gs_sema_acquire, 1, true, |a| sync::gs_sema_acquire(a[0] as _) as i64;
    gs_fd_wait, 3, true, |a| io::gs_fd_wait(a[0] as c_int, a[1] as c_int, a[2]) as i64;
}

/// gs_py_fastcalls: a new dict `{name: built-in function}` of the functions above, or NULL
/// (with no exception set) when the CPython API is not found.
///
/// # Safety
/// The calling thread holds the GIL.
pub unsafe fn table() -> *mut c_void {
    let Some(api) = api() else { return null_mut() };
    // SAFETY: the GIL is held; DEFS is static (CPython keeps the pointer for the function's life).
    unsafe {
        let d = (api.dict_new)();
        if d.is_null() {
            return null_mut();
        }
        for def in &DEFS.0 {
            let f = (api.new_fn)(def, null_mut(), null_mut());
            if f.is_null() || (api.dict_set)(d, def.name, f) != 0 {
                (api.dec_ref)(f); // NULL allowed (Py_XDECREF)
                (api.dec_ref)(d);
                return null_mut();
            }
            (api.dec_ref)(f);
        }
        d
    }
}
