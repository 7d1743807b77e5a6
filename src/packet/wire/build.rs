//! Whole-frame assembly from `Repr`s, with lengths, next-header chains and checksums
//! filled in: how tests, the translator (packet-out, replies) and tunnel setup build
//! frames. Allocates; not for the per-packet fast path. Fails only when a part does not
//! fit its length field (an IP payload over 65535 bytes) or a `Repr` is invalid.

use super::{
    arp, checksum, ethernet, icmpv4, icmpv6, igmp, ipv4, ipv6, sctp, tcp, udp, WireError,
    WireResult,
};
use crate::packet::{ethertype, ipproto};

/// The upper layer of a frame being built.
#[derive(Debug, Clone)]
pub enum L4<'a> {
    /// TCP header and payload (checksum computed).
    Tcp(tcp::Repr, &'a [u8]),
    /// UDP header (its `payload_len` is replaced by the payload's) and payload.
    Udp(udp::Repr, &'a [u8]),
    /// UDP with a zero ("none") checksum: legal over IPv4 only.
    UdpNoChecksum(udp::Repr, &'a [u8]),
    /// SCTP common header and chunk bytes (CRC32c computed).
    Sctp(sctp::Repr, &'a [u8]),
    /// ICMPv4 header and payload.
    Icmpv4(icmpv4::Repr, &'a [u8]),
    /// ICMPv6 message (checksum over the IPv6 pseudo-header).
    Icmpv6(icmpv6::Repr),
    /// IGMP message.
    Igmp(igmp::Repr),
    /// Any protocol number with raw bytes (later fragments, GRE, unknown protocols).
    Raw(u8, &'a [u8]),
}

fn too_long(proto: &'static str) -> WireError {
    WireError::Malformed {
        proto,
        reason: "payload longer than the 16-bit length field allows",
    }
}

/// Copies `header` followed by `payload` into one buffer.
fn cat(
    header_len: usize,
    payload: &[u8],
    emit: impl FnOnce(&mut [u8]) -> WireResult<()>,
) -> WireResult<Vec<u8>> {
    let mut b = vec![0u8; header_len + payload.len()];
    emit(&mut b)?;
    b[header_len..].copy_from_slice(payload);
    Ok(b)
}

impl L4<'_> {
    fn protocol(&self) -> u8 {
        match self {
            L4::Tcp(..) => ipproto::TCP,
            L4::Udp(..) | L4::UdpNoChecksum(..) => ipproto::UDP,
            L4::Sctp(..) => ipproto::SCTP,
            L4::Icmpv4(..) => ipproto::ICMP,
            L4::Icmpv6(..) => ipproto::ICMPV6,
            L4::Igmp(..) => ipproto::IGMP,
            L4::Raw(p, _) => *p,
        }
    }

    /// Serialises the upper layer; `pseudo(proto, len)` gives the pseudo-header sum.
    fn bytes(
        &self,
        pseudo: impl Fn(u8, u32) -> u32,
        v6: Option<(&[u8; 16], &[u8; 16])>,
    ) -> WireResult<Vec<u8>> {
        Ok(match self {
            L4::Tcp(r, pl) => {
                let mut b = cat(r.header_len(), pl, |b| r.emit(b))?;
                let n = b.len() as u32;
                tcp::Packet::new_unchecked(&mut b[..]).fill_checksum(pseudo(ipproto::TCP, n));
                b
            }
            L4::Udp(r, pl) | L4::UdpNoChecksum(r, pl) => {
                let len = u16::try_from(pl.len() + udp::field::HEADER_LEN)
                    .map_err(|_| too_long("udp"))?;
                let r = udp::Repr {
                    payload_len: len - udp::field::HEADER_LEN as u16,
                    ..*r
                };
                let mut b = cat(r.header_len(), pl, |b| r.emit(b))?;
                if matches!(self, L4::Udp(..)) {
                    udp::Packet::new_unchecked(&mut b[..])
                        .fill_checksum(pseudo(ipproto::UDP, len as u32));
                }
                b
            }
            L4::Sctp(r, chunks) => {
                let mut b = cat(r.header_len(), chunks, |b| r.emit(b))?;
                sctp::Packet::new_unchecked(&mut b[..]).fill_checksum();
                b
            }
            L4::Icmpv4(r, pl) => {
                let mut b = vec![0u8; r.header_len() + pl.len()];
                r.emit(&mut b, pl)?;
                b
            }
            L4::Icmpv6(r) => {
                let mut b = vec![0u8; r.buffer_len()];
                let (s, d) = v6.unwrap_or((&[0; 16], &[0; 16]));
                r.emit(&mut b, s, d)?;
                b
            }
            L4::Igmp(r) => {
                let mut b = vec![0u8; r.buffer_len()];
                r.emit(&mut b)?;
                b
            }
            L4::Raw(_, pl) => pl.to_vec(),
        })
    }
}

fn with_eth(eth: &ethernet::Repr, et: u16, payload: &[u8]) -> WireResult<Vec<u8>> {
    let e = ethernet::Repr {
        ethertype: et,
        ..*eth
    };
    cat(e.header_len(), payload, |b| e.emit(b))
}

/// An Ethernet frame carrying IPv4 and `l4`; the IPv4 protocol, lengths and all checksums
/// are filled in (the `ip.protocol`/`payload_len` given are ignored).
pub fn ipv4_frame(eth: &ethernet::Repr, ip: &ipv4::Repr, l4: &L4<'_>) -> WireResult<Vec<u8>> {
    let body = l4.bytes(
        |p, n| checksum::pseudo_header_v4(ip.src, ip.dst, p, n as u16),
        None,
    )?;
    let total = ip.header_len() + body.len();
    if total > u16::MAX as usize {
        return Err(too_long("ipv4"));
    }
    let ip = ipv4::Repr {
        protocol: l4.protocol(),
        payload_len: body.len() as u16,
        ..*ip
    };
    let l3 = cat(ip.header_len(), &body, |b| ip.emit(b))?;
    with_eth(eth, ethertype::IPV4, &l3)
}

/// An Ethernet frame carrying IPv6, the extension headers `exts` (next-header fields
/// chained automatically) and `l4`, with lengths and checksums filled in.
pub fn ipv6_frame(
    eth: &ethernet::Repr,
    ip: &ipv6::Repr,
    exts: &[ipv6::ExtRepr],
    l4: &L4<'_>,
) -> WireResult<Vec<u8>> {
    let proto = l4.protocol();
    let body = l4.bytes(
        |p, n| checksum::pseudo_header_v6(&ip.src, &ip.dst, p, n),
        Some((&ip.src, &ip.dst)),
    )?;
    let ext_len: usize = exts.iter().map(|e| e.len()).sum();
    let payload_len = u16::try_from(ext_len + body.len()).map_err(|_| too_long("ipv6"))?;
    let ip = ipv6::Repr {
        next_header: exts.first().map(|e| e.kind()).unwrap_or(proto),
        payload_len,
        ..*ip
    };
    let mut l3 = vec![0u8; ip.header_len() + ext_len + body.len()];
    ip.emit(&mut l3)?;
    let mut off = ip.header_len();
    for (i, e) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map(|n| n.kind()).unwrap_or(proto);
        let e = match *e {
            ipv6::ExtRepr::Options { kind, len8, .. } => ipv6::ExtRepr::Options {
                kind,
                next_header: next,
                len8,
            },
            ipv6::ExtRepr::Fragment {
                offset,
                more,
                ident,
                ..
            } => ipv6::ExtRepr::Fragment {
                next_header: next,
                offset,
                more,
                ident,
            },
        };
        e.emit(&mut l3[off..])?;
        off += e.len();
    }
    l3[off..].copy_from_slice(&body);
    with_eth(eth, ethertype::IPV6, &l3)
}

/// An Ethernet frame carrying an ARP packet.
pub fn arp_frame(eth: &ethernet::Repr, a: &arp::Repr) -> WireResult<Vec<u8>> {
    let mut b = vec![0u8; a.buffer_len()];
    a.emit(&mut b)?;
    with_eth(eth, ethertype::ARP, &b)
}

/// An Ethernet frame with an arbitrary ethertype and payload.
pub fn raw_frame(eth: &ethernet::Repr, et: u16, payload: &[u8]) -> WireResult<Vec<u8>> {
    with_eth(eth, et, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_payloads_are_errors() {
        let big = vec![0u8; 70_000];
        let e = ethernet::Repr::default();
        let u = L4::Udp(udp::Repr::default(), &big);
        assert!(matches!(
            ipv4_frame(&e, &ipv4::Repr::default(), &u),
            Err(WireError::Malformed { proto: "udp", .. })
        ));
        let r = L4::Raw(99, &big);
        assert!(matches!(
            ipv4_frame(&e, &ipv4::Repr::default(), &r),
            Err(WireError::Malformed { proto: "ipv4", .. })
        ));
        assert!(matches!(
            ipv6_frame(&e, &ipv6::Repr::default(), &[], &r),
            Err(WireError::Malformed { proto: "ipv6", .. })
        ));
        assert_eq!(
            ipv4_frame(&e, &ipv4::Repr::default(), &L4::Raw(99, &big[..100]))
                .unwrap()
                .len(),
            134
        );
    }
}
