//! OpenFlow-level rules: a match, a priority, actions, cookie, counters and timeouts.
//!
//! Port numbers inside rules are OpenFlow port numbers ("ofports", `u16`), never datapath
//! port numbers: the `Ofproto` owns the mapping, so a rule written against `in_port=1`
//! keeps meaning the same port when the datapath renumbers.

use std::time::{Duration, Instant};

use crate::packet::{FlowKey, FlowMask};

/// An OpenFlow port number. Values from 0xff00 up are reserved (see [`ofp_port`]).
pub type OfPort = u16;

/// Reserved OpenFlow port numbers (OpenFlow 1.0 values, as ovs-ofctl prints them).
pub mod ofp_port {
    use super::OfPort;
    /// Highest number a real port can have.
    pub const MAX: OfPort = 0xff00;
    /// Send back out of the input port (output to `in_port` is otherwise suppressed).
    pub const IN_PORT: OfPort = 0xfff8;
    /// Look the flow up again in the table (not supported as an output; kept for parsing).
    pub const TABLE: OfPort = 0xfff9;
    /// The learning switch (`NORMAL`).
    pub const NORMAL: OfPort = 0xfffa;
    /// Every port except the input port.
    pub const FLOOD: OfPort = 0xfffb;
    /// Every port except the input port (no flood exceptions).
    pub const ALL: OfPort = 0xfffc;
    /// The controller (no controller connections exist; such output is dropped).
    pub const CONTROLLER: OfPort = 0xfffd;
    /// The bridge's own internal port.
    pub const LOCAL: OfPort = 0xfffe;
    /// "No port": wildcard in `out_port` filters.
    pub const NONE: OfPort = 0xffff;
}

/// Number of flow tables a bridge has (ids 0..=254; 255 means "all tables" in requests).
pub const N_TABLES: usize = 255;

/// A header field an action writes (`set_field`, or the older `mod_*` spellings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetTarget {
    /// Ethernet source.
    EthSrc([u8; 6]),
    /// Ethernet destination.
    EthDst([u8; 6]),
    /// IPv4 source.
    Ipv4Src(u32),
    /// IPv4 destination.
    Ipv4Dst(u32),
    /// IPv6 source.
    Ipv6Src([u8; 16]),
    /// IPv6 destination.
    Ipv6Dst([u8; 16]),
    /// The DSCP bits of the TOS / traffic class byte, given as the whole byte (ECN kept).
    NwTos(u8),
    /// IPv4 TTL / IPv6 hop limit.
    NwTtl(u8),
    /// TCP/UDP/SCTP source port.
    TpSrc(u16),
    /// TCP/UDP/SCTP destination port.
    TpDst(u16),
    /// VLAN id of the outer tag (only if a tag is present, as OpenFlow 1.2+ defines it).
    VlanVid(u16),
    /// VLAN priority of the outer tag (only if a tag is present).
    VlanPcp(u8),
    /// Tunnel id for a following output to a tunnel.
    TunId(u64),
    /// Outer IPv4 source for a following tunnel output.
    TunSrc(u32),
    /// Outer IPv4 destination for a following tunnel output.
    TunDst(u32),
    /// Geneve option header word (class<<16 | type<<8 | length) for a following output
    /// to a Geneve port.
    TunGnvOptHdr(u32),
    /// First 4 data bytes of that Geneve option.
    TunGnvOptData(u32),
}

/// One OpenFlow-level action. Several spellings of ovs-ofctl map to distinct variants so
/// that printing a rule gives back the syntax it was written in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OfAction {
    /// Output to a port: a real ofport or one of the reserved [`ofp_port`] values.
    Output(OfPort),
    /// `mod_dl_src`.
    ModDlSrc([u8; 6]),
    /// `mod_dl_dst`.
    ModDlDst([u8; 6]),
    /// `mod_nw_src`.
    ModNwSrc(u32),
    /// `mod_nw_dst`.
    ModNwDst(u32),
    /// `mod_nw_tos` (DSCP bits; ECN kept).
    ModNwTos(u8),
    /// `mod_nw_ttl`.
    ModNwTtl(u8),
    /// `dec_ttl`: decrement TTL / hop limit; drop the packet when it would reach zero.
    DecTtl,
    /// `mod_tp_src`.
    ModTpSrc(u16),
    /// `mod_tp_dst`.
    ModTpDst(u16),
    /// `mod_vlan_vid`: set the VID, pushing a tag if the packet has none (OpenFlow 1.0).
    ModVlanVid(u16),
    /// `mod_vlan_pcp`: set the PCP, pushing a tag if the packet has none (OpenFlow 1.0).
    ModVlanPcp(u8),
    /// `strip_vlan` / `pop_vlan`.
    PopVlan,
    /// `push_vlan:TPID`.
    PushVlan(u16),
    /// `set_field:VALUE->FIELD`.
    SetField(SetTarget),
    /// `set_tunnel:ID`.
    SetTunnel(u64),
    /// `resubmit(port,table)`: look up again, as if from `port` (None: the current in_port)
    /// in `table` (None: the current table).
    Resubmit {
        /// Port to pretend the packet came from.
        port: Option<OfPort>,
        /// Table to look up in.
        table: Option<u8>,
    },
    /// `goto_table:N`: continue the pipeline in a later table (must be the last action).
    GotoTable(u8),
}

impl OfAction {
    /// Whether this action sends packets to `port` (for the `out_port` filter of deletes).
    pub fn outputs_to(&self, port: OfPort) -> bool {
        matches!(self, OfAction::Output(p) if *p == port)
    }
}

/// A rule's match: the bits of `key` selected by `mask` (`key` is stored pre-masked).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Match {
    /// Values, with every bit outside `mask` zero. `in_port` is an OpenFlow port.
    pub key: FlowKey,
    /// Which bits matter.
    pub mask: FlowMask,
}

impl Match {
    /// The match-everything match.
    pub fn catch_all() -> Match {
        Match::default()
    }

    /// Builds a match, clearing key bits outside the mask so equal matches compare equal.
    pub fn new(key: FlowKey, mask: FlowMask) -> Match {
        Match {
            key: key.masked(&mask),
            mask,
        }
    }

    /// Whether a packet's key (OpenFlow port space) matches.
    #[inline]
    pub fn matches(&self, flow: &FlowKey) -> bool {
        flow.matches_masked(&self.key, &self.mask)
    }

    /// Whether every packet matched by `self` is also matched by `other` — i.e. `self` is
    /// at least as specific as `other` (OpenFlow's non-strict modify/delete selection).
    pub fn is_within(&self, other: &Match) -> bool {
        other.mask.is_subset_of(&self.mask) && self.key.matches_masked(&other.key, &other.mask)
    }
}

/// Timeouts and identity that come with a rule but are not part of its match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleOptions {
    /// Table id.
    pub table: u8,
    /// Priority (higher wins). OpenFlow's default is 32768.
    pub priority: u16,
    /// Opaque controller cookie.
    pub cookie: u64,
    /// Seconds without a hit before the rule is removed (0: never).
    pub idle_timeout: u16,
    /// Seconds after installation before the rule is removed (0: never).
    pub hard_timeout: u16,
}

/// The default priority of a flow added without `priority=` (OpenFlow's 0x8000).
pub const DEFAULT_PRIORITY: u16 = 0x8000;

/// A rule as written by a user (or the config file), before installation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSpec {
    /// Table, priority, cookie, timeouts.
    pub opts: RuleOptions,
    /// What packets it applies to.
    pub matcher: Match,
    /// What to do with them, in order; empty means drop.
    pub actions: Vec<OfAction>,
}

/// A request to modify or delete rules (the match part of `mod-flows` / `del-flows`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSelector {
    /// Table to look in; `None` means every table.
    pub table: Option<u8>,
    /// The match to compare against.
    pub matcher: Match,
    /// Priority (only used by the strict forms).
    pub priority: u16,
    /// Only rules whose cookie & `cookie_mask` equals `cookie & cookie_mask`.
    pub cookie: u64,
    /// Which cookie bits matter (0: any cookie).
    pub cookie_mask: u64,
    /// Only rules that output to this port (`ofp_port::NONE`: any).
    pub out_port: OfPort,
}

/// Counters of an installed rule, updated by upcalls and by revalidation's stats push.
#[derive(Clone, Copy, Debug)]
pub struct RuleCounters {
    /// Packets that hit this rule.
    pub n_packets: u64,
    /// Bytes that hit this rule.
    pub n_bytes: u64,
    /// When a packet last hit it (idle timeout).
    pub used: Instant,
}

/// An installed rule. Shared (`Arc`) between the classifier and in-flight translations;
/// only the counters change after installation.
#[derive(Debug)]
pub struct Rule {
    /// Unique within the bridge; lets xlate results name the rules they used.
    pub id: u64,
    /// Table, priority, cookie, timeouts.
    pub opts: RuleOptions,
    /// Match.
    pub matcher: Match,
    /// Actions.
    pub actions: Vec<OfAction>,
    /// When the rule was added (hard timeout, `duration=`).
    pub created: Instant,
    /// Packet/byte counters and last use.
    pub counters: std::sync::Mutex<RuleCounters>,
}

impl Rule {
    /// When the rule should expire, given its timeouts, or `None` if it never does.
    pub fn expires_at(&self) -> Option<Instant> {
        let used = self.counters().used;
        let hard = (self.opts.hard_timeout > 0)
            .then(|| self.created + Duration::from_secs(self.opts.hard_timeout as u64));
        let idle = (self.opts.idle_timeout > 0)
            .then(|| used + Duration::from_secs(self.opts.idle_timeout as u64));
        match (hard, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Creates a rule that has not been hit yet.
    pub fn new(id: u64, spec: FlowSpec, now: Instant) -> Rule {
        Rule {
            id,
            opts: spec.opts,
            matcher: spec.matcher,
            actions: spec.actions,
            created: now,
            counters: std::sync::Mutex::new(RuleCounters {
                n_packets: 0,
                n_bytes: 0,
                used: now,
            }),
        }
    }

    /// A copy of the counters.
    pub fn counters(&self) -> RuleCounters {
        *self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Credits packets to the rule and refreshes its idle timer.
    pub fn credit(&self, packets: u64, bytes: u64, now: Instant) {
        let mut c = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.n_packets += packets;
        c.n_bytes += bytes;
        if now > c.used {
            c.used = now;
        }
    }

    /// Whether the selector picks this rule; `strict` compares match and priority exactly.
    pub fn selected_by(&self, sel: &FlowSelector, strict: bool) -> bool {
        if let Some(t) = sel.table {
            if t != self.opts.table {
                return false;
            }
        }
        if (self.opts.cookie ^ sel.cookie) & sel.cookie_mask != 0 {
            return false;
        }
        if sel.out_port != ofp_port::NONE
            && !self.actions.iter().any(|a| a.outputs_to(sel.out_port))
        {
            return false;
        }
        if strict {
            self.opts.priority == sel.priority && self.matcher == sel.matcher
        } else {
            self.matcher.is_within(&sel.matcher)
        }
    }
}
