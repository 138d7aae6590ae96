/*
 * test_stack_grow_deep: a GROWABLE goroutine recursing from the smallest reservation (8 KiB) to
 * more than 64 MiB of stack, by guard faults only (plain C, no checks). Every frame holds a
 * pointer to its parent's local array and a pointer to its own array; on the way back up each
 * frame checks that its pointers point at the (moved) arrays, that the arrays hold what was written
 * and that the parent's marker is reachable through the pointer. gs_get_stack_info at the bottom
 * shows a stack of more than 64 MiB and grows >= 13; gs_stats counts the grows.
 * A second goroutine does the same with explicit GS_STACK_CHECK calls in every frame (the
 * synchronous path: no guard faults needed).
 */
#include "gs_test.h"

#define FRAME_WORDS 120 /* ~1 KiB of locals per frame */

typedef struct frame {
    struct frame *parent;
    struct frame *self;
    uint64_t depth;
    uint64_t words[FRAME_WORDS];
} frame;

static size_t target_bytes;
static int use_check;
static gs_stack_info bottom;
static uint64_t frames_checked;

static GS_TEST_NOINLINE uint64_t recurse(frame *parent, uint64_t depth) {
    frame f;
    uint64_t sum = 0;
    gs_stack_info si;
    if (use_check) CHECK_OK(GS_STACK_CHECK(sizeof f + 512));
    f.parent = parent;
    f.self = &f;
    f.depth = depth;
    for (int i = 0; i < FRAME_WORDS; i++) f.words[i] = depth * 1000003u + (uint64_t)i;
    if (depth % 4096 == 0 || depth < 4) {
        CHECK_OK(gs_get_stack_info(&si));
        if (si.used < target_bytes) sum = recurse(&f, depth + 1);
        else {
            bottom = si;
            sum = 0;
        }
    } else {
        sum = recurse(&f, depth + 1);
    }
    /* The way back up: our own pointers moved with us, the parent's too. */
    CHECK(f.self == &f);
    CHECK_EQ(f.depth, depth);
    CHECK(f.parent == parent);
    if (parent != NULL) {
        CHECK(parent->self == parent);
        CHECK_EQ(parent->depth, depth - 1);
        CHECK(f.parent->words[7] == (depth - 1) * 1000003u + 7);
    }
    for (int i = 0; i < FRAME_WORDS; i++) CHECK_EQ(f.words[i], depth * 1000003u + (uint64_t)i);
    frames_checked++;
    return sum + f.words[FRAME_WORDS - 1];
}

static void deep(void *arg) {
    gs_stack_info si0, si1;
    gs_stats st0, st1;
    (void)arg;
    CHECK_OK(gs_get_stack_info(&si0));
    CHECK_EQ(si0.kind, GS_STACK_GROWABLE);
    CHECK_EQ(si0.size, 8192);
    CHECK_OK(gs_get_stats(&st0));
    frames_checked = 0;
    (void)recurse(NULL, 0);
    CHECK_OK(gs_get_stack_info(&si1));
    CHECK_OK(gs_get_stats(&st1));
    CHECK(bottom.size >= target_bytes);
    CHECK(bottom.used >= target_bytes);
    CHECK(bottom.grows >= 13);
    CHECK(si1.grows >= 13);
    CHECK(st1.stack_grows - st0.stack_grows >= 13);
    CHECK(frames_checked > target_bytes / (2 * sizeof(frame))); /* frames are ~1.1 KiB */
    printf("ok: %s: %" PRIu64 " frames, bottom used %zu of %zu bytes after %" PRIu64 " grows\n",
           use_check ? "GS_STACK_CHECK" : "guard faults", frames_checked, bottom.used, bottom.size,
           bottom.grows);
}

int main(void) {
    gs_attr a;
    gs_test_begin(100);
    target_bytes = 65u << 20;
    CHECK_OK(gs_attr_init(&a));
    a.stack_size = 8192;
    use_check = 0;
    CHECK_ID(gs_spawn_with(&a, deep, NULL));
    CHECK_OK(gs_run());
    use_check = 1;
    CHECK_ID(gs_spawn_with(&a, deep, NULL));
    CHECK_OK(gs_run());
    return 0;
}
