//! Flow syntax: round trips and error messages.

use super::*;
use crate::ofproto::flow_syntax::FlowSyntaxError;

const CANONICAL: &[&str] = &[
    "table=0,priority=100,ip,in_port=1,nw_dst=10.0.0.0/24,actions=mod_vlan_vid:10,output:2",
    "table=0,priority=32768,actions=NORMAL",
    "table=0,priority=0,actions=drop",
    "table=1,priority=5,cookie=0x1234,idle_timeout=10,hard_timeout=60,tcp,dl_src=50:54:00:00:00:01,tp_dst=80,actions=mod_tp_dst:8080,IN_PORT",
    "table=0,priority=7,udp6,ipv6_src=2001:db8::/64,ipv6_dst=2001:db8::1,tp_src=53,actions=dec_ttl,FLOOD",
    "table=0,priority=7,tcp,tp_dst=0x50/0xfff0,tcp_flags=0x2,actions=ALL",
    "table=0,priority=9,arp,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/8,arp_op=1,arp_sha=50:54:00:00:00:01,actions=LOCAL",
    "table=0,priority=9,icmp,icmp_type=8,icmp_code=0,actions=output:3",
    "table=0,priority=9,icmp6,icmp_type=135,nd_target=fe80::1,actions=output:3",
    "table=0,priority=1,dl_vlan=10,dl_vlan_pcp=3,actions=pop_vlan,push_vlan:0x8100,set_field:20->vlan_vid,output:1",
    "table=0,priority=1,vlan_tci=0x0000,actions=mod_vlan_pcp:5,output:1",
    "table=0,priority=1,vlan_tci=0x1000/0x1000,actions=output:1",
    "table=0,priority=1,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=FLOOD",
    "table=0,priority=2,tun_id=0x5,tun_src=192.168.1.1,tun_dst=192.168.1.0/24,actions=set_tunnel:0x7,set_field:10.1.1.1->tun_dst,output:4",
    "table=0,priority=3,ip,nw_src=10.0.0.0/255.0.255.0,nw_tos=16,nw_ttl=5,ip_frag=first,actions=mod_nw_src:1.2.3.4,mod_nw_dst:5.6.7.8,mod_nw_tos:32,mod_nw_ttl:9,output:2",
    "table=0,priority=3,dl_type=0x88cc,actions=resubmit:2,resubmit(,3),resubmit(1,4),goto_table:5",
    "table=0,priority=4,ip,actions=mod_dl_src:50:54:00:00:00:01,mod_dl_dst:50:54:00:00:00:02,set_field:50:54:00:00:00:03->eth_src,set_field:10.0.0.9->ip_dst,output:1",
];

#[test]
fn canonical_flows_round_trip_exactly() {
    for text in CANONICAL {
        let spec = parse_flow(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let printed = format_flow(&spec);
        assert_eq!(&printed, text);
        assert_eq!(parse_flow(&printed).unwrap(), spec);
    }
}

#[test]
fn other_spellings_parse_to_the_same_rule() {
    let pairs = [
        ("priority=100 in_port=1 dl_type=0x0800 nw_dst=10.0.0.0/255.255.255.0 actions=mod_vlan_vid:10,2",
         "table=0,priority=100,ip,in_port=1,nw_dst=10.0.0.0/24,actions=mod_vlan_vid:10,output:2"),
        ("dl_type=0x0800,nw_proto=6,tcp_dst=443,actions=strip_vlan,normal",
         "table=0,priority=32768,tcp,tp_dst=443,actions=pop_vlan,NORMAL"),
        ("dl_vlan=0xffff,actions=output:NORMAL", "table=0,priority=32768,vlan_tci=0x0000,actions=NORMAL"),
    ];
    for (a, b) in pairs {
        assert_eq!(format_flow(&parse_flow(a).unwrap()), b, "{a}");
    }
}

fn err(text: &str) -> FlowSyntaxError {
    parse_flow(text).expect_err(text)
}

#[test]
fn errors_name_the_bad_token_and_what_was_expected() {
    let e = err("ip,nw_dst=10.0.0.0/33,actions=drop");
    assert!(
        matches!(&e, FlowSyntaxError::BadValue { field, value, .. } if field == "nw_dst" && value == "10.0.0.0/33"),
        "{e}"
    );
    assert!(e.to_string().contains("prefix-length"), "{e}");

    let e = err("tp_dst=80,actions=drop");
    assert_eq!(
        e.to_string(),
        "tp_dst requires tcp, udp or sctp (nw_proto=6, 17 or 132) in the match"
    );

    let e = err("frobnicate=1,actions=drop");
    assert_eq!(e, FlowSyntaxError::UnknownField("frobnicate".into()));
    assert_eq!(e.to_string(), "unknown field or keyword 'frobnicate'");

    let e = err("ip,actions=output:2,explode");
    assert_eq!(e.to_string(), "unknown action 'explode'");

    let e = err("ip");
    assert!(e.to_string().contains("must specify an action"), "{e}");

    let e = err("dl_src=50:54:00:00:00,actions=drop");
    assert!(
        e.to_string()
            .contains("dl_src: bad value '50:54:00:00:00', expected a MAC address"),
        "{e}"
    );

    let e = err("table=2,actions=goto_table:1");
    assert!(
        e.to_string()
            .contains("goto_table:1 must name a table after"),
        "{e}"
    );

    let e = err("actions=goto_table:3,output:1");
    assert!(
        e.to_string().contains("goto_table must be the last action"),
        "{e}"
    );

    let e = err("actions=mod_vlan_vid:5000");
    assert!(
        e.to_string()
            .contains("mod_vlan_vid: bad value '5000', expected a VLAN id 0-4095"),
        "{e}"
    );

    let e = err("actions=set_field:1->bogus");
    assert!(e.to_string().contains("'bogus'"), "{e}");

    let e = err("priority=70000,actions=drop");
    assert!(e.to_string().contains("priority: bad value '70000'"), "{e}");

    let e = err("actions=output:2,drop");
    assert!(
        e.to_string().contains("'drop' must be the only action"),
        "{e}"
    );

    assert!(parse_flow("table=255,actions=drop").is_err());
}

#[test]
fn trace_keys_and_selectors_parse() {
    let k = parse_flow_key("in_port=3,dl_src=50:54:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,dl_vlan=7")
        .unwrap();
    assert_eq!(k.in_port, 3);
    assert_eq!(k.vlans[0].vid(), 7);
    assert_eq!(k.vlans[0].tpid, 0x8100);
    let (sel, acts) = parse_selector("table=1,out_port=2,cookie=0x10/0xf0").unwrap();
    assert_eq!(sel.table, Some(1));
    assert_eq!(sel.out_port, 2);
    assert_eq!((sel.cookie, sel.cookie_mask), (0x10, 0xf0));
    assert!(acts.is_none());
    let (sel, _) = parse_selector("").unwrap();
    assert_eq!(sel.table, None);
}

mod generated {
    use proptest::prelude::*;

    use super::super::*;

    const FIELDS: &[&str] = &[
        "ip",
        "ipv6",
        "arp",
        "rarp",
        "tcp",
        "udp",
        "icmp",
        "icmp6",
        "tcp6",
        "udp6",
        "sctp",
        "in_port=3",
        "in_port=LOCAL",
        "dl_src=50:54:00:00:00:01",
        "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00",
        "dl_type=0x88cc",
        "dl_vlan=5",
        "dl_vlan=0xffff",
        "dl_vlan_pcp=3",
        "vlan_tci=0x1005/0x1fff",
        "vlan_tci=0x0234/0x0234",
        "vlan_tci=0",
        "nw_src=10.0.0.0/8",
        "nw_dst=10.1.2.3",
        "nw_dst=10.0.0.0/255.0.255.0",
        "ipv6_src=2001:db8::/32",
        "ipv6_dst=ff02::1",
        "ipv6_label=5",
        "nw_proto=2",
        "nw_tos=16",
        "nw_ttl=9",
        "ip_frag=no",
        "ip_frag=later",
        "tp_src=53",
        "tp_dst=0x50/0xfff0",
        "tcp_flags=0x12/0x3f",
        "icmp_type=8",
        "icmp_code=1",
        "arp_op=2",
        "arp_spa=1.2.3.4",
        "arp_tha=00:00:00:00:00:09",
        "nd_target=fe80::2",
        "tun_id=0x5/0xff",
        "tun_src=192.168.0.1",
        "tun_dst=192.168.0.0/16",
        "priority=7",
        "table=1",
        "cookie=0x9",
        "idle_timeout=5",
        "hard_timeout=50",
        "bogus=1",
        "nw_dst=300.1.1.1",
    ];
    const ACTIONS: &[&str] = &[
        "output:2",
        "3",
        "NORMAL",
        "FLOOD",
        "ALL",
        "IN_PORT",
        "LOCAL",
        "mod_dl_src:50:54:00:00:00:09",
        "mod_nw_dst:10.9.9.9",
        "mod_nw_tos:8",
        "mod_nw_ttl:3",
        "dec_ttl",
        "mod_tp_src:7",
        "mod_vlan_vid:4095",
        "mod_vlan_pcp:7",
        "strip_vlan",
        "push_vlan:0x88a8",
        "set_field:10->vlan_vid",
        "set_field:fe80::1->ipv6_dst",
        "set_field:0x5->tun_id",
        "resubmit:IN_PORT",
        "resubmit(,2)",
        "resubmit(4,)",
        "set_tunnel:9",
        "goto_table:4",
        "drop",
    ];

    proptest! {
        /// Anything the parser accepts prints to text that parses back to the same rule.
        #[test]
        fn accepted_flows_round_trip(
            fields in prop::collection::vec(prop::sample::select(FIELDS), 0..6),
            actions in prop::collection::vec(prop::sample::select(ACTIONS), 1..4),
        ) {
            let text = format!("{}{}actions={}", fields.join(","), if fields.is_empty() { "" } else { "," }, actions.join(","));
            if let Ok(spec) = parse_flow(&text) {
                let printed = format_flow(&spec);
                let again = parse_flow(&printed);
                prop_assert_eq!(again.as_ref(), Ok(&spec), "{} -> {}", text, printed);
            }
        }

        /// Garbage never panics the parser; it gets an error with a message.
        #[test]
        fn garbage_is_an_error_not_a_panic(text in "[ -~]{0,60}") {
            if let Err(e) = parse_flow(&text) {
                prop_assert!(!e.to_string().is_empty());
            }
            let _ = parse_selector(&text);
            let _ = parse_flow_key(&text);
        }
    }
}
