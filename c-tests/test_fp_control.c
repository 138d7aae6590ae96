/*
 * test_fp_control: floating-point control state is per goroutine.
 *  - a new goroutine starts with the FP control state its spawner had at gs_spawn time (like
 *    pthread_create): main spawns one while it runs FE_TOWARDZERO + flush-to-zero, and a goroutine
 *    running FE_UPWARD spawns one;
 *  - after that, rounding mode, MXCSR control bits (rounding, FTZ, DAZ, exception masks) and the x87
 *    control word (rounding, precision) are each goroutine's own across yields: A runs FE_UPWARD +
 *    FTZ/DAZ + 24-bit x87 precision, B runs FE_DOWNWARD, both check themselves after every yield,
 *    by reading the registers and by computing (1/3 in double and long double, DBL_MIN/4);
 *  - main's state after gs_run is what it was before.
 * On aarch64 the control state is FPCR: rounding mode, flush-to-zero (FZ), default NaN (DN); the
 * "mxcsr" field holds FPCR there, "x87" stays 0, and long double is IEEE quad (in software, which
 * follows FPCR's rounding mode).
 */
#include "gs_test.h"

#include <fenv.h>
#include <float.h>

#define ROUNDS 8

#if defined(__x86_64__)
#include <xmmintrin.h>
#define MXCSR_CTRL 0xFFC0u /* DAZ, exception masks, rounding, FTZ; not the sticky flags */
#define MXCSR_DAZ 0x0040u
#define MXCSR_FTZ 0x8000u
#define X87_PC_MASK 0x0300u /* precision control: 00 = 24-bit */
#define CTL_DEFAULT 0x1F80u
#define CTL_FTZ MXCSR_FTZ
#define CTL_A_EXTRA MXCSR_DAZ
static unsigned ctl_get(void) { return _mm_getcsr() & MXCSR_CTRL; }
static void ctl_set(unsigned v) { _mm_setcsr((_mm_getcsr() & ~MXCSR_CTRL) | (v & MXCSR_CTRL)); }
#elif defined(__aarch64__)
#define CTL_DEFAULT 0u
#define CTL_FTZ (1u << 24)    /* FPCR.FZ */
#define CTL_A_EXTRA (1u << 25) /* FPCR.DN */
static unsigned ctl_get(void) {
    uint64_t v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    return (unsigned)v;
}
static void ctl_set(unsigned v) { __asm__ volatile("msr fpcr, %0" : : "r"((uint64_t)v)); }
#endif

typedef struct {
    int round;              /* fegetround() */
    unsigned mxcsr;         /* MXCSR & MXCSR_CTRL */
    unsigned x87;           /* x87 control word */
    double third;           /* 1.0 / 3.0 */
    double tiny;            /* DBL_MIN / 4 */
    long double third_ld;   /* 1.0L / 3.0L on the x87 */
} fp_state;

static volatile double one = 1.0, three = 3.0, dmin = DBL_MIN, four = 4.0;
static volatile long double one_ld = 1.0L, three_ld = 3.0L;

static unsigned x87_cw(void) {
#if defined(__x86_64__)
    uint16_t cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return cw;
#else
    return 0;
#endif
}

static void x87_set_cw(unsigned cw) {
#if defined(__x86_64__)
    uint16_t v = (uint16_t)cw;
    __asm__ volatile("fldcw %0" : : "m"(v));
#else
    (void)cw;
#endif
}

static GS_TEST_NOINLINE void fp_read(fp_state *s) {
    s->round = fegetround();
    s->mxcsr = ctl_get();
    s->x87 = x87_cw();
    s->third = one / three;
    s->tiny = dmin / four;
    s->third_ld = one_ld / three_ld;
}

static int fp_same(const fp_state *a, const fp_state *b) {
    return a->round == b->round && a->mxcsr == b->mxcsr && a->x87 == b->x87 && a->third == b->third &&
           a->tiny == b->tiny && a->third_ld == b->third_ld;
}

static void fp_print(const char *what, const fp_state *s) {
    fprintf(stderr, "  %-10s round=%#x mxcsr=%#06x x87=%#06x 1/3=%a DBL_MIN/4=%a 1/3L=%La\n", what, s->round,
            s->mxcsr, s->x87, s->third, s->tiny, s->third_ld);
}

#define CHECK_FP(what, want)                                                   \
    do {                                                                       \
        fp_state now_;                                                         \
        fp_read(&now_);                                                        \
        if (!fp_same(&now_, (want))) {                                         \
            fprintf(stderr, "%s: FP control state differs\n", (what));        \
            fp_print("have", &now_);                                           \
            fp_print("want", (want));                                          \
        }                                                                      \
        CHECK(fp_same(&now_, (want)));                                         \
    } while (0)

/* Reference states, computed by main before anything runs. */
static fp_state st_default, st_a, st_b, st_spawned;

static void set_a(void) {
    CHECK(fesetround(FE_UPWARD) == 0);
    ctl_set(ctl_get() | CTL_FTZ | CTL_A_EXTRA);
#if defined(__x86_64__)
    x87_set_cw(x87_cw() & ~X87_PC_MASK);
#endif
}

static void set_b(void) { CHECK(fesetround(FE_DOWNWARD) == 0); }

static void set_spawned(void) {
    CHECK(fesetround(FE_TOWARDZERO) == 0);
    ctl_set(ctl_get() | CTL_FTZ);
}

static void restore_default(void) {
    CHECK(fesetround(FE_TONEAREST) == 0);
    ctl_set(st_default.mxcsr);
    x87_set_cw(st_default.x87);
}

static int steps_a, steps_b, steps_c, steps_d;

static void child_of_a(void *p) {
    (void)p;
    CHECK_FP("child of A at start (inherits A's state)", &st_a);
    CHECK_OK(gs_yield());
    CHECK_FP("child of A after yield", &st_a);
    steps_d++;
}

static void goroutine_a(void *p) {
    (void)p;
    CHECK_FP("A at start", &st_default);
    set_a();
    CHECK_FP("A after setting", &st_a);
    CHECK_ID(gs_spawn(child_of_a, NULL));
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_OK(gs_yield());
        CHECK_FP("A after yield", &st_a);
        steps_a++;
    }
}

static void goroutine_b(void *p) {
    (void)p;
    CHECK_FP("B at start (A already switched modes)", &st_default);
    CHECK_OK(gs_yield());
    CHECK_FP("B after A yielded", &st_default);
    set_b();
    CHECK_FP("B after setting", &st_b);
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_OK(gs_yield());
        CHECK_FP("B after yield", &st_b);
        steps_b++;
    }
}

static void goroutine_c(void *p) {
    (void)p;
    CHECK_FP("C at start (inherits main's state at spawn)", &st_spawned);
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_OK(gs_yield());
        CHECK_FP("C after yield", &st_spawned);
        steps_c++;
    }
}

int main(void) {
    gs_test_begin(100);

    /* A fresh process runs the ABI's defaults. */
    fp_read(&st_default);
    CHECK(st_default.round == FE_TONEAREST);
    CHECK_EQ(st_default.mxcsr, CTL_DEFAULT);
#if defined(__x86_64__)
    CHECK_EQ(st_default.x87, 0x037F);
#endif
    set_a();
    fp_read(&st_a);
    restore_default();
    set_b();
    fp_read(&st_b);
    restore_default();
    set_spawned();
    fp_read(&st_spawned);
    restore_default();
    CHECK_FP("main after computing references", &st_default);

    /* The references must differ from each other, or the test could not fail. */
    CHECK(st_a.third != st_default.third && st_b.third != st_a.third);
    CHECK(st_a.tiny == 0.0 && st_default.tiny != 0.0);
    CHECK(st_a.third_ld != st_default.third_ld);
#if defined(__x86_64__)
    CHECK(st_a.x87 != st_default.x87 && st_b.x87 != st_default.x87);
#endif
    CHECK(st_a.mxcsr != st_default.mxcsr && st_spawned.mxcsr != st_a.mxcsr);

    CHECK_ID(gs_spawn(goroutine_a, NULL));
    CHECK_ID(gs_spawn(goroutine_b, NULL));
    set_spawned();
    CHECK_ID(gs_spawn(goroutine_c, NULL));
    restore_default();
    CHECK_FP("main before gs_run", &st_default);

    CHECK_OK(gs_run());
    CHECK_FP("main after gs_run", &st_default);
    CHECK_EQ(steps_a, ROUNDS);
    CHECK_EQ(steps_b, ROUNDS);
    CHECK_EQ(steps_c, ROUNDS);
    CHECK_EQ(steps_d, 1);
    #if defined(__x86_64__)
    printf("ok: rounding mode, MXCSR and x87 control word are per goroutine\n");
#else
    printf("ok: rounding mode and FPCR (FZ, DN) are per goroutine\n");
#endif
    return 0;
}
