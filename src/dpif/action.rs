//! Datapath actions: what a megaflow does to a packet.
//!
//! These mirror the kernel's OVS_ACTION_ATTR_* set closely enough that `dpif_netlink` can
//! encode them one to one, and are what `dpif_netdev` executes on batches. An empty action
//! list means drop.

use crate::packet::{OdpPort, TunnelMeta, VlanTag};

/// A value and the bits of it to write (OVS_ACTION_ATTR_SET_MASKED).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Masked<T> {
    /// New bits.
    pub value: T,
    /// Which bits to write: 1 = take from `value`, 0 = keep the packet's.
    pub mask: T,
}

/// A masked rewrite of one header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetField {
    /// Ethernet source and destination.
    Eth {
        /// Source MAC.
        src: Masked<[u8; 6]>,
        /// Destination MAC.
        dst: Masked<[u8; 6]>,
    },
    /// IPv4 header fields (checksum fixed incrementally, L4 checksum too for addresses).
    Ipv4 {
        /// Source address.
        src: Masked<u32>,
        /// Destination address.
        dst: Masked<u32>,
        /// TOS byte.
        tos: Masked<u8>,
        /// TTL.
        ttl: Masked<u8>,
    },
    /// IPv6 header fields (L4 checksum fixed for addresses).
    Ipv6 {
        /// Source address.
        src: Masked<[u8; 16]>,
        /// Destination address.
        dst: Masked<[u8; 16]>,
        /// Traffic class.
        tclass: Masked<u8>,
        /// Hop limit.
        hlimit: Masked<u8>,
        /// Flow label (20 bits).
        label: Masked<u32>,
    },
    /// TCP ports.
    Tcp {
        /// Source port.
        src: Masked<u16>,
        /// Destination port.
        dst: Masked<u16>,
    },
    /// UDP ports.
    Udp {
        /// Source port.
        src: Masked<u16>,
        /// Destination port.
        dst: Masked<u16>,
    },
    /// SCTP ports.
    Sctp {
        /// Source port.
        src: Masked<u16>,
        /// Destination port.
        dst: Masked<u16>,
    },
    /// Tunnel metadata for a following output to a tunnel port (kernel back end style).
    Tunnel(TunnelMeta),
}

/// Tunnel encapsulation formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelType {
    /// VXLAN over UDP.
    Vxlan,
    /// Geneve over UDP.
    Geneve,
    /// GRE (with optional key and checksum).
    Gre,
}

/// A prebuilt outer header to prepend (userspace datapath's native tunnelling).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TnlPush {
    /// Tunnel port this encapsulation belongs to (for stats and tracing).
    pub tnl_port: OdpPort,
    /// Underlay port to send the encapsulated packet out of.
    pub out_port: OdpPort,
    /// Encapsulation format.
    pub tnl_type: TunnelType,
    /// Outer Ethernet + IP + UDP/GRE + tunnel header bytes, lengths and checksums to be
    /// completed per packet.
    pub header: Vec<u8>,
}

/// One datapath action.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DpAction {
    /// Send a copy out of a port.
    Output(OdpPort),
    /// Push an 802.1Q/802.1ad tag.
    PushVlan(VlanTag),
    /// Remove the outermost tag.
    PopVlan,
    /// Masked rewrite of header fields.
    Set(SetField),
    /// Run the packet through the datapath again with this recirculation id.
    Recirc(u32),
    /// Send the packet to the translator (slow path), with a cookie saying why.
    Userspace {
        /// Opaque to the datapath; returned in `UpcallKind::Action`.
        cookie: u64,
    },
    /// Encapsulate and send (userspace datapath).
    TnlPush(TnlPush),
    /// Decapsulate as the given tunnel port and recirculate with tunnel metadata.
    TnlPop(OdpPort),
    /// Run the nested actions on a copy, leaving the original untouched.
    Clone(Vec<DpAction>),
    /// With probability `probability / u32::MAX`, run the nested actions on a copy.
    Sample {
        /// Probability scaled to `u32::MAX`.
        probability: u32,
        /// Actions for sampled packets.
        actions: Vec<DpAction>,
    },
}
