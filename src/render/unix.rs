//! `tw -x`: UNIX sockets in table, plain and JSON, with ss's Netid and
//! state names.

use std::io::{self, Write};

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use schemars::JsonSchema;
use serde::Serialize;

use super::cells::{printable, socket_row, Annotation};
use super::{fit, json, Format, Style};
use crate::model::schema::SchemaVersion;
use crate::model::unix::UnixSocket;
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
        c.push(p.label(s.inode));
    }
    c
}

pub fn render(
    format: Format,
    socks: &[UnixSocket],
    procs: Option<&Procs>,
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    let n = if procs.is_some() { 8 } else { 7 };
    let headers = &HEADERS[..n];
    let rows: Vec<Vec<String>> = socks.iter().map(|s| cells(s, procs)).collect();
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
                    text.push_str(c);
                    if i + 1 < r.len() {
                        text.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count()));
                    }
                }
                text.push('\n');
            }
            out.write_all(text.as_bytes())
        }
        Format::Table => {
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
        Format::Json => {
            let v: Vec<UnixJson> = socks.iter().map(|s| json_row(s, procs)).collect();
            serde_json::to_writer_pretty(&mut *out, &v).map_err(io::Error::other)?;
            writeln!(out)
        }
    }
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
