//! The saved vector registers in a signal frame, for adjusting stack pointers held in them.
//!
//! gcc -O2 copies small structs through XMM/YMM registers (a 128-byte memcpy becomes eight
//! loads then eight stores): a guard fault on the first store leaves pointers into the old stack
//! in vector registers (notes/growth.md measured 12 of 16 stale without this). The kernel saves
//! them in the signal frame at `uc_mcontext.fpregs`, in the XSAVE standard (non-compacted) format:
//!
//! ```text
//!   fpregs + 0     legacy FXSAVE area (512 bytes)
//!            160   XMM0-15, 16 bytes each                       -> 32 lanes of 8 bytes
//!            464   sw_reserved: magic1 = FP_XSTATE_MAGIC1 when an XSAVE area follows,
//!                  xfeatures (bytes 472..480), xstate_size (480..484)
//!   fpregs + 512   XSAVE header: XSTATE_BV (which components hold non-initial values)
//!   fpregs + off2  component 2, AVX: upper halves of YMM0-15 (256 bytes)
//!   fpregs + off6  component 6, ZMM_Hi256: upper 256 bits of ZMM0-15 (512 bytes)
//!   fpregs + off7  component 7, Hi16_ZMM: ZMM16-31 (1,024 bytes)
//! ```
//!
//! The offsets come from CPUID leaf 0xD (sub-leaf i: EAX = size, EBX = offset), read once by
//! [`init`] before any handler can run. A component whose XSTATE_BV bit is clear is in its initial
//! state (zeros): nothing to adjust, and writing it would be ignored by XRSTOR anyway. Opmask
//! registers (component 5) are 64-bit masks, never pointers.

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Once;

const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const SW_MAGIC1: usize = 464;
const SW_XFEATURES: usize = 472;
const SW_XSTATE_SIZE: usize = 480;
const XMM_OFFSET: usize = 160;
const XSAVE_HEADER: usize = 512;

/// Components that can hold pointers: AVX, ZMM_Hi256, Hi16_ZMM.
const COMPONENTS: [u32; 3] = [2, 6, 7];
static OFFSET: [AtomicU32; 3] = [const { AtomicU32::new(0) }; 3];
static SIZE: [AtomicU32; 3] = [const { AtomicU32::new(0) }; 3];
static INIT: Once = Once::new();

/// Reads the XSAVE layout (CPUID 0xD). Call before installing the signal handler.
pub fn init() {
    INIT.call_once(|| {
        // Fill std's CPU feature cache now (the copier asks it inside the signal handler).
        let _ = std::arch::is_x86_feature_detected!("avx2");
        // SAFETY: CPUID exists on every x86_64 CPU; leaf 0xD is valid when leaf 0 reports it.
        #[allow(unused_unsafe)]
        let max_leaf = unsafe { core::arch::x86_64::__cpuid(0) }.eax;
        if max_leaf < 0xD {
            return;
        }
        for (i, &c) in COMPONENTS.iter().enumerate() {
            // SAFETY: as above.
            #[allow(unused_unsafe)]
            let r = unsafe { core::arch::x86_64::__cpuid_count(0xD, c) };
            OFFSET[i].store(r.ebx, Relaxed);
            SIZE[i].store(r.eax, Relaxed);
        }
    });
}

/// The layout read by [`init`]: (component, offset, size) of the components that can hold
/// pointers (size 0: not supported by this CPU).
pub fn layout() -> [(u32, u32, u32); 3] {
    core::array::from_fn(|i| (COMPONENTS[i], OFFSET[i].load(Relaxed), SIZE[i].load(Relaxed)))
}

/// Calls `f` on every 8-byte lane of every saved vector register (XMM0-15, upper YMM halves, and
/// with AVX-512 the upper ZMM halves and ZMM16-31) and stores what it returns. Returns the number
/// of lanes visited. Async-signal-safe.
///
/// # Safety
/// `fpregs` is NULL or the `uc_mcontext.fpregs` of a signal frame the kernel delivered to us.
pub unsafe fn for_each_lane(fpregs: *mut u8, mut f: impl FnMut(u64) -> u64) -> usize {
    if fpregs.is_null() {
        return 0;
    }
    let mut lanes = 0;
    let mut visit = |p: *mut u8, bytes: usize| {
        for i in 0..bytes / 8 {
            // SAFETY: p..p+bytes lies in the saved FP state (per the caller); lanes may be
            // unaligned only in theory (XSAVE areas are 64-byte aligned), so use unaligned access.
            unsafe {
                let lane = p.add(i * 8) as *mut u64;
                let v = lane.read_unaligned();
                let nv = f(v);
                if nv != v {
                    lane.write_unaligned(nv);
                }
            }
            lanes += 1;
        }
    };
    // SAFETY: the legacy area is always present (512 bytes).
    visit(unsafe { fpregs.add(XMM_OFFSET) }, 16 * 16);
    // SAFETY: sw_reserved lies inside the legacy area.
    let (magic, xfeatures, xsize) = unsafe {
        (
            (fpregs.add(SW_MAGIC1) as *const u32).read_unaligned(),
            (fpregs.add(SW_XFEATURES) as *const u64).read_unaligned(),
            (fpregs.add(SW_XSTATE_SIZE) as *const u32).read_unaligned() as usize,
        )
    };
    if magic != FP_XSTATE_MAGIC1 || xsize < XSAVE_HEADER + 64 {
        return lanes; // an FXSAVE-only frame: no upper halves saved
    }
    // SAFETY: magic1 says an XSAVE area of xsize bytes follows the legacy area.
    let xstate_bv = unsafe { (fpregs.add(XSAVE_HEADER) as *const u64).read_unaligned() };
    for (i, &c) in COMPONENTS.iter().enumerate() {
        let (off, size) = (OFFSET[i].load(Relaxed) as usize, SIZE[i].load(Relaxed) as usize);
        let bit = 1u64 << c;
        if size == 0 || xfeatures & bit == 0 || xstate_bv & bit == 0 || off + size > xsize {
            continue;
        }
        // SAFETY: the component lies inside the xsize bytes the kernel saved.
        visit(unsafe { fpregs.add(off) }, size);
    }
    lanes
}
