//! TCP headers (RFC 9293).

use super::{checksum, need, rd16, rd32, wr16, wr32, WireError, WireResult};

/// Byte offsets within the TCP header.
pub mod field {
    /// Source port.
    pub const SRC_PORT: usize = 0;
    /// Destination port.
    pub const DST_PORT: usize = 2;
    /// Sequence number.
    pub const SEQ: usize = 4;
    /// Acknowledgment number.
    pub const ACK: usize = 8;
    /// Data offset (4 bits), reserved (3 bits), flags (9 bits): the 16-bit control word.
    pub const CTL: usize = 12;
    /// Window.
    pub const WINDOW: usize = 14;
    /// Checksum.
    pub const CHECKSUM: usize = 16;
    /// Urgent pointer.
    pub const URGENT: usize = 18;
    /// Header length without options.
    pub const HEADER_LEN: usize = 20;
}

/// TCP flag bits as they appear in the low 12 bits of the control word (and in
/// `FlowKey::tcp_flags`).
pub mod flags {
    /// FIN.
    pub const FIN: u16 = 0x001;
    /// SYN.
    pub const SYN: u16 = 0x002;
    /// RST.
    pub const RST: u16 = 0x004;
    /// PSH.
    pub const PSH: u16 = 0x008;
    /// ACK.
    pub const ACK: u16 = 0x010;
    /// URG.
    pub const URG: u16 = 0x020;
    /// ECE.
    pub const ECE: u16 = 0x040;
    /// CWR.
    pub const CWR: u16 = 0x080;
    /// NS (historic ECN nonce).
    pub const NS: u16 = 0x100;
}

/// A view of a TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer, checking it holds the header with its options and that the data
    /// offset is at least 5.
    pub fn new_checked(buffer: T) -> WireResult<Self> {
        need("tcp", buffer.as_ref().len(), field::HEADER_LEN)?;
        let p = Packet { buffer };
        if p.header_len() < field::HEADER_LEN {
            return Err(WireError::Malformed {
                proto: "tcp",
                reason: "data offset below 5",
            });
        }
        need("tcp", p.buffer.as_ref().len(), p.header_len())?;
        Ok(p)
    }
    /// Releases the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    port_accessors!(get);
    /// Sequence number.
    pub fn seq(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::SEQ)
    }
    /// Acknowledgment number.
    pub fn ack(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::ACK)
    }
    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[field::CTL] >> 4) as usize) * 4
    }
    /// The 12 flag bits.
    pub fn flags(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CTL) & 0x0fff
    }
    /// Window.
    pub fn window(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::WINDOW)
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Whether the checksum verifies over the whole buffer plus the pseudo-header sum.
    pub fn verify_checksum(&self, pseudo: u32) -> bool {
        checksum::verify(self.buffer.as_ref(), pseudo)
    }
    /// Bytes after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    port_accessors!(set);
    /// Sets the sequence number.
    pub fn set_seq(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::SEQ, v);
    }
    /// Sets the acknowledgment number.
    pub fn set_ack(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::ACK, v);
    }
    /// Sets the header length (bytes, multiple of 4) and the 12 flag bits.
    pub fn set_header_len_flags(&mut self, len: usize, flags: u16) {
        let v = (((len / 4) as u16) << 12) | (flags & 0x0fff);
        wr16(self.buffer.as_mut(), field::CTL, v);
    }
    /// Sets the window.
    pub fn set_window(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::WINDOW, v);
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    /// Sets the urgent pointer.
    pub fn set_urgent(&mut self, v: u16) {
        wr16(self.buffer.as_mut(), field::URGENT, v);
    }
    /// Computes the checksum over the whole buffer (header + payload) and `pseudo`.
    pub fn fill_checksum(&mut self, pseudo: u32) {
        self.set_checksum(0);
        let c =
            !checksum::fold(checksum::sum(self.buffer.as_ref()) + checksum::fold(pseudo) as u32);
        self.set_checksum(c);
    }
}

/// A TCP header without options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flag bits (`flags::*`).
    pub flags: u16,
    /// Window.
    pub window: u16,
}

impl Repr {
    /// Parses a checked view.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> WireResult<Repr> {
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq(),
            ack: p.ack(),
            flags: p.flags(),
            window: p.window(),
        })
    }
    /// Header length when emitted.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN
    }
    /// Writes the 20-byte header with a zero checksum (fill it once the payload is in
    /// place with `Packet::fill_checksum`).
    pub fn emit(&self, buf: &mut [u8]) -> WireResult<()> {
        need("tcp", buf.len(), field::HEADER_LEN)?;
        let mut p = Packet::new_unchecked(buf);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq(self.seq);
        p.set_ack(self.ack);
        p.set_header_len_flags(field::HEADER_LEN, self.flags);
        p.set_window(self.window);
        p.set_checksum(0);
        p.set_urgent(0);
        Ok(())
    }
}
