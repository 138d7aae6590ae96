/*
 * test_stack_grow_vector: the guard-fault handler moves stack pointers held in registers: general
 * registers, XMM lanes, the upper halves of YMM registers and, where the CPU has AVX-512, the upper
 * halves of ZMM0-15 and ZMM16-31 (saved in the signal frame's XSAVE area). Inline assembly loads
 * the address of a local into r12, xmm9, every lane of ymm10 / zmm11 / zmm20, then stores 4 KiB
 * into the guard region below the 8 KiB stack: the store faults, the stack moves, the store
 * retries, and every register copy must now hold the moved address of the local (checked
 * against gs_get_stack_info's new bounds and against &local computed afterwards).
 * On aarch64 the same with x19, both lanes of v9 (the fpsimd record of the signal frame) and,
 * where the CPU has SVE, every lane of z10 (the SVE record, which the kernel restores in place of
 * the V registers).
 */
#include "gs_test.h"
#if defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_SVE
#define HWCAP_SVE (1 << 22)
#endif
#endif

typedef struct {
    uint64_t r12, xmm_lo, ymm_hi, zmm_hi, zmm20_lo, zmm20_hi;
} seen;

static GS_TEST_NOINLINE uintptr_t room_below(void) {
    gs_stack_info si;
    CHECK_OK(gs_get_stack_info(&si));
    return (uintptr_t)__builtin_frame_address(0) - si.lo;
}

static void check_moved(const char *what, uint64_t v, uintptr_t local, const gs_stack_info *before,
                        const gs_stack_info *after) {
    if (v != local)
        gs_test_fail(__FILE__, __LINE__, "%s holds %#llx, &local is %#lx (old stack [%#lx, %#lx), new [%#lx, %#lx))",
                     what, (unsigned long long)v, (unsigned long)local, (unsigned long)before->lo,
                     (unsigned long)before->hi, (unsigned long)after->lo, (unsigned long)after->hi);
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static GS_TEST_NOINLINE void avx2_case(void) {
    volatile char local[64];
    gs_stack_info before, after;
    seen s;
    uintptr_t dist;
    local[0] = 1;
    CHECK_OK(gs_get_stack_info(&before));
    dist = room_below() + 4096 + 512;
    __asm__ volatile(
        "movq %[p], %%r12\n\t"
        "vmovq %[p], %%xmm9\n\t"
        "vpbroadcastq %%xmm9, %%ymm10\n\t"
        "movq %%rsp, %%rax\n\t"
        "subq %[d], %%rax\n\t"
        "movq $1, (%%rax)\n\t" /* faults in the guard region: the stack grows */
        "movq %%r12, %[r12]\n\t"
        "vmovq %%xmm9, %[xlo]\n\t"
        "vextracti128 $1, %%ymm10, %%xmm0\n\t"
        "vmovq %%xmm0, %[yhi]\n\t"
        "vzeroupper\n\t"
        : [r12] "=m"(s.r12), [xlo] "=m"(s.xmm_lo), [yhi] "=m"(s.ymm_hi)
        : [p] "r"((uintptr_t)&local[0]), [d] "r"(dist)
        : "rax", "r12", "xmm0", "xmm9", "xmm10", "memory");
    CHECK_OK(gs_get_stack_info(&after));
    CHECK(after.lo != before.lo);
    CHECK(after.grows > before.grows);
    check_moved("r12", s.r12, (uintptr_t)&local[0], &before, &after);
    check_moved("xmm9", s.xmm_lo, (uintptr_t)&local[0], &before, &after);
    check_moved("ymm10 upper half", s.ymm_hi, (uintptr_t)&local[0], &before, &after);
    CHECK_EQ(local[0], 1);
}

__attribute__((target("avx512f"))) static GS_TEST_NOINLINE void avx512_case(void) {
    volatile char local[64];
    gs_stack_info before, after;
    seen s;
    uintptr_t dist;
    local[0] = 2;
    CHECK_OK(gs_get_stack_info(&before));
    dist = room_below() + 4096 + 512;
    __asm__ volatile(
        "vpbroadcastq %[p], %%zmm11\n\t"
        "vpbroadcastq %[p], %%zmm20\n\t"
        "movq %%rsp, %%rax\n\t"
        "subq %[d], %%rax\n\t"
        "movq $1, (%%rax)\n\t" /* faults in the guard region: the stack grows */
        "vextracti64x4 $1, %%zmm11, %%ymm0\n\t"
        "vmovq %%xmm0, %[zhi]\n\t"
        "vmovq %%xmm20, %[z20lo]\n\t"
        "vextracti64x4 $1, %%zmm20, %%ymm0\n\t"
        "vmovq %%xmm0, %[z20hi]\n\t"
        "vzeroupper\n\t"
        : [zhi] "=m"(s.zmm_hi), [z20lo] "=m"(s.zmm20_lo), [z20hi] "=m"(s.zmm20_hi)
        : [p] "r"((uintptr_t)&local[0]), [d] "r"(dist)
        : "rax", "xmm0", "xmm11", "xmm20", "memory");
    CHECK_OK(gs_get_stack_info(&after));
    CHECK(after.lo != before.lo);
    check_moved("zmm11 upper half", s.zmm_hi, (uintptr_t)&local[0], &before, &after);
    check_moved("zmm20 low lane", s.zmm20_lo, (uintptr_t)&local[0], &before, &after);
    check_moved("zmm20 upper half", s.zmm20_hi, (uintptr_t)&local[0], &before, &after);
    CHECK_EQ(local[0], 2);
}

#endif

#if defined(__aarch64__)
static GS_TEST_NOINLINE void neon_case(void) {
    volatile char local[64];
    gs_stack_info before, after;
    uint64_t out[3];
    uintptr_t dist;
    local[0] = 3;
    CHECK_OK(gs_get_stack_info(&before));
    dist = room_below() + 4096 + 512;
    /* out's address is in a register too: the handler moves it, so the stores land in the moved
     * frame. */
    __asm__ volatile(
        "mov x19, %[p]\n\t"
        "dup v9.2d, %[p]\n\t"
        "mov x9, sp\n\t"
        "sub x9, x9, %[d]\n\t"
        "str xzr, [x9]\n\t" /* faults in the guard region: the stack grows */
        "str x19, [%[out]]\n\t"
        "mov x10, v9.d[0]\n\t"
        "str x10, [%[out], #8]\n\t"
        "mov x10, v9.d[1]\n\t"
        "str x10, [%[out], #16]\n\t"
        :
        : [p] "r"((uintptr_t)&local[0]), [d] "r"(dist), [out] "r"(out)
        : "x9", "x10", "x19", "v9", "memory");
    CHECK_OK(gs_get_stack_info(&after));
    CHECK(after.lo != before.lo);
    CHECK(after.grows > before.grows);
    check_moved("x19", out[0], (uintptr_t)&local[0], &before, &after);
    check_moved("v9 lane 0", out[1], (uintptr_t)&local[0], &before, &after);
    check_moved("v9 lane 1", out[2], (uintptr_t)&local[0], &before, &after);
    CHECK_EQ(local[0], 3);
}

static GS_TEST_NOINLINE void sve_case(void) {
    volatile char local[64];
    gs_stack_info before, after;
    uint64_t z[256 / 8]; /* up to a 2048-bit vector */
    uint64_t lanes;
    uintptr_t dist;
    local[0] = 4;
    CHECK_OK(gs_get_stack_info(&before));
    dist = room_below() + 4096 + 512;
    __asm__ volatile(
        ".arch_extension sve\n\t"
        "cntd %[n]\n\t"
        "dup z10.d, %[p]\n\t"
        "mov x9, sp\n\t"
        "sub x9, x9, %[d]\n\t"
        "str xzr, [x9]\n\t" /* faults in the guard region: the stack grows */
        "ptrue p0.d\n\t"
        "st1d {z10.d}, p0, [%[out]]\n\t"
        : [n] "=&r"(lanes)
        : [p] "r"((uintptr_t)&local[0]), [d] "r"(dist), [out] "r"(z)
        : "x9", "v10", "p0", "memory");
    CHECK_OK(gs_get_stack_info(&after));
    CHECK(after.lo != before.lo);
    CHECK(lanes >= 2 && lanes <= 32);
    for (uint64_t i = 0; i < lanes; i++) check_moved("a lane of z10", z[i], (uintptr_t)&local[0], &before, &after);
    CHECK_EQ(local[0], 4);
    printf("ok: all %u lanes of z10 (SVE, %u-bit vectors) were moved with the stack\n", (unsigned)lanes,
           (unsigned)lanes * 64);
}

static void run_neon(void *arg) {
    (void)arg;
    neon_case();
    printf("ok: x19 and both lanes of v9 were moved with the stack\n");
}

static void run_sve(void *arg) {
    (void)arg;
    sve_case();
}
#endif

#if defined(__x86_64__)
static void run_avx2(void *arg) {
    (void)arg;
    avx2_case();
    printf("ok: r12, xmm9 and ymm10's upper half were moved with the stack\n");
}

static void run_avx512(void *arg) {
    (void)arg;
    avx512_case();
    printf("ok: zmm11's upper half and zmm20 were moved with the stack\n");
}
#endif

int main(void) {
    gs_attr a;
    gs_test_begin(60);
#if defined(__x86_64__)
    __builtin_cpu_init();
#endif
    CHECK_OK(gs_attr_init(&a));
    a.stack_size = 8192;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) CHECK_ID(gs_spawn_with(&a, run_avx2, NULL));
    else printf("skip: no AVX2 on this CPU\n");
    if (__builtin_cpu_supports("avx512f")) CHECK_ID(gs_spawn_with(&a, run_avx512, NULL));
    else printf("skip: no AVX-512 on this CPU\n");
#elif defined(__aarch64__)
    CHECK_ID(gs_spawn_with(&a, run_neon, NULL));
    if (getauxval(AT_HWCAP) & HWCAP_SVE) CHECK_ID(gs_spawn_with(&a, run_sve, NULL));
    else printf("skip: no SVE on this CPU\n");
#endif
    CHECK_OK(gs_run());
    return 0;
}
