//! M:N scheduler exercised through the Rust side (also the ThreadSanitizer target, see
//! docs/PERFORMANCE.md "ThreadSanitizer"): goroutines spawned from several OS threads, yielding
//! and sleeping on several Ps, each run exactly once.

use core::ffi::c_void;
use gostack::abi::*;
use std::sync::atomic::{AtomicU32, Ordering::*};

static RAN: [AtomicU32; 4000] = [const { AtomicU32::new(0) }; 4000];

unsafe extern "C" fn body(arg: *mut c_void) {
    let i = arg as usize;
    RAN[i].fetch_add(1, Relaxed);
    for k in 0..3 {
        if (i + k).is_multiple_of(2) {
            gs_yield();
        } else {
            gs_sleep(1000);
        }
    }
}

#[test]
fn spawn_from_threads_on_several_ps() {
    assert!(gs_set_maxprocs(3) >= 1);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..1000 {
                    // SAFETY: body is a valid goroutine function; arg is an index.
                    let id = unsafe { gs_spawn(Some(body), (t * 1000 + i) as *mut c_void) };
                    assert!(id > 0);
                }
            })
        })
        .collect();
    assert_eq!(gs_run(), GS_OK);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(gs_run(), GS_OK);
    for (i, r) in RAN.iter().enumerate() {
        assert_eq!(r.load(Relaxed), 1, "goroutine {i}");
    }
}
