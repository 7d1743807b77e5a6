//! `FlowKey` + `FlowMask` <-> OVS_KEY_ATTR_* lists, following the kernel's rules for what a
//! key must contain (`match_validate` in net/openvswitch/flow_netlink.c, a documented ABI):
//! - a key carries every header layer its (masked) ethertype and IP protocol imply, and
//!   the mask may only carry a layer whose selector (ethertype, protocol) is exact;
//! - in_port and ethertype masks are forced exact by the kernel when present, so they are
//!   left out entirely when our mask wildcards them;
//! - 802.2 frames (our dl_type 0x05ff) have no ETHERTYPE in the key, 0xffff in the mask;
//! - VLAN tags nest: ETHERTYPE=tpid, VLAN=tci|CFI, ENCAP{inner};
//! - Ethernet is always present (its absence would make the flow an L3 flow).

use crate::packet::flow_key::{frag, tun_flag};
use crate::packet::{ethertype, ipproto, FlowKey, FlowMask, VlanTag};

use super::key_attr::{KeyArp, KeyAttr, KeyIpv4, KeyIpv6, KeyNd, TunnelAttr};

/// The CFI/DEI bit the kernel uses as "a tag is present".
const VLAN_CFI: u16 = 0x1000;
/// OVS_FRAG_TYPE_FIRST / LATER.
const FRAG_FIRST: u8 = 1;
const FRAG_LATER: u8 = 2;

/// Why a key from the kernel could not become a `FlowKey`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyDecodeError {
    /// Nesting deeper than the two VLAN tags a `FlowKey` holds.
    #[error("more than two VLAN tags in a flow key")]
    TooManyVlans,
}

/// Encodes a match: returns (key attributes, mask attributes). The key is masked first, so
/// that the kernel stores exactly what later get/del requests will send again. recirc_id
/// is always exact.
pub fn encode_match(key: &FlowKey, mask: &FlowMask) -> (Vec<KeyAttr>, Vec<KeyAttr>) {
    let k = key.masked(mask);
    let m = &mask.0;
    let mut ka = Vec::new();
    let mut ma = Vec::new();
    // recirc_id is always matched exactly (as OVS does): a wildcarded recirc_id would let a
    // first-pass megaflow swallow recirculated packets.
    ka.push(KeyAttr::RecircId(key.recirc_id));
    ma.push(KeyAttr::RecircId(u32::MAX));
    if m.in_port != 0 {
        ka.push(KeyAttr::InPort(k.in_port));
        ma.push(KeyAttr::InPort(u32::MAX));
    }
    if k.tun_ipv4_dst != 0 || k.tun_ipv6_dst != [0; 16] {
        ka.push(KeyAttr::Tunnel(tunnel_attrs(&k, &k)));
        ma.push(KeyAttr::Tunnel(tunnel_attrs(m, &k)));
    } else if has_tunnel_bits(m) {
        // "not tunnelled" is matched by a tunnel mask without a tunnel key (the kernel
        // always allows a TUNNEL mask); without it the flow would also take tunnel traffic
        ma.push(KeyAttr::Tunnel(tunnel_attrs(m, &k)));
    }
    ka.push(KeyAttr::Ethernet {
        src: k.dl_src,
        dst: k.dl_dst,
    });
    ma.push(KeyAttr::Ethernet {
        src: m.dl_src,
        dst: m.dl_dst,
    });
    encode_vlans_and_l3(key, &k, m, 0, &mut ka, &mut ma);
    (ka, ma)
}

fn has_tunnel_bits(m: &FlowKey) -> bool {
    m.tun_id != 0
        || m.tun_ipv4_src != 0
        || m.tun_ipv4_dst != 0
        || m.tun_ipv6_src != [0; 16]
        || m.tun_ipv6_dst != [0; 16]
        || m.tun_flags != 0
        || m.tun_tos != 0
        || m.tun_ttl != 0
        || m.tun_tp_src != 0
        || m.tun_tp_dst != 0
        || m.tun_gnv_opt_hdr != 0
}

/// Encodes a full packet key (exact match), as for OVS_PACKET_CMD_EXECUTE or tests.
pub fn encode_key(key: &FlowKey) -> Vec<KeyAttr> {
    encode_match(key, &FlowMask::exact()).0
}

/// Tags are encoded from the unmasked key (`orig`): the kernel always matches the TCI
/// exactly unless told otherwise, so leaving a present tag out would make a flow that only
/// matches untagged frames, and the tagged packet that caused it would miss forever.
fn encode_vlans_and_l3(
    orig: &FlowKey,
    k: &FlowKey,
    m: &FlowKey,
    depth: usize,
    ka: &mut Vec<KeyAttr>,
    ma: &mut Vec<KeyAttr>,
) {
    if depth < 2 && orig.vlans[depth].present() {
        let (t, tm) = (k.vlans[depth], m.vlans[depth]);
        ka.push(KeyAttr::Ethertype(orig.vlans[depth].tpid));
        ma.push(KeyAttr::Ethertype(0xffff));
        ka.push(KeyAttr::Vlan(t.tci | VLAN_CFI));
        ma.push(KeyAttr::Vlan(tm.tci | VLAN_CFI));
        let (mut ik, mut im) = (Vec::new(), Vec::new());
        encode_vlans_and_l3(orig, k, m, depth + 1, &mut ik, &mut im);
        ka.push(KeyAttr::Encap(ik));
        ma.push(KeyAttr::Encap(im));
        return;
    }
    if m.dl_type == 0 {
        return;
    }
    if k.dl_type == ethertype::NONE {
        ma.push(KeyAttr::Ethertype(0xffff));
        return;
    }
    ka.push(KeyAttr::Ethertype(k.dl_type));
    ma.push(KeyAttr::Ethertype(0xffff));
    match k.dl_type {
        ethertype::IPV4 => {
            ka.push(KeyAttr::Ipv4(KeyIpv4 {
                src: k.nw_src,
                dst: k.nw_dst,
                proto: k.nw_proto,
                tos: k.nw_tos,
                ttl: k.nw_ttl,
                frag: frag_to_ovs(k.nw_frag),
            }));
            ma.push(KeyAttr::Ipv4(KeyIpv4 {
                src: m.nw_src,
                dst: m.nw_dst,
                proto: m.nw_proto,
                tos: m.nw_tos,
                ttl: m.nw_ttl,
                frag: frag_mask_to_ovs(m.nw_frag),
            }));
            encode_l4(k, m, ka, ma, false);
        }
        ethertype::IPV6 => {
            ka.push(KeyAttr::Ipv6(KeyIpv6 {
                src: k.ipv6_src,
                dst: k.ipv6_dst,
                label: k.ipv6_label,
                proto: k.nw_proto,
                tclass: k.nw_tos,
                hlimit: k.nw_ttl,
                frag: frag_to_ovs(k.nw_frag),
            }));
            ma.push(KeyAttr::Ipv6(KeyIpv6 {
                src: m.ipv6_src,
                dst: m.ipv6_dst,
                label: m.ipv6_label,
                proto: m.nw_proto,
                tclass: m.nw_tos,
                hlimit: m.nw_ttl,
                frag: frag_mask_to_ovs(m.nw_frag),
            }));
            encode_l4(k, m, ka, ma, true);
        }
        ethertype::ARP | ethertype::RARP => {
            let arp = |x: &FlowKey| KeyArp {
                sip: x.nw_src,
                tip: x.nw_dst,
                op: x.nw_proto as u16,
                sha: x.arp_sha,
                tha: x.arp_tha,
            };
            ka.push(KeyAttr::Arp(arp(k)));
            let mut am = arp(m);
            am.op = if m.nw_proto != 0 { 0xffff } else { 0 };
            ma.push(KeyAttr::Arp(am));
        }
        _ => {}
    }
}

fn encode_l4(k: &FlowKey, m: &FlowKey, ka: &mut Vec<KeyAttr>, ma: &mut Vec<KeyAttr>, v6: bool) {
    if k.nw_frag & frag::LATER != 0 {
        return;
    }
    let mask_ok = m.nw_proto == 0xff;
    let mut push = |kv: KeyAttr, mv: KeyAttr| {
        ka.push(kv);
        if mask_ok {
            ma.push(mv);
        }
    };
    match (k.nw_proto, v6) {
        (ipproto::TCP, _) => {
            push(
                KeyAttr::Tcp(k.tp_src, k.tp_dst),
                KeyAttr::Tcp(m.tp_src, m.tp_dst),
            );
            push(
                KeyAttr::TcpFlags(k.tcp_flags),
                KeyAttr::TcpFlags(m.tcp_flags),
            );
        }
        (ipproto::UDP, _) => push(
            KeyAttr::Udp(k.tp_src, k.tp_dst),
            KeyAttr::Udp(m.tp_src, m.tp_dst),
        ),
        (ipproto::SCTP, _) => push(
            KeyAttr::Sctp(k.tp_src, k.tp_dst),
            KeyAttr::Sctp(m.tp_src, m.tp_dst),
        ),
        (ipproto::ICMP, false) => push(
            KeyAttr::Icmp(k.tp_src as u8, k.tp_dst as u8),
            KeyAttr::Icmp(m.tp_src as u8, m.tp_dst as u8),
        ),
        (ipproto::ICMPV6, true) => {
            push(
                KeyAttr::Icmpv6(k.tp_src as u8, k.tp_dst as u8),
                KeyAttr::Icmpv6(m.tp_src as u8, m.tp_dst as u8),
            );
            // Neighbour solicitation / advertisement carry the ND attribute.
            if (k.tp_src == 135 || k.tp_src == 136) && k.tp_dst == 0 {
                let nd = |x: &FlowKey| KeyNd {
                    target: x.nd_target,
                    sll: x.arp_sha,
                    tll: x.arp_tha,
                };
                ka.push(KeyAttr::Nd(nd(k)));
                if mask_ok && m.tp_src & 0xff == 0xff {
                    ma.push(KeyAttr::Nd(nd(m)));
                }
            }
        }
        _ => {}
    }
}

/// Tunnel attributes of a key (`shape` = the key itself) or of a mask (`shape` = the key it
/// masks): flag bits become flag attributes; the address family and whether Geneve options
/// are present follow `shape`, because the kernel refuses mixed families and an options
/// mask whose length differs from the key's.
pub fn tunnel_attrs(k: &FlowKey, shape: &FlowKey) -> Vec<TunnelAttr> {
    let v6 = if shape.tun_ipv4_dst != 0 || shape.tun_ipv6_dst != [0; 16] {
        shape.tun_ipv6_dst != [0; 16]
    } else {
        // a mask with no tunnel key: IPv4 unless it only has IPv6 bits
        k.tun_ipv4_src == 0
            && k.tun_ipv4_dst == 0
            && (k.tun_ipv6_src != [0; 16] || k.tun_ipv6_dst != [0; 16])
    };
    let mut v = Vec::new();
    let key_flag = k.tun_flags & tun_flag::KEY != 0;
    if key_flag || k.tun_id != 0 {
        v.push(TunnelAttr::Id(k.tun_id));
    }
    if v6 {
        v.push(TunnelAttr::Ipv6Src(k.tun_ipv6_src));
        v.push(TunnelAttr::Ipv6Dst(k.tun_ipv6_dst));
    } else {
        v.push(TunnelAttr::Ipv4Src(k.tun_ipv4_src));
        v.push(TunnelAttr::Ipv4Dst(k.tun_ipv4_dst));
    }
    v.push(TunnelAttr::Tos(k.tun_tos));
    v.push(TunnelAttr::Ttl(k.tun_ttl));
    if k.tun_flags & tun_flag::DONT_FRAGMENT != 0 {
        v.push(TunnelAttr::DontFragment);
    }
    if k.tun_flags & tun_flag::CSUM != 0 {
        v.push(TunnelAttr::Csum);
    }
    if k.tun_flags & tun_flag::OAM != 0 {
        v.push(TunnelAttr::Oam);
    }
    v.push(TunnelAttr::TpSrc(k.tun_tp_src));
    v.push(TunnelAttr::TpDst(k.tun_tp_dst));
    if shape.tun_gnv_opt_hdr != 0 {
        let mut o = k.tun_gnv_opt_hdr.to_be_bytes().to_vec();
        o.extend_from_slice(&k.tun_gnv_opt_data.to_be_bytes());
        v.push(TunnelAttr::GeneveOpts(o));
    }
    v
}

fn frag_to_ovs(f: u8) -> u8 {
    if f & frag::LATER != 0 {
        FRAG_LATER
    } else if f & frag::ANY != 0 {
        FRAG_FIRST
    } else {
        0
    }
}
fn frag_from_ovs(f: u8) -> u8 {
    match f {
        FRAG_FIRST => frag::ANY,
        FRAG_LATER => frag::ANY | frag::LATER,
        _ => 0,
    }
}
fn frag_mask_to_ovs(m: u8) -> u8 {
    if m != 0 {
        0xff
    } else {
        0
    }
}

/// Decodes a key (`is_mask == false`) or a mask (`true`) from the kernel into our layout.
/// Attributes this switch does not model (ct_*, dp_hash, skb_mark...) are ignored.
pub fn decode_attrs(attrs: &[KeyAttr], is_mask: bool) -> Result<FlowKey, KeyDecodeError> {
    let mut k = FlowKey::default();
    let mut saw_ethertype = false;
    let mut saw_ethernet = false;
    decode_level(
        attrs,
        is_mask,
        0,
        &mut k,
        &mut saw_ethertype,
        &mut saw_ethernet,
    )?;
    if !is_mask && saw_ethernet && !saw_ethertype {
        k.dl_type = ethertype::NONE;
    }
    if is_mask {
        // The kernel has no parse flags: every packet it parses is well-formed or
        // truncated to zero fields, and the keys it sends up carry parse_flags 0. Reporting
        // them as matched keeps a kernel mask a superset of the translator's (which always
        // sets them), so revalidation does not delete every kernel flow.
        k.parse_flags = u8::MAX;
        // The kernel always matches both TCIs exactly unless a VLAN mask says otherwise.
        for t in k.vlans.iter_mut() {
            if t.tpid == 0 {
                *t = VlanTag {
                    tpid: 0xffff,
                    tci: 0xffff,
                };
            }
        }
    }
    Ok(k)
}

fn decode_level(
    attrs: &[KeyAttr],
    is_mask: bool,
    depth: usize,
    k: &mut FlowKey,
    saw_et: &mut bool,
    saw_eth: &mut bool,
) -> Result<(), KeyDecodeError> {
    let vlan = attrs.iter().find_map(|a| match a {
        KeyAttr::Vlan(t) => Some(*t),
        _ => None,
    });
    for a in attrs {
        match a {
            KeyAttr::RecircId(v) => k.recirc_id = *v,
            KeyAttr::InPort(v) => k.in_port = *v,
            KeyAttr::Ethernet { src, dst } => {
                k.dl_src = *src;
                k.dl_dst = *dst;
                *saw_eth = true;
            }
            KeyAttr::Ethertype(t) => {
                if vlan.is_some() {
                    // the tag's TPID; the inner ethertype comes from ENCAP
                    if depth >= 2 {
                        return Err(KeyDecodeError::TooManyVlans);
                    }
                    k.vlans[depth].tpid = *t;
                } else {
                    k.dl_type = *t;
                    *saw_et = true;
                }
            }
            KeyAttr::Vlan(tci) => {
                if depth >= 2 {
                    return Err(KeyDecodeError::TooManyVlans);
                }
                if is_mask {
                    k.vlans[depth] = VlanTag {
                        tpid: 0xffff,
                        tci: *tci,
                    };
                } else {
                    k.vlans[depth].tci = tci & !VLAN_CFI;
                }
            }
            KeyAttr::Encap(inner) => decode_level(inner, is_mask, depth + 1, k, saw_et, saw_eth)?,
            KeyAttr::Ipv4(v) => {
                k.nw_src = v.src;
                k.nw_dst = v.dst;
                k.nw_proto = v.proto;
                k.nw_tos = v.tos;
                k.nw_ttl = v.ttl;
                k.nw_frag = frag_decode(v.frag, is_mask);
            }
            KeyAttr::Ipv6(v) => {
                k.ipv6_src = v.src;
                k.ipv6_dst = v.dst;
                k.ipv6_label = v.label;
                k.nw_proto = v.proto;
                k.nw_tos = v.tclass;
                k.nw_ttl = v.hlimit;
                k.nw_frag = frag_decode(v.frag, is_mask);
            }
            KeyAttr::Tcp(s, d) | KeyAttr::Udp(s, d) | KeyAttr::Sctp(s, d) => {
                k.tp_src = *s;
                k.tp_dst = *d;
            }
            KeyAttr::Icmp(t, c) | KeyAttr::Icmpv6(t, c) => {
                k.tp_src = *t as u16;
                k.tp_dst = *c as u16;
                if is_mask {
                    // our type/code fields are u16; the kernel's are u8
                    k.tp_src |= if *t == 0xff { 0xff00 } else { 0 };
                    k.tp_dst |= if *c == 0xff { 0xff00 } else { 0 };
                }
            }
            KeyAttr::TcpFlags(f) => k.tcp_flags = *f,
            KeyAttr::Arp(v) => {
                k.nw_src = v.sip;
                k.nw_dst = v.tip;
                k.nw_proto = if is_mask {
                    (v.op != 0) as u8 * 0xff
                } else {
                    v.op as u8
                };
                k.arp_sha = v.sha;
                k.arp_tha = v.tha;
            }
            KeyAttr::Nd(v) => {
                k.nd_target = v.target;
                k.arp_sha = v.sll;
                k.arp_tha = v.tll;
            }
            KeyAttr::Tunnel(t) => {
                decode_tunnel(t, k);
                if is_mask {
                    complete_tunnel_mask(t, k);
                }
            }
            _ => {}
        }
    }
    if !is_mask && depth < 2 {
        if let Some(t) = vlan {
            if t & VLAN_CFI == 0 {
                // a VLAN attribute without CFI means "no tag" (truncated tag header)
                k.vlans[depth] = VlanTag::default();
            }
        }
    }
    Ok(())
}

/// What the kernel matches but does not report in a tunnel mask. It always matches the
/// tunnel's address family, so the other family's addresses (zero in every matching
/// packet) are exact, and an untunnelled flow (a tunnel mask without addresses) matches
/// only packets with all-zero addresses. Options it does not report are taken as exact:
/// a flow installed without options is only ever re-checked against keys without them.
/// Flag bits with no meaning are zero in every key, so they are exact too. This keeps a
/// translator's tunnel mask a subset of the dumped one.
fn complete_tunnel_mask(t: &[TunnelAttr], k: &mut FlowKey) {
    // flag bits without a meaning are zero in every key: matching them is vacuous
    k.tun_flags |= !(tun_flag::KEY | tun_flag::DONT_FRAGMENT | tun_flag::CSUM | tun_flag::OAM);
    let v4 = t
        .iter()
        .any(|a| matches!(a, TunnelAttr::Ipv4Src(_) | TunnelAttr::Ipv4Dst(_)));
    let v6 = t
        .iter()
        .any(|a| matches!(a, TunnelAttr::Ipv6Src(_) | TunnelAttr::Ipv6Dst(_)));
    if !v6 {
        k.tun_ipv6_src = [0xff; 16];
        k.tun_ipv6_dst = [0xff; 16];
    }
    if !v4 {
        k.tun_ipv4_src = u32::MAX;
        k.tun_ipv4_dst = u32::MAX;
    }
    if !t.iter().any(|a| matches!(a, TunnelAttr::GeneveOpts(_))) {
        k.tun_gnv_opt_hdr = u32::MAX;
        k.tun_gnv_opt_data = u32::MAX;
    }
}

fn frag_decode(f: u8, is_mask: bool) -> u8 {
    if is_mask {
        if f != 0 {
            frag::ANY | frag::LATER
        } else {
            0
        }
    } else {
        frag_from_ovs(f)
    }
}

fn decode_tunnel(attrs: &[TunnelAttr], k: &mut FlowKey) {
    for a in attrs {
        match a {
            TunnelAttr::Id(v) => {
                k.tun_id = *v;
                k.tun_flags |= tun_flag::KEY;
            }
            TunnelAttr::Ipv4Src(v) => k.tun_ipv4_src = *v,
            TunnelAttr::Ipv4Dst(v) => k.tun_ipv4_dst = *v,
            TunnelAttr::Ipv6Src(v) => k.tun_ipv6_src = *v,
            TunnelAttr::Ipv6Dst(v) => k.tun_ipv6_dst = *v,
            TunnelAttr::Tos(v) => k.tun_tos = *v,
            TunnelAttr::Ttl(v) => k.tun_ttl = *v,
            TunnelAttr::DontFragment => k.tun_flags |= tun_flag::DONT_FRAGMENT,
            TunnelAttr::Csum => k.tun_flags |= tun_flag::CSUM,
            TunnelAttr::Oam => k.tun_flags |= tun_flag::OAM,
            TunnelAttr::TpSrc(v) => k.tun_tp_src = *v,
            TunnelAttr::TpDst(v) => k.tun_tp_dst = *v,
            TunnelAttr::GeneveOpts(o) if o.len() >= 8 => {
                k.tun_gnv_opt_hdr = u32::from_be_bytes([o[0], o[1], o[2], o[3]]);
                k.tun_gnv_opt_data = u32::from_be_bytes([o[4], o[5], o[6], o[7]]);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "key_codec_tests.rs"]
mod tests;
