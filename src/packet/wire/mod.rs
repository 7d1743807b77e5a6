//! Typed views over protocol headers, in the style of smoltcp's `wire` module.
//!
//! Each protocol has a `Packet<T: AsRef<[u8]>>` view whose `new_checked` refuses buffers
//! too short (or too malformed) to read its fixed fields, so accessors can index without
//! further checks; setters exist when `T: AsMut<[u8]>`. Field offsets live in each module's
//! `field` submodule so the fast-path parser (`packet::parse`) reads the same offsets
//! without building views. A `Repr` per protocol is the owned, validated form: `parse`
//! turns a view into it and `emit` writes it back, which is how tests and the translator
//! build frames.

/// The source and destination ports TCP, UDP and SCTP all carry in their first four bytes
/// (RFC 9293, 768, 9260): one definition of their accessors, expanded into each protocol's
/// `Packet` impls, reading the module's own `field::SRC_PORT` / `field::DST_PORT`. `get`
/// goes in the `AsRef` impl, `set` in the `AsMut` one.
macro_rules! port_accessors {
    (get) => {
        /// Source port.
        pub fn src_port(&self) -> u16 {
            super::rd16(self.buffer.as_ref(), field::SRC_PORT)
        }
        /// Destination port.
        pub fn dst_port(&self) -> u16 {
            super::rd16(self.buffer.as_ref(), field::DST_PORT)
        }
    };
    (set) => {
        /// Sets the source port.
        pub fn set_src_port(&mut self, v: u16) {
            super::wr16(self.buffer.as_mut(), field::SRC_PORT, v);
        }
        /// Sets the destination port.
        pub fn set_dst_port(&mut self, v: u16) {
            super::wr16(self.buffer.as_mut(), field::DST_PORT, v);
        }
    };
}

pub mod arp;
pub mod build;
pub mod checksum;
pub mod ethernet;
pub mod geneve;
pub mod gre;
pub mod group_record;
pub mod icmpv4;
pub mod icmpv6;
pub mod igmp;
pub mod ipv4;
pub mod ipv6;
pub mod sctp;
pub mod tcp;
pub mod udp;
pub mod vxlan;

/// Why a buffer could not be viewed or parsed as a header. Every variant names the
/// protocol, so a dropped frame's counter or log line says what was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer ends before the header (or the length it announces) does.
    #[error("{proto}: truncated ({have} bytes, need {need})")]
    Truncated {
        /// Protocol whose header was cut.
        proto: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A field holds a value the protocol forbids.
    #[error("{proto}: malformed: {reason}")]
    Malformed {
        /// Protocol whose header is invalid.
        proto: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Result of wire parsing.
pub type WireResult<T> = Result<T, WireError>;

/// Fails with `Truncated` unless `have >= need`.
#[inline(always)]
pub(crate) fn need(proto: &'static str, have: usize, need: usize) -> WireResult<()> {
    if have < need {
        Err(WireError::Truncated { proto, need, have })
    } else {
        Ok(())
    }
}

/// Big-endian 16-bit read at `off`; caller guarantees bounds.
#[inline(always)]
pub(crate) fn rd16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

/// Big-endian 32-bit read at `off`; caller guarantees bounds.
#[inline(always)]
pub(crate) fn rd32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Big-endian 16-bit write at `off`; caller guarantees bounds.
#[inline(always)]
pub(crate) fn wr16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

/// Big-endian 32-bit write at `off`; caller guarantees bounds.
#[inline(always)]
pub(crate) fn wr32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// Copies `N` bytes at `off` into an array; caller guarantees bounds.
#[inline(always)]
pub(crate) fn rd_arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}
