//! The one network-namespace fixture of the root integration tests: namespaces and veth
//! pairs that are removed when their guard drops (also when the test panics), names that
//! never collide between tests or parallel test binaries, and a way to run code inside a
//! namespace.
//!
//! These tests need root; they fail (not skip) when the environment is broken.
//!
//! Test crates that do not include `common` pull this file in with
//! `#[path = "../common/netns.rs"] mod netns;`.

#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Fails the test with a clear message unless we are root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "this test needs root (it creates network namespaces and veth pairs); run it as root"
    );
}

/// The next value of this process's name counter.
pub fn next_seq() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A number unique to this call within the process and (almost surely) between test
/// processes running at the same time: the pid's last four digits and a two-digit counter,
/// at most six digits so `<4-char tag><id><1 char>` fits the 15-char interface name limit.
pub fn unique_id() -> u32 {
    (std::process::id() % 10_000) * 100 + next_seq() % 100
}

/// `prefix` followed by the pid's last three digits and a counter: a short unique name
/// for the interfaces and namespaces of one test.
pub fn unique_name(prefix: &str) -> String {
    let n = next_seq();
    format!("{prefix}{}{n}", std::process::id() % 1000)
}

/// Runs a command and panics with its output if it fails.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command whose failure is expected at times (removing leftovers).
fn run_quiet(cmd: &str, args: &[&str]) {
    let _ = Command::new(cmd).args(args).output();
}

/// Whether a Linux interface exists.
pub fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A network namespace, deleted (with every interface inside it) on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates namespace `name` with `lo` up, first removing a leftover of a crashed
    /// earlier run with the same name.
    pub fn new(name: &str) -> Netns {
        require_root();
        run_quiet("ip", &["netns", "del", name]);
        run("ip", &["netns", "add", name]);
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (for `ip netns exec` and `/var/run/netns`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `cmd args` inside the namespace, panicking on failure.
    pub fn exec(&self, cmd: &str, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.name, cmd];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs `ip -n <ns> args`, panicking on failure.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs a shell command inside the namespace and returns its output, whatever its
    /// status (the caller judges it).
    pub fn sh(&self, cmd: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, "sh", "-c", cmd])
            .output()
            .unwrap_or_else(|e| panic!("running `{cmd}` in {}: {e}", self.name))
    }

    /// Spawns `cmd args` inside the namespace with stdout and stderr piped.
    pub fn spawn(&self, cmd: &str, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.name, cmd])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd} in {}: {e}", self.name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        run_quiet("ip", &["netns", "del", &self.name]);
    }
}

/// A veth pair; end `a` is deleted on drop (which deletes `b` with it). Deleting the
/// namespace an end lives in removes the pair as well, so dropping both guards is safe.
pub struct VethPair {
    /// The first end.
    pub a: String,
    /// The second end.
    pub b: String,
    a_ns: Option<String>,
}

impl VethPair {
    /// Creates `a` in namespace `a_ns` (None: ours) and `b` in `b_ns`, both down; with
    /// `queues`, each end gets that many rx and tx queues.
    pub fn new(
        a: &str,
        a_ns: Option<&Netns>,
        b: &str,
        b_ns: Option<&Netns>,
        queues: Option<u32>,
    ) -> VethPair {
        require_root();
        for name in [a, b] {
            assert!(name.len() <= 15, "interface name too long: {name}");
        }
        let q = queues.map(|q| q.to_string());
        let mut args: Vec<&str> = Vec::new();
        if let Some(ns) = a_ns {
            args.extend(["-n", ns.name()]);
        }
        run_quiet("ip", &[&args[..], &["link", "del", a][..]].concat());
        args.extend(["link", "add", a]);
        if let Some(q) = &q {
            args.extend(["numtxqueues", q, "numrxqueues", q]);
        }
        args.extend(["type", "veth", "peer", "name", b]);
        if let Some(ns) = b_ns {
            args.extend(["netns", ns.name()]);
        }
        if let Some(q) = &q {
            args.extend(["numtxqueues", q, "numrxqueues", q]);
        }
        run("ip", &args);
        VethPair {
            a: a.to_string(),
            b: b.to_string(),
            a_ns: a_ns.map(|ns| ns.name().to_string()),
        }
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        match &self.a_ns {
            Some(ns) => run_quiet("ip", &["-n", ns, "link", "del", &self.a]),
            None => run_quiet("ip", &["link", "del", &self.a]),
        }
    }
}

/// Runs `f` on a thread that has entered namespace `ns`; sockets it creates stay in `ns`.
pub fn run_in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let nsf = File::open(format!("/var/run/netns/{ns}"))
                .unwrap_or_else(|e| panic!("open namespace {ns}: {e}"));
            // SAFETY: a valid namespace fd; only this thread changes namespace.
            let r = unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns {ns}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("netns thread")
    })
}
