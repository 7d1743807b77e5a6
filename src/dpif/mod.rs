//! The datapath interface: one narrow trait that both back ends implement.
//!
//! `dpif_netdev` (userspace, PMD threads over AF_XDP and friends) and `dpif_netlink` (the
//! kernel's openvswitch module) both implement `Dpif`; the translator (`ofproto`) and the
//! bridge layer only ever see this trait and the datapath-neutral types below.
//!
//! Upcalls are delivered by *push*: the bridge layer registers one `UpcallHandler`, and the
//! datapath calls it synchronously on a miss (from the PMD thread in the userspace
//! datapath, from handler threads reading `OVS_PACKET_CMD_MISS` in the kernel back end),
//! then installs the returned megaflow and executes the returned actions. This is what
//! OVS's netdev datapath does in-process; a pull-style `recv_upcall` would add a queue and a
//! thread hop to every miss for no gain.

pub mod action;
pub mod dump_text;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

pub use action::{DpAction, Masked, SetField, TnlPush, TunnelType};

use crate::packet::{FlowKey, FlowMask, OdpPort, PacketMeta};

/// Datapath actions shared between a flow and whoever dumped it, without copying.
pub type DpActions = Arc<[DpAction]>;

/// Counters of one port, as the port reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PortStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Received packets dropped (no buffer, malformed, filtered).
    pub rx_dropped: u64,
    /// Received frames the kernel found no free buffer for (AF_XDP: the fill ring was
    /// empty): the poll thread stopped, or fell behind, for longer than the buffers it
    /// had handed over lasted. Part of `rx_dropped` in copy mode; in zero-copy mode the
    /// device drops them before the socket sees them, so only this counts them. 0 where
    /// the port cannot tell.
    pub rx_no_buffer: u64,
    /// Received frames the kernel dropped because the port's receive queue was full
    /// (AF_XDP: the rx ring): buffers were there, the poll thread did not take the
    /// frames in time. Part of `rx_dropped` where the port can tell; 0 where not.
    pub rx_queue_full: u64,
    /// Packets that could not be sent (ring full, link down).
    pub tx_dropped: u64,
    /// Packets sent from a copy the port made first, where sending the original would
    /// have cost the kernel more (AF_XDP copy mode: a short packet, or a cold one up to
    /// `tx_copy_max`, copied into a hot bounce frame). Part of `tx_packets`; 0 for ports
    /// that never do this.
    pub tx_copied: u64,
    /// Receive errors reported by the device.
    pub rx_errors: u64,
    /// Transmit errors reported by the device.
    pub tx_errors: u64,
}

/// What to create: a port's name, type and type-specific options, as in switch.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortSpec {
    /// Interface name (the Linux device for afxdp/afpacket/tap; any name for dummy).
    pub name: String,
    /// Port type: "afxdp", "afpacket", "tap", "internal", "dummy", "vxlan", "geneve", "gre",
    /// or for the kernel back end "netdev", "internal" and the tunnel types.
    pub port_type: String,
    /// Type-specific options (`xdp_mode`, `n_rxq`, `remote_ip`, `key`, ...).
    pub options: BTreeMap<String, String>,
}

/// A port as the datapath knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpPort {
    /// Datapath port number.
    pub port_no: OdpPort,
    /// Interface name.
    pub name: String,
    /// Port type as given at creation.
    pub port_type: String,
    /// Counters.
    pub stats: PortStats,
}

/// Counters of one megaflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DpFlowStats {
    /// Packets that hit the flow.
    pub packets: u64,
    /// Bytes that hit the flow.
    pub bytes: u64,
    /// Last time a packet hit the flow; `None` if never.
    pub used: Option<Instant>,
    /// OR of the TCP flags seen.
    pub tcp_flags: u16,
}

impl DpFlowStats {
    /// Adds `other` into `self` (used to sum a flow over PMDs).
    pub fn merge(&mut self, other: &DpFlowStats) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.tcp_flags |= other.tcp_flags;
        self.used = match (self.used, other.used) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// A megaflow as dumped from a datapath.
#[derive(Clone, Debug)]
pub struct DpFlow {
    /// The key, already masked (`key == key & mask`).
    pub key: FlowKey,
    /// Which bits of the key matter.
    pub mask: FlowMask,
    /// What to do with matching packets; empty means drop.
    pub actions: DpActions,
    /// Counters.
    pub stats: DpFlowStats,
    /// PMD core the flow lives on (userspace datapath), `None` for the kernel.
    pub pmd_core: Option<usize>,
}

/// How `flow_put` treats an existing flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowPutMode {
    /// Fail with `FlowExists` if the flow exists.
    Create,
    /// Fail with `NoSuchFlow` if it does not.
    Modify,
    /// Create or replace.
    CreateOrModify,
}

/// A request to install or change a megaflow.
#[derive(Clone, Debug)]
pub struct FlowPut {
    /// Key (will be masked by the datapath).
    pub key: FlowKey,
    /// Mask.
    pub mask: FlowMask,
    /// Actions.
    pub actions: DpActions,
    /// Create / modify semantics.
    pub mode: FlowPutMode,
    /// Reset the flow's counters when modifying.
    pub clear_stats: bool,
}

/// Datapath-wide counters (the ones `dpif/show` prints).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DpStats {
    /// Packets that matched a flow (EMC or megaflow).
    pub n_hit: u64,
    /// Packets that missed and were sent to the translator.
    pub n_missed: u64,
    /// Packets lost: upcall failed or rate-limited, queue full.
    pub n_lost: u64,
    /// Megaflows installed.
    pub n_flows: u64,
    /// Megaflow lookups summed over subtables searched (for "masks hit/pkt").
    pub n_mask_hit: u64,
    /// Distinct masks (subtables).
    pub n_masks: u64,
}

/// Why the datapath called the handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpcallKind {
    /// No flow matched.
    Miss,
    /// A `Userspace` action fired, with its cookie.
    Action {
        /// Cookie from the action.
        cookie: u64,
    },
}

/// One upcall: the packet, its parsed key, and why it came up.
#[derive(Clone, Copy, Debug)]
pub struct Upcall<'a> {
    /// Miss or userspace action.
    pub kind: UpcallKind,
    /// The packet's full (unmasked) key.
    pub key: &'a FlowKey,
    /// The frame bytes (needed for IGMPv3/MLDv2 reports and for tracing).
    pub packet: &'a [u8],
    /// The packet's metadata.
    pub meta: &'a PacketMeta,
}

/// What the translator answers: actions for this packet, and the megaflow to install.
#[derive(Clone, Debug)]
pub struct UpcallReply {
    /// Actions to execute on the packet and to install with the flow.
    pub actions: Vec<DpAction>,
    /// Wildcard mask: every field the translation consulted.
    pub mask: FlowMask,
    /// Whether to install a megaflow. False for packets that must always reach the
    /// translator (IGMP/MLD reports under snooping, for example).
    pub install: bool,
}

/// Why an upcall produced no reply.
#[derive(Debug, thiserror::Error)]
pub enum UpcallError {
    /// No bridge owns the input port (a race with port deletion).
    #[error("no bridge owns datapath port {0}")]
    NoBridge(OdpPort),
    /// The translator refused the packet (reason given).
    #[error("translation failed: {0}")]
    Xlate(String),
}

/// The translator side of the datapath: called synchronously on every miss.
pub trait UpcallHandler: Send + Sync {
    /// Translates one packet.
    fn upcall(&self, upcall: &Upcall<'_>) -> Result<UpcallReply, UpcallError>;
}

/// Errors from a datapath.
#[derive(Debug, thiserror::Error)]
pub enum DpifError {
    /// No port with that number or name.
    #[error("no such port: {0}")]
    NoSuchPort(String),
    /// A port with that name or number exists already.
    #[error("port already exists: {0}")]
    PortExists(String),
    /// The port type is not supported by this datapath.
    #[error("port type '{0}' is not supported by this datapath")]
    UnsupportedPortType(String),
    /// No matching flow.
    #[error("no such flow")]
    NoSuchFlow,
    /// `FlowPutMode::Create` on an existing flow.
    #[error("flow already exists")]
    FlowExists,
    /// The flow table is at its limit.
    #[error("flow table full ({0} flows)")]
    TableFull(usize),
    /// An argument was invalid; the text says which.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Opening or using the port's device failed.
    #[error("port {port}: {source}")]
    Netdev {
        /// Port name.
        port: String,
        /// What the netdev layer said.
        #[source]
        source: crate::netdev::NetdevError,
    },
    /// The kernel refused a request (errno and, where given, the attribute at fault).
    #[error("kernel datapath: {0}")]
    Kernel(String),
    /// The datapath is gone or was never created.
    #[error("datapath {0} does not exist")]
    NoSuchDatapath(String),
    /// An I/O error on the control channel.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand for datapath results.
pub type DpifResult<T> = Result<T, DpifError>;

/// The datapath provider interface (OVS's dpif_class): one per back end.
pub trait Dpif: Send + Sync {
    /// Datapath name (e.g. "ovs-netdev", or the kernel datapath's name).
    fn name(&self) -> &str;
    /// Back end type: "netdev" or "kernel".
    fn dp_type(&self) -> &'static str;
    /// Deletes the datapath and all its ports and flows.
    fn destroy(&self) -> DpifResult<()>;

    /// Adds a port; `requested` asks for a specific port number.
    fn port_add(&self, spec: &PortSpec, requested: Option<OdpPort>) -> DpifResult<OdpPort>;
    /// Deletes a port. Flows that output to it stay until revalidated.
    fn port_del(&self, port: OdpPort) -> DpifResult<()>;
    /// Looks a port up by name.
    fn port_query_by_name(&self, name: &str) -> DpifResult<DpPort>;
    /// Looks a port up by number.
    fn port_query_by_number(&self, port: OdpPort) -> DpifResult<DpPort>;
    /// All ports, in port-number order.
    fn port_dump(&self) -> DpifResult<Vec<DpPort>>;

    /// Installs or changes a megaflow.
    fn flow_put(&self, put: &FlowPut) -> DpifResult<()>;
    /// Fetches one megaflow by its (masked) key and mask.
    fn flow_get(&self, key: &FlowKey, mask: &FlowMask) -> DpifResult<DpFlow>;
    /// Deletes one megaflow, returning its final counters.
    fn flow_del(&self, key: &FlowKey, mask: &FlowMask) -> DpifResult<DpFlowStats>;
    /// All megaflows.
    fn flow_dump(&self) -> DpifResult<Vec<DpFlow>>;
    /// Deletes every megaflow.
    fn flow_flush(&self) -> DpifResult<()>;

    /// Executes `actions` on one packet as if it had arrived with `meta`.
    fn execute(&self, packet: &[u8], meta: &PacketMeta, actions: &[DpAction]) -> DpifResult<()>;
    /// Registers the translator. Misses before registration are dropped and counted lost.
    fn set_upcall_handler(&self, handler: Arc<dyn UpcallHandler>);
    /// Datapath counters.
    fn stats(&self) -> DpifResult<DpStats>;
}
