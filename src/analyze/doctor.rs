//! `tw doctor`: pure rules over system facts and one scan of the socket
//! table, each giving a finding with its severity, the evidence in numbers,
//! the kernel fact behind it, and the fixes in order of preference.

use std::collections::HashMap;

use serde::Serialize;

use crate::analyze::aggregate::{rank, PortGroups, PortUse, Summary};
use crate::analyze::inflow::per_s;
use crate::model::abi::TIME_WAIT_SECS;
use crate::model::facts::Facts;
use crate::model::ports::{port_capacity, PortCapacity, DEFAULT_PORT_RANGE};
use crate::model::{Consumer, Flow};
use crate::model::{Endpoint, PortRange, Socket, TcpState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warn,
    Crit,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warn => "warn",
            Severity::Crit => "crit",
        }
    }
}

/// One rule's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable rule name, for scripts and metrics labels.
    pub rule: &'static str,
    pub severity: Severity,
    pub title: String,
    /// The numbers the verdict rests on.
    pub evidence: Vec<String>,
    /// The kernel fact that makes it matter.
    pub why: String,
    /// What to do, best first.
    pub fixes: Vec<String>,
}

impl Finding {
    fn new(rule: &'static str, severity: Severity, title: impl Into<String>) -> Finding {
        Finding {
            rule,
            severity,
            title: title.into(),
            evidence: Vec::new(),
            why: String::new(),
            fixes: Vec::new(),
        }
    }

    fn evidence(mut self, e: impl Into<String>) -> Self {
        self.evidence.push(e.into());
        self
    }

    fn why(mut self, w: impl Into<String>) -> Self {
        self.why = w.into();
        self
    }

    fn fixes(mut self, f: Vec<String>) -> Self {
        self.fixes = f;
        self
    }
}

/// A listener with connections waiting in its accept queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenQueue {
    pub local: Endpoint,
    /// Connections waiting for accept() (recv-q of a LISTEN socket).
    pub queued: u32,
    /// The backlog (send-q of a LISTEN socket; 0 from /proc, which lacks it).
    pub backlog: u32,
}

/// Everything the rules need from the socket table, gathered in one pass.
#[derive(Debug)]
pub struct Scan {
    pub summary: Summary,
    pub ports: PortGroups,
    close_wait_ports: HashMap<u16, u64>,
    pub listen_queues: Vec<ListenQueue>,
    /// TIME_WAIT sockets whose timer already reads 0.
    pub time_wait_at_zero: u64,
    /// FIN_WAIT2 minisockets (an orphaned FIN_WAIT2 kept by the timewait
    /// machinery, tcp_time_wait(sk, TCP_FIN_WAIT2, ...)): they count against
    /// tcp_max_tw_buckets like TIME_WAIT (inet_twsk_alloc checks tw_refcount).
    pub fin_wait2_timewait: u64,
}

impl Scan {
    pub fn new(range: PortRange) -> Scan {
        Scan {
            summary: Summary::default(),
            ports: PortGroups::new(range),
            close_wait_ports: HashMap::new(),
            listen_queues: Vec::new(),
            time_wait_at_zero: 0,
            fin_wait2_timewait: 0,
        }
    }

    /// CLOSE_WAIT by local port, largest first.
    pub fn close_wait_ports(&self, top: usize) -> Vec<(u16, u64)> {
        rank(&self.close_wait_ports, Some(top))
    }
}

impl Consumer for Scan {
    fn push(&mut self, s: &Socket) -> Flow {
        self.summary.push(s)?;
        self.ports.push(s)?;
        match s.state {
            TcpState::CloseWait => *self.close_wait_ports.entry(s.local.port).or_insert(0) += 1,
            TcpState::Listen if s.recv_q > 0 => self.listen_queues.push(ListenQueue {
                local: s.local,
                queued: s.recv_q,
                backlog: s.send_q_known().unwrap_or(0),
            }),
            TcpState::TimeWait if s.timewait_ms() == Some(0) => self.time_wait_at_zero += 1,
            TcpState::FinWait2 if s.timewait_ms().is_some() => self.fin_wait2_timewait += 1,
            _ => {}
        }
        Flow::Continue(())
    }

    fn restart(&mut self) {
        let reserved = self.ports.reserved().to_vec();
        *self = Scan::new(self.ports.range());
        self.ports = PortGroups::new(self.ports.range()).skipping(&reserved);
    }
}

/// A scan that counts ports as connect() hands them out on the box of
/// `facts`: inside ip_local_port_range, outside ip_local_reserved_ports.
pub fn scan_for(facts: &Facts) -> Scan {
    let mut scan = Scan::new(port_range(facts));
    scan.ports = PortGroups::new(port_range(facts)).skipping(reserved(facts));
    scan
}

/// ip_local_reserved_ports, none when unknown.
pub fn reserved(facts: &Facts) -> &[PortRange] {
    facts
        .sysctl
        .ip_local_reserved_ports
        .as_deref()
        .unwrap_or(&[])
}

/// The port range the scan should count against.
pub fn port_range(facts: &Facts) -> PortRange {
    facts
        .sysctl
        .ip_local_port_range
        .unwrap_or(DEFAULT_PORT_RANGE)
}

fn capacity(facts: &Facts) -> PortCapacity {
    facts.ephemeral_capacity().unwrap_or_else(|| {
        let reserved = facts
            .sysctl
            .ip_local_reserved_ports
            .as_deref()
            .unwrap_or(&[]);
        port_capacity(DEFAULT_PORT_RANGE, reserved)
    })
}

/// A counter as doctor prints it: its value, or "unknown" when it was not
/// read (a capture without /proc/net/netstat), never 0.
fn counter(v: Option<i64>) -> String {
    v.map_or_else(|| "unknown".to_string(), |n| n.to_string())
}

/// What the cumulative TcpExt counters cover: they are per network
/// namespace (net->mib), so "since boot" holds only in the host's.
const COUNTERS_SPAN: &str = "counted per network namespace since it was created (since boot \
                             in the host's)";

/// True when any system fact was read at all: a bare `--from` dump has
/// none, so a missing file there says nothing about the system.
fn facts_read(facts: &Facts) -> bool {
    facts.sysctl.ip_local_port_range.is_some()
        || facts.sysctl.tcp_max_tw_buckets.is_some()
        || facts.sockstat.tcp_tw.is_some()
        || facts.tcp_ext.tw.is_some()
}

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 * 100.0 / of as f64
    }
}

/// Runs every rule. Findings come back worst first, then in rule order.
pub fn diagnose(facts: &Facts, scan: &Scan) -> Vec<Finding> {
    let mut out = port_exhaustion(facts, scan);
    let exhaustion_found = !out.is_empty();
    out.push(outbound_time_wait(facts, scan, exhaustion_found));
    out.push(tw_buckets(facts, scan));
    out.push(conntrack(facts));
    out.push(fin_timeout(facts, scan));
    out.push(timers_at_zero(scan));
    out.push(close_wait(scan));
    out.push(listen_overflows(facts, scan));
    out.push(resets(facts));
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

/// The worst severity, which is also the exit status (0 / 1 / 2).
pub fn worst(findings: &[Finding]) -> Severity {
    findings
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Ok)
}

/// A destination is at risk when its ports are mostly used, or when the
/// half connect() tries first is full, which makes every connect() walk the
/// whole first half before it finds a port.
const PORTS_WARN_PCT: f64 = 70.0;
const PORTS_CRIT_PCT: f64 = 90.0;
const FIRST_HALF_WARN_PCT: f64 = 95.0;

fn port_exhaustion(facts: &Facts, scan: &Scan) -> Vec<Finding> {
    let cap = capacity(facts);
    let usable = u64::from(cap.preferred_parity + cap.other_parity);
    let mut out = Vec::new();
    for (dest, u) in scan.ports.ranked(None) {
        let use_pct = pct(u.held, usable);
        let half_pct = pct(u.held_preferred, u64::from(cap.preferred_parity));
        let severity = if use_pct >= PORTS_CRIT_PCT {
            Severity::Crit
        } else if use_pct >= PORTS_WARN_PCT || half_pct >= FIRST_HALF_WARN_PCT {
            Severity::Warn
        } else {
            // Sorted by use: the rest are lower still.
            break;
        };
        out.push(
            Finding::new(
                "port_exhaustion",
                severity,
                format!(
                    "{} -> {} holds {} of {} ephemeral ports ({use_pct:.1}%)",
                    dest.local, dest.peer, u.held, usable
                ),
            )
            .evidence(state_breakdown(&u))
            .evidence(format!(
                "first-choice half (parity of {}): {} of {} held ({half_pct:.1}%)",
                port_range(facts).lo,
                u.held_preferred,
                cap.preferred_parity
            ))
            .evidence(rate_arithmetic(&u, usable))
            .why(format!(
                "An ephemeral port is busy only for the same (local IP, remote IP, remote \
                 port), so this destination has {usable} ports to itself. Each connection this \
                 box closes first holds its port in TIME_WAIT for {TIME_WAIT_SECS} s \
                 (TCP_TIMEWAIT_LEN, fixed). connect() tries ports of one parity first; when \
                 none is free it fails with EADDRNOTAVAIL."
            ))
            .fixes(port_fixes(facts)),
        );
    }
    out
}

fn state_breakdown(u: &PortUse) -> String {
    let parts: Vec<String> = u
        .states()
        .iter()
        .map(|(s, n)| format!("{n} {}", s.name()))
        .collect();
    format!("held by: {}", parts.join(", "))
}

/// The rate from the timers' ages (see analyze::inflow): the last 10 s and
/// the busiest 10 s of the last 60, against what the range sustains, and
/// when the ports run out at the recent rate.
fn rate_arithmetic(u: &PortUse, usable: u64) -> String {
    let f = &u.inflow;
    let (peak, ago) = f.peak();
    let when = match u.exhaustion_in(usable) {
        Some(t) if t <= 0.0 => "already exhausted".to_string(),
        Some(t) => format!("full in about {:.0} s at that rate", t.ceil()),
        None => "that rate alone never fills it".to_string(),
    };
    format!(
        "closed to it (from timer ages): {} over the last 10 s, {} at the busiest 10 s \
         ({}-{ago} s ago); the range sustains at most {usable} / {TIME_WAIT_SECS} s = {}/s; \
         {when}",
        per_s(f.recent_per_s()),
        per_s(peak),
        ago - 10,
        usable / TIME_WAIT_SECS
    )
}

/// Fixes for outbound TIME_WAIT, best first, tuned to the box's sysctls.
fn port_fixes(facts: &Facts) -> Vec<String> {
    let mut fixes = vec![
        "Reuse connections: HTTP keep-alive or a connection pool to this destination \
         (nginx: `keepalive` in the upstream block with proxy_http_version 1.1 and \
         proxy_set_header Connection \"\"; HAProxy: http-reuse)."
            .to_string(),
        "Spread over more source addresses, with IP_BIND_ADDRESS_NO_PORT set before bind() \
         so each address gets the whole range per destination (HAProxy: `source` lines; \
         nginx: proxy_bind)."
            .to_string(),
        "Widen net.ipv4.ip_local_port_range (for example 1024 65535: ends of different \
         parity), after reserving ports your services listen on in ip_local_reserved_ports."
            .to_string(),
    ];
    let reuse = facts.sysctl.tcp_tw_reuse;
    let ts = facts.sysctl.tcp_timestamps;
    if reuse != Some(1) {
        let now = reuse.map_or("unknown".to_string(), |r| r.to_string());
        let ts_note = if ts == Some(0) {
            " It needs TCP timestamps, which are off here (tcp_timestamps=0): turn them on too."
        } else {
            ""
        };
        fixes.push(format!(
            "Set net.ipv4.tcp_tw_reuse=1 (now {now}): connect() may then take over a \
             TIME_WAIT port older than 1 s when timestamps prove the new segments are \
             newer. Outbound connections only.{ts_note}"
        ));
    }
    fixes.push(
        "Close with RST instead of FIN (SO_LINGER with timeout 0; TcpExt TCPAbortOnData \
         counts these): no TIME_WAIT at all, but a late segment of the old connection can \
         no longer be told apart, and unsent data is dropped. HAProxy does this toward a \
         server only when it closes first (http-pretend-keepalive); with http-server-close \
         the server mostly closes first and keeps the TIME_WAIT."
            .to_string(),
    );
    fixes
}

const OUTBOUND_TW_WARN_PCT: f64 = 50.0;

fn outbound_time_wait(facts: &Facts, scan: &Scan, exhaustion_found: bool) -> Finding {
    let out_tw = scan.summary.time_wait_outbound;
    let in_tw = scan.summary.time_wait_inbound;
    let cap = capacity(facts);
    let usable = u64::from(cap.preferred_parity + cap.other_parity);
    let top = scan.summary.top_destinations();
    let worst = top.first().map_or(0, |(_, n)| *n);
    let severity = if pct(worst, usable) >= OUTBOUND_TW_WARN_PCT {
        Severity::Warn
    } else {
        Severity::Ok
    };
    let mut f = Finding::new(
        "time_wait_outbound",
        severity,
        format!("{out_tw} TIME_WAIT on outbound connections, {in_tw} on inbound ones"),
    )
    .why(format!(
        "TIME_WAIT stays with the side that closes first, for {TIME_WAIT_SECS} s. On the \
         inbound side it costs a small minisocket and no port; on the outbound side each \
         one holds an ephemeral port toward its destination."
    ));
    for (d, n) in top.iter().take(3) {
        let inflow = scan.summary.inflow.to_peer(d);
        f = f.evidence(format!(
            "{d}: {n} TIME_WAIT ({:.1}% of {usable} ports); closed by this box first: \
             {} over the last 10 s, {} at the busiest 10 s of the last 60 (timer ages)",
            pct(*n, usable),
            per_s(inflow.recent_per_s()),
            per_s(inflow.peak_per_s()),
        ));
    }
    if severity > Severity::Ok {
        f = f.fixes(if exhaustion_found {
            vec!["The fixes under port_exhaustion apply here too.".into()]
        } else {
            port_fixes(facts)
        });
    }
    f
}

fn tw_buckets(facts: &Facts, scan: &Scan) -> Finding {
    let max = facts.sysctl.tcp_max_tw_buckets;
    // sockstat's tw counts TIME_WAIT and FIN_WAIT2 minisockets of this
    // namespace; without /proc/net/sockstat, count both kinds in the scan.
    let tw = facts
        .sockstat
        .tcp_tw
        .unwrap_or((scan.summary.count(TcpState::TimeWait) + scan.fin_wait2_timewait) as i64);
    let overflows = facts.tcp_ext.time_wait_overflow;
    let full = max.is_some_and(|m| m > 0 && tw as f64 >= m as f64 * 0.95);
    let severity = if full {
        Severity::Crit
    } else if overflows.unwrap_or(0) > 0 {
        Severity::Warn
    } else {
        Severity::Ok
    };
    let mut f = Finding::new(
        "tw_buckets",
        severity,
        match max {
            Some(m) => format!("{tw} timewait sockets of at most {m} (tcp_max_tw_buckets)"),
            None => format!("{tw} timewait sockets (tcp_max_tw_buckets unknown)"),
        },
    )
    .evidence(format!(
        "TcpExt TCPTimeWaitOverflow: {}, {COUNTERS_SPAN}",
        counter(overflows)
    ));
    if facts.sockstat.tcp_tw.is_none() {
        f = f.evidence(format!(
            "sockstat unknown: counted {} TIME_WAIT and {} FIN_WAIT2 minisockets in the table",
            scan.summary.count(TcpState::TimeWait),
            scan.fin_wait2_timewait
        ));
    }
    let mut f = f.why(
        "tcp_max_tw_buckets is per network namespace. Past it the kernel skips TIME_WAIT \
         for new closes and counts TCPTimeWaitOverflow (older kernels also logged \"TCP: \
         time wait bucket table overflow\"): no port is held, but a delayed segment can \
         reach a new connection on the same 4-tuple.",
    );
    if severity > Severity::Ok {
        f = f.fixes(vec![
            "Find who closes first and why so often: `tw count --state time-wait --by peer`."
                .into(),
            "Reuse connections (keep-alive, pooling) so fewer are closed.".into(),
            "Raise net.ipv4.tcp_max_tw_buckets if memory allows (each costs a few hundred \
             bytes)."
                .into(),
        ]);
    }
    f
}

const CONNTRACK_WARN_PCT: f64 = 75.0;
const CONNTRACK_CRIT_PCT: f64 = 90.0;

fn conntrack(facts: &Facts) -> Finding {
    let c = &facts.conntrack;
    let (Some(count), Some(max)) = (c.count, c.max) else {
        if !facts_read(facts) {
            return Finding::new("conntrack", Severity::Ok, "conntrack unknown: not captured").why(
                "No sysctls were read (a capture without --proc-root), so whether \
                      nf_conntrack was loaded, and how full its table was, is not known.",
            );
        }
        return Finding::new(
            "conntrack",
            Severity::Ok,
            "conntrack is not loaded where these facts were read",
        )
        .why("Without nf_conntrack no connection table can fill up.");
    };
    let p = pct(count.max(0) as u64, max.max(0) as u64);
    let severity = if p >= CONNTRACK_CRIT_PCT {
        Severity::Crit
    } else if p >= CONNTRACK_WARN_PCT {
        Severity::Warn
    } else {
        Severity::Ok
    };
    let mut f = Finding::new(
        "conntrack",
        severity,
        format!("conntrack table {count} of {max} entries ({p:.1}%)"),
    )
    .why(
        "When nf_conntrack_count reaches nf_conntrack_max, new connections are dropped \
         (\"nf_conntrack: table full, dropping packet\"). conntrack keeps its own TIME_WAIT \
         entries, independent of the sockets'.",
    );
    if let Some(b) = c.buckets {
        f = f.evidence(format!("nf_conntrack_buckets: {b}"));
    }
    if let Some(t) = c.tcp_timeout_time_wait {
        f = f.evidence(format!(
            "nf_conntrack_tcp_timeout_time_wait: {t} s (sockets: {TIME_WAIT_SECS} s)"
        ));
    }
    if severity > Severity::Ok {
        f = f.fixes(vec![
            "Reuse connections, so fewer entries are created at all.".into(),
            format!(
                "Raise net.netfilter.nf_conntrack_max (now {max}) and nf_conntrack_buckets \
                 with it; each entry costs about 300 bytes."
            ),
            "Shorten net.netfilter.nf_conntrack_tcp_timeout_time_wait (120 s by default).".into(),
            "Exempt traffic that needs no tracking (a NOTRACK / notrack rule for loopback \
             or backend traffic)."
                .into(),
        ]);
    }
    f
}

fn fin_timeout(facts: &Facts, scan: &Scan) -> Finding {
    let tw = scan.summary.count(TcpState::TimeWait);
    match facts.sysctl.tcp_fin_timeout {
        Some(t) if t != TIME_WAIT_SECS as i64 && tw > 0 => Finding::new(
            "fin_timeout_myth",
            Severity::Warn,
            format!("tcp_fin_timeout is {t} s, and it does not shorten TIME_WAIT"),
        )
        .evidence(format!(
            "{tw} TIME_WAIT sockets, each kept {TIME_WAIT_SECS} s regardless"
        ))
        .why(
            "TIME_WAIT lasts TCP_TIMEWAIT_LEN = 60 s, fixed at compile time. \
             tcp_fin_timeout only limits orphaned FIN_WAIT2 sockets (closed by the \
             application, waiting for the peer's FIN).",
        )
        .fixes(vec![
            "To have fewer TIME_WAIT, close fewer connections: see time_wait_outbound and \
             `tw explain time-wait`."
                .into(),
            "Keep tcp_fin_timeout only if orphaned FIN_WAIT2 sockets are the problem.".into(),
        ]),
        Some(t) => Finding::new(
            "fin_timeout_myth",
            Severity::Ok,
            format!("tcp_fin_timeout is {t} s (governs orphaned FIN_WAIT2, not TIME_WAIT)"),
        ),
        None => Finding::new("fin_timeout_myth", Severity::Ok, "tcp_fin_timeout unknown"),
    }
}

/// Beyond these, zero timers mean the timer softirq is falling behind.
const ZERO_TIMERS_MIN: u64 = 100;
const ZERO_TIMERS_PCT: f64 = 10.0;

fn timers_at_zero(scan: &Scan) -> Finding {
    let zero = scan.time_wait_at_zero;
    let tw = scan.summary.count(TcpState::TimeWait);
    let severity = if zero >= ZERO_TIMERS_MIN && pct(zero, tw) >= ZERO_TIMERS_PCT {
        Severity::Warn
    } else {
        Severity::Ok
    };
    let mut f = Finding::new(
        "time_wait_at_zero",
        severity,
        format!("{zero} of {tw} TIME_WAIT sockets show 0 s left"),
    )
    .why(
        "The kernel reaps a TIME_WAIT socket when its timer fires, and a 60 s timer sits in \
         the timer wheel's level of 4 s granularity at HZ=1000 (kernel/time/timer.c), \
         rounded up: a socket can read 0 for up to about 4 s. Normal in small numbers.",
    );
    if severity > Severity::Ok {
        f = f.fixes(vec![
            "Many at once means timer softirqs run late: look for CPU saturation or \
             ksoftirqd busy (`top`, /proc/softirqs TIMER)."
                .into(),
        ]);
    }
    f
}

const CLOSE_WAIT_WARN: u64 = 100;
const CLOSE_WAIT_CRIT: u64 = 1000;

fn close_wait(scan: &Scan) -> Finding {
    let n = scan.summary.count(TcpState::CloseWait);
    let severity = if n >= CLOSE_WAIT_CRIT {
        Severity::Crit
    } else if n >= CLOSE_WAIT_WARN {
        Severity::Warn
    } else {
        Severity::Ok
    };
    let mut f = Finding::new("close_wait", severity, format!("{n} CLOSE_WAIT sockets")).why(
        "CLOSE_WAIT means the peer closed and the local application has not called \
         close(). The kernel never times it out: only the application can end it, and \
         each one holds a file descriptor.",
    );
    for (port, c) in scan.close_wait_ports(3) {
        f = f.evidence(format!("local port {port}: {c} CLOSE_WAIT"));
    }
    if severity > Severity::Ok {
        f = f.fixes(vec![
            "Find the process owning those ports (`ss -tnp state close-wait`) and why it \
             does not close: a leak on an error path, or workers too busy to read the EOF."
                .into(),
            "Restarting that process frees them now; fixing the close path stops it.".into(),
        ]);
    }
    f
}

fn listen_overflows(facts: &Facts, scan: &Scan) -> Finding {
    let overflows = facts.tcp_ext.listen_overflows;
    let drops = facts.tcp_ext.listen_drops;
    // Full: as many waiting as the backlog allows. /proc does not give the
    // backlog (its tx_queue of a listener is 0), so there a listener with
    // connections waiting is named as possibly full.
    let full: Vec<&ListenQueue> = scan
        .listen_queues
        .iter()
        .filter(|q| q.backlog > 0 && q.queued >= q.backlog)
        .collect();
    let waiting: Vec<&ListenQueue> = scan
        .listen_queues
        .iter()
        .filter(|q| q.backlog == 0 && q.queued > 0)
        .collect();
    let counted = overflows.unwrap_or(0) > 0 || drops.unwrap_or(0) > 0;
    let severity = if !full.is_empty() {
        Severity::Crit
    } else if counted {
        Severity::Warn
    } else {
        Severity::Ok
    };
    let names = |qs: &[&ListenQueue]| {
        let mut v: Vec<String> = qs.iter().take(5).map(|q| q.local.to_string()).collect();
        if qs.len() > 5 {
            v.push(format!("and {} more", qs.len() - 5));
        }
        v.join(", ")
    };
    let title = if !full.is_empty() {
        format!(
            "accept queue full on {}; {} overflows, {} drops",
            names(&full),
            counter(overflows),
            counter(drops)
        )
    } else if counted && !waiting.is_empty() {
        format!(
            "accept queues: {} overflows, {} drops; connections waiting on {}",
            counter(overflows),
            counter(drops),
            names(&waiting)
        )
    } else {
        format!(
            "accept queues: {} overflows, {} drops",
            counter(overflows),
            counter(drops)
        )
    };
    let mut f = Finding::new("listen_overflows", severity, title).evidence(format!(
        "TcpExt ListenOverflows and ListenDrops: {COUNTERS_SPAN}"
    ));
    for q in waiting.iter().take(5) {
        f = f.evidence(format!(
            "{}: {} waiting for accept(), backlog unknown (/proc does not show it)",
            q.local, q.queued
        ));
    }
    let mut f = f.why(
        "A listener's accept queue holds connections the application has not accept()ed \
         yet; when full, the kernel drops the client's final ACK or SYN (TcpExt \
         ListenOverflows, ListenDrops) and the client retries after a timeout.",
    );
    for q in full.iter().take(5) {
        f = f.evidence(format!(
            "{} queue full now: {} waiting, backlog {}",
            q.local, q.queued, q.backlog
        ));
    }
    if let Some(m) = facts.sysctl.somaxconn {
        f = f.evidence(format!(
            "net.core.somaxconn: {m} (caps every listen() backlog)"
        ));
    }
    if severity > Severity::Ok {
        f = f.fixes(vec![
            "Make the application accept faster (more workers or threads).".into(),
            "Raise the listen() backlog in the application and net.core.somaxconn with it.".into(),
        ]);
    }
    f
}

/// The reset counters: how many connections ended without the FIN
/// exchange, and why. Informational: resets are normal in small numbers.
fn resets(facts: &Facts) -> Finding {
    let c = crate::analyze::resets::counters(facts);
    let v = |name: &str| c.iter().find(|x| x.name == name).and_then(|x| x.value);
    let title = if c.iter().all(|x| x.value.is_none()) {
        "resets: unknown (the counters were not read)".to_string()
    } else {
        format!(
            "resets: {} sent, {} established connections reset, {} linger-0 closes, {} \
             closes with unread data",
            counter(v("OutRsts")),
            counter(v("EstabResets")),
            counter(v("TCPAbortOnData")),
            counter(v("TCPAbortOnClose")),
        )
    };
    let mut f = Finding::new("resets", Severity::Ok, title);
    for x in &c {
        f = f.evidence(format!(
            "{} {}: {} ({})",
            x.section,
            x.name,
            counter(x.value),
            x.meaning
        ));
    }
    f.evidence(format!("all {COUNTERS_SPAN}")).why(
        "A connection ended by RST holds no TIME_WAIT on either side, so resets hide closes \
         from the TIME_WAIT count and from inflow. A proxy that resets toward its servers \
         (HAProxy when it closes first, as with http-pretend-keepalive) shows here, not in \
         TIME_WAIT.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Direction, Family, Timer, TimerKind};
    use std::path::Path;

    fn facts(tree: &str) -> Facts {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/procroot")
            .join(tree);
        crate::source::facts::read(&root).unwrap()
    }

    fn sock(state: TcpState, local: &str, peer: &str, dir: Direction) -> Socket {
        let ep = |s: &str| {
            let sa: std::net::SocketAddr = s.parse().unwrap();
            Endpoint::new(sa.ip(), sa.port())
        };
        let mut s = Socket::new(Family::Inet, state, ep(local), ep(peer));
        s.direction = Some(dir);
        if state == TcpState::TimeWait {
            s.timer = Some(Timer {
                kind: TimerKind::TimeWait,
                ms: 30_000,
            });
        }
        s
    }

    /// `n` outbound TIME_WAIT from 10.0.0.1 to 10.0.0.9:80, on consecutive
    /// ports from `first`.
    fn outbound(scan: &mut Scan, n: u16, first: u16) {
        for i in 0..n {
            let local = format!("10.0.0.1:{}", first + i);
            let _ = scan.push(&sock(
                TcpState::TimeWait,
                &local,
                "10.0.0.9:80",
                Direction::Outbound,
            ));
        }
    }

    fn find<'a>(findings: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
        findings.iter().filter(|f| f.rule == rule).collect()
    }

    fn severity_of(findings: &[Finding], rule: &str) -> Option<Severity> {
        find(findings, rule).iter().map(|f| f.severity).max()
    }

    #[test]
    fn port_exhaustion_by_share_of_the_range() {
        // narrow-range: 40000-40199 less 40100-40109 reserved = 190 ports, 95 even.
        let f = facts("narrow-range");
        let cases: &[(u16, Option<Severity>)] = &[
            (60, None),
            (140, Some(Severity::Warn)),
            (175, Some(Severity::Crit)),
        ];
        for (n, want) in cases {
            let mut scan = Scan::new(port_range(&f));
            // Skip the reserved block, as connect() does.
            outbound(&mut scan, (*n).min(100), 40000);
            outbound(&mut scan, n.saturating_sub(100), 40110);
            let got = diagnose(&f, &scan);
            assert_eq!(severity_of(&got, "port_exhaustion"), *want, "{n} ports");
            if let Some(finding) = find(&got, "port_exhaustion").first() {
                assert!(finding.title.contains("10.0.0.1 -> 10.0.0.9:80"));
                assert!(finding.title.contains("of 190"), "{}", finding.title);
                assert!(finding.evidence.iter().any(|e| e.contains(" / 60 s")));
                assert!(finding.fixes[0].contains("keep-alive"));
            }
        }
    }

    #[test]
    fn a_full_first_half_warns_before_the_range_is_full() {
        let f = facts("narrow-range");
        let mut scan = Scan::new(port_range(&f));
        // Every even port below the reserved block and above it: 95 of 95.
        for p in (40000..40200u16)
            .step_by(2)
            .filter(|p| !(40100..40110).contains(p))
        {
            let local = format!("10.0.0.1:{p}");
            let _ = scan.push(&sock(
                TcpState::TimeWait,
                &local,
                "10.0.0.9:80",
                Direction::Outbound,
            ));
        }
        let got = diagnose(&f, &scan);
        let pe = find(&got, "port_exhaustion");
        assert_eq!(pe.len(), 1);
        assert_eq!(pe[0].severity, Severity::Warn);
        assert!(
            pe[0].evidence[1].contains("95 of 95 held (100.0%)"),
            "{:?}",
            pe[0].evidence
        );
    }

    #[test]
    fn inbound_time_wait_uses_no_ports() {
        let f = facts("narrow-range");
        let mut scan = Scan::new(port_range(&f));
        for i in 0..180u16 {
            let peer = format!("10.0.0.9:{}", 40000 + i);
            let _ = scan.push(&sock(
                TcpState::TimeWait,
                "10.0.0.1:80",
                &peer,
                Direction::Inbound,
            ));
        }
        let got = diagnose(&f, &scan);
        assert!(find(&got, "port_exhaustion").is_empty());
        assert_eq!(severity_of(&got, "time_wait_outbound"), Some(Severity::Ok));
        // The tree's only warning is its capture's two listen overflows.
        let others: Vec<&Finding> = got
            .iter()
            .filter(|f| f.rule != "listen_overflows")
            .collect();
        assert!(
            others.iter().all(|f| f.severity == Severity::Ok),
            "{others:?}"
        );
    }

    #[test]
    fn conntrack_by_fill() {
        let cases: &[(&str, Severity, &str)] = &[
            ("full-conntrack", Severity::Crit, "261000 of 262144"),
            ("live", Severity::Ok, "of 262144"),
            ("no-conntrack", Severity::Ok, "not loaded"),
        ];
        for (tree, want, text) in cases {
            let f = facts(tree);
            let got = diagnose(&f, &Scan::new(port_range(&f)));
            let c = find(&got, "conntrack");
            assert_eq!(c[0].severity, *want, "{tree}");
            assert!(c[0].title.contains(text), "{tree}: {}", c[0].title);
        }
        let mut f = facts("live");
        f.conntrack.count = Some(200_000);
        f.conntrack.max = Some(262_144);
        let got = diagnose(&f, &Scan::new(port_range(&f)));
        assert_eq!(severity_of(&got, "conntrack"), Some(Severity::Warn));
    }

    #[test]
    fn tw_buckets_full_or_overflowed() {
        /// sockstat tw, tcp_max_tw_buckets, TCPTimeWaitOverflow, verdict.
        type Case = (Option<i64>, Option<i64>, Option<i64>, Severity);
        let cases: &[Case] = &[
            (Some(1000), Some(131072), Some(0), Severity::Ok),
            (Some(1000), Some(131072), Some(7), Severity::Warn),
            (Some(130000), Some(131072), Some(0), Severity::Crit),
            (Some(5), None, None, Severity::Ok),
        ];
        for (tw, max, overflow, want) in cases {
            let mut f = facts("live");
            f.sockstat.tcp_tw = *tw;
            f.sysctl.tcp_max_tw_buckets = *max;
            f.tcp_ext.time_wait_overflow = *overflow;
            let got = diagnose(&f, &Scan::new(port_range(&f)));
            assert_eq!(
                severity_of(&got, "tw_buckets"),
                Some(*want),
                "{tw:?} {max:?} {overflow:?}"
            );
        }
    }

    #[test]
    fn fin_timeout_tuned_for_time_wait_is_a_myth() {
        let cases: &[(Option<i64>, u16, Severity)] = &[
            (Some(15), 10, Severity::Warn),
            (Some(15), 0, Severity::Ok),
            (Some(60), 10, Severity::Ok),
            (None, 10, Severity::Ok),
        ];
        for (t, tw, want) in cases {
            let mut f = facts("live");
            f.sysctl.tcp_fin_timeout = *t;
            let mut scan = Scan::new(port_range(&f));
            outbound(&mut scan, *tw, 33000);
            let got = diagnose(&f, &scan);
            assert_eq!(
                severity_of(&got, "fin_timeout_myth"),
                Some(*want),
                "{t:?} {tw}"
            );
        }
    }

    #[test]
    fn zero_timers_close_wait_and_listen_queues() {
        let f = facts("live");
        let mut scan = Scan::new(port_range(&f));
        outbound(&mut scan, 900, 33000);
        for i in 0..200u16 {
            let mut s = sock(
                TcpState::TimeWait,
                &format!("10.0.0.1:{}", 50000 + i),
                "10.0.0.8:80",
                Direction::Outbound,
            );
            s.timer = Some(Timer {
                kind: TimerKind::TimeWait,
                ms: 0,
            });
            let _ = scan.push(&s);
        }
        for i in 0..150u16 {
            let peer = format!("10.0.0.7:{}", 40000 + i);
            let _ = scan.push(&sock(
                TcpState::CloseWait,
                "10.0.0.1:8080",
                &peer,
                Direction::Inbound,
            ));
        }
        let mut l = sock(
            TcpState::Listen,
            "0.0.0.0:80",
            "0.0.0.0:0",
            Direction::Inbound,
        );
        (l.recv_q, l.send_q) = (128, 128);
        let _ = scan.push(&l);
        let got = diagnose(&f, &scan);
        assert_eq!(severity_of(&got, "time_wait_at_zero"), Some(Severity::Warn));
        let cw = find(&got, "close_wait");
        assert_eq!(cw[0].severity, Severity::Warn);
        assert_eq!(cw[0].evidence, ["local port 8080: 150 CLOSE_WAIT"]);
        let lq = find(&got, "listen_overflows");
        assert_eq!(lq[0].severity, Severity::Crit);
        assert!(
            lq[0].title.starts_with("accept queue full on 0.0.0.0:80;"),
            "{lq:?}"
        );
        assert!(lq[0]
            .evidence
            .iter()
            .any(|e| e.contains("0.0.0.0:80 queue full now: 128 waiting, backlog 128")));
        // Worst first.
        assert_eq!(got[0].severity, Severity::Crit);
        assert_eq!(worst(&got), Severity::Crit);
    }

    #[test]
    fn counters_not_captured_are_unknown_not_zero() {
        // A bare --from dump: no facts at all.
        let f = Facts::default();
        let got = diagnose(&f, &Scan::new(port_range(&f)));
        let tw = find(&got, "tw_buckets");
        assert!(
            tw[0].evidence[0].starts_with("TcpExt TCPTimeWaitOverflow: unknown"),
            "{tw:?}"
        );
        let lq = find(&got, "listen_overflows");
        assert_eq!(
            lq[0].title,
            "accept queues: unknown overflows, unknown drops"
        );
        let ct = find(&got, "conntrack");
        assert_eq!(ct[0].title, "conntrack unknown: not captured");
        let rs = find(&got, "resets");
        assert_eq!(rs[0].title, "resets: unknown (the counters were not read)");
        // With facts, missing netfilter files mean it was not loaded there.
        let f = facts("no-conntrack");
        let ct = diagnose(&f, &Scan::new(port_range(&f)));
        assert_eq!(
            find(&ct, "conntrack")[0].title,
            "conntrack is not loaded where these facts were read"
        );
    }

    #[test]
    fn counters_are_said_to_be_per_network_namespace_not_since_boot() {
        let f = facts("live");
        let got = diagnose(&f, &Scan::new(port_range(&f)));
        for rule in ["tw_buckets", "listen_overflows"] {
            let text = format!("{:?}", find(&got, rule));
            assert!(text.contains("per network namespace"), "{text}");
            assert!(!text.contains("overflows since boot"), "{text}");
        }
    }

    #[test]
    fn tw_buckets_without_sockstat_counts_fin_wait2_minisockets_too() {
        let mut f = Facts::default();
        f.sysctl.tcp_max_tw_buckets = Some(20);
        let mut scan = Scan::new(port_range(&f));
        for i in 0..17u16 {
            let peer = format!("10.0.0.7:{}", 40000 + i);
            let mut s = sock(TcpState::TimeWait, "10.0.0.1:80", &peer, Direction::Inbound);
            s.timer = Some(Timer {
                kind: TimerKind::TimeWait,
                ms: 30_000,
            });
            let _ = scan.push(&s);
        }
        for i in 0..2u16 {
            let local = format!("10.0.0.1:{}", 41000 + i);
            let mut s = sock(
                TcpState::FinWait2,
                &local,
                "10.0.0.7:80",
                Direction::Outbound,
            );
            s.timer = Some(Timer {
                kind: TimerKind::TimeWait,
                ms: 30_000,
            });
            let _ = scan.push(&s);
        }
        let got = diagnose(&f, &scan);
        let tw = find(&got, "tw_buckets");
        assert_eq!(
            tw[0].title,
            "19 timewait sockets of at most 20 (tcp_max_tw_buckets)"
        );
        assert_eq!(tw[0].severity, Severity::Crit);
    }

    #[test]
    fn listeners_with_connections_waiting_are_named_when_the_backlog_is_unknown() {
        let mut f = facts("live");
        f.tcp_ext.listen_overflows = Some(2);
        let mut scan = Scan::new(port_range(&f));
        // From /proc: recv-q known, backlog (send-q) 0.
        let mut l = sock(
            TcpState::Listen,
            "127.0.0.1:5001",
            "0.0.0.0:0",
            Direction::Inbound,
        );
        l.recv_q = 2;
        let _ = scan.push(&l);
        let got = diagnose(&f, &scan);
        let lq = &find(&got, "listen_overflows")[0];
        assert!(
            lq.title.ends_with("connections waiting on 127.0.0.1:5001"),
            "{lq:?}"
        );
        assert!(
            lq.evidence.iter().any(|e| e.contains("backlog unknown")),
            "{lq:?}"
        );
    }

    #[test]
    fn reserved_ports_held_do_not_push_use_past_the_usable_ports() {
        let mut f = facts("live");
        f.sysctl.ip_local_port_range = Some(PortRange {
            lo: 40000,
            hi: 40099,
        });
        f.sysctl.ip_local_reserved_ports = Some(vec![PortRange {
            lo: 40000,
            hi: 40049,
        }]);
        let mut scan = scan_for(&f);
        // Every port of the range held, half of them reserved ones (bound
        // explicitly): the 50 usable are all held, not 100 of 50.
        outbound(&mut scan, 100, 40000);
        let got = diagnose(&f, &scan);
        let pe = find(&got, "port_exhaustion");
        assert_eq!(
            pe[0].title,
            "10.0.0.1 -> 10.0.0.9:80 holds 50 of 50 ephemeral ports (100.0%)"
        );
    }

    #[test]
    fn the_live_fixture_is_healthy_but_for_its_overflows() {
        // The capture made its accept queue overflow twice on purpose.
        let f = facts("live");
        let got = diagnose(&f, &Scan::new(port_range(&f)));
        for finding in &got {
            let want = if finding.rule == "listen_overflows" {
                Severity::Warn
            } else {
                Severity::Ok
            };
            assert_eq!(finding.severity, want, "{finding:?}");
        }
    }
}
