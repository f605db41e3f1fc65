//! JSON; `tw schema COMMAND` prints each document's JSON Schema, generated
//! from these types. Timers are in
//! milliseconds. Listings stream one object at a time.

use std::collections::BTreeMap;
use std::io::{self, Write};

use schemars::JsonSchema;
use serde::Serialize;

use super::cells::Annotation;
use super::listing::{write_held, Rows};
use super::report::Report;
use crate::analyze::aggregate::{
    Destination, PortUse, Summary, EXPIRY_WINDOWS, SUMMARY_TOP, TW_SLOTS,
};
use crate::analyze::doctor::{Finding, Severity};
use crate::analyze::inflow::Inflow;
use crate::model::ports::PortCapacity;
use crate::model::schema::SchemaVersion;
use crate::model::{Socket, StateSet};

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct SocketJson {
    /// In every row, so each line of a listing stands on its own.
    schema_version: SchemaVersion,
    /// netstat's spelling; a UDP socket with no peer is UNCONN, as ss
    /// writes it.
    #[schemars(extend("enum" = ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
        "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "UNCONN"]))]
    state: &'static str,
    #[schemars(extend("enum" = ["inet", "inet6"]))]
    family: &'static str,
    /// in (accepted), out (made by connect()), null when unknown.
    #[schemars(extend("enum" = ["in", "out", null]))]
    direction: Option<&'static str>,
    local: String,
    peer: String,
    timer: Option<TimerJson>,
    retrans: u8,
    recv_q: u32,
    /// null for a listener read from /proc, whose backlog is not there.
    send_q: Option<u32>,
    uid: u32,
    inode: u64,
    /// `tcp`, or `udp` with `-u`.
    #[schemars(extend("enum" = ["tcp", "udp"]))]
    protocol: &'static str,
}

/// A socket with what an annotated listing adds: its namespace and owners.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct AnnotatedJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    netns: Option<&'a str>,
    #[serde(flatten)]
    socket: SocketJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    processes: Option<Vec<OwnerJson<'a>>>,
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct OwnerJson<'a> {
    pid: i32,
    command: &'a str,
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct TimerJson {
    #[schemars(extend("enum" = ["retransmit", "keepalive", "timewait", "probe0"]))]
    kind: &'static str,
    ms: u32,
}

impl From<&Socket> for SocketJson {
    fn from(s: &Socket) -> Self {
        SocketJson {
            schema_version: SchemaVersion,
            state: s.state_name(),
            family: s.family.name(),
            direction: s.direction.map(|d| d.name()),
            local: s.local.to_string(),
            peer: s.peer.to_string(),
            timer: s.timer.map(|t| TimerJson {
                kind: t.kind.name(),
                ms: t.ms,
            }),
            retrans: s.retrans,
            recv_q: s.recv_q,
            send_q: s.send_q_known(),
            uid: s.uid,
            inode: s.inode,
            protocol: s.proto.name(),
        }
    }
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(super) struct GroupJson {
    key: String,
    count: u64,
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(super) struct CountJson<'a> {
    schema_version: SchemaVersion,
    total: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<GroupJson>>,
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct SummaryJson {
    schema_version: SchemaVersion,
    total: u64,
    ipv4: u64,
    ipv6: u64,
    /// Every state, zeros included, so the keys are stable.
    states: BTreeMap<&'static str, u64>,
    time_wait: TimeWaitJson,
    top_time_wait_peers: Vec<GroupJson>,
    top_time_wait_local_ports: Vec<GroupJson>,
    top_time_wait_destinations: Vec<GroupJson>,
    inflow: InflowJson,
    /// Reset counters with what each means; empty when not read.
    resets: Vec<crate::analyze::resets::ResetCounter>,
}

/// Inflow into TIME_WAIT from the timers' ages of this read.
#[derive(Serialize, schemars::JsonSchema)]
struct InflowJson {
    recent_inflow_per_s: f64,
    peak_inflow_per_s: f64,
    /// How many seconds ago the peak's 10 s window began.
    peak_window_began_s_ago: u32,
    /// Per second of age, newest first (0-1 s ago ... 59-60 s ago).
    last_60s: Vec<u32>,
    /// TIME_WAIT whose timer reads 0: past 60 s, waiting to be reaped.
    overdue: u64,
    destinations: Vec<InflowRowJson>,
    listeners: Vec<InflowRowJson>,
}

#[derive(Serialize, schemars::JsonSchema)]
struct InflowRowJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    local: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    listener: Option<String>,
    recent_inflow_per_s: f64,
    peak_inflow_per_s: f64,
    in_last_60s: u64,
}

fn inflow(sum: &Summary) -> InflowJson {
    let i = &sum.inflow;
    let (peak, ago) = i.all.peak();
    let row = |local: Option<String>, peer, listener, f: &Inflow| InflowRowJson {
        local,
        peer,
        listener,
        recent_inflow_per_s: f.recent_per_s(),
        peak_inflow_per_s: f.peak_per_s(),
        in_last_60s: f.total(),
    };
    InflowJson {
        recent_inflow_per_s: i.all.recent_per_s(),
        peak_inflow_per_s: peak,
        peak_window_began_s_ago: ago,
        last_60s: i.all.per_sec.to_vec(),
        overdue: i.all.overdue,
        destinations: i
            .top_destinations(SUMMARY_TOP)
            .iter()
            .map(|(d, f)| row(Some(d.local.to_string()), Some(d.peer.to_string()), None, f))
            .collect(),
        listeners: i
            .top_listeners(SUMMARY_TOP)
            .iter()
            .map(|(l, f)| row(None, None, Some(l.to_string()), f))
            .collect(),
    }
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct TimeWaitJson {
    total: u64,
    inbound: u64,
    outbound: u64,
    /// Keyed by window: "10s", "30s", "60s".
    expiring_within: BTreeMap<String, u64>,
    /// How many expire in each 5 s slot of time left: [0-5 s, ..., 55-60 s].
    left_5s_slots: [u64; TW_SLOTS],
}

fn summary(sum: &Summary) -> SummaryJson {
    let groups = |v: Vec<(String, u64)>| {
        v.into_iter()
            .map(|(key, count)| GroupJson { key, count })
            .collect()
    };
    SummaryJson {
        schema_version: SchemaVersion,
        total: sum.total,
        ipv4: sum.ipv4,
        ipv6: sum.ipv6,
        states: StateSet::ALL
            .iter()
            .map(|s| (s.name(), sum.count(s)))
            .collect(),
        time_wait: TimeWaitJson {
            total: sum.count(crate::model::TcpState::TimeWait),
            inbound: sum.time_wait_inbound,
            outbound: sum.time_wait_outbound,
            expiring_within: EXPIRY_WINDOWS
                .iter()
                .zip(sum.time_wait_expiring)
                .map(|(w, n)| (format!("{w}s"), n))
                .collect(),
            left_5s_slots: sum.time_wait_left,
        },
        top_time_wait_peers: groups(
            sum.top_peers()
                .into_iter()
                .map(|(a, n)| (a.to_string(), n))
                .collect(),
        ),
        top_time_wait_local_ports: groups(
            sum.top_local_ports()
                .into_iter()
                .map(|(p, n)| (p.to_string(), n))
                .collect(),
        ),
        top_time_wait_destinations: groups(
            sum.top_destinations()
                .into_iter()
                .map(|(d, n)| (d.to_string(), n))
                .collect(),
        ),
        inflow: inflow(sum),
        resets: sum.resets.clone(),
    }
}

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    match report {
        Report::Sockets(socks) => {
            write_held(&mut ListingRows::default(), socks, &Annotation::NONE, out)
        }
        Report::Annotated { socks, notes } => {
            write_held(&mut ListingRows::default(), socks, notes, out)
        }
        Report::Count(total) => line(
            out,
            &CountJson {
                schema_version: SchemaVersion,
                total: *total,
                by: None,
                groups: None,
            },
        ),
        Report::Groups { by, total, groups } => line(
            out,
            &CountJson {
                schema_version: SchemaVersion,
                total: *total,
                by: Some(by),
                groups: Some(
                    groups
                        .iter()
                        .map(|(k, n)| GroupJson {
                            key: k.to_string(),
                            count: *n,
                        })
                        .collect(),
                ),
            },
        ),
        Report::Summary(sum) => line(out, &summary(sum)),
        Report::Ports {
            rows,
            capacity,
            low,
            ..
        } => line(out, &ports(rows, capacity, *low)),
        Report::Doctor { findings, .. } => line(
            out,
            &DoctorJson {
                schema_version: SchemaVersion,
                status: crate::analyze::doctor::worst(findings),
                findings,
            },
        ),
    }
}

/// `tw ls` as one array, an object a line, written as the rows come.
#[derive(Debug, Default)]
pub struct ListingRows {
    written: usize,
}

impl Rows for ListingRows {
    fn measure(&mut self, _: &Socket, _: &Annotation) {}

    fn head(&mut self, _: &Annotation, _: bool, out: &mut Vec<u8>) {
        out.push(b'[');
    }

    fn row(&mut self, s: &Socket, a: &Annotation, out: &mut Vec<u8>) -> io::Result<()> {
        out.extend_from_slice(if self.written == 0 { b"\n" } else { b",\n" });
        self.written += 1;
        socket_object(s, a, out)
    }

    fn tail(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\n]\n");
    }
}

/// One socket's object in a listing, as `tw schema ls` describes it.
pub(super) fn socket_object(s: &Socket, a: &Annotation, out: &mut Vec<u8>) -> io::Result<()> {
    if a.namespaces.is_empty() && a.procs.is_none() {
        return Ok(serde_json::to_writer(out, &SocketJson::from(s))?);
    }
    let row = AnnotatedJson {
        netns: a.netns(s),
        socket: SocketJson::from(s),
        processes: a.procs.map(|p| {
            p.owners(s.inode)
                .iter()
                .map(|o| OwnerJson {
                    pid: o.pid,
                    command: &o.command,
                })
                .collect()
        }),
    };
    Ok(serde_json::to_writer(out, &row)?)
}

/// A row of `tw ls`: a TCP or UDP socket, or, in a listing with `-x`
/// (`tw -tuxan`), a UNIX socket (`protocol` `unix`).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum LsRow<'a> {
    Inet(AnnotatedJson<'a>),
    Unix(super::unix::UnixJson<'a>),
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct DoctorJson<'a> {
    schema_version: SchemaVersion,
    status: Severity,
    findings: &'a [Finding],
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct PortsJson {
    schema_version: SchemaVersion,
    capacity: PortCapacity,
    /// Low end of ip_local_port_range; connect() tries its parity first.
    range_low: u16,
    destinations: Vec<DestinationJson>,
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct DestinationJson {
    local: String,
    peer: String,
    held: u64,
    held_preferred: u64,
    states: BTreeMap<&'static str, u64>,
    /// Connections per second that entered TIME_WAIT over the last 10 s,
    /// from the timers' ages in this one read.
    recent_inflow_per_s: f64,
    /// The highest 10-second average of that inflow in the last 60 s.
    peak_inflow_per_s: f64,
    /// Per second of age, newest first: how many entered TIME_WAIT 0-1 s,
    /// 1-2 s, ... 59-60 s ago.
    inflow_last_60s: Vec<u32>,
    /// Seconds until every usable port is held at the recent inflow: 0 when
    /// already, null when that inflow never gets there.
    exhausted_in_s: Option<f64>,
}

fn ports(rows: &[(Destination, PortUse)], cap: &PortCapacity, low: u16) -> PortsJson {
    let usable = u64::from(cap.preferred_parity + cap.other_parity);
    PortsJson {
        schema_version: SchemaVersion,
        capacity: *cap,
        range_low: low,
        destinations: rows
            .iter()
            .map(|(d, u)| DestinationJson {
                local: d.local.to_string(),
                peer: d.peer.to_string(),
                held: u.held,
                held_preferred: u.held_preferred,
                states: u.states().into_iter().map(|(s, n)| (s.name(), n)).collect(),
                recent_inflow_per_s: u.inflow.recent_per_s(),
                peak_inflow_per_s: u.inflow.peak_per_s(),
                inflow_last_60s: u.inflow.per_sec.to_vec(),
                exhausted_in_s: u.exhaustion_in(usable),
            })
            .collect(),
    }
}

/// The documents of `--format json`, one per command that writes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// `tw ls`: an array, one socket per element.
    Ls,
    Count,
    Summary,
    Ports,
    Doctor,
}

/// The JSON Schema (draft 2020-12) of `doc`, generated from the types that
/// write it.
pub fn schema(doc: Document) -> schemars::Schema {
    let mut s = match doc {
        // The annotated row: a bare one is the same less netns/processes.
        Document::Ls => schemars::schema_for!(Vec<LsRow<'static>>),
        Document::Count => schemars::schema_for!(CountJson<'static>),
        Document::Summary => schemars::schema_for!(SummaryJson),
        Document::Ports => schemars::schema_for!(PortsJson),
        Document::Doctor => schemars::schema_for!(DoctorJson<'static>),
    };
    let name = match doc {
        Document::Ls => "ls",
        Document::Count => "count",
        Document::Summary => "summary",
        Document::Ports => "ports",
        Document::Doctor => "doctor",
    };
    s.insert("title".into(), format!("tw {name} --format json").into());
    s
}

fn line(out: &mut dyn Write, v: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    out.write_all(b"\n")
}
