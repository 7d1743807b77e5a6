//! Robustness: random bytes, and valid frames mutated and cut at random, never make
//! `flow_extract` or any wire view panic.

use rvswitch::packet::parse::flow_extract;
use rvswitch::packet::wire::build::{arp_frame, ipv4_frame, ipv6_frame, L4};
use rvswitch::packet::wire::group_record::GroupRecordRepr;
use rvswitch::packet::wire::ipv6::{ext, ExtRepr};
use rvswitch::packet::wire::{
    arp, ethernet, geneve, gre, icmpv4, icmpv6, igmp, ipv4, ipv6, sctp, tcp, udp, vxlan,
};
use rvswitch::packet::{FlowKey, PacketBuf, VlanTag, OFS_NONE};

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const V6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa];

fn eth() -> ethernet::Repr {
    ethernet::Repr {
        dst: [2, 0, 0, 0, 0, 0x0b],
        src: MAC_A,
        ..Default::default()
    }
}
fn ip4() -> ipv4::Repr {
    ipv4::Repr {
        src: 0x0a00_0001,
        dst: 0x0a00_0002,
        ttl: 64,
        ..Default::default()
    }
}
fn ip6() -> ipv6::Repr {
    ipv6::Repr {
        src: V6_A,
        dst: [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        hop_limit: 1,
        ..Default::default()
    }
}
fn parse(f: &[u8]) -> (FlowKey, PacketBuf) {
    let mut p = PacketBuf::from_frame(f);
    let mut k = FlowKey::default();
    flow_extract(&mut p, &mut k);
    (k, p)
}

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
        )
        .unwrap(),
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
        )
        .unwrap(),
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
        )
        .unwrap(),
        ipv6_frame(
            &eth(),
            &ip6(),
            &[],
            &L4::Icmpv6(icmpv6::Repr::NeighborAdvert {
                flags: 0x60,
                target: V6_A,
                tll: Some(MAC_A),
            }),
        )
        .unwrap(),
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
        )
        .unwrap(),
        arp_frame(
            &eth(),
            &arp::Repr {
                oper: 2,
                ..Default::default()
            },
        )
        .unwrap(),
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
