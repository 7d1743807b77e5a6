//! Rule management: add/replace, modify, delete (strict, non-strict, out_port), timeouts,
//! counters and dump-flows output.

use std::time::Duration;

use super::*;

fn texts(br: &Ofproto) -> Vec<String> {
    br.rules()
        .iter()
        .map(|r| {
            format_flow(&FlowSpec {
                opts: r.opts,
                matcher: r.matcher,
                actions: r.actions.clone(),
            })
        })
        .collect()
}

#[test]
fn add_replaces_identical_rules_only() {
    let (br, _) = plain_bridge(3);
    br.add_flow("priority=10,ip,actions=output:1").unwrap();
    br.add_flow("priority=10,ip,actions=output:2").unwrap();
    br.add_flow("priority=11,ip,actions=output:3").unwrap();
    assert_eq!(
        texts(&br),
        vec![
            "table=0,priority=11,ip,actions=output:3",
            "table=0,priority=10,ip,actions=output:2",
        ]
    );
}

#[test]
fn modify_strict_and_non_strict() {
    let (br, _) = plain_bridge(3);
    br.add_flow("priority=10,ip,nw_dst=10.0.0.1,actions=output:1")
        .unwrap();
    br.add_flow("priority=20,ip,actions=output:1").unwrap();
    br.add_flow("priority=30,arp,actions=output:1").unwrap();
    // Non-strict: every rule at least as specific as "ip" (both IP rules).
    assert_eq!(br.mod_flows("ip,actions=output:2", false).unwrap(), 2);
    // Strict: only exact match + priority.
    assert_eq!(
        br.mod_flows("priority=10,ip,actions=output:3", true)
            .unwrap(),
        0
    );
    assert_eq!(
        br.mod_flows("priority=20,ip,actions=output:3", true)
            .unwrap(),
        1
    );
    assert_eq!(
        texts(&br),
        vec![
            "table=0,priority=30,arp,actions=output:1",
            "table=0,priority=20,ip,actions=output:3",
            "table=0,priority=10,ip,nw_dst=10.0.0.1,actions=output:2",
        ]
    );
}

#[test]
fn delete_forms_and_out_port_filter() {
    let (br, _) = plain_bridge(3);
    br.add_flow("priority=10,ip,nw_dst=10.0.0.1,actions=output:1")
        .unwrap();
    br.add_flow("priority=20,ip,actions=output:2").unwrap();
    br.add_flow("table=1,priority=20,ip,actions=output:2")
        .unwrap();
    br.add_flow("priority=30,arp,actions=output:1").unwrap();
    // out_port filter: only rules that output to 1, any table, matching "ip".
    assert_eq!(br.del_flows("ip,out_port=1", false).unwrap(), 1);
    // Strict with wrong priority deletes nothing; right priority deletes one table's rule.
    assert_eq!(br.del_flows("table=0,priority=21,ip", true).unwrap(), 0);
    assert_eq!(br.del_flows("table=0,priority=20,ip", true).unwrap(), 1);
    assert_eq!(
        texts(&br),
        vec![
            "table=0,priority=30,arp,actions=output:1",
            "table=1,priority=20,ip,actions=output:2"
        ]
    );
    // Empty selector: everything.
    assert_eq!(br.del_flows("", false).unwrap(), 2);
    assert!(br.rules().is_empty());
    assert!(
        br.del_flows("ip,actions=drop", false).is_err(),
        "del-flows takes no actions"
    );
}

#[test]
fn hard_and_idle_timeouts_expire_rules() {
    let (br, clock) = plain_bridge(2);
    br.add_flow("priority=5,hard_timeout=10,ip,actions=output:1")
        .unwrap();
    br.add_flow("priority=4,idle_timeout=5,ip,actions=output:2")
        .unwrap();
    br.add_flow("priority=3,ip,actions=drop").unwrap();
    clock.advance(Duration::from_secs(4));
    // A hit on the idle rule (via a translation crediting it) keeps it alive.
    let r = br
        .rules()
        .into_iter()
        .find(|r| r.opts.priority == 4)
        .unwrap();
    r.credit(1, 100, br.now());
    clock.advance(Duration::from_secs(4));
    assert!(!br.run_timeouts());
    assert_eq!(br.rules().len(), 3);
    clock.advance(Duration::from_secs(3));
    assert!(br.run_timeouts());
    let left: Vec<u16> = br.rules().iter().map(|r| r.opts.priority).collect();
    assert_eq!(
        left,
        vec![3],
        "hard (10 s) and idle (5 s since the hit) both expired"
    );
}

#[test]
fn dump_flows_shows_counters_in_ofctl_style() {
    let (br, _) = plain_bridge(2);
    br.add_flow("cookie=0x5,priority=10,idle_timeout=30,ip,actions=output:2")
        .unwrap();
    let upcall_key = key(1, mac(1), mac(2));
    let meta = crate::packet::PacketMeta::default();
    let pkt = [0u8; 98];
    br.handle_upcall(&crate::dpif::Upcall {
        kind: crate::dpif::UpcallKind::Miss,
        key: &upcall_key,
        packet: &pkt,
        meta: &meta,
    })
    .unwrap();
    let d = br.dump_flows();
    assert!(
        d.starts_with(" cookie=0x5, duration=0.000s, table=0, n_packets=1, n_bytes=98, idle_timeout=30, priority=10,ip actions=output:2\n"),
        "{d}"
    );
}
