//! Parser tests for the messages NORMAL's snooping and ND handling key on: IPv6 ND
//! NS/NA with link-layer options, MLDv1/v2, IGMPv1/v2/v3.

mod packet_support;

use packet_support::*;
use rvswitch::packet::flow_key::parse_flag;
use rvswitch::packet::wire::build::{ipv4_frame, ipv6_frame, L4};
use rvswitch::packet::wire::group_record::{record_type, GroupRecordRepr};
use rvswitch::packet::wire::ipv6::{ext, ExtRepr};
use rvswitch::packet::wire::{icmpv6, igmp, ipv4};

#[test]
fn neighbor_discovery() {
    let ns = icmpv6::Repr::NeighborSolicit {
        target: V6_B,
        sll: Some(MAC_A),
    };
    let (k, _) = parse(&ipv6_frame(&eth(), &ip6(), &[], &L4::Icmpv6(ns.clone())).unwrap());
    assert_eq!((k.nw_proto, k.tp_src, k.tp_dst), (58, 135, 0));
    assert_eq!((k.nd_target, k.arp_sha, k.arp_tha), (V6_B, MAC_A, [0; 6]));

    let na = icmpv6::Repr::NeighborAdvert {
        flags: icmpv6::na_flag::SOLICITED | icmpv6::na_flag::OVERRIDE,
        target: V6_B,
        tll: Some(MAC_B),
    };
    let (k, _) = parse(&ipv6_frame(&eth(), &ip6(), &[], &L4::Icmpv6(na)).unwrap());
    assert_eq!(
        (k.tp_src, k.nd_target, k.arp_sha, k.arp_tha, k.parse_flags),
        (136, V6_B, [0; 6], MAC_B, 0)
    );

    let bare = icmpv6::Repr::NeighborSolicit {
        target: V6_A,
        sll: None,
    };
    let (k, _) = parse(&ipv6_frame(&eth(), &ip6(), &[], &L4::Icmpv6(bare)).unwrap());
    assert_eq!((k.nd_target, k.arp_sha), (V6_A, [0; 6]));

    // zero-length option: malformed, no ND fields
    let mut f = ipv6_frame(&eth(), &ip6(), &[], &L4::Icmpv6(ns)).unwrap();
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
        let f = ipv6_frame(&eth(), &ip6(), &hbh, &L4::Icmpv6(r)).unwrap();
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
        let f = ipv4_frame(&eth(), &ra, &L4::Igmp(r.clone())).unwrap();
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
fn nd_unknown_and_duplicate_options() {
    let ns = icmpv6::Repr::NeighborSolicit {
        target: V6_B,
        sll: Some(MAC_A),
    };
    let f = ipv6_frame(&eth(), &ip6(), &[], &L4::Icmpv6(ns)).unwrap();
    // append a nonce option (type 14, 8 bytes): skipped
    let with_opt = |opt: &[u8]| {
        let mut g = f.clone();
        g.extend_from_slice(opt);
        let plen = u16::from_be_bytes([g[18], g[19]]) + opt.len() as u16;
        g[18..20].copy_from_slice(&plen.to_be_bytes());
        g
    };
    let (k, _) = parse(&with_opt(&[14, 1, 1, 2, 3, 4, 5, 6]));
    assert_eq!((k.arp_sha, k.nd_target, k.parse_flags), (MAC_A, V6_B, 0));
    // a second SLL option is malformed
    let (k, _) = parse(&with_opt(&[1, 1, 9, 9, 9, 9, 9, 9]));
    assert_eq!(k.parse_flags, parse_flag::MALFORMED);
    // an option running past the payload is malformed too
    let (k, _) = parse(&with_opt(&[14, 2, 0, 0, 0, 0, 0, 0]));
    assert_eq!(k.parse_flags, parse_flag::MALFORMED);
    // ND with a non-zero code is not ND: no target
    let mut g = f.clone();
    g[54 + 1] = 1;
    let (k, _) = parse(&g);
    assert_eq!((k.tp_src, k.tp_dst, k.nd_target), (135, 1, [0; 16]));
}
