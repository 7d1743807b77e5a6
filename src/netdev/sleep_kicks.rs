//! A sleeping poll thread's transmit kicks, made by the system call it sleeps in.
//!
//! In AF_XDP copy mode a frame queued on the tx ring leaves only inside a kick, a
//! `sendto` that runs the kernel's transmit path on the caller's core; `poll(2)` on the
//! socket runs the same path when the socket was bound with need_wakeup (the kernel's
//! `xsk_poll` transmits in copy mode). So a PMD about to sleep (`pmd_max_sleep_us`) after
//! an iteration that queued output does both in one `ppoll`: the sockets with no events
//! requested, the sleep as its timeout. The kernel transmits, then sleeps until the
//! timeout, which runs from the call (so a kick that takes longer than the sleep leaves
//! no sleep after it), and the thread enters and leaves the kernel once per iteration
//! rather than twice. Returning from the kernel's transmit path costs the switch its
//! caches, which is most of what the second entry cost in user time: 64-byte UDP at
//! 0.36-0.43 Mpps, 50 us sleeps, 354 -> 232 user cycles per packet (medians of three
//! alternating pairs; 11-35% less over the four workloads of BENCHMARKS.md).
//!
//! With no events requested, `ppoll` ignores the socket's receive wakeups (the kernel
//! filters a waiter's wakeups by the events it asked for), so arriving frames do not cut
//! the sleep short.

use std::os::fd::RawFd;
use std::time::Duration;

/// The sockets whose kick an iteration's flush left to the sleep that follows it
/// (`Txq::flush_into`), and the sleep that makes them.
#[derive(Default)]
pub struct SleepKicks {
    fds: Vec<libc::pollfd>,
}

impl SleepKicks {
    /// Room for `n` sockets; more grow the list once.
    pub fn with_capacity(n: usize) -> Self {
        SleepKicks {
            fds: Vec::with_capacity(n),
        }
    }

    /// Leaves `fd`'s kick to the coming sleep.
    pub fn push(&mut self, fd: RawFd) {
        self.fds.push(libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        });
    }

    /// Whether any kick waits for the sleep.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// Sleeps for `d` from now, making the kicks first (one `ppoll`; a plain
    /// `clock_nanosleep` when there are none), and forgets them. A signal or an error on
    /// a socket ends the sleep early; the caller measures what it slept.
    pub fn sleep(&mut self, d: Duration) {
        let ts = libc::timespec {
            tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        };
        // Direct system calls: libc's wrappers also toggle thread cancellation around
        // them (std's `thread::sleep` adds a loop of its own), about 9% of a sleeping
        // PMD's user time at 0.36 Mpps.
        if self.fds.is_empty() {
            // SAFETY: a relative sleep on the monotonic clock; `ts` outlives the call and
            // no remainder is asked for.
            unsafe {
                libc::syscall(
                    libc::SYS_clock_nanosleep,
                    libc::CLOCK_MONOTONIC,
                    0,
                    &ts as *const libc::timespec,
                    std::ptr::null_mut::<libc::timespec>(),
                )
            };
        } else {
            // SAFETY: `fds` holds `len` initialised pollfds that the kernel may write
            // `revents` into; `ts` outlives the call; no signal mask is passed.
            unsafe {
                libc::syscall(
                    libc::SYS_ppoll,
                    self.fds.as_mut_ptr(),
                    self.fds.len() as libc::nfds_t,
                    &ts as *const libc::timespec,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            };
            self.fds.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    /// The sleep must last its length even though the polled descriptor has data waiting
    /// (no events requested), and must not return at once without a descriptor either.
    #[test]
    fn sleeps_the_full_length_with_readable_descriptors_and_without_any() {
        let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
        std::io::Write::write_all(&mut &w, b"ready").unwrap();
        let mut kicks = SleepKicks::with_capacity(1);
        kicks.push(r.as_raw_fd());
        assert!(!kicks.is_empty());
        let t0 = Instant::now();
        kicks.sleep(Duration::from_millis(30));
        let slept = t0.elapsed();
        assert!(slept >= Duration::from_millis(30), "{slept:?}");
        assert!(kicks.is_empty(), "the kicks are made once");
        let t0 = Instant::now();
        kicks.sleep(Duration::from_millis(20));
        assert!(t0.elapsed() >= Duration::from_millis(20));
    }
}
