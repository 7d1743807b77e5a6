//! The userspace datapath (see DESIGN.md "The fast path").

pub mod dpcls;
pub mod emc;
pub mod flow_table;
pub mod subtable;
