//! The one socket model every reader produces and every later stage
//! consumes, and the vocabulary around it: states and their spellings
//! ([`state`]), endpoints and address blocks ([`endpoint`]), port ranges
//! and their arithmetic ([`ports`]), system facts ([`facts`]), the kernel's
//! wire constants ([`abi`]) and the [`Consumer`] readers hand sockets to.

pub mod abi;
pub mod conntrack;
mod consumer;
pub mod endpoint;
pub mod event;
pub mod facts;
pub mod internals;
pub mod ports;
pub mod schema;
pub mod state;
pub mod unix;

pub use consumer::{Consumer, Flow};
pub use endpoint::{decimal, Cidr, Endpoint};
pub use ports::PortRange;
pub use state::{StateSet, TcpState, Timer, TimerKind};

/// Address family of a socket (not of its address: an AF_INET6 socket may
/// carry an IPv4-mapped address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Inet,
    Inet6,
}

impl Family {
    /// The address family's number (AF_INET, AF_INET6), as sock_diag carries it.
    pub fn af(self) -> u8 {
        match self {
            Family::Inet => libc::AF_INET as u8,
            Family::Inet6 => libc::AF_INET6 as u8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Inet6 => "inet6",
        }
    }
}

/// Which side opened the connection, as far as the socket table shows: a
/// socket is inbound when its local port is listening, else outbound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Direction {
    /// Accepted from a listener (or the listener itself).
    #[value(name = "in")]
    Inbound,
    /// Made by connect() from this box.
    #[value(name = "out")]
    Outbound,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        }
    }
}

/// [`Socket::send_q`] of a LISTEN socket read from /proc: its backlog is
/// not there to read.
pub const SEND_Q_UNKNOWN: u32 = u32::MAX;

/// One TCP socket. Small and `Copy`, so readers can hand sockets to a
/// consumer without allocating.
///
/// TIME_WAIT minisockets carry no owner: `uid`, `inode` and the queues are 0
/// (inet_diag: inet_twsk_diag_fill; /proc: get_timewait4_sock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Socket {
    pub family: Family,
    pub state: TcpState,
    pub local: Endpoint,
    pub peer: Endpoint,
    pub timer: Option<Timer>,
    /// Retransmissions (or keepalive probes) so far, as ss's timer third field.
    pub retrans: u8,
    pub recv_q: u32,
    pub send_q: u32,
    pub uid: u32,
    pub inode: u64,
    /// Set by the reader once it has seen the listeners (see `classify`).
    pub direction: Option<Direction>,
    /// Which of the read's network namespaces it is in (0 when one).
    pub netns: u16,
    /// TCP, or UDP with `-u`.
    pub proto: Proto,
}

/// A socket's transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Proto {
    #[default]
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// IPPROTO_TCP or IPPROTO_UDP, as a sock_diag request names it.
    pub fn ipproto(self) -> u8 {
        match self {
            Proto::Tcp => libc::IPPROTO_TCP as u8,
            Proto::Udp => libc::IPPROTO_UDP as u8,
        }
    }
}

impl Socket {
    /// The state as printed: netstat's name, but ss's UNCONN for a UDP
    /// socket with no peer (the kernel's TCP_CLOSE).
    pub fn state_name(&self) -> &'static str {
        match (self.proto, self.state) {
            (Proto::Udp, TcpState::Close) => "UNCONN",
            (_, s) => s.name(),
        }
    }

    /// A socket with no timer, queues or owner: the base readers fill in.
    pub fn new(family: Family, state: TcpState, local: Endpoint, peer: Endpoint) -> Socket {
        Socket {
            family,
            state,
            local,
            peer,
            timer: None,
            retrans: 0,
            recv_q: 0,
            send_q: 0,
            uid: 0,
            inode: 0,
            direction: None,
            netns: 0,
            proto: Proto::Tcp,
        }
    }

    /// Send-Q when known. A LISTEN socket's Send-Q is its backlog from
    /// inet_diag, but /proc/net/tcp prints 0 there (get_tcp4_sock: tx_queue
    /// is write_seq - snd_una), so the /proc reader marks it [`SEND_Q_UNKNOWN`].
    pub fn send_q_known(&self) -> Option<u32> {
        (self.send_q != SEND_Q_UNKNOWN).then_some(self.send_q)
    }

    /// Time left on the timewait timer, if this socket is in the timewait
    /// machinery (TIME_WAIT, or a FIN_WAIT2 minisocket).
    pub fn timewait_ms(&self) -> Option<u32> {
        match self.timer {
            Some(Timer {
                kind: TimerKind::TimeWait,
                ms,
            }) => Some(ms),
            _ => None,
        }
    }
}
