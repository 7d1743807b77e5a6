//! Each kind of config error, with the line it must point at.

use super::*;

fn err(text: &str) -> ConfigError {
    Config::parse(text, Some(Path::new("/etc/rvswitch/switch.toml")))
        .expect_err("config must be rejected")
}

fn assert_err(text: &str, line: usize, needle: &str) {
    let e = err(text);
    assert_eq!(e.line(), Some(line), "wrong line for: {e}");
    assert!(
        e.message.contains(needle),
        "message '{}' lacks '{needle}'",
        e.message
    );
    assert!(
        e.to_string()
            .starts_with(&format!("/etc/rvswitch/switch.toml:{line}:")),
        "{e}"
    );
}

const GOOD: &str = r#"
[global]
pmd_cores = [0]
run_dir = "/tmp/rvs-test"
log_level = "debug"
emc_insert_inv_prob = 50
emc_auto_bypass = false
max_flows = 1000
rxq_assign = "roundrobin"
tx_flush_interval_us = 50
pmd_max_sleep_us = 500
pmd_batch_wait_us = 25
afxdp_frames = 131072

[[bridge]]
name = "br0"
fail_mode = "secure"
flows = ["table=0,priority=10,in_port=1,actions=output:2", "priority=0,actions=drop"]
[bridge.mcast_snooping]
enabled = true
flood_reports = true

[[bridge.port]]
name = "p1"
type = "afxdp"
options = { xdp_mode = "native", n_rxq = 2 }
tag = 10

[[bridge.port]]
name = "p2"
type = "dummy"
vlan_mode = "native-untagged"
tag = 20
trunks = [20, 30]

[[bridge]]
name = "br1"
datapath = "kernel"

[[bridge.port]]
name = "vx0"
type = "vxlan"
options = { remote_ip = "192.0.2.1", key = 5 }
"#;

#[test]
fn good_config_is_typed() {
    let c = Config::parse(GOOD, None).unwrap();
    assert_eq!(c.global.pmd_cores, vec![0]);
    assert_eq!(c.global.run_dir, PathBuf::from("/tmp/rvs-test"));
    assert_eq!(c.global.emc_insert_inv_prob, 50);
    assert!(!c.global.emc_auto_bypass);
    assert_eq!(c.global.max_flows, 1000);
    assert_eq!(c.global.rxq_assign, RxqAssign::RoundRobin);
    assert_eq!(c.global.tx_flush_interval_us, 50);
    assert_eq!(c.global.pmd_max_sleep_us, 500);
    assert_eq!(c.global.pmd_batch_wait_us, 25);
    assert_eq!(c.global.afxdp_frames, 131072);
    assert_eq!(c.bridges.len(), 2);
    let br0 = &c.bridges[0];
    assert_eq!(br0.fail_mode, FailMode::Secure);
    assert!(br0.mcast_snooping.enabled && br0.mcast_snooping.flood_reports);
    assert_eq!(br0.flows.len(), 2);
    assert_eq!(
        br0.ports[0].vlan,
        VlanConfig {
            mode: VlanMode::Access,
            tag: Some(10),
            trunks: vec![]
        }
    );
    assert_eq!(
        br0.ports[0].options.get("n_rxq").map(String::as_str),
        Some("2")
    );
    assert_eq!(br0.ports[1].vlan.mode, VlanMode::NativeUntagged);
    assert_eq!(br0.ports[1].vlan.trunks, vec![20, 30]);
    assert_eq!(c.bridges[1].datapath, DatapathType::Kernel);
    assert_eq!(c.bridges[1].ports[0].port_type, PortType::Vxlan);
    assert_eq!(c.find_port("vx0").unwrap().0.name, "br1");
}

#[test]
fn empty_file_gives_defaults() {
    let c = Config::parse("", None).unwrap();
    assert_eq!(c.global, GlobalConfig::default());
    assert!(c.global.emc_auto_bypass, "the EMC trial runs by default");
    assert!(c.bridges.is_empty());
}

#[test]
fn toml_syntax_error_has_line() {
    assert_err(
        "[global]\npmd_cores = [0,,1]\n",
        2,
        "invalid array, expected `]`",
    );
    assert_err("[global]\n\nrun_dir = \"/tmp\n", 3, "");
}

#[test]
fn unknown_key_is_a_typo() {
    assert_err(
        "[global]\nrun_dir = \"/tmp\"\npmd_core = [0]\n",
        3,
        "unknown field `pmd_core`",
    );
    assert_err(
        "[[bridge]]\nname = \"b\"\n\n[[bridge.port]]\nname = \"p\"\ntype = \"dummy\"\nvlan = 3\n",
        7,
        "unknown field `vlan`",
    );
}

#[test]
fn wrong_type_is_reported() {
    assert_err("[global]\n\nmax_flows = \"many\"\n", 3, "integer");
}

#[test]
fn missing_name_is_reported() {
    let e = err("[[bridge]]\ndatapath = \"netdev\"\n");
    assert!(e.message.contains("missing field `name`"), "{e}");
    assert_eq!(e.line(), Some(1));
}

#[test]
fn duplicate_bridge_names() {
    assert_err(
        "[[bridge]]\nname = \"br0\"\n[[bridge]]\nname = \"br0\"\n",
        4,
        "duplicate bridge name 'br0'",
    );
}

#[test]
fn duplicate_port_names_across_bridges() {
    let t = "[[bridge]]\nname = \"b1\"\n[[bridge.port]]\nname = \"p\"\ntype = \"dummy\"\n\
             [[bridge]]\nname = \"b2\"\n[[bridge.port]]\nname = \"p\"\ntype = \"dummy\"\n";
    assert_err(t, 9, "duplicate port name 'p'");
}

#[test]
fn port_named_like_a_bridge() {
    let t = "[[bridge]]\nname = \"b1\"\n[[bridge]]\nname = \"b2\"\n[[bridge.port]]\nname = \"b1\"\ntype = \"dummy\"\n";
    assert_err(t, 6, "already used by a bridge");
}

#[test]
fn tag_out_of_range() {
    let t =
        "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"dummy\"\ntag = 4095\n";
    assert_err(t, 6, "VLAN 4095 is out of range");
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"dummy\"\ntag = 0\n";
    assert_err(t, 6, "expected 1..=4094");
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"dummy\"\nvlan_mode = \"trunk\"\ntrunks = [1,\n 5000]\n";
    assert_err(t, 8, "VLAN 5000");
}

#[test]
fn vlan_mode_consistency() {
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"dummy\"\nvlan_mode = \"access\"\n";
    assert_err(t, 6, "needs a tag");
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"dummy\"\nvlan_mode = \"trunk\"\ntag = 3\n";
    assert_err(t, 7, "a tag needs vlan_mode");
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"dummy\"\nvlan_mode = \"sideways\"\n";
    assert_err(t, 6, "unknown vlan_mode 'sideways'");
}

#[test]
fn unknown_port_type() {
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"afxpd\"\n";
    assert_err(
        t,
        5,
        "unknown port type 'afxpd' (expected one of: afxdp, afpacket",
    );
}

#[test]
fn unknown_and_bad_options() {
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"afxdp\"\noptions = { xdp_mode = \"turbo\" }\n";
    assert_err(
        t,
        6,
        "expected best, generic, native or native-with-zerocopy",
    );
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"afxdp\"\n[bridge.port.options]\nn_rxq = 1\nremote_ip = \"1.2.3.4\"\n";
    assert_err(t, 8, "unknown option 'remote_ip' for a afxdp port");
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"t\"\ntype = \"vxlan\"\n";
    assert_err(t, 4, "needs option remote_ip");
    for bad in ["1000", "32", "524288", "deep"] {
        let t = format!(
            "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"afxdp\"\noptions = {{ n_rxq_desc = \"{bad}\" }}\n"
        );
        assert_err(
            &t,
            6,
            &format!("option n_rxq_desc = \"{bad}\": expected a power of two from 64 to 262144"),
        );
    }
    for bad in ["3841", "-1", "mtu"] {
        let t = format!(
            "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"afxdp\"\noptions = {{ tx_copy_max = \"{bad}\" }}\n"
        );
        assert_err(
            &t,
            6,
            &format!("option tx_copy_max = \"{bad}\": expected a length in bytes from 0 to 3840"),
        );
    }
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"afxdp\"\noptions = { tx_copy_max = 1514 }\n";
    Config::parse(t, None).expect("tx_copy_max up to a frame is a valid option");
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"afxdp\"\noptions = { n_rxq_desc = 131072 }\n";
    let c = Config::parse(t, None).expect("a deep ring is a valid option");
    assert_eq!(
        c.bridges[0].ports[0]
            .options
            .get("n_rxq_desc")
            .map(String::as_str),
        Some("131072")
    );
}

#[test]
fn interface_name_too_long() {
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"a-very-long-ifname\"\ntype = \"afxdp\"\n";
    assert_err(t, 4, "at most 15");
}

#[test]
fn afxdp_on_kernel_datapath() {
    let t = "[[bridge]]\nname = \"b\"\ndatapath = \"kernel\"\n[[bridge.port]]\nname = \"p\"\ntype = \"afxdp\"\n";
    assert_err(t, 6, "needs datapath = \"netdev\"");
}

#[test]
fn bad_flow_text() {
    let t = "[[bridge]]\nname = \"b\"\nflows = [\n  \"priority=1,actions=NORMAL\",\n  \"priority=1,in_prot=1,actions=drop\",\n]\n";
    assert_err(t, 5, "unknown field or keyword 'in_prot'");
    let t = "[[bridge]]\nname = \"b\"\nflows = [\"priority=1\"]\n";
    assert_err(t, 3, "must specify an action");
    let t = "[[bridge]]\nname = \"b\"\nflows = [\"table=300,actions=drop\"]\n";
    assert_err(t, 3, "table=300");
}

#[test]
fn bad_global_values() {
    assert!(Config::parse("[global]\npmd_cores = []\n", None)
        .unwrap()
        .global
        .pmd_cores
        .is_empty());
    assert_err(
        "[global]\npmd_cores = [0, 9999]\n",
        2,
        "9999 is not a core id",
    );
    assert_err(
        "[global]\nmax_flows = 0\n",
        2,
        "max_flows = 0 is out of range",
    );
    assert_err(
        "[global]\nafxdp_frames = 1024\n",
        2,
        "afxdp_frames = 1024 is out of range",
    );
    assert_err(
        "[global]\nafxdp_frames = 5000\n",
        2,
        "afxdp_frames = 5000 is not a multiple of 512",
    );
    assert_err(
        "[global]\npmd_max_sleep_us = 10001\n",
        2,
        "pmd_max_sleep_us = 10001 is out of range",
    );
    assert_err("[global]\n\nemc_auto_bypass = 1\n", 3, "expected a boolean");
    assert_err(
        "[global]\npmd_batch_wait_us = 1001\n",
        2,
        "pmd_batch_wait_us = 1001 is out of range",
    );
    assert_err(
        "[global]\n\ntx_flush_interval_us = 2000000\n",
        3,
        "tx_flush_interval_us = 2000000 is out of range",
    );
    assert_err(
        "[global]\nrxq_assign = \"random\"\n",
        2,
        "unknown variant `random`",
    );
    assert_err("[global]\nlog_level = \"[[[\"\n", 2, "not a log filter");
}

#[test]
fn runtime_port_args() {
    let p = parse_port_args(
        "p",
        &["type=dummy".into(), "tag=5".into(), "n_rxq=2".into()],
        DatapathType::Netdev,
    )
    .unwrap();
    assert_eq!(p.port_type, PortType::Dummy);
    assert_eq!(p.vlan.tag, Some(5));
    assert_eq!(p.options.get("n_rxq").map(String::as_str), Some("2"));
    let e = parse_port_args(
        "p",
        &["type=dummy".into(), "tag=9999".into()],
        DatapathType::Netdev,
    )
    .unwrap_err();
    assert!(e.message.contains("tag=9999"), "{e}");
    let e = parse_port_args("p", &["bogus".into()], DatapathType::Netdev).unwrap_err();
    assert!(e.message.contains("expected key=value"), "{e}");
    let e = parse_port_args(
        "p",
        &["type=dummy".into(), "speed=9".into()],
        DatapathType::Netdev,
    )
    .unwrap_err();
    assert!(e.message.contains("unknown option 'speed'"), "{e}");
}

#[test]
fn flow_text_checks() {
    assert!(check_flow_text(
        "table=0,priority=10,ip,nw_dst=10.0.0.1,actions=output:1,NORMAL",
        true
    )
    .is_ok());
    assert!(check_flow_text("in_port=1", false).is_ok());
    assert!(check_flow_text("", false).is_ok());
    assert!(check_flow_text("in_port=1,actions=drop", false).is_err());
    assert!(check_flow_text("actions=", true).is_err());
}

#[test]
fn tunnel_options() {
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"t\"\ntype = \"geneve\"\noptions = { remote_ip = \"flow\", key = \"flow\", df_default = false }\n";
    let c = Config::parse(t, None).unwrap();
    assert_eq!(
        c.bridges[0].ports[0]
            .options
            .get("df_default")
            .map(String::as_str),
        Some("false")
    );
    let t = "[[bridge]]\nname = \"b\"\ndatapath = \"kernel\"\n[[bridge.port]]\nname = \"t\"\ntype = \"vxlan\"\n\n[bridge.port.options]\nremote_ip = \"192.0.2.7\"\nvport = \"bogus\"\n";
    assert_err(t, 10, "expected netdev or compat");
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"t\"\ntype = \"vxlan\"\n\n[bridge.port.options]\nremote_ip = \"192.0.2.7\"\nvport = \"compat\"\n";
    assert_err(t, 9, "only the kernel datapath has vports");
    let t = "[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"t\"\ntype = \"gre\"\noptions = { remote_ip = \"300.1.2.3\" }\n";
    assert_err(t, 6, "an IPv4 or IPv6 address");
}
