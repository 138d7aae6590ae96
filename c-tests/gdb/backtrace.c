/* Run under gdb by tests/c_tests.rs (gdb_backtraces_end_at_the_trampolines): stops (int3) inside a
 * goroutine three calls deep and inside a gs_systemstack function. The backtraces must end cleanly
 * at gs_asm_goexit and gs_asm_systemstack (their CFI marks the return address undefined). */
#include "gostack.h"

__attribute__((noinline)) static void leaf(int depth) {
    if (depth == 0) {
        __asm__ volatile("int3");
        return;
    }
    leaf(depth - 1);
    __asm__ volatile("");
}
static void body(void *arg) { (void)arg; leaf(3); }
static void on_system_stack(void *arg) { (void)arg; __asm__ volatile("int3"); }
static void uses_system_stack(void *arg) { (void)arg; gs_systemstack(on_system_stack, 0); }

int main(void) {
    gs_set_maxprocs(1);
    gs_spawn(body, 0);
    gs_spawn(uses_system_stack, 0);
    return gs_run();
}
