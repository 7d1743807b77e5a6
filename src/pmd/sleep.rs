//! When a PMD with `pmd_max_sleep_us` set sleeps between polls, and for how long (the
//! load-based rule behind `IdlePolicy::LoadBasedSleep`). The poll loop does the sleeping;
//! this decides its length from what each iteration received.

use std::time::Duration;

use super::cycles;
use super::stats::PmdCounters;
use crate::netdev::SleepKicks;
use crate::packet::MAX_BURST;

/// A `LoadBasedSleep` PMD keeps polling without a pause after an iteration in which some
/// queue handed over at least this many packets (half a batch, OVS's threshold).
pub const SLEEP_LOAD_THRESHOLD: usize = MAX_BURST / 2;

/// How much longer a `LoadBasedSleep` PMD sleeps after each further light iteration.
const SLEEP_STEP: Duration = Duration::from_micros(1);

/// Timer slack of a sleeping PMD: the kernel's default of 50 us would turn every short
/// sleep into a 50 us one.
const PMD_TIMER_SLACK_NS: libc::c_ulong = 1_000;

/// The sleep level of a `LoadBasedSleep` thread after an iteration, from the level before
/// it and the most packets one rx queue handed over in one call during it.
///
/// OVS resets the sleep whenever a queue hands over half a batch, so the iteration after
/// every reset finds only what arrived while it processed: measured here at 0.39 Mpps
/// with a 50 us maximum, 16.7 packets per output batch. Holding the sleep while batches
/// are between half and full, and resetting it only on a full one (the load is
/// outrunning the sleep), gave 21.9. An empty iteration doubles the sleep: OVS's 1 us
/// steps take 2,000 iterations (2 s, most of them short sleeps that cost more to enter
/// than they save) to reach a 2 ms maximum, and an idle PMD here then averaged 553 us
/// per sleep and 6.9% of its core, since control messages (each of which skips one
/// sleep, see the poll loop) kept restarting the ramp under the old reset.
pub fn next_sleep(last: Duration, busiest: usize, max: Duration) -> Duration {
    if busiest >= MAX_BURST {
        Duration::ZERO
    } else if busiest == 0 {
        (last * 2).max(last + SLEEP_STEP).min(max)
    } else if busiest < SLEEP_LOAD_THRESHOLD {
        (last + SLEEP_STEP).min(max)
    } else {
        // A lowered maximum (a reload) applies at once.
        last.min(max)
    }
}

/// A `LoadBasedSleep` thread's sleep at the end of a light iteration: the transmit kicks
/// the iteration's flush left to it (`SleepKicks`) and the clock that books their
/// on-CPU time to the iteration.
pub struct IterationSleep {
    kicks: SleepKicks,
    cpu: SleepCpuClock,
}

impl Default for IterationSleep {
    /// Room for four kicking ports before the list grows (once).
    fn default() -> Self {
        IterationSleep {
            kicks: SleepKicks::with_capacity(4),
            cpu: SleepCpuClock::default(),
        }
    }
}

impl IterationSleep {
    /// Where the iteration's flush leaves its kicks (`PollWork::end_iteration`).
    pub fn kicks(&mut self) -> &mut SleepKicks {
        &mut self.kicks
    }

    /// The thread may have left its CPU since the last sleep (see `SleepCpuClock`).
    pub fn forget(&mut self) {
        self.cpu.forget();
    }

    /// Sleeps `d` from the iteration's last cycle count `end`, making the kicks left to
    /// it; `after_kicks` runs once they are made. Counts the sleep (its off-CPU part) in
    /// `counters` and returns the cycle count after it and the cycles it spent on CPU
    /// making kicks, which belong to the iteration's processing.
    pub fn sleep(
        &mut self,
        d: Duration,
        end: u64,
        counters: &PmdCounters,
        after_kicks: impl FnOnce(),
    ) -> (u64, u64) {
        let cpu_before = (!self.kicks.is_empty()).then(|| self.cpu.before_sleep(end));
        self.kicks.sleep(d);
        let (resume, on_cpu) = match cpu_before {
            Some(before) => {
                after_kicks();
                let (now, on_cpu) = self.cpu.on_cpu_since(before);
                let on_cpu = on_cpu.min(now.wrapping_sub(end));
                counters.sleep_kicks.add(1);
                counters.sleep_kick_cycles.add(on_cpu);
                (now, on_cpu)
            }
            None => {
                self.cpu.forget();
                (cycles::now(), 0)
            }
        };
        counters.sleep_cycles.add(resume.wrapping_sub(end) - on_cpu);
        counters.sleep_iterations.add(1);
        (resume, on_cpu)
    }
}

/// Tells the on-CPU part of a sleep that made transmit kicks (`SleepKicks`) from the
/// rest: the kicks' kernel work is processing, as it is when a `sendto` makes it, while
/// the off-CPU part is sleep. The thread's CPU clock is a system call (~1,400 cycles
/// here), so it is read once per such sleep, after it; the reading before it is
/// extrapolated from the previous one with the cycle counter, valid while the thread
/// stayed on its CPU in between (`forget` after anything that may block; preemption in
/// between would shorten the on-CPU part, never lengthen it). What is on CPU includes
/// the sleep's own entry and exit, which `sendto` and `nanosleep` apart would put in
/// neither.
#[derive(Debug, Default)]
struct SleepCpuClock {
    /// A cycle count and the thread's CPU time in nanoseconds at that count.
    mark: Option<(u64, u64)>,
}

impl SleepCpuClock {
    /// The thread's CPU time at cycle count `tsc` (just before a sleep).
    fn before_sleep(&mut self, tsc: u64) -> u64 {
        match self.mark {
            Some((at, ns)) => ns.wrapping_add(cycles::to_ns(tsc.wrapping_sub(at))),
            None => thread_cpu_ns(),
        }
    }

    /// The cycle count now and the cycles on CPU since `before` (what `before_sleep`
    /// returned), the clock read included; remembers the reading.
    fn on_cpu_since(&mut self, before: u64) -> (u64, u64) {
        let ns = thread_cpu_ns();
        let tsc = cycles::now();
        self.mark = Some((tsc, ns));
        (tsc, cycles::from_ns(ns.saturating_sub(before)))
    }

    /// Drops the reading: the thread may have left its CPU since.
    fn forget(&mut self) {
        self.mark = None;
    }
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // The system call directly: the vDSO has no thread clocks and would only make it.
    // SAFETY: writes the calling thread's CPU time into `ts`.
    unsafe {
        libc::syscall(
            libc::SYS_clock_gettime,
            libc::CLOCK_THREAD_CPUTIME_ID,
            &mut ts as *mut libc::timespec,
        )
    };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Gives the calling thread the timer slack of a sleeping PMD.
pub fn set_sleep_timer_slack() {
    // SAFETY: sets this thread's timer slack; no memory is passed.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, PMD_TIMER_SLACK_NS, 0, 0, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cycles spent spinning count as on CPU, cycles asleep do not, with the reading
    /// before extrapolated from a mark or taken afresh.
    #[test]
    fn the_on_cpu_part_of_an_interval_counts_spinning_not_sleeping() {
        let hz = cycles::cycles_per_sec();
        let spin = |ms: u64| {
            let t0 = std::time::Instant::now();
            while t0.elapsed() < Duration::from_millis(ms) {
                std::hint::spin_loop();
            }
        };
        let mut clock = SleepCpuClock::default();
        // No mark: a fresh reading.
        let before = clock.before_sleep(cycles::now());
        std::thread::sleep(Duration::from_millis(30));
        let (_, asleep) = clock.on_cpu_since(before);
        assert!(
            asleep < hz / 200,
            "{asleep} cycles on CPU over a 30 ms sleep"
        );
        // A mark, then 30 ms spinning before and after the "sleep" reading.
        spin(30);
        let before = clock.before_sleep(cycles::now());
        spin(30);
        let (_, spun) = clock.on_cpu_since(before);
        assert!(
            spun > hz * 20 / 1000 && spun < hz * 45 / 1000,
            "{spun} cycles on CPU over 30 ms spinning ({hz} per second)"
        );
        clock.forget();
        assert!(clock.mark.is_none());
    }

    #[test]
    fn the_sleep_ramps_on_light_load_doubles_when_idle_holds_on_medium_resets_on_full() {
        let max = Duration::from_micros(5);
        let us = Duration::from_micros;
        let mut s = Duration::ZERO;
        for want in 1..=5 {
            s = next_sleep(s, SLEEP_LOAD_THRESHOLD - 1, max);
            assert_eq!(s, us(want));
        }
        assert_eq!(next_sleep(s, 1, max), max, "capped");
        let mut s = Duration::ZERO;
        for want in [1, 2, 4, 8, 16] {
            s = next_sleep(s, 0, us(16));
            assert_eq!(s, us(want), "doubling when idle");
        }
        assert_eq!(next_sleep(us(3), SLEEP_LOAD_THRESHOLD, max), us(3));
        assert_eq!(next_sleep(us(3), MAX_BURST - 1, max), us(3));
        assert_eq!(next_sleep(us(3), MAX_BURST, max), Duration::ZERO);
    }
}
