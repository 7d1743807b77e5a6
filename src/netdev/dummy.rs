//! In-memory ports: frames injected by a test or benchmark appear on the rx queue, frames
//! the datapath sends are captured for inspection.
//!
//! Stands in for a real interface where root or traffic tools are not available (unit
//! tests, criterion benches). It goes through the same `Netdev` trait as AF_XDP ports, so
//! the whole fast path above it is the real one. In the default mode queues are locked
//! per batch, not per packet, and captured frames are copied into owned `Vec`s.
//!
//! Two modes exist for benchmarks, so the device itself does not dominate what is
//! measured (both are opt-in and documented on their setters):
//! - rx *replay* (`set_rx_replay`): the queue cycles through a fixed list of frames
//!   forever, copying each into a pool buffer like a NIC's DMA would; no lock, no
//!   allocation;
//! - tx *count only* (`set_tx_capture(false)`): sent packets are counted and their
//!   buffers returned to the pool, nothing is kept.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{Netdev, NetdevError, Rxq, Txq};
use crate::dpif::{PortSpec, PortStats};
use crate::packet::{PacketBatch, PacketPool, MAX_BURST};

#[derive(Default)]
struct Counters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
}

struct RxQueue {
    injected: Mutex<VecDeque<Vec<u8>>>,
    /// Replay list; `replay_gen` bumps on every change so queues notice without locking.
    replay: Mutex<Option<Arc<[Vec<u8>]>>>,
    replay_gen: AtomicU64,
}

struct Shared {
    rx: Vec<RxQueue>,
    tx: Mutex<Vec<Vec<u8>>>,
    tx_capture: AtomicBool,
    counters: Counters,
}

/// An in-memory device with `n_rxq` receive queues (option `n_rxq`, default 1). Option
/// `pollable=false` makes it report itself as not busy-pollable, so the datapath serves
/// it from the non-PMD thread (as it would a tap without queues). Cloning gives another
/// handle to the same device.
#[derive(Clone)]
pub struct DummyNetdev {
    name: String,
    mac: [u8; 6],
    pollable: bool,
    shared: Arc<Shared>,
}

impl DummyNetdev {
    /// Creates the device. Recognised options: `n_rxq` (1..=64), `pollable` (true|false).
    pub fn new(name: &str, spec: &PortSpec) -> Result<Self, NetdevError> {
        let pollable = match spec.options.get("pollable").map(String::as_str) {
            None | Some("true") => true,
            Some("false") => false,
            Some(v) => {
                return Err(NetdevError::BadOption(format!(
                    "pollable={v}: expected true or false"
                )))
            }
        };
        let n_rxq = match spec.options.get("n_rxq") {
            None => 1,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => n,
                _ => {
                    return Err(NetdevError::BadOption(format!(
                        "n_rxq={v}: expected an integer from 1 to 64"
                    )))
                }
            },
        };
        // A stable, locally administered MAC derived from the name.
        let h = crate::packet::flow_key::hash_words(name.bytes().map(u64::from), 0x5eed);
        let mac = [
            0x02,
            0x00,
            (h >> 24) as u8,
            (h >> 16) as u8,
            (h >> 8) as u8,
            h as u8,
        ];
        Ok(DummyNetdev {
            name: name.to_string(),
            mac,
            pollable,
            shared: Arc::new(Shared {
                rx: (0..n_rxq)
                    .map(|_| RxQueue {
                        injected: Mutex::new(VecDeque::new()),
                        replay: Mutex::new(None),
                        replay_gen: AtomicU64::new(0),
                    })
                    .collect(),
                tx: Mutex::new(Vec::new()),
                tx_capture: AtomicBool::new(true),
                counters: Counters::default(),
            }),
        })
    }

    /// Queues a frame for reception on queue `qid`. Out-of-range queues are an error
    /// naming the queue, not a panic.
    pub fn inject(&self, qid: usize, frame: &[u8]) -> Result<(), NetdevError> {
        let q = self.shared.rx.get(qid).ok_or(NetdevError::NoSuchQueue {
            qid,
            n: self.shared.rx.len(),
        })?;
        lock(&q.injected).push_back(frame.to_vec());
        Ok(())
    }

    /// Benchmark mode: queue `qid` delivers `frames` in a loop forever (a full batch on
    /// every poll), instead of injected frames. An empty list turns replay off.
    pub fn set_rx_replay(&self, qid: usize, frames: Vec<Vec<u8>>) -> Result<(), NetdevError> {
        let q = self.shared.rx.get(qid).ok_or(NetdevError::NoSuchQueue {
            qid,
            n: self.shared.rx.len(),
        })?;
        *lock(&q.replay) = (!frames.is_empty()).then(|| Arc::from(frames));
        q.replay_gen.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Whether sent frames are kept for `take_sent` (default) or only counted (benchmark
    /// mode: no copy, no lock per batch).
    pub fn set_tx_capture(&self, capture: bool) {
        self.shared.tx_capture.store(capture, Ordering::Relaxed);
    }

    /// Takes every frame sent so far.
    pub fn take_sent(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *lock(&self.shared.tx))
    }
}

/// Locks, ignoring poisoning (the protected data is a plain queue, valid after a panic).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct DummyRxq {
    qid: usize,
    shared: Arc<Shared>,
    replay: Option<Arc<[Vec<u8>]>>,
    replay_gen: u64,
    replay_pos: usize,
}

impl Rxq for DummyRxq {
    fn recv(
        &mut self,
        batch: &mut PacketBatch,
        pool: &mut PacketPool,
    ) -> Result<usize, NetdevError> {
        let q = &self.shared.rx[self.qid];
        let gen = q.replay_gen.load(Ordering::Acquire);
        if gen != self.replay_gen {
            self.replay = lock(&q.replay).clone();
            self.replay_gen = gen;
            self.replay_pos = 0;
        }
        let mut n = 0;
        let mut bytes = 0;
        if let Some(frames) = &self.replay {
            while batch.len() < MAX_BURST {
                let frame = &frames[self.replay_pos];
                self.replay_pos = (self.replay_pos + 1) % frames.len();
                let mut p = pool.get();
                p.set_data(frame);
                bytes += frame.len() as u64;
                batch.pkts.push(p);
                n += 1;
            }
        } else {
            let mut inj = lock(&q.injected);
            while batch.len() < MAX_BURST {
                let Some(frame) = inj.pop_front() else { break };
                let mut p = pool.get();
                p.set_data(&frame);
                bytes += frame.len() as u64;
                batch.pkts.push(p);
                n += 1;
            }
        }
        let c = &self.shared.counters;
        c.rx_packets.fetch_add(n as u64, Ordering::Relaxed);
        c.rx_bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(n)
    }

    fn qid(&self) -> usize {
        self.qid
    }
}

struct DummyTxq {
    shared: Arc<Shared>,
}

impl Txq for DummyTxq {
    fn send(&mut self, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize {
        let n = batch.len();
        let mut bytes = 0;
        if self.shared.tx_capture.load(Ordering::Relaxed) {
            let mut tx = lock(&self.shared.tx);
            for p in batch.pkts.drain(..) {
                bytes += p.len() as u64;
                tx.push(p.data().to_vec());
                pool.put(p);
            }
        } else {
            for p in batch.pkts.drain(..) {
                bytes += p.len() as u64;
                pool.put(p);
            }
        }
        let c = &self.shared.counters;
        c.tx_packets.fetch_add(n as u64, Ordering::Relaxed);
        c.tx_bytes.fetch_add(bytes, Ordering::Relaxed);
        n
    }

    fn flush(&mut self) {}
}

impl Netdev for DummyNetdev {
    fn name(&self) -> &str {
        &self.name
    }
    fn netdev_type(&self) -> &'static str {
        "dummy"
    }
    fn n_rxq(&self) -> usize {
        self.shared.rx.len()
    }
    fn open_rxq(&self, qid: usize) -> Result<Box<dyn Rxq>, NetdevError> {
        if qid >= self.shared.rx.len() {
            return Err(NetdevError::NoSuchQueue {
                qid,
                n: self.shared.rx.len(),
            });
        }
        Ok(Box::new(DummyRxq {
            qid,
            shared: self.shared.clone(),
            replay: None,
            replay_gen: 0,
            replay_pos: 0,
        }))
    }
    fn open_txq(&self, _thread_idx: usize) -> Result<Box<dyn Txq>, NetdevError> {
        Ok(Box::new(DummyTxq {
            shared: self.shared.clone(),
        }))
    }
    fn mac(&self) -> [u8; 6] {
        self.mac
    }
    fn pollable(&self) -> bool {
        self.pollable
    }
    fn mtu(&self) -> u32 {
        1500
    }
    fn is_up(&self) -> bool {
        true
    }
    fn stats(&self) -> PortStats {
        let c = &self.shared.counters;
        PortStats {
            rx_packets: c.rx_packets.load(Ordering::Relaxed),
            rx_bytes: c.rx_bytes.load(Ordering::Relaxed),
            tx_packets: c.tx_packets.load(Ordering::Relaxed),
            tx_bytes: c.tx_bytes.load(Ordering::Relaxed),
            ..PortStats::default()
        }
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
