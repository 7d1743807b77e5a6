//! Unit tests of `action` (no kernel needed).

use super::*;
use crate::dpif::TnlPush;
use crate::dpif::TunnelType;

fn through_wire(actions: &[DpAction]) -> Vec<DpAction> {
    let attrs = encode_actions(actions, 77).unwrap();
    let bytes = emit_all(&attrs);
    let parsed = parse_actions(&bytes).unwrap();
    assert_eq!(parsed, attrs);
    decode_actions(&parsed).unwrap()
}

#[test]
fn every_action_round_trips() {
    let tun = TunnelMeta {
        tun_id: 42,
        ipv4_dst: 0xc0a8_3202,
        ttl: 64,
        flags: crate::packet::flow_key::tun_flag::KEY,
        tp_dst: 4789,
        ..Default::default()
    };
    let acts = vec![
        DpAction::PushVlan(VlanTag {
            tpid: 0x8100,
            tci: 0x2005,
        }),
        DpAction::Set(SetField::Eth {
            src: m([2, 0, 0, 0, 0, 1], [0xff; 6]),
            dst: m([0; 6], [0; 6]),
        }),
        DpAction::Set(SetField::Ipv4 {
            src: m(1, u32::MAX),
            dst: m(2, 0xffff_ff00),
            tos: m(4, 0xfc),
            ttl: m(9, 0xff),
        }),
        DpAction::Set(SetField::Ipv6 {
            src: m([1; 16], [0xff; 16]),
            dst: m([2; 16], [0; 16]),
            tclass: m(0, 0),
            hlimit: m(5, 0xff),
            label: m(0x12345, 0xfffff),
        }),
        DpAction::Set(SetField::Tcp {
            src: m(1, 0xffff),
            dst: m(2, 0),
        }),
        DpAction::Set(SetField::Udp {
            src: m(3, 0),
            dst: m(4, 0xffff),
        }),
        DpAction::Set(SetField::Sctp {
            src: m(5, 0xffff),
            dst: m(6, 0xffff),
        }),
        DpAction::Set(SetField::Tunnel(tun)),
        DpAction::Output(3),
        DpAction::PopVlan,
        DpAction::Clone(vec![DpAction::Output(1), DpAction::Recirc(7)]),
        DpAction::Sample {
            probability: u32::MAX / 2,
            actions: vec![DpAction::Userspace { cookie: 0xfeed }],
        },
        DpAction::Userspace { cookie: 9 },
    ];
    assert_eq!(through_wire(&acts), acts);
    assert_eq!(
        through_wire(&[]),
        Vec::<DpAction>::new(),
        "empty list is drop"
    );
}

#[test]
fn wire_layouts_follow_the_kernel_abi() {
    // push_vlan: be16 tpid, be16 tci with CFI set
    let b = emit_all(
        &encode_actions(
            &[DpAction::PushVlan(VlanTag {
                tpid: 0x8100,
                tci: 5,
            })],
            0,
        )
        .unwrap(),
    );
    assert_eq!(b, [8, 0, kind::PUSH_VLAN as u8, 0, 0x81, 0x00, 0x10, 0x05]);
    // set_masked(tcp): one key attribute whose payload is the value then the mask
    let b = emit_all(
        &encode_actions(
            &[DpAction::Set(SetField::Tcp {
                src: m(0x1234, 0xffff),
                dst: m(0, 0),
            })],
            0,
        )
        .unwrap(),
    );
    assert_eq!(
        u16::from_ne_bytes([b[2], b[3]]) & !NLA_F_NESTED,
        kind::SET_MASKED
    );
    assert_eq!(
        &b[4..8],
        &[12, 0, super::super::key_attr::kind::TCP as u8, 0]
    );
    assert_eq!(&b[8..16], &[0x12, 0x34, 0, 0, 0xff, 0xff, 0, 0]);
    // userspace: the handler pid and the 8-byte cookie
    let a = encode_actions(&[DpAction::Userspace { cookie: 1 }], 4242).unwrap();
    assert_eq!(
        a,
        [ActionAttr::Userspace {
            pid: 4242,
            cookie: 1
        }]
    );
}

#[test]
fn userspace_only_and_unknown_actions_are_errors() {
    let push = DpAction::TnlPush(TnlPush {
        tnl_port: 1,
        out_port: 2,
        tnl_type: TunnelType::Vxlan,
        header: vec![0; 50],
    });
    let e = encode_actions(&[DpAction::Output(1), push], 0).unwrap_err();
    assert_eq!(e, ActionCodecError::UserspaceOnly("tnl_push"));
    assert!(e.to_string().contains("flow-based tunnel ports"));
    assert!(encode_actions(&[DpAction::TnlPop(3)], 0).is_err());
    // OVS_ACTION_ATTR_CT (12) from someone else's flow
    let ct = emit_all(&[ActionAttr::Other(12 | NLA_F_NESTED, vec![])]);
    let parsed = parse_actions(&ct).unwrap();
    assert_eq!(
        decode_actions(&parsed),
        Err(ActionCodecError::Unsupported(12))
    );
}

#[test]
fn malformed_set_masked_is_rejected() {
    // odd value+mask length
    let inner = [9u8, 0, 9, 0, 1, 2, 3, 4, 5, 0, 0, 0];
    let bytes = emit_all(&[ActionAttr::Other(kind::SET_MASKED, inner.to_vec())]);
    assert!(parse_actions(&bytes).is_err());
}

#[test]
fn action_lists_that_overflow_an_attribute_are_refused() {
    let many = vec![DpAction::Output(1); 9000]; // 8 bytes each: 72000 > 65531
    assert!(matches!(
        encode_actions(&many, 0),
        Err(ActionCodecError::TooLong(9000, 72000))
    ));
    let nested = vec![DpAction::Clone(many)];
    assert!(encode_actions(&nested, 0).is_err());
    assert!(encode_actions(&vec![DpAction::Output(1); 100], 0).is_ok());
}
