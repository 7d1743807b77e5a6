//! Fixture for the packet layer's kernel interop tests: two fresh network namespaces
//! joined by a veth pair, a raw AF_PACKET socket on one end, and a way to run code inside
//! a namespace. Everything is torn down on drop, also when a test panics.
//!
//! These tests need root; they fail (not skip) when the environment is broken.

#![allow(dead_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Output;
use std::time::{Duration, Instant};

#[path = "../common/netns.rs"]
mod netns;

#[allow(unused_imports)] // each test binary uses its own subset
pub use netns::{require_root, run, run_in_ns, unique_id, Netns, VethPair};

/// Two namespaces `a` and `b` with a veth pair `if_a` (in `a`) <-> `if_b` (in `b`), both
/// up, with fixed MACs.
pub struct NsPair {
    /// Namespace holding `if_a`.
    pub a: String,
    /// Namespace holding `if_b`.
    pub b: String,
    /// Interface in `a`.
    pub if_a: String,
    /// Interface in `b`.
    pub if_b: String,
    /// MAC of `if_a`.
    pub mac_a: [u8; 6],
    /// MAC of `if_b`.
    pub mac_b: [u8; 6],
    // Dropped in this order; deleting the namespaces deletes the pair and anything else
    // inside.
    veth: VethPair,
    ns_a: Netns,
    ns_b: Netns,
}

fn mac_str(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl NsPair {
    /// Creates the pair; names carry the pid and a counter so parallel tests never meet.
    pub fn new() -> Self {
        let id = unique_id();
        let n = id % 100;
        let (a, b) = (format!("rvs-pk-{id}a"), format!("rvs-pk-{id}b"));
        let (if_a, if_b) = (format!("pk{id}a"), format!("pk{id}b"));
        let ns_a = Netns::new(&a);
        let ns_b = Netns::new(&b);
        let veth = VethPair::new(&if_a, Some(&ns_a), &if_b, Some(&ns_b), None);
        let mac_a = [0x02, 0x70, 0x6b, 0, n as u8, 0x0a];
        let mac_b = [0x02, 0x70, 0x6b, 0, n as u8, 0x0b];
        for (ns, ifn, mac) in [(&ns_a, &if_a, &mac_a), (&ns_b, &if_b, &mac_b)] {
            ns.ip(&["link", "set", ifn, "address", &mac_str(mac)]);
            ns.ip(&["link", "set", ifn, "up"]);
            // Frames captured on a veth must carry final checksums.
            ns.exec("ethtool", &["-K", ifn, "tx", "off"]);
        }
        NsPair {
            a,
            b,
            if_a,
            if_b,
            mac_a,
            mac_b,
            veth,
            ns_a,
            ns_b,
        }
    }

    fn netns(&self, ns: &str) -> &Netns {
        if ns == self.a {
            &self.ns_a
        } else {
            assert_eq!(ns, self.b, "namespace {ns} is not part of this pair");
            &self.ns_b
        }
    }

    /// Runs `ip <args>` inside namespace `ns`.
    pub fn ip(&self, ns: &str, args: &[&str]) -> Output {
        self.netns(ns).ip(args)
    }

    /// Runs `cmd args` inside namespace `ns` (via `ip netns exec`).
    pub fn exec(&self, ns: &str, cmd: &str, args: &[&str]) -> Output {
        self.netns(ns).exec(cmd, args)
    }
}

/// A raw AF_PACKET socket bound to one interface, seeing frames in both directions.
pub struct RawSock {
    fd: OwnedFd,
}

impl RawSock {
    /// Opens the socket on `ifname` inside namespace `ns`.
    pub fn open(ns: &str, ifname: &str) -> RawSock {
        let ifname = ifname.to_string();
        run_in_ns(ns, move || {
            let proto = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: plain socket(2) call.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32) };
            assert!(
                fd >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let c = CString::new(ifname.clone()).unwrap();
            // SAFETY: c is a valid NUL-terminated string.
            let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
            assert_ne!(idx, 0, "no interface {ifname}");
            // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = idx as i32;
            // SAFETY: sll is a valid sockaddr_ll of the given size.
            let r = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    &sll as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
            RawSock { fd }
        })
    }

    /// Receives one frame, waiting at most `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
        if r <= 0 {
            return None;
        }
        let mut buf = vec![0u8; 9216];
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return None;
        }
        buf.truncate(n as usize);
        Some(buf)
    }

    /// Every frame that arrives until `quiet` passes without one (or `max` elapses).
    pub fn drain(&self, quiet: Duration, max: Duration) -> Vec<Vec<u8>> {
        let end = Instant::now() + max;
        let mut v = Vec::new();
        while Instant::now() < end {
            match self.recv(quiet) {
                Some(f) => v.push(f),
                None => break,
            }
        }
        v
    }

    /// Sends one frame out of the interface.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: frame is valid for its length; the socket is bound to an interface.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
    }
}
