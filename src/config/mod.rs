//! switch.toml: the schema, its validation, and the typed `Config` the bridge layer runs.
//!
//! Parsing is serde + toml with unknown keys rejected, so a typo is an error rather than a
//! silently ignored setting. Everything the schema alone can't check (duplicate names, VLAN
//! ranges, option values, flow syntax) is checked in `validate`, and every error names the
//! file, the line and column, and what was expected.
//!
//! ```toml
//! [global]
//! pmd_cores = [1]
//! run_dir = "/var/run/rvswitch"
//!
//! [[bridge]]
//! name = "br0"
//! datapath = "netdev"
//! fail_mode = "standalone"
//!
//! [[bridge.port]]
//! name = "rvs-a0"
//! type = "afxdp"
//! options = { xdp_mode = "native", n_rxq = 1 }
//! ```

mod error;
mod port;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use error::ConfigError;
pub use port::parse_port_args;
pub use validate::check_flow_text;

/// Default run directory: control socket and state file live here.
pub const DEFAULT_RUN_DIR: &str = "/var/run/rvswitch";
/// Default flow table bound per PMD (OVS: 65536).
pub const DEFAULT_MAX_FLOWS: usize = 65536;
/// Default EMC insertion inverse probability (OVS: 1 in 100).
pub const DEFAULT_EMC_INSERT_INV_PROB: u32 = 100;

/// The whole switch: global settings plus the bridges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Process-wide settings.
    pub global: GlobalConfig,
    /// Bridges in file order.
    pub bridges: Vec<BridgeConfig>,
}

/// `[global]`: settings of the process and of the userspace datapath.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalConfig {
    /// Cores the PMD threads are pinned to, one thread per core. Empty: no PMD threads;
    /// the non-PMD thread forwards (for tiny hosts and tests).
    pub pmd_cores: Vec<usize>,
    /// Where the control socket and the state file live.
    pub run_dir: PathBuf,
    /// tracing filter directive (e.g. "info", "rvswitch=debug").
    pub log_level: String,
    /// EMC insertion: 1 in N megaflow hits is inserted; 0 disables the EMC.
    pub emc_insert_inv_prob: u32,
    /// Let every PMD time its lookups with and without the EMC (a few hundred batches
    /// each way, every 16,384 batches) and skip EMC lookups while the dpcls alone is
    /// cheaper, as with many more flows than the EMC holds and few megaflows. Not in
    /// OVS, whose EMC is always consulted unless `emc-insert-inv-prob` is 0; false
    /// does the same here.
    pub emc_auto_bypass: bool,
    /// Megaflows per PMD before new ones are refused.
    pub max_flows: usize,
    /// How rx queues are spread over PMDs.
    pub rxq_assign: RxqAssign,
    /// Microseconds a PMD may hold output packets to send them in bigger batches (OVS's
    /// `tx-flush-interval`); 0 sends at the end of every poll iteration.
    pub tx_flush_interval_us: u32,
    /// Longest a PMD may sleep between polls while it keeps up with its load (its
    /// iterations take in fewer than three to four batches), in microseconds (OVS's
    /// `pmd-maxsleep`): spends latency to save the core and batch more; 0 busy-polls.
    pub pmd_max_sleep_us: u32,
    /// Longest a busy-polling PMD spins after a light iteration (no rx queue handed over
    /// a full batch) so that its next poll finds more packets, in microseconds: one
    /// transmit kick and one iteration's overhead then serve more packets, for up to
    /// this much latency under load; 0 polls again at once (as OVS does). Not used while
    /// `pmd_max_sleep_us` is set.
    pub pmd_batch_wait_us: u32,
    /// Frames (4 KiB each) in the region every AF_XDP socket receives into and transmits
    /// from; fixed once the first afxdp port opens. More frames give each socket's fill
    /// ring a larger share when there are many queues.
    pub afxdp_frames: u32,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            pmd_cores: vec![1],
            run_dir: PathBuf::from(DEFAULT_RUN_DIR),
            log_level: "info".to_string(),
            emc_insert_inv_prob: DEFAULT_EMC_INSERT_INV_PROB,
            emc_auto_bypass: true,
            max_flows: DEFAULT_MAX_FLOWS,
            rxq_assign: RxqAssign::Cycles,
            tx_flush_interval_us: 0,
            pmd_max_sleep_us: 0,
            pmd_batch_wait_us: crate::pmd::sleep::DEFAULT_BATCH_WAIT_US,
            afxdp_frames: crate::packet::frames::STORE_FRAMES,
        }
    }
}

/// Rx queue to PMD assignment policy (OVS's `pmd-rxq-assign`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxqAssign {
    /// Busiest queues first onto the least loaded PMD, by measured cycles.
    Cycles,
    /// Queues dealt out in turn.
    RoundRobin,
}

/// Which back end runs a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatapathType {
    /// The userspace datapath (PMD threads), shared by all netdev bridges.
    Netdev,
    /// The Linux kernel's openvswitch module.
    Kernel,
}

impl DatapathType {
    /// The name used in the config file and in commands.
    pub fn as_str(self) -> &'static str {
        match self {
            DatapathType::Netdev => "netdev",
            DatapathType::Kernel => "kernel",
        }
    }
}

impl FromStr for DatapathType {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "netdev" => Ok(DatapathType::Netdev),
            "kernel" => Ok(DatapathType::Kernel),
            _ => Err(ConfigError::plain(format!(
                "unknown datapath '{s}' (expected netdev or kernel)"
            ))),
        }
    }
}

/// What a bridge does when no controller is connected (always, here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Behave as a learning switch (a NORMAL flow is present by default).
    Standalone,
    /// Forward only what configured flows say; drop the rest.
    Secure,
}

/// Multicast snooping settings of one bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McastSnoopingConfig {
    /// Snoop IGMP/MLD and forward group traffic to members only.
    pub enabled: bool,
    /// Flood reports to all ports instead of to mrouter ports only.
    pub flood_reports: bool,
    /// Flood traffic to groups nobody joined (else drop it).
    pub flood_unregistered: bool,
    /// Seconds a membership lives without a new report (OVS default 300).
    pub aging_time: u32,
    /// Maximum number of group entries (OVS default 2048).
    pub table_size: u32,
}

impl Default for McastSnoopingConfig {
    fn default() -> Self {
        McastSnoopingConfig {
            enabled: false,
            flood_reports: false,
            flood_unregistered: true,
            aging_time: 300,
            table_size: 2048,
        }
    }
}

/// One `[[bridge]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Bridge name; also the name of its local internal port.
    pub name: String,
    /// Back end.
    pub datapath: DatapathType,
    /// Behaviour without a controller.
    pub fail_mode: FailMode,
    /// Multicast snooping.
    pub mcast_snooping: McastSnoopingConfig,
    /// Ports in file order (the local port is implicit).
    pub ports: Vec<PortConfig>,
    /// Static flows in ovs-ofctl syntax, installed at start.
    pub flows: Vec<String>,
}

impl BridgeConfig {
    /// A bridge with defaults and no ports, as `add-br` creates it.
    pub fn new(name: &str, datapath: DatapathType) -> Self {
        BridgeConfig {
            name: name.to_string(),
            datapath,
            fail_mode: FailMode::Standalone,
            mcast_snooping: McastSnoopingConfig::default(),
            ports: Vec::new(),
            flows: Vec::new(),
        }
    }
}

/// Port types a config may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortType {
    /// AF_XDP socket on an existing Linux interface.
    Afxdp,
    /// AF_PACKET socket on an existing Linux interface.
    Afpacket,
    /// A tap device rvswitch creates.
    Tap,
    /// A tap device rvswitch creates, as the bridge's (or an extra) local port.
    Internal,
    /// VXLAN tunnel port.
    Vxlan,
    /// Geneve tunnel port.
    Geneve,
    /// GRE tunnel port.
    Gre,
    /// In-memory port for tests.
    Dummy,
}

impl PortType {
    /// Every type, in the order error messages list them.
    pub const ALL: [PortType; 8] = [
        PortType::Afxdp,
        PortType::Afpacket,
        PortType::Tap,
        PortType::Internal,
        PortType::Vxlan,
        PortType::Geneve,
        PortType::Gre,
        PortType::Dummy,
    ];

    /// The name used in the config and in `PortSpec::port_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            PortType::Afxdp => "afxdp",
            PortType::Afpacket => "afpacket",
            PortType::Tap => "tap",
            PortType::Internal => "internal",
            PortType::Vxlan => "vxlan",
            PortType::Geneve => "geneve",
            PortType::Gre => "gre",
            PortType::Dummy => "dummy",
        }
    }

    /// Whether this is a tunnel (needs `remote_ip`).
    pub fn is_tunnel(self) -> bool {
        matches!(self, PortType::Vxlan | PortType::Geneve | PortType::Gre)
    }

    /// Whether the port is a Linux device whose name is limited to 15 bytes.
    pub fn is_linux_device(self) -> bool {
        matches!(
            self,
            PortType::Afxdp | PortType::Afpacket | PortType::Tap | PortType::Internal
        )
    }
}

impl fmt::Display for PortType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PortType {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        PortType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                ConfigError::plain(format!(
                    "unknown port type '{s}' (expected one of: {})",
                    PortType::ALL.map(|t| t.as_str()).join(", ")
                ))
            })
    }
}

/// 802.1Q handling of a port (OVS's vlan_mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VlanMode {
    /// Untagged frames belong to `tag`; tagged frames are dropped.
    Access,
    /// Tagged frames of `trunks` (all if empty) pass; untagged ones are VLAN 0.
    Trunk,
    /// Trunk, and the native VLAN `tag` is sent tagged.
    NativeTagged,
    /// Trunk, and the native VLAN `tag` is sent untagged.
    NativeUntagged,
}

impl VlanMode {
    /// The name used in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            VlanMode::Access => "access",
            VlanMode::Trunk => "trunk",
            VlanMode::NativeTagged => "native-tagged",
            VlanMode::NativeUntagged => "native-untagged",
        }
    }
}

impl FromStr for VlanMode {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "access" => Ok(VlanMode::Access),
            "trunk" => Ok(VlanMode::Trunk),
            "native-tagged" => Ok(VlanMode::NativeTagged),
            "native-untagged" => Ok(VlanMode::NativeUntagged),
            _ => Err(ConfigError::plain(format!(
                "unknown vlan_mode '{s}' (expected access, trunk, native-tagged or native-untagged)"
            ))),
        }
    }
}

/// VLAN settings of a port, already checked for consistency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanConfig {
    /// Mode.
    pub mode: VlanMode,
    /// Access / native VLAN (1..=4094); `None` for a plain trunk.
    pub tag: Option<u16>,
    /// VLANs a trunk carries; empty means all.
    pub trunks: Vec<u16>,
}

impl Default for VlanConfig {
    fn default() -> Self {
        VlanConfig {
            mode: VlanMode::Trunk,
            tag: None,
            trunks: Vec::new(),
        }
    }
}

/// One `[[bridge.port]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Port (and, for Linux-backed types, interface) name.
    pub name: String,
    /// Type.
    pub port_type: PortType,
    /// Type-specific options as strings (`xdp_mode`, `n_rxq`, `remote_ip`, `key`, ...).
    pub options: BTreeMap<String, String>,
    /// VLAN handling.
    pub vlan: VlanConfig,
}

impl PortConfig {
    /// The datapath's view of the port.
    pub fn spec(&self) -> crate::dpif::PortSpec {
        crate::dpif::PortSpec {
            name: self.name.clone(),
            port_type: self.port_type.as_str().to_string(),
            options: self.options.clone(),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: Some(path.to_path_buf()),
            position: None,
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&text, Some(path))
    }

    /// Parses and validates config text; `file` is used in error messages only.
    pub fn parse(text: &str, file: Option<&Path>) -> Result<Config, ConfigError> {
        validate::parse(text, file)
    }

    /// The bridge called `name`.
    pub fn bridge(&self, name: &str) -> Option<&BridgeConfig> {
        self.bridges.iter().find(|b| b.name == name)
    }

    /// The bridge called `name`, mutably.
    pub fn bridge_mut(&mut self, name: &str) -> Option<&mut BridgeConfig> {
        self.bridges.iter_mut().find(|b| b.name == name)
    }

    /// The bridge owning port `port`, and the port.
    pub fn find_port(&self, port: &str) -> Option<(&BridgeConfig, &PortConfig)> {
        self.bridges
            .iter()
            .find_map(|b| b.ports.iter().find(|p| p.name == port).map(|p| (b, p)))
    }

    /// Checks the rules that span bridges (unique names) on a config built in code, as
    /// runtime commands do before applying a change.
    pub fn check_names(&self) -> Result<(), ConfigError> {
        validate::check_names(self)
    }
}

#[cfg(test)]
mod tests;
