/*
 * test_chan_stack_edge: blocking channel operations started with little stack left. A goroutine
 * on the smallest growable stack eats its stack (alloca, untouched) until only `room` bytes are
 * left above the guard, then blocks in gs_chan_recv / gs_chan_send, for every room from 64 bytes
 * to 6 KiB in 40-byte steps. The runtime must secure its stack before it queues the waiter: a
 * guard fault after that would move the stack while the channel's queue still points at the
 * waiter and the element buffer in the old one (the value would land in freed memory and the
 * receiver would see garbage, or the waker would corrupt whatever reuses that memory).
 */
#include "gs_test.h"

#include <alloca.h>

enum { ROOM_MIN = 64, ROOM_MAX = 6144, ROOM_STEP = 40 };

static gs_chan *ch;

static GS_TEST_NOINLINE uintptr_t room_below(void) {
    gs_stack_info si;
    CHECK_OK(gs_get_stack_info(&si));
    return (uintptr_t)__builtin_frame_address(0) - si.lo;
}

static gs_waitgroup *wg;

struct job {
    size_t room;
    int send; /* 1: the edge goroutine sends, else it receives */
    uint64_t value;
};

static GS_TEST_NOINLINE void at_edge(struct job *j) {
    uint64_t v = 0;
    if (j->send) {
        v = j->value;
        CHECK_OK(gs_chan_send(ch, &v));
    } else {
        CHECK_OK(gs_chan_recv(ch, &v));
        CHECK_EQ(v, j->value);
    }
}

static void edge(void *arg) {
    struct job *j = arg;
    uintptr_t have = room_below();
    size_t eat = have > j->room + 256 ? have - j->room - 256 : 0;
    volatile char *p = alloca(eat + 1);
    __asm__ volatile("" : : "r"(p) : "memory");
    at_edge(j);
    CHECK_OK(gs_waitgroup_done(wg));
}

static void partner(void *arg) {
    struct job *j = arg;
    uint64_t v;
    if (j->send) {
        CHECK_OK(gs_chan_recv(ch, &v));
        CHECK_EQ(v, j->value);
    } else {
        v = j->value;
        CHECK_OK(gs_chan_send(ch, &v));
    }
    CHECK_OK(gs_waitgroup_done(wg));
}

static void driver(void *arg) {
    (void)arg;
    gs_attr a;
    CHECK_OK(gs_attr_init(&a));
    a.stack_size = GS_STACK_MIN;
    static struct job jobs[2 * ((ROOM_MAX - ROOM_MIN) / ROOM_STEP + 1)];
    size_t n = 0;
    for (size_t room = ROOM_MIN; room <= ROOM_MAX; room += ROOM_STEP) {
        for (int send = 0; send < 2; send++) {
            struct job *j = &jobs[n++];
            j->room = room;
            j->send = send;
            j->value = 0x5eed0000u + n;
            CHECK_OK(gs_waitgroup_add(wg, 2));
            /* The edge goroutine runs first and blocks; the partner completes it. */
            CHECK_ID(gs_spawn_with(&a, edge, j));
            CHECK_OK(gs_yield());
            CHECK_ID(gs_spawn(partner, j));
            CHECK_OK(gs_waitgroup_wait(wg));
        }
    }
}

int main(void) {
    ch = gs_chan_new(sizeof(uint64_t), 0);
    CHECK(ch != NULL);
    wg = gs_waitgroup_new();
    CHECK(wg != NULL);
    CHECK_ID(gs_spawn(driver, NULL));
    CHECK_OK(gs_run());
    /* The small rooms must have made the runtime grow the edge goroutines' stacks. */
    gs_stats st;
    CHECK_OK(gs_get_stats(&st));
    CHECK(st.stack_grows >= 50);
    CHECK_OK(gs_chan_free(ch));
    CHECK_OK(gs_waitgroup_free(wg));
    return 0;
}
