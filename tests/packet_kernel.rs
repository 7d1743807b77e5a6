//! Interop with the Linux kernel's own network stack (needs root): frames the kernel
//! generates — ARP, ICMP, IPv6 ND with link-layer options, IGMPv2/v3 and MLDv1/v2
//! reports, VXLAN encapsulation from a kernel vxlan device — are captured on a veth in a
//! private namespace and parsed by `flow_extract` / `tnl_pop`; and frames built by
//! `tnl_push` must be accepted by the kernel vxlan device (ping gets its replies).

mod packet_netns;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use packet_netns::{run_in_ns, NsPair, RawSock};
use rvswitch::dpif::action::{TnlPush, TunnelType};
use rvswitch::packet::flow_key::tun_flag;
use rvswitch::packet::parse::{flow_extract, parse_frame};
use rvswitch::packet::tunnel::{build_tnl_header, tnl_pop, tnl_push, Encap, TnlHeaderSpec};
use rvswitch::packet::wire::build::{ipv4_frame, L4};
use rvswitch::packet::wire::{ethernet, icmpv4, icmpv6, igmp, ipv4};
use rvswitch::packet::{FlowKey, PacketBuf, PacketMeta};

fn keys(frames: &[Vec<u8>]) -> Vec<FlowKey> {
    frames
        .iter()
        .map(|f| parse_frame(f, &PacketMeta::default()))
        .collect()
}

fn v4(s: &str) -> u32 {
    s.parse::<Ipv4Addr>().unwrap().into()
}

#[test]
fn kernel_arp_icmp_and_neighbor_discovery() {
    let p = NsPair::new();
    p.ip(&p.a, &["addr", "add", "10.77.0.1/24", "dev", &p.if_a]);
    p.ip(&p.b, &["addr", "add", "10.77.0.2/24", "dev", &p.if_b]);
    p.ip(
        &p.a,
        &[
            "-6",
            "addr",
            "add",
            "fd00:77::1/64",
            "dev",
            &p.if_a,
            "nodad",
        ],
    );
    p.ip(
        &p.b,
        &[
            "-6",
            "addr",
            "add",
            "fd00:77::2/64",
            "dev",
            &p.if_b,
            "nodad",
        ],
    );
    let sock = RawSock::open(&p.b, &p.if_b);
    p.exec(&p.a, "ping", &["-c", "1", "-W", "3", "10.77.0.2"]);
    p.exec(&p.a, "ping", &["-6", "-c", "1", "-W", "3", "fd00:77::2"]);
    let frames = sock.drain(Duration::from_millis(300), Duration::from_secs(5));
    let ks = keys(&frames);
    assert!(
        ks.iter().all(|k| k.parse_flags == 0),
        "kernel frames parse cleanly"
    );

    let (a, b) = (v4("10.77.0.1"), v4("10.77.0.2"));
    let arp_req = ks
        .iter()
        .find(|k| k.dl_type == 0x0806 && k.nw_proto == 1)
        .expect("ARP request");
    assert_eq!(
        (
            arp_req.nw_src,
            arp_req.nw_dst,
            arp_req.arp_sha,
            arp_req.dl_dst
        ),
        (a, b, p.mac_a, [0xff; 6])
    );
    let arp_rep = ks
        .iter()
        .find(|k| k.dl_type == 0x0806 && k.nw_proto == 2)
        .expect("ARP reply");
    assert_eq!(
        (
            arp_rep.nw_src,
            arp_rep.nw_dst,
            arp_rep.arp_sha,
            arp_rep.arp_tha
        ),
        (b, a, p.mac_b, p.mac_a)
    );
    let echo = ks
        .iter()
        .find(|k| k.nw_proto == 1 && k.tp_src == 8)
        .expect("echo request");
    assert_eq!(
        (
            echo.nw_src,
            echo.nw_dst,
            echo.tp_dst,
            echo.dl_src,
            echo.nw_frag
        ),
        (a, b, 0, p.mac_a, 0)
    );
    assert!(ks
        .iter()
        .any(|k| k.nw_proto == 1 && k.tp_src == 0 && k.nw_src == b));

    let (a6, b6) = (
        "fd00:77::1".parse::<Ipv6Addr>().unwrap().octets(),
        "fd00:77::2".parse::<Ipv6Addr>().unwrap().octets(),
    );
    let ns = ks
        .iter()
        .find(|k| k.nw_proto == 58 && k.tp_src == 135 && k.ipv6_src == a6)
        .expect("neighbor solicitation");
    assert_eq!(
        (ns.nd_target, ns.arp_sha, ns.arp_tha, ns.nw_ttl),
        (b6, p.mac_a, [0; 6], 255)
    );
    let na = ks
        .iter()
        .find(|k| k.nw_proto == 58 && k.tp_src == 136 && k.nd_target == b6)
        .expect("neighbor advertisement");
    assert_eq!((na.arp_tha, na.arp_sha, na.ipv6_src), (p.mac_b, [0; 6], b6));
    assert!(ks
        .iter()
        .any(|k| k.nw_proto == 58 && k.tp_src == 128 && k.ipv6_dst == b6));
    assert!(ks
        .iter()
        .any(|k| k.nw_proto == 58 && k.tp_src == 129 && k.ipv6_src == b6));
}

#[test]
fn kernel_igmp_and_mld_reports() {
    let p = NsPair::new();
    p.ip(&p.a, &["addr", "add", "10.78.0.1/24", "dev", &p.if_a]);
    p.ip(
        &p.a,
        &[
            "-6",
            "addr",
            "add",
            "fd00:78::1/64",
            "dev",
            &p.if_a,
            "nodad",
        ],
    );
    let sock = RawSock::open(&p.b, &p.if_b);
    let sysctl = |k: &str, v: &str| p.exec(&p.a, "sysctl", &["-qw", &format!("{k}={v}")]);
    let ifindex = run_in_ns(&p.a, || {
        let c = std::ffi::CString::new(p.if_a.clone()).unwrap();
        // SAFETY: valid NUL-terminated name.
        unsafe { libc::if_nametoindex(c.as_ptr()) }
    });
    let join_leave_v4 = |group: &str| {
        run_in_ns(&p.a, || {
            let s = UdpSocket::bind("0.0.0.0:0").unwrap();
            s.join_multicast_v4(&group.parse().unwrap(), &"10.78.0.1".parse().unwrap())
                .unwrap();
            std::thread::sleep(Duration::from_millis(100));
            drop(s); // leaving
            std::thread::sleep(Duration::from_millis(100));
        })
    };
    let join_leave_v6 = |group: &str| {
        run_in_ns(&p.a, || {
            let s = UdpSocket::bind("[::]:0").unwrap();
            s.join_multicast_v6(&group.parse().unwrap(), ifindex)
                .unwrap();
            std::thread::sleep(Duration::from_millis(100));
            drop(s);
            std::thread::sleep(Duration::from_millis(100));
        })
    };
    sysctl(&format!("net.ipv4.conf.{}.force_igmp_version", p.if_a), "2");
    join_leave_v4("239.78.0.2");
    sysctl(&format!("net.ipv4.conf.{}.force_igmp_version", p.if_a), "3");
    join_leave_v4("239.78.0.3");
    sysctl(&format!("net.ipv6.conf.{}.force_mld_version", p.if_a), "1");
    join_leave_v6("ff0e::78:1");
    sysctl(&format!("net.ipv6.conf.{}.force_mld_version", p.if_a), "2");
    join_leave_v6("ff0e::78:2");
    let frames = sock.drain(Duration::from_millis(500), Duration::from_secs(5));

    let mut seen = Vec::new();
    for f in &frames {
        let mut pk = PacketBuf::from_frame(f);
        let mut k = FlowKey::default();
        flow_extract(&mut pk, &mut k);
        assert_eq!(k.parse_flags, 0, "kernel frame parses cleanly: {k:?}");
        let l4 = &f[pk.meta.l4_ofs.min(f.len() as u16) as usize..];
        match (k.nw_proto, k.tp_src) {
            (2, 0x16) if k.igmp_group == v4("239.78.0.2") => seen.push("igmpv2 report"),
            (2, 0x17) if k.igmp_group == v4("239.78.0.2") => seen.push("igmpv2 leave"),
            (2, 0x22) => {
                let v = igmp::Packet::new_checked(l4).unwrap();
                assert!(v.verify_checksum());
                for r in v.v3_records() {
                    if r.unwrap().group == [239, 78, 0, 3] {
                        seen.push("igmpv3 record");
                    }
                }
            }
            (58, 131) if k.nd_target == "ff0e::78:1".parse::<Ipv6Addr>().unwrap().octets() => {
                seen.push("mldv1 report")
            }
            (58, 132) if k.nd_target == "ff0e::78:1".parse::<Ipv6Addr>().unwrap().octets() => {
                seen.push("mldv1 done")
            }
            (58, 143) => {
                let v = icmpv6::Packet::new_checked(l4).unwrap();
                for r in v.mld2_records() {
                    if r.unwrap().group == "ff0e::78:2".parse::<Ipv6Addr>().unwrap().octets() {
                        seen.push("mldv2 record");
                    }
                }
            }
            _ => {}
        }
    }
    for want in [
        "igmpv2 report",
        "igmpv2 leave",
        "igmpv3 record",
        "mldv1 report",
        "mldv1 done",
        "mldv2 record",
    ] {
        assert!(
            seen.contains(&want),
            "no {want} among {} captured frames (saw {seen:?})",
            frames.len()
        );
    }
}

fn mac_str(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The kernel's vxlan device encapsulates pings over an underlay from `local` to
/// `remote`; `tnl_pop` decapsulates them, we answer each with an echo reply encapsulated
/// by `tnl_push`, and the kernel accepts it: ping reports no loss.
fn vxlan_interop(local: IpAddr, remote: IpAddr, prefix: u8) {
    let p = NsPair::new();
    let vx = format!("{}x", p.if_a);
    let vx_mac = [0x02, 0x70, 0x6b, 0x78, 0, 0x01];
    let far_mac = [0x02, 0x70, 0x6b, 0x78, 0, 0x02];
    let fam = if local.is_ipv4() { "-4" } else { "-6" };
    let local_cidr = format!("{local}/{prefix}");
    p.ip(
        &p.a,
        &[fam, "addr", "add", &local_cidr, "dev", &p.if_a, "nodad"],
    );
    p.ip(
        &p.a,
        &[
            fam,
            "neigh",
            "add",
            &remote.to_string(),
            "lladdr",
            &mac_str(&p.mac_b),
            "dev",
            &p.if_a,
        ],
    );
    let (l, r) = (local.to_string(), remote.to_string());
    let mut link = vec![
        "link", "add", &vx, "type", "vxlan", "id", "4242", "local", &l, "remote", &r,
    ];
    link.extend_from_slice(&["dstport", "4789", "nolearning"]);
    // IPv4 vxlan sends no UDP checksum unless asked; IPv6 always does.
    if local.is_ipv4() {
        link.push("udpcsum");
    }
    p.ip(&p.a, &link);
    p.ip(
        &p.a,
        &["link", "set", &vx, "address", &mac_str(&vx_mac), "up"],
    );
    p.ip(&p.a, &["addr", "add", "192.168.79.1/24", "dev", &vx]);
    p.ip(
        &p.a,
        &[
            "neigh",
            "add",
            "192.168.79.2",
            "lladdr",
            &mac_str(&far_mac),
            "dev",
            &vx,
        ],
    );
    let sock = RawSock::open(&p.b, &p.if_b);

    let header = build_tnl_header(&TnlHeaderSpec {
        eth_src: p.mac_b,
        eth_dst: p.mac_a,
        src: remote,
        dst: local,
        tos: 0,
        ttl: 64,
        dont_fragment: true,
        encap: Encap::Vxlan {
            vni: 4242,
            dst_port: 4789,
            udp_csum: true,
        },
    })
    .unwrap();
    let push = TnlPush {
        tnl_port: 9,
        out_port: 1,
        tnl_type: TunnelType::Vxlan,
        header,
    };

    let mut ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &p.a,
            "ping",
            "-c",
            "3",
            "-i",
            "0.3",
            "-W",
            "3",
            "192.168.79.2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ping");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut answered = 0;
    while Instant::now() < deadline {
        if ping.try_wait().unwrap().is_some() {
            break;
        }
        let Some(f) = sock.recv(Duration::from_millis(100)) else {
            continue;
        };
        let outer = parse_frame(&f, &PacketMeta::default());
        if outer.nw_proto != 17 || outer.tp_dst != 4789 || outer.dl_src != p.mac_a {
            continue;
        }
        let mut pk = PacketBuf::from_frame(&f);
        let m = tnl_pop(&mut pk).expect("kernel VXLAN frame decapsulates");
        assert_eq!((m.tun_id, m.tp_dst), (4242, 4789));
        match (local, remote) {
            (IpAddr::V4(l), IpAddr::V4(r)) => {
                assert_eq!((m.ipv4_src, m.ipv4_dst), (l.into(), r.into()))
            }
            (IpAddr::V6(l), IpAddr::V6(r)) => {
                assert_eq!((m.ipv6_src, m.ipv6_dst), (l.octets(), r.octets()))
            }
            _ => unreachable!("same family"),
        }
        assert_eq!(
            m.flags & (tun_flag::CSUM | tun_flag::KEY),
            tun_flag::CSUM | tun_flag::KEY,
            "checksummed"
        );
        let mut k = FlowKey::default();
        flow_extract(&mut pk, &mut k);
        assert_eq!(k.tun_id, 4242);
        if !(k.nw_proto == 1 && k.tp_src == 8) {
            continue;
        }
        assert_eq!(
            (k.dl_src, k.dl_dst, k.nw_src, k.nw_dst),
            (vx_mac, far_mac, v4("192.168.79.1"), v4("192.168.79.2"))
        );
        // Answer: echo reply with the same identifier, sequence and data.
        let l4 = pk.meta.l4_ofs as usize;
        let ip_end = 14
            + ipv4::Packet::new_checked(&pk.data()[14..])
                .unwrap()
                .total_len() as usize;
        let req = icmpv4::Packet::new_checked(&pk.data()[l4..ip_end]).unwrap();
        let reply = ipv4_frame(
            &ethernet::Repr {
                dst: vx_mac,
                src: far_mac,
                ..Default::default()
            },
            &ipv4::Repr {
                src: k.nw_dst,
                dst: k.nw_src,
                ttl: 64,
                ..Default::default()
            },
            &L4::Icmpv4(
                icmpv4::Repr {
                    msg_type: 0,
                    code: 0,
                    rest: req.rest(),
                },
                req.payload(),
            ),
        )
        .unwrap();
        let mut out = PacketBuf::from_frame(&reply);
        let mut rk = FlowKey::default();
        flow_extract(&mut out, &mut rk);
        tnl_push(&mut out, &push, rk.hash()).unwrap();
        sock.send(out.data());
        answered += 1;
    }
    let out = ping.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        answered >= 3,
        "answered {answered} requests; ping said {text}"
    );
    assert!(
        out.status.success() && text.contains(" 0% packet loss"),
        "ping: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kernel_vxlan_interop_ipv4_underlay() {
    vxlan_interop(
        Ipv4Addr::new(10, 79, 0, 1).into(),
        Ipv4Addr::new(10, 79, 0, 2).into(),
        24,
    );
}

#[test]
fn kernel_vxlan_interop_ipv6_underlay() {
    let l: Ipv6Addr = "fd00:79::1".parse().unwrap();
    let r: Ipv6Addr = "fd00:79::2".parse().unwrap();
    vxlan_interop(l.into(), r.into(), 64);
}
