/*
 * test_stack_bigframe: frames larger than the guard region (issue #20 items 3 and 4).
 *  - A 400 KB variable-length array in code built without -fstack-clash-protection (gcc 12's
 *    default here) jumps over the 64 KiB guard below the 256 KiB window. Where it lands in
 *    unmapped memory the runtime now says so, Go-style, naming the goroutine, instead of a bare
 *    SIGSEGV (in a child; where it lands in a neighbouring stack nothing faults: documented).
 *  - With -fstack-clash-protection (these functions only) the probes walk into the guard and the
 *    stack grows: VLAs of 0.4, 1.2 and 3 MB (probed page by page) and a fixed 8 MB frame (whose
 *    probe loop's end register the growth recognises and moves).
 */
#include "gs_test.h"

static GS_TEST_NOINLINE int unprobed(size_t n) {
    volatile char buf[n];
    buf[0] = 1;
    buf[n - 1] = 2;
    return buf[0] + buf[n - 1];
}

__attribute__((optimize("stack-clash-protection"))) static GS_TEST_NOINLINE int probed(size_t n) {
    volatile char buf[n];
    buf[0] = 1;
    buf[n - 1] = 2;
    return buf[0] + buf[n - 1];
}

/* A fixed 8 MB frame: gcc's probe loop keeps the frame's end in a register (r11), which now
 * moves with the stack however far below the guard it lies (before: it stayed stale, the loop
 * probed on through every growth and died at the 1 GiB limit with "stack overflow"). */
__attribute__((optimize("stack-clash-protection"))) static GS_TEST_NOINLINE int probed_fixed(void) {
    volatile char buf[8000000];
    buf[0] = 1;
    buf[sizeof buf - 1] = 2;
    return buf[0] + buf[sizeof buf - 1];
}

static void big_unprobed(void *arg) {
    (void)arg;
    printf("%d\n", unprobed(400000));
}

static void child(void *arg) {
    gs_attr a;
    (void)arg;
    CHECK_OK(gs_attr_init(&a));
    a.name = "jumper";
    CHECK_ID(gs_spawn_with(&a, big_unprobed, NULL));
    gs_run();
}

static void big_probed(void *arg) {
    (void)arg;
    CHECK_EQ(probed(400000), 3);
    CHECK_EQ(probed(1200000), 3);
    CHECK_EQ(probed(3000000), 3);
    CHECK_EQ(probed_fixed(), 3);
}

int main(void) {
    gs_test_child c;
    gs_test_begin(60);
    gs_test_child_run(child, NULL, 30, &c);
    gs_test_current_child = &c;
    CHECK(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT);
    CHECK(gs_test_contains(c.err, "past the 65536-byte guard region"));
    CHECK(gs_test_contains(c.err, "fatal error: stack frame larger than the guard region"));
    CHECK(gs_test_contains(c.err, "jumper"));
    gs_test_current_child = NULL;
    free(c.err);
    printf("ok: a frame that jumps over the guard is reported, not a bare SIGSEGV\n");
    CHECK_ID(gs_spawn(big_probed, NULL));
    CHECK_OK(gs_run());
    printf("ok: probed frames of 0.4, 1.2 and 3 MB and a fixed 8 MB frame grow the stack\n");
    return 0;
}
