//! The command line over captured fixtures: formats, exit codes, errors.
//! No root needed.

#[path = "support/head.rs"]
mod head;
#[path = "support/scratch.rs"]
mod scratch;

use head::head;
use scratch::Scratch;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;
use predicates::prelude::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn tw() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tw"));
    c.env_remove("NO_COLOR");
    c
}

fn stdout_of(args: &[&str]) -> String {
    let out = tw().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "tw {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const SS1: &str = "iproute2/ss1.dump";

#[test]
fn ss_dump_capture_reads_every_part() {
    let dump = fixture(SS1);
    let d = dump.to_str().unwrap();
    // The capture holds the IPv4 dump, NLMSG_DONE, then the IPv6 dump.
    assert_eq!(
        stdout_of(&["--from", d, "count", "--by", "state"]),
        "ESTABLISHED\t5\nLISTEN\t2\n"
    );
    assert_eq!(stdout_of(&["--from", d, "count", "-4"]), "4\n");
    assert_eq!(stdout_of(&["--from", d, "count", "-6"]), "3\n");
}

/// ss reads a capture back through TCPDIAG_FILE (it stops at the first
/// NLMSG_DONE, so it shows the IPv4 part): tw's IPv4 sockets must be the
/// same ones.
#[test]
fn ss_dump_matches_ss_reading_the_same_file() {
    let dump = fixture(SS1);
    let ss = Command::new("ss")
        .args(["-Htan"])
        .env("TCPDIAG_FILE", &dump)
        .output()
        .expect("ss (iproute2) is installed");
    assert!(ss.status.success());
    let theirs: BTreeSet<String> = String::from_utf8(ss.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let state = match f[0] {
                "ESTAB" => "ESTABLISHED",
                s => s,
            };
            format!("{state} {} {}", f[3], f[4])
        })
        .collect();
    let json = stdout_of(&[
        "--from",
        dump.to_str().unwrap(),
        "-4",
        "ls",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ours: BTreeSet<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s["state"].as_str().unwrap(),
                s["local"].as_str().unwrap(),
                s["peer"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(ours.len(), 4);
    assert_eq!(ours, theirs);
}

#[test]
fn plain_listing_snapshot() {
    let d = fixture(SS1);
    assert_eq!(
        stdout_of(&[
            "--from",
            d.to_str().unwrap(),
            "ls",
            "--format",
            "plain",
            "--sort",
            "local"
        ]),
        "\
STATE        LOCAL                PEER                TIMER            RECV-Q  SEND-Q   UID  INODE
LISTEN       0.0.0.0:22           0.0.0.0:*           -                     0     128     0    411
ESTABLISHED  10.0.0.1:22          10.0.0.1:36266      keepalive 1h59m       0       0     0  15840
ESTABLISHED  10.0.0.1:22          10.0.0.2:50312      keepalive 1h59m       0       0     0  15834
ESTABLISHED  10.0.0.1:36266       10.0.0.1:22         keepalive 1h59m       0       0  1000  15057
LISTEN       [::]:22              [::]:*              -                     0     128     0    413
ESTABLISHED  [fec0:42::24]:22     [fec0:42::1]:44248  keepalive 1h49m       0       0     0  14185
ESTABLISHED  [fec0:42::24]:40520  [fec0:42::1]:22     keepalive 1h49m       0       0  1000   1647
"
    );
}

#[test]
fn json_listing_schema() {
    let d = fixture(SS1);
    let json = stdout_of(&[
        "--from",
        d.to_str().unwrap(),
        "ls",
        "--format",
        "json",
        "--limit",
        "2",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    let keys: BTreeSet<&str> = arr[1]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let want: BTreeSet<&str> = [
        "state",
        "family",
        "direction",
        "local",
        "peer",
        "timer",
        "retrans",
        "recv_q",
        "send_q",
        "uid",
        "inode",
    ]
    .into();
    assert_eq!(keys, want);
    assert_eq!(arr[0]["timer"], serde_json::Value::Null);
    assert_eq!(arr[1]["timer"]["kind"], "keepalive");
    assert!(arr[1]["timer"]["ms"].as_u64().unwrap() > 7_000_000);
    assert_eq!(arr[1]["family"], "inet");
}

#[test]
fn json_count_and_summary_schema() {
    let d = fixture(SS1);
    let d = d.to_str().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&stdout_of(&["--from", d, "count", "--format", "json"])).unwrap();
    assert_eq!(v, serde_json::json!({"total": 7}));
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&[
        "--from", d, "count", "--by", "lport", "--top", "1", "--format", "json",
    ]))
    .unwrap();
    assert_eq!(
        v,
        serde_json::json!({"total": 7, "by": "lport", "groups": [{"key": "22", "count": 5}]})
    );
    let v: serde_json::Value =
        serde_json::from_str(&stdout_of(&["--from", d, "--format", "json"])).unwrap();
    assert_eq!(v["total"], 7);
    assert_eq!((v["ipv4"].as_u64(), v["ipv6"].as_u64()), (Some(4), Some(3)));
    assert_eq!(v["states"]["ESTABLISHED"], 5);
    assert_eq!(v["states"]["TIME_WAIT"], 0);
    assert_eq!(v["states"].as_object().unwrap().len(), 11);
    assert_eq!(v["time_wait"]["expiring_within"]["60s"], 0);
}

#[test]
fn filters_apply_to_captures() {
    let d = fixture(SS1);
    let d = d.to_str().unwrap();
    let count = |extra: &[&str]| {
        let mut args = vec!["--from", d, "count"];
        args.extend_from_slice(extra);
        stdout_of(&args).trim().parse::<u64>().unwrap()
    };
    assert_eq!(count(&["--state", "listening"]), 2);
    assert_eq!(count(&["--state", "LISTEN,established"]), 7);
    assert_eq!(count(&["--state", "connected"]), 5);
    assert_eq!(count(&["--state", "bucket"]), 0);
    assert_eq!(count(&["--sport", "22"]), 5);
    assert_eq!(count(&["--dport", "22"]), 2);
    assert_eq!(count(&["--dport", "30000-65535"]), 3);
    assert_eq!(count(&["--src", "10.0.0.0/8"]), 3);
    assert_eq!(count(&["--dst", "10.0.0.2"]), 1);
    assert_eq!(count(&["--dst", "fec0:42::/32", "-6"]), 2);
    // Port 22 listens (both families), so sockets on it were accepted.
    assert_eq!(count(&["--direction", "in"]), 5);
    assert_eq!(count(&["--direction", "out"]), 2);
    assert_eq!(
        stdout_of(&["--from", d, "count", "--by", "direction"]),
        "in\t5\nout\t2\n"
    );
}

#[test]
fn fail_above_exit_codes() {
    let d = fixture(SS1);
    let d = d.to_str().unwrap();
    tw().args(["--from", d, "count", "--fail-above", "6"])
        .assert()
        .code(1)
        .stdout("7\n");
    tw().args(["--from", d, "count", "--fail-above", "7"])
        .assert()
        .code(0)
        .stdout("7\n");
    tw().args(["--from", d, "count", "--by", "state", "--fail-above", "6"])
        .assert()
        .code(1);
}

#[test]
fn unknown_state_lists_valid_names() {
    let d = fixture(SS1);
    tw().args(["--from", d.to_str().unwrap(), "--state", "foo", "count"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            predicate::str::starts_with("tw: --state: unknown state 'foo'")
                .and(predicate::str::contains("time-wait"))
                .and(predicate::str::contains("close-wait"))
                .and(predicate::str::contains("synchronized")),
        );
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        &["count", "--top", "3"][..],
        &["count", "--by", "color"],
        &["ls", "--sport", "http"],
        &["ls", "--dst", "10.0.0.0/33"],
        &["--format", "yaml"],
    ] {
        tw().args(args).assert().code(2).stdout("");
    }
}

#[test]
fn missing_capture_names_the_path() {
    tw().args(["--from", "/nonexistent/tcp", "count"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("/nonexistent/tcp"));
}

#[test]
fn corrupt_proc_capture_names_file_and_line() {
    let s = Scratch::new("corrupt");
    let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
    let good = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n";
    let cases: &[(&str, String, &str)] = &[
        ("state", format!("{header}{good}   1: 0100007F:1F90 00000000:0000 0E 00000000:00000000 00:00000000 00000000 0 0 2\n"), ":3: unknown TCP state 0x0E"),
        ("cut", format!("{header}{good}   1: 0100007F:1F90 0000"), ":3: "),
        ("hex", format!("{header}   0: 01000ZZF:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n"), ":2: bad hex"),
    ];
    for (name, text, want) in cases {
        let p = s.file(name, text.as_bytes());
        let msg = format!("tw: {}{want}", p.display());
        tw().args(["--from", p.to_str().unwrap(), "count"])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::starts_with(msg));
    }
    let empty = s.file("empty", b"");
    tw().args(["--from", empty.to_str().unwrap(), "ls"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("empty"));
}

#[test]
fn truncated_netlink_capture_is_an_error() {
    let s = Scratch::new("trunc");
    let bytes = std::fs::read(fixture(SS1)).unwrap();
    for cut in [bytes.len() - 1, bytes.len() - 20, 200, 17] {
        let p = s.file(&format!("cut{cut}"), &bytes[..cut]);
        tw().args(["--from", p.to_str().unwrap(), "count"])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(p.to_str().unwrap()));
    }
}

/// Copies of /proc/net/tcp with `v4` connections and tcp6 with `v6`, in one folder: more rows
/// than `tw ls` holds before it streams when `v4 + v6` is over 4,096. TIME_WAIT and ESTABLISHED
/// (keepalive, an inode) alternate, with local ports of 4 and 5 digits; every IPv6 row, read
/// after the IPv4 ones, is wider than any of them.
fn tables(s: &Scratch, v4: u32, v6: u32) -> PathBuf {
    let line = |i: u32, local: &str, peer: &str| {
        let (st, tr, inode) = if i.is_multiple_of(5) {
            ("01", "02", 100_000 + i)
        } else {
            ("06", "03", 0)
        };
        format!(
            "{i:4}: {local}:{:04X} {peer}:0050 {st} 00000000:00000000 {tr}:{:08X} 00000000     0        0 {inode} 3 0000000000000000\n",
            1024 + i,
            100 + i % 6000
        )
    };
    let head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
    let mut tcp = String::from(head);
    let mut tcp6 = String::from(head);
    for i in 0..v4 {
        tcp.push_str(&line(i, "0100007F", "0200007F"));
    }
    // fec0:42::24 and fec0:42::1, as the kernel prints them (four host-order words).
    for i in 0..v6 {
        tcp6.push_str(&line(
            i,
            "4200C0FE000000000000000024000000",
            "4200C0FE000000000000000001000000",
        ));
    }
    s.file("net/tcp", tcp.as_bytes());
    s.file("net/tcp6", tcp6.as_bytes());
    s.0.join("net")
}

/// `tw ls | head -1` must end quietly, not panic on EPIPE, whether the listing is streamed
/// (plain, JSON) or held (sorted).
#[test]
fn closed_pipe_ends_quietly() {
    let s = Scratch::new("pipe");
    let dir = tables(&s, 20_000, 0);
    let p = dir.join("tcp");
    for (args, first_bytes) in [
        (&["--format", "plain"][..], &b"STATE"[..]),
        (&["--format", "json"], b"[\n{\"state\""),
        (&["--format", "plain", "--sort", "local"], b"STATE"),
    ] {
        let (first, status, err) = head(
            tw().args(["--from", p.to_str().unwrap(), "ls"]).args(args),
            16,
        );
        assert_eq!(&first[..first_bytes.len()], first_bytes, "{args:?}");
        assert!(status.success(), "{args:?}: exit {status:?}, stderr {err}");
        assert_eq!(err, "", "{args:?}");
    }
}

/// Lines sorted, JSON rows without the comma only the last one lacks: what a listing holds
/// whatever its order.
fn sorted_lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.lines().map(|l| l.trim_end_matches(',')).collect();
    v.sort_unstable();
    v
}

/// Each line's fields, whatever the padding.
fn fields(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// Without --sort, plain and JSON listings are streamed. A listing of up to 4,096 rows is held
/// whole: byte for byte what every row held gives (the sorted listing has the same widths, so
/// its lines are the same bytes in another order). A longer one is sized on its first 4,096
/// rows, and later rows are the same fields; JSON rows are the same bytes at any length.
#[test]
fn listings_stream_the_rows_a_sort_holds() {
    let s = Scratch::new("stream");
    for (v4, v6) in [(3_000, 500), (6_000, 1_500)] {
        let dir = tables(&s, v4, v6);
        let d = dir.to_str().unwrap();
        let total = (v4 + v6) as usize;
        let plain = stdout_of(&["--from", d, "ls", "--format", "plain"]);
        let sorted = stdout_of(&["--from", d, "ls", "--format", "plain", "--sort", "local"]);
        assert_eq!(plain.lines().count(), total + 1);
        let json = stdout_of(&["--from", d, "ls", "--format", "json"]);
        let json_sorted = stdout_of(&["--from", d, "ls", "--format", "json", "--sort", "local"]);
        assert_eq!(
            sorted_lines(&json),
            sorted_lines(&json_sorted),
            "{total} rows"
        );
        let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), total);
        if total <= 4096 {
            assert_eq!(sorted_lines(&plain), sorted_lines(&sorted), "{total} rows");
        } else {
            let (mut a, mut b) = (fields(&plain), fields(&sorted));
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b);
            // The header and first rows as a listing of just those rows (IPv4 alone) lays
            // them out; the IPv6 rows after them widen LOCAL and PEER from the first on.
            let first = stdout_of(&["--from", d, "ls", "--format", "plain", "--limit", "4096"]);
            let lines: Vec<&str> = plain.lines().collect();
            assert_eq!(lines[..4097], first.lines().collect::<Vec<_>>()[..]);
            assert!(sorted.lines().next().unwrap().len() > lines[0].len());
            let wide: Vec<&str> = lines.iter().copied().filter(|l| l.contains('[')).collect();
            assert_eq!(wide.len(), v6 as usize);
            let at = |l: &str| l.find("[fec0:42::1]").unwrap();
            assert!(
                wide.iter().all(|l| at(l) == at(wide[0])),
                "IPv6 rows aligned"
            );
        }
        // --limit N: the first N rows of the listing, held or streamed.
        for n in [1, 4096, 4097, 5_000] {
            let n = n.min(total);
            let limited = stdout_of(&[
                "--from",
                d,
                "ls",
                "--format",
                "plain",
                "--limit",
                &n.to_string(),
            ]);
            assert_eq!(fields(&limited), fields(&plain)[..=n], "--limit {n}");
            let limited = stdout_of(&[
                "--from",
                d,
                "ls",
                "--format",
                "json",
                "--limit",
                &n.to_string(),
            ]);
            let limited: serde_json::Value = serde_json::from_str(&limited).unwrap();
            assert_eq!(limited.as_array().unwrap()[..], rows[..n], "--limit {n}");
        }
        // --sort K --limit N holds only what can still be among the first N: the same rows,
        // ties (timers repeat) in the same order, as the whole sort's first N.
        for key in ["timer", "state", "local", "peer"] {
            let json_of = |extra: &[&str]| -> Vec<serde_json::Value> {
                let args = [
                    &["--from", d, "ls", "--format", "json", "--sort", key],
                    extra,
                ]
                .concat();
                let v: serde_json::Value = serde_json::from_str(&stdout_of(&args)).unwrap();
                v.as_array().unwrap().clone()
            };
            let whole = json_of(&[]);
            for n in [1, 10, 5_000] {
                let n = n.min(total);
                let limited = json_of(&["--limit", &n.to_string()]);
                assert_eq!(limited[..], whole[..n], "--sort {key} --limit {n}");
            }
        }
    }
}

/// `tw ls --limit N` ends the table once it has its rows, rather than read the rest of a million
/// sockets for nothing: over a table with no end (a FIFO fed for as long as it is read, up to a
/// bound), it prints its rows and exits, and the feeder finds the reader gone early.
#[test]
fn a_limited_listing_stops_reading_the_table() {
    use std::io::Write;
    const BOUND: usize = 5_000_000;
    let s = Scratch::new("endless");
    let fifo = s.0.join("tcp");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path; mkfifo has no other precondition.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let feeder = std::thread::spawn(move || {
        let mut w =
            std::io::BufWriter::new(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
        let head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        if w.write_all(head.as_bytes()).is_err() {
            return 0;
        }
        for i in 0..BOUND {
            let line = format!(
                "{i:4}: 0100007F:{:04X} 0200007F:0050 06 00000000:00000000 03:{:08X} 00000000     0        0 0 3 0000000000000000\n",
                1024 + i % 60_000,
                100 + i % 6_000
            );
            // The reader is gone (EPIPE: the test process ignores SIGPIPE, as Rust programs do).
            if w.write_all(line.as_bytes()).is_err() {
                return i;
            }
        }
        BOUND
    });
    let dir = s.0.to_str().unwrap().to_string();
    // Ends however tw does: at worst the feeder's bound ends the table.
    let out = tw()
        .args(["--from", &dir, "ls", "--format", "plain", "--limit", "10"])
        .output()
        .unwrap();
    let fed = feeder.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.lines().count(), 11, "{text}");
    assert!(
        fed < 100_000,
        "the feeder wrote {fed} lines before tw let go"
    );
}

#[test]
fn help_names_every_command() {
    tw().arg("--help").assert().success().stdout(
        predicate::str::contains("ls")
            .and(predicate::str::contains("count"))
            .and(predicate::str::contains("Exit status")),
    );
}

fn procroot(tree: &str) -> String {
    fixture(&format!("procroot/{tree}"))
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn doctor_over_captured_trees_exits_by_severity() {
    // conntrack 261000 of 262144: critical.
    let full = procroot("full-conntrack");
    tw().args(["--proc-root", &full, "doctor", "--format", "plain"])
        .assert()
        .code(2)
        .stdout(
            predicate::str::starts_with("CRIT: 1 critical")
                .and(predicate::str::contains(
                    "CRIT conntrack table 261000 of 262144 entries",
                ))
                .and(predicate::str::contains("fix 1: ")),
        );
    // The live capture overflowed an accept queue on purpose: a warning.
    let live = procroot("live");
    tw().args(["--proc-root", &live, "doctor", "--format", "plain"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "WARN accept queues: 2 overflows, 2 drops; connections waiting on 127.0.0.1:5001",
        ));
    let out = tw()
        .args(["--proc-root", &live, "doctor", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "warn");
    let rules: BTreeSet<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for rule in [
        "time_wait_outbound",
        "tw_buckets",
        "conntrack",
        "fin_timeout_myth",
        "time_wait_at_zero",
        "close_wait",
        "listen_overflows",
    ] {
        assert!(rules.contains(rule), "{rule} missing: {rules:?}");
    }
}

#[test]
fn doctor_failures_are_unknown_not_critical() {
    // Nagios: 3 is UNKNOWN; 2 would read as a critical finding.
    tw().args(["--proc-root", "/nonexistent", "doctor"])
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::starts_with("tw: ").and(predicate::str::contains("/nonexistent")));
    tw().args([
        "--proc-root",
        &procroot("live"),
        "--source",
        "netlink",
        "count",
    ])
    .assert()
    .code(2)
    .stderr(predicate::str::contains("choose one"));
    // A capture and a live namespace: refused before the namespace is entered, which would
    // fail first and say why instead (here a folder is no namespace; for a user, no permission).
    let tree = procroot("live");
    for args in [
        &["--proc-root", &tree, "--netns", &tree, "doctor"][..],
        &["--from", &tree, "--all-netns", "count"],
    ] {
        let code = if args.contains(&"doctor") { 3 } else { 2 };
        tw().args(args)
            .assert()
            .code(code)
            .stdout("")
            .stderr(predicate::str::starts_with(
                "tw: --netns and --all-netns read live namespaces",
            ));
    }
}

#[test]
fn ports_capacity_comes_from_the_tree() {
    let out = tw()
        .args([
            "--proc-root",
            &procroot("narrow-range"),
            "ports",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 40000-40199 less 40100-40109 reserved.
    assert_eq!(v["capacity"]["available"], 190);
    assert_eq!(v["capacity"]["reserved"], 10);
    assert_eq!(v["capacity"]["preferred_parity"], 95);
    assert_eq!(v["range_low"], 40000);
}

#[test]
fn from_capture_says_what_it_assumes() {
    tw().args(["--from", fixture("proc").to_str().unwrap(), "ports"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "assuming ip_local_port_range 32768-60999",
        ));
}

#[test]
fn capture_copies_exactly_what_tw_reads() {
    let s = Scratch::new("capture");
    let live = procroot("live");
    let dir = s.0.join("cap");
    tw().args(["--proc-root", &live, "capture", dir.to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("wrote 17 files to "))
        .stdout(predicate::str::contains(
            "absent here: sys/net/ipv4/tcp_max_orphans",
        ));
    for rel in ["net/tcp", "net/netstat", "sys/net/ipv4/ip_local_port_range"] {
        assert_eq!(
            std::fs::read(dir.join(rel)).unwrap(),
            std::fs::read(Path::new(&live).join(rel)).unwrap(),
            "{rel}"
        );
    }
    // The copy reads back to the same verdict.
    let verdict = |root: &str| {
        tw().args(["--proc-root", root, "doctor", "--format", "json"])
            .output()
            .unwrap()
            .stdout
    };
    assert_eq!(verdict(dir.to_str().unwrap()), verdict(&live));
}

#[test]
fn explain_answers_in_the_terminal() {
    tw().args(["explain", "TIME-WAIT"])
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("TIME_WAIT")
                .and(predicate::str::contains("60 s"))
                .and(predicate::str::contains("tcp_fin_timeout")),
        );
    tw().args(["explain", "net.ipv4.tcp_tw_recycle"])
        .assert()
        .success()
        .stdout(predicate::str::contains("4.12"));
    tw().arg("explain")
        .assert()
        .success()
        .stdout(predicate::str::contains("CLOSE_WAIT").and(predicate::str::contains("somaxconn")));
    let out = tw().args(["explain", "foo"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("unknown topic 'foo'") && err.contains("TIME_WAIT"),
        "{err}"
    );
}

/// iproute2's testsuite runs filter expressions over ss1.dump (ssfilter.t);
/// tw must select what ss selects from the same file.
#[test]
fn expressions_over_iproute2_fixture_match_ss() {
    let dump = fixture(SS1);
    let d = dump.to_str().unwrap();
    let exprs = [
        "sport = :22",
        "dport = :22",
        "sport = :22 and dst 10.0.0.2",
        "( sport = :22 or dport = :22 ) and not dst 10.0.0.1",
        "dst 10.0.0.1:36266",
        "src 10.0.0.1:22",
        "sport > :1024",
        "dport >= :50000",
        "! sport = :22",
    ];
    for expr in exprs {
        let ss = Command::new("ss")
            .args(["-Htan", expr])
            .env("TCPDIAG_FILE", &dump)
            .output()
            .unwrap();
        assert!(ss.status.success(), "{expr}");
        let theirs: BTreeSet<String> = String::from_utf8(ss.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                format!("{} {}", f[3], f[4].replace(":*", ":0"))
            })
            .collect();
        let json = stdout_of(&["--from", d, "-4", "ls", "--format", "json", expr]);
        let ours: BTreeSet<String> = serde_json::from_str::<serde_json::Value>(&json)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{} {}",
                    s["local"].as_str().unwrap(),
                    s["peer"].as_str().unwrap().replace(":*", ":0")
                )
            })
            .collect();
        assert_eq!(ours, theirs, "{expr}");
    }
}

#[test]
fn filter_syntax_errors_point_at_the_token() {
    let d = fixture(SS1);
    let d = d.to_str().unwrap();
    tw().args(["--from", d, "ls", "dport", "=", "foo"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "tw: filter: at 'foo' (column 9 of \"dport = foo\"): unknown service 'foo'",
        ));
    tw().args(["--from", d, "count", "( sport = :22"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("expected ')'"));
    tw().args([
        "--from",
        d,
        "--state",
        "established",
        "count",
        "state",
        "listening",
    ])
    .assert()
    .code(2)
    .stderr(predicate::str::contains("use one or the other"));
    // Service names resolve through /etc/services when it has them.
    if std::fs::read_to_string("/etc/services").is_ok_and(|s| s.contains("\nssh\t")) {
        tw().args(["--from", d, "count", "sport = :ssh"])
            .assert()
            .success()
            .stdout("5\n");
    }
}
