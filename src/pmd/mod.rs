//! Poll-mode threads: pinning, rx queue assignment, the poll loop and cycle accounting.
//!
//! This module knows nothing of flows: a poll thread owns rx queues and a `PollWork`
//! (the datapath's per-thread state, from `dpif_netdev`) and calls it with each received
//! batch. See DESIGN.md "The fast path".

pub mod affinity;
pub mod assign;
pub mod cycles;
pub mod poll_loop;
pub mod sleep;
pub mod stats;
pub mod waker;

pub use assign::{RxqAssignPolicy, RxqAssignment, RxqLoad};
pub use poll_loop::{IdlePolicy, PmdMsg, PollThread, PollWork, PolledRxq};
pub use stats::{Counter, PmdCounters, PmdStats, RxqCounters};
