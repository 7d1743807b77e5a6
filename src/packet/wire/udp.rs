//! UDP headers (RFC 768).

use super::{checksum, need, rd16, wr16, WireError, WireResult};

/// Byte offsets within the UDP header.
pub mod field {
    /// Source port.
    pub const SRC_PORT: usize = 0;
    /// Destination port.
    pub const DST_PORT: usize = 2;
    /// Length of header + payload.
    pub const LENGTH: usize = 4;
    /// Checksum (0 over IPv4 = not computed).
    pub const CHECKSUM: usize = 6;
    /// Header length.
    pub const HEADER_LEN: usize = 8;
}

/// A view of a UDP datagram.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer, checking it holds the header and the length it announces (which
    /// must be at least 8).
    pub fn new_checked(buffer: T) -> WireResult<Self> {
        need("udp", buffer.as_ref().len(), field::HEADER_LEN)?;
        let p = Packet { buffer };
        if (p.len() as usize) < field::HEADER_LEN {
            return Err(WireError::Malformed {
                proto: "udp",
                reason: "length below 8",
            });
        }
        need("udp", p.buffer.as_ref().len(), p.len() as usize)?;
        Ok(p)
    }
    /// Releases the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    port_accessors!(get);
    /// Length field.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::LENGTH)
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Whether the checksum verifies (a zero checksum means "none" and verifies).
    pub fn verify_checksum(&self, pseudo: u32) -> bool {
        self.checksum() == 0
            || checksum::verify(&self.buffer.as_ref()[..self.len() as usize], pseudo)
    }
    /// Bytes after the header, bounded by the length field.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..self.len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    port_accessors!(set);
    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::LENGTH, v);
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    /// Computes the checksum over `len` bytes and `pseudo`; a computed 0 is sent as
    /// 0xffff because 0 means "no checksum".
    pub fn fill_checksum(&mut self, pseudo: u32) {
        self.set_checksum(0);
        let n = (self.len() as usize).min(self.buffer.as_ref().len());
        let c = !checksum::fold(
            checksum::sum(&self.buffer.as_ref()[..n]) + checksum::fold(pseudo) as u32,
        );
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

/// A UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length (the length field is this + 8).
    pub payload_len: u16,
}

impl Repr {
    /// Parses a checked view.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> WireResult<Repr> {
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: p.len() - field::HEADER_LEN as u16,
        })
    }
    /// Header length.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN
    }
    /// Writes the header with a zero checksum.
    pub fn emit(&self, buf: &mut [u8]) -> WireResult<()> {
        need("udp", buf.len(), field::HEADER_LEN)?;
        let mut p = Packet::new_unchecked(buf);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(self.payload_len + field::HEADER_LEN as u16);
        p.set_checksum(0);
        Ok(())
    }
}
