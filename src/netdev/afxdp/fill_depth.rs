//! How many frames a socket keeps on its fill ring: as many as the load needs, not as
//! many as the ring holds.
//!
//! The kernel takes fill entries in order, so a frame handed over now is received into
//! only after every frame already on the ring: the frames a socket cycles through are as
//! many as its fill ring holds. With a full 4,096-slot ring each received header sits on
//! a page of its own that the poll thread last touched 4,096 packets ago, past what the
//! TLB covers (4 KiB frames, one page each), so every first touch pays a page walk as
//! well as the cache miss. Keeping 1,024 frames on the ring while the load allows cut the
//! PMD's user CPU cycles per packet (64-byte UDP at 0.35-0.43 Mpps, 50 us sleeps) from a
//! median 397 to 330 in seven alternating pairs at 256 frames and to 331 in three at
//! 1,024 (benches/e2e/HISTORY.md). A fixed small ring loses frames when the thread stops for a
//! while: under a CPU quota (3 ms off in every 5) a fixed 256 delivered a fifth less.
//! So the depth adapts: it doubles as soon as the kernel used more than half of it
//! between two top-ups, and halves only after a long run of top-ups after receiving
//! that each found less than a quarter used; an idle queue keeps its depth for the next
//! burst.
//!
//! Doubling after a stop comes too late for the stop itself: a vCPU that the host
//! freezes for 100 ms (as this project's development VM does when both of its vCPUs are
//! busy) needs 100,000 frames ready *before* it stops at 1 Mpps. A port configured with
//! `n_rxq_desc` asks for exactly that, so its depth never shrinks below the ring it
//! asked for (`FillDepth::new`'s `floor`).

/// The depth a light socket settles at (when its share of the region allows).
pub const FILL_DEPTH_MIN: u32 = 1024;

/// Consecutive light top-ups after receiving (one every 64 received frames) before the
/// depth halves: about 130,000 frames, a third of a second at 0.4 Mpps. A thread that
/// stops now and then (a quota, a busy core) sees the kernel use half its depth at least
/// once in such a run, and keeps the depth.
const SHRINK_AFTER: u32 = 2048;

/// One socket's fill depth and the evidence for shrinking it.
#[derive(Debug)]
pub struct FillDepth {
    depth: u32,
    light: u32,
    /// The least depth (`FILL_DEPTH_MIN`, or the whole ring for a port that asked for
    /// its ring to be kept full).
    floor: u32,
}

impl FillDepth {
    /// Starts at `cap` (the socket's share of the region), so a burst that comes before
    /// the first polls finds every frame it could have had; never shrinks below `floor`.
    pub fn new(cap: u32, floor: u32) -> Self {
        FillDepth {
            depth: cap,
            light: 0,
            floor,
        }
    }

    /// The depth to top the ring up to after receiving, given how many frames it still
    /// held (`held`) and the most it may hold now (`cap`, which falls as sockets open on
    /// the region).
    pub fn next(&mut self, held: u32, cap: u32) -> u32 {
        let used = self.depth.saturating_sub(held);
        if used > self.depth / 2 {
            self.depth = self.depth.saturating_mul(2);
            self.light = 0;
        } else if used < self.depth / 4 {
            self.light += 1;
            if self.light >= SHRINK_AFTER {
                self.depth = (self.depth / 2).max(self.floor);
                self.light = 0;
            }
        } else {
            self.light = 0;
        }
        self.current(cap)
    }

    /// The depth to top the ring up to while idle: unchanged, since an idle queue says
    /// nothing about the bursts to come (it keeps what it had for the next one).
    pub fn current(&mut self, cap: u32) -> u32 {
        self.depth = self.depth.min(cap).max(self.floor.min(cap));
        self.depth
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Top-ups that each find `used` frames taken, until the depth stops changing.
    fn settle(d: &mut FillDepth, used: u32, cap: u32) -> u32 {
        let mut depth = d.depth;
        for _ in 0..20 * SHRINK_AFTER {
            depth = d.next(depth.saturating_sub(used), cap);
        }
        depth
    }

    #[test]
    fn a_light_socket_shrinks_to_the_minimum_and_a_stopped_one_grows_back_at_once() {
        let mut d = FillDepth::new(4096, FILL_DEPTH_MIN);
        assert_eq!(
            d.next(4096 - 85, 4096),
            4096,
            "one light top-up changes nothing"
        );
        assert_eq!(settle(&mut d, 85, 4096), FILL_DEPTH_MIN);
        // The thread stopped and the kernel emptied the ring: double on every such top-up.
        assert_eq!(d.next(0, 4096), 2 * FILL_DEPTH_MIN);
        assert_eq!(d.next(0, 4096), 4096);
        assert_eq!(d.next(0, 4096), 4096, "never past the cap");
    }

    #[test]
    fn occasional_heavy_top_ups_keep_the_depth() {
        let mut d = FillDepth::new(4096, FILL_DEPTH_MIN);
        let mut depth = 4096;
        for i in 0..10 * SHRINK_AFTER {
            // A light load, and a stop that empties the ring every 1,000 top-ups.
            let used = if i % 1000 == 0 { depth } else { 85 };
            depth = d.next(depth - used, 4096);
        }
        assert_eq!(depth, 4096);
    }

    #[test]
    fn the_cap_bounds_the_depth_from_above_and_the_minimum_from_below() {
        let mut d = FillDepth::new(4096, FILL_DEPTH_MIN);
        assert_eq!(d.current(4096), 4096, "idle top-ups keep the depth");
        assert_eq!(d.next(4096, 512), 512, "more sockets, a smaller share");
        assert_eq!(settle(&mut d, 0, 512), 512, "the minimum yields to the cap");
        let mut d = FillDepth::new(64, FILL_DEPTH_MIN);
        assert_eq!(d.next(0, 64), 64);
    }

    #[test]
    fn a_ring_kept_full_stays_full_under_light_load() {
        let mut d = FillDepth::new(131_072, 131_072);
        assert_eq!(settle(&mut d, 85, 131_072), 131_072);
        assert_eq!(d.current(131_072), 131_072);
        assert_eq!(d.next(131_072, 65_536), 65_536, "the share still caps it");
    }
}
