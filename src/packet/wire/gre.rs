//! GRE headers (RFC 2784 with the RFC 2890 key and sequence extensions).

use super::{checksum, need, rd16, rd32, wr16, wr32, WireError, WireResult};

/// Byte offsets and flag bits of the GRE header.
pub mod field {
    /// Flags (C, R, K, S, ...) and version (low 3 bits).
    pub const FLAGS_VER: usize = 0;
    /// Protocol type of the payload.
    pub const PROTOCOL: usize = 2;
    /// Base header length; optional 4-byte fields follow in the order checksum, key,
    /// sequence.
    pub const HEADER_LEN: usize = 4;
    /// Checksum present.
    pub const FLAG_CSUM: u16 = 0x8000;
    /// Routing present (RFC 1701; not supported).
    pub const FLAG_ROUTING: u16 = 0x4000;
    /// Key present.
    pub const FLAG_KEY: u16 = 0x2000;
    /// Sequence number present.
    pub const FLAG_SEQ: u16 = 0x1000;
    /// Version bits.
    pub const VERSION_MASK: u16 = 0x0007;
}

/// Protocol type of an Ethernet payload (gretap).
pub const PROTO_ETHERNET: u16 = 0x6558;

/// A view of a GRE header.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer, checking version 0, no routing, and that the optional fields fit.
    pub fn new_checked(buffer: T) -> WireResult<Self> {
        need("gre", buffer.as_ref().len(), field::HEADER_LEN)?;
        let p = Packet { buffer };
        if p.flags() & field::VERSION_MASK != 0 {
            return Err(WireError::Malformed {
                proto: "gre",
                reason: "version is not 0",
            });
        }
        if p.flags() & field::FLAG_ROUTING != 0 {
            return Err(WireError::Malformed {
                proto: "gre",
                reason: "routing present",
            });
        }
        need("gre", p.buffer.as_ref().len(), p.header_len())?;
        Ok(p)
    }
    /// Releases the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Flags and version.
    pub fn flags(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::FLAGS_VER)
    }
    /// Payload protocol.
    pub fn protocol(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::PROTOCOL)
    }
    /// Header length with optional fields.
    pub fn header_len(&self) -> usize {
        let f = self.flags();
        field::HEADER_LEN
            + 4 * ((f & field::FLAG_CSUM != 0) as usize
                + (f & field::FLAG_KEY != 0) as usize
                + (f & field::FLAG_SEQ != 0) as usize)
    }
    fn opt_offset(&self, flag: u16) -> Option<usize> {
        let f = self.flags();
        if f & flag == 0 {
            return None;
        }
        let mut off = field::HEADER_LEN;
        for b in [field::FLAG_CSUM, field::FLAG_KEY, field::FLAG_SEQ] {
            if b == flag {
                return Some(off);
            }
            if f & b != 0 {
                off += 4;
            }
        }
        None
    }
    /// Checksum, when present.
    pub fn checksum(&self) -> Option<u16> {
        self.opt_offset(field::FLAG_CSUM)
            .map(|o| rd16(self.buffer.as_ref(), o))
    }
    /// Key, when present.
    pub fn key(&self) -> Option<u32> {
        self.opt_offset(field::FLAG_KEY)
            .map(|o| rd32(self.buffer.as_ref(), o))
    }
    /// Sequence number, when present.
    pub fn seq(&self) -> Option<u32> {
        self.opt_offset(field::FLAG_SEQ)
            .map(|o| rd32(self.buffer.as_ref(), o))
    }
    /// Whether the checksum (if present) verifies over the whole buffer.
    pub fn verify_checksum(&self) -> bool {
        self.checksum().is_none() || checksum::verify(self.buffer.as_ref(), 0)
    }
    /// The encapsulated payload.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Computes the checksum (if the C flag is set) over the whole buffer.
    pub fn fill_checksum(&mut self) {
        if let Some(o) = self.opt_offset(field::FLAG_CSUM) {
            wr16(self.buffer.as_mut(), o, 0);
            let c = checksum::checksum(self.buffer.as_ref());
            wr16(self.buffer.as_mut(), o, c);
        }
    }
}

/// A GRE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repr {
    /// Payload protocol.
    pub protocol: u16,
    /// Whether a checksum is present (emit writes 0; fill with `Packet::fill_checksum`).
    pub csum: bool,
    /// Key.
    pub key: Option<u32>,
    /// Sequence number.
    pub seq: Option<u32>,
}

impl Repr {
    /// Parses a checked view.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> WireResult<Repr> {
        Ok(Repr {
            protocol: p.protocol(),
            csum: p.checksum().is_some(),
            key: p.key(),
            seq: p.seq(),
        })
    }
    /// Header length.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN
            + 4 * (self.csum as usize + self.key.is_some() as usize + self.seq.is_some() as usize)
    }
    /// Writes the header.
    pub fn emit(&self, buf: &mut [u8]) -> WireResult<()> {
        need("gre", buf.len(), self.header_len())?;
        let flags = (if self.csum { field::FLAG_CSUM } else { 0 })
            | (if self.key.is_some() {
                field::FLAG_KEY
            } else {
                0
            })
            | (if self.seq.is_some() {
                field::FLAG_SEQ
            } else {
                0
            });
        wr16(buf, field::FLAGS_VER, flags);
        wr16(buf, field::PROTOCOL, self.protocol);
        let mut off = field::HEADER_LEN;
        if self.csum {
            wr32(buf, off, 0);
            off += 4;
        }
        if let Some(k) = self.key {
            wr32(buf, off, k);
            off += 4;
        }
        if let Some(s) = self.seq {
            wr32(buf, off, s);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_fields_round_trip() {
        let r = Repr {
            protocol: PROTO_ETHERNET,
            csum: true,
            key: Some(0x1234_5678),
            seq: Some(9),
        };
        let mut buf = vec![0u8; r.header_len() + 10];
        r.emit(&mut buf).unwrap();
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.fill_checksum();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Repr::parse(&p).unwrap(), r);
        assert_eq!(p.header_len(), 16);
        assert!(Packet::new_checked(&buf[..15]).is_err());
        buf[1] = 1; // version 1 (PPTP)
        assert!(Packet::new_checked(&buf[..]).is_err());
    }
}
