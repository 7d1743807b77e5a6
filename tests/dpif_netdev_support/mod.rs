//! Shared helpers of the userspace datapath tests: hand-built frames and checksums
//! computed independently of `packet::wire`, so the tests check the rewrite code against
//! a second implementation.

#![allow(dead_code)]

use std::time::{Duration, Instant};

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
