//! Packets: buffers with metadata, header parsing into a `FlowKey`, header rewrite.
//!
//! This module depends on nothing else in the crate (except that `rewrite` executes the
//! datapath's `SetField` actions): the datapath, the translator and the kernel back end
//! all speak its types.
//!
//! - `wire`: typed views and `Repr`s of every header, checksum helpers, frame building;
//! - `meta`: what travels with a frame outside its bytes (ports, offsets, tunnel);
//! - `parse`: the fast-path parser filling a `FlowKey` and header offsets;
//! - `rewrite`: VLAN push/pop and masked set-field with checksum upkeep;
//! - `tunnel`: VXLAN/Geneve/GRE header building, per-packet push, validated pop.

pub mod buffer;
pub mod flow_key;
pub mod frames;
pub mod huge_array;
pub mod meta;
pub mod parse;
pub mod prefetch;
pub mod rewrite;
pub mod tunnel;
pub mod wire;

pub use buffer::{PacketBatch, PacketBuf, PacketPool, MAX_BURST};
pub use flow_key::{FlowKey, FlowMask, OdpPort, VlanTag, FLOW_WORDS};
pub use meta::{PacketMeta, TunnelMeta, OFS_NONE};

/// Ethertypes the parser knows (host byte order).
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// RARP.
    pub const RARP: u16 = 0x8035;
    /// 802.1Q C-tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad S-tag.
    pub const QINQ: u16 = 0x88a8;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// What OVS stores in dl_type for 802.3 frames without a SNAP header.
    pub const NONE: u16 = 0x05ff;
}

/// IP protocol numbers the parser knows.
pub mod ipproto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IGMP.
    pub const IGMP: u8 = 2;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// GRE.
    pub const GRE: u8 = 47;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
}
