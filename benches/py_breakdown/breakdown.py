"""Breakdown of a parked Python goroutine's memory (issue 16): RSS, page tables, C stack pages
(mincore over each goroutine's stack), data-stack chunk pages (arena allocator spy), and the rest.

Usage: breakdown.py [N] [chunkspy.so]; see run.sh. With copy-stack goroutines the C stack line
counts the one shared stack N times: read RSS and the rest instead."""
import array, ctypes, gc, os, sys
import gostack

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
spy = ctypes.CDLL(sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "build", "chunkspy.so"))
spy.spy_range_pages.argtypes = [ctypes.c_ulong, ctypes.c_ulong]
spy.spy_range_pages.restype = ctypes.c_long
spy.spy_chunk_pages.restype = ctypes.c_long
spy.spy_chunks.restype = ctypes.c_long
lib = ctypes.CDLL(gostack.library_path)

class Info(ctypes.Structure):
    _fields_ = [("lo", ctypes.c_size_t), ("hi", ctypes.c_size_t), ("size", ctypes.c_size_t),
                ("used", ctypes.c_size_t), ("kind", ctypes.c_uint32), ("grows", ctypes.c_uint64),
                ("shrinks", ctypes.c_uint64)]

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

def pte():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmPTE:"):
                return int(line.split()[1]) * 1024

gostack.go(lambda: None); gostack.run()          # installs gostack's chunk cache
spy.spy_install()                                 # then ours around it
his = array.array("Q", [0] * N); used = array.array("Q", [0] * N)
out = []
info = Info()

def parked(i):
    lib.gs_get_stack_info(ctypes.byref(info))
    his[i] = info.hi; used[i] = info.used
    gostack.sleep(0.5)

def measure():
    out.append((rss(), pte(), spy.spy_chunk_pages(), spy.spy_chunks(),
                sum(spy.spy_range_pages(h - (1 << 20), h) for h in his)))

gc.collect()
r0, p0, c0 = rss(), pte(), spy.spy_chunk_pages()
for i in range(N):
    gostack.go(parked, i)
gostack.go(measure)
gostack.run()
r1, p1, c1, nch, spages = out[0]
print(f"N={N} python {sys.version.split()[0]}")
print(f"RSS per parked goroutine            {(r1 - r0) / N:8.0f} B")
print(f"page tables (VmPTE, not in RSS)     {(p1 - p0) / N:8.0f} B")
print(f"C stack pages (mincore, top 1 MiB)  {spages * 4096 / N:8.0f} B   (gs_get_stack_info used at the call: {sum(used) / N:.0f} B)")
print(f"data-stack chunk pages (16 KiB)     {(c1 - c0) * 4096 / N:8.0f} B   ({nch} chunks live)")
print(f"rest (thread state, objects, G)     {(r1 - r0 - spages * 4096 - (c1 - c0) * 4096) / N:8.0f} B")
