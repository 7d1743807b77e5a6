//! IPv4 headers (RFC 791).

use super::{checksum, need, rd16, rd32, wr16, wr32, WireError, WireResult};

/// Byte offsets within the IPv4 header.
pub mod field {
    /// Version (high nibble) and IHL (low nibble, in 4-byte words).
    pub const VER_IHL: usize = 0;
    /// DSCP + ECN.
    pub const TOS: usize = 1;
    /// Total length of header + payload.
    pub const LENGTH: usize = 2;
    /// Identification.
    pub const IDENT: usize = 4;
    /// Flags (3 bits) and fragment offset (13 bits, in 8-byte units).
    pub const FLG_OFF: usize = 6;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol of the payload.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: usize = 10;
    /// Source address.
    pub const SRC_ADDR: usize = 12;
    /// Destination address.
    pub const DST_ADDR: usize = 16;
    /// Header length without options.
    pub const HEADER_LEN: usize = 20;
    /// Don't-fragment flag within FLG_OFF.
    pub const DF: u16 = 0x4000;
    /// More-fragments flag within FLG_OFF.
    pub const MF: u16 = 0x2000;
    /// Fragment offset bits within FLG_OFF.
    pub const OFFSET_MASK: u16 = 0x1fff;
}

/// A view of an IPv4 header and its payload.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer, checking the version, that IHL >= 5, and that the buffer holds the
    /// header with options and the total length it announces.
    pub fn new_checked(buffer: T) -> WireResult<Self> {
        let b = buffer.as_ref();
        need("ipv4", b.len(), field::HEADER_LEN)?;
        let p = Packet { buffer };
        if p.version() != 4 {
            return Err(WireError::Malformed {
                proto: "ipv4",
                reason: "version is not 4",
            });
        }
        if p.header_len() < field::HEADER_LEN {
            return Err(WireError::Malformed {
                proto: "ipv4",
                reason: "IHL below 5",
            });
        }
        need("ipv4", p.buffer.as_ref().len(), p.header_len())?;
        if (p.total_len() as usize) < p.header_len() {
            return Err(WireError::Malformed {
                proto: "ipv4",
                reason: "total length shorter than header",
            });
        }
        need("ipv4", p.buffer.as_ref().len(), p.total_len() as usize)?;
        Ok(p)
    }
    /// Releases the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// IP version nibble.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize) * 4
    }
    /// TOS byte (DSCP + ECN).
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }
    /// Total length.
    pub fn total_len(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::LENGTH)
    }
    /// Identification.
    pub fn ident(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::IDENT)
    }
    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        rd16(self.buffer.as_ref(), field::FLG_OFF) & field::DF != 0
    }
    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        rd16(self.buffer.as_ref(), field::FLG_OFF) & field::MF != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (rd16(self.buffer.as_ref(), field::FLG_OFF) & field::OFFSET_MASK) << 3
    }
    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    /// Payload protocol.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }
    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Source address.
    pub fn src_addr(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::SRC_ADDR)
    }
    /// Destination address.
    pub fn dst_addr(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::DST_ADDR)
    }
    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(&self.buffer.as_ref()[..self.header_len()], 0)
    }
    /// The payload, bounded by the total length (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the header length in bytes (multiple of 4).
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((len / 4) as u8 & 0x0f);
    }
    /// Sets the TOS byte.
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[field::TOS] = v;
    }
    /// Sets the total length.
    pub fn set_total_len(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::LENGTH, v);
    }
    /// Sets the identification.
    pub fn set_ident(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::IDENT, v);
    }
    /// Sets flags and fragment offset (offset in bytes, multiple of 8).
    pub fn set_frag(&mut self, df: bool, mf: bool, offset: u16) {
        let v = (if df { field::DF } else { 0 })
            | (if mf { field::MF } else { 0 })
            | ((offset >> 3) & field::OFFSET_MASK);
        wr16(self.buffer.as_mut(), field::FLG_OFF, v);
    }
    /// Sets the TTL.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }
    /// Sets the protocol.
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    /// Sets the source address.
    pub fn set_src_addr(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::SRC_ADDR, v);
    }
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::DST_ADDR, v);
    }
    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }
}

/// An IPv4 header without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repr {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Payload protocol.
    pub protocol: u8,
    /// Payload length in bytes (total length - header length).
    pub payload_len: u16,
    /// TOS byte.
    pub tos: u8,
    /// TTL.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_frag: bool,
    /// More fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes (multiple of 8).
    pub frag_offset: u16,
}

impl Repr {
    /// Parses a checked view (options are skipped).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> WireResult<Repr> {
        Ok(Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: p.total_len() - p.header_len() as u16,
            tos: p.tos(),
            ttl: p.ttl(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
        })
    }
    /// Header length when emitted.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN
    }
    /// Writes the 20-byte header (with a correct checksum) to the front of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> WireResult<()> {
        need("ipv4", buf.len(), field::HEADER_LEN)?;
        let mut p = Packet::new_unchecked(&mut buf[..field::HEADER_LEN]);
        p.set_header_len(field::HEADER_LEN);
        p.set_tos(self.tos);
        p.set_total_len(field::HEADER_LEN as u16 + self.payload_len);
        p.set_ident(self.ident);
        p.set_frag(self.dont_frag, self.more_frags, self.frag_offset);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        p.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_parse_round_trip_and_checks() {
        let r = Repr {
            src: 0x0a000001,
            dst: 0x0a000002,
            protocol: 17,
            payload_len: 8,
            tos: 0xb8,
            ttl: 64,
            ident: 7,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        let mut buf = [0u8; 28];
        r.emit(&mut buf).unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Repr::parse(&p).unwrap(), r);
        assert!(matches!(
            Packet::new_checked(&buf[..27]),
            Err(WireError::Truncated { .. })
        ));
        buf[0] = 0x44;
        assert!(matches!(
            Packet::new_checked(&buf[..]),
            Err(WireError::Malformed { .. })
        ));
        buf[0] = 0x65;
        assert!(matches!(
            Packet::new_checked(&buf[..]),
            Err(WireError::Malformed { .. })
        ));
    }
}
