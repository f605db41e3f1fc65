//! `tw schema COMMAND` and every command's `--format json`: each document
//! validates against the schema tw ships for it, and carries its
//! `schema_version`. On the fixtures (no root) and on a namespace of the
//! test's own (live).

mod common;
#[path = "support/jsonschema.rs"]
mod jsonschema;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::{Net, Netns, Population};
use serde_json::{json, Value};

const TW: &str = env!("CARGO_BIN_EXE_tw");

fn fixture(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
        .to_str()
        .unwrap()
        .to_string()
}

fn schema(command: &str) -> Value {
    let o = common::run_bounded(Command::new(TW).args(["schema", command]));
    assert!(o.status.success(), "tw schema {command}: {o:?}");
    serde_json::from_slice(&o.stdout).expect("the schema is JSON")
}

/// The JSON documents of one run: one for most commands, a line each for
/// watch.
fn documents(command: &str, o: &Output) -> Vec<Value> {
    // doctor exits 1 or 2 on findings; anything but a crash has written.
    assert!(matches!(o.status.code(), Some(0..=2)), "{command}: {o:?}");
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    if command == "watch" {
        return text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    }
    vec![serde_json::from_str(&text).unwrap_or_else(|e| panic!("{command}: {e}: {text}"))]
}

/// Validates each document of `command`'s output and checks its version.
fn assert_valid(command: &str, o: &Output) -> usize {
    let s = schema(command);
    let docs = documents(command, o);
    assert!(!docs.is_empty(), "{command}: no output");
    for doc in &docs {
        let errors = jsonschema::validate(&s, doc);
        assert!(errors.is_empty(), "{command}: {errors:#?}\n{doc:#}");
        // Every document says its version; a listing in every row.
        match doc.as_array() {
            Some(rows) => {
                for r in rows {
                    assert_eq!(r["schema_version"], 1, "{command}: {r}");
                }
            }
            None => assert_eq!(doc["schema_version"], 1, "{command}: {doc}"),
        }
    }
    docs.len()
}

#[test]
fn fixture_outputs_validate_against_their_schemas() {
    let root = fixture("procroot/live");
    let runs: &[(&str, &[&str])] = &[
        ("ls", &["ls", "--format", "json"]),
        ("count", &["count", "--format", "json"]),
        ("count", &["count", "--by", "state", "--format", "json"]),
        ("summary", &["summary", "--format", "json"]),
        ("ports", &["ports", "--format", "json"]),
        ("doctor", &["doctor", "--format", "json"]),
    ];
    for (command, args) in runs {
        let o = common::run_bounded(Command::new(TW).args(["--proc-root", &root]).args(*args));
        assert_valid(command, &o);
    }
    // A capture of ss -D, through the netlink decoder.
    let dump = fixture("netlink/tcp.dump");
    let o = common::run_bounded(Command::new(TW).args(["--from", &dump, "ls", "--format", "json"]));
    assert!(assert_valid("ls", &o) == 1);
    // explain: the list, and one topic with its body.
    let o = common::run_bounded(Command::new(TW).args(["explain", "--format", "json"]));
    assert_valid("explain", &o);
    let list = &documents("explain", &o)[0]["topics"];
    assert!(list.as_array().unwrap().len() > 11, "{list}");
    assert!(list[0].get("body").is_none());
    let o =
        common::run_bounded(Command::new(TW).args(["explain", "time-wait", "--format", "json"]));
    assert_valid("explain", &o);
    let one = &documents("explain", &o)[0]["topics"];
    assert_eq!(one[0]["name"], "TIME_WAIT");
    assert!(one[0]["body"].as_str().unwrap().contains("60"));
}

#[test]
fn conntrack_outputs_validate_against_their_schema() {
    let root = fixture("conntrack/capture");
    let runs: &[&[&str]] = &[
        &["conntrack", "--format", "json"],
        &["conntrack", "--by", "dst", "--format", "json"],
        &["conntrack", "--count", "--format", "json"],
    ];
    for args in runs {
        let o = common::run_bounded(Command::new(TW).args(["--proc-root", &root]).args(*args));
        assert_valid("conntrack", &o);
    }
    let o = common::run_bounded(Command::new(TW).args(["--proc-root", &root]).args([
        "conntrack",
        "--format",
        "json",
    ]));
    let report = &documents("conntrack", &o)[0];
    assert!(report["count"].as_u64().unwrap() > 0, "{report}");
    assert!(!report["states"].as_array().unwrap().is_empty(), "{report}");
    // The report is not mistaken for a count document, nor the reverse.
    let s = schema("conntrack");
    let mut broken = report.clone();
    broken["states"] = json!("none");
    assert!(!jsonschema::validate(&s, &broken).is_empty());
    assert!(
        !jsonschema::validate(&s, &json!({"schema_version": 1, "total": 1, "x": 1})).is_empty()
    );
}

#[test]
fn trace_schema_describes_the_readme_record() {
    // tw trace needs eBPF and root; its record type is checked against this
    // schema field for field in app::trace's unit tests. Here: a record as
    // README shows it, with its version, validates, and one without a count
    // does not.
    let s = schema("trace");
    let rec = json!({"comm":"drv","counts":{"accept":0,"close_first":100,"connect":100,
        "connect_fail":45,"fin_wait2":0,"retransmit":0,"rst_recv":0,"rst_sent":0,
        "time_wait":100,"tw_reuse":0},"daddr":"127.0.0.2","dport":8080,"interval_s":1.002,
        "laddr":null,"lport":null,"netns":4026532174u64,"pid":2011,"schema_version":1,
        "ts":1796363064.968});
    assert_eq!(jsonschema::validate(&s, &rec), Vec::<String>::new());
    let mut short = rec.clone();
    short["counts"].as_object_mut().unwrap().remove("tw_reuse");
    assert!(!jsonschema::validate(&s, &short).is_empty());
    let mut old = rec.clone();
    old.as_object_mut().unwrap().remove("schema_version");
    assert!(!jsonschema::validate(&s, &old).is_empty());
}

#[test]
fn recordings_made_before_the_version_field_still_validate() {
    // fixtures/watch/exhaustion.jsonl predates schema_version.
    let s = schema("watch");
    let text = std::fs::read_to_string(fixture("watch/exhaustion.jsonl")).unwrap();
    for line in text.lines() {
        let rec: Value = serde_json::from_str(line).unwrap();
        assert!(rec.get("schema_version").is_none());
        let errors = jsonschema::validate(&s, &rec);
        assert!(errors.is_empty(), "{errors:#?}");
    }
}

#[test]
fn the_validator_rejects_what_breaks_a_schema() {
    let s = schema("count");
    let good = json!({"schema_version": 1, "total": 3, "by": "state",
                      "groups": [{"key": "TIME_WAIT", "count": 3}]});
    assert_eq!(jsonschema::validate(&s, &good), Vec::<String>::new());
    let bad = [
        json!({"schema_version": 1}),
        json!({"schema_version": 2, "total": 3}),
        json!({"schema_version": 1, "total": -1}),
        json!({"schema_version": 1, "total": "3"}),
        json!({"schema_version": 1, "total": 3, "surprise": true}),
        json!({"schema_version": 1, "total": 3, "groups": [{"key": "x"}]}),
    ];
    for doc in bad {
        assert!(!jsonschema::validate(&s, &doc).is_empty(), "{doc} passed");
    }
    let ls = schema("ls");
    let row = json!([{"schema_version": 1, "state": "TIME-WAIT", "family": "inet",
        "direction": null, "local": "a", "peer": "b", "timer": null, "retrans": 0,
        "recv_q": 0, "send_q": 0, "uid": 0, "inode": 0}]);
    let errors = jsonschema::validate(&ls, &row);
    assert!(errors.iter().any(|e| e.contains("state")), "{errors:?}");
}

#[test]
fn an_unknown_command_is_refused_by_tw_schema() {
    let o = common::run_bounded(Command::new(TW).args(["schema", "metrics"]));
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(o.stdout.is_empty());
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn live_outputs_of_every_command_validate_against_their_schemas() {
    let ns = Netns::new("schema");
    let _pop = Population::builder()
        .listeners(Net::V4, 2)
        .established(Net::V4, 3)
        .established(Net::V6, 2)
        .half_closed(Net::V4, 2)
        .time_wait(Net::V4, 40)
        .time_wait(Net::V6, 10)
        .build(&ns);
    let runs: &[(&str, &[&str])] = &[
        ("ls", &["ls", "--format", "json"]),
        // Owners: the annotated rows, with processes.
        ("ls", &["-p", "ls", "--format", "json"]),
        ("ls", &["ls", "--format", "json", "--sort", "timer"]),
        ("count", &["count", "--format", "json"]),
        ("count", &["count", "--by", "peer", "--format", "json"]),
        ("summary", &["summary", "--format", "json"]),
        ("ports", &["ports", "--format", "json"]),
        ("doctor", &["doctor", "--format", "json"]),
        (
            "watch",
            &[
                "watch",
                "--interval",
                "200ms",
                "--count",
                "3",
                "--format",
                "json",
            ],
        ),
        // Events with records between full dumps, and the samples alone.
        (
            "watch",
            &[
                "watch",
                "--events",
                "on",
                "--dump-every",
                "0.4",
                "--interval",
                "200ms",
                "--count",
                "3",
                "--format",
                "json",
            ],
        ),
        (
            "watch",
            &[
                "watch",
                "--events",
                "off",
                "--interval",
                "200ms",
                "--count",
                "3",
                "--format",
                "json",
            ],
        ),
    ];
    for (command, args) in runs {
        let o = ns.output(TW, args);
        let n = assert_valid(command, &o);
        if *command == "watch" {
            assert_eq!(n, 3, "one record per interval");
        }
    }
    // The annotated listing names its namespace when asked for another one.
    let o = common::run_bounded(Command::new(TW).args([
        "--netns",
        ns.name(),
        "-p",
        "ls",
        "--format",
        "json",
    ]));
    assert_valid("ls", &o);
    let rows = documents("ls", &o);
    assert!(rows[0]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["netns"] == ns.name()));
}

#[test]
fn ls_internals_unix_and_stats_schemas_refuse_what_breaks_them() {
    // Each new schema takes a row as README shows it and refuses the same
    // row without its version or with a field of the wrong type.
    let cases = [
        (
            "ls-internals",
            json!([{"schema_version": 1, "state": "ESTABLISHED", "family": "inet",
                "direction": "out", "local": "127.0.0.1:40000", "peer": "127.0.0.1:80",
                "timer": null, "retrans": 0, "recv_q": 0, "send_q": 0, "uid": 0, "inode": 7,
                "protocol": "tcp", "congestion": "cubic", "tcp_info": null,
                "skmem": {"rmem_alloc": 0, "rcvbuf": 131072}}]),
        ),
        (
            "ls-unix",
            json!([{"schema_version": 1, "protocol": "unix", "type": "u_str",
                "state": "LISTEN", "recv_q": null, "send_q": null, "path": "@x",
                "inode": 9, "peer": null}]),
        ),
        (
            "count-stats",
            json!({"schema_version": 1, "by": "raddr", "groups": [{"key": "127.0.0.1",
                "connections": 2, "rtt_p50_ms": 0.1, "rtt_p95_ms": 0.2, "rtt_max_ms": 0.2,
                "total_retrans": 0, "segs_out": 10, "retrans_rate": 0.0, "bytes_sent": 1,
                "bytes_received": 2}]}),
        ),
    ];
    for (name, good) in cases {
        let s = schema(name);
        assert_eq!(
            jsonschema::validate(&s, &good),
            Vec::<String>::new(),
            "{name}"
        );
        let mut old = good.clone();
        let first = if old.is_array() {
            &mut old[0]
        } else {
            &mut old
        };
        first.as_object_mut().unwrap().remove("schema_version");
        assert!(!jsonschema::validate(&s, &old).is_empty(), "{name}");
        let mut wrong = good.clone();
        let first = if wrong.is_array() {
            &mut wrong[0]
        } else {
            &mut wrong
        };
        first["surprise"] = json!(1);
        assert!(!jsonschema::validate(&s, &wrong).is_empty(), "{name}");
    }
}

#[test]
fn ls_internals_from_a_capture_validates() {
    // A capture has no tcp_info: the rows carry null for it.
    let dump = fixture("netlink/tcp.dump");
    let o = common::run_bounded(
        Command::new(TW).args(["--from", &dump, "ls", "-i", "-m", "--format", "json"]),
    );
    assert_valid("ls-internals", &o);
    let rows = documents("ls-internals", &o);
    let rows = rows[0].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows
        .iter()
        .all(|r| r["tcp_info"].is_null() && r["skmem"].is_null()));
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn live_ls_internals_unix_udp_and_stats_validate_against_their_schemas() {
    use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
    let ns = Netns::new("ssrest-schema");
    let _pop = Population::builder()
        .listeners(Net::V4, 2)
        .established(Net::V4, 3)
        .established(Net::V6, 2)
        .time_wait(Net::V4, 5)
        .build(&ns);
    let _held = ns.run(|| {
        let mut held: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
        let (a, b) = UnixStream::pair().unwrap();
        held.push(Box::new(a));
        held.push(Box::new(b));
        let (a, b) = UnixDatagram::pair().unwrap();
        held.push(Box::new(a));
        held.push(Box::new(b));
        let abs = std::os::unix::net::SocketAddr::from_abstract_name(b"tw-ssrest-schema").unwrap();
        use std::os::linux::net::SocketAddrExt;
        held.push(Box::new(UnixListener::bind_addr(&abs).unwrap()));
        let u = std::net::UdpSocket::bind("127.0.0.1:5353").unwrap();
        let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        c.connect("127.0.0.1:5353").unwrap();
        held.push(Box::new(u));
        held.push(Box::new(c));
        held
    });
    let runs: &[(&str, &[&str])] = &[
        ("ls-internals", &["ls", "-i", "--format", "json"]),
        ("ls-internals", &["ls", "-m", "--format", "json"]),
        ("ls-internals", &["-p", "ls", "-im", "--format", "json"]),
        (
            "ls-internals",
            &["ls", "-i", "--sort", "peer", "--format", "json"],
        ),
        ("ls-unix", &["-xa", "--format", "json"]),
        ("ls-unix", &["-p", "ls", "-xa", "--format", "json"]),
        ("ls", &["-ua", "--format", "json"]),
        ("ls", &["-tua", "--format", "json"]),
        // UNIX, UDP and TCP rows in one listing: each is one of ls's rows.
        ("ls", &["-tuxa", "--format", "json"]),
        ("ls", &["-p", "-tuxa", "--format", "json"]),
        (
            "count-stats",
            &["count", "--by", "raddr", "--stats", "--format", "json"],
        ),
        (
            "count-stats",
            &["count", "--by", "lport", "--stats", "--format", "json"],
        ),
    ];
    for (command, args) in runs {
        let o = ns.output(TW, args);
        assert_valid(command, &o);
        let doc = &documents(command, &o)[0];
        // Something real was validated, not an empty listing.
        let n = doc
            .as_array()
            .map_or_else(|| doc["groups"].as_array().unwrap().len(), Vec::len);
        assert!(n > 0, "{command} {args:?}: {doc}");
    }
    // The rows carry what the schema allows as null, filled in live.
    let o = ns.output(TW, &["ls", "-im", "--format", "json"]);
    let rows = documents("ls-internals", &o)[0].as_array().unwrap().clone();
    assert!(rows
        .iter()
        .any(|r| r["tcp_info"]["rtt_ms"].is_number() && r["skmem"]["rcvbuf"].is_number()));
    let o = ns.output(TW, &["-ua", "--format", "json"]);
    let rows = documents("ls", &o)[0].as_array().unwrap().clone();
    assert!(rows
        .iter()
        .any(|r| r["state"] == "UNCONN" && r["protocol"] == "udp"));
}

#[test]
fn udp_unconn_rows_validate_against_the_ls_schema() {
    // Regression: `tw -ua --format json` writes UNCONN for a UDP socket
    // with no peer, which the ls schema's state list lacked.
    let row = json!([{"schema_version": 1, "state": "UNCONN", "family": "inet",
        "direction": null, "local": "127.0.0.1:53", "peer": "0.0.0.0:*", "timer": null,
        "retrans": 0, "recv_q": 0, "send_q": 0, "uid": 0, "inode": 1, "protocol": "udp"}]);
    assert_eq!(
        jsonschema::validate(&schema("ls"), &row),
        Vec::<String>::new()
    );
    let mut sctp = row.clone();
    sctp[0]["protocol"] = json!("sctp");
    assert!(!jsonschema::validate(&schema("ls"), &sctp).is_empty());
}
