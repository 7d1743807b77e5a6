//! NORMAL: learning, flooding within VLANs, aging, moves, access/trunk tagging.

use std::time::Duration;

use super::*;

#[test]
fn learns_then_forwards_unicast() {
    let (br, _) = plain_bridge(4);
    // A (port 1) -> B: B unknown, flood to everyone but port 1.
    let o = xl(&br, &key(1, mac(0xa), mac(0xb)));
    assert_eq!(
        o.actions,
        vec![
            DpAction::Output(dp(2)),
            DpAction::Output(dp(3)),
            DpAction::Output(dp(4))
        ]
    );
    assert!(o.install);
    // B (port 2) -> A: A was learned on port 1.
    let o = xl(&br, &key(2, mac(0xb), mac(0xa)));
    assert_eq!(o.actions, vec![DpAction::Output(dp(1))]);
    // A -> B now unicast.
    let o = xl(&br, &key(1, mac(0xa), mac(0xb)));
    assert_eq!(o.actions, vec![DpAction::Output(dp(2))]);
    // The megaflow pins what NORMAL consulted.
    assert_eq!(o.mask.0.dl_src, [0xff; 6]);
    assert_eq!(o.mask.0.dl_dst, [0xff; 6]);
    assert_eq!(o.mask.0.in_port, u32::MAX);
    assert_eq!(o.mask.0.nw_dst, 0, "L3 is not consulted by plain NORMAL");
    let fdb = br.fdb_show();
    assert!(
        fdb.starts_with(" port  VLAN  MAC                Age\n"),
        "{fdb}"
    );
    assert!(
        fdb.contains("    1     0  50:54:00:00:00:0a    0\n"),
        "{fdb}"
    );
    assert!(
        fdb.contains("    2     0  50:54:00:00:00:0b    0\n"),
        "{fdb}"
    );
}

#[test]
fn never_sends_back_out_the_input_port() {
    let (br, _) = plain_bridge(3);
    xl(&br, &key(1, mac(0xa), mac(0xb)));
    xl(&br, &key(1, mac(0xb), mac(0xc)));
    // B and A both on port 1: A -> B is dropped, not reflected.
    let o = xl(&br, &key(1, mac(0xa), mac(0xb)));
    assert!(o.actions.is_empty(), "{:?}", o.actions);
    // Broadcast floods to all but the input.
    let o = xl(&br, &key(2, mac(0xc), [0xff; 6]));
    assert_eq!(outputs(&o), vec![dp(1), dp(3)]);
}

#[test]
fn multicast_sources_are_not_learned_and_bpdus_dropped() {
    let (br, _) = plain_bridge(3);
    xl(&br, &key(1, [0x01, 0, 0x5e, 0, 0, 1], mac(0xb)));
    assert!(br.fdb().is_empty());
    let o = xl(&br, &key(1, mac(0xa), [0x01, 0x80, 0xc2, 0, 0, 0]));
    assert!(o.actions.is_empty(), "STP BPDU must not be forwarded");
}

#[test]
fn unknown_unicast_floods_within_the_vlan_only() {
    let access = |t| PortConfig {
        vlan_mode: VlanMode::Access,
        tag: Some(t),
        ..Default::default()
    };
    let trunk = PortConfig {
        trunks: vec![10, 20],
        ..Default::default()
    };
    let (br, _) = bridge(
        OfprotoConfig::default(),
        &[access(10), access(10), access(20), trunk],
    );
    let o = xl(&br, &key(1, mac(0xa), mac(0xb)));
    // Port 2 untagged (same access VLAN), port 4 tagged 10; port 3 (VLAN 20) excluded.
    assert_eq!(
        o.actions,
        vec![DpAction::Output(dp(2)), push(10), DpAction::Output(dp(4))]
    );
    // From the trunk in VLAN 20: only port 3, untagged.
    let o = xl(&br, &tagged(key(4, mac(0xc), mac(0xd)), 20));
    assert_eq!(o.actions, vec![DpAction::PopVlan, DpAction::Output(dp(3))]);
    // VLAN 30 is not on the trunk: dropped at input.
    let o = xl(&br, &tagged(key(4, mac(0xc), mac(0xd)), 30));
    assert!(o.actions.is_empty());
}

#[test]
fn access_and_trunk_tagging_and_stripping() {
    let access = PortConfig {
        vlan_mode: VlanMode::Access,
        tag: Some(10),
        ..Default::default()
    };
    let nu = PortConfig {
        vlan_mode: VlanMode::NativeUntagged,
        tag: Some(10),
        trunks: vec![10, 20],
        ..Default::default()
    };
    let (br, _) = bridge(
        OfprotoConfig::default(),
        &[access.clone(), PortConfig::default(), nu, access],
    );
    // Learn A on access port 1 (VLAN 10).
    xl(&br, &key(1, mac(0xa), [0xff; 6]));
    // Tagged 10 from the trunk (port 2) to A: tag stripped towards the access port.
    let o = xl(&br, &tagged(key(2, mac(0xb), mac(0xa)), 10));
    assert_eq!(o.actions, vec![DpAction::PopVlan, DpAction::Output(dp(1))]);
    // A back to B (learned on trunk port 2 in VLAN 10): tag pushed.
    let o = xl(&br, &key(1, mac(0xa), mac(0xb)));
    assert_eq!(o.actions, vec![push(10), DpAction::Output(dp(2))]);
    // Tagged 10 arriving on an access port is not admitted.
    let o = xl(&br, &tagged(key(1, mac(0xa), mac(0xb)), 10));
    assert!(o.actions.is_empty());
    // Priority-tagged (VID 0) on access: admitted, the priority tag is consumed; towards
    // the trunk the PCP is kept in the new tag.
    let mut k = key(4, mac(0xe), mac(0xb));
    k.vlans[0] = VlanTag {
        tpid: 0x8100,
        tci: 5 << 13,
    };
    let o = xl(&br, &k);
    assert_eq!(
        o.actions,
        vec![
            DpAction::PopVlan,
            push((5 << 13) | 10),
            DpAction::Output(dp(2))
        ]
    );
    // Native-untagged port 3: VLAN 10 leaves untagged, VLAN 20 tagged.
    let o = xl(&br, &tagged(key(2, mac(0xb), mac(0x77)), 20));
    assert_eq!(
        o.actions,
        vec![DpAction::Output(dp(3))],
        "tag 20 kept towards port 3"
    );
    let o = xl(&br, &tagged(key(2, mac(0xb), mac(0x78)), 10));
    assert_eq!(
        o.actions,
        vec![
            DpAction::PopVlan,
            DpAction::Output(dp(1)),
            DpAction::Output(dp(3)),
            DpAction::Output(dp(4))
        ]
    );
}

#[test]
fn entries_age_out() {
    let (br, clock) = plain_bridge(3);
    xl(&br, &key(1, mac(0xa), [0xff; 6]));
    clock.advance(Duration::from_secs(299));
    assert_eq!(outputs(&xl(&br, &key(2, mac(0xb), mac(0xa)))), vec![dp(1)]);
    clock.advance(Duration::from_secs(2));
    // A unseen for 301 s: unknown again, flooded.
    assert_eq!(
        outputs(&xl(&br, &key(2, mac(0xb), mac(0xa)))),
        vec![dp(1), dp(3)]
    );
    let g = br.generation();
    assert!(br.run_timeouts());
    assert!(br.generation() != g, "expiry must trigger revalidation");
    assert!(!br.fdb_show().contains(":0a"));
}

#[test]
fn fdb_flush_forgets_and_triggers_revalidation() {
    let (br, _) = plain_bridge(3);
    xl(&br, &key(1, mac(0xa), [0xff; 6]));
    let g = br.generation();
    br.fdb_flush();
    assert_ne!(br.generation(), g);
    assert_eq!(
        outputs(&xl(&br, &key(2, mac(0xb), mac(0xa)))),
        vec![dp(1), dp(3)]
    );
}

#[test]
fn fdb_stats_count_learning_moves_and_clear_in_ovs_words() {
    let (br, _) = plain_bridge(3);
    xl(&br, &key(1, mac(0xa), [0xff; 6]));
    xl(&br, &key(2, mac(0xb), mac(0xa)));
    xl(&br, &key(3, mac(0xa), mac(0xb)));
    let name = br.name().to_string();
    assert_eq!(
        br.fdb_stats_show(),
        format!(
            "Statistics for bridge \"{name}\":\n\
             \x20 Current/maximum MAC entries in the table: 2/8192\n\
             \x20 Current static MAC entries in the table : 0\n\
             \x20 Total number of learned MAC entries     : 2\n\
             \x20 Total number of expired MAC entries     : 0\n\
             \x20 Total number of evicted MAC entries     : 0\n\
             \x20 Total number of port moved MAC entries  : 1\n"
        )
    );
    br.fdb_stats_clear();
    let shown = br.fdb_stats_show();
    assert!(shown.contains("in the table: 2/8192\n"), "{shown}");
    assert!(shown.contains("learned MAC entries     : 0\n"), "{shown}");
    assert!(shown.contains("moved MAC entries  : 0\n"), "{shown}");
}

#[test]
fn mac_move_redirects() {
    let (br, _) = plain_bridge(3);
    xl(&br, &key(1, mac(0xa), [0xff; 6]));
    assert_eq!(outputs(&xl(&br, &key(3, mac(0xc), mac(0xa)))), vec![dp(1)]);
    let g = br.generation();
    xl(&br, &key(2, mac(0xa), [0xff; 6]));
    assert_ne!(br.generation(), g);
    assert_eq!(outputs(&xl(&br, &key(3, mac(0xc), mac(0xa)))), vec![dp(2)]);
}

#[test]
fn fail_mode_secure_drops_table_misses() {
    let cfg = OfprotoConfig {
        fail_mode: FailMode::Secure,
        ..Default::default()
    };
    let (br, _) = bridge(cfg, &[PortConfig::default(), PortConfig::default()]);
    assert!(xl(&br, &key(1, mac(0xa), [0xff; 6])).actions.is_empty());
    br.add_flow("actions=NORMAL").unwrap();
    assert_eq!(outputs(&xl(&br, &key(1, mac(0xa), [0xff; 6]))), vec![dp(2)]);
}
