/*
 * How deep ordinary C goes: the stack high-water mark of common libc work, measured on a
 * goroutine (a FIXED 8 MiB stack, which never moves) by painting the stack below the caller
 * with a pattern and finding the lowest byte the work changed. The figures chose the default
 * GROWABLE window (docs/DESIGN.md, "The default window").
 *
 *   cc -O2 -Iinclude benches/c/bench_depth.c -Ltarget/release -lgostack \
 *      -Wl,-rpath,$PWD/target/release -o /tmp/bench_depth && /tmp/bench_depth
 *
 * Prints one line per workload: its name and the bytes of stack it used (from the goroutine's
 * top: the goroutine's entry frames included, ~0.5 KiB).
 */
#define _GNU_SOURCE 1
#include <gostack.h>

#include <iconv.h>
#include <netdb.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define PAINT 0xa5

typedef void (*work_fn)(void);

static volatile uint64_t sink;

static void w_printf_ld(void) {
    char buf[256];
    snprintf(buf, sizeof buf, "%.25Le|%.3Lf|%Lg", 1e300L / 3.0L, 12345.678L, 2.5e-4000L);
    sink += (unsigned char)buf[3];
}

static void w_printf_ld_huge(void) {
    /* %Lf of 1e4000 has 4,001 digits before the point. */
    char *buf = malloc(8192);
    snprintf(buf, 8192, "%Lf", 1e4000L);
    sink += (unsigned char)buf[100];
    free(buf);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void w_qsort(void) {
    static int v[100000];
    for (int i = 0; i < 100000; i++) v[i] = (int)((i * 2654435761u) >> 7);
    qsort(v, 100000, sizeof v[0], cmp_int);
    sink += (uint64_t)v[500];
}

static void w_getaddrinfo(void) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo("localhost", "80", &hints, &res) == 0) {
        sink += (uint64_t)res->ai_family;
        freeaddrinfo(res);
    }
}

static void w_regex(void) {
    regex_t re;
    regmatch_t m[8];
    const char *pat = "^(([a-z]+)://)?([a-z0-9.-]+)(:([0-9]+))?(/[^?#]*)?(\\?[^#]*)?(#.*)?$";
    if (regcomp(&re, pat, REG_EXTENDED) == 0) {
        if (regexec(&re, "https://example.org:8443/a/b/c?x=1&y=2#frag", 8, m, 0) == 0) sink += (uint64_t)m[3].rm_so;
        regfree(&re);
    }
}

static void w_regex_backref(void) {
    regex_t re;
    if (regcomp(&re, "^(a|ab)(c|bcd)(d*)\\1\\2$", REG_EXTENDED) == 0) {
        sink += (uint64_t)regexec(&re, "abcdabcd", 0, NULL, 0);
        regfree(&re);
    }
}

static void w_iconv(void) {
    iconv_t cd = iconv_open("UTF-16LE", "UTF-8");
    if (cd == (iconv_t)-1) return;
    char in[] = "gr\xc3\xbc\xc3\x9f dich, \xe4\xb8\x96\xe7\x95\x8c, goroutines";
    char out[256];
    char *ip = in, *op = out;
    size_t il = strlen(in), ol = sizeof out;
    iconv(cd, &ip, &il, &op, &ol);
    iconv_close(cd);
    sink += (uint64_t)(sizeof out - ol);
}

static void w_strftime(void) {
    char buf[128];
    time_t t = 1700000000;
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%c %Z", &tm);
    sink += (unsigned char)buf[0];
}

/* A recursive-descent parser of nested expressions, `(1+(2*(3+...)))`, 200 levels deep. */
static const char *pp;
static long expr(void);
static long atom(void) {
    if (*pp == '(') {
        pp++;
        long v = expr();
        if (*pp == ')') pp++;
        return v;
    }
    long v = 0;
    while (*pp >= '0' && *pp <= '9') v = v * 10 + (*pp++ - '0');
    return v;
}
static long term(void) {
    long v = atom();
    while (*pp == '*') { pp++; v *= atom(); }
    return v;
}
static long expr(void) {
    long v = term();
    while (*pp == '+') { pp++; v += term(); }
    return v;
}
static void w_parser(void) {
    static char text[4096];
    int n = 0;
    for (int i = 0; i < 200; i++) n += snprintf(text + n, sizeof text - (size_t)n, "(%d+", i % 10);
    n += snprintf(text + n, sizeof text - (size_t)n, "1");
    for (int i = 0; i < 200; i++) text[n++] = ')';
    text[n] = 0;
    pp = text;
    sink += (uint64_t)expr();
}

static const struct {
    const char *name;
    work_fn fn;
} works[] = {
    {"snprintf of long doubles (%Le, %Lf, %Lg)", w_printf_ld},
    {"snprintf(\"%Lf\", 1e4000L)", w_printf_ld_huge},
    {"qsort of 100,000 ints", w_qsort},
    {"getaddrinfo(\"localhost\")", w_getaddrinfo},
    {"regcomp+regexec (URL pattern)", w_regex},
    {"regcomp+regexec (back-references)", w_regex_backref},
    {"iconv UTF-8 -> UTF-16", w_iconv},
    {"localtime_r + strftime", w_strftime},
    {"recursive-descent parser, 200 levels", w_parser},
};

static __attribute__((noinline)) void paint(uintptr_t lo, uintptr_t hi) {
    for (volatile unsigned char *p = (unsigned char *)lo; (uintptr_t)p < hi; p++) *p = PAINT;
}

static void measure(void *arg) {
    size_t i = (size_t)arg;
    gs_stack_info si;
    gs_get_stack_info(&si);
    uintptr_t sp = si.hi - si.used;
    uintptr_t lo = si.lo + 4096;
    paint(lo, sp - 512); /* paint's own frame lies in the 512 bytes below sp */
    works[i].fn();
    uintptr_t p = lo;
    while (p < sp && *(volatile unsigned char *)p == PAINT) p++;
    printf("%-45s %7zu bytes\n", works[i].name, (size_t)(si.hi - p));
}

int main(void) {
    gs_set_maxprocs(1);
    for (size_t i = 0; i < sizeof works / sizeof works[0]; i++) {
        gs_attr a;
        gs_attr_init(&a);
        a.stack_kind = GS_STACK_FIXED;
        a.stack_size = 8u << 20;
        if (gs_spawn_with(&a, measure, (void *)i) < 0) return 1;
        if (gs_run() != GS_OK) return 1;
    }
    return 0;
}
