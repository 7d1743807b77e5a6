//! The tunnel neighbour cache: IP -> MAC of underlay next hops, filled by snooping ARP
//! and IPv6 neighbour discovery on the bridges (as OVS's tnl-neigh-cache does), so that a
//! tunnel's outer Ethernet header can be built without asking the kernel.
//!
//! Entries expire after `NEIGH_IDLE` without being refreshed. A change (a new MAC for an
//! IP, a flush, an expiry, an eviction) bumps `generation`, which tells the backer that
//! megaflows with prebuilt tunnel headers must be revalidated.
//!
//! The cache holds at most `NEIGH_MAX` entries, evicting the one seen least recently: it
//! learns from every ARP and neighbour discovery packet on the bridges, which any guest
//! can send with made-up sender addresses, and without a bound a flood of them would
//! grow it for the whole 15 minutes an entry lives. An index by last sighting
//! (`by_seen`) finds the oldest entry without a scan.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::age_index::AgeIndex;

/// How long an entry lives without a refresh (OVS: 15 minutes).
pub const NEIGH_IDLE: Duration = Duration::from_secs(15 * 60);
/// The most entries the cache holds: far more underlay next hops than a host has, few
/// enough (about 1 MiB) that a flood of made-up senders costs nothing that matters.
pub const NEIGH_MAX: usize = 8192;

/// One learned neighbour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighEntry {
    /// Its MAC.
    pub mac: [u8; 6],
    /// Bridge it was seen on.
    pub bridge: String,
    /// When it was last seen.
    pub seen: Instant,
}

/// See the module docs.
#[derive(Default)]
pub struct NeighCache {
    table: Mutex<NeighTable>,
    generation: AtomicU64,
}

/// The entries, and the same entries by last sighting (oldest first).
#[derive(Default)]
struct NeighTable {
    entries: BTreeMap<IpAddr, NeighEntry>,
    by_seen: AgeIndex<IpAddr>,
}

fn fmt_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

impl NeighCache {
    fn table(&self) -> std::sync::MutexGuard<'_, NeighTable> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `ip` is at `mac` on `bridge`. Zero, broadcast and multicast MACs and
    /// unspecified IPs are ignored (gratuitous or malformed announcements).
    pub fn learn(&self, ip: IpAddr, mac: [u8; 6], bridge: &str, now: Instant) {
        if ip.is_unspecified() || mac == [0; 6] || mac[0] & 1 != 0 {
            return;
        }
        let mut t = self.table();
        let t = &mut *t;
        if let Some(n) = t.entries.get_mut(&ip) {
            t.by_seen.touch(n.seen, now, ip);
            n.seen = now;
            if n.bridge != bridge {
                n.bridge = bridge.to_string();
            }
            if n.mac != mac {
                n.mac = mac;
                self.generation.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        if t.entries.len() >= NEIGH_MAX {
            if let Some(oldest) = t.by_seen.pop_oldest() {
                t.entries.remove(&oldest);
            }
        }
        t.entries.insert(
            ip,
            NeighEntry {
                mac,
                bridge: bridge.to_string(),
                seen: now,
            },
        );
        t.by_seen.insert(now, ip);
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// The MAC of `ip`, if known and not expired.
    pub fn lookup(&self, ip: IpAddr, now: Instant) -> Option<[u8; 6]> {
        self.table()
            .entries
            .get(&ip)
            .filter(|n| now.saturating_duration_since(n.seen) < NEIGH_IDLE)
            .map(|n| n.mac)
    }

    /// Drops expired entries; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let mut t = self.table();
        let mut gone = 0;
        while let Some(ip) = t.by_seen.pop_idle(now, NEIGH_IDLE) {
            t.entries.remove(&ip);
            gone += 1;
        }
        if gone > 0 {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        gone
    }

    /// Forgets everything (tnl/neigh/flush).
    pub fn flush(&self) {
        *self.table() = NeighTable::default();
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Bumped by every change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.table().entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `tnl/neigh/show` text, in OVS's layout.
    pub fn show(&self) -> String {
        let t = self.table();
        let mut out = format!("{:<32} {:<17} {}\n", "IP", "MAC", "Bridge");
        out.push_str(&"=".repeat(64));
        out.push('\n');
        for (ip, n) in t.entries.iter() {
            let _ = writeln!(out, "{:<32} {:<17} {}", ip, fmt_mac(&n.mac), n.bridge);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learn_lookup_move_expire_flush() {
        let c = NeighCache::default();
        let t0 = Instant::now();
        let ip: IpAddr = "10.9.0.2".parse().unwrap();
        c.learn(ip, [2, 0, 0, 0, 0, 1], "br-phy", t0);
        let g1 = c.generation();
        assert_eq!(c.lookup(ip, t0), Some([2, 0, 0, 0, 0, 1]));
        // Refresh: same MAC, no generation change.
        c.learn(
            ip,
            [2, 0, 0, 0, 0, 1],
            "br-phy",
            t0 + Duration::from_secs(1),
        );
        assert_eq!(c.generation(), g1);
        // Move: new MAC bumps the generation.
        c.learn(
            ip,
            [2, 0, 0, 0, 0, 9],
            "br-phy",
            t0 + Duration::from_secs(2),
        );
        assert!(c.generation() > g1);
        assert_eq!(c.lookup(ip, t0), Some([2, 0, 0, 0, 0, 9]));
        // Broadcast/multicast/zero MACs are not learned.
        c.learn("10.9.0.3".parse().unwrap(), [0xff; 6], "br-phy", t0);
        c.learn("10.9.0.4".parse().unwrap(), [0; 6], "br-phy", t0);
        assert_eq!(c.len(), 1);
        assert!(c.show().contains("10.9.0.2"));
        assert!(c.show().contains("02:00:00:00:00:09"));
        // Expiry.
        assert_eq!(c.lookup(ip, t0 + NEIGH_IDLE + Duration::from_secs(3)), None);
        assert_eq!(c.expire(t0 + NEIGH_IDLE + Duration::from_secs(3)), 1);
        c.learn(ip, [2, 0, 0, 0, 0, 1], "br-phy", t0);
        c.flush();
        assert!(c.is_empty());
    }

    #[test]
    fn a_flood_of_senders_is_bounded_and_evicts_the_least_recently_seen() {
        let c = NeighCache::default();
        let t0 = Instant::now();
        let ip = |n: u32| IpAddr::from((0x0a00_0000 | n).to_be_bytes());
        let mac = [2, 0, 0, 0, 0, 1];
        for n in 0..NEIGH_MAX as u32 {
            c.learn(ip(n), mac, "br-phy", t0 + Duration::from_millis(n as u64));
        }
        let late = t0 + Duration::from_secs(60);
        c.learn(ip(0), mac, "br-phy", late); // the oldest, seen again
        c.learn(ip(1_000_000), mac, "br-phy", late); // full: evicts ip(1), now the oldest
        assert_eq!(c.len(), NEIGH_MAX);
        assert_eq!(c.lookup(ip(1), late), None);
        assert_eq!(c.lookup(ip(0), late), Some(mac));
        assert_eq!(c.lookup(ip(1_000_000), late), Some(mac));
        let t = c.table();
        let indexed = t.by_seen.pairs();
        assert_eq!(indexed.len(), t.entries.len());
        assert!(t
            .entries
            .iter()
            .all(|(ip, n)| indexed.contains(&(n.seen, *ip))));
        drop(t);
        // Expiry takes the entries not seen again, oldest first.
        assert_eq!(
            c.expire(t0 + NEIGH_IDLE + Duration::from_secs(10)),
            NEIGH_MAX - 2
        );
        assert_eq!(c.len(), 2);
    }
}
