//! The translator: OpenFlow-style flow tables, NORMAL, multicast snooping, revalidation.
//!
//! # Objects
//! - [`Ofproto`]: one per bridge. Owns the bridge's ports (OpenFlow port number <->
//!   datapath port number, name, VLAN config), its 255 flow tables, the MAC learning table
//!   (fdb) and the multicast snooping table (mdb), and the fail mode. It turns a datapath
//!   key into datapath actions plus a megaflow mask ([`Ofproto::translate`]).
//! - [`Backer`]: one per datapath (OVS's dpif_backer). Holds the `Arc<dyn Dpif>`, knows
//!   which bridge owns each datapath port, is the datapath's `UpcallHandler` (dispatching
//!   a miss to the owning bridge) and revalidates installed megaflows ([`Backer::run`], or
//!   a thread from [`Backer::start_revalidator`]).
//!
//! # Control API (what the control socket calls)
//! On [`Backer`] (these touch the datapath and revalidate synchronously, so a rule
//! change redirects the very next packet):
//! `add_bridge(name, OfprotoConfig)`, `del_bridge`, `bridge(name)`,
//! `add_port(bridge, &PortSpec, Option<OfPort>, PortConfig) -> OfPort`, `del_port(bridge, name)`,
//! `add_flow(bridge, text)`, `mod_flows(bridge, text, strict)`, `del_flows(bridge, text, strict)`,
//! `run()` (timeouts + revalidation; call periodically) or `start_revalidator(interval)`
//! (a thread doing that, also woken when learning changes the fdb/mdb),
//! `revalidate_all()`, `set_max_idle(d)`, `is_settled()`.
//! On [`Ofproto`] (no datapath access; changes made here are picked up by the next
//! revalidation pass): `add_port`/`del_port`/`set_port_config`, `set_config`,
//! `add_flow(text)`, `mod_flows`, `del_flows(text, strict)`, `dump_flows() -> String`
//! (ovs-ofctl dump-flows style with n_packets/n_bytes), `fdb_show()`, `mdb_show()` (OVS
//! formats), `fdb_flush()`, `mdb_flush()`, `trace(text)` / `trace_key(key, packet)` /
//! `trace_frame(ofport, bytes)` (tables visited, rules matched, NORMAL's decision, final
//! datapath actions, megaflow), `translate(XlateRequest)`.
//!
//! # Defaults (OVS's)
//! Fail mode standalone (a table-0 miss acts as NORMAL), MAC aging 300 s, fdb size 8192,
//! snooping off (aging 300 s, 2048 groups, mrouter aging 180 s, unregistered flooded),
//! megaflow max-idle 10 s, resubmit depth 64 and 4096 resubmits per translation.
//!
//! Flow text is ovs-ofctl syntax (see [`flow_syntax`]). Port numbers in flow text, fdb and
//! mdb are OpenFlow ports; datapath actions and megaflow keys use datapath ports.

pub mod action_syntax;
mod age_index;
mod backer;
mod commit;
mod fdb_commands;
pub mod flow_limit;
pub mod flow_syntax;
pub mod mac_learning;
pub mod match_format;
pub mod match_syntax;
pub mod mcast_report;
pub mod mcast_snooping;
mod normal;
pub mod ports;
pub mod route;
pub mod route_watch;
pub mod rule;
mod show;
pub mod table;
pub mod tnl_neigh;
pub mod tunnel;
mod tunnel_xlate;
mod upcall_summary;
mod vport_xlate;
pub mod xlate;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

pub use backer::{Backer, RevalidateStats, RevalidatorThread};
pub use flow_limit::FlowLimit;
pub use flow_syntax::{format_flow, parse_flow, parse_flow_key, parse_selector, FlowSyntaxError};
pub use mac_learning::MacLearning;
pub use mcast_snooping::{McastSnooping, McastSnoopingConfig};
pub use ports::{BridgePort, PortConfig, PortMap, VlanMode};
pub use rule::{ofp_port, FlowSelector, FlowSpec, Match, OfAction, OfPort, Rule, RuleOptions};
pub use table::Tables;
pub use upcall_summary::{DumpHistory, UpcallSummary};
pub use xlate::{XlateError, XlateOutput, XlateRequest};

use crate::dpif::{Upcall, UpcallError, UpcallReply};
use crate::packet::{FlowKey, OdpPort};

/// What a bridge does with a packet that matches no rule in table 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Act as a learning switch (NORMAL) — OVS's default without a controller.
    #[default]
    Standalone,
    /// Drop.
    Secure,
}

/// A bridge's translator settings. Defaults are OVS's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfprotoConfig {
    /// Table-miss behaviour.
    pub fail_mode: FailMode,
    /// fdb entry lifetime without traffic (300 s).
    pub mac_aging: Duration,
    /// fdb size limit (8192).
    pub mac_table_size: usize,
    /// Multicast snooping (off).
    pub mcast: McastSnoopingConfig,
}

impl Default for OfprotoConfig {
    fn default() -> Self {
        OfprotoConfig {
            fail_mode: FailMode::Standalone,
            mac_aging: mac_learning::DEFAULT_MAC_AGING,
            mac_table_size: mac_learning::DEFAULT_MAC_TABLE_SIZE,
            mcast: McastSnoopingConfig::default(),
        }
    }
}

/// Errors from bridge-level operations.
#[derive(Debug, thiserror::Error)]
pub enum OfprotoError {
    /// Flow text did not parse.
    #[error(transparent)]
    Syntax(#[from] FlowSyntaxError),
    /// No port with that name or number on this bridge.
    #[error("bridge {bridge}: no such port '{port}'")]
    NoSuchPort {
        /// Bridge.
        bridge: String,
        /// Port asked for.
        port: String,
    },
    /// A port with that name or number exists already.
    #[error("bridge {bridge}: port '{port}' already exists")]
    PortExists {
        /// Bridge.
        bridge: String,
        /// The clash.
        port: String,
    },
    /// No bridge of that name.
    #[error("no such bridge '{0}'")]
    NoSuchBridge(String),
    /// A bridge of that name exists already.
    #[error("bridge '{0}' already exists")]
    BridgeExists(String),
    /// A rule refers to something invalid (e.g. an output to a port number out of range).
    #[error("invalid flow: {0}")]
    InvalidFlow(String),
    /// A tunnel port's options are invalid.
    #[error(transparent)]
    Tunnel(#[from] tunnel::TunnelConfigError),
    /// The datapath refused.
    #[error("datapath: {0}")]
    Dpif(#[from] crate::dpif::DpifError),
    /// A trace request named a packet we cannot translate.
    #[error("trace: {0}")]
    Trace(String),
    /// An address could not be pinned or unpinned (`fdb/add`, `fdb/del`).
    #[error("bridge {bridge}: {source}")]
    StaticEntry {
        /// Bridge.
        bridge: String,
        /// What was wrong.
        source: mac_learning::StaticEntryError,
    },
}

/// Source of time, replaceable in tests so aging can be exercised without sleeping.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Instant;
}

/// The real clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<Instant>);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock(Mutex::new(Instant::now()))
    }
}

impl ManualClock {
    /// Moves time forward.
    pub fn advance(&self, d: Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One bridge's translator state. See the module docs.
pub struct Ofproto {
    name: String,
    config: RwLock<OfprotoConfig>,
    ports: RwLock<PortMap>,
    tables: RwLock<Tables>,
    fdb: Mutex<MacLearning>,
    mdb: Mutex<McastSnooping>,
    clock: Arc<dyn Clock>,
    /// Bumped by rule, port and config changes.
    rules_gen: AtomicU64,
    /// Native tunnel state shared by the backer's bridges (see `tunnel.rs`).
    tunnels: std::sync::OnceLock<Arc<tunnel::TunnelState>>,
    /// Set when the bridge sits on the kernel datapath, whose tunnel vports encapsulate
    /// and route by themselves (see `vport_xlate.rs`).
    kernel_vports: std::sync::atomic::AtomicBool,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Ofproto {
    /// A bridge with no ports and empty tables, on the system clock.
    pub fn new(name: &str, config: OfprotoConfig) -> Ofproto {
        Ofproto::with_clock(name, config, Arc::new(SystemClock))
    }

    /// Same, with a given clock.
    pub fn with_clock(name: &str, config: OfprotoConfig, clock: Arc<dyn Clock>) -> Ofproto {
        Ofproto {
            name: name.to_string(),
            fdb: Mutex::new(MacLearning::new(config.mac_aging, config.mac_table_size)),
            mdb: Mutex::new(McastSnooping::new(config.mcast.clone())),
            config: RwLock::new(config),
            ports: RwLock::new(PortMap::default()),
            tables: RwLock::new(Tables::default()),
            clock,
            rules_gen: AtomicU64::new(0),
            tunnels: std::sync::OnceLock::new(),
            kernel_vports: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Marks the bridge as being on a datapath whose tunnel ports are kernel vports: output
    /// to them becomes `set(tunnel(...))` + output, and no userspace encapsulation,
    /// underlay route or neighbour cache is involved. The backer sets it from its dpif's
    /// type when the bridge is added.
    pub fn set_kernel_vports(&self, on: bool) {
        self.kernel_vports
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether tunnel ports on this bridge are kernel vports (see `set_kernel_vports`).
    pub fn kernel_vports(&self) -> bool {
        self.kernel_vports
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bridge name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The clock this bridge ages things with.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Current fail mode.
    pub fn fail_mode(&self) -> FailMode {
        read(&self.config).fail_mode
    }

    /// Changes settings (fail mode, aging, snooping).
    pub fn set_config(&self, config: OfprotoConfig) {
        {
            let mut fdb = self.fdb();
            fdb.aging = config.mac_aging;
            fdb.max_entries = config.mac_table_size.max(1);
        }
        self.mdb().config = config.mcast.clone();
        *write(&self.config) = config;
        self.bump();
    }

    /// A copy of the settings.
    pub fn config(&self) -> OfprotoConfig {
        read(&self.config).clone()
    }

    pub(crate) fn mcast_enabled(&self) -> bool {
        read(&self.config).mcast.enabled
    }

    pub(crate) fn mcast_config(&self) -> McastSnoopingConfig {
        read(&self.config).mcast.clone()
    }

    /// The fdb (locked).
    pub fn fdb(&self) -> MutexGuard<'_, MacLearning> {
        self.fdb.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The mdb (locked).
    pub fn mdb(&self) -> MutexGuard<'_, McastSnooping> {
        self.mdb.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.rules_gen.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes whenever anything that can alter a translation changes (rules, ports,
    /// config, fdb, mdb): the backer revalidates when it moves.
    pub fn generation(&self) -> u64 {
        self.rules_gen
            .load(Ordering::Relaxed)
            .wrapping_add(self.fdb().generation())
            .wrapping_add(self.mdb().generation())
    }

    /// A snapshot of the ports.
    pub fn ports(&self) -> PortMap {
        read(&self.ports).clone()
    }

    /// Adds a port known to the datapath as `dp_port`; picks the lowest free OpenFlow
    /// number unless `ofport` asks for one.
    pub fn add_port(
        &self,
        name: &str,
        dp_port: OdpPort,
        ofport: Option<OfPort>,
        config: PortConfig,
    ) -> Result<OfPort, OfprotoError> {
        let mut ports = write(&self.ports);
        let exists = |p: String| OfprotoError::PortExists {
            bridge: self.name.clone(),
            port: p,
        };
        if ports.by_name(name).is_some() {
            return Err(exists(name.to_string()));
        }
        if ports.ofport_of(dp_port).is_some() {
            return Err(exists(format!("datapath port {dp_port}")));
        }
        let of = match ofport {
            Some(p) if ports.get(p).is_some() => return Err(exists(format!("ofport {p}"))),
            Some(p) if p == 0 || (p >= ofp_port::MAX && p != ofp_port::LOCAL) => {
                return Err(OfprotoError::InvalidFlow(format!("ofport {p} is reserved")))
            }
            Some(p) => p,
            None if name == self.name => ofp_port::LOCAL,
            None => ports
                .free_ofport()
                .ok_or_else(|| exists("no free ofport".into()))?,
        };
        ports.insert(BridgePort {
            ofport: of,
            name: name.to_string(),
            dp_port,
            config,
        });
        drop(ports);
        self.bump();
        Ok(of)
    }

    /// The OpenFlow number of port `name` in `ports`, or the error naming bridge and port.
    fn ofport_named(&self, ports: &PortMap, name: &str) -> Result<OfPort, OfprotoError> {
        ports
            .by_name(name)
            .map(|p| p.ofport)
            .ok_or_else(|| OfprotoError::NoSuchPort {
                bridge: self.name.clone(),
                port: name.to_string(),
            })
    }

    /// Removes a port; forgets what NORMAL learned on it. Returns it.
    pub fn del_port(&self, name: &str) -> Result<BridgePort, OfprotoError> {
        let mut ports = write(&self.ports);
        let of = self.ofport_named(&ports, name)?;
        let p = ports.remove(of).expect("port found by name");
        drop(ports);
        self.fdb().flush_port(of);
        self.mdb().flush_port(of);
        self.bump();
        Ok(p)
    }

    /// Changes a port's VLAN / multicast settings.
    pub fn set_port_config(&self, name: &str, config: PortConfig) -> Result<(), OfprotoError> {
        let mut ports = write(&self.ports);
        let of = self.ofport_named(&ports, name)?;
        if let Some(p) = ports.get_mut(of) {
            p.config = config;
        }
        drop(ports);
        self.fdb().flush_port(of);
        self.bump();
        Ok(())
    }

    /// Adds a rule from flow text (`add-flow`).
    pub fn add_flow(&self, text: &str) -> Result<(), OfprotoError> {
        self.add_flow_spec(parse_flow(text)?)
    }

    /// Adds a parsed rule, replacing an identical one (same table, match and priority).
    pub fn add_flow_spec(&self, spec: FlowSpec) -> Result<(), OfprotoError> {
        for a in &spec.actions {
            if let OfAction::Output(p) = a {
                if *p == 0 || (*p >= ofp_port::MAX && *p < ofp_port::IN_PORT) {
                    return Err(OfprotoError::InvalidFlow(format!(
                        "output to invalid port {p}"
                    )));
                }
            }
        }
        let now = self.now();
        let mut tables = write(&self.tables);
        let id = tables.next_rule_id();
        let table = spec.opts.table;
        let t = tables
            .table_mut(table)
            .ok_or_else(|| OfprotoError::InvalidFlow(format!("table {table} out of range")))?;
        t.insert(Arc::new(Rule::new(id, spec, now)));
        drop(tables);
        self.bump();
        Ok(())
    }

    /// `mod-flows`: replaces the actions of the selected rules (counters, cookie and
    /// timeouts kept). As in OpenFlow 1.1+, nothing is added when no rule matches.
    /// Returns how many rules changed.
    pub fn mod_flows(&self, text: &str, strict: bool) -> Result<usize, OfprotoError> {
        let (sel, actions) = parse_selector(text)?;
        let actions =
            actions.ok_or_else(|| FlowSyntaxError::Structure("mod-flows needs actions=".into()))?;
        let now = self.now();
        let mut tables = write(&self.tables);
        let chosen = tables.select(&sel, strict);
        for old in &chosen {
            let id = tables.next_rule_id();
            let spec = FlowSpec {
                opts: old.opts,
                matcher: old.matcher,
                actions: actions.clone(),
            };
            let mut r = Rule::new(id, spec, now);
            r.created = old.created;
            r.counters = Mutex::new(old.counters());
            // Keep the original's rank among equal-priority rules by reusing its id.
            r.id = old.id;
            if let Some(t) = tables.table_mut(old.opts.table) {
                t.remove(old.id);
                t.insert(Arc::new(r));
            }
        }
        drop(tables);
        self.bump();
        Ok(chosen.len())
    }

    /// `del-flows`: removes the selected rules (all of them for empty text). Strict
    /// matching compares match and priority exactly. Returns how many were removed.
    pub fn del_flows(&self, text: &str, strict: bool) -> Result<usize, OfprotoError> {
        let (sel, actions) = parse_selector(text)?;
        if actions.is_some() {
            return Err(FlowSyntaxError::Structure("del-flows takes no actions=".into()).into());
        }
        Ok(self.del_selected(&sel, strict))
    }

    /// Removes the rules a selector picks.
    pub fn del_selected(&self, sel: &FlowSelector, strict: bool) -> usize {
        let mut tables = write(&self.tables);
        let chosen = tables.select(sel, strict);
        for r in &chosen {
            tables.remove(r.opts.table, r.id);
        }
        drop(tables);
        self.bump();
        chosen.len()
    }

    /// All rules, in table / priority order.
    pub fn rules(&self) -> Vec<Arc<Rule>> {
        read(&self.tables).all_rules()
    }

    /// Translates a packet. `req.key` is in datapath port space.
    pub fn translate(&self, req: &XlateRequest<'_>) -> XlateOutput {
        let ports = read(&self.ports);
        let tables = read(&self.tables);
        xlate::translate(self, &ports, &tables, req)
    }

    /// Handles one datapath miss: translate with learning, credit the rules.
    pub fn handle_upcall(&self, upcall: &Upcall<'_>) -> Result<UpcallReply, UpcallError> {
        let now = self.now();
        let gen_before = self.rules_gen.load(Ordering::Relaxed);
        let out = self.translate(&XlateRequest {
            key: upcall.key,
            packet: Some(upcall.packet),
            may_learn: true,
            revalidating: false,
            trace: false,
            now,
        });
        if let Some(XlateError::NoSuchPort(p)) = out.error {
            return Err(UpcallError::NoBridge(p));
        }
        for r in &out.rules {
            r.credit(1, upcall.packet.len() as u64, now);
        }
        // A rule change that raced with this translation may have been revalidated
        // already: don't install what might be stale.
        let stale = self.rules_gen.load(Ordering::Relaxed) != gen_before;
        Ok(UpcallReply {
            actions: out.actions,
            mask: out.mask,
            install: out.install && !stale,
        })
    }

    /// Expires rules (idle/hard timeouts), fdb and mdb entries. Returns whether anything
    /// was removed.
    pub fn run_timeouts(&self) -> bool {
        let now = self.now();
        let expired: Vec<(u8, u64)> = read(&self.tables)
            .all_rules()
            .iter()
            .filter(|r| r.expires_at().is_some_and(|t| t <= now))
            .map(|r| (r.opts.table, r.id))
            .collect();
        let mut changed = !expired.is_empty();
        if changed {
            let mut tables = write(&self.tables);
            for (t, id) in expired {
                tables.remove(t, id);
            }
            drop(tables);
            self.bump();
        }
        changed |= self.fdb().expire(now) > 0;
        changed |= self.mdb().expire(now) > 0;
        changed
    }

    /// The datapath port of OpenFlow port `of`, or the trace error naming the unknown port.
    fn trace_in_port(&self, of: OfPort) -> Result<u32, OfprotoError> {
        read(&self.ports).get(of).map(|p| p.dp_port).ok_or_else(|| {
            OfprotoError::Trace(format!(
                "in_port={of} is not a port of bridge {}",
                self.name
            ))
        })
    }

    /// Traces a packet given as flow text (`in_port` an OpenFlow port). No learning.
    pub fn trace(&self, text: &str) -> Result<String, OfprotoError> {
        let mut key = parse_flow_key(text)?;
        key.in_port = self.trace_in_port(key.in_port as OfPort)?;
        Ok(self.trace_key(&key, None))
    }

    /// Traces a raw frame as if it arrived on OpenFlow port `in_port` (the frame is parsed
    /// the way the datapath parses it). No learning.
    pub fn trace_frame(&self, in_port: OfPort, frame: &[u8]) -> Result<String, OfprotoError> {
        let meta = crate::packet::PacketMeta::for_port(self.trace_in_port(in_port)?);
        let key = crate::packet::parse::parse_frame(frame, &meta);
        Ok(self.trace_key(&key, Some(frame)))
    }

    /// Traces a datapath key (and optionally its frame). No learning.
    pub fn trace_key(&self, key: &FlowKey, packet: Option<&[u8]>) -> String {
        let out = self.translate(&XlateRequest {
            key,
            packet,
            may_learn: false,
            revalidating: false,
            trace: true,
            now: self.now(),
        });
        show::format_trace(self, key, &out)
    }

    /// ovs-ofctl dump-flows style listing.
    pub fn dump_flows(&self) -> String {
        show::dump_flows(&self.rules(), self.now())
    }

    /// `mdb/flush`: forgets every membership and mrouter port.
    pub fn mdb_flush(&self) {
        self.mdb().flush();
    }

    /// `mdb/show` output.
    pub fn mdb_show(&self) -> String {
        show::mdb_show(&self.mdb(), self.now())
    }
}

#[cfg(test)]
mod tests;
