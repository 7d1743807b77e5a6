//! The lookup stage of the batch pipeline: from parsed keys to a disposition per packet.
//!
//! A packet whose key (and port hash) equals its predecessor's, as most of a burst of one
//! flow does, is not looked up at all: it takes its predecessor's result once that is
//! known. The others go through the EMC (unless `EmcBypass` found lookups cheaper
//! without it) and then, those that missed, through the dpcls of their in_port as one
//! batch. What is still unresolved is returned for the upcall stage.

use super::emc::packet_hash;
use super::emc_bypass::BatchPlan;
use super::flow_table::FlowRef;
use super::pmd_datapath::{Disposition, PmdDatapath};
use crate::packet::{FlowKey, PacketBatch, MAX_BURST};
use crate::pmd::cycles;

/// Whether `k` is the key `prev` is. The addresses and ports first, with an early exit:
/// where flows interleave they differ there, and the whole-key compare is skipped.
#[inline(always)]
fn repeats_key(k: &FlowKey, prev: &FlowKey) -> bool {
    (k.nw_src ^ prev.nw_src) | (k.nw_dst ^ prev.nw_dst) == 0
        && (k.tp_src ^ prev.tp_src) | (k.tp_dst ^ prev.tp_dst) == 0
        && super::emc::same_key(k, prev)
}

impl PmdDatapath {
    /// Resolves `self.keys[..n]` (the keys of `batch`) to `self.disp` by EMC and dpcls;
    /// returns the bits of the packets neither knew. Times itself when the EMC trial
    /// asks (`EmcBypass`).
    #[inline(always)]
    pub(super) fn lookup_batch(&mut self, batch: &PacketBatch, n: usize) -> u32 {
        let plan = if self.emc.enabled() {
            self.emc_bypass.plan()
        } else {
            BatchPlan {
                use_emc: false,
                timed: false,
            }
        };
        let start = if plan.timed { cycles::now() } else { 0 };
        let miss = self.lookup_planned(batch, n, plan.use_emc);
        if self.emc.enabled() {
            let elapsed = if plan.timed {
                cycles::now().wrapping_sub(start)
            } else {
                0
            };
            if !plan.use_emc {
                self.counters.emc_bypassed.add(n as u64);
            }
            if self.emc_bypass.finish(plan, elapsed, n as u64) {
                self.counters.emc_trials.add(1);
                self.counters
                    .emc_trials_bypassing
                    .add(u64::from(self.emc_bypass.bypassing()));
            }
        }
        miss
    }

    #[inline(always)]
    fn lookup_planned(&mut self, batch: &PacketBatch, n: usize, use_emc: bool) -> u32 {
        let all = if n == MAX_BURST {
            u32::MAX
        } else {
            (1u32 << n) - 1
        };
        // Hash the batch (a batch after parsing: reading a key as words right after the
        // parser wrote it field by field stalls on store forwarding) and find the
        // repeats. A repeat's compare replaces a hash and a lookup: 26-29 fewer cycles
        // per packet for one 64-byte flow end to end (benches/e2e/HISTORY.md, tenth session).
        // Without EMC lookups only the rare insertion needs a hash, and makes its own.
        let mut repeats = 0u32;
        let mut prev_rss = None;
        for (i, p) in batch.pkts.iter().enumerate() {
            let rss = p.meta.has_hash.then_some(p.meta.hash);
            if i > 0 && rss == prev_rss && repeats_key(&self.keys[i], &self.keys[i - 1]) {
                repeats |= 1 << i;
            } else if use_emc {
                self.hashes[i] = packet_hash(&self.keys[i], rss);
            }
            prev_rss = rss;
        }
        let mut miss = all & !repeats;
        let mut emc_hit = 0u32;
        if use_emc {
            // Every candidate entry first, then the compares: with many flows the EMC
            // is megabytes and its keys miss the caches. 10,000 flows end to end: 20-27
            // fewer cycles per packet (benches/e2e/HISTORY.md, tenth session).
            let mut bits = miss;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                self.emc.prefetch(self.hashes[i]);
            }
            let mut bits = miss;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(r) = self.emc.lookup(&self.keys[i], self.hashes[i], &self.flows) {
                    self.disp[i] = Disposition::Flow(r);
                    emc_hit |= 1 << i;
                }
            }
            miss &= !emc_hit;
        }
        // The dpcls, one batch lookup per in_port present among the misses.
        let mut ranks = [0u8; MAX_BURST];
        // Insertions while EMC lookups are bypassed: hashed and prefetched when their
        // coin comes up, made after the rest of the batch's lookups. Made at once, their
        // misses on the cold EMC were 4.1% of the PMD's user samples with 10,000 flows
        // end to end; deferred, 0.4% (benches/e2e/HISTORY.md, twenty-ninth session).
        let mut insert = 0u32;
        let mut pending = miss;
        while pending != 0 {
            let first = pending.trailing_zeros() as usize;
            let port = self.keys[first].in_port;
            let mut want = 0u32;
            let mut bits = pending;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if self.keys[i].in_port == port {
                    want |= 1 << i;
                }
            }
            pending &= !want;
            let Some(ci) = self.classifiers.iter().position(|(p, _)| *p == port) else {
                continue;
            };
            let mut refs = [FlowRef::NONE; MAX_BURST];
            let res = self.classifiers[ci]
                .1
                .lookup_batch(&self.keys[..n], want, &mut refs);
            let mut bits = res.hit_bits;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                self.disp[i] = Disposition::Flow(refs[i]);
                ranks[i] = res.ranks[i];
                if use_emc {
                    self.emc.probabilistic_insert(
                        &self.keys[i],
                        self.hashes[i],
                        refs[i],
                        &self.flows,
                    );
                } else if self.emc.insert_coin() {
                    let rss = batch.pkts[i]
                        .meta
                        .has_hash
                        .then_some(batch.pkts[i].meta.hash);
                    let h = packet_hash(&self.keys[i], rss);
                    self.emc.prefetch_insert(h);
                    self.hashes[i] = h;
                    insert |= 1 << i;
                }
            }
            miss &= !res.hit_bits;
        }
        // Each such packet's megaflow is the one its disposition already names.
        let mut bits = insert;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if let Disposition::Flow(r) = self.disp[i] {
                self.emc
                    .insert(&self.keys[i], self.hashes[i], r, &self.flows);
            }
        }
        // Repeats take their predecessor's result, and are counted as it was: an EMC
        // hit, or a megaflow hit that searched as many subtables.
        let mut megaflow_hit = all & !repeats & !miss & !emc_hit;
        let mut subtables = 0u64;
        let mut bits = megaflow_hit;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            subtables += u64::from(ranks[i]);
        }
        let mut bits = repeats;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let prev = 1u32 << (i - 1);
            if miss & prev != 0 {
                miss |= 1 << i;
                continue;
            }
            self.disp[i] = self.disp[i - 1];
            if emc_hit & prev != 0 {
                emc_hit |= 1 << i;
            } else {
                megaflow_hit |= 1 << i;
                ranks[i] = ranks[i - 1];
                subtables += u64::from(ranks[i]);
            }
        }
        self.counters.emc_hits.add(emc_hit.count_ones() as u64);
        self.counters
            .megaflow_hits
            .add(megaflow_hit.count_ones() as u64);
        self.counters.subtable_lookups.add(subtables);
        miss
    }
}
