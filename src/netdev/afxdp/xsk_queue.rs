//! One AF_XDP socket bound to one device queue, receiving into and transmitting from the
//! process's `FrameStore`.
//!
//! Frames move, they are not copied:
//! - rx: the fill ring is topped up with free frames from the polling thread's
//!   `PacketPool` cache; `recv` lends each received frame to a `PacketBuf` (no copy), and
//!   the frame goes back to a cache when the packet is done with.
//! - tx: `send` puts a packet that holds a lent frame on the tx ring as it is (its bytes
//!   are already in the region every socket registered), and copies only packets whose
//!   bytes are on the heap (from a tap or afpacket port, or a flood copy) into a free
//!   frame, and `flush` kicks the kernel once for everything queued (`xsk_tx`).
//!   Completed frames go back to the sending thread's cache.
//!
//! The ring words the kernel writes from another core (the rx producer, the fill ring's
//! consumer and flags, which share a cache line) cost a cache miss each time they are
//! read, so the busy path reads the fill ring's side only once per `FILL_BATCH` frames,
//! and an empty poll reads nothing but the rx producer.
//!
//! Each side keeps the set of frames it handed to the kernel and has not had back
//! (`FrameSet`), so they come back to the store when the socket closes, wherever the
//! kernel left them.
//!
//! The rx side belongs to the one open `Rxq`, which takes it out of the queue while it
//! exists (no lock per poll: the lock/unlock pair was ~80% of an empty poll's time); the
//! tx side sits behind a mutex taken once per batch, contended only when more threads
//! than queues transmit.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::fill_depth::{FillDepth, FILL_DEPTH_MIN};
use super::frame_set::FrameSet;
use super::standing_backlog::{
    BacklogChange, BacklogWatch, CHECK_PERIOD_MS, STANDING_CHECKS, TRIMMED_FRAMES,
};
use super::umem_addr::{fill_addr, frame_of, prefetch_header, ALIGNED_RX_MAX, STAGGERED_RX_MAX};
use super::xsk::{xdp_statistics, BindOptions, ConsRing, ProdRing, XdpDesc, XskSocket};
use super::xsk_tx::{TxSide, BOUNCE_FRAMES};
use crate::dpif::PortStats;
use crate::packet::buffer::MAX_FRAME;
use crate::packet::frames::FrameStore;
use crate::packet::{PacketBatch, PacketPool, MAX_BURST};
use crate::pmd::{cycles, Counter};

/// Slots in the fill ring and in the rx ring unless the port sets `n_rxq_desc`.
pub const RX_RING: u32 = 4096;
/// The most `n_rxq_desc` may ask for: 1 GiB of frames on one queue, a quarter-second
/// stop at 1 Mpps.
pub const RX_RING_MAX: u32 = 1 << 18;
/// Slots in the tx ring and in the completion ring (so at most this many frames are in
/// flight and every completion finds room).
pub const TX_RING: u32 = 1024;
/// Rx frames consumed between two refills of the fill ring (and between two looks at its
/// need-wakeup flag). Small against the ring, large against a batch (32).
const FILL_BATCH: usize = 64;
/// A received frame is *cold* (`PacketBuf::lent_frame_is_cold`) when the kernel had
/// queued at least this many frames behind it: a backlog, the PMD behind its load. The
/// kernel wrote it on the core that received it a millisecond or more earlier (at the
/// rates here), so its lines, and its page in the kernel's own 4 KiB mapping of the
/// umem, are out of cache; a copy-mode socket copies it before the kernel does (`xsk_tx`,
/// `tx_copy_max`). A PMD that keeps up takes frames a batch or two behind the kernel's,
/// still warm, and leaves the copy to the kernel.
pub const COLD_BACKLOG: u32 = 1024;
/// The rx ring's producer index is read again only when fewer frames than this (or than
/// the batch has room for) are known to be waiting. The kernel writes that index on the
/// core that receives, so each read is a cross-core miss (4% of a sleeping PMD's user
/// samples on one 64-byte flow): a PMD that woke to 90 frames used to take two batches
/// of 32 and then read the index again for the 26 it already knew of. Half a batch
/// known is taken as it is; less than that is worth a look for more.
const RX_REFRESH_BELOW: u32 = MAX_BURST as u32 / 2;
/// Consecutive empty polls between two looks at the fill ring while idle (a zero-copy
/// driver that ran dry and asks for a wakeup), and between two `publish`es.
pub const IDLE_CHECK_EVERY: u32 = 64;

/// How a socket is bound: whether the driver DMAs straight into the frames, and whether
/// received frames are staggered in their slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindMode {
    /// Zero-copy (`XDP_ZEROCOPY`) rather than copy (`XDP_COPY`).
    pub zero_copy: bool,
    /// Stagger fill addresses (`umem_addr`), which caps received frames at
    /// `STAGGERED_RX_MAX` bytes: for devices whose MTU fits.
    pub stagger: bool,
    /// Slots in the fill ring and in the rx ring (a power of two).
    pub rx_ring: u32,
    /// Keep the fill ring full rather than as deep as the load needs (`FillDepth`): the
    /// port asked for `rx_ring` frames to be ready for a stop of its thread.
    pub keep_fill_full: bool,
    /// Received packets up to this long are copied into a bounce frame before a copy-mode
    /// transmit (`xsk_tx`); ignored by a zero-copy socket, which never copies.
    pub tx_copy_max: usize,
}

/// Per-queue counters, read by `stats()`. The rx ones have one writer (the `Rxq` holding
/// the rx side), the tx ones are written under the tx mutex, so both are plain
/// single-writer counters (no locked instruction per batch).
#[derive(Default)]
pub struct QueueCounters {
    rx_packets: Counter,
    rx_bytes: Counter,
    rx_dropped: Counter,
    pub(super) tx_packets: Counter,
    pub(super) tx_bytes: Counter,
    pub(super) tx_dropped: Counter,
    /// Packets transmitted by handing over the frame they were received in (no copy).
    pub tx_zero_copy: Counter,
    /// Lent packets transmitted from a bounce frame (`xsk_tx`).
    pub tx_bounced: Counter,
    /// Wakeup syscalls made (rx fill-ring kicks and tx sendto kicks); two writers.
    pub wakeups: AtomicU64,
    /// Times a deep queue's standing backlog got it trimmed (`standing_backlog`).
    pub rx_trims: Counter,
}

/// Where this socket's frames are right now; a test of the recycling invariant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UmemFrames {
    /// Frames waiting in the fill ring for the kernel to receive into.
    pub rx_in_fill_ring: usize,
    /// Frames received by the kernel but not yet consumed by us.
    pub rx_in_rx_ring: usize,
    /// Frames handed to the kernel for transmit and not yet reaped (bounce frames
    /// included).
    pub tx_in_flight: usize,
    /// Free frames the tx side keeps for copying short packets into (`xsk_tx`'s bounce
    /// frames): neither the kernel's nor the store's.
    pub tx_bounce: usize,
    /// Frames the socket handed to the kernel and has not had back (its two
    /// `FrameSet`s and its bounce frames in flight). The kernel may hold a few more than
    /// its rings show: frames it took from the fill ring and could not deliver (rx ring
    /// full) wait in its own cache for the next packet.
    pub held: usize,
}

impl UmemFrames {
    /// Whether every frame the rings hold is in the socket's sets (none lost track of).
    pub fn all_accounted(&self) -> bool {
        self.rx_in_fill_ring + self.rx_in_rx_ring + self.tx_in_flight <= self.held
    }
}

/// The receive half of a queue: the rx and fill rings, owned by the open `Rxq`.
pub struct RxSide {
    rx: ConsRing<XdpDesc>,
    fill: ProdRing<u64>,
    scratch: [XdpDesc; MAX_BURST],
    refill: Vec<u64>,
    /// Rx descriptors consumed since the fill ring was last topped up.
    since_refill: usize,
    /// Consecutive empty polls (0 after a busy one).
    empty_polls: u32,
    /// Fill addresses are staggered (the socket has unaligned chunks).
    staggered: bool,
    /// Descriptors past the consumed ones whose frames the last `recv` prefetched.
    prefetched: u32,
    /// Frames put on the fill ring and not yet received: on the fill ring, in the
    /// kernel's cache, or on the rx ring.
    held: FrameSet,
    /// How many frames the fill ring is topped up to.
    depth: FillDepth,
    /// For a ring deeper than a trimmed queue's frames: whether its backlog stands
    /// (`standing_backlog`).
    watch: Option<BacklogWatch>,
}

/// An AF_XDP socket on one queue of a device.
pub struct XskQueue {
    /// The port's name, for the log.
    port: Box<str>,
    qid: usize,
    /// Slots in the fill and rx rings (counted in the store's shares until closed).
    rx_ring: u32,
    pub(super) store: &'static FrameStore,
    /// The rx side while no `Rxq` holds it.
    rx: Mutex<Option<RxSide>>,
    /// Where the rx frames were after the holder's last poll: fill ring, rx ring, and
    /// how many the rx side held in all.
    rx_published: [AtomicUsize; 3],
    pub(super) tx: Mutex<Option<TxSide>>,
    /// Set when descriptors wait on the tx ring for a kick: `send` queues, `flush` kicks
    /// (once per poll iteration, however many batches were queued); clear, `flush` costs
    /// one relaxed load.
    pub(super) tx_unsent: AtomicBool,
    /// Frames longer than this are dropped by the kernel on receive.
    rx_frame_max: usize,
    /// One `sendto` transmits the whole tx ring (else 32 descriptors).
    tx_budget_raised: bool,
    /// Whether an `Rxq` currently owns the receive side.
    pub rx_open: AtomicBool,
    /// Counters.
    pub counters: QueueCounters,
    // Last: closed after the rings are unmapped (see Drop).
    fd: Option<OwnedFd>,
}

impl XskQueue {
    /// Creates the socket for queue `qid` of `ifindex` and fills its fill ring. No XDP
    /// program is loaded for it: the port attaches its own redirect program once every
    /// queue's socket is bound and in the map.
    pub fn create(port: &str, ifindex: u32, qid: usize, mode: BindMode) -> Result<Self, String> {
        let store = FrameStore::global().map_err(|e| e.to_string())?;
        let opts = BindOptions {
            zero_copy: mode.zero_copy,
            rx_ring: mode.rx_ring,
            tx_ring: TX_RING,
            stagger: mode.stagger,
        };
        // A socket closed a moment ago (port re-added) releases its queue from deferred
        // kernel work, so binding may briefly see EBUSY: retry for up to a second.
        let mut attempts = 0;
        let sock = loop {
            match XskSocket::bind(store, ifindex, qid as u32, opts) {
                Ok(s) => break s,
                Err(e) if e.is_busy() && attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        let XskSocket {
            fd,
            rx,
            fill,
            tx,
            comp,
            staggered,
            tx_budget_raised,
        } = sock;
        store.open_socket(mode.rx_ring);
        let q = XskQueue {
            port: port.into(),
            qid,
            rx_ring: mode.rx_ring,
            store,
            rx: Mutex::new(Some(RxSide {
                rx,
                fill,
                scratch: [super::xsk::EMPTY_DESC; MAX_BURST],
                refill: Vec::with_capacity(mode.rx_ring as usize),
                since_refill: 0,
                empty_polls: 0,
                staggered,
                prefetched: 0,
                held: FrameSet::new(store.n_frames()),
                depth: FillDepth::new(
                    store.fill_target(mode.rx_ring),
                    if mode.keep_fill_full {
                        mode.rx_ring
                    } else {
                        FILL_DEPTH_MIN
                    },
                ),
                watch: (mode.keep_fill_full && mode.rx_ring > TRIMMED_FRAMES).then(|| {
                    let period =
                        cycles::from_duration(std::time::Duration::from_millis(CHECK_PERIOD_MS));
                    BacklogWatch::new(mode.rx_ring, period, cycles::now())
                }),
            })),
            rx_published: Default::default(),
            tx: Mutex::new(Some(TxSide {
                tx,
                comp,
                descs: Vec::with_capacity(MAX_BURST),
                frames: Vec::with_capacity(MAX_BURST),
                reaped: vec![0; 4 * MAX_BURST],
                held: FrameSet::new(store.n_frames()),
                in_flight: 0,
                bounce: Vec::with_capacity(BOUNCE_FRAMES),
                bounce_owned: Vec::with_capacity(BOUNCE_FRAMES),
                bounce_max: if mode.zero_copy { 0 } else { mode.tx_copy_max },
            })),
            tx_unsent: AtomicBool::new(false),
            tx_budget_raised,
            rx_frame_max: if staggered {
                STAGGERED_RX_MAX
            } else {
                ALIGNED_RX_MAX
            },
            rx_open: AtomicBool::new(false),
            counters: QueueCounters::default(),
            fd: Some(fd),
        };
        // The first fill comes from the store directly (no thread cache yet).
        let mut pool = PacketPool::new(0);
        if let Some(side) = q.rx.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            side.top_up_fill_ring(&q, &mut pool, false);
            if side.fill.occupancy() == 0 {
                return Err(format!(
                    "no free frames for the fill ring ({} frames in the region, all in use)",
                    store.n_frames()
                ));
            }
        }
        Ok(q)
    }

    /// Queue index on the device.
    pub fn qid(&self) -> usize {
        self.qid
    }

    /// Slots in the fill and rx rings.
    pub fn rx_ring(&self) -> u32 {
        self.rx_ring
    }

    /// The longest frame this socket receives (the kernel drops and counts longer ones).
    pub fn rx_frame_max(&self) -> usize {
        self.rx_frame_max
    }

    /// Whether one `sendto` transmits the whole tx ring (Linux 6.17 and later).
    pub fn tx_budget_raised(&self) -> bool {
        self.tx_budget_raised
    }

    /// The socket's file descriptor (for the XSKMAP).
    pub fn fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, |f| f.as_raw_fd())
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

impl Drop for XskQueue {
    fn drop(&mut self) {
        // Unmap the rings, close the socket (the kernel unbinds the queue once both are
        // gone), then take back every frame the kernel still had. The rx side is here:
        // an `Rxq` holds the queue until it has given its side back.
        let mut rx = self.rx.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        let mut tx = self.tx.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        let mut back = rx.as_mut().map(|s| s.held.take_all()).unwrap_or_default();
        back.extend(tx.as_mut().map(TxSide::take_frames).unwrap_or_default());
        drop((rx, tx));
        drop(self.fd.take());
        self.store.close_socket(back, self.rx_ring);
    }
}

impl RxSide {
    /// Receives up to a batch: lends each received frame to a pool buffer. Kicks the
    /// kernel only when the fill ring asks.
    pub fn recv(&mut self, q: &XskQueue, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize {
        let room = MAX_BURST.saturating_sub(batch.len());
        if room == 0 {
            return 0;
        }
        let n = self.rx.consume_refreshing_below(
            &mut self.scratch[..room],
            (room as u32).min(RX_REFRESH_BELOW),
        );
        if n == 0 {
            // Every IDLE_CHECK_EVERY-th consecutive empty poll (a queue that has been
            // quiet for a few microseconds): refill, answer a wakeup request, publish the
            // whereabouts. Not on every empty poll: under load, empty and busy polls
            // alternate, and each look at the fill ring is a cross-core cache miss.
            self.empty_polls = self.empty_polls.wrapping_add(1);
            if self.empty_polls % IDLE_CHECK_EVERY == 0 {
                self.refill(q, pool, false);
                self.publish(q);
            }
            return 0;
        }
        self.empty_polls = 0;
        // The last look at the kernel's index found this many past the batch: each frame
        // of the batch has at least as many behind it.
        let cold = self.rx.behind() >= COLD_BACKLOG;
        // The kernel wrote these frames from the core that received them, so each first
        // touch (the parser's) is a cache miss. Prefetching a batch just before parsing
        // it left the parser stalled on the first header load, so the frames of the
        // *next* batch, already on the ring, are started now: they have the whole
        // iteration to arrive. Here only the frames the last call did not see yet.
        // One header line each (two doubled the misses in flight and stalled the loop
        // on the prefetches themselves). The rest of a long frame is left to the
        // kernel's transmit copy: prefetching it here (23 lines a 1518-byte frame)
        // filled the core's miss buffers and stalled this loop, moving ~750 cycles a
        // packet from the kernel's copy into user time without lowering the total.
        let store = q.store;
        for d in &self.scratch[(self.prefetched as usize).min(n)..n] {
            prefetch_header(store, d.addr);
        }
        let mut ahead = 0;
        while ahead < MAX_BURST as u32 {
            let Some(d) = self.rx.peek(ahead) else { break };
            prefetch_header(store, d.addr);
            ahead += 1;
        }
        self.prefetched = ahead;
        let mut bytes = 0u64;
        let mut dropped = 0u64;
        self.held
            .remove_all(self.scratch[..n].iter().map(|d| frame_of(d.addr).0));
        for d in &self.scratch[..n] {
            let (idx, start) = frame_of(d.addr);
            let len = d.len as usize;
            if len == 0 || len > MAX_FRAME {
                dropped += 1;
                pool.put_frame(idx);
                continue;
            }
            let mut p = pool.get();
            if p.lend_frame(store, idx, start, len, cold) {
                bytes += len as u64;
                batch.pkts.push(p);
            } else {
                dropped += 1;
                pool.put(p);
                pool.put_frame(idx);
            }
        }
        self.since_refill += n;
        if self.since_refill >= FILL_BATCH {
            self.refill(q, pool, true);
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

    /// Tops the fill ring up from the pool's frames and kicks the kernel if it asks;
    /// `received`: after receiving (else while idle, see `FillDepth::current`).
    fn refill(&mut self, q: &XskQueue, pool: &mut PacketPool, received: bool) {
        if let Some(w) = self.watch.as_mut() {
            let now = cycles::now();
            if w.due(now) {
                let backlog = self.rx.occupancy();
                let dry = xdp_statistics(q.fd()).map_or(0, |s| s.rx_fill_ring_empty_descs);
                if let Some(change) = w.check(now, backlog, dry) {
                    q.log_backlog_change(change, w.trims());
                    if matches!(change, BacklogChange::Trimmed { .. }) {
                        q.counters.rx_trims.add(1);
                    }
                }
            }
        }
        self.top_up_fill_ring(q, pool, received);
        self.since_refill = 0;
        if self.fill.needs_wakeup() {
            q.counters.wakeups.fetch_add(1, Ordering::Relaxed);
            // SAFETY: a zero-length recvfrom on a socket fd we own (the kernel's cue to
            // look at the fill ring).
            cycles::in_syscall(|| unsafe {
                libc::recvfrom(
                    q.fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            });
        }
    }

    /// Puts free frames into the fill ring up to its depth (`FillDepth`), at most this
    /// socket's share of the region.
    fn top_up_fill_ring(&mut self, q: &XskQueue, pool: &mut PacketPool, received: bool) {
        let size = self.fill.size();
        let free = self.fill.free(size);
        let held = size - free;
        let cap = q.store.fill_target(q.rx_ring);
        let target = if self.watch.as_ref().is_some_and(BacklogWatch::trimmed) {
            BacklogWatch::trimmed_fill(self.rx.occupancy()).min(cap)
        } else if received {
            self.depth.next(held, cap)
        } else {
            self.depth.current(cap)
        };
        let want = target.saturating_sub(held).min(free) as usize;
        if want == 0 {
            return;
        }
        self.refill.clear();
        for _ in 0..want {
            match pool.get_frame(q.store) {
                Some(f) => self.refill.push(fill_addr(f, self.staggered)),
                None => break,
            }
        }
        let n = self.fill.produce(&self.refill);
        self.held
            .insert_all(self.refill[..n].iter().map(|&a| frame_of(a).0));
        // `want` never exceeds the free slots, so the ring takes them all.
        for &a in &self.refill[n..] {
            pool.put_frame(frame_of(a).0);
        }
    }

    /// Where this side's frames are: fill ring, rx ring, and how many it holds in all.
    fn whereabouts(&self) -> [usize; 3] {
        [
            self.fill.occupancy() as usize,
            self.rx.occupancy() as usize,
            self.held.len(),
        ]
    }

    /// Publishes `whereabouts` for `XskQueue::frames` (plain stores, no locked op). Done
    /// every `IDLE_CHECK_EVERY` consecutive empty polls, so a queue that went quiet and
    /// is still polled reports exactly where its frames are.
    fn publish(&self, q: &XskQueue) {
        for (slot, v) in q.rx_published.iter().zip(self.whereabouts()) {
            slot.store(v, Ordering::Relaxed);
        }
    }
}

impl XskQueue {
    /// Tells the operator that a deep queue started or stopped dropping early. Both
    /// are rare (the backlog must stand for `STANDING_CHECKS` periods, or stay short
    /// for one), so each is logged.
    fn log_backlog_change(&self, change: BacklogChange, trims: u64) {
        match change {
            BacklogChange::Trimmed { backlog } => tracing::info!(
                port = &*self.port,
                queue = self.qid,
                backlog,
                trims,
                "afxdp: rx backlog stood for {} ms, so the PMD cannot keep up: keeping \
                 {TRIMMED_FRAMES} frames on the rings instead of n_rxq_desc={} until it \
                 does (the kernel drops the excess on arrival, counted as rx_no_buffer)",
                u64::from(STANDING_CHECKS) * CHECK_PERIOD_MS,
                self.rx_ring
            ),
            BacklogChange::Restored => tracing::info!(
                port = &*self.port,
                queue = self.qid,
                "afxdp: the PMD keeps up again: keeping all n_rxq_desc={} fill frames ready",
                self.rx_ring
            ),
        }
    }

    /// Where this socket's frames are right now (reaping completions into `pool`).
    pub fn frames(&self, pool: &mut PacketPool) -> UmemFrames {
        // From the rx side itself when no `Rxq` holds it, else as its last poll left it.
        let [in_fill, in_rx, rx_held] =
            match self.rx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                Some(rx) => rx.whereabouts(),
                None => [0, 1, 2].map(|i| self.rx_published[i].load(Ordering::Relaxed)),
            };
        let (in_flight, bounce) = {
            let mut tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
            tx.as_mut().map_or((0, 0), |side| {
                side.reap(pool);
                (side.in_flight, side.bounce.len())
            })
        };
        UmemFrames {
            rx_in_fill_ring: in_fill,
            rx_in_rx_ring: in_rx,
            tx_in_flight: in_flight,
            tx_bounce: bounce,
            held: rx_held + in_flight,
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
        s.tx_copied += c.tx_bounced.get();
        if let Some(k) = xdp_statistics(self.fd()) {
            s.rx_dropped += k.rx_dropped + k.rx_ring_full;
            s.rx_no_buffer += k.rx_fill_ring_empty_descs;
            s.rx_queue_full += k.rx_ring_full;
            s.rx_errors += k.rx_invalid_descs;
            s.tx_errors += k.tx_invalid_descs;
        }
    }
}
