//! # gostack: Go-style goroutines for C, Python and embedding interpreters
//!
//! The layers, top to bottom; a module uses only the layers below it (checked by
//! tests/layers.rs, with two exceptions listed there that issue #18 removes):
//!
//! ```text
//!  C programs / Python (ctypes) / interpreters
//!         |  include/gostack.h (cbindgen)
//!  abi/          the exported gs_* functions: argument checks, error codes, panic boundary
//!  sync/ embed/  channels, select, wait groups, mutexes, semaphores (on park/ready);
//!                foreign runtimes' per-goroutine state (CPython), swapped by switch hooks
//!  sched/        G, M, P, run queues, schedule(), park/ready, spawn/exit; when stacks grow,
//!                move, shrink or give pages back (grow.rs)
//!  signal/       per-M sigaltstack, SIGSEGV/SIGBUS handler (guard faults grow stacks), chaining
//!  stack/        guarded reservations, windows, pools; copying a stack (copy.rs: no G, no M)
//!  base/ fatal   the spin lock; Go-style fatal errors (the scheduler registers what they print)
//!  arch/         switch-frame layout and the assembly core's entry points (asm/x86_64_sysv_elf.S)
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
mod fatal;
#[doc(hidden)]
pub mod sched;
mod signal;
#[doc(hidden)]
pub mod stack;
#[doc(hidden)]
pub mod sync;
