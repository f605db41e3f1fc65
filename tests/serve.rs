//! `tw serve` in a namespace of the test's own: a real Prometheus server
//! (Debian's prometheus package) scrapes it and its HTTP API answers with the
//! TIME_WAIT count `tw count` gives; bad requests get 4xx and the server keeps
//! going; connections and scrapes are bounded; a stuck read times out with
//! 503 and a failed one gets 500 with the reason. Needs root.

mod common;
#[path = "support/scratch.rs"]
mod scratch;

use scratch::Scratch;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{Daemon, Net, Netns, Population};
use serde_json::Value;

const TW: &str = env!("CARGO_BIN_EXE_tw");
const SERVE: &str = "127.0.0.1:9838";

/// Starts `program` in `ns`, its output to `log`.
fn start_daemon(ns: &Netns, program: &str, args: &[&str], log: &Path, what: &str) -> Daemon {
    let log = std::fs::File::create(log).unwrap();
    let child = ns
        .cmd(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    Daemon {
        child,
        what: what.to_string(),
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// An HTTP client connection made inside the namespace.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(ns: &Netns, addr: &str) -> Client {
        Client::try_connect(ns, addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }

    fn try_connect(ns: &Netns, addr: &str) -> std::io::Result<Client> {
        let stream = ns.run(|| TcpStream::connect(addr))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Client {
            stream,
            buf: Vec::new(),
        })
    }

    fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).unwrap();
    }

    fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        self.response(false)
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).expect("reading a response");
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Reads one response: Content-Length or chunked body (none for HEAD).
    fn response(&mut self, head_only: bool) -> Response {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(self.fill() > 0, "connection closed before a response");
        };
        let head = String::from_utf8(self.buf.drain(..end).collect()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: BTreeMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = Vec::new();
        if head_only {
        } else if let Some(n) = headers.get("content-length") {
            let n: usize = n.parse().unwrap();
            while self.buf.len() < n {
                assert!(self.fill() > 0, "body cut short");
            }
            body = self.buf.drain(..n).collect();
        } else if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
            loop {
                let line_end = loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    assert!(self.fill() > 0, "chunk cut short");
                };
                let size_line =
                    String::from_utf8(self.buf.drain(..line_end + 2).collect()).unwrap();
                let size = usize::from_str_radix(size_line.trim(), 16).unwrap();
                while self.buf.len() < size + 2 {
                    assert!(self.fill() > 0, "chunk cut short");
                }
                body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
        }
        Response {
            status,
            headers,
            body: String::from_utf8(body).unwrap(),
        }
    }

    /// Closes with RST (SO_LINGER 0), so that neither side keeps a
    /// TIME_WAIT that would change the counts under test.
    fn abort(self) {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt reads `linger` for the given length only.
        let rc = unsafe {
            libc::setsockopt(
                self.stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "SO_LINGER");
    }
}

/// One request on its own connection, closed with RST afterwards.
fn get(ns: &Netns, addr: &str, path: &str) -> Response {
    let mut c = Client::connect(ns, addr);
    let r = c.get(path);
    c.abort();
    r
}

/// One raw request on its own connection, ended as the server wants.
fn raw(ns: &Netns, bytes: &[u8]) -> Response {
    let mut c = Client::connect(ns, SERVE);
    c.send(bytes);
    let r = c.response(false);
    c.abort();
    r
}

/// Polls `path` until `done` accepts the response, for at most `limit`.
fn wait_for(
    ns: &Netns,
    addr: &str,
    path: &str,
    limit: Duration,
    done: impl Fn(&Response) -> bool,
) -> Response {
    let deadline = Instant::now() + limit;
    loop {
        match Client::try_connect(ns, addr) {
            Ok(mut c) => {
                let r = c.get(path);
                c.abort();
                if done(&r) {
                    return r;
                }
                if Instant::now() > deadline {
                    panic!("{addr}{path}: last answer {r:?}");
                }
            }
            Err(e) if Instant::now() > deadline => panic!("{addr} never listened: {e}"),
            Err(_) => {}
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn start_serve(ns: &Netns, dir: &Path, extra: &[&str]) -> Daemon {
    let mut args = vec!["serve", "--listen", SERVE];
    args.extend_from_slice(extra);
    let d = start_daemon(ns, TW, &args, &dir.join("serve.log"), "tw serve");
    wait_for(ns, SERVE, "/healthz", Duration::from_secs(10), |r| {
        r.status == 200
    });
    d
}

fn tw_count(ns: &Netns, args: &[&str]) -> f64 {
    let out = ns.output(TW, args);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Percent-encodes a PromQL query for a URL.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query through Prometheus's HTTP API: one value per series,
/// keyed by the series' labels as JSON.
fn query(ns: &Netns, q: &str) -> Vec<(Value, f64)> {
    let r = get(
        ns,
        "127.0.0.1:9090",
        &format!("/api/v1/query?query={}", encode(q)),
    );
    assert_eq!(r.status, 200, "{q}: {r:?}");
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let value = s["value"][1].as_str().unwrap().parse().unwrap();
            (s["metric"].clone(), value)
        })
        .collect()
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn prometheus_scrapes_tw_serve_and_its_api_gives_tw_counts_numbers() {
    for probe in ["prometheus", "setpriv"] {
        let ok = Command::new(probe).arg("--version").output();
        assert!(
            matches!(&ok, Ok(o) if o.status.success()),
            "needs {probe}: `apt-get install prometheus` (.ci/setup.d/50-prometheus.sh) \
             and util-linux: {ok:?}"
        );
    }
    let ns = Netns::new("prom");
    let dir = Scratch::new("prom");
    let _pop = Population::builder()
        .listeners(Net::V4, 2)
        .established(Net::V4, 3)
        .time_wait(Net::V4, 150)
        .time_wait(Net::V6, 20)
        .build(&ns);

    // As the systemd unit runs it: an unprivileged user with no capabilities
    // at all (sock_diag and /proc/net need none for TCP).
    let _serve = {
        let args = [
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            TW,
            "serve",
            "--listen",
            SERVE,
        ];
        let d = start_daemon(&ns, "setpriv", &args, &dir.0.join("serve.log"), "tw serve");
        wait_for(&ns, SERVE, "/healthz", Duration::from_secs(10), |r| {
            r.status == 200
        });
        d
    };
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: tw\n    scrape_timeout: 1s\n    \
             static_configs:\n      - targets: ['{SERVE}']\n"
        ),
    )
    .unwrap();
    let mut prom = start_daemon(
        &ns,
        "prometheus",
        &[
            &format!("--config.file={}", config.display()),
            &format!("--storage.tsdb.path={}", dir.0.join("data").display()),
            "--web.listen-address=127.0.0.1:9090",
        ],
        &dir.0.join("prometheus.log"),
        "prometheus",
    );
    wait_for(
        &ns,
        "127.0.0.1:9090",
        "/-/ready",
        Duration::from_secs(30),
        |r| r.status == 200,
    );
    let tw_query = "sum(tw_sockets{state=\"TIME_WAIT\"})";
    let deadline = Instant::now() + Duration::from_secs(20);
    let from_prometheus = loop {
        if let Some((_, v)) = query(&ns, tw_query).first() {
            break *v;
        }
        prom.assert_running();
        assert!(
            Instant::now() < deadline,
            "no scrape landed; prometheus log: {}",
            std::fs::read_to_string(dir.0.join("prometheus.log")).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(200));
    };
    let from_tw = tw_count(&ns, &["count", "--state", "time-wait"]);
    assert_eq!(from_prometheus, from_tw);
    assert_eq!(from_tw, 170.0, "the population's TIME_WAIT");

    // Direction and a destination's ports, through PromQL too.
    let out = query(&ns, "tw_time_wait_sockets{direction=\"out\"}");
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        out[0].1,
        tw_count(
            &ns,
            &["count", "--state", "time-wait", "--direction", "out"]
        )
    );
    let ports: Value =
        serde_json::from_slice(&ns.output(TW, &["ports", "--format", "json"]).stdout).unwrap();
    let d = &ports["destinations"][0];
    let held = query(
        &ns,
        &format!(
            "tw_destination_ports_held{{peer=\"{}\"}} / tw_destination_ports_capacity",
            d["peer"].as_str().unwrap()
        ),
    );
    let usable = ports["capacity"]["preferred_parity"].as_f64().unwrap()
        + ports["capacity"]["other_parity"].as_f64().unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].1, d["held"].as_f64().unwrap() / usable);
    assert_eq!(held[0].0["local"], d["local"]);
    let up = query(&ns, "up{job=\"tw\"}");
    assert_eq!(up[0].1, 1.0, "{up:?}");

    // Prometheus keeps one connection: scrapes leave no TIME_WAIT behind.
    let deadline = Instant::now() + Duration::from_secs(15);
    while query(&ns, "count_over_time(up{job=\"tw\"}[1m])")[0].1 < 3.0 {
        assert!(Instant::now() < deadline, "Prometheus stopped scraping");
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        tw_count(&ns, &["count", "--state", "time-wait", "--sport", "9838"]),
        0.0
    );
    assert_eq!(
        tw_count(&ns, &["count", "--state", "time-wait", "--dport", "9838"]),
        0.0
    );
    prom.assert_running();
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn bad_requests_get_4xx_and_the_server_keeps_going() {
    let ns = Netns::new("serve-http");
    let dir = Scratch::new("http");
    let mut serve = start_serve(&ns, &dir.0, &[]);

    let cases: &[(&[u8], u16, &str)] = &[
        (b"GET /nope HTTP/1.1\r\n\r\n", 404, "/nope not found"),
        (
            b"GET / HTTP/1.1\r\n\r\n",
            404,
            "tw serves /metrics and /healthz",
        ),
        (
            b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            405,
            "POST not allowed",
        ),
        (
            b"DELETE /healthz HTTP/1.1\r\n\r\n",
            405,
            "DELETE not allowed",
        ),
        (b"hello there\r\n\r\n", 400, "bad request"),
        (
            b"GET http://x/metrics HTTP/1.1\r\n\r\n",
            400,
            "must be a path",
        ),
        (
            b"GET /metrics HTTP/1.1\r\nNo colon here\r\n\r\n",
            400,
            "without a colon",
        ),
        (
            b"GET /metrics HTTP/2.0\r\n\r\n",
            505,
            "HTTP/2.0 not supported",
        ),
        (b"GET /metrics SPDY/3\r\n\r\n", 400, "HTTP/1.0 or HTTP/1.1"),
    ];
    for (req, status, text) in cases {
        let r = raw(&ns, req);
        let shown = String::from_utf8_lossy(req);
        assert_eq!(r.status, *status, "{shown:?}: {r:?}");
        assert!(
            r.body.starts_with("tw: ") && r.body.contains(text),
            "{shown:?}: {r:?}"
        );
        assert_eq!(
            r.headers.get("connection").map(String::as_str),
            Some("close")
        );
        if *status == 405 {
            assert_eq!(r.headers["allow"], "GET, HEAD");
        }
        serve.assert_running();
        assert_eq!(get(&ns, SERVE, "/healthz").status, 200, "after {shown:?}");
    }

    // A head over 8 KiB, and one cut off before its blank line.
    let mut big = b"GET /metrics HTTP/1.1\r\n".to_vec();
    big.extend(std::iter::repeat_n(b"X-Filler: aaaaaaaaaaaaaaaa\r\n".as_slice(), 400).flatten());
    assert_eq!(raw(&ns, &big).status, 431);
    let mut c = Client::connect(&ns, SERVE);
    c.send(b"GET /healthz HTTP/1.1\r\nHost: t");
    c.stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.response(false).status, 400);
    serve.assert_running();

    // Kept alive: pipelined requests on one connection, HEAD without a body.
    let mut c = Client::connect(&ns, SERVE);
    c.send(b"GET /healthz HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n");
    for _ in 0..2 {
        let r = c.response(false);
        assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
        assert!(!r.headers.contains_key("connection"), "{r:?}");
    }
    c.send(b"HEAD /metrics HTTP/1.1\r\n\r\n");
    let head = c.response(true);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(head.headers["content-length"].parse::<usize>().unwrap() > 1000);
    let m = c.get("/metrics?ignored=1");
    assert_eq!(m.status, 200, "{m:?}");
    assert!(
        m.body.contains("# TYPE tw_sockets gauge"),
        "HEAD sent no body before this"
    );
    c.abort();

    // Asked to close, the server lets the client close first: the TIME_WAIT
    // is the client's, none stays on the server's port.
    let mut c = Client::connect(&ns, SERVE);
    c.send(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.headers["connection"], "close");
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tw_count(&ns, &["count", "--state", "time-wait", "--dport", "9838"]) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the client's TIME_WAIT never showed"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        tw_count(&ns, &["count", "--state", "time-wait", "--sport", "9838"]),
        0.0
    );
    serve.assert_running();
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn connections_are_bounded_and_freed() {
    let ns = Netns::new("serve-conns");
    let dir = Scratch::new("conns");
    let mut serve = start_serve(&ns, &dir.0, &[]);
    // Silent connections fill every slot (each waits 5 s for a request).
    let idle: Vec<Client> = (0..tw::serve::MAX_CONNECTIONS)
        .map(|_| Client::connect(&ns, SERVE))
        .collect();
    // The accept loop counts them as they arrive; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    let busy = loop {
        let r = get(&ns, SERVE, "/healthz");
        if r.status == 503 || Instant::now() > deadline {
            break r;
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(busy.status, 503, "{busy:?}");
    assert!(busy.body.contains("busy: 16 connections"), "{busy:?}");
    serve.assert_running();
    for c in idle {
        c.abort();
    }
    wait_for(&ns, SERVE, "/healthz", Duration::from_secs(3), |r| {
        r.status == 200
    });
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn a_stuck_read_times_out_scrapes_are_bounded_and_a_failed_read_says_why() {
    let ns = Netns::new("serve-stuck");
    let dir = Scratch::new("stuck");
    let root = dir.0.join("proc");
    std::fs::create_dir_all(root.join("net")).unwrap();
    let table =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/procroot/live/net/tcp"))
            .unwrap();
    // net/tcp as a FIFO with a writer that says nothing: a read that never
    // returns, as a wedged /proc or netlink read would.
    let fifo = root.join("net/tcp");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let mut writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let mut serve = start_serve(
        &ns,
        &dir.0,
        &[
            "--source",
            "proc",
            "--proc-root",
            root.to_str().unwrap(),
            "--timeout",
            "1",
        ],
    );

    for _ in 0..tw::serve::MAX_SCRAPES {
        let r = get(&ns, SERVE, "/metrics");
        assert_eq!(r.status, 503, "{r:?}");
        assert!(r.body.contains("scrape took longer than 1.0 s"), "{r:?}");
    }
    // Both stuck reads still hold their slots.
    let r = get(&ns, SERVE, "/metrics");
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.body.contains("busy: 2 scrapes already running"), "{r:?}");
    assert_eq!(get(&ns, SERVE, "/healthz").status, 200);
    serve.assert_running();

    // Unwedge: a real table for the next reads, and data then EOF for the
    // stuck ones, which end and give their slots back.
    let real = root.join("net/tcp.new");
    std::fs::write(&real, &table).unwrap();
    std::fs::rename(&real, &fifo).unwrap();
    writer.write_all(&table).unwrap();
    drop(writer);
    let ok = wait_for(&ns, SERVE, "/metrics", Duration::from_secs(5), |r| {
        r.status == 200
    });
    assert!(
        ok.body
            .contains("tw_sockets{family=\"inet\",state=\"LISTEN\"}"),
        "{ok:?}"
    );

    // A table that does not parse: 500 with the file and the reason.
    let header = table.split(|b| *b == b'\n').next().unwrap();
    std::fs::write(&fifo, [header, b"\n   0: not a socket line\n"].concat()).unwrap();
    let r = get(&ns, SERVE, "/metrics");
    assert_eq!(r.status, 500, "{r:?}");
    assert!(
        r.body.starts_with("tw: ") && r.body.contains("net/tcp"),
        "{r:?}"
    );
    serve.assert_running();
    std::fs::write(&fifo, &table).unwrap();
    assert_eq!(get(&ns, SERVE, "/metrics").status, 200);
    // Each 5xx is logged once, with its reason.
    let log = std::fs::read_to_string(dir.0.join("serve.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tw: serve: scrape took longer")),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tw: serve: busy: 2 scrapes")),
        "{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tw: serve: ") && l.contains("net/tcp:")),
        "{log}"
    );
}
