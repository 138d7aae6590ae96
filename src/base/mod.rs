//! The bottom layer, below the stacks: what every other layer may use and that uses none of them:
//! the spin lock, the futex mutex and wake-up flag, the clocks. (Status codes, the fatal-error
//! writer and the random numbers are still in `abi::types`, `fatal` and `sync`: issue #18 moves
//! them here.)

pub mod clock;
pub mod errno;
pub mod futex;
pub mod lock;
