//! Upcall handler threads: each owns one netlink socket whose pid is in every vport's
//! OVS_VPORT_ATTR_UPCALL_PID, reads OVS_PACKET_CMD_MISS / ACTION, calls the registered
//! `UpcallHandler` (the same in-process translator the userspace datapath uses), installs
//! the megaflow and executes the packet.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use netlink_packet_core::{NLA_TYPE_MASK, NLM_F_CREATE};

use crate::dpif::{Upcall, UpcallHandler, UpcallKind};
use crate::packet::{FlowKey, PacketMeta, TunnelMeta};

use super::action::encode_actions;
use super::attr::{self, value, RawAttr};
use super::flow::put_request;
use super::genl::{parse_ovs_messages, NlSocket, OvsMessage, PacketFamily};
use super::key_attr::parse_key_attrs;
use super::key_codec::decode_attrs;
use super::Families;

/// State the handler threads share with the `DpifNetlink` that owns them.
pub struct UpcallShared {
    /// Family ids.
    pub families: Families,
    /// Datapath ifindex.
    pub dp_ifindex: i32,
    /// The translator, once registered.
    pub handler: RwLock<Option<Arc<dyn UpcallHandler>>>,
    /// Upcalls that reached a handler thread.
    pub n_upcalls: AtomicU64,
    /// Upcalls dropped in userspace (no handler, translation failed, socket overrun).
    pub n_lost: AtomicU64,
    /// Megaflows installed by handlers.
    pub n_installed: AtomicU64,
    /// Set to stop the threads.
    pub stop: AtomicBool,
}

/// The handler loop of one thread. `sock` is its upcall socket (with a receive timeout).
pub fn run(sock: NlSocket, shared: Arc<UpcallShared>) {
    let pid = sock.pid();
    let mut sock = sock;
    let mut ctl = match NlSocket::open() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("upcall handler {pid}: cannot open a control socket: {e}");
            return;
        }
    };
    while !shared.stop.load(Ordering::Relaxed) {
        let data = match sock.recv_raw() {
            Ok(d) => d.to_vec(),
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => continue,
                _ if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // the kernel dropped upcalls for us: counted, not fatal
                    shared.n_lost.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                _ => {
                    tracing::error!("upcall handler {pid}: receive failed: {e}");
                    return;
                }
            },
        };
        for msg in parse_ovs_messages::<PacketFamily>(&data) {
            match msg {
                Ok(m) => handle_one(&shared, &mut ctl, pid, &m),
                Err(e) => {
                    shared.n_lost.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("upcall handler {pid}: malformed upcall dropped: {e}");
                }
            }
        }
    }
}

/// The decoded parts of one upcall message.
struct RawUpcall<'a> {
    packet: &'a [u8],
    key_bytes: &'a [u8],
    cookie: Option<u64>,
}

fn split(msg: &OvsMessage<PacketFamily>) -> Option<RawUpcall<'_>> {
    let (mut packet, mut key_bytes, mut cookie) = (None, None, None);
    for nla in msg.nlas().flatten() {
        match nla.kind() & NLA_TYPE_MASK {
            attr::packet::PACKET => packet = Some(value(&nla)),
            attr::packet::KEY => key_bytes = Some(value(&nla)),
            attr::packet::USERDATA if value(&nla).len() == 8 => {
                cookie = Some(u64::from_ne_bytes(value(&nla).try_into().unwrap()))
            }
            _ => {}
        }
    }
    Some(RawUpcall {
        packet: packet?,
        key_bytes: key_bytes?,
        cookie,
    })
}

/// Packet metadata from a kernel key.
pub fn meta_from_key(key: &FlowKey) -> PacketMeta {
    let mut meta = PacketMeta::for_port(key.in_port);
    meta.recirc_id = key.recirc_id;
    let tunnel = key.tunnel();
    if tunnel != TunnelMeta::NONE {
        meta.set_tunnel(tunnel);
    }
    meta
}

fn handle_one(shared: &UpcallShared, ctl: &mut NlSocket, pid: u32, msg: &OvsMessage<PacketFamily>) {
    shared.n_upcalls.fetch_add(1, Ordering::Relaxed);
    let kind = match msg.cmd {
        attr::cmd::PACKET_MISS => UpcallKind::Miss,
        attr::cmd::PACKET_ACTION => UpcallKind::Action { cookie: 0 },
        _ => return,
    };
    let Some(raw) = split(msg) else {
        shared.n_lost.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("upcall without packet or key dropped");
        return;
    };
    let kind = match kind {
        UpcallKind::Action { .. } => UpcallKind::Action {
            cookie: raw.cookie.unwrap_or(0),
        },
        k => k,
    };
    let key = match parse_key_attrs(raw.key_bytes)
        .map_err(|e| e.to_string())
        .and_then(|a| decode_attrs(&a, false).map_err(|e| e.to_string()))
    {
        Ok(k) => k,
        Err(e) => {
            shared.n_lost.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("upcall with an undecodable key dropped: {e}");
            return;
        }
    };
    let handler = shared
        .handler
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let Some(handler) = handler else {
        shared.n_lost.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let meta = meta_from_key(&key);
    let reply = match handler.upcall(&Upcall {
        kind,
        key: &key,
        packet: raw.packet,
        meta: &meta,
    }) {
        Ok(r) => r,
        Err(e) => {
            shared.n_lost.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("upcall on port {} not translated: {e}", key.in_port);
            return;
        }
    };
    if reply.install && kind == UpcallKind::Miss {
        match put_request(
            attr::cmd::NEW,
            shared.dp_ifindex,
            &key,
            &reply.mask,
            &reply.actions,
            pid,
            false,
        ) {
            Ok(req) => match ctl.request(shared.families.flow, req, NLM_F_CREATE) {
                Ok(_) => {
                    shared.n_installed.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.errno == libc::EEXIST => {}
                Err(e) => {
                    tracing::warn!("installing megaflow for port {} failed: {e}", key.in_port)
                }
            },
            Err(e) => tracing::warn!("megaflow actions not encodable: {e}"),
        }
    }
    if reply.actions.is_empty() {
        return; // drop
    }
    if raw.packet.len() > super::action::MAX_ATTR_PAYLOAD {
        shared.n_lost.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "upcall packet of {} bytes too large to send back",
            raw.packet.len()
        );
        return;
    }
    let acts = match encode_actions(&reply.actions, pid) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("upcall actions not encodable: {e}");
            return;
        }
    };
    let exec = OvsMessage::<PacketFamily>::new(
        attr::cmd::PACKET_EXECUTE,
        shared.dp_ifindex,
        &[
            RawAttr::bytes(attr::packet::PACKET, raw.packet.to_vec()),
            RawAttr {
                kind: attr::packet::KEY | netlink_packet_core::NLA_F_NESTED,
                value: raw.key_bytes.to_vec(),
            },
            RawAttr::nested(attr::packet::ACTIONS, &acts),
        ],
    );
    if let Err(e) = ctl.request(shared.families.packet, exec, 0) {
        tracing::warn!("executing upcall packet failed: {e}");
    }
}
