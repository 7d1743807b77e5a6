//! The production datapath opener: the userspace datapath and the kernel one.

use std::sync::Arc;

use crate::config::{DatapathType, GlobalConfig};
use crate::dpif::{Dpif, DpifError};

use super::switch::DatapathOpener;

/// Name of the shared userspace datapath (as OVS calls its own).
pub const NETDEV_DATAPATH_NAME: &str = "ovs-netdev";
/// Name of the kernel datapath all kernel bridges share (as OVS calls its own).
pub const KERNEL_DATAPATH_NAME: &str = "ovs-system";

/// Opens the real back ends.
pub struct SystemDatapaths;

impl DatapathOpener for SystemDatapaths {
    fn open(&self, kind: DatapathType, _global: &GlobalConfig) -> Result<Arc<dyn Dpif>, DpifError> {
        match kind {
            DatapathType::Netdev => Err(DpifError::NoSuchDatapath(format!(
                "{NETDEV_DATAPATH_NAME} (the userspace datapath is not in this build yet)"
            ))),
            DatapathType::Kernel => Err(DpifError::NoSuchDatapath(format!(
                "{KERNEL_DATAPATH_NAME} (the kernel back end is not in this build yet)"
            ))),
        }
    }
}
