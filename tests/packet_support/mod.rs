//! Shared frame parts and the parse helper of the packet parser tests.
#![allow(dead_code)]

use rvswitch::packet::parse::flow_extract;
use rvswitch::packet::wire::build::{ipv4_frame, L4};
use rvswitch::packet::wire::{ethernet, ipv4, ipv6, udp};
use rvswitch::packet::{FlowKey, PacketBuf};

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
pub const V6_A: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa];
pub const V6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xb];

pub fn eth() -> ethernet::Repr {
    ethernet::Repr {
        dst: MAC_B,
        src: MAC_A,
        ..Default::default()
    }
}
pub fn ip4() -> ipv4::Repr {
    ipv4::Repr {
        src: 0x0a00_0001,
        dst: 0x0a00_0002,
        ttl: 64,
        tos: 0x2e,
        ..Default::default()
    }
}
pub fn ip6() -> ipv6::Repr {
    ipv6::Repr {
        src: V6_A,
        dst: V6_B,
        hop_limit: 255,
        traffic_class: 0x48,
        flow_label: 0x12345,
        ..Default::default()
    }
}
pub fn parse(f: &[u8]) -> (FlowKey, PacketBuf) {
    let mut p = PacketBuf::from_frame(f);
    p.meta.in_port = 7;
    let mut k = FlowKey::default();
    flow_extract(&mut p, &mut k);
    (k, p)
}

/// The frame most parser tests start from: `eth()` / `ip4()` / UDP port 1 to port 2,
/// no payload.
pub fn udp4_frame() -> Vec<u8> {
    let udp = udp::Repr {
        src_port: 1,
        dst_port: 2,
        payload_len: 0,
    };
    ipv4_frame(&eth(), &ip4(), &L4::Udp(udp, b"")).unwrap()
}
