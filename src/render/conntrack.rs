//! `tw conntrack` as text, JSON and Prometheus text: the table's health,
//! entries by state with the time left, top destinations and sources,
//! zones, marks, statistics, timeouts, and doctor's conntrack finding.

use std::io::{self, Write};

use schemars::JsonSchema;
use serde::Serialize;

use super::sections::Section;
use super::{Format, Style};
use crate::analyze::conntrack::{Metrics, StateRow, Table};
use crate::analyze::doctor::{Finding, Severity};
use crate::model::conntrack::{proto_name, Settings, Stats};
use crate::model::schema::SchemaVersion;
use crate::source::conntrack::{Health, Origin};

/// Everything one `tw conntrack` shows.
pub struct View<'a> {
    pub origin: Origin,
    pub table: &'a Table,
    pub health: &'a Health,
    /// Rows of each top-N section.
    pub top: usize,
    pub finding: &'a Finding,
}

fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::Ctnetlink => "ctnetlink",
        Origin::Procfs => "/proc/net/nf_conntrack",
        Origin::Capture => "capture",
    }
}

fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        "-".into()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / of as f64)
    }
}

fn secs(s: u64) -> String {
    format!("{s}s")
}

/// The report as titled sections, shared by the table and plain renderers.
pub fn sections(v: &View) -> Vec<Section> {
    let t = v.table;
    let s = &v.health.settings;
    let mut head = format!("conntrack ({}): ", origin_name(v.origin));
    let count = s.count.unwrap_or(t.total);
    match s.max {
        Some(max) => head.push_str(&format!(
            "{count} entries of {max} (nf_conntrack_max, {})",
            pct(count, max)
        )),
        None => head.push_str(&format!("{count} entries")),
    }
    if let Some(b) = s.buckets {
        head.push_str(&format!(", {b} hash buckets"));
    }
    head.push_str(&format!(
        "; {} shown: {} IPv4, {} IPv6",
        t.total, t.families[0], t.families[1]
    ));
    let mut out = vec![Section {
        title: head,
        headers: vec![],
        numeric: vec![],
        rows: vec![],
    }];
    out.push(Section {
        title: "Entries by state, with the time left on each (seconds)".into(),
        headers: vec![
            "PROTO", "STATE", "COUNT", "SHARE", "TIMEOUT", "MIN LEFT", "AVG LEFT", "MAX LEFT",
        ],
        numeric: vec![false, false, true, true, true, true, true, true],
        rows: t
            .state_rows(s)
            .into_iter()
            .map(|r| {
                vec![
                    r.proto.into(),
                    r.state.into(),
                    r.count.to_string(),
                    pct(r.count, t.total),
                    r.timeout.map_or("-".into(), secs),
                    secs(u64::from(r.min_left)),
                    secs(r.avg_left),
                    secs(u64::from(r.max_left)),
                ]
            })
            .collect(),
    });
    let dests = t.top_dests(Some(v.top));
    out.push(Section {
        title: format!("Top destinations ({} of {})", dests.len(), t.dest_count()),
        headers: vec!["DESTINATION", "COUNT", "SHARE", "MOSTLY"],
        numeric: vec![false, true, true, false],
        rows: dests
            .iter()
            .map(|(d, a)| {
                let (state, n) = a.main_state();
                vec![
                    d.to_string(),
                    a.count.to_string(),
                    pct(a.count, t.total),
                    format!("{state} {n}"),
                ]
            })
            .collect(),
    });
    out.push(Section {
        title: "Top sources".into(),
        headers: vec!["SOURCE", "COUNT", "SHARE"],
        numeric: vec![false, true, true],
        rows: t
            .top_sources(Some(v.top))
            .into_iter()
            .map(|(a, n)| vec![a.to_string(), n.to_string(), pct(n, t.total)])
            .collect(),
    });
    let zones = t.zones();
    if zones.iter().any(|(z, _)| *z != 0) {
        out.push(Section {
            title: "Zones".into(),
            headers: vec!["ZONE", "COUNT"],
            numeric: vec![true, true],
            rows: zones
                .into_iter()
                .map(|(z, n)| vec![z.to_string(), n.to_string()])
                .collect(),
        });
    }
    let marks = t.marks(Some(v.top));
    if marks.iter().any(|(m, _)| *m != 0) {
        out.push(Section {
            title: "Marks".into(),
            headers: vec!["MARK", "COUNT"],
            numeric: vec![true, true],
            rows: marks
                .into_iter()
                .map(|(m, n)| vec![format!("{m:#x}"), n.to_string()])
                .collect(),
        });
    }
    if let Some((st, cpus)) = &v.health.stats {
        out.push(Section {
            title: format!("Statistics since boot, summed over {cpus} CPUs"),
            headers: vec!["COUNTER", "VALUE"],
            numeric: vec![false, true],
            rows: st
                .fields()
                .into_iter()
                .map(|(k, n)| vec![k.into(), n.to_string()])
                .collect(),
        });
    }
    if !s.timeouts.is_empty() {
        out.push(Section {
            title: "Timeouts in force (net.netfilter)".into(),
            headers: vec!["SYSCTL", "SECONDS"],
            numeric: vec![false, true],
            rows: s
                .timeouts
                .iter()
                .map(|(k, n)| vec![k.clone(), n.to_string()])
                .collect(),
        });
    }
    out
}

/// The whole report in `format`.
pub fn render(format: Format, v: &View, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    match format {
        Format::Json => json(v, out),
        Format::Table => {
            super::table::write_sections(out, &sections(v), style)?;
            finding_text(v.finding, out)
        }
        Format::Plain => {
            super::plain::write_sections(out, &sections(v))?;
            finding_text(v.finding, out)
        }
    }
}

/// The finding, when it found something: as `tw doctor` prints it.
fn finding_text(f: &Finding, out: &mut dyn Write) -> io::Result<()> {
    if f.severity == Severity::Ok {
        return Ok(());
    }
    writeln!(out)?;
    super::doctor::write_doctor(out, std::slice::from_ref(f), false, &|s| {
        s.name().to_uppercase()
    })
}

/// `--by` on a terminal: a section titled for entries, not sockets.
pub fn groups_table(
    by: &str,
    total: u64,
    groups: &[(String, u64)],
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    let sec = Section {
        title: format!("{total} conntrack entries by {by}"),
        headers: vec!["KEY", "COUNT", "SHARE"],
        numeric: vec![false, true, true],
        rows: groups
            .iter()
            .map(|(k, n)| vec![k.clone(), n.to_string(), pct(*n, total)])
            .collect(),
    };
    super::table::write_sections(out, &[sec], style)
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct Json<'a> {
    schema_version: SchemaVersion,
    source: Origin,
    /// nf_conntrack_count (or the entries read, without it).
    count: u64,
    max: Option<u64>,
    buckets: Option<u64>,
    /// Entries that passed the filter.
    shown: u64,
    ipv4: u64,
    ipv6: u64,
    states: Vec<StateRow>,
    destinations: Vec<DestJson>,
    sources: Vec<KeyCount>,
    zones: Vec<KeyCount>,
    marks: Vec<KeyCount>,
    stats: Option<StatsJson<'a>>,
    timeouts: &'a std::collections::BTreeMap<String, u64>,
    finding: &'a Finding,
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct DestJson {
    proto: &'static str,
    addr: String,
    port: Option<u16>,
    count: u64,
    state: &'static str,
    state_count: u64,
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct KeyCount {
    key: String,
    count: u64,
}

#[derive(Serialize, JsonSchema)]
struct StatsJson<'a> {
    cpus: usize,
    #[serde(flatten)]
    counters: &'a Stats,
}

fn json(v: &View, out: &mut dyn Write) -> io::Result<()> {
    let t = v.table;
    let s: &Settings = &v.health.settings;
    let kc = |k: String, n: u64| KeyCount { key: k, count: n };
    let j = Json {
        schema_version: SchemaVersion,
        source: v.origin,
        count: s.count.unwrap_or(t.total),
        max: s.max,
        buckets: s.buckets,
        shown: t.total,
        ipv4: t.families[0],
        ipv6: t.families[1],
        states: t.state_rows(s),
        destinations: t
            .top_dests(Some(v.top))
            .into_iter()
            .map(|(d, a)| {
                let (state, n) = a.main_state();
                DestJson {
                    proto: proto_name(d.proto),
                    addr: d.addr.to_string(),
                    port: d.port,
                    count: a.count,
                    state,
                    state_count: n,
                }
            })
            .collect(),
        sources: t
            .top_sources(Some(v.top))
            .into_iter()
            .map(|(a, n)| kc(a.to_string(), n))
            .collect(),
        zones: t
            .zones()
            .into_iter()
            .map(|(z, n)| kc(z.to_string(), n))
            .collect(),
        marks: t
            .marks(Some(v.top))
            .into_iter()
            .map(|(m, n)| kc(m.to_string(), n))
            .collect(),
        stats: v.health.stats.as_ref().map(|(st, cpus)| StatsJson {
            cpus: *cpus,
            counters: st,
        }),
        timeouts: &s.timeouts,
        finding: v.finding,
    };
    serde_json::to_writer_pretty(&mut *out, &j)?;
    writeln!(out)
}

/// Every JSON document `tw conntrack` writes: the report, or with `--by` or
/// `--count` the same document as `tw count`.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
enum Document<'a> {
    Report(Json<'a>),
    Count(super::json::CountJson<'a>),
}

/// The JSON Schema of `tw conntrack --format json`.
pub fn schema() -> schemars::Schema {
    let mut s = schemars::schema_for!(Document<'static>);
    s.insert("title".into(), "tw conntrack --format json".into());
    s
}

// ---- Prometheus ----

/// Writes the conntrack families: entries by protocol and state, the `top`
/// destinations holding most entries, and the statistics as `_total`
/// counters. Names and label sets are bounded: states and protocols are
/// fixed sets, destinations cut to `top`.
pub fn prometheus(m: &Metrics, top: usize, out: &mut dyn Write) -> io::Result<()> {
    let name = "tw_conntrack_entries_by_state";
    writeln!(
        out,
        "# HELP {name} conntrack entries by protocol and state (TCP: conntrack's own states; \
         others: UNREPLIED, ASSURED, REPLIED)."
    )?;
    writeln!(out, "# TYPE {name} gauge")?;
    for (proto, state, a) in m.table.states() {
        writeln!(
            out,
            "{name}{{proto=\"{proto}\",state=\"{state}\"}} {}",
            a.count
        )?;
    }
    let name = "tw_conntrack_destination_entries";
    writeln!(
        out,
        "# HELP {name} conntrack entries toward each of the {top} destinations holding the most."
    )?;
    writeln!(out, "# TYPE {name} gauge")?;
    for (d, a) in m.table.top_dests(Some(top)) {
        let addr = d.addr.to_string();
        let port = d.port.map_or(String::new(), |p| p.to_string());
        writeln!(
            out,
            "{name}{{proto=\"{}\",addr=\"{addr}\",port=\"{port}\"}} {}",
            proto_name(d.proto),
            a.count
        )?;
    }
    if let Some((st, _)) = &m.health.stats {
        for (k, n) in st.fields() {
            let name = format!("tw_conntrack_{k}_total");
            writeln!(
                out,
                "# HELP {name} conntrack statistics counter {k}, summed over CPUs, since boot."
            )?;
            writeln!(out, "# TYPE {name} counter")?;
            writeln!(out, "{name} {n}")?;
        }
    }
    Ok(())
}
