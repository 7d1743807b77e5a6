//! Reloading switch.toml into the running daemon, by SIGHUP and by `rvswitch-appctl
//! reload`: what changed in the file is applied, nothing else is touched, runtime changes
//! (state.json) stay on top, a bad file changes nothing and says where it is wrong, and
//! `[global]` changes are reported as needing a restart. Dummy ports; the bridges' local
//! ports are real tap devices, so this needs root.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Replaces everything after the `[global]` header the fixture wrote.
fn rewrite_body(d: &Daemon, body: &str) {
    let text = std::fs::read_to_string(&d.config).unwrap();
    let global_end = text.find("\n\n").expect("the fixture's [global] block") + 2;
    std::fs::write(&d.config, format!("{}{body}", &text[..global_end])).unwrap();
}

fn bridge(name: &str, ports: &[&str]) -> String {
    let mut s = format!("[[bridge]]\nname = \"{name}\"\ndatapath = \"netdev\"\n");
    for p in ports {
        s += &format!("\n[[bridge.port]]\nname = \"{p}\"\ntype = \"dummy\"\n");
    }
    s + "\n"
}

/// The `name N/...` entry of a port in dpif/show, i.e. its datapath port number.
fn port_number(show: &str, port: &str) -> Option<String> {
    show.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[0] == port)
        .map(|w| w[1].split('/').next().unwrap().to_string())
}

/// Bridges and ports with their numbers, without the counters (which tap traffic from
/// the host moves at any time).
fn layout(show: &str) -> Vec<String> {
    show.lines()
        .skip(1)
        .map(|l| l.split(" rx:").next().unwrap().to_string())
        .collect()
}

fn wait_until(d: &Daemon, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let show = d.ok(&["dpif/show"]);
        if ok(&show) {
            return show;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what} did not happen after SIGHUP:\n{show}\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_and_reload_apply_the_file_and_keep_runtime_changes() {
    let (b0, b1) = (unique("rl"), unique("rm"));
    let d = Daemon::start(&bridge(&b0, &["rp1", "rp2"]));
    // Runtime changes: one port added, one of the file's ports deleted.
    d.ok(&["add-port", &b0, "rp9", "type=dummy"]);
    d.ok(&["del-port", &b0, "rp2"]);
    let show = d.ok(&["dpif/show"]);
    let rp1 = port_number(&show, "rp1").expect("rp1 in dpif/show");
    let rp9 = port_number(&show, "rp9").expect("rp9 in dpif/show");

    // The file gains a port and a bridge; SIGHUP.
    rewrite_body(
        &d,
        &(bridge(&b0, &["rp1", "rp2", "rp3"]) + &bridge(&b1, &["rq1"])),
    );
    let pid = d.child.as_ref().unwrap().id() as i32;
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let show = wait_until(&d, "rp3 and the new bridge", |s| {
        s.contains("rp3") && s.contains("rq1")
    });
    assert_eq!(
        port_number(&show, "rp1"),
        Some(rp1),
        "rp1 untouched:\n{show}"
    );
    assert_eq!(
        port_number(&show, "rp9"),
        Some(rp9),
        "runtime port kept:\n{show}"
    );
    assert!(
        port_number(&show, "rp2").is_none(),
        "runtime del-port kept:\n{show}"
    );
    assert!(d.log().contains("configuration reloaded"), "{}", d.log());

    // The same through appctl, with the reply listing exactly what changed.
    rewrite_body(
        &d,
        &(bridge(&b0, &["rp1", "rp2", "rp3", "rp4"]) + &bridge(&b1, &[])),
    );
    let reply = d.ok(&["reload"]);
    assert!(reply.contains(&format!("add port rp4 to {b0}")), "{reply}");
    assert!(
        reply.contains(&format!("remove port rq1 from {b1}")),
        "{reply}"
    );
    assert!(reply.contains("2 change(s)"), "{reply}");
    assert!(!reply.contains("rp1"), "{reply}");
    let reply = d.ok(&["reload"]);
    assert!(reply.contains("nothing changed"), "{reply}");

    // A broken file: an error naming file and line, and nothing changes.
    let before = layout(&d.ok(&["dpif/show"]));
    rewrite_body(&d, &format!("{}tag = 5000\n", bridge(&b0, &["rp1"])));
    let err = d.fails(&["reload"]);
    let file_line = format!("{}:", d.config.display());
    assert!(
        err.contains(&file_line) && err.contains("nothing changed"),
        "{err}"
    );
    assert_eq!(layout(&d.ok(&["dpif/show"])), before);

    // [global]: the EMC, tx flush and PMD sleep settings change live, the others are
    // reported.
    let text = std::fs::read_to_string(&d.config).unwrap();
    let text = text
        .replace(
            "pmd_cores = [0]",
            "pmd_cores = [1]\nemc_insert_inv_prob = 7\nemc_auto_bypass = false\n\
             tx_flush_interval_us = 40\npmd_max_sleep_us = 2000",
        )
        .replace("tag = 5000\n", "");
    std::fs::write(&d.config, text).unwrap();
    let reply = d.ok(&["reload"]);
    assert!(
        reply.contains("not applied until restart: [global] pmd_cores\n"),
        "{reply}"
    );
    assert!(
        reply.contains("applied: [global] emc_insert_inv_prob = 7")
            && reply.contains("applied: [global] emc_auto_bypass = false")
            && reply.contains("applied: [global] tx_flush_interval_us = 40")
            && reply.contains("applied: [global] pmd_max_sleep_us = 2000"),
        "{reply}"
    );
    // The idle PMD now sleeps between polls.
    std::thread::sleep(Duration::from_millis(200));
    let stats = d.ok(&["pmd-stats-show"]);
    let pmd = &stats[stats.find("pmd thread").expect("a pmd thread")..];
    assert!(pmd.contains("sleep iterations:"), "{stats}");
    let reply = d.ok(&["reload"]);
    assert!(
        !reply.contains("applied:") && reply.contains("[global] pmd_cores"),
        "applied settings are not applied again: {reply}"
    );
    assert!(d.ok(&["pmd-stats-show"]).contains("core_id 0"));
    // And back to busy polling: no sleep after the change has reached the PMD.
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        text.replace(
            "pmd_max_sleep_us = 2000",
            "pmd_max_sleep_us = 0\npmd_batch_wait_us = 0",
        ),
    )
    .unwrap();
    let reply = d.ok(&["reload"]);
    assert!(
        reply.contains("applied: [global] pmd_max_sleep_us = 0")
            && reply.contains("applied: [global] pmd_batch_wait_us = 0"),
        "{reply}"
    );
    std::thread::sleep(Duration::from_millis(50));
    d.ok(&["pmd-stats-clear"]);
    std::thread::sleep(Duration::from_millis(200));
    let stats = d.ok(&["pmd-stats-show"]);
    let pmd = &stats[stats.find("pmd thread").expect("a pmd thread")..];
    assert!(!pmd.contains("sleep iterations:"), "{stats}");
}

#[test]
fn a_runtime_change_the_new_file_contradicts_is_dropped_and_reported() {
    let b0 = unique("rd");
    let d = Daemon::start(&bridge(&b0, &["rd1"]));
    d.ok(&["add-port", &b0, "rd9", "type=dummy"]);
    // The new file has no such bridge: the runtime add-port can't apply any more.
    rewrite_body(&d, "");
    let reply = d.ok(&["reload"]);
    assert!(reply.contains(&format!("remove bridge {b0}")), "{reply}");
    assert!(
        reply.contains("dropped runtime change") && reply.contains("rd9"),
        "{reply}"
    );
    let state = std::fs::read_to_string(d.dir.path().join("state.json")).unwrap();
    assert!(!state.contains("rd9"), "dropped from the journal: {state}");
}

#[test]
fn the_log_filter_changes_at_run_time() {
    let d = Daemon::start("");
    assert_eq!(d.ok(&["vlog/list"]), "info\n");
    assert!(d
        .ok(&["vlog/set", "rvswitch=debug"])
        .contains("rvswitch=debug"));
    assert_eq!(d.ok(&["vlog/list"]), "rvswitch=debug\n");
    let err = d.fails(&["vlog/set", "rvswitch=loud"]);
    assert!(err.contains("invalid log filter"), "{err}");
    assert_eq!(
        d.ok(&["vlog/list"]),
        "rvswitch=debug\n",
        "a bad filter changes nothing"
    );
    // A log_level in the reloaded file is applied too.
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        text.replace("log_level = \"info\"", "log_level = \"warn\""),
    )
    .unwrap();
    let reply = d.ok(&["reload"]);
    assert!(
        reply.contains("applied: [global] log_level = warn"),
        "{reply}"
    );
    assert!(!reply.contains("until restart"), "{reply}");
    assert_eq!(d.ok(&["vlog/list"]), "warn\n");
    assert!(
        d.log().contains("log filter is now 'rvswitch=debug'"),
        "{}",
        d.log()
    );
}
