//! Output. Each format has its own renderer; they share the row and section
//! text built here so a table and its plain twin always say the same thing.

pub mod json;
pub mod plain;
pub mod table;

use std::io::{self, Write};

use crate::cli::Format;
use crate::doctor::{Finding, Severity};
use crate::group::{Destination, Key, PortUse, Summary, EXPIRY_WINDOWS};
use crate::model::{Socket, TcpState, Timer, TimerKind};
use crate::system::PortCapacity;

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
    Ports {
        rows: &'a [(Destination, PortUse)],
        capacity: PortCapacity,
        /// Low end of ip_local_port_range: its parity is connect()'s first choice.
        low: u16,
    },
    Doctor {
        findings: &'a [Finding],
        verbose: bool,
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
        title: "Top local ports by inbound TIME_WAIT (services that close first)".into(),
        headers: vec!["LOCAL PORT", "TIME_WAIT"],
        numeric: vec![false, true],
        rows: sum
            .top_local_ports()
            .into_iter()
            .map(|(p, n)| vec![p.to_string(), n.to_string()])
            .collect(),
    });
    out.push(Section {
        title: "Top destinations by outbound TIME_WAIT (each holds a local port for 60 s)".into(),
        headers: vec!["DESTINATION", "TIME_WAIT"],
        numeric: vec![false, true],
        rows: sum
            .top_destinations()
            .into_iter()
            .map(|(d, n)| vec![d.to_string(), n.to_string()])
            .collect(),
    });
    out
}

/// `tw ports` as a section.
pub fn ports_section(rows: &[(Destination, PortUse)], cap: &PortCapacity, low: u16) -> Section {
    let usable = u64::from(cap.preferred_parity + cap.other_parity);
    let pct = |n: u64, of: u64| {
        if of == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", n as f64 * 100.0 / of as f64)
        }
    };
    Section {
        title: format!(
            "{} outbound destinations; {usable} usable ephemeral ports each \
             ({} reserved), {} of them of the parity connect() tries first (that of {low})",
            rows.len(),
            cap.reserved,
            cap.preferred_parity
        ),
        headers: vec![
            "LOCAL",
            "DESTINATION",
            "HELD",
            "USE",
            "FIRST HALF",
            "STATES",
        ],
        numeric: vec![false, false, true, true, true, false],
        rows: rows
            .iter()
            .map(|(d, u)| {
                let states: Vec<String> = u
                    .states()
                    .iter()
                    .map(|(s, n)| format!("{} {n}", s.name()))
                    .collect();
                vec![
                    d.local.to_string(),
                    d.peer.to_string(),
                    u.held.to_string(),
                    pct(u.held, usable),
                    pct(u.held_preferred, u64::from(cap.preferred_parity)),
                    states.join(", "),
                ]
            })
            .collect(),
    }
}

/// `tw doctor` as text. Problems in full; checks that passed as one line
/// each with `verbose`, else as a list of names. `label` styles a severity.
pub fn write_doctor(
    out: &mut dyn Write,
    findings: &[Finding],
    verbose: bool,
    label: &dyn Fn(Severity) -> String,
) -> io::Result<()> {
    let worst = crate::doctor::worst(findings);
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    writeln!(
        out,
        "{}: {} critical, {} warning, {} ok",
        label(worst),
        count(Severity::Crit),
        count(Severity::Warn),
        count(Severity::Ok)
    )?;
    let mut passed = Vec::new();
    for f in findings {
        if f.severity == Severity::Ok && !verbose {
            passed.push(f.rule);
            continue;
        }
        writeln!(out)?;
        writeln!(out, "{} {}  [{}]", label(f.severity), f.title, f.rule)?;
        for e in &f.evidence {
            write_wrapped(out, "  - ", e)?;
        }
        if !f.why.is_empty() {
            write_wrapped(out, "  why: ", &f.why)?;
        }
        for (i, fix) in f.fixes.iter().enumerate() {
            write_wrapped(out, &format!("  fix {}: ", i + 1), fix)?;
        }
    }
    if !passed.is_empty() {
        passed.dedup();
        writeln!(out)?;
        writeln!(out, "passed: {} (--verbose for details)", passed.join(", "))?;
    }
    Ok(())
}

/// Prose width for doctor's text.
const WRAP: usize = 100;

/// Writes `text` after `lead`, wrapped at [`WRAP`] columns, continuation
/// lines indented to the text.
fn write_wrapped(out: &mut dyn Write, lead: &str, text: &str) -> io::Result<()> {
    let indent = " ".repeat(lead.len());
    let mut line = String::from(lead);
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.len() + 1 + word.len() > WRAP {
            writeln!(out, "{line}")?;
            line.clone_from(&indent);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    writeln!(out, "{line}")
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
    fn prose_wraps_with_a_hanging_indent() {
        let mut out = Vec::new();
        let text = "word ".repeat(60);
        write_wrapped(&mut out, "  fix 1: ", &text).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() > 2);
        assert!(lines.iter().all(|l| l.len() <= WRAP));
        assert!(lines[0].starts_with("  fix 1: word"));
        assert!(lines[1].starts_with("         word"));
        assert_eq!(text.split_whitespace().filter(|w| *w == "word").count(), 60);
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
        assert_eq!(t(TimerKind::Keepalive, 7_200_000), "keepalive 2h00m");
        assert_eq!(t(TimerKind::Retransmit, 200), "retransmit 0.2s");
        assert_eq!(t(TimerKind::Probe0, 1500), "probe0 1.5s");
    }
}
