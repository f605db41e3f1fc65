//! `tw serve`: the endpoint Prometheus scrapes. HTTP/1.1 over std::net with
//! two paths: `/metrics` (a fresh [`Snapshot`] per request, under a time
//! limit) and `/healthz`. Nothing else is served.
//!
//! Bounds, so that a stuck read or a flood of clients cannot pile up
//! threads: at most [`MAX_CONNECTIONS`] connections are served at once (more
//! are answered 503 by one rejecting thread), at most [`MAX_SCRAPES`]
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
//! The HTTP parsing ([`parse_request`], [`route`]) is pure; [`serve`] and
//! the connection handling are the I/O half.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cli::ServeArgs;
use crate::filter::Filter;
use crate::metrics::Snapshot;
use crate::render;
use crate::source::SourceSpec;

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
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Time limit of one scrape; Prometheus's own, when it sends a shorter
    /// one (X-Prometheus-Scrape-Timeout-Seconds), wins.
    pub timeout: Duration,
    /// Destinations per scrape (`--top`).
    pub top: usize,
    pub spec: SourceSpec,
    pub filter: Filter,
}

impl Config {
    pub fn new(args: &ServeArgs, spec: &SourceSpec, filter: &Filter) -> Config {
        Config {
            listen: args.listen,
            timeout: Duration::from_secs(args.timeout),
            top: args.metrics.top,
            spec: spec.clone(),
            filter: filter.clone(),
        }
    }
}

struct Shared {
    cfg: Config,
    /// Counters behind [`Slot`]s, which move into threads.
    connections: Arc<AtomicUsize>,
    scrapes: Arc<AtomicUsize>,
    /// A note (fallback to /proc, --from without facts) is logged once, not
    /// on every scrape.
    noted: AtomicBool,
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
        let Some(slot) = Slot::take(&shared.connections, MAX_CONNECTIONS) else {
            // Past the queue too, the connection is closed unanswered.
            let _ = reject.try_send(stream);
            continue;
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
        let head = match read_head(&mut stream, &mut buf, wait) {
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

/// Where the head ends: after "\r\n\r\n" (or a bare "\n\n", which RFC 9112
/// lets a server accept).
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
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
            content_type: render::metrics::CONTENT_TYPE,
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
        let snap = Snapshot::collect(&self.cfg.spec, &self.cfg.filter, &mut notes);
        if !notes.is_empty() && !self.noted.swap(true, Ordering::Relaxed) {
            log(String::from_utf8_lossy(&notes)
                .trim_end()
                .trim_start_matches("tw: "));
        }
        let mut body = Vec::with_capacity(16 * 1024);
        render::metrics::render(&snap?, self.cfg.top, &mut body)?;
        Ok(body)
    }
}

fn log(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "tw: serve: {msg}");
}

/// The parts of a request that matter here.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The path, without its query string.
    pub path: &'a str,
    /// X-Prometheus-Scrape-Timeout-Seconds, when sent and valid.
    pub scrape_timeout: Option<Duration>,
    /// HTTP/1.1 without `Connection: close`, and no body to skip.
    pub keep_alive: bool,
}

/// Parses a request head (request line and headers, up to the blank line).
/// A malformed one gets its 4xx/5xx reply.
pub fn parse_request(head: &[u8]) -> Result<Request<'_>, Reply> {
    let bad = |why: &str| Reply::error(400, format!("tw: bad request: {why}"));
    let text = std::str::from_utf8(head).map_err(|_| bad("not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected `METHOD /path HTTP/1.1`"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad("method must be an upper-case token"));
    }
    match version {
        "HTTP/1.0" | "HTTP/1.1" => {}
        v if v.starts_with("HTTP/") => {
            return Err(Reply::error(
                505,
                format!("tw: {v} not supported: HTTP/1.1 only"),
            ))
        }
        _ => return Err(bad("expected HTTP/1.0 or HTTP/1.1")),
    }
    if !target.starts_with('/') {
        return Err(bad("the target must be a path such as /metrics"));
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let mut scrape_timeout = None;
    let mut keep_alive = version == "HTTP/1.1";
    for h in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = h.split_once(':') else {
            return Err(bad("header line without a colon"));
        };
        let (name, value) = (name.to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "x-prometheus-scrape-timeout-seconds" => {
                scrape_timeout = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64);
            }
            "connection"
                if value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("close")) =>
            {
                keep_alive = false;
            }
            // A body is never read, so the connection cannot be reused.
            "transfer-encoding" => keep_alive = false,
            "content-length" if value != "0" => keep_alive = false,
            _ => {}
        }
    }
    Ok(Request {
        method,
        path,
        scrape_timeout,
        keep_alive,
    })
}

/// What a request asks for.
#[derive(Debug)]
pub enum Route {
    Metrics,
    Health,
    Error(Reply),
}

/// Paths first (404 for anything else), then methods (405 but for GET and
/// HEAD).
pub fn route(req: &Request) -> Route {
    let route = match req.path {
        "/metrics" => Route::Metrics,
        "/healthz" => Route::Health,
        p => {
            return Route::Error(Reply::error(
                404,
                format!("tw: {p} not found: tw serves /metrics and /healthz"),
            ))
        }
    };
    if req.method != "GET" && req.method != "HEAD" {
        let mut reply = Reply::error(405, format!("tw: {} not allowed: use GET", req.method));
        reply.extra = Some("Allow: GET, HEAD");
        return Route::Error(reply);
    }
    route
}

/// A response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub extra: Option<&'static str>,
    pub body: Vec<u8>,
}

impl Reply {
    fn text(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            extra: None,
            body: body.into_bytes(),
        }
    }

    fn error(status: u16, mut msg: String) -> Reply {
        msg.push('\n');
        Reply::text(status, msg)
    }

    /// Writes the reply; `keep` leaves the connection open for another
    /// request, otherwise the reply says `Connection: close`.
    fn write_to(&self, out: &mut dyn Write, head_only: bool, keep: bool) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if !keep {
            head.push_str("Connection: close\r\n");
        }
        if let Some(h) = self.extra {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        if !head_only {
            out.write_all(&self.body)?;
        }
        out.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_or_get_their_status() {
        /// Request, then (method, path, keep-alive) or the error status.
        type Case<'a> = (&'a str, Result<(&'a str, &'a str, bool), u16>);
        let cases: &[Case] = &[
            (
                "GET /metrics HTTP/1.1\r\n\r\n",
                Ok(("GET", "/metrics", true)),
            ),
            (
                "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                Ok(("HEAD", "/healthz", true)),
            ),
            (
                "GET /metrics?x=1 HTTP/1.1\n\n",
                Ok(("GET", "/metrics", true)),
            ),
            (
                "GET /metrics HTTP/1.0\r\n\r\n",
                Ok(("GET", "/metrics", false)),
            ),
            (
                "GET /metrics HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n",
                Ok(("GET", "/metrics", false)),
            ),
            (
                "POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\n",
                Ok(("POST", "/metrics", false)),
            ),
            ("GET /metrics HTTP/2.0\r\n\r\n", Err(505)),
            ("GET /metrics\r\n\r\n", Err(400)),
            ("get /metrics HTTP/1.1\r\n\r\n", Err(400)),
            ("GET  /metrics HTTP/1.1\r\n\r\n", Err(400)),
            ("GET metrics HTTP/1.1\r\n\r\n", Err(400)),
            ("GET /metrics HTTP/1.1\r\nbroken\r\n\r\n", Err(400)),
            (
                "GET /m\u{e9}trics HTTP/1.1\r\n\r\n",
                Ok(("GET", "/m\u{e9}trics", true)),
            ),
        ];
        for (raw, want) in cases {
            let got = parse_request(raw.as_bytes())
                .map(|r| (r.method, r.path, r.keep_alive))
                .map_err(|e| e.status);
            assert_eq!(&got, want, "{raw:?}");
        }
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\n\xff\r\n\r\n")
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn prometheus_scrape_timeout_header_is_read() {
        let r = parse_request(
            b"GET /metrics HTTP/1.1\r\nX-Prometheus-Scrape-Timeout-Seconds: 2.5\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.scrape_timeout, Some(Duration::from_millis(2500)));
        for bad in ["0", "-1", "NaN", "soon"] {
            let raw = format!(
                "GET /metrics HTTP/1.1\r\nx-prometheus-scrape-timeout-seconds: {bad}\r\n\r\n"
            );
            assert_eq!(
                parse_request(raw.as_bytes()).unwrap().scrape_timeout,
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn paths_before_methods() {
        let status = |raw: &str| match route(&parse_request(raw.as_bytes()).unwrap()) {
            Route::Metrics => 0,
            Route::Health => 1,
            Route::Error(r) => r.status,
        };
        assert_eq!(status("GET /metrics HTTP/1.1\r\n\r\n"), 0);
        assert_eq!(status("HEAD /healthz HTTP/1.1\r\n\r\n"), 1);
        assert_eq!(status("POST /metrics HTTP/1.1\r\n\r\n"), 405);
        assert_eq!(status("POST /other HTTP/1.1\r\n\r\n"), 404);
        assert_eq!(status("GET /metrics/ HTTP/1.1\r\n\r\n"), 404);
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nGET"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nx"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn replies_close_only_when_asked() {
        let mut out = Vec::new();
        let r = Reply::error(404, "tw: nope".into());
        r.write_to(&mut out, false, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("Content-Length: 9\r\nConnection: close\r\n\r\ntw: nope\n"));
        let mut out = Vec::new();
        Reply::text(200, "ok\n".into())
            .write_to(&mut out, true, true)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("Content-Length: 3\r\n\r\n"),
            "HEAD: no body: {text}"
        );
        assert!(!text.contains("Connection"));
    }
}
