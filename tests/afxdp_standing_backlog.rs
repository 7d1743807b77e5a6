//! A deep rx ring under sustained overload, on a real veth pair (root): trafgen offers
//! far more than a deliberately slow poller takes, so the backlog stands; the queue is
//! trimmed (the kernel then drops the excess for want of a fill frame instead of
//! queueing it behind a full ring), and once the load stops and the poller catches up it
//! keeps its whole ring full again.
//!
//! A test binary of its own: a socket's share of the process's one frame region depends
//! on every other socket open on it.

mod netdev_support;

use std::time::{Duration, Instant};

use netdev_support::*;
use rvswitch::dpif::PortStats;
use rvswitch::netdev::afxdp::{AfxdpNetdev, RX_RING};
use rvswitch::netdev::Netdev;
use rvswitch::packet::frames::FrameStore;
use rvswitch::packet::{PacketBatch, PacketPool};

/// Eight times the default ring: four times what a trimmed queue keeps.
const DEEP: u32 = 8 * RX_RING;

/// More than the test needs at trafgen's 0.5-1 Mpps here; killed when done.
const LOAD: u64 = 20_000_000;

/// One slow poll: a batch, then a nap (about 32 frames per 250 us, ~0.13 Mpps).
fn slow_poll(rxq: &mut dyn rvswitch::netdev::Rxq, pool: &mut PacketPool, batch: &mut PacketBatch) {
    rxq.recv(batch, pool).unwrap();
    for p in batch.pkts.drain(..) {
        pool.put(p);
    }
    std::thread::sleep(Duration::from_micros(200));
}

/// Polls slowly for `d`.
fn slow_for(
    d: Duration,
    rxq: &mut dyn rvswitch::netdev::Rxq,
    pool: &mut PacketPool,
    batch: &mut PacketBatch,
) {
    let start = Instant::now();
    while start.elapsed() < d {
        slow_poll(rxq, pool, batch);
    }
}

#[test]
fn a_standing_backlog_trims_the_deep_ring_and_a_drained_one_restores_it() {
    require_root();
    FrameStore::set_size(4 * DEEP);
    let v = VethNs::new("sb", 1);
    let port = AfxdpNetdev::open(&spec(
        &v.host,
        "afxdp",
        &[("xdp_mode", "generic"), ("n_rxq_desc", &DEEP.to_string())],
    ))
    .expect("opening an afxdp port with a deep ring");
    assert_eq!(port.umem_frames()[0].rx_in_fill_ring, DEEP as usize);
    let mut rxq = port.open_rxq(0).unwrap();
    let mut pool = PacketPool::new(256);
    let mut batch = PacketBatch::new();
    let frame = test_frame(port.mac(), b"standing", 3, 64);

    let mut gen = trafgen_spawn(&v, &frame, LOAD);
    // The ring fills in well under a second, then must stand for five checks (500 ms).
    let start = Instant::now();
    while port.rx_trims() == 0 && start.elapsed() < Duration::from_secs(6) {
        slow_poll(rxq.as_mut(), &mut pool, &mut batch);
    }
    let trimmed_after = start.elapsed();
    if port.rx_trims() == 0 || gen.try_wait().unwrap().is_some() {
        kill_group(&mut gen);
        panic!(
            "not trimmed after {trimmed_after:?} of overload (trafgen still running: {}): {:?}",
            gen.try_wait().unwrap().is_none(),
            port.stats()
        );
    }
    // Before the trim the full rx ring dropped the excess. The frames already on the fill
    // ring (up to a ring's worth) are received into first; after that the queue holds
    // fewer frames than the rx ring has slots, so the excess is dropped for want of a
    // fill frame instead.
    slow_for(
        Duration::from_millis(800),
        rxq.as_mut(),
        &mut pool,
        &mut batch,
    );
    let before: PortStats = port.stats();
    slow_for(
        Duration::from_millis(400),
        rxq.as_mut(),
        &mut pool,
        &mut batch,
    );
    let after: PortStats = port.stats();
    let still_loaded = gen.try_wait().unwrap().is_none();
    kill_group(&mut gen);
    assert!(
        still_loaded,
        "trafgen ended before the trimmed window was measured"
    );
    assert_eq!(
        port.rx_trims(),
        1,
        "trimmed once, and stayed so under the load"
    );
    assert!(
        after.rx_no_buffer > before.rx_no_buffer,
        "trimmed, the excess finds no fill frame: {before:?} -> {after:?}"
    );
    assert_eq!(
        after.rx_queue_full, before.rx_queue_full,
        "trimmed, the rx ring never fills: {before:?} -> {after:?}"
    );

    // The load is gone: the poller drains the backlog, a period passes with nothing
    // dropped, and the whole ring is filled again.
    assert_fill_ring_refills(
        &port,
        rxq.as_mut(),
        &mut pool,
        DEEP as usize,
        Duration::from_micros(50),
        "after the load stopped",
    );
    assert_eq!(port.rx_trims(), 1);
}
