//! Real-port micro-benchmarks on a veth pair (root), in packets per second:
//!
//! - `tx/<type>`: one batch of 32 64-byte frames through a port's `Txq` (`send` + `flush`:
//!   copy into umem frames or tx ring slots, one kick), delivered to the peer veth;
//! - `rx/<type>`: 32 frames sent by an AF_PACKET port on the peer and received through the
//!   port's `Rxq` (so it measures the peer's tx plus our rx: an upper bound of rx cost).
//!
//! `<type>` is `afxdp-generic`, `afxdp-native` or `afpacket`. Both veth ends stay in the
//! root namespace (names `rvb<pid>a/b`), removed when the bench ends, even on panic.
//! Run: `cargo bench --bench netdev_veth`.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rvswitch::dpif::PortSpec;
use rvswitch::netdev::{self, Netdev};
use rvswitch::packet::{PacketBatch, PacketPool, MAX_BURST};

/// A veth pair removed on drop.
struct Veth {
    a: String,
    b: String,
}

impl Veth {
    fn new() -> Self {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "netdev_veth benches need root"
        );
        let id = std::process::id() % 100_000;
        let (a, b) = (format!("rvb{id}a"), format!("rvb{id}b"));
        let _ = Command::new("ip").args(["link", "del", &a]).output();
        let ok = |args: &[&str]| {
            let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ok(&["ip", "link", "add", &a, "type", "veth", "peer", "name", &b]);
        for d in [&a, &b] {
            let _ = Command::new("sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{d}.disable_ipv6=1")])
                .output();
            ok(&["ip", "link", "set", d, "up"]);
        }
        Veth { a, b }
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.a]).output();
    }
}

fn open(name: &str, port_type: &str, mode: Option<&str>) -> Arc<dyn Netdev> {
    let mut spec = PortSpec {
        name: name.to_string(),
        port_type: port_type.to_string(),
        ..Default::default()
    };
    if let Some(m) = mode {
        spec.options.insert("xdp_mode".into(), m.into());
    }
    netdev::open(&spec).unwrap_or_else(|e| panic!("opening {port_type} on {name}: {e}"))
}

fn frame(src: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.resize(64, 0x5a);
    f
}

fn fill(batch: &mut PacketBatch, pool: &mut PacketPool, f: &[u8]) {
    for _ in 0..MAX_BURST {
        let mut p = pool.get();
        p.set_data(f);
        batch.pkts.push(p);
    }
}

const KINDS: [(&str, &str, Option<&str>); 3] = [
    ("afxdp-generic", "afxdp", Some("generic")),
    ("afxdp-native", "afxdp", Some("native")),
    ("afpacket", "afpacket", None),
];

fn bench(c: &mut Criterion) {
    let veth = Veth::new();
    let mut g = c.benchmark_group("netdev_veth");
    g.throughput(Throughput::Elements(MAX_BURST as u64));
    g.measurement_time(Duration::from_secs(3));
    for (label, ty, mode) in KINDS {
        let port = open(&veth.a, ty, mode);
        let f = frame(port.mac());
        let mut pool = PacketPool::new(256);
        let mut batch = PacketBatch::new();

        let mut txq = port.open_txq(0).unwrap();
        g.bench_function(format!("tx/{label}"), |b| {
            b.iter(|| {
                fill(&mut batch, &mut pool, &f);
                txq.send(&mut batch, &mut pool);
                txq.flush();
            })
        });

        let peer = open(&veth.b, "afpacket", None);
        let mut peer_tx = peer.open_txq(0).unwrap();
        let mut rxq = port.open_rxq(0).unwrap();
        g.bench_function(format!("rx/{label}"), |b| {
            b.iter(|| {
                fill(&mut batch, &mut pool, &f);
                peer_tx.send(&mut batch, &mut pool);
                peer_tx.flush();
                let (mut got, start) = (0, Instant::now());
                while got < MAX_BURST && start.elapsed() < Duration::from_millis(100) {
                    got += rxq.recv(&mut batch, &mut pool).unwrap();
                    for p in batch.pkts.drain(..) {
                        pool.put(p);
                    }
                }
            })
        });
        eprintln!("{label}: port stats {:?}", port.stats());
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
