//! Shared fixtures for the netdev integration tests: a veth pair with one end in a fresh
//! network namespace, torn down on drop (also when the test panics), plus small helpers
//! to drive real tools (ping, trafgen, tcpdump) inside the namespace.
//!
//! These tests need root. They fail, not skip, when the environment is not set up.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use rvswitch::dpif::PortSpec;
use rvswitch::netdev::afxdp::AfxdpNetdev;
use rvswitch::packet::{PacketBatch, PacketPool};

#[path = "../common/netns.rs"]
mod netns;
#[path = "../common/steal.rs"]
mod steal;

#[allow(unused_imports)] // each test binary uses its own subset
pub use netns::{link_exists, require_root, run, run_in_ns, unique_id, Netns, VethPair};
#[allow(unused_imports)] // each test binary uses its own subset
pub use steal::stolen_ms;

/// A veth pair: `host` stays in our namespace, `peer` lives in namespace `ns` with
/// address `10.<n>.0.1/24`.
pub struct VethNs {
    /// Namespace name.
    pub ns: String,
    /// Our end.
    pub host: String,
    /// The namespace's end.
    pub peer: String,
    /// The peer's IPv4 address.
    pub peer_ip: String,
    /// An address on the same subnet nobody owns (for static neighbour entries).
    pub far_ip: String,
    // Dropped in this order: the namespace (taking the peer and our end with it), then
    // our end if it survived.
    netns: Netns,
    veth: VethPair,
}

impl VethNs {
    /// Creates namespace and pair; `tag` is a short prefix (<= 4 chars) naming the test
    /// module. `queues` sets the number of rx/tx queues of both ends.
    pub fn new(tag: &str, queues: u32) -> Self {
        let id = unique_id();
        let n = id % 100;
        let ns = format!("rvs-{tag}-{id}");
        let host = format!("{tag}{id}h");
        let peer = format!("{tag}{id}p");
        let subnet = 100 + (id % 150);
        let netns = Netns::new(&ns);
        let veth = VethPair::new(&host, None, &peer, Some(&netns), Some(queues));
        let me = VethNs {
            ns,
            host,
            peer,
            peer_ip: format!("10.{subnet}.{n}.1"),
            far_ip: format!("10.{subnet}.{n}.2"),
            netns,
            veth,
        };
        me.ns_run("sysctl", &["-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        let _ = Command::new("sysctl")
            .args(["-qw", &format!("net.ipv6.conf.{}.disable_ipv6=1", me.host)])
            .output();
        run("ip", &["link", "set", &me.host, "up"]);
        me.ns_run("ip", &["link", "set", &me.peer, "up"]);
        me.ns_run(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/16", me.peer_ip),
                "dev",
                &me.peer,
            ],
        );
        me
    }

    /// Runs a command inside the namespace, panicking on failure.
    pub fn ns_run(&self, cmd: &str, args: &[&str]) -> Output {
        self.netns.exec(cmd, args)
    }

    /// Spawns a command inside the namespace.
    pub fn ns_spawn(&self, cmd: &str, args: &[&str]) -> Child {
        self.netns.spawn(cmd, args)
    }

    /// The peer's MAC address.
    pub fn peer_mac(&self) -> [u8; 6] {
        let out = self.ns_run("cat", &[&format!("/sys/class/net/{}/address", self.peer)]);
        parse_mac(String::from_utf8_lossy(&out.stdout).trim())
    }

    /// A kernel counter of the peer (`/sys/class/net/<peer>/statistics/<name>`).
    pub fn peer_counter(&self, name: &str) -> u64 {
        let out = self.ns_run(
            "cat",
            &[&format!("/sys/class/net/{}/statistics/{name}", self.peer)],
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// Points `far_ip` at `mac` so that ping from the namespace sends unicast frames to it.
    pub fn static_neighbour(&self, mac: [u8; 6]) {
        self.ns_run(
            "ip",
            &[
                "neigh",
                "replace",
                &self.far_ip,
                "lladdr",
                &fmt_mac(mac),
                "dev",
                &self.peer,
            ],
        );
    }

    /// `ip link show <host>` output.
    pub fn host_link_show(&self) -> String {
        String::from_utf8_lossy(&run("ip", &["link", "show", &self.host]).stdout).into_owned()
    }
}

/// A port spec with options.
pub fn spec(name: &str, port_type: &str, opts: &[(&str, &str)]) -> PortSpec {
    PortSpec {
        name: name.to_string(),
        port_type: port_type.to_string(),
        options: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Parses "aa:bb:cc:dd:ee:ff".
pub fn parse_mac(s: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    for (m, part) in mac.iter_mut().zip(s.split(':')) {
        *m = u8::from_str_radix(part, 16).unwrap();
    }
    mac
}

/// Formats a MAC as "aa:bb:cc:dd:ee:ff".
pub fn fmt_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Polls `recv` until `done` says so or `timeout` passes, collecting every frame.
pub fn collect_frames(
    mut recv: impl FnMut(&mut PacketBatch, &mut PacketPool) -> usize,
    pool: &mut PacketPool,
    timeout: Duration,
    mut done: impl FnMut(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let start = Instant::now();
    let mut frames = Vec::new();
    let mut batch = PacketBatch::new();
    while start.elapsed() < timeout {
        let n = recv(&mut batch, pool);
        for p in batch.pkts.drain(..) {
            frames.push(p.data().to_vec());
            pool.put(p);
        }
        if done(&frames) {
            break;
        }
        if n == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    frames
}

/// Whether `f` is an ICMP echo request to `dst_ip` from `src_mac` to `dst_mac`.
pub fn is_echo_request(f: &[u8], dst_mac: [u8; 6], src_mac: [u8; 6], dst_ip: [u8; 4]) -> bool {
    f.len() >= 42
        && f[0..6] == dst_mac
        && f[6..12] == src_mac
        && f[12..14] == [0x08, 0x00]
        && f[23] == 1
        && f[30..34] == dst_ip
        && f[34] == 8
}

/// The ICMP echo requests ping sends: to `dst_mac` from `src_mac` for `dst_ip`.
pub struct EchoRequests {
    /// Destination MAC the requests carry.
    pub dst_mac: [u8; 6],
    /// Source MAC the requests carry.
    pub src_mac: [u8; 6],
    /// The pinged address.
    pub dst_ip: [u8; 4],
}

impl EchoRequests {
    /// The echo requests among `frames`, in arrival order.
    pub fn among<'a>(&self, frames: &'a [Vec<u8>]) -> Vec<&'a Vec<u8>> {
        frames
            .iter()
            .filter(|f| is_echo_request(f, self.dst_mac, self.src_mac, self.dst_ip))
            .collect()
    }

    /// Polls `recv` for up to `timeout` until `want` echo requests arrived; returns every
    /// frame seen.
    pub fn collect(
        &self,
        recv: impl FnMut(&mut PacketBatch, &mut PacketPool) -> usize,
        pool: &mut PacketPool,
        timeout: Duration,
        want: usize,
    ) -> Vec<Vec<u8>> {
        collect_frames(recv, pool, timeout, |fs| self.among(fs).len() >= want)
    }
}

/// ping's ICMP sequence number of an echo request frame (offset 40).
pub fn icmp_seq(f: &[u8]) -> u16 {
    u16::from_be_bytes([f[40], f[41]])
}

/// Calls `send_one(seq)` (which transmits a frame and returns it) every 50 ms until the
/// tcpdump `dump` has its frames (at most 10 s), and fails unless tcpdump finished.
/// Returns every frame sent.
pub fn send_until_captured(
    dump: &mut Child,
    mut send_one: impl FnMut(u32) -> Vec<u8>,
) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    let start = Instant::now();
    let mut seq = 0u32;
    while dump.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(10) {
        sent.push(send_one(seq));
        seq += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        wait_child(dump, Duration::from_secs(2)),
        "tcpdump did not finish"
    );
    sent
}

/// Fails unless tcpdump's capture at `pcap` holds exactly `count` frames, each one of
/// `sent`.
pub fn assert_captured_were_sent(pcap: &std::path::Path, count: usize, sent: &[Vec<u8>]) {
    let got = read_pcap(pcap);
    assert_eq!(got.len(), count);
    for f in &got {
        assert!(
            sent.contains(f),
            "captured frame was not one we sent: {f:02x?}"
        );
    }
}

/// Parses "a.b.c.d".
pub fn ip4(s: &str) -> [u8; 4] {
    let v: Vec<u8> = s.split('.').map(|p| p.parse().unwrap()).collect();
    [v[0], v[1], v[2], v[3]]
}

/// A test frame: broadcast, ethertype 0x88b5 (local experimental), `tag` then a counter.
pub fn test_frame(src: [u8; 6], tag: &[u8], seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(tag);
    f.extend_from_slice(&seq.to_be_bytes());
    while f.len() < len {
        f.push((f.len() % 251) as u8);
    }
    f
}

/// Reads the frames of a pcap file written by tcpdump -w.
pub fn read_pcap(path: &std::path::Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap();
    assert!(data.len() >= 24, "pcap file too short");
    let le = data[0..4] == [0xd4, 0xc3, 0xb2, 0xa1] || data[0..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let rd = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut off = 24;
    let mut frames = Vec::new();
    while off + 16 <= data.len() {
        let caplen = rd(&data[off + 8..off + 12]) as usize;
        off += 16;
        frames.push(data[off..off + caplen].to_vec());
        off += caplen;
    }
    frames
}

/// Spawns tcpdump in the namespace capturing `count` frames of ethertype 0x88b5 on the
/// peer into `path`.
pub fn spawn_tcpdump(v: &VethNs, path: &std::path::Path, count: usize) -> Child {
    v.ns_spawn(
        "tcpdump",
        &[
            "-i",
            &v.peer,
            "-nn",
            "-U",
            "-c",
            &count.to_string(),
            "-w",
            path.to_str().unwrap(),
            "ether proto 0x88b5",
        ],
    )
}

/// Waits for a child with a deadline, killing it if it overruns; returns whether it
/// exited on its own.
pub fn wait_child(child: &mut Child, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// Runs trafgen in the namespace: `count` copies of `frame` out of the peer, one CPU.
/// Returns its output; the caller checks the status (so that a receiving thread can be
/// told to stop before the test fails).
pub fn trafgen(v: &VethNs, frame: &[u8], count: u64) -> Output {
    trafgen_with(v, frame, count, &[])
}

/// As `trafgen`, with more of trafgen's options (e.g. `["-t", "1us"]`: a gap after every
/// frame, which on the development VM paces it at 40,000-55,000 frames a second).
pub fn trafgen_with(v: &VethNs, frame: &[u8], count: u64, extra: &[&str]) -> Output {
    trafgen_command(v, frame, count, extra)
        .output()
        .expect("running trafgen")
}

/// As `trafgen`, in the background and in a process group of its own: for a test that
/// must act while the load lasts. Stop it with `kill_group` (trafgen sends from a child
/// process, which outlives a killed parent).
pub fn trafgen_spawn(v: &VethNs, frame: &[u8], count: u64) -> Child {
    use std::os::unix::process::CommandExt;
    trafgen_command(v, frame, count, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .expect("starting trafgen")
}

/// Kills `child`'s whole process group (see `trafgen_spawn`) and reaps it.
pub fn kill_group(child: &mut Child) {
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is
    // involved.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
}

fn trafgen_command(v: &VethNs, frame: &[u8], count: u64, extra: &[&str]) -> Command {
    let bytes: Vec<String> = frame.iter().map(|b| format!("0x{b:02x}")).collect();
    let pkt = format!("{{ {} }}", bytes.join(", "));
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &v.ns, "trafgen"])
        .args([
            "--dev",
            &v.peer,
            "-n",
            &count.to_string(),
            "-P",
            "1",
            "--no-sock-mem",
            "-Q",
        ])
        .args(extra)
        .args(["-C", &pkt]);
    cmd
}

/// Fails the test with trafgen's own error when it did not run to the end (a test that
/// counts what arrived must not blame the switch for frames never sent).
pub fn assert_trafgen_ok(out: &Output) {
    assert!(
        out.status.success(),
        "trafgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The kernel's count of promiscuous users of an interface (`ip -d link` prints it;
/// SIOCGIFFLAGS only shows the administrator's IFF_PROMISC).
pub fn promiscuity(dev: &str) -> u32 {
    let out = String::from_utf8(run("ip", &["-d", "link", "show", dev]).stdout).unwrap();
    let after = out
        .split("promiscuity ")
        .nth(1)
        .expect("ip -d shows promiscuity");
    after.split_whitespace().next().unwrap().parse().unwrap()
}

/// Our end of `v` as an afxdp port in generic (SKB) mode, the mode veth supports well.
pub fn open_generic(v: &VethNs) -> AfxdpNetdev {
    AfxdpNetdev::open(&spec(&v.host, "afxdp", &[("xdp_mode", "generic")]))
        .expect("opening afxdp port in generic mode")
}

/// Polls `rxq` until `want` matching frames have arrived or `timeout` passes, napping for
/// `nap` after each empty poll; returns how many arrived.
pub fn receive(
    rxq: &mut dyn rvswitch::netdev::Rxq,
    pool: &mut PacketPool,
    frame: &[u8],
    want: u64,
    timeout: Duration,
    nap: Duration,
) -> u64 {
    let mut got = 0u64;
    let mut batch = PacketBatch::new();
    let start = Instant::now();
    while got < want && start.elapsed() < timeout {
        if rxq.recv(&mut batch, pool).unwrap() == 0 && !nap.is_zero() {
            std::thread::sleep(nap);
        }
        for p in batch.pkts.drain(..) {
            got += (p.data() == frame) as u64;
            pool.put(p);
        }
    }
    got
}

/// Polls `rxq` (putting back whatever arrives, napping `nap` between polls) until the
/// port's first queue has `want` frames on its fill ring, failing the test (naming
/// `when`) if three seconds pass first. An afxdp queue publishes where its frames are
/// only after a run of empty polls, so this is how a test sees a quiet queue's fill ring.
pub fn assert_fill_ring_refills(
    port: &AfxdpNetdev,
    rxq: &mut dyn rvswitch::netdev::Rxq,
    pool: &mut PacketPool,
    want: usize,
    nap: Duration,
    when: &str,
) {
    let start = Instant::now();
    let mut batch = PacketBatch::new();
    loop {
        rxq.recv(&mut batch, pool).unwrap();
        for p in batch.pkts.drain(..) {
            pool.put(p);
        }
        let in_fill = port.umem_frames()[0].rx_in_fill_ring;
        if in_fill == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{when}: the fill ring stayed at {in_fill} of {want}"
        );
        std::thread::sleep(nap);
    }
}
