//! The control commands that act on the switch, registered on the control socket.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::appctl::{CommandRegistry, CommandResult};

use super::state::RuntimeChange;
use super::switch::{Switch, SwitchError};

fn done(r: Result<(), SwitchError>) -> CommandResult {
    r.map(|()| String::new()).map_err(|e| e.to_string())
}

/// Registers the bridge, port, flow and datapath commands on `registry`.
pub fn register_commands(registry: &mut CommandRegistry, switch: Arc<Switch>) {
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
        usize::MAX,
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
    registry.register("dpif/show", "", 0, 0, move |_| Ok(dpif_show(&s)));
}

/// `dpif/show`: each datapath with its counters, then each bridge's ports.
fn dpif_show(switch: &Switch) -> String {
    let inner = switch.lock();
    let mut out = String::new();
    for (kind, dp) in &inner.datapaths {
        match dp.stats() {
            Ok(st) => {
                let _ = writeln!(
                    out,
                    "{}@{}: hit:{} missed:{} lost:{} flows:{}",
                    kind.as_str(),
                    dp.name(),
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
                    dp.name()
                );
            }
        }
        for (name, b) in inner
            .bridges
            .iter()
            .filter(|(_, b)| b.config.datapath == *kind)
        {
            let _ = writeln!(out, "  {name}:");
            let mut ports: Vec<(String, u32)> =
                b.ports.iter().map(|(n, p)| (n.clone(), *p)).collect();
            if let Some(local) = b.local_port {
                ports.push((name.clone(), local));
            }
            ports.sort_by_key(|(_, p)| *p);
            for (pname, odp) in ports {
                match dp.port_query_by_number(odp) {
                    Ok(p) => {
                        let _ = writeln!(
                            out,
                            "    {pname} {odp}: ({}) rx:{} tx:{} rx_dropped:{} tx_dropped:{}",
                            p.port_type,
                            p.stats.rx_packets,
                            p.stats.tx_packets,
                            p.stats.rx_dropped,
                            p.stats.tx_dropped
                        );
                    }
                    Err(e) => {
                        let _ = writeln!(out, "    {pname} {odp}: {e}");
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
