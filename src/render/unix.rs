//! `tw -x`: UNIX sockets in table, plain and JSON, with ss's Netid and
//! state names.

use std::io::{self, Write};

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use schemars::JsonSchema;
use serde::Serialize;

use super::cells::{printable, socket_row, Annotation};
use super::listing::{CHUNK, HOLD};
use super::{fit, json, Format, Style};
use crate::model::schema::SchemaVersion;
use crate::model::unix::UnixSocket;
use crate::model::Flow;
use crate::model::Socket;
use crate::source::owners::Procs;

const HEADERS: [&str; 8] = [
    "NETID", "STATE", "RECV-Q", "SEND-Q", "PATH", "INODE", "PEER", "PROCESS",
];

fn opt(v: Option<u32>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn cells(s: &UnixSocket, procs: Option<&Procs>) -> Vec<String> {
    let mut c = vec![
        s.kind.name().to_string(),
        s.state_name().to_string(),
        opt(s.recv_q),
        opt(s.send_q),
        s.path.clone().unwrap_or_else(|| "*".to_string()),
        s.inode.to_string(),
        if s.peer == 0 {
            "*".to_string()
        } else {
            s.peer.to_string()
        },
    ];
    if let Some(p) = procs {
        // Command names are anyone's to choose (prctl(PR_SET_NAME)).
        c.push(printable(&p.label(s.inode)).into_owned());
    }
    c
}

/// A UNIX listing held whole, then written.
pub fn render(
    format: Format,
    socks: &[UnixSocket],
    procs: Option<&Procs>,
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    let mut l = UnixListing::new(format, out, procs, None, *style);
    l.hold = usize::MAX;
    for s in socks {
        let _ = l.push(s);
    }
    l.finish()
}

/// A UNIX listing written as the reader delivers it, none of it held past
/// the first [`HOLD`] rows (which size the plain columns; a wider cell
/// later widens its column from its line on), so memory stays flat at any
/// number of sockets. A table is sized on every row and holds them all.
pub struct UnixListing<'a> {
    format: Format,
    out: &'a mut dyn Write,
    procs: Option<&'a Procs>,
    style: Style,
    held: Vec<UnixSocket>,
    hold: usize,
    limit: usize,
    taken: usize,
    streaming: bool,
    buf: Vec<u8>,
    failed: Option<io::Error>,
    widths: Vec<usize>,
    written: usize,
}

impl<'a> UnixListing<'a> {
    pub fn new(
        format: Format,
        out: &'a mut dyn Write,
        procs: Option<&'a Procs>,
        limit: Option<usize>,
        style: Style,
    ) -> UnixListing<'a> {
        UnixListing {
            format,
            out,
            procs,
            style,
            held: Vec::new(),
            hold: if format == Format::Table {
                usize::MAX
            } else {
                HOLD
            },
            limit: limit.unwrap_or(usize::MAX),
            taken: 0,
            streaming: false,
            buf: Vec::with_capacity(CHUNK + 1024),
            failed: None,
            widths: Vec::new(),
            written: 0,
        }
    }

    /// The same with another number of rows held, for tests.
    #[cfg(test)]
    fn holding(mut self, n: usize) -> Self {
        self.hold = n;
        self
    }

    fn headers(&self) -> &'static [&'static str] {
        &HEADERS[..if self.procs.is_some() { 8 } else { 7 }]
    }

    /// Takes one socket; `Break` once the limit is reached or a write failed.
    pub fn push(&mut self, s: &UnixSocket) -> Flow {
        if self.failed.is_some() || self.taken >= self.limit {
            return Flow::Break(());
        }
        self.taken += 1;
        let wrote = if self.streaming {
            self.write(s)
        } else if self.held.len() < self.hold {
            self.held.push(s.clone());
            Ok(())
        } else {
            self.begin().and_then(|()| self.write(s))
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

    /// What stopped the listing while the read went on, if anything did.
    pub fn check(&mut self) -> io::Result<()> {
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Ends the listing once the read is whole.
    pub fn finish(mut self) -> io::Result<()> {
        self.check()?;
        if self.format == Format::Table {
            return table(&self.held, self.procs, self.out, &self.style);
        }
        if !self.streaming {
            self.begin()?;
        }
        if self.format == Format::Json {
            self.buf.extend_from_slice(b"\n]\n");
        }
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }

    /// The head and the held rows, the plain columns sized on them.
    fn begin(&mut self) -> io::Result<()> {
        self.streaming = true;
        let held = std::mem::take(&mut self.held);
        if self.format == Format::Json {
            self.buf.push(b'[');
        } else {
            let headers = self.headers();
            self.widths = headers.iter().map(|h| h.len()).collect();
            for s in &held {
                for (w, c) in self.widths.iter_mut().zip(cells(s, self.procs)) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let head: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
            line(&mut self.buf, &head, &self.widths);
        }
        for s in &held {
            self.write(s)?;
        }
        Ok(())
    }

    fn write(&mut self, s: &UnixSocket) -> io::Result<()> {
        if self.format == Format::Json {
            self.buf
                .extend_from_slice(if self.written == 0 { b"\n" } else { b",\n" });
            self.written += 1;
            serde_json::to_writer(&mut self.buf, &json_row(s, self.procs))?;
        } else {
            let c = cells(s, self.procs);
            for (w, c) in self.widths.iter_mut().zip(&c) {
                *w = (*w).max(c.chars().count());
            }
            line(&mut self.buf, &c, &self.widths);
        }
        if self.buf.len() >= CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
            self.out.flush()?;
        }
        Ok(())
    }
}

/// One plain line: cells padded to `widths`, two spaces apart, the last
/// unpadded.
fn line(buf: &mut Vec<u8>, cells: &[String], widths: &[usize]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            buf.extend_from_slice(b"  ");
        }
        buf.extend_from_slice(c.as_bytes());
        if i + 1 < cells.len() {
            let pad = widths[i].saturating_sub(c.chars().count());
            buf.resize(buf.len() + pad, b' ');
        }
    }
    buf.push(b'\n');
}

fn table(
    socks: &[UnixSocket],
    procs: Option<&Procs>,
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    let headers = &HEADERS[..if procs.is_some() { 8 } else { 7 }];
    let rows: Vec<Vec<String>> = socks.iter().map(|s| cells(s, procs)).collect();
    let shown = fit::keep(headers, &rows, style.width);
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(fit::pick(headers, &shown).into_iter().map(Cell::new));
    if !style.color {
        t.force_no_tty();
    }
    for r in &rows {
        t.add_row(fit::pick(r, &shown).into_iter().map(Cell::new));
    }
    writeln!(out, "{t}")
}

/// One UNIX socket in JSON; `null` where the source had nothing (/proc
/// has no queues or peers) or there is nothing (an unbound socket's path).
#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub(super) struct UnixJson<'a> {
    /// In every row, so each stands on its own.
    schema_version: SchemaVersion,
    #[schemars(extend("const" = "unix"))]
    protocol: &'static str,
    /// ss's Netid: SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET.
    #[schemars(extend("enum" = ["u_str", "u_dgr", "u_seq", "u_???"]))]
    r#type: &'static str,
    /// ss's spelling; UNCONN: not connected.
    #[schemars(extend("enum" = ["LISTEN", "ESTABLISHED", "UNCONN", "SYN_SENT", "SYN_RECV",
        "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE_WAIT", "LAST_ACK", "CLOSING"]))]
    state: &'static str,
    /// null from /proc/net/unix, which has no queues.
    recv_q: Option<u32>,
    send_q: Option<u32>,
    /// The bound path, `@name` in the abstract namespace, null unbound.
    path: Option<&'a str>,
    inode: u64,
    /// The peer's inode; null when none or unknown (/proc).
    peer: Option<u64>,
    /// With `-p`: the owners as `command(pid),...`.
    #[serde(skip_serializing_if = "Option::is_none")]
    processes: Option<String>,
}

fn json_row<'a>(s: &'a UnixSocket, procs: Option<&Procs>) -> UnixJson<'a> {
    UnixJson {
        schema_version: SchemaVersion,
        protocol: "unix",
        r#type: s.kind.name(),
        state: s.state_name(),
        recv_q: s.recv_q,
        send_q: s.send_q,
        path: s.path.as_deref(),
        inode: s.inode,
        peer: (s.peer != 0).then_some(s.peer),
        processes: procs.map(|p| p.label(s.inode)),
    }
}

/// Columns of a listing of several protocols (`tw -tuxan`): ss's Netid,
/// then a TCP listing's columns; a UNIX socket's LOCAL is its path, its
/// PEER the peer's inode (as ss's Peer column), and it has no timer or uid.
const MIXED_HEADERS: [&str; 10] = [
    "NETID", "STATE", "LOCAL", "PEER", "TIMER", "RECV-Q", "SEND-Q", "UID", "INODE", "PROCESS",
];
const MIXED_NUMERIC: [bool; 10] = [
    false, false, false, false, false, true, true, true, true, false,
];

fn mixed_unix_cells(s: &UnixSocket, procs: Option<&Procs>) -> Vec<String> {
    let mut c = vec![
        s.kind.name().to_string(),
        s.state_name().to_string(),
        s.path.clone().unwrap_or_else(|| "*".to_string()),
        if s.peer == 0 {
            "*".to_string()
        } else {
            s.peer.to_string()
        },
        "-".to_string(),
        opt(s.recv_q),
        opt(s.send_q),
        "-".to_string(),
        s.inode.to_string(),
    ];
    if let Some(p) = procs {
        c.push(printable(&p.label(s.inode)).into_owned());
    }
    c
}

fn mixed_inet_cells(s: &Socket, procs: Option<&Procs>) -> Vec<String> {
    let mut c = vec![s.proto.name().to_string()];
    c.extend(socket_row(s));
    if let Some(p) = procs {
        c.push(printable(&p.label(s.inode)).into_owned());
    }
    c
}

/// `tw -tuxan`: UNIX sockets, then TCP and UDP ones, in one listing.
pub fn render_mixed(
    format: Format,
    unix: &[UnixSocket],
    inet: &[Socket],
    procs: Option<&Procs>,
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    if format == Format::Json {
        let a = Annotation {
            procs,
            ..Annotation::NONE
        };
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.push(b'[');
        for (i, s) in unix.iter().enumerate() {
            buf.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            serde_json::to_writer(&mut buf, &json_row(s, procs)).map_err(io::Error::other)?;
        }
        for (i, s) in inet.iter().enumerate() {
            let first = i == 0 && unix.is_empty();
            buf.extend_from_slice(if first { b"\n" } else { b",\n" });
            json::socket_object(s, &a, &mut buf)?;
        }
        buf.extend_from_slice(b"\n]\n");
        return out.write_all(&buf);
    }
    let n = if procs.is_some() { 10 } else { 9 };
    let headers = &MIXED_HEADERS[..n];
    let rows: Vec<Vec<String>> = unix
        .iter()
        .map(|s| mixed_unix_cells(s, procs))
        .chain(inet.iter().map(|s| mixed_inet_cells(s, procs)))
        .collect();
    match format {
        Format::Plain => {
            let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let mut text = String::new();
            let head: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
            for r in std::iter::once(&head).chain(&rows) {
                for (i, c) in r.iter().enumerate() {
                    if i > 0 {
                        text.push_str("  ");
                    }
                    let pad = widths[i] - c.chars().count();
                    if MIXED_NUMERIC[i] {
                        text.extend(std::iter::repeat_n(' ', pad));
                        text.push_str(c);
                    } else {
                        text.push_str(c);
                        if i + 1 < r.len() {
                            text.extend(std::iter::repeat_n(' ', pad));
                        }
                    }
                }
                text.push('\n');
            }
            out.write_all(text.as_bytes())
        }
        _ => {
            let shown = fit::keep(headers, &rows, style.width);
            let mut t = Table::new();
            t.load_style(presets::UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Disabled)
                .set_header(fit::pick(headers, &shown).into_iter().map(Cell::new));
            if !style.color {
                t.force_no_tty();
            }
            let numeric = fit::pick(&MIXED_NUMERIC[..n], &shown);
            for r in &rows {
                t.add_row(
                    fit::pick(r, &shown)
                        .into_iter()
                        .zip(&numeric)
                        .map(|(c, num)| {
                            if *num {
                                Cell::new(c).set_alignment(CellAlignment::Right)
                            } else {
                                Cell::new(c)
                            }
                        }),
                );
            }
            writeln!(out, "{t}")
        }
    }
}

/// The JSON Schema of `tw ls -x --format json`: an array of rows.
pub fn schema() -> schemars::Schema {
    let mut s = schemars::schema_for!(Vec<UnixJson<'static>>);
    s.insert("title".into(), "tw ls -x --format json".into());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::unix::UnixKind;
    use crate::model::TcpState;

    fn socks(n: u64) -> Vec<UnixSocket> {
        (0..n)
            .map(|i| UnixSocket {
                kind: [UnixKind::Stream, UnixKind::Dgram][(i % 2) as usize],
                state: [TcpState::Established, TcpState::Listen][(i % 2) as usize],
                inode: 1000 + i * 997,
                peer: if i % 3 == 0 { 0 } else { 2000 + i },
                path: (i % 4 != 0).then(|| format!("/run/{}.sock", "x".repeat(i as usize % 9))),
                recv_q: Some(i as u32),
                send_q: None,
            })
            .collect()
    }

    fn streamed(format: Format, s: &[UnixSocket], hold: usize, limit: Option<usize>) -> String {
        let mut out = Vec::new();
        let mut l = UnixListing::new(format, &mut out, None, limit, Style::default()).holding(hold);
        for x in s {
            if l.push(x).is_break() {
                break;
            }
        }
        l.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    fn held(format: Format, s: &[UnixSocket]) -> String {
        let mut out = Vec::new();
        render(format, s, None, &mut out, &Style::default()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_streamed_unix_listing_is_the_held_one() {
        let all = socks(50);
        let fields = |t: &str| -> Vec<String> {
            t.lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect()
        };
        for format in [Format::Plain, Format::Json] {
            for n in [0, 1, 7, 50] {
                let want = held(format, &all[..n]);
                assert_eq!(streamed(format, &all[..n], HOLD, None), want);
                let got = streamed(format, &all[..n], 2, None);
                assert_eq!(fields(&got), fields(&want), "{format:?} {n}");
            }
        }
        assert_eq!(
            held(Format::Plain, &[]),
            "NETID  STATE  RECV-Q  SEND-Q  PATH  INODE  PEER\n"
        );
        assert_eq!(held(Format::Json, &[]), "[\n]\n");
        let v: serde_json::Value = serde_json::from_str(&held(Format::Json, &all[..4])).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 4);
        assert_eq!(v[1]["path"], "/run/x.sock");
        assert!(v[0]["path"].is_null() && v[0]["peer"].is_null() && v[0]["send_q"].is_null());
        // A limit ends the read.
        assert_eq!(streamed(Format::Plain, &all, 1, Some(5)).lines().count(), 6);
    }
}
