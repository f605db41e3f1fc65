//! What ss users expect, on real sockets: for each expression of ss's filter
//! language, the sockets tw returns are the ones `ss` returns in the same
//! namespace, from sock_diag (kernel bytecode) and from /proc (user space);
//! `ss -D` dumps read back; `--netns`, `--all-netns` and `-p`. Needs root.

mod common;

use std::collections::BTreeSet;

use common::{ss_tuples, tw_endpoint, Net, Netns, Population, Tuple};
use serde_json::Value;

fn tw_tuples(ns: &Netns, args: &[&str]) -> BTreeSet<Tuple> {
    let all = [&["ls", "--format", "json"], args].concat();
    let out = ns.output(env!("CARGO_BIN_EXE_tw"), &all);
    assert!(
        out.status.success(),
        "tw {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array().unwrap().iter().map(tuple_of).collect()
}

/// (state, local, peer) of one `tw ls --format json` row.
fn tuple_of(r: &Value) -> Tuple {
    (
        r["state"].as_str().unwrap().to_string(),
        tw_endpoint(r["local"].as_str().unwrap()),
        tw_endpoint(r["peer"].as_str().unwrap()),
    )
}

fn population(ns: &Netns) -> Population {
    Population::builder()
        .listeners(Net::V4, 2)
        .listeners(Net::V6, 1)
        .listeners(Net::Mapped, 1)
        .established(Net::V4, 3)
        .established(Net::V6, 2)
        .established(Net::Mapped, 1)
        .half_closed(Net::V4, 1)
        .orphan_fin_wait2(Net::V6, 1)
        .time_wait(Net::V4, 30)
        .time_wait(Net::V6, 10)
        .time_wait(Net::Mapped, 4)
        .build(ns)
}

/// Listeners: 127.0.0.2:5000, 127.0.0.3:5001, [::1]:6000,
/// [::ffff:127.0.0.100]:7000 (see tests/common).
const EXPRESSIONS: &[&str] = &[
    "dport = :5000",
    "sport = :5000",
    "dport != :5000",
    "sport gt :5001",
    "sport > :6000",
    "sport lt :5001",
    "dport >= :5001",
    "dport <= :6000",
    "( sport = :5000 or sport = :6000 ) and dst 127.0.0.0/8",
    "( dport = :5000 or dport = :5001 ) and not src 127.0.0.2",
    "dst 127.0.0.2",
    "dst 127.0.0.3:5001",
    "src [::1]",
    "dst [::1]:6000",
    "src 127.0.0.0/8",
    "not dst 127.0.0.0/8",
    "dst [::ffff:127.0.0.100]",
    "dport = :7000 or sport = :7000",
    "! ( sport >= :5000 and sport <= :7000 )",
];

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn expressions_select_what_ss_selects_for_both_sources() {
    let ns = Netns::new("expr");
    let pop = population(&ns);
    let everything = ss_tuples(&ns, &[]);
    assert_eq!(everything, pop.tuples());
    for expr in EXPRESSIONS {
        let theirs = ss_tuples(&ns, &[expr]);
        assert!(
            !theirs.is_empty() && theirs.len() < everything.len(),
            "{expr}: not selective ({} of {})",
            theirs.len(),
            everything.len()
        );
        for source in ["netlink", "proc"] {
            let ours = tw_tuples(&ns, &["--source", source, expr]);
            assert_eq!(ours, theirs, "{expr} (--source {source})");
        }
    }
    // The flags are sugar over the same filter.
    assert_eq!(
        tw_tuples(&ns, &["--dport", "5000", "--src", "127.0.0.0/8"]),
        tw_tuples(&ns, &["dport = :5000 and src 127.0.0.0/8"])
    );
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn the_kernel_filter_sends_fewer_bytes() {
    use tw::analyze::aggregate::Counter;
    use tw::query::Filter;
    use tw::source::{read, SourceKind, SourceSpec};

    let ns = Netns::new("bytecode");
    let _pop = population(&ns);
    let spec = SourceSpec {
        kind: SourceKind::Netlink,
        ..SourceSpec::default()
    };
    let (all, selective) = ns.run(|| {
        let mut every = Counter::default();
        let all = read(&spec, &Filter::default(), &mut every).unwrap();
        let words = ["dst [::1]:6000"];
        let parsed = tw::query::expr::parse(&words, &|_| None).unwrap();
        let filter = Filter {
            expr: parsed.expr,
            ..Filter::default()
        };
        assert!(tw::source::netlink::KernelFilter::of(&filter)
            .bytecode
            .is_some());
        let mut some = Counter::default();
        let selective = read(&spec, &filter, &mut some).unwrap();
        (
            (every.total, all.bytes_received),
            (some.total, selective.bytes_received),
        )
    });
    // [::1]:6000's clients: 2 established, 10 TIME_WAIT, 1 orphan FIN_WAIT2.
    assert_eq!(selective.0, 13, "{selective:?}");
    assert!(all.0 > 60, "{all:?}");
    // What the kernel sent, listener pre-dump included: far less.
    assert!(
        selective.1 * 3 < all.1,
        "bytes with the filter {} vs without {}",
        selective.1,
        all.1
    );
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn ss_dumps_read_back_to_the_live_sockets() {
    let ns = Netns::new("ssdump");
    let _pop = population(&ns);
    let file = std::env::temp_dir().join(format!("tw-ssdump-{}.dump", std::process::id()));
    let out = ns.output("ss", &["-tan", "-D", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let live = tw_tuples(&ns, &[]);
    let from_file = tw_tuples(&ns, &["--from", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(from_file, live);
    // Both families: the file holds the IPv4 dump, NLMSG_DONE, then IPv6.
    assert!(from_file.iter().any(|t| t.1.starts_with('[')));
    assert!(from_file.iter().any(|t| !t.1.starts_with('[')));
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn netns_reads_another_namespace() {
    let a = Netns::new("nsa");
    let pop = Population::builder()
        .listeners(Net::V4, 1)
        .time_wait(Net::V4, 7)
        .build(&a);
    // From outside the namespace: by name and by path.
    let by_name = common::run_bounded(std::process::Command::new(env!("CARGO_BIN_EXE_tw")).args([
        "--netns",
        a.name(),
        "count",
        "--state",
        "time-wait",
    ]));
    assert_eq!(
        String::from_utf8_lossy(&by_name.stdout),
        "7\n",
        "{by_name:?}"
    );
    let path = format!("/run/netns/{}", a.name());
    for source in ["netlink", "proc"] {
        let out = common::run_bounded(
            std::process::Command::new(env!("CARGO_BIN_EXE_tw"))
                .args(["--netns", &path, "--source", source, "count"]),
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            pop.total().to_string(),
            "{source}: {out:?}"
        );
    }
    let missing = common::run_bounded(std::process::Command::new(env!("CARGO_BIN_EXE_tw")).args([
        "--netns",
        "tw-no-such-ns",
        "count",
    ]));
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ip netns list"));
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn all_netns_reads_every_namespace_with_its_label() {
    let spaces = [Netns::new("alla"), Netns::new("allb"), Netns::new("allc")];
    let pops: Vec<Population> = spaces
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            Population::builder()
                .listeners(Net::V4, 1)
                .established(Net::V4, i + 1)
                .time_wait(Net::V6, 3 * (i + 1))
                .build(ns)
        })
        .collect();
    let out = common::run_bounded(std::process::Command::new(env!("CARGO_BIN_EXE_tw")).args([
        "--all-netns",
        "ls",
        "--format",
        "json",
    ]));
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<Value> = serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    for (ns, pop) in spaces.iter().zip(&pops) {
        let mine: BTreeSet<Tuple> = rows
            .iter()
            .filter(|r| r["netns"] == ns.name())
            .map(tuple_of)
            .collect();
        assert_eq!(mine, pop.tuples(), "namespace {}", ns.name());
    }
    // The same through --by netns: one group per namespace.
    let by = common::run_bounded(std::process::Command::new(env!("CARGO_BIN_EXE_tw")).args([
        "--all-netns",
        "count",
        "--by",
        "netns",
        "--state",
        "time-wait",
    ]));
    let text = String::from_utf8_lossy(&by.stdout);
    for (i, ns) in spaces.iter().enumerate() {
        let line = format!("{}\t{}", ns.name(), 3 * (i + 1));
        assert!(text.lines().any(|l| l == line), "{line} not in {text}");
    }
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn processes_name_the_owner_and_time_wait_has_none() {
    let ns = Netns::new("procs");
    let _pop = Population::builder()
        .listeners(Net::V4, 1)
        .time_wait(Net::V4, 3)
        .build(&ns);
    let out = ns.output(env!("CARGO_BIN_EXE_tw"), &["ls", "-p", "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<Value> = serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    let me = std::process::id();
    // This test process holds the population's listener.
    let listener = rows
        .iter()
        .find(|r| r["state"] == "LISTEN")
        .expect("a listener");
    let owners = listener["processes"].as_array().unwrap();
    assert!(owners.iter().any(|o| o["pid"] == me), "{listener}");
    for tw in rows.iter().filter(|r| r["state"] == "TIME_WAIT") {
        assert_eq!(tw["processes"], serde_json::json!([]), "{tw}");
    }
    let plain = ns.output(env!("CARGO_BIN_EXE_tw"), &["ls", "-p", "--format", "plain"]);
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(text.lines().next().unwrap().ends_with("PROCESS"), "{text}");
    assert!(text.contains(&format!("/{me}")), "{text}");
}

/// tw run as `nobody`: what it cannot see is said, never silently dropped.
fn tw_as_nobody(args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tw"));
    c.args(args);
    // SAFETY: only setgroups/setgid/setuid between fork and exec.
    unsafe {
        c.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    common::run_bounded(&mut c)
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn without_root_hidden_owners_and_namespaces_are_said() {
    common::require_root();
    // Some process (this test, at least) is root's, so its fds are hidden.
    let p = tw_as_nobody(&["ls", "-p", "--format", "plain"]);
    let err = String::from_utf8_lossy(&p.stderr);
    assert!(p.status.success(), "{err}");
    assert!(err.starts_with("tw: -p: the sockets of "), "{err}");
    assert!(err.contains("root sees all"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let ns = Netns::new("nobody");
    let n = tw_as_nobody(&["--netns", ns.name(), "count"]);
    let err = String::from_utf8_lossy(&n.stderr);
    assert_eq!(n.status.code(), Some(2), "{err}");
    assert!(n.stdout.is_empty());
    assert!(err.contains("needs root (CAP_SYS_ADMIN)"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
