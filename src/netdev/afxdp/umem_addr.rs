//! Where a frame's bytes are, as the umem rings name them, and where the kernel puts the
//! frames it receives.
//!
//! Every frame is a 4 KiB slot of the `FrameStore` region, and descriptors name bytes by
//! their offset in the region. Two things make that more than a multiplication:
//!
//! - **Staggered fill addresses.** The kernel writes a received frame at its fill address
//!   plus `XDP_PACKET_HEADROOM`. With every fill address at the start of its slot, every
//!   frame's headers sit at the same offset in a 4 KiB page: the same set of the L1 data
//!   cache (64 sets of 64-byte lines, 4 KiB per way) and one of 32 sets of a 1 MiB 8-way
//!   L2. A batch's 32 headers then compete for 8 L1 ways, and the next batch's headers,
//!   prefetched while this one is processed, evicted each other before the parser read
//!   them: it stalled on the first header load for 85% of its samples. A socket
//!   registered with unaligned chunks (`XDP_UMEM_UNALIGNED_CHUNK_FLAG`) takes any fill
//!   address, so frame `i` is filled `(i % STAGGER_SLOTS) * STAGGER_STEP` bytes into its
//!   slot and consecutive frames' headers fall in different sets (16 of the 64). The
//!   chunk such a socket registers is a slot minus the largest stagger, so no received
//!   frame runs past its slot; that caps the frames it receives at `STAGGERED_RX_MAX`
//!   bytes.
//! - **Offsets in descriptors.** For an unaligned-chunk socket the kernel reports a
//!   received frame as its fill address in the low 48 bits plus the data's offset from it
//!   in the high 16 (`XSK_UNALIGNED_BUF_OFFSET_SHIFT`); an aligned socket's addresses have
//!   no high bits. `frame_of` reads both.

use crate::packet::frames::{FrameStore, FRAME_SIZE};
use crate::packet::prefetch;

/// Bytes between two staggered fill positions: one cache line.
pub const STAGGER_STEP: usize = prefetch::LINE;
/// Fill positions frames cycle through on a staggered socket: the headers of any 16
/// consecutive frames in distinct L1 sets. Eight measured as well as sixteen on the
/// AMD host of the fifth session; on the Intel one of the twenty-third (48 KiB,
/// 12-way L1) eight sets held a batch's headers, the next batch's prefetched ones and
/// everything else those sets map, and the transmit bounce copy and the parser stalled
/// on header lines already read once: 7.1% and 3.4% of a sleeping PMD's user samples
/// on one 64-byte flow with eight, 4.3% and 2.1% with sixteen. The price is 512 bytes
/// of room per slot (`STAGGERED_RX_MAX`).
pub const STAGGER_SLOTS: usize = 16;
/// Headroom the kernel keeps in front of a received frame (`XDP_PACKET_HEADROOM`).
pub const XDP_PACKET_HEADROOM: usize = 256;
/// The chunk size a staggered socket registers: a slot minus the largest stagger.
pub const STAGGERED_CHUNK: usize = FRAME_SIZE - (STAGGER_SLOTS - 1) * STAGGER_STEP;
/// The longest frame a staggered socket receives (longer ones the kernel drops and
/// counts): 2,880 bytes, against 3,840 for an aligned one.
pub const STAGGERED_RX_MAX: usize = STAGGERED_CHUNK - XDP_PACKET_HEADROOM;
/// The longest frame an aligned socket receives.
pub const ALIGNED_RX_MAX: usize = FRAME_SIZE - XDP_PACKET_HEADROOM;

const ADDR_BITS: u32 = 48;
const ADDR_MASK: u64 = (1 << ADDR_BITS) - 1;

/// The region offset a descriptor address stands for (the unaligned-mode offset in the
/// high bits added to the base in the low ones).
#[inline(always)]
pub fn region_offset(addr: u64) -> u64 {
    (addr & ADDR_MASK) + (addr >> ADDR_BITS)
}

/// The frame a descriptor address points into, and the offset in that frame.
#[inline(always)]
pub fn frame_of(addr: u64) -> (u32, usize) {
    let off = region_offset(addr);
    (
        (off / FRAME_SIZE as u64) as u32,
        (off % FRAME_SIZE as u64) as usize,
    )
}

/// The umem address of byte `offset` of frame `idx`.
#[inline(always)]
pub fn umem_addr(idx: u32, offset: usize) -> u64 {
    idx as u64 * FRAME_SIZE as u64 + offset as u64
}

/// The address frame `idx` goes into the fill ring with: staggered on a socket with
/// unaligned chunks, the slot's start otherwise.
#[inline(always)]
pub fn fill_addr(idx: u32, staggered: bool) -> u64 {
    let stagger = if staggered {
        (idx as usize % STAGGER_SLOTS) * STAGGER_STEP
    } else {
        0
    };
    umem_addr(idx, stagger)
}

/// Where the bytes of descriptor address `addr` start in `store` (for prefetch hints,
/// which may point anywhere).
#[inline(always)]
fn frame_start(store: &FrameStore, addr: u64) -> *const u8 {
    store
        .base()
        .as_ptr()
        .wrapping_add(region_offset(addr) as usize)
}

/// Asks for the cache line holding the start of the frame at descriptor address `addr`
/// (Ethernet, IPv4 and UDP or TCP headers: all the parser reads of most frames).
#[inline(always)]
pub fn prefetch_header(store: &FrameStore, addr: u64) {
    prefetch::line(frame_start(store, addr), prefetch::Level::L1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The L1 set a byte offset maps to (64 sets of 64 bytes).
    fn l1_set(offset: u64) -> u64 {
        (offset / 64) % 64
    }

    #[test]
    fn staggered_frames_put_their_headers_in_distinct_l1_sets() {
        let sets: std::collections::HashSet<u64> = (0..STAGGER_SLOTS as u32)
            .map(|i| l1_set(fill_addr(i, true) + XDP_PACKET_HEADROOM as u64))
            .collect();
        assert_eq!(sets.len(), STAGGER_SLOTS);
        let aligned: std::collections::HashSet<u64> = (0..STAGGER_SLOTS as u32)
            .map(|i| l1_set(fill_addr(i, false) + XDP_PACKET_HEADROOM as u64))
            .collect();
        assert_eq!(aligned.len(), 1, "aligned frames all share one set");
    }

    #[test]
    fn a_staggered_chunk_never_leaves_its_frame() {
        for i in 0..64u32 {
            let start = fill_addr(i, true);
            let end = start + STAGGERED_CHUNK as u64;
            assert_eq!(frame_of(start).0, i);
            assert!(end <= umem_addr(i + 1, 0), "frame {i}: chunk ends at {end}");
        }
        assert_eq!(STAGGERED_RX_MAX, 2880);
        assert_eq!(ALIGNED_RX_MAX, 3840);
    }

    #[test]
    fn descriptor_addresses_decode_in_both_modes() {
        // Aligned: a plain offset.
        assert_eq!(frame_of(umem_addr(5, 256)), (5, 256));
        // Unaligned: the fill address below bit 48, the data offset above it.
        let fill = fill_addr(13, true);
        let rx = fill + ((XDP_PACKET_HEADROOM as u64) << 48);
        let (idx, start) = frame_of(rx);
        assert_eq!(idx, 13);
        assert_eq!(
            start,
            (13 % STAGGER_SLOTS) * STAGGER_STEP + XDP_PACKET_HEADROOM
        );
        assert_eq!(region_offset(rx), umem_addr(13, start));
    }
}
