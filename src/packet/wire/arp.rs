//! ARP over Ethernet for IPv4 (RFC 826).

use super::{need, rd16, rd32, rd_arr, wr16, wr32, WireError, WireResult};

/// Byte offsets within an ARP packet (Ethernet/IPv4 layout for the addresses).
pub mod field {
    /// Hardware type (1 = Ethernet).
    pub const HTYPE: usize = 0;
    /// Protocol type (0x0800 = IPv4).
    pub const PTYPE: usize = 2;
    /// Hardware address length.
    pub const HLEN: usize = 4;
    /// Protocol address length.
    pub const PLEN: usize = 5;
    /// Operation.
    pub const OPER: usize = 6;
    /// Sender hardware address.
    pub const SHA: usize = 8;
    /// Sender protocol address.
    pub const SPA: usize = 14;
    /// Target hardware address.
    pub const THA: usize = 18;
    /// Target protocol address.
    pub const TPA: usize = 24;
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const LEN: usize = 28;
}

/// ARP operations.
pub mod op {
    /// Request.
    pub const REQUEST: u16 = 1;
    /// Reply.
    pub const REPLY: u16 = 2;
}

/// A view of an ARP packet.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer, checking it holds the 8-byte fixed part and addresses of the
    /// announced lengths.
    pub fn new_checked(buffer: T) -> WireResult<Self> {
        need("arp", buffer.as_ref().len(), 8)?;
        let p = Packet { buffer };
        let n = 8 + 2 * (p.hlen() as usize + p.plen() as usize);
        need("arp", p.buffer.as_ref().len(), n)?;
        Ok(p)
    }
    /// Releases the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Hardware type.
    pub fn htype(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::HTYPE)
    }
    /// Protocol type.
    pub fn ptype(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::PTYPE)
    }
    /// Hardware address length.
    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    /// Protocol address length.
    pub fn plen(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    /// Operation.
    pub fn oper(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::OPER)
    }
    /// Whether this is Ethernet/IPv4 ARP, the only layout whose address accessors apply.
    pub fn is_eth_ipv4(&self) -> bool {
        self.htype() == 1 && self.ptype() == 0x0800 && self.hlen() == 6 && self.plen() == 4
    }
    /// Sender hardware address (Ethernet/IPv4 layout).
    pub fn sha(&self) -> [u8; 6] {
        rd_arr(self.buffer.as_ref(), field::SHA)
    }
    /// Sender protocol address.
    pub fn spa(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::SPA)
    }
    /// Target hardware address.
    pub fn tha(&self) -> [u8; 6] {
        rd_arr(self.buffer.as_ref(), field::THA)
    }
    /// Target protocol address.
    pub fn tpa(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the Ethernet/IPv4 fixed fields and the operation.
    pub fn set_eth_ipv4(&mut self, oper: u16) {
        let b = self.buffer.as_mut();
        wr16(b, field::HTYPE, 1);
        wr16(b, field::PTYPE, 0x0800);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        wr16(b, field::OPER, oper);
    }
    /// Sets the sender addresses.
    pub fn set_sender(&mut self, mac: [u8; 6], ip: u32) {
        let b = self.buffer.as_mut();
        b[field::SHA..field::SHA + 6].copy_from_slice(&mac);
        wr32(b, field::SPA, ip);
    }
    /// Sets the target addresses.
    pub fn set_target(&mut self, mac: [u8; 6], ip: u32) {
        let b = self.buffer.as_mut();
        b[field::THA..field::THA + 6].copy_from_slice(&mac);
        wr32(b, field::TPA, ip);
    }
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repr {
    /// Operation (`op::*`).
    pub oper: u16,
    /// Sender MAC.
    pub sha: [u8; 6],
    /// Sender IPv4.
    pub spa: u32,
    /// Target MAC.
    pub tha: [u8; 6],
    /// Target IPv4.
    pub tpa: u32,
}

impl Repr {
    /// Parses a checked view; only Ethernet/IPv4 ARP is representable.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> WireResult<Repr> {
        if !p.is_eth_ipv4() {
            return Err(WireError::Malformed {
                proto: "arp",
                reason: "not Ethernet/IPv4 ARP",
            });
        }
        Ok(Repr {
            oper: p.oper(),
            sha: p.sha(),
            spa: p.spa(),
            tha: p.tha(),
            tpa: p.tpa(),
        })
    }
    /// Length on the wire.
    pub fn buffer_len(&self) -> usize {
        field::LEN
    }
    /// Writes the 28-byte packet.
    pub fn emit(&self, buf: &mut [u8]) -> WireResult<()> {
        need("arp", buf.len(), field::LEN)?;
        let mut p = Packet::new_unchecked(buf);
        p.set_eth_ipv4(self.oper);
        p.set_sender(self.sha, self.spa);
        p.set_target(self.tha, self.tpa);
        Ok(())
    }
}
