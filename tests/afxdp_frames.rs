//! The process's AF_XDP frame region end to end, on real veth pairs (root): frames
//! received on one afxdp port leave another without a copy, short ones from the tx
//! side's few bounce frames, heap packets are copied in, and every frame of the region
//! is back on the free list once the ports are gone.
//!
//! A test binary of its own: the census counts every frame of the process's one
//! `FrameStore`, so no other test may be using it at the same time; and a counting global
//! allocator checks that the forwarding thread allocates nothing once warmed up.

mod counting_alloc;
mod netdev_support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use netdev_support::*;
use rvswitch::netdev::afxdp::{AfxdpNetdev, BOUNCE_FRAMES, BOUNCE_MAX, IDLE_CHECK_EVERY};
use rvswitch::netdev::Netdev;
use rvswitch::packet::frames::FrameStore;
use rvswitch::packet::{PacketBatch, PacketBuf, PacketPool};

const SENT: u64 = 5000;
/// Short frames sent after the long ones, to go out from bounce frames.
const SHORT: u64 = 2000;
/// Short frames queued with no kick in between: more than the bounce frames.
const UNKICKED: u64 = BOUNCE_FRAMES as u64 + 64;
/// Frames forwarded before the allocation count starts (first fill-ring top-ups, first
/// completions, caches reaching their steady size).
const WARM_UP: u64 = 500;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

#[test]
fn forwarding_between_afxdp_ports_copies_nothing_and_every_frame_comes_back() {
    let a = VethNs::new("fa", 1);
    let b = VethNs::new("fb", 1);
    // Long frames that arrive cold (behind a backlog of COLD_BACKLOG frames, which a
    // debug-build poller may or may not let build up) are bounced up to `tx_copy_max`:
    // at two lines, only the short ones below are, whatever the backlog.
    let open = |v: &VethNs| {
        let copy_max = BOUNCE_MAX.to_string();
        AfxdpNetdev::open(&spec(
            &v.host,
            "afxdp",
            &[("xdp_mode", "generic"), ("tx_copy_max", &copy_max)],
        ))
        .expect("opening afxdp port in generic mode")
    };
    let (pa, pb) = (open(&a), open(&b));
    let store = FrameStore::existing().expect("the first afxdp port creates the region");
    let total = store.n_frames() as usize;

    // One byte longer than a bounce takes: these go out in the frame they came in.
    let frame = test_frame(a.peer_mac(), b"zerocopy", 7, BOUNCE_MAX + 1);
    let b_before = b.peer_counter("rx_packets");
    let mut pool = PacketPool::new(256);
    let mut rxq = pa.open_rxq(0).unwrap();
    let mut txq = pb.open_txq(0).unwrap();

    // A's frames go out of B as they came in, batch by batch, while trafgen sends.
    let (done_tx, done_rx) = mpsc::channel();
    let (forwarded, wrong, counted, allocs) = std::thread::scope(|s| {
        let (rxq, txq, pool, frame) = (&mut rxq, &mut txq, &mut pool, &frame);
        let h = s.spawn(move || {
            let (mut forwarded, mut wrong, mut counted_from) = (0u64, 0u64, None);
            let mut batch = PacketBatch::new();
            let mut quiet_since: Option<Instant> = None;
            let mut sender_done = false;
            loop {
                let n = rxq.recv(&mut batch, pool).unwrap();
                for p in &batch.pkts {
                    assert!(p.lent_frame().is_some(), "received into a heap buffer");
                    wrong += (p.data() != &frame[..]) as u64;
                }
                forwarded += txq.send(&mut batch, pool) as u64;
                txq.flush();
                if counted_from.is_none() && forwarded >= WARM_UP {
                    counted_from = Some(forwarded);
                    counting_alloc::start();
                }
                sender_done |= done_rx.try_recv().is_ok();
                if n > 0 || !sender_done {
                    quiet_since = None;
                    continue;
                }
                if quiet_since.get_or_insert_with(Instant::now).elapsed()
                    > Duration::from_millis(500)
                {
                    let allocs = counting_alloc::stop();
                    let counted = forwarded - counted_from.unwrap_or(forwarded);
                    return (forwarded, wrong, counted, allocs);
                }
            }
        });
        let out = trafgen(&a, frame, SENT);
        done_tx.send(()).unwrap();
        assert_trafgen_ok(&out);
        h.join().unwrap()
    });
    assert_eq!(wrong, 0, "received frames differ from trafgen's");
    assert!(
        counted >= 1000,
        "only {counted} frames forwarded after the warm-up"
    );
    assert_eq!(
        allocs, 0,
        "the forwarding thread allocated while forwarding {counted} frames"
    );
    let sa = pa.stats();
    assert_eq!(sa.rx_packets + sa.rx_dropped, SENT, "{sa:?}");
    assert!(
        forwarded >= SENT / 10,
        "forwarded only {forwarded} ({sa:?})"
    );
    assert_eq!(forwarded, sa.rx_packets, "{sa:?} / {:?}", pb.stats());
    assert_eq!(
        pb.zero_copy_sends(),
        forwarded,
        "every received frame left without a copy"
    );

    // Short lent packets leave from bounce frames: copied into one of a few frames kept
    // for that, reused as soon as they complete. These are the longest a bounce takes.
    let short = test_frame(a.peer_mac(), b"bounce", 8, BOUNCE_MAX);
    let out = trafgen(&a, &short, SHORT);
    assert_trafgen_ok(&out);
    let (mut got, mut batch) = (0u64, PacketBatch::new());
    let start = Instant::now();
    while got < SHORT && start.elapsed() < Duration::from_secs(5) {
        rxq.recv(&mut batch, &mut pool).unwrap();
        assert!(batch.pkts.iter().all(|p| p.data() == &short[..]));
        got += txq.send(&mut batch, &mut pool) as u64;
        txq.flush();
    }
    assert_eq!(got, SHORT, "{:?}", pa.stats());
    // Quiet polls, so that the rx side publishes where its frames are for the census
    // below (it does every IDLE_CHECK_EVERY empty polls in a row).
    for _ in 0..2 * IDLE_CHECK_EVERY {
        assert_eq!(rxq.recv(&mut batch, &mut pool).unwrap(), 0);
    }
    assert_eq!(pb.bounced_sends(), SHORT);
    assert_eq!(pb.zero_copy_sends(), forwarded, "short packets are bounced");
    let bounce = pb.umem_frames()[0].tx_bounce;
    assert!(
        (1..=BOUNCE_FRAMES).contains(&bounce),
        "{SHORT} packets went through {bounce} bounce frames"
    );
    let forwarded = forwarded + SHORT;

    // Queued without a kick, short packets hold their bounce frames until the flush: the
    // side owns at most BOUNCE_FRAMES, and past those a short packet leaves from the
    // frame it came in.
    let (bounced0, zero_copy0) = (pb.bounced_sends(), pb.zero_copy_sends());
    let out = trafgen(&a, &short, UNKICKED);
    assert_trafgen_ok(&out);
    let mut got = 0u64;
    let start = Instant::now();
    while got < UNKICKED && start.elapsed() < Duration::from_secs(5) {
        rxq.recv(&mut batch, &mut pool).unwrap();
        got += txq.send(&mut batch, &mut pool) as u64;
    }
    assert_eq!(got, UNKICKED, "{:?}", pa.stats());
    assert_eq!(
        pb.umem_frames()[0].tx_in_flight,
        UNKICKED as usize,
        "nothing completes before the kick"
    );
    assert_eq!(pb.bounced_sends() - bounced0, BOUNCE_FRAMES as u64);
    assert_eq!(
        pb.zero_copy_sends() - zero_copy0,
        UNKICKED - BOUNCE_FRAMES as u64
    );
    txq.flush();
    let forwarded = forwarded + UNKICKED;

    // Heap packets (a tap port's, a flood copy) are copied into frames.
    let mut batch = PacketBatch::new();
    for i in 0..10 {
        batch.pkts.push(PacketBuf::from_frame(&test_frame(
            a.peer_mac(),
            b"heap",
            i,
            60,
        )));
    }
    assert_eq!(txq.send(&mut batch, &mut pool), 10);
    txq.flush();
    assert_eq!(
        pb.zero_copy_sends() + pb.bounced_sends(),
        forwarded,
        "heap packets are copied"
    );
    assert_eq!(pb.stats().tx_packets, forwarded + 10);

    let start = Instant::now();
    let mut delivered = 0;
    while start.elapsed() < Duration::from_secs(5) {
        txq.flush();
        delivered = b.peer_counter("rx_packets") - b_before;
        if delivered >= forwarded + 10 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        delivered >= forwarded + 10,
        "B's peer saw {delivered} of {} frames",
        forwarded + 10
    );

    // Census: every frame is on the free list, in this thread's cache, or held by one
    // of the two sockets' (fill, rx, tx and completion rings, and the kernel's own
    // cache of fill frames). `umem_frames` reaps completions back to the store first.
    let (fa, fb) = (pa.umem_frames()[0], pb.umem_frames()[0]);
    assert!(fa.all_accounted() && fb.all_accounted(), "{fa:?} {fb:?}");
    assert_eq!(fb.tx_in_flight, 0, "{fb:?}");
    assert!(fa.rx_in_fill_ring > 0, "{fa:?}");
    assert_eq!(
        store.free_frames() + pool.cached_frames() + fa.held + fb.held + fb.tx_bounce,
        total,
        "free {} + cached {} + {fa:?} + {fb:?}",
        store.free_frames(),
        pool.cached_frames()
    );

    // Closing the ports gives back what the kernel held; dropping the pool, its cache.
    drop((rxq, txq));
    drop((pa, pb));
    drop(pool);
    assert_eq!(store.free_frames(), total, "frames lost");
}
