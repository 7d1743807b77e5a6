//! The switch.toml schema exactly as written, with spans kept for error messages.
//!
//! These types only describe the syntax (serde + toml, unknown keys rejected); `validate`
//! turns them into the typed `Config` and checks everything that needs more than one value.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    #[serde(default)]
    pub global: Option<Spanned<RawGlobal>>,
    #[serde(default)]
    pub bridge: Vec<Spanned<RawBridge>>,
}

/// `[global]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGlobal {
    pub pmd_cores: Option<Spanned<Vec<Spanned<i64>>>>,
    pub run_dir: Option<Spanned<String>>,
    pub log_level: Option<Spanned<String>>,
    pub emc_insert_inv_prob: Option<Spanned<i64>>,
    pub emc_auto_bypass: Option<bool>,
    pub max_flows: Option<Spanned<i64>>,
    pub rxq_assign: Option<Spanned<RawRxqAssign>>,
    pub tx_flush_interval_us: Option<Spanned<i64>>,
    pub pmd_max_sleep_us: Option<Spanned<i64>>,
    pub pmd_batch_wait_us: Option<Spanned<i64>>,
    pub afxdp_frames: Option<Spanned<i64>>,
}

/// `rxq_assign`.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawRxqAssign {
    Cycles,
    Roundrobin,
}

/// `[[bridge]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBridge {
    pub name: Spanned<String>,
    pub datapath: Option<Spanned<RawDatapath>>,
    pub fail_mode: Option<Spanned<RawFailMode>>,
    pub mcast_snooping: Option<Spanned<RawMcastSnooping>>,
    #[serde(default)]
    pub port: Vec<Spanned<RawPort>>,
    #[serde(default)]
    pub flows: Vec<Spanned<String>>,
}

/// `datapath`.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawDatapath {
    Netdev,
    Kernel,
}

/// `fail_mode`.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawFailMode {
    Standalone,
    Secure,
}

/// `[bridge.mcast_snooping]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMcastSnooping {
    pub enabled: Option<bool>,
    pub flood_reports: Option<bool>,
    pub flood_unregistered: Option<bool>,
    pub aging_time: Option<Spanned<i64>>,
    pub table_size: Option<Spanned<i64>>,
}

/// `[[bridge.port]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPort {
    pub name: Spanned<String>,
    #[serde(rename = "type")]
    pub port_type: Spanned<String>,
    pub options: Option<Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
    pub vlan_mode: Option<Spanned<String>>,
    pub tag: Option<Spanned<i64>>,
    pub trunks: Option<Spanned<Vec<Spanned<i64>>>>,
}
