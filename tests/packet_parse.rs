//! Parser tests: frames hand-built with the wire `Repr`s, parsed by `flow_extract`, and
//! every `FlowKey` field the conventions in `flow_key.rs` define checked (L2, ARP, IPv4,
//! IPv6 with extension headers, fragments, TCP/UDP/SCTP/ICMP, truncation, malformation).

mod packet_support;

use packet_support::*;
use rvswitch::packet::flow_key::{frag, parse_flag};
use rvswitch::packet::parse::{flow_extract, parse_frame};
use rvswitch::packet::wire::build::{arp_frame, ipv4_frame, ipv6_frame, raw_frame, L4};
use rvswitch::packet::wire::ipv6::{ext, ExtRepr};
use rvswitch::packet::wire::{arp, ethernet, icmpv4, icmpv6, igmp, ipv4, sctp, tcp, udp};
use rvswitch::packet::{FlowKey, PacketBuf, PacketMeta, PacketPool, TunnelMeta, VlanTag, OFS_NONE};

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
    )
    .unwrap();
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
    assert_eq!(parse_frame(&f, &PacketMeta::for_port(7)), k);
}

#[test]
fn padded_short_frame_is_not_truncated() {
    // A 42-byte UDP frame padded to the 60-byte Ethernet minimum.
    let mut f = udp4_frame();
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
    let f = ipv4_frame(&eth(), &ip4(), &L4::Tcp(t, b"data")).unwrap();
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
    )
    .unwrap();
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
    )
    .unwrap();
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
    )
    .unwrap();
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
        )
        .unwrap();
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
    )
    .unwrap();
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
    )
    .unwrap();
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
    )
    .unwrap();
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
    )
    .unwrap();
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
    )
    .unwrap();
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
    )
    .unwrap();
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
    let f = ipv6_frame(&eth(), &ip6(), &later, &L4::Raw(6, &[1; 64])).unwrap();
    let (k, p) = parse(&f);
    assert_eq!(
        (k.nw_proto, k.tp_src, k.nw_frag),
        (6, 0, frag::ANY | frag::LATER)
    );
    assert_eq!(p.meta.l4_ofs, OFS_NONE);
}

#[test]
fn a_recycled_buffer_parses_without_its_last_packets_tunnel_metadata() {
    // `PacketPool::put` resets only the metadata's first line; the tunnel bytes stay
    // behind and must not reach the next packet's key.
    let f = udp4_frame();
    let mut pool = PacketPool::new(1);
    let mut p = pool.get();
    p.set_data(&f);
    p.meta.set_tunnel(TunnelMeta {
        tun_id: 77,
        ipv4_dst: 5,
        ipv6_src: [9; 16],
        ..Default::default()
    });
    let mut k = FlowKey::default();
    flow_extract(&mut p, &mut k);
    assert_eq!((k.tun_id, k.tun_ipv4_dst, k.tun_ipv6_src), (77, 5, [9; 16]));
    pool.put(p);
    // Written as a receive path does (`set_data` would reset the metadata itself).
    let mut p = pool.get();
    p.set_len(f.len());
    p.data_mut().copy_from_slice(&f);
    flow_extract(&mut p, &mut k);
    assert_eq!(k, parse_frame(&f, &PacketMeta::default()));
    assert_eq!((k.tun_id, k.tun_ipv4_dst, k.tun_ipv6_src), (0, 0, [0; 16]));
    assert_eq!(p.meta.tunnel(), &TunnelMeta::default());
}

#[test]
fn tunnel_metadata_is_copied() {
    let f = udp4_frame();
    let mut p = PacketBuf::from_frame(&f);
    p.meta.recirc_id = 3;
    p.meta.set_tunnel(TunnelMeta {
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
    });
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
    // The key's tunnel fields read back as the same metadata (the kernel back end's
    // upcalls rebuild packet metadata this way).
    assert_eq!(k.tunnel(), *p.meta.tunnel());
}

#[test]
fn unknown_ethertype_and_ip_protocol() {
    let f = raw_frame(&eth(), 0x88cc, &[0; 46]).unwrap();
    let (k, p) = parse(&f);
    assert_eq!(
        (k.dl_type, k.parse_flags, p.meta.l3_ofs),
        (0x88cc, 0, OFS_NONE)
    );
    let f = ipv4_frame(&eth(), &ip4(), &L4::Raw(47, &[0; 8])).unwrap();
    let (k, p) = parse(&f);
    assert_eq!(
        (k.nw_proto, k.tp_src, k.parse_flags, p.meta.l4_ofs),
        (47, 0, 0, 34)
    );
}

#[test]
fn malformed_ip_headers() {
    let mut f = udp4_frame();
    f[14] = 0x44; // IHL 4
    let (k, p) = parse(&f);
    assert_eq!(k.parse_flags, parse_flag::MALFORMED);
    assert_eq!((k.nw_src, p.meta.l3_ofs), (0, OFS_NONE));
    f[14] = 0x45;
    f[16..18].copy_from_slice(&10u16.to_be_bytes()); // total length < IHL
    assert_eq!(parse(&f).0.parse_flags, parse_flag::MALFORMED);
    let mut f = ipv6_frame(&eth(), &ip6(), &[], &L4::Udp(udp::Repr::default(), b"")).unwrap();
    f[14] = 0x40;
    assert_eq!(parse(&f).0.parse_flags, parse_flag::MALFORMED);
    let mut f = ipv4_frame(&eth(), &ip4(), &L4::Tcp(tcp::Repr::default(), b"")).unwrap();
    f[34 + 12] = 0x40; // data offset 4
    assert_eq!(parse(&f).0.parse_flags, parse_flag::MALFORMED);
}

/// Every frame cut at every length: no panic, and a cut at or inside any header sets
/// TRUNCATED (a cut exactly after the announced IP length is whole).
#[test]
fn truncated_at_every_boundary() {
    let frames: Vec<Vec<u8>> = vec![
        udp4_frame(),
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
        )
        .unwrap(),
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
        )
        .unwrap(),
        ipv4_frame(
            &eth(),
            &ip4(),
            &L4::Igmp(igmp::Repr::V2Report { group: 0xe000_00fb }),
        )
        .unwrap(),
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
        )
        .unwrap(),
        ipv6_frame(&eth(), &ip6(), &[], &L4::Sctp(sctp::Repr::default(), b"")).unwrap(),
        arp_frame(
            &eth(),
            &arp::Repr {
                oper: 1,
                ..Default::default()
            },
        )
        .unwrap(),
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

#[test]
fn ipv4_options_are_skipped() {
    let f = ipv4_frame(
        &eth(),
        &ip4(),
        &L4::Udp(
            udp::Repr {
                src_port: 67,
                dst_port: 68,
                payload_len: 0,
            },
            b"opt",
        ),
    )
    .unwrap();
    // insert a 4-byte router-alert option and fix IHL, total length and checksum
    let mut g = f[..34].to_vec();
    g.extend_from_slice(&[0x94, 0x04, 0, 0]);
    g.extend_from_slice(&f[34..]);
    g[14] = 0x46;
    let tot = u16::from_be_bytes([g[16], g[17]]) + 4;
    g[16..18].copy_from_slice(&tot.to_be_bytes());
    ipv4::Packet::new_unchecked(&mut g[14..]).fill_checksum();
    assert!(ipv4::Packet::new_checked(&g[14..])
        .unwrap()
        .verify_checksum());
    let (k, p) = parse(&g);
    assert_eq!((k.tp_src, k.tp_dst, k.parse_flags), (67, 68, 0));
    assert_eq!(p.meta.l4_ofs, 38);
}

#[test]
fn parse_frame_meta_matches_flow_extract() {
    let f = ipv6_frame(
        &eth(),
        &ip6(),
        &[ExtRepr::Options {
            kind: ext::DEST_OPTS,
            next_header: 0,
            len8: 0,
        }],
        &L4::Udp(
            udp::Repr {
                src_port: 1,
                dst_port: 2,
                payload_len: 0,
            },
            b"m",
        ),
    )
    .unwrap();
    let (k, p) = parse(&f);
    let mut meta = PacketMeta::for_port(7);
    let k2 = rvswitch::packet::parse::parse_frame_meta(&f, &mut meta);
    assert_eq!(k2, k);
    assert_eq!(
        (meta.l3_ofs, meta.l4_ofs, meta.l4_proto),
        (p.meta.l3_ofs, p.meta.l4_ofs, p.meta.l4_proto)
    );
    assert_eq!((meta.l3_ofs, meta.l4_ofs, meta.l4_proto), (14, 62, 17));
}
