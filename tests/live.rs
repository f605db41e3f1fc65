//! Live tests of the `tw` binary against the kernel: each test builds a known socket population
//! in its own network namespace and checks tw's view of it against what was made and against
//! `ss`. Needs root and iproute2; see tests/common/mod.rs.

mod common;
#[path = "support/head.rs"]
mod head;

use common::{
    parse_ss_duration, ss_counts, ss_lines, ss_tuples, tw_endpoint, Expected, Net, Netns,
    Population, Tuple,
};
use head::head;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::process::Output;
use std::time::Instant;

const TW: &str = env!("CARGO_BIN_EXE_tw");
const SOURCES: [&str; 2] = ["netlink", "proc"];
/// Timer granularity slack (ms): kernel jiffies and /proc's USER_HZ ticks (10 ms).
const TICK: u64 = 50;

/// Every kind of socket the harness makes, in all three address forms, plus `time_wait`
/// TIME_WAIT sockets (2/3 IPv4, 1/4 IPv6, the rest IPv4-mapped).
fn mixed_population(ns: &Netns, time_wait: usize) -> Population {
    let (v4, v6) = (time_wait * 2 / 3, time_wait / 4);
    Population::builder()
        .listeners(Net::V4, 4)
        .listeners(Net::V6, 2)
        .listeners(Net::Mapped, 1)
        .established(Net::V4, 20)
        .established(Net::V6, 10)
        .established(Net::Mapped, 5)
        .half_closed(Net::V4, 5)
        .half_closed(Net::V6, 3)
        .half_closed(Net::Mapped, 2)
        .orphan_fin_wait2(Net::V4, 4)
        .orphan_fin_wait2(Net::V6, 2)
        .orphan_fin_wait2(Net::Mapped, 1)
        .time_wait(Net::V4, v4)
        .time_wait(Net::V6, v6)
        .time_wait(Net::Mapped, time_wait - v4 - v6)
        .build(ns)
}

fn tw(ns: &Netns, args: &[&str]) -> Output {
    ns.output(TW, args)
}

/// Runs tw, requires exit 0, returns stdout.
fn tw_ok(ns: &Netns, args: &[&str]) -> String {
    let out = tw(ns, args);
    assert!(
        out.status.success(),
        "tw {args:?} exited {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("tw {args:?}: output not UTF-8: {e}"))
}

/// `tw count ARGS`: exactly one integer and a newline.
fn tw_count(ns: &Netns, args: &[&str]) -> usize {
    let all = [&["count"], args].concat();
    let out = tw_ok(ns, &all);
    out.strip_suffix('\n')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("tw {all:?} printed {out:?}, not one integer and a newline"))
}

/// States in kernel order (include/net/tcp_states.h), how tw breaks ties between them.
const KERNEL_ORDER: [&str; 11] = [
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
];

/// A key's place in tw's documented tie order: states in kernel order, ports numerically;
/// `None` for keys whose order this harness does not model.
fn tie_rank(key: &str) -> Option<u64> {
    KERNEL_ORDER
        .iter()
        .position(|s| *s == key)
        .map(|i| i as u64)
        .or_else(|| key.parse::<u16>().ok().map(u64::from))
}

/// `tw count --by ... ARGS`: `KEY<TAB>COUNT` lines, checked to be largest first, ties in the
/// key's natural order (kernel state numbers, numeric ports).
fn tw_by(ns: &Netns, args: &[&str]) -> Vec<(String, usize)> {
    let out = tw_ok(ns, args);
    let rows: Vec<(String, usize)> = out
        .lines()
        .map(|line| {
            line.split_once('\t')
                .and_then(|(k, n)| Some((k.to_string(), n.parse().ok()?)))
                .unwrap_or_else(|| panic!("tw {args:?}: not KEY<TAB>COUNT: {line:?}"))
        })
        .collect();
    assert!(
        rows.windows(2).all(|w| w[0].1 >= w[1].1),
        "tw {args:?}: not largest first: {rows:?}"
    );
    for w in rows.windows(2).filter(|w| w[0].1 == w[1].1) {
        if let (Some(a), Some(b)) = (tie_rank(&w[0].0), tie_rank(&w[1].0)) {
            assert!(a < b, "tw {args:?}: tie not in key order: {w:?}");
        }
    }
    rows
}

fn tw_by_map(ns: &Netns, args: &[&str]) -> BTreeMap<String, usize> {
    tw_by(ns, args).into_iter().collect()
}

/// `tw ls --format json ARGS`, each object checked against the documented schema.
fn tw_json(ns: &Netns, args: &[&str]) -> Vec<Value> {
    let all = [&["ls", "--format", "json"], args].concat();
    let out = tw_ok(ns, &all);
    let value: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("tw {all:?}: not JSON ({e}): {:.300}", out));
    let rows = value.as_array().expect("a JSON array").clone();
    for row in &rows {
        for key in ["state", "family", "local", "peer", "timer"] {
            assert!(row.get(key).is_some(), "no {key:?} in {row}");
        }
        for key in ["recv_q", "send_q", "uid", "inode"] {
            // A listener's Send-Q (its backlog) is unknown from /proc: null.
            let unknown_backlog = key == "send_q" && row["state"] == "LISTEN" && row[key].is_null();
            assert!(
                row[key].is_u64() || unknown_backlog,
                "{key:?} is not a count in {row}"
            );
        }
        let v6 = row["local"].as_str().is_some_and(|l| l.starts_with('['));
        assert_eq!(row["family"], if v6 { "inet6" } else { "inet" }, "{row}");
    }
    rows
}

fn endpoint(v: &Value) -> String {
    tw_endpoint(
        v.as_str()
            .unwrap_or_else(|| panic!("endpoint is not a string: {v}")),
    )
}

fn json_tuple(row: &Value) -> Tuple {
    let state = row["state"]
        .as_str()
        .expect("state is a string")
        .to_string();
    (state, endpoint(&row["local"]), endpoint(&row["peer"]))
}

/// (kind, ms) of a JSON timer, None for `null`.
fn json_timer(row: &Value) -> Option<(String, u64)> {
    let timer = &row["timer"];
    if timer.is_null() {
        return None;
    }
    let kind = timer["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("timer kind in {row}"));
    let ms = timer["ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("timer ms in {row}"));
    Some((kind.to_string(), ms))
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let (net, bits) = cidr.split_once('/').expect("ADDR/BITS");
    let (net, bits): (IpAddr, u32) = (net.parse().unwrap(), bits.parse().unwrap());
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

fn port_in(addr: SocketAddr, lo: u16, hi: u16) -> bool {
    (lo..=hi).contains(&addr.port())
}

#[test]
fn ss_durations_parse_like_iproute2_prints_them() {
    for (text, ms) in [
        ("59sec", 59_000),
        ("1min", 60_000),
        ("1min5sec", 65_000),
        ("5.123ms", 5_123),
        ("320ms", 320),
        ("", 0),
    ] {
        assert_eq!(parse_ss_duration(text), Some(ms), "{text:?}");
    }
    assert_eq!(parse_ss_duration("5s"), None);
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn count_by_state_matches_population_and_ss() {
    let ns = Netns::new("by-state");
    let pop = mixed_population(&ns, 3000);
    let made = pop.counts();
    assert_eq!(
        ss_counts(&ns, &[]),
        made,
        "ss disagrees with the population"
    );
    // Global options go before or after the subcommand; use both placements.
    let netlink = [
        "count", "--by", "state", "--source", "netlink", "--format", "plain",
    ];
    let proc = [
        "--source", "proc", "--format", "plain", "count", "--by", "state",
    ];
    for args in [&netlink[..], &proc[..]] {
        assert_eq!(tw_by_map(&ns, args), made, "tw {args:?}");
        for (flag, family) in [("-4", "inet"), ("-6", "inet6")] {
            let want = pop.counts_where(|e| e.family() == family);
            assert_eq!(ss_counts(&ns, &[flag]), want, "ss {flag}");
            assert_eq!(
                tw_by_map(&ns, &[args, &[flag]].concat()),
                want,
                "tw {args:?} {flag}"
            );
        }
        let top = tw_by(&ns, &[args, &["--top", "1"]].concat());
        assert_eq!(top, [("TIME_WAIT".to_string(), made["TIME_WAIT"])]);
    }
}

/// More sockets than `tw ls` holds before it streams (4,096), so both the held first rows and
/// the streamed rest are checked against ss.
#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn ls_json_lists_the_same_sockets_as_ss() {
    let ns = Netns::new("tuples");
    let pop = mixed_population(&ns, 6000);
    let made = pop.tuples();
    assert_eq!(
        ss_tuples(&ns, &[]),
        made,
        "ss disagrees with the population"
    );
    for source in SOURCES {
        let rows = tw_json(&ns, &["--source", source]);
        assert_eq!(
            rows.len(),
            pop.total(),
            "--source {source}: one row per socket"
        );
        let listed: BTreeSet<Tuple> = rows.iter().map(json_tuple).collect();
        assert_eq!(listed, made, "--source {source}");
        for row in &rows {
            // Minisockets (TIME_WAIT, orphaned FIN_WAIT2) have no inode; every full socket here
            // is held open by the test, so it has one.
            let mini = json_timer(row).is_some_and(|(kind, _)| kind == "timewait");
            assert_eq!(row["inode"] == 0, mini, "--source {source}: {row}");
        }

        let plain = tw_ok(&ns, &["ls", "--format", "plain", "--source", source]);
        let mut lines = plain.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let columns = [
            "STATE", "LOCAL", "PEER", "TIMER", "RECV-Q", "SEND-Q", "UID", "INODE",
        ];
        assert_eq!(header, columns, "--source {source}: plain header");
        let listed: Vec<Tuple> = lines
            .map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                assert!(f.len() >= 3, "--source {source}: short plain row {line:?}");
                let port0 = |s: &str| endpoint(&Value::from(s));
                (f[0].to_string(), port0(f[1]), port0(f[2]))
            })
            .collect();
        assert_eq!(listed.len(), pop.total(), "--source {source}: plain rows");
        assert_eq!(
            listed.into_iter().collect::<BTreeSet<_>>(),
            made,
            "--source {source}: plain rows"
        );
    }
}

/// Lines sorted, JSON rows without the comma only the last one lacks: what a listing holds
/// whatever its order.
fn sorted_lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.lines().map(|l| l.trim_end_matches(',')).collect();
    v.sort_unstable();
    v
}

/// A JSON listing's rows with the timer left out (it runs down between two reads), sorted.
fn rows_but_timer(text: &str) -> Vec<String> {
    let rows: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON: {e}"));
    let mut rows: Vec<String> = rows
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("timer");
            r.to_string()
        })
        .collect();
    rows.sort_unstable();
    rows
}

/// `tw ls` without --sort streams its rows; with it, holds them. Over a live population longer
/// than the 4,096 rows held first: the same rows either way, live (less the timers, which run
/// down between reads) and byte for byte over a capture of it; `--limit`; annotations
/// (`--netns`, `-p`) streamed too; and a reader that goes away after one line.
#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn ls_streams_the_rows_a_sort_holds() {
    let ns = Netns::new("stream");
    let pop = mixed_population(&ns, 6000);
    let total = pop.total();
    assert!(total > 4096);
    for source in SOURCES {
        for format in ["plain", "json"] {
            let args = ["ls", "--format", format, "--source", source];
            let streamed = tw_ok(&ns, &args);
            let held = tw_ok(&ns, &[&args[..], &["--sort", "peer"]].concat());
            if format == "json" {
                assert_eq!(rows_but_timer(&streamed), rows_but_timer(&held), "{args:?}");
            } else {
                let key = |text: &str| -> BTreeSet<Tuple> {
                    text.lines()
                        .skip(1)
                        .map(|l| {
                            let f: Vec<&str> = l.split_whitespace().collect();
                            (f[0].to_string(), f[1].to_string(), f[2].to_string())
                        })
                        .collect()
                };
                assert_eq!(streamed.lines().count(), total + 1, "{args:?}");
                assert_eq!(key(&streamed), key(&held), "{args:?}");
            }
            let limited = tw_ok(&ns, &[&args[..], &["--limit", "4500"]].concat());
            let n = if format == "json" {
                serde_json::from_str::<Value>(&limited)
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .len()
            } else {
                limited.lines().count() - 1
            };
            assert_eq!(n, 4500, "{args:?} --limit 4500");
        }
    }

    // A capture holds still: streamed and held listings of it compare byte for byte.
    let dir = std::env::temp_dir().join(format!("tw-stream-{}", std::process::id()));
    let cap = tw(&ns, &["capture", dir.to_str().unwrap()]);
    assert!(cap.status.success(), "{cap:?}");
    for from in [dir.join("sock_diag.dump"), dir.join("net")] {
        let from = from.to_str().unwrap();
        let ls = |extra: &[&str]| {
            let out = common::run_bounded(
                std::process::Command::new(TW)
                    .args(["--from", from, "ls"])
                    .args(extra),
            );
            assert!(out.status.success(), "{extra:?}: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let plain = ls(&["--format", "plain"]);
        let first = ls(&["--format", "plain", "--limit", "4096"]);
        // The header and first rows are laid out on those rows alone; the rest are the held
        // listing's rows.
        assert_eq!(
            plain.lines().take(4097).collect::<Vec<_>>(),
            first.lines().collect::<Vec<_>>(),
            "{from}"
        );
        let fields = |text: &str| {
            let mut v: Vec<Vec<String>> = text
                .lines()
                .map(|l| l.split_whitespace().map(str::to_string).collect())
                .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(
            fields(&plain),
            fields(&ls(&["--format", "plain", "--sort", "state"]))
        );
        assert_eq!(
            sorted_lines(&ls(&["--format", "json"])),
            sorted_lines(&ls(&["--format", "json", "--sort", "state"])),
            "{from}"
        );
        // A listing within the held rows: byte for byte the held one, reordered.
        let small = [
            "--format",
            "plain",
            "--state",
            "established,listening,close-wait",
        ];
        assert_eq!(
            sorted_lines(&ls(&small)),
            sorted_lines(&ls(&[&small[..], &["--sort", "local"]].concat())),
            "{from}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // From outside, with the NETNS and PROCESS columns: known before the first row, so
    // streamed too.
    let outside = |args: &[&str]| {
        let out = common::run_bounded(
            std::process::Command::new(TW)
                .args(["--netns", ns.name(), "-p", "ls", "--format", "json"])
                .args(args),
        );
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let streamed = outside(&[]);
    let rows: Value = serde_json::from_str(&streamed).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), total);
    assert!(rows
        .iter()
        .all(|r| r["netns"] == ns.name() && r["processes"].is_array()));
    let me = std::process::id();
    assert!(rows.iter().any(|r| r["processes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["pid"] == me)));
    assert_eq!(
        rows_but_timer(&streamed),
        rows_but_timer(&outside(&["--sort", "local"]))
    );

    // `tw ls | head -1`: quiet, exit 0, while rows are still coming.
    for format in ["plain", "json"] {
        let (first, status, err) = head(ns.cmd(TW).args(["ls", "--format", format]), 5);
        let line = String::from_utf8_lossy(&first);
        assert!(
            line.starts_with(if format == "json" { "[" } else { "STATE" }),
            "{line}"
        );
        assert!(status.success(), "{format}: {status:?} {err}");
        assert_eq!(err, "", "{format}");
    }
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn timewait_time_left_matches_ss() {
    let ns = Netns::new("timers");
    let pop = Population::builder()
        .established(Net::V4, 3)
        .half_closed(Net::V4, 2)
        .half_closed(Net::V6, 1)
        .orphan_fin_wait2(Net::V4, 3)
        .orphan_fin_wait2(Net::V6, 2)
        .orphan_fin_wait2(Net::Mapped, 1)
        .time_wait(Net::V4, 300)
        .time_wait(Net::V6, 150)
        .time_wait(Net::Mapped, 50)
        .build(&ns);
    let time_wait: BTreeSet<Tuple> = pop
        .tuples()
        .into_iter()
        .filter(|t| t.0 == "TIME_WAIT")
        .collect();
    for source in SOURCES {
        // ss first and tw right after: tw's reading is older by at most `gap`.
        let started = Instant::now();
        let ss: BTreeMap<(String, String), Option<(String, u64)>> = ss_lines(&ns, &[])
            .into_iter()
            .map(|l| ((l.local, l.peer), l.timer))
            .collect();
        let rows = tw_json(&ns, &["--state", "time-wait", "--source", source]);
        let gap = u64::try_from(started.elapsed().as_millis()).unwrap();
        let listed: BTreeSet<Tuple> = rows.iter().map(json_tuple).collect();
        assert_eq!(listed, time_wait, "--source {source}");
        for row in &rows {
            let (_, local, peer) = json_tuple(row);
            let (kind, ms) = json_timer(row).unwrap_or_else(|| panic!("no timer: {row}"));
            assert_eq!(kind, "timewait", "{row}");
            assert!(ms <= 60_000, "TIME_WAIT lasts 60 s at most: {row}");
            let (_, ss_ms) = ss[&(local, peer)]
                .clone()
                .expect("ss shows a TIME_WAIT timer");
            // ss truncates to whole seconds from 10 s up, so the time left when ss ran lies in
            // [ss_ms, ss_ms + 1 s); tw ran up to `gap` later. TICK covers jiffy and USER_HZ
            // (/proc) rounding. This is tighter than "within 2 s of ss".
            let (lo, hi) = (ss_ms.saturating_sub(gap + TICK), ss_ms + 1000 + TICK);
            assert!(
                (lo..=hi).contains(&ms),
                "--source {source}: tw says {ms} ms left, ss {ss_ms} ms, {gap} ms earlier: {row}"
            );
        }

        // Every socket: the same timer kind as ss (none on idle full sockets), and the orphaned
        // FIN_WAIT2 sockets show up as minisockets with a timewait timer.
        let rows = tw_json(&ns, &["--source", source]);
        let mut fin_wait2 = BTreeMap::<Option<String>, usize>::new();
        for row in &rows {
            let (state, local, peer) = json_tuple(row);
            let timer = json_timer(row);
            let kind = timer.as_ref().map(|t| t.0.clone());
            let ss_kind = ss[&(local, peer)].as_ref().map(|t| t.0.clone());
            assert_eq!(kind, ss_kind, "--source {source}: timer of {row}");
            if state == "FIN_WAIT2" {
                *fin_wait2.entry(kind).or_default() += 1;
                if let Some((_, ms)) = timer {
                    assert!(0 < ms && ms <= 60_000, "tcp_fin_timeout is 60 s: {row}");
                }
            }
        }
        let want = BTreeMap::from([(None, 3), (Some("timewait".to_string()), 6)]);
        assert_eq!(
            fin_wait2, want,
            "--source {source}: FIN_WAIT2 by timer kind"
        );
    }
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn filters_count_what_was_made() {
    let ns = Netns::new("filters");
    let pop = mixed_population(&ns, 600);
    // tw's count with ARGS, for both sources, equals the number of sockets made that match.
    let case = |args: &[&str], keep: &dyn Fn(&Expected) -> bool| {
        let want = pop.count_where(keep);
        assert!(want > 0, "{args:?} should select something");
        if let ["--state", group @ ("all" | "bucket" | "big" | "connected" | "synchronized")] = args
        {
            // ss defines the groups: check the model's reading of them against ss itself.
            let ss_total: usize = ss_counts(&ns, &["state", group]).values().sum();
            assert_eq!(ss_total, want, "ss state {group}");
        }
        for source in SOURCES {
            let got = tw_count(&ns, &[&["--source", source], args].concat());
            assert_eq!(got, want, "tw count --source {source} {args:?}");
        }
    };
    let bucket = |e: &Expected| matches!(e.state, "TIME_WAIT" | "SYN_RECV");
    let connected = |e: &Expected| !matches!(e.state, "LISTEN" | "CLOSE");
    case(&["--state", "all"], &|_| true);
    case(&["--state", "bucket"], &bucket);
    case(&["--state", "big"], &|e| !bucket(e));
    case(&["--state", "connected"], &connected);
    case(&["--state", "synchronized"], &|e| {
        connected(e) && e.state != "SYN_SENT"
    });
    case(&["--state", "time-wait,close-wait"], &|e| {
        matches!(e.state, "TIME_WAIT" | "CLOSE_WAIT")
    });
    case(&["--state", "FIN_WAIT2", "--state", "listen"], &|e| {
        matches!(e.state, "FIN_WAIT2" | "LISTEN")
    });
    case(&["--dport", "5000-5001"], &|e| port_in(e.peer, 5000, 5001));
    case(&["--dport", "6001"], &|e| port_in(e.peer, 6001, 6001));
    case(&["--sport", "5000-5003"], &|e| port_in(e.local, 5000, 5003));
    // These CIDRs leave out 127.0.0.1 and 127.0.0.100, the IPv4-mapped sockets' addresses: ss
    // lets an IPv4 prefix match those, and tw's rule for them is not pinned here.
    case(&["--src", "127.0.0.2/31"], &|e| {
        in_cidr(e.local.ip(), "127.0.0.2/31")
    });
    case(&["--dst", "127.0.0.4/30"], &|e| {
        in_cidr(e.peer.ip(), "127.0.0.4/30")
    });
    case(&["--src", "::1/128"], &|e| in_cidr(e.local.ip(), "::1/128"));
    case(&["--dst", "::1"], &|e| in_cidr(e.peer.ip(), "::1/128"));
    case(
        &["--state", "time-wait", "-4", "--dport", "5000-5001"],
        &|e| e.state == "TIME_WAIT" && e.family() == "inet" && port_in(e.peer, 5000, 5001),
    );

    let total = pop.total();
    let time_wait = pop.counts()["TIME_WAIT"];
    for source in SOURCES {
        for (args, limit, code) in [
            (&[][..], total, 0),
            (&[], total - 1, 1),
            (&["--state", "time-wait"], time_wait, 0),
            (&["--state", "time-wait"], time_wait - 1, 1),
        ] {
            let limit = limit.to_string();
            let all = [&["count", "--source", source, "--fail-above", &limit], args].concat();
            let out = tw(&ns, &all);
            assert_eq!(out.status.code(), Some(code), "tw {all:?}");
        }
    }
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn count_matches_ss_line_count() {
    let ns = Netns::new("count");
    let pop = mixed_population(&ns, 1500);
    // The shell pipeline's number: `ss -tan | tail -n +2 | wc -l`.
    let ss = ns.output("ss", &["-tan"]);
    assert!(ss.status.success());
    let ss_total = String::from_utf8_lossy(&ss.stdout).lines().skip(1).count();
    assert_eq!(ss_total, pop.total());
    assert_eq!(tw_count(&ns, &["--source", "netlink"]), ss_total);
    assert_eq!(tw_count(&ns, &["--source", "proc"]), ss_total);
    assert_eq!(tw_count(&ns, &[]), ss_total, "--source auto (the default)");
    let families = pop.family_counts();
    for (flag, family) in [("-4", "inet"), ("-6", "inet6")] {
        assert_eq!(tw_count(&ns, &[flag]), families[family], "tw count {flag}");
    }
}
