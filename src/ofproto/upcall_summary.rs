//! What `upcall/show` reports of a backer's revalidator: how many megaflows its passes
//! found (last, running average, most), how long the last pass took, and how many flows
//! it tracks. An operator reads these to see whether the flow table is near its limit
//! and whether revalidation keeps up (OVS's "dump duration": a pass that takes seconds
//! leaves stale flows in place that long).

use std::time::Duration;

/// The revalidator's passes so far, as `record` folds them in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpHistory {
    /// Passes recorded.
    pub passes: u64,
    /// Running average of the flows dumped: each pass halves the weight of the ones
    /// before it (as OVS's `avg`), so it follows a change within a few seconds.
    pub avg_flows: u64,
    /// The most flows any pass dumped.
    pub max_flows: u64,
    /// How long the last pass took: the dump, the re-translations and the changes.
    pub last_duration: Duration,
}

impl DumpHistory {
    /// Folds in one pass that dumped `flows` megaflows in `took`.
    pub fn record(&mut self, flows: usize, took: Duration) {
        let n = flows as u64;
        self.avg_flows = if self.passes == 0 {
            n
        } else {
            (self.avg_flows + n) / 2
        };
        self.max_flows = self.max_flows.max(n);
        self.last_duration = took;
        self.passes += 1;
    }
}

/// One backer's revalidation state for `upcall/show`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpcallSummary {
    /// What the passes found.
    pub history: DumpHistory,
    /// Installed megaflows the revalidator tracks counters for (OVS's "keys").
    pub keys: usize,
    /// The revalidator thread's Linux thread id, once it runs (OVS prints its thread's
    /// id before its keys; ours is the one `top -H` and `perf -t` take).
    pub revalidator_tid: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_halves_older_passes_and_the_maximum_stays() {
        let mut h = DumpHistory::default();
        h.record(100, Duration::from_millis(3));
        assert_eq!((h.avg_flows, h.max_flows), (100, 100));
        h.record(20, Duration::from_millis(1));
        assert_eq!((h.avg_flows, h.max_flows), (60, 100));
        h.record(0, Duration::from_millis(2));
        assert_eq!((h.avg_flows, h.max_flows), (30, 100));
        assert_eq!(h.passes, 3);
        assert_eq!(h.last_duration, Duration::from_millis(2));
    }
}
