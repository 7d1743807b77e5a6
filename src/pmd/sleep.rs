//! When a PMD pauses between polls, and for how long: the load-based sleep behind
//! `IdlePolicy::LoadBasedSleep` (`pmd_max_sleep_us`) and the busy-poller's batch wait
//! behind `IdlePolicy::BatchWait` (`pmd_batch_wait_us`). The poll loop does the pausing;
//! this decides its length from what each iteration received.

use std::time::Duration;

use crate::packet::MAX_BURST;

/// A `BatchWait` PMD stops lengthening its wait after an iteration in which some queue
/// handed over at least this many packets (half a batch: OVS's threshold for its sleep).
pub const WAIT_HOLD_THRESHOLD: usize = MAX_BURST / 2;

/// How much longer a PMD sleeps (or waits) after each further light iteration.
const SLEEP_STEP: Duration = Duration::from_micros(1);

/// Timer slack of a sleeping PMD: the kernel's default of 50 us would turn every short
/// sleep into a 50 us one.
const PMD_TIMER_SLACK_NS: libc::c_ulong = 1_000;

/// The wait level of a `BatchWait` thread after an iteration that received something,
/// from the level before it and the most packets one rx queue handed over in one call
/// (`busiest`, at least 1): 1 us longer below half a batch, the same up to a full one,
/// nothing after a full one (the load outruns the wait). OVS's sleep rule ends the
/// pause at half a batch, so the iteration after every reset finds only what arrived
/// while it processed: measured with it as a sleep at 0.39 Mpps and 50 us, 16.7
/// packets per output batch, against 21.9 with this hold.
fn next_wait(last: Duration, busiest: usize, max: Duration) -> Duration {
    if busiest >= MAX_BURST {
        Duration::ZERO
    } else if busiest < WAIT_HOLD_THRESHOLD {
        (last + SLEEP_STEP).min(max)
    } else {
        // A lowered maximum (a reload) applies at once.
        last.min(max)
    }
}

/// Packets per iteration under which a `LoadBasedSleep` PMD sleeps longer next time,
/// and from which on it sleeps shorter (in between it keeps its sleep): the sleep
/// settles where each iteration takes in three to four batches.
pub const SLEEP_TARGET: std::ops::Range<usize> = 3 * MAX_BURST..4 * MAX_BURST;

/// The sleep level of a `LoadBasedSleep` thread after an iteration, from the level before
/// it, the packets the iteration took in (`got`) and whether some rx queue filled every
/// batch of its visit (`outran`: the load outruns the sleep, which then ends at once).
///
/// Every iteration pays the same fixed costs, whatever it carries: the sleep's entry
/// and exit, the look at the rx ring's producer index (a cross-core miss: the kernel
/// writes it on the core that receives), one transmit kick (`sendto`) and its return
/// into cold caches, the completion reap. A sleep held from half a batch and ended by a
/// full one (the batch wait's rule, `next_wait`) settled at one batch of 21.9 packets
/// per iteration at 1.2 Mpps of one 64-byte flow with 50 us allowed; aiming at two to
/// three batches shares those costs among more packets: 102-119 user cycles per packet
/// against 147-154 (benches/e2e/HISTORY.md, sixteenth session). At 0.6-1.1 Mpps and 50 us that
/// target held the sleep near 36 us and ~76 packets an iteration; three to four
/// batches let it reach the maximum and carry ~100 (twenty-third session, with the
/// rx ring's lazier index reads and the wider frame stagger: user cycles per packet
/// 0.93 times the old build's, median of eight alternating pairs). It costs a packet up
/// to the sleep it arrives in, within the maximum the operator chose.
///
/// An empty iteration doubles the sleep: 1 us steps take 2,000 iterations (2 s, most
/// of them short sleeps that cost more to enter than they save) to reach a 2 ms
/// maximum, and an idle PMD here then averaged 553 us per sleep and 6.9% of its core,
/// since control messages (each of which skips one sleep, see the poll loop) kept
/// restarting the ramp.
pub fn next_load_sleep(last: Duration, got: usize, outran: bool, max: Duration) -> Duration {
    if outran {
        Duration::ZERO
    } else if got == 0 {
        (last * 2).max(last + SLEEP_STEP).min(max)
    } else if got < SLEEP_TARGET.start {
        (last + SLEEP_STEP).min(max)
    } else if got < SLEEP_TARGET.end {
        last.min(max)
    } else {
        last.saturating_sub(SLEEP_STEP).min(max)
    }
}

/// Sleeps `d` from now, a `LoadBasedSleep` thread's pause after a light iteration; the
/// caller measures what it slept. The iteration's transmit kicks were made before it
/// (`sendto` in the flush), so the sleep is only a sleep and is booked as one, as OVS
/// books its `nanosleep`: measured here, making the kicks in the `ppoll` the thread
/// slept in instead (one kernel entry per light iteration) saved no user time beyond
/// the spread (64-byte UDP, 50 us sleeps, twelve alternating pairs: medians 404 and
/// 420 user CPU cycles per packet) and booked the sleep's entry and exit, ~2,000 cycles
/// per packet on this VM, as processing.
pub fn sleep_for(d: Duration) {
    let ts = libc::timespec {
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    // A direct system call: libc's wrapper also toggles thread cancellation around it
    // (std's `thread::sleep` adds a loop of its own), about 9% of a sleeping PMD's user
    // time at 0.36 Mpps.
    // SAFETY: a relative sleep on the monotonic clock; `ts` outlives the call and no
    // remainder is asked for.
    unsafe {
        libc::syscall(
            libc::SYS_clock_nanosleep,
            libc::CLOCK_MONOTONIC,
            0,
            &ts as *const libc::timespec,
            std::ptr::null_mut::<libc::timespec>(),
        )
    };
}

/// The default `pmd_batch_wait_us`: the longest a busy-polling PMD spins after a light
/// iteration so that the next poll finds a fuller batch.
///
/// A busy-polling PMD that is quicker than the traffic's gaps takes a packet or two per
/// poll, and every such iteration pays the whole per-iteration cost: a transmit kick
/// (`sendto`, ~2,800 cycles of kernel entry and setup per call on the development VM)
/// and its caches refilled after it, for one or two packets. Measured there (one 64-byte
/// flow, 0.5-0.7 Mpps offered, `benches/e2e/run.sh`): 2.0-3.5 packets per output batch
/// and 616-979 user cycles per packet without the wait; with at most 10 us, 16.3 per
/// batch, 293 user cycles per packet and 23% fewer processing cycles per packet; with
/// 20 us, 19.8 and 286. The price is latency: a packet that arrives during a wait waits
/// up to this long. An empty iteration starts the ramp over (`BatchWait`), so a light
/// flow with gaps between its packets pays about 1 us, not this.
pub const DEFAULT_BATCH_WAIT_US: u32 = 10;

/// A busy-polling PMD's batch wait (`IdlePolicy::BatchWait`): the level it has reached
/// (also in cycles of `cycles::now`, converted only when it changes) and its maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchWait {
    level: Duration,
    level_cycles: u64,
    max: Duration,
}

impl BatchWait {
    /// A wait of at most `max`, starting at nothing.
    pub fn new(max: Duration) -> Self {
        BatchWait {
            level: Duration::ZERO,
            level_cycles: 0,
            max,
        }
    }

    /// The cycles to spin after an iteration whose busiest rx queue handed over
    /// `busiest` packets in one call (0: none); moves the level for the next one.
    ///
    /// The ramp of `next_wait` (1 us longer per light iteration, held
    /// at half a batch or more, reset by a full one) with one difference: an empty
    /// iteration spins not at all and resets the level, so the first packet after a gap
    /// finds the PMD polling and the iteration that takes it waits 1 us, not the
    /// maximum. An empty poll means the load fits in the gaps, with nothing to gather.
    /// Keeping the level across empty iterations (as at first) cost a ping through two
    /// idle afxdp ports about 10 us of its round trip: its reply, which the kernel
    /// queues on the rx ring within the request's transmit call, waited out the whole
    /// spin that followed (minimum RTT 26-32 us against 17-19 without the wait,
    /// `benches/e2e/latency.sh`, benches/e2e/HISTORY.md).
    pub fn after_iteration(&mut self, busiest: usize) -> u64 {
        if busiest == 0 {
            if !self.level.is_zero() {
                self.level = Duration::ZERO;
                self.level_cycles = 0;
            }
            return 0;
        }
        let next = next_wait(self.level, busiest, self.max);
        if next != self.level {
            self.level = next;
            self.level_cycles = crate::pmd::cycles::from_duration(next);
        }
        self.level_cycles
    }

    /// Whether the thread is waiting between polls at all (it then reads its control
    /// channel every iteration, as a sleeping one does).
    pub fn is_waiting(&self) -> bool {
        !self.level.is_zero()
    }
}

/// Spins until the cycle counter passes `deadline`: a wait that costs no system call
/// and leaves the rings alone (polling them would pull their lines from the core the
/// kernel fills them on, packet by packet, and slow it down).
pub fn spin_until(deadline: u64) {
    while crate::pmd::cycles::now() < deadline {
        std::hint::spin_loop();
    }
}

/// Gives the calling thread the timer slack of a sleeping PMD.
pub fn set_sleep_timer_slack() {
    // SAFETY: sets this thread's timer slack; no memory is passed.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, PMD_TIMER_SLACK_NS, 0, 0, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sleep lasts at least its length (a direct system call, no retry loop).
    #[test]
    fn a_sleep_lasts_its_length() {
        for ms in [1, 20] {
            let t0 = std::time::Instant::now();
            sleep_for(Duration::from_millis(ms));
            let slept = t0.elapsed();
            assert!(slept >= Duration::from_millis(ms), "{slept:?} for {ms} ms");
        }
    }

    #[test]
    fn the_batch_wait_ramps_on_light_load_holds_on_medium_resets_on_full_or_empty() {
        let cycles = |us| crate::pmd::cycles::from_duration(Duration::from_micros(us));
        let mut w = BatchWait::new(Duration::from_micros(3));
        assert!(cycles(1) > 0 && !w.is_waiting());
        assert_eq!(w.after_iteration(0), 0, "no traffic: no wait, no ramp");
        assert_eq!(w.after_iteration(1), cycles(1));
        assert_eq!(w.after_iteration(WAIT_HOLD_THRESHOLD - 1), cycles(2));
        assert_eq!(w.after_iteration(0), 0, "an empty iteration never waits");
        assert!(!w.is_waiting(), "and starts the ramp over");
        assert_eq!(w.after_iteration(1), cycles(1), "1 us after a gap");
        assert_eq!(w.after_iteration(1), cycles(2));
        assert_eq!(w.after_iteration(WAIT_HOLD_THRESHOLD), cycles(2), "held");
        assert_eq!(w.after_iteration(MAX_BURST - 1), cycles(2), "held");
        assert_eq!(w.after_iteration(1), cycles(3));
        assert_eq!(w.after_iteration(1), cycles(3), "capped at 3 us");
        assert_eq!(w.after_iteration(1), cycles(3));
        assert_eq!(w.after_iteration(MAX_BURST), 0, "a full batch resets it");
        assert!(!w.is_waiting());
    }

    /// The spin lasts until its deadline.
    #[test]
    fn a_spin_lasts_until_its_deadline() {
        let hz = crate::pmd::cycles::cycles_per_sec();
        let t0 = std::time::Instant::now();
        spin_until(crate::pmd::cycles::now() + hz / 500);
        assert!(
            t0.elapsed() >= Duration::from_micros(1_900),
            "{:?}",
            t0.elapsed()
        );
    }

    #[test]
    fn the_load_sleep_ramps_below_its_target_holds_in_it_shortens_above_ends_when_outrun() {
        let max = Duration::from_micros(5);
        let us = Duration::from_micros;
        let (low, high) = (SLEEP_TARGET.start, SLEEP_TARGET.end);
        let mut s = Duration::ZERO;
        for want in 1..=5 {
            s = next_load_sleep(s, low - 1, false, max);
            assert_eq!(s, us(want), "a batch and more is still light");
        }
        assert_eq!(next_load_sleep(s, 1, false, max), max, "capped");
        let mut s = Duration::ZERO;
        for want in [1, 2, 4, 8, 16] {
            s = next_load_sleep(s, 0, false, us(16));
            assert_eq!(s, us(want), "doubling when idle");
        }
        assert_eq!(
            next_load_sleep(us(3), 0, false, us(16)),
            us(6),
            "doubling when idle"
        );
        assert_eq!(next_load_sleep(us(3), low, false, max), us(3), "held");
        assert_eq!(next_load_sleep(us(3), high - 1, false, max), us(3), "held");
        assert_eq!(next_load_sleep(us(3), high, false, max), us(2), "shortened");
        assert_eq!(
            next_load_sleep(Duration::ZERO, 500, false, max),
            Duration::ZERO
        );
        assert_eq!(
            next_load_sleep(us(3), high, true, max),
            Duration::ZERO,
            "outrun"
        );
        assert_eq!(
            next_load_sleep(us(9), low, false, max),
            max,
            "a lowered maximum"
        );
    }

    #[test]
    fn the_wait_ramps_on_light_load_holds_on_medium_resets_on_full() {
        let max = Duration::from_micros(5);
        let us = Duration::from_micros;
        let mut s = Duration::ZERO;
        for want in 1..=5 {
            s = next_wait(s, WAIT_HOLD_THRESHOLD - 1, max);
            assert_eq!(s, us(want));
        }
        assert_eq!(next_wait(s, 1, max), max, "capped");
        assert_eq!(next_wait(us(3), WAIT_HOLD_THRESHOLD, max), us(3));
        assert_eq!(next_wait(us(3), MAX_BURST - 1, max), us(3));
        assert_eq!(next_wait(us(3), MAX_BURST, max), Duration::ZERO);
    }
}
