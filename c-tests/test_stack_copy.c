/* GS_STACK_COPY (issue #16): goroutines that share their thread's slots (a few shared stacks per
 * thread) and copy their live part out when another goroutine needs the slot (eviction) and back
 * in. Channels, select, mutex, wait groups and sleep with elements in the parked goroutines'
 * frames (the runtime must not touch a parked frame: other goroutines reuse its addresses), the
 * netpoller (an fd waiter, a timed one) and gs_blocking, deep recursion (1 MiB live), 100,000
 * goroutines, a differential stress (many more goroutines than slots, random depths and parks,
 * every frame checked after every switch, results compared with GROWABLE and mixed runs), gs_dump
 * of resident and evicted goroutines, and the contract violation (&local handed to another
 * goroutine) with what it does. */
#include "gs_test.h"

static gs_attr copy_attr;

static int64_t spawn_copy(gs_fn f, void *arg) {
    return gs_spawn_with(&copy_attr, f, arg);
}

/* ---- slots: a thread's copy-stack goroutines share a few stacks, spread over them ----------- */
enum { WHERE = 17 }; /* more than a thread's slots: some share one */
static size_t seen_hi[WHERE];
static uint32_t seen_kind;

static void where_am_i(void *arg) {
    gs_stack_info si;
    CHECK_OK(gs_get_stack_info(&si));
    seen_hi[(long)arg] = si.hi;
    seen_kind = si.kind;
    gs_yield();
}

/* ---- slot choice: a newcomer does not take a live goroutine's slot while one is unused ------ */
/* One thread: A runs first and parks; 7 short-lived goroutines come and go; B runs next. With
 * plain round robin B would get A's slot (the ninth first run) and the two would evict each
 * other at every switch; a slot no live goroutine uses is taken instead. */
static gs_chan *sc_chan;
static size_t sc_hi[2];

static void sc_long(void *arg) {
    long who = (long)arg;
    gs_stack_info si;
    CHECK_OK(gs_get_stack_info(&si));
    sc_hi[who] = si.hi;
    int token = 0;
    if (who == 0)
        CHECK_OK(gs_chan_recv(sc_chan, &token));
    else
        CHECK_OK(gs_chan_send(sc_chan, &token));
}

static void sc_short(void *arg) {
    (void)arg;
}

/* ---- unbuffered ping-pong: each side parks with its element on its own stack --------------- */
enum { HOPS = 10000 };
static gs_chan *ping, *pong;
static long pong_sum;

static void pinger(void *arg) {
    (void)arg;
    for (long i = 0; i < HOPS; i++) {
        long v = i; /* sent from this frame: the receiver runs while we are parked */
        CHECK_OK(gs_chan_send(ping, &v));
        long back = -1;
        CHECK_OK(gs_chan_recv(pong, &back));
        CHECK_EQ(back, 2 * i);
    }
}

static void ponger(void *arg) {
    (void)arg;
    for (long i = 0; i < HOPS; i++) {
        long got = -1; /* received into this frame while parked */
        CHECK_OK(gs_chan_recv(ping, &got));
        CHECK_EQ(got, i);
        long twice = 2 * got;
        pong_sum += twice;
        CHECK_OK(gs_chan_send(pong, &twice));
    }
}

/* ---- select with both cases' elements on the stack ------------------------------------------ */
static gs_chan *sa, *sb;
static long select_got;

static void selecter(void *arg) {
    (void)arg;
    for (int round = 0; round < 100; round++) {
        long a = -1, b = -1;
        gs_case cs[2] = {
            { .chan = sa, .dir = GS_CASE_RECV, .elem = &a },
            { .chan = sb, .dir = GS_CASE_RECV, .elem = &b },
        };
        int i = gs_select(cs, 2, -1);
        CHECK(i == 0 || i == 1);
        CHECK_OK(cs[i].status);
        long v = i == 0 ? a : b;
        CHECK_EQ(v, (long)round);
        CHECK_EQ(i == 0 ? b : a, -1L); /* the case that did not fire is untouched */
        select_got++;
    }
}

static void select_feeder(void *arg) {
    (void)arg;
    for (long round = 0; round < 100; round++) {
        long v = round;
        gs_case cs[2] = {
            { .chan = sa, .dir = GS_CASE_SEND, .elem = &v },
            { .chan = sb, .dir = GS_CASE_SEND, .elem = &v },
        };
        int i = gs_select(cs, 2, -1);
        CHECK(i == 0 || i == 1);
        CHECK_OK(cs[i].status);
    }
}

/* ---- mutex, wait group, sleep: locals must survive every park ------------------------------- */
static gs_mutex *mu;
static gs_waitgroup *wg;
static long counter;

static void locker(void *arg) {
    long id = (long)arg;
    volatile long mine[64];
    for (int k = 0; k < 64; k++) mine[k] = id * 1000 + k;
    for (int i = 0; i < 200; i++) {
        CHECK_OK(gs_mutex_lock(mu));
        long c = counter;
        if (i % 7 == 0) gs_yield();
        if (i % 50 == 0) CHECK_OK(gs_sleep(10000));
        counter = c + 1;
        CHECK_OK(gs_mutex_unlock(mu));
    }
    for (int k = 0; k < 64; k++) CHECK_EQ(mine[k], id * 1000 + k);
    CHECK_OK(gs_waitgroup_done(wg));
}

static void wg_waiter(void *arg) {
    long *done = arg;
    CHECK_OK(gs_waitgroup_wait(wg));
    *done = 1;
}

/* ---- deep recursion: 1 MiB live, parked at the bottom while another one goes deep too ------- */
enum { FRAME = 1024, DEPTH = 1024 };

static GS_TEST_NOINLINE long deep(int n, long seed) {
    volatile unsigned char buf[FRAME];
    for (int i = 0; i < FRAME; i++) buf[i] = (unsigned char)(seed + n + i);
    long r = 0;
    if (n > 0) {
        r = deep(n - 1, seed);
    } else {
        gs_yield(); /* 1 MiB live is copied out and back in */
        gs_yield();
    }
    for (int i = 0; i < FRAME; i++) CHECK(buf[i] == (unsigned char)(seed + n + i));
    return r + buf[n % FRAME];
}

static long deep_results[2];
static void diver(void *arg) {
    long seed = (long)arg;
    gs_stack_info si;
    deep_results[seed] = deep(DEPTH, seed * 7 + 3);
    CHECK_OK(gs_get_stack_info(&si));
    CHECK(si.used < 4096); /* back at the top */
}

/* ---- 100,000 goroutines parked at once on a wait group, each with a local that must survive -- */
enum { MANY = 100000 };
static gs_waitgroup *many_started, *gate;
static long many_ok;

static void one_of_many(void *arg) {
    long me = (long)arg;
    long check[4] = { me, ~me, me * 3, me ^ 0x5a5a };
    CHECK_OK(gs_waitgroup_done(many_started));
    CHECK_OK(gs_waitgroup_wait(gate));
    CHECK(check[0] == me && check[1] == ~me && check[2] == me * 3 && check[3] == (me ^ 0x5a5a));
    __atomic_fetch_add(&many_ok, 1, __ATOMIC_RELAXED);
}

static void opener(void *arg) {
    (void)arg;
    CHECK_OK(gs_waitgroup_wait(many_started));
    CHECK_OK(gs_waitgroup_done(gate));
}

/* ---- the netpoller and gs_blocking: an fd waiter and a blocking call's record ------------- */
static int pipefd[2];
static long io_got;
static gs_chan *io_go;

static void io_reader(void *arg) {
    (void)arg;
    char buf[16] = {0}; /* read into this frame while parked on the netpoller */
    CHECK_RC(gs_fd_wait(pipefd[0], GS_POLL_IN, 1000000), GS_ETIMEDOUT); /* nothing yet: a timed wait */
    /* Only now may the writer write: a stall of the reader's thread past the writer's sleep
     * (seen: 9 ms in glibc's malloc_consolidate after the 100,000 goroutines' frees) would
     * otherwise let the timed wait see the data. */
    int token = 1;
    CHECK_OK(gs_chan_send(io_go, &token));
    CHECK_EQ(gs_read(pipefd[0], buf, 8), (ssize_t)8);
    CHECK(memcmp(buf, "copy-io!", 8) == 0);
    io_got = 1;
}

static void io_writer(void *arg) {
    (void)arg;
    int token = 0;
    CHECK_OK(gs_chan_recv(io_go, &token));
    CHECK_OK(gs_sleep(5000000)); /* the reader parks in gs_read meanwhile */
    CHECK_EQ(gs_write(pipefd[1], "copy-io!", 8), (ssize_t)8);
}

static void slow_call(void *arg) {
    (void)arg;
    usleep(30000); /* long enough for the P to be handed off (gs_blocking's slow path) */
}

static long blocked_ok;
static void blocker(void *arg) {
    (void)arg;
    volatile long mine[16];
    for (int i = 0; i < 16; i++) mine[i] = i * 11;
    CHECK_OK(gs_blocking(slow_call, NULL));
    for (int i = 0; i < 16; i++) CHECK_EQ(mine[i], (long)i * 11);
    blocked_ok = 1;
}

static void busy(void *arg) {
    (void)arg;
    volatile long mine[16];
    for (int i = 0; i < 16; i++) mine[i] = -i;
    for (int r = 0; r < 50; r++) CHECK_OK(gs_sleep(100000));
    for (int i = 0; i < 16; i++) CHECK_EQ(mine[i], (long)-i);
}

/* ---- differential stress: many more goroutines than slots, random depths and parks --------- */
/* Each worker runs a sequence of operations fixed by its seed: recurse to a random depth with a
 * buffer in every frame, switch at the bottom (yield, a buffered channel's send and receive, a
 * contended mutex held across a yield, a sleep, or nothing), then check every frame's buffer on
 * the way up. With more goroutines than slots nearly every switch evicts a resident; a wrong
 * range (a byte short at either end, or the wrong goroutine's bytes) breaks a buffer, a saved
 * register or a return address. The result depends on the seed only: it must be the same for
 * GROWABLE, COPY and a mix of both (which exercises hand-offs between the kinds). */
enum { SW = 40, SOPS = 120, SFRAME = 320, SDEPTH = 24 };
static gs_chan *stress_ch;
static gs_mutex *stress_mu;
static long stress_locked;
static uint64_t stress_sum[4][SW]; /* GROWABLE, COPY, mixed, a fork child's COPY */
static int stress_run;

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static GS_TEST_NOINLINE uint64_t stress_op(uint64_t *rng, int depth) {
    volatile unsigned char buf[SFRAME];
    uint64_t salt = lcg(rng);
    for (int i = 0; i < SFRAME; i++) buf[i] = (unsigned char)(salt * 31 + (uint64_t)i * 7 + (uint64_t)depth);
    uint64_t r;
    if (depth > 0) {
        r = stress_op(rng, depth - 1);
    } else {
        long v = 0x600d, w = 0, c;
        switch (lcg(rng) % 5) {
        case 0: CHECK_OK(gs_yield()); break;
        case 1:
            CHECK_OK(gs_chan_send(stress_ch, &v));
            CHECK_OK(gs_chan_recv(stress_ch, &w));
            CHECK_EQ(w, 0x600dL);
            break;
        case 2:
            CHECK_OK(gs_mutex_lock(stress_mu));
            c = stress_locked;
            CHECK_OK(gs_yield());
            stress_locked = c + 1;
            CHECK_OK(gs_mutex_unlock(stress_mu));
            break;
        case 3: CHECK_OK(gs_sleep((int64_t)(lcg(rng) % 20000))); break;
        default: break;
        }
        r = lcg(rng);
    }
    uint64_t sum = 0;
    for (int i = 0; i < SFRAME; i++) {
        CHECK(buf[i] == (unsigned char)(salt * 31 + (uint64_t)i * 7 + (uint64_t)depth));
        sum = sum * 131 + buf[i];
    }
    return r ^ sum;
}

static void stress_worker(void *arg) {
    long id = (long)arg;
    uint64_t rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);
    volatile uint64_t top[8]; /* near the top of the stack: the end of the live range */
    for (int i = 0; i < 8; i++) top[i] = rng ^ (uint64_t)i;
    uint64_t acc = 0;
    for (int op = 0; op < SOPS; op++) acc = acc * 3 + stress_op(&rng, (int)(lcg(&rng) % SDEPTH));
    for (int i = 0; i < 8; i++) CHECK(top[i] == ((0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1)) ^ (uint64_t)i));
    stress_sum[stress_run][id] = acc;
}

/* ---- gs_dump of resident and evicted goroutines -------------------------------------------- */
enum { DN = 20, DFRAME = 1024 };
static gs_chan *dump_gate;
static gs_waitgroup *dump_parked;
static size_t dump_used[DN];
static pthread_t dump_thread[DN + 1]; /* a copy-stack goroutine stays on the thread of its slot */
static int dump_fd;

static GS_TEST_NOINLINE void dumpee_park(long id) {
    volatile unsigned char buf[DFRAME];
    for (int i = 0; i < DFRAME; i++) buf[i] = (unsigned char)(id * 13 + i);
    gs_stack_info si;
    CHECK_OK(gs_get_stack_info(&si));
    dump_used[id] = si.used;
    dump_thread[id] = pthread_self();
    CHECK_OK(gs_waitgroup_done(dump_parked));
    int token = 0;
    CHECK_RC(gs_chan_recv(dump_gate, &token), GS_ECLOSED); /* parked until the dumper has listed it */
    for (int i = 0; i < DFRAME; i++) CHECK(buf[i] == (unsigned char)(id * 13 + i));
}

static void dumpee(void *arg) {
    dumpee_park((long)arg);
}

static void dumper(void *arg) {
    (void)arg;
    CHECK_OK(gs_waitgroup_wait(dump_parked));
    dump_thread[DN] = pthread_self();
    CHECK_OK(gs_dump(dump_fd));
    CHECK_OK(gs_chan_close(dump_gate));
}

/* ---- fork in a copy-stack goroutine (one P: the child starts no thread) -------------------- */
/* The child keeps the forking goroutine, resident on its slot; the parked goroutines' residency
 * is dropped with them. New copy-stack goroutines in the child take those slots (and the
 * forker's) and must compute what GROWABLE ones did. */
enum { FK = 12 };
static gs_chan *fork_hold;

static void fork_parked(void *arg) {
    long id = (long)arg;
    volatile long mine[32];
    for (int i = 0; i < 32; i++) mine[i] = id * 100 + i;
    int token = 0;
    CHECK_RC(gs_chan_recv(fork_hold, &token), GS_ECLOSED);
    for (int i = 0; i < 32; i++) CHECK_EQ(mine[i], id * 100 + i);
}

static gs_waitgroup *fork_wg;
static void fork_child_worker(void *arg) {
    stress_worker(arg);
    CHECK_OK(gs_waitgroup_done(fork_wg));
}

static void copy_forker(void *arg) {
    (void)arg;
    volatile unsigned char mine[512];
    for (int i = 0; i < 512; i++) mine[i] = (unsigned char)(i * 3 + 1);
    CHECK_OK(gs_yield()); /* the parked ones park (some evicted: more than the slots) */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(20);
        stress_run = 3;
        CHECK((fork_wg = gs_waitgroup_new()) != NULL);
        CHECK_OK(gs_waitgroup_add(fork_wg, FK));
        for (long i = 0; i < FK; i++) CHECK_ID(spawn_copy(fork_child_worker, (void *)i));
        CHECK_OK(gs_waitgroup_wait(fork_wg));
        for (int i = 0; i < FK; i++) CHECK(stress_sum[3][i] == stress_sum[0][i]);
        for (int i = 0; i < 512; i++) CHECK(mine[i] == (unsigned char)(i * 3 + 1));
        _exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) CHECK(errno == EINTR); /* a raw blocking call: fine for a test */
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (int i = 0; i < 512; i++) CHECK(mine[i] == (unsigned char)(i * 3 + 1));
    CHECK_OK(gs_chan_close(fork_hold));
}

/* ---- the contract violation: &local handed to another goroutine ----------------------------- */
/* The pointer goes over a channel: at several Ps the peeker can run before the leaker has made
 * it, and a plain global read then was NULL (a crash of the test, not of the runtime). */
static long read_through_leak;
static gs_chan *leak_ptr, *leak_go;

static void leaker(void *arg) {
    (void)arg;
    long secret = 0x5ec7e7;
    long *leaked = &secret; /* WRONG for GS_STACK_COPY: valid only while this goroutine runs */
    CHECK_OK(gs_chan_send(leak_ptr, &leaked));
    int token = 0;
    CHECK_OK(gs_chan_recv(leak_go, &token)); /* parked: copied out if evicted */
    CHECK_EQ(secret, 0x5ec7e7L);             /* restored from the save area, whatever the other did */
}

static void peeker(void *arg) {
    (void)arg;
    long *leaked = NULL;
    CHECK_OK(gs_chan_recv(leak_ptr, &leaked));
    CHECK(leaked != NULL);
    volatile long mine[32];
    for (int i = 0; i < 32; i++) mine[i] = -1;
    /* What this reads depends on where the leaker is: still resident in its slot (another slot
     * than the peeker's, or at several Ps a running leaker), the secret; evicted and its slot
     * reused, the frames of whoever runs there now (the peeker's own when they share a slot). */
    read_through_leak = *(volatile long *)leaked;
    (void)mine[0];
    int token = 1;
    CHECK_OK(gs_chan_send(leak_go, &token));
}

int main(void) {
    CHECK_OK(gs_attr_init(&copy_attr));
    copy_attr.stack_kind = GS_STACK_COPY;

    /* Attributes: COPY is accepted; an unknown kind is not. */
    gs_attr bad = copy_attr;
    bad.stack_kind = 3;
    CHECK_RC(gs_spawn_with(&bad, where_am_i, NULL), GS_EINVAL);

    for (long i = 0; i < WHERE; i++) CHECK_ID(spawn_copy(where_am_i, (void *)i));
    CHECK_OK(gs_run());
    for (int i = 0; i < WHERE; i++) CHECK(seen_hi[i] != 0);
    /* Under ASan, TSan or valgrind a GS_STACK_COPY spawn gets a FIXED stack (the header): the
     * sync tests below still run; the deep dive (past a FIXED stack) and the 100,000 (a
     * sanitizer's shadow per stack) are for the real kind. */
    int real = seen_kind == GS_STACK_COPY;
    if (!real) CHECK_EQ(seen_kind, (uint32_t)GS_STACK_FIXED);
    if (real && gs_maxprocs() == 1) {
        /* One thread: a few slots, more goroutines than slots, each slot taken by several. */
        int distinct = 0;
        for (int i = 0; i < WHERE; i++) {
            int first = 1;
            for (int j = 0; j < i; j++) first &= seen_hi[j] != seen_hi[i];
            distinct += first;
        }
        CHECK(distinct > 1 && distinct < WHERE);
        CHECK(seen_hi[0] != seen_hi[1]); /* two goroutines taking turns copy nothing */

        CHECK((sc_chan = gs_chan_new(sizeof(int), 0)) != NULL);
        CHECK_ID(spawn_copy(sc_long, (void *)0));
        for (int i = 0; i < 7; i++) CHECK_ID(spawn_copy(sc_short, NULL));
        CHECK_ID(spawn_copy(sc_long, (void *)1));
        CHECK_OK(gs_run());
        CHECK(sc_hi[0] != 0 && sc_hi[1] != 0);
        CHECK(sc_hi[0] != sc_hi[1]);
        CHECK_OK(gs_chan_free(sc_chan));
    }

    CHECK((ping = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK((pong = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK_ID(spawn_copy(pinger, NULL));
    CHECK_ID(spawn_copy(ponger, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(pong_sum, (long)HOPS * (HOPS - 1));
    /* Mixed kinds on one channel: a GROWABLE receiver, a copy-stack sender. */
    pong_sum = 0;
    CHECK_ID(spawn_copy(pinger, NULL));
    CHECK_ID(gs_spawn(ponger, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(pong_sum, (long)HOPS * (HOPS - 1));

    CHECK((sa = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK((sb = gs_chan_new(sizeof(long), 0)) != NULL);
    CHECK_ID(spawn_copy(selecter, NULL));
    CHECK_ID(spawn_copy(select_feeder, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(select_got, 100L);

    CHECK((mu = gs_mutex_new()) != NULL);
    CHECK((wg = gs_waitgroup_new()) != NULL);
    CHECK_OK(gs_waitgroup_add(wg, 20));
    long wg_done = 0;
    CHECK_ID(spawn_copy(wg_waiter, &wg_done));
    for (long i = 0; i < 20; i++) CHECK_ID(spawn_copy(locker, (void *)i));
    CHECK_OK(gs_run());
    CHECK_EQ(counter, 20L * 200);
    CHECK_EQ(wg_done, 1L);

    if (real) {
        CHECK_ID(spawn_copy(diver, (void *)0));
        CHECK_ID(spawn_copy(diver, (void *)1));
        CHECK_OK(gs_run());
        CHECK(deep_results[0] != 0 && deep_results[1] != 0);
    }

    long many = real ? MANY : 1000;
    CHECK((many_started = gs_waitgroup_new()) != NULL);
    CHECK((gate = gs_waitgroup_new()) != NULL);
    CHECK_OK(gs_waitgroup_add(many_started, many));
    CHECK_OK(gs_waitgroup_add(gate, 1));
    for (long i = 0; i < many; i++) CHECK_ID(spawn_copy(one_of_many, (void *)i));
    CHECK_ID(spawn_copy(opener, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(many_ok, many);

    CHECK(pipe(pipefd) == 0);
    CHECK((io_go = gs_chan_new(sizeof(int), 0)) != NULL);
    CHECK_ID(spawn_copy(io_reader, NULL));
    CHECK_ID(spawn_copy(io_writer, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(io_got, 1L);
    CHECK_ID(spawn_copy(blocker, NULL));
    CHECK_ID(spawn_copy(busy, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(blocked_ok, 1L);
    close(pipefd[0]);
    close(pipefd[1]);

    /* Differential stress: GROWABLE (reference), COPY, then odd ones COPY and even ones GROWABLE. */
    CHECK((stress_ch = gs_chan_new(sizeof(long), 3)) != NULL);
    CHECK((stress_mu = gs_mutex_new()) != NULL);
    for (stress_run = 0; stress_run < 3; stress_run++) {
        for (long i = 0; i < SW; i++) {
            gs_attr a = copy_attr;
            if (stress_run == 0 || (stress_run == 2 && i % 2 == 0)) a.stack_kind = GS_STACK_GROWABLE;
            CHECK_ID(gs_spawn_with(&a, stress_worker, (void *)i));
        }
        CHECK_OK(gs_run());
    }
    for (int i = 0; i < SW; i++) {
        CHECK(stress_sum[0][i] != 0);
        CHECK(stress_sum[1][i] == stress_sum[0][i]);
        CHECK(stress_sum[2][i] == stress_sum[0][i]);
    }
    CHECK(stress_locked > 0);

    /* gs_dump: resident goroutines are listed as such, evicted ones with the size of their save
     * area, which holds what was live when they parked (and no more than the park's own frames). */
    char dump_path[] = "/tmp/gs_test_stack_copy_XXXXXX";
    CHECK((dump_fd = mkstemp(dump_path)) >= 0);
    CHECK((dump_gate = gs_chan_new(sizeof(int), 0)) != NULL);
    CHECK((dump_parked = gs_waitgroup_new()) != NULL);
    CHECK_OK(gs_waitgroup_add(dump_parked, DN));
    for (long i = 0; i < DN; i++) CHECK_ID(spawn_copy(dumpee, (void *)i));
    CHECK_ID(spawn_copy(dumper, NULL));
    CHECK_OK(gs_run());
    if (real) {
        static char text[1 << 16];
        ssize_t n = pread(dump_fd, text, sizeof text - 1, 0);
        CHECK(n > 0);
        text[n] = 0;
        int resident = 0, saved = 0;
        size_t min_used = SIZE_MAX, max_used = 0;
        for (int i = 0; i < DN; i++) {
            if (dump_used[i] < min_used) min_used = dump_used[i];
            if (dump_used[i] > max_used) max_used = dump_used[i];
        }
        CHECK(min_used > DFRAME);
        for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            if (strstr(line, " COPY resident") != NULL) resident++;
            char *sv = strstr(line, " COPY saved ");
            if (sv != NULL) {
                saved++;
                size_t bytes = (size_t)strtoul(sv + strlen(" COPY saved "), NULL, 10);
                CHECK(bytes > min_used && bytes < max_used + 4096);
            }
        }
        CHECK(resident >= 1);                           /* the dumper itself at least */
        /* More parked than slots: evicted. Each thread has 8 slots, and the goroutines can have
         * run on more threads than gs_maxprocs(): a thread started while another sat in a
         * gs_blocking call above stays, and idle threads take turns holding the Ps. */
        int threads = 0;
        for (int i = 0; i <= DN; i++) {
            int first = 1;
            for (int j = 0; j < i; j++) first &= !pthread_equal(dump_thread[j], dump_thread[i]);
            threads += first;
        }
        CHECK(saved >= DN + 1 - 8 * threads);
        CHECK_EQ(resident + saved, DN + 1);
    }
    close(dump_fd);
    unlink(dump_path);

    if (real && gs_maxprocs() == 1) {
        CHECK((fork_hold = gs_chan_new(sizeof(int), 0)) != NULL);
        for (long i = 0; i < FK; i++) CHECK_ID(spawn_copy(fork_parked, (void *)i));
        CHECK_ID(spawn_copy(copy_forker, NULL));
        CHECK_OK(gs_run());
        CHECK_OK(gs_chan_free(fork_hold));
    }

    CHECK((leak_ptr = gs_chan_new(sizeof(long *), 0)) != NULL);
    CHECK((leak_go = gs_chan_new(sizeof(int), 0)) != NULL);
    CHECK_ID(spawn_copy(leaker, NULL));
    CHECK_ID(spawn_copy(peeker, NULL));
    CHECK_OK(gs_run());
    printf("contract violation: read %#lx through the leaked pointer (the secret was 0x5ec7e7)\n",
           (unsigned long)read_through_leak);

    CHECK_OK(gs_chan_free(ping));
    CHECK_OK(gs_chan_free(pong));
    CHECK_OK(gs_chan_free(sa));
    CHECK_OK(gs_chan_free(sb));
    CHECK_OK(gs_chan_free(leak_ptr));
    CHECK_OK(gs_chan_free(leak_go));
    CHECK_OK(gs_chan_free(io_go));
    CHECK_OK(gs_mutex_free(mu));
    CHECK_OK(gs_waitgroup_free(wg));
    CHECK_OK(gs_waitgroup_free(many_started));
    CHECK_OK(gs_waitgroup_free(gate));
    CHECK_OK(gs_chan_free(stress_ch));
    CHECK_OK(gs_mutex_free(stress_mu));
    CHECK_OK(gs_chan_free(dump_gate));
    CHECK_OK(gs_waitgroup_free(dump_parked));
    printf("test_stack_copy: ok\n");
    return 0;
}
