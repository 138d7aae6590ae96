"""Breakdown of a parked Python goroutine's memory (issue 16): RSS, page tables, C stack pages
(mincore over each goroutine's stack), data-stack chunk pages (arena allocator spy), and the rest.

Usage: breakdown.py [N] [chunkspy.so]; see run.sh. Copy-stack goroutines (the default since
issue 16) share one stack per thread: their C stack is the save area (the live part at the park,
copied to the heap), estimated by gs_get_stack_info's `used` at a call at about the same depth;
FIXED ones (GOSTACK_PY_STACK=fixed) are measured with mincore."""
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
his = array.array("Q", [0] * N); used = array.array("Q", [0] * N); kinds = set()
out = []
info = Info()

def parked(i):
    lib.gs_get_stack_info(ctypes.byref(info))
    his[i] = info.hi; used[i] = info.used; kinds.add(info.kind)
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
copy = kinds == {2}
if copy:
    cstack = sum(used) / N
    print(f"C stack save areas (COPY kind)      {cstack:8.0f} B   (gs_get_stack_info used at a ctypes call at the park's depth: an upper bound; the park goes through gs_py_fastcalls, ~800 B less: gdb)")
else:
    cstack = spages * 4096 / N
    print(f"C stack pages (mincore, top 1 MiB)  {cstack:8.0f} B   (gs_get_stack_info used at the call: {sum(used) / N:.0f} B)")
print(f"data-stack chunk pages (16 KiB)     {(c1 - c0) * 4096 / N:8.0f} B   ({nch} chunks live)")
print(f"rest (thread state, objects, G)     {(r1 - r0) / N - cstack - (c1 - c0) * 4096 / N:8.0f} B")
