//! `upcall/show`: each datapath's megaflow count against its limit and what its
//! revalidator's passes found, in the layout of OVS's `upcall/show`, so that an operator
//! who watches flow counts and dump durations there reads ours the same way.

use std::fmt::Write as _;

use crate::ofproto::UpcallSummary;

use super::dpctl::targets;
use super::switch::Switch;

/// One datapath's block of `upcall/show`.
///
/// `limit` is how many megaflows the datapath takes before upcalls stop installing
/// more (`max_flows` for each of the userspace datapath's threads, or for the whole
/// kernel datapath); "none" for a datapath without one. Flow identifiers are the
/// masked key here, never a UFID, hence "ufid enabled : false". `current` is counted
/// now and the rest at the revalidator's last pass, so "max" takes `current` in too:
/// the most ever seen is never below what is there now.
pub(super) fn format_block(
    label: &str,
    current: u64,
    limit: Option<u64>,
    s: &UpcallSummary,
) -> String {
    let limit = limit.map_or_else(|| "none".to_string(), |l| l.to_string());
    let h = &s.history;
    let mut out = String::new();
    let _ = writeln!(out, "{label}:");
    let _ = writeln!(
        out,
        "  flows         : (current {current}) (avg {}) (max {}) (limit {limit})",
        h.avg_flows,
        h.max_flows.max(current)
    );
    let _ = writeln!(out, "  dump duration : {}ms", h.last_duration.as_millis());
    let _ = writeln!(out, "  ufid enabled : false");
    if let Some(tid) = s.revalidator_tid {
        let _ = writeln!(out, "\n  {tid}: (keys {})", s.keys);
    }
    out
}

/// `upcall/show`: a block per datapath, in the order `dpif/show` lists them.
pub(super) fn upcall_show(switch: &Switch) -> Result<String, String> {
    let mut out = String::new();
    for t in targets(switch, None)? {
        let label = t.label();
        // One flow table per thread: the PMDs and the thread serving the ports no PMD
        // polls.
        let limit = match &t.netdev {
            Some(nd) => {
                let c = nd.config();
                Some((c.max_flows * (c.pmd_cores.len() + 1)) as u64)
            }
            None => t.backer.flow_limit().map(|l| l.limit()),
        };
        let current = t.stats("upcall/show")?.n_flows;
        let summary = t.backer.upcall_summary();
        out.push_str(&format_block(&label, current, limit, &summary));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ofproto::DumpHistory;

    #[test]
    fn a_block_reads_like_open_vswitch_s() {
        let mut history = DumpHistory::default();
        history.record(4, Duration::from_millis(2));
        history.record(2, Duration::from_millis(1));
        let s = UpcallSummary {
            history,
            keys: 2,
            revalidator_tid: Some(4242),
        };
        assert_eq!(
            format_block("netdev@ovs-netdev", 2, Some(131072), &s),
            "netdev@ovs-netdev:\n  \
             flows         : (current 2) (avg 3) (max 4) (limit 131072)\n  \
             dump duration : 1ms\n  \
             ufid enabled : false\n\n  \
             4242: (keys 2)\n"
        );
        let quiet = UpcallSummary::default();
        let kernel = format_block("kernel@ovs-system", 0, None, &quiet);
        assert!(kernel.contains("(limit none)\n"), "{kernel}");
        let grown = format_block("netdev@ovs-netdev", 9, Some(1), &s);
        assert!(grown.contains("(current 9) (avg 3) (max 9)"), "{grown}");
        assert!(
            !kernel.contains("keys"),
            "no thread, no keys line: {kernel}"
        );
    }
}
