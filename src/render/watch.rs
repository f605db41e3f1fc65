//! `tw watch`'s text: JSON Lines, the plain one-line-per-interval view, and
//! the numbers and times that the live view and `tw plot` share.

use std::io::Write;

use crate::analyze::watch::Record;
use crate::model::TcpState;

/// One record as a JSON line, flushed so a reader sees it at once.
pub fn write_line(out: &mut dyn Write, r: &Record) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, r)?;
    out.write_all(b"\n")?;
    out.flush()
}

const PLAIN_COLUMNS: [&str; 9] = [
    "TIME",
    "TIME_WAIT",
    "NEW/S",
    "RATE/S",
    "FORECAST",
    "KERNEL/S",
    "ESTABLISHED",
    "CLOSE_WAIT",
    "FIRST FULL",
];

/// `--format plain`'s header line.
pub fn plain_header() -> String {
    plain_row(PLAIN_COLUMNS.map(String::from))
}

/// Columns two spaces apart, the numbers right-aligned under their names.
fn plain_row(c: [String; 9]) -> String {
    format!(
        "{:<8}  {:>9}  {:>6}  {:>7}  {:>8}  {:>8}  {:>11}  {:>10}  {}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
    )
}

/// `--format plain`: one aligned line per interval, like vmstat.
pub fn plain_line(r: &Record) -> String {
    let tw = &r.time_wait;
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    let kernel = tw.kernel_tw.zip(r.interval_s).map(|(n, s)| n as f64 / s);
    let full = r
        .destinations
        .first()
        .filter(|d| d.exhausted_in_s.is_some())
        .map_or_else(
            || "-".to_string(),
            |d| format!("{} -> {} in {}", d.local, d.peer, seconds(d.exhausted_in_s)),
        );
    let state = |s: TcpState| r.states.get(s).to_string();
    let row = plain_row([
        clock(r.time),
        tw.count.to_string(),
        opt(tw.inflow_per_s),
        opt(tw.rate_per_s),
        tw.forecast
            .map_or_else(|| "-".to_string(), |f| f.to_string()),
        opt(kernel),
        state(TcpState::Established),
        state(TcpState::CloseWait),
        full,
    ]);
    match events_text(r) {
        Some(e) => format!("{row}  [{e}]"),
        None => row,
    }
}

/// With events, what they add to a line: connect() failures, takeovers, the
/// busiest process, and how old the dumped figures are. `None` without.
pub fn events_text(r: &Record) -> Option<String> {
    if r.inflow_from != Some(crate::analyze::watch::InflowFrom::Events) {
        return None;
    }
    let tw = &r.time_wait;
    let mut parts = vec![
        "exact from events".to_string(),
        format!("connect() failed {}", tw.connect_failed.unwrap_or(0)),
        format!("taken over {}", tw.tw_reused.unwrap_or(0)),
    ];
    if let Some(p) = r.processes.as_ref().and_then(|p| p.first()) {
        parts.push(format!("most {}/{} {:.1}/s", p.comm, p.pid, p.rate_per_s));
    }
    if let Some(age) = r.dump_age_s.filter(|a| *a >= 0.5) {
        parts.push(format!("states {age:.0}s old"));
    }
    if let Some(n) = r.events_lost.filter(|n| *n > 0) {
        parts.push(format!("{n} events lost"));
    }
    Some(parts.join(", "))
}

/// A time to exhaustion: `now`, `6s`, `never`.
pub fn seconds(t: Option<f64>) -> String {
    match t {
        None => "never".to_string(),
        Some(t) if t < 0.5 => "now".to_string(),
        Some(t) => format!("{t:.0}s"),
    }
}

/// Local wall-clock time of a Unix timestamp, `HH:MM:SS`.
pub fn clock(unix_s: f64) -> String {
    date_time(unix_s).split_off(11)
}

/// Local date and time of a Unix timestamp, `YYYY-MM-DD HH:MM:SS`.
pub fn date_time(unix_s: f64) -> String {
    let t = unix_s as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which we own; an all-zero
    // tm is a valid value to start from.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return "????-??-?? ??:??:??".to_string();
    }
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// `12034` as `12,034`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::watch::tests::{sample, tw};
    use crate::analyze::watch::Watcher;
    use crate::model::{Socket, StateSet};

    #[test]
    fn records_round_trip_through_json() {
        let mut w = Watcher::new(5, StateSet::ALL);
        sample(&mut w, 0, 0, &[tw(40000, 30_000)]);
        let r = sample(&mut w, 1000, 1, &[tw(40000, 29_000), tw(40001, 59_000)]);
        let mut line = Vec::new();
        write_line(&mut line, &r).unwrap();
        assert!(line.ends_with(b"}\n") && !line[..line.len() - 1].contains(&b'\n'));
        let back: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, r);
        let json: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(json["states"].as_object().unwrap().len(), 11);
    }

    #[test]
    fn plain_lines_line_up_with_the_header() {
        let mut w = Watcher::new(5, StateSet::ALL);
        sample(&mut w, 0, 0, &[]);
        let socks: Vec<Socket> = (0..100).map(|i| tw(40000 + i, 59_000)).collect();
        let r = sample(&mut w, 1000, 100, &socks);
        let line = plain_line(&r);
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            &cols[1..8],
            ["100", "100.0", "100.0", "6000", "100.0", "0", "0"]
        );
        // The destination is full: 100 of 100 ports.
        assert!(line.ends_with("127.0.0.1 -> 127.0.0.2:80 in now"), "{line}");
        // Right-aligned numbers end under their header.
        let end = |s: &str, word: &str| s.find(word).unwrap() + word.len();
        let header = plain_header();
        assert_eq!(end(&header, "TIME_WAIT"), end(&line, " 100 ") - 1);
        assert_eq!(end(&header, "FORECAST"), end(&line, "6000"));
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(12_034), "12,034");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(seconds(None), "never");
        assert_eq!(seconds(Some(0.0)), "now");
        assert_eq!(seconds(Some(6.4)), "6s");
        assert_eq!(clock(0.0).len(), 8);
        assert_eq!(date_time(0.0).len(), 19);
    }
}
