//! Output. Each format has its own renderer; they share the row and section
//! text built here so a table and its plain twin always say the same thing.

pub mod conntrack;
pub mod json;
pub mod listing;
pub mod metrics;
pub mod plain;
pub mod table;

use std::io::{self, Write};

use crate::cli::Format;
use crate::doctor::{Finding, Severity};
use crate::group::{Destination, PortUse, Summary, EXPIRY_WINDOWS, TW_SLOT_SECS};
use crate::model::{decimal, Socket, TcpState, Timer, TimerKind};
use crate::procs::Procs;
use crate::system::PortCapacity;

pub use listing::Stream;

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
        /// Keys as printed (see `Key::label`).
        groups: &'a [(String, u64)],
    },
    /// A listing with a NETNS column (several namespaces) and/or a PROCESS
    /// column (`-p`).
    Annotated {
        socks: &'a [Socket],
        notes: Annotation<'a>,
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

/// The row writer of a format that can stream `tw ls`; `None` for the
/// table, which sizes itself on every row (comfy-table) and ends with the
/// TIME_WAIT histogram of the whole set.
pub fn listing_rows(format: Format) -> Option<Box<dyn listing::Rows>> {
    match format {
        Format::Table => None,
        Format::Plain => Some(Box::new(plain::ListingRows::default())),
        Format::Json => Some(Box::new(json::ListingRows::default())),
    }
}

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
}

impl Annotation<'_> {
    /// A bare listing: no NETNS, no PROCESS.
    pub const NONE: Annotation<'static> = Annotation {
        namespaces: &[],
        procs: None,
    };

    /// Whether rows carry anything beyond the socket's own columns.
    pub fn is_bare(&self) -> bool {
        self.namespaces.is_empty() && self.procs.is_none()
    }

    pub fn netns(&self, s: &Socket) -> Option<&str> {
        (!self.namespaces.is_empty()).then(|| {
            self.namespaces
                .get(usize::from(s.netns))
                .map_or("?", String::as_str)
        })
    }
}

/// An annotated listing as one section without a title.
pub fn annotated_section(socks: &[Socket], a: &Annotation) -> Section {
    let mut headers = Vec::new();
    let mut numeric = Vec::new();
    if !a.namespaces.is_empty() {
        headers.push("NETNS");
        numeric.push(false);
    }
    headers.extend(SOCKET_HEADERS);
    numeric.extend(SOCKET_NUMERIC);
    if a.procs.is_some() {
        headers.push("PROCESS");
        numeric.push(false);
    }
    let rows = socks
        .iter()
        .map(|s| {
            let mut row = Vec::with_capacity(headers.len());
            if let Some(ns) = a.netns(s) {
                row.push(ns.to_string());
            }
            row.extend(socket_row(s));
            if let Some(p) = a.procs {
                row.push(p.label(s.inode));
            }
            row
        })
        .collect();
    Section {
        title: String::new(),
        headers,
        numeric,
        rows,
    }
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
        t.extend_from_slice(s.state.name().as_bytes());
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
            t.extend_from_slice(decimal(n, &mut digits));
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
/// other timers are named: `keepalive 1h59m`, `retransmit 0.2s`.
pub fn timer_text(t: Timer) -> String {
    let mut v = Vec::new();
    push_timer(&mut v, t);
    String::from_utf8_lossy(&v).into_owned()
}

fn push_timer(out: &mut Vec<u8>, t: Timer) {
    if t.kind != TimerKind::TimeWait {
        out.extend_from_slice(t.kind.name().as_bytes());
        out.push(b' ');
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

/// A titled block of rows: the summary is a list of these.
#[derive(Debug)]
pub struct Section {
    pub title: String,
    pub headers: Vec<&'static str>,
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

/// Sections one after another: a blank line between them, each title on a
/// line of its own, and `body` writing the rows of each that has any.
pub fn write_sections(
    out: &mut dyn Write,
    sections: &[Section],
    mut body: impl FnMut(&mut dyn Write, &Section) -> io::Result<()>,
) -> io::Result<()> {
    for (i, sec) in sections.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        if !sec.title.is_empty() {
            writeln!(out, "{}", sec.title)?;
        }
        if !sec.rows.is_empty() {
            body(out, sec)?;
        }
    }
    Ok(())
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
    out.push(time_wait_left_section(&sum.time_wait_left));
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

/// The TIME_WAIT time-left histogram: how many expire in each 5 s slot,
/// soonest first, each with a bar scaled to the fullest slot.
pub fn time_wait_left_section(slots: &[u64]) -> Section {
    let max = slots.iter().copied().max().unwrap_or(0);
    let total: u64 = slots.iter().sum();
    Section {
        title: format!(
            "{total} TIME_WAIT by time left: how many expire in each {TW_SLOT_SECS} s slot"
        ),
        headers: vec!["TIME LEFT", "COUNT", ""],
        numeric: vec![false, true, false],
        rows: (0u32..)
            .zip(slots)
            .map(|(i, n)| {
                vec![
                    format!("{}-{}s", i * TW_SLOT_SECS, (i + 1) * TW_SLOT_SECS),
                    n.to_string(),
                    bar(*n, max, HISTOGRAM_BAR),
                ]
            })
            .collect(),
    }
}

/// Widest histogram bar, in characters.
const HISTOGRAM_BAR: usize = 40;

/// `n` out of `max` as a bar of `width` block characters, in eighths; any
/// count above zero shows at least a sliver.
pub fn bar(n: u64, max: u64, width: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    if n == 0 || max == 0 {
        return String::new();
    }
    let eighths = ((n as f64 / max as f64) * (width * 8) as f64)
        .round()
        .max(1.0) as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(PARTS[eighths % 8]);
    }
    s
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
pub fn groups_section(by: &str, total: u64, groups: &[(String, u64)]) -> Section {
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
    fn bars_scale_to_the_largest_in_eighths() {
        assert_eq!(bar(0, 10, 4), "");
        assert_eq!(bar(10, 10, 4), "████");
        assert_eq!(bar(5, 10, 4), "██");
        assert_eq!(bar(3, 16, 2), "▍"); // 3/16 of 16 eighths = 3
        assert_eq!(bar(1, 1000, 4), "▏"); // never invisible
    }

    #[test]
    fn time_wait_histogram_has_every_slot_soonest_first() {
        let mut slots = [0; crate::group::TW_SLOTS];
        (slots[0], slots[11]) = (2, 4);
        let sec = time_wait_left_section(&slots);
        assert_eq!(sec.rows.len(), 12);
        assert_eq!(sec.rows[0], ["0-5s", "2", &"█".repeat(20)]);
        assert_eq!(sec.rows[1], ["5-10s", "0", ""]);
        assert_eq!(sec.rows[11], ["55-60s", "4", &"█".repeat(40)]);
        assert!(sec.title.starts_with("6 TIME_WAIT by time left"));
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
