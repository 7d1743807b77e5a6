//! AF_XDP ports on real veth pairs (root): traffic from ping and trafgen in a namespace
//! arrives through our Rxq, frames from our Txq arrive at the peer (tcpdump, kernel
//! counters), umem frames are all recycled, the XDP program goes away with the port.

mod netdev_support;

use std::time::Duration;

use netdev_support::*;
use rvswitch::netdev::afxdp::{
    AfxdpNetdev, XdpMode, COLD_BACKLOG, IDLE_CHECK_EVERY, RX_RING, TX_COPY_MAX_DEFAULT,
};
use rvswitch::netdev::{self, Netdev, NetdevError, Txq};
use rvswitch::packet::{PacketBatch, PacketBuf, PacketPool, MAX_BURST};

/// A one-queue veth in a namespace, our end open in generic mode with its rx queue, and a
/// buffer pool.
fn generic_rx(tag: &str) -> (VethNs, AfxdpNetdev, Box<dyn netdev::Rxq>, PacketPool) {
    let v = VethNs::new(tag, 1);
    let port = open_generic(&v);
    let rxq = port.open_rxq(0).unwrap();
    (v, port, rxq, PacketPool::new(256))
}

fn ping_is_received(port: &dyn Netdev, v: &VethNs) {
    let host_mac = port.mac();
    assert_eq!(host_mac, rvswitch::netdev::linux::hw_addr(&v.host).unwrap());
    v.static_neighbour(host_mac);
    let mut ping = v.ns_spawn("ping", &["-c", "5", "-i", "0.2", "-W", "1", &v.far_ip]);
    let mut rxq = port.open_rxq(0).unwrap();
    let mut pool = PacketPool::new(64);
    let echo = EchoRequests {
        dst_mac: host_mac,
        src_mac: v.peer_mac(),
        dst_ip: ip4(&v.far_ip),
    };
    let frames = echo.collect(
        |b, p| rxq.recv(b, p).unwrap(),
        &mut pool,
        Duration::from_secs(8),
        5,
    );
    let _ = wait_child(&mut ping, Duration::from_secs(5));
    let echoes = echo.among(&frames);
    assert!(
        echoes.len() >= 5,
        "expected 5 echo requests from ping, got {} of {} frames",
        echoes.len(),
        frames.len()
    );
    // ping numbers its requests 1..=5 (ICMP sequence at offset 40).
    let seqs: Vec<u16> = echoes.iter().map(|f| icmp_seq(f)).collect();
    assert_eq!(&seqs[..5], &[1, 2, 3, 4, 5]);
    let st = port.stats();
    assert!(st.rx_packets >= 5, "{st:?}");
    assert!(st.rx_bytes >= 5 * 98, "{st:?}");
}

#[test]
fn ping_from_namespace_arrives_on_rxq_generic() {
    let v = VethNs::new("xg", 1);
    let port = open_generic(&v);
    assert_eq!(port.mode(), XdpMode::Generic);
    assert!(port.is_up());
    assert_eq!(port.mtu(), 1500);
    ping_is_received(&port, &v);
}

#[test]
fn best_mode_falls_back_and_receives() {
    let v = VethNs::new("xb", 1);
    let port = netdev::open(&spec(&v.host, "afxdp", &[])).expect("best mode opens");
    assert_eq!(port.netdev_type(), "afxdp");
    ping_is_received(&*port, &v);
}

#[test]
fn txq_frames_reach_the_peer() {
    let v = VethNs::new("xt", 1);
    let port = open_generic(&v);
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("tx.pcap");
    let mut dump = spawn_tcpdump(&v, &pcap, 3);
    let mut txq = port.open_txq(0).unwrap();
    let mut pool = PacketPool::new(64);
    let src = port.mac();
    let sent = send_until_captured(&mut dump, |seq| {
        let f = test_frame(src, b"afxdp-tx", seq, 100 + seq as usize % 50);
        let mut batch = PacketBatch::new();
        batch.pkts.push(PacketBuf::from_frame(&f));
        assert_eq!(txq.send(&mut batch, &mut pool), 1);
        assert!(batch.is_empty());
        txq.flush();
        f
    });
    assert_captured_were_sent(&pcap, 3, &sent);
    assert!(port.stats().tx_packets >= 3);
}

/// In copy mode queued frames leave only at the kick: `send` alone transmits nothing
/// (that is what lets a poll thread kick once per iteration), and one `flush` sends
/// all of them.
#[test]
fn queued_frames_leave_at_the_flush_and_not_before() {
    let v = VethNs::new("xk", 1);
    let port = open_generic(&v);
    let mut txq = port.open_txq(0).unwrap();
    let mut pool = PacketPool::new(64);
    let before = v.peer_counter("rx_packets");
    let mut batch = PacketBatch::new();
    for seq in 0..20 {
        let f = test_frame(port.mac(), b"afxdp-flush-kick", seq, 80);
        batch.pkts.push(PacketBuf::from_frame(&f));
    }
    assert_eq!(txq.send(&mut batch, &mut pool), 20);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        v.peer_counter("rx_packets"),
        before,
        "copy mode sends nothing before the kick"
    );
    txq.flush();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while v.peer_counter("rx_packets") < before + 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(v.peer_counter("rx_packets"), before + 20);
    assert_eq!(port.stats().tx_packets, 20);
}

/// Received frames longer than two lines leave a copy-mode socket from a bounce frame
/// when they are cold (the kernel had queued `COLD_BACKLOG` frames or more behind them)
/// and in the frame they came in otherwise, or when longer than the port's
/// `tx_copy_max` (default `TX_COPY_MAX_DEFAULT`). Each round queues `COLD` frames, then
/// `COLD_BACKLOG` more, before polling: the first two batches have at least
/// `COLD_BACKLOG` behind them. The copies leave byte for byte as trafgen sent them, each
/// round's frames their own so that a copy of a stale frame would show.
#[test]
fn cold_long_frames_leave_from_bounce_frames() {
    const COLD: u64 = 2 * MAX_BURST as u64;
    const WARM: u64 = COLD_BACKLOG as u64;
    const LEN: usize = TX_COPY_MAX_DEFAULT;
    // Any run of this many frames forwarded holds a whole round's cold block.
    const CAPTURE: usize = (2 * COLD + WARM) as usize;
    let a = VethNs::new("xca", 1);
    let b = VethNs::new("xcb", 1);
    let c = VethNs::new("xcc", 1);
    let pa = open_generic(&a);
    let pb = open_generic(&b);
    let pc = AfxdpNetdev::open(&spec(
        &c.host,
        "afxdp",
        &[
            ("xdp_mode", "generic"),
            ("tx_copy_max", &(LEN - 1).to_string()),
        ],
    ))
    .expect("opening an afxdp port with tx_copy_max");
    let mut rxq = pa.open_rxq(0).unwrap();
    let mut pool = PacketPool::new(256);
    let mut batch = PacketBatch::new();
    // Queues a round on A's rx ring, then forwards all of it out of `txq`.
    let mut round = |txq: &mut dyn Txq, cold: &[u8], warm: &[u8]| {
        assert_trafgen_ok(&trafgen(&a, cold, COLD));
        assert_trafgen_ok(&trafgen(&a, warm, WARM));
        // trafgen's frames reach the ring within its own sends; a margin all the same.
        std::thread::sleep(Duration::from_millis(50));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut got = 0;
        while got < COLD + WARM && std::time::Instant::now() < deadline {
            rxq.recv(&mut batch, &mut pool).unwrap();
            got += txq.send(&mut batch, &mut pool) as u64;
            txq.flush();
        }
        assert_eq!(got, COLD + WARM, "{:?}", pa.stats());
    };

    // The default tx_copy_max: cold frames that long are copied, byte for byte.
    let mut txq = pb.open_txq(0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("copied.pcap");
    let mut dump = spawn_tcpdump(&b, &pcap, CAPTURE);
    let (mut sent, mut rounds) = (Vec::new(), 0u64);
    let start = std::time::Instant::now();
    while dump.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(20) {
        let seq = rounds as u32;
        let cold = test_frame(a.peer_mac(), b"cold", seq, LEN);
        let warm = test_frame(a.peer_mac(), b"warm", seq, LEN);
        round(txq.as_mut(), &cold, &warm);
        sent.push(cold);
        sent.push(warm);
        rounds += 1;
    }
    assert!(
        wait_child(&mut dump, Duration::from_secs(2)),
        "tcpdump did not finish"
    );
    assert_captured_were_sent(&pcap, CAPTURE, &sent);
    let copied = read_pcap(&pcap)
        .iter()
        .filter(|f| f[14..18] == *b"cold")
        .count() as u64;
    assert!(copied >= COLD, "only {copied} cold frames captured");
    assert_eq!(pb.bounced_sends(), COLD * rounds);
    assert_eq!(pb.zero_copy_sends(), WARM * rounds);
    // What an operator sees (dpif/show's "copied").
    let st = pb.stats();
    assert_eq!(st.tx_copied, COLD * rounds, "{st:?}");
    assert_eq!(st.tx_packets, (COLD + WARM) * rounds, "{st:?}");

    // A tx_copy_max below the frames' length: cold or not, they go as they came.
    let mut txq = pc.open_txq(0).unwrap();
    let cold = test_frame(a.peer_mac(), b"cold", 0, LEN);
    let warm = test_frame(a.peer_mac(), b"warm", 0, LEN);
    round(txq.as_mut(), &cold, &warm);
    assert_eq!(pc.bounced_sends(), 0);
    assert_eq!(pc.zero_copy_sends(), COLD + WARM);
    assert_eq!(pc.stats().tx_copied, 0);
}

#[test]
fn umem_frames_recycled_after_bursts() {
    let (v, port, mut rxq, mut pool) = generic_rx("xu");
    let host_mac = port.mac();

    // Rx: 20000 frames from trafgen while we poll.
    let frame = test_frame(host_mac, b"burst", 7, 64);
    let mut pool2 = PacketPool::new(64);
    let (tx_done, rx_done) = std::sync::mpsc::channel();
    let received = std::thread::scope(|s| {
        let (rxq, pool2, frame) = (&mut rxq, &mut pool2, &frame);
        let h = s.spawn(move || {
            let mut got = 0usize;
            let mut batch = PacketBatch::new();
            let mut sender_done = false;
            let mut idle_since: Option<std::time::Instant> = None;
            loop {
                let n = rxq.recv(&mut batch, pool2).unwrap();
                for p in batch.pkts.drain(..) {
                    if p.data() == &frame[..] {
                        got += 1;
                    }
                    pool2.put(p);
                }
                sender_done |= rx_done.try_recv().is_ok();
                if n > 0 || !sender_done {
                    idle_since = None;
                    if n == 0 {
                        std::thread::yield_now();
                    }
                    continue;
                }
                let t = *idle_since.get_or_insert_with(std::time::Instant::now);
                if t.elapsed() > Duration::from_millis(500) {
                    return got;
                }
            }
        });
        let out = trafgen(&v, frame, 20000);
        tx_done.send(()).unwrap();
        let got = h.join().unwrap();
        assert_trafgen_ok(&out);
        got
    });
    let st = port.stats();
    // Every trafgen frame was either received or counted as dropped by the kernel
    // (XDP_STATISTICS); nothing else is sent on this link.
    assert_eq!(st.rx_packets + st.rx_dropped, 20000, "{st:?}");
    assert!(
        received >= 2000,
        "received only {received} of 20000 trafgen frames ({st:?})"
    );
    assert_eq!(st.rx_packets as usize, received.max(st.rx_packets as usize));

    // Tx: 5000 frames through the txq in batches of 32, then reap.
    let mut txq = port.open_txq(0).unwrap();
    let before = v.peer_counter("rx_packets");
    let mut queued = 0;
    for i in 0..(5000 / 32) {
        let mut batch = PacketBatch::new();
        for j in 0..32 {
            let mut p = pool.get();
            p.set_data(&test_frame(host_mac, b"txburst", i * 32 + j, 60));
            batch.pkts.push(p);
        }
        queued += txq.send(&mut batch, &mut pool);
        txq.flush();
    }
    let start = std::time::Instant::now();
    loop {
        txq.flush();
        let f = port.umem_frames()[0];
        if f.tx_in_flight == 0 || start.elapsed() > Duration::from_secs(5) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let frames = port.umem_frames()[0];
    assert!(frames.all_accounted(), "{frames:?}");
    assert_eq!(frames.tx_in_flight, 0, "{frames:?}");
    assert_eq!(frames.rx_in_rx_ring, 0, "{frames:?}");
    // The fill ring was topped up again after the burst.
    assert!(
        frames.rx_in_fill_ring > 0 && frames.rx_in_fill_ring <= RX_RING as usize,
        "{frames:?}"
    );
    assert!(queued >= 4000, "only {queued} of 4992 frames queued");
    let delivered = v.peer_counter("rx_packets") - before;
    assert!(
        delivered >= queued as u64,
        "peer saw {delivered} frames, we queued {queued}"
    );
    // One kick per flush at most: never more wakeups than flushes + idle rx polls.
    assert!(port.wakeups() <= 5000);
}

#[test]
fn xdp_program_removed_on_drop() {
    let v = VethNs::new("xd", 1);
    let port = open_generic(&v);
    let shown = v.host_link_show();
    assert!(shown.contains("xdp"), "no XDP program while open: {shown}");
    assert_eq!(promiscuity(&v.host), 1, "afxdp port not promiscuous");
    let rxq = port.open_rxq(0).unwrap();
    let txq = port.open_txq(0).unwrap();
    drop(port);
    let shown = v.host_link_show();
    assert!(
        !shown.contains("xdp"),
        "XDP program left after drop: {shown}"
    );
    assert_eq!(promiscuity(&v.host), 0, "promiscuous mode left on");
    drop((rxq, txq));
    // The port can be opened again (sockets and program really went away).
    let again = open_generic(&v);
    drop(again);
    assert!(!v.host_link_show().contains("xdp"));
}

#[test]
fn multiqueue_device_gets_a_socket_per_queue() {
    let v = VethNs::new("xm", 2);
    let port = open_generic(&v);
    assert_eq!(port.n_rxq(), 2);
    let q0 = port.open_rxq(0).unwrap();
    let q1 = port.open_rxq(1).unwrap();
    assert_eq!((q0.qid(), q1.qid()), (0, 1));
    let again = port.open_rxq(0);
    assert!(again.is_err(), "rx queue opened twice");
    assert!(matches!(
        port.open_rxq(2),
        Err(NetdevError::NoSuchQueue { qid: 2, n: 2 })
    ));
    drop(q0);
    assert!(port.open_rxq(0).is_ok(), "closing an rxq makes it openable");
    let one = AfxdpNetdev::open(&spec(
        &v.host,
        "afxdp",
        &[("xdp_mode", "generic"), ("n_rxq", "1")],
    ));
    // The first port still owns the device's XDP hook.
    assert!(one.is_err());
    drop(port);
    let one = AfxdpNetdev::open(&spec(
        &v.host,
        "afxdp",
        &[("xdp_mode", "generic"), ("n_rxq", "1")],
    ))
    .unwrap();
    assert_eq!(one.n_rxq(), 1);
}

#[test]
fn more_tx_threads_than_queues_share_a_queue() {
    let v = VethNs::new("xs", 1);
    let port = open_generic(&v);
    let mac = port.mac();
    let before = v.peer_counter("rx_packets");
    std::thread::scope(|s| {
        for t in 0..3usize {
            let mut txq = port.open_txq(t).unwrap();
            s.spawn(move || {
                let mut pool = PacketPool::new(64);
                for i in 0..100u32 {
                    let mut batch = PacketBatch::new();
                    for j in 0..10 {
                        let mut p = pool.get();
                        p.set_data(&test_frame(
                            mac,
                            b"share",
                            t as u32 * 10000 + i * 10 + j,
                            60,
                        ));
                        batch.pkts.push(p);
                    }
                    txq.send(&mut batch, &mut pool);
                    txq.flush();
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
        }
    });
    let start = std::time::Instant::now();
    let mut txq = port.open_txq(0).unwrap();
    while port.umem_frames()[0].tx_in_flight > 0 && start.elapsed() < Duration::from_secs(5) {
        txq.flush();
        std::thread::sleep(Duration::from_millis(1));
    }
    let st = port.stats();
    assert_eq!(st.tx_packets + st.tx_dropped, 3000, "{st:?}");
    assert_eq!(st.tx_dropped, 0, "{st:?}");
    let delivered = v.peer_counter("rx_packets") - before;
    assert!(delivered >= 3000, "peer saw {delivered} of 3000");
    assert!(port.umem_frames()[0].all_accounted());
}

#[test]
fn bad_options_give_clear_errors() {
    let v = VethNs::new("xo", 1);
    let e = AfxdpNetdev::open(&spec(&v.host, "afxdp", &[("xdp_mode", "turbo")]))
        .err()
        .expect("unknown xdp_mode must fail");
    let msg = e.to_string();
    assert!(
        msg.contains("xdp_mode=turbo") && msg.contains(&v.host),
        "{msg}"
    );

    let e = AfxdpNetdev::open(&spec(&v.host, "afxdp", &[("n_rxq", "4")]))
        .err()
        .expect("too many queues must fail");
    assert!(e.to_string().contains("n_rxq=4"), "{e}");

    for bad in ["4000", "-1", "mtu"] {
        let e = AfxdpNetdev::open(&spec(&v.host, "afxdp", &[("tx_copy_max", bad)]))
            .err()
            .expect("a tx_copy_max that is no frame length must fail");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("tx_copy_max={bad}")) && msg.contains("0 to 3840"),
            "{msg}"
        );
    }

    let e = netdev::open(&spec("rvsnosuchdev0", "afxdp", &[]))
        .err()
        .expect("missing device must fail");
    assert!(
        matches!(e, NetdevError::NoSuchDevice(ref d) if d == "rvsnosuchdev0"),
        "{e}"
    );
    assert!(e.to_string().contains("rvsnosuchdev0"));
    // Nothing was left attached by the failed opens.
    assert!(!v.host_link_show().contains("xdp"));
}

#[test]
fn xdp_program_removed_when_the_process_dies() {
    let v = VethNs::new("xk", 1);
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) into a 2-element array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let spec = spec(&v.host, "afxdp", &[("xdp_mode", "generic")]);
    // SAFETY: the child only opens the port, reports over the pipe and waits to be
    // killed; it never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let port = AfxdpNetdev::open(&spec);
        let byte = [port.is_ok() as u8];
        // SAFETY: writing one byte to our end of the pipe, then exiting/pausing.
        unsafe {
            libc::write(fds[1], byte.as_ptr().cast(), 1);
            if port.is_err() {
                libc::_exit(1);
            }
            std::mem::forget(port);
            loop {
                libc::pause();
            }
        }
    }
    let mut pfd = libc::pollfd {
        fd: fds[0],
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polling and reading our end of the pipe.
    let ready = unsafe { libc::poll(&mut pfd, 1, 10_000) };
    let mut byte = [0u8];
    let got = ready == 1 && unsafe { libc::read(fds[0], byte.as_mut_ptr().cast(), 1) } == 1;
    let attached = v.host_link_show().contains("xdp");
    // SAFETY: killing and reaping our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    assert!(got && byte[0] == 1, "child failed to open the port");
    assert!(attached, "no XDP program while the child held the port");
    let start = std::time::Instant::now();
    while v.host_link_show().contains("xdp") && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let shown = v.host_link_show();
    assert!(
        !shown.contains("xdp"),
        "XDP program survived its process: {shown}"
    );
}

#[test]
fn native_mode_receives_and_zero_copy_fails_clearly_on_veth() {
    let v = VethNs::new("xn", 1);
    // veth has no zero-copy support: the explicit mode must fail, name the port, the
    // step and the mode, and leave nothing attached.
    let e = AfxdpNetdev::open(&spec(
        &v.host,
        "afxdp",
        &[("xdp_mode", "native-with-zerocopy")],
    ))
    .err()
    .expect("zero-copy on veth must fail");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("afxdp port {}", v.host))
            && msg.contains("binding queue 0 in native-with-zerocopy mode"),
        "{msg}"
    );
    assert!(!v.host_link_show().contains("xdp"));

    let port = AfxdpNetdev::open(&spec(&v.host, "afxdp", &[("xdp_mode", "native")]))
        .expect("native mode on veth");
    assert_eq!(port.mode(), XdpMode::Native);
    assert!(v.host_link_show().contains("xdp"));
    ping_is_received(&port, &v);
}

/// A PMD that is late (descheduled, or busy with another queue) must not make the kernel
/// drop: frames waiting in the rx ring must not be missing from the fill ring. 3,000
/// frames arrive while nobody polls (more than the old 2,048-frame share, which starved
/// the fill ring at 2,048 and dropped the rest as `rx_fill_ring_empty_descs`); all of
/// them must then be received.
#[test]
fn rx_ring_absorbs_a_burst_while_not_polled() {
    let (v, port, mut rxq, mut pool) = generic_rx("xl");
    let host_mac = port.mac();
    let frame = test_frame(host_mac, b"late", 9, 64);
    let out = trafgen(&v, &frame, 3000);
    assert_trafgen_ok(&out);
    let got = receive(
        rxq.as_mut(),
        &mut pool,
        &frame,
        3000,
        Duration::from_secs(5),
        Duration::ZERO,
    );
    let st = port.stats();
    assert_eq!(got, 3000, "{st:?}");
    assert_eq!(st.rx_dropped, 0, "{st:?}");
    // A quiet queue publishes where its frames are every IDLE_CHECK_EVERY empty polls.
    let mut batch = PacketBatch::new();
    for _ in 0..IDLE_CHECK_EVERY {
        assert_eq!(rxq.recv(&mut batch, &mut pool).unwrap(), 0);
    }
    let frames = port.umem_frames()[0];
    assert!(frames.all_accounted(), "{frames:?}");
    assert_eq!(frames.rx_in_rx_ring, 0, "{frames:?}");
}

/// A burst larger than the fill ring while nobody polls: the kernel receives into every
/// frame it was handed and drops the rest for want of one, and the port says so
/// (`rx_no_buffer`, not `rx_queue_full`: the rx ring had room to the end).
#[test]
fn a_burst_past_the_fill_ring_counts_as_no_buffer() {
    let (v, port, mut rxq, mut pool) = generic_rx("xn");
    let frame = test_frame(port.mac(), b"flood", 11, 64);
    let sent = u64::from(RX_RING) + 1904;
    let out = trafgen(&v, &frame, sent);
    assert_trafgen_ok(&out);
    let got = receive(
        rxq.as_mut(),
        &mut pool,
        &frame,
        sent,
        Duration::from_secs(2),
        Duration::ZERO,
    );
    let st = port.stats();
    assert!(got > 0 && got <= u64::from(RX_RING), "got {got}: {st:?}");
    assert_eq!(got + st.rx_no_buffer, sent, "{st:?}");
    assert_eq!(st.rx_queue_full, 0, "{st:?}");
    assert_eq!(st.rx_dropped, st.rx_no_buffer, "{st:?}");
}

/// Frames that arrive on queue N of a two-queue device reach queue N's socket and no
/// other. On a veth, the peer's tx queue N feeds our rx queue N in native mode; the sender
/// is steered with XPS (every CPU mapped to the one tx queue). In generic mode veth does
/// not record the rx queue for the XDP program (it sees queue 0 for every frame), so
/// there the test asserts only that every frame reaches exactly one socket.
#[test]
fn each_rx_queue_receives_what_arrives_on_it() {
    let v = VethNs::new("xq", 2);
    for mode in ["native", "generic"] {
        let port = AfxdpNetdev::open(&spec(
            &v.host,
            "afxdp",
            &[("xdp_mode", mode), ("n_rxq", "2")],
        ))
        .unwrap_or_else(|e| panic!("opening a two-queue port in {mode} mode: {e}"));
        let mut queues = [port.open_rxq(0).unwrap(), port.open_rxq(1).unwrap()];
        let mut pool = PacketPool::new(256);
        for target in [1usize, 0] {
            let all_cpus = format!("{:x}", (1u64 << num_cpus()) - 1);
            for q in 0..2 {
                let mask = if q == target { all_cpus.as_str() } else { "0" };
                v.ns_run(
                    "sh",
                    &[
                        "-c",
                        &format!(
                            "echo {mask} > /sys/class/net/{}/queues/tx-{q}/xps_cpus",
                            v.peer
                        ),
                    ],
                );
            }
            let frame = test_frame(port.mac(), b"steer", target as u32, 64);
            let out = trafgen(&v, &frame, 200);
            assert!(out.status.success(), "trafgen: {out:?}");
            let mut got = [0usize; 2];
            let mut batch = PacketBatch::new();
            let start = std::time::Instant::now();
            while got.iter().sum::<usize>() < 200 && start.elapsed() < Duration::from_secs(3) {
                for (i, q) in queues.iter_mut().enumerate() {
                    q.recv(&mut batch, &mut pool).unwrap();
                    for p in batch.pkts.drain(..) {
                        if p.data() == &frame[..] {
                            got[i] += 1;
                        }
                        pool.put(p);
                    }
                }
            }
            if mode == "native" {
                let mut want = [0usize; 2];
                want[target] = 200;
                assert_eq!(got, want, "{mode} mode, frames sent on tx queue {target}");
            } else {
                assert_eq!(got[0] + got[1], 200, "{mode} mode: {got:?}");
            }
        }
    }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
