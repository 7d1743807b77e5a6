//! Runtime changes made through the control socket survive a restart (state.json), and
//! bridge/port/flow commands work and fail as documented. Dummy ports; the bridges' local
//! ports are real tap devices, so this needs root.

mod common;

use common::*;

#[test]
fn runtime_changes_survive_restart() {
    let br = unique("sb");
    let d = Daemon::start("");
    d.ok(&["add-br", &br]);
    d.ok(&["add-port", &br, "sd1", "type=dummy"]);
    d.ok(&["add-port", &br, "sd2", "type=dummy", "tag=12"]);
    d.ok(&["add-port", &br, "sd3", "type=dummy"]);
    d.ok(&["del-port", &br, "sd3"]);
    d.ok(&[
        "add-flow",
        &br,
        "table=0,priority=200,in_port=1,actions=output:2",
    ]);
    d.ok(&[
        "add-flow",
        &br,
        "table=0,priority=100,dl_type=0x0806,actions=drop",
    ]);
    d.ok(&["del-flows", &br, "dl_type=0x0806"]);
    assert!(link_exists(&br), "bridge local port (tap) {br} missing");
    let state = d.dir.path().join("state.json");
    assert!(state.exists());

    let dir = d.stop_keep_dir();
    assert!(!link_exists(&br), "tap {br} left behind after SIGTERM");
    let d = Daemon::start_in(dir, "");
    let show = d.ok(&["dpif/show"]);
    assert!(show.contains(&format!("  {br}:")), "{show}");
    assert!(show.contains("sd1 1/") && show.contains("sd2 2/"), "{show}");
    assert!(!show.contains("sd3"), "{show}");
    let flows = d.ok(&["dump-flows", &br]);
    assert!(
        flows.contains("priority=200,in_port=1") && flows.contains("actions=output:2"),
        "{flows}"
    );
    assert!(
        !flows.contains("0x0806") && !flows.contains("arp"),
        "deleted flow came back: {flows}"
    );
    let log = d.log();
    assert!(log.contains("replayed 8 runtime change(s)"), "{log}");
}

#[test]
fn bridge_commands_report_problems() {
    let br = unique("sc");
    let d = Daemon::start("");
    d.ok(&["add-br", &br]);
    let e = d.fails(&["add-br", &br]);
    assert!(e.contains("already exists"), "{e}");
    let e = d.fails(&["add-port", &br, "p", "type=warp"]);
    assert!(e.contains("unknown port type 'warp'"), "{e}");
    let e = d.fails(&["add-port", &br, "p", "type=dummy", "tag=5000"]);
    assert!(e.contains("tag=5000"), "{e}");
    let e = d.fails(&["add-port", &br, "nosuchif77", "type=afxdp"]);
    assert!(e.contains("nosuchif77"), "{e}");
    let e = d.fails(&["add-flow", &br, "priority=1,actions=frobnicate"]);
    assert!(e.contains("frobnicate"), "{e}");
    let e = d.fails(&["del-flows", &br, "in_port=1,actions=drop"]);
    assert!(e.contains("actions"), "{e}");
    let e = d.fails(&["ofproto/trace", &br, "in_port=1,bogus=3"]);
    assert!(e.contains("bogus"), "{e}");
    let trace = d.ok(&[
        "ofproto/trace",
        &br,
        "in_port=LOCAL,dl_dst=ff:ff:ff:ff:ff:ff",
    ]);
    assert!(!trace.is_empty());
    let e = d.fails(&["fdb/show", "nobr"]);
    assert!(e.contains("no bridge named nobr"), "{e}");
    assert!(d.ok(&["mdb/show", &br]).len() < 10_000);
    assert!(d.ok(&["pmd-rxq-show"]).contains("pmd thread"));
    d.ok(&["pmd-stats-clear"]);
    d.ok(&["del-br", &br]);
    let e = d.fails(&["pmd-stats-show"]);
    assert!(e.contains("no userspace datapath"), "{e}");
    assert!(!link_exists(&br));
}
