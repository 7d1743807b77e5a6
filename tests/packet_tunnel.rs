//! Tunnel encapsulation tests: headers built by `build_tnl_header` and pushed by
//! `tnl_push` are checked field by field with the wire views; hand-built tunnel frames
//! are popped by `tnl_pop`; broken outer headers are refused without touching the packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use rvswitch::dpif::action::{TnlPush, TunnelType};
use rvswitch::packet::flow_key::tun_flag;
use rvswitch::packet::parse::flow_extract;
use rvswitch::packet::tunnel::{
    build_tnl_header, tnl_pop, tnl_pop_as, tnl_push, udp_src_port, Encap, TnlError, TnlHeaderSpec,
    UDP_SRC_MAX, UDP_SRC_MIN,
};
use rvswitch::packet::wire::build::{ipv4_frame, ipv6_frame, L4};
use rvswitch::packet::wire::geneve::{self, GeneveOption};
use rvswitch::packet::wire::{checksum, ethernet, gre, ipv4, ipv6, udp, vxlan};
use rvswitch::packet::{FlowKey, PacketBuf, OFS_NONE};

const UNDER_SRC: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];
const UNDER_DST: [u8; 6] = [0x52, 0x54, 0, 0, 0, 2];

fn inner() -> Vec<u8> {
    let e = ethernet::Repr {
        dst: [2, 0, 0, 0, 0, 0xb],
        src: [2, 0, 0, 0, 0, 0xa],
        ..Default::default()
    };
    let ip = ipv4::Repr {
        src: 0xc0a8_0001,
        dst: 0xc0a8_0002,
        ttl: 64,
        ..Default::default()
    };
    ipv4_frame(
        &e,
        &ip,
        &L4::Udp(
            udp::Repr {
                src_port: 1111,
                dst_port: 2222,
                payload_len: 0,
            },
            b"inner payload",
        ),
    )
    .unwrap()
}

fn spec(src: IpAddr, dst: IpAddr, encap: Encap) -> TnlHeaderSpec {
    TnlHeaderSpec {
        eth_src: UNDER_SRC,
        eth_dst: UNDER_DST,
        src,
        dst,
        tos: 0x10,
        ttl: 64,
        dont_fragment: true,
        encap,
    }
}

fn push(header: Vec<u8>, t: TunnelType) -> TnlPush {
    TnlPush {
        tnl_port: 100,
        out_port: 1,
        tnl_type: t,
        header,
    }
}

const V4_SRC: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
const V4_DST: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 2);

#[test]
fn vxlan_over_ipv4_push_then_pop() {
    let s = spec(
        V4_SRC.into(),
        V4_DST.into(),
        Encap::Vxlan {
            vni: 5001,
            dst_port: vxlan::UDP_PORT,
            udp_csum: true,
        },
    );
    let hdr = build_tnl_header(&s).unwrap();
    assert_eq!(hdr.len(), 14 + 20 + 8 + 8);
    let frame = inner();
    let mut p = PacketBuf::from_frame(&frame);
    tnl_push(&mut p, &push(hdr.clone(), TunnelType::Vxlan), 0xdead_beef).unwrap();
    assert_eq!(p.len(), frame.len() + hdr.len());
    let d = p.data();
    let e = ethernet::Repr::parse(&ethernet::Packet::new_checked(d).unwrap()).unwrap();
    assert_eq!((e.src, e.dst, e.ethertype), (UNDER_SRC, UNDER_DST, 0x0800));
    let ip = ipv4::Packet::new_checked(&d[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(ip.total_len() as usize, d.len() - 14);
    assert_eq!(
        (
            ip.src_addr(),
            ip.dst_addr(),
            ip.tos(),
            ip.ttl(),
            ip.dont_frag()
        ),
        (V4_SRC.into(), V4_DST.into(), 0x10, 64, true)
    );
    let u = udp::Packet::new_checked(&d[34..]).unwrap();
    assert_eq!(u.len() as usize, d.len() - 34);
    assert_eq!(u.src_port(), udp_src_port(0xdead_beef));
    assert_eq!(u.dst_port(), 4789);
    assert_ne!(u.checksum(), 0);
    assert!(u.verify_checksum(checksum::pseudo_header_v4(
        ip.src_addr(),
        ip.dst_addr(),
        17,
        u.len()
    )));
    let v = vxlan::Repr::parse(&vxlan::Packet::new_checked(&d[42..]).unwrap()).unwrap();
    assert_eq!(v.vni, 5001);
    assert_eq!(&d[50..], &frame[..]);
    assert_eq!((p.meta.l3_ofs, p.meta.l4_ofs), (14, 34));

    let m = tnl_pop(&mut p).unwrap();
    assert_eq!(p.data(), &frame[..]);
    assert_eq!(
        (m.tun_id, m.ipv4_src, m.ipv4_dst, m.tos, m.ttl),
        (5001, V4_SRC.into(), V4_DST.into(), 0x10, 64)
    );
    assert_eq!(
        m.flags,
        tun_flag::DONT_FRAGMENT | tun_flag::CSUM | tun_flag::KEY
    );
    assert_eq!((m.tp_src, m.tp_dst), (udp_src_port(0xdead_beef), 4789));
    assert_eq!(*p.meta.tunnel(), m);
    assert_eq!(p.meta.l3_ofs, OFS_NONE);
    // the recirculated packet's key carries the tunnel metadata
    let mut k = FlowKey::default();
    flow_extract(&mut p, &mut k);
    assert_eq!(
        (k.tun_id, k.tun_ipv4_dst, k.tp_dst),
        (5001, V4_DST.into(), 2222)
    );
}

#[test]
fn geneve_over_ipv6_with_options() {
    let src = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let dst = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    let options = vec![
        GeneveOption {
            class: 0x0102,
            opt_type: 0x03,
            data: vec![0xaa, 0xbb, 0xcc, 0xdd, 1, 2, 3, 4],
        },
        GeneveOption {
            class: 0xffff,
            opt_type: 0x80,
            data: vec![9, 9, 9, 9],
        },
    ];
    let s = spec(
        src.into(),
        dst.into(),
        Encap::Geneve {
            vni: 0xabcdef,
            dst_port: geneve::UDP_PORT,
            udp_csum: true,
            oam: true,
            options: options.clone(),
        },
    );
    let hdr = build_tnl_header(&s).unwrap();
    let frame = inner();
    let mut p = PacketBuf::from_frame(&frame);
    tnl_push(&mut p, &push(hdr.clone(), TunnelType::Geneve), 7).unwrap();
    let d = p.data();
    let ip = ipv6::Packet::new_checked(&d[14..]).unwrap();
    assert_eq!(ip.payload_len() as usize, d.len() - 54);
    assert_eq!(
        (ip.hop_limit(), ip.traffic_class(), ip.next_header()),
        (64, 0x10, 17)
    );
    let u = udp::Packet::new_checked(&d[54..]).unwrap();
    assert!(u.verify_checksum(checksum::pseudo_header_v6(
        &src.octets(),
        &dst.octets(),
        17,
        u.len() as u32
    )));
    let g = geneve::Repr::parse(&geneve::Packet::new_checked(&d[62..]).unwrap()).unwrap();
    assert_eq!(
        (g.vni, g.oam, g.critical, g.protocol),
        (0xabcdef, true, true, 0x6558)
    );
    assert_eq!(g.options, options);

    let m = tnl_pop(&mut p).unwrap();
    assert_eq!(p.data(), &frame[..]);
    assert_eq!(
        (m.tun_id, m.ipv6_src, m.ipv6_dst),
        (0xabcdef, src.octets(), dst.octets())
    );
    assert_eq!((m.gnv_opt_hdr, m.gnv_opt_data), (0x0102_0302, 0xaabb_ccdd));
    assert_eq!(m.flags, tun_flag::CSUM | tun_flag::KEY | tun_flag::OAM);
}

#[test]
fn gre_with_key_and_checksum() {
    let s = spec(
        V4_SRC.into(),
        V4_DST.into(),
        Encap::Gre {
            key: Some(0x0102_0304),
            csum: true,
        },
    );
    let hdr = build_tnl_header(&s).unwrap();
    assert_eq!(hdr.len(), 14 + 20 + 12);
    let frame = inner();
    let mut p = PacketBuf::from_frame(&frame);
    tnl_push(&mut p, &push(hdr, TunnelType::Gre), 0).unwrap();
    let d = p.data();
    let ip = ipv4::Packet::new_checked(&d[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(ip.protocol(), 47);
    let g = gre::Packet::new_checked(&d[34..]).unwrap();
    assert!(g.verify_checksum());
    assert_eq!((g.key(), g.protocol()), (Some(0x0102_0304), 0x6558));
    let m = tnl_pop_as(&mut p, Some(TunnelType::Gre)).unwrap();
    assert_eq!(p.data(), &frame[..]);
    assert_eq!(
        (m.tun_id, m.flags),
        (
            0x0102_0304,
            tun_flag::DONT_FRAGMENT | tun_flag::CSUM | tun_flag::KEY
        )
    );
    assert_eq!((m.tp_src, m.tp_dst), (0, 0));
}

/// A VXLAN frame built by hand from the wire Reprs (no checksum, Ethernet padding after
/// a short inner frame) pops to exactly the inner frame.
#[test]
fn hand_built_vxlan_pops() {
    let small_inner = &inner()[..20]; // any Ethernet frame works as a payload
    let mut body = vec![0u8; 8];
    vxlan::Repr { vni: 42 }.emit(&mut body).unwrap();
    body.extend_from_slice(small_inner);
    let e = ethernet::Repr {
        dst: UNDER_DST,
        src: UNDER_SRC,
        ..Default::default()
    };
    let ip = ipv4::Repr {
        src: 1,
        dst: 2,
        ttl: 9,
        ..Default::default()
    };
    let mut f = ipv4_frame(
        &e,
        &ip,
        &L4::UdpNoChecksum(
            udp::Repr {
                src_port: 50000,
                dst_port: 4789,
                payload_len: 0,
            },
            &body,
        ),
    )
    .unwrap();
    f.resize(f.len() + 6, 0xee); // trailer beyond the IP length
    let mut p = PacketBuf::from_frame(&f);
    let m = tnl_pop(&mut p).unwrap();
    assert_eq!(p.data(), small_inner);
    assert_eq!(
        (m.tun_id, m.ttl, m.tp_src, m.flags),
        (42, 9, 50000, tun_flag::KEY)
    );
    // same with a custom port: only an explicit kind decapsulates it
    let f = ipv4_frame(
        &e,
        &ip,
        &L4::Udp(
            udp::Repr {
                src_port: 50000,
                dst_port: 8472,
                payload_len: 0,
            },
            &body,
        ),
    )
    .unwrap();
    let mut p = PacketBuf::from_frame(&f);
    assert!(matches!(tnl_pop(&mut p), Err(TnlError::NotTunnel(_))));
    assert_eq!(p.data(), &f[..]);
    assert_eq!(
        tnl_pop_as(&mut p, Some(TunnelType::Vxlan)).unwrap().tun_id,
        42
    );
}

#[test]
fn broken_outer_headers_are_refused_unchanged() {
    let s = spec(
        V4_SRC.into(),
        V4_DST.into(),
        Encap::Vxlan {
            vni: 1,
            dst_port: 4789,
            udp_csum: true,
        },
    );
    let mut p = PacketBuf::from_frame(&inner());
    tnl_push(
        &mut p,
        &push(build_tnl_header(&s).unwrap(), TunnelType::Vxlan),
        1,
    )
    .unwrap();
    let good = p.data().to_vec();
    let check = |f: &[u8], want: fn(&TnlError) -> bool| {
        let mut q = PacketBuf::from_frame(f);
        let e = tnl_pop(&mut q).unwrap_err();
        assert!(want(&e), "{e}");
        assert_eq!(q.data(), f);
        assert!(!e.to_string().is_empty());
    };
    let mut f = good.clone();
    f[14 + 8] ^= 1; // TTL without fixing the IPv4 checksum
    check(&f, |e| *e == TnlError::BadChecksum("outer IPv4 header"));
    let mut f = good.clone();
    f[60] ^= 0xff; // inner byte: UDP checksum no longer verifies
    check(&f, |e| *e == TnlError::BadChecksum("outer UDP"));
    let mut f = good.clone();
    f[40..42].copy_from_slice(&[0, 0]); // no UDP checksum, so the VXLAN header is reached
    f[42] = 0; // VXLAN I flag clear
    check(&f, |e| matches!(e, TnlError::Wire(_)));
    let mut f = good.clone();
    f[14 + 6] = 0x20; // MF set
    let c = {
        let mut ip = ipv4::Packet::new_unchecked(&mut f[14..]);
        ip.fill_checksum();
        ip.checksum()
    };
    assert_ne!(c, 0);
    check(&f, |e| matches!(e, TnlError::NotTunnel(_)));
    // every truncation fails cleanly
    for n in 0..good.len() - 14 {
        let mut q = PacketBuf::from_frame(&good[..n]);
        assert!(tnl_pop(&mut q).is_err(), "cut at {n}");
        assert_eq!(q.data(), &good[..n]);
    }
    // a GRE packet carrying IPv4 rather than Ethernet
    let e = ethernet::Repr {
        dst: UNDER_DST,
        src: UNDER_SRC,
        ..Default::default()
    };
    let mut g = vec![0u8; 4];
    gre::Repr {
        protocol: 0x0800,
        ..Default::default()
    }
    .emit(&mut g)
    .unwrap();
    g.extend_from_slice(&[0x45; 40]);
    check(
        &ipv4_frame(&e, &ipv4::Repr::default(), &L4::Raw(47, &g)).unwrap(),
        |e| matches!(e, TnlError::NotTunnel(_)),
    );
    // mismatched explicit kind
    let mut q = PacketBuf::from_frame(&good);
    assert!(tnl_pop_as(&mut q, Some(TunnelType::Gre)).is_err());
    // a non-tunnel IPv6 frame
    let f = ipv6_frame(&e, &ipv6::Repr::default(), &[], &L4::Raw(6, &[0; 20])).unwrap();
    check(&f, |e| matches!(e, TnlError::NotTunnel(_)));
}

#[test]
fn push_errors() {
    // mixed families
    let s = spec(
        V4_SRC.into(),
        Ipv6Addr::LOCALHOST.into(),
        Encap::Gre {
            key: None,
            csum: false,
        },
    );
    assert_eq!(build_tnl_header(&s), Err(TnlError::MixedFamilies));
    // a header larger than the headroom
    let big = (0..7)
        .map(|i| GeneveOption {
            class: i,
            opt_type: 1,
            data: vec![0; 28],
        })
        .collect();
    let s = spec(
        Ipv6Addr::LOCALHOST.into(),
        Ipv6Addr::LOCALHOST.into(),
        Encap::Geneve {
            vni: 1,
            dst_port: 6081,
            udp_csum: false,
            oam: false,
            options: big,
        },
    );
    let hdr = build_tnl_header(&s).unwrap();
    let mut p = PacketBuf::from_frame(&inner());
    assert_eq!(
        tnl_push(&mut p, &push(hdr.clone(), TunnelType::Geneve), 0),
        Err(TnlError::NoHeadroom(hdr.len()))
    );
    assert_eq!(p.data(), &inner()[..]);
    // garbage template
    assert!(matches!(
        tnl_push(&mut p, &push(vec![0; 20], TunnelType::Vxlan), 0),
        Err(TnlError::BadTemplate(_))
    ));
    // bad geneve option length
    let s = spec(
        V4_SRC.into(),
        V4_DST.into(),
        Encap::Geneve {
            vni: 1,
            dst_port: 6081,
            udp_csum: false,
            oam: false,
            options: vec![GeneveOption {
                class: 1,
                opt_type: 1,
                data: vec![1, 2, 3],
            }],
        },
    );
    assert!(matches!(build_tnl_header(&s), Err(TnlError::Wire(_))));
}

#[test]
fn udp_source_port_spreads_over_range() {
    assert_eq!(udp_src_port(0), UDP_SRC_MIN);
    assert_eq!(udp_src_port(u32::MAX), UDP_SRC_MAX);
    let mut seen = std::collections::HashSet::new();
    for i in 0..1000u32 {
        let p = udp_src_port(i.wrapping_mul(0x9e37_79b9));
        assert!((UDP_SRC_MIN..=UDP_SRC_MAX).contains(&p));
        seen.insert(p);
    }
    assert!(seen.len() > 950);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn pop_never_panics_and_leaves_failures_untouched(b in proptest::collection::vec(any::<u8>(), 0..160), proto in prop_oneof![Just(17u8), Just(47u8)], port in prop_oneof![Just(4789u16), Just(6081u16)]) {
        // random bytes behind valid outer Ethernet/IPv4/UDP or GRE headers
        let e = ethernet::Repr { dst: UNDER_DST, src: UNDER_SRC, ..Default::default() };
        let f = if proto == 17 {
            ipv4_frame(&e, &ipv4::Repr::default(), &L4::UdpNoChecksum(udp::Repr { src_port: 1, dst_port: port, payload_len: 0 }, &b)).unwrap()
        } else {
            ipv4_frame(&e, &ipv4::Repr::default(), &L4::Raw(47, &b)).unwrap()
        };
        for frame in [&f[..], &b[..]] {
            let mut p = PacketBuf::from_frame(frame);
            match tnl_pop(&mut p) {
                Ok(_) => prop_assert!(p.len() >= 14 && p.len() < frame.len()),
                Err(_) => prop_assert_eq!(p.data(), frame),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Corrupted or random header templates are refused or pushed, never a panic; a
    /// refused push leaves the packet as it was.
    #[test]
    fn push_never_panics_on_bad_templates(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6), cut in any::<prop::sample::Index>(), random in proptest::collection::vec(any::<u8>(), 0..80), gre in any::<bool>()) {
        let encap = if gre { Encap::Gre { key: Some(1), csum: true } } else { Encap::Vxlan { vni: 1, dst_port: 4789, udp_csum: true } };
        let mut hdr = build_tnl_header(&spec(V4_SRC.into(), V4_DST.into(), encap)).unwrap();
        for (i, v) in flips {
            let i = i.index(hdr.len());
            hdr[i] ^= v;
        }
        hdr.truncate(cut.index(hdr.len() + 1));
        for h in [hdr, random] {
            let frame = inner();
            let mut p = PacketBuf::from_frame(&frame);
            let t = if gre { TunnelType::Gre } else { TunnelType::Vxlan };
            if tnl_push(&mut p, &push(h.clone(), t), 3).is_ok() {
                // An accepted template (possibly a different but self-consistent one,
                // e.g. GRE whose flipped flags drop the optional fields) is completed in
                // place: the inner frame follows it untouched.
                prop_assert_eq!(p.len(), h.len() + frame.len());
                prop_assert_eq!(&p.data()[h.len()..], &frame[..]);
            } else {
                prop_assert_eq!(p.data(), &frame[..]);
            }
        }
    }
}
