//! The switch on the real userspace datapath and translator, over dummy ports (frames
//! injected and captured in memory; no root needed). No PMD threads: the non-PMD thread
//! forwards, so the tests don't busy-poll a core.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::state::RuntimeChange;
use super::*;
use crate::config::Config;
use crate::netdev::dummy::DummyNetdev;

/// Bridge names unique to one test in this process (their local ports are real taps).
fn names(t: &str) -> (String, String) {
    let id = std::process::id() % 100_000;
    (format!("u{id}{t}0"), format!("u{id}{t}1"))
}

fn config(dir: &std::path::Path, body: &str, names: &(String, String)) -> Config {
    let body = body.replace("tbr0", &names.0).replace("tbr1", &names.1);
    let text = format!(
        "[global]\npmd_cores = []\nrun_dir = \"{}\"\n\n{body}",
        dir.display()
    );
    Config::parse(&text, None).unwrap()
}

const TWO_PORTS: &str = r#"
[[bridge]]
name = "tbr0"
[[bridge.port]]
name = "d1"
type = "dummy"
[[bridge.port]]
name = "d2"
type = "dummy"
"#;

/// An Ethernet/IPv4/UDP frame from `src` to `dst`.
fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let ip = [
        0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, b'h', b'e', b'l', b'o']);
    f
}

/// The IPv4 frames among `frames` (the bridge's local tap port adds IPv6 chatter).
fn ipv4(frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    frames
        .into_iter()
        .filter(|f| f.len() > 14 && f[12..14] == [0x08, 0x00])
        .collect()
}

/// A switch on `TWO_PORTS` with bridge names from `tag`, and its run directory (kept
/// alive by the caller).
fn two_port_switch(tag: &str) -> ((String, String), tempfile::TempDir, Arc<Switch>) {
    let n = names(tag);
    let dir = tempfile::tempdir().unwrap();
    let sw = Switch::start(config(dir.path(), TWO_PORTS, &n), false).unwrap();
    (n, dir, sw)
}

/// The dummy ports d1 and d2 of the switch's userspace datapath.
fn dummies(sw: &Switch) -> (Arc<DummyNetdev>, Arc<DummyNetdev>) {
    let dp = sw.netdev_datapath().expect("netdev datapath opened");
    (dp.dummy_port("d1").unwrap(), dp.dummy_port("d2").unwrap())
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

#[test]
fn standalone_bridge_floods_learns_and_forwards() {
    let (n, _dir, sw) = two_port_switch("f");
    let (d1, d2) = dummies(&sw);
    // Unknown destination: flooded to d2 (and the local port, if there is one).
    d1.inject(0, &frame(MAC_B, MAC_A)).unwrap();
    let got = wait_for("flood to d2", || {
        Some(ipv4(d2.take_sent())).filter(|v| !v.is_empty())
    });
    assert_eq!(got, vec![frame(MAC_B, MAC_A)]);
    let fdb = sw.ofproto(&n.0).unwrap().fdb_show();
    assert!(fdb.contains("02:00:00:00:00:0a"), "A not learned: {fdb}");
    // Reply from B goes only to d1 now that A is known.
    d2.inject(0, &frame(MAC_A, MAC_B)).unwrap();
    let got = wait_for("unicast to d1", || {
        Some(ipv4(d1.take_sent())).filter(|v| !v.is_empty())
    });
    assert_eq!(got, vec![frame(MAC_A, MAC_B)]);
    assert!(ipv4(d2.take_sent()).is_empty());
    sw.shutdown();
    assert!(
        sw.netdev_datapath().is_none(),
        "datapath not destroyed at shutdown"
    );
}

#[test]
fn runtime_changes_are_journaled_and_replayed() {
    let n = names("j");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), TWO_PORTS, &n);
    let sw = Switch::start(cfg.clone(), true).unwrap();
    sw.change(RuntimeChange::AddBridge {
        bridge: n.1.clone(),
        datapath: "netdev".into(),
    })
    .unwrap();
    sw.change(RuntimeChange::AddPort {
        bridge: n.1.clone(),
        port: "d3".into(),
        args: vec!["type=dummy".into(), "tag=7".into()],
    })
    .unwrap();
    sw.change(RuntimeChange::DelPort {
        bridge: n.0.clone(),
        port: "d2".into(),
    })
    .unwrap();
    sw.change(RuntimeChange::AddFlow {
        bridge: n.0.clone(),
        flow: "priority=100,in_port=1,actions=drop".into(),
    })
    .unwrap();
    // Refused changes are not journaled.
    assert!(sw
        .change(RuntimeChange::AddPort {
            bridge: n.1.clone(),
            port: "d1".into(),
            args: vec!["type=dummy".into()]
        })
        .is_err());
    assert!(sw
        .change(RuntimeChange::AddFlow {
            bridge: n.0.clone(),
            flow: "priority=1,actions=bogus".into()
        })
        .is_err());
    sw.shutdown();
    drop(sw);

    let sw = Switch::start(cfg, true).unwrap();
    let c = sw.config();
    let names: Vec<&str> = c.bridges.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, vec![n.0.as_str(), n.1.as_str()]);
    assert_eq!(
        c.bridges[0]
            .ports
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        vec!["d1"]
    );
    assert_eq!(c.bridges[1].ports[0].vlan.tag, Some(7));
    let flows = sw.ofproto(&n.0).unwrap().dump_flows();
    assert!(
        flows.contains("priority=100,in_port=1") && flows.contains("actions=drop"),
        "{flows}"
    );
    sw.shutdown();
}

#[test]
fn failed_port_is_reported_and_not_kept() {
    let (n, _dir, sw) = two_port_switch("p");
    let e = sw
        .change(RuntimeChange::AddPort {
            bridge: n.0.clone(),
            port: "nosuchdev9".into(),
            args: vec!["type=afpacket".into()],
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("nosuchdev9"), "{e}");
    assert!(sw.config().find_port("nosuchdev9").is_none());
    // The rest still works.
    assert!(sw
        .change(RuntimeChange::DelPort {
            bridge: n.0.clone(),
            port: "d1".into()
        })
        .is_ok());
    let e = sw
        .change(RuntimeChange::DelPort {
            bridge: n.0.clone(),
            port: "d1".into(),
        })
        .unwrap_err();
    assert!(e.to_string().contains("has no port named d1"), "{e}");
    sw.shutdown();
}

#[test]
fn reconfigure_moves_port_and_applies_static_flows() {
    let (n, dir, sw) = two_port_switch("r");
    let moved = config(
        dir.path(),
        r#"
[[bridge]]
name = "tbr0"
fail_mode = "secure"
flows = ["priority=5,in_port=1,actions=output:2"]
[[bridge.port]]
name = "d1"
type = "dummy"
[[bridge]]
name = "tbr1"
[[bridge.port]]
name = "d2"
type = "dummy"
"#,
        &n,
    );
    sw.reconfigure(moved.clone()).unwrap();
    assert_eq!(sw.config(), moved);
    let flows = sw.ofproto(&n.0).unwrap().dump_flows();
    assert!(
        flows.contains("priority=5,in_port=1") && flows.contains("actions=output:2"),
        "{flows}"
    );
    let ports: Vec<String> = sw
        .ofproto(&n.1)
        .unwrap()
        .ports()
        .iter()
        .map(|p| p.name.clone())
        .collect();
    assert!(ports.contains(&"d2".to_string()), "{ports:?}");
    // Back to nothing: every bridge and the datapath go away.
    sw.reconfigure(config(dir.path(), "", &n)).unwrap();
    assert!(sw.netdev_datapath().is_none());
    assert!(sw.ofproto(&n.0).is_err());
}

#[test]
fn bridge_and_port_settings_reach_the_translator() {
    let n = names("m");
    let dir = tempfile::tempdir().unwrap();
    let body = r#"
[[bridge]]
name = "tbr0"
fail_mode = "secure"
[bridge.mcast_snooping]
enabled = true
flood_unregistered = false
flood_reports = true
aging_time = 100
[[bridge.port]]
name = "m1"
type = "dummy"
vlan_mode = "native-tagged"
tag = 30
trunks = [30, 40]
"#;
    let sw = Switch::start(config(dir.path(), body, &n), false).unwrap();
    let of = sw.ofproto(&n.0).unwrap();
    let c = of.config();
    assert_eq!(c.fail_mode, crate::ofproto::FailMode::Secure);
    assert!(c.mcast.enabled && c.mcast.disable_flood_unregistered);
    assert_eq!(c.mcast.aging, Duration::from_secs(100));
    let ports = of.ports();
    let p = ports.by_name("m1").unwrap();
    assert_eq!(p.config.vlan_mode, crate::ofproto::VlanMode::NativeTagged);
    assert_eq!(
        (p.config.tag, p.config.trunks.clone()),
        (Some(30), vec![30, 40])
    );
    assert!(p.config.mcast_flood_reports);
    // Changing bridge settings in place keeps the ports.
    let relaxed = body
        .replace("fail_mode = \"secure\"", "fail_mode = \"standalone\"")
        .replace("flood_reports = true", "flood_reports = false");
    sw.reconfigure(config(dir.path(), &relaxed, &n)).unwrap();
    assert_eq!(of.config().fail_mode, crate::ofproto::FailMode::Standalone);
    assert!(!of.ports().by_name("m1").unwrap().config.mcast_flood_reports);
    sw.shutdown();
}

#[test]
fn dpctl_dump_flows_covers_the_datapaths_the_switch_has() {
    let (_n, _dir, sw) = two_port_switch("k");
    let (d1, d2) = dummies(&sw);
    d1.inject(0, &frame(MAC_B, MAC_A)).unwrap();
    wait_for("flood to d2", || {
        Some(ipv4(d2.take_sent())).filter(|v| !v.is_empty())
    });
    let all = wait_for("a megaflow", || {
        super::dpctl::dump_flows(&sw, None)
            .ok()
            .filter(|t| t.contains("in_port("))
    });
    assert!(
        all.contains("packets:") && all.contains("actions:"),
        "{all}"
    );
    // One datapath: no per-datapath header, and naming it gives the same flows.
    assert!(!all.contains("netdev@"), "{all}");
    let named = super::dpctl::dump_flows(&sw, Some("netdev")).unwrap();
    assert!(named.contains("in_port("), "{named}");
    let err = super::dpctl::dump_flows(&sw, Some("kernel")).unwrap_err();
    assert!(
        err.contains("no datapath 'kernel'") && err.contains("netdev@ovs-netdev"),
        "{err}"
    );
    sw.shutdown();
    let err = super::dpctl::dump_flows(&sw, None).unwrap_err();
    assert!(err.contains("no datapaths"), "{err}");
}
