//! OVS_FLOW_CMD_* requests and replies: `FlowPut` -> NEW/SET, key -> GET/DEL, replies ->
//! `DpFlow` with counters.

use std::time::{Duration, Instant};

use netlink_packet_core::{DecodeError, NLA_TYPE_MASK};

use crate::dpif::{DpAction, DpFlow, DpFlowStats};
use crate::packet::{FlowKey, FlowMask};

use super::action::{decode_actions, encode_actions, parse_actions, ActionCodecError};
use super::attr::{self, value, RawAttr};
use super::genl::{FlowFamily, OvsMessage};
use super::key_attr::parse_key_attrs;
use super::key_codec::{decode_attrs, encode_match, KeyDecodeError};

/// Why a flow reply could not become a `DpFlow`.
#[derive(Debug, thiserror::Error)]
pub enum FlowDecodeError {
    /// Malformed attributes.
    #[error("malformed flow attributes: {0}")]
    Attr(#[from] DecodeError),
    /// A key this switch cannot represent.
    #[error("flow key: {0}")]
    Key(#[from] KeyDecodeError),
    /// An action this switch cannot represent.
    #[error("flow actions: {0}")]
    Action(#[from] ActionCodecError),
}

/// Builds a NEW or SET request for a megaflow.
pub fn put_request(
    cmd: u8,
    dp_ifindex: i32,
    key: &FlowKey,
    mask: &FlowMask,
    actions: &[DpAction],
    upcall_pid: u32,
    clear: bool,
) -> Result<OvsMessage<FlowFamily>, ActionCodecError> {
    let (ka, ma) = encode_match(key, mask);
    let acts = encode_actions(actions, upcall_pid)?;
    let mut a = vec![
        RawAttr::nested(attr::flow::KEY, &ka),
        RawAttr::nested(attr::flow::MASK, &ma),
        RawAttr::nested(attr::flow::ACTIONS, &acts),
    ];
    if clear {
        a.push(RawAttr::flag(attr::flow::CLEAR));
    }
    Ok(OvsMessage::new(cmd, dp_ifindex, &a))
}

/// Builds a GET or DEL request for one megaflow (the kernel finds it by its key).
pub fn key_request(
    cmd: u8,
    dp_ifindex: i32,
    key: &FlowKey,
    mask: &FlowMask,
) -> OvsMessage<FlowFamily> {
    let (ka, _) = encode_match(key, mask);
    OvsMessage::new(cmd, dp_ifindex, &[RawAttr::nested(attr::flow::KEY, &ka)])
}

/// Milliseconds of CLOCK_MONOTONIC, the clock OVS_FLOW_ATTR_USED is expressed in.
fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Parses only the counters of a flow reply (DEL replies, GET).
pub fn parse_stats(msg: &OvsMessage<FlowFamily>) -> Result<DpFlowStats, DecodeError> {
    let mut s = DpFlowStats::default();
    for nla in msg.nlas() {
        let nla = nla?;
        match nla.kind() & NLA_TYPE_MASK {
            attr::flow::STATS => {
                let v = attr::exact_len(&nla, 16, "flow stats")?;
                s.packets = u64::from_ne_bytes(v[..8].try_into().unwrap());
                s.bytes = u64::from_ne_bytes(v[8..].try_into().unwrap());
            }
            attr::flow::TCP_FLAGS => s.tcp_flags = attr::exact_len(&nla, 1, "tcp flags")?[0] as u16,
            attr::flow::USED => {
                let used = attr::get_u64(&nla, "used")?;
                let idle = monotonic_ms().saturating_sub(used);
                s.used = Instant::now().checked_sub(Duration::from_millis(idle));
            }
            _ => {}
        }
    }
    Ok(s)
}

/// Parses a full flow reply (dump entries).
pub fn parse_flow(msg: &OvsMessage<FlowFamily>) -> Result<DpFlow, FlowDecodeError> {
    let (mut key, mut mask, mut actions) = (None, None, Vec::new());
    for nla in msg.nlas() {
        let nla = nla?;
        match nla.kind() & NLA_TYPE_MASK {
            attr::flow::KEY => key = Some(decode_attrs(&parse_key_attrs(value(&nla))?, false)?),
            attr::flow::MASK => mask = Some(decode_attrs(&parse_key_attrs(value(&nla))?, true)?),
            attr::flow::ACTIONS => actions = decode_actions(&parse_actions(value(&nla))?)?,
            _ => {}
        }
    }
    let key = key.ok_or_else(|| DecodeError::from("flow reply without a key"))?;
    let mask = FlowMask(mask.unwrap_or_else(|| FlowMask::exact().0));
    Ok(DpFlow {
        key: key.masked(&mask),
        mask,
        actions: actions.into(),
        stats: parse_stats(msg)?,
        pmd_core: None,
    })
}

/// A short OVS-style text of the matched fields and actions, for error messages: the
/// module rarely says (in extended ack) what it disliked, so the error says what was sent.
pub fn describe(key: &FlowKey, mask: &FlowMask, actions: &[DpAction]) -> String {
    let (k, m) = (key.masked(mask), &mask.0);
    let mac = |a: &[u8; 6]| {
        a.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let ip = |a: u32| std::net::Ipv4Addr::from(a).to_string();
    let mut f = Vec::new();
    if m.recirc_id != 0 {
        f.push(format!("recirc_id={}", k.recirc_id));
    }
    if m.in_port != 0 {
        f.push(format!("in_port={}", k.in_port));
    }
    if m.tun_id != 0 {
        f.push(format!("tun_id={:#x}", k.tun_id));
    }
    if m.dl_src != [0; 6] {
        f.push(format!("dl_src={}", mac(&k.dl_src)));
    }
    if m.dl_dst != [0; 6] {
        f.push(format!("dl_dst={}", mac(&k.dl_dst)));
    }
    if m.vlans[0].tpid != 0 && k.vlans[0].present() {
        f.push(format!("vlan_tci={:#06x}", k.vlans[0].tci));
    }
    if m.dl_type != 0 {
        f.push(format!("dl_type={:#06x}", k.dl_type));
    }
    if m.nw_src != 0 {
        f.push(format!("nw_src={}", ip(k.nw_src)));
    }
    if m.nw_dst != 0 {
        f.push(format!("nw_dst={}", ip(k.nw_dst)));
    }
    if m.nw_proto != 0 {
        f.push(format!("nw_proto={}", k.nw_proto));
    }
    if m.tp_src != 0 {
        f.push(format!("tp_src={}", k.tp_src));
    }
    if m.tp_dst != 0 {
        f.push(format!("tp_dst={}", k.tp_dst));
    }
    format!("{} actions={actions:?}", f.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_only_matched_fields() {
        let key = FlowKey {
            in_port: 2,
            dl_type: 0x0806,
            nw_dst: 0x0a00_0002,
            tp_dst: 80,
            ..Default::default()
        };
        let mut mask = FlowMask::default();
        mask.0.in_port = u32::MAX;
        mask.0.dl_type = u16::MAX;
        mask.0.nw_dst = u32::MAX;
        let d = describe(&key, &mask, &[DpAction::Output(1)]);
        assert_eq!(
            d,
            "in_port=2,dl_type=0x0806,nw_dst=10.0.0.2 actions=[Output(1)]"
        );
    }

    #[test]
    fn flow_reply_without_key_is_an_error() {
        let msg = OvsMessage::<FlowFamily>::new(
            attr::cmd::NEW,
            1,
            &[RawAttr::bytes(attr::flow::STATS, vec![0; 16])],
        );
        assert!(matches!(parse_flow(&msg), Err(FlowDecodeError::Attr(_))));
        // but its counters parse
        let mut stats = 7u64.to_ne_bytes().to_vec();
        stats.extend(700u64.to_ne_bytes());
        let msg = OvsMessage::<FlowFamily>::new(
            attr::cmd::DEL,
            1,
            &[RawAttr::bytes(attr::flow::STATS, stats)],
        );
        let s = parse_stats(&msg).unwrap();
        assert_eq!((s.packets, s.bytes, s.used), (7, 700, None));
    }
}
