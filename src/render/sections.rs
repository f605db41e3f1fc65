//! Titled blocks of rows (the summary, ports, groups, annotated listings),
//! built once and laid out by the table and plain renderers alike.

use std::io::{self, Write};

use crate::analyze::aggregate::SUMMARY_TOP;
use crate::analyze::aggregate::{Destination, PortUse, Summary, EXPIRY_WINDOWS, TW_SLOT_SECS};
use crate::analyze::inflow::{per_s, Inflow};
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
    if a.netid {
        headers.push("NETID");
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
            if let Some(ns) = a.netns_text(s) {
                row.push(ns.into_owned());
            }
            row.extend(a.netid_text(s).map(str::to_string));
            row.extend(socket_row(s));
            row.extend(a.owner_text(s));
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
        // Titles can hold a namespace's name.
        if !sec.title.is_empty() {
            writeln!(out, "{}", super::cells::printable(&sec.title))?;
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
        out.extend(resets_section(sum));
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
    out.push(inflow_section(sum));
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
    out.extend(resets_section(sum));
    out
}

/// The reset counters, when any was read.
fn resets_section(sum: &Summary) -> Option<Section> {
    if !sum.resets.iter().any(|c| c.value.is_some()) {
        return None;
    }
    Some(Section {
        title: "Resets (kernel counters of this network namespace): connections ended by RST \
                hold no TIME_WAIT"
            .into(),
        headers: vec!["COUNTER", "COUNT", "MEANING"],
        numeric: vec![false, true, false],
        rows: sum
            .resets
            .iter()
            .map(|c| {
                vec![
                    format!("{} {}", c.section, c.name),
                    crate::analyze::resets::value_text(c.value),
                    c.meaning.to_string(),
                ]
            })
            .collect(),
    })
}

/// Inflow into TIME_WAIT read off the timers' ages: overall, then the
/// busiest destinations and listeners.
pub fn inflow_section(sum: &Summary) -> Section {
    let all = &sum.inflow.all;
    let (peak, ago) = all.peak();
    let mut rows = Vec::new();
    let row = |kind: &str, who: String, f: &Inflow| {
        vec![
            kind.to_string(),
            who,
            per_s(f.recent_per_s()),
            per_s(f.peak_per_s()),
            f.total().to_string(),
        ]
    };
    for (d, f) in sum.inflow.top_destinations(SUMMARY_TOP) {
        rows.push(row("out", format!("{} -> {}", d.local, d.peer), &f));
    }
    for (l, f) in sum.inflow.top_listeners(SUMMARY_TOP) {
        rows.push(row("in", format!("listener {l}"), &f));
    }
    Section {
        title: format!(
            "Inflow into TIME_WAIT from the timers' ages (each entered 60 s - time left ago): \
             {} over the last 10 s, peak {} (highest 10 s average, {}-{} s ago), {} over 60 s",
            per_s(all.recent_per_s()),
            per_s(peak),
            ago - 10,
            ago,
            per_s(all.mean_per_s()),
        ),
        headers: vec!["DIR", "WHERE", "LAST 10s", "PEAK 10s", "IN 60s"],
        numeric: vec![false, false, true, true, true],
        rows,
    }
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

/// `tw ports` as a section; `destinations` were counted, `rows` the busiest
/// of them (`--top`).
pub fn ports_section(
    rows: &[(Destination, PortUse)],
    destinations: usize,
    cap: &PortCapacity,
    low: u16,
) -> Section {
    let shown = if rows.len() < destinations {
        format!("the busiest {} of {destinations}", rows.len())
    } else {
        destinations.to_string()
    };
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
            "{shown} outbound destinations; {usable} usable ephemeral ports each \
             ({} reserved), {} of them of the parity connect() tries first (that of {low}). \
             INFLOW: connections/s into TIME_WAIT over the last 10 s, PEAK: the highest \
             10 s average of the last 60 s (both from the timers of this read); \
             FULL IN: at INFLOW",
            cap.reserved, cap.preferred_parity
        ),
        headers: vec![
            "LOCAL",
            "DESTINATION",
            "HELD",
            "USE",
            "FIRST HALF",
            "INFLOW",
            "PEAK",
            "FULL IN",
            "STATES",
        ],
        numeric: vec![false, false, true, true, true, true, true, true, false],
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
                    per_s(u.inflow.recent_per_s()),
                    per_s(u.inflow.peak_per_s()),
                    full_in(u.exhaustion_in(usable)),
                    states.join(", "),
                ]
            })
            .collect(),
    }
}

/// Time to exhaustion as printed: "already exhausted", "never" at this
/// inflow, or whole seconds.
pub fn full_in(t: Option<f64>) -> String {
    match t {
        Some(t) if t <= 0.0 => "already exhausted".into(),
        Some(t) => format!("{:.0}s", t.ceil()),
        None => "never".into(),
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
