//! Tap ports ("tap", and "internal": the bridge's own local port, in OVS terms): a tap
//! device we create under the port's name, so the host stack can send and receive through
//! the switch.
//!
//! A tap has no rings: each frame is one `read` or `write` on the non-blocking tun file
//! descriptor. That is why it is not `pollable()`: the non-PMD thread serves it, and an
//! empty `recv` costs one `read` returning EAGAIN, with no busy loop of its own. The device
//! is not persistent: the kernel removes it when the last handle (port, rx or tx queue)
//! is dropped.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::{linux, Netdev, NetdevError, Rxq, Txq};
use crate::dpif::{PortSpec, PortStats};
use crate::packet::buffer::MAX_FRAME;
use crate::packet::{PacketBatch, PacketPool, MAX_BURST};

#[derive(Default)]
struct Counters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    rx_dropped: AtomicU64,
    rx_errors: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    tx_dropped: AtomicU64,
    tx_errors: AtomicU64,
}

struct TapDevice {
    name: String,
    fd: OwnedFd,
    rx_open: AtomicBool,
    counters: Counters,
}

/// A tap device owned by the switch.
pub struct TapNetdev {
    kind: &'static str,
    dev: Arc<TapDevice>,
}

impl TapNetdev {
    /// Creates (or attaches to a persistent) tap device named `spec.name` and brings it
    /// up. `kind` is the port type reported back ("tap" or "internal").
    pub fn open(spec: &PortSpec, kind: &'static str) -> Result<Self, NetdevError> {
        let name = spec.name.as_str();
        linux::check_ifname(name)?;
        for k in spec.options.keys() {
            tracing::warn!(port = name, option = k.as_str(), "{kind}: ignoring option");
        }
        let path = CString::new("/dev/net/tun").expect("no NUL");
        // SAFETY: open(2) on a constant path; the result is checked.
        let raw = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(NetdevError::last_os(format!(
                "{kind} port {name}: opening /dev/net/tun"
            )));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ifreq is plain old data.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF takes a pointer to an ifreq that lives across the call.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) };
        if r < 0 {
            let source = std::io::Error::last_os_error();
            let hint = match source.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::EBUSY) => {
                    " (an interface of another type, or a busy tap, has this name)"
                }
                _ => "",
            };
            return Err(NetdevError::Sys {
                op: format!("{kind} port {name}: creating the tap device{hint}"),
                source,
            });
        }
        linux::set_up(name)?;
        tracing::info!(port = name, kind, "tap port opened");
        Ok(TapNetdev {
            kind,
            dev: Arc::new(TapDevice {
                name: name.to_string(),
                fd,
                rx_open: AtomicBool::new(false),
                counters: Counters::default(),
            }),
        })
    }
}

impl TapDevice {
    fn recv(&self, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize {
        let c = &self.counters;
        let (mut n, mut bytes) = (0u64, 0u64);
        while batch.len() < MAX_BURST {
            let mut p = pool.get();
            let space = p.rx_space();
            let room = space.len().min(MAX_FRAME);
            // SAFETY: reads into the buffer's own writable space.
            let r = crate::pmd::cycles::in_syscall(|| unsafe {
                libc::read(self.fd.as_raw_fd(), space.as_mut_ptr().cast(), room)
            });
            if r < 0 {
                pool.put(p);
                let e = std::io::Error::last_os_error().raw_os_error();
                if !matches!(e, Some(libc::EAGAIN) | Some(libc::EINTR)) {
                    c.rx_errors.fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
            let len = r as usize;
            // A read that fills the buffer may have been truncated (the tap's MTU is
            // larger than a buffer): such frames are dropped, not forwarded cut short.
            if len < 14 || len >= room {
                c.rx_dropped.fetch_add(1, Ordering::Relaxed);
                pool.put(p);
                continue;
            }
            p.set_len(len);
            bytes += len as u64;
            n += 1;
            batch.pkts.push(p);
        }
        if n > 0 {
            c.rx_packets.fetch_add(n, Ordering::Relaxed);
            c.rx_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        n as usize
    }

    fn send(&self, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize {
        let c = &self.counters;
        let (mut n, mut bytes) = (0u64, 0u64);
        for p in batch.pkts.drain(..) {
            let f = p.data();
            // SAFETY: writes the frame bytes, which live across the call.
            let r = crate::pmd::cycles::in_syscall(|| unsafe {
                libc::write(self.fd.as_raw_fd(), f.as_ptr().cast(), f.len())
            });
            if r == f.len() as isize {
                n += 1;
                bytes += f.len() as u64;
            } else if r < 0
                && matches!(
                    std::io::Error::last_os_error().raw_os_error(),
                    Some(libc::EAGAIN) | Some(libc::EIO)
                )
            {
                // Queue full, or the device is down: dropped, not an error.
                c.tx_dropped.fetch_add(1, Ordering::Relaxed);
            } else {
                c.tx_errors.fetch_add(1, Ordering::Relaxed);
            }
            pool.put(p);
        }
        c.tx_packets.fetch_add(n, Ordering::Relaxed);
        c.tx_bytes.fetch_add(bytes, Ordering::Relaxed);
        n as usize
    }
}

struct TapRxq {
    dev: Arc<TapDevice>,
}

impl Rxq for TapRxq {
    fn recv(
        &mut self,
        batch: &mut PacketBatch,
        pool: &mut PacketPool,
    ) -> Result<usize, NetdevError> {
        Ok(self.dev.recv(batch, pool))
    }

    fn qid(&self) -> usize {
        0
    }

    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.dev.fd.as_raw_fd())
    }
}

impl Drop for TapRxq {
    fn drop(&mut self) {
        self.dev.rx_open.store(false, Ordering::Release);
    }
}

struct TapTxq {
    dev: Arc<TapDevice>,
}

impl Txq for TapTxq {
    fn send(&mut self, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize {
        self.dev.send(batch, pool)
    }

    fn flush(&mut self) {}
}

impl Netdev for TapNetdev {
    fn name(&self) -> &str {
        &self.dev.name
    }

    fn netdev_type(&self) -> &'static str {
        self.kind
    }

    fn n_rxq(&self) -> usize {
        1
    }

    fn open_rxq(&self, qid: usize) -> Result<Box<dyn Rxq>, NetdevError> {
        if qid != 0 {
            return Err(NetdevError::NoSuchQueue { qid, n: 1 });
        }
        if self.dev.rx_open.swap(true, Ordering::AcqRel) {
            return Err(NetdevError::BadOption(format!(
                "{} port {}: rx queue 0 is already open",
                self.kind, self.dev.name
            )));
        }
        Ok(Box::new(TapRxq {
            dev: self.dev.clone(),
        }))
    }

    fn open_txq(&self, _thread_idx: usize) -> Result<Box<dyn Txq>, NetdevError> {
        Ok(Box::new(TapTxq {
            dev: self.dev.clone(),
        }))
    }

    fn pollable(&self) -> bool {
        false
    }

    fn mac(&self) -> [u8; 6] {
        linux::hw_addr(&self.dev.name).unwrap_or([0; 6])
    }

    fn mtu(&self) -> u32 {
        linux::mtu(&self.dev.name).unwrap_or(0)
    }

    fn is_up(&self) -> bool {
        linux::is_up(&self.dev.name)
    }

    fn stats(&self) -> PortStats {
        let c = &self.dev.counters;
        PortStats {
            rx_packets: c.rx_packets.load(Ordering::Relaxed),
            rx_bytes: c.rx_bytes.load(Ordering::Relaxed),
            tx_packets: c.tx_packets.load(Ordering::Relaxed),
            tx_bytes: c.tx_bytes.load(Ordering::Relaxed),
            rx_dropped: c.rx_dropped.load(Ordering::Relaxed),
            tx_dropped: c.tx_dropped.load(Ordering::Relaxed),
            rx_errors: c.rx_errors.load(Ordering::Relaxed),
            tx_errors: c.tx_errors.load(Ordering::Relaxed),
            ..PortStats::default()
        }
    }
}
