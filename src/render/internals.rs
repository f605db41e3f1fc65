//! `tw ls -i` / `-m`: each socket with its tcp_info, congestion control and
//! socket memory, in table, plain and JSON. Cells are single tokens (`rtt`
//! as ss writes it, `0.031/0.015` ms; rates as `ss -n` does, `3254630631bps`),
//! so plain output stays one field per column for awk.

use std::io::{self, Write};

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use schemars::JsonSchema;
use serde::Serialize;

use super::cells::Annotation;
use super::listing::{CHUNK, HOLD};
use super::{fit, Format, Style};
use crate::analyze::internals::{Row, Stats};
use crate::model::decimal;
use crate::model::internals::{Extras, SkMem, TcpInfo, Wants, SKMEM_NAMES};
use crate::model::schema::SchemaVersion;
use crate::model::{Consumer, Flow, Socket, TcpState};
use crate::source::owners::Procs;

const INFO_HEADERS: [&str; 15] = [
    "CC",
    "RTT",
    "CWND",
    "SSTHRESH",
    "RETRANS",
    "SENT",
    "ACKED",
    "RECEIVED",
    "DELIVERY",
    "PACING",
    "LOST",
    "UNACKED",
    "BUSY",
    "RWND-LTD",
    "SNDBUF-LTD",
];

pub fn render(
    format: Format,
    rows: &[Row],
    wants: Wants,
    a: &Annotation,
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    match format {
        Format::Json => json(rows, wants, a, out),
        Format::Plain => plain(rows, wants, a, out),
        Format::Table => table(rows, wants, a, out, style),
    }
}

/// The column headers, and which are numbers (right-aligned).
pub fn headers(wants: Wants, a: &Annotation) -> Vec<(&'static str, bool)> {
    let mut h = Vec::new();
    if !a.namespaces.is_empty() {
        h.push(("NETNS", false));
    }
    h.extend([
        ("STATE", false),
        ("LOCAL", false),
        ("PEER", false),
        ("RECV-Q", true),
        ("SEND-Q", true),
    ]);
    if wants.info {
        h.extend(INFO_HEADERS.iter().map(|c| (*c, *c != "CC")));
    }
    if wants.memory {
        h.push(("SKMEM", false));
    }
    if a.procs.is_some() {
        h.push(("PROCESS", false));
    }
    h
}

/// One row's cells, in [`headers`] order; `-` where there is no value.
pub fn cells(r: &Row, wants: Wants, a: &Annotation) -> Vec<String> {
    let (mut t, mut ends) = (Vec::new(), Vec::new());
    push_cells(r, wants, a, &mut t, &mut ends);
    let mut start = 0;
    ends.iter()
        .map(|&e| {
            let c = String::from_utf8_lossy(&t[start..e]).into_owned();
            start = e;
            c
        })
        .collect()
}

/// Appends one row's cells to `t`, each cell's end to `ends`: a listing of
/// 100,000 rows formats into one buffer rather than two million strings.
pub fn push_cells(r: &Row, wants: Wants, a: &Annotation, t: &mut Vec<u8>, ends: &mut Vec<usize>) {
    use std::io::Write as _;
    let mut digits = [0u8; 20];
    let s = &r.socket;
    let mut end = |t: &mut Vec<u8>| ends.push(t.len());
    let mut num = |t: &mut Vec<u8>, n: Option<u64>| match n {
        Some(n) => t.extend_from_slice(decimal(n, &mut digits)),
        None => t.push(b'-'),
    };
    if let Some(ns) = a.netns(s) {
        t.extend_from_slice(ns.as_bytes());
        end(t);
    }
    t.extend_from_slice(s.state_name().as_bytes());
    end(t);
    s.local.push_text(t);
    end(t);
    s.peer.push_text(t);
    end(t);
    num(t, Some(u64::from(s.recv_q)));
    end(t);
    num(t, Some(u64::from(s.send_q)));
    end(t);
    let x = r.extras.as_deref();
    if wants.info {
        match x.and_then(|x| x.cong) {
            Some(c) => t.extend_from_slice(c.as_str().as_bytes()),
            None => t.push(b'-'),
        }
        end(t);
        let info = x.and_then(|x| x.info.as_ref());
        match info.and_then(|i| Some((i.rtt_us()?, i.rttvar_us()?))) {
            Some((r, v)) => {
                let _ = write!(t, "{}/{}", f64::from(r) / 1000.0, f64::from(v) / 1000.0);
            }
            None => t.push(b'-'),
        }
        end(t);
        let i = info;
        num(t, i.and_then(|i| i.cwnd()).map(u64::from));
        end(t);
        num(
            t,
            i.and_then(|i| i.ssthresh())
                .filter(|v| *v < 0xffff)
                .map(u64::from),
        );
        end(t);
        match i.and_then(|i| Some((i.retrans()?, i.total_retrans()?))) {
            Some((a, b)) => {
                let _ = write!(t, "{a}/{b}");
            }
            None => t.push(b'-'),
        }
        end(t);
        num(t, i.and_then(|i| i.bytes_sent()));
        end(t);
        num(t, i.and_then(|i| i.bytes_acked()));
        end(t);
        num(t, i.and_then(|i| i.bytes_received()));
        end(t);
        // Rates in bits per second, as `ss -n`; ~0 pacing is "unlimited".
        let rates = [
            i.and_then(|i| i.delivery_rate()),
            i.and_then(|i| i.pacing_rate()).filter(|r| *r != u64::MAX),
        ];
        for rate in rates {
            num(t, rate.map(|r| r.saturating_mul(8)));
            if rate.is_some() {
                t.extend_from_slice(b"bps");
            }
            end(t);
        }
        num(t, i.and_then(|i| i.lost()).map(u64::from));
        end(t);
        num(t, i.and_then(|i| i.unacked()).map(u64::from));
        end(t);
        let times = [
            i.and_then(|i| i.busy_us()),
            i.and_then(|i| i.rwnd_limited_us()),
            i.and_then(|i| i.sndbuf_limited_us()),
        ];
        for us in times {
            num(t, us.map(|us| us / 1000));
            if us.is_some() {
                t.extend_from_slice(b"ms");
            }
            end(t);
        }
    }
    if wants.memory {
        match x.and_then(|x| x.memory) {
            Some(m) => t.extend_from_slice(skmem_text(&m).as_bytes()),
            None => t.push(b'-'),
        }
        end(t);
    }
    if let Some(o) = a.owner_text(s) {
        // Escaped: command names are anyone's to choose (prctl(PR_SET_NAME)).
        t.extend_from_slice(o.as_bytes());
        end(t);
    }
}

/// `tw ls -i` / `-m` in plain or JSON written as the reader delivers the
/// rows, so memory stays flat whatever the number of sockets (each row's
/// tcp_info and skmem are about 300 bytes). As [`super::listing::Stream`]:
/// the first [`HOLD`] rows are held and size the plain columns, then
/// written with every later row as it comes (a wider cell later widens its
/// column from its line on); a listing no longer than that is exactly the
/// held one. A restart after rows were written fails rather than list a
/// socket twice (`--sort` holds the listing).
pub struct ExtrasStream<'a> {
    json: bool,
    wants: Wants,
    out: &'a mut dyn Write,
    namespaces: Vec<String>,
    procs: Option<&'a Procs>,
    held: Vec<Row>,
    hold: usize,
    limit: usize,
    taken: usize,
    streaming: bool,
    buf: Vec<u8>,
    failed: Option<io::Error>,
    cols: Option<Columns>,
    /// JSON rows written.
    written: usize,
    /// One row's cells, reused.
    cells: (Vec<u8>, Vec<usize>),
    /// Rows that could carry tcp_info (not TIME_WAIT or SYN_RECV), and how
    /// many of them did.
    eligible: u64,
    given: u64,
}

impl<'a> ExtrasStream<'a> {
    /// `format`: plain or JSON (a table is sized on every row: held).
    pub fn new(
        format: Format,
        wants: Wants,
        out: &'a mut dyn Write,
        procs: Option<&'a Procs>,
        limit: Option<usize>,
    ) -> ExtrasStream<'a> {
        ExtrasStream {
            json: format == Format::Json,
            wants,
            out,
            namespaces: Vec::new(),
            procs,
            held: Vec::new(),
            hold: HOLD,
            limit: limit.unwrap_or(usize::MAX),
            taken: 0,
            streaming: false,
            buf: Vec::with_capacity(CHUNK + 1024),
            failed: None,
            cols: None,
            written: 0,
            cells: (Vec::new(), Vec::new()),
            eligible: 0,
            given: 0,
        }
    }

    /// The same with another number of rows held, for tests.
    #[cfg(test)]
    fn holding(mut self, n: usize) -> Self {
        self.hold = n;
        self
    }

    /// True when rows that could carry tcp_info came without any: the
    /// reader had none to give (as [`crate::analyze::internals::none_given`]).
    pub fn none_given(&self) -> bool {
        self.eligible > 0 && self.given == 0
    }

    /// What stopped the stream while the read went on, if anything did.
    pub fn check(&mut self) -> io::Result<()> {
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Ends the listing once the read is whole.
    pub fn finish(mut self) -> io::Result<()> {
        self.check()?;
        if !self.streaming {
            self.begin()?;
        }
        if self.json {
            self.buf.extend_from_slice(b"\n]\n");
        }
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }

    /// The head and the held rows, the columns sized on them.
    fn begin(&mut self) -> io::Result<()> {
        self.streaming = true;
        let held = std::mem::take(&mut self.held);
        let a = Annotation {
            namespaces: &self.namespaces,
            procs: self.procs,
            ..Annotation::NONE
        };
        if self.json {
            self.buf.push(b'[');
        } else {
            let mut cols = Columns::new(headers(self.wants, &a));
            let (t, ends) = &mut self.cells;
            for r in &held {
                t.clear();
                ends.clear();
                push_cells(r, self.wants, &a, t, ends);
                cols.measure(t, 0, ends);
            }
            cols.head(&mut self.buf);
            self.cols = Some(cols);
        }
        for r in &held {
            self.write(r)?;
        }
        Ok(())
    }

    fn write(&mut self, r: &Row) -> io::Result<()> {
        let a = Annotation {
            namespaces: &self.namespaces,
            procs: self.procs,
            ..Annotation::NONE
        };
        if let Some(cols) = &mut self.cols {
            let (t, ends) = &mut self.cells;
            t.clear();
            ends.clear();
            push_cells(r, self.wants, &a, t, ends);
            cols.measure(t, 0, ends);
            cols.row(&mut self.buf, t, 0, ends);
        } else {
            self.buf
                .extend_from_slice(if self.written == 0 { b"\n" } else { b",\n" });
            self.written += 1;
            serde_json::to_writer(&mut self.buf, &row_json(r, self.wants, &a))?;
        }
        if self.buf.len() >= CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
            self.out.flush()?;
        }
        Ok(())
    }

    fn take(&mut self, r: Row) -> Flow {
        if self.failed.is_some() || self.taken >= self.limit {
            return Flow::Break(());
        }
        self.taken += 1;
        if !matches!(r.socket.state, TcpState::TimeWait | TcpState::SynRecv) {
            self.eligible += 1;
            self.given += u64::from(r.extras.is_some());
        }
        let wrote = if self.streaming {
            self.write(&r)
        } else if self.held.len() < self.hold {
            self.held.push(r);
            Ok(())
        } else {
            self.begin().and_then(|()| self.write(&r))
        };
        if let Err(e) = wrote {
            self.failed = Some(e);
        }
        if self.failed.is_none() && self.taken < self.limit {
            Flow::Continue(())
        } else {
            Flow::Break(())
        }
    }
}

impl Consumer for ExtrasStream<'_> {
    fn push(&mut self, s: &Socket) -> Flow {
        self.take(Row {
            socket: *s,
            extras: None,
        })
    }

    fn push_extras(&mut self, s: &Socket, extras: &Extras) -> Flow {
        self.take(Row {
            socket: *s,
            extras: (!extras.is_empty()).then(|| Box::new(extras.clone())),
        })
    }

    fn restart(&mut self) {
        if self.streaming {
            if self.failed.is_none() {
                self.failed = Some(super::listing::changed_after_writing());
            }
            return;
        }
        self.held.clear();
        self.taken = 0;
        (self.eligible, self.given) = (0, 0);
    }

    fn namespaces(&mut self, labels: &[String]) {
        self.namespaces = labels.to_vec();
    }

    fn wants(&self) -> Wants {
        self.wants
    }
}

/// `rtt/rttvar` in milliseconds, as ss prints them (`0.031/0.015`).
pub fn rtt_text(i: &TcpInfo) -> String {
    match (i.rtt_us(), i.rttvar_us()) {
        (Some(r), Some(v)) => format!("{}/{}", f64::from(r) / 1000.0, f64::from(v) / 1000.0),
        _ => "-".to_string(),
    }
}

/// Bytes per second as bits per second, as `ss -n` writes them (sprint_bw
/// with numeric output): whole bits, `bps`, one token.
pub fn rate_text(bytes_per_sec: u64) -> String {
    format!("{}bps", bytes_per_sec.saturating_mul(8))
}

/// ss's `skmem:(...)` inside: `r0,rb131072,t0,tb2626560,f0,w0,o0,bl0,d0`.
pub fn skmem_text(m: &SkMem) -> String {
    let mut t = String::new();
    for (i, v) in m.sent().iter().enumerate() {
        if i > 0 {
            t.push(',');
        }
        t.push_str(SKMEM_NAMES[i]);
        t.push_str(&v.to_string());
    }
    t
}

/// Cell widths in characters (bytes for ASCII, which nearly all are).
fn width(c: &[u8]) -> usize {
    if c.is_ascii() {
        c.len()
    } else {
        String::from_utf8_lossy(c).chars().count()
    }
}

/// Plain columns: as wide as the widest cell measured so far (widths only
/// grow), numbers right-aligned, the last column unpadded.
struct Columns {
    headers: Vec<(&'static str, bool)>,
    widths: Vec<usize>,
}

impl Columns {
    fn new(headers: Vec<(&'static str, bool)>) -> Columns {
        let widths = headers.iter().map(|(h, _)| h.len()).collect();
        Columns { headers, widths }
    }

    /// Widens the columns to one row's cells: `t[start..]` split at `ends`.
    fn measure(&mut self, t: &[u8], start: usize, ends: &[usize]) {
        let mut start = start;
        for (w, &e) in self.widths.iter_mut().zip(ends) {
            *w = (*w).max(width(&t[start..e]));
            start = e;
        }
    }

    fn line(&self, out: &mut Vec<u8>, cells: &mut dyn Iterator<Item = &[u8]>) {
        let n = self.headers.len();
        for (i, c) in cells.enumerate() {
            if i > 0 {
                out.extend_from_slice(b"  ");
            }
            let pad = self.widths[i].saturating_sub(width(c));
            if self.headers[i].1 {
                out.resize(out.len() + pad, b' ');
                out.extend_from_slice(c);
            } else {
                out.extend_from_slice(c);
                if i + 1 != n {
                    out.resize(out.len() + pad, b' ');
                }
            }
        }
        out.push(b'\n');
    }

    fn head(&self, out: &mut Vec<u8>) {
        let names: Vec<&[u8]> = self.headers.iter().map(|(h, _)| h.as_bytes()).collect();
        self.line(out, &mut names.into_iter());
    }

    /// One row's line from its cells: `t[start..]` split at `ends`.
    fn row(&self, out: &mut Vec<u8>, t: &[u8], start: usize, ends: &[usize]) {
        let mut start = start;
        let mut cells = ends.iter().map(|&e| {
            let c = &t[start..e];
            start = e;
            c
        });
        self.line(out, &mut cells);
    }
}

fn plain(rows: &[Row], wants: Wants, a: &Annotation, out: &mut dyn Write) -> io::Result<()> {
    let mut cols = Columns::new(headers(wants, a));
    let n = cols.headers.len();
    let (mut t, mut ends) = (Vec::new(), Vec::with_capacity(rows.len() * n));
    for r in rows {
        push_cells(r, wants, a, &mut t, &mut ends);
    }
    let mut start = 0;
    for chunk in ends.chunks(n) {
        cols.measure(&t, start, chunk);
        start = *chunk.last().unwrap_or(&start);
    }
    let mut line = Vec::with_capacity(64 * 1024);
    cols.head(&mut line);
    let mut start = 0;
    for chunk in ends.chunks(n) {
        cols.row(&mut line, &t, start, chunk);
        start = *chunk.last().unwrap_or(&start);
        if line.len() >= 60 * 1024 {
            out.write_all(&line)?;
            line.clear();
        }
    }
    out.write_all(&line)
}

fn table(
    rows: &[Row],
    wants: Wants,
    a: &Annotation,
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    let headers = headers(wants, a);
    let names: Vec<&str> = headers.iter().map(|(h, _)| *h).collect();
    let all: Vec<Vec<String>> = rows.iter().map(|r| cells(r, wants, a)).collect();
    // Columns that fit the terminal; cells are never wrapped.
    let shown = fit::keep(&names, &all, style.width);
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(fit::pick(&names, &shown).into_iter().map(Cell::new));
    if !style.color {
        t.force_no_tty();
    }
    let numeric = fit::pick(&headers, &shown);
    for row in all {
        t.add_row(
            fit::pick(&row, &shown)
                .into_iter()
                .zip(&numeric)
                .map(|(c, (_, num))| {
                    let c = Cell::new(c);
                    if *num {
                        c.set_alignment(CellAlignment::Right)
                    } else {
                        c
                    }
                }),
        );
    }
    writeln!(out, "{t}")
}

/// One `tw ls -i` / `-m` row: the listing's row (`tw schema ls`) plus
/// congestion control, tcp_info and socket memory.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct RowJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    netns: Option<&'a str>,
    /// In every row, so each stands on its own.
    schema_version: SchemaVersion,
    /// netstat's spelling.
    #[schemars(extend("enum" = ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
        "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"]))]
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
    /// Always `tcp`: tcp_info and skmem are read for TCP only.
    #[schemars(extend("const" = "tcp"))]
    protocol: &'static str,
    /// With `-i`: the congestion control's name, null when none was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    congestion: Option<Option<String>>,
    /// With `-i`: null for sockets without it (TIME_WAIT, request sockets,
    /// /proc, captures).
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_info: Option<Option<InfoJson>>,
    /// With `-m`: null as tcp_info is.
    #[serde(skip_serializing_if = "Option::is_none")]
    skmem: Option<Option<SkMemJson>>,
    /// With `-p`: the owners as `command(pid),...`.
    #[serde(skip_serializing_if = "Option::is_none")]
    processes: Option<String>,
}

/// The timer as in every other listing's JSON.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct TimerJson {
    #[schemars(extend("enum" = ["retransmit", "keepalive", "timewait", "probe0"]))]
    kind: &'static str,
    ms: u32,
}

/// `struct sk_meminfo`'s values (include/uapi/linux/sock_diag.h, SK_MEMINFO_*),
/// in bytes; a key beyond what an older kernel sent is absent.
#[derive(Serialize, JsonSchema, Default)]
#[schemars(deny_unknown_fields)]
struct SkMemJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    rmem_alloc: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rcvbuf: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wmem_alloc: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sndbuf: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fwd_alloc: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wmem_queued: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    optmem: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backlog: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drops: Option<u32>,
}

fn skmem_json(m: &SkMem) -> SkMemJson {
    let v = |i: usize| m.sent().get(i).copied();
    SkMemJson {
        rmem_alloc: v(0),
        rcvbuf: v(1),
        wmem_alloc: v(2),
        sndbuf: v(3),
        fwd_alloc: v(4),
        wmem_queued: v(5),
        optmem: v(6),
        backlog: v(7),
        drops: v(8),
    }
}

/// tcp_info in JSON: times in milliseconds (fractions kept), rates in bits
/// per second, counts and bytes as the kernel gives them; `null` for a field
/// the kernel's struct does not reach.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct InfoJson {
    rtt_ms: Option<f64>,
    rttvar_ms: Option<f64>,
    min_rtt_ms: Option<f64>,
    rto_ms: Option<f64>,
    mss: Option<u32>,
    cwnd: Option<u32>,
    /// `null` while still "infinite" (no loss yet).
    ssthresh: Option<u32>,
    retrans: Option<u32>,
    total_retrans: Option<u32>,
    lost: Option<u32>,
    unacked: Option<u32>,
    bytes_sent: Option<u64>,
    bytes_acked: Option<u64>,
    bytes_received: Option<u64>,
    bytes_retrans: Option<u64>,
    segs_out: Option<u32>,
    segs_in: Option<u32>,
    delivery_rate_bps: Option<u64>,
    /// `null` when unlimited.
    pacing_rate_bps: Option<u64>,
    busy_ms: Option<f64>,
    rwnd_limited_ms: Option<f64>,
    sndbuf_limited_ms: Option<f64>,
}

fn info_json(i: &TcpInfo) -> InfoJson {
    let ms = |us: Option<u32>| us.map(|v| f64::from(v) / 1000.0);
    let ms64 = |us: Option<u64>| us.map(|v| v as f64 / 1000.0);
    InfoJson {
        rtt_ms: ms(i.rtt_us()),
        rttvar_ms: ms(i.rttvar_us()),
        min_rtt_ms: ms(i.min_rtt_us()),
        rto_ms: ms(i.rto_us()),
        mss: i.mss(),
        cwnd: i.cwnd(),
        ssthresh: i.ssthresh().filter(|t| *t < 0xffff),
        retrans: i.retrans(),
        total_retrans: i.total_retrans(),
        lost: i.lost(),
        unacked: i.unacked(),
        bytes_sent: i.bytes_sent(),
        bytes_acked: i.bytes_acked(),
        bytes_received: i.bytes_received(),
        bytes_retrans: i.bytes_retrans(),
        segs_out: i.segs_out(),
        segs_in: i.segs_in(),
        delivery_rate_bps: i.delivery_rate().map(|r| r.saturating_mul(8)),
        pacing_rate_bps: i
            .pacing_rate()
            .filter(|r| *r != u64::MAX)
            .map(|r| r.saturating_mul(8)),
        busy_ms: ms64(i.busy_us()),
        rwnd_limited_ms: ms64(i.rwnd_limited_us()),
        sndbuf_limited_ms: ms64(i.sndbuf_limited_us()),
    }
}

/// One row's JSON object.
fn row_json<'a>(r: &Row, wants: Wants, a: &'a Annotation) -> RowJson<'a> {
    let s = &r.socket;
    let x = r.extras.as_deref();
    RowJson {
        netns: a.netns(s),
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
        congestion: wants
            .info
            .then(|| x.and_then(|x| x.cong).map(|c| c.as_str().to_string())),
        tcp_info: wants
            .info
            .then(|| x.and_then(|x| x.info.as_ref()).map(info_json)),
        skmem: wants
            .memory
            .then(|| x.and_then(|x| x.memory.as_ref()).map(skmem_json)),
        processes: a.procs.map(|p| p.label(s.inode)),
    }
}

/// An array, an object a line, as `tw ls` writes it.
fn json(rows: &[Row], wants: Wants, a: &Annotation, out: &mut dyn Write) -> io::Result<()> {
    let mut buf = Vec::with_capacity(CHUNK + 1024);
    buf.push(b'[');
    for (i, r) in rows.iter().enumerate() {
        buf.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        serde_json::to_writer(&mut buf, &row_json(r, wants, a))?;
        if buf.len() >= CHUNK {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    buf.extend_from_slice(b"\n]\n");
    out.write_all(&buf)
}

/// The JSON Schema of `tw ls -i` / `-m --format json`: an array of rows.
pub fn schema() -> schemars::Schema {
    let mut s = schemars::schema_for!(Vec<RowJson<'static>>);
    s.insert("title".into(), "tw ls -i / -m --format json".into());
    s
}

/// The JSON Schema of `tw count --by KEY --stats --format json`.
pub fn stats_schema() -> schemars::Schema {
    let mut s = schemars::schema_for!(StatsDoc<'static>);
    s.insert(
        "title".into(),
        "tw count --by KEY --stats --format json".into(),
    );
    s
}

/// `tw count --by KEY --stats`: one line per group.
pub fn render_stats(
    format: Format,
    by: &str,
    groups: &[(String, Stats)],
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    let ms = |us: u32| format!("{}", f64::from(us) / 1000.0);
    let headers = [
        by.to_uppercase(),
        "CONNS".into(),
        "RTT-P50".into(),
        "RTT-P95".into(),
        "RTT-MAX".into(),
        "RETRANS".into(),
        "SENT".into(),
        "RECEIVED".into(),
    ];
    let rows: Vec<[String; 8]> = groups
        .iter()
        .map(|(k, s)| {
            [
                k.clone(),
                s.connections.to_string(),
                ms(s.rtt_p50_us),
                ms(s.rtt_p95_us),
                ms(s.rtt_max_us),
                format!("{:.2}%", s.retrans_rate() * 100.0),
                s.bytes_sent.to_string(),
                s.bytes_received.to_string(),
            ]
        })
        .collect();
    match format {
        // One line per group, TAB-separated as `count --by` is, with a header.
        Format::Plain => {
            let mut text = String::new();
            for r in std::iter::once(&headers).chain(&rows) {
                text.push_str(&r.join("\t"));
                text.push('\n');
            }
            out.write_all(text.as_bytes())
        }
        Format::Table => {
            let mut t = Table::new();
            t.load_style(presets::UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Disabled)
                .set_header(headers.iter().map(Cell::new));
            if !style.color {
                t.force_no_tty();
            }
            for r in &rows {
                t.add_row(r.iter().enumerate().map(|(i, c)| {
                    let c = Cell::new(c);
                    if i > 0 {
                        c.set_alignment(CellAlignment::Right)
                    } else {
                        c
                    }
                }));
            }
            writeln!(out, "{t}")
        }
        Format::Json => {
            let v: Vec<StatsJson> = groups
                .iter()
                .map(|(k, s)| StatsJson {
                    key: k,
                    connections: s.connections,
                    rtt_p50_ms: f64::from(s.rtt_p50_us) / 1000.0,
                    rtt_p95_ms: f64::from(s.rtt_p95_us) / 1000.0,
                    rtt_max_ms: f64::from(s.rtt_max_us) / 1000.0,
                    total_retrans: s.total_retrans,
                    segs_out: s.segs_out,
                    retrans_rate: s.retrans_rate(),
                    bytes_sent: s.bytes_sent,
                    bytes_received: s.bytes_received,
                })
                .collect();
            let doc = StatsDoc {
                schema_version: SchemaVersion,
                by,
                groups: v,
            };
            serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
            writeln!(out)
        }
    }
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct StatsDoc<'a> {
    schema_version: SchemaVersion,
    /// The grouping key: raddr, dest or lport.
    by: &'a str,
    groups: Vec<StatsJson<'a>>,
}

/// One group's health over its connections' tcp_info.
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct StatsJson<'a> {
    key: &'a str,
    connections: u64,
    rtt_p50_ms: f64,
    rtt_p95_ms: f64,
    rtt_max_ms: f64,
    total_retrans: u64,
    segs_out: u64,
    /// total_retrans / segs_out.
    retrans_rate: f64,
    bytes_sent: u64,
    bytes_received: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_written_as_ss_writes_them() {
        assert_eq!(rate_text(0), "0bps");
        assert_eq!(rate_text(100), "800bps");
        assert_eq!(rate_text(406_828_290), "3254626320bps");
        assert_eq!(rate_text(u64::MAX), format!("{}bps", u64::MAX));
    }

    #[test]
    fn skmem_text_is_one_token_of_what_was_sent() {
        let m = SkMem {
            vars: [0, 131072, 0, 2626560, 0, 0, 0, 0, 0],
            len: 9,
        };
        assert_eq!(skmem_text(&m), "r0,rb131072,t0,tb2626560,f0,w0,o0,bl0,d0");
        let short = SkMem { len: 2, ..m };
        assert_eq!(skmem_text(&short), "r0,rb131072");
    }

    fn rows(n: u16) -> Vec<Row> {
        use crate::model::{Endpoint, Family};
        (0..n)
            .map(|i| {
                let state = [TcpState::Established, TcpState::TimeWait][usize::from(i % 2)];
                let peer = if i % 5 == 4 {
                    "fec0::1:2:3"
                } else {
                    "127.0.0.2"
                };
                let family = if i % 5 == 4 {
                    Family::Inet6
                } else {
                    Family::Inet
                };
                let local = if i % 5 == 4 { "fec0::9" } else { "127.0.0.1" };
                let socket = Socket::new(
                    family,
                    state,
                    Endpoint::new(local.parse().unwrap(), 1000 + i),
                    Endpoint::new(peer.parse().unwrap(), 80),
                );
                let mut info = [0u8; 232];
                info[68..72].copy_from_slice(&(u32::from(i) * 1000).to_ne_bytes());
                let extras = (state == TcpState::Established).then(|| {
                    Box::new(Extras {
                        info: Some(TcpInfo::from_bytes(&info)),
                        memory: Some(SkMem::from_bytes(&[7u8; 36])),
                        cong: crate::model::internals::Cong::from_bytes(b"cubic\0"),
                    })
                });
                Row { socket, extras }
            })
            .collect()
    }

    fn held(format: Format, rows: &[Row], wants: Wants) -> String {
        let mut out = Vec::new();
        let style = Style {
            color: false,
            width: None,
        };
        render(format, rows, wants, &Annotation::NONE, &mut out, &style).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn streamed(format: Format, rows: &[Row], wants: Wants, hold: usize) -> String {
        let mut out = Vec::new();
        let mut s = ExtrasStream::new(format, wants, &mut out, None, None).holding(hold);
        for r in rows {
            let flow = match &r.extras {
                Some(x) => s.push_extras(&r.socket, x),
                None => s.push(&r.socket),
            };
            assert!(flow.is_continue());
        }
        assert!(!s.none_given());
        s.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_streamed_internals_listing_is_the_held_one() {
        let all = rows(60);
        let fields = |t: &str| -> Vec<Vec<String>> {
            t.lines()
                .map(|l| l.split_whitespace().map(str::to_string).collect())
                .collect()
        };
        for wants in [
            Wants {
                info: true,
                memory: false,
            },
            Wants {
                info: true,
                memory: true,
            },
        ] {
            for format in [Format::Plain, Format::Json] {
                for n in [0, 1, 9, 60] {
                    let want = held(format, &all[..n], wants);
                    // Every row held: byte for byte.
                    assert_eq!(streamed(format, &all[..n], wants, n.max(1)), want);
                    assert_eq!(streamed(format, &all[..n], wants, HOLD), want);
                    // Fewer held: the same fields (plain widths only grow).
                    let got = streamed(format, &all[..n], wants, 2);
                    assert_eq!(fields(&got), fields(&want), "{format:?} {n}");
                    if format == Format::Json {
                        assert_eq!(got, want);
                    }
                }
            }
        }
        let json = held(
            Format::Json,
            &all[..3],
            Wants {
                info: true,
                memory: true,
            },
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 3);
        assert!(v[0]["tcp_info"].is_object() && v[1]["tcp_info"].is_null());
    }

    #[test]
    fn a_stream_stops_at_its_limit_and_refuses_a_restart_once_written() {
        let all = rows(10);
        let wants = Wants {
            info: true,
            memory: false,
        };
        let mut out = Vec::new();
        let mut s = ExtrasStream::new(Format::Plain, wants, &mut out, None, Some(3));
        let flows: Vec<bool> = all.iter().map(|r| s.push(&r.socket).is_break()).collect();
        assert_eq!(&flows[..3], [false, false, true]);
        assert!(s.none_given(), "no extras came");
        s.finish().unwrap();
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 4);
        let mut out = Vec::new();
        let mut s = ExtrasStream::new(Format::Json, wants, &mut out, None, None).holding(1);
        for r in &all[..3] {
            let _ = s.push(&r.socket);
        }
        s.restart();
        assert!(s.push(&all[0].socket).is_break());
        assert!(s.finish().unwrap_err().to_string().contains("--sort"));
    }

    #[test]
    fn skmem_json_keys_are_the_models_in_order() {
        let m = SkMem {
            vars: [1, 2, 3, 4, 5, 6, 7, 8, 9],
            len: 9,
        };
        let v = serde_json::to_value(skmem_json(&m)).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut want = crate::model::internals::SKMEM_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want);
        for (i, k) in crate::model::internals::SKMEM_KEYS.iter().enumerate() {
            assert_eq!(v[k], i + 1, "{k}");
        }
        let short = serde_json::to_value(skmem_json(&SkMem { len: 2, ..m })).unwrap();
        assert_eq!(short, serde_json::json!({"rmem_alloc": 1, "rcvbuf": 2}));
    }
}
