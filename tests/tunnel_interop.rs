//! Native tunnels against other switches: rvswitch to rvswitch over VXLAN, Geneve and
//! GRE, and rvswitch to Debian's Open vSwitch userspace ("netdev") datapath over Geneve
//! and GRE (this host kernel has no geneve or gre module; OVS's userspace datapath
//! tunnels natively, as rvswitch does). Needs root; fails, not skips, when broken.
//!
//! Each site runs in its own network namespace (a switch's routing is its namespace's):
//! - underlay: a veth pair between the two site namespaces; on each site it is a port of
//!   the underlay bridge, whose internal port holds the tunnel endpoint 172.28.<n>.1 / .2;
//! - overlay: a tunnel port (key 5000) and a veth to a "VM" namespace (10.79.<n>.1 / .2)
//!   on the overlay bridge.
//!
//! ping goes both ways between the VM namespaces through the tunnel. The namespaces,
//! daemons and OVS processes are removed on drop.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The two tests each run two busy-polling switches; on a small host, running them at
/// the same time starves the PMDs and loses pings, so they take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Namespaces (and with them their interfaces) removed on drop.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn in_ns(ns: &str, cmd: &str) -> String {
    sh(&format!("ip netns exec {ns} sh -c '{cmd}'"))
}

/// Two sites (`<tag>r`, `<tag>o`) joined by an underlay veth, each with a VM namespace.
/// Returns the namespaces guard; interface names: underlay `<tag>ur`/`<tag>uo`, VM side
/// `<tag>vr`/`<tag>vo` (site) and `<tag>va`/`<tag>vb` (VM).
fn topology(tag: &str, n: u8) -> Namespaces {
    let names: Vec<String> = ["r", "o", "a", "b"]
        .iter()
        .map(|s| format!("{tag}{s}"))
        .collect();
    for ns in &names {
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
        sh(&format!("ip netns add {ns}"));
        in_ns(ns, "ip link set lo up; sysctl -qw net.ipv6.conf.all.disable_ipv6=1; sysctl -qw net.ipv6.conf.default.disable_ipv6=1");
    }
    let g = Namespaces(names);
    let (r, o, a, b) = (&g.0[0], &g.0[1], &g.0[2], &g.0[3]);
    sh(&format!(
        "ip link add {tag}ur netns {r} type veth peer name {tag}uo netns {o}"
    ));
    sh(&format!(
        "ip link add {tag}vr netns {r} type veth peer name {tag}va netns {a}"
    ));
    sh(&format!(
        "ip link add {tag}vo netns {o} type veth peer name {tag}vb netns {b}"
    ));
    for (ns, dev) in [(r, "ur"), (r, "vr"), (o, "uo"), (o, "vo")] {
        in_ns(
            ns,
            &format!("ip link set {tag}{dev} up; ethtool -K {tag}{dev} tx off >/dev/null"),
        );
    }
    for (ns, dev, ip, mac) in [
        (a, "va", format!("10.79.{n}.1"), "02:00:0a:4f:00:01"),
        (b, "vb", format!("10.79.{n}.2"), "02:00:0a:4f:00:02"),
    ] {
        in_ns(
            ns,
            &format!(
                "ip link set {tag}{dev} address {mac} mtu 1400; ip addr add {ip}/24 dev {tag}{dev}; \
                 ip link set {tag}{dev} up; ethtool -K {tag}{dev} tx off >/dev/null"
            ),
        );
    }
    g
}

fn tunnel_options(kind: &str, remote: &str) -> String {
    let _ = kind;
    format!("{{ remote_ip = \"{remote}\", key = \"5000\" }}")
}

/// rvswitch running inside namespace `ns` as one site.
fn rvswitch_site(
    tag: &str,
    site: &str,
    ns: &str,
    kind: &str,
    local: &str,
    remote: &str,
    core: usize,
) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switch.toml");
    let (phy, int) = (format!("{tag}p{site}"), format!("{tag}i{site}"));
    let text = format!(
        "[global]\nrun_dir = \"{}\"\npmd_cores = [{core}]\nlog_level = \"info\"\n\n\
         [[bridge]]\nname = \"{phy}\"\n\n[[bridge.port]]\nname = \"{tag}u{site}\"\ntype = \"afpacket\"\n\n\
         [[bridge]]\nname = \"{int}\"\n\n[[bridge.port]]\nname = \"{tag}v{site}\"\ntype = \"afpacket\"\n\n\
         [[bridge.port]]\nname = \"{tag}t{site}\"\ntype = \"{kind}\"\noptions = {}\n",
        dir.path().display(),
        tunnel_options(kind, remote)
    );
    std::fs::write(&config, text).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", ns, RVSWITCH, "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("daemon.log")).unwrap())
        .spawn()
        .expect("spawn rvswitch");
    let mut d = Daemon {
        child: Some(child),
        dir,
        config,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::os::unix::net::UnixStream::connect(d.socket()).is_err() {
        if let Some(s) = d.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("rvswitch in {ns} exited early with {s}: {}", d.log());
        }
        assert!(
            Instant::now() < deadline,
            "rvswitch in {ns} did not start: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    in_ns(
        ns,
        &format!("ip addr add {local}/24 dev {phy}; ip link set {phy} up"),
    );
    d
}

/// Debian's ovs-vswitchd with the userspace datapath inside namespace `ns`, with a
/// private database and run directory; stopped on drop.
struct OvsSite {
    dir: tempfile::TempDir,
}

impl OvsSite {
    fn vsctl(&self, args: &str) -> String {
        sh(&format!(
            "ovs-vsctl --timeout=30 --db=unix:{}/db.sock {args}",
            self.dir.path().display()
        ))
    }

    fn start(tag: &str, ns: &str, kind: &str, local: &str, remote: &str) -> OvsSite {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let env = format!("OVS_RUNDIR={d} OVS_DBDIR={d} OVS_LOGDIR={d} OVS_SYSCONFDIR={d}");
        sh(&format!(
            "ovsdb-tool create {d}/conf.db /usr/share/openvswitch/vswitch.ovsschema"
        ));
        sh(&format!(
            "{env} ip netns exec {ns} ovsdb-server {d}/conf.db --remote=punix:{d}/db.sock \
             --pidfile={d}/ovsdb-server.pid --unixctl={d}/ovsdb-server.ctl --detach --no-chdir \
             --log-file={d}/ovsdb-server.log"
        ));
        let site = OvsSite { dir };
        site.vsctl("--no-wait init");
        sh(&format!(
            "{env} ip netns exec {ns} ovs-vswitchd unix:{d}/db.sock --pidfile={d}/ovs-vswitchd.pid \
             --unixctl={d}/ovs-vswitchd.ctl --detach --no-chdir --log-file={d}/ovs-vswitchd.log"
        ));
        let (phy, int) = (format!("{tag}po"), format!("{tag}io"));
        site.vsctl(&format!(
            "add-br {phy} -- set bridge {phy} datapath_type=netdev -- add-port {phy} {tag}uo"
        ));
        in_ns(
            ns,
            &format!("ip addr add {local}/24 dev {phy}; ip link set {phy} up"),
        );
        site.vsctl(&format!(
            "add-br {int} -- set bridge {int} datapath_type=netdev -- add-port {int} {tag}vo \
             -- add-port {int} {tag}to -- set interface {tag}to type={kind} \
             options:remote_ip={remote} options:key=5000"
        ));
        site
    }

    fn appctl(&self, cmd: &str) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ovs-appctl -t {}/ovs-vswitchd.ctl {cmd}",
                self.dir.path().display()
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ovs-vswitchd.log")).unwrap_or_default()
    }
}

impl Drop for OvsSite {
    fn drop(&mut self) {
        for p in ["ovs-vswitchd", "ovsdb-server"] {
            let pidfile: PathBuf = self.dir.path().join(format!("{p}.pid"));
            if let Ok(s) = std::fs::read_to_string(&pidfile) {
                if let Ok(pid) = s.trim().parse::<i32>() {
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }
}

fn ping(ns: &str, dst: &str, count: u32) -> (u32, u32) {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "ping",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            "-q",
            dst,
        ])
        .output()
        .unwrap();
    parse_ping(&String::from_utf8_lossy(&out.stdout))
}

/// Pings both ways after a warm-up (ARP on the underlay and in the overlay).
fn ping_both_ways(g: &Namespaces, n: u8, what: &str, diag: &dyn Fn() -> String) {
    let (a, b) = (&g.0[2], &g.0[3]);
    let _ = ping(a, &format!("10.79.{n}.2"), 5);
    let r = ping(a, &format!("10.79.{n}.2"), 10);
    assert_eq!(r, (10, 10), "{what}: a -> b\n{}", diag());
    let r = ping(b, &format!("10.79.{n}.1"), 10);
    assert_eq!(r, (10, 10), "{what}: b -> a\n{}", diag());
}

#[test]
fn rvswitch_to_rvswitch_over_vxlan_geneve_and_gre() {
    let _turn = serial();
    for (i, kind) in ["vxlan", "geneve", "gre"].iter().enumerate() {
        let tag = unique(&format!("r{}", &kind[..1]));
        let n = 10 + i as u8 + (std::process::id() % 40) as u8 * 3;
        let g = topology(&tag, n);
        let (l, r) = (format!("172.28.{n}.1"), format!("172.28.{n}.2"));
        let d1 = rvswitch_site(&tag, "r", &g.0[0], kind, &l, &r, 0);
        let d2 = rvswitch_site(&tag, "o", &g.0[1], kind, &r, &l, 1);
        let diag = || {
            format!(
                "site r flows:\n{}\nsite o flows:\n{}\nneigh r:\n{}\nlog r:\n{}",
                d1.ok(&["dpctl/dump-flows"]),
                d2.ok(&["dpctl/dump-flows"]),
                d1.ok(&["tnl/neigh/show"]),
                d1.log()
            )
        };
        ping_both_ways(&g, n, kind, &diag);
        for d in [&d1, &d2] {
            let flows = d.ok(&["dpctl/dump-flows"]);
            assert!(
                flows.contains("tnl_push(") && flows.contains("tnl_pop("),
                "{kind}: {flows}"
            );
            assert!(flows.contains("tun_id=0x1388"), "{kind}: {flows}");
        }
        drop((d1, d2));
    }
}

#[test]
fn rvswitch_to_open_vswitch_userspace_over_geneve_and_gre() {
    let _turn = serial();
    for (i, kind) in ["geneve", "gre"].iter().enumerate() {
        let tag = unique(&format!("o{}", &kind[..1]));
        let n = 140 + i as u8 + (std::process::id() % 40) as u8 * 2;
        let g = topology(&tag, n);
        let (l, r) = (format!("172.28.{n}.1"), format!("172.28.{n}.2"));
        let d = rvswitch_site(&tag, "r", &g.0[0], kind, &l, &r, 0);
        let ovs = OvsSite::start(&tag, &g.0[1], kind, &r, &l);
        let diag = || {
            format!(
                "rvswitch flows:\n{}\nrvswitch neigh:\n{}\novs flows:\n{}\novs log:\n{}",
                d.ok(&["dpctl/dump-flows"]),
                d.ok(&["tnl/neigh/show"]),
                ovs.appctl("dpctl/dump-flows"),
                ovs.log()
            )
        };
        ping_both_ways(&g, n, kind, &diag);
        let flows = d.ok(&["dpctl/dump-flows"]);
        assert!(
            flows.contains("tnl_push(") && flows.contains("tnl_pop("),
            "{kind}: {flows}"
        );
        assert!(flows.contains("tun_id=0x1388"), "{kind}: {flows}");
        // OVS decapsulated what rvswitch sent, with the key.
        let oflows = ovs.appctl("dpctl/dump-flows");
        assert!(oflows.contains("tnl_pop("), "{kind}: OVS flows: {oflows}");
        assert!(
            oflows.contains("tun_id=0x1388"),
            "{kind}: OVS flows: {oflows}"
        );
        if *kind == "geneve" {
            geneve_option_both_ways(&tag, &g, n, &d, &ovs);
        }
        drop((d, ovs));
    }
}

/// Each side sets a Geneve TLV option (class 0x0102, type 0x01, 4 bytes) on what it
/// sends and accepts from the tunnel only what carries the other side's value: ping works
/// only if both encode and match the option; a wrong value on either side stops it.
fn geneve_option_both_ways(tag: &str, g: &Namespaces, n: u8, d: &Daemon, ovs: &OvsSite) {
    let show = d.ok(&["dpif/show"]);
    assert!(
        show.contains(&format!("{tag}vr 1/")) && show.contains(&format!("{tag}tr 2/")),
        "ofports: {show}"
    );
    let (br, obr) = (format!("{tag}ir"), format!("{tag}io"));
    let ofctl = |args: &str| sh(&format!("ovs-ofctl -O OpenFlow13 {args}"));
    let ovs_sock = format!("unix:{}/{obr}.mgmt", ovs.dir.path().display());
    ofctl(&format!(
        "add-tlv-map {ovs_sock} '{{class=0x0102,type=0x01,len=4}}->tun_metadata0'"
    ));
    let ovs_flows = |send: &str| {
        ofctl(&format!("del-flows {ovs_sock}"));
        ofctl(&format!(
            "add-flow {ovs_sock} 'priority=100,in_port={tag}vo,actions=set_field:{send}->tun_metadata0,output:{tag}to'"
        ));
        ofctl(&format!(
            "add-flow {ovs_sock} 'priority=100,in_port={tag}to,tun_metadata0=0xabcdef01,actions=output:{tag}vo'"
        ));
        ofctl(&format!(
            "add-flow {ovs_sock} 'priority=90,in_port={tag}to,actions=drop'"
        ));
    };
    let rv_flows = |send: &str| {
        d.ok(&["del-flows", &br]);
        d.ok(&[
            "add-flow",
            &br,
            &format!("priority=100,in_port=1,actions=set_field:0x01020101->tun_gnv_opt_hdr,set_field:{send}->tun_gnv_opt_data,output:2"),
        ]);
        d.ok(&[
            "add-flow",
            &br,
            "priority=100,in_port=2,tun_gnv_opt_hdr=0x01020101,tun_gnv_opt_data=0x12345678,actions=output:1",
        ]);
        d.ok(&["add-flow", &br, "priority=90,in_port=2,actions=drop"]);
    };
    ovs_flows("0x12345678");
    rv_flows("0xabcdef01");
    let diag = || {
        format!(
            "rvswitch flows:\n{}\novs flows:\n{}\n{}",
            d.ok(&["dpctl/dump-flows"]),
            ovs.appctl("dpctl/dump-flows"),
            ofctl(&format!("dump-flows {ovs_sock}"))
        )
    };
    ping_both_ways(g, n, "geneve with options", &diag);
    // rvswitch sends the wrong value: OVS drops it.
    rv_flows("0x0badc0de");
    let r = ping(&g.0[2], &format!("10.79.{n}.2"), 3);
    assert_eq!(r.1, 0, "OVS must drop a wrong option value\n{}", diag());
    // OVS sends the wrong value: rvswitch drops it.
    rv_flows("0xabcdef01");
    ovs_flows("0x0badc0de");
    let r = ping(&g.0[3], &format!("10.79.{n}.1"), 3);
    assert_eq!(
        r.1,
        0,
        "rvswitch must drop a wrong option value\n{}",
        diag()
    );
    // And back to matching values.
    ovs_flows("0x12345678");
    let r = ping(&g.0[3], &format!("10.79.{n}.1"), 5);
    assert!(r.1 >= 4, "matching options again: {r:?}\n{}", diag());
}
