//! Cache prefetch hints for the fast path.
//!
//! A poll thread knows a batch ahead which memory it will touch (frames on the rx ring);
//! asking for it early overlaps the misses instead of paying them one after another. A
//! hint never faults and changes no state, so these are safe to call with any address;
//! on other architectures they do nothing.

/// Cache line size assumed by the hints and by layouts that keep hot data a line apart.
pub const LINE: usize = 64;

/// How close to the core a prefetched line should go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Every level, for data read soon.
    L1,
    /// L2 and outwards, for data read later (or by the kernel on this core) without
    /// crowding L1.
    L2,
}

/// Asks for the line holding `p`.
#[inline(always)]
pub fn line<T>(p: *const T, level: Level) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0, _MM_HINT_T1};
        // SAFETY: prefetch never faults and reads nothing architecturally.
        unsafe {
            match level {
                Level::L1 => _mm_prefetch::<_MM_HINT_T0>(p.cast()),
                Level::L2 => _mm_prefetch::<_MM_HINT_T1>(p.cast()),
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, level);
}
