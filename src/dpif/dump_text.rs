//! Datapath flows and actions as text, in the syntax of OVS's `ovs-dpctl dump-flows`
//! (`recirc_id(0),in_port(1),eth(...),eth_type(0x0800),ipv4(...), packets:N, bytes:N,
//! used:0.5s, actions:2`). Fields whose mask is zero are left out; partially masked
//! fields print as `value/mask`.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use crate::dpif::{DpAction, DpFlow, Masked, SetField, TunnelType};
use crate::packet::{ethertype, flow_key::frag, flow_key::tun_flag, ipproto, FlowKey, FlowMask};

fn mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Collects `name=value[/mask]` items for one header.
struct Fields(Vec<String>);

impl Fields {
    fn new() -> Self {
        Fields(Vec::new())
    }
    fn int<T>(&mut self, name: &str, v: T, m: T, full: T, hex: bool)
    where
        T: Copy + PartialEq + Default + std::fmt::Display + std::fmt::LowerHex,
    {
        if m == T::default() {
            return;
        }
        let vs = if hex {
            format!("{v:#x}")
        } else {
            v.to_string()
        };
        if m == full {
            self.0.push(format!("{name}={vs}"));
        } else {
            self.0.push(format!("{name}={vs}/{m:#x}"));
        }
    }
    fn ip4(&mut self, name: &str, v: u32, m: u32) {
        match m {
            0 => {}
            u32::MAX => self.0.push(format!("{name}={}", Ipv4Addr::from(v))),
            _ => self.0.push(format!(
                "{name}={}/{}",
                Ipv4Addr::from(v),
                Ipv4Addr::from(m)
            )),
        }
    }
    fn ip6(&mut self, name: &str, v: &[u8; 16], m: &[u8; 16]) {
        if *m == [0; 16] {
            return;
        }
        if *m == [0xff; 16] {
            self.0.push(format!("{name}={}", Ipv6Addr::from(*v)));
        } else {
            self.0.push(format!(
                "{name}={}/{}",
                Ipv6Addr::from(*v),
                Ipv6Addr::from(*m)
            ));
        }
    }
    fn mac(&mut self, name: &str, v: &[u8; 6], m: &[u8; 6]) {
        if *m == [0; 6] {
            return;
        }
        if *m == [0xff; 6] {
            self.0.push(format!("{name}={}", mac(v)));
        } else {
            self.0.push(format!("{name}={}/{}", mac(v), mac(m)));
        }
    }
    fn emit(self, out: &mut String, header: &str) {
        if !self.0.is_empty() {
            let _ = write!(out, ",{header}({})", self.0.join(","));
        }
    }
}

fn frag_name(v: u8) -> &'static str {
    if v & frag::LATER != 0 {
        "later"
    } else if v & frag::ANY != 0 {
        "first"
    } else {
        "no"
    }
}

/// TCP flags as OVS prints them (`S`, `.` for ACK, ...).
pub fn tcp_flags_text(flags: u16) -> String {
    const NAMES: [(u16, char); 8] = [
        (0x001, 'F'),
        (0x002, 'S'),
        (0x004, 'R'),
        (0x008, 'P'),
        (0x010, '.'),
        (0x020, 'U'),
        (0x040, 'E'),
        (0x080, 'C'),
    ];
    NAMES
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// A masked key in datapath flow syntax.
pub fn format_key(k: &FlowKey, m: &FlowMask) -> String {
    let m = &m.0;
    let mut out = format!("recirc_id({:#x}),in_port({})", k.recirc_id, k.in_port);
    if k.recirc_id == 0 {
        out = format!("recirc_id(0),in_port({})", k.in_port);
    }
    let mut t = Fields::new();
    t.int("tun_id", k.tun_id, m.tun_id, u64::MAX, true);
    t.ip4("src", k.tun_ipv4_src, m.tun_ipv4_src);
    t.ip4("dst", k.tun_ipv4_dst, m.tun_ipv4_dst);
    t.ip6("ipv6_src", &k.tun_ipv6_src, &m.tun_ipv6_src);
    t.ip6("ipv6_dst", &k.tun_ipv6_dst, &m.tun_ipv6_dst);
    t.int("tos", k.tun_tos, m.tun_tos, u8::MAX, true);
    t.int("ttl", k.tun_ttl, m.tun_ttl, u8::MAX, false);
    t.int("tp_src", k.tun_tp_src, m.tun_tp_src, u16::MAX, false);
    t.int("tp_dst", k.tun_tp_dst, m.tun_tp_dst, u16::MAX, false);
    t.int("flags", k.tun_flags, m.tun_flags, u16::MAX, true);
    t.emit(&mut out, "tunnel");
    let mut e = Fields::new();
    e.mac("src", &k.dl_src, &m.dl_src);
    e.mac("dst", &k.dl_dst, &m.dl_dst);
    e.emit(&mut out, "eth");
    for i in 0..2 {
        let (v, vm) = (k.vlans[i], m.vlans[i]);
        if vm.tci == 0 && vm.tpid == 0 {
            continue;
        }
        if vm.tpid != 0 && v.tpid != 0 && v.tpid != ethertype::VLAN {
            let _ = write!(out, ",eth_type({:#06x})", v.tpid);
        }
        let mut f = Fields::new();
        f.int("vid", v.tci & 0x0fff, vm.tci & 0x0fff, 0x0fff, false);
        f.int("pcp", v.tci >> 13, vm.tci >> 13, 7, false);
        if vm.tpid != 0 && v.tpid == 0 {
            f.0.push("none".into());
        }
        f.emit(&mut out, "vlan");
    }
    if m.dl_type != 0 {
        let _ = write!(out, ",eth_type({:#06x})", k.dl_type);
    }
    let l3 = m.dl_type != 0;
    if l3 && k.dl_type == ethertype::IPV4 {
        let mut f = Fields::new();
        f.ip4("src", k.nw_src, m.nw_src);
        f.ip4("dst", k.nw_dst, m.nw_dst);
        f.int("proto", k.nw_proto, m.nw_proto, u8::MAX, false);
        f.int("tos", k.nw_tos, m.nw_tos, u8::MAX, true);
        f.int("ttl", k.nw_ttl, m.nw_ttl, u8::MAX, false);
        if m.nw_frag != 0 {
            f.0.push(format!("frag={}", frag_name(k.nw_frag)));
        }
        f.emit(&mut out, "ipv4");
    } else if l3 && k.dl_type == ethertype::IPV6 {
        let mut f = Fields::new();
        f.ip6("src", &k.ipv6_src, &m.ipv6_src);
        f.ip6("dst", &k.ipv6_dst, &m.ipv6_dst);
        f.int("label", k.ipv6_label, m.ipv6_label, 0xfffff, true);
        f.int("proto", k.nw_proto, m.nw_proto, u8::MAX, false);
        f.int("tclass", k.nw_tos, m.nw_tos, u8::MAX, true);
        f.int("hlimit", k.nw_ttl, m.nw_ttl, u8::MAX, false);
        if m.nw_frag != 0 {
            f.0.push(format!("frag={}", frag_name(k.nw_frag)));
        }
        f.emit(&mut out, "ipv6");
    } else if l3 && (k.dl_type == ethertype::ARP || k.dl_type == ethertype::RARP) {
        let mut f = Fields::new();
        f.ip4("sip", k.nw_src, m.nw_src);
        f.ip4("tip", k.nw_dst, m.nw_dst);
        f.int("op", k.nw_proto, m.nw_proto, u8::MAX, false);
        f.mac("sha", &k.arp_sha, &m.arp_sha);
        f.mac("tha", &k.arp_tha, &m.arp_tha);
        f.emit(&mut out, "arp");
    }
    let ip = l3 && (k.dl_type == ethertype::IPV4 || k.dl_type == ethertype::IPV6);
    if ip && m.nw_proto != 0 {
        let l4 = match (k.nw_proto, k.dl_type) {
            (ipproto::TCP, _) => Some("tcp"),
            (ipproto::UDP, _) => Some("udp"),
            (ipproto::SCTP, _) => Some("sctp"),
            (ipproto::ICMP, ethertype::IPV4) => Some("icmp"),
            (ipproto::ICMPV6, ethertype::IPV6) => Some("icmpv6"),
            (ipproto::IGMP, ethertype::IPV4) => Some("igmp"),
            _ => None,
        };
        if let Some(name) = l4 {
            let (a, b) = if name.starts_with("icmp") || name == "igmp" {
                ("type", "code")
            } else {
                ("src", "dst")
            };
            let mut f = Fields::new();
            f.int(a, k.tp_src, m.tp_src, u16::MAX, false);
            f.int(b, k.tp_dst, m.tp_dst, u16::MAX, false);
            f.emit(&mut out, name);
            if name == "tcp" && m.tcp_flags != 0 {
                if m.tcp_flags == 0x0fff {
                    let _ = write!(out, ",tcp_flags({:#x})", k.tcp_flags);
                } else {
                    let _ = write!(out, ",tcp_flags({:#x}/{:#x})", k.tcp_flags, m.tcp_flags);
                }
            }
            if name == "icmpv6" {
                let mut f = Fields::new();
                f.ip6("target", &k.nd_target, &m.nd_target);
                f.mac("sll", &k.arp_sha, &m.arp_sha);
                f.mac("tll", &k.arp_tha, &m.arp_tha);
                f.emit(&mut out, "nd");
            }
        }
    }
    out
}

fn masked_fields<T>(f: &mut Fields, name: &str, v: Masked<T>, full: T, hex: bool)
where
    T: Copy + PartialEq + Default + std::fmt::Display + std::fmt::LowerHex,
{
    f.int(name, v.value, v.mask, full, hex);
}

fn format_set(out: &mut String, s: &SetField) {
    let mut f = Fields::new();
    let name = match s {
        SetField::Eth { src, dst } => {
            f.mac("src", &src.value, &src.mask);
            f.mac("dst", &dst.value, &dst.mask);
            "eth"
        }
        SetField::Ipv4 { src, dst, tos, ttl } => {
            f.ip4("src", src.value, src.mask);
            f.ip4("dst", dst.value, dst.mask);
            masked_fields(&mut f, "tos", *tos, u8::MAX, true);
            masked_fields(&mut f, "ttl", *ttl, u8::MAX, false);
            "ipv4"
        }
        SetField::Ipv6 {
            src,
            dst,
            tclass,
            hlimit,
            label,
        } => {
            f.ip6("src", &src.value, &src.mask);
            f.ip6("dst", &dst.value, &dst.mask);
            masked_fields(&mut f, "label", *label, 0xfffff, true);
            masked_fields(&mut f, "tclass", *tclass, u8::MAX, true);
            masked_fields(&mut f, "hlimit", *hlimit, u8::MAX, false);
            "ipv6"
        }
        SetField::Tcp { src, dst } | SetField::Udp { src, dst } | SetField::Sctp { src, dst } => {
            masked_fields(&mut f, "src", *src, u16::MAX, false);
            masked_fields(&mut f, "dst", *dst, u16::MAX, false);
            match s {
                SetField::Tcp { .. } => "tcp",
                SetField::Udp { .. } => "udp",
                _ => "sctp",
            }
        }
        SetField::Tunnel(t) => {
            // As OVS prints it: zero addresses, tos and ports left out, flags last.
            let mut parts = vec![format!("tun_id={:#x}", t.tun_id)];
            if t.ipv4_src != 0 {
                parts.push(format!("src={}", Ipv4Addr::from(t.ipv4_src)));
            }
            if t.ipv4_dst != 0 {
                parts.push(format!("dst={}", Ipv4Addr::from(t.ipv4_dst)));
            }
            if t.ipv6_src != [0; 16] {
                parts.push(format!("ipv6_src={}", Ipv6Addr::from(t.ipv6_src)));
            }
            if t.ipv6_dst != [0; 16] {
                parts.push(format!("ipv6_dst={}", Ipv6Addr::from(t.ipv6_dst)));
            }
            if t.tos != 0 {
                parts.push(format!("tos={:#x}", t.tos));
            }
            parts.push(format!("ttl={}", t.ttl));
            if t.tp_src != 0 {
                parts.push(format!("tp_src={}", t.tp_src));
            }
            if t.tp_dst != 0 {
                parts.push(format!("tp_dst={}", t.tp_dst));
            }
            let flags: Vec<&str> = [
                (tun_flag::DONT_FRAGMENT, "df"),
                (tun_flag::CSUM, "csum"),
                (tun_flag::KEY, "key"),
                (tun_flag::OAM, "oam"),
            ]
            .iter()
            .filter(|(b, _)| t.flags & b != 0)
            .map(|(_, n)| *n)
            .collect();
            if !flags.is_empty() {
                parts.push(format!("flags({})", flags.join("|")));
            }
            let _ = write!(out, "set(tunnel({}))", parts.join(","));
            return;
        }
    };
    let mut inner = String::new();
    f.emit(&mut inner, name);
    // `emit` prefixes a comma; drop it inside set(...).
    let _ = write!(out, "set({})", inner.trim_start_matches(','));
}

/// An action list in datapath syntax (`drop` when empty).
pub fn format_actions(actions: &[DpAction]) -> String {
    if actions.is_empty() {
        return "drop".into();
    }
    let mut out = String::new();
    for (i, a) in actions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match a {
            DpAction::Output(p) => {
                let _ = write!(out, "{p}");
            }
            DpAction::PushVlan(t) => {
                if t.tpid != ethertype::VLAN {
                    let _ = write!(
                        out,
                        "push_vlan(tpid={:#x},vid={},pcp={})",
                        t.tpid,
                        t.vid(),
                        t.pcp()
                    );
                } else {
                    let _ = write!(out, "push_vlan(vid={},pcp={})", t.vid(), t.pcp());
                }
            }
            DpAction::PopVlan => out.push_str("pop_vlan"),
            DpAction::Set(s) => format_set(&mut out, s),
            DpAction::Recirc(id) => {
                let _ = write!(out, "recirc({id:#x})");
            }
            DpAction::Userspace { cookie } => {
                let _ = write!(out, "userspace(pid=0,userdata({cookie:016x}))");
            }
            DpAction::TnlPush(t) => {
                let ty = match t.tnl_type {
                    TunnelType::Vxlan => "vxlan",
                    TunnelType::Geneve => "geneve",
                    TunnelType::Gre => "gre",
                };
                let _ = write!(
                    out,
                    "tnl_push(tnl_port({}),header(size={},type={ty}),out_port({}))",
                    t.tnl_port,
                    t.header.len(),
                    t.out_port
                );
            }
            DpAction::TnlPop(p) => {
                let _ = write!(out, "tnl_pop({p})");
            }
            DpAction::Clone(n) => {
                let _ = write!(out, "clone({})", format_actions(n));
            }
            DpAction::Sample {
                probability,
                actions,
            } => {
                let pct = *probability as f64 * 100.0 / u32::MAX as f64;
                let _ = write!(
                    out,
                    "sample(sample={pct:.1}%,actions({}))",
                    format_actions(actions)
                );
            }
        }
    }
    out
}

/// One flow line: key, counters, actions.
pub fn format_dp_flow(f: &DpFlow, now: Instant) -> String {
    let used = match f.stats.used {
        None => "never".to_string(),
        Some(t) => format!("{:.3}s", now.saturating_duration_since(t).as_secs_f64()),
    };
    let mut s = format!(
        "{}, packets:{}, bytes:{}, used:{}",
        format_key(&f.key, &f.mask),
        f.stats.packets,
        f.stats.bytes,
        used
    );
    if f.stats.tcp_flags != 0 {
        let _ = write!(s, ", flags:{}", tcp_flags_text(f.stats.tcp_flags));
    }
    let _ = write!(s, ", actions:{}", format_actions(&f.actions));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpif::DpFlowStats;
    use crate::packet::VlanTag;
    use std::sync::Arc;

    #[test]
    fn ipv4_udp_flow_prints_like_dpctl() {
        let k = FlowKey {
            in_port: 1,
            dl_type: ethertype::IPV4,
            nw_src: 0x0a00_0001,
            nw_dst: 0x0a00_0002,
            nw_proto: ipproto::UDP,
            tp_dst: 53,
            ..Default::default()
        };
        let mut m = FlowMask::default();
        m.0.in_port = u32::MAX;
        m.0.recirc_id = u32::MAX;
        m.0.dl_type = u16::MAX;
        m.0.nw_src = 0xffff_ff00;
        m.0.nw_dst = u32::MAX;
        m.0.nw_proto = u8::MAX;
        m.0.tp_dst = u16::MAX;
        let f = DpFlow {
            key: k.masked(&m),
            mask: m,
            actions: Arc::from(vec![
                DpAction::PushVlan(VlanTag {
                    tpid: 0x8100,
                    tci: 10,
                }),
                DpAction::Output(2),
            ]),
            stats: DpFlowStats {
                packets: 3,
                bytes: 180,
                ..Default::default()
            },
            pmd_core: Some(1),
        };
        assert_eq!(
            format_dp_flow(&f, Instant::now()),
            "recirc_id(0),in_port(1),eth_type(0x0800),ipv4(src=10.0.0.0/255.255.255.0,\
             dst=10.0.0.2,proto=17),udp(dst=53), packets:3, bytes:180, used:never, \
             actions:push_vlan(vid=10,pcp=0),2"
        );
        assert_eq!(format_actions(&[]), "drop");
    }

    #[test]
    fn set_tunnel_prints_like_dpctl() {
        let t = crate::packet::TunnelMeta {
            tun_id: 0x2a,
            ipv4_dst: 0xc0a8_3202,
            ttl: 64,
            tp_dst: 4789,
            flags: tun_flag::DONT_FRAGMENT | tun_flag::KEY,
            ..Default::default()
        };
        assert_eq!(
            format_actions(&[DpAction::Set(SetField::Tunnel(t)), DpAction::Output(4)]),
            "set(tunnel(tun_id=0x2a,dst=192.168.50.2,ttl=64,tp_dst=4789,flags(df|key))),4"
        );
    }
}
