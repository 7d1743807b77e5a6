//! The kernel back end: `Dpif` over Generic Netlink to Linux's openvswitch module.
//!
//! Requests go over one control socket (behind a lock: control-plane rate, not per
//! packet). Upcalls arrive on per-handler-thread sockets whose pids every vport lists in
//! OVS_VPORT_ATTR_UPCALL_PID and the datapath lists in OVS_DP_ATTR_PER_CPU_PIDS; the
//! datapath uses per-CPU dispatch where the module has it (see `UpcallDispatch`). Tunnel ports are Linux devices in
//! flow-based mode made over rtnetlink (see `vport`); the port option `vport = "compat"`
//! asks for the module's own tunnel vport type instead (also the fallback when the device
//! cannot be made). Tunnel options: `dst_port` (UDP port, default 4789 / 6081).

pub mod action;
pub mod attr;
mod dpif_impl;
pub mod flow;
pub mod genl;
pub mod key_attr;
pub mod key_codec;
pub mod upcall;
pub mod vport;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use netlink_packet_core::{NLA_TYPE_MASK, NLM_F_CREATE, NLM_F_EXCL};

use crate::dpif::{DpPort, Dpif, DpifError, DpifResult, PortSpec};
use crate::packet::OdpPort;

use attr::RawAttr;
use genl::{DatapathFamily, NlError, NlSocket, OvsMessage};

/// Resolved family ids and the vport multicast group.
#[derive(Clone, Copy, Debug, Default)]
pub struct Families {
    /// ovs_datapath.
    pub datapath: u16,
    /// ovs_vport.
    pub vport: u16,
    /// ovs_flow.
    pub flow: u16,
    /// ovs_packet.
    pub packet: u16,
    /// The ovs_vport multicast group (port add/del notifications).
    pub vport_mcgroup: u32,
}

impl Families {
    /// Resolves the four families; a missing ovs_datapath means the module is not loaded.
    pub fn resolve(sock: &mut NlSocket) -> DpifResult<Families> {
        let mut get = |name: &str| {
            sock.resolve_family(name).map_err(|e| {
                if e.errno == libc::ENOENT {
                    DpifError::Kernel(format!(
                        "the openvswitch kernel module is not loaded: Generic Netlink family {name} not found"
                    ))
                } else {
                    DpifError::Kernel(format!("resolving Generic Netlink family {name}: {e}"))
                }
            })
        };
        let dp = get("ovs_datapath")?;
        let vp = get("ovs_vport")?;
        let fl = get("ovs_flow")?;
        let pk = get("ovs_packet")?;
        let vport_mcgroup = vp
            .mcast_groups
            .iter()
            .find(|(n, _)| n == "ovs_vport")
            .map(|g| g.1)
            .unwrap_or(0);
        Ok(Families {
            datapath: dp.id,
            vport: vp.id,
            flow: fl.id,
            packet: pk.id,
            vport_mcgroup,
        })
    }
}

/// How the kernel picks the socket an upcall goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpcallDispatch {
    /// OVS_DP_F_DISPATCH_UPCALL_PER_CPU: by the CPU that saw the packet, from
    /// OVS_DP_ATTR_PER_CPU_PIDS. Preferred: other OVS tools that open the datapath (Debian's
    /// ovs-dpctl does) switch it to this mode, and they leave our per-CPU pids in place.
    PerCpu,
    /// OVS_DP_F_VPORT_PIDS: by flow hash over the port's OVS_VPORT_ATTR_UPCALL_PID array.
    PerVport,
}

/// Sets the datapath's upcall dispatch to our handler sockets: per-CPU when the module
/// supports it, else per-vport (the vports carry the same pids either way).
fn set_dispatch(
    ctl: &mut NlSocket,
    families: Families,
    dp_ifindex: i32,
    pids: &[u32],
) -> Result<UpcallDispatch, NlError> {
    let pid_bytes: Vec<u8> = pids.iter().flat_map(|p| p.to_ne_bytes()).collect();
    let per_cpu = OvsMessage::<DatapathFamily>::new(
        attr::cmd::SET,
        dp_ifindex,
        &[
            RawAttr::u32(
                attr::dp::USER_FEATURES,
                attr::dp::F_UNALIGNED | attr::dp::F_DISPATCH_UPCALL_PER_CPU,
            ),
            RawAttr::bytes(attr::dp::PER_CPU_PIDS, pid_bytes),
        ],
    );
    match ctl.request(families.datapath, per_cpu, 0) {
        Ok(_) => return Ok(UpcallDispatch::PerCpu),
        Err(e) if matches!(e.errno, libc::EOPNOTSUPP | libc::EINVAL) => {
            tracing::info!("per-CPU upcall dispatch not supported ({e}); using per-vport pids");
        }
        Err(e) => return Err(e),
    }
    let per_vport = OvsMessage::<DatapathFamily>::new(
        attr::cmd::SET,
        dp_ifindex,
        &[RawAttr::u32(
            attr::dp::USER_FEATURES,
            attr::dp::F_UNALIGNED | attr::dp::F_VPORT_PIDS,
        )],
    );
    ctl.request(families.datapath, per_vport, 0)?;
    Ok(UpcallDispatch::PerVport)
}

/// What a kernel error means depends on what was asked.
#[derive(Clone, Copy)]
enum Subject<'a> {
    Datapath(&'a str),
    Port(&'a str),
    Flow,
}

fn map_err(ctx: &str, subject: Subject<'_>, e: NlError) -> DpifError {
    match (e.errno, subject) {
        (libc::ENOENT, Subject::Flow) => DpifError::NoSuchFlow,
        (libc::EEXIST, Subject::Flow) => DpifError::FlowExists,
        (libc::ENOENT | libc::ENODEV, Subject::Port(p)) => DpifError::NoSuchPort(p.to_owned()),
        (libc::EEXIST | libc::EBUSY, Subject::Port(p)) => DpifError::PortExists(p.to_owned()),
        (libc::ENOENT | libc::ENODEV, Subject::Datapath(d)) => {
            DpifError::NoSuchDatapath(d.to_owned())
        }
        (libc::EINVAL | libc::EOPNOTSUPP | libc::ERANGE | libc::EFBIG, _) => {
            DpifError::InvalidArgument(format!("{ctx}: the kernel refused it: {e}"))
        }
        _ => DpifError::Kernel(format!("{ctx}: {e}")),
    }
}

fn io_err(e: std::io::Error) -> DpifError {
    DpifError::Kernel(format!("opening a netlink socket: {e}"))
}

/// A datapath in the kernel's openvswitch module.
pub struct DpifNetlink {
    name: String,
    dp_ifindex: i32,
    families: Families,
    ctl: Mutex<NlSocket>,
    shared: Arc<UpcallShared>,
    upcall_pids: Vec<u32>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Port types as given at creation, by name (tunnel ports are netdev vports in the
    /// kernel); `true` when we created the Linux device and must delete it.
    port_types: Mutex<BTreeMap<String, (String, bool)>>,
    destroyed: AtomicBool,
}

pub use upcall::UpcallShared;

impl DpifNetlink {
    /// Creates datapath `name` (failing if it exists) with `n_handlers` upcall threads.
    pub fn create(name: &str, n_handlers: usize) -> DpifResult<Self> {
        Self::open_inner(name, n_handlers, true)
    }

    /// Opens an existing datapath `name`.
    pub fn open(name: &str, n_handlers: usize) -> DpifResult<Self> {
        Self::open_inner(name, n_handlers, false)
    }

    fn open_inner(name: &str, n_handlers: usize, create: bool) -> DpifResult<Self> {
        if name.is_empty() || name.len() > 15 {
            return Err(DpifError::InvalidArgument(format!(
                "datapath name '{name}' must be 1 to 15 characters"
            )));
        }
        let mut ctl = NlSocket::open().map_err(io_err)?;
        let families = Families::resolve(&mut ctl)?;
        let n = n_handlers.max(1);
        let mut socks = Vec::with_capacity(n);
        for _ in 0..n {
            let s = NlSocket::open().map_err(io_err)?;
            s.set_recv_timeout(200).map_err(io_err)?;
            socks.push(s);
        }
        let upcall_pids: Vec<u32> = socks.iter().map(|s| s.pid()).collect();
        let features = attr::dp::F_UNALIGNED | attr::dp::F_VPORT_PIDS;
        let dp_ifindex = if create {
            let req = OvsMessage::<DatapathFamily>::new(
                attr::cmd::NEW,
                0,
                &[
                    RawAttr::string(attr::dp::NAME, name),
                    RawAttr::u32(attr::dp::UPCALL_PID, upcall_pids[0]),
                    RawAttr::u32(attr::dp::USER_FEATURES, features),
                ],
            );
            let r = ctl
                .request(families.datapath, req, NLM_F_CREATE | NLM_F_EXCL)
                .map_err(|e| {
                    if e.errno == libc::EEXIST {
                        DpifError::Kernel(format!("datapath {name} already exists"))
                    } else {
                        map_err(
                            &format!("creating datapath {name}"),
                            Subject::Datapath(name),
                            e,
                        )
                    }
                })?;
            r.first().map(|m| m.dp_ifindex).unwrap_or(0)
        } else {
            let req = OvsMessage::<DatapathFamily>::new(
                attr::cmd::GET,
                0,
                &[RawAttr::string(attr::dp::NAME, name)],
            );
            let r = ctl.request(families.datapath, req, 0).map_err(|e| {
                map_err(
                    &format!("opening datapath {name}"),
                    Subject::Datapath(name),
                    e,
                )
            })?;
            r.first().map(|m| m.dp_ifindex).unwrap_or(0)
        };
        if dp_ifindex == 0 {
            return Err(DpifError::Kernel(format!(
                "datapath {name}: the kernel returned no ifindex"
            )));
        }
        let dispatch = set_dispatch(&mut ctl, families, dp_ifindex, &upcall_pids).map_err(|e| {
            map_err(
                &format!("setting upcall dispatch of datapath {name}"),
                Subject::Datapath(name),
                e,
            )
        })?;
        tracing::info!(
            "datapath {name}: upcall dispatch {dispatch:?}, handler pids {upcall_pids:?}"
        );
        match Self::start(
            name,
            n_handlers,
            families,
            ctl,
            socks,
            upcall_pids,
            dp_ifindex,
        ) {
            Ok(dp) => Ok(dp),
            Err(e) => {
                if create {
                    // do not leave a half-made datapath behind
                    if let Ok(mut s) = NlSocket::open() {
                        let del = OvsMessage::<DatapathFamily>::new(
                            attr::cmd::DEL,
                            dp_ifindex,
                            &[] as &[RawAttr],
                        );
                        let _ = s.request(families.datapath, del, 0);
                    }
                }
                Err(e)
            }
        }
    }

    fn start(
        name: &str,
        _n_handlers: usize,
        families: Families,
        ctl: NlSocket,
        socks: Vec<NlSocket>,
        upcall_pids: Vec<u32>,
        dp_ifindex: i32,
    ) -> DpifResult<Self> {
        let shared = Arc::new(UpcallShared {
            families,
            dp_ifindex,
            handler: RwLock::new(None),
            n_upcalls: AtomicU64::new(0),
            n_lost: AtomicU64::new(0),
            n_installed: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let mut threads = Vec::new();
        for (i, s) in socks.into_iter().enumerate() {
            let sh = shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("handler{i}"))
                .spawn(move || upcall::run(s, sh))
                .map_err(DpifError::Io)?;
            threads.push(t);
        }
        let dp = DpifNetlink {
            name: name.to_owned(),
            dp_ifindex,
            families,
            ctl: Mutex::new(ctl),
            shared,
            upcall_pids,
            threads: Mutex::new(threads),
            port_types: Mutex::new(BTreeMap::new()),
            destroyed: AtomicBool::new(false),
        };
        // the local port and any existing ports must send upcalls to our handlers; netdev
        // ports that are flow-based tunnel devices were made by an earlier run: they are
        // tunnel ports, and ours to remove
        for p in dp.port_dump()? {
            dp.set_port_upcall_pids(p.port_no)?;
            if p.port_type == "netdev" {
                if let Ok(Some(kind)) = vport::flow_based_tunnel_kind(&p.name) {
                    dp.port_types
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(p.name.clone(), (kind.port_type().to_owned(), true));
                }
            }
        }
        Ok(dp)
    }

    /// The datapath's ifindex (its local internal port).
    pub fn dp_ifindex(&self) -> i32 {
        self.dp_ifindex
    }

    /// The datapath's OVS_DP_ATTR_USER_FEATURES (OVS_DP_F_* bits) as the kernel has them.
    pub fn user_features(&self) -> DpifResult<u32> {
        let req =
            OvsMessage::<DatapathFamily>::new(attr::cmd::GET, self.dp_ifindex, &[] as &[RawAttr]);
        let r = self
            .ctl()
            .request(self.families.datapath, req, 0)
            .map_err(|e| {
                map_err(
                    "reading datapath features",
                    Subject::Datapath(&self.name),
                    e,
                )
            })?;
        let m = r
            .first()
            .ok_or_else(|| DpifError::NoSuchDatapath(self.name.clone()))?;
        for nla in m.nlas().flatten() {
            if nla.kind() & NLA_TYPE_MASK == attr::dp::USER_FEATURES {
                return attr::get_u32(&nla, "user features")
                    .map_err(|e| DpifError::Kernel(e.to_string()));
            }
        }
        Ok(0)
    }

    /// The netlink pids of the upcall handler sockets.
    pub fn upcall_pids(&self) -> &[u32] {
        &self.upcall_pids
    }

    /// Upcalls handled, lost in userspace, and megaflows installed by the handlers.
    pub fn upcall_counters(&self) -> (u64, u64, u64) {
        (
            self.shared.n_upcalls.load(Ordering::Relaxed),
            self.shared.n_lost.load(Ordering::Relaxed),
            self.shared.n_installed.load(Ordering::Relaxed),
        )
    }

    /// Deletes megaflows idle for longer than `max_idle` (OVS's max-idle, 10 s by default),
    /// returning how many went. This is the expiry half of a revalidator.
    pub fn expire_idle_flows(&self, max_idle: std::time::Duration) -> DpifResult<usize> {
        let now = std::time::Instant::now();
        let mut n = 0;
        for f in self.flow_dump()? {
            let idle = f
                .stats
                .used
                .map(|u| now.saturating_duration_since(u))
                .unwrap_or(max_idle);
            if idle >= max_idle {
                match self.flow_del(&f.key, &f.mask) {
                    Ok(_) | Err(DpifError::NoSuchFlow) => n += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(n)
    }

    fn set_port_upcall_pids(&self, port_no: u32) -> DpifResult<()> {
        let req = OvsMessage::<genl::VportFamily>::new(
            attr::cmd::SET,
            self.dp_ifindex,
            &[
                RawAttr::u32(attr::vport::PORT_NO, port_no),
                RawAttr::bytes(
                    attr::vport::UPCALL_PID,
                    self.upcall_pids
                        .iter()
                        .flat_map(|p| p.to_ne_bytes())
                        .collect(),
                ),
            ],
        );
        self.ctl()
            .request(self.families.vport, req, 0)
            .map_err(|e| {
                map_err(
                    &format!("setting upcall pids of port {port_no}"),
                    Subject::Port(&port_no.to_string()),
                    e,
                )
            })?;
        Ok(())
    }

    fn ctl(&self) -> std::sync::MutexGuard<'_, NlSocket> {
        self.ctl.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn to_dp_port(&self, v: vport::VportInfo) -> DpPort {
        let types = self.port_types.lock().unwrap_or_else(|p| p.into_inner());
        let port_type = match types.get(&v.name) {
            Some((t, _)) => t.clone(),
            None => vport::vport_type_name(v.vport_type).to_owned(),
        };
        DpPort {
            port_no: v.port_no,
            name: v.name,
            port_type,
            stats: v.stats,
        }
    }

    fn vport_query(&self, port_no: Option<u32>, name: Option<&str>) -> DpifResult<DpPort> {
        let what = name
            .map(str::to_owned)
            .unwrap_or_else(|| port_no.unwrap_or(0).to_string());
        let req = vport::lookup_request(attr::cmd::GET, self.dp_ifindex, port_no, name);
        let r = self
            .ctl()
            .request(self.families.vport, req, 0)
            .map_err(|e| map_err(&format!("looking up port {what}"), Subject::Port(&what), e))?;
        let m = r
            .first()
            .ok_or_else(|| DpifError::NoSuchPort(what.clone()))?;
        let v = vport::parse(m).map_err(|e| DpifError::Kernel(format!("port {what}: {e}")))?;
        Ok(self.to_dp_port(v))
    }

    fn stop_handlers(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let threads: Vec<_> = self
            .threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for t in threads {
            let _ = t.join();
        }
    }

    fn add_vport(
        &self,
        spec: &PortSpec,
        vtype: u32,
        requested: Option<OdpPort>,
        dst_port: Option<u16>,
    ) -> Result<OdpPort, NlError> {
        let req = vport::new_request(
            self.dp_ifindex,
            &spec.name,
            vtype,
            requested,
            &self.upcall_pids,
            dst_port,
        );
        let r = self
            .ctl()
            .request(self.families.vport, req, NLM_F_CREATE | NLM_F_EXCL)?;
        let info = r
            .first()
            .and_then(|m| vport::parse(m).ok())
            .unwrap_or_default();
        Ok(info.port_no)
    }
}

impl Drop for DpifNetlink {
    fn drop(&mut self) {
        self.stop_handlers();
    }
}
