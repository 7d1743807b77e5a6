//! `Dpif` for `DpifNetlink`: each trait call as one request on the control socket.

use netlink_packet_core::{NLA_TYPE_MASK, NLM_F_CREATE, NLM_F_EXCL};

use crate::dpif::{
    DpAction, DpFlow, DpFlowStats, DpPort, DpStats, Dpif, DpifError, DpifResult, FlowPut,
    FlowPutMode, PortSpec, UpcallHandler,
};
use crate::packet::{FlowKey, FlowMask, OdpPort, PacketMeta};

use super::attr::{self, RawAttr};
use super::genl::{self, DatapathFamily, NlError, OvsMessage, PacketFamily};
use super::vport::{self, TunnelKind};
use super::{action, flow, key_attr, key_codec, map_err, DpifNetlink, Subject};

use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Dpif for DpifNetlink {
    fn name(&self) -> &str {
        &self.name
    }

    fn dp_type(&self) -> &'static str {
        "kernel"
    }

    fn destroy(&self) -> DpifResult<()> {
        self.stop_handlers();
        if self.destroyed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let req =
            OvsMessage::<DatapathFamily>::new(attr::cmd::DEL, self.dp_ifindex, &[] as &[RawAttr]);
        let r = self
            .ctl()
            .request(self.families.datapath, req, 0)
            .map_err(|e| {
                map_err(
                    &format!("deleting datapath {}", self.name),
                    Subject::Datapath(&self.name),
                    e,
                )
            });
        let created: Vec<String> = self
            .port_types
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, (_, ours))| *ours)
            .map(|(n, _)| n.clone())
            .collect();
        for dev in created {
            if let Err(e) = vport::delete_device(&dev) {
                if e.errno != libc::ENODEV {
                    tracing::warn!("deleting tunnel device {dev}: {e}");
                }
            }
        }
        r.map(|_| ())
    }

    fn port_add(&self, spec: &PortSpec, requested: Option<OdpPort>) -> DpifResult<OdpPort> {
        let subject = Subject::Port(&spec.name);
        let ctx = format!("adding port {} ({})", spec.name, spec.port_type);
        if spec.name.is_empty() || spec.name.len() > 15 {
            return Err(DpifError::InvalidArgument(format!(
                "port name '{}' must be 1 to 15 characters",
                spec.name
            )));
        }
        let port = match spec.port_type.as_str() {
            "netdev" | "system" | "afxdp" | "afpacket" | "" => self
                .add_vport(spec, attr::vport::TYPE_NETDEV, requested, None)
                .map_err(|e| map_err(&ctx, subject, e))?,
            "internal" | "tap" => self
                .add_vport(spec, attr::vport::TYPE_INTERNAL, requested, None)
                .map_err(|e| map_err(&ctx, subject, e))?,
            t => {
                let kind = TunnelKind::from_port_type(t)
                    .ok_or_else(|| DpifError::UnsupportedPortType(t.to_owned()))?;
                let dst_port = match spec.options.get("dst_port") {
                    Some(p) => p.parse::<u16>().map_err(|_| {
                        DpifError::InvalidArgument(format!(
                            "port {}: dst_port '{p}' is not a UDP port number",
                            spec.name
                        ))
                    })?,
                    None => kind.default_dst_port(),
                };
                let compat = match spec.options.get("vport").map(String::as_str) {
                    None | Some("netdev") => false,
                    Some("compat") => true,
                    Some(v) => {
                        return Err(DpifError::InvalidArgument(format!(
                            "port {}: option vport='{v}': expected 'netdev' (a flow-based Linux device, the default) or 'compat' (the module's own {t} vport)",
                            spec.name
                        )))
                    }
                };
                let made = if compat {
                    Err(NlError {
                        errno: libc::EOPNOTSUPP,
                        message: Some("compat vport requested".into()),
                        attribute: None,
                    })
                } else {
                    vport::create_tunnel_device(&spec.name, kind, dst_port)
                };
                match made {
                    Ok(()) => {
                        self.port_types
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(spec.name.clone(), (t.to_owned(), true));
                        match self.add_vport(spec, attr::vport::TYPE_NETDEV, requested, None) {
                            Ok(p) => p,
                            Err(e) => {
                                let _ = vport::delete_device(&spec.name);
                                self.port_types
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .remove(&spec.name);
                                return Err(map_err(&ctx, subject, e));
                            }
                        }
                    }
                    Err(e) if e.errno == libc::EEXIST => {
                        return Err(DpifError::PortExists(spec.name.clone()))
                    }
                    Err(e) => {
                        if !compat {
                            tracing::info!("{ctx}: flow-based {t} device not available ({e}); using the compat vport");
                        }
                        let dp = (kind != TunnelKind::Gre).then_some(dst_port);
                        self.add_vport(spec, kind.compat_vport_type(), requested, dp)
                            .map_err(|e| map_err(&ctx, subject, e))?
                    }
                }
            }
        };
        self.port_types
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(spec.name.clone())
            .or_insert_with(|| (spec.port_type.clone(), false));
        Ok(port)
    }

    fn port_del(&self, port: OdpPort) -> DpifResult<()> {
        let p = self.port_query_by_number(port)?;
        let req = vport::lookup_request(attr::cmd::DEL, self.dp_ifindex, Some(port), None);
        self.ctl()
            .request(self.families.vport, req, 0)
            .map_err(|e| {
                map_err(
                    &format!("deleting port {}", p.name),
                    Subject::Port(&p.name),
                    e,
                )
            })?;
        let entry = self
            .port_types
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&p.name);
        if let Some((_, true)) = entry {
            vport::delete_device(&p.name).map_err(|e| {
                DpifError::Kernel(format!("deleting tunnel device {}: {e}", p.name))
            })?;
        }
        Ok(())
    }

    fn port_query_by_name(&self, name: &str) -> DpifResult<DpPort> {
        self.vport_query(None, Some(name))
    }

    fn port_query_by_number(&self, port: OdpPort) -> DpifResult<DpPort> {
        self.vport_query(Some(port), None)
    }

    fn port_dump(&self) -> DpifResult<Vec<DpPort>> {
        let req = vport::lookup_request(attr::cmd::GET, self.dp_ifindex, None, None);
        let msgs = self
            .ctl()
            .dump(self.families.vport, req)
            .map_err(|e| map_err("dumping ports", Subject::Datapath(&self.name), e))?;
        let mut ports = Vec::new();
        for m in &msgs {
            let v = vport::parse(m).map_err(|e| DpifError::Kernel(format!("port dump: {e}")))?;
            ports.push(self.to_dp_port(v));
        }
        ports.sort_by_key(|p| p.port_no);
        Ok(ports)
    }

    fn flow_put(&self, put: &FlowPut) -> DpifResult<()> {
        let (cmd, flags) = match put.mode {
            FlowPutMode::Create => (attr::cmd::NEW, NLM_F_CREATE | NLM_F_EXCL),
            FlowPutMode::CreateOrModify => (attr::cmd::NEW, NLM_F_CREATE),
            FlowPutMode::Modify => (attr::cmd::SET, 0),
        };
        let req = flow::put_request(
            cmd,
            self.dp_ifindex,
            &put.key,
            &put.mask,
            &put.actions,
            self.upcall_pids[0],
            put.clear_stats,
        )
        .map_err(|e| DpifError::InvalidArgument(e.to_string()))?;
        self.ctl()
            .request(self.families.flow, req, flags)
            .map_err(|e| {
                let ctx = format!(
                    "installing flow {}",
                    flow::describe(&put.key, &put.mask, &put.actions)
                );
                map_err(&ctx, Subject::Flow, e)
            })?;
        Ok(())
    }

    fn flow_get(&self, key: &FlowKey, mask: &FlowMask) -> DpifResult<DpFlow> {
        let req = flow::key_request(attr::cmd::GET, self.dp_ifindex, key, mask);
        let r = self
            .ctl()
            .request(self.families.flow, req, 0)
            .map_err(|e| map_err("getting a flow", Subject::Flow, e))?;
        let m = r.first().ok_or(DpifError::NoSuchFlow)?;
        flow::parse_flow(m).map_err(|e| DpifError::Kernel(e.to_string()))
    }

    fn flow_del(&self, key: &FlowKey, mask: &FlowMask) -> DpifResult<DpFlowStats> {
        let req = flow::key_request(attr::cmd::DEL, self.dp_ifindex, key, mask);
        let r = self
            .ctl()
            .request(self.families.flow, req, 0)
            .map_err(|e| map_err("deleting a flow", Subject::Flow, e))?;
        match r.first() {
            Some(m) => {
                flow::parse_stats(m).map_err(|e| DpifError::Kernel(format!("flow del reply: {e}")))
            }
            None => Ok(DpFlowStats::default()),
        }
    }

    fn flow_dump(&self) -> DpifResult<Vec<DpFlow>> {
        let req =
            OvsMessage::<genl::FlowFamily>::new(attr::cmd::GET, self.dp_ifindex, &[] as &[RawAttr]);
        let msgs = self
            .ctl()
            .dump(self.families.flow, req)
            .map_err(|e| map_err("dumping flows", Subject::Datapath(&self.name), e))?;
        let mut flows = Vec::with_capacity(msgs.len());
        for m in &msgs {
            match flow::parse_flow(m) {
                Ok(f) => flows.push(f),
                // a flow someone else installed with actions we do not model (ct, meter...)
                Err(e) => tracing::warn!(
                    "datapath {}: skipping a flow this switch cannot represent: {e}",
                    self.name
                ),
            }
        }
        Ok(flows)
    }

    fn flow_flush(&self) -> DpifResult<()> {
        let req =
            OvsMessage::<genl::FlowFamily>::new(attr::cmd::DEL, self.dp_ifindex, &[] as &[RawAttr]);
        self.ctl()
            .request(self.families.flow, req, 0)
            .map_err(|e| map_err("flushing flows", Subject::Datapath(&self.name), e))?;
        Ok(())
    }

    fn execute(&self, packet: &[u8], meta: &PacketMeta, actions: &[DpAction]) -> DpifResult<()> {
        if packet.len() < 14 {
            return Err(DpifError::InvalidArgument(format!(
                "execute: a {}-byte packet is shorter than an Ethernet header",
                packet.len()
            )));
        }
        if packet.len() > action::MAX_ATTR_PAYLOAD {
            return Err(DpifError::InvalidArgument(format!(
                "execute: a {}-byte packet does not fit a netlink attribute",
                packet.len()
            )));
        }
        let acts = action::encode_actions(actions, self.upcall_pids[0])
            .map_err(|e| DpifError::InvalidArgument(e.to_string()))?;
        let mut k = FlowKey {
            in_port: meta.in_port,
            recirc_id: meta.recirc_id,
            ..Default::default()
        };
        k.set_tunnel(meta.tunnel());
        let mut key = vec![
            key_attr::KeyAttr::RecircId(k.recirc_id),
            key_attr::KeyAttr::InPort(k.in_port),
        ];
        if k.tun_ipv4_dst != 0 || k.tun_ipv6_dst != [0; 16] {
            key.push(key_attr::KeyAttr::Tunnel(key_codec::tunnel_attrs(&k, &k)));
        }
        let req = OvsMessage::<PacketFamily>::new(
            attr::cmd::PACKET_EXECUTE,
            self.dp_ifindex,
            &[
                RawAttr::bytes(attr::packet::PACKET, packet.to_vec()),
                RawAttr::nested(attr::packet::KEY, &key),
                RawAttr::nested(attr::packet::ACTIONS, &acts),
            ],
        );
        self.ctl()
            .request(self.families.packet, req, 0)
            .map_err(|e| map_err("executing a packet", Subject::Datapath(&self.name), e))?;
        Ok(())
    }

    fn set_upcall_handler(&self, handler: Arc<dyn UpcallHandler>) {
        *self
            .shared
            .handler
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(handler);
    }

    fn stats(&self) -> DpifResult<DpStats> {
        let req =
            OvsMessage::<DatapathFamily>::new(attr::cmd::GET, self.dp_ifindex, &[] as &[RawAttr]);
        let r = self
            .ctl()
            .request(self.families.datapath, req, 0)
            .map_err(|e| map_err("reading datapath stats", Subject::Datapath(&self.name), e))?;
        let mut s = DpStats::default();
        let m = r
            .first()
            .ok_or_else(|| DpifError::NoSuchDatapath(self.name.clone()))?;
        for nla in m.nlas().flatten() {
            let v = attr::value(&nla);
            let u = |i: usize| {
                v.get(i * 8..i * 8 + 8)
                    .map(|b| u64::from_ne_bytes(b.try_into().unwrap()))
                    .unwrap_or(0)
            };
            match nla.kind() & NLA_TYPE_MASK {
                attr::dp::STATS => {
                    (s.n_hit, s.n_missed, s.n_lost, s.n_flows) = (u(0), u(1), u(2), u(3));
                }
                attr::dp::MEGAFLOW_STATS => {
                    s.n_mask_hit = u(0);
                    s.n_masks = v
                        .get(8..12)
                        .map(|b| u32::from_ne_bytes(b.try_into().unwrap()) as u64)
                        .unwrap_or(0);
                }
                _ => {}
            }
        }
        s.n_lost += self.shared.n_lost.load(Ordering::Relaxed);
        Ok(s)
    }
}
