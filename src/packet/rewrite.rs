//! Header rewrites the datapath executes: VLAN push/pop and masked `SetField` writes.
//!
//! Rewrites use the offsets `parse::flow_extract` recorded in `PacketMeta` instead of
//! parsing again, re-check every bound against the frame (so a stale or absent offset can
//! only make a rewrite refuse, never panic), and keep checksums valid incrementally
//! (RFC 1624): the IPv4 header checksum, and the TCP/UDP/ICMPv6 checksum over the
//! pseudo-header when an address changes, the TCP/UDP checksum when a port changes. A UDP
//! checksum of zero means "none" and stays zero. SCTP's CRC32c is not incremental: it is
//! recomputed, preserving any error the packet already had.

use super::buffer::PacketBuf;
use super::flow_key::VlanTag;
use super::meta::OFS_NONE;
use super::wire::checksum::{update128, update16, update32};
use super::wire::ethernet::{field as eth, is_vlan_tpid};
use super::wire::{icmpv6, ipv4, ipv6, rd16, rd32, rd_arr, sctp, tcp, udp, wr16, wr32};
use super::{ethertype, ipproto};
use crate::dpif::action::{Masked, SetField};

/// Inserts `tag` as the new outermost VLAN tag (a zero TPID means 802.1Q). Returns false,
/// changing nothing, when the frame is not a whole Ethernet header or headroom is gone.
#[inline]
pub fn push_vlan(pkt: &mut PacketBuf, tag: VlanTag) -> bool {
    if pkt.len() < eth::HEADER_LEN || !pkt.insert_gap(eth::ETHERTYPE, eth::VLAN_TAG_LEN) {
        return false;
    }
    let tpid = if tag.tpid == 0 {
        ethertype::VLAN
    } else {
        tag.tpid
    };
    let d = pkt.data_mut();
    wr16(d, eth::ETHERTYPE, tpid);
    wr16(d, eth::ETHERTYPE + 2, tag.tci);
    shift_offsets(pkt, eth::VLAN_TAG_LEN as i32);
    true
}

/// Removes the outermost VLAN tag. Returns false when the frame has none.
#[inline]
pub fn pop_vlan(pkt: &mut PacketBuf) -> bool {
    let d = pkt.data();
    if d.len() < eth::HEADER_LEN + eth::VLAN_TAG_LEN || !is_vlan_tpid(rd16(d, eth::ETHERTYPE)) {
        return false;
    }
    if !pkt.remove_gap(eth::ETHERTYPE, eth::VLAN_TAG_LEN) {
        return false;
    }
    shift_offsets(pkt, -(eth::VLAN_TAG_LEN as i32));
    true
}

fn shift_offsets(pkt: &mut PacketBuf, by: i32) {
    let meta = &mut pkt.meta;
    for o in [&mut meta.l3_ofs, &mut meta.l4_ofs] {
        if *o != OFS_NONE {
            let n = *o as i32 + by;
            *o = if (0..OFS_NONE as i32).contains(&n) {
                n as u16
            } else {
                OFS_NONE
            };
        }
    }
}

/// Applies one masked rewrite. Returns false (and leaves the frame alone) when the packet
/// lacks the header the rewrite is for. `SetField::Tunnel` sets `pkt.meta`'s tunnel metadata.
#[inline]
pub fn apply_set(pkt: &mut PacketBuf, set: &SetField) -> bool {
    match set {
        SetField::Eth { src, dst } => set_eth(pkt, src, dst),
        SetField::Ipv4 { src, dst, tos, ttl } => set_ipv4(pkt, src, dst, tos, ttl),
        SetField::Ipv6 {
            src,
            dst,
            tclass,
            hlimit,
            label,
        } => set_ipv6(pkt, src, dst, tclass, hlimit, label),
        SetField::Tcp { src, dst } => set_ports(pkt, ipproto::TCP, src, dst),
        SetField::Udp { src, dst } => set_ports(pkt, ipproto::UDP, src, dst),
        SetField::Sctp { src, dst } => set_ports(pkt, ipproto::SCTP, src, dst),
        SetField::Tunnel(t) => {
            pkt.meta.set_tunnel(*t);
            true
        }
    }
}

#[inline(always)]
fn m8(old: u8, m: &Masked<u8>) -> u8 {
    (old & !m.mask) | (m.value & m.mask)
}
#[inline(always)]
fn m16(old: u16, m: &Masked<u16>) -> u16 {
    (old & !m.mask) | (m.value & m.mask)
}
#[inline(always)]
fn m32(old: u32, m: &Masked<u32>) -> u32 {
    (old & !m.mask) | (m.value & m.mask)
}
#[inline(always)]
fn marr<const N: usize>(old: [u8; N], m: &Masked<[u8; N]>) -> [u8; N] {
    let mut o = old;
    for i in 0..N {
        o[i] = (old[i] & !m.mask[i]) | (m.value[i] & m.mask[i]);
    }
    o
}

fn set_eth(pkt: &mut PacketBuf, src: &Masked<[u8; 6]>, dst: &Masked<[u8; 6]>) -> bool {
    let d = pkt.data_mut();
    if d.len() < eth::HEADER_LEN {
        return false;
    }
    let s = marr(rd_arr(d, eth::SRC.start), src);
    let t = marr(rd_arr(d, eth::DST.start), dst);
    d[eth::SRC].copy_from_slice(&s);
    d[eth::DST].copy_from_slice(&t);
    true
}

/// The L3 offset if the frame's L3 header is of ethertype `et` and `len` bytes of it are
/// present.
#[inline(always)]
fn l3_of(pkt: &PacketBuf, et: u16, len: usize) -> Option<usize> {
    let l3 = pkt.meta.l3_ofs;
    if l3 == OFS_NONE || (l3 as usize) < 2 {
        return None;
    }
    let l3 = l3 as usize;
    let d = pkt.data();
    (d.len() >= l3 + len && rd16(d, l3 - 2) == et).then_some(l3)
}

/// Offset of the L4 checksum field if the packet's L4 header is TCP/UDP/ICMPv6 and the
/// field is within the frame. For UDP, `None` also when the checksum is zero ("none").
#[inline(always)]
fn l4_csum_ofs(pkt: &PacketBuf, with_icmpv6: bool) -> Option<usize> {
    let l4 = pkt.meta.l4_ofs;
    if l4 == OFS_NONE {
        return None;
    }
    let off = l4 as usize
        + match pkt.meta.l4_proto {
            ipproto::TCP => tcp::field::CHECKSUM,
            ipproto::UDP => udp::field::CHECKSUM,
            ipproto::ICMPV6 if with_icmpv6 => icmpv6::field::CHECKSUM,
            _ => return None,
        };
    let d = pkt.data();
    if d.len() < off + 2 {
        return None;
    }
    if pkt.meta.l4_proto == ipproto::UDP && rd16(d, off) == 0 {
        return None;
    }
    Some(off)
}

/// Writes an updated L4 checksum; UDP must not end up with 0 (it would mean "none").
#[inline(always)]
fn put_l4_csum(d: &mut [u8], off: usize, proto: u8, c: u16) {
    let c = if c == 0 && proto == ipproto::UDP {
        0xffff
    } else {
        c
    };
    wr16(d, off, c);
}

fn set_ipv4(
    pkt: &mut PacketBuf,
    src: &Masked<u32>,
    dst: &Masked<u32>,
    tos: &Masked<u8>,
    ttl: &Masked<u8>,
) -> bool {
    use ipv4::field as f;
    let Some(l3) = l3_of(pkt, ethertype::IPV4, f::HEADER_LEN) else {
        return false;
    };
    if pkt.data()[l3] >> 4 != 4 {
        return false;
    }
    let l4c = l4_csum_ofs(pkt, false);
    let proto = pkt.meta.l4_proto;
    let d = pkt.data_mut();
    let mut ipc = rd16(d, l3 + f::CHECKSUM);
    for (fo, m) in [(f::SRC_ADDR, src), (f::DST_ADDR, dst)] {
        if m.mask == 0 {
            continue;
        }
        let old = rd32(d, l3 + fo);
        let new = m32(old, m);
        if old != new {
            wr32(d, l3 + fo, new);
            ipc = update32(ipc, old, new);
            if let Some(c) = l4c {
                let v = update32(rd16(d, c), old, new);
                put_l4_csum(d, c, proto, v);
            }
        }
    }
    // TOS shares a 16-bit word with version/IHL, TTL with protocol.
    for (fo, m, low) in [(f::VER_IHL, tos, true), (f::TTL, ttl, false)] {
        if m.mask == 0 {
            continue;
        }
        let old = rd16(d, l3 + fo);
        let new = if low {
            (old & 0xff00) | m8(old as u8, m) as u16
        } else {
            (old & 0x00ff) | ((m8((old >> 8) as u8, m) as u16) << 8)
        };
        if old != new {
            wr16(d, l3 + fo, new);
            ipc = update16(ipc, old, new);
        }
    }
    wr16(d, l3 + f::CHECKSUM, ipc);
    true
}

fn set_ipv6(
    pkt: &mut PacketBuf,
    src: &Masked<[u8; 16]>,
    dst: &Masked<[u8; 16]>,
    tclass: &Masked<u8>,
    hlimit: &Masked<u8>,
    label: &Masked<u32>,
) -> bool {
    use ipv6::field as f;
    let Some(l3) = l3_of(pkt, ethertype::IPV6, f::HEADER_LEN) else {
        return false;
    };
    if pkt.data()[l3] >> 4 != 6 {
        return false;
    }
    let l4c = l4_csum_ofs(pkt, true);
    let proto = pkt.meta.l4_proto;
    // RFC 8200 §8.1: with segments left in a routing header, the pseudo-header holds the
    // final destination, not the address in the IPv6 header.
    let dst_in_pseudo = l4c.is_none() || !routing_pending(pkt.data(), l3, pkt.meta.l4_ofs as usize);
    let d = pkt.data_mut();
    for (fo, m) in [(f::SRC_ADDR, src), (f::DST_ADDR, dst)] {
        if m.mask == [0; 16] {
            continue;
        }
        let old: [u8; 16] = rd_arr(d, l3 + fo);
        let new = marr(old, m);
        if old != new {
            d[l3 + fo..l3 + fo + 16].copy_from_slice(&new);
            if fo == f::DST_ADDR && !dst_in_pseudo {
                continue;
            }
            if let Some(c) = l4c {
                let v = update128(rd16(d, c), &old, &new);
                put_l4_csum(d, c, proto, v);
            }
        }
    }
    let w = rd32(d, l3 + f::VER_TC_FL);
    let tc = m8((w >> 20) as u8, tclass) as u32;
    let fl = m32(w & 0x000f_ffff, label) & 0x000f_ffff;
    wr32(d, l3 + f::VER_TC_FL, (w & 0xf000_0000) | (tc << 20) | fl);
    d[l3 + f::HOP_LIMIT] = m8(d[l3 + f::HOP_LIMIT], hlimit);
    true
}

/// Whether a routing header with segments left sits between the IPv6 header at `l3` and
/// the L4 header at `l4`.
fn routing_pending(d: &[u8], l3: usize, l4: usize) -> bool {
    use ipv6::ext;
    let mut next = d[l3 + ipv6::field::NEXT_HEADER];
    let mut off = l3 + ipv6::field::HEADER_LEN;
    while off + 4 <= l4.min(d.len()) {
        let len = match next {
            ext::ROUTING if d[off + 3] != 0 => return true,
            ext::HOP_BY_HOP | ext::ROUTING | ext::DEST_OPTS => (d[off + 1] as usize + 1) * 8,
            ext::AUTH => (d[off + 1] as usize + 2) * 4,
            ext::FRAGMENT => ipv6::field::FRAG_LEN,
            _ => return false,
        };
        next = d[off];
        off += len;
    }
    false
}

/// End of the IP payload (excluding Ethernet padding), clamped to the frame.
fn ip_end(pkt: &PacketBuf) -> usize {
    let d = pkt.data();
    let l3 = pkt.meta.l3_ofs as usize;
    let end = if let Some(l3) = l3_of(pkt, ethertype::IPV4, ipv4::field::HEADER_LEN) {
        l3 + rd16(d, l3 + ipv4::field::LENGTH) as usize
    } else if l3_of(pkt, ethertype::IPV6, ipv6::field::HEADER_LEN).is_some() {
        l3 + ipv6::field::HEADER_LEN + rd16(d, l3 + ipv6::field::PAYLOAD_LEN) as usize
    } else {
        d.len()
    };
    end.min(d.len())
}

fn set_ports(pkt: &mut PacketBuf, proto: u8, src: &Masked<u16>, dst: &Masked<u16>) -> bool {
    let l4 = pkt.meta.l4_ofs;
    if l4 == OFS_NONE || pkt.meta.l4_proto != proto {
        return false;
    }
    let l4 = l4 as usize;
    let hdr = match proto {
        ipproto::TCP => tcp::field::HEADER_LEN,
        ipproto::UDP => udp::field::HEADER_LEN,
        _ => sctp::field::HEADER_LEN,
    };
    if pkt.len() < l4 + hdr {
        return false;
    }
    if proto == ipproto::SCTP {
        let end = ip_end(pkt).max(l4 + hdr);
        let seg = &mut pkt.data_mut()[l4..end];
        let stored = sctp::Packet::new_unchecked(&*seg).checksum();
        let before = sctp::packet_crc(seg);
        let s = m16(rd16(seg, 0), src);
        let t = m16(rd16(seg, 2), dst);
        wr16(seg, 0, s);
        wr16(seg, 2, t);
        let after = sctp::packet_crc(seg);
        // Keep a bad CRC bad: new = stored ^ (correct_before ^ correct_after).
        sctp::Packet::new_unchecked(seg).set_checksum(stored ^ before ^ after);
        return true;
    }
    let c_off = l4
        + if proto == ipproto::TCP {
            tcp::field::CHECKSUM
        } else {
            udp::field::CHECKSUM
        };
    let d = pkt.data_mut();
    let mut c = rd16(d, c_off);
    let csum_on = !(proto == ipproto::UDP && c == 0);
    for (fo, m) in [(0, src), (2, dst)] {
        let old = rd16(d, l4 + fo);
        let new = m16(old, m);
        if old != new {
            wr16(d, l4 + fo, new);
            c = update16(c, old, new);
        }
    }
    if csum_on {
        put_l4_csum(d, c_off, proto, c);
    }
    true
}
