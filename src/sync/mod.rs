//! Go's synchronisation for C goroutines: channels, select, wait groups, mutexes, semaphores.
//!
//! Everything here is built on `sched::park`/`sched::ready` and is thread-safe from the start
//! (the scheduler goes M:N): every object has its own lock ([`waiter::Lock`]), a blocked caller
//! queues a [`waiter::Waiter`] (Go's sudog) on it, and exactly one party wins the right to
//! complete a wait through a CAS (see [`waiter`] for the protocol). Wake-ups (`ready`) happen
//! after the outcome is recorded and the object's lock released. A thread that is not running
//! a goroutine blocks itself instead (a thread parker in the same record); inside a
//! `gs_systemstack` function blocking calls return `GS_ESTATE`.
//!
//! ## Pointers into goroutine stacks
//!
//! While a goroutine waits, the runtime holds pointers into its stack: its `WaitCtx` and
//! `Waiter` records (in the blocking call's frame) and the element buffers of parked senders and
//! receivers (the C caller's `elem`/`out`, usually a local). Wakers copy values straight into or
//! out of those buffers (Go's sudog.elem). **The design never moves a stack while runtime
//! structures point into it**: a stack grows only while its goroutine runs (a running goroutine
//! has no queued waiter: it is not blocked) and shrinks only at `gs_yield`, never while parked.
//! So these pointers are not adjusted; they stay valid for as long as the goroutine is parked,
//! and nobody keeps them after waking it (a timer that may still touch a `WaitCtx` is waited for
//! before the frame is left). Decided with the stack-growth work; see docs/DESIGN.md.
//!
//! Copy-stack goroutines (`GS_STACK_COPY`) are the exception: their stack is copied out when they
//! park and its addresses reused by others, so their records and element buffers live on the
//! heap instead ([`home`]).

pub mod chan;
pub mod home;
pub mod mutex;
pub mod select;
pub mod sema;
pub mod waiter;
pub mod waitgroup;
