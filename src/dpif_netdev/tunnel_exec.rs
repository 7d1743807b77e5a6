//! Native tunnel actions of the userspace datapath: `tnl_push` (prepend the translator's
//! prebuilt outer header and send out of the underlay port) and `tnl_pop` (validate and
//! strip the outer header, then recirculate as the tunnel port with tunnel metadata).
//!
//! The actions themselves run in `execute.rs`; this module holds what they need to know
//! about ports: the underlay MTU (a frame that would exceed it is counted in
//! `tnl_mtu_drops` and dropped) and a tunnel vport's encapsulation (so `tnl_pop` checks
//! for the right header even on a non-standard UDP port; failures are `tnl_pop_errors`).

use super::pmd_datapath::PmdDatapath;
use crate::dpif::TunnelType;
use crate::netdev::tunnel::tunnel_type_of;
use crate::netdev::Netdev;
use crate::packet::wire::ethernet;
use crate::packet::OdpPort;

/// What a poll thread needs to know about a port besides its tx queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxPortInfo {
    /// The device's MTU (IP bytes after the Ethernet header); 0 = not checked.
    pub mtu: u32,
    /// For a tunnel vport, the encapsulation `tnl_pop` expects.
    pub tunnel: Option<TunnelType>,
}

impl TxPortInfo {
    /// The MTU and tunnel type of `netdev`.
    pub fn of(netdev: &dyn Netdev) -> Self {
        let mtu = netdev.mtu();
        TxPortInfo {
            mtu: if mtu == u32::MAX { 0 } else { mtu },
            tunnel: tunnel_type_of(netdev.netdev_type()),
        }
    }
}

/// Whether an encapsulated frame is larger than `mtu` (0 = unchecked). The MTU counts
/// the bytes after the Ethernet header (and after an 802.1Q tag, which a NIC does not
/// count either).
pub(super) fn exceeds_mtu(frame: &[u8], mtu: usize) -> bool {
    let mut hdr = ethernet::field::HEADER_LEN;
    if frame.len() >= 18 && frame[12] == 0x81 && frame[13] == 0x00 {
        hdr += 4;
    }
    mtu != 0 && frame.len().saturating_sub(hdr) > mtu
}

impl PmdDatapath {
    /// The MTU of `port` as this thread knows it (0 = unknown, not checked).
    pub(super) fn underlay_mtu(&self, port: OdpPort) -> usize {
        self.tx_ports
            .iter()
            .find(|p| p.port == port)
            .map_or(0, |p| p.info.mtu) as usize
    }

    /// The encapsulation tunnel vport `port` expects, or `None` when `port` is not a
    /// tunnel vport of this datapath (then `tnl_pop` recognises VXLAN, Geneve and GRE by
    /// protocol and well-known port).
    pub(super) fn tunnel_kind(&self, port: OdpPort) -> Option<TunnelType> {
        self.tx_ports
            .iter()
            .find(|p| p.port == port)
            .and_then(|p| p.info.tunnel)
    }
}
