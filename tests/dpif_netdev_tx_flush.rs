//! Output batching over time (`tx_flush_interval_us`, OVS's `tx-flush-interval`): a PMD
//! may hold output packets to send them in fuller batches, but never longer than the
//! interval, never when the interval is 0, and never past a port's removal.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvswitch::dpif::{DpAction, FlowPut, FlowPutMode, PortSpec};
use rvswitch::dpif_netdev::{DpCtl, PmdDatapath, PmdDatapathConfig};
use rvswitch::netdev::dummy::DummyNetdev;
use rvswitch::netdev::Netdev;
use rvswitch::packet::{ethertype, FlowKey, FlowMask, PacketBatch, PacketBuf};
use rvswitch::pmd::{cycles, PmdCounters, PollWork};

fn udp_frame(sport: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0, 0, 46, 0, 1, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 1, 2]);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&26u16.to_be_bytes());
    f.extend_from_slice(&[0u8; 20]);
    f
}

/// A datapath forwarding every IPv4 packet from port 1 to port 2, a capturing dummy
/// device: a PMD thread's (core 0, where the interval applies) unless `core` is `None`.
fn datapath_on(core: Option<usize>, interval_us: u32) -> (PmdDatapath, Arc<DummyNetdev>) {
    let spec = PortSpec {
        name: "tf-out".into(),
        port_type: "dummy".into(),
        options: BTreeMap::new(),
    };
    let out = Arc::new(DummyNetdev::new("tf-out", &spec).unwrap());
    let cfg = PmdDatapathConfig {
        emc_insert_inv_prob: 1,
        upcall_rate: 0,
        pool_size: 256,
        tx_flush_interval_us: interval_us,
        ..Default::default()
    };
    let mut dp = PmdDatapath::new(core, &cfg, Arc::new(PmdCounters::default()));
    dp.add_tx_port(2, out.open_txq(0).unwrap());
    let mut mask = FlowMask::default();
    mask.0.in_port = u32::MAX;
    mask.0.dl_type = u16::MAX;
    dp.flow_put(&FlowPut {
        key: FlowKey {
            in_port: 1,
            dl_type: ethertype::IPV4,
            ..Default::default()
        },
        mask,
        actions: Arc::from(vec![DpAction::Output(2)]),
        mode: FlowPutMode::Create,
        clear_stats: false,
    })
    .unwrap();
    (dp, out)
}

fn datapath(interval_us: u32) -> (PmdDatapath, Arc<DummyNetdev>) {
    datapath_on(Some(0), interval_us)
}

fn receive(dp: &mut PmdDatapath, n: usize) {
    let mut batch = PacketBatch::new();
    for i in 0..n {
        let mut p = PacketBuf::from_frame(&udp_frame(1000 + i as u16));
        p.meta.in_port = 1;
        batch.pkts.push(p);
    }
    dp.begin_iteration(cycles::now());
    dp.process_rx(1, &mut batch);
}

/// The end of a poll-loop iteration, with the clock the loop would give it.
fn end_iteration(dp: &mut PmdDatapath) -> bool {
    dp.begin_iteration(cycles::now());
    dp.end_iteration()
}

#[test]
fn zero_interval_sends_at_the_end_of_the_iteration() {
    let (mut dp, out) = datapath(0);
    receive(&mut dp, 3);
    assert!(end_iteration(&mut dp), "the iteration transmitted");
    assert_eq!(out.take_sent().len(), 3);
    assert_eq!(dp.tx_pending(), 0);
    assert!(!end_iteration(&mut dp), "nothing left to transmit");
}

#[test]
fn packets_are_held_until_the_interval_ends_then_sent_together() {
    let interval = Duration::from_millis(200);
    let (mut dp, out) = datapath(interval.as_micros() as u32);
    let first = Instant::now();
    receive(&mut dp, 3);
    receive(&mut dp, 4);
    let mut polls = 0;
    while dp.tx_pending() > 0 {
        assert!(
            first.elapsed() < interval * 5,
            "held packets were not sent within 5x the interval"
        );
        let sent = end_iteration(&mut dp);
        polls += 1;
        if first.elapsed() < interval * 9 / 10 {
            assert!(!sent, "sent before the interval ended");
            assert!(out.take_sent().is_empty());
        }
    }
    // Deadlines are in TSC cycles at a rate measured once over 10 ms: allow 1% for that
    // measurement against the wall clock.
    assert!(
        first.elapsed() >= interval * 99 / 100,
        "sent after {:?}",
        first.elapsed()
    );
    assert!(polls > 1);
    assert_eq!(
        out.take_sent().len(),
        7,
        "both receive batches leave as one"
    );
    let s = dp.counters().snapshot();
    assert_eq!((s.tx_packets, s.tx_batches), (7, 1), "{s:?}");
}

#[test]
fn a_full_batch_leaves_without_waiting() {
    let (mut dp, out) = datapath(1_000_000);
    receive(&mut dp, 32);
    receive(&mut dp, 1);
    // The 33rd packet found a full batch: the first 32 left at once.
    assert_eq!(out.take_sent().len(), 32);
    assert_eq!(dp.tx_pending(), 1);
}

#[test]
fn removing_any_port_flushes_held_packets() {
    let (mut dp, out) = datapath(1_000_000);
    receive(&mut dp, 5);
    assert!(!end_iteration(&mut dp));
    assert!(out.take_sent().is_empty());
    dp.port_removed(7);
    assert_eq!(out.take_sent().len(), 5);
    assert_eq!(dp.tx_pending(), 0);
}

#[test]
fn the_non_pmd_thread_ignores_the_interval() {
    // It sleeps on its control channel when idle, so it could not honour a deadline.
    let (mut dp, out) = datapath_on(None, 1_000_000);
    receive(&mut dp, 2);
    assert!(end_iteration(&mut dp));
    assert_eq!(out.take_sent().len(), 2);
}

#[test]
fn the_interval_changes_at_run_time() {
    let (mut dp, out) = datapath(1_000_000);
    receive(&mut dp, 2);
    assert!(!end_iteration(&mut dp), "held for up to a second");
    // Set to 0: nothing is held any more, so what waits leaves with the next iteration.
    dp.handle_ctl(DpCtl::SetTxFlushIntervalUs(0));
    receive(&mut dp, 1);
    assert!(end_iteration(&mut dp));
    assert_eq!(
        out.take_sent().len(),
        3,
        "the held packets left with the new one"
    );
    receive(&mut dp, 1);
    assert!(end_iteration(&mut dp));
    assert_eq!(out.take_sent().len(), 1);
}
