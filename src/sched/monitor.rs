//! The stall monitor (a small piece of Go's sysmon): finds a thread whose running goroutine has
//! not switched for a while although goroutines wait to run on that very thread, and says so once.
//!
//! Why it is needed: a goroutine stays on the thread it first ran on (pinning, DESIGN.md: C code
//! caches `&errno`), so a goroutine blocked in a raw system call (`read`, `sleep`, `pthread_join`)
//! or computing without `gs_yield` also blocks every goroutine pinned to its thread, however many
//! Ps are idle: a pipe reader and its writer pinned to one thread deadlock at any P count. Go hands
//! such a thread's P to another M (entersyscall/sysmon); a pinned goroutine cannot follow its P.
//! Nothing can be fixed from outside for a raw call; the monitor turns a silent hang into a message
//! naming the goroutine, the thread and what to use instead.
//!
//! - Blocks asynchronous signals (they go to the program's threads).
//! - Runs only while some thread is inside the scheduler (`deadlock.rs: IN_SCHED > 0`); otherwise it
//!   sleeps on its note until a thread enters (`wake_on_enter`). Started with the first such
//!   thread; not registered as a runtime user (it never wakes a goroutine).
//! - Every `SCAN_NS` it reads, for every M, the count of goroutines resumed on it (`M::ticks`)
//!   and whether goroutines wait for that M (its pinned queue, or its P's run queue). An M whose
//!   count has not moved for `STALL_NS` while it has a running goroutine and waiting ones is
//!   reported (once per process; `GOSTACK_STALL_WARNING=0` turns it off).
//! - C goroutines only: a goroutine of an embedded runtime (a Python goroutine, `G::embed_hooks`)
//!   is left to that runtime's layer (the advice printed here is about C calls).
//! - Reads other threads' fields racily (volatile loads of word-sized fields; M and G records are
//!   never freed): a report may name a goroutine that moved on a moment ago, never a freed one.

use super::*;

/// How often the monitor looks.
const SCAN_NS: i64 = 25_000_000;
/// How long a goroutine must run without switching, with others waiting on its thread. Go's
/// sysmon acts after 10-20 ms; a warning needs more margin: on an overloaded machine (load 8 on 2
/// CPUs) a thread descheduled by the kernel for 20 ms between two yields was reported.
pub const STALL_NS: i64 = 100_000_000;

static STARTED: AtomicBool = AtomicBool::new(false);
static REPORTED: AtomicBool = AtomicBool::new(false);
static NOTE: Note = Note::new();
/// The monitor sleeps on NOTE without deadline (nobody in the scheduler).
static IDLE: AtomicBool = AtomicBool::new(false);

/// A thread enters the scheduler: start the monitor, or wake it if it idles.
pub(crate) fn wake_on_enter() {
    if !STARTED.load(Acquire) {
        start();
    } else if IDLE.load(Acquire) {
        NOTE.wakeup();
    }
}

#[cold]
fn start() {
    if STARTED.swap(true, AcqRel) {
        return;
    }
    if std::env::var("GOSTACK_STALL_WARNING").is_ok_and(|v| v.trim() == "0") {
        return;
    }
    // Its signals stay blocked (spawn_runtime_thread): a handler running here (not an M) could
    // not be told apart from a host thread calling in.
    let r = super::threads::spawn_runtime_thread("gostack-mon", 256 << 10, |_| run());
    if r.is_err() {
        STARTED.store(false, Release); // try again at the next entry
    }
}

/// Fork child (fork.rs): the monitor thread does not exist there.
pub(crate) fn reset_after_fork() {
    STARTED.store(false, Relaxed);
    IDLE.store(false, Relaxed);
    NOTE.reset();
}

struct Seen {
    m: *mut M,
    ticks: u64,
    since: i64,
}

fn run() {
    let mut seen: Vec<Seen> = Vec::new();
    loop {
        if !anyone_in_scheduler() {
            IDLE.store(true, Release);
            // Re-check after publishing IDLE: an entry that missed it has bumped IN_SCHED.
            if !anyone_in_scheduler() {
                NOTE.sleep(i64::MAX);
            }
            IDLE.store(false, Release);
            seen.clear();
            continue;
        }
        NOTE.sleep(nanotime() + SCAN_NS);
        if REPORTED.load(Relaxed) {
            return; // said it once: done for good
        }
        scan(&mut seen);
    }
}

fn scan(seen: &mut Vec<Seen>) {
    let now = nanotime();
    let ms: Vec<*mut M> = lock_sched().allm.clone();
    seen.retain(|s| ms.contains(&s.m));
    for m in ms {
        // SAFETY: M records are never freed; racy reads of word-sized fields (module doc).
        let (ticks, curg, p, lockedq) = unsafe {
            (
                (*m).ticks.load(Relaxed),
                core::ptr::read_volatile(&(*m).curg),
                core::ptr::read_volatile(&(*m).p),
                (*m).lockedq_len.load(Relaxed),
            )
        };
        let i = match seen.iter().position(|s| s.m == m) {
            Some(i) => i,
            None => {
                seen.push(Seen { m, ticks, since: now });
                continue;
            }
        };
        // SAFETY: G records are never freed (a racy read: module doc).
        let embedded = !curg.is_null() && unsafe { !core::ptr::read_volatile(&(*curg).embed_hooks).is_null() };
        // issue #13: a gs_blocking call is a declared block (its P is handed off; syscall.rs).
        // SAFETY: as above.
        let declared =
            !curg.is_null() && unsafe { core::ptr::read_volatile(&(*curg).waitreason) } == WaitReason::Syscall;
        if seen[i].ticks != ticks || curg.is_null() || embedded || declared {
            seen[i] = Seen { m, ticks, since: now };
            continue;
        }
        // SAFETY: Ps are static.
        let queued = lockedq + if p.is_null() { 0 } else { unsafe { (*p).runq.len() } };
        if queued == 0 || now - seen[i].since < STALL_NS {
            continue;
        }
        if !REPORTED.swap(true, AcqRel) {
            report(m, curg, queued, now - seen[i].since);
        }
        return;
    }
}

#[cold]
fn report(m: *mut M, g: *mut G, queued: usize, for_ns: i64) {
    // SAFETY: records never freed (racy snapshot, module doc).
    let (tid, goid, name) =
        unsafe { ((*m).tid, (*g).goid, (*g).name.as_ref().map(|n| n.to_string_lossy().into_owned())) };
    let mut w = FdWriter::stderr();
    let named = name.map(|n| format!(" (\"{n}\")")).unwrap_or_default();
    let _ = writeln!(
        w,
        "gostack: goroutine {goid}{named} has run for {} ms on thread {tid} without switching, while {queued} goroutine(s) \
         wait to run on that thread (a goroutine stays on the thread it first ran on). It is blocked in a system call \
         (read, write, sleep, a lock, ...) or computing without gs_yield(). Use gs_sleep() instead of sleep(), \
         gostack channels, mutexes and wait groups instead of blocking pipes and pthread locks between goroutines, call \
         gs_yield() in long loops, or spawn the goroutines that must not wait with GS_SPAWN_MIGRATABLE \
         (GOSTACK_MIGRATE=1 for all) so that idle threads can take them. (Reported once; GOSTACK_STALL_WARNING=0 turns \
         this off.)",
        for_ns / 1_000_000
    );
}
