//! Embedding foreign runtimes: per-goroutine interpreter state swapped on every switch.
//!
//! The scheduler knows nothing about interpreters. A goroutine spawned with
//! `Attr { embed: Some((&HOOKS, data)) }` carries `data` in `G::embed_data`, and the scheduler calls
//! `HOOKS.switch_in(g)` on g0 just before the goroutine resumes and `HOOKS.switch_out(g)` just after
//! it stopped (see [`crate::sched::EmbedHooks`]). An adapter keeps whatever "current thread" state its
//! interpreter keeps per OS thread pointing at the goroutine while it runs.
//!
//! Adapters:
//! - [`cpython`]: CPython through ctypes (`import gostack`), found at run time with `dlsym`; the
//!   library never links libpython, so C programs do not pay for it (its switching calls as
//!   Python built-in functions are the ABI layer's: src/abi/pyfast.rs).

pub mod cpython;
