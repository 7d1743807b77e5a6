//! Exact-match cache: the first lookup a packet sees, one per PMD thread.
//!
//! 8192 entries keyed by the full `FlowKey` and its hash, each probed at two positions
//! derived from the hash (low bits, then bits 13 and up), as OVS's EMC does. An entry
//! points at a megaflow by `FlowRef`, so a deleted megaflow invalidates its entries without
//! a sweep. Entries are inserted only with probability 1/N on a megaflow hit (OVS default
//! N = 100) so the cache fills with elephant flows instead of churning on mice.

use super::flow_table::{FlowRef, FlowTable};
use crate::packet::huge_array::HugeArray;
use crate::packet::prefetch::{self, Level, LINE};
use crate::packet::{FlowKey, FLOW_WORDS};

const _: () = assert!(FLOW_WORDS <= 31, "EMC_SECRETS covers 32 words");

/// Number of entries (power of two).
pub const EMC_ENTRIES: usize = 8192;
const EMC_MASK: u32 = EMC_ENTRIES as u32 - 1;
/// Shift for the second probe position (log2 of the size).
const EMC_SHIFT: u32 = 13;
const _: () = assert!(1 << EMC_SHIFT == EMC_ENTRIES);

/// Default inverse insertion probability (OVS's `emc-insert-inv-prob`).
pub const DEFAULT_EMC_INSERT_INV_PROB: u32 = 100;

/// Per-word-pair secrets of `emc_hash` (distinct, so swapping two pairs of words changes
/// the hash).
const EMC_SECRETS: [u64; 32] = {
    let mut out = [0u64; 32];
    let mut x: u64 = 0x243f_6a88_85a3_08d3;
    let mut i = 0;
    while i < 32 {
        // splitmix64 steps
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out[i] = z ^ (z >> 31);
        i += 1;
    }
    out
};

/// The EMC hash of a whole key: the key's words are taken in pairs, each pair mixed by one
/// 64x64->128-bit multiply with per-position secrets (folded high ^ low), and the pair
/// results summed, then avalanched. The multiplies are independent of each other, so they
/// overlap in the pipeline; `FlowKey::hash` runs one serial chain, which made hashing the
/// largest cost of an EMC hit. The EMC compares whole keys, so the hash only has to
/// spread keys, never to tell them apart.
#[inline(always)]
pub fn emc_hash(key: &FlowKey) -> u32 {
    let w = key.words();
    let mut acc = 0u64;
    let mut i = 0;
    while i + 1 < FLOW_WORDS {
        let a = w[i] ^ EMC_SECRETS[i];
        let b = w[i + 1] ^ EMC_SECRETS[i + 1];
        let m = (a as u128).wrapping_mul(b as u128);
        acc = acc.wrapping_add((m as u64) ^ ((m >> 64) as u64));
        i += 2;
    }
    if FLOW_WORDS % 2 == 1 {
        let m = ((w[FLOW_WORDS - 1] ^ EMC_SECRETS[FLOW_WORDS - 1]) as u128)
            .wrapping_mul(EMC_SECRETS[31] as u128);
        acc = acc.wrapping_add((m as u64) ^ ((m >> 64) as u64));
    }
    let mut h = acc;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h ^ (h >> 32)) as u32
}

/// The EMC hash of a packet: the port's RSS hash when it supplied one (mixed with the
/// recirculation id so passes differ), else `emc_hash`. The EMC compares whole keys,
/// so a weaker RSS hash costs only collisions, never a wrong match.
#[inline(always)]
pub fn packet_hash(key: &FlowKey, rss: Option<u32>) -> u32 {
    match rss {
        Some(h) => {
            let mut x = (h as u64) ^ ((key.recirc_id as u64) << 32);
            x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            (x >> 32) as u32
        }
        None => emc_hash(key),
    }
}

/// Whole-key equality as one branch-free pass over the words (vectorisable), instead of
/// a call to `memcmp` per probe.
#[inline(always)]
pub(super) fn same_key(a: &FlowKey, b: &FlowKey) -> bool {
    let (a, b) = (a.words(), b.words());
    let mut diff = 0u64;
    for i in 0..FLOW_WORDS {
        diff |= a[i] ^ b[i];
    }
    diff == 0
}

/// One cached key, alone in its cache lines (3 of them for a 192-byte key) so that a
/// hit reads nothing else: the hashes and flows it is found by sit in dense arrays.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct EmcKey(FlowKey);

/// A xorshift32 generator: the insertion coin only needs to be cheap and unbiased enough.
#[derive(Clone, Copy, Debug)]
pub struct XorShift32(u32);

impl XorShift32 {
    /// Seeds the generator (a zero seed is replaced, xorshift's only fixed point).
    pub fn new(seed: u32) -> Self {
        XorShift32(if seed == 0 { 0x9e37_79b9 } else { seed })
    }
    /// Next value.
    #[inline(always)]
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// The exact-match cache of one PMD thread.
///
/// Laid out as three parallel arrays rather than one of entries: a probe first compares
/// the hash, and with the hashes dense (32 KiB) a probe that misses reads one line that
/// is usually in L1 or L2, instead of a line of a 1.6 MiB entry array that is not. With
/// 10,000 flows half the lookups miss, and those misses were 42% of the batch
/// pipeline's samples. A hit then reads the key's three lines and the flow. (Prefetching
/// the matching keys a batch ahead made the 10,000-flow pipeline bench 13% slower.)
pub struct Emc {
    /// Per slot: the hash of the key cached there (0 and a dead flow when empty).
    hashes: Box<[u32]>,
    /// On one or two huge pages where the kernel allows (`HugeArray`): a hit, an
    /// insertion and their prefetches read a random slot, and on 4 KiB pages each took a
    /// TLB miss.
    keys: HugeArray<EmcKey>,
    flows: Box<[FlowRef]>,
    /// Inserting when `rng <= insert_threshold`; `None` disables insertion.
    insert_threshold: Option<u32>,
    rng: XorShift32,
}

impl Emc {
    /// An empty cache inserting with probability 1/`inv_prob` (1 = always, 0 = never).
    pub fn new(inv_prob: u32, seed: u32) -> Self {
        let mut emc = Emc {
            hashes: vec![0; EMC_ENTRIES].into_boxed_slice(),
            keys: HugeArray::new(EMC_ENTRIES, EmcKey(FlowKey::default())),
            flows: vec![FlowRef::NONE; EMC_ENTRIES].into_boxed_slice(),
            insert_threshold: None,
            rng: XorShift32::new(seed),
        };
        emc.set_insert_inv_prob(inv_prob);
        emc
    }

    /// Changes the insertion probability to 1/`inv_prob` (0 disables insertion).
    pub fn set_insert_inv_prob(&mut self, inv_prob: u32) {
        self.insert_threshold = match inv_prob {
            0 => None,
            n => Some(u32::MAX / n),
        };
    }

    /// Whether the EMC is in use at all (insertion disabled => lookups are skipped too).
    #[inline(always)]
    pub fn enabled(&self) -> bool {
        self.insert_threshold.is_some()
    }

    #[inline(always)]
    fn positions(hash: u32) -> [usize; 2] {
        [
            (hash & EMC_MASK) as usize,
            ((hash >> EMC_SHIFT) & EMC_MASK) as usize,
        ]
    }

    /// Asks for the key lines `lookup(_, hash, _)` will compare: those of the positions
    /// whose stored hash matches. A batch prefetches every packet's before looking any
    /// up, so that the misses on a large cache overlap instead of coming one by one.
    #[inline(always)]
    pub fn prefetch(&self, hash: u32) {
        for pos in Self::positions(hash) {
            if self.hashes[pos] == hash {
                let p: *const u8 = (&self.keys[pos] as *const EmcKey).cast();
                for off in (0..std::mem::size_of::<EmcKey>()).step_by(LINE) {
                    prefetch::line(p.wrapping_add(off), Level::L1);
                }
                // The flow the entry names: its line was the largest single stall of a
                // 10,000-flow batch (15% of the pipeline's samples) before this.
                prefetch::line(&self.flows[pos] as *const FlowRef, Level::L1);
            }
        }
    }

    /// Asks for every line `insert(_, hash, ..)` reads or writes: both candidates'
    /// stored hashes, keys and flows. With many flows they sit in no cache, and an
    /// insertion that takes them one miss after another stalls for five of them; a
    /// caller that prefetches and inserts a little later overlaps them with other work.
    #[inline(always)]
    pub fn prefetch_insert(&self, hash: u32) {
        for pos in Self::positions(hash) {
            prefetch::line(&self.hashes[pos] as *const u32, Level::L1);
            let p: *const u8 = (&self.keys[pos] as *const EmcKey).cast();
            for off in (0..std::mem::size_of::<EmcKey>()).step_by(LINE) {
                prefetch::line(p.wrapping_add(off), Level::L1);
            }
            prefetch::line(&self.flows[pos] as *const FlowRef, Level::L1);
        }
    }

    /// Looks `key` up; returns the megaflow only if it is still live.
    #[inline(always)]
    pub fn lookup(&self, key: &FlowKey, hash: u32, flows: &FlowTable) -> Option<FlowRef> {
        for pos in Self::positions(hash) {
            if self.hashes[pos] == hash && same_key(&self.keys[pos].0, key) {
                let f = self.flows[pos];
                if flows.is_live(f) {
                    return Some(f);
                }
            }
        }
        None
    }

    /// Called on a megaflow hit: inserts with the configured probability.
    #[inline(always)]
    pub fn probabilistic_insert(
        &mut self,
        key: &FlowKey,
        hash: u32,
        flow: FlowRef,
        flows: &FlowTable,
    ) {
        if self.insert_coin() {
            self.insert(key, hash, flow, flows);
        }
    }

    /// Draws the insertion coin: true with the configured probability. For callers
    /// that make the hash only when it comes up (the EMC bypassed for lookups).
    #[inline(always)]
    pub fn insert_coin(&mut self) -> bool {
        match self.insert_threshold {
            Some(t) => self.rng.next_u32() <= t,
            None => false,
        }
    }

    /// Inserts unconditionally: refreshes an entry with the same key, else takes a slot
    /// whose flow is dead, else replaces one of the two candidates (the one with the
    /// smaller stored hash, an arbitrary but deterministic choice).
    pub fn insert(&mut self, key: &FlowKey, hash: u32, flow: FlowRef, flows: &FlowTable) {
        let [a, b] = Self::positions(hash);
        let victim = [a, b]
            .into_iter()
            .find(|&pos| self.hashes[pos] == hash && same_key(&self.keys[pos].0, key));
        let pos = victim.unwrap_or_else(|| {
            if !flows.is_live(self.flows[a]) {
                a
            } else if !flows.is_live(self.flows[b]) {
                b
            } else if self.hashes[a] <= self.hashes[b] {
                a
            } else {
                b
            }
        });
        self.hashes[pos] = hash;
        self.keys[pos] = EmcKey(*key);
        self.flows[pos] = flow;
    }

    /// Number of entries that point at a live flow (for tests and `pmd-perf-show`-like
    /// insight; walks the whole cache).
    pub fn live_entries(&self, flows: &FlowTable) -> usize {
        self.flows.iter().filter(|&&f| flows.is_live(f)).count()
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.hashes.fill(0);
        self.flows.fill(FlowRef::NONE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpif::DpActions;
    use crate::dpif_netdev::flow_table::normalize_mask;
    use crate::packet::FlowMask;
    use std::sync::Arc;

    fn setup() -> (FlowTable, FlowRef) {
        let mut t = FlowTable::new(16);
        let mut m = FlowMask::default();
        m.0.nw_dst = u32::MAX;
        let k = FlowKey {
            in_port: 1,
            nw_dst: 7,
            ..Default::default()
        };
        let acts: DpActions = Arc::from(Vec::new());
        let r = t.insert(&k, &normalize_mask(&m), acts).unwrap();
        (t, r)
    }

    fn pkt(src: u32) -> FlowKey {
        FlowKey {
            in_port: 1,
            nw_dst: 7,
            nw_src: src,
            ..Default::default()
        }
    }

    #[test]
    fn emc_hash_spreads_keys_that_differ_in_one_field() {
        // 4096 keys differing only in one field each must land in many distinct slots.
        for field in 0..3 {
            let mut slots = std::collections::HashSet::new();
            for i in 0..4096u32 {
                let mut k = FlowKey::default();
                match field {
                    0 => k.nw_src = i,
                    1 => k.tp_src = i as u16,
                    _ => k.ipv6_dst[15] = i as u8,
                }
                slots.insert(emc_hash(&k) & EMC_MASK);
            }
            let want = if field == 2 { 250 } else { 2500 };
            assert!(slots.len() >= want, "field {field}: {} slots", slots.len());
        }
    }

    #[test]
    fn hit_after_insert_and_miss_for_other_key() {
        let (t, r) = setup();
        let mut emc = Emc::new(1, 1);
        let k = pkt(1);
        assert_eq!(emc.lookup(&k, k.hash(), &t), None);
        emc.probabilistic_insert(&k, k.hash(), r, &t);
        assert_eq!(emc.lookup(&k, k.hash(), &t), Some(r));
        let k2 = pkt(2);
        assert_eq!(emc.lookup(&k2, k2.hash(), &t), None);
    }

    #[test]
    fn delete_of_megaflow_invalidates_entries() {
        let (mut t, r) = setup();
        let mut emc = Emc::new(1, 1);
        let k = pkt(1);
        emc.insert(&k, k.hash(), r, &t);
        assert_eq!(emc.live_entries(&t), 1);
        t.remove(r);
        assert_eq!(emc.lookup(&k, k.hash(), &t), None);
        assert_eq!(emc.live_entries(&t), 0);
        // A new flow in the recycled slot must not be reached through the stale entry.
        let mut m = FlowMask::default();
        m.0.nw_src = u32::MAX;
        let r2 = t
            .insert(&pkt(1), &normalize_mask(&m), Arc::from(Vec::new()))
            .unwrap();
        assert_eq!(r2.idx, r.idx);
        assert_eq!(emc.lookup(&k, k.hash(), &t), None);
    }

    #[test]
    fn eviction_when_both_positions_are_taken() {
        let (t, r) = setup();
        let mut emc = Emc::new(1, 1);
        // Three keys forced onto the same two positions by using the same hash.
        let h = 0x1234_5678;
        let (k1, k2, k3) = (pkt(1), pkt(2), pkt(3));
        emc.insert(&k1, h, r, &t);
        emc.insert(&k2, h, r, &t);
        assert_eq!(emc.lookup(&k1, h, &t), Some(r));
        assert_eq!(emc.lookup(&k2, h, &t), Some(r));
        emc.insert(&k3, h, r, &t);
        assert_eq!(emc.lookup(&k3, h, &t), Some(r));
        let survivors = [&k1, &k2]
            .iter()
            .filter(|k| emc.lookup(k, h, &t).is_some())
            .count();
        assert_eq!(
            survivors, 1,
            "exactly one of the two old entries was evicted"
        );
    }

    #[test]
    fn insertion_probability_is_respected() {
        let (t, r) = setup();
        let mut never = Emc::new(0, 1);
        let mut sometimes = Emc::new(100, 12345);
        for i in 0..20_000u32 {
            let k = pkt(i + 100);
            never.probabilistic_insert(&k, k.hash(), r, &t);
            sometimes.probabilistic_insert(&k, k.hash(), r, &t);
        }
        assert_eq!(never.live_entries(&t), 0);
        let n = sometimes.live_entries(&t);
        // ~200 expected (some collide); far from 0 and far from 8192.
        assert!((100..400).contains(&n), "got {n} entries");
    }
}
