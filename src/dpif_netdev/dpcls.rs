//! dpcls: the megaflow classifier of one PMD thread for one input port.
//!
//! Tuple-space search: one `Subtable` per distinct mask, searched in rank order until
//! every packet of the batch has matched. A whole batch goes through subtable 1 first,
//! then the packets still unmatched go through subtable 2, and so on, so each subtable's
//! metadata stays hot while it is used. Subtables are ranked by hit count and re-sorted
//! periodically (the PMD does it once a second, as OVS does), which puts the busiest masks
//! first and keeps "avg. subtable lookups per megaflow hit" near 1.
//!
//! Megaflows installed by a correct translator never overlap, so the first match is the
//! match; with overlapping flows any matching flow may be returned.

use super::flow_table::FlowRef;
use super::subtable::Subtable;
use crate::packet::{FlowKey, FlowMask, MAX_BURST};

/// The classifier of one (PMD, in_port) pair.
#[derive(Default)]
pub struct Dpcls {
    subtables: Vec<Subtable>,
}

/// Result of a batch lookup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchLookup {
    /// Bit i set <=> packet i matched.
    pub hit_bits: u32,
    /// Sum over matched packets of the 1-based rank of the subtable they matched in.
    pub subtables_searched: u64,
    /// Per matched packet, that rank (0 for the others), so that a packet repeating a
    /// matched one's key can be counted as if it had searched as far.
    pub ranks: [u8; MAX_BURST],
}

impl Dpcls {
    /// An empty classifier.
    pub fn new() -> Self {
        Dpcls::default()
    }

    /// Number of subtables (distinct masks).
    pub fn n_subtables(&self) -> usize {
        self.subtables.len()
    }

    /// Number of megaflows.
    pub fn n_flows(&self) -> usize {
        self.subtables.iter().map(|s| s.len()).sum()
    }

    /// Whether no flow is installed.
    pub fn is_empty(&self) -> bool {
        self.subtables.is_empty()
    }

    /// The masks in current rank order.
    pub fn masks(&self) -> impl Iterator<Item = &FlowMask> {
        self.subtables.iter().map(|s| s.mask())
    }

    /// Installs `flow` under `mask`, creating the subtable if the mask is new. Returns the
    /// reference it replaced, if an identical (masked key, mask) was present.
    pub fn insert(&mut self, key: &FlowKey, mask: &FlowMask, flow: FlowRef) -> Option<FlowRef> {
        let st = match self.subtables.iter().position(|s| s.mask() == mask) {
            Some(i) => &mut self.subtables[i],
            None => {
                self.subtables.push(Subtable::new(mask));
                self.subtables.last_mut().expect("just pushed")
            }
        };
        st.insert(key, flow)
    }

    /// Removes the flow with this masked key and mask; drops the subtable when it empties.
    pub fn remove(&mut self, key: &FlowKey, mask: &FlowMask) -> Option<FlowRef> {
        let i = self.subtables.iter().position(|s| s.mask() == mask)?;
        let r = self.subtables[i].remove(key);
        if self.subtables[i].is_empty() {
            self.subtables.remove(i);
        }
        r
    }

    /// Looks one key up (slow paths and tests). Returns the flow and the 1-based rank of
    /// the subtable it was found in.
    pub fn lookup_one(&self, key: &FlowKey) -> Option<(FlowRef, usize)> {
        self.subtables
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.lookup(key).map(|f| (f, i + 1)))
    }

    /// Looks up the packets of `keys` whose bit is set in `want` (at most `MAX_BURST`
    /// keys), writing matches into `out`. Subtable hit counters are updated.
    #[inline]
    pub fn lookup_batch(
        &mut self,
        keys: &[FlowKey],
        want: u32,
        out: &mut [FlowRef],
    ) -> BatchLookup {
        debug_assert!(keys.len() <= MAX_BURST && out.len() >= keys.len());
        let mut remaining = want;
        let mut res = BatchLookup::default();
        for (rank, st) in self.subtables.iter_mut().enumerate() {
            if remaining == 0 {
                break;
            }
            let mut hashes = [0u32; MAX_BURST];
            let mut bits = remaining;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                hashes[i] = st.hash_of(&keys[i]);
            }
            let mut bits = remaining;
            let mut found = 0u64;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(f) = st.lookup_hashed(&keys[i], hashes[i]) {
                    out[i] = f;
                    res.ranks[i] = (rank + 1).min(u8::MAX as usize) as u8;
                    remaining &= !(1 << i);
                    found += 1;
                }
            }
            st.hits += found;
            res.subtables_searched += found * (rank as u64 + 1);
        }
        res.hit_bits = want & !remaining;
        res
    }

    /// Re-ranks subtables by hits since the last call (busiest first) and resets the
    /// counters. Stable for ties, so an idle classifier keeps its order.
    pub fn sort_subtables(&mut self) {
        self.subtables.sort_by_key(|s| std::cmp::Reverse(s.hits));
        for s in &mut self.subtables {
            s.hits = 0;
        }
    }

    /// Drops every flow and subtable.
    pub fn clear(&mut self) {
        self.subtables.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A small universe of field values so random packets often match random flows.
    fn arb_key() -> impl Strategy<Value = FlowKey> {
        (0u32..3, 0u32..4, 0u32..4, 0u16..3, 0u8..3, 0u16..2).prop_map(
            |(port, src, dst, tp, proto, vid)| FlowKey {
                in_port: port,
                nw_src: src,
                nw_dst: dst,
                tp_dst: tp,
                nw_proto: proto,
                vlans: [
                    crate::packet::VlanTag {
                        tpid: 0x8100,
                        tci: vid,
                    },
                    Default::default(),
                ],
                ..Default::default()
            },
        )
    }

    fn arb_mask() -> impl Strategy<Value = FlowMask> {
        (
            any::<bool>(),
            0u32..4,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(port, src, dst, tp, proto, vid)| {
                let mut m = FlowMask::default();
                m.0.in_port = if port { u32::MAX } else { 0 };
                // Partial masks too, not only all-or-nothing.
                m.0.nw_src = [0, 1, 2, u32::MAX][src as usize];
                m.0.nw_dst = if dst { u32::MAX } else { 0 };
                m.0.tp_dst = if tp { u16::MAX } else { 0 };
                m.0.nw_proto = if proto { u8::MAX } else { 0 };
                m.0.vlans[0].tci = if vid { 0x0fff } else { 0 };
                m
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn batch_lookup_agrees_with_linear_scan(
            flows in prop::collection::vec((arb_key(), arb_mask()), 0..40),
            pkts in prop::collection::vec(arb_key(), 1..=32),
            deletes in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let mut cls = Dpcls::new();
            // Reference: (masked key, mask) list; duplicates collapse as in the classifier.
            let mut reference: Vec<(FlowKey, FlowMask, FlowRef)> = Vec::new();
            for (n, (k, m)) in flows.iter().enumerate() {
                let mk = k.masked(m);
                if reference.iter().any(|(rk, rm, _)| *rk == mk && rm == m) {
                    continue;
                }
                let r = FlowRef { idx: n as u32, gen: 1 };
                prop_assert!(cls.insert(&mk, m, r).is_none());
                reference.push((mk, *m, r));
            }
            for d in deletes {
                if reference.is_empty() { break; }
                let (k, m, r) = reference.remove(d.index(reference.len()));
                prop_assert_eq!(cls.remove(&k, &m), Some(r));
            }
            prop_assert_eq!(cls.n_flows(), reference.len());
            let mut out = [FlowRef::NONE; MAX_BURST];
            let want = if pkts.len() == 32 { u32::MAX } else { (1u32 << pkts.len()) - 1 };
            let res = cls.lookup_batch(&pkts, want, &mut out);
            let mut searched = 0;
            for (i, p) in pkts.iter().enumerate() {
                let matching: Vec<FlowRef> = reference.iter()
                    .filter(|(k, m, _)| p.matches_masked(k, m))
                    .map(|(_, _, r)| *r)
                    .collect();
                if res.hit_bits & (1 << i) != 0 {
                    prop_assert!(matching.contains(&out[i]), "hit on a flow that does not match");
                    let (one, rank) = cls.lookup_one(p).unwrap();
                    prop_assert_eq!(one, out[i]);
                    searched += rank as u64;
                } else {
                    prop_assert!(matching.is_empty(), "miss although a flow matches");
                }
            }
            prop_assert_eq!(res.subtables_searched, searched);
            cls.sort_subtables();
            let res2 = cls.lookup_batch(&pkts, want, &mut out);
            prop_assert_eq!(res2.hit_bits, res.hit_bits);
        }
    }

    #[test]
    fn ranking_puts_busiest_subtable_first() {
        let mut cls = Dpcls::new();
        let mut m1 = FlowMask::default();
        m1.0.nw_src = u32::MAX;
        let mut m2 = FlowMask::default();
        m2.0.nw_dst = u32::MAX;
        let k1 = FlowKey {
            nw_src: 1,
            ..Default::default()
        };
        let k2 = FlowKey {
            nw_dst: 2,
            ..Default::default()
        };
        cls.insert(&k1, &m1, FlowRef { idx: 1, gen: 1 });
        cls.insert(&k2, &m2, FlowRef { idx: 2, gen: 1 });
        let pkts = [k2; 8];
        let mut out = [FlowRef::NONE; MAX_BURST];
        let r = cls.lookup_batch(&pkts, 0xff, &mut out);
        assert_eq!(r.subtables_searched, 16, "second subtable before ranking");
        cls.sort_subtables();
        assert_eq!(cls.masks().next(), Some(&m2));
        let r = cls.lookup_batch(&pkts, 0xff, &mut out);
        assert_eq!(r.subtables_searched, 8, "first subtable after ranking");
        assert_eq!(r.hit_bits, 0xff);
    }
}
