//! One dpcls subtable: every megaflow that shares one mask, in a hash table of masked keys.
//!
//! Tuple-space search needs, per subtable, "hash the packet's key under this mask and look
//! the result up". The mask's nonzero-word bitmap (`FlowMask::nonzero_words`) limits both
//! hashing and comparison to the words the mask cares about, and the stored keys are
//! packed to just those words, so a probe touches a few cache lines. Open addressing
//! with linear probing and backward-shift deletion keeps lookups allocation-free and
//! tombstone-free.

use super::flow_table::FlowRef;
use crate::packet::flow_key::hash_masked;
use crate::packet::{FlowKey, FlowMask, FLOW_WORDS};

/// The megaflows of one mask.
pub struct Subtable {
    mask: FlowMask,
    word_bits: u64,
    /// Indices of the mask's nonzero words, then the mask words themselves (packed).
    word_idx: [u8; FLOW_WORDS],
    mask_words: [u64; FLOW_WORDS],
    n_words: usize,
    /// Slot arrays; a slot is empty when `flows[i].gen == 0`.
    hashes: Vec<u32>,
    flows: Vec<FlowRef>,
    keys: Vec<u64>,
    len: usize,
    /// Packets that hit this subtable since the last ranking pass.
    pub hits: u64,
}

const INITIAL_SLOTS: usize = 8;

impl Subtable {
    /// An empty subtable for `mask`.
    pub fn new(mask: &FlowMask) -> Self {
        let word_bits = mask.nonzero_words();
        let mut word_idx = [0u8; FLOW_WORDS];
        let mut mask_words = [0u64; FLOW_WORDS];
        let mut n = 0;
        let mut bits = word_bits;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            word_idx[n] = i as u8;
            mask_words[n] = mask.0.words()[i];
            n += 1;
        }
        Subtable {
            mask: *mask,
            word_bits,
            word_idx,
            mask_words,
            n_words: n,
            hashes: vec![0; INITIAL_SLOTS],
            flows: vec![FlowRef::NONE; INITIAL_SLOTS],
            keys: vec![0; INITIAL_SLOTS * n.max(1)],
            len: 0,
            hits: 0,
        }
    }

    /// The mask every flow here shares.
    pub fn mask(&self) -> &FlowMask {
        &self.mask
    }

    /// Number of megaflows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the subtable holds no flow.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The subtable hash of `key` (only the masked words).
    #[inline(always)]
    pub fn hash_of(&self, key: &FlowKey) -> u32 {
        hash_masked(key, &self.mask, self.word_bits)
    }

    #[inline(always)]
    fn slot_matches(&self, slot: usize, key: &FlowKey) -> bool {
        let kw = key.words();
        let stored = &self.keys[slot * self.n_words..slot * self.n_words + self.n_words];
        for j in 0..self.n_words {
            if kw[self.word_idx[j] as usize] & self.mask_words[j] != stored[j] {
                return false;
            }
        }
        true
    }

    /// Looks up a packet's (unmasked) key with its precomputed subtable hash.
    #[inline(always)]
    pub fn lookup_hashed(&self, key: &FlowKey, hash: u32) -> Option<FlowRef> {
        let cap_mask = self.flows.len() - 1;
        let mut pos = hash as usize & cap_mask;
        loop {
            let f = self.flows[pos];
            if f.gen == 0 {
                return None;
            }
            if self.hashes[pos] == hash && self.slot_matches(pos, key) {
                return Some(f);
            }
            pos = (pos + 1) & cap_mask;
        }
    }

    /// Looks up a packet's key.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<FlowRef> {
        self.lookup_hashed(key, self.hash_of(key))
    }

    fn grow(&mut self) {
        let new_cap = self.flows.len() * 2;
        let old_flows = std::mem::replace(&mut self.flows, vec![FlowRef::NONE; new_cap]);
        let old_hashes = std::mem::replace(&mut self.hashes, vec![0; new_cap]);
        let n = self.n_words;
        let old_keys = std::mem::replace(&mut self.keys, vec![0; new_cap * n.max(1)]);
        for i in 0..old_flows.len() {
            if old_flows[i].gen != 0 {
                self.place(old_hashes[i], old_flows[i], &old_keys[i * n..i * n + n]);
            }
        }
    }

    fn place(&mut self, hash: u32, flow: FlowRef, words: &[u64]) {
        let cap_mask = self.flows.len() - 1;
        let mut pos = hash as usize & cap_mask;
        while self.flows[pos].gen != 0 {
            pos = (pos + 1) & cap_mask;
        }
        self.flows[pos] = flow;
        self.hashes[pos] = hash;
        let n = self.n_words;
        self.keys[pos * n..pos * n + n].copy_from_slice(words);
    }

    /// Inserts a flow (its key is masked here). Replaces the entry of an identical masked
    /// key, returning the previous reference.
    pub fn insert(&mut self, key: &FlowKey, flow: FlowRef) -> Option<FlowRef> {
        let hash = self.hash_of(key);
        if let Some(pos) = self.find_slot(key, hash) {
            return Some(std::mem::replace(&mut self.flows[pos], flow));
        }
        if (self.len + 1) * 2 > self.flows.len() {
            self.grow();
        }
        let kw = key.words();
        let mut words = [0u64; FLOW_WORDS];
        for j in 0..self.n_words {
            words[j] = kw[self.word_idx[j] as usize] & self.mask_words[j];
        }
        self.place(hash, flow, &words[..self.n_words]);
        self.len += 1;
        None
    }

    fn find_slot(&self, key: &FlowKey, hash: u32) -> Option<usize> {
        let cap_mask = self.flows.len() - 1;
        let mut pos = hash as usize & cap_mask;
        loop {
            if self.flows[pos].gen == 0 {
                return None;
            }
            if self.hashes[pos] == hash && self.slot_matches(pos, key) {
                return Some(pos);
            }
            pos = (pos + 1) & cap_mask;
        }
    }

    /// Removes the flow whose masked key equals `key & mask`; returns its reference.
    pub fn remove(&mut self, key: &FlowKey) -> Option<FlowRef> {
        let hash = self.hash_of(key);
        let mut hole = self.find_slot(key, hash)?;
        let removed = self.flows[hole];
        let cap_mask = self.flows.len() - 1;
        let n = self.n_words;
        // Backward-shift deletion: pull later members of the probe run into the hole.
        let mut j = (hole + 1) & cap_mask;
        while self.flows[j].gen != 0 {
            let ideal = self.hashes[j] as usize & cap_mask;
            // Entry j may move to `hole` iff its ideal slot is not in (hole, j] cyclically.
            let dist_ideal = j.wrapping_sub(ideal) & cap_mask;
            let dist_hole = j.wrapping_sub(hole) & cap_mask;
            if dist_ideal >= dist_hole {
                self.flows[hole] = self.flows[j];
                self.hashes[hole] = self.hashes[j];
                self.keys.copy_within(j * n..j * n + n, hole * n);
                hole = j;
            }
            j = (j + 1) & cap_mask;
        }
        self.flows[hole] = FlowRef::NONE;
        self.len -= 1;
        Some(removed)
    }

    /// Every flow reference stored (for consistency checks).
    pub fn flow_refs(&self) -> impl Iterator<Item = FlowRef> + '_ {
        self.flows.iter().copied().filter(|f| f.gen != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_lookup_remove_many() {
        let mut m = FlowMask::default();
        m.0.nw_dst = u32::MAX;
        m.0.tp_dst = 0xff00;
        let mut st = Subtable::new(&m);
        for i in 1..=500u32 {
            let k = FlowKey {
                nw_dst: i,
                tp_dst: (i as u16) << 8,
                ..Default::default()
            };
            assert!(st.insert(&k, FlowRef { idx: i, gen: 1 }).is_none());
        }
        assert_eq!(st.len(), 500);
        for i in (1..=500u32).step_by(2) {
            let k = FlowKey {
                nw_dst: i,
                tp_dst: ((i as u16) << 8) | 0x37, // low byte not in the mask
                ..Default::default()
            };
            assert_eq!(st.remove(&k), Some(FlowRef { idx: i, gen: 1 }));
        }
        for i in 1..=500u32 {
            let k = FlowKey {
                nw_dst: i,
                tp_dst: ((i as u16) << 8) | 0x11,
                nw_src: 99, // not in the mask
                ..Default::default()
            };
            let want = (i % 2 == 0).then_some(FlowRef { idx: i, gen: 1 });
            assert_eq!(st.lookup(&k), want, "key {i}");
        }
        assert_eq!(st.len(), 250);
    }
}
