//! `dpctl/show`, `dpctl/dump-flows` and `dpctl/del-flows` over every datapath the switch
//! has, as `ovs-dpctl` and OVS's `dpctl/*` commands print them. In a flow dump the
//! userspace datapath prints its per-thread dump and the kernel one its megaflows as the
//! module reports them (with the module's own packet/byte counters), both in OVS's
//! datapath flow syntax.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use crate::config::DatapathType;
use crate::dpif::dump_text::format_dp_flow;
use crate::dpif::{DpPort, DpStats, Dpif};
use crate::dpif_netdev::DpifNetdev;
use crate::ofproto::Backer;

use super::switch::Switch;

/// One datapath as a control command sees it (see `targets`): `dpctl/*`,
/// `upcall/show` and `memory/show`.
pub(super) struct DatapathView {
    pub(super) kind: DatapathType,
    pub(super) dpif: Arc<dyn Dpif>,
    pub(super) netdev: Option<Arc<DpifNetdev>>,
    pub(super) backer: Arc<Backer>,
}

impl DatapathView {
    /// `TYPE@NAME`, as `dpif/show` and OVS print a datapath.
    pub(super) fn label(&self) -> String {
        format!("{}@{}", self.kind.as_str(), self.dpif.name())
    }

    /// The datapath's counters, or an error naming the command and the datapath.
    pub(super) fn stats(&self, command: &str) -> Result<DpStats, String> {
        self.dpif
            .stats()
            .map_err(|e| format!("{command}: {}: {e}", self.label()))
    }

    fn dump(&self) -> Result<String, String> {
        if let Some(nd) = &self.netdev {
            return Ok(nd.dump_flows_text());
        }
        let flows = self
            .dpif
            .flow_dump()
            .map_err(|e| format!("dpctl/dump-flows: {}: {e}", self.label()))?;
        let now = Instant::now();
        let mut out = String::new();
        for f in &flows {
            let _ = writeln!(out, "{}", format_dp_flow(f, now));
        }
        Ok(out)
    }
}

/// The datapaths a `dpctl/*` command names: `DP` (`netdev`, `kernel`, or `TYPE@NAME` as
/// `dpif/show` prints it), or every datapath when none is named. Taken out of the switch
/// lock, so that what the command then does (waiting on PMD threads or the kernel) never
/// runs under it.
pub(super) fn targets(switch: &Switch, only: Option<&str>) -> Result<Vec<DatapathView>, String> {
    let all: Vec<DatapathView> = {
        let inner = switch.lock();
        inner
            .datapaths
            .iter()
            .map(|(kind, dp)| DatapathView {
                kind: *kind,
                dpif: dp.dpif.clone(),
                netdev: dp.netdev.clone(),
                backer: dp.backer.clone(),
            })
            .collect()
    };
    if all.is_empty() {
        return Err("no datapaths (no bridges configured)".to_string());
    }
    let Some(want) = only else {
        return Ok(all);
    };
    let have: Vec<String> = all.iter().map(DatapathView::label).collect();
    let hit: Vec<DatapathView> = all
        .into_iter()
        .filter(|t| t.kind.as_str() == want || t.label() == want)
        .collect();
    if hit.is_empty() {
        return Err(format!(
            "no datapath '{want}' (this switch has {})",
            have.join(", ")
        ));
    }
    Ok(hit)
}

/// `dpctl/dump-flows [DP]`: the flows of the datapath `DP`, or of every datapath when
/// none is named. With more than one datapath each dump is headed by `TYPE@NAME:`.
pub(super) fn dump_flows(switch: &Switch, only: Option<&str>) -> Result<String, String> {
    let chosen = targets(switch, only)?;
    if chosen.len() == 1 {
        return chosen[0].dump();
    }
    let mut out = String::new();
    for t in &chosen {
        let _ = writeln!(out, "{}:", t.label());
        out.push_str(&t.dump()?);
    }
    Ok(out)
}

/// `dpctl/del-flows [DP]`: removes every flow of the datapath `DP`, or of every datapath
/// when none is named, as `ovs-dpctl del-flows` does: traffic goes up to the translator
/// again and installs what the flow tables say now. Prints nothing on success, as OVS
/// does; the first datapath that refuses is named in the error.
pub(super) fn del_flows(switch: &Switch, only: Option<&str>) -> Result<String, String> {
    for t in targets(switch, only)? {
        t.dpif
            .flow_flush()
            .map_err(|e| format!("dpctl/del-flows: {}: {e}", t.label()))?;
        tracing::info!(datapath = %t.label(), "datapath flows deleted (dpctl/del-flows)");
    }
    Ok(String::new())
}

/// `dpctl/show [-s] [DP]`: each datapath (or the one named) with its lookup, flow and
/// mask counters and its ports, in `ovs-dpctl show`'s layout, so an operator's habits
/// and scripts carry over; `-s` adds each port's counters.
pub(super) fn show(switch: &Switch, args: &[String]) -> Result<String, String> {
    let (stats, rest): (Vec<&String>, Vec<&String>) = args.iter().partition(|a| *a == "-s");
    if rest.len() > 1 {
        return Err(format!(
            "dpctl/show takes at most one datapath, got {}",
            rest.len()
        ));
    }
    let mut out = String::new();
    for t in targets(switch, rest.first().map(|s| s.as_str()))? {
        let st = t.stats("dpctl/show")?;
        let ports = t
            .dpif
            .port_dump()
            .map_err(|e| format!("dpctl/show: {}: {e}", t.label()))?;
        let lookups = st.n_hit + st.n_missed;
        let per_pkt = if lookups == 0 {
            0.0
        } else {
            st.n_mask_hit as f64 / lookups as f64
        };
        let _ = writeln!(out, "{}:", t.label());
        let _ = writeln!(
            out,
            "  lookups: hit:{} missed:{} lost:{}",
            st.n_hit, st.n_missed, st.n_lost
        );
        let _ = writeln!(out, "  flows: {}", st.n_flows);
        let _ = writeln!(
            out,
            "  masks: hit:{} total:{} hit/pkt:{per_pkt:.2}",
            st.n_mask_hit, st.n_masks
        );
        for p in &ports {
            port_lines(&mut out, t.kind, p, !stats.is_empty());
        }
    }
    Ok(out)
}

/// One port of `dpctl/show`: `port N: NAME (TYPE)`, and with `-s` its counters in the
/// lines `ovs-dpctl show -s` prints (the fields a port here cannot count print 0).
fn port_lines(out: &mut String, kind: DatapathType, p: &DpPort, stats: bool) {
    // On the kernel datapath every port but the internal and tunnel ones is the
    // module's netdev vport, whatever it was added as: OVS's `system` type, which it
    // leaves unprinted.
    let system = !matches!(
        p.port_type.as_str(),
        "internal" | "vxlan" | "geneve" | "gre"
    );
    if kind == DatapathType::Kernel && system {
        let _ = writeln!(out, "  port {}: {}", p.port_no, p.name);
    } else {
        let _ = writeln!(out, "  port {}: {} ({})", p.port_no, p.name, p.port_type);
    }
    if !stats {
        return;
    }
    let s = &p.stats;
    let _ = writeln!(
        out,
        "    RX packets:{} errors:{} dropped:{} overruns:0 frame:0",
        s.rx_packets, s.rx_errors, s.rx_dropped
    );
    let _ = writeln!(
        out,
        "    TX packets:{} errors:{} dropped:{} aborted:0 carrier:0",
        s.tx_packets, s.tx_errors, s.tx_dropped
    );
    let _ = writeln!(out, "    collisions:0");
    let _ = writeln!(out, "    RX bytes:{}  TX bytes:{}", s.rx_bytes, s.tx_bytes);
}
