//! sock_diag netlink: the request and receive loop (I/O half) and a decoder of
//! raw replies into [`Socket`]s (pure half, also used for `ss -D` captures).
//!
//! The decoder reads `struct inet_diag_msg` itself (include/uapi/linux/inet_diag.h)
//! rather than through netlink-packet-sock-diag's response type, which turns
//! timer 3 into a variant without `idiag_expires` and allocates per message.

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::{
    constants::{AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
    SockDiagMessage,
};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket as NlSocket, SocketAddr};

use crate::model::{Endpoint, Family, Socket, StateSet, TcpState, Timer, TimerKind};

pub(crate) const NLMSG_HDRLEN: usize = 16;
pub(crate) const NLMSG_NOOP: u16 = 1;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
/// sizeof(struct inet_diag_msg).
const INET_DIAG_MSG_LEN: usize = 72;
/// The legacy request and reply type (include/uapi/linux/inet_diag.h). Its
/// `struct inet_diag_req` may name no family, and the kernel then walks the
/// connection hash once for both (inet_diag_dump_compat passes AF_UNSPEC
/// on), where SOCK_DIAG_BY_FAMILY walks it once per family. The replies
/// carry the same `struct inet_diag_msg`.
const TCPDIAG_GETSOCK: u16 = 18;

/// What went wrong decoding a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The kernel answered the request with an error (a negative errno).
    Kernel(i32),
    /// The bytes are not a well-formed reply; `offset` is where it breaks.
    Malformed { offset: usize, what: String },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Kernel(errno) => write!(
                f,
                "the kernel refused the sock_diag request: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
            DecodeError::Malformed { offset, what } => write!(f, "byte {offset}: {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// How far a buffer took the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// An NLMSG_DONE was seen: this dump is complete.
    pub done: bool,
    /// A message carried NLM_F_DUMP_INTR: the tables changed under the dump,
    /// so it may hold sockets twice or miss some, and must be retried.
    pub interrupted: bool,
    /// Bytes consumed; for a capture file, the next dump starts here.
    pub consumed: usize,
}

fn malformed(offset: usize, what: impl Into<String>) -> DecodeError {
    DecodeError::Malformed {
        offset,
        what: what.into(),
    }
}

fn u16_ne(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_ne(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes the netlink messages in `buf` up to and including the first
/// NLMSG_DONE, handing each socket to `visit`. A buffer may end between
/// messages (the next recv continues the dump), never inside one.
pub fn decode(buf: &[u8], visit: &mut dyn FnMut(&Socket)) -> Result<Progress, DecodeError> {
    let mut p = Progress::default();
    let mut off = 0;
    while off < buf.len() {
        let rest = &buf[off..];
        if rest.len() < NLMSG_HDRLEN {
            return Err(malformed(
                off,
                format!("truncated netlink header ({} bytes left)", rest.len()),
            ));
        }
        let len = u32_ne(rest, 0) as usize;
        let kind = u16_ne(rest, 4);
        let flags = u16_ne(rest, 6);
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(malformed(
                off,
                format!(
                    "netlink message length {len} does not fit ({} bytes left)",
                    rest.len()
                ),
            ));
        }
        if flags & NLM_F_DUMP_INTR != 0 {
            p.interrupted = true;
        }
        let body = &rest[NLMSG_HDRLEN..len];
        // Messages are padded to 4 bytes (NLMSG_ALIGN); the last may not be.
        off += (len + 3) & !3;
        match kind {
            NLMSG_DONE => {
                p.done = true;
                break;
            }
            NLMSG_NOOP => {}
            NLMSG_ERROR => {
                if body.len() < 4 {
                    return Err(malformed(off - len, "truncated NLMSG_ERROR"));
                }
                // struct nlmsgerr's error: 0 for an ack, else a negative errno
                // (netlink_ack); MAX_ERRNO is 4095. Negating any other value
                // could overflow, and would not be an errno anyway.
                match u32_ne(body, 0) as i32 {
                    0 => {}
                    e @ -4095..=-1 => return Err(DecodeError::Kernel(-e)),
                    e => {
                        return Err(malformed(
                            off - len,
                            format!("NLMSG_ERROR carries {e}, not a negative errno"),
                        ))
                    }
                }
            }
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
                let s = decode_inet_diag_msg(body).map_err(|what| malformed(off - len, what))?;
                visit(&s);
            }
            other => {
                return Err(malformed(
                    off - len,
                    format!("unexpected netlink message type {other}"),
                ))
            }
        }
    }
    p.consumed = off.min(buf.len());
    Ok(p)
}

/// Decodes one `struct inet_diag_msg` (attributes after it are ignored).
pub fn decode_inet_diag_msg(b: &[u8]) -> Result<Socket, String> {
    if b.len() < INET_DIAG_MSG_LEN {
        return Err(format!(
            "inet_diag_msg of {} bytes, expected at least {INET_DIAG_MSG_LEN}",
            b.len()
        ));
    }
    let family = match b[0] {
        AF_INET => Family::Inet,
        AF_INET6 => Family::Inet6,
        f => {
            return Err(format!(
                "address family {f} is neither AF_INET nor AF_INET6"
            ))
        }
    };
    let state = TcpState::from_kernel(b[1]).ok_or_else(|| format!("unknown TCP state {}", b[1]))?;
    let timer_kind = TimerKind::from_code(b[2]).map_err(|n| format!("unknown timer {n}"))?;
    // struct inet_diag_sockid: ports and addresses in network byte order.
    let sport = u16::from_be_bytes([b[4], b[5]]);
    let dport = u16::from_be_bytes([b[6], b[7]]);
    let addr = |at: usize| -> IpAddr {
        match family {
            Family::Inet => IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])),
            Family::Inet6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            }
        }
    };
    let expires = u32_ne(b, 52);
    Ok(Socket {
        family,
        state,
        local: Endpoint::new(addr(8), sport),
        peer: Endpoint::new(addr(24), dport),
        timer: timer_kind.map(|kind| Timer { kind, ms: expires }),
        retrans: b[3],
        recv_q: u32_ne(b, 56),
        send_q: u32_ne(b, 60),
        uid: u32_ne(b, 64),
        inode: u64::from(u32_ne(b, 68)),
        direction: None,
        netns: 0,
    })
}

/// Decodes a whole capture (as `ss -D FILE` writes it): one or more dumps,
/// each ended by NLMSG_DONE. Every dump must be complete.
pub fn decode_capture(buf: &[u8], visit: &mut dyn FnMut(&Socket)) -> Result<(), DecodeError> {
    read_capture(buf, visit)
}

/// The longest message a capture may hold. sock_diag replies are one
/// `inet_diag_msg` and a few small attributes (well under 1 KiB); the cap
/// keeps a corrupt length field from asking for gigabytes.
const MAX_CAPTURE_MESSAGE: usize = 1 << 20;

/// Decodes a capture from a reader one message at a time, so a capture of
/// any size, or an endless stream, is read in constant memory. Sockets reach
/// `visit` as they are read; an error (a cut, an interrupted dump) may come
/// after some of them, as in a live read, and the caller discards them.
pub fn read_capture(
    mut r: impl std::io::Read,
    visit: &mut dyn FnMut(&Socket),
) -> Result<(), DecodeError> {
    let mut msg = Vec::with_capacity(4096);
    let (mut offset, mut open) = (0usize, false);
    loop {
        msg.resize(NLMSG_HDRLEN, 0);
        let got = read_full(&mut r, &mut msg, offset)?;
        if got == 0 {
            break;
        }
        let len = u32_ne(&msg, 0) as usize;
        if got == NLMSG_HDRLEN && len > MAX_CAPTURE_MESSAGE {
            return Err(malformed(
                offset,
                format!("netlink message length {len} is beyond any sock_diag reply"),
            ));
        }
        if got == NLMSG_HDRLEN && len > NLMSG_HDRLEN {
            // The message and its padding to 4 bytes (NLMSG_ALIGN), which the
            // file's last message may lack.
            msg.resize((len + 3) & !3, 0);
            let body = read_full(&mut r, &mut msg[NLMSG_HDRLEN..], offset)?;
            msg.truncate(NLMSG_HDRLEN + body);
        } else {
            msg.truncate(got);
        }
        // A short message makes `decode` say what is cut.
        let p = decode(&msg, visit).map_err(|e| match e {
            DecodeError::Malformed { offset: at, what } => malformed(offset + at, what),
            k => k,
        })?;
        if p.interrupted {
            return Err(malformed(
                offset,
                "this dump was interrupted (NLM_F_DUMP_INTR) when captured; capture it again",
            ));
        }
        open = !p.done;
        offset += msg.len();
    }
    if open {
        return Err(malformed(
            offset,
            "capture ends before the dump's NLMSG_DONE (truncated?)",
        ));
    }
    Ok(())
}

/// Fills `buf` from `r` unless the input ends first; returns the bytes read.
pub(crate) fn read_full(
    r: &mut impl std::io::Read,
    buf: &mut [u8],
    offset: usize,
) -> Result<usize, DecodeError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(malformed(offset + got, format!("read failed: {e}"))),
        }
    }
    Ok(got)
}

/// True when `buf` starts like a sock_diag reply rather than text.
pub fn looks_like_dump(buf: &[u8]) -> bool {
    buf.len() >= NLMSG_HDRLEN && {
        let len = u32_ne(buf, 0) as usize;
        let kind = u16_ne(buf, 4);
        len >= NLMSG_HDRLEN
            && matches!(
                kind,
                SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK | NLMSG_DONE | NLMSG_ERROR
            )
    }
}

/// What the kernel can filter besides states: exact ports in the request's
/// socket id (checked before anything else, inet_diag_dump_icsk) and an
/// INET_DIAG_REQ_BYTECODE program (see `expr`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelFilter {
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub bytecode: Option<Vec<u8>>,
}

impl KernelFilter {
    /// True when the kernel may drop sockets the state mask alone would
    /// keep, listeners included.
    pub fn is_active(&self) -> bool {
        self.sport.is_some() || self.dport.is_some() || self.bytecode.is_some()
    }
}

/// The request attribute carrying a filter program.
const INET_DIAG_REQ_BYTECODE: u16 = 1;

/// Builds a SOCK_DIAG_BY_FAMILY dump request for TCP sockets of `family` in
/// the states of `states`, so the kernel sends only those.
pub fn request(family: Family, states: StateSet, seq: u32) -> Vec<u8> {
    request_filtered(family, states, seq, &KernelFilter::default())
}

/// [`request`] with a kernel-side filter.
pub fn request_filtered(family: Family, states: StateSet, seq: u32, kf: &KernelFilter) -> Vec<u8> {
    let (af, mut id) = match family {
        Family::Inet => (AF_INET, SocketId::new_v4()),
        Family::Inet6 => (AF_INET6, SocketId::new_v6()),
    };
    id.source_port = kf.sport.unwrap_or(0);
    id.destination_port = kf.dport.unwrap_or(0);
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(
        header,
        NetlinkPayload::from(SockDiagMessage::InetRequest(InetRequest {
            family: af,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::from_bits_retain(states.kernel_mask()),
            socket_id: id,
        })),
    );
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    if let Some(bc) = &kf.bytecode {
        // struct nlattr { u16 nla_len; u16 nla_type; } + program, 4-aligned.
        // The crate's request type has no attributes, so append it here.
        buf.extend_from_slice(&((4 + bc.len()) as u16).to_ne_bytes());
        buf.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        buf.extend_from_slice(bc);
        buf.resize((buf.len() + 3) & !3, 0);
        let len = buf.len() as u32;
        buf[..4].copy_from_slice(&len.to_ne_bytes());
    }
    buf
}

/// Whether a dump of `families` takes one walk of the connection hash (a
/// TCPDIAG_GETSOCK request naming no family) rather than one per family:
/// when both families are wanted. At a million sockets the second walk costs
/// about 90 ms even with no IPv6 socket at all.
pub fn one_walk(families: &[Family]) -> bool {
    families.contains(&Family::Inet) && families.contains(&Family::Inet6)
}

/// Builds a TCPDIAG_GETSOCK dump request for TCP sockets of both families in
/// the states of `states`: an nlmsghdr and a `struct inet_diag_req` with
/// family AF_UNSPEC and a zero socket id (any address, any port).
pub fn request_one_walk(states: StateSet, seq: u32) -> Vec<u8> {
    // family, src_len, dst_len, ext; inet_diag_sockid; states; dbs.
    const INET_DIAG_REQ_LEN: usize = 4 + 48 + 4 + 4;
    let len = NLMSG_HDRLEN + INET_DIAG_REQ_LEN;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&(len as u32).to_ne_bytes());
    b.extend_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&[0; 4 + 48]);
    b.extend_from_slice(&states.kernel_mask().to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b
}

/// How many times an interrupted dump is retried before giving up.
pub const MAX_DUMP_ATTEMPTS: usize = 5;

/// Why the live dump failed; the caller decides whether /proc can stand in.
#[derive(Debug)]
pub enum DumpError {
    /// sock_diag is not available or not allowed here (no module, seccomp,
    /// an LSM, a sandbox): /proc may still answer.
    Unavailable(std::io::Error),
    /// The kernel or the reply failed mid-dump.
    Failed(String),
    /// Every attempt was interrupted by table changes.
    Interrupted(usize),
}

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpError::Unavailable(e) => write!(f, "sock_diag netlink is not available: {e}"),
            DumpError::Failed(m) => write!(f, "sock_diag dump failed: {m}"),
            DumpError::Interrupted(n) => write!(
                f,
                "the socket table changed during each of {n} sock_diag dumps (NLM_F_DUMP_INTR); \
                 no consistent answer; try again"
            ),
        }
    }
}

impl std::error::Error for DumpError {}

/// A receive buffer larger than the kernel's largest dump skb (32 KiB, see
/// netlink_recvmsg), so one recv always takes a whole skb.
pub(crate) const RECV_BUF: usize = 64 * 1024;
/// SO_RCVBUF asked for: room for several skbs queued while we decode.
pub(crate) const SOCK_RCVBUF: usize = 1 << 20;

/// A sock_diag socket in the network namespace that was current when it was
/// opened, with its receive buffer.
pub struct Dumper {
    sock: NlSocket,
    buf: Vec<u8>,
    seq: u32,
    /// Cleared when the kernel refuses the one-walk request.
    one_walk: bool,
    /// Bytes received so far: shows what a kernel-side filter saves.
    pub bytes_received: u64,
}

impl Dumper {
    pub fn open() -> Result<Dumper, DumpError> {
        Ok(Dumper {
            sock: open().map_err(DumpError::Unavailable)?,
            buf: Vec::with_capacity(RECV_BUF),
            seq: 0,
            one_walk: true,
            bytes_received: 0,
        })
    }

    /// One dump of `families` (one walk of the hash for both, see
    /// [`one_walk`]), every socket handed to `visit`. `Ok(false)`
    /// when the kernel flagged it NLM_F_DUMP_INTR: the caller must forget
    /// what it saw and dump again (see `source::read`).
    pub fn dump(
        &mut self,
        families: &[Family],
        states: StateSet,
        kf: &KernelFilter,
        visit: &mut dyn FnMut(&Socket),
        enough: &Cell<bool>,
    ) -> Result<bool, DumpError> {
        self.run(families, states, kf, visit, enough, None)
    }

    /// The raw replies of one dump of each family, laid out as `ss -D` writes
    /// them (each family's messages and its NLMSG_DONE), for `tw capture`.
    pub fn capture(
        &mut self,
        families: &[Family],
        states: StateSet,
    ) -> Result<Option<Vec<u8>>, DumpError> {
        let mut raw = Vec::new();
        let kf = KernelFilter::default();
        let never = Cell::new(false);
        let complete = self.run(families, states, &kf, &mut |_| {}, &never, Some(&mut raw))?;
        Ok(complete.then_some(raw))
    }

    fn run(
        &mut self,
        families: &[Family],
        states: StateSet,
        kf: &KernelFilter,
        visit: &mut dyn FnMut(&Socket),
        enough: &Cell<bool>,
        mut raw: Option<&mut Vec<u8>>,
    ) -> Result<bool, DumpError> {
        // Both families and only states to filter on: one walk of the hash.
        // Captures keep a dump per family, as `ss -D` writes them.
        if self.one_walk && one_walk(families) && !kf.is_active() && raw.is_none() {
            self.seq = self.seq.wrapping_add(1);
            let req = request_one_walk(states, self.seq);
            let mut seen = 0u64;
            let mut count = |s: &Socket| {
                seen += 1;
                visit(s)
            };
            match dump_family(&self.sock, &req, &mut self.buf, &mut count, enough, None) {
                Ok((interrupted, bytes)) => {
                    self.bytes_received += bytes;
                    return Ok(!interrupted);
                }
                // Refused before any socket (a kernel without the legacy
                // request answers EOPNOTSUPP, sock_diag_rcv_msg): a dump per
                // family says whether sock_diag itself is refused. Only a
                // refusal: after a failed recv() the kernel may still be in
                // the dump, and a new request would get EBUSY.
                Err(DumpError::Unavailable(_)) if seen == 0 => self.one_walk = false,
                Err(e) => return Err(e),
            }
        }
        for &family in families {
            self.seq = self.seq.wrapping_add(1);
            let req = request_filtered(family, states, self.seq, kf);
            let (interrupted, bytes) = dump_family(
                &self.sock,
                &req,
                &mut self.buf,
                visit,
                enough,
                raw.as_deref_mut(),
            )?;
            self.bytes_received += bytes;
            if interrupted {
                return Ok(false);
            }
            if enough.get() {
                break;
            }
        }
        Ok(true)
    }
}

fn open() -> std::io::Result<NlSocket> {
    let mut sock = NlSocket::new(NETLINK_SOCK_DIAG)?;
    sock.bind_auto()?;
    // Best effort: a small SO_RCVBUF only costs speed, never correctness.
    let _ = sock.set_rx_buf_sz(SOCK_RCVBUF as libc::c_int);
    Ok(sock)
}

/// One family's dump; returns whether it was interrupted, and the bytes
/// received. With `raw`, the received bytes are kept too. Once `enough` is
/// set (by `visit`'s consumer), it ends after the buffer at hand.
fn dump_family(
    sock: &NlSocket,
    req: &[u8],
    buf: &mut Vec<u8>,
    visit: &mut dyn FnMut(&Socket),
    enough: &Cell<bool>,
    mut raw: Option<&mut Vec<u8>>,
) -> Result<(bool, u64), DumpError> {
    match sock.send_to(req, &SocketAddr::new(0, 0), 0) {
        Ok(_) => {}
        // A refused request means sock_diag is not for us here.
        Err(e) => return Err(DumpError::Unavailable(e)),
    }
    let mut interrupted = false;
    let mut bytes = 0u64;
    loop {
        buf.clear();
        let n = match sock.recv(buf, 0) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // The socket's queue overflowed and the kernel dropped replies
            // (netlink_overrun): what arrived is not the whole table.
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                return Err(DumpError::Failed(format!(
                    "recv: {e}: replies were lost; try again, or use --source proc"
                )))
            }
            Err(e) => return Err(DumpError::Failed(format!("recv: {e}"))),
        };
        if n == 0 {
            return Err(DumpError::Failed(
                "the kernel closed the dump without NLMSG_DONE".into(),
            ));
        }
        let p = decode(&buf[..n.min(buf.len())], visit).map_err(|e| match e {
            DecodeError::Kernel(errno)
                if errno == libc::EPERM
                    || errno == libc::EACCES
                    || errno == libc::ENOENT
                    || errno == libc::EOPNOTSUPP =>
            {
                DumpError::Unavailable(std::io::Error::from_raw_os_error(errno))
            }
            other => DumpError::Failed(other.to_string()),
        })?;
        interrupted |= p.interrupted;
        bytes += n as u64;
        if let Some(raw) = raw.as_deref_mut() {
            raw.extend_from_slice(&buf[..p.consumed]);
        }
        // Enough: the socket is dropped with the dump under way, which the
        // kernel ends (netlink_release frees the dump's state).
        if p.done || enough.get() {
            return Ok((interrupted, bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply message as the kernel lays it out, for table-driven cases.
    fn msg(kind: u16, flags: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[allow(clippy::too_many_arguments)]
    fn diag(
        af: u8,
        state: u8,
        timer: u8,
        src: &[u8],
        sport: u16,
        dst: &[u8],
        dport: u16,
        expires: u32,
        uid: u32,
        inode: u32,
    ) -> Vec<u8> {
        let mut b = vec![af, state, timer, 0];
        b.extend_from_slice(&sport.to_be_bytes());
        b.extend_from_slice(&dport.to_be_bytes());
        let mut a = [0u8; 16];
        a[..src.len()].copy_from_slice(src);
        b.extend_from_slice(&a);
        let mut a = [0u8; 16];
        a[..dst.len()].copy_from_slice(dst);
        b.extend_from_slice(&a);
        b.extend_from_slice(&[0; 12]); // if + cookie
        for v in [expires, 1, 2, uid, inode] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(b.len(), INET_DIAG_MSG_LEN);
        b
    }

    fn collect(buf: &[u8]) -> (Result<Progress, DecodeError>, Vec<Socket>) {
        let mut v = Vec::new();
        let r = decode(buf, &mut |s| v.push(*s));
        (r, v)
    }

    #[test]
    fn time_wait_keeps_expires() {
        let body = diag(
            2,
            6,
            3,
            &[127, 0, 0, 1],
            40000,
            &[127, 0, 0, 2],
            80,
            41_300,
            0,
            0,
        );
        let mut buf = msg(SOCK_DIAG_BY_FAMILY, 2, &body);
        buf.extend(msg(NLMSG_DONE, 2, &[0; 4]));
        let (r, socks) = collect(&buf);
        let p = r.unwrap();
        assert!(p.done && !p.interrupted);
        assert_eq!(socks.len(), 1);
        let s = socks[0];
        assert_eq!(s.state, TcpState::TimeWait);
        assert_eq!(s.local.to_string(), "127.0.0.1:40000");
        assert_eq!(s.peer.to_string(), "127.0.0.2:80");
        assert_eq!(s.timewait_ms(), Some(41_300));
        assert_eq!((s.recv_q, s.send_q), (1, 2));
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[127, 0, 0, 1]);
        let mut one = [0u8; 16];
        one[15] = 1;
        let body = diag(10, 1, 0, &one, 443, &mapped, 5555, 0, 1000, 4242);
        let (r, socks) = collect(&msg(SOCK_DIAG_BY_FAMILY, 2, &body));
        assert!(!r.unwrap().done);
        let s = socks[0];
        assert_eq!(s.family, Family::Inet6);
        assert_eq!(s.local.to_string(), "[::1]:443");
        assert_eq!(s.peer.to_string(), "[::ffff:127.0.0.1]:5555");
        assert_eq!(s.timer, None);
        assert_eq!((s.uid, s.inode), (1000, 4242));
    }

    #[test]
    fn fin_wait2_minisocket_has_a_timewait_timer() {
        let body = diag(
            2,
            5,
            3,
            &[127, 0, 0, 1],
            1,
            &[127, 0, 0, 1],
            2,
            59_000,
            0,
            0,
        );
        let (_, socks) = collect(&msg(SOCK_DIAG_BY_FAMILY, 2, &body));
        assert_eq!(socks[0].state, TcpState::FinWait2);
        assert_eq!(socks[0].timewait_ms(), Some(59_000));
    }

    #[test]
    fn dump_intr_is_reported() {
        let body = diag(2, 1, 0, &[127, 0, 0, 1], 1, &[127, 0, 0, 1], 2, 0, 0, 0);
        let mut buf = msg(SOCK_DIAG_BY_FAMILY, 2 | NLM_F_DUMP_INTR, &body);
        buf.extend(msg(NLMSG_DONE, 2, &[0; 4]));
        assert!(collect(&buf).0.unwrap().interrupted);
    }

    #[test]
    fn kernel_errors_and_malformed_replies() {
        let eperm = (-libc::EPERM).to_ne_bytes();
        assert_eq!(
            collect(&msg(NLMSG_ERROR, 0, &eperm)).0,
            Err(DecodeError::Kernel(libc::EPERM))
        );
        let ok_ack = msg(NLMSG_ERROR, 0, &0i32.to_ne_bytes());
        assert!(collect(&ok_ack).0.is_ok());

        let good = msg(
            SOCK_DIAG_BY_FAMILY,
            2,
            &diag(2, 1, 0, &[1, 2, 3, 4], 1, &[5, 6, 7, 8], 2, 0, 0, 0),
        );
        let bad_cases: Vec<(&str, Vec<u8>)> = vec![
            ("short header", good[..10].to_vec()),
            ("cut message", good[..40].to_vec()),
            ("zero length", {
                let mut b = good.clone();
                b[..4].copy_from_slice(&0u32.to_ne_bytes());
                b
            }),
            ("short body", msg(SOCK_DIAG_BY_FAMILY, 2, &[2, 1, 0, 0])),
            ("bad family", {
                let mut b = good.clone();
                b[16] = 7;
                b
            }),
            ("unknown state", {
                let mut b = good.clone();
                b[17] = 13;
                b
            }),
            ("unknown timer", {
                let mut b = good.clone();
                b[18] = 9;
                b
            }),
            ("foreign type", msg(99, 0, &[])),
        ];
        for (what, buf) in bad_cases {
            match collect(&buf).0 {
                Err(DecodeError::Malformed { .. }) => {}
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn request_asks_for_tcp_and_the_mask() {
        let states = StateSet::of(&[TcpState::TimeWait, TcpState::SynRecv]);
        let req = request(Family::Inet6, states, 7);
        // nlmsghdr + inet_diag_req_v2 (56 bytes).
        assert_eq!(req.len(), 16 + 56);
        assert_eq!(u16_ne(&req, 4), SOCK_DIAG_BY_FAMILY);
        assert_eq!(u16_ne(&req, 6), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(u32_ne(&req, 8), 7);
        assert_eq!(req[16], AF_INET6);
        assert_eq!(req[17], IPPROTO_TCP);
        assert_eq!(u32_ne(&req, 20), (1 << 6) | (1 << 3));
    }

    #[test]
    fn one_walk_request_names_no_family() {
        assert!(one_walk(&[Family::Inet, Family::Inet6]));
        assert!(!one_walk(&[Family::Inet6]));
        let states = StateSet::of(&[TcpState::TimeWait, TcpState::Listen]);
        let req = request_one_walk(states, 9);
        // nlmsghdr + struct inet_diag_req (60 bytes).
        assert_eq!(req.len(), 16 + 60);
        assert_eq!(u32_ne(&req, 0) as usize, req.len());
        assert_eq!(u16_ne(&req, 4), TCPDIAG_GETSOCK);
        assert_eq!(u16_ne(&req, 6), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(u32_ne(&req, 8), 9);
        // AF_UNSPEC, no lengths, no extensions, a zero socket id.
        assert!(req[16..16 + 52].iter().all(|b| *b == 0));
        assert_eq!(u32_ne(&req, 68), (1 << 6) | (1 << 10));
        assert_eq!(u32_ne(&req, 72), 0);
    }

    #[test]
    fn one_walk_replies_decode_like_the_others() {
        let v4 = diag(2, 6, 3, &[127, 0, 0, 1], 1, &[127, 0, 0, 2], 2, 5, 0, 0);
        let v6 = diag(10, 10, 0, &[0; 16], 443, &[0; 16], 0, 0, 0, 7);
        let mut buf = msg(TCPDIAG_GETSOCK, 2, &v4);
        buf.extend(msg(TCPDIAG_GETSOCK, 2, &v6));
        buf.extend(msg(NLMSG_DONE, 2, &[0; 4]));
        assert!(looks_like_dump(&buf));
        let (r, socks) = collect(&buf);
        assert!(r.unwrap().done);
        let families: Vec<Family> = socks.iter().map(|s| s.family).collect();
        assert_eq!(families, [Family::Inet, Family::Inet6]);
    }

    /// Hands out at most `step` bytes per read, as a pipe may.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_capture_read_in_pieces_gives_what_it_gives_whole() {
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/netlink/tcp.dump");
        let whole = std::fs::read(fixture).unwrap();
        let mut want = Vec::new();
        decode_capture(&whole, &mut |s| want.push(*s)).unwrap();
        assert!(want.len() > 10);
        // Every cut of the file, read in pieces of every size: the same sockets, or the same
        // error at the same byte.
        for cut in (0..=whole.len()).step_by(7).chain([whole.len()]) {
            let bytes = &whole[..cut];
            let mut one = Vec::new();
            let expected = decode_capture(bytes, &mut |s| one.push(*s));
            for step in [1, 3, 16, 17, 4096] {
                let mut got = Vec::new();
                let r = read_capture(Trickle { bytes, step }, &mut |s| got.push(*s));
                assert_eq!(r, expected, "cut {cut}, step {step}");
                assert_eq!(got, one, "cut {cut}, step {step}");
            }
        }
    }

    #[test]
    fn a_length_beyond_any_reply_is_refused_before_it_is_read() {
        let mut buf = msg(SOCK_DIAG_BY_FAMILY, 2, &[0; 72]);
        buf[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        let err = read_capture(&buf[..], &mut |_| {}).unwrap_err();
        assert_eq!(
            err,
            malformed(
                0,
                "netlink message length 4294967295 is beyond any sock_diag reply"
            )
        );
    }

    #[test]
    fn capture_needs_every_done() {
        let body = diag(2, 10, 0, &[0; 4], 22, &[0; 4], 0, 0, 0, 1);
        let mut buf = msg(SOCK_DIAG_BY_FAMILY, 2, &body);
        buf.extend(msg(NLMSG_DONE, 2, &[0; 4]));
        buf.extend(msg(SOCK_DIAG_BY_FAMILY, 2, &body));
        let mut n = 0;
        let err = decode_capture(&buf, &mut |_| n += 1).unwrap_err();
        assert!(err.to_string().contains("NLMSG_DONE"), "{err}");
        buf.extend(msg(NLMSG_DONE, 2, &[0; 4]));
        n = 0;
        decode_capture(&buf, &mut |_| n += 1).unwrap();
        assert_eq!(n, 2);
        assert!(looks_like_dump(&buf));
        assert!(!looks_like_dump(b"  sl  local_address rem_address"));
    }
}
