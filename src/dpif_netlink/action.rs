//! `DpAction` <-> OVS_ACTION_ATTR_* (include/uapi/linux/openvswitch.h).
//!
//! Header rewrites become OVS_ACTION_ATTR_SET_MASKED (value followed by mask, both in the
//! key attribute's layout); tunnel metadata becomes a plain OVS_ACTION_ATTR_SET of
//! OVS_KEY_ATTR_TUNNEL, which the kernel applies on output to a flow-based tunnel port.
//! `TnlPush`/`TnlPop` are the userspace datapath's native tunnelling and have no kernel
//! equivalent: encoding them is an error that says so.

use netlink_packet_core::{DecodeError, Nla, NlaBuffer, NLA_F_NESTED};

use crate::dpif::{DpAction, Masked, SetField};
use crate::packet::{FlowKey, TunnelMeta, VlanTag};

use super::attr::{emit_all, exact_len, for_each_nla, get_u32, get_u64, value};
use super::key_attr::{parse_key_attrs, KeyAttr, KeyIpv4, KeyIpv6, TunnelAttr};
use super::key_codec::tunnel_attrs;

/// OVS_ACTION_ATTR_* numbers.
pub mod kind {
    /// u32 port.
    pub const OUTPUT: u16 = 1;
    /// Nested OVS_USERSPACE_ATTR_*.
    pub const USERSPACE: u16 = 2;
    /// One nested key attribute.
    pub const SET: u16 = 3;
    /// struct ovs_action_push_vlan.
    pub const PUSH_VLAN: u16 = 4;
    /// No argument.
    pub const POP_VLAN: u16 = 5;
    /// Nested OVS_SAMPLE_ATTR_*.
    pub const SAMPLE: u16 = 6;
    /// u32 recirc id.
    pub const RECIRC: u16 = 7;
    /// One nested key attribute, value then mask.
    pub const SET_MASKED: u16 = 11;
    /// Nested actions run on a clone.
    pub const CLONE: u16 = 20;
}

const USERSPACE_PID: u16 = 1;
const USERSPACE_USERDATA: u16 = 2;
const SAMPLE_PROBABILITY: u16 = 1;
const SAMPLE_ACTIONS: u16 = 2;
const VLAN_CFI: u16 = 0x1000;

/// One kernel action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionAttr {
    /// Output to a port.
    Output(u32),
    /// Send to userspace: netlink pid and cookie.
    Userspace {
        /// Handler socket that receives the upcall.
        pid: u32,
        /// Our cookie.
        cookie: u64,
    },
    /// Set a key attribute (only tunnel is used).
    Set(KeyAttr),
    /// Masked set: value and mask of the same key attribute kind.
    SetMasked(KeyAttr, KeyAttr),
    /// Push a VLAN tag.
    PushVlan {
        /// TPID.
        tpid: u16,
        /// TCI, CFI set.
        tci: u16,
    },
    /// Pop a VLAN tag.
    PopVlan,
    /// Probabilistic sample.
    Sample(u32, Vec<ActionAttr>),
    /// Recirculate.
    Recirc(u32),
    /// Clone.
    Clone(Vec<ActionAttr>),
    /// An action this switch does not model, kept verbatim.
    Other(u16, Vec<u8>),
}

fn key_attr_bytes(a: &KeyAttr) -> Vec<u8> {
    emit_all(std::slice::from_ref(a))
}

fn emit_pair(v: &KeyAttr, m: &KeyAttr) -> Vec<u8> {
    // SET_MASKED: one attribute header whose payload is value bytes then mask bytes.
    let mut out = key_attr_bytes(v);
    let vb = key_attr_bytes(m);
    let hdr = netlink_packet_core::NLA_HEADER_SIZE;
    let vlen = v.value_len();
    out.truncate(hdr + vlen);
    out.extend_from_slice(&vb[hdr..hdr + vlen]);
    let total = (hdr + 2 * vlen) as u16;
    out[0..2].copy_from_slice(&total.to_ne_bytes());
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

impl ActionAttr {
    fn payload(&self) -> Vec<u8> {
        use ActionAttr::*;
        match self {
            Output(p) | Recirc(p) => p.to_ne_bytes().to_vec(),
            Userspace { pid, cookie } => {
                let mut v = emit_all(&[super::attr::RawAttr::u32(USERSPACE_PID, *pid)]);
                v.extend(emit_all(&[super::attr::RawAttr::bytes(
                    USERSPACE_USERDATA,
                    cookie.to_ne_bytes().to_vec(),
                )]));
                v
            }
            Set(k) => key_attr_bytes(k),
            SetMasked(v, m) => emit_pair(v, m),
            PushVlan { tpid, tci } => {
                let mut v = tpid.to_be_bytes().to_vec();
                v.extend_from_slice(&tci.to_be_bytes());
                v
            }
            PopVlan => Vec::new(),
            Sample(p, acts) => {
                let mut v = emit_all(&[super::attr::RawAttr::u32(SAMPLE_PROBABILITY, *p)]);
                v.extend(emit_all(&[super::attr::RawAttr::nested(
                    SAMPLE_ACTIONS,
                    acts,
                )]));
                v
            }
            Clone(acts) => emit_all(acts),
            Other(_, v) => v.clone(),
        }
    }
}

impl Nla for ActionAttr {
    fn value_len(&self) -> usize {
        use ActionAttr::*;
        let hdr = netlink_packet_core::NLA_HEADER_SIZE;
        match self {
            Output(_) | Recirc(_) | PushVlan { .. } => 4,
            PopVlan => 0,
            // one key attribute header, value and mask, padded to 4
            SetMasked(v, _) => (hdr + 2 * v.value_len() + 3) & !3,
            Set(k) => netlink_packet_core::Emitable::buffer_len(k),
            _ => self.payload().len(),
        }
    }
    fn kind(&self) -> u16 {
        use ActionAttr::*;
        match self {
            Output(_) => kind::OUTPUT,
            Userspace { .. } => kind::USERSPACE | NLA_F_NESTED,
            Set(_) => kind::SET | NLA_F_NESTED,
            SetMasked(..) => kind::SET_MASKED | NLA_F_NESTED,
            PushVlan { .. } => kind::PUSH_VLAN,
            PopVlan => kind::POP_VLAN,
            Sample(..) => kind::SAMPLE | NLA_F_NESTED,
            Recirc(_) => kind::RECIRC,
            Clone(_) => kind::CLONE | NLA_F_NESTED,
            Other(k, _) => *k,
        }
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            ActionAttr::Output(p) | ActionAttr::Recirc(p) => {
                buffer.copy_from_slice(&p.to_ne_bytes())
            }
            ActionAttr::PopVlan => {}
            _ => buffer.copy_from_slice(&self.payload()),
        }
    }
}

/// Parses an action list.
pub fn parse_actions(buf: &[u8]) -> Result<Vec<ActionAttr>, DecodeError> {
    let mut out = Vec::new();
    for_each_nla(buf, |a| {
        out.push(parse_action(&a)?);
        Ok(())
    })?;
    Ok(out)
}

fn parse_action(nla: &NlaBuffer<&[u8]>) -> Result<ActionAttr, DecodeError> {
    let k = nla.kind() & !NLA_F_NESTED;
    Ok(match k {
        kind::OUTPUT => ActionAttr::Output(get_u32(nla, "output")?),
        kind::RECIRC => ActionAttr::Recirc(get_u32(nla, "recirc")?),
        kind::POP_VLAN => ActionAttr::PopVlan,
        kind::PUSH_VLAN => {
            let v = exact_len(nla, 4, "push_vlan")?;
            ActionAttr::PushVlan {
                tpid: u16::from_be_bytes([v[0], v[1]]),
                tci: u16::from_be_bytes([v[2], v[3]]),
            }
        }
        kind::USERSPACE => {
            let (mut pid, mut cookie) = (0, 0);
            for_each_nla(value(nla), |a| {
                match a.kind() & !NLA_F_NESTED {
                    USERSPACE_PID => pid = get_u32(&a, "userspace pid")?,
                    USERSPACE_USERDATA if value(&a).len() == 8 => {
                        cookie = get_u64(&a, "userspace cookie")?
                    }
                    _ => {}
                }
                Ok(())
            })?;
            ActionAttr::Userspace { pid, cookie }
        }
        kind::SET => {
            let mut inner = parse_key_attrs(value(nla))?;
            if inner.len() != 1 {
                return Err(DecodeError::from(
                    "set action must hold exactly one key attribute",
                ));
            }
            ActionAttr::Set(inner.remove(0))
        }
        kind::SET_MASKED => {
            let v = value(nla);
            let hdr = netlink_packet_core::NLA_HEADER_SIZE;
            if v.len() < hdr {
                return Err(DecodeError::from("set_masked action too short"));
            }
            let total = u16::from_ne_bytes([v[0], v[1]]) as usize;
            let kind = u16::from_ne_bytes([v[2], v[3]]);
            if total < hdr || (total - hdr) % 2 != 0 || total > v.len() {
                return Err(DecodeError::from(
                    "set_masked action: bad value/mask length",
                ));
            }
            let half = (total - hdr) / 2;
            let mk = |bytes: &[u8]| -> Result<KeyAttr, DecodeError> {
                let mut b = Vec::with_capacity(hdr + half);
                b.extend_from_slice(&((hdr + half) as u16).to_ne_bytes());
                b.extend_from_slice(&kind.to_ne_bytes());
                b.extend_from_slice(bytes);
                KeyAttr::parse(&NlaBuffer::new_checked(&b[..])?)
            };
            ActionAttr::SetMasked(mk(&v[hdr..hdr + half])?, mk(&v[hdr + half..total])?)
        }
        kind::SAMPLE => {
            let (mut p, mut acts) = (0, Vec::new());
            for_each_nla(value(nla), |a| {
                match a.kind() & !NLA_F_NESTED {
                    SAMPLE_PROBABILITY => p = get_u32(&a, "sample probability")?,
                    SAMPLE_ACTIONS => acts = parse_actions(value(&a))?,
                    _ => {}
                }
                Ok(())
            })?;
            ActionAttr::Sample(p, acts)
        }
        kind::CLONE => ActionAttr::Clone(parse_actions(value(nla))?),
        _ => ActionAttr::Other(k, value(nla).to_vec()),
    })
}

/// Why an action list cannot go to (or come from) the kernel.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActionCodecError {
    /// A userspace-datapath-only action.
    #[error("{0} is a userspace-datapath action; the kernel datapath tunnels through flow-based tunnel ports (set(tunnel) + output)")]
    UserspaceOnly(&'static str),
    /// A kernel action this switch does not model.
    #[error("kernel action type {0} is not supported by this switch")]
    Unsupported(u16),
    /// The encoded list does not fit a netlink attribute (64 KiB).
    #[error("{0} actions encode to {1} bytes, more than a netlink attribute holds")]
    TooLong(usize, usize),
}

/// The largest payload a netlink attribute can carry (its length field is 16 bits).
pub const MAX_ATTR_PAYLOAD: usize = u16::MAX as usize - netlink_packet_core::NLA_HEADER_SIZE;

/// Our actions -> kernel actions. `upcall_pid` is where `Userspace` actions send packets.
pub fn encode_actions(
    actions: &[DpAction],
    upcall_pid: u32,
) -> Result<Vec<ActionAttr>, ActionCodecError> {
    let out: Vec<ActionAttr> = actions
        .iter()
        .map(|a| encode_action(a, upcall_pid))
        .collect::<Result<_, _>>()?;
    let len = netlink_packet_core::Emitable::buffer_len(&out.as_slice());
    if len > MAX_ATTR_PAYLOAD {
        return Err(ActionCodecError::TooLong(actions.len(), len));
    }
    Ok(out)
}

fn encode_action(a: &DpAction, pid: u32) -> Result<ActionAttr, ActionCodecError> {
    Ok(match a {
        DpAction::Output(p) => ActionAttr::Output(*p),
        DpAction::PushVlan(t) => ActionAttr::PushVlan {
            tpid: t.tpid,
            tci: t.tci | VLAN_CFI,
        },
        DpAction::PopVlan => ActionAttr::PopVlan,
        DpAction::Recirc(id) => ActionAttr::Recirc(*id),
        DpAction::Userspace { cookie } => ActionAttr::Userspace {
            pid,
            cookie: *cookie,
        },
        DpAction::Clone(inner) => ActionAttr::Clone(encode_actions(inner, pid)?),
        DpAction::Sample {
            probability,
            actions,
        } => ActionAttr::Sample(*probability, encode_actions(actions, pid)?),
        DpAction::TnlPush(_) => return Err(ActionCodecError::UserspaceOnly("tnl_push")),
        DpAction::TnlPop(_) => return Err(ActionCodecError::UserspaceOnly("tnl_pop")),
        DpAction::Set(SetField::Tunnel(t)) => ActionAttr::Set(KeyAttr::Tunnel({
            let k = tunnel_as_key(t);
            tunnel_attrs(&k, &k)
        })),
        DpAction::Set(f) => {
            let (v, m) = set_field_attrs(f);
            ActionAttr::SetMasked(v, m)
        }
    })
}

fn tunnel_as_key(t: &TunnelMeta) -> FlowKey {
    FlowKey {
        tun_id: t.tun_id,
        tun_ipv4_src: t.ipv4_src,
        tun_ipv4_dst: t.ipv4_dst,
        tun_ipv6_src: t.ipv6_src,
        tun_ipv6_dst: t.ipv6_dst,
        tun_flags: t.flags,
        tun_tos: t.tos,
        tun_ttl: t.ttl,
        tun_tp_src: t.tp_src,
        tun_tp_dst: t.tp_dst,
        tun_gnv_opt_hdr: t.gnv_opt_hdr,
        tun_gnv_opt_data: t.gnv_opt_data,
        ..Default::default()
    }
}

fn set_field_attrs(f: &SetField) -> (KeyAttr, KeyAttr) {
    match *f {
        SetField::Eth { src, dst } => (
            KeyAttr::Ethernet {
                src: src.value,
                dst: dst.value,
            },
            KeyAttr::Ethernet {
                src: src.mask,
                dst: dst.mask,
            },
        ),
        SetField::Ipv4 { src, dst, tos, ttl } => {
            let v = KeyIpv4 {
                src: src.value,
                dst: dst.value,
                tos: tos.value,
                ttl: ttl.value,
                ..Default::default()
            };
            let m = KeyIpv4 {
                src: src.mask,
                dst: dst.mask,
                tos: tos.mask,
                ttl: ttl.mask,
                ..Default::default()
            };
            (KeyAttr::Ipv4(v), KeyAttr::Ipv4(m))
        }
        SetField::Ipv6 {
            src,
            dst,
            tclass,
            hlimit,
            label,
        } => {
            let v = KeyIpv6 {
                src: src.value,
                dst: dst.value,
                tclass: tclass.value,
                hlimit: hlimit.value,
                label: label.value,
                ..Default::default()
            };
            let m = KeyIpv6 {
                src: src.mask,
                dst: dst.mask,
                tclass: tclass.mask,
                hlimit: hlimit.mask,
                label: label.mask,
                ..Default::default()
            };
            (KeyAttr::Ipv6(v), KeyAttr::Ipv6(m))
        }
        SetField::Tcp { src, dst } => (
            KeyAttr::Tcp(src.value, dst.value),
            KeyAttr::Tcp(src.mask, dst.mask),
        ),
        SetField::Udp { src, dst } => (
            KeyAttr::Udp(src.value, dst.value),
            KeyAttr::Udp(src.mask, dst.mask),
        ),
        SetField::Sctp { src, dst } => (
            KeyAttr::Sctp(src.value, dst.value),
            KeyAttr::Sctp(src.mask, dst.mask),
        ),
        SetField::Tunnel(_) => unreachable!("tunnel is encoded as a plain set"),
    }
}

/// Kernel actions -> ours (for flow dumps).
pub fn decode_actions(attrs: &[ActionAttr]) -> Result<Vec<DpAction>, ActionCodecError> {
    attrs.iter().map(decode_action).collect()
}

fn m<T>(value: T, mask: T) -> Masked<T> {
    Masked { value, mask }
}

fn decode_action(a: &ActionAttr) -> Result<DpAction, ActionCodecError> {
    Ok(match a {
        ActionAttr::Output(p) => DpAction::Output(*p),
        ActionAttr::PushVlan { tpid, tci } => DpAction::PushVlan(VlanTag {
            tpid: *tpid,
            tci: tci & !VLAN_CFI,
        }),
        ActionAttr::PopVlan => DpAction::PopVlan,
        ActionAttr::Recirc(id) => DpAction::Recirc(*id),
        ActionAttr::Userspace { cookie, .. } => DpAction::Userspace { cookie: *cookie },
        ActionAttr::Clone(inner) => DpAction::Clone(decode_actions(inner)?),
        ActionAttr::Sample(p, inner) => DpAction::Sample {
            probability: *p,
            actions: decode_actions(inner)?,
        },
        ActionAttr::Set(KeyAttr::Tunnel(t)) => {
            let mut k = FlowKey::default();
            let attrs = [KeyAttr::Tunnel(t.clone())];
            if let Ok(d) = super::key_codec::decode_attrs(&attrs, false) {
                k = d;
            }
            // a set(tunnel) without an id has no KEY flag
            if !t.iter().any(|x| matches!(x, TunnelAttr::Id(_))) {
                k.tun_flags &= !crate::packet::flow_key::tun_flag::KEY;
            }
            DpAction::Set(SetField::Tunnel(TunnelMeta {
                tun_id: k.tun_id,
                ipv4_src: k.tun_ipv4_src,
                ipv4_dst: k.tun_ipv4_dst,
                ipv6_src: k.tun_ipv6_src,
                ipv6_dst: k.tun_ipv6_dst,
                flags: k.tun_flags,
                tos: k.tun_tos,
                ttl: k.tun_ttl,
                tp_src: k.tun_tp_src,
                tp_dst: k.tun_tp_dst,
                gnv_opt_hdr: k.tun_gnv_opt_hdr,
                gnv_opt_data: k.tun_gnv_opt_data,
            }))
        }
        ActionAttr::SetMasked(v, mk) => DpAction::Set(match (v, mk) {
            (KeyAttr::Ethernet { src, dst }, KeyAttr::Ethernet { src: ms, dst: md }) => {
                SetField::Eth {
                    src: m(*src, *ms),
                    dst: m(*dst, *md),
                }
            }
            (KeyAttr::Ipv4(v), KeyAttr::Ipv4(x)) => SetField::Ipv4 {
                src: m(v.src, x.src),
                dst: m(v.dst, x.dst),
                tos: m(v.tos, x.tos),
                ttl: m(v.ttl, x.ttl),
            },
            (KeyAttr::Ipv6(v), KeyAttr::Ipv6(x)) => SetField::Ipv6 {
                src: m(v.src, x.src),
                dst: m(v.dst, x.dst),
                tclass: m(v.tclass, x.tclass),
                hlimit: m(v.hlimit, x.hlimit),
                label: m(v.label, x.label),
            },
            (KeyAttr::Tcp(s, d), KeyAttr::Tcp(ms, md)) => SetField::Tcp {
                src: m(*s, *ms),
                dst: m(*d, *md),
            },
            (KeyAttr::Udp(s, d), KeyAttr::Udp(ms, md)) => SetField::Udp {
                src: m(*s, *ms),
                dst: m(*d, *md),
            },
            (KeyAttr::Sctp(s, d), KeyAttr::Sctp(ms, md)) => SetField::Sctp {
                src: m(*s, *ms),
                dst: m(*d, *md),
            },
            (other, _) => return Err(ActionCodecError::Unsupported(other.kind() & !NLA_F_NESTED)),
        }),
        ActionAttr::Set(other) => {
            return Err(ActionCodecError::Unsupported(other.kind() & !NLA_F_NESTED))
        }
        ActionAttr::Other(k, _) => return Err(ActionCodecError::Unsupported(*k)),
    })
}

#[cfg(test)]
#[path = "action_tests.rs"]
mod tests;
