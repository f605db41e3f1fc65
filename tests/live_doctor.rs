//! `tw ports` and `tw doctor` on a real namespace heading for port
//! exhaustion: a 200-port range and a client without keep-alive that closes
//! first, until one destination is nearly full. Needs root.

mod common;

use std::process::Output;

use common::{Net, Netns, Population};
use serde_json::Value;

fn tw(ns: &Netns, args: &[&str]) -> Output {
    ns.output(env!("CARGO_BIN_EXE_tw"), args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const DEST: &str = "127.0.0.1 -> 127.0.0.2:5000";

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn doctor_flags_a_destination_running_out_of_ports_and_clears_after_widening() {
    let ns = Netns::new("exhaust");
    // 200 ports: connect() walks 40000..40199, even ports first.
    ns.set_sysctl("net/ipv4/ip_local_port_range", "40000 40199");
    let _pop = Population::builder()
        .listeners(Net::V4, 1)
        .time_wait(Net::V4, 190)
        .build(&ns);

    let ports = tw(&ns, &["ports", "--format", "json"]);
    assert!(ports.status.success(), "{ports:?}");
    let v: Value = serde_json::from_slice(&ports.stdout).unwrap();
    assert_eq!(v["capacity"]["available"], 200);
    assert_eq!(v["capacity"]["preferred_parity"], 100);
    let dests = v["destinations"].as_array().unwrap();
    assert_eq!(dests.len(), 1, "{v}");
    let d = &dests[0];
    assert_eq!(
        (d["local"].as_str(), d["peer"].as_str()),
        (Some("127.0.0.1"), Some("127.0.0.2:5000"))
    );
    assert_eq!(d["held"], 190);
    assert_eq!(d["states"]["TIME_WAIT"], 190);
    // connect() fills the preferred (even) half first.
    assert_eq!(d["held_preferred"], 100);

    let plain = tw(&ns, &["ports", "--format", "plain"]);
    assert!(stdout(&plain).contains("95.0%"), "{}", stdout(&plain));

    let doctor = tw(&ns, &["doctor", "--format", "plain"]);
    let text = stdout(&doctor);
    assert_eq!(doctor.status.code(), Some(2), "{text}");
    // Prose is wrapped; compare words.
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.starts_with("CRIT:"), "{text}");
    assert!(
        text.contains(&format!(
            "CRIT {DEST} holds 190 of 200 ephemeral ports (95.0%)"
        )),
        "{text}"
    );
    // The rate from the timers' ages: all 190 closed within the last 10 s
    // (not 190 / 60 s = 3/s), against the 200 / 60 s the range sustains.
    assert!(
        text.contains("closed to it (from timer ages): 19/s over the last 10 s"),
        "{text}"
    );
    assert!(text.contains("at most 200 / 60 s = 3/s"), "{text}");
    assert!(text.contains("tcp_tw_reuse=1 (now 0)"), "{text}");

    let json = tw(&ns, &["doctor", "--format", "json"]);
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["status"], "crit");
    let rule = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "port_exhaustion")
        .expect("a port_exhaustion finding");
    assert_eq!(rule["severity"], "crit");
    assert!(!rule["fixes"].as_array().unwrap().is_empty());

    // What tw capture writes reads back to the same verdict elsewhere.
    let dir = std::env::temp_dir().join(format!("tw-capture-{}", std::process::id()));
    let cap = tw(&ns, &["capture", dir.to_str().unwrap()]);
    assert!(cap.status.success(), "{cap:?}");
    let offline = common::run_bounded(std::process::Command::new(env!("CARGO_BIN_EXE_tw")).args([
        "--proc-root",
        dir.to_str().unwrap(),
        "doctor",
        "--format",
        "plain",
    ]));
    assert_eq!(offline.status.code(), Some(2));
    assert!(stdout(&offline).contains(DEST), "{}", stdout(&offline));
    let dump = dir.join("sock_diag.dump");
    let from_dump =
        common::run_bounded(std::process::Command::new(env!("CARGO_BIN_EXE_tw")).args([
            "--from",
            dump.to_str().unwrap(),
            "count",
            "--state",
            "time-wait",
        ]));
    assert_eq!(stdout(&from_dump), "190\n");
    std::fs::remove_dir_all(&dir).unwrap();

    // A wider range: the same sockets are no longer a problem.
    ns.set_sysctl("net/ipv4/ip_local_port_range", "10000 60999");
    let doctor = tw(&ns, &["doctor", "--format", "plain"]);
    let text = stdout(&doctor);
    assert_eq!(doctor.status.code(), Some(0), "{text}");
    assert!(!text.contains(DEST), "{text}");
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn doctor_is_quiet_on_a_healthy_namespace() {
    let ns = Netns::new("healthy");
    let _pop = Population::builder()
        .listeners(Net::V4, 2)
        .established(Net::V4, 5)
        .time_wait(Net::V4, 20)
        .build(&ns);
    let doctor = tw(&ns, &["doctor", "--format", "plain"]);
    let text = stdout(&doctor);
    assert_eq!(doctor.status.code(), Some(0), "{text}");
    assert!(text.starts_with("OK: 0 critical, 0 warning"), "{text}");
}

/// Regression: sysctls and counters are per namespace, so `--netns` must
/// read them from inside it, not from the namespace tw was started in.
#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn netns_reads_that_namespaces_facts() {
    let ns = Netns::new("facts");
    ns.set_sysctl("net/ipv4/ip_local_port_range", "40000 40199");
    let tw_outside = |args: &[&str]| {
        common::run_bounded(std::process::Command::new(env!("CARGO_BIN_EXE_tw")).args(args))
    };
    let out = tw_outside(&["--netns", ns.name(), "ports", "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["capacity"]["available"], 200, "{v}");
    let dir = std::env::temp_dir().join(format!("tw-nscap-{}", std::process::id()));
    let cap = tw_outside(&["--netns", ns.name(), "capture", dir.to_str().unwrap()]);
    assert!(cap.status.success(), "{cap:?}");
    let range = std::fs::read_to_string(dir.join("sys/net/ipv4/ip_local_port_range")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        range.split_whitespace().collect::<Vec<_>>(),
        ["40000", "40199"]
    );
    let all = tw_outside(&["--all-netns", "doctor"]);
    assert_eq!(all.status.code(), Some(3), "{all:?}");
    assert!(String::from_utf8_lossy(&all.stderr).contains("--netns NAME"));
}
