//! Match fields of the flow syntax: parsing `name=value[/mask]` into a `Match`, checking
//! OpenFlow prerequisites (`tp_dst` needs `tcp`/`udp`/`sctp`, `nw_src` needs `ip` or `arp`)
//! at the end of the line. Printing lives in `match_format`.
//!
//! VLANs use OVS's `vlan_tci` convention: bit 0x1000 ("CFI") means "a tag is present".
//! In the `FlowKey` presence is bit 15 of the outer tag's TPID (set in both 0x8100 and
//! 0x88a8), so `vlan_tci` maps presence to that bit and the DEI bit is not matchable.

use super::flow_syntax::{
    bad, parse_ipv4_masked, parse_ipv6_masked, parse_mac_masked, parse_ofport, parse_uint,
    parse_uint_masked, FlowSyntaxError, SyntaxResult,
};
use super::rule::Match;
use crate::packet::flow_key::frag;
use crate::packet::{ethertype, ipproto, FlowKey, FlowMask};

/// TPID bit that is set whenever a tag is present.
pub(super) const TPID_PRESENT: u16 = 0x8000;
/// OVS's "tag present" bit in `vlan_tci`.
pub(super) const OVS_CFI: u16 = 0x1000;
/// TCI bits that `vlan_tci` can match (all but DEI, whose place OVS uses for presence).
pub(super) const TCI_MATCHABLE: u16 = 0xefff;

/// Accumulates a match while a line is parsed; prerequisites are checked at the end, so
/// field order does not matter.
#[derive(Default)]
pub(super) struct MatchBuilder {
    key: FlowKey,
    mask: FlowMask,
    prereqs: Vec<(String, Prereq)>,
}

#[derive(Clone, Copy)]
enum Prereq {
    IpOrArp,
    Ip6,
    AnyIp,
    Arp,
    IpOrArpProto,
    L4Ports,
    Tcp,
    Icmp,
    Icmp6,
}

impl Prereq {
    fn describe(self) -> &'static str {
        match self {
            Prereq::IpOrArp => "ip or arp (dl_type=0x0800 or 0x0806)",
            Prereq::Ip6 => "ipv6 (dl_type=0x86dd)",
            Prereq::AnyIp => "ip or ipv6",
            Prereq::Arp => "arp (dl_type=0x0806)",
            Prereq::IpOrArpProto => "ip, ipv6 or arp",
            Prereq::L4Ports => "tcp, udp or sctp (nw_proto=6, 17 or 132)",
            Prereq::Tcp => "tcp or tcp6",
            Prereq::Icmp => "icmp or icmp6",
            Prereq::Icmp6 => "icmp6",
        }
    }
}

pub(super) fn exact_dl_type(key: &FlowKey, mask: &FlowMask) -> Option<u16> {
    (mask.0.dl_type == 0xffff).then_some(key.dl_type)
}

pub(super) fn exact_proto(key: &FlowKey, mask: &FlowMask) -> Option<u8> {
    (mask.0.nw_proto == 0xff).then_some(key.nw_proto)
}

fn is_ip(t: Option<u16>) -> bool {
    matches!(t, Some(ethertype::IPV4) | Some(ethertype::IPV6))
}

pub(super) fn is_arp(t: Option<u16>) -> bool {
    matches!(t, Some(ethertype::ARP) | Some(ethertype::RARP))
}

fn prereq_met(p: Prereq, key: &FlowKey, mask: &FlowMask) -> bool {
    let t = exact_dl_type(key, mask);
    let proto = exact_proto(key, mask);
    match p {
        Prereq::IpOrArp => t == Some(ethertype::IPV4) || is_arp(t),
        Prereq::Ip6 => t == Some(ethertype::IPV6),
        Prereq::AnyIp => is_ip(t),
        Prereq::Arp => is_arp(t),
        Prereq::IpOrArpProto => is_ip(t) || is_arp(t),
        Prereq::L4Ports => {
            is_ip(t) && matches!(proto, Some(ipproto::TCP | ipproto::UDP | ipproto::SCTP))
        }
        Prereq::Tcp => is_ip(t) && proto == Some(ipproto::TCP),
        Prereq::Icmp => {
            (t == Some(ethertype::IPV4) && proto == Some(ipproto::ICMP))
                || (t == Some(ethertype::IPV6) && proto == Some(ipproto::ICMPV6))
        }
        Prereq::Icmp6 => t == Some(ethertype::IPV6) && proto == Some(ipproto::ICMPV6),
    }
}

impl MatchBuilder {
    fn need(&mut self, field: &str, p: Prereq) {
        self.prereqs.push((field.to_string(), p));
    }

    fn set_dl_type(&mut self, t: u16) {
        self.key.dl_type = t;
        self.mask.0.dl_type = 0xffff;
    }

    fn set_proto(&mut self, p: u8) {
        self.key.nw_proto = p;
        self.mask.0.nw_proto = 0xff;
    }

    fn set_vlan_bits(&mut self, present: bool, tci: u16, tci_mask: u16) {
        self.key.vlans[0].tpid =
            (self.key.vlans[0].tpid & !TPID_PRESENT) | if present { TPID_PRESENT } else { 0 };
        self.mask.0.vlans[0].tpid |= TPID_PRESENT;
        self.key.vlans[0].tci = (self.key.vlans[0].tci & !tci_mask) | (tci & tci_mask);
        self.mask.0.vlans[0].tci |= tci_mask;
    }

    /// Checks prerequisites and returns the match.
    pub(super) fn finish(self) -> SyntaxResult<Match> {
        for (field, p) in &self.prereqs {
            if !prereq_met(*p, &self.key, &self.mask) {
                return Err(FlowSyntaxError::MissingPrerequisite {
                    field: field.clone(),
                    needs: p.describe(),
                });
            }
        }
        Ok(Match::new(self.key, self.mask))
    }
}

fn shorthand(name: &str) -> Option<(u16, Option<u8>)> {
    Some(match name {
        "ip" => (ethertype::IPV4, None),
        "ipv6" => (ethertype::IPV6, None),
        "arp" => (ethertype::ARP, None),
        "rarp" => (ethertype::RARP, None),
        "icmp" => (ethertype::IPV4, Some(ipproto::ICMP)),
        "tcp" => (ethertype::IPV4, Some(ipproto::TCP)),
        "udp" => (ethertype::IPV4, Some(ipproto::UDP)),
        "sctp" => (ethertype::IPV4, Some(ipproto::SCTP)),
        "icmp6" => (ethertype::IPV6, Some(ipproto::ICMPV6)),
        "tcp6" => (ethertype::IPV6, Some(ipproto::TCP)),
        "udp6" => (ethertype::IPV6, Some(ipproto::UDP)),
        "sctp6" => (ethertype::IPV6, Some(ipproto::SCTP)),
        _ => return None,
    })
}

/// Parses one `name[=value]` token into the builder.
pub(super) fn parse_match_field(
    mb: &mut MatchBuilder,
    name: &str,
    value: Option<&str>,
) -> SyntaxResult<()> {
    if let Some((t, p)) = shorthand(name) {
        if value.is_some() {
            return Err(bad(
                name,
                value.unwrap_or(""),
                "no value (it is a shorthand)",
            ));
        }
        mb.set_dl_type(t);
        if let Some(p) = p {
            mb.set_proto(p);
            // A later dl_type= could contradict the shorthand: check at the end.
            mb.need(name, Prereq::AnyIp);
        }
        return Ok(());
    }
    let v = match value {
        Some(v) => v,
        None => return Err(FlowSyntaxError::UnknownField(name.to_string())),
    };
    let (k, m) = (&mut mb.key, &mut mb.mask.0);
    match name {
        "in_port" => {
            k.in_port = parse_ofport(name, v)? as u32;
            m.in_port = u32::MAX;
        }
        "recirc_id" => {
            k.recirc_id = parse_uint(name, v, u32::MAX as u64, "a 32-bit number")? as u32;
            m.recirc_id = u32::MAX;
        }
        "dl_src" | "eth_src" => (k.dl_src, m.dl_src) = parse_mac_masked(name, v)?,
        "dl_dst" | "eth_dst" => (k.dl_dst, m.dl_dst) = parse_mac_masked(name, v)?,
        "dl_type" | "eth_type" => {
            let t = parse_uint(name, v, 0xffff, "a 16-bit ethertype like 0x0800")? as u16;
            mb.set_dl_type(t);
        }
        "dl_vlan" => {
            let vid = parse_uint(name, v, 0xffff, "a VLAN id 0-4095 or 0xffff for no tag")? as u16;
            if vid == 0xffff {
                mb.set_vlan_bits(false, 0, TCI_MATCHABLE);
            } else if vid > 4095 {
                return Err(bad(name, v, "a VLAN id 0-4095 or 0xffff for no tag"));
            } else {
                mb.set_vlan_bits(true, vid, 0x0fff);
            }
        }
        "dl_vlan_pcp" => {
            let pcp = parse_uint(name, v, 7, "a priority 0-7")? as u16;
            mb.set_vlan_bits(true, pcp << 13, 0xe000);
        }
        "vlan_tci" => {
            let (tv, tm) = parse_uint_masked(name, v, 0xffff, "a 16-bit TCI with optional /mask")?;
            let (tv, tm) = (tv as u16, tm as u16);
            if tm & OVS_CFI != 0 {
                mb.set_vlan_bits(tv & OVS_CFI != 0, tv & TCI_MATCHABLE, tm & TCI_MATCHABLE);
            } else {
                let (k, m) = (&mut mb.key, &mut mb.mask.0);
                k.vlans[0].tci = (k.vlans[0].tci & !tm) | (tv & tm & TCI_MATCHABLE);
                m.vlans[0].tci |= tm & TCI_MATCHABLE;
            }
        }
        "nw_src" | "ip_src" | "arp_spa" => {
            (k.nw_src, m.nw_src) = parse_ipv4_masked(name, v)?;
            mb.need(
                name,
                if name == "arp_spa" {
                    Prereq::Arp
                } else {
                    Prereq::IpOrArp
                },
            );
        }
        "nw_dst" | "ip_dst" | "arp_tpa" => {
            (k.nw_dst, m.nw_dst) = parse_ipv4_masked(name, v)?;
            mb.need(
                name,
                if name == "arp_tpa" {
                    Prereq::Arp
                } else {
                    Prereq::IpOrArp
                },
            );
        }
        "ipv6_src" => {
            (k.ipv6_src, m.ipv6_src) = parse_ipv6_masked(name, v)?;
            mb.need(name, Prereq::Ip6);
        }
        "ipv6_dst" => {
            (k.ipv6_dst, m.ipv6_dst) = parse_ipv6_masked(name, v)?;
            mb.need(name, Prereq::Ip6);
        }
        "ipv6_label" => {
            let (a, b) = parse_uint_masked(name, v, 0xfffff, "a 20-bit flow label")?;
            (k.ipv6_label, m.ipv6_label) = (a as u32, b as u32);
            mb.need(name, Prereq::Ip6);
        }
        "nw_proto" | "ip_proto" | "arp_op" => {
            k.nw_proto = parse_uint(name, v, 255, "a number 0-255")? as u8;
            m.nw_proto = 0xff;
            mb.need(
                name,
                if name == "arp_op" {
                    Prereq::Arp
                } else {
                    Prereq::IpOrArpProto
                },
            );
        }
        "nw_tos" => {
            let t = parse_uint(name, v, 255, "a TOS byte 0-255 with the 2 ECN bits zero")? as u8;
            if t & 3 != 0 {
                return Err(bad(name, v, "a TOS byte 0-255 with the 2 ECN bits zero"));
            }
            k.nw_tos = t;
            m.nw_tos |= 0xfc;
            mb.need(name, Prereq::AnyIp);
        }
        "nw_ttl" => {
            k.nw_ttl = parse_uint(name, v, 255, "a TTL 0-255")? as u8;
            m.nw_ttl = 0xff;
            mb.need(name, Prereq::AnyIp);
        }
        "ip_frag" | "nw_frag" => {
            let (val, msk) = match v {
                "no" => (0, frag::ANY),
                "yes" => (frag::ANY, frag::ANY),
                "first" => (frag::ANY, frag::ANY | frag::LATER),
                "later" => (frag::ANY | frag::LATER, frag::ANY | frag::LATER),
                "not_later" => (0, frag::LATER),
                _ => return Err(bad(name, v, "one of no, yes, first, later, not_later")),
            };
            (k.nw_frag, m.nw_frag) = (val, msk);
            mb.need(name, Prereq::AnyIp);
        }
        "tp_src" | "tcp_src" | "udp_src" | "sctp_src" => {
            let (a, b) = parse_uint_masked(name, v, 0xffff, "a port 0-65535 with optional /mask")?;
            (k.tp_src, m.tp_src) = (a as u16, b as u16);
            mb.need(name, Prereq::L4Ports);
        }
        "tp_dst" | "tcp_dst" | "udp_dst" | "sctp_dst" => {
            let (a, b) = parse_uint_masked(name, v, 0xffff, "a port 0-65535 with optional /mask")?;
            (k.tp_dst, m.tp_dst) = (a as u16, b as u16);
            mb.need(name, Prereq::L4Ports);
        }
        "tcp_flags" => {
            let (a, b) = parse_uint_masked(name, v, 0xfff, "12 TCP flag bits with optional /mask")?;
            (k.tcp_flags, m.tcp_flags) = (a as u16, b as u16);
            mb.need(name, Prereq::Tcp);
        }
        "icmp_type" | "icmpv6_type" => {
            k.tp_src = parse_uint(name, v, 255, "an ICMP type 0-255")? as u16;
            m.tp_src = 0xffff;
            mb.need(name, Prereq::Icmp);
        }
        "icmp_code" | "icmpv6_code" => {
            k.tp_dst = parse_uint(name, v, 255, "an ICMP code 0-255")? as u16;
            m.tp_dst = 0xffff;
            mb.need(name, Prereq::Icmp);
        }
        "arp_sha" => {
            (k.arp_sha, m.arp_sha) = parse_mac_masked(name, v)?;
            mb.need(name, Prereq::Arp);
        }
        "arp_tha" => {
            (k.arp_tha, m.arp_tha) = parse_mac_masked(name, v)?;
            mb.need(name, Prereq::Arp);
        }
        "nd_target" => {
            (k.nd_target, m.nd_target) = parse_ipv6_masked(name, v)?;
            mb.need(name, Prereq::Icmp6);
        }
        "tun_id" | "tunnel_id" => {
            (k.tun_id, m.tun_id) =
                parse_uint_masked(name, v, u64::MAX, "a 64-bit tunnel id with optional /mask")?;
        }
        "tun_src" => (k.tun_ipv4_src, m.tun_ipv4_src) = parse_ipv4_masked(name, v)?,
        "tun_dst" => (k.tun_ipv4_dst, m.tun_ipv4_dst) = parse_ipv4_masked(name, v)?,
        // One Geneve option: header word class<<16 | type<<8 | length (4-byte words),
        // and its first 4 data bytes.
        "tun_gnv_opt_hdr" | "tun_gnv_opt_data" => {
            let (kv, mv) = parse_uint_masked(
                name,
                v,
                u32::MAX as u64,
                "a 32-bit Geneve option word with optional /mask",
            )?;
            if name == "tun_gnv_opt_hdr" {
                (k.tun_gnv_opt_hdr, m.tun_gnv_opt_hdr) = (kv as u32, mv as u32);
            } else {
                (k.tun_gnv_opt_data, m.tun_gnv_opt_data) = (kv as u32, mv as u32);
            }
        }
        _ => return Err(FlowSyntaxError::UnknownField(name.to_string())),
    }
    Ok(())
}
