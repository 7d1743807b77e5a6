//! Geneve headers (RFC 8926) with their TLV options.

use super::{need, rd16, rd32, wr16, wr32, WireError, WireResult};

/// Byte offsets within the Geneve header.
pub mod field {
    /// Version (2 bits) and option length in 4-byte words (6 bits).
    pub const VER_OPTLEN: usize = 0;
    /// O (OAM, 0x80) and C (critical options present, 0x40) flags.
    pub const FLAGS: usize = 1;
    /// Protocol type of the payload (0x6558 = Ethernet).
    pub const PROTOCOL: usize = 2;
    /// VNI (24 bits) << 8 | reserved.
    pub const VNI: usize = 4;
    /// Fixed header length.
    pub const HEADER_LEN: usize = 8;
    /// OAM flag.
    pub const FLAG_OAM: u8 = 0x80;
    /// Critical-options flag.
    pub const FLAG_CRITICAL: u8 = 0x40;
    /// Option: class.
    pub const OPT_CLASS: usize = 0;
    /// Option: type (high bit = critical).
    pub const OPT_TYPE: usize = 2;
    /// Option: R(3) | length of data in 4-byte words (5).
    pub const OPT_LEN: usize = 3;
    /// Option header length.
    pub const OPT_HEADER_LEN: usize = 4;
}

/// IANA UDP port for Geneve.
pub const UDP_PORT: u16 = 6081;
/// Protocol type for an Ethernet payload (Transparent Ethernet Bridging).
pub const PROTO_ETHERNET: u16 = 0x6558;

/// A view of a Geneve header with options.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer, checking version 0 and that the options it announces fit.
    pub fn new_checked(buffer: T) -> WireResult<Self> {
        need("geneve", buffer.as_ref().len(), field::HEADER_LEN)?;
        let p = Packet { buffer };
        if p.version() != 0 {
            return Err(WireError::Malformed {
                proto: "geneve",
                reason: "version is not 0",
            });
        }
        need("geneve", p.buffer.as_ref().len(), p.header_len())?;
        Ok(p)
    }
    /// Releases the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Version.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_OPTLEN] >> 6
    }
    /// Header length including options.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + (self.buffer.as_ref()[field::VER_OPTLEN] & 0x3f) as usize * 4
    }
    /// OAM flag.
    pub fn oam(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & field::FLAG_OAM != 0
    }
    /// Critical flag.
    pub fn critical(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & field::FLAG_CRITICAL != 0
    }
    /// Payload protocol type.
    pub fn protocol(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::PROTOCOL)
    }
    /// VNI.
    pub fn vni(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::VNI) >> 8
    }
    /// The options area.
    pub fn options(&self) -> GeneveOptions<'_> {
        GeneveOptions {
            buf: &self.buffer.as_ref()[field::HEADER_LEN..self.header_len()],
        }
    }
    /// The encapsulated frame.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

/// One option, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneveOptionView<'a> {
    /// Option class.
    pub class: u16,
    /// Option type.
    pub opt_type: u8,
    /// Option data (a multiple of 4 bytes).
    pub data: &'a [u8],
}

impl GeneveOptionView<'_> {
    /// `FlowKey::tun_gnv_opt_hdr` encoding: class << 16 | type << 8 | length in words.
    pub fn key_header(&self) -> u32 {
        ((self.class as u32) << 16) | ((self.opt_type as u32) << 8) | (self.data.len() / 4) as u32
    }
    /// `FlowKey::tun_gnv_opt_data`: the first 4 data bytes, zero padded.
    pub fn key_data(&self) -> u32 {
        let mut a = [0u8; 4];
        let n = self.data.len().min(4);
        a[..n].copy_from_slice(&self.data[..n]);
        u32::from_be_bytes(a)
    }
}

/// Iterator over the options; yields an error (then stops) for a cut-off option.
#[derive(Debug, Clone)]
pub struct GeneveOptions<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for GeneveOptions<'a> {
    type Item = WireResult<GeneveOptionView<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.buf;
        if b.is_empty() {
            return None;
        }
        if b.len() < field::OPT_HEADER_LEN {
            self.buf = &[];
            return Some(Err(WireError::Truncated {
                proto: "geneve option",
                need: field::OPT_HEADER_LEN,
                have: b.len(),
            }));
        }
        let len = field::OPT_HEADER_LEN + (b[field::OPT_LEN] & 0x1f) as usize * 4;
        if b.len() < len {
            self.buf = &[];
            return Some(Err(WireError::Truncated {
                proto: "geneve option",
                need: len,
                have: b.len(),
            }));
        }
        self.buf = &b[len..];
        Some(Ok(GeneveOptionView {
            class: rd16(b, field::OPT_CLASS),
            opt_type: b[field::OPT_TYPE],
            data: &b[field::OPT_HEADER_LEN..len],
        }))
    }
}

/// An owned option, for building headers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GeneveOption {
    /// Option class.
    pub class: u16,
    /// Option type.
    pub opt_type: u8,
    /// Data: a multiple of 4 bytes, at most 124.
    pub data: Vec<u8>,
}

/// A Geneve header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Repr {
    /// VNI (24 bits).
    pub vni: u32,
    /// OAM frame.
    pub oam: bool,
    /// Critical options present.
    pub critical: bool,
    /// Payload protocol (normally `PROTO_ETHERNET`).
    pub protocol: u16,
    /// Options.
    pub options: Vec<GeneveOption>,
}

impl Repr {
    /// Parses a checked view (allocates for options: slow path).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> WireResult<Repr> {
        let options = p
            .options()
            .map(|o| {
                o.map(|v| GeneveOption {
                    class: v.class,
                    opt_type: v.opt_type,
                    data: v.data.to_vec(),
                })
            })
            .collect::<WireResult<_>>()?;
        Ok(Repr {
            vni: p.vni(),
            oam: p.oam(),
            critical: p.critical(),
            protocol: p.protocol(),
            options,
        })
    }
    /// Header length including options.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN
            + self
                .options
                .iter()
                .map(|o| field::OPT_HEADER_LEN + o.data.len())
                .sum::<usize>()
    }
    /// Writes the header; fails if an option's data is not a multiple of 4 bytes up to
    /// 124, or the options exceed the 252 bytes the length field can say.
    pub fn emit(&self, buf: &mut [u8]) -> WireResult<()> {
        let n = self.header_len();
        if n - field::HEADER_LEN > 63 * 4 {
            return Err(WireError::Malformed {
                proto: "geneve",
                reason: "options longer than 252 bytes",
            });
        }
        for o in &self.options {
            if o.data.len() % 4 != 0 || o.data.len() > 31 * 4 {
                return Err(WireError::Malformed {
                    proto: "geneve option",
                    reason: "data not a multiple of 4 bytes up to 124",
                });
            }
        }
        need("geneve", buf.len(), n)?;
        buf[field::VER_OPTLEN] = ((n - field::HEADER_LEN) / 4) as u8;
        buf[field::FLAGS] = (if self.oam { field::FLAG_OAM } else { 0 })
            | (if self.critical {
                field::FLAG_CRITICAL
            } else {
                0
            });
        wr16(buf, field::PROTOCOL, self.protocol);
        wr32(buf, field::VNI, (self.vni & 0x00ff_ffff) << 8);
        let mut off = field::HEADER_LEN;
        for o in &self.options {
            wr16(buf, off + field::OPT_CLASS, o.class);
            buf[off + field::OPT_TYPE] = o.opt_type;
            buf[off + field::OPT_LEN] = (o.data.len() / 4) as u8;
            buf[off + field::OPT_HEADER_LEN..off + field::OPT_HEADER_LEN + o.data.len()]
                .copy_from_slice(&o.data);
            off += field::OPT_HEADER_LEN + o.data.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_and_cut() {
        let r = Repr {
            vni: 0xabcdef,
            oam: true,
            critical: false,
            protocol: PROTO_ETHERNET,
            options: vec![
                GeneveOption {
                    class: 0x0102,
                    opt_type: 0x80,
                    data: vec![1, 2, 3, 4, 5, 6, 7, 8],
                },
                GeneveOption {
                    class: 0xffff,
                    opt_type: 1,
                    data: vec![],
                },
            ],
        };
        let mut buf = vec![0u8; r.header_len()];
        r.emit(&mut buf).unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), r);
        let first = p.options().next().unwrap().unwrap();
        assert_eq!(first.key_header(), 0x0102_8002);
        assert_eq!(first.key_data(), 0x0102_0304);
        assert!(Packet::new_checked(&buf[..buf.len() - 1]).is_err());
        // an option length running past the announced options area
        buf[8 + 3] = 5;
        assert!(Packet::new_checked(&buf[..])
            .unwrap()
            .options()
            .any(|o| o.is_err()));
        let bad = Repr {
            options: vec![GeneveOption {
                class: 1,
                opt_type: 1,
                data: vec![1],
            }],
            ..r
        };
        assert!(bad.emit(&mut [0u8; 64]).is_err());
    }
}
