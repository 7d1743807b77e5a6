//! Text output for the control socket: dump-flows, fdb/show, mdb/show, trace, and the
//! datapath-action notation (`push_vlan(vid=10,pcp=0),2` as OVS prints it).

use std::sync::Arc;
use std::time::Instant;

use super::action_syntax::format_actions;
use super::flow_syntax::{fmt_ipv4, fmt_ipv6, fmt_mac, fmt_ofport};
use super::mac_learning::MacLearning;
use super::match_format::format_match;
use super::mcast_snooping::{fmt_group, McastSnooping};
use super::rule::{Match, Rule};
use super::xlate::XlateOutput;
use super::Ofproto;
use crate::dpif::{DpAction, Masked, SetField};
use crate::packet::FlowKey;

/// ovs-ofctl dump-flows lines, one per rule.
pub(super) fn dump_flows(rules: &[Arc<Rule>], now: Instant) -> String {
    let mut s = String::new();
    for r in rules {
        let c = r.counters();
        let dur = now.saturating_duration_since(r.created).as_secs_f64();
        s += &format!(
            " cookie={:#x}, duration={:.3}s, table={}, n_packets={}, n_bytes={}, ",
            r.opts.cookie, dur, r.opts.table, c.n_packets, c.n_bytes
        );
        if r.opts.idle_timeout != 0 {
            s += &format!("idle_timeout={}, ", r.opts.idle_timeout);
        }
        if r.opts.hard_timeout != 0 {
            s += &format!("hard_timeout={}, ", r.opts.hard_timeout);
        }
        s += &format!("priority={}", r.opts.priority);
        let m = format_match(&r.matcher);
        if !m.is_empty() {
            s.push(',');
            s += &m;
        }
        s += &format!(" actions={}\n", format_actions(&r.actions));
    }
    s
}

/// `fdb/show` in OVS's format (a pinned entry's age reads `static`).
pub(super) fn fdb_show(fdb: &MacLearning, now: Instant) -> String {
    let mut s = String::from(" port  VLAN  MAC                Age\n");
    for (mac, vlan, e) in fdb.entries() {
        let idle = now.saturating_duration_since(e.used);
        let age = if e.is_static {
            "static".to_string()
        } else if idle >= fdb.aging {
            continue;
        } else {
            idle.as_secs().to_string()
        };
        s += &format!(
            "{:>5}  {:>4}  {}  {:>3}\n",
            fmt_ofport(e.port),
            vlan,
            fmt_mac(&mac),
            age
        );
    }
    s
}

/// `fdb/stats-show` in OVS's format, line for line.
pub(super) fn fdb_stats_show(bridge: &str, fdb: &MacLearning) -> String {
    let st = fdb.stats();
    format!(
        "Statistics for bridge \"{bridge}\":\n\
         \x20 Current/maximum MAC entries in the table: {}/{}\n\
         \x20 Current static MAC entries in the table : {}\n\
         \x20 Total number of learned MAC entries     : {}\n\
         \x20 Total number of expired MAC entries     : {}\n\
         \x20 Total number of evicted MAC entries     : {}\n\
         \x20 Total number of port moved MAC entries  : {}\n",
        fdb.len(),
        fdb.max_entries,
        fdb.static_count(),
        st.learned,
        st.expired,
        st.evicted,
        st.moved
    )
}

/// `mdb/show` in OVS's format (mrouter ports show as `querier`).
pub(super) fn mdb_show(mdb: &McastSnooping, now: Instant) -> String {
    let mut s = String::from(" port  VLAN  GROUP                Age\n");
    for (port, vlan, group, t) in mdb.rows() {
        let age = now.saturating_duration_since(t).as_secs();
        let g = group.map_or_else(|| "querier".to_string(), |g| fmt_group(&g));
        s += &format!(
            "{:>5}  {:>4}  {:<19}  {:>3}\n",
            fmt_ofport(port),
            vlan,
            g,
            age
        );
    }
    s
}

fn masked_mac(name: &str, m: &Masked<[u8; 6]>, out: &mut Vec<String>) {
    if m.mask == [0xff; 6] {
        out.push(format!("{name}={}", fmt_mac(&m.value)));
    } else if m.mask != [0; 6] {
        out.push(format!("{name}={}/{}", fmt_mac(&m.value), fmt_mac(&m.mask)));
    }
}

fn masked_num<T: Into<u64> + Copy>(name: &str, m: &Masked<T>, full: u64, out: &mut Vec<String>) {
    let (v, mk) = (m.value.into(), m.mask.into());
    if mk == full {
        out.push(format!("{name}={v}"));
    } else if mk != 0 {
        out.push(format!("{name}={v:#x}/{mk:#x}"));
    }
}

fn masked_ip4(name: &str, m: &Masked<u32>, out: &mut Vec<String>) {
    if m.mask == u32::MAX {
        out.push(format!("{name}={}", fmt_ipv4(m.value)));
    } else if m.mask != 0 {
        out.push(format!("{name}={}/{}", fmt_ipv4(m.value), fmt_ipv4(m.mask)));
    }
}

fn masked_ip6(name: &str, m: &Masked<[u8; 16]>, out: &mut Vec<String>) {
    if m.mask == [0xff; 16] {
        out.push(format!("{name}={}", fmt_ipv6(&m.value)));
    } else if m.mask != [0; 16] {
        out.push(format!(
            "{name}={}/{}",
            fmt_ipv6(&m.value),
            fmt_ipv6(&m.mask)
        ));
    }
}

/// Datapath actions in OVS's notation; `drop` when empty.
pub fn format_dp_actions(actions: &[DpAction]) -> String {
    if actions.is_empty() {
        return "drop".into();
    }
    let one = |a: &DpAction| -> String {
        match a {
            DpAction::Output(p) => p.to_string(),
            DpAction::PushVlan(t) => {
                let tp = if t.tpid == 0x8100 {
                    String::new()
                } else {
                    format!("tpid={:#06x},", t.tpid)
                };
                format!("push_vlan({tp}vid={},pcp={})", t.vid(), t.pcp())
            }
            DpAction::PopVlan => "pop_vlan".into(),
            DpAction::Set(sf) => {
                let mut f = Vec::new();
                let (hdr, f) = match sf {
                    SetField::Eth { src, dst } => {
                        masked_mac("src", src, &mut f);
                        masked_mac("dst", dst, &mut f);
                        ("eth", f)
                    }
                    SetField::Ipv4 { src, dst, tos, ttl } => {
                        masked_ip4("src", src, &mut f);
                        masked_ip4("dst", dst, &mut f);
                        masked_num("tos", tos, 0xff, &mut f);
                        masked_num("ttl", ttl, 0xff, &mut f);
                        ("ipv4", f)
                    }
                    SetField::Ipv6 {
                        src,
                        dst,
                        tclass,
                        hlimit,
                        label,
                    } => {
                        masked_ip6("src", src, &mut f);
                        masked_ip6("dst", dst, &mut f);
                        masked_num("tclass", tclass, 0xff, &mut f);
                        masked_num("hlimit", hlimit, 0xff, &mut f);
                        masked_num("label", label, 0xfffff, &mut f);
                        ("ipv6", f)
                    }
                    SetField::Tcp { src, dst }
                    | SetField::Udp { src, dst }
                    | SetField::Sctp { src, dst } => {
                        masked_num("src", src, 0xffff, &mut f);
                        masked_num("dst", dst, 0xffff, &mut f);
                        let h = match sf {
                            SetField::Tcp { .. } => "tcp",
                            SetField::Udp { .. } => "udp",
                            _ => "sctp",
                        };
                        (h, f)
                    }
                    SetField::Tunnel(t) => {
                        f.push(format!("tun_id={:#x}", t.tun_id));
                        f.push(format!("src={}", fmt_ipv4(t.ipv4_src)));
                        f.push(format!("dst={}", fmt_ipv4(t.ipv4_dst)));
                        ("tunnel", f)
                    }
                };
                format!("set({hdr}({}))", f.join(","))
            }
            DpAction::Recirc(id) => format!("recirc({id:#x})"),
            DpAction::Userspace { cookie } => format!("userspace(cookie={cookie:#x})"),
            DpAction::TnlPush(t) => format!(
                "tnl_push(tnl_port({}),out_port({}))",
                t.tnl_port, t.out_port
            ),
            DpAction::TnlPop(p) => format!("tnl_pop({p})"),
            DpAction::Clone(v) => format!("clone({})", format_dp_actions(v)),
            DpAction::Sample {
                probability,
                actions,
            } => {
                format!(
                    "sample(probability={probability},actions({}))",
                    format_dp_actions(actions)
                )
            }
        }
    };
    actions.iter().map(one).collect::<Vec<_>>().join(",")
}

/// The `ofproto/trace` report.
pub(super) fn format_trace(bridge: &Ofproto, key: &FlowKey, out: &XlateOutput) -> String {
    // The packet in OpenFlow port numbers (as the user wrote it); the megaflow below is
    // what the datapath matches on, in datapath port numbers.
    let mut of_key = *key;
    of_key.in_port = out.final_flow.in_port;
    let mut s = format!(
        "Flow: {}\n\n",
        format_match(&Match::new(of_key, present_fields(&of_key)))
    );
    let title = format!("bridge(\"{}\")", bridge.name());
    for line in &out.trace {
        s += line;
        s.push('\n');
        if *line == title {
            s += &"-".repeat(title.len());
            s.push('\n');
        }
    }
    s.push('\n');
    let ff = Match::new(out.final_flow, present_fields(&out.final_flow));
    if out.final_flow == of_key {
        s += "Final flow: unchanged\n";
    } else {
        s += &format!("Final flow: {}\n", format_match(&ff));
    }
    s += &format!(
        "Megaflow (datapath ports): {}\n",
        format_match(&Match::new(*key, out.mask))
    );
    if let Some(e) = &out.error {
        s += &format!("Translation failed: {e}\n");
    }
    if !out.install {
        s += "Megaflow not installed: the packet must reach the translator every time\n";
    }
    s += &format!("Datapath actions: {}\n", format_dp_actions(&out.actions));
    s
}

/// A mask selecting the fields of `k` worth showing: the ones that are set, plus the
/// identity of the packet (in_port, MACs, ethertype, VLAN).
fn present_fields(k: &FlowKey) -> crate::packet::FlowMask {
    let mut m = crate::packet::FlowMask::default();
    let w = &mut m.0;
    w.in_port = u32::MAX;
    w.dl_src = [0xff; 6];
    w.dl_dst = [0xff; 6];
    w.dl_type = u16::MAX;
    w.vlans[0] = crate::packet::VlanTag {
        tpid: 0x8000,
        tci: 0xefff,
    };
    let zero = FlowKey::default();
    macro_rules! if_set {
        ($($f:ident = $v:expr),* $(,)?) => {$(
            if k.$f != zero.$f {
                w.$f = $v;
            }
        )*};
    }
    if_set!(
        tun_id = u64::MAX,
        tun_ipv4_src = u32::MAX,
        tun_ipv4_dst = u32::MAX,
        nw_src = u32::MAX,
        nw_dst = u32::MAX,
        ipv6_src = [0xff; 16],
        ipv6_dst = [0xff; 16],
        ipv6_label = 0xfffff,
        nw_proto = u8::MAX,
        nw_tos = 0xfc,
        nw_ttl = u8::MAX,
        tp_src = u16::MAX,
        tp_dst = u16::MAX,
        tcp_flags = 0xfff,
        arp_sha = [0xff; 6],
        arp_tha = [0xff; 6],
        nd_target = [0xff; 16],
        igmp_group = u32::MAX,
    );
    m
}
