/*
 * test_stack_grow_setjmp: setjmp before a growth and longjmp after it. glibc mangles the saved
 * rsp/rbp/pc in a jmp_buf (PTR_MANGLE); the copier demangles, moves and re-mangles them. A goroutine
 * on an 8 KiB stack calls setjmp with the jmp_buf in its own frame, recurses ~1 MiB deep (7+ grows),
 * and longjmps from the bottom; the frame's volatile locals and a pointer to a local must be intact
 * after the jump. Repeated for a jmp_buf three frames up, and with sigsetjmp/siglongjmp.
 */
#include "gs_test.h"

#include <setjmp.h>

static GS_TEST_NOINLINE int down(jmp_buf *jb, int depth, int value) {
    volatile char pad[1024];
    pad[0] = (char)depth;
    if (depth <= 0) longjmp(*jb, value);
    if (depth > 100000) return 0; /* never: keeps gcc from calling this infinite recursion */
    return down(jb, depth - 1, value) + pad[0];
}

static GS_TEST_NOINLINE void with_jmpbuf(int levels) {
    jmp_buf jb;
    volatile int marker = 0x5eed;
    volatile char local[64];
    volatile char *volatile p = local;
    gs_stack_info before, after;
    int rc;
    local[0] = 'x';
    CHECK_OK(gs_get_stack_info(&before));
    rc = setjmp(jb);
    if (rc == 0) {
        (void)down(&jb, 1000 + levels, 77);
        CHECK(!"longjmp did not happen");
    }
    CHECK_EQ(rc, 77);
    CHECK_EQ(marker, 0x5eed);
    CHECK(p == local); /* the pointer moved with the stack */
    CHECK_EQ(p[0], 'x');
    CHECK_OK(gs_get_stack_info(&after));
    CHECK(after.grows > before.grows);
    CHECK(after.size >= 1 << 20);
    CHECK(after.lo != before.lo);
}

static GS_TEST_NOINLINE void levels_up(int n) {
    volatile char pad[200];
    pad[0] = 1;
    if (n > 0) levels_up(n - 1);
    else with_jmpbuf(n);
    CHECK_EQ(pad[0], 1);
}

static GS_TEST_NOINLINE int sigdown(sigjmp_buf *jb, int depth) {
    volatile char pad[1024];
    pad[0] = (char)depth;
    if (depth <= 0) siglongjmp(*jb, 5);
    if (depth > 100000) return 0;
    return sigdown(jb, depth - 1) + pad[0];
}

static void body(void *arg) {
    sigjmp_buf sjb;
    volatile int count = 0;
    gs_stack_info si;
    switch ((int)(intptr_t)arg) {
    case 0:
        with_jmpbuf(0);
        break;
    case 1:
        levels_up(3);
        break;
    default:
        if (sigsetjmp(sjb, 1) == 0) {
            count++;
            (void)sigdown(&sjb, 4000);
        }
        CHECK_EQ(count, 1);
        CHECK_OK(gs_get_stack_info(&si));
        CHECK(si.grows >= 9);
    }
    printf("ok: case %d: setjmp before growth, longjmp after, in goroutine %" PRId64 "\n",
           (int)(intptr_t)arg, gs_self());
}

int main(void) {
    gs_attr a;
    gs_test_begin(60);
    CHECK_OK(gs_attr_init(&a));
    a.stack_size = 8192;
    for (intptr_t i = 0; i < 3; i++) CHECK_ID(gs_spawn_with(&a, body, (void *)i));
    CHECK_OK(gs_run());
    return 0;
}
