//! Live tests of `tw watch` with eBPF events (`--events`), each in its own network namespace: a
//! driver process (tests/support/trace_driver.rs) makes a known load, and the TIME_WAIT entries,
//! connect() failures and the process watch reports must match what the driver made and saw.
//! Without privilege watch still runs and says why in one line; `--events off` samples as
//! before. Needs root, BTF, iproute2, setpriv and rustc (the driver).

mod common;
#[path = "support/driver.rs"]
mod driver;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{run_bounded, Netns};
use driver::{DriverRun, Server};
use serde_json::Value;

const TW: &str = env!("CARGO_BIN_EXE_tw");

/// The driver's file name, and so its process name.
const DRIVER: &str = "watch_driver";

fn drive(ns: &Netns, args: &[&str]) -> DriverRun {
    driver::drive(DRIVER, ns, args)
}

/// `tw watch ARGS --format json` in the background: `first` waits for its first record,
/// `finish` for the rest (it stops by --count). Killed by PID on drop if still running.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Watch {
    fn start(args: &[&str]) -> Watch {
        let mut child = Command::new(TW)
            .arg("watch")
            .args(args)
            .args(["--format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tw watch");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Watch {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    fn first(&mut self) -> Value {
        let l = self
            .lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("tw watch wrote no record in 20 s: {}", self.stderr()));
        serde_json::from_str(&l).unwrap()
    }

    fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default()
    }

    /// The remaining records, once tw watch exits (within `secs`), and its stderr.
    fn finish(mut self, secs: u64) -> (Vec<Value>, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "tw watch did not end in {secs} s"
            );
            thread::sleep(Duration::from_millis(20));
        };
        let err = self.stderr();
        assert!(status.success(), "tw watch: {status}: {err}");
        let recs = self
            .lines
            .try_iter()
            .map(|l| serde_json::from_str(&l).unwrap())
            .collect();
        (recs, err)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn within(measured: u64, want: u64, pct: f64) -> bool {
    (measured as f64 - want as f64).abs() <= want as f64 * pct / 100.0
}

fn sum(recs: &[Value], f: impl Fn(&Value) -> u64) -> u64 {
    recs.iter().map(f).sum()
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn events_count_time_wait_entered_per_destination_and_process() {
    let ns = Netns::new("watchev-rate");
    let server = Server::start(&ns, "127.0.0.1:5000", false);
    let dest = server.addr.to_string();
    // A full dump every 4 s: the records between take TIME_WAIT from sockstat and the
    // projection.
    let mut watch = Watch::start(&[
        "--netns",
        ns.name(),
        "--events",
        "on",
        "--interval",
        "1s",
        "--count",
        "10",
        "--dump-every",
        "4",
    ]);
    let first = watch.first();
    let run = drive(&ns, &["close-first", &dest, "300", "5"]);
    let made = run.get("made");
    assert_eq!(run.get("failed"), 0);
    let (rest, err) = watch.finish(30);
    assert!(err.is_empty(), "{err}");
    let mut recs = vec![first];
    recs.extend(rest);
    assert_eq!(recs.len(), 10);
    for r in &recs {
        assert_eq!(r["inflow_from"], "events", "{r}");
        assert_eq!(r["events_lost"], 0, "{r}");
        assert_eq!(r["netns"], ns.name(), "{r}");
    }
    // Exact: every TIME_WAIT the driver made, once.
    let entered = sum(&recs, |r| r["time_wait"]["new"].as_u64().unwrap());
    assert!(within(entered, made, 2.0), "watch {entered}, driver {made}");
    // At the driver's destination.
    let at_dest = sum(&recs, |r| {
        r["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["peer"] == dest.as_str())
            .map(|d| d["new"].as_u64().unwrap())
            .sum()
    });
    assert!(within(at_dest, made, 2.0), "at {dest}: {at_dest} of {made}");
    // Credited to the driver.
    let by_driver = sum(&recs, |r| {
        r["processes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["pid"] == run.pid)
            .map(|p| {
                assert_eq!(p["comm"], "watch_driver", "{p}");
                p["time_wait"].as_u64().unwrap()
            })
            .sum()
    });
    assert!(
        within(by_driver, made, 2.0),
        "driver: {by_driver} of {made}"
    );
    // Between dumps the count comes from sockstat, the destination's from the projection, and
    // the record says how old the dumped parts are.
    let between: Vec<&Value> = recs
        .iter()
        .filter(|r| r["dump_age_s"].as_f64().unwrap() > 0.0)
        .collect();
    assert!(
        between.len() >= 5,
        "{} records between dumps",
        between.len()
    );
    for r in &between {
        assert_eq!(r["time_wait"]["count_from"], "sockstat", "{r}");
        assert!(r["dump_age_s"].as_f64().unwrap() < 4.5, "{r}");
    }
    let dumps = recs.iter().filter(|r| r["dump_age_s"] == 0.0).count();
    assert!(dumps >= 2, "{dumps} dumps in 10 s at --dump-every 4");
    // The last record: nothing has expired yet, so all the driver made is held, by sockstat's
    // count and by the destination's (projected or dumped) TIME_WAIT.
    let last = recs.last().unwrap();
    let count = last["time_wait"]["count"].as_u64().unwrap();
    assert!(within(count, made, 2.0), "count {count}, made {made}");
    let d = &last["destinations"][0];
    assert_eq!(d["peer"], dest.as_str(), "{last}");
    let tw = d["time_wait"].as_u64().unwrap();
    assert!(within(tw, made, 2.0), "{d}");
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn connect_failures_for_want_of_a_port_match_the_drivers_eaddrnotavail() {
    let ns = Netns::new("watchev-exhaust");
    // 10 ports: the driver holds them all, then every connect() fails.
    ns.set_sysctl("net/ipv4/ip_local_port_range", "40000 40009");
    let server = Server::start(&ns, "127.0.0.1:5001", true);
    let dest = server.addr.to_string();
    let mut watch = Watch::start(&[
        "--netns",
        ns.name(),
        "--events",
        "on",
        "--interval",
        "500ms",
        "--count",
        "6",
    ]);
    let first = watch.first();
    let run = drive(&ns, &["exhaust", &dest, "40"]);
    let failed = run.get("eaddrnotavail");
    assert!(failed >= 25, "the driver saw only {failed} EADDRNOTAVAIL");
    assert_eq!(run.get("other"), 0);
    let (rest, err) = watch.finish(30);
    assert!(err.is_empty(), "{err}");
    let mut recs = vec![first];
    recs.extend(rest);
    let total = sum(&recs, |r| {
        r["time_wait"]["connect_failed"].as_u64().unwrap()
    });
    assert_eq!(total, failed, "connect() failures");
    let at_dest = sum(&recs, |r| {
        r["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["peer"] == dest.as_str())
            .map(|d| d["connect_failed"].as_u64().unwrap())
            .sum()
    });
    assert_eq!(at_dest, failed, "toward {dest}");
    // The failing destination is listed first, full.
    let busy = recs
        .iter()
        .find(|r| r["time_wait"]["connect_failed"].as_u64().unwrap() > 0)
        .unwrap();
    let d = &busy["destinations"][0];
    assert_eq!(
        (d["peer"].as_str(), d["free"].as_u64()),
        (Some(&*dest), Some(0))
    );
}

/// nobody, with no capabilities: what a plain user gets.
fn unprivileged(ns: &Netns, args: &[&str]) -> std::process::Output {
    let mut cmd = ns.cmd("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        TW,
    ])
    .args(args);
    run_bounded(&mut cmd)
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn without_privilege_watch_says_why_in_one_line_and_counts_from_timers() {
    let ns = Netns::new("watchev-nopriv");
    let server = Server::start(&ns, "127.0.0.1:5002", false);
    let dest = server.addr.to_string();
    let load = {
        let ns_name = ns.name().to_string();
        let driver = driver::driver_path(DRIVER).to_path_buf();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(500));
            run_bounded(
                Command::new("ip")
                    .args(["netns", "exec", &ns_name])
                    .arg(driver)
                    .args(["close-first", &dest, "100", "3"]),
            )
        })
    };
    let o = unprivileged(
        &ns,
        &[
            "watch",
            "--interval",
            "1s",
            "--count",
            "4",
            "--format",
            "json",
        ],
    );
    let driven = load.join().unwrap();
    assert!(driven.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("tw: watch: no eBPF events ("), "{err}");
    assert!(err.contains("root") && err.contains("timer ages"), "{err}");
    // One line as written, not a source line's indentation inside it.
    assert!(!err.contains("  "), "{err}");
    let recs: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 4);
    for r in &recs {
        assert_eq!(r["inflow_from"], "timers", "{r}");
        assert!(r.get("processes").is_none() && r.get("dump_age_s").is_none());
    }
    // The samples still see the inflow.
    let seen = sum(&recs, |r| r["time_wait"]["new"].as_u64().unwrap());
    assert!(seen > 150, "{seen} of about 300");

    // --events on cannot: one line, the reason and the fix, exit 2.
    let o = unprivileged(&ns, &["watch", "--events", "on", "--count", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("tw: watch --events on: eBPF is unavailable: ") && err.contains("root"),
        "{err}"
    );
    assert!(err.contains("--events auto or off"), "{err}");
    assert!(!err.contains("  "), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn events_off_samples_every_interval_as_before() {
    let ns = Netns::new("watchev-off");
    let server = Server::start(&ns, "127.0.0.1:5003", false);
    let dest = server.addr.to_string();
    let mut watch = Watch::start(&[
        "--netns",
        ns.name(),
        "--events",
        "off",
        "--interval",
        "1s",
        "--count",
        "6",
    ]);
    let first = watch.first();
    let run = drive(&ns, &["close-first", &dest, "200", "3"]);
    let made = run.get("made");
    let (rest, err) = watch.finish(30);
    assert!(err.is_empty(), "{err}");
    let mut recs = vec![first];
    recs.extend(rest);
    for r in &recs {
        assert_eq!(r["inflow_from"], "timers", "{r}");
        for absent in ["processes", "dump_age_s", "events_lost"] {
            assert!(r.get(absent).is_none(), "{absent}: {r}");
        }
        let t = &r["time_wait"];
        for absent in ["count_from", "connect_failed", "tw_reused"] {
            assert!(t.get(absent).is_none(), "{absent}: {t}");
        }
        // A full dump each interval: every TIME_WAIT falls in one slot.
        let slots: u64 = t["left_5s_slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(slots, t["count"].as_u64().unwrap(), "{t}");
    }
    // New 4-tuples between samples: all of them, as no TIME_WAIT expired meanwhile.
    let seen = sum(&recs, |r| r["time_wait"]["new"].as_u64().unwrap());
    assert!(within(seen, made, 2.0), "{seen} of {made}");
}

#[test]
fn a_bad_events_or_dump_every_value_says_what_to_give() {
    for (args, want) in [
        (&["watch", "--events", "maybe"][..], "--events"),
        (
            &["watch", "--dump-every", "x"][..],
            "expected seconds from 0",
        ),
        (&["watch", "--dump-every", "601"][..], "to 600"),
    ] {
        let o = run_bounded(Command::new(TW).args(args));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn with_a_filter_sockstat_cannot_honour_every_interval_is_a_full_dump() {
    let ns = Netns::new("watchev-filter");
    let wanted = Server::start(&ns, "127.0.0.1:5004", false);
    let other = Server::start(&ns, "127.0.0.1:5005", false);
    let mut watch = Watch::start(&[
        "--netns",
        ns.name(),
        "--events",
        "on",
        "--dump-every",
        "30",
        "--dport",
        "5004",
        "--interval",
        "1s",
        "--count",
        "5",
    ]);
    let first = watch.first();
    let (ns_name, to_other) = (ns.name().to_string(), other.addr.to_string());
    let noise = thread::spawn(move || {
        run_bounded(
            Command::new("ip")
                .args(["netns", "exec", &ns_name])
                .arg(driver::driver_path(DRIVER))
                .args(["close-first", &to_other, "100", "2"]),
        )
    });
    let run = drive(&ns, &["close-first", &wanted.addr.to_string(), "100", "2"]);
    assert!(noise.join().unwrap().status.success());
    let (rest, err) = watch.finish(30);
    assert!(err.is_empty(), "{err}");
    let mut recs = vec![first];
    recs.extend(rest);
    for r in &recs {
        // sockstat counts every TIME_WAIT of the namespace, so each sample dumps.
        assert_eq!(r["dump_age_s"], 0.0, "{r}");
        assert_eq!(r["time_wait"]["count_from"], "dump", "{r}");
        for d in r["destinations"].as_array().unwrap() {
            assert_eq!(d["peer"], wanted.addr.to_string().as_str(), "{d}");
        }
    }
    // The events are filtered as the table is: only the wanted port's.
    let entered = sum(&recs, |r| r["time_wait"]["new"].as_u64().unwrap());
    let made = run.get("made");
    assert!(
        within(entered, made, 2.0),
        "{entered} of {made} toward :5004"
    );
    let last = recs.last().unwrap();
    let count = last["time_wait"]["count"].as_u64().unwrap();
    assert!(
        within(count, made, 2.0),
        "count {count}, made {made} toward :5004"
    );
}
