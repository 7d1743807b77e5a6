//! Multicast snooping through NORMAL: IGMPv1/2/3, MLDv1/2, mrouter learning, flooding rules.

use super::*;
use crate::ofproto::mcast_report::build;
use crate::packet::ipproto;

fn snooping(disable_flood_unregistered: bool, ports: usize) -> Ofproto {
    let cfg = OfprotoConfig {
        mcast: McastSnoopingConfig {
            enabled: true,
            disable_flood_unregistered,
            ..Default::default()
        },
        ..Default::default()
    };
    bridge(cfg, &vec![PortConfig::default(); ports]).0
}

fn group_mac(g: u32) -> [u8; 6] {
    let b = g.to_be_bytes();
    [0x01, 0x00, 0x5e, b[1] & 0x7f, b[2], b[3]]
}

fn igmp(of: u16, src: u8, ty: u16, group: u32, dst: u32) -> FlowKey {
    FlowKey {
        in_port: dp(of),
        dl_src: mac(src),
        dl_dst: group_mac(dst),
        dl_type: ethertype::IPV4,
        nw_src: 0x0a00_0000 | src as u32,
        nw_dst: dst,
        nw_proto: ipproto::IGMP,
        nw_ttl: 1,
        tp_src: ty,
        igmp_group: group,
        ..Default::default()
    }
}

fn data(of: u16, src: u8, group: u32) -> FlowKey {
    let mut k = key(of, mac(src), group_mac(group));
    k.nw_dst = group;
    k
}

const G1: u32 = 0xef01_0101; // 239.1.1.1
const ALL_HOSTS: u32 = 0xe000_0001;

#[test]
fn igmpv2_join_leave_and_mrouter_from_query() {
    let br = snooping(false, 4);
    // A query on port 4 makes it an mrouter port; the query itself floods.
    let o = xl(&br, &igmp(4, 0x44, 0x11, 0, ALL_HOSTS));
    assert_eq!(outputs(&o), vec![dp(1), dp(2), dp(3)]);
    assert!(!o.install, "IGMP must reach the translator every time");
    // Port 1 joins G1 (v2 report): the report goes to the mrouter port only.
    let o = xl(&br, &igmp(1, 0x11, 0x16, G1, G1));
    assert_eq!(outputs(&o), vec![dp(4)]);
    assert!(!o.install);
    // Group traffic from port 2: member port 1 and mrouter port 4, not port 3.
    let o = xl(&br, &data(2, 0x22, G1));
    assert_eq!(outputs(&o), vec![dp(1), dp(4)]);
    assert!(o.install);
    assert_eq!(o.mask.0.nw_dst, u32::MAX);
    let mdb = br.mdb_show();
    assert!(mdb.contains("    1     0  239.1.1.1"), "{mdb}");
    assert!(mdb.contains("    4     0  querier"), "{mdb}");
    // Port 1 leaves: G1 is unregistered again and floods.
    let o = xl(&br, &igmp(1, 0x11, 0x17, G1, 0xe000_0002));
    assert_eq!(outputs(&o), vec![dp(4)]);
    let o = xl(&br, &data(2, 0x22, G1));
    assert_eq!(outputs(&o), vec![dp(1), dp(3), dp(4)]);
    // IGMPv1 report works the same way.
    xl(&br, &igmp(3, 0x33, 0x12, G1, G1));
    assert_eq!(outputs(&xl(&br, &data(2, 0x22, G1))), vec![dp(3), dp(4)]);
}

#[test]
fn unregistered_dropped_when_configured_but_link_local_floods() {
    let br = snooping(true, 3);
    // No members, no mrouters: unregistered group traffic goes nowhere.
    assert!(xl(&br, &data(1, 0x11, G1)).actions.is_empty());
    // 224.0.0.251 (mDNS) is link-local: always flooded.
    assert_eq!(
        outputs(&xl(&br, &data(1, 0x11, 0xe000_00fb))),
        vec![dp(2), dp(3)]
    );
    // A port with mcast_flood set receives unregistered traffic.
    br.set_port_config(
        "p3",
        PortConfig {
            mcast_flood: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(outputs(&xl(&br, &data(1, 0x11, G1))), vec![dp(3)]);
}

#[test]
fn reports_flood_to_flood_reports_ports() {
    let br = snooping(false, 3);
    br.set_port_config(
        "p2",
        PortConfig {
            mcast_flood_reports: true,
            ..Default::default()
        },
    )
    .unwrap();
    let o = xl(&br, &igmp(1, 0x11, 0x16, G1, G1));
    assert_eq!(outputs(&o), vec![dp(2)]);
}

#[test]
fn igmpv3_include_exclude() {
    let br = snooping(false, 4);
    let g2: u32 = 0xef02_0202;
    // Port 1: TO_EX{} for G1 (join), IS_IN{s1,s2} for G2 (join).
    let pkt = build::igmpv3_report(
        mac(0x11),
        &[(4, G1.to_be_bytes(), 0), (1, g2.to_be_bytes(), 2)],
    );
    let o = xl_pkt(&br, &igmp(1, 0x11, 0x22, 0, 0xe000_0016), &pkt);
    assert!(!o.install);
    assert!(
        outputs(&o).is_empty(),
        "no mrouter yet: the report goes nowhere"
    );
    assert_eq!(outputs(&xl(&br, &data(2, 0x22, G1))), vec![dp(1)]);
    assert_eq!(outputs(&xl(&br, &data(2, 0x22, g2))), vec![dp(1)]);
    // Port 3 joins G1 with EXCLUDE mode (IS_EX).
    let pkt = build::igmpv3_report(mac(0x33), &[(2, G1.to_be_bytes(), 0)]);
    xl_pkt(&br, &igmp(3, 0x33, 0x22, 0, 0xe000_0016), &pkt);
    assert_eq!(outputs(&xl(&br, &data(2, 0x22, G1))), vec![dp(1), dp(3)]);
    // Port 1: TO_IN{} for G1 = leave.
    let pkt = build::igmpv3_report(mac(0x11), &[(3, G1.to_be_bytes(), 0)]);
    xl_pkt(&br, &igmp(1, 0x11, 0x22, 0, 0xe000_0016), &pkt);
    assert_eq!(outputs(&xl(&br, &data(2, 0x22, G1))), vec![dp(3)]);
    // A truncated v3 report changes nothing and does not panic.
    let pkt = build::igmpv3_report(mac(0x33), &[(3, G1.to_be_bytes(), 0)]);
    xl_pkt(
        &br,
        &igmp(3, 0x33, 0x22, 0, 0xe000_0016),
        &pkt[..pkt.len() - 3],
    );
    assert_eq!(outputs(&xl(&br, &data(2, 0x22, G1))), vec![dp(3)]);
}

fn v6(of: u16, src: u8, dst: [u8; 16]) -> FlowKey {
    FlowKey {
        in_port: dp(of),
        dl_src: mac(src),
        dl_dst: [0x33, 0x33, dst[12], dst[13], dst[14], dst[15]],
        dl_type: ethertype::IPV6,
        ipv6_dst: dst,
        nw_proto: ipproto::UDP,
        nw_ttl: 5,
        ..Default::default()
    }
}

#[test]
fn mldv2_and_mldv1() {
    let br = snooping(false, 4);
    let g: [u8; 16] = [0xff, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42];
    let mut report_dst = [0u8; 16];
    report_dst[0] = 0xff;
    report_dst[1] = 0x02;
    report_dst[15] = 0x16;
    // Query from port 4 (ICMPv6 130) -> mrouter.
    let mut q = v6(4, 0x44, [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    q.nw_proto = ipproto::ICMPV6;
    q.tp_src = 130;
    assert_eq!(outputs(&xl(&br, &q)), vec![dp(1), dp(2), dp(3)]);
    // MLDv2 report from port 1 for g (CHANGE_TO_EXCLUDE{}).
    let mut r = v6(1, 0x11, report_dst);
    r.nw_proto = ipproto::ICMPV6;
    r.tp_src = 143;
    let pkt = build::mldv2_report(mac(0x11), &[(4, g, 0)]);
    let o = xl_pkt(&br, &r, &pkt);
    assert_eq!(outputs(&o), vec![dp(4)]);
    assert!(!o.install);
    assert_eq!(outputs(&xl(&br, &v6(2, 0x22, g))), vec![dp(1), dp(4)]);
    // MLDv1 report from port 3 (131, group in nd_target), then done (132) from port 1.
    let mut r1 = v6(3, 0x33, g);
    r1.nw_proto = ipproto::ICMPV6;
    r1.tp_src = 131;
    r1.nd_target = g;
    xl(&br, &r1);
    assert_eq!(
        outputs(&xl(&br, &v6(2, 0x22, g))),
        vec![dp(1), dp(3), dp(4)]
    );
    let mut d = r1;
    d.in_port = dp(1);
    d.tp_src = 132;
    xl(&br, &d);
    assert_eq!(outputs(&xl(&br, &v6(2, 0x22, g))), vec![dp(3), dp(4)]);
    // ff02::1 (all nodes) floods regardless of the mdb.
    let all_nodes = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(
        outputs(&xl(&br, &v6(2, 0x22, all_nodes))),
        vec![dp(1), dp(3), dp(4)]
    );
    assert!(br.mdb_show().contains("ff0e::42"));
}

#[test]
fn membership_and_mrouter_age_out() {
    let br = snooping(true, 3);
    xl(&br, &igmp(3, 0x33, 0x11, 0, ALL_HOSTS));
    xl(&br, &igmp(1, 0x11, 0x16, G1, G1));
    assert_eq!(outputs(&xl(&br, &data(2, 0x22, G1))), vec![dp(1), dp(3)]);
    // Real time is not used: move the bridge's manual clock via translate's `now`.
    let later = br.now() + std::time::Duration::from_secs(301);
    let o = br.translate(&XlateRequest {
        key: &data(2, 0x22, G1),
        packet: None,
        may_learn: false,
        revalidating: false,
        trace: false,
        now: later,
    });
    assert!(
        o.actions.is_empty(),
        "membership and mrouter both expired: {:?}",
        o.actions
    );
}

#[test]
fn mdb_flush_forgets_groups_and_mrouters() {
    let br = snooping(true, 3);
    xl(&br, &igmp(3, 0x33, 0x11, 0, ALL_HOSTS));
    xl(&br, &igmp(1, 0x11, 0x16, G1, G1));
    assert_eq!(outputs(&xl(&br, &data(2, 0x22, G1))), vec![dp(1), dp(3)]);
    br.mdb_flush();
    assert!(xl(&br, &data(2, 0x22, G1)).actions.is_empty());
    assert_eq!(br.mdb_show(), " port  VLAN  GROUP                Age\n");
}
