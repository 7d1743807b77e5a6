//! Parser tests: frames hand-built with the wire `Repr`s, parsed by `flow_extract`, and
//! every `FlowKey` field the conventions in `flow_key.rs` define checked.

use rvswitch::packet::flow_key::{frag, parse_flag};
use rvswitch::packet::parse::{flow_extract, parse_frame};
use rvswitch::packet::wire::build::{arp_frame, ipv4_frame, ipv6_frame, raw_frame, L4};
use rvswitch::packet::wire::group_record::{record_type, GroupRecordRepr};
use rvswitch::packet::wire::ipv6::{ext, ExtRepr};
use rvswitch::packet::wire::{
    arp, ethernet, geneve, gre, icmpv4, icmpv6, igmp, ipv4, ipv6, sctp, tcp, udp, vxlan,
};
use rvswitch::packet::{FlowKey, PacketBuf, PacketMeta, TunnelMeta, VlanTag, OFS_NONE};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const V6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa];
const V6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xb];

fn eth() -> ethernet::Repr {
    ethernet::Repr {
        dst: MAC_B,
        src: MAC_A,
        ..Default::default()
    }
}
fn ip4() -> ipv4::Repr {
    ipv4::Repr {
        src: 0x0a00_0001,
        dst: 0x0a00_0002,
        ttl: 64,
        tos: 0x2e,
        ..Default::default()
    }
}
fn ip6() -> ipv6::Repr {
    ipv6::Repr {
        src: V6_A,
        dst: V6_B,
        hop_limit: 255,
        traffic_class: 0x48,
        flow_label: 0x12345,
        ..Default::default()
    }
}
fn parse(f: &[u8]) -> (FlowKey, PacketBuf) {
    let mut p = PacketBuf::from_frame(f);
    p.meta.in_port = 7;
    let mut k = FlowKey::default();
    flow_extract(&mut p, &mut k);
    (k, p)
}

#[test]
fn udp_over_ipv4() {
    let f = ipv4_frame(
        &eth(),
        &ip4(),
        &L4::Udp(
            udp::Repr {
                src_port: 1234,
                dst_port: 53,
                payload_len: 0,
            },
            b"hello",
        ),
    );
    let (k, p) = parse(&f);
    assert_eq!(k.in_port, 7);
    assert_eq!((k.dl_src, k.dl_dst, k.dl_type), (MAC_A, MAC_B, 0x0800));
    assert_eq!(
        (k.nw_src, k.nw_dst, k.nw_proto, k.nw_ttl, k.nw_tos),
        (0x0a00_0001, 0x0a00_0002, 17, 64, 0x2e)
    );
    assert_eq!((k.tp_src, k.tp_dst), (1234, 53));
    assert_eq!((k.parse_flags, k.nw_frag, k.tcp_flags), (0, 0, 0));
    assert_eq!(
        (p.meta.l3_ofs, p.meta.l4_ofs, p.meta.l4_proto),
        (14, 34, 17)
    );
    assert_eq!(
        parse_frame(
            &f,
            &PacketMeta {
                in_port: 7,
                ..Default::default()
            }
        ),
        k
    );
}

#[test]
fn padded_short_frame_is_not_truncated() {
    // A 42-byte UDP frame padded to the 60-byte Ethernet minimum.
    let mut f = ipv4_frame(
        &eth(),
        &ip4(),
        &L4::Udp(
            udp::Repr {
                src_port: 1,
                dst_port: 2,
                payload_len: 0,
            },
            b"",
        ),
    );
    f.resize(60, 0);
    let (k, _) = parse(&f);
    assert_eq!(k.parse_flags, 0);
    assert_eq!(k.tp_dst, 2);
}

#[test]
fn tcp_flags_and_ports() {
    let t = tcp::Repr {
        src_port: 40000,
        dst_port: 443,
        seq: 1,
        ack: 2,
        flags: tcp::flags::SYN | tcp::flags::ACK | tcp::flags::ECE,
        window: 1024,
    };
    let f = ipv4_frame(&eth(), &ip4(), &L4::Tcp(t, b"data"));
    let (k, _) = parse(&f);
    assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (6, 40000, 443));
    assert_eq!(k.tcp_flags, 0x052);
    let f = ipv6_frame(
        &eth(),
        &ip6(),
        &[],
        &L4::Tcp(
            tcp::Repr {
                flags: tcp::flags::FIN | tcp::flags::NS,
                ..t
            },
            b"",
        ),
    );
    let (k, _) = parse(&f);
    assert_eq!(k.tcp_flags, 0x101);
    assert_eq!(
        (k.ipv6_src, k.ipv6_dst, k.ipv6_label, k.nw_tos, k.nw_ttl),
        (V6_A, V6_B, 0x12345, 0x48, 255)
    );
}

#[test]
fn double_tagged_vlan() {
    let e = ethernet::Repr {
        vlans: [
            VlanTag {
                tpid: 0x88a8,
                tci: 0x2064,
            },
            VlanTag {
                tpid: 0x8100,
                tci: 0xe00a,
            },
        ],
        ..eth()
    };
    let f = ipv4_frame(
        &e,
        &ip4(),
        &L4::Udp(
            udp::Repr {
                src_port: 5,
                dst_port: 6,
                payload_len: 0,
            },
            b"x",
        ),
    );
    let (k, p) = parse(&f);
    assert_eq!(k.vlans, e.vlans);
    assert_eq!(k.vlans[0].vid(), 100);
    assert_eq!(k.vlans[1].pcp(), 7);
    assert_eq!(k.dl_type, 0x0800);
    assert_eq!((k.tp_src, k.tp_dst), (5, 6));
    assert_eq!((p.meta.l3_ofs, p.meta.l4_ofs), (22, 42));
    // a third tag is left in dl_type, as OVS does
    let mut f3 = f[..12].to_vec();
    f3.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    f3.extend_from_slice(&f[12..]);
    let (k, p) = parse(&f3);
    assert_eq!(k.dl_type, 0x8100);
    assert_eq!(p.meta.l3_ofs, OFS_NONE);
}

#[test]
fn llc_snap_and_plain_802_3() {
    let mut f = vec![0u8; 14];
    f[..6].copy_from_slice(&MAC_B);
    f[6..12].copy_from_slice(&MAC_A);
    f[12..14].copy_from_slice(&38u16.to_be_bytes());
    f.extend_from_slice(&[0x42, 0x42, 0x03, 0, 0, 0, 0, 0]); // STP-ish LLC
    f.resize(60, 0);
    assert_eq!(parse(&f).0.dl_type, 0x05ff);
    let ip = ipv4_frame(
        &eth(),
        &ip4(),
        &L4::Udp(
            udp::Repr {
                src_port: 9,
                dst_port: 10,
                payload_len: 0,
            },
            b"",
        ),
    );
    let mut snap = f[..12].to_vec();
    snap.extend_from_slice(&((ip.len() - 14 + 8) as u16).to_be_bytes());
    snap.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
    snap.extend_from_slice(&ip[14..]);
    let (k, _) = parse(&snap);
    assert_eq!((k.dl_type, k.tp_dst, k.parse_flags), (0x0800, 10, 0));
}

#[test]
fn arp_request_and_reply() {
    for (op, tha) in [(arp::op::REQUEST, [0u8; 6]), (arp::op::REPLY, MAC_B)] {
        let a = arp::Repr {
            oper: op,
            sha: MAC_A,
            spa: 0xc0a8_0001,
            tha,
            tpa: 0xc0a8_0002,
        };
        let mut f = arp_frame(
            &ethernet::Repr {
                dst: [0xff; 6],
                ..eth()
            },
            &a,
        );
        f.resize(60, 0);
        let (k, p) = parse(&f);
        assert_eq!(k.dl_type, 0x0806);
        assert_eq!(k.nw_proto as u16, op);
        assert_eq!(
            (k.nw_src, k.nw_dst, k.arp_sha, k.arp_tha),
            (0xc0a8_0001, 0xc0a8_0002, MAC_A, tha)
        );
        assert_eq!((p.meta.l3_ofs, p.meta.l4_ofs), (14, OFS_NONE));
    }
}

#[test]
fn icmpv4_type_code() {
    let f = ipv4_frame(
        &eth(),
        &ip4(),
        &L4::Icmpv4(
            icmpv4::Repr {
                msg_type: 3,
                code: 4,
                rest: 1500,
            },
            &[0x45; 28],
        ),
    );
    let (k, _) = parse(&f);
    assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (1, 3, 4));
}

#[test]
fn sctp_ports() {
    let f = ipv6_frame(
        &eth(),
        &ip6(),
        &[],
        &L4::Sctp(
            sctp::Repr {
                src_port: 2905,
                dst_port: 2906,
                vtag: 1,
            },
            &[0; 16],
        ),
    );
    let (k, _) = parse(&f);
    assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (132, 2905, 2906));
}

#[test]
fn ipv4_fragments() {
    let u = L4::Udp(
        udp::Repr {
            src_port: 1000,
            dst_port: 2000,
            payload_len: 0,
        },
        &[7; 32],
    );
    let first = ipv4_frame(
        &eth(),
        &ipv4::Repr {
            more_frags: true,
            ..ip4()
        },
        &u,
    );
    let (k, p) = parse(&first);
    assert_eq!(k.nw_frag, frag::ANY);
    assert_eq!((k.tp_src, k.tp_dst), (1000, 2000));
    assert_ne!(p.meta.l4_ofs, OFS_NONE);
    let later = ipv4_frame(
        &eth(),
        &ipv4::Repr {
            frag_offset: 1480,
            ..ip4()
        },
        &L4::Raw(17, &[9; 40]),
    );
    let (k, p) = parse(&later);
    assert_eq!(k.nw_frag, frag::ANY | frag::LATER);
    assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (17, 0, 0));
    assert_eq!(p.meta.l4_ofs, OFS_NONE);
}

#[test]
fn ipv6_extension_headers_and_fragments() {
    let exts = [
        ExtRepr::Options {
            kind: ext::HOP_BY_HOP,
            next_header: 0,
            len8: 0,
        },
        ExtRepr::Options {
            kind: ext::ROUTING,
            next_header: 0,
            len8: 2,
        },
        ExtRepr::Options {
            kind: ext::DEST_OPTS,
            next_header: 0,
            len8: 1,
        },
    ];
    let f = ipv6_frame(
        &eth(),
        &ip6(),
        &exts,
        &L4::Udp(
            udp::Repr {
                src_port: 546,
                dst_port: 547,
                payload_len: 0,
            },
            b"dhcp",
        ),
    );
    let (k, p) = parse(&f);
    assert_eq!(
        (k.nw_proto, k.tp_src, k.tp_dst, k.nw_frag, k.parse_flags),
        (17, 546, 547, 0, 0)
    );
    assert_eq!(p.meta.l4_ofs as usize, 14 + 40 + 8 + 24 + 16);

    let first = [
        ExtRepr::Options {
            kind: ext::HOP_BY_HOP,
            next_header: 0,
            len8: 0,
        },
        ExtRepr::Fragment {
            next_header: 0,
            offset: 0,
            more: true,
            ident: 77,
        },
    ];
    let f = ipv6_frame(
        &eth(),
        &ip6(),
        &first,
        &L4::Tcp(
            tcp::Repr {
                src_port: 1,
                dst_port: 2,
                flags: tcp::flags::PSH,
                ..Default::default()
            },
            &[1; 64],
        ),
    );
    let (k, _) = parse(&f);
    assert_eq!(
        (k.nw_proto, k.tp_src, k.tp_dst, k.nw_frag),
        (6, 1, 2, frag::ANY)
    );

    let later = [ExtRepr::Fragment {
        next_header: 0,
        offset: 1232,
        more: false,
        ident: 77,
    }];
    let f = ipv6_frame(&eth(), &ip6(), &later, &L4::Raw(6, &[1; 64]));
    let (k, p) = parse(&f);
    assert_eq!(
        (k.nw_proto, k.tp_src, k.nw_frag),
        (6, 0, frag::ANY | frag::LATER)
    );
    assert_eq!(p.meta.l4_ofs, OFS_NONE);
}

#[test]
fn neighbor_discovery() {
    let ns = icmpv6::Repr::NeighborSolicit {
        target: V6_B,
        sll: Some(MAC_A),
    };
    let (k, _) = parse(&ipv6_frame(&eth(), &ip6(), &[], &L4::Icmpv6(ns.clone())));
    assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (58, 135, 0));
    assert_eq!((k.nd_target, k.arp_sha, k.arp_tha), (V6_B, MAC_A, [0; 6]));

    let na = icmpv6::Repr::NeighborAdvert {
        flags: icmpv6::na_flag::SOLICITED | icmpv6::na_flag::OVERRIDE,
        target: V6_B,
        tll: Some(MAC_B),
    };
    let (k, _) = parse(&ipv6_frame(&eth(), &ip6(), &[], &L4::Icmpv6(na)));
    assert_eq!(
        (k.tp_src, k.nd_target, k.arp_sha, k.arp_tha, k.parse_flags),
        (136, V6_B, [0; 6], MAC_B, 0)
    );

    let bare = icmpv6::Repr::NeighborSolicit {
        target: V6_A,
        sll: None,
    };
    let (k, _) = parse(&ipv6_frame(&eth(), &ip6(), &[], &L4::Icmpv6(bare)));
    assert_eq!((k.nd_target, k.arp_sha), (V6_A, [0; 6]));

    // zero-length option: malformed, no ND fields
    let mut f = ipv6_frame(&eth(), &ip6(), &[], &L4::Icmpv6(ns));
    let opt_len = f.len() - 8 + 1;
    f[opt_len] = 0;
    let (k, _) = parse(&f);
    assert_eq!(k.parse_flags, parse_flag::MALFORMED);
    assert_eq!((k.nd_target, k.arp_sha), ([0; 16], [0; 6]));
}

#[test]
fn mld_v1_and_v2() {
    let grp = [0xff, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34];
    let hbh = [ExtRepr::Options {
        kind: ext::HOP_BY_HOP,
        next_header: 0,
        len8: 0,
    }];
    for (r, t, target) in [
        (icmpv6::Repr::MldReport { addr: grp }, 131, grp),
        (icmpv6::Repr::MldDone { addr: grp }, 132, grp),
        (
            icmpv6::Repr::MldQuery {
                max_resp: 10000,
                addr: [0; 16],
                v2: None,
            },
            130,
            [0; 16],
        ),
        (
            icmpv6::Repr::MldQuery {
                max_resp: 10000,
                addr: grp,
                v2: Some(icmpv6::Mld2Query {
                    s_flag: false,
                    qrv: 2,
                    qqic: 125,
                    sources: vec![V6_A, V6_B],
                }),
            },
            130,
            grp,
        ),
        (
            icmpv6::Repr::Mld2Report {
                records: vec![GroupRecordRepr {
                    record_type: record_type::CHANGE_TO_EXCLUDE,
                    group: grp,
                    sources: vec![],
                }],
            },
            143,
            [0; 16],
        ),
    ] {
        let f = ipv6_frame(&eth(), &ip6(), &hbh, &L4::Icmpv6(r));
        let (k, p) = parse(&f);
        assert_eq!(
            (k.nw_proto, k.tp_src, k.nd_target, k.parse_flags),
            (58, t, target, 0),
            "type {t}"
        );
        // the report's records are readable from the frame at the recorded L4 offset
        if t == 143 {
            let v = icmpv6::Packet::new_checked(&f[p.meta.l4_ofs as usize..]).unwrap();
            let recs: Vec<_> = v.mld2_records().map(|r| r.unwrap()).collect();
            assert_eq!(recs.len(), 1);
            assert_eq!(recs[0].group, grp);
        }
    }
}

#[test]
fn igmp_all_versions() {
    let ra = ipv4::Repr {
        ttl: 1,
        dst: 0xe000_0001,
        ..ip4()
    };
    let g = 0xef01_0203;
    for (r, t, code, group) in [
        (
            igmp::Repr::Query {
                max_resp: 0,
                group: 0,
                v3: None,
            },
            0x11,
            0,
            0,
        ),
        (
            igmp::Repr::Query {
                max_resp: 100,
                group: g,
                v3: None,
            },
            0x11,
            100,
            g,
        ),
        (
            igmp::Repr::Query {
                max_resp: 100,
                group: g,
                v3: Some(igmp::V3Query {
                    s_flag: true,
                    qrv: 2,
                    qqic: 60,
                    sources: vec![1, 2],
                }),
            },
            0x11,
            100,
            g,
        ),
        (igmp::Repr::V1Report { group: g }, 0x12, 0, g),
        (igmp::Repr::V2Report { group: g }, 0x16, 0, g),
        (igmp::Repr::Leave { group: g }, 0x17, 0, g),
        (
            igmp::Repr::V3Report {
                records: vec![
                    GroupRecordRepr {
                        record_type: record_type::MODE_IS_EXCLUDE,
                        group: g.to_be_bytes(),
                        sources: vec![],
                    },
                    GroupRecordRepr {
                        record_type: record_type::CHANGE_TO_INCLUDE,
                        group: [239, 9, 9, 9],
                        sources: vec![[10, 0, 0, 9]],
                    },
                ],
            },
            0x22,
            0,
            0,
        ),
    ] {
        let f = ipv4_frame(&eth(), &ra, &L4::Igmp(r.clone()));
        let (k, p) = parse(&f);
        assert_eq!(
            (k.nw_proto, k.tp_src, k.tp_dst, k.igmp_group, k.parse_flags),
            (2, t, code, group, 0),
            "{r:?}"
        );
        let v = igmp::Packet::new_checked(&f[p.meta.l4_ofs as usize..]).unwrap();
        assert!(v.verify_checksum());
        assert_eq!(igmp::Repr::parse(&v).unwrap(), r);
    }
}

#[test]
fn tunnel_metadata_is_copied() {
    let f = ipv4_frame(
        &eth(),
        &ip4(),
        &L4::Udp(
            udp::Repr {
                src_port: 1,
                dst_port: 2,
                payload_len: 0,
            },
            b"",
        ),
    );
    let mut p = PacketBuf::from_frame(&f);
    p.meta.recirc_id = 3;
    p.meta.tunnel = TunnelMeta {
        tun_id: 5000,
        ipv4_src: 1,
        ipv4_dst: 2,
        flags: 4,
        tos: 3,
        ttl: 64,
        tp_src: 49152,
        tp_dst: 4789,
        gnv_opt_hdr: 0x0102_0301,
        gnv_opt_data: 9,
        ..Default::default()
    };
    let mut k = FlowKey::default();
    flow_extract(&mut p, &mut k);
    assert_eq!(
        (
            k.recirc_id,
            k.tun_id,
            k.tun_ipv4_src,
            k.tun_ipv4_dst,
            k.tun_flags
        ),
        (3, 5000, 1, 2, 4)
    );
    assert_eq!(
        (
            k.tun_tos,
            k.tun_ttl,
            k.tun_tp_src,
            k.tun_tp_dst,
            k.tun_gnv_opt_hdr,
            k.tun_gnv_opt_data
        ),
        (3, 64, 49152, 4789, 0x0102_0301, 9)
    );
}

#[test]
fn unknown_ethertype_and_ip_protocol() {
    let f = raw_frame(&eth(), 0x88cc, &[0; 46]);
    let (k, p) = parse(&f);
    assert_eq!(
        (k.dl_type, k.parse_flags, p.meta.l3_ofs),
        (0x88cc, 0, OFS_NONE)
    );
    let f = ipv4_frame(&eth(), &ip4(), &L4::Raw(47, &[0; 8]));
    let (k, p) = parse(&f);
    assert_eq!(
        (k.nw_proto, k.tp_src, k.parse_flags, p.meta.l4_ofs),
        (47, 0, 0, 34)
    );
}

#[test]
fn malformed_ip_headers() {
    let mut f = ipv4_frame(
        &eth(),
        &ip4(),
        &L4::Udp(
            udp::Repr {
                src_port: 1,
                dst_port: 2,
                payload_len: 0,
            },
            b"",
        ),
    );
    f[14] = 0x44; // IHL 4
    let (k, p) = parse(&f);
    assert_eq!(k.parse_flags, parse_flag::MALFORMED);
    assert_eq!((k.nw_src, p.meta.l3_ofs), (0, OFS_NONE));
    f[14] = 0x45;
    f[16..18].copy_from_slice(&10u16.to_be_bytes()); // total length < IHL
    assert_eq!(parse(&f).0.parse_flags, parse_flag::MALFORMED);
    let mut f = ipv6_frame(&eth(), &ip6(), &[], &L4::Udp(udp::Repr::default(), b""));
    f[14] = 0x40;
    assert_eq!(parse(&f).0.parse_flags, parse_flag::MALFORMED);
    let mut f = ipv4_frame(&eth(), &ip4(), &L4::Tcp(tcp::Repr::default(), b""));
    f[34 + 12] = 0x40; // data offset 4
    assert_eq!(parse(&f).0.parse_flags, parse_flag::MALFORMED);
}

/// Every frame cut at every length: no panic, and a cut at or inside any header sets
/// TRUNCATED (a cut exactly after the announced IP length is whole).
#[test]
fn truncated_at_every_boundary() {
    let frames: Vec<Vec<u8>> = vec![
        ipv4_frame(
            &eth(),
            &ip4(),
            &L4::Udp(
                udp::Repr {
                    src_port: 1,
                    dst_port: 2,
                    payload_len: 0,
                },
                b"",
            ),
        ),
        ipv4_frame(
            &ethernet::Repr {
                vlans: [
                    VlanTag {
                        tpid: 0x88a8,
                        tci: 1,
                    },
                    VlanTag {
                        tpid: 0x8100,
                        tci: 2,
                    },
                ],
                ..eth()
            },
            &ip4(),
            &L4::Tcp(tcp::Repr::default(), b""),
        ),
        ipv6_frame(
            &eth(),
            &ip6(),
            &[
                ExtRepr::Options {
                    kind: ext::HOP_BY_HOP,
                    next_header: 0,
                    len8: 0,
                },
                ExtRepr::Fragment {
                    next_header: 0,
                    offset: 0,
                    more: true,
                    ident: 1,
                },
            ],
            &L4::Icmpv6(icmpv6::Repr::NeighborSolicit {
                target: V6_A,
                sll: Some(MAC_A),
            }),
        ),
        ipv4_frame(
            &eth(),
            &ip4(),
            &L4::Igmp(igmp::Repr::V2Report { group: 0xe000_00fb }),
        ),
        ipv4_frame(
            &eth(),
            &ip4(),
            &L4::Icmpv4(
                icmpv4::Repr {
                    msg_type: 8,
                    code: 0,
                    rest: 1,
                },
                b"",
            ),
        ),
        ipv6_frame(&eth(), &ip6(), &[], &L4::Sctp(sctp::Repr::default(), b"")),
        arp_frame(
            &eth(),
            &arp::Repr {
                oper: 1,
                ..Default::default()
            },
        ),
    ];
    for f in &frames {
        let (whole, _) = parse(f);
        assert_eq!(whole.parse_flags, 0);
        for n in 0..f.len() {
            let (k, _) = parse(&f[..n]);
            assert_ne!(
                k.parse_flags & parse_flag::TRUNCATED,
                0,
                "cut at {n} of {}",
                f.len()
            );
        }
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Runs every view and `Repr::parse` over `b`; only `Ok`/`Err`, never a panic.
    fn views(b: &[u8]) {
        if let Ok(p) = ethernet::Packet::new_checked(b) {
            let _ = ethernet::Repr::parse(&p);
        }
        if let Ok(p) = ipv4::Packet::new_checked(b) {
            let _ = (
                ipv4::Repr::parse(&p),
                p.payload().len(),
                p.verify_checksum(),
            );
        }
        if let Ok(p) = ipv6::Packet::new_checked(b) {
            let _ = (ipv6::Repr::parse(&p), p.payload().len());
            let _ = ipv6::walk_ext_headers(p.next_header(), p.payload());
        }
        for n in [0u8, 43, 44, 51, 60] {
            let _ = ipv6::walk_ext_headers(n, b);
        }
        if let Ok(p) = tcp::Packet::new_checked(b) {
            let _ = (
                tcp::Repr::parse(&p),
                p.payload().len(),
                p.verify_checksum(0),
            );
        }
        if let Ok(p) = udp::Packet::new_checked(b) {
            let _ = (
                udp::Repr::parse(&p),
                p.payload().len(),
                p.verify_checksum(0),
            );
        }
        if let Ok(p) = sctp::Packet::new_checked(b) {
            let _ = (sctp::Repr::parse(&p), p.verify_checksum());
        }
        if let Ok(p) = arp::Packet::new_checked(b) {
            let _ = arp::Repr::parse(&p);
        }
        if let Ok(p) = icmpv4::Packet::new_checked(b) {
            let _ = (icmpv4::Repr::parse(&p), p.payload().len());
        }
        if let Ok(p) = icmpv6::Packet::new_checked(b) {
            let _ = (
                icmpv6::Repr::parse(&p),
                p.nd_options().ok(),
                p.mld2_records().count(),
            );
        }
        if let Ok(p) = igmp::Packet::new_checked(b) {
            let _ = (igmp::Repr::parse(&p), p.v3_records().count());
        }
        if let Ok(p) = vxlan::Packet::new_checked(b) {
            let _ = (vxlan::Repr::parse(&p), p.payload().len());
        }
        if let Ok(p) = geneve::Packet::new_checked(b) {
            let _ = (
                geneve::Repr::parse(&p),
                p.options().count(),
                p.payload().len(),
            );
        }
        if let Ok(p) = gre::Packet::new_checked(b) {
            let _ = (gre::Repr::parse(&p), p.verify_checksum(), p.payload().len());
        }
    }

    fn valid_frames() -> Vec<Vec<u8>> {
        let grp = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16];
        vec![
            ipv4_frame(
                &eth(),
                &ip4(),
                &L4::Udp(
                    udp::Repr {
                        src_port: 1,
                        dst_port: 2,
                        payload_len: 0,
                    },
                    b"abc",
                ),
            ),
            ipv4_frame(
                &ethernet::Repr {
                    vlans: [
                        VlanTag {
                            tpid: 0x8100,
                            tci: 3,
                        },
                        VlanTag::default(),
                    ],
                    ..eth()
                },
                &ip4(),
                &L4::Tcp(tcp::Repr::default(), b"x"),
            ),
            ipv6_frame(
                &eth(),
                &ip6(),
                &[ExtRepr::Options {
                    kind: ext::HOP_BY_HOP,
                    next_header: 0,
                    len8: 0,
                }],
                &L4::Icmpv6(icmpv6::Repr::Mld2Report {
                    records: vec![GroupRecordRepr {
                        record_type: 4,
                        group: grp,
                        sources: vec![V6_A],
                    }],
                }),
            ),
            ipv6_frame(
                &eth(),
                &ip6(),
                &[],
                &L4::Icmpv6(icmpv6::Repr::NeighborAdvert {
                    flags: 0x60,
                    target: V6_A,
                    tll: Some(MAC_A),
                }),
            ),
            ipv4_frame(
                &eth(),
                &ip4(),
                &L4::Igmp(igmp::Repr::V3Report {
                    records: vec![GroupRecordRepr {
                        record_type: 2,
                        group: [239, 0, 0, 1],
                        sources: vec![[1, 2, 3, 4]],
                    }],
                }),
            ),
            arp_frame(
                &eth(),
                &arp::Repr {
                    oper: 2,
                    ..Default::default()
                },
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200), et in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x0806), Just(0x8100), Just(0x88a8), any::<u16>()]) {
            // random bytes, and random bytes behind a plausible ethertype
            let (k, p) = parse(&b);
            prop_assert!(p.meta.l3_ofs == OFS_NONE || (p.meta.l3_ofs as usize) < b.len());
            let _ = k;
            let mut f = vec![0u8; 12];
            f.extend_from_slice(&et.to_be_bytes());
            f.extend_from_slice(&b);
            let (_, p) = parse(&f);
            prop_assert!(p.meta.l4_ofs == OFS_NONE || (p.meta.l4_ofs as usize) <= f.len());
            views(&b);
        }

        #[test]
        fn mutated_and_cut_valid_frames_never_panic(which in 0usize..6, cut in any::<prop::sample::Index>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)) {
            let mut f = valid_frames().swap_remove(which);
            for (i, v) in flips {
                let i = i.index(f.len());
                f[i] ^= v;
            }
            let n = cut.index(f.len() + 1);
            let _ = parse(&f[..n]);
            for off in [0usize, 14, 18, 34, 38, 54, 62] {
                if off <= n {
                    views(&f[off..n]);
                }
            }
        }
    }
}
