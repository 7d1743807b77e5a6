//! The fast-path parser: one pass over a frame fills a `FlowKey` and records header
//! offsets in `PacketMeta` for later rewrites.
//!
//! It reads bytes at the offsets named in the `wire` modules' `field` submodules rather
//! than building views: per packet it allocates nothing, and every read is bounds-checked
//! against what the frame holds, so no input can make it panic. A frame that ends early
//! parses as far as it is whole and gets `parse_flag::TRUNCATED`; a header with an
//! impossible value stops the parse with `parse_flag::MALFORMED`. Both flags are part of
//! the key, so such frames never share a megaflow with well-formed ones.

use super::buffer::PacketBuf;
use super::flow_key::{frag, parse_flag, FlowKey, VlanTag};
use super::meta::{PacketMeta, OFS_NONE};
use super::wire::ethernet::{self, is_vlan_tpid};
use super::wire::{arp, icmpv6, igmp, ipv4, ipv6, rd16, rd32, rd_arr, tcp};
use super::{ethertype, ipproto};

/// Header offsets found by one parse.
#[derive(Clone, Copy)]
struct Offsets {
    l3: u16,
    l4: u16,
    l4_proto: u8,
}

/// Parses `pkt` into `key` (overwriting all of it) and records the L3/L4 offsets and L4
/// protocol in `pkt.meta`. Metadata fields of the key (in_port, recirc_id, tunnel) come
/// from `pkt.meta`.
#[inline]
pub fn flow_extract(pkt: &mut PacketBuf, key: &mut FlowKey) {
    let o = extract(pkt.data(), &pkt.meta, key);
    pkt.meta.l3_ofs = o.l3;
    pkt.meta.l4_ofs = o.l4;
    pkt.meta.l4_proto = o.l4_proto;
}

/// Parses a frame held outside a `PacketBuf` (slow paths, tests, the translator's trace).
pub fn parse_frame(frame: &[u8], meta: &PacketMeta) -> FlowKey {
    let mut key = FlowKey::default();
    extract(frame, meta, &mut key);
    key
}

#[inline(always)]
fn extract(d: &[u8], meta: &PacketMeta, k: &mut FlowKey) -> Offsets {
    *k = FlowKey::default();
    k.in_port = meta.in_port;
    k.recirc_id = meta.recirc_id;
    // A packet that met no tunnel keeps the default key's zeros without reading the
    // metadata's second line.
    if meta.is_tunneled() {
        k.set_tunnel(meta.tunnel());
    }
    let mut o = Offsets {
        l3: OFS_NONE,
        l4: OFS_NONE,
        l4_proto: 0,
    };
    if d.len() < ethernet::field::HEADER_LEN {
        k.parse_flags |= parse_flag::TRUNCATED;
        return o;
    }
    k.dl_dst = rd_arr(d, ethernet::field::DST.start);
    k.dl_src = rd_arr(d, ethernet::field::SRC.start);
    let mut off = ethernet::field::ETHERTYPE;
    let mut et = rd16(d, off);
    for slot in 0..2 {
        if !is_vlan_tpid(et) {
            break;
        }
        if d.len() < off + ethernet::field::VLAN_TAG_LEN + 2 {
            k.parse_flags |= parse_flag::TRUNCATED;
            return o;
        }
        k.vlans[slot] = VlanTag {
            tpid: et,
            tci: rd16(d, off + 2),
        };
        off += ethernet::field::VLAN_TAG_LEN;
        et = rd16(d, off);
    }
    off += 2;
    if et < 0x0600 {
        // 802.3 length field: only LLC/SNAP with a zero OUI carries an ethertype.
        let snap = d.len() >= off + ethernet::field::LLC_SNAP_LEN
            && d[off] == 0xaa
            && d[off + 1] == 0xaa
            && d[off + 2] == 0x03
            && d[off + 3..off + 6] == [0, 0, 0];
        if snap {
            et = rd16(d, off + 6);
            off += ethernet::field::LLC_SNAP_LEN;
        }
        if !snap || et < 0x0600 {
            k.dl_type = ethertype::NONE;
            return o;
        }
    }
    k.dl_type = et;
    match et {
        ethertype::IPV4 => parse_ipv4(d, off, k, &mut o),
        ethertype::IPV6 => parse_ipv6(d, off, k, &mut o),
        ethertype::ARP | ethertype::RARP => parse_arp(d, off, k, &mut o),
        _ => {}
    }
    o
}

#[inline(always)]
fn parse_ipv4(d: &[u8], l3: usize, k: &mut FlowKey, o: &mut Offsets) {
    use ipv4::field as f;
    let h = &d[l3..];
    if h.len() < f::HEADER_LEN {
        k.parse_flags |= parse_flag::TRUNCATED;
        return;
    }
    let vihl = h[f::VER_IHL];
    let hl = ((vihl & 0x0f) as usize) * 4;
    if vihl >> 4 != 4 || hl < f::HEADER_LEN {
        k.parse_flags |= parse_flag::MALFORMED;
        return;
    }
    if h.len() < hl {
        k.parse_flags |= parse_flag::TRUNCATED;
        return;
    }
    let tot = rd16(h, f::LENGTH) as usize;
    if tot < hl {
        k.parse_flags |= parse_flag::MALFORMED;
        return;
    }
    let end = if tot > h.len() {
        k.parse_flags |= parse_flag::TRUNCATED;
        h.len()
    } else {
        tot
    };
    k.nw_src = rd32(h, f::SRC_ADDR);
    k.nw_dst = rd32(h, f::DST_ADDR);
    let proto = h[f::PROTOCOL];
    k.nw_proto = proto;
    k.nw_tos = h[f::TOS];
    k.nw_ttl = h[f::TTL];
    o.l3 = l3 as u16;
    let fo = rd16(h, f::FLG_OFF);
    if fo & (f::MF | f::OFFSET_MASK) != 0 {
        k.nw_frag = frag::ANY;
        if fo & f::OFFSET_MASK != 0 {
            k.nw_frag |= frag::LATER;
            return;
        }
    }
    if parse_l4(&h[hl..end], proto, k) {
        o.l4 = (l3 + hl) as u16;
        o.l4_proto = proto;
    }
}

#[inline(always)]
fn parse_ipv6(d: &[u8], l3: usize, k: &mut FlowKey, o: &mut Offsets) {
    use ipv6::field as f;
    let h = &d[l3..];
    if h.len() < f::HEADER_LEN {
        k.parse_flags |= parse_flag::TRUNCATED;
        return;
    }
    let w0 = rd32(h, f::VER_TC_FL);
    if w0 >> 28 != 6 {
        k.parse_flags |= parse_flag::MALFORMED;
        return;
    }
    k.nw_tos = (w0 >> 20) as u8;
    k.ipv6_label = w0 & 0x000f_ffff;
    k.nw_ttl = h[f::HOP_LIMIT];
    k.ipv6_src = rd_arr(h, f::SRC_ADDR);
    k.ipv6_dst = rd_arr(h, f::DST_ADDR);
    o.l3 = l3 as u16;
    let end = f::HEADER_LEN + rd16(h, f::PAYLOAD_LEN) as usize;
    let end = if end > h.len() {
        k.parse_flags |= parse_flag::TRUNCATED;
        h.len()
    } else {
        end
    };
    let payload = &h[f::HEADER_LEN..end];
    let next = h[f::NEXT_HEADER];
    let (proto, l4) = if is_ipv6_ext(next) {
        match ipv6::walk_ext_headers(next, payload) {
            Ok(c) => {
                if c.fragment {
                    k.nw_frag = frag::ANY;
                    if c.later_fragment {
                        k.nw_frag |= frag::LATER;
                        k.nw_proto = c.protocol;
                        return;
                    }
                }
                (c.protocol, c.l4_offset)
            }
            Err(_) => {
                k.parse_flags |= parse_flag::TRUNCATED;
                return;
            }
        }
    } else {
        (next, 0)
    };
    k.nw_proto = proto;
    if parse_l4(&payload[l4..], proto, k) {
        o.l4 = (l3 + f::HEADER_LEN + l4) as u16;
        o.l4_proto = proto;
    }
}

#[inline(always)]
fn is_ipv6_ext(p: u8) -> bool {
    use ipv6::ext;
    matches!(
        p,
        ext::HOP_BY_HOP | ext::ROUTING | ext::FRAGMENT | ext::DEST_OPTS | ext::AUTH
    )
}

#[inline(always)]
fn parse_arp(d: &[u8], l3: usize, k: &mut FlowKey, o: &mut Offsets) {
    use arp::field as f;
    let h = &d[l3..];
    if h.len() < f::OPER + 2 {
        k.parse_flags |= parse_flag::TRUNCATED;
        return;
    }
    let eth_ipv4 =
        rd16(h, f::HTYPE) == 1 && rd16(h, f::PTYPE) == 0x0800 && h[f::HLEN] == 6 && h[f::PLEN] == 4;
    if !eth_ipv4 {
        // Other hardware/protocol pairs are legal ARP the switch does not look into.
        return;
    }
    if h.len() < f::LEN {
        k.parse_flags |= parse_flag::TRUNCATED;
        return;
    }
    let op = rd16(h, f::OPER);
    if op <= 0xff {
        k.nw_proto = op as u8;
    }
    k.arp_sha = rd_arr(h, f::SHA);
    k.nw_src = rd32(h, f::SPA);
    k.arp_tha = rd_arr(h, f::THA);
    k.nw_dst = rd32(h, f::TPA);
    o.l3 = l3 as u16;
}

/// Parses the L4 header in `h` (bounded by the IP payload length). Returns whether the
/// header is complete enough for rewrites to use its offset.
#[inline(always)]
fn parse_l4(h: &[u8], proto: u8, k: &mut FlowKey) -> bool {
    match proto {
        ipproto::TCP => {
            if h.len() < tcp::field::HEADER_LEN {
                k.parse_flags |= parse_flag::TRUNCATED;
                return false;
            }
            let hl = ((h[tcp::field::CTL] >> 4) as usize) * 4;
            if hl < tcp::field::HEADER_LEN {
                k.parse_flags |= parse_flag::MALFORMED;
                return false;
            }
            if h.len() < hl {
                k.parse_flags |= parse_flag::TRUNCATED;
            }
            k.tp_src = rd16(h, tcp::field::SRC_PORT);
            k.tp_dst = rd16(h, tcp::field::DST_PORT);
            k.tcp_flags = rd16(h, tcp::field::CTL) & 0x0fff;
            true
        }
        // UDP and SCTP both start with the two ports.
        ipproto::UDP | ipproto::SCTP => {
            let need = if proto == ipproto::UDP { 8 } else { 12 };
            if h.len() < need {
                k.parse_flags |= parse_flag::TRUNCATED;
                return false;
            }
            k.tp_src = rd16(h, 0);
            k.tp_dst = rd16(h, 2);
            true
        }
        ipproto::ICMP => {
            if h.len() < 8 {
                k.parse_flags |= parse_flag::TRUNCATED;
                return false;
            }
            k.tp_src = h[0] as u16;
            k.tp_dst = h[1] as u16;
            true
        }
        ipproto::IGMP => {
            if h.len() < igmp::field::HEADER_LEN {
                k.parse_flags |= parse_flag::TRUNCATED;
                return false;
            }
            k.tp_src = h[0] as u16;
            k.tp_dst = h[1] as u16;
            if h[0] != igmp::msg::V3_REPORT {
                k.igmp_group = rd32(h, igmp::field::GROUP);
            }
            true
        }
        ipproto::ICMPV6 => parse_icmpv6(h, k),
        _ => true,
    }
}

#[inline(always)]
fn parse_icmpv6(h: &[u8], k: &mut FlowKey) -> bool {
    use icmpv6::{field as f, msg};
    if h.len() < f::HEADER_LEN {
        k.parse_flags |= parse_flag::TRUNCATED;
        return false;
    }
    let (t, code) = (h[f::TYPE], h[f::CODE]);
    k.tp_src = t as u16;
    k.tp_dst = code as u16;
    match t {
        msg::NEIGHBOR_SOLICIT | msg::NEIGHBOR_ADVERT if code == 0 => {
            if h.len() < f::ND_OPTIONS {
                k.parse_flags |= parse_flag::TRUNCATED;
                return true;
            }
            k.nd_target = rd_arr(h, f::ND_TARGET);
            match icmpv6::parse_nd_options(&h[f::ND_OPTIONS..]) {
                Ok(ll) => {
                    k.arp_sha = ll.sll.unwrap_or_default();
                    k.arp_tha = ll.tll.unwrap_or_default();
                }
                Err(_) => {
                    // RFC 4861 §6.1: discard; keep no ND fields from a bad message.
                    k.nd_target = [0; 16];
                    k.parse_flags |= parse_flag::MALFORMED;
                }
            }
        }
        msg::MLD_QUERY | msg::MLD_REPORT | msg::MLD_DONE => {
            if h.len() < f::MLD_LEN {
                k.parse_flags |= parse_flag::TRUNCATED;
                return true;
            }
            k.nd_target = rd_arr(h, f::MLD_ADDR);
        }
        msg::MLD2_REPORT if h.len() < f::MLD2R_RECORDS => {
            k.parse_flags |= parse_flag::TRUNCATED;
        }
        _ => {}
    }
    true
}

/// Like [`parse_frame`], and also records the L3/L4 offsets and L4 protocol in `meta`
/// (for slow paths that need to read a header the key does not hold, such as the group
/// records of IGMPv3/MLDv2 reports).
pub fn parse_frame_meta(frame: &[u8], meta: &mut PacketMeta) -> FlowKey {
    let mut key = FlowKey::default();
    let o = extract(frame, meta, &mut key);
    meta.l3_ofs = o.l3;
    meta.l4_ofs = o.l4;
    meta.l4_proto = o.l4_proto;
    key
}
