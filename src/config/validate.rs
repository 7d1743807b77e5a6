//! From the raw schema to a typed, checked `Config`.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::{ConfigError, SourceMap};
use super::port::{check_ifname, validate_port, PortArgs};
use super::raw::{RawBridge, RawDatapath, RawFailMode, RawFile, RawGlobal, RawPort, RawRxqAssign};
use super::{
    BridgeConfig, Config, DatapathType, FailMode, GlobalConfig, McastSnoopingConfig, PortConfig,
    PortType, RxqAssign, VlanMode,
};

pub(super) fn parse(text: &str, file: Option<&Path>) -> Result<Config, ConfigError> {
    let map = SourceMap::new(file, text);
    let raw: RawFile =
        toml::from_str(text).map_err(|e| map.error(e.span(), toml_message(e.message())))?;
    let global = match raw.global {
        Some(g) => global(&map, g.into_inner())?,
        None => GlobalConfig::default(),
    };
    let mut bridges = Vec::with_capacity(raw.bridge.len());
    let mut bridge_names: HashSet<String> = HashSet::new();
    let mut port_names: HashSet<String> = HashSet::new();
    for b in raw.bridge {
        let b = b.into_inner();
        let name_span = b.name.span();
        let bridge = bridge(&map, b)?;
        if !bridge_names.insert(bridge.name.clone()) {
            return Err(map.error(
                Some(name_span),
                format!(
                    "duplicate bridge name '{}': each bridge needs its own name",
                    bridge.name
                ),
            ));
        }
        if port_names.contains(&bridge.name) {
            return Err(map.error(
                Some(name_span),
                format!("bridge name '{}' is already used by a port", bridge.name),
            ));
        }
        port_names.insert(bridge.name.clone());
        bridges.push(bridge);
    }
    // Port names are unique switch-wide (as in OVS), and a port can't take a bridge's name
    // (that is the bridge's local port). Checked after all bridges are known, with spans.
    let raw_again: RawFile = toml::from_str(text).map_err(|e| map.error(e.span(), e.message()))?;
    let mut seen: HashSet<String> = HashSet::new();
    for b in &raw_again.bridge {
        for p in &b.get_ref().port {
            let name = p.get_ref().name.get_ref();
            if bridge_names.contains(name) {
                return Err(map.error(
                    Some(p.get_ref().name.span()),
                    format!("port name '{name}' is already used by a bridge (its local port)"),
                ));
            }
            if !seen.insert(name.clone()) {
                return Err(map.error(
                    Some(p.get_ref().name.span()),
                    format!("duplicate port name '{name}': port names must be unique across all bridges"),
                ));
            }
        }
    }
    Ok(Config { global, bridges })
}

/// toml's messages span lines and name Rust types; make them one readable line.
fn toml_message(m: &str) -> String {
    m.trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(", ")
        .replace("expected i64", "expected an integer")
}

fn global(map: &SourceMap<'_>, g: RawGlobal) -> Result<GlobalConfig, ConfigError> {
    let mut out = GlobalConfig::default();
    if let Some(cores) = g.pmd_cores {
        let span = cores.span();
        let cores = cores.into_inner();
        // Empty is allowed: no PMD threads, the non-PMD thread forwards (tiny hosts, tests).
        let _ = span;
        // The cores the daemon may use, as they were before it took the PMD cores out of
        // its own mask (a reload validates against the same set as the start did).
        let usable = crate::pmd::affinity::usable_cores();
        let mut seen = HashSet::new();
        out.pmd_cores.clear();
        for c in cores {
            let v = *c.get_ref();
            if v < 0 || !usable.contains(&(v as usize)) {
                return Err(map.error(
                    Some(c.span()),
                    format!("pmd_cores: {v} is not a core id this process may use (usable cores: {usable:?})"),
                ));
            }
            if !seen.insert(v) {
                return Err(map.error(Some(c.span()), format!("pmd_cores: core {v} listed twice")));
            }
            out.pmd_cores.push(v as usize);
        }
    }
    if let Some(dir) = g.run_dir {
        if dir.get_ref().is_empty() {
            return Err(map.error(
                Some(dir.span()),
                "run_dir is empty: expected a directory path",
            ));
        }
        out.run_dir = PathBuf::from(dir.into_inner());
    }
    if let Some(level) = g.log_level {
        if tracing_subscriber::EnvFilter::try_new(level.get_ref()).is_err() {
            return Err(map.error(
                Some(level.span()),
                format!(
                    "log_level '{}' is not a log filter (expected error, warn, info, debug or trace)",
                    level.get_ref()
                ),
            ));
        }
        out.log_level = level.into_inner();
    }
    if let Some(p) = g.emc_insert_inv_prob {
        out.emc_insert_inv_prob =
            ranged(map, &p, 0, u32::MAX as i64, "emc_insert_inv_prob")? as u32;
    }
    if let Some(b) = g.emc_auto_bypass {
        out.emc_auto_bypass = b;
    }
    if let Some(t) = g.tx_flush_interval_us {
        out.tx_flush_interval_us = ranged(map, &t, 0, 1_000_000, "tx_flush_interval_us")? as u32;
    }
    if let Some(t) = g.pmd_max_sleep_us {
        out.pmd_max_sleep_us = ranged(map, &t, 0, 10_000, "pmd_max_sleep_us")? as u32;
    }
    if let Some(t) = g.pmd_batch_wait_us {
        out.pmd_batch_wait_us = ranged(map, &t, 0, 1_000, "pmd_batch_wait_us")? as u32;
    }
    if let Some(f) = g.afxdp_frames {
        let n = ranged(map, &f, 4096, 1 << 20, "afxdp_frames")?;
        if n % FRAMES_PER_HUGE_PAGE != 0 {
            return Err(map.error(
                Some(f.span()),
                format!(
                    "afxdp_frames = {n} is not a multiple of {FRAMES_PER_HUGE_PAGE} \
                     (the region is allocated in 2 MiB pages when it can be)"
                ),
            ));
        }
        out.afxdp_frames = n as u32;
    }
    if let Some(m) = g.max_flows {
        out.max_flows = ranged(map, &m, 1, 10_000_000, "max_flows")? as usize;
    }
    if let Some(r) = g.rxq_assign {
        out.rxq_assign = match r.into_inner() {
            RawRxqAssign::Cycles => RxqAssign::Cycles,
            RawRxqAssign::Roundrobin => RxqAssign::RoundRobin,
        };
    }
    Ok(out)
}

/// 4 KiB frames in one 2 MiB huge page.
const FRAMES_PER_HUGE_PAGE: i64 = 512;

fn ranged(
    map: &SourceMap<'_>,
    v: &Spanned<i64>,
    lo: i64,
    hi: i64,
    what: &str,
) -> Result<i64, ConfigError> {
    let x = *v.get_ref();
    if x < lo || x > hi {
        return Err(map.error(
            Some(v.span()),
            format!("{what} = {x} is out of range (expected {lo}..={hi})"),
        ));
    }
    Ok(x)
}

fn bridge(map: &SourceMap<'_>, b: RawBridge) -> Result<BridgeConfig, ConfigError> {
    let name_span = b.name.span();
    let name = b.name.into_inner();
    check_ifname(&name, "bridge").map_err(|m| map.error(Some(name_span.clone()), m))?;
    let datapath = match b.datapath.map(Spanned::into_inner) {
        None | Some(RawDatapath::Netdev) => DatapathType::Netdev,
        Some(RawDatapath::Kernel) => DatapathType::Kernel,
    };
    let fail_mode = match b.fail_mode.map(Spanned::into_inner) {
        None | Some(RawFailMode::Standalone) => FailMode::Standalone,
        Some(RawFailMode::Secure) => FailMode::Secure,
    };
    let mut mcast = McastSnoopingConfig::default();
    if let Some(m) = b.mcast_snooping {
        let m = m.into_inner();
        mcast.enabled = m.enabled.unwrap_or(mcast.enabled);
        mcast.flood_reports = m.flood_reports.unwrap_or(mcast.flood_reports);
        mcast.flood_unregistered = m.flood_unregistered.unwrap_or(mcast.flood_unregistered);
        if let Some(a) = m.aging_time {
            mcast.aging_time = ranged(map, &a, 15, 3600, "mcast_snooping.aging_time")? as u32;
        }
        if let Some(t) = m.table_size {
            mcast.table_size = ranged(map, &t, 1, 1_000_000, "mcast_snooping.table_size")? as u32;
        }
    }
    let mut ports = Vec::with_capacity(b.port.len());
    for p in b.port {
        ports.push(port(map, p.into_inner(), datapath)?);
    }
    let mut flows = Vec::with_capacity(b.flows.len());
    for f in b.flows {
        check_flow_text(f.get_ref(), true)
            .map_err(|m| map.error(Some(f.span()), format!("bad flow \"{}\": {m}", f.get_ref())))?;
        flows.push(f.into_inner());
    }
    Ok(BridgeConfig {
        name,
        datapath,
        fail_mode,
        mcast_snooping: mcast,
        ports,
        flows,
    })
}

fn port(
    map: &SourceMap<'_>,
    p: RawPort,
    datapath: DatapathType,
) -> Result<PortConfig, ConfigError> {
    let at = |span: Range<usize>| move |e: ConfigError| map.error(Some(span.clone()), e.message);
    let port_type: PortType = p
        .port_type
        .get_ref()
        .parse()
        .map_err(at(p.port_type.span()))?;
    let mut options = BTreeMap::new();
    let mut option_spans = BTreeMap::new();
    if let Some(opts) = p.options {
        let whole = opts.span();
        for (k, v) in opts.into_inner() {
            let s = match v.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(map.error(
                        Some(v.span()),
                        format!(
                            "option {k}: expected a string, integer or boolean, found {}",
                            other.type_str()
                        ),
                    ))
                }
            };
            option_spans.insert(k.clone(), v.span());
            options.insert(k, s);
        }
        option_spans.insert(String::new(), whole);
    }
    let vlan_mode = match &p.vlan_mode {
        Some(m) => Some(m.get_ref().parse::<VlanMode>().map_err(at(m.span()))?),
        None => None,
    };
    let tag = match &p.tag {
        Some(t) => Some(vlan_id(map, t, 1, "tag")?),
        None => None,
    };
    let trunks = match &p.trunks {
        Some(ts) => ts
            .get_ref()
            .iter()
            .map(|t| vlan_id(map, t, 0, "trunks"))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let name = p.name.get_ref().clone();
    let spec = PortArgs {
        name,
        port_type,
        options,
        vlan_mode,
        tag,
        trunks,
    };
    let name_span = p.name.span();
    validate_port(spec, datapath).map_err(|e| {
        // Point at the most specific thing the message is about.
        let span = e
            .option
            .as_ref()
            .and_then(|o| option_spans.get(o).or_else(|| option_spans.get("")))
            .cloned()
            .or_else(|| match e.field {
                Some("tag") => p.tag.as_ref().map(Spanned::span),
                Some("trunks") => p.trunks.as_ref().map(Spanned::span),
                Some("vlan_mode") => p.vlan_mode.as_ref().map(Spanned::span),
                Some("type") => Some(p.port_type.span()),
                _ => None,
            })
            .unwrap_or(name_span);
        map.error(Some(span), e.message)
    })
}

fn vlan_id(map: &SourceMap<'_>, v: &Spanned<i64>, lo: i64, what: &str) -> Result<u16, ConfigError> {
    let x = *v.get_ref();
    if !(lo..=4094).contains(&x) {
        return Err(map.error(
            Some(v.span()),
            format!("{what}: VLAN {x} is out of range (expected {lo}..=4094)"),
        ));
    }
    Ok(x as u16)
}

/// Checks a flow in ovs-ofctl form (`table=0,priority=10,ip,actions=NORMAL`) with the
/// translator's own parser, so the config accepts exactly what `add-flow` does.
/// `need_actions` is false for `del-flows` matches. Returns what is wrong.
pub fn check_flow_text(text: &str, need_actions: bool) -> Result<(), String> {
    if need_actions {
        crate::ofproto::parse_flow(text)
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else {
        match crate::ofproto::parse_selector(text) {
            Ok((_, None)) => Ok(()),
            Ok((_, Some(_))) => Err("a match for deleting flows takes no actions=".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Bridge and port names must be unique switch-wide.
pub(super) fn check_names(cfg: &Config) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for b in &cfg.bridges {
        if !names.insert(b.name.as_str()) {
            return Err(ConfigError::plain(format!(
                "bridge or port name '{}' is already in use",
                b.name
            )));
        }
    }
    for b in &cfg.bridges {
        for p in &b.ports {
            if !names.insert(p.name.as_str()) {
                return Err(ConfigError::plain(format!(
                    "bridge or port name '{}' is already in use",
                    p.name
                )));
            }
        }
    }
    Ok(())
}
