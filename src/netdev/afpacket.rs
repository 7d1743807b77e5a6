//! AF_PACKET ports, for interfaces where AF_XDP can't run: one packet socket with
//! memory-mapped TPACKET_V2 rx and tx rings.
//!
//! Receive walks the rx ring (no syscall at all: the kernel marks frames `TP_STATUS_USER`),
//! copying each frame into a `PacketBuf` and handing the slot back. Transmit writes frames
//! into tx ring slots and marks them `TP_STATUS_SEND_REQUEST`; `flush` kicks the kernel
//! with one `sendto` for everything queued. The socket ignores its own outgoing frames
//! (`PACKET_IGNORE_OUTGOING`) and keeps the interface promiscuous while it exists
//! (`linux::PromiscGuard`).
//!
//! Options: `qdisc_bypass` = true | false (default false): send straight to the driver,
//! skipping the interface's qdisc (`PACKET_QDISC_BYPASS`).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::linux::{self, setsockopt};
use super::{Netdev, NetdevError, Rxq, Txq};
use crate::dpif::{PortSpec, PortStats};
use crate::packet::buffer::MAX_FRAME;
use crate::packet::{PacketBatch, PacketPool, MAX_BURST};

/// Bytes per ring slot (one page: header, address and the frame).
const SLOT_SIZE: usize = 4096;
/// Receive ring slots.
const RX_SLOTS: usize = 1024;
/// Transmit ring slots.
const TX_SLOTS: usize = 512;
/// Where frame data starts in a V2 tx slot: TPACKET2_HDRLEN - sizeof(sockaddr_ll).
const TX_DATA_OFFSET: usize = 32;
/// `TP_STATUS_VLAN_TPID_VALID`.
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
/// `TP_STATUS_WRONG_FORMAT`: the kernel rejected a tx slot.
const TP_STATUS_WRONG_FORMAT: u32 = 1 << 2;

/// The mapped rings, unmapped on drop.
struct RingMap {
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every slot is accessed only by the holder of
// the rx or tx mutex (plus the kernel, synchronised through the slot status word).
unsafe impl Send for RingMap {}
// SAFETY: see above.
unsafe impl Sync for RingMap {}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` describe a mapping we created and nobody uses any more.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

impl RingMap {
    /// The status word of a slot, shared with the kernel.
    fn status(&self, slot_off: usize) -> &AtomicU32 {
        // SAFETY: `slot_off` is a slot start inside the mapping (page aligned), and
        // tp_status is the first u32 of the slot header.
        unsafe { &*(self.base.add(slot_off) as *const AtomicU32) }
    }

    fn header(&self, slot_off: usize) -> *mut libc::tpacket2_hdr {
        // SAFETY: as above; the header lies within the slot.
        unsafe { self.base.add(slot_off).cast() }
    }
}

#[derive(Default)]
struct Counters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    rx_dropped: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    tx_dropped: AtomicU64,
    tx_errors: AtomicU64,
    kernel_drops: AtomicU64,
}

struct PacketSocket {
    name: String,
    fd: OwnedFd,
    map: RingMap,
    rx_head: Mutex<usize>,
    tx: Mutex<TxState>,
    rx_open: AtomicBool,
    counters: Counters,
    _promisc: linux::PromiscGuard,
}

struct TxState {
    head: usize,
    pending: usize,
}

/// An AF_PACKET port on a Linux interface.
pub struct AfPacketNetdev {
    sock: Arc<PacketSocket>,
}

impl AfPacketNetdev {
    /// Opens the port: socket, rings, promiscuous membership, bind, interface up. Errors
    /// name the device and the step that failed.
    pub fn open(spec: &PortSpec) -> Result<Self, NetdevError> {
        let name = spec.name.as_str();
        let mut qdisc_bypass = false;
        for (k, v) in &spec.options {
            match (k.as_str(), v.as_str()) {
                ("qdisc_bypass", "true") => qdisc_bypass = true,
                ("qdisc_bypass", "false") => qdisc_bypass = false,
                ("qdisc_bypass", other) => {
                    return Err(NetdevError::BadOption(format!(
                        "afpacket port {name}: qdisc_bypass={other}: expected true or false"
                    )))
                }
                (other, _) => {
                    tracing::warn!(port = name, option = other, "afpacket: ignoring option")
                }
            }
        }
        let ifindex = linux::ifindex(name)?;
        let step = |what: &str| {
            let source = std::io::Error::last_os_error();
            NetdevError::Sys {
                op: format!("afpacket port {name}: {what}"),
                source,
            }
        };
        let io_step = |what: &str, source: std::io::Error| NetdevError::Sys {
            op: format!("afpacket port {name}: {what}"),
            source,
        };

        // Protocol 0 until bound, so nothing is queued from other interfaces meanwhile.
        // SAFETY: plain socket(2) call; the result is checked.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(step("creating the packet socket"));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sol = libc::SOL_PACKET;
        setsockopt(
            &fd,
            sol,
            libc::PACKET_VERSION,
            &libc::tpacket_versions::TPACKET_V2,
        )
        .map_err(|e| io_step("selecting TPACKET_V2", e))?;
        setsockopt(&fd, sol, libc::PACKET_IGNORE_OUTGOING, &1i32)
            .map_err(|e| io_step("setting PACKET_IGNORE_OUTGOING", e))?;
        // A frame the kernel can't send is marked TP_STATUS_WRONG_FORMAT and skipped,
        // instead of stalling the whole tx ring.
        setsockopt(&fd, sol, libc::PACKET_LOSS, &1i32)
            .map_err(|e| io_step("setting PACKET_LOSS", e))?;
        if qdisc_bypass {
            setsockopt(&fd, sol, libc::PACKET_QDISC_BYPASS, &1i32)
                .map_err(|e| io_step("setting PACKET_QDISC_BYPASS", e))?;
        }
        let ring = |slots: usize| libc::tpacket_req {
            tp_block_size: SLOT_SIZE as u32,
            tp_block_nr: slots as u32,
            tp_frame_size: SLOT_SIZE as u32,
            tp_frame_nr: slots as u32,
        };
        setsockopt(&fd, sol, libc::PACKET_RX_RING, &ring(RX_SLOTS))
            .map_err(|e| io_step("setting up the rx ring", e))?;
        setsockopt(&fd, sol, libc::PACKET_TX_RING, &ring(TX_SLOTS))
            .map_err(|e| io_step("setting up the tx ring", e))?;
        let len = (RX_SLOTS + TX_SLOTS) * SLOT_SIZE;
        // SAFETY: maps the rings the kernel just allocated for this socket.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(step("mapping the rings"));
        }
        let map = RingMap {
            base: base.cast(),
            len,
        };
        let promisc = linux::PromiscGuard::new(ifindex)
            .map_err(|e| io_step("enabling promiscuous mode", e))?;
        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll for the call.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(step("binding to the interface"));
        }
        linux::set_up(name)?;
        tracing::info!(port = name, qdisc_bypass, "afpacket port opened");
        Ok(AfPacketNetdev {
            sock: Arc::new(PacketSocket {
                name: name.to_string(),
                fd,
                map,
                rx_head: Mutex::new(0),
                tx: Mutex::new(TxState {
                    head: 0,
                    pending: 0,
                }),
                rx_open: AtomicBool::new(false),
                counters: Counters::default(),
                _promisc: promisc,
            }),
        })
    }
}

impl PacketSocket {
    fn recv(&self, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize {
        let mut head = self.rx_head.lock().unwrap_or_else(|e| e.into_inner());
        let (mut n, mut bytes, mut dropped) = (0usize, 0u64, 0u64);
        while batch.len() < MAX_BURST {
            let off = *head * SLOT_SIZE;
            let status = self.map.status(off).load(Ordering::Acquire);
            if status & libc::TP_STATUS_USER == 0 {
                break;
            }
            // SAFETY: the kernel handed this slot to us (TP_STATUS_USER) and will not
            // touch it until we give it back below.
            let hdr = unsafe { &*self.map.header(off) };
            let (mac, snap, len) = (
                hdr.tp_mac as usize,
                hdr.tp_snaplen as usize,
                hdr.tp_len as usize,
            );
            let vlan = status & libc::TP_STATUS_VLAN_VALID != 0;
            let tag_len = if vlan { 4 } else { 0 };
            if snap < len || snap < 14 || mac + snap > SLOT_SIZE || snap + tag_len > MAX_FRAME {
                dropped += 1;
            } else {
                // SAFETY: tp_mac + tp_snaplen lies inside the slot (checked above).
                let frame =
                    unsafe { std::slice::from_raw_parts(self.map.base.add(off + mac), snap) };
                let mut p = pool.get();
                let space = p.rx_space();
                if vlan {
                    // The kernel took the 802.1Q tag out of the frame; put it back so
                    // the frame is what was on the wire.
                    let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 {
                        hdr.tp_vlan_tpid
                    } else {
                        0x8100
                    };
                    space[..12].copy_from_slice(&frame[..12]);
                    space[12..14].copy_from_slice(&tpid.to_be_bytes());
                    space[14..16].copy_from_slice(&hdr.tp_vlan_tci.to_be_bytes());
                    space[16..snap + 4].copy_from_slice(&frame[12..]);
                } else {
                    space[..snap].copy_from_slice(frame);
                }
                p.set_len(snap + tag_len);
                bytes += (snap + tag_len) as u64;
                batch.pkts.push(p);
                n += 1;
            }
            self.map
                .status(off)
                .store(libc::TP_STATUS_KERNEL, Ordering::Release);
            *head = (*head + 1) % RX_SLOTS;
        }
        let c = &self.counters;
        if n > 0 {
            c.rx_packets.fetch_add(n as u64, Ordering::Relaxed);
            c.rx_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        if dropped > 0 {
            c.rx_dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        n
    }

    fn send(&self, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize {
        let mut tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let (mut queued, mut bytes, mut dropped, mut errors) = (0usize, 0u64, 0u64, 0u64);
        for p in batch.pkts.drain(..) {
            let frame = p.data();
            let off = (RX_SLOTS + tx.head) * SLOT_SIZE;
            let status = self.map.status(off).load(Ordering::Acquire);
            if status == TP_STATUS_WRONG_FORMAT {
                errors += 1;
            }
            let free = status == libc::TP_STATUS_AVAILABLE || status == TP_STATUS_WRONG_FORMAT;
            if !free || frame.is_empty() || frame.len() > SLOT_SIZE - TX_DATA_OFFSET {
                dropped += 1;
                pool.put(p);
                continue;
            }
            // SAFETY: the slot is available (the kernel is done with it) and only the
            // holder of the tx lock writes tx slots; the frame fits (checked above).
            unsafe {
                let dst = self.map.base.add(off + TX_DATA_OFFSET);
                std::ptr::copy_nonoverlapping(frame.as_ptr(), dst, frame.len());
                (*self.map.header(off)).tp_len = frame.len() as u32;
            }
            fence(Ordering::Release);
            self.map
                .status(off)
                .store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
            tx.head = (tx.head + 1) % TX_SLOTS;
            tx.pending += 1;
            queued += 1;
            bytes += frame.len() as u64;
            pool.put(p);
        }
        let c = &self.counters;
        c.tx_packets.fetch_add(queued as u64, Ordering::Relaxed);
        c.tx_bytes.fetch_add(bytes, Ordering::Relaxed);
        if dropped > 0 {
            c.tx_dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        if errors > 0 {
            c.tx_errors.fetch_add(errors, Ordering::Relaxed);
        }
        queued
    }

    fn flush(&self) {
        let mut tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        if tx.pending == 0 {
            return;
        }
        // SAFETY: a zero-length sendto on our socket: "transmit the ring".
        let r = crate::pmd::cycles::in_syscall(|| unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        });
        if r >= 0 {
            tx.pending = 0;
        } else {
            let e = std::io::Error::last_os_error().raw_os_error();
            // EAGAIN/ENOBUFS: the device is busy; the frames stay queued for the next
            // flush. Anything else is counted.
            if !matches!(
                e,
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) | Some(libc::EINTR)
            ) {
                self.counters.tx_errors.fetch_add(1, Ordering::Relaxed);
                tx.pending = 0;
            }
        }
    }

    /// Reads (and so resets) the kernel's PACKET_STATISTICS, accumulating its drops.
    fn kernel_drops(&self) -> u64 {
        let mut st = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `st` is a writable tpacket_stats of `len` bytes.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        let c = &self.counters.kernel_drops;
        if r == 0 {
            c.fetch_add(st.tp_drops as u64, Ordering::Relaxed);
        }
        c.load(Ordering::Relaxed)
    }
}

struct AfPacketRxq {
    sock: Arc<PacketSocket>,
}

impl Rxq for AfPacketRxq {
    fn recv(
        &mut self,
        batch: &mut PacketBatch,
        pool: &mut PacketPool,
    ) -> Result<usize, NetdevError> {
        Ok(self.sock.recv(batch, pool))
    }

    fn qid(&self) -> usize {
        0
    }
}

impl Drop for AfPacketRxq {
    fn drop(&mut self) {
        self.sock.rx_open.store(false, Ordering::Release);
    }
}

struct AfPacketTxq {
    sock: Arc<PacketSocket>,
}

impl Txq for AfPacketTxq {
    fn send(&mut self, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize {
        self.sock.send(batch, pool)
    }

    fn flush(&mut self) {
        self.sock.flush()
    }
}

impl Netdev for AfPacketNetdev {
    fn name(&self) -> &str {
        &self.sock.name
    }

    fn netdev_type(&self) -> &'static str {
        "afpacket"
    }

    fn n_rxq(&self) -> usize {
        1
    }

    fn open_rxq(&self, qid: usize) -> Result<Box<dyn Rxq>, NetdevError> {
        if qid != 0 {
            return Err(NetdevError::NoSuchQueue { qid, n: 1 });
        }
        if self.sock.rx_open.swap(true, Ordering::AcqRel) {
            return Err(NetdevError::BadOption(format!(
                "afpacket port {}: rx queue 0 is already open",
                self.sock.name
            )));
        }
        Ok(Box::new(AfPacketRxq {
            sock: self.sock.clone(),
        }))
    }

    fn open_txq(&self, _thread_idx: usize) -> Result<Box<dyn Txq>, NetdevError> {
        Ok(Box::new(AfPacketTxq {
            sock: self.sock.clone(),
        }))
    }

    fn mac(&self) -> [u8; 6] {
        linux::hw_addr(&self.sock.name).unwrap_or([0; 6])
    }

    fn mtu(&self) -> u32 {
        linux::mtu(&self.sock.name).unwrap_or(0)
    }

    fn is_up(&self) -> bool {
        linux::is_up(&self.sock.name)
    }

    fn stats(&self) -> PortStats {
        let c = &self.sock.counters;
        // The kernel drops a frame when the socket's rx ring has no free slot.
        let ring_full = self.sock.kernel_drops();
        PortStats {
            rx_packets: c.rx_packets.load(Ordering::Relaxed),
            rx_bytes: c.rx_bytes.load(Ordering::Relaxed),
            tx_packets: c.tx_packets.load(Ordering::Relaxed),
            tx_bytes: c.tx_bytes.load(Ordering::Relaxed),
            rx_dropped: c.rx_dropped.load(Ordering::Relaxed) + ring_full,
            rx_queue_full: ring_full,
            tx_dropped: c.tx_dropped.load(Ordering::Relaxed),
            tx_errors: c.tx_errors.load(Ordering::Relaxed),
            ..PortStats::default()
        }
    }
}
