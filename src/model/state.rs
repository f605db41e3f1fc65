//! TCP states as the kernel numbers them, sets of them as inet_diag masks,
//! socket timers, and every spelling people type for a state.

use std::fmt;

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

/// ss's state groups (misc/ss.c, scan_state), with ss's meanings.
const GROUPS: &[(&str, &[TcpState])] = &[
    ("connected", &[TcpState::Close, TcpState::Listen]),
    (
        "synchronized",
        &[TcpState::Close, TcpState::Listen, TcpState::SynSent],
    ),
    ("big", &[TcpState::SynRecv, TcpState::TimeWait]),
];

/// Parses one state name or group, in any of the spellings people type:
/// `time-wait`, `TIME_WAIT`, `timewait`, `TIME-WAIT` (as ss prints it),
/// `established`, `ESTAB`, `all`, `connected`, `bucket` ...
pub fn parse_state_word(word: &str) -> Result<StateSet, String> {
    let key: String = word
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    let one = |s: TcpState| Ok(StateSet::of(&[s]));
    match key.as_str() {
        "all" => return Ok(StateSet::ALL),
        "bucket" => return Ok(StateSet::of(&[TcpState::SynRecv, TcpState::TimeWait])),
        // ss's aliases, and the abbreviations ss prints in its State column.
        "estab" => return one(TcpState::Established),
        "synrcv" => return one(TcpState::SynRecv),
        "listen" => return one(TcpState::Listen),
        "close" | "unconn" | "unconnected" => return one(TcpState::Close),
        _ => {}
    }
    if let Some((_, minus)) = GROUPS.iter().find(|(name, _)| *name == key) {
        return Ok(StateSet::ALL.without(minus));
    }
    for s in TcpState::ALL {
        if s == TcpState::NewSynRecv {
            continue;
        }
        let spellings = [s.name(), s.ss_name()];
        if spellings
            .iter()
            .any(|n| n.replace(['-', '_'], "").eq_ignore_ascii_case(&key))
        {
            return one(s);
        }
    }
    Err(format!(
        "unknown state '{word}'; valid: {}, or a group: all, connected, synchronized, bucket, big",
        valid_state_names()
    ))
}

/// The state names `--state` accepts, for error messages and help.
pub fn valid_state_names() -> String {
    StateSet::ALL
        .iter()
        .map(|s| s.ss_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `--state` values: each may be a comma list; repeated values add up.
pub fn parse_states<S: AsRef<str>>(values: &[S]) -> Result<StateSet, String> {
    if values.is_empty() {
        return Ok(StateSet::ALL);
    }
    let mut set = StateSet::EMPTY;
    for v in values {
        for word in v.as_ref().split(',').map(str::trim) {
            if word.is_empty() {
                continue;
            }
            set = set.union(parse_state_word(word)?);
        }
    }
    if set.is_empty() {
        return Err(format!("--state is empty; valid: {}", valid_state_names()));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TcpState::*;

    fn set(states: &[TcpState]) -> StateSet {
        StateSet::of(states)
    }

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
    fn spellings_of_one_state() {
        for word in [
            "time-wait",
            "TIME_WAIT",
            "TIME-WAIT",
            "timewait",
            "Time_Wait",
        ] {
            assert_eq!(parse_state_word(word), Ok(set(&[TimeWait])), "{word}");
        }
        let cases: &[(&str, TcpState)] = &[
            ("established", Established),
            ("ESTAB", Established),
            ("syn-sent", SynSent),
            ("syn-recv", SynRecv),
            ("syn-rcv", SynRecv),
            ("SYN_RECV", SynRecv),
            ("fin-wait-1", FinWait1),
            ("FIN_WAIT1", FinWait1),
            ("fin-wait-2", FinWait2),
            ("FIN_WAIT2", FinWait2),
            ("closed", Close),
            ("close", Close),
            ("CLOSE", Close),
            ("unconnected", Close),
            ("close-wait", CloseWait),
            ("CLOSE_WAIT", CloseWait),
            ("last-ack", LastAck),
            ("listening", Listen),
            ("listen", Listen),
            ("LISTEN", Listen),
            ("closing", Closing),
        ];
        for (word, state) in cases {
            assert_eq!(parse_state_word(word), Ok(set(&[*state])), "{word}");
        }
    }

    #[test]
    fn ss_groups_have_ss_meanings() {
        // misc/ss.c scan_state: connected = all but CLOSE and LISTEN, and so on.
        let all = StateSet::ALL;
        assert_eq!(parse_state_word("all"), Ok(all));
        assert_eq!(
            parse_state_word("connected"),
            Ok(all.without(&[Close, Listen]))
        );
        assert_eq!(
            parse_state_word("synchronized"),
            Ok(all.without(&[Close, Listen, SynSent]))
        );
        assert_eq!(parse_state_word("bucket"), Ok(set(&[SynRecv, TimeWait])));
        assert_eq!(
            parse_state_word("big"),
            Ok(all.without(&[SynRecv, TimeWait]))
        );
        let connected = parse_state_word("connected").unwrap();
        assert!(connected.contains(TimeWait) && connected.contains(SynRecv));
        assert!(!connected.contains(Listen));
    }

    #[test]
    fn lists_and_repetition_add_up() {
        let s = parse_states(&["time-wait,CLOSE_WAIT", "listen"]).unwrap();
        assert_eq!(s, set(&[TimeWait, CloseWait, Listen]));
        assert_eq!(parse_states::<&str>(&[]), Ok(StateSet::ALL));
        assert_eq!(
            parse_states(&["time-wait", "time-wait"]),
            Ok(set(&[TimeWait]))
        );
    }

    #[test]
    fn unknown_state_lists_the_valid_names() {
        let err = parse_states(&["foo"]).unwrap_err();
        assert!(err.contains("'foo'"), "{err}");
        for name in ["time-wait", "established", "close-wait", "bucket"] {
            assert!(err.contains(name), "{err}");
        }
        assert!(parse_states(&[","]).is_err());
    }
}
