//! Poll loop tests: threads on synthetic queues (no devices), their iterations and sleeps.

use super::*;
use crate::netdev::NetdevError;
use crate::pmd::stats::PmdStats;

/// A queue with endless traffic, handing over `per_call` packets each time.
struct EndlessRxq {
    per_call: usize,
}

impl Rxq for EndlessRxq {
    fn recv(
        &mut self,
        batch: &mut PacketBatch,
        pool: &mut PacketPool,
    ) -> Result<usize, NetdevError> {
        for _ in 0..self.per_call {
            batch.pkts.push(pool.get());
        }
        Ok(self.per_call)
    }
    fn qid(&self) -> usize {
        0
    }
}

/// Records, per iteration that received anything, the ports of its batches in order.
struct Recorder {
    pool: PacketPool,
    this_iteration: Vec<OdpPort>,
    log: Arc<Mutex<Vec<Vec<OdpPort>>>>,
}

impl PollWork for Recorder {
    type Ctl = ();
    fn process_rx(&mut self, port: OdpPort, _batch: &mut PacketBatch) {
        self.this_iteration.push(port);
    }
    fn handle_ctl(&mut self, _msg: ()) {}
    fn end_iteration(&mut self) -> bool {
        if !self.this_iteration.is_empty() {
            let it = std::mem::take(&mut self.this_iteration);
            self.log.lock().unwrap().push(it);
        }
        false
    }
    fn port_removed(&mut self, _port: OdpPort) {}
    fn pool(&mut self) -> &mut PacketPool {
        &mut self.pool
    }
}

/// The ports of each busy iteration's batches, as a `Recorder` logs them.
type IterationLog = Arc<Mutex<Vec<Vec<OdpPort>>>>;

/// A poll thread running a `Recorder` with no queues yet: the thread, its counters
/// and its log.
fn spawn_recorder(idle: IdlePolicy) -> (PollThread<()>, Arc<PmdCounters>, IterationLog) {
    let log = IterationLog::default();
    let work = Recorder {
        pool: PacketPool::new(256),
        this_iteration: Vec::new(),
        log: log.clone(),
    };
    let counters = Arc::new(PmdCounters::default());
    let t = PollThread::spawn("poll-test".into(), None, work, counters.clone(), idle).unwrap();
    (t, counters, log)
}

fn polled(port: OdpPort, per_call: usize) -> PolledRxq {
    PolledRxq {
        port,
        port_name: format!("q{port}"),
        rxq: Box::new(EndlessRxq { per_call }),
        counters: Arc::new(RxqCounters::default()),
    }
}

#[test]
fn a_queue_with_full_batches_is_drained_up_to_four_times_per_iteration() {
    let (t, counters, log) = spawn_recorder(IdlePolicy::BusyPoll);
    let (full, partial) = (polled(1, MAX_BURST), polled(2, 5));
    let (full_cycles, partial_cycles) = (full.counters.clone(), partial.counters.clone());
    assert!(t.send(PmdMsg::AddRxq(full)));
    assert!(t.send(PmdMsg::AddRxq(partial)));
    let start = std::time::Instant::now();
    while log.lock().unwrap().len() < 50 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    t.stop();
    let log = log.lock().unwrap();
    // Skip the iterations before both queues had arrived.
    let both: Vec<&Vec<OdpPort>> = log.iter().filter(|it| it.contains(&2)).collect();
    assert!(
        both.len() >= 20,
        "{} iterations with both queues",
        both.len()
    );
    for it in both {
        assert_eq!(
            it,
            &vec![1; RX_BURSTS_PER_VISIT]
                .into_iter()
                .chain([2])
                .collect::<Vec<_>>(),
            "the full queue four times, the partial one once"
        );
    }
    let st = counters.snapshot();
    assert!(st.rx_packets > 0 && st.cycles_busy > 0, "{st:?}");
    // Each queue is charged for its own visits.
    assert!(full_cycles.cycles.get() > 0 && partial_cycles.cycles.get() > 0);
}

/// A `LoadBasedSleep(max)` thread with no queues yet, and its counters.
fn spawn_sleeping(max: Duration) -> (PollThread<()>, Arc<PmdCounters>) {
    let (t, counters, _) = spawn_recorder(IdlePolicy::LoadBasedSleep(max));
    (t, counters)
}

/// Runs a `LoadBasedSleep(max)` thread on one queue handing over `per_call` packets
/// for `ms` milliseconds; returns its counters.
fn run_sleeping(per_call: usize, max: Duration, ms: u64) -> PmdStats {
    let (t, counters) = spawn_sleeping(max);
    assert!(t.send(PmdMsg::AddRxq(polled(1, per_call))));
    std::thread::sleep(Duration::from_millis(ms));
    t.stop();
    counters.snapshot()
}

#[test]
fn light_load_sleeps_longer_each_iteration_up_to_the_maximum() {
    let st = run_sleeping(MAX_BURST - 1, Duration::from_micros(200), 300);
    assert!(st.rx_packets > 0, "{st:?}");
    let sleep_us = cycles::to_ns(st.sleep_cycles) / 1000;
    assert!(st.sleep_iterations > 0 && sleep_us > 0, "{st:?}");
    // Every iteration is light: all begin with a sleep but the first and the one
    // after the queue's message was handled.
    assert!(st.iterations - st.sleep_iterations <= 3, "{st:?}");
    // 300 ms of sleeps stepping 1 us up to 200 us: after the ramp (200 iterations,
    // 20 ms) each one asks for 200 us, so far fewer iterations than a busy poll's
    // millions, and never more than one per microsecond slept.
    assert!(st.iterations < sleep_us, "{st:?}");
    let avg = sleep_us / st.sleep_iterations;
    assert!(
        avg >= 100,
        "average sleep {avg} us with a 200 us maximum: {st:?}"
    );
}

/// An idle PMD reaches its maximum sleep within a few iterations and keeps it while
/// control messages arrive (each skips one sleep but does not restart the ramp).
#[test]
fn an_idle_pmd_sleeps_near_its_maximum_despite_control_messages() {
    let (t, counters) = spawn_sleeping(Duration::from_millis(2));
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(20));
        assert!(t.send(PmdMsg::Work(())));
    }
    t.stop();
    let st = counters.snapshot();
    let sleep_us = cycles::to_ns(st.sleep_cycles) / 1000;
    // 400 ms idle with a message every 20 ms: about 200 sleeps of 2 ms. Restarting
    // the ramp at each message (OVS's 1 us steps) would have made thousands.
    assert!(st.sleep_iterations > 20, "{st:?}");
    assert!(
        st.sleep_iterations < 600,
        "{} sleeps in {sleep_us} us: {st:?}",
        st.sleep_iterations
    );
}

#[test]
fn full_batches_never_sleep() {
    let st = run_sleeping(MAX_BURST, Duration::from_micros(200), 100);
    assert!(st.rx_packets > 0, "{st:?}");
    // Only the empty iterations before the queue arrived may have slept.
    assert!(st.sleep_iterations <= 10, "{st:?}");
    assert!(st.iterations > 1000, "{st:?}");
}

/// A sleep is booked as sleep, not processing: the thread's light iterations take a
/// few microseconds each and its 200 us sleeps the rest, and busy, idle and sleep
/// cycles together account for the time it ran.
#[test]
fn sleeps_are_booked_as_sleep_and_the_books_cover_the_run() {
    let t0 = std::time::Instant::now();
    let st = run_sleeping(MAX_BURST - 1, Duration::from_micros(200), 300);
    let elapsed = t0.elapsed().as_nanos() as u64;
    assert!(st.rx_packets > 0 && st.sleep_iterations > 100, "{st:?}");
    assert!(
        st.cycles_busy < st.sleep_cycles,
        "processing {} against {} asleep: {st:?}",
        st.cycles_busy,
        st.sleep_cycles
    );
    let booked = cycles::to_ns(st.cycles_busy + st.cycles_idle + st.sleep_cycles);
    assert!(
        booked > elapsed / 2 && booked <= elapsed + elapsed / 20,
        "{booked} ns booked in a {elapsed} ns run: {st:?}"
    );
}

/// Runs a thread that starts busy-polling and is switched to `BatchWait(max)` by a
/// message (as a reload does), on one queue handing over `per_call` packets (none: no
/// queue) for `ms` milliseconds; returns its counters.
fn run_batch_waiting(per_call: Option<usize>, max: Duration, ms: u64) -> PmdStats {
    let (t, counters, _) = spawn_recorder(IdlePolicy::BusyPoll);
    assert!(t.send(PmdMsg::SetIdle(IdlePolicy::BatchWait(max))));
    if let Some(n) = per_call {
        assert!(t.send(PmdMsg::AddRxq(polled(1, n))));
    }
    std::thread::sleep(Duration::from_millis(ms));
    t.stop();
    counters.snapshot()
}

/// Light batches make a `BatchWait` thread spin after each iteration, 1 us longer each
/// time up to its maximum; the spins are idle time, not sleep or processing.
#[test]
fn light_batches_wait_up_to_the_maximum_and_the_wait_is_idle_time() {
    let st = run_batch_waiting(Some(3), Duration::from_micros(50), 300);
    assert!(st.rx_packets > 0 && st.batch_waits > 100, "{st:?}");
    assert_eq!(st.sleep_iterations, 0, "a batch wait is no sleep: {st:?}");
    let wait_us = cycles::to_ns(st.batch_wait_cycles) / 1000;
    let avg = wait_us / st.batch_waits;
    assert!(
        (40..=200).contains(&avg),
        "average wait {avg} us with a 50 us maximum: {st:?}"
    );
    assert!(
        st.cycles_idle >= st.batch_wait_cycles && st.batch_wait_cycles > st.cycles_busy,
        "{st:?}"
    );
}

/// Full batches reset the wait (the load outruns it) and an idle thread never waits:
/// a packet after a gap finds it polling.
#[test]
fn full_batches_and_empty_iterations_never_wait() {
    let st = run_batch_waiting(Some(MAX_BURST), Duration::from_micros(50), 100);
    assert!(st.rx_packets > 0 && st.iterations > 1000, "{st:?}");
    assert_eq!(st.batch_waits, 0, "{st:?}");
    let st = run_batch_waiting(None, Duration::from_micros(50), 100);
    assert!(st.iterations > 1000, "{st:?}");
    assert_eq!(st.batch_waits, 0, "{st:?}");
}
