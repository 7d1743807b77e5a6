//! One AF_XDP socket bound to one device queue, with its own umem.
//!
//! The umem's frames are split once, at creation, into an rx share and a tx share so the
//! receive side (owned by one PMD) and the transmit side (shared by the threads mapped to
//! this queue) never touch the same frame:
//! - rx frames live in the fill ring, the rx ring or our spare list; `recv` copies each
//!   frame into a `PacketBuf` and puts the frame on the spare list, which goes back to the
//!   fill ring `FILL_BATCH` frames at a time. There are twice as many rx frames as
//!   fill-ring slots: with only as many frames as slots, every frame waiting in the rx
//!   ring is one the fill ring lacks, so a PMD that is late by a ring's worth of frames
//!   starved the kernel, which then dropped frames (`rx_fill_ring_empty_descs`) rather
//!   than the rx ring filling.
//! - tx frames live in our free list, the tx ring or the completion ring; `send` copies
//!   packets into free frames, queues them and kicks the kernel once (copy mode transmits
//!   inside that `sendto`); completions are reaped when the free list runs low.
//!
//! The ring words the kernel writes from another core (the rx producer, the fill ring's
//! consumer and flags, which share a cache line) cost a cache miss each time they are
//! read, so the busy path reads the fill ring's side only once per `FILL_BATCH` frames
//! (the kernel has taken at least as many fill entries as we have consumed rx
//! descriptors), and an empty poll reads nothing but the rx producer.
//!
//! The rx side belongs to the one open `Rxq`, which takes it out of the queue while it
//! exists (no lock per poll: the lock/unlock pair was ~80% of an empty poll's time); the
//! tx side sits behind a mutex taken once per batch, contended only when more threads
//! than queues transmit.

use std::io::Write;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use xsk_rs::config::{BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig};
use xsk_rs::config::{UmemConfig, XdpFlags};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

use crate::dpif::PortStats;
use crate::packet::buffer::MAX_FRAME;
use crate::packet::{PacketBatch, PacketPool, MAX_BURST};
use crate::pmd::Counter;

/// Bytes per umem frame (the kernel reserves 256 of them as XDP headroom, leaving
/// `MAX_FRAME` for the packet, the same as a `PacketBuf`).
const FRAME_SIZE: u32 = 4096;
/// Slots in the fill ring and in the rx ring.
const RX_RING: u32 = 4096;
/// Frames reserved for receiving: a full fill ring plus a full rx ring, so the kernel
/// finds an empty frame for as long as the rx ring has room.
pub const RX_FRAMES: u32 = 2 * RX_RING;
/// Frames reserved for transmitting.
pub const TX_FRAMES: u32 = 1024;
/// Rx frames consumed between two refills of the fill ring (and between two looks at its
/// need-wakeup flag). Small against the ring (4,096), large against a batch (32).
const FILL_BATCH: usize = 64;
/// Consecutive empty polls between two looks at the fill ring while idle (a zero-copy
/// driver that ran dry and asks for a wakeup), and between two `publish`es.
pub const IDLE_CHECK_EVERY: u32 = 64;
/// Free tx frames below which `send` reaps the completion ring first.
const TX_REAP_BELOW: usize = 2 * MAX_BURST;

/// How a socket is bound: the bind flags and whether the XDP program runs in the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindMode {
    /// Zero-copy (`XDP_ZEROCOPY`) rather than copy (`XDP_COPY`).
    pub zero_copy: bool,
}

/// Per-queue counters, read by `stats()`. The rx ones have one writer (the `Rxq` holding
/// the rx side), the tx ones are written under the tx mutex, so both are plain
/// single-writer counters (no locked instruction per batch).
#[derive(Default)]
pub struct QueueCounters {
    rx_packets: Counter,
    rx_bytes: Counter,
    rx_dropped: Counter,
    tx_packets: Counter,
    tx_bytes: Counter,
    tx_dropped: Counter,
    /// Wakeup syscalls made (rx fill-ring kicks and tx sendto kicks); two writers.
    pub wakeups: AtomicU64,
}

/// Where a queue's umem frames are right now; a test of the recycling invariant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UmemFrames {
    /// Frames in the umem.
    pub total: usize,
    /// Rx frames waiting in the fill ring for the kernel to receive into.
    pub rx_in_fill_ring: usize,
    /// Rx frames received by the kernel but not yet consumed by us.
    pub rx_in_rx_ring: usize,
    /// Rx frames we hold because the fill ring was full (normally 0).
    pub rx_spare: usize,
    /// Tx frames free for sending.
    pub tx_free: usize,
    /// Tx frames handed to the kernel and not yet seen on the completion ring.
    pub tx_in_flight: usize,
}

impl UmemFrames {
    /// Whether every frame is accounted for (none leaked or duplicated).
    pub fn all_accounted(&self) -> bool {
        self.rx_in_fill_ring + self.rx_in_rx_ring + self.rx_spare + self.tx_free + self.tx_in_flight
            == self.total
    }
}

/// The receive half of a queue: its rings and spare frames, owned by the open `Rxq`.
pub struct RxSide {
    rx: RxQueue,
    fq: FillQueue,
    umem: Umem,
    scratch: Vec<FrameDesc>,
    spare: Vec<FrameDesc>,
    /// Rx descriptors consumed since the fill ring was last topped up.
    since_refill: usize,
    /// Consecutive empty polls (0 after a busy one).
    empty_polls: u32,
}

struct TxSide {
    tx: TxQueue,
    cq: CompQueue,
    umem: Umem,
    free: Vec<FrameDesc>,
    scratch: Vec<FrameDesc>,
    in_flight: usize,
}

/// An AF_XDP socket on one queue of a device.
pub struct XskQueue {
    qid: usize,
    fd: RawFd,
    /// The rx side while no `Rxq` holds it.
    rx: Mutex<Option<RxSide>>,
    /// Where the rx frames were after the holder's last poll: fill ring, rx ring, spare.
    rx_published: [AtomicUsize; 3],
    tx: Mutex<TxSide>,
    /// Set when a kick left descriptors on the tx ring (the kernel takes a bounded number
    /// per `sendto`), so `flush` kicks again; clear, `flush` costs one relaxed load.
    tx_unsent: AtomicBool,
    /// Whether an `Rxq` currently owns the receive side.
    pub rx_open: AtomicBool,
    /// Counters.
    pub counters: QueueCounters,
}

impl XskQueue {
    /// Creates the umem and socket for queue `qid` of `ifname` and fills the fill ring.
    /// libxdp never loads a program for it: the port attaches its own redirect program
    /// once every queue's socket is bound and in the map.
    pub fn create(ifname: &str, qid: usize, mode: BindMode) -> Result<Self, String> {
        let umem_config = UmemConfig::builder()
            .frame_size(FrameSize::new(FRAME_SIZE).map_err(|e| e.to_string())?)
            .fill_queue_size(QueueSize::new(RX_RING).map_err(|e| e.to_string())?)
            .comp_queue_size(QueueSize::new(TX_FRAMES).map_err(|e| e.to_string())?)
            .frame_headroom(0)
            .build()
            .map_err(|e| format!("umem config: {e}"))?;
        let n_frames = NonZeroU32::new(RX_FRAMES + TX_FRAMES).expect("nonzero");
        let (umem, mut descs) = Umem::new(umem_config, n_frames, false)
            .map_err(|e| format!("creating the umem: {}", with_source(&e)))?;

        let mut bind = BindFlags::XDP_USE_NEED_WAKEUP;
        bind |= if mode.zero_copy {
            BindFlags::XDP_ZEROCOPY
        } else {
            BindFlags::XDP_COPY
        };
        let sock_config = SocketConfig::builder()
            .rx_queue_size(QueueSize::new(RX_RING).map_err(|e| e.to_string())?)
            .tx_queue_size(QueueSize::new(TX_FRAMES).map_err(|e| e.to_string())?)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .xdp_flags(XdpFlags::empty())
            .bind_flags(bind)
            .build();
        let iface: Interface = ifname
            .parse()
            .map_err(|_| format!("interface name {ifname:?} contains NUL"))?;
        // A socket closed a moment ago (port re-added) releases its queue from deferred
        // kernel work, so binding may briefly see EBUSY: retry for up to a second.
        let mut attempts = 0;
        let (tx, rx, rings) = loop {
            // SAFETY: the umem is fresh and used by this socket only, so no frame is
            // shared with another socket.
            match unsafe { Socket::new(sock_config, &umem, &iface, qid as u32) } {
                Ok(r) => break r,
                Err(e) => {
                    let busy = std::error::Error::source(&e)
                        .and_then(|s| s.downcast_ref::<std::io::Error>())
                        .and_then(|s| s.raw_os_error())
                        == Some(libc::EBUSY);
                    attempts += 1;
                    if !busy || attempts >= 100 {
                        return Err(with_source(&e));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        };
        let (mut fq, cq) = rings.ok_or("the socket came without fill and completion rings")?;
        let fd = rx.fd().as_raw_fd();

        let tx_frames = descs.split_off(RX_FRAMES as usize);
        let mut spare = descs;
        let first = spare.split_off(spare.len() - RX_RING as usize);
        // SAFETY: the descriptors come from this umem and nobody else holds them.
        let filled = unsafe { fq.produce(&first) };
        if filled != first.len() {
            return Err(format!(
                "the fill ring took {filled} of {} frames",
                first.len()
            ));
        }
        spare.reserve(RX_FRAMES as usize);
        Ok(XskQueue {
            qid,
            fd,
            rx: Mutex::new(Some(RxSide {
                rx,
                fq,
                umem: umem.clone(),
                scratch: vec![FrameDesc::default(); MAX_BURST],
                spare,
                since_refill: 0,
                empty_polls: 0,
            })),
            rx_published: Default::default(),
            tx: Mutex::new(TxSide {
                tx,
                cq,
                umem,
                free: tx_frames,
                scratch: Vec::with_capacity(TX_FRAMES as usize),
                in_flight: 0,
            }),
            tx_unsent: AtomicBool::new(false),
            rx_open: AtomicBool::new(false),
            counters: QueueCounters::default(),
        })
    }

    /// Queue index on the device.
    pub fn qid(&self) -> usize {
        self.qid
    }

    /// The socket's file descriptor (for the XSKMAP).
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Takes the rx side (for the `Rxq` being opened); `None` if another holds it.
    pub fn take_rx(&self) -> Option<RxSide> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Gives the rx side back (the `Rxq` is closing).
    pub fn return_rx(&self, side: RxSide) {
        *self.rx.lock().unwrap_or_else(|e| e.into_inner()) = Some(side);
    }
}

impl RxSide {
    /// Receives up to a batch: copies each frame into a pool buffer and keeps the frame
    /// for the next fill-ring refill. Kicks the kernel only when the fill ring asks.
    pub fn recv(&mut self, q: &XskQueue, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize {
        let room = MAX_BURST.saturating_sub(batch.len());
        if room == 0 {
            return 0;
        }
        // SAFETY: the scratch descriptors are overwritten with frames of this umem.
        let n = unsafe { self.rx.consume(&mut self.scratch[..room]) };
        if n == 0 {
            // Every IDLE_CHECK_EVERY-th consecutive empty poll (a queue that has been
            // quiet for a few microseconds): refill, answer a wakeup request, publish the
            // whereabouts. Not on every empty poll: under load, empty and busy polls
            // alternate, and each look at the fill ring is a cross-core cache miss.
            self.empty_polls = self.empty_polls.wrapping_add(1);
            if self.empty_polls % IDLE_CHECK_EVERY == 0 {
                self.refill(q);
                self.publish(q);
            }
            return 0;
        }
        self.empty_polls = 0;
        // The kernel wrote these frames from the core that received them, so each first
        // touch is a cache miss; start all of them before copying any, so the misses
        // overlap instead of stalling the copy loop one after another. (At 32-packet
        // batches the copy was a third of the PMD's user time without this.)
        for desc in &self.scratch[..n] {
            // SAFETY: as below; only the address is taken.
            let data = unsafe { self.umem.data(desc) };
            prefetch_frame(data.contents());
        }
        let mut bytes = 0u64;
        let mut dropped = 0u64;
        for desc in &self.scratch[..n] {
            // SAFETY: the kernel handed this frame to us on the rx ring; it is not in the
            // fill ring until we produce it again.
            let data = unsafe { self.umem.data(desc) };
            let frame = data.contents();
            if frame.len() > MAX_FRAME || frame.is_empty() {
                dropped += 1;
                continue;
            }
            let mut p = pool.get();
            p.rx_space()[..frame.len()].copy_from_slice(frame);
            p.set_len(frame.len());
            bytes += frame.len() as u64;
            batch.pkts.push(p);
        }
        // These frames were just consumed from the rx ring and copied out.
        self.spare.extend_from_slice(&self.scratch[..n]);
        self.since_refill += n;
        if self.since_refill >= FILL_BATCH {
            self.refill(q);
        }
        let c = &q.counters;
        let got = n as u64 - dropped;
        c.rx_packets.add(got);
        c.rx_bytes.add(bytes);
        if dropped > 0 {
            c.rx_dropped.add(dropped);
        }
        got as usize
    }

    /// Tops the fill ring up from the spare list and kicks the kernel if it asks.
    fn refill(&mut self, q: &XskQueue) {
        self.top_up_fill_ring();
        self.since_refill = 0;
        if self.fq.needs_wakeup() {
            q.counters.wakeups.fetch_add(1, Ordering::Relaxed);
            let _ = self.fq.wakeup(self.rx.fd_mut(), 0);
        }
    }

    /// Where this side's frames are: fill ring, rx ring, spare list.
    fn whereabouts(&mut self) -> [usize; 3] {
        [
            (RX_RING - self.fq.nb_free_exact()) as usize,
            self.rx.nb_avail_exact() as usize,
            self.spare.len(),
        ]
    }

    /// Publishes `whereabouts` for `XskQueue::frames` (plain stores, no locked op). Done
    /// every `IDLE_CHECK_EVERY` consecutive empty polls, so a queue that went quiet and
    /// is still polled reports exactly where its frames are.
    fn publish(&mut self, q: &XskQueue) {
        for (slot, v) in q.rx_published.iter().zip(self.whereabouts()) {
            slot.store(v, Ordering::Relaxed);
        }
    }
}

impl XskQueue {
    /// Copies the batch into free tx frames, queues them on the tx ring and kicks the
    /// kernel (one `sendto`, if the ring asks for it: copy mode transmits inside that
    /// call). Packets without a free frame or ring slot are dropped and counted.
    pub fn send(&self, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize {
        let mut guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let side = &mut *guard;
        if side.free.len() < TX_REAP_BELOW.max(batch.len()) {
            side.reap();
        }
        side.scratch.clear();
        let mut dropped = 0u64;
        let mut bytes = 0u64;
        for p in batch.pkts.drain(..) {
            let frame = p.data();
            match side.free.pop() {
                Some(mut desc) if frame.len() <= MAX_FRAME && !frame.is_empty() => {
                    // SAFETY: the frame is on our free list: neither the kernel nor
                    // another descriptor refers to it.
                    let mut data = unsafe { side.umem.data_mut(&mut desc) };
                    let mut cur = data.cursor();
                    cur.set_pos(0);
                    if cur.write_all(frame).is_ok() {
                        bytes += frame.len() as u64;
                        side.scratch.push(desc);
                    } else {
                        side.free.push(desc);
                        dropped += 1;
                    }
                }
                Some(desc) => {
                    side.free.push(desc);
                    dropped += 1;
                }
                None => dropped += 1,
            }
            pool.put(p);
        }
        // SAFETY: every descriptor in scratch is a frame of this umem we just wrote.
        let queued = unsafe { side.tx.produce(&side.scratch) };
        if queued < side.scratch.len() {
            for d in &side.scratch[queued..] {
                bytes -= d.lengths().data() as u64;
                dropped += 1;
            }
            let TxSide { free, scratch, .. } = side;
            free.extend_from_slice(&scratch[queued..]);
        }
        side.in_flight += queued;
        if queued > 0 {
            self.kick(side);
        }
        let c = &self.counters;
        c.tx_packets.add(queued as u64);
        c.tx_bytes.add(bytes);
        if dropped > 0 {
            c.tx_dropped.add(dropped);
        }
        queued
    }

    /// Kicks again if the last kick left descriptors on the tx ring; otherwise costs one
    /// relaxed load.
    pub fn flush(&self) {
        if !self.tx_unsent.load(Ordering::Relaxed) {
            return;
        }
        let mut guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        guard.reap();
        self.kick(&mut guard);
    }

    /// One `sendto` if the ring asks for a wakeup; records whether descriptors remain.
    fn kick(&self, side: &mut TxSide) {
        if !side.tx.needs_wakeup() {
            self.tx_unsent.store(false, Ordering::Relaxed);
            return;
        }
        self.counters.wakeups.fetch_add(1, Ordering::Relaxed);
        // A direct syscall: libc's `sendto` wrapper also toggles thread cancellation
        // around the call, which showed up as ~1% of the PMD's samples. Errors are the
        // transient ones (EAGAIN, ENOBUFS, EBUSY, ENETDOWN): the next kick retries.
        // SAFETY: sendto with no buffer and no address on a socket fd we own.
        unsafe {
            libc::syscall(
                libc::SYS_sendto,
                self.fd,
                std::ptr::null::<u8>(),
                0usize,
                libc::MSG_DONTWAIT,
                std::ptr::null::<u8>(),
                0usize,
            );
        }
        let pending = TX_FRAMES - side.tx.nb_free_exact();
        self.tx_unsent.store(pending > 0, Ordering::Relaxed);
    }

    /// Where the frames are right now.
    pub fn frames(&self) -> UmemFrames {
        // From the rx side itself when no `Rxq` holds it, else as its last poll left it.
        let [in_fill, in_rx, spare] =
            match self.rx.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                Some(rx) => rx.whereabouts(),
                None => [0, 1, 2].map(|i| self.rx_published[i].load(Ordering::Relaxed)),
            };
        let mut tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        tx.reap();
        UmemFrames {
            total: (RX_FRAMES + TX_FRAMES) as usize,
            rx_in_fill_ring: in_fill,
            rx_in_rx_ring: in_rx,
            rx_spare: spare,
            tx_free: tx.free.len(),
            tx_in_flight: tx.in_flight,
        }
    }

    /// Adds this queue's counters (ours plus the socket's kernel drop counters) to `s`.
    pub fn add_stats(&self, s: &mut PortStats) {
        let c = &self.counters;
        s.rx_packets += c.rx_packets.get();
        s.rx_bytes += c.rx_bytes.get();
        s.rx_dropped += c.rx_dropped.get();
        s.tx_packets += c.tx_packets.get();
        s.tx_bytes += c.tx_bytes.get();
        s.tx_dropped += c.tx_dropped.get();
        if let Some(k) = xdp_statistics(self.fd) {
            s.rx_dropped += k.rx_dropped + k.rx_ring_full;
            s.rx_errors += k.rx_invalid_descs;
            s.tx_errors += k.tx_invalid_descs;
        }
    }
}

/// Asks the CPU to start loading the first two cache lines of a frame (the headers the
/// parser reads; the hardware prefetcher follows a longer copy by itself).
#[inline(always)]
fn prefetch_frame(frame: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = frame.as_ptr();
        // SAFETY: prefetch never faults and reads nothing architecturally; the
        // addresses are inside (or one line past the end of) a mapped umem frame.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast());
            if frame.len() > 64 {
                _mm_prefetch::<_MM_HINT_T0>(p.add(64).cast());
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = frame;
}

impl RxSide {
    /// Moves as many spare frames as the fill ring has room for into it (the ring's
    /// `produce` is all-or-nothing, so ask for what fits).
    fn top_up_fill_ring(&mut self) {
        let len = self.spare.len();
        if len == 0 {
            return;
        }
        let room = self.fq.nb_free(len as u32) as usize;
        let k = room.min(len);
        if k == 0 {
            return;
        }
        // SAFETY: spare frames belong to this umem and are held by nobody else.
        let n = unsafe { self.fq.produce(&self.spare[len - k..]) };
        self.spare.truncate(len - n);
    }
}

impl TxSide {
    /// Moves completed frames back to the free list.
    fn reap(&mut self) {
        loop {
            let start = self.free.len();
            let room = (TX_FRAMES as usize - start).min(MAX_BURST * 4);
            if room == 0 || self.in_flight == 0 {
                return;
            }
            // Reuse the free list's spare capacity as the landing area.
            self.free.resize(start + room, FrameDesc::default());
            // SAFETY: the completion ring returns frames of this umem the kernel is done
            // with.
            let n = unsafe { self.cq.consume(&mut self.free[start..]) };
            self.free.truncate(start + n);
            self.in_flight -= n;
            if n < room {
                return;
            }
        }
    }
}

/// `struct xdp_statistics` from `<linux/if_xdp.h>`.
#[repr(C)]
#[derive(Default)]
struct XdpStatistics {
    rx_dropped: u64,
    rx_invalid_descs: u64,
    tx_invalid_descs: u64,
    rx_ring_full: u64,
    rx_fill_ring_empty_descs: u64,
    tx_ring_empty_descs: u64,
}

fn xdp_statistics(fd: RawFd) -> Option<XdpStatistics> {
    const SOL_XDP: libc::c_int = 283;
    const XDP_STATISTICS: libc::c_int = 7;
    let mut st = XdpStatistics::default();
    let mut len = std::mem::size_of::<XdpStatistics>() as libc::socklen_t;
    // SAFETY: `st` is a writable buffer of `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_STATISTICS,
            (&mut st as *mut XdpStatistics).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(st)
}

fn with_source(e: &dyn std::error::Error) -> String {
    match e.source() {
        Some(s) => format!("{e}: {s}"),
        None => e.to_string(),
    }
}
