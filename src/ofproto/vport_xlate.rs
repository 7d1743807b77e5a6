//! Output to a tunnel port on the kernel datapath. There the tunnel port is a kernel
//! vport (a flow-based vxlan/geneve/gre device, or the module's compat vport) that
//! encapsulates and routes by itself: the translator only says where the packet goes,
//! as `set(tunnel(tun_id, dst, src, tos, ttl, flags, tp_dst))` followed by
//! `output(vport)`, much as OVS's kernel datapath is driven. No underlay bridge, route
//! or neighbour cache of ours is involved. Packets the vport decapsulates arrive with
//! in_port = the vport and the tun_* fields already in the key, so ingress needs nothing
//! here: the bridge matches them like any other port's (and `tunnel_ingress_ok` checks
//! the port's fixed key / remote, un-wildcarding what it reads).

use std::net::IpAddr;

use super::tunnel::FromFlow;
use super::xlate::Ctx;
use crate::dpif::{DpAction, SetField, TunnelType};
use crate::packet::flow_key::tun_flag;
use crate::packet::{OdpPort, TunnelMeta};

impl Ctx<'_> {
    /// For a packet a kernel vport decapsulated: its outer destination is un-wildcarded,
    /// because the module takes a megaflow's tunnel match only with a tunnel destination
    /// in the key (a mask on tun_id alone would be installed as "tun_id 0, not
    /// tunnelled" and never match, sending every such packet up). Matching more than was
    /// consulted keeps the megaflow correct; it only splits it per local endpoint.
    pub(super) fn kernel_tunnel_ingress(&mut self) {
        if self.flow.tun_ipv4_dst != 0 {
            self.wc.0.tun_ipv4_dst = u32::MAX;
        } else if self.flow.tun_ipv6_dst != [0; 16] {
            self.wc.0.tun_ipv6_dst = [0xff; 16];
        }
    }

    /// On a kernel-vport bridge: emits output to `dp` as `set(tunnel)` + output when `dp`
    /// is a tunnel port (or drops the packet, with a trace note, when the port takes its
    /// remote from the flow and the flow has none). Returns whether `dp` was a tunnel port.
    pub(super) fn kernel_vport_emit(&mut self, dp: OdpPort) -> bool {
        let Some(t) = self.bridge.tunnels().and_then(|ts| ts.port(dp)) else {
            return false;
        };
        let c = &t.config;
        let Some((remote, key)) = self.tunnel_endpoint(&t) else {
            return true;
        };
        let mut meta = TunnelMeta {
            tun_id: key,
            tos: c.tos,
            ttl: c.ttl,
            ..TunnelMeta::default()
        };
        match (remote, c.local) {
            (IpAddr::V4(r), l) => {
                meta.ipv4_dst = u32::from(r);
                if let Some(IpAddr::V4(l)) = l {
                    meta.ipv4_src = u32::from(l);
                }
            }
            (IpAddr::V6(r), l) => {
                meta.ipv6_dst = r.octets();
                if let Some(IpAddr::V6(l)) = l {
                    meta.ipv6_src = l.octets();
                }
            }
        }
        // GRE without a key sends none; VXLAN and Geneve always carry their VNI.
        if c.kind != TunnelType::Gre || key != 0 || c.key == FromFlow::Flow {
            meta.flags |= tun_flag::KEY;
        }
        if c.df {
            meta.flags |= tun_flag::DONT_FRAGMENT;
        }
        if c.csum {
            meta.flags |= tun_flag::CSUM;
        }
        if c.kind != TunnelType::Gre {
            meta.tp_dst = c.dst_port;
        }
        if c.kind == TunnelType::Geneve && self.flow.tun_gnv_opt_hdr != 0 {
            // A Geneve option in the flow (set by set_field, or received) goes out too.
            self.wc.0.tun_gnv_opt_hdr = u32::MAX;
            self.wc.0.tun_gnv_opt_data = u32::MAX;
            meta.gnv_opt_hdr = self.flow.tun_gnv_opt_hdr;
            meta.gnv_opt_data = self.flow.tun_gnv_opt_data;
        } else if c.kind == TunnelType::Geneve {
            self.wc.0.tun_gnv_opt_hdr = u32::MAX;
        }
        // The tunnel metadata goes out whole in the set below, not through `commit`.
        self.forget_written_tunnel();
        self.commit();
        if self.tracing() {
            self.note(format_args!(
                "tunnel {}: kernel vport encapsulates to {remote}, key {key:#x}",
                t.name
            ));
        }
        self.out.push(DpAction::Set(SetField::Tunnel(meta)));
        self.out.push(DpAction::Output(dp));
        true
    }
}
