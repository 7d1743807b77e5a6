//! A cap on a datapath's megaflows, enforced where they are installed: the translator
//! still answers every miss, but past the cap its answer is executed without installing
//! a megaflow (OVS's `flow-limit`). The kernel datapath needs it: its flow table grows
//! with every distinct flow, so traffic crafted to miss (a scan, random addresses)
//! would otherwise grow kernel memory and the revalidator's work without bound. The
//! userspace datapath's threads cap their own tables (`max_flows`) and need none.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How old the datapath's flow count may be before `admit` asks for it again: asking
/// costs a round trip to the kernel, and installs in between are counted here.
pub const RECOUNT_AFTER: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct FlowCount {
    counted_at: Option<Instant>,
    flows: u64,
    /// Whether the last decision refused (so a change of state is logged once).
    full: bool,
}

/// The cap and the count it is judged against.
#[derive(Debug)]
pub struct FlowLimit {
    limit: u64,
    count: Mutex<FlowCount>,
    refused: AtomicU64,
}

impl FlowLimit {
    /// A cap of `limit` megaflows.
    pub fn new(limit: usize) -> FlowLimit {
        FlowLimit {
            limit: limit as u64,
            count: Mutex::new(FlowCount::default()),
            refused: AtomicU64::new(0),
        }
    }

    /// The cap.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Megaflows refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Whether one more megaflow may be installed at `now`; an admitted one is counted.
    /// `recount` asks the datapath how many it holds (called when the count is older
    /// than `RECOUNT_AFTER`; `None` keeps the old count).
    pub fn admit(&self, now: Instant, recount: impl FnOnce() -> Option<u64>) -> bool {
        let mut c = self.count.lock().unwrap_or_else(|e| e.into_inner());
        let stale = c
            .counted_at
            .map_or(true, |t| now.saturating_duration_since(t) >= RECOUNT_AFTER);
        if stale {
            if let Some(n) = recount() {
                c.flows = n;
                c.counted_at = Some(now);
            }
        }
        if c.flows >= self.limit {
            self.refused.fetch_add(1, Ordering::Relaxed);
            if !c.full {
                c.full = true;
                tracing::warn!(
                    limit = self.limit,
                    "datapath flow limit reached (max_flows): misses are forwarded \
                     without installing megaflows until flows expire"
                );
            }
            return false;
        }
        if c.full {
            c.full = false;
            tracing::info!(
                limit = self.limit,
                flows = c.flows,
                "datapath below its flow limit again: installing megaflows"
            );
        }
        c.flows += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_stop_at_the_cap_and_resume_once_the_datapath_has_room() {
        let l = FlowLimit::new(2);
        let t0 = Instant::now();
        // The first decision counts the datapath; later ones count their own installs.
        assert!(l.admit(t0, || Some(0)));
        assert!(l.admit(t0, || panic!("the count is fresh")));
        assert!(!l.admit(t0, || panic!("the count is fresh")));
        assert_eq!(l.refused(), 1);
        // Flows expired meanwhile: the next recount makes room.
        let later = t0 + RECOUNT_AFTER;
        assert!(l.admit(later, || Some(1)));
        assert!(!l.admit(later, || Some(0)), "fresh again: no recount");
        // A failed recount keeps the old count and its age.
        assert!(!l.admit(later + RECOUNT_AFTER, || None));
        assert!(l.admit(later + RECOUNT_AFTER, || Some(0)));
        assert_eq!((l.refused(), l.limit()), (3, 2));
    }
}
