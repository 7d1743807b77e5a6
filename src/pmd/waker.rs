//! How a thread that sleeps when idle (the non-PMD thread) is woken: an eventfd the
//! control plane writes after queueing a message, polled together with the descriptors
//! of the devices the thread serves.
//!
//! It replaced a 200 us receive timeout on the control channel, which made the idle
//! thread wake 5,000 times a second and spend about 10% of a core spinning in the
//! channel's backoff, and delayed tap frames by up to 200 us.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// An eventfd: `wake` makes it readable until `drain`.
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
}

impl Waker {
    /// Creates the eventfd (non-blocking, close-on-exec).
    pub fn new() -> std::io::Result<Self> {
        // SAFETY: eventfd has no memory preconditions.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        Ok(Waker {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Makes the descriptor readable (called after queueing a message).
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. A full counter (EAGAIN) is still a
        // pending wakeup, so the result does not matter.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Clears pending wakeups.
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; EAGAIN (nothing pending) is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    /// Sleeps until the waker or one of `fds` is readable, or `timeout` passes. Returns
    /// whether the waker fired. `pollfds` is scratch space (kept to avoid allocating).
    pub fn sleep(&self, fds: &[RawFd], timeout: Duration, pollfds: &mut Vec<libc::pollfd>) -> bool {
        pollfds.clear();
        pollfds.push(libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        pollfds.extend(fds.iter().map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }));
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `pollfds` is a valid array of that many pollfd structs, `ts` a valid
        // timespec, and a null signal mask leaves the mask unchanged (plain poll with a
        // nanosecond timeout).
        let n = unsafe {
            libc::ppoll(
                pollfds.as_mut_ptr(),
                pollfds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        let woken = n > 0 && pollfds[0].revents & libc::POLLIN != 0;
        if woken {
            self.drain();
        }
        woken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn wake_interrupts_sleep_and_drain_clears_it() {
        let w = std::sync::Arc::new(Waker::new().unwrap());
        let mut scratch = Vec::new();
        // Nothing pending: sleeps the whole timeout.
        let t = Instant::now();
        assert!(!w.sleep(&[], Duration::from_millis(30), &mut scratch));
        assert!(t.elapsed() >= Duration::from_millis(25));
        // A wake before the sleep is not lost.
        w.wake();
        let t = Instant::now();
        assert!(w.sleep(&[], Duration::from_secs(5), &mut scratch));
        assert!(t.elapsed() < Duration::from_secs(1));
        // ...and is consumed: the next sleep times out again.
        assert!(!w.sleep(&[], Duration::from_millis(5), &mut scratch));
        // A wake from another thread ends a long sleep early.
        let w2 = w.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w2.wake();
        });
        let t = Instant::now();
        assert!(w.sleep(&[], Duration::from_secs(5), &mut scratch));
        assert!(t.elapsed() < Duration::from_secs(2));
        h.join().unwrap();
    }

    #[test]
    fn a_readable_device_fd_ends_the_sleep() {
        let w = Waker::new().unwrap();
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: writes one byte from a live buffer to the pipe we just made.
        assert_eq!(unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) }, 1);
        let mut scratch = Vec::new();
        let t = Instant::now();
        assert!(!w.sleep(&[fds[0]], Duration::from_secs(5), &mut scratch));
        assert!(t.elapsed() < Duration::from_secs(1));
        // SAFETY: closing the descriptors pipe(2) gave us.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    }
}
