//! The translator driving the real userspace datapath: a `Backer` over `DpifNetdev` with
//! dummy ports (in-memory devices stand in for NICs; PMD threads, parsing, megaflow
//! classification, upcalls and action execution are all real).

mod dpif_netdev_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dpif_netdev_support::{pmd_core, udp_frame, wait_for};
use rvswitch::dpif::{DpAction, Dpif, PortSpec};
use rvswitch::dpif_netdev::{DpNetdevConfig, DpifNetdev};
use rvswitch::netdev::dummy::DummyNetdev;
use rvswitch::ofproto::{
    Backer, McastSnoopingConfig, OfprotoConfig, PortConfig, RevalidatorThread, VlanMode,
};
use rvswitch::packet::wire::build::{self, L4};
use rvswitch::packet::wire::group_record::GroupRecordRepr;
use rvswitch::packet::wire::{ethernet, igmp, ipv4, udp};

const T: Duration = Duration::from_secs(5);

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

/// A UDP frame between two MACs.
fn frame(src: u8, dst: [u8; 6], dport: u16) -> Vec<u8> {
    let mut f = udp_frame([10, 0, 0, src], [10, 0, 0, 99], 1000, dport, b"payload");
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&mac(src));
    f
}

struct Rig {
    _revalidator: Option<RevalidatorThread>,
    backer: Arc<Backer>,
    dp: Arc<DpifNetdev>,
    devs: Vec<Arc<DummyNetdev>>,
    dp_ports: Vec<u32>,
}

fn rig(name: &str, n: usize, revalidator: bool) -> Rig {
    rig_with(name, n, revalidator, OfprotoConfig::default())
}

fn rig_with(name: &str, n: usize, revalidator: bool, config: OfprotoConfig) -> Rig {
    rig_ports(name, &vec![PortConfig::default(); n], revalidator, config)
}

fn rig_ports(name: &str, ports: &[PortConfig], revalidator: bool, config: OfprotoConfig) -> Rig {
    let dp = DpifNetdev::new(
        name,
        DpNetdevConfig {
            pmd_cores: vec![pmd_core()],
            ..Default::default()
        },
    )
    .expect("datapath");
    let backer = Backer::new(dp.clone());
    backer.add_bridge("br0", config).unwrap();
    let mut devs = Vec::new();
    let mut dp_ports = Vec::new();
    for (i, pc) in ports.iter().enumerate() {
        let i = i + 1;
        let pname = format!("{name}-p{i}");
        let spec = PortSpec {
            name: pname.clone(),
            port_type: "dummy".into(),
            options: BTreeMap::new(),
        };
        let of = backer.add_port("br0", &spec, None, pc.clone()).unwrap();
        assert_eq!(of as usize, i);
        let dev = dp.dummy_port(&pname).expect("dummy port");
        dev.set_tx_capture(true);
        devs.push(dev);
        dp_ports.push(dp.port_query_by_name(&pname).unwrap().port_no);
    }
    // The bridge layer runs a revalidator thread; learning wakes it.
    let _revalidator = revalidator.then(|| backer.start_revalidator(Duration::from_millis(500)));
    Rig {
        _revalidator,
        backer,
        dp,
        devs,
        dp_ports,
    }
}

impl Rig {
    /// Injects on OpenFlow port `of` and returns which ports (1-based) the frame left by,
    /// waiting until `expect` ports got it, then a little longer to catch strays.
    fn send(&self, of: usize, f: &[u8], expect: usize) -> Vec<usize> {
        let got = self.send_frames(of, f, expect);
        for (_, s) in &got {
            assert_eq!(s.as_slice(), f, "NORMAL must forward the frame unchanged");
        }
        let mut ports: Vec<usize> = got.into_iter().map(|g| g.0).collect();
        ports.sort_unstable();
        ports
    }

    /// Like `send`, returning (port, frame) for every copy, sorted by port.
    fn send_frames(&self, of: usize, f: &[u8], expect: usize) -> Vec<(usize, Vec<u8>)> {
        if self._revalidator.is_some() {
            assert!(
                wait_for(T, || self.backer.is_settled()),
                "revalidation never caught up"
            );
        }
        self.devs[of - 1].inject(0, f).unwrap();
        let mut got: Vec<(usize, Vec<u8>)> = Vec::new();
        let poll = |got: &mut Vec<(usize, Vec<u8>)>| {
            for (i, d) in self.devs.iter().enumerate() {
                for s in d.take_sent() {
                    got.push((i + 1, s));
                }
            }
        };
        assert!(
            wait_for(T, || {
                poll(&mut got);
                got.len() >= expect
            }),
            "expected {expect} copies, got {:?}",
            got.iter().map(|g| g.0).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(30));
        poll(&mut got);
        got.sort_by_key(|g| g.0);
        got
    }
}

#[test]
fn four_port_bridge_is_a_learning_switch() {
    let r = rig("ofe-l2", 4, true);
    // A (port 1) -> B unknown: flooded to 2, 3, 4.
    assert_eq!(r.send(1, &frame(1, mac(2), 7), 3), vec![2, 3, 4]);
    // B (port 2) -> A: learned, only port 1.
    assert_eq!(r.send(2, &frame(2, mac(1), 7), 1), vec![1]);
    // A -> B: now unicast to port 2, repeatedly (megaflow hits after the first).
    for _ in 0..3 {
        assert_eq!(r.send(1, &frame(1, mac(2), 7), 1), vec![2]);
    }
    // Broadcast from C (port 3): everyone but port 3.
    assert_eq!(r.send(3, &frame(3, [0xff; 6], 7), 3), vec![1, 2, 4]);
    let fdb = r.backer.bridge("br0").unwrap().fdb_show();
    for want in [
        "    1     0  02:00:00:00:00:01",
        "    2     0  02:00:00:00:00:02",
        "    3     0  02:00:00:00:00:03",
    ] {
        assert!(fdb.contains(want), "{fdb}");
    }
    // The repeated A -> B traffic was served by an installed megaflow.
    let flows = r.dp.flow_dump().unwrap();
    assert!(
        flows
            .iter()
            .any(|f| f.key.dl_dst == mac(2)
                && f.actions.as_ref() == [DpAction::Output(r.dp_ports[1])]),
        "{flows:?}"
    );
}

#[test]
fn rule_change_redirects_the_next_packet() {
    let r = rig("ofe-rc", 3, false);
    r.backer
        .add_flow("br0", "priority=10,udp,actions=output:2")
        .unwrap();
    assert_eq!(r.send(1, &frame(1, mac(9), 53), 1), vec![2]);
    assert_eq!(r.send(1, &frame(1, mac(9), 53), 1), vec![2]);
    assert!(!r.dp.flow_dump().unwrap().is_empty(), "megaflow installed");
    // A higher-priority rule: revalidation rewrites the installed megaflow at once.
    r.backer
        .add_flow("br0", "priority=20,udp,actions=output:3")
        .unwrap();
    assert_eq!(r.send(1, &frame(1, mac(9), 53), 1), vec![3]);
    // Deleting it sends traffic back to port 2.
    assert_eq!(
        r.backer.del_flows("br0", "priority=20,udp", true).unwrap(),
        1
    );
    assert_eq!(r.send(1, &frame(1, mac(9), 53), 1), vec![2]);
    // A rule on a field the installed megaflow does not match on (tp_dst): the megaflow
    // is too broad now, so revalidation deletes it and the next packet gets a new one.
    r.backer
        .add_flow("br0", "priority=30,udp,tp_dst=53,actions=output:3")
        .unwrap();
    let flows = r.dp.flow_dump().unwrap();
    assert!(
        !flows.iter().any(
            |f| f.mask.0.tp_dst == 0 && f.actions.as_ref() == [DpAction::Output(r.dp_ports[1])]
        ),
        "the too-broad megaflow survived: {flows:?}"
    );
    assert_eq!(r.send(1, &frame(1, mac(9), 53), 1), vec![3]);
    assert_eq!(r.send(1, &frame(1, mac(9), 54), 1), vec![2]);
    let flows = r.dp.flow_dump().unwrap();
    assert!(
        flows
            .iter()
            .any(|f| f.mask.0.tp_dst == 0xffff && f.key.tp_dst == 53),
        "{flows:?}"
    );
    let br = r.backer.bridge("br0").unwrap();
    assert!(
        br.dump_flows().contains("n_packets="),
        "{}",
        br.dump_flows()
    );
}

#[test]
fn mac_move_is_revalidated() {
    let r = rig("ofe-mv", 3, false);
    r.send(1, &frame(1, [0xff; 6], 7), 2); // learn A on port 1
    assert_eq!(r.send(3, &frame(3, mac(1), 7), 1), vec![1]);
    assert_eq!(r.send(3, &frame(3, mac(1), 7), 1), vec![1]);
    // A moves to port 2; a revalidation pass fixes C -> A's megaflow.
    r.send(2, &frame(1, [0xff; 6], 7), 2);
    let st = r.backer.run();
    assert!(st.modified + st.deleted >= 1, "{st:?}");
    assert_eq!(r.send(3, &frame(3, mac(1), 7), 1), vec![2]);
}

#[test]
fn idle_megaflows_expire_and_revalidator_thread_runs() {
    let r = rig("ofe-id", 2, false);
    r.backer.set_max_idle(Duration::from_millis(100));
    r.send(1, &frame(1, [0xff; 6], 7), 1);
    assert!(!r.dp.flow_dump().unwrap().is_empty());
    let t = r.backer.start_revalidator(Duration::from_millis(20));
    assert!(
        wait_for(T, || r.dp.flow_dump().unwrap().is_empty()),
        "idle megaflow not removed"
    );
    t.stop();
}

/// A backer's flow limit (what caps the kernel datapath; exercised here over the
/// userspace one, whose threads' own caps are far above it): past the limit every miss
/// is still translated and forwarded, but installs no megaflow, so repeats miss again;
/// once the revalidator has removed idle flows, installs resume.
#[test]
fn past_the_flow_limit_misses_are_forwarded_without_megaflows() {
    let r = rig("ofe-fl", 3, false);
    r.backer.set_flow_limit(2);
    // Each new source MAC is a megaflow of its own (NORMAL matches dl_src).
    for src in 11..=14 {
        assert_eq!(r.send(1, &frame(src, [0xff; 6], 7), 2), vec![2, 3]);
    }
    assert_eq!(r.dp.flow_dump().unwrap().len(), 2, "installs stop at 2");
    let limit = r.backer.flow_limit().expect("limit set");
    assert_eq!(limit.refused(), 2);
    // A refused flow's next packet is a miss again, and is forwarded again.
    let missed = r.dp.stats().unwrap().n_missed;
    assert_eq!(r.send(1, &frame(14, [0xff; 6], 7), 2), vec![2, 3]);
    assert_eq!(r.dp.stats().unwrap().n_missed, missed + 1);
    assert_eq!(limit.refused(), 3);
    // The two installed flows expire; after the next recount there is room again.
    r.backer.set_max_idle(Duration::from_millis(50));
    assert!(
        wait_for(T, || {
            r.backer.run();
            r.dp.flow_dump().unwrap().is_empty()
        }),
        "idle megaflows not removed"
    );
    std::thread::sleep(rvswitch::ofproto::flow_limit::RECOUNT_AFTER);
    assert_eq!(r.send(1, &frame(14, [0xff; 6], 7), 2), vec![2, 3]);
    assert_eq!(r.dp.flow_dump().unwrap().len(), 1, "installing again");
    assert_eq!(limit.refused(), 3);
}

fn group_mac(g: u32) -> [u8; 6] {
    let b = g.to_be_bytes();
    [0x01, 0x00, 0x5e, b[1] & 0x7f, b[2], b[3]]
}

fn ip_frame(src: u8, dst_ip: u32, l4: &L4<'_>) -> Vec<u8> {
    let eth = ethernet::Repr {
        dst: group_mac(dst_ip),
        src: mac(src),
        ethertype: 0x0800,
        ..Default::default()
    };
    let ip = ipv4::Repr {
        src: 0x0a00_0000 | src as u32,
        dst: dst_ip,
        ttl: 1,
        ..Default::default()
    };
    build::ipv4_frame(&eth, &ip, l4).expect("frame")
}

const G: u32 = 0xef01_0101; // 239.1.1.1

#[test]
fn igmp_snooping_through_the_datapath() {
    let cfg = OfprotoConfig {
        mcast: McastSnoopingConfig {
            enabled: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let r = rig_with("ofe-mc", 4, true, cfg);
    let data = |src: u8| {
        ip_frame(
            src,
            G,
            &L4::Udp(
                udp::Repr {
                    src_port: 5000,
                    dst_port: 5001,
                    payload_len: 0,
                },
                b"stream",
            ),
        )
    };
    // A general query from port 4: flooded, port 4 becomes the mrouter port.
    let q = ip_frame(
        4,
        0xe000_0001,
        &L4::Igmp(igmp::Repr::Query {
            max_resp: 100,
            group: 0,
            v3: None,
        }),
    );
    assert_eq!(r.send(4, &q, 3), vec![1, 2, 3]);
    // Port 1 joins with an IGMPv2 report: it goes to the mrouter only.
    let join = ip_frame(1, G, &L4::Igmp(igmp::Repr::V2Report { group: G }));
    assert_eq!(r.send(1, &join, 1), vec![4]);
    // Group traffic from port 2 reaches the member and the mrouter, not port 3.
    assert_eq!(r.send(2, &data(2), 2), vec![1, 4]);
    assert_eq!(r.send(2, &data(2), 2), vec![1, 4]);
    // Port 3 joins with an IGMPv3 report (TO_EX{}): the installed group megaflow is
    // revalidated and now includes port 3.
    let v3 = igmp::Repr::V3Report {
        records: vec![GroupRecordRepr {
            record_type: 4,
            group: G.to_be_bytes(),
            sources: vec![],
        }],
    };
    assert_eq!(
        r.send(3, &ip_frame(3, 0xe000_0016, &L4::Igmp(v3)), 1),
        vec![4]
    );
    assert_eq!(r.send(2, &data(2), 3), vec![1, 3, 4]);
    // Port 1 leaves (IGMPv2 leave): reports are never cached, so the leave is seen.
    let leave = ip_frame(1, 0xe000_0002, &L4::Igmp(igmp::Repr::Leave { group: G }));
    assert_eq!(r.send(1, &leave, 1), vec![4]);
    assert_eq!(r.send(2, &data(2), 2), vec![3, 4]);
    let mdb = r.backer.bridge("br0").unwrap().mdb_show();
    assert!(mdb.contains("    3     0  239.1.1.1"), "{mdb}");
    assert!(!mdb.contains("    1     0  239.1.1.1"), "{mdb}");
    assert!(mdb.contains("    4     0  querier"), "{mdb}");
}

fn with_tag(f: &[u8], vid: u16) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&[0x81, 0x00]);
    t.extend_from_slice(&vid.to_be_bytes());
    t.extend_from_slice(&f[12..]);
    t
}

#[test]
fn vlan_access_and_trunk_through_the_datapath() {
    let access = |t| PortConfig {
        vlan_mode: VlanMode::Access,
        tag: Some(t),
        ..Default::default()
    };
    let trunk = PortConfig {
        trunks: vec![10, 20],
        ..Default::default()
    };
    let r = rig_ports(
        "ofe-vl",
        &[access(10), trunk, access(20), access(10)],
        true,
        OfprotoConfig::default(),
    );
    // Untagged broadcast on access port 1 (VLAN 10): port 4 untagged, trunk port 2
    // tagged 10, port 3 (VLAN 20) nothing.
    let b = frame(1, [0xff; 6], 7);
    let got = r.send_frames(1, &b, 2);
    assert_eq!(got, vec![(2, with_tag(&b, 10)), (4, b.clone())]);
    // Tagged 10 from the trunk to A (learned on port 1): the tag is stripped.
    let to_a = frame(2, mac(1), 7);
    assert_eq!(
        r.send_frames(2, &with_tag(&to_a, 10), 1),
        vec![(1, to_a.clone())]
    );
    assert_eq!(r.send_frames(2, &with_tag(&to_a, 10), 1), vec![(1, to_a)]);
    // Tagged 20 broadcast from the trunk reaches only port 3, untagged.
    let b20 = frame(5, [0xff; 6], 7);
    assert_eq!(r.send_frames(2, &with_tag(&b20, 20), 1), vec![(3, b20)]);
    // A VLAN-10-tagged frame on an access port is not admitted.
    r.devs[0]
        .inject(0, &with_tag(&frame(1, [0xff; 6], 8), 10))
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(r.devs.iter().all(|d| d.take_sent().is_empty()));
}

/// Random interleavings of traffic and rule changes: at every quiescent point the
/// datapath (megaflows, EMC, revalidated flows) must forward each packet exactly where a
/// fresh translation says it should go.
#[test]
fn datapath_agrees_with_fresh_translation_under_random_changes() {
    use rvswitch::ofproto::XlateRequest;
    use rvswitch::packet::{parse::parse_frame, PacketMeta};

    const RULES: &[&str] = &[
        "priority=10,udp,tp_dst=53,actions=output:3",
        "priority=20,in_port=1,actions=output:4",
        "priority=5,dl_dst=02:00:00:00:00:02,actions=output:1,output:3",
        "priority=30,udp,tp_dst=80,actions=NORMAL",
        "priority=15,actions=drop",
        "priority=25,dl_src=02:00:00:00:00:03,actions=FLOOD",
        "priority=12,udp,actions=mod_tp_dst:99,resubmit(,1)",
        "table=1,priority=1,udp,tp_dst=99,actions=output:2",
    ];
    for seed in [1u64, 7, 42] {
        let r = rig("ofe-rnd", 4, true);
        let br = r.backer.bridge("br0").unwrap();
        let mut x = seed;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for step in 0..60 {
            match next(20) {
                0..=2 => r
                    .backer
                    .add_flow("br0", RULES[next(RULES.len() as u64) as usize])
                    .unwrap(),
                3 | 4 => {
                    let text = RULES[next(RULES.len() as u64) as usize];
                    let sel = text.split(",actions=").next().unwrap();
                    r.backer.del_flows("br0", sel, true).unwrap();
                }
                5 => {
                    r.backer.del_flows("br0", "", false).unwrap();
                }
                _ => {
                    let inp = next(4) as usize + 1;
                    let src = next(4) as u8 + 1;
                    let dst = match next(5) {
                        4 => [0xff; 6],
                        d if d as u8 + 1 == src => [0xff; 6],
                        d => mac(d as u8 + 1),
                    };
                    let f = frame(src, dst, [53, 80, 7][next(3) as usize]);
                    assert!(wait_for(T, || r.backer.is_settled()));
                    let meta = PacketMeta::for_port(r.dp_ports[inp - 1]);
                    let key = parse_frame(&f, &meta);
                    let want = br.translate(&XlateRequest {
                        key: &key,
                        packet: Some(&f),
                        may_learn: false,
                        revalidating: false,
                        trace: false,
                        now: br.now(),
                    });
                    let mut want_ports: Vec<usize> = want
                        .actions
                        .iter()
                        .filter_map(|a| match a {
                            DpAction::Output(p) => {
                                r.dp_ports.iter().position(|d| d == p).map(|i| i + 1)
                            }
                            _ => None,
                        })
                        .collect();
                    want_ports.sort_unstable();
                    let got: Vec<usize> = r
                        .send_frames(inp, &f, want_ports.len())
                        .into_iter()
                        .map(|g| g.0)
                        .collect();
                    assert_eq!(
                        got,
                        want_ports,
                        "seed {seed} step {step}: in {inp} {f:02x?}\n{}",
                        br.dump_flows()
                    );
                }
            }
        }
    }
}
