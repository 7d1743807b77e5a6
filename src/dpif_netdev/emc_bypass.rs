//! Whether this poll thread's EMC lookups pay for themselves, found by timing both ways.
//!
//! An EMC hit reads the cached 192-byte key, three lines that with more flows than the
//! cache holds are seldom in any cache, and a miss pays the dpcls lookup on top. When the
//! dpcls is small (a subtable or two, its few megaflows hot in L1) the lookup a hit saves
//! is cheaper than that read, and the EMC costs more than it saves: 10,000 64-byte UDP
//! flows through NORMAL (one megaflow), 562 cycles per packet outside system calls with
//! the EMC against 434 without it (benches/e2e/HISTORY.md, thirteenth session). OVS leaves that
//! choice to the operator (`emc-insert-inv-prob=0` turns its EMC off for good); here the
//! thread measures. At the start of every epoch of `EPOCH_BATCHES` batches it times the
//! lookup stage (hashing, EMC, dpcls) of `TRIAL_BATCHES` batches with EMC lookups and as
//! many without, in alternating runs so that both see the same traffic, and for the rest
//! of the epoch uses whichever was cheaper per packet. The EMC wins ties and near-ties:
//! bypassing needs a margin of 1/16. Insertion goes on while lookups are bypassed, so
//! the cache is as warm as it would have been when the next trial asks (prefetched and
//! deferred to the end of the batch's lookups, `lookup.rs`).

/// Batches one decision lasts, its trial included (about half a second at 20 packets
/// per batch and 0.6 Mpps).
pub const EPOCH_BATCHES: u32 = 16_384;
/// Batches timed for each of the two ways at the start of an epoch.
pub const TRIAL_BATCHES: u32 = 256;
/// Length of the alternating runs of the trial: long enough that a run finds the EMC's
/// lines as warm as steady use would leave them, short enough that both ways see the
/// same mix of traffic.
const TRIAL_RUN: u32 = 8;
/// A timed batch that took longer than this (100 us at 2 GHz) was interrupted or
/// preempted: it is left out of the trial.
const OUTLIER_CYCLES: u64 = 200_000;
/// Fewest packets either way must have seen for a trial to decide anything.
const MIN_TRIAL_PACKETS: u64 = 256;

/// What one batch does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPlan {
    /// Look the batch up in the EMC before the dpcls.
    pub use_emc: bool,
    /// Time the lookup stage and report it to `EmcBypass::finish`.
    pub timed: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct TrialArm {
    cycles: u64,
    packets: u64,
}

impl TrialArm {
    fn add(&mut self, cycles: u64, packets: u64) {
        self.cycles += cycles;
        self.packets += packets;
    }
}

/// The per-thread state of the choice (see the module docs).
#[derive(Clone, Debug)]
pub struct EmcBypass {
    auto: bool,
    /// Position in the current epoch, in batches.
    batch: u32,
    /// The choice for the rest of the epoch.
    bypassing: bool,
    with_emc: TrialArm,
    without_emc: TrialArm,
}

impl EmcBypass {
    /// `auto`: run trials and bypass when that is cheaper; otherwise always use the EMC.
    pub fn new(auto: bool) -> Self {
        EmcBypass {
            auto,
            batch: 0,
            bypassing: false,
            with_emc: TrialArm::default(),
            without_emc: TrialArm::default(),
        }
    }

    /// Turns the trials on or off (a reload); either way the next epoch starts afresh
    /// with the EMC in use.
    pub fn set_auto(&mut self, auto: bool) {
        *self = EmcBypass::new(auto);
    }

    /// Whether trials run.
    pub fn auto(&self) -> bool {
        self.auto
    }

    /// Whether the rest of the current epoch bypasses EMC lookups.
    pub fn bypassing(&self) -> bool {
        self.bypassing
    }

    /// The plan for the next batch.
    #[inline(always)]
    pub fn plan(&self) -> BatchPlan {
        if !self.auto {
            return BatchPlan {
                use_emc: true,
                timed: false,
            };
        }
        if self.batch < 2 * TRIAL_BATCHES {
            BatchPlan {
                use_emc: (self.batch / TRIAL_RUN) % 2 == 0,
                timed: true,
            }
        } else {
            BatchPlan {
                use_emc: !self.bypassing,
                timed: false,
            }
        }
    }

    /// Books a batch run to `plan` (`cycles` is ignored unless the plan was timed) and
    /// moves the epoch on, deciding when the trial is complete. Returns whether this
    /// batch completed a trial.
    #[inline(always)]
    pub fn finish(&mut self, plan: BatchPlan, cycles: u64, packets: u64) -> bool {
        if !self.auto {
            return false;
        }
        if plan.timed && cycles <= OUTLIER_CYCLES {
            if plan.use_emc {
                self.with_emc.add(cycles, packets);
            } else {
                self.without_emc.add(cycles, packets);
            }
        }
        self.batch += 1;
        if self.batch == 2 * TRIAL_BATCHES {
            self.bypassing = self.bypass_is_cheaper();
            self.with_emc = TrialArm::default();
            self.without_emc = TrialArm::default();
            return true;
        }
        if self.batch >= EPOCH_BATCHES {
            self.batch = 0;
        }
        false
    }

    /// Cycles per packet without the EMC at most 15/16 of those with it, both arms
    /// having seen enough packets (compared by cross-multiplying: no division).
    fn bypass_is_cheaper(&self) -> bool {
        let (on, off) = (self.with_emc, self.without_emc);
        if on.packets < MIN_TRIAL_PACKETS || off.packets < MIN_TRIAL_PACKETS {
            return false;
        }
        (off.cycles as u128) * (on.packets as u128) * 16
            <= (on.cycles as u128) * (off.packets as u128) * 15
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one whole trial, charging `on`/`off` cycles per packet to batches of 20.
    fn run_trial(b: &mut EmcBypass, on: u64, off: u64) -> u32 {
        let (mut with, mut without) = (0, 0);
        loop {
            let p = b.plan();
            assert!(p.timed, "a trial batch is timed");
            let per_pkt = if p.use_emc { on } else { off };
            if p.use_emc {
                with += 1;
            } else {
                without += 1;
            }
            if b.finish(p, per_pkt * 20, 20) {
                assert_eq!((with, without), (TRIAL_BATCHES, TRIAL_BATCHES));
                return with + without;
            }
        }
    }

    #[test]
    fn bypasses_only_when_clearly_cheaper_and_only_until_the_next_trial() {
        let mut b = EmcBypass::new(true);
        assert!(
            b.plan().use_emc && b.plan().timed,
            "an epoch starts with a trial"
        );
        run_trial(&mut b, 560, 430);
        assert!(b.bypassing());
        let p = b.plan();
        assert_eq!(
            p,
            BatchPlan {
                use_emc: false,
                timed: false
            }
        );
        // The rest of the epoch keeps the choice, untimed.
        for _ in 2 * TRIAL_BATCHES..EPOCH_BATCHES {
            assert_eq!(b.plan(), p);
            assert!(!b.finish(p, 1_000_000, 20));
        }
        // The next epoch tries again; now the EMC is cheaper.
        run_trial(&mut b, 300, 400);
        assert!(!b.bypassing());
        assert!(b.plan().use_emc && !b.plan().timed);
        // Within the 1/16 margin the EMC stays.
        let mut b = EmcBypass::new(true);
        run_trial(&mut b, 1600, 1550);
        assert!(!b.bypassing(), "a 3% difference is not enough");
        let mut b = EmcBypass::new(true);
        run_trial(&mut b, 1600, 1500);
        assert!(b.bypassing(), "6.25% is");
    }

    #[test]
    fn interrupted_batches_and_empty_trials_decide_nothing() {
        let mut b = EmcBypass::new(true);
        // Every EMC batch "interrupted": the with-EMC arm has no packets, so no bypass
        // however cheap the other arm looked.
        loop {
            let p = b.plan();
            let c = if p.use_emc { OUTLIER_CYCLES + 1 } else { 20 };
            if b.finish(p, c, 20) {
                break;
            }
        }
        assert!(!b.bypassing());
        // An outlier does not count against an arm: the EMC arm is expensive only
        // through one preempted batch, which is discarded.
        let mut b = EmcBypass::new(true);
        let mut first = true;
        loop {
            let p = b.plan();
            let c = if p.use_emc && first {
                first = false;
                10_000_000
            } else if p.use_emc {
                300 * 20
            } else {
                400 * 20
            };
            if b.finish(p, c, 20) {
                break;
            }
        }
        assert!(!b.bypassing());
    }

    #[test]
    fn without_auto_the_emc_is_always_used_and_never_timed() {
        let mut b = EmcBypass::new(false);
        for _ in 0..2 * EPOCH_BATCHES {
            let p = b.plan();
            assert_eq!(
                p,
                BatchPlan {
                    use_emc: true,
                    timed: false
                }
            );
            assert!(!b.finish(p, 0, 20));
        }
        b.set_auto(true);
        assert!(b.plan().timed);
        run_trial(&mut b, 900, 100);
        assert!(b.bypassing());
        b.set_auto(false);
        assert!(!b.bypassing() && b.plan().use_emc);
    }
}
