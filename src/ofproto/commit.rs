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
        if p.tunnel() != TunnelMeta::NONE {
            // The whole tunnel metadata goes out, so all of it is consulted.
            self.wc.0.set_tunnel(&TunnelMeta::EXACT);
            self.out.push(DpAction::Set(SetField::Tunnel(f.tunnel())));
        }
        self.pending = FlowMask::default();
    }

    /// Forgets the tunnel fields the actions wrote: they leave in an encapsulation header
    /// or a whole `set(tunnel(...))` that the caller emits, and `commit` must not emit
    /// them a second time.
    pub(super) fn forget_written_tunnel(&mut self) {
        self.pending.0.set_tunnel(&TunnelMeta::NONE);
    }
}
