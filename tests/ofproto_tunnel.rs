//! Native tunnels through the translator and the userspace datapath over dummy ports: an
//! overlay bridge with a VXLAN port and an underlay bridge whose "internal" port holds the
//! local endpoint. Real PMD threads, real translation; the dummy netdev stands in for
//! NICs, and the underlay route is set in the route cache by hand because a dummy port
//! has no kernel interface for RTM_GETROUTE to name (the root tests use the real one).
//!
//! Checked: the first packet to an unresolved next hop sends an ARP request out of the
//! underlay and is dropped; the snooped ARP reply fills the neighbour cache; then packets
//! leave encapsulated with the right outer header; VXLAN arriving for the local endpoint
//! is popped, recirculated and delivered by the overlay bridge only with the port's key;
//! a bad outer header is counted and dropped.

mod dpif_netdev_support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpif_netdev_support::{pmd_core, udp_frame, wait_for};
use rvswitch::dpif::{Dpif, PortSpec, TnlPush, TunnelType};
use rvswitch::dpif_netdev::{DpNetdevConfig, DpifNetdev};
use rvswitch::netdev::dummy::DummyNetdev;
use rvswitch::ofproto::route::Route;
use rvswitch::ofproto::{Backer, OfprotoConfig, PortConfig};
use rvswitch::packet::tunnel::{build_tnl_header, tnl_pop, tnl_push, Encap, TnlHeaderSpec};
use rvswitch::packet::wire::build::arp_frame;
use rvswitch::packet::wire::{arp, ethernet, ipv4, udp};
use rvswitch::packet::PacketBuf;

const T: Duration = Duration::from_secs(5);
const LOCAL: Ipv4Addr = Ipv4Addr::new(172, 31, 9, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(172, 31, 9, 2);
const INT_MAC: [u8; 6] = [2, 0, 0, 0x99, 0, 1];
const REMOTE_MAC: [u8; 6] = [2, 0, 0, 0x99, 0, 2];
const VM_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const FAR_VM_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

fn spec(name: &str, ty: &str, opts: &[(&str, &str)]) -> PortSpec {
    PortSpec {
        name: name.into(),
        port_type: ty.into(),
        options: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

struct Rig {
    backer: Arc<Backer>,
    dp: Arc<DpifNetdev>,
    vm: Arc<DummyNetdev>,
    eth: Arc<DummyNetdev>,
    vx: u32,
}

/// A userspace datapath with one PMD and a backer holding the two bridges every test
/// here uses: `br-phy` (underlay, owns the tunnel endpoint) and `br-int` (overlay).
fn underlay_and_overlay(name: &str) -> (Arc<DpifNetdev>, Arc<Backer>) {
    let dp = DpifNetdev::new(
        name,
        DpNetdevConfig {
            pmd_cores: vec![pmd_core()],
            ..Default::default()
        },
    )
    .unwrap();
    let backer = Backer::new(dp.clone());
    backer
        .add_bridge("br-phy", OfprotoConfig::default())
        .unwrap();
    backer
        .add_bridge("br-int", OfprotoConfig::default())
        .unwrap();
    (dp, backer)
}

fn rig(name: &str) -> Rig {
    let (dp, backer) = underlay_and_overlay(name);
    let int = format!("{name}-int");
    let eth = format!("{name}-eth");
    let vm = format!("{name}-vm");
    let vx = format!("{name}-vx");
    for (br, s) in [
        ("br-phy", spec(&int, "dummy", &[])),
        ("br-phy", spec(&eth, "dummy", &[])),
        ("br-int", spec(&vm, "dummy", &[])),
        (
            "br-int",
            spec(
                &vx,
                "vxlan",
                &[("remote_ip", "172.31.9.2"), ("key", "5000")],
            ),
        ),
    ] {
        backer
            .add_port(br, &s, None, PortConfig::default())
            .unwrap();
    }
    let ts = backer.tunnels();
    ts.routes.insert(
        IpAddr::V4(REMOTE),
        Route {
            dev: int.clone(),
            src: Some(IpAddr::V4(LOCAL)),
            gateway: None,
        },
        Instant::now() + Duration::from_secs(3600),
    );
    ts.set_dev_mac(&int, INT_MAC);
    Rig {
        vx: dp.port_query_by_name(&vx).unwrap().port_no,
        vm: dp.dummy_port(&vm).unwrap(),
        eth: dp.dummy_port(&eth).unwrap(),
        backer,
        dp,
    }
}

fn collect(d: &DummyNetdev, want: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    wait_for(T, || {
        got.extend(d.take_sent());
        got.len() >= want
    });
    got
}

fn vm_frame(sport: u16) -> Vec<u8> {
    let mut f = udp_frame([10, 1, 0, 1], [10, 1, 0, 2], sport, 7, b"overlay");
    f[0..6].copy_from_slice(&FAR_VM_MAC);
    f[6..12].copy_from_slice(&VM_MAC);
    f
}

/// What the far end would send to us: VXLAN to LOCAL with `vni`, carrying `inner`.
fn from_remote(inner: &[u8], vni: u32, vx: u32) -> Vec<u8> {
    let header = build_tnl_header(&TnlHeaderSpec {
        eth_src: REMOTE_MAC,
        eth_dst: INT_MAC,
        src: IpAddr::V4(REMOTE),
        dst: IpAddr::V4(LOCAL),
        tos: 0,
        ttl: 64,
        dont_fragment: true,
        encap: Encap::Vxlan {
            vni,
            dst_port: 4789,
            udp_csum: false,
        },
    })
    .unwrap();
    let mut p = PacketBuf::default();
    p.set_data(inner);
    tnl_push(
        &mut p,
        &TnlPush {
            tnl_port: vx,
            out_port: 0,
            tnl_type: TunnelType::Vxlan,
            header,
        },
        1,
    )
    .unwrap();
    p.data().to_vec()
}

#[test]
fn vxlan_through_overlay_and_underlay_bridges() {
    let r = rig("otn");
    // 1. No neighbour yet: the packet is dropped and an ARP request leaves the underlay.
    r.vm.inject(0, &vm_frame(1)).unwrap();
    assert!(wait_for(T, || r.backer.tunnels().neigh.is_empty()
        && r.dp
            .pmd_stats()
            .iter()
            .map(|e| e.stats.upcall_ok)
            .sum::<u64>()
            >= 1));
    let mut arps = Vec::new();
    assert!(wait_for(T, || {
        r.backer.run();
        arps.extend(r.eth.take_sent());
        !arps.is_empty()
    }));
    let a = arp::Repr::parse(&arp::Packet::new_checked(&arps[0][14..]).unwrap()).unwrap();
    assert_eq!(&arps[0][0..6], &[0xff; 6], "broadcast");
    assert_eq!(a.oper, arp::op::REQUEST);
    assert_eq!((a.spa, a.tpa), (u32::from(LOCAL), u32::from(REMOTE)));
    assert_eq!(a.sha, INT_MAC);
    // 2. The reply comes in on the underlay and is snooped.
    let reply = arp_frame(
        &ethernet::Repr {
            dst: INT_MAC,
            src: REMOTE_MAC,
            ..Default::default()
        },
        &arp::Repr {
            oper: arp::op::REPLY,
            sha: REMOTE_MAC,
            spa: u32::from(REMOTE),
            tha: INT_MAC,
            tpa: u32::from(LOCAL),
        },
    )
    .unwrap();
    r.eth.inject(0, &reply).unwrap();
    assert!(wait_for(T, || r
        .backer
        .tunnels()
        .neigh
        .lookup(IpAddr::V4(REMOTE), Instant::now())
        == Some(REMOTE_MAC)));
    assert!(r.backer.tunnels().neigh.show().contains("172.31.9.2"));
    r.backer.run();
    // 3. Now the VM's packets leave encapsulated, out of the port the reply came from.
    let inner = vm_frame(2);
    r.vm.inject(0, &inner).unwrap();
    let out = collect(&r.eth, 1);
    assert_eq!(out.len(), 1, "one encapsulated frame: {out:?}");
    let o = &out[0];
    assert_eq!(&o[0..6], &REMOTE_MAC);
    assert_eq!(&o[6..12], &INT_MAC);
    let ip = ipv4::Packet::new_checked(&o[14..]).unwrap();
    assert_eq!(
        (ip.src_addr(), ip.dst_addr()),
        (u32::from(LOCAL), u32::from(REMOTE))
    );
    assert_eq!(ip.ttl(), 64);
    assert!(ip.dont_frag());
    let u = udp::Packet::new_checked(&o[34..]).unwrap();
    assert_eq!(u.dst_port(), 4789);
    let mut p = PacketBuf::default();
    p.set_data(o);
    assert_eq!(tnl_pop(&mut p).unwrap().tun_id, 5000);
    assert_eq!(p.data(), &inner[..]);
    let flows = r.dp.dump_flows_text();
    assert!(flows.contains("tnl_push("), "{flows}");
    // 4. VXLAN for the local endpoint with the port's key reaches the VM.
    let mut back = udp_frame([10, 1, 0, 2], [10, 1, 0, 1], 7, 9, b"back");
    back[0..6].copy_from_slice(&VM_MAC);
    back[6..12].copy_from_slice(&FAR_VM_MAC);
    r.eth.inject(0, &from_remote(&back, 5000, r.vx)).unwrap();
    let got = collect(&r.vm, 1);
    assert_eq!(got, vec![back.clone()], "decapsulated to the VM");
    let flows = r.dp.dump_flows_text();
    assert!(flows.contains(&format!("tnl_pop({})", r.vx)), "{flows}");
    assert!(flows.contains("tun_id=0x1388"), "{flows}");
    // 5. Another key is dropped by the tunnel port.
    r.eth.inject(0, &from_remote(&back, 7, r.vx)).unwrap();
    assert!(wait_for(T, || r
        .dp
        .dump_flows_text()
        .contains("tun_id=0x7")));
    assert!(r.vm.take_sent().is_empty(), "key 7 must not reach the VM");
    // 6. A corrupted outer IPv4 checksum is counted and dropped.
    let mut bad = from_remote(&back, 5000, r.vx);
    bad[24] ^= 0x5a;
    r.eth.inject(0, &bad).unwrap();
    assert!(wait_for(T, || r
        .dp
        .pmd_stats()
        .iter()
        .map(|e| e.stats.tnl_pop_errors)
        .sum::<u64>()
        == 1));
    assert!(r.vm.take_sent().is_empty());
    let show = r.backer.tunnels().ports_show();
    assert!(
        show.contains("vxlan remote_ip=172.31.9.2 key=5000"),
        "{show}"
    );
}

/// remote_ip=flow and key=flow: the destination and VNI come from set_field / set_tunnel
/// in the rule that outputs to the tunnel port.
#[test]
fn flow_based_remote_and_key_from_set_field() {
    let name = "otf";
    let (dp, backer) = underlay_and_overlay(name);
    let (int, eth, vm, vx) = ("otf-int", "otf-eth", "otf-vm", "otf-vx");
    backer
        .add_port(
            "br-phy",
            &spec(int, "dummy", &[]),
            None,
            PortConfig::default(),
        )
        .unwrap();
    backer
        .add_port(
            "br-phy",
            &spec(eth, "dummy", &[]),
            None,
            PortConfig::default(),
        )
        .unwrap();
    backer
        .add_port(
            "br-int",
            &spec(vm, "dummy", &[]),
            None,
            PortConfig::default(),
        )
        .unwrap();
    let bad = backer.add_port(
        "br-int",
        &spec(
            "otf-bad",
            "geneve",
            &[("remote_ip", "flow"), ("ttl", "300")],
        ),
        None,
        PortConfig::default(),
    );
    let msg = bad.unwrap_err().to_string();
    assert!(msg.contains("otf-bad") && msg.contains("ttl"), "{msg}");
    backer
        .add_port(
            "br-int",
            &spec(
                vx,
                "vxlan",
                &[("remote_ip", "flow"), ("key", "flow"), ("ttl", "9")],
            ),
            None,
            PortConfig::default(),
        )
        .unwrap();
    // vm is OpenFlow port 1, the tunnel port 2.
    backer
        .add_flow(
            "br-int",
            "in_port=1,actions=set_field:172.31.9.2->tun_dst,set_tunnel:77,output:2",
        )
        .unwrap();
    let ts = backer.tunnels();
    ts.routes.insert(
        IpAddr::V4(REMOTE),
        Route {
            dev: int.to_string(),
            src: Some(IpAddr::V4(LOCAL)),
            gateway: None,
        },
        Instant::now() + Duration::from_secs(3600),
    );
    ts.set_dev_mac(int, INT_MAC);
    ts.neigh
        .learn(IpAddr::V4(REMOTE), REMOTE_MAC, "br-phy", Instant::now());
    let d_vm = dp.dummy_port(vm).unwrap();
    let d_eth = dp.dummy_port(eth).unwrap();
    let inner = vm_frame(3);
    d_vm.inject(0, &inner).unwrap();
    let out = collect(&d_eth, 1);
    assert_eq!(out.len(), 1, "encapsulated frame on the underlay");
    let ip = ipv4::Packet::new_checked(&out[0][14..]).unwrap();
    assert_eq!(ip.dst_addr(), u32::from(REMOTE), "remote from tun_dst");
    assert_eq!(ip.src_addr(), u32::from(LOCAL));
    assert_eq!(ip.ttl(), 9);
    let mut p = PacketBuf::default();
    p.set_data(&out[0]);
    assert_eq!(tnl_pop(&mut p).unwrap().tun_id, 77, "key from set_tunnel");
    assert_eq!(p.data(), &inner[..]);
    let show = ts.ports_show();
    assert!(show.contains("remote_ip=flow key=flow"), "{show}");
}

/// The megaflow invariant on tunnel translations: any key equal to a translated one under
/// the returned mask translates to the same actions, for the tnl_push side (overlay
/// bridge, output to the tunnel port) and the tnl_pop side (underlay bridge, VXLAN to the
/// local endpoint).
#[test]
fn tunnel_translations_keep_the_megaflow_invariant() {
    use rvswitch::packet::parse::flow_extract;
    use rvswitch::packet::FlowKey;
    let r = rig("otm");
    let ts = r.backer.tunnels();
    ts.neigh
        .learn(IpAddr::V4(REMOTE), REMOTE_MAC, "br-phy", Instant::now());
    let key_of = |frame: &[u8], port: &str| {
        let mut p = PacketBuf::default();
        p.set_data(frame);
        let mut k = FlowKey::default();
        flow_extract(&mut p, &mut k);
        k.in_port = r.dp.port_query_by_name(port).unwrap().port_no;
        k
    };
    let mut back = udp_frame([10, 1, 0, 2], [10, 1, 0, 1], 7, 9, b"back");
    back[0..6].copy_from_slice(&VM_MAC);
    let cases = [
        ("br-int", key_of(&vm_frame(4), "otm-vm"), "tnl_push"),
        (
            "br-phy",
            key_of(&from_remote(&back, 5000, r.vx), "otm-eth"),
            "tnl_pop",
        ),
    ];
    let mut seed = 0x9e37_79b9u32;
    let now = Instant::now();
    for (br, key, want) in cases {
        let b = r.backer.bridge(br).unwrap();
        let first = b.translate(&req(&key, now));
        assert!(
            first.actions.iter().any(|a| format!("{a:?}")
                .to_lowercase()
                .contains(&want.replace('_', ""))),
            "{br}: expected {want}: {:?}",
            first.actions
        );
        for _ in 0..300 {
            let mut k = key;
            {
                let kb: &mut [u8] = bytemuck::bytes_of_mut(&mut k);
                let mb: &[u8] = bytemuck::bytes_of(&first.mask.0);
                for (i, byte) in kb.iter_mut().enumerate() {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    *byte ^= (seed as u8) & !mb[i];
                }
            }
            let again = b.translate(&req(&k, now));
            assert_eq!(
                again.actions, first.actions,
                "{br}: a key equal under the mask translated differently"
            );
        }
    }
}

fn req(k: &rvswitch::packet::FlowKey, now: Instant) -> rvswitch::ofproto::XlateRequest<'_> {
    rvswitch::ofproto::XlateRequest {
        key: k,
        packet: None,
        may_learn: false,
        revalidating: false,
        trace: false,
        now,
    }
}
