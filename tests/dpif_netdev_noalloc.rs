//! "No heap allocation per packet on the fast path", checked with a counting global
//! allocator: after a warm-up, thousands of batches go through rx (dummy replay mode),
//! parse, EMC / dpcls lookup, grouped execution (rewrite, VLAN push, recirculation,
//! output) and tx flush, and the thread running them must not allocate once.
//!
//! Locks: the `PmdDatapath` holds no lock type, and the dummy device's replay rx and
//! count-only tx take none. Syscalls: none are made by this path (no I/O device), which
//! the zero-allocation run also exercises end to end.

mod counting_alloc;

use std::collections::BTreeMap;
use std::sync::Arc;

use rvswitch::dpif::{DpAction, FlowPut, FlowPutMode, Masked, PortSpec, SetField};
use rvswitch::dpif_netdev::{PmdDatapath, PmdDatapathConfig};
use rvswitch::netdev::dummy::DummyNetdev;
use rvswitch::netdev::Netdev;
use rvswitch::packet::{ethertype, FlowKey, FlowMask, PacketBatch, VlanTag};
use rvswitch::pmd::{PmdCounters, PollWork};

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

fn udp_frame(src: u8, dst: u8, sport: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0, 0, 46, 0, 1, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&[10, 0, 0, src, 10, 0, 1, dst]);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&26u16.to_be_bytes());
    f.extend_from_slice(&[0u8; 20]);
    f
}

fn spec(name: &str) -> PortSpec {
    PortSpec {
        name: name.into(),
        port_type: "dummy".into(),
        options: BTreeMap::new(),
    }
}

/// Runs `iters` batches after a warm-up and returns the allocations made meanwhile.
fn allocations_in_steady_state(emc_inv_prob: u32, masks: usize, actions: Vec<DpAction>) -> u64 {
    let rx = DummyNetdev::new("na-rx", &spec("na-rx")).unwrap();
    let tx = DummyNetdev::new("na-tx", &spec("na-tx")).unwrap();
    // 64 distinct 5-tuples spread over `masks` destinations.
    let frames: Vec<Vec<u8>> = (0..64)
        .map(|i| udp_frame(i as u8, (i % masks) as u8, 1000 + i as u16))
        .collect();
    rx.set_rx_replay(0, frames).unwrap();
    tx.set_tx_capture(false);
    let cfg = PmdDatapathConfig {
        emc_insert_inv_prob: emc_inv_prob,
        upcall_rate: 0,
        pool_size: 1024,
        ..Default::default()
    };
    let counters = Arc::new(PmdCounters::default());
    let mut dp = PmdDatapath::new(None, &cfg, counters.clone());
    dp.add_tx_port(2, tx.open_txq(0).unwrap());
    let tx3 = DummyNetdev::new("na-tx3", &spec("na-tx3")).unwrap();
    tx3.set_tx_capture(false);
    dp.add_tx_port(3, tx3.open_txq(0).unwrap());
    for j in 0..masks {
        // Mask j: nw_dst exact plus a nw_src prefix of length j, so each is distinct.
        let mut m = FlowMask::default();
        m.0.dl_type = u16::MAX;
        m.0.nw_dst = u32::MAX;
        m.0.nw_src = !(u32::MAX >> j);
        let k = FlowKey {
            in_port: 1,
            dl_type: ethertype::IPV4,
            nw_src: 0x0a00_0000,
            nw_dst: 0x0a00_0100 | j as u32,
            ..Default::default()
        };
        dp.flow_put(&FlowPut {
            key: k,
            mask: m,
            actions: Arc::from(actions.clone()),
            mode: FlowPutMode::Create,
            clear_stats: false,
        })
        .unwrap();
        // Second pass flows for recirculation tests.
        let k2 = FlowKey { recirc_id: 9, ..k };
        dp.flow_put(&FlowPut {
            key: k2,
            mask: m,
            actions: Arc::from(vec![DpAction::Output(2)]),
            mode: FlowPutMode::Create,
            clear_stats: false,
        })
        .unwrap();
    }
    let mut rxq = rx.open_rxq(0).unwrap();
    let mut batch = PacketBatch::new();
    let mut run = |dp: &mut PmdDatapath, n: usize| {
        for _ in 0..n {
            dp.begin_iteration(rvswitch::pmd::cycles::now());
            rxq.recv(&mut batch, dp.pool()).unwrap();
            dp.process_rx(1, &mut batch);
            dp.end_iteration();
        }
    };
    run(&mut dp, 500);
    let sent_before = tx.stats().tx_packets;
    counting_alloc::start();
    run(&mut dp, 5_000);
    let allocs = counting_alloc::stop();
    let sent = tx.stats().tx_packets - sent_before;
    assert_eq!(sent, 5_000 * 32, "every packet must have been forwarded");
    let s = counters.snapshot();
    assert_eq!(s.upcall_failed, 0);
    assert_eq!(s.tx_no_port, 0);
    allocs
}

#[test]
fn no_allocation_per_packet_on_the_fast_path() {
    // Separate cases run sequentially in one test: the counter is process-wide.
    // First, the counter must see an allocation when there is one.
    counting_alloc::start();
    let v: Vec<u64> = std::hint::black_box(Vec::with_capacity(8));
    let allocs = counting_alloc::stop();
    drop(v);
    assert_eq!(allocs, 1, "the counting allocator works");
    let out = vec![DpAction::Output(2)];
    assert_eq!(
        allocations_in_steady_state(1, 1, out.clone()),
        0,
        "EMC hits"
    );
    assert_eq!(
        allocations_in_steady_state(0, 8, out),
        0,
        "dpcls, 8 subtables"
    );
    let rewrite = vec![
        DpAction::Set(SetField::Ipv4 {
            src: Masked::default(),
            dst: Masked::default(),
            tos: Masked::default(),
            // Not matched by the second pass, so the recirculated packet still hits.
            ttl: Masked {
                value: 9,
                mask: 0xff,
            },
        }),
        DpAction::PushVlan(VlanTag {
            tpid: 0x8100,
            tci: 5,
        }),
        DpAction::Clone(vec![DpAction::Output(3)]),
        DpAction::PopVlan,
        DpAction::Recirc(9),
    ];
    assert_eq!(
        allocations_in_steady_state(100, 4, rewrite),
        0,
        "rewrite, push/pop, clone, recirculation"
    );
    let header =
        rvswitch::packet::tunnel::build_tnl_header(&rvswitch::packet::tunnel::TnlHeaderSpec {
            eth_src: [2, 0, 0, 0, 0, 1],
            eth_dst: [2, 0, 0, 0, 0, 2],
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            tos: 0,
            ttl: 64,
            dont_fragment: true,
            encap: rvswitch::packet::tunnel::Encap::Vxlan {
                vni: 7,
                dst_port: 4789,
                udp_csum: true,
            },
        })
        .unwrap();
    let push = vec![DpAction::TnlPush(rvswitch::dpif::TnlPush {
        tnl_port: 100,
        out_port: 2,
        tnl_type: rvswitch::dpif::TunnelType::Vxlan,
        header,
    })];
    assert_eq!(
        allocations_in_steady_state(100, 2, push),
        0,
        "VXLAN tnl_push"
    );
}
