/*
 * The one place that defines the layout the assembly core relies on, one section per
 * architecture. build.rs turns the `#define`s of the target's section into Rust constants
 * (arch::offsets) and src/arch/<arch>.rs asserts every value against the Rust structs at compile
 * time. build.rs understands exactly the `#if defined(__x86_64__)` / `#elif defined(__aarch64__)`
 * / `#endif` lines below; it fails on any other conditional.
 */
#ifndef GOSTACK_ASM_OFFSETS_H
#define GOSTACK_ASM_OFFSETS_H

#if defined(__x86_64__)
/*
 * x86_64 (asm/x86_64_sysv_elf.S, src/arch/x86_64.rs). Saved context of a goroutine that is not
 * running (a "switch frame"). It lives on the goroutine's own stack, so a stack copy carries it
 * along; Gobuf.sp points at its lowest byte.
 *
 *        higher addresses
 *      +------------------+
 *      | return address   |  FRAME_PC    0x38  where the goroutine resumes (pop + jmp)
 *      | rbp              |  FRAME_RBP   0x30
 *      | rbx              |  FRAME_RBX   0x28
 *      | r12              |  FRAME_R12   0x20
 *      | r13              |  FRAME_R13   0x18
 *      | r14              |  FRAME_R14   0x10
 *      | r15              |  FRAME_R15   0x08
 *      | fcw | mxcsr      |  FRAME_FPCTL 0x00  MXCSR (4 bytes), x87 control word (2 bytes), 2 unused
 *      +------------------+  <- Gobuf.sp
 *        lower addresses
 */

#define FRAME_FPCTL  0x00
#define FRAME_MXCSR  0x00
#define FRAME_FCW    0x04
#define FRAME_R15    0x08
#define FRAME_R14    0x10
#define FRAME_R13    0x18
#define FRAME_R12    0x20
#define FRAME_RBX    0x28
#define FRAME_RBP    0x30
#define FRAME_PC     0x38
#define FRAME_SIZE   0x40

/* MXCSR bits 6..15 are control (DAZ, exception masks, rounding, FZ); bits 0..5 are sticky status
 * flags that belong to whoever raised them and are never switched. */
#define MXCSR_CONTROL_MASK 0xffc0
#define MXCSR_STATUS_MASK  0x003f

#elif defined(__aarch64__)
/*
 * aarch64 (asm/aarch64_aapcs_elf.S, src/arch/aarch64.rs). The switch frame holds what AAPCS64
 * makes callee-saved: x19-x28, the frame pointer x29, the link register x30 (where the goroutine
 * resumes), the low 64 bits of v8-v15 (d8-d15) and FPCR (rounding mode, flush-to-zero, default
 * NaN, trap enables; the sticky flags live in FPSR, which is not switched). It lives on the
 * goroutine's own stack, 16-byte aligned as sp always is on aarch64; Gobuf.sp points at it.
 *
 *        higher addresses
 *      +------------------+
 *      | unused           |  0xa8
 *      | fpcr             |  FRAME_FPCR  0xa0
 *      | d14 | d15        |  FRAME_D14   0x90
 *      | d12 | d13        |  FRAME_D12   0x80
 *      | d10 | d11        |  FRAME_D10   0x70
 *      | d8  | d9         |  FRAME_D8    0x60
 *      | x27 | x28        |  FRAME_X27   0x50
 *      | x25 | x26        |  FRAME_X25   0x40
 *      | x23 | x24        |  FRAME_X23   0x30
 *      | x21 | x22        |  FRAME_X21   0x20
 *      | x19 | x20        |  FRAME_X19   0x10
 *      | x29 | x30 (pc)   |  FRAME_FP 0x00, FRAME_PC 0x08: a frame record, as a prologue's
 *      +------------------+  <- Gobuf.sp         stp x29, x30, [sp, #-N]! leaves it
 *        lower addresses
 */
#define FRAME_FP     0x00
#define FRAME_PC     0x08
#define FRAME_X19    0x10
#define FRAME_X21    0x20
#define FRAME_X23    0x30
#define FRAME_X25    0x40
#define FRAME_X27    0x50
#define FRAME_D8     0x60
#define FRAME_D10    0x70
#define FRAME_D12    0x80
#define FRAME_D14    0x90
#define FRAME_FPCR   0xa0
#define FRAME_SIZE   0xb0

#endif

#endif
