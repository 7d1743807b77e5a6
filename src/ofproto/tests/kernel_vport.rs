//! Tunnel ports on a kernel-datapath bridge: output becomes `set(tunnel)` + output to the
//! vport, decapsulated packets are matched on their tun_* fields, and the kernel back
//! end's `vport` option passes the backer only on the kernel datapath.
//!
//! The backer here runs over `PortsOnlyDpif`, a test double standing in for the kernel
//! datapath (which needs the openvswitch module and root; the qemu guest test in
//! tests/kernel_datapath.rs drives the real one): it hands out port numbers, records
//! what it was asked to create and reports the datapath type it was built with. These
//! tests exercise only the translator and the backer, which see nothing else of it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::super::{Backer, OfprotoConfig, PortConfig, XlateOutput, XlateRequest};
use crate::dpif::{
    DpAction, DpFlow, DpFlowStats, DpPort, DpStats, Dpif, DpifError, DpifResult, FlowPut, PortSpec,
    SetField, UpcallHandler,
};
use crate::packet::flow_key::tun_flag;
use crate::packet::{ethertype, FlowKey, FlowMask, OdpPort, PacketMeta, TunnelMeta};

/// A datapath double of a given type that only keeps ports (see the module docs).
struct PortsOnlyDpif {
    dp_type: &'static str,
    ports: Mutex<Vec<PortSpec>>,
}

impl PortsOnlyDpif {
    fn new(dp_type: &'static str) -> Arc<PortsOnlyDpif> {
        Arc::new(PortsOnlyDpif {
            dp_type,
            ports: Mutex::new(Vec::new()),
        })
    }

    fn spec(&self, name: &str) -> Option<PortSpec> {
        let ports = self.ports.lock().unwrap();
        ports.iter().find(|p| p.name == name).cloned()
    }
}

impl Dpif for PortsOnlyDpif {
    fn name(&self) -> &str {
        "test-double"
    }
    fn dp_type(&self) -> &'static str {
        self.dp_type
    }
    fn destroy(&self) -> DpifResult<()> {
        Ok(())
    }
    fn port_add(&self, spec: &PortSpec, _requested: Option<OdpPort>) -> DpifResult<OdpPort> {
        let mut ports = self.ports.lock().unwrap();
        ports.push(spec.clone());
        Ok(ports.len() as OdpPort)
    }
    fn port_del(&self, _port: OdpPort) -> DpifResult<()> {
        Ok(())
    }
    fn port_query_by_name(&self, name: &str) -> DpifResult<DpPort> {
        Err(DpifError::NoSuchPort(name.to_string()))
    }
    fn port_query_by_number(&self, port: OdpPort) -> DpifResult<DpPort> {
        Err(DpifError::NoSuchPort(port.to_string()))
    }
    fn port_dump(&self) -> DpifResult<Vec<DpPort>> {
        Ok(Vec::new())
    }
    fn flow_put(&self, _put: &FlowPut) -> DpifResult<()> {
        Ok(())
    }
    fn flow_get(&self, _key: &FlowKey, _mask: &FlowMask) -> DpifResult<DpFlow> {
        Err(DpifError::InvalidArgument("no flows in the double".into()))
    }
    fn flow_del(&self, _key: &FlowKey, _mask: &FlowMask) -> DpifResult<DpFlowStats> {
        Err(DpifError::InvalidArgument("no flows in the double".into()))
    }
    fn flow_dump(&self) -> DpifResult<Vec<DpFlow>> {
        Ok(Vec::new())
    }
    fn flow_flush(&self) -> DpifResult<()> {
        Ok(())
    }
    fn execute(&self, _p: &[u8], _m: &PacketMeta, _a: &[DpAction]) -> DpifResult<()> {
        Ok(())
    }
    fn set_upcall_handler(&self, _handler: Arc<dyn UpcallHandler>) {}
    fn stats(&self) -> DpifResult<DpStats> {
        Ok(DpStats::default())
    }
}

fn spec(name: &str, port_type: &str, opts: &[(&str, &str)]) -> PortSpec {
    PortSpec {
        name: name.to_string(),
        port_type: port_type.to_string(),
        options: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// A backer of type `dp_type` with bridge br0: vm0 (OpenFlow 1, dp 1) and tunnel port
/// vx0 (OpenFlow 2, dp 2) with `tunnel_opts`, and `flows`.
fn rig(
    dp_type: &'static str,
    tunnel_opts: &[(&str, &str)],
    flows: &[&str],
) -> (Arc<Backer>, Arc<PortsOnlyDpif>) {
    let dp = PortsOnlyDpif::new(dp_type);
    let backer = Backer::new(dp.clone());
    backer.add_bridge("br0", OfprotoConfig::default()).unwrap();
    let cfg = PortConfig::default();
    assert_eq!(
        backer
            .add_port("br0", &spec("vm0", "netdev", &[]), None, cfg.clone())
            .unwrap(),
        1
    );
    assert_eq!(
        backer
            .add_port("br0", &spec("vx0", "vxlan", tunnel_opts), None, cfg)
            .unwrap(),
        2
    );
    for f in flows {
        backer.add_flow("br0", f).unwrap();
    }
    (backer, dp)
}

fn xlate(backer: &Backer, k: &FlowKey) -> XlateOutput {
    let br = backer.bridge("br0").unwrap();
    br.translate(&XlateRequest {
        key: k,
        packet: None,
        may_learn: true,
        revalidating: false,
        trace: false,
        now: br.now(),
    })
}

/// An IPv4/UDP packet from datapath port `in_port`.
fn packet(in_port: OdpPort) -> FlowKey {
    FlowKey {
        in_port,
        dl_src: [0x50, 0x54, 0, 0, 0, 1],
        dl_dst: [0x50, 0x54, 0, 0, 0, 2],
        dl_type: ethertype::IPV4,
        nw_src: 0x0a00_0001,
        nw_dst: 0x0a00_0002,
        nw_proto: 17,
        nw_ttl: 64,
        tp_src: 1000,
        tp_dst: 2000,
        ..Default::default()
    }
}

const FIXED: &[(&str, &str)] = &[
    ("remote_ip", "192.0.2.7"),
    ("local_ip", "192.0.2.1"),
    ("key", "5"),
    ("ttl", "32"),
    ("tos", "0x10"),
];

#[test]
fn output_to_kernel_tunnel_port_is_set_tunnel_then_output() {
    let (backer, _dp) = rig("kernel", FIXED, &["in_port=1,actions=output:2"]);
    let o = xlate(&backer, &packet(1));
    assert!(o.error.is_none(), "{:?}", o.error);
    assert!(o.install);
    let want = TunnelMeta {
        tun_id: 5,
        ipv4_src: 0xc000_0201,
        ipv4_dst: 0xc000_0207,
        ttl: 32,
        tos: 0x10,
        flags: tun_flag::KEY | tun_flag::DONT_FRAGMENT,
        tp_dst: 4789,
        ..TunnelMeta::default()
    };
    assert_eq!(
        o.actions,
        vec![DpAction::Set(SetField::Tunnel(want)), DpAction::Output(2)]
    );
    // Nothing of the tunnel was consulted: the remote and key are fixed, and the packet
    // did not come from a tunnel.
    let m = &o.mask.0;
    assert_eq!((m.tun_id, m.tun_ipv4_dst, m.tun_ipv4_src), (0, 0, 0));
}

#[test]
fn kernel_tunnel_megaflow_holds_for_packets_differing_in_wildcarded_bits() {
    let (backer, _dp) = rig("kernel", FIXED, &["in_port=1,actions=output:2"]);
    let k = packet(1);
    let o = xlate(&backer, &k);
    // Every field the mask leaves out, changed: the megaflow must not care.
    let m = o.mask.0;
    let mut k2 = k;
    if m.nw_src == 0 {
        k2.nw_src ^= 0xffff;
    }
    if m.tp_src == 0 {
        k2.tp_src ^= 0x7;
    }
    if m.dl_src == [0; 6] {
        k2.dl_src[5] ^= 0x3;
    }
    if m.tun_id == 0 {
        k2.tun_id = 99;
    }
    assert_ne!(k, k2, "the mask wildcards nothing the test can vary");
    let o2 = xlate(&backer, &k2);
    assert_eq!(o.actions, o2.actions);
    assert_eq!(o.mask, o2.mask);
}

#[test]
fn kernel_tunnel_remote_and_key_from_flow_are_consulted_and_sent_once() {
    let opts = [("remote_ip", "flow"), ("key", "flow")];
    let flows = ["in_port=1,actions=set_tunnel:0x2a,set_field:192.0.2.9->tun_dst,output:2"];
    let (backer, _dp) = rig("kernel", &opts, &flows);
    let o = xlate(&backer, &packet(1));
    let sets: Vec<&DpAction> = o
        .actions
        .iter()
        .filter(|a| matches!(a, DpAction::Set(SetField::Tunnel(_))))
        .collect();
    assert_eq!(
        sets.len(),
        1,
        "one set(tunnel), not the commit's too: {o:?}"
    );
    match sets[0] {
        DpAction::Set(SetField::Tunnel(t)) => {
            assert_eq!((t.tun_id, t.ipv4_dst, t.ipv4_src), (0x2a, 0xc000_0209, 0));
            assert_eq!(t.flags & tun_flag::KEY, tun_flag::KEY);
        }
        _ => unreachable!(),
    }
    assert_eq!(o.actions.last(), Some(&DpAction::Output(2)));
}

#[test]
fn kernel_tunnel_remote_flow_without_tun_dst_drops() {
    let opts = [("remote_ip", "flow")];
    let (backer, _dp) = rig("kernel", &opts, &["in_port=1,actions=output:2"]);
    let o = xlate(&backer, &packet(1));
    assert!(o.actions.is_empty(), "{:?}", o.actions);
    assert_eq!(
        o.mask.0.tun_ipv4_dst,
        u32::MAX,
        "the missing tun_dst was consulted"
    );
}

#[test]
fn decapsulated_packet_is_matched_on_its_tunnel_fields() {
    let flows = ["in_port=2,tun_id=5,actions=output:1"];
    let (backer, _dp) = rig("kernel", FIXED, &flows);
    let mut k = packet(2);
    k.tun_id = 5;
    k.tun_ipv4_src = 0xc000_0207;
    k.tun_ipv4_dst = 0xc000_0201;
    k.tun_ttl = 64;
    k.tun_flags = tun_flag::KEY;
    let o = xlate(&backer, &k);
    assert_eq!(o.actions, vec![DpAction::Output(1)]);
    assert!(o.install);
    assert_eq!(o.mask.0.tun_id, u64::MAX);
    assert_eq!(
        o.mask.0.tun_ipv4_src,
        u32::MAX,
        "the fixed remote was checked"
    );
    // Another VNI on the same vport is not this port's: dropped, tun_id consulted.
    k.tun_id = 6;
    let o = xlate(&backer, &k);
    assert!(o.actions.is_empty(), "{:?}", o.actions);
    assert_eq!(o.mask.0.tun_id, u64::MAX);
}

#[test]
fn netdev_bridge_never_emits_set_tunnel() {
    // Same config on the userspace datapath: native tunnelling (here: no underlay route
    // to 192.0.2.7 via a bridge port, so the packet is dropped and not installed).
    let (backer, _dp) = rig("netdev", FIXED, &["in_port=1,actions=output:2"]);
    let o = xlate(&backer, &packet(1));
    assert!(!o
        .actions
        .iter()
        .any(|a| matches!(a, DpAction::Set(SetField::Tunnel(_)) | DpAction::Output(2))));
}

#[test]
fn vport_option_reaches_the_kernel_back_end() {
    let mut opts = FIXED.to_vec();
    opts.push(("vport", "compat"));
    let (backer, dp) = rig("kernel", &opts, &[]);
    let seen = dp.spec("vx0").expect("vx0 was created in the datapath");
    assert_eq!(
        seen.options.get("vport").map(String::as_str),
        Some("compat")
    );
    assert!(backer.bridge("br0").unwrap().kernel_vports());
}

#[test]
fn vport_option_is_refused_on_the_netdev_datapath() {
    let dp = PortsOnlyDpif::new("netdev");
    let backer = Backer::new(dp.clone());
    backer.add_bridge("br0", OfprotoConfig::default()).unwrap();
    let mut opts = FIXED.to_vec();
    opts.push(("vport", "compat"));
    let err = backer
        .add_port(
            "br0",
            &spec("vx0", "vxlan", &opts),
            None,
            PortConfig::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("option vport") && err.contains("only the kernel datapath"),
        "{err}"
    );
    assert!(dp.spec("vx0").is_none(), "nothing was created");
}
