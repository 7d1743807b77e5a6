//! Telling a backlog that drains from one that stands, on a deep rx ring.
//!
//! A port with `n_rxq_desc` keeps a deep fill ring full so that a stop of its polling
//! thread (a vCPU the host freezes for 100 ms) finds frames ready. With headroom the
//! backlog such a stop leaves drains in a few hundred milliseconds. In sustained
//! overload it does not: the ring stands full, and each frame is read and transmitted
//! some ring's worth of frames after the kernel wrote it, out of cache. Under a CPU quota
//! (both switches saturated) that cost rvswitch about a tenth of its throughput against
//! the default ring (benches/e2e/HISTORY.md, eighteenth session), and it adds the ring's depth to
//! every packet's latency.
//!
//! So each deep queue watches its rx backlog once per `CHECK_PERIOD_MS`. A backlog of at
//! least `TRIMMED_FRAMES` that has not fallen over `STANDING_CHECKS` checks in a row is
//! standing (a stop's backlog jumps once and then falls at the thread's spare rate), and
//! the queue is *trimmed*: it keeps only `TRIMMED_FRAMES` frames in the kernel's hands
//! (fill ring plus rx backlog), as a default port does, so the kernel drops the excess on
//! arrival (counted as `rx_no_buffer`) and the frames in rotation stay few and warm. The
//! queue goes deep again after a whole check period in which the kernel found its fill
//! ring empty for no frame and the backlog was below `TRIMMED_FRAMES`: the thread caught
//! up. CoDel drops on the same evidence (a queue whose minimum does not fall), for the
//! same reason.

use super::xsk_queue::RX_RING;

/// How often a deep queue looks at its backlog: the length of the host's stops, so one
/// stop spans at most two checks.
pub const CHECK_PERIOD_MS: u64 = 100;

/// Checks in a row whose backlog did not fall before the queue is trimmed: a stop's
/// backlog rises over one or two checks, then falls. Half a second: in one 50 us-sleep
/// run of the bench a queue was trimmed after 300 ms at a moment the host ran the PMD
/// slow, and lost 5.7% of the run to it, more than the deep ring would have.
pub const STANDING_CHECKS: u32 = 5;

/// Frames a trimmed queue keeps in the kernel's hands: what a port with the default
/// ring holds at most (a full fill ring and a full rx ring).
pub const TRIMMED_FRAMES: u32 = 2 * RX_RING;

/// What a check changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BacklogChange {
    /// The backlog stood: the queue keeps `TRIMMED_FRAMES` frames from now on.
    Trimmed {
        /// The backlog at the check that decided it.
        backlog: u32,
    },
    /// The thread caught up: the queue keeps its whole ring full again.
    Restored,
}

/// One deep queue's watch over its rx backlog.
#[derive(Debug)]
pub struct BacklogWatch {
    /// Counter ticks between checks.
    period: u64,
    /// When the next check is due.
    next: u64,
    /// The backlog at the last check.
    last: u32,
    /// A fall of less than this does not count as draining: a 256th of the ring (512
    /// frames, 5,120 a second, on a 131,072-slot ring), more than the wobble of a full
    /// ring's backlog between checks (a refill batch or two).
    slack: u32,
    /// Checks in a row that found the backlog standing.
    strikes: u32,
    /// The kernel's count of frames that found the fill ring empty, at the last check.
    dry: u64,
    trimmed: bool,
    /// Times the queue was trimmed.
    trims: u64,
}

impl BacklogWatch {
    /// A watch for a queue of `ring` slots, checking every `period` counter ticks from
    /// `now` on.
    pub fn new(ring: u32, period: u64, now: u64) -> Self {
        BacklogWatch {
            period,
            next: now.wrapping_add(period),
            last: 0,
            slack: (ring / 256).max(64),
            strikes: 0,
            dry: 0,
            trimmed: false,
            trims: 0,
        }
    }

    /// Whether a check is due (one counter read per fill-ring top-up).
    #[inline(always)]
    pub fn due(&self, now: u64) -> bool {
        now >= self.next
    }

    /// Whether the queue keeps only `TRIMMED_FRAMES` frames in the kernel's hands.
    pub fn trimmed(&self) -> bool {
        self.trimmed
    }

    /// Times the queue was trimmed so far.
    pub fn trims(&self) -> u64 {
        self.trims
    }

    /// A check: `backlog` frames wait on the rx ring (freshly read), and the kernel has
    /// found the fill ring empty for `dry` frames since the socket opened.
    pub fn check(&mut self, now: u64, backlog: u32, dry: u64) -> Option<BacklogChange> {
        self.next = now.wrapping_add(self.period);
        let last = std::mem::replace(&mut self.last, backlog);
        let dry_since = dry.saturating_sub(std::mem::replace(&mut self.dry, dry));
        if self.trimmed {
            if dry_since == 0 && backlog < TRIMMED_FRAMES {
                self.trimmed = false;
                self.strikes = 0;
                return Some(BacklogChange::Restored);
            }
            return None;
        }
        if backlog >= TRIMMED_FRAMES && backlog.saturating_add(self.slack) >= last {
            self.strikes += 1;
            if self.strikes >= STANDING_CHECKS {
                self.strikes = 0;
                self.trimmed = true;
                self.trims += 1;
                return Some(BacklogChange::Trimmed { backlog });
            }
        } else {
            self.strikes = 0;
        }
        None
    }

    /// The frames to keep on the fill ring while trimmed, given the rx backlog: the rest
    /// of `TRIMMED_FRAMES`.
    pub fn trimmed_fill(backlog: u32) -> u32 {
        TRIMMED_FRAMES.saturating_sub(backlog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RING: u32 = 131_072;

    /// Checks at 0, 1, 2, ... periods of 10 ticks, with these backlogs and dry counts.
    fn run(w: &mut BacklogWatch, from: u64, steps: &[(u32, u64)]) -> Vec<Option<BacklogChange>> {
        steps
            .iter()
            .enumerate()
            .map(|(i, &(backlog, dry))| {
                let now = (from + i as u64 + 1) * 10;
                assert!(w.due(now));
                w.check(now, backlog, dry)
            })
            .collect()
    }

    #[test]
    fn a_stops_backlog_that_drains_never_trims() {
        let mut w = BacklogWatch::new(RING, 10, 0);
        assert!(!w.due(9));
        // A 100 ms stop at 1 Mpps, then a drain at 0.3 Mpps of spare capacity.
        let got = run(
            &mut w,
            0,
            &[
                (0, 0),
                (100_000, 0),
                (70_000, 0),
                (40_000, 0),
                (10_000, 0),
                (0, 0),
            ],
        );
        assert!(got.iter().all(Option::is_none), "{got:?}");
        // A slow drain (10,000 frames a second of spare capacity) is still a drain.
        let slow: Vec<(u32, u64)> = (0..12).map(|i| (100_000 - i * 1_000, 0)).collect();
        let got = run(&mut w, 6, &slow);
        assert!(got.iter().all(Option::is_none), "{got:?}");
        // Two stops back to back: it rose twice, then fell.
        let got = run(&mut w, 18, &[(90_000, 0), (131_072, 0), (120_000, 0)]);
        assert!(got.iter().all(Option::is_none), "{got:?}");
        assert!(!w.trimmed());
        assert_eq!(w.trims(), 0);
    }

    #[test]
    fn a_full_ring_that_stands_is_trimmed_and_restored_once_the_thread_keeps_up() {
        let mut w = BacklogWatch::new(RING, 10, 0);
        // Overload: the backlog climbs to the ring and stays there, wobbling by a batch.
        let got = run(
            &mut w,
            0,
            &[
                (60_000, 0),
                (131_072, 0),
                (131_000, 0),
                (131_040, 0),
                (130_900, 0),
            ],
        );
        assert_eq!(got[..4], [None; 4]);
        assert_eq!(got[4], Some(BacklogChange::Trimmed { backlog: 130_900 }));
        assert!(w.trimmed());
        assert_eq!(w.trims(), 1);
        // Trimmed, the kernel drops what finds no fill frame: still overloaded.
        let got = run(
            &mut w,
            5,
            &[(40_000, 50_000), (8_000, 90_000), (7_000, 120_000)],
        );
        assert!(got.iter().all(Option::is_none), "{got:?}");
        // A period with no frame dropped, but the backlog still deep: not yet.
        assert_eq!(run(&mut w, 8, &[(9_000, 120_000)]), [None]);
        // The load fell: nothing dropped and the backlog short.
        assert_eq!(
            run(&mut w, 9, &[(30, 120_000)]),
            [Some(BacklogChange::Restored)]
        );
        assert!(!w.trimmed());
        // It needs five standing checks again to trim a second time.
        let got = run(&mut w, 10, &[(20_000, 120_000); 5]);
        assert_eq!(got[..4], [None; 4]);
        assert_eq!(got[4], Some(BacklogChange::Trimmed { backlog: 20_000 }));
        assert_eq!(w.trims(), 2);
    }

    #[test]
    fn a_backlog_below_the_trimmed_depth_or_falling_resets_the_count() {
        let mut w = BacklogWatch::new(RING, 10, 0);
        let got = run(
            &mut w,
            0,
            &[
                (50_000, 0),
                (50_000, 0),
                (50_000, 0),
                (50_000, 0),
                (4_000, 0), // short: not standing, whatever it did
                (50_000, 0),
                (50_000, 0),
                (50_000, 0),
                (50_000, 0),
                (49_000, 0), // fell by more than the slack (512)
                (49_000, 0),
                (49_000, 0),
                (49_000, 0),
                (49_200, 0),
            ],
        );
        assert!(got.iter().all(Option::is_none), "{got:?}");
        assert_eq!(
            run(&mut w, 14, &[(48_700, 0)]),
            [Some(BacklogChange::Trimmed { backlog: 48_700 })]
        );
    }

    #[test]
    fn a_trimmed_queue_keeps_the_rest_of_the_trimmed_depth_on_its_fill_ring() {
        assert_eq!(BacklogWatch::trimmed_fill(0), TRIMMED_FRAMES);
        assert_eq!(BacklogWatch::trimmed_fill(5_000), TRIMMED_FRAMES - 5_000);
        assert_eq!(BacklogWatch::trimmed_fill(131_072), 0);
    }
}
