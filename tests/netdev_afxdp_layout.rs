//! Where an AF_XDP port's received frames land in their umem slots, how long they may be,
//! and how queued transmits leave (root; real veth pairs, trafgen as the sender):
//! - frames are staggered over sixteen cache-line positions of their slots, so a batch's
//!   headers do not all map to one L1 set, and arrive intact;
//! - a frame as long as the staggered limit (2,880 bytes) arrives whole; a device whose
//!   MTU needs more gets unstaggered slots and its longer frames arrive too;
//! - batches queued with `send` wait for `flush`, and one flush sends them all.

mod netdev_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use netdev_support::*;
use rvswitch::netdev::afxdp::AfxdpNetdev;
use rvswitch::netdev::{Netdev, Rxq};
use rvswitch::packet::{PacketBatch, PacketBuf, PacketPool, MAX_BURST};

/// The offset of a received frame's first byte when the kernel wrote it at a slot's
/// start: its `XDP_PACKET_HEADROOM`.
const KERNEL_HEADROOM: usize = 256;

fn set_mtu(v: &VethNs, mtu: u32) {
    run(
        "ip",
        &["link", "set", "dev", &v.host, "mtu", &mtu.to_string()],
    );
    v.ns_run(
        "ip",
        &["link", "set", "dev", &v.peer, "mtu", &mtu.to_string()],
    );
}

/// Sends `count` copies of `frame` from the peer with trafgen and returns, for every copy
/// received intact, the offset of its bytes in their umem slot.
fn receive_offsets(v: &VethNs, rxq: &mut dyn Rxq, frame: &[u8], count: u64) -> Vec<usize> {
    let mut pool = PacketPool::new(256);
    let out = trafgen(v, frame, count);
    assert_trafgen_ok(&out);
    let mut offsets = Vec::new();
    let mut batch = PacketBatch::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while (offsets.len() as u64) < count && Instant::now() < deadline {
        if rxq.recv(&mut batch, &mut pool).unwrap() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        for p in batch.pkts.drain(..) {
            if p.data() == frame {
                let (_, start, len) = p.lent_frame().expect("received into a umem frame");
                assert_eq!(len, frame.len());
                offsets.push(start);
            }
            pool.put(p);
        }
    }
    offsets
}

#[test]
fn received_frames_are_staggered_over_sixteen_cache_lines_of_their_slots() {
    let v = VethNs::new("ly", 1);
    let port = open_generic(&v);
    assert_eq!(port.rx_frame_max(), 2880);
    let mut rxq = port.open_rxq(0).unwrap();
    let frame = test_frame(v.peer_mac(), b"stagger", 1, 64);
    let offsets = receive_offsets(&v, &mut *rxq, &frame, 200);
    assert_eq!(offsets.len(), 200, "received {} of 200", offsets.len());
    let positions: BTreeSet<usize> = offsets
        .iter()
        .map(|&o| {
            assert!(
                o >= KERNEL_HEADROOM && (o - KERNEL_HEADROOM) % 64 == 0,
                "offset {o}"
            );
            (o - KERNEL_HEADROOM) / 64
        })
        .collect();
    assert_eq!(
        positions,
        (0..16).collect::<BTreeSet<_>>(),
        "every one of the sixteen positions is used"
    );
}

/// Pings from the peer with `payload` bytes of ICMP data (don't fragment) and returns,
/// for each echo request received, its length and offset in its umem slot.
fn receive_pings(v: &VethNs, port: &AfxdpNetdev, payload: usize) -> Vec<(usize, usize)> {
    let host_mac = port.mac();
    v.static_neighbour(host_mac);
    let mut rxq = port.open_rxq(0).unwrap();
    let mut ping = v.ns_spawn(
        "ping",
        &[
            "-c",
            "5",
            "-i",
            "0.2",
            "-W",
            "1",
            "-M",
            "do",
            "-s",
            &payload.to_string(),
            &v.far_ip,
        ],
    );
    let (mut pool, mut batch) = (PacketPool::new(64), PacketBatch::new());
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut ping_done = false;
    while seen.len() < 5 && Instant::now() < deadline {
        if rxq.recv(&mut batch, &mut pool).unwrap() == 0 {
            if ping_done {
                break; // and its last frame is in
            }
            ping_done = matches!(ping.try_wait(), Ok(Some(_)));
            std::thread::sleep(Duration::from_millis(1));
        }
        for p in batch.pkts.drain(..) {
            if is_echo_request(p.data(), host_mac, v.peer_mac(), ip4(&v.far_ip)) {
                let (_, start, len) = p.lent_frame().expect("received into a umem frame");
                seen.push((len, start));
            }
            pool.put(p);
        }
    }
    let _ = wait_child(&mut ping, Duration::from_secs(5));
    seen
}

/// A veth pair at `mtu` and our end opened in generic mode, which must report `rx_max`.
fn port_at_mtu(tag: &str, mtu: u32, rx_max: usize) -> (VethNs, AfxdpNetdev) {
    let v = VethNs::new(tag, 1);
    set_mtu(&v, mtu);
    let port = open_generic(&v);
    assert_eq!(port.rx_frame_max(), rx_max);
    (v, port)
}

/// Pings filling the MTU (IPv4 20 + ICMP 8 + payload) must all arrive whole; returns
/// their lengths and slot offsets.
fn full_size_pings(v: &VethNs, port: &AfxdpNetdev, mtu: usize) -> Vec<(usize, usize)> {
    let seen = receive_pings(v, port, mtu - 28);
    assert!(seen.len() >= 5, "{seen:?} {:?}", port.stats());
    assert!(seen.iter().all(|&(len, _)| len == 14 + mtu), "{seen:?}");
    seen
}

#[test]
fn frames_up_to_the_staggered_limit_arrive_whole() {
    // 2,862 + 18 (Ethernet, one VLAN tag) = 2,880: the largest MTU staggered slots hold.
    let (v, port) = port_at_mtu("lm", 2862, 2880);
    full_size_pings(&v, &port, 2862);
    // Raised after the port opened, the MTU lets through frames its slots cannot hold:
    // the kernel drops them (counted), it does not write past the slot.
    set_mtu(&v, 3000);
    let dropped = port.stats().rx_dropped;
    let seen = receive_pings(&v, &port, 3000 - 28);
    assert!(seen.is_empty(), "{seen:?}");
    assert!(port.stats().rx_dropped >= dropped + 5, "{:?}", port.stats());
}

#[test]
fn a_device_whose_mtu_needs_more_gets_unstaggered_slots() {
    let (v, port) = port_at_mtu("la", 3600, 3840);
    let seen = full_size_pings(&v, &port, 3600);
    assert!(
        seen.iter().all(|&(_, start)| start == KERNEL_HEADROOM),
        "{seen:?}"
    );
}

#[test]
fn queued_batches_wait_for_flush_and_one_flush_sends_them_all() {
    let v = VethNs::new("lf", 1);
    let port = open_generic(&v);
    let mut txq = port.open_txq(0).unwrap();
    let mut pool = PacketPool::new(64);
    let src = port.mac();
    let before = v.peer_counter("rx_packets");
    let wakeups = port.wakeups();
    const BATCHES: u32 = 8;
    for b in 0..BATCHES {
        let mut batch = PacketBatch::new();
        for i in 0..MAX_BURST as u32 {
            let f = test_frame(src, b"queued", b * 100 + i, 60);
            batch.pkts.push(PacketBuf::from_frame(&f));
        }
        assert_eq!(txq.send(&mut batch, &mut pool), MAX_BURST);
    }
    // Copy mode transmits only inside a kick: nothing has left yet.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        v.peer_counter("rx_packets"),
        before,
        "sent before the flush"
    );
    assert_eq!(port.wakeups(), wakeups);
    txq.flush();
    let total = u64::from(BATCHES) * MAX_BURST as u64;
    let deadline = Instant::now() + Duration::from_secs(5);
    while v.peer_counter("rx_packets") - before < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(v.peer_counter("rx_packets") - before, total);
    let kicks = port.wakeups() - wakeups;
    if port.tx_budget_raised() {
        assert_eq!(kicks, 1, "one sendto for {total} descriptors");
    } else {
        // Before Linux 6.17 a copy-mode sendto sends 32 descriptors.
        assert_eq!(kicks, u64::from(BATCHES));
    }
    assert_eq!(port.stats().tx_packets, total);
}
