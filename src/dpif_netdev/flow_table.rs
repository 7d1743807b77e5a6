//! The per-PMD megaflow table: owns every megaflow a PMD thread has installed.
//!
//! Megaflows live in a slab addressed by `FlowRef { idx, gen }`. The EMC and the dpcls
//! subtables hold `FlowRef`s, never pointers: deleting a megaflow bumps its slot's
//! generation, so every cached reference to it stops resolving at once (no dangling entry,
//! no sweep of the EMC). The table is bounded (OVS: 65,536 megaflows per PMD) so a flood of
//! distinct flows degrades into upcalls instead of unbounded memory.

use std::collections::HashMap;
use std::time::Instant;

use crate::dpif::{DpActions, DpFlowStats};
use crate::packet::{FlowKey, FlowMask};

/// Default bound on megaflows per PMD thread (OVS's `MAX_FLOWS`).
pub const DEFAULT_MAX_FLOWS: usize = 65_536;

/// A handle to a megaflow that stays safe to hold after the flow is deleted: it simply
/// stops resolving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowRef {
    /// Slot index in the slab.
    pub idx: u32,
    /// Generation of the slot when the flow was installed (never 0 for a live flow).
    pub gen: u32,
}

impl FlowRef {
    /// A reference that never resolves (generation 0 is never live).
    pub const NONE: FlowRef = FlowRef { idx: 0, gen: 0 };
}

/// Per-flow counters, updated by the owning PMD once per batch and group.
#[derive(Clone, Copy, Debug, Default)]
pub struct MegaflowStats {
    /// Packets that hit the flow.
    pub packets: u64,
    /// Bytes that hit the flow.
    pub bytes: u64,
    /// Last hit.
    pub used: Option<Instant>,
    /// OR of TCP flags seen.
    pub tcp_flags: u16,
}

impl MegaflowStats {
    /// The datapath-neutral view.
    pub fn to_dp(self) -> DpFlowStats {
        DpFlowStats {
            packets: self.packets,
            bytes: self.bytes,
            used: self.used,
            tcp_flags: self.tcp_flags,
        }
    }
}

/// One installed megaflow: a masked key, its mask and what to do.
#[derive(Clone, Debug)]
pub struct Megaflow {
    /// The key, masked (`key == key & mask`).
    pub key: FlowKey,
    /// Which bits matter. `in_port` and `recirc_id` are always exact (see `normalize_mask`).
    pub mask: FlowMask,
    /// Actions; empty = drop.
    pub actions: DpActions,
    /// Counters.
    pub stats: MegaflowStats,
}

/// Makes a mask the datapath can classify on: the dpcls is partitioned by `in_port` and
/// recirculation passes must never share flows with first passes, so both fields are
/// always matched exactly (as OVS's userspace datapath requires).
pub fn normalize_mask(mask: &FlowMask) -> FlowMask {
    let mut m = *mask;
    m.0.in_port = u32::MAX;
    m.0.recirc_id = u32::MAX;
    m.0._pad0 = 0;
    m.0._pad1 = 0;
    m
}

struct Slot {
    gen: u32,
    flow: Option<Megaflow>,
}

/// Why an insert failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// A flow with the same masked key and mask exists (its reference is given).
    Exists(FlowRef),
    /// The table holds `max` flows already.
    Full(usize),
}

/// The bounded slab of megaflows plus an index by (masked key, mask).
pub struct FlowTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    by_match: HashMap<(FlowKey, FlowMask), FlowRef>,
    max_flows: usize,
}

impl FlowTable {
    /// An empty table that accepts up to `max_flows` megaflows.
    pub fn new(max_flows: usize) -> Self {
        FlowTable {
            slots: Vec::new(),
            free: Vec::new(),
            by_match: HashMap::new(),
            max_flows,
        }
    }

    /// Number of live megaflows.
    pub fn len(&self) -> usize {
        self.by_match.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_match.is_empty()
    }

    /// The configured bound.
    pub fn max_flows(&self) -> usize {
        self.max_flows
    }

    /// Resolves a reference; `None` once the flow was deleted.
    #[inline(always)]
    pub fn get(&self, r: FlowRef) -> Option<&Megaflow> {
        match self.slots.get(r.idx as usize) {
            Some(s) if s.gen == r.gen => s.flow.as_ref(),
            _ => None,
        }
    }

    /// Mutable resolve (stats updates).
    #[inline(always)]
    pub fn get_mut(&mut self, r: FlowRef) -> Option<&mut Megaflow> {
        match self.slots.get_mut(r.idx as usize) {
            Some(s) if s.gen == r.gen => s.flow.as_mut(),
            _ => None,
        }
    }

    /// Whether `r` still names a live flow.
    #[inline(always)]
    pub fn is_live(&self, r: FlowRef) -> bool {
        self.get(r).is_some()
    }

    /// Finds a flow by masked key and mask (mask normalized by the caller).
    pub fn find(&self, key: &FlowKey, mask: &FlowMask) -> Option<FlowRef> {
        self.by_match.get(&(key.masked(mask), *mask)).copied()
    }

    /// Installs a megaflow. The key is masked here; the mask must be normalized.
    pub fn insert(
        &mut self,
        key: &FlowKey,
        mask: &FlowMask,
        actions: DpActions,
    ) -> Result<FlowRef, InsertError> {
        let key = key.masked(mask);
        if let Some(r) = self.by_match.get(&(key, *mask)) {
            return Err(InsertError::Exists(*r));
        }
        if self.by_match.len() >= self.max_flows {
            return Err(InsertError::Full(self.max_flows));
        }
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot { gen: 0, flow: None });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[idx as usize];
        // Generation 0 is reserved for "never live"; skip it on wrap.
        slot.gen = slot.gen.wrapping_add(1).max(1);
        slot.flow = Some(Megaflow {
            key,
            mask: *mask,
            actions,
            stats: MegaflowStats::default(),
        });
        let r = FlowRef { idx, gen: slot.gen };
        self.by_match.insert((key, *mask), r);
        Ok(r)
    }

    /// Deletes a flow, returning it. Every `FlowRef` to it stops resolving.
    pub fn remove(&mut self, r: FlowRef) -> Option<Megaflow> {
        let slot = self.slots.get_mut(r.idx as usize)?;
        if slot.gen != r.gen {
            return None;
        }
        let flow = slot.flow.take()?;
        slot.gen = slot.gen.wrapping_add(1).max(1);
        self.free.push(r.idx);
        self.by_match.remove(&(flow.key, flow.mask));
        Some(flow)
    }

    /// Every live flow with its reference.
    pub fn iter(&self) -> impl Iterator<Item = (FlowRef, &Megaflow)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.flow.as_ref().map(|f| {
                (
                    FlowRef {
                        idx: i as u32,
                        gen: s.gen,
                    },
                    f,
                )
            })
        })
    }

    /// Removes every flow (references all stop resolving).
    pub fn clear(&mut self) {
        let refs: Vec<FlowRef> = self.iter().map(|(r, _)| r).collect();
        for r in refs {
            self.remove(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dpif::DpAction;
    use std::sync::Arc;

    fn key(port: u32, dst: u32) -> FlowKey {
        FlowKey {
            in_port: port,
            nw_dst: dst,
            ..Default::default()
        }
    }

    fn mask() -> FlowMask {
        let mut m = FlowMask::default();
        m.0.nw_dst = u32::MAX;
        normalize_mask(&m)
    }

    #[test]
    fn limit_is_enforced_and_freed_slots_are_reused() {
        let mut t = FlowTable::new(3);
        let acts: DpActions = Arc::from(vec![DpAction::Output(2)]);
        let r: Vec<FlowRef> = (0..3)
            .map(|i| t.insert(&key(1, i), &mask(), acts.clone()).unwrap())
            .collect();
        assert_eq!(
            t.insert(&key(1, 9), &mask(), acts.clone()),
            Err(InsertError::Full(3))
        );
        assert_eq!(
            t.insert(&key(1, 1), &mask(), acts.clone()),
            Err(InsertError::Exists(r[1]))
        );
        let f = t.remove(r[1]).unwrap();
        assert_eq!(f.key.nw_dst, 1);
        assert!(t.get(r[1]).is_none(), "deleted flow must not resolve");
        let r2 = t.insert(&key(1, 9), &mask(), acts).unwrap();
        assert_eq!(r2.idx, r[1].idx, "slot reused");
        assert_ne!(r2.gen, r[1].gen, "with a new generation");
        assert!(t.get(r[1]).is_none());
        assert_eq!(t.len(), 3);
        t.clear();
        assert!(t.is_empty());
        assert!(t.get(r2).is_none());
    }

    #[test]
    fn keys_are_stored_masked() {
        let mut t = FlowTable::new(10);
        let mut k = key(1, 5);
        k.tp_dst = 80; // not in mask
        let r = t.insert(&k, &mask(), Arc::from(Vec::new())).unwrap();
        assert_eq!(t.get(r).unwrap().key.tp_dst, 0);
        assert_eq!(t.find(&k, &mask()), Some(r));
    }
}
