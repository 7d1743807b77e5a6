//! Per-thread counters: written only by the owning poll thread, read by anyone.
//!
//! Each counter is an `AtomicU64` updated with a relaxed load + store (the thread is the
//! only writer, so no read-modify-write instruction is needed; on x86_64 this is two plain
//! moves). Readers see each counter atomically but not a consistent snapshot across
//! counters, which is what statistics need. "Clearing" is done by readers keeping a
//! baseline (`PmdStats::since`), so the fast path never races a reset.

use std::sync::atomic::{AtomicU64, Ordering};

/// A single-writer counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (owning thread only).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
    /// Sets the value (gauges, owning thread only).
    #[inline(always)]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Reads the value.
    #[inline(always)]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! pmd_counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// The live counters of one poll thread (see the module docs).
        #[derive(Debug, Default)]
        pub struct PmdCounters {
            $( $(#[$doc])* pub $name: Counter, )*
        }
        /// A plain copy of `PmdCounters` at one moment.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct PmdStats {
            $( $(#[$doc])* pub $name: u64, )*
        }
        impl PmdCounters {
            /// Reads every counter.
            pub fn snapshot(&self) -> PmdStats {
                PmdStats { $( $name: self.$name.get(), )* }
            }
        }
        impl PmdStats {
            /// `self - baseline`, counter by counter (gauges are taken from `self`).
            pub fn since(&self, baseline: &PmdStats) -> PmdStats {
                let mut out = PmdStats { $( $name: self.$name.wrapping_sub(baseline.$name), )* };
                out.n_flows = self.n_flows;
                out.n_subtables = self.n_subtables;
                out
            }
        }
    };
}

pmd_counters! {
    /// Packets received from rx queues.
    rx_packets,
    /// Packets sent through another datapath pass by a `Recirc` action.
    recirculations,
    /// Lookups that hit the exact-match cache.
    emc_hits,
    /// Lookups that hit a megaflow in the dpcls.
    megaflow_hits,
    /// Packets looked up without the EMC because its trial found the dpcls alone
    /// cheaper (`emc_auto_bypass`; includes the trials' own EMC-less batches).
    emc_bypassed,
    /// EMC trials completed (`EmcBypass`).
    emc_trials,
    /// Of those, the trials that chose to bypass the EMC.
    emc_trials_bypassing,
    /// Sum over megaflow hits of the subtables searched to find them.
    subtable_lookups,
    /// Misses whose upcall returned actions.
    upcall_ok,
    /// Misses whose upcall failed, or that found no handler, or hit the rate limit
    /// (OVS's "lost"); includes `upcall_rate_limited`.
    upcall_failed,
    /// Misses dropped by the upcall rate limiter without calling the handler.
    upcall_rate_limited,
    /// `Userspace` actions delivered to the handler.
    userspace_actions,
    /// Packets handed to tx queues.
    tx_packets,
    /// Calls to a tx queue's `send` (one per output batch).
    tx_batches,
    /// Packets dropped because the output port does not exist (any more).
    tx_no_port,
    /// Packets dropped (or left unchanged, for a set-field on an absent header) by a
    /// failing action: no headroom, invalid tunnel packet on `tnl_pop`, too deep
    /// recirculation.
    action_errors,
    /// Packets a `tnl_push` dropped because the encapsulated frame exceeds the underlay
    /// port's MTU (also in `action_errors`).
    tnl_mtu_drops,
    /// Packets a `tnl_push` could not encapsulate: no headroom, bad template (also in
    /// `action_errors`).
    tnl_push_errors,
    /// Packets a `tnl_pop` dropped: bad, truncated or foreign outer headers (also in
    /// `action_errors`).
    tnl_pop_errors,
    /// Errors returned by rx queues.
    rx_errors,
    /// Cycles of iterations that received nothing.
    cycles_idle,
    /// Cycles of iterations that processed packets.
    cycles_busy,
    /// The part of `cycles_busy` spent inside fast-path system calls (transmit kicks,
    /// fill-ring wakeups, tap reads and writes): the kernel's work on this core, which
    /// in AF_XDP copy mode is most of the transmit path. The rest is the switch's own.
    cycles_syscall,
    /// Poll loop iterations.
    iterations,
    /// Cycles slept between polls, as measured (`LoadBasedSleep` PMDs only; the busy
    /// and idle counts leave them out): off-CPU time.
    sleep_cycles,
    /// Iterations that ended with a sleep (counted with the iterations after them).
    sleep_iterations,
    /// Cycles a `BatchWait` PMD spun after light iterations waiting for fuller batches
    /// (also in `cycles_idle`: on-CPU time not spent on packets).
    batch_wait_cycles,
    /// Iterations that ended with a batch wait.
    batch_waits,
    /// Megaflows installed (gauge).
    n_flows,
    /// dpcls subtables over all in_ports (gauge).
    n_subtables,
}

/// Counters of one rx queue, for `pmd-rxq-show` and cycle-based assignment.
#[derive(Debug, Default)]
pub struct RxqCounters {
    /// Packets received.
    pub packets: Counter,
    /// Cycles spent receiving and processing this queue's batches.
    pub cycles: Counter,
}
