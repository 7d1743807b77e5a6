//! ovs-ofctl-compatible flow text: `table=0,priority=100,ip,nw_dst=10.0.0.0/24,actions=2`.
//!
//! Parsing a line gives a [`FlowSpec`] (add-flow), a [`FlowSelector`] (del-flows /
//! mod-flows) or a bare `FlowKey` (trace). Printing goes through [`format_flow`], whose
//! output parses back to the same rule. Fields and actions live in `match_syntax` and
//! `action_syntax`; this file holds the line structure, the shared value parsers and the
//! error type. Fields may be separated by commas or white space, as ovs-ofctl allows;
//! `actions=` takes the rest of the line.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::action_syntax::{format_actions, parse_actions};
use super::match_format::format_match;
use super::match_syntax::{parse_match_field, MatchBuilder};
use super::rule::{ofp_port, FlowSelector, FlowSpec, Match, OfPort, RuleOptions, DEFAULT_PRIORITY};
use crate::packet::FlowKey;

/// What was wrong with a flow's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowSyntaxError {
    /// A token is not a field, shorthand or keyword we know.
    #[error("unknown field or keyword '{0}'")]
    UnknownField(String),
    /// A field's value could not be parsed.
    #[error("{field}: bad value '{value}', expected {expected}")]
    BadValue {
        /// The field or action.
        field: String,
        /// The offending text.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A field was used without the match fields it only makes sense with.
    #[error("{field} requires {needs} in the match")]
    MissingPrerequisite {
        /// The field.
        field: String,
        /// What the match must also say.
        needs: &'static str,
    },
    /// An action name we don't know.
    #[error("unknown action '{0}'")]
    UnknownAction(String),
    /// A structural problem with the action list.
    #[error("bad action list: {0}")]
    BadActions(String),
    /// `actions=` missing where required, or given where not allowed.
    #[error("{0}")]
    Structure(String),
}

/// Shorthand for syntax results.
pub type SyntaxResult<T> = Result<T, FlowSyntaxError>;

pub(super) fn bad(field: &str, value: &str, expected: &'static str) -> FlowSyntaxError {
    FlowSyntaxError::BadValue {
        field: field.to_string(),
        value: value.to_string(),
        expected,
    }
}

/// Parses an unsigned integer in decimal or `0x` hex, no larger than `max`.
pub(super) fn parse_uint(
    field: &str,
    s: &str,
    max: u64,
    expected: &'static str,
) -> SyntaxResult<u64> {
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        s.parse::<u64>()
    }
    .map_err(|_| bad(field, s, expected))?;
    if v > max {
        return Err(bad(field, s, expected));
    }
    Ok(v)
}

/// Parses `value` or `value/mask` integers.
pub(super) fn parse_uint_masked(
    field: &str,
    s: &str,
    max: u64,
    expected: &'static str,
) -> SyntaxResult<(u64, u64)> {
    match s.split_once('/') {
        Some((v, m)) => Ok((
            parse_uint(field, v, max, expected)?,
            parse_uint(field, m, max, expected)?,
        )),
        None => Ok((parse_uint(field, s, max, expected)?, max)),
    }
}

/// Parses a MAC `aa:bb:cc:dd:ee:ff`.
pub(super) fn parse_mac(field: &str, s: &str) -> SyntaxResult<[u8; 6]> {
    const EXP: &str = "a MAC address like 00:11:22:33:44:55";
    let mut out = [0u8; 6];
    let mut n = 0;
    for part in s.split(':') {
        if n == 6 || part.is_empty() || part.len() > 2 {
            return Err(bad(field, s, EXP));
        }
        out[n] = u8::from_str_radix(part, 16).map_err(|_| bad(field, s, EXP))?;
        n += 1;
    }
    if n != 6 {
        return Err(bad(field, s, EXP));
    }
    Ok(out)
}

/// Parses `MAC` or `MAC/MASK`.
pub(super) fn parse_mac_masked(field: &str, s: &str) -> SyntaxResult<([u8; 6], [u8; 6])> {
    match s.split_once('/') {
        Some((v, m)) => Ok((parse_mac(field, v)?, parse_mac(field, m)?)),
        None => Ok((parse_mac(field, s)?, [0xff; 6])),
    }
}

/// Parses a dotted-quad IPv4 address.
pub(super) fn parse_ipv4(field: &str, s: &str) -> SyntaxResult<u32> {
    s.parse::<Ipv4Addr>()
        .map(u32::from)
        .map_err(|_| bad(field, s, "an IPv4 address like 10.0.0.1"))
}

/// Parses `A.B.C.D`, `A.B.C.D/N` or `A.B.C.D/M.M.M.M`.
pub(super) fn parse_ipv4_masked(field: &str, s: &str) -> SyntaxResult<(u32, u32)> {
    const EXP: &str = "an IPv4 address with optional /prefix-length or /netmask";
    match s.split_once('/') {
        None => Ok((parse_ipv4(field, s)?, u32::MAX)),
        Some((a, m)) => {
            let addr = parse_ipv4(field, a).map_err(|_| bad(field, s, EXP))?;
            let mask = if m.contains('.') {
                parse_ipv4(field, m).map_err(|_| bad(field, s, EXP))?
            } else {
                let n = m
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 32)
                    .ok_or_else(|| bad(field, s, EXP))?;
                if n == 0 {
                    0
                } else {
                    u32::MAX << (32 - n)
                }
            };
            Ok((addr, mask))
        }
    }
}

/// Parses an IPv6 address.
pub(super) fn parse_ipv6(field: &str, s: &str) -> SyntaxResult<[u8; 16]> {
    s.parse::<Ipv6Addr>()
        .map(|a| a.octets())
        .map_err(|_| bad(field, s, "an IPv6 address like 2001:db8::1"))
}

/// Parses an IPv6 address with optional `/prefix` or `/mask`.
pub(super) fn parse_ipv6_masked(field: &str, s: &str) -> SyntaxResult<([u8; 16], [u8; 16])> {
    const EXP: &str = "an IPv6 address with optional /prefix-length or /mask";
    match s.split_once('/') {
        None => Ok((parse_ipv6(field, s)?, [0xff; 16])),
        Some((a, m)) => {
            let addr = parse_ipv6(field, a).map_err(|_| bad(field, s, EXP))?;
            let mask = if m.contains(':') {
                parse_ipv6(field, m).map_err(|_| bad(field, s, EXP))?
            } else {
                let n = m
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 128)
                    .ok_or_else(|| bad(field, s, EXP))?;
                let bits: u128 = if n == 0 { 0 } else { u128::MAX << (128 - n) };
                bits.to_be_bytes()
            };
            Ok((addr, mask))
        }
    }
}

/// Formats a MAC.
pub(super) fn fmt_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Formats an IPv4 address.
pub(super) fn fmt_ipv4(a: u32) -> String {
    Ipv4Addr::from(a).to_string()
}

/// Formats an IPv6 address.
pub(super) fn fmt_ipv6(a: &[u8; 16]) -> String {
    Ipv6Addr::from(*a).to_string()
}

/// Splits a flow line into tokens at top-level commas/white space; `actions=...` (or the
/// rest after it) is returned separately, untouched.
fn split_line(text: &str) -> (Vec<&str>, Option<&str>) {
    let (head, actions) = match find_actions(text) {
        Some(i) => (&text[..i], Some(text[i + "actions=".len()..].trim())),
        None => (text, None),
    };
    let toks = head
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    (toks, actions)
}

fn find_actions(text: &str) -> Option<usize> {
    let mut start = 0;
    while let Some(i) = text[start..].find("actions=") {
        let at = start + i;
        let prev = text[..at].chars().last();
        if prev.map_or(true, |c| c == ',' || c.is_whitespace()) {
            return Some(at);
        }
        start = at + 1;
    }
    None
}

/// Parses a port given as a number or a reserved name (`LOCAL`, `IN_PORT`, ...).
pub(super) fn parse_ofport(field: &str, s: &str) -> SyntaxResult<OfPort> {
    let named = match s.to_ascii_uppercase().as_str() {
        "IN_PORT" => Some(ofp_port::IN_PORT),
        "NORMAL" => Some(ofp_port::NORMAL),
        "FLOOD" => Some(ofp_port::FLOOD),
        "ALL" => Some(ofp_port::ALL),
        "CONTROLLER" => Some(ofp_port::CONTROLLER),
        "LOCAL" => Some(ofp_port::LOCAL),
        "NONE" | "ANY" => Some(ofp_port::NONE),
        _ => None,
    };
    if let Some(p) = named {
        return Ok(p);
    }
    let v = parse_uint(
        field,
        s,
        0xffff,
        "a port number (1-65279) or LOCAL, IN_PORT, NORMAL, FLOOD, ALL",
    )?;
    Ok(v as OfPort)
}

/// Formats a port number, naming reserved ones.
pub(super) fn fmt_ofport(p: OfPort) -> String {
    match p {
        ofp_port::IN_PORT => "IN_PORT".into(),
        ofp_port::NORMAL => "NORMAL".into(),
        ofp_port::FLOOD => "FLOOD".into(),
        ofp_port::ALL => "ALL".into(),
        ofp_port::CONTROLLER => "CONTROLLER".into(),
        ofp_port::LOCAL => "LOCAL".into(),
        ofp_port::NONE => "NONE".into(),
        n => n.to_string(),
    }
}

/// What kind of line is being parsed: it decides which keywords are allowed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Add,
    Select,
    Key,
}

struct ParsedLine {
    opts: RuleOptions,
    table_given: bool,
    matcher: Match,
    cookie_mask: u64,
    out_port: OfPort,
    actions: Option<String>,
}

fn need<'a>(name: &str, v: Option<&'a str>) -> SyntaxResult<&'a str> {
    v.ok_or_else(|| bad(name, "", "name=value"))
}

fn parse_line(text: &str, kind: LineKind) -> SyntaxResult<ParsedLine> {
    let (toks, actions) = split_line(text);
    let mut opts = RuleOptions {
        priority: DEFAULT_PRIORITY,
        ..Default::default()
    };
    let mut table_given = false;
    let mut cookie_mask = 0;
    let mut out_port = ofp_port::NONE;
    let mut mb = MatchBuilder::default();
    for tok in toks {
        let (name, value) = match tok.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (tok, None),
        };
        match name {
            "table" if kind != LineKind::Key => {
                let v = need(name, value)?;
                let t = parse_uint(name, v, 255, "a table number 0-254 (255 = all)")?;
                if t == 255 && kind == LineKind::Add {
                    return Err(bad(name, v, "a table number 0-254"));
                }
                table_given = t != 255;
                opts.table = t as u8;
            }
            "priority" if kind != LineKind::Key => {
                opts.priority =
                    parse_uint(name, need(name, value)?, 0xffff, "a priority 0-65535")? as u16
            }
            "cookie" if kind != LineKind::Key => {
                let (c, m) =
                    parse_uint_masked(name, need(name, value)?, u64::MAX, "a 64-bit cookie")?;
                opts.cookie = c;
                cookie_mask = m;
            }
            "idle_timeout" if kind == LineKind::Add => {
                opts.idle_timeout =
                    parse_uint(name, need(name, value)?, 0xffff, "seconds 0-65535")? as u16
            }
            "hard_timeout" if kind == LineKind::Add => {
                opts.hard_timeout =
                    parse_uint(name, need(name, value)?, 0xffff, "seconds 0-65535")? as u16
            }
            "out_port" if kind == LineKind::Select => {
                out_port = parse_ofport(name, need(name, value)?)?
            }
            _ => parse_match_field(&mut mb, name, value)?,
        }
    }
    let matcher = mb.finish()?;
    if kind == LineKind::Add && cookie_mask != u64::MAX && cookie_mask != 0 {
        return Err(bad(
            "cookie",
            "/mask",
            "a cookie without a mask when adding flows",
        ));
    }
    Ok(ParsedLine {
        opts,
        table_given,
        matcher,
        cookie_mask,
        out_port,
        actions: actions.map(str::to_string),
    })
}

/// Parses an add-flow line (`actions=` required).
pub fn parse_flow(text: &str) -> SyntaxResult<FlowSpec> {
    let p = parse_line(text, LineKind::Add)?;
    let actions_text = p
        .actions
        .ok_or_else(|| FlowSyntaxError::Structure("must specify an action (actions=...)".into()))?;
    let actions = parse_actions(&actions_text, p.opts.table)?;
    Ok(FlowSpec {
        opts: p.opts,
        matcher: p.matcher,
        actions,
    })
}

/// Parses a del-flows / mod-flows selector. Table defaults to all; `actions=` is
/// returned (parsed) for mod-flows and rejected by callers that don't want it.
pub fn parse_selector(
    text: &str,
) -> SyntaxResult<(FlowSelector, Option<Vec<super::rule::OfAction>>)> {
    let p = parse_line(text, LineKind::Select)?;
    let actions = match &p.actions {
        Some(a) => Some(parse_actions(a, p.opts.table)?),
        None => None,
    };
    Ok((
        FlowSelector {
            table: p.table_given.then_some(p.opts.table),
            matcher: p.matcher,
            priority: p.opts.priority,
            cookie: p.opts.cookie,
            cookie_mask: p.cookie_mask,
            out_port: p.out_port,
        },
        actions,
    ))
}

/// Parses a packet description for tracing: match fields with their values; fields not
/// given are zero. `in_port` is an OpenFlow port.
pub fn parse_flow_key(text: &str) -> SyntaxResult<FlowKey> {
    let p = parse_line(text, LineKind::Key)?;
    if p.actions.is_some() {
        return Err(FlowSyntaxError::Structure(
            "a packet description takes no actions".into(),
        ));
    }
    let mut key = p.matcher.key;
    // dl_vlan / vlan_tci only say "a tag is present": describe it as an 802.1Q tag.
    if key.vlans[0].tpid == super::match_syntax::TPID_PRESENT {
        key.vlans[0].tpid = crate::packet::ethertype::VLAN;
    }
    Ok(key)
}

/// Formats a rule the way it is written: `table=T,priority=P,[cookie=..,][timeouts,]MATCH,actions=...`.
pub fn format_flow(spec: &FlowSpec) -> String {
    let mut s = format!("table={},priority={}", spec.opts.table, spec.opts.priority);
    if spec.opts.cookie != 0 {
        s += &format!(",cookie={:#x}", spec.opts.cookie);
    }
    if spec.opts.idle_timeout != 0 {
        s += &format!(",idle_timeout={}", spec.opts.idle_timeout);
    }
    if spec.opts.hard_timeout != 0 {
        s += &format!(",hard_timeout={}", spec.opts.hard_timeout);
    }
    let m = format_match(&spec.matcher);
    if !m.is_empty() {
        s.push(',');
        s += &m;
    }
    s += ",actions=";
    s += &format_actions(&spec.actions);
    s
}
