//! Underlay routes for tunnel endpoints, asked of the host's routing table over rtnetlink
//! (RTM_GETROUTE, as `ip route get` does) and cached.
//!
//! A native tunnel's outer header needs the interface the kernel would send to the remote
//! endpoint from (the underlay bridge's internal port, OVS style), the source address it
//! would use and the next hop (the gateway, or the remote itself when on-link). Asking the
//! kernel costs a syscall, so answers are cached for `ROUTE_CACHE_TTL`; `flush` forgets
//! them (the daemon's `route_watch::RouteWatcher` does on every route or address change,
//! tnl/neigh/flush does, and so does a route lookup failure).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use netlink_packet_core::NLM_F_REQUEST;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::dpif_netlink::genl::NlSocket;

/// How long a looked-up route is trusted before asking the kernel again.
pub const ROUTE_CACHE_TTL: Duration = Duration::from_secs(10);

/// Why no underlay route could be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The rtnetlink request failed (no route, unreachable, socket error).
    #[error("no underlay route to {dst}: {reason}")]
    NoRoute {
        /// Tunnel destination.
        dst: IpAddr,
        /// What the kernel or the socket said.
        reason: String,
    },
}

/// The kernel's answer for one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Output interface name.
    pub dev: String,
    /// Preferred source address, if the kernel gave one.
    pub src: Option<IpAddr>,
    /// Gateway, or `None` when the destination is on-link.
    pub gateway: Option<IpAddr>,
}

impl Route {
    /// The address whose MAC the outer header needs: the gateway, else the destination.
    pub fn next_hop(&self, dst: IpAddr) -> IpAddr {
        self.gateway.unwrap_or(dst)
    }
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn if_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes into our buffer.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(s.to_string_lossy().into_owned())
}

/// Asks the kernel (RTM_GETROUTE) how it would reach `dst`.
pub fn lookup(dst: IpAddr) -> Result<Route, RouteError> {
    let err = |reason: String| RouteError::NoRoute { dst, reason };
    let mut msg = RouteMessage::default();
    msg.header.address_family = match dst {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.destination_prefix_length = if dst.is_ipv4() { 32 } else { 128 };
    msg.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(dst)));
    let mut sock = NlSocket::open_route().map_err(|e| err(format!("rtnetlink socket: {e}")))?;
    let replies: Vec<RouteNetlinkMessage> = sock
        .transact_generic(RouteNetlinkMessage::GetRoute(msg), NLM_F_REQUEST)
        .map_err(|e| err(e.to_string()))?;
    for r in replies {
        let RouteNetlinkMessage::NewRoute(rm) = r else {
            continue;
        };
        let mut route = Route {
            dev: String::new(),
            src: None,
            gateway: None,
        };
        for a in &rm.attributes {
            match a {
                RouteAttribute::Oif(i) => route.dev = if_name(*i).unwrap_or_default(),
                RouteAttribute::PrefSource(s) => route.src = addr(s),
                RouteAttribute::Gateway(g) => route.gateway = addr(g),
                _ => {}
            }
        }
        if route.dev.is_empty() {
            return Err(err("the kernel named no output interface".into()));
        }
        return Ok(route);
    }
    Err(err("no RTM_NEWROUTE in the reply".into()))
}

/// Routes per tunnel destination, refreshed after `ROUTE_CACHE_TTL`.
#[derive(Default)]
pub struct RouteCache {
    entries: Mutex<HashMap<IpAddr, (Route, Instant)>>,
}

impl RouteCache {
    /// The cached route to `dst`, asking the kernel when absent or stale.
    pub fn get(&self, dst: IpAddr, now: Instant) -> Result<Route, RouteError> {
        {
            let e = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((r, at)) = e.get(&dst) {
                if now.saturating_duration_since(*at) < ROUTE_CACHE_TTL {
                    return Ok(r.clone());
                }
            }
        }
        let r = lookup(dst)?;
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dst, (r.clone(), now));
        Ok(r)
    }

    /// Forgets the route to `dst` (it was unusable: asked again next time).
    pub fn forget(&self, dst: IpAddr) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&dst);
    }

    /// Forgets every route.
    pub fn flush(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Sets a route by hand (tests without a kernel route; static underlays).
    pub fn insert(&self, dst: IpAddr, route: Route, now: Instant) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dst, (route, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_route_names_lo() {
        let r = lookup("127.0.0.1".parse().unwrap()).expect("route to 127.0.0.1");
        assert_eq!(r.dev, "lo");
        assert_eq!(r.gateway, None);
        assert_eq!(
            r.next_hop("127.0.0.1".parse().unwrap()),
            IpAddr::from([127, 0, 0, 1])
        );
    }
}
