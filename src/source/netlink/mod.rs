//! sock_diag netlink, the live reader: the receive loop here, the requests
//! in [`request`], the filter program in [`bytecode`], the decoder (also used
//! for `ss -D` captures) in [`decode`].

pub mod bytecode;
pub mod decode;
pub mod frame;
pub mod request;

use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket as NlSocket, SocketAddr};

pub use decode::{
    decode, decode_capture, decode_with, looks_like_dump, read_capture, DecodeError, Progress,
};
pub use request::{
    one_walk, request, request_ext, request_filtered, request_one_walk, request_one_walk_ext,
    KernelFilter,
};

use crate::model::abi::{EXT_CONG, EXT_INFO, EXT_SKMEMINFO};
use crate::model::internals::{Extras, Wants};
use crate::model::{Family, Flow, Socket, StateSet};

/// The idiag_ext bits for `wants`: tcp_info with the congestion control's
/// name (as `ss -i` asks), and skmeminfo.
pub fn ext_bits(wants: Wants) -> u8 {
    let mut ext = 0;
    if wants.info {
        ext |= EXT_INFO | EXT_CONG;
    }
    if wants.memory {
        ext |= EXT_SKMEMINFO;
    }
    ext
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
    /// The protocol dumped: IPPROTO_TCP unless [`Dumper::set_proto`].
    proto: u8,
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
            proto: libc::IPPROTO_TCP as u8,
            bytes_received: 0,
        })
    }

    /// Dumps `proto` (IPPROTO_UDP for `-u`) from now on. UDP sockets come
    /// as TCP's do, an `inet_diag_msg` each, in TCP_ESTABLISHED (connected)
    /// or TCP_CLOSE (net/ipv4/udp_diag.c).
    pub fn set_proto(&mut self, proto: u8) {
        self.proto = proto;
    }

    /// One dump of `families` (one walk of the hash for both, see
    /// [`one_walk`]), every socket handed to `visit` until it answers
    /// `Break`. An interrupted or failed dump ([`DumpEnd`]) must be read
    /// again, the caller having forgotten what it saw (see `source::read`).
    pub fn dump(
        &mut self,
        families: &[Family],
        states: StateSet,
        kf: &KernelFilter,
        visit: &mut dyn FnMut(&Socket) -> Flow,
    ) -> Result<DumpEnd, DumpError> {
        self.run(
            families,
            states,
            kf,
            Wants::NONE,
            &mut |s, _| visit(s),
            None,
        )
    }

    /// [`Dumper::dump`] asking the kernel for the extras `wants` names too
    /// (idiag_ext), handed to `visit` beside each socket.
    pub fn dump_with(
        &mut self,
        families: &[Family],
        states: StateSet,
        kf: &KernelFilter,
        wants: Wants,
        visit: &mut dyn FnMut(&Socket, Option<&Extras>) -> Flow,
    ) -> Result<DumpEnd, DumpError> {
        self.run(families, states, kf, wants, visit, None)
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
        let end = self.run(
            families,
            states,
            &kf,
            Wants::NONE,
            &mut |_, _| Flow::Continue(()),
            Some(&mut raw),
        )?;
        Ok((end == DumpEnd::Complete).then_some(raw))
    }

    fn run(
        &mut self,
        families: &[Family],
        states: StateSet,
        kf: &KernelFilter,
        wants: Wants,
        visit: &mut dyn FnMut(&Socket, Option<&Extras>) -> Flow,
        mut raw: Option<&mut Vec<u8>>,
    ) -> Result<DumpEnd, DumpError> {
        let ext = ext_bits(wants);
        // Both families and only states to filter on: one walk of the hash.
        // Captures keep a dump per family, as `ss -D` writes them.
        // The legacy request is TCP's alone (TCPDIAG_GETSOCK).
        let tcp = self.proto == libc::IPPROTO_TCP as u8;
        if tcp && self.one_walk && one_walk(families) && !kf.is_active() && raw.is_none() {
            self.seq = self.seq.wrapping_add(1);
            let req = request_one_walk_ext(states, self.seq, ext);
            let mut seen = 0u64;
            let mut count = |s: &Socket, x: Option<&Extras>| {
                seen += 1;
                visit(s, x)
            };
            match dump_family(&self.sock, &req, &mut self.buf, wants, &mut count, None) {
                Ok((end, bytes)) => {
                    self.bytes_received += bytes;
                    return Ok(end);
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
            let req = request_ext(family, self.proto, states, self.seq, kf, ext);
            let (end, bytes) = dump_family(
                &self.sock,
                &req,
                &mut self.buf,
                wants,
                visit,
                raw.as_deref_mut(),
            )?;
            self.bytes_received += bytes;
            if end != DumpEnd::Complete {
                return Ok(end);
            }
        }
        Ok(DumpEnd::Complete)
    }
}

/// How a dump ended, when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpEnd {
    /// Every message up to NLMSG_DONE was read.
    Complete,
    /// The consumer answered `Break`; the rest was not read.
    Stopped,
    /// NLM_F_DUMP_INTR: the tables changed under the dump, which may hold
    /// sockets twice or miss some. Read it again.
    Interrupted,
    /// NLMSG_DONE carried this errno: the dump stopped part way (-ENOMEM
    /// from a dump callback, say). Read it again.
    Failed(i32),
}

fn open() -> std::io::Result<NlSocket> {
    let mut sock = NlSocket::new(NETLINK_SOCK_DIAG)?;
    sock.bind_auto()?;
    // Best effort: a small SO_RCVBUF only costs speed, never correctness.
    let _ = sock.set_rx_buf_sz(SOCK_RCVBUF as libc::c_int);
    Ok(sock)
}

/// One family's dump: how it ended, and the bytes received. With `raw`,
/// the received bytes are kept too. When `visit` answers `Break`, it ends
/// after the buffer at hand: the socket is dropped with the dump under way,
/// which the kernel ends (netlink_release frees the dump's state).
fn dump_family(
    sock: &NlSocket,
    req: &[u8],
    buf: &mut Vec<u8>,
    wants: Wants,
    visit: &mut dyn FnMut(&Socket, Option<&Extras>) -> Flow,
    mut raw: Option<&mut Vec<u8>>,
) -> Result<(DumpEnd, u64), DumpError> {
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
        let p = match decode_with(&buf[..n.min(buf.len())], wants, visit) {
            Ok(p) => p,
            Err(DecodeError::DumpFailed(errno)) => return Ok((DumpEnd::Failed(errno), bytes)),
            Err(DecodeError::Kernel(errno))
                if errno == libc::EPERM
                    || errno == libc::EACCES
                    || errno == libc::ENOENT
                    || errno == libc::EOPNOTSUPP =>
            {
                return Err(DumpError::Unavailable(std::io::Error::from_raw_os_error(
                    errno,
                )))
            }
            Err(other) => return Err(DumpError::Failed(other.to_string())),
        };
        interrupted |= p.interrupted;
        bytes += n as u64;
        if let Some(raw) = raw.as_deref_mut() {
            raw.extend_from_slice(&buf[..p.consumed]);
        }
        if p.done || p.stopped {
            let end = match (interrupted, p.stopped) {
                (true, _) => DumpEnd::Interrupted,
                (false, true) => DumpEnd::Stopped,
                (false, false) => DumpEnd::Complete,
            };
            return Ok((end, bytes));
        }
    }
}
