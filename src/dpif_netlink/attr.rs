//! Netlink attribute plumbing shared by the OVS families: the numbering from
//! `include/uapi/linux/openvswitch.h` (kernel ABI facts, named in one place) and small
//! helpers to emit and walk attribute lists with netlink-packet-core's `Nla`.

use netlink_packet_core::{DecodeError, Emitable, Nla, NlaBuffer, NlasIterator};

/// Command numbers of the four OVS families (each family numbers from 1: NEW, DEL, GET, SET
/// for datapath/vport/flow; MISS, ACTION, EXECUTE for packet).
pub mod cmd {
    /// Create (datapath, vport, flow).
    pub const NEW: u8 = 1;
    /// Delete.
    pub const DEL: u8 = 2;
    /// Get or dump.
    pub const GET: u8 = 3;
    /// Modify.
    pub const SET: u8 = 4;
    /// ovs_packet: a flow-table miss.
    pub const PACKET_MISS: u8 = 1;
    /// ovs_packet: an OVS_ACTION_ATTR_USERSPACE action fired.
    pub const PACKET_ACTION: u8 = 2;
    /// ovs_packet: run actions on a packet.
    pub const PACKET_EXECUTE: u8 = 3;
}

/// Family versions the module expects in the genl header.
pub mod version {
    /// OVS_DATAPATH_VERSION.
    pub const DATAPATH: u8 = 2;
    /// OVS_VPORT_VERSION.
    pub const VPORT: u8 = 1;
    /// OVS_FLOW_VERSION.
    pub const FLOW: u8 = 1;
    /// OVS_PACKET_VERSION.
    pub const PACKET: u8 = 1;
}

/// OVS_DP_ATTR_*.
pub mod dp {
    /// Datapath (and its internal port's) name.
    pub const NAME: u16 = 1;
    /// Netlink pid for upcalls (unused with per-vport pids, still required on NEW).
    pub const UPCALL_PID: u16 = 2;
    /// struct ovs_dp_stats.
    pub const STATS: u16 = 3;
    /// struct ovs_dp_megaflow_stats.
    pub const MEGAFLOW_STATS: u16 = 4;
    /// u32 OVS_DP_F_*.
    pub const USER_FEATURES: u16 = 5;
    /// OVS_DP_F_UNALIGNED: upcall packets may be unaligned.
    pub const F_UNALIGNED: u32 = 1 << 0;
    /// OVS_DP_F_VPORT_PIDS: each vport carries its own array of upcall pids.
    pub const F_VPORT_PIDS: u32 = 1 << 1;
    /// OVS_DP_F_DISPATCH_UPCALL_PER_CPU: upcalls go to PER_CPU_PIDS[cpu].
    pub const F_DISPATCH_UPCALL_PER_CPU: u32 = 1 << 3;
    /// Array of u32 pids, one per CPU (wrapping).
    pub const PER_CPU_PIDS: u16 = 8;
}

/// OVS_VPORT_ATTR_* and vport types.
pub mod vport {
    /// u32 port number.
    pub const PORT_NO: u16 = 1;
    /// u32 OVS_VPORT_TYPE_*.
    pub const TYPE: u16 = 2;
    /// Interface name.
    pub const NAME: u16 = 3;
    /// Nested OVS_TUNNEL_ATTR_* for compat tunnel vports.
    pub const OPTIONS: u16 = 4;
    /// Array of u32 netlink pids for upcalls.
    pub const UPCALL_PID: u16 = 5;
    /// struct ovs_vport_stats.
    pub const STATS: u16 = 6;
    /// Linux network device.
    pub const TYPE_NETDEV: u32 = 1;
    /// Device implemented by the datapath.
    pub const TYPE_INTERNAL: u32 = 2;
    /// Compat GRE vport.
    pub const TYPE_GRE: u32 = 3;
    /// Compat VXLAN vport.
    pub const TYPE_VXLAN: u32 = 4;
    /// Compat Geneve vport.
    pub const TYPE_GENEVE: u32 = 5;
    /// OVS_TUNNEL_ATTR_DST_PORT inside OPTIONS.
    pub const TUNNEL_DST_PORT: u16 = 1;
}

/// OVS_FLOW_ATTR_*.
pub mod flow {
    /// Nested OVS_KEY_ATTR_*.
    pub const KEY: u16 = 1;
    /// Nested OVS_ACTION_ATTR_*.
    pub const ACTIONS: u16 = 2;
    /// struct ovs_flow_stats.
    pub const STATS: u16 = 3;
    /// u8 OR of TCP flags.
    pub const TCP_FLAGS: u16 = 4;
    /// u64 msecs (monotonic) of last use.
    pub const USED: u16 = 5;
    /// Flag: clear stats on modify.
    pub const CLEAR: u16 = 6;
    /// Nested OVS_KEY_ATTR_* mask.
    pub const MASK: u16 = 7;
}

/// OVS_PACKET_ATTR_*.
pub mod packet {
    /// Frame bytes.
    pub const PACKET: u16 = 1;
    /// Nested OVS_KEY_ATTR_*.
    pub const KEY: u16 = 2;
    /// Nested OVS_ACTION_ATTR_*.
    pub const ACTIONS: u16 = 3;
    /// Userspace action's cookie.
    pub const USERDATA: u16 = 4;
}

/// Emits a list of attributes into a fresh buffer.
pub fn emit_all<T: Nla>(nlas: &[T]) -> Vec<u8> {
    let mut buf = vec![0u8; nlas.buffer_len()];
    nlas.emit(&mut buf);
    buf
}

/// Walks the attributes in `buf`, calling `f` on each; stops at the first malformed one.
pub fn for_each_nla<'a>(
    buf: &'a [u8],
    mut f: impl FnMut(NlaBuffer<&'a [u8]>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    for nla in NlasIterator::new(buf) {
        f(nla?)?;
    }
    Ok(())
}

/// Checks an attribute's payload length, naming the attribute in the error.
pub fn exact_len<'a>(
    nla: &NlaBuffer<&'a [u8]>,
    len: usize,
    what: &str,
) -> Result<&'a [u8], DecodeError> {
    let v = value(nla);
    if v.len() != len {
        return Err(DecodeError::from(format!(
            "{what}: attribute length {} where {len} was expected",
            v.len()
        )));
    }
    Ok(v)
}

/// The payload of an attribute, borrowed from the underlying buffer.
pub fn value<'a>(nla: &NlaBuffer<&'a [u8]>) -> &'a [u8] {
    let end = nla.length() as usize;
    &nla.into_inner()[netlink_packet_core::NLA_HEADER_SIZE..end]
}

/// Reads a native-endian u32 payload.
pub fn get_u32(nla: &NlaBuffer<&[u8]>, what: &str) -> Result<u32, DecodeError> {
    Ok(u32::from_ne_bytes(
        exact_len(nla, 4, what)?.try_into().unwrap(),
    ))
}

/// Reads a native-endian u64 payload.
pub fn get_u64(nla: &NlaBuffer<&[u8]>, what: &str) -> Result<u64, DecodeError> {
    Ok(u64::from_ne_bytes(
        exact_len(nla, 8, what)?.try_into().unwrap(),
    ))
}

/// Reads a NUL-terminated string payload.
pub fn get_string(nla: &NlaBuffer<&[u8]>) -> String {
    let v = value(nla);
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// A plain attribute: a type and already-encoded bytes (or nested attributes emitted into
/// bytes). The message-level attributes of the datapath/vport/flow/packet families are few
/// and flat, so they are built with this; the flow key and actions have typed enums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawAttr {
    /// Attribute type, including NLA_F_NESTED for nested lists.
    pub kind: u16,
    /// Payload.
    pub value: Vec<u8>,
}

impl RawAttr {
    /// A u32 attribute (native endian, as the OVS families use).
    pub fn u32(kind: u16, v: u32) -> Self {
        RawAttr {
            kind,
            value: v.to_ne_bytes().to_vec(),
        }
    }
    /// A NUL-terminated string attribute.
    pub fn string(kind: u16, s: &str) -> Self {
        let mut value = s.as_bytes().to_vec();
        value.push(0);
        RawAttr { kind, value }
    }
    /// A flag (empty) attribute.
    pub fn flag(kind: u16) -> Self {
        RawAttr {
            kind,
            value: Vec::new(),
        }
    }
    /// Raw bytes.
    pub fn bytes(kind: u16, value: Vec<u8>) -> Self {
        RawAttr { kind, value }
    }
    /// A nested list of attributes.
    pub fn nested<T: Nla>(kind: u16, nlas: &[T]) -> Self {
        RawAttr {
            kind: kind | netlink_packet_core::NLA_F_NESTED,
            value: emit_all(nlas),
        }
    }
}

impl Nla for RawAttr {
    fn value_len(&self) -> usize {
        self.value.len()
    }
    fn kind(&self) -> u16 {
        self.kind
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        buffer.copy_from_slice(&self.value);
    }
}
