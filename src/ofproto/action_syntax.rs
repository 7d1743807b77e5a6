//! The `actions=` part of the flow syntax: parsing into [`OfAction`]s and printing back.
//!
//! Spellings follow ovs-ofctl: `output:2` (or bare `2`), `NORMAL`, `FLOOD`, `ALL`,
//! `IN_PORT`, `LOCAL`, `drop`, `mod_dl_src:MAC`, `mod_nw_dst:IP`, `mod_tp_dst:N`,
//! `mod_vlan_vid:N`, `strip_vlan`, `push_vlan:0x8100`, `set_field:V->FIELD`,
//! `resubmit:N`, `resubmit(P,T)`, `goto_table:N`, `set_tunnel:N`, `dec_ttl`.

use super::flow_syntax::{
    bad, fmt_ipv4, fmt_ipv6, fmt_mac, fmt_ofport, parse_ipv4, parse_ipv6, parse_mac, parse_ofport,
    parse_uint, FlowSyntaxError, SyntaxResult,
};
use super::rule::{ofp_port, OfAction, SetTarget, N_TABLES};

/// Splits at commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out
}

fn parse_set_field(v: &str) -> SyntaxResult<SetTarget> {
    let (val, field) = v
        .split_once("->")
        .ok_or_else(|| bad("set_field", v, "VALUE->FIELD"))?;
    let u = |max: u64, exp: &'static str| parse_uint(field, val, max, exp);
    Ok(match field {
        "eth_src" | "dl_src" => SetTarget::EthSrc(parse_mac(field, val)?),
        "eth_dst" | "dl_dst" => SetTarget::EthDst(parse_mac(field, val)?),
        "ip_src" | "nw_src" => SetTarget::Ipv4Src(parse_ipv4(field, val)?),
        "ip_dst" | "nw_dst" => SetTarget::Ipv4Dst(parse_ipv4(field, val)?),
        "ipv6_src" => SetTarget::Ipv6Src(parse_ipv6(field, val)?),
        "ipv6_dst" => SetTarget::Ipv6Dst(parse_ipv6(field, val)?),
        "nw_tos" => {
            let t = u(255, "a TOS byte with the ECN bits zero")? as u8;
            if t & 3 != 0 {
                return Err(bad(field, val, "a TOS byte with the ECN bits zero"));
            }
            SetTarget::NwTos(t)
        }
        "nw_ttl" => SetTarget::NwTtl(u(255, "a TTL 0-255")? as u8),
        "tp_src" | "tcp_src" | "udp_src" | "sctp_src" => SetTarget::TpSrc(u(0xffff, "a port 0-65535")? as u16),
        "tp_dst" | "tcp_dst" | "udp_dst" | "sctp_dst" => SetTarget::TpDst(u(0xffff, "a port 0-65535")? as u16),
        "vlan_vid" => SetTarget::VlanVid(u(4095, "a VLAN id 0-4095")? as u16),
        "vlan_pcp" => SetTarget::VlanPcp(u(7, "a priority 0-7")? as u8),
        "tun_id" | "tunnel_id" => SetTarget::TunId(u(u64::MAX, "a 64-bit tunnel id")?),
        "tun_src" => SetTarget::TunSrc(parse_ipv4(field, val)?),
        "tun_dst" => SetTarget::TunDst(parse_ipv4(field, val)?),
        "tun_gnv_opt_hdr" => SetTarget::TunGnvOptHdr(u(u32::MAX as u64, "a 32-bit Geneve option header")? as u32),
        "tun_gnv_opt_data" => SetTarget::TunGnvOptData(u(u32::MAX as u64, "32 bits of Geneve option data")? as u32),
        _ => {
            return Err(bad(
                "set_field",
                field,
                "a settable field (eth_src, eth_dst, ip_src, ip_dst, ipv6_src, ipv6_dst, nw_tos, nw_ttl, tp_src, tp_dst, vlan_vid, vlan_pcp, tun_id, tun_src, tun_dst, tun_gnv_opt_hdr, tun_gnv_opt_data)",
            ))
        }
    })
}

fn parse_table(field: &str, v: &str) -> SyntaxResult<u8> {
    Ok(parse_uint(field, v, (N_TABLES - 1) as u64, "a table number 0-254")? as u8)
}

fn parse_resubmit_args(v: &str) -> SyntaxResult<OfAction> {
    let inner = v
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| bad("resubmit", v, "resubmit:PORT or resubmit(PORT,TABLE)"))?;
    let (p, t) = inner
        .split_once(',')
        .ok_or_else(|| bad("resubmit", v, "resubmit(PORT,TABLE)"))?;
    let port = match p.trim() {
        "" => None,
        p => Some(parse_ofport("resubmit", p)?),
    };
    let table = match t.trim() {
        "" => None,
        t => Some(parse_table("resubmit", t)?),
    };
    if port.is_none() && table.is_none() {
        return Err(bad("resubmit", v, "a port or a table (or both)"));
    }
    Ok(OfAction::Resubmit { port, table })
}

/// Parses an action list. `table` is the rule's table, for `goto_table` validation.
pub fn parse_actions(text: &str, table: u8) -> SyntaxResult<Vec<OfAction>> {
    let text = text.trim();
    if text.is_empty() {
        return Err(FlowSyntaxError::BadActions(
            "empty action list (write 'drop' to drop)".into(),
        ));
    }
    let parts = split_top(text);
    if parts.len() == 1 && parts[0].eq_ignore_ascii_case("drop") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in parts {
        if part.is_empty() {
            return Err(FlowSyntaxError::BadActions(format!(
                "empty action in '{text}'"
            )));
        }
        let (name, arg) = match part.find([':', '(']) {
            Some(i) if part.as_bytes()[i] == b':' => (&part[..i], Some(&part[i + 1..])),
            Some(i) => (&part[..i], Some(&part[i..])),
            None => (part, None),
        };
        let arg_of = |what: &'static str| arg.ok_or_else(|| bad(name, "", what));
        let a = match name.to_ascii_lowercase().as_str() {
            "output" => {
                let p = parse_ofport(name, arg_of("output:PORT")?)?;
                if p == ofp_port::NONE || p == ofp_port::TABLE {
                    return Err(bad(
                        name,
                        arg.unwrap_or(""),
                        "a port other than NONE or TABLE",
                    ));
                }
                OfAction::Output(p)
            }
            "normal" if arg.is_none() => OfAction::Output(ofp_port::NORMAL),
            "flood" if arg.is_none() => OfAction::Output(ofp_port::FLOOD),
            "all" if arg.is_none() => OfAction::Output(ofp_port::ALL),
            "in_port" if arg.is_none() => OfAction::Output(ofp_port::IN_PORT),
            "local" if arg.is_none() => OfAction::Output(ofp_port::LOCAL),
            "controller" => {
                return Err(FlowSyntaxError::BadActions(
                    "controller: no OpenFlow controller connections are supported".into(),
                ))
            }
            "drop" => {
                return Err(FlowSyntaxError::BadActions(
                    "'drop' must be the only action".into(),
                ))
            }
            "mod_dl_src" => OfAction::ModDlSrc(parse_mac(name, arg_of("mod_dl_src:MAC")?)?),
            "mod_dl_dst" => OfAction::ModDlDst(parse_mac(name, arg_of("mod_dl_dst:MAC")?)?),
            "mod_nw_src" => OfAction::ModNwSrc(parse_ipv4(name, arg_of("mod_nw_src:IP")?)?),
            "mod_nw_dst" => OfAction::ModNwDst(parse_ipv4(name, arg_of("mod_nw_dst:IP")?)?),
            "mod_nw_tos" => {
                let v = arg_of("mod_nw_tos:TOS")?;
                let t = parse_uint(name, v, 255, "a TOS byte with the ECN bits zero")? as u8;
                if t & 3 != 0 {
                    return Err(bad(name, v, "a TOS byte with the ECN bits zero"));
                }
                OfAction::ModNwTos(t)
            }
            "mod_nw_ttl" => {
                OfAction::ModNwTtl(
                    parse_uint(name, arg_of("mod_nw_ttl:TTL")?, 255, "a TTL 0-255")? as u8,
                )
            }
            "dec_ttl" if arg.is_none() => OfAction::DecTtl,
            "mod_tp_src" => OfAction::ModTpSrc(parse_uint(
                name,
                arg_of("mod_tp_src:PORT")?,
                0xffff,
                "a port 0-65535",
            )? as u16),
            "mod_tp_dst" => OfAction::ModTpDst(parse_uint(
                name,
                arg_of("mod_tp_dst:PORT")?,
                0xffff,
                "a port 0-65535",
            )? as u16),
            "mod_vlan_vid" => OfAction::ModVlanVid(parse_uint(
                name,
                arg_of("mod_vlan_vid:VID")?,
                4095,
                "a VLAN id 0-4095",
            )? as u16),
            "mod_vlan_pcp" => OfAction::ModVlanPcp(parse_uint(
                name,
                arg_of("mod_vlan_pcp:PCP")?,
                7,
                "a priority 0-7",
            )? as u8),
            "strip_vlan" | "pop_vlan" if arg.is_none() => OfAction::PopVlan,
            "push_vlan" => {
                let v = arg_of("push_vlan:TPID")?;
                let t = parse_uint(name, v, 0xffff, "0x8100 or 0x88a8")? as u16;
                if t != 0x8100 && t != 0x88a8 {
                    return Err(bad(name, v, "0x8100 or 0x88a8"));
                }
                OfAction::PushVlan(t)
            }
            "set_field" => OfAction::SetField(parse_set_field(arg_of("set_field:VALUE->FIELD")?)?),
            "set_tunnel" | "set_tunnel64" => OfAction::SetTunnel(parse_uint(
                name,
                arg_of("set_tunnel:ID")?,
                u64::MAX,
                "a tunnel id",
            )?),
            "resubmit" => {
                let v = arg_of("resubmit:PORT or resubmit(PORT,TABLE)")?;
                if v.starts_with('(') {
                    parse_resubmit_args(v)?
                } else {
                    OfAction::Resubmit {
                        port: Some(parse_ofport(name, v)?),
                        table: None,
                    }
                }
            }
            "goto_table" => {
                let t = parse_table(name, arg_of("goto_table:TABLE")?)?;
                if t <= table {
                    return Err(FlowSyntaxError::BadActions(format!(
                        "goto_table:{t} must name a table after this rule's table {table}"
                    )));
                }
                OfAction::GotoTable(t)
            }
            _ => {
                if arg.is_none() && part.bytes().all(|b| b.is_ascii_digit()) {
                    OfAction::Output(parse_ofport("output", part)?)
                } else {
                    return Err(FlowSyntaxError::UnknownAction(part.to_string()));
                }
            }
        };
        out.push(a);
    }
    if let Some(i) = out.iter().position(|a| matches!(a, OfAction::GotoTable(_))) {
        if i + 1 != out.len() {
            return Err(FlowSyntaxError::BadActions(
                "goto_table must be the last action".into(),
            ));
        }
    }
    Ok(out)
}

fn fmt_set_target(t: &SetTarget) -> String {
    match t {
        SetTarget::EthSrc(m) => format!("{}->eth_src", fmt_mac(m)),
        SetTarget::EthDst(m) => format!("{}->eth_dst", fmt_mac(m)),
        SetTarget::Ipv4Src(a) => format!("{}->ip_src", fmt_ipv4(*a)),
        SetTarget::Ipv4Dst(a) => format!("{}->ip_dst", fmt_ipv4(*a)),
        SetTarget::Ipv6Src(a) => format!("{}->ipv6_src", fmt_ipv6(a)),
        SetTarget::Ipv6Dst(a) => format!("{}->ipv6_dst", fmt_ipv6(a)),
        SetTarget::NwTos(v) => format!("{v}->nw_tos"),
        SetTarget::NwTtl(v) => format!("{v}->nw_ttl"),
        SetTarget::TpSrc(v) => format!("{v}->tp_src"),
        SetTarget::TpDst(v) => format!("{v}->tp_dst"),
        SetTarget::VlanVid(v) => format!("{v}->vlan_vid"),
        SetTarget::VlanPcp(v) => format!("{v}->vlan_pcp"),
        SetTarget::TunId(v) => format!("{v:#x}->tun_id"),
        SetTarget::TunSrc(a) => format!("{}->tun_src", fmt_ipv4(*a)),
        SetTarget::TunDst(a) => format!("{}->tun_dst", fmt_ipv4(*a)),
        SetTarget::TunGnvOptHdr(v) => format!("{v:#x}->tun_gnv_opt_hdr"),
        SetTarget::TunGnvOptData(v) => format!("{v:#x}->tun_gnv_opt_data"),
    }
}

/// Formats one action.
pub fn format_action(a: &OfAction) -> String {
    match a {
        OfAction::Output(p) if *p >= ofp_port::IN_PORT => fmt_ofport(*p),
        OfAction::Output(p) => format!("output:{p}"),
        OfAction::ModDlSrc(m) => format!("mod_dl_src:{}", fmt_mac(m)),
        OfAction::ModDlDst(m) => format!("mod_dl_dst:{}", fmt_mac(m)),
        OfAction::ModNwSrc(a) => format!("mod_nw_src:{}", fmt_ipv4(*a)),
        OfAction::ModNwDst(a) => format!("mod_nw_dst:{}", fmt_ipv4(*a)),
        OfAction::ModNwTos(v) => format!("mod_nw_tos:{v}"),
        OfAction::ModNwTtl(v) => format!("mod_nw_ttl:{v}"),
        OfAction::DecTtl => "dec_ttl".into(),
        OfAction::ModTpSrc(v) => format!("mod_tp_src:{v}"),
        OfAction::ModTpDst(v) => format!("mod_tp_dst:{v}"),
        OfAction::ModVlanVid(v) => format!("mod_vlan_vid:{v}"),
        OfAction::ModVlanPcp(v) => format!("mod_vlan_pcp:{v}"),
        OfAction::PopVlan => "pop_vlan".into(),
        OfAction::PushVlan(t) => format!("push_vlan:{t:#06x}"),
        OfAction::SetField(t) => format!("set_field:{}", fmt_set_target(t)),
        OfAction::SetTunnel(v) => format!("set_tunnel:{v:#x}"),
        OfAction::Resubmit {
            port: Some(p),
            table: None,
        } => format!("resubmit:{}", fmt_ofport(*p)),
        OfAction::Resubmit { port, table } => format!(
            "resubmit({},{})",
            port.map(fmt_ofport).unwrap_or_default(),
            table.map(|t| t.to_string()).unwrap_or_default()
        ),
        OfAction::GotoTable(t) => format!("goto_table:{t}"),
    }
}

/// Formats an action list (`drop` when empty).
pub fn format_actions(actions: &[OfAction]) -> String {
    if actions.is_empty() {
        return "drop".into();
    }
    actions
        .iter()
        .map(format_action)
        .collect::<Vec<_>>()
        .join(",")
}
