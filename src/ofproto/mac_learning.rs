//! The forwarding database of NORMAL: which port a (MAC, VLAN) was last seen on.
//!
//! Entries age out (default 300 s, OVS's `mac-aging-time`), move when a MAC shows up on
//! another port, and the table is bounded (default 8192, OVS's `mac-table-size`): when
//! full, the entry unused the longest is evicted. The learned entries are also kept in
//! order of last use (`by_age`), so that eviction and expiry take the oldest without a
//! scan: translations run on the PMD thread, and a flood of new source addresses against
//! a full table cost 14.4 us a translation with a scan of all 8,192 entries
//! (`benches/xlate.rs`, `normal_mac_flood_full_fdb`). Every change that could alter a
//! forwarding decision (new entry, move, expiry, eviction) bumps `generation` so the
//! backer knows to revalidate megaflows; refreshing an entry in place does not.
//!
//! An operator can pin an address to a port (`fdb/add`, as in Open vSwitch): a *static*
//! entry never ages, is never evicted, does not move when the address shows up elsewhere,
//! and outlives `fdb/flush`; only `fdb/del` or the port's removal takes it away.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::age_index::AgeIndex;
use super::flow_syntax::fmt_mac;
use super::rule::OfPort;

/// OVS's default `mac-aging-time`.
pub const DEFAULT_MAC_AGING: Duration = Duration::from_secs(300);
/// OVS's default `mac-table-size`.
pub const DEFAULT_MAC_TABLE_SIZE: usize = 8192;

/// One learned address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacEntry {
    /// Port it was last seen on.
    pub port: OfPort,
    /// When it was last seen (or pinned).
    pub used: Instant,
    /// Pinned by an operator (`add_static`): no aging, eviction, move or flush.
    pub is_static: bool,
}

/// Why an address could not be pinned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StaticEntryError {
    /// Group addresses are never sources, so NORMAL would never consult the entry.
    #[error("{0} is a multicast address: only unicast addresses can be pinned to a port")]
    Multicast(String),
    /// Every entry is static already, and static entries are not evicted.
    #[error("the MAC table is full of static entries ({0}, mac_table_size)")]
    Full(usize),
    /// VLAN ids are 12 bits.
    #[error("VLAN {0} is out of range (0 to 4095)")]
    Vlan(u16),
    /// `fdb/del` of an address that is not pinned.
    #[error("no static entry for {mac} in VLAN {vlan}")]
    NotPinned {
        /// The address asked for.
        mac: String,
        /// Its VLAN.
        vlan: u16,
    },
}

/// What a call to [`MacLearning::learn`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LearnOutcome {
    /// The address was unknown and is now learned.
    New,
    /// The address moved from another port.
    Moved {
        /// Where it was before.
        from: OfPort,
    },
    /// Already known on this port; its age was reset.
    Refreshed,
    /// Not learnable (multicast source, or a full table of static entries).
    Ignored,
    /// Pinned by an operator: left as it is, wherever the address showed up.
    Static,
}

/// What the fdb has done since it was made or its counters were cleared: OVS's
/// `fdb/stats-show`, so that an operator can tell a table that churns (many evictions:
/// too small for the hosts behind it) or flaps (many moves: a loop, or a MAC on two
/// ports) from one that is quiet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacLearningStats {
    /// Addresses learned anew (not refreshes).
    pub learned: u64,
    /// Entries dropped for being idle longer than the aging time.
    pub expired: u64,
    /// Entries dropped to make room in a full table.
    pub evicted: u64,
    /// Addresses that showed up on another port than the one they were learned on.
    pub moved: u64,
}

/// The fdb of one bridge.
#[derive(Debug)]
pub struct MacLearning {
    entries: HashMap<([u8; 6], u16), MacEntry>,
    /// The learned (not static) entries by last use, oldest first: `(used, mac, vlan)`.
    by_age: AgeIndex<([u8; 6], u16)>,
    /// Idle time after which an entry expires.
    pub aging: Duration,
    /// Maximum number of entries.
    pub max_entries: usize,
    generation: u64,
    stats: MacLearningStats,
}

impl Default for MacLearning {
    fn default() -> Self {
        MacLearning::new(DEFAULT_MAC_AGING, DEFAULT_MAC_TABLE_SIZE)
    }
}

impl MacLearning {
    /// An empty fdb with the given aging time and size limit.
    pub fn new(aging: Duration, max_entries: usize) -> Self {
        MacLearning {
            entries: HashMap::new(),
            by_age: AgeIndex::default(),
            aging,
            max_entries: max_entries.max(1),
            generation: 0,
            stats: MacLearningStats::default(),
        }
    }

    /// Bumped on every change that can alter forwarding.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Records that `mac` was seen on `port` in `vlan`.
    pub fn learn(&mut self, mac: [u8; 6], vlan: u16, port: OfPort, now: Instant) -> LearnOutcome {
        if mac[0] & 1 != 0 {
            return LearnOutcome::Ignored;
        }
        if let Some(e) = self.entries.get_mut(&(mac, vlan)) {
            if e.is_static {
                return LearnOutcome::Static;
            }
            let from = e.port;
            self.by_age.touch(e.used, now, (mac, vlan));
            e.used = now;
            if from == port {
                return LearnOutcome::Refreshed;
            }
            e.port = port;
            self.generation += 1;
            self.stats.moved += 1;
            return LearnOutcome::Moved { from };
        }
        if !self.make_room() {
            return LearnOutcome::Ignored;
        }
        self.entries.insert(
            (mac, vlan),
            MacEntry {
                port,
                used: now,
                is_static: false,
            },
        );
        self.by_age.insert(now, (mac, vlan));
        self.generation += 1;
        self.stats.learned += 1;
        LearnOutcome::New
    }

    /// Evicts the dynamic entry unused the longest if the table is full; false if it is
    /// full of static entries.
    fn make_room(&mut self) -> bool {
        if self.entries.len() < self.max_entries {
            return true;
        }
        match self.by_age.pop_oldest() {
            Some(key) => {
                self.entries.remove(&key);
                self.stats.evicted += 1;
                true
            }
            None => false,
        }
    }

    /// Pins `mac` in `vlan` to `port` (`fdb/add`), replacing what was learned for it.
    pub fn add_static(
        &mut self,
        mac: [u8; 6],
        vlan: u16,
        port: OfPort,
        now: Instant,
    ) -> Result<(), StaticEntryError> {
        if mac[0] & 1 != 0 {
            return Err(StaticEntryError::Multicast(fmt_mac(&mac)));
        }
        if vlan > 4095 {
            return Err(StaticEntryError::Vlan(vlan));
        }
        match self.entries.get(&(mac, vlan)).copied() {
            Some(e) if !e.is_static => {
                self.by_age.remove(e.used, (mac, vlan));
            }
            Some(_) => {}
            None if !self.make_room() => return Err(StaticEntryError::Full(self.max_entries)),
            None => {}
        }
        self.entries.insert(
            (mac, vlan),
            MacEntry {
                port,
                used: now,
                is_static: true,
            },
        );
        self.generation += 1;
        Ok(())
    }

    /// Unpins `mac` in `vlan` (`fdb/del`). An address that was only learned is left
    /// alone and reported, as Open vSwitch does.
    pub fn del_static(&mut self, mac: [u8; 6], vlan: u16) -> Result<(), StaticEntryError> {
        match self.entries.get(&(mac, vlan)) {
            Some(e) if e.is_static => {
                self.entries.remove(&(mac, vlan));
                self.generation += 1;
                Ok(())
            }
            _ => Err(StaticEntryError::NotPinned {
                mac: fmt_mac(&mac),
                vlan,
            }),
        }
    }

    /// Entries pinned by `add_static`.
    pub fn static_count(&self) -> usize {
        self.entries.values().filter(|e| e.is_static).count()
    }

    /// The port `mac` in `vlan` was learned on, unless expired.
    pub fn lookup(&self, mac: [u8; 6], vlan: u16, now: Instant) -> Option<OfPort> {
        let e = self.entries.get(&(mac, vlan))?;
        (e.is_static || now.saturating_duration_since(e.used) < self.aging).then_some(e.port)
    }

    /// Drops expired entries, oldest first, stopping at the first one still fresh;
    /// returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some(key) = self.by_age.pop_idle(now, self.aging) {
            self.entries.remove(&key);
            n += 1;
        }
        if n > 0 {
            self.generation += 1;
        }
        self.stats.expired += n as u64;
        n
    }

    /// Forgets everything learned on `port`, pinned entries too (port deleted or VLAN
    /// config changed).
    pub fn flush_port(&mut self, port: OfPort) {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.port != port);
        if self.entries.len() != before {
            let entries = &self.entries;
            self.by_age.retain(|key| entries.contains_key(key));
            self.generation += 1;
        }
    }

    /// Forgets everything learned (`fdb/flush`); pinned entries stay.
    pub fn flush(&mut self) {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.is_static);
        self.by_age.clear();
        if self.entries.len() != before {
            self.generation += 1;
        }
    }

    /// The counters since creation or the last `clear_stats`.
    pub fn stats(&self) -> MacLearningStats {
        self.stats
    }

    /// Zeroes the counters (`fdb/stats-clear`); the entries stay.
    pub fn clear_stats(&mut self) {
        self.stats = MacLearningStats::default();
    }

    /// Number of entries (expired ones included until `expire` runs).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the fdb is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries as (mac, vlan, entry), sorted by port, VLAN, MAC for display.
    pub fn entries(&self) -> Vec<([u8; 6], u16, MacEntry)> {
        let mut v: Vec<_> = self
            .entries
            .iter()
            .map(|((m, vl), e)| (*m, *vl, *e))
            .collect();
        v.sort_by_key(|(m, vl, e)| (e.port, *vl, *m));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [0, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [0, 0, 0, 0, 0, 0xb];

    #[test]
    fn learns_moves_and_ages() {
        let t0 = Instant::now();
        let mut fdb = MacLearning::default();
        assert_eq!(fdb.learn(A, 0, 1, t0), LearnOutcome::New);
        assert_eq!(fdb.learn(A, 0, 1, t0), LearnOutcome::Refreshed);
        assert_eq!(fdb.lookup(A, 0, t0), Some(1));
        assert_eq!(fdb.lookup(A, 10, t0), None, "VLANs are separate");
        assert_eq!(fdb.learn(A, 0, 2, t0), LearnOutcome::Moved { from: 1 });
        assert_eq!(fdb.lookup(A, 0, t0), Some(2));
        let later = t0 + Duration::from_secs(299);
        assert_eq!(fdb.lookup(A, 0, later), Some(2));
        let g = fdb.generation();
        assert_eq!(fdb.expire(t0 + Duration::from_secs(300)), 1);
        assert!(fdb.generation() > g);
        assert_eq!(fdb.lookup(A, 0, t0 + Duration::from_secs(300)), None);
        let st = fdb.stats();
        assert_eq!((st.learned, st.moved, st.expired, st.evicted), (1, 1, 1, 0));
        fdb.clear_stats();
        assert_eq!(fdb.stats(), MacLearningStats::default());
    }

    #[test]
    fn multicast_source_is_not_learned() {
        let mut fdb = MacLearning::default();
        let m = [0x01, 0x00, 0x5e, 0, 0, 1];
        assert_eq!(fdb.learn(m, 0, 1, Instant::now()), LearnOutcome::Ignored);
        assert!(fdb.is_empty());
    }

    #[test]
    fn full_table_evicts_the_oldest() {
        let t0 = Instant::now();
        let mut fdb = MacLearning::new(DEFAULT_MAC_AGING, 2);
        fdb.learn(A, 0, 1, t0);
        fdb.learn(B, 0, 2, t0 + Duration::from_secs(1));
        fdb.learn([0, 0, 0, 0, 0, 0xc], 0, 3, t0 + Duration::from_secs(2));
        assert_eq!(fdb.len(), 2);
        let now = t0 + Duration::from_secs(3);
        assert_eq!(fdb.lookup(A, 0, now), None);
        assert_eq!(fdb.lookup(B, 0, now), Some(2));
        assert_eq!((fdb.stats().learned, fdb.stats().evicted), (3, 1));
    }

    /// The age index holds exactly the learned entries, each at its last use.
    fn assert_index_consistent(fdb: &MacLearning) {
        let learned: std::collections::BTreeSet<_> = fdb
            .entries
            .iter()
            .filter(|(_, e)| !e.is_static)
            .map(|(key, e)| (e.used, *key))
            .collect();
        assert_eq!(learned, fdb.by_age.pairs());
    }

    #[test]
    fn eviction_and_expiry_take_the_least_recently_used_in_order() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mac = |n: u8| [0, 0, 0, 0, 0, n];
        let mut fdb = MacLearning::new(Duration::from_secs(100), 4);
        for n in 1..=4 {
            fdb.learn(mac(n), 0, 1, at(n as u64));
        }
        fdb.learn(mac(1), 0, 2, at(10)); // moved: now the most recent
        fdb.learn(mac(2), 0, 1, at(11)); // refreshed
        fdb.add_static(mac(3), 0, 1, at(12)).unwrap(); // pinned: out of the order
        assert_index_consistent(&fdb);
        fdb.learn(mac(5), 0, 1, at(13)); // full: evicts mac 4, the least recently used
        assert_eq!(fdb.lookup(mac(4), 0, at(13)), None);
        assert_eq!(fdb.stats().evicted, 1);
        assert_index_consistent(&fdb);
        // Ages 100 s after last use: mac 1 (10 s) and 2 (11 s) go at 111 s, not mac 5.
        assert_eq!(fdb.expire(at(111)), 2);
        assert_eq!(fdb.lookup(mac(5), 0, at(111)), Some(1));
        assert_eq!(fdb.lookup(mac(3), 0, at(111)), Some(1));
        assert_index_consistent(&fdb);
        fdb.flush_port(1);
        assert!(fdb.is_empty());
        assert_index_consistent(&fdb);
        for n in 1..=3 {
            fdb.learn(mac(n), 0, 1, at(200));
        }
        fdb.flush();
        assert!(fdb.is_empty());
        assert_index_consistent(&fdb);
    }

    #[test]
    fn pinned_entries_stay_put_until_unpinned() {
        let t0 = Instant::now();
        let mut fdb = MacLearning::new(DEFAULT_MAC_AGING, 2);
        fdb.learn(A, 0, 1, t0);
        fdb.add_static(A, 0, 2, t0).unwrap();
        assert_eq!(
            fdb.lookup(A, 0, t0),
            Some(2),
            "pinning replaces what was learned"
        );
        assert_eq!(fdb.learn(A, 0, 3, t0), LearnOutcome::Static);
        let much_later = t0 + Duration::from_secs(3600);
        assert_eq!(fdb.expire(much_later), 0);
        assert_eq!(fdb.lookup(A, 0, much_later), Some(2), "no aging, no move");
        fdb.flush();
        assert_eq!(fdb.lookup(A, 0, much_later), Some(2), "fdb/flush keeps it");
        // A full table evicts the learned entry, never the pinned one.
        fdb.learn(B, 0, 1, t0);
        fdb.learn([0, 0, 0, 0, 0, 0xc], 0, 1, t0 + Duration::from_secs(1));
        assert_eq!(fdb.lookup(B, 0, t0), None);
        assert_eq!(fdb.static_count(), 1);
        fdb.add_static(B, 7, 1, t0).unwrap();
        assert_eq!(fdb.static_count(), 2);
        assert_eq!(
            fdb.add_static([0, 0, 0, 0, 0, 0xd], 0, 1, t0),
            Err(StaticEntryError::Full(2))
        );
        assert_eq!(
            fdb.learn([0, 0, 0, 0, 0, 0xe], 0, 1, t0),
            LearnOutcome::Ignored
        );
        let g = fdb.generation();
        fdb.del_static(A, 0).unwrap();
        assert!(fdb.generation() > g, "unpinning revalidates");
        assert_eq!(fdb.lookup(A, 0, t0), None);
        assert!(matches!(
            fdb.del_static(A, 0),
            Err(StaticEntryError::NotPinned { vlan: 0, .. })
        ));
        assert!(matches!(
            fdb.add_static([1, 0, 0x5e, 0, 0, 1], 0, 1, t0),
            Err(StaticEntryError::Multicast(_))
        ));
        assert_eq!(
            fdb.add_static(A, 4096, 1, t0),
            Err(StaticEntryError::Vlan(4096))
        );
        fdb.flush_port(1);
        assert_eq!(
            fdb.static_count(),
            0,
            "a removed port takes its pinned entries"
        );
    }

    proptest::proptest! {
        /// Any sequence of learning, pinning, unpinning, expiry and flushes keeps the age
        /// index equal to the learned entries, and a full table always evicts the entry
        /// a scan would pick: the least recently used learned one.
        #[test]
        fn the_age_index_matches_a_scan(ops in proptest::collection::vec((0u8..6, 0u8..8, 0u16..2, 1u16..4), 1..200)) {
            let t0 = Instant::now();
            let mut fdb = MacLearning::new(Duration::from_secs(30), 5);
            for (i, (op, m, vlan, port)) in ops.into_iter().enumerate() {
                let now = t0 + Duration::from_secs(i as u64);
                let mac = [2, 0, 0, 0, 0, m];
                match op {
                    0 | 1 => {
                        let victim = (fdb.len() >= fdb.max_entries
                            && !fdb.entries.contains_key(&(mac, vlan)))
                        .then(|| {
                            fdb.entries
                                .iter()
                                .filter(|(_, e)| !e.is_static)
                                .map(|((m, v), e)| (e.used, *m, *v))
                                .min()
                        })
                        .flatten();
                        fdb.learn(mac, vlan, port, now);
                        if let Some((_, vm, vv)) = victim {
                            proptest::prop_assert!(!fdb.entries.contains_key(&(vm, vv)));
                        }
                    }
                    2 => {
                        let _ = fdb.add_static(mac, vlan, port, now);
                    }
                    3 => {
                        let _ = fdb.del_static(mac, vlan);
                    }
                    4 => {
                        fdb.expire(now);
                    }
                    _ => {
                        if m % 2 == 0 {
                            fdb.flush();
                        } else {
                            fdb.flush_port(port);
                        }
                    }
                }
                proptest::prop_assert!(fdb.len() <= fdb.max_entries);
                assert_index_consistent(&fdb);
            }
        }
    }
}
