//! Packet buffers and batches.
//!
//! A `PacketBuf` is a fixed-capacity buffer allocated once (from a `PacketPool`) and
//! recycled forever: the fast path never allocates. The frame starts `HEADROOM` bytes into
//! the buffer so that VLAN pushes and tunnel encapsulation can grow the front in place.

use std::ptr::NonNull;

use super::frames::{FrameStore, FRAME_BULK, FRAME_SIZE};
use super::meta::{PacketMeta, TUNNEL_OFFSET};
use super::prefetch::LINE;

/// Bytes reserved in front of a received frame for pushes and tunnel headers
/// (outer Ethernet 14 + IPv6 40 + UDP 8 + Geneve with options 8+ fits comfortably).
pub const HEADROOM: usize = 256;
/// Largest frame a buffer holds after the headroom (jumbo frames up to ~3.8 KB).
pub const MAX_FRAME: usize = 4096 - HEADROOM;
/// Total buffer size.
pub const BUF_SIZE: usize = HEADROOM + MAX_FRAME;
/// Packets per batch (OVS's NETDEV_MAX_BURST).
pub const MAX_BURST: usize = 32;

/// Value of `PacketBuf::frame` when the bytes are in the buffer's own heap storage.
const NO_FRAME: u32 = u32::MAX;

/// A frame plus metadata in a recycled buffer.
///
/// The bytes live either in the buffer's own heap storage or, for a packet an AF_XDP
/// port received, in a frame of the `FrameStore` that the kernel wrote it into: `recv`
/// lends the frame to the buffer instead of copying it, and an AF_XDP `send` hands the
/// same frame to its tx ring, so forwarding between AF_XDP ports copies nothing. Both
/// storages have the same layout (`HEADROOM` then `MAX_FRAME`), so everything else here
/// works the same on either.
///
/// A `PacketBuf` is a pointer to its `PacketBody`, so the fast path moves 8 bytes, not
/// the ~140 of the body, each time a packet goes from the pool to a batch, from batch
/// to batch and back (those moves were `memcpy` calls and ~3% of a saturated PMD).
pub struct PacketBuf(Box<PacketBody>);

/// What a `PacketBuf` points to: the bytes' whereabouts and the metadata. Line-aligned
/// and laid out in order (`repr(C)`) so that everything but the tunnel metadata is in
/// the first of its two lines: receiving, parsing, transmitting and recycling a packet
/// that met no tunnel touch one line, not two. A PMD's 128 packets an iteration come
/// back to these bodies after the kernel's transmit path has evicted them from L1; with
/// the second line out of the way, one 64-byte UDP flow took a median 0.88x the user
/// cycles a packet (eight pairs, benches/e2e/HISTORY.md, thirtieth session).
#[repr(C, align(64))]
pub struct PacketBody {
    /// Start of the current storage: `heap`, or the lent frame.
    ptr: NonNull<u8>,
    /// The buffer's own `BUF_SIZE` bytes, owned (freed in `Drop`). A raw pointer rather
    /// than a `Box`, so that `ptr`, derived from it, stays valid however the body moves.
    heap: NonNull<u8>,
    start: usize,
    len: usize,
    /// Index of the lent frame in the `FrameStore`, or `NO_FRAME`.
    frame: u32,
    /// Whether the lent frame is *cold*: the kernel had written many frames after it by
    /// the time it was received (`lend_frame`), so its lines and its page have left the
    /// caches. An AF_XDP `send` copies such a frame into a hot one rather than hand the
    /// kernel a cold page to copy.
    cold: bool,
    /// Metadata travelling with the frame.
    pub meta: PacketMeta,
}

const _: () = assert!(
    core::mem::size_of::<PacketBody>() <= 2 * LINE,
    "a packet's body fits in two cache lines"
);
const _: () = assert!(
    core::mem::offset_of!(PacketBody, meta) + TUNNEL_OFFSET == LINE,
    "everything but the tunnel metadata is in the body's first line"
);

// SAFETY: `ptr` points at `heap` (owned) or into a frame of the process-lifetime
// `FrameStore` that this buffer exclusively holds until it gives it back.
unsafe impl Send for PacketBody {}
// SAFETY: shared references only read through `ptr`.
unsafe impl Sync for PacketBody {}

impl Default for PacketBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for PacketBuf {
    fn clone(&self) -> Self {
        let mut p = PacketBuf::new();
        p.set_data(self.data());
        p.meta = self.meta;
        p
    }
}

impl core::ops::Deref for PacketBuf {
    type Target = PacketBody;
    #[inline(always)]
    fn deref(&self) -> &PacketBody {
        &self.0
    }
}

impl core::ops::DerefMut for PacketBuf {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut PacketBody {
        &mut self.0
    }
}

impl core::fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PacketBuf")
            .field("len", &self.len)
            .field("lent_frame", &(self.frame != NO_FRAME))
            .field("meta", &self.meta)
            .finish()
    }
}

impl Drop for PacketBody {
    fn drop(&mut self) {
        // A buffer dropped rather than returned to its pool gives its frame straight
        // back to the store (a lock; the fast path uses `PacketPool::put`).
        if let Some(f) = self.take_frame() {
            if let Some(store) = FrameStore::existing() {
                store.give([f]);
            }
        }
        // SAFETY: `heap` came from `Box::into_raw` of a `BUF_SIZE` boxed slice in
        // `PacketBuf::new` and is freed only here.
        drop(unsafe {
            Box::from_raw(core::ptr::slice_from_raw_parts_mut(
                self.heap.as_ptr(),
                BUF_SIZE,
            ))
        });
    }
}

impl PacketBuf {
    /// Allocates a new empty buffer. Only pools and tests call this; the fast path reuses.
    pub fn new() -> Self {
        let heap = Box::into_raw(vec![0u8; BUF_SIZE].into_boxed_slice()).cast::<u8>();
        let heap = NonNull::new(heap).expect("Box::into_raw is non-null");
        PacketBuf(Box::new(PacketBody {
            ptr: heap,
            heap,
            start: HEADROOM,
            len: 0,
            frame: NO_FRAME,
            cold: false,
            meta: PacketMeta::default(),
        }))
    }

    /// A buffer holding a copy of `frame` (tests and slow paths).
    pub fn from_frame(frame: &[u8]) -> Self {
        let mut p = PacketBuf::new();
        p.set_data(frame);
        p
    }
}

impl PacketBody {
    /// The frame bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        // SAFETY: start + len <= BUF_SIZE always holds, and `ptr` is valid for BUF_SIZE
        // bytes (the heap buffer, or a lent FRAME_SIZE frame) that only this buffer uses.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().add(self.start), self.len) }
    }

    /// The frame bytes, mutable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr().add(self.start), self.len) }
    }

    /// The whole storage (headroom included).
    #[inline(always)]
    fn storage(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` is valid for BUF_SIZE bytes that only this buffer uses.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), BUF_SIZE) }
    }

    /// Frame length.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame is empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Holds frame `idx` of `store`, whose bytes `start..start + len` the kernel wrote,
    /// in place of a copy, `cold` if the kernel had written many frames since (see
    /// `lent_frame_is_cold`). The caller gives up the frame. The metadata stays as it is: a
    /// `PacketPool`'s buffers come out of `get` with the default (`put` clears it while
    /// the buffer is still in the cache, which cost fewer cycles than clearing it here).
    /// Returns false (and takes nothing) if the range does not fit in a frame.
    #[inline]
    pub fn lend_frame(
        &mut self,
        store: &FrameStore,
        idx: u32,
        start: usize,
        len: usize,
        cold: bool,
    ) -> bool {
        if start.checked_add(len).map_or(true, |end| end > FRAME_SIZE) || idx >= store.n_frames() {
            return false;
        }
        debug_assert_eq!(self.frame, NO_FRAME, "buffer already holds a frame");
        self.ptr = store.frame_ptr(idx);
        self.frame = idx;
        self.cold = cold;
        self.start = start;
        self.len = len;
        true
    }

    /// The lent frame and where the bytes are in it: (index, offset, length).
    #[inline(always)]
    pub fn lent_frame(&self) -> Option<(u32, usize, usize)> {
        (self.frame != NO_FRAME).then_some((self.frame, self.start, self.len))
    }

    /// Whether the packet is in a lent frame that was cold when it was received: the
    /// kernel had written many frames after it (how many, the receiving port decides:
    /// `netdev::afxdp::COLD_BACKLOG`).
    #[inline(always)]
    pub fn lent_frame_is_cold(&self) -> bool {
        self.frame != NO_FRAME && self.cold
    }

    /// Gives up the lent frame (the caller now owns it) and goes back to the heap
    /// storage, empty.
    #[inline]
    pub fn take_frame(&mut self) -> Option<u32> {
        if self.frame == NO_FRAME {
            return None;
        }
        let f = self.frame;
        self.frame = NO_FRAME;
        self.cold = false;
        self.ptr = self.heap;
        self.start = HEADROOM;
        self.len = 0;
        Some(f)
    }

    /// Resets the buffer to hold a copy of `frame` at the standard headroom, clearing
    /// metadata. Frames longer than `MAX_FRAME` are truncated (ports count them).
    #[inline]
    pub fn set_data(&mut self, frame: &[u8]) {
        let n = frame.len().min(MAX_FRAME);
        self.start = HEADROOM;
        self.len = n;
        self.storage()[HEADROOM..HEADROOM + n].copy_from_slice(&frame[..n]);
        self.meta.reset();
    }

    /// Space available to receive into, at the standard headroom: a port's rx path copies
    /// into this and then calls `set_len`.
    #[inline]
    pub fn rx_space(&mut self) -> &mut [u8] {
        self.start = HEADROOM;
        self.len = 0;
        self.meta.reset();
        &mut self.storage()[HEADROOM..]
    }

    /// Sets the frame length after writing into `rx_space`.
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(BUF_SIZE - self.start);
    }

    /// Grows the frame at the front by `n` bytes and returns the new front bytes.
    /// Returns `None` when the headroom is exhausted.
    #[inline]
    pub fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        self.len += n;
        let start = self.start;
        Some(&mut self.storage()[start..start + n])
    }

    /// Removes `n` bytes from the front. Returns false (and changes nothing) if the frame
    /// is shorter than `n`.
    #[inline]
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.start += n;
        self.len -= n;
        true
    }

    /// Opens a gap of `n` bytes at `offset` by moving the first `offset` bytes toward the
    /// front (used by VLAN push: the MACs move, the rest stays). Returns false when the
    /// headroom is exhausted or `offset > len`.
    #[inline]
    pub fn insert_gap(&mut self, offset: usize, n: usize) -> bool {
        if n > self.start || offset > self.len {
            return false;
        }
        let old = self.start;
        self.start -= n;
        let start = self.start;
        self.storage().copy_within(old..old + offset, start);
        self.len += n;
        true
    }

    /// Removes `n` bytes at `offset` by moving the first `offset` bytes back (VLAN pop).
    /// Returns false when `offset + n > len`.
    #[inline]
    pub fn remove_gap(&mut self, offset: usize, n: usize) -> bool {
        if offset + n > self.len {
            return false;
        }
        let old = self.start;
        self.storage().copy_within(old..old + offset, old + n);
        self.start += n;
        self.len -= n;
        true
    }
}

/// A batch of up to `MAX_BURST` packets. Backed by a `Vec` with fixed capacity, so pushes
/// within the burst never allocate.
pub struct PacketBatch {
    /// The packets. Invariant: `len() <= MAX_BURST`.
    pub pkts: Vec<PacketBuf>,
}

impl Default for PacketBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketBatch {
    /// An empty batch with room for `MAX_BURST` packets.
    pub fn new() -> Self {
        PacketBatch {
            pkts: Vec::with_capacity(MAX_BURST),
        }
    }
    /// Number of packets.
    pub fn len(&self) -> usize {
        self.pkts.len()
    }
    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }
    /// Whether another packet fits.
    pub fn is_full(&self) -> bool {
        self.pkts.len() >= MAX_BURST
    }
}

/// A free list of packet buffers, one per PMD (or per test): the fast path takes buffers
/// from here on rx and returns them after tx or drop. It also caches `FrameStore` frames
/// for the thread's AF_XDP queues (fill-ring refills, copies into tx frames), moving them
/// to and from the store `FRAME_BULK` at a time, so the store's lock is taken once per
/// couple of hundred frames.
pub struct PacketPool {
    free: Vec<PacketBuf>,
    frames: Vec<u32>,
}

impl PacketPool {
    /// Preallocates `n` buffers.
    pub fn new(n: usize) -> Self {
        PacketPool {
            free: (0..n).map(|_| PacketBuf::new()).collect(),
            frames: Vec::with_capacity(3 * FRAME_BULK),
        }
    }
    /// Takes a buffer, with default metadata; allocates only if the pool ran dry (sized
    /// so that it does not).
    #[inline]
    pub fn get(&mut self) -> PacketBuf {
        self.free.pop().unwrap_or_default()
    }
    /// Returns a buffer to the pool (its metadata cleared), and the frame it holds to the
    /// frame cache. Clearing here rather than when an rx path lends the buffer a frame
    /// means every path that takes a buffer from a pool gets clean metadata without
    /// having to remember to reset it (no measurable cost difference either way:
    /// benches/e2e/HISTORY.md, eleventh session).
    #[inline]
    pub fn put(&mut self, mut p: PacketBuf) {
        if let Some(f) = p.take_frame() {
            self.put_frame(f);
        }
        p.meta.reset();
        self.free.push(p);
    }
    /// Buffers currently free.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// A free frame from the cache, refilled from `store` when empty; `None` when the
    /// store has none left either.
    #[inline]
    pub fn get_frame(&mut self, store: &FrameStore) -> Option<u32> {
        if self.frames.is_empty() {
            store.take(&mut self.frames, FRAME_BULK);
        }
        self.frames.pop()
    }

    /// Returns a free frame to the cache; when the cache reaches three bulks, one bulk
    /// goes back to the store.
    #[inline]
    pub fn put_frame(&mut self, f: u32) {
        self.frames.push(f);
        if self.frames.len() >= 3 * FRAME_BULK {
            if let Some(store) = FrameStore::existing() {
                let at = self.frames.len() - FRAME_BULK;
                store.give(self.frames.drain(at..));
            }
        }
    }

    /// Frames in the cache.
    pub fn cached_frames(&self) -> usize {
        self.frames.len()
    }
}

impl Drop for PacketPool {
    fn drop(&mut self) {
        if let Some(store) = FrameStore::existing() {
            store.give(self.frames.drain(..));
        }
    }
}

#[cfg(test)]
#[path = "buffer_tests.rs"]
mod tests;
