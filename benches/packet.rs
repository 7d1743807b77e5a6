//! Packet-layer micro-benchmarks: the per-packet parse and rewrite costs on the fast path.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::net::Ipv4Addr;

use rvswitch::dpif::action::{Masked, SetField, TnlPush, TunnelType};
use rvswitch::packet::parse::flow_extract;
use rvswitch::packet::rewrite::{apply_set, pop_vlan, push_vlan};
use rvswitch::packet::tunnel::{build_tnl_header, tnl_pop, tnl_push, Encap, TnlHeaderSpec};
use rvswitch::packet::wire::build::{ipv4_frame, ipv6_frame, L4};
use rvswitch::packet::wire::{ethernet, ipv4, ipv6, tcp, udp};
use rvswitch::packet::{FlowKey, PacketBuf, VlanTag};

fn eth() -> ethernet::Repr {
    ethernet::Repr {
        dst: [2, 0, 0, 0, 0, 2],
        src: [2, 0, 0, 0, 0, 1],
        ..Default::default()
    }
}

fn udp64() -> Vec<u8> {
    let ip = ipv4::Repr {
        src: 0x0a00_0001,
        dst: 0x0a00_0002,
        ttl: 64,
        ..Default::default()
    };
    let u = udp::Repr {
        src_port: 1234,
        dst_port: 5678,
        payload_len: 0,
    };
    // 14 + 20 + 8 + 18 = 60 bytes (+ FCS = 64 on the wire)
    ipv4_frame(&eth(), &ip, &L4::Udp(u, &[0u8; 18])).expect("frame")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("packet");
    let mut p = PacketBuf::from_frame(&udp64());
    let mut k = FlowKey::default();
    g.bench_function("flow_extract_udp4_64B", |b| {
        b.iter(|| {
            flow_extract(black_box(&mut p), &mut k);
            black_box(&k);
        })
    });

    let ip6 = ipv6::Repr {
        src: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        dst: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        hop_limit: 64,
        ..Default::default()
    };
    let exts = [ipv6::ExtRepr::Options {
        kind: ipv6::ext::HOP_BY_HOP,
        next_header: 0,
        len8: 0,
    }];
    let t = tcp::Repr {
        src_port: 40000,
        dst_port: 443,
        flags: tcp::flags::ACK,
        ..Default::default()
    };
    let mut p6 = PacketBuf::from_frame(
        &ipv6_frame(&eth(), &ip6, &exts, &L4::Tcp(t, &[0; 20])).expect("frame"),
    );
    g.bench_function("flow_extract_tcp6_hbh", |b| {
        b.iter(|| {
            flow_extract(black_box(&mut p6), &mut k);
            black_box(&k);
        })
    });

    flow_extract(&mut p, &mut k);
    let set = SetField::Ipv4 {
        src: Masked {
            value: 0xc0a8_0001,
            mask: u32::MAX,
        },
        dst: Masked { value: 0, mask: 0 },
        tos: Masked { value: 0, mask: 0 },
        ttl: Masked {
            value: 63,
            mask: 0xff,
        },
    };
    g.bench_function("set_ipv4_src_ttl", |b| {
        b.iter(|| black_box(apply_set(black_box(&mut p), &set)))
    });
    g.bench_function("push_pop_vlan", |b| {
        b.iter(|| {
            push_vlan(
                &mut p,
                VlanTag {
                    tpid: 0x8100,
                    tci: 10,
                },
            );
            black_box(pop_vlan(&mut p))
        })
    });

    // VXLAN encapsulation and decapsulation of the 60-byte frame, as a pair so the buffer
    // returns to its original state each iteration.
    let spec = TnlHeaderSpec {
        eth_src: [0x52, 0x54, 0, 0, 0, 1],
        eth_dst: [0x52, 0x54, 0, 0, 0, 2],
        src: Ipv4Addr::new(172, 16, 0, 1).into(),
        dst: Ipv4Addr::new(172, 16, 0, 2).into(),
        tos: 0,
        ttl: 64,
        dont_fragment: true,
        encap: Encap::Vxlan {
            vni: 100,
            dst_port: 4789,
            udp_csum: false,
        },
    };
    let push = TnlPush {
        tnl_port: 10,
        out_port: 1,
        tnl_type: TunnelType::Vxlan,
        header: build_tnl_header(&spec).expect("valid spec"),
    };
    let mut t = PacketBuf::from_frame(&udp64());
    g.bench_function("vxlan_push_pop", |b| {
        b.iter(|| {
            tnl_push(&mut t, &push, 0x1234_5678).expect("headroom");
            black_box(tnl_pop(&mut t).expect("valid"))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
