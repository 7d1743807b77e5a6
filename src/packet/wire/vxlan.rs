//! VXLAN headers (RFC 7348): 8 bytes after UDP, carrying a 24-bit VNI.

use super::{need, rd32, wr32, WireError, WireResult};

/// Byte offsets within the VXLAN header.
pub mod field {
    /// Flags byte: bit 0x08 (I) says the VNI is valid.
    pub const FLAGS: usize = 0;
    /// VNI (24 bits) << 8 | reserved (8 bits).
    pub const VNI: usize = 4;
    /// Header length.
    pub const HEADER_LEN: usize = 8;
    /// The I flag.
    pub const FLAG_VNI: u8 = 0x08;
}

/// IANA UDP port for VXLAN.
pub const UDP_PORT: u16 = 4789;

/// A view of a VXLAN header.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer, checking it holds 8 bytes.
    pub fn new_checked(buffer: T) -> WireResult<Self> {
        need("vxlan", buffer.as_ref().len(), field::HEADER_LEN)?;
        Ok(Packet { buffer })
    }
    /// Releases the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Flags byte.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }
    /// The 24-bit VNI.
    pub fn vni(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::VNI) >> 8
    }
    /// The encapsulated Ethernet frame.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the I flag (clearing the reserved bits) and the VNI.
    pub fn set_vni(&mut self, vni: u32) {
        let b = self.buffer.as_mut();
        b[..4].copy_from_slice(&[field::FLAG_VNI, 0, 0, 0]);
        wr32(b, field::VNI, (vni & 0x00ff_ffff) << 8);
    }
}

/// A VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repr {
    /// VNI (24 bits).
    pub vni: u32,
}

impl Repr {
    /// Parses a checked view; the I flag must be set.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> WireResult<Repr> {
        if p.flags() & field::FLAG_VNI == 0 {
            return Err(WireError::Malformed {
                proto: "vxlan",
                reason: "I flag clear",
            });
        }
        Ok(Repr { vni: p.vni() })
    }
    /// Header length.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN
    }
    /// Writes the header.
    pub fn emit(&self, buf: &mut [u8]) -> WireResult<()> {
        need("vxlan", buf.len(), field::HEADER_LEN)?;
        Packet::new_unchecked(buf).set_vni(self.vni);
        Ok(())
    }
}
