//! IGMP v1/v2/v3 (RFC 1112, 2236, 3376): what multicast snooping needs to read and build.

use super::group_record::{GroupRecordRepr, GroupRecords};
use super::{checksum, need, rd16, rd32, wr16, wr32, WireError, WireResult};

/// Byte offsets within IGMP messages.
pub mod field {
    /// Message type.
    pub const TYPE: usize = 0;
    /// Max response time (v2/v3 query: max resp code; v1: unused, 0).
    pub const MAX_RESP: usize = 1;
    /// Checksum over the whole message.
    pub const CHECKSUM: usize = 2;
    /// Group address (v1/v2 messages and queries).
    pub const GROUP: usize = 4;
    /// v1/v2 message length.
    pub const HEADER_LEN: usize = 8;
    /// v3 query: Resv(4) S(1) QRV(3).
    pub const V3Q_S_QRV: usize = 8;
    /// v3 query: querier's query interval code.
    pub const V3Q_QQIC: usize = 9;
    /// v3 query: number of sources.
    pub const V3Q_NSRC: usize = 10;
    /// v3 query: fixed length before sources.
    pub const V3Q_LEN: usize = 12;
    /// v3 report: number of group records.
    pub const V3R_NREC: usize = 6;
}

/// IGMP message types.
pub mod msg {
    /// Membership query (all versions).
    pub const QUERY: u8 = 0x11;
    /// IGMPv1 membership report.
    pub const V1_REPORT: u8 = 0x12;
    /// IGMPv2 membership report.
    pub const V2_REPORT: u8 = 0x16;
    /// IGMPv2 leave group.
    pub const LEAVE: u8 = 0x17;
    /// IGMPv3 membership report.
    pub const V3_REPORT: u8 = 0x22;
}

/// A view of an IGMP message.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer, checking it holds 8 bytes (and for a v3 query, its source list).
    pub fn new_checked(buffer: T) -> WireResult<Self> {
        need("igmp", buffer.as_ref().len(), field::HEADER_LEN)?;
        let p = Packet { buffer };
        if p.is_v3_query() {
            need(
                "igmp",
                p.buffer.as_ref().len(),
                field::V3Q_LEN + 4 * p.v3_source_count(),
            )?;
        }
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
    /// Max response code.
    pub fn max_resp(&self) -> u8 {
        self.buffer.as_ref()[field::MAX_RESP]
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Group address (v1/v2 messages, queries).
    pub fn group(&self) -> u32 {
        rd32(self.buffer.as_ref(), field::GROUP)
    }
    /// Whether this is a v3 query (a query at least 12 bytes long, RFC 3376 §7.1).
    pub fn is_v3_query(&self) -> bool {
        self.msg_type() == msg::QUERY && self.buffer.as_ref().len() >= field::V3Q_LEN
    }
    /// v3 query source count (0 otherwise).
    pub fn v3_source_count(&self) -> usize {
        if self.is_v3_query() {
            rd16(self.buffer.as_ref(), field::V3Q_NSRC) as usize
        } else {
            0
        }
    }
    /// v3 report: the group records.
    pub fn v3_records(&self) -> GroupRecords<'_, 4> {
        let b = self.buffer.as_ref();
        if self.msg_type() != msg::V3_REPORT {
            return GroupRecords::new(&[], 0);
        }
        GroupRecords::new(&b[field::HEADER_LEN..], rd16(b, field::V3R_NREC))
    }
    /// Whether the checksum verifies over the whole buffer.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref(), 0)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Computes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        wr16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let c = checksum::checksum(self.buffer.as_ref());
        wr16(self.buffer.as_mut(), field::CHECKSUM, c);
    }
}

/// IGMPv3 query extras.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct V3Query {
    /// Suppress router-side processing flag.
    pub s_flag: bool,
    /// Querier's robustness variable (3 bits).
    pub qrv: u8,
    /// Querier's query interval code.
    pub qqic: u8,
    /// Sources.
    pub sources: Vec<u32>,
}

/// An IGMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repr {
    /// Membership query; `group` 0 = general query; `v3` present for a v3 query.
    Query {
        /// Max response code (0 in an IGMPv1 query).
        max_resp: u8,
        /// Group, or 0.
        group: u32,
        /// v3 fields.
        v3: Option<V3Query>,
    },
    /// IGMPv1 report.
    V1Report {
        /// Group joined.
        group: u32,
    },
    /// IGMPv2 report.
    V2Report {
        /// Group joined.
        group: u32,
    },
    /// IGMPv2 leave.
    Leave {
        /// Group left.
        group: u32,
    },
    /// IGMPv3 report.
    V3Report {
        /// Group records.
        records: Vec<GroupRecordRepr<4>>,
    },
}

impl Repr {
    /// Parses a checked view (allocates for v3 lists: slow path only).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> WireResult<Repr> {
        let b = p.buffer.as_ref();
        Ok(match p.msg_type() {
            msg::QUERY => Repr::Query {
                max_resp: p.max_resp(),
                group: p.group(),
                v3: if p.is_v3_query() {
                    Some(V3Query {
                        s_flag: b[field::V3Q_S_QRV] & 0x08 != 0,
                        qrv: b[field::V3Q_S_QRV] & 0x07,
                        qqic: b[field::V3Q_QQIC],
                        sources: (0..p.v3_source_count())
                            .map(|i| rd32(b, field::V3Q_LEN + 4 * i))
                            .collect(),
                    })
                } else {
                    None
                },
            },
            msg::V1_REPORT => Repr::V1Report { group: p.group() },
            msg::V2_REPORT => Repr::V2Report { group: p.group() },
            msg::LEAVE => Repr::Leave { group: p.group() },
            msg::V3_REPORT => Repr::V3Report {
                records: p
                    .v3_records()
                    .map(|r| r.map(|v| GroupRecordRepr::from_view(&v)))
                    .collect::<WireResult<_>>()?,
            },
            _ => {
                return Err(WireError::Malformed {
                    proto: "igmp",
                    reason: "unknown type",
                })
            }
        })
    }
    /// Length on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::Query { v3: Some(q), .. } => field::V3Q_LEN + 4 * q.sources.len(),
            Repr::V3Report { records } => {
                field::HEADER_LEN + records.iter().map(|r| r.buffer_len()).sum::<usize>()
            }
            _ => field::HEADER_LEN,
        }
    }
    /// Writes the message (with checksum) to the front of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> WireResult<()> {
        let n = self.buffer_len();
        need("igmp", buf.len(), n)?;
        let b = &mut buf[..n];
        b.fill(0);
        let (t, mr, g) = match self {
            Repr::Query {
                max_resp, group, ..
            } => (msg::QUERY, *max_resp, *group),
            Repr::V1Report { group } => (msg::V1_REPORT, 0, *group),
            Repr::V2Report { group } => (msg::V2_REPORT, 0, *group),
            Repr::Leave { group } => (msg::LEAVE, 0, *group),
            Repr::V3Report { .. } => (msg::V3_REPORT, 0, 0),
        };
        b[field::TYPE] = t;
        b[field::MAX_RESP] = mr;
        wr32(b, field::GROUP, g);
        match self {
            Repr::Query { v3: Some(q), .. } => {
                b[field::V3Q_S_QRV] = ((q.s_flag as u8) << 3) | (q.qrv & 7);
                b[field::V3Q_QQIC] = q.qqic;
                wr16(b, field::V3Q_NSRC, q.sources.len() as u16);
                for (i, s) in q.sources.iter().enumerate() {
                    wr32(b, field::V3Q_LEN + 4 * i, *s);
                }
            }
            Repr::V3Report { records } => {
                wr16(b, field::V3R_NREC, records.len() as u16);
                let mut off = field::HEADER_LEN;
                for r in records {
                    r.emit(&mut b[off..])?;
                    off += r.buffer_len();
                }
            }
            _ => {}
        }
        Packet::new_unchecked(b).fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::group_record::record_type;
    use super::*;

    #[test]
    fn v3_report_and_query_round_trip() {
        let r = Repr::V3Report {
            records: vec![
                GroupRecordRepr {
                    record_type: record_type::CHANGE_TO_EXCLUDE,
                    group: [239, 1, 1, 1],
                    sources: vec![],
                },
                GroupRecordRepr {
                    record_type: record_type::ALLOW_NEW_SOURCES,
                    group: [239, 2, 2, 2],
                    sources: vec![[10, 0, 0, 1], [10, 0, 0, 2]],
                },
            ],
        };
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf).unwrap();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Repr::parse(&p).unwrap(), r);
        // cut the last source: the iterator reports it
        let p = Packet::new_checked(&buf[..buf.len() - 1]).unwrap();
        assert!(p.v3_records().nth(1).unwrap().is_err());

        let q = Repr::Query {
            max_resp: 100,
            group: 0,
            v3: Some(V3Query {
                s_flag: false,
                qrv: 2,
                qqic: 125,
                sources: vec![0x0a000001],
            }),
        };
        let mut buf = vec![0u8; q.buffer_len()];
        q.emit(&mut buf).unwrap();
        assert_eq!(
            Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(),
            q
        );
    }
}
