/* gs_dump prints every live goroutine with its state, wait reason and name. */
#include "gs_test.h"

static int pipefd[2];
static void sleeper(void *arg) { (void)arg; CHECK_OK(gs_sleep(50 * 1000000)); }
static void dumper(void *arg) {
    (void)arg;
    CHECK_OK(gs_yield()); /* let the sleeper park */
    CHECK_OK(gs_dump(pipefd[1]));
}

int main(void) {
    gs_test_begin(100);
    CHECK_RC(gs_dump(-1), GS_EINVAL);
    CHECK(pipe(pipefd) == 0);
    gs_attr a;
    CHECK_OK(gs_attr_init(&a));
    a.name = "napper";
    int64_t sid = CHECK_ID(gs_spawn_with(&a, sleeper, NULL));
    int64_t did = CHECK_ID(gs_spawn(dumper, NULL));
    CHECK_OK(gs_run());
    close(pipefd[1]);
    static char buf[65536];
    ssize_t n = read(pipefd[0], buf, sizeof buf - 1);
    CHECK(n > 0);
    buf[n] = 0;
    char want[128];
    snprintf(want, sizeof want, "goroutine %" PRId64 " [sleep]:", sid);
    if (!strstr(buf, want)) fprintf(stderr, "dump:\n%s", buf);
    CHECK(strstr(buf, want) != NULL);
    CHECK(strstr(buf, "name \"napper\"") != NULL);
    snprintf(want, sizeof want, "goroutine %" PRId64 " [running]:", did);
    CHECK(strstr(buf, want) != NULL);
    return 0;
}
