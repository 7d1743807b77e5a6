//! Multicast snooping state of one bridge: the mdb (group, VLAN) -> member ports, and
//! the mrouter ports (where queries came from) per VLAN.
//!
//! Off by default, as in OVS. Memberships age out after `aging` (default 300 s, OVS's
//! `mcast-snooping-aging-time`) unless refreshed by reports; mrouter ports after 180 s
//! without a query (OVS's mrouter idle time). The mdb is bounded (default 2048 groups,
//! OVS's `mcast-snooping-table-size`), evicting the group refreshed least recently,
//! which an index by refresh time (`by_refresh`) names without a scan: reports are
//! translated on the PMD thread, and a flood of joins to new groups must not cost a
//! walk over the whole table each (the fdb's scan cost 14.4 us a translation at 8,192
//! entries, `mac_learning`).
//! Group addresses are 16 bytes; IPv4 groups are IPv4-mapped (`::ffff:a.b.c.d`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::age_index::AgeIndex;
use super::rule::OfPort;

/// OVS's default membership aging time.
pub const DEFAULT_MCAST_AGING: Duration = Duration::from_secs(300);
/// OVS's default mdb size.
pub const DEFAULT_MCAST_TABLE_SIZE: usize = 2048;
/// How long a port stays an mrouter port after the last query it sent.
pub const MROUTER_AGING: Duration = Duration::from_secs(180);

/// Snooping configuration of a bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McastSnoopingConfig {
    /// Whether snooping is on (OVS: `mcast_snooping_enable`, default false).
    pub enabled: bool,
    /// Membership aging time.
    pub aging: Duration,
    /// Maximum number of groups.
    pub table_size: usize,
    /// Send unregistered multicast only to mrouter and flood ports instead of flooding
    /// (OVS: `mcast-snooping-disable-flood-unregistered`).
    pub disable_flood_unregistered: bool,
}

impl Default for McastSnoopingConfig {
    fn default() -> Self {
        McastSnoopingConfig {
            enabled: false,
            aging: DEFAULT_MCAST_AGING,
            table_size: DEFAULT_MCAST_TABLE_SIZE,
            disable_flood_unregistered: false,
        }
    }
}

#[derive(Debug, Default)]
struct Group {
    members: BTreeMap<OfPort, Instant>,
    refreshed: Option<Instant>,
}

/// The mdb plus mrouter ports.
#[derive(Debug, Default)]
pub struct McastSnooping {
    /// Configuration.
    pub config: McastSnoopingConfig,
    groups: HashMap<([u8; 16], u16), Group>,
    /// Every group by its last refresh, oldest first: `(refreshed, group, vlan)`.
    by_refresh: AgeIndex<([u8; 16], u16)>,
    mrouters: HashMap<(u16, OfPort), Instant>,
    generation: u64,
}

impl McastSnooping {
    /// Snooping state with the given configuration.
    pub fn new(config: McastSnoopingConfig) -> Self {
        McastSnooping {
            config,
            ..Default::default()
        }
    }

    /// Bumped on every change that can alter forwarding.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Adds or refreshes a membership. Returns true if forwarding changed.
    pub fn join(&mut self, group: [u8; 16], vlan: u16, port: OfPort, now: Instant) -> bool {
        if !self.groups.contains_key(&(group, vlan)) && self.groups.len() >= self.config.table_size
        {
            if let Some(oldest) = self.by_refresh.pop_oldest() {
                self.groups.remove(&oldest);
            }
        }
        let g = self.groups.entry((group, vlan)).or_default();
        match g.refreshed.replace(now) {
            Some(before) => self.by_refresh.touch(before, now, (group, vlan)),
            None => self.by_refresh.insert(now, (group, vlan)),
        }
        let new = g.members.insert(port, now).is_none();
        if new {
            self.generation += 1;
        }
        new
    }

    /// Removes a membership (leave / done / include-none). Returns true if it existed.
    pub fn leave(&mut self, group: [u8; 16], vlan: u16, port: OfPort) -> bool {
        let Some(g) = self.groups.get_mut(&(group, vlan)) else {
            return false;
        };
        let removed = g.members.remove(&port).is_some();
        if g.members.is_empty() {
            if let Some(t) = g.refreshed {
                self.by_refresh.remove(t, (group, vlan));
            }
            self.groups.remove(&(group, vlan));
        }
        if removed {
            self.generation += 1;
        }
        removed
    }

    /// Marks `port` as leading to a multicast router (a query arrived on it).
    pub fn add_mrouter(&mut self, vlan: u16, port: OfPort, now: Instant) -> bool {
        let new = self.mrouters.insert((vlan, port), now).is_none();
        if new {
            self.generation += 1;
        }
        new
    }

    /// Member ports of `group` in `vlan`, or `None` if the group is unregistered.
    pub fn members(&self, group: &[u8; 16], vlan: u16, now: Instant) -> Option<Vec<OfPort>> {
        let g = self.groups.get(&(*group, vlan))?;
        let v: Vec<OfPort> = g
            .members
            .iter()
            .filter(|(_, t)| now.saturating_duration_since(**t) < self.config.aging)
            .map(|(p, _)| *p)
            .collect();
        (!v.is_empty()).then_some(v)
    }

    /// Live mrouter ports of `vlan`, sorted.
    pub fn mrouter_ports(&self, vlan: u16, now: Instant) -> Vec<OfPort> {
        let mut v: Vec<OfPort> = self
            .mrouters
            .iter()
            .filter(|((vl, _), t)| {
                *vl == vlan && now.saturating_duration_since(**t) < MROUTER_AGING
            })
            .map(|((_, p), _)| *p)
            .collect();
        v.sort_unstable();
        v
    }

    /// Drops expired memberships and mrouter ports; returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let aging = self.config.aging;
        let mut n = 0;
        for g in self.groups.values_mut() {
            let before = g.members.len();
            g.members
                .retain(|_, t| now.saturating_duration_since(*t) < aging);
            n += before - g.members.len();
        }
        self.drop_empty_groups();
        let before = self.mrouters.len();
        self.mrouters
            .retain(|_, t| now.saturating_duration_since(*t) < MROUTER_AGING);
        n += before - self.mrouters.len();
        if n > 0 {
            self.generation += 1;
        }
        n
    }

    /// Removes the groups left without members, from the table and from the index.
    fn drop_empty_groups(&mut self) {
        let before = self.groups.len();
        self.groups.retain(|_, g| !g.members.is_empty());
        if self.groups.len() != before {
            let groups = &self.groups;
            self.by_refresh.retain(|key| groups.contains_key(key));
        }
    }

    /// Forgets a port everywhere (port deleted).
    pub fn flush_port(&mut self, port: OfPort) {
        for g in self.groups.values_mut() {
            g.members.remove(&port);
        }
        self.drop_empty_groups();
        self.mrouters.retain(|(_, p), _| *p != port);
        self.generation += 1;
    }

    /// Forgets every membership and mrouter port (`mdb/flush`).
    pub fn flush(&mut self) {
        if !self.groups.is_empty() || !self.mrouters.is_empty() {
            self.generation += 1;
        }
        self.groups.clear();
        self.by_refresh.clear();
        self.mrouters.clear();
    }

    /// Rows for `mdb/show`: (port, vlan, group or None for an mrouter, last refresh).
    pub fn rows(&self) -> Vec<(OfPort, u16, Option<[u8; 16]>, Instant)> {
        let mut v: Vec<_> = self
            .groups
            .iter()
            .flat_map(|((g, vl), grp)| {
                grp.members
                    .iter()
                    .map(move |(p, t)| (*p, *vl, Some(*g), *t))
            })
            .chain(self.mrouters.iter().map(|((vl, p), t)| (*p, *vl, None, *t)))
            .collect();
        v.sort_by_key(|(p, vl, g, _)| (g.is_none(), *vl, *g, *p));
        v
    }
}

/// Formats a group key: dotted quad for IPv4-mapped, else IPv6.
pub fn fmt_group(g: &[u8; 16]) -> String {
    if g[..10].iter().all(|b| *b == 0) && g[10] == 0xff && g[11] == 0xff {
        std::net::Ipv4Addr::new(g[12], g[13], g[14], g[15]).to_string()
    } else {
        std::net::Ipv6Addr::from(*g).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofproto::mcast_report::ipv4_mapped;

    #[test]
    fn join_leave_age() {
        let t0 = Instant::now();
        let mut s = McastSnooping::new(McastSnoopingConfig {
            enabled: true,
            ..Default::default()
        });
        let g = ipv4_mapped(0xef01_0101);
        assert!(s.join(g, 0, 1, t0));
        assert!(!s.join(g, 0, 1, t0));
        s.join(g, 0, 2, t0 + Duration::from_secs(100));
        assert_eq!(s.members(&g, 0, t0), Some(vec![1, 2]));
        assert_eq!(s.members(&g, 5, t0), None);
        assert!(s.leave(g, 0, 1));
        assert_eq!(s.members(&g, 0, t0), Some(vec![2]));
        assert_eq!(s.expire(t0 + Duration::from_secs(400)), 1);
        assert_eq!(s.members(&g, 0, t0 + Duration::from_secs(400)), None);
        s.add_mrouter(0, 7, t0);
        assert_eq!(s.mrouter_ports(0, t0 + Duration::from_secs(179)), vec![7]);
        assert!(s.mrouter_ports(0, t0 + Duration::from_secs(180)).is_empty());
    }

    #[test]
    fn a_full_mdb_evicts_the_group_refreshed_least_recently() {
        let t0 = Instant::now();
        let at = |n: u64| t0 + Duration::from_secs(n);
        let mut s = McastSnooping::new(McastSnoopingConfig {
            enabled: true,
            table_size: 3,
            ..Default::default()
        });
        let g = |n: u32| ipv4_mapped(0xef00_0000 | n);
        for n in 1..=3 {
            s.join(g(n), 0, 1, at(n as u64));
        }
        s.join(g(1), 0, 2, at(10)); // refreshed: now the most recent
        s.join(g(4), 0, 1, at(11)); // full: evicts group 2
        assert_eq!(s.members(&g(2), 0, at(11)), None);
        assert!(s.members(&g(1), 0, at(11)).is_some());
        assert!(s.members(&g(3), 0, at(11)).is_some());
        let indexed = |s: &McastSnooping| {
            let from_groups: std::collections::BTreeSet<_> = s
                .groups
                .iter()
                .map(|(key, grp)| (grp.refreshed.unwrap(), *key))
                .collect();
            from_groups == s.by_refresh.pairs()
        };
        assert!(indexed(&s));
        s.leave(g(3), 0, 1);
        assert!(indexed(&s));
        s.flush_port(1);
        assert!(
            indexed(&s),
            "group 4 went with port 1, group 1 stays on port 2"
        );
        assert_eq!(s.expire(at(1000)), 1);
        assert!(s.by_refresh.pairs().is_empty() && s.groups.is_empty());
    }
}
