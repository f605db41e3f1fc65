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
//! The HTTP parsing ([`http`]) is pure; [`serve`] and the connection
//! handling here are the I/O half. What a scrape reads comes through the
//! source seam, so a capture serves as well as the live kernel.

pub mod http;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::analyze::scrape::Snapshot;
use crate::query::Filter;
use crate::render;
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

/// What `tw serve` was asked to do.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Time limit of one scrape; Prometheus's own, when it sends a shorter
    /// one (X-Prometheus-Scrape-Timeout-Seconds), wins.
    pub timeout: Duration,
    /// Destinations per scrape (`--top`).
    pub top: usize,
    pub source: Arc<dyn Source>,
    pub filter: Filter,
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

/// Binds `cfg.listen` and serves until the process is stopped. Returns only
/// when the address cannot be bound.
pub fn serve(cfg: Config) -> Result<()> {
    let listener =
        TcpListener::bind(cfg.listen).with_context(|| format!("--listen {}", cfg.listen))?;
    let addr = listener
        .local_addr()
        .context("--listen: reading the bound address")?;
    log(&format!("serving http://{addr}/metrics and /healthz"));
    if !addr.ip().is_loopback() {
        log(&format!(
            "{} is not a loopback address: whoever reaches it sees this box's peers and ports; \
             restrict it with a firewall",
            addr.ip()
        ));
    }
    let shared = Arc::new(Shared {
        cfg,
        connections: Arc::default(),
        scrapes: Arc::default(),
        noted: AtomicBool::new(false),
        waiting: Mutex::default(),
        next_id: AtomicU64::new(0),
    });
    let (reject, rejected) = mpsc::sync_channel::<TcpStream>(REJECT_QUEUE);
    thread::Builder::new()
        .name("tw-serve-reject".into())
        .spawn(move || rejected.iter().for_each(turn_away))
        .context("starting the rejecting thread")?;
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
        let shared = Arc::clone(&shared);
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
    Ok(())
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
                        scrape(shared, limit)
                    }
                    Route::Health => Reply::text(200, "ok\n".into()),
                    Route::Error(reply) => reply,
                };
                // Only a clean success keeps the connection.
                let keep = req.keep_alive && reply.status == 200;
                (reply, req.method == "HEAD", keep)
            }
        };
        if reply.status >= 500 {
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
fn scrape(shared: &Arc<Shared>, limit: Duration) -> Reply {
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
            let _ = tx.send(worker.snapshot());
        });
    if let Err(e) = spawned {
        return Reply::error(500, format!("tw: starting a scrape thread: {e}"));
    }
    match rx.recv_timeout(limit) {
        Ok(Ok(body)) => Reply {
            status: 200,
            content_type: render::prometheus::CONTENT_TYPE,
            extra: None,
            body,
        },
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

impl Shared {
    /// One snapshot as exposition text.
    fn snapshot(&self) -> Result<Vec<u8>> {
        let mut notes = Vec::new();
        let snap = Snapshot::collect(&*self.cfg.source, &self.cfg.filter, &mut notes);
        if !notes.is_empty() && !self.noted.swap(true, Ordering::Relaxed) {
            log(&notes.join("; "));
        }
        let mut body = Vec::with_capacity(16 * 1024);
        render::prometheus::render(&snap?, self.cfg.top, &mut body)?;
        Ok(body)
    }
}

fn log(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "tw: serve: {msg}");
}
