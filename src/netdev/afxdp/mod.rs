//! AF_XDP ports: one AF_XDP socket per receive queue, frames steered to it by a small XDP
//! program. Every socket's umem is the process's one `FrameStore` region, so a received
//! frame is lent to its `PacketBuf` and transmitted from where the kernel wrote it: no
//! copy between two AF_XDP ports (see `xsk_queue`).
//!
//! Options:
//! - `xdp_mode`: `generic` (SKB mode: works on any device), `native` (driver mode, copy),
//!   `native-with-zerocopy`, or `best` (the default: tries native zero-copy, then native,
//!   then generic, logging why each step fell back).
//! - `n_rxq`: how many queues to bind (default: every queue the device has).
//! - `n_rxq_desc`: slots in each queue's fill and rx rings, a power of two from 64 to
//!   262,144 (default 4,096). Set, it also keeps the fill ring full instead of as deep as
//!   the load needs: the frames a queue can take in while its thread is not running. A
//!   VM whose vCPU the host stops for 100 ms at a time loses 100 ms of traffic at the
//!   default depth; `n_rxq_desc = 131072` (with `afxdp_frames` large enough for the
//!   store to give every queue a full ring, which the log says) holds 131 ms at 1 Mpps.
//!   The price: the kernel writes each frame into a cold page, and a PMD in sustained
//!   overload reads every frame a whole ring after it arrived, cold (benches/e2e/HISTORY.md,
//!   eighteenth session); for a PMD with headroom, not one that is always behind.
//! - `tx_copy_max`: bytes, 0 to 3,840 (default `TX_COPY_MAX_DEFAULT`, 1,024). A copy-mode
//!   socket sends received packets of up to 128 bytes (`BOUNCE_MAX`) from one of its few
//!   hot *bounce frames*, copied there first, and longer ones up to this length too when
//!   they are cold: received from behind a backlog of `COLD_BACKLOG` frames, which only
//!   a PMD that has fallen behind its load sees. The kernel's copy-mode transmit copies
//!   every packet anyway, and its copy of a cold page cost more than our copy of it
//!   plus its copy from a hot one (benches/e2e/HISTORY.md, twentieth and twenty-first sessions;
//!   `xsk_tx`). 128 or less: never copy longer packets; 0: never copy. Zero-copy
//!   sockets never copy.
//!
//! Transmit handles map thread `i` onto queue `i % n_rxq`; threads sharing a queue take
//! its tx lock once per batch. The XDP program is attached through a BPF link, so it goes
//! away with the port and, if we die, with the process.

mod fill_depth;
mod frame_set;
mod standing_backlog;
mod umem_addr;
mod xdp_prog;
mod xsk;
mod xsk_queue;
mod xsk_tx;

use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use fill_depth::FILL_DEPTH_MIN;
pub use xsk_queue::{UmemFrames, COLD_BACKLOG, IDLE_CHECK_EVERY, RX_RING, RX_RING_MAX, TX_RING};
pub use xsk_tx::{BOUNCE_FRAMES, BOUNCE_MAX, TX_COPY_MAX_DEFAULT};

use self::umem_addr::{ALIGNED_RX_MAX, STAGGERED_RX_MAX};
use self::xdp_prog::{XdpRedirect, XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE};
use self::xsk_queue::{BindMode, RxSide, XskQueue};
use super::{linux, Netdev, NetdevError, Rxq, Txq};
use crate::dpif::{PortSpec, PortStats};
use crate::packet::buffer::MAX_FRAME;
use crate::packet::frames::FrameStore;
use crate::packet::{PacketBatch, PacketPool};

/// Where the XDP program runs and how sockets see frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// SKB mode: after the kernel built an skb; copies; works on every device.
    Generic,
    /// Driver mode, frames copied into the umem.
    Native,
    /// Driver mode, the NIC DMAs straight into the umem.
    NativeZeroCopy,
}

impl XdpMode {
    /// The option value naming this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            XdpMode::Generic => "generic",
            XdpMode::Native => "native",
            XdpMode::NativeZeroCopy => "native-with-zerocopy",
        }
    }

    fn xdp_flags(self) -> u32 {
        match self {
            XdpMode::Generic => XDP_FLAGS_SKB_MODE,
            XdpMode::Native | XdpMode::NativeZeroCopy => XDP_FLAGS_DRV_MODE,
        }
    }

    /// `n_rxq_desc`: the ring size the port asked for (kept full), if it did.
    fn bind(self, stagger: bool, n_rxq_desc: Option<u32>, tx_copy_max: usize) -> BindMode {
        BindMode {
            zero_copy: self == XdpMode::NativeZeroCopy,
            stagger,
            rx_ring: n_rxq_desc.unwrap_or(RX_RING),
            keep_fill_full: n_rxq_desc.is_some(),
            tx_copy_max,
        }
    }
}

/// Parses the `xdp_mode` option: `None` means "best".
fn parse_mode(v: &str) -> Result<Option<XdpMode>, String> {
    match v {
        "best" => Ok(None),
        "generic" => Ok(Some(XdpMode::Generic)),
        "native" => Ok(Some(XdpMode::Native)),
        "native-with-zerocopy" => Ok(Some(XdpMode::NativeZeroCopy)),
        other => Err(format!(
            "xdp_mode={other}: expected best, generic, native or native-with-zerocopy"
        )),
    }
}

/// Parses the `tx_copy_max` option (also what switch.toml and `add-port` accept): bytes,
/// up to the longest packet a frame holds.
pub fn parse_tx_copy_max(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n <= MAX_FRAME => Ok(n),
        _ => Err(format!(
            "tx_copy_max={v}: expected a length in bytes from 0 to {MAX_FRAME}"
        )),
    }
}

/// Parses the `n_rxq_desc` option (also what switch.toml and `add-port` accept).
pub fn parse_n_rxq_desc(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if n.is_power_of_two() && (64..=RX_RING_MAX).contains(&n) => Ok(n),
        _ => Err(format!(
            "n_rxq_desc={v}: expected a power of two from 64 to {RX_RING_MAX}"
        )),
    }
}

/// An AF_XDP port on a Linux interface.
pub struct AfxdpNetdev {
    name: String,
    mode: XdpMode,
    queues: Vec<Arc<XskQueue>>,
    _promisc: linux::PromiscGuard,
    // Declared after the queues on purpose: nothing depends on the order, but dropping
    // the link detaches the program, which is what "port deleted" must mean.
    prog: Option<XdpRedirect>,
}

impl AfxdpNetdev {
    /// Opens the port: brings the interface up, attaches the XDP program and binds one
    /// socket per queue. Errors name the device and the step that failed.
    pub fn open(spec: &PortSpec) -> Result<Self, NetdevError> {
        let name = spec.name.as_str();
        let mut request = None;
        let mut n_rxq_opt = None;
        let mut n_rxq_desc = None;
        let mut tx_copy_max = TX_COPY_MAX_DEFAULT;
        for (k, v) in &spec.options {
            match k.as_str() {
                "xdp_mode" => {
                    request = parse_mode(v)
                        .map_err(|e| NetdevError::BadOption(format!("afxdp port {name}: {e}")))?
                }
                "n_rxq" => {
                    n_rxq_opt = Some(match v.parse::<usize>() {
                        Ok(n) if (1..=256).contains(&n) => n,
                        _ => {
                            return Err(NetdevError::BadOption(format!(
                                "afxdp port {name}: n_rxq={v}: expected an integer from 1 to 256"
                            )))
                        }
                    })
                }
                "n_rxq_desc" => {
                    n_rxq_desc =
                        Some(parse_n_rxq_desc(v).map_err(|e| {
                            NetdevError::BadOption(format!("afxdp port {name}: {e}"))
                        })?)
                }
                "tx_copy_max" => {
                    tx_copy_max = parse_tx_copy_max(v)
                        .map_err(|e| NetdevError::BadOption(format!("afxdp port {name}: {e}")))?
                }
                other => tracing::warn!(port = name, option = other, "afxdp: ignoring option"),
            }
        }
        let ifindex = linux::ifindex(name)?;
        let dev_queues = linux::queue_count(name);
        let n_rxq = n_rxq_opt.unwrap_or(dev_queues);
        if n_rxq > dev_queues {
            return Err(NetdevError::BadOption(format!(
                "afxdp port {name}: n_rxq={n_rxq} but the device has {dev_queues} queue(s)"
            )));
        }
        linux::set_up(name).map_err(|e| {
            NetdevError::Xdp(format!("afxdp port {name}: bringing the interface up: {e}"))
        })?;
        // Ethernet header + one VLAN tag on top of the MTU must fit in a received frame.
        // Staggered frames (`umem_addr`) hold up to STAGGERED_RX_MAX bytes: a device
        // whose MTU needs more gets aligned ones.
        let frame_need = linux::mtu(name).map_or(0, |mtu| mtu as usize + 18);
        let stagger = frame_need <= STAGGERED_RX_MAX;
        if frame_need > ALIGNED_RX_MAX {
            tracing::warn!(
                "afxdp port {name}: MTU {} is larger than a umem frame holds ({}); \
                 longer frames will be dropped",
                frame_need - 18,
                ALIGNED_RX_MAX - 18
            );
        } else if !stagger {
            tracing::info!(
                "afxdp port {name}: MTU {} is above {}, so received frames are not \
                 staggered in their umem slots (slower at high packet rates)",
                frame_need - 18,
                STAGGERED_RX_MAX - 18
            );
        }
        // A switch port must see frames for every MAC, not just the interface's own.
        let promisc = linux::PromiscGuard::new(ifindex).map_err(|e| {
            NetdevError::Xdp(format!("afxdp port {name}: enabling promiscuous mode: {e}"))
        })?;

        // Sockets are bound and in the map before the program is attached (see
        // `XdpRedirect`): no frame reaches the kernel stack in between, and a mode whose
        // bind fails never touches the device's XDP state.
        let attempt = |mode: XdpMode| -> Result<(XdpRedirect, Vec<Arc<XskQueue>>), String> {
            let mut prog = XdpRedirect::load(dev_queues as u32)
                .map_err(|e| format!("{} mode: {e}", mode.as_str()))?;
            let mut queues = Vec::with_capacity(n_rxq);
            for qid in 0..n_rxq {
                let q = XskQueue::create(
                    name,
                    ifindex,
                    qid,
                    mode.bind(stagger, n_rxq_desc, tx_copy_max),
                )
                .map_err(|e| format!("binding queue {qid} in {} mode: {e}", mode.as_str()))?;
                prog.insert_socket(qid as u32, q.fd())
                    .map_err(|e| format!("{} mode: {e}", mode.as_str()))?;
                queues.push(Arc::new(q));
            }
            prog.attach(ifindex, mode.xdp_flags())
                .map_err(|e| format!("{} mode: {e}", mode.as_str()))?;
            Ok((prog, queues))
        };

        let order: &[XdpMode] = match request {
            Some(ref m) => std::slice::from_ref(m),
            None => &[XdpMode::NativeZeroCopy, XdpMode::Native, XdpMode::Generic],
        };
        let mut last_err = String::new();
        for (i, &mode) in order.iter().enumerate() {
            match attempt(mode) {
                Ok((prog, queues)) => {
                    let port = AfxdpNetdev {
                        name: name.to_string(),
                        mode,
                        queues,
                        _promisc: promisc,
                        prog: Some(prog),
                    };
                    tracing::info!(
                        port = name,
                        mode = mode.as_str(),
                        n_rxq,
                        rx_ring = port.rx_ring(),
                        rx_frame_max = port.rx_frame_max(),
                        one_sendto_per_ring = port.tx_budget_raised(),
                        "afxdp port opened"
                    );
                    if n_rxq_desc.is_some() {
                        port.warn_if_rings_short();
                    }
                    return Ok(port);
                }
                Err(e) => {
                    if let Some(next) = order.get(i + 1) {
                        tracing::warn!("afxdp port {name}: {e}; falling back to {}", next.as_str());
                    }
                    last_err = e;
                }
            }
        }
        Err(NetdevError::Xdp(format!("afxdp port {name}: {last_err}")))
    }

    /// The mode the port ended up in.
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// Slots in each of the port's fill and rx rings (`n_rxq_desc`).
    pub fn rx_ring(&self) -> u32 {
        self.queues.first().map_or(RX_RING, |q| q.rx_ring())
    }

    /// Frames each of the port's fill rings gets from the store now (its share,
    /// `FrameStore::fill_target`): less than `rx_ring` when `afxdp_frames` is too small
    /// for every open socket's ring.
    pub fn fill_share(&self) -> u32 {
        self.queues
            .first()
            .map_or(0, |q| q.store.fill_target(q.rx_ring()))
    }

    /// A port that asked for deep rings and cannot have them full says so, with the
    /// store size that would give them.
    fn warn_if_rings_short(&self) {
        let Some(q) = self.queues.first() else { return };
        let (ring, share) = (q.rx_ring(), self.fill_share());
        if share < ring {
            tracing::warn!(
                "afxdp port {}: n_rxq_desc = {ring} but each fill ring gets {share} frames \
                 (afxdp_frames = {} shared by rings of {} slots in all); \
                 afxdp_frames = {} gives every ring open now its whole depth",
                self.name,
                q.store.n_frames(),
                q.store.live_slots(),
                FrameStore::frames_for_full_rings(q.store.live_slots())
            );
        }
    }

    /// The longest frame the port receives (its sockets' smallest limit): 2,880 bytes
    /// with staggered frames, 3,840 without.
    pub fn rx_frame_max(&self) -> usize {
        self.queues
            .iter()
            .map(|q| q.rx_frame_max())
            .min()
            .unwrap_or(0)
    }

    /// Whether every socket transmits its whole tx ring in one `sendto` (the kernel took
    /// `XDP_MAX_TX_SKB_BUDGET`; before Linux 6.17 a call sends 32 descriptors).
    pub fn tx_budget_raised(&self) -> bool {
        self.queues.iter().all(|q| q.tx_budget_raised())
    }

    /// Where each queue's frames are (index = queue id). Completions reaped on the way
    /// go back to the store.
    pub fn umem_frames(&self) -> Vec<UmemFrames> {
        let mut pool = PacketPool::new(0);
        self.queues.iter().map(|q| q.frames(&mut pool)).collect()
    }

    /// Packets sent by handing over the frame they were received in, over all queues.
    pub fn zero_copy_sends(&self) -> u64 {
        self.queues
            .iter()
            .map(|q| q.counters.tx_zero_copy.get())
            .sum()
    }

    /// Lent packets sent from a bounce frame (`xsk_tx`), over all queues.
    pub fn bounced_sends(&self) -> u64 {
        self.queues
            .iter()
            .map(|q| q.counters.tx_bounced.get())
            .sum()
    }

    /// Times a deep queue's standing rx backlog got it trimmed (`standing_backlog`),
    /// over all queues.
    pub fn rx_trims(&self) -> u64 {
        self.queues.iter().map(|q| q.counters.rx_trims.get()).sum()
    }

    /// Wakeup syscalls made so far, over all queues.
    pub fn wakeups(&self) -> u64 {
        self.queues
            .iter()
            .map(|q| q.counters.wakeups.load(Ordering::Relaxed))
            .sum()
    }
}

impl Drop for AfxdpNetdev {
    fn drop(&mut self) {
        // Detach first so the device stops redirecting into sockets that are going away.
        self.prog.take();
        tracing::info!(port = self.name.as_str(), "afxdp port closed");
    }
}

struct AfxdpRxq {
    queue: Arc<XskQueue>,
    /// Taken from the queue while this handle exists, given back on drop.
    side: Option<RxSide>,
}

impl Rxq for AfxdpRxq {
    fn recv(
        &mut self,
        batch: &mut PacketBatch,
        pool: &mut PacketPool,
    ) -> Result<usize, NetdevError> {
        Ok(match self.side.as_mut() {
            Some(side) => side.recv(&self.queue, batch, pool),
            None => 0,
        })
    }

    fn qid(&self) -> usize {
        self.queue.qid()
    }
}

impl Drop for AfxdpRxq {
    fn drop(&mut self) {
        if let Some(side) = self.side.take() {
            self.queue.return_rx(side);
        }
        self.queue.rx_open.store(false, Ordering::Release);
    }
}

struct AfxdpTxq {
    queue: Arc<XskQueue>,
}

impl Txq for AfxdpTxq {
    fn send(&mut self, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize {
        self.queue.send(batch, pool)
    }

    fn flush(&mut self) {
        self.queue.flush()
    }
}

impl Netdev for AfxdpNetdev {
    fn name(&self) -> &str {
        &self.name
    }

    fn netdev_type(&self) -> &'static str {
        "afxdp"
    }

    fn n_rxq(&self) -> usize {
        self.queues.len()
    }

    fn open_rxq(&self, qid: usize) -> Result<Box<dyn Rxq>, NetdevError> {
        let queue = self.queues.get(qid).ok_or(NetdevError::NoSuchQueue {
            qid,
            n: self.queues.len(),
        })?;
        if queue.rx_open.swap(true, Ordering::AcqRel) {
            return Err(NetdevError::BadOption(format!(
                "afxdp port {}: rx queue {qid} is already open",
                self.name
            )));
        }
        let Some(side) = queue.take_rx() else {
            queue.rx_open.store(false, Ordering::Release);
            return Err(NetdevError::BadOption(format!(
                "afxdp port {}: rx queue {qid} is already open",
                self.name
            )));
        };
        Ok(Box::new(AfxdpRxq {
            queue: queue.clone(),
            side: Some(side),
        }))
    }

    fn open_txq(&self, thread_idx: usize) -> Result<Box<dyn Txq>, NetdevError> {
        let queue = self.queues[thread_idx % self.queues.len()].clone();
        Ok(Box::new(AfxdpTxq { queue }))
    }

    fn mac(&self) -> [u8; 6] {
        linux::hw_addr(&self.name).unwrap_or([0; 6])
    }

    fn mtu(&self) -> u32 {
        linux::mtu(&self.name).unwrap_or(0)
    }

    fn is_up(&self) -> bool {
        linux::is_up(&self.name)
    }

    fn stats(&self) -> PortStats {
        let mut s = PortStats::default();
        for q in &self.queues {
            q.add_stats(&mut s);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(parse_mode("best").unwrap(), None);
        assert_eq!(parse_mode("generic").unwrap(), Some(XdpMode::Generic));
        assert_eq!(
            parse_mode("native-with-zerocopy").unwrap(),
            Some(XdpMode::NativeZeroCopy)
        );
        let e = parse_mode("turbo").unwrap_err();
        assert!(e.contains("xdp_mode=turbo"), "{e}");
    }
}
