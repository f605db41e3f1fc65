//! The one socket model every reader produces and every later stage consumes.

pub mod event;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A TCP state as the kernel numbers it (include/net/tcp_states.h).
///
/// `NewSynRecv` is the request-socket state; both inet_diag and /proc report
/// request sockets as `SYN_RECV`, so it only appears in masks, never in output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
    NewSynRecv = 12,
}

impl TcpState {
    /// Every state, in kernel order.
    pub const ALL: [TcpState; 12] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
        TcpState::NewSynRecv,
    ];

    /// The state for a kernel state number, `None` for numbers this build does
    /// not know (such as TCP_BOUND_INACTIVE = 13, which tw never asks for).
    pub fn from_kernel(n: u8) -> Option<TcpState> {
        TcpState::ALL.get(usize::from(n).checked_sub(1)?).copied()
    }

    pub fn kernel(self) -> u8 {
        self as u8
    }

    /// This state's bit in an inet_diag state mask.
    pub fn bit(self) -> u32 {
        1 << self.kernel()
    }

    /// netstat's spelling, the one tw prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NEW_SYN_RECV",
        }
    }

    /// ss's spelling, accepted on input alongside netstat's.
    pub fn ss_name(self) -> &'static str {
        match self {
            TcpState::Established => "established",
            TcpState::SynSent => "syn-sent",
            TcpState::SynRecv => "syn-recv",
            TcpState::FinWait1 => "fin-wait-1",
            TcpState::FinWait2 => "fin-wait-2",
            TcpState::TimeWait => "time-wait",
            TcpState::Close => "closed",
            TcpState::CloseWait => "close-wait",
            TcpState::LastAck => "last-ack",
            TcpState::Listen => "listening",
            TcpState::Closing => "closing",
            TcpState::NewSynRecv => "new-syn-recv",
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A set of states, stored as an inet_diag state mask (bit n = kernel state n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateSet(u32);

impl StateSet {
    pub const EMPTY: StateSet = StateSet(0);

    /// ss's `all`: states 1..=11, the 0xfff that `ss -a` sends. Bit 13
    /// (TCP_BOUND_INACTIVE) is left out on purpose: it makes the kernel also walk
    /// the bind hash, where every TIME_WAIT socket sits again.
    pub const ALL: StateSet = StateSet(0xffe);

    pub fn of(states: &[TcpState]) -> StateSet {
        StateSet(states.iter().fold(0, |m, s| m | s.bit()))
    }

    pub fn mask(self) -> u32 {
        self.0
    }

    pub fn contains(self, s: TcpState) -> bool {
        // Request sockets are reported as SYN_RECV; treat both as one.
        let s = if s == TcpState::NewSynRecv {
            TcpState::SynRecv
        } else {
            s
        };
        self.0 & s.bit() != 0
    }

    pub fn union(self, other: StateSet) -> StateSet {
        StateSet(self.0 | other.0)
    }

    pub fn without(self, states: &[TcpState]) -> StateSet {
        self.minus(StateSet::of(states))
    }

    pub fn minus(self, other: StateSet) -> StateSet {
        StateSet(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn is_all(self) -> bool {
        self.0 & StateSet::ALL.0 == StateSet::ALL.0
    }

    /// The mask to send in an inet_diag request. The kernel adds NEW_SYN_RECV
    /// itself when SYN_RECV is asked for (net/ipv4/inet_diag.c).
    pub fn kernel_mask(self) -> u32 {
        self.0 & StateSet::ALL.0
    }

    pub fn iter(self) -> impl Iterator<Item = TcpState> {
        TcpState::ALL
            .into_iter()
            .filter(move |s| *s != TcpState::NewSynRecv && self.0 & s.bit() != 0)
    }
}

impl Default for StateSet {
    fn default() -> Self {
        StateSet::ALL
    }
}

/// The kind of a pending socket timer, as inet_diag's `idiag_timer` and
/// /proc/net/tcp's `tr` number them (net/ipv4/tcp_ipv4.c, get_tcp4_sock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKind {
    /// Retransmit, reorder or tail-loss probe (ICSK_TIME_RETRANS and friends).
    Retransmit,
    /// The socket's sk_timer: keepalive, or the orphaned FIN_WAIT2 timer.
    Keepalive,
    /// The timewait timer of a TIME_WAIT or FIN_WAIT2 minisocket.
    TimeWait,
    /// Zero-window probe (ICSK_TIME_PROBE0).
    Probe0,
}

impl TimerKind {
    /// `None` for 0 (no timer pending); `Err` for numbers the kernel never uses.
    pub fn from_code(code: u8) -> Result<Option<TimerKind>, u8> {
        match code {
            0 => Ok(None),
            1 => Ok(Some(TimerKind::Retransmit)),
            2 => Ok(Some(TimerKind::Keepalive)),
            3 => Ok(Some(TimerKind::TimeWait)),
            4 => Ok(Some(TimerKind::Probe0)),
            n => Err(n),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TimerKind::Retransmit => "retransmit",
            TimerKind::Keepalive => "keepalive",
            TimerKind::TimeWait => "timewait",
            TimerKind::Probe0 => "probe0",
        }
    }
}

/// A pending timer and the time left on it, in milliseconds. The kernel
/// clamps an overdue timer at 0: a TIME_WAIT socket at 0 ms is waiting for
/// the timer wheel to reap it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timer {
    pub kind: TimerKind,
    pub ms: u32,
}

/// An address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

/// Room for the longest endpoint text,
/// `[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535` (53 bytes).
const ENDPOINT_TEXT_MAX: usize = 56;

impl Endpoint {
    pub fn new(addr: IpAddr, port: u16) -> Endpoint {
        Endpoint { addr, port }
    }

    /// Appends the text `Display` prints. Listings print a million of these,
    /// so this neither allocates nor goes through `fmt` for IPv4.
    pub fn push_text(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; ENDPOINT_TEXT_MAX];
        let n = self.text(&mut buf);
        out.extend_from_slice(&buf[..n]);
    }

    /// Writes the text into `buf`; returns its length.
    fn text(&self, buf: &mut [u8; ENDPOINT_TEXT_MAX]) -> usize {
        use std::io::Write;
        let mut digits = [0u8; 20];
        let mut w = &mut buf[..];
        // Writes to a slice fail only when it is full, which 56 bytes never is.
        match self.addr {
            IpAddr::V4(a) => {
                for (i, o) in a.octets().into_iter().enumerate() {
                    let [d0, d1, d2, len] = OCTET_TEXT[usize::from(o)];
                    let _ =
                        w.write_all(&[b'.', d0, d1, d2][usize::from(i == 0)..=usize::from(len)]);
                }
            }
            // The compressed form (RFC 5952) is std's; IPv6 is the rare case.
            IpAddr::V6(a) => {
                let _ = write!(w, "[{a}]");
            }
        }
        let _ = w.write_all(b":");
        let _ = match self.port {
            0 => w.write_all(b"*"),
            p => w.write_all(decimal(u64::from(p), &mut digits)),
        };
        ENDPOINT_TEXT_MAX - w.len()
    }
}

/// Each byte value in decimal, as up to three digits and their count.
const OCTET_TEXT: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let d = [
            b'0' + (i / 100) as u8,
            b'0' + (i / 10 % 10) as u8,
            b'0' + (i % 10) as u8,
        ];
        t[i] = match i {
            0..=9 => [d[2], 0, 0, 1],
            10..=99 => [d[1], d[2], 0, 2],
            _ => [d[0], d[1], d[2], 3],
        };
        i += 1;
    }
    t
};

/// `n` in decimal, written at the end of `buf`; returns the digits. Faster
/// than `fmt` where a listing prints millions of numbers.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

impl fmt::Display for Endpoint {
    /// `127.0.0.1:80`, `[::1]:80`, and port 0 (a listener's peer) as `*`,
    /// the forms ss and netstat print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ENDPOINT_TEXT_MAX];
        let n = self.text(&mut buf);
        f.pad(std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?)
    }
}

/// Address family of a socket (not of its address: an AF_INET6 socket may
/// carry an IPv4-mapped address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Inet,
    Inet6,
}

impl Family {
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
}

impl Socket {
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
        }
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

/// An inclusive port range; a single port is `lo == hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }

    /// Number of ports, 0 if `lo > hi`.
    pub fn len(&self) -> u32 {
        (u32::from(self.hi) + 1).saturating_sub(u32::from(self.lo))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromStr for PortRange {
    type Err = String;

    /// `80`, `:80` (ss's form), `1024-65535`.
    fn from_str(s: &str) -> Result<PortRange, String> {
        let t = s.trim().trim_start_matches(':');
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("'{s}' is not a port or range (80, 1024-65535)"))
        };
        let (lo, hi) = match t.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(t)?, port(t)?),
        };
        if lo > hi {
            return Err(format!("'{s}': range start is above its end"));
        }
        Ok(PortRange { lo, hi })
    }
}

/// An address or a CIDR block, for `--src`/`--dst`. An IPv4 block also
/// matches IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`), since those are
/// the same peer seen through an AF_INET6 socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq32(net, ip, self.prefix),
            (IpAddr::V4(net), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|ip| prefix_eq32(net, ip, self.prefix)),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq128(net, ip, self.prefix),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

fn prefix_eq32(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(a) & mask == u32::from(b) & mask
}

fn prefix_eq128(a: Ipv6Addr, b: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    u128::from(a) & mask == u128::from(b) & mask
}

impl FromStr for Cidr {
    type Err = String;

    /// `10.0.0.0/8`, `127.0.0.1`, `::1`, `[::1]`, `fd00::/8`.
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or CIDR block (10.0.0.0/8, ::1)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("'{s}': prefix length must be 0..={max}")),
            },
        };
        Ok(Cidr { addr, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_numbers_round_trip() {
        for s in TcpState::ALL {
            assert_eq!(TcpState::from_kernel(s.kernel()), Some(s));
        }
        assert_eq!(TcpState::from_kernel(0), None);
        assert_eq!(TcpState::from_kernel(13), None);
        assert_eq!(TcpState::from_kernel(255), None);
        assert_eq!(TcpState::TimeWait.bit(), 1 << 6);
    }

    #[test]
    fn all_is_what_ss_dash_a_sends() {
        assert_eq!(StateSet::ALL.kernel_mask() | 1, 0xfff);
        assert_eq!(StateSet::ALL.iter().count(), 11);
    }

    #[test]
    fn new_syn_recv_counts_as_syn_recv() {
        let s = StateSet::of(&[TcpState::SynRecv]);
        assert!(s.contains(TcpState::NewSynRecv));
        assert!(!StateSet::of(&[TcpState::Listen]).contains(TcpState::NewSynRecv));
    }

    #[test]
    fn decimals_and_endpoint_text_match_fmt() {
        let mut buf = [0u8; 20];
        for n in [0, 7, 10, 99, 65535, 4_294_967_295, u64::MAX] {
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
        for (ip, port) in [
            ("255.255.255.255", 65535),
            ("0.0.0.0", 0),
            ("10.99.100.7", 80),
            ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 65535),
            ("::ffff:10.0.0.1", 1),
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            // What std's formatting makes of it, as ss prints it.
            let want = match (addr, port) {
                (IpAddr::V4(a), 0) => format!("{a}:*"),
                (IpAddr::V4(a), p) => format!("{a}:{p}"),
                (IpAddr::V6(a), 0) => format!("[{a}]:*"),
                (IpAddr::V6(a), p) => format!("[{a}]:{p}"),
            };
            let e = Endpoint::new(addr, port);
            let mut v = Vec::new();
            e.push_text(&mut v);
            assert_eq!(String::from_utf8(v).unwrap(), want);
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn endpoints_print_like_ss() {
        let v4 = Endpoint::new("127.0.0.1".parse().unwrap(), 80);
        let v6 = Endpoint::new("::1".parse().unwrap(), 443);
        let mapped = Endpoint::new("::ffff:127.0.0.1".parse().unwrap(), 8080);
        assert_eq!(v4.to_string(), "127.0.0.1:80");
        assert_eq!(v6.to_string(), "[::1]:443");
        assert_eq!(mapped.to_string(), "[::ffff:127.0.0.1]:8080");
        assert_eq!(format!("{v4:<14}|"), "127.0.0.1:80  |");
        let any = Endpoint::new("0.0.0.0".parse().unwrap(), 0);
        assert_eq!(any.to_string(), "0.0.0.0:*");
        assert_eq!(
            Endpoint::new("::".parse().unwrap(), 0).to_string(),
            "[::]:*"
        );
    }

    #[test]
    fn cidr_matching() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.1.2.3", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.0.0.0/8", "::ffff:10.9.9.9", true),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("0.0.0.0/0", "1.2.3.4", true),
            ("::/0", "::1", true),
            ("::/0", "1.2.3.4", false),
            ("[::1]", "::1", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::1/128", "::2", false),
        ];
        for (cidr, ip, want) in cases {
            let c: Cidr = cidr.parse().unwrap();
            assert_eq!(c.contains(ip.parse().unwrap()), *want, "{cidr} ∋ {ip}");
        }
    }

    #[test]
    fn cidr_errors_name_the_input() {
        for bad in ["10.0.0.0/33", "::/129", "nope", "10.0.0.0/x", ""] {
            let err = bad.parse::<Cidr>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}
