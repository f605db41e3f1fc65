//! Inflow from one snapshot's timer ages, on a real namespace: a client
//! that closes first, paced at a fixed rate to one destination, then a
//! single `tw ports --format json` read. ss's timers of the same namespace
//! are the oracle. Needs root.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::Netns;
use serde_json::Value;

/// Accepts on `listener` until `stop`, reading each connection to its EOF
/// before closing, so the client always closes first (outbound TIME_WAIT).
fn server(listener: TcpListener, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut buf = [0u8; 64];
                    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    })
}

/// `n` connections to `to` at `rate` per second on a fixed schedule (a late
/// one does not push the rest back), each closed at once by the client.
/// Returns how long the load took.
fn drive(to: SocketAddr, n: u32, rate: u32) -> Duration {
    let start = Instant::now();
    let limit = Duration::from_secs_f64(f64::from(n) / f64::from(rate) + 10.0);
    for i in 0..n {
        let due = start + Duration::from_secs_f64(f64::from(i) / f64::from(rate));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let s = TcpStream::connect_timeout(&to, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("connection {i} to {to}: {e}"));
        drop(s);
        assert!(
            start.elapsed() < limit,
            "{n} connections took over {limit:?}"
        );
    }
    start.elapsed()
}

/// The rate ss's timers give over the last 10 s, for `peer`: TIME_WAIT
/// sockets with 50 s or more left (ss prints whole seconds, rounded down).
fn ss_recent_rate(ns: &Netns, peer: &str) -> f64 {
    let ms = common::ss_timewait_ms(ns);
    let recent = ms
        .iter()
        .filter(|((_, p), left)| p == peer && **left >= 50_000)
        .count();
    recent as f64 / 10.0
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn one_read_gives_a_fixed_200_per_second_load_within_ten_percent() {
    let ns = Netns::new("inflow");
    assert_eq!(ns.sysctl("net/ipv4/tcp_tw_reuse"), "0");
    let to = SocketAddr::from(([127, 0, 0, 2], 5000));
    let listener = ns.run(|| TcpListener::bind(to).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let srv = server(listener, stop.clone());

    // 200/s for 20 s: 4000 connections, all made from inside the namespace.
    let took = ns.run(|| drive(to, 4000, 200));
    let out = ns.output(env!("CARGO_BIN_EXE_tw"), &["ports", "--format", "json"]);
    let oracle = ss_recent_rate(&ns, "127.0.0.2:5000");
    stop.store(true, Ordering::Relaxed);
    srv.join().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        took < Duration::from_secs(21),
        "the load fell behind: {took:?}"
    );

    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dests = v["destinations"].as_array().unwrap();
    assert_eq!(dests.len(), 1, "{v}");
    let d = &dests[0];
    assert_eq!(d["peer"], "127.0.0.2:5000", "{v}");
    // The last closes may still wait in FIN_WAIT2 for the server's FIN at
    // the moment of the read.
    let tw = d["states"]["TIME_WAIT"].as_u64().unwrap();
    assert!((3950..=4000).contains(&tw), "{tw} TIME_WAIT");
    let recent = d["recent_inflow_per_s"].as_f64().unwrap();
    let peak = d["peak_inflow_per_s"].as_f64().unwrap();
    eprintln!("recent {recent}/s, peak {peak}/s, ss's timers {oracle}/s, load took {took:?}");
    assert!((recent - 200.0).abs() <= 20.0, "recent {recent}/s: {v}");
    assert!((peak - 200.0).abs() <= 20.0, "peak {peak}/s: {v}");
    // ss read the same timers a moment later.
    assert!(
        (recent - oracle).abs() <= 10.0,
        "tw {recent}/s, ss {oracle}/s"
    );
    // The 60 s histogram: nothing older than the load (20 s, plus the read).
    let hist: Vec<u64> = d["inflow_last_60s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(hist.len(), 60);
    assert_eq!(hist[22..].iter().sum::<u64>(), 0, "{hist:?}");
    assert_eq!(hist.iter().sum::<u64>(), tw, "{hist:?}");
    // 4000 of 28232 ports held, 200/s more and 200/s expiring from 40 s on:
    // it never fills at this rate.
    assert_eq!(d["exhausted_in_s"], Value::Null, "{v}");
}

/// Closes `s` with SO_LINGER on and a 0 timeout: an RST, no TIME_WAIT.
fn close_linger_zero(s: TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `l` for the given length on a descriptor `s` owns.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
}

/// A counter of the namespace as the kernel prints it, the oracle. Through
/// thread-self: /proc/net is /proc/self/net, the main thread's namespace.
fn kernel_counter(ns: &Netns, file: &str, section: &str, name: &str) -> i64 {
    let text = ns.run(|| std::fs::read_to_string(format!("/proc/thread-self/net/{file}")).unwrap());
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{section}:")))
        .collect();
    let names: Vec<&str> = lines[0].split_whitespace().collect();
    let values: Vec<&str> = lines[1].split_whitespace().collect();
    let i = names.iter().position(|n| *n == name).unwrap();
    values[i].parse().unwrap()
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn linger_zero_and_unread_data_closes_show_in_doctor_summary_and_metrics() {
    use std::io::Write;
    let ns = Netns::new("resets");
    let to = SocketAddr::from(([127, 0, 0, 2], 5000));
    let listener = ns.run(|| TcpListener::bind(to).unwrap());
    ns.run(|| {
        // 5 linger-0 closes (TCPAbortOnData), then 3 closes with unread
        // data (TCPAbortOnClose), all by the client.
        for _ in 0..5 {
            let c = TcpStream::connect(to).unwrap();
            let (_s, _) = listener.accept().unwrap();
            close_linger_zero(c);
        }
        for _ in 0..3 {
            let c = TcpStream::connect(to).unwrap();
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"unread").unwrap();
            thread::sleep(Duration::from_millis(50));
            drop(c);
        }
    });
    let on_data = kernel_counter(&ns, "netstat", "TcpExt", "TCPAbortOnData");
    let on_close = kernel_counter(&ns, "netstat", "TcpExt", "TCPAbortOnClose");
    let out_rsts = kernel_counter(&ns, "snmp", "Tcp", "OutRsts");
    assert_eq!((on_data, on_close), (5, 3));

    let tw = env!("CARGO_BIN_EXE_tw");
    let doctor = ns.output(tw, &["doctor", "--format", "json"]);
    let v: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "resets")
        .unwrap_or_else(|| panic!("{v}"));
    let title = f["title"].as_str().unwrap();
    assert!(
        title.contains("5 linger-0 closes, 3 closes with unread data"),
        "{title}"
    );
    assert!(
        title.starts_with(&format!("resets: {out_rsts} sent")),
        "{title}"
    );

    let sum = ns.output(tw, &["summary", "--format", "json"]);
    let v: Value = serde_json::from_slice(&sum.stdout).unwrap();
    let get = |n: &str| {
        v["resets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .map(|c| c["value"].clone())
    };
    assert_eq!(get("TCPAbortOnData"), Some(5.into()), "{v}");
    assert_eq!(get("TCPAbortOnClose"), Some(3.into()), "{v}");

    let m = ns.output(tw, &["metrics"]);
    let m = String::from_utf8_lossy(&m.stdout);
    assert!(
        m.lines().any(|l| l == "tw_tcpext_abort_on_data_total 5"),
        "{m}"
    );
    assert!(
        m.lines().any(|l| l == "tw_tcpext_abort_on_close_total 3"),
        "{m}"
    );
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn watch_forecast_under_tcp_tw_reuse_2_matches_where_ports_settle() {
    use std::process::Stdio;
    let ns = Netns::new("reuse");
    // 2000 ports, 1000 of the first-choice parity; 130/s x 60 s would need
    // 7800, so without reuse the range would fill in about 15 s.
    ns.set_sysctl("net/ipv4/ip_local_port_range", "40000 41999");
    ns.set_sysctl("net/ipv4/tcp_tw_reuse", "2");
    assert_eq!(ns.sysctl("net/ipv4/tcp_timestamps"), "1");
    let to = SocketAddr::from(([127, 0, 0, 2], 5000));
    let listener = ns.run(|| TcpListener::bind(to).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let srv = server(listener, stop.clone());

    let mut watch = ns.cmd(env!("CARGO_BIN_EXE_tw"));
    watch.args([
        "watch",
        "--format",
        "json",
        "--interval",
        "1s",
        "--count",
        "30",
    ]);
    let child = watch
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // 130/s for 25 s, then nothing while watch takes its last samples.
    let took = ns.run(|| drive(to, 3250, 130));
    let out = common::wait_bounded(child, "tw watch", Instant::now() + Duration::from_secs(60));
    stop.store(true, Ordering::Relaxed);
    srv.join().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        took < Duration::from_secs(27),
        "the load fell behind: {took:?}"
    );

    let records: Vec<Value> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(records.len(), 30);
    let dest = |r: &Value| -> Option<Value> {
        r["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["peer"] == "127.0.0.2:5000")
            .cloned()
    };
    // Where the ports held actually settle: the most held while loaded.
    let loaded: Vec<Value> = records
        .iter()
        .filter(|r| r["elapsed_s"].as_f64().unwrap() < took.as_secs_f64() - 1.0)
        .filter_map(dest)
        .collect();
    let settled = loaded
        .iter()
        .map(|d| d["held"].as_u64().unwrap())
        .max()
        .unwrap();
    eprintln!(
        "held: {:?}",
        loaded
            .iter()
            .map(|d| (d["held"].clone(), d["settles_at"].clone()))
            .collect::<Vec<_>>()
    );
    assert!(
        settled < 2000 * 6 / 10,
        "ports held {settled}: did connect() take over TIME_WAIT?"
    );
    // Once 10 s of rate are in (and the rate window is full), every forecast
    // is within 20% of where they settled, and none says the range fills.
    for d in &loaded[10..] {
        let f = d["settles_at"].as_f64().unwrap();
        assert!(
            (f - settled as f64).abs() <= settled as f64 * 0.2,
            "forecast {f}, settled {settled}: {d}"
        );
        assert_eq!(d["exhausted_in_s"], Value::Null, "{d}");
    }
    // After the load: no forecast from the first sample that saw no inflow.
    let after: Vec<&Value> = records
        .iter()
        .filter(|r| r["time_wait"]["new"] == 0)
        .collect();
    assert!(!after.is_empty(), "watch outlived the load");
    for r in after {
        assert_eq!(r["time_wait"]["forecast"], Value::Null, "{r}");
        if let Some(d) = dest(r) {
            assert_eq!(d["exhausted_in_s"], Value::Null, "{d}");
        }
    }
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn count_by_lport_and_the_summary_keep_two_backends_on_one_port_apart() {
    let ns = Netns::new("lport");
    let backends = [
        (SocketAddr::from(([127, 0, 0, 21], 8080)), 30),
        (SocketAddr::from(([127, 0, 0, 22], 8080)), 20),
    ];
    let _listeners = ns.run(|| {
        let mut keep = Vec::new();
        for (addr, n) in backends {
            let l = TcpListener::bind(addr).unwrap();
            for _ in 0..n {
                // The server closes first: TIME_WAIT on the backend's port.
                let mut c = TcpStream::connect(addr).unwrap();
                let (s, _) = l.accept().unwrap();
                drop(s);
                let mut buf = [0u8; 8];
                assert_eq!(c.read(&mut buf).unwrap(), 0);
            }
            // Listeners stay open for the reads below.
            keep.push(l);
        }
        keep
    });
    // ss, the oracle: TIME_WAIT per local address and port.
    let mut want = std::collections::BTreeMap::new();
    for ((local, _), _) in common::ss_timewait_ms(&ns) {
        *want.entry(local).or_insert(0u64) += 1;
    }
    assert_eq!(want.len(), 2, "{want:?}");
    let tw = env!("CARGO_BIN_EXE_tw");
    for args in [
        &[
            "count",
            "--state",
            "time-wait",
            "--by",
            "lport",
            "--format",
            "json",
        ][..],
        &["count", "--by", "lport", "--format", "json"][..],
    ] {
        let out = ns.output(tw, args);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let got: std::collections::BTreeMap<String, u64> = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["key"].as_str().unwrap().to_string(),
                    g["count"].as_u64().unwrap(),
                )
            })
            .collect();
        // With the listeners (second read) each group also holds its listener.
        let listeners = u64::from(!args.contains(&"time-wait"));
        let want: std::collections::BTreeMap<String, u64> = want
            .iter()
            .map(|(k, n)| (k.clone(), n + listeners))
            .collect();
        assert_eq!(got, want, "{args:?}: {v}");
    }
    let out = ns.output(tw, &["summary", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["top_time_wait_local_ports"],
        serde_json::json!([{"key": "127.0.0.21:8080", "count": 30}, {"key": "127.0.0.22:8080", "count": 20}]),
        "{v}"
    );
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn time_wait_of_a_restarted_server_stays_inbound_and_is_called_a_guess() {
    let ns = Netns::new("restart");
    let addr = SocketAddr::from(([127, 0, 0, 2], 8080));
    ns.run(|| {
        let l = TcpListener::bind(addr).unwrap();
        for _ in 0..25 {
            // The server closes first: TIME_WAIT on 127.0.0.2:8080.
            let mut c = TcpStream::connect(addr).unwrap();
            let (s, _) = l.accept().unwrap();
            drop(s);
            let mut buf = [0u8; 8];
            assert_eq!(c.read(&mut buf).unwrap(), 0);
        }
        // The server stops (a restart): its listener is gone.
        drop(l);
    });
    let oracle = common::ss_timewait_ms(&ns)
        .keys()
        .filter(|(local, _)| local == "127.0.0.2:8080")
        .count();
    assert_eq!(oracle, 25);
    let tw = env!("CARGO_BIN_EXE_tw");
    let out = ns.output(
        tw,
        &[
            "count",
            "--state",
            "time-wait",
            "--by",
            "direction",
            "--format",
            "json",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["groups"],
        serde_json::json!([{"key": "in", "count": 25}]),
        "{v}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("tw: 25 sockets taken as inbound from the port range alone (a guess)"),
        "{err}"
    );
    // No ephemeral port is held for them.
    let ports = ns.output(tw, &["ports", "--format", "json"]);
    let v: Value = serde_json::from_slice(&ports.stdout).unwrap();
    assert_eq!(v["destinations"], serde_json::json!([]), "{v}");
}
