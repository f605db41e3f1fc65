//! The one-walk dump: with both families wanted and nothing but states to filter on, tw asks
//! the kernel for both in one TCPDIAG_GETSOCK request naming no family, one walk of the
//! connection hash instead of two. These tests hold it to the population and to the per-family
//! dumps (`-4`, `-6`, which send a SOCK_DIAG_BY_FAMILY request each) when IPv6 sockets exist,
//! IPv4-mapped ones included. Needs root and iproute2; see tests/common/mod.rs.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{tw_endpoint, Net, Netns, Population, Tuple};
use serde_json::Value;

const TW: &str = env!("CARGO_BIN_EXE_tw");

fn tw_ok(ns: &Netns, args: &[&str]) -> String {
    let out = ns.output(TW, args);
    assert!(
        out.status.success(),
        "tw {args:?} exited {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tw prints UTF-8")
}

/// `tw count --by KEY ARGS` as a map.
fn by(ns: &Netns, key: &str, args: &[&str]) -> BTreeMap<String, usize> {
    let all = [&["count", "--format", "plain", "--by", key], args].concat();
    tw_ok(ns, &all)
        .lines()
        .map(|l| {
            let (k, n) = l.rsplit_once('\t').expect("KEY<TAB>COUNT");
            (k.to_string(), n.parse().expect("a count"))
        })
        .collect()
}

fn add(mut a: BTreeMap<String, usize>, b: BTreeMap<String, usize>) -> BTreeMap<String, usize> {
    for (k, n) in b {
        *a.entry(k).or_insert(0) += n;
    }
    a
}

/// (state, local, peer) of every socket `tw ls --format json ARGS` lists, and its family.
fn listing(ns: &Netns, args: &[&str]) -> BTreeMap<Tuple, String> {
    let all = [&["ls", "--format", "json"], args].concat();
    let rows: Vec<Value> = serde_json::from_str(&tw_ok(ns, &all)).expect("a JSON array");
    rows.iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().expect("a string").to_string();
            let tuple = (
                s("state"),
                tw_endpoint(&s("local")),
                tw_endpoint(&s("peer")),
            );
            (tuple, s("family"))
        })
        .collect()
}

fn population(ns: &Netns) -> Population {
    Population::builder()
        .listeners(Net::V4, 2)
        .listeners(Net::V6, 2)
        .listeners(Net::Mapped, 1)
        .established(Net::V4, 10)
        .established(Net::V6, 10)
        .established(Net::Mapped, 4)
        .time_wait(Net::V4, 300)
        .time_wait(Net::V6, 200)
        .time_wait(Net::Mapped, 100)
        .build(ns)
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn one_walk_reads_both_families() {
    let ns = Netns::new("one-walk");
    let pop = population(&ns);

    // Every socket made, each once, with its family.
    let both = listing(&ns, &[]);
    let made: BTreeSet<Tuple> = pop.tuples();
    assert_eq!(both.keys().cloned().collect::<BTreeSet<_>>(), made);
    assert_eq!(both.len(), pop.total(), "no socket twice");
    for e in pop.expected() {
        assert_eq!(both[&e.tuple()], e.family(), "{e:?}");
    }

    // The same as the per-family dumps put together.
    let v4 = listing(&ns, &["-4"]);
    let v6 = listing(&ns, &["-6"]);
    assert!(!v6.is_empty() && !v4.is_empty());
    let mut joined = v4.clone();
    joined.extend(v6.clone());
    assert_eq!(joined, both);

    // Counts, state filters and direction (listeners of both families are walked before the
    // connections, so accepted sockets of either family are inbound).
    for (key, args) in [
        ("state", &[][..]),
        ("direction", &[][..]),
        ("direction", &["--state", "time-wait"][..]),
        ("raddr", &["--state", "established,listening"][..]),
    ] {
        let one = by(&ns, key, args);
        let split = add(
            by(&ns, key, &[args, &["-4"]].concat()),
            by(&ns, key, &[args, &["-6"]].concat()),
        );
        assert_eq!(one, split, "--by {key} {args:?}");
    }
    assert_eq!(by(&ns, "state", &[]), pop.counts());
    let out = by(&ns, "direction", &["--state", "time-wait"]);
    assert_eq!(out.get("out"), Some(&600), "{out:?}");

    // The summary's family split.
    let sum: Value = serde_json::from_str(&tw_ok(&ns, &["--format", "json"])).unwrap();
    let families = pop.family_counts();
    assert_eq!(sum["ipv4"], families["inet"] as u64);
    assert_eq!(sum["ipv6"], families["inet6"] as u64);
}
