//! The CPython adapter: goroutines that run Python code (`import gostack`, through ctypes).
//!
//! Facts this rests on are in shared notes/cpython.md; the decision in docs/DESIGN.md ("CPython
//! adapter"). In short:
//!
//! ```text
//!  Python thread (GIL held, ctypes.PyDLL)            goroutine G on some M (g0 runs the hooks)
//!  gs_py_spawn(callable) ──Py_IncRef, PyG box──►    entry(PyG):
//!                                                     ts = PyThreadState_New(interp)
//!                                                     TSS slot := ts        (PyGILState_* see G)
//!                                                     PyEval_RestoreThread(ts)     takes the GIL
//!                                                     PyObject_CallObject(callable)
//!                                                       ... gs_yield through ctypes.CDLL:
//!                                                       GIL released, switch_out: slot := saved
//!                                                       ... resumed: switch_in: slot := ts,
//!                                                       ctypes takes the GIL back with ts
//!                                                     Py_DecRef, PyThreadState_Clear,
//!                                                     PyThreadState_DeleteCurrent  drops the GIL
//!                                                   goexit: switch_out restores the slot, frees PyG
//! ```
//!
//! Invariants:
//! - One `PyThreadState` per goroutine: CPython keeps frames on a per-thread-state data stack and
//!   `tstate->cframe` points into the C stack, so two goroutines sharing the OS thread's state
//!   crash. The stack never moves (`cframe` points into it): the thread's shared stack of the copy
//!   kind (8 MiB, committed as touched; Python->C->Python recursion costs ~5 KiB per level), with
//!   the thread state made to lead nowhere into it while the goroutine is switched out ("copy-stack
//!   goroutines" below), or a FIXED one.
//! - While a Python goroutine runs, the GIL-state TSS slot (`PyGILState_GetThisThreadState()`) names
//!   its thread state; otherwise `PyGILState_Ensure` (ctypes callbacks, sqlite3 user functions,
//!   `PYTHONMALLOC=debug`'s GIL check) picks the OS thread's first state and deadlocks or corrupts.
//!   The hooks swap the slot on every switch (`switch_in` saves and sets, `switch_out` restores).
//! - CPython is found with `dlsym(RTLD_DEFAULT, …)` at the first `gs_py_spawn`: stable-ABI
//!   functions (`PyThreadState_New`, `PyEval_RestoreThread`, `Py_IncRef`, …). Private struct
//!   layouts only for the copy stack kind ("copy-stack goroutines" below: checked at start-up,
//!   FIXED stacks without them). One more exception, optional: `PyObject_Get/SetArenaAllocator` (public C API, not the
//!   limited one; the documented three-pointer `PyObjectArenaAllocator`) for the frame-chunk cache
//!   below; without them goroutines work, each paying an mmap/munmap for its first frame chunk.
//! - The first `gs_py_spawn` installs that cache process-wide: greenlets (which take frame chunks
//!   from the same allocator) get faster too. Checked on 3.11.7, 3.12.1, 3.13.0.
//!
//! How the slot is found, without private offsets: it is a `Py_tss_t`, which on Linux wraps a
//! pthread key (`PyThread_tss_create` = `pthread_key_create` in CPython 3.7 to 3.13). With the GIL
//! held on a thread that has a thread state, we scan the keys (glibc: 0..1024) for one whose value
//! is `PyGILState_GetThisThreadState()`, then *verify* it: set the key to a sentinel, check that
//! `PyGILState_GetThisThreadState()` returns the sentinel, put the value back. If no key passes,
//! `gs_py_spawn` fails with `GS_ESTATE` rather than run goroutines that would break extensions.
//! Checked on CPython 3.11.7, 3.12.1 and 3.13.0 (release builds); 3.14 additionally checks C stack
//! bounds (cpython issue 139653) and is not supported yet.
//!
//! Rejected: a goroutine whose entry is a ctypes callback (shares the thread's state: crashes);
//! `PyGILState_Ensure` in the entry (binds to the OS thread's existing state, same crash); finding
//! `_PyRuntime.gilstate.autoTSSkey` by offset (differs per version and build).

use crate::base::fatal::fatal;
use crate::base::types::*;
use crate::sched::{self, Attr, EmbedHooks, G};
use core::ffi::{c_int, c_void};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicI64, Ordering::*};
use std::sync::OnceLock;

/// Default C stack of a Python goroutine: reserved, committed only as touched. Depth 500 of
/// Python->C->Python recursion needs ~2.5 MiB.
pub const PY_STACK_SIZE: usize = 8 << 20;

/// glibc's PTHREAD_KEYS_MAX: keys are 0..1024, and `pthread_getspecific` on an unused key
/// returns NULL.
const PTHREAD_KEYS_MAX: u32 = 1024;

type Obj = *mut c_void;
type Fn = unsafe extern "C" fn();
type FnObj = unsafe extern "C" fn(Obj);
type FnToObj = unsafe extern "C" fn() -> Obj;
type FnObjToObj = unsafe extern "C" fn(Obj) -> Obj;
type FnObjObjToObj = unsafe extern "C" fn(Obj, Obj) -> Obj;

/// The CPython functions we call (all in the stable ABI since 3.2, except
/// `PyInterpreterState_Get`: 3.9).
struct Api {
    interpreter_get: FnToObj,
    thread_state_new: FnObjToObj,
    eval_restore_thread: FnObj,
    object_call_object: FnObjObjToObj,
    inc_ref: FnObj,
    dec_ref: FnObj,
    err_occurred: FnToObj,
    err_write_unraisable: FnObj,
    thread_state_clear: FnObj,
    thread_state_delete_current: Fn,
    gilstate_this_thread_state: FnToObj,
    /// `PyObject_Call`, `PyTuple_Size`, `PyErr_Clear` (stable ABI) and `PyContext_Enter`/`Exit`
    /// (public C API since 3.7) for [`spawn`]'s arguments and context.
    object_call: unsafe extern "C" fn(Obj, Obj, Obj) -> Obj,
    tuple_size: unsafe extern "C" fn(Obj) -> isize,
    err_clear: Fn,
    context_enter: unsafe extern "C" fn(Obj) -> c_int,
    context_exit: unsafe extern "C" fn(Obj) -> c_int,
    /// `PyObject_GetArenaAllocator`/`PyObject_SetArenaAllocator` (public C API since 3.4, not in
    /// the limited API): optional, for the data-stack chunk cache.
    arena: Option<(FnArena, FnArena)>,
}

type FnArena = unsafe extern "C" fn(*mut ArenaAllocator);
type ArenaAlloc = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
type ArenaFree = unsafe extern "C" fn(*mut c_void, *mut c_void, usize);

/// CPython's `PyObjectArenaAllocator` (cpython/objimpl.h, documented in "Memory Management:
/// Customize pymalloc Arena Allocator"; unchanged since 3.4).
#[repr(C)]
struct ArenaAllocator {
    ctx: *mut c_void,
    alloc: Option<ArenaAlloc>,
    free: Option<ArenaFree>,
}

static API: OnceLock<Option<Api>> = OnceLock::new();
/// The pthread key behind CPython's GIL-state TSS slot; -1 until found.
static GILSTATE_KEY: AtomicI64 = AtomicI64::new(-1);

/// A CPython symbol of the running process (`dlsym(RTLD_DEFAULT)`); also for src/abi/pyfast.rs.
pub(crate) fn sym(name: &[u8]) -> Option<*mut c_void> {
    // SAFETY: name is NUL-terminated; dlsym has no other preconditions.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr().cast()) };
    (!p.is_null()).then_some(p)
}

/// `load!("Name", FnType)`: the CPython function `Name` as `FnType`, or `return None` from the
/// enclosing function when the process has none (also for src/abi/pyfast.rs).
macro_rules! load {
    ($name:literal, $ty:ty) => {{
        let p = $crate::embed::cpython::sym(concat!($name, "\0").as_bytes())?;
        // SAFETY: the symbol is the CPython function of that name, whose C signature the field's
        // type spells out.
        unsafe { core::mem::transmute::<*mut c_void, $ty>(p) }
    }};
}
pub(crate) use load;

fn api() -> Option<&'static Api> {
    API.get_or_init(|| {
        Some(Api {
            interpreter_get: load!("PyInterpreterState_Get", FnToObj),
            thread_state_new: load!("PyThreadState_New", FnObjToObj),
            eval_restore_thread: load!("PyEval_RestoreThread", FnObj),
            object_call_object: load!("PyObject_CallObject", FnObjObjToObj),
            inc_ref: load!("Py_IncRef", FnObj),
            dec_ref: load!("Py_DecRef", FnObj),
            err_occurred: load!("PyErr_Occurred", FnToObj),
            err_write_unraisable: load!("PyErr_WriteUnraisable", FnObj),
            thread_state_clear: load!("PyThreadState_Clear", FnObj),
            thread_state_delete_current: load!("PyThreadState_DeleteCurrent", Fn),
            gilstate_this_thread_state: load!("PyGILState_GetThisThreadState", FnToObj),
            object_call: load!("PyObject_Call", unsafe extern "C" fn(Obj, Obj, Obj) -> Obj),
            tuple_size: load!("PyTuple_Size", unsafe extern "C" fn(Obj) -> isize),
            err_clear: load!("PyErr_Clear", Fn),
            context_enter: load!("PyContext_Enter", unsafe extern "C" fn(Obj) -> c_int),
            context_exit: load!("PyContext_Exit", unsafe extern "C" fn(Obj) -> c_int),
            arena: (|| {
                Some((load!("PyObject_GetArenaAllocator", FnArena), load!("PyObject_SetArenaAllocator", FnArena)))
            })(),
        })
    })
    .as_ref()
}

/// The GIL-state slot's pthread key, found and verified on first use (see the module doc).
///
/// # Safety
/// The calling thread holds the GIL.
unsafe fn gilstate_key(api: &Api) -> Option<libc::pthread_key_t> {
    let k = GILSTATE_KEY.load(Acquire);
    if k >= 0 {
        return Some(k as libc::pthread_key_t);
    }
    static SENTINEL: u8 = 0;
    let sentinel = &SENTINEL as *const u8 as *mut c_void;
    // SAFETY: the caller holds the GIL: no Python code runs on this thread while we probe, and the
    // probed key gets its value back before we return.
    unsafe {
        let want = (api.gilstate_this_thread_state)();
        if want.is_null() {
            return None;
        }
        for key in 0..PTHREAD_KEYS_MAX {
            if libc::pthread_getspecific(key) != want {
                continue;
            }
            // A key holding that value is allocated: setting it is defined.
            libc::pthread_setspecific(key, sentinel);
            let seen = (api.gilstate_this_thread_state)();
            libc::pthread_setspecific(key, want);
            if seen == sentinel {
                GILSTATE_KEY.store(key as i64, Release);
                return Some(key);
            }
        }
    }
    None
}

// ---- data-stack chunk cache ------------------------------------------------------------------
//
// CPython 3.11-3.13 keeps a thread state's frames in "data stack chunks" of 16 KiB (more for huge
// frames), taken with `_PyObject_VirtualAlloc` (the arena allocator: an mmap) at the first call
// and given back (munmap) when the thread state is deleted. A goroutine's thread state lives as
// long as the goroutine, so every Python goroutine paid mmap + page faults + munmap for its chunk:
// ~4-5 µs of its spawn-to-exit time (perf, 20,000 empty goroutines). We wrap the arena allocator
// (public API, documented for exactly this: replacing how arenas are obtained) with a small cache
// of 16 KiB blocks; every other size, and frees beyond the cache, go to the allocator we wrapped.
//
// Correct for any caller: a cached block came from the wrapped allocator with the same size, and
// the arena allocator promises no zeroed memory (pymalloc falls back to malloc). Calls arrive with
// the GIL held; the mutex is for safety, not contention.
// Rejected: reusing whole thread states across goroutines (PyThreadState_Clear then reuse is not
// public API semantics; see docs/PERFORMANCE.md).

const CHUNK_SIZE: usize = 16 * 1024;
/// 16 KiB blocks kept: 1 MiB at most.
const CHUNK_CACHE_MAX: usize = 64;

static CHUNKS: crate::base::futex::Mutex<Vec<usize>> = crate::base::futex::Mutex::new(Vec::new());
/// The wrapped allocator (set once, before ours is installed).
static INNER: OnceLock<(usize, ArenaAlloc, ArenaFree)> = OnceLock::new();

unsafe extern "C" fn chunk_alloc(_ctx: *mut c_void, size: usize) -> *mut c_void {
    if size == CHUNK_SIZE {
        if let Some(p) = CHUNKS.lock().pop() {
            return p as *mut c_void;
        }
    }
    let Some(&(ctx, alloc, _)) = INNER.get() else { return null_mut() };
    // SAFETY: forwarding to the allocator CPython had, with its own context.
    unsafe { alloc(ctx as *mut c_void, size) }
}

unsafe extern "C" fn chunk_free(_ctx: *mut c_void, ptr: *mut c_void, size: usize) {
    if size == CHUNK_SIZE && !ptr.is_null() {
        let mut c = CHUNKS.lock();
        if c.len() < CHUNK_CACHE_MAX {
            c.push(ptr as usize);
            return;
        }
    }
    let Some(&(ctx, _, free)) = INNER.get() else { return };
    // SAFETY: ptr came from the wrapped allocator (directly, or through our cache) with `size`.
    unsafe { free(ctx as *mut c_void, ptr, size) }
}

/// Installs the chunk cache once.
///
/// # Safety
/// The calling thread holds the GIL (no arena allocation runs meanwhile).
unsafe fn install_chunk_cache(api: &Api) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let Some((get, set)) = api.arena else { return };
    ONCE.call_once(|| {
        let mut old = ArenaAllocator { ctx: null_mut(), alloc: None, free: None };
        // SAFETY: old is a valid PyObjectArenaAllocator to fill; the GIL is held.
        unsafe { get(&mut old) };
        let (Some(alloc), Some(free)) = (old.alloc, old.free) else { return };
        if INNER.set((old.ctx as usize, alloc, free)).is_err() {
            return;
        }
        let mut ours = ArenaAllocator { ctx: null_mut(), alloc: Some(chunk_alloc), free: Some(chunk_free) };
        // SAFETY: CPython copies the struct; the GIL is held, so no arena call is in flight.
        unsafe { set(&mut ours) };
    });
}

// ---- copy-stack goroutines -------------------------------------------------------------------
//
// Python goroutines run on the copy kind (GS_STACK_COPY, sched/copystack.rs: the goroutines of an
// M share one stack; a switched-out one's live part, ~1 KB at a park, is kept in a heap save
// area), when the check below passes; otherwise (and for an explicit stack size, or with
// GOSTACK_PY_STACK=fixed) on a FIXED 8 MiB stack of their own as before.
//
// What breaks naively (found with gdb on 3.11.7, a program that left goroutines parked): a
// parked goroutine's thread state points into the shared stack, which by then holds another
// goroutine's frames, and other code walks every thread state of the interpreter:
// `sys._current_frames()` (gostack's own deadlock rule calls it: SIGSEGV in
// `_PyThread_CurrentFrames` -> `_PyFrame_IsIncomplete` on a garbage frame), and likewise
// `faulthandler.dump_traceback(all_threads=True)`, `PyThreadState_GetFrame`, profilers. The
// pointers into the C stack:
// - 3.11, 3.12: `tstate->cframe`, the innermost `_PyEval_EvalFrameDefault`'s `_PyCFrame` local;
// - 3.12, 3.13: each eval call's `entry_frame` (an `_PyInterpreterFrame` local, owner
//   FRAME_OWNED_BY_CSTACK) links the frame chain: the bottom frame of every nested eval call has
//   `previous` pointing at it. Seen: another goroutine's `traceback.extract_stack(frame)` of a
//   parked goroutine's frame listed its own frames past such a link (tests/test_copystack.py).
//   3.11 links frames through the data stack only (heap).
//
// So while a copy-stack goroutine is switched out ([`detach`], in switch_out, while its stack is
// still in place) nothing of its thread state leads into its stack: 3.11 and 3.12 point
// `tstate->cframe` at the thread state's own `root_cframe` (what a fresh thread state has),
// carrying the current frame (and 3.11's `use_tracing`); 3.12 and 3.13 unlink the entry frames
// from the chain (each frame whose `previous` is one gets the first frame past them, and the
// original is kept). Parked goroutines stay visible with their whole stacks to
// `sys._current_frames()`, faulthandler and `f_back`. [`attach`] undoes it in the `restored`
// hook: after the stack is copied back, before the goroutine resumes (and takes the GIL). The
// unlinking walks the goroutine's frame chain at every switch-out (a few ns a frame). Greenlet
// does the same bookkeeping (`tstate->cframe` per greenlet; 3.12's entry frames hidden from a
// suspended greenlet's chain, `expose_frames`).
//
// These are private layouts: offsets per minor version from CPython's headers (cpython/pystate.h
// and internal/pycore_frame.h of 3.11.7, 3.12.1, 3.13.0), used only after a check at the first
// spawn: `Py_Version` is exactly that minor version; a fresh thread state has
// `cframe == &root_cframe` and no current frame; the frame word we would write, set in the fresh
// state to the calling thread's current frame, makes the public `PyThreadState_GetFrame` return
// the calling thread's frame object for both; that frame's code is `PyFrame_GetCode`'s; and
// (3.12, 3.13) the calling thread's chain has an entry frame, all of them on its C stack. Anything
// else: FIXED stacks, as before.
//
// What remains unprotected: another OS thread that holds the GIL and walks a goroutine's thread
// state while that goroutine's M switches it (the switch runs without the GIL): a pointer loaded
// just before `detach` may be followed after the shared stack was overwritten. The window is the
// reader's few loads (sys._current_frames) or its walk (faulthandler, which CPython documents as
// unsafe for other threads anyway); FIXED stacks (GOSTACK_PY_STACK=fixed) have no such window.

/// Where a thread state keeps its pointer to the running frames (offsets in bytes).
#[derive(Clone, Copy)]
enum Top {
    /// 3.11 and 3.12: `tstate->cframe` at `cframe`, `tstate->root_cframe` at `root`, and
    /// `current_frame` at `current` inside a `_PyCFrame`; `tracing`: the `_PyCFrame` starts with
    /// `use_tracing` (3.11).
    CFrame { cframe: usize, root: usize, current: usize, tracing: bool },
    /// 3.13: `tstate->current_frame` at `off` (a frame in the data stack, or NULL).
    Current { off: usize },
}

#[derive(Clone, Copy)]
struct Layout {
    top: Top,
    /// `_PyInterpreterFrame.f_code` (3.13: `f_executable`), for the check only.
    code: usize,
    /// 3.12, 3.13: eval calls put entry frames on the C stack (see above).
    entries: bool,
}

/// `_PyInterpreterFrame.previous` and `.owner`, and `FRAME_OWNED_BY_CSTACK` (3.12, 3.13).
const FRAME_PREVIOUS: usize = 8;
const FRAME_OWNER: usize = 70;
const OWNED_BY_CSTACK: u8 = 3;

static LAYOUT: OnceLock<Option<Layout>> = OnceLock::new();

/// The checked layout, or None: Python goroutines then run on FIXED stacks.
///
/// # Safety
/// The calling thread holds the GIL and runs Python code (a `ctypes.PyDLL` call).
unsafe fn layout(api: &Api, interp: Obj) -> Option<Layout> {
    // SAFETY: per the contract.
    *LAYOUT.get_or_init(|| unsafe { detect(api, interp) })
}

/// # Safety
/// `f` is null or an `_PyInterpreterFrame` whose chain is intact (3.12, 3.13).
unsafe fn past_entries(mut f: usize) -> usize {
    // SAFETY: per the contract.
    unsafe {
        while f != 0 && *((f + FRAME_OWNER) as *const u8) == OWNED_BY_CSTACK {
            f = *((f + FRAME_PREVIOUS) as *const usize);
        }
    }
    f
}

/// # Safety
/// As [`layout`].
unsafe fn detect(api: &Api, interp: Obj) -> Option<Layout> {
    if let Ok(v) = std::env::var("GOSTACK_PY_STACK") {
        match v.trim() {
            "fixed" => return None,
            "copy" | "" => {}
            _ => {
                use core::fmt::Write;
                let mut w = crate::base::fatal::FdWriter::stderr();
                let _ = writeln!(w, "gostack: GOSTACK_PY_STACK={v:?} not understood (copy or fixed): copy");
            }
        }
    }
    let version = sym(b"Py_Version\0")?;
    let get_frame = load!("PyThreadState_GetFrame", FnObjToObj);
    let get_current = load!("PyThreadState_Get", FnToObj);
    let delete = load!("PyThreadState_Delete", FnObj);
    let get_code = load!("PyFrame_GetCode", FnObjToObj);
    // SAFETY: Py_Version is a `const unsigned long`; the GIL is held.
    unsafe {
        let layout = match *(version as *const core::ffi::c_ulong) >> 16 {
            0x030b => Layout {
                top: Top::CFrame { cframe: 56, root: 336, current: 8, tracing: true },
                code: 32,
                entries: false,
            },
            0x030c => Layout {
                top: Top::CFrame { cframe: 56, root: 272, current: 0, tracing: false },
                code: 0,
                entries: true,
            },
            0x030d => Layout { top: Top::Current { off: 72 }, code: 0, entries: true },
            _ => return None,
        };
        let cur = get_current() as usize;
        let fresh = (api.thread_state_new)(interp) as usize;
        if cur == 0 || fresh == 0 {
            return None;
        }
        let word = |a: usize| a as *mut usize;
        // The frame word of `fresh` and the calling thread's current frame, if the layout holds.
        let probe = match layout.top {
            Top::CFrame { cframe, root, current, .. } => {
                if *word(fresh + cframe) == fresh + root && *word(fresh + root + current) == 0 {
                    Some((fresh + root + current, *word(*word(cur + cframe) + current)))
                } else {
                    None
                }
            }
            Top::Current { off } => (*word(fresh + off) == 0).then(|| (fresh + off, *word(cur + off))),
        };
        let mut ok = false;
        if let Some((slot, frame)) = probe {
            if frame != 0 {
                *word(slot) = frame;
                let a = get_frame(fresh as Obj);
                *word(slot) = 0;
                let b = get_frame(cur as Obj);
                ok = !a.is_null() && a == b;
                if ok {
                    // The frame's code object (f_code, 3.13's f_executable).
                    let code = get_code(a);
                    ok = !code.is_null() && *word(frame + layout.code) == code as usize;
                    (api.dec_ref)(code); // NULL allowed (Py_XDECREF)
                }
                if ok && layout.entries {
                    ok = entries_look_right(frame);
                }
                (api.dec_ref)(a);
                (api.dec_ref)(b);
            }
        }
        (api.thread_state_clear)(fresh as Obj);
        delete(fresh as Obj);
        ok.then_some(layout)
    }
}

/// The calling thread's frame chain from `top` (its current frame, in the data stack) has at
/// least one entry frame, and entry frames only on this thread's C stack (within 8 MiB above
/// this function's frame).
///
/// # Safety
/// `top` is the calling thread's current frame (3.12, 3.13 layout checked so far).
#[inline(never)]
unsafe fn entries_look_right(top: usize) -> bool {
    let here = &top as *const usize as usize;
    let on_stack = |f: usize| f > here && f - here < (8 << 20);
    let (mut f, mut entries, mut n) = (top, 0, 0);
    // SAFETY: per the contract, the chain is intact (the thread is running, GIL held).
    unsafe {
        while f != 0 && n < 100_000 {
            let entry = *((f + FRAME_OWNER) as *const u8) == OWNED_BY_CSTACK;
            if entry != on_stack(f) {
                return false;
            }
            entries += entry as usize;
            f = *((f + FRAME_PREVIOUS) as *const usize);
            n += 1;
        }
    }
    f == 0 && entries > 0 && !on_stack(top)
}

/// Stores `v` at `slot` (a pointer word of a thread state or frame) with an aligned store: readers
/// holding the GIL may look at it meanwhile.
///
/// # Safety
/// `slot` is an aligned, writable pointer word.
unsafe fn publish(slot: usize, v: usize) {
    // SAFETY: per the contract.
    unsafe { core::sync::atomic::AtomicUsize::from_ptr(slot as *mut usize).store(v, Release) }
}

/// Makes `pg`'s thread state lead nowhere into its stack (see above); keeps what [`attach`] puts
/// back.
///
/// # Safety
/// `pg`'s goroutine is switched out and its stack still in place; `pg.tstate` is live.
unsafe fn detach(pg: &mut PyG) {
    let Some(Some(layout)) = LAYOUT.get().copied() else { return };
    let ts = pg.tstate as usize;
    // SAFETY: per the contract and the checked layout; pointers are published ([`publish`]).
    unsafe {
        let top = match layout.top {
            Top::CFrame { cframe, root, current, tracing } => {
                let cf = *((ts + cframe) as *const usize);
                let rootp = ts + root;
                if cf == rootp {
                    // Not inside an eval call: nothing points into the stack.
                    return;
                }
                let top = *((cf + current) as *const usize);
                let shown = if layout.entries { past_entries(top) } else { top };
                *((rootp + current) as *mut usize) = shown;
                if tracing {
                    *(rootp as *mut u8) = *(cf as *const u8);
                }
                pg.saved_frame = cf;
                publish(ts + cframe, rootp);
                shown
            }
            Top::Current { off } => {
                let top = *((ts + off) as *const usize);
                let shown = past_entries(top);
                if shown != top {
                    pg.saved_frame = top;
                    publish(ts + off, shown);
                }
                shown
            }
        };
        pg.out = true;
        if layout.entries {
            let mut f = top;
            while f != 0 {
                let p = *((f + FRAME_PREVIOUS) as *const usize);
                let q = past_entries(p);
                if q != p {
                    pg.unlinked.push((f, p));
                    publish(f + FRAME_PREVIOUS, q);
                }
                f = q;
            }
        }
    }
}

/// Undoes [`detach`].
///
/// # Safety
/// `pg`'s goroutine is detached, its stack back in place, and it has not resumed yet.
unsafe fn attach(pg: &mut PyG) {
    let Some(Some(layout)) = LAYOUT.get().copied() else { return };
    let ts = pg.tstate as usize;
    // SAFETY: per the contract and the checked layout.
    unsafe {
        while let Some((f, p)) = pg.unlinked.pop() {
            publish(f + FRAME_PREVIOUS, p);
        }
        if pg.saved_frame != 0 {
            let off = match layout.top {
                Top::CFrame { cframe, .. } => cframe,
                Top::Current { off } => off,
            };
            publish(ts + off, pg.saved_frame);
            pg.saved_frame = 0;
        }
    }
    pg.out = false;
}

/// Per-goroutine state (`G::embed_data`): owned by the goroutine, freed by `switch_out` at exit.
struct PyG {
    callable: Obj,
    /// The arguments (a tuple) or null (no arguments), and the `contextvars.Context` to run the
    /// call in, or null; references of ours until the call returned.
    args: Obj,
    ctx: Obj,
    interp: Obj,
    key: libc::pthread_key_t,
    /// The goroutine's thread state, null before the entry made it and after it deleted it.
    tstate: Obj,
    /// The slot's value to put back on switch-out, valid while `swapped`.
    saved_slot: *mut c_void,
    swapped: bool,
    /// The entry has finished: the next switch-out is the goroutine's exit.
    done: bool,
    /// Runs on the copy kind: its thread state leads nowhere into the shared stack while it is
    /// switched out (see "copy-stack goroutines" above).
    copy: bool,
    /// [`detach`] ran (and [`attach`] has not yet).
    out: bool,
    /// What [`detach`] took out of the thread state (3.11/3.12: `tstate->cframe`; 3.13:
    /// `tstate->current_frame` if it was an entry frame), or 0.
    saved_frame: usize,
    /// Frames whose `previous` [`detach`] unlinked from entry frames, with the original (empty,
    /// with no allocation, until a first detach finds one; its capacity is kept across switches).
    unlinked: Vec<(usize, usize)>,
}

static HOOKS: EmbedHooks = EmbedHooks { switch_in, switch_out, restored };

/// # Safety
/// Called by the scheduler on g0 with a goroutine spawned by [`spawn`] (embed_data is its PyG).
unsafe fn switch_in(g: *mut G) {
    // SAFETY: per the contract; only this M touches the PyG while the goroutine is on it.
    unsafe {
        let pg = &mut *((*g).embed_data() as *mut PyG);
        if !pg.tstate.is_null() {
            pg.saved_slot = libc::pthread_getspecific(pg.key);
            libc::pthread_setspecific(pg.key, pg.tstate);
            pg.swapped = true;
        }
    }
}

/// # Safety
/// As [`switch_in`].
unsafe fn switch_out(g: *mut G) {
    // SAFETY: per the contract. At exit (`done`) nothing refers to the PyG any more: the
    // scheduler clears embed_data right after this hook.
    unsafe {
        let pgp = (*g).embed_data() as *mut PyG;
        let pg = &mut *pgp;
        if pg.swapped {
            libc::pthread_setspecific(pg.key, pg.saved_slot);
            pg.swapped = false;
        }
        // (The G's kind, not pg.copy: under a sanitizer or valgrind spawn gives a FIXED stack, and
        // only copy-stack goroutines get the `restored` hook that undoes this.)
        if !pg.tstate.is_null() && !pg.out && sched::copystack::is_copy(g) {
            detach(pg);
        }
        if pg.done {
            drop(Box::from_raw(pgp));
        }
    }
}

/// # Safety
/// Called by the scheduler on g0 for a copy-stack goroutine spawned by [`spawn`], its stack back
/// in place, right before it resumes.
unsafe fn restored(g: *mut G) {
    // SAFETY: per the contract; only this M touches the PyG while the goroutine is on it.
    unsafe {
        let pg = &mut *((*g).embed_data() as *mut PyG);
        if pg.out {
            attach(pg);
        }
    }
}

/// [`entry`]'s fatal errors, out of line: `fatal!`'s formatting buffer inlined there made the
/// entry's frame 1,088 bytes, which every parked copy-stack goroutine kept in its save area.
#[cold]
#[inline(never)]
fn entry_fatal(msg: &str) -> ! {
    fatal!("{}", msg)
}

/// The goroutine's entry: runs the callable under a thread state of its own.
///
/// # Safety
/// Only as the entry of a goroutine made by [`spawn`]: `arg` is its PyG, the API is loaded, and the
/// calling thread does not hold the GIL.
unsafe extern "C" fn entry(arg: *mut c_void) {
    // SAFETY: arg is the PyG made by spawn, owned by this goroutine; the API was loaded by spawn.
    unsafe {
        let pg = &mut *(arg as *mut PyG);
        let Some(api) = API.get().and_then(|a| a.as_ref()) else { entry_fatal("gostack: CPython API vanished") };
        let ts = (api.thread_state_new)(pg.interp);
        if ts.is_null() {
            entry_fatal("gostack: PyThreadState_New failed (out of memory)");
        }
        if let Some(Layout { top: Top::CFrame { cframe, root, .. }, .. }) = LAYOUT.get().copied().flatten() {
            // The start-up check, repeated on every new thread state (two loads).
            if pg.copy && *((ts as usize + cframe) as *const usize) != ts as usize + root {
                entry_fatal("gostack: a new PyThreadState does not have the layout checked at start-up");
            }
        }
        // Point the slot at ts before taking the GIL, so that PyGILState_Check() holds from the
        // first allocation on; from now on the hooks keep it so across switches.
        pg.saved_slot = libc::pthread_getspecific(pg.key);
        libc::pthread_setspecific(pg.key, ts);
        pg.swapped = true;
        pg.tstate = ts;
        (api.eval_restore_thread)(ts);
        // Entering the context here, not with Context.run in Python, and calling with the tuple
        // directly, not through a functools.partial: two C calls (~270 bytes) less between the
        // goroutine's entry and its Python code, kept by every parked goroutine (copy kind).
        let entered = !pg.ctx.is_null() && (api.context_enter)(pg.ctx) == 0;
        let r = if !pg.ctx.is_null() && !entered {
            null_mut()
        } else if pg.args.is_null() {
            (api.object_call_object)(pg.callable, null_mut())
        } else {
            (api.object_call)(pg.callable, pg.args, null_mut())
        };
        if entered && (api.context_exit)(pg.ctx) != 0 && !(api.err_occurred)().is_null() {
            (api.err_write_unraisable)(pg.callable);
        }
        if r.is_null() {
            // The Python side (gostack.go) catches and reports everything; this is the backstop
            // for callables passed to gs_py_spawn directly.
            if !(api.err_occurred)().is_null() {
                (api.err_write_unraisable)(pg.callable);
            }
        } else {
            (api.dec_ref)(r);
        }
        for o in [pg.callable, pg.args, pg.ctx] {
            (api.dec_ref)(o); // Py_DecRef: Py_XDECREF, NULL allowed
        }
        (pg.callable, pg.args, pg.ctx) = (null_mut(), null_mut(), null_mut());
        (api.thread_state_clear)(ts);
        // Releases the GIL; ts is freed.
        (api.thread_state_delete_current)();
        pg.tstate = null_mut();
        pg.done = true;
        // Returning exits the goroutine: switch_out puts the slot back and frees pg.
    }
}

/// gs_py_spawn: starts a goroutine calling `callable()` with a thread state of its own.
///
/// # Safety
/// The caller holds the GIL and `callable` is a live Python object (borrowed; we take a reference).
pub unsafe fn spawn(callable: *mut c_void, stack_size: usize) -> i64 {
    // SAFETY: per the contract.
    unsafe { spawn_call(callable, null_mut(), null_mut(), stack_size) }
}

/// gs_py_spawn_call: starts a goroutine calling `callable(*args)` (`args` a tuple, or null for
/// none) inside the `contextvars.Context` `ctx` (null: the thread state's own).
///
/// # Safety
/// The caller holds the GIL; `callable`, and `args` and `ctx` unless null, are live Python objects
/// (borrowed; we take references).
pub unsafe fn spawn_call(callable: *mut c_void, args: *mut c_void, ctx: *mut c_void, stack_size: usize) -> i64 {
    if callable.is_null() {
        return GS_EINVAL as i64;
    }
    if stack_size != 0 && !(GS_STACK_MIN..=GS_STACK_MAX).contains(&stack_size) {
        return GS_EINVAL as i64;
    }
    let Some(api) = api() else { return GS_ESTATE as i64 };
    // SAFETY: the caller holds the GIL; args is a live object.
    if !args.is_null() && unsafe { (api.tuple_size)(args) } < 0 {
        // SAFETY: GIL held; PyTuple_Size raised SystemError for a non-tuple.
        unsafe { (api.err_clear)() };
        return GS_EINVAL as i64;
    }
    // SAFETY: the caller holds the GIL.
    let Some(key) = (unsafe { gilstate_key(api) }) else { return GS_ESTATE as i64 };
    // SAFETY: GIL held, so the thread has a current thread state.
    let interp = unsafe { (api.interpreter_get)() };
    // SAFETY: GIL held.
    unsafe { install_chunk_cache(api) };
    let size = crate::stack::round_size(if stack_size == 0 { PY_STACK_SIZE } else { stack_size });
    // SAFETY: GIL held.
    let copy = stack_size == 0 && unsafe { layout(api, interp) }.is_some();
    let pg = Box::into_raw(Box::new(PyG {
        callable,
        args,
        ctx,
        interp,
        key,
        tstate: null_mut(),
        saved_slot: null_mut(),
        swapped: false,
        done: false,
        copy,
        out: false,
        saved_frame: 0,
        unlinked: Vec::new(),
    }));
    for o in [callable, args, ctx] {
        // SAFETY: GIL held; o is live or NULL (Py_IncRef is Py_XINCREF).
        unsafe { (api.inc_ref)(o) };
    }
    let attr = Attr {
        stack_kind: if copy { GS_STACK_COPY } else { GS_STACK_FIXED },
        stack_size: size,
        max_stack: size,
        embed: Some((&HOOKS, pg.cast())),
        ..Attr::default_attr()
    };
    // SAFETY: entry is this module's goroutine body and pg the record it owns from here on.
    match unsafe { sched::spawn(attr, entry, pg.cast()) } {
        Ok(id) => id,
        Err(e) => {
            // SAFETY: the goroutine was not created: pg and the reference are still ours.
            unsafe {
                for o in [callable, args, ctx] {
                    (api.dec_ref)(o);
                }
                drop(Box::from_raw(pg));
            }
            e as i64
        }
    }
}

/// gs_py_run: runs goroutines on the calling thread for at most about `slice_ns`. Returns 0 when no
/// goroutine is left, 1 when some are (call again), `GS_EDEADLOCK` when every goroutine left is
/// blocked for good, or another negative `GS_E*` code.
///
/// Why slices: a thread blocked in C with the GIL released runs no Python signal handlers, so a
/// `gs_run` that lasts as long as the goroutines would make Ctrl-C wait for them. The Python
/// `run()` loops over slices and lets the interpreter run its handlers in between. The slice end
/// is a deadline of the scheduler's ([`sched::run_until`]), not a timer: a sleeping goroutine that
/// ended the slice (the previous design) counted as a pending timer and hid deadlocks.
pub fn run_slice(slice_ns: i64) -> c_int {
    if slice_ns <= 0 {
        return GS_EINVAL;
    }
    if sched::all_done() {
        return GS_OK;
    }
    let deadline = sched::nanotime().saturating_add(slice_ns);
    match sched::run_until(deadline) {
        GS_OK | GS_ETIMEDOUT => {}
        rc => return rc,
    }
    if sched::all_done() {
        0
    } else {
        1
    }
}

/// gs_py_stop: called by a Python goroutine that caught `SystemExit`/`KeyboardInterrupt`: the
/// `gs_py_run` slice of the thread running it ends at its next switch (its exit): `schedule()`
/// sees the slice over and leaves before it runs another goroutine, so goroutines not started
/// yet stay queued, in order, with their ids. On a worker thread (maxprocs > 1) there is no slice
/// to end: `run()` sees the stop at its next slice. Returns `GS_OK`, `GS_ENOTGOROUTINE` outside
/// goroutines.
pub fn stop_run() -> c_int {
    if sched::end_slice() {
        GS_OK
    } else {
        GS_ENOTGOROUTINE
    }
}

/// gs_py_asleep: see [`sched::asleep_but_for_outside_threads`]. The Python side adds its
/// own rule for outside threads (only threads that used gostack and are not blocked in it).
pub fn asleep() -> c_int {
    sched::asleep_but_for_outside_threads() as c_int
}
