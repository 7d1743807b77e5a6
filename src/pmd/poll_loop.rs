//! The poll loop a PMD thread (or the non-PMD thread) runs, and its handle.
//!
//! Each iteration: drain control messages (non-blocking `try_recv`), poll every owned rx
//! queue once (again while it hands over full batches, up to `RX_BURSTS_PER_VISIT`), hand
//! each non-empty batch to the `PollWork`, let the work flush its tx batches, and charge
//! the iteration's cycles to "busy" or "idle". The loop owns its rx queues outright; they
//! arrive and leave only through messages, so nothing on this path takes a lock or waits
//! for the control plane. A PMD busy-polls (spinning briefly after light iterations with a
//! batch wait, or sleeping with `pmd_max_sleep_us`); the non-PMD thread sleeps in poll(2)
//! when an iteration found nothing (see `waker`).

use std::cell::Cell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::cycles;
use super::sleep::{next_load_sleep, set_sleep_timer_slack, sleep_for, spin_until, BatchWait};
use super::stats::{PmdCounters, RxqCounters};
use super::waker::Waker;
use crate::netdev::Rxq;
use crate::packet::{OdpPort, PacketBatch, PacketPool, MAX_BURST};

/// The datapath work a poll thread performs on what it receives.
pub trait PollWork: Send + 'static {
    /// Work-specific control messages (flow table changes, dumps, tx ports).
    type Ctl: Send + 'static;
    /// Processes one received batch from `port`. Packets left in the batch afterwards are
    /// returned to the pool by the loop.
    fn process_rx(&mut self, port: OdpPort, batch: &mut PacketBatch);
    /// Applies a control message.
    fn handle_ctl(&mut self, msg: Self::Ctl);
    /// Called once per iteration before any `process_rx`, with the cycle counter read at
    /// the end of the previous iteration: the work's clock for this iteration (output
    /// deadlines, housekeeping), so that it never reads the counter itself: one read
    /// per iteration serves the loop's accounting and the work alike.
    fn begin_iteration(&mut self, _tsc: u64) {}
    /// Once per iteration after polling: flush the tx batches that are due.
    /// Returns whether it transmitted anything (held output leaving after a flush
    /// interval makes an iteration busy even when it received nothing).
    fn end_iteration(&mut self) -> bool;
    /// Drops everything that refers to `port` (its tx queue), before its rx queues go.
    fn port_removed(&mut self, port: OdpPort);
    /// The thread's buffer pool.
    fn pool(&mut self) -> &mut PacketPool;
}

/// An rx queue as a poll thread owns it.
pub struct PolledRxq {
    /// Datapath port number.
    pub port: OdpPort,
    /// Port name (for logs).
    pub port_name: String,
    /// The queue.
    pub rxq: Box<dyn Rxq>,
    /// Counters shared with the control plane.
    pub counters: Arc<RxqCounters>,
}

/// Messages every poll thread understands.
pub enum PmdMsg<C> {
    /// Start polling this queue.
    AddRxq(PolledRxq),
    /// Stop polling queue `qid` of `port` and hand it back (for reassignment).
    TakeRxq {
        /// Port.
        port: OdpPort,
        /// Queue index.
        qid: usize,
        /// Where the queue goes; `None` if this thread did not have it.
        reply: Sender<Option<PolledRxq>>,
    },
    /// Forget a port entirely (rx queues and, through `PollWork::port_removed`, tx), then
    /// acknowledge: after the ack the thread no longer touches the device.
    DelPort {
        /// Port.
        port: OdpPort,
        /// Acknowledgement.
        reply: Sender<()>,
    },
    /// Reply once every earlier message has been applied.
    Sync(Sender<()>),
    /// Wait this way from now on when the load is light (a PMD's `pmd_max_sleep_us` or
    /// `pmd_batch_wait_us` changed by a reload: `BusyPoll`, `BatchWait` or
    /// `LoadBasedSleep`).
    SetIdle(IdlePolicy),
    /// A message for the work.
    Work(C),
    /// Exit the loop.
    Quit,
}

/// A busy-polling thread checks its control channel once per this many iterations.
const CTL_POLL_EVERY: u32 = 8;

/// Longest sleep of an idle `Wait` thread whose queues all have a `wait_fd` (it wakes for
/// traffic and messages anyway; this bounds how stale its clock and housekeeping get).
pub const IDLE_SLEEP_MAX: Duration = Duration::from_millis(100);

/// How a thread waits when it found nothing to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Busy-poll (a PMD thread on a dedicated core).
    BusyPoll,
    /// Busy-poll, but after an iteration in which no queue handed over a full batch, spin
    /// before the next poll (without touching the rings), 1 us longer after each light
    /// iteration up to this, so that packets gather into fuller batches; a full batch
    /// or an empty iteration resets the wait (`sleep::BatchWait`). The
    /// spin is booked as idle time: the PMD could have done other work in it.
    BatchWait(Duration),
    /// Sleep between polls while the PMD keeps up: after an iteration that took in fewer
    /// packets than `SLEEP_TARGET` (three batches), sleep `SLEEP_STEP` longer than before
    /// (twice as long after an empty one), up to this; above the target shorter, within
    /// it the same; a queue that filled every batch of its visit ends the sleep
    /// (`sleep::next_load_sleep`). OVS 3.1's `pmd-maxsleep`, which ends the sleep at
    /// half a batch, aiming for fuller iterations and with a faster ramp when idle.
    /// At partial load it trades up to this much latency for fewer, fuller batches (the
    /// per-iteration costs shared by more packets), and an idle PMD's core for nothing.
    LoadBasedSleep(Duration),
    /// Sleep when idle (the non-PMD thread, which serves devices that cannot be
    /// busy-polled and executes packets for the control plane): in poll(2) on a waker the
    /// control plane signals and on the rx queues' `wait_fd`s, for up to `IDLE_SLEEP_MAX`,
    /// or for up to this long when a queue has no descriptor to wait on.
    Wait(Duration),
}

static NEXT_THREAD_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Id of the poll thread running on this OS thread; 0 on any other thread.
    static CURRENT_POLL_THREAD: Cell<u64> = const { Cell::new(0) };
}

/// A running poll thread.
pub struct PollThread<C: Send + 'static> {
    id: u64,
    tx: Sender<PmdMsg<C>>,
    /// Wakes a sleeping `Wait` thread after a message is queued (`None` for PMDs).
    waker: Option<Arc<Waker>>,
    join: Mutex<Option<JoinHandle<()>>>,
    /// Core the thread is pinned to; `None` for the unpinned non-PMD thread.
    pub core: Option<usize>,
    /// Its counters.
    pub counters: Arc<PmdCounters>,
}

impl<C: Send + 'static> PollThread<C> {
    /// Starts a thread running `work`, pinned to `core` if given.
    pub fn spawn<W: PollWork<Ctl = C>>(
        name: String,
        core: Option<usize>,
        work: W,
        counters: Arc<PmdCounters>,
        idle: IdlePolicy,
    ) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let waker = match idle {
            IdlePolicy::BusyPoll | IdlePolicy::BatchWait(_) | IdlePolicy::LoadBasedSleep(_) => None,
            IdlePolicy::Wait(_) => Some(Arc::new(Waker::new()?)),
        };
        let w2 = waker.clone();
        let c2 = counters.clone();
        let id = NEXT_THREAD_ID.fetch_add(1, Ordering::Relaxed);
        let join = std::thread::Builder::new().name(name).spawn(move || {
            CURRENT_POLL_THREAD.with(|c| c.set(id));
            if let Some(id) = core {
                if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                    tracing::warn!(core = id, "could not pin PMD thread to its core");
                }
            }
            run(work, rx, c2, idle, w2);
        })?;
        Ok(PollThread {
            id,
            tx,
            waker,
            join: Mutex::new(Some(join)),
            core,
            counters,
        })
    }

    /// Whether the caller is running on this poll thread (for example inside an upcall
    /// it made): such a caller must not wait for the thread to answer a message.
    pub fn is_current(&self) -> bool {
        CURRENT_POLL_THREAD.with(|c| c.get()) == self.id
    }

    /// Sends a message; false if the thread is gone.
    pub fn send(&self, msg: PmdMsg<C>) -> bool {
        let ok = self.tx.send(msg).is_ok();
        if let Some(w) = &self.waker {
            w.wake();
        }
        ok
    }

    /// Stops the thread and waits for it (idempotent).
    pub fn stop(&self) {
        let _ = self.send(PmdMsg::Quit);
        let j = self.join.lock().map(|mut g| g.take()).unwrap_or(None);
        if let Some(j) = j {
            let _ = j.join();
        }
    }
}

impl<C: Send + 'static> Drop for PollThread<C> {
    fn drop(&mut self) {
        self.stop();
    }
}

fn handle<W: PollWork>(
    msg: PmdMsg<W::Ctl>,
    work: &mut W,
    rxqs: &mut Vec<PolledRxq>,
    idle: &mut IdlePolicy,
) -> bool {
    match msg {
        PmdMsg::AddRxq(q) => rxqs.push(q),
        PmdMsg::TakeRxq { port, qid, reply } => {
            let pos = rxqs
                .iter()
                .position(|q| q.port == port && q.rxq.qid() == qid);
            let _ = reply.send(pos.map(|i| rxqs.remove(i)));
        }
        PmdMsg::DelPort { port, reply } => {
            // Flush what is queued for the port first, then forget it.
            work.end_iteration();
            work.port_removed(port);
            rxqs.retain(|q| q.port != port);
            let _ = reply.send(());
        }
        PmdMsg::Sync(reply) => {
            let _ = reply.send(());
        }
        PmdMsg::SetIdle(p) => {
            if let IdlePolicy::LoadBasedSleep(_) = p {
                set_sleep_timer_slack();
            }
            *idle = p;
        }
        PmdMsg::Work(c) => work.handle_ctl(c),
        PmdMsg::Quit => return false,
    }
    true
}

/// Full batches taken from one rx queue per visit. Under load (the queue hands over full
/// batches) an iteration then processes up to 128 packets before its one transmit flush,
/// so the user-space work runs back to back rather than after every kernel transmit
/// (which evicts the switch's code and data from L1): with the one kick per iteration
/// (`XskQueue::flush`), a median 296 -> 258 user cycles per packet at saturation on
/// veth, four pairs; 8 batches per visit measured no better (benches/e2e/HISTORY.md). It
/// costs the first packet of an iteration the processing time of up to three more
/// batches (a few microseconds) before it leaves, and only when packets queue up
/// anyway; a queue that returns a partial batch is left at once. Other queues of the
/// thread wait up to that long too, so it stays small.
pub const RX_BURSTS_PER_VISIT: usize = 4;

/// Control messages applied per iteration at most.
const MAX_CTL_PER_ITERATION: usize = 16;

/// The batch-wait state of a thread that waits the `idle` way (none unless `BatchWait`).
fn batch_wait_of(idle: IdlePolicy) -> Option<BatchWait> {
    match idle {
        IdlePolicy::BatchWait(max) => Some(BatchWait::new(max)),
        _ => None,
    }
}

/// The loop itself.
fn run<W: PollWork>(
    mut work: W,
    rx: Receiver<PmdMsg<W::Ctl>>,
    counters: Arc<PmdCounters>,
    mut idle: IdlePolicy,
    waker: Option<Arc<Waker>>,
) {
    let mut rxqs: Vec<PolledRxq> = Vec::new();
    let mut batch = PacketBatch::new();
    let mut idle_streak = false;
    let mut iteration = 0u32;
    let mut wait_fds: Vec<RawFd> = Vec::new();
    let mut pollfds: Vec<libc::pollfd> = Vec::new();
    let mut sleep = Duration::ZERO;
    if let IdlePolicy::LoadBasedSleep(_) = idle {
        set_sleep_timer_slack();
    }
    let mut batch_wait = batch_wait_of(idle);
    // The cycle counter at the end of the previous iteration; re-read after a sleep or
    // control messages, which are neither busy nor idle time.
    let mut last = cycles::now();
    loop {
        // An idle `Wait` thread sleeps until a message, traffic on a queue with a
        // descriptor, or the timeout; then looks at everything once.
        if let (IdlePolicy::Wait(poll_every), true, Some(w)) = (idle, idle_streak, &waker) {
            wait_fds.clear();
            let mut all_waitable = true;
            for q in &rxqs {
                match q.rxq.wait_fd() {
                    Some(fd) => wait_fds.push(fd),
                    None => all_waitable = false,
                }
            }
            let timeout = if all_waitable {
                IDLE_SLEEP_MAX
            } else {
                poll_every
            };
            w.sleep(&wait_fds, timeout, &mut pollfds);
            last = cycles::now();
        }
        // Control plane: never blocks on a PMD, and a burst of messages is spread over
        // iterations so it cannot stall forwarding. A busy-polling thread looks at the
        // channel every CTL_POLL_EVERY iterations only (a few microseconds): checking an
        // empty channel each time was ~4% of the PMD's time. A sleeping one looks every
        // time (so a message waits at most one sleep, and one that follows a message
        // none).
        iteration = iteration.wrapping_add(1);
        let busy_polling = !matches!(idle, IdlePolicy::Wait(_));
        let pausing = !sleep.is_zero() || batch_wait.is_some_and(|w| w.is_waiting());
        let ctl_budget = if busy_polling && !pausing && iteration % CTL_POLL_EVERY != 0 {
            0
        } else {
            MAX_CTL_PER_ITERATION
        };
        // Any message handled means more may be queued (the budget ran out): no sleep
        // next iteration.
        let mut handled = 0;
        let idle_before = idle;
        for _ in 0..ctl_budget {
            let msg = match rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            };
            handled += 1;
            if !handle(msg, &mut work, &mut rxqs, &mut idle) {
                return;
            }
        }
        if handled > 0 {
            if idle != idle_before {
                batch_wait = batch_wait_of(idle);
            }
            last = cycles::now();
        }
        // One TSC read per iteration (at its end, which is also where the next one
        // starts), plus one per busy queue after the first: each busy queue is charged
        // from the previous stamp up to the next busy queue's, and the last one up to
        // the end of the iteration, so the empty polls around it and the transmit its
        // packets caused land on it too. Against the plain way (a read at the start, one
        // after each busy queue, one at the end: three with one busy queue), six
        // alternating saturated runs measured 219-349 user cycles per packet (median 236)
        // for this against 222-341 (median 291); skipping 7 in 8 of the remaining reads
        // changed nothing measurable.
        work.begin_iteration(last);
        // System calls made by control messages belong to no iteration's processing.
        cycles::take_syscall_cycles();
        let start = last;
        let mut stamp = start;
        let mut charged: Option<usize> = None;
        let mut got = 0u64;
        let mut busiest = 0usize;
        let mut outran = false;
        for i in 0..rxqs.len() {
            // A queue that hands over a full batch is polled again, up to
            // RX_BURSTS_PER_VISIT times, before the iteration's output is flushed.
            for burst in 0..RX_BURSTS_PER_VISIT {
                let q = &mut rxqs[i];
                let n = match q.rxq.recv(&mut batch, work.pool()) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        counters.rx_errors.add(1);
                        tracing::debug!(port = %q.port_name, qid = q.rxq.qid(), "rx error: {e}");
                        break;
                    }
                };
                counters.rx_packets.add(n as u64);
                q.counters.packets.add(n as u64);
                work.process_rx(q.port, &mut batch);
                let pool = work.pool();
                for p in batch.pkts.drain(..) {
                    pool.put(p);
                }
                if let Some(prev) = charged.filter(|&prev| prev != i) {
                    let now = cycles::now();
                    rxqs[prev].counters.cycles.add(now.wrapping_sub(stamp));
                    stamp = now;
                }
                charged = Some(i);
                got += n as u64;
                busiest = busiest.max(n);
                if n < MAX_BURST {
                    break;
                }
                outran |= burst + 1 == RX_BURSTS_PER_VISIT;
            }
        }
        let sent = work.end_iteration();
        let end = cycles::now();
        last = end;
        // A `LoadBasedSleep` PMD whose iteration was light sleeps at its end, after the
        // flush made its transmit kicks. Control messages often come in a row (a
        // flow-table change, then a sync): an iteration that handled one does not sleep,
        // so the next poll of the channel comes at once, though the level stays.
        sleep = match idle {
            IdlePolicy::LoadBasedSleep(max) => next_load_sleep(sleep, got as usize, outran, max),
            _ => Duration::ZERO,
        };
        if !sleep.is_zero() && handled == 0 {
            // What it slept is measured, not assumed, from the counter reads around it.
            sleep_for(sleep);
            last = cycles::now();
            counters.sleep_cycles.add(last.wrapping_sub(end));
            counters.sleep_iterations.add(1);
        }
        // A `BatchWait` PMD spins after a light iteration's flush; the spin is idle time.
        let mut waited = 0;
        if let Some(w) = batch_wait.as_mut() {
            let spin = w.after_iteration(busiest);
            if spin > 0 && handled == 0 {
                spin_until(end.wrapping_add(spin));
                last = cycles::now();
                waited = last.wrapping_sub(end);
                counters.batch_wait_cycles.add(waited);
                counters.batch_waits.add(1);
            }
        }
        if let Some(prev) = charged {
            rxqs[prev].counters.cycles.add(end.wrapping_sub(stamp));
        }
        let spent = end.wrapping_sub(start);
        let in_syscalls = cycles::take_syscall_cycles();
        if got > 0 || sent {
            counters.cycles_busy.add(spent);
            counters.cycles_syscall.add(in_syscalls);
        } else {
            counters.cycles_idle.add(spent);
        }
        if waited > 0 {
            counters.cycles_idle.add(waited);
        }
        counters.iterations.add(1);
        idle_streak = got == 0 && !sent && handled == 0;
    }
}

#[cfg(test)]
#[path = "poll_loop_tests.rs"]
mod tests;
