//! Vports: building OVS_VPORT_CMD_* requests, parsing replies, and the Linux tunnel devices
//! behind tunnel ports.
//!
//! Tunnel ports are created the way OVS 2.8+ does it: a Linux vxlan/geneve/gretap device in
//! flow-based (collect_metadata) mode made over rtnetlink, then attached as a plain netdev
//! vport; the flow's set(tunnel) action supplies the remote per packet. Kernels without
//! those device modes get the compat vport types (OVS_VPORT_TYPE_VXLAN/GENEVE/GRE).

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoData, InfoGeneve, InfoGre, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo,
    LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::dpif::PortStats;

use super::attr::{self, get_string, get_u32, value, RawAttr};
use super::genl::{NlError, NlSocket, OvsMessage, VportFamily};

/// A flow-based tunnel kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelKind {
    /// VXLAN (UDP 4789 by default).
    Vxlan,
    /// Geneve (UDP 6081 by default).
    Geneve,
    /// GRE (Ethernet over GRE, "gretap").
    Gre,
}

impl TunnelKind {
    /// The tunnel kind a port type names, if it is one.
    pub fn from_port_type(t: &str) -> Option<Self> {
        match t {
            "vxlan" => Some(TunnelKind::Vxlan),
            "geneve" => Some(TunnelKind::Geneve),
            "gre" => Some(TunnelKind::Gre),
            _ => None,
        }
    }
    /// Default UDP destination port (0 for GRE).
    pub fn default_dst_port(self) -> u16 {
        match self {
            TunnelKind::Vxlan => 4789,
            TunnelKind::Geneve => 6081,
            TunnelKind::Gre => 0,
        }
    }
    /// The compat vport type.
    pub fn compat_vport_type(self) -> u32 {
        match self {
            TunnelKind::Vxlan => attr::vport::TYPE_VXLAN,
            TunnelKind::Geneve => attr::vport::TYPE_GENEVE,
            TunnelKind::Gre => attr::vport::TYPE_GRE,
        }
    }
}

/// A vport as the kernel reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VportInfo {
    /// Port number.
    pub port_no: u32,
    /// OVS_VPORT_TYPE_*.
    pub vport_type: u32,
    /// Device name.
    pub name: String,
    /// Counters.
    pub stats: PortStats,
    /// Upcall pids.
    pub upcall_pids: Vec<u32>,
}

/// The port-type string for a kernel vport type (tunnel netdevs are named by the caller).
pub fn vport_type_name(t: u32) -> &'static str {
    match t {
        attr::vport::TYPE_NETDEV => "netdev",
        attr::vport::TYPE_INTERNAL => "internal",
        attr::vport::TYPE_GRE => "gre",
        attr::vport::TYPE_VXLAN => "vxlan",
        attr::vport::TYPE_GENEVE => "geneve",
        _ => "unknown",
    }
}

/// Builds an OVS_VPORT_CMD_NEW request.
pub fn new_request(
    dp_ifindex: i32,
    name: &str,
    vport_type: u32,
    port_no: Option<u32>,
    upcall_pids: &[u32],
    dst_port: Option<u16>,
) -> OvsMessage<VportFamily> {
    let mut a = vec![
        RawAttr::u32(attr::vport::TYPE, vport_type),
        RawAttr::string(attr::vport::NAME, name),
        RawAttr::bytes(
            attr::vport::UPCALL_PID,
            upcall_pids.iter().flat_map(|p| p.to_ne_bytes()).collect(),
        ),
    ];
    if let Some(p) = port_no {
        a.push(RawAttr::u32(attr::vport::PORT_NO, p));
    }
    if let Some(port) = dst_port {
        let opt = RawAttr {
            kind: attr::vport::TUNNEL_DST_PORT,
            value: port.to_ne_bytes().to_vec(),
        };
        a.push(RawAttr::nested(attr::vport::OPTIONS, &[opt]));
    }
    OvsMessage::new(attr::cmd::NEW, dp_ifindex, &a)
}

/// Builds a GET/DEL request addressing a vport by number or name.
pub fn lookup_request(
    cmd: u8,
    dp_ifindex: i32,
    port_no: Option<u32>,
    name: Option<&str>,
) -> OvsMessage<VportFamily> {
    let mut a = Vec::new();
    if let Some(p) = port_no {
        a.push(RawAttr::u32(attr::vport::PORT_NO, p));
    }
    if let Some(n) = name {
        a.push(RawAttr::string(attr::vport::NAME, n));
    }
    OvsMessage::new(cmd, dp_ifindex, &a)
}

/// Parses a vport reply.
pub fn parse(msg: &OvsMessage<VportFamily>) -> Result<VportInfo, netlink_packet_core::DecodeError> {
    let mut v = VportInfo::default();
    for nla in msg.nlas() {
        let nla = nla?;
        match nla.kind() & netlink_packet_core::NLA_TYPE_MASK {
            attr::vport::PORT_NO => v.port_no = get_u32(&nla, "vport port_no")?,
            attr::vport::TYPE => v.vport_type = get_u32(&nla, "vport type")?,
            attr::vport::NAME => v.name = get_string(&nla),
            attr::vport::UPCALL_PID => {
                v.upcall_pids = value(&nla)
                    .chunks_exact(4)
                    .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
                    .collect()
            }
            attr::vport::STATS => {
                let s = attr::exact_len(&nla, 64, "vport stats")?;
                let f = |i: usize| u64::from_ne_bytes(s[i * 8..i * 8 + 8].try_into().unwrap());
                // struct ovs_vport_stats: rx_packets, tx_packets, rx_bytes, tx_bytes,
                // rx_errors, tx_errors, rx_dropped, tx_dropped
                v.stats = PortStats {
                    rx_packets: f(0),
                    tx_packets: f(1),
                    rx_bytes: f(2),
                    tx_bytes: f(3),
                    rx_errors: f(4),
                    tx_errors: f(5),
                    rx_dropped: f(6),
                    tx_dropped: f(7),
                    ..PortStats::default()
                };
            }
            _ => {}
        }
    }
    Ok(v)
}

/// Creates a flow-based tunnel device `name` and brings it up.
pub fn create_tunnel_device(name: &str, kind: TunnelKind, dst_port: u16) -> Result<(), NlError> {
    let mut sock = NlSocket::open_route().map_err(NlError::from_io)?;
    let (info_kind, data) = match kind {
        TunnelKind::Vxlan => (
            InfoKind::Vxlan,
            InfoData::Vxlan(vec![
                InfoVxlan::CollectMetadata(true),
                InfoVxlan::Port(dst_port),
                InfoVxlan::Learning(false),
            ]),
        ),
        TunnelKind::Geneve => (
            InfoKind::Geneve,
            InfoData::Geneve(vec![
                InfoGeneve::CollectMetadata,
                InfoGeneve::Port(dst_port),
            ]),
        ),
        TunnelKind::Gre => (
            InfoKind::GreTap,
            InfoData::GreTap(vec![InfoGre::CollectMetadata]),
        ),
    };
    let mut msg = LinkMessage::default();
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    msg.attributes = vec![
        LinkAttribute::IfName(name.to_owned()),
        // as OVS does: the underlay's MTU limits what the tunnel can carry, not the device
        LinkAttribute::Mtu(65000),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(info_kind), LinkInfo::Data(data)]),
    ];
    let _: Vec<RouteNetlinkMessage> =
        sock.transact_generic(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)?;
    // NEWLINK ignores IFF_UP on some kernels; set it explicitly.
    let mut up = LinkMessage::default();
    up.header.flags = LinkFlags::Up;
    up.header.change_mask = LinkFlags::Up;
    up.attributes = vec![LinkAttribute::IfName(name.to_owned())];
    let _: Vec<RouteNetlinkMessage> = sock.transact_generic(RouteNetlinkMessage::SetLink(up), 0)?;
    Ok(())
}

/// Deletes a Linux network device by name.
pub fn delete_device(name: &str) -> Result<(), NlError> {
    let mut sock = NlSocket::open_route().map_err(NlError::from_io)?;
    let mut msg = LinkMessage::default();
    msg.attributes = vec![LinkAttribute::IfName(name.to_owned())];
    let _: Vec<RouteNetlinkMessage> =
        sock.transact_generic(RouteNetlinkMessage::DelLink(msg), 0)?;
    Ok(())
}

/// The flow-based tunnel kind of Linux device `name`, if it is one (a vxlan, geneve or
/// gretap device in collect_metadata mode): how a reopened datapath recognises the tunnel
/// devices an earlier run made, so that they are reported as tunnels and removed with it.
pub fn flow_based_tunnel_kind(name: &str) -> Result<Option<TunnelKind>, NlError> {
    let mut sock = NlSocket::open_route().map_err(NlError::from_io)?;
    let mut msg = LinkMessage::default();
    msg.attributes = vec![LinkAttribute::IfName(name.to_owned())];
    let replies: Vec<RouteNetlinkMessage> =
        sock.transact_generic(RouteNetlinkMessage::GetLink(msg), 0)?;
    for r in replies {
        let RouteNetlinkMessage::NewLink(link) = r else {
            continue;
        };
        for a in link.attributes {
            let LinkAttribute::LinkInfo(infos) = a else {
                continue;
            };
            let mut kind = None;
            let mut external = false;
            for i in infos {
                match i {
                    LinkInfo::Kind(InfoKind::Vxlan) => kind = Some(TunnelKind::Vxlan),
                    LinkInfo::Kind(InfoKind::Geneve) => kind = Some(TunnelKind::Geneve),
                    LinkInfo::Kind(InfoKind::GreTap) => kind = Some(TunnelKind::Gre),
                    LinkInfo::Data(InfoData::Vxlan(d)) => {
                        external = d.contains(&InfoVxlan::CollectMetadata(true))
                    }
                    LinkInfo::Data(InfoData::Geneve(d)) => {
                        external = d.contains(&InfoGeneve::CollectMetadata)
                    }
                    LinkInfo::Data(InfoData::GreTap(d)) => {
                        external = d.contains(&InfoGre::CollectMetadata)
                    }
                    _ => {}
                }
            }
            if external {
                return Ok(kind);
            }
        }
    }
    Ok(None)
}

impl TunnelKind {
    /// The port type string of this kind.
    pub fn port_type(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Gre => "gre",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vport_reply_parses_stats_in_kernel_order() {
        // struct ovs_vport_stats: rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors,
        // tx_errors, rx_dropped, tx_dropped
        let stats: Vec<u8> = (1u64..=8).flat_map(|v| v.to_ne_bytes()).collect();
        let msg = OvsMessage::<VportFamily>::new(
            attr::cmd::NEW,
            5,
            &[
                RawAttr::u32(attr::vport::PORT_NO, 3),
                RawAttr::u32(attr::vport::TYPE, attr::vport::TYPE_INTERNAL),
                RawAttr::string(attr::vport::NAME, "br0"),
                RawAttr::bytes(
                    attr::vport::UPCALL_PID,
                    [7u32, 9].iter().flat_map(|p| p.to_ne_bytes()).collect(),
                ),
                RawAttr::bytes(attr::vport::STATS, stats),
            ],
        );
        let v = parse(&msg).unwrap();
        assert_eq!(
            (v.port_no, v.name.as_str(), vport_type_name(v.vport_type)),
            (3, "br0", "internal")
        );
        assert_eq!(v.upcall_pids, [7, 9]);
        let s = v.stats;
        assert_eq!(
            (s.rx_packets, s.tx_packets, s.rx_bytes, s.tx_bytes),
            (1, 2, 3, 4)
        );
        assert_eq!(
            (s.rx_errors, s.tx_errors, s.rx_dropped, s.tx_dropped),
            (5, 6, 7, 8)
        );
        // truncated stats are an error, not garbage counters
        let short = OvsMessage::<VportFamily>::new(
            attr::cmd::NEW,
            5,
            &[RawAttr::bytes(attr::vport::STATS, vec![0; 40])],
        );
        assert!(parse(&short).is_err());
    }

    #[test]
    fn new_request_carries_pids_port_and_tunnel_port() {
        let m = new_request(
            4,
            "vx0",
            attr::vport::TYPE_VXLAN,
            Some(9),
            &[11, 12],
            Some(4790),
        );
        let kinds: Vec<u16> = m
            .nlas()
            .map(|n| n.unwrap().kind() & netlink_packet_core::NLA_TYPE_MASK)
            .collect();
        assert_eq!(
            kinds,
            [
                attr::vport::TYPE,
                attr::vport::NAME,
                attr::vport::UPCALL_PID,
                attr::vport::PORT_NO,
                attr::vport::OPTIONS
            ]
        );
        let opts = m
            .nlas()
            .map(|n| n.unwrap())
            .find(|n| n.kind() & netlink_packet_core::NLA_TYPE_MASK == attr::vport::OPTIONS)
            .unwrap();
        // OVS_TUNNEL_ATTR_DST_PORT, u16 in host order
        assert_eq!(value(&opts), [6, 0, 1, 0, 0xb6, 0x12, 0, 0]);
        assert_eq!(
            TunnelKind::from_port_type("geneve"),
            Some(TunnelKind::Geneve)
        );
        assert_eq!(TunnelKind::from_port_type("afxdp"), None);
    }
}
