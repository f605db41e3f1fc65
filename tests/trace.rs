//! Live tests of `tw trace` (eBPF events) on the real kernel, each in its own network namespace:
//! a driver process makes a known load, and the events tw credits to the driver's pid must match
//! what the driver made and saw. Also: the committed eBPF object is what its source builds, and
//! that build loads. Needs root, BTF, iproute2, rustc (the driver) and clang (the object check).

mod common;
#[path = "support/driver.rs"]
mod driver;
#[path = "support/scratch.rs"]
mod scratch;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{run_bounded, Netns};
use driver::{DriverRun, Server};
use scratch::Scratch;
use serde_json::Value;

const TW: &str = env!("CARGO_BIN_EXE_tw");

/// The driver's file name, and so its process name.
const DRIVER: &str = "trace_driver";

fn drive(ns: &Netns, args: &[&str]) -> DriverRun {
    driver::drive(DRIVER, ns, args)
}

/// `tw trace` running in the background; `finish` waits for it (bounded) and parses its
/// JSON Lines. Killed by PID on drop if still running.
struct Trace {
    child: Option<Child>,
    stderr_first: String,
    rest_of_stderr: Option<thread::JoinHandle<String>>,
}

impl Trace {
    /// Starts `tw trace ARGS` and waits until it says it is tracing.
    fn start(args: &[&str]) -> Trace {
        let mut child = Command::new(TW)
            .arg("trace")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tw trace");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let rest = thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            let _ = tx.send(first);
            let mut rest = String::new();
            let _ = r.read_to_string(&mut rest);
            rest
        });
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("tw trace said nothing on stderr within 20 s");
        let mut t = Trace {
            child: Some(child),
            stderr_first: first,
            rest_of_stderr: Some(rest),
        };
        if !t.stderr_first.contains("tracing") {
            let first = t.stderr_first.clone();
            panic!("tw trace did not start: {first}{}", t.stderr_rest());
        }
        t
    }

    fn stderr_rest(&mut self) -> String {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.rest_of_stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default()
    }

    /// Waits for `--duration` to end it; returns its records.
    fn finish(mut self) -> Vec<Value> {
        let mut child = self.child.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tw trace did not stop by its --duration");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let out = reader.join().unwrap();
        let err = self.rest_of_stderr.take().unwrap().join().unwrap();
        assert!(status.success(), "tw trace failed: {status}\n{err}");
        assert!(
            !err.contains("lost"),
            "tw trace lost events, counts are not exact: {err}"
        );
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Inode of a named namespace, as tw trace reports it.
fn inode(ns: &Netns) -> u64 {
    std::fs::metadata(format!("/run/netns/{}", ns.name()))
        .unwrap()
        .ino()
}

/// Sum of `counts.KIND` over the records of `pid`.
fn count(records: &[Value], pid: u32, kind: &str) -> u64 {
    records
        .iter()
        .filter(|r| r["pid"] == pid)
        .map(|r| r["counts"][kind].as_u64().unwrap())
        .sum()
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn time_wait_entered_matches_what_a_300_per_second_driver_made_and_names_its_pid() {
    let ns = Netns::new("trace-tw");
    let server = Server::start(&ns, "127.0.0.1:5000", false);
    let trace = Trace::start(&["--netns", ns.name(), "--duration", "8", "--interval", "1s"]);
    let run = drive(&ns, &["close-first", &server.addr.to_string(), "300", "5"]);
    let made = run.get("made");
    assert_eq!(run.get("failed"), 0, "the driver could not connect");
    assert!(made >= 1490, "driver made only {made} of 1500");
    let records = trace.finish();
    drop(server);
    // The kernel's own count of TIME_WAIT minisockets alive in the namespace (none has expired
    // yet: all are under 60 s old).
    let sockstat = ns.run(|| std::fs::read_to_string("/proc/thread-self/net/sockstat").unwrap());
    let kernel_tw: u64 = sockstat
        .split_whitespace()
        .skip_while(|w| *w != "tw")
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let tw = count(&records, run.pid, "time_wait");
    let closed_first = count(&records, run.pid, "close_first");
    let connects = count(&records, run.pid, "connect");
    let diff = (tw as f64 - made as f64).abs() / made as f64;
    eprintln!(
        "made {made} in {} s; pid {}: TIME_WAIT entered {tw} (FIN_WAIT2 substate {}), closed \
         first {closed_first}, connects {connects}; TIME_WAIT of any process {}; sockstat tw \
         {kernel_tw}",
        run.said["seconds"],
        run.pid,
        count(&records, run.pid, "fin_wait2"),
        records
            .iter()
            .map(|r| r["counts"]["time_wait"].as_u64().unwrap())
            .sum::<u64>()
    );
    assert!(
        diff <= 0.02,
        "TIME_WAIT entered by pid {}: {tw}, made {made} ({:.2}% apart)",
        run.pid,
        diff * 100.0
    );
    assert_eq!(closed_first, made, "closed first by the driver");
    assert_eq!(connects, made, "connections the driver made");
    // The server (this process) listened before tracing began: tw trace seeds its listener
    // from the socket table and /proc/*/fd, so what it accepted is credited to it.
    assert_eq!(count(&records, std::process::id(), "accept"), made);
    // Every record is of this namespace, and names the driver's command.
    for r in &records {
        assert_eq!(r["netns"], inode(&ns), "{r}");
        if r["pid"] == run.pid {
            assert_eq!(r["comm"], "trace_driver", "{r}");
            assert_eq!(r["daddr"], "127.0.0.1", "{r}");
            assert_eq!(r["dport"], 5000, "{r}");
        }
    }
    // ss agrees: the namespace holds as many TIME_WAIT (or the FIN_WAIT2 minisockets not yet
    // turned) as the driver made, all under 60 s old.
    let ss = ns.output(
        "ss",
        &["-tanH", "state", "time-wait", "state", "fin-wait-2"],
    );
    let held = String::from_utf8_lossy(&ss.stdout).lines().count() as u64;
    assert!(
        (held as f64 - made as f64).abs() / made as f64 <= 0.02,
        "ss shows {held} TIME_WAIT, made {made}"
    );
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn connects_failing_for_want_of_a_port_are_the_drivers_eaddrnotavail() {
    let ns = Netns::new("trace-exhaust");
    // 50 ports; the driver holds every connection, so the 51st connect finds none.
    ns.set_sysctl("net/ipv4/ip_local_port_range", "40000 40049");
    let server = Server::start(&ns, "127.0.0.1:5001", true);
    let trace = Trace::start(&["--netns", ns.name(), "--duration", "4"]);
    let run = drive(&ns, &["exhaust", &server.addr.to_string(), "80"]);
    let records = trace.finish();
    drop(server);
    let failed = run.get("eaddrnotavail");
    assert_eq!(run.get("made"), 50, "the range holds 50 ports");
    assert_eq!(failed, 30, "the driver saw 30 EADDRNOTAVAIL");
    assert_eq!(count(&records, run.pid, "connect_fail"), failed);
    assert_eq!(count(&records, run.pid, "connect"), 50);
    let to_server: Vec<&Value> = records
        .iter()
        .filter(|r| r["pid"] == run.pid && r["counts"]["connect_fail"].as_u64() > Some(0))
        .collect();
    assert!(!to_server.is_empty());
    for r in to_server {
        assert_eq!(r["daddr"], "127.0.0.1", "{r}");
        assert_eq!(r["dport"], 5001, "{r}");
        assert_eq!(r["comm"], "trace_driver", "{r}");
    }
}

/// TcpExt TWRecycled of the namespace: TIME_WAITs taken over by connect()
/// (__inet_check_established, net/ipv4/inet_hashtables.c).
fn tw_recycled(ns: &Netns) -> u64 {
    let text = ns.run(|| std::fs::read_to_string("/proc/thread-self/net/netstat").unwrap());
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let names = lines[0].split_whitespace();
    let values = lines[1].split_whitespace();
    names
        .zip(values)
        .find(|(n, _)| *n == "TWRecycled")
        .map(|(_, v)| v.parse().unwrap())
        .expect("TcpExt TWRecycled")
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn time_wait_takeovers_by_tcp_tw_reuse_match_the_kernels_tw_recycled() {
    let ns = Netns::new("trace-reuse");
    ns.set_sysctl("net/ipv4/tcp_tw_reuse", "1");
    // 20 ports for 80 connections: most must take over a TIME_WAIT.
    ns.set_sysctl("net/ipv4/ip_local_port_range", "40000 40019");
    let server = Server::start(&ns, "127.0.0.1:5006", false);
    let before = tw_recycled(&ns);
    let trace = Trace::start(&["--netns", ns.name(), "--duration", "6"]);
    let run = drive(&ns, &["close-first", &server.addr.to_string(), "20", "4"]);
    let records = trace.finish();
    drop(server);
    let recycled = tw_recycled(&ns) - before;
    let made = run.get("made");
    let reused = count(&records, run.pid, "tw_reuse");
    eprintln!(
        "made {made}, failed {}, tw_reuse {reused}, TWRecycled {recycled}",
        run.get("failed")
    );
    assert!(made >= 40, "made {made}");
    assert!(
        reused >= made - 20,
        "reused {reused} of {made} through 20 ports"
    );
    // Within one: under parallel load TWRecycled came out one short (56) in some runs while tw
    // trace's count stayed at made - 20 (57), as in every quiet run, where the two agree.
    assert!(
        reused.abs_diff(recycled) <= 1,
        "tw trace {reused} and the kernel's TcpExt TWRecycled {recycled}"
    );
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn linger_zero_closes_are_resets_sent_by_the_closing_process() {
    let ns = Netns::new("trace-rst");
    let server = Server::start(&ns, "127.0.0.1:5002", false);
    let trace = Trace::start(&["--netns", ns.name(), "--duration", "3"]);
    let run = drive(&ns, &["linger0", &server.addr.to_string(), "40"]);
    // And 5 connects to a port nobody listens on: the kernel answers each SYN with a reset
    // that no socket sends (tcp_v4_send_reset with sk NULL).
    let refused = ns.run(|| {
        (0..5)
            .filter(|_| TcpStream::connect("127.0.0.1:5099").is_err())
            .count() as u64
    });
    let records = trace.finish();
    drop(server);
    assert_eq!(run.get("made"), 40);
    assert_eq!(count(&records, run.pid, "rst_sent"), 40);
    // A reset is no FIN: nothing closed first, no TIME_WAIT.
    assert_eq!(count(&records, run.pid, "close_first"), 0);
    assert_eq!(count(&records, run.pid, "time_wait"), 0);
    // This process received them all: the server's side of the driver's 40 (it runs the
    // server) and its own 5 refused connects.
    assert_eq!(refused, 5);
    let received: u64 = records
        .iter()
        .map(|r| r["counts"]["rst_recv"].as_u64().unwrap())
        .sum();
    assert_eq!(received, 45);
    assert_eq!(count(&records, std::process::id(), "rst_recv"), 45);
    // The refusals' resets: no process, inbound (the peer's address without its port).
    let unmatched: Vec<&Value> = records
        .iter()
        .filter(|r| r["pid"] == 0 && r["counts"]["rst_sent"].as_u64() > Some(0))
        .collect();
    let sent: u64 = unmatched
        .iter()
        .map(|r| r["counts"]["rst_sent"].as_u64().unwrap())
        .sum();
    assert_eq!(sent, 5, "{unmatched:?}");
    for r in unmatched {
        assert_eq!(r["daddr"], "127.0.0.1", "{r}");
        assert_eq!(r["dport"], Value::Null, "{r}");
    }
}

/// Regression: the per-CPU reset mark was cleared only by a CLOSE from FIN_WAIT2 or CLOSING,
/// so after a reset of an ESTABLISHED socket it stayed, and the next socket the slab put at the
/// same address lost its TIME_WAIT (1498 of 1500 seen once at 300/s).
#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn a_stale_reset_mark_never_hides_a_later_time_wait() {
    let ns = Netns::new("trace-stale-reset");
    let server = Server::start(&ns, "127.0.0.1:5007", false);
    let trace = Trace::start(&["--netns", ns.name(), "--duration", "4"]);
    let run = drive(&ns, &["alternate", &server.addr.to_string(), "200"]);
    let records = trace.finish();
    drop(server);
    assert_eq!(run.get("made"), 200);
    assert_eq!(count(&records, run.pid, "rst_sent"), 200);
    assert_eq!(count(&records, run.pid, "close_first"), 200);
    // One short at most: about 1 TIME_WAIT in 10,000 goes unseen by either state program
    // under parallel load, reset mark or not (BENCHMARKS.md, "TIME_WAIT counted against what
    // the kernel made"), so this catches a stale mark that hides two or more.
    let tw = count(&records, run.pid, "time_wait");
    assert!((199..=200).contains(&tw), "{tw} TIME_WAIT of 200");
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn events_of_another_namespace_never_leak_in() {
    let watched = Netns::new("trace-watched");
    let other = Netns::new("trace-other");
    let here = Server::start(&watched, "127.0.0.1:5003", false);
    let there = Server::start(&other, "127.0.0.1:5003", false);
    let trace = Trace::start(&["--netns", watched.name(), "--duration", "5"]);
    let noise = drive(
        &other,
        &["close-first", &there.addr.to_string(), "200", "2"],
    );
    let signal = drive(
        &watched,
        &["close-first", &here.addr.to_string(), "20", "1"],
    );
    let records = trace.finish();
    drop((here, there));
    assert!(noise.get("made") >= 390);
    assert_eq!(count(&records, noise.pid, "connect"), 0);
    assert!(records.iter().all(|r| r["pid"] != noise.pid));
    for r in &records {
        assert_eq!(r["netns"], inode(&watched), "{r}");
    }
    // The watched namespace's own load is all there.
    assert_eq!(count(&records, signal.pid, "connect"), signal.get("made"));
    assert_eq!(count(&records, signal.pid, "time_wait"), signal.get("made"));
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn the_committed_object_is_what_the_source_builds_and_that_build_loads() {
    common::require_root();
    let dir = Scratch::new("bpf");
    let built = dir.0.join("tw.bpf.o");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = run_bounded(Command::new(root.join("scripts/build-bpf")).arg(&built));
    assert!(
        o.status.success(),
        "scripts/build-bpf: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let clang = run_bounded(Command::new("clang").arg("--version"));
    let have = String::from_utf8_lossy(&clang.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let pinned = std::fs::read_to_string(root.join("bpf/CLANG_VERSION")).unwrap();
    assert_eq!(
        have.trim(),
        pinned.trim(),
        "the committed object was built by another clang; byte comparison needs the same one"
    );
    let bytes = std::fs::read(&built).unwrap();
    // Byte for byte: the build is deterministic (scripts/build-bpf says how).
    assert!(
        bytes == tw::source::events::object(),
        "bpf/tw.bpf.o is not what bpf/tw.bpf.c builds: run scripts/build-bpf and commit it"
    );

    // The object just built loads, and its events arrive, from this namespace only.
    let ns = Netns::new("trace-object");
    let scope =
        tw::source::events::Scope::of(Path::new(&format!("/run/netns/{}", ns.name()))).unwrap();
    let mut tracer = tw::source::events::Tracer::start_with(&bytes, scope)
        .unwrap_or_else(|e| panic!("loading the built object: {e}"));
    let server = Server::start(&ns, "127.0.0.1:5004", false);
    let local = ns.run(|| {
        let s = TcpStream::connect(server.addr).unwrap();
        let local = s.local_addr().unwrap();
        drop(s);
        local
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && seen.len() < 4 {
        tracer.poll(Duration::from_millis(100), &mut |e| {
            if e.local.port == local.port() {
                seen.push(e)
            }
        });
    }
    drop(server);
    use tw::model::event::EventKind::*;
    let kinds: Vec<_> = seen.iter().map(|e| e.kind).collect();
    for k in [Connect, CloseFirst, TimeWait] {
        assert!(kinds.contains(&k), "no {k:?} in {kinds:?}");
    }
    let me = std::process::id();
    for e in &seen {
        assert_eq!(e.process.pid, me, "{e:?}");
        assert_eq!(u64::from(e.netns), inode(&ns));
        assert_eq!(e.peer.port, 5004);
    }
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn without_privilege_trace_says_why_in_one_line_and_exits_2() {
    common::require_root();
    // nobody, with no capabilities: what a plain user gets.
    let o = run_bounded(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .args([TW, "trace", "--duration", "1"]),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("tw: trace: eBPF is unavailable: "), "{err}");
    assert!(err.contains("root"), "{err}");
    assert!(err.contains("every other command"), "{err}");
    assert!(o.stdout.is_empty());
    // Other commands still work for that user.
    let ls = run_bounded(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .args([TW, "count"]),
    );
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
}

/// A private tmux server, killed (by its socket) when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn start(tag: &str, command: &str) -> Tmux {
        let t = Tmux {
            socket: std::env::temp_dir()
                .join(format!("tw-trace-tmux-{}-{tag}", std::process::id())),
        };
        let o = t.run(&["new-session", "-d", "-x", "120", "-y", "24", command]);
        assert!(
            o.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        t
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket).args(args);
        run_bounded(&mut cmd)
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "0"]).stdout).into_owned()
    }

    /// Alternate screen up, cursor shown: "1 0" while the table is up.
    fn modes(&self) -> String {
        let o = self.run(&["display", "-p", "-t", "0", "#{alternate_on} #{cursor_flag}"]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what:?} never showed:\n{s}");
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        let _ = std::fs::remove_file(&self.socket);
    }
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn the_live_table_redraws_per_process_and_q_or_ctrl_c_restores_the_terminal() {
    let ns = Netns::new("trace-tui");
    let server = Server::start(&ns, "127.0.0.1:5005", false);
    for (key, tag) in [("q", "q"), ("C-c", "ctrl-c")] {
        let command = format!(
            "ip netns exec {} {TW} trace --interval 500ms; echo tw-exit=$?; stty -a; echo stty-done; sleep 30",
            ns.name()
        );
        let tmux = Tmux::start(tag, &command);
        let first = tmux.wait_for("q quits");
        assert!(
            first.contains("PROCESS") && first.contains("TW/S"),
            "{first}"
        );
        let run = drive(&ns, &["close-first", &server.addr.to_string(), "50", "2"]);
        // The driver's row: its pid and command, the server's address.
        let row = format!("{} trace_driver", run.pid);
        let screen = tmux.wait_for(&row);
        let line = screen.lines().find(|l| l.contains(&row)).unwrap();
        assert!(line.contains("127.0.0.1:5005"), "{line}");
        assert_eq!(tmux.modes(), "1 0", "alternate screen up, cursor hidden");
        // Redrawn every interval: once the driver is done, its row goes.
        let deadline = Instant::now() + Duration::from_secs(10);
        while tmux.screen().contains(&row) {
            assert!(Instant::now() < deadline, "the table was not redrawn");
            thread::sleep(Duration::from_millis(100));
        }
        tmux.run(&["send-keys", "-t", "0", key]);
        let after = tmux.wait_for("stty-done");
        assert!(after.contains("tw-exit=0"), "{key}: {after}");
        assert!(!after.contains("q quits"), "{key}: {after}");
        assert_eq!(tmux.modes(), "0 1", "{key}: main screen, cursor shown");
        let stty = after.split("tw-exit=0").nth(1).unwrap();
        for flag in ["icanon", "echo", "opost", "isig"] {
            assert!(
                stty.split_whitespace().any(|w| w == flag),
                "{key}: {flag} not restored: {stty}"
            );
        }
    }
    drop(server);
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn doctor_trace_names_the_process_whose_connects_failed_and_goes_critical() {
    let ns = Netns::new("trace-doctor");
    ns.set_sysctl("net/ipv4/ip_local_port_range", "40000 40049");
    let server = Server::start(&ns, "127.0.0.1:5008", true);
    let mut doctor = Command::new(TW)
        .args([
            "doctor",
            "--netns",
            ns.name(),
            "--trace",
            "4",
            "--format",
            "json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(doctor.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.contains("tracing for 4 s"), "{first}");
    let run = drive(&ns, &["exhaust", &server.addr.to_string(), "80"]);
    let mut stdout = doctor.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        let _ = stderr.read_to_string(&mut String::new());
        s
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = doctor.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = doctor.kill();
            let _ = doctor.wait();
            panic!("tw doctor --trace did not finish");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = reader.join().unwrap();
    drop(server);
    assert_eq!(run.get("eaddrnotavail"), 30);
    assert_eq!(status.code(), Some(2), "critical");
    let report: Value = serde_json::from_slice(&stdout).unwrap();
    let findings = report["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"));
    let trace = findings
        .iter()
        .find(|f| f["rule"] == "trace")
        .unwrap_or_else(|| panic!("no trace finding: {report}"));
    assert_eq!(trace["severity"], "crit", "{trace}");
    let title = trace["title"].as_str().unwrap();
    assert!(title.starts_with("30 connect() calls failed"), "{title}");
    assert!(
        title.contains(&format!("trace_driver/{}", run.pid)) && title.contains("127.0.0.1:5008"),
        "{title}"
    );
}
