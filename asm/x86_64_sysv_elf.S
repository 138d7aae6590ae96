/*
 * gostack context-switch core: x86_64, System V ABI, ELF.
 *
 * Go's design (runtime/asm_amd64.s) adapted to the C ABI:
 *   - C has callee-saved registers (rbx, rbp, r12-r15, MXCSR control bits, x87 control word) that
 *     Go's ABI does not. They are pushed on the goroutine's own stack (Boost.Context style) as a
 *     "switch frame" (layout: offsets.h), so copying a stack carries them along. Gobuf.sp points
 *     at the frame.
 *   - A goroutine is resumed with pop + jmp, never ret: a ret onto another stack mispredicts
 *     against the return-stack buffer (19 ns vs 5.6 ns per round trip measured here).
 *   - The FP control state is reloaded only when it differs (ldmxcsr/fldcw cost ~9 ns a round trip).
 *   - Nothing here references Rust symbols: callers pass function pointers, so every symbol below
 *     is .hidden and the library exports only the documented gs_* API.
 *
 * Routines (all hidden):
 *   gs_asm_mcall(uintptr_t *save_sp, uintptr_t g0_sp, void (*fn)(void *), void *arg)
 *   gs_asm_gogo(uintptr_t sp, uint64_t cur_fpctl)  -- noreturn
 *   gs_asm_swap(uintptr_t *save_sp, uintptr_t sp)
 *   gs_asm_park_swap(uintptr_t *save_sp, uintptr_t sp, uint8_t *lock)
 *   gs_asm_yield_swap(uintptr_t *save_sp, uintptr_t sp, uint32_t *tail, uint32_t new_tail)
 *   gs_asm_mstart(uintptr_t *save_sp, uintptr_t *base_sp, void (*fn)(void *), void *arg)
 *   gs_asm_systemstack(void (*fn)(void *), void *arg, uintptr_t g0_sp)
 *   gs_asm_gostart / gs_asm_goexit               -- goroutine entry and exit trampolines
 */
#include "offsets.h"

#if defined(__CET__)
#define ENDBR endbr64
#else
#define ENDBR
#endif

    .text

/*
 * SAVE_FRAME: push the switch frame of the caller of the current routine. On entry the caller's
 * return address is at 0(%rsp) and becomes FRAME_PC. Clobbers nothing but rsp.
 */
.macro SAVE_FRAME
    pushq   %rbp                            /* save RBP */
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbp, 0
    pushq   %rbx                            /* save RBX */
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbx, 0
    pushq   %r12                            /* save R12 */
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r12, 0
    pushq   %r13                            /* save R13 */
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r13, 0
    pushq   %r14                            /* save R14 */
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r14, 0
    pushq   %r15                            /* save R15 */
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r15, 0
    leaq    -8(%rsp), %rsp                  /* room for the FP control slot */
    .cfi_adjust_cfa_offset 8
    stmxcsr FRAME_MXCSR(%rsp)               /* save MXCSR */
    fnstcw  FRAME_FCW(%rsp)                 /* save x87 control word */
.endm

/*
 * The push order of SAVE_FRAME fixes the frame's layout: the return address on top, then RBP,
 * RBX, R12, R13, R14, R15 one word below the other, then the FP control slot at the bottom. The
 * assembler checks that asm/offsets.h says the same (Rust asserts the same numbers against
 * arch::SwitchFrame), so reordering the pushes without the header fails the build.
 */
.if FRAME_PC != FRAME_SIZE - 8 || FRAME_RBP != FRAME_PC - 8 || FRAME_RBX != FRAME_RBP - 8
.error "SAVE_FRAME pushes RBP then RBX below the return address: asm/offsets.h disagrees"
.endif
.if FRAME_R12 != FRAME_RBX - 8 || FRAME_R13 != FRAME_R12 - 8 || FRAME_R14 != FRAME_R13 - 8
.error "SAVE_FRAME pushes R12, R13, R14 in that order: asm/offsets.h disagrees"
.endif
.if FRAME_R15 != FRAME_R14 - 8 || FRAME_FPCTL != FRAME_R15 - 8 || FRAME_FPCTL != 0
.error "SAVE_FRAME pushes R15 and leaves the FP control slot at the bottom: asm/offsets.h disagrees"
.endif
.if FRAME_MXCSR != FRAME_FPCTL || FRAME_FCW != FRAME_FPCTL + 4
.error "the FP control slot holds MXCSR then the x87 control word: asm/offsets.h disagrees"
.endif

/*
 * RESTORE_FRAME_AND_JUMP: %rsp points at a switch frame; %eax holds the MXCSR and %edx the x87
 * control word currently loaded. Reload FP control only if it differs, pop the callee-saved
 * registers and jump to FRAME_PC.
 */
.macro RESTORE_FRAME_AND_JUMP
    RESTORE_FRAME_THEN jump
.endm

/*
 * RESTORE_FRAME_AND_RET: as RESTORE_FRAME_AND_JUMP, but resume with `ret`. Only for a switch
 * made by a call (gs_asm_park_swap, gs_asm_yield_swap): the return-stack predictor's top entry is that call's own
 * return address, which is where a goroutine parked by the same call site resumes, so the
 * resumed goroutine's returns stay predicted (a `jmp` leaves that entry on the predictor and
 * every return after it mispredicts: measured 10 ns of a 93 ns channel round trip).
 */
.macro RESTORE_FRAME_AND_RET
    RESTORE_FRAME_THEN ret
.endm

.macro RESTORE_FRAME_THEN how
    movl    FRAME_MXCSR(%rsp), %ecx         /* ecx = saved MXCSR */
    xorl    %eax, %ecx                      /* ecx = saved ^ current */
    testl   $MXCSR_CONTROL_MASK, %ecx       /* control bits differ? */
    jnz     .Lload_mxcsr\@
.Lmxcsr_done\@:
    cmpw    FRAME_FCW(%rsp), %dx            /* x87 control word differs? */
    jne     .Lload_fcw\@
.Lfcw_done\@:
    movq    FRAME_R15(%rsp), %r15           /* restore R15 */
    movq    FRAME_R14(%rsp), %r14           /* restore R14 */
    movq    FRAME_R13(%rsp), %r13           /* restore R13 */
    movq    FRAME_R12(%rsp), %r12           /* restore R12 */
    movq    FRAME_RBX(%rsp), %rbx           /* restore RBX */
    movq    FRAME_RBP(%rsp), %rbp           /* restore RBP */
    .ifc \how, ret
    leaq    FRAME_PC(%rsp), %rsp            /* pop the frame up to the return address */
    ret                                     /* resume */
    .else
    movq    FRAME_PC(%rsp), %r11            /* r11 = resume PC */
    leaq    FRAME_SIZE(%rsp), %rsp          /* pop the frame (return address included) */
    jmp     *%r11                           /* resume: pop + jmp, not ret */
    .endif
.Lload_mxcsr\@:
    andl    $MXCSR_STATUS_MASK, %eax        /* keep the live status flags */
    movl    FRAME_MXCSR(%rsp), %ecx
    andl    $MXCSR_CONTROL_MASK, %ecx       /* take the saved control bits */
    orl     %ecx, %eax
    movl    %eax, FRAME_MXCSR(%rsp)         /* the frame is ours until we pop it */
    ldmxcsr FRAME_MXCSR(%rsp)               /* load MXCSR */
    jmp     .Lmxcsr_done\@
.Lload_fcw\@:
    fldcw   FRAME_FCW(%rsp)                 /* load x87 control word */
    jmp     .Lfcw_done\@
.endm

/*
 * void gs_asm_mcall(uintptr_t *save_sp, uintptr_t g0_sp, void (*fn)(void *), void *arg)
 * Go's mcall: save the running goroutine's context in *save_sp (its Gobuf), switch to the M's g0
 * stack at g0_sp and call fn(arg) there. fn must never return: it ends by gogo()-ing some
 * goroutine (perhaps the same one, which then returns from gs_asm_mcall).
 *   rdi = &g->sched.sp, rsi = m->g0 base sp (16-byte aligned), rdx = fn, rcx = arg
 */
    .globl  gs_asm_mcall
    .hidden gs_asm_mcall
    .type   gs_asm_mcall, @function
    .p2align 4
gs_asm_mcall:
    .cfi_startproc
    ENDBR
    SAVE_FRAME
    movq    %rsp, (%rdi)                    /* g->sched.sp = frame */
    movq    %rsi, %rsp                      /* switch to g0's stack */
    .cfi_def_cfa rsp, 0
    .cfi_undefined rip                      /* backtraces on g0 end here */
    movq    %rcx, %rdi                      /* rdi = arg */
    callq   *%rdx                           /* fn(arg): never returns */
    ud2                                     /* fn returned: impossible, crash loudly */
    .cfi_endproc
    .size   gs_asm_mcall, .-gs_asm_mcall

/*
 * noreturn void gs_asm_gogo(uintptr_t sp, uint64_t cur_fpctl)
 * Go's gogo: abandon the current stack (g0's: nothing on it survives) and resume the context
 * whose switch frame is at sp. cur_fpctl is the FP control state loaded now (MXCSR in bits 0-31,
 * x87 control word in bits 32-47): the scheduler knows it from the frame that the last mcall
 * saved, since code on g0 never changes it. Reading MXCSR costs ~4.3 ns (stmxcsr is
 * throughput-bound on this CPU), so it is read once per switch, in SAVE_FRAME, not again here.
 *   rdi = frame, rsi = current FP control state
 */
    .globl  gs_asm_gogo
    .hidden gs_asm_gogo
    .type   gs_asm_gogo, @function
    .p2align 4
gs_asm_gogo:
    .cfi_startproc
    ENDBR
    movl    %esi, %eax                      /* eax = current MXCSR */
    shrq    $32, %rsi
    movl    %esi, %edx                      /* edx = current x87 control word */
    movq    %rdi, %rsp                      /* switch to the target's stack */
    .cfi_undefined rip
    RESTORE_FRAME_AND_JUMP
    .cfi_endproc
    .size   gs_asm_gogo, .-gs_asm_gogo

/*
 * void gs_asm_swap(uintptr_t *save_sp, uintptr_t sp)
 * Symmetric switch: save the caller's context in *save_sp and resume the one at sp. Returns when
 * something resumes *save_sp. Used for direct goroutine-to-goroutine hand-off and benchmarks.
 *   rdi = where to store our frame, rsi = frame to resume
 */
    .globl  gs_asm_swap
    .hidden gs_asm_swap
    .type   gs_asm_swap, @function
    .p2align 4
gs_asm_swap:
    .cfi_startproc
    ENDBR
    SAVE_FRAME
    movq    %rsp, (%rdi)                    /* *save_sp = frame */
    movl    FRAME_MXCSR(%rsp), %eax         /* eax = current MXCSR (just saved) */
    movzwl  FRAME_FCW(%rsp), %edx           /* edx = current x87 control word */
    movq    %rsi, %rsp                      /* switch to the target's stack */
    .cfi_undefined rip
    RESTORE_FRAME_AND_JUMP
    .cfi_endproc
    .size   gs_asm_swap, .-gs_asm_swap

/*
 * HANDOFF_SAVE_AND_SWITCH: the common part of the hand-off switches (gs_asm_park_swap,
 * gs_asm_yield_swap): push the caller's switch frame, store it in *rdi, move the publication's
 * arguments out of the way (rdx -> r8, rcx -> r9: RESTORE uses edx and ecx), load the FP control
 * state just saved into eax/edx and switch to the target's frame at rsi. The caller then publishes
 * (a release store) and resumes the target with RESTORE_FRAME_AND_RET.
 */
.macro HANDOFF_SAVE_AND_SWITCH
    SAVE_FRAME
    movq    %rsp, (%rdi)                    /* *save_sp = frame */
    movq    %rdx, %r8                       /* r8 = the publication's address */
    movq    %rcx, %r9                       /* r9 = its value (yield) */
    movl    FRAME_MXCSR(%rsp), %eax         /* eax = current MXCSR (just saved) */
    movzwl  FRAME_FCW(%rsp), %edx           /* edx = current x87 control word */
    movq    %rsi, %rsp                      /* switch to the target's stack */
    .cfi_undefined rip
.endm

/*
 * void gs_asm_park_swap(uintptr_t *save_sp, uintptr_t sp, uint8_t *lock)
 * A parking goroutine's hand-off straight to the next one (see sched::park_handoff): save the
 * caller's context in *save_sp, switch to the target's stack, release the wait-queue lock the
 * caller holds (*lock = 0, a release store on x86-64) and resume the target. The lock is
 * released only after the caller is saved and this thread has left its stack, so the moment a
 * waker can see the parked goroutine, any thread may resume it (as mcall + an unlock on g0
 * would, without the trip through g0 and the scheduler loop). A signal taken between the switch
 * and the store lands on the target's stack, which this thread owns.
 *   rdi = where to store our frame, rsi = frame to resume, rdx = lock byte
 */
    .globl  gs_asm_park_swap
    .hidden gs_asm_park_swap
    .type   gs_asm_park_swap, @function
    .p2align 4
gs_asm_park_swap:
    .cfi_startproc
    ENDBR
    HANDOFF_SAVE_AND_SWITCH
    movb    $0, (%r8)                       /* unlock: the parked goroutine may be readied now */
    RESTORE_FRAME_AND_RET
    .cfi_endproc
    .size   gs_asm_park_swap, .-gs_asm_park_swap

/*
 * void gs_asm_yield_swap(uintptr_t *save_sp, uintptr_t sp, uint32_t *tail, uint32_t new_tail)
 * A yielding goroutine's hand-off straight to the next one (see sched::proc::yield_handoff):
 * as gs_asm_park_swap, but what is published once the caller is saved and the thread has left
 * its stack is the run queue's tail (*tail = new_tail, a release store), whose new slot already
 * holds the caller: from then on any thread may take it from the queue and resume it.
 *   rdi = where to store our frame, rsi = frame to resume, rdx = tail, ecx = new tail
 */
    .globl  gs_asm_yield_swap
    .hidden gs_asm_yield_swap
    .type   gs_asm_yield_swap, @function
    .p2align 4
gs_asm_yield_swap:
    .cfi_startproc
    ENDBR
    HANDOFF_SAVE_AND_SWITCH
    movl    %r9d, (%r8)                     /* publish: the yielder is on the run queue now */
    RESTORE_FRAME_AND_RET
    .cfi_endproc
    .size   gs_asm_yield_swap, .-gs_asm_yield_swap

/*
 * void gs_asm_mstart(uintptr_t *save_sp, uintptr_t *base_sp, void (*fn)(void *), void *arg)
 * Make the calling thread's stack an M's g0 stack: save the caller's context in *save_sp (so the
 * scheduler can later gogo(*save_sp) to make gs_asm_mstart return), store the 16-byte aligned
 * stack pointer just below that frame in *base_sp (g0's base: every mcall restarts there, as in
 * Go's mstart), and call fn(arg) on it. fn never returns.
 *   rdi = &m->resume_sp, rsi = &m->g0_base, rdx = fn, rcx = arg
 */
    .globl  gs_asm_mstart
    .hidden gs_asm_mstart
    .type   gs_asm_mstart, @function
    .p2align 4
gs_asm_mstart:
    .cfi_startproc
    ENDBR
    SAVE_FRAME
    movq    %rsp, (%rdi)                    /* m->resume_sp = frame */
    movq    %rsp, %rax
    andq    $-16, %rax                      /* rax = g0 base, below the frame */
    movq    %rax, (%rsi)                    /* m->g0_base = rax */
    movq    %rax, %rsp
    .cfi_def_cfa rsp, 0
    .cfi_undefined rip                      /* the scheduler's backtraces end here */
    movq    %rcx, %rdi                      /* rdi = arg */
    callq   *%rdx                           /* fn(arg): never returns */
    ud2
    .cfi_endproc
    .size   gs_asm_mstart, .-gs_asm_mstart

/*
 * void gs_asm_systemstack(void (*fn)(void *), void *arg, uintptr_t g0_sp)
 * Go's systemstack, switching part: run fn(arg) on g0's stack at g0_sp and come back. The
 * goroutine's stack pointer is kept in rbp (callee-saved, so fn preserves it). Backtraces from
 * fn end here, as Go's do at systemstack: debuggers refuse to unwind from g0 onto the goroutine's
 * stack, which lies at lower addresses ("previous frame inner to this frame").
 *   rdi = fn, rsi = arg, rdx = g0 base sp
 */
    .globl  gs_asm_systemstack
    .hidden gs_asm_systemstack
    .type   gs_asm_systemstack, @function
    .p2align 4
gs_asm_systemstack:
    .cfi_startproc
    ENDBR
    pushq   %rbp                            /* save RBP */
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbp, 0
    movq    %rsp, %rbp                      /* rbp = goroutine sp */
    .cfi_def_cfa_register rbp
    movq    %rdx, %rsp                      /* switch to g0's stack */
    .cfi_remember_state
    .cfi_undefined rip                      /* g0 backtraces end here */
    movq    %rdi, %rax
    movq    %rsi, %rdi                      /* rdi = arg */
    callq   *%rax                           /* fn(arg) */
    movq    %rbp, %rsp                      /* back to the goroutine's stack */
    .cfi_restore_state
    .cfi_def_cfa_register rsp
    popq    %rbp                            /* restore RBP */
    .cfi_adjust_cfa_offset -8
    .cfi_restore rbp
    ret
    .cfi_endproc
    .size   gs_asm_systemstack, .-gs_asm_systemstack

/*
 * Goroutine entry. A new goroutine's first switch frame (built by arch::init_frame) resumes here
 * with: r12 = fn, r13 = arg, rbx = exit function, r14 = its argument (the G), rbp = 0, and
 * 0(%rsp) = gs_asm_goexit + 1, so fn looks as if gs_asm_goexit had called it (Go's gostartcall).
 */
    .globl  gs_asm_gostart
    .hidden gs_asm_gostart
    .type   gs_asm_gostart, @function
    .p2align 4
gs_asm_gostart:
    .cfi_startproc
    .cfi_undefined rip                      /* outermost frame of a goroutine */
    ENDBR
    movq    %r13, %rdi                      /* rdi = arg */
    jmpq    *%r12                           /* tail-call fn(arg); it returns to goexit+1 */
    .cfi_endproc
    .size   gs_asm_gostart, .-gs_asm_gostart

/*
 * Goroutine exit: the return stub at the top of every goroutine stack (Go's goexit). Its first
 * byte is a nop so that the return address goexit+1 lies inside it, and its CFI marks the return
 * address undefined, so gdb's backtrace of a goroutine ends cleanly here. rbx and r14 still hold
 * what the entry frame put there (callee-saved across fn): call exit(g); it never returns.
 */
    .globl  gs_asm_goexit
    .hidden gs_asm_goexit
    .type   gs_asm_goexit, @function
    .p2align 4
gs_asm_goexit:
    .cfi_startproc
    .cfi_undefined rip                      /* the goroutine's stack ends here */
    nop                                     /* goexit+0: return addresses point past it */
    movq    %r14, %rdi                      /* rdi = g */
    callq   *%rbx                           /* exit(g): never returns */
    ud2
    .cfi_endproc
    .size   gs_asm_goexit, .-gs_asm_goexit

/*
 * The calling thread's M (struct M *), one word of thread-local storage in the initial-exec
 * model: reached in two instructions (a GOT load and an %fs-relative load) instead of the
 * __tls_get_addr call that Rust's thread_local! costs in a shared library, four times per
 * channel round trip. IE in a dlopen()ed library takes 8 bytes of glibc's static TLS surplus.
 * Read and written only by src/sched (getm/setm), also from the signal handler.
 */
    .section .tbss,"awT",@nobits
    .globl  gs_tls_m
    .hidden gs_tls_m
    .type   gs_tls_m, @object
    .size   gs_tls_m, 24
    .p2align 3
gs_tls_m:
    .zero   24      /* the M; then the thread's signal stack: low end, size (src/signal) */

/*
 * errno's offset from the thread pointer (glibc's errno is an initial-exec TLS variable of
 * libc.so: the same offset in every thread), measured at load by src/base/errno.rs; 0 until then
 * or when unusable. A hidden symbol of ours, read rip-relative in one instruction (a Rust static
 * of a shared library is reached through the GOT: two).
 */
    .data
    .globl  gs_errno_tp_off
    .hidden gs_errno_tp_off
    .type   gs_errno_tp_off, @object
    .size   gs_errno_tp_off, 8
    .p2align 3
gs_errno_tp_off:
    .zero   8

    .section .note.GNU-stack,"",@progbits
