//! The transmit half of an `XskQueue`: queueing batches on the tx ring (a lent frame as
//! it is, a short lent packet or a heap packet copied into a free frame), kicking the
//! kernel once per poll iteration, and reaping completed frames back into the sending
//! thread's cache.
//!
//! Copy mode transmits only inside a kick (`sendto`), and the kernel's transmit path,
//! which runs on the PMD's core, evicts the switch's code and data from L1: `send`
//! therefore only queues, and `flush`, called once per iteration, kicks for everything
//! queued since the last one.
//!
//! In copy mode the kernel copies each frame into a fresh skb, reading the umem through
//! its own mapping of it: 4 KiB pages, one per frame, apart from the process's huge-page
//! mapping. A received frame handed straight back is on a page that mapping has not
//! touched for as many frames as are in rotation (thousands): the kernel's `memcpy` in
//! `skb_store_bits` was 10.7-10.9% of the PMD's samples forwarding 64-byte frames, about
//! 100 cycles a packet, against 1.2-1.3% for Open vSwitch, which copies each packet into
//! one of few hot transmit frames in user space. The packet's one line was in this
//! core's cache (the parser read it), so we take the cost to be the TLB miss; there are
//! no hardware counters on the development VM to show it directly. So a copy-mode socket
//! copies lent packets of up to `BOUNCE_MAX` bytes (one or two cache lines, already in
//! this core's cache from parsing) into *bounce frames*, a few frames used for nothing
//! else and reused as soon as they complete (`TxSide::bounce`): the kernel's copy fell to
//! 2.3% of the samples and its cycles per packet by 2-12% (benches/e2e/HISTORY.md, nineteenth
//! session).
//!
//! Longer packets are copied only when cold (`PacketBuf::lent_frame_is_cold`: received
//! from behind a backlog of `COLD_BACKLOG` frames or more, a PMD that has fallen behind),
//! up to the port's `tx_copy_max` (default `TX_COPY_MAX_DEFAULT`), with the C library's
//! `memcpy`: wide loads with several lines in flight, where the kernel's copy of the same
//! cold page (and the walk of its page table, whose entries are as cold) took 190-790
//! cycles more per packet for 256-1,024-byte frames under a CPU quota than its copy from
//! a hot bounce frame, against 60-300 for ours (benches/e2e/HISTORY.md, twenty-first session). A
//! frame taken a batch or two behind the kernel is still warm: copying it first changed
//! no processing cycles there and only added user time, so it goes as it came.

use std::sync::atomic::Ordering;

use super::frame_set::FrameSet;
use super::umem_addr::{frame_of, umem_addr};
use super::xsk::{ConsRing, ProdRing, XdpDesc};
use super::xsk_queue::{XskQueue, TX_RING};
use crate::packet::buffer::MAX_FRAME;
use crate::packet::frames::{FrameStore, FRAME_SIZE};
use crate::packet::prefetch;
use crate::packet::{PacketBatch, PacketPool};
use crate::pmd::cycles;

/// Frames in flight above which `send` reaps the completion ring first.
const TX_REAP_ABOVE: usize = TX_RING as usize / 2;
/// `sendto`s one `flush` makes at most: a kernel that keeps the 32-descriptor budget
/// needs `TX_RING / 32` for a full ring; one that stops making progress (a full
/// completion ring, its socket buffer spent) is left to the next iteration's flush.
const MAX_KICKS_PER_FLUSH: usize = TX_RING as usize / 32;

/// The tx and completion rings and the scratch `send` fills, behind the queue's tx
/// mutex.
pub(super) struct TxSide {
    pub(super) tx: ProdRing<XdpDesc>,
    pub(super) comp: ConsRing<u64>,
    pub(super) descs: Vec<XdpDesc>,
    /// Frame indices of `descs` (to give back those the ring did not take).
    pub(super) frames: Vec<u32>,
    pub(super) reaped: Vec<u64>,
    /// Frames other than bounce frames queued and not yet reaped (on the tx ring, with
    /// the kernel, or completed): given back to the store if the socket closes first.
    pub(super) held: FrameSet,
    /// All frames queued and not yet reaped, bounce frames included.
    pub(super) in_flight: usize,
    /// Free bounce frames (most recently completed last, reused first).
    pub(super) bounce: Vec<u32>,
    /// Every bounce frame this side has taken from the store, free or in flight: they
    /// go back to the store only when the socket closes, so a bounce frame needs no
    /// entry in `held` (one bit set and cleared per short packet saved).
    pub(super) bounce_owned: Vec<u32>,
    /// Cold lent packets up to this long are sent from a bounce frame, and every lent
    /// packet up to `BOUNCE_MAX` if this is at least as long (the port's `tx_copy_max`;
    /// 0: never, as for a zero-copy socket, whose driver reads the frame without the
    /// kernel's copy).
    pub(super) bounce_max: usize,
}

/// The longest lent packet a copy-mode socket always sends from a bounce frame: two
/// cache lines (64-byte frames, TCP acknowledgements), which the parser just read,
/// copied line by line. Longer ones go from a bounce frame only when they are cold
/// (`PacketBuf::lent_frame_is_cold`), up to `tx_copy_max`.
pub const BOUNCE_MAX: usize = 2 * prefetch::LINE;
/// The default `tx_copy_max`. Under overload (the PMD under a CPU quota, the frames cold,
/// benches/e2e/HISTORY.md, twenty-first session) copying them before the kernel did took 11-23%
/// fewer CPU cycles a packet at 1,024 bytes and 7-20% at 256, and delivered 12-30% and
/// 8-26% more. Our copy costs about 18 cycles a cold line; the kernel saved 190-520 at
/// 256 bytes and 330-790 at 1,024, much of it per frame (the page walk), not per line.
/// So the gain shrinks with the length: at 1,518 bytes it was 5-13% more delivered in
/// one series and nothing in another, and full-size frames are left to the kernel
/// unless the port asks.
pub const TX_COPY_MAX_DEFAULT: usize = 1024;
/// The most bounce frames a socket keeps: more than one poll iteration queues between
/// two reaps (four 32-packet batches), few enough that their pages stay in the TLB.
/// When all are in flight, a short packet leaves from the frame it came in.
pub const BOUNCE_FRAMES: usize = 256;
/// Where a bounce frame's packet starts. Received frames start at least
/// `XDP_PACKET_HEADROOM` in, and heap copies at `HEADROOM`, so a completion at this
/// offset is a bounce frame's.
const BOUNCE_OFFSET: usize = 0;

impl XskQueue {
    /// Queues the batch on the tx ring (a packet holding a lent frame as it is, others
    /// copied into a free frame) for the next `flush`; kicks now only if the ring cannot
    /// take the batch. Packets that find no free frame or ring slot are dropped and
    /// counted.
    pub fn send(&self, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize {
        let mut guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let Some(side) = guard.as_mut() else {
            return 0;
        };
        if side.in_flight + batch.len() > TX_REAP_ABOVE {
            side.reap(pool);
        }
        // Batches wait on the ring for `flush`; a ring that cannot take this one is kicked
        // now (the kernel empties it as it transmits) and what it sent is reaped.
        if (side.tx.free(batch.len() as u32) as usize) < batch.len() {
            self.kick(side);
            side.reap(pool);
        }
        side.descs.clear();
        side.frames.clear();
        let store = self.store;
        let mut dropped = 0u64;
        let mut bytes = 0u64;
        let mut zero_copy = 0u64;
        let mut bounced = 0u64;
        let bounce_max = side.bounce_max;
        // Short packets always (their lines are hot), longer ones when cold; the copy,
        // rounded up to whole lines, must end within the frame.
        let bounce = |start: usize, len: usize, cold: bool| {
            len <= bounce_max
                && (len <= BOUNCE_MAX || cold)
                && start + len.next_multiple_of(prefetch::LINE) <= FRAME_SIZE
        };
        for mut p in batch.pkts.drain(..) {
            // Where the packet leaves from: (frame, offset in it, length).
            let lent = p.lent_frame();
            let cold = p.lent_frame_is_cold();
            if lent.is_some() {
                p.take_frame();
            }
            let out = match lent {
                Some((idx, start, len)) if bounce(start, len, cold) => {
                    match side.bounce_frame(pool, store) {
                        Some(t) => {
                            // SAFETY: `idx` was lent to `p` (the whole slot is ours until
                            // it goes back to the pool) and `t` is free; both are
                            // FRAME_SIZE slots of the region, and the copy, rounded up to
                            // whole lines, ends within either (`bounce`).
                            unsafe {
                                let (src, dst) = (
                                    store.frame_ptr(idx).as_ptr().add(start),
                                    store.frame_ptr(t).as_ptr().add(BOUNCE_OFFSET),
                                );
                                if len <= BOUNCE_MAX {
                                    copy_lines(src, dst, len)
                                } else {
                                    // The C library's copy: wide loads, several lines in
                                    // flight, where the lines loop waits on each miss.
                                    std::ptr::copy_nonoverlapping(src, dst, len)
                                }
                            };
                            bounced += 1;
                            pool.put_frame(idx);
                            Some((t, BOUNCE_OFFSET, len))
                        }
                        None => {
                            zero_copy += 1;
                            Some((idx, start, len))
                        }
                    }
                }
                Some(lent) => {
                    zero_copy += 1;
                    Some(lent)
                }
                None => {
                    let frame = p.data();
                    match pool.get_frame(store) {
                        Some(idx) if !frame.is_empty() && frame.len() <= MAX_FRAME => {
                            let start = crate::packet::buffer::HEADROOM;
                            // SAFETY: the frame came from the free list: neither the
                            // kernel nor any buffer refers to it, and HEADROOM + MAX_FRAME
                            // fits.
                            unsafe {
                                std::ptr::copy_nonoverlapping(
                                    frame.as_ptr(),
                                    store.frame_ptr(idx).as_ptr().add(start),
                                    frame.len(),
                                );
                            }
                            Some((idx, start, frame.len()))
                        }
                        Some(idx) => {
                            pool.put_frame(idx);
                            None
                        }
                        None => None,
                    }
                }
            };
            match out {
                Some((idx, start, len)) => {
                    side.descs.push(XdpDesc {
                        addr: umem_addr(idx, start),
                        len: len as u32,
                        options: 0,
                    });
                    side.frames.push(idx);
                    bytes += len as u64;
                }
                None => dropped += 1,
            }
            pool.put(p);
        }
        let queued = side.tx.produce(&side.descs);
        side.in_flight += queued;
        // Per descriptor, not by count: the ring may refuse a tail that held the bounced
        // ones and take a lent or heap frame ahead of them.
        side.held.insert_all(
            side.descs[..queued]
                .iter()
                .zip(&side.frames[..queued])
                .filter(|(d, _)| !is_bounce(d.addr))
                .map(|(_, &f)| f),
        );
        for (d, &f) in side.descs[queued..].iter().zip(&side.frames[queued..]) {
            bytes -= d.len as u64;
            dropped += 1;
            if is_bounce(d.addr) {
                side.bounce.push(f);
            } else {
                pool.put_frame(f);
            }
        }
        if queued > 0 {
            self.tx_unsent.store(true, Ordering::Relaxed);
        }
        let c = &self.counters;
        c.tx_packets.add(queued as u64);
        c.tx_bytes.add(bytes);
        // The ring takes a prefix of the batch; what it refused was counted as dropped.
        c.tx_zero_copy.add(zero_copy.min(queued as u64));
        c.tx_bounced.add(bounced.min(queued as u64));
        if dropped > 0 {
            c.tx_dropped.add(dropped);
        }
        queued
    }

    /// Kicks the kernel for what `send` queued since the last flush: one `sendto` for the
    /// whole ring where `XDP_MAX_TX_SKB_BUDGET` was raised, else one per 32 descriptors
    /// for as long as each makes progress. Nothing queued: one relaxed load.
    ///
    /// Kicking once per poll iteration rather than once per batch lets an iteration that
    /// drains several full batches (`RX_BURSTS_PER_VISIT`) run its user-space work back
    /// to back instead of refilling its caches after the kernel's transmit path each
    /// time: with four batches per visit, a median 296 -> 258 user cycles per packet at
    /// saturation (benches/e2e/HISTORY.md).
    pub fn flush(&self) {
        if !self.tx_unsent.load(Ordering::Relaxed) {
            return;
        }
        let mut guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let Some(side) = guard.as_mut() else {
            return;
        };
        let mut left = side.tx.occupancy();
        for _ in 0..MAX_KICKS_PER_FLUSH {
            let now_left = self.kick(side);
            if now_left == 0 || now_left >= left {
                return;
            }
            left = now_left;
        }
    }

    /// One `sendto` if the ring asks for a wakeup; records whether descriptors remain and
    /// returns how many (0 when the ring needs no wakeup: the driver is transmitting).
    fn kick(&self, side: &mut TxSide) -> u32 {
        if !side.tx.needs_wakeup() {
            // The driver is transmitting: nothing waits for a kick any more.
            self.tx_unsent.store(false, Ordering::Relaxed);
            return 0;
        }
        self.counters.wakeups.fetch_add(1, Ordering::Relaxed);
        // A direct syscall: libc's `sendto` wrapper also toggles thread cancellation
        // around the call, which showed up as ~1% of the PMD's samples. Errors are the
        // transient ones (EAGAIN, ENOBUFS, EBUSY, ENETDOWN): the next kick retries.
        // SAFETY: sendto with no buffer and no address on a socket fd we own.
        cycles::in_syscall(|| unsafe {
            libc::syscall(
                libc::SYS_sendto,
                self.fd(),
                std::ptr::null::<u8>(),
                0usize,
                libc::MSG_DONTWAIT,
                std::ptr::null::<u8>(),
                0usize,
            )
        });
        let left = side.tx.occupancy();
        self.tx_unsent.store(left > 0, Ordering::Relaxed);
        left
    }
}

/// Copies `len` bytes from `src` to `dst` in whole cache lines (one fixed-size move per
/// line instead of a call into `memcpy` for a few bytes).
///
/// # Safety
/// `len` rounded up to a multiple of `prefetch::LINE` bytes must be readable at `src`
/// and writable at `dst`, and the two ranges must not overlap.
#[inline(always)]
unsafe fn copy_lines(src: *const u8, dst: *mut u8, len: usize) {
    type Line = [u8; prefetch::LINE];
    for i in 0..len.div_ceil(prefetch::LINE) {
        let off = i * prefetch::LINE;
        // SAFETY: the caller's contract; unaligned reads and writes of a byte array.
        unsafe {
            dst.add(off)
                .cast::<Line>()
                .write_unaligned(src.add(off).cast::<Line>().read_unaligned())
        };
    }
}

/// Whether a tx descriptor's address is a bounce frame's (no other packet starts at
/// `BOUNCE_OFFSET`).
#[inline(always)]
fn is_bounce(addr: u64) -> bool {
    frame_of(addr).1 == BOUNCE_OFFSET
}

impl TxSide {
    /// A free bounce frame: the most recently completed one, else (after reaping) one
    /// more from the pool while the side owns fewer than `BOUNCE_FRAMES`; `None` when
    /// all it may own are in flight.
    #[inline]
    fn bounce_frame(&mut self, pool: &mut PacketPool, store: &FrameStore) -> Option<u32> {
        if let Some(t) = self.bounce.pop() {
            return Some(t);
        }
        self.reap(pool);
        if let Some(t) = self.bounce.pop() {
            return Some(t);
        }
        if self.bounce_owned.len() >= BOUNCE_FRAMES {
            return None;
        }
        let t = pool.get_frame(store)?;
        self.bounce_owned.push(t);
        Some(t)
    }

    /// Moves completed frames to `pool`'s cache, bounce frames to `bounce`.
    pub(super) fn reap(&mut self, pool: &mut PacketPool) {
        while self.in_flight > 0 {
            let n = self.comp.consume(&mut self.reaped);
            self.in_flight -= n;
            self.held.remove_all(
                self.reaped[..n]
                    .iter()
                    .filter(|&&a| !is_bounce(a))
                    .map(|&a| frame_of(a).0),
            );
            for &a in &self.reaped[..n] {
                let f = frame_of(a).0;
                if is_bounce(a) {
                    self.bounce.push(f);
                } else {
                    pool.put_frame(f);
                }
            }
            if n < self.reaped.len() {
                return;
            }
        }
    }

    /// Every frame this side has (queued, in flight or completed, and its bounce
    /// frames), for the store when the socket closes.
    pub(super) fn take_frames(&mut self) -> Vec<u32> {
        let mut back = self.held.take_all();
        back.append(&mut self.bounce_owned);
        self.bounce.clear();
        self.in_flight = 0;
        back
    }
}
