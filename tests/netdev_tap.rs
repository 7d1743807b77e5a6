//! Tap and internal ports (root): the device is created up under the port's name, frames
//! the host stack sends through it (ping from a namespace the tap was moved into) arrive on
//! our Rxq, frames we send come out of it (tcpdump), and the device is gone after drop.

mod netdev_support;

use std::process::Command;
use std::time::Duration;

use netdev_support::*;
use rvswitch::netdev::{self, linux, NetdevError};
use rvswitch::packet::{PacketBatch, PacketBuf, PacketPool};

/// A tap name unique to this call: `<tag><id>t`.
fn tap_name(tag: &str) -> String {
    format!("{tag}{}t", unique_id())
}

#[test]
fn tap_is_created_up_and_removed_on_drop() {
    require_root();
    let name = tap_name("ta");
    let port = netdev::open(&spec(&name, "tap", &[])).expect("creating tap");
    assert_eq!(port.netdev_type(), "tap");
    assert!(!port.pollable());
    assert!(link_exists(&name));
    let flags = linux::flags(&name).unwrap();
    assert_ne!(flags & libc::IFF_UP as u32, 0, "tap not up");
    assert_eq!(port.mtu(), 1500);
    assert_eq!(port.mac(), linux::hw_addr(&name).unwrap());
    assert_ne!(port.mac(), [0; 6]);
    let rxq = port.open_rxq(0).unwrap();
    let txq = port.open_txq(3).unwrap();
    assert!(port.open_rxq(0).is_err(), "rx queue opened twice");
    drop((rxq, txq));
    drop(port);
    assert!(!link_exists(&name), "tap {name} still exists after drop");
}

#[test]
fn internal_port_carries_traffic_both_ways() {
    let ns = Netns::new(&format!("rvs-ti-{}", unique_id()));
    let name = tap_name("ti");
    let port = netdev::open(&spec(&name, "internal", &[])).expect("creating internal port");
    assert_eq!(port.netdev_type(), "internal");
    // Move the device into the namespace: our fd keeps working, the namespace's stack
    // (and its tools) get the other side.
    run("ip", &["link", "set", &name, "netns", ns.name()]);
    ns.exec("sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    ns.exec("ip", &["link", "set", &name, "up"]);
    ns.exec("ip", &["addr", "add", "10.77.0.1/24", "dev", &name]);
    ns.exec(
        "ip",
        &[
            "neigh",
            "replace",
            "10.77.0.2",
            "lladdr",
            "02:00:00:77:00:02",
            "dev",
            &name,
        ],
    );
    let out = ns.exec("cat", &[&format!("/sys/class/net/{name}/address")]);
    let tap_mac = parse_mac(String::from_utf8_lossy(&out.stdout).trim());

    // Host stack -> our rxq.
    let mut rxq = port.open_rxq(0).unwrap();
    let mut ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "1",
            "10.77.0.2",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let echo = EchoRequests {
        dst_mac: parse_mac("02:00:00:77:00:02"),
        src_mac: tap_mac,
        dst_ip: [10, 77, 0, 2],
    };
    let mut pool = PacketPool::new(64);
    let frames = echo.collect(
        |b, p| rxq.recv(b, p).unwrap(),
        &mut pool,
        Duration::from_secs(8),
        3,
    );
    let _ = wait_child(&mut ping, Duration::from_secs(5));
    let echoes = echo.among(&frames).len();
    assert!(
        echoes >= 3,
        "got {echoes} echo requests of {} frames",
        frames.len()
    );
    assert!(port.stats().rx_packets >= 3);

    // Our txq -> host stack (tcpdump on the device in the namespace).
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("tap.pcap");
    let mut dump = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "tcpdump",
            "-i",
            &name,
            "-nn",
            "-U",
            "-c",
            "2",
            "-w",
        ])
        .arg(&pcap)
        .arg("ether proto 0x88b5")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut txq = port.open_txq(0).unwrap();
    let sent = send_until_captured(&mut dump, |seq| {
        let f = test_frame([0x02, 0, 0, 0x77, 0, 9], b"tap-tx", seq, 90);
        let mut batch = PacketBatch::new();
        batch.pkts.push(PacketBuf::from_frame(&f));
        assert_eq!(txq.send(&mut batch, &mut pool), 1);
        f
    });
    assert_captured_were_sent(&pcap, 2, &sent);
    drop((rxq, txq));
    drop(port);
    let out = Command::new("ip")
        .args(["-n", ns.name(), "link", "show", &name])
        .output()
        .unwrap();
    assert!(!out.status.success(), "internal port {name} survived drop");
}

#[test]
fn bad_tap_names_are_rejected() {
    require_root();
    let e = netdev::open(&spec("a-name-much-too-long", "tap", &[]))
        .err()
        .unwrap();
    assert!(matches!(e, NetdevError::BadOption(_)), "{e}");
    assert!(e.to_string().contains("a-name-much-too-long"));
    // "lo" exists and is not a tap: creation must fail and say so.
    let e = netdev::open(&spec("lo", "tap", &[])).err().unwrap();
    assert!(
        e.to_string()
            .contains("tap port lo: creating the tap device"),
        "{e}"
    );
}
