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
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

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

/// The frame region and its free list.
pub struct FrameStore {
    base: NonNull<u8>,
    n_frames: u32,
    huge_pages: bool,
    free: Mutex<Vec<u32>>,
    /// AF_XDP sockets open on the region.
    live_sockets: AtomicU32,
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
        if s.huge_pages {
            tracing::info!(
                frames = n,
                mib,
                "AF_XDP frame region allocated in 2 MiB pages"
            );
        } else {
            tracing::info!(
                frames = n,
                mib,
                "AF_XDP frame region allocated in 4 KiB pages (not {} free 2 MiB huge pages; \
                 `sysctl vm.nr_hugepages={}` saves a TLB miss per frame)",
                mib / 2,
                mib / 2
            );
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
        // Shared, not private: a private mapping whose pages are pinned must be copied
        // page by page at fork(2), which with huge pages fails for want of spare ones.
        let flags = libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
        // Huge pages first (a frame per TLB entry otherwise: each received frame's first
        // touch was a TLB miss as well as a cache miss), plain pages if none are free.
        let mut mapped = None;
        for (extra, huge_pages) in [(libc::MAP_HUGETLB, true), (0, false)] {
            // SAFETY: an anonymous mapping at no fixed address.
            let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags | extra, -1, 0) };
            if p != libc::MAP_FAILED {
                mapped = Some((p, huge_pages));
                break;
            }
        }
        let Some((p, huge_pages)) = mapped else {
            return Err(FrameStoreError {
                mib: len >> 20,
                source: std::io::Error::last_os_error(),
            });
        };
        Ok(FrameStore {
            base: NonNull::new(p.cast()).expect("mmap returned a non-null address"),
            n_frames,
            huge_pages,
            // Low indices on top: handed out first.
            free: Mutex::new((0..n_frames).rev().collect()),
            live_sockets: AtomicU32::new(0),
        })
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

    /// Counts a socket opened on the region: the fill-ring share (`fill_target`)
    /// divides the region among the open ones.
    pub fn open_socket(&self) {
        self.live_sockets.fetch_add(1, Ordering::Relaxed);
    }

    /// Sockets open now.
    pub fn live_sockets(&self) -> u32 {
        self.live_sockets.load(Ordering::Relaxed)
    }

    /// How many frames one socket should keep in its fill ring, at most `ring`: an
    /// equal share of a quarter of the region (the rest is for rx rings, packets in
    /// flight and caches), so idle sockets cannot park every frame.
    pub fn fill_target(&self, ring: u32) -> u32 {
        let share = self.n_frames / (4 * self.live_sockets().max(1));
        share.clamp(64.min(ring), ring)
    }

    /// Takes back the frames a closed socket's rings held (the kernel no longer
    /// receives into or transmits from them) and stops counting the socket.
    pub fn close_socket(&self, frames: Vec<u32>) {
        self.give(frames);
        self.live_sockets.fetch_sub(1, Ordering::Relaxed);
    }
}
