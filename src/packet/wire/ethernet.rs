//! Ethernet II / 802.3 frames and 802.1Q (C-tag) / 802.1ad (S-tag) VLAN tags.

use super::{need, rd16, rd_arr, wr16, WireResult};
use crate::packet::ethertype;
use crate::packet::flow_key::VlanTag;

/// Byte offsets within the Ethernet header and a VLAN tag.
pub mod field {
    use core::ops::Range;
    /// Destination MAC.
    pub const DST: Range<usize> = 0..6;
    /// Source MAC.
    pub const SRC: Range<usize> = 6..12;
    /// Ethertype (or the first tag's TPID, or an 802.3 length).
    pub const ETHERTYPE: usize = 12;
    /// Untagged header length.
    pub const HEADER_LEN: usize = 14;
    /// One VLAN tag (TPID + TCI) in bytes.
    pub const VLAN_TAG_LEN: usize = 4;
    /// 802.2 LLC + SNAP header length (DSAP, SSAP, control, OUI, type).
    pub const LLC_SNAP_LEN: usize = 8;
}

/// Whether `t` is a VLAN tag protocol identifier the switch parses (C-tag or S-tag).
#[inline(always)]
pub fn is_vlan_tpid(t: u16) -> bool {
    t == ethertype::VLAN || t == ethertype::QINQ
}

/// A view of an Ethernet header (without tags: tags are parsed from `ethertype` on).
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking; accessors may panic if it is short.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps a buffer, failing if it cannot hold the 14-byte header.
    pub fn new_checked(buffer: T) -> WireResult<Self> {
        need("ethernet", buffer.as_ref().len(), field::HEADER_LEN)?;
        Ok(Packet { buffer })
    }
    /// Releases the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Destination MAC.
    pub fn dst(&self) -> [u8; 6] {
        rd_arr(self.buffer.as_ref(), field::DST.start)
    }
    /// Source MAC.
    pub fn src(&self) -> [u8; 6] {
        rd_arr(self.buffer.as_ref(), field::SRC.start)
    }
    /// The 16 bits after the MACs: an ethertype, a TPID, or an 802.3 length (< 0x600).
    pub fn ethertype(&self) -> u16 {
        rd16(self.buffer.as_ref(), field::ETHERTYPE)
    }
    /// Everything after the 14-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the destination MAC.
    pub fn set_dst(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac);
    }
    /// Sets the source MAC.
    pub fn set_src(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac);
    }
    /// Sets the ethertype / TPID field.
    pub fn set_ethertype(&mut self, t: u16) {
        wr16(self.buffer.as_mut(), field::ETHERTYPE, t);
    }
    /// Everything after the 14-byte header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::HEADER_LEN..]
    }
}

/// The Ethernet header with up to two VLAN tags, as the switch models it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Repr {
    /// Destination MAC.
    pub dst: [u8; 6],
    /// Source MAC.
    pub src: [u8; 6],
    /// Outer tag first; `tpid == 0` marks an absent tag (tags must be filled in order).
    pub vlans: [VlanTag; 2],
    /// Ethertype after the tags.
    pub ethertype: u16,
}

impl Repr {
    /// Parses the header and up to two VLAN tags (a third tag is left as the ethertype,
    /// as OVS does).
    pub fn parse<T: AsRef<[u8]>>(pkt: &Packet<T>) -> WireResult<Repr> {
        let b = pkt.buffer.as_ref();
        let mut r = Repr {
            dst: pkt.dst(),
            src: pkt.src(),
            ..Default::default()
        };
        let mut off = field::ETHERTYPE;
        let mut t = pkt.ethertype();
        for slot in r.vlans.iter_mut() {
            if !is_vlan_tpid(t) {
                break;
            }
            need("vlan", b.len(), off + 6)?;
            *slot = VlanTag {
                tpid: t,
                tci: rd16(b, off + 2),
            };
            off += field::VLAN_TAG_LEN;
            t = rd16(b, off);
        }
        r.ethertype = t;
        Ok(r)
    }

    /// Number of tags present.
    pub fn vlan_count(&self) -> usize {
        self.vlans.iter().take_while(|v| v.present()).count()
    }

    /// Header length including tags.
    pub fn header_len(&self) -> usize {
        field::HEADER_LEN + self.vlan_count() * field::VLAN_TAG_LEN
    }

    /// Writes the header and tags into the front of `buf` (which must hold `header_len`).
    pub fn emit(&self, buf: &mut [u8]) -> WireResult<()> {
        need("ethernet", buf.len(), self.header_len())?;
        buf[field::DST].copy_from_slice(&self.dst);
        buf[field::SRC].copy_from_slice(&self.src);
        let mut off = field::ETHERTYPE;
        for v in self.vlans.iter().take_while(|v| v.present()) {
            wr16(buf, off, v.tpid);
            wr16(buf, off + 2, v.tci);
            off += field::VLAN_TAG_LEN;
        }
        wr16(buf, off, self.ethertype);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_tag_round_trip() {
        let r = Repr {
            dst: [1, 2, 3, 4, 5, 6],
            src: [7, 8, 9, 10, 11, 12],
            vlans: [
                VlanTag {
                    tpid: 0x88a8,
                    tci: 0x2064,
                },
                VlanTag {
                    tpid: 0x8100,
                    tci: 0x000a,
                },
            ],
            ethertype: 0x0800,
        };
        let mut buf = [0u8; 22];
        r.emit(&mut buf).unwrap();
        assert_eq!(&buf[12..14], &[0x88, 0xa8]);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), r);
        // a tag announced but cut off
        let p = Packet::new_checked(&buf[..17]).unwrap();
        assert!(matches!(
            Repr::parse(&p),
            Err(crate::packet::wire::WireError::Truncated { proto: "vlan", .. })
        ));
        assert!(Packet::new_checked(&buf[..13]).is_err());
    }
}
