//! Fixture for the packet layer's kernel interop tests: two fresh network namespaces
//! joined by a veth pair, a raw AF_PACKET socket on one end, and a way to run code inside
//! a namespace. Everything is torn down on drop, also when a test panics.
//!
//! These tests need root; they fail (not skip) when the environment is broken.

#![allow(dead_code)]

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs a command and panics with its output if it fails.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

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
        // SAFETY: geteuid has no preconditions.
        assert_eq!(
            unsafe { libc::geteuid() },
            0,
            "this test needs root (namespaces, veth)"
        );
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = (std::process::id() % 100_000) * 10 + n % 10;
        let p = NsPair {
            a: format!("rvs-pk-{id}a"),
            b: format!("rvs-pk-{id}b"),
            if_a: format!("pk{id}a"),
            if_b: format!("pk{id}b"),
            mac_a: [0x02, 0x70, 0x6b, 0, (n % 256) as u8, 0x0a],
            mac_b: [0x02, 0x70, 0x6b, 0, (n % 256) as u8, 0x0b],
        };
        for ns in [&p.a, &p.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            run("ip", &["netns", "add", ns]);
        }
        run(
            "ip",
            &[
                "-n", &p.a, "link", "add", &p.if_a, "type", "veth", "peer", "name", &p.if_b,
                "netns", &p.b,
            ],
        );
        for (ns, ifn, mac) in [(&p.a, &p.if_a, &p.mac_a), (&p.b, &p.if_b, &p.mac_b)] {
            run(
                "ip",
                &["-n", ns, "link", "set", ifn, "address", &mac_str(mac)],
            );
            run("ip", &["-n", ns, "link", "set", ifn, "up"]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
            // Frames captured on a veth must carry final checksums.
            run(
                "ip",
                &["netns", "exec", ns, "ethtool", "-K", ifn, "tx", "off"],
            );
        }
        p
    }

    /// Runs `ip <args>` inside namespace `ns`.
    pub fn ip(&self, ns: &str, args: &[&str]) -> Output {
        let mut a = vec!["-n", ns];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// Runs `cmd args` inside namespace `ns` (via `ip netns exec`).
    pub fn exec(&self, ns: &str, cmd: &str, args: &[&str]) -> Output {
        let mut a = vec!["netns", "exec", ns, cmd];
        a.extend_from_slice(args);
        run("ip", &a)
    }
}

impl Drop for NsPair {
    fn drop(&mut self) {
        // Deleting the namespaces deletes the veth pair and anything else inside.
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Runs `f` on a thread that has entered namespace `ns`; sockets it creates stay in `ns`.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let nsf = File::open(format!("/var/run/netns/{ns}")).expect("netns file");
            // SAFETY: a valid namespace fd; only this thread changes namespace.
            let r = unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns {ns}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("netns thread")
    })
}

/// A raw AF_PACKET socket bound to one interface, seeing frames in both directions.
pub struct RawSock {
    fd: OwnedFd,
}

impl RawSock {
    /// Opens the socket on `ifname` inside namespace `ns`.
    pub fn open(ns: &str, ifname: &str) -> RawSock {
        let ifname = ifname.to_string();
        in_netns(ns, move || {
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
