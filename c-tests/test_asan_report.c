/*
 * test_asan_report: built with -fsanitize=address (.ci/asan.sh), a stack buffer overflow inside a
 * goroutine is reported by AddressSanitizer with the goroutine's frames (issue #14): the library
 * announces every switch to ASan (src/sched/sanitizer.rs). And with detect_stack_use_after_return
 * (.ci/asan.sh sets it), a read through a pointer to a returned function's local is reported as
 * stack-use-after-return after the goroutine's stack moved in between (8 KiB stack, ~300 KiB of
 * recursion: the fake stack outlives the moves). Built without ASan it has nothing to check and
 * says so.
 */
#include "gs_test.h"

#if defined(__SANITIZE_ADDRESS__)
static GS_TEST_NOINLINE void overflow_here(volatile int n) {
    char buf[16];
    memset(buf, 'x', (size_t)n); /* n = 32: 16 bytes past the end */
    printf("%c\n", buf[0]);
}

static void goroutine_body(void *arg) {
    (void)arg;
    gs_yield();
    overflow_here(32);
    printf("not reached\n"); /* keeps this frame on the stack (no tail call) */
}

static void overflow_in_goroutine(void *arg) {
    (void)arg;
    CHECK_ID(gs_spawn(goroutine_body, NULL));
    gs_run();
}

static GS_TEST_NOINLINE volatile int *dangling(void) {
    volatile int local = 7;
    volatile int *volatile p = &local;
    return p; /* the frame is gone when the caller reads it */
}

static GS_TEST_NOINLINE int deep(int n) {
    volatile char pad[1024];
    pad[0] = (char)n;
    return n == 0 ? pad[0] : deep(n - 1) + pad[0];
}

static void uar_body(void *arg) {
    volatile int *p = dangling();
    gs_stack_info si;
    (void)arg;
    (void)deep(300); /* the 8 KiB stack moves (grows) several times */
    CHECK_OK(gs_get_stack_info(&si));
    CHECK(si.grows > 0);
    printf("%d\n", *p);
}

static void uar_after_move(void *arg) {
    gs_attr a;
    (void)arg;
    CHECK_OK(gs_attr_init(&a));
    a.stack_size = 8192;
    CHECK_ID(gs_spawn_with(&a, uar_body, NULL));
    gs_run();
}

static void clean_switches(void *arg) {
    (void)arg;
    for (int i = 0; i < 1000; i++) CHECK_OK(gs_yield());
}

int main(void) {
    gs_test_child c;
    gs_test_begin(60);
    /* Switching alone reports nothing. */
    for (int i = 0; i < 10; i++) CHECK_ID(gs_spawn(clean_switches, NULL));
    CHECK_OK(gs_run());
    gs_test_child_run(overflow_in_goroutine, NULL, 30, &c);
    gs_test_current_child = &c;
    CHECK(!(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0));
    CHECK(gs_test_contains(c.err, "ERROR: AddressSanitizer: stack-buffer-overflow"));
    CHECK(gs_test_contains(c.err, "overflow_here"));
    CHECK(gs_test_contains(c.err, "goroutine_body"));
    gs_test_current_child = NULL;
    free(c.err);
    printf("ok: ASan reports a stack buffer overflow in a goroutine, with its frames\n");
    gs_test_child_run(uar_after_move, NULL, 30, &c);
    gs_test_current_child = &c;
    CHECK(!(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0));
    CHECK(gs_test_contains(c.err, "ERROR: AddressSanitizer: stack-use-after-return"));
    CHECK(gs_test_contains(c.err, "uar_body"));
    gs_test_current_child = NULL;
    free(c.err);
    printf("ok: ASan reports a use after return across stack moves\n");
    return 0;
}
#else
int main(void) {
    printf("test_asan_report: not built with -fsanitize=address; nothing to check (.ci/asan.sh runs it)\n");
    return 0;
}
#endif
