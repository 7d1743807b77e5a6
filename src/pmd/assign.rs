//! Which poll thread serves which rx queue.
//!
//! Two policies, as in OVS's `pmd-rxq-assign`: `RoundRobin` deals queues out in port/queue
//! order, `Cycles` sorts queues by the processing cycles measured on them and gives each to
//! the PMD with the least load so far, so two busy queues end up on different cores.

use serde::{Deserialize, Serialize};

use crate::packet::OdpPort;

/// The rx queue assignment policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RxqAssignPolicy {
    /// Deal queues out in order, ignoring load.
    RoundRobin,
    /// Balance by measured processing cycles (OVS's default).
    #[default]
    Cycles,
}

impl std::str::FromStr for RxqAssignPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "roundrobin" | "round-robin" => Ok(RxqAssignPolicy::RoundRobin),
            "cycles" => Ok(RxqAssignPolicy::Cycles),
            other => Err(format!(
                "unknown rxq assignment '{other}' (expected roundrobin or cycles)"
            )),
        }
    }
}

/// One rx queue and its measured load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxqLoad {
    /// Port the queue belongs to.
    pub port: OdpPort,
    /// Queue index on the port.
    pub qid: usize,
    /// Processing cycles measured since the last assignment.
    pub cycles: u64,
}

/// The result of an assignment: `pmd_of[i]` is the PMD index for `rxqs[i]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxqAssignment {
    /// PMD index per input queue, in input order.
    pub pmd_of: Vec<usize>,
}

impl RxqAssignment {
    /// Assigns every queue of `rxqs` to one of `n_pmds` PMDs (`n_pmds` must be > 0).
    /// `base_load` gives loads already on each PMD (pass an empty slice for a full
    /// reassignment); it lets a new port be placed without moving existing queues.
    pub fn compute(
        policy: RxqAssignPolicy,
        rxqs: &[RxqLoad],
        n_pmds: usize,
        base_load: &[(u64, usize)],
    ) -> RxqAssignment {
        assert!(n_pmds > 0, "rxq assignment needs at least one PMD");
        // (cycles, queue count) per PMD
        let mut load: Vec<(u64, usize)> = (0..n_pmds)
            .map(|i| base_load.get(i).copied().unwrap_or((0, 0)))
            .collect();
        let mut pmd_of = vec![0; rxqs.len()];
        let mut order: Vec<usize> = (0..rxqs.len()).collect();
        match policy {
            RxqAssignPolicy::RoundRobin => {
                order.sort_by_key(|&i| (rxqs[i].port, rxqs[i].qid));
                for i in order {
                    // Fewest queues first, lowest index on ties: a round robin that also
                    // continues sensibly from an existing assignment.
                    let p = (0..n_pmds).min_by_key(|&p| (load[p].1, p)).unwrap_or(0);
                    load[p].1 += 1;
                    pmd_of[i] = p;
                }
            }
            RxqAssignPolicy::Cycles => {
                order.sort_by(|&a, &b| {
                    rxqs[b]
                        .cycles
                        .cmp(&rxqs[a].cycles)
                        .then((rxqs[a].port, rxqs[a].qid).cmp(&(rxqs[b].port, rxqs[b].qid)))
                });
                for i in order {
                    let p = (0..n_pmds)
                        .min_by_key(|&p| (load[p].0, load[p].1, p))
                        .unwrap_or(0);
                    load[p].0 += rxqs[i].cycles;
                    load[p].1 += 1;
                    pmd_of[i] = p;
                }
            }
        }
        RxqAssignment { pmd_of }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(port: u32, qid: usize, cycles: u64) -> RxqLoad {
        RxqLoad { port, qid, cycles }
    }

    #[test]
    fn round_robin_deals_in_order() {
        let a = RxqAssignment::compute(
            RxqAssignPolicy::RoundRobin,
            &[q(2, 0, 0), q(1, 1, 0), q(1, 0, 0)],
            2,
            &[],
        );
        assert_eq!(a.pmd_of, vec![0, 1, 0]); // order: (1,0)->0, (1,1)->1, (2,0)->0
    }

    #[test]
    fn cycles_separates_busy_queues() {
        let a = RxqAssignment::compute(
            RxqAssignPolicy::Cycles,
            &[q(1, 0, 1000), q(1, 1, 900), q(2, 0, 10), q(2, 1, 5)],
            2,
            &[],
        );
        assert_ne!(a.pmd_of[0], a.pmd_of[1], "the two busy queues share a PMD");
        // Light queues go to the lighter PMD (the one with 900).
        assert_eq!(a.pmd_of[2], a.pmd_of[1]);
    }

    #[test]
    fn new_port_goes_to_least_loaded() {
        let a = RxqAssignment::compute(
            RxqAssignPolicy::Cycles,
            &[q(3, 0, 0)],
            2,
            &[(500, 1), (100, 1)],
        );
        assert_eq!(a.pmd_of, vec![1]);
    }
}
