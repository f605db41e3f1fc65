//! The text of one socket row, shared by every format's listing.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::model::{decimal, Socket, Timer, TimerKind};
use crate::source::owners::Procs;

/// Column headers of a socket listing.
pub const SOCKET_HEADERS: [&str; 8] = [
    "STATE", "LOCAL", "PEER", "TIMER", "RECV-Q", "SEND-Q", "UID", "INODE",
];
/// Which listing columns are numbers (right-aligned).
pub const SOCKET_NUMERIC: [bool; 8] = [false, false, false, false, true, true, true, true];

/// What an annotated listing adds to each row.
#[derive(Debug, Clone, Copy)]
pub struct Annotation<'a> {
    /// Labels of the namespaces read; empty: no NETNS column.
    pub namespaces: &'a [String],
    /// Owners of sockets; `None`: no PROCESS column.
    pub procs: Option<&'a Procs>,
    /// A NETID column (`tcp`, `udp`), as ss prints when a listing has more
    /// than one protocol.
    pub netid: bool,
}

impl Annotation<'_> {
    /// A bare listing: no NETNS, no PROCESS.
    pub const NONE: Annotation<'static> = Annotation {
        namespaces: &[],
        procs: None,
        netid: false,
    };

    /// Whether rows carry anything beyond the socket's own columns.
    pub fn is_bare(&self) -> bool {
        self.namespaces.is_empty() && self.procs.is_none() && !self.netid
    }

    /// The NETID cell, ss's name for the protocol, when there is a column.
    pub fn netid_text(&self, s: &Socket) -> Option<&'static str> {
        self.netid.then(|| s.proto.name())
    }

    /// The NETNS cell for a terminal ([`printable`]); JSON takes [`Self::netns`].
    pub fn netns_text(&self, s: &Socket) -> Option<Cow<'_, str>> {
        self.netns(s).map(printable)
    }

    /// The PROCESS cell for a terminal: command names are anyone's to choose
    /// (prctl(PR_SET_NAME)).
    pub fn owner_text(&self, s: &Socket) -> Option<String> {
        self.procs
            .map(|p| printable(&p.label(s.inode)).into_owned())
    }

    pub fn netns(&self, s: &Socket) -> Option<&str> {
        (!self.namespaces.is_empty()).then(|| {
            self.namespaces
                .get(usize::from(s.netns))
                .map_or("?", String::as_str)
        })
    }
}

/// Text from outside (a process name, a namespace name, a path) made safe
/// for a terminal: control characters (ESC, BEL, newline, DEL, C1) are
/// written as escapes (`\x1b`, `\n`), so they neither drive the terminal nor
/// split a row.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// One listing row as text.
pub fn socket_row(s: &Socket) -> [String; 8] {
    let mut cells = SocketCells::default();
    cells.fill(s);
    std::array::from_fn(|i| String::from_utf8_lossy(cells.cell(i)).into_owned())
}

/// A listing row's text in one reusable buffer, the same text as
/// [`socket_row`]: a listing of a million sockets formats each row twice
/// (widths, then the row) and allocates for none of them.
#[derive(Debug, Default)]
pub struct SocketCells {
    text: Vec<u8>,
    ends: [usize; 8],
}

impl SocketCells {
    pub fn fill(&mut self, s: &Socket) {
        let t = &mut self.text;
        let mut digits = [0u8; 20];
        t.clear();
        t.extend_from_slice(s.state_name().as_bytes());
        self.ends[0] = t.len();
        s.local.push_text(t);
        self.ends[1] = t.len();
        s.peer.push_text(t);
        self.ends[2] = t.len();
        match s.timer {
            None => t.push(b'-'),
            Some(timer) => push_timer(t, timer),
        }
        self.ends[3] = t.len();
        let numbers = [
            u64::from(s.recv_q),
            u64::from(s.send_q),
            u64::from(s.uid),
            s.inode,
        ];
        for (i, n) in numbers.into_iter().enumerate() {
            if i == 1 && s.send_q_known().is_none() {
                // A listener's backlog from /proc: unknown, not 0.
                t.push(b'-');
            } else {
                t.extend_from_slice(decimal(n, &mut digits));
            }
            self.ends[4 + i] = t.len();
        }
    }

    /// Cell `i` (0..8, in [`SOCKET_HEADERS`] order); ASCII.
    pub fn cell(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

/// `41.3s` for the timewait timer (TIME_WAIT and FIN_WAIT2 minisockets);
/// other timers are named: `keepalive:1h59m`, `retransmit:0.2s` (one token,
/// so that plain output stays one field per column).
pub fn timer_text(t: Timer) -> String {
    let mut v = Vec::new();
    push_timer(&mut v, t);
    String::from_utf8_lossy(&v).into_owned()
}

fn push_timer(out: &mut Vec<u8>, t: Timer) {
    if t.kind != TimerKind::TimeWait {
        out.extend_from_slice(t.kind.name().as_bytes());
        out.push(b':');
    }
    push_duration(out, t.ms);
}

/// Milliseconds as `41.3s`, `2m05s`, `1h59m`.
pub fn duration(ms: u32) -> String {
    let mut v = Vec::new();
    push_duration(&mut v, ms);
    String::from_utf8_lossy(&v).into_owned()
}

fn push_duration(out: &mut Vec<u8>, ms: u32) {
    let mut digits = [0u8; 20];
    let s = ms / 1000;
    let (big, sep, small, unit) = if ms < 60_000 {
        (s, b'.', (ms % 1000) / 100, b's')
    } else if ms < 3_600_000 {
        (s / 60, b'm', s % 60, b's')
    } else {
        (s / 3600, b'h', (s % 3600) / 60, b'm')
    };
    out.extend_from_slice(decimal(u64::from(big), &mut digits));
    out.push(sep);
    // Tenths of a second are one digit; minutes and seconds two.
    if sep != b'.' && small < 10 {
        out.push(b'0');
    }
    out.extend_from_slice(decimal(u64::from(small), &mut digits));
    out.push(unit);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12 item 7: a process named with ESC, BEL or a newline reached the terminal raw.
    #[test]
    fn control_characters_from_outside_are_escaped() {
        assert_eq!(printable("nginx"), "nginx");
        assert!(matches!(printable("nginx: worker"), Cow::Borrowed(_)));
        assert_eq!(
            printable("a\x1b]0;pwned\x07b\nc\rd\te\x7f\u{9b}f"),
            "a\\x1b]0;pwned\\x07b\\nc\\rd\\te\\x7f\\x9bf"
        );
        assert_eq!(printable("café"), "café");
    }

    #[test]
    fn durations() {
        let cases = [
            (0, "0.0s"),
            (41_349, "41.3s"),
            (59_999, "59.9s"),
            (60_000, "1m00s"),
            (125_000, "2m05s"),
            (7_199_990, "1h59m"),
        ];
        for (ms, want) in cases {
            assert_eq!(duration(ms), want, "{ms}");
        }
    }

    #[test]
    fn timers_name_all_but_timewait() {
        let t = |kind, ms| timer_text(Timer { kind, ms });
        assert_eq!(t(TimerKind::TimeWait, 41_300), "41.3s");
        assert_eq!(t(TimerKind::Keepalive, 7_200_000), "keepalive:2h00m");
        assert_eq!(t(TimerKind::Retransmit, 200), "retransmit:0.2s");
        assert_eq!(t(TimerKind::Probe0, 1500), "probe0:1.5s");
    }
}
