//! `PacketBuf` and `PacketPool` tests: metadata reset, alignment, gaps, lent frames, headroom.

use super::*;
use crate::packet::meta::TunnelMeta;

#[test]
fn buffers_come_out_of_the_pool_with_default_metadata() {
    let mut pool = PacketPool::new(1);
    let mut p = pool.get();
    p.meta.in_port = 7;
    p.meta.has_hash = true;
    p.meta.hash = 99;
    p.meta.set_tunnel(TunnelMeta {
        tun_id: 5000,
        ipv4_dst: 0x0a00_0001,
        ..Default::default()
    });
    p.meta.l3_ofs = 14;
    pool.put(p);
    let p = pool.get();
    let d = PacketMeta::default();
    assert_eq!(
        (p.meta.in_port, p.meta.has_hash, p.meta.hash, p.meta.l3_ofs),
        (d.in_port, d.has_hash, d.hash, d.l3_ofs)
    );
    assert_eq!(p.meta.tunnel(), d.tunnel(), "no tunnel metadata left over");
    assert!(!p.meta.is_tunneled());
    assert_eq!(p.meta, d);
}

#[test]
fn pool_buffers_are_line_aligned() {
    let mut pool = PacketPool::new(4);
    let p = pool.get();
    assert_eq!(
        (&*p.0 as *const PacketBody as usize) % LINE,
        0,
        "line-aligned"
    );
    pool.put(p);
    assert_eq!(pool.available(), 4);
}

#[test]
fn gap_insert_and_remove_round_trip() {
    let frame: Vec<u8> = (0u8..60).collect();
    let mut p = PacketBuf::from_frame(&frame);
    assert!(p.insert_gap(12, 4));
    assert_eq!(p.len(), 64);
    assert_eq!(&p.data()[..12], &frame[..12]);
    assert_eq!(&p.data()[16..], &frame[12..]);
    assert!(p.remove_gap(12, 4));
    assert_eq!(p.data(), &frame[..]);
    assert!(!p.remove_gap(60, 4));
}

#[test]
fn a_lent_frame_is_used_in_place_and_handed_back() {
    // A private region (not the process's store), so this test owns every frame.
    let store = FrameStore::map(512).expect("a 2 MiB frame region");
    let mut p = PacketBuf::new();
    assert!(
        !p.lend_frame(&store, 512, HEADROOM, 60, false),
        "no frame 512"
    );
    assert!(
        !p.lend_frame(&store, 3, HEADROOM, MAX_FRAME + 1, false),
        "past the frame"
    );
    assert!(
        !p.lent_frame_is_cold(),
        "a refused lend leaves the buffer alone"
    );
    assert!(p.lend_frame(&store, 3, HEADROOM, 60, true));
    assert!(p.lent_frame_is_cold());
    p.data_mut().fill(0xab);
    // SAFETY: frame 3 of a region only this test uses; reading after the writes.
    let in_frame = unsafe { *store.frame_ptr(3).as_ptr().add(HEADROOM + 59) };
    assert_eq!(in_frame, 0xab, "the bytes are the frame's, not a copy");
    // The frame's headroom serves pushes as the heap buffer's does.
    assert!(p.push_front(4).is_some());
    assert_eq!(p.lent_frame(), Some((3, HEADROOM - 4, 64)));
    let mut pool = PacketPool::new(0);
    pool.put(p);
    assert_eq!(
        pool.cached_frames(),
        1,
        "put keeps the frame for the next fill"
    );
    let mut p = pool.get();
    assert_eq!(
        p.lent_frame(),
        None,
        "the buffer is back on its heap storage"
    );
    assert!(!p.lent_frame_is_cold(), "nor cold");
    p.set_data(&[1, 2, 3]);
    assert_eq!(p.data(), &[1, 2, 3]);
    // Not the process's store: take the cached frame back before the pool drops.
    assert_eq!(pool.frames.pop(), Some(3));
}

#[test]
fn headroom_is_bounded() {
    let mut p = PacketBuf::from_frame(&[0u8; 10]);
    assert!(p.push_front(HEADROOM).is_some());
    assert!(p.push_front(1).is_none());
}
