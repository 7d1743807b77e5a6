//! `upcall/show`, `memory/show` and the flow limit on a running daemon: real ping traffic
//! through two afxdp ports installs megaflows, and `upcall/show` (through our client and
//! Debian's ovs-appctl) reports them against the limit the config sets, names the
//! revalidator thread that tracks them, and follows `dpctl/del-flows`; `memory/show`
//! counts the same state; past the limit pings still cross, and the log says why the
//! flows stopped. Needs root (namespaces, AF_XDP);
//! fails, not skips, without it.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// The numbers of one `upcall/show` block.
#[derive(Debug)]
struct Block {
    current: u64,
    avg: u64,
    max: u64,
    limit: String,
    tid: u32,
    keys: u64,
}

/// The number after `label` in `text` ("(current 3)" -> 3).
fn after(text: &str, label: &str) -> String {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no '{label}' in:\n{text}"));
    text[at + label.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

fn parse(out: &str) -> Block {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "netdev@ovs-netdev:", "{out}");
    assert!(lines[1].starts_with("  flows         : (current "), "{out}");
    assert!(
        lines[2].starts_with("  dump duration : ") && lines[2].ends_with("ms"),
        "{out}"
    );
    assert_eq!(lines[3], "  ufid enabled : false", "{out}");
    assert_eq!(lines[4], "", "{out}");
    let (tid, keys) = lines[5]
        .trim()
        .split_once(": (keys ")
        .unwrap_or_else(|| panic!("no revalidator line in:\n{out}"));
    let n = |s: String| {
        s.parse::<u64>()
            .unwrap_or_else(|e| panic!("{s}: {e}\n{out}"))
    };
    Block {
        current: n(after(out, "(current ")),
        avg: n(after(out, "(avg ")),
        max: n(after(out, "(max ")),
        limit: after(out, "(limit "),
        tid: tid.parse().unwrap_or_else(|e| panic!("{tid}: {e}\n{out}")),
        keys: keys.trim_end_matches(')').parse().unwrap(),
    }
}

/// Polls `upcall/show` until `want` holds (the revalidator passes every 500 ms).
fn wait_for(d: &Daemon, what: &str, want: impl Fn(&Block) -> bool) -> Block {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let b = parse(&d.ok(&["upcall/show"]));
        if want(&b) {
            return b;
        }
        assert!(Instant::now() < deadline, "{what}: last {b:?}\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two namespaces on afxdp ports of one bridge, and a daemon with `max_flows`.
fn rig(tag: &str, subnet: u8, max_flows: usize) -> (Daemon, NsPort, NsPort) {
    let a = NsPort::new(
        &format!("{tag}a"),
        &format!("10.{subnet}.0.1"),
        "02:00:0a:ca:00:01",
    );
    let b = NsPort::new(
        &format!("{tag}b"),
        &format!("10.{subnet}.0.2"),
        "02:00:0a:ca:00:02",
    );
    let body = format!(
        "[[bridge]]\nname = \"{tag}br\"\n\n[[bridge.port]]\nname = \"{}\"\ntype = \"afxdp\"\n\n\
         [[bridge.port]]\nname = \"{}\"\ntype = \"afxdp\"\n",
        a.host, b.host
    );
    let d = Daemon::start_with_global(&format!("max_flows = {max_flows}"), &body);
    (d, a, b)
}

#[test]
fn upcall_show_counts_installed_megaflows_against_the_limit() {
    let tag = unique("du");
    // One PMD and the thread for unpolled ports: two tables of 1,000.
    let (d, a, b) = rig(&tag, 202, 1000);

    // The bridge's own port would chatter IPv6 (MLD, router solicitations) and install
    // flows of its own while the test counts; the two namespaces have IPv6 off already.
    sh(&format!("sysctl -qw net.ipv6.conf.{tag}br.disable_ipv6=1"));
    assert_eq!(parse(&d.ok(&["upcall/show"])).limit, "2000");

    assert_eq!(a.ping(&b.ip, 3, "0.2"), (3, 3), "log:\n{}", d.log());
    let busy = wait_for(&d, "flows after ping", |b| b.current >= 2 && b.keys >= 2);
    assert!(busy.max >= busy.current && busy.avg <= busy.max, "{busy:?}");
    // The thread named is the daemon's revalidator.
    let pid = d.child.as_ref().unwrap().id();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{}/comm", busy.tid))
        .unwrap_or_else(|e| panic!("thread {} of {pid}: {e}", busy.tid));
    assert_eq!(comm.trim(), "revalidator");
    // Debian's client reads the same reply.
    let ovs = parse(&d.ovs_ok(&["upcall/show"]));
    assert_eq!((ovs.tid, ovs.limit.as_str()), (busy.tid, "2000"), "{ovs:?}");

    let mem = d.ovs_ok(&["memory/show"]);
    let count = |key: &str| -> u64 {
        let v = after(&mem, &format!("{key}:"));
        v.parse()
            .unwrap_or_else(|e| panic!("{key}: {v}: {e}\n{mem}"))
    };
    assert_eq!(mem.lines().count(), 1, "{mem}");
    // The bridge, its two afxdp ports and its own; one revalidator; no kernel handlers;
    // the default frame region, part of it on the rings.
    assert_eq!(
        [
            count("bridges"),
            count("ports"),
            count("revalidators"),
            count("handlers")
        ],
        [1, 3, 1, 0],
        "{mem}"
    );
    assert!(count("megaflows") >= 2 && count("udpif keys") >= 2, "{mem}");
    assert_eq!(count("afxdp_frames"), 65536, "{mem}");
    assert!(
        count("afxdp_frames_free") < 65536,
        "frames are on the rings: {mem}"
    );

    d.ok(&["dpctl/del-flows"]);
    let flushed = wait_for(&d, "after dpctl/del-flows", |b| {
        b.current == 0 && b.keys == 0
    });
    assert!(
        flushed.max >= busy.keys && flushed.max >= 2,
        "the maximum stays: {flushed:?} after {busy:?}"
    );

    let e = d.fails(&["upcall/show", "extra"]);
    assert!(e.contains("upcall/show"), "{e}");
}

/// With room for one megaflow a thread, the rest of a ping's flows are never installed:
/// each of their packets goes to the translator and is forwarded from there, so every
/// ping is answered; the log says the PMD's table is full, once (the thread serving the
/// bridge's own port may say so too, for its IPv6 chatter).
#[test]
fn past_max_flows_pings_still_cross_and_the_log_says_why() {
    let tag = unique("df");
    let (d, a, b) = rig(&tag, 203, 1);
    assert_eq!(a.ping(&b.ip, 5, "0.2"), (5, 5), "log:\n{}", d.log());
    let show = parse(&d.ok(&["upcall/show"]));
    assert_eq!(show.limit, "2");
    assert!(show.current <= 2, "{show:?}");
    let log = d.log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("megaflow table full") && l.contains("thread=pmd-c0"))
        .count();
    assert_eq!(warnings, 1, "one warning for the episode:\n{log}");
}
