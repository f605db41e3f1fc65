//! Prometheus exposition of a [`Snapshot`]: the text format 0.0.4 (for
//! node_exporter's textfile collector, `tw metrics`, and `tw serve` by
//! default) and OpenMetrics 1.0 (`tw serve`, when the scraper asks for it).
//!
//! Every name starts with `tw_`, values are in base units (seconds, counts),
//! every family has HELP and TYPE lines, and counters end in `_total`. Label
//! cardinality is bounded: states and families are fixed sets, doctor's rules
//! a short fixed list, and destinations are cut to the `top` busiest.
//!
//! Spellings join node_exporter's: the `state` label takes the values of its
//! tcpstat collector (`node_tcp_connection_states`: `time_wait`,
//! `established`, ...), TIME_WAIT is `time_wait` in every metric name, and
//! addresses and ports are separate labels. docs/metrics.md lists every
//! metric and which ones repeat node_exporter's.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{self, Write};
use std::time::Duration;

use crate::analyze::aggregate::PortUse;
use crate::analyze::doctor::{self, Severity};
use crate::analyze::inflow::Inflow;
use crate::analyze::resets;
use crate::analyze::scrape::{EventCounters, Snapshot, KEYED_KINDS, TIME_LEFT_BUCKETS};
use crate::model::event::EventKind;
use crate::model::{Direction, Family, TcpState};

/// The Content-Type of the text format 0.0.4, for `tw serve`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The Content-Type of OpenMetrics 1.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which exposition format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text: counters' TYPE names lose `_total`, HELP escapes
    /// quotes, the TIME_WAIT time left is also a gaugehistogram, and the
    /// exposition ends with `# EOF`.
    OpenMetrics,
}

/// A per-destination family: name, help, and its value from the ports held
/// and the usable ports per destination.
type PerDestination = (&'static str, &'static str, fn(&PortUse, u64) -> u64);

const SEVERITIES: [Severity; 3] = [Severity::Ok, Severity::Warn, Severity::Crit];

/// Writes every metric of `snap` in the text format 0.0.4, with at most
/// `top` destinations.
pub fn render(snap: &Snapshot, top: usize, out: &mut dyn Write) -> io::Result<()> {
    render_as(snap, top, Dialect::Text, out)
}

/// Writes every metric of `snap` in `dialect`, with at most `top`
/// destinations.
pub fn render_as(
    snap: &Snapshot,
    top: usize,
    dialect: Dialect,
    out: &mut dyn Write,
) -> io::Result<()> {
    render_with(snap, top, dialect, &Extras::default(), out)
}

/// What a `tw serve` scrape adds to a snapshot's series.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extras<'a> {
    /// The eBPF event counters, when events are on.
    pub events: Option<&'a EventCounters>,
    /// With `--refresh`: how long ago the snapshot was taken (it ended).
    pub age: Option<Duration>,
}

/// Writes every metric of `snap` and of `extras` in `dialect`, with at most
/// `top` destinations.
pub fn render_with(
    snap: &Snapshot,
    top: usize,
    dialect: Dialect,
    extras: &Extras,
    out: &mut dyn Write,
) -> io::Result<()> {
    render_snapshot(snap, top, dialect, out)?;
    render_extras(extras, dialect, out)
}

/// The series of `snap` alone, without the end: with [`render_extras`]
/// after it, what [`render_with`] writes. `tw serve --refresh` writes this
/// once per snapshot (at a million sockets, ranking the destinations takes
/// milliseconds) and only the extras per scrape.
pub fn render_snapshot(
    snap: &Snapshot,
    top: usize,
    dialect: Dialect,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut w = Exposition { out, dialect };
    sockets(&mut w, snap)?;
    ports(&mut w, snap, top)?;
    inflow(&mut w, snap, top)?;
    facts(&mut w, snap)?;
    resets(&mut w, snap)?;
    findings(&mut w, snap)?;
    if let Some(ct) = &snap.conntrack {
        crate::render::conntrack::prometheus(ct, top, w.out)?;
    }
    w.gauge(
        "tw_scrape_duration_seconds",
        "Time tw took to read the facts and the socket table and run doctor's rules.",
        Some(snap.elapsed.as_secs_f64()),
    )?;
    w.family(
        "tw_build_info",
        "gauge",
        "Always 1; the version label says which tw answered.",
    )?;
    w.sample(
        "tw_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    )
}

/// The series of a scrape that are not the snapshot's, and the end of the
/// exposition (`# EOF` in OpenMetrics).
pub fn render_extras(extras: &Extras, dialect: Dialect, out: &mut dyn Write) -> io::Result<()> {
    let mut w = Exposition { out, dialect };
    if let Some(c) = extras.events {
        events(&mut w, c)?;
    }
    w.gauge(
        "tw_snapshot_age_seconds",
        "Seconds since the socket table snapshot these gauges come from was taken (tw serve \
         --refresh takes one in the background on that cadence; scrapes answer from the latest).",
        extras.age.map(|a| a.as_secs_f64()),
    )?;
    w.end()
}

/// The eBPF event counters of `tw serve`: per kind, then per destination,
/// listening port and process for [`KEYED_KINDS`], each with its `other`
/// series (always printed, so it never appears late), then the events lost
/// and the records that did not decode. Every admitted key keeps its series
/// at every kind, so series never vanish.
fn events(w: &mut Exposition, c: &EventCounters) -> io::Result<()> {
    let name = "tw_events_total";
    w.family(
        name,
        "counter",
        "TCP events seen by tw's eBPF programs in the namespace served, by kind (connect, \
         accept, close_first, time_wait, tw_reuse, connect_fail, rst_sent, rst_recv, \
         retransmit), since tw serve started.",
    )?;
    for (kind, n) in EventKind::ALL.iter().zip(c.by_kind) {
        w.sample(name, &[("event", kind.name())], n)?;
    }
    let kinds = |w: &mut Exposition,
                 name: &str,
                 labels: &[(&str, &str)],
                 counts: &[u64; KEYED_KINDS.len()]|
     -> io::Result<()> {
        let mut all: Vec<(&str, &str)> = labels.to_vec();
        all.push(("event", ""));
        for (kind, n) in KEYED_KINDS.iter().zip(counts) {
            *all.last_mut().expect("pushed") = ("event", kind.name());
            w.sample(name, &all, n)?;
        }
        Ok(())
    };
    let name = "tw_destination_events_total";
    w.family(
        name,
        "counter",
        "TIME_WAIT entered, ports run out (connect_fail), TIME_WAIT taken over (tw_reuse) and \
         resets sent and received, per peer address and port of outbound connections. The first \
         --max-series destinations keep series of their own; later ones count into peer_address=\"other\".",
    )?;
    for ((addr, port), counts) in &c.destinations.series {
        let (a, p) = (addr.to_string(), port.to_string());
        kinds(w, name, &[("peer_address", &a), ("peer_port", &p)], counts)?;
    }
    let other = [("peer_address", "other"), ("peer_port", "other")];
    kinds(w, name, &other, &c.destinations.other)?;
    let name = "tw_listener_events_total";
    w.family(
        name,
        "counter",
        "The same events for inbound connections, per local (listening) port. The first \
         --max-series ports keep series of their own; later ones count into \
         local_port=\"other\".",
    )?;
    for (port, counts) in &c.listeners.series {
        kinds(w, name, &[("local_port", &port.to_string())], counts)?;
    }
    kinds(w, name, &[("local_port", "other")], &c.listeners.other)?;
    let name = "tw_process_events_total";
    w.family(
        name,
        "counter",
        "The same events per process command name (comm; empty when the kernel named none). \
         The first --max-series names keep series of their own; later ones count into \
         comm=\"other\".",
    )?;
    for (comm, counts) in &c.processes.series {
        kinds(w, name, &[("comm", comm)], counts)?;
    }
    kinds(w, name, &[("comm", "other")], &c.processes.other)?;
    for (name, help, n) in [
        (
            "tw_events_lost_total",
            "Events the eBPF programs could not queue because the ring buffer was full: the \
             event counters are low by this much.",
            c.lost,
        ),
        (
            "tw_events_undecodable_total",
            "Event records that did not decode (the eBPF object and tw disagree: a bug).",
            c.undecodable,
        ),
        (
            "tw_events_skipped_total",
            "Runs of the eBPF programs the kernel skipped because the program was already \
             running on that CPU: the event counters may be low by this much.",
            c.skipped,
        ),
    ] {
        w.family(name, "counter", help)?;
        w.sample(name, &[], n)?;
    }
    Ok(())
}

/// The `state` label: node_exporter's tcpstat spelling
/// (collector/tcpstat_linux.go, tcpConnectionState.String), so that
/// `tw_sockets` and `node_tcp_connection_states` join on it. NEW_SYN_RECV
/// never appears in a dump (request sockets are reported as SYN_RECV, see
/// inet_req_diag_fill), so it has none.
pub fn state_label(s: TcpState) -> Option<&'static str> {
    Some(match s {
        TcpState::Established => "established",
        TcpState::SynSent => "syn_sent",
        TcpState::SynRecv => "syn_recv",
        TcpState::FinWait1 => "fin_wait1",
        TcpState::FinWait2 => "fin_wait2",
        TcpState::TimeWait => "time_wait",
        TcpState::Close => "close",
        TcpState::CloseWait => "close_wait",
        TcpState::LastAck => "last_ack",
        TcpState::Listen => "listen",
        TcpState::Closing => "closing",
        TcpState::NewSynRecv => return None,
    })
}

fn sockets(w: &mut Exposition, snap: &Snapshot) -> io::Result<()> {
    let m = &snap.scan;
    w.family(
        "tw_sockets",
        "gauge",
        "TCP sockets by address family (inet, inet6) and state (node_exporter's tcpstat \
         spelling: sum by state to compare with node_tcp_connection_states).",
    )?;
    for family in [Family::Inet, Family::Inet6] {
        for state in TcpState::ALL {
            let Some(label) = state_label(state) else {
                continue;
            };
            let labels = [("family", family.name()), ("state", label)];
            w.sample("tw_sockets", &labels, m.count(family, state))?;
        }
    }
    let sum = &m.scan.summary;
    w.family(
        "tw_time_wait_sockets",
        "gauge",
        "TIME_WAIT sockets by direction: in (this box closed an accepted connection first; \
         costs no port), out (it closed a connection it made; holds an ephemeral port for 60 s).",
    )?;
    for (dir, n) in [
        (Direction::Inbound, sum.time_wait_inbound),
        (Direction::Outbound, sum.time_wait_outbound),
    ] {
        w.sample("tw_time_wait_sockets", &[("direction", dir.name())], n)?;
    }
    // The time left is a snapshot per scrape, not observations piling up, so
    // it is gauges (rate() over a histogram of it would mean nothing): one
    // per bound, cumulative, in both formats, so queries do not depend on
    // what the scraper negotiated.
    let cumulative = m.time_left_cumulative();
    let name = "tw_time_wait_expiring_sockets";
    w.family(
        name,
        "gauge",
        "TIME_WAIT sockets whose 60 s (TCP_TIMEWAIT_LEN) end within the given seconds: \
         the ports they hold are free again by then. Cumulative; a snapshot per scrape.",
    )?;
    for (le, n) in TIME_LEFT_BUCKETS.iter().zip(cumulative) {
        w.sample(name, &[("within_seconds", &le.to_string())], n)?;
    }
    if w.dialect == Dialect::OpenMetrics {
        // The same as an OpenMetrics gaugehistogram, for histogram_quantile().
        let name = "tw_time_wait_remaining_seconds";
        w.family(
            name,
            "gaugehistogram",
            "Time left on the TIME_WAIT sockets present now (each lasts 60 s, \
             TCP_TIMEWAIT_LEN): a snapshot per scrape.",
        )?;
        let bucket = format!("{name}_bucket");
        for (le, n) in TIME_LEFT_BUCKETS.iter().zip(cumulative) {
            w.sample(&bucket, &[("le", &format!("{le}.0"))], n)?;
        }
        let count = cumulative[TIME_LEFT_BUCKETS.len()];
        w.sample(&bucket, &[("le", "+Inf")], count)?;
        w.sample(&format!("{name}_gcount"), &[], count)?;
        w.sample(&format!("{name}_gsum"), &[], m.time_left_sum_secs())?;
    }
    Ok(())
}

fn ports(w: &mut Exposition, snap: &Snapshot, top: usize) -> io::Result<()> {
    let cap = snap.capacity;
    let usable = u64::from(cap.preferred_parity + cap.other_parity);
    w.gauge(
        "tw_ephemeral_port_range_low",
        "net.ipv4.ip_local_port_range, low end (the kernel default when unknown).",
        Some(snap.range.lo),
    )?;
    w.gauge(
        "tw_ephemeral_port_range_high",
        "net.ipv4.ip_local_port_range, high end (the kernel default when unknown).",
        Some(snap.range.hi),
    )?;
    w.gauge(
        "tw_ephemeral_ports_reserved",
        "Ports of the range listed in net.ipv4.ip_local_reserved_ports, which connect() skips.",
        Some(cap.reserved),
    )?;
    w.gauge(
        "tw_ephemeral_ports_first_choice",
        "Usable ports of the parity connect() tries first (that of the range's low end).",
        Some(cap.preferred_parity),
    )?;
    let rows = snap.scan.scan.ports.ranked(None);
    w.gauge(
        "tw_destinations",
        "Outbound destinations (local address, remote address and port) holding ephemeral \
         ports; the tw_destination_* series cover only the busiest (--top).",
        Some(rows.len()),
    )?;
    let families: [PerDestination; 4] = [
        (
            "tw_destination_ports_held",
            "Ephemeral ports held toward one outbound destination, in every state that holds one.",
            |u, _| u.held,
        ),
        (
            "tw_destination_ports_held_first_choice",
            "Of the ports held toward one destination, those of the parity connect() tries first.",
            |u, _| u.held_preferred,
        ),
        (
            "tw_destination_time_wait_sockets",
            "TIME_WAIT sockets toward one outbound destination (each holds its port for 60 s).",
            |u, _| {
                u.states()
                    .iter()
                    .find(|(s, _)| *s == TcpState::TimeWait)
                    .map_or(0, |x| x.1)
            },
        ),
        (
            "tw_destination_ports_capacity",
            "Ephemeral ports connect() can use toward one destination: ip_local_port_range less \
             ip_local_reserved_ports. A port is busy only for the same (local IP, remote IP, \
             remote port), so each destination has them all.",
            |_, usable| usable,
        ),
    ];
    for (name, help, value) in families {
        w.family(name, "gauge", help)?;
        for (dest, u) in rows.iter().take(top) {
            let (local, peer, port) = dest_text(dest);
            w.sample(
                name,
                &destination_labels(&local, &peer, &port),
                value(u, usable),
            )?;
        }
    }
    Ok(())
}

/// The reset counters (analyze::resets), each its own counter family, left
/// out when not read: `tw_tcp_out_rsts_total`, `tw_tcpext_abort_on_data_total`...
fn resets(w: &mut Exposition, snap: &Snapshot) -> io::Result<()> {
    for c in resets::counters(&snap.facts) {
        let Some(v) = c.value else { continue };
        let name = format!("tw_{}_{}_total", c.section.to_lowercase(), snake(c.name));
        let help = format!(
            "{} {}: {} (per network namespace).",
            c.section, c.name, c.meaning
        );
        w.family(&name, "counter", &help)?;
        w.sample(&name, &[], v)?;
    }
    Ok(())
}

/// `TCPAbortOnData` -> `abort_on_data`, `OutRsts` -> `out_rsts`.
fn snake(name: &str) -> String {
    let name = name.strip_prefix("TCP").unwrap_or(name);
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

/// Inflow into TIME_WAIT from the timers' ages of this one read (see
/// analyze::inflow): overall, per destination and per listener, with the
/// time to exhaustion per destination at the recent rate.
fn inflow(w: &mut Exposition, snap: &Snapshot, top: usize) -> io::Result<()> {
    let windows = |f: &Inflow| [("recent", f.recent_per_s()), ("peak", f.peak_per_s())];
    let sum = &snap.scan.scan.summary;
    let name = "tw_time_wait_inflow_per_second";
    w.family(
        name,
        "gauge",
        "Connections per second entering TIME_WAIT, from the timers' ages in this read (each \
         entered 60 s - time left ago): window=recent is the last 10 s, window=peak the \
         highest 10 s average of the last 60 s.",
    )?;
    for (win, v) in windows(&sum.inflow.all) {
        w.sample(name, &[("window", win)], v)?;
    }
    let name = "tw_destination_time_wait_inflow_per_second";
    w.family(
        name,
        "gauge",
        "Connections per second entering TIME_WAIT toward one outbound destination (its \
         ephemeral ports), window=recent (last 10 s) or peak (highest 10 s of the last 60 s).",
    )?;
    let cap = snap.capacity;
    let usable = u64::from(cap.preferred_parity + cap.other_parity);
    let rows = snap.scan.scan.ports.ranked(Some(top));
    for (dest, u) in &rows {
        let (local, peer, port) = dest_text(dest);
        for (win, v) in windows(&u.inflow) {
            let [a, b, c] = destination_labels(&local, &peer, &port);
            w.sample(name, &[a, b, c, ("window", win)], v)?;
        }
    }
    let name = "tw_destination_exhaustion_seconds";
    w.family(
        name,
        "gauge",
        "Seconds until one destination holds every usable ephemeral port at its recent inflow; \
         0 when it already does; no sample when that inflow never fills it.",
    )?;
    for (dest, u) in &rows {
        if let Some(t) = u.exhaustion_in(usable) {
            let (local, peer, port) = dest_text(dest);
            w.sample(name, &destination_labels(&local, &peer, &port), t)?;
        }
    }
    let name = "tw_listener_time_wait_inflow_per_second";
    w.family(
        name,
        "gauge",
        "Connections per second entering TIME_WAIT on one local address and port that accepted \
         them (the service closed first), window=recent or peak.",
    )?;
    for (l, f) in sum.inflow.top_listeners(top) {
        let l = l.to_string();
        for (win, v) in windows(&f) {
            w.sample(name, &[("listener", &l), ("window", win)], v)?;
        }
    }
    Ok(())
}

/// A destination's local address, peer address and peer port as text.
fn dest_text(dest: &crate::analyze::aggregate::Destination) -> (String, String, String) {
    (
        dest.local.to_string(),
        dest.peer.addr.to_string(),
        dest.peer.port.to_string(),
    )
}

/// The labels of one outbound destination: addresses without brackets or
/// port, the port apart, so each can be matched and grouped on its own.
pub fn destination_labels<'a>(
    local: &'a str,
    peer: &'a str,
    peer_port: &'a str,
) -> [(&'static str, &'a str); 3] {
    [
        ("local_address", local),
        ("peer_address", peer),
        ("peer_port", peer_port),
    ]
}

fn facts(w: &mut Exposition, snap: &Snapshot) -> io::Result<()> {
    let f = &snap.facts;
    let s = &f.sysctl;
    let gauges = [
        (
            "tw_sysctl_tcp_tw_reuse",
            "net.ipv4.tcp_tw_reuse: 0 off, 1 on, 2 loopback only. Outbound connect() only.",
            s.tcp_tw_reuse,
        ),
        (
            "tw_sysctl_tcp_timestamps",
            "net.ipv4.tcp_timestamps: 0 off, 1 on, 2 on without random offsets. \
             tcp_tw_reuse needs them.",
            s.tcp_timestamps,
        ),
        (
            "tw_sysctl_tcp_fin_timeout_seconds",
            "net.ipv4.tcp_fin_timeout: the life of an orphaned FIN_WAIT2, not of TIME_WAIT.",
            s.tcp_fin_timeout,
        ),
        (
            "tw_sysctl_tcp_max_tw_buckets",
            "net.ipv4.tcp_max_tw_buckets: past it new closes skip TIME_WAIT (per namespace).",
            s.tcp_max_tw_buckets,
        ),
        (
            "tw_sysctl_tcp_max_orphans",
            "net.ipv4.tcp_max_orphans (host-wide; absent inside a container).",
            s.tcp_max_orphans,
        ),
        (
            "tw_sysctl_somaxconn",
            "net.core.somaxconn: the cap on every listen() backlog.",
            s.somaxconn,
        ),
        (
            "tw_time_wait_minisockets",
            "TIME_WAIT and FIN_WAIT2 minisockets of this namespace (/proc/net/sockstat tw, \
             node_exporter's node_sockstat_TCP_tw), what tcp_max_tw_buckets limits.",
            f.sockstat.tcp_tw,
        ),
        (
            "tw_orphan_sockets",
            "Orphaned TCP sockets, host-wide (/proc/net/sockstat orphan, node_exporter's \
             node_sockstat_TCP_orphan), against tcp_max_orphans.",
            f.sockstat.tcp_orphan,
        ),
        (
            "tw_conntrack_entries",
            "nf_conntrack_count: connection tracking entries now (absent without conntrack; \
             node_exporter's node_nf_conntrack_entries).",
            f.conntrack.count,
        ),
        (
            "tw_conntrack_entries_limit",
            "nf_conntrack_max: at this count new flows are dropped (node_exporter's \
             node_nf_conntrack_entries_limit).",
            f.conntrack.max,
        ),
        (
            "tw_conntrack_buckets",
            "nf_conntrack_buckets: conntrack hash table size.",
            f.conntrack.buckets,
        ),
        (
            "tw_conntrack_tcp_timeout_time_wait_seconds",
            "nf_conntrack_tcp_timeout_time_wait: how long conntrack keeps its own TIME_WAIT \
             entries.",
            f.conntrack.tcp_timeout_time_wait,
        ),
    ];
    for (name, help, value) in gauges {
        w.gauge(name, help, value)?;
    }
    let e = &f.tcp_ext;
    let counters = [
        (
            "tw_tcpext_time_wait_total",
            "TcpExt TW: minisockets (TIME_WAIT or FIN_WAIT2) scheduled with a timeout over 4 s.",
            e.tw,
        ),
        (
            "tw_tcpext_time_wait_recycled_total",
            "TcpExt TWRecycled: TIME_WAIT entries taken over by connect() (tcp_tw_reuse).",
            e.tw_recycled,
        ),
        (
            "tw_tcpext_time_wait_killed_total",
            "TcpExt TWKilled: minisockets scheduled with a timeout of 4 s or less.",
            e.tw_killed,
        ),
        (
            "tw_tcpext_time_wait_overflow_total",
            "TcpExt TCPTimeWaitOverflow: closes that skipped TIME_WAIT at tcp_max_tw_buckets.",
            e.time_wait_overflow,
        ),
        (
            "tw_tcpext_listen_overflows_total",
            "TcpExt ListenOverflows: handshakes dropped on a full accept queue.",
            e.listen_overflows,
        ),
        (
            "tw_tcpext_listen_drops_total",
            "TcpExt ListenDrops: all drops at a listener, overflows included.",
            e.listen_drops,
        ),
    ];
    for (name, help, value) in counters {
        if let Some(v) = value {
            w.family(name, "counter", help)?;
            w.sample(name, &[], v)?;
        }
    }
    Ok(())
}

fn findings(w: &mut Exposition, snap: &Snapshot) -> io::Result<()> {
    // Every rule with all three severities, whether or not it reported this
    // time, so a warning that clears reads 0 rather than vanishing (a quiet
    // port_exhaustion reports no finding at all).
    let mut counts: BTreeMap<&str, [u64; 3]> = doctor::RULES.iter().map(|r| (*r, [0; 3])).collect();
    for f in &snap.findings {
        counts.entry(f.rule).or_default()[f.severity as usize] += 1;
    }
    let name = "tw_doctor_findings";
    w.family(
        name,
        "gauge",
        "tw doctor's findings by rule and severity (ok, warn, crit); see `tw doctor`.",
    )?;
    for (rule, n) in &counts {
        for sev in SEVERITIES {
            let labels = [("rule", *rule), ("severity", sev.name())];
            w.sample(name, &labels, n[sev as usize])?;
        }
    }
    w.gauge(
        "tw_doctor_status",
        "tw doctor's verdict: 0 ok, 1 warning, 2 critical (its exit status).",
        Some(doctor::worst(&snap.findings) as u8),
    )
}

/// Writes families and samples in one of the text formats.
struct Exposition<'a> {
    out: &'a mut dyn Write,
    dialect: Dialect,
}

impl Exposition<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str) -> io::Result<()> {
        let (name, help) = match self.dialect {
            Dialect::Text => (name, escape_help(help)),
            // An OpenMetrics counter family is named without its samples'
            // `_total`, and its HELP escapes quotes as label values do.
            Dialect::OpenMetrics if kind == "counter" => (
                name.strip_suffix("_total").unwrap_or(name),
                escape_label(help),
            ),
            Dialect::OpenMetrics => (name, escape_label(help)),
        };
        writeln!(self.out, "# HELP {name} {help}")?;
        writeln!(self.out, "# TYPE {name} {kind}")
    }

    /// OpenMetrics ends with `# EOF`; the text format just ends.
    fn end(&mut self) -> io::Result<()> {
        match self.dialect {
            Dialect::Text => Ok(()),
            Dialect::OpenMetrics => writeln!(self.out, "# EOF"),
        }
    }

    fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl Display,
    ) -> io::Result<()> {
        write!(self.out, "{name}")?;
        if !labels.is_empty() {
            write!(self.out, "{{")?;
            for (i, (k, v)) in labels.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                write!(self.out, "{sep}{k}=\"{}\"", escape_label(v))?;
            }
            write!(self.out, "}}")?;
        }
        writeln!(self.out, " {value}")
    }

    /// A gauge without labels; left out whole when the fact is unknown, so
    /// that a missing file never reads as 0.
    fn gauge(&mut self, name: &str, help: &str, value: Option<impl Display>) -> io::Result<()> {
        match value {
            Some(v) => {
                self.family(name, "gauge", help)?;
                self.sample(name, &[], v)
            }
            None => Ok(()),
        }
    }
}

/// HELP text escapes backslash and newline.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Label values also escape the double quote.
fn escape_label(s: &str) -> String {
    escape_help(s).replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_help(r#"say "hi"\"#), r#"say "hi"\\"#);
    }

    #[test]
    fn samples_print_labels_in_order() {
        let mut buf = Vec::new();
        let mut w = Exposition {
            out: &mut buf,
            dialect: Dialect::Text,
        };
        w.sample("tw_x", &[("a", "1"), ("b", "[::1]:80")], 3u64)
            .unwrap();
        w.sample("tw_y", &[], 0.25).unwrap();
        w.gauge("tw_z", "unknown", None::<i64>).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "tw_x{a=\"1\",b=\"[::1]:80\"} 3\ntw_y 0.25\n"
        );
    }

    #[test]
    fn event_counters_print_every_kind_of_an_admitted_key_and_always_other() {
        use crate::model::event::{Event, Process};
        use crate::model::Endpoint;
        let ep = |s: &str| {
            let sa: std::net::SocketAddr = s.parse().unwrap();
            Endpoint::new(sa.ip(), sa.port())
        };
        let mut c = EventCounters::new(1);
        for peer in ["[::1]:80", "10.0.0.9:443"] {
            c.add(&Event {
                ts_ns: 0,
                netns: 1,
                kind: EventKind::TimeWait,
                process: Process {
                    pid: 7,
                    comm: "a\"b".into(),
                },
                family: crate::model::Family::Inet,
                local: ep("10.0.0.1:40000"),
                peer: ep(peer),
                direction: Some(Direction::Outbound),
                substate: None,
            });
        }
        c.lost = 3;
        let mut buf = Vec::new();
        let mut w = Exposition {
            out: &mut buf,
            dialect: Dialect::OpenMetrics,
        };
        events(&mut w, &c).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let has = |l: &str| text.lines().any(|x| x == l);
        assert!(has("# TYPE tw_destination_events counter"), "{text}");
        assert!(has(
            "tw_destination_events_total{peer_address=\"::1\",peer_port=\"80\",event=\"time_wait\"} 1"
        ));
        // An admitted key has all its kinds, at 0 too.
        assert!(has(
            "tw_destination_events_total{peer_address=\"::1\",peer_port=\"80\",event=\"rst_recv\"} 0"
        ));
        assert!(has(
            "tw_destination_events_total{peer_address=\"other\",peer_port=\"other\",event=\"time_wait\"} 1"
        ));
        assert!(has(
            "tw_listener_events_total{local_port=\"other\",event=\"tw_reuse\"} 0"
        ));
        assert!(has(
            "tw_process_events_total{comm=\"a\\\"b\",event=\"time_wait\"} 2"
        ));
        assert!(has("tw_events_total{event=\"time_wait\"} 2"));
        assert!(has("tw_events_lost_total 3"));
        assert!(has("tw_events_undecodable_total 0"));
        assert!(has("tw_events_skipped_total 0"));
        // 9 kinds; 5 kinds x (1 destination + other, other, 1 process + other);
        // lost, undecodable, skipped.
        assert_eq!(
            text.lines().filter(|l| !l.starts_with('#')).count(),
            9 + 5 * 5 + 3
        );
    }

    #[test]
    fn openmetrics_counters_are_named_without_total_and_end_with_eof() {
        let mut buf = Vec::new();
        let mut w = Exposition {
            out: &mut buf,
            dialect: Dialect::OpenMetrics,
        };
        w.family("tw_c_total", "counter", "say \"hi\"").unwrap();
        w.sample("tw_c_total", &[], 3).unwrap();
        w.end().unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "# HELP tw_c say \\\"hi\\\"\n# TYPE tw_c counter\ntw_c_total 3\n# EOF\n"
        );
    }

    #[test]
    fn state_labels_are_node_exporters() {
        // collector/tcpstat_linux.go, tcpConnectionState.String, in kernel order.
        let node_exporter = [
            "established",
            "syn_sent",
            "syn_recv",
            "fin_wait1",
            "fin_wait2",
            "time_wait",
            "close",
            "close_wait",
            "last_ack",
            "listen",
            "closing",
        ];
        let ours: Vec<&str> = TcpState::ALL
            .iter()
            .filter_map(|s| state_label(*s))
            .collect();
        assert_eq!(ours, node_exporter);
        for s in TcpState::ALL {
            if let Some(l) = state_label(s) {
                assert_eq!(l, s.name().to_ascii_lowercase());
            }
        }
    }
}
