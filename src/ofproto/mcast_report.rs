//! Reading the group records of IGMPv3 and MLDv2 reports out of the frame bytes.
//!
//! v1/v2 messages carry one group, which the `FlowKey` holds (`igmp_group`, or
//! `nd_target` for MLD); v3/v2 reports carry a list of records that only the packet has.
//! Layouts (RFC 3376 §4.2, RFC 3810 §5.2): after the 8-byte message header
//! (type, reserved/code, checksum, reserved, number of records) each record is
//! type (1), aux data length in 32-bit words (1), number of sources (2), multicast
//! address (4 or 16), sources (4 or 16 each), aux data. Every length is bounds-checked:
//! a short or inconsistent report is an error, never a panic.

use crate::packet::{ethertype, ipproto};

/// Offsets and sizes of the headers we walk, named once.
mod layout {
    pub const ETH_TYPE: usize = 12;
    pub const VLAN_HDR: usize = 4;
    pub const IPV4_MIN_HDR: usize = 20;
    pub const IPV4_PROTO: usize = 9;
    pub const IPV6_HDR: usize = 40;
    pub const IPV6_NEXT: usize = 6;
    pub const REPORT_HDR: usize = 8;
    pub const REPORT_NREC: usize = 6;
    pub const REC_HDR: usize = 4;
}

/// IGMPv3 / MLDv2 record types (RFC 3376 §4.2.12).
mod rec_type {
    pub const MODE_IS_INCLUDE: u8 = 1;
    pub const CHANGE_TO_INCLUDE: u8 = 3;
}

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
    /// The frame ended inside a header or record.
    #[error("report truncated at byte {0}")]
    Truncated(usize),
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

fn get(p: &[u8], at: usize, len: usize) -> Result<&[u8], ReportError> {
    p.get(at..at + len).ok_or(ReportError::Truncated(at))
}

fn u16_at(p: &[u8], at: usize) -> Result<u16, ReportError> {
    let b = get(p, at, 2)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

/// Returns (ethertype, offset of L3) after skipping VLAN tags.
fn l3_start(p: &[u8]) -> Result<(u16, usize), ReportError> {
    let mut off = layout::ETH_TYPE;
    let mut t = u16_at(p, off)?;
    while t == ethertype::VLAN || t == ethertype::QINQ {
        off += layout::VLAN_HDR;
        t = u16_at(p, off)?;
    }
    Ok((t, off + 2))
}

fn records(
    p: &[u8],
    msg: usize,
    addr_len: usize,
    out: &mut Vec<GroupRecord>,
) -> Result<(), ReportError> {
    let n = u16_at(p, msg + layout::REPORT_NREC)? as usize;
    let mut off = msg + layout::REPORT_HDR;
    for _ in 0..n {
        let h = get(p, off, layout::REC_HDR)?;
        let (rtype, aux_words, nsrc) = (
            h[0],
            h[1] as usize,
            u16::from_be_bytes([h[2], h[3]]) as usize,
        );
        let addr = get(p, off + layout::REC_HDR, addr_len)?;
        let mut group = [0u8; 16];
        if addr_len == 4 {
            group = ipv4_mapped(u32::from_be_bytes([addr[0], addr[1], addr[2], addr[3]]));
        } else {
            group.copy_from_slice(addr);
        }
        let len = layout::REC_HDR + addr_len + nsrc * addr_len + aux_words * 4;
        get(p, off, len)?;
        let leave = nsrc == 0
            && (rtype == rec_type::MODE_IS_INCLUDE || rtype == rec_type::CHANGE_TO_INCLUDE);
        out.push(GroupRecord { group, leave });
        off += len;
    }
    Ok(())
}

/// Reads the records of an IGMPv3 membership report (IGMP type 0x22).
pub fn igmpv3_records(p: &[u8]) -> Result<Vec<GroupRecord>, ReportError> {
    let (t, l3) = l3_start(p)?;
    if t != ethertype::IPV4 {
        return Err(ReportError::WrongKind("IPv4 packet"));
    }
    let ip = get(p, l3, layout::IPV4_MIN_HDR)?;
    let ihl = (ip[0] & 0x0f) as usize * 4;
    if ip[0] >> 4 != 4 || ihl < layout::IPV4_MIN_HDR || ip[layout::IPV4_PROTO] != ipproto::IGMP {
        return Err(ReportError::WrongKind("IGMP packet"));
    }
    let msg = l3 + ihl;
    if get(p, msg, 1)?[0] != 0x22 {
        return Err(ReportError::WrongKind("IGMPv3 report"));
    }
    let mut out = Vec::new();
    records(p, msg, 4, &mut out)?;
    Ok(out)
}

/// Reads the records of an MLDv2 listener report (ICMPv6 type 143), skipping the
/// hop-by-hop (router alert) and other extension headers in front of it.
pub fn mldv2_records(p: &[u8]) -> Result<Vec<GroupRecord>, ReportError> {
    let (t, l3) = l3_start(p)?;
    if t != ethertype::IPV6 {
        return Err(ReportError::WrongKind("IPv6 packet"));
    }
    let ip = get(p, l3, layout::IPV6_HDR)?;
    let mut next = ip[layout::IPV6_NEXT];
    let mut off = l3 + layout::IPV6_HDR;
    // Hop-by-hop (0), routing (43), destination options (60): (len + 1) * 8 bytes.
    let mut hops = 0;
    while matches!(next, 0 | 43 | 60) {
        let h = get(p, off, 2)?;
        next = h[0];
        off += (h[1] as usize + 1) * 8;
        hops += 1;
        if hops > 8 {
            return Err(ReportError::WrongKind(
                "MLD packet (too many extension headers)",
            ));
        }
    }
    if next != ipproto::ICMPV6 || get(p, off, 1)?[0] != 143 {
        return Err(ReportError::WrongKind("MLDv2 report"));
    }
    let mut out = Vec::new();
    records(p, off, 16, &mut out)?;
    Ok(out)
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
