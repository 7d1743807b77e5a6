//! Group records of IGMPv3 (RFC 3376 §4.2.4) and MLDv2 (RFC 3810 §5.2.4) reports.
//!
//! Both protocols use the same record layout, differing only in address size (`A` = 4 or
//! 16): record type (1), aux data length in 4-byte words (1), number of sources (2),
//! multicast address (A), sources (A each), aux data. Multicast snooping walks these
//! straight from the packet bytes, without allocating.

use super::{need, rd16, rd_arr, WireResult};

/// Record types (same values in IGMPv3 and MLDv2).
pub mod record_type {
    /// Current state: MODE_IS_INCLUDE.
    pub const MODE_IS_INCLUDE: u8 = 1;
    /// Current state: MODE_IS_EXCLUDE.
    pub const MODE_IS_EXCLUDE: u8 = 2;
    /// Filter mode change: CHANGE_TO_INCLUDE_MODE (a leave when the source list is empty).
    pub const CHANGE_TO_INCLUDE: u8 = 3;
    /// Filter mode change: CHANGE_TO_EXCLUDE_MODE (a join).
    pub const CHANGE_TO_EXCLUDE: u8 = 4;
    /// Source list change: ALLOW_NEW_SOURCES.
    pub const ALLOW_NEW_SOURCES: u8 = 5;
    /// Source list change: BLOCK_OLD_SOURCES.
    pub const BLOCK_OLD_SOURCES: u8 = 6;
}

/// One group record, borrowed from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRecordView<'a, const A: usize> {
    /// Record type (`record_type::*`).
    pub record_type: u8,
    /// Multicast address.
    pub group: [u8; A],
    sources: &'a [u8],
}

impl<'a, const A: usize> GroupRecordView<'a, A> {
    /// Number of sources.
    pub fn source_count(&self) -> usize {
        self.sources.len() / A
    }
    /// The source addresses.
    pub fn sources(&self) -> impl Iterator<Item = [u8; A]> + 'a {
        self.sources.chunks_exact(A).map(|c| rd_arr(c, 0))
    }
}

/// Iterator over the records of a report; yields an error (and then stops) if a record is
/// cut off.
#[derive(Debug, Clone)]
pub struct GroupRecords<'a, const A: usize> {
    buf: &'a [u8],
    left: u16,
}

impl<'a, const A: usize> GroupRecords<'a, A> {
    /// Iterates `count` records laid out from the start of `buf`.
    pub fn new(buf: &'a [u8], count: u16) -> Self {
        GroupRecords { buf, left: count }
    }
}

impl<'a, const A: usize> Iterator for GroupRecords<'a, A> {
    type Item = WireResult<GroupRecordView<'a, A>>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let b = self.buf;
        let r = (|| {
            need("group record", b.len(), 4 + A)?;
            let aux = b[1] as usize * 4;
            let nsrc = rd16(b, 2) as usize;
            let len = 4 + A + nsrc * A + aux;
            need("group record", b.len(), len)?;
            Ok((
                GroupRecordView {
                    record_type: b[0],
                    group: rd_arr(b, 4),
                    sources: &b[4 + A..4 + A + nsrc * A],
                },
                len,
            ))
        })();
        match r {
            Ok((v, len)) => {
                self.buf = &b[len..];
                Some(Ok(v))
            }
            Err(e) => {
                self.left = 0;
                Some(Err(e))
            }
        }
    }
}

/// An owned group record, for building reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecordRepr<const A: usize> {
    /// Record type.
    pub record_type: u8,
    /// Multicast address.
    pub group: [u8; A],
    /// Sources.
    pub sources: Vec<[u8; A]>,
}

impl<const A: usize> GroupRecordRepr<A> {
    /// Length on the wire (no aux data).
    pub fn buffer_len(&self) -> usize {
        4 + A + self.sources.len() * A
    }
    /// Writes the record to the front of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> WireResult<()> {
        need("group record", buf.len(), self.buffer_len())?;
        buf[0] = self.record_type;
        buf[1] = 0;
        buf[2..4].copy_from_slice(&(self.sources.len() as u16).to_be_bytes());
        buf[4..4 + A].copy_from_slice(&self.group);
        for (i, s) in self.sources.iter().enumerate() {
            let o = 4 + A + i * A;
            buf[o..o + A].copy_from_slice(s);
        }
        Ok(())
    }
    /// Copies a borrowed record.
    pub fn from_view(v: &GroupRecordView<'_, A>) -> Self {
        GroupRecordRepr {
            record_type: v.record_type,
            group: v.group,
            sources: v.sources().collect(),
        }
    }
}
