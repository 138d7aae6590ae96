//! Context-switch and spawn benchmarks for the foundation layer. Prints medians (ns) over
//! repeated runs; run with `cargo bench --bench switch`. Not a test: numbers only.
//!
//! - raw swap round trip: gs_asm_swap A -> B -> A (two switches, FP control state kept)
//! - mcall/gogo round trip: goroutine -> g0 (mcall) -> goroutine (gogo), Go's primitive pair
//! - gs_yield: two goroutines yielding to each other through the scheduler, per switch
//! - spawn+run+exit: per goroutine, pooled stacks (steady state, batches of 1,000)

use core::ffi::c_void;
use gostack::abi::*;
use gostack::arch;
use gostack::stack::StackCache;
use std::time::Instant;

const RUNS: usize = 11;

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// With BENCH_RAW set, also prints every run as `raw<TAB>name<TAB>value` (benches/compare reads these).
fn report(name: &str, v: Vec<f64>) {
    if std::env::var_os("BENCH_RAW").is_some() {
        for x in &v {
            println!("raw\t{name}\t{x:.4}");
        }
    }
    let (lo, med, hi) = median(v);
    println!("{name:<40} median {med:>8.2} ns   (min {lo:.2}, max {hi:.2}, {RUNS} runs)");
}

// ---- raw swap ----
static mut MAIN_SP: usize = 0;
static mut CO_SP: usize = 0;

unsafe extern "C" fn swap_body(_: *mut c_void) {
    loop {
        // SAFETY: the coroutine's switch frame lives in CO_SP; MAIN_SP is the benchmark's saved context (one thread).
        unsafe { arch::gs_asm_swap(&raw mut CO_SP, MAIN_SP) };
    }
}
unsafe extern "C" fn never_exit(_: *mut c_void) -> ! {
    std::process::abort()
}

fn raw_swap(iters: u64) -> f64 {
    let mut cache = StackCache::new();
    let st = cache.alloc(64 * 1024).unwrap();
    // SAFETY: the stack is ours; the statics are touched by this thread only.
    unsafe {
        CO_SP = arch::init_frame(
            st.hi,
            swap_body,
            core::ptr::null_mut(),
            never_exit,
            core::ptr::null_mut(),
            arch::fp_control(),
        );
        arch::gs_asm_swap(&raw mut MAIN_SP, CO_SP); // warm up, start it
        let t = Instant::now();
        for _ in 0..iters {
            arch::gs_asm_swap(&raw mut MAIN_SP, CO_SP);
        }
        t.elapsed().as_nanos() as f64 / iters as f64
    }
}

// ---- mcall/gogo ----
static mut G0_BASE: usize = 0;
static mut G_SP: usize = 0;
static mut DONE_SP: usize = 0;
static mut ITERS: u64 = 0;
static mut ELAPSED: f64 = 0.0;

unsafe extern "C" fn back_m(_: *mut c_void) {
    // SAFETY: G_SP holds the goroutine side's switch frame, saved by the mcall that got us here.
    unsafe { arch::gs_asm_gogo(G_SP, arch::frame_fpctl(G_SP)) }
}
unsafe extern "C" fn mcall_body(_: *mut c_void) {
    // SAFETY: single-threaded benchmark: the statics are this thread's; the stacks were set up by mcall_round_trip.
    unsafe {
        let n = ITERS;
        let t = Instant::now();
        for _ in 0..n {
            arch::gs_asm_mcall(&raw mut G_SP, G0_BASE, back_m, core::ptr::null_mut());
        }
        ELAPSED = t.elapsed().as_nanos() as f64 / n as f64;
        let mut dummy = 0usize;
        arch::gs_asm_swap(&mut dummy, DONE_SP);
    }
}

fn mcall_gogo(iters: u64) -> f64 {
    let mut cache = StackCache::new();
    let g0 = cache.alloc(64 * 1024).unwrap();
    let gs = cache.alloc(64 * 1024).unwrap();
    // SAFETY: both stacks are ours; the statics are touched by this thread only.
    unsafe {
        G0_BASE = g0.hi - 64;
        ITERS = iters;
        let sp = arch::init_frame(
            gs.hi,
            mcall_body,
            core::ptr::null_mut(),
            never_exit,
            core::ptr::null_mut(),
            arch::fp_control(),
        );
        arch::gs_asm_swap(&raw mut DONE_SP, sp);
        let r = ELAPSED;
        cache.free(g0);
        cache.free(gs);
        r
    }
}

// ---- gs_yield ----
unsafe extern "C" fn yielder(arg: *mut c_void) {
    let n = arg as u64;
    for _ in 0..n {
        gs_yield();
    }
}

fn yield_pair(iters: u64) -> f64 {
    // SAFETY: yielder is a valid goroutine body; gs_run runs it on this thread.
    unsafe {
        gs_spawn(Some(yielder), iters as *mut c_void);
        gs_spawn(Some(yielder), iters as *mut c_void);
    }
    let t = Instant::now();
    assert_eq!(gs_run(), GS_OK);
    t.elapsed().as_nanos() as f64 / (2 * iters) as f64
}

// ---- spawn ----
unsafe extern "C" fn empty(_: *mut c_void) {}

fn spawn_run_exit(batch: u64, rounds: u64) -> f64 {
    let t = Instant::now();
    for _ in 0..rounds {
        for _ in 0..batch {
            // SAFETY: empty is a valid goroutine body.
            unsafe { gs_spawn(Some(empty), core::ptr::null_mut()) };
        }
        assert_eq!(gs_run(), GS_OK);
    }
    t.elapsed().as_nanos() as f64 / (batch * rounds) as f64
}

unsafe extern "C" fn spawner(arg: *mut c_void) {
    let n = arg as u64;
    for _ in 0..n {
        // SAFETY: empty is a valid goroutine body.
        unsafe { gs_spawn(Some(empty), core::ptr::null_mut()) };
        gs_yield();
    }
}

fn spawn_from_goroutine(n: u64) -> f64 {
    let t = Instant::now();
    // SAFETY: spawner is a valid goroutine body.
    unsafe { gs_spawn(Some(spawner), n as *mut c_void) };
    assert_eq!(gs_run(), GS_OK);
    // each iteration: one spawn, one yield (2 switches) and the child's run+exit.
    t.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let want = |n: &str| filter.is_empty() || filter.iter().any(|f| n.contains(f.as_str()));
    // The single-thread switch path (see benches/c/bench_sched.c for several Ps).
    gs_set_maxprocs(1);
    println!("gostack switch benchmarks at P=1 ({RUNS} runs each; medians)");
    if want("raw") {
        report("raw swap round trip (A->B->A)", (0..RUNS).map(|_| raw_swap(2_000_000)).collect());
        report("mcall+gogo round trip (g->g0->g)", (0..RUNS).map(|_| mcall_gogo(2_000_000)).collect());
    }
    if want("yield") {
        report("gs_yield, per switch (2 goroutines)", (0..RUNS).map(|_| yield_pair(1_000_000)).collect());
    }
    if want("spawn") {
        report("spawn+run+exit per goroutine (from main)", (0..RUNS).map(|_| spawn_run_exit(1000, 200)).collect());
        report("spawn from goroutine + child run + yield", (0..RUNS).map(|_| spawn_from_goroutine(200_000)).collect());
    }
}
