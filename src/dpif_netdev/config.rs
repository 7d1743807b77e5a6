//! The userspace datapath's settings, and what they make of a poll thread's idle policy.

use std::time::Duration;

use super::PmdDatapathConfig;
use crate::pmd::{IdlePolicy, RxqAssignPolicy};

/// Configuration of a userspace datapath.
#[derive(Clone, Debug)]
pub struct DpNetdevConfig {
    /// Cores to run PMD threads on, one thread each. Empty: only the non-PMD thread
    /// forwards (useful for tests and tiny hosts).
    pub pmd_cores: Vec<usize>,
    /// EMC insertion: 1 in N megaflow hits inserts (OVS `emc-insert-inv-prob`, default
    /// 100; 1 = always, 0 = EMC disabled).
    pub emc_insert_inv_prob: u32,
    /// Let each thread time its lookups with and without the EMC and bypass the EMC
    /// while the dpcls alone is cheaper (`emc_bypass`; default true). Not in OVS.
    pub emc_auto_bypass: bool,
    /// Megaflows per PMD thread (OVS: 65,536).
    pub max_flows: usize,
    /// How rx queues are spread over PMDs.
    pub rxq_assign: RxqAssignPolicy,
    /// Sustained upcalls per second per thread (0 = unlimited).
    pub upcall_rate: u32,
    /// Upcall burst per thread.
    pub upcall_burst: u32,
    /// Packet buffers preallocated per thread.
    pub pool_size: usize,
    /// Recirculations a packet may go through (OVS: 6).
    pub max_recirc_depth: u32,
    /// How long a control call waits for a thread to answer.
    pub ctl_timeout: Duration,
    /// Microseconds a PMD thread may hold output packets to batch them (OVS
    /// `tx-flush-interval`, default 0: flush every iteration). Fewer, fuller transmit
    /// kicks for up to this much added latency.
    pub tx_flush_interval_us: u32,
    /// Longest a PMD thread sleeps between polls while its load is light, in
    /// microseconds (OVS `pmd-maxsleep`, default 0: always busy-poll).
    pub pmd_max_sleep_us: u32,
    /// Longest a busy-polling PMD thread spins after a light iteration for a fuller next
    /// batch, in microseconds (`sleep::DEFAULT_BATCH_WAIT_US`; 0: poll again at once).
    /// Ignored while `pmd_max_sleep_us` is set: a sleeping PMD batches by sleeping.
    pub pmd_batch_wait_us: u32,
}

impl Default for DpNetdevConfig {
    fn default() -> Self {
        // One PMD on the last core, leaving core 0 to the system, as a starting point.
        let last = crate::pmd::affinity::usable_cores()
            .into_iter()
            .max()
            .unwrap_or(0);
        let per_thread = PmdDatapathConfig::default();
        DpNetdevConfig {
            pmd_cores: vec![last],
            emc_insert_inv_prob: per_thread.emc_insert_inv_prob,
            emc_auto_bypass: per_thread.emc_auto_bypass,
            max_flows: per_thread.max_flows,
            rxq_assign: RxqAssignPolicy::Cycles,
            upcall_rate: per_thread.upcall_rate,
            upcall_burst: per_thread.upcall_burst,
            pool_size: per_thread.pool_size,
            max_recirc_depth: per_thread.max_recirc_depth,
            ctl_timeout: Duration::from_secs(5),
            tx_flush_interval_us: per_thread.tx_flush_interval_us,
            pmd_max_sleep_us: 0,
            pmd_batch_wait_us: crate::pmd::sleep::DEFAULT_BATCH_WAIT_US,
        }
    }
}

/// How a PMD thread waits at light load for its `pmd_max_sleep_us` and
/// `pmd_batch_wait_us` settings (a sleep, if any, takes the place of the batch wait).
pub(super) fn pmd_idle_policy(max_sleep_us: u32, batch_wait_us: u32) -> IdlePolicy {
    let us = |us: u32| Duration::from_micros(u64::from(us));
    match (max_sleep_us, batch_wait_us) {
        (0, 0) => IdlePolicy::BusyPoll,
        (0, wait) => IdlePolicy::BatchWait(us(wait)),
        (sleep, _) => IdlePolicy::LoadBasedSleep(us(sleep)),
    }
}
