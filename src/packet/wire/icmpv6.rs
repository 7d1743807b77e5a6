//! ICMPv6 (RFC 4443), Neighbor Discovery NS/NA (RFC 4861) and MLDv1/v2 (RFC 2710, 3810).

use super::group_record::{GroupRecordRepr, GroupRecords};
use super::{checksum, need, rd16, rd32, rd_arr, wr16, wr32, WireError, WireResult};

/// Byte offsets within ICMPv6 messages.
pub mod field {
    /// Message type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum (covers the IPv6 pseudo-header).
    pub const CHECKSUM: usize = 2;
    /// Type-specific 4 bytes (NA: R/S/O flags in the top bits; MLD: max response delay).
    pub const REST: usize = 4;
    /// Basic header length (type, code, checksum).
    pub const HEADER_LEN: usize = 4;
    /// ND: target address.
    pub const ND_TARGET: usize = 8;
    /// ND: first option.
    pub const ND_OPTIONS: usize = 24;
    /// MLD: multicast address.
    pub const MLD_ADDR: usize = 8;
    /// MLDv1 / MLDv2 query fixed length before the v2 query fields.
    pub const MLD_LEN: usize = 24;
    /// MLDv2 query: S flag and QRV.
    pub const MLD2Q_S_QRV: usize = 24;
    /// MLDv2 query: QQIC.
    pub const MLD2Q_QQIC: usize = 25;
    /// MLDv2 query: number of sources.
    pub const MLD2Q_NSRC: usize = 26;
    /// MLDv2 query: fixed length before sources.
    pub const MLD2Q_LEN: usize = 28;
    /// MLDv2 report: number of records.
    pub const MLD2R_NREC: usize = 6;
    /// MLDv2 report: first record.
    pub const MLD2R_RECORDS: usize = 8;
}

/// ICMPv6 message types.
pub mod msg {
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// MLD query (v1 and v2).
    pub const MLD_QUERY: u8 = 130;
    /// MLDv1 report.
    pub const MLD_REPORT: u8 = 131;
    /// MLDv1 done.
    pub const MLD_DONE: u8 = 132;
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// MLDv2 report.
    pub const MLD2_REPORT: u8 = 143;
}

/// ND option types.
pub mod nd_opt {
    /// Source link-layer address.
    pub const SOURCE_LL_ADDR: u8 = 1;
    /// Target link-layer address.
    pub const TARGET_LL_ADDR: u8 = 2;
}

/// NA flag bits in the first byte after the checksum.
pub mod na_flag {
    /// Router.
    pub const ROUTER: u8 = 0x80;
    /// Solicited.
    pub const SOLICITED: u8 = 0x40;
    /// Override.
    pub const OVERRIDE: u8 = 0x20;
}

/// Link-layer address options found in an NS/NA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NdLinkAddrs {
    /// Source link-layer address option, if present.
    pub sll: Option<[u8; 6]>,
    /// Target link-layer address option, if present.
    pub tll: Option<[u8; 6]>,
}

/// Walks ND options (`opts` = bytes after the target). A zero-length or cut-off option is
/// malformed (RFC 4861 §4.6); unknown options are skipped; a second SLL/TLL is malformed.
#[inline]
pub fn parse_nd_options(mut opts: &[u8]) -> WireResult<NdLinkAddrs> {
    let mut r = NdLinkAddrs::default();
    while !opts.is_empty() {
        need("nd option", opts.len(), 2)?;
        let len = opts[1] as usize * 8;
        if len == 0 {
            return Err(WireError::Malformed {
                proto: "nd option",
                reason: "zero length",
            });
        }
        need("nd option", opts.len(), len)?;
        let slot = match opts[0] {
            nd_opt::SOURCE_LL_ADDR => Some(&mut r.sll),
            nd_opt::TARGET_LL_ADDR => Some(&mut r.tll),
            _ => None,
        };
        if let Some(slot) = slot {
            if len != 8 {
                return Err(WireError::Malformed {
                    proto: "nd option",
                    reason: "link-layer address option not 8 bytes",
                });
            }
            if slot.is_some() {
                return Err(WireError::Malformed {
                    proto: "nd option",
                    reason: "duplicate link-layer address option",
                });
            }
            *slot = Some(rd_arr(opts, 2));
        }
        opts = &opts[len..];
    }
    Ok(r)
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer, checking it holds the fixed part of its message type (ND: 24
    /// bytes; MLD: 24; MLDv2 query: 28 + sources; MLDv2 report: 8).
    pub fn new_checked(buffer: T) -> WireResult<Self> {
        let len = buffer.as_ref().len();
        need("icmpv6", len, field::HEADER_LEN)?;
        let p = Packet { buffer };
        let min = match p.msg_type() {
            msg::NEIGHBOR_SOLICIT | msg::NEIGHBOR_ADVERT => field::ND_OPTIONS,
            msg::MLD_REPORT | msg::MLD_DONE => field::MLD_LEN,
            msg::MLD_QUERY if len > field::MLD_LEN => {
                need("mldv2 query", len, field::MLD2Q_LEN)?;
                field::MLD2Q_LEN + 16 * rd16(p.buffer.as_ref(), field::MLD2Q_NSRC) as usize
            }
            msg::MLD_QUERY => field::MLD_LEN,
            msg::MLD2_REPORT => field::MLD2R_RECORDS,
            _ => field::HEADER_LEN,
        };
        need("icmpv6", len, min)?;
        Ok(p)
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
    /// ND target / MLD multicast address (both at offset 8); all zero if the message is
    /// too short to have one (only ND/MLD messages are checked to hold it).
    pub fn target(&self) -> [u8; 16] {
        let b = self.buffer.as_ref();
        if b.len() < field::ND_TARGET + 16 {
            return [0; 16];
        }
        rd_arr(b, field::ND_TARGET)
    }
    /// NA flags byte (0 if absent).
    pub fn na_flags(&self) -> u8 {
        self.buffer.as_ref().get(field::REST).copied().unwrap_or(0)
    }
    /// MLD maximum response delay/code (0 if absent).
    pub fn mld_max_resp(&self) -> u16 {
        let b = self.buffer.as_ref();
        if b.len() < field::REST + 2 {
            return 0;
        }
        rd16(b, field::REST)
    }
    /// ND options after the target; an error for messages too short to be ND.
    pub fn nd_options(&self) -> WireResult<NdLinkAddrs> {
        let b = self.buffer.as_ref();
        need("nd", b.len(), field::ND_OPTIONS)?;
        parse_nd_options(&b[field::ND_OPTIONS..])
    }
    /// MLDv2 report records (empty for other types).
    pub fn mld2_records(&self) -> GroupRecords<'_, 16> {
        let b = self.buffer.as_ref();
        if self.msg_type() != msg::MLD2_REPORT || b.len() < field::MLD2R_RECORDS {
            return GroupRecords::new(&[], 0);
        }
        GroupRecords::new(&b[field::MLD2R_RECORDS..], rd16(b, field::MLD2R_NREC))
    }
    /// Whether the checksum verifies with the given pseudo-header sum.
    pub fn verify_checksum(&self, pseudo: u32) -> bool {
        checksum::verify(self.buffer.as_ref(), pseudo)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Computes the checksum over the whole buffer plus `pseudo`.
    pub fn fill_checksum(&mut self, pseudo: u32) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let c =
            !checksum::fold(checksum::sum(self.buffer.as_ref()) + checksum::fold(pseudo) as u32);
        wr16(self.buffer.as_mut(), field::CHECKSUM, c);
    }
}

/// MLDv2 query extras.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mld2Query {
    /// Suppress router-side processing.
    pub s_flag: bool,
    /// Robustness variable.
    pub qrv: u8,
    /// Query interval code.
    pub qqic: u8,
    /// Sources.
    pub sources: Vec<[u8; 16]>,
}

/// An ICMPv6 message the switch understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repr {
    /// Neighbor solicitation.
    NeighborSolicit {
        /// Target address.
        target: [u8; 16],
        /// Source link-layer address option.
        sll: Option<[u8; 6]>,
    },
    /// Neighbor advertisement.
    NeighborAdvert {
        /// `na_flag::*` bits.
        flags: u8,
        /// Target address.
        target: [u8; 16],
        /// Target link-layer address option.
        tll: Option<[u8; 6]>,
    },
    /// MLD query (v2 when `v2` is present).
    MldQuery {
        /// Maximum response code.
        max_resp: u16,
        /// Multicast address (unspecified = general query).
        addr: [u8; 16],
        /// v2 fields.
        v2: Option<Mld2Query>,
    },
    /// MLDv1 report.
    MldReport {
        /// Multicast address.
        addr: [u8; 16],
    },
    /// MLDv1 done.
    MldDone {
        /// Multicast address.
        addr: [u8; 16],
    },
    /// MLDv2 report.
    Mld2Report {
        /// Records.
        records: Vec<GroupRecordRepr<16>>,
    },
    /// Any other message: type, code, the 4 type-specific bytes, then `data` is the
    /// caller's (emit writes only the 8-byte header).
    Other {
        /// Type.
        msg_type: u8,
        /// Code.
        code: u8,
        /// The 4 bytes after the checksum.
        rest: u32,
    },
}

impl Repr {
    /// Parses a checked view (allocates for MLDv2 lists: slow path only).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> WireResult<Repr> {
        let b = p.buffer.as_ref();
        Ok(match p.msg_type() {
            msg::NEIGHBOR_SOLICIT => Repr::NeighborSolicit {
                target: p.target(),
                sll: p.nd_options()?.sll,
            },
            msg::NEIGHBOR_ADVERT => Repr::NeighborAdvert {
                flags: p.na_flags() & 0xe0,
                target: p.target(),
                tll: p.nd_options()?.tll,
            },
            msg::MLD_QUERY => Repr::MldQuery {
                max_resp: p.mld_max_resp(),
                addr: p.target(),
                v2: if b.len() >= field::MLD2Q_LEN {
                    let n = rd16(b, field::MLD2Q_NSRC) as usize;
                    Some(Mld2Query {
                        s_flag: b[field::MLD2Q_S_QRV] & 0x08 != 0,
                        qrv: b[field::MLD2Q_S_QRV] & 7,
                        qqic: b[field::MLD2Q_QQIC],
                        sources: (0..n)
                            .map(|i| rd_arr(b, field::MLD2Q_LEN + 16 * i))
                            .collect(),
                    })
                } else {
                    None
                },
            },
            msg::MLD_REPORT => Repr::MldReport { addr: p.target() },
            msg::MLD_DONE => Repr::MldDone { addr: p.target() },
            msg::MLD2_REPORT => Repr::Mld2Report {
                records: p
                    .mld2_records()
                    .map(|r| r.map(|v| GroupRecordRepr::from_view(&v)))
                    .collect::<WireResult<_>>()?,
            },
            t => {
                need("icmpv6", b.len(), 8)?;
                Repr::Other {
                    msg_type: t,
                    code: p.code(),
                    rest: rd32(b, field::REST),
                }
            }
        })
    }

    /// Length on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::NeighborSolicit { sll, .. } => field::ND_OPTIONS + 8 * sll.is_some() as usize,
            Repr::NeighborAdvert { tll, .. } => field::ND_OPTIONS + 8 * tll.is_some() as usize,
            Repr::MldQuery { v2: Some(q), .. } => field::MLD2Q_LEN + 16 * q.sources.len(),
            Repr::MldQuery { .. } | Repr::MldReport { .. } | Repr::MldDone { .. } => field::MLD_LEN,
            Repr::Mld2Report { records } => {
                field::MLD2R_RECORDS + records.iter().map(|r| r.buffer_len()).sum::<usize>()
            }
            Repr::Other { .. } => 8,
        }
    }

    /// Writes the message to the front of `buf` with its checksum computed over the IPv6
    /// pseudo-header of `src` -> `dst`.
    pub fn emit(&self, buf: &mut [u8], src: &[u8; 16], dst: &[u8; 16]) -> WireResult<()> {
        let n = self.buffer_len();
        need("icmpv6", buf.len(), n)?;
        let b = &mut buf[..n];
        b.fill(0);
        let lladdr = |b: &mut [u8], kind: u8, mac: &[u8; 6]| {
            b[field::ND_OPTIONS] = kind;
            b[field::ND_OPTIONS + 1] = 1;
            b[field::ND_OPTIONS + 2..field::ND_OPTIONS + 8].copy_from_slice(mac);
        };
        match self {
            Repr::NeighborSolicit { target, sll } => {
                b[0] = msg::NEIGHBOR_SOLICIT;
                b[field::ND_TARGET..field::ND_TARGET + 16].copy_from_slice(target);
                if let Some(m) = sll {
                    lladdr(b, nd_opt::SOURCE_LL_ADDR, m);
                }
            }
            Repr::NeighborAdvert { flags, target, tll } => {
                b[0] = msg::NEIGHBOR_ADVERT;
                b[field::REST] = *flags;
                b[field::ND_TARGET..field::ND_TARGET + 16].copy_from_slice(target);
                if let Some(m) = tll {
                    lladdr(b, nd_opt::TARGET_LL_ADDR, m);
                }
            }
            Repr::MldQuery { max_resp, addr, v2 } => {
                b[0] = msg::MLD_QUERY;
                wr16(b, field::REST, *max_resp);
                b[field::MLD_ADDR..field::MLD_ADDR + 16].copy_from_slice(addr);
                if let Some(q) = v2 {
                    b[field::MLD2Q_S_QRV] = ((q.s_flag as u8) << 3) | (q.qrv & 7);
                    b[field::MLD2Q_QQIC] = q.qqic;
                    wr16(b, field::MLD2Q_NSRC, q.sources.len() as u16);
                    for (i, s) in q.sources.iter().enumerate() {
                        let o = field::MLD2Q_LEN + 16 * i;
                        b[o..o + 16].copy_from_slice(s);
                    }
                }
            }
            Repr::MldReport { addr } | Repr::MldDone { addr } => {
                b[0] = if matches!(self, Repr::MldReport { .. }) {
                    msg::MLD_REPORT
                } else {
                    msg::MLD_DONE
                };
                b[field::MLD_ADDR..field::MLD_ADDR + 16].copy_from_slice(addr);
            }
            Repr::Mld2Report { records } => {
                b[0] = msg::MLD2_REPORT;
                wr16(b, field::MLD2R_NREC, records.len() as u16);
                let mut off = field::MLD2R_RECORDS;
                for r in records {
                    r.emit(&mut b[off..])?;
                    off += r.buffer_len();
                }
            }
            Repr::Other {
                msg_type,
                code,
                rest,
            } => {
                b[0] = *msg_type;
                b[1] = *code;
                wr32(b, field::REST, *rest);
            }
        }
        let pseudo = checksum::pseudo_header_v6(src, dst, crate::packet::ipproto::ICMPV6, n as u32);
        Packet::new_unchecked(b).fill_checksum(pseudo);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const DST: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2];

    #[test]
    fn nd_round_trip_and_bad_options() {
        for r in [
            Repr::NeighborSolicit {
                target: DST,
                sll: Some([1, 2, 3, 4, 5, 6]),
            },
            Repr::NeighborAdvert {
                flags: na_flag::SOLICITED,
                target: SRC,
                tll: None,
            },
            Repr::MldQuery {
                max_resp: 1000,
                addr: [0; 16],
                v2: Some(Mld2Query {
                    s_flag: true,
                    qrv: 2,
                    qqic: 125,
                    sources: vec![SRC],
                }),
            },
            Repr::MldDone { addr: DST },
        ] {
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut buf, &SRC, &DST).unwrap();
            let p = Packet::new_checked(&buf[..]).unwrap();
            assert!(p.verify_checksum(checksum::pseudo_header_v6(
                &SRC,
                &DST,
                58,
                buf.len() as u32
            )));
            assert_eq!(Repr::parse(&p).unwrap(), r);
        }
        // zero-length option
        let r = Repr::NeighborSolicit {
            target: DST,
            sll: Some([1; 6]),
        };
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf, &SRC, &DST).unwrap();
        buf[25] = 0;
        assert!(matches!(
            Packet::new_checked(&buf[..]).unwrap().nd_options(),
            Err(WireError::Malformed { .. })
        ));
    }
}
