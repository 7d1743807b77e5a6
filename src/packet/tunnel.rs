//! Native tunnelling for the userspace datapath: building the outer header once, pushing
//! it per packet, and validating and stripping it on receive.
//!
//! The translator (or tunnel port setup) calls `build_tnl_header` when it resolves a
//! tunnel's route and neighbour, and stores the bytes in a `DpAction::TnlPush`. Per
//! packet, `tnl_push` prepends those bytes into the buffer's headroom and completes only
//! what depends on the packet: IP/UDP lengths, the IPv4 header checksum (incrementally),
//! the UDP source port (from the inner flow hash, for underlay ECMP/RSS entropy) and, when
//! the template asks for them, the UDP or GRE checksum. `tnl_pop` checks every outer
//! header and strips it, returning the tunnel metadata the packet recirculates with. Both
//! per-packet paths allocate nothing.
//!
//! Template convention: a UDP checksum field of 0 in the header means "send without a
//! checksum" and any other value means "compute one per packet"; a GRE C flag means the
//! same for the GRE checksum.

use std::net::IpAddr;

use super::buffer::PacketBuf;
use super::flow_key::tun_flag;
use super::meta::{TunnelMeta, OFS_NONE};
use super::wire::ethernet;
use super::wire::geneve::{self, GeneveOption};
use super::wire::{checksum, gre, ipv4, ipv6, rd16, udp, vxlan, wr16, WireError};
use super::{ethertype, ipproto};
use crate::dpif::action::{TnlPush, TunnelType};

/// Lowest UDP source port used for tunnel entropy (OVS's default `tnl_udp_port_min`).
pub const UDP_SRC_MIN: u16 = 32768;
/// Highest UDP source port used for tunnel entropy (OVS's default `tnl_udp_port_max`).
pub const UDP_SRC_MAX: u16 = 61000;

/// Why a tunnel header could not be built, pushed or popped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TnlError {
    /// An outer header is cut off or invalid.
    #[error("tunnel header: {0}")]
    Wire(#[from] WireError),
    /// Source and destination addresses are of different families.
    #[error("tunnel: outer source and destination are not the same IP family")]
    MixedFamilies,
    /// The buffer has no room in front for the header.
    #[error("tunnel push: no headroom for a {0}-byte outer header")]
    NoHeadroom(usize),
    /// The encapsulated packet would overflow a 16-bit length field.
    #[error("tunnel push: {0}-byte encapsulated packet overflows the outer length field")]
    TooLong(usize),
    /// The `TnlPush` header is not Ethernet + IPv4/IPv6 + UDP/GRE.
    #[error("tunnel push: header template is not Ethernet + IPv4/IPv6 + UDP/GRE ({0})")]
    BadTemplate(&'static str),
    /// The received frame is not a tunnel packet this code decapsulates.
    #[error("tunnel pop: {0}")]
    NotTunnel(&'static str),
    /// A checksum in the outer headers does not verify.
    #[error("tunnel pop: bad {0} checksum")]
    BadChecksum(&'static str),
}

/// The tunnel protocol header and its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Encap {
    /// VXLAN over UDP.
    Vxlan {
        /// VNI (24 bits).
        vni: u32,
        /// UDP destination port (normally `vxlan::UDP_PORT`).
        dst_port: u16,
        /// Send a UDP checksum.
        udp_csum: bool,
    },
    /// Geneve over UDP.
    Geneve {
        /// VNI (24 bits).
        vni: u32,
        /// UDP destination port (normally `geneve::UDP_PORT`).
        dst_port: u16,
        /// Send a UDP checksum.
        udp_csum: bool,
        /// Set the OAM bit.
        oam: bool,
        /// TLV options.
        options: Vec<GeneveOption>,
    },
    /// GRE carrying Ethernet (gretap).
    Gre {
        /// Key, if any.
        key: Option<u32>,
        /// Send a GRE checksum.
        csum: bool,
    },
}

impl Encap {
    /// The datapath's tunnel type for this encapsulation.
    pub fn tunnel_type(&self) -> TunnelType {
        match self {
            Encap::Vxlan { .. } => TunnelType::Vxlan,
            Encap::Geneve { .. } => TunnelType::Geneve,
            Encap::Gre { .. } => TunnelType::Gre,
        }
    }
}

/// Everything the outer header of one tunnel destination needs, once the route and the
/// next hop's MAC are resolved.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TnlHeaderSpec {
    /// Underlay source MAC (the output port's).
    pub eth_src: [u8; 6],
    /// Next-hop MAC.
    pub eth_dst: [u8; 6],
    /// Local tunnel endpoint.
    pub src: IpAddr,
    /// Remote tunnel endpoint.
    pub dst: IpAddr,
    /// Outer TOS / traffic class.
    pub tos: u8,
    /// Outer TTL / hop limit.
    pub ttl: u8,
    /// Set DF on an IPv4 underlay.
    pub dont_fragment: bool,
    /// Tunnel protocol.
    pub encap: Encap,
}

/// Builds the outer Ethernet + IP + UDP/GRE + tunnel header bytes for `TnlPush::header`.
/// Lengths describe an empty payload and the UDP source port is 0: `tnl_push` completes
/// them per packet.
pub fn build_tnl_header(spec: &TnlHeaderSpec) -> Result<Vec<u8>, TnlError> {
    // tunnel header after UDP/GRE
    let (proto, l4_hdr, tnl) = match &spec.encap {
        Encap::Vxlan {
            vni,
            dst_port,
            udp_csum,
        } => {
            let mut t = vec![0u8; vxlan::field::HEADER_LEN];
            vxlan::Repr { vni: *vni }.emit(&mut t)?;
            (ipproto::UDP, udp_header(*dst_port, *udp_csum, t.len()), t)
        }
        Encap::Geneve {
            vni,
            dst_port,
            udp_csum,
            oam,
            options,
        } => {
            let r = geneve::Repr {
                vni: *vni,
                oam: *oam,
                critical: options.iter().any(|o| o.opt_type & 0x80 != 0),
                protocol: geneve::PROTO_ETHERNET,
                options: options.clone(),
            };
            let mut t = vec![0u8; r.header_len()];
            r.emit(&mut t)?;
            (ipproto::UDP, udp_header(*dst_port, *udp_csum, t.len()), t)
        }
        Encap::Gre { key, csum } => {
            let r = gre::Repr {
                protocol: gre::PROTO_ETHERNET,
                csum: *csum,
                key: *key,
                seq: None,
            };
            let mut g = vec![0u8; r.header_len()];
            r.emit(&mut g)?;
            (ipproto::GRE, g, Vec::new())
        }
    };
    let after_ip = l4_hdr.len() + tnl.len();
    let mut l3 = match (spec.src, spec.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let r = ipv4::Repr {
                src: s.into(),
                dst: d.into(),
                protocol: proto,
                payload_len: after_ip as u16,
                tos: spec.tos,
                ttl: spec.ttl,
                ident: 0,
                dont_frag: spec.dont_fragment,
                more_frags: false,
                frag_offset: 0,
            };
            let mut b = vec![0u8; r.header_len()];
            r.emit(&mut b)?;
            b
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let r = ipv6::Repr {
                src: s.octets(),
                dst: d.octets(),
                next_header: proto,
                payload_len: after_ip as u16,
                hop_limit: spec.ttl,
                traffic_class: spec.tos,
                flow_label: 0,
            };
            let mut b = vec![0u8; r.header_len()];
            r.emit(&mut b)?;
            b
        }
        _ => return Err(TnlError::MixedFamilies),
    };
    let et = if spec.src.is_ipv4() {
        ethertype::IPV4
    } else {
        ethertype::IPV6
    };
    let e = ethernet::Repr {
        dst: spec.eth_dst,
        src: spec.eth_src,
        vlans: Default::default(),
        ethertype: et,
    };
    let mut out = vec![0u8; e.header_len()];
    e.emit(&mut out)?;
    out.append(&mut l3);
    out.extend_from_slice(&l4_hdr);
    out.extend_from_slice(&tnl);
    Ok(out)
}

fn udp_header(dst_port: u16, csum: bool, tnl_len: usize) -> Vec<u8> {
    let mut u = vec![0u8; udp::field::HEADER_LEN];
    let r = udp::Repr {
        src_port: 0,
        dst_port,
        payload_len: tnl_len as u16,
    };
    r.emit(&mut u).expect("8-byte buffer");
    // template marker: non-zero = compute per packet
    wr16(&mut u, udp::field::CHECKSUM, if csum { 0xffff } else { 0 });
    u
}

/// The UDP source port for a packet whose inner flow hashes to `hash`: spread evenly over
/// `UDP_SRC_MIN..=UDP_SRC_MAX` so underlay ECMP and receive-side RSS see per-flow entropy.
#[inline]
pub fn udp_src_port(hash: u32) -> u16 {
    let span = (UDP_SRC_MAX - UDP_SRC_MIN) as u64 + 1;
    UDP_SRC_MIN + ((hash as u64 * span) >> 32) as u16
}

/// Where the L3 and L4 headers of a template or received frame start.
struct OuterLayout {
    l3: usize,
    v6: bool,
    l4: usize,
    proto: u8,
}

/// Locates and checks the headers of a `TnlPush` template of type `t`: it must be exactly
/// Ethernet + IPv4/IPv6 + (UDP + VXLAN/Geneve | GRE), so that per-packet completion writes
/// only inside the template.
fn template_layout(h: &[u8], t: TunnelType) -> Result<OuterLayout, TnlError> {
    if h.len() < ethernet::field::HEADER_LEN {
        return Err(TnlError::BadTemplate("shorter than Ethernet"));
    }
    let l3 = ethernet::field::HEADER_LEN;
    let (v6, l4, proto) = match rd16(h, ethernet::field::ETHERTYPE) {
        ethertype::IPV4 if h.len() >= l3 + ipv4::field::HEADER_LEN => {
            let p = ipv4::Packet::new_unchecked(&h[l3..]);
            if p.version() != 4 || p.header_len() < ipv4::field::HEADER_LEN {
                return Err(TnlError::BadTemplate("invalid IPv4 header"));
            }
            (false, l3 + p.header_len(), p.protocol())
        }
        ethertype::IPV6 if h.len() >= l3 + ipv6::field::HEADER_LEN && h[l3] >> 4 == 6 => (
            true,
            l3 + ipv6::field::HEADER_LEN,
            h[l3 + ipv6::field::NEXT_HEADER],
        ),
        _ => return Err(TnlError::BadTemplate("no IPv4/IPv6 header")),
    };
    let bad = |_| TnlError::BadTemplate("tunnel header cut off or invalid");
    let rest = h.get(l4..).ok_or(TnlError::BadTemplate("cut off"))?;
    let tnl_len = match (t, proto) {
        (TunnelType::Gre, ipproto::GRE) => {
            gre::Packet::new_checked(rest).map_err(bad)?.header_len()
        }
        (TunnelType::Vxlan | TunnelType::Geneve, ipproto::UDP) => {
            let body = rest
                .get(udp::field::HEADER_LEN..)
                .ok_or(TnlError::BadTemplate("cut off"))?;
            udp::field::HEADER_LEN
                + if t == TunnelType::Vxlan {
                    vxlan::Packet::new_checked(body).map_err(bad)?;
                    vxlan::field::HEADER_LEN
                } else {
                    geneve::Packet::new_checked(body).map_err(bad)?.header_len()
                }
        }
        _ => {
            return Err(TnlError::BadTemplate(
                "IP protocol does not match the tunnel type",
            ))
        }
    };
    if rest.len() != tnl_len {
        return Err(TnlError::BadTemplate("length does not match its headers"));
    }
    Ok(OuterLayout { l3, v6, l4, proto })
}

/// Prepends `push.header` to the packet and completes lengths, checksums and the UDP
/// source port (from `inner_hash`). On error the packet is unchanged. Afterwards
/// `pkt.meta`'s offsets describe the outer headers.
pub fn tnl_push(pkt: &mut PacketBuf, push: &TnlPush, inner_hash: u32) -> Result<(), TnlError> {
    let h = &push.header[..];
    let lay = template_layout(h, push.tnl_type)?;
    let inner = pkt.len();
    let after_ip = h.len() - lay.l4 + inner;
    let ip_hl = lay.l4 - lay.l3;
    if after_ip + if lay.v6 { 0 } else { ip_hl } > u16::MAX as usize {
        return Err(TnlError::TooLong(after_ip + ip_hl));
    }
    let front = pkt
        .push_front(h.len())
        .ok_or(TnlError::NoHeadroom(h.len()))?;
    front.copy_from_slice(h);
    let d = pkt.data_mut();
    let (l3, l4) = (lay.l3, lay.l4);
    if lay.v6 {
        wr16(d, l3 + ipv6::field::PAYLOAD_LEN, after_ip as u16);
    } else {
        let total = (ip_hl + after_ip) as u16;
        let old = rd16(d, l3 + ipv4::field::LENGTH);
        wr16(d, l3 + ipv4::field::LENGTH, total);
        let c = checksum::update16(rd16(d, l3 + ipv4::field::CHECKSUM), old, total);
        wr16(d, l3 + ipv4::field::CHECKSUM, c);
    }
    if lay.proto == ipproto::UDP {
        let (ip, rest) = d.split_at_mut(l4);
        let mut u = udp::Packet::new_unchecked(rest);
        u.set_len(after_ip as u16);
        u.set_src_port(udp_src_port(inner_hash));
        if u.checksum() != 0 {
            let ip = &ip[l3..];
            let pseudo = if lay.v6 {
                let ip = ipv6::Packet::new_unchecked(ip);
                checksum::pseudo_header_v6(
                    &ip.src_addr(),
                    &ip.dst_addr(),
                    lay.proto,
                    after_ip as u32,
                )
            } else {
                let ip = ipv4::Packet::new_unchecked(ip);
                checksum::pseudo_header_v4(ip.src_addr(), ip.dst_addr(), lay.proto, after_ip as u16)
            };
            u.fill_checksum(pseudo);
        }
    } else {
        gre::Packet::new_unchecked(&mut d[l4..]).fill_checksum();
    }
    pkt.meta.l3_ofs = l3 as u16;
    pkt.meta.l4_ofs = l4 as u16;
    pkt.meta.l4_proto = lay.proto;
    Ok(())
}

/// Validates and strips the outer headers of a VXLAN (UDP port 4789), Geneve (6081) or
/// GRE (gretap) packet, recognised by protocol and well-known port. See `tnl_pop_as`.
pub fn tnl_pop(pkt: &mut PacketBuf) -> Result<TunnelMeta, TnlError> {
    tnl_pop_as(pkt, None)
}

/// Validates and strips the outer headers, expecting `kind` when given (a tunnel port on
/// a non-standard UDP port says what it is). Checks the outer IPv4 header checksum, a
/// non-zero UDP checksum and a present GRE checksum; refuses fragments and non-Ethernet
/// payloads. On success the packet is the inner Ethernet frame, `pkt.meta.tunnel()` holds
/// the returned metadata and the offsets are cleared for the re-parse; on error the
/// packet is unchanged.
pub fn tnl_pop_as(pkt: &mut PacketBuf, kind: Option<TunnelType>) -> Result<TunnelMeta, TnlError> {
    let (meta, inner_off, inner_len) = decode_outer(pkt.data(), kind)?;
    pkt.pull_front(inner_off);
    pkt.set_len(inner_len);
    pkt.meta.set_tunnel(meta);
    pkt.meta.l3_ofs = OFS_NONE;
    pkt.meta.l4_ofs = OFS_NONE;
    pkt.meta.l4_proto = 0;
    Ok(meta)
}

fn decode_outer(
    d: &[u8],
    kind: Option<TunnelType>,
) -> Result<(TunnelMeta, usize, usize), TnlError> {
    let e = ethernet::Repr::parse(&ethernet::Packet::new_checked(d)?)?;
    let l3 = e.header_len();
    let mut m = TunnelMeta::default();
    let lay = match e.ethertype {
        ethertype::IPV4 => {
            let ip = ipv4::Packet::new_checked(&d[l3..])?;
            if !ip.verify_checksum() {
                return Err(TnlError::BadChecksum("outer IPv4 header"));
            }
            if ip.more_frags() || ip.frag_offset() != 0 {
                return Err(TnlError::NotTunnel("outer IPv4 packet is a fragment"));
            }
            m.ipv4_src = ip.src_addr();
            m.ipv4_dst = ip.dst_addr();
            m.tos = ip.tos();
            m.ttl = ip.ttl();
            if ip.dont_frag() {
                m.flags |= tun_flag::DONT_FRAGMENT;
            }
            let l4 = l3 + ip.header_len();
            (
                OuterLayout {
                    l3,
                    v6: false,
                    l4,
                    proto: ip.protocol(),
                },
                l3 + ip.total_len() as usize,
            )
        }
        ethertype::IPV6 => {
            let ip = ipv6::Packet::new_checked(&d[l3..])?;
            let chain = ipv6::walk_ext_headers(ip.next_header(), ip.payload())?;
            if chain.fragment {
                return Err(TnlError::NotTunnel("outer IPv6 packet is a fragment"));
            }
            m.ipv6_src = ip.src_addr();
            m.ipv6_dst = ip.dst_addr();
            m.tos = ip.traffic_class();
            m.ttl = ip.hop_limit();
            let l4 = l3 + ipv6::field::HEADER_LEN + chain.l4_offset;
            let end = l3 + ipv6::field::HEADER_LEN + ip.payload_len() as usize;
            (
                OuterLayout {
                    l3,
                    v6: true,
                    l4,
                    proto: chain.protocol,
                },
                end,
            )
        }
        _ => return Err(TnlError::NotTunnel("outer ethertype is not IPv4 or IPv6")),
    };
    let (lay, ip_end) = lay;
    let seg = &d[lay.l4..ip_end];
    let inner_off = match lay.proto {
        ipproto::UDP => {
            let u = udp::Packet::new_checked(seg)?;
            let ulen = u.len() as usize;
            if u.checksum() != 0 {
                let ps = if lay.v6 {
                    checksum::pseudo_header_v6(&m.ipv6_src, &m.ipv6_dst, ipproto::UDP, ulen as u32)
                } else {
                    checksum::pseudo_header_v4(m.ipv4_src, m.ipv4_dst, ipproto::UDP, ulen as u16)
                };
                if !u.verify_checksum(ps) {
                    return Err(TnlError::BadChecksum("outer UDP"));
                }
                m.flags |= tun_flag::CSUM;
            }
            m.tp_src = u.src_port();
            m.tp_dst = u.dst_port();
            let t = match kind {
                Some(k @ (TunnelType::Vxlan | TunnelType::Geneve)) => k,
                Some(TunnelType::Gre) => return Err(TnlError::NotTunnel("expected GRE, got UDP")),
                None if m.tp_dst == vxlan::UDP_PORT => TunnelType::Vxlan,
                None if m.tp_dst == geneve::UDP_PORT => TunnelType::Geneve,
                None => return Err(TnlError::NotTunnel("UDP port is neither VXLAN nor Geneve")),
            };
            let body = &seg[udp::field::HEADER_LEN..ulen];
            let tnl_len = if t == TunnelType::Vxlan {
                let v = vxlan::Repr::parse(&vxlan::Packet::new_checked(body)?)?;
                m.tun_id = v.vni as u64;
                vxlan::field::HEADER_LEN
            } else {
                let g = geneve::Packet::new_checked(body)?;
                if g.protocol() != geneve::PROTO_ETHERNET {
                    return Err(TnlError::NotTunnel("Geneve payload is not Ethernet"));
                }
                let mut first = true;
                for o in g.options() {
                    let o = o?;
                    if first {
                        m.gnv_opt_hdr = o.key_header();
                        m.gnv_opt_data = o.key_data();
                        first = false;
                    }
                }
                if g.oam() {
                    m.flags |= tun_flag::OAM;
                }
                m.tun_id = g.vni() as u64;
                g.header_len()
            };
            m.flags |= tun_flag::KEY;
            // inner frame is bounded by the UDP length
            let off = lay.l4 + udp::field::HEADER_LEN + tnl_len;
            return finish(m, off, lay.l4 + ulen);
        }
        ipproto::GRE => {
            if matches!(kind, Some(TunnelType::Vxlan | TunnelType::Geneve)) {
                return Err(TnlError::NotTunnel("expected a UDP tunnel, got GRE"));
            }
            let g = gre::Packet::new_checked(seg)?;
            if g.protocol() != gre::PROTO_ETHERNET {
                return Err(TnlError::NotTunnel("GRE payload is not Ethernet"));
            }
            if g.checksum().is_some() {
                if !g.verify_checksum() {
                    return Err(TnlError::BadChecksum("GRE"));
                }
                m.flags |= tun_flag::CSUM;
            }
            if let Some(k) = g.key() {
                m.tun_id = k as u64;
                m.flags |= tun_flag::KEY;
            }
            lay.l4 + g.header_len()
        }
        _ => return Err(TnlError::NotTunnel("outer IP protocol is not UDP or GRE")),
    };
    finish(m, inner_off, ip_end)
}

fn finish(m: TunnelMeta, off: usize, end: usize) -> Result<(TunnelMeta, usize, usize), TnlError> {
    let len = end.saturating_sub(off);
    if len < ethernet::field::HEADER_LEN {
        return Err(TnlError::NotTunnel(
            "inner frame shorter than an Ethernet header",
        ));
    }
    Ok((m, off, len))
}
