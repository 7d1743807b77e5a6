//! The userspace datapath end to end over dummy ports: real PMD threads, real parsing,
//! classification, upcalls and action execution; only the devices are in-memory (the
//! dummy netdev stands in for NICs so these tests need neither root nor traffic tools).

mod dpif_netdev_support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use dpif_netdev_support::*;
use rvswitch::dpif::{DpAction, Dpif, DpifError, Masked, SetField};
use rvswitch::dpif_netdev::DpNetdevConfig;
use rvswitch::packet::{FlowKey, PacketMeta, VlanTag};

#[test]
fn vlan_push_and_ipv4_rewrite_reach_port2_with_valid_checksums() {
    let dp = dp("dpn-rw", cfg());
    let p1 = dp.port_add(&dummy("rw-p1"), None).unwrap();
    let p2 = dp.port_add(&dummy("rw-p2"), None).unwrap();
    let (k, m) = ipv4_match(p1);
    put(
        &dp,
        k,
        m,
        vec![
            DpAction::Set(SetField::Ipv4 {
                src: Masked::default(),
                dst: Masked {
                    value: u32::from_be_bytes([192, 168, 7, 9]),
                    mask: u32::MAX,
                },
                tos: Masked::default(),
                ttl: Masked {
                    value: 17,
                    mask: 0xff,
                },
            }),
            DpAction::PushVlan(VlanTag {
                tpid: 0x8100,
                tci: (3 << 13) | 42,
            }),
            DpAction::Output(p2),
        ],
    );
    let frame = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, b"hello datapath");
    let d1 = dp.dummy_port("rw-p1").unwrap();
    let d2 = dp.dummy_port("rw-p2").unwrap();
    d1.inject(0, &frame).unwrap();
    let mut sent = Vec::new();
    assert!(wait_for(T, || {
        sent.extend(d2.take_sent());
        !sent.is_empty()
    }));
    assert_eq!(sent.len(), 1);
    let out = &sent[0];
    assert_eq!(out.len(), frame.len() + 4);
    assert_eq!(&out[..12], &frame[..12], "MACs unchanged");
    assert_eq!(&out[12..14], &[0x81, 0x00], "802.1Q TPID");
    assert_eq!(u16::from_be_bytes([out[14], out[15]]), (3 << 13) | 42);
    assert_eq!(&out[16..18], &[0x08, 0x00], "inner ethertype");
    assert_eq!(&out[18 + 16..18 + 20], &[192, 168, 7, 9], "new destination");
    assert_eq!(out[18 + 8], 17, "new TTL");
    let (ip_ok, udp_ok) = checksums_ok(out, 18);
    assert!(ip_ok, "IPv4 header checksum wrong after rewrite");
    assert!(udp_ok, "UDP checksum wrong after address rewrite");
    // The flow counted the packet and dumps in dpctl syntax.
    let text = dp.dump_flows_text();
    assert!(
        text.contains(&format!(
            "recirc_id(0),in_port({p1}),eth_type(0x0800), packets:1, bytes:{}",
            frame.len()
        )),
        "{text}"
    );
    assert!(
        text.contains("actions:set(ipv4(dst=192.168.7.9,ttl=17)),push_vlan(vid=42,pcp=3),2"),
        "{text}"
    );
}

#[test]
fn miss_upcalls_once_then_hits_emc_and_megaflow() {
    let dp = dp(
        "dpn-up",
        DpNetdevConfig {
            emc_insert_inv_prob: 1,
            // This test counts EMC hits: an auto-bypass trial starting on the first
            // batches would send some of them to the dpcls (tests/dpif_netdev_runs.rs
            // covers the bypass).
            emc_auto_bypass: false,
            ..cfg()
        },
    );
    let _p1 = dp.port_add(&dummy("up-p1"), None).unwrap();
    let p2 = dp.port_add(&dummy("up-p2"), None).unwrap();
    let h = ToPort2::new(p2, true);
    dp.set_upcall_handler(h.clone());
    let d1 = dp.dummy_port("up-p1").unwrap();
    let d2 = dp.dummy_port("up-p2").unwrap();
    d1.inject(0, &udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, b"x"))
        .unwrap();
    let mut got = 0;
    assert!(wait_for(T, || {
        got += d2.take_sent().len();
        got == 1
    }));
    assert_eq!(h.calls.load(Ordering::SeqCst), 1);
    // Same 5-tuple: EMC (inserted on install with probability 1).
    for _ in 0..40 {
        d1.inject(0, &udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, b"x"))
            .unwrap();
    }
    // Different source, same destination: the megaflow wildcards nw_src.
    for i in 0..10u8 {
        d1.inject(0, &udp_frame([10, 0, 1, i], [10, 0, 0, 2], 1, 2, b"x"))
            .unwrap();
    }
    assert!(wait_for(T, || {
        got += d2.take_sent().len();
        got == 51
    }));
    assert_eq!(h.calls.load(Ordering::SeqCst), 1, "no further upcall");
    let pmd = first_pmd_stats(&dp);
    assert_eq!(pmd.rx_packets, 51);
    assert_eq!(pmd.upcall_ok, 1);
    assert_eq!(pmd.upcall_failed, 0);
    assert!(pmd.emc_hits >= 40, "emc hits {}", pmd.emc_hits);
    assert_eq!(pmd.emc_hits + pmd.megaflow_hits, 50);
    assert!(pmd.megaflow_hits >= 1);
    assert_eq!(pmd.subtable_lookups, pmd.megaflow_hits, "one subtable");
    assert_eq!(pmd.tx_packets, 51);
    let show = dp.pmd_stats_show();
    assert!(show.contains("main thread:"), "{show}");
    assert!(show.contains(&format!("core_id {}:", pmd_core())), "{show}");
    assert!(show.contains("  packets received: 51\n"), "{show}");
    assert!(show.contains("  miss with success upcall: 1\n"), "{show}");
    assert!(
        show.contains("  avg. subtable lookups per megaflow hit: 1.00\n"),
        "{show}"
    );
    assert!(show.contains("processing cycles: "), "{show}");
    let stats = dp.stats().unwrap();
    assert_eq!(stats.n_hit, 50);
    assert_eq!(stats.n_missed, 1);
    assert_eq!(stats.n_flows, 1);
    dp.pmd_stats_clear();
    let cleared = dp
        .pmd_stats()
        .into_iter()
        .find(|e| e.core.is_some())
        .unwrap();
    assert_eq!(cleared.stats.rx_packets, 0);
    assert_eq!(cleared.stats.n_flows, 1, "gauges survive a clear");
    // Deleting the megaflow sends the next packet up again (its EMC entry is dead).
    let flows = dp.flow_dump().unwrap();
    assert_eq!(flows.len(), 1);
    let st = dp.flow_del(&flows[0].key, &flows[0].mask).unwrap();
    assert!(st.packets >= 50);
    d1.inject(0, &udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, b"x"))
        .unwrap();
    assert!(wait_for(T, || h.calls.load(Ordering::SeqCst) == 2));
}

#[test]
fn output_to_deleted_port_is_counted_and_dropped() {
    let dp = dp("dpn-dl", cfg());
    let p1 = dp.port_add(&dummy("dl-p1"), None).unwrap();
    let p2 = dp.port_add(&dummy("dl-p2"), None).unwrap();
    let p3 = dp.port_add(&dummy("dl-p3"), None).unwrap();
    let (k, m) = ipv4_match(p1);
    put(&dp, k, m, vec![DpAction::Output(p3), DpAction::Output(p2)]);
    dp.port_del(p3).unwrap();
    let d1 = dp.dummy_port("dl-p1").unwrap();
    let d2 = dp.dummy_port("dl-p2").unwrap();
    for _ in 0..4 {
        d1.inject(0, &udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, b""))
            .unwrap();
    }
    let mut got = 0;
    assert!(wait_for(T, || {
        got += d2.take_sent().len();
        got == 4
    }));
    let s = first_pmd_stats(&dp);
    assert_eq!(s.tx_no_port, 4);
}

#[test]
fn recirculation_runs_a_second_pass() {
    let dp = dp("dpn-rc", cfg());
    let p1 = dp.port_add(&dummy("rc-p1"), None).unwrap();
    let p2 = dp.port_add(&dummy("rc-p2"), None).unwrap();
    let (k, m) = ipv4_match(p1);
    put(&dp, k, m, vec![DpAction::Recirc(7)]);
    let k2 = FlowKey { recirc_id: 7, ..k };
    put(&dp, k2, m, vec![DpAction::PopVlan, DpAction::Output(p2)]);
    let d1 = dp.dummy_port("rc-p1").unwrap();
    let d2 = dp.dummy_port("rc-p2").unwrap();
    let f = udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, b"r");
    d1.inject(0, &f).unwrap();
    let mut sent = Vec::new();
    assert!(wait_for(T, || {
        sent.extend(d2.take_sent());
        !sent.is_empty()
    }));
    assert_eq!(sent[0], f, "untagged packet unchanged by pop_vlan");
    let s = first_pmd_stats(&dp);
    assert_eq!(s.recirculations, 1);
    assert!(dp
        .pmd_stats_show()
        .contains("avg. datapath passes per packet: 2.00"));
    let text = dp.dump_flows_text();
    assert!(text.contains("recirc_id(0x7),in_port("), "{text}");
    assert!(text.contains("actions:recirc(0x7)"), "{text}");
}

#[test]
fn execute_sends_through_actions() {
    let dp = dp("dpn-ex", cfg());
    let p1 = dp.port_add(&dummy("ex-p1"), None).unwrap();
    let d1 = dp.dummy_port("ex-p1").unwrap();
    let f = udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, b"exec");
    dp.execute(
        &f,
        &PacketMeta::default(),
        &[
            DpAction::Output(p1),
            DpAction::Clone(vec![DpAction::Output(p1)]),
        ],
    )
    .unwrap();
    let sent = d1.take_sent();
    assert_eq!(sent, vec![f.clone(), f.clone()]);
    assert!(matches!(
        dp.execute(&[], &PacketMeta::default(), &[]),
        Err(DpifError::InvalidArgument(_))
    ));
}

#[test]
fn userspace_sample_and_tunnel_actions() {
    let dp = dp("dpn-ua", cfg());
    let p1 = dp.port_add(&dummy("ua-p1"), None).unwrap();
    let p2 = dp.port_add(&dummy("ua-p2"), None).unwrap();
    let h = ToPort2::new(p2, true);
    dp.set_upcall_handler(h.clone());
    let (k, m) = ipv4_match(p1);
    put(
        &dp,
        k,
        m,
        vec![
            DpAction::Userspace { cookie: 7 },
            DpAction::Sample {
                probability: u32::MAX,
                actions: vec![DpAction::Output(p2)],
            },
            DpAction::Sample {
                probability: 0,
                actions: vec![DpAction::Output(p2)],
            },
            DpAction::TnlPop(9),
            DpAction::Output(p2),
        ],
    );
    let d1 = dp.dummy_port("ua-p1").unwrap();
    let d2 = dp.dummy_port("ua-p2").unwrap();
    for _ in 0..3 {
        d1.inject(0, &udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, b"u"))
            .unwrap();
    }
    let mut got = 0;
    assert!(
        wait_for(T, || {
            got += d2.take_sent().len();
            got == 6
        }),
        "always-sample copy plus the final output, per packet: got {got}"
    );
    assert_eq!(
        h.actions.load(Ordering::SeqCst),
        3,
        "one userspace upcall per packet"
    );
    assert_eq!(h.calls.load(Ordering::SeqCst), 0, "no miss");
    let s = first_pmd_stats(&dp);
    assert_eq!(s.userspace_actions, 3);
    assert_eq!(
        s.action_errors, 3,
        "tnl_pop of a plain UDP packet: the copy is counted and dropped"
    );
    let text = dp.dump_flows_text();
    assert!(text.contains("actions:userspace(pid=0,userdata(0000000000000007)),sample(sample=100.0%,actions(2)),sample(sample=0.0%,actions(2)),tnl_pop(9),2"), "{text}");
    assert!(text.contains("used:0."), "recently used: {text}");
}

#[test]
fn vxlan_push_then_pop_round_trip() {
    use rvswitch::dpif::{TnlPush, TunnelType};
    use rvswitch::packet::tunnel::{build_tnl_header, Encap, TnlHeaderSpec};
    const TNL_PORT: u32 = 100;
    let dp = dp("dpn-tn", cfg());
    let vm = dp.port_add(&dummy("tn-vm"), None).unwrap();
    let uplink = dp.port_add(&dummy("tn-up"), None).unwrap();
    let header = build_tnl_header(&TnlHeaderSpec {
        eth_src: [2, 0, 0, 0, 0, 0xa],
        eth_dst: [2, 0, 0, 0, 0, 0xb],
        src: "192.0.2.1".parse().unwrap(),
        dst: "192.0.2.2".parse().unwrap(),
        tos: 0,
        ttl: 64,
        dont_fragment: true,
        encap: Encap::Vxlan {
            vni: 5000,
            dst_port: 4789,
            udp_csum: true,
        },
    })
    .unwrap();
    let (k, m) = ipv4_match(vm);
    put(
        &dp,
        k,
        m,
        vec![DpAction::TnlPush(TnlPush {
            tnl_port: TNL_PORT,
            out_port: uplink,
            tnl_type: TunnelType::Vxlan,
            header,
        })],
    );
    let d_vm = dp.dummy_port("tn-vm").unwrap();
    let d_up = dp.dummy_port("tn-up").unwrap();
    let inner = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 5, 6, b"tunnelled");
    d_vm.inject(0, &inner).unwrap();
    let mut sent = Vec::new();
    assert!(wait_for(T, || {
        sent.extend(d_up.take_sent());
        !sent.is_empty()
    }));
    let outer = sent.remove(0);
    let hdr = 14 + 20 + 8 + 8;
    assert_eq!(outer.len(), inner.len() + hdr);
    assert_eq!(&outer[..6], &[2, 0, 0, 0, 0, 0xb]);
    assert_eq!(&outer[14 + 12..14 + 20], &[192, 0, 2, 1, 192, 0, 2, 2]);
    assert_eq!(
        u16::from_be_bytes([outer[36], outer[37]]),
        4789,
        "VXLAN port"
    );
    assert_eq!(&outer[46..49], &[0x00, 0x13, 0x88], "VNI 5000");
    assert_eq!(&outer[hdr..], &inner[..], "inner frame intact");
    let (ip_ok, udp_ok) = checksums_ok(&outer, 14);
    assert!(ip_ok && udp_ok, "outer checksums");
    // Back in on the uplink: pop, recirculate as tunnel port 100, match on the VNI.
    let (k, m) = ipv4_match(uplink);
    put(&dp, k, m, vec![DpAction::TnlPop(TNL_PORT)]);
    let (mut k, mut m) = ipv4_match(TNL_PORT);
    k.tun_id = 5000;
    k.tun_ipv4_src = u32::from_be_bytes([192, 0, 2, 1]);
    m.0.tun_id = u64::MAX;
    m.0.tun_ipv4_src = u32::MAX;
    put(&dp, k, m, vec![DpAction::Output(vm)]);
    d_up.inject(0, &outer).unwrap();
    let mut back = Vec::new();
    assert!(wait_for(T, || {
        back.extend(d_vm.take_sent());
        !back.is_empty()
    }));
    assert_eq!(back, vec![inner]);
    let s = first_pmd_stats(&dp);
    assert_eq!(s.recirculations, 1, "tnl_pop recirculates once");
    assert_eq!(s.action_errors, 0);
    let text = dp.dump_flows_text();
    assert!(
        text.contains("recirc_id(0),in_port(100),tunnel(tun_id=0x1388,src=192.0.2.1)"),
        "{text}"
    );
}

#[test]
fn a_panicking_translator_costs_packets_not_the_pmd() {
    let dp = dp("dpn-pn", cfg());
    let p1 = dp.port_add(&dummy("pn-p1"), None).unwrap();
    let p2 = dp.port_add(&dummy("pn-p2"), None).unwrap();
    dp.set_upcall_handler(Arc::new(Panicking));
    let d1 = dp.dummy_port("pn-p1").unwrap();
    let d2 = dp.dummy_port("pn-p2").unwrap();
    d1.inject(0, &udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, b"p"))
        .unwrap();
    let pmd = || first_pmd_stats(&dp);
    assert!(wait_for(T, || pmd().upcall_failed == 1));
    // The PMD still answers the control plane and forwards.
    let (k, m) = ipv4_match(p1);
    put(&dp, k, m, vec![DpAction::Output(p2)]);
    d1.inject(0, &udp_frame([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, b"p"))
        .unwrap();
    let mut got = 0;
    assert!(wait_for(T, || {
        got += d2.take_sent().len();
        got == 1
    }));
}
