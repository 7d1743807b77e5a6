//! Fast-path micro-benchmarks, in packets per second (criterion `Throughput::Elements`).
//!
//! - `parse`: `flow_extract` on a batch of 32 IPv4/UDP frames;
//! - `emc_hit`: EMC lookups of 32 resident keys;
//! - `dpcls/N`: batch lookup of 32 packets in a classifier with N subtables, packets
//!   spread evenly over the subtables (after the hit-count ranking);
//! - `pipeline/emc_hit_output`: the full per-PMD path on one thread: dummy rx in replay
//!   mode (copies each frame into a pool buffer) + parse + EMC + grouped execution of
//!   `output` + tx flush to a dummy port in count-only mode;
//! - `pipeline/one_flow_output`: the same with one flow (the end-to-end bench's workload
//!   a), where every packet after a batch's first repeats its predecessor's key;
//! - `pipeline/10k_flows_output`: the same with 10,000 flows (the end-to-end bench's
//!   workload b), where EMC slots are cache misses and some packets go to the dpcls;
//! - `pipeline/10k_flows_output_auto_bypass`: the same with `emc_auto_bypass` on (the
//!   default; the others pin the EMC on), where the thread's trials decide whether EMC
//!   lookups pay.
//!
//! Run: `cargo bench --bench classifier`. Figures go to BENCHMARKS.md.
//!
//! On a shared, loaded host wall-clock time mostly measures the scheduler. Setting
//! `RVS_BENCH_CLOCK=thread-cpu` makes every benchmark time itself with the thread's CPU
//! clock (`CLOCK_THREAD_CPUTIME_ID`, read once per sample, not per iteration) so the
//! figures show what one core does when it is not preempted.

use std::collections::BTreeMap;
use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use rvswitch::dpif::{DpAction, DpActions, FlowPut, FlowPutMode, PortSpec};
use rvswitch::dpif_netdev::dpcls::Dpcls;
use rvswitch::dpif_netdev::emc::Emc;
use rvswitch::dpif_netdev::flow_table::{normalize_mask, FlowTable};
use rvswitch::dpif_netdev::{PmdDatapath, PmdDatapathConfig};
use rvswitch::netdev::dummy::DummyNetdev;
use rvswitch::netdev::Netdev;
use rvswitch::packet::parse::flow_extract;
use rvswitch::packet::{ethertype, FlowKey, FlowMask, PacketBatch, PacketBuf, MAX_BURST};
use rvswitch::pmd::{PmdCounters, PollWork};

/// Runs `f` `iters` times and returns the elapsed wall or thread-CPU time.
fn timed(iters: u64, mut f: impl FnMut()) -> std::time::Duration {
    let cpu = std::env::var("RVS_BENCH_CLOCK").is_ok_and(|v| v == "thread-cpu");
    if !cpu {
        let t0 = std::time::Instant::now();
        for _ in 0..iters {
            f();
        }
        return t0.elapsed();
    }
    let now = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out-pointer; the clock id is a constant Linux knows.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    };
    let t0 = now();
    for _ in 0..iters {
        f();
    }
    now() - t0
}

fn udp_frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let mut ip = vec![0x45, 0, 0, 46, 0, 1, 0x40, 0, 64, 17, 0, 0];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&26u16.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&[0u8; 18]); // 64-byte frame
    f
}

fn frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| udp_frame([10, 0, 0, i as u8], [10, 0, 1, 1], 1000 + i as u16, 80))
        .collect()
}

fn bench_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(MAX_BURST as u64));
    let mut pkts: Vec<PacketBuf> = frames(MAX_BURST)
        .iter()
        .map(|f| PacketBuf::from_frame(f))
        .collect();
    let mut keys = vec![FlowKey::default(); MAX_BURST];
    g.bench_function("flow_extract_udp4", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                for (p, k) in pkts.iter_mut().zip(keys.iter_mut()) {
                    flow_extract(p, k);
                }
                black_box(&keys);
            })
        })
    });
    g.finish();
}

fn bench_emc(c: &mut Criterion) {
    let mut g = c.benchmark_group("emc");
    g.throughput(Throughput::Elements(MAX_BURST as u64));
    let mut table = FlowTable::new(16);
    let mut m = FlowMask::default();
    m.0.nw_dst = u32::MAX;
    let r = table
        .insert(&FlowKey::default(), &normalize_mask(&m), Arc::from(vec![]))
        .unwrap();
    let mut emc = Emc::new(1, 1);
    let keys: Vec<(FlowKey, u32)> = frames(MAX_BURST)
        .iter()
        .map(|f| {
            let mut p = PacketBuf::from_frame(f);
            let mut k = FlowKey::default();
            flow_extract(&mut p, &mut k);
            let h = rvswitch::dpif_netdev::emc::emc_hash(&k);
            emc.insert(&k, h, r, &table);
            (k, h)
        })
        .collect();
    g.bench_function("hit", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let mut n = 0;
                for (k, h) in &keys {
                    n += emc.lookup(black_box(k), *h, &table).is_some() as u32;
                }
                assert_eq!(n, MAX_BURST as u32);
            })
        })
    });
    g.finish();
}

/// A classifier with `n` subtables (mask j: nw_dst exact + nw_src /(j+1)), 16 flows each,
/// and 32 packets spread evenly over the subtables.
fn classifier(n: usize) -> (Dpcls, Vec<FlowKey>) {
    let mut cls = Dpcls::new();
    let mut idx = 0;
    for j in 0..n {
        let mut m = FlowMask::default();
        m.0.in_port = u32::MAX;
        m.0.dl_type = u16::MAX;
        m.0.nw_dst = u32::MAX;
        m.0.nw_src = u32::MAX << (31 - j as u32);
        for f in 0..16u32 {
            let k = FlowKey {
                in_port: 1,
                dl_type: ethertype::IPV4,
                nw_dst: 0x0a00_0000 | j as u32,
                nw_src: f << 28,
                ..Default::default()
            };
            idx += 1;
            cls.insert(
                &k.masked(&m),
                &m,
                rvswitch::dpif_netdev::FlowRef { idx, gen: 1 },
            );
        }
    }
    let pkts: Vec<FlowKey> = (0..MAX_BURST)
        .map(|i| FlowKey {
            in_port: 1,
            dl_type: ethertype::IPV4,
            nw_dst: 0x0a00_0000 | (i % n) as u32,
            nw_src: (i as u32 % 16) << 28,
            tp_src: i as u16,
            ..Default::default()
        })
        .collect();
    // Rank once with the traffic we measure.
    let mut out = [rvswitch::dpif_netdev::FlowRef::NONE; MAX_BURST];
    cls.lookup_batch(&pkts, u32::MAX, &mut out);
    cls.sort_subtables();
    (cls, pkts)
}

fn bench_dpcls(c: &mut Criterion) {
    let mut g = c.benchmark_group("dpcls");
    g.throughput(Throughput::Elements(MAX_BURST as u64));
    for n in [1usize, 8, 32] {
        let (mut cls, pkts) = classifier(n);
        let mut out = [rvswitch::dpif_netdev::FlowRef::NONE; MAX_BURST];
        g.bench_function(format!("{n}_subtables"), |b| {
            b.iter_custom(|iters| {
                timed(iters, || {
                    let r = cls.lookup_batch(black_box(&pkts), u32::MAX, &mut out);
                    assert_eq!(r.hit_bits, u32::MAX);
                    black_box(&out);
                })
            })
        });
    }
    g.finish();
}

/// A poll thread's datapath between two dummy ports: rx replays `frames` (in order,
/// wrapping), one megaflow (`nw_dst` exact) outputs everything to port 2 in count-only
/// mode. `emc_auto_bypass` off pins EMC lookups on, so that a benchmark named for the
/// EMC measures it whatever a trial would choose on this host. Returns the datapath,
/// the ports, and one iteration (rx, process, flush).
fn pipeline(
    frames: Vec<Vec<u8>>,
    emc_insert_inv_prob: u32,
    emc_auto_bypass: bool,
) -> (
    PmdDatapath,
    DummyNetdev,
    DummyNetdev,
    impl FnMut(&mut PmdDatapath, &mut PacketBatch),
) {
    let spec = |name: &str| PortSpec {
        name: name.into(),
        port_type: "dummy".into(),
        options: BTreeMap::new(),
    };
    let rx_dev = DummyNetdev::new("bench-rx", &spec("bench-rx")).unwrap();
    let tx_dev = DummyNetdev::new("bench-tx", &spec("bench-tx")).unwrap();
    rx_dev.set_rx_replay(0, frames).unwrap();
    tx_dev.set_tx_capture(false);
    let cfg = PmdDatapathConfig {
        emc_insert_inv_prob,
        emc_auto_bypass,
        upcall_rate: 0,
        pool_size: 1024,
        ..Default::default()
    };
    let mut dp = PmdDatapath::new(None, &cfg, Arc::new(PmdCounters::default()));
    dp.add_tx_port(2, tx_dev.open_txq(0).unwrap());
    let mut m = FlowMask::default();
    m.0.dl_type = u16::MAX;
    m.0.nw_dst = u32::MAX;
    let actions: DpActions = Arc::from(vec![DpAction::Output(2)]);
    dp.flow_put(&FlowPut {
        key: FlowKey {
            in_port: 1,
            dl_type: ethertype::IPV4,
            nw_dst: u32::from_be_bytes([10, 0, 1, 1]),
            ..Default::default()
        },
        mask: m,
        actions,
        mode: FlowPutMode::Create,
        clear_stats: false,
    })
    .unwrap();
    let mut rxq = rx_dev.open_rxq(0).unwrap();
    let iteration = move |dp: &mut PmdDatapath, batch: &mut PacketBatch| {
        let n = rxq.recv(batch, dp.pool()).unwrap();
        debug_assert_eq!(n, MAX_BURST);
        dp.process_rx(1, batch);
        dp.flush_tx();
    };
    (dp, rx_dev, tx_dev, iteration)
}

/// Runs a few more iterations outside criterion before a bench's checks, so that the
/// checks see traffic also when a name filter (`cargo bench -- pipeline/10k`) skipped
/// the bench itself.
fn check_run<F: FnMut(&mut PmdDatapath, &mut PacketBatch)>(
    dp: &mut PmdDatapath,
    batch: &mut PacketBatch,
    iteration: &mut F,
) {
    for _ in 0..64 {
        iteration(dp, batch);
    }
}

fn bench_pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(MAX_BURST as u64));
    // One batch of 32 flows, EMC insertion always: every packet an EMC hit.
    let (mut dp, rx_dev, tx_dev, mut iteration) = pipeline(frames(MAX_BURST), 1, false);
    let mut batch = PacketBatch::new();
    for _ in 0..100 {
        iteration(&mut dp, &mut batch);
    }
    let emc_before = dp.counters().emc_hits.get();
    g.bench_function("emc_hit_output", |b| {
        b.iter_custom(|iters| timed(iters, || iteration(&mut dp, &mut batch)))
    });
    check_run(&mut dp, &mut batch, &mut iteration);
    let c = dp.counters().snapshot();
    assert!(
        c.emc_hits > emc_before,
        "the pipeline bench must run on EMC hits"
    );
    assert_eq!(
        tx_dev.stats().tx_packets,
        rx_dev.stats().rx_packets,
        "every received packet was sent"
    );
    // Workload a of the end-to-end bench: one flow, so every packet after a batch's
    // first takes its predecessor's hash and EMC result.
    let one = vec![udp_frame([10, 0, 0, 1], [10, 0, 1, 1], 1000, 80); MAX_BURST];
    let (mut dp, rx_dev, tx_dev, mut iteration) = pipeline(one, 1, false);
    for _ in 0..100 {
        iteration(&mut dp, &mut batch);
    }
    let emc_before = dp.counters().emc_hits.get();
    g.bench_function("one_flow_output", |b| {
        b.iter_custom(|iters| timed(iters, || iteration(&mut dp, &mut batch)))
    });
    check_run(&mut dp, &mut batch, &mut iteration);
    let c = dp.counters().snapshot();
    assert!(c.emc_hits > emc_before, "one flow runs on EMC hits");
    assert_eq!(tx_dev.stats().tx_packets, rx_dev.stats().rx_packets);
    // Workload b of the end-to-end bench: 10,000 flows with the default insertion
    // probability (1/100), so the EMC is megabytes, mostly resident in no cache, and
    // misses fall through to the dpcls.
    let many: Vec<Vec<u8>> = (0..10_000u32)
        .map(|i| {
            let b = i.to_be_bytes();
            udp_frame(
                [10, 1, b[2], b[3]],
                [10, 0, 1, 1],
                1024 + (i % 50_000) as u16,
                80,
            )
        })
        .collect();
    let (mut dp, rx_dev, tx_dev, mut iteration) = pipeline(many.clone(), 100, false);
    for _ in 0..20_000 {
        iteration(&mut dp, &mut batch);
    }
    let (emc_before, mf_before) = (
        dp.counters().emc_hits.get(),
        dp.counters().megaflow_hits.get(),
    );
    g.bench_function("10k_flows_output", |b| {
        b.iter_custom(|iters| timed(iters, || iteration(&mut dp, &mut batch)))
    });
    check_run(&mut dp, &mut batch, &mut iteration);
    let c = dp.counters().snapshot();
    assert!(
        c.emc_hits > emc_before && c.megaflow_hits > mf_before,
        "10k flows must hit both the EMC and the dpcls"
    );
    assert_eq!(tx_dev.stats().tx_packets, rx_dev.stats().rx_packets);
    // The same with the default emc_auto_bypass: the thread's trials decide whether
    // EMC lookups pay here (which they chose is in the counters, not asserted: it is
    // this host's timing).
    let (mut dp, rx_dev, tx_dev, mut iteration) = pipeline(many, 100, true);
    for _ in 0..20_000 {
        iteration(&mut dp, &mut batch);
    }
    let trials_before = dp.counters().emc_trials.get();
    assert!(trials_before >= 1, "20,000 batches span a trial");
    let hits_before = dp.counters().emc_hits.get() + dp.counters().megaflow_hits.get();
    g.bench_function("10k_flows_output_auto_bypass", |b| {
        b.iter_custom(|iters| timed(iters, || iteration(&mut dp, &mut batch)))
    });
    check_run(&mut dp, &mut batch, &mut iteration);
    let c = dp.counters().snapshot();
    assert!(
        c.emc_hits + c.megaflow_hits > hits_before,
        "no upcalls: every packet hit"
    );
    assert_eq!(tx_dev.stats().tx_packets, rx_dev.stats().rx_packets);
    g.finish();
}

criterion_group!(benches, bench_parse, bench_emc, bench_dpcls, bench_pipeline);
criterion_main!(benches);
