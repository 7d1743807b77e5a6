//! The translator's side of native tunnelling, as hooks on a translation (`Ctx`):
//!
//! - `snoop_neighbor`: ARP packets and IPv6 neighbour solicitations/advertisements seen on
//!   any bridge fill the neighbour cache (they are never installed as megaflows while
//!   tunnel ports exist, so every one comes up to be snooped, as after a flush);
//! - `tunnel_ingress_ok`: a packet that arrives on a tunnel port (after `tnl_pop`) is
//!   accepted only if its tun_id / tun_src match the port's fixed `key` / `remote_ip`;
//! - `tunnel_emit`: output to a tunnel port becomes `tnl_push`es with a header built from
//!   the underlay route and the next hop's MAC (or, while that MAC is unknown, an ARP/ND
//!   request is queued and the packet dropped without installing a megaflow); output of a
//!   tunnel packet addressed to a local endpoint to the underlay's internal port becomes
//!   `tnl_pop` of the matching tunnel port instead.
//!
//! The tnl_push's underlay port is where the underlay bridge would send the outer frame:
//! the port its fdb learned the next hop's MAC on, else every other port of that bridge.

use std::net::IpAddr;

use super::tunnel::{FromFlow, PendingSend, TunnelPort, TunnelState};
use super::xlate::Ctx;
use crate::dpif::{DpAction, TnlPush, TunnelType};
use crate::packet::tunnel::{build_tnl_header, Encap, TnlHeaderSpec};
use crate::packet::wire::build::{arp_frame, ipv6_frame, L4};
use crate::packet::wire::geneve::GeneveOption;
use crate::packet::wire::{arp, ethernet, icmpv6, ipv6};
use crate::packet::{ethertype, ipproto, OdpPort, PacketMeta};

const ND_NS: u16 = 135;
const ND_NA: u16 = 136;

fn v6_multicast_mac(ip: &[u8; 16]) -> [u8; 6] {
    [0x33, 0x33, 0xff, ip[13], ip[14], ip[15]]
}

fn solicited_node(ip: &[u8; 16]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..2].copy_from_slice(&[0xff, 0x02]);
    a[11] = 1;
    a[12] = 0xff;
    a[13..].copy_from_slice(&ip[13..]);
    a
}

impl Ctx<'_> {
    fn tunnel_state(&self) -> Option<std::sync::Arc<TunnelState>> {
        self.bridge.tunnels().filter(|t| t.has_ports()).cloned()
    }

    /// Learns the sender of an ARP packet or IPv6 ND message into the neighbour cache.
    pub(super) fn snoop_neighbor(&mut self) {
        let Some(ts) = self.tunnel_state() else {
            return;
        };
        if !self.may_learn {
            return;
        }
        let f = self.flow;
        let name = self.bridge.name().to_string();
        if f.dl_type == ethertype::ARP
            || (f.dl_type == ethertype::IPV6
                && f.nw_proto == ipproto::ICMPV6
                && matches!(f.tp_src, ND_NS | ND_NA))
        {
            // Every ARP/ND packet must come up to be snooped (a megaflow would hide the
            // next reply from a neighbour after tnl/neigh/flush); they are few.
            self.install = false;
        }
        if f.dl_type == ethertype::ARP {
            let w = &mut self.wc.0;
            w.dl_type = u16::MAX;
            w.nw_src = u32::MAX;
            w.arp_sha = [0xff; 6];
            ts.neigh.learn(
                IpAddr::from(f.nw_src.to_be_bytes()),
                f.arp_sha,
                &name,
                self.now,
            );
        } else if f.dl_type == ethertype::IPV6 && f.nw_proto == ipproto::ICMPV6 {
            let w = &mut self.wc.0;
            w.dl_type = u16::MAX;
            w.nw_proto = u8::MAX;
            w.tp_src = u16::MAX;
            match f.tp_src {
                ND_NA => {
                    w.nd_target = [0xff; 16];
                    w.arp_tha = [0xff; 6];
                    ts.neigh
                        .learn(IpAddr::from(f.nd_target), f.arp_tha, &name, self.now);
                }
                ND_NS => {
                    w.ipv6_src = [0xff; 16];
                    w.arp_sha = [0xff; 6];
                    ts.neigh
                        .learn(IpAddr::from(f.ipv6_src), f.arp_sha, &name, self.now);
                }
                _ => {}
            }
        }
    }

    /// For a packet received on a tunnel port: whether its tunnel id and source match
    /// the port's fixed key and remote (consulting exactly those fields).
    pub(super) fn tunnel_ingress_ok(&mut self, in_dp: OdpPort) -> bool {
        let Some(t) = self.tunnel_state().and_then(|ts| ts.port(in_dp)) else {
            return true;
        };
        if let FromFlow::Fixed(k) = t.config.key {
            self.wc.0.tun_id = u64::MAX;
            let got = self.flow.tun_id;
            if got != k {
                self.note(format_args!(
                    "tunnel port {}: tun_id {got:#x} is not its key {k:#x}: drop",
                    t.name
                ));
                return false;
            }
        }
        if let FromFlow::Fixed(r) = t.config.remote {
            let ok = match r {
                IpAddr::V4(a) => {
                    self.wc.0.tun_ipv4_src = u32::MAX;
                    self.flow.tun_ipv4_src == u32::from(a)
                }
                IpAddr::V6(a) => {
                    self.wc.0.tun_ipv6_src = [0xff; 16];
                    self.flow.tun_ipv6_src == a.octets()
                }
            };
            if !ok {
                self.note(format_args!(
                    "tunnel port {}: outer source is not remote_ip {r}: drop",
                    t.name
                ));
                return false;
            }
        }
        true
    }

    /// Handles output to `dp` when tunnelling is involved; returns whether it did.
    pub(super) fn tunnel_emit(&mut self, dp: OdpPort) -> bool {
        let Some(ts) = self.tunnel_state() else {
            return false;
        };
        if let Some(t) = ts.port(dp) {
            self.tunnel_push(&ts, &t);
            return true;
        }
        self.tunnel_pop(&ts, dp)
    }

    /// The tunnel's remote endpoint and key, from its configuration or, for `flow`, from
    /// the flow's tun_* fields, un-wildcarding what it reads. `None`, with a trace note,
    /// when the remote comes from the flow and the flow has none: the caller drops.
    /// Shared by userspace encapsulation and the kernel's set(tunnel) path.
    pub(super) fn tunnel_endpoint(&mut self, t: &TunnelPort) -> Option<(IpAddr, u64)> {
        let c = &t.config;
        let remote = match c.remote {
            FromFlow::Fixed(r) => r,
            FromFlow::Flow => {
                let w = &mut self.wc.0;
                w.tun_ipv4_dst = u32::MAX;
                w.tun_ipv6_dst = [0xff; 16];
                if self.flow.tun_ipv4_dst != 0 {
                    IpAddr::from(self.flow.tun_ipv4_dst.to_be_bytes())
                } else if self.flow.tun_ipv6_dst != [0; 16] {
                    IpAddr::from(self.flow.tun_ipv6_dst)
                } else {
                    self.note(format_args!(
                        "tunnel {}: remote_ip=flow but tun_dst is not set: drop",
                        t.name
                    ));
                    return None;
                }
            }
        };
        let key = match c.key {
            FromFlow::Fixed(k) => k,
            FromFlow::Flow => {
                self.wc.0.tun_id = u64::MAX;
                self.flow.tun_id
            }
        };
        Some((remote, key))
    }

    fn tunnel_push(&mut self, ts: &TunnelState, t: &TunnelPort) {
        let c = &t.config;
        let Some((remote, key)) = self.tunnel_endpoint(t) else {
            return;
        };
        // The tunnel fields go into the header, not into a set(tunnel(...)) action.
        self.forget_written_tunnel();
        // A Geneve option in the flow (set by set_field, or received) goes into the header.
        let options = if c.kind == TunnelType::Geneve {
            self.wc.0.tun_gnv_opt_hdr = u32::MAX;
            self.geneve_options()
        } else {
            Vec::new()
        };
        self.commit();
        // What follows depends on caches that change without a rule change: the
        // backer revalidates tunnel megaflows when they do.
        let route = match ts.underlay_route(remote, self.now, Some((self.bridge, self.ports))) {
            Ok(r) => r,
            Err(e) => {
                self.install = false;
                return self.note(format_args!("tunnel {}: {e}: drop", t.name));
            }
        };
        let Some(local) = c.local.or(route.src) else {
            self.install = false;
            return self.note(format_args!(
                "tunnel {}: no local_ip and the route via {} gives no source: drop",
                t.name, route.dev
            ));
        };
        let Some(under) = ts.bridge_with_port(&route.dev, Some((self.bridge, self.ports))) else {
            self.install = false;
            return self.note(format_args!(
                "tunnel {}: route to {remote} leaves by {}, which is no bridge's port: drop",
                t.name, route.dev
            ));
        };
        let Some(src_mac) = ts.dev_mac(&route.dev) else {
            self.install = false;
            return self.note(format_args!(
                "tunnel {}: cannot read the MAC of {}: drop",
                t.name, route.dev
            ));
        };
        let same = std::ptr::eq(under.as_ref(), self.bridge);
        let uports = if same {
            self.ports.clone()
        } else {
            under.ports()
        };
        let Some(internal) = uports.by_name(&route.dev).map(|p| p.dp_port) else {
            return;
        };
        let nh = route.next_hop(remote);
        let Some(nh_mac) = ts.neigh.lookup(nh, self.now) else {
            self.install = false;
            self.note(format_args!(
                "tunnel {}: next hop {nh} not in the neighbour cache: sending ARP/ND, packet dropped",
                t.name
            ));
            let others = self.underlay_outputs(&uports, internal, None, ts);
            if let Some(frame) = neighbor_request(src_mac, local, nh) {
                ts.queue_send(PendingSend {
                    frame,
                    meta: PacketMeta::for_port(internal),
                    actions: others.into_iter().map(DpAction::Output).collect(),
                });
            }
            return;
        };
        // A zero UDP checksum over IPv6 is dropped by receivers that did not opt in to
        // RFC 6935's exception (Linux by default), so IPv6 underlays always carry one.
        let udp_csum = c.csum || remote.is_ipv6();
        let encap = match c.kind {
            TunnelType::Vxlan => Encap::Vxlan {
                vni: key as u32 & 0xff_ffff,
                dst_port: c.dst_port,
                udp_csum,
            },
            TunnelType::Geneve => Encap::Geneve {
                vni: key as u32 & 0xff_ffff,
                dst_port: c.dst_port,
                udp_csum,
                oam: false,
                options,
            },
            TunnelType::Gre => Encap::Gre {
                key: (key != 0 || c.key == FromFlow::Flow).then_some(key as u32),
                csum: c.csum,
            },
        };
        let spec = TnlHeaderSpec {
            eth_src: src_mac,
            eth_dst: nh_mac,
            src: local,
            dst: remote,
            tos: c.tos,
            ttl: c.ttl,
            dont_fragment: c.df,
            encap,
        };
        let header = match build_tnl_header(&spec) {
            Ok(h) => h,
            Err(e) => return self.note(format_args!("tunnel {}: {e}: drop", t.name)),
        };
        let learned = under
            .fdb()
            .lookup(nh_mac, 0, self.now)
            .and_then(|of| uports.get(of))
            .map(|p| p.dp_port);
        let outs = self.underlay_outputs(&uports, internal, learned, ts);
        if self.tracing() {
            self.note(format_args!(
                "tunnel {}: {local} -> {remote} via {} (next hop {nh}), key {key:#x}, out {outs:?}",
                t.name, route.dev
            ));
        }
        for out_port in outs {
            self.out.push(DpAction::TnlPush(TnlPush {
                tnl_port: t.dp_port,
                out_port,
                tnl_type: c.kind,
                header: header.clone(),
            }));
        }
    }

    /// The Geneve option the flow carries (one, whose data is at most the 4 bytes the
    /// key holds), or none.
    fn geneve_options(&mut self) -> Vec<GeneveOption> {
        let h = self.flow.tun_gnv_opt_hdr;
        if h == 0 {
            return Vec::new();
        }
        self.wc.0.tun_gnv_opt_data = u32::MAX;
        let words = (h & 0x1f) as usize;
        let mut data = vec![0u8; words * 4];
        let d = self.flow.tun_gnv_opt_data.to_be_bytes();
        let n = data.len().min(4);
        data[..n].copy_from_slice(&d[..n]);
        vec![GeneveOption {
            class: (h >> 16) as u16,
            opt_type: (h >> 8) as u8,
            data,
        }]
    }

    /// The underlay ports an outer frame leaves by: the learned one, else all ports but
    /// the internal port and tunnel ports.
    fn underlay_outputs(
        &self,
        uports: &super::PortMap,
        internal: OdpPort,
        learned: Option<OdpPort>,
        ts: &TunnelState,
    ) -> Vec<OdpPort> {
        match learned {
            Some(p) if p != internal => vec![p],
            _ => uports
                .iter()
                .map(|p| p.dp_port)
                .filter(|&p| p != internal && ts.port(p).is_none())
                .collect(),
        }
    }

    /// If `dp` is an underlay internal port and the packet is a tunnel packet for one
    /// of the tunnel ports whose endpoint it is, emits `tnl_pop` instead of the output.
    fn tunnel_pop(&mut self, ts: &TunnelState, dp: OdpPort) -> bool {
        let Some(name) = self
            .ports
            .ofport_of(dp)
            .and_then(|of| self.ports.get(of))
            .map(|p| p.name.clone())
        else {
            return false;
        };
        let cands: Vec<TunnelPort> = ts
            .ports()
            .into_iter()
            .filter(|t| t.config.local.is_some() || t.config.remote != FromFlow::Flow)
            .filter(|t| {
                endpoint_dev(ts, t, (self.bridge, self.ports)).as_deref() == Some(name.as_str())
            })
            .collect();
        if cands.is_empty() {
            return false;
        }
        let f = self.flow;
        let w = &mut self.wc.0;
        w.dl_type = u16::MAX;
        let (dst, src) = if f.dl_type == ethertype::IPV4 {
            w.nw_dst = u32::MAX;
            (
                IpAddr::from(f.nw_dst.to_be_bytes()),
                IpAddr::from(f.nw_src.to_be_bytes()),
            )
        } else if f.dl_type == ethertype::IPV6 {
            w.ipv6_dst = [0xff; 16];
            (IpAddr::from(f.ipv6_dst), IpAddr::from(f.ipv6_src))
        } else {
            return false;
        };
        let cands: Vec<TunnelPort> = cands
            .into_iter()
            .filter(|t| endpoint_ip(ts, t, (self.bridge, self.ports)) == Some(dst))
            .collect();
        if cands.is_empty() {
            return false;
        }
        w.nw_proto = u8::MAX;
        w.nw_frag = u8::MAX;
        if f.nw_frag != 0 {
            return false;
        }
        let udp_port = match f.nw_proto {
            ipproto::UDP => {
                w.tp_dst = u16::MAX;
                Some(f.tp_dst)
            }
            ipproto::GRE => None,
            _ => return false,
        };
        let fits = |t: &&TunnelPort| match (t.config.kind, udp_port) {
            (TunnelType::Gre, None) => true,
            (TunnelType::Vxlan | TunnelType::Geneve, Some(p)) => p == t.config.dst_port,
            _ => false,
        };
        let cands: Vec<&TunnelPort> = cands.iter().filter(fits).collect();
        if cands.is_empty() {
            return false;
        }
        // A port whose fixed remote_ip is the sender wins over a remote_ip=flow port.
        let fixed = cands
            .iter()
            .any(|t| matches!(t.config.remote, FromFlow::Fixed(_)));
        if fixed {
            if dst.is_ipv4() {
                self.wc.0.nw_src = u32::MAX;
            } else {
                self.wc.0.ipv6_src = [0xff; 16];
            }
        }
        let pick = cands
            .iter()
            .find(|t| t.config.remote == FromFlow::Fixed(src))
            .or_else(|| cands.iter().find(|t| t.config.remote == FromFlow::Flow));
        let Some(t) = pick else {
            return false;
        };
        self.note(format_args!(
            "tunnel packet for {dst} on {name}: tnl_pop as {}",
            t.name
        ));
        self.commit();
        self.out.push(DpAction::TnlPop(t.dp_port));
        true
    }
}

/// The translating bridge and the port map it holds (see `TunnelState::bridge_with_port`).
type Current<'a> = (&'a super::Ofproto, &'a super::PortMap);

/// The local address of tunnel port `t`: `local_ip`, else the route's source.
fn endpoint_ip(ts: &TunnelState, t: &TunnelPort, cur: Current<'_>) -> Option<IpAddr> {
    if let Some(l) = t.config.local {
        return Some(l);
    }
    match t.config.remote {
        FromFlow::Fixed(r) => ts
            .underlay_route(r, std::time::Instant::now(), Some(cur))
            .ok()
            .and_then(|r| r.src),
        FromFlow::Flow => None,
    }
}

/// The interface tunnel port `t` sends and receives through.
fn endpoint_dev(ts: &TunnelState, t: &TunnelPort, cur: Current<'_>) -> Option<String> {
    let now = std::time::Instant::now();
    match (t.config.remote, t.config.local) {
        (FromFlow::Fixed(r), _) => ts.underlay_route(r, now, Some(cur)).ok().map(|r| r.dev),
        // remote_ip=flow: the interface that holds local_ip (its own route is via lo).
        (FromFlow::Flow, Some(l)) => local_dev(l),
        (FromFlow::Flow, None) => None,
    }
}

/// The interface that has address `ip`.
fn local_dev(ip: IpAddr) -> Option<String> {
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we free below.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = ifap;
    while !cur.is_null() {
        // SAFETY: cur walks the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr of the family it names.
        let a = unsafe {
            match (*ifa.ifa_addr).sa_family as i32 {
                libc::AF_INET => {
                    let s = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    Some(IpAddr::from(u32::from_be(s.sin_addr.s_addr).to_be_bytes()))
                }
                libc::AF_INET6 => {
                    let s = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    Some(IpAddr::from(s.sin6_addr.s6_addr))
                }
                _ => None,
            }
        };
        if a == Some(ip) {
            // SAFETY: ifa_name is a NUL-terminated string.
            let n = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
            found = Some(n.to_string_lossy().into_owned());
            break;
        }
    }
    // SAFETY: freeing the list getifaddrs allocated.
    unsafe { libc::freeifaddrs(ifap) };
    found
}

/// An ARP request (IPv4) or neighbour solicitation (IPv6) for `target`.
fn neighbor_request(src_mac: [u8; 6], local: IpAddr, target: IpAddr) -> Option<Vec<u8>> {
    match (local, target) {
        (IpAddr::V4(l), IpAddr::V4(t)) => arp_frame(
            &ethernet::Repr {
                dst: [0xff; 6],
                src: src_mac,
                ..Default::default()
            },
            &arp::Repr {
                oper: arp::op::REQUEST,
                sha: src_mac,
                spa: u32::from(l),
                tha: [0; 6],
                tpa: u32::from(t),
            },
        )
        .ok(),
        (IpAddr::V6(l), IpAddr::V6(t)) => {
            let dst = solicited_node(&t.octets());
            ipv6_frame(
                &ethernet::Repr {
                    dst: v6_multicast_mac(&t.octets()),
                    src: src_mac,
                    ..Default::default()
                },
                &ipv6::Repr {
                    src: l.octets(),
                    dst,
                    next_header: ipproto::ICMPV6,
                    payload_len: 0,
                    hop_limit: 255,
                    traffic_class: 0,
                    flow_label: 0,
                },
                &[],
                &L4::Icmpv6(icmpv6::Repr::NeighborSolicit {
                    target: t.octets(),
                    sll: Some(src_mac),
                }),
            )
            .ok()
        }
        _ => None,
    }
}
