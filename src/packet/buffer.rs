//! Packet buffers and batches.
//!
//! A `PacketBuf` is a fixed-capacity buffer allocated once (from a `PacketPool`) and
//! recycled forever: the fast path never allocates. The frame starts `HEADROOM` bytes into
//! the buffer so that VLAN pushes and tunnel encapsulation can grow the front in place.

use super::flow_key::OdpPort;

/// Bytes reserved in front of a received frame for pushes and tunnel headers
/// (outer Ethernet 14 + IPv6 40 + UDP 8 + Geneve with options 8+ fits comfortably).
pub const HEADROOM: usize = 256;
/// Largest frame a buffer holds after the headroom (jumbo frames up to ~3.8 KB).
pub const MAX_FRAME: usize = 4096 - HEADROOM;
/// Total buffer size.
pub const BUF_SIZE: usize = HEADROOM + MAX_FRAME;
/// Packets per batch (OVS's NETDEV_MAX_BURST).
pub const MAX_BURST: usize = 32;

/// Tunnel metadata carried with a decapsulated packet (or set before encapsulation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
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

/// Value of `PacketMeta::l3_ofs` / `l4_ofs` when the frame has no such header (or was not
/// parsed yet).
pub const OFS_NONE: u16 = u16::MAX;

/// Per-packet metadata that is not in the frame bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    /// Datapath port the packet arrived on.
    pub in_port: OdpPort,
    /// Recirculation id (0 on the first pass).
    pub recirc_id: u32,
    /// RSS or software hash; valid when `has_hash`.
    pub hash: u32,
    /// Whether `hash` is valid (the port supplied one, or the datapath computed it).
    pub has_hash: bool,
    /// Tunnel metadata after `tnl_pop`, or to use for `tnl_push` with `remote_ip=flow`.
    pub tunnel: TunnelMeta,
    /// Offset of the L3 header (IPv4, IPv6, ARP) in the frame, recorded by
    /// `parse::flow_extract` so header rewrites need not parse again; `OFS_NONE` if absent.
    pub l3_ofs: u16,
    /// Offset of the L4 header (after IPv6 extension headers); `OFS_NONE` if absent, as
    /// for later fragments and headers too short to be valid.
    pub l4_ofs: u16,
    /// IP protocol of the header at `l4_ofs` (meaningful only when `l4_ofs` is set).
    pub l4_proto: u8,
}

impl Default for PacketMeta {
    fn default() -> Self {
        PacketMeta {
            in_port: 0,
            recirc_id: 0,
            hash: 0,
            has_hash: false,
            tunnel: TunnelMeta::default(),
            l3_ofs: OFS_NONE,
            l4_ofs: OFS_NONE,
            l4_proto: 0,
        }
    }
}

/// A frame plus metadata in a recycled buffer.
pub struct PacketBuf {
    buf: Box<[u8]>,
    start: usize,
    len: usize,
    /// Metadata travelling with the frame.
    pub meta: PacketMeta,
}

impl Default for PacketBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for PacketBuf {
    fn clone(&self) -> Self {
        let mut p = PacketBuf::new();
        p.set_data(self.data());
        p.meta = self.meta;
        p
    }
}

impl core::fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PacketBuf")
            .field("len", &self.len)
            .field("meta", &self.meta)
            .finish()
    }
}

impl PacketBuf {
    /// Allocates a new empty buffer. Only pools and tests call this; the fast path reuses.
    pub fn new() -> Self {
        PacketBuf {
            buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
            start: HEADROOM,
            len: 0,
            meta: PacketMeta::default(),
        }
    }

    /// A buffer holding a copy of `frame` (tests and slow paths).
    pub fn from_frame(frame: &[u8]) -> Self {
        let mut p = PacketBuf::new();
        p.set_data(frame);
        p
    }

    /// The frame bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    /// The frame bytes, mutable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }

    /// Frame length.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame is empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Resets the buffer to hold a copy of `frame` at the standard headroom, clearing
    /// metadata. Frames longer than `MAX_FRAME` are truncated (ports count them).
    #[inline]
    pub fn set_data(&mut self, frame: &[u8]) {
        let n = frame.len().min(MAX_FRAME);
        self.start = HEADROOM;
        self.len = n;
        self.buf[HEADROOM..HEADROOM + n].copy_from_slice(&frame[..n]);
        self.meta = PacketMeta::default();
    }

    /// Space available to receive into, at the standard headroom: a port's rx path copies
    /// into this and then calls `set_len`.
    #[inline]
    pub fn rx_space(&mut self) -> &mut [u8] {
        self.start = HEADROOM;
        self.len = 0;
        self.meta = PacketMeta::default();
        &mut self.buf[HEADROOM..]
    }

    /// Sets the frame length after writing into `rx_space`.
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.buf.len() - self.start);
    }

    /// Grows the frame at the front by `n` bytes and returns the new front bytes.
    /// Returns `None` when the headroom is exhausted.
    #[inline]
    pub fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        self.len += n;
        Some(&mut self.buf[self.start..self.start + n])
    }

    /// Removes `n` bytes from the front. Returns false (and changes nothing) if the frame
    /// is shorter than `n`.
    #[inline]
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.start += n;
        self.len -= n;
        true
    }

    /// Opens a gap of `n` bytes at `offset` by moving the first `offset` bytes toward the
    /// front (used by VLAN push: the MACs move, the rest stays). Returns false when the
    /// headroom is exhausted or `offset > len`.
    #[inline]
    pub fn insert_gap(&mut self, offset: usize, n: usize) -> bool {
        if n > self.start || offset > self.len {
            return false;
        }
        let old = self.start;
        self.start -= n;
        self.buf.copy_within(old..old + offset, self.start);
        self.len += n;
        true
    }

    /// Removes `n` bytes at `offset` by moving the first `offset` bytes back (VLAN pop).
    /// Returns false when `offset + n > len`.
    #[inline]
    pub fn remove_gap(&mut self, offset: usize, n: usize) -> bool {
        if offset + n > self.len {
            return false;
        }
        let old = self.start;
        self.buf.copy_within(old..old + offset, old + n);
        self.start += n;
        self.len -= n;
        true
    }
}

/// A batch of up to `MAX_BURST` packets. Backed by a `Vec` with fixed capacity, so pushes
/// within the burst never allocate.
pub struct PacketBatch {
    /// The packets. Invariant: `len() <= MAX_BURST`.
    pub pkts: Vec<PacketBuf>,
}

impl Default for PacketBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketBatch {
    /// An empty batch with room for `MAX_BURST` packets.
    pub fn new() -> Self {
        PacketBatch {
            pkts: Vec::with_capacity(MAX_BURST),
        }
    }
    /// Number of packets.
    pub fn len(&self) -> usize {
        self.pkts.len()
    }
    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }
    /// Whether another packet fits.
    pub fn is_full(&self) -> bool {
        self.pkts.len() >= MAX_BURST
    }
}

/// A free list of packet buffers, one per PMD (or per test): the fast path takes buffers
/// from here on rx and returns them after tx or drop.
pub struct PacketPool {
    free: Vec<PacketBuf>,
}

impl PacketPool {
    /// Preallocates `n` buffers.
    pub fn new(n: usize) -> Self {
        PacketPool {
            free: (0..n).map(|_| PacketBuf::new()).collect(),
        }
    }
    /// Takes a buffer; allocates only if the pool ran dry (sized so that it does not).
    #[inline]
    pub fn get(&mut self) -> PacketBuf {
        self.free.pop().unwrap_or_default()
    }
    /// Returns a buffer to the pool.
    #[inline]
    pub fn put(&mut self, p: PacketBuf) {
        self.free.push(p);
    }
    /// Buffers currently free.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_insert_and_remove_round_trip() {
        let frame: Vec<u8> = (0u8..60).collect();
        let mut p = PacketBuf::from_frame(&frame);
        assert!(p.insert_gap(12, 4));
        assert_eq!(p.len(), 64);
        assert_eq!(&p.data()[..12], &frame[..12]);
        assert_eq!(&p.data()[16..], &frame[12..]);
        assert!(p.remove_gap(12, 4));
        assert_eq!(p.data(), &frame[..]);
        assert!(!p.remove_gap(60, 4));
    }

    #[test]
    fn headroom_is_bounded() {
        let mut p = PacketBuf::from_frame(&[0u8; 10]);
        assert!(p.push_front(HEADROOM).is_some());
        assert!(p.push_front(1).is_none());
    }
}
