//! Entries of a bounded table in order of last use, so that the table can evict its
//! least recently used entry and expire its idle ones without scanning itself. The MAC
//! table, the multicast table and the tunnel neighbour cache learn from packets any
//! guest can send, on the PMD thread; a scan per new entry made a flood of made-up
//! addresses cost 14.4 us a translation at 8,192 MAC entries (`benches/xlate.rs`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Keys by the time they were last used, oldest first. The owning table keeps each
/// key's time too and passes it back on every change, so the index needs no map of its
/// own.
#[derive(Debug)]
pub(crate) struct AgeIndex<K: Ord + Copy> {
    by_age: BTreeSet<(Instant, K)>,
}

impl<K: Ord + Copy> Default for AgeIndex<K> {
    fn default() -> Self {
        AgeIndex {
            by_age: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Copy> AgeIndex<K> {
    /// A key the table has just added, used at `at`.
    pub(crate) fn insert(&mut self, at: Instant, key: K) {
        self.by_age.insert((at, key));
    }

    /// A key the table has just dropped (it was last used at `at`).
    pub(crate) fn remove(&mut self, at: Instant, key: K) {
        self.by_age.remove(&(at, key));
    }

    /// A key used again: moves it from `was` to `now`.
    pub(crate) fn touch(&mut self, was: Instant, now: Instant, key: K) {
        if was != now {
            self.by_age.remove(&(was, key));
            self.by_age.insert((now, key));
        }
    }

    /// Takes out the least recently used key, for the table to evict.
    pub(crate) fn pop_oldest(&mut self) -> Option<K> {
        self.by_age.pop_first().map(|(_, k)| k)
    }

    /// Takes out the least recently used key if it has been idle for `max_idle` or
    /// longer at `now`, for the table to expire (call until `None`).
    pub(crate) fn pop_idle(&mut self, now: Instant, max_idle: Duration) -> Option<K> {
        let &(at, key) = self.by_age.first()?;
        if now.saturating_duration_since(at) < max_idle {
            return None;
        }
        self.by_age.pop_first();
        Some(key)
    }

    /// Keeps only the keys `keep` accepts (after the table dropped entries in bulk).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.by_age.retain(|(_, k)| keep(k));
    }

    /// Forgets every key.
    pub(crate) fn clear(&mut self) {
        self.by_age.clear();
    }

    /// The indexed `(last use, key)` pairs, oldest first (for the tables' consistency
    /// tests).
    #[cfg(test)]
    pub(crate) fn pairs(&self) -> BTreeSet<(Instant, K)> {
        self.by_age.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_order_of_last_use_and_only_idle_keys_expire() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut ix = AgeIndex::default();
        ix.insert(at(1), 'a');
        ix.insert(at(2), 'b');
        ix.insert(at(3), 'c');
        ix.touch(at(1), at(10), 'a');
        ix.touch(at(3), at(3), 'c'); // unchanged
        assert_eq!(ix.pop_idle(at(12), Duration::from_secs(10)), Some('b'));
        assert_eq!(
            ix.pop_idle(at(12), Duration::from_secs(10)),
            None,
            "c is 9 s idle"
        );
        ix.remove(at(3), 'c');
        assert_eq!(ix.pop_oldest(), Some('a'));
        assert_eq!(ix.pop_oldest(), None);
        ix.insert(at(1), 'x');
        ix.retain(|k| *k != 'x');
        assert!(ix.pairs().is_empty());
    }
}
