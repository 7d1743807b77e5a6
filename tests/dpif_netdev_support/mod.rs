//! Shared helpers of the userspace datapath tests: hand-built frames and checksums
//! computed independently of `packet::wire`, so the tests check the rewrite code against
//! a second implementation.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rvswitch::dpif::{
    DpAction, Dpif, FlowPut, FlowPutMode, PortSpec, Upcall, UpcallError, UpcallHandler, UpcallKind,
    UpcallReply,
};
use rvswitch::dpif_netdev::{DpNetdevConfig, DpifNetdev};
use rvswitch::packet::{ethertype, FlowKey, FlowMask};

/// One's complement sum of 16-bit big-endian words.
pub fn ones_sum(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        acc += w as u32;
    }
    acc
}

/// Folds a sum to the 16-bit one's complement checksum.
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// An Ethernet + IPv4 + UDP frame with correct checksums.
pub fn udp_frame(
    src_ip: [u8; 4],
    dst_ip: [u8; 4],
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2]); // dst mac
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]); // src mac
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip.extend_from_slice(&src_ip);
    ip.extend_from_slice(&dst_ip);
    let c = fold(ones_sum(&ip, 0));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut udp = Vec::new();
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let c = fold(ones_sum(&udp, pseudo(&src_ip, &dst_ip, 17, udp_len)));
    udp[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
    f.extend_from_slice(&udp);
    f
}

/// The IPv4 pseudo-header sum.
pub fn pseudo(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u32 {
    let mut p = Vec::new();
    p.extend_from_slice(src);
    p.extend_from_slice(dst);
    p.extend_from_slice(&[0, proto]);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    ones_sum(&p, 0)
}

/// Checks the IPv4 header and UDP checksums of an IPv4/UDP packet starting at `l3` by
/// full recomputation.
pub fn checksums_ok(frame: &[u8], l3: usize) -> (bool, bool) {
    let ihl = ((frame[l3] & 0x0f) as usize) * 4;
    let ip = &frame[l3..l3 + ihl];
    let ip_ok = fold(ones_sum(ip, 0)) == 0;
    let total = u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]) as usize;
    let udp = &frame[l3 + ihl..l3 + total];
    let udp_ok = fold(ones_sum(
        udp,
        pseudo(&ip[12..16], &ip[16..20], 17, udp.len()),
    )) == 0;
    (ip_ok, udp_ok)
}

/// Polls `cond` until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

/// The highest-numbered core, where the tests run their PMD thread.
pub fn pmd_core() -> usize {
    core_affinity::get_core_ids()
        .and_then(|v| v.iter().map(|c| c.id).max())
        .unwrap_or(0)
}

/// How long the tests wait for traffic.
pub const T: Duration = Duration::from_secs(5);

/// A port spec of type `ty` without options.
pub fn port_spec(name: &str, ty: &str) -> PortSpec {
    PortSpec {
        name: name.into(),
        port_type: ty.into(),
        options: BTreeMap::new(),
    }
}

/// A dummy port spec.
pub fn dummy(name: &str) -> PortSpec {
    port_spec(name, "dummy")
}

/// A datapath, or the test fails.
pub fn dp(name: &str, cfg: DpNetdevConfig) -> Arc<DpifNetdev> {
    DpifNetdev::new(name, cfg).expect("datapath")
}

/// One PMD on the test core, defaults otherwise.
pub fn cfg() -> DpNetdevConfig {
    DpNetdevConfig {
        pmd_cores: vec![pmd_core()],
        ..Default::default()
    }
}

/// Match IPv4 from `in_port`.
pub fn ipv4_match(in_port: u32) -> (FlowKey, FlowMask) {
    let k = FlowKey {
        in_port,
        dl_type: ethertype::IPV4,
        ..Default::default()
    };
    let mut m = FlowMask::default();
    m.0.in_port = u32::MAX;
    m.0.dl_type = u16::MAX;
    (k, m)
}

/// Installs a flow on every thread.
pub fn put(dp: &DpifNetdev, k: FlowKey, m: FlowMask, actions: Vec<DpAction>) {
    dp.flow_put(&FlowPut {
        key: k,
        mask: m,
        actions: Arc::from(actions),
        mode: FlowPutMode::Create,
        clear_stats: false,
    })
    .expect("flow_put");
}

/// A translator that outputs everything from port 1 to port 2 and records its calls.
pub struct ToPort2 {
    pub calls: AtomicU64,
    pub actions: AtomicU64,
    pub install: bool,
    pub out: u32,
}

impl ToPort2 {
    /// A translator to `out` that has counted nothing yet; `install` says whether its
    /// answers may be installed as megaflows.
    pub fn new(out: u32, install: bool) -> Arc<ToPort2> {
        Arc::new(ToPort2 {
            calls: AtomicU64::new(0),
            actions: AtomicU64::new(0),
            install,
            out,
        })
    }
}

impl UpcallHandler for ToPort2 {
    fn upcall(&self, up: &Upcall<'_>) -> Result<UpcallReply, UpcallError> {
        if let UpcallKind::Action { .. } = up.kind {
            self.actions.fetch_add(1, Ordering::SeqCst);
            return Ok(UpcallReply {
                actions: vec![],
                mask: FlowMask::default(),
                install: false,
            });
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut mask = FlowMask::default();
        mask.0.dl_type = u16::MAX;
        mask.0.nw_dst = u32::MAX;
        Ok(UpcallReply {
            actions: vec![DpAction::Output(self.out)],
            mask,
            install: self.install,
        })
    }
}

/// A translator with a bug: it panics on every call.
pub struct Panicking;

impl UpcallHandler for Panicking {
    fn upcall(&self, _up: &Upcall<'_>) -> Result<UpcallReply, UpcallError> {
        panic!("translator bug (expected by the test)");
    }
}

/// The counters of the first PMD thread (the tests run one, on `pmd_core()`), not those
/// of the main thread.
pub fn first_pmd_stats(dp: &DpifNetdev) -> rvswitch::pmd::PmdStats {
    dp.pmd_stats()
        .into_iter()
        .find(|e| e.core.is_some())
        .expect("a PMD thread")
        .stats
}
