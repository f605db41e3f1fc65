//! What the user asked for: state sets in ss's and netstat's spellings, port
//! ranges, address blocks, and the per-socket test that applies them.

pub mod direction;
pub mod expr;

use crate::model::{Cidr, Direction, Family, PortRange, Socket, StateSet, TcpState};
use crate::query::expr::{Expr, Side};

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

/// Everything a command filters on: states and family (which the kernel
/// applies through the request), direction, and one expression in ss's
/// language built from the trailing words and the --sport/--dport/--src/--dst
/// flags.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub states: StateSet,
    /// `None`: both families.
    pub family: Option<Family>,
    /// `None`: both directions.
    pub direction: Option<Direction>,
    pub expr: Option<Expr>,
    /// Which protocols to read: TCP unless `-u` says otherwise.
    pub protocols: Protocols,
}

/// The protocols a read covers (`-t`, `-u`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocols {
    pub tcp: bool,
    pub udp: bool,
}

impl Default for Protocols {
    fn default() -> Self {
        Protocols {
            tcp: true,
            udp: false,
        }
    }
}

impl Protocols {
    pub fn has(self, p: crate::model::Proto) -> bool {
        match p {
            crate::model::Proto::Tcp => self.tcp,
            crate::model::Proto::Udp => self.udp,
        }
    }
}

/// The flags' part of the expression: each list is an OR of its entries,
/// the lists AND together (None when no flag is given).
pub fn flags_expr(
    sport: &[PortRange],
    dport: &[PortRange],
    src: &[Cidr],
    dst: &[Cidr],
) -> Option<Expr> {
    let any = |items: Vec<Expr>| items.into_iter().reduce(Expr::or);
    let host = |side, c: &Cidr| Expr::Host {
        side,
        net: Some(*c),
        port: None,
    };
    [
        any(sport
            .iter()
            .map(|r| Expr::port_range(Side::Src, *r))
            .collect()),
        any(dport
            .iter()
            .map(|r| Expr::port_range(Side::Dst, *r))
            .collect()),
        any(src.iter().map(|c| host(Side::Src, c)).collect()),
        any(dst.iter().map(|c| host(Side::Dst, c)).collect()),
    ]
    .into_iter()
    .flatten()
    .reduce(Expr::and)
}

impl Filter {
    /// The families a reader must dump.
    pub fn families(&self) -> &'static [Family] {
        match self.family {
            None => &[Family::Inet, Family::Inet6],
            Some(Family::Inet) => &[Family::Inet],
            Some(Family::Inet6) => &[Family::Inet6],
        }
    }

    pub fn matches(&self, s: &Socket) -> bool {
        self.protocols.has(s.proto)
            && self.states.contains(s.state)
            && self.family.is_none_or(|f| f == s.family)
            && (self.direction.is_none() || self.direction == s.direction)
            && self.expr.as_ref().is_none_or(|e| e.matches(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;
    use TcpState::*;

    fn set(states: &[TcpState]) -> StateSet {
        StateSet::of(states)
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

    #[test]
    fn port_ranges() {
        assert_eq!("80".parse(), Ok(PortRange { lo: 80, hi: 80 }));
        assert_eq!(":443".parse(), Ok(PortRange { lo: 443, hi: 443 }));
        assert_eq!(
            "1024-65535".parse(),
            Ok(PortRange {
                lo: 1024,
                hi: 65535
            })
        );
        for bad in ["", "x", "70000", "90-80", "-1"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn filter_combines_lists_with_and() {
        let sock = Socket::new(
            Family::Inet,
            TimeWait,
            Endpoint::new("127.0.0.1".parse().unwrap(), 40000),
            Endpoint::new("10.0.0.5".parse().unwrap(), 80),
        );
        let mut f = Filter::default();
        assert!(f.matches(&sock));
        let dport: Vec<PortRange> = vec!["80".parse().unwrap(), "443".parse().unwrap()];
        let dst: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        f.expr = flags_expr(&[], &dport, &[], &dst);
        assert!(f.matches(&sock));
        f.expr = flags_expr(&["1-1024".parse().unwrap()], &dport, &[], &dst);
        assert!(!f.matches(&sock));
        f.expr = flags_expr(&["40000-40001".parse().unwrap()], &dport, &[], &dst);
        assert!(f.matches(&sock));
        assert!(flags_expr(&[], &[], &[], &[]).is_none());
        f.expr = None;
        f.family = Some(Family::Inet6);
        assert!(!f.matches(&sock));
        f.family = None;
        f.states = set(&[Established]);
        assert!(!f.matches(&sock));
    }
}
