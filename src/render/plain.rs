//! Plain text: aligned columns, no borders, no colour; stable for scripts.
//! `count --by` prints `KEY<TAB>COUNT` lines and nothing else.

use std::io::{self, Write};

use super::cells::{Annotation, SocketCells, SOCKET_HEADERS};
use super::doctor::write_doctor;
use super::listing::{write_held, Rows};
use super::report::Report;
use super::sections::{self, ports_section, summary_sections, Section};
use crate::model::Socket;

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    match report {
        Report::Count(n) => writeln!(out, "{n}"),
        Report::Groups { groups, .. } => {
            for (k, n) in groups.iter() {
                writeln!(out, "{k}\t{n}")?;
            }
            Ok(())
        }
        Report::Sockets(socks) => {
            write_held(&mut ListingRows::default(), socks, &Annotation::NONE, out)
        }
        Report::Annotated { socks, notes } => {
            write_held(&mut ListingRows::default(), socks, notes, out)
        }
        Report::Summary(sum) => write_sections(out, &summary_sections(sum)),
        Report::Ports {
            rows,
            destinations,
            capacity,
            low,
        } => write_sections(out, &[ports_section(rows, *destinations, capacity, *low)]),
        Report::Doctor { findings, verbose } => {
            write_doctor(out, findings, *verbose, &|s| s.name().to_uppercase())
        }
    }
}

/// Columns of a listing: NETNS (several namespaces), NETID (several
/// protocols), the socket's, PROCESS (`-p`).
const LISTING_HEADERS: [&str; 11] = [
    "NETNS", "NETID", "STATE", "LOCAL", "PEER", "TIMER", "RECV-Q", "SEND-Q", "UID", "INODE",
    "PROCESS",
];
const LISTING_NUMERIC: [bool; 11] = [
    false, false, false, false, false, false, true, true, true, true, false,
];
/// Where the socket's own columns begin in [`LISTING_HEADERS`].
const FIRST: usize = 2;
const LAST: usize = LISTING_HEADERS.len() - 1;

/// `tw ls` as aligned columns, one row at a time, in buffers reused from row
/// to row. Held, every row is measured before the first is written, so the
/// columns are as wide as their widest cell (each row is formatted twice).
///
/// Streamed, only the rows held first (`listing::HOLD`) are measured; a
/// wider cell later widens its column from its own row on, as widths only
/// grow. Rather than leaving that one line ragged under fixed widths, this
/// keeps rows that come grouped aligned with each other: IPv6 after IPv4
/// when each family is its own dump or file, a rarer state or timer further
/// on. Fields stay separated by at least two spaces either way, so `awk`
/// reads both the same, and a listing no longer than the held rows is
/// exactly what the held renderer writes.
#[derive(Debug)]
pub struct ListingRows {
    cells: SocketCells,
    /// Of every column in [`LISTING_HEADERS`]; only those shown are used.
    widths: [usize; 11],
}

impl Default for ListingRows {
    fn default() -> Self {
        ListingRows {
            cells: SocketCells::default(),
            widths: LISTING_HEADERS.map(str::len),
        }
    }
}

impl ListingRows {
    /// Formats `s` and widens the columns to it; returns its owners' label
    /// when there is a PROCESS column.
    fn widen(&mut self, s: &Socket, a: &Annotation) -> Option<String> {
        self.cells.fill(s);
        for i in 0..SOCKET_HEADERS.len() {
            self.widths[i + FIRST] = self.widths[i + FIRST].max(self.cells.cell(i).len());
        }
        // Bytes, as the section renderer these rows once went through
        // measured them (padding counts characters).
        if let Some(ns) = a.netns_text(s) {
            self.widths[0] = self.widths[0].max(ns.len());
        }
        if let Some(id) = a.netid_text(s) {
            self.widths[1] = self.widths[1].max(id.len());
        }
        let owner = a.owner_text(s);
        if let Some(o) = &owner {
            self.widths[LAST] = self.widths[LAST].max(o.len());
        }
        owner
    }

    /// Appends the shown cells of one line (`None`: a column not shown).
    fn push(&self, out: &mut Vec<u8>, cells: [Option<&[u8]>; 11]) {
        let mut shown: [&[u8]; 11] = [&[]; 11];
        let (mut widths, mut numeric) = ([0; 11], [false; 11]);
        let mut n = 0;
        for (i, cell) in cells.into_iter().enumerate() {
            if let Some(cell) = cell {
                (shown[n], widths[n], numeric[n]) = (cell, self.widths[i], LISTING_NUMERIC[i]);
                n += 1;
            }
        }
        push_row(out, shown[..n].iter().copied(), &widths[..n], &numeric[..n]);
    }
}

impl Rows for ListingRows {
    fn measure(&mut self, s: &Socket, a: &Annotation) {
        self.widen(s, a);
    }

    fn head(&mut self, a: &Annotation, empty: bool, out: &mut Vec<u8>) {
        let (netns, procs) = (!a.namespaces.is_empty(), a.procs.is_some());
        // An annotated listing of nothing prints nothing, as the section
        // renderer it went through did; a bare one prints its header.
        if empty && (netns || procs) {
            return;
        }
        let h = LISTING_HEADERS.map(|h| Some(h.as_bytes()));
        let mut cells = h;
        cells[0] = h[0].filter(|_| netns);
        cells[1] = h[1].filter(|_| a.netid);
        cells[LAST] = h[LAST].filter(|_| procs);
        self.push(out, cells);
    }

    fn row(&mut self, s: &Socket, a: &Annotation, out: &mut Vec<u8>) -> io::Result<()> {
        let owner = self.widen(s, a);
        let c = &self.cells;
        if a.is_bare() {
            // The common case, a million times over: the socket's columns alone.
            let cells = (0..SOCKET_HEADERS.len()).map(|i| c.cell(i));
            push_row(
                out,
                cells,
                &self.widths[FIRST..LAST],
                &LISTING_NUMERIC[FIRST..LAST],
            );
            return Ok(());
        }
        let netns = a.netns_text(s);
        let cells = [
            netns.as_deref().map(str::as_bytes),
            a.netid_text(s).map(str::as_bytes),
            Some(c.cell(0)),
            Some(c.cell(1)),
            Some(c.cell(2)),
            Some(c.cell(3)),
            Some(c.cell(4)),
            Some(c.cell(5)),
            Some(c.cell(6)),
            Some(c.cell(7)),
            owner.as_deref().map(str::as_bytes),
        ];
        self.push(out, cells);
        Ok(())
    }

    fn tail(&mut self, _out: &mut Vec<u8>) {}
}

/// Sections as titled, aligned blocks separated by blank lines.
pub fn write_sections(out: &mut dyn Write, sections: &[Section]) -> io::Result<()> {
    sections::write_sections(out, sections, |out, sec| {
        let mut widths: Vec<usize> = sec.headers.iter().map(|h| h.len()).collect();
        for row in &sec.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        write_row(out, &sec.headers, &widths, &sec.numeric)?;
        for row in &sec.rows {
            write_row(out, row, &widths, &sec.numeric)?;
        }
        Ok(())
    })
}

fn write_row<S: AsRef<str>>(
    out: &mut dyn Write,
    cells: &[S],
    widths: &[usize],
    numeric: &[bool],
) -> io::Result<()> {
    let mut line = Vec::new();
    let row = cells.iter().map(|c| c.as_ref().as_bytes());
    push_row(&mut line, row, widths, numeric);
    out.write_all(&line)
}

/// Appends one line: columns two spaces apart, numbers right-aligned, no
/// trailing spaces. Widths count characters, as `{:<w$}` does.
fn push_row<'a>(
    line: &mut Vec<u8>,
    cells: impl ExactSizeIterator<Item = &'a [u8]>,
    widths: &[usize],
    numeric: &[bool],
) {
    let last = cells.len().saturating_sub(1);
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            line.extend_from_slice(b"  ");
        }
        // UTF-8: count the bytes that start a character.
        let chars = if cell.is_ascii() {
            cell.len()
        } else {
            cell.iter().filter(|b| **b & 0xC0 != 0x80).count()
        };
        let pad = widths[i].saturating_sub(chars);
        if numeric[i] {
            line.resize(line.len() + pad, b' ');
            line.extend_from_slice(cell);
        } else {
            line.extend_from_slice(cell);
            if i != last {
                line.resize(line.len() + pad, b' ');
            }
        }
    }
    line.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::aggregate::{GroupBy, Groups};
    use crate::model::Consumer;
    use crate::model::{Endpoint, Family, Socket, TcpState, Timer, TimerKind};

    fn tw_socket(local_port: u16, ms: u32) -> Socket {
        let mut s = Socket::new(
            Family::Inet,
            TcpState::TimeWait,
            Endpoint::new("127.0.0.1".parse().unwrap(), local_port),
            Endpoint::new("127.0.0.2".parse().unwrap(), 80),
        );
        s.timer = Some(Timer {
            kind: TimerKind::TimeWait,
            ms,
        });
        s
    }

    fn text(r: &Report) -> String {
        let mut out = Vec::new();
        render(r, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn listing_is_aligned_with_a_header() {
        let socks = [tw_socket(40000, 41_300), tw_socket(5, 2_000)];
        assert_eq!(
            text(&Report::Sockets(&socks)),
            "\
STATE      LOCAL            PEER          TIMER  RECV-Q  SEND-Q  UID  INODE
TIME_WAIT  127.0.0.1:40000  127.0.0.2:80  41.3s       0       0    0      0
TIME_WAIT  127.0.0.1:5      127.0.0.2:80  2.0s        0       0    0      0
"
        );
    }

    #[test]
    fn listing_columns_are_the_socket_columns_between_netns_and_process() {
        assert_eq!(
            LISTING_HEADERS[FIRST..LAST],
            crate::render::cells::SOCKET_HEADERS
        );
        assert_eq!(
            LISTING_NUMERIC[FIRST..LAST],
            crate::render::cells::SOCKET_NUMERIC
        );
        assert_eq!(
            (
                LISTING_HEADERS[0],
                LISTING_HEADERS[1],
                LISTING_HEADERS[LAST]
            ),
            ("NETNS", "NETID", "PROCESS")
        );
        assert!(!LISTING_NUMERIC[0] && !LISTING_NUMERIC[1] && !LISTING_NUMERIC[LAST]);
    }

    #[test]
    fn count_is_one_integer_and_groups_are_tab_separated() {
        assert_eq!(text(&Report::Count(42)), "42\n");
        let mut g = Groups::new(GroupBy::Peer);
        for s in [tw_socket(1, 0), tw_socket(2, 0)] {
            let _ = g.push(&s);
        }
        let groups: Vec<(String, u64)> = g
            .ranked(None)
            .into_iter()
            .map(|(k, n)| (k.label(&[]), n))
            .collect();
        let r = Report::Groups {
            by: "peer",
            total: 2,
            groups: &groups,
        };
        assert_eq!(text(&r), "127.0.0.2:80\t2\n");
    }
}
