//! OVS_KEY_ATTR_*: the kernel's flow-key attributes as a typed enum with its own `Nla`
//! encoding. Layouts are those of `struct ovs_key_*` in include/uapi/linux/openvswitch.h:
//! addresses and ports in network byte order, scalars like in_port in host order.

use netlink_packet_core::{DecodeError, Nla, NlaBuffer, NLA_F_NESTED};

use super::attr::{emit_all, exact_len, for_each_nla, get_u32, value};

/// OVS_KEY_ATTR_* numbers.
pub mod kind {
    /// Nested attributes inside an 802.1Q tag.
    pub const ENCAP: u16 = 1;
    /// u32 skb->priority.
    pub const PRIORITY: u16 = 2;
    /// u32 datapath port.
    pub const IN_PORT: u16 = 3;
    /// struct ovs_key_ethernet.
    pub const ETHERNET: u16 = 4;
    /// be16 TCI (with the CFI bit as "tag present").
    pub const VLAN: u16 = 5;
    /// be16 Ethernet type.
    pub const ETHERTYPE: u16 = 6;
    /// struct ovs_key_ipv4.
    pub const IPV4: u16 = 7;
    /// struct ovs_key_ipv6.
    pub const IPV6: u16 = 8;
    /// struct ovs_key_tcp.
    pub const TCP: u16 = 9;
    /// struct ovs_key_udp.
    pub const UDP: u16 = 10;
    /// struct ovs_key_icmp.
    pub const ICMP: u16 = 11;
    /// struct ovs_key_icmpv6.
    pub const ICMPV6: u16 = 12;
    /// struct ovs_key_arp.
    pub const ARP: u16 = 13;
    /// struct ovs_key_nd.
    pub const ND: u16 = 14;
    /// u32 skb mark.
    pub const SKB_MARK: u16 = 15;
    /// Nested OVS_TUNNEL_KEY_ATTR_*.
    pub const TUNNEL: u16 = 16;
    /// struct ovs_key_sctp.
    pub const SCTP: u16 = 17;
    /// be16 TCP flags.
    pub const TCP_FLAGS: u16 = 18;
    /// u32 recirculation id.
    pub const RECIRC_ID: u16 = 20;
}

/// OVS_TUNNEL_KEY_ATTR_* numbers.
pub mod tun {
    /// be64 tunnel id.
    pub const ID: u16 = 0;
    /// be32 outer IPv4 source.
    pub const IPV4_SRC: u16 = 1;
    /// be32 outer IPv4 destination.
    pub const IPV4_DST: u16 = 2;
    /// u8 outer TOS.
    pub const TOS: u16 = 3;
    /// u8 outer TTL.
    pub const TTL: u16 = 4;
    /// Flag: DF set.
    pub const DONT_FRAGMENT: u16 = 5;
    /// Flag: checksum present.
    pub const CSUM: u16 = 6;
    /// Flag: Geneve OAM.
    pub const OAM: u16 = 7;
    /// Geneve options (TLVs as on the wire).
    pub const GENEVE_OPTS: u16 = 8;
    /// be16 outer UDP source port.
    pub const TP_SRC: u16 = 9;
    /// be16 outer UDP destination port.
    pub const TP_DST: u16 = 10;
    /// in6_addr outer IPv6 source.
    pub const IPV6_SRC: u16 = 13;
    /// in6_addr outer IPv6 destination.
    pub const IPV6_DST: u16 = 14;
}

/// struct ovs_key_ipv4 (addresses as host-order u32 here; emitted big-endian).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyIpv4 {
    /// Source.
    pub src: u32,
    /// Destination.
    pub dst: u32,
    /// Protocol.
    pub proto: u8,
    /// TOS.
    pub tos: u8,
    /// TTL.
    pub ttl: u8,
    /// OVS_FRAG_TYPE_* (or a mask byte).
    pub frag: u8,
}

/// struct ovs_key_ipv6.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyIpv6 {
    /// Source.
    pub src: [u8; 16],
    /// Destination.
    pub dst: [u8; 16],
    /// Flow label (20 bits).
    pub label: u32,
    /// Next header.
    pub proto: u8,
    /// Traffic class.
    pub tclass: u8,
    /// Hop limit.
    pub hlimit: u8,
    /// OVS_FRAG_TYPE_* (or a mask byte).
    pub frag: u8,
}

/// struct ovs_key_arp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyArp {
    /// Sender IP.
    pub sip: u32,
    /// Target IP.
    pub tip: u32,
    /// Opcode.
    pub op: u16,
    /// Sender MAC.
    pub sha: [u8; 6],
    /// Target MAC.
    pub tha: [u8; 6],
}

/// struct ovs_key_nd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyNd {
    /// Target address.
    pub target: [u8; 16],
    /// Source link-layer address option.
    pub sll: [u8; 6],
    /// Target link-layer address option.
    pub tll: [u8; 6],
}

/// One OVS_TUNNEL_KEY_ATTR_*.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TunnelAttr {
    /// Tunnel id.
    Id(u64),
    /// Outer IPv4 source.
    Ipv4Src(u32),
    /// Outer IPv4 destination.
    Ipv4Dst(u32),
    /// Outer IPv6 source.
    Ipv6Src([u8; 16]),
    /// Outer IPv6 destination.
    Ipv6Dst([u8; 16]),
    /// Outer TOS.
    Tos(u8),
    /// Outer TTL.
    Ttl(u8),
    /// DF flag.
    DontFragment,
    /// Checksum flag.
    Csum,
    /// OAM flag.
    Oam,
    /// Outer UDP source port.
    TpSrc(u16),
    /// Outer UDP destination port.
    TpDst(u16),
    /// Geneve option TLVs, as on the wire.
    GeneveOpts(Vec<u8>),
    /// Anything else, kept verbatim.
    Other(u16, Vec<u8>),
}

/// One OVS_KEY_ATTR_*.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyAttr {
    /// Attributes inside a VLAN tag.
    Encap(Vec<KeyAttr>),
    /// skb priority.
    Priority(u32),
    /// Input port.
    InPort(u32),
    /// Ethernet source and destination.
    Ethernet {
        /// Source.
        src: [u8; 6],
        /// Destination.
        dst: [u8; 6],
    },
    /// VLAN TCI (CFI bit = tag present).
    Vlan(u16),
    /// Ethertype.
    Ethertype(u16),
    /// IPv4 header fields.
    Ipv4(KeyIpv4),
    /// IPv6 header fields.
    Ipv6(KeyIpv6),
    /// TCP ports.
    Tcp(u16, u16),
    /// UDP ports.
    Udp(u16, u16),
    /// SCTP ports.
    Sctp(u16, u16),
    /// ICMP type and code.
    Icmp(u8, u8),
    /// ICMPv6 type and code.
    Icmpv6(u8, u8),
    /// ARP fields.
    Arp(KeyArp),
    /// IPv6 ND fields.
    Nd(KeyNd),
    /// skb mark.
    SkbMark(u32),
    /// Tunnel metadata.
    Tunnel(Vec<TunnelAttr>),
    /// TCP flags.
    TcpFlags(u16),
    /// Recirculation id.
    RecircId(u32),
    /// An attribute this switch does not model (ct_state, dp_hash, ...), kept verbatim.
    Other(u16, Vec<u8>),
}

fn be16(v: &[u8]) -> u16 {
    u16::from_be_bytes([v[0], v[1]])
}
fn be32(v: &[u8]) -> u32 {
    u32::from_be_bytes([v[0], v[1], v[2], v[3]])
}
fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
    v[..N].try_into().unwrap()
}

impl Nla for TunnelAttr {
    fn value_len(&self) -> usize {
        use TunnelAttr::*;
        match self {
            Id(_) => 8,
            Ipv4Src(_) | Ipv4Dst(_) => 4,
            Ipv6Src(_) | Ipv6Dst(_) => 16,
            Tos(_) | Ttl(_) => 1,
            DontFragment | Csum | Oam => 0,
            TpSrc(_) | TpDst(_) => 2,
            GeneveOpts(v) | Other(_, v) => v.len(),
        }
    }
    fn kind(&self) -> u16 {
        use TunnelAttr::*;
        match self {
            Id(_) => tun::ID,
            Ipv4Src(_) => tun::IPV4_SRC,
            Ipv4Dst(_) => tun::IPV4_DST,
            Ipv6Src(_) => tun::IPV6_SRC,
            Ipv6Dst(_) => tun::IPV6_DST,
            Tos(_) => tun::TOS,
            Ttl(_) => tun::TTL,
            DontFragment => tun::DONT_FRAGMENT,
            Csum => tun::CSUM,
            Oam => tun::OAM,
            TpSrc(_) => tun::TP_SRC,
            TpDst(_) => tun::TP_DST,
            GeneveOpts(_) => tun::GENEVE_OPTS,
            Other(k, _) => *k,
        }
    }
    fn emit_value(&self, b: &mut [u8]) {
        use TunnelAttr::*;
        match self {
            Id(v) => b.copy_from_slice(&v.to_be_bytes()),
            Ipv4Src(v) | Ipv4Dst(v) => b.copy_from_slice(&v.to_be_bytes()),
            Ipv6Src(v) | Ipv6Dst(v) => b.copy_from_slice(v),
            Tos(v) | Ttl(v) => b[0] = *v,
            DontFragment | Csum | Oam => {}
            TpSrc(v) | TpDst(v) => b.copy_from_slice(&v.to_be_bytes()),
            GeneveOpts(v) | Other(_, v) => b.copy_from_slice(v),
        }
    }
}

impl TunnelAttr {
    /// Parses one tunnel attribute, checking its length.
    pub fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        use TunnelAttr::*;
        let k = nla.kind() & !NLA_F_NESTED;
        Ok(match k {
            tun::ID => Id(u64::from_be_bytes(arr(exact_len(nla, 8, "tunnel id")?))),
            tun::IPV4_SRC => Ipv4Src(be32(exact_len(nla, 4, "tunnel ipv4_src")?)),
            tun::IPV4_DST => Ipv4Dst(be32(exact_len(nla, 4, "tunnel ipv4_dst")?)),
            tun::IPV6_SRC => Ipv6Src(arr(exact_len(nla, 16, "tunnel ipv6_src")?)),
            tun::IPV6_DST => Ipv6Dst(arr(exact_len(nla, 16, "tunnel ipv6_dst")?)),
            tun::TOS => Tos(exact_len(nla, 1, "tunnel tos")?[0]),
            tun::TTL => Ttl(exact_len(nla, 1, "tunnel ttl")?[0]),
            tun::DONT_FRAGMENT => DontFragment,
            tun::CSUM => Csum,
            tun::OAM => Oam,
            tun::TP_SRC => TpSrc(be16(exact_len(nla, 2, "tunnel tp_src")?)),
            tun::TP_DST => TpDst(be16(exact_len(nla, 2, "tunnel tp_dst")?)),
            tun::GENEVE_OPTS => GeneveOpts(value(nla).to_vec()),
            _ => Other(k, value(nla).to_vec()),
        })
    }
}

impl Nla for KeyAttr {
    fn value_len(&self) -> usize {
        use KeyAttr::*;
        match self {
            Encap(v) => emit_all(v).len(),
            Tunnel(v) => emit_all(v).len(),
            Priority(_) | InPort(_) | SkbMark(_) | RecircId(_) => 4,
            Ethernet { .. } => 12,
            Vlan(_) | Ethertype(_) | TcpFlags(_) => 2,
            Ipv4(_) => 12,
            Ipv6(_) => 40,
            Tcp(..) | Udp(..) | Sctp(..) | Icmp(..) | Icmpv6(..) => {
                if matches!(self, Icmp(..) | Icmpv6(..)) {
                    2
                } else {
                    4
                }
            }
            Arp(_) => 24,
            Nd(_) => 28,
            Other(_, v) => v.len(),
        }
    }
    fn kind(&self) -> u16 {
        use KeyAttr::*;
        match self {
            Encap(_) => kind::ENCAP | NLA_F_NESTED,
            Priority(_) => kind::PRIORITY,
            InPort(_) => kind::IN_PORT,
            Ethernet { .. } => kind::ETHERNET,
            Vlan(_) => kind::VLAN,
            Ethertype(_) => kind::ETHERTYPE,
            Ipv4(_) => kind::IPV4,
            Ipv6(_) => kind::IPV6,
            Tcp(..) => kind::TCP,
            Udp(..) => kind::UDP,
            Sctp(..) => kind::SCTP,
            Icmp(..) => kind::ICMP,
            Icmpv6(..) => kind::ICMPV6,
            Arp(_) => kind::ARP,
            Nd(_) => kind::ND,
            SkbMark(_) => kind::SKB_MARK,
            Tunnel(_) => kind::TUNNEL | NLA_F_NESTED,
            TcpFlags(_) => kind::TCP_FLAGS,
            RecircId(_) => kind::RECIRC_ID,
            Other(k, _) => *k,
        }
    }
    fn emit_value(&self, b: &mut [u8]) {
        use KeyAttr::*;
        match self {
            Encap(v) => b.copy_from_slice(&emit_all(v)),
            Tunnel(v) => b.copy_from_slice(&emit_all(v)),
            Priority(v) | InPort(v) | SkbMark(v) | RecircId(v) => {
                b.copy_from_slice(&v.to_ne_bytes())
            }
            Ethernet { src, dst } => {
                b[..6].copy_from_slice(src);
                b[6..].copy_from_slice(dst);
            }
            Vlan(v) | Ethertype(v) | TcpFlags(v) => b.copy_from_slice(&v.to_be_bytes()),
            Ipv4(k) => {
                b[0..4].copy_from_slice(&k.src.to_be_bytes());
                b[4..8].copy_from_slice(&k.dst.to_be_bytes());
                b[8..12].copy_from_slice(&[k.proto, k.tos, k.ttl, k.frag]);
            }
            Ipv6(k) => {
                b[0..16].copy_from_slice(&k.src);
                b[16..32].copy_from_slice(&k.dst);
                b[32..36].copy_from_slice(&k.label.to_be_bytes());
                b[36..40].copy_from_slice(&[k.proto, k.tclass, k.hlimit, k.frag]);
            }
            Tcp(s, d) | Udp(s, d) | Sctp(s, d) => {
                b[0..2].copy_from_slice(&s.to_be_bytes());
                b[2..4].copy_from_slice(&d.to_be_bytes());
            }
            Icmp(t, c) | Icmpv6(t, c) => b.copy_from_slice(&[*t, *c]),
            Arp(k) => {
                b[0..4].copy_from_slice(&k.sip.to_be_bytes());
                b[4..8].copy_from_slice(&k.tip.to_be_bytes());
                b[8..10].copy_from_slice(&k.op.to_be_bytes());
                b[10..16].copy_from_slice(&k.sha);
                b[16..22].copy_from_slice(&k.tha);
                b[22..24].fill(0);
            }
            Nd(k) => {
                b[0..16].copy_from_slice(&k.target);
                b[16..22].copy_from_slice(&k.sll);
                b[22..28].copy_from_slice(&k.tll);
            }
            Other(_, v) => b.copy_from_slice(v),
        }
    }
}

impl KeyAttr {
    /// Parses one key attribute (recursively for ENCAP and TUNNEL), checking lengths.
    pub fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        use KeyAttr::*;
        let k = nla.kind() & !NLA_F_NESTED;
        let len = |n: usize, what: &str| exact_len(nla, n, what);
        Ok(match k {
            kind::ENCAP => Encap(parse_key_attrs(value(nla))?),
            kind::TUNNEL => {
                let mut v = Vec::new();
                for_each_nla(value(nla), |a| {
                    v.push(TunnelAttr::parse(&a)?);
                    Ok(())
                })?;
                Tunnel(v)
            }
            kind::PRIORITY => Priority(get_u32(nla, "priority")?),
            kind::IN_PORT => InPort(get_u32(nla, "in_port")?),
            kind::SKB_MARK => SkbMark(get_u32(nla, "skb_mark")?),
            kind::RECIRC_ID => RecircId(get_u32(nla, "recirc_id")?),
            kind::ETHERNET => {
                let v = len(12, "ethernet")?;
                Ethernet {
                    src: arr(&v[..6]),
                    dst: arr(&v[6..]),
                }
            }
            kind::VLAN => Vlan(be16(len(2, "vlan")?)),
            kind::ETHERTYPE => Ethertype(be16(len(2, "ethertype")?)),
            kind::TCP_FLAGS => TcpFlags(be16(len(2, "tcp_flags")?)),
            kind::IPV4 => {
                let v = len(12, "ipv4")?;
                Ipv4(KeyIpv4 {
                    src: be32(&v[0..]),
                    dst: be32(&v[4..]),
                    proto: v[8],
                    tos: v[9],
                    ttl: v[10],
                    frag: v[11],
                })
            }
            kind::IPV6 => {
                let v = len(40, "ipv6")?;
                Ipv6(KeyIpv6 {
                    src: arr(&v[0..]),
                    dst: arr(&v[16..]),
                    label: be32(&v[32..]),
                    proto: v[36],
                    tclass: v[37],
                    hlimit: v[38],
                    frag: v[39],
                })
            }
            kind::TCP => {
                let v = len(4, "tcp")?;
                Tcp(be16(v), be16(&v[2..]))
            }
            kind::UDP => {
                let v = len(4, "udp")?;
                Udp(be16(v), be16(&v[2..]))
            }
            kind::SCTP => {
                let v = len(4, "sctp")?;
                Sctp(be16(v), be16(&v[2..]))
            }
            kind::ICMP => {
                let v = len(2, "icmp")?;
                Icmp(v[0], v[1])
            }
            kind::ICMPV6 => {
                let v = len(2, "icmpv6")?;
                Icmpv6(v[0], v[1])
            }
            kind::ARP => {
                let v = len(24, "arp")?;
                Arp(KeyArp {
                    sip: be32(v),
                    tip: be32(&v[4..]),
                    op: be16(&v[8..]),
                    sha: arr(&v[10..]),
                    tha: arr(&v[16..]),
                })
            }
            kind::ND => {
                let v = len(28, "nd")?;
                Nd(KeyNd {
                    target: arr(v),
                    sll: arr(&v[16..]),
                    tll: arr(&v[22..]),
                })
            }
            _ => Other(k, value(nla).to_vec()),
        })
    }
}

/// Parses a list of key attributes (an OVS_FLOW_ATTR_KEY / MASK / OVS_PACKET_ATTR_KEY).
pub fn parse_key_attrs(buf: &[u8]) -> Result<Vec<KeyAttr>, DecodeError> {
    let mut v = Vec::new();
    for_each_nla(buf, |a| {
        v.push(KeyAttr::parse(&a)?);
        Ok(())
    })?;
    Ok(v)
}
