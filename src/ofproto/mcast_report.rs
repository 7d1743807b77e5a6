//! Reading the group records of IGMPv3 and MLDv2 reports out of the frame bytes.
//!
//! v1/v2 messages carry one group, which the `FlowKey` holds (`igmp_group`, or
//! `nd_target` for MLD); v3/v2 reports carry a list of records that only the packet has.
//! The frame is parsed with the packet module's parser (to find the L4 header after VLAN
//! tags, IPv4 options and IPv6 extension headers) and the records are walked with its
//! `wire` views, which bounds-check every record: a short or inconsistent report is an
//! error, never a panic. Semantics follow RFC 3376 §6.4 as OVS applies them: a record in
//! INCLUDE mode with no sources (IS_IN{}, TO_IN{}) is a leave, every other record a join.

use crate::packet::meta::OFS_NONE;
use crate::packet::parse::parse_frame_meta;
use crate::packet::wire::group_record::{record_type, GroupRecords};
use crate::packet::wire::{icmpv6, igmp, WireError};
use crate::packet::{ipproto, PacketMeta};

/// One group record, reduced to what snooping needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    /// Group address; IPv4 groups as IPv4-mapped IPv6 (`::ffff:a.b.c.d`).
    pub group: [u8; 16],
    /// True when the host leaves (INCLUDE mode with no sources), false when it joins.
    pub leave: bool,
}

/// Why a report could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// A header or record is cut off or invalid.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The frame is not the kind of report we were told it is.
    #[error("not an {0}")]
    WrongKind(&'static str),
}

/// Maps an IPv4 address to the IPv4-mapped IPv6 form used as mdb key.
pub fn ipv4_mapped(a: u32) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[10] = 0xff;
    g[11] = 0xff;
    g[12..].copy_from_slice(&a.to_be_bytes());
    g
}

/// The L4 payload of `p` if its protocol is `proto`.
fn l4<'a>(p: &'a [u8], proto: u8, what: &'static str) -> Result<&'a [u8], ReportError> {
    let mut meta = PacketMeta::default();
    parse_frame_meta(p, &mut meta);
    if meta.l4_ofs == OFS_NONE || meta.l4_proto != proto {
        return Err(ReportError::WrongKind(what));
    }
    p.get(meta.l4_ofs as usize..)
        .ok_or(ReportError::WrongKind(what))
}

fn collect<const A: usize>(
    recs: GroupRecords<'_, A>,
    map: impl Fn([u8; A]) -> [u8; 16],
) -> Result<Vec<GroupRecord>, ReportError> {
    recs.map(|r| {
        let r = r?;
        let include = matches!(
            r.record_type,
            record_type::MODE_IS_INCLUDE | record_type::CHANGE_TO_INCLUDE
        );
        Ok(GroupRecord {
            group: map(r.group),
            leave: include && r.source_count() == 0,
        })
    })
    .collect()
}

/// Reads the records of an IGMPv3 membership report (IGMP type 0x22).
pub fn igmpv3_records(p: &[u8]) -> Result<Vec<GroupRecord>, ReportError> {
    let msg = igmp::Packet::new_checked(l4(p, ipproto::IGMP, "IGMP packet")?)?;
    if msg.msg_type() != 0x22 {
        return Err(ReportError::WrongKind("IGMPv3 report"));
    }
    collect(msg.v3_records(), |g| ipv4_mapped(u32::from_be_bytes(g)))
}

/// Reads the records of an MLDv2 listener report (ICMPv6 type 143).
pub fn mldv2_records(p: &[u8]) -> Result<Vec<GroupRecord>, ReportError> {
    let msg = icmpv6::Packet::new_checked(l4(p, ipproto::ICMPV6, "ICMPv6 packet")?)?;
    if msg.msg_type() != 143 {
        return Err(ReportError::WrongKind("MLDv2 report"));
    }
    collect(msg.mld2_records(), |g| g)
}

#[cfg(test)]
pub(crate) mod build {
    //! Frame builders for tests: real byte layouts of the reports.

    /// An untagged IGMPv3 report frame with `(record type, group, n sources)` records.
    pub fn igmpv3_report(src_mac: [u8; 6], records: &[(u8, [u8; 4], u16)]) -> Vec<u8> {
        let mut f = vec![0x01, 0x00, 0x5e, 0x00, 0x00, 0x16];
        f.extend_from_slice(&src_mac);
        f.extend_from_slice(&[0x08, 0x00]);
        let mut igmp = vec![0x22, 0, 0, 0, 0, 0];
        igmp.extend_from_slice(&(records.len() as u16).to_be_bytes());
        for (t, g, nsrc) in records {
            igmp.extend_from_slice(&[*t, 0]);
            igmp.extend_from_slice(&nsrc.to_be_bytes());
            igmp.extend_from_slice(g);
            for i in 0..*nsrc {
                igmp.extend_from_slice(&[10, 0, 0, i as u8 + 1]);
            }
        }
        // IPv4 header with router alert option (IHL 6).
        let total = 24 + igmp.len();
        let mut ip = vec![0x46, 0xc0];
        ip.extend_from_slice(&(total as u16).to_be_bytes());
        ip.extend_from_slice(&[
            0, 0, 0, 0, 1, 2, 0, 0, 10, 0, 0, 1, 224, 0, 0, 22, 0x94, 4, 0, 0,
        ]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&igmp);
        f
    }

    /// An untagged MLDv2 report frame with `(record type, group, n sources)` records.
    pub fn mldv2_report(src_mac: [u8; 6], records: &[(u8, [u8; 16], u16)]) -> Vec<u8> {
        let mut f = vec![0x33, 0x33, 0, 0, 0, 0x16];
        f.extend_from_slice(&src_mac);
        f.extend_from_slice(&[0x86, 0xdd]);
        let mut mld = vec![143, 0, 0, 0, 0, 0];
        mld.extend_from_slice(&(records.len() as u16).to_be_bytes());
        for (t, g, nsrc) in records {
            mld.extend_from_slice(&[*t, 0]);
            mld.extend_from_slice(&nsrc.to_be_bytes());
            mld.extend_from_slice(g);
            for i in 0..*nsrc {
                let mut s = [0u8; 16];
                s[0] = 0xfe;
                s[1] = 0x80;
                s[15] = i as u8 + 1;
                mld.extend_from_slice(&s);
            }
        }
        let hbh = [58u8, 0, 5, 2, 0, 0, 1, 0]; // next=ICMPv6, router alert, PadN
        let plen = hbh.len() + mld.len();
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(plen as u16).to_be_bytes());
        f.extend_from_slice(&[0, 1]); // next header hop-by-hop, hop limit 1
        let mut src = [0u8; 16];
        src[0] = 0xfe;
        src[1] = 0x80;
        src[15] = 1;
        f.extend_from_slice(&src);
        let mut dst = [0u8; 16];
        dst[0] = 0xff;
        dst[1] = 0x02;
        dst[15] = 0x16;
        f.extend_from_slice(&dst);
        f.extend_from_slice(&hbh);
        f.extend_from_slice(&mld);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn igmpv3_include_exclude() {
        let f = build::igmpv3_report(
            [0, 0, 0, 0, 0, 1],
            &[
                (4, [239, 1, 1, 1], 0),
                (3, [239, 2, 2, 2], 0),
                (1, [239, 3, 3, 3], 2),
            ],
        );
        let r = igmpv3_records(&f).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0],
            GroupRecord {
                group: ipv4_mapped(0xef01_0101),
                leave: false
            }
        );
        assert!(r[1].leave, "TO_IN with no sources is a leave");
        assert!(!r[2].leave, "IS_IN with sources is a join");
    }

    #[test]
    fn truncated_reports_are_errors() {
        let f = build::igmpv3_report([0, 0, 0, 0, 0, 1], &[(2, [239, 1, 1, 1], 3)]);
        for cut in 0..f.len() {
            assert!(igmpv3_records(&f[..cut]).is_err(), "cut at {cut}");
        }
        let g = [0xffu8, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42];
        let f = build::mldv2_report([0, 0, 0, 0, 0, 1], &[(4, g, 0)]);
        assert_eq!(mldv2_records(&f).unwrap()[0].group, g);
        for cut in 0..f.len() {
            assert!(mldv2_records(&f[..cut]).is_err(), "cut at {cut}");
        }
    }
}
