//! The per-datapath side of the translator (OVS's dpif_backer plus its revalidators).
//!
//! The backer is the datapath's `UpcallHandler`: a miss on datapath port p goes to the
//! bridge that owns p. It also keeps installed megaflows honest. Revalidation dumps the
//! datapath's flows and, for each, re-translates its (masked) key without side effects
//! other than refreshing learned MACs of flows that saw traffic:
//! - same actions and a mask no wider than the installed one: keep;
//! - different actions, same-or-narrower mask: modify the flow's actions in place;
//! - a translation that now needs more bits than the megaflow matches on, or that must not
//!   be installed: delete (the next packet upcalls and gets a correct megaflow);
//! - flows idle for more than `max_idle` (10 s, OVS's default): delete.
//!
//! Full re-translation happens when a bridge's generation moved (rule, port, fdb, mdb
//! change) or timeouts expired something; otherwise only flows with new traffic are
//! re-translated (to credit rule counters and refresh MAC ages). Datapath flow counters
//! are pushed to the rules the flow's translation used.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::flow_limit::FlowLimit;
use super::upcall_summary::{DumpHistory, UpcallSummary};
use super::{read, write, OfPort, Ofproto, OfprotoConfig, OfprotoError, PortConfig, XlateRequest};
use crate::dpif::{
    Dpif, FlowPut, FlowPutMode, PortSpec, Upcall, UpcallError, UpcallHandler, UpcallKind,
    UpcallReply,
};
use crate::packet::{FlowKey, FlowMask, OdpPort};

/// The kernel back end's tunnel port option choosing a flow-based device or the
/// module's compat vport (see `dpif_netlink`).
const KERNEL_VPORT_OPTION: &str = "vport";

/// OVS's default `max-idle`: megaflows unused this long are removed.
pub const DEFAULT_MAX_IDLE: Duration = Duration::from_secs(10);

/// What one revalidation pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RevalidateStats {
    /// Flows dumped.
    pub dumped: usize,
    /// Flows whose actions were changed in place.
    pub modified: usize,
    /// Flows deleted because their translation changed shape or they can't be installed.
    pub deleted: usize,
    /// Flows deleted for idleness.
    pub idle_deleted: usize,
}

#[derive(Clone, Copy, Debug)]
struct UkeyState {
    seen: Instant,
    packets: u64,
    bytes: u64,
}

/// A datapath flow's identity: masked key, mask, and the PMD that holds it.
type UkeyId = (FlowKey, FlowMask, Option<usize>);

struct BackerState {
    bridges: BTreeMap<String, Arc<Ofproto>>,
    ports: HashMap<OdpPort, Arc<Ofproto>>,
}

/// One per datapath. See the module docs.
pub struct Backer {
    dpif: Arc<dyn Dpif>,
    state: RwLock<BackerState>,
    /// Per installed megaflow (and PMD): counters already credited, last activity.
    ukeys: Mutex<HashMap<UkeyId, UkeyState>>,
    revalidator: Mutex<Option<std::thread::Thread>>,
    seen_gen: Mutex<HashMap<String, u64>>,
    max_idle_ms: std::sync::atomic::AtomicU64,
    revalidate_lock: Mutex<()>,
    /// Native tunnel state shared by the bridges (see `tunnel.rs`).
    tunnels: Arc<super::tunnel::TunnelState>,
    /// Neighbour cache generation the last revalidation saw.
    neigh_gen: std::sync::atomic::AtomicU64,
    /// What the revalidation passes found (`upcall/show`).
    dumps: Mutex<DumpHistory>,
    /// The revalidator thread's Linux thread id; 0 until it runs.
    revalidator_tid: AtomicU32,
    /// The cap on installed megaflows, where the datapath has none of its own.
    flow_limit: std::sync::OnceLock<FlowLimit>,
}

/// Forwards upcalls to the backer without keeping it alive (the datapath holds this).
struct UpcallForwarder(Weak<Backer>);

impl UpcallHandler for UpcallForwarder {
    fn upcall(&self, upcall: &Upcall<'_>) -> Result<UpcallReply, UpcallError> {
        match self.0.upgrade() {
            Some(b) => b.upcall(upcall),
            None => Err(UpcallError::NoBridge(upcall.key.in_port)),
        }
    }
}

impl Backer {
    /// Wraps a datapath and registers as its upcall handler.
    pub fn new(dpif: Arc<dyn Dpif>) -> Arc<Backer> {
        let b = Arc::new(Backer {
            dpif,
            state: RwLock::new(BackerState {
                bridges: BTreeMap::new(),
                ports: HashMap::new(),
            }),
            ukeys: Mutex::new(HashMap::new()),
            revalidator: Mutex::new(None),
            seen_gen: Mutex::new(HashMap::new()),
            max_idle_ms: std::sync::atomic::AtomicU64::new(DEFAULT_MAX_IDLE.as_millis() as u64),
            revalidate_lock: Mutex::new(()),
            tunnels: Arc::default(),
            neigh_gen: std::sync::atomic::AtomicU64::new(0),
            dumps: Mutex::new(DumpHistory::default()),
            revalidator_tid: AtomicU32::new(0),
            flow_limit: std::sync::OnceLock::new(),
        });
        b.dpif
            .set_upcall_handler(Arc::new(UpcallForwarder(Arc::downgrade(&b))));
        b
    }

    /// Caps the megaflows upcalls install at `limit` (see `FlowLimit`); set once, when
    /// the datapath opens. A second call keeps the first cap.
    pub fn set_flow_limit(&self, limit: usize) {
        let _ = self.flow_limit.set(FlowLimit::new(limit));
    }

    /// The cap `set_flow_limit` set.
    pub fn flow_limit(&self) -> Option<&FlowLimit> {
        self.flow_limit.get()
    }

    /// Changes how long an unused megaflow survives (default 10 s, OVS's `max-idle`).
    pub fn set_max_idle(&self, d: Duration) {
        self.max_idle_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }

    /// The megaflow idle limit.
    pub fn max_idle(&self) -> Duration {
        Duration::from_millis(self.max_idle_ms.load(Ordering::Relaxed))
    }

    /// The datapath.
    pub fn dpif(&self) -> &Arc<dyn Dpif> {
        &self.dpif
    }

    /// Creates a bridge.
    pub fn add_bridge(
        &self,
        name: &str,
        config: OfprotoConfig,
    ) -> Result<Arc<Ofproto>, OfprotoError> {
        self.add_bridge_with(Arc::new(Ofproto::new(name, config)))
    }

    /// Adds an already built bridge (tests use this to give it a manual clock).
    pub fn add_bridge_with(&self, br: Arc<Ofproto>) -> Result<Arc<Ofproto>, OfprotoError> {
        let mut st = write(&self.state);
        if st.bridges.contains_key(br.name()) {
            return Err(OfprotoError::BridgeExists(br.name().to_string()));
        }
        st.bridges.insert(br.name().to_string(), br.clone());
        br.set_kernel_vports(self.dpif.dp_type() == "kernel");
        br.attach_tunnels(self.tunnels.clone());
        Ok(br)
    }

    /// Deletes a bridge and its ports from the datapath.
    pub fn del_bridge(&self, name: &str) -> Result<(), OfprotoError> {
        let br = write(&self.state)
            .bridges
            .remove(name)
            .ok_or_else(|| OfprotoError::NoSuchBridge(name.to_string()))?;
        for p in br.ports().iter() {
            write(&self.state).ports.remove(&p.dp_port);
            self.tunnels.del_port(p.dp_port);
            self.dpif.port_del(p.dp_port)?;
        }
        self.revalidate_all();
        Ok(())
    }

    /// A bridge by name.
    pub fn bridge(&self, name: &str) -> Option<Arc<Ofproto>> {
        read(&self.state).bridges.get(name).cloned()
    }

    /// Bridge names.
    pub fn bridge_names(&self) -> Vec<String> {
        read(&self.state).bridges.keys().cloned().collect()
    }

    fn need_bridge(&self, name: &str) -> Result<Arc<Ofproto>, OfprotoError> {
        self.bridge(name)
            .ok_or_else(|| OfprotoError::NoSuchBridge(name.to_string()))
    }

    /// Creates the port in the datapath and adds it to the bridge.
    pub fn add_port(
        &self,
        bridge: &str,
        spec: &PortSpec,
        ofport: Option<OfPort>,
        config: PortConfig,
    ) -> Result<OfPort, OfprotoError> {
        let br = self.need_bridge(bridge)?;
        if br.ports().by_name(&spec.name).is_some() {
            return Err(OfprotoError::PortExists {
                bridge: bridge.to_string(),
                port: spec.name.clone(),
            });
        }
        // On the kernel datapath the config is kept too: output to the vport becomes
        // set(tunnel(...)) from it + output (vport_xlate.rs); only the userspace datapath
        // tunnels natively.
        let tunnel = self.tunnel_config(spec)?;
        let dp = self.dpif.port_add(spec, None)?;
        match br.add_port(&spec.name, dp, ofport, config) {
            Ok(of) => {
                if let Some(config) = tunnel {
                    self.tunnels.add_port(super::tunnel::TunnelPort {
                        name: spec.name.clone(),
                        bridge: bridge.to_string(),
                        dp_port: dp,
                        config,
                    });
                }
                write(&self.state).ports.insert(dp, br);
                Ok(of)
            }
            Err(e) => {
                let _ = self.dpif.port_del(dp);
                Err(e)
            }
        }
    }

    /// The translator's view of a tunnel port's options. `vport` (`netdev` or `compat`:
    /// which kind of kernel vport carries the tunnel) belongs to the kernel back end,
    /// which reads it from the same options; on any other datapath it is an error.
    fn tunnel_config(
        &self,
        spec: &PortSpec,
    ) -> Result<Option<super::tunnel::TunnelConfig>, OfprotoError> {
        if !spec.options.contains_key(KERNEL_VPORT_OPTION) {
            return Ok(super::tunnel::TunnelConfig::from_options(
                &spec.name,
                &spec.port_type,
                &spec.options,
            )?);
        }
        if self.dpif.dp_type() != "kernel" {
            return Err(super::tunnel::TunnelConfigError {
                port: spec.name.clone(),
                option: KERNEL_VPORT_OPTION.to_string(),
                reason: format!(
                    "only the kernel datapath has vports (this bridge's datapath is {})",
                    self.dpif.dp_type()
                ),
            }
            .into());
        }
        let mut opts = spec.options.clone();
        opts.remove(KERNEL_VPORT_OPTION);
        Ok(super::tunnel::TunnelConfig::from_options(
            &spec.name,
            &spec.port_type,
            &opts,
        )?)
    }

    /// Removes a port from the bridge and the datapath.
    pub fn del_port(&self, bridge: &str, name: &str) -> Result<(), OfprotoError> {
        let br = self.need_bridge(bridge)?;
        let p = br.del_port(name)?;
        write(&self.state).ports.remove(&p.dp_port);
        self.tunnels.del_port(p.dp_port);
        self.dpif.port_del(p.dp_port)?;
        self.revalidate_all();
        Ok(())
    }

    /// `add-flow` on a bridge, then revalidation so the next packet sees the rule.
    pub fn add_flow(&self, bridge: &str, text: &str) -> Result<(), OfprotoError> {
        self.need_bridge(bridge)?.add_flow(text)?;
        self.revalidate_all();
        Ok(())
    }

    /// `mod-flows` on a bridge, then revalidation.
    pub fn mod_flows(&self, bridge: &str, text: &str, strict: bool) -> Result<usize, OfprotoError> {
        let n = self.need_bridge(bridge)?.mod_flows(text, strict)?;
        self.revalidate_all();
        Ok(n)
    }

    /// `del-flows` on a bridge, then revalidation.
    pub fn del_flows(&self, bridge: &str, text: &str, strict: bool) -> Result<usize, OfprotoError> {
        let n = self.need_bridge(bridge)?.del_flows(text, strict)?;
        self.revalidate_all();
        Ok(n)
    }

    /// Handles a datapath miss.
    pub fn upcall(&self, upcall: &Upcall<'_>) -> Result<UpcallReply, UpcallError> {
        let br = read(&self.state)
            .ports
            .get(&upcall.key.in_port)
            .cloned()
            .ok_or(UpcallError::NoBridge(upcall.key.in_port))?;
        let g0 = br.generation();
        let mut reply = br.handle_upcall(upcall)?;
        if let Some(limit) = self.flow_limit.get() {
            if reply.install && upcall.kind == UpcallKind::Miss {
                let recount = || self.dpif.stats().ok().map(|s| s.n_flows);
                reply.install = limit.admit(Instant::now(), recount);
            }
        }
        if br.generation() != g0 {
            // Learning changed the fdb/mdb: installed megaflows may now be wrong.
            self.wake_revalidator();
        }
        Ok(reply)
    }

    fn wake_revalidator(&self) {
        if let Some(t) = &*self.revalidator.lock().unwrap_or_else(|e| e.into_inner()) {
            t.unpark();
        }
    }

    /// Whether every bridge's state has been revalidated since it last changed (a
    /// revalidator pass is not pending).
    pub fn is_settled(&self) -> bool {
        let seen = self.seen_gen.lock().unwrap_or_else(|e| e.into_inner());
        read(&self.state)
            .bridges
            .iter()
            .all(|(n, b)| seen.get(n) == Some(&b.generation()))
    }

    /// Periodic work: timeouts, then revalidation (full where needed). Call it every
    /// few hundred milliseconds, or use [`Backer::start_revalidator`].
    ///
    /// Order matters: datapath counters are pushed to rules (refreshing idle timers)
    /// before timeouts are judged, and anything that expired is revalidated right away.
    pub fn run(&self) -> RevalidateStats {
        let mut stats = if self.tunnels_changed() {
            self.revalidate(true)
        } else {
            self.revalidate(false)
        };
        let bridges: Vec<Arc<Ofproto>> = read(&self.state).bridges.values().cloned().collect();
        let mut expired = false;
        for br in &bridges {
            expired |= br.run_timeouts();
        }
        if expired {
            let more = self.revalidate(false);
            stats.dumped = more.dumped;
            stats.modified += more.modified;
            stats.deleted += more.deleted;
            stats.idle_deleted += more.idle_deleted;
        }
        stats
    }

    /// The native tunnel state (tnl/ports/show, tnl/neigh/show, tnl/neigh/flush).
    pub fn tunnels(&self) -> &Arc<super::tunnel::TunnelState> {
        &self.tunnels
    }

    /// Sends queued ARP/ND requests and reports whether megaflows with prebuilt tunnel
    /// headers may be stale: the neighbour cache changed since the last call, or routes
    /// are due for a refresh.
    fn tunnels_changed(&self) -> bool {
        for s in self.tunnels.take_pending() {
            if let Err(e) = self.dpif.execute(&s.frame, &s.meta, &s.actions) {
                tracing::debug!("tunnel neighbour request not sent: {e}");
            }
        }
        let now = Instant::now();
        self.tunnels.neigh.expire(now);
        let g = self.tunnels.neigh.generation();
        let neigh_changed = self.neigh_gen.swap(g, std::sync::atomic::Ordering::Relaxed) != g;
        neigh_changed | self.tunnels.refresh_due(now)
    }

    /// Re-translates every installed megaflow now.
    pub fn revalidate_all(&self) -> RevalidateStats {
        self.revalidate(true)
    }

    /// The revalidator's state for `upcall/show`.
    pub fn upcall_summary(&self) -> UpcallSummary {
        let tid = self.revalidator_tid.load(Ordering::Relaxed);
        UpcallSummary {
            history: *self.dumps.lock().unwrap_or_else(|e| e.into_inner()),
            keys: self.ukeys.lock().unwrap_or_else(|e| e.into_inner()).len(),
            revalidator_tid: (tid != 0).then_some(tid),
        }
    }

    fn revalidate(&self, force: bool) -> RevalidateStats {
        let _serial = self
            .revalidate_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let started = Instant::now();
        let mut stats = RevalidateStats::default();
        let (bridges, owners) = {
            let st = read(&self.state);
            (st.bridges.clone(), st.ports.clone())
        };
        let mut dirty: HashMap<String, bool> = HashMap::new();
        let gens: HashMap<String, u64> = bridges
            .iter()
            .map(|(n, b)| (n.clone(), b.generation()))
            .collect();
        {
            let seen = self.seen_gen.lock().unwrap_or_else(|e| e.into_inner());
            for (name, g) in &gens {
                dirty.insert(name.clone(), force || seen.get(name) != Some(g));
            }
        }
        let flows = match self.dpif.flow_dump() {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("revalidator: flow dump failed: {e}");
                return stats;
            }
        };
        stats.dumped = flows.len();
        let mut ukeys = self.ukeys.lock().unwrap_or_else(|e| e.into_inner());
        let mut live = HashMap::with_capacity(flows.len());
        let max_idle = self.max_idle();
        for f in flows {
            let id = (f.key, f.mask, f.pmd_core);
            let br = owners.get(&f.key.in_port);
            let now = br.map_or_else(Instant::now, |b| b.now());
            let mut u = ukeys.get(&id).copied().unwrap_or(UkeyState {
                seen: now,
                packets: 0,
                bytes: 0,
            });
            let (dp, db) = (
                f.stats.packets.saturating_sub(u.packets),
                f.stats.bytes.saturating_sub(u.bytes),
            );
            u.packets = f.stats.packets;
            u.bytes = f.stats.bytes;
            if dp > 0 {
                u.seen = now;
            }
            let last_used = match f.stats.used {
                Some(t) => t.max(u.seen),
                None => u.seen,
            };
            let Some(br) = br else {
                let _ = self.dpif.flow_del(&f.key, &f.mask);
                stats.deleted += 1;
                continue;
            };
            if now.saturating_duration_since(last_used) > max_idle {
                let _ = self.dpif.flow_del(&f.key, &f.mask);
                stats.idle_deleted += 1;
                continue;
            }
            let is_dirty = dirty.get(br.name()).copied().unwrap_or(true);
            if !is_dirty && dp == 0 {
                live.insert(id, u);
                continue;
            }
            let out = br.translate(&XlateRequest {
                key: &f.key,
                packet: None,
                may_learn: dp > 0,
                revalidating: true,
                trace: false,
                now,
            });
            for r in &out.rules {
                if dp > 0 {
                    r.credit(dp, db, now);
                }
            }
            if !out.install || !out.mask.is_subset_of(&f.mask) {
                let _ = self.dpif.flow_del(&f.key, &f.mask);
                stats.deleted += 1;
                continue;
            }
            if *f.actions != *out.actions {
                let put = FlowPut {
                    key: f.key,
                    mask: f.mask,
                    actions: out.actions.into(),
                    mode: FlowPutMode::Modify,
                    clear_stats: false,
                };
                if self.dpif.flow_put(&put).is_err() {
                    let _ = self.dpif.flow_del(&f.key, &f.mask);
                    stats.deleted += 1;
                    continue;
                }
                stats.modified += 1;
            }
            live.insert(id, u);
        }
        *ukeys = live;
        // Only now is the state these generations describe fully revalidated.
        *self.seen_gen.lock().unwrap_or_else(|e| e.into_inner()) = gens;
        self.dumps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(stats.dumped, started.elapsed());
        stats
    }

    /// Starts a thread that calls [`Backer::run`] every `interval` until the returned
    /// handle is dropped or stopped.
    pub fn start_revalidator(self: &Arc<Self>, interval: Duration) -> RevalidatorThread {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, weak) = (stop.clone(), Arc::downgrade(self));
        let handle = std::thread::Builder::new()
            .name("revalidator".into())
            .spawn(move || {
                if let Some(b) = weak.upgrade() {
                    // SAFETY: gettid has no preconditions.
                    let tid = unsafe { libc::gettid() };
                    b.revalidator_tid.store(tid as u32, Ordering::Relaxed);
                }
                while !s.load(Ordering::Relaxed) {
                    match weak.upgrade() {
                        Some(b) => {
                            b.run();
                        }
                        None => return,
                    }
                    std::thread::park_timeout(interval);
                }
            })
            .expect("spawning the revalidator thread");
        *self.revalidator.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle.thread().clone());
        RevalidatorThread {
            stop,
            handle: Some(handle),
        }
    }
}

impl UpcallHandler for Backer {
    fn upcall(&self, upcall: &Upcall<'_>) -> Result<UpcallReply, UpcallError> {
        Backer::upcall(self, upcall)
    }
}

/// The revalidator thread; stopped and joined on drop.
pub struct RevalidatorThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl RevalidatorThread {
    /// Asks for an immediate pass (after a change made outside the backer's methods).
    pub fn wake(&self) {
        if let Some(h) = &self.handle {
            h.thread().unpark();
        }
    }

    /// Stops and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Drop for RevalidatorThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}
