//! The tunnel neighbour cache: IP -> MAC of underlay next hops, filled by snooping ARP
//! and IPv6 neighbour discovery on the bridges (as OVS's tnl-neigh-cache does), so that a
//! tunnel's outer Ethernet header can be built without asking the kernel.
//!
//! Entries expire after `NEIGH_IDLE` without being refreshed. A change (a new MAC for an
//! IP, a flush, an expiry) bumps `generation`, which tells the backer that megaflows with
//! prebuilt tunnel headers must be revalidated.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an entry lives without a refresh (OVS: 15 minutes).
pub const NEIGH_IDLE: Duration = Duration::from_secs(15 * 60);

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
    entries: Mutex<BTreeMap<IpAddr, NeighEntry>>,
    generation: AtomicU64,
}

fn fmt_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

impl NeighCache {
    /// Records that `ip` is at `mac` on `bridge`. Zero, broadcast and multicast MACs and
    /// unspecified IPs are ignored (gratuitous or malformed announcements).
    pub fn learn(&self, ip: IpAddr, mac: [u8; 6], bridge: &str, now: Instant) {
        if ip.is_unspecified() || mac == [0; 6] || mac[0] & 1 != 0 {
            return;
        }
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match e.get_mut(&ip) {
            Some(n) if n.mac == mac => {
                n.seen = now;
                n.bridge = bridge.to_string();
            }
            _ => {
                e.insert(
                    ip,
                    NeighEntry {
                        mac,
                        bridge: bridge.to_string(),
                        seen: now,
                    },
                );
                self.generation.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The MAC of `ip`, if known and not expired.
    pub fn lookup(&self, ip: IpAddr, now: Instant) -> Option<[u8; 6]> {
        let e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        e.get(&ip)
            .filter(|n| now.saturating_duration_since(n.seen) < NEIGH_IDLE)
            .map(|n| n.mac)
    }

    /// Drops expired entries; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let mut e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let before = e.len();
        e.retain(|_, n| now.saturating_duration_since(n.seen) < NEIGH_IDLE);
        let gone = before - e.len();
        if gone > 0 {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        gone
    }

    /// Forgets everything (tnl/neigh/flush).
    pub fn flush(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Bumped by every change.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `tnl/neigh/show` text, in OVS's layout.
    pub fn show(&self) -> String {
        let e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = format!("{:<32} {:<17} {}\n", "IP", "MAC", "Bridge");
        out.push_str(&"=".repeat(64));
        out.push('\n');
        for (ip, n) in e.iter() {
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
}
