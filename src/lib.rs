//! # gostack: Go-style goroutines for C, Python and embedding interpreters
//!
//! The layers, top to bottom; a module uses only the layers below it (checked by
//! tests/layers.rs, no exceptions). A lower layer that needs a decision from above asks through a
//! callback the higher one registers at start-up (the fatal-error dump, the fault decision).
//!
//! ```text
//!  C programs / Python (ctypes) / interpreters
//!         |  include/gostack.h (cbindgen: base/types.rs + abi/)
//!  abi/          the exported gs_* functions: argument checks, error codes, panic boundary
//!  sync/ embed/  channels, select, wait groups, mutexes, semaphores (on park/ready);
//!                foreign runtimes' per-goroutine state (CPython), swapped by switch hooks
//!  sched/        everything that touches a G: G, M, P, run queues, schedule(), park/ready,
//!                spawn/exit, timers, deadlock detection; when stacks grow, move, shrink or give
//!                pages back (grow.rs); which faults are guard faults (fault.rs)
//!  signal/       per-M sigaltstack, SIGSEGV/SIGBUS handler, chaining (asks sched's fault hook)
//!  stack/        guarded reservations, windows, pools; copying a stack (no G, no M)
//!  base/         status codes and C types, Go-style fatal errors (the scheduler registers what
//!                they print), spin lock, futex mutex, clocks, fastrand
//!  arch/         switch-frame layout and the assembly core's entry points (asm/x86_64_sysv_elf.S,
//!                asm/aarch64_aapcs_elf.S)
//! ```
//!
//! Vocabulary is Go's on purpose: a **G** is a goroutine, an **M** an OS thread running goroutines
//! (its **g0** is the thread's own stack, where the scheduler runs), a **P** a processor with a
//! local run queue. Functions that run on g0 end in `_m`. See docs/DESIGN.md in the repository.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(non_camel_case_types)]

pub mod abi;
#[doc(hidden)]
pub mod arch;
mod base;
mod embed;
#[doc(hidden)]
pub mod sched;
mod signal;
#[doc(hidden)]
pub mod stack;
#[doc(hidden)]
pub mod sync;
