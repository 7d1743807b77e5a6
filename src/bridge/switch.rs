//! The running switch: datapaths, bridges and their ports, kept in line with a `Config`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use std::time::Duration;

use crate::config::{
    BridgeConfig, Config, ConfigError, DatapathType, FailMode, GlobalConfig, PortConfig, VlanMode,
};
use crate::dpif::{DpifError, PortSpec};
use crate::dpif_netdev::DpifNetdev;
use crate::ofproto::route_watch::RouteWatcher;
use crate::ofproto::{
    Backer, FailMode as OfFailMode, McastSnoopingConfig, Ofproto, OfprotoConfig, OfprotoError,
    PortConfig as OfPortConfig, VlanMode as OfVlanMode,
};

use super::datapaths::DatapathRuntime;

use super::diff::{plan, Step};
use super::state::{RuntimeChange, StateError, StateFile, STATE_FILE_NAME};

/// Errors of the bridge layer, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// The request or resulting config is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The translator (or the datapath under it) refused a bridge, port or flow change.
    #[error("{what}: {source}")]
    Port {
        /// What was being done.
        what: String,
        /// The translator's error.
        #[source]
        source: OfprotoError,
    },
    /// A datapath could not be opened.
    #[error("{what}: {source}")]
    Datapath {
        /// What was being done.
        what: String,
        /// The datapath's error.
        #[source]
        source: DpifError,
    },
    /// No such bridge.
    #[error("no bridge named {0}")]
    NoSuchBridge(String),
    /// No such port on that bridge.
    #[error("bridge {bridge} has no port named {port}")]
    NoSuchPort {
        /// Bridge.
        bridge: String,
        /// Port.
        port: String,
    },
    /// Several steps of a reconfiguration failed; each message says which.
    #[error("{}", .0.join("; "))]
    Partial(Vec<String>),
    /// The state file could not be written.
    #[error("{0}")]
    State(#[from] StateError),
}

/// A bridge as it runs: its settings and its translator.
pub(crate) struct BridgeRuntime {
    pub(crate) config: BridgeConfig,
    pub(crate) ofproto: Arc<Ofproto>,
}

/// Flushes every backer's cached tunnel routes and rebuilds its flows after the host's
/// routes or addresses changed (the `RouteWatcher` callback).
fn underlay_changed(switch: &Weak<Switch>) {
    let Some(switch) = switch.upgrade() else {
        return;
    };
    for b in switch.backers() {
        if b.tunnels().has_ports() {
            tracing::debug!("host routes changed: flushing tunnel routes and revalidating");
            b.tunnels().routes.flush();
            b.revalidate_all();
        }
    }
}

pub(crate) struct SwitchInner {
    pub(crate) config: Config,
    pub(crate) datapaths: BTreeMap<DatapathType, DatapathRuntime>,
    pub(crate) bridges: BTreeMap<String, BridgeRuntime>,
    pub(crate) state: Option<StateFile>,
}

/// The whole switch. Shared between the main thread and the control socket's threads;
/// every change goes through one lock, so commands never interleave.
pub struct Switch {
    inner: Mutex<SwitchInner>,
    /// Keeps tunnel underlay routes in step with the host (stopped at shutdown).
    route_watch: Mutex<Option<RouteWatcher>>,
}

impl Switch {
    /// Builds everything `config` describes, then (if `keep_state`) replays the
    /// runtime-change journal from `<run_dir>/state.json`. Steps that fail are logged and
    /// skipped, as OVS does with a port it can't open.
    pub fn start(config: Config, keep_state: bool) -> Result<Arc<Switch>, SwitchError> {
        crate::packet::frames::FrameStore::set_size(config.global.afxdp_frames);
        let empty = Config {
            global: config.global.clone(),
            bridges: Vec::new(),
        };
        let state = if keep_state {
            Some(StateFile::open(
                &config.global.run_dir.join(STATE_FILE_NAME),
            )?)
        } else {
            None
        };
        let switch = Arc::new(Switch {
            inner: Mutex::new(SwitchInner {
                config: empty,
                datapaths: BTreeMap::new(),
                bridges: BTreeMap::new(),
                state: None,
            }),
            route_watch: Mutex::new(None),
        });
        let weak = Arc::downgrade(&switch);
        match RouteWatcher::start(move || underlay_changed(&weak)) {
            Ok(w) => *switch.route_watch.lock().unwrap_or_else(|e| e.into_inner()) = Some(w),
            Err(e) => tracing::warn!(
                "not watching host routes ({e}): after readdressing a tunnel underlay, run tnl/neigh/flush"
            ),
        }
        {
            let mut inner = switch.lock();
            if let Err(e) = inner.reconfigure(config) {
                tracing::error!("startup: {e}");
            }
            if let Some(mut state) = state {
                let mut kept = Vec::new();
                for change in state.changes().to_vec() {
                    match inner.apply_change(&change) {
                        Ok(()) => kept.push(change),
                        Err(e) => tracing::warn!(
                            "state {}: dropping {change:?}: {e}",
                            state.path().display()
                        ),
                    }
                }
                if kept.len() != state.changes().len() {
                    state.replace(kept)?;
                }
                if !state.changes().is_empty() {
                    tracing::info!(
                        "replayed {} runtime change(s) from {}",
                        state.changes().len(),
                        state.path().display()
                    );
                }
                inner.state = Some(state);
            }
        }
        Ok(switch)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SwitchInner> {
        // A panic in a command handler must not wedge the switch: take the state as is.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a runtime change (a control command), and records it in the journal if it
    /// succeeded.
    pub fn change(&self, change: RuntimeChange) -> Result<(), SwitchError> {
        let mut inner = self.lock();
        inner.apply_change(&change)?;
        if let Some(state) = inner.state.as_mut() {
            state.record(change)?;
        }
        Ok(())
    }

    /// Moves the running switch to `config` (bridges and ports added, removed or changed).
    pub fn reconfigure(&self, config: Config) -> Result<(), SwitchError> {
        self.lock().reconfigure(config)
    }

    /// The effective configuration (file plus runtime changes; flows added at run time are
    /// in the bridges' flow tables, not here).
    pub fn config(&self) -> Config {
        self.lock().config.clone()
    }

    /// The translator of bridge `name`.
    pub fn ofproto(&self, name: &str) -> Result<Arc<Ofproto>, SwitchError> {
        Ok(self.lock().bridge(name)?.ofproto.clone())
    }

    /// The translator of bridge `name`, or of every bridge (by name) when `name` is
    /// `None`: the commands that act on one bridge or all of them (`fdb/flush`).
    pub fn ofprotos(&self, name: Option<&str>) -> Result<Vec<Arc<Ofproto>>, SwitchError> {
        let inner = self.lock();
        match name {
            Some(n) => Ok(vec![inner.bridge(n)?.ofproto.clone()]),
            None => Ok(inner.bridges.values().map(|b| b.ofproto.clone()).collect()),
        }
    }

    /// The translator back ends of the open datapaths (for the tunnel commands).
    pub fn backers(&self) -> Vec<Arc<Backer>> {
        self.lock()
            .datapaths
            .values()
            .map(|d| d.backer.clone())
            .collect()
    }

    /// The userspace datapath, if a netdev bridge exists.
    pub fn netdev_datapath(&self) -> Option<Arc<DpifNetdev>> {
        self.lock()
            .datapaths
            .get(&DatapathType::Netdev)
            .and_then(|d| d.netdev.clone())
    }

    /// Removes every bridge (closing its ports: XDP programs detached, taps deleted) and
    /// destroys the datapaths (PMD threads joined).
    pub fn shutdown(&self) {
        // First, so no revalidation runs while the bridges go.
        drop(
            self.route_watch
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        let mut inner = self.lock();
        let global = inner.config.global.clone();
        if let Err(e) = inner.reconfigure(Config {
            global,
            bridges: Vec::new(),
        }) {
            tracing::warn!("shutdown: {e}");
        }
        inner.release_unused_datapaths();
    }
}

/// The translator's view of a bridge's settings.
fn ofproto_config(b: &BridgeConfig) -> OfprotoConfig {
    let m = &b.mcast_snooping;
    OfprotoConfig {
        fail_mode: match b.fail_mode {
            FailMode::Standalone => OfFailMode::Standalone,
            FailMode::Secure => OfFailMode::Secure,
        },
        mcast: McastSnoopingConfig {
            enabled: m.enabled,
            aging: Duration::from_secs(u64::from(m.aging_time)),
            table_size: m.table_size as usize,
            disable_flood_unregistered: !m.flood_unregistered,
        },
        ..OfprotoConfig::default()
    }
}

/// The translator's view of a port's VLAN and multicast settings.
fn ofproto_port_config(p: &PortConfig, bridge: &BridgeConfig) -> OfPortConfig {
    OfPortConfig {
        vlan_mode: match p.vlan.mode {
            VlanMode::Access => OfVlanMode::Access,
            VlanMode::Trunk => OfVlanMode::Trunk,
            VlanMode::NativeTagged => OfVlanMode::NativeTagged,
            VlanMode::NativeUntagged => OfVlanMode::NativeUntagged,
        },
        tag: p.vlan.tag,
        trunks: p.vlan.trunks.clone(),
        mcast_flood: false,
        mcast_flood_reports: bridge.mcast_snooping.flood_reports,
    }
}

impl SwitchInner {
    pub(crate) fn bridge(&self, name: &str) -> Result<&BridgeRuntime, SwitchError> {
        self.bridges
            .get(name)
            .ok_or_else(|| SwitchError::NoSuchBridge(name.to_string()))
    }

    fn backer_of(&self, bridge: &str) -> Result<&Arc<Backer>, SwitchError> {
        let kind = self.bridge(bridge)?.config.datapath;
        Ok(&self.datapaths[&kind].backer)
    }

    /// Applies one runtime command. Bridge and port changes build a new config and go
    /// through `reconfigure`; flow changes go straight to the bridge's flow tables (runtime
    /// flows are not part of the config, only of the journal).
    pub(crate) fn apply_change(&mut self, change: &RuntimeChange) -> Result<(), SwitchError> {
        match changed_config(&self.config, change)? {
            Some(new) => self.reconfigure(new),
            None => self.apply_flow_change(change),
        }
    }

    /// Applies a runtime flow change (`add-flow`, `del-flows`) to its bridge's tables.
    pub(crate) fn apply_flow_change(&mut self, change: &RuntimeChange) -> Result<(), SwitchError> {
        match change {
            RuntimeChange::AddFlow { bridge, flow } => self
                .backer_of(bridge)?
                .add_flow(bridge, flow)
                .map_err(|e| ofproto_err(bridge, e)),
            RuntimeChange::DelFlows { bridge, matching } => self
                .backer_of(bridge)?
                .del_flows(bridge, matching.as_deref().unwrap_or(""), false)
                .map(|_| ())
                .map_err(|e| ofproto_err(bridge, e)),
            _ => Ok(()),
        }
    }

    /// Applies the plan from the current config to `new`. Steps that fail are reported
    /// together; what succeeded stays applied and the stored config says what is running.
    pub(crate) fn reconfigure(&mut self, new: Config) -> Result<(), SwitchError> {
        let steps = plan(&self.config, &new);
        let mut errors = Vec::new();
        let mut failed_bridges: Vec<String> = Vec::new();
        for step in steps {
            let on_failed_bridge = match &step {
                Step::AddPort { bridge, .. } | Step::SetFlows { bridge, .. } => {
                    failed_bridges.contains(bridge)
                }
                _ => false,
            };
            if on_failed_bridge {
                continue;
            }
            if let Err(e) = self.apply_step(&step, &new.global) {
                if let Step::AddBridge { bridge } = &step {
                    failed_bridges.push(bridge.name.clone());
                }
                tracing::warn!("{e}");
                errors.push(e.to_string());
            }
        }
        // Keep the stored config truthful: it lists what is running.
        let mut running = new;
        running
            .bridges
            .retain(|b| self.bridges.contains_key(&b.name));
        for b in &mut running.bridges {
            let live = &self.bridges[&b.name].config.ports;
            b.ports.retain(|p| live.iter().any(|l| l == p));
        }
        self.config = running;
        self.release_unused_datapaths();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SwitchError::Partial(errors))
        }
    }

    fn apply_step(&mut self, step: &Step, global: &GlobalConfig) -> Result<(), SwitchError> {
        match step {
            Step::DelPort { bridge, port } => self.del_port(bridge, port),
            Step::DelBridge { bridge } => self.del_bridge(bridge),
            Step::AddBridge { bridge } => self.add_bridge(bridge, global),
            Step::UpdateBridge { bridge } => self.update_bridge(bridge),
            Step::AddPort { bridge, port } => self.add_port(bridge, port),
            Step::SetFlows { bridge, flows } => self.set_flows(bridge, flows),
        }
    }

    fn datapath(
        &mut self,
        kind: DatapathType,
        global: &GlobalConfig,
    ) -> Result<Arc<Backer>, SwitchError> {
        if let Some(dp) = self.datapaths.get(&kind) {
            return Ok(dp.backer.clone());
        }
        let dp = DatapathRuntime::open(kind, global).map_err(|source| SwitchError::Datapath {
            what: format!("opening the {} datapath", kind.as_str()),
            source,
        })?;
        tracing::info!("opened {} datapath {}", kind.as_str(), dp.dpif.name());
        let backer = dp.backer.clone();
        self.datapaths.insert(kind, dp);
        Ok(backer)
    }

    /// Destroys datapaths no bridge uses any more (their PMD threads stop).
    fn release_unused_datapaths(&mut self) {
        let used: Vec<DatapathType> = self.bridges.values().map(|b| b.config.datapath).collect();
        let unused: Vec<DatapathType> = self
            .datapaths
            .keys()
            .copied()
            .filter(|k| !used.contains(k))
            .collect();
        for kind in unused {
            if let Some(dp) = self.datapaths.remove(&kind) {
                let name = dp.dpif.name().to_string();
                match dp.destroy() {
                    Ok(()) => tracing::info!("destroyed {} datapath {name}", kind.as_str()),
                    Err(e) => tracing::warn!("destroying {} datapath {name}: {e}", kind.as_str()),
                }
            }
        }
    }

    fn add_bridge(&mut self, cfg: &BridgeConfig, global: &GlobalConfig) -> Result<(), SwitchError> {
        let backer = self.datapath(cfg.datapath, global)?;
        let ofproto = backer
            .add_bridge(&cfg.name, ofproto_config(cfg))
            .map_err(|e| ofproto_err(&cfg.name, e))?;
        // The bridge's local port: an internal (tap) device named after the bridge, as in
        // OVS. A host without tap support still gets a working bridge, minus that port.
        let local = PortSpec {
            name: cfg.name.clone(),
            port_type: "internal".to_string(),
            options: BTreeMap::new(),
        };
        if let Err(e) = backer.add_port(&cfg.name, &local, None, OfPortConfig::default()) {
            tracing::warn!("bridge {}: local port not created: {e}", cfg.name);
        }
        tracing::info!(
            "added bridge {} ({} datapath)",
            cfg.name,
            cfg.datapath.as_str()
        );
        self.bridges.insert(
            cfg.name.clone(),
            BridgeRuntime {
                config: BridgeConfig {
                    ports: Vec::new(),
                    ..cfg.clone()
                },
                ofproto,
            },
        );
        Ok(())
    }

    fn update_bridge(&mut self, cfg: &BridgeConfig) -> Result<(), SwitchError> {
        let b = self
            .bridges
            .get_mut(&cfg.name)
            .ok_or_else(|| SwitchError::NoSuchBridge(cfg.name.clone()))?;
        b.config.fail_mode = cfg.fail_mode;
        b.config.mcast_snooping = cfg.mcast_snooping;
        b.ofproto.set_config(ofproto_config(&b.config));
        for p in &b.config.ports {
            b.ofproto
                .set_port_config(&p.name, ofproto_port_config(p, &b.config))
                .map_err(|e| ofproto_err(&cfg.name, e))?;
        }
        let backer = self.backer_of(&cfg.name)?;
        backer.revalidate_all();
        Ok(())
    }

    fn set_flows(&mut self, bridge: &str, flows: &[String]) -> Result<(), SwitchError> {
        let backer = self.backer_of(bridge)?.clone();
        backer
            .del_flows(bridge, "", false)
            .map_err(|e| ofproto_err(bridge, e))?;
        let mut errors = Vec::new();
        for f in flows {
            if let Err(e) = backer.add_flow(bridge, f) {
                errors.push(format!("bridge {bridge}: flow \"{f}\": {e}"));
            }
        }
        if let Some(b) = self.bridges.get_mut(bridge) {
            b.config.flows = flows.to_vec();
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SwitchError::Partial(errors))
        }
    }

    fn del_bridge(&mut self, name: &str) -> Result<(), SwitchError> {
        let backer = self.backer_of(name)?.clone();
        self.bridges.remove(name);
        backer.del_bridge(name).map_err(|e| ofproto_err(name, e))?;
        tracing::info!("deleted bridge {name}");
        Ok(())
    }

    fn add_port(&mut self, bridge: &str, port: &PortConfig) -> Result<(), SwitchError> {
        let backer = self.backer_of(bridge)?.clone();
        let b = self
            .bridges
            .get_mut(bridge)
            .ok_or_else(|| SwitchError::NoSuchBridge(bridge.to_string()))?;
        let ofport = backer
            .add_port(
                bridge,
                &port.spec(),
                None,
                ofproto_port_config(port, &b.config),
            )
            .map_err(|e| SwitchError::Port {
                what: format!(
                    "bridge {bridge}: adding port {} ({})",
                    port.name, port.port_type
                ),
                source: e,
            })?;
        b.config.ports.push(port.clone());
        tracing::info!(
            "bridge {bridge}: added port {} ({}) as OpenFlow port {ofport}",
            port.name,
            port.port_type
        );
        Ok(())
    }

    fn del_port(&mut self, bridge: &str, port: &str) -> Result<(), SwitchError> {
        let backer = self.backer_of(bridge)?.clone();
        let b = self
            .bridges
            .get_mut(bridge)
            .ok_or_else(|| SwitchError::NoSuchBridge(bridge.to_string()))?;
        b.config.ports.retain(|p| p.name != port);
        backer
            .del_port(bridge, port)
            .map_err(|e| SwitchError::Port {
                what: format!("bridge {bridge}: deleting port {port}"),
                source: e,
            })?;
        tracing::info!("bridge {bridge}: deleted port {port}");
        Ok(())
    }
}

fn ofproto_err(bridge: &str, e: OfprotoError) -> SwitchError {
    SwitchError::Port {
        what: format!("bridge {bridge}"),
        source: e,
    }
}

/// `config` after a bridge or port change; `None` for a flow change (runtime flows live in
/// the flow tables and the journal, not in the config). Pure, so a reload can replay the
/// journal onto a new file's config before touching anything.
pub(crate) fn changed_config(
    config: &Config,
    change: &RuntimeChange,
) -> Result<Option<Config>, SwitchError> {
    let mut new = config.clone();
    match change {
        RuntimeChange::AddBridge { bridge, datapath } => {
            if new.bridge(bridge).is_some() {
                return Err(ConfigError::plain(format!("bridge {bridge} already exists")).into());
            }
            let dp: DatapathType = datapath.parse()?;
            new.bridges.push(BridgeConfig::new(bridge, dp));
        }
        RuntimeChange::DelBridge { bridge } => {
            let before = new.bridges.len();
            new.bridges.retain(|b| &b.name != bridge);
            if new.bridges.len() == before {
                return Err(SwitchError::NoSuchBridge(bridge.clone()));
            }
        }
        RuntimeChange::AddPort { bridge, port, args } => {
            let b = new
                .bridge_mut(bridge)
                .ok_or_else(|| SwitchError::NoSuchBridge(bridge.clone()))?;
            if b.ports.iter().any(|p| &p.name == port) {
                return Err(ConfigError::plain(format!(
                    "bridge {bridge} already has a port {port}"
                ))
                .into());
            }
            let p = crate::config::parse_port_args(port, args, b.datapath)?;
            b.ports.push(p);
        }
        RuntimeChange::DelPort { bridge, port } => {
            let b = new
                .bridge_mut(bridge)
                .ok_or_else(|| SwitchError::NoSuchBridge(bridge.clone()))?;
            let before = b.ports.len();
            b.ports.retain(|p| &p.name != port);
            if b.ports.len() == before {
                return Err(SwitchError::NoSuchPort {
                    bridge: bridge.clone(),
                    port: port.clone(),
                });
            }
        }
        RuntimeChange::AddFlow { .. } | RuntimeChange::DelFlows { .. } => return Ok(None),
    }
    new.check_names()?;
    Ok(Some(new))
}
