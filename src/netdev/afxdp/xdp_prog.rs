//! The XDP program that steers every frame of a bound queue into its AF_XDP socket.
//!
//! We load it ourselves (through the `bpf(2)` system call) instead of letting libxdp do
//! it, and attach it with a BPF link rather than a netlink attachment: a link belongs to
//! its file descriptor, so the kernel detaches the program when the port is dropped *and*
//! when the process exits or crashes. No pinned objects, no bpffs, nothing left on the
//! interface after us.
//!
//! The program is five instructions, equivalent to
//! `return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);`: queues without a
//! socket in the map go to the kernel stack as before.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `enum bpf_cmd` values (`<linux/bpf.h>`).
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
/// `BPF_MAP_TYPE_XSKMAP`.
const MAP_TYPE_XSKMAP: u32 = 17;
/// `BPF_PROG_TYPE_XDP`.
const PROG_TYPE_XDP: u32 = 6;
/// `BPF_XDP` attach type.
const ATTACH_XDP: u32 = 37;
/// `BPF_FUNC_redirect_map`.
const FUNC_REDIRECT_MAP: i32 = 51;
/// `XDP_PASS`: what `bpf_redirect_map` returns when the queue has no socket.
const XDP_PASS: i32 = 2;
/// `offsetof(struct xdp_md, rx_queue_index)`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;
/// `sizeof(union bpf_attr)` on current kernels; larger is fine, the kernel checks the tail
/// is zero.
const ATTR_SIZE: usize = 144;

/// `XDP_FLAGS_SKB_MODE`: generic XDP, in the network stack after the skb is built.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP, in the driver.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// One `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy)]
struct BpfInsn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high nibble.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// `BPF_LDX | BPF_MEM | BPF_W`.
const LDX_MEM_W: u8 = 0x61;
/// `BPF_LD | BPF_DW | BPF_IMM` (two slots).
const LD_IMM64: u8 = 0x18;
/// `BPF_ALU64 | BPF_MOV | BPF_K`.
const MOV64_IMM: u8 = 0xb7;
/// `BPF_JMP | BPF_CALL`.
const CALL: u8 = 0x85;
/// `BPF_JMP | BPF_EXIT`.
const EXIT: u8 = 0x95;
/// `BPF_PSEUDO_MAP_FD`: the ld_imm64 immediate is a map file descriptor.
const PSEUDO_MAP_FD: u8 = 1;

/// An attribute block for `bpf(2)`, written field by field at the kernel's offsets.
struct Attr([u8; ATTR_SIZE]);

impl Attr {
    fn new() -> Self {
        Attr([0; ATTR_SIZE])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn call(&mut self, cmd: libc::c_long) -> std::io::Result<i64> {
        // SAFETY: the attribute block is a valid, zero-padded `union bpf_attr` of
        // ATTR_SIZE bytes; pointers inside it refer to memory live across the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                self.0.as_mut_ptr(),
                ATTR_SIZE as libc::c_uint,
            )
        };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: `fd` was just returned by bpf(2) and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// The redirect program and its socket map, attached to one interface once `attach` has
/// run. Dropping it detaches the program (the link is the only reference the kernel keeps).
///
/// Loading and attaching are separate steps so a port can bind its sockets and fill the
/// map *before* the program goes live: attached first, the program would pass frames to
/// the kernel stack (XDP_PASS on an empty map slot) until each socket is inserted, and a
/// bind that fails (zero-copy on veth) would cost a detach/re-attach that makes the
/// device drop frames while it switches.
pub struct XdpRedirect {
    map: OwnedFd,
    prog: OwnedFd,
    link: Option<OwnedFd>,
}

impl XdpRedirect {
    /// Loads the program with a socket map of `n_queues` entries, not yet attached. The
    /// error names the step that failed.
    pub fn load(n_queues: u32) -> Result<Self, String> {
        let map = Attr::new()
            .u32(0, MAP_TYPE_XSKMAP)
            .u32(4, 4) // key: u32 queue index
            .u32(8, 4) // value: u32 socket fd
            .u32(12, n_queues.max(1))
            .call(BPF_MAP_CREATE)
            .map(owned)
            .map_err(|e| format!("creating the XSKMAP: {e}"))?;

        let prog_insns = [
            insn(LDX_MEM_W, 2, 1, XDP_MD_RX_QUEUE_INDEX, 0),
            insn(LD_IMM64, 1, PSEUDO_MAP_FD, 0, map.as_raw_fd()),
            insn(0, 0, 0, 0, 0),
            insn(MOV64_IMM, 3, 0, 0, XDP_PASS),
            insn(CALL, 0, 0, 0, FUNC_REDIRECT_MAP),
            insn(EXIT, 0, 0, 0, 0),
        ];
        let license = c"GPL";
        let name = b"rvswitch_xsk\0\0\0\0";
        let mut log = vec![0u8; 4096];
        let load = |log_level: u32, log: &mut Vec<u8>| {
            let mut a = Attr::new();
            a.u32(0, PROG_TYPE_XDP)
                .u32(4, prog_insns.len() as u32)
                .u64(8, prog_insns.as_ptr() as u64)
                .u64(16, license.as_ptr() as u64)
                .u32(24, log_level)
                .u32(28, if log_level > 0 { log.len() as u32 } else { 0 })
                .u64(
                    32,
                    if log_level > 0 {
                        log.as_mut_ptr() as u64
                    } else {
                        0
                    },
                )
                .u32(68, ATTACH_XDP);
            a.0[48..64].copy_from_slice(name);
            a.call(BPF_PROG_LOAD).map(owned)
        };
        let prog = match load(0, &mut log) {
            Ok(p) => p,
            Err(e) => {
                // Reload with the verifier log so the error says why.
                let _ = load(1, &mut log);
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                return Err(format!(
                    "loading the XDP program: {e}; verifier: {}",
                    text.trim()
                ));
            }
        };

        Ok(XdpRedirect {
            map,
            prog,
            link: None,
        })
    }

    /// Attaches the loaded program to `ifindex` with `xdp_flags` (one of the
    /// `XDP_FLAGS_*_MODE`) through a BPF link.
    pub fn attach(&mut self, ifindex: u32, xdp_flags: u32) -> Result<(), String> {
        let link = Attr::new()
            .u32(0, self.prog.as_raw_fd() as u32)
            .u32(4, ifindex)
            .u32(8, ATTACH_XDP)
            .u32(12, xdp_flags)
            .call(BPF_LINK_CREATE)
            .map(owned)
            .map_err(|e| format!("attaching the XDP program: {e}"))?;
        self.link = Some(link);
        Ok(())
    }

    /// Steers queue `qid` to the AF_XDP socket `xsk_fd`.
    pub fn insert_socket(&self, qid: u32, xsk_fd: RawFd) -> Result<(), String> {
        let key = qid;
        let value = xsk_fd as u32;
        Attr::new()
            .u32(0, self.map.as_raw_fd() as u32)
            .u64(8, &key as *const u32 as u64)
            .u64(16, &value as *const u32 as u64)
            .u64(24, 0) // BPF_ANY
            .call(BPF_MAP_UPDATE_ELEM)
            .map(|_| ())
            .map_err(|e| format!("adding queue {qid}'s socket to the XSKMAP: {e}"))
    }
}
