"""Runs gostack's benchmarks and their Go, Boost.Context, greenlet and asyncio counterparts in one
session and prints a side-by-side table: min / median / max per measure and the ratio of the
medians gostack / rival (below 1: gostack is faster or smaller). Called by run.sh, which builds
everything first; see benches/compare/README.md.

Every program prints "raw<TAB>name<TAB>value" lines, one per repetition (gostack's own programs do
so with BENCH_RAW=1). Throughput measures repeat in one process (gostack's programs: 11 runs);
memory and first-run growth repeat in separate processes.
"""

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "benches" / "compare" / "build"
# gostack's default window of a GROWABLE stack, read from the source that sets it.
_m = re.search(r"pub const DEFAULT_WINDOW: usize = (\d+) \* 1024;", (ROOT / "src/stack/mod.rs").read_text())
if _m is None:
    sys.exit("compare.py: DEFAULT_WINDOW (N * 1024) not found in src/stack/mod.rs")
INITIAL = int(_m.group(1)) * 1024


def gs_grow(to, when, how):
    """bench_growth's name for a growth row: from the default initial size to `to`."""
    return ("gs", f"grow {INITIAL // 1024} KiB -> {to}, {when} ({how})")


def sh(cmd, env=None, quiet=False):
    e = dict(os.environ)
    e.update(env or {})
    if not quiet:
        print("  $ " + " ".join(f"{k}={v}" for k, v in (env or {}).items()) + (" " if env else "") + " ".join(cmd),
              file=sys.stderr, flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=e, check=True, capture_output=True, text=True).stdout


def raw(cmd, env=None, rename=None):
    """Runs cmd; returns {name: [values]} from its raw lines (a bare number counts as 'value')."""
    out = {}
    for line in sh(cmd, env).splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] == "raw":
            name, v = parts[1], float(parts[2])
        else:
            try:
                name, v = "value", float(line)
            except ValueError:
                continue
        out.setdefault((rename or {}).get(name, name), []).append(v)
    return out


def processes(cmd, reps, env=None, scale=1.0):
    """Runs cmd reps times (fresh processes); returns the values it printed, / scale."""
    vals = []
    for _ in range(reps):
        for vs in raw(cmd, env).values():
            vals += [v / scale for v in vs]
    return vals


def measure(reps):
    b = str(BUILD)
    gs1 = {"GOSTACK_MAXPROCS": "1"}
    R = {}  # (source, name) -> values

    def put(src, d):
        for k, v in d.items():
            R[(src, k)] = v

    print("gostack (C, Rust benches)", file=sys.stderr)
    put("gs", raw(["cargo", "bench", "--quiet", "--bench", "switch", "--", "raw"], {"BENCH_RAW": "1"}))
    put("gs", raw([f"{b}/bench_c"], {"BENCH_RAW": "1"}))
    for p in (1, 2):
        put(f"gs P={p}", raw([f"{b}/bench_sync"], {"BENCH_RAW": "1", "GOSTACK_MAXPROCS": str(p)}))
    R[("gs", "spawnall")] = processes([f"{b}/spawn_all", "1000000"], reps, gs1)
    R[("gs", "parked")] = processes([f"{b}/bench_growth", "child", "parked", "1000000", str(INITIAL)], reps, gs1)
    # GS_STACK_COPY (issue #16): the same program with copy-stack goroutines, and yields against
    # live depth beside the GROWABLE kind (one process, alternating runs).
    copy = {**gs1, "GOSTACK_STACK_KIND": "copy"}
    R[("gs copy", "parked")] = processes([f"{b}/bench_growth", "child", "parked", "1000000", str(INITIAL)], reps, copy)
    put("gs", raw([f"{b}/bench_copy"], {"BENCH_RAW": "1", **gs1}))
    put("gs", raw([f"{b}/bench_growth", "grow", "warm"], {"BENCH_RAW": "1", **gs1}))  # first runs: below
    put("gs", raw([f"{b}/bench_growth", "many", str(INITIAL)], {"BENCH_RAW": "1", **gs1}))

    print("Go", file=sys.stderr)
    go = f"{b}/compare-go"
    put("go", raw([go, "yield", "1000000", "11"]))
    for p in (1, 2):
        put("go", raw([go, "pingpong", str(p), "200000", "11"]))
    put("go", raw([go, "spawn", "200000", "11"]))
    R[("go", "spawnall")] = processes([go, "spawnall", "1000000"], reps)
    R[("go", "parked")] = processes([go, "parked", "1000000"], reps)
    # First-run growth: one fresh process per value, gostack (faults, checks) and Go taking turns
    # in a rotating order, 36 each. On this VM, touching fresh memory is now and then 5-30x
    # slower than usual (bench_touch: 192 MiB in ~8 ms, up to 417 ms; see docs/PERFORMANCE.md),
    # and which process meets it depends on what ran before: a fixed order with 5 values let it
    # decide the 64 MiB medians, and 12 values still left them to chance.
    for size, label, n in ((1 << 20, "1 MiB", 36), (64 << 20, "64 MiB", 36)):
        runs = [(("go", f"grow {size >> 20}M"), [go, "grow", str(size)], None, 1.0)]
        for check, how in ((0, "guard faults"), (1, "GS_STACK_CHECK")):
            runs.append((gs_grow(label, "first run", how),
                         [f"{b}/bench_growth", "child", "grow", str(size), str(check)], gs1, 1e6))
        for key, *_ in runs:
            R[key] = []
        for i in range(n):
            for key, cmd, env, scale in runs[i % 3:] + runs[:i % 3]:
                R[key] += processes(cmd, 1, env, scale)
    put("go", raw([go, "growwarm", str(1 << 20), "11"]))
    put("go", raw([go, "growwarm", str(64 << 20), "5"]))
    put("go", raw([go, "many", "100000", str(60 * 1024), str(reps)]))

    print("Boost.Context", file=sys.stderr)
    put("boost", raw([f"{b}/bench_boost", "11"]))

    print("Python", file=sys.stderr)
    py = [sys.executable, "benches/compare/py_bench.py"]
    for lib in ("gostack", "greenlet", "asyncio"):
        for work in ("yield", "spawn", "pingpong"):
            if not (work == "pingpong" and lib == "greenlet"):
                put(f"py {lib}", raw(py + [work, lib, str(reps)]))
        R[(f"py {lib}", "py parked")] = processes(py + ["parked", lib, "1"], reps)
    R.update(measure_echo(reps))
    return R


#: TCP echo (issue #13): connections, round trips each (64 bytes).
ECHO_CONNS, ECHO_ROUNDS = 1000, 200


def measure_echo(reps):
    """TCP echo on loopback, in turns: gostack C and Go at P=1 and P=2, then Python gostack,
    asyncio and uvloop (if it imports), one process each per repetition, round trips per second."""
    b = str(BUILD)
    R = {}
    c, r = str(ECHO_CONNS), str(ECHO_ROUNDS)
    py = [sys.executable, "benches/compare/py_echo.py"]
    libs = ["gostack", "asyncio"]
    if subprocess.run([sys.executable, "-c", "import uvloop"], capture_output=True).returncode == 0:
        libs.append("uvloop")
    print(f"TCP echo ({c} connections x {r} round trips), {reps} turns", file=sys.stderr)
    for _ in range(reps):
        for p in (1, 2):
            for src, cmd, env in ((f"gs P={p}", [f"{b}/bench_echo", c, r, "1"], {"BENCH_RAW": "1", "GOSTACK_MAXPROCS": str(p)}),
                                  ("go", [f"{b}/compare-go", "echo", str(p), c, r, "1"], None)):
                for k, v in raw(cmd, env).items():
                    R.setdefault((src, k), []).extend(v)
        for lib in libs:
            for k, v in raw(py + [lib, c, r, "1"], {"PYTHONPATH": "python"}).items():
                R.setdefault((f"py {lib}", k), []).extend(v)
    return R


def sched_procs():
    """P counts for the scheduler rows: 1, 2 and, on a machine with 16 CPUs or more, 16."""
    return [1, 2] + ([16] if (os.cpu_count() or 1) >= 16 else [])


def measure_sched(reps, rt):
    """Issue 21: thread-ring, cross-thread ping-pong and fan-out, gostack (default pinning and
    GOSTACK_MIGRATE=1) and Go, one process per value, the programs taking turns. `rt`: run
    under `chrt -f 50` (SCHED_FIFO: the other programs on a shared machine do not preempt)."""
    b = str(BUILD)
    pre = ["chrt", "-f", "50"] if rt else []
    go = [*pre, f"{b}/compare-go"]
    gs = [*pre, f"{b}/sched_bench"]
    R = {}
    runs = []
    for p in sched_procs():
        env = {"GOSTACK_MAXPROCS": str(p)}
        runs.append(((f"gs", f"threadring P={p}"), gs + ["threadring", "5000000"], env))
        runs.append(((f"gs", f"threadring P={p} migrate"), gs + ["threadring", "5000000"], {**env, "GOSTACK_MIGRATE": "1"}))
        runs.append((("go", f"threadring P={p}"), go + ["threadring", str(p), "5000000"], None))
        runs.append((("gs", f"fanout P={p}"), gs + ["fanout", "8", "20"], env))
        runs.append((("gs", f"fanout P={p} migrate"), gs + ["fanout", "8", "20"], {**env, "GOSTACK_MIGRATE": "1"}))
        runs.append((("go", f"fanout P={p}"), go + ["fanout", str(p), "8", "20"], None))
    runs.append((("gs", "xpingpong P=2"), gs + ["xpingpong", "200000"], {"GOSTACK_MAXPROCS": "2"}))
    runs.append((("gs", "xpingpong P=2 migrate"), gs + ["xpingpong", "200000"], {"GOSTACK_MAXPROCS": "2", "GOSTACK_MIGRATE": "1"}))
    runs.append((("go", "xpingpong P=2"), go + ["xpingpong", "100000"], None))
    for key, *_ in runs:
        R[key] = []
    for i in range(reps):
        k = i % len(runs)
        for key, cmd, env in runs[k:] + runs[:k]:
            R[key] += processes(cmd, 1, env)
    return R


def sched_rows():
    rows = []
    for p in sched_procs():
        rows.append((f"thread-ring P={p}, per hop", "ns", ("gs", f"threadring P={p}"), [("Go", ("go", f"threadring P={p}"))]))
        rows.append((f"thread-ring P={p}, per hop (GOSTACK_MIGRATE=1)", "ns", ("gs", f"threadring P={p} migrate"),
                     [("Go", ("go", f"threadring P={p}"))]))
    rows.append(("cross-thread ping-pong P=2, round trip", "ns", ("gs", "xpingpong P=2"), [("Go", ("go", "xpingpong P=2"))]))
    rows.append(("cross-thread ping-pong P=2, round trip (GOSTACK_MIGRATE=1)", "ns", ("gs", "xpingpong P=2 migrate"),
                 [("Go", ("go", "xpingpong P=2"))]))
    for p in sched_procs():
        rows.append((f"fan-out 8 CPU-bound x 20 ms, P={p}", "s", ("gs", f"fanout P={p}"), [("Go", ("go", f"fanout P={p}"))]))
        rows.append((f"fan-out 8 CPU-bound x 20 ms, P={p} (GOSTACK_MIGRATE=1)", "s", ("gs", f"fanout P={p} migrate"),
                     [("Go", ("go", f"fanout P={p}"))]))
    return rows


def speedups(R):
    """Fan-out speed-up over P=1 (median / median), per program."""
    out = []
    for label, src, tag in (("gostack", "gs", ""), ("gostack GOSTACK_MIGRATE=1", "gs", " migrate"), ("Go", "go", "")):
        one = R.get((src, f"fanout P=1{tag}"))
        for p in sched_procs()[1:]:
            v = R.get((src, f"fanout P={p}{tag}"))
            if one and v:
                out.append(f"fan-out speed-up P={p} over P=1, {label}: {statistics.median(one) / statistics.median(v):.2f}x")
    return out


# (workload, unit, gostack (source, name), [(rival label, (source, name))])
ROWS = [
    ("switch round trip (mcall+gogo / jump_fcontext)", "ns", ("gs", "mcall+gogo round trip (g->g0->g)"),
     [("Boost", ("boost", "switch"))]),
    ("switch round trip (raw gs_asm_swap)", "ns", ("gs", "raw swap round trip (A->B->A)"),
     [("Boost", ("boost", "switch"))]),
    ("yield between 2, P=1, per switch", "ns", ("gs", "gs_yield between 2 goroutines, per switch"),
     [("Go", ("go", "yield"))]),
    ("unbuffered ping-pong P=1, round trip", "ns", ("gs P=1", "unbuffered ping-pong, per round trip"),
     [("Go", ("go", "pingpong P=1"))]),
    ("unbuffered ping-pong P=2, round trip", "ns", ("gs P=2", "unbuffered ping-pong, per round trip"),
     [("Go", ("go", "pingpong P=2"))]),
    ("spawn+run+exit, steady (batches of 1,000)", "ns", ("gs", "spawn+run+exit per goroutine (from main)"),
     [("Go", ("go", "spawn")), ("Boost", ("boost", "spawn"))]),
    ("spawn+run+exit, 1,000,000 at once", "ns", ("gs", "spawnall"), [("Go", ("go", "spawnall"))]),
    ("memory per parked goroutine (1M, RSS+PTE)", "B", ("gs", "parked"), [("Go", ("go", "parked"))]),
    ("memory per parked goroutine, GS_STACK_COPY (1M, RSS+PTE)", "B", ("gs copy", "parked"),
     [("Go", ("go", "parked")), ("GROWABLE", ("gs", "parked"))]),
    *[(f"yield round trip, GS_STACK_COPY, {d} B live", "ns", ("gs", f"yield round trip, copy, live {d} B"),
       [("GROWABLE", ("gs", f"yield round trip, growable, live {d} B"))]) for d in (256, 1024, 4096, 16384)],
    ("grow to 1 MiB, first run (faults)", "ms", gs_grow("1 MiB", "first run", "guard faults"),
     [("Go", ("go", "grow 1M"))]),
    ("grow to 1 MiB, first run (GS_STACK_CHECK)", "ms", gs_grow("1 MiB", "first run", "GS_STACK_CHECK"),
     [("Go", ("go", "grow 1M"))]),
    ("grow to 64 MiB, first run (faults)", "ms", gs_grow("64 MiB", "first run", "guard faults"),
     [("Go", ("go", "grow 64M"))]),
    ("grow to 64 MiB, first run (GS_STACK_CHECK)", "ms",
     gs_grow("64 MiB", "first run", "GS_STACK_CHECK"), [("Go", ("go", "grow 64M"))]),
    ("grow to 1 MiB, warm (faults)", "ms", gs_grow("1 MiB", "warm", "guard faults"),
     [("Go", ("go", f"growwarm {1 << 20}"))]),
    ("grow to 64 MiB, warm (faults)", "ms", gs_grow("64 MiB", "warm", "guard faults"),
     [("Go", ("go", f"growwarm {64 << 20}"))]),
    ("100k goroutines x grow to 64 KiB (faults)", "s", ("gs", f"100k goroutines x grow to 64 KiB, initial {INITIAL // 1024} KiB"),
     [("Go", ("go", "many"))]),
    ("100k goroutines x grow to 64 KiB (GS_STACK_CHECK)", "s",
     ("gs", f"100k goroutines x grow to 64 KiB, initial {INITIAL // 1024} KiB (checks)"), [("Go", ("go", "many"))]),
    ("Python: yield round trip", "ns", ("py gostack", "py yield"),
     [("greenlet", ("py greenlet", "py yield")), ("asyncio", ("py asyncio", "py yield"))]),
    ("Python: channel ping-pong", "ns", ("py gostack", "py pingpong"), [("asyncio", ("py asyncio", "py pingpong"))]),
    ("Python: spawn + run to end", "ns", ("py gostack", "py spawn"),
     [("greenlet", ("py greenlet", "py spawn")), ("asyncio", ("py asyncio", "py spawn"))]),
    ("Python: memory per parked (10k, RSS)", "B", ("py gostack", "py parked"),
     [("greenlet", ("py greenlet", "py parked")), ("asyncio", ("py asyncio", "py parked"))]),
] + [
    # Issue #13: higher is better here (round trips per second): a ratio above 1 favours gostack.
    ("TCP echo P=1 (1000 conns x 200, 64 B)", "rt/s", ("gs P=1", "echo"), [("Go", ("go", "echo P=1"))]),
    ("TCP echo P=2 (1000 conns x 200, 64 B)", "rt/s", ("gs P=2", "echo"), [("Go", ("go", "echo P=2"))]),
    ("Python: TCP echo (1000 conns x 200, 64 B)", "rt/s", ("py gostack", "py echo"),
     [("asyncio", ("py asyncio", "py echo")), ("uvloop", ("py uvloop", "py echo"))]),
]
ECHO_ROWS = ROWS[-3:]


def stats(v):
    return min(v), statistics.median(v), max(v), len(v)


def fmt(x):
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def cell(v):
    lo, med, hi, n = stats(v)
    return f"{fmt(med)} ({fmt(lo)}–{fmt(hi)})"


def table(R, rows_def=None):
    rows = []
    for work, unit, gk, rivals in rows_def or ROWS:
        g = R.get(gk)
        for label, rk in rivals:
            r = R.get(rk)
            if not g or not r:
                rows.append((work, unit, cell(g) if g else "n/a", label, cell(r) if r else "n/a", None))
                continue
            ratio = statistics.median(g) / statistics.median(r) if statistics.median(r) > 0 else None
            rows.append((work, unit, cell(g), label, cell(r), ratio))
    return rows


def versions():
    v = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    v["machine"] = f"{cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}"
    v["load"] = " ".join(open("/proc/loadavg").read().split()[:3])
    v["go"] = sh(["go", "version"], quiet=True).strip()
    boost = BUILD / "bench_boost"
    v["boost"] = ("Boost " + sh([str(boost), "1", "version"], quiet=True).strip()) if boost.exists() else "not built"
    v["python"] = sh([sys.executable, "benches/compare/py_bench.py", "versions", "-"], quiet=True).strip()
    v["gcc"] = sh(["cc", "--version"], quiet=True).splitlines()[0]
    v["rustc"] = sh(["rustc", "--version"], quiet=True).strip()
    v["gostack"] = "gostack " + sh(["git", "rev-parse", "--short", "HEAD"], quiet=True).strip()
    return v


def markdown(rows, v, reps, how="bash benches/compare/run.sh"):
    out = [f"- Run of `{how}`, {v['date']} (load average at start {v['load']}).",
           f"- Machine: {v['machine']}.",
           f"- Versions: {v['gostack']}, {v['rustc']}, {v['gcc']}, {v['go']}, {v['boost']}, {v['python']}.",
           "",
           "| workload | unit | gostack median (min–max) | rival | rival median (min–max) | gostack / rival |",
           "|---|---|---:|---|---:|---:|"]
    for work, unit, g, label, r, ratio in rows:
        rt = "n/a" if ratio is None else (f"**{ratio:.2f}**" if ratio > 1.05 else f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.3f}")
        out.append(f"| {work} | {unit} | {g} | {label} | {r} | {rt} |")
    return "\n".join(out) + "\n"


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = [(f"{w}  vs {label}", ratio) for w, _, _, label, _, ratio in rows if ratio]
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(data) + 1.4))
    ys = range(len(data))[::-1]
    colors = ["#2a9d4b" if r <= 1 else "#d1495b" for _, r in data]
    ax.barh(list(ys), [r for _, r in data], color=colors)
    ax.set_xscale("log")
    ax.axvline(1, color="black", linewidth=1)
    ax.set_yticks(list(ys))
    ax.set_yticklabels([n for n, _ in data], fontsize=8)
    for y, (_, r) in zip(ys, data):
        ax.text(r, y, f" {r:.2f}", va="center", fontsize=8)
    ax.set_xlabel("gostack / rival (median / median, log scale): below 1 = gostack faster or smaller")
    ax.set_title("gostack against Go, Boost.Context, greenlet, asyncio (same run)", fontsize=10)
    lo = min(r for _, r in data)
    hi = max(r for _, r in data)
    ax.set_xlim(lo / 1.6, hi * 2.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5, help="separate-process repetitions (>= 5)")
    ap.add_argument("--plot", default=str(BUILD / "compare.png"))
    ap.add_argument("--only", choices=["sched", "echo"],
                    help="run one group of workloads only (sched: issue 21's; echo: the TCP echo rows, issue #13)")
    ap.add_argument("--no-rt", action="store_true", help="scheduler workloads without chrt -f 50 (default: with, as root)")
    args = ap.parse_args()
    v = versions()
    rt = not args.no_rt and os.geteuid() == 0 and subprocess.run(["which", "chrt"], capture_output=True).returncode == 0
    if args.only == "sched":
        R = measure_sched(args.reps, rt)
        rows = table(R, sched_rows())
        how = "bash benches/compare/run.sh --only sched" + (" --no-rt" if args.no_rt else "")
        md = markdown(rows, v, args.reps, how) + "\n" + "\n".join(f"- {x}" for x in speedups(R)) + "\n"
        md += f"- Scheduler rows: one process per value, {args.reps} each, {'under chrt -f 50' if rt else 'normal priority'}; 16 Ps: {'yes' if 16 in sched_procs() else 'not on this machine (' + str(os.cpu_count()) + ' CPUs)'}.\n"
        (BUILD / "compare-sched.md").write_text(md)
        (BUILD / "results-sched.json").write_text(json.dumps({"versions": v, "raw": {f"{s}|{n}": x for (s, n), x in R.items()}}, indent=1))
        print(md)
        return
    if args.only == "echo":
        R = measure_echo(args.reps)
        rows = table(R, ECHO_ROWS)
    else:
        R = measure(args.reps)
        R.update(measure_sched(args.reps, rt))
        rows = table(R, ROWS + sched_rows())
    (BUILD / "results.json").write_text(json.dumps({"versions": v, "raw": {f"{s}|{n}": x for (s, n), x in R.items()}},
                                                   indent=1))
    md = markdown(rows, v, args.reps) + "\n"
    if args.only != "echo":
        md += "\n".join(f"- {x}" for x in speedups(R)) + "\n"
    (BUILD / "compare.md").write_text(md)
    w = max(len(r[0]) for r in rows)
    print()
    print(f"{'workload':<{w}}  unit  {'gostack med (min–max)':>30}  {'rival':<8} {'rival med (min–max)':>30}  ratio")
    for work, unit, g, label, r, ratio in rows:
        print(f"{work:<{w}}  {unit:<4}  {g:>30}  {label:<8} {r:>30}  {'n/a' if ratio is None else f'{ratio:.2f}'}")
    print()
    for k in ("date", "machine", "load", "go", "boost", "python", "gcc", "rustc", "gostack"):
        print(f"{k}: {v[k]}")
    try:
        plot(rows, args.plot)
        print(f"plot: {args.plot}; markdown: {BUILD / 'compare.md'}; raw values: {BUILD / 'results.json'}")
    except ImportError:
        print("matplotlib not installed: no plot")


if __name__ == "__main__":
    main()
