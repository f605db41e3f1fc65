//! The HTTP/1.1 that `tw serve` speaks, as pure functions over bytes:
//! request heads in, routes and replies out. No I/O but writing a reply.

use std::io::{self, Write};
use std::time::Duration;

/// Where the head ends: after "\r\n\r\n" (or a bare "\n\n", which RFC 9112
/// lets a server accept).
pub(crate) fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
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
    /// `Accept` prefers OpenMetrics text to the text format 0.0.4.
    pub openmetrics: bool,
    /// `Accept-Encoding` takes gzip.
    pub gzip: bool,
}

/// Parses a request head (request line and headers, up to the blank line).
/// A malformed one gets its 4xx/5xx reply.
pub fn parse_request(head: &[u8]) -> Result<Request<'_>, Reply> {
    let bad = |why: &str| Reply::error(400, format!("tw: bad request: {why}"));
    let text = std::str::from_utf8(head).map_err(|_| bad("not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().unwrap_or_default();
    // RFC 9112: no control characters in a request line. Its method and
    // path are echoed in replies and in the log.
    if line.chars().any(char::is_control) {
        return Err(bad("control characters in the request line"));
    }
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
    let (mut openmetrics, mut gzip) = (false, false);
    for h in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = h.split_once(':') else {
            return Err(bad("header line without a colon"));
        };
        let (name, value) = (name.to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "x-prometheus-scrape-timeout-seconds" => {
                // Any positive number; one too large for a Duration (1e300)
                // is no limit of Prometheus's, and `--timeout` applies.
                scrape_timeout = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    // Below a nanosecond it rounds to zero, which would fail
                    // every scrape at once: no limit of Prometheus's either.
                    .filter(|d| !d.is_zero());
            }
            "connection"
                if value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("close")) =>
            {
                keep_alive = false;
            }
            "accept" => openmetrics = prefers_openmetrics(value),
            "accept-encoding" => gzip = quality(value, |c| c == "gzip" || c == "*") > 0.0,
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
        openmetrics,
        gzip,
    })
}

/// The highest quality (RFC 9110 section 12.4.2, `;q=`) that a comma-separated
/// header gives to an entry `matches` takes, 0 when none does. Parameters
/// other than q are ignored.
fn quality(header: &str, matches: impl Fn(&str) -> bool) -> f64 {
    header
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(';').map(str::trim);
            let what = parts.next()?.to_ascii_lowercase();
            if !matches(&what) {
                return None;
            }
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, v)| v.trim().parse::<f64>().ok())?;
            Some(q.clamp(0.0, 1.0))
        })
        .fold(0.0, f64::max)
}

/// OpenMetrics when the client ranks it at least as high as the text
/// format: Prometheus sends `application/openmetrics-text;version=1.0.0;q=0.5,
/// ...,text/plain;version=0.0.4;q=0.3,*/*;q=0.2` (scrape/scrape.go,
/// acceptHeader). Without `Accept`, or with only `*/*`, the text format.
fn prefers_openmetrics(accept: &str) -> bool {
    let om = quality(accept, |t| t == "application/openmetrics-text");
    let text = quality(accept, |t| t == "text/plain");
    om > 0.0 && om >= text
}

/// `--listen`: `HOST:PORT` where HOST is a name (`localhost`), an IPv4
/// address or an IPv6 one in brackets. Returns the host, without brackets,
/// and the port; resolving the name is the caller's.
pub fn split_listen(s: &str) -> Result<(&str, u16), String> {
    let usage = "expected HOST:PORT, such as localhost:9838, 0.0.0.0:9838 or [::1]:9838";
    if s.ends_with(']') {
        return Err(format!("--listen {s}: no port; {usage}"));
    }
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("--listen {s}: {usage}"))?;
    let host = match host.strip_prefix('[') {
        Some(h) => h
            .strip_suffix(']')
            .filter(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
            .ok_or_else(|| format!("--listen {s}: [...] holds an IPv6 address; {usage}"))?,
        // An IPv6 address without brackets: its last group would read as
        // the port.
        None if host.contains(':') => {
            return Err(format!(
                "--listen {s}: put an IPv6 address in brackets; {usage}"
            ))
        }
        None => host,
    };
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    if !name_ok {
        return Err(format!(
            "--listen {s}: `{host}` is not a host name or address; {usage}"
        ));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("--listen {s}: the port must be a number from 0 to 65535"))?;
    Ok((host, port))
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
    /// The body is gzip-compressed (Content-Encoding: gzip).
    pub gzipped: bool,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn text(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            extra: None,
            gzipped: false,
            body: body.into_bytes(),
        }
    }

    /// The body gzip-compressed, for a client whose Accept-Encoding takes
    /// it: a quarter of the bytes for tw's text (10.5 kB to 2.6 kB on
    /// fixtures/procroot/live), mostly the repeated HELP and label text.
    pub(crate) fn gzip(mut self) -> io::Result<Reply> {
        use flate2::{write::GzEncoder, Compression};
        let mut enc = GzEncoder::new(Vec::with_capacity(self.body.len() / 8), Compression::fast());
        enc.write_all(&self.body)?;
        self.body = enc.finish()?;
        self.gzipped = true;
        Ok(self)
    }

    pub(crate) fn error(status: u16, mut msg: String) -> Reply {
        msg.push('\n');
        Reply::text(status, msg)
    }

    /// Writes the reply; `keep` leaves the connection open for another
    /// request, otherwise the reply says `Connection: close`.
    pub(crate) fn write_to(
        &self,
        out: &mut dyn Write,
        head_only: bool,
        keep: bool,
    ) -> io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if self.gzipped {
            head.push_str("Content-Encoding: gzip\r\n");
        }
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

    /// Issue 12 item 3: `Duration::from_secs_f64(1e300)` panicked the connection's thread.
    #[test]
    fn a_scrape_timeout_too_large_for_a_duration_is_no_limit_not_a_panic() {
        for huge in ["1e300", "1.9e19", "inf", "Infinity", "1e309"] {
            let raw = format!(
                "GET /metrics HTTP/1.1\r\nX-Prometheus-Scrape-Timeout-Seconds: {huge}\r\n\r\n"
            );
            let r = std::panic::catch_unwind(|| {
                parse_request(raw.as_bytes()).map(|r| r.scrape_timeout)
            });
            assert_eq!(r.ok().and_then(Result::ok), Some(None), "{huge}");
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
    fn openmetrics_and_gzip_when_the_client_asks() {
        let req = |headers: &str| {
            let raw = format!("GET /metrics HTTP/1.1\r\n{headers}\r\n");
            let r = parse_request(raw.as_bytes()).unwrap();
            (r.openmetrics, r.gzip)
        };
        // What Prometheus 2.x and 3.x send (scrape/scrape.go).
        let prometheus = "Accept: application/openmetrics-text;version=1.0.0;q=0.5,\
            application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,\
            */*;q=0.2\r\nAccept-Encoding: gzip\r\n";
        assert_eq!(req(prometheus), (true, true));
        assert_eq!(req(""), (false, false));
        assert_eq!(req("Accept: */*\r\n"), (false, false));
        assert_eq!(
            req("Accept: text/plain;version=0.0.4,application/openmetrics-text;q=0.9\r\n"),
            (false, false)
        );
        assert_eq!(
            req("Accept: Application/OpenMetrics-Text\r\n"),
            (true, false)
        );
        assert_eq!(
            req("Accept: application/openmetrics-text;q=0\r\n"),
            (false, false)
        );
        assert_eq!(
            req("Accept-Encoding: gzip;q=0, identity\r\n"),
            (false, false)
        );
        assert_eq!(
            req("Accept-Encoding: deflate, GZIP;q=0.5\r\n"),
            (false, true)
        );
        assert_eq!(req("Accept-Encoding: *\r\n"), (false, true));
        assert_eq!(req("Accept-Encoding: br\r\n"), (false, false));
    }

    #[test]
    fn listen_takes_names_and_bracketed_ipv6() {
        assert_eq!(split_listen("localhost:9838"), Ok(("localhost", 9838)));
        assert_eq!(split_listen("127.0.0.1:0"), Ok(("127.0.0.1", 0)));
        assert_eq!(split_listen("[::1]:9838"), Ok(("::1", 9838)));
        assert_eq!(
            split_listen("node-1.example.net:80"),
            Ok(("node-1.example.net", 80))
        );
        for bad in [
            "localhost",
            "::1:9838",
            "[nothost]:9838",
            ":9838",
            "localhost:http",
            "localhost:65536",
            "a b:1",
            "[::1]",
        ] {
            let err = split_listen(bad).unwrap_err();
            assert!(err.starts_with(&format!("--listen {bad}: ")), "{err}");
        }
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

    #[test]
    fn gzip_replies_say_so_and_decompress_to_the_body() {
        use std::io::Read;
        let body = "tw_sockets{family=\"inet\",state=\"time_wait\"} 3\n".repeat(100);
        let r = Reply::text(200, body.clone()).gzip().unwrap();
        assert!(r.body.len() < body.len() / 10, "{} bytes", r.body.len());
        let mut out = Vec::new();
        r.write_to(&mut out, false, true).unwrap();
        let end = head_end(&out).unwrap();
        let head = String::from_utf8(out[..end].to_vec()).unwrap();
        assert!(head.contains("Content-Encoding: gzip\r\n"), "{head}");
        assert!(head.contains(&format!("Content-Length: {}\r\n", r.body.len())));
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&out[end..])
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, body);
    }
}
