//! Per-architecture half of the context switch. One file per architecture, all exporting the same
//! small set of items (corosensei's layout); this module picks one.

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub use x86_64::*;

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!("Unsupported target: gostack supports x86_64 Linux (SysV ELF) only");
