//! Output. Each format has its own renderer; they share the row and section
//! text built here so a table and its plain twin always say the same thing.

pub mod json;
pub mod plain;
pub mod table;

use std::io::{self, Write};

use crate::cli::Format;
use crate::group::{Key, Summary, EXPIRY_WINDOWS};
use crate::model::{Socket, TcpState, Timer, TimerKind};

/// Decided once per run from the terminal and the environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// Colour states in tables (a terminal, and NO_COLOR unset).
    pub color: bool,
    /// Table width; `None` lets the table size itself.
    pub width: Option<u16>,
}

/// What a command has to show.
#[derive(Debug)]
pub enum Report<'a> {
    Summary(&'a Summary),
    Sockets(&'a [Socket]),
    Count(u64),
    Groups {
        by: &'static str,
        total: u64,
        groups: &'a [(Key, u64)],
    },
}

pub fn render(
    format: Format,
    report: &Report,
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    match format {
        Format::Table => table::render(report, out, style),
        Format::Plain => plain::render(report, out),
        Format::Json => json::render(report, out),
    }
}

/// Column headers of a socket listing.
pub const SOCKET_HEADERS: [&str; 8] = [
    "STATE", "LOCAL", "PEER", "TIMER", "RECV-Q", "SEND-Q", "UID", "INODE",
];
/// Which listing columns are numbers (right-aligned).
pub const SOCKET_NUMERIC: [bool; 8] = [false, false, false, false, true, true, true, true];

/// One listing row as text.
pub fn socket_row(s: &Socket) -> [String; 8] {
    [
        s.state.name().to_string(),
        s.local.to_string(),
        s.peer.to_string(),
        s.timer.map_or_else(|| "-".to_string(), timer_text),
        s.recv_q.to_string(),
        s.send_q.to_string(),
        s.uid.to_string(),
        s.inode.to_string(),
    ]
}

/// `41.3s` for the timewait timer (TIME_WAIT and FIN_WAIT2 minisockets);
/// other timers are named: `keepalive 1h59m`, `retransmit 0.2s`.
pub fn timer_text(t: Timer) -> String {
    match t.kind {
        TimerKind::TimeWait => duration(t.ms),
        k => format!("{} {}", k.name(), duration(t.ms)),
    }
}

/// Milliseconds as `41.3s`, `2m05s`, `1h59m`.
pub fn duration(ms: u32) -> String {
    let s = ms / 1000;
    if ms < 60_000 {
        format!("{}.{}s", s, (ms % 1000) / 100)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// A titled block of rows: the summary is a list of these.
#[derive(Debug)]
pub struct Section {
    pub title: String,
    pub headers: Vec<&'static str>,
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

/// The summary as sections, shared by the table and plain renderers.
pub fn summary_sections(sum: &Summary) -> Vec<Section> {
    let mut out = Vec::new();
    let share = |n: u64| {
        if sum.total == 0 {
            "0%".to_string()
        } else {
            format!("{:.1}%", n as f64 * 100.0 / sum.total as f64)
        }
    };
    out.push(Section {
        title: format!(
            "{} TCP sockets: {} IPv4, {} IPv6",
            sum.total, sum.ipv4, sum.ipv6
        ),
        headers: vec!["STATE", "COUNT", "SHARE"],
        numeric: vec![false, true, true],
        rows: sum
            .states()
            .into_iter()
            .map(|(s, n)| vec![s.name().to_string(), n.to_string(), share(n)])
            .collect(),
    });
    let tw = sum.count(TcpState::TimeWait);
    if tw == 0 {
        return out;
    }
    out.push(Section {
        title: format!(
            "{tw} TIME_WAIT: {} inbound (this box closed accepted connections first), \
             {} outbound (it closed its own connections first); each lasts 60 s",
            sum.time_wait_inbound, sum.time_wait_outbound
        ),
        headers: vec!["EXPIRING WITHIN", "COUNT"],
        numeric: vec![false, true],
        rows: EXPIRY_WINDOWS
            .iter()
            .zip(sum.time_wait_expiring)
            .map(|(w, n)| vec![format!("{w}s"), n.to_string()])
            .collect(),
    });
    out.push(Section {
        title: "Top peers by TIME_WAIT".into(),
        headers: vec!["PEER", "TIME_WAIT"],
        numeric: vec![false, true],
        rows: sum
            .top_peers()
            .into_iter()
            .map(|(a, n)| vec![a.to_string(), n.to_string()])
            .collect(),
    });
    out.push(Section {
        title: "Top local ports by TIME_WAIT".into(),
        headers: vec!["LOCAL PORT", "TIME_WAIT"],
        numeric: vec![false, true],
        rows: sum
            .top_local_ports()
            .into_iter()
            .map(|(p, n)| vec![p.to_string(), n.to_string()])
            .collect(),
    });
    out
}

/// The listing of `count --by` as a section.
pub fn groups_section(by: &str, total: u64, groups: &[(Key, u64)]) -> Section {
    Section {
        title: format!("{total} sockets by {by}"),
        headers: vec!["KEY", "COUNT"],
        numeric: vec![false, true],
        rows: groups
            .iter()
            .map(|(k, n)| vec![k.to_string(), n.to_string()])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(t(TimerKind::Keepalive, 7_200_000), "keepalive 2h00m");
        assert_eq!(t(TimerKind::Retransmit, 200), "retransmit 0.2s");
        assert_eq!(t(TimerKind::Probe0, 1500), "probe0 1.5s");
    }
}
