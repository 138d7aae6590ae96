/* Measurement helper (not shipped): wraps CPython's arena allocator to record 16 KiB data-stack
 * chunks, and counts resident pages of recorded chunks and of given address ranges (mincore). */
#define _GNU_SOURCE
#include <Python.h>
#include <sys/mman.h>
#include <unistd.h>
static PyObjectArenaAllocator inner;
static void *chunks[2000000];
static long nchunks;
static void *spy_alloc(void *ctx, size_t size) {
    (void)ctx;
    void *p = inner.alloc(inner.ctx, size);
    if (size == 16384 && p && nchunks < 2000000) chunks[nchunks++] = p;
    return p;
}
static void spy_free(void *ctx, void *p, size_t size) {
    (void)ctx;
    for (long i = nchunks - 1; i >= 0 && i >= nchunks - 64; i--) if (chunks[i] == p) { chunks[i] = NULL; break; }
    inner.free(inner.ctx, p, size);
}
void spy_install(void) {
    PyObject_GetArenaAllocator(&inner);
    PyObjectArenaAllocator ours = { NULL, spy_alloc, spy_free };
    PyObject_SetArenaAllocator(&ours);
}
static long resident(unsigned long lo, unsigned long hi) {
    static unsigned char vec[1 << 16];
    long n = 0;
    lo &= ~4095UL;
    for (unsigned long a = lo; a < hi; a += 4096UL * sizeof vec) {
        unsigned long end = a + 4096UL * sizeof vec < hi ? a + 4096UL * sizeof vec : hi;
        size_t pages = (end - a + 4095) / 4096;
        if (mincore((void *)a, end - a, vec) != 0) return -1;
        for (size_t i = 0; i < pages; i++) n += vec[i] & 1;
    }
    return n;
}
long spy_chunk_pages(void) {
    long n = 0;
    for (long i = 0; i < nchunks; i++) if (chunks[i]) n += resident((unsigned long)chunks[i], (unsigned long)chunks[i] + 16384);
    return n;
}
long spy_chunks(void) { long n = 0; for (long i = 0; i < nchunks; i++) n += chunks[i] != NULL; return n; }
long spy_range_pages(unsigned long lo, unsigned long hi) { return resident(lo, hi); }
