//! NORMAL: the learning L2 switch, with VLANs and multicast snooping.
//!
//! Decision order for a packet in VLAN v (after input VLAN processing):
//! 1. Drop if the input port does not admit the packet's tag, or if the destination is a
//!    reserved 802.1D address (01:80:c2:00:00:0x: STP, LACP, ...), as OVS does without
//!    `forward-bpdu`.
//! 2. Learn (source MAC, v) -> input port, unless the source is multicast.
//! 3. Broadcast, and multicast without snooping: flood within v.
//! 4. Multicast with snooping: see `mcast_snooping` docs (IGMP/MLD handled here).
//! 5. Unicast: the learned port, or flood within v when unknown. Never out the input port.
//!
//! Fields consulted: in_port, both VLAN tag slots, dl_src, dl_dst; for multicast under
//! snooping also dl_type, nw_proto, the IGMP/MLD type and the group address.

use super::mcast_report::{igmpv3_records, ipv4_mapped, mldv2_records};
use super::ports::{BridgePort, InputVlan};
use super::rule::OfPort;
use super::xlate::Ctx;
use crate::packet::{ethertype, ipproto, VlanTag};

/// Applies NORMAL to the current flow.
pub(super) fn xlate_normal(ctx: &mut Ctx<'_>) {
    let in_port = ctx.flow.in_port as OfPort;
    let w = &mut ctx.wc.0;
    w.vlans = [VlanTag {
        tpid: 0xffff,
        tci: 0xffff,
    }; 2];
    w.dl_src = [0xff; 6];
    w.dl_dst = [0xff; 6];
    let Some(inp) = ctx.ports.get(in_port) else {
        return ctx.note(format_args!(
            "NORMAL: input port {in_port} is not a bridge port: drop"
        ));
    };
    let outer = ctx.flow.vlans[0];
    let vid = outer.present().then(|| outer.vid());
    let Some(iv) = inp.config.input_vlan(vid) else {
        return ctx.note(format_args!(
            "NORMAL: port {in_port} does not admit VLAN {}: drop",
            vid.map_or("untagged".to_string(), |v| v.to_string())
        ));
    };
    let dst = ctx.flow.dl_dst;
    if dst[..5] == [0x01, 0x80, 0xc2, 0x00, 0x00] && dst[5] & 0xf0 == 0 {
        return ctx.note(format_args!("NORMAL: reserved 802.1D destination: drop"));
    }
    let src = ctx.flow.dl_src;
    if ctx.may_learn {
        let mut fdb = ctx.bridge.fdb();
        let outcome = match fdb.lookup(src, iv.vlan, ctx.now) {
            Some(p) if p != in_port && ctx.revalidating => {
                super::mac_learning::LearnOutcome::Ignored
            }
            _ => fdb.learn(src, iv.vlan, in_port, ctx.now),
        };
        drop(fdb);
        ctx.note(format_args!(
            "NORMAL: learned {} on port {in_port} VLAN {}: {outcome:?}",
            super::flow_syntax::fmt_mac(&src),
            iv.vlan
        ));
    }
    let saved = ctx.flow.vlans;
    if dst == [0xff; 6] {
        ctx.note(format_args!("NORMAL: broadcast: flooding VLAN {}", iv.vlan));
        flood(ctx, iv, in_port, saved);
    } else if dst[0] & 1 != 0 {
        if ctx.bridge.mcast_enabled() {
            mcast(ctx, iv, in_port, saved);
        } else {
            ctx.note(format_args!("NORMAL: multicast: flooding VLAN {}", iv.vlan));
            flood(ctx, iv, in_port, saved);
        }
    } else {
        let learned = ctx.bridge.fdb().lookup(dst, iv.vlan, ctx.now);
        match learned {
            Some(p) if p == in_port => {
                ctx.note(format_args!("NORMAL: learned port is the input port: drop"));
            }
            Some(p) => {
                ctx.note(format_args!("NORMAL: forwarding to learned port {p}"));
                output_in_vlan(ctx, p, iv, saved);
            }
            None => {
                ctx.note(format_args!(
                    "NORMAL: no learned MAC: flooding VLAN {}",
                    iv.vlan
                ));
                flood(ctx, iv, in_port, saved);
            }
        }
    }
    ctx.set_vlans(saved);
}

/// Sends to `port` with the tagging its VLAN config asks for, if it carries the VLAN.
fn output_in_vlan(ctx: &mut Ctx<'_>, port: OfPort, iv: InputVlan, orig: [VlanTag; 2]) {
    let Some(p) = ctx.ports.get(port) else {
        return;
    };
    let Some(tag) = p.config.output_tag(iv.vlan) else {
        return ctx.note(format_args!(
            "    port {port} is not in VLAN {}: skipped",
            iv.vlan
        ));
    };
    let dp = p.dp_port;
    let (payload, pcp) = if iv.consumed_tag {
        ([orig[1], VlanTag::default()], orig[0].tci & 0xe000)
    } else {
        (orig, 0)
    };
    let vlans = match tag {
        None => payload,
        Some(vid) => [
            VlanTag {
                tpid: crate::packet::ethertype::VLAN,
                tci: pcp | vid,
            },
            payload[0],
        ],
    };
    ctx.set_vlans(vlans);
    ctx.emit_output(dp);
}

fn ports_where(ctx: &Ctx<'_>, f: impl Fn(&BridgePort) -> bool) -> Vec<OfPort> {
    ctx.ports
        .iter()
        .filter(|p| f(p))
        .map(|p| p.ofport)
        .collect()
}

fn flood(ctx: &mut Ctx<'_>, iv: InputVlan, in_port: OfPort, orig: [VlanTag; 2]) {
    for p in ports_where(ctx, |p| p.ofport != in_port) {
        output_in_vlan(ctx, p, iv, orig);
    }
}

fn output_set(
    ctx: &mut Ctx<'_>,
    mut ports: Vec<OfPort>,
    iv: InputVlan,
    in_port: OfPort,
    orig: [VlanTag; 2],
) {
    ports.sort_unstable();
    ports.dedup();
    for p in ports.into_iter().filter(|p| *p != in_port) {
        output_in_vlan(ctx, p, iv, orig);
    }
}

/// The group a multicast message or packet is about, and what kind it is.
enum McastKind {
    Query,
    Join([u8; 16]),
    Leave([u8; 16]),
    Records(bool),
    Data([u8; 16]),
    LinkLocal,
    Other,
}

fn classify(ctx: &mut Ctx<'_>) -> McastKind {
    let f = ctx.flow;
    let w = &mut ctx.wc.0;
    w.dl_type = 0xffff;
    match f.dl_type {
        ethertype::IPV4 => {
            w.nw_proto = 0xff;
            if f.nw_proto == ipproto::IGMP {
                w.tp_src = 0xffff;
                w.igmp_group = u32::MAX;
                return match f.tp_src {
                    0x11 => McastKind::Query,
                    0x12 | 0x16 => McastKind::Join(ipv4_mapped(f.igmp_group)),
                    0x17 => McastKind::Leave(ipv4_mapped(f.igmp_group)),
                    0x22 => McastKind::Records(false),
                    _ => McastKind::Other,
                };
            }
            w.nw_dst = u32::MAX;
            if f.nw_dst >> 8 == 0xe0_0000 {
                McastKind::LinkLocal
            } else if f.nw_dst >> 28 == 0xe {
                McastKind::Data(ipv4_mapped(f.nw_dst))
            } else {
                McastKind::Other
            }
        }
        ethertype::IPV6 => {
            w.nw_proto = 0xff;
            if f.nw_proto == ipproto::ICMPV6 {
                w.tp_src = 0xffff;
                match f.tp_src {
                    130 => return McastKind::Query,
                    131 | 132 => {
                        w.nd_target = [0xff; 16];
                        return if f.tp_src == 131 {
                            McastKind::Join(f.nd_target)
                        } else {
                            McastKind::Leave(f.nd_target)
                        };
                    }
                    143 => return McastKind::Records(true),
                    _ => {}
                }
            }
            w.ipv6_dst = [0xff; 16];
            if f.ipv6_dst[0] == 0xff && f.ipv6_dst[1] & 0x0f == 0x02 {
                McastKind::LinkLocal
            } else if f.ipv6_dst[0] == 0xff {
                McastKind::Data(f.ipv6_dst)
            } else {
                McastKind::Other
            }
        }
        _ => McastKind::Other,
    }
}

fn mcast(ctx: &mut Ctx<'_>, iv: InputVlan, in_port: OfPort, orig: [VlanTag; 2]) {
    let kind = classify(ctx);
    let vlan = iv.vlan;
    let now = ctx.now;
    let report_targets = |ctx: &Ctx<'_>| {
        let mut v = ctx.bridge.mdb().mrouter_ports(vlan, now);
        v.extend(ports_where(ctx, |p| p.config.mcast_flood_reports));
        v
    };
    match kind {
        McastKind::Query => {
            ctx.install = false;
            if ctx.may_learn {
                ctx.bridge.mdb().add_mrouter(vlan, in_port, now);
            }
            ctx.note(format_args!(
                "NORMAL: multicast query: port {in_port} is an mrouter port; flooding"
            ));
            flood(ctx, iv, in_port, orig);
        }
        McastKind::Join(g) | McastKind::Leave(g) => {
            ctx.install = false;
            let join = matches!(kind, McastKind::Join(_));
            if ctx.may_learn {
                let mut mdb = ctx.bridge.mdb();
                if join {
                    mdb.join(g, vlan, in_port, now);
                } else {
                    mdb.leave(g, vlan, in_port);
                }
            }
            let g = super::mcast_snooping::fmt_group(&g);
            ctx.note(format_args!(
                "NORMAL: {} {g}: forwarding to mrouter ports",
                if join { "report for" } else { "leave from" }
            ));
            let t = report_targets(ctx);
            output_set(ctx, t, iv, in_port, orig);
        }
        McastKind::Records(v6) => {
            ctx.install = false;
            if ctx.may_learn {
                let recs = ctx.packet.map(|p| {
                    if v6 {
                        mldv2_records(p)
                    } else {
                        igmpv3_records(p)
                    }
                });
                match recs {
                    Some(Ok(recs)) => {
                        let mut mdb = ctx.bridge.mdb();
                        for r in &recs {
                            if r.leave {
                                mdb.leave(r.group, vlan, in_port);
                            } else {
                                mdb.join(r.group, vlan, in_port, now);
                            }
                        }
                    }
                    Some(Err(e)) => ctx.note(format_args!(
                        "NORMAL: unreadable report ({e}): membership unchanged"
                    )),
                    None => ctx.note(format_args!(
                        "NORMAL: no packet bytes: membership unchanged"
                    )),
                }
            }
            ctx.note(format_args!(
                "NORMAL: v3/v2 report: forwarding to mrouter ports"
            ));
            let t = report_targets(ctx);
            output_set(ctx, t, iv, in_port, orig);
        }
        McastKind::Data(g) => {
            let members = ctx.bridge.mdb().members(&g, vlan, now);
            let mut targets = ctx.bridge.mdb().mrouter_ports(vlan, now);
            targets.extend(ports_where(ctx, |p| p.config.mcast_flood));
            let gs = super::mcast_snooping::fmt_group(&g);
            match members {
                Some(m) => {
                    ctx.note(format_args!(
                        "NORMAL: group {gs}: to members {m:?} and mrouters"
                    ));
                    targets.extend(m);
                    output_set(ctx, targets, iv, in_port, orig);
                }
                None if ctx.bridge.mcast_config().disable_flood_unregistered => {
                    ctx.note(format_args!(
                        "NORMAL: unregistered group {gs}: mrouter and flood ports only"
                    ));
                    output_set(ctx, targets, iv, in_port, orig);
                }
                None => {
                    ctx.note(format_args!("NORMAL: unregistered group {gs}: flooding"));
                    flood(ctx, iv, in_port, orig);
                }
            }
        }
        McastKind::LinkLocal | McastKind::Other => {
            ctx.note(format_args!(
                "NORMAL: link-local or non-IP multicast: flooding"
            ));
            flood(ctx, iv, in_port, orig);
        }
    }
}
