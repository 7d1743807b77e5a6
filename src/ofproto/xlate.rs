//! Translation: OpenFlow pipeline -> datapath actions plus the megaflow mask.
//!
//! The walk starts in table 0 with the packet's key (its `in_port` mapped to the OpenFlow
//! port), follows `goto_table` and `resubmit` (depth limit 64, at most 4096 resubmits),
//! and applies actions to a working copy of the key so later lookups see rewritten
//! headers. Every bit the outcome depended on is added to `wc`:
//! - each table lookup adds the masks of the subtables it searched (see `table.rs`);
//! - an action that only applies to some packets (`mod_nw_dst` needs IPv4, `mod_tp_dst`
//!   needs TCP/UDP/SCTP and a first fragment) adds the fields that decided that;
//! - an action whose result depends on a packet value (`dec_ttl`) adds that field;
//! - VLAN rewrites add both tag slots, since the emitted pops/pushes depend on them;
//! - `in_port`, `recirc_id` and `parse_flags` are always exact.
//!
//! Header writes are not emitted when they happen: the written bits accumulate in
//! `pending` and are committed as masked `DpAction::Set`s (plus VLAN pops/pushes) right
//! before each output, carrying only the written bits — so the emitted actions depend on
//! the written values, never on unconsulted packet bits. That is the megaflow invariant:
//! any packet equal to this one under `wc` translates to exactly the same actions.

use std::sync::Arc;
use std::time::Instant;

use super::action_syntax::format_action;
use super::rule::{ofp_port, OfAction, OfPort, Rule, SetTarget};
use super::{Ofproto, PortMap, Tables};
use crate::dpif::DpAction;
use crate::packet::flow_key::frag;
use crate::packet::{ipproto, FlowKey, FlowMask, OdpPort, VlanTag};

/// Resubmit/goto nesting limit (OVS's MAX_DEPTH).
pub const MAX_DEPTH: u32 = 64;
/// Total resubmits per translation (OVS's MAX_RESUBMITS).
pub const MAX_RESUBMITS: u32 = 4096;

/// Why a translation dropped the packet as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XlateError {
    /// `resubmit`/`goto_table` nested deeper than [`MAX_DEPTH`].
    #[error("resubmit/goto_table recursion exceeded the depth limit of {MAX_DEPTH}: dropping the packet")]
    RecursionTooDeep,
    /// More than [`MAX_RESUBMITS`] resubmits in one translation.
    #[error("more than {MAX_RESUBMITS} resubmits in one translation: dropping the packet")]
    TooManyResubmits,
    /// The input datapath port is not a port of this bridge.
    #[error("datapath port {0} is not a port of this bridge")]
    NoSuchPort(OdpPort),
    /// The frame failed to parse (truncated or malformed headers).
    #[error("malformed or truncated frame: dropping")]
    Malformed,
    /// A recirculated packet (this translator never asks for recirculation).
    #[error("unexpected recirculation id {0}")]
    UnexpectedRecirc(u32),
}

/// What a translation produced.
#[derive(Debug, Clone)]
pub struct XlateOutput {
    /// Datapath actions, in order; empty means drop.
    pub actions: Vec<DpAction>,
    /// Megaflow mask (datapath port space: `in_port` exact).
    pub mask: FlowMask,
    /// Whether a megaflow may be installed (false for IGMP/MLD under snooping).
    pub install: bool,
    /// Rules that matched, for statistics and idle timeouts.
    pub rules: Vec<Arc<Rule>>,
    /// Why the whole packet was dropped, if it was.
    pub error: Option<XlateError>,
    /// The trace, when one was asked for.
    pub trace: Vec<String>,
    /// The key after all header rewrites (OpenFlow port space).
    pub final_flow: FlowKey,
}

/// Inputs of one translation.
#[derive(Clone, Copy)]
pub struct XlateRequest<'a> {
    /// The packet's key, in datapath port space.
    pub key: &'a FlowKey,
    /// The frame, when there is one (IGMPv3/MLDv2 records come from it).
    pub packet: Option<&'a [u8]>,
    /// Whether NORMAL may learn MACs and snooping may update the mdb.
    pub may_learn: bool,
    /// Set by revalidation: learning may refresh or re-add an fdb entry but never move
    /// it, because a real move arrives as a miss on the new port, while an old megaflow's
    /// counters may include packets from before the move.
    pub revalidating: bool,
    /// Whether to record a trace.
    pub trace: bool,
    /// The time to use for aging decisions.
    pub now: Instant,
}

/// Per-translation state.
pub(super) struct Ctx<'a> {
    pub bridge: &'a Ofproto,
    pub ports: &'a PortMap,
    tables: &'a Tables,
    /// The packet as rewritten so far (OpenFlow port space).
    pub flow: FlowKey,
    /// Bits consulted.
    pub wc: FlowMask,
    pub(super) pending: FlowMask,
    /// Every bit written by a set action so far: a later lookup reading those bits reads
    /// a value the actions chose, not the packet's, so they stay wildcarded.
    pub(super) written: FlowMask,
    pub(super) base_vlans: [VlanTag; 2],
    pub(super) vlan_dirty: bool,
    pub(super) out: Vec<DpAction>,
    depth: u32,
    nesting: u32,
    resubmits: u32,
    table_id: u8,
    rules: Vec<Arc<Rule>>,
    trace: Option<Vec<String>>,
    error: Option<XlateError>,
    stop: bool,
    /// Whether the result may be installed as a megaflow.
    pub install: bool,
    /// The frame, if any.
    pub packet: Option<&'a [u8]>,
    /// Whether learning is allowed.
    pub may_learn: bool,
    /// Whether learning may only refresh (see `XlateRequest::revalidating`).
    pub revalidating: bool,
    /// Time for aging decisions.
    pub now: Instant,
}

/// Translates one packet. Caller holds the port map and tables.
pub(super) fn translate(
    bridge: &Ofproto,
    ports: &PortMap,
    tables: &Tables,
    req: &XlateRequest<'_>,
) -> XlateOutput {
    let mut flow = *req.key;
    let mut wc = FlowMask::default();
    wc.0.in_port = u32::MAX;
    wc.0.recirc_id = u32::MAX;
    wc.0.parse_flags = u8::MAX;
    let mut ctx = Ctx {
        bridge,
        ports,
        tables,
        flow,
        wc,
        pending: FlowMask::default(),
        written: FlowMask::default(),
        base_vlans: req.key.vlans,
        vlan_dirty: false,
        out: Vec::new(),
        depth: 0,
        nesting: 0,
        resubmits: 0,
        table_id: 0,
        rules: Vec::new(),
        trace: req.trace.then(Vec::new),
        error: None,
        stop: false,
        install: true,
        packet: req.packet,
        may_learn: req.may_learn,
        revalidating: req.revalidating,
        now: req.now,
    };
    let pre = if req.key.recirc_id != 0 {
        Err(XlateError::UnexpectedRecirc(req.key.recirc_id))
    } else if req.key.parse_flags != 0 {
        Err(XlateError::Malformed)
    } else {
        ports
            .ofport_of(req.key.in_port)
            .ok_or(XlateError::NoSuchPort(req.key.in_port))
    };
    match pre {
        Ok(ofport) => {
            flow.in_port = ofport as u32;
            ctx.flow = flow;
            ctx.note(format_args!("bridge(\"{}\")", bridge.name()));
            if bridge.kernel_vports() {
                // Kernel vports resolve their own next hops: no neighbour cache to fill.
                ctx.kernel_tunnel_ingress();
            } else {
                ctx.snoop_neighbor();
            }
            if ctx.tunnel_ingress_ok(req.key.in_port) {
                ctx.lookup_and_run(0, true);
            }
        }
        Err(e) => ctx.error = Some(e),
    }
    if let Some(e) = &ctx.error {
        let msg = e.to_string();
        ctx.note(format_args!(">> {msg}"));
        ctx.out.clear();
    }
    XlateOutput {
        actions: ctx.out,
        mask: ctx.wc,
        install: ctx.install,
        rules: ctx.rules,
        error: ctx.error,
        trace: ctx.trace.unwrap_or_default(),
        final_flow: ctx.flow,
    }
}

impl<'a> Ctx<'a> {
    /// Adds a trace line at the current depth.
    pub fn note(&mut self, args: std::fmt::Arguments<'_>) {
        if let Some(t) = &mut self.trace {
            t.push(format!("{}{}", "    ".repeat(self.depth as usize), args));
        }
    }

    /// Whether a trace is being recorded (to skip formatting work otherwise).
    pub fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    fn lookup_and_run(&mut self, table: u8, first: bool) {
        let Some(t) = self.tables.table(table) else {
            return;
        };
        let mut consulted = FlowMask::default();
        let rule = t.lookup(&self.flow, &mut consulted).cloned();
        let (w, c, x) = (
            self.wc.0.words_mut(),
            consulted.0.words(),
            self.written.0.words(),
        );
        for i in 0..w.len() {
            w[i] |= c[i] & !x[i];
        }
        match rule {
            Some(rule) => {
                if self.tracing() {
                    let m = super::match_format::format_match(&rule.matcher);
                    let acts = super::action_syntax::format_actions(&rule.actions);
                    self.note(format_args!(
                        "{table:>2}. {}{}priority {}, cookie {:#x}",
                        m,
                        if m.is_empty() { "" } else { ", " },
                        rule.opts.priority,
                        rule.opts.cookie
                    ));
                    self.note(format_args!("    actions={acts}"));
                }
                self.rules.push(rule.clone());
                let saved = self.table_id;
                self.table_id = table;
                self.depth += 1;
                self.run_actions(&rule.actions);
                self.depth -= 1;
                self.table_id = saved;
            }
            None if first && self.bridge.fail_mode() == super::FailMode::Standalone => {
                self.note(format_args!(
                    "{table:>2}. no match: fail mode standalone, acting as NORMAL"
                ));
                self.depth += 1;
                super::normal::xlate_normal(self);
                self.depth -= 1;
            }
            None => {
                self.note(format_args!("{table:>2}. no match: drop"));
            }
        }
    }

    fn enter(&mut self) -> bool {
        if self.nesting >= MAX_DEPTH {
            self.error = Some(XlateError::RecursionTooDeep);
            self.stop = true;
            return false;
        }
        self.resubmits += 1;
        if self.resubmits > MAX_RESUBMITS {
            self.error = Some(XlateError::TooManyResubmits);
            self.stop = true;
            return false;
        }
        true
    }

    fn run_actions(&mut self, actions: &[OfAction]) {
        for a in actions {
            if self.stop {
                return;
            }
            if self.tracing() && !matches!(a, OfAction::Resubmit { .. } | OfAction::GotoTable(_)) {
                let s = format_action(a);
                self.note(format_args!("{s}"));
            }
            match a {
                OfAction::Output(p) => self.output_action(*p),
                OfAction::ModDlSrc(m) => self.set(SetTarget::EthSrc(*m)),
                OfAction::ModDlDst(m) => self.set(SetTarget::EthDst(*m)),
                OfAction::ModNwSrc(x) => self.set(SetTarget::Ipv4Src(*x)),
                OfAction::ModNwDst(x) => self.set(SetTarget::Ipv4Dst(*x)),
                OfAction::ModNwTos(x) => self.set(SetTarget::NwTos(*x)),
                OfAction::ModNwTtl(x) => self.set(SetTarget::NwTtl(*x)),
                OfAction::ModTpSrc(x) => self.set(SetTarget::TpSrc(*x)),
                OfAction::ModTpDst(x) => self.set(SetTarget::TpDst(*x)),
                OfAction::SetField(t) => self.set(*t),
                OfAction::SetTunnel(id) => self.set(SetTarget::TunId(*id)),
                OfAction::DecTtl => self.dec_ttl(),
                OfAction::ModVlanVid(vid) => {
                    self.vlan_touch();
                    if !self.flow.vlans[0].present() {
                        self.push_tag(0x8100, 0);
                    }
                    self.flow.vlans[0].tci = (self.flow.vlans[0].tci & !0x0fff) | vid;
                }
                OfAction::ModVlanPcp(pcp) => {
                    self.vlan_touch();
                    if !self.flow.vlans[0].present() {
                        self.push_tag(0x8100, 0);
                    }
                    self.flow.vlans[0].tci =
                        (self.flow.vlans[0].tci & 0x1fff) | ((*pcp as u16) << 13);
                }
                OfAction::PushVlan(tpid) => {
                    self.vlan_touch();
                    let tci = if self.flow.vlans[0].present() {
                        self.flow.vlans[0].tci
                    } else {
                        0
                    };
                    self.push_tag(*tpid, tci);
                }
                OfAction::PopVlan => {
                    self.vlan_touch();
                    if self.flow.vlans[0].present() {
                        self.flow.vlans[0] = self.flow.vlans[1];
                        self.flow.vlans[1] = VlanTag::default();
                    }
                }
                OfAction::Resubmit { port, table } => {
                    let t = table.unwrap_or(self.table_id);
                    let p = port.unwrap_or(self.flow.in_port as OfPort);
                    let s = format_action(a);
                    self.note(format_args!("{s}"));
                    if !self.enter() {
                        return;
                    }
                    let saved = self.flow.in_port;
                    if p != ofp_port::IN_PORT {
                        self.flow.in_port = p as u32;
                    }
                    self.depth += 1;
                    self.nesting += 1;
                    self.lookup_and_run(t, false);
                    self.nesting -= 1;
                    self.depth -= 1;
                    self.flow.in_port = saved;
                }
                OfAction::GotoTable(t) => {
                    self.note(format_args!("goto_table:{t}"));
                    if !self.enter() {
                        return;
                    }
                    self.nesting += 1;
                    self.lookup_and_run(*t, false);
                    self.nesting -= 1;
                }
            }
        }
    }

    fn vlan_touch(&mut self) {
        self.vlan_dirty = true;
        self.wc.0.vlans = [VlanTag {
            tpid: 0xffff,
            tci: 0xffff,
        }; 2];
    }

    fn push_tag(&mut self, tpid: u16, tci: u16) {
        self.flow.vlans[1] = self.flow.vlans[0];
        self.flow.vlans[0] = VlanTag { tpid, tci };
    }

    /// Replaces the outer VLAN stack (NORMAL's per-port tagging); marks it for commit.
    pub fn set_vlans(&mut self, vlans: [VlanTag; 2]) {
        self.vlan_touch();
        self.flow.vlans = vlans;
    }

    fn is_l4_with_ports(&mut self) -> bool {
        self.wc.0.dl_type = 0xffff;
        if !(self.flow.is_ipv4() || self.flow.is_ipv6()) {
            return false;
        }
        self.wc.0.nw_proto = 0xff;
        self.wc.0.nw_frag |= frag::LATER;
        matches!(
            self.flow.nw_proto,
            ipproto::TCP | ipproto::UDP | ipproto::SCTP
        ) && self.flow.nw_frag & frag::LATER == 0
    }

    fn set(&mut self, t: SetTarget) {
        self.set_inner(t);
        let pending = self.pending;
        self.written.union_with(&pending);
    }

    fn set_inner(&mut self, t: SetTarget) {
        let (f, p) = (&mut self.flow, &mut self.pending.0);
        match t {
            SetTarget::EthSrc(m) => (f.dl_src, p.dl_src) = (m, [0xff; 6]),
            SetTarget::EthDst(m) => (f.dl_dst, p.dl_dst) = (m, [0xff; 6]),
            SetTarget::Ipv4Src(_) | SetTarget::Ipv4Dst(_) => {
                self.wc.0.dl_type = 0xffff;
                if !f.is_ipv4() {
                    return self.note(format_args!("    (not IPv4: ignored)"));
                }
                if let SetTarget::Ipv4Src(a) = t {
                    (f.nw_src, p.nw_src) = (a, u32::MAX);
                } else if let SetTarget::Ipv4Dst(a) = t {
                    (f.nw_dst, p.nw_dst) = (a, u32::MAX);
                }
            }
            SetTarget::Ipv6Src(_) | SetTarget::Ipv6Dst(_) => {
                self.wc.0.dl_type = 0xffff;
                if !f.is_ipv6() {
                    return self.note(format_args!("    (not IPv6: ignored)"));
                }
                if let SetTarget::Ipv6Src(a) = t {
                    (f.ipv6_src, p.ipv6_src) = (a, [0xff; 16]);
                } else if let SetTarget::Ipv6Dst(a) = t {
                    (f.ipv6_dst, p.ipv6_dst) = (a, [0xff; 16]);
                }
            }
            SetTarget::NwTos(_) | SetTarget::NwTtl(_) => {
                self.wc.0.dl_type = 0xffff;
                if !(f.is_ipv4() || f.is_ipv6()) {
                    return self.note(format_args!("    (not IP: ignored)"));
                }
                match t {
                    SetTarget::NwTos(v) => {
                        f.nw_tos = (f.nw_tos & 0x03) | (v & 0xfc);
                        p.nw_tos |= 0xfc;
                    }
                    SetTarget::NwTtl(v) => (f.nw_ttl, p.nw_ttl) = (v, 0xff),
                    _ => {}
                }
            }
            SetTarget::TpSrc(v) | SetTarget::TpDst(v) => {
                if !self.is_l4_with_ports() {
                    return self.note(format_args!("    (no TCP/UDP/SCTP ports: ignored)"));
                }
                let (f, p) = (&mut self.flow, &mut self.pending.0);
                if matches!(t, SetTarget::TpSrc(_)) {
                    (f.tp_src, p.tp_src) = (v, 0xffff);
                } else {
                    (f.tp_dst, p.tp_dst) = (v, 0xffff);
                }
            }
            SetTarget::VlanVid(vid) => {
                self.vlan_touch();
                if self.flow.vlans[0].present() {
                    self.flow.vlans[0].tci = (self.flow.vlans[0].tci & !0x0fff) | vid;
                }
            }
            SetTarget::VlanPcp(pcp) => {
                self.vlan_touch();
                if self.flow.vlans[0].present() {
                    self.flow.vlans[0].tci =
                        (self.flow.vlans[0].tci & 0x1fff) | ((pcp as u16) << 13);
                }
            }
            SetTarget::TunId(v) => (f.tun_id, p.tun_id) = (v, u64::MAX),
            SetTarget::TunSrc(v) => (f.tun_ipv4_src, p.tun_ipv4_src) = (v, u32::MAX),
            SetTarget::TunDst(v) => (f.tun_ipv4_dst, p.tun_ipv4_dst) = (v, u32::MAX),
            SetTarget::TunGnvOptHdr(v) => (f.tun_gnv_opt_hdr, p.tun_gnv_opt_hdr) = (v, u32::MAX),
            SetTarget::TunGnvOptData(v) => (f.tun_gnv_opt_data, p.tun_gnv_opt_data) = (v, u32::MAX),
        }
    }

    fn dec_ttl(&mut self) {
        self.wc.0.dl_type = 0xffff;
        if !(self.flow.is_ipv4() || self.flow.is_ipv6()) {
            return self.note(format_args!("    (not IP: ignored)"));
        }
        self.wc.0.nw_ttl = 0xff;
        if self.flow.nw_ttl <= 1 {
            self.note(format_args!(
                "    TTL exceeded: stopping, packet dropped by this rule"
            ));
            self.stop = true;
            return;
        }
        self.flow.nw_ttl -= 1;
        self.pending.0.nw_ttl = 0xff;
        self.written.0.nw_ttl = 0xff;
    }

    fn output_action(&mut self, port: OfPort) {
        let in_port = self.flow.in_port as OfPort;
        match port {
            ofp_port::NORMAL => super::normal::xlate_normal(self),
            ofp_port::FLOOD | ofp_port::ALL => {
                let targets: Vec<OdpPort> = self
                    .ports
                    .iter()
                    .filter(|p| p.ofport != in_port)
                    .map(|p| p.dp_port)
                    .collect();
                for dp in targets {
                    self.emit_output(dp);
                }
            }
            ofp_port::IN_PORT => self.output_ofport(in_port, true),
            ofp_port::CONTROLLER => {
                self.note(format_args!("    no controller connection: not sent"))
            }
            p => self.output_ofport(p, false),
        }
    }

    /// Outputs to an OpenFlow port, suppressing output to the input port unless asked.
    pub fn output_ofport(&mut self, port: OfPort, allow_in_port: bool) {
        if port == self.flow.in_port as OfPort && !allow_in_port {
            return self.note(format_args!("    skipping output to input port"));
        }
        match self.ports.get(port) {
            Some(p) => {
                let dp = p.dp_port;
                self.emit_output(dp);
            }
            None => self.note(format_args!(
                "    output to nonexistent port {port}: dropped"
            )),
        }
    }

    /// Commits pending header changes and emits an output action.
    pub fn emit_output(&mut self, dp: OdpPort) {
        if self.bridge.kernel_vports() {
            if self.kernel_vport_emit(dp) {
                return;
            }
        } else if self.tunnel_emit(dp) {
            return;
        }
        self.commit();
        self.out.push(DpAction::Output(dp));
    }
}
