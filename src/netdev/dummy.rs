//! In-memory ports: frames injected by a test or benchmark appear on the rx queue, frames
//! the datapath sends are captured for inspection.
//!
//! Stands in for a real interface where root or traffic tools are not available (unit
//! tests, criterion benches). It goes through the same `Netdev` trait as AF_XDP ports, so
//! the whole fast path above it is the real one. Queues are locked per batch, not per
//! packet.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
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

struct Shared {
    rx: Vec<Mutex<VecDeque<Vec<u8>>>>,
    tx: Mutex<Vec<Vec<u8>>>,
    counters: Counters,
}

/// An in-memory device with `n_rxq` receive queues (option `n_rxq`, default 1).
pub struct DummyNetdev {
    name: String,
    mac: [u8; 6],
    shared: Arc<Shared>,
}

impl DummyNetdev {
    /// Creates the device. Recognised option: `n_rxq` (1..=64).
    pub fn new(name: &str, spec: &PortSpec) -> Result<Self, NetdevError> {
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
            shared: Arc::new(Shared {
                rx: (0..n_rxq).map(|_| Mutex::new(VecDeque::new())).collect(),
                tx: Mutex::new(Vec::new()),
                counters: Counters::default(),
            }),
        })
    }

    /// Queues a frame for reception on queue `qid`.
    pub fn inject(&self, qid: usize, frame: &[u8]) {
        self.shared.rx[qid]
            .lock()
            .unwrap()
            .push_back(frame.to_vec());
    }

    /// Takes every frame sent so far.
    pub fn take_sent(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.shared.tx.lock().unwrap())
    }
}

struct DummyRxq {
    qid: usize,
    shared: Arc<Shared>,
}

impl Rxq for DummyRxq {
    fn recv(
        &mut self,
        batch: &mut PacketBatch,
        pool: &mut PacketPool,
    ) -> Result<usize, NetdevError> {
        let mut q = self.shared.rx[self.qid].lock().unwrap();
        let mut n = 0;
        let mut bytes = 0;
        while batch.len() < MAX_BURST {
            let Some(frame) = q.pop_front() else { break };
            let mut p = pool.get();
            p.set_data(&frame);
            bytes += frame.len() as u64;
            batch.pkts.push(p);
            n += 1;
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
        let mut tx = self.shared.tx.lock().unwrap();
        for p in batch.pkts.drain(..) {
            bytes += p.len() as u64;
            tx.push(p.data().to_vec());
            pool.put(p);
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
}
