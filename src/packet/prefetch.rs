//! Cache prefetch hints for the fast path.
//!
//! A poll thread knows a batch ahead which memory it will touch (frames on the rx ring,
//! EMC slots once the batch is hashed); asking for it early overlaps the misses instead of
//! paying them one after another. A hint never faults and changes no state, so these are
//! safe to call with any address; on other architectures they do nothing.

/// Cache line size assumed for stepping through ranges.
pub const LINE: usize = 64;

/// Asks for the line holding `p` in every cache level (for data read soon).
#[inline(always)]
pub fn to_l1<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch never faults and reads nothing architecturally.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks for the line holding `p` in L2 and outwards (for data read later, or by the
/// kernel on this core, without crowding L1).
#[inline(always)]
pub fn to_l2<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch never faults and reads nothing architecturally.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T1 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `to_l1` for every line of the `len` bytes at `p`.
#[inline(always)]
pub fn range_to_l1(p: *const u8, len: usize) {
    let mut off = 0;
    while off < len {
        to_l1(p.wrapping_add(off));
        off += LINE;
    }
}

/// `to_l2` for every line of the `len` bytes at `p`.
#[inline(always)]
pub fn range_to_l2(p: *const u8, len: usize) {
    let mut off = 0;
    while off < len {
        to_l2(p.wrapping_add(off));
        off += LINE;
    }
}
