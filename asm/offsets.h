/*
 * The one place that defines the layout the assembly core relies on.
 * src/arch/x86_64.rs asserts every value here against the Rust structs at compile time
 * (it includes this file's numbers through `include_str!` parsing, see arch::offsets).
 *
 * Saved context of a goroutine that is not running (a "switch frame"). It lives on the goroutine's
 * own stack, so a stack copy carries it along; Gobuf.sp points at its lowest byte.
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
#ifndef GOSTACK_ASM_OFFSETS_H
#define GOSTACK_ASM_OFFSETS_H

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

#endif
