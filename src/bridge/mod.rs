//! Config -> running bridges (OVS's bridge.c).
//!
//! `Switch` owns the datapaths (one userspace datapath shared by every netdev bridge, as
//! OVS's "ovs-netdev"; one kernel datapath for the kernel bridges) and the bridges on them.
//! `reconfigure` diffs the running config against a new one (`diff::plan`) and applies the
//! steps; the control commands (add-br, add-port, ...) build a new config and go through
//! the same path, then append themselves to the journal in `state` so a restart keeps them.

mod commands;
mod datapaths;
pub mod diff;
mod dpctl;
mod memory_show;
mod reload;
pub mod state;
mod switch;
mod tnl_commands;
mod upcall_show;

pub use commands::register_commands;
pub use datapaths::{KERNEL_DATAPATH_NAME, NETDEV_DATAPATH_NAME};
pub use reload::ReloadReport;
pub use switch::{Switch, SwitchError};

#[cfg(test)]
mod tests;
