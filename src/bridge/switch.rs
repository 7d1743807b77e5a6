//! The running switch: datapaths, bridges and their ports, kept in line with a `Config`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::{BridgeConfig, Config, ConfigError, DatapathType, GlobalConfig, PortConfig};
use crate::dpif::{Dpif, DpifError, PortSpec};
use crate::packet::OdpPort;

use super::diff::{plan, Step};
use super::state::{RuntimeChange, StateError, StateFile, STATE_FILE_NAME};

/// Errors of the bridge layer, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// The request or resulting config is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A datapath refused an operation.
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

/// Opens datapaths of each type: the production one builds the userspace and kernel back
/// ends, tests may hand in their own.
pub trait DatapathOpener: Send {
    /// Opens (creating if needed) the datapath of type `kind`.
    fn open(&self, kind: DatapathType, global: &GlobalConfig) -> Result<Arc<dyn Dpif>, DpifError>;
}

/// A bridge as it runs: its settings and the datapath port of each of its ports.
pub(crate) struct BridgeRuntime {
    pub(crate) config: BridgeConfig,
    pub(crate) dpif: Arc<dyn Dpif>,
    /// The local internal port, if it could be created.
    pub(crate) local_port: Option<OdpPort>,
    /// Datapath port numbers of the configured ports.
    pub(crate) ports: BTreeMap<String, OdpPort>,
}

pub(crate) struct SwitchInner {
    pub(crate) config: Config,
    opener: Box<dyn DatapathOpener>,
    pub(crate) datapaths: BTreeMap<DatapathType, Arc<dyn Dpif>>,
    pub(crate) bridges: BTreeMap<String, BridgeRuntime>,
    state: Option<StateFile>,
}

/// The whole switch. Shared between the main thread and the control socket's threads;
/// every change goes through `reconfigure` under one lock, so commands never interleave.
pub struct Switch {
    inner: Mutex<SwitchInner>,
}

impl Switch {
    /// Builds everything `config` describes, then replays the runtime-change journal from
    /// `<run_dir>/state.json` (unless `keep_state` is false). Steps that fail are logged and
    /// skipped, as OVS does with a port it can't open.
    pub fn start(
        config: Config,
        opener: Box<dyn DatapathOpener>,
        keep_state: bool,
    ) -> Result<Arc<Switch>, SwitchError> {
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
                opener,
                datapaths: BTreeMap::new(),
                bridges: BTreeMap::new(),
                state: None,
            }),
        });
        {
            let mut inner = switch.lock();
            if let Err(e) = inner.reconfigure(config) {
                tracing::warn!("startup: {e}");
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
                tracing::info!(
                    "replayed {} runtime change(s) from {}",
                    state.changes().len(),
                    state.path().display()
                );
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

    /// The effective configuration (file plus runtime changes).
    pub fn config(&self) -> Config {
        self.lock().config.clone()
    }

    /// Removes every bridge (closing its ports: XDP programs detached, taps deleted) and
    /// destroys the datapaths (PMD threads joined).
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        let global = inner.config.global.clone();
        if let Err(e) = inner.reconfigure(Config {
            global,
            bridges: Vec::new(),
        }) {
            tracing::warn!("shutdown: {e}");
        }
        for (kind, dp) in std::mem::take(&mut inner.datapaths) {
            if let Err(e) = dp.destroy() {
                tracing::warn!("destroying {} datapath: {e}", kind.as_str());
            }
        }
    }
}

impl SwitchInner {
    pub(crate) fn bridge(&self, name: &str) -> Result<&BridgeRuntime, SwitchError> {
        self.bridges
            .get(name)
            .ok_or_else(|| SwitchError::NoSuchBridge(name.to_string()))
    }

    /// Turns one runtime command into a new config and applies it.
    fn apply_change(&mut self, change: &RuntimeChange) -> Result<(), SwitchError> {
        let mut new = self.config.clone();
        match change {
            RuntimeChange::AddBridge { bridge, datapath } => {
                if new.bridge(bridge).is_some() {
                    return Err(
                        ConfigError::plain(format!("bridge {bridge} already exists")).into(),
                    );
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
            RuntimeChange::AddFlow { bridge, flow } => {
                crate::config::check_flow_text(flow, true)
                    .map_err(|m| ConfigError::plain(format!("bad flow \"{flow}\": {m}")))?;
                let b = new
                    .bridge_mut(bridge)
                    .ok_or_else(|| SwitchError::NoSuchBridge(bridge.clone()))?;
                b.flows.push(flow.clone());
            }
            RuntimeChange::DelFlows { bridge, matching } => {
                if let Some(m) = matching {
                    crate::config::check_flow_text(m, false)
                        .map_err(|e| ConfigError::plain(format!("bad match \"{m}\": {e}")))?;
                }
                let b = new
                    .bridge_mut(bridge)
                    .ok_or_else(|| SwitchError::NoSuchBridge(bridge.clone()))?;
                match matching {
                    None => b.flows.clear(),
                    Some(m) => {
                        let m = m.trim().to_string();
                        b.flows.retain(|f| !f.starts_with(m.as_str()));
                    }
                }
            }
        }
        new.check_names()?;
        self.reconfigure(new)
    }

    /// Applies the plan from the current config to `new`. Steps that fail are reported
    /// together; what succeeded stays applied and the stored config says what is running.
    fn reconfigure(&mut self, new: Config) -> Result<(), SwitchError> {
        let steps = plan(&self.config, &new);
        let mut errors = Vec::new();
        let mut running = new.clone();
        let mut failed_bridges: Vec<String> = Vec::new();
        for step in steps {
            let on_failed_bridge = match &step {
                Step::AddPort { bridge, .. } | Step::SetFlows { bridge, .. } => failed_bridges.contains(bridge),
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
                // Keep the stored config truthful: drop what could not be set up.
                match &step {
                    Step::AddBridge { bridge } => running.bridges.retain(|b| b.name != bridge.name),
                    Step::AddPort { bridge, port } => {
                        if let Some(b) = running.bridge_mut(bridge) {
                            b.ports.retain(|p| p.name != port.name);
                        }
                    }
                    _ => {}
                }
            }
        }
        // A bridge that failed to come up takes its ports' steps down with it.
        running
            .bridges
            .retain(|b| self.bridges.contains_key(&b.name));
        for b in &mut running.bridges {
            let live = &self.bridges[&b.name].ports;
            b.ports.retain(|p| live.contains_key(&p.name));
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
            Step::UpdateBridge { bridge } => {
                let b = self
                    .bridges
                    .get_mut(&bridge.name)
                    .ok_or_else(|| SwitchError::NoSuchBridge(bridge.name.clone()))?;
                b.config.fail_mode = bridge.fail_mode;
                b.config.mcast_snooping = bridge.mcast_snooping;
                Ok(())
            }
            Step::AddPort { bridge, port } => self.add_port(bridge, port),
            Step::SetFlows { bridge, flows } => {
                let b = self
                    .bridges
                    .get_mut(bridge)
                    .ok_or_else(|| SwitchError::NoSuchBridge(bridge.clone()))?;
                b.config.flows = flows.clone();
                Ok(())
            }
        }
    }

    fn datapath(
        &mut self,
        kind: DatapathType,
        global: &GlobalConfig,
    ) -> Result<Arc<dyn Dpif>, SwitchError> {
        if let Some(dp) = self.datapaths.get(&kind) {
            return Ok(dp.clone());
        }
        let dp = self
            .opener
            .open(kind, global)
            .map_err(|source| SwitchError::Datapath {
                what: format!("opening the {} datapath", kind.as_str()),
                source,
            })?;
        tracing::info!("opened {} datapath {}", kind.as_str(), dp.name());
        self.datapaths.insert(kind, dp.clone());
        Ok(dp)
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
                tracing::info!("destroying unused {} datapath {}", kind.as_str(), dp.name());
                if let Err(e) = dp.destroy() {
                    tracing::warn!("destroying {} datapath: {e}", kind.as_str());
                }
            }
        }
    }

    fn add_bridge(&mut self, cfg: &BridgeConfig, global: &GlobalConfig) -> Result<(), SwitchError> {
        let dpif = self.datapath(cfg.datapath, global)?;
        // The bridge's local port: an internal (tap) device named after the bridge, as in OVS.
        // A host without tap support still gets a working bridge, minus that port.
        let local = PortSpec {
            name: cfg.name.clone(),
            port_type: "internal".to_string(),
            options: BTreeMap::new(),
        };
        let local_port = match dpif.port_add(&local, None) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!("bridge {}: local port not created: {e}", cfg.name);
                None
            }
        };
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
                dpif,
                local_port,
                ports: BTreeMap::new(),
            },
        );
        Ok(())
    }

    fn del_bridge(&mut self, name: &str) -> Result<(), SwitchError> {
        let ports: Vec<String> = self.bridge(name)?.ports.keys().cloned().collect();
        for p in ports {
            if let Err(e) = self.del_port(name, &p) {
                tracing::warn!("{e}");
            }
        }
        let b = self
            .bridges
            .remove(name)
            .ok_or_else(|| SwitchError::NoSuchBridge(name.to_string()))?;
        if let Some(local) = b.local_port {
            if let Err(e) = b.dpif.port_del(local) {
                tracing::warn!("bridge {name}: removing local port: {e}");
            }
        }
        tracing::info!("deleted bridge {name}");
        Ok(())
    }

    fn add_port(&mut self, bridge: &str, port: &PortConfig) -> Result<(), SwitchError> {
        let b = self
            .bridges
            .get_mut(bridge)
            .ok_or_else(|| SwitchError::NoSuchBridge(bridge.to_string()))?;
        let odp = b
            .dpif
            .port_add(&port.spec(), None)
            .map_err(|source| SwitchError::Datapath {
                what: format!(
                    "bridge {bridge}: adding port {} ({})",
                    port.name, port.port_type
                ),
                source,
            })?;
        b.ports.insert(port.name.clone(), odp);
        b.config.ports.push(port.clone());
        tracing::info!(
            "bridge {bridge}: added port {} ({}) as datapath port {odp}",
            port.name,
            port.port_type
        );
        Ok(())
    }

    fn del_port(&mut self, bridge: &str, port: &str) -> Result<(), SwitchError> {
        let b = self
            .bridges
            .get_mut(bridge)
            .ok_or_else(|| SwitchError::NoSuchBridge(bridge.to_string()))?;
        let odp = b
            .ports
            .remove(port)
            .ok_or_else(|| SwitchError::NoSuchPort {
                bridge: bridge.to_string(),
                port: port.to_string(),
            })?;
        b.config.ports.retain(|p| p.name != port);
        b.dpif
            .port_del(odp)
            .map_err(|source| SwitchError::Datapath {
                what: format!("bridge {bridge}: deleting port {port}"),
                source,
            })?;
        tracing::info!("bridge {bridge}: deleted port {port}");
        Ok(())
    }
}
