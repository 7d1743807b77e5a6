//! Native tunnel actions of the userspace datapath: `tnl_push` (prepend the translator's
//! prebuilt outer header and send out of the underlay port) and `tnl_pop` (validate and
//! strip the outer header, then recirculate as the tunnel port with tunnel metadata).
//!
//! Per packet nothing is allocated: the header goes into the buffer's headroom and the
//! decapsulated sub-batch reuses a spare batch. Failures are counted and dropped: a
//! frame that would exceed the underlay MTU (`tnl_mtu_drops`), one that cannot take the
//! header (`tnl_push_errors`) and one whose outer headers are bad, truncated or not the
//! port's encapsulation (`tnl_pop_errors`).

use super::pmd_datapath::PmdDatapath;
use crate::dpif::{TnlPush, TunnelType};
use crate::netdev::tunnel::tunnel_type_of;
use crate::netdev::Netdev;
use crate::packet::tunnel::{tnl_pop_as, tnl_push};
use crate::packet::wire::ethernet;
use crate::packet::{OdpPort, PacketBatch};

/// What a poll thread needs to know about a port besides its tx queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxPortInfo {
    /// The device's MTU (IP bytes after the Ethernet header); 0 = not checked.
    pub mtu: u32,
    /// For a tunnel vport, the encapsulation `tnl_pop` expects.
    pub tunnel: Option<TunnelType>,
}

impl TxPortInfo {
    /// The MTU and tunnel type of `netdev`.
    pub fn of(netdev: &dyn Netdev) -> Self {
        let mtu = netdev.mtu();
        TxPortInfo {
            mtu: if mtu == u32::MAX { 0 } else { mtu },
            tunnel: tunnel_type_of(netdev.netdev_type()),
        }
    }
}

/// Bytes of a frame that count against the MTU: all but the Ethernet header (and an
/// 802.1Q tag, which a real NIC does not count either).
fn l3_len(frame: &[u8]) -> usize {
    let mut hdr = ethernet::field::HEADER_LEN;
    if frame.len() >= 18 && frame[12] == 0x81 && frame[13] == 0x00 {
        hdr += 4;
    }
    frame.len().saturating_sub(hdr)
}

impl PmdDatapath {
    /// Encapsulates the batch (a copy unless `last`) with `t.header` and queues it on
    /// `t.out_port`. The UDP source port comes from each packet's (inner) hash.
    pub(super) fn tnl_push_output(&mut self, batch: &mut PacketBatch, t: &TnlPush, last: bool) {
        let mut b = if last {
            let mut b = self.take_batch();
            std::mem::swap(&mut b.pkts, &mut batch.pkts);
            b
        } else {
            self.copy_batch(batch, |_| true)
        };
        let mtu = self
            .tx_ports
            .iter()
            .find(|p| p.port == t.out_port)
            .map_or(0, |p| p.info.mtu) as usize;
        let mut keep = 0;
        for i in 0..b.pkts.len() {
            let p = &mut b.pkts[i];
            let hash = p.meta.hash;
            let ok = match tnl_push(p, t, hash) {
                Ok(()) if mtu != 0 && l3_len(p.data()) > mtu => {
                    self.counters.tnl_mtu_drops.add(1);
                    false
                }
                Ok(()) => {
                    p.meta.tunnel = Default::default();
                    true
                }
                Err(e) => {
                    self.counters.tnl_push_errors.add(1);
                    tracing::trace!("tnl_push: {e}");
                    false
                }
            };
            if ok {
                b.pkts.swap(keep, i);
                keep += 1;
            }
        }
        for p in b.pkts.drain(keep..) {
            self.pool.put(p);
        }
        self.output(&mut b, t.out_port, true);
        self.recycle_batch(b);
    }

    /// Decapsulates the batch (a copy unless `last`) as tunnel port `port` and runs the
    /// inner frames through the datapath again with `in_port` = `port`, recirculation id
    /// 0 and the outer headers as tunnel metadata.
    pub(super) fn tnl_pop_recirc(
        &mut self,
        batch: &mut PacketBatch,
        port: OdpPort,
        depth: u32,
        last: bool,
    ) {
        let mut b = if last {
            let mut b = self.take_batch();
            std::mem::swap(&mut b.pkts, &mut batch.pkts);
            b
        } else {
            self.copy_batch(batch, |_| true)
        };
        if depth >= self.max_recirc_depth {
            self.counters.action_errors.add(b.len() as u64);
            self.recycle_batch(b);
            return;
        }
        let kind = self
            .tx_ports
            .iter()
            .find(|p| p.port == port)
            .and_then(|p| p.info.tunnel);
        let Some(kind) = kind else {
            // Not (or no longer) a tunnel port of this datapath.
            self.counters.tx_no_port.add(b.len() as u64);
            self.recycle_batch(b);
            return;
        };
        let mut keep = 0;
        for i in 0..b.pkts.len() {
            let p = &mut b.pkts[i];
            match tnl_pop_as(p, Some(kind)) {
                Ok(_) => {
                    p.meta.in_port = port;
                    p.meta.recirc_id = 0;
                    p.meta.has_hash = false;
                    b.pkts.swap(keep, i);
                    keep += 1;
                }
                Err(e) => {
                    self.counters.tnl_pop_errors.add(1);
                    tracing::trace!("tnl_pop on port {port}: {e}");
                }
            }
        }
        for p in b.pkts.drain(keep..) {
            self.pool.put(p);
        }
        self.counters.recirculations.add(b.len() as u64);
        self.process_packets(&mut b, depth + 1);
        self.recycle_batch(b);
    }
}
