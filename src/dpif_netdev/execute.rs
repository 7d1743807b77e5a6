//! The batch pipeline and action execution of one poll thread.
//!
//! `process_packets`: parse every packet once, look the batch up in the EMC (a packet
//! repeating its predecessor's key reuses its result), send the misses through the
//! dpcls as one batch, upcall what is left, then group the packets by the flow they hit
//! so that each flow's actions run once per batch on a sub-batch.
//! Outputs are queued on per-port tx batches that `flush_tx` sends once per iteration.

use std::sync::Arc;

use super::emc::packet_hash;
use super::flow_table::InsertError;
use super::pmd_datapath::{Disposition, PacketGroup, PmdDatapath};
use super::tunnel_exec::exceeds_mtu;
use crate::dpif::{
    DpAction, DpActions, TnlPush, Upcall, UpcallError, UpcallHandler, UpcallKind, UpcallReply,
};
use crate::packet::flow_key::hash_words;
use crate::packet::parse::{flow_extract, parse_frame};
use crate::packet::rewrite::{apply_set, pop_vlan, push_vlan};
use crate::packet::tunnel::{tnl_pop_as, tnl_push};
use crate::packet::{FlowKey, OdpPort, PacketBatch, PacketBuf, PacketPool, MAX_BURST};

#[inline(always)]
fn copy_packet(pool: &mut PacketPool, p: &PacketBuf) -> PacketBuf {
    let mut c = pool.get();
    c.set_data(p.data());
    c.meta = p.meta;
    c
}

impl PmdDatapath {
    /// Runs a batch (all packets' `meta.in_port`/`recirc_id` set) through lookup and
    /// execution. `depth` counts recirculations. Packets left in `batch` afterwards are
    /// the caller's to recycle (normally none).
    pub fn process_packets(&mut self, batch: &mut PacketBatch, depth: u32) {
        let n = batch.len();
        if n == 0 {
            return;
        }
        debug_assert!(n <= MAX_BURST);
        // Recirculation re-enters here while an outer batch still owns the adhoc entries
        // below this mark.
        let adhoc_base = self.adhoc.len();
        // 1. Parse the whole batch, then hash it: reading a key as words right after the
        // parser wrote it field by field stalls on store forwarding; a batch later the
        // stores have retired.
        for (i, p) in batch.pkts.iter_mut().enumerate() {
            let key = &mut self.keys[i];
            flow_extract(p, key);
            key.in_port = p.meta.in_port;
            key.recirc_id = p.meta.recirc_id;
        }
        // 2. EMC and dpcls (`lookup.rs`).
        let miss = self.lookup_batch(batch, n);
        // 3. Upcalls for the rest.
        if miss != 0 {
            self.handle_misses(batch, miss);
        }
        // 4. Group by disposition and execute each group's actions once. The common case,
        // a whole batch of one flow, runs in place without moving any packet.
        let d0 = self.disp[0];
        if let Disposition::Flow(r) = d0 {
            if self.disp[1..n].iter().all(|d| *d == d0) {
                let mut bytes = 0u64;
                let mut tcp_flags = 0u16;
                for (p, k) in batch.pkts.iter().zip(self.keys.iter()) {
                    bytes += p.len() as u64;
                    tcp_flags |= k.tcp_flags;
                }
                let now = self.now;
                let actions = self.flows.get_mut(r).map(|f| {
                    f.stats.packets += n as u64;
                    f.stats.bytes += bytes;
                    f.stats.tcp_flags |= tcp_flags;
                    f.stats.used = Some(now);
                    f.actions.clone()
                });
                if let Some(a) = actions {
                    self.execute_actions(batch, &a, depth);
                }
                let pool = &mut self.pool;
                batch.pkts.drain(..).for_each(|p| pool.put(p));
                self.adhoc.truncate(adhoc_base);
                return;
            }
        }
        let mut groups = self.spare_groups.pop().unwrap_or_default();
        for (i, p) in batch.pkts.drain(..).enumerate() {
            let d = self.disp[i];
            if d == Disposition::Drop {
                self.pool.put(p);
                continue;
            }
            let bytes = p.len() as u64;
            let g = match groups.iter_mut().position(|g| g.disp == d) {
                Some(g) => g,
                None => {
                    groups.push(PacketGroup {
                        disp: d,
                        batch: self.spare_batches.pop().unwrap_or_default(),
                        bytes: 0,
                        tcp_flags: 0,
                    });
                    groups.len() - 1
                }
            };
            let g = &mut groups[g];
            g.batch.pkts.push(p);
            g.bytes += bytes;
            g.tcp_flags |= self.keys[i].tcp_flags;
        }
        for mut g in groups.drain(..) {
            let actions: Option<DpActions> = match g.disp {
                Disposition::Flow(r) => self.flows.get_mut(r).map(|f| {
                    f.stats.packets += g.batch.len() as u64;
                    f.stats.bytes += g.bytes;
                    f.stats.tcp_flags |= g.tcp_flags;
                    f.stats.used = Some(self.now);
                    f.actions.clone()
                }),
                Disposition::Adhoc(k) => self.adhoc.get(k as usize).cloned(),
                Disposition::Drop => None,
            };
            if let Some(a) = actions {
                self.execute_actions(&mut g.batch, &a, depth);
            }
            self.recycle_batch(g.batch);
        }
        self.spare_groups.push(groups);
        self.adhoc.truncate(adhoc_base);
    }

    /// Misses: re-check the dpcls if an earlier upcall of this batch installed a flow,
    /// else ask the translator (rate-limited) and install its megaflow.
    fn handle_misses(&mut self, batch: &PacketBatch, miss: u32) {
        let mut installed = false;
        let mut bits = miss;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let key = self.keys[i];
            if installed {
                let port = key.in_port;
                if let Some((_, c)) = self.classifiers.iter().find(|(p, _)| *p == port) {
                    if let Some((r, rank)) = c.lookup_one(&key) {
                        self.counters.megaflow_hits.add(1);
                        self.counters.subtable_lookups.add(rank as u64);
                        self.disp[i] = Disposition::Flow(r);
                        continue;
                    }
                }
            }
            self.disp[i] = Disposition::Drop;
            if !self.limiter.take(self.now) {
                self.counters.upcall_rate_limited.add(1);
                self.counters.upcall_failed.add(1);
                continue;
            }
            let Some(h) = self.handler.clone() else {
                self.counters.upcall_failed.add(1);
                continue;
            };
            let pkt = &batch.pkts[i];
            let up = Upcall {
                kind: UpcallKind::Miss,
                key: &key,
                packet: pkt.data(),
                meta: &pkt.meta,
            };
            match call_handler(h.as_ref(), &up) {
                Ok(reply) => {
                    self.counters.upcall_ok.add(1);
                    let actions: DpActions = Arc::from(reply.actions);
                    if reply.install {
                        match self.install(&key, &reply.mask, actions.clone()) {
                            Ok(r) | Err(InsertError::Exists(r)) => {
                                installed = true;
                                // Hashed here: the lookup stage hashes neither repeats
                                // nor a batch that bypassed the EMC.
                                let rss = pkt.meta.has_hash.then_some(pkt.meta.hash);
                                let hash = packet_hash(&key, rss);
                                self.emc.probabilistic_insert(&key, hash, r, &self.flows);
                                self.disp[i] = Disposition::Flow(r);
                                continue;
                            }
                            // Executed without a megaflow (`install` logged it).
                            Err(InsertError::Full(_)) => {}
                        }
                    }
                    if self.adhoc.len() < u8::MAX as usize {
                        self.disp[i] = Disposition::Adhoc(self.adhoc.len() as u8);
                        self.adhoc.push(actions);
                    }
                }
                Err(e) => {
                    self.counters.upcall_failed.add(1);
                    tracing::debug!("upcall failed: {e}");
                }
            }
        }
    }

    /// Executes `actions` on every packet of `batch`. Packets still in the batch at the
    /// end are dropped by the caller (recycled); an empty list therefore drops.
    pub fn execute_actions(&mut self, batch: &mut PacketBatch, actions: &[DpAction], depth: u32) {
        let last_idx = actions.len().saturating_sub(1);
        for (ai, a) in actions.iter().enumerate() {
            if batch.is_empty() {
                return;
            }
            let last = ai == last_idx;
            match a {
                DpAction::Output(port) => self.output(batch, *port, last),
                DpAction::PushVlan(tag) => {
                    let before = batch.len();
                    let pool = &mut self.pool;
                    retain_or_recycle(batch, pool, |p| push_vlan(p, *tag));
                    self.counters
                        .action_errors
                        .add((before - batch.len()) as u64);
                }
                DpAction::PopVlan => {
                    // An untagged packet is left as it is (as the kernel datapath does).
                    for p in batch.pkts.iter_mut() {
                        pop_vlan(p);
                    }
                }
                DpAction::Set(sf) => {
                    for p in batch.pkts.iter_mut() {
                        if !apply_set(p, sf) {
                            // The header to rewrite is absent: the packet is left alone.
                            self.counters.action_errors.add(1);
                        }
                    }
                }
                DpAction::Recirc(id) => self.recirculate(batch, *id, depth, last),
                DpAction::Userspace { cookie } => self.userspace(batch, *cookie),
                DpAction::Clone(nested) => {
                    let mut c = self.copy_batch(batch, |_| true);
                    self.execute_actions(&mut c, nested, depth);
                    self.recycle_batch(c);
                }
                DpAction::Sample {
                    probability,
                    actions: nested,
                } => {
                    let p = *probability;
                    let mut rng = self.rng;
                    let mut c = self.copy_batch(batch, |_| p != 0 && rng.next_u32() <= p);
                    self.rng = rng;
                    self.execute_actions(&mut c, nested, depth);
                    self.recycle_batch(c);
                }
                DpAction::TnlPush(push) => self.tunnel_push(batch, push, last),
                DpAction::TnlPop(port) => self.tunnel_pop(batch, *port, depth, last),
            }
        }
    }

    fn copy_batch(
        &mut self,
        batch: &PacketBatch,
        mut select: impl FnMut(&PacketBuf) -> bool,
    ) -> PacketBatch {
        let mut c = self.take_batch();
        for p in batch.pkts.iter() {
            if select(p) {
                c.pkts.push(copy_packet(&mut self.pool, p));
            }
        }
        c
    }

    /// Queues the batch (moved if this is the last action, copied otherwise) on `port`.
    fn output(&mut self, batch: &mut PacketBatch, port: OdpPort, last: bool) {
        let Some(t) = self.tx_ports.iter_mut().find(|t| t.port == port) else {
            self.counters.tx_no_port.add(batch.len() as u64);
            return;
        };
        let pool = &mut self.pool;
        let counters = &self.counters;
        let hold = self.tx_flush_cycles;
        let tsc = self.tsc;
        let mut push = |p: PacketBuf, pool: &mut PacketPool| {
            if t.pending.is_full() {
                let n = t.pending.len() as u64;
                t.txq.send(&mut t.pending, pool);
                counters.tx_packets.add(n);
                counters.tx_batches.add(1);
                t.dirty = true;
            }
            if hold != 0 && t.pending.is_empty() {
                t.deadline = tsc.saturating_add(hold);
            }
            t.pending.pkts.push(p);
        };
        if last {
            for p in batch.pkts.drain(..) {
                push(p, pool);
            }
        } else {
            for p in batch.pkts.iter() {
                let c = copy_packet(pool, p);
                push(c, pool);
            }
        }
    }

    /// Takes the batch's packets (last action) or copies of them.
    fn take_or_copy(&mut self, batch: &mut PacketBatch, last: bool) -> PacketBatch {
        if last {
            let mut b = self.take_batch();
            std::mem::swap(&mut b.pkts, &mut batch.pkts);
            b
        } else {
            self.copy_batch(batch, |_| true)
        }
    }

    /// Encapsulates (copies of) the packets with the prebuilt outer header and outputs
    /// them on the underlay port. The UDP source port comes from the inner 5-tuple so a
    /// flow keeps one underlay path.
    fn tunnel_push(&mut self, batch: &mut PacketBatch, push: &TnlPush, last: bool) {
        let mut b = self.take_or_copy(batch, last);
        let mut failed = 0u64;
        let mut too_big = 0u64;
        let mtu = self.underlay_mtu(push.out_port);
        retain_or_recycle(&mut b, &mut self.pool, |p| {
            let h = if p.meta.has_hash {
                p.meta.hash
            } else {
                five_tuple_hash(&parse_frame(p.data(), &p.meta))
            };
            match tnl_push(p, push, h) {
                Ok(()) if exceeds_mtu(p.data(), mtu) => {
                    too_big += 1;
                    false
                }
                Ok(()) => true,
                Err(e) => {
                    failed += 1;
                    tracing::debug!("tnl_push: {e}");
                    false
                }
            }
        });
        self.counters.action_errors.add(failed + too_big);
        self.counters.tnl_push_errors.add(failed);
        self.counters.tnl_mtu_drops.add(too_big);
        self.output(&mut b, push.out_port, true);
        self.recycle_batch(b);
    }

    /// Validates and strips the outer headers, then runs the inner packets through the
    /// datapath again as received on tunnel port `tnl_port` with their tunnel metadata
    /// (counted as recirculations, as OVS does). Packets that are not valid tunnel
    /// packets are dropped and counted.
    fn tunnel_pop(&mut self, batch: &mut PacketBatch, tnl_port: OdpPort, depth: u32, last: bool) {
        if depth >= self.max_recirc_depth {
            self.drop_too_deep(batch, last);
            return;
        }
        let mut b = self.take_or_copy(batch, last);
        let mut failed = 0u64;
        let kind = self.tunnel_kind(tnl_port);
        retain_or_recycle(&mut b, &mut self.pool, |p| match tnl_pop_as(p, kind) {
            Ok(_) => {
                p.meta.in_port = tnl_port;
                p.meta.recirc_id = 0;
                p.meta.has_hash = false;
                true
            }
            Err(e) => {
                failed += 1;
                tracing::debug!("tnl_pop: {e}");
                false
            }
        });
        self.counters.action_errors.add(failed);
        self.counters.tnl_pop_errors.add(failed);
        self.counters.recirculations.add(b.len() as u64);
        self.process_packets(&mut b, depth + 1);
        self.recycle_batch(b);
    }

    fn drop_too_deep(&mut self, batch: &mut PacketBatch, last: bool) {
        self.counters.action_errors.add(batch.len() as u64);
        if last {
            let pool = &mut self.pool;
            batch.pkts.drain(..).for_each(|p| pool.put(p));
        }
    }

    fn recirculate(&mut self, batch: &mut PacketBatch, id: u32, depth: u32, last: bool) {
        if depth >= self.max_recirc_depth {
            self.drop_too_deep(batch, last);
            return;
        }
        let mut b = self.take_or_copy(batch, last);
        for p in b.pkts.iter_mut() {
            p.meta.recirc_id = id;
        }
        self.counters.recirculations.add(b.len() as u64);
        self.process_packets(&mut b, depth + 1);
        self.recycle_batch(b);
    }

    /// Hands each packet to the translator with `UpcallKind::Action`; packets continue.
    fn userspace(&mut self, batch: &mut PacketBatch, cookie: u64) {
        let Some(h) = self.handler.clone() else {
            self.counters.upcall_failed.add(batch.len() as u64);
            return;
        };
        for p in batch.pkts.iter_mut() {
            let mut key = FlowKey::default();
            flow_extract(p, &mut key);
            key.in_port = p.meta.in_port;
            key.recirc_id = p.meta.recirc_id;
            let up = Upcall {
                kind: UpcallKind::Action { cookie },
                key: &key,
                packet: p.data(),
                meta: &p.meta,
            };
            match call_handler(h.as_ref(), &up) {
                Ok(_) => self.counters.userspace_actions.add(1),
                Err(e) => {
                    self.counters.upcall_failed.add(1);
                    tracing::debug!("userspace action upcall failed: {e}");
                }
            }
        }
    }
}

/// Calls the translator, turning a panic inside it into an error: a bug in translation
/// must cost one packet, not the PMD thread (and with it every port it polls).
fn call_handler(h: &dyn UpcallHandler, up: &Upcall<'_>) -> Result<UpcallReply, UpcallError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.upcall(up))) {
        Ok(r) => r,
        Err(_) => Err(UpcallError::Xlate("the upcall handler panicked".into())),
    }
}

/// A hash of the addresses, protocol and ports only (not TTL, flags or ids), so every
/// packet of a flow gets the same value.
fn five_tuple_hash(k: &FlowKey) -> u32 {
    let mut ip6 = [0u64; 4];
    for (i, c) in k.ipv6_src.chunks(8).chain(k.ipv6_dst.chunks(8)).enumerate() {
        ip6[i] = u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]));
    }
    hash_words(
        [
            ((k.nw_src as u64) << 32) | k.nw_dst as u64,
            ((k.tp_src as u64) << 32) | ((k.tp_dst as u64) << 16) | k.nw_proto as u64,
            ip6[0],
            ip6[1],
            ip6[2],
            ip6[3],
        ]
        .into_iter(),
        k.dl_type as u32,
    )
}

/// Keeps the packets for which `f` returns true, returning the others to the pool,
/// preserving order and without allocating.
fn retain_or_recycle(
    batch: &mut PacketBatch,
    pool: &mut PacketPool,
    mut f: impl FnMut(&mut PacketBuf) -> bool,
) {
    let mut keep = 0;
    for i in 0..batch.pkts.len() {
        if f(&mut batch.pkts[i]) {
            batch.pkts.swap(keep, i);
            keep += 1;
        }
    }
    for p in batch.pkts.drain(keep..) {
        pool.put(p);
    }
}
