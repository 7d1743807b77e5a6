//! The frames one half of an AF_XDP socket has handed to the kernel and not had back: the
//! receive half's (fill ring, the kernel's receive cache, rx ring) or the transmit half's
//! (tx ring, in flight, completion ring). When the socket closes, these are the frames
//! that go back to the store, whatever ring they were in, instead of leaking.
//!
//! One bit a frame, kept by the half's single owner (the thread polling the rx side, the
//! holder of the tx mutex), so marking costs a load and a store to a line this core
//! already has: the circulating frames of a socket span a few dozen lines of the set.
//! A tag per frame in the store (which socket holds it) did the same job with four
//! stores a forwarded packet into a 256 KiB array, each to a line of its own. One
//! 64-byte UDP flow at 0.34-0.42 Mpps, 50 us sleeps, user CPU cycles per packet: with
//! the tags 275-413, with these sets 269-327 (five alternating pairs, medians 350 and
//! 310); with no bookkeeping at all (unsafe, an experiment) 240-382 against 304-412
//! (nine pairs, medians 317 and 372).

/// A set of frame indices below the region's frame count.
#[derive(Debug)]
pub struct FrameSet {
    words: Box<[u64]>,
    len: usize,
}

impl FrameSet {
    /// An empty set for a region of `n_frames` frames.
    pub fn new(n_frames: u32) -> Self {
        FrameSet {
            words: vec![0; (n_frames as usize).div_ceil(64)].into_boxed_slice(),
            len: 0,
        }
    }

    /// Adds `frames`, none of which the set may hold (a frame is in one place at a time).
    ///
    /// A batch at a time, so the count is one add per batch rather than a
    /// read-modify-write per frame on the socket's hot path.
    #[inline(always)]
    pub fn insert_all(&mut self, frames: impl IntoIterator<Item = u32>) {
        let mut n = 0;
        for f in frames {
            let (w, bit) = (f as usize / 64, 1u64 << (f % 64));
            debug_assert!(self.words[w] & bit == 0, "frame {f} handed over twice");
            self.words[w] |= bit;
            n += 1;
        }
        self.len += n;
    }

    /// Removes `frames`, all of which the set must hold (the kernel gives back only what
    /// it was given).
    #[inline(always)]
    pub fn remove_all(&mut self, frames: impl IntoIterator<Item = u32>) {
        let mut n = 0;
        for f in frames {
            let (w, bit) = (f as usize / 64, 1u64 << (f % 64));
            debug_assert!(self.words[w] & bit != 0, "frame {f} came back unasked");
            self.words[w] &= !bit;
            n += 1;
        }
        self.len -= n;
    }

    /// How many frames the set holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Empties the set, returning its frames in ascending order.
    pub fn take_all(&mut self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.len);
        for (i, w) in self.words.iter_mut().enumerate() {
            let mut bits = std::mem::take(w);
            while bits != 0 {
                out.push(i as u32 * 64 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        self.len = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_what_was_inserted_until_removed_and_gives_it_all_back() {
        let mut s = FrameSet::new(200);
        assert_eq!(s.len(), 0);
        s.insert_all([0, 63, 64, 130, 199]);
        assert_eq!(s.len(), 5);
        s.remove_all([64]);
        assert_eq!(s.len(), 4);
        assert_eq!(s.take_all(), vec![0, 63, 130, 199]);
        assert_eq!(s.len(), 0);
        assert_eq!(s.take_all(), Vec::<u32>::new());
        // Usable again after being emptied.
        s.insert_all([63]);
        assert_eq!(s.take_all(), vec![63]);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "handed over twice")]
    fn a_frame_inserted_twice_is_a_bug() {
        let mut s = FrameSet::new(64);
        s.insert_all([5, 5]);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "came back unasked")]
    fn a_frame_removed_that_was_not_held_is_a_bug() {
        let mut s = FrameSet::new(64);
        s.remove_all([5]);
    }
}
