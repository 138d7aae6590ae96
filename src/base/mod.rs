//! The bottom layer, below the stacks: what every other layer may use and that uses none of them:
//! the C API's status codes and types (`types`, re-exported by `abi` and read by cbindgen), the
//! fatal-error writer with its dump hook (`fatal`), the spin lock, the futex mutex and wake-up
//! flag, the clocks.

pub mod clock;
pub mod errno;
pub mod fatal;
pub mod futex;
pub mod lock;
pub mod rand;
pub mod types;
