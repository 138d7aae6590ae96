/* gs_mutex (contention with an exact counter, starvation hand-off, trylock, errors),
 * gs_waitgroup (wait, negative counter, several waiters), gs_sema (bounded concurrency, FIFO
 * hand-off), and the rule that blocking calls inside gs_systemstack return GS_ESTATE while the
 * try-variants work there. */
#include "gs_test.h"

/* ---- mutex under contention ---------------------------------------------------------------- */
enum { WORKERS = 100, ROUNDS = 1000 };
static gs_mutex *mu;
static long counter;          /* guarded by mu */
static gs_waitgroup *wg;

static void worker(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_OK(gs_mutex_lock(mu));
        long c = counter;
        if ((i + id) % 10 == 0) gs_yield(); /* switch inside the critical section */
        counter = c + 1;
        CHECK_OK(gs_mutex_unlock(mu));
    }
    CHECK_OK(gs_waitgroup_done(wg));
}

/* ---- starvation: a hog relocks at once; the waiter must still get the mutex ----------------- */
static gs_mutex *hogged;
static volatile int waiter_got_it;
static long hog_rounds;

static void hog(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&waiter_got_it, __ATOMIC_ACQUIRE)) {
        CHECK_OK(gs_mutex_lock(hogged));
        gs_yield(); /* hold it across a switch: the waiter runs and finds it locked */
        CHECK_OK(gs_mutex_unlock(hogged));
        hog_rounds++;
    }
}
static void starved(void *arg) {
    (void)arg;
    CHECK_OK(gs_mutex_lock(hogged)); /* never returns without the 1 ms hand-off */
    __atomic_store_n(&waiter_got_it, 1, __ATOMIC_RELEASE);
    CHECK_OK(gs_mutex_unlock(hogged));
}

/* ---- wait group ----------------------------------------------------------------------------- */
static gs_waitgroup *wg2;
static long wg_done_count, wg_waiters_ok;

static void sleeper(void *arg) {
    CHECK_OK(gs_sleep((int64_t)(long)arg * 100000));
    __atomic_fetch_add(&wg_done_count, 1, __ATOMIC_RELAXED);
    CHECK_OK(gs_waitgroup_done(wg2));
}
static void wg_waiter(void *arg) {
    (void)arg;
    CHECK_OK(gs_waitgroup_wait(wg2));
    CHECK_EQ(__atomic_load_n(&wg_done_count, __ATOMIC_RELAXED), 20);
    __atomic_fetch_add(&wg_waiters_ok, 1, __ATOMIC_RELAXED);
}

/* ---- semaphore ------------------------------------------------------------------------------ */
static gs_sema *sem;
static long inside, max_inside, sem_done;

static void sem_user(void *arg) {
    (void)arg;
    for (int i = 0; i < 10; i++) {
        CHECK_OK(gs_sema_acquire(sem));
        long n = __atomic_add_fetch(&inside, 1, __ATOMIC_ACQ_REL);
        long m = __atomic_load_n(&max_inside, __ATOMIC_RELAXED);
        while (n > m && !__atomic_compare_exchange_n(&max_inside, &m, n, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
        gs_yield();
        __atomic_sub_fetch(&inside, 1, __ATOMIC_ACQ_REL);
        CHECK_OK(gs_sema_release(sem));
    }
    __atomic_fetch_add(&sem_done, 1, __ATOMIC_RELAXED);
}

/* ---- inside gs_systemstack ------------------------------------------------------------------ */
static void on_system_stack(void *arg) {
    gs_chan *ch = arg;
    int v = 1;
    CHECK_RC(gs_chan_send(ch, &v), GS_ESTATE);
    CHECK_RC(gs_chan_recv(ch, &v), GS_ESTATE);
    CHECK_RC(gs_chan_recv_timeout(ch, &v, 1000), GS_ESTATE);
    gs_case c[1] = {{ch, GS_CASE_RECV, &v, 0}};
    CHECK_RC(gs_select(c, 1, -1), GS_ESTATE);
    CHECK_RC(gs_mutex_lock(mu), GS_ESTATE);
    CHECK_RC(gs_sema_acquire(sem), GS_ESTATE);
    CHECK_RC(gs_waitgroup_wait(wg2), GS_ESTATE);
    /* Non-blocking calls work. */
    CHECK_OK(gs_chan_try_send(ch, &v));
    CHECK_OK(gs_chan_try_recv(ch, &v));
    CHECK_EQ(gs_select(c, 1, 0), GS_EAGAIN);
    CHECK_OK(gs_mutex_trylock(mu));
    CHECK_OK(gs_mutex_unlock(mu));
    CHECK_OK(gs_sema_try_acquire(sem));
    CHECK_OK(gs_sema_release(sem));
}
static void systemstack_goroutine(void *arg) {
    CHECK_OK(gs_systemstack(on_system_stack, arg));
}

int main(void) {
    gs_test_begin(60);

    /* Errors and non-blocking behaviour, outside goroutines. */
    CHECK((mu = gs_mutex_new()) != NULL);
    CHECK_RC(gs_mutex_unlock(mu), GS_ESTATE);
    CHECK_OK(gs_mutex_trylock(mu));
    CHECK_RC(gs_mutex_trylock(mu), GS_EAGAIN);
    CHECK_RC(gs_mutex_free(mu), GS_EBUSY);
    CHECK_OK(gs_mutex_unlock(mu));
    CHECK_OK(gs_mutex_lock(mu)); /* free: does not block */
    CHECK_OK(gs_mutex_unlock(mu));
    CHECK_RC(gs_mutex_lock(NULL), GS_EINVAL);
    CHECK_RC(gs_mutex_unlock(NULL), GS_EINVAL);
    CHECK_RC(gs_mutex_trylock(NULL), GS_EINVAL);
    CHECK_RC(gs_mutex_free(NULL), GS_EINVAL);

    CHECK((wg = gs_waitgroup_new()) != NULL);
    CHECK_OK(gs_waitgroup_wait(wg)); /* counter 0: returns at once */
    CHECK_RC(gs_waitgroup_add(wg, -1), GS_EINVAL);
    CHECK_OK(gs_waitgroup_add(wg, 2));
    CHECK_RC(gs_waitgroup_add(wg, -3), GS_EINVAL); /* unchanged: still 2 */
    CHECK_OK(gs_waitgroup_done(wg));
    CHECK_OK(gs_waitgroup_done(wg));
    CHECK_RC(gs_waitgroup_done(wg), GS_EINVAL);
    CHECK_RC(gs_waitgroup_add(NULL, 1), GS_EINVAL);
    CHECK_RC(gs_waitgroup_done(NULL), GS_EINVAL);
    CHECK_RC(gs_waitgroup_wait(NULL), GS_EINVAL);
    CHECK_RC(gs_waitgroup_free(NULL), GS_EINVAL);

    CHECK(gs_sema_new(-1) == NULL);
    CHECK((sem = gs_sema_new(1)) != NULL);
    CHECK_OK(gs_sema_try_acquire(sem));
    CHECK_RC(gs_sema_try_acquire(sem), GS_EAGAIN);
    CHECK_OK(gs_sema_release(sem));
    CHECK_OK(gs_sema_acquire(sem));
    CHECK_OK(gs_sema_release(sem));
    CHECK_RC(gs_sema_acquire(NULL), GS_EINVAL);
    CHECK_RC(gs_sema_try_acquire(NULL), GS_EINVAL);
    CHECK_RC(gs_sema_release(NULL), GS_EINVAL);
    CHECK_RC(gs_sema_free(NULL), GS_EINVAL);
    CHECK_OK(gs_sema_free(sem));

    /* Mutex contention: the counter is exact. */
    CHECK_OK(gs_waitgroup_add(wg, WORKERS));
    for (long i = 0; i < WORKERS; i++) CHECK_ID(gs_spawn(worker, (void *)i));
    CHECK_OK(gs_run());
    CHECK_EQ(counter, WORKERS * ROUNDS);

    /* Starvation hand-off. */
    CHECK((hogged = gs_mutex_new()) != NULL);
    CHECK_ID(gs_spawn(hog, NULL));
    CHECK_ID(gs_spawn(starved, NULL));
    CHECK_OK(gs_run());
    CHECK(waiter_got_it);
    printf("starvation: the waiter got the mutex after %ld hog rounds\n", hog_rounds);
    CHECK_OK(gs_mutex_free(hogged));

    /* Wait group with several waiters. */
    CHECK((wg2 = gs_waitgroup_new()) != NULL);
    CHECK_OK(gs_waitgroup_add(wg2, 20));
    for (long i = 0; i < 3; i++) CHECK_ID(gs_spawn(wg_waiter, NULL));
    for (long i = 0; i < 20; i++) CHECK_ID(gs_spawn(sleeper, (void *)(i % 5)));
    CHECK_OK(gs_run());
    CHECK_EQ(wg_waiters_ok, 3);

    /* Semaphore bounding concurrency to 3. */
    CHECK((sem = gs_sema_new(3)) != NULL);
    for (long i = 0; i < 50; i++) CHECK_ID(gs_spawn(sem_user, NULL));
    CHECK_OK(gs_run());
    CHECK_EQ(sem_done, 50);
    CHECK(max_inside >= 1 && max_inside <= 3);
    printf("semaphore: at most %ld inside\n", max_inside);

    /* Blocking calls on the system stack. */
    gs_chan *ch = gs_chan_new(sizeof(int), 1);
    CHECK(ch != NULL);
    CHECK_ID(gs_spawn(systemstack_goroutine, ch));
    CHECK_OK(gs_run());

    CHECK_OK(gs_chan_free(ch));
    CHECK_OK(gs_sema_free(sem));
    CHECK_OK(gs_mutex_free(mu));
    CHECK_OK(gs_waitgroup_free(wg));
    CHECK_OK(gs_waitgroup_free(wg2));
    printf("test_mutex_wg_sema: ok\n");
    return 0;
}
