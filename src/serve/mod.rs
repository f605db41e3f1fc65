//! `tw serve`: the endpoint Prometheus scrapes. HTTP/1.1 over std::net with
//! two paths: `/metrics` (a fresh [`Snapshot`] per request, under a time
//! limit) and `/healthz`. Nothing else is served.
//!
//! Bounds, so that a stuck read or a flood of clients cannot pile up
//! threads: at most [`MAX_CONNECTIONS`] connections are served at once (at
//! that limit a new one closes the connection that has waited longest for a
//! request, so idle keep-alive connections cannot lock scrapes out; with
//! none waiting it is answered 503 by one rejecting thread), at most [`MAX_SCRAPES`]
//! snapshots run at once (more get 503), and a request head must arrive
//! within [`REQUEST_TIMEOUT`]. A snapshot that overruns its time limit gets
//! 503 and keeps its slot until the read returns, since a netlink dump
//! cannot be cancelled from another thread.
//!
//! TIME_WAIT stays with the side that closes first, and this tool watches
//! TIME_WAIT, so it avoids making its own: connections are kept alive
//! between scrapes (Prometheus reuses one), and when one must end, tw waits
//! briefly for the client to close first.
//!
//! The exposition is the text format 0.0.4 unless the scraper's `Accept`
//! prefers OpenMetrics (Prometheus does), and gzip-compressed when its
//! `Accept-Encoding` takes gzip. `--listen` takes a host name: every
//! address it resolves to gets a listening socket.
//!
//! With `--refresh`, a thread takes the snapshot on that cadence and a
//! scrape renders the latest one: it never waits for a dump (at 1M sockets
//! one is about 0.3 s), and a wedged read ages the answer (see
//! `tw_snapshot_age_seconds`) rather than failing it. With eBPF events on, a
//! thread drains the ring buffer every [`DRAIN_EVERY`] into counters
//! ([`EventCounters`]) that every scrape adds, in either mode.
//!
//! The HTTP parsing ([`http`]) is pure; [`serve`] and the connection
//! handling here are the I/O half. What a scrape reads comes through the
//! source seam, so a capture serves as well as the live kernel.

pub mod http;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::analyze::scrape::{EventCounters, Snapshot};
use crate::model::event::Event;
use crate::model::Direction;
use crate::query::Filter;
use crate::render;
use crate::render::prometheus::{Dialect, Extras};
use crate::source::events::Tracer;
use crate::source::Source;
use http::{head_end, parse_request, route, Reply, Route};

/// Connections served at once; more are answered 503.
pub const MAX_CONNECTIONS: usize = 16;
/// Snapshots computed at once. Each is one walk of the socket table (about
/// 0.4 s of kernel time at 1M sockets): more would only slow them all.
pub const MAX_SCRAPES: usize = 2;
/// Time for a client to send a request head, from its first byte (or from
/// the connection, for the first request).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a kept-alive connection waits for its next request: longer than
/// common scrape intervals (15 s to 1 min), so Prometheus's connection stays.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for the client's FIN before closing first.
const CLOSE_WAIT_FOR_CLIENT: Duration = Duration::from_secs(1);
/// Connections over the limit waiting for their 503.
const REJECT_QUEUE: usize = 64;
/// Longest request head accepted (request line and headers).
const MAX_HEAD: usize = 8 * 1024;

/// The answer to a scrape with `--refresh` before the first snapshot is
/// in: expected for a moment after start, so not logged.
const FIRST_SNAPSHOT: &str = "tw: the first snapshot is still being taken";

/// How often the event counters are fed from the ring buffer. The programs
/// queue without waking anyone, so this is the whole cost; at 5,000
/// connections per second a drain is a few thousand records.
pub const DRAIN_EVERY: Duration = Duration::from_millis(200);

/// The event counters' feed: the loaded programs and which events count.
pub struct Events {
    pub tracer: Tracer,
    /// The filter's flags and expression, applied to the event's socket.
    pub keep: Box<dyn Fn(&Event) -> bool + Send>,
    /// `--max-series`.
    pub max_series: usize,
    /// The listening ports (namespace inode, port) when the programs were
    /// loaded: an event whose connect() or accept() came before has no
    /// direction, and is inbound when its local port is one of these (as
    /// tw tells direction from the table, query/direction.rs), so an old
    /// connection's client port never takes a destination's series.
    pub listening: HashSet<(u32, u16)>,
    /// Where the events come from, for the log: "this network namespace
    /// (inode N)".
    pub scope: String,
}

/// What starting the event counters gave.
pub enum EventsStart {
    On(Box<Events>),
    /// Off, with the line to log (None: nothing to say, as for a capture).
    Off(Option<String>),
}

/// Starts the event counters; an error (`--events on` that cannot be had)
/// stops `tw serve` before it serves. Run after the listening sockets are
/// bound, so a bad `--listen` is the only line.
pub type StartEvents = Box<dyn FnOnce() -> Result<EventsStart> + Send + Sync>;

/// What `tw serve` was asked to do.
pub struct Config {
    /// `--listen`: HOST:PORT, resolved when serving starts.
    pub listen: String,
    /// Time limit of one scrape; Prometheus's own, when it sends a shorter
    /// one (X-Prometheus-Scrape-Timeout-Seconds), wins.
    pub timeout: Duration,
    /// Destinations per scrape (`--top`).
    pub top: usize,
    pub source: Arc<dyn Source>,
    pub filter: Filter,
    /// `--refresh`: take the snapshot in the background on this cadence and
    /// answer scrapes from the latest; None: a fresh snapshot per scrape.
    pub refresh: Option<Duration>,
    /// `--events`; taken when serving starts.
    pub events: Option<StartEvents>,
}

/// The latest background snapshot (`--refresh`), or why there is none.
#[derive(Default)]
struct Latest {
    /// The snapshot, already written in both dialects (without the extras
    /// and the end), and when it was taken (when its read ended).
    snap: Option<Arc<Rendered>>,
    /// The last attempt's error, when it failed.
    error: Option<String>,
}

/// A snapshot's series in each dialect, and when the snapshot was taken.
struct Rendered {
    text: Vec<u8>,
    openmetrics: Vec<u8>,
    at: Instant,
}

struct Shared {
    cfg: Config,
    /// Counters behind [`Slot`]s, which move into threads.
    connections: Arc<AtomicUsize>,
    scrapes: Arc<AtomicUsize>,
    /// A note (fallback to /proc, --from without facts) is logged once, not
    /// on every scrape.
    noted: AtomicBool,
    /// Connections waiting for a request (idle between scrapes, or not sent
    /// one yet), by id: since when, and a handle to close them by.
    waiting: Mutex<HashMap<u64, (Instant, TcpStream)>>,
    next_id: AtomicU64,
    /// The event counters, fed by their own thread; None when events are off.
    counters: Option<Arc<Mutex<EventCounters>>>,
    /// With `--refresh`: what the refreshing thread took last.
    latest: Option<Mutex<Latest>>,
}

impl Shared {
    /// Closes the connection that has waited longest for a request, so that
    /// a new one can have its slot: held idle connections must not lock
    /// scrapes out for the whole idle timeout. False when none is waiting
    /// (every slot is busy with a request).
    fn evict_longest_waiting(&self) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let Some(id) = waiting
            .iter()
            .min_by_key(|(_, (t, _))| *t)
            .map(|(id, _)| *id)
        else {
            return false;
        };
        if let Some((_, stream)) = waiting.remove(&id) {
            // Its read returns at once and its thread ends, freeing the slot.
            let _ = stream.shutdown(Shutdown::Both);
        }
        true
    }
}

/// A connection's entry in [`Shared::waiting`], removed on drop.
struct Waiting<'a> {
    shared: &'a Shared,
    id: u64,
}

impl<'a> Waiting<'a> {
    fn new(shared: &'a Shared, stream: &TcpStream) -> Waiting<'a> {
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(handle) = stream.try_clone() {
            let mut waiting = shared.waiting.lock().unwrap_or_else(|p| p.into_inner());
            waiting.insert(id, (Instant::now(), handle));
        }
        Waiting { shared, id }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut waiting = self
            .shared
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        waiting.remove(&self.id);
    }
}

/// Every address `--listen` names: an address as it is, a host name as the
/// resolver (/etc/hosts, DNS) gives it, each address once.
fn resolve(listen: &str) -> Result<Vec<SocketAddr>> {
    let (host, port) = http::split_listen(listen).map_err(anyhow::Error::msg)?;
    let found = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("--listen {listen}: cannot resolve {host}"))?;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for a in found {
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    }
    if addrs.is_empty() {
        anyhow::bail!("--listen {listen}: {host} resolves to no address");
    }
    Ok(addrs)
}

/// Binds every address `cfg.listen` names and serves until the process is
/// stopped. Returns only when none can be bound. A name such as localhost
/// gets a socket per address (127.0.0.1 and ::1); one that cannot be bound
/// (IPv6 off) is logged and skipped while another serves.
pub fn serve(mut cfg: Config) -> Result<()> {
    let mut listeners = Vec::new();
    let mut failed = Vec::new();
    for addr in resolve(&cfg.listen)? {
        match TcpListener::bind(addr) {
            Ok(l) => listeners.push(l),
            Err(e) => failed.push(
                anyhow::Error::new(e).context(format!("--listen {}: binding {addr}", cfg.listen)),
            ),
        }
    }
    if listeners.is_empty() {
        return Err(failed.remove(0));
    }
    let events = match cfg.events.take() {
        Some(start) => start()?,
        None => EventsStart::Off(None),
    };
    for e in &failed {
        log(&format!("{e:#}; serving on the other addresses"));
    }
    for listener in &listeners {
        let addr = listener
            .local_addr()
            .context("--listen: reading the bound address")?;
        log(&format!("serving http://{addr}/metrics and /healthz"));
        if !addr.ip().is_loopback() {
            log(&format!(
                "{} is not a loopback address: whoever reaches it sees this box's peers and \
                 ports; restrict it with a firewall",
                addr.ip()
            ));
        }
    }
    let counters = match events {
        EventsStart::On(ev) => {
            log(&format!(
                "counting TCP events (eBPF) in {}, per destination, listening port and process \
                 (at most {} each, then `other`)",
                ev.scope, ev.max_series
            ));
            let counters = Arc::new(Mutex::new(EventCounters::new(ev.max_series)));
            let feed = Arc::clone(&counters);
            thread::Builder::new()
                .name("tw-serve-events".into())
                .spawn(move || count_events(*ev, &feed))
                .context("starting the event thread")?;
            Some(counters)
        }
        EventsStart::Off(why) => {
            if let Some(why) = why {
                log(&why);
            }
            None
        }
    };
    let refresh = cfg.refresh;
    let shared = Arc::new(Shared {
        cfg,
        connections: Arc::default(),
        scrapes: Arc::default(),
        noted: AtomicBool::new(false),
        waiting: Mutex::default(),
        next_id: AtomicU64::new(0),
        counters,
        latest: refresh.map(|_| Mutex::default()),
    });
    if let Some(every) = refresh {
        let worker = Arc::clone(&shared);
        thread::Builder::new()
            .name("tw-serve-refresh".into())
            .spawn(move || worker.refresh(every))
            .context("starting the refreshing thread")?;
    }
    let (reject, rejected) = mpsc::sync_channel::<TcpStream>(REJECT_QUEUE);
    thread::Builder::new()
        .name("tw-serve-reject".into())
        .spawn(move || rejected.iter().for_each(turn_away))
        .context("starting the rejecting thread")?;
    let first = listeners.remove(0);
    for listener in listeners {
        let (shared, reject) = (Arc::clone(&shared), reject.clone());
        thread::Builder::new()
            .name("tw-serve-accept".into())
            .spawn(move || accept(&listener, &shared, &reject))
            .context("starting an accepting thread")?;
    }
    accept(&first, &shared, &reject);
    Ok(())
}

/// Takes the connections of one listening socket, each to its thread, or to
/// the rejecting thread past [`MAX_CONNECTIONS`]. Never returns.
fn accept(listener: &TcpListener, shared: &Arc<Shared>, reject: &mpsc::SyncSender<TcpStream>) {
    for conn in listener.incoming() {
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors, or a connection reset before
                // accept(): say so and keep serving; back off a little so a
                // persistent EMFILE does not spin.
                log(&format!("accept: {e}"));
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let slot = match Slot::take(&shared.connections, MAX_CONNECTIONS) {
            Some(slot) => slot,
            // The closed connection's slot is freed as its thread ends; the
            // count is over the limit by the closings under way, no more.
            None if shared.evict_longest_waiting() => Slot::force(&shared.connections),
            None => {
                // Past the queue too, the connection is closed unanswered.
                let _ = reject.try_send(stream);
                continue;
            }
        };
        let shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name("tw-serve-conn".into())
            .spawn(move || {
                let _slot = slot;
                handle(&shared, stream);
            });
        if let Err(e) = spawned {
            log(&format!("starting a connection thread: {e}"));
        }
    }
}

/// Answers a connection over the limit with 503, after reading what it sent
/// (closing on unread data would send RST, and the client could lose the
/// answer). Brief timeouts keep the one rejecting thread moving.
fn turn_away(mut stream: TcpStream) {
    let brief = Duration::from_millis(200);
    let _ = stream.set_read_timeout(Some(brief));
    let _ = stream.set_write_timeout(Some(brief));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while head_end(&buf).is_none() && buf.len() <= MAX_HEAD {
        match stream.read(&mut chunk) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    let reply = Reply::error(
        503,
        format!("tw: busy: {MAX_CONNECTIONS} connections already open"),
    );
    if reply.write_to(&mut stream, false, false).is_ok() {
        close_after_client(stream, brief);
    }
}

/// A counted slot, released on drop, even when its thread panics.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(counter: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        let taken = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        });
        taken.ok().map(|_| Slot(Arc::clone(counter)))
    }

    /// A slot whatever the count, for one that another is giving up.
    fn force(counter: &Arc<AtomicUsize>) -> Slot {
        counter.fetch_add(1, Ordering::AcqRel);
        Slot(Arc::clone(counter))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves requests on one connection until either side ends it.
fn handle(shared: &Arc<Shared>, mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut wait = REQUEST_TIMEOUT;
    loop {
        let waiting = Waiting::new(shared, &stream);
        let read = read_head(&mut stream, &mut buf, wait);
        drop(waiting);
        let head = match read {
            Ok(Some(h)) => h,
            // Closed by the client, or idle too long: nothing to answer.
            Ok(None) => return,
            Err(reply) => {
                if reply.write_to(&mut stream, false, false).is_ok() {
                    close_after_client(stream, CLOSE_WAIT_FOR_CLIENT);
                }
                return;
            }
        };
        let (reply, head_only, keep) = match parse_request(&head) {
            Err(reply) => (reply, false, false),
            Ok(req) => {
                let reply = match route(&req) {
                    Route::Metrics => {
                        let limit = req
                            .scrape_timeout
                            .map_or(shared.cfg.timeout, |t| t.min(shared.cfg.timeout));
                        let dialect = if req.openmetrics {
                            Dialect::OpenMetrics
                        } else {
                            Dialect::Text
                        };
                        let reply = match &shared.latest {
                            Some(latest) => shared.answer_from_latest(latest, dialect),
                            None => scrape(shared, limit, dialect),
                        };
                        match reply.status == 200 && req.gzip {
                            true => reply.gzip().unwrap_or_else(|e| {
                                Reply::error(500, format!("tw: compressing: {e}"))
                            }),
                            false => reply,
                        }
                    }
                    Route::Health => Reply::text(200, "ok\n".into()),
                    Route::Error(reply) => reply,
                };
                // Only a clean success keeps the connection.
                let keep = req.keep_alive && reply.status == 200;
                (reply, req.method == "HEAD", keep)
            }
        };
        let warming = reply.body.trim_ascii_end() == FIRST_SNAPSHOT.as_bytes();
        if reply.status >= 500 && !warming {
            let body = String::from_utf8_lossy(&reply.body);
            log(body.trim_end().trim_start_matches("tw: "));
        }
        if reply.write_to(&mut stream, head_only, keep).is_err() {
            return;
        }
        if !keep {
            close_after_client(stream, CLOSE_WAIT_FOR_CLIENT);
            return;
        }
        wait = IDLE_TIMEOUT;
    }
}

/// Reads the next request head (up to its blank line) from `buf` and the
/// stream, leaving any bytes after it in `buf`. Waits `wait` for the first
/// byte, then [`REQUEST_TIMEOUT`] for the rest. `Ok(None)` when the client
/// closed or stayed silent without starting a request.
fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    wait: Duration,
) -> Result<Option<Vec<u8>>, Reply> {
    let mut deadline = (!buf.is_empty()).then(|| Instant::now() + REQUEST_TIMEOUT);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(buf) {
            return Ok(Some(buf.drain(..end).collect()));
        }
        if buf.len() > MAX_HEAD {
            return Err(Reply::error(
                431,
                format!("tw: request head over {MAX_HEAD} bytes"),
            ));
        }
        let left = deadline.map_or(wait, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(Reply::error(408, "tw: request not finished in time".into()));
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => {
                return Err(Reply::error(
                    400,
                    "tw: bad request: it ended before its blank line".into(),
                ))
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                deadline.get_or_insert_with(|| Instant::now() + REQUEST_TIMEOUT);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if buf.is_empty() {
                    return Ok(None);
                }
                return Err(Reply::error(408, "tw: request not finished in time".into()));
            }
            Err(_) => return Ok(None),
        }
    }
}

/// Lets the client close first, so that the TIME_WAIT lands on its side
/// rather than on the box being watched: waits up to `wait` for its FIN,
/// discarding anything else it sends, then closes.
fn close_after_client(mut stream: TcpStream, wait: Duration) {
    let deadline = Instant::now() + wait;
    let mut sink = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => continue,
            _ => return,
        }
    }
}

/// Runs one snapshot on its own thread and waits for it at most `limit`.
fn scrape(shared: &Arc<Shared>, limit: Duration, dialect: Dialect) -> Reply {
    let Some(slot) = Slot::take(&shared.scrapes, MAX_SCRAPES) else {
        return Reply::error(
            503,
            format!("tw: busy: {MAX_SCRAPES} scrapes already running"),
        );
    };
    let (tx, rx) = mpsc::channel();
    let worker = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("tw-serve-scrape".into())
        .spawn(move || {
            // Held until the read returns, even past the time limit.
            let _slot = slot;
            let _ = tx.send(worker.snapshot(dialect));
        });
    if let Err(e) = spawned {
        return Reply::error(500, format!("tw: starting a scrape thread: {e}"));
    }
    match rx.recv_timeout(limit) {
        Ok(Ok(body)) => exposition(dialect, body),
        Ok(Err(e)) => Reply::error(500, format!("tw: {e:#}")),
        Err(mpsc::RecvTimeoutError::Timeout) => Reply::error(
            503,
            format!("tw: scrape took longer than {:.1} s", limit.as_secs_f64()),
        ),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Reply::error(500, "tw: the scrape failed without a reason (a bug)".into())
        }
    }
}

/// A 200 with the exposition `body` in `dialect`.
fn exposition(dialect: Dialect, body: Vec<u8>) -> Reply {
    Reply {
        status: 200,
        content_type: match dialect {
            Dialect::Text => render::prometheus::CONTENT_TYPE,
            Dialect::OpenMetrics => render::prometheus::OPENMETRICS_CONTENT_TYPE,
        },
        // The answer depends on both, for any cache between.
        extra: Some("Vary: Accept, Accept-Encoding"),
        gzipped: false,
        body,
    }
}

/// Feeds the counters from the ring buffer every [`DRAIN_EVERY`], for the
/// life of the process. Events are gathered first and added under the lock
/// after, so a scrape never waits for a drain.
fn count_events(mut ev: Events, counters: &Mutex<EventCounters>) {
    let mut batch = Vec::new();
    loop {
        let (keep, listening) = (&ev.keep, &ev.listening);
        ev.tracer.poll(DRAIN_EVERY, &mut |mut e| {
            if e.direction.is_none() && listening.contains(&(e.netns, e.local.port)) {
                e.direction = Some(Direction::Inbound);
            }
            if keep(&e) {
                batch.push(e);
            }
        });
        let lost = ev.tracer.lost();
        let mut c = counters.lock().unwrap_or_else(|p| p.into_inner());
        for e in batch.drain(..) {
            c.add(&e);
        }
        // Both are totals since the programs were loaded.
        c.lost = lost;
        c.undecodable = ev.tracer.undecodable;
        c.skipped = ev.tracer.skipped();
    }
}

impl Shared {
    /// One snapshot as exposition text.
    fn snapshot(&self, dialect: Dialect) -> Result<Vec<u8>> {
        let snap = self.collect();
        self.render(&snap?, dialect)
    }

    /// Reads the snapshot; its notes are logged once.
    fn collect(&self) -> Result<Snapshot> {
        let mut notes = Vec::new();
        let snap = Snapshot::collect(&*self.cfg.source, &self.cfg.filter, &mut notes);
        if !notes.is_empty() && !self.noted.swap(true, Ordering::Relaxed) {
            log(&notes.join("; "));
        }
        snap
    }

    /// `snap` and the event counters as they are now, as exposition text.
    fn render(&self, snap: &Snapshot, dialect: Dialect) -> Result<Vec<u8>> {
        let mut body = Vec::with_capacity(16 * 1024);
        render::prometheus::render_snapshot(snap, self.cfg.top, dialect, &mut body)?;
        self.render_extras(&mut body, None, dialect)?;
        Ok(body)
    }

    /// Appends the event counters as they are now, the snapshot's `age` and
    /// the end.
    fn render_extras(
        &self,
        body: &mut Vec<u8>,
        age: Option<Duration>,
        dialect: Dialect,
    ) -> io::Result<()> {
        // A copy (a few hundred keys at most), so the feed is not held up
        // while the text is written.
        let counters = self
            .counters
            .as_ref()
            .map(|c| c.lock().unwrap_or_else(|p| p.into_inner()).clone());
        let extras = Extras {
            events: counters.as_ref(),
            age,
        };
        render::prometheus::render_extras(&extras, dialect, body)
    }

    /// `--refresh`: takes a snapshot every `every` (from the start of one to
    /// the next; back to back when one takes longer), for the life of the
    /// process. A failed one keeps the last good one for scrapes, whose
    /// tw_snapshot_age_seconds then grows; each new error is logged once.
    fn refresh(&self, every: Duration) {
        let Some(latest) = &self.latest else { return };
        loop {
            let start = Instant::now();
            // Written here, once per snapshot, rather than per scrape.
            let taken = self.collect().and_then(|snap| {
                let at = Instant::now();
                let mut text = Vec::with_capacity(32 * 1024);
                let mut openmetrics = Vec::with_capacity(32 * 1024);
                let top = self.cfg.top;
                render::prometheus::render_snapshot(&snap, top, Dialect::Text, &mut text)?;
                render::prometheus::render_snapshot(
                    &snap,
                    top,
                    Dialect::OpenMetrics,
                    &mut openmetrics,
                )?;
                Ok(Rendered {
                    text,
                    openmetrics,
                    at,
                })
            });
            let mut l = latest.lock().unwrap_or_else(|p| p.into_inner());
            match taken {
                Ok(rendered) => {
                    l.snap = Some(Arc::new(rendered));
                    l.error = None;
                }
                Err(e) => {
                    let e = format!("{e:#}");
                    if l.error.as_ref() != Some(&e) {
                        log(&format!("background snapshot: {e}"));
                    }
                    l.error = Some(e);
                }
            }
            drop(l);
            thread::sleep(every.saturating_sub(start.elapsed()));
        }
    }

    /// A scrape with `--refresh`: the latest snapshot and the live counters.
    /// Never waits for a dump: only for the lock, which the refreshing thread
    /// holds just to swap the snapshot in.
    fn answer_from_latest(&self, latest: &Mutex<Latest>, dialect: Dialect) -> Reply {
        let (snap, error) = {
            let l = latest.lock().unwrap_or_else(|p| p.into_inner());
            (l.snap.clone(), l.error.clone())
        };
        let Some(snap) = snap else {
            return match error {
                Some(e) => Reply::error(500, format!("tw: {e}")),
                None => Reply::error(503, FIRST_SNAPSHOT.into()),
            };
        };
        let mut body = match dialect {
            Dialect::Text => snap.text.clone(),
            Dialect::OpenMetrics => snap.openmetrics.clone(),
        };
        match self.render_extras(&mut body, Some(snap.at.elapsed()), dialect) {
            Ok(()) => exposition(dialect, body),
            Err(e) => Reply::error(500, format!("tw: {e:#}")),
        }
    }
}

fn log(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "tw: serve: {msg}");
}
