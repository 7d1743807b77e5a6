//! Rewrite tests: after `apply_set` the incrementally updated checksums must equal a full
//! recomputation, the masked fields must read back as (old & !mask) | (value & mask), and
//! VLAN push/pop must round-trip.

use proptest::prelude::*;
use rvswitch::dpif::action::{Masked, SetField};
use rvswitch::packet::parse::flow_extract;
use rvswitch::packet::rewrite::{apply_set, pop_vlan, push_vlan};
use rvswitch::packet::wire::build::{ipv4_frame, ipv6_frame, L4};
use rvswitch::packet::wire::checksum;
use rvswitch::packet::wire::{ethernet, icmpv6, ipv4, ipv6, sctp, tcp, udp};
use rvswitch::packet::{FlowKey, PacketBuf, TunnelMeta, VlanTag, OFS_NONE};

fn eth() -> ethernet::Repr {
    ethernet::Repr {
        dst: [2, 0, 0, 0, 0, 2],
        src: [2, 0, 0, 0, 0, 1],
        ..Default::default()
    }
}

fn parsed(f: &[u8]) -> (PacketBuf, FlowKey) {
    let mut p = PacketBuf::from_frame(f);
    let mut k = FlowKey::default();
    flow_extract(&mut p, &mut k);
    (p, k)
}

fn reparse(p: &PacketBuf) -> FlowKey {
    let mut q = p.clone();
    let mut k = FlowKey::default();
    flow_extract(&mut q, &mut k);
    k
}

/// Checks that every checksum field in the frame is bit-for-bit what a full recomputation
/// gives (not merely equivalent in one's complement), and verifies.
fn assert_checksums_ok(p: &PacketBuf) {
    let d = p.data();
    let l3 = p.meta.l3_ofs as usize;
    let l4 = p.meta.l4_ofs as usize;
    let proto = p.meta.l4_proto;
    let (seg, ps) = if d[l3] >> 4 == 4 {
        let ip = ipv4::Packet::new_checked(&d[l3..]).unwrap();
        assert!(ip.verify_checksum(), "ipv4 header checksum");
        let mut hdr = d[l3..l3 + ip.header_len()].to_vec();
        let mut h = ipv4::Packet::new_unchecked(&mut hdr[..]);
        h.fill_checksum();
        assert_eq!(h.checksum(), ip.checksum(), "ipv4 header checksum bits");
        let seg = &d[l4..l3 + ip.total_len() as usize];
        let ps = checksum::pseudo_header_v4(ip.src_addr(), ip.dst_addr(), proto, seg.len() as u16);
        (seg, ps)
    } else {
        let ip = ipv6::Packet::new_checked(&d[l3..]).unwrap();
        let seg = &d[l4..l3 + 40 + ip.payload_len() as usize];
        let ps =
            checksum::pseudo_header_v6(&ip.src_addr(), &ip.dst_addr(), proto, seg.len() as u32);
        (seg, ps)
    };
    let mut copy = seg.to_vec();
    match proto {
        6 => {
            assert!(
                tcp::Packet::new_checked(seg).unwrap().verify_checksum(ps),
                "tcp"
            );
            let mut t = tcp::Packet::new_unchecked(&mut copy[..]);
            t.fill_checksum(ps);
            assert_eq!(
                t.checksum(),
                tcp::Packet::new_unchecked(seg).checksum(),
                "tcp bits"
            );
        }
        17 => {
            let u = udp::Packet::new_checked(seg).unwrap();
            if u.checksum() != 0 {
                assert!(u.verify_checksum(ps), "udp");
                let mut c = udp::Packet::new_unchecked(&mut copy[..]);
                c.fill_checksum(ps);
                assert_eq!(c.checksum(), u.checksum(), "udp bits");
            } else {
                assert_eq!(d[l3] >> 4, 4, "zero UDP checksum over IPv6");
            }
        }
        58 => {
            let v = icmpv6::Packet::new_checked(seg).unwrap();
            assert!(v.verify_checksum(ps), "icmpv6");
            let mut c = icmpv6::Packet::new_unchecked(&mut copy[..]);
            c.fill_checksum(ps);
            assert_eq!(c.checksum(), v.checksum(), "icmpv6 bits");
        }
        132 => assert!(
            sctp::Packet::new_checked(seg).unwrap().verify_checksum(),
            "sctp"
        ),
        _ => {}
    }
}

fn l4_kind(i: u8, payload: &[u8]) -> L4<'_> {
    match i % 5 {
        0 => L4::Tcp(
            tcp::Repr {
                src_port: 1000,
                dst_port: 80,
                seq: 9,
                ack: 7,
                flags: 0x18,
                window: 512,
            },
            payload,
        ),
        1 => L4::Udp(
            udp::Repr {
                src_port: 5353,
                dst_port: 53,
                payload_len: 0,
            },
            payload,
        ),
        2 => L4::UdpNoChecksum(
            udp::Repr {
                src_port: 5353,
                dst_port: 53,
                payload_len: 0,
            },
            payload,
        ),
        3 => L4::Sctp(
            sctp::Repr {
                src_port: 36412,
                dst_port: 36412,
                vtag: 0xdead,
            },
            payload,
        ),
        _ => L4::Icmpv6(icmpv6::Repr::NeighborSolicit {
            target: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
            sll: Some([2, 0, 0, 0, 0, 1]),
        }),
    }
}

fn m<T>(value: T, mask: T) -> Masked<T> {
    Masked { value, mask }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ipv4_set_keeps_checksums(kind in 0u8..4, payload in proptest::collection::vec(any::<u8>(), 0..64),
        src in any::<(u32, u32)>(), dst in any::<(u32, u32)>(), tos in any::<(u8, u8)>(), ttl in any::<(u8, u8)>(),
        ports in any::<(u16, u16, u16, u16)>()) {
        let ip = ipv4::Repr { src: 0x0a000001, dst: 0xc0a80101, ttl: 64, tos: 0, ident: 0x1234, dont_frag: true, ..Default::default() };
        let f = ipv4_frame(&eth(), &ip, &l4_kind(kind, &payload)).unwrap();
        let (mut p, k0) = parsed(&f);
        let set = SetField::Ipv4 { src: m(src.0, src.1), dst: m(dst.0, dst.1), tos: m(tos.0, tos.1), ttl: m(ttl.0, ttl.1) };
        prop_assert!(apply_set(&mut p, &set));
        let udp_zero = kind == 2;
        let ports_set = match kind {
            0 => SetField::Tcp { src: m(ports.0, ports.1), dst: m(ports.2, ports.3) },
            1 | 2 => SetField::Udp { src: m(ports.0, ports.1), dst: m(ports.2, ports.3) },
            _ => SetField::Sctp { src: m(ports.0, ports.1), dst: m(ports.2, ports.3) },
        };
        prop_assert!(apply_set(&mut p, &ports_set));
        assert_checksums_ok(&p);
        let k = reparse(&p);
        prop_assert_eq!(k.nw_src, (k0.nw_src & !src.1) | (src.0 & src.1));
        prop_assert_eq!(k.nw_dst, (k0.nw_dst & !dst.1) | (dst.0 & dst.1));
        prop_assert_eq!(k.nw_tos, (k0.nw_tos & !tos.1) | (tos.0 & tos.1));
        prop_assert_eq!(k.nw_ttl, (k0.nw_ttl & !ttl.1) | (ttl.0 & ttl.1));
        prop_assert_eq!(k.tp_src, (k0.tp_src & !ports.1) | (ports.0 & ports.1));
        prop_assert_eq!(k.tp_dst, (k0.tp_dst & !ports.3) | (ports.2 & ports.3));
        if udp_zero {
            // zero means "no checksum" over IPv4 and must stay zero
            prop_assert_eq!(&p.data()[34 + 6..34 + 8], &[0u8, 0][..]);
        }
    }

    #[test]
    fn ipv6_set_keeps_checksums(kind in prop_oneof![Just(0u8), Just(1u8), Just(3u8), Just(4u8)],
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        src in any::<([u8; 16], [u8; 16])>(), dst in any::<([u8; 16], [u8; 16])>(),
        tc in any::<(u8, u8)>(), hl in any::<(u8, u8)>(), label in any::<(u32, u32)>(), ports in any::<(u16, u16, u16, u16)>()) {
        let ip = ipv6::Repr { src: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], dst: [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], hop_limit: 64, ..Default::default() };
        let exts = [ipv6::ExtRepr::Options { kind: ipv6::ext::DEST_OPTS, next_header: 0, len8: 0 }];
        let f = ipv6_frame(&eth(), &ip, &exts, &l4_kind(kind, &payload)).unwrap();
        let (mut p, k0) = parsed(&f);
        let set = SetField::Ipv6 { src: m(src.0, src.1), dst: m(dst.0, dst.1), tclass: m(tc.0, tc.1), hlimit: m(hl.0, hl.1), label: m(label.0, label.1) };
        prop_assert!(apply_set(&mut p, &set));
        let ports_set = match kind {
            0 => Some(SetField::Tcp { src: m(ports.0, ports.1), dst: m(ports.2, ports.3) }),
            1 => Some(SetField::Udp { src: m(ports.0, ports.1), dst: m(ports.2, ports.3) }),
            3 => Some(SetField::Sctp { src: m(ports.0, ports.1), dst: m(ports.2, ports.3) }),
            _ => None,
        };
        if let Some(s) = ports_set {
            prop_assert!(apply_set(&mut p, &s));
        }
        assert_checksums_ok(&p);
        let k = reparse(&p);
        for i in 0..16 {
            prop_assert_eq!(k.ipv6_src[i], (k0.ipv6_src[i] & !src.1[i]) | (src.0[i] & src.1[i]));
            prop_assert_eq!(k.ipv6_dst[i], (k0.ipv6_dst[i] & !dst.1[i]) | (dst.0[i] & dst.1[i]));
        }
        prop_assert_eq!(k.nw_tos, (k0.nw_tos & !tc.1) | (tc.0 & tc.1));
        prop_assert_eq!(k.nw_ttl, (k0.nw_ttl & !hl.1) | (hl.0 & hl.1));
        prop_assert_eq!(k.ipv6_label, ((k0.ipv6_label & !label.1) | (label.0 & label.1)) & 0xfffff);
        prop_assert_eq!(k.parse_flags, 0);
    }

    #[test]
    fn eth_set_is_masked(src in any::<([u8; 6], [u8; 6])>(), dst in any::<([u8; 6], [u8; 6])>()) {
        let f = ipv4_frame(&eth(), &ipv4::Repr::default(), &L4::Raw(99, &[])).unwrap();
        let (mut p, k0) = parsed(&f);
        let set = SetField::Eth { src: m(src.0, src.1), dst: m(dst.0, dst.1) };
        prop_assert!(apply_set(&mut p, &set));
        let k = reparse(&p);
        for i in 0..6 {
            prop_assert_eq!(k.dl_src[i], (k0.dl_src[i] & !src.1[i]) | (src.0[i] & src.1[i]));
            prop_assert_eq!(k.dl_dst[i], (k0.dl_dst[i] & !dst.1[i]) | (dst.0[i] & dst.1[i]));
        }
    }
}

#[test]
fn sctp_bad_crc_stays_bad() {
    let f = ipv4_frame(
        &eth(),
        &ipv4::Repr::default(),
        &L4::Sctp(
            sctp::Repr {
                src_port: 1,
                dst_port: 2,
                vtag: 3,
            },
            &[1; 20],
        ),
    )
    .unwrap();
    let (mut p, _) = parsed(&f);
    let l4 = p.meta.l4_ofs as usize;
    p.data_mut()[l4 + 8] ^= 0x55;
    assert!(apply_set(
        &mut p,
        &SetField::Sctp {
            src: m(7, 0xffff),
            dst: m(0, 0)
        }
    ));
    let v = sctp::Packet::new_checked(&p.data()[l4..]).unwrap();
    assert_eq!(v.src_port(), 7);
    assert!(!v.verify_checksum());
    p.data_mut()[l4 + 8] ^= 0x55;
    assert!(sctp::Packet::new_checked(&p.data()[l4..])
        .unwrap()
        .verify_checksum());
}

#[test]
fn set_refuses_missing_headers() {
    let f = ipv6_frame(
        &eth(),
        &ipv6::Repr::default(),
        &[],
        &L4::Udp(udp::Repr::default(), b"x"),
    )
    .unwrap();
    let (mut p, _) = parsed(&f);
    let before = p.data().to_vec();
    let any4 = SetField::Ipv4 {
        src: m(1, !0),
        dst: m(0, 0),
        tos: m(0, 0),
        ttl: m(0, 0),
    };
    assert!(!apply_set(&mut p, &any4));
    assert!(!apply_set(
        &mut p,
        &SetField::Tcp {
            src: m(1, !0),
            dst: m(0, 0)
        }
    ));
    assert!(!apply_set(
        &mut p,
        &SetField::Sctp {
            src: m(1, !0),
            dst: m(0, 0)
        }
    ));
    assert_eq!(p.data(), &before[..]);
    // an unparsed buffer has no offsets: nothing but Eth applies
    let mut raw = PacketBuf::from_frame(&f);
    assert_eq!(raw.meta.l3_ofs, OFS_NONE);
    assert!(!apply_set(
        &mut raw,
        &SetField::Udp {
            src: m(1, !0),
            dst: m(0, 0)
        }
    ));
    // a later fragment has no L4 header to rewrite
    let frag = ipv4_frame(
        &eth(),
        &ipv4::Repr {
            frag_offset: 8,
            ..Default::default()
        },
        &L4::Raw(17, &[0; 16]),
    )
    .unwrap();
    let (mut p, _) = parsed(&frag);
    assert!(!apply_set(
        &mut p,
        &SetField::Udp {
            src: m(1, !0),
            dst: m(0, 0)
        }
    ));
    assert!(apply_set(&mut p, &any4));
    assert!(ipv4::Packet::new_checked(&p.data()[14..])
        .unwrap()
        .verify_checksum());
}

#[test]
fn tunnel_set_fills_metadata() {
    let mut p = PacketBuf::from_frame(&[0; 60]);
    let t = TunnelMeta {
        tun_id: 42,
        ipv4_dst: 0x0a000002,
        ..Default::default()
    };
    assert!(apply_set(&mut p, &SetField::Tunnel(t)));
    assert_eq!(*p.meta.tunnel(), t);
}

#[test]
fn push_pop_vlan_round_trip() {
    let f = ipv4_frame(
        &eth(),
        &ipv4::Repr {
            src: 1,
            dst: 2,
            ..Default::default()
        },
        &L4::Udp(
            udp::Repr {
                src_port: 3,
                dst_port: 4,
                payload_len: 0,
            },
            b"abc",
        ),
    )
    .unwrap();
    let (mut p, k0) = parsed(&f);
    assert!(!pop_vlan(&mut p));
    assert!(push_vlan(
        &mut p,
        VlanTag {
            tpid: 0x8100,
            tci: 10
        }
    ));
    assert!(push_vlan(
        &mut p,
        VlanTag {
            tpid: 0x88a8,
            tci: 0x2000 | 20
        }
    ));
    assert_eq!(p.len(), f.len() + 8);
    // offsets follow the push: a rewrite right after needs no re-parse
    assert_eq!(p.meta.l3_ofs, 22);
    assert!(apply_set(
        &mut p,
        &SetField::Udp {
            src: m(99, 0xffff),
            dst: m(0, 0)
        }
    ));
    let k = reparse(&p);
    assert_eq!(
        k.vlans,
        [
            VlanTag {
                tpid: 0x88a8,
                tci: 0x2014
            },
            VlanTag {
                tpid: 0x8100,
                tci: 10
            }
        ]
    );
    assert_eq!((k.dl_type, k.tp_src, k.tp_dst), (0x0800, 99, 4));
    assert_checksums_ok(&p);
    assert!(pop_vlan(&mut p));
    assert!(pop_vlan(&mut p));
    assert!(!pop_vlan(&mut p));
    assert_eq!(p.meta.l3_ofs, 14);
    assert!(apply_set(
        &mut p,
        &SetField::Udp {
            src: m(3, 0xffff),
            dst: m(0, 0)
        }
    ));
    assert_eq!(p.data(), &f[..]);
    assert_eq!(reparse(&p), k0);
    // a frame too short to be Ethernet is refused
    let mut short = PacketBuf::from_frame(&[0; 10]);
    assert!(!push_vlan(
        &mut short,
        VlanTag {
            tpid: 0x8100,
            tci: 1
        }
    ));
}

/// With segments left in a routing header the L4 checksum covers the final destination,
/// so rewriting the IPv6 destination must not touch it; the source still does.
#[test]
fn ipv6_dst_rewrite_respects_routing_header() {
    let exts = [ipv6::ExtRepr::Options {
        kind: ipv6::ext::ROUTING,
        next_header: 0,
        len8: 2,
    }];
    let ip = ipv6::Repr {
        hop_limit: 64,
        ..Default::default()
    };
    let mut f = ipv6_frame(
        &eth(),
        &ip,
        &exts,
        &L4::Udp(
            udp::Repr {
                src_port: 1,
                dst_port: 2,
                payload_len: 0,
            },
            b"x",
        ),
    )
    .unwrap();
    f[14 + 40 + 3] = 1; // segments left
    let (mut p, _) = parsed(&f);
    let c_off = p.meta.l4_ofs as usize + 6;
    let before = p.data()[c_off..c_off + 2].to_vec();
    let set_dst = SetField::Ipv6 {
        src: m([0; 16], [0; 16]),
        dst: m([9; 16], [0xff; 16]),
        tclass: m(0, 0),
        hlimit: m(0, 0),
        label: m(0, 0),
    };
    assert!(apply_set(&mut p, &set_dst));
    assert_eq!(&p.data()[c_off..c_off + 2], &before[..]);
    let set_src = SetField::Ipv6 {
        src: m([9; 16], [0xff; 16]),
        dst: m([0; 16], [0; 16]),
        tclass: m(0, 0),
        hlimit: m(0, 0),
        label: m(0, 0),
    };
    assert!(apply_set(&mut p, &set_src));
    assert_ne!(&p.data()[c_off..c_off + 2], &before[..]);
    // with no segments left the destination is final and the checksum follows it
    f[14 + 40 + 3] = 0;
    let (mut p, _) = parsed(&f);
    assert!(apply_set(&mut p, &set_dst));
    assert_checksums_ok(&p);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Rewrites on garbage, truncated frames and stale offsets never panic.
    #[test]
    fn rewrites_never_panic(b in proptest::collection::vec(any::<u8>(), 0..120), l3 in any::<u16>(), l4 in any::<u16>(), proto in prop_oneof![Just(6u8), Just(17), Just(58), Just(132), any::<u8>()], stale in any::<bool>(), v in any::<u32>()) {
        let mut p = PacketBuf::from_frame(&b);
        let mut k = FlowKey::default();
        flow_extract(&mut p, &mut k);
        if stale {
            p.meta.l3_ofs = l3 % 130;
            p.meta.l4_ofs = l4 % 130;
            p.meta.l4_proto = proto;
        }
        let sets = [
            SetField::Eth { src: m([1; 6], [0xff; 6]), dst: m([2; 6], [0xf0; 6]) },
            SetField::Ipv4 { src: m(v, !0), dst: m(!v, v), tos: m(1, 0xff), ttl: m(2, 0xff) },
            SetField::Ipv6 { src: m([3; 16], [0xff; 16]), dst: m([4; 16], [0xff; 16]), tclass: m(5, 0xff), hlimit: m(6, 0xff), label: m(v, !0) },
            SetField::Tcp { src: m(v as u16, !0), dst: m(7, !0) },
            SetField::Udp { src: m(v as u16, !0), dst: m(8, !0) },
            SetField::Sctp { src: m(v as u16, !0), dst: m(9, !0) },
        ];
        for s in &sets {
            let _ = apply_set(&mut p, s);
        }
        let _ = push_vlan(&mut p, VlanTag { tpid: 0, tci: v as u16 });
        let _ = pop_vlan(&mut p);
        let _ = pop_vlan(&mut p);
        for s in &sets {
            let _ = apply_set(&mut p, s);
        }
        prop_assert!(p.len() + 4 >= b.len());
    }
}
