//! Per-packet metadata: what travels with a frame but is not in its bytes (the input
//! port, the recirculation id, the parsed header offsets, the tunnel a packet came from
//! or goes to). Kept apart from the buffer that carries it because the parser, the
//! rewriters, the tunnel code and the kernel back end read it without caring where the
//! bytes live.

use super::flow_key::OdpPort;

/// Tunnel metadata carried with a decapsulated packet (or set before encapsulation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TunnelMeta {
    /// Tunnel id (VNI / key).
    pub tun_id: u64,
    /// Outer IPv4 source/destination (0 for IPv6 underlays).
    pub ipv4_src: u32,
    /// Outer IPv4 destination.
    pub ipv4_dst: u32,
    /// Outer IPv6 source (zero for IPv4 underlays).
    pub ipv6_src: [u8; 16],
    /// Outer IPv6 destination.
    pub ipv6_dst: [u8; 16],
    /// `flow_key::tun_flag` bits.
    pub flags: u16,
    /// Outer TOS.
    pub tos: u8,
    /// Outer TTL.
    pub ttl: u8,
    /// Outer transport source port.
    pub tp_src: u16,
    /// Outer transport destination port.
    pub tp_dst: u16,
    /// First Geneve option header (class<<16 | type<<8 | len), 0 if none.
    pub gnv_opt_hdr: u32,
    /// First 4 bytes of that option's data.
    pub gnv_opt_data: u32,
}

impl TunnelMeta {
    /// No tunnel: what a packet that met none reads (all zero, as a key without tunnel
    /// fields).
    pub const NONE: TunnelMeta = TunnelMeta {
        tun_id: 0,
        ipv4_src: 0,
        ipv4_dst: 0,
        ipv6_src: [0; 16],
        ipv6_dst: [0; 16],
        flags: 0,
        tos: 0,
        ttl: 0,
        tp_src: 0,
        tp_dst: 0,
        gnv_opt_hdr: 0,
        gnv_opt_data: 0,
    };
}

impl TunnelMeta {
    /// Every bit set: as a mask (`FlowKey::set_tunnel` on a megaflow's mask), the
    /// whole tunnel matched exactly, as a flow must be when its actions set it whole.
    pub const EXACT: TunnelMeta = TunnelMeta {
        tun_id: u64::MAX,
        ipv4_src: u32::MAX,
        ipv4_dst: u32::MAX,
        ipv6_src: [0xff; 16],
        ipv6_dst: [0xff; 16],
        flags: u16::MAX,
        tos: u8::MAX,
        ttl: u8::MAX,
        tp_src: u16::MAX,
        tp_dst: u16::MAX,
        gnv_opt_hdr: u32::MAX,
        gnv_opt_data: u32::MAX,
    };
}

impl Default for TunnelMeta {
    fn default() -> Self {
        Self::NONE
    }
}

/// Value of `PacketMeta::l3_ofs` / `l4_ofs` when the frame has no such header (or was not
/// parsed yet).
pub const OFS_NONE: u16 = u16::MAX;

/// Per-packet metadata that is not in the frame bytes.
///
/// Laid out so that everything but the tunnel metadata shares the `PacketBody`'s first
/// cache line with the buffer's own fields: a packet that never met a tunnel costs its
/// receive, parse, transmit and recycling one line of the body, not two. The tunnel
/// metadata (64 bytes, the second line) is read only when `tunneled` says it was set,
/// and is reached through `tunnel` / `set_tunnel` so that no path can read stale bytes.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct PacketMeta {
    /// Datapath port the packet arrived on.
    pub in_port: OdpPort,
    /// Recirculation id (0 on the first pass).
    pub recirc_id: u32,
    /// RSS or software hash; valid when `has_hash`.
    pub hash: u32,
    /// Offset of the L3 header (IPv4, IPv6, ARP) in the frame, recorded by
    /// `parse::flow_extract` so header rewrites need not parse again; `OFS_NONE` if absent.
    pub l3_ofs: u16,
    /// Offset of the L4 header (after IPv6 extension headers); `OFS_NONE` if absent, as
    /// for later fragments and headers too short to be valid.
    pub l4_ofs: u16,
    /// Whether `hash` is valid (the port supplied one, or the datapath computed it).
    pub has_hash: bool,
    /// IP protocol of the header at `l4_ofs` (meaningful only when `l4_ofs` is set).
    pub l4_proto: u8,
    /// Whether `tunnel` holds metadata (set by `set_tunnel`); when not, its bytes are
    /// whatever an earlier packet left and `tunnel()` reads as the default.
    tunneled: bool,
    /// Tunnel metadata after `tnl_pop`, or to use for `tnl_push` with `remote_ip=flow`.
    tunnel: TunnelMeta,
}

impl Default for PacketMeta {
    fn default() -> Self {
        PacketMeta {
            in_port: 0,
            recirc_id: 0,
            hash: 0,
            l3_ofs: OFS_NONE,
            l4_ofs: OFS_NONE,
            has_hash: false,
            l4_proto: 0,
            tunneled: false,
            tunnel: TunnelMeta::NONE,
        }
    }
}

impl PacketMeta {
    /// The default metadata of a packet arriving on datapath port `in_port`.
    pub fn for_port(in_port: OdpPort) -> Self {
        PacketMeta {
            in_port,
            ..Default::default()
        }
    }

    /// The tunnel metadata (all zero for a packet that met no tunnel).
    #[inline(always)]
    pub fn tunnel(&self) -> &TunnelMeta {
        if self.tunneled {
            &self.tunnel
        } else {
            &TunnelMeta::NONE
        }
    }

    /// Whether tunnel metadata was set: the parser copies it into the key only then.
    #[inline(always)]
    pub fn is_tunneled(&self) -> bool {
        self.tunneled
    }

    /// Sets the tunnel metadata (decapsulation, `set_field` of tunnel fields).
    #[inline]
    pub fn set_tunnel(&mut self, t: TunnelMeta) {
        self.tunnel = t;
        self.tunneled = true;
    }

    /// Back to the default, writing only the first line: the tunnel's bytes stay as
    /// they were, unreachable until the next `set_tunnel`.
    #[inline(always)]
    pub fn reset(&mut self) {
        self.in_port = 0;
        self.recirc_id = 0;
        self.hash = 0;
        self.l3_ofs = OFS_NONE;
        self.l4_ofs = OFS_NONE;
        self.has_hash = false;
        self.l4_proto = 0;
        self.tunneled = false;
    }
}

impl PartialEq for PacketMeta {
    fn eq(&self, o: &Self) -> bool {
        (
            self.in_port,
            self.recirc_id,
            self.hash,
            self.has_hash,
            self.l3_ofs,
            self.l4_ofs,
            self.l4_proto,
        ) == (
            o.in_port,
            o.recirc_id,
            o.hash,
            o.has_hash,
            o.l3_ofs,
            o.l4_ofs,
            o.l4_proto,
        ) && self.tunnel() == o.tunnel()
    }
}

impl Eq for PacketMeta {}

impl core::fmt::Debug for PacketMeta {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PacketMeta")
            .field("in_port", &self.in_port)
            .field("recirc_id", &self.recirc_id)
            .field("hash", &self.hash)
            .field("has_hash", &self.has_hash)
            .field("tunnel", self.tunnel())
            .field("l3_ofs", &self.l3_ofs)
            .field("l4_ofs", &self.l4_ofs)
            .field("l4_proto", &self.l4_proto)
            .finish()
    }
}

/// Where the tunnel metadata starts in `PacketMeta`: `PacketBody` checks that this puts
/// it at the start of its second cache line.
pub(super) const TUNNEL_OFFSET: usize = core::mem::offset_of!(PacketMeta, tunnel);
