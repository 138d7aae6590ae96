/*
 * test_spawn_nested: goroutines spawning goroutines.
 *  - a ternary tree 7 levels deep (1,093 goroutines), every node spawned by its parent from inside
 *    the parent goroutine (odd nodes with a FIXED stack), parents yield between spawns: every node
 *    runs exactly once, after its parent, receives its own arg, and sees the id gs_spawn returned;
 *  - a chain of 10,000 goroutines where each one spawns its successor and returns at once;
 *  - goroutines_total grows by exactly the number spawned and goroutines_live returns to 0.
 */
#include "gs_test.h"

#define FANOUT 3
#define LEVELS 7
#define NODES 1093 /* (3^7 - 1) / 2 */
#define CHAIN 10000

typedef struct {
    int index;
    int level;
    int runs;
    int64_t spawned_id; /* what gs_spawn returned to the parent */
    int64_t self_id;    /* what gs_self said inside */
} node;

static node nodes[NODES];
static int run_order[NODES];
static int run_count;

static void node_fn(void *p) {
    node *n = p;
    CHECK(n >= nodes && n < nodes + NODES);
    n->runs++;
    n->self_id = gs_self();
    run_order[run_count++] = n->index;
    if (n->index > 0) CHECK_EQ(nodes[(n->index - 1) / FANOUT].runs, 1); /* parent ran first */
    if (n->level + 1 >= LEVELS) return;
    for (int c = 1; c <= FANOUT; c++) {
        node *child = &nodes[FANOUT * n->index + c];
        child->index = FANOUT * n->index + c;
        child->level = n->level + 1;
        if (child->index % 2 == 1) {
            gs_attr a;
            CHECK_OK(gs_attr_init(&a));
            a.stack_kind = GS_STACK_FIXED;
            a.stack_size = 64 * 1024;
            child->spawned_id = CHECK_ID(gs_spawn_with(&a, node_fn, child));
        } else {
            child->spawned_id = CHECK_ID(gs_spawn(node_fn, child));
        }
        CHECK_OK(gs_yield());
    }
}

static int chain_runs[CHAIN];

static void chain_fn(void *p) {
    intptr_t i = (intptr_t)p;
    CHECK(i >= 0 && i < CHAIN);
    chain_runs[i]++;
    if (i + 1 < CHAIN) CHECK_ID(gs_spawn(chain_fn, (void *)(i + 1)));
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(void) {
    gs_stats s0, s1, s2;
    int64_t ids[NODES];

    gs_test_begin(100);
    CHECK_OK(gs_get_stats(&s0));

    nodes[0].index = 0;
    nodes[0].level = 0;
    nodes[0].spawned_id = CHECK_ID(gs_spawn(node_fn, &nodes[0]));
    CHECK_OK(gs_run());
    CHECK_OK(gs_get_stats(&s1));

    CHECK_EQ(run_count, NODES);
    for (int i = 0; i < NODES; i++) {
        if (nodes[i].runs != 1) fprintf(stderr, "node %d ran %d times\n", i, nodes[i].runs);
        CHECK_EQ(nodes[i].runs, 1);
        CHECK_EQ(nodes[i].index, i);
        CHECK_EQ(nodes[i].self_id, nodes[i].spawned_id);
        ids[i] = nodes[i].self_id;
    }
    qsort(ids, NODES, sizeof ids[0], cmp_i64);
    for (int i = 1; i < NODES; i++) CHECK(ids[i] != ids[i - 1]);
    CHECK_EQ(s1.goroutines_total - s0.goroutines_total, NODES);
    CHECK_EQ(s1.goroutines_live, 0);
    printf("ok: tree of %d goroutines, each ran once after its parent\n", NODES);

    CHECK_ID(gs_spawn(chain_fn, (void *)(intptr_t)0));
    CHECK_OK(gs_run());
    CHECK_OK(gs_get_stats(&s2));
    for (int i = 0; i < CHAIN; i++) CHECK_EQ(chain_runs[i], 1);
    CHECK_EQ(s2.goroutines_total - s1.goroutines_total, CHAIN);
    CHECK_EQ(s2.goroutines_live, 0);
    printf("ok: chain of %d goroutines, each spawning the next\n", CHAIN);
    return 0;
}
