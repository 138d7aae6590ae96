/*
 * gostack context-switch core: aarch64, AAPCS64 (Linux), ELF.
 *
 * The same design as asm/x86_64_sysv_elf.S (Go's runtime/asm_arm64.s adapted to the C ABI):
 *   - AAPCS64's callee-saved state (x19-x28, the frame pointer x29, the link register x30, the
 *     low halves d8-d15 of v8-v15, FPCR) is stored on the goroutine's own stack as a "switch
 *     frame" (layout: offsets.h), so copying a stack carries it along. Gobuf.sp points at it.
 *   - A goroutine is resumed with `ret`, also where x86_64 uses pop + jmp: `ret` is never
 *     checked by BTI, while `br x30` to a return address (not a landing pad) faults in a page
 *     guarded by BTI. Only gs_asm_gostart's jump into C code is a `br`, through x16, which every
 *     BTI landing pad (`bti c`, paciasp) accepts.
 *   - FPCR is written only when it differs (a write is self-synchronising on many cores); the
 *     sticky exception flags are in FPSR, which belongs to whoever raised them and is not
 *     switched, so unlike MXCSR no masking is needed.
 *   - Nothing here references Rust symbols: callers pass function pointers, so every symbol below
 *     is .hidden and the library exports only the documented gs_* API.
 *   - No red zone: AAPCS64 lets a signal handler overwrite anything below sp, so sp is always
 *     the lowest live byte, also in the middle of these routines.
 *
 * Routines (all hidden), with the same C signatures as on x86_64:
 *   gs_asm_mcall(uintptr_t *save_sp, uintptr_t g0_sp, void (*fn)(void *), void *arg)
 *   gs_asm_gogo(uintptr_t sp, uint64_t cur_fpcr)  -- noreturn
 *   gs_asm_swap(uintptr_t *save_sp, uintptr_t sp)
 *   gs_asm_park_swap(uintptr_t *save_sp, uintptr_t sp, uint8_t *lock)
 *   gs_asm_yield_swap(uintptr_t *save_sp, uintptr_t sp, uint32_t *tail, uint32_t new_tail)
 *   gs_asm_mstart(uintptr_t *save_sp, uintptr_t *base_sp, void (*fn)(void *), void *arg)
 *   gs_asm_systemstack(void (*fn)(void *), void *arg, uintptr_t g0_sp)
 *   gs_asm_gostart / gs_asm_goexit               -- goroutine entry and exit trampolines
 */
#include "offsets.h"

/* A BTI landing pad where the compiler builds with branch protection (a NOP otherwise: hint
 * space). Entries are reached by `bl`/`blr` from C and Rust. */
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define BTI_C hint 34
#else
#define BTI_C
#endif

    .text

/*
 * The frame's layout, as the macros below store it, checked against asm/offsets.h (Rust asserts
 * the same numbers against arch::SwitchFrame), so changing one without the other fails the build.
 */
.if FRAME_FP != 0 || FRAME_PC != FRAME_FP + 8
.error "SAVE_FRAME stores x29 then x30 at the bottom of the frame: asm/offsets.h disagrees"
.endif
.if FRAME_X21 != FRAME_X19 + 16 || FRAME_X23 != FRAME_X21 + 16 || FRAME_X25 != FRAME_X23 + 16 || FRAME_X27 != FRAME_X25 + 16
.error "SAVE_FRAME stores x19-x28 in pairs, one above the other: asm/offsets.h disagrees"
.endif
.if FRAME_D10 != FRAME_D8 + 16 || FRAME_D12 != FRAME_D10 + 16 || FRAME_D14 != FRAME_D12 + 16
.error "SAVE_FRAME stores d8-d15 in pairs, one above the other: asm/offsets.h disagrees"
.endif
.if FRAME_FPCR != FRAME_D14 + 16 || FRAME_SIZE != FRAME_FPCR + 16 || FRAME_SIZE % 16 != 0
.error "FPCR sits above d8-d15 and the frame is a multiple of 16 bytes: asm/offsets.h disagrees"
.endif

/*
 * SAVE_FRAME: store the switch frame of the caller of the current routine (x30 holds its return
 * address, which becomes FRAME_PC) below sp and leave sp at it. Leaves the FPCR just saved in
 * x9; clobbers nothing else (x0-x7 keep the routine's arguments).
 */
.macro SAVE_FRAME
    stp     x29, x30, [sp, #-FRAME_SIZE]!   /* save FP, LR (the resume address) */
    .cfi_adjust_cfa_offset FRAME_SIZE
    .cfi_rel_offset x29, FRAME_FP
    .cfi_rel_offset x30, FRAME_PC
    stp     x19, x20, [sp, #FRAME_X19]      /* save X19, X20 */
    .cfi_rel_offset x19, FRAME_X19
    .cfi_rel_offset x20, FRAME_X19 + 8
    stp     x21, x22, [sp, #FRAME_X21]      /* save X21, X22 */
    .cfi_rel_offset x21, FRAME_X21
    .cfi_rel_offset x22, FRAME_X21 + 8
    stp     x23, x24, [sp, #FRAME_X23]      /* save X23, X24 */
    .cfi_rel_offset x23, FRAME_X23
    .cfi_rel_offset x24, FRAME_X23 + 8
    stp     x25, x26, [sp, #FRAME_X25]      /* save X25, X26 */
    .cfi_rel_offset x25, FRAME_X25
    .cfi_rel_offset x26, FRAME_X25 + 8
    stp     x27, x28, [sp, #FRAME_X27]      /* save X27, X28 */
    .cfi_rel_offset x27, FRAME_X27
    .cfi_rel_offset x28, FRAME_X27 + 8
    stp     d8, d9, [sp, #FRAME_D8]         /* save D8, D9 */
    stp     d10, d11, [sp, #FRAME_D10]      /* save D10, D11 */
    stp     d12, d13, [sp, #FRAME_D12]      /* save D12, D13 */
    stp     d14, d15, [sp, #FRAME_D14]      /* save D14, D15 */
    mrs     x9, fpcr                        /* x9 = FPCR */
    str     x9, [sp, #FRAME_FPCR]           /* save FPCR */
.endm

/*
 * RESTORE_FRAME_AND_RET: sp points at a switch frame; x9 holds the FPCR loaded now. Reload FPCR
 * only if it differs, load the callee-saved registers, pop the frame and return to FRAME_PC.
 */
.macro RESTORE_FRAME_AND_RET
    ldr     x10, [sp, #FRAME_FPCR]          /* x10 = saved FPCR */
    cmp     x10, x9                         /* differs from the loaded one? */
    b.ne    .Lload_fpcr\@
.Lfpcr_done\@:
    ldp     x19, x20, [sp, #FRAME_X19]      /* restore X19, X20 */
    ldp     x21, x22, [sp, #FRAME_X21]      /* restore X21, X22 */
    ldp     x23, x24, [sp, #FRAME_X23]      /* restore X23, X24 */
    ldp     x25, x26, [sp, #FRAME_X25]      /* restore X25, X26 */
    ldp     x27, x28, [sp, #FRAME_X27]      /* restore X27, X28 */
    ldp     d8, d9, [sp, #FRAME_D8]         /* restore D8, D9 */
    ldp     d10, d11, [sp, #FRAME_D10]      /* restore D10, D11 */
    ldp     d12, d13, [sp, #FRAME_D12]      /* restore D12, D13 */
    ldp     d14, d15, [sp, #FRAME_D14]      /* restore D14, D15 */
    ldp     x29, x30, [sp], #FRAME_SIZE     /* restore FP, LR and pop the frame */
    ret                                     /* resume at FRAME_PC */
.Lload_fpcr\@:
    msr     fpcr, x10                       /* load FPCR */
    b       .Lfpcr_done\@
.endm

/*
 * void gs_asm_mcall(uintptr_t *save_sp, uintptr_t g0_sp, void (*fn)(void *), void *arg)
 * Go's mcall: save the running goroutine's context in *save_sp (its Gobuf), switch to the M's g0
 * stack at g0_sp and call fn(arg) there. fn must never return: it ends by gogo()-ing some
 * goroutine (perhaps the same one, which then returns from gs_asm_mcall).
 *   x0 = &g->sched.sp, x1 = m->g0 base sp (16-byte aligned), x2 = fn, x3 = arg
 */
    .globl  gs_asm_mcall
    .hidden gs_asm_mcall
    .type   gs_asm_mcall, %function
    .p2align 4
gs_asm_mcall:
    .cfi_startproc
    BTI_C
    SAVE_FRAME
    mov     x10, sp
    str     x10, [x0]                       /* g->sched.sp = frame */
    mov     sp, x1                          /* switch to g0's stack */
    .cfi_def_cfa sp, 0
    .cfi_undefined x30                      /* backtraces on g0 end here */
    mov     x29, xzr                        /* and frame-pointer walks too */
    mov     x0, x3                          /* x0 = arg */
    blr     x2                              /* fn(arg): never returns */
    brk     #0x1                            /* fn returned: impossible, crash loudly */
    .cfi_endproc
    .size   gs_asm_mcall, .-gs_asm_mcall

/*
 * noreturn void gs_asm_gogo(uintptr_t sp, uint64_t cur_fpcr)
 * Go's gogo: abandon the current stack (g0's: nothing on it survives) and resume the context
 * whose switch frame is at sp. cur_fpcr is the FPCR loaded now: the scheduler knows it from the
 * frame that the last mcall saved, since code on g0 never changes it.
 *   x0 = frame, x1 = current FPCR
 */
    .globl  gs_asm_gogo
    .hidden gs_asm_gogo
    .type   gs_asm_gogo, %function
    .p2align 4
gs_asm_gogo:
    .cfi_startproc
    BTI_C
    mov     x9, x1                          /* x9 = current FPCR */
    mov     sp, x0                          /* switch to the target's stack */
    .cfi_undefined x30
    RESTORE_FRAME_AND_RET
    .cfi_endproc
    .size   gs_asm_gogo, .-gs_asm_gogo

/*
 * void gs_asm_swap(uintptr_t *save_sp, uintptr_t sp)
 * Symmetric switch: save the caller's context in *save_sp and resume the one at sp. Returns when
 * something resumes *save_sp.
 *   x0 = where to store our frame, x1 = frame to resume
 */
    .globl  gs_asm_swap
    .hidden gs_asm_swap
    .type   gs_asm_swap, %function
    .p2align 4
gs_asm_swap:
    .cfi_startproc
    BTI_C
    SAVE_FRAME                              /* x9 = current FPCR */
    mov     x10, sp
    str     x10, [x0]                       /* *save_sp = frame */
    mov     sp, x1                          /* switch to the target's stack */
    .cfi_undefined x30
    RESTORE_FRAME_AND_RET
    .cfi_endproc
    .size   gs_asm_swap, .-gs_asm_swap

/*
 * void gs_asm_park_swap(uintptr_t *save_sp, uintptr_t sp, uint8_t *lock)
 * A parking goroutine's hand-off straight to the next one (see sched::park_handoff): save the
 * caller's context in *save_sp, switch to the target's stack, release the wait-queue lock the
 * caller holds (*lock = 0, a store-release) and resume the target. The lock is released only
 * after the caller is saved and this thread has left its stack, so the moment a waker can see
 * the parked goroutine, any thread may resume it. The store-release orders the frame's stores
 * before it, as x86_64's plain store does by the memory model.
 *   x0 = where to store our frame, x1 = frame to resume, x2 = lock byte
 */
    .globl  gs_asm_park_swap
    .hidden gs_asm_park_swap
    .type   gs_asm_park_swap, %function
    .p2align 4
gs_asm_park_swap:
    .cfi_startproc
    BTI_C
    SAVE_FRAME                              /* x9 = current FPCR */
    mov     x10, sp
    str     x10, [x0]                       /* *save_sp = frame */
    mov     sp, x1                          /* switch to the target's stack */
    .cfi_undefined x30
    stlrb   wzr, [x2]                       /* unlock: the parked goroutine may be readied now */
    RESTORE_FRAME_AND_RET
    .cfi_endproc
    .size   gs_asm_park_swap, .-gs_asm_park_swap

/*
 * void gs_asm_yield_swap(uintptr_t *save_sp, uintptr_t sp, uint32_t *tail, uint32_t new_tail)
 * A yielding goroutine's hand-off straight to the next one (see sched::proc::yield_handoff):
 * as gs_asm_park_swap, but what is published once the caller is saved and the thread has left
 * its stack is the run queue's tail (*tail = new_tail, a store-release), whose new slot already
 * holds the caller: from then on any thread may take it from the queue and resume it.
 *   x0 = where to store our frame, x1 = frame to resume, x2 = tail, w3 = new tail
 */
    .globl  gs_asm_yield_swap
    .hidden gs_asm_yield_swap
    .type   gs_asm_yield_swap, %function
    .p2align 4
gs_asm_yield_swap:
    .cfi_startproc
    BTI_C
    SAVE_FRAME                              /* x9 = current FPCR */
    mov     x10, sp
    str     x10, [x0]                       /* *save_sp = frame */
    mov     sp, x1                          /* switch to the target's stack */
    .cfi_undefined x30
    stlr    w3, [x2]                        /* publish: the yielder is on the run queue now */
    RESTORE_FRAME_AND_RET
    .cfi_endproc
    .size   gs_asm_yield_swap, .-gs_asm_yield_swap

/*
 * void gs_asm_mstart(uintptr_t *save_sp, uintptr_t *base_sp, void (*fn)(void *), void *arg)
 * Make the calling thread's stack an M's g0 stack: save the caller's context in *save_sp (so the
 * scheduler can later gogo(*save_sp) to make gs_asm_mstart return), store the stack pointer just
 * below that frame in *base_sp (g0's base: every mcall restarts there, as in Go's mstart; sp is
 * always 16-byte aligned on aarch64), and call fn(arg) on it. fn never returns.
 *   x0 = &m->resume_sp, x1 = &m->g0_base, x2 = fn, x3 = arg
 */
    .globl  gs_asm_mstart
    .hidden gs_asm_mstart
    .type   gs_asm_mstart, %function
    .p2align 4
gs_asm_mstart:
    .cfi_startproc
    BTI_C
    SAVE_FRAME
    mov     x10, sp
    str     x10, [x0]                       /* m->resume_sp = frame */
    str     x10, [x1]                       /* m->g0_base = the frame's lowest byte */
    .cfi_undefined x30                      /* the scheduler's backtraces end here */
    mov     x29, xzr
    mov     x0, x3                          /* x0 = arg */
    blr     x2                              /* fn(arg): never returns */
    brk     #0x1
    .cfi_endproc
    .size   gs_asm_mstart, .-gs_asm_mstart

/*
 * void gs_asm_systemstack(void (*fn)(void *), void *arg, uintptr_t g0_sp)
 * Go's systemstack, switching part: run fn(arg) on g0's stack at g0_sp and come back. The
 * goroutine's stack pointer is kept in x29 (callee-saved, so fn preserves it). Backtraces from
 * fn end here, as Go's do at systemstack.
 *   x0 = fn, x1 = arg, x2 = g0 base sp
 */
    .globl  gs_asm_systemstack
    .hidden gs_asm_systemstack
    .type   gs_asm_systemstack, %function
    .p2align 4
gs_asm_systemstack:
    .cfi_startproc
    BTI_C
    stp     x29, x30, [sp, #-16]!           /* save FP, LR */
    .cfi_adjust_cfa_offset 16
    .cfi_rel_offset x29, 0
    .cfi_rel_offset x30, 8
    mov     x29, sp                         /* x29 = goroutine sp */
    .cfi_def_cfa_register x29
    mov     sp, x2                          /* switch to g0's stack */
    .cfi_remember_state
    .cfi_undefined x30                      /* g0 backtraces end here */
    mov     x9, x0
    mov     x0, x1                          /* x0 = arg */
    blr     x9                              /* fn(arg) */
    mov     sp, x29                         /* back to the goroutine's stack */
    .cfi_restore_state
    .cfi_def_cfa_register sp
    ldp     x29, x30, [sp], #16             /* restore FP, LR */
    .cfi_adjust_cfa_offset -16
    .cfi_restore x29
    .cfi_restore x30
    ret
    .cfi_endproc
    .size   gs_asm_systemstack, .-gs_asm_systemstack

/*
 * Goroutine entry. A new goroutine's first switch frame (built by arch::init_frame) resumes here
 * (by `ret`) with: x19 = fn, x20 = arg, x21 = exit function, x22 = its argument (the G),
 * x29 = 0. fn is entered with x30 = gs_asm_goexit + 4, so it looks as if gs_asm_goexit had
 * called it (Go's gostartcall).
 */
    .globl  gs_asm_gostart
    .hidden gs_asm_gostart
    .type   gs_asm_gostart, %function
    .p2align 4
gs_asm_gostart:
    .cfi_startproc
    .cfi_undefined x30                      /* outermost frame of a goroutine */
    mov     x0, x20                         /* x0 = arg */
    adr     x30, gs_asm_goexit + 4          /* fn returns to goexit+4 */
    mov     x16, x19                        /* x16: a `br` every BTI landing pad accepts */
    br      x16                             /* tail-call fn(arg) */
    .cfi_endproc
    .size   gs_asm_gostart, .-gs_asm_gostart

/*
 * Goroutine exit: where every goroutine's fn returns (Go's goexit). Its first instruction is a
 * nop so that the return address goexit+4 lies inside it, and its CFI marks the return address
 * undefined, so gdb's backtrace of a goroutine ends cleanly here. x21 and x22 still hold what the
 * entry frame put there (callee-saved across fn): call exit(g); it never returns.
 */
    .globl  gs_asm_goexit
    .hidden gs_asm_goexit
    .type   gs_asm_goexit, %function
    .p2align 4
gs_asm_goexit:
    .cfi_startproc
    .cfi_undefined x30                      /* the goroutine's stack ends here */
    nop                                     /* goexit+0: return addresses point past it */
    mov     x0, x22                         /* x0 = g */
    blr     x21                             /* exit(g): never returns */
    brk     #0x1
    .cfi_endproc
    .size   gs_asm_goexit, .-gs_asm_goexit

/*
 * Thread-local words in the initial-exec model, reached from Rust with mrs tpidr_el0 and a GOT
 * load (no __tls_get_addr call); IE in a dlopen()ed library takes 32 bytes of glibc's static TLS
 * surplus.
 *   gs_tls_m: the calling thread's M (struct M *), read and written only by src/sched
 *     (getm/setm), also from the signal handler; then the thread's signal stack (low end, size),
 *     for src/signal's in_handler.
 *   gs_tls_stackguard: the running goroutine's stack guard (0 outside goroutines). x86_64 keeps
 *     it in glibc's split-stack slot %fs:0x70; glibc's aarch64 TCB has no such slot, so here it
 *     is ours, and GS_STACK_CHECK in C code takes gs_stack_check's call (gostack.h).
 */
    .section .tbss,"awT",%nobits
    .globl  gs_tls_m
    .hidden gs_tls_m
    .type   gs_tls_m, %object
    .size   gs_tls_m, 24
    .p2align 3
gs_tls_m:
    .zero   24      /* the M; then the thread's signal stack: low end, size (src/signal) */
    .globl  gs_tls_stackguard
    .hidden gs_tls_stackguard
    .type   gs_tls_stackguard, %object
    .size   gs_tls_stackguard, 8
gs_tls_stackguard:
    .zero   8

/*
 * errno's offset from the thread pointer (glibc's errno is an initial-exec TLS variable of
 * libc.so: the same offset in every thread), measured at load by src/base/errno.rs; 0 until then
 * or when unusable. A hidden symbol of ours, reached with adrp + ldr.
 */
    .data
    .globl  gs_errno_tp_off
    .hidden gs_errno_tp_off
    .type   gs_errno_tp_off, %object
    .size   gs_errno_tp_off, 8
    .p2align 3
gs_errno_tp_off:
    .zero   8

    .section .note.GNU-stack,"",%progbits
