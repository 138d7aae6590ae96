/*
 * test_bad_input: every documented bad input is refused with the documented code, and a refused
 * call has no effect (no goroutine is created, the function is never run).
 *  - NULL function / NULL out-parameters: GS_EINVAL;
 *  - bad attributes (kind, flag bits, sizes below GS_STACK_MIN or above GS_STACK_MAX, GROWABLE
 *    stack_size > max_stack_size): GS_EINVAL; the boundary values are accepted;
 *  - goroutine-only calls from main: GS_ENOTGOROUTINE; gs_self() is 0 outside;
 *  - gs_run / gs_main re-entered from inside a goroutine: GS_ESTATE (the gs_main fn never runs);
 *  - gs_strerror: a distinct non-empty string for every code, "unknown" for anything else;
 *  - gs_version: a non-empty version string.
 */
#include "gs_test.h"

#include <limits.h>

static int must_not_run;
static int ran_ok;

static void never(void *p) {
    (void)p;
    must_not_run++;
}

static void fine(void *p) {
    (void)p;
    ran_ok++;
}

static int inside_done;

static void inside(void *p) {
    (void)p;
    CHECK_RC(gs_run(), GS_ESTATE);
    CHECK_RC(gs_main(never, NULL), GS_ESTATE);
    CHECK_RC(gs_get_stack_info(NULL), GS_EINVAL);
    CHECK_RC(gs_get_stats(NULL), GS_EINVAL);
    CHECK_RC(gs_attr_init(NULL), GS_EINVAL);
    CHECK_RC(gs_spawn(NULL, NULL), GS_EINVAL);
    CHECK_RC(gs_spawn_with(NULL, NULL, NULL), GS_EINVAL);
    CHECK_RC(gs_systemstack(NULL, NULL), GS_EINVAL);
    CHECK(gs_self() > 0);
    CHECK_OK(gs_yield());
    CHECK_RC(gs_run(), GS_ESTATE); /* also after a switch */
    inside_done = 1;
}

/* gs_main's fn: re-entering the scheduler from it is refused too. */
static void main_fn(void *p) {
    (void)p;
    CHECK_RC(gs_run(), GS_ESTATE);
    CHECK_RC(gs_main(never, NULL), GS_ESTATE);
    inside_done = 2;
}

static void expect_bad_attr(const char *what, const gs_attr *a) {
    int64_t rc = gs_spawn_with(a, never, NULL);
    if (rc != GS_EINVAL) fprintf(stderr, "attribute case: %s\n", what);
    CHECK_RC(rc, GS_EINVAL);
}

static void expect_good_attr(const char *what, const gs_attr *a) {
    int64_t rc = gs_spawn_with(a, fine, NULL);
    if (rc <= 0) fprintf(stderr, "attribute case: %s\n", what);
    CHECK(rc > 0);
}

static void check_strerror(void) {
    static const int codes[] = {GS_OK,       GS_EINVAL,   GS_ENOMEM, GS_ENOTGOROUTINE,
                                GS_ECLOSED,  GS_EDEADLOCK, GS_ETIMEDOUT, GS_EAGAIN,
                                GS_EBUSY,    GS_ESTATE,   GS_EPANIC};
    static const int unknown[] = {-11, -100, 1, 42, INT_MIN, INT_MAX};
    const size_t n = sizeof codes / sizeof codes[0];

    /* the codes themselves are as documented */
    CHECK_EQ(GS_OK, 0);
    for (size_t i = 1; i < n; i++) CHECK_EQ(codes[i], -(int)i);

    for (size_t i = 0; i < n; i++) {
        const char *s = gs_strerror(codes[i]);
        CHECK(s != NULL);
        CHECK(s[0] != '\0');
        if (gs_test_contains(s, "unknown")) fprintf(stderr, "gs_strerror(%d) = \"%s\"\n", codes[i], s);
        CHECK(!gs_test_contains(s, "unknown"));
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s, gs_strerror(codes[j])) == 0)
                fprintf(stderr, "gs_strerror(%d) == gs_strerror(%d) = \"%s\"\n", codes[i], codes[j], s);
            CHECK(strcmp(s, gs_strerror(codes[j])) != 0);
        }
    }
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = gs_strerror(unknown[i]);
        CHECK(s != NULL);
        if (!gs_test_contains(s, "unknown")) fprintf(stderr, "gs_strerror(%d) = \"%s\"\n", unknown[i], s);
        CHECK(gs_test_contains(s, "unknown"));
    }
}

int main(void) {
    gs_attr a, def;
    gs_stats s0, s1, s2;
    gs_stack_info si;
    const char *v;

    gs_test_begin(100);

    check_strerror();
    v = gs_version();
    CHECK(v != NULL && v[0] != '\0');
    printf("gs_version() = \"%s\"\n", v);

    CHECK_RC(gs_attr_init(NULL), GS_EINVAL);
    CHECK_RC(gs_get_stats(NULL), GS_EINVAL);
    CHECK_OK(gs_get_stats(&s0));

    /* goroutine-only calls from main */
    CHECK_EQ(gs_self(), 0);
    CHECK_RC(gs_yield(), GS_ENOTGOROUTINE);
    CHECK_RC(gs_exit(), GS_ENOTGOROUTINE);
    CHECK_RC(gs_get_stack_info(&si), GS_ENOTGOROUTINE);

    /* NULL functions */
    CHECK_RC(gs_spawn(NULL, NULL), GS_EINVAL);
    CHECK_RC(gs_spawn(NULL, &a), GS_EINVAL);
    CHECK_RC(gs_spawn_with(NULL, NULL, NULL), GS_EINVAL);
    CHECK_RC(gs_systemstack(NULL, NULL), GS_EINVAL);
    CHECK_RC(gs_main(NULL, NULL), GS_EINVAL);

    /* defaults */
    memset(&def, 0xA5, sizeof def);
    CHECK_OK(gs_attr_init(&def));
    CHECK_EQ(def.stack_kind, GS_STACK_GROWABLE);
    CHECK_EQ(def.flags, 0);
    CHECK_RC(gs_spawn_with(&def, NULL, NULL), GS_EINVAL);

    /* bad attributes */
    a = def; a.stack_kind = 3;                          expect_bad_attr("stack_kind 3", &a);
    a = def; a.stack_kind = UINT32_MAX;                 expect_bad_attr("stack_kind UINT32_MAX", &a);
    a = def; a.flags = 4;                               expect_bad_attr("flags 4", &a);
    a = def; a.flags = GS_SPAWN_MIGRATABLE | 0x80000000u; expect_bad_attr("flags with bit 31", &a);
    a = def; a.flags = UINT32_MAX;                      expect_bad_attr("flags UINT32_MAX", &a);
    a = def; a.stack_size = 1;                          expect_bad_attr("stack_size 1", &a);
    a = def; a.stack_size = GS_STACK_MIN - 1;           expect_bad_attr("stack_size MIN-1", &a);
    a = def; a.stack_size = (size_t)GS_STACK_MAX + 1;   expect_bad_attr("stack_size MAX+1", &a);
    a = def; a.stack_size = SIZE_MAX;                   expect_bad_attr("stack_size SIZE_MAX", &a);
    a = def; a.stack_kind = GS_STACK_FIXED; a.stack_size = GS_STACK_MIN - 1;
    expect_bad_attr("FIXED stack_size MIN-1", &a);
    a = def; a.stack_kind = GS_STACK_FIXED; a.stack_size = SIZE_MAX;
    expect_bad_attr("FIXED stack_size SIZE_MAX", &a);
    a = def; a.max_stack_size = 1;                      expect_bad_attr("max_stack_size 1", &a);
    a = def; a.max_stack_size = GS_STACK_MIN - 1;       expect_bad_attr("max_stack_size MIN-1", &a);
    a = def; a.max_stack_size = (size_t)GS_STACK_MAX + 1; expect_bad_attr("max_stack_size MAX+1", &a);
    a = def; a.max_stack_size = SIZE_MAX;               expect_bad_attr("max_stack_size SIZE_MAX", &a);
    a = def; a.stack_kind = GS_STACK_FIXED; a.stack_size = 64 * 1024; a.max_stack_size = 1;
    expect_bad_attr("FIXED with max_stack_size 1", &a);
    a = def; a.stack_size = 1024 * 1024; a.max_stack_size = 512 * 1024;
    expect_bad_attr("GROWABLE stack_size > max_stack_size", &a);
    a = def; a.stack_size = GS_STACK_MIN + 4096; a.max_stack_size = GS_STACK_MIN;
    expect_bad_attr("GROWABLE stack_size MIN+4096 > max_stack_size MIN", &a);

    /* nothing was created by the refused calls */
    CHECK_OK(gs_get_stats(&s1));
    CHECK_EQ(s1.goroutines_total, s0.goroutines_total);
    CHECK_EQ(s1.goroutines_live, s0.goroutines_live);

    /* boundary values and the documented exceptions are accepted */
    expect_good_attr("attr NULL = defaults", NULL);
    expect_good_attr("defaults from gs_attr_init", &def);
    a = def; a.stack_size = GS_STACK_MIN;               expect_good_attr("stack_size MIN", &a);
    a = def; a.stack_kind = GS_STACK_FIXED; a.stack_size = GS_STACK_MIN;
    expect_good_attr("FIXED stack_size MIN", &a);
    a = def; a.stack_size = GS_STACK_MIN; a.max_stack_size = GS_STACK_MIN;
    expect_good_attr("stack_size == max_stack_size == MIN", &a);
    a = def; a.max_stack_size = GS_STACK_MAX;           expect_good_attr("max_stack_size MAX", &a);
    a = def; a.stack_size = 64 * 1024; a.max_stack_size = 64 * 1024;
    expect_good_attr("GROWABLE stack_size == max_stack_size", &a);
    a = def; a.stack_kind = GS_STACK_FIXED; a.stack_size = 128 * 1024; a.max_stack_size = 64 * 1024;
    expect_good_attr("FIXED ignores stack_size > max_stack_size", &a);
    a = def; a.flags = GS_SPAWN_MIGRATABLE;             expect_good_attr("flags MIGRATABLE", &a);
    a = def; a.flags = GS_SPAWN_MIGRATABLE | GS_SPAWN_NOMOVE; expect_good_attr("flags MIGRATABLE|NOMOVE", &a);
    a = def; a.name = "named goroutine";               expect_good_attr("name", &a);
    CHECK_ID(gs_spawn(inside, NULL));

    CHECK_OK(gs_run());
    CHECK_EQ(must_not_run, 0);
    CHECK_EQ(ran_ok, 11);
    CHECK_EQ(inside_done, 1);
    CHECK_OK(gs_get_stats(&s2));
    CHECK_EQ(s2.goroutines_total - s0.goroutines_total, 12);
    CHECK_EQ(s2.goroutines_live, 0);

    CHECK_OK(gs_main(main_fn, NULL));
    CHECK_EQ(inside_done, 2);
    CHECK_EQ(must_not_run, 0);

    /* still refused after the runtime has run */
    CHECK_EQ(gs_self(), 0);
    CHECK_RC(gs_yield(), GS_ENOTGOROUTINE);
    CHECK_RC(gs_exit(), GS_ENOTGOROUTINE);
    CHECK_RC(gs_get_stack_info(&si), GS_ENOTGOROUTINE);
    printf("ok: bad inputs refused\n");
    return 0;
}
