//! The kernel back end's per-upcall encoding work: turning a megaflow into OVS_KEY_ATTR_*
//! key + mask bytes and our actions into OVS_ACTION_ATTR_* bytes, and decoding the key of
//! an OVS_PACKET_CMD_MISS. These bound the slow path's CPU cost per upcall.

use criterion::{black_box, criterion_group, criterion_main, Criterion};

use rvswitch::dpif::{DpAction, Masked, SetField};
use rvswitch::dpif_netlink::action::encode_actions;
use rvswitch::dpif_netlink::attr::emit_all;
use rvswitch::dpif_netlink::key_attr::parse_key_attrs;
use rvswitch::dpif_netlink::key_codec::{decode_attrs, encode_key, encode_match};
use rvswitch::packet::{FlowKey, FlowMask};

fn udp_key() -> FlowKey {
    FlowKey {
        in_port: 3,
        dl_src: [2, 0, 0, 0, 0, 1],
        dl_dst: [2, 0, 0, 0, 0, 2],
        dl_type: 0x0800,
        nw_src: 0x0a00_0001,
        nw_dst: 0x0a00_0002,
        nw_proto: 17,
        nw_ttl: 64,
        tp_src: 5000,
        tp_dst: 53,
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let key = udp_key();
    let mut mask = FlowMask::default();
    mask.0.in_port = u32::MAX;
    mask.0.recirc_id = u32::MAX;
    mask.0.dl_dst = [0xff; 6];
    mask.0.dl_type = u16::MAX;
    mask.0.nw_dst = u32::MAX;
    c.bench_function("netlink/encode_megaflow_key_and_mask", |b| {
        b.iter(|| {
            let (k, m) = encode_match(black_box(&key), black_box(&mask));
            (emit_all(&k), emit_all(&m))
        })
    });
    let actions = vec![
        DpAction::Set(SetField::Ipv4 {
            src: Masked {
                value: 1,
                mask: u32::MAX,
            },
            dst: Masked::default(),
            tos: Masked::default(),
            ttl: Masked {
                value: 63,
                mask: 0xff,
            },
        }),
        DpAction::Output(1),
        DpAction::Output(2),
    ];
    c.bench_function("netlink/encode_actions", |b| {
        b.iter(|| emit_all(&encode_actions(black_box(&actions), 77).unwrap()))
    });
    let upcall_key = emit_all(&encode_key(&key));
    c.bench_function("netlink/decode_upcall_key", |b| {
        b.iter(|| decode_attrs(&parse_key_attrs(black_box(&upcall_key)).unwrap(), false).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
