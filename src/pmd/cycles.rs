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
        let (t0, c0) = clock_pair();
        std::thread::sleep(Duration::from_millis(10));
        let (t1, c1) = clock_pair();
        let dt = t1.duration_since(t0).as_nanos().max(1);
        ((c1.wrapping_sub(c0)) as u128 * 1_000_000_000 / dt).max(1) as u64
    })
}

/// `c` counter ticks in nanoseconds (for reports, and to set ticks against a clock).
pub fn to_ns(c: u64) -> u64 {
    (u128::from(c) * 1_000_000_000 / u128::from(cycles_per_sec())) as u64
}

/// `d` in counter ticks (a deadline or a wait to set against `now`).
pub fn from_duration(d: Duration) -> u64 {
    (d.as_nanos() * u128::from(cycles_per_sec()) / 1_000_000_000) as u64
}

/// An `Instant` and the cycle count at that instant: of five tries, the one whose two
/// counter reads around the clock read are closest. A thread preempted between the two
/// reads of a single try (a busy CI host) would skew the rate by the preemption over the
/// 10 ms window: one such run sent output held for 200 ms after 199.987 ms.
fn clock_pair() -> (Instant, u64) {
    (0..5)
        .map(|_| {
            let before = now();
            let t = Instant::now();
            let spread = now().wrapping_sub(before);
            (spread, t, before.wrapping_add(spread / 2))
        })
        .min_by_key(|&(spread, _, _)| spread)
        .map(|(_, t, c)| (t, c))
        .expect("five tries")
}

thread_local! {
    /// Cycles this thread spent inside fast-path system calls since the last `take`.
    static IN_SYSCALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Runs `f`, one fast-path system call (a transmit kick, a fill-ring wakeup, a tap read
/// or write), and adds the cycles it took to this thread's tally. The poll loop moves the
/// tally into `PmdCounters::cycles_syscall`, so `pmd-stats-show` can split processing
/// time into the switch's own work and the kernel's: in AF_XDP copy mode most of the
/// kernel's transmit work runs inside the kick, on the PMD's core. Two TSC reads per
/// call (one call per batch on afxdp), no system call of its own.
#[inline(always)]
pub fn in_syscall<R>(f: impl FnOnce() -> R) -> R {
    let t0 = now();
    let r = f();
    let spent = now().wrapping_sub(t0);
    IN_SYSCALLS.with(|c| c.set(c.get().wrapping_add(spent)));
    r
}

/// Takes this thread's syscall tally (see `in_syscall`) and zeroes it.
#[inline(always)]
pub fn take_syscall_cycles() -> u64 {
    IN_SYSCALLS.with(|c| c.replace(0))
}
