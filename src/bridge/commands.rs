//! The control commands that act on the switch, registered on the control socket.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::appctl::{CommandRegistry, CommandResult};
use crate::dpif::PortStats;
use crate::dpif_netdev::DpifNetdev;
use crate::ofproto::Ofproto;

use super::state::RuntimeChange;
use super::switch::{Switch, SwitchError};

fn done(r: Result<(), SwitchError>) -> CommandResult {
    r.map(|()| String::new()).map_err(|e| e.to_string())
}

fn netdev(switch: &Switch) -> Result<Arc<DpifNetdev>, String> {
    switch.netdev_datapath().ok_or_else(|| {
        "no userspace datapath is running (no bridge with datapath=netdev)".to_string()
    })
}

/// Registers a userspace-datapath command under its name and under Open vSwitch's
/// (`dpif-netdev/<name>`), so `ovs-appctl dpif-netdev/pmd-stats-show` habits carry over.
fn register_pmd(
    registry: &mut CommandRegistry,
    switch: &Arc<Switch>,
    name: &str,
    f: fn(&DpifNetdev) -> Result<String, String>,
) {
    for full in [name.to_string(), format!("dpif-netdev/{name}")] {
        let s = switch.clone();
        registry.register(&full, "", 0, 0, move |_| f(&*netdev(&s)?));
    }
}

/// Re-translates every installed megaflow before a command that changed the fdb or mdb
/// replies, so that what the operator asked for is what the datapath does when the
/// reply arrives, not up to a revalidator period later.
fn revalidate_now(switch: &Switch) {
    for b in switch.backers() {
        b.revalidate_all();
    }
}

/// What a `[BR]` command does to each bridge, and what it replies.
struct PerBridge {
    apply: fn(&Ofproto),
    /// Whether forwarding can change, so installed megaflows are revalidated first.
    revalidate: bool,
    /// Open vSwitch's reply, word for word (scripts check it).
    reply: &'static str,
}

/// Registers a `[BR]` command (`fdb/flush`, `mdb/flush`, `fdb/stats-clear`): `what.apply`
/// on bridge BR, or on every bridge when none is named.
fn register_per_bridge(
    registry: &mut CommandRegistry,
    switch: &Arc<Switch>,
    name: &str,
    what: PerBridge,
) {
    let s = switch.clone();
    registry.register(name, "[BR]", 0, 1, move |a| {
        let bridges = s
            .ofprotos(a.first().map(String::as_str))
            .map_err(|e| e.to_string())?;
        bridges.iter().for_each(|o| (what.apply)(o));
        if what.revalidate {
            revalidate_now(&s);
        }
        Ok(what.reply.to_string())
    });
}

/// Registers the bridge, port, flow and datapath commands on `registry`.
pub fn register_commands(registry: &mut CommandRegistry, switch: Arc<Switch>) {
    register_changes(registry, &switch);
    register_views(registry, &switch);
    super::tnl_commands::register(registry, &switch);
}

fn register_changes(registry: &mut CommandRegistry, switch: &Arc<Switch>) {
    let s = switch.clone();
    registry.register("add-br", "BR [datapath=netdev|kernel]", 1, 2, move |a| {
        let datapath = match a.get(1) {
            None => "netdev".to_string(),
            Some(arg) => match arg.split_once('=') {
                Some(("datapath", v)) => v.to_string(),
                _ => {
                    return Err(format!(
                        "'{arg}': expected datapath=netdev or datapath=kernel"
                    ))
                }
            },
        };
        done(s.change(RuntimeChange::AddBridge {
            bridge: a[0].clone(),
            datapath,
        }))
    });
    let s = switch.clone();
    registry.register("del-br", "BR", 1, 1, move |a| {
        done(s.change(RuntimeChange::DelBridge {
            bridge: a[0].clone(),
        }))
    });
    let s = switch.clone();
    registry.register(
        "add-port",
        "BR PORT [type=afxdp|afpacket|tap|internal|vxlan|geneve|gre|dummy] [tag=N] [vlan_mode=M] [trunks=A,B] [OPTION=VALUE...]",
        2,
        64,
        move |a| {
            done(s.change(RuntimeChange::AddPort {
                bridge: a[0].clone(),
                port: a[1].clone(),
                args: a[2..].to_vec(),
            }))
        },
    );
    let s = switch.clone();
    registry.register("del-port", "BR PORT", 2, 2, move |a| {
        done(s.change(RuntimeChange::DelPort {
            bridge: a[0].clone(),
            port: a[1].clone(),
        }))
    });
    let s = switch.clone();
    registry.register("add-flow", "BR FLOW", 2, 2, move |a| {
        done(s.change(RuntimeChange::AddFlow {
            bridge: a[0].clone(),
            flow: a[1].clone(),
        }))
    });
    let s = switch.clone();
    registry.register("del-flows", "BR [MATCH]", 1, 2, move |a| {
        done(s.change(RuntimeChange::DelFlows {
            bridge: a[0].clone(),
            matching: a.get(1).cloned(),
        }))
    });
}

fn register_views(registry: &mut CommandRegistry, switch: &Arc<Switch>) {
    let s = switch.clone();
    registry.register("dump-flows", "BR", 1, 1, move |a| {
        Ok(s.ofproto(&a[0]).map_err(|e| e.to_string())?.dump_flows())
    });
    let s = switch.clone();
    registry.register("fdb/show", "BR", 1, 1, move |a| {
        Ok(s.ofproto(&a[0]).map_err(|e| e.to_string())?.fdb_show())
    });
    let s = switch.clone();
    registry.register("mdb/show", "BR", 1, 1, move |a| {
        Ok(s.ofproto(&a[0]).map_err(|e| e.to_string())?.mdb_show())
    });
    for (name, apply) in [
        ("fdb/flush", Ofproto::fdb_flush as fn(&Ofproto)),
        ("mdb/flush", Ofproto::mdb_flush),
    ] {
        let what = PerBridge {
            apply,
            revalidate: true,
            reply: "table successfully flushed\n",
        };
        register_per_bridge(registry, switch, name, what);
    }
    let what = PerBridge {
        apply: Ofproto::fdb_stats_clear,
        revalidate: false,
        reply: "statistics successfully cleared\n",
    };
    register_per_bridge(registry, switch, "fdb/stats-clear", what);
    let s = switch.clone();
    registry.register("fdb/add", "BR PORT VLAN MAC", 4, 4, move |a| {
        let o = s.ofproto(&a[0]).map_err(|e| e.to_string())?;
        o.fdb_add(&a[1], &a[2], &a[3]).map_err(|e| e.to_string())?;
        revalidate_now(&s);
        Ok(String::new())
    });
    let s = switch.clone();
    registry.register("fdb/del", "BR VLAN MAC", 3, 3, move |a| {
        let o = s.ofproto(&a[0]).map_err(|e| e.to_string())?;
        o.fdb_del(&a[1], &a[2]).map_err(|e| e.to_string())?;
        revalidate_now(&s);
        Ok(String::new())
    });
    let s = switch.clone();
    registry.register("fdb/stats-show", "BR", 1, 1, move |a| {
        Ok(s.ofproto(&a[0])
            .map_err(|e| e.to_string())?
            .fdb_stats_show())
    });
    let s = switch.clone();
    registry.register("ofproto/trace", "BR FLOW", 2, 2, move |a| {
        s.ofproto(&a[0])
            .map_err(|e| e.to_string())?
            .trace(&a[1])
            .map_err(|e| e.to_string())
    });
    register_pmd(registry, switch, "pmd-stats-show", |dp| {
        Ok(dp.pmd_stats_show())
    });
    register_pmd(registry, switch, "pmd-stats-clear", |dp| {
        dp.pmd_stats_clear();
        Ok(String::new())
    });
    register_pmd(registry, switch, "pmd-rxq-show", |dp| Ok(dp.pmd_rxq_show()));
    register_pmd(registry, switch, "pmd-rxq-rebalance", |dp| {
        dp.rxq_rebalance().map_err(|e| e.to_string())?;
        Ok(dp.pmd_rxq_show())
    });
    let s = switch.clone();
    registry.register(
        "dpctl/dump-flows",
        "[netdev|kernel|TYPE@NAME]",
        0,
        1,
        move |a| super::dpctl::dump_flows(&s, a.first().map(String::as_str)),
    );
    let s = switch.clone();
    registry.register(
        "dpctl/show",
        "[-s] [netdev|kernel|TYPE@NAME]",
        0,
        2,
        move |a| super::dpctl::show(&s, a),
    );
    let s = switch.clone();
    registry.register(
        "dpctl/del-flows",
        "[netdev|kernel|TYPE@NAME]",
        0,
        1,
        move |a| super::dpctl::del_flows(&s, a.first().map(String::as_str)),
    );
    let s = switch.clone();
    registry.register("dpif/show", "", 0, 0, move |_| Ok(dpif_show(&s)));
    let s = switch.clone();
    registry.register("upcall/show", "", 0, 0, move |_| {
        super::upcall_show::upcall_show(&s)
    });
    let s = switch.clone();
    registry.register("memory/show", "", 0, 0, move |_| {
        super::memory_show::memory_show(&s)
    });
}

/// Why received frames were dropped, where the port can tell (" (no_buffer:N
/// queue_full:N)"), so that an operator sees whether the poll thread stopped or fell
/// behind; empty when neither happened.
fn rx_drop_causes(st: &PortStats) -> String {
    if st.rx_no_buffer == 0 && st.rx_queue_full == 0 {
        return String::new();
    }
    format!(
        " (no_buffer:{} queue_full:{})",
        st.rx_no_buffer, st.rx_queue_full
    )
}

/// How many of a port's sent packets it copied first (`PortStats::tx_copied`), for
/// `dpif/show`; nothing for a port that copied none.
fn tx_copies(st: &PortStats) -> String {
    if st.tx_copied == 0 {
        return String::new();
    }
    format!(" (copied:{})", st.tx_copied)
}

/// `dpif/show`: each datapath with its counters, then each bridge's ports as
/// `name ofport/dp_port: (type)`, as OVS prints them.
fn dpif_show(switch: &Switch) -> String {
    let inner = switch.lock();
    let mut out = String::new();
    for (kind, dp) in &inner.datapaths {
        let dpif = &dp.dpif;
        match dpif.stats() {
            Ok(st) => {
                let _ = writeln!(
                    out,
                    "{}@{}: hit:{} missed:{} lost:{} flows:{}",
                    kind.as_str(),
                    dpif.name(),
                    st.n_hit,
                    st.n_missed,
                    st.n_lost,
                    st.n_flows
                );
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "{}@{}: stats unavailable: {e}",
                    kind.as_str(),
                    dpif.name()
                );
            }
        }
        for (name, b) in inner
            .bridges
            .iter()
            .filter(|(_, b)| b.config.datapath == *kind)
        {
            let _ = writeln!(out, "  {name}:");
            for p in b.ofproto.ports().iter() {
                match dpif.port_query_by_number(p.dp_port) {
                    Ok(dpp) => {
                        let st = &dpp.stats;
                        let _ = writeln!(
                            out,
                            "    {} {}/{}: ({}) rx:{} tx:{}{} rx_dropped:{}{} tx_dropped:{}",
                            p.name,
                            p.ofport,
                            p.dp_port,
                            dpp.port_type,
                            st.rx_packets,
                            st.tx_packets,
                            tx_copies(st),
                            st.rx_dropped,
                            rx_drop_causes(st),
                            st.tx_dropped
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(out, "    {} {}/{}: {e}", p.name, p.ofport, p.dp_port);
                    }
                }
            }
        }
    }
    if out.is_empty() {
        out.push_str("no datapaths (no bridges configured)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_drop_causes_appear_once_there_are_any() {
        assert_eq!(rx_drop_causes(&PortStats::default()), "");
        let st = PortStats {
            rx_dropped: 7,
            rx_no_buffer: 5,
            rx_queue_full: 2,
            ..PortStats::default()
        };
        assert_eq!(rx_drop_causes(&st), " (no_buffer:5 queue_full:2)");
        // Drops the port cannot attribute (malformed frames) name no cause.
        let st = PortStats {
            rx_dropped: 3,
            ..PortStats::default()
        };
        assert_eq!(rx_drop_causes(&st), "");
    }

    #[test]
    fn tx_copies_appear_once_there_are_any() {
        assert_eq!(tx_copies(&PortStats::default()), "");
        let st = PortStats {
            tx_packets: 9,
            tx_copied: 4,
            ..PortStats::default()
        };
        assert_eq!(tx_copies(&st), " (copied:4)");
    }
}
