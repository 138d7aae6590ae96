//! The bottom layer, below the stacks: what every other layer may use and that uses none of them.
//! (Status codes, the fatal-error writer, the clock and the random numbers are still in
//! `abi::types`, `fatal` and `sched`: issue #18 moves them here.)

pub mod lock;
