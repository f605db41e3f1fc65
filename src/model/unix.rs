//! A UNIX socket (`-x`): no address family of IP, so a model of its own.

use super::TcpState;

/// One UNIX socket as unix_diag (or /proc/net/unix) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSocket {
    /// SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET.
    pub kind: UnixKind,
    /// LISTEN, ESTABLISHED, or CLOSE (unconnected; ss's UNCONN).
    pub state: TcpState,
    pub inode: u64,
    /// The peer's inode, 0 for none or unknown (/proc has none).
    pub peer: u64,
    /// The bound path; `@name` for the abstract namespace; `None` unbound.
    pub path: Option<String>,
    /// Bytes queued (for LISTEN: connections waiting, and the backlog);
    /// `None` from /proc, which has neither.
    pub recv_q: Option<u32>,
    pub send_q: Option<u32>,
}

/// A UNIX socket's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnixKind {
    Stream,
    Dgram,
    Seqpacket,
    Other(u8),
}

impl UnixKind {
    /// From SOCK_* (include/linux/net.h): 1 stream, 2 dgram, 5 seqpacket.
    pub fn from_sock_type(t: u8) -> UnixKind {
        match t {
            1 => UnixKind::Stream,
            2 => UnixKind::Dgram,
            5 => UnixKind::Seqpacket,
            n => UnixKind::Other(n),
        }
    }

    /// ss's Netid: u_str, u_dgr, u_seq.
    pub fn name(self) -> &'static str {
        match self {
            UnixKind::Stream => "u_str",
            UnixKind::Dgram => "u_dgr",
            UnixKind::Seqpacket => "u_seq",
            UnixKind::Other(_) => "u_???",
        }
    }
}

impl UnixSocket {
    /// ss's state names for UNIX sockets: LISTEN, ESTAB, UNCONN...
    pub fn state_name(&self) -> &'static str {
        match self.state {
            TcpState::Close => "UNCONN",
            s => s.name(),
        }
    }
}
