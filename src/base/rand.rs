//! The runtime's one random-number generator (wyrand: one add and one 64x64->128 multiply per
//! number), for choices that need spread, not secrecy: a steal victim (sched), select's poll order
//! (sync). Its state lives where the caller keeps it: in the M for the scheduler ([`next`]), per
//! thread otherwise ([`fastrand`]).

use core::cell::Cell;

/// The next number from `state` (any value; it advances).
#[inline]
pub fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0xa076_1d64_78bd_642f);
    let t = (*state as u128).wrapping_mul((*state ^ 0xe703_7ed1_a0b4_28db) as u128);
    ((t >> 64) ^ t) as u64
}

/// A seed that differs between threads and runs: the clock mixed with `salt` (an address).
pub fn seed(salt: usize) -> u64 {
    (super::clock::nanotime() as u64) ^ (salt as u64).rotate_left(32) | 1
}

/// A number from the calling thread's state, seeded on first use.
pub fn fastrand() -> u64 {
    thread_local! {
        static SEED: Cell<u64> = const { Cell::new(0) };
    }
    SEED.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = seed(s as *const _ as usize);
        }
        let r = next(&mut x);
        s.set(x);
        r
    })
}

/// A uniform number in `[0, n)` (n > 0; Lemire's multiply-shift, bias < n / 2^64).
pub fn fastrandn(n: usize) -> usize {
    ((fastrand() as u128 * n as u128) >> 64) as usize
}

/// A uniform number in `[0, n)` from `state` (n > 0), as [`fastrandn`].
#[inline]
pub fn nextn(state: &mut u64, n: usize) -> usize {
    ((next(state) as u128 * n as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fastrandn_in_range() {
        let mut seen = [0u32; 5];
        for _ in 0..5000 {
            seen[fastrandn(5)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 700), "{seen:?}");
    }

    #[test]
    fn state_streams_spread() {
        let mut st = seed(0x1234);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            seen[nextn(&mut st, 7)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }
}
