//! rvswitch: a userspace, poll-mode virtual switch.
//!
//! Layers, top to bottom (dependencies point downwards only; see DESIGN.md):
//! `bridge` -> `ofproto` -> `dpif` -> {`dpif_netdev`, `dpif_netlink`};
//! `dpif_netdev` -> {`pmd`, `netdev`, `packet`}; `netdev` -> `packet`. The exceptions are
//! `pmd::cycles` and `pmd::Counter`: leaves that depend on nothing in the crate, which the
//! netdevs use to count and to time their system calls for the poll thread.
#![warn(missing_docs)]

pub mod appctl;
pub mod bridge;
pub mod config;
pub mod dpif;
pub mod dpif_netdev;
pub mod dpif_netlink;
pub mod netdev;
pub mod ofproto;
pub mod packet;
pub mod pmd;

/// The version string `rvswitch --version` and the `version` command print.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
