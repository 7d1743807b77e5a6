//! Fixed-length arrays on their own mapping, advised onto transparent huge pages.
//!
//! A table that the fast path reads at random (the EMC's 1.5 MiB of keys) spans hundreds
//! of 4 KiB pages, and on a VM every TLB miss is a two-level page walk. With 10,000 flows
//! the prefetch of a random EMC key line waited on its walk for 5-8% of the batch
//! pipeline's samples end to end (benches/e2e/HISTORY.md, twenty-ninth session). On one
//! 2 MiB page the whole table needs one TLB entry. The mapping is aligned to 2 MiB so the
//! kernel can back it with huge pages at all, and every page is faulted in at creation so
//! that the fast path never takes a page fault.

use std::alloc::Layout;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// The huge page size transparent huge pages use on x86-64 (and aarch64 with 4 KiB pages).
pub const HUGE_PAGE: usize = 2 << 20;

/// `len` values of `T` on a private anonymous mapping of whole 2 MiB pages, aligned to
/// 2 MiB, advised `MADV_HUGEPAGE`. Where transparent huge pages are off it is ordinary
/// memory on 4 KiB pages; `huge_bytes` says which.
pub struct HugeArray<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    /// Bytes mapped at `ptr` (a multiple of `HUGE_PAGE`).
    map_len: usize,
}

// SAFETY: the array owns its mapping exclusively, like a `Box<[T]>`.
unsafe impl<T: Copy + Send> Send for HugeArray<T> {}
// SAFETY: shared access only hands out `&[T]`.
unsafe impl<T: Copy + Sync> Sync for HugeArray<T> {}

impl<T: Copy> HugeArray<T> {
    /// `len` copies of `init`. Aborts like a `Vec` would when the memory cannot be had.
    pub fn new(len: usize, init: T) -> Self {
        assert!(std::mem::align_of::<T>() <= HUGE_PAGE);
        let bytes = std::mem::size_of::<T>()
            .checked_mul(len)
            .expect("HugeArray size overflows");
        let map_len = bytes.max(1).next_multiple_of(HUGE_PAGE);
        let Ok(base) = map_transparent_huge(map_len) else {
            std::alloc::handle_alloc_error(
                Layout::from_size_align(map_len, HUGE_PAGE).expect("a valid layout"),
            )
        };
        let ptr = base.cast::<T>();
        // Every element written: this faults the pages in now, after the advice, so that
        // the faults take huge pages, and leaves every element initialised.
        for i in 0..len {
            // SAFETY: within the mapping, aligned (the mapping is 2 MiB-aligned and
            // `size_of::<T>()` is a multiple of `align_of::<T>()`).
            unsafe { ptr.as_ptr().add(i).write(init) };
        }
        HugeArray { ptr, len, map_len }
    }

    /// Bytes of the array's mapping that the kernel backs with huge pages (0 when it
    /// cannot tell), for tests and logs.
    pub fn huge_bytes(&self) -> usize {
        transparent_huge_bytes(self.ptr.as_ptr() as usize)
    }
}

impl<T: Copy> Deref for HugeArray<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialised elements at `ptr`, owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for HugeArray<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for HugeArray<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping `new` made; `T: Copy` has no destructor to run.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.map_len) };
    }
}

/// A private anonymous mapping of `len` bytes (a multiple of `HUGE_PAGE`), aligned to
/// 2 MiB and advised `MADV_HUGEPAGE`, not yet faulted in: the caller writes every page
/// before the fast path uses it, so that the faults take huge pages. mmap(2) aligns to
/// 4 KiB only, so it maps one huge page more and unmaps the ends outside the aligned
/// middle. Where transparent huge pages are off the memory is on 4 KiB pages and works
/// the same.
pub(crate) fn map_transparent_huge(len: usize) -> std::io::Result<NonNull<u8>> {
    assert!(len % HUGE_PAGE == 0 && len > 0, "whole huge pages");
    let over = len + HUGE_PAGE;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: an anonymous mapping at no fixed address.
    let raw = unsafe { libc::mmap(std::ptr::null_mut(), over, prot, flags, -1, 0) };
    if raw == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    let raw = raw as usize;
    let start = raw.next_multiple_of(HUGE_PAGE);
    let head = start - raw;
    let tail = over - head - len;
    // SAFETY: both ranges are parts of the mapping just made that the caller will not
    // use (a zero-length munmap is skipped: it would fail with EINVAL); the advice does
    // not change the contents.
    unsafe {
        if head > 0 {
            libc::munmap(raw as *mut libc::c_void, head);
        }
        if tail > 0 {
            libc::munmap((start + len) as *mut libc::c_void, tail);
        }
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
    Ok(NonNull::new(start as *mut u8).expect("mmap returned a non-null address"))
}

/// Bytes of the mapping that holds `addr` that the kernel backs with transparent huge
/// pages (`AnonHugePages` in /proc/self/smaps; 0 if it cannot tell). The kernel may have
/// merged the mapping with a neighbour of the same kind, whose pages then count too.
pub(crate) fn transparent_huge_bytes(addr: usize) -> usize {
    smaps_field(addr, "AnonHugePages:")
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The rest of the line `field` (e.g. "AnonHugePages:") of the mapping that holds
/// `addr`, from /proc/self/smaps.
pub(crate) fn smaps_field(addr: usize, field: &str) -> Option<String> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let mut in_region = false;
    for line in smaps.lines() {
        // A mapping's first line starts with its address range, "from-to perms ...".
        let range = line.split_once(' ').and_then(|(range, _)| {
            let (from, to) = range.split_once('-')?;
            Some((
                usize::from_str_radix(from, 16).ok()?,
                usize::from_str_radix(to, 16).ok()?,
            ))
        });
        if let Some((from, to)) = range {
            in_region = (from..to).contains(&addr);
        } else if in_region {
            if let Some(rest) = line.strip_prefix(field) {
                return Some(rest.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_are_initialised_aligned_and_on_huge_pages_where_the_kernel_allows() {
        let mut a = HugeArray::new(300_000, 7u64);
        assert_eq!(a.len(), 300_000);
        assert!(a.iter().all(|&v| v == 7));
        assert_eq!(a.as_ptr() as usize % HUGE_PAGE, 0, "2 MiB-aligned");
        a[299_999] = 9;
        assert_eq!(a[299_999], 9);
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if thp.contains("[never]") {
            assert_eq!(a.huge_bytes(), 0);
        } else {
            // 2.4 MB of elements: two whole huge pages mapped, both huge (a neighbour
            // merged into the same mapping may add its own).
            assert!(a.huge_bytes() >= 2 * HUGE_PAGE, "THP: {thp}");
            let flags = smaps_field(a.as_ptr() as usize, "VmFlags:").expect("VmFlags");
            assert!(flags.contains(" hg"), "MADV_HUGEPAGE: {flags}");
        }
        let empty = HugeArray::new(0, 0u8);
        assert!(empty.is_empty());
    }
}
