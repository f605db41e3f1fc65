//! Inflow from timer ages and doctor on captures of real loads at known
//! rates (fixtures/inflow, made by scripts/capture-inflow-fixtures; each
//! folder's load.json says what the driver did). No root needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(rel: &str) -> String {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/inflow")
        .join(rel);
    p.to_str().unwrap().to_string()
}

fn tw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tw"))
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn load(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{name}/load.json"))).unwrap())
        .unwrap()
}

/// The highest 10 s average the driver really made toward `peer`: its
/// measured rate, or all its connections over 10 s for a burst shorter
/// than that.
fn real_peak(load: &Value, peer: &str) -> f64 {
    let l = &load[peer];
    let n = l["connections"].as_f64().unwrap();
    let rate = l["measured_per_s"].as_f64().unwrap();
    (rate * 10.0).min(n) / 10.0
}

fn within(got: f64, want: f64, pct: f64) -> bool {
    (got - want).abs() <= want * pct / 100.0
}

/// Each way of reading the proxy capture: the sock_diag dump (ms timers)
/// and the /proc tables (USER_HZ ticks), both with the capture's facts.
fn proxy_reads() -> Vec<Vec<String>> {
    let root = fixture("proxy");
    let dump = fixture("proxy/sock_diag.dump");
    vec![
        vec!["--from".into(), dump, "--proc-root".into(), root.clone()],
        vec!["--proc-root".into(), root],
    ]
}

#[test]
fn peak_inflow_per_destination_is_within_20_percent_of_the_real_rate() {
    let load = load("proxy");
    for read in proxy_reads() {
        let mut args: Vec<&str> = read.iter().map(String::as_str).collect();
        args.extend(["ports", "--format", "json"]);
        let v = json(&tw(&args));
        let dests = v["destinations"].as_array().unwrap();
        assert_eq!(dests.len(), 3, "{v}");
        for d in dests {
            let peer = d["peer"].as_str().unwrap();
            let want = real_peak(&load, peer);
            let peak = d["peak_inflow_per_s"].as_f64().unwrap();
            assert!(
                within(peak, want, 20.0),
                "{read:?} {peer}: peak {peak}/s, real {want}/s"
            );
            // TIME_WAIT / 60, what doctor said before, is far off for all.
            let tw = d["states"]["TIME_WAIT"].as_f64().unwrap();
            assert!(!within(tw / 60.0, want, 20.0), "{peer}: {tw} / 60");
        }
        // The steady loads ran to the capture: their recent rate is theirs;
        // the burst ended 11.6 s before it: none in the last 10 s.
        let by_peer = |p: &str| dests.iter().find(|d| d["peer"] == p).unwrap();
        for p in ["127.0.0.21:8080", "127.0.0.22:8080"] {
            let recent = by_peer(p)["recent_inflow_per_s"].as_f64().unwrap();
            let want = load[p]["measured_per_s"].as_f64().unwrap();
            assert!(
                within(recent, want, 10.0),
                "{p}: recent {recent}, real {want}"
            );
        }
        assert_eq!(by_peer("127.0.0.23:9000")["recent_inflow_per_s"], 0.0);
        // The burst's 300 all entered in one or two seconds of age, 11-13 s
        // before the capture.
        let hist: Vec<u64> = by_peer("127.0.0.23:9000")["inflow_last_60s"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        assert_eq!(hist[11..14].iter().sum::<u64>(), 300, "{hist:?}");
    }
}

#[test]
fn summary_and_metrics_show_the_same_inflow_as_ports() {
    let root = fixture("proxy");
    let dump = fixture("proxy/sock_diag.dump");
    let base = ["--from", dump.as_str(), "--proc-root", root.as_str()];
    let sum = json(&tw(&[&base[..], &["summary", "--format", "json"]].concat()));
    let inflow = &sum["inflow"];
    // 80 + 25 per second at the end; the burst's 300 in its 10 s window
    // with 80 + 25 more of the steady ones per second.
    let recent = inflow["recent_inflow_per_s"].as_f64().unwrap();
    assert!(within(recent, 105.0, 10.0), "{inflow}");
    let peak = inflow["peak_inflow_per_s"].as_f64().unwrap();
    assert!(within(peak, 135.0, 10.0), "{inflow}");
    assert_eq!(inflow["destinations"][0]["peer"], "127.0.0.21:8080");
    // The summary text names what it prints.
    let text = tw(&[&base[..], &["summary", "--format", "plain"]].concat());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Inflow into TIME_WAIT"), "{text}");
    assert!(text.contains("127.0.0.1 -> 127.0.0.21:8080"), "{text}");

    let m = tw(&[&base[..], &["metrics"]].concat());
    assert!(m.status.success());
    let m = String::from_utf8_lossy(&m.stdout);
    let sample = |prefix: &str| -> f64 {
        m.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {m}"))
            .trim()
            .parse()
            .unwrap()
    };
    let peak_m = sample(
        "tw_destination_time_wait_inflow_per_second{local=\"127.0.0.1\",\
         peer=\"127.0.0.23:9000\",window=\"peak\"}",
    );
    assert_eq!(peak_m, 30.0);
    assert_eq!(
        sample("tw_time_wait_inflow_per_second{window=\"recent\"}"),
        recent
    );
}

#[test]
fn doctor_on_an_exhaustion_capture_read_with_its_facts_is_critical() {
    let root = fixture("exhaustion");
    let dump = fixture("exhaustion/sock_diag.dump");
    let out = tw(&[
        "--from",
        &dump,
        "--proc-root",
        &root,
        "doctor",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "port_exhaustion")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(f["severity"], "crit", "{f}");
    assert_eq!(
        f["title"],
        "127.0.0.1 -> 127.0.0.2:5000 holds 195 of 200 ephemeral ports (97.5%)"
    );
    // The rate is the timers': 195 in under 5 s, not 195 / 60 = 3/s.
    let evidence = f["evidence"].to_string();
    assert!(evidence.contains("20/s over the last 10 s"), "{evidence}");
    // The same tables through --proc-root alone agree.
    let out = tw(&["--proc-root", &root, "doctor"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn ports_says_already_exhausted_or_how_long_at_the_recent_inflow() {
    let root = fixture("exhaustion");
    let v = json(&tw(&["--proc-root", &root, "ports", "--format", "json"]));
    let d = &v["destinations"][0];
    // 195 of 200 held, 20/s arriving: 5 ports left last a quarter second.
    let t = d["exhausted_in_s"].as_f64().unwrap();
    assert!(t > 0.0 && t < 1.0, "{d}");
    let text = tw(&["--proc-root", &root, "ports", "--format", "plain"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("FULL IN: at INFLOW"), "{text}");
}

#[test]
fn processes_with_a_capture_are_refused() {
    let root = fixture("exhaustion");
    let dump = fixture("exhaustion/sock_diag.dump");
    for args in [
        vec!["--from", dump.as_str(), "-p", "ls"],
        vec!["--proc-root", root.as_str(), "-p", "ls"],
    ] {
        let out = tw(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("tw: -p:") && err.contains("leave -p out") && err.lines().count() == 1,
            "{err}"
        );
    }
}

#[test]
fn listen_send_q_from_proc_is_unknown_not_zero() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let proc_dir = base.join("proc");
    let dump = base.join("netlink/tcp.dump");
    // /proc does not show a listener's backlog: "-" and null.
    let out = tw(&[
        "--from",
        proc_dir.to_str().unwrap(),
        "ls",
        "--state",
        "listen",
        "--format",
        "plain",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows.iter().all(|r| r[5] == "-"), "{text}");
    let v = json(&tw(&[
        "--from",
        proc_dir.to_str().unwrap(),
        "ls",
        "--state",
        "listen",
        "--format",
        "json",
    ]));
    assert!(
        v.as_array().unwrap().iter().all(|s| s["send_q"].is_null()),
        "{v}"
    );
    // sock_diag has it: the backlog of the same listeners (16, as ss shows).
    let v = json(&tw(&[
        "--from",
        dump.to_str().unwrap(),
        "ls",
        "--state",
        "listen",
        "--format",
        "json",
    ]));
    assert!(
        v.as_array().unwrap().iter().all(|s| s["send_q"] == 16),
        "{v}"
    );
}
