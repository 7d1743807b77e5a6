//! ICMPv4 (RFC 792): the 8-byte header the switch matches and builds.

use super::{checksum, need, rd16, rd32, wr16, wr32, WireResult};

/// Byte offsets within the ICMPv4 header.
pub mod field {
    /// Message type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum over the whole message.
    pub const CHECKSUM: usize = 2;
    /// Rest of header (echo: identifier + sequence).
    pub const REST: usize = 4;
    /// Header length.
    pub const HEADER_LEN: usize = 8;
}

/// Common ICMPv4 message types.
pub mod msg {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
}

/// A view of an ICMPv4 message.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer, checking it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> WireResult<Self> {
        need("icmpv4", buffer.as_ref().len(), field::HEADER_LEN)?;
        Ok(Packet { buffer })
    }
    /// Releases the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    /// Code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// The 4 bytes after the checksum.
    pub fn rest(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::REST)
    }
    /// Whether the checksum verifies over the whole buffer.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref(), 0)
    }
    /// Bytes after the 8-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets type and code.
    pub fn set_type_code(&mut self, t: u8, c: u8) {
        let b = self.buffer.as_mut();
        b[field::TYPE] = t;
        b[field::CODE] = c;
    }
    /// Sets the rest-of-header word.
    pub fn set_rest(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::REST, v);
    }
    /// Computes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let c = checksum::checksum(self.buffer.as_ref());
        wr16(self.buffer.as_mut(), field::CHECKSUM, c);
    }
}

/// An ICMPv4 header (payload handled by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repr {
    /// Message type.
    pub msg_type: u8,
    /// Code.
    pub code: u8,
    /// Rest of header (echo: identifier << 16 | sequence).
    pub rest: u32,
}

impl Repr {
    /// Parses a checked view.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> WireResult<Repr> {
        Ok(Repr {
            msg_type: p.msg_type(),
            code: p.code(),
            rest: p.rest(),
        })
    }
    /// Header length.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN
    }
    /// Writes the header followed by `payload` into `buf` and fills the checksum.
    pub fn emit(&self, buf: &mut [u8], payload: &[u8]) -> WireResult<()> {
        let n = field::HEADER_LEN + payload.len();
        need("icmpv4", buf.len(), n)?;
        let mut p = Packet::new_unchecked(&mut buf[..n]);
        p.set_type_code(self.msg_type, self.code);
        p.set_rest(self.rest);
        buf[field::HEADER_LEN..n].copy_from_slice(payload);
        Packet::new_unchecked(&mut buf[..n]).fill_checksum();
        Ok(())
    }
}
