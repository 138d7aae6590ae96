//! # gostack: Go-style goroutines for C, Python and embedding interpreters
//!
//! The layers, top to bottom (data flows down; nothing calls up except through the scheduler):
//!
//! ```text
//!  C programs / Python (ctypes) / interpreters
//!         |  include/gostack.h (cbindgen)
//!  abi/     the exported gs_* functions: argument checks, error codes, panic boundary
//!  embed/   foreign runtimes' per-goroutine state (CPython), swapped by switch hooks
//!  sched/   G, M, P, run queues, schedule(), park/ready, spawn/exit
//!  sync/    channels, select, wait groups, mutexes, semaphores (on park/ready)
//!  stack/   guarded reservations, pools; copy-growing (grow.rs: copy, adjust, shrink)
//!  signal/  per-M sigaltstack, SIGSEGV/SIGBUS handler (guard faults grow stacks), chaining
//!  arch/    switch-frame layout and the assembly core's entry points (asm/x86_64_sysv_elf.S)
//! ```
//!
//! Vocabulary is Go's on purpose: a **G** is a goroutine, an **M** an OS thread running goroutines
//! (its **g0** is the thread's own stack, where the scheduler runs), a **P** a processor with a
//! local run queue. Functions that run on g0 end in `_m`. See docs/DESIGN.md in the repository.
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(non_camel_case_types)]

pub mod abi;
#[doc(hidden)]
pub mod arch;
mod embed;
mod fatal;
#[doc(hidden)]
pub mod sched;
mod signal;
#[doc(hidden)]
pub mod stack;
#[doc(hidden)]
pub mod sync;
