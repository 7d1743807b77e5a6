//! Rx queue placement: which poll thread serves each queue of a new port, and the
//! cycle-based reassignment of all queues (`pmd-rxq-rebalance`). Queues of devices that
//! cannot be busy-polled, and every queue when no PMD core is configured, go to the
//! non-PMD thread.

use super::{timeout_err, DpState, DpifNetdev, MAIN_THREAD};
use crate::dpif::DpifResult;
use crate::netdev::Netdev;
use crate::packet::OdpPort;
use crate::pmd::{PmdMsg, RxqAssignment, RxqLoad};

impl DpifNetdev {
    /// Places the rx queues of a new port; returns (thread index per queue).
    pub(super) fn place_rxqs(
        &self,
        st: &DpState,
        netdev: &dyn Netdev,
        port: OdpPort,
    ) -> Vec<usize> {
        let n_rxq = netdev.n_rxq();
        let n_pmds = self.threads.len() - 1;
        if !netdev.pollable() || n_pmds == 0 {
            return vec![MAIN_THREAD; n_rxq];
        }
        // Current load per PMD: (cycles since assignment, queue count).
        let mut base = vec![(0u64, 0usize); n_pmds];
        for e in st.ports.values() {
            for q in &e.rxqs {
                if q.thread != MAIN_THREAD {
                    let b = &mut base[q.thread - 1];
                    b.0 += q.counters.cycles.get().wrapping_sub(q.cycles_base);
                    b.1 += 1;
                }
            }
        }
        let loads: Vec<RxqLoad> = (0..n_rxq)
            .map(|qid| RxqLoad {
                port,
                qid,
                cycles: 0,
            })
            .collect();
        RxqAssignment::compute(self.config.rxq_assign, &loads, n_pmds, &base)
            .pmd_of
            .into_iter()
            .map(|p| p + 1)
            .collect()
    }

    /// Reassigns every PMD-polled rx queue by the configured policy using the cycles
    /// measured since the last assignment (OVS's `pmd-rxq-rebalance`). Queues that move
    /// stop on the old thread before they start on the new one; others keep running.
    pub fn rxq_rebalance(&self) -> DpifResult<()> {
        self.check_callable("rxq_rebalance")?;
        let mut st = self.state()?;
        let n_pmds = self.threads.len() - 1;
        if n_pmds == 0 {
            return Ok(());
        }
        let mut loads = Vec::new();
        for (&port, e) in st.ports.iter() {
            for q in &e.rxqs {
                if q.thread != MAIN_THREAD {
                    loads.push(RxqLoad {
                        port,
                        qid: q.qid,
                        cycles: q.counters.cycles.get().wrapping_sub(q.cycles_base),
                    });
                }
            }
        }
        let a = RxqAssignment::compute(self.config.rxq_assign, &loads, n_pmds, &[]);
        for (l, p) in loads.iter().zip(a.pmd_of) {
            let new_thread = p + 1;
            let entry = st.ports.get_mut(&l.port).expect("port listed above");
            let q = entry
                .rxqs
                .iter_mut()
                .find(|q| q.qid == l.qid)
                .expect("queue listed above");
            let old_thread = q.thread;
            let tcycles = self.thread_total_cycles(new_thread);
            q.cycles_base = q.counters.cycles.get();
            q.thread_cycles_base = tcycles;
            if old_thread == new_thread {
                continue;
            }
            let (tx, rx) = crossbeam_channel::bounded(1);
            self.threads[old_thread].send(PmdMsg::TakeRxq {
                port: l.port,
                qid: l.qid,
                reply: tx,
            });
            let polled = rx
                .recv_timeout(self.config.ctl_timeout)
                .map_err(|_| timeout_err("an rxq move"))?;
            if let Some(polled) = polled {
                self.threads[new_thread].send(PmdMsg::AddRxq(polled));
                q.thread = new_thread;
            }
        }
        Ok(())
    }
}
