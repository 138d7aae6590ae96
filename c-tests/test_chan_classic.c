/* Go's classic channel programs in C: the concurrent prime sieve (first 1,000 primes), a daisy
 * chain of 10,000 goroutines each adding one, a ring of 10,000 goroutines passing a token
 * 1,000,000 times (100,000 under valgrind), and fan-out/fan-in with many producers and consumers (every message delivered
 * exactly once). Only Go's guarantees are assumed, so the outcomes hold with any number of Ps. */
#include "gs_test.h"

/* ---- prime sieve --------------------------------------------------------------------------- */

#define NPRIMES 1000

static void generate(void *arg) {
    gs_chan *out = arg;
    for (long i = 2;; i++)
        if (gs_chan_send(out, &i) != GS_OK) return; /* closed: the sieve is done */
}

typedef struct { gs_chan *in, *out; long prime; } filter_arg;

static void filter(void *arg) {
    filter_arg *f = arg;
    long v;
    while (gs_chan_recv(f->in, &v) == GS_OK) {
        if (v % f->prime != 0 && gs_chan_send(f->out, &v) != GS_OK) break;
    }
    /* Shut down upstream-to-downstream: close what we feed. */
    gs_chan_close(f->in);
    gs_chan_close(f->out);
}

static long primes[NPRIMES];
static filter_arg filters[NPRIMES];
static gs_chan *sieve_chans[NPRIMES + 1];

static void sieve(void *arg) {
    (void)arg;
    gs_chan *ch = gs_chan_new(sizeof(long), 0);
    CHECK(ch != NULL);
    sieve_chans[0] = ch;
    CHECK_ID(gs_spawn(generate, ch));
    for (int i = 0; i < NPRIMES; i++) {
        long p;
        CHECK_OK(gs_chan_recv(ch, &p));
        primes[i] = p;
        gs_chan *next = gs_chan_new(sizeof(long), 0);
        CHECK(next != NULL);
        sieve_chans[i + 1] = next;
        filters[i] = (filter_arg){ch, next, p};
        CHECK_ID(gs_spawn(filter, &filters[i]));
        ch = next;
    }
    /* Tear down: closing the last channel makes the last filter close its input, and so on. */
    gs_chan_close(ch);
}

static int is_prime(long n) {
    if (n < 2) return 0;
    for (long d = 2; d * d <= n; d++)
        if (n % d == 0) return 0;
    return 1;
}

/* ---- daisy chain --------------------------------------------------------------------------- */

#define CHAIN 10000

static void whisper(void *arg) {
    gs_chan **lr = arg; /* lr[0] = left, lr[1] = right */
    long v;
    CHECK_OK(gs_chan_recv(lr[1], &v));
    v += 1;
    CHECK_OK(gs_chan_send(lr[0], &v));
}

static gs_chan *chain_ch[CHAIN + 1];
static gs_chan *chain_pairs[CHAIN][2];
static long chain_result;

static void chain_main(void *arg) {
    (void)arg;
    for (int i = 0; i <= CHAIN; i++) CHECK((chain_ch[i] = gs_chan_new(sizeof(long), 0)) != NULL);
    for (int i = 0; i < CHAIN; i++) {
        chain_pairs[i][0] = chain_ch[i];
        chain_pairs[i][1] = chain_ch[i + 1];
        CHECK_ID(gs_spawn(whisper, chain_pairs[i]));
    }
    long one = 1;
    CHECK_OK(gs_chan_send(chain_ch[CHAIN], &one));
    CHECK_OK(gs_chan_recv(chain_ch[0], &chain_result));
    for (int i = 0; i <= CHAIN; i++) CHECK_OK(gs_chan_free(chain_ch[i]));
}

/* ---- token ring ---------------------------------------------------------------------------- */

#define RING 10000

static long hops = 1000000L; /* gs_test_workload in main */

static gs_chan *ring_ch[RING];
static long ring_finisher = -1;

static void ring_node(void *arg) {
    long i = (long)arg;
    gs_chan *in = ring_ch[i], *out = ring_ch[(i + 1) % RING];
    long t;
    for (;;) {
        if (gs_chan_recv(in, &t) != GS_OK) break; /* the shutdown wave */
        if (t == hops) {
            ring_finisher = i;
            break;
        }
        t++;
        CHECK_OK(gs_chan_send(out, &t));
    }
    CHECK_OK(gs_chan_close(out));
}

static void ring_start(void *arg) {
    (void)arg;
    long t = 0;
    CHECK_OK(gs_chan_send(ring_ch[0], &t));
}

/* ---- fan-out / fan-in ---------------------------------------------------------------------- */

#define PRODUCERS 50
#define CONSUMERS 37
#define PER_PRODUCER 2000

static gs_chan *work, *results;
static gs_waitgroup *prod_wg, *cons_wg;
static unsigned char seen[PRODUCERS * PER_PRODUCER];

static void producer(void *arg) {
    long id = (long)arg;
    for (long j = 0; j < PER_PRODUCER; j++) {
        long msg = id * PER_PRODUCER + j;
        CHECK_OK(gs_chan_send(work, &msg));
        if (j % 97 == 0) gs_yield();
    }
    CHECK_OK(gs_waitgroup_done(prod_wg));
}

static void consumer(void *arg) {
    (void)arg;
    long msg;
    while (gs_chan_recv(work, &msg) == GS_OK) {
        long r = msg * 2; /* "work" */
        CHECK_OK(gs_chan_send(results, &r));
    }
    CHECK_OK(gs_waitgroup_done(cons_wg));
}

static void closer(void *arg) {
    (void)arg;
    CHECK_OK(gs_waitgroup_wait(prod_wg));
    CHECK_OK(gs_chan_close(work));
    CHECK_OK(gs_waitgroup_wait(cons_wg));
    CHECK_OK(gs_chan_close(results));
}

static long fan_received;
static void collector(void *arg) {
    (void)arg;
    long r;
    while (gs_chan_recv(results, &r) == GS_OK) {
        CHECK(r % 2 == 0 && r / 2 >= 0 && r / 2 < PRODUCERS * PER_PRODUCER);
        CHECK_EQ(seen[r / 2], 0);
        seen[r / 2] = 1;
        fan_received++;
    }
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void) {
    gs_test_begin(100);
    hops = gs_test_workload(hops, 100000L);
    double t0 = now_s();

    CHECK_ID(gs_spawn(sieve, NULL));
    CHECK_OK(gs_run());
    for (int i = 0; i < NPRIMES; i++) {
        CHECK(is_prime(primes[i]));
        if (i > 0) {
            CHECK(primes[i] > primes[i - 1]);
            for (long n = primes[i - 1] + 1; n < primes[i]; n++) CHECK(!is_prime(n));
        }
    }
    CHECK_EQ(primes[0], 2);
    CHECK_EQ(primes[NPRIMES - 1], 7919);
    for (int i = 0; i <= NPRIMES; i++) CHECK_OK(gs_chan_free(sieve_chans[i]));
    printf("sieve: first %d primes ok (%.3f s)\n", NPRIMES, now_s() - t0);

    t0 = now_s();
    CHECK_ID(gs_spawn(chain_main, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(chain_result, CHAIN + 1);
    printf("daisy chain: %d goroutines, result %ld (%.3f s)\n", CHAIN, chain_result, now_s() - t0);

    t0 = now_s();
    for (int i = 0; i < RING; i++) CHECK((ring_ch[i] = gs_chan_new(sizeof(long), 0)) != NULL);
    for (long i = 0; i < RING; i++) CHECK_ID(gs_spawn(ring_node, (void *)i));
    CHECK_ID(gs_spawn(ring_start, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(ring_finisher, hops % RING);
    for (int i = 0; i < RING; i++) CHECK_OK(gs_chan_free(ring_ch[i]));
    double dt = now_s() - t0;
    printf("ring: %d goroutines, %ld hops (%.3f s, %.0f ns/hop)\n", RING, hops, dt, dt * 1e9 / hops);

    t0 = now_s();
    CHECK((work = gs_chan_new(sizeof(long), 16)) != NULL);
    CHECK((results = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK((prod_wg = gs_waitgroup_new()) != NULL);
    CHECK((cons_wg = gs_waitgroup_new()) != NULL);
    CHECK_OK(gs_waitgroup_add(prod_wg, PRODUCERS));
    CHECK_OK(gs_waitgroup_add(cons_wg, CONSUMERS));
    for (long i = 0; i < CONSUMERS; i++) CHECK_ID(gs_spawn(consumer, NULL));
    for (long i = 0; i < PRODUCERS; i++) CHECK_ID(gs_spawn(producer, (void *)i));
    CHECK_ID(gs_spawn(closer, NULL));
    CHECK_ID(gs_spawn(collector, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(fan_received, PRODUCERS * PER_PRODUCER);
    for (long i = 0; i < PRODUCERS * PER_PRODUCER; i++) CHECK_EQ(seen[i], 1);
    CHECK_OK(gs_chan_free(work));
    CHECK_OK(gs_chan_free(results));
    CHECK_OK(gs_waitgroup_free(prod_wg));
    CHECK_OK(gs_waitgroup_free(cons_wg));
    printf("fan-out/fan-in: %d producers, %d consumers, %d messages once each (%.3f s)\n", PRODUCERS,
           CONSUMERS, PRODUCERS * PER_PRODUCER, now_s() - t0);
    return 0;
}
