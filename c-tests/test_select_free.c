/* Issue 20 item 1: a channel freed by the goroutine whose operation woke a blocked gs_select must
 * not be touched by that select afterwards. The sender/closer owns the channel and frees it right
 * after its send or close (gs_chan_free says GS_OK: nobody waits on it any more); the selecting
 * goroutine, woken but not yet run, must not lock or unlink anything on it.
 *
 * Freed memory is scribbled (M_PERTURB), so a select that locks the freed channel sees its lock
 * byte "held" and spins for ever: the watchdog then fails the test. Under valgrind the same
 * program reports the invalid read/write directly (README, "What not to do"). Also covers a
 * timed receive whose channel is freed right after the value arrives, and a select whose other
 * case's channel is unlinked by a third goroutine and freed. */
#include "gs_test.h"

#include <malloc.h>

enum { ROUNDS = 2000 };

typedef struct {
    gs_chan *a, *b;
    int how;         /* 0: send on a, 1: close a, 2: send on b */
    int64_t selector; /* its goroutine id */
} pair;

static void freeing_sender(void *arg) {
    /* Copied first: once the send or close wakes the selector, it may run at once on another
     * thread (P > 1) and free `p` before this goroutine runs again. */
    pair *p = arg;
    gs_chan *a = p->a, *b = p->b;
    int how = p->how;
    int64_t selector = p->selector;
    int v = 42;
    if (how == 0) {
        CHECK_OK(gs_chan_send(a, &v));
        CHECK_OK(gs_chan_free(a));
    } else if (how == 1) {
        /* A close does not wait for the selector: at several Ps this goroutine can run before
         * the selector has reached gs_select, and freeing `a` then is the test's own
         * use-after-free. (A send waits for its receiver.) */
        gs_test_wait_parked(selector, "select");
        CHECK_OK(gs_chan_close(a));
        CHECK_OK(gs_chan_free(a));
    } else {
        CHECK_OK(gs_chan_send(b, &v));
        CHECK_OK(gs_chan_free(b));
    }
}

static void selector(void *arg) {
    pair *p = arg;
    int va = 0, vb = 0;
    gs_case cs[2] = {{p->a, GS_CASE_RECV, &va, 99}, {p->b, GS_CASE_RECV, &vb, 99}};
    /* Blocks (nothing ready yet), then the sender fires one case and frees that channel. */
    p->selector = gs_self();
    CHECK_ID(gs_spawn(freeing_sender, p));
    int i = gs_select(cs, 2, -1);
    if (p->how == 2) {
        CHECK_EQ(i, 1);
        CHECK_EQ(vb, 42);
        CHECK_OK(gs_chan_free(p->a)); /* the other channel is ours: nobody waits on it now */
    } else {
        CHECK_EQ(i, 0);
        CHECK_RC(cs[0].status, p->how == 0 ? GS_OK : GS_ECLOSED);
        if (p->how == 0) CHECK_EQ(va, 42);
        CHECK_OK(gs_chan_free(p->b));
    }
    free(p);
}

/* A timed receive on a buffered channel; the sender frees the channel right after its send. */
static void timed_sender(void *arg) {
    gs_chan *c = arg;
    int v = 7;
    CHECK_OK(gs_chan_send(c, &v));
    CHECK_OK(gs_chan_free(c));
}

static void timed_receiver(void *arg) {
    (void)arg;
    gs_chan *c = gs_chan_new(sizeof(int), 0);
    int v = 0;
    CHECK(c != NULL);
    CHECK_ID(gs_spawn(timed_sender, c));
    CHECK_OK(gs_chan_recv_timeout(c, &v, 10LL * 1000 * 1000 * 1000));
    CHECK_EQ(v, 7);
}

/* A select on (a, b): when a fires, the select's waiter on b is claimed but still queued; a later
 * operation on b skips and unlinks that stale waiter, and b's owner frees b. */
typedef struct {
    gs_chan *a, *b;
    gs_chan *go;
} triple;

static void fire_a(void *arg) {
    triple *t = arg;
    gs_chan *b = t->b; /* t is freed by the selector, which may run at once on another thread */
    int v = 1;
    CHECK_OK(gs_chan_send(t->a, &v));
    /* The selector is woken but may not have run yet (at P=1 it was readied behind us). Touch
     * b: its stale waiter is skipped and unlinked, so b is no longer busy; free it. */
    CHECK_RC(gs_chan_try_send(b, &v), GS_EAGAIN);
    CHECK_OK(gs_chan_free(b));
}

static void select_a_b(void *arg) {
    triple *t = arg;
    int va = 0, vb = 0;
    gs_case cs[2] = {{t->a, GS_CASE_RECV, &va, 99}, {t->b, GS_CASE_RECV, &vb, 99}};
    CHECK_ID(gs_spawn(fire_a, t));
    CHECK_EQ(gs_select(cs, 2, -1), 0);
    CHECK_EQ(va, 1);
    CHECK_OK(gs_chan_free(t->a));
    free(t);
}

static void body(void *arg) {
    (void)arg;
    for (int r = 0; r < ROUNDS; r++) {
        pair *p = malloc(sizeof *p);
        CHECK(p != NULL);
        p->a = gs_chan_new(sizeof(int), 0);
        p->b = gs_chan_new(sizeof(int), 0);
        CHECK(p->a != NULL && p->b != NULL);
        p->how = r % 3;
        CHECK_ID(gs_spawn(selector, p));
        if (r % 10 == 0) {
            CHECK_ID(gs_spawn(timed_receiver, NULL));
            triple *t = malloc(sizeof *t);
            CHECK(t != NULL);
            t->a = gs_chan_new(sizeof(int), 0);
            t->b = gs_chan_new(sizeof(int), 0);
            CHECK(t->a != NULL && t->b != NULL);
            CHECK_ID(gs_spawn(select_a_b, t));
        }
        if (r % 64 == 0) CHECK_OK(gs_yield());
    }
}

int main(void) {
    gs_test_begin(60);
    /* Freed blocks are filled with 0xa5: a lock byte read from a freed channel looks held. */
    mallopt(M_PERTURB, 0x5a);
    CHECK_OK(gs_main(body, NULL));
    CHECK_OK(gs_run());
    gs_stats st;
    CHECK_OK(gs_get_stats(&st));
    CHECK_EQ(st.goroutines_live, 0);
    printf("select_free: %d rounds, no freed channel touched\n", ROUNDS);
    return 0;
}
