//! Cycle counting for busy/idle accounting: the TSC on x86_64, a monotonic clock elsewhere.
//!
//! Reading the TSC costs ~20 cycles and no syscall, so the poll loop can stamp every
//! iteration and every rxq poll. The clock-based fallback reports nanoseconds, so
//! "cycles" there are nanoseconds; `cycles_per_sec` says which.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The current cycle count.
#[inline(always)]
pub fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` has no preconditions on x86_64 (every x86_64 CPU has a TSC).
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Counter ticks per second, measured once (about 10 ms) on first use.
pub fn cycles_per_sec() -> u64 {
    static HZ: OnceLock<u64> = OnceLock::new();
    *HZ.get_or_init(|| {
        if !cfg!(target_arch = "x86_64") {
            return 1_000_000_000;
        }
        let t0 = Instant::now();
        let c0 = now();
        std::thread::sleep(Duration::from_millis(10));
        let c1 = now();
        let dt = t0.elapsed().as_nanos().max(1);
        ((c1.wrapping_sub(c0)) as u128 * 1_000_000_000 / dt).max(1) as u64
    })
}
