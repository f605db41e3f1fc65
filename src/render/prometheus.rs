//! Prometheus text exposition (format 0.0.4) of a [`Snapshot`]: for
//! node_exporter's textfile collector (`tw metrics`) and for `tw serve`.
//!
//! Every name starts with `tw_`, values are in base units (seconds, counts),
//! every family has HELP and TYPE lines, and counters end in `_total`. Label
//! cardinality is bounded: states and families are fixed sets, doctor's rules
//! a short fixed list, and destinations are cut to the `top` busiest.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{self, Write};

use crate::analyze::aggregate::PortUse;
use crate::analyze::doctor::{self, Severity};
use crate::analyze::inflow::Inflow;
use crate::analyze::resets;
use crate::analyze::scrape::{Snapshot, TIME_LEFT_BUCKETS};
use crate::model::{Direction, Family, TcpState};

/// The Content-Type of this format, for `tw serve`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A per-destination family: name, help, and its value from the ports held
/// and the usable ports per destination.
type PerDestination = (&'static str, &'static str, fn(&PortUse, u64) -> u64);

const SEVERITIES: [Severity; 3] = [Severity::Ok, Severity::Warn, Severity::Crit];

/// Writes every metric of `snap`, with at most `top` destinations.
pub fn render(snap: &Snapshot, top: usize, out: &mut dyn Write) -> io::Result<()> {
    let mut w = Exposition { out };
    sockets(&mut w, snap)?;
    ports(&mut w, snap, top)?;
    inflow(&mut w, snap, top)?;
    facts(&mut w, snap)?;
    resets(&mut w, snap)?;
    findings(&mut w, snap)?;
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

fn sockets(w: &mut Exposition, snap: &Snapshot) -> io::Result<()> {
    let m = &snap.scan;
    w.family(
        "tw_sockets",
        "gauge",
        "TCP sockets by address family (inet, inet6) and state (netstat spelling).",
    )?;
    for family in [Family::Inet, Family::Inet6] {
        for state in TcpState::ALL {
            let labels = [("family", family.name()), ("state", state.name())];
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
    let name = "tw_time_wait_remaining_seconds";
    w.family(
        name,
        "histogram",
        "Time left on the TIME_WAIT sockets present now (each lasts 60 s, TCP_TIMEWAIT_LEN): \
         a snapshot per scrape, not observations accumulated over time.",
    )?;
    let cumulative = m.time_left_cumulative();
    let bucket = format!("{name}_bucket");
    for (le, n) in TIME_LEFT_BUCKETS.iter().zip(cumulative) {
        w.sample(&bucket, &[("le", &le.to_string())], n)?;
    }
    let count = cumulative[TIME_LEFT_BUCKETS.len()];
    w.sample(&bucket, &[("le", "+Inf")], count)?;
    w.sample(&format!("{name}_sum"), &[], m.time_left_sum_secs())?;
    w.sample(&format!("{name}_count"), &[], count)
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
            let local = dest.local.to_string();
            let peer = dest.peer.to_string();
            let labels = [("local", local.as_str()), ("peer", peer.as_str())];
            w.sample(name, &labels, value(u, usable))?;
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
        let (local, peer) = (dest.local.to_string(), dest.peer.to_string());
        for (win, v) in windows(&u.inflow) {
            let labels = [
                ("local", local.as_str()),
                ("peer", peer.as_str()),
                ("window", win),
            ];
            w.sample(name, &labels, v)?;
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
            let (local, peer) = (dest.local.to_string(), dest.peer.to_string());
            w.sample(name, &[("local", &local), ("peer", &peer)], t)?;
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
            "tw_timewait_minisockets",
            "TIME_WAIT and FIN_WAIT2 minisockets of this namespace (/proc/net/sockstat tw), \
             what tcp_max_tw_buckets limits.",
            f.sockstat.tcp_tw,
        ),
        (
            "tw_orphan_sockets",
            "Orphaned TCP sockets, host-wide (/proc/net/sockstat orphan), against \
             tcp_max_orphans.",
            f.sockstat.tcp_orphan,
        ),
        (
            "tw_conntrack_entries",
            "nf_conntrack_count: connection tracking entries now (absent without conntrack).",
            f.conntrack.count,
        ),
        (
            "tw_conntrack_entries_limit",
            "nf_conntrack_max: at this count new flows are dropped.",
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
            "tw_tcpext_tw_total",
            "TcpExt TW: minisockets (TIME_WAIT or FIN_WAIT2) scheduled with a timeout over 4 s.",
            e.tw,
        ),
        (
            "tw_tcpext_tw_recycled_total",
            "TcpExt TWRecycled: TIME_WAIT entries taken over by connect() (tcp_tw_reuse).",
            e.tw_recycled,
        ),
        (
            "tw_tcpext_tw_killed_total",
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
    // Every rule that reported, with all three severities, so a warning that
    // clears reads 0 rather than vanishing. port_exhaustion reports one
    // finding per destination at risk, and none when all are fine.
    let mut counts: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
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

/// Writes families and samples in the text format.
struct Exposition<'a> {
    out: &'a mut dyn Write,
}

impl Exposition<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str) -> io::Result<()> {
        writeln!(self.out, "# HELP {name} {}", escape_help(help))?;
        writeln!(self.out, "# TYPE {name} {kind}")
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
        let mut w = Exposition { out: &mut buf };
        w.sample("tw_x", &[("a", "1"), ("b", "[::1]:80")], 3u64)
            .unwrap();
        w.sample("tw_y", &[], 0.25).unwrap();
        w.gauge("tw_z", "unknown", None::<i64>).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "tw_x{a=\"1\",b=\"[::1]:80\"} 3\ntw_y 0.25\n"
        );
    }
}
