//! `memory/show`: how much of each kind of state the switch holds, on one line of
//! `key:count` pairs in key order as OVS's `memory/show` prints them, so that an operator
//! watching a long-running switch for growth (rules, megaflows, tracked flows, frames)
//! can compare two readings with `diff`.

use std::collections::BTreeMap;

use crate::config::DatapathType;
use crate::packet::frames::FrameStore;

use super::datapaths::KERNEL_UPCALL_HANDLERS;
use super::dpctl::targets;
use super::switch::Switch;

/// The pairs, in key order, joined by spaces (OVS's layout).
pub(super) fn format_counts(counts: &BTreeMap<&'static str, u64>) -> String {
    let pairs: Vec<String> = counts.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("{}\n", pairs.join(" "))
}

/// `memory/show`. Keys OVS prints mean the same here: `handlers` (threads translating
/// the kernel datapath's upcalls; the userspace datapath's threads translate their own),
/// `ports`, `revalidators`, `rules` (OpenFlow rules of every bridge) and `udpif keys`
/// (megaflows the revalidators track). Ours besides: `bridges`, `megaflows` (installed
/// in the datapaths now), and for AF_XDP the frame region's `afxdp_frames` with
/// `afxdp_frames_free`.
pub(super) fn memory_show(switch: &Switch) -> Result<String, String> {
    let mut c: BTreeMap<&'static str, u64> = BTreeMap::new();
    let bridges = switch.ofprotos(None).map_err(|e| e.to_string())?;
    c.insert("bridges", bridges.len() as u64);
    c.insert(
        "ports",
        bridges.iter().map(|b| b.ports().len() as u64).sum(),
    );
    c.insert(
        "rules",
        bridges.iter().map(|b| b.rules().len() as u64).sum(),
    );
    // No datapath yet (no bridge): every count below is 0.
    let datapaths = targets(switch, None).unwrap_or_default();
    let (mut megaflows, mut keys, mut revalidators) = (0, 0, 0);
    for t in &datapaths {
        megaflows += t.stats("memory/show")?.n_flows;
        let s = t.backer.upcall_summary();
        keys += s.keys as u64;
        revalidators += u64::from(s.revalidator_tid.is_some());
    }
    let kernel = datapaths.iter().any(|t| t.kind == DatapathType::Kernel);
    let handlers = if kernel { KERNEL_UPCALL_HANDLERS } else { 0 };
    c.insert("handlers", handlers as u64);
    c.insert("megaflows", megaflows);
    c.insert("revalidators", revalidators);
    c.insert("udpif keys", keys);
    if let Some(store) = FrameStore::existing() {
        c.insert("afxdp_frames", u64::from(store.n_frames()));
        c.insert("afxdp_frames_free", store.free_frames() as u64);
    }
    Ok(format_counts(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_come_in_key_order_on_one_line() {
        let c = BTreeMap::from([("rules", 5), ("handlers", 1), ("udpif keys", 2)]);
        assert_eq!(format_counts(&c), "handlers:1 rules:5 udpif keys:2\n");
    }
}
