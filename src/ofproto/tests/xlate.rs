//! The pipeline: priorities, resubmit/goto, header rewrites, masks, depth limits, trace.

use super::*;
use crate::dpif::{Masked, SetField};

#[test]
fn highest_priority_wins_and_mask_covers_higher_rules() {
    let (br, _) = plain_bridge(3);
    br.add_flow("priority=100,tcp,tp_dst=80,actions=output:3")
        .unwrap();
    br.add_flow("priority=50,ip,actions=output:2").unwrap();
    let o = xl(&br, &key(1, mac(1), mac(2)));
    assert_eq!(o.actions, vec![DpAction::Output(dp(2))]);
    // The higher-priority tcp rule did not match: its fields are in the mask.
    assert_eq!(o.mask.0.nw_proto, 0xff);
    assert_eq!(o.mask.0.tp_dst, 0xffff);
    assert_eq!(o.mask.0.dl_src, [0; 6]);
    let mut k = key(1, mac(1), mac(2));
    k.nw_proto = 6;
    k.tp_dst = 80;
    assert_eq!(xl(&br, &k).actions, vec![DpAction::Output(dp(3))]);
}

#[test]
fn rewrites_are_committed_before_output_and_seen_by_later_tables() {
    let (br, _) = plain_bridge(3);
    br.add_flow("table=0,priority=1,ip,actions=mod_nw_dst:192.168.0.1,mod_tp_dst:53,output:2,mod_vlan_vid:7,goto_table:1").unwrap();
    br.add_flow("table=1,priority=1,ip,nw_dst=192.168.0.1,actions=output:3")
        .unwrap();
    let o = xl(&br, &key(1, mac(1), mac(2)));
    assert_eq!(
        o.actions,
        vec![
            DpAction::Set(SetField::Ipv4 {
                src: Masked::default(),
                dst: Masked {
                    value: 0xc0a8_0001,
                    mask: u32::MAX
                },
                tos: Masked::default(),
                ttl: Masked::default(),
            }),
            DpAction::Set(SetField::Udp {
                src: Masked::default(),
                dst: Masked {
                    value: 53,
                    mask: 0xffff
                }
            }),
            DpAction::Output(dp(2)),
            push(7),
            DpAction::Output(dp(3)),
        ]
    );
    // nw_dst was rewritten before table 1 looked at it, so the packet's own nw_dst is
    // not consulted by that lookup.
    assert_eq!(o.mask.0.nw_dst, 0);
}

#[test]
fn output_to_in_port_needs_in_port_action() {
    let (br, _) = plain_bridge(2);
    br.add_flow("priority=1,actions=output:1,IN_PORT").unwrap();
    assert_eq!(
        xl(&br, &key(1, mac(1), mac(2))).actions,
        vec![DpAction::Output(dp(1))]
    );
}

#[test]
fn dec_ttl_drops_expiring_packets() {
    let (br, _) = plain_bridge(2);
    br.add_flow("priority=1,ip,actions=dec_ttl,output:2")
        .unwrap();
    let mut k = key(1, mac(1), mac(2));
    let o = xl(&br, &k);
    assert!(matches!(&o.actions[0], DpAction::Set(SetField::Ipv4 { ttl, .. }) if ttl.value == 63));
    assert_eq!(o.mask.0.nw_ttl, 0xff);
    k.nw_ttl = 1;
    assert!(xl(&br, &k).actions.is_empty());
}

#[test]
fn resubmit_loop_stops_at_depth_limit_with_reason() {
    let (br, _) = plain_bridge(2);
    br.add_flow("table=0,priority=1,actions=output:2,resubmit(,1)")
        .unwrap();
    br.add_flow("table=1,priority=1,actions=resubmit(,1)")
        .unwrap();
    let o = xl(&br, &key(1, mac(1), mac(2)));
    assert_eq!(o.error, Some(XlateError::RecursionTooDeep));
    assert!(o.actions.is_empty(), "the whole packet is dropped");
    let t = br.trace("in_port=1,dl_src=50:54:00:00:00:01").unwrap();
    assert!(
        t.contains("resubmit/goto_table recursion exceeded the depth limit of 64"),
        "{t}"
    );
    assert!(t.contains("Datapath actions: drop"), "{t}");
}

#[test]
fn resubmit_fan_out_is_bounded() {
    let (br, _) = plain_bridge(2);
    // Each of tables 0..13 resubmits twice to the next: 2^14 paths, only 14 deep.
    for t in 0..14 {
        br.add_flow(&format!(
            "table={t},priority=1,actions=resubmit(,{n}),resubmit(,{n})",
            n = t + 1
        ))
        .unwrap();
    }
    br.add_flow("table=14,priority=1,actions=output:2").unwrap();
    let o = xl(&br, &key(1, mac(1), mac(2)));
    assert!(o.actions.is_empty());
    assert_eq!(o.error, Some(XlateError::TooManyResubmits));
}

#[test]
fn resubmit_with_port_changes_in_port_for_the_lookup_only() {
    let (br, _) = plain_bridge(3);
    br.add_flow("table=0,priority=1,in_port=1,actions=resubmit(3,1),output:2")
        .unwrap();
    br.add_flow("table=1,priority=1,in_port=3,actions=output:2")
        .unwrap();
    // Inside the resubmit in_port is 3, so output:2 happens there; back in table 0 the
    // in_port is 1 again and output:2 happens again.
    assert_eq!(
        outputs(&xl(&br, &key(1, mac(1), mac(2)))),
        vec![dp(2), dp(2)]
    );
}

#[test]
fn trace_reports_tables_rules_normal_and_megaflow() {
    let (br, _) = plain_bridge(3);
    br.add_flow("priority=10,ip,actions=resubmit(,2)").unwrap();
    br.add_flow("table=2,priority=5,actions=NORMAL").unwrap();
    let t = br
        .trace("in_port=1,ip,dl_src=50:54:00:00:00:01,dl_dst=50:54:00:00:00:02,nw_dst=10.0.0.2")
        .unwrap();
    for want in [
        "bridge(\"br0\")",
        " 0. ip, priority 10, cookie 0x0",
        "resubmit(,2)",
        " 2. priority 5, cookie 0x0",
        "NORMAL: no learned MAC: flooding VLAN 0",
        "Flow: ip,in_port=1,",
        "Megaflow (datapath ports): ip,recirc_id=0,in_port=11,",
        "Datapath actions: 12,13",
    ] {
        assert!(t.contains(want), "missing {want:?} in\n{t}");
    }
    // Tracing does not learn.
    assert!(br.fdb().is_empty());
    assert!(br.trace("in_port=9").is_err());
}

#[test]
fn malformed_and_foreign_packets_are_dropped() {
    let (br, _) = plain_bridge(2);
    let mut k = key(1, mac(1), mac(2));
    k.parse_flags = crate::packet::flow_key::parse_flag::TRUNCATED;
    let o = xl(&br, &k);
    assert_eq!(o.error, Some(XlateError::Malformed));
    assert_eq!(o.mask.0.parse_flags, 0xff);
    let o = xl(&br, &key(7, mac(1), mac(2)));
    assert_eq!(o.error, Some(XlateError::NoSuchPort(dp(7))));
}

#[test]
fn trace_frame_parses_like_the_datapath() {
    let (br, _) = plain_bridge(3);
    br.add_flow("priority=10,udp,tp_dst=53,actions=output:3")
        .unwrap();
    // Ethernet + IPv4 + UDP to port 53 (checksums are not checked by the parser).
    let mut f = vec![0x50, 0x54, 0, 0, 0, 2, 0x50, 0x54, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f.extend_from_slice(&[0x04, 0x00, 0x00, 0x35, 0, 8, 0, 0]);
    let t = br.trace_frame(1, &f).unwrap();
    assert!(t.contains("Flow: udp,in_port=1,"), "{t}");
    assert!(t.contains("tp_dst=53"), "{t}");
    assert!(t.contains("Datapath actions: 13"), "{t}");
    assert!(br.trace_frame(9, &f).is_err());
}
