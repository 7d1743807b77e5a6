//! The daemon's control plane without any bridge: startup, the control socket protocol
//! (with our client and with Debian's ovs-appctl), error handling, and clean shutdown.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn version_and_list_commands() {
    let d = Daemon::start("");
    let v = d.ok(&["version"]);
    assert!(
        v.contains(&format!("rvswitch {}", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    let list = d.ok(&["list-commands"]);
    for c in [
        "add-br",
        "del-br",
        "add-port",
        "del-port",
        "dpif/show",
        "exit",
        "list-commands",
        "version",
    ] {
        assert!(list.contains(c), "list-commands lacks {c}: {list}");
    }
}

#[test]
fn socket_is_private() {
    let d = Daemon::start("");
    let mode = std::fs::metadata(d.socket()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn unknown_command_and_bad_args_are_errors_not_crashes() {
    let d = Daemon::start("");
    let e = d.fails(&["no-such-command"]);
    assert!(
        e.contains("\"no-such-command\" is not a valid command"),
        "{e}"
    );
    let e = d.fails(&["del-br"]);
    assert!(
        e.contains("requires at least 1") && e.contains("usage: del-br BR"),
        "{e}"
    );
    let e = d.fails(&["del-br", "a", "b"]);
    assert!(e.contains("at most 1"), "{e}");
    let e = d.fails(&["del-br", "nosuchbr"]);
    assert!(e.contains("no bridge named nosuchbr"), "{e}");
    let e = d.fails(&["add-br", "x", "datapath=warp"]);
    assert!(e.contains("unknown datapath 'warp'"), "{e}");
    let e = d.fails(&["add-port", "nosuchbr", "p0", "type=dummy"]);
    assert!(e.contains("no bridge named nosuchbr"), "{e}");
    // Still alive and answering.
    assert!(d.ok(&["version"]).contains("rvswitch"));
}

#[test]
fn malformed_json_gets_an_error_reply_and_the_daemon_survives() {
    let d = Daemon::start("");
    let mut c = UnixStream::connect(d.socket()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"{\"id\":1,\"method\":[}").unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("malformed JSON"),
        "{reply}"
    );
    assert!(v["result"].is_null());
    // A well-formed request with a non-string param.
    let mut c = UnixStream::connect(d.socket()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(br#"{"id":5,"method":"version","params":[42]}"#)
        .unwrap();
    let mut it = serde_json::Deserializer::from_reader(&c).into_iter::<serde_json::Value>();
    let v = it.next().unwrap().unwrap();
    assert_eq!(v["id"], 5);
    assert!(
        v["error"].as_str().unwrap().contains("params[0] is 42"),
        "{v}"
    );
    // A client that connects and closes without a word.
    drop(UnixStream::connect(d.socket()).unwrap());
    assert!(d.ok(&["version"]).contains("rvswitch"));
}

#[test]
fn debian_ovs_appctl_talks_to_our_socket() {
    let d = Daemon::start("");
    let out = Command::new("ovs-appctl")
        .arg("-t")
        .arg(d.socket())
        .arg("version")
        .output()
        .expect("ovs-appctl (openvswitch-common) must be installed");
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rvswitch"),
        "{out:?}"
    );
    let out = Command::new("ovs-appctl")
        .arg("-t")
        .arg(d.socket())
        .args(["del-br", "nosuchbr"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no bridge named nosuchbr") && err.contains("server returned an error"),
        "{err}"
    );
}

#[test]
fn bad_config_exits_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[global]\npmd_cores = [0]\n\n[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\ntype = \"dummy\"\ntag = 5000\n",
    )
    .unwrap();
    let out = Command::new(RVSWITCH)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:9:7:", cfg.display())), "{err}");
    assert!(err.contains("VLAN 5000 is out of range"), "{err}");
    let out = Command::new(RVSWITCH)
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn sigterm_and_exit_command_shut_down_cleanly() {
    let mut d = Daemon::start("");
    let sock = d.socket();
    let status = d.terminate();
    assert!(status.success(), "{status}: {}", d.log());
    assert!(!sock.exists(), "socket left behind");
    assert!(d.log().contains("shutting down (SIGTERM)"), "{}", d.log());

    let mut d = Daemon::start("");
    let sock = d.socket();
    d.ok(&["exit"]);
    let status = d.wait_exit();
    assert!(status.success(), "{status}");
    assert!(!sock.exists(), "socket left behind");
}

#[test]
fn second_daemon_on_same_run_dir_is_refused() {
    let d = Daemon::start("");
    let out = Command::new(RVSWITCH)
        .arg("--config")
        .arg(&d.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another rvswitch"),
        "{out:?}"
    );
    assert!(d.ok(&["version"]).contains("rvswitch"));
}

#[test]
fn appctl_without_daemon_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(APPCTL)
        .env("RVSWITCH_RUN_DIR", dir.path())
        .arg("version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rvswitch.ctl") && err.contains("is rvswitch running"),
        "{err}"
    );
}

#[test]
fn version_flags() {
    for bin in [RVSWITCH, APPCTL] {
        let out = Command::new(bin).arg("--version").output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{out:?}"
        );
    }
    let out = Command::new(RVSWITCH)
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// Thread ids and names of a process.
fn threads(pid: u32) -> Vec<(String, String)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| {
            let tid = e.unwrap().file_name().to_string_lossy().into_owned();
            let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                .unwrap_or_default()
                .trim()
                .to_string();
            (tid, comm)
        })
        .collect()
}

/// `None` when the thread has exited meanwhile (the control server's per-connection
/// threads come and go).
fn allowed_cpus(pid: u32, tid: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|s| s.trim().to_string())
}

fn cpu_ns(pid: u32, tid: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")).unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

/// The PMD core belongs to the PMD: every other thread of the daemon is kept off it. And
/// the non-PMD thread sleeps when idle (it used to wake every 200 us and spend ~10% of a
/// core in the control channel's backoff).
#[test]
fn non_pmd_threads_stay_off_the_pmd_core_and_sleep_when_idle() {
    let d = Daemon::start("[[bridge]]\nname = \"tb0\"\ndatapath = \"netdev\"\n");
    let pid = d.child.as_ref().unwrap().id();
    let online = std::thread::available_parallelism().unwrap().get();
    assert!(
        online >= 2,
        "this test needs 2 cores (the PMD takes core 0)"
    );
    let ts = threads(pid);
    let pmd = ts
        .iter()
        .find(|(_, c)| c.starts_with("pmd"))
        .expect("a PMD thread");
    assert_eq!(
        allowed_cpus(pid, &pmd.0).as_deref(),
        Some("0"),
        "PMD pinned to core 0"
    );
    for (tid, comm) in ts.iter().filter(|(_, c)| !c.starts_with("pmd")) {
        let Some(cpus) = allowed_cpus(pid, tid) else {
            continue;
        };
        let has_zero = cpus.split(',').any(|r| r == "0" || r.starts_with("0-"));
        assert!(!has_zero, "thread {comm} may run on the PMD core: {cpus}");
    }
    let main = ts
        .iter()
        .find(|(_, c)| c == "dp-main")
        .expect("the non-PMD thread");
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ns(pid, &main.0);
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu_ns(pid, &main.0) - before;
    assert!(
        spent < 40_000_000,
        "idle non-PMD thread ran {} ms in 2 s",
        spent / 1_000_000
    );
    // It still answers: a control call that goes through it.
    let show = d.ok(&["dpif/show"]);
    assert!(show.contains("tb0"), "{show}");
}

/// The PMD commands answer to Open vSwitch's names as well, through Debian's ovs-appctl,
/// and `pmd-rxq-rebalance` reassigns the rx queues and shows where they went.
#[test]
fn pmd_commands_answer_to_their_open_vswitch_names() {
    let d = Daemon::start(
        "[[bridge]]\nname = \"ob0\"\ndatapath = \"netdev\"\n\n[[bridge.port]]\nname = \"op1\"\ntype = \"dummy\"\n",
    );
    let ovs = |args: &[&str]| d.ovs_ok(args);
    let stats = ovs(&["dpif-netdev/pmd-stats-show"]);
    assert!(
        stats.contains("pmd thread numa_id 0 core_id 0:") && stats.contains("main thread:"),
        "{stats}"
    );
    ovs(&["dpif-netdev/pmd-stats-clear"]);
    let rxqs = ovs(&["dpif-netdev/pmd-rxq-show"]);
    assert!(rxqs.contains("op1"), "{rxqs}");
    let after = ovs(&["dpif-netdev/pmd-rxq-rebalance"]);
    assert!(
        after.contains("op1") && after.contains("core_id 0"),
        "{after}"
    );
    let ours = d.ok(&["pmd-rxq-rebalance"]);
    assert!(ours.contains("op1") && ours.contains("core_id 0"), "{ours}");
}
