//! Builds and runs the C test programs in `c-tests/` against the freshly built `libgostack.so`.
//!
//! Each `c-tests/test_<feature>.c` is one `#[test]` here (see `c_tests!` below): it is compiled with
//! `cc -std=gnu11 -Wall -Wextra -Wpedantic -Werror -O2 -g`, linked against the library with an rpath,
//! and run with a timeout and `GOSTACK_MAXPROCS=1`; a non-zero exit, a signal or the timeout fails the
//! test and prints what the program wrote. `every_c_test_is_listed` fails when a new `test_*.c` is not in the list, and
//! `exported_symbols` checks that the library exports exactly the functions the header declares.
//!
//! The library: `cargo test` builds the cdylib next to this test executable in
//! `target/<profile>/deps/` (the uplifted copy lives in `target/<profile>/`). Set
//! `GOSTACK_LIBRARY=/path/to/libgostack.so` to test another build, `CC` to use another compiler and
//! `GOSTACK_C_TEST_CFLAGS` to add flags (e.g. `-fsanitize=address`).
//!
//! Cross testing (`.ci/aarch64.sh`): when this test executable is built for another architecture
//! than the machine's and runs under cargo's target runner, the C programs are compiled with
//! `CC_<arch>_unknown_linux_gnu` (cc's crate convention, e.g. `CC_aarch64_unknown_linux_gnu=
//! aarch64-linux-gnu-gcc`) and run under `CARGO_TARGET_<ARCH>_UNKNOWN_LINUX_GNU_RUNNER` (e.g.
//! `qemu-aarch64 -L /usr/aarch64-linux-gnu`), with the time limit raised; [`NOT_UNDER_EMULATOR`]
//! lists what is skipped there and why.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one C test program may run before it is killed.
const TIMEOUT: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding `libgostack.so`.
fn lib_dir() -> PathBuf {
    if let Some(path) = std::env::var_os("GOSTACK_LIBRARY") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "GOSTACK_LIBRARY={} is not a file", path.display());
        return path.parent().expect("GOSTACK_LIBRARY has a directory").to_path_buf();
    }
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test executable has a directory").to_path_buf();
    let mut tried = Vec::new();
    for dir in [deps.clone(), deps.parent().map(Path::to_path_buf).unwrap_or_default()] {
        if dir.join("libgostack.so").is_file() {
            return dir;
        }
        tried.push(dir.join("libgostack.so"));
    }
    panic!("libgostack.so not found; looked at {:?}. Is crate-type \"cdylib\" still in Cargo.toml?", tried);
}

fn lib_path() -> PathBuf {
    match std::env::var_os("GOSTACK_LIBRARY") {
        Some(p) => PathBuf::from(p),
        None => lib_dir().join("libgostack.so"),
    }
}

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-tests");
    std::fs::create_dir_all(&dir).expect("create the C test output directory");
    dir
}

/// `<arch>_unknown_linux_gnu`, for the environment variables of cross builds.
fn target_key() -> String {
    format!("{}_unknown_linux_gnu", std::env::consts::ARCH)
}

/// The C compiler for this test executable's architecture: `CC_<arch>_unknown_linux_gnu`, else
/// `CC`, else `cc`.
fn c_compiler() -> String {
    std::env::var(format!("CC_{}", target_key())).or_else(|_| std::env::var("CC")).unwrap_or_else(|_| "cc".into())
}

/// Cargo's target runner for this architecture (`CARGO_TARGET_<ARCH>_UNKNOWN_LINUX_GNU_RUNNER`,
/// e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`), when the tests run under one: its words. The
/// C programs then run under it too.
fn target_runner() -> Option<Vec<String>> {
    let r = std::env::var(format!("CARGO_TARGET_{}_RUNNER", target_key().to_uppercase())).ok()?;
    let words: Vec<String> = r.split_whitespace().map(str::to_string).collect();
    (!words.is_empty()).then_some(words)
}

/// C tests that do not run under an emulator (qemu-user 7.2, the target runner of cross testing),
/// and why; `name@N` skips a test on N Ps only. Everything else runs there, on the same Ps as
/// natively. Measured with Debian bookworm's qemu-user 7.2 (`.ci/aarch64.sh`).
const NOT_UNDER_EMULATOR: &[(&str, &str)] = &[
    ("test_fork", "qemu-user 7.2 aborts in a forked child of a multi-threaded program once the child starts a thread (\"qemu_plugin_vcpu_init_hook: assertion failed\", then \"cpu_exec: assertion failed: (cpu == current_cpu)\"): a qemu bug, not the runtime's"),
    ("test_api_edges", "its fork-child cases hit the same qemu-user fork bug as test_fork"),
    ("test_stack_window", "its GS_SPAWN_NOMOVE and GOSTACK_STACKMOVE=fatal cases run in forked children, which hit the qemu-user fork bug (test_fork); its first three cases pass under qemu"),
    ("test_traceback", "re-executes itself (/proc/self/exe) in a child: exec of an aarch64 program from inside qemu-user needs binfmt_misc, which CI containers do not register"),
    ("test_many_goroutines", "qemu-user accepts MADV_GUARD_INSTALL without doing it, so the runtime falls back to mprotect guards (two mappings per stack), and this test's goroutine count runs past vm.max_map_count (65,530) there: the documented limit of kernels without guard markers, not of aarch64"),
    ("test_thread_exit@4", "counts the process's mappings: with mprotect guards (qemu-user, see test_many_goroutines) every stack of the 4 Ps' arenas adds mappings, so the bound (+200) that holds with guard markers does not; it passes on 1 and 2 Ps"),
    ("test_stack_grow_sigframe", "qemu-user builds signal frames itself and does not do what the kernel does when one does not fit: after the first SI_KERNEL fault the SIGUSR1s raised by later goroutines are never delivered (qemu -strace: tgkill, then no delivery), so the larger margins cannot be checked; its 1 and 1.5 KiB margins (guard fault, SI_KERNEL fault) pass under qemu"),
    ("test_io_close", "its fork case runs goroutines and the poller in a forked child of a multi-threaded program: the qemu-user fork bug of test_fork (same two assertions)"),
];

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// Compiles `c-tests/<name>.c`; returns the executable.
fn compile(name: &str) -> PathBuf {
    let repo = repo();
    let src = repo.join("c-tests").join(format!("{name}.c"));
    let lib_dir = lib_dir();
    let exe = out_dir().join(name);
    let cc = c_compiler();
    let mut cmd = Command::new(&cc);
    cmd.args(["-std=gnu11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2", "-g"])
        .arg(format!("-I{}", repo.join("include").display()))
        .arg(format!("-I{}", repo.join("c-tests").display()));
    if let Ok(extra) = std::env::var("GOSTACK_C_TEST_CFLAGS") {
        cmd.args(extra.split_whitespace());
    }
    cmd.arg(&src)
        .arg(format!("-L{}", lib_dir.display()))
        .arg("-lgostack")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .args(["-lpthread", "-lm", "-o"])
        .arg(&exe);
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    if !out.status.success() {
        panic!(
            "compiling {} failed ({}):\n{:?}\n{}{}",
            src.display(),
            out.status,
            cmd,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    exe
}

/// Compiles a C test once per test process (the same program runs on several P counts).
fn compile_once(name: &str) -> PathBuf {
    static DONE: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, exe)) = done.iter().find(|(n, _)| n == name) {
        return exe.clone();
    }
    let exe = compile(name);
    done.push((name.to_string(), exe.clone()));
    exe
}

/// Compiles and runs one C test program on one P; panics with its output unless it exits 0 in
/// time.
fn run_c_test(name: &str) {
    run_c_test_on(name, 1)
}

/// `GOSTACK_C_TEST_RUNNER`: a command line that runs each C test program instead of running it
/// directly, e.g. `valgrind -q --error-exitcode=99` (.ci/valgrind.sh). Its words, or None.
fn runner() -> Option<Vec<String>> {
    let r = std::env::var("GOSTACK_C_TEST_RUNNER").ok()?;
    let words: Vec<String> = r.split_whitespace().map(str::to_string).collect();
    (!words.is_empty()).then_some(words)
}

/// Why a test that moves stacks in the SIGSEGV handler cannot run under valgrind (checked with a
/// probe: a handler's change to `uc_mcontext.fpregs` does not reach the program after sigreturn,
/// its change to a general register does).
const VG_NO_VECTOR_SIGRETURN: &str = "moves stacks in the SIGSEGV handler (guard faults past the window): valgrind \
     restores the general registers from the signal frame at sigreturn but not the vector registers, so the XMM \
     lanes the runtime moves (gcc's paired pointer stores, inlined memcpy) come back pointing into the freed old \
     stack and the program crashes (test_stack_grow_vector checks exactly this)";

/// C tests that do not run under a `GOSTACK_C_TEST_RUNNER` (valgrind), and why. Every other C test
/// runs under memcheck with 0 errors (`bash .ci/valgrind.sh all`; the last full run is recorded in
/// docs/DEBUGGING.md).
const NOT_UNDER_RUNNER: &[(&str, &str)] = &[
    ("test_stack_grow_deep", VG_NO_VECTOR_SIGRETURN),
    ("test_stack_grow_many", VG_NO_VECTOR_SIGRETURN),
    ("test_stack_grow_vector", VG_NO_VECTOR_SIGRETURN),
    ("test_stack_grow_libc", VG_NO_VECTOR_SIGRETURN),
    ("test_stack_grow_sigframe", VG_NO_VECTOR_SIGRETURN),
    ("test_stack_fixed", VG_NO_VECTOR_SIGRETURN),
    ("test_stack_bigframe", "its probed frames grow in the SIGSEGV handler (see test_stack_grow_vector's reason), and the unprobed 400 KB frame that jumps the guard lands in memory valgrind has mapped there (it lays the address space out bottom-up), so the expected fatal error never comes"),
    ("test_fp_control", "valgrind keeps only the rounding bits of MXCSR and of the x87 control word: FTZ/DAZ and the x87 precision control read back as the defaults after being set (a probe: MXCSR 0x9fc0 reads 0x1f80, x87 0x007f reads 0x037f), so the per-goroutine values this test checks cannot be told apart"),
    ("test_signal_chain", "faults on purpose on PROT_NONE pages that its own chained handler then opens: memcheck reports each of those writes as an invalid write"),
];

/// Whether the C tests are built with AddressSanitizer (`GOSTACK_C_TEST_CFLAGS` has
/// `-fsanitize=address`: .ci/asan.sh).
fn under_asan() -> bool {
    std::env::var("GOSTACK_C_TEST_CFLAGS").is_ok_and(|f| f.contains("-fsanitize=address"))
}

/// Whether the C tests are built with ThreadSanitizer (.ci/tsan.sh).
fn under_tsan() -> bool {
    std::env::var("GOSTACK_C_TEST_CFLAGS").is_ok_and(|f| f.contains("-fsanitize=thread"))
}

/// C tests that do not run when built with AddressSanitizer, and why.
const NOT_UNDER_ASAN: &[(&str, &str)] = &[
    ("test_stack_window", "asserts that 190 levels of ~1.1 KiB frames calling snprintf and qsort fit the 256 KiB window without a move; ASan's interceptors and redzones make those frames bigger, so they no longer fit"),
    ("test_stack_fixed", "a recursion sized for a 512 KiB FIXED stack overflows it: ASan's redzones and interceptors make its frames bigger"),
    ("test_api_edges", "limits the address space (RLIMIT_AS) to reach the out-of-memory paths; ASan cannot map its shadow memory under that limit"),
];

/// Environment for C tests under a `GOSTACK_C_TEST_RUNNER` or AddressSanitizer: the torture
/// test's 100,000 tasks of long-double printing would take ~30 minutes under valgrind and more
/// than the time limit under ASan. (Under valgrind every test also gets `GS_TEST_UNDER_VALGRIND=1`,
/// which c-tests/gs_test.h turns into smaller workloads: `gs_test_workload`.)
const UNDER_RUNNER_ENV: &[(&str, &str, &str)] = &[("test_stack_torture", "TORTURE_TASKS", "2000")];

/// Runs a C test with `GOSTACK_MAXPROCS=procs`.
fn run_c_test_on(name: &str, procs: u32) {
    let exe = compile_once(name);
    let dir = out_dir();
    let stdout_path = dir.join(format!("{name}.p{procs}.stdout"));
    let stderr_path = dir.join(format!("{name}.p{procs}.stderr"));
    let runner = runner();
    let emulator = target_runner();
    if emulator.is_some() {
        let on_ps = format!("{name}@{procs}");
        if let Some((_, why)) = NOT_UNDER_EMULATOR.iter().find(|(n, _)| *n == name || *n == on_ps) {
            println!("{name}: skipped under the target runner (emulator): {why}");
            return;
        }
    }
    if under_asan() {
        if let Some((_, why)) = NOT_UNDER_ASAN.iter().find(|(n, _)| *n == name) {
            println!("{name}: skipped under AddressSanitizer: {why}");
            return;
        }
    }
    if runner.is_some() {
        if let Some((_, why)) = NOT_UNDER_RUNNER.iter().find(|(n, _)| *n == name) {
            println!("{name}: skipped under GOSTACK_C_TEST_RUNNER: {why}");
            return;
        }
    }
    let timeout = if runner.is_some() || emulator.is_some() { TIMEOUT * 10 } else { TIMEOUT };
    // The emulator runs the program, and a GOSTACK_C_TEST_RUNNER (valgrind) inside it.
    let words: Vec<String> = emulator.iter().chain(runner.iter()).flatten().cloned().collect();
    let mut command = match words.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    if runner.is_some() || under_asan() {
        for (_, k, v) in UNDER_RUNNER_ENV.iter().filter(|(n, _, _)| *n == name) {
            command.env(k, v);
        }
    }
    if runner.as_ref().is_some_and(|w| w.iter().any(|w| w.contains("valgrind"))) {
        command.env("GS_TEST_UNDER_VALGRIND", "1");
    }
    if under_tsan() {
        // The library is not instrumented: reports about memory it allocates are suppressed
        // (tools/tsan/gostack.supp says why); its happens-before edges are announced.
        let supp = repo().join("tools/tsan/gostack.supp");
        command.env("TSAN_OPTIONS", format!("suppressions={}", supp.display()));
        command.env("GOSTACK_STALL_WARNING", "0");
    }
    if under_asan() {
        // allow_user_segv_handler: the runtime's SIGSEGV handler (stack growth) goes in front of
        // ASan's, and chains every fault it does not own to it. detect_stack_use_after_return in
        // every test (the few functions that check where their locals lie are not instrumented:
        // GS_TEST_REAL_STACK in c-tests/gs_test.h).
        command.env("ASAN_OPTIONS", "detect_stack_use_after_return=1:allow_user_segv_handler=1");
    }
    let mut child = command
        .current_dir(&dir)
        // The ordering tests (FIFO round robin, "nothing runs before gs_run") are about one P;
        // the tests listed in `on_ps!` below also run on 2 and 4 Ps.
        .env("GOSTACK_MAXPROCS", procs.to_string())
        // cargo puts target/<profile> on LD_LIBRARY_PATH, which beats the RUNPATH we link with:
        // the uplifted copy there can be stale. Test exactly the library we linked against.
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("create stdout file"))
        .stderr(File::create(&stderr_path).expect("create stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the C test") {
            break Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let stdout = read_lossy(&stdout_path);
    let stderr = read_lossy(&stderr_path);
    match status {
        Some(s) if s.success() => {
            print!("{stdout}");
            eprint!("{stderr}");
            // A program that exits 0 can still have had a sanitizer say something: ASan's warnings
            // (e.g. "ASan is ignoring requested __asan_handle_no_return", after which false
            // reports may follow) do not change the exit status, and neither does a report with
            // halt_on_error=0. The acceptance is 0 of them.
            let said = ["==WARNING: ASan", "AddressSanitizer", "ThreadSanitizer"];
            if (under_asan() || under_tsan()) && said.iter().any(|w| stderr.contains(w)) {
                panic!("C test {name} exited 0 but the sanitizer reported or warned:\n--- stderr ---\n{stderr}");
            }
            println!("{name}: passed in {:.2?}", elapsed);
        }
        Some(s) => {
            use std::os::unix::process::ExitStatusExt;
            let how = match s.signal() {
                Some(sig) => format!("killed by signal {sig}{}", if s.core_dumped() { " (core dumped)" } else { "" }),
                None => format!("exit status {}", s.code().unwrap_or(-1)),
            };
            panic!(
                "C test {name} failed: {how} after {:.2?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
                elapsed
            );
        }
        None => panic!(
            "C test {name} timed out after {:?} and was killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            timeout
        ),
    }
}

macro_rules! c_tests {
    ($($name:ident),* $(,)?) => {
        /// Every C test program this file runs, by file stem.
        const C_TESTS: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                run_c_test(stringify!($name));
            }
        )*
    };
}

c_tests!(
    test_api_edges,
    test_asan_report,
    test_bad_input,
    test_chan,
    test_chan_classic,
    test_chan_stack_edge,
    test_chan_timeout_race,
    test_deadlock,
    test_deadlock_threads,
    test_dump,
    test_errno,
    test_exit,
    test_fork,
    test_fp_control,
    test_gs_main,
    test_io_blocking,
    test_io_close,
    test_io_echo,
    test_io_wait,
    test_many_goroutines,
    test_mn_foreign_spawn,
    test_mn_handoff,
    test_mn_interleave,
    test_mn_pin_handoff,
    test_mn_pinning,
    test_mutex_wg_sema,
    test_pthread_exit,
    test_runnext_fairness,
    test_sched_placement,
    test_sched_spin,
    test_select,
    test_select_free,
    test_self,
    test_signal_chain,
    test_signal_handler,
    test_spawn_nested,
    test_stack_bigframe,
    test_stack_check,
    test_stack_copy,
    test_stack_fixed,
    test_stack_grow_deep,
    test_stack_grow_libc,
    test_stack_grow_many,
    test_stack_grow_setjmp,
    test_stack_grow_sigframe,
    test_stack_grow_vector,
    test_stack_idle_memory,
    test_stack_info,
    test_stack_lazy,
    test_stack_limit,
    test_stack_overflow,
    test_stack_shrink,
    test_stack_torture,
    test_stack_window,
    test_stall_warning,
    test_stats,
    test_sync_foreign_thread,
    test_sync_threads_stress,
    test_systemstack,
    test_thread_exit,
    test_traceback,
    test_tsan_report,
    test_yield_order,
);

/// Tests that make no assumption about one P run again on 2 and 4 Ps (worker threads, stealing,
/// pinned wake-ups across threads). Each becomes `p2::<name>` and `p4::<name>`.
macro_rules! on_ps {
    ($module:ident, $procs:expr, $($name:ident),* $(,)?) => {
        mod $module {
            $(
                #[test]
                fn $name() {
                    super::run_c_test_on(stringify!($name), $procs);
                }
            )*
        }
    };
}

macro_rules! multi_p_tests {
    ($($name:ident),* $(,)?) => {
        on_ps!(p2, 2, $($name),*);
        on_ps!(p4, 4, $($name),*);
        /// The tests that run on several Ps (for the soak run).
        const MULTI_P: &[&str] = &[$(stringify!($name)),*];
    };
}

// The scheduler's own paths (spinning Ms, placement: issue 21) also on 8 Ps.
on_ps!(p8, 8, test_sched_placement, test_sched_spin);

/// Opt-in soak run, not part of the default suite: every multi-P test, `GOSTACK_SOAK_ROUNDS`
/// times (default 20), on 1, 2, 3, 4 and 8 Ps (random interleavings come from the OS scheduler;
/// run it with other load on the machine to shake out more). About 10 s per round here.
///
/// ```sh
/// GOSTACK_SOAK_ROUNDS=50 cargo test --release --test c_tests -- --ignored soak
/// ```
#[test]
#[ignore = "soak run: opt in with --ignored"]
fn soak_multi_p() {
    let rounds: usize = std::env::var("GOSTACK_SOAK_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    for round in 0..rounds {
        for procs in [1, 2, 3, 4, 8] {
            for name in MULTI_P {
                run_c_test_on(name, procs);
            }
        }
        println!("soak: round {} of {rounds} passed", round + 1);
    }
}

multi_p_tests!(
    test_api_edges,
    test_chan,
    test_chan_classic,
    test_chan_stack_edge,
    test_chan_timeout_race,
    test_deadlock_threads,
    test_errno,
    test_exit,
    test_fork,
    test_io_blocking,
    test_io_close,
    test_io_echo,
    test_io_wait,
    test_mutex_wg_sema,
    test_pthread_exit,
    test_sched_placement,
    test_sched_spin,
    test_select,
    test_select_free,
    test_signal_handler,
    test_stack_check,
    test_stack_copy,
    test_stack_grow_deep,
    test_stack_grow_libc,
    test_stack_grow_many,
    test_stack_grow_setjmp,
    test_stack_grow_vector,
    test_stack_lazy,
    test_stack_shrink,
    test_stall_warning,
    test_sync_foreign_thread,
    test_sync_threads_stress,
    test_systemstack,
    test_thread_exit,
);

/// The differential stack torture (issue #12) on 2 Ps too; not in the P=4 list: 100,000 tasks
/// there would add ~20 s to the suite and the pass at 2 Ps already runs goroutines on two threads.
#[test]
fn p2_test_stack_torture() {
    run_c_test_on("test_stack_torture", 2);
}

/// Compiles `c-tests/gdb/<name>.c` against the library, for the gdb checks.
fn compile_gdb_program(name: &str) -> PathBuf {
    let (cc, lib_dir) = (c_compiler(), lib_dir());
    let repo = repo();
    let exe = out_dir().join(format!("gdb_{name}"));
    let out = Command::new(&cc)
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O1", "-g"])
        .arg(format!("-I{}", repo.join("include").display()))
        .arg(repo.join(format!("c-tests/gdb/{name}.c")))
        .arg(format!("-L{}", lib_dir.display()))
        .arg("-lgostack")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the C compiler");
    assert!(out.status.success(), "compiling {name}.c failed:\n{}", String::from_utf8_lossy(&out.stderr));
    exe
}

/// tools/gdb/gostack.py (issue #14): in batch mode on a program with 100 parked goroutines,
/// `info goroutines` lists them all (and the running one), with a name and the C function each
/// waits in, and `goroutine 5 bt` prints the C backtrace of a parked goroutine from its saved
/// context. Skipped (with a message) when gdb is not installed.
#[test]
fn gdb_lists_parked_goroutines() {
    if target_runner().is_some() {
        eprintln!("under a target runner (emulator): the host's gdb cannot run the target's programs; skipping");
        return;
    }
    if Command::new("gdb").arg("--version").output().is_err() {
        eprintln!("gdb not found: skipping the goroutine listing check");
        return;
    }
    let exe = compile_gdb_program("goroutines");
    let script = repo().join("tools/gdb/gostack.py");
    let out = Command::new("gdb")
        .arg("-nx")
        .arg("-batch")
        .arg("-ex")
        .arg(format!("source {}", script.display()))
        .args(["-ex", "run", "-ex", "info goroutines", "-ex", "goroutine 5 bt", "-ex", "bt", "-ex", "kill"])
        .arg(&exe)
        .env_remove("LD_LIBRARY_PATH")
        .env("GOSTACK_MAXPROCS", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run gdb");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("101 goroutines"), "gdb:\n{text}");
    let waiting: Vec<&str> = text.lines().filter(|l| l.contains("[waiting, chan receive]")).collect();
    assert_eq!(waiting.len(), 100, "gdb:\n{text}");
    assert!(waiting.iter().all(|l| l.contains("wait_here")), "every parked goroutine waits in wait_here:\n{text}");
    assert!(text.contains("goroutine 4 [waiting, chan receive] 'the fourth'"), "gdb:\n{text}");
    assert!(text.lines().any(|l| l.starts_with('*') && l.contains("[running]")), "gdb:\n{text}");
    // goroutine 5's backtrace: wait_here, then parked, ending at the entry trampoline.
    let frames: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    let wait =
        frames.iter().position(|f| f.contains("wait_here")).unwrap_or_else(|| panic!("no wait_here frame:\n{text}"));
    assert!(frames[wait + 1].contains("parked"), "gdb:\n{text}");
    assert!(frames[wait..].iter().any(|f| f.contains("gs_asm_goexit")), "gdb:\n{text}");
    // The registers were put back: the current thread's own backtrace still shows the stopper.
    assert!(frames.iter().any(|f| f.contains("stopper")), "gdb:\n{text}");
}

/// CFI: gdb's backtrace of a goroutine ends cleanly at `gs_asm_goexit`, and inside a
/// gs_systemstack function at `gs_asm_systemstack` (no "corrupt stack", no frames beyond). Skipped
/// (with a message) when gdb is not installed.
#[test]
fn gdb_backtraces_end_at_the_trampolines() {
    if target_runner().is_some() {
        eprintln!("under a target runner (emulator): the host's gdb cannot run the target's programs; skipping");
        return;
    }
    if Command::new("gdb").arg("--version").output().is_err() {
        eprintln!("gdb not found: skipping the backtrace check");
        return;
    }
    let exe = compile_gdb_program("backtrace");
    let out = Command::new("gdb")
        .args(["-nx", "-batch", "-ex", "run", "-ex", "bt", "-ex", "continue", "-ex", "bt", "-ex", "kill"])
        .arg(&exe)
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .output()
        .expect("run gdb");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let frames: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert!(!text.contains("corrupt stack") && !text.contains("Backtrace stopped"), "gdb:\n{text}");
    // First stop: leaf x4, body, then the trampoline, and nothing after it.
    let first_end = frames
        .iter()
        .position(|f| f.contains("gs_asm_goexit"))
        .unwrap_or_else(|| panic!("no gs_asm_goexit frame:\n{text}"));
    assert!(frames[..first_end].iter().any(|f| f.contains("body")), "gdb:\n{text}");
    // Second stop: on_system_stack, then gs_asm_systemstack as the last frame.
    let rest = &frames[first_end + 1..];
    assert!(rest.first().is_some_and(|f| f.contains("on_system_stack")), "gdb:\n{text}");
    assert!(rest.last().is_some_and(|f| f.contains("gs_asm_systemstack")), "gdb:\n{text}");
    assert_eq!(rest.len(), 2, "gdb:\n{text}");
}

/// Issue 20 item 1: a select woken by the operation that let the channel's owner free it must not
/// touch the freed channel. `test_select_free` under valgrind (memcheck): no invalid read or write
/// (exit status 1 on any error). valgrind does not know goroutine stacks: its "client switching
/// stacks?" warnings are expected, and `--max-stackframe` keeps it from taking a switch for a huge
/// frame. Skipped (with a message) when valgrind is not installed.
#[test]
fn select_free_is_valgrind_clean() {
    if under_asan() {
        eprintln!("built with AddressSanitizer: valgrind cannot run it; skipping the select/free memcheck run");
        return;
    }
    if target_runner().is_some() {
        eprintln!("under a target runner (emulator): the host's valgrind cannot run the target's programs; skipping");
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("valgrind not found: skipping the select/free memcheck run");
        return;
    }
    let exe = compile_once("test_select_free");
    let out = Command::new("valgrind")
        .args(["-q", "--error-exitcode=1", "--max-stackframe=8000000"])
        .arg(&exe)
        .current_dir(out_dir())
        .env("GOSTACK_MAXPROCS", "1")
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .output()
        .expect("run valgrind");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "valgrind reported errors in test_select_free:\n{text}");
    assert!(!text.contains("Invalid read") && !text.contains("Invalid write"), "valgrind:\n{text}");
}

#[test]
fn every_c_test_is_listed() {
    let dir = repo().join("c-tests");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read c-tests/") {
        let name = entry.expect("dir entry").file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".c") {
            if stem.starts_with("test_") && !C_TESTS.contains(&stem) {
                missing.push(name);
            }
        }
    }
    for name in C_TESTS {
        assert!(dir.join(format!("{name}.c")).is_file(), "c-tests/{name}.c is listed but does not exist");
    }
    assert!(missing.is_empty(), "add these to c_tests!(...) in tests/c_tests.rs: {missing:?}");
}

/// Removes `/* */` and `//` comments and preprocessor lines (with their continuations).
fn strip_c(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"/*") {
            i = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            out.push(' ');
        } else if b[i..].starts_with(b"//") {
            i = text[i..].find('\n').map_or(b.len(), |e| i + e);
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    let mut kept = String::with_capacity(out.len());
    let mut in_directive = false;
    for line in out.lines() {
        let directive = in_directive || line.trim_start().starts_with('#');
        in_directive = directive && line.trim_end().ends_with('\\');
        if !directive {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// Names of the functions the header declares: `gs_name(...)` followed by `;` (definitions of
/// static inline helpers are followed by a body and are not exported; calls inside their bodies
/// are skipped with the body).
fn declared_functions(header: &str) -> BTreeSet<String> {
    let text = strip_c(header);
    let b = text.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while let Some(off) = text[i..].find("gs_") {
        let start = i + off;
        i = start + 3;
        if start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_') {
            continue;
        }
        let mut end = start + 3;
        while end < b.len() && (b[end].is_ascii_lowercase() || b[end].is_ascii_digit() || b[end] == b'_') {
            end += 1;
        }
        let mut j = end;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= b.len() || b[j] != b'(' || end == start + 3 {
            continue;
        }
        let mut depth = 0;
        let mut k = j;
        while k < b.len() {
            match b[k] {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            k += 1;
        }
        k += 1;
        while k < b.len() && b[k].is_ascii_whitespace() {
            k += 1;
        }
        if k < b.len() && b[k] == b';' {
            names.insert(text[start..end].to_string());
        } else if k < b.len() && b[k] == b'{' {
            // A function definition (static inline helper): skip its body.
            let mut depth = 0;
            while k < b.len() {
                match b[k] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                k += 1;
            }
            i = k.min(b.len());
        }
    }
    names
}

#[test]
fn header_parser_sees_declarations_only() {
    let sample = "/* gs_comment(1); */\n#define GS_X(b) gs_macro((b))\n#define GS_Y \\\n  gs_cont(1);\n\
                  typedef void (*gs_fn)(void *arg);\nint gs_a(void);\nint64_t gs_b2 (gs_fn f,\n  void *arg);\n\
                  static inline uintptr_t gs__helper(void) { return gs_inner(); }\n// gs_line(x);\n";
    let got: Vec<String> = declared_functions(sample).into_iter().collect();
    assert_eq!(got, vec!["gs_a".to_string(), "gs_b2".to_string()]);
}

#[test]
fn exported_symbols() {
    let header_path = repo().join("include").join("gostack.h");
    let header = std::fs::read_to_string(&header_path).expect("read include/gostack.h");
    let declared = declared_functions(&header);
    assert!(declared.len() >= 10, "parsed only {declared:?} from {}", header_path.display());

    let lib = lib_path();
    let out = Command::new("nm").args(["-D", "--defined-only"]).arg(&lib).output().expect("run nm (binutils)");
    assert!(
        out.status.success(),
        "nm -D --defined-only {} failed: {}",
        lib.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();

    // Symbols the static linker itself defines in every shared object.
    const LINKER_PROVIDED: &[&str] = &["_init", "_fini", "_edata", "_end", "__bss_start"];
    let mut exported = BTreeSet::new();
    let mut unexpected = Vec::new();
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (kind, name) = match fields.as_slice() {
            [_addr, kind, name] => (*kind, *name),
            [kind, name] => (*kind, *name),
            _ => {
                unexpected.push(format!("unparsed nm line: {line}"));
                continue;
            }
        };
        let name = name.split('@').next().unwrap_or(name);
        if kind == "A" || LINKER_PROVIDED.contains(&name) {
            continue; // version nodes and linker-provided markers
        }
        if declared.contains(name) && kind == "T" {
            exported.insert(name.to_string());
        } else {
            unexpected.push(format!("{kind} {name}"));
        }
    }
    let missing: Vec<&String> = declared.difference(&exported).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{} must export exactly the functions declared in include/gostack.h\n\
         declared but not exported (as T): {missing:?}\n\
         exported but not declared: {unexpected:?}\n--- nm -D --defined-only ---\n{listing}",
        lib.display()
    );
}
