//! Timers (`gs_sleep`, select timeouts): one heap under a lock, checked on every schedule with
//! one atomic load when none is armed.

use super::g::{WaitReason, G};
use super::lock_sched;
use super::park::{park, ready_with, whereami, Where};
use crate::base::clock::nanotime;
use crate::base::futex::Mutex;
use crate::base::types::*;
use core::ffi::c_int;
use core::ffi::c_void;
use core::sync::atomic::{AtomicI64, Ordering::*};

/// A timer callback: runs on some M's g0 (or a thread in the scheduler) with no runtime lock
/// held, after its deadline. It must not block; it typically calls [`ready`].
pub type TimerFn = unsafe fn(arg: usize, seq: u64);

struct Timer {
    when: i64,
    id: u64,
    f: TimerFn,
    arg: usize,
    seq: u64,
}

impl PartialEq for Timer {
    fn eq(&self, o: &Self) -> bool {
        self.when == o.when && self.id == o.id
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timer {
    // Min-heap on (when, id) through BinaryHeap's max-heap.
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        (o.when, o.id).cmp(&(self.when, self.id))
    }
}

pub(super) struct Timers {
    heap: std::collections::BinaryHeap<Timer>,
    /// Ids armed and not yet fired or deleted (a deleted timer stays in the heap until it
    /// reaches the top, then is skipped).
    armed: std::collections::BTreeSet<u64>,
    next_id: u64,
}

pub(super) static TIMERS: Mutex<Timers> = Mutex::new(Timers {
    heap: std::collections::BinaryHeap::new(),
    armed: std::collections::BTreeSet::new(),
    next_id: 1,
});
/// Deadline of the earliest timer (i64::MAX if none): checked without the lock.
pub(crate) static TIMER_NEXT: AtomicI64 = AtomicI64::new(i64::MAX);

/// Fork child (fork.rs): the parent's timers belong to goroutines that do not exist here.
pub(super) fn clear_after_fork() {
    let mut t = TIMERS.lock();
    t.heap.clear();
    t.armed.clear();
    TIMER_NEXT.store(i64::MAX, Release);
}

/// Arms a timer: `f(arg, seq)` runs at or after `when` (nanotime). Returns its id for
/// [`timer_del`].
pub fn timer_add(when: i64, f: TimerFn, arg: usize, seq: u64) -> u64 {
    let mut t = TIMERS.lock();
    let id = t.next_id;
    t.next_id += 1;
    t.heap.push(Timer { when, id, f, arg, seq });
    t.armed.insert(id);
    let next = t.heap.peek().map_or(i64::MAX, |t| t.when);
    TIMER_NEXT.store(next, Release);
    drop(t);
    // Idle Ms may sleep until a later deadline: wake one to recompute (an earlier deadline).
    if next == when {
        let s = lock_sched();
        if let Some(&m) = s.proc.waiting.first().or(s.proc.midle.first()) {
            // SAFETY: Ms are never freed.
            unsafe { (*m).note.wakeup() };
        }
    }
    id
}

/// Disarms a timer. Returns true if it had not fired (and now never will).
pub fn timer_del(id: u64) -> bool {
    let mut t = TIMERS.lock();
    let was_armed = t.armed.remove(&id);
    // Deleted timers on top of the heap go now: left there, they kept TIMER_NEXT at their
    // deadline, and deadlock detection (which needs "no timer pending") waited for it (a select
    // with a 146-year timeout that completed at once hid every later deadlock).
    while t.heap.peek().is_some_and(|top| !t.armed.contains(&top.id)) {
        t.heap.pop();
    }
    TIMER_NEXT.store(t.heap.peek().map_or(i64::MAX, |t| t.when), Release);
    was_armed
}

/// Runs every timer whose deadline has passed. Returns true if any ran. Inlined check: no clock
/// read and no call when no timer is armed (the common case on the switch path).
#[inline(always)]
pub(crate) fn run_timers() -> bool {
    if !timer_due() {
        return false;
    }
    run_timers_slow()
}

/// Whether a timer's deadline has passed: one atomic load while no timer is armed, the clock
/// (out of line) only while one is. What `schedule()` and the hand-offs check.
#[inline(always)]
pub(crate) fn timer_due() -> bool {
    let next = TIMER_NEXT.load(Acquire);
    next != i64::MAX && timer_due_at(next)
}

#[cold]
#[inline(never)]
fn timer_due_at(next: i64) -> bool {
    nanotime() >= next
}

#[cold]
#[inline(never)]
fn run_timers_slow() -> bool {
    let mut ran = false;
    loop {
        let now = nanotime();
        let due = {
            let mut t = TIMERS.lock();
            let mut due = None;
            while let Some(top) = t.heap.peek() {
                if top.when > now {
                    break;
                }
                let top = t.heap.pop().unwrap();
                if t.armed.remove(&top.id) {
                    due = Some(top);
                    break;
                }
            }
            let next = t.heap.peek().map_or(i64::MAX, |t| t.when);
            TIMER_NEXT.store(next, Release);
            due
        };
        match due {
            // SAFETY: the callback's contract (TimerFn).
            Some(tm) => unsafe {
                (tm.f)(tm.arg, tm.seq);
                ran = true;
            },
            None => return ran,
        }
    }
}

unsafe fn sleep_wake(arg: usize, _seq: u64) {
    // SAFETY: arg is the G parked in sleep(); its timer fires once. Tail, not runnext: timers
    // that expire in the same pass must wake in deadline order.
    unsafe { ready_with(arg as *mut G, false) };
}

unsafe fn sleep_arm(g: *mut G, when: *mut c_void) -> bool {
    timer_add(when as i64, sleep_wake, g as usize, 0);
    true
}

/// gs_sleep: parks the calling goroutine for at least `ns` nanoseconds; from a thread outside
/// goroutines, sleeps that thread.
pub fn sleep(ns: i64) -> c_int {
    if ns < 0 {
        return GS_EINVAL;
    }
    match whereami() {
        Where::Goroutine(..) => {
            let when = nanotime().saturating_add(ns);
            // SAFETY: sleep_arm arms the timer after the G is saved, so its wake-up cannot race
            // ahead of the park.
            unsafe { park(WaitReason::Sleep, Some(sleep_arm), when as usize as *mut c_void) }
        }
        Where::SystemStack => GS_ESTATE,
        Where::Outside => {
            std::thread::sleep(std::time::Duration::from_nanos(ns as u64));
            GS_OK
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe fn nothing(_: usize, _: u64) {}

    /// The heap pops the earliest deadline first, and timers with one deadline in arming order.
    #[test]
    fn heap_order() {
        let mut h = std::collections::BinaryHeap::new();
        for (when, id) in [(30, 1), (10, 2), (20, 3), (10, 4)] {
            h.push(Timer { when, id, f: nothing, arg: 0, seq: 0 });
        }
        let order: Vec<(i64, u64)> = core::iter::from_fn(|| h.pop().map(|t| (t.when, t.id))).collect();
        assert_eq!(order, vec![(10, 2), (10, 4), (20, 3), (30, 1)]);
    }
}
