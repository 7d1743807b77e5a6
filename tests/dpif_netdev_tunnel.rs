//! Native tunnelling in the userspace datapath over dummy ports: real PMD threads run
//! `tnl_push` / `tnl_pop` actions; the dummy netdev stands in for NICs (no root needed).
//! The outer headers that leave are checked with the packet layer's wire views, and
//! decapsulated packets must recirculate as the tunnel port with their tunnel id in the
//! flow key.

mod dpif_netdev_support;

use std::net::{IpAddr, Ipv4Addr};

use dpif_netdev_support::*;
use rvswitch::dpif::{DpAction, Dpif, TnlPush, TunnelType};
use rvswitch::dpif_netdev::DpifNetdev;
use rvswitch::packet::tunnel::{
    build_tnl_header, tnl_pop, tnl_push, Encap, TnlHeaderSpec, UDP_SRC_MAX, UDP_SRC_MIN,
};
use rvswitch::packet::wire::{ipv4, udp};
use rvswitch::packet::PacketBuf;

const LOCAL: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 2);

fn vxlan_push(vni: u32, tnl_port: u32, out_port: u32) -> TnlPush {
    let header = build_tnl_header(&TnlHeaderSpec {
        eth_src: [2, 0, 0, 0, 0xee, 1],
        eth_dst: [2, 0, 0, 0, 0xee, 2],
        src: IpAddr::V4(LOCAL),
        dst: IpAddr::V4(REMOTE),
        tos: 0,
        ttl: 64,
        dont_fragment: true,
        encap: Encap::Vxlan {
            vni,
            dst_port: 4789,
            udp_csum: false,
        },
    })
    .expect("header");
    TnlPush {
        tnl_port,
        out_port,
        tnl_type: TunnelType::Vxlan,
        header,
    }
}

fn collect(d: &rvswitch::netdev::dummy::DummyNetdev, want: usize) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    wait_for(T, || {
        sent.extend(d.take_sent());
        sent.len() >= want
    });
    sent
}

fn stat(dp: &DpifNetdev, f: impl Fn(&rvswitch::pmd::PmdStats) -> u64) -> u64 {
    dp.pmd_stats().iter().map(|e| f(&e.stats)).sum()
}

#[test]
fn tnl_push_sends_outer_vxlan_header_out_of_the_underlay_port() {
    let dp = dp("dpt-push", cfg());
    let vm = dp.port_add(&port_spec("tp-vm", "dummy"), None).unwrap();
    let under = dp.port_add(&port_spec("tp-under", "dummy"), None).unwrap();
    let vx = dp.port_add(&port_spec("tp-vx", "vxlan"), None).unwrap();
    let (k, m) = ipv4_match(vm);
    put(
        &dp,
        k,
        m,
        vec![DpAction::TnlPush(vxlan_push(0x1234, vx, under))],
    );
    let d_vm = dp.dummy_port("tp-vm").unwrap();
    let d_under = dp.dummy_port("tp-under").unwrap();
    let mut sports = Vec::new();
    for sport in [1000u16, 1001, 1002, 1003] {
        let inner = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], sport, 80, b"overlay payload");
        d_vm.inject(0, &inner).unwrap();
        let sent = collect(&d_under, 1);
        assert_eq!(sent.len(), 1, "one encapsulated packet on the underlay");
        let out = &sent[0];
        assert_eq!(out.len(), inner.len() + 50, "VXLAN over IPv4 adds 50 bytes");
        assert_eq!(&out[..6], &[2, 0, 0, 0, 0xee, 2], "next-hop MAC");
        let (ip_ok, _) = checksums_ok(out, 14);
        assert!(ip_ok, "outer IPv4 checksum");
        let ip = ipv4::Packet::new_checked(&out[14..]).unwrap();
        assert_eq!(ip.src_addr(), u32::from(LOCAL));
        assert_eq!(ip.dst_addr(), u32::from(REMOTE));
        assert_eq!(ip.total_len() as usize, out.len() - 14);
        let u = udp::Packet::new_checked(&out[34..]).unwrap();
        assert_eq!(u.dst_port(), 4789);
        assert!((UDP_SRC_MIN..=UDP_SRC_MAX).contains(&u.src_port()));
        sports.push(u.src_port());
        let mut p = PacketBuf::default();
        p.set_data(out);
        let meta = tnl_pop(&mut p).expect("pops as VXLAN");
        assert_eq!(meta.tun_id, 0x1234);
        assert_eq!(p.data(), &inner[..], "inner frame intact");
    }
    sports.sort();
    sports.dedup();
    assert!(
        sports.len() > 1,
        "UDP source port follows the inner flow hash"
    );
}

#[test]
fn tnl_push_over_underlay_mtu_is_counted_and_dropped() {
    let dp = dp("dpt-mtu", cfg());
    let vm = dp.port_add(&port_spec("tm-vm", "dummy"), None).unwrap();
    let under = dp.port_add(&port_spec("tm-under", "dummy"), None).unwrap();
    let vx = dp.port_add(&port_spec("tm-vx", "vxlan"), None).unwrap();
    let (k, m) = ipv4_match(vm);
    put(&dp, k, m, vec![DpAction::TnlPush(vxlan_push(7, vx, under))]);
    let d_vm = dp.dummy_port("tm-vm").unwrap();
    let d_under = dp.dummy_port("tm-under").unwrap();
    // 1500-byte inner IP packet: 1550 outer IP bytes > the dummy port's MTU of 1500.
    let big = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 5, 6, &[0xab; 1472]);
    d_vm.inject(0, &big).unwrap();
    assert!(wait_for(T, || stat(&dp, |s| s.tnl_mtu_drops) == 1));
    // 1450-byte inner IP packet: exactly 1500 outer IP bytes, sent.
    let fits = udp_frame([10, 0, 0, 1], [10, 0, 0, 2], 5, 6, &[0xab; 1422]);
    d_vm.inject(0, &fits).unwrap();
    let sent = collect(&d_under, 1);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].len(), 1514);
    assert_eq!(stat(&dp, |s| s.tnl_mtu_drops), 1);
    let show = dp.pmd_stats_show();
    assert!(
        show.contains("tunnel drops: mtu 1, push errors 0, bad outer headers 0"),
        "{show}"
    );
}

#[test]
fn tnl_pop_recirculates_as_the_tunnel_port_with_tun_id_and_drops_bad_outer_headers() {
    let dp = dp("dpt-pop", cfg());
    let vm = dp.port_add(&port_spec("tq-vm", "dummy"), None).unwrap();
    let under = dp.port_add(&port_spec("tq-under", "dummy"), None).unwrap();
    let vx = dp.port_add(&port_spec("tq-vx", "vxlan"), None).unwrap();
    let (k, m) = ipv4_match(under);
    put(&dp, k, m, vec![DpAction::TnlPop(vx)]);
    // After the pop: only tun_id 0x1234 from REMOTE goes to the VM port.
    let (mut k2, mut m2) = ipv4_match(vx);
    k2.tun_id = 0x1234;
    m2.0.tun_id = u64::MAX;
    k2.tun_ipv4_src = u32::from(REMOTE);
    m2.0.tun_ipv4_src = u32::MAX;
    put(&dp, k2, m2, vec![DpAction::Output(vm)]);
    let d_vm = dp.dummy_port("tq-vm").unwrap();
    let d_under = dp.dummy_port("tq-under").unwrap();
    let inner = udp_frame([10, 0, 0, 2], [10, 0, 0, 1], 4000, 53, b"from the far end");
    let encap = |vni: u32| {
        let mut p = PacketBuf::default();
        p.set_data(&inner);
        tnl_push(&mut p, &vxlan_push(vni, vx, under), 99).unwrap();
        // The far end's view: swap the outer addresses so REMOTE is the source.
        let mut f = p.data().to_vec();
        f[26..30].copy_from_slice(&REMOTE.octets());
        f[30..34].copy_from_slice(&LOCAL.octets());
        f
    };
    d_under.inject(0, &encap(0x1234)).unwrap();
    let got = collect(&d_vm, 1);
    assert_eq!(got.len(), 1, "decapsulated packet reaches the VM port");
    assert_eq!(got[0], inner);
    // Another VNI has no flow after the pop (no translator here): nothing arrives.
    d_under.inject(0, &encap(0x99)).unwrap();
    assert!(wait_for(T, || stat(&dp, |s| s.recirculations) >= 2));
    assert!(
        d_vm.take_sent().is_empty(),
        "VNI 0x99 must not reach the VM"
    );
    // A corrupted outer IPv4 checksum and a truncated frame: counted and dropped.
    let mut bad = encap(0x1234);
    bad[24] ^= 0xff;
    d_under.inject(0, &bad).unwrap();
    let mut cut = encap(0x1234);
    cut.truncate(14 + 20 + 8 + 4);
    d_under.inject(0, &cut).unwrap();
    assert!(wait_for(T, || stat(&dp, |s| s.tnl_pop_errors) == 2));
    assert!(d_vm.take_sent().is_empty());
    // A good one still passes afterwards.
    d_under.inject(0, &encap(0x1234)).unwrap();
    assert_eq!(collect(&d_vm, 1).len(), 1);
}
