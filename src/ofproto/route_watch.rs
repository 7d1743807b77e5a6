//! Watching the host's routes and addresses, so cached tunnel underlay routes follow them.
//!
//! Native tunnels cache the kernel's route to each remote endpoint (`route::RouteCache`),
//! which used to be trusted for `ROUTE_CACHE_TTL` (10 s): after readdressing the underlay,
//! tunnel traffic kept the old source address or interface until the entry expired or
//! someone ran `tnl/neigh/flush`. A `RouteWatcher` listens on rtnetlink's route and
//! address multicast groups (as OVS's route-table module does) and calls back, at most
//! once per `SETTLE` burst of messages, so the owner can flush and revalidate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::netdev::linux::set_recv_timeout;

/// rtnetlink multicast groups (`RTMGRP_*` from `<linux/rtnetlink.h>`): IPv4 and IPv6
/// routes and interface addresses, plus links (a device going down takes its routes).
const GROUPS: u32 = 0x1 /* LINK */
    | 0x10 /* IPV4_IFADDR */
    | 0x40 /* IPV4_ROUTE */
    | 0x100 /* IPV6_IFADDR */
    | 0x400 /* IPV6_ROUTE */;

/// Quiet time after the last message before the callback runs: a readdressing is a
/// burst of messages (address deleted, routes deleted, address added, routes added).
pub const SETTLE: Duration = Duration::from_millis(50);

/// How often the watcher thread looks at its stop flag while nothing happens.
const STOP_POLL: Duration = Duration::from_millis(200);

/// A thread that calls back after route or address changes; stopped on drop.
pub struct RouteWatcher {
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl RouteWatcher {
    /// Subscribes (in the calling thread's network namespace) and starts the thread.
    pub fn start(on_change: impl Fn() + Send + 'static) -> std::io::Result<RouteWatcher> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, GROUPS))?;
        set_recv_timeout(&sock, STOP_POLL)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let join = std::thread::Builder::new()
            .name("route-watch".into())
            .spawn(move || watch(sock, &stop2, on_change))?;
        Ok(RouteWatcher {
            stop,
            join: Some(join),
        })
    }
}

impl Drop for RouteWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            // The callback may hold the last reference to our owner, so the drop can
            // run on the watcher thread itself: it exits on its own after the callback.
            if j.thread().id() != std::thread::current().id() {
                let _ = j.join();
            }
        }
    }
}

fn watch(sock: Socket, stop: &AtomicBool, on_change: impl Fn()) {
    let mut buf = vec![0u8; 64 * 1024];
    // When the first unhandled message of the current burst arrived.
    let mut pending: Option<Instant> = None;
    // The socket's receive timeout, changed (one syscall) only when it must be.
    let mut timeout = STOP_POLL;
    while !stop.load(Ordering::Relaxed) {
        // While a burst is pending, wait only for the rest of SETTLE.
        let wait = match pending {
            Some(_) => SETTLE,
            None => STOP_POLL,
        };
        if wait != timeout && set_recv_timeout(&sock, wait).is_ok() {
            timeout = wait;
        }
        match sock.recv(&mut &mut buf[..], 0) {
            Ok(_) => {
                // Any message: the content does not matter, the whole cache goes.
                pending.get_or_insert_with(Instant::now);
            }
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => {
                    if pending.take().is_some() {
                        on_change();
                    }
                }
                // ENOBUFS: the kernel dropped messages (a flood of changes); treat it
                // as a change. Anything else: keep going, the socket is still ours.
                Some(libc::ENOBUFS) => {
                    pending.get_or_insert_with(Instant::now);
                }
                _ => {
                    tracing::debug!("route watch: {e}");
                    std::thread::sleep(STOP_POLL);
                }
            },
        }
        // A steady stream of messages must not postpone the callback forever.
        if pending.is_some_and(|t| t.elapsed() >= 10 * SETTLE) {
            pending = None;
            on_change();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::sync::atomic::AtomicUsize;

    fn ip(args: &str) {
        let out = Command::new("ip")
            .args(args.split_whitespace())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Needs root: makes and removes a veth pair.
    #[test]
    fn an_address_change_calls_back_once_per_burst() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c2 = calls.clone();
        let w = RouteWatcher::start(move || {
            c2.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        let name = format!("rw{}", std::process::id() % 100_000);
        let _ = Command::new("ip").args(["link", "del", &name]).output();
        ip(&format!("link add {name} type veth peer name {name}p"));
        ip(&format!("link set {name} up"));
        // Let the link burst settle and be counted.
        std::thread::sleep(SETTLE * 6);
        let before = calls.load(Ordering::SeqCst);
        assert!(before >= 1, "creating a link was not seen");
        // A burst: address plus a route.
        ip(&format!("addr add 198.18.77.1/24 dev {name}"));
        ip(&format!(
            "route add 198.19.77.0/24 via 198.18.77.2 dev {name}"
        ));
        let t = Instant::now();
        while calls.load(Ordering::SeqCst) == before && t.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let after = calls.load(Ordering::SeqCst);
        ip(&format!("link del {name}"));
        assert!(
            after > before,
            "no callback within 2 s of an address change"
        );
        assert!(
            after - before <= 2,
            "one burst gave {} callbacks",
            after - before
        );
        drop(w);
        // Stopped: later changes call nothing.
        let n = calls.load(Ordering::SeqCst);
        ip(&format!("link add {name} type veth peer name {name}p"));
        std::thread::sleep(SETTLE * 4);
        ip(&format!("link del {name}"));
        assert_eq!(calls.load(Ordering::SeqCst), n);
    }
}
