//! VXLAN between rvswitch's native tunnelling and the Linux kernel's own vxlan device.
//! Needs root; fails, not skips, when the environment is broken.
//!
//! Topology (every name unique per run, all removed on drop):
//! - namespace "far": veth peer 172.30.<n>.2/24 (its root end is a port of the underlay
//!   bridge) and a kernel vxlan device (VNI 5000, remote 172.30.<n>.1, port 4789) with
//!   10.77.<n>.2/24 on it;
//! - the daemon's underlay bridge: that veth (afpacket) plus its internal port, which gets
//!   172.30.<n>.1/24 (the local tunnel endpoint, OVS style);
//! - the daemon's overlay bridge: a vxlan port (remote_ip 172.30.<n>.2, key 5000) and a
//!   veth to namespace "vm" with 10.77.<n>.1/24.
//!
//! A second run does the same over an IPv6 underlay (fd00:30:<n>::1 / ::2; neighbour
//! discovery instead of ARP), with ping both ways.
//!
//! ping and an iperf3 UDP stream go both ways through the overlay. The kernel's vxlan
//! device only takes VNI 5000, so replies prove the key; the datapath's flows must show
//! tnl_push/tnl_pop with tun_id 0x1388, and tnl/neigh/show the far end's MAC.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn iperf_udp(client: &NsPort, server: &NsPort, dst: &str) -> (u64, f64) {
    let mut srv = Command::new("ip")
        .args([
            "netns", "exec", &server.ns, "iperf3", "-s", "-1", "-p", "5399",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 must be installed");
    std::thread::sleep(Duration::from_millis(500));
    let out = client.exec(&format!(
        "iperf3 -u -c {dst} -p 5399 -b 10M -l 1200 -t 2 -J"
    ));
    let _ = srv.kill();
    let _ = srv.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("iperf3 output ({e}): {text}"));
    let sum = &v["end"]["sum"];
    (
        sum["packets"].as_u64().unwrap_or(0),
        sum["lost_percent"].as_f64().unwrap_or(100.0),
    )
}

#[test]
fn vxlan_with_the_kernel_vxlan_device_both_ways() {
    vxlan_with_kernel(false);
}

/// The same over an IPv6 underlay (neighbour discovery instead of ARP).
#[test]
fn vxlan_over_ipv6_with_the_kernel_vxlan_device() {
    vxlan_with_kernel(true);
}

fn vxlan_with_kernel(v6: bool) {
    let tag = unique(if v6 { "t6" } else { "tv" });
    let n = 100 + (std::process::id() % 100) as u8 + if v6 { 1 } else { 0 };
    let (under_ip, far_ip, plen) = if v6 {
        (format!("fd00:30:{n}::1"), format!("fd00:30:{n}::2"), 64)
    } else {
        (format!("172.30.{n}.1"), format!("172.30.{n}.2"), 24)
    };
    let far = NsPort::new(
        &format!("{tag}f"),
        &format!("172.31.{n}.2"),
        "02:00:ac:1e:00:02",
    );
    if v6 {
        let f = &far.ns;
        sh(&format!(
            "ip netns exec {f} sysctl -qw net.ipv6.conf.all.disable_ipv6=0"
        ));
        sh(&format!(
            "ip netns exec {f} sysctl -qw net.ipv6.conf.{}.disable_ipv6=0",
            far.peer
        ));
        sh(&format!(
            "ip netns exec {f} ip addr add {far_ip}/{plen} dev {} nodad",
            far.peer
        ));
    } else {
        sh(&format!(
            "ip netns exec {} ip addr add {far_ip}/{plen} dev {}",
            far.ns, far.peer
        ));
    }
    let vm = NsPort::new(
        &format!("{tag}v"),
        &format!("10.77.{n}.1"),
        "02:00:0a:4d:00:01",
    );
    let phy = format!("{tag}ph");
    let int = format!("{tag}in");
    let vx = format!("{tag}vx");
    let body = format!(
        "[[bridge]]\nname = \"{phy}\"\n\n[[bridge.port]]\nname = \"{}\"\ntype = \"afpacket\"\n\n\
         [[bridge]]\nname = \"{int}\"\n\n[[bridge.port]]\nname = \"{}\"\ntype = \"afpacket\"\n\n\
         [[bridge.port]]\nname = \"{vx}\"\ntype = \"vxlan\"\n\
         options = {{ remote_ip = \"{far_ip}\", key = \"5000\" }}\n",
        far.host, vm.host
    );
    let daemon = Daemon::start(&body);
    // The underlay bridge's internal port holds the local endpoint.
    sh(&format!(
        "sysctl -qw net.ipv6.conf.{phy}.disable_ipv6={}",
        u8::from(!v6)
    ));
    sh(&format!(
        "ip addr add {under_ip}/{plen} dev {phy}{}",
        if v6 { " nodad" } else { "" }
    ));
    sh(&format!("ip link set {phy} up"));
    // The far end: the kernel's vxlan device.
    let f = &far.ns;
    sh(&format!(
        "ip netns exec {f} ip link add vx0 type vxlan id 5000 remote {under_ip} local {far_ip} dstport 4789 dev {}",
        far.peer
    ));
    sh(&format!(
        "ip netns exec {f} ip link set vx0 address 02:00:0a:4d:00:02"
    ));
    sh(&format!(
        "ip netns exec {f} ip addr add 10.77.{n}.2/24 dev vx0"
    ));
    let mtu = if v6 { 1380 } else { 1400 };
    sh(&format!("ip netns exec {f} ip link set vx0 mtu {mtu} up"));
    sh(&format!(
        "ip netns exec {f} ethtool -K vx0 tx off >/dev/null"
    ));
    sh(&format!(
        "ip netns exec {} ip link set {} mtu 1400",
        vm.ns, vm.peer
    ));
    // The first packets go to ARP resolution (ours for the underlay, the hosts' for the
    // overlay): allow a warm-up, then demand a clean run.
    let warm = vm.ping(&format!("10.77.{n}.2"), 5, "0.3");
    let (sent, got) = vm.ping(&format!("10.77.{n}.2"), 10, "0.1");
    let log = || daemon.log();
    assert_eq!(
        (sent, got),
        (10, 10),
        "vm -> kernel vxlan (warm-up {warm:?}); neigh:\n{}\nflows:\n{}\nlog:\n{}",
        daemon.ok(&["tnl/neigh/show"]),
        daemon.ok(&["dpctl/dump-flows"]),
        log()
    );
    let (sent, got) = far.ping(&format!("10.77.{n}.1"), 10, "0.1");
    assert_eq!((sent, got), (10, 10), "kernel vxlan -> vm");
    // The key and the actions, from the datapath itself.
    let flows = daemon.ok(&["dpctl/dump-flows"]);
    assert!(flows.contains("tnl_push("), "{flows}");
    assert!(flows.contains("tnl_pop("), "{flows}");
    assert!(flows.contains("tun_id=0x1388"), "{flows}");
    if v6 {
        // Both ways worked over the IPv6 underlay; the stream and flush checks below are
        // the IPv4 run's.
        let neigh = daemon.ok(&["tnl/neigh/show"]);
        assert!(neigh.contains(&far_ip), "{neigh}");
        return;
    }
    let neigh = daemon.ok(&["tnl/neigh/show"]);
    assert!(
        neigh.contains(&far_ip) && neigh.contains("02:00:ac:1e:00:02"),
        "{neigh}"
    );
    let ports = daemon.ok(&["tnl/ports/show"]);
    assert!(
        ports.contains(&format!("vxlan remote_ip={far_ip} key=5000")),
        "{ports}"
    );
    // A UDP stream each way.
    let (pkts, lost) = iperf_udp(&vm, &far, &format!("10.77.{n}.2"));
    assert!(
        pkts > 1000 && lost < 5.0,
        "vm -> far: {pkts} packets, {lost}% lost"
    );
    let (pkts, lost) = iperf_udp(&far, &vm, &format!("10.77.{n}.1"));
    assert!(
        pkts > 1000 && lost < 5.0,
        "far -> vm: {pkts} packets, {lost}% lost"
    );
    // Flushing forgets the neighbour; traffic re-resolves it.
    assert!(daemon.ok(&["tnl/neigh/flush"]).contains("OK"));
    assert!(!daemon.ok(&["tnl/neigh/show"]).contains(&far_ip));
    vm.ping(&format!("10.77.{n}.2"), 3, "0.3");
    let (sent, got) = vm.ping(&format!("10.77.{n}.2"), 5, "0.1");
    assert_eq!((sent, got), (5, 5), "after tnl/neigh/flush");
    drop(daemon);
}
