/* Run under gdb by tests/c_tests.rs (gdb_lists_parked_goroutines): 100 goroutines park in
 * wait_here() on a channel; when all are parked, one more stops at an int3. The gdb script
 * (tools/gdb/gostack.py) must list all 101 and show wait_here in goroutine 5's backtrace. */
#include "gostack.h"

static gs_chan *ch;

__attribute__((noinline)) static void wait_here(int i) {
    int v;
    gs_chan_recv(ch, &v);
    __asm__ volatile("" ::"r"(i));
}

static void parked(void *arg) { wait_here((int)(long)arg); }

static void stopper(void *arg) {
    (void)arg;
    for (int i = 0; i < 10; i++) gs_yield(); /* every parked goroutine has run to its recv */
    __asm__ volatile("int3");
    for (int i = 0; i < 100; i++) {
        int v = i;
        gs_chan_send(ch, &v);
    }
}

int main(void) {
    gs_set_maxprocs(1);
    ch = gs_chan_new(sizeof(int), 0);
    for (long i = 0; i < 100; i++) {
        gs_attr a;
        gs_attr_init(&a);
        a.name = i == 3 ? "the fourth" : NULL;
        gs_spawn_with(&a, parked, (void *)i);
    }
    gs_spawn(stopper, 0);
    return gs_run() == GS_OK ? 0 : 1;
}
