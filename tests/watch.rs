//! `tw watch` and `tw plot`: the inflow of a known connection rate measured
//! in a private namespace, the JSON Lines schema, the live view under tmux
//! (it draws, `q` and Ctrl-C quit, the terminal comes back), and a chart
//! drawn from a recorded fixture. The live tests need root, tmux, and for the
//! chart's text check rsvg-convert and pdftotext (.ci/setup.d/40-watch.sh).

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use common::{run_bounded, Net, Netns, Population};
use serde_json::Value;

const TW: &str = env!("CARGO_BIN_EXE_tw");

fn tw(args: &[&str]) -> Output {
    run_bounded(Command::new(TW).args(args))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A file name under the temp dir, unique to this test process and `tag`,
/// removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        TempPath(std::env::temp_dir().join(format!("tw-watch-test-{}-{tag}", std::process::id())))
    }

    fn as_str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Checks one JSON Lines record against the schema in README.md: exactly
/// these keys, of these types (`netns` only with `--netns`).
fn assert_schema(v: &Value) {
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
        k.sort();
        k
    };
    let num = |v: &Value| v.is_number();
    let num_or_null = |v: &Value| v.is_number() || v.is_null();
    let mut top = keys(v);
    if let Some(label) = v.get("netns") {
        assert!(label.is_string(), "{v}");
        top.retain(|k| k != "netns");
    }
    // Where the inflow came from, and with events what they add (tests/watch_events.rs).
    assert!(
        matches!(v["inflow_from"].as_str(), Some("events" | "timers")),
        "{v}"
    );
    let events = v["inflow_from"] == "events";
    top.retain(|k| k != "inflow_from");
    for k in ["dump_age_s", "processes", "events_lost"] {
        assert_eq!(v.get(k).is_some(), events, "{k}: {v}");
        top.retain(|x| x != k);
    }
    assert_eq!(
        top,
        [
            "destinations",
            "elapsed_s",
            "interval_s",
            "schema_version",
            "states",
            "time",
            "time_wait",
            "total"
        ],
        "{v}"
    );
    assert!(v["time"].as_f64().unwrap() > 1.6e9, "{v}");
    assert!(num(&v["elapsed_s"]) && num(&v["interval_s"]), "{v}");
    assert!(v["total"].is_u64(), "{v}");
    let states = v["states"].as_object().unwrap();
    assert_eq!(states.len(), 11, "every state but NEW_SYN_RECV: {v}");
    assert!(states.values().all(Value::is_u64), "{v}");
    let t = &v["time_wait"];
    let mut t_keys = keys(t);
    for k in ["count_from", "connect_failed", "tw_reused"] {
        assert_eq!(t.get(k).is_some(), events, "{k}: {t}");
        t_keys.retain(|x| x != k);
    }
    assert_eq!(
        t_keys,
        [
            "count",
            "forecast",
            "inbound",
            "inflow_per_s",
            "kernel_recycled",
            "kernel_tw",
            "left_5s_slots",
            "new",
            "outbound",
            "rate_per_s",
            "rate_window_s"
        ],
        "{t}"
    );
    for k in ["count", "inbound", "outbound"] {
        assert!(t[k].is_u64(), "{k}: {t}");
    }
    for k in [
        "new",
        "forecast",
        "inflow_per_s",
        "rate_per_s",
        "rate_window_s",
    ] {
        assert!(num_or_null(&t[k]), "{k}: {t}");
    }
    for k in ["kernel_tw", "kernel_recycled"] {
        assert!(t[k].is_i64() || t[k].is_null(), "{k}: {t}");
    }
    let slots = t["left_5s_slots"].as_array().unwrap();
    assert_eq!(slots.len(), 12);
    assert!(slots.iter().all(Value::is_u64));
    // Between dumps (events) the slots are projected; a dump puts every socket in one.
    if v.get("dump_age_s").is_none_or(|a| a == 0.0) {
        assert_eq!(
            slots.iter().map(|n| n.as_u64().unwrap()).sum::<u64>(),
            t["count"].as_u64().unwrap(),
            "every TIME_WAIT socket falls in one slot"
        );
    }
    for d in v["destinations"].as_array().unwrap() {
        let mut d_keys = keys(d);
        for k in ["connect_failed", "tw_reused"] {
            assert_eq!(d.get(k).is_some(), events, "{k}: {d}");
            d_keys.retain(|x| x != k);
        }
        assert_eq!(
            d_keys,
            [
                "exhausted_in_s",
                "free",
                "held",
                "held_first_choice",
                "local",
                "new",
                "peer",
                "rate_per_s",
                "settles_at",
                "time_wait",
                "usable",
                "usable_first_choice"
            ],
            "{d}"
        );
        assert!(d["local"].is_string() && d["peer"].is_string(), "{d}");
        for k in [
            "held",
            "time_wait",
            "usable",
            "free",
            "settles_at",
            "usable_first_choice",
            "held_first_choice",
        ] {
            assert!(d[k].is_u64(), "{k}: {d}");
        }
        for k in ["new", "rate_per_s", "exhausted_in_s"] {
            assert!(num_or_null(&d[k]), "{k}: {d}");
        }
    }
}

fn lines(out: &[u8]) -> Vec<Value> {
    text(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn piped_output_is_one_json_object_per_interval() {
    // The host's own namespace: any user can read it, so this needs no root.
    let o = tw(&["watch", "--interval", "200ms", "--count", "3"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let recs = lines(&o.stdout);
    assert_eq!(recs.len(), 3, "{}", text(&o.stdout));
    // Each interval runs from the previous sample to this one.
    let mut last = 0.0;
    for r in &recs {
        assert_schema(r);
        let elapsed = r["elapsed_s"].as_f64().unwrap();
        let interval = r["interval_s"].as_f64().unwrap();
        assert!(
            interval > 0.0 && (elapsed - last - interval).abs() < 0.002,
            "{r}"
        );
        last = elapsed;
    }
}

#[test]
fn bad_watch_and_plot_arguments_say_what_to_do() {
    let cases: [(&[&str], &str); 7] = [
        (
            &["watch", "--from", "fixtures/proc"],
            "tw: watch samples the live system",
        ),
        (
            &["watch", "--netns", "tw-no-such-namespace"],
            "tw: --netns tw-no-such-namespace: no such namespace",
        ),
        (
            &["watch", "--format", "table"],
            "the live view needs a terminal",
        ),
        (&["watch", "--interval", "0s"], "between 100ms and 30s"),
        (&["watch", "--count", "0"], "--count"),
        (
            &["plot", "Cargo.toml", "-o", "/dev/null"],
            "tw: Cargo.toml:1: not a tw watch record",
        ),
        (
            &["plot", "no-such.jsonl", "-o", "/dev/null"],
            "tw: no-such.jsonl: cannot open it",
        ),
    ];
    for (args, want) in cases {
        let o = tw(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = text(&o.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}

/// Connects to the listener `rate` times a second for `secs`, paced on a
/// fixed schedule, and plays both ends on this one thread: the client closes
/// first, the server reads the EOF and closes, which puts the client's
/// socket in TIME_WAIT there and then. Returns when each entered TIME_WAIT,
/// in Unix seconds (tw's records carry the same clock).
fn paced_closes(l: &TcpListener, rate: u32, secs: u32) -> Vec<f64> {
    let to = l.local_addr().unwrap();
    let start = Instant::now();
    let mut entered = Vec::with_capacity((rate * secs) as usize);
    for i in 0..rate * secs {
        let due = start + Duration::from_secs(1) * i / rate;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let client = TcpStream::connect(to).unwrap_or_else(|e| panic!("connect {to}: {e}"));
        let (mut server, _) = l.accept().expect("accept");
        drop(client);
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let _ = server.read(&mut [0; 16]);
        drop(server);
        entered.push(unix_now());
    }
    entered
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

const RATE: f64 = 200.0;

fn within(measured: f64, want: f64, pct: f64) -> bool {
    (measured - want).abs() <= want * pct / 100.0
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn measures_a_known_inflow_and_forecasts_from_it() {
    let ns = Netns::new("watch-rate");
    // 2000 ports toward the destination: 200/s needs 12,000 at steady state.
    ns.set_sysctl("net/ipv4/ip_local_port_range", "40000 41999");
    let record = TempPath::new("rate.jsonl");
    let dest: SocketAddr = "127.0.0.2:5000".parse().unwrap();

    let (out, closed) = ns.run(|| {
        let l = TcpListener::bind(dest).unwrap();
        thread::scope(|s| {
            // Threads made here are in the namespace too. 200/s for 7 s; tw
            // starts after 1 s and is done after about 5.
            let load = s.spawn(|| paced_closes(&l, RATE as u32, 7));
            thread::sleep(Duration::from_secs(1));
            let out = ns.output(
                TW,
                &[
                    "watch",
                    "--interval",
                    "1s",
                    "--count",
                    "4",
                    "--record",
                    record.as_str(),
                ],
            );
            (out, load.join().unwrap())
        })
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The pace over all 7 s: near 200/s unless the machine is swamped;
    // each interval is checked against what really happened in it.
    let achieved = closed.len() as f64 / (closed[closed.len() - 1] - closed[0]);
    assert!(achieved > 100.0, "the client managed only {achieved:.1}/s");

    let recs = lines(&out.stdout);
    assert_eq!(recs.len(), 4, "{}", text(&out.stdout));
    assert_eq!(
        std::fs::read_to_string(&record.0).unwrap(),
        text(&out.stdout),
        "--record writes what stdout gets"
    );
    let (mut new_total, mut kernel_total) = (0.0, 0.0);
    let mut prev_count: Option<u64> = None;
    for r in &recs {
        assert_schema(r);
        let t = &r["time_wait"];
        let interval = r["interval_s"].as_f64().unwrap();
        let new = t["new"].as_u64().unwrap();
        let inflow = t["inflow_per_s"].as_f64().unwrap();
        assert!((inflow - new as f64 / interval).abs() < 1e-6, "{t}");
        new_total += new as f64;
        kernel_total += t["kernel_tw"].as_i64().unwrap() as f64;
        // Nothing expires within a few seconds, so the count grows by
        // exactly what was new (allowing for a socket caught mid-dump).
        let count = t["count"].as_u64().unwrap();
        if let Some(before) = prev_count {
            assert!(
                (count as i64 - before as i64 - new as i64).abs() <= 2,
                "{t}"
            );
        }
        prev_count = Some(count);
    }
    // Per interval, a socket that closes while a dump runs can fall on
    // either side of the boundary (a dump stalls for a while on a busy
    // machine); over the whole window that evens out. What really entered
    // TIME_WAIT from the baseline to the last sample:
    let last = &recs[3];
    let t = &last["time_wait"];
    let taken: f64 = recs.iter().map(|r| r["interval_s"].as_f64().unwrap()).sum();
    let end = last["time"].as_f64().unwrap();
    let truth = closed
        .iter()
        .filter(|c| (end - taken..end).contains(*c))
        .count() as f64;
    let truth_rate = truth / taken;
    // The rate behind the forecast: the mean over the window, here the
    // four intervals.
    assert!(
        (t["rate_window_s"].as_f64().unwrap() - taken).abs() < 0.01,
        "{t}"
    );
    let rate = t["rate_per_s"].as_f64().unwrap();
    assert!((rate - new_total / taken).abs() < 1e-6, "{t}");
    assert!(
        within(rate, truth_rate, 15.0),
        "measured {rate}/s; {truth} entered TIME_WAIT in {taken} s: {truth_rate}/s"
    );
    // The kernel's TcpExt TW counter saw the same closes.
    assert!(
        within(kernel_total, new_total, 5.0),
        "kernel {kernel_total}, tw {new_total}"
    );
    // The steady-state forecast: 60 s of TIME_WAIT at that rate.
    let forecast = t["forecast"].as_u64().unwrap();
    assert_eq!(forecast, (rate * 60.0).round() as u64, "{t}");
    assert!(within(forecast as f64, truth_rate * 60.0, 15.0), "{t}");

    let dests = last["destinations"].as_array().unwrap();
    assert_eq!(dests.len(), 1, "{last}");
    let d = &dests[0];
    assert_eq!(
        (d["local"].as_str(), d["peer"].as_str()),
        (Some("127.0.0.1"), Some("127.0.0.2:5000"))
    );
    assert_eq!(d["usable"], 2000, "{d}");
    let (held, free) = (d["held"].as_u64().unwrap(), d["free"].as_u64().unwrap());
    assert_eq!(held + free, 2000, "{d}");
    assert!(held >= d["time_wait"].as_u64().unwrap(), "{d}");
    // Half the range is of the parity connect() tries first.
    assert_eq!(d["usable_first_choice"], 1000, "{d}");
    let first = d["held_first_choice"].as_u64().unwrap();
    assert!(first <= held && first <= 1000, "{d}");
    assert!(
        d["settles_at"].as_u64().unwrap() > 2000,
        "12,000 needed: {d}"
    );
    // No TIME_WAIT expires before the range is full, so the time left is
    // the free ports at the destination's rate.
    let d_rate = d["rate_per_s"].as_f64().unwrap();
    assert!(within(d_rate, truth_rate, 15.0), "{d}");
    let eta = d["exhausted_in_s"].as_f64().unwrap();
    assert!((eta - free as f64 / d_rate).abs() < 1e-6, "{d}");
}

/// A private tmux server, killed (by its socket) when dropped.
struct Tmux {
    socket: TempPath,
}

impl Tmux {
    fn start(tag: &str, command: &str) -> Tmux {
        let t = Tmux {
            socket: TempPath::new(&format!("tmux-{tag}")),
        };
        let o = t.run(&["new-session", "-d", "-x", "80", "-y", "24", command]);
        assert!(o.status.success(), "tmux: {}", text(&o.stderr));
        t
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("tmux");
        cmd.args(["-S", self.socket.as_str()]).args(args);
        match cmd.output() {
            Ok(o) => o,
            Err(e) => panic!("tmux {args:?}: {e} (install tmux: .ci/setup.d/40-watch.sh)"),
        }
    }

    fn screen(&self) -> String {
        text(&self.run(&["capture-pane", "-p", "-t", "0"]).stdout)
    }

    /// `#{alternate_on}` and `#{cursor_flag}`: is the alternate screen up,
    /// is the cursor shown.
    fn modes(&self) -> String {
        text(
            &self
                .run(&["display", "-p", "-t", "0", "#{alternate_on} #{cursor_flag}"])
                .stdout,
        )
        .trim()
        .to_string()
    }

    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("{what:?} never showed; the screen:\n{s}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn the_live_view_draws_and_q_or_ctrl_c_restores_the_terminal() {
    let ns = Netns::new("watch-tui");
    let _pop = Population::builder()
        .listeners(Net::V4, 1)
        .established(Net::V4, 3)
        .time_wait(Net::V4, 40)
        .build(&ns);
    for (key, tag) in [("q", "q"), ("C-c", "ctrl-c")] {
        // After tw: its status, and the line discipline it left behind.
        let command = format!(
            "ip netns exec {} {TW} watch --interval 200ms; echo tw-exit=$?; stty -a; echo stty-done; sleep 30",
            ns.name()
        );
        let tmux = Tmux::start(tag, &command);
        tmux.wait_for("q quits");
        // After the first interval the inflow has a value.
        let screen = tmux.wait_for("TIME_WAIT 40  in 0.0/s");
        let rows: Vec<&str> = screen.lines().collect();
        assert_eq!(rows.len(), 24, "{screen}");
        assert!(rows.iter().all(|r| r.chars().count() <= 80), "{screen}");
        assert!(rows[0].starts_with(" tw watch · every 200ms"), "{screen}");
        assert!(rows[1].starts_with("TIME_WAIT 40  in 0.0/s"), "{screen}");
        for want in [
            "States",
            "ESTABLISHED",
            "LISTEN",
            "TIME_WAIT inflow per second",
            "Expiring, per 5 s",
            "Outbound destinations",
            "127.0.0.1 → 127.0.0.2:5000",
        ] {
            assert!(screen.contains(want), "{want:?} missing:\n{screen}");
        }
        assert_eq!(tmux.modes(), "1 0", "alternate screen up, cursor hidden");

        tmux.run(&["send-keys", "-t", "0", key]);
        let after = tmux.wait_for("stty-done");
        assert!(after.contains("tw-exit=0"), "{key}: {after}");
        assert!(
            !after.contains("q quits"),
            "{key}: the view is gone: {after}"
        );
        assert_eq!(tmux.modes(), "0 1", "{key}: main screen, cursor shown");
        // Raw mode is off again: canonical input, echo, output processing.
        let stty = after.split("tw-exit=0").nth(1).unwrap();
        for flag in ["icanon", "echo", "opost", "isig"] {
            assert!(
                stty.split_whitespace().any(|w| w == flag),
                "{key}: {flag} not restored: {stty}"
            );
        }
    }
}

#[test]
fn all_netns_is_refused_in_one_line_on_both_views() {
    let want = "tw: watch --all-netns: each namespace has its own counters and port range";
    let o = tw(&["watch", "--all-netns", "--count", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(want) && err.contains("--netns NAME"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    // On a terminal the refusal comes from the sampler thread, and is said
    // on the normal screen before the view would take it.
    let tmux = Tmux::start(
        "all-netns",
        &format!("{TW} watch --all-netns; echo tw-exit=$?; sleep 30"),
    );
    let screen = tmux.wait_for("tw-exit=");
    assert!(screen.contains("tw-exit=2"), "{screen}");
    assert!(
        screen.lines().any(|l| want.starts_with(l.trim_end())),
        "{screen}"
    );
    assert_eq!(tmux.modes(), "0 1", "the view never came up");
}

/// The namespace test's load: connections a second to its own listener,
/// and for how long. 540 stay in TIME_WAIT toward it, under its 800 ports.
const NETNS_RATE: u32 = 60;
const NETNS_SECS: u32 = 9;
/// A range no host has (800 ports): seen in a record, it can only have come
/// from the namespace.
const NETNS_RANGE: (u16, u16) = (42000, 42799);

/// `tw watch --netns NAME` run from this test's own namespace, never inside
/// the target: the sockets, the TIME_WAIT inflow, the TcpExt TW counter and
/// the port range must all be the target's. Both ways of sampling run at once
/// on the same load: JSON Lines (samples on tw's main thread) and the live
/// view under tmux with --record (samples on a thread of their own, while
/// tw's main thread, which /proc/net follows, stays in this namespace).
#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn watches_another_namespace_from_outside_it() {
    let ns = Netns::new("wnetns");
    let (lo, hi) = NETNS_RANGE;
    ns.set_sysctl("net/ipv4/ip_local_port_range", &format!("{lo} {hi}"));
    let home = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    assert_ne!(
        home.split_whitespace().collect::<Vec<_>>(),
        [lo.to_string(), hi.to_string()],
        "this namespace must not share the test's range"
    );
    // Known sockets before the watch: 150 TIME_WAIT and 3 connections to
    // 127.0.0.2:5000.
    let pop = Population::builder()
        .listeners(Net::V4, 1)
        .established(Net::V4, 3)
        .time_wait(Net::V4, 150)
        .build(&ns);
    let dest: SocketAddr = "127.0.0.3:5100".parse().unwrap();
    let json_file = TempPath::new("netns.jsonl");
    let live_file = TempPath::new("netns-live.jsonl");
    let live_cmd = format!(
        "{TW} watch --netns {} --interval 500ms --count 8 --record {}; echo tw-exit=$?; sleep 30",
        ns.name(),
        live_file.as_str()
    );

    let (out, live_first, live_after, closed) = thread::scope(|s| {
        let load = s.spawn(|| {
            ns.run(|| {
                let l = TcpListener::bind(dest).unwrap();
                paced_closes(&l, NETNS_RATE, NETNS_SECS)
            })
        });
        thread::sleep(Duration::from_secs(1));
        let tmux = Tmux::start("netns", &live_cmd);
        let first = tmux.wait_for("q quits");
        let out = tw(&[
            "watch",
            "--netns",
            ns.name(),
            "--format",
            "json",
            "--interval",
            "1s",
            "--count",
            "4",
            "--record",
            json_file.as_str(),
        ]);
        let after = tmux.wait_for("tw-exit=");
        (out, first, after, load.join().unwrap())
    });
    let achieved = closed.len() as f64 / (closed[closed.len() - 1] - closed[0]);
    assert!(achieved > 30.0, "the client managed only {achieved:.1}/s");

    assert!(out.status.success(), "{}", text(&out.stderr));
    let recs = lines(&out.stdout);
    assert_eq!(recs.len(), 4, "{}", text(&out.stdout));
    assert_eq!(
        std::fs::read_to_string(&json_file.0).unwrap(),
        text(&out.stdout),
        "--record writes what stdout gets"
    );
    assert_target_namespace("json", &recs, &ns, &pop, &closed);

    assert!(live_after.contains("tw-exit=0"), "{live_after}");
    let header = format!(" tw watch · netns {} · every 500ms", ns.name());
    assert!(live_first.starts_with(&header), "{live_first}");
    let live = lines(std::fs::read_to_string(&live_file.0).unwrap().as_bytes());
    assert_eq!(live.len(), 8, "{live:?}");
    assert_target_namespace("live view", &live, &ns, &pop, &closed);

    // Plain lines say which namespace they describe, and describe it: its TIME_WAIT.
    let out = tw(&[
        "watch",
        "--netns",
        ns.name(),
        "--format",
        "plain",
        "--interval",
        "200ms",
        "--count",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plain = text(&out.stdout);
    let rows: Vec<&str> = plain.lines().collect();
    assert_eq!(rows.len(), 3, "{plain}");
    assert_eq!(rows[0], format!("netns {}", ns.name()));
    assert!(rows[1].starts_with("TIME "), "{plain}");
    let time_wait: usize = rows[2].split_whitespace().nth(1).unwrap().parse().unwrap();
    let pop_tw = pop.count_where(|e| e.state == "TIME_WAIT");
    assert!(time_wait >= pop_tw, "{plain}");
}

/// Every record of a `--netns` watch describes the test's namespace: its
/// listeners and connections, its TIME_WAIT (the population's plus the
/// load's), its inflow, its TcpExt counter and its port range.
fn assert_target_namespace(
    what: &str,
    recs: &[Value],
    ns: &Netns,
    pop: &Population,
    closed: &[f64],
) {
    let usable = u64::from(NETNS_RANGE.1 - NETNS_RANGE.0) + 1;
    let pop_tw = pop.count_where(|e| e.state == "TIME_WAIT") as u64;
    let to_pop = |e: &common::Expected| e.peer.to_string() == "127.0.0.2:5000";
    let closed_before = |t: f64| closed.iter().filter(|c| **c < t).count() as u64;
    let (mut new_total, mut kernel_total) = (0, 0);
    for r in recs {
        assert_schema(r);
        assert_eq!(r["netns"], ns.name(), "{what}: {r}");
        let states = &r["states"];
        // The population's listener and the load's; 3 connections (both
        // ends), and at most one of the load's in flight.
        assert_eq!(states["LISTEN"], 2, "{what}: {r}");
        let est = states["ESTABLISHED"].as_u64().unwrap();
        assert!((6..=8).contains(&est), "{what}: {r}");
        // The population's TIME_WAIT and the load's so far: nothing expires
        // within the test. A close during the dump may fall either side.
        let t = &r["time_wait"];
        let time = r["time"].as_f64().unwrap();
        let count = t["count"].as_u64().unwrap();
        let (least, most) = (closed_before(time), closed_before(time + 1.0));
        assert!(
            count + 3 >= pop_tw + least && count <= pop_tw + most + 3,
            "{what}: {count} TIME_WAIT; {pop_tw} made before, then {least}..{most}: {r}"
        );
        new_total += t["new"].as_u64().unwrap();
        kernel_total += t["kernel_tw"].as_i64().unwrap();
        // The namespace's range, for every destination; the population's
        // destination holds exactly its sockets.
        let dests = r["destinations"].as_array().unwrap();
        assert_eq!(dests.len(), 2, "{what}: {r}");
        for d in dests {
            assert_eq!(d["usable"], usable, "{what}: {d}");
            let held = d["held"].as_u64().unwrap();
            assert_eq!(held + d["free"].as_u64().unwrap(), usable, "{what}: {d}");
            if d["peer"] == "127.0.0.2:5000" {
                assert_eq!(held, pop.count_where(to_pop) as u64, "{what}: {d}");
                assert_eq!(d["time_wait"], pop_tw, "{what}: {d}");
            } else {
                assert_eq!(d["peer"], "127.0.0.3:5100", "{what}: {d}");
            }
        }
    }
    // The inflow is the load's, and the kernel's counter of that namespace
    // saw the same closes (the test's own namespace sees none of them).
    let first = &recs[0];
    let start = first["time"].as_f64().unwrap() - first["interval_s"].as_f64().unwrap();
    let end = recs[recs.len() - 1]["time"].as_f64().unwrap();
    let truth = closed_before(end) - closed_before(start);
    let slack = |n: u64| (n / 10).max(5);
    assert!(
        new_total.abs_diff(truth) <= slack(truth),
        "{what}: tw counted {new_total} new TIME_WAIT, {truth} were made"
    );
    assert!(
        kernel_total.unsigned_abs().abs_diff(new_total) <= (new_total / 20).max(3),
        "{what}: kernel TW grew by {kernel_total}, tw counted {new_total}"
    );
}

fn fixture() -> &'static Path {
    Path::new("fixtures/watch/exhaustion.jsonl")
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn a_recorded_fixture_plots_and_a_stock_renderer_shows_its_text() {
    let svg = TempPath::new("chart.svg");
    let o = tw(&["plot", fixture().to_str().unwrap(), "-o", svg.as_str()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
    let doc = std::fs::read_to_string(&svg.0).unwrap();
    assert!(doc.starts_with("<svg") && doc.trim_end().ends_with("</svg>"));
    assert!(
        doc.contains("127.0.0.1 -&gt; 127.0.0.2:8080"),
        "the busy destination"
    );

    // librsvg lays the text out with whatever sans-serif fontconfig has, as a
    // viewer on a stock Debian would; the PDF's text must read back.
    let pdf = TempPath::new("chart.pdf");
    let rsvg = Command::new("rsvg-convert")
        .args(["-f", "pdf", "-o", pdf.as_str(), svg.as_str()])
        .output()
        .unwrap_or_else(|e| {
            panic!("rsvg-convert: {e} (install librsvg2-bin: .ci/setup.d/40-watch.sh)")
        });
    assert!(rsvg.status.success(), "{}", text(&rsvg.stderr));
    let words = Command::new("pdftotext")
        .args([pdf.as_str(), "-"])
        .output()
        .unwrap_or_else(|e| {
            panic!("pdftotext: {e} (install poppler-utils: .ci/setup.d/40-watch.sh)")
        });
    let words = text(&words.stdout);
    for want in [
        "tw watch",
        "Sockets by state",
        "TIME_WAIT inflow",
        "Ephemeral ports held per outbound destination",
        "TIME_WAIT forecast",
        "2,000",
    ] {
        assert!(
            words.contains(want),
            "{want:?} not in the rendered chart:\n{words}"
        );
    }
}
