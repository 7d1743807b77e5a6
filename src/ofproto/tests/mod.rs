//! Translator tests: syntax, tables, xlate, NORMAL, snooping, and the megaflow invariant.
//! Shared fixtures live here: a bridge whose OpenFlow port i is datapath port 10 + i, on a
//! manual clock, and key builders.

mod kernel_vport;
mod mcast;
mod megaflow;
mod normal;
mod syntax;
mod tables;
mod xlate;

use std::sync::Arc;

use super::*;
use crate::dpif::DpAction;
use crate::packet::{ethertype, FlowKey, VlanTag};

/// A MAC ending in `n`.
pub(super) fn mac(n: u8) -> [u8; 6] {
    [0x50, 0x54, 0, 0, 0, n]
}

/// Datapath port of OpenFlow port `of` in [`bridge`].
pub(super) fn dp(of: u16) -> u32 {
    10 + of as u32
}

/// A bridge with ports 1..=configs.len() (datapath ports 11, 12, ...).
pub(super) fn bridge(config: OfprotoConfig, ports: &[PortConfig]) -> (Ofproto, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let br = Ofproto::with_clock("br0", config, clock.clone());
    for (i, pc) in ports.iter().enumerate() {
        let of = i as u16 + 1;
        assert_eq!(
            br.add_port(&format!("p{of}"), dp(of), None, pc.clone())
                .unwrap(),
            of
        );
    }
    (br, clock)
}

/// A plain bridge with `n` trunk-all ports.
pub(super) fn plain_bridge(n: usize) -> (Ofproto, Arc<ManualClock>) {
    bridge(OfprotoConfig::default(), &vec![PortConfig::default(); n])
}

/// An untagged IPv4/UDP-ish key from OpenFlow port `of`.
pub(super) fn key(of: u16, src: [u8; 6], dst: [u8; 6]) -> FlowKey {
    FlowKey {
        in_port: dp(of),
        dl_src: src,
        dl_dst: dst,
        dl_type: ethertype::IPV4,
        nw_src: 0x0a00_0001,
        nw_dst: 0x0a00_0002,
        nw_proto: 17,
        nw_ttl: 64,
        tp_src: 1000,
        tp_dst: 2000,
        ..Default::default()
    }
}

/// Adds an outer 802.1Q tag.
pub(super) fn tagged(mut k: FlowKey, vid: u16) -> FlowKey {
    k.vlans[0] = VlanTag {
        tpid: 0x8100,
        tci: vid,
    };
    k
}

/// Translates with learning on.
pub(super) fn xl(br: &Ofproto, k: &FlowKey) -> XlateOutput {
    br.translate(&XlateRequest {
        key: k,
        packet: None,
        may_learn: true,
        revalidating: false,
        trace: false,
        now: br.now(),
    })
}

/// Translates a frame with learning on.
pub(super) fn xl_pkt(br: &Ofproto, k: &FlowKey, pkt: &[u8]) -> XlateOutput {
    br.translate(&XlateRequest {
        key: k,
        packet: Some(pkt),
        may_learn: true,
        revalidating: false,
        trace: false,
        now: br.now(),
    })
}

/// The datapath ports a translation outputs to, in order.
pub(super) fn outputs(o: &XlateOutput) -> Vec<u32> {
    o.actions
        .iter()
        .filter_map(|a| match a {
            DpAction::Output(p) => Some(*p),
            _ => None,
        })
        .collect()
}

/// Tag push for VID `vid`.
pub(super) fn push(vid: u16) -> DpAction {
    DpAction::PushVlan(VlanTag {
        tpid: 0x8100,
        tci: vid,
    })
}
