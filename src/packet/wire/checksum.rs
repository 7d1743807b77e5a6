//! The Internet checksum (RFC 1071), its pseudo-headers, and incremental update (RFC 1624).
//!
//! All checksum arithmetic in the switch goes through here so the one's-complement corner
//! cases (carry folding, the 0x0000/0xffff equivalence, UDP's "zero means none") are
//! handled once.

/// One's-complement sum of `data` as big-endian 16-bit words (odd tail padded with zero),
/// not yet folded. Add several partial sums and `fold` once.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u16::from_be_bytes([rest[i], rest[i + 1]]) as u64;
        i += 2;
    }
    if i < rest.len() {
        acc += (rest[i] as u64) << 8;
    }
    // fold 64 -> 32 without losing carries
    let folded = (acc & 0xffff_ffff) + (acc >> 32);
    let folded = (folded & 0xffff_ffff) + (folded >> 32);
    ((folded & 0xffff) + (folded >> 16)) as u32
}

/// Folds a 32-bit partial sum into 16 bits (with end-around carry).
#[inline]
pub fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The checksum field value for `data` whose checksum field is zero: `!fold(sum(data))`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Partial sum of the IPv4 pseudo-header used by TCP, UDP (RFC 768/793).
#[inline]
pub fn pseudo_header_v4(src: u32, dst: u32, proto: u8, l4_len: u16) -> u32 {
    (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto as u32 + l4_len as u32
}

/// Partial sum of the IPv6 pseudo-header used by TCP, UDP and ICMPv6 (RFC 8200 §8.1).
#[inline]
pub fn pseudo_header_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, l4_len: u32) -> u32 {
    sum(src) + sum(dst) + (l4_len >> 16) + (l4_len & 0xffff) + next_header as u32
}

/// RFC 1624 eqn. 3: the new checksum field after one 16-bit word of the covered data
/// changed from `old` to `new`: `HC' = ~(~HC + ~m + m')`.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    let s = (!csum as u32) + (!old as u32) + new as u32;
    !fold(s)
}

/// Incremental update for a 32-bit word (e.g. an IPv4 address) changing.
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let s = (!csum as u32)
        + (!(old >> 16) as u16 as u32)
        + (!(old as u16) as u32)
        + (new >> 16)
        + (new & 0xffff);
    !fold(s)
}

/// Incremental update for a 128-bit value (an IPv6 address) changing.
#[inline]
pub fn update128(csum: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    let mut s = !csum as u32;
    for i in (0..16).step_by(2) {
        s += !u16::from_be_bytes([old[i], old[i + 1]]) as u32;
        s += u16::from_be_bytes([new[i], new[i + 1]]) as u32;
    }
    !fold(s)
}

/// Whether `data` (with its checksum field in place) and the extra partial `pseudo` sum
/// verify: the folded total must be all ones.
#[inline]
pub fn verify(data: &[u8], pseudo: u32) -> bool {
    fold(sum(data) + fold(pseudo) as u32) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example bytes: sum is 0xddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_matches_full() {
        let mut d = [
            0x45u8, 0, 0, 84, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = checksum(&d);
        d[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verify(&d, 0));
        let old = u32::from_be_bytes([d[12], d[13], d[14], d[15]]);
        let new = 0xc0a8_0101u32;
        d[12..16].copy_from_slice(&new.to_be_bytes());
        let inc = update32(c, old, new);
        d[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc, checksum(&d));
    }
}
