//! Opening the datapaths: the userspace one (shared by all netdev bridges) and the kernel
//! one, each wrapped in an ofproto `Backer` with its revalidator thread.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{DatapathType, GlobalConfig, RxqAssign};
use crate::dpif::{Dpif, DpifError};
use crate::dpif_netdev::{DpNetdevConfig, DpifNetdev};
use crate::dpif_netlink::DpifNetlink;
use crate::ofproto::{Backer, RevalidatorThread};
use crate::pmd::RxqAssignPolicy;

/// Name of the shared userspace datapath (as OVS calls its own).
pub const NETDEV_DATAPATH_NAME: &str = "ovs-netdev";
/// Name of the kernel datapath all kernel bridges share (as OVS calls its own).
pub const KERNEL_DATAPATH_NAME: &str = "ovs-system";
/// Upcall handler threads of the kernel datapath (the userspace datapath's own threads
/// translate their misses inline).
pub(crate) const KERNEL_UPCALL_HANDLERS: usize = 1;
/// How often installed megaflows are checked against the rules and expired when idle.
const REVALIDATE_INTERVAL: Duration = Duration::from_millis(500);

/// One open datapath with its translator back end.
pub(crate) struct DatapathRuntime {
    pub(crate) dpif: Arc<dyn Dpif>,
    /// The concrete userspace datapath, for the PMD commands.
    pub(crate) netdev: Option<Arc<DpifNetdev>>,
    pub(crate) backer: Arc<Backer>,
    revalidator: Option<RevalidatorThread>,
}

impl DatapathRuntime {
    /// Opens (creates) the datapath of type `kind` with the global settings.
    pub(crate) fn open(
        kind: DatapathType,
        global: &GlobalConfig,
    ) -> Result<DatapathRuntime, DpifError> {
        let (dpif, netdev): (Arc<dyn Dpif>, Option<Arc<DpifNetdev>>) = match kind {
            DatapathType::Netdev => {
                let cfg = DpNetdevConfig {
                    pmd_cores: global.pmd_cores.clone(),
                    emc_insert_inv_prob: global.emc_insert_inv_prob,
                    emc_auto_bypass: global.emc_auto_bypass,
                    max_flows: global.max_flows,
                    tx_flush_interval_us: global.tx_flush_interval_us,
                    pmd_max_sleep_us: global.pmd_max_sleep_us,
                    pmd_batch_wait_us: global.pmd_batch_wait_us,
                    rxq_assign: match global.rxq_assign {
                        RxqAssign::Cycles => RxqAssignPolicy::Cycles,
                        RxqAssign::RoundRobin => RxqAssignPolicy::RoundRobin,
                    },
                    ..DpNetdevConfig::default()
                };
                let dp = DpifNetdev::new(NETDEV_DATAPATH_NAME, cfg)?;
                (dp.clone(), Some(dp))
            }
            DatapathType::Kernel => {
                // A datapath left by a daemon that died is reused rather than refused.
                let dp = match DpifNetlink::create(KERNEL_DATAPATH_NAME, KERNEL_UPCALL_HANDLERS) {
                    Err(DpifError::Kernel(m)) if m.contains("already exists") => {
                        DpifNetlink::open(KERNEL_DATAPATH_NAME, KERNEL_UPCALL_HANDLERS)?
                    }
                    other => other?,
                };
                (Arc::new(dp), None)
            }
        };
        let backer = Backer::new(dpif.clone());
        if netdev.is_none() {
            // The userspace datapath's threads cap their own tables at `max_flows`; the
            // kernel's table has no cap but this one.
            backer.set_flow_limit(global.max_flows);
        }
        let revalidator = Some(backer.start_revalidator(REVALIDATE_INTERVAL));
        Ok(DatapathRuntime {
            dpif,
            netdev,
            backer,
            revalidator,
        })
    }

    /// Stops the revalidator and destroys the datapath (PMD threads joined, ports closed).
    pub(crate) fn destroy(mut self) -> Result<(), DpifError> {
        if let Some(r) = self.revalidator.take() {
            r.stop();
        }
        self.dpif.destroy()
    }
}
