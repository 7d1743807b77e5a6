//! `dpctl/dump-flows` over every datapath the switch has: the userspace one prints its
//! per-thread dump, the kernel one its megaflows as the module reports them (with the
//! module's own packet/byte counters), both in OVS's datapath flow syntax so the output
//! reads like `ovs-dpctl dump-flows`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use crate::dpif::dump_text::format_dp_flow;
use crate::dpif::Dpif;
use crate::dpif_netdev::DpifNetdev;

use super::switch::Switch;

/// One datapath as the command sees it, taken out of the switch lock so that the dump
/// (which waits on PMD threads or the kernel) never runs under it.
struct DumpTarget {
    kind: &'static str,
    dpif: Arc<dyn Dpif>,
    netdev: Option<Arc<DpifNetdev>>,
}

impl DumpTarget {
    fn label(&self) -> String {
        format!("{}@{}", self.kind, self.dpif.name())
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

/// `dpctl/dump-flows [DP]`: the flows of the datapath `DP` (`netdev`, `kernel`, or
/// `TYPE@NAME` as `dpif/show` prints it), or of every datapath when none is named. With
/// more than one datapath each dump is headed by `TYPE@NAME:`.
pub(super) fn dump_flows(switch: &Switch, only: Option<&str>) -> Result<String, String> {
    let targets: Vec<DumpTarget> = {
        let inner = switch.lock();
        inner
            .datapaths
            .iter()
            .map(|(kind, dp)| DumpTarget {
                kind: kind.as_str(),
                dpif: dp.dpif.clone(),
                netdev: dp.netdev.clone(),
            })
            .collect()
    };
    if targets.is_empty() {
        return Err("no datapaths (no bridges configured)".to_string());
    }
    let chosen: Vec<&DumpTarget> = match only {
        None => targets.iter().collect(),
        Some(want) => {
            let hit: Vec<&DumpTarget> = targets
                .iter()
                .filter(|t| t.kind == want || t.label() == want)
                .collect();
            if hit.is_empty() {
                let have: Vec<String> = targets.iter().map(DumpTarget::label).collect();
                return Err(format!(
                    "no datapath '{want}' (this switch has {})",
                    have.join(", ")
                ));
            }
            hit
        }
    };
    if chosen.len() == 1 {
        return chosen[0].dump();
    }
    let mut out = String::new();
    for t in chosen {
        let _ = writeln!(out, "{}:", t.label());
        out.push_str(&t.dump()?);
    }
    Ok(out)
}
