//! `tw serve`'s eBPF event counters and its background snapshot.
//!
//! Live (root, own namespace): a driver process (tests/support/trace_driver.rs) makes a known
//! number of client-closed connections, and the time_wait counters of its destination and of its
//! process grow by that number between two scrapes (also with `--netns` from outside); past
//! `--max-series` destinations count into `other` and every counter only grows from scrape to
//! scrape; a connection accepted before tw serve started counts at its listening port, not as a
//! destination; promtool accepts the exposition; without privilege serve still serves the gauges
//! and says once why there are no counters.
//! Without root: a capture has no counters and no complaint, `--events on` on one is one line
//! and exit 2, and with `--refresh` a scrape answers from the last snapshot while the next one is
//! wedged in a read that never returns.

mod common;
#[path = "support/driver.rs"]
mod driver;
#[path = "support/scratch.rs"]
mod scratch;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_promtool_accepts, run_bounded, Daemon, Netns};
use scratch::Scratch;

const TW: &str = env!("CARGO_BIN_EXE_tw");
const SERVE: &str = "127.0.0.1:9838";
/// The time_wait events of the whole namespace.
const NS_TIME_WAIT: &str = "tw_events_total{event=\"time_wait\"}";

/// The driver's file name; the kernel's process name for it is its first 15 bytes.
const DRIVER: &str = "serve_events_driver";
const DRIVER_COMM: &str = "serve_events_dr";

/// Runs the driver in `ns` to completion (bounded); what it printed.
fn drive(ns: &Netns, args: &[&str]) -> BTreeMap<String, f64> {
    driver::drive(DRIVER, ns, args).said
}

/// A server that reads each connection to EOF and closes it, so the client closes first and
/// keeps the TIME_WAIT.
struct Server(#[allow(dead_code)] driver::Server);

impl Server {
    fn start(ns: &Netns, addr: &str) -> Server {
        Server(driver::Server::start(ns, addr, false))
    }
}

/// One kept-alive connection to tw serve for every scrape of a test: a
/// connection per scrape would itself be a destination in the counters.
struct Scraper {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Scraper {
    fn connect(stream: TcpStream) -> Scraper {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Scraper {
            stream,
            buf: Vec::new(),
        }
    }

    /// GET /metrics: the status and the body (Content-Length).
    fn get(&mut self, path: &str) -> (u16, String) {
        write!(self.stream, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill();
        };
        let head = String::from_utf8(self.buf.drain(..end).collect()).unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .expect("a Content-Length");
        while self.buf.len() < len {
            self.fill();
        }
        let body = String::from_utf8(self.buf.drain(..len).collect()).unwrap();
        (status, body)
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 16384];
        let n = self.stream.read(&mut chunk).expect("reading a response");
        assert!(n > 0, "connection closed before a whole response");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// A 200 scrape's body.
    fn metrics(&mut self) -> String {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Scrapes until `series` has grown by `want` since `before`, or has
    /// come within 2% of it and stopped growing (two scrapes 300 ms apart,
    /// past serve's 200 ms drain), for at most 10 s (a loaded machine may
    /// lag): the last scrape, for the caller's assertions.
    fn settled(&mut self, before: &str, series: &str, want: f64) -> String {
        let from = samples(before).get(series).copied().unwrap_or(0.0);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = f64::NAN;
        loop {
            let body = self.metrics();
            let grown = samples(&body).get(series).copied().unwrap_or(0.0) - from;
            let near = (grown - want).abs() <= (want * 0.02).max(1.0);
            if grown >= want || (near && grown == last) || Instant::now() > deadline {
                return body;
            }
            last = grown;
            thread::sleep(Duration::from_millis(300));
        }
    }
}

/// Waits until tw serve in `ns` answers, and returns a scraper on it.
fn scraper_in(ns: &Netns, addr: &str) -> Scraper {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match ns.run(|| TcpStream::connect(addr)) {
            Ok(s) => return Scraper::connect(s),
            Err(e) if Instant::now() > deadline => panic!("{addr} never listened: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn start_serve(ns: &Netns, program: &str, args: &[&str], log: &Path) -> Daemon {
    let file = std::fs::File::create(log).unwrap();
    let child = ns
        .cmd(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("starting tw serve");
    Daemon {
        child,
        what: "tw serve".into(),
    }
}

/// Every sample of a scrape: `name{labels}` to value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// The samples of the counters (`_total`).
fn counters(text: &str) -> BTreeMap<String, f64> {
    samples(text)
        .into_iter()
        .filter(|(k, _)| k.split('{').next().unwrap().ends_with("_total"))
        .collect()
}

fn value(text: &str, series: &str) -> f64 {
    *samples(text)
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn dest_time_wait(port: u16) -> String {
    format!(
        "tw_destination_events_total{{peer_address=\"127.0.0.1\",peer_port=\"{port}\",\
         event=\"time_wait\"}}"
    )
}

/// Within 2% of `want` (and at least one event either way on small counts).
fn assert_near(got: f64, want: f64, what: &str) {
    let slack = (want * 0.02).max(1.0);
    assert!(
        (got - want).abs() <= slack,
        "{what}: {got}, want {want} ± {slack}"
    );
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn time_wait_counters_grow_by_what_the_driver_made_at_its_destination_and_process() {
    let ns = Netns::new("serve-events-tw");
    let dir = Scratch::new("serve-events-tw");
    let _server = Server::start(&ns, "127.0.0.1:8080");
    let mut serve = start_serve(
        &ns,
        TW,
        &["serve", "--listen", SERVE, "--events", "on"],
        &dir.0.join("serve.log"),
    );
    let mut scraper = scraper_in(&ns, SERVE);
    let before = scraper.metrics();
    let said = drive(&ns, &["close-first", "127.0.0.1:8080", "300", "2"]);
    let made = said["made"];
    assert!(made >= 590.0, "driver made only {made}: {said:?}");
    let after = scraper.settled(&before, NS_TIME_WAIT, made);
    serve.assert_running();

    let delta = |series: &str| {
        let b = samples(&before).get(series).copied().unwrap_or(0.0);
        value(&after, series) - b
    };
    assert_near(
        delta(&dest_time_wait(8080)),
        made,
        "time_wait at 127.0.0.1:8080",
    );
    let process = format!("tw_process_events_total{{comm=\"{DRIVER_COMM}\",event=\"time_wait\"}}");
    assert_near(delta(&process), made, "time_wait of the driver");
    assert_near(
        delta("tw_events_total{event=\"time_wait\"}"),
        made,
        "time_wait in the namespace",
    );
    assert_near(
        delta("tw_events_total{event=\"connect\"}"),
        made,
        "connects in the namespace",
    );
    // No reset and no failed connect came of clean closes.
    let rst = "tw_destination_events_total{peer_address=\"127.0.0.1\",peer_port=\"8080\",\
               event=\"rst_recv\"}";
    assert_eq!(delta(rst), 0.0, "{after}");
    assert_eq!(value(&after, "tw_events_lost_total"), 0.0);
    assert_eq!(value(&after, "tw_events_undecodable_total"), 0.0);
    // The gauges are still there, and the whole is valid exposition.
    assert!(value(&after, "tw_time_wait_sockets{direction=\"out\"}") >= made * 0.98);
    assert_promtool_accepts(&after);
    let log = std::fs::read_to_string(dir.0.join("serve.log")).unwrap();
    assert!(log.contains("counting TCP events (eBPF)"), "{log}");
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn destinations_past_max_series_count_as_other_and_every_counter_only_grows() {
    let ns = Netns::new("serve-events-cap");
    let dir = Scratch::new("serve-events-cap");
    let ports: Vec<u16> = (8081..=8086).collect();
    let _servers: Vec<Server> = ports
        .iter()
        .map(|p| Server::start(&ns, &format!("127.0.0.1:{p}")))
        .collect();
    let mut serve = start_serve(
        &ns,
        TW,
        &["serve", "--listen", SERVE, "--max-series", "3"],
        &dir.0.join("serve.log"),
    );
    let mut scraper = scraper_in(&ns, SERVE);
    let mut scrapes = vec![scraper.metrics()];
    let mut made = 0.0;
    let mut made_past_cap = 0.0;
    for (i, port) in ports.iter().enumerate() {
        let said = drive(
            &ns,
            &["close-first", &format!("127.0.0.1:{port}"), "100", "1"],
        );
        made += said["made"];
        if i >= 3 {
            made_past_cap += said["made"];
        }
        let next = scraper.settled(&scrapes[0], NS_TIME_WAIT, made);
        scrapes.push(next);
    }
    serve.assert_running();
    let last = scrapes.last().unwrap();

    // The first three destinations have series of their own; the others
    // counted into `other`.
    let own: Vec<&u16> = ports
        .iter()
        .filter(|p| samples(last).contains_key(&dest_time_wait(**p)))
        .collect();
    assert_eq!(own, ports.iter().take(3).collect::<Vec<_>>(), "{last}");
    let other = "tw_destination_events_total{peer_address=\"other\",peer_port=\"other\",\
                 event=\"time_wait\"}";
    let dest_total: f64 = own
        .iter()
        .map(|p| value(last, &dest_time_wait(**p)))
        .sum::<f64>()
        + value(last, other);
    assert_near(
        dest_total,
        made,
        "time_wait over every destination and other",
    );
    assert_near(value(last, other), made_past_cap, "time_wait in other");
    let series = samples(last)
        .keys()
        .filter(|k| k.starts_with("tw_destination_events_total{"))
        .count();
    // (3 destinations + other) x 5 kinds: bounded whatever the load.
    assert_eq!(series, 4 * 5, "{last}");

    // Monotonic: every counter of a scrape is in every later one, no lower.
    for pair in scrapes.windows(2) {
        let (a, b) = (counters(&pair[0]), counters(&pair[1]));
        for (k, v) in &a {
            let w = b.get(k).unwrap_or_else(|| panic!("{k} vanished"));
            assert!(w >= v, "{k} went down: {v} then {w}");
        }
    }
    assert_promtool_accepts(last);
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn with_netns_the_counters_are_of_the_namespace_served() {
    let ns = Netns::new("serve-events-ns");
    let _server = Server::start(&ns, "127.0.0.1:8080");
    // tw serve in this namespace, serving the test's.
    let served = Served::start(&["--netns", ns.name()], &["--events", "on"]);
    let mut scraper = served.scraper();
    let before = scraper.metrics();
    let said = drive(&ns, &["close-first", "127.0.0.1:8080", "200", "1"]);
    let after = scraper.settled(&before, NS_TIME_WAIT, said["made"]);
    let series = dest_time_wait(8080);
    let b = samples(&before).get(&series).copied().unwrap_or(0.0);
    assert_near(
        value(&after, &series) - b,
        said["made"],
        "time_wait at 127.0.0.1:8080",
    );
    let log = served.stop();
    assert!(
        log.iter().any(|l| l.contains(&format!(
            "counting TCP events (eBPF) in network namespace {}",
            ns.name()
        ))),
        "{log:?}"
    );
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn connections_accepted_before_serve_started_count_at_their_listening_port() {
    let ns = Netns::new("serve-events-old");
    let dir = Scratch::new("serve-events-old");
    const N: usize = 20;
    let listener = ns.run(|| TcpListener::bind("127.0.0.1:7000").unwrap());
    let clients: Vec<TcpStream> = (0..N)
        .map(|_| ns.run(|| TcpStream::connect("127.0.0.1:7000").unwrap()))
        .collect();
    let accepted: Vec<TcpStream> = (0..N).map(|_| listener.accept().unwrap().0).collect();
    let mut serve = start_serve(
        &ns,
        TW,
        &["serve", "--listen", SERVE, "--events", "on"],
        &dir.0.join("serve.log"),
    );
    let mut scraper = scraper_in(&ns, SERVE);
    let before = scraper.metrics();
    // The server side closes first: N inbound TIME_WAIT whose accept() the
    // programs never saw.
    drop(accepted);
    thread::sleep(Duration::from_millis(200));
    drop(clients);
    let after = scraper.settled(&before, NS_TIME_WAIT, N as f64);
    serve.assert_running();
    let at_port = "tw_listener_events_total{local_port=\"7000\",event=\"time_wait\"}";
    let b = samples(&before).get(at_port).copied().unwrap_or(0.0);
    assert_eq!(value(&after, at_port) - b, N as f64, "{after}");
    // No client port became a destination.
    assert!(
        !after.contains("tw_destination_events_total{peer_address=\"127.0.0.1\""),
        "{after}"
    );
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn without_privilege_serve_serves_the_gauges_and_says_once_why_there_are_no_counters() {
    let ns = Netns::new("serve-events-priv");
    let dir = Scratch::new("serve-events-priv");
    let nobody = [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        TW,
    ];
    let log = dir.0.join("serve.log");
    let mut serve = start_serve(
        &ns,
        "setpriv",
        &[&nobody[..], &["serve", "--listen", SERVE]].concat(),
        &log,
    );
    let mut scraper = scraper_in(&ns, SERVE);
    for _ in 0..3 {
        let body = scraper.metrics();
        assert!(body.contains("tw_sockets{family=\"inet\",state=\"listen\"}"));
        assert!(!body.contains("tw_events_total"), "{body}");
        assert!(!body.contains("tw_destination_events_total"), "{body}");
    }
    serve.assert_running();
    let text = std::fs::read_to_string(&log).unwrap();
    let why: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("event counters off"))
        .collect();
    assert_eq!(why.len(), 1, "{text}");
    assert!(
        why[0].starts_with("tw: serve: event counters off: eBPF is unavailable: ")
            && why[0].contains("root")
            && why[0].contains("gauges"),
        "{text}"
    );
    drop(serve);

    // --events on: the same reason, as the one line of a failure.
    let out = run_bounded(
        ns.cmd("setpriv")
            .args(nobody)
            .args(["serve", "--listen", SERVE, "--events", "on"]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("tw: --events on: eBPF is unavailable: ") && err.contains("root"),
        "{err}"
    );
}

/// A `tw serve` child on an ephemeral loopback port, killed by its PID when
/// dropped; its stderr lines after the listening one are kept.
struct Served {
    child: Child,
    addr: String,
    lines: Option<std::io::Lines<BufReader<std::process::ChildStderr>>>,
}

impl Served {
    /// `tw GLOBAL... serve --listen 127.0.0.1:0 SERVE...`
    fn start(global: &[&str], serve: &[&str]) -> Served {
        let mut child = Command::new(TW)
            .args(global)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(serve)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("tw serve exited").unwrap();
            if let Some(rest) = line.split("http://").nth(1) {
                break rest.split('/').next().unwrap().to_string();
            }
        };
        Served {
            child,
            addr,
            lines: Some(lines),
        }
    }

    /// Stops it (by its PID) and gives what it said after where it listens.
    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let lines = self.lines.take().unwrap();
        lines.map_while(Result::ok).collect()
    }

    fn scraper(&self) -> Scraper {
        Scraper::connect(TcpStream::connect(&self.addr).unwrap())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_capture_has_no_event_counters_and_says_nothing_about_them() {
    let tree = "fixtures/procroot/live";
    let served = Served::start(&["--proc-root", tree], &[]);
    let body = served.scraper().metrics();
    assert!(body.contains("tw_sockets{"), "{body}");
    assert!(!body.contains("_events"), "{body}");
    assert!(!body.contains("tw_snapshot_age_seconds"), "{body}");
    let said = served.stop();
    assert!(said.is_empty(), "{said:?}");

    let out = run_bounded(
        Command::new(TW)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "--proc-root",
                tree,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--events",
                "on",
            ]),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("tw: --events on: ") && err.contains("--proc-root"),
        "{err}"
    );
}

#[test]
fn with_refresh_a_scrape_answers_from_the_last_snapshot_while_the_next_is_wedged() {
    let dir = Scratch::new("serve-events-refresh");
    let root = dir.0.join("proc");
    std::fs::create_dir_all(root.join("net")).unwrap();
    let table =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/procroot/live/net/tcp"))
            .unwrap();
    let tcp = root.join("net/tcp");
    std::fs::write(&tcp, &table).unwrap();
    let served = Served::start(
        &["--source", "proc", "--proc-root", root.to_str().unwrap()],
        &["--refresh", "1"],
    );
    let mut scraper = served.scraper();
    // The first snapshot is taken in the background too.
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let (status, body) = scraper.get("/metrics");
        if status == 200 {
            break body;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "no first snapshot: {body}");
        thread::sleep(Duration::from_millis(100));
        // Only a 200 keeps the connection.
        scraper = served.scraper();
    };
    // The same series as `tw metrics` prints for the tree, and the age.
    let metrics = run_bounded(Command::new(TW).args([
        "--source",
        "proc",
        "--proc-root",
        root.to_str().unwrap(),
        "metrics",
    ]));
    assert!(metrics.status.success(), "{metrics:?}");
    let but_timing = |text: &str| {
        samples(text)
            .into_iter()
            .filter(|(k, _)| k != "tw_scrape_duration_seconds" && k != "tw_snapshot_age_seconds")
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        but_timing(&first),
        but_timing(&String::from_utf8_lossy(&metrics.stdout))
    );
    let listen = "tw_sockets{family=\"inet\",state=\"listen\"}";
    let listening = value(&first, listen);
    assert!(value(&first, "tw_snapshot_age_seconds") < 5.0, "{first}");

    // net/tcp becomes a FIFO whose writer says nothing: the next background
    // read never returns, as a wedged dump would not.
    std::fs::remove_file(&tcp).unwrap();
    let c_path = std::ffi::CString::new(tcp.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let mut writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&tcp)
        .unwrap();
    thread::sleep(Duration::from_millis(2500));
    let mut ages = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let body = scraper.metrics();
        let took = t.elapsed();
        // Rendering only: far below any dump, and not the 10 s timeout.
        assert!(took < Duration::from_millis(500), "a scrape took {took:?}");
        assert_eq!(value(&body, listen), listening);
        ages.push(value(&body, "tw_snapshot_age_seconds"));
        thread::sleep(Duration::from_millis(300));
    }
    // The snapshot is older at each scrape: the wedged read never replaced it.
    assert!(ages[0] > 1.5, "{ages:?}");
    assert!(ages.windows(2).all(|w| w[1] > w[0]), "{ages:?}");

    // Unwedge: the stuck read gets the table and EOF, and the next ones a
    // file; the snapshot is fresh again.
    let real = root.join("net/tcp.new");
    std::fs::write(&real, &table).unwrap();
    std::fs::rename(&real, &tcp).unwrap();
    writer.write_all(&table).unwrap();
    drop(writer);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = scraper.metrics();
        if value(&body, "tw_snapshot_age_seconds") < 1.5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the snapshot never came back: {body}"
        );
        thread::sleep(Duration::from_millis(200));
    }
    // A 503 before the first snapshot is expected, not worth a log line.
    let said = served.stop();
    assert!(
        !said.iter().any(|l| l.contains("first snapshot")),
        "{said:?}"
    );
}
