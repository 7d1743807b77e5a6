//! Generic Netlink transport for the OVS families: the per-family message type (genl
//! header + `struct ovs_header` + attributes), family resolution through nlctrl, and a
//! request/reply socket that turns NLMSG_ERROR (with extended ack) into `NlError`.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    DecodeError, Emitable, NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NetlinkSerializable, NlaBuffer, NlasIterator, ParseableParametrized, NLM_F_ACK,
    NLM_F_DUMP, NLM_F_ECHO, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::{GenlCtrlAttrs, McastGrpAttrs};
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};

/// One of the four OVS Generic Netlink families.
pub trait OvsFamily: fmt::Debug + Clone + Send + Sync + 'static {
    /// Registered family name.
    const NAME: &'static str;
    /// Version the module expects.
    const VERSION: u8;
}

macro_rules! family {
    ($t:ident, $name:literal, $ver:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $t;
        impl OvsFamily for $t {
            const NAME: &'static str = $name;
            const VERSION: u8 = $ver;
        }
    };
}
family!(
    DatapathFamily,
    "ovs_datapath",
    super::attr::version::DATAPATH,
    "`ovs_datapath`."
);
family!(
    VportFamily,
    "ovs_vport",
    super::attr::version::VPORT,
    "`ovs_vport`."
);
family!(
    FlowFamily,
    "ovs_flow",
    super::attr::version::FLOW,
    "`ovs_flow`."
);
family!(
    PacketFamily,
    "ovs_packet",
    super::attr::version::PACKET,
    "`ovs_packet`."
);

/// An OVS family message: command, the datapath's ifindex (`struct ovs_header`) and the
/// encoded attributes.
#[derive(Debug, Clone)]
pub struct OvsMessage<F> {
    /// Command (`attr::cmd`).
    pub cmd: u8,
    /// `ovs_header.dp_ifindex`: which datapath (0 when addressing by name).
    pub dp_ifindex: i32,
    /// Attributes, already encoded.
    pub attrs: Vec<u8>,
    _family: PhantomData<F>,
}

impl<F: OvsFamily> OvsMessage<F> {
    /// A message from typed attributes.
    pub fn new<A: netlink_packet_core::Nla>(cmd: u8, dp_ifindex: i32, attrs: &[A]) -> Self {
        OvsMessage {
            cmd,
            dp_ifindex,
            attrs: super::attr::emit_all(attrs),
            _family: PhantomData,
        }
    }

    /// Iterates the top-level attributes.
    pub fn nlas(&self) -> impl Iterator<Item = Result<NlaBuffer<&[u8]>, DecodeError>> {
        NlasIterator::new(&self.attrs[..])
    }
}

impl<F: OvsFamily> GenlFamily for OvsMessage<F> {
    fn family_name() -> &'static str {
        F::NAME
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        F::VERSION
    }
}

impl<F> Emitable for OvsMessage<F> {
    fn buffer_len(&self) -> usize {
        4 + self.attrs.len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        buffer[..4].copy_from_slice(&self.dp_ifindex.to_ne_bytes());
        buffer[4..4 + self.attrs.len()].copy_from_slice(&self.attrs);
    }
}

impl<F: fmt::Debug> ParseableParametrized<[u8], GenlHeader> for OvsMessage<F> {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        if buf.len() < 4 {
            return Err(DecodeError::from(
                "OVS message shorter than struct ovs_header",
            ));
        }
        Ok(OvsMessage {
            cmd: header.cmd,
            dp_ifindex: i32::from_ne_bytes(buf[..4].try_into().unwrap()),
            attrs: buf[4..].to_vec(),
            _family: PhantomData,
        })
    }
}

/// A failed netlink request: the errno and what extended ack said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError {
    /// Positive errno.
    pub errno: i32,
    /// NLMSGERR_ATTR_MSG, when the kernel gave one.
    pub message: Option<String>,
    /// The attribute NLMSGERR_ATTR_OFFS points at, as a path of attribute types.
    pub attribute: Option<String>,
}

impl NlError {
    /// A socket-level failure (opening, sending, receiving) as the errno it carries, so
    /// callers report every netlink failure the one way.
    pub(crate) fn from_io(e: io::Error) -> Self {
        NlError {
            errno: e.raw_os_error().unwrap_or(libc::EIO),
            message: Some(e.to_string()),
            attribute: None,
        }
    }
    fn decode(e: DecodeError) -> Self {
        NlError {
            errno: libc::EPROTO,
            message: Some(format!("malformed netlink reply: {e}")),
            attribute: None,
        }
    }
}

impl fmt::Display for NlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", io::Error::from_raw_os_error(self.errno))?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        if let Some(a) = &self.attribute {
            write!(f, " (at attribute {a})")?;
        }
        Ok(())
    }
}

/// A resolved family: its id and multicast groups.
#[derive(Debug, Clone)]
pub struct FamilyInfo {
    /// Dynamic family id (the netlink message type).
    pub id: u16,
    /// (name, group id) pairs.
    pub mcast_groups: Vec<(String, u32)>,
}

/// A netlink socket used for request/reply (one per thread or behind a lock).
pub struct NlSocket {
    sock: Socket,
    seq: u32,
    pid: u32,
    buf: Vec<u8>,
    last_request: Vec<u8>,
    /// Where attributes start in a request (after the fixed headers), for error paths.
    attr_start: usize,
}

const RECV_BUF: usize = 256 * 1024;

impl NlSocket {
    /// Opens and binds a NETLINK_GENERIC socket with extended acks.
    pub fn open() -> io::Result<Self> {
        Self::open_protocol(NETLINK_GENERIC, 24)
    }

    /// Opens and binds a NETLINK_ROUTE socket (tunnel devices).
    pub fn open_route() -> io::Result<Self> {
        Self::open_protocol(netlink_sys::protocols::NETLINK_ROUTE, 32)
    }

    fn open_protocol(proto: isize, attr_start: usize) -> io::Result<Self> {
        let mut sock = Socket::new(proto)?;
        let addr = sock.bind_auto()?;
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_rx_buf_sz(4 * 1024 * 1024);
        Ok(NlSocket {
            sock,
            seq: 1,
            pid: addr.port_number(),
            buf: vec![0; RECV_BUF],
            last_request: Vec::new(),
            attr_start,
        })
    }

    /// The socket's netlink port id (what OVS_VPORT_ATTR_UPCALL_PID names).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Joins a multicast group.
    pub fn join_group(&self, group: u32) -> io::Result<()> {
        self.sock.add_membership(group)
    }

    /// Sets a receive timeout so that handler threads can notice a stop request.
    pub fn set_recv_timeout(&self, ms: u64) -> io::Result<()> {
        crate::netdev::linux::set_recv_timeout(&self.sock, std::time::Duration::from_millis(ms))
    }

    fn send<P: NetlinkSerializable + fmt::Debug>(
        &mut self,
        payload: P,
        flags: u16,
    ) -> Result<u32, NlError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
        msg.finalize();
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut buf);
        self.sock
            .send_to(&buf, &SocketAddr::new(0, 0), 0)
            .map_err(NlError::from_io)?;
        self.last_request = buf;
        Ok(self.seq)
    }

    /// Receives one datagram (possibly several messages) into the internal buffer.
    pub fn recv_raw(&mut self) -> io::Result<&[u8]> {
        // SAFETY: recv into our own buffer of the given length.
        let n = unsafe {
            libc::recv(
                self.sock.as_raw_fd(),
                self.buf.as_mut_ptr() as *mut libc::c_void,
                self.buf.len(),
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(&self.buf[..n as usize])
    }

    /// Sends `payload` and collects replies until the ack (or DONE for dumps).
    pub fn transact_generic<P, R>(&mut self, payload: P, flags: u16) -> Result<Vec<R>, NlError>
    where
        P: NetlinkSerializable + fmt::Debug,
        R: NetlinkDeserializable + fmt::Debug,
    {
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let flags = flags | NLM_F_REQUEST | if dump { 0 } else { NLM_F_ACK };
        let seq = self.send(payload, flags)?;
        let mut out = Vec::new();
        loop {
            let data = self.recv_raw().map_err(NlError::from_io)?.to_vec();
            let mut off = 0;
            while off + 16 <= data.len() {
                let nb = NetlinkBuffer::new_checked(&data[off..]).map_err(NlError::decode)?;
                let len = nb.length() as usize;
                let (msg_seq, msg_flags) = (nb.sequence_number(), nb.flags());
                let chunk = &data[off..off + len];
                off += (len + 3) & !3;
                if msg_seq != seq {
                    continue; // a stale reply to an earlier, abandoned request
                }
                let msg = NetlinkMessage::<R>::deserialize(chunk).map_err(NlError::decode)?;
                match msg.payload {
                    NetlinkPayload::InnerMessage(m) => {
                        out.push(m);
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(out),
                        Some(code) => return Err(self.nl_error(-code.get(), &e.header, msg_flags)),
                    },
                    _ => {}
                }
            }
        }
    }

    fn nl_error(&self, errno: i32, payload: &[u8], flags: u16) -> NlError {
        parse_ext_ack(errno, payload, flags, &self.last_request, self.attr_start)
    }

    /// One OVS request; returns the replies. NEW/SET/DEL replies are notifications the
    /// module only unicasts back to the requester with NLM_F_ECHO, so it is always set.
    pub fn request<F: OvsFamily>(
        &mut self,
        family: u16,
        msg: OvsMessage<F>,
        flags: u16,
    ) -> Result<Vec<OvsMessage<F>>, NlError> {
        let flags = if flags & NLM_F_DUMP == NLM_F_DUMP {
            flags
        } else {
            flags | NLM_F_ECHO
        };
        let mut g = GenlMessage::from_payload(msg);
        g.set_resolved_family_id(family);
        let replies: Vec<GenlMessage<OvsMessage<F>>> = self.transact_generic(g, flags)?;
        Ok(replies.into_iter().map(|r| r.payload).collect())
    }

    /// A dump request (multipart reply until DONE).
    pub fn dump<F: OvsFamily>(
        &mut self,
        family: u16,
        msg: OvsMessage<F>,
    ) -> Result<Vec<OvsMessage<F>>, NlError> {
        self.request(family, msg, NLM_F_DUMP)
    }

    /// Resolves a family by name through nlctrl.
    pub fn resolve_family(&mut self, name: &str) -> Result<FamilyInfo, NlError> {
        let req = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(name.to_owned())],
        });
        let replies: Vec<GenlMessage<GenlCtrl>> = self.transact_generic(req, 0)?;
        let mut info = FamilyInfo {
            id: 0,
            mcast_groups: Vec::new(),
        };
        for r in replies {
            for nla in r.payload.nlas {
                match nla {
                    GenlCtrlAttrs::FamilyId(id) => info.id = id,
                    GenlCtrlAttrs::McastGroups(groups) => {
                        for g in groups {
                            let (mut gname, mut gid) = (String::new(), 0);
                            for a in g {
                                match a {
                                    McastGrpAttrs::Name(n) => gname = n,
                                    McastGrpAttrs::Id(i) => gid = i,
                                }
                            }
                            info.mcast_groups.push((gname, gid));
                        }
                    }
                    _ => {}
                }
            }
        }
        if info.id == 0 {
            return Err(NlError {
                errno: libc::ENOENT,
                message: Some(format!("family {name} has no id")),
                attribute: None,
            });
        }
        Ok(info)
    }
}

/// Builds an `NlError` from an NLMSG_ERROR payload: the echoed request header (the whole
/// request unless NLM_F_CAPPED) followed, with NLM_F_ACK_TLVS, by extended-ack TLVs whose
/// offset is resolved against `request` into an attribute path.
fn parse_ext_ack(
    errno: i32,
    payload: &[u8],
    flags: u16,
    request: &[u8],
    attr_start: usize,
) -> NlError {
    let mut err = NlError {
        errno,
        message: None,
        attribute: None,
    };
    // payload = the request's nlmsghdr (whole request unless capped), then TLVs.
    const NLM_F_CAPPED: u16 = 0x100;
    const NLM_F_ACK_TLVS: u16 = 0x200;
    if payload.len() < 16 || flags & NLM_F_ACK_TLVS == 0 {
        return err;
    }
    let orig_len = u32::from_ne_bytes(payload[..4].try_into().unwrap()) as usize;
    let skip = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        (orig_len + 3) & !3
    };
    if skip > payload.len() {
        return err;
    }
    for nla in NlasIterator::new(&payload[skip..]).flatten() {
        let v = super::attr::value(&nla);
        match nla.kind() {
            1 => err.message = Some(super::attr::get_string(&nla)),
            2 if v.len() == 4 => {
                let offs = u32::from_ne_bytes(v.try_into().unwrap()) as usize;
                err.attribute = attribute_path(request, attr_start, offs);
            }
            _ => {}
        }
    }
    err
}

/// Names the attribute at byte `offs` of a request as a path of attribute types
/// ("1/7" = type 7 nested in type 1), so an EINVAL can say which attribute was refused.
fn attribute_path(req: &[u8], start: usize, offs: usize) -> Option<String> {
    if offs < start || offs >= req.len() {
        return None;
    }
    let mut path = Vec::new();
    let mut base = start;
    let mut region = &req[start..];
    'outer: loop {
        let mut pos = 0;
        for nla in NlasIterator::new(region).flatten() {
            let len = nla.length() as usize;
            let at = base + pos;
            if offs >= at && offs < at + len {
                path.push((nla.kind() & netlink_packet_core::NLA_TYPE_MASK).to_string());
                if offs >= at + 4 && len > 4 {
                    base = at + 4;
                    region = &req[at + 4..at + len];
                    continue 'outer;
                }
                break 'outer;
            }
            pos += (len + 3) & !3;
        }
        break;
    }
    if path.is_empty() {
        None
    } else {
        Some(format!("{} (offset {offs})", path.join("/")))
    }
}

/// Parses a received datagram of OVS messages (upcalls) for family `F`.
pub fn parse_ovs_messages<F: OvsFamily>(data: &[u8]) -> Vec<Result<OvsMessage<F>, DecodeError>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= data.len() {
        let nb = match NetlinkBuffer::new_checked(&data[off..]) {
            Ok(nb) => nb,
            Err(e) => {
                out.push(Err(e));
                break;
            }
        };
        let len = nb.length() as usize;
        let chunk = &data[off..off + len];
        off += (len + 3) & !3;
        match NetlinkMessage::<GenlMessage<OvsMessage<F>>>::deserialize(chunk) {
            Ok(NetlinkMessage {
                payload: NetlinkPayload::InnerMessage(m),
                ..
            }) => out.push(Ok(m.payload)),
            Ok(_) => {}
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::attr::RawAttr;
    use super::*;

    #[test]
    fn ovs_message_round_trips_through_genl() {
        let msg =
            OvsMessage::<FlowFamily>::new(3, 17, &[RawAttr::u32(5, 99), RawAttr::string(3, "v1a")]);
        let mut g = GenlMessage::from_payload(msg.clone());
        g.set_resolved_family_id(0x1d);
        let mut nl = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(g));
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        // nlmsghdr(16) + genlmsghdr(4: cmd, version, reserved) + ovs_header(4) + attrs
        assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), 0x1d);
        assert_eq!((buf[16], buf[17]), (3, FlowFamily::VERSION));
        assert_eq!(i32::from_ne_bytes(buf[20..24].try_into().unwrap()), 17);
        let back = parse_ovs_messages::<FlowFamily>(&buf);
        let back = back[0].as_ref().unwrap();
        assert_eq!(
            (back.cmd, back.dp_ifindex, &back.attrs),
            (3, 17, &msg.attrs)
        );
    }

    #[test]
    fn extended_ack_names_message_and_attribute() {
        // a request: headers, then attribute 1 holding nested attribute 7 (u32)
        let mut req = vec![0u8; 24];
        req.extend(super::super::attr::emit_all(&[RawAttr::nested(
            1,
            &[RawAttr::u32(7, 5)],
        )]));
        let bad_offset = 24 + 4 + 4; // the payload of the nested u32
        let mut payload = req[..16].to_vec(); // capped echo: the request's nlmsghdr only
        payload[..4].copy_from_slice(&(req.len() as u32).to_ne_bytes());
        payload.extend(super::super::attr::emit_all(&[
            RawAttr::string(1, "bad in_port"),
            RawAttr::u32(2, bad_offset as u32),
        ]));
        let e = parse_ext_ack(libc::EINVAL, &payload, 0x100 | 0x200, &req, 24);
        assert_eq!(e.errno, libc::EINVAL);
        assert_eq!(e.message.as_deref(), Some("bad in_port"));
        assert_eq!(e.attribute.as_deref(), Some("1/7 (offset 32)"));
        let text = e.to_string();
        assert!(
            text.contains("Invalid argument")
                && text.contains("bad in_port")
                && text.contains("1/7"),
            "{text}"
        );
        // without ACK_TLVS there is nothing but the errno
        let plain = parse_ext_ack(libc::ENOENT, &payload, 0x100, &req, 24);
        assert_eq!((plain.message, plain.attribute), (None, None));
    }
}
