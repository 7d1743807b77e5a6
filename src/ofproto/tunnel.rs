//! Tunnel ports of the translator: their configuration (from the port's options) and the
//! state every bridge of a backer shares to build and recognise native tunnel headers:
//! the tunnel ports, the underlay route cache, the neighbour cache and the ARP/ND
//! requests waiting to be sent.
//!
//! Options (as OVS's): `remote_ip` (an address, or `flow` to take it from `tun_dst`),
//! `local_ip`, `key` (a number, or `flow` to take it from `tun_id`; default 0), `dst_port`
//! (default 4789 for vxlan, 6081 for geneve), `tos`, `ttl` (default 64), `df_default`
//! (default true) and `csum` (default false; UDP tunnels over IPv6 always send a checksum).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock, Weak};

use super::route::{Route, RouteCache, RouteError};
use super::tnl_neigh::NeighCache;
use super::{Ofproto, PortMap};
use crate::dpif::{DpAction, TunnelType};
use crate::netdev::tunnel::tunnel_type_of;
use crate::packet::{OdpPort, PacketMeta};

/// A value given in the port's options, or taken per packet from the flow's tunnel
/// metadata (`flow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FromFlow<T> {
    /// Fixed by configuration.
    Fixed(T),
    /// Taken from the flow (set by `set_field`/`set_tunnel`, or received).
    Flow,
}

/// A bad tunnel option; the text names the option and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tunnel port '{port}': option {option}: {reason}")]
pub struct TunnelConfigError {
    /// Port name.
    pub port: String,
    /// Option name.
    pub option: String,
    /// What was wrong.
    pub reason: String,
}

/// One tunnel port's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelConfig {
    /// Encapsulation.
    pub kind: TunnelType,
    /// Remote endpoint.
    pub remote: FromFlow<IpAddr>,
    /// Local endpoint (default: the route's preferred source).
    pub local: Option<IpAddr>,
    /// Tunnel key (VNI / GRE key).
    pub key: FromFlow<u64>,
    /// UDP destination port (VXLAN/Geneve).
    pub dst_port: u16,
    /// Outer TOS.
    pub tos: u8,
    /// Outer TTL.
    pub ttl: u8,
    /// Set DF on IPv4 underlays.
    pub df: bool,
    /// Send UDP/GRE checksums.
    pub csum: bool,
}

impl TunnelConfig {
    /// Parses the options of a tunnel port of type `port_type` (`None` if the type is
    /// not a tunnel).
    pub fn from_options(
        port: &str,
        port_type: &str,
        opts: &BTreeMap<String, String>,
    ) -> Result<Option<TunnelConfig>, TunnelConfigError> {
        let Some(kind) = tunnel_type_of(port_type) else {
            return Ok(None);
        };
        let bad = |option: &str, reason: String| TunnelConfigError {
            port: port.to_string(),
            option: option.to_string(),
            reason,
        };
        let get = |k: &str| opts.get(k).map(|s| s.trim());
        let ip = |k: &str, v: &str| {
            v.parse::<IpAddr>()
                .map_err(|_| bad(k, format!("'{v}' is not an IPv4 or IPv6 address")))
        };
        let remote = match get("remote_ip") {
            None => return Err(bad("remote_ip", "is required".into())),
            Some("flow") => FromFlow::Flow,
            Some(v) => FromFlow::Fixed(ip("remote_ip", v)?),
        };
        let local = get("local_ip").map(|v| ip("local_ip", v)).transpose()?;
        if let (FromFlow::Fixed(r), Some(l)) = (remote, local) {
            if r.is_ipv4() != l.is_ipv4() {
                return Err(bad(
                    "local_ip",
                    "is not the same IP family as remote_ip".into(),
                ));
            }
        }
        let num = |k: &str, v: &str, max: u64| -> Result<u64, TunnelConfigError> {
            let n = match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => v.parse(),
            };
            n.ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| bad(k, format!("'{v}' is not a number from 0 to {max}")))
        };
        let key_max = match kind {
            TunnelType::Gre => u32::MAX as u64,
            _ => 0xff_ffff,
        };
        let key = match get("key") {
            None => FromFlow::Fixed(0),
            Some("flow") => FromFlow::Flow,
            Some(v) => FromFlow::Fixed(num("key", v, key_max)?),
        };
        let dst_port = match (get("dst_port"), kind) {
            (Some(_), TunnelType::Gre) => {
                return Err(bad("dst_port", "GRE has no UDP port".into()))
            }
            (Some(v), _) => num("dst_port", v, u16::MAX as u64)? as u16,
            (None, TunnelType::Vxlan) => 4789,
            (None, TunnelType::Geneve) => 6081,
            (None, TunnelType::Gre) => 0,
        };
        if dst_port == 0 && kind != TunnelType::Gre {
            return Err(bad("dst_port", "must not be 0".into()));
        }
        let tos = get("tos")
            .map(|v| num("tos", v, 255))
            .transpose()?
            .unwrap_or(0) as u8;
        let ttl = get("ttl")
            .map(|v| num("ttl", v, 255))
            .transpose()?
            .unwrap_or(64) as u8;
        let flag = |k: &str, default: bool| match get(k) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(bad(k, format!("'{v}' is not true or false"))),
        };
        let known = [
            "remote_ip",
            "local_ip",
            "key",
            "dst_port",
            "tos",
            "ttl",
            "df_default",
            "csum",
            // The kernel back end's choice of vport kind; nothing to do natively.
            "vport",
        ];
        if let Some(k) = opts.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(bad(
                k,
                format!(
                    "unknown tunnel option (expected one of {})",
                    known.join(", ")
                ),
            ));
        }
        Ok(Some(TunnelConfig {
            kind,
            remote,
            local,
            key,
            dst_port,
            tos,
            ttl,
            df: flag("df_default", true)?,
            csum: flag("csum", false)?,
        }))
    }
}

/// A tunnel port as the translator knows it.
#[derive(Clone, Debug)]
pub struct TunnelPort {
    /// Port name.
    pub name: String,
    /// Bridge it belongs to.
    pub bridge: String,
    /// Its datapath port (the tunnel vport).
    pub dp_port: OdpPort,
    /// Configuration.
    pub config: TunnelConfig,
}

/// A frame to send out of an underlay bridge (an ARP request or neighbour solicitation),
/// queued by a translation and sent by the backer's periodic run.
#[derive(Clone, Debug)]
pub struct PendingSend {
    /// Frame bytes.
    pub frame: Vec<u8>,
    /// Metadata (in_port = the underlay's internal port).
    pub meta: PacketMeta,
    /// Output actions.
    pub actions: Vec<DpAction>,
}

/// What every bridge of a backer shares for native tunnelling. See the module docs.
#[derive(Default)]
pub struct TunnelState {
    ports: RwLock<Vec<TunnelPort>>,
    bridges: RwLock<Vec<Weak<Ofproto>>>,
    /// Underlay routes.
    pub routes: RouteCache,
    /// Next-hop MACs.
    pub neigh: NeighCache,
    pending: Mutex<Vec<PendingSend>>,
    dev_macs: Mutex<HashMap<String, [u8; 6]>>,
    last_refresh: Mutex<Option<std::time::Instant>>,
}

impl TunnelState {
    /// Registers a bridge, so that routes through its ports can be used as underlays.
    pub fn add_bridge(&self, br: &Arc<Ofproto>) {
        let mut b = self.bridges.write().unwrap_or_else(|e| e.into_inner());
        b.retain(|w| w.strong_count() > 0);
        b.push(Arc::downgrade(br));
    }

    /// Adds (or replaces) a tunnel port.
    pub fn add_port(&self, port: TunnelPort) {
        let mut p = self.ports.write().unwrap_or_else(|e| e.into_inner());
        p.retain(|t| t.dp_port != port.dp_port);
        p.push(port);
    }

    /// Removes the tunnel port with datapath number `dp`.
    pub fn del_port(&self, dp: OdpPort) {
        self.ports
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|t| t.dp_port != dp);
    }

    /// The tunnel port with datapath number `dp`.
    pub fn port(&self, dp: OdpPort) -> Option<TunnelPort> {
        self.ports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|t| t.dp_port == dp)
            .cloned()
    }

    /// Every tunnel port.
    pub fn ports(&self) -> Vec<TunnelPort> {
        self.ports.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether any tunnel port exists (translations skip all tunnel work otherwise).
    pub fn has_ports(&self) -> bool {
        !self
            .ports
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// The live bridge that has a port named `dev`. A translation passes its own bridge
    /// and the port map it already holds as `current`, so that bridge's port lock is not
    /// taken a second time (a waiting writer would deadlock a re-entrant read).
    pub fn bridge_with_port(
        &self,
        dev: &str,
        current: Option<(&Ofproto, &PortMap)>,
    ) -> Option<Arc<Ofproto>> {
        self.bridges
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|w| w.upgrade())
            .find(|b| match current {
                Some((c, ports)) if std::ptr::eq(b.as_ref(), c) => ports.by_name(dev).is_some(),
                _ => b.has_port_named(dev),
            })
    }

    /// The underlay route to `remote`, if it leaves by a port of one of the bridges. A
    /// route by any other interface (the endpoint address is not configured yet, say) is
    /// not kept, so the kernel is asked again next time.
    pub fn underlay_route(
        &self,
        remote: IpAddr,
        now: std::time::Instant,
        current: Option<(&Ofproto, &PortMap)>,
    ) -> Result<Route, RouteError> {
        let r = self.routes.get(remote, now)?;
        if self.bridge_with_port(&r.dev, current).is_none() {
            self.routes.forget(remote);
            return Err(RouteError::NoRoute {
                dst: remote,
                reason: format!("it leaves by {}, which is no bridge's port", r.dev),
            });
        }
        Ok(r)
    }

    /// The MAC of Linux interface `dev` (an internal port), from sysfs; cached.
    pub fn dev_mac(&self, dev: &str) -> Option<[u8; 6]> {
        if let Some(m) = self
            .dev_macs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(dev)
        {
            return Some(*m);
        }
        if dev.contains('/') || dev.contains("..") {
            return None;
        }
        let s = std::fs::read_to_string(format!("/sys/class/net/{dev}/address")).ok()?;
        let mut mac = [0u8; 6];
        let parts: Vec<&str> = s.trim().split(':').collect();
        if parts.len() != 6 {
            return None;
        }
        for (i, p) in parts.iter().enumerate() {
            mac[i] = u8::from_str_radix(p, 16).ok()?;
        }
        self.dev_macs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dev.to_string(), mac);
        Some(mac)
    }

    /// Sets the MAC of interface `dev` by hand (ports without a Linux device: dummy
    /// underlays in tests).
    pub fn set_dev_mac(&self, dev: &str, mac: [u8; 6]) {
        self.dev_macs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dev.to_string(), mac);
    }

    /// Queues a frame for the backer to send.
    pub fn queue_send(&self, s: PendingSend) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        // A burst of misses for one unresolved neighbour asks once per run.
        if p.len() < 64 && !p.iter().any(|q| q.frame == s.frame) {
            p.push(s);
        }
    }

    /// Whether tunnel megaflows should be re-translated now because their routes may
    /// have changed: once per `ROUTE_CACHE_TTL` while tunnel ports exist (a route is
    /// asked of the kernel again when its cache entry is older than that).
    pub fn refresh_due(&self, now: std::time::Instant) -> bool {
        if !self.has_ports() {
            return false;
        }
        let mut last = self.last_refresh.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(t) if now.saturating_duration_since(t) < super::route::ROUTE_CACHE_TTL => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    /// Takes the queued frames.
    pub fn take_pending(&self) -> Vec<PendingSend> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Forgets neighbours (tnl/neigh/flush); routes are asked again too.
    pub fn flush(&self) {
        self.neigh.flush();
        self.routes.flush();
    }

    /// `tnl/ports/show` text.
    pub fn ports_show(&self) -> String {
        let mut out = String::from("Listening ports:\n");
        let mut ports = self.ports();
        ports.sort_by_key(|p| p.dp_port);
        for p in ports {
            let c = &p.config;
            let kind = match c.kind {
                TunnelType::Vxlan => "vxlan",
                TunnelType::Geneve => "geneve",
                TunnelType::Gre => "gre",
            };
            let remote = match c.remote {
                FromFlow::Fixed(ip) => ip.to_string(),
                FromFlow::Flow => "flow".into(),
            };
            let key = match c.key {
                FromFlow::Fixed(k) => k.to_string(),
                FromFlow::Flow => "flow".into(),
            };
            let _ = write!(
                out,
                "{} ({}) bridge {}: {kind} remote_ip={remote} key={key}",
                p.name, p.dp_port, p.bridge
            );
            if let Some(l) = c.local {
                let _ = write!(out, " local_ip={l}");
            }
            if c.kind != TunnelType::Gre {
                let _ = write!(out, " dst_port={}", c.dst_port);
            }
            let _ = writeln!(
                out,
                " ttl={} tos={:#x} df_default={} csum={}",
                c.ttl, c.tos, c.df, c.csum
            );
        }
        out
    }
}

impl Ofproto {
    /// Whether this bridge has a port named `name`.
    pub fn has_port_named(&self, name: &str) -> bool {
        super::read(&self.ports).by_name(name).is_some()
    }

    /// The backer's shared tunnel state, once the bridge belongs to a backer.
    pub fn tunnels(&self) -> Option<&Arc<TunnelState>> {
        self.tunnels.get()
    }

    /// Attaches the backer's tunnel state (done by `Backer::add_bridge_with`).
    pub fn attach_tunnels(self: &Arc<Self>, t: Arc<TunnelState>) {
        t.add_bridge(self);
        let _ = self.tunnels.set(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_parse_with_defaults_and_errors_name_the_option() {
        let c = TunnelConfig::from_options("vx0", "vxlan", &opts(&[("remote_ip", "10.0.0.2")]))
            .unwrap()
            .unwrap();
        assert_eq!(c.remote, FromFlow::Fixed("10.0.0.2".parse().unwrap()));
        assert_eq!((c.dst_port, c.ttl, c.df, c.csum), (4789, 64, true, false));
        assert_eq!(c.key, FromFlow::Fixed(0));
        let g = TunnelConfig::from_options(
            "g0",
            "geneve",
            &opts(&[
                ("remote_ip", "flow"),
                ("key", "flow"),
                ("local_ip", "fd00::1"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (g.remote, g.key, g.dst_port),
            (FromFlow::Flow, FromFlow::Flow, 6081)
        );
        assert!(TunnelConfig::from_options("d", "dummy", &opts(&[]))
            .unwrap()
            .is_none());
        let e = |kv: &[(&str, &str)], ty: &str| {
            TunnelConfig::from_options("t0", ty, &opts(kv))
                .unwrap_err()
                .to_string()
        };
        assert!(e(&[], "gre").contains("remote_ip: is required"));
        assert!(e(&[("remote_ip", "10.0.0")], "gre").contains("not an IPv4 or IPv6"));
        assert!(e(&[("remote_ip", "1.1.1.1"), ("key", "0x1000000")], "vxlan").contains("key"));
        assert!(e(&[("remote_ip", "1.1.1.1"), ("dst_port", "4789")], "gre").contains("dst_port"));
        assert!(e(&[("remote_ip", "1.1.1.1"), ("local_ip", "::1")], "gre").contains("family"));
        assert!(e(&[("remote_ip", "1.1.1.1"), ("colour", "red")], "gre").contains("colour"));
        assert!(e(&[("remote_ip", "1.1.1.1"), ("csum", "yes")], "gre").contains("csum"));
    }

    #[test]
    fn route_refresh_is_due_once_per_ttl_and_only_with_tunnel_ports() {
        let ts = TunnelState::default();
        let t0 = std::time::Instant::now();
        assert!(!ts.refresh_due(t0), "no tunnel ports: nothing to refresh");
        ts.add_port(TunnelPort {
            name: "vx".into(),
            bridge: "br".into(),
            dp_port: 7,
            config: TunnelConfig::from_options("vx", "vxlan", &opts(&[("remote_ip", "10.0.0.2")]))
                .unwrap()
                .unwrap(),
        });
        assert!(ts.refresh_due(t0));
        assert!(!ts.refresh_due(t0 + std::time::Duration::from_secs(1)));
        assert!(ts.refresh_due(t0 + crate::ofproto::route::ROUTE_CACHE_TTL));
        assert!(ts
            .ports_show()
            .contains("vx (7) bridge br: vxlan remote_ip=10.0.0.2 key=0"));
        ts.del_port(7);
        assert!(!ts.has_ports());
    }
}
