//! IPv6 headers (RFC 8200) and the extension headers the parser walks past to reach L4.

use super::{checksum, need, rd16, rd32, rd_arr, wr16, wr32, WireError, WireResult};

/// Byte offsets within the IPv6 header and its extension headers.
pub mod field {
    /// Version (4), traffic class (8), flow label (20).
    pub const VER_TC_FL: usize = 0;
    /// Payload length (everything after the fixed header).
    pub const PAYLOAD_LEN: usize = 4;
    /// Next header.
    pub const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC_ADDR: usize = 8;
    /// Destination address.
    pub const DST_ADDR: usize = 24;
    /// Fixed header length.
    pub const HEADER_LEN: usize = 40;
    /// Extension header: next header.
    pub const EXT_NEXT_HEADER: usize = 0;
    /// Extension header: length in 8-byte units, not counting the first 8 bytes.
    pub const EXT_LEN: usize = 1;
    /// Fragment header: offset (13 bits, 8-byte units) << 3 | M flag.
    pub const FRAG_OFF_M: usize = 2;
    /// Fragment header: identification.
    pub const FRAG_IDENT: usize = 4;
    /// Fragment header length.
    pub const FRAG_LEN: usize = 8;
}

/// Extension header protocol numbers the parser skips.
pub mod ext {
    /// Hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing header.
    pub const ROUTING: u8 = 43;
    /// Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header (length in 4-byte units).
    pub const AUTH: u8 = 51;
    /// Destination options.
    pub const DEST_OPTS: u8 = 60;
    /// No next header.
    pub const NO_NEXT: u8 = 59;
}

/// A view of an IPv6 fixed header and its payload.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer, checking the version and that the payload length fits.
    pub fn new_checked(buffer: T) -> WireResult<Self> {
        need("ipv6", buffer.as_ref().len(), field::HEADER_LEN)?;
        let p = Packet { buffer };
        if p.version() != 6 {
            return Err(WireError::Malformed {
                proto: "ipv6",
                reason: "version is not 6",
            });
        }
        need(
            "ipv6",
            p.buffer.as_ref().len(),
            field::HEADER_LEN + p.payload_len() as usize,
        )?;
        Ok(p)
    }
    /// Releases the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Version nibble.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    /// Traffic class.
    pub fn traffic_class(&self) -> u8 {
        (rd32(self.buffer.as_ref(), field::VER_TC_FL) >> 20) as u8
    }
    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::VER_TC_FL) & 0x000f_ffff
    }
    /// Payload length.
    pub fn payload_len(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }
    /// Next header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }
    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }
    /// Source address.
    pub fn src_addr(&self) -> [u8; 16] {
        rd_arr(self.buffer.as_ref(), field::SRC_ADDR)
    }
    /// Destination address.
    pub fn dst_addr(&self) -> [u8; 16] {
        rd_arr(self.buffer.as_ref(), field::DST_ADDR)
    }
    /// The payload, bounded by the payload length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..field::HEADER_LEN + self.payload_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 6, traffic class and flow label.
    pub fn set_ver_tc_fl(&mut self, tc: u8, label: u32) {
        let v = (6u32 << 28) | ((tc as u32) << 20) | (label & 0x000f_ffff);
        wr32(self.buffer.as_mut(), field::VER_TC_FL, v);
    }
    /// Sets the payload length.
    pub fn set_payload_len(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::PAYLOAD_LEN, v);
    }
    /// Sets the next header.
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }
    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }
    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[field::SRC_ADDR..field::SRC_ADDR + 16].copy_from_slice(&a);
    }
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: [u8; 16]) {
        self.buffer.as_mut()[field::DST_ADDR..field::DST_ADDR + 16].copy_from_slice(&a);
    }
}

/// The IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repr {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Next header (first extension header or the L4 protocol).
    pub next_header: u8,
    /// Payload length (extension headers + L4).
    pub payload_len: u16,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Repr {
    /// Parses a checked view.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> WireResult<Repr> {
        Ok(Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: p.payload_len(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
            flow_label: p.flow_label(),
        })
    }
    /// Header length when emitted.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN
    }
    /// Writes the 40-byte header to the front of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> WireResult<()> {
        need("ipv6", buf.len(), field::HEADER_LEN)?;
        let mut p = Packet::new_unchecked(buf);
        p.set_ver_tc_fl(self.traffic_class, self.flow_label);
        p.set_payload_len(self.payload_len);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        Ok(())
    }
    /// Partial checksum sum of this header's pseudo-header for an upper layer of
    /// `l4_len` bytes and protocol `proto`.
    pub fn pseudo_sum(&self, proto: u8, l4_len: u32) -> u32 {
        checksum::pseudo_header_v6(&self.src, &self.dst, proto, l4_len)
    }
}

/// An extension header the switch knows how to build: hop-by-hop, routing or destination
/// options (a generic TLV-area header padded to 8 bytes), or a fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtRepr {
    /// Hop-by-hop, routing (43) or destination options (60): `kind` is the protocol number
    /// of this header; `len8` is its length in 8-byte units minus one. Its body is emitted
    /// as PadN padding (routing: type 0 with segments-left 0, which receivers ignore).
    Options {
        /// This header's protocol number (0, 43 or 60).
        kind: u8,
        /// Header that follows.
        next_header: u8,
        /// Length in 8-byte units, minus one.
        len8: u8,
    },
    /// Fragment header.
    Fragment {
        /// Header that follows (in the first fragment, the L4 protocol).
        next_header: u8,
        /// Offset in bytes (multiple of 8).
        offset: u16,
        /// More fragments follow.
        more: bool,
        /// Identification.
        ident: u32,
    },
}

impl ExtRepr {
    /// This header's protocol number (what the preceding header's next-header must say).
    pub fn kind(&self) -> u8 {
        match *self {
            ExtRepr::Options { kind, .. } => kind,
            ExtRepr::Fragment { .. } => ext::FRAGMENT,
        }
    }
    /// Length on the wire.
    pub fn len(&self) -> usize {
        match *self {
            ExtRepr::Options { len8, .. } => (len8 as usize + 1) * 8,
            ExtRepr::Fragment { .. } => field::FRAG_LEN,
        }
    }
    /// Always false: every extension header has at least 8 bytes.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Writes the header to the front of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> WireResult<()> {
        need("ipv6 ext", buf.len(), self.len())?;
        match *self {
            ExtRepr::Options {
                kind,
                next_header,
                len8,
            } => {
                let n = self.len();
                buf[..n].fill(0);
                buf[0] = next_header;
                buf[1] = len8;
                if kind == ext::ROUTING {
                    // routing type 253 (RFC 4727 experimental) with segments left 0
                    buf[2] = 253;
                    buf[3] = 0;
                } else {
                    // one PadN option covering the 6 remaining bytes + the rest
                    buf[2] = 1;
                    buf[3] = (n - 4) as u8;
                }
            }
            ExtRepr::Fragment {
                next_header,
                offset,
                more,
                ident,
            } => {
                buf[0] = next_header;
                buf[1] = 0;
                wr16(buf, field::FRAG_OFF_M, (offset & !7) | more as u16);
                wr32(buf, field::FRAG_IDENT, ident);
            }
        }
        Ok(())
    }
}

/// Where the extension-header walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtChain {
    /// The upper-layer protocol (or the next header of a later fragment).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 payload.
    pub l4_offset: usize,
    /// A fragment header was present.
    pub fragment: bool,
    /// The fragment offset was non-zero: no upper-layer header follows.
    pub later_fragment: bool,
}

/// Walks hop-by-hop, routing, fragment, destination-options and AH headers starting at
/// `payload[0]` with protocol `next`. Stops at the first other protocol, or after a later
/// fragment's header. Errors if a header is cut off.
#[inline]
pub fn walk_ext_headers(mut next: u8, payload: &[u8]) -> WireResult<ExtChain> {
    let mut off = 0usize;
    let mut chain = ExtChain::default();
    // bound the walk: each header is >= 8 bytes, so the payload bounds it anyway
    loop {
        match next {
            ext::HOP_BY_HOP | ext::ROUTING | ext::DEST_OPTS | ext::AUTH => {
                need("ipv6 ext", payload.len(), off + 2)?;
                let len = if next == ext::AUTH {
                    (payload[off + 1] as usize + 2) * 4
                } else {
                    (payload[off + 1] as usize + 1) * 8
                };
                need("ipv6 ext", payload.len(), off + len)?;
                next = payload[off];
                off += len;
            }
            ext::FRAGMENT => {
                need("ipv6 fragment", payload.len(), off + field::FRAG_LEN)?;
                chain.fragment = true;
                let fo = rd16(payload, off + field::FRAG_OFF_M);
                next = payload[off];
                off += field::FRAG_LEN;
                if fo & 0xfff8 != 0 {
                    chain.later_fragment = true;
                    break;
                }
            }
            _ => break,
        }
    }
    chain.protocol = next;
    chain.l4_offset = off;
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_chain_walk() {
        let hbh = ExtRepr::Options {
            kind: ext::HOP_BY_HOP,
            next_header: ext::ROUTING,
            len8: 0,
        };
        let rt = ExtRepr::Options {
            kind: ext::ROUTING,
            next_header: ext::FRAGMENT,
            len8: 1,
        };
        let fr = ExtRepr::Fragment {
            next_header: 6,
            offset: 0,
            more: true,
            ident: 9,
        };
        let mut buf = vec![0u8; 8 + 16 + 8 + 20];
        hbh.emit(&mut buf[0..]).unwrap();
        rt.emit(&mut buf[8..]).unwrap();
        fr.emit(&mut buf[24..]).unwrap();
        let c = walk_ext_headers(ext::HOP_BY_HOP, &buf).unwrap();
        assert_eq!(
            c,
            ExtChain {
                protocol: 6,
                l4_offset: 32,
                fragment: true,
                later_fragment: false
            }
        );
        assert!(walk_ext_headers(ext::HOP_BY_HOP, &buf[..20]).is_err());
        let fr2 = ExtRepr::Fragment {
            next_header: 17,
            offset: 1448,
            more: false,
            ident: 9,
        };
        fr2.emit(&mut buf[24..]).unwrap();
        let c = walk_ext_headers(ext::HOP_BY_HOP, &buf).unwrap();
        assert!(c.later_fragment && c.protocol == 17);
    }

    #[test]
    fn header_round_trip() {
        let r = Repr {
            src: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            dst: [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16],
            next_header: 58,
            payload_len: 0,
            hop_limit: 1,
            traffic_class: 0x12,
            flow_label: 0xabcde,
        };
        let mut buf = [0u8; 40];
        r.emit(&mut buf).unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), r);
        buf[0] = 0x40;
        assert!(Packet::new_checked(&buf[..]).is_err());
    }
}
