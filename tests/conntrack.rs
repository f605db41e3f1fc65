//! `tw conntrack` against the kernel and against `conntrack -L` (conntrack-tools): each live test
//! turns tracking on in a namespace of its own with an nftables rule, makes a known population
//! (TIME_WAIT from client-closed connections, ESTABLISHED pairs, SYN_SENT toward a port whose
//! SYNs are dropped, UDP flows without replies) and compares. Fixture tests replay captures.

mod common;
#[path = "support/scratch.rs"]
mod scratch;

use scratch::Scratch;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Output};

use common::{run_bounded, Net, Netns, Population};
use serde_json::Value;

const TW: &str = env!("CARGO_BIN_EXE_tw");
/// Where SYNs are dropped (an input rule), so those connections stay SYN_SENT.
const BLACKHOLE: &str = "127.0.0.9:9999";

/// Turns conntrack on in `ns`: a rule that matches on `ct state` makes the output hook track
/// every flow (nf_ct_netns_get); the input chain drops SYNs to the blackholed port.
fn track(ns: &Netns) {
    let nft = |args: &[&str]| {
        let out = ns.output("nft", args);
        assert!(
            out.status.success(),
            "nft {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    nft(&["add", "table", "inet", "t"]);
    nft(&["add chain inet t out { type filter hook output priority 0; }"]);
    nft(&[
        "add", "rule", "inet", "t", "out", "ct", "state", "new", "counter",
    ]);
    nft(&["add chain inet t in { type filter hook input priority 0; }"]);
    nft(&["add rule inet t in ip daddr 127.0.0.9 tcp dport 9999 drop"]);
}

/// Non-blocking connects toward the blackhole: each stays SYN_SENT (the socket and the
/// conntrack entry) while its fd is held.
fn syn_sent(ns: &Netns, n: usize) -> Vec<OwnedFd> {
    ns.run(|| {
        (0..n)
            .map(|_| {
                // SAFETY: plain socket(2)/connect(2) on a fresh fd that OwnedFd then owns.
                unsafe {
                    let fd =
                        libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
                    assert!(fd >= 0);
                    let sa = libc::sockaddr_in {
                        sin_family: libc::AF_INET as u16,
                        sin_port: 9999u16.to_be(),
                        sin_addr: libc::in_addr {
                            s_addr: u32::from_ne_bytes([127, 0, 0, 9]),
                        },
                        sin_zero: [0; 8],
                    };
                    let r = libc::connect(
                        fd,
                        &sa as *const _ as *const libc::sockaddr,
                        std::mem::size_of::<libc::sockaddr_in>() as u32,
                    );
                    assert!(r == -1 && *libc::__errno_location() == libc::EINPROGRESS);
                    OwnedFd::from_raw_fd(fd)
                }
            })
            .collect()
    })
}

/// One datagram to each of `ports` on `addr` (nothing listens): UNREPLIED UDP entries, 30 s.
fn udp_flows(ns: &Netns, addr: &str, ports: std::ops::Range<u16>) {
    ns.run(|| {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        for p in ports {
            s.send_to(b"x", format!("{addr}:{p}")).unwrap();
        }
    });
}

fn tw(ns: &Netns, args: &[&str]) -> Output {
    ns.output(TW, args)
}

fn tw_ok(ns: &Netns, args: &[&str]) -> String {
    let out = tw(ns, args);
    assert!(
        out.status.success(),
        "tw {args:?} exited {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `KEY<TAB>COUNT` lines as a map.
fn groups(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .map(|l| {
            let (k, n) = l.split_once('\t').unwrap_or_else(|| panic!("line {l:?}"));
            (k.to_string(), n.parse().unwrap())
        })
        .collect()
}

/// One line of `conntrack -L`: (state label, destination as tw prints it).
fn conntrack_line(line: &str) -> Option<(String, String)> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let field = |k: &str| {
        w.iter()
            .find_map(|f| f.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
    };
    let dst = field("dst")?;
    let state = if w[0] == "tcp" {
        w[3].to_string()
    } else if w.contains(&"[UNREPLIED]") {
        "UNREPLIED".into()
    } else if w.contains(&"[ASSURED]") {
        "ASSURED".into()
    } else {
        "REPLIED".into()
    };
    let dest = match field("dport") {
        Some(p) if dst.contains(':') => format!("[{dst}]:{p}"),
        Some(p) => format!("{dst}:{p}"),
        None => dst.to_string(),
    };
    Some((state, dest))
}

/// `conntrack -L` of both families in `ns`: every entry's (state, destination).
fn conntrack_tools(ns: &Netns) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for family in ["ipv4", "ipv6"] {
        let out = ns.output("conntrack", &["-L", "-f", family]);
        assert!(
            out.status.success(),
            "conntrack -L -f {family}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        v.extend(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .filter_map(conntrack_line),
        );
    }
    v
}

fn count_by<K: Ord + Clone>(
    v: &[(String, String)],
    key: impl Fn(&(String, String)) -> K,
) -> BTreeMap<K, u64> {
    let mut m = BTreeMap::new();
    for e in v {
        *m.entry(key(e)).or_insert(0) += 1;
    }
    m
}

/// A namespace with tracking on and the mixed population; the sockets held in the returned
/// values keep the ESTABLISHED and SYN_SENT entries alive.
fn populated(tag: &str) -> (Netns, Population, Vec<OwnedFd>) {
    let ns = Netns::new(tag);
    track(&ns);
    let pop = Population::builder()
        .listeners(Net::V4, 2)
        .established(Net::V4, 6)
        .time_wait(Net::V4, 20)
        .established(Net::V6, 3)
        .time_wait(Net::V6, 5)
        .build(&ns);
    let held = syn_sent(&ns, 3);
    udp_flows(&ns, "127.0.0.20", 7000..7010);
    (ns, pop, held)
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn conntrack_matches_conntrack_tools_by_state_and_destination() {
    let (ns, _pop, _held) = populated("ct-oracle");
    let by_state = groups(&tw_ok(&ns, &["conntrack", "--by", "state"]));
    let by_dst = groups(&tw_ok(&ns, &["conntrack", "--by", "dst"]));
    let oracle = conntrack_tools(&ns);
    let want_state = count_by(&oracle, |e| e.0.clone());
    let want_dst = count_by(&oracle, |e| e.1.clone());
    assert_eq!(by_state, want_state, "by state: tw vs conntrack -L");
    assert_eq!(by_dst, want_dst, "by destination: tw vs conntrack -L");
    // And what the population made: the oracle agrees with the kernel, not just with tw.
    let n = |k: &str| by_state.get(k).copied().unwrap_or(0);
    assert_eq!(n("TIME_WAIT"), 25, "{by_state:?}");
    assert_eq!(n("ESTABLISHED"), 9, "{by_state:?}");
    assert_eq!(n("SYN_SENT"), 3, "{by_state:?}");
    assert_eq!(n("UNREPLIED"), 10, "{by_state:?}");
    assert_eq!(by_dst.get(BLACKHOLE), Some(&3));
    assert_eq!(by_dst.get("[::1]:6000"), Some(&8));
    // Per state and destination together.
    let tw_dst = groups(&tw_ok(
        &ns,
        &["conntrack", "--by", "dst", "--state", "time-wait"],
    ));
    let want = count_by(&oracle, |e| e.clone());
    for (dst, count) in &tw_dst {
        assert_eq!(
            want.get(&("TIME_WAIT".into(), dst.clone())),
            Some(count),
            "{dst}"
        );
    }
    assert_eq!(tw_dst.values().sum::<u64>(), 25);

    // The procfs fallback reads the same table.
    let proc_state = groups(&tw_ok(
        &ns,
        &["conntrack", "--source", "proc", "--by", "state"],
    ));
    assert_eq!(proc_state, by_state);

    // Filters and count mode.
    let count = |args: &[&str]| -> u64 {
        let mut a = vec!["conntrack", "--count"];
        a.extend_from_slice(args);
        tw_ok(&ns, &a).trim().parse().unwrap()
    };
    assert_eq!(count(&["--state", "TIME_WAIT"]), 25);
    assert_eq!(count(&["-6"]), 8);
    assert_eq!(count(&["--proto", "udp"]), 10);
    assert_eq!(count(&["--dport", "7000-7004"]), 5);
    assert_eq!(count(&["--dst", "127.0.0.9"]), 3);
    assert_eq!(count(&["--dst", "::1", "--state", "established"]), 3);
    let top = groups(&tw_ok(&ns, &["conntrack", "--by", "dst", "--top", "2"]));
    assert_eq!(top.len(), 2);

    // JSON: time left within each state's timeout, and the timeout named.
    let j: Value = serde_json::from_str(&tw_ok(&ns, &["conntrack", "--format", "json"])).unwrap();
    assert_eq!(j["source"], "ctnetlink");
    let states = j["states"].as_array().unwrap();
    let tw_row = states
        .iter()
        .find(|r| r["state"] == "TIME_WAIT")
        .expect("a TIME_WAIT row");
    let timeout = tw_row["timeout"].as_u64().unwrap();
    assert_eq!(
        timeout.to_string(),
        ns.sysctl("net/netfilter/nf_conntrack_tcp_timeout_time_wait")
    );
    let (min, max) = (
        tw_row["min_left"].as_u64().unwrap(),
        tw_row["max_left"].as_u64().unwrap(),
    );
    assert!(
        min <= max && max <= timeout && min + 60 > timeout,
        "{tw_row}"
    );
    assert_eq!(j["count"].as_u64(), Some(oracle.len() as u64));
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn the_dump_shows_only_its_own_namespace() {
    let a = Netns::new("ct-a");
    let b = Netns::new("ct-b");
    track(&a);
    track(&b);
    let _pa = Population::builder().time_wait(Net::V4, 4).build(&a);
    udp_flows(&b, "127.0.0.77", 7700..7705);
    let in_a = groups(&tw_ok(&a, &["conntrack", "--by", "daddr"]));
    assert_eq!(in_a, BTreeMap::from([("127.0.0.2".to_string(), 4)]));
    assert_eq!(conntrack_tools(&a).len(), 4);
    // --netns from outside reads B's table, not the caller's.
    let out =
        run_bounded(Command::new(TW).args(["--netns", b.name(), "conntrack", "--by", "daddr"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        groups(&String::from_utf8(out.stdout).unwrap()),
        BTreeMap::from([("127.0.0.77".to_string(), 5)])
    );
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn capture_keeps_the_table_and_proc_root_reads_it_back() {
    let (ns, _pop, _held) = populated("ct-capture");
    // Removed on drop, even when an assertion fails.
    let scratch = Scratch::new("ct-capture");
    let dir = scratch.0.join("capture");
    let dirs = dir.to_str().unwrap();
    tw_ok(&ns, &["capture", dirs]);
    let live = tw_ok(&ns, &["conntrack", "--by", "dst"]);
    for f in [
        "conntrack.dump",
        "conntrack-stats.dump",
        "sys/net/netfilter/nf_conntrack_max",
        "sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait",
    ] {
        assert!(dir.join(f).is_file(), "{f} not captured");
    }
    let out = run_bounded(Command::new(TW).args(["--proc-root", dirs, "conntrack", "--by", "dst"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), live);
    let out =
        run_bounded(Command::new(TW).args(["--proc-root", dirs, "conntrack", "--format", "json"]));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["source"], "capture");
    assert_eq!(
        j["max"].as_u64().unwrap().to_string(),
        ns.sysctl("net/netfilter/nf_conntrack_max")
    );
    assert!(j["stats"]["cpus"].as_u64().unwrap() >= 1);
    // The doctor of the capture sees the table too.
    let out = run_bounded(Command::new(TW).args([
        "--proc-root",
        dirs,
        "doctor",
        "--verbose",
        "--format",
        "json",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("25 conntrack entries against"), "{text}");
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn doctor_and_metrics_count_conntrack_entries() {
    let (ns, _pop, _held) = populated("ct-doctor");
    let out = tw(&ns, &["doctor", "--verbose", "--format", "json"]);
    let findings: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = findings.to_string();
    let ct = findings
        .as_array()
        .or_else(|| findings["findings"].as_array())
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "conntrack")
        .unwrap_or_else(|| panic!("no conntrack finding: {text}"))
        .clone();
    let evidence = ct["evidence"].to_string();
    assert!(
        evidence.contains("25 conntrack entries against 25 TIME_WAIT sockets"),
        "{evidence}"
    );
    assert!(evidence.contains("tcp TIME_WAIT: 25 entries"), "{evidence}");
    let metrics = tw_ok(&ns, &["metrics"]);
    for want in [
        "tw_conntrack_entries_by_state{proto=\"tcp\",state=\"TIME_WAIT\"} 25",
        "tw_conntrack_entries_by_state{proto=\"tcp\",state=\"SYN_SENT\"} 3",
        "tw_conntrack_entries_by_state{proto=\"udp\",state=\"UNREPLIED\"} 10",
        "tw_conntrack_destination_entries{proto=\"tcp\",addr=\"::1\",port=\"6000\"} 8",
        "# TYPE tw_conntrack_drop_total counter",
    ] {
        assert!(metrics.contains(want), "{want} missing:\n{metrics}");
    }
    if Command::new("promtool").arg("--version").output().is_ok() {
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(metrics.as_bytes())
            .unwrap();
        let out = common::wait_bounded(
            child,
            "promtool",
            std::time::Instant::now() + std::time::Duration::from_secs(30),
        );
        assert!(
            out.status.success(),
            "promtool: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn without_permission_conntrack_says_so_in_one_line_and_exits_2() {
    let ns = Netns::new("ct-perm");
    track(&ns);
    let as_nobody = |args: &[&str]| {
        let mut a = vec!["--reuid=65534", "--regid=65534", "--clear-groups", TW];
        a.extend_from_slice(args);
        ns.output("setpriv", &a)
    };
    let out = as_nobody(&["conntrack"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("tw: ") && err.contains("root"), "{err}");
    // Other commands are unchanged for the same user.
    let out = as_nobody(&["count"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- captured fixtures: no root needed ----

fn fixture(rel: &str) -> String {
    format!("{}/fixtures/conntrack/{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn tw_fixture(args: &[&str]) -> Output {
    run_bounded(Command::new(TW).args(args))
}

/// The oracle stored beside the fixture: `conntrack -L` of the same namespace.
fn fixture_oracle() -> Vec<(String, String)> {
    std::fs::read_to_string(fixture("conntrack-L.txt"))
        .unwrap()
        .lines()
        .filter_map(conntrack_line)
        .collect()
}

#[test]
fn a_captured_dump_reads_like_conntrack_tools_saw_it() {
    let oracle = fixture_oracle();
    for dir in ["capture", "procfs"] {
        let root = fixture(dir);
        let out = tw_fixture(&["--proc-root", &root, "conntrack", "--by", "state"]);
        assert!(
            out.status.success(),
            "{dir}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            groups(&String::from_utf8(out.stdout).unwrap()),
            count_by(&oracle, |e| e.0.clone()),
            "{dir}"
        );
        let out = tw_fixture(&["--proc-root", &root, "conntrack", "--by", "dst"]);
        assert_eq!(
            groups(&String::from_utf8(out.stdout).unwrap()),
            count_by(&oracle, |e| e.1.clone()),
            "{dir}"
        );
    }
}

#[test]
fn the_report_names_the_health_and_the_timeouts() {
    let out = tw_fixture(&[
        "--proc-root",
        &fixture("capture"),
        "conntrack",
        "--format",
        "plain",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("conntrack (capture): "), "{text}");
    assert!(text.contains("of 262144 (nf_conntrack_max"), "{text}");
    assert!(
        text.contains("Statistics since boot, summed over 2 CPUs"),
        "{text}"
    );
    assert!(
        text.contains("nf_conntrack_tcp_timeout_time_wait"),
        "{text}"
    );
    assert!(text.contains("Top destinations"), "{text}");
}

#[test]
fn corrupt_captures_fail_in_one_line_naming_the_file() {
    let scratch = Scratch::new("ct-corrupt");
    let dir = scratch.0.clone();
    let dump = std::fs::read(fixture("capture/conntrack.dump")).unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        ("cut", dump[..dump.len() / 2].to_vec()),
        ("huge length", {
            let mut d = dump.clone();
            d[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
            d
        }),
        ("garbage", b"not a netlink dump at all, but text".to_vec()),
    ];
    for (what, bytes) in cases {
        std::fs::write(dir.join("conntrack.dump"), bytes).unwrap();
        let out = tw_fixture(&["--proc-root", dir.to_str().unwrap(), "conntrack"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(out.stdout.is_empty(), "{what}");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.contains("conntrack.dump"), "{what}: {err}");
    }
    // A folder without any table says what it lacks.
    std::fs::remove_file(dir.join("conntrack.dump")).unwrap();
    let out = tw_fixture(&["--proc-root", dir.to_str().unwrap(), "conntrack"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("holds no conntrack table"), "{err}");
    // Flags that do not apply are refused in one line (a bad --proto by clap, as usage).
    for args in [
        &["conntrack", "--state", "fin-wait2"][..],
        &["conntrack", "--direction", "in"],
        &["--from", "x", "conntrack"],
        &["--all-netns", "conntrack"],
    ] {
        let out = tw_fixture(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("tw: "), "{args:?}: {err}");
    }
    let out = tw_fixture(&["conntrack", "--proto", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tcp, udp"));
}
