//! `tw ls` row by row: the held renderers and the streaming [`Stream`] both
//! write a listing through a format's [`Rows`], so the two cannot drift apart.

use std::io::{self, Write};

use super::cells::Annotation;
use crate::model::Socket;
use crate::model::{Consumer, Flow};
use crate::source::owners::Procs;

/// One format's text for a socket listing.
pub trait Rows {
    /// Takes in a row before the head is written (plain: column widths).
    fn measure(&mut self, s: &Socket, a: &Annotation);
    /// What comes before the first row; `empty`: no row follows.
    fn head(&mut self, a: &Annotation, empty: bool, out: &mut Vec<u8>);
    /// One row. A row that was not measured may still come (streaming).
    fn row(&mut self, s: &Socket, a: &Annotation, out: &mut Vec<u8>) -> io::Result<()>;
    /// What comes after the last row.
    fn tail(&mut self, out: &mut Vec<u8>);
}

/// Rows held before a streamed listing is written: they size the plain
/// columns, and a listing no longer than this is written only once the read
/// is whole, exactly as when every row is held (about 80 bytes each).
pub const HOLD: usize = 4096;

/// Output is handed on in whole rows of about this many bytes, each time
/// flushed, so that stdout ends at a row's end whatever happens later.
pub const CHUNK: usize = 64 * 1024;

/// Why a streamed listing stops when its dump restarts (NLM_F_DUMP_INTR)
/// after rows were written: they cannot be taken back.
pub(super) fn changed_after_writing() -> io::Error {
    io::Error::other(
        "the socket table changed under the sock_diag dump (NLM_F_DUMP_INTR) after this listing \
         had begun to be written, and written rows cannot be taken back; try again, or add \
         --sort to hold the listing until a dump is read whole",
    )
}

/// Writes a listing of rows held in full: every row measured, then written.
pub fn write_held(
    rows: &mut dyn Rows,
    socks: &[Socket],
    a: &Annotation,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(CHUNK + 1024);
    lead(rows, socks, a, socks.is_empty(), &mut buf, out)?;
    rows.tail(&mut buf);
    out.write_all(&buf)
}

/// Measures `socks`, then writes the head and their rows; `empty`: no row
/// at all follows the head.
fn lead(
    rows: &mut dyn Rows,
    socks: &[Socket],
    a: &Annotation,
    empty: bool,
    buf: &mut Vec<u8>,
    out: &mut dyn Write,
) -> io::Result<()> {
    for s in socks {
        rows.measure(s, a);
    }
    rows.head(a, empty, buf);
    for s in socks {
        rows.row(s, a, buf)?;
        if buf.len() >= CHUNK {
            hand_on(buf, out)?;
        }
    }
    Ok(())
}

fn hand_on(buf: &mut Vec<u8>, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(buf)?;
    buf.clear();
    out.flush()
}

/// A listing written as the reader delivers it, so that memory stays flat
/// whatever the number of sockets: the first [`HOLD`] rows are held, then
/// written with everything after them as it comes.
///
/// A restart (an interrupted dump read again) before anything was written
/// forgets the held rows, as every other consumer does. After rows were
/// written it cannot be honoured without listing some sockets twice, so the
/// stream fails instead, with a message saying how to get a whole listing
/// (`--sort` holds every row). Current kernels never interrupt a TCP dump
/// (see tests/churn.rs), so this is a rule kept honest, not a common path.
pub struct Stream<'a> {
    rows: Box<dyn Rows>,
    out: &'a mut dyn Write,
    namespaces: Vec<String>,
    procs: Option<&'a Procs>,
    netid: bool,
    held: Vec<Socket>,
    hold: usize,
    limit: usize,
    /// Rows taken so far, held or written.
    taken: usize,
    /// The head and the held rows are out; rows now go straight through.
    streaming: bool,
    buf: Vec<u8>,
    failed: Option<io::Error>,
}

impl<'a> Stream<'a> {
    /// A listing in the format of `rows`, to `out`, with owners from
    /// `procs` when given, of at most `limit` rows.
    pub fn new(
        rows: Box<dyn Rows>,
        out: &'a mut dyn Write,
        procs: Option<&'a Procs>,
        limit: Option<usize>,
    ) -> Stream<'a> {
        Stream {
            rows,
            out,
            namespaces: Vec::new(),
            procs,
            netid: false,
            held: Vec::new(),
            hold: HOLD,
            limit: limit.unwrap_or(usize::MAX),
            taken: 0,
            streaming: false,
            buf: Vec::with_capacity(CHUNK + 1024),
            failed: None,
        }
    }

    /// With a NETID column (`-t -u`: more than one protocol).
    pub fn with_netid(mut self, netid: bool) -> Self {
        self.netid = netid;
        self
    }

    /// The same with another number of rows held, for tests.
    #[cfg(test)]
    pub(crate) fn holding(mut self, n: usize) -> Self {
        self.hold = n;
        self
    }

    /// What stopped the stream while the read went on (a closed pipe, a
    /// restart after rows were written), if anything did: it comes before
    /// any error of the read itself, which may only be its consequence.
    pub fn check(&mut self) -> io::Result<()> {
        self.failed.take().map_or(Ok(()), Err)
    }

    /// Ends the listing once the read is whole: the held rows, if the
    /// listing never grew past them, and the tail.
    pub fn finish(mut self) -> io::Result<()> {
        self.check()?;
        if !self.streaming {
            let empty = self.held.is_empty();
            self.begin(empty)?;
        }
        self.rows.tail(&mut self.buf);
        hand_on(&mut self.buf, self.out)
    }

    /// Sizes the listing on the held rows and writes them with the head.
    fn begin(&mut self, empty: bool) -> io::Result<()> {
        self.streaming = true;
        let held = std::mem::take(&mut self.held);
        let a = Annotation {
            namespaces: &self.namespaces,
            procs: self.procs,
            netid: self.netid,
        };
        lead(
            &mut *self.rows,
            &held,
            &a,
            empty,
            &mut self.buf,
            &mut *self.out,
        )
    }

    /// False once the listing has its rows or its output failed.
    fn wants_more(&self) -> bool {
        self.failed.is_none() && self.taken < self.limit
    }

    fn take(&mut self, s: &Socket) -> io::Result<()> {
        if !self.streaming {
            if self.held.len() < self.hold {
                self.held.push(*s);
                return Ok(());
            }
            self.begin(false)?;
        }
        let a = Annotation {
            namespaces: &self.namespaces,
            procs: self.procs,
            netid: self.netid,
        };
        self.rows.row(s, &a, &mut self.buf)?;
        if self.buf.len() >= CHUNK {
            hand_on(&mut self.buf, &mut *self.out)?;
        }
        Ok(())
    }
}

impl Consumer for Stream<'_> {
    fn push(&mut self, s: &Socket) -> Flow {
        if self.wants_more() {
            self.taken += 1;
            if let Err(e) = self.take(s) {
                self.failed = Some(e);
            }
        }
        if self.wants_more() {
            Flow::Continue(())
        } else {
            Flow::Break(())
        }
    }

    fn restart(&mut self) {
        if self.streaming {
            if self.failed.is_none() {
                self.failed = Some(changed_after_writing());
            }
            return;
        }
        self.held.clear();
        self.taken = 0;
    }

    fn namespaces(&mut self, labels: &[String]) {
        self.namespaces = labels.to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Family, TcpState, Timer, TimerKind};
    use crate::render::{json, plain};

    fn socket(i: u16) -> Socket {
        let (family, local, peer) = if i % 7 == 6 {
            let ip = "fec0:42::24".parse().unwrap();
            (Family::Inet6, ip, "fec0:42::1".parse().unwrap())
        } else {
            let ip = "127.0.0.1".parse().unwrap();
            (Family::Inet, ip, "127.0.0.2".parse().unwrap())
        };
        let state =
            [TcpState::TimeWait, TcpState::Established, TcpState::Listen][usize::from(i % 3)];
        let mut s = Socket::new(
            family,
            state,
            Endpoint::new(local, 1000 + i),
            Endpoint::new(peer, 80),
        );
        s.timer = i.is_multiple_of(2).then_some(Timer {
            kind: if i.is_multiple_of(4) {
                TimerKind::TimeWait
            } else {
                TimerKind::Keepalive
            },
            ms: u32::from(i) * 997,
        });
        s.inode = u64::from(i) * 1013;
        s.netns = i % 3;
        s
    }

    type NewRows = fn() -> Box<dyn Rows>;

    fn formats() -> [(&'static str, NewRows); 2] {
        [
            ("plain", || Box::new(plain::ListingRows::default())),
            ("json", || Box::new(json::ListingRows::default())),
        ]
    }

    fn held(rows: NewRows, socks: &[Socket], a: &Annotation) -> String {
        let mut out = Vec::new();
        write_held(&mut *rows(), socks, a, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The listing through a [`Stream`] holding `hold` rows, with namespaces
    /// and owners as `a` gives them.
    fn streamed(
        rows: NewRows,
        socks: &[Socket],
        a: &Annotation,
        hold: usize,
        limit: Option<usize>,
    ) -> String {
        let mut out = Vec::new();
        let mut s = Stream::new(rows(), &mut out, a.procs, limit)
            .with_netid(a.netid)
            .holding(hold);
        if !a.namespaces.is_empty() {
            s.namespaces(a.namespaces);
        }
        for x in socks {
            if s.push(x).is_break() {
                break;
            }
        }
        s.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Each line's fields, whatever the padding; JSON lines without the comma
    /// that only the last row lacks.
    fn fields(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| {
                l.trim_end_matches(',')
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn a_listing_no_longer_than_the_held_rows_is_the_held_one_byte_for_byte() {
        let socks: Vec<Socket> = (0..40).map(socket).collect();
        let labels = [
            "init".to_string(),
            "a-namespace".to_string(),
            "pid:1234".to_string(),
        ];
        let owners = Procs::default();
        let annotations = [
            Annotation::NONE,
            Annotation {
                namespaces: &labels,
                procs: None,
                ..Annotation::NONE
            },
            Annotation {
                namespaces: &[],
                procs: Some(&owners),
                ..Annotation::NONE
            },
            Annotation {
                namespaces: &labels,
                procs: Some(&owners),
                ..Annotation::NONE
            },
            Annotation {
                netid: true,
                ..Annotation::NONE
            },
            Annotation {
                namespaces: &labels,
                procs: Some(&owners),
                netid: true,
            },
        ];
        for (name, rows) in formats() {
            for a in &annotations {
                for n in [0, 1, 2, 39, 40] {
                    let want = held(rows, &socks[..n], a);
                    for hold in [n, n + 1, HOLD] {
                        assert_eq!(
                            streamed(rows, &socks[..n], a, hold, None),
                            want,
                            "{name}, {n} rows"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_empty_listing_is_a_header_an_empty_array_or_nothing_when_annotated() {
        let labels = ["init".to_string()];
        let a = Annotation {
            namespaces: &labels,
            procs: None,
            ..Annotation::NONE
        };
        let [(_, plain), (_, json)] = formats();
        assert_eq!(
            streamed(plain, &[], &Annotation::NONE, HOLD, None),
            "STATE  LOCAL  PEER  TIMER  RECV-Q  SEND-Q  UID  INODE\n"
        );
        assert_eq!(streamed(plain, &[], &a, HOLD, None), "");
        assert_eq!(streamed(json, &[], &a, HOLD, None), "[\n]\n");
    }

    #[test]
    fn past_the_held_rows_the_rows_are_the_same_and_columns_only_widen() {
        let socks: Vec<Socket> = (0..200).map(socket).collect();
        let labels = ["init".to_string(), "ns".to_string(), "pid:1".to_string()];
        let a = Annotation {
            namespaces: &labels,
            procs: None,
            ..Annotation::NONE
        };
        for (name, rows) in formats() {
            let want = held(rows, &socks, &a);
            for hold in [0, 1, 5, 6, 100] {
                let got = streamed(rows, &socks, &a, hold, None);
                assert_eq!(fields(&got), fields(&want), "{name}, holding {hold}");
                if name == "json" {
                    // No widths: the same bytes however many rows are held.
                    assert_eq!(got, want, "holding {hold}");
                    continue;
                }
                if hold >= 7 {
                    // The held rows include the first IPv6 row, the widest: same widths.
                    assert_eq!(got, want, "holding {hold}");
                }
            }
        }
    }

    #[test]
    fn a_wider_row_past_the_held_ones_widens_its_columns_from_its_line_on() {
        // Two narrow rows held, then an IPv6 row wider in LOCAL and PEER, then a narrow one.
        let socks = [socket(1), socket(3), socket(6), socket(9)];
        let [(_, plain), _] = formats();
        let got = streamed(plain, &socks, &Annotation::NONE, 2, None);
        let got: Vec<&str> = got.lines().collect();
        let narrow = held(plain, &socks[..2], &Annotation::NONE);
        let all = held(plain, &socks, &Annotation::NONE);
        // Header and held rows sized on the held rows; from the wide row on, on every row so far.
        assert_eq!(got[..3], narrow.lines().collect::<Vec<_>>()[..]);
        assert_eq!(got[3..], all.lines().collect::<Vec<_>>()[3..]);
        assert_ne!(got[1].len(), got[4].len());
    }

    #[test]
    fn a_limit_stops_taking_rows() {
        let socks: Vec<Socket> = (0..50).map(socket).collect();
        for (name, rows) in formats() {
            for hold in [3, HOLD] {
                let got = streamed(rows, &socks, &Annotation::NONE, hold, Some(10));
                assert_eq!(
                    fields(&got),
                    fields(&held(rows, &socks[..10], &Annotation::NONE)),
                    "{name}"
                );
            }
            let mut out = Vec::new();
            let mut s = Stream::new(rows(), &mut out, None, Some(2));
            assert!(s.wants_more());
            assert!(s.push(&socks[0]).is_continue(), "{name}");
            assert!(s.push(&socks[1]).is_break(), "{name}");
            assert!(!s.wants_more(), "{name}");
        }
    }

    #[test]
    fn a_restart_forgets_held_rows_and_fails_once_rows_are_written() {
        let socks: Vec<Socket> = (0..30).map(socket).collect();
        for (name, rows) in formats() {
            // Still holding: the second attempt's rows alone, as if the first never was.
            let mut out = Vec::new();
            let mut s = Stream::new(rows(), &mut out, None, None).holding(100);
            assert!(socks[..20].iter().all(|x| s.push(x).is_continue()));
            s.restart();
            assert!(s.wants_more());
            assert!(socks.iter().all(|x| s.push(x).is_continue()));
            s.finish().unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                held(rows, &socks, &Annotation::NONE),
                "{name}"
            );

            // Written: refused, and nothing more is taken.
            let mut out = Vec::new();
            let mut s = Stream::new(rows(), &mut out, None, None).holding(5);
            assert!(socks[..20].iter().all(|x| s.push(x).is_continue()));
            s.restart();
            assert!(!s.wants_more());
            assert!(socks.iter().all(|x| s.push(x).is_break()));
            let e = s.check().unwrap_err();
            assert!(
                e.to_string().contains("NLM_F_DUMP_INTR") && e.to_string().contains("--sort"),
                "{e}"
            );
            let text = String::from_utf8(out).unwrap();
            assert!(fields(&text).len() <= 21, "{name}: no row twice: {text}");
        }
    }

    /// A reader that went away: the stream stops taking rows and says why.
    #[test]
    fn a_closed_output_stops_the_stream() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let socks: Vec<Socket> = (0..2000).map(socket).collect();
        let mut out = Closed;
        let mut s = Stream::new(formats()[0].1(), &mut out, None, None).holding(1);
        let taken = socks.iter().take_while(|x| s.push(x).is_continue()).count();
        assert!(
            taken < socks.len(),
            "the stream took every row of a closed output"
        );
        assert!(!s.wants_more());
        assert_eq!(s.check().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }
}
