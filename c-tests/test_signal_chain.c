/*
 * test_signal_chain: a SIGSEGV/SIGBUS handler that the program installed (SA_SIGINFO) before it
 * first used the library still receives its own faults after the runtime installed its handler.
 *  - before gs_run the program's handlers are in place (the runtime installs lazily);
 *  - after gs_run sigaction() shows another SIGSEGV and SIGBUS handler (the runtime's), so the
 *    faults below reach the program's handlers only by chaining;
 *  - SIGSEGV: touching a PROT_NONE page that the test mapped, from main after gs_run and from
 *    inside goroutines (GROWABLE and FIXED, before and after yields): the handler sees the exact
 *    si_addr, mprotect()s the page read-write, and the access retries and succeeds;
 *  - SIGBUS: touching a shared mapping of a memfd truncated to 0 bytes; the handler grows the
 *    file back and the access retries.
 */
#include "gs_test.h"

#include <sys/mman.h>

#define NPAGES 16

static char *pages;
static size_t pagesz;
static volatile sig_atomic_t segv_count, bus_count;
static void *volatile segv_addr;
static void *volatile bus_addr;

static char *bus_map;
static int bus_fd = -1;

static void die(const char *msg) {
    (void)!write(STDERR_FILENO, msg, strlen(msg));
    _exit(70);
}

static void on_segv(int sig, siginfo_t *si, void *uc) {
    uintptr_t a = (uintptr_t)si->si_addr, base = (uintptr_t)pages;
    (void)uc;
    if (sig != SIGSEGV) die("test handler: on_segv got another signal\n");
    if (pages == NULL || a < base || a >= base + NPAGES * pagesz)
        die("test handler: SIGSEGV outside the test's pages (not chained correctly?)\n");
    segv_count++;
    segv_addr = si->si_addr;
    if (mprotect((void *)(a & ~(uintptr_t)(pagesz - 1)), pagesz, PROT_READ | PROT_WRITE) != 0)
        die("test handler: mprotect failed\n");
}

static void on_bus(int sig, siginfo_t *si, void *uc) {
    uintptr_t a = (uintptr_t)si->si_addr, base = (uintptr_t)bus_map;
    (void)uc;
    if (sig != SIGBUS) die("test handler: on_bus got another signal\n");
    if (bus_map == NULL || a < base || a >= base + pagesz)
        die("test handler: SIGBUS outside the test's mapping\n");
    bus_count++;
    bus_addr = si->si_addr;
    if (ftruncate(bus_fd, (off_t)pagesz) != 0) die("test handler: ftruncate failed\n");
}

/* Write through a PROT_NONE page; the chained handler must make it writable. */
static GS_TEST_NOINLINE void touch_page(int page, const char *where) {
    volatile char *p = (volatile char *)pages + (size_t)page * pagesz + 123;
    int before = segv_count;
    *p = (char)(page + 1);
    if (segv_count != before + 1 || segv_addr != (void *)p)
        fprintf(stderr, "SIGSEGV from %s: count %d -> %d, si_addr %p, expected %p\n", where, before,
                (int)segv_count, segv_addr, (void *)p);
    CHECK_EQ(segv_count, before + 1);
    CHECK(segv_addr == (void *)p);
    CHECK_EQ(*p, page + 1);
}

/* Read a shared file mapping past the end of the file; the chained handler grows the file. */
static GS_TEST_NOINLINE void touch_bus(const char *where) {
    volatile char *p = (volatile char *)bus_map + 77;
    int before = bus_count;
    char v;
    CHECK(ftruncate(bus_fd, 0) == 0);
    v = *p;
    if (bus_count != before + 1 || bus_addr != (void *)p)
        fprintf(stderr, "SIGBUS from %s: count %d -> %d, si_addr %p, expected %p\n", where, before,
                (int)bus_count, bus_addr, (void *)p);
    CHECK_EQ(bus_count, before + 1);
    CHECK(bus_addr == (void *)p);
    CHECK_EQ(v, 0); /* the regrown file reads as zeros */
}

static int g_done;

static void faulting_goroutine(void *p) {
    int first = (int)(intptr_t)p;
    touch_page(first, "a goroutine, first run");
    CHECK_OK(gs_yield());
    touch_page(first + 1, "a goroutine, after a yield");
    touch_bus("a goroutine");
    CHECK_OK(gs_yield());
    touch_bus("a goroutine, after a yield");
    g_done++;
}

static void check_handler(int sig, void (*mine)(int, siginfo_t *, void *), int want_mine) {
    struct sigaction cur;
    int is_mine;
    CHECK(sigaction(sig, NULL, &cur) == 0);
    is_mine = (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == mine;
    if (is_mine != want_mine)
        fprintf(stderr, "signal %d: handler %#lx flags %#x; expected %s the test's handler\n", sig,
                (unsigned long)(uintptr_t)cur.sa_sigaction, (unsigned)cur.sa_flags, want_mine ? "" : "something other than");
    CHECK_EQ(is_mine, want_mine);
}

int main(void) {
    struct sigaction sa;
    gs_attr fixed;

    gs_test_begin(100);
    pagesz = (size_t)sysconf(_SC_PAGESIZE);

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO;
    sa.sa_sigaction = on_segv;
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
    sa.sa_sigaction = on_bus;
    CHECK(sigaction(SIGBUS, &sa, NULL) == 0);

    pages = mmap(NULL, NPAGES * pagesz, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(pages != MAP_FAILED);
    bus_fd = memfd_create("gs_test_sigbus", 0);
    CHECK(bus_fd >= 0);
    CHECK(ftruncate(bus_fd, (off_t)pagesz) == 0);
    bus_map = mmap(NULL, pagesz, PROT_READ | PROT_WRITE, MAP_SHARED, bus_fd, 0);
    CHECK(bus_map != MAP_FAILED);

    /* The test's own mechanism works before the library is used... */
    touch_page(0, "main before using the library");
    touch_bus("main before using the library");
    check_handler(SIGSEGV, on_segv, 1);
    check_handler(SIGBUS, on_bus, 1);

    /* ...and spawning does not install anything yet (the runtime installs at gs_run). */
    CHECK_OK(gs_attr_init(&fixed));
    fixed.stack_kind = GS_STACK_FIXED;
    fixed.stack_size = 64 * 1024;
    CHECK_ID(gs_spawn(faulting_goroutine, (void *)(intptr_t)1));
    CHECK_ID(gs_spawn_with(&fixed, faulting_goroutine, (void *)(intptr_t)3));
    check_handler(SIGSEGV, on_segv, 1);
    check_handler(SIGBUS, on_bus, 1);

    CHECK_OK(gs_run());
    CHECK_EQ(g_done, 2);

    /* The runtime's handlers are installed now: what follows reaches ours only through them. */
    check_handler(SIGSEGV, on_segv, 0);
    check_handler(SIGBUS, on_bus, 0);
    touch_page(5, "main after gs_run");
    touch_bus("main after gs_run");

    /* A second run, with the runtime's handlers already in place from the start. */
    CHECK_ID(gs_spawn(faulting_goroutine, (void *)(intptr_t)6));
    CHECK_ID(gs_spawn_with(&fixed, faulting_goroutine, (void *)(intptr_t)8));
    CHECK_OK(gs_run());
    CHECK_EQ(g_done, 4);
    touch_page(10, "main after the second gs_run");

    CHECK_EQ(segv_count, 1 + 4 + 1 + 4 + 1);
    CHECK_EQ(bus_count, 1 + 4 + 1 + 4);
    printf("ok: %d SIGSEGV and %d SIGBUS faults chained to the program's handlers\n", (int)segv_count,
           (int)bus_count);
    return 0;
}
