//! Checks of one port (name, type options, VLAN settings), shared by switch.toml and the
//! `add-port` command so both accept exactly the same ports.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::error::ConfigError;
use super::{DatapathType, PortConfig, PortType, VlanConfig, VlanMode};

/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

/// A port as requested, before the cross-field checks.
pub(super) struct PortArgs {
    pub(super) name: String,
    pub(super) port_type: PortType,
    pub(super) options: BTreeMap<String, String>,
    pub(super) vlan_mode: Option<VlanMode>,
    pub(super) tag: Option<u16>,
    pub(super) trunks: Vec<u16>,
}

/// A port check failure, saying which field or option it is about so the caller can point
/// at its line.
pub(super) struct PortError {
    /// The option at fault, if any.
    pub(super) option: Option<String>,
    /// The field at fault ("tag", "trunks", "vlan_mode", "type"), if any.
    pub(super) field: Option<&'static str>,
    /// What was wrong.
    pub(super) message: String,
}

impl From<PortError> for ConfigError {
    fn from(e: PortError) -> Self {
        ConfigError::plain(e.message)
    }
}

fn field_err(field: &'static str, message: String) -> PortError {
    PortError {
        option: None,
        field: Some(field),
        message,
    }
}

fn option_err(option: &str, message: String) -> PortError {
    PortError {
        option: Some(option.to_string()),
        field: None,
        message,
    }
}

/// Options each port type accepts; anything else is a typo.
fn known_options(t: PortType) -> &'static [&'static str] {
    match t {
        PortType::Afxdp => &["xdp_mode", "n_rxq", "n_rxq_desc", "tx_copy_max"],
        PortType::Afpacket => &["qdisc_bypass"],
        PortType::Tap | PortType::Internal => &[],
        PortType::Vxlan | PortType::Geneve | PortType::Gre => &[
            "remote_ip",
            "local_ip",
            "key",
            "dst_port",
            "csum",
            "ttl",
            "tos",
            "df_default",
            "vport",
        ],
        PortType::Dummy => &["n_rxq"],
    }
}

/// Checks one port's name, options and VLAN settings and builds its `PortConfig`.
pub(super) fn validate_port(p: PortArgs, datapath: DatapathType) -> Result<PortConfig, PortError> {
    if p.name.is_empty() {
        return Err(PortError {
            option: None,
            field: None,
            message: "port name is empty".into(),
        });
    }
    if p.port_type.is_linux_device() {
        check_ifname(&p.name, "port").map_err(|m| PortError {
            option: None,
            field: None,
            message: m,
        })?;
    }
    if datapath == DatapathType::Kernel && matches!(p.port_type, PortType::Afxdp | PortType::Dummy)
    {
        return Err(field_err(
            "type",
            format!(
                "port type '{}' needs datapath = \"netdev\" (the kernel datapath takes afpacket, tap, internal and tunnel ports)",
                p.port_type
            ),
        ));
    }
    let known = known_options(p.port_type);
    for (k, v) in &p.options {
        if !known.contains(&k.as_str()) {
            let expected = if known.is_empty() {
                format!("a {} port takes no options", p.port_type)
            } else {
                format!("expected one of: {}", known.join(", "))
            };
            return Err(option_err(
                k,
                format!(
                    "unknown option '{k}' for a {} port ({expected})",
                    p.port_type
                ),
            ));
        }
        let bad = |what: &str| option_err(k, format!("option {k} = \"{v}\": expected {what}"));
        match k.as_str() {
            "xdp_mode"
                if !matches!(
                    v.as_str(),
                    "best" | "generic" | "native" | "native-with-zerocopy"
                ) =>
            {
                return Err(bad("best, generic, native or native-with-zerocopy"))
            }
            "n_rxq"
                if p.port_type == PortType::Dummy && !matches!(v.parse::<u32>(), Ok(1..=64)) =>
            {
                return Err(bad("an integer from 1 to 64"))
            }
            "n_rxq" if !matches!(v.parse::<u32>(), Ok(1..=256)) => {
                return Err(bad("an integer from 1 to 256"))
            }
            "n_rxq_desc" if crate::netdev::afxdp::parse_n_rxq_desc(v).is_err() => {
                return Err(bad(&format!(
                    "a power of two from 64 to {}",
                    crate::netdev::afxdp::RX_RING_MAX
                )))
            }
            "tx_copy_max" if crate::netdev::afxdp::parse_tx_copy_max(v).is_err() => {
                return Err(bad(&format!(
                    "a length in bytes from 0 to {}",
                    crate::packet::buffer::MAX_FRAME
                )))
            }
            "remote_ip" if v != "flow" && v.parse::<IpAddr>().is_err() => {
                return Err(bad("an IPv4 or IPv6 address, or \"flow\""))
            }
            "local_ip" if v.parse::<IpAddr>().is_err() => {
                return Err(bad("an IPv4 or IPv6 address"))
            }
            "vport" if datapath != DatapathType::Kernel => {
                return Err(option_err(
                    k,
                    format!(
                        "only the kernel datapath has vports (this bridge's datapath is {})",
                        datapath.as_str()
                    ),
                ))
            }
            "vport" if !matches!(v.as_str(), "netdev" | "compat") => {
                return Err(bad("netdev or compat (kernel datapath only)"))
            }
            "key" if v != "flow" && parse_u64(v).is_none() => {
                return Err(bad("an integer or \"flow\""))
            }
            "dst_port" if v.parse::<u16>().map_or(true, |p| p == 0) => {
                return Err(bad("a UDP port 1..65535"))
            }
            "ttl" if !matches!(v.parse::<u8>(), Ok(1..)) => return Err(bad("a TTL 1..255")),
            "tos" if v.parse::<u8>().is_err() => return Err(bad("0..255")),
            "csum" | "qdisc_bypass" | "df_default" if !matches!(v.as_str(), "true" | "false") => {
                return Err(bad("true or false"))
            }
            _ => {}
        }
    }
    if p.port_type.is_tunnel() && !p.options.contains_key("remote_ip") {
        return Err(PortError {
            option: Some(String::new()),
            field: None,
            message: format!("{} port '{}' needs option remote_ip", p.port_type, p.name),
        });
    }
    if p.port_type.is_tunnel() {
        // The translator's own parser has the last word on tunnel options (`vport` is the
        // kernel back end's, not the translator's).
        let mut opts = p.options.clone();
        opts.remove("vport");
        if let Err(e) =
            crate::ofproto::tunnel::TunnelConfig::from_options(&p.name, p.port_type.as_str(), &opts)
        {
            return Err(option_err(&e.option, e.to_string()));
        }
    }
    let mode = p.vlan_mode.unwrap_or(if p.tag.is_some() {
        VlanMode::Access
    } else {
        VlanMode::Trunk
    });
    match mode {
        VlanMode::Access => {
            if p.tag.is_none() {
                return Err(field_err(
                    "vlan_mode",
                    "vlan_mode access needs a tag (1..=4094)".into(),
                ));
            }
            if !p.trunks.is_empty() {
                return Err(field_err(
                    "trunks",
                    "trunks make no sense with vlan_mode access".into(),
                ));
            }
        }
        VlanMode::Trunk => {
            if p.tag.is_some() {
                return Err(field_err(
                    "tag",
                    "a tag needs vlan_mode access, native-tagged or native-untagged (not trunk)"
                        .into(),
                ));
            }
        }
        VlanMode::NativeTagged | VlanMode::NativeUntagged => {
            if p.tag.is_none() {
                return Err(field_err(
                    "vlan_mode",
                    format!("vlan_mode {} needs a tag (the native VLAN)", mode.as_str()),
                ));
            }
        }
    }
    Ok(PortConfig {
        name: p.name,
        port_type: p.port_type,
        options: p.options,
        vlan: VlanConfig {
            mode,
            tag: p.tag,
            trunks: p.trunks,
        },
    })
}

/// Builds a port from `add-port` arguments: `type=T`, `tag=N`, `vlan_mode=M`,
/// `trunks=A,B`, and any other `key=value` as a type option.
pub fn parse_port_args(
    name: &str,
    args: &[String],
    datapath: DatapathType,
) -> Result<PortConfig, ConfigError> {
    let mut port_type = None;
    let mut options = BTreeMap::new();
    let mut vlan_mode = None;
    let mut tag = None;
    let mut trunks = Vec::new();
    for a in args {
        let (k, v) = a.split_once('=').ok_or_else(|| {
            ConfigError::plain(format!(
                "'{a}': expected key=value (type=afxdp, tag=10, n_rxq=2, ...)"
            ))
        })?;
        match k {
            "type" => port_type = Some(v.parse::<PortType>()?),
            "vlan_mode" => vlan_mode = Some(v.parse::<VlanMode>()?),
            "tag" => {
                tag = Some(match v.parse::<u16>() {
                    Ok(t @ 1..=4094) => t,
                    _ => {
                        return Err(ConfigError::plain(format!(
                            "tag={v}: expected a VLAN id 1..=4094"
                        )))
                    }
                })
            }
            "trunks" => {
                for t in v.split(',') {
                    match t.trim().parse::<u16>() {
                        Ok(t @ 0..=4094) => trunks.push(t),
                        _ => {
                            return Err(ConfigError::plain(format!(
                                "trunks={v}: '{t}' is not a VLAN id 0..=4094"
                            )))
                        }
                    }
                }
            }
            _ => {
                options.insert(k.to_string(), v.to_string());
            }
        }
    }
    let default_type = match datapath {
        DatapathType::Netdev => PortType::Afxdp,
        DatapathType::Kernel => PortType::Afpacket,
    };
    let args = PortArgs {
        name: name.to_string(),
        port_type: port_type.unwrap_or(default_type),
        options,
        vlan_mode,
        tag,
        trunks,
    };
    Ok(validate_port(args, datapath)?)
}

pub(super) fn check_ifname(name: &str, what: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} name is empty"));
    }
    if name.len() > IFNAME_MAX {
        return Err(format!(
            "{what} name '{name}' is {} bytes long: Linux interface names are at most {IFNAME_MAX}",
            name.len()
        ));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == ':' || c.is_control())
        || name == "."
        || name == ".."
    {
        return Err(format!(
            "{what} name '{name}' is not a valid interface name (no spaces, '/' or ':')"
        ));
    }
    Ok(())
}

fn parse_u64(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}
