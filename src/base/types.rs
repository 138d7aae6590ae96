//! Types and constants of the C API. cbindgen copies these (and their docs) into `include/gostack.h`
//! (build.rs reads this file before src/abi). They live in the bottom layer because every layer
//! returns the status codes; `abi` re-exports them.

use core::ffi::{c_char, c_int, c_void};

/// Success.
pub const GS_OK: c_int = 0;
/// An argument is invalid: NULL where a pointer is required, an out-of-range attribute, unknown flag bits.
pub const GS_EINVAL: c_int = -1;
/// Out of memory (stack reservation, goroutine record or channel buffer could not be allocated).
pub const GS_ENOMEM: c_int = -2;
/// The call needs a goroutine and the calling code is not running on one (e.g. `gs_yield` from `main`).
pub const GS_ENOTGOROUTINE: c_int = -3;
/// The channel is closed (send on a closed channel, second close, receive from a closed and drained channel).
pub const GS_ECLOSED: c_int = -4;
/// Every remaining goroutine is blocked forever: nothing can wake them.
pub const GS_EDEADLOCK: c_int = -5;
/// A timed operation ran out of time.
pub const GS_ETIMEDOUT: c_int = -6;
/// The operation would block (try-variants, `gs_select` with timeout 0).
pub const GS_EAGAIN: c_int = -7;
/// The object is still in use (freeing a channel or mutex that goroutines wait on).
pub const GS_EBUSY: c_int = -8;
/// Wrong runtime state for this call, e.g. `gs_run` from inside a goroutine, `gs_yield` inside
/// `gs_systemstack`.
pub const GS_ESTATE: c_int = -9;
/// An internal error (a Rust panic) was caught at the API boundary; the runtime may be inconsistent.
pub const GS_EPANIC: c_int = -10;

/// Stack kind (the default): a WINDOW, 256 KiB of address space whose pages the kernel commits
/// as they are touched, so the stack grows by page faults and never moves while it fits (a parked
/// goroutine costs the pages it touched, ~5 KB with page tables). Past the window (deep recursion,
/// big frames) it is MOVED to a reservation twice as large (Go's contiguous stacks), up to
/// `gs_attr.max_stack_size` (1 GiB by default; past it the process aborts with Go's
/// `runtime: goroutine N stack exceeds LIMIT-byte limit` / `fatal error: stack overflow`).
/// At `gs_yield` the pages below the stack pointer of a goroutine that went deep go back to the
/// system in place (nothing moves); only a window asked smaller than the default
/// (`gs_attr.stack_size`) also moves back to a smaller reservation.
///
/// What a move risks: the runtime moves every 8-byte word of the live stack (and every saved
/// register) whose value lies in the old stack, glibc-mangled `jmp_buf` words included. C has no
/// pointer maps, so a word the program only partly wrote (the padding bytes of a `long double`,
/// the unwritten tail of a `char` buffer) can keep stale bytes of an old stack address, look
/// like a pointer, and be changed: a silent wrong result. Moves are counted
/// (`gs_stats.stack_moves`), can be logged (`GOSTACK_STACKMOVE=log`) and forbidden
/// (`GS_SPAWN_NOMOVE`, `GOSTACK_STACKMOVE=fatal`: a Go-style fatal error instead). Code that
/// cannot live with a move uses `GS_SPAWN_NOMOVE` or `GS_STACK_FIXED`.
/// THE CONTRACT for code whose stack may move: no pointer into the stack may be held outside it
/// (heap, globals, thread-locals, another goroutine, the kernel: aio buffers, io_uring) across a
/// point where it can move (a call that goes past the window, any gs_* call).
/// Residual risk: a single frame larger than the 64 KiB guard, in code built without
/// `-fstack-clash-protection`, can jump over the guard.
pub const GS_STACK_GROWABLE: u32 = 0;
/// Stack kind: one reservation (256 KiB by default) that never moves; overflowing it is a fatal
/// error (Go's message, then abort) and `gs_stack_check` answers `GS_ENOMEM` when it lacks room.
/// For code that publishes stack addresses (interpreters, setjmp/longjmp across calls, foreign
/// runtimes).
pub const GS_STACK_FIXED: u32 = 1;
/// Stack kind (issue #16): the goroutine runs on one of a few stacks ("slots", 8 per thread) shared
/// by the copy-stack goroutines of its thread, always the same one at the same address. Its bytes
/// stay there when it switches out; when another goroutine needs the slot, the live part of its
/// stack (what lies above its stack pointer) is copied to a heap area sized to fit, and copied back
/// when it switches in. Nothing is ever adjusted (no pointer rewriting, unlike a GROWABLE move), a
/// parked goroutine costs what it had live (hundreds of bytes, not pages), a switch between
/// goroutines that hold their slots copies nothing, and one that takes a slot over costs a copy of
/// what is live. Each slot is 8 MiB, committed as touched; overflowing it is fatal.
/// THE CONTRACT: a pointer into such a goroutine's stack is valid only while it runs. Never hand
/// `&local` to another goroutine or thread (through a channel, a global, the heap): while its
/// owner is switched out, that address holds another goroutine's frames, so reads return garbage
/// and writes corrupt the other goroutine, silently. (The runtime keeps its own waiters and
/// channel elements of such goroutines on the heap: passing `&local` to `gs_chan_send`/`recv`,
/// `gs_select` is fine.) The goroutine stays on the thread of its first run
/// (`GS_SPAWN_MIGRATABLE` is ignored). Under ASan, TSan or valgrind it gets a FIXED stack instead.
/// `GOSTACK_STACK_KIND=copy` makes it the default of `gs_attr_init` and `gs_spawn` for whole
/// programs that keep the contract.
pub const GS_STACK_COPY: u32 = 2;

/// Spawn flag: the goroutine may be moved to another OS thread after it first ran. Off by default
/// because C compilers cache thread-local addresses (errno) across calls.
pub const GS_SPAWN_MIGRATABLE: u32 = 1;
/// Spawn flag: this goroutine's stack never moves. Needing more than its window (a GROWABLE
/// stack past its reservation) is a Go-style fatal error naming the goroutine and its depth
/// (`gs_stack_check` answers `GS_ENOMEM` instead). `GOSTACK_STACKMOVE=fatal` sets it for every
/// goroutine.
pub const GS_SPAWN_NOMOVE: u32 = 2;

/// Smallest accepted `gs_attr.stack_size` / `max_stack_size` (bytes). Sizes are rounded up to pages.
pub const GS_STACK_MIN: usize = 8 * 1024;
/// Largest accepted `gs_attr.stack_size` / `max_stack_size` (bytes): 64 GiB.
pub const GS_STACK_MAX: usize = 68_719_476_736;

/// Goroutine body: called with the `arg` given to `gs_spawn`. Returning from it ends the goroutine.
pub type gs_fn = Option<unsafe extern "C" fn(arg: *mut c_void)>;

/// Attributes for `gs_spawn_with`. Fill with `gs_attr_init` first, then change what you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gs_attr {
    /// `GS_STACK_GROWABLE` (default), `GS_STACK_FIXED` or `GS_STACK_COPY`; anything else is
    /// `GS_EINVAL`.
    pub stack_kind: u32,
    /// `GS_SPAWN_MIGRATABLE`, `GS_SPAWN_NOMOVE` (or'ed) or 0; unknown bits are `GS_EINVAL`.
    pub flags: u32,
    /// GROWABLE: the window (0 = default, 256 KiB); a window smaller than the default also
    /// shrinks back to it by moving (Go's density, with the risk of moves: see GS_STACK_GROWABLE);
    /// FIXED: the whole stack (0 = default, 256 KiB). Rounded up to a power of two up to 2 MiB.
    /// Non-zero values must lie in [`GS_STACK_MIN`, `GS_STACK_MAX`] and not exceed `max_stack_size`.
    pub stack_size: usize,
    /// GROWABLE: the most the stack may grow to (0 = default, 1 GiB); growing past it is fatal
    /// (Go's message, then abort). Ignored for FIXED.
    pub max_stack_size: usize,
    /// Name shown by `gs_dump` and in fatal messages; copied at spawn; may be NULL.
    pub name: *const c_char,
}

/// Runtime-wide counters, filled by `gs_get_stats`. A snapshot: counters are read without stopping
/// the world, so they may be mutually inconsistent by a few units while goroutines run.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct gs_stats {
    /// Goroutines spawned and not yet exited.
    pub goroutines_live: u64,
    /// Goroutines spawned since the library was loaded.
    pub goroutines_total: u64,
    /// Goroutine switches performed by the scheduler (each resume of a goroutine counts one).
    pub switches: u64,
    /// Bytes of virtual address space reserved for goroutine stacks (guards excluded), pools included.
    pub stack_reserved: u64,
    /// Bytes of goroutine stack memory resident (committed) right now, pools included.
    pub stack_committed: u64,
    /// Times a goroutine stack was moved (copied) to a larger reservation, past its window (guard
    /// faults, checks, entries). Growth inside the window is the kernel committing pages: it
    /// shows in `stack_committed`, never here.
    pub stack_grows: u64,
    /// Times a goroutine stack was moved (copied) to a smaller reservation at a `gs_yield` (only
    /// windows asked smaller than the default do).
    pub stack_shrinks: u64,
    /// Number of Ps (see `gs_maxprocs`).
    pub maxprocs: u32,
    /// Live OS threads that have run goroutines (threads in `gs_run`/`gs_main` included; a thread
    /// that exits is no longer counted).
    pub threads: u32,
    /// Copy-moves of goroutine stacks: `stack_grows + stack_shrinks`. 0 means no stack ever
    /// moved (nothing a move can corrupt happened).
    pub stack_moves: u64,
    /// Times a goroutine's unused stack pages were given back in place at a `gs_yield` (nothing
    /// moves).
    pub stack_releases: u64,
    /// Bytes of stack reservation held by goroutines that have not exited (the rest of
    /// `stack_reserved` is kept by the pools for reuse: see `stack_pooled`).
    pub stack_in_use: u64,
    /// Bytes of stack reservation the pools keep for reuse (`stack_reserved - stack_in_use`):
    /// address space; what of it is resident is bounded (32 MiB of warm stacks per size class in
    /// the global pool, 64 stacks per class per P; the rest have given their pages back).
    pub stack_pooled: u64,
    /// Goroutine records ever made (each ~230 bytes, reused by later goroutines and never given
    /// back, like Go's: after a burst of N goroutines, N records stay allocated).
    pub goroutine_records: u64,
}

/// The calling goroutine's stack, filled by `gs_get_stack_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct gs_stack_info {
    /// Lowest usable address (the guard region lies below it). For a GROWABLE stack, valid until
    /// it next grows or shrinks; note that a copy of this value kept on the stack is itself moved
    /// by the next growth (it equals a stack address).
    pub lo: usize,
    /// One past the highest usable address.
    pub hi: usize,
    /// `hi - lo`.
    pub size: usize,
    /// `hi -` the caller's stack pointer.
    pub used: usize,
    /// `GS_STACK_GROWABLE`, `GS_STACK_FIXED` or `GS_STACK_COPY` (whose `lo`/`hi` are the shared
    /// stack, one of its thread's slots, that it shares with other copy-stack goroutines).
    pub kind: u32,
    /// Times this goroutine's stack grew.
    pub grows: u64,
    /// Times this goroutine's stack shrank.
    pub shrinks: u64,
}

/// `gs_case.dir`: the case sends `*elem` on `chan`.
pub const GS_CASE_SEND: i32 = 1;
/// `gs_case.dir`: the case receives from `chan` into `elem` (`elem` may be NULL to discard).
pub const GS_CASE_RECV: i32 = 2;

// The handle types are not #[repr(C)] on purpose: cbindgen then emits them as incomplete
// (opaque) struct types, which C code can only hold pointers to (rustls-ffi's pattern).

/// A channel of fixed-size elements (Go's `chan T`). Opaque: made by `gs_chan_new`, freed by
/// `gs_chan_free`.
pub struct gs_chan {
    _private: [u8; 0],
}

/// A wait group (Go's `sync.WaitGroup`). Opaque: `gs_waitgroup_new` / `gs_waitgroup_free`.
pub struct gs_waitgroup {
    _private: [u8; 0],
}

/// A mutex that parks goroutines (Go's `sync.Mutex`). Opaque: `gs_mutex_new` / `gs_mutex_free`.
pub struct gs_mutex {
    _private: [u8; 0],
}

/// A counting semaphore that parks goroutines. Opaque: `gs_sema_new` / `gs_sema_free`.
pub struct gs_sema {
    _private: [u8; 0],
}

/// One case of `gs_select` (Go's `case v := <-ch:` / `case ch <- v:`). The caller owns the
/// array and the `elem` buffers; they must stay valid until `gs_select` returns.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct gs_case {
    /// The channel; NULL makes the case never ready (Go's nil channel).
    pub chan: *mut gs_chan,
    /// `GS_CASE_SEND` or `GS_CASE_RECV`; anything else is `GS_EINVAL`.
    pub dir: i32,
    /// SEND: the value to send (elem_size bytes; may be NULL only if elem_size is 0).
    /// RECV: where the received value is written (NULL discards it).
    pub elem: *mut c_void,
    /// Out, written for the case that fired only: `GS_OK`, or `GS_ECLOSED` when the case is a
    /// receive from a closed, drained channel or a send on a closed channel.
    pub status: i32,
}
