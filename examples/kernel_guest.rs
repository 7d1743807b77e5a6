//! The in-guest half of `make test-kernel`: drives `DpifNetlink` against the real
//! openvswitch module in a qemu guest (see scripts/kernel-test/), with traffic from
//! iputils' ping and iperf3 between network namespaces, and Debian's ovs-dpctl reading
//! the datapath we created. Prints one `KTEST PASS|FAIL <step>` line per step.
//!
//! The namespaces, veths and the Linux vxlan peer are set up by the guest init script;
//! this program owns the datapath and its ports.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rvswitch::dpif::{
    DpAction, Dpif, DpifError, FlowPut, FlowPutMode, Masked, PortSpec, SetField, Upcall,
    UpcallError, UpcallHandler, UpcallKind, UpcallReply,
};
use rvswitch::dpif_netlink::DpifNetlink;
use rvswitch::packet::{FlowKey, FlowMask, OdpPort, PacketMeta, TunnelMeta};

/// A MAC-learning switch as the translator: enough to carry ping, UDP and ARP.
struct LearningSwitch {
    /// Ports to flood to, with the tunnel metadata to set before output for tunnel ports.
    ports: RwLock<Vec<(OdpPort, Option<TunnelMeta>)>>,
    fdb: Mutex<HashMap<[u8; 6], OdpPort>>,
    /// Cookies of ACTION upcalls seen.
    cookies: Mutex<Vec<u64>>,
}

impl LearningSwitch {
    fn output(&self, port: OdpPort, acts: &mut Vec<DpAction>) {
        let ports = self.ports.read().unwrap();
        if let Some((_, Some(t))) = ports.iter().find(|(p, _)| *p == port) {
            acts.push(DpAction::Set(SetField::Tunnel(*t)));
        }
        acts.push(DpAction::Output(port));
    }
}

impl UpcallHandler for LearningSwitch {
    fn upcall(&self, up: &Upcall<'_>) -> Result<UpcallReply, UpcallError> {
        let k = up.key;
        if let UpcallKind::Action { cookie } = up.kind {
            self.cookies.lock().unwrap().push(cookie);
            return Ok(UpcallReply {
                actions: Vec::new(),
                mask: FlowMask::default(),
                install: false,
            });
        }
        if !self
            .ports
            .read()
            .unwrap()
            .iter()
            .any(|(p, _)| *p == k.in_port)
        {
            return Err(UpcallError::NoBridge(k.in_port));
        }
        if k.dl_src[0] & 1 == 0 {
            self.fdb.lock().unwrap().insert(k.dl_src, k.in_port);
        }
        let mut mask = FlowMask::default();
        mask.0.in_port = u32::MAX;
        mask.0.dl_src = [0xff; 6];
        mask.0.dl_dst = [0xff; 6];
        if k.tun_ipv4_dst != 0 {
            // from a tunnel: consult the whole tunnel metadata, as ofproto does
            mask.0 = full_tunnel_mask(mask.0);
        }
        let mut actions = Vec::new();
        let known = self.fdb.lock().unwrap().get(&k.dl_dst).copied();
        match known {
            Some(p) if p != k.in_port => self.output(p, &mut actions),
            Some(_) => {}
            None => {
                let ports: Vec<OdpPort> =
                    self.ports.read().unwrap().iter().map(|(p, _)| *p).collect();
                for p in ports.into_iter().filter(|p| *p != k.in_port) {
                    self.output(p, &mut actions);
                }
            }
        }
        Ok(UpcallReply {
            actions,
            mask,
            install: true,
        })
    }
}

/// Every tunnel bit set, the rest of `m` kept.
fn full_tunnel_mask(mut m: FlowKey) -> FlowKey {
    (m.tun_id, m.tun_ipv4_src, m.tun_ipv4_dst) = (u64::MAX, u32::MAX, u32::MAX);
    (m.tun_ipv6_src, m.tun_ipv6_dst) = ([0xff; 16], [0xff; 16]);
    (m.tun_flags, m.tun_tos, m.tun_ttl) = (u16::MAX, u8::MAX, u8::MAX);
    (m.tun_tp_src, m.tun_tp_dst) = (u16::MAX, u16::MAX);
    (m.tun_gnv_opt_hdr, m.tun_gnv_opt_data) = (u32::MAX, u32::MAX);
    m
}

struct Report {
    failed: usize,
}

impl Report {
    fn step(&mut self, name: &str, r: Result<String, String>) -> bool {
        match r {
            Ok(detail) => {
                println!("KTEST PASS {name} {detail}");
                true
            }
            Err(why) => {
                println!("KTEST FAIL {name}: {why}");
                self.failed += 1;
                false
            }
        }
    }
}

fn sh(cmd: &str) -> Result<String, String> {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("`{cmd}` failed ({}): {}", out.status, text.trim()))
    }
}

fn ipv4(s: &str) -> u32 {
    u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
}

fn spec(name: &str, t: &str) -> PortSpec {
    PortSpec {
        name: name.into(),
        port_type: t.into(),
        options: BTreeMap::new(),
    }
}

/// Flows as (in_port, eth src, eth dst) -> packets, from ovs-dpctl's text.
fn parse_dpctl_flows(text: &str) -> BTreeMap<(u32, String, String), u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let grab = |pre: &str, end: char| -> Option<String> {
            let i = line.find(pre)? + pre.len();
            Some(line[i..].split(end).next()?.to_string())
        };
        let (Some(port), Some(src), Some(dst), Some(pk)) = (
            grab("in_port(", ')'),
            grab("eth(src=", ','),
            grab(",dst=", ')'),
            grab("packets:", ','),
        ) else {
            continue;
        };
        if let (Ok(port), Ok(pk)) = (port.parse(), pk.parse()) {
            out.insert((port, src, dst), pk);
        }
    }
    out
}

fn mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dpname = args.get(1).cloned().unwrap_or_else(|| "rvs0".into());
    let mut rep = Report { failed: 0 };
    std::process::exit(match run(&dpname, &mut rep) {
        Ok(()) if rep.failed == 0 => 0,
        Ok(()) => 1,
        Err(e) => {
            println!("KTEST FAIL aborted: {e}");
            1
        }
    });
}

fn run(dpname: &str, rep: &mut Report) -> Result<(), String> {
    // 1. datapath
    let dp = match DpifNetlink::create(dpname, 2) {
        Ok(dp) => dp,
        Err(e) => {
            rep.step("create_datapath", Err(e.to_string()));
            return Err("no datapath".into());
        }
    };
    let again = DpifNetlink::create(dpname, 1);
    rep.step(
        "create_datapath",
        match again {
            Err(DpifError::Kernel(m)) if m.contains("already exists") => {
                Ok(format!("ifindex {}; second create: {m}", dp.dp_ifindex()))
            }
            Err(e) => Err(format!("second create gave the wrong error: {e}")),
            Ok(_) => Err("creating the datapath twice succeeded".into()),
        },
    );

    // 2. ports
    let sw = Arc::new(LearningSwitch {
        ports: RwLock::new(Vec::new()),
        fdb: Mutex::new(HashMap::new()),
        cookies: Mutex::new(Vec::new()),
    });
    dp.set_upcall_handler(sw.clone());
    let p1 = dp
        .port_add(&spec("v1a", "netdev"), None)
        .map_err(|e| e.to_string())?;
    // a requested port number is honoured
    let p2 = dp
        .port_add(&spec("v2a", "netdev"), Some(7))
        .map_err(|e| e.to_string())?;
    if p2 != 7 {
        rep.step("add_ports", Err(format!("asked for port 7, got {p2}")));
    }
    sw.ports.write().unwrap().extend([(p1, None), (p2, None)]);
    let missing = dp.port_add(&spec("nosuchdev0", "netdev"), None);
    let dup = dp.port_add(&spec("v1a", "netdev"), None);
    let ports = dp.port_dump().map_err(|e| e.to_string())?;
    rep.step(
        "add_ports",
        match (&missing, &dup) {
            (Err(DpifError::NoSuchPort(_)), Err(DpifError::PortExists(_))) if ports.len() == 3 => {
                Ok(format!(
                    "v1a={p1} v2a={p2}; missing device: {}; duplicate: {}",
                    missing.as_ref().unwrap_err(),
                    dup.as_ref().unwrap_err()
                ))
            }
            _ => Err(format!(
                "ports {ports:?}, missing device -> {missing:?}, duplicate -> {dup:?}"
            )),
        },
    );

    // 3. ping through the kernel datapath
    rep.step(
        "ping",
        sh("/usr/sbin/ip netns exec ns1 /usr/bin/ping -c 3 -i 0.2 -W 3 10.0.0.2")
            .map(|o| last_line(&o, "packet loss")),
    );

    // 4. a UDP stream
    rep.step("udp_stream", udp_stream());

    // 5. our dump shows megaflows with stats
    let flows = dp.flow_dump().map_err(|e| e.to_string())?;
    let hit: Vec<_> = flows.iter().filter(|f| f.stats.packets > 0).collect();
    for f in &flows {
        println!(
            "  flow in_port={} src={} dst={} packets={} bytes={} actions={:?}",
            f.key.in_port,
            mac(&f.key.dl_src),
            mac(&f.key.dl_dst),
            f.stats.packets,
            f.stats.bytes,
            f.actions
        );
    }
    let stats = dp.stats().map_err(|e| e.to_string())?;
    rep.step(
        "dump_flows",
        if !hit.is_empty()
            && stats.n_flows == flows.len() as u64
            && stats.n_missed > 0
            && stats.n_hit > 0
        {
            Ok(format!(
                "{} megaflows, {} with hits; dp hit={} missed={} lost={} masks={}",
                flows.len(),
                hit.len(),
                stats.n_hit,
                stats.n_missed,
                stats.n_lost,
                stats.n_masks
            ))
        } else {
            Err(format!(
                "{} flows ({} with hits), stats {stats:?}",
                flows.len(),
                hit.len()
            ))
        },
    );

    // 6. Debian's ovs-dpctl agrees with us
    println!("  user features before ovs-dpctl: {:?}", dp.user_features());
    rep.step("dpctl_show", dpctl_show(&dp, dpname));
    println!(
        "  user features after ovs-dpctl show: {:?}",
        dp.user_features()
    );
    rep.step("dpctl_dump_flows", dpctl_flows(&dp, dpname));
    // new flows must still come up to our handlers after ovs-dpctl opened the datapath
    dp.flow_flush().map_err(|e| e.to_string())?;
    rep.step(
        "ping_after_dpctl",
        sh("/usr/sbin/ip netns exec ns1 /usr/bin/ping -c 2 -i 0.2 -W 3 10.0.0.2")
            .map(|o| last_line(&o, "packet loss")),
    );

    // 7. flow put/get/modify/del and kernel errors
    rep.step("flow_ops", flow_ops(&dp, p1, p2));

    // 8. execute a packet: it must leave through v2a
    rep.step("execute", execute(&dp, p1, p2));

    // 9. userspace action -> ACTION upcall with our cookie
    rep.step("userspace_action", userspace_action(&dp, &sw, p1));

    // 10. tunnels: flow-based vxlan/geneve/gretap devices, each to a Linux tunnel device
    // in its own namespace
    rep.step(
        "vxlan",
        tunnel(
            &dp,
            &sw,
            ("vxrvs0", "vxlan", 42),
            "192.168.50.2",
            "10.0.0.3",
        ),
    );
    rep.step(
        "geneve",
        tunnel(
            &dp,
            &sw,
            ("gnvrvs0", "geneve", 43),
            "192.168.51.2",
            "10.0.0.4",
        ),
    );
    rep.step(
        "gre",
        tunnel(&dp, &sw, ("grervs0", "gre", 44), "192.168.52.2", "10.0.0.5"),
    );
    rep.step("tunnel_port_del", tunnel_port_del(&dp, &sw, "grervs0"));
    rep.step("compat_tunnel_vports", compat_vports(&dp, dpname));
    rep.step("internal_port", internal_port(&dp));

    // 10. idle expiry
    std::thread::sleep(Duration::from_millis(1500));
    let n_before = dp.flow_dump().map_err(|e| e.to_string())?.len();
    let expired = dp.expire_idle_flows(Duration::from_secs(1));
    let n_after = dp.flow_dump().map_err(|e| e.to_string())?.len();
    rep.step(
        "expire_idle",
        match expired {
            Ok(n) if n > 0 && n_after < n_before => {
                Ok(format!("{n} idle flows expired ({n_before} -> {n_after})"))
            }
            other => Err(format!("expiry {other:?}, flows {n_before} -> {n_after}")),
        },
    );

    // 11. a restarted switch reopens the datapath: same ports, tunnels recognised, upcalls
    // reach the new handlers
    let (up, lost, installed) = dp.upcall_counters();
    println!("  upcalls handled={up} lost={lost} megaflows installed={installed}");
    let before: Vec<_> = dp
        .port_dump()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| (p.port_no, p.name, p.port_type))
        .collect();
    drop(dp); // handler threads stop; the datapath stays
    let dp = match DpifNetlink::open(dpname, 2) {
        Ok(dp) => dp,
        Err(e) => {
            rep.step("reopen", Err(e.to_string()));
            return Err("no datapath after reopen".into());
        }
    };
    dp.set_upcall_handler(sw.clone());
    let after: Vec<_> = dp
        .port_dump()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| (p.port_no, p.name, p.port_type))
        .collect();
    let _ = dp.flow_flush();
    let ping = sh("/usr/sbin/ip netns exec ns1 /usr/bin/ping -c 2 -i 0.2 -W 3 10.0.0.2");
    rep.step(
        "reopen",
        match ping {
            Ok(out) if before == after && dp.upcall_counters().0 > 0 => Ok(format!(
                "ports {after:?}; {}",
                last_line(&out, "packet loss")
            )),
            other => Err(format!(
                "ports before {before:?} after {after:?}; ping {other:?}; upcalls {:?}",
                dp.upcall_counters()
            )),
        },
    );

    // 12. destroy: datapath and devices gone
    let destroyed = dp.destroy();
    drop(dp);
    let gone_dp = sh(&format!("ovs-dpctl show system@{dpname}")).is_err();
    let gone_dev = sh(&format!("/usr/sbin/ip link show {dpname}")).is_err();
    let gone_vx = sh("/usr/sbin/ip link show vxrvs0").is_err()
        && sh("/usr/sbin/ip link show gnvrvs0").is_err();
    let reopen = DpifNetlink::open(dpname, 1);
    rep.step(
        "destroy",
        match (&destroyed, gone_dp, gone_dev, gone_vx, &reopen) {
            (Ok(()), true, true, true, Err(DpifError::NoSuchDatapath(_))) => Ok(format!("reopen: {}", reopen.as_ref().err().unwrap())),
            _ => Err(format!("destroy {destroyed:?}, dpctl sees it: {}, dp device: {}, vxlan device: {}, reopen ok: {}", !gone_dp, !gone_dev, !gone_vx, reopen.is_ok())),
        },
    );
    Ok(())
}

fn last_line(out: &str, containing: &str) -> String {
    out.lines()
        .find(|l| l.contains(containing))
        .unwrap_or("")
        .trim()
        .to_string()
}

fn udp_stream() -> Result<String, String> {
    sh("/usr/sbin/ip netns exec ns2 /usr/bin/iperf3 -s -1 -D -p 5201")?;
    std::thread::sleep(Duration::from_millis(500));
    let out = sh(
        "/usr/sbin/ip netns exec ns1 /usr/bin/iperf3 -u -c 10.0.0.2 -p 5201 -b 5M -l 1000 -t 2 -J",
    )?;
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| format!("iperf3 JSON: {e}: {out}"))?;
    let sum = &v["end"]["sum"];
    let packets = sum["packets"].as_u64().unwrap_or(0);
    let lost = sum["lost_packets"].as_u64().unwrap_or(packets);
    if packets > 100 && lost * 10 < packets {
        Ok(format!("{packets} datagrams, {lost} lost"))
    } else {
        Err(format!("{packets} datagrams, {lost} lost: {sum}"))
    }
}

fn dpctl_show(dp: &DpifNetlink, dpname: &str) -> Result<String, String> {
    let out = sh(&format!("ovs-dpctl show system@{dpname}"))?;
    print!(
        "{}",
        out.lines()
            .map(|l| format!("  | {l}\n"))
            .collect::<String>()
    );
    let mut theirs = BTreeMap::new();
    for l in out.lines() {
        let l = l.trim();
        if let Some(rest) = l.strip_prefix("port ") {
            let (num, name) = rest.split_once(": ").ok_or("bad port line")?;
            let name = name.split(' ').next().unwrap_or("").to_string();
            theirs.insert(num.parse::<u32>().map_err(|e| e.to_string())?, name);
        }
    }
    let ours: BTreeMap<u32, String> = dp
        .port_dump()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|p| (p.port_no, p.name))
        .collect();
    if ours == theirs {
        Ok(format!("ports agree: {ours:?}"))
    } else {
        Err(format!("ours {ours:?} vs ovs-dpctl {theirs:?}"))
    }
}

fn dpctl_flows(dp: &DpifNetlink, dpname: &str) -> Result<String, String> {
    let ours_now = || -> Result<BTreeMap<(u32, String, String), u64>, String> {
        Ok(dp
            .flow_dump()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|f| {
                (
                    (f.key.in_port, mac(&f.key.dl_src), mac(&f.key.dl_dst)),
                    f.stats.packets,
                )
            })
            .collect())
    };
    // compare snapshots taken while nothing changed (ours before == ours after)
    let mut last = String::new();
    for _ in 0..5 {
        let before = ours_now()?;
        let out = sh(&format!("ovs-dpctl dump-flows system@{dpname}"))?;
        let after = ours_now()?;
        let theirs = parse_dpctl_flows(&out);
        if before == after {
            print!(
                "{}",
                out.lines()
                    .map(|l| format!("  | {l}\n"))
                    .collect::<String>()
            );
            return if !after.is_empty() && after == theirs {
                Ok(format!(
                    "{} flows agree (in_port, eth, packets)",
                    after.len()
                ))
            } else {
                Err(format!("ours {after:?}\n    ovs-dpctl {theirs:?}"))
            };
        }
        last = format!("flows kept changing: {before:?} -> {after:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    Err(last)
}

fn flow_ops(dp: &DpifNetlink, p1: OdpPort, p2: OdpPort) -> Result<String, String> {
    let key = FlowKey {
        in_port: p1,
        dl_type: 0x0800,
        nw_proto: 17,
        nw_src: ipv4("10.9.0.1"),
        nw_dst: ipv4("10.9.9.9"),
        tp_dst: 9999,
        ..Default::default()
    };
    let mut mask = FlowMask::default();
    mask.0.in_port = u32::MAX;
    mask.0.dl_type = u16::MAX;
    mask.0.nw_proto = u8::MAX;
    mask.0.nw_dst = u32::MAX;
    mask.0.tp_dst = u16::MAX;
    let rewrite = DpAction::Set(SetField::Ipv4 {
        src: Masked {
            value: ipv4("10.9.0.2"),
            mask: u32::MAX,
        },
        dst: Masked::default(),
        tos: Masked::default(),
        ttl: Masked {
            value: 9,
            mask: 0xff,
        },
    });
    let put = |mode, actions: Vec<DpAction>| {
        dp.flow_put(&FlowPut {
            key,
            mask,
            actions: actions.into(),
            mode,
            clear_stats: false,
        })
    };
    put(
        FlowPutMode::Create,
        vec![rewrite.clone(), DpAction::Output(p2)],
    )
    .map_err(|e| format!("create: {e}"))?;
    let got = dp.flow_get(&key, &mask).map_err(|e| format!("get: {e}"))?;
    // the kernel's mask may only be stricter than ours (recirc_id, TCIs, parse flags)
    if got.actions[..] != [rewrite.clone(), DpAction::Output(p2)]
        || !mask.is_subset_of(&got.mask)
        || got.key != key.masked(&got.mask)
    {
        return Err(format!("get returned {got:?}"));
    }
    // an exact-match flow (full tunnel mask on an untunnelled key) and a translator-style
    // mask with "not tunnelled" and parse flags
    let mut exact_key = key;
    exact_key.tp_dst = 9998;
    exact_key.nw_ttl = 64;
    let mut xlate_mask = mask;
    xlate_mask.0.parse_flags = u8::MAX;
    // ofproto consults every tunnel field when a flow sets a tunnel
    let w = &mut xlate_mask.0;
    (w.tun_id, w.tun_ipv4_src, w.tun_ipv4_dst) = (u64::MAX, u32::MAX, u32::MAX);
    (w.tun_ipv6_src, w.tun_ipv6_dst) = ([0xff; 16], [0xff; 16]);
    (w.tun_flags, w.tun_tos, w.tun_ttl) = (u16::MAX, u8::MAX, u8::MAX);
    (w.tun_tp_src, w.tun_tp_dst) = (u16::MAX, u16::MAX);
    (w.tun_gnv_opt_hdr, w.tun_gnv_opt_data) = (u32::MAX, u32::MAX);
    for m in [FlowMask::exact(), xlate_mask] {
        dp.flow_put(&FlowPut {
            key: exact_key,
            mask: m,
            actions: vec![DpAction::Output(p2)].into(),
            mode: FlowPutMode::Create,
            clear_stats: false,
        })
        .map_err(|e| format!("create with mask {m:?}: {e}"))?;
        let got = dp
            .flow_get(&exact_key, &m)
            .map_err(|e| format!("get: {e}"))?;
        // the translator's mask must survive whole (the revalidator relies on it); the
        // exact mask keeps what the kernel can hold for a UDP key
        let covered = if m == xlate_mask {
            m.is_subset_of(&got.mask)
        } else {
            got.mask.0.nw_ttl == u8::MAX
                && got.mask.0.tp_src == u16::MAX
                && got.mask.0.dl_src == [0xff; 6]
        };
        if !covered || got.key != exact_key.masked(&got.mask) {
            return Err(format!("exact get returned {got:?}"));
        }
        if got.mask.0.tun_id != u64::MAX || got.mask.0.tun_ipv4_dst != u32::MAX {
            return Err(format!("tunnel mask not kept: {:?}", got.mask));
        }
        dp.flow_del(&exact_key, &m)
            .map_err(|e| format!("del: {e}"))?;
    }
    match put(FlowPutMode::Create, vec![DpAction::Output(p2)]) {
        Err(DpifError::FlowExists) => {}
        other => return Err(format!("second create gave {other:?}")),
    }
    put(FlowPutMode::Modify, vec![DpAction::Output(p1)]).map_err(|e| format!("modify: {e}"))?;
    let got = dp
        .flow_get(&key, &mask)
        .map_err(|e| format!("get after modify: {e}"))?;
    if got.actions[..] != [DpAction::Output(p1)] {
        return Err(format!("modify did not take: {:?}", got.actions));
    }
    dp.flow_del(&key, &mask).map_err(|e| format!("del: {e}"))?;
    let after = dp.flow_get(&key, &mask);
    let del_again = dp.flow_del(&key, &mask);
    let modify_missing = put(FlowPutMode::Modify, vec![DpAction::Output(p1)]);
    if !matches!(after, Err(DpifError::NoSuchFlow))
        || !matches!(del_again, Err(DpifError::NoSuchFlow))
        || !matches!(modify_missing, Err(DpifError::NoSuchFlow))
    {
        return Err(format!(
            "after delete: get {after:?}, del {del_again:?}, modify {modify_missing:?}"
        ));
    }
    // an IPv4 rewrite on an ARP flow: the kernel refuses it with EINVAL
    let mut arp = key;
    arp.dl_type = 0x0806;
    arp.nw_proto = 1;
    let bad = dp.flow_put(&FlowPut {
        key: arp,
        mask,
        actions: vec![rewrite].into(),
        mode: FlowPutMode::Create,
        clear_stats: false,
    });
    match bad {
        Err(DpifError::InvalidArgument(m)) => Ok(format!(
            "create/get/exists/modify/del/missing ok; invalid flow: {m}"
        )),
        other => Err(format!("an IPv4 rewrite on an ARP flow gave {other:?}")),
    }
}

fn execute(dp: &DpifNetlink, p1: OdpPort, p2: OdpPort) -> Result<String, String> {
    let before = dp
        .port_query_by_number(p2)
        .map_err(|e| e.to_string())?
        .stats
        .tx_packets;
    // a broadcast UDP frame, built by hand
    let mut f = vec![0xffu8; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x99, 0x08, 0x00]);
    let ip = [
        0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 99, 10, 0, 0, 255,
    ];
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x30, 0x39, 0x30, 0x39, 0, 8, 0, 0]);
    let meta = PacketMeta::for_port(p1);
    dp.execute(&f, &meta, &[DpAction::Output(p2)])
        .map_err(|e| e.to_string())?;
    let after = dp
        .port_query_by_number(p2)
        .map_err(|e| e.to_string())?
        .stats
        .tx_packets;
    let short = dp.execute(&f[..10], &meta, &[DpAction::Output(p2)]);
    if after == before + 1 && matches!(short, Err(DpifError::InvalidArgument(_))) {
        Ok(format!("v2a tx_packets {before} -> {after}"))
    } else {
        Err(format!(
            "v2a tx_packets {before} -> {after}; short frame: {short:?}"
        ))
    }
}

/// Adds a flow-based tunnel port of `kind` whose far end is a Linux tunnel device (set up
/// by the init script) at `remote`, and pings `target` through it from ns1.
fn tunnel(
    dp: &DpifNetlink,
    sw: &LearningSwitch,
    (name, kind, vni): (&str, &str, u64),
    remote: &str,
    target: &str,
) -> Result<String, String> {
    let p = dp
        .port_add(&spec(name, kind), None)
        .map_err(|e| e.to_string())?;
    let link = sh(&format!("/usr/sbin/ip -d link show {name}"))?;
    if !link.contains("external") {
        return Err(format!("{name} is not a flow-based {kind} device: {link}"));
    }
    let tun = TunnelMeta {
        tun_id: vni,
        ipv4_dst: ipv4(remote),
        ttl: 64,
        flags: rvswitch::packet::flow_key::tun_flag::KEY,
        ..Default::default()
    };
    sw.ports.write().unwrap().push((p, Some(tun)));
    // the flood flows installed before the port existed are stale now: flush them, as a
    // revalidator would after a port change
    dp.flow_flush().map_err(|e| format!("flush: {e}"))?;
    let left = dp.flow_dump().map_err(|e| e.to_string())?.len();
    if left != 0 {
        return Err(format!("{left} flows left after flush"));
    }
    let out = sh(&format!(
        "/usr/sbin/ip netns exec ns1 /usr/bin/ping -c 3 -i 0.2 -W 3 {target}"
    ))?;
    let t = dp.port_query_by_number(p).map_err(|e| e.to_string())?;
    // the megaflows towards the tunnel carry set(tunnel) as the kernel reports it back
    let flows = dp.flow_dump().map_err(|e| e.to_string())?;
    let encap = flows.iter().any(|f| {
        f.actions.iter().any(|a| {
            matches!(a, DpAction::Set(SetField::Tunnel(m)) if m.tun_id == vni && m.ipv4_dst == ipv4(remote))
        })
    });
    // and the megaflows from it match the tunnel metadata the handler consulted
    let full = FlowMask(full_tunnel_mask(FlowKey::default()));
    let decap = flows.iter().any(|f| {
        f.key.in_port == p
            && f.key.tun_id == vni
            && f.key.tun_ipv4_src == ipv4(remote)
            && full.is_subset_of(&f.mask)
    });
    if !encap || !decap || t.stats.rx_packets == 0 || t.stats.tx_packets == 0 {
        return Err(format!(
            "set(tunnel) flow dumped: {encap}, tunnel-keyed flow dumped: {decap}, port stats {:?}; flows {flows:?}",
            t.stats
        ));
    }
    Ok(format!(
        "port {p} ({}): {}; {name} rx={} tx={}",
        t.port_type,
        last_line(&out, "packet loss"),
        t.stats.rx_packets,
        t.stats.tx_packets
    ))
}

/// Deletes a tunnel port: its Linux device must go with it.
fn tunnel_port_del(dp: &DpifNetlink, sw: &LearningSwitch, name: &str) -> Result<String, String> {
    let p = dp.port_query_by_name(name).map_err(|e| e.to_string())?;
    dp.port_del(p.port_no).map_err(|e| e.to_string())?;
    sw.ports.write().unwrap().retain(|(n, _)| *n != p.port_no);
    let again = dp.port_del(p.port_no);
    if sh(&format!("/usr/sbin/ip link show {name}")).is_ok() {
        return Err(format!("{name} still exists after port_del"));
    }
    match (again, dp.port_query_by_name(name)) {
        (Err(DpifError::NoSuchPort(_)), Err(DpifError::NoSuchPort(_))) => {
            Ok(format!("port {} and device {name} gone", p.port_no))
        }
        (a, q) => Err(format!(
            "after delete: del {a:?}, query {:?}",
            q.map(|p| p.port_no)
        )),
    }
}

/// An internal port: the module makes the Linux device, and removes it with the port.
fn internal_port(dp: &DpifNetlink) -> Result<String, String> {
    let p = dp
        .port_add(&spec("rvsint0", "internal"), None)
        .map_err(|e| e.to_string())?;
    let q = dp.port_query_by_number(p).map_err(|e| e.to_string())?;
    let link = sh("/usr/sbin/ip -d link show rvsint0")?;
    if q.port_type != "internal" || !link.contains("openvswitch") {
        return Err(format!("port {q:?}, device: {link}"));
    }
    dp.port_del(p).map_err(|e| e.to_string())?;
    if sh("/usr/sbin/ip link show rvsint0").is_ok() {
        return Err("rvsint0 outlived its port".into());
    }
    Ok(format!(
        "port {p} ({}) created and removed with its device",
        q.port_type
    ))
}

/// The module's own tunnel vport types (`vport = "compat"`): added, seen by ovs-dpctl with
/// their type, deleted with their device.
fn compat_vports(dp: &DpifNetlink, dpname: &str) -> Result<String, String> {
    let mut done = Vec::new();
    for (name, kind, port) in [
        ("vxc0", "vxlan", Some("4790")),
        ("gnvc0", "geneve", Some("6082")),
        ("grec0", "gre", None),
    ] {
        let mut s = spec(name, kind);
        s.options.insert("vport".into(), "compat".into());
        if let Some(p) = port {
            s.options.insert("dst_port".into(), p.into());
        }
        let no = dp.port_add(&s, None).map_err(|e| format!("{name}: {e}"))?;
        let show = sh(&format!("ovs-dpctl show system@{dpname}"))?;
        let line = show
            .lines()
            .find(|l| l.contains(&format!("port {no}: {name}")))
            .unwrap_or("")
            .trim()
            .to_string();
        let want = format!("({kind}");
        if let Some(p) = port {
            // the compat vport's own UDP socket
            let hex = format!(":{:04X} ", p.parse::<u16>().unwrap());
            let udp = std::fs::read_to_string("/proc/net/udp").unwrap_or_default()
                + &std::fs::read_to_string("/proc/net/udp6").unwrap_or_default();
            if !udp.lines().any(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|a| a.ends_with(hex.trim_end()))
            }) {
                return Err(format!("{name}: nothing listens on UDP {p}:\n{udp}"));
            }
        }
        if !line.contains(&want)
            || dp
                .port_query_by_name(name)
                .map(|p| p.port_type)
                .ok()
                .as_deref()
                != Some(kind)
        {
            return Err(format!("{name}: ovs-dpctl shows '{line}', wanted {want}"));
        }
        dp.port_del(no)
            .map_err(|e| format!("deleting {name}: {e}"))?;
        if sh(&format!("/usr/sbin/ip link show {name}")).is_ok() {
            return Err(format!("{name}'s device outlived the port"));
        }
        done.push(line);
    }
    let mut bad = spec("vxbad0", "vxlan");
    bad.options.insert("vport".into(), "bogus".into());
    match dp.port_add(&bad, None) {
        Err(DpifError::InvalidArgument(m)) => Ok(format!("{}; bad option: {m}", done.join("; "))),
        other => Err(format!("vport=bogus gave {other:?}")),
    }
}

/// A flow whose action is `userspace(cookie)`: the packet must come back as an ACTION upcall.
fn userspace_action(dp: &DpifNetlink, sw: &LearningSwitch, p1: OdpPort) -> Result<String, String> {
    let key = FlowKey {
        in_port: p1,
        dl_type: 0x0800,
        nw_proto: 1,
        tp_src: 8, // ICMP echo request
        ..Default::default()
    };
    let mut mask = FlowMask::default();
    mask.0.in_port = u32::MAX;
    mask.0.dl_type = u16::MAX;
    mask.0.nw_proto = u8::MAX;
    mask.0.tp_src = u16::MAX;
    // megaflows must not overlap: the L2 flows from earlier steps would match too
    dp.flow_flush().map_err(|e| e.to_string())?;
    dp.flow_put(&FlowPut {
        key,
        mask,
        actions: vec![DpAction::Userspace { cookie: 0xc0ffee }].into(),
        mode: FlowPutMode::CreateOrModify,
        clear_stats: false,
    })
    .map_err(|e| e.to_string())?;
    // the echo request goes to the translator instead of ns2, so this ping gets no reply
    let _ = sh("/usr/sbin/ip netns exec ns1 /usr/bin/ping -c 1 -W 1 10.0.0.2");
    for _ in 0..20 {
        if sw.cookies.lock().unwrap().contains(&0xc0ffee) {
            let f = dp.flow_get(&key, &mask).map_err(|e| e.to_string())?;
            return Ok(format!(
                "ACTION upcall with cookie 0xc0ffee; flow packets={}",
                f.stats.packets
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let f = dp.flow_get(&key, &mask);
    Err(format!(
        "no ACTION upcall; cookies seen {:?}; flow {:?}; upcalls {:?}; flows {:?}",
        sw.cookies.lock().unwrap(),
        f.map(|f| f.stats),
        dp.upcall_counters(),
        dp.flow_dump().map(|v| v
            .into_iter()
            .map(|f| (f.key.in_port, f.stats.packets, f.actions))
            .collect::<Vec<_>>())
    ))
}
