//! AF_PACKET ports on real veth pairs (root): ping and trafgen traffic from a namespace
//! arrives through the mmap'd rx ring with correct bytes (VLAN tags put back), frames from
//! the tx ring reach the peer (tcpdump), our own tx is not looped back, promiscuous mode
//! is on while the port exists.

mod netdev_support;

use std::time::{Duration, Instant};

use netdev_support::*;
use rvswitch::netdev::afpacket::AfPacketNetdev;
use rvswitch::netdev::{self, Netdev, NetdevError};
use rvswitch::packet::{PacketBatch, PacketBuf, PacketPool};

fn open(v: &VethNs, opts: &[(&str, &str)]) -> AfPacketNetdev {
    AfPacketNetdev::open(&spec(&v.host, "afpacket", opts)).expect("opening afpacket port")
}

#[test]
fn ping_from_namespace_arrives_on_rxq() {
    let v = VethNs::new("pr", 1);
    let port = netdev::open(&spec(&v.host, "afpacket", &[])).unwrap();
    assert_eq!(port.netdev_type(), "afpacket");
    assert!(port.is_up());
    let host_mac = port.mac();
    v.static_neighbour(host_mac);
    let mut rxq = port.open_rxq(0).unwrap();
    let mut ping = v.ns_spawn("ping", &["-c", "5", "-i", "0.2", "-W", "1", &v.far_ip]);
    let echo = EchoRequests {
        dst_mac: host_mac,
        src_mac: v.peer_mac(),
        dst_ip: ip4(&v.far_ip),
    };
    let mut pool = PacketPool::new(64);
    let frames = echo.collect(
        |b, p| rxq.recv(b, p).unwrap(),
        &mut pool,
        Duration::from_secs(8),
        5,
    );
    let _ = wait_child(&mut ping, Duration::from_secs(5));
    let seqs: Vec<u16> = echo
        .among(&frames)
        .into_iter()
        .map(|f| icmp_seq(f))
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5], "echo requests seen");
    assert!(port.stats().rx_packets >= 5);
}

#[test]
fn vlan_tag_is_put_back_and_bursts_arrive() {
    let v = VethNs::new("pv", 1);
    let port = open(&v, &[]);
    let mut rxq = port.open_rxq(0).unwrap();
    // A VLAN 42 (PCP 5) tagged frame, to a unicast MAC that is not ours: promiscuous mode
    // must let it in.
    let mut frame = vec![0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    frame.extend_from_slice(&v.peer_mac());
    frame.extend_from_slice(&[0x81, 0x00, 0xa0, 0x2a, 0x88, 0xb5]);
    frame.extend_from_slice(b"vlan-tagged-frame");
    frame.resize(64, 0xab);
    let out = trafgen(&v, &frame, 300);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pool = PacketPool::new(64);
    let got = collect_frames(
        |b, p| rxq.recv(b, p).unwrap(),
        &mut pool,
        Duration::from_secs(3),
        |fs| fs.iter().filter(|f| **f == frame).count() >= 300,
    );
    let same = got.iter().filter(|f| **f == frame).count();
    assert_eq!(
        same,
        300,
        "tagged frames received byte-exact ({} frames in all)",
        got.len()
    );
}

#[test]
fn txq_frames_reach_the_peer_and_are_not_looped_back() {
    let v = VethNs::new("pt", 1);
    let port = open(&v, &[("qdisc_bypass", "true")]);
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("tx.pcap");
    let mut dump = spawn_tcpdump(&v, &pcap, 3);
    let mut txq = port.open_txq(0).unwrap();
    let mut rxq = port.open_rxq(0).unwrap();
    let mut pool = PacketPool::new(64);
    let src = port.mac();
    let mut sent = Vec::new();
    let mut looped = 0;
    let start = Instant::now();
    let mut seq = 0;
    while dump.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(10) {
        let f = test_frame(src, b"afpacket-tx", seq, 80 + seq as usize % 40);
        let mut batch = PacketBatch::new();
        batch.pkts.push(PacketBuf::from_frame(&f));
        assert_eq!(txq.send(&mut batch, &mut pool), 1);
        txq.flush();
        sent.push(f);
        seq += 1;
        std::thread::sleep(Duration::from_millis(50));
        let mut rb = PacketBatch::new();
        rxq.recv(&mut rb, &mut pool).unwrap();
        for p in rb.pkts.drain(..) {
            if sent.iter().any(|s| s[..] == *p.data()) {
                looped += 1;
            }
            pool.put(p);
        }
    }
    assert!(
        wait_child(&mut dump, Duration::from_secs(2)),
        "tcpdump did not finish"
    );
    assert_captured_were_sent(&pcap, 3, &sent);
    assert_eq!(looped, 0, "our own transmissions came back on rx");
    let st = port.stats();
    assert_eq!(st.tx_packets, sent.len() as u64, "{st:?}");
}

#[test]
fn tx_burst_is_delivered() {
    let v = VethNs::new("pb", 1);
    let port = open(&v, &[]);
    let mac = port.mac();
    let mut txq = port.open_txq(0).unwrap();
    let mut pool = PacketPool::new(64);
    let before = v.peer_counter("rx_packets");
    let mut queued = 0;
    for i in 0..200u32 {
        let mut batch = PacketBatch::new();
        for j in 0..32 {
            let mut p = pool.get();
            p.set_data(&test_frame(mac, b"burst", i * 32 + j, 60));
            batch.pkts.push(p);
        }
        queued += txq.send(&mut batch, &mut pool);
        txq.flush();
        if i % 8 == 7 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let start = Instant::now();
    let mut delivered = 0;
    while start.elapsed() < Duration::from_secs(5) {
        txq.flush();
        delivered = v.peer_counter("rx_packets") - before;
        if delivered >= queued as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = port.stats();
    assert_eq!(st.tx_packets + st.tx_dropped, 6400, "{st:?}");
    assert!(queued >= 6000, "only {queued} of 6400 queued ({st:?})");
    assert_eq!(
        delivered, queued as u64,
        "peer counted {delivered}, we queued {queued}"
    );
}

#[test]
fn promiscuous_while_open_and_bad_options() {
    let v = VethNs::new("po", 1);
    assert_eq!(promiscuity(&v.host), 0);
    let port = open(&v, &[]);
    assert_eq!(promiscuity(&v.host), 1, "not promiscuous while open");
    drop(port);
    assert_eq!(
        promiscuity(&v.host),
        0,
        "promiscuous mode left on after drop"
    );

    let e = AfPacketNetdev::open(&spec(&v.host, "afpacket", &[("qdisc_bypass", "maybe")]))
        .err()
        .unwrap();
    assert!(e.to_string().contains("qdisc_bypass=maybe"), "{e}");
    let e = netdev::open(&spec("rvsnosuchdev1", "afpacket", &[]))
        .err()
        .unwrap();
    assert!(
        matches!(e, NetdevError::NoSuchDevice(ref d) if d == "rvsnosuchdev1"),
        "{e}"
    );
}
