//! tw's reading of captured fixtures against ss's view of the same
//! namespace at the same moment (see fixtures/README.md), and the errors
//! for the corrupt variants. No root needed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;
use predicates::prelude::*;
use serde_json::Value;

use common::{parse_ss_text, tw_endpoint, SsLine};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn tw(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tw"));
    c.args(args);
    c
}

fn tw_rows(from: &Path) -> Vec<Value> {
    let out = tw(&["--from", from.to_str().unwrap(), "ls", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn key(state: &str, local: &str, peer: &str) -> (String, String, String) {
    (state.to_string(), local.to_string(), peer.to_string())
}

fn ss_view(rel: &str) -> Vec<SsLine> {
    parse_ss_text(&std::fs::read_to_string(fixture(rel)).unwrap())
}

/// Same sockets, same states; timers within the capture gap plus ss's
/// rounding (it truncates to whole seconds from 10 s up).
fn assert_same_as_ss(from: &Path, ss: &[SsLine]) {
    let rows = tw_rows(from);
    let ours: BTreeMap<_, Option<(String, u64)>> = rows
        .iter()
        .map(|r| {
            let k = key(
                r["state"].as_str().unwrap(),
                &tw_endpoint(r["local"].as_str().unwrap()),
                &tw_endpoint(r["peer"].as_str().unwrap()),
            );
            let t = (!r["timer"].is_null()).then(|| {
                (
                    r["timer"]["kind"].as_str().unwrap().to_string(),
                    r["timer"]["ms"].as_u64().unwrap(),
                )
            });
            (k, t)
        })
        .collect();
    let theirs: BTreeMap<_, _> = ss
        .iter()
        .map(|l| (key(&l.state, &l.local, &l.peer), l.timer.clone()))
        .collect();
    assert_eq!(
        ours.keys().collect::<BTreeSet<_>>(),
        theirs.keys().collect::<BTreeSet<_>>()
    );
    assert_eq!(rows.len(), ss.len(), "no socket twice");
    let mut timewait = 0;
    for (k, t) in &ours {
        let (Some((kind, ms)), Some((ss_kind, ss_ms))) = (t, &theirs[k]) else {
            continue;
        };
        assert_eq!(kind, ss_kind, "{k:?}");
        if kind == "timewait" {
            timewait += 1;
            let diff = (*ms as i64 - *ss_ms as i64).abs();
            assert!(diff <= 2_000, "{k:?}: tw {ms} ms, ss {ss_ms} ms");
        }
    }
    // TIME_WAIT and FIN_WAIT2 minisockets of both families.
    assert!(timewait >= 8, "only {timewait} timewait timers compared");
}

#[test]
fn proc_capture_reads_as_ss_saw_it() {
    assert_same_as_ss(&fixture("proc"), &ss_view("proc/ss-tano.txt"));
}

#[test]
fn netlink_capture_reads_as_ss_saw_it() {
    assert_same_as_ss(
        &fixture("netlink/tcp.dump"),
        &ss_view("netlink/ss-tano.txt"),
    );
}

#[test]
fn one_proc_table_alone() {
    let v4 = tw_rows(&fixture("proc/tcp"));
    let v6 = tw_rows(&fixture("proc/tcp6"));
    assert!(v4.iter().all(|r| r["family"] == "inet"));
    assert!(v6.iter().all(|r| r["family"] == "inet6"));
    // The IPv4-mapped sockets of the capture.
    assert!(v6.iter().any(|r| r["peer"]
        .as_str()
        .unwrap()
        .starts_with("[::ffff:127.0.0.1]:")));
    // A FIN_WAIT2 minisocket: timewait timer, no owner.
    for rows in [&v4, &v6] {
        let mini: Vec<&Value> = rows
            .iter()
            .filter(|r| r["state"] == "FIN_WAIT2" && r["timer"]["kind"] == "timewait")
            .collect();
        assert_eq!(mini.len(), 1);
        assert_eq!(
            (mini[0]["inode"].as_u64(), mini[0]["uid"].as_u64()),
            (Some(0), Some(0))
        );
    }
}

/// Without --sort, `tw ls` streams (a listing this short is written once read whole): each
/// capture's rows are byte for byte those of the held, sorted listing, header and widths
/// included, in the reader's order.
#[test]
fn streamed_listings_are_the_sorted_ones_reordered() {
    let lines = |args: &[&str]| -> Vec<String> {
        let out = tw(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        let mut v: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.trim_end_matches(',').to_string())
            .collect();
        v.sort_unstable();
        v
    };
    for rel in ["proc", "proc/tcp6", "netlink/tcp.dump", "iproute2/ss1.dump"] {
        let from = fixture(rel);
        for format in ["plain", "json"] {
            let args = ["--from", from.to_str().unwrap(), "ls", "--format", format];
            let streamed = lines(&args);
            assert!(streamed.len() > 3, "{rel}");
            assert_eq!(
                streamed,
                lines(&[&args[..], &["--sort", "state"]].concat()),
                "{rel} {format}"
            );
        }
    }
}

#[test]
fn corrupt_captures_get_one_line_naming_file_and_line() {
    let cases: &[(&str, &str)] = &[
        ("tcp-truncated-line", ":cut off"),
        ("tcp-bad-hex", "bad hex"),
        ("tcp-unknown-state", "unknown TCP state 0x0E"),
        ("tcp-missing-column", "a column is missing"),
        ("tcp-garbage.bin", ""),
        ("tcp-empty", "empty"),
        ("netlink-truncated.dump", ""),
    ];
    for (name, want) in cases {
        let p = fixture(&format!("corrupt/{name}"));
        let out = tw(&["--from", p.to_str().unwrap(), "count"])
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(
            err.starts_with(&format!("tw: {}", p.display())),
            "{name}: {err}"
        );
        if !want.is_empty() {
            let want = want.trim_start_matches(':');
            assert!(err.contains(want), "{name}: {err}");
        }
    }
    // Text errors carry the line number.
    tw(&[
        "--from",
        fixture("corrupt/tcp-unknown-state").to_str().unwrap(),
        "count",
    ])
    .assert()
    .stderr(predicate::str::is_match(r"^tw: .*tcp-unknown-state:2: ").unwrap());
}
