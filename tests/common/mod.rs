//! Helpers shared by the daemon integration tests: a running rvswitch in a private run
//! directory that is always stopped (SIGTERM, then SIGKILL) when the guard drops, and
//! (in `netns`) the namespace and veth fixtures every root test shares.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub mod netns;
pub mod steal;

#[allow(unused_imports)] // each test binary uses its own subset
pub use netns::{link_exists, require_root, run_in_ns, unique_id, Netns, VethPair};
#[allow(unused_imports)] // each test binary uses its own subset
pub use steal::stolen_ms;

/// A short unique tag for names (interfaces, namespaces) made by one test.
pub fn unique(prefix: &str) -> String {
    netns::unique_name(prefix)
}

pub const RVSWITCH: &str = env!("CARGO_BIN_EXE_rvswitch");
pub const APPCTL: &str = env!("CARGO_BIN_EXE_rvswitch-appctl");

/// A daemon process and its temporary run directory.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Daemon {
    /// Writes `config_body` (without [global]; run_dir and pmd_cores are added) and starts
    /// the daemon, waiting until its control socket answers.
    pub fn start(config_body: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, config_body)
    }

    /// As `start`, in an existing run directory (to test restarts).
    pub fn start_in(dir: tempfile::TempDir, config_body: &str) -> Daemon {
        Self::start_with(dir, "", config_body)
    }

    /// As `start`, with `global_extra` (lines of `key = value`) added to `[global]`; a
    /// `pmd_cores` there replaces the default of one PMD on core 0.
    pub fn start_with_global(global_extra: &str, config_body: &str) -> Daemon {
        Self::start_with(tempfile::tempdir().unwrap(), global_extra, config_body)
    }

    fn start_with(dir: tempfile::TempDir, global_extra: &str, config_body: &str) -> Daemon {
        let config = dir.path().join("switch.toml");
        // One PMD on core 0 unless the test sets its own.
        let pmds = if global_extra.contains("pmd_cores") {
            ""
        } else {
            "pmd_cores = [0]\n"
        };
        let text = format!(
            "[global]\nrun_dir = \"{}\"\n{pmds}log_level = \"info\"\n{global_extra}\n{config_body}",
            dir.path().display()
        );
        std::fs::write(&config, text).unwrap();
        let child = Command::new(RVSWITCH)
            .arg("--config")
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
        d.wait_ready();
        d
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("rvswitch.ctl")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("rvswitch exited early with {status}: {}", self.log());
            }
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "rvswitch did not open its socket: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs rvswitch-appctl against this daemon.
    pub fn appctl(&self, args: &[&str]) -> Output {
        Command::new(APPCTL)
            .arg("-t")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run rvswitch-appctl")
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.appctl(args);
        assert!(
            out.status.success(),
            "rvswitch-appctl {args:?} failed ({}): {}\ndaemon log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command through Debian's `ovs-appctl` (a client we did not write), which
    /// must succeed, and returns its stdout.
    pub fn ovs_ok(&self, args: &[&str]) -> String {
        let out = Command::new("ovs-appctl")
            .arg("-t")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("ovs-appctl (openvswitch-common) must be installed");
        assert!(out.status.success(), "ovs-appctl {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail with exit code 2 and returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.appctl(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "rvswitch-appctl {args:?}: {out:?}"
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon already stopped");
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        wait_timeout(&mut child, Duration::from_secs(30))
    }

    /// Waits for the daemon to exit by itself (after the exit command).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon already stopped");
        wait_timeout(&mut child, Duration::from_secs(30))
    }

    /// Stops the daemon and hands back its run directory (for restart tests).
    pub fn stop_keep_dir(mut self) -> tempfile::TempDir {
        let status = self.terminate();
        assert!(status.success(), "{status}: {}", self.log());
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

fn wait_timeout(child: &mut Child, t: Duration) -> ExitStatus {
    let deadline = Instant::now() + t;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let s = child.wait().unwrap();
            panic!("rvswitch did not stop within {t:?} (killed: {s})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a shell command, panicking with its output if it fails.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Whether `path` exists.
pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// A network namespace with one veth pair: `host` stays in the root namespace (the switch
/// port), `peer` lives in the namespace with address `addr`. Removed on drop.
pub struct NsPort {
    pub ns: String,
    pub host: String,
    pub peer: String,
    pub ip: String,
    // Dropped in this order: the pair, then the namespace.
    veth: VethPair,
    netns: Netns,
}

impl NsPort {
    /// Creates namespace `<tag>n`, veth `<tag>h` (root) / `<tag>p` (in the namespace) with
    /// `ip/24` and a fixed MAC `mac`.
    pub fn new(tag: &str, ip: &str, mac: &str) -> NsPort {
        let (ns, host, peer) = (format!("{tag}n"), format!("{tag}h"), format!("{tag}p"));
        let netns = Netns::new(&ns);
        let veth = VethPair::new(&host, None, &peer, Some(&netns), None);
        sh(&format!("ip link set {host} up"));
        sh(&format!("sysctl -qw net.ipv6.conf.{host}.disable_ipv6=1"));
        netns.exec("sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        netns.ip(&["link", "set", &peer, "address", mac]);
        netns.ip(&["addr", "add", &format!("{ip}/24"), "dev", &peer]);
        netns.ip(&["link", "set", &peer, "up"]);
        // Frames cross the switch as raw bytes: have the sender compute checksums.
        netns.exec("ethtool", &["-K", &peer, "tx", "off"]);
        NsPort {
            ns,
            host,
            peer,
            ip: ip.to_string(),
            veth,
            netns,
        }
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, cmd: &str) -> Output {
        self.netns.sh(cmd)
    }

    /// Pings `dst` `count` times, `interval` seconds apart; returns (sent, received).
    pub fn ping(&self, dst: &str, count: u32, interval: &str) -> (u32, u32) {
        let out = self.exec(&format!("ping -c {count} -i {interval} -W 1 -q {dst}"));
        parse_ping(&String::from_utf8_lossy(&out.stdout))
    }
}

/// (transmitted, received) from ping's summary line.
pub fn parse_ping(out: &str) -> (u32, u32) {
    let line = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary in: {out}"));
    let nums: Vec<u32> = line
        .split(',')
        .filter_map(|part| part.split_whitespace().next()?.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// The number after `label` in `text` (e.g. "upcalls:" in pmd-stats-show output).
pub fn counter(text: &str, label: &str) -> u64 {
    let i = text
        .find(label)
        .unwrap_or_else(|| panic!("'{label}' not in: {text}"));
    text[i + label.len()..]
        .split_whitespace()
        .next()
        .and_then(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no number after '{label}' in: {text}"))
}

/// The sum of the numbers after `label` over every thread's section of pmd-stats-show.
pub fn sum_counter(text: &str, label: &str) -> u64 {
    let mut total = 0;
    let mut rest = text;
    let mut found = false;
    while let Some(i) = rest.find(label) {
        found = true;
        let after = &rest[i + label.len()..];
        total += after
            .split_whitespace()
            .next()
            .and_then(|w| w.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no number after '{label}' in: {text}"));
        rest = after;
    }
    assert!(found, "'{label}' not in: {text}");
    total
}

/// Whether an XDP program is attached to interface `name`.
pub fn has_xdp(name: &str) -> bool {
    let out = Command::new("ip")
        .args(["-d", "link", "show", name])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().any(|l| {
        l.contains("prog/xdp")
            || l.contains(" xdp ")
            || l.contains("xdpgeneric")
            || l.contains("xdp/id")
    })
}
