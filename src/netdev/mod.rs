//! Network devices: the ports packets come in and go out of (OVS's netdev provider layer).
//!
//! A `Netdev` is the device; its receive queues are opened once each and handed to the PMD
//! thread that polls them (`Rxq` is `Send` but not shared), and each PMD opens its own
//! transmit queue handle (`Txq`). Devices with fewer tx queues than PMDs share a queue
//! behind a lock inside the implementation, per batch, as OVS's XPS does.

pub mod afpacket;
pub mod afxdp;
pub mod dummy;
pub mod linux;
pub mod tap;
pub mod tunnel;

use std::sync::Arc;

use crate::dpif::{PortSpec, PortStats};
use crate::packet::{PacketBatch, PacketPool};

/// Errors from opening or using a device.
#[derive(Debug, thiserror::Error)]
pub enum NetdevError {
    /// The Linux interface does not exist.
    #[error("no such device '{0}'")]
    NoSuchDevice(String),
    /// The port type is unknown.
    #[error("unknown port type '{0}' (expected afxdp, afpacket, tap, internal, dummy, vxlan, geneve or gre)")]
    UnknownType(String),
    /// An option was missing, unknown or had a bad value; the text names it.
    #[error("bad option: {0}")]
    BadOption(String),
    /// The queue id is out of range.
    #[error("queue {qid} out of range (device has {n})")]
    NoSuchQueue {
        /// Requested queue.
        qid: usize,
        /// Queues the device has.
        n: usize,
    },
    /// AF_XDP setup failed (umem, socket or XDP program); the text says where.
    #[error("AF_XDP: {0}")]
    Xdp(String),
    /// A system call failed.
    #[error("{op}: {source}")]
    Sys {
        /// What was being done.
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl NetdevError {
    /// Wraps the last OS error with a description of the operation.
    pub fn last_os(op: impl Into<String>) -> Self {
        NetdevError::Sys {
            op: op.into(),
            source: std::io::Error::last_os_error(),
        }
    }
}

/// A device's receive queue, owned by exactly one polling thread.
pub trait Rxq: Send {
    /// Receives up to `MAX_BURST - batch.len()` packets into `batch`, taking buffers from
    /// `pool`. Returns the number received; 0 when nothing is waiting. Never blocks.
    fn recv(
        &mut self,
        batch: &mut PacketBatch,
        pool: &mut PacketPool,
    ) -> Result<usize, NetdevError>;
    /// Queue index on the device.
    fn qid(&self) -> usize;
    /// A descriptor that polls readable while frames are waiting, so a thread that
    /// sleeps when idle (the non-PMD thread) can sleep in poll(2) until traffic comes;
    /// `None` makes such a thread fall back to polling the queue on a short timer.
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

/// A transmit handle, owned by one thread.
pub trait Txq: Send {
    /// Queues every packet of `batch` for transmission (draining it and returning the
    /// buffers to `pool`); packets that can't be queued are dropped and counted.
    /// Returns the number queued. A device may start transmitting here (tap writes each
    /// packet; afxdp kicks when its ring is full); the rest leaves at `flush`, which
    /// callers call once they have queued what they have (a poll thread: once per
    /// iteration).
    fn send(&mut self, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize;
    /// Kicks the device so queued packets leave now (afxdp: one `sendto` for everything
    /// queued, on kernels that let a call transmit the whole ring).
    fn flush(&mut self);
}

/// A network device.
pub trait Netdev: Send + Sync {
    /// Interface name.
    fn name(&self) -> &str;
    /// Port type ("afxdp", "afpacket", "tap", "internal", "dummy").
    fn netdev_type(&self) -> &'static str;
    /// Number of receive queues.
    fn n_rxq(&self) -> usize;
    /// Opens receive queue `qid`. Each queue is opened at most once at a time.
    fn open_rxq(&self, qid: usize) -> Result<Box<dyn Rxq>, NetdevError>;
    /// Opens a transmit handle for the thread with index `thread_idx` (a PMD or the
    /// main thread); the device maps it to one of its tx queues.
    fn open_txq(&self, thread_idx: usize) -> Result<Box<dyn Txq>, NetdevError>;
    /// Whether a PMD thread can busy-poll this device; if not, the non-PMD thread serves it.
    fn pollable(&self) -> bool {
        true
    }
    /// MAC address.
    fn mac(&self) -> [u8; 6];
    /// MTU in bytes.
    fn mtu(&self) -> u32;
    /// Carrier / admin state.
    fn is_up(&self) -> bool;
    /// Counters.
    fn stats(&self) -> PortStats;
    /// The concrete device, for callers that need type-specific operations (tests reach a
    /// dummy port's inject/capture this way). Devices without such operations keep the
    /// default.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// Opens a device of the type `spec.port_type` names. The userspace datapath calls this on
/// `port_add`.
pub fn open(spec: &PortSpec) -> Result<Arc<dyn Netdev>, NetdevError> {
    match spec.port_type.as_str() {
        "dummy" => Ok(Arc::new(dummy::DummyNetdev::new(&spec.name, spec)?)),
        "afxdp" => Ok(Arc::new(afxdp::AfxdpNetdev::open(spec)?)),
        "afpacket" => Ok(Arc::new(afpacket::AfPacketNetdev::open(spec)?)),
        "tap" => Ok(Arc::new(tap::TapNetdev::open(spec, "tap")?)),
        "internal" => Ok(Arc::new(tap::TapNetdev::open(spec, "internal")?)),
        "vxlan" | "geneve" | "gre" => Ok(Arc::new(tunnel::TunnelVport::open(spec)?)),
        other => Err(NetdevError::UnknownType(other.to_string())),
    }
}
