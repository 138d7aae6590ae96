/* Timeouts racing wake-ups: receivers wait with very short timeouts (plain recv_timeout and
 * selects) while senders deliver; exactly one of "the value arrived" and "the timer fired" wins
 * each wait, so every value is received exactly once and a timed-out receive never loses one. */
#include "gs_test.h"

enum { SENDERS = 5, RECEIVERS = 20, EACH = 4000, TOTAL = SENDERS * EACH };
static gs_chan *a, *b;
static gs_waitgroup *senders;
static int seen[TOTAL];
static long timeouts, received;

static void sender(void *arg) {
    long id = (long)arg;
    for (long j = 0; j < EACH; j++) {
        long v = id * EACH + j;
        CHECK_OK(gs_chan_send((j & 1) ? a : b, &v));
        if (j % 50 == 0) CHECK_OK(gs_sleep(20 * 1000)); /* let receivers time out meanwhile */
    }
    CHECK_OK(gs_waitgroup_done(senders));
}

static void receiver(void *arg) {
    long id = (long)arg;
    int open_a = 1, open_b = 1;
    unsigned r = (unsigned)id * 2654435761u;
    while (open_a || open_b) {
        long v = -1;
        int rc;
        r = r * 1103515245u + 12345u;
        int64_t t = (int64_t)(r >> 16) % 30000; /* 0..30 us */
        if (id % 2 == 0 && open_a) {
            rc = gs_chan_recv_timeout(a, &v, t);
            if (rc == GS_ECLOSED) {
                open_a = 0;
                continue;
            }
        } else {
            gs_case cs[2] = {{open_a ? a : NULL, GS_CASE_RECV, &v, 99}, {open_b ? b : NULL, GS_CASE_RECV, &v, 99}};
            int i = gs_select(cs, 2, t == 0 ? 1 : t);
            if (i >= 0 && cs[i].status == GS_ECLOSED) {
                if (i == 0) open_a = 0;
                else open_b = 0;
                continue;
            }
            rc = i >= 0 ? GS_OK : i;
        }
        if (rc == GS_ETIMEDOUT) {
            CHECK_EQ(v, -1);
            __atomic_fetch_add(&timeouts, 1, __ATOMIC_RELAXED);
            continue;
        }
        CHECK_OK(rc);
        CHECK(v >= 0 && v < TOTAL);
        CHECK_EQ(__atomic_fetch_add(&seen[v], 1, __ATOMIC_RELAXED), 0);
        __atomic_fetch_add(&received, 1, __ATOMIC_RELAXED);
    }
}

static void closer(void *arg) {
    (void)arg;
    CHECK_OK(gs_waitgroup_wait(senders));
    CHECK_OK(gs_chan_close(a));
    CHECK_OK(gs_chan_close(b));
}

int main(void) {
    gs_test_begin(100);
    CHECK((a = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK((b = gs_chan_new(sizeof(long), 2)) != NULL);
    CHECK((senders = gs_waitgroup_new()) != NULL);
    CHECK_OK(gs_waitgroup_add(senders, SENDERS));
    for (long i = 0; i < RECEIVERS; i++) CHECK_ID(gs_spawn(receiver, (void *)i));
    for (long i = 0; i < SENDERS; i++) CHECK_ID(gs_spawn(sender, (void *)i));
    CHECK_ID(gs_spawn(closer, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(received, TOTAL);
    for (long i = 0; i < TOTAL; i++) CHECK_EQ(seen[i], 1);
    printf("timeout race: %d values each received once, %ld timeouts\n", TOTAL, timeouts);
    CHECK(timeouts > 0);
    CHECK_OK(gs_chan_free(a));
    CHECK_OK(gs_chan_free(b));
    CHECK_OK(gs_waitgroup_free(senders));
    return 0;
}
