//! Per-architecture half of the context switch. One file per architecture, all exporting the same
//! small set of items (corosensei's layout); this module picks one.
//!
//! What each exports: the switch frame (`SwitchFrame`, `init_frame`, `frame_fpctl`, `frame_fp`,
//! `FpControl`, `fp_control`) and the assembly entry points (`gs_asm_*`); the thread's TLS words
//! (`tls_m`, `set_tls_m`, `tls_stack_guard`, `set_tls_stack_guard`) and `current_sp`; what the
//! stack mover must know about memory words (`RED_ZONE`, glibc's pointer mangling:
//! `pointer_guard`, `MANGLE_ROTATE`, `USER_ADDR_BITS`); the signal context (`uc_sp`, `uc_pc`,
//! `uc_fp`, `for_each_saved_register`, `set_saved_register`, `probe_loop_end`,
//! `KERNEL_FRAME_ROOM`, `signal_init`; aarch64 also `for_each_vector_lane`, x86_64 has
//! stack::xsave); and valgrind's client-request sequence.

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub use x86_64::*;

#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
pub use aarch64::*;

#[cfg(not(any(all(target_arch = "x86_64", target_os = "linux"), all(target_arch = "aarch64", target_os = "linux"))))]
compile_error!("Unsupported target: gostack supports x86_64 and aarch64 Linux (ELF) only");
