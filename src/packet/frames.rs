//! The frame store: one region of 4 KiB frames that every AF_XDP socket of the process
//! registers as its umem, so a frame received on one port can be queued for transmit on
//! any other without being copied.
//!
//! Each socket registers the *same* memory as its own umem (the kernel pins the pages once
//! per registration), rather than sharing one kernel umem through `XDP_SHARED_UMEM`: a
//! shared umem is tied to the socket that registered it (the kernel wants that socket
//! still bound when another joins), its copy/zero-copy mode is fixed by the first bind,
//! and the first port could then never be deleted independently. With one region and
//! many registrations, a frame's address (its offset in the region) means the same frame
//! to every socket, which is all zero-copy forwarding needs.
//!
//! Frames are handed out by index. Each is in exactly one place: the store's free list, a
//! thread's `PacketPool` cache, a `PacketBuf`, or one socket's rings. Each socket keeps
//! the set of frames its rings hold (`FrameSet`, in `netdev::afxdp`) and gives them back to
//! the store when it closes (`close_socket`), so the frames the kernel still had come
//! back instead of leaking. The region is never unmapped: a `PacketBuf` may point into it
//! from any thread at any time, and the kernel may still finish a transmit from it after
//! a socket is gone.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use super::huge_array::{map_transparent_huge, transparent_huge_bytes, HUGE_PAGE};

/// Bytes per frame: a `PacketBuf`'s whole buffer (headroom plus the largest frame).
pub const FRAME_SIZE: usize = super::buffer::BUF_SIZE;
/// Frames in the store by default (256 MiB, as much as Open vSwitch gives four AF_XDP
/// queues): full 4,096-slot fill rings for four sockets, an equal share of a quarter of
/// the region each beyond that (`fill_target`). `[global] afxdp_frames` changes it.
pub const STORE_FRAMES: u32 = 64 * 1024;
/// Frames moved between a thread's cache and the store at a time (one lock per move).
pub const FRAME_BULK: usize = 256;

/// Why the store could not be created.
#[derive(Debug, thiserror::Error)]
#[error("allocating the {mib} MiB AF_XDP frame region: {source}")]
pub struct FrameStoreError {
    mib: usize,
    #[source]
    source: std::io::Error,
}

/// What backs the frame region. Each received frame's first touch is a TLB miss as well
/// as a cache miss when frames sit on 4 KiB pages of their own; with 2 MiB pages the
/// frames in circulation fit in the TLB. Measured end to end (one 64-byte flow, 50 us
/// sleeps, the PMD's own cycle counts, five pairs): the rx function took 18-89 fewer
/// cycles per packet, the parser then waited longer for the same header lines (13-27
/// more), and the iteration's user cycles came out 2% higher to 15% lower
/// (benches/e2e/HISTORY.md, tenth session).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionPages {
    /// Reserved 2 MiB huge pages (`vm.nr_hugepages`).
    HugeTlb,
    /// Transparent huge pages: plain memory the kernel backed with 2 MiB pages where it
    /// could (`huge_bytes` of the region), without a reservation.
    Transparent {
        /// Bytes of the region on 2 MiB pages.
        huge_bytes: usize,
    },
    /// 4 KiB pages only (transparent huge pages off, or none to be had).
    Small,
}

/// The frame region and its free list.
pub struct FrameStore {
    base: NonNull<u8>,
    n_frames: u32,
    pages: RegionPages,
    free: Mutex<Vec<u32>>,
    /// Fill-ring slots of the AF_XDP sockets open on the region (the sum of their
    /// ring sizes): each socket's share of the region is in proportion to its ring.
    live_slots: AtomicU64,
}

// SAFETY: the region is plain memory that lives for the whole process; which thread may
// touch which frame is governed by frame ownership (one holder at a time), and the free
// list is synchronised.
unsafe impl Send for FrameStore {}
// SAFETY: as above.
unsafe impl Sync for FrameStore {}

static STORE: OnceLock<&'static FrameStore> = OnceLock::new();
static CREATE: Mutex<()> = Mutex::new(());
/// Frames the store gets when it is created (`set_size`).
static SIZE: AtomicU32 = AtomicU32::new(STORE_FRAMES);

impl FrameStore {
    /// Sets how many frames the store gets when the first AF_XDP port creates it
    /// (`[global] afxdp_frames`). Once it exists its size is fixed: a different request
    /// is logged and ignored (a restart applies it).
    pub fn set_size(n_frames: u32) {
        let _g = CREATE.lock().unwrap_or_else(|e| e.into_inner());
        match STORE.get() {
            Some(s) if s.n_frames != n_frames => tracing::warn!(
                "afxdp_frames = {n_frames} takes effect at the next start: the frame region \
                 already has {} frames",
                s.n_frames
            ),
            Some(_) => {}
            None => SIZE.store(n_frames.max(1), Ordering::Relaxed),
        }
    }

    /// The process's store, created on first use (by the first AF_XDP port).
    pub fn global() -> Result<&'static FrameStore, FrameStoreError> {
        if let Some(s) = STORE.get() {
            return Ok(s);
        }
        let _g = CREATE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = STORE.get() {
            return Ok(s);
        }
        let n = SIZE.load(Ordering::Relaxed);
        let s: &'static FrameStore = Box::leak(Box::new(FrameStore::map(n)?));
        let _ = STORE.set(s);
        let mib = s.len() >> 20;
        let hint = format!(
            "`sysctl vm.nr_hugepages={}` reserves 2 MiB pages for all of it",
            mib / 2
        );
        match s.pages {
            RegionPages::HugeTlb => tracing::info!(
                frames = n,
                mib,
                "AF_XDP frame region allocated in reserved 2 MiB huge pages"
            ),
            RegionPages::Transparent { huge_bytes } if huge_bytes * 10 >= s.len() * 9 => {
                tracing::info!(
                    frames = n,
                    mib,
                    huge_mib = huge_bytes >> 20,
                    "AF_XDP frame region allocated in transparent 2 MiB huge pages"
                )
            }
            RegionPages::Transparent { huge_bytes } => tracing::warn!(
                frames = n,
                mib,
                huge_mib = huge_bytes >> 20,
                "AF_XDP frame region only partly on transparent huge pages (memory too \
                 fragmented); the rest is on 4 KiB pages, a TLB miss per frame: {hint}"
            ),
            RegionPages::Small => tracing::warn!(
                frames = n,
                mib,
                "AF_XDP frame region allocated in 4 KiB pages (no free reserved huge pages, \
                 transparent huge pages off), a TLB miss per frame: {hint}"
            ),
        }
        Ok(s)
    }

    /// The store if an AF_XDP port ever created it.
    #[inline]
    pub fn existing() -> Option<&'static FrameStore> {
        STORE.get().copied()
    }

    pub(crate) fn map(n_frames: u32) -> Result<FrameStore, FrameStoreError> {
        let len = n_frames as usize * FRAME_SIZE;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let len_err = |source| FrameStoreError {
            mib: len >> 20,
            source,
        };
        // Reserved huge pages first. Shared, not private: a private mapping whose pages
        // are pinned must be copied page by page at fork(2), which with reserved huge
        // pages fails for want of spare ones.
        let flags = libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | libc::MAP_HUGETLB;
        // SAFETY: an anonymous mapping at no fixed address.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
        let (p, pages) = if p != libc::MAP_FAILED {
            (p, RegionPages::HugeTlb)
        } else {
            // Else plain private memory the kernel may back with transparent huge pages
            // (shared anonymous memory is shmem, whose huge pages are off by default), on
            // whole 2 MiB pages (the frames end where they end). A fork(2) gives the child
            // a copy (the kernel copies pinned pages rather than sharing them); the
            // daemon spawns its helpers without copying its memory.
            let p = map_transparent_huge(len.next_multiple_of(HUGE_PAGE))
                .map_err(len_err)?
                .as_ptr();
            // Fault every page in now (the fast path must not take page faults), after
            // the advice so that the faults take huge pages.
            // SAFETY: writes within the mapping just made.
            unsafe { populate(p, len) };
            let huge_bytes = transparent_huge_bytes(p as usize);
            let pages = if huge_bytes > 0 {
                RegionPages::Transparent { huge_bytes }
            } else {
                RegionPages::Small
            };
            (p.cast(), pages)
        };
        Ok(FrameStore {
            base: NonNull::new(p.cast()).expect("mmap returned a non-null address"),
            n_frames,
            pages,
            // Low indices on top: handed out first.
            free: Mutex::new((0..n_frames).rev().collect()),
            live_slots: AtomicU64::new(0),
        })
    }

    /// What backs the region.
    pub fn pages(&self) -> RegionPages {
        self.pages
    }

    /// Start of the region (the umem address every socket registers).
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Length of the region in bytes.
    pub fn len(&self) -> usize {
        self.n_frames as usize * FRAME_SIZE
    }

    /// Whether the region has no frames (never: kept for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        self.n_frames == 0
    }

    /// Number of frames.
    pub fn n_frames(&self) -> u32 {
        self.n_frames
    }

    /// Pointer to the first byte of frame `idx`.
    #[inline(always)]
    pub fn frame_ptr(&self, idx: u32) -> NonNull<u8> {
        debug_assert!(idx < self.n_frames);
        // SAFETY: idx < n_frames, so the offset is inside the mapping.
        unsafe { self.base.add(idx as usize * FRAME_SIZE) }
    }

    /// Moves up to `n` free frames onto `out`; returns how many.
    pub fn take(&self, out: &mut Vec<u32>, n: usize) -> usize {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let k = n.min(free.len());
        let at = free.len() - k;
        out.extend(free.drain(at..));
        k
    }

    /// Returns frames to the free list.
    pub fn give(&self, frames: impl IntoIterator<Item = u32>) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.extend(frames);
    }

    /// Frames on the free list right now.
    pub fn free_frames(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Counts a socket with a fill ring of `ring` slots opened on the region: the
    /// fill-ring shares (`fill_target`) divide the region among the open ones.
    pub fn open_socket(&self, ring: u32) {
        self.live_slots
            .fetch_add(u64::from(ring), Ordering::Relaxed);
    }

    /// Fill-ring slots of the sockets open now.
    pub fn live_slots(&self) -> u64 {
        self.live_slots.load(Ordering::Relaxed)
    }

    /// How many frames a socket whose fill ring has `ring` slots should keep in it, at
    /// most `ring`: a quarter of the region (the rest is for rx rings, packets in flight
    /// and caches) shared among the open sockets in proportion to their rings, so idle
    /// sockets cannot park every frame and a socket asked to buffer more
    /// (`n_rxq_desc`) gets more. With every ring the default size, an equal share.
    pub fn fill_target(&self, ring: u32) -> u32 {
        let slots = self.live_slots().max(u64::from(ring)).max(1);
        let share = u64::from(self.n_frames) / 4 * u64::from(ring) / slots;
        (share.min(u64::from(ring)) as u32).max(64.min(ring))
    }

    /// The store size (`afxdp_frames`) at which sockets whose fill rings total `slots`
    /// slots all get full rings (`fill_target`): for the log line that says so.
    pub fn frames_for_full_rings(slots: u64) -> u64 {
        (4 * slots).div_ceil(512) * 512
    }

    /// Takes back the frames a closed socket's rings held (the kernel no longer
    /// receives into or transmits from them) and stops counting the socket's `ring`
    /// slots.
    pub fn close_socket(&self, frames: Vec<u32>, ring: u32) {
        self.give(frames);
        self.live_slots
            .fetch_sub(u64::from(ring), Ordering::Relaxed);
    }
}

/// Faults in every page of `len` bytes at `p`: one `MADV_POPULATE_WRITE` (Linux 5.14),
/// else a write to each 4 KiB page.
///
/// # Safety
/// `p..p + len` must be a writable mapping nobody else uses yet.
unsafe fn populate(p: *mut u8, len: usize) {
    // SAFETY: the caller's mapping.
    if unsafe { libc::madvise(p.cast(), len, libc::MADV_POPULATE_WRITE) } == 0 {
        return;
    }
    for off in (0..len).step_by(4096) {
        // SAFETY: inside the caller's mapping.
        unsafe { p.add(off).write_volatile(0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::huge_array::smaps_field;

    #[test]
    fn the_region_is_on_huge_pages_where_the_kernel_allows() {
        let store = FrameStore::map(16 * 1024).expect("a 64 MiB frame region");
        let start = store.base().as_ptr() as usize;
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        match store.pages() {
            RegionPages::HugeTlb => {}
            RegionPages::Transparent { huge_bytes } => {
                assert!(
                    huge_bytes * 10 >= store.len() * 9,
                    "{huge_bytes} of {} bytes on huge pages",
                    store.len()
                );
                let flags = smaps_field(start, "VmFlags:").expect("the region's VmFlags");
                assert!(flags.contains(" hg"), "MADV_HUGEPAGE: {flags}");
            }
            RegionPages::Small => assert!(
                thp.contains("[never]"),
                "transparent huge pages are on ({thp}) yet the region has none"
            ),
        }
        // Zeroed, writable, every frame.
        for idx in [0, 1, store.n_frames() / 2, store.n_frames() - 1] {
            let p = store.frame_ptr(idx).as_ptr();
            // SAFETY: inside the region, which nobody else uses.
            unsafe {
                assert_eq!(p.add(FRAME_SIZE - 1).read(), 0);
                p.write(0xa5);
                assert_eq!(p.read(), 0xa5);
            }
        }
        // SAFETY: the test's own region, no longer used.
        unsafe { libc::munmap(store.base().as_ptr().cast(), store.len()) };
    }

    #[test]
    fn fill_rings_share_a_quarter_of_the_region_in_proportion_to_their_size() {
        let store = FrameStore::map(64 * 1024).expect("a 256 MiB frame region");
        // One socket alone gets its whole ring while a quarter of the region allows.
        store.open_socket(4096);
        assert_eq!(store.fill_target(4096), 4096);
        // Four default rings: 16,384 frames, 4,096 each; a fifth: 3,276 each.
        for _ in 0..3 {
            store.open_socket(4096);
        }
        assert_eq!(store.fill_target(4096), 4096);
        store.open_socket(4096);
        assert_eq!(store.fill_target(4096), 16384 / 5);
        // A deep ring next to them gets shares in proportion: 131,072 of 151,552 slots.
        store.open_socket(131_072);
        assert_eq!(store.fill_target(131_072), 16384 * 131_072 / 151_552);
        assert_eq!(store.fill_target(4096), 16384 * 4096 / 151_552);
        assert_eq!(FrameStore::frames_for_full_rings(151_552), 606_208);
        // Closing gives the shares back; a tiny share still gets 64 frames.
        store.close_socket(Vec::new(), 131_072);
        assert_eq!(store.fill_target(4096), 16384 / 5);
        for _ in 0..1000 {
            store.open_socket(4096);
        }
        assert_eq!(store.fill_target(4096), 64);
        assert_eq!(store.fill_target(32), 32, "never more than the ring");
        // SAFETY: the test's own region, no longer used.
        unsafe { libc::munmap(store.base().as_ptr().cast(), store.len()) };
    }
}
