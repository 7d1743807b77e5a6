//! SCTP common header (RFC 9260) and its CRC32c checksum.

use super::{need, rd32, wr32, WireResult};

/// Byte offsets within the SCTP common header.
pub mod field {
    /// Source port.
    pub const SRC_PORT: usize = 0;
    /// Destination port.
    pub const DST_PORT: usize = 2;
    /// Verification tag.
    pub const VTAG: usize = 4;
    /// CRC32c checksum, stored least significant byte first (RFC 9260 appendix A).
    pub const CHECKSUM: usize = 8;
    /// Common header length.
    pub const HEADER_LEN: usize = 12;
}

const fn crc32c_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC32C: [u32; 256] = crc32c_table();

/// CRC32c (Castagnoli) of `data` in pieces: start with `0xffff_ffff`, feed every piece,
/// and finish with `!state`.
pub fn crc32c_update(mut state: u32, data: &[u8]) -> u32 {
    for &b in data {
        state = CRC32C[((state ^ b as u32) & 0xff) as usize] ^ (state >> 8);
    }
    state
}

/// The CRC32c of an SCTP packet, computed as if its checksum field were zero.
pub fn packet_crc(pkt: &[u8]) -> u32 {
    if pkt.len() < field::HEADER_LEN {
        return !crc32c_update(0xffff_ffff, pkt);
    }
    let s = crc32c_update(0xffff_ffff, &pkt[..field::CHECKSUM]);
    let s = crc32c_update(s, &[0; 4]);
    !crc32c_update(s, &pkt[field::HEADER_LEN..])
}

/// A view of an SCTP packet (common header + chunks).
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer, checking it holds the 12-byte common header.
    pub fn new_checked(buffer: T) -> WireResult<Self> {
        need("sctp", buffer.as_ref().len(), field::HEADER_LEN)?;
        Ok(Packet { buffer })
    }
    /// Releases the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    port_accessors!(get);
    /// Verification tag.
    pub fn vtag(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::VTAG)
    }
    /// Checksum as stored (little-endian on the wire).
    pub fn checksum(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_le_bytes([b[8], b[9], b[10], b[11]])
    }
    /// Whether the stored CRC32c matches the packet.
    pub fn verify_checksum(&self) -> bool {
        self.checksum() == packet_crc(self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    port_accessors!(set);
    /// Sets the verification tag.
    pub fn set_vtag(&mut self, v: u32) {
        wr32(self.buffer.as_mut(), field::VTAG, v);
    }
    /// Stores a checksum value (little-endian on the wire).
    pub fn set_checksum(&mut self, v: u32) {
        self.buffer.as_mut()[field::CHECKSUM..field::HEADER_LEN].copy_from_slice(&v.to_le_bytes());
    }
    /// Computes and stores the CRC32c over the whole buffer.
    pub fn fill_checksum(&mut self) {
        let c = packet_crc(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// The SCTP common header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Verification tag.
    pub vtag: u32,
}

impl Repr {
    /// Parses a checked view.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> WireResult<Repr> {
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            vtag: p.vtag(),
        })
    }
    /// Header length.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN
    }
    /// Writes the common header with a zero checksum (fill it once chunks are in place).
    pub fn emit(&self, buf: &mut [u8]) -> WireResult<()> {
        need("sctp", buf.len(), field::HEADER_LEN)?;
        let mut p = Packet::new_unchecked(buf);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_vtag(self.vtag);
        p.set_checksum(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C over "123456789".
        assert_eq!(!crc32c_update(0xffff_ffff, b"123456789"), 0xe306_9283);
    }
}
