//! Printing a match back as flow text: shorthand first (`tcp`, `arp`, ...), then fields in
//! a fixed order, values in the notation `match_syntax` parses (prefixes for CIDR masks,
//! `dl_vlan`/`dl_vlan_pcp` when the VLAN match is one of those).

use super::flow_syntax::{fmt_ipv4, fmt_ipv6, fmt_mac};
use super::match_syntax::{
    exact_dl_type, exact_proto, is_arp, OVS_CFI, TCI_MATCHABLE, TPID_PRESENT,
};
use super::rule::Match;
use crate::packet::flow_key::frag;
use crate::packet::{ethertype, ipproto, FlowKey, FlowMask};

fn fmt_uint_masked(v: u64, m: u64, full: u64, hex: bool) -> String {
    if m == full {
        if hex {
            format!("{v:#x}")
        } else {
            v.to_string()
        }
    } else {
        format!("{v:#x}/{m:#x}")
    }
}

fn fmt_ipv4_masked(v: u32, m: u32) -> String {
    if m == u32::MAX {
        fmt_ipv4(v)
    } else if m.leading_ones() + m.trailing_zeros() == 32 {
        format!("{}/{}", fmt_ipv4(v), m.leading_ones())
    } else {
        format!("{}/{}", fmt_ipv4(v), fmt_ipv4(m))
    }
}

fn fmt_ipv6_masked(v: &[u8; 16], m: &[u8; 16]) -> String {
    let bits = u128::from_be_bytes(*m);
    if bits == u128::MAX {
        fmt_ipv6(v)
    } else if bits.leading_ones() + bits.trailing_zeros() == 128 {
        format!("{}/{}", fmt_ipv6(v), bits.leading_ones())
    } else {
        format!("{}/{}", fmt_ipv6(v), fmt_ipv6(m))
    }
}

fn fmt_mac_masked(v: &[u8; 6], m: &[u8; 6]) -> String {
    if *m == [0xff; 6] {
        fmt_mac(v)
    } else {
        format!("{}/{}", fmt_mac(v), fmt_mac(m))
    }
}

fn fmt_vlan(k: &FlowKey, m: &FlowMask, out: &mut Vec<String>) {
    let (tpid_m, tci_m) = (m.0.vlans[0].tpid, m.0.vlans[0].tci);
    if tpid_m == 0 && tci_m == 0 {
        return;
    }
    let present = k.vlans[0].tpid & TPID_PRESENT != 0;
    let pres_m = tpid_m & TPID_PRESENT != 0;
    let ovs_v = (k.vlans[0].tci & TCI_MATCHABLE) | if present { OVS_CFI } else { 0 };
    let ovs_m = (tci_m & TCI_MATCHABLE) | if pres_m { OVS_CFI } else { 0 };
    let vid_m = tci_m & 0x0fff;
    let pcp_m = tci_m & 0xe000;
    if present
        && pres_m
        && (vid_m == 0 || vid_m == 0x0fff)
        && (pcp_m == 0 || pcp_m == 0xe000)
        && tci_m & !0xefff == 0
    {
        if vid_m != 0 {
            out.push(format!("dl_vlan={}", k.vlans[0].vid()));
        }
        if pcp_m != 0 {
            out.push(format!("dl_vlan_pcp={}", k.vlans[0].pcp()));
        }
        if vid_m == 0 && pcp_m == 0 {
            out.push(format!("vlan_tci={:#06x}/{:#06x}", ovs_v, ovs_m));
        }
    } else if ovs_m == 0xffff {
        out.push(format!("vlan_tci={:#06x}", ovs_v));
    } else {
        out.push(format!("vlan_tci={:#06x}/{:#06x}", ovs_v, ovs_m));
    }
}

/// Formats a match: shorthand first (`tcp`, `arp`, ...), then fields in a fixed order.
/// Fields without flow syntax (used only when printing megaflow masks) appear as
/// `name=value/mask` with their `FlowKey` names.
pub(crate) fn format_match(mt: &Match) -> String {
    let (k, m) = (&mt.key, &mt.mask);
    let mut out: Vec<String> = Vec::new();
    let t = exact_dl_type(k, m);
    let proto = exact_proto(k, m);
    let mut dl_type_done = false;
    let mut proto_done = false;
    let sh = match (t, proto) {
        (Some(ethertype::IPV4), Some(ipproto::ICMP)) => Some(("icmp", true)),
        (Some(ethertype::IPV4), Some(ipproto::TCP)) => Some(("tcp", true)),
        (Some(ethertype::IPV4), Some(ipproto::UDP)) => Some(("udp", true)),
        (Some(ethertype::IPV4), Some(ipproto::SCTP)) => Some(("sctp", true)),
        (Some(ethertype::IPV6), Some(ipproto::ICMPV6)) => Some(("icmp6", true)),
        (Some(ethertype::IPV6), Some(ipproto::TCP)) => Some(("tcp6", true)),
        (Some(ethertype::IPV6), Some(ipproto::UDP)) => Some(("udp6", true)),
        (Some(ethertype::IPV6), Some(ipproto::SCTP)) => Some(("sctp6", true)),
        (Some(ethertype::IPV4), _) => Some(("ip", false)),
        (Some(ethertype::IPV6), _) => Some(("ipv6", false)),
        (Some(ethertype::ARP), _) => Some(("arp", false)),
        (Some(ethertype::RARP), _) => Some(("rarp", false)),
        _ => None,
    };
    if let Some((name, with_proto)) = sh {
        out.push(name.to_string());
        dl_type_done = true;
        proto_done = with_proto;
    }
    if m.0.recirc_id != 0 {
        out.push(format!(
            "recirc_id={}",
            fmt_uint_masked(
                k.recirc_id as u64,
                m.0.recirc_id as u64,
                u32::MAX as u64,
                false
            )
        ));
    }
    if m.0.tun_id != 0 {
        out.push(format!(
            "tun_id={}",
            fmt_uint_masked(k.tun_id, m.0.tun_id, u64::MAX, true)
        ));
    }
    if m.0.tun_ipv4_src != 0 {
        out.push(format!(
            "tun_src={}",
            fmt_ipv4_masked(k.tun_ipv4_src, m.0.tun_ipv4_src)
        ));
    }
    if m.0.tun_ipv4_dst != 0 {
        out.push(format!(
            "tun_dst={}",
            fmt_ipv4_masked(k.tun_ipv4_dst, m.0.tun_ipv4_dst)
        ));
    }
    for (name, kv, mv) in [
        ("tun_gnv_opt_hdr", k.tun_gnv_opt_hdr, m.0.tun_gnv_opt_hdr),
        ("tun_gnv_opt_data", k.tun_gnv_opt_data, m.0.tun_gnv_opt_data),
    ] {
        if mv != 0 {
            out.push(format!(
                "{name}={}",
                fmt_uint_masked(kv as u64, mv as u64, u32::MAX as u64, true)
            ));
        }
    }
    if m.0.in_port != 0 {
        if m.0.in_port == u32::MAX && k.in_port <= 0xffff {
            out.push(format!(
                "in_port={}",
                super::flow_syntax::fmt_ofport(k.in_port as u16)
            ));
        } else {
            out.push(format!("in_port={:#x}/{:#x}", k.in_port, m.0.in_port));
        }
    }
    fmt_vlan(k, m, &mut out);
    if m.0.dl_src != [0; 6] {
        out.push(format!("dl_src={}", fmt_mac_masked(&k.dl_src, &m.0.dl_src)));
    }
    if m.0.dl_dst != [0; 6] {
        out.push(format!("dl_dst={}", fmt_mac_masked(&k.dl_dst, &m.0.dl_dst)));
    }
    if m.0.dl_type != 0 && !dl_type_done {
        out.push(format!(
            "dl_type={}",
            fmt_uint_masked(k.dl_type as u64, m.0.dl_type as u64, 0xffff, true)
        ));
    }
    let arp = is_arp(t);
    if m.0.nw_src != 0 {
        let n = if arp { "arp_spa" } else { "nw_src" };
        out.push(format!("{n}={}", fmt_ipv4_masked(k.nw_src, m.0.nw_src)));
    }
    if m.0.nw_dst != 0 {
        let n = if arp { "arp_tpa" } else { "nw_dst" };
        out.push(format!("{n}={}", fmt_ipv4_masked(k.nw_dst, m.0.nw_dst)));
    }
    if m.0.ipv6_src != [0; 16] {
        out.push(format!(
            "ipv6_src={}",
            fmt_ipv6_masked(&k.ipv6_src, &m.0.ipv6_src)
        ));
    }
    if m.0.ipv6_dst != [0; 16] {
        out.push(format!(
            "ipv6_dst={}",
            fmt_ipv6_masked(&k.ipv6_dst, &m.0.ipv6_dst)
        ));
    }
    if m.0.ipv6_label != 0 {
        out.push(format!(
            "ipv6_label={}",
            fmt_uint_masked(k.ipv6_label as u64, m.0.ipv6_label as u64, 0xfffff, true)
        ));
    }
    if m.0.nw_proto != 0 && !proto_done {
        let n = if arp { "arp_op" } else { "nw_proto" };
        out.push(format!(
            "{n}={}",
            fmt_uint_masked(k.nw_proto as u64, m.0.nw_proto as u64, 0xff, false)
        ));
    }
    if m.0.nw_tos != 0 {
        if m.0.nw_tos == 0xfc {
            out.push(format!("nw_tos={}", k.nw_tos));
        } else {
            out.push(format!("nw_tos_raw={:#x}/{:#x}", k.nw_tos, m.0.nw_tos));
        }
    }
    if m.0.nw_ttl != 0 {
        out.push(format!(
            "nw_ttl={}",
            fmt_uint_masked(k.nw_ttl as u64, m.0.nw_ttl as u64, 0xff, false)
        ));
    }
    if m.0.nw_frag != 0 {
        let f = match (k.nw_frag, m.0.nw_frag) {
            (0, frag::ANY) => "no".to_string(),
            (frag::ANY, frag::ANY) => "yes".to_string(),
            (frag::ANY, 3) => "first".to_string(),
            (3, 3) => "later".to_string(),
            (0, frag::LATER) => "not_later".to_string(),
            (v, mm) => format!("{v:#x}/{mm:#x}"),
        };
        out.push(format!("ip_frag={f}"));
    }
    let icmp = matches!(
        (t, proto),
        (Some(ethertype::IPV4), Some(ipproto::ICMP))
            | (Some(ethertype::IPV6), Some(ipproto::ICMPV6))
    );
    // ICMP keeps type and code in the port fields; exact matches print under their names.
    for (name, icmp_name, v, mm) in [
        ("tp_src", "icmp_type", k.tp_src, m.0.tp_src),
        ("tp_dst", "icmp_code", k.tp_dst, m.0.tp_dst),
    ] {
        if mm == 0 {
            continue;
        }
        if icmp && mm == 0xffff {
            out.push(format!("{icmp_name}={v}"));
        } else {
            out.push(format!(
                "{name}={}",
                fmt_uint_masked(v as u64, mm as u64, 0xffff, false)
            ));
        }
    }
    if m.0.tcp_flags != 0 {
        out.push(format!(
            "tcp_flags={}",
            fmt_uint_masked(k.tcp_flags as u64, m.0.tcp_flags as u64, 0xfff, true)
        ));
    }
    for (name, v, mm) in [
        ("arp_sha", &k.arp_sha, &m.0.arp_sha),
        ("arp_tha", &k.arp_tha, &m.0.arp_tha),
    ] {
        if *mm != [0; 6] {
            out.push(format!("{name}={}", fmt_mac_masked(v, mm)));
        }
    }
    if m.0.nd_target != [0; 16] {
        out.push(format!(
            "nd_target={}",
            fmt_ipv6_masked(&k.nd_target, &m.0.nd_target)
        ));
    }
    // Fields without flow syntax: only ever set in megaflow masks.
    let raw: [(&str, u64, u64); 6] = [
        ("igmp_group", k.igmp_group as u64, m.0.igmp_group as u64),
        ("parse_flags", k.parse_flags as u64, m.0.parse_flags as u64),
        ("tun_flags", k.tun_flags as u64, m.0.tun_flags as u64),
        (
            "vlan1_tpid",
            k.vlans[1].tpid as u64,
            m.0.vlans[1].tpid as u64,
        ),
        ("vlan1_tci", k.vlans[1].tci as u64, m.0.vlans[1].tci as u64),
        (
            "vlan0_tpid_raw",
            k.vlans[0].tpid as u64,
            (m.0.vlans[0].tpid & !TPID_PRESENT) as u64,
        ),
    ];
    for (n, v, mm) in raw {
        if mm != 0 {
            out.push(format!("{n}={v:#x}/{mm:#x}"));
        }
    }
    out.join(",")
}
