//! Unit tests of `key_codec` (no kernel needed).

use super::super::attr::emit_all;
use super::super::key_attr::{kind, parse_key_attrs};
use super::*;
use netlink_packet_core::Nla;

/// Through the wire: typed attrs -> bytes -> typed attrs -> FlowKey.
fn wire(attrs: &[KeyAttr], is_mask: bool) -> FlowKey {
    let parsed = parse_key_attrs(&emit_all(attrs)).unwrap();
    assert_eq!(
        parsed, attrs,
        "attribute bytes must parse back to the same attributes"
    );
    decode_attrs(&parsed, is_mask).unwrap()
}

fn udp_key() -> FlowKey {
    FlowKey {
        in_port: 3,
        dl_src: [2, 0, 0, 0, 0, 1],
        dl_dst: [2, 0, 0, 0, 0, 2],
        dl_type: ethertype::IPV4,
        nw_src: 0x0a00_0001,
        nw_dst: 0x0a00_0002,
        nw_proto: ipproto::UDP,
        nw_tos: 0x10,
        nw_ttl: 64,
        tp_src: 5000,
        tp_dst: 53,
        ..Default::default()
    }
}

/// The mask the kernel reports for an exact match: both TCIs always matched.
fn exact_norm() -> FlowMask {
    let mut m = FlowMask::exact();
    m.0.vlans = [VlanTag {
        tpid: 0xffff,
        tci: 0xffff,
    }; 2];
    m
}

fn kinds(attrs: &[KeyAttr]) -> Vec<u16> {
    attrs
        .iter()
        .map(|a| a.kind() & !netlink_packet_core::NLA_F_NESTED)
        .collect()
}

#[test]
fn exact_udp_key_round_trips() {
    let k = udp_key();
    let (ka, ma) = encode_match(&k, &FlowMask::exact());
    assert_eq!(
        kinds(&ka),
        [
            kind::RECIRC_ID,
            kind::IN_PORT,
            kind::ETHERNET,
            kind::ETHERTYPE,
            kind::IPV4,
            kind::UDP
        ]
    );
    assert_eq!(wire(&ka, false), k);
    let m = wire(&ma, true);
    // fields the kernel has no place for come back as zero in the mask
    let mut expect = exact_norm();
    expect.0.nw_frag = frag::ANY | frag::LATER;
    expect.0.igmp_group = 0;
    expect.0.tcp_flags = 0;
    expect.0.ipv6_src = [0; 16];
    expect.0.ipv6_dst = [0; 16];
    expect.0.ipv6_label = 0;
    expect.0.arp_sha = [0; 6];
    expect.0.arp_tha = [0; 6];
    expect.0.nd_target = [0; 16];
    // "not tunnelled" is exact: every tunnel field is matched (the kernel reports the
    // four flags it has; the others are vacuous and reported exact)
    assert_eq!(m, expect.0);
}

#[test]
fn megaflow_mask_selects_layers() {
    let k = udp_key();
    let mut mask = FlowMask::default();
    mask.0.in_port = u32::MAX;
    mask.0.dl_type = u16::MAX;
    mask.0.nw_dst = u32::MAX;
    // nw_proto not consulted: no L4 attribute in the key, no L4 mask
    let (ka, ma) = encode_match(&k, &mask);
    assert_eq!(
        kinds(&ka),
        [
            kind::RECIRC_ID,
            kind::IN_PORT,
            kind::ETHERNET,
            kind::ETHERTYPE,
            kind::IPV4
        ]
    );
    assert_eq!(kinds(&ma), kinds(&ka));
    let dk = wire(&ka, false);
    let dm = wire(&ma, true);
    assert_eq!(dk.masked(&FlowMask(dm)), k.masked(&mask));
    assert_eq!(dm.nw_dst, u32::MAX);
    assert_eq!(dm.nw_src, 0);
    assert_eq!(dm.recirc_id, u32::MAX, "recirc_id is always exact");

    // dl_type wildcarded: no ETHERTYPE at all (the kernel forces it exact when present)
    let mut l2 = FlowMask::default();
    l2.0.dl_dst = [0xff; 6];
    let (ka, ma) = encode_match(&k, &l2);
    assert_eq!(kinds(&ka), [kind::RECIRC_ID, kind::ETHERNET]);
    assert_eq!(kinds(&ma), [kind::RECIRC_ID, kind::ETHERNET]);
    assert_eq!(
        ka[1],
        KeyAttr::Ethernet {
            src: [0; 6],
            dst: k.dl_dst
        },
        "the key is sent masked"
    );
}

#[test]
fn l4_mask_needs_exact_protocol() {
    let k = udp_key();
    let mut mask = FlowMask::default();
    mask.0.dl_type = u16::MAX;
    mask.0.nw_proto = 0x0f; // partial: kernel would refuse an L4 mask
    mask.0.tp_dst = u16::MAX;
    let k2 = FlowKey {
        nw_proto: ipproto::UDP & 0x0f,
        ..k
    };
    let (ka, ma) = encode_match(&k2, &mask);
    assert!(kinds(&ka).contains(&kind::IPV4));
    assert!(!kinds(&ma).contains(&kind::UDP));
}

#[test]
fn vlan_tags_nest_in_encap() {
    let mut k = udp_key();
    k.vlans[0] = VlanTag {
        tpid: ethertype::QINQ,
        tci: 0x2064,
    };
    k.vlans[1] = VlanTag {
        tpid: ethertype::VLAN,
        tci: 0x000a,
    };
    let (ka, ma) = encode_match(&k, &FlowMask::exact());
    assert_eq!(ka[3], KeyAttr::Ethertype(ethertype::QINQ));
    assert_eq!(ka[4], KeyAttr::Vlan(0x2064 | VLAN_CFI));
    let KeyAttr::Encap(inner) = &ka[5] else {
        panic!("no encap: {ka:?}")
    };
    assert_eq!(inner[0], KeyAttr::Ethertype(ethertype::VLAN));
    assert_eq!(inner[1], KeyAttr::Vlan(0x000a | VLAN_CFI));
    let KeyAttr::Encap(inner2) = &inner[2] else {
        panic!("no inner encap")
    };
    assert_eq!(inner2[0], KeyAttr::Ethertype(ethertype::IPV4));
    assert_eq!(wire(&ka, false), k);
    let m = wire(&ma, true);
    assert_eq!(
        m.vlans[0],
        VlanTag {
            tpid: 0xffff,
            tci: 0xffff
        }
    );
    assert_eq!(m.dl_type, 0xffff);
}

#[test]
fn tagged_key_keeps_its_tag_when_vlan_is_wildcarded() {
    let mut k = udp_key();
    k.vlans[0] = VlanTag {
        tpid: ethertype::VLAN,
        tci: 7,
    };
    let mut mask = FlowMask::default();
    mask.0.dl_dst = [0xff; 6];
    let (ka, ma) = encode_match(&k, &mask);
    // the tag is present with a wildcarded TCI, else the flow would only match untagged frames
    assert_eq!(ka[2], KeyAttr::Ethertype(ethertype::VLAN));
    assert_eq!(ka[3], KeyAttr::Vlan(VLAN_CFI));
    assert_eq!(ma[3], KeyAttr::Vlan(VLAN_CFI));
}

#[test]
fn llc_frames_have_no_ethertype_in_the_key() {
    let k = FlowKey {
        dl_type: ethertype::NONE,
        dl_dst: [1, 0x80, 0xc2, 0, 0, 0],
        ..Default::default()
    };
    let (ka, ma) = encode_match(&k, &FlowMask::exact());
    assert!(!kinds(&ka).contains(&kind::ETHERTYPE));
    assert!(ma.contains(&KeyAttr::Ethertype(0xffff)));
    assert_eq!(wire(&ka, false).dl_type, ethertype::NONE);
}

#[test]
fn ipv6_nd_arp_and_fragments() {
    let nd = FlowKey {
        dl_type: ethertype::IPV6,
        ipv6_src: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ipv6_dst: [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2],
        ipv6_label: 0x12345,
        nw_proto: ipproto::ICMPV6,
        nw_ttl: 255,
        tp_src: 135,
        nd_target: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        arp_sha: [2, 0, 0, 0, 0, 1],
        ..Default::default()
    };
    let (ka, _) = encode_match(&nd, &FlowMask::exact());
    assert!(kinds(&ka).ends_with(&[kind::IPV6, kind::ICMPV6, kind::ND]));
    assert_eq!(wire(&ka, false), nd);

    let arp = FlowKey {
        dl_type: ethertype::ARP,
        nw_proto: 1,
        nw_src: 0x0a00_0001,
        nw_dst: 0x0a00_0002,
        arp_sha: [2, 0, 0, 0, 0, 1],
        ..Default::default()
    };
    let (ka, ma) = encode_match(&arp, &FlowMask::exact());
    assert_eq!(wire(&ka, false), arp);
    assert_eq!(wire(&ma, true).nw_proto, 0xff);

    let mut later = udp_key();
    later.nw_frag = frag::ANY | frag::LATER;
    let (ka, _) = encode_match(&later, &FlowMask::exact());
    assert!(
        !kinds(&ka).contains(&kind::UDP),
        "later fragments carry no L4 header"
    );
    let d = wire(&ka, false);
    assert_eq!(d.nw_frag, frag::ANY | frag::LATER);
    assert_eq!((d.tp_src, d.tp_dst), (0, 0));
}

#[test]
fn tunnel_metadata_round_trips() {
    let mut k = udp_key();
    k.tun_id = 42;
    k.tun_ipv4_src = 0xc0a8_3201;
    k.tun_ipv4_dst = 0xc0a8_3202;
    k.tun_ttl = 64;
    k.tun_tp_dst = 4789;
    k.tun_flags = tun_flag::KEY | tun_flag::DONT_FRAGMENT;
    k.tun_gnv_opt_hdr = 0x0102_0301;
    k.tun_gnv_opt_data = 0xdead_beef;
    let (ka, _) = encode_match(&k, &FlowMask::exact());
    assert!(kinds(&ka).contains(&kind::TUNNEL));
    assert_eq!(wire(&ka, false), k);
}

#[test]
fn untunnelled_match_sends_a_tunnel_mask_only() {
    let k = udp_key();
    let mut mask = FlowMask::default();
    mask.0.in_port = u32::MAX;
    mask.0.tun_id = u64::MAX;
    mask.0.tun_ipv4_dst = u32::MAX;
    let (ka, ma) = encode_match(&k, &mask);
    assert!(!kinds(&ka).contains(&kind::TUNNEL));
    assert!(kinds(&ma).contains(&kind::TUNNEL));
    let m = wire(&ma, true);
    assert_eq!((m.tun_id, m.tun_ipv4_dst), (u64::MAX, u32::MAX));
    // what the kernel dumps for it: the tunnel mask without addresses
    let dumped = [KeyAttr::Tunnel(vec![
        TunnelAttr::Id(u64::MAX),
        TunnelAttr::Ttl(0),
    ])];
    let m = decode_attrs(&dumped, true).unwrap();
    assert_eq!((m.tun_ipv4_dst, m.tun_ipv6_src), (u32::MAX, [0xff; 16]));
}

#[test]
fn kernel_mask_covers_the_translator_mask() {
    // what xlate typically consults: metadata, parse flags, VLAN, ethertype, L3 dst
    let mut k = udp_key();
    k.vlans[0] = VlanTag {
        tpid: ethertype::VLAN,
        tci: 10,
    };
    let mut mask = FlowMask::default();
    mask.0.in_port = u32::MAX;
    mask.0.recirc_id = u32::MAX;
    mask.0.parse_flags = u8::MAX;
    mask.0.vlans[0] = VlanTag {
        tpid: 0xffff,
        tci: 0x0fff,
    };
    mask.0.dl_dst = [0xff; 6];
    mask.0.dl_type = u16::MAX;
    mask.0.nw_proto = u8::MAX;
    mask.0.nw_frag = frag::LATER;
    mask.0.tp_dst = u16::MAX;
    let (ka, ma) = encode_match(&k, &mask);
    let dm = FlowMask(wire(&ma, true));
    assert!(
        mask.is_subset_of(&dm),
        "kernel mask {dm:?} lost bits of {mask:?}"
    );
    let dk = wire(&ka, false);
    assert_eq!(dk.masked(&dm), k.masked(&dm));
}

#[test]
fn truncated_attribute_is_an_error_naming_it() {
    let mut bytes = emit_all(&[KeyAttr::Ipv4(KeyIpv4::default())]);
    bytes[0] = 8; // claim 4 bytes of payload instead of 12
    bytes.truncate(8);
    let err = parse_key_attrs(&bytes).unwrap_err().to_string();
    assert!(err.contains("ipv4"), "{err}");
    assert!(matches!(
        decode_attrs(
            &[
                KeyAttr::Vlan(0x1001),
                KeyAttr::Encap(vec![
                    KeyAttr::Vlan(0x1002),
                    KeyAttr::Encap(vec![KeyAttr::Vlan(0x1003)])
                ])
            ],
            false
        ),
        Err(KeyDecodeError::TooManyVlans)
    ));
}

#[test]
fn translator_tunnel_masks_survive_the_kernel() {
    // ofproto consults every tunnel field when it sets a tunnel for output
    let mut all_tun = FlowMask::default();
    all_tun.0.in_port = u32::MAX;
    all_tun.0.recirc_id = u32::MAX;
    all_tun.0.parse_flags = u8::MAX;
    let w = &mut all_tun.0;
    (w.tun_id, w.tun_ipv4_src, w.tun_ipv4_dst) = (u64::MAX, u32::MAX, u32::MAX);
    (w.tun_ipv6_src, w.tun_ipv6_dst) = ([0xff; 16], [0xff; 16]);
    (
        w.tun_flags,
        w.tun_tos,
        w.tun_ttl,
        w.tun_tp_src,
        w.tun_tp_dst,
    ) = (u16::MAX, 0xff, 0xff, 0xffff, 0xffff);
    (w.tun_gnv_opt_hdr, w.tun_gnv_opt_data) = (u32::MAX, u32::MAX);

    // from a tunnel (IPv4 underlay, no options) and from a plain port
    let mut tunnelled = udp_key();
    (
        tunnelled.tun_id,
        tunnelled.tun_ipv4_src,
        tunnelled.tun_ipv4_dst,
        tunnelled.tun_ttl,
    ) = (5, 1, 2, 64);
    tunnelled.tun_flags = tun_flag::KEY;
    for k in [tunnelled, udp_key()] {
        let (ka, ma) = encode_match(&k, &all_tun);
        // what the kernel reports back for the mask: no addresses for an untunnelled flow
        let ma: Vec<KeyAttr> = if k.tun_ipv4_dst == 0 {
            ma.into_iter()
                .map(|a| match a {
                    KeyAttr::Tunnel(t) => KeyAttr::Tunnel(
                        t.into_iter()
                            .filter(|x| {
                                !matches!(x, TunnelAttr::Ipv4Src(_) | TunnelAttr::Ipv4Dst(_))
                            })
                            .collect(),
                    ),
                    a => a,
                })
                .collect()
        } else {
            ma
        };
        let dm = FlowMask(wire(&ma, true));
        assert!(
            all_tun.is_subset_of(&dm),
            "tunnel mask lost bits for {k:?}: {dm:?}"
        );
        assert_eq!(wire(&ka, false).masked(&dm), k.masked(&dm));
    }
}
