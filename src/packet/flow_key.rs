//! `FlowKey`: every header field the switch can match on, in one fixed-layout struct.
//!
//! The key is `Pod` and 8-byte aligned so the classifier can treat it as an array of
//! `u64` words: masking, hashing and comparing a key against a megaflow then touch only
//! the words that the megaflow's mask cares about (see `FlowMask::nonzero_words`). This is
//! the role OVS's miniflow plays, without the compression: on a 2-core host the simplicity
//! of fixed offsets beats the memory saved.
//!
//! Field conventions (shared with OVS's `struct flow` where OVS has the same field):
//! - integers are host byte order; MACs and IPv6 addresses are network-order byte arrays;
//! - ARP: `nw_proto` holds the opcode (low 8 bits), `nw_src`/`nw_dst` hold SPA/TPA,
//!   `arp_sha`/`arp_tha` hold SHA/THA;
//! - ICMPv4/ICMPv6/IGMP: `tp_src` holds the type and `tp_dst` the code;
//! - IPv6 ND: `nd_target` holds the target, `arp_sha`/`arp_tha` hold the SLL/TLL options;
//! - MLD: `nd_target` holds the multicast address the message is about;
//! - IGMP: `igmp_group` holds the group address of v1/v2 messages (v3 reports carry many
//!   groups and are handled from the packet bytes, not the key).

use bytemuck::{Pod, Zeroable};

use super::meta::TunnelMeta;

/// A datapath port number (OVS's `odp_port_t`). `u32` like the kernel's.
pub type OdpPort = u32;

/// One 802.1Q / 802.1ad tag as it appears on the wire. `tpid == 0` means "no tag here".
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct VlanTag {
    /// Tag protocol identifier: 0x8100 (C-tag) or 0x88a8 (S-tag); 0 when absent.
    pub tpid: u16,
    /// Tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
    pub tci: u16,
}

impl VlanTag {
    /// The 12-bit VLAN id.
    pub fn vid(&self) -> u16 {
        self.tci & 0x0fff
    }
    /// The 3-bit priority code point.
    pub fn pcp(&self) -> u8 {
        (self.tci >> 13) as u8
    }
    /// Whether a tag is present in this slot.
    pub fn present(&self) -> bool {
        self.tpid != 0
    }
}

/// IP fragment state bits stored in `FlowKey::nw_frag`.
pub mod frag {
    /// The packet is a fragment (any).
    pub const ANY: u8 = 1 << 0;
    /// The packet is a later fragment (offset != 0): no L4 header present.
    pub const LATER: u8 = 1 << 1;
}

/// Parse-state flags stored in `FlowKey::parse_flags`. They are part of the key so a
/// malformed packet can never share a megaflow with a well-formed one.
pub mod parse_flag {
    /// The frame ended before a header it announced (counted and usually dropped).
    pub const TRUNCATED: u8 = 1 << 0;
    /// A header was present but invalid (bad IHL, bad version, bad length field).
    pub const MALFORMED: u8 = 1 << 1;
}

/// Tunnel flag bits stored in `FlowKey::tun_flags` (same meanings as OVS's FLOW_TNL_F_*).
pub mod tun_flag {
    /// Don't-fragment was set on the outer header.
    pub const DONT_FRAGMENT: u16 = 1 << 0;
    /// The outer UDP/GRE checksum was present.
    pub const CSUM: u16 = 1 << 1;
    /// A key (VNI / GRE key) was present.
    pub const KEY: u16 = 1 << 2;
    /// Geneve OAM bit.
    pub const OAM: u16 = 1 << 3;
}

/// Every field a flow can match on. See the module docs for the conventions.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct FlowKey {
    // ---- metadata (word 0) ----
    /// Datapath port the packet arrived on.
    pub in_port: OdpPort,
    /// Recirculation id: 0 on first pass, set by a `Recirc` action.
    pub recirc_id: u32,

    // ---- tunnel metadata (words 1..=8) ----
    /// Tunnel id (VXLAN VNI, Geneve VNI, GRE key), 0 when not tunnelled.
    pub tun_id: u64,
    /// Outer IPv4 source (0 when not tunnelled or IPv6 underlay).
    pub tun_ipv4_src: u32,
    /// Outer IPv4 destination.
    pub tun_ipv4_dst: u32,
    /// Outer IPv6 source (all zero for an IPv4 underlay).
    pub tun_ipv6_src: [u8; 16],
    /// Outer IPv6 destination.
    pub tun_ipv6_dst: [u8; 16],
    /// `tun_flag::*` bits.
    pub tun_flags: u16,
    /// Outer TOS / traffic class.
    pub tun_tos: u8,
    /// Outer TTL / hop limit.
    pub tun_ttl: u8,
    /// Outer UDP source port.
    pub tun_tp_src: u16,
    /// Outer UDP destination port.
    pub tun_tp_dst: u16,
    /// One Geneve option: class (16 bits) << 16 | type (8 bits) << 8 | length in 4-byte
    /// words (8 bits); 0 when absent. One matchable option covers the common use.
    pub tun_gnv_opt_hdr: u32,
    /// The first 4 bytes of that Geneve option's data, network order.
    pub tun_gnv_opt_data: u32,

    // ---- L2 (words 9..=11) ----
    /// Destination MAC.
    pub dl_dst: [u8; 6],
    /// Ethertype after any VLAN tags (0x05ff for 802.3 frames without SNAP, as in OVS).
    pub dl_type: u16,
    /// Source MAC.
    pub dl_src: [u8; 6],
    /// `parse_flag::*` bits.
    pub parse_flags: u8,
    /// Padding, always zero.
    pub _pad0: u8,
    /// Outer tag first, inner second.
    pub vlans: [VlanTag; 2],

    // ---- L3 (words 12..=17) ----
    /// IPv4 source, or ARP SPA.
    pub nw_src: u32,
    /// IPv4 destination, or ARP TPA.
    pub nw_dst: u32,
    /// IPv6 source.
    pub ipv6_src: [u8; 16],
    /// IPv6 destination.
    pub ipv6_dst: [u8; 16],
    /// IPv6 flow label (20 bits).
    pub ipv6_label: u32,
    /// IP protocol / IPv6 next header after extension headers, or ARP opcode.
    pub nw_proto: u8,
    /// IPv4 TOS / IPv6 traffic class (DSCP + ECN).
    pub nw_tos: u8,
    /// IPv4 TTL / IPv6 hop limit.
    pub nw_ttl: u8,
    /// `frag::*` bits.
    pub nw_frag: u8,

    // ---- ARP / ND / L4 (words 18..=22) ----
    /// ARP SHA, or ND source link-layer address.
    pub arp_sha: [u8; 6],
    /// TCP/UDP/SCTP source port; ICMP/IGMP type.
    pub tp_src: u16,
    /// ARP THA, or ND target link-layer address.
    pub arp_tha: [u8; 6],
    /// TCP/UDP/SCTP destination port; ICMP/IGMP code.
    pub tp_dst: u16,
    /// ND target, or MLD multicast address.
    pub nd_target: [u8; 16],
    /// IGMPv1/v2 group address.
    pub igmp_group: u32,
    /// TCP flags (12 bits), 0 for other protocols.
    pub tcp_flags: u16,
    /// Padding, always zero.
    pub _pad1: u16,
}

/// Number of 64-bit words in a `FlowKey`.
pub const FLOW_WORDS: usize = core::mem::size_of::<FlowKey>() / 8;
const _: () = assert!(core::mem::size_of::<FlowKey>() % 8 == 0);
const _: () = assert!(FLOW_WORDS <= 64, "nonzero-word bitmaps are u64");

/// A wildcard mask over a `FlowKey`: a 1 bit means "this bit of the key matters".
/// Same layout as `FlowKey`, so the same field names address the same bits.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Pod, Zeroable)]
pub struct FlowMask(pub FlowKey);

impl FlowKey {
    /// Sets the key's tunnel fields from a packet's tunnel metadata (the parser for a
    /// decapsulated packet; the kernel back end's `execute`).
    #[inline(never)]
    pub fn set_tunnel(&mut self, t: &TunnelMeta) {
        self.tun_id = t.tun_id;
        self.tun_ipv4_src = t.ipv4_src;
        self.tun_ipv4_dst = t.ipv4_dst;
        self.tun_ipv6_src = t.ipv6_src;
        self.tun_ipv6_dst = t.ipv6_dst;
        self.tun_flags = t.flags;
        self.tun_tos = t.tos;
        self.tun_ttl = t.ttl;
        self.tun_tp_src = t.tp_src;
        self.tun_tp_dst = t.tp_dst;
        self.tun_gnv_opt_hdr = t.gnv_opt_hdr;
        self.tun_gnv_opt_data = t.gnv_opt_data;
    }

    /// The key's tunnel fields as packet metadata (an upcall from the kernel back end).
    pub fn tunnel(&self) -> TunnelMeta {
        TunnelMeta {
            tun_id: self.tun_id,
            ipv4_src: self.tun_ipv4_src,
            ipv4_dst: self.tun_ipv4_dst,
            ipv6_src: self.tun_ipv6_src,
            ipv6_dst: self.tun_ipv6_dst,
            flags: self.tun_flags,
            tos: self.tun_tos,
            ttl: self.tun_ttl,
            tp_src: self.tun_tp_src,
            tp_dst: self.tun_tp_dst,
            gnv_opt_hdr: self.tun_gnv_opt_hdr,
            gnv_opt_data: self.tun_gnv_opt_data,
        }
    }

    /// The key as words, for masked hashing and comparison.
    #[inline(always)]
    pub fn words(&self) -> &[u64; FLOW_WORDS] {
        bytemuck::cast_ref(self)
    }

    /// Mutable word view.
    #[inline(always)]
    pub fn words_mut(&mut self) -> &mut [u64; FLOW_WORDS] {
        bytemuck::cast_mut(self)
    }

    /// The key with every bit outside `mask` cleared.
    #[inline]
    pub fn masked(&self, mask: &FlowMask) -> FlowKey {
        let mut out = FlowKey::zeroed();
        let (o, k, m) = (out.words_mut(), self.words(), mask.0.words());
        for i in 0..FLOW_WORDS {
            o[i] = k[i] & m[i];
        }
        out
    }

    /// Hash of the whole key, used by the EMC when the port supplies no RSS hash.
    #[inline]
    pub fn hash(&self) -> u32 {
        hash_words(self.words().iter().copied(), 0)
    }

    /// Whether `self & mask == other & mask`.
    #[inline]
    pub fn matches_masked(&self, other: &FlowKey, mask: &FlowMask) -> bool {
        let (a, b, m) = (self.words(), other.words(), mask.0.words());
        (0..FLOW_WORDS).all(|i| (a[i] ^ b[i]) & m[i] == 0)
    }

    /// Whether this packet is IPv4.
    pub fn is_ipv4(&self) -> bool {
        self.dl_type == crate::packet::ethertype::IPV4
    }

    /// Whether this packet is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.dl_type == crate::packet::ethertype::IPV6
    }
}

impl FlowMask {
    /// The mask that matches every bit ("exact match").
    pub fn exact() -> FlowMask {
        let mut m = FlowMask::default();
        m.0.words_mut().iter_mut().for_each(|w| *w = u64::MAX);
        // padding is never significant
        m.0._pad0 = 0;
        m.0._pad1 = 0;
        m
    }

    /// Bitmap of the words that have any bit set: bit i set <=> word i matters.
    #[inline]
    pub fn nonzero_words(&self) -> u64 {
        let mut bits = 0u64;
        for (i, w) in self.0.words().iter().enumerate() {
            if *w != 0 {
                bits |= 1 << i;
            }
        }
        bits
    }

    /// Union of two masks: used by xlate to accumulate consulted fields.
    #[inline]
    pub fn union_with(&mut self, other: &FlowMask) {
        let (a, b) = (self.0.words_mut(), other.0.words());
        for i in 0..FLOW_WORDS {
            a[i] |= b[i];
        }
    }

    /// Whether every bit set in `self` is also set in `other`.
    pub fn is_subset_of(&self, other: &FlowMask) -> bool {
        let (a, b) = (self.0.words(), other.0.words());
        (0..FLOW_WORDS).all(|i| a[i] & !b[i] == 0)
    }
}

/// A fast, non-cryptographic hash over 64-bit words (multiply-rotate, finalised with a
/// murmur3-style avalanche). Used for EMC and dpcls buckets; collisions only cost a compare.
#[inline(always)]
pub fn hash_words(words: impl Iterator<Item = u64>, basis: u32) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = basis as u64 ^ K;
    for w in words {
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h ^ (h >> 32)) as u32
}

/// Hash of `key & mask` over only the words in `word_bits` (from `nonzero_words`):
/// the dpcls subtable hash.
#[inline(always)]
pub fn hash_masked(key: &FlowKey, mask: &FlowMask, word_bits: u64) -> u32 {
    let (k, m) = (key.words(), mask.0.words());
    let mut bits = word_bits;
    hash_words(
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(k[i] & m[i])
        }),
        0,
    )
}

/// Helpers to fill one named field of a mask with all-ones, so that callers (xlate,
/// flow syntax) can write `mask.0.nw_dst = u32::MAX` or use these for arrays.
pub mod fill {
    /// All-ones MAC mask.
    pub const MAC: [u8; 6] = [0xff; 6];
    /// All-ones IPv6 address mask.
    pub const IPV6: [u8; 16] = [0xff; 16];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_word_aligned() {
        assert_eq!(core::mem::size_of::<FlowKey>(), FLOW_WORDS * 8);
        assert_eq!(core::mem::align_of::<FlowKey>(), 8);
    }

    #[test]
    fn masked_match_and_hash_agree() {
        let a = FlowKey {
            nw_dst: 0x0a00_0001,
            tp_dst: 80,
            ..Default::default()
        };
        let mut b = a;
        b.tp_dst = 443;
        let mut m = FlowMask::default();
        m.0.nw_dst = u32::MAX;
        assert!(a.matches_masked(&b, &m));
        let bits = m.nonzero_words();
        assert_eq!(hash_masked(&a, &m, bits), hash_masked(&b, &m, bits));
        m.0.tp_dst = u16::MAX;
        assert!(!a.matches_masked(&b, &m));
    }

    #[test]
    fn exact_mask_has_no_padding_bits() {
        let m = FlowMask::exact();
        assert_eq!(m.0._pad0, 0);
        assert_eq!(m.0._pad1, 0);
        assert_eq!(m.0.in_port, u32::MAX);
    }
}
