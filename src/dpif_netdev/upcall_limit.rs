//! Upcall rate limiting: a token bucket per PMD thread.
//!
//! A translation costs microseconds while a hit costs tens of nanoseconds, so a flood of
//! new flows (a port scan, a DoS) would otherwise turn a PMD into a translator and starve
//! every established flow on it. Misses beyond the bucket are dropped and counted as lost
//! (`upcall_rate_limited`), like OVS's upcall drops. The bucket is only touched on a miss.

use std::time::Instant;

/// Default sustained upcalls per second per PMD.
pub const DEFAULT_UPCALL_RATE: u32 = 20_000;
/// Default burst (bucket depth).
pub const DEFAULT_UPCALL_BURST: u32 = 2_000;

/// A token bucket refilled from the wall clock.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of depth `burst` refilling at `rate` tokens per second. A rate of 0
    /// disables the limit.
    pub fn new(rate: u32, burst: u32) -> Self {
        TokenBucket {
            rate: rate as f64,
            burst: burst.max(1) as f64,
            tokens: burst.max(1) as f64,
            last: Instant::now(),
        }
    }

    /// Takes one token if available.
    pub fn take(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 10);
        let ok = (0..50).filter(|_| b.take(t0)).count();
        assert_eq!(ok, 10);
        // 5 ms later, 5 more tokens.
        let t1 = t0 + Duration::from_millis(5);
        let ok = (0..50).filter(|_| b.take(t1)).count();
        assert!((4..=6).contains(&ok), "{ok}");
        let mut unlimited = TokenBucket::new(0, 1);
        assert!((0..10_000).all(|_| unlimited.take(t1)));
    }
}
