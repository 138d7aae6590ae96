/*
 * test_stack_grow_sigframe: a signal whose frame does not fit on a small goroutine stack. A
 * SIGUSR1 handler is installed from inside a goroutine WITHOUT SA_ONSTACK (after the runtime has
 * added SA_ONSTACK to the handlers it found, as a host library might), and the goroutine raises
 * SIGUSR1 with less than 1.5 KiB of its 8 KiB stack left. The kernel cannot push the ~3-4 KiB
 * signal frame below the stack (it would land in the guard region), so it raises SIGSEGV with
 * si_code SI_KERNEL and si_addr 0 instead; the runtime's handler (on the sigaltstack) recognises
 * rsp at the low end of the goroutine's stack and grows it. The goroutine must survive with a
 * larger stack; SIGUSR1 itself is lost in that case (documented in the README). Kernels that
 * fault the frame in instead (this 6.18 kernel reports SEGV_MAPERR at the frame's address for a
 * MADV_GUARD_INSTALL guard, then delivers the signal) take the ordinary guard-fault path. Margins
 * of 1-3 KiB are tried, one goroutine each; every goroutine must survive, the tight ones must
 * have grown, and the program must finish (raising again on the grown stack works).
 */
#include "gs_test.h"

static volatile sig_atomic_t delivered;

static void on_usr1(int sig) {
    (void)sig;
    delivered++;
}

/* No gs_* call on the way down: entry points secure 4 KiB of stack first, which would grow the
 * stack before it is nearly full. */
static GS_TEST_NOINLINE int burn_until(uintptr_t lo, size_t left) {
    volatile char pad[256];
    pad[0] = 1;
    if ((uintptr_t)__builtin_frame_address(0) - lo > left) return burn_until(lo, left) + pad[0] - 1;
    raise(SIGUSR1);
    return 0;
}

static int grown;

static void body(void *arg) {
    struct sigaction sa;
    gs_stack_info si;
    size_t left = (size_t)(uintptr_t)arg;
    int first;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_ONSTACK: the frame goes on the goroutine stack */
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    CHECK_OK(gs_get_stack_info(&si));
    CHECK_EQ(si.grows, 0);
    first = delivered;
    CHECK_OK(burn_until(si.lo, left));
    CHECK_OK(gs_get_stack_info(&si));
    if (si.grows >= 1) grown++;
    first = delivered - first;
    raise(SIGUSR1); /* plenty of room now */
    printf("ok: %zu bytes left when raising: stack %zu bytes (%" PRIu64 " grows), first SIGUSR1 %s\n", left,
           si.size, si.grows, first ? "delivered" : "lost (SI_KERNEL fault)");
}

int main(void) {
    gs_attr a;
    int before;
    gs_test_begin(60);
    CHECK_OK(gs_attr_init(&a));
    a.stack_size = 8192;
    for (uintptr_t left = 1024; left <= 3072; left += 512) CHECK_ID(gs_spawn_with(&a, body, (void *)left));
    CHECK_OK(gs_run());
    CHECK(grown >= 3); /* the smaller margins cannot hold raise() plus a signal frame */
    before = delivered;
    raise(SIGUSR1);
    CHECK_EQ(delivered, before + 1);
    return 0;
}
