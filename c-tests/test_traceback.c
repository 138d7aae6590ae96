/*
 * test_traceback: GOSTACK_TRACEBACK=all makes SIGQUIT print every goroutine and exit with status
 * 2, as a Go program does (issue #14); without it SIGQUIT keeps its default action (the host's
 * handling is untouched). Children re-executed with the variable set, since the library reads it
 * when it loads.
 */
#include "gs_test.h"

static gs_chan *ch;

static void parked(void *arg) {
    int v;
    (void)arg;
    gs_chan_recv(ch, &v);
}

static void quitter(void *arg) {
    (void)arg;
    for (int i = 0; i < 5; i++) gs_yield(); /* the others park first */
    kill(getpid(), SIGQUIT);
    for (;;) gs_yield(); /* only the signal ends this */
}

static void run_and_quit(void) {
    gs_attr a;
    ch = gs_chan_new(sizeof(int), 0);
    for (int i = 0; i < 3; i++) CHECK_ID(gs_spawn(parked, NULL));
    CHECK_OK(gs_attr_init(&a));
    a.name = "quitter";
    CHECK_ID(gs_spawn_with(&a, quitter, NULL));
    gs_run();
}

static char self_exe[4096];

static void exec_with(void *value) {
    /* The default action is what the test expects without the variable; an ignored SIGQUIT would
     * survive exec (a test run started in the background by a non-interactive shell has one). */
    signal(SIGQUIT, SIG_DFL);
    if (value != NULL) CHECK(setenv("GOSTACK_TRACEBACK", (const char *)value, 1) == 0);
    else CHECK(unsetenv("GOSTACK_TRACEBACK") == 0);
    execl(self_exe, self_exe, "--quit", (char *)NULL);
    _exit(121);
}

int main(int argc, char **argv) {
    gs_test_child c;
    ssize_t n;
    if (argc == 2 && strcmp(argv[1], "--quit") == 0) {
        run_and_quit();
        return 0;
    }
    gs_test_begin(60);
    n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    CHECK(n > 0);
    self_exe[n] = '\0';

    gs_test_child_run(exec_with, "all", 30, &c);
    gs_test_current_child = &c;
    CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 2);
    CHECK(gs_test_contains(c.err, "SIGQUIT: quit"));
    CHECK(gs_test_contains(c.err, "goroutine 1 [chan receive]"));
    CHECK(gs_test_contains(c.err, "goroutine 3 [chan receive]"));
    CHECK(gs_test_contains(c.err, "goroutine 4 [running]"));
    CHECK(gs_test_contains(c.err, "name \"quitter\""));
    gs_test_current_child = NULL;
    free(c.err);
    printf("ok: GOSTACK_TRACEBACK=all: SIGQUIT prints every goroutine, exit status 2\n");

    gs_test_child_run(exec_with, NULL, 30, &c);
    gs_test_current_child = &c;
    CHECK(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGQUIT);
    CHECK(!gs_test_contains(c.err, "SIGQUIT: quit"));
    gs_test_current_child = NULL;
    free(c.err);
    printf("ok: without it, SIGQUIT keeps its default action\n");
    return 0;
}
