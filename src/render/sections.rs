//! Titled blocks of rows (the summary, ports, groups, annotated listings),
//! built once and laid out by the table and plain renderers alike.

use std::io::{self, Write};

use crate::analyze::aggregate::{Destination, PortUse, Summary, EXPIRY_WINDOWS, TW_SLOT_SECS};
use crate::model::ports::PortCapacity;
use crate::model::{Socket, TcpState};

use super::cells::{socket_row, Annotation, SOCKET_HEADERS, SOCKET_NUMERIC};

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
    fn bars_scale_to_the_largest_in_eighths() {
        assert_eq!(bar(0, 10, 4), "");
        assert_eq!(bar(10, 10, 4), "████");
        assert_eq!(bar(5, 10, 4), "██");
        assert_eq!(bar(3, 16, 2), "▍"); // 3/16 of 16 eighths = 3
        assert_eq!(bar(1, 1000, 4), "▏"); // never invisible
    }

    #[test]
    fn time_wait_histogram_has_every_slot_soonest_first() {
        let mut slots = [0; crate::analyze::aggregate::TW_SLOTS];
        (slots[0], slots[11]) = (2, 4);
        let sec = time_wait_left_section(&slots);
        assert_eq!(sec.rows.len(), 12);
        assert_eq!(sec.rows[0], ["0-5s", "2", &"█".repeat(20)]);
        assert_eq!(sec.rows[1], ["5-10s", "0", ""]);
        assert_eq!(sec.rows[11], ["55-60s", "4", &"█".repeat(40)]);
        assert!(sec.title.starts_with("6 TIME_WAIT by time left"));
    }
}
