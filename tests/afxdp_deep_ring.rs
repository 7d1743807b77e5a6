//! `n_rxq_desc` on a real veth pair (root): a port that asks for a deep ring keeps that
//! many frames on its fill ring, so a burst several times the default ring that arrives
//! while nobody polls (a PMD whose vCPU the host stopped) is received whole, twice in a
//! row; and a store too small for the rings asked for gives a smaller share, which the
//! port reports (and logs) instead of failing.
//!
//! A test binary of its own: a socket's share of the process's one frame region depends
//! on every other socket open on it.

mod netdev_support;

use std::time::Duration;

use netdev_support::*;
use rvswitch::netdev::afxdp::{AfxdpNetdev, RX_RING};
use rvswitch::netdev::Netdev;
use rvswitch::packet::frames::FrameStore;
use rvswitch::packet::PacketPool;

/// The ring asked for: four times the default.
const DEEP: u32 = 4 * RX_RING;

/// A burst three times the default ring: the default loses most of it unpolled
/// (`a_burst_past_the_fill_ring_counts_as_no_buffer` in netdev_afxdp.rs).
const BURST: u64 = 3 * RX_RING as u64;

#[test]
fn a_deep_ring_takes_in_bursts_past_the_default_while_nobody_polls() {
    require_root();
    // A quarter of the region is exactly the deep ring: one socket gets all of it.
    FrameStore::set_size(4 * DEEP);
    let v = VethNs::new("dr", 1);
    let deep = DEEP.to_string();
    let port = AfxdpNetdev::open(&spec(
        &v.host,
        "afxdp",
        &[("xdp_mode", "generic"), ("n_rxq_desc", &deep)],
    ))
    .expect("opening an afxdp port with a deep ring");
    assert_eq!(port.rx_ring(), DEEP);
    assert_eq!(port.fill_share(), DEEP);
    assert_eq!(port.umem_frames()[0].rx_in_fill_ring, DEEP as usize);
    let mut rxq = port.open_rxq(0).unwrap();
    let mut pool = PacketPool::new(256);
    let frame = test_frame(port.mac(), b"deep", 7, 64);
    for round in 1..=2 {
        let out = trafgen(&v, &frame, BURST);
        assert_trafgen_ok(&out);
        let got = receive(
            rxq.as_mut(),
            &mut pool,
            &frame,
            BURST,
            Duration::from_secs(5),
            Duration::ZERO,
        );
        let st = port.stats();
        assert_eq!(got, BURST, "round {round}: {st:?}");
        assert_eq!(st.rx_no_buffer, 0, "round {round}: {st:?}");
        assert_eq!(st.rx_queue_full, 0, "round {round}: {st:?}");
        // A stop's backlog drains as soon as the poller is back: it does not stand, so
        // the queue keeps its whole ring (`standing_backlog`).
        assert_eq!(port.rx_trims(), 0, "round {round}");
        // Quiet polls top the ring up to its whole depth again before the next burst
        // (a default port would settle lower only after a long light load; this one
        // never does: FillDepth's floor is the ring).
        assert_fill_ring_refills(
            &port,
            rxq.as_mut(),
            &mut pool,
            DEEP as usize,
            Duration::from_millis(1),
            &format!("round {round}"),
        );
    }

    // A second port asking for the largest ring: the store cannot give it a full one,
    // so its share is in proportion to its ring and the first port's shrinks to match.
    let v2 = VethNs::new("ds", 1);
    let max = rvswitch::netdev::afxdp::RX_RING_MAX;
    let big = AfxdpNetdev::open(&spec(
        &v2.host,
        "afxdp",
        &[("xdp_mode", "generic"), ("n_rxq_desc", &max.to_string())],
    ))
    .expect("a ring larger than the store's share still opens");
    let quarter = u64::from(DEEP);
    let slots = u64::from(DEEP) + u64::from(max);
    assert_eq!(big.rx_ring(), max);
    assert_eq!(
        u64::from(big.fill_share()),
        quarter * u64::from(max) / slots
    );
    assert_eq!(
        u64::from(port.fill_share()),
        quarter * u64::from(DEEP) / slots
    );
    assert_eq!(FrameStore::frames_for_full_rings(slots), 4 * slots);
    drop(big);
    assert_eq!(
        port.fill_share(),
        DEEP,
        "the share comes back when it closes"
    );
}

#[test]
fn a_bad_ring_size_is_refused_naming_the_port_and_the_option() {
    require_root();
    let v = VethNs::new("db", 1);
    for bad in ["1000", "32", "524288", "lots"] {
        let e = AfxdpNetdev::open(&spec(
            &v.host,
            "afxdp",
            &[("xdp_mode", "generic"), ("n_rxq_desc", bad)],
        ))
        .err()
        .unwrap_or_else(|| panic!("n_rxq_desc={bad} was accepted"))
        .to_string();
        assert!(
            e.contains(&format!("afxdp port {}", v.host))
                && e.contains(&format!(
                    "n_rxq_desc={bad}: expected a power of two from 64 to 262144"
                )),
            "{e}"
        );
    }
}
