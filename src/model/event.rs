//! A TCP event from the kernel (`tw trace`): what happened, to which socket,
//! in which network namespace, and which process it is attributed to.

use std::net::IpAddr;

use super::{Direction, Endpoint, Family, TcpState};

/// What happened. The names are the JSON Lines count keys (README.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// connect() sent its SYN (tcp_v4_connect/tcp_v6_connect returned 0).
    Connect,
    /// accept() returned a connection.
    Accept,
    /// close() or shutdown() sent the first FIN: this process closed first.
    CloseFirst,
    /// The socket became a TIME_WAIT minisocket (tcp_time_wait), directly or
    /// in the FIN_WAIT2 substate (see [`Event::substate`]).
    TimeWait,
    /// connect() took over a TIME_WAIT 4-tuple (tcp_tw_reuse).
    TwReuse,
    /// connect() failed with EADDRNOTAVAIL: no local port was free.
    ConnectFail,
    RstSent,
    RstRecv,
    Retransmit,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::Connect,
        EventKind::Accept,
        EventKind::CloseFirst,
        EventKind::TimeWait,
        EventKind::TwReuse,
        EventKind::ConnectFail,
        EventKind::RstSent,
        EventKind::RstRecv,
        EventKind::Retransmit,
    ];

    /// The kernel program's number for it (bpf/tw.bpf.c enum tw_kind).
    pub fn from_wire(n: u8) -> Option<EventKind> {
        EventKind::ALL.get(usize::from(n).checked_sub(1)?).copied()
    }

    /// The JSON key.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Connect => "connect",
            EventKind::Accept => "accept",
            EventKind::CloseFirst => "close_first",
            EventKind::TimeWait => "time_wait",
            EventKind::TwReuse => "tw_reuse",
            EventKind::ConnectFail => "connect_fail",
            EventKind::RstSent => "rst_sent",
            EventKind::RstRecv => "rst_recv",
            EventKind::Retransmit => "retransmit",
        }
    }
}

/// The process an event is attributed to: the task that made the call
/// (connect, accept, close, a failed connect), or for events in softirq and
/// timer context the socket's last owner (the task that connected, accepted
/// or closed it). pid 0 when none is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Process {
    /// Thread-group id (what `ps` calls the PID).
    pub pid: u32,
    pub comm: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns).
    pub ts_ns: u64,
    /// Inode of the network namespace (as `ls -L -i /proc/PID/ns/net`).
    pub netns: u32,
    pub kind: EventKind,
    pub process: Process,
    pub family: Family,
    pub local: Endpoint,
    pub peer: Endpoint,
    /// Known when tw saw the connect() or accept() of the socket.
    pub direction: Option<Direction>,
    /// TimeWait: TimeWait, or FinWait2 for the FIN_WAIT2 substate (the peer's
    /// FIN had not come yet). CloseFirst: the state it closed from.
    pub substate: Option<TcpState>,
}

impl Event {
    /// Where the connection goes, as a key: the peer for outbound (and
    /// unknown) sockets; for inbound ones the peer's address alone, since
    /// its port is the client's ephemeral port.
    pub fn destination(&self) -> (IpAddr, Option<u16>) {
        match self.direction {
            Some(Direction::Inbound) => (self.peer.addr, None),
            _ => (self.peer.addr, Some(self.peer.port)),
        }
    }
}
