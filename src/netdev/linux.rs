//! Linux interface queries and settings shared by the real port types: index, MAC, MTU,
//! flags (up, promiscuous), queue count and the kernel's own counters.
//!
//! Plain `ioctl`s on a throwaway datagram socket: they are control-path calls made when a
//! port is opened or its state is shown, never per packet.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::NetdevError;
use crate::dpif::PortStats;

/// `ETHTOOL_GCHANNELS` from `<linux/ethtool.h>`.
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// `struct ethtool_channels` from `<linux/ethtool.h>`.
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// Checks that `name` can be a Linux interface name (1..=15 bytes, no '/', NUL or space).
pub fn check_ifname(name: &str) -> Result<(), NetdevError> {
    if name.is_empty()
        || name.len() >= libc::IFNAMSIZ
        || name
            .bytes()
            .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace())
    {
        return Err(NetdevError::BadOption(format!(
            "interface name '{name}': expected 1 to 15 bytes without '/', NUL or spaces"
        )));
    }
    Ok(())
}

/// The interface index of `name`, or `NoSuchDevice`.
pub fn ifindex(name: &str) -> Result<u32, NetdevError> {
    check_ifname(name)?;
    let c = CString::new(name).map_err(|_| NetdevError::NoSuchDevice(name.to_string()))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(NetdevError::NoSuchDevice(name.to_string()));
    }
    Ok(idx)
}

fn control_socket() -> Result<OwnedFd, NetdevError> {
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(NetdevError::last_os("opening a control socket"));
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq_for(name: &str) -> Result<libc::ifreq, NetdevError> {
    check_ifname(name)?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

fn ioctl_ifreq(
    name: &str,
    request: libc::Ioctl,
    req: &mut libc::ifreq,
    what: &str,
) -> Result<(), NetdevError> {
    let sock = control_socket()?;
    // SAFETY: `req` is a valid ifreq for this request, living across the call.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), request, req as *mut libc::ifreq) };
    if r < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENODEV) {
            return Err(NetdevError::NoSuchDevice(name.to_string()));
        }
        return Err(NetdevError::Sys {
            op: format!("{what} of {name}"),
            source: err,
        });
    }
    Ok(())
}

/// The interface's MAC address (SIOCGIFHWADDR).
pub fn hw_addr(name: &str) -> Result<[u8; 6], NetdevError> {
    let mut req = ifreq_for(name)?;
    ioctl_ifreq(
        name,
        libc::SIOCGIFHWADDR,
        &mut req,
        "reading the MAC address",
    )?;
    // SAFETY: the kernel filled the hwaddr member for this request.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = *b as u8;
    }
    Ok(mac)
}

/// The interface's MTU (SIOCGIFMTU).
pub fn mtu(name: &str) -> Result<u32, NetdevError> {
    let mut req = ifreq_for(name)?;
    ioctl_ifreq(name, libc::SIOCGIFMTU, &mut req, "reading the MTU")?;
    // SAFETY: the kernel filled the mtu member for this request.
    Ok(unsafe { req.ifr_ifru.ifru_mtu } as u32)
}

/// The interface flags (IFF_UP, IFF_RUNNING, IFF_PROMISC, ...) (SIOCGIFFLAGS).
pub fn flags(name: &str) -> Result<u32, NetdevError> {
    let mut req = ifreq_for(name)?;
    ioctl_ifreq(name, libc::SIOCGIFFLAGS, &mut req, "reading the flags")?;
    // SAFETY: the kernel filled the flags member for this request.
    Ok(unsafe { req.ifr_ifru.ifru_flags } as u16 as u32)
}

/// Sets and clears interface flags (SIOCSIFFLAGS), e.g. to bring a port up.
pub fn update_flags(name: &str, set: u32, clear: u32) -> Result<(), NetdevError> {
    let old = flags(name)?;
    let new = (old | set) & !clear;
    if new == old {
        return Ok(());
    }
    let mut req = ifreq_for(name)?;
    req.ifr_ifru.ifru_flags = new as u16 as libc::c_short;
    ioctl_ifreq(name, libc::SIOCSIFFLAGS, &mut req, "setting the flags")
}

/// Brings the interface administratively up.
pub fn set_up(name: &str) -> Result<(), NetdevError> {
    update_flags(name, libc::IFF_UP as u32, 0)
}

/// Whether the interface is administratively up and has carrier.
pub fn is_up(name: &str) -> bool {
    match flags(name) {
        Ok(f) => {
            let want = (libc::IFF_UP | libc::IFF_RUNNING) as u32;
            f & want == want
        }
        Err(_) => false,
    }
}

/// Number of queue pairs usable by a socket bound to one rx queue and one tx queue: the
/// combined (or rx) channel count from `ETHTOOL_GCHANNELS`, capped by the queues the kernel
/// actually registered (`/sys/class/net/<name>/queues`), at least 1.
pub fn queue_count(name: &str) -> usize {
    let sysfs = sysfs_queue_pairs(name);
    let ethtool = ethtool_channels(name).ok().and_then(|c| {
        let n = if c.combined_count > 0 {
            c.combined_count
        } else {
            c.rx_count.min(c.tx_count)
        };
        (n > 0).then_some(n as usize)
    });
    let n = match (ethtool, sysfs) {
        (Some(e), Some(s)) => e.min(s),
        (Some(e), None) => e,
        (None, Some(s)) => s,
        (None, None) => 1,
    };
    n.max(1)
}

fn sysfs_queue_pairs(name: &str) -> Option<usize> {
    let dir = std::fs::read_dir(format!("/sys/class/net/{name}/queues")).ok()?;
    let (mut rx, mut tx) = (0usize, 0usize);
    for entry in dir.flatten() {
        let n = entry.file_name();
        let n = n.to_string_lossy();
        if n.starts_with("rx-") {
            rx += 1;
        } else if n.starts_with("tx-") {
            tx += 1;
        }
    }
    let n = rx.min(tx);
    (n > 0).then_some(n)
}

fn ethtool_channels(name: &str) -> Result<EthtoolChannels, NetdevError> {
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    let mut req = ifreq_for(name)?;
    req.ifr_ifru.ifru_data = (&mut ch as *mut EthtoolChannels).cast();
    ioctl_ifreq(
        name,
        libc::SIOCETHTOOL as libc::Ioctl,
        &mut req,
        "ETHTOOL_GCHANNELS",
    )?;
    Ok(ch)
}

/// Keeps an interface in promiscuous mode for as long as it lives, the way the kernel
/// counts it (`promiscuity`): a packet socket's `PACKET_MR_PROMISC` membership, which the
/// kernel drops when the socket closes, so a crash never leaves the interface promiscuous.
/// The socket is never bound and receives nothing.
pub struct PromiscGuard {
    _sock: OwnedFd,
}

impl PromiscGuard {
    /// Turns promiscuous mode on for `ifindex`.
    pub fn new(ifindex: u32) -> std::io::Result<Self> {
        // SAFETY: plain socket(2) call with protocol 0 (no frames are delivered to it).
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as i32,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(&sock, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)?;
        Ok(PromiscGuard { _sock: sock })
    }
}

/// The kernel's counters for the interface (`/sys/class/net/<name>/statistics`); zeros for
/// counters it does not expose.
pub fn kernel_stats(name: &str) -> PortStats {
    let read = |c: &str| -> u64 {
        std::fs::read_to_string(format!("/sys/class/net/{name}/statistics/{c}"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    PortStats {
        rx_packets: read("rx_packets"),
        rx_bytes: read("rx_bytes"),
        tx_packets: read("tx_packets"),
        tx_bytes: read("tx_bytes"),
        rx_dropped: read("rx_dropped"),
        tx_dropped: read("tx_dropped"),
        rx_errors: read("rx_errors"),
        tx_errors: read("tx_errors"),
        ..PortStats::default()
    }
}

/// setsockopt(2) with a typed value: `val` is passed with its own size.
pub fn setsockopt<F: AsRawFd, T>(fd: &F, level: i32, opt: i32, val: &T) -> std::io::Result<()> {
    // SAFETY: `val` points to a live T of the size passed, for the whole call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sets `SO_RCVTIMEO`, so a thread blocked in recv can look at a stop flag now and then.
pub fn set_recv_timeout<F: AsRawFd>(fd: &F, t: std::time::Duration) -> std::io::Result<()> {
    let tv = libc::timeval {
        tv_sec: t.as_secs() as libc::time_t,
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_queried() {
        assert_eq!(ifindex("lo").unwrap(), 1);
        assert_eq!(hw_addr("lo").unwrap(), [0; 6]);
        assert!(mtu("lo").unwrap() >= 1500);
        assert!(queue_count("lo") >= 1);
    }

    #[test]
    fn bad_names_are_rejected() {
        assert!(matches!(
            ifindex("no-such-dev0"),
            Err(NetdevError::NoSuchDevice(_))
        ));
        assert!(matches!(
            ifindex("a-name-that-is-too-long"),
            Err(NetdevError::BadOption(_))
        ));
        assert!(matches!(ifindex(""), Err(NetdevError::BadOption(_))));
    }
}
