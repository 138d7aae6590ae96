/* gs_select: fairness among ready cases, default (timeout 0), timeouts, blocking selects woken
 * by senders and receivers, closed channels, NULL channels, more cases than the inline buffers,
 * concurrent selects over overlapping channels (lock order, one winner per select). */
#include "gs_test.h"

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* ---- fairness: 4 always-ready cases, 40,000 selects ---------------------------------------- */
static void fairness(void) {
    enum { K = 4, N = 40000 };
    gs_chan *ch[K];
    gs_case cs[K];
    long count[K] = {0};
    for (int i = 0; i < K; i++) {
        CHECK((ch[i] = gs_chan_new(0, N)) != NULL); /* chan struct{}: only counts */
        for (int j = 0; j < N; j++) CHECK_OK(gs_chan_try_send(ch[i], NULL));
        cs[i] = (gs_case){ch[i], GS_CASE_RECV, NULL, 99};
    }
    for (int n = 0; n < N; n++) {
        int i = gs_select(cs, K, 0);
        CHECK(i >= 0 && i < K);
        CHECK_OK(cs[i].status);
        count[i]++;
    }
    /* Expected 10,000 each, standard deviation ~87: +-1,500 is > 17 sigma (cannot flake) but
     * catches any order bias (always-first would give 40,000/0/0/0). */
    for (int i = 0; i < K; i++) {
        printf("fairness: case %d chosen %ld times\n", i, count[i]);
        CHECK(count[i] > N / K - 1500 && count[i] < N / K + 1500);
        CHECK_EQ(gs_chan_len(ch[i]), N - count[i]);
        CHECK_OK(gs_chan_free(ch[i]));
    }
}

/* ---- default, timeouts, NULL channels, bad input ------------------------------------------- */
static void non_blocking(void) {
    gs_chan *a = gs_chan_new(sizeof(int), 1), *b = gs_chan_new(sizeof(int), 0);
    int v = 0, w = 7;
    gs_case cs[3] = {{a, GS_CASE_RECV, &v, 99}, {b, GS_CASE_RECV, &v, 99}, {NULL, GS_CASE_SEND, &w, 99}};
    CHECK_RC(gs_select(cs, 3, 0), GS_EAGAIN);
    CHECK_EQ(cs[0].status, 99);
    int64_t t0 = now_ns();
    CHECK_RC(gs_select(cs, 3, 5 * 1000 * 1000), GS_ETIMEDOUT);
    CHECK(now_ns() - t0 >= 5 * 1000 * 1000);
    /* A send case fires when there is buffer room. */
    gs_case snd[2] = {{a, GS_CASE_SEND, &w, 99}, {b, GS_CASE_SEND, &w, 99}};
    CHECK_EQ(gs_select(snd, 2, 0), 0);
    CHECK_OK(snd[0].status);
    CHECK_EQ(snd[1].status, 99);
    CHECK_EQ(gs_select(cs, 3, -1), 0);
    CHECK_EQ(v, 7);
    /* The same channel twice. */
    gs_case twice[2] = {{a, GS_CASE_RECV, &v, 99}, {a, GS_CASE_SEND, &w, 99}};
    CHECK_EQ(gs_select(twice, 2, 0), 1);
    CHECK_EQ(gs_select(twice, 2, 0), 0);
    /* NULL channels only, and no cases at all. */
    gs_case nil[2] = {{NULL, GS_CASE_RECV, &v, 99}, {NULL, GS_CASE_SEND, &w, 99}};
    CHECK_RC(gs_select(nil, 2, 0), GS_EAGAIN);
    CHECK_RC(gs_select(nil, 2, -1), GS_EDEADLOCK);
    CHECK_RC(gs_select(NULL, 0, -1), GS_EDEADLOCK);
    CHECK_RC(gs_select(NULL, 0, 0), GS_EAGAIN);
    t0 = now_ns();
    CHECK_RC(gs_select(nil, 2, 1000 * 1000), GS_ETIMEDOUT);
    CHECK(now_ns() - t0 >= 1000 * 1000);
    /* Bad input. */
    gs_case bad[1] = {{a, 5, &v, 99}};
    CHECK_RC(gs_select(bad, 1, 0), GS_EINVAL);
    gs_case nul[1] = {{b, GS_CASE_SEND, NULL, 99}};
    CHECK_RC(gs_select(nul, 1, 0), GS_EINVAL);
    CHECK_RC(gs_select(cs, 3, -2), GS_EINVAL);
    CHECK_RC(gs_select(NULL, 2, 0), GS_EINVAL);
    /* Closed channels: a receive fires with GS_ECLOSED once drained, so does a send. */
    CHECK_OK(gs_chan_close(b));
    v = 55;
    gs_case cl[2] = {{a, GS_CASE_RECV, &v, 99}, {b, GS_CASE_RECV, &v, 99}};
    CHECK_EQ(gs_select(cl, 2, -1), 1);
    CHECK_RC(cl[1].status, GS_ECLOSED);
    CHECK_EQ(v, 55);
    gs_case cls[1] = {{b, GS_CASE_SEND, &w, 99}};
    CHECK_EQ(gs_select(cls, 1, -1), 0);
    CHECK_RC(cls[0].status, GS_ECLOSED);
    CHECK_OK(gs_chan_free(a));
    CHECK_OK(gs_chan_free(b));
}

/* ---- more cases than fit inline (heap path) ------------------------------------------------ */
static void many_cases(void) {
    enum { K = 20 };
    gs_chan *ch[K];
    gs_case cs[K];
    long out = -1;
    for (int i = 0; i < K; i++) {
        CHECK((ch[i] = gs_chan_new(sizeof(long), 1)) != NULL);
        cs[i] = (gs_case){ch[i], GS_CASE_RECV, &out, 99};
    }
    long v = 13;
    CHECK_OK(gs_chan_send(ch[17], &v));
    CHECK_EQ(gs_select(cs, K, -1), 17);
    CHECK_EQ(out, 13);
    CHECK_RC(gs_select(cs, K, 1000), GS_ETIMEDOUT);
    for (int i = 0; i < K; i++) CHECK_OK(gs_chan_free(ch[i]));
}

/* ---- blocking selects woken by other goroutines -------------------------------------------- */
static gs_chan *x, *y, *quit;

static void select_receiver(void *arg) {
    (void)arg;
    long got_x = 0, got_y = 0, v = 0;
    for (;;) {
        gs_case cs[3] = {{x, GS_CASE_RECV, &v, 99}, {y, GS_CASE_RECV, &v, 99}, {quit, GS_CASE_RECV, NULL, 99}};
        int i = gs_select(cs, 3, -1);
        CHECK(i >= 0);
        CHECK_OK(cs[i].status);
        if (i == 2) break;
        if (i == 0) {
            CHECK_EQ(v, got_x);
            got_x++;
        } else {
            CHECK_EQ(v, 1000 + got_y);
            got_y++;
        }
    }
    CHECK_EQ(got_x, 500);
    CHECK_EQ(got_y, 500);
}

static void select_sender(void *arg) {
    (void)arg;
    long nx = 0, ny = 0;
    while (nx < 500 || ny < 500) {
        long vx = nx, vy = 1000 + ny;
        gs_case cs[2] = {{nx < 500 ? x : NULL, GS_CASE_SEND, &vx, 99}, {ny < 500 ? y : NULL, GS_CASE_SEND, &vy, 99}};
        int i = gs_select(cs, 2, -1);
        CHECK(i == 0 || i == 1);
        CHECK_OK(cs[i].status);
        if (i == 0) nx++;
        else ny++;
    }
    CHECK_OK(gs_chan_send(quit, NULL));
}

/* A select blocked with a timeout, completed just before the deadline by a sender. The closer
 * waits for `timed_out` before closing (a sleep instead made the test fail on a loaded machine:
 * the selecting goroutine's thread was descheduled past the sleep and found the channel closed). */
static gs_chan *late, *timed_out;
static void timed_select(void *arg) {
    (void)arg;
    long v = 0;
    gs_case cs[1] = {{late, GS_CASE_RECV, &v, 99}};
    CHECK_EQ(gs_select(cs, 1, 10LL * 1000 * 1000 * 1000), 0);
    CHECK_EQ(v, 31);
    int64_t t0 = now_ns();
    CHECK_RC(gs_select(cs, 1, 3 * 1000 * 1000), GS_ETIMEDOUT);
    CHECK(now_ns() - t0 >= 3 * 1000 * 1000);
    CHECK_OK(gs_chan_close(timed_out));
    /* Closing wakes a blocked select with GS_ECLOSED on that case. */
    CHECK_EQ(gs_select(cs, 1, -1), 0);
    CHECK_RC(cs[0].status, GS_ECLOSED);
}
static void late_sender(void *arg) {
    (void)arg;
    long v = 31;
    CHECK_OK(gs_sleep(2 * 1000 * 1000));
    CHECK_OK(gs_chan_send(late, &v));
    CHECK_RC(gs_chan_recv(timed_out, NULL), GS_ECLOSED);
    CHECK_OK(gs_sleep(2 * 1000 * 1000)); /* usually lets the select block first */
    CHECK_OK(gs_chan_close(late));
}

/* ---- concurrent selects over overlapping channels ------------------------------------------ */
enum { SENDERS = 8, RECEIVERS = 8, EACH = 2000 };
static gs_chan *p, *q;
static gs_waitgroup *senders_wg;
static long received[SENDERS * EACH];
static long total_received;

static void ov_sender(void *arg) {
    long id = (long)arg;
    for (long j = 0; j < EACH; j++) {
        long v = id * EACH + j;
        /* Half of them list q first: the lock order must not depend on the case order. */
        gs_case cs[2] = {{id % 2 ? q : p, GS_CASE_SEND, &v, 99}, {id % 2 ? p : q, GS_CASE_SEND, &v, 99}};
        int i = gs_select(cs, 2, -1);
        CHECK(i == 0 || i == 1);
        CHECK_OK(cs[i].status);
    }
    CHECK_OK(gs_waitgroup_done(senders_wg));
}
static void ov_receiver(void *arg) {
    long id = (long)arg;
    /* Go's idiom: a closed channel's case becomes a nil (NULL) channel, ignored by select; stop
     * only when both are closed and drained (q is buffered: it can still hold values after p
     * reported closed). */
    gs_chan *a = id % 2 ? p : q, *b = id % 2 ? q : p;
    while (a != NULL || b != NULL) {
        long v = -1;
        gs_case cs[2] = {{a, GS_CASE_RECV, &v, 99}, {b, GS_CASE_RECV, &v, 99}};
        int i = gs_select(cs, 2, -1);
        CHECK(i == 0 || i == 1);
        if (cs[i].status == GS_ECLOSED) {
            if (i == 0) a = NULL;
            else b = NULL;
            continue;
        }
        CHECK_OK(cs[i].status);
        CHECK(v >= 0 && v < SENDERS * EACH);
        __atomic_fetch_add(&received[v], 1, __ATOMIC_RELAXED); /* several Ps: atomics */
        __atomic_fetch_add(&total_received, 1, __ATOMIC_RELAXED);
    }
}
static void ov_closer(void *arg) {
    (void)arg;
    CHECK_OK(gs_waitgroup_wait(senders_wg));
    CHECK_OK(gs_chan_close(p));
    CHECK_OK(gs_chan_close(q));
}

int main(void) {
    gs_test_begin(60);
    fairness();
    non_blocking();
    many_cases();

    CHECK((x = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK((y = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK((quit = gs_chan_new(0, 0)) != NULL);
    CHECK((late = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK((timed_out = gs_chan_new(0, 0)) != NULL);
    CHECK_ID(gs_spawn(select_receiver, NULL));
    CHECK_ID(gs_spawn(select_sender, NULL));
    CHECK_ID(gs_spawn(timed_select, NULL));
    CHECK_ID(gs_spawn(late_sender, NULL));
    CHECK_OK(gs_run());

    CHECK((p = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK((q = gs_chan_new(sizeof(long), 3)) != NULL);
    CHECK((senders_wg = gs_waitgroup_new()) != NULL);
    CHECK_OK(gs_waitgroup_add(senders_wg, SENDERS));
    for (long i = 0; i < RECEIVERS; i++) CHECK_ID(gs_spawn(ov_receiver, (void *)i));
    for (long i = 0; i < SENDERS; i++) CHECK_ID(gs_spawn(ov_sender, (void *)i));
    CHECK_ID(gs_spawn(ov_closer, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(total_received, SENDERS * EACH);
    for (long i = 0; i < SENDERS * EACH; i++) CHECK_EQ(received[i], 1);

    CHECK_OK(gs_chan_free(x));
    CHECK_OK(gs_chan_free(y));
    CHECK_OK(gs_chan_free(quit));
    CHECK_OK(gs_chan_free(late));
    CHECK_OK(gs_chan_free(timed_out));
    CHECK_OK(gs_chan_free(p));
    CHECK_OK(gs_chan_free(q));
    CHECK_OK(gs_waitgroup_free(senders_wg));
    printf("test_select: ok\n");
    return 0;
}
