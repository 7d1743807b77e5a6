//! In-guest check of `make test-kernel` (see scripts/kernel-test/): the daemon's
//! `rvswitch-appctl dpctl/dump-flows` against Debian's `ovs-dpctl dump-flows` for the
//! kernel datapath the daemon runs. Both read the module's megaflows; the flows (in_port,
//! Ethernet addresses, tunnel id when the packet came from a tunnel) and their packet and
//! byte counters must agree, with traffic counted and the tunnel flows of a ping across
//! a vxlan port present (a `tunnel(tun_id=...)` key in and a `set(tunnel(...))` action
//! out). Exits non-zero, saying why, when they do not.
//!
//! Usage: kernel_dump_compare CONTROL_SOCKET DATAPATH TUN_ID

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// What identifies one megaflow across the two printers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct FlowId {
    in_port: u32,
    eth_src: String,
    eth_dst: String,
    tun_id: Option<String>,
}

/// Packet and byte counters.
type Counters = (u64, u64);

/// A parsed dump: each megaflow's counters and actions text.
type Dump = BTreeMap<FlowId, (Counters, String)>;

fn sh(prog: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .map_err(|e| format!("{prog}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "`{prog} {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The text of `name(...)` in `s` (balanced parentheses), if present.
fn group<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = s[from..].find(name) {
        let at = from + i;
        let open = at + name.len();
        // only a whole name: `eth(` must not match inside `set(eth(` of another field
        let whole = at == 0 || matches!(s.as_bytes()[at - 1], b',' | b'(');
        if whole && s[open..].starts_with('(') {
            let mut depth = 0usize;
            for (j, c) in s[open..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(&s[open + 1..open + j]);
                        }
                    }
                    _ => {}
                }
            }
            return None;
        }
        from = open;
    }
    None
}

fn field<'a>(g: &'a str, name: &str) -> Option<&'a str> {
    g.split(',')
        .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

fn number_after(s: &str, label: &str) -> Option<u64> {
    let i = s.find(label)? + label.len();
    s[i..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Megaflows of a dpctl-syntax dump, with their actions text. Lines that are not flows
/// (headers) are skipped; a flow line that cannot be read is an error.
fn parse(text: &str) -> Result<Dump, String> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.contains("in_port(")) {
        let key = line.split(", packets:").next().unwrap_or(line);
        let bad = || format!("cannot read flow line '{line}'");
        let in_port = group(key, "in_port")
            .and_then(|p| p.parse().ok())
            .ok_or_else(bad)?;
        let eth = group(key, "eth").ok_or_else(bad)?;
        let id = FlowId {
            in_port,
            eth_src: field(eth, "src").ok_or_else(bad)?.to_string(),
            eth_dst: field(eth, "dst").ok_or_else(bad)?.to_string(),
            tun_id: group(key, "tunnel")
                .and_then(|t| field(t, "tun_id"))
                .map(str::to_string),
        };
        let counters = (
            number_after(line, "packets:").ok_or_else(bad)?,
            number_after(line, "bytes:").ok_or_else(bad)?,
        );
        let actions = line.split("actions:").nth(1).unwrap_or("").to_string();
        if out.insert(id.clone(), (counters, actions)).is_some() {
            return Err(format!("two flows for {id:?}"));
        }
    }
    Ok(out)
}

fn check(sock: &str, dp: &str, tun_id: &str) -> Result<String, String> {
    let ours = || -> Result<(String, Dump), String> {
        let t = sh(
            "/usr/bin/rvswitch-appctl",
            &["-t", sock, "dpctl/dump-flows"],
        )?;
        let p = parse(&t)?;
        Ok((t, p))
    };
    let mut last = String::new();
    // Compare snapshots taken while nothing changed (ours before == ours after).
    for _ in 0..8 {
        let (text, before) = ours()?;
        let dpctl = sh("/usr/bin/ovs-dpctl", &["dump-flows", dp])?;
        let (_, after) = ours()?;
        if before != after {
            last = format!("flows kept changing: {before:?} -> {after:?}");
            std::thread::sleep(Duration::from_millis(300));
            continue;
        }
        println!("  rvswitch-appctl dpctl/dump-flows:");
        text.lines().for_each(|l| println!("  | {l}"));
        println!("  ovs-dpctl dump-flows {dp}:");
        dpctl.lines().for_each(|l| println!("  | {l}"));
        let theirs = parse(&dpctl)?;
        let count = |m: &Dump| -> BTreeMap<FlowId, Counters> {
            m.iter().map(|(k, v)| (k.clone(), v.0)).collect()
        };
        if count(&after) != count(&theirs) {
            return Err(format!(
                "the dumps disagree:\n  ours {:?}\n  ovs-dpctl {:?}",
                count(&after),
                count(&theirs)
            ));
        }
        if !after.values().any(|v| v.0 .0 > 0) {
            return Err("no megaflow counted a packet".into());
        }
        let want = Some(tun_id.to_string());
        if !after.keys().any(|k| k.tun_id == want) {
            return Err(format!("no megaflow from the tunnel with tun_id={tun_id}"));
        }
        let set = format!("set(tunnel(tun_id={tun_id}");
        if !after.values().any(|v| v.1.contains(&set)) {
            return Err(format!("no megaflow with an action starting {set}"));
        }
        return Ok(format!(
            "{} megaflows agree with ovs-dpctl (in_port, eth, tun_id, packets, bytes)",
            after.len()
        ));
    }
    Err(last)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: kernel_dump_compare CONTROL_SOCKET DATAPATH TUN_ID");
        std::process::exit(2);
    }
    match check(&args[1], &args[2], &args[3]) {
        Ok(s) => println!("{s}"),
        Err(e) => {
            println!("{e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_printers_tunnel_lines_alike() {
        let ovs = "recirc_id(0),tunnel(tun_id=0x2a,src=192.168.50.2,dst=192.168.50.1,ttl=64,flags(-df-csum+key)),in_port(3),eth(src=aa:bb:cc:dd:ee:01,dst=aa:bb:cc:dd:ee:02),eth_type(0x0800),ipv4(frag=no), packets:3, bytes:294, used:0.5s, actions:1";
        let ours = "recirc_id(0),in_port(3),tunnel(tun_id=0x2a,src=192.168.50.2,dst=192.168.50.1),eth(src=aa:bb:cc:dd:ee:01,dst=aa:bb:cc:dd:ee:02),eth_type(0x0800), packets:3, bytes:294, used:0.500s, actions:1";
        let a = parse(ovs).unwrap();
        let b = parse(ours).unwrap();
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        let (id, (c, _)) = a.iter().next().unwrap();
        assert_eq!(id.tun_id.as_deref(), Some("0x2a"));
        assert_eq!(id.eth_dst, "aa:bb:cc:dd:ee:02");
        assert_eq!(*c, (3, 294));
    }

    #[test]
    fn unreadable_flow_line_is_an_error() {
        assert!(parse("in_port(x),eth(src=1), packets:1, bytes:2").is_err());
    }
}
