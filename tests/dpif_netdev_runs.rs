//! Runs of one flow inside a batch: a packet whose key repeats its predecessor's takes the
//! predecessor's result instead of its own lookup. And the EMC bypass: batches the EMC
//! trial runs without EMC lookups forward the same packets the same way. These drive one
//! `PmdDatapath` directly with hand-built batches (dummy ports, in memory), so the order
//! of packets in a batch is exactly the test's: runs, a run whose first packet missed the
//! EMC, keys that differ only in a port, a run of a deleted flow.

mod dpif_netdev_support;

use std::sync::Arc;

use dpif_netdev_support::{dummy, udp_frame};
use rvswitch::dpif::{DpAction, FlowPut, FlowPutMode};
use rvswitch::dpif_netdev::{PmdDatapath, PmdDatapathConfig};
use rvswitch::netdev::dummy::DummyNetdev;
use rvswitch::netdev::Netdev;
use rvswitch::packet::wire::build::{ipv4_frame, L4};
use rvswitch::packet::wire::{ethernet, ipv4, tcp};
use rvswitch::packet::{ethertype, FlowKey, FlowMask, PacketBatch, PacketBuf};
use rvswitch::pmd::{PmdCounters, PmdStats, PollWork};

/// A UDP/IPv4 frame to 10.0.1.`dst` from port `sport`, carrying `tag` (the payload is
/// not part of the flow key: frames of one key differ in their bytes).
fn frame(dst: u8, sport: u16, tag: u16) -> Vec<u8> {
    udp_frame(
        [10, 0, 0, 1],
        [10, 0, 1, dst],
        sport,
        80,
        &tag.to_be_bytes(),
    )
}

/// Megaflow `nw_dst = 10.0.1.<dst>` (everything else wildcarded) -> output `port`.
fn put_flow(dp: &mut PmdDatapath, dst: u8, port: u32) -> (FlowKey, FlowMask) {
    let mut m = FlowMask::default();
    m.0.dl_type = u16::MAX;
    m.0.nw_dst = u32::MAX;
    let k = FlowKey {
        in_port: 1,
        dl_type: ethertype::IPV4,
        nw_dst: u32::from_be_bytes([10, 0, 1, dst]),
        ..Default::default()
    };
    dp.flow_put(&FlowPut {
        key: k,
        mask: m,
        actions: Arc::from(vec![DpAction::Output(port)]),
        mode: FlowPutMode::Create,
        clear_stats: false,
    })
    .unwrap();
    (k, m)
}

struct Bench {
    dp: PmdDatapath,
    counters: Arc<PmdCounters>,
    to_a: DummyNetdev,
    to_b: DummyNetdev,
}

impl Bench {
    /// A datapath whose EMC is always consulted.
    fn new() -> Self {
        Bench::with_auto_bypass(false)
    }

    fn with_auto_bypass(emc_auto_bypass: bool) -> Self {
        let to_a = DummyNetdev::new("runs-a", &dummy("runs-a")).unwrap();
        let to_b = DummyNetdev::new("runs-b", &dummy("runs-b")).unwrap();
        let cfg = PmdDatapathConfig {
            // Every megaflow hit inserts into the EMC: the second pass of a batch hits it.
            emc_insert_inv_prob: 1,
            emc_auto_bypass,
            upcall_rate: 0,
            pool_size: 256,
            ..Default::default()
        };
        let counters = Arc::new(PmdCounters::default());
        let mut dp = PmdDatapath::new(None, &cfg, counters.clone());
        dp.add_tx_port(2, to_a.open_txq(0).unwrap());
        dp.add_tx_port(3, to_b.open_txq(0).unwrap());
        Bench {
            dp,
            counters,
            to_a,
            to_b,
        }
    }

    /// Runs `frames` as one batch from port 1; returns the counters' change and what each
    /// output port sent.
    fn run(&mut self, frames: &[Vec<u8>]) -> (PmdStats, Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let before = self.counters.snapshot();
        let mut batch = PacketBatch::new();
        batch
            .pkts
            .extend(frames.iter().map(|f| PacketBuf::from_frame(f)));
        self.dp.begin_iteration(rvswitch::pmd::cycles::now());
        self.dp.process_rx(1, &mut batch);
        self.dp.end_iteration();
        let after = self.counters.snapshot();
        let delta = PmdStats {
            emc_hits: after.emc_hits - before.emc_hits,
            megaflow_hits: after.megaflow_hits - before.megaflow_hits,
            subtable_lookups: after.subtable_lookups - before.subtable_lookups,
            emc_bypassed: after.emc_bypassed - before.emc_bypassed,
            emc_trials: after.emc_trials - before.emc_trials,
            ..after
        };
        (delta, self.to_a.take_sent(), self.to_b.take_sent())
    }
}

#[test]
fn repeated_keys_share_their_predecessors_result_and_nothing_else() {
    let mut b = Bench::new();
    let (ka, ma) = put_flow(&mut b.dp, 1, 2);
    put_flow(&mut b.dp, 2, 3);
    // Runs of A (to port 2; the payload varies, the key does not), a run of B (to
    // port 3), A again with another source port (a key of its own, the same megaflow),
    // and a run to 10.0.1.9, which no megaflow matches.
    let frames = vec![
        frame(1, 1000, 1),
        frame(1, 1000, 2),
        frame(1, 1000, 3),
        frame(2, 1000, 4),
        frame(2, 1000, 5),
        frame(1, 1000, 6),
        frame(1, 1001, 7),
        frame(1, 1001, 8),
        frame(9, 1000, 9),
        frame(9, 1000, 10),
        frame(1, 1000, 11),
    ];
    let to_a: Vec<Vec<u8>> = [0, 1, 2, 5, 6, 7, 10]
        .iter()
        .map(|&i| frames[i].clone())
        .collect();
    let to_b = vec![frames[3].clone(), frames[4].clone()];

    // First pass, empty EMC: a repeat of a packet that missed it misses too (it must not
    // take a result its predecessor did not have) and goes to the megaflows.
    let (d, a, bb) = b.run(&frames);
    assert_eq!(d.emc_hits, 0, "{d:?}");
    assert_eq!(d.megaflow_hits, 9, "{d:?}");
    assert_eq!(a, to_a, "port 2 got A's packets, in order");
    assert_eq!(bb, to_b, "port 3 got B's");

    // Second pass: the three keys with megaflows are in the EMC; the two unmatched
    // packets miss both.
    let (d, a, bb) = b.run(&frames);
    assert_eq!(d.emc_hits, 9, "{d:?}");
    assert_eq!(d.megaflow_hits, 0, "{d:?}");
    assert_eq!(a, to_a);
    assert_eq!(bb, to_b);

    // A deleted megaflow's EMC entries are dead: a run of A finds nothing, first packet
    // or repeat, and only B still goes out.
    assert!(b.dp.flow_del(&ka, &ma).is_some());
    let (d, a, bb) = b.run(&frames);
    assert_eq!(d.emc_hits, 2, "only B's run hits: {d:?}");
    assert_eq!(d.megaflow_hits, 0, "{d:?}");
    assert!(
        a.is_empty(),
        "A's flow is gone, yet port 2 sent {} packets",
        a.len()
    );
    assert_eq!(bb, to_b);
}

#[test]
fn batches_that_bypass_the_emc_forward_the_same_and_count_as_megaflow_hits() {
    use rvswitch::dpif_netdev::emc_bypass::{EPOCH_BATCHES, TRIAL_BATCHES};
    let mut b = Bench::with_auto_bypass(true);
    put_flow(&mut b.dp, 1, 2);
    put_flow(&mut b.dp, 2, 3);
    // Two keys of A, interleaved with B, and a run of each: 4 lookups, 4 repeats.
    let frames = vec![
        frame(1, 1000, 1),
        frame(2, 1000, 2),
        frame(1, 1001, 3),
        frame(1, 1001, 4),
        frame(1, 1001, 5),
        frame(2, 1000, 6),
        frame(2, 1000, 7),
        frame(2, 1000, 8),
    ];
    let to_a: Vec<Vec<u8>> = [0, 2, 3, 4].iter().map(|&i| frames[i].clone()).collect();
    let to_b: Vec<Vec<u8>> = [1, 5, 6, 7].iter().map(|&i| frames[i].clone()).collect();
    let n = frames.len() as u64;
    // The trial alternates runs of batches with and without EMC lookups; every batch
    // of both kinds must forward all eight packets as the megaflows say.
    let (mut with_emc, mut without_emc) = (0, 0);
    for _ in 0..2 * TRIAL_BATCHES {
        let (d, a, bb) = b.run(&frames);
        assert_eq!(a, to_a);
        assert_eq!(bb, to_b);
        assert_eq!(
            d.emc_hits + d.megaflow_hits,
            n,
            "every packet resolved: {d:?}"
        );
        if d.emc_bypassed == n {
            without_emc += 1;
            assert_eq!(d.emc_hits, 0, "a bypassed batch cannot hit the EMC: {d:?}");
            assert_eq!(
                d.subtable_lookups, n,
                "repeats count the subtables their predecessor searched: {d:?}"
            );
        } else {
            assert_eq!(d.emc_bypassed, 0, "{d:?}");
            with_emc += 1;
            if with_emc > 1 {
                assert_eq!(d.emc_hits, n, "the EMC holds both keys of A and B: {d:?}");
            }
        }
    }
    assert_eq!((with_emc, without_emc), (TRIAL_BATCHES, TRIAL_BATCHES));
    let s = b.counters.snapshot();
    assert_eq!(s.emc_trials, 1, "the trial ended and decided");
    // Until the next epoch's trial every batch follows that decision, whichever it was.
    let bypassing = s.emc_trials_bypassing == 1;
    for _ in 2 * TRIAL_BATCHES..EPOCH_BATCHES {
        let (d, a, _) = b.run(&frames);
        assert_eq!(a.len(), 4);
        assert_eq!(d.emc_bypassed, if bypassing { n } else { 0 }, "{d:?}");
        assert_eq!(d.emc_trials, 0);
    }
    // The next trial starts with EMC lookups.
    let (d, _, _) = b.run(&frames);
    assert_eq!(d.emc_bypassed, 0, "{d:?}");
    assert_eq!(d.emc_hits, n, "{d:?}");
}

#[test]
fn keys_first_seen_while_the_emc_is_bypassed_are_inserted_for_later_lookups() {
    // Insertions made while lookups bypass the EMC are deferred to the end of the
    // batch's lookups (their lines prefetched meanwhile). The trial's fixed pattern (a
    // run of batches with EMC lookups, then a run without) makes both kinds of batch
    // come up whatever the timing decides.
    let mut b = Bench::with_auto_bypass(true);
    put_flow(&mut b.dp, 1, 2);
    put_flow(&mut b.dp, 2, 3);
    let other = vec![frame(1, 999, 0)];
    let mut batches = 0;
    while b.run(&other).0.emc_bypassed == 0 {
        batches += 1;
        assert!(
            batches < 64,
            "no batch bypassed the EMC in the trial's first runs"
        );
    }
    // Six keys never seen before, A and B alternating (no repeats), in a bypassed batch.
    let fresh: Vec<Vec<u8>> = (0..6u16)
        .map(|i| frame(1 + (i % 2) as u8, 2000 + i, i))
        .collect();
    let to_a: Vec<Vec<u8>> = fresh.iter().step_by(2).cloned().collect();
    let to_b: Vec<Vec<u8>> = fresh.iter().skip(1).step_by(2).cloned().collect();
    let n = fresh.len() as u64;
    let (d, a, bb) = b.run(&fresh);
    assert_eq!(
        (d.emc_bypassed, d.megaflow_hits, d.emc_hits),
        (n, n, 0),
        "{d:?}"
    );
    assert_eq!((a, bb), (to_a.clone(), to_b.clone()));
    // Back to batches with EMC lookups: every fresh key is in the EMC, under its own
    // megaflow (the packets still go where their megaflow says).
    batches = 0;
    while b.run(&other).0.emc_bypassed != 0 {
        batches += 1;
        assert!(batches < 64, "the trial never returned to EMC lookups");
    }
    let (d, a, bb) = b.run(&fresh);
    assert_eq!(d.emc_bypassed, 0, "{d:?}");
    assert_eq!(
        (d.emc_hits, d.megaflow_hits),
        (n, 0),
        "keys inserted while bypassing: {d:?}"
    );
    assert_eq!((a, bb), (to_a, to_b));
}

#[test]
fn without_auto_bypass_every_batch_consults_the_emc() {
    use rvswitch::dpif_netdev::emc_bypass::TRIAL_BATCHES;
    let mut b = Bench::new();
    put_flow(&mut b.dp, 1, 2);
    let frames = vec![frame(1, 1000, 1), frame(1, 1001, 2)];
    for i in 0..4 * TRIAL_BATCHES {
        let (d, a, _) = b.run(&frames);
        assert_eq!(a, frames);
        assert_eq!(d.emc_bypassed, 0);
        if i > 0 {
            assert_eq!(d.emc_hits, 2, "{d:?}");
        }
    }
    assert_eq!(b.counters.snapshot().emc_trials, 0);
}

/// A TCP/IPv4 segment of one connection to 10.0.1.1 with `flags` and sequence number
/// `seq`, from which the identification, acknowledgment number and window are made too,
/// so that consecutive segments differ in them.
fn tcp_segment(flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let eth = ethernet::Repr {
        dst: [0x02, 0, 0, 0, 0, 2],
        src: [0x02, 0, 0, 0, 0, 1],
        ..Default::default()
    };
    let ip = ipv4::Repr {
        src: u32::from_be_bytes([10, 0, 0, 1]),
        dst: u32::from_be_bytes([10, 0, 1, 1]),
        ttl: 64,
        ident: seq as u16,
        dont_frag: true,
        ..Default::default()
    };
    let t = tcp::Repr {
        src_port: 40000,
        dst_port: 80,
        seq,
        ack: seq / 2,
        flags,
        window: 1000 + seq as u16,
    };
    ipv4_frame(&eth, &ip, &L4::Tcp(t, payload)).unwrap()
}

#[test]
fn a_connections_segments_keep_each_ones_flags_through_a_batch() {
    // Segments of one connection, all on one megaflow, whose headers differ in what the
    // key leaves out (identification, sequence and acknowledgment numbers, window) and
    // in what it holds (the flags): the batch runs the one-flow path, and the megaflow's
    // stats must still see every segment's own flags, not only the first's.
    use tcp::flags::{ACK, FIN, PSH, SYN};
    let mut b = Bench::new();
    let (k, m) = put_flow(&mut b.dp, 1, 2);
    let frames = vec![
        tcp_segment(SYN, 100, b""),
        tcp_segment(ACK, 101, b"abcdef"),
        tcp_segment(ACK, 107, b"ghijkl"),
        tcp_segment(ACK | PSH, 113, b"mnopqr"),
        tcp_segment(ACK, 119, b"stuvwx"),
        tcp_segment(FIN | ACK, 125, b"yz0123"),
    ];
    let (d, a, bb) = b.run(&frames);
    assert_eq!(a, frames, "every segment out, in order, unchanged");
    assert!(bb.is_empty());
    assert_eq!(d.megaflow_hits + d.emc_hits, frames.len() as u64, "{d:?}");
    let f = b.dp.flow_get(&k, &m).expect("the megaflow");
    assert_eq!(f.stats.packets, frames.len() as u64);
    assert_eq!(
        f.stats.tcp_flags,
        SYN | ACK | PSH | FIN,
        "each segment's own flags counted"
    );
}
