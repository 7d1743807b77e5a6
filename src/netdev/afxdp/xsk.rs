//! An AF_XDP socket and its four rings, straight on the kernel ABI (`<linux/if_xdp.h>`, whose
//! structs and constants the `libc` crate carries).
//!
//! We do this ourselves rather than through libxdp (xsk-rs) because every socket here
//! registers the process's one `FrameStore` region as its umem (see `packet::frames`):
//! libxdp allocates a umem per `xsk_umem`, and shares one only through the socket that
//! created it, which then stays bound to its device for as long as the umem lives. The
//! ring operations are small enough to inline into the poll loop, which the FFI calls
//! (`xsk_ring_cons__peek`, `xsk_prod_nb_free`, ...) could not be.
//!
//! A ring is a power-of-two array of entries plus a producer and a consumer index, both
//! free-running u32s, in memory shared with the kernel. The side that produces writes
//! entries, then publishes the producer index with release ordering; the consumer reads
//! the producer index with acquire ordering, reads entries, then publishes its own index.
//! Each side caches the other's index and re-reads it only when the cached value says the
//! ring is empty (or full): those reads are cross-core cache misses.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::umem_addr::STAGGERED_CHUNK;
use crate::packet::frames::{FrameStore, FRAME_SIZE};

/// `struct xdp_desc`: one rx or tx descriptor (offset in the umem, length, flags).
pub use libc::xdp_desc as XdpDesc;

/// A descriptor of nothing, to initialise scratch arrays with.
pub const EMPTY_DESC: XdpDesc = XdpDesc {
    addr: 0,
    len: 0,
    options: 0,
};

/// A ring's mapping; unmapped on drop.
struct RingMap {
    addr: NonNull<libc::c_void>,
    len: usize,
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: the mapping came from mmap with this length and nothing refers to it
        // any more (the ring owning it is being dropped).
        unsafe { libc::munmap(self.addr.as_ptr(), self.len) };
    }
}

/// One ring of entries of type `T`: its mapping and our cached indices.
struct Ring<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    entries: NonNull<T>,
    mask: u32,
    size: u32,
    /// Our own index (the one we publish).
    ours: u32,
    /// The kernel's index as last read.
    theirs: u32,
    _map: RingMap,
}

// SAFETY: the ring memory is owned by this value (its mapping); the kernel is the only
// other party, and it synchronises through the index words.
unsafe impl<T: Send> Send for Ring<T> {}

impl<T> Ring<T> {
    /// Entries on the ring right now, by both indices freshly read: a cross-core miss
    /// when the kernel's index moved on another core (accounting, and the tx ring after
    /// a kick, whose consumer index the kernel just wrote on this core).
    fn occupancy(&self) -> u32 {
        // SAFETY: the index words are in our mapping.
        let (p, c) = unsafe {
            (
                self.producer.as_ref().load(Ordering::Acquire),
                self.consumer.as_ref().load(Ordering::Acquire),
            )
        };
        p.wrapping_sub(c)
    }
}

/// A ring the kernel fills and we drain (rx, completion): its `theirs` is the kernel's
/// producer index.
pub struct ConsRing<T>(Ring<T>);

/// A ring we fill and the kernel drains (fill, tx): its `theirs` is the kernel's
/// consumer index.
pub struct ProdRing<T>(Ring<T>);

impl<T: Copy> ConsRing<T> {
    /// Entries the kernel has produced that we have not consumed (consumer side),
    /// reading the kernel's index only when the cached one shows fewer than `want`.
    #[inline(always)]
    fn available(&mut self, want: u32) -> u32 {
        if self.behind() < want {
            // SAFETY: the index word is in our mapping.
            self.0.theirs = unsafe { self.0.producer.as_ref() }.load(Ordering::Acquire);
        }
        self.behind()
    }

    /// Consumes up to `out.len()` entries into `out`; returns how many.
    #[inline(always)]
    pub fn consume(&mut self, out: &mut [T]) -> usize {
        self.consume_refreshing_below(out, out.len() as u32)
    }

    /// As `consume`, but reads the kernel's index only when fewer than `below` entries
    /// are known to be there: a ring the kernel writes from another core costs a
    /// cross-core miss per look, and a part batch already known is worth taking as is.
    #[inline(always)]
    pub fn consume_refreshing_below(&mut self, out: &mut [T], below: u32) -> usize {
        let n = self.available(below).min(out.len() as u32);
        for (i, slot) in out.iter_mut().enumerate().take(n as usize) {
            let idx = self.0.ours.wrapping_add(i as u32) & self.0.mask;
            // SAFETY: idx <= mask < size entries in the mapping; the kernel produced it.
            *slot = unsafe { self.0.entries.as_ptr().add(idx as usize).read() };
        }
        if n > 0 {
            self.0.ours = self.0.ours.wrapping_add(n);
            // SAFETY: the index word is in our mapping.
            unsafe { self.0.consumer.as_ref() }.store(self.0.ours, Ordering::Release);
        }
        n as usize
    }

    /// Entry `i` past the ones consumed so far, if the kernel has produced it (consumer
    /// side; as far as the last look at its index knows). Does not consume it.
    #[inline(always)]
    pub fn peek(&self, i: u32) -> Option<T> {
        if i >= self.behind() {
            return None;
        }
        let idx = self.0.ours.wrapping_add(i) & self.0.mask;
        // SAFETY: produced and not yet consumed, so the kernel leaves the slot alone.
        Some(unsafe { self.0.entries.as_ptr().add(idx as usize).read() })
    }

    /// Entries on the ring right now (both indices freshly read, see `Ring::occupancy`).
    pub fn occupancy(&self) -> u32 {
        self.0.occupancy()
    }

    /// Entries past the consumed ones as of the last look at the kernel's index (no
    /// fresh read): a lower bound on how many the kernel produced after each entry
    /// consumed so far, at no cost.
    #[inline(always)]
    pub fn behind(&self) -> u32 {
        self.0.theirs.wrapping_sub(self.0.ours)
    }
}

impl<T: Copy> ProdRing<T> {
    /// Free slots (producer side), re-reading the kernel's index when fewer than
    /// `want` look free.
    #[inline(always)]
    pub fn free(&mut self, want: u32) -> u32 {
        let mut n = self.0.size - self.0.ours.wrapping_sub(self.0.theirs);
        if n < want {
            // SAFETY: the index word is in our mapping.
            self.0.theirs = unsafe { self.0.consumer.as_ref() }.load(Ordering::Acquire);
            n = self.0.size - self.0.ours.wrapping_sub(self.0.theirs);
        }
        n
    }

    /// Produces as many of `items` as fit; returns how many.
    #[inline(always)]
    pub fn produce(&mut self, items: &[T]) -> usize {
        let n = self.free(items.len() as u32).min(items.len() as u32);
        for (i, item) in items.iter().take(n as usize).enumerate() {
            let idx = self.0.ours.wrapping_add(i as u32) & self.0.mask;
            // SAFETY: idx < size entries in the mapping; the slot is free (not yet
            // published to the kernel).
            unsafe { self.0.entries.as_ptr().add(idx as usize).write(*item) };
        }
        if n > 0 {
            self.0.ours = self.0.ours.wrapping_add(n);
            // SAFETY: the index word is in our mapping.
            unsafe { self.0.producer.as_ref() }.store(self.0.ours, Ordering::Release);
        }
        n as usize
    }

    /// Whether the kernel asks to be woken (need_wakeup) for this ring.
    #[inline(always)]
    pub fn needs_wakeup(&self) -> bool {
        // SAFETY: the flags word is in our mapping.
        unsafe { self.0.flags.as_ref() }.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Entries on the ring right now (both indices freshly read, see `Ring::occupancy`).
    pub fn occupancy(&self) -> u32 {
        self.0.occupancy()
    }

    /// Ring size in entries.
    pub fn size(&self) -> u32 {
        self.0.size
    }
}

/// How to bind.
#[derive(Clone, Copy, Debug)]
pub struct BindOptions {
    /// Zero-copy (`XDP_ZEROCOPY`) rather than copy (`XDP_COPY`).
    pub zero_copy: bool,
    /// Fill and rx ring slots.
    pub rx_ring: u32,
    /// Tx and completion ring slots.
    pub tx_ring: u32,
    /// Register unaligned chunks so fill addresses can be staggered (see `umem_addr`);
    /// a kernel that refuses gets aligned ones.
    pub stagger: bool,
}

/// A bound AF_XDP socket, split into the parts its two users own.
pub struct XskSocket {
    /// The socket (closing it unbinds the queue once the rings are unmapped too).
    pub fd: OwnedFd,
    /// Rx ring (descriptors of received frames).
    pub rx: ConsRing<XdpDesc>,
    /// Fill ring (frame addresses for the kernel to receive into).
    pub fill: ProdRing<u64>,
    /// Tx ring (descriptors to transmit).
    pub tx: ProdRing<XdpDesc>,
    /// Completion ring (addresses of transmitted frames).
    pub comp: ConsRing<u64>,
    /// The umem has unaligned chunks: fill addresses are staggered (`umem_addr`).
    pub staggered: bool,
    /// One `sendto` may transmit the whole tx ring (`XDP_MAX_TX_SKB_BUDGET` took).
    pub tx_budget_raised: bool,
}

/// A step of socket setup that failed, with the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct XskError {
    what: &'static str,
    #[source]
    source: std::io::Error,
}

impl XskError {
    fn last(what: &'static str) -> Self {
        XskError {
            what,
            source: std::io::Error::last_os_error(),
        }
    }

    /// Whether the queue is still held by a socket closed a moment ago (the kernel
    /// releases it from deferred work): worth retrying shortly.
    pub fn is_busy(&self) -> bool {
        self.what == "binding" && self.source.raw_os_error() == Some(libc::EBUSY)
    }
}

fn sockopt<T>(fd: RawFd, opt: libc::c_int, val: &T, what: &'static str) -> Result<(), XskError> {
    // SAFETY: `val` is a readable value of its type's size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_XDP,
            opt,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(XskError::last(what));
    }
    Ok(())
}

/// Reads socket option `opt` into `val`; `false` if the kernel refuses.
fn getsockopt<T>(fd: RawFd, opt: libc::c_int, val: &mut T) -> bool {
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `val` is writable for `len` bytes.
    let r = unsafe { libc::getsockopt(fd, libc::SOL_XDP, opt, (val as *mut T).cast(), &mut len) };
    r == 0
}

fn map_ring<T>(
    fd: RawFd,
    off: &libc::xdp_ring_offset,
    size: u32,
    pgoff: libc::off_t,
    what: &'static str,
) -> Result<Ring<T>, XskError> {
    let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
    // SAFETY: mapping the socket's ring at the offset the ABI names for it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd,
            pgoff,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(XskError::last(what));
    }
    let base = p.cast::<u8>();
    let at = |o: u64| {
        // SAFETY: the kernel's offsets are inside the mapping it sized.
        NonNull::new(unsafe { base.add(o as usize) }).expect("inside a non-null mapping")
    };
    let map = RingMap {
        addr: NonNull::new(p).expect("mmap returned a non-null address"),
        len,
    };
    let producer = at(off.producer).cast::<AtomicU32>();
    let consumer = at(off.consumer).cast::<AtomicU32>();
    // Producer rings start with every slot free (theirs = consumer), consumer rings
    // with none available (theirs = producer): both indices start at 0 either way.
    // SAFETY: index words inside the mapping.
    let (p0, c0) = unsafe {
        (
            producer.as_ref().load(Ordering::Acquire),
            consumer.as_ref().load(Ordering::Acquire),
        )
    };
    debug_assert_eq!(p0, c0);
    Ok(Ring {
        producer,
        consumer,
        flags: at(off.flags).cast::<AtomicU32>(),
        entries: at(off.desc).cast::<T>(),
        mask: size - 1,
        size,
        ours: p0,
        theirs: c0,
        _map: map,
    })
}

impl XskSocket {
    /// Creates a socket, registers `store`'s region as its umem, sets up and maps its
    /// rings, and binds it to queue `qid` of `ifindex`. Errors name the step.
    pub fn bind(
        store: &FrameStore,
        ifindex: u32,
        qid: u32,
        opts: BindOptions,
    ) -> Result<XskSocket, XskError> {
        // SAFETY: plain socket creation.
        let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(XskError::last("creating the AF_XDP socket"));
        }
        // SAFETY: a descriptor we just created and own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        let staggered = opts.stagger && register_umem(s, store, true).is_ok();
        if !staggered {
            register_umem(s, store, false)?;
        }
        sockopt(
            s,
            libc::XDP_UMEM_FILL_RING,
            &opts.rx_ring,
            "sizing the fill ring",
        )?;
        sockopt(
            s,
            libc::XDP_UMEM_COMPLETION_RING,
            &opts.tx_ring,
            "sizing the completion ring",
        )?;
        sockopt(s, libc::XDP_RX_RING, &opts.rx_ring, "sizing the rx ring")?;
        sockopt(s, libc::XDP_TX_RING, &opts.tx_ring, "sizing the tx ring")?;
        // Let one copy-mode `sendto` transmit the whole ring rather than 32 descriptors
        // (Linux 6.17 and later; older kernels keep 32 and `XskQueue::flush` kicks again).
        let tx_budget_raised = sockopt(
            s,
            XDP_MAX_TX_SKB_BUDGET,
            &opts.tx_ring,
            "raising the tx budget",
        )
        .is_ok();
        // SAFETY: an integer-only C struct, for which all zeros is a valid value.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        if !getsockopt(s, libc::XDP_MMAP_OFFSETS, &mut off) {
            return Err(XskError::last("reading the ring offsets"));
        }
        let rx = map_ring(
            s,
            &off.rx,
            opts.rx_ring,
            libc::XDP_PGOFF_RX_RING as libc::off_t,
            "mapping the rx ring",
        )?;
        let tx = map_ring(
            s,
            &off.tx,
            opts.tx_ring,
            libc::XDP_PGOFF_TX_RING as libc::off_t,
            "mapping the tx ring",
        )?;
        let fill = map_ring(
            s,
            &off.fr,
            opts.rx_ring,
            libc::XDP_UMEM_PGOFF_FILL_RING as libc::off_t,
            "mapping the fill ring",
        )?;
        let comp = map_ring(
            s,
            &off.cr,
            opts.tx_ring,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING as libc::off_t,
            "mapping the completion ring",
        )?;
        let sa = libc::sockaddr_xdp {
            sxdp_family: libc::AF_XDP as u16,
            sxdp_flags: libc::XDP_USE_NEED_WAKEUP
                | if opts.zero_copy {
                    libc::XDP_ZEROCOPY
                } else {
                    libc::XDP_COPY
                },
            sxdp_ifindex: ifindex,
            sxdp_queue_id: qid,
            sxdp_shared_umem_fd: 0,
        };
        // SAFETY: `sa` is a valid sockaddr_xdp of the size passed.
        let r = unsafe {
            libc::bind(
                s,
                (&sa as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(XskError::last("binding"));
        }
        Ok(XskSocket {
            fd,
            rx: ConsRing(rx),
            fill: ProdRing(fill),
            tx: ProdRing(tx),
            comp: ConsRing(comp),
            staggered,
            tx_budget_raised,
        })
    }
}

/// `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17's `<linux/if_xdp.h>`; older libc crates lack it):
/// how many descriptors one copy-mode `sendto` transmits, 32 by default, up to the tx
/// ring's size.
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;

/// Registers `store`'s region as the socket's umem, with unaligned chunks (a slot minus
/// the largest stagger, `umem_addr::STAGGERED_CHUNK`) or aligned 4 KiB ones.
fn register_umem(s: RawFd, store: &FrameStore, unaligned: bool) -> Result<(), XskError> {
    let reg = libc::xdp_umem_reg {
        addr: store.base().as_ptr() as u64,
        len: store.len() as u64,
        chunk_size: if unaligned {
            STAGGERED_CHUNK as u32
        } else {
            FRAME_SIZE as u32
        },
        headroom: 0,
        flags: if unaligned {
            libc::XDP_UMEM_UNALIGNED_CHUNK_FLAG
        } else {
            0
        },
        tx_metadata_len: 0,
    };
    sockopt(
        s,
        libc::XDP_UMEM_REG,
        &reg,
        "registering the frame region as umem",
    )
}

/// The socket's kernel counters (`XDP_STATISTICS`: frames dropped with the rx ring full
/// or for other reasons, invalid descriptors), `None` if the kernel refuses.
pub fn xdp_statistics(fd: RawFd) -> Option<libc::xdp_statistics> {
    // SAFETY: an integer-only C struct, for which all zeros is a valid value.
    let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
    getsockopt(fd, libc::XDP_STATISTICS, &mut st).then_some(st)
}
