//! Committing header changes: turning what the actions wrote into datapath actions.
//!
//! Writes accumulate in `Ctx::pending` (which bits were written) and in the working key
//! (their values); before each output the pending bits become masked `DpAction::Set`s
//! that carry only written bits, and VLAN stack changes become pops and pushes computed
//! by comparing the stack the datapath holds with the one the actions produced.

use super::xlate::Ctx;
use crate::dpif::{DpAction, Masked, SetField};
use crate::packet::{ethertype, ipproto, FlowMask, TunnelMeta, VlanTag};

impl Ctx<'_> {
    pub(super) fn commit(&mut self) {
        let (f, p) = (&self.flow, &mut self.pending.0);
        if p.dl_src != [0; 6] || p.dl_dst != [0; 6] {
            let m = |v: [u8; 6], mk: [u8; 6]| Masked {
                value: std::array::from_fn(|i| v[i] & mk[i]),
                mask: mk,
            };
            self.out.push(DpAction::Set(SetField::Eth {
                src: m(f.dl_src, p.dl_src),
                dst: m(f.dl_dst, p.dl_dst),
            }));
        }
        if self.vlan_dirty {
            let stack = |v: &[VlanTag; 2]| -> Vec<VlanTag> {
                v.iter().take_while(|t| t.present()).copied().collect()
            };
            let (old, new) = (stack(&self.base_vlans), stack(&f.vlans));
            let mut keep = 0;
            while keep < old.len()
                && keep < new.len()
                && old[old.len() - 1 - keep] == new[new.len() - 1 - keep]
            {
                keep += 1;
            }
            for _ in keep..old.len() {
                self.out.push(DpAction::PopVlan);
            }
            for t in new[..new.len() - keep].iter().rev() {
                self.out.push(DpAction::PushVlan(*t));
            }
            self.base_vlans = f.vlans;
            self.vlan_dirty = false;
        }
        let m8 = |v: u8, mk: u8| Masked {
            value: v & mk,
            mask: mk,
        };
        let m32 = |v: u32, mk: u32| Masked {
            value: v & mk,
            mask: mk,
        };
        let m128 = |v: [u8; 16], mk: [u8; 16]| Masked {
            value: std::array::from_fn(|i| v[i] & mk[i]),
            mask: mk,
        };
        if f.dl_type == ethertype::IPV4 && (p.nw_src | p.nw_dst != 0 || p.nw_tos | p.nw_ttl != 0) {
            self.out.push(DpAction::Set(SetField::Ipv4 {
                src: m32(f.nw_src, p.nw_src),
                dst: m32(f.nw_dst, p.nw_dst),
                tos: m8(f.nw_tos, p.nw_tos),
                ttl: m8(f.nw_ttl, p.nw_ttl),
            }));
        }
        if f.dl_type == ethertype::IPV6
            && (p.ipv6_src != [0; 16] || p.ipv6_dst != [0; 16] || p.nw_tos | p.nw_ttl != 0)
        {
            self.out.push(DpAction::Set(SetField::Ipv6 {
                src: m128(f.ipv6_src, p.ipv6_src),
                dst: m128(f.ipv6_dst, p.ipv6_dst),
                tclass: m8(f.nw_tos, p.nw_tos),
                hlimit: m8(f.nw_ttl, p.nw_ttl),
                label: m32(0, 0),
            }));
        }
        if p.tp_src | p.tp_dst != 0 {
            let src = Masked {
                value: f.tp_src & p.tp_src,
                mask: p.tp_src,
            };
            let dst = Masked {
                value: f.tp_dst & p.tp_dst,
                mask: p.tp_dst,
            };
            self.out.push(DpAction::Set(match f.nw_proto {
                ipproto::TCP => SetField::Tcp { src, dst },
                ipproto::UDP => SetField::Udp { src, dst },
                _ => SetField::Sctp { src, dst },
            }));
        }
        if p.tun_id != 0
            || p.tun_ipv4_src != 0
            || p.tun_ipv4_dst != 0
            || p.tun_gnv_opt_hdr != 0
            || p.tun_gnv_opt_data != 0
        {
            // The whole tunnel metadata goes out, so all of it is consulted.
            let w = &mut self.wc.0;
            w.tun_id = u64::MAX;
            w.tun_ipv4_src = u32::MAX;
            w.tun_ipv4_dst = u32::MAX;
            w.tun_ipv6_src = [0xff; 16];
            w.tun_ipv6_dst = [0xff; 16];
            w.tun_flags = u16::MAX;
            w.tun_tos = u8::MAX;
            w.tun_ttl = u8::MAX;
            w.tun_tp_src = u16::MAX;
            w.tun_tp_dst = u16::MAX;
            w.tun_gnv_opt_hdr = u32::MAX;
            w.tun_gnv_opt_data = u32::MAX;
            self.out.push(DpAction::Set(SetField::Tunnel(TunnelMeta {
                tun_id: f.tun_id,
                ipv4_src: f.tun_ipv4_src,
                ipv4_dst: f.tun_ipv4_dst,
                ipv6_src: f.tun_ipv6_src,
                ipv6_dst: f.tun_ipv6_dst,
                flags: f.tun_flags,
                tos: f.tun_tos,
                ttl: f.tun_ttl,
                tp_src: f.tun_tp_src,
                tp_dst: f.tun_tp_dst,
                gnv_opt_hdr: f.tun_gnv_opt_hdr,
                gnv_opt_data: f.tun_gnv_opt_data,
            })));
        }
        self.pending = FlowMask::default();
    }
}
