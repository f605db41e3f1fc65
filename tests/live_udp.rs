//! `-u`: UDP sockets from sock_diag (IPPROTO_UDP) and /proc/net/udp{,6}, the
//! same set `ss -u...` lists in a namespace of the test's own; filters,
//! count --by, JSON and --netns over them. Needs root.

mod common;

use std::collections::BTreeSet;
use std::net::UdpSocket;

use common::{parse_ss_text, ss_endpoint, tw_endpoint, Netns, Tuple};
use serde_json::Value;

fn tw_out(ns: &Netns, args: &[&str]) -> String {
    let out = ns.output(env!("CARGO_BIN_EXE_tw"), args);
    assert!(
        out.status.success(),
        "tw {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (state, local, peer) of `tw ARGS -H` rows, UNCONN spelt as ss's parser
/// spells it (netstat's CLOSE).
fn tw_rows(ns: &Netns, args: &[&str]) -> BTreeSet<Tuple> {
    let all = [args, &["-H", "--format", "plain"]].concat();
    tw_out(ns, &all)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let state = if f[0] == "UNCONN" { "CLOSE" } else { f[0] };
            (state.to_string(), tw_endpoint(f[1]), tw_endpoint(f[2]))
        })
        .collect()
}

/// ss's rows; where one state is all ss lists it drops the State column,
/// and the state is then the one `tw` gave the same (local, peer).
fn ss_rows(ns: &Netns, args: &[&str], ours: &BTreeSet<Tuple>) -> BTreeSet<Tuple> {
    let out = ns.output("ss", args);
    assert!(out.status.success(), "ss {args:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    if text.starts_with("State") {
        return parse_ss_text(&text)
            .into_iter()
            .map(|l| (l.state, l.local, l.peer))
            .collect();
    }
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (local, peer) = (ss_endpoint(f[2]), ss_endpoint(f[3]));
            let state = ours
                .iter()
                .find(|t| t.1 == local && t.2 == peer)
                .map_or("?".to_string(), |t| t.0.clone());
            (state, local, peer)
        })
        .collect()
}

/// Bound and connected UDP sockets, IPv4 and IPv6, held open.
fn population(ns: &Netns) -> Vec<UdpSocket> {
    ns.run(|| {
        let mut held = Vec::new();
        for port in [5353u16, 5354, 5355] {
            held.push(UdpSocket::bind(("127.0.0.1", port)).unwrap());
        }
        let v6 = UdpSocket::bind("[::1]:6000").unwrap();
        for _ in 0..4 {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            c.connect("127.0.0.1:5353").unwrap();
            held.push(c);
        }
        let c6 = UdpSocket::bind("[::1]:0").unwrap();
        c6.connect("[::1]:6000").unwrap();
        held.push(v6);
        held.push(c6);
        held
    })
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn udp_sockets_are_the_ones_ss_lists() {
    let ns = Netns::new("udp");
    let _held = population(&ns);
    let cases: &[(&[&str], &[&str])] = &[
        (&["-uan"], &["-uan"]),
        (&["-un"], &["-un"]),
        (&["-uln"], &["-uln"]),
        (&["-uan4"], &["-uan4"]),
        (&["-uan6"], &["-uan6"]),
        (
            &["-uan", "dport", "=", ":5353"],
            &["-uan", "dport", "=", ":5353"],
        ),
        (
            &["-uan", "sport", ">", ":5353"],
            &["-uan", "sport", ">", ":5353"],
        ),
        (&["-A", "udp", "-an"], &["-A", "udp", "-an"]),
    ];
    for source in ["netlink", "proc"] {
        for (ours, theirs) in cases {
            let ours_src = [*ours, &["--source", source]].concat();
            let a = tw_rows(&ns, &ours_src);
            let b = ss_rows(&ns, theirs, &a);
            assert!(!b.is_empty(), "ss {theirs:?} lists nothing");
            assert_eq!(a, b, "tw {ours_src:?} against ss {theirs:?}");
        }
    }
    assert_eq!(tw_rows(&ns, &["-uan"]).len(), 9);
    // TCP stays the default: none of these is a TCP socket.
    assert!(tw_rows(&ns, &["ls"]).is_empty());
    // count --by and JSON.
    assert_eq!(
        tw_out(&ns, &["count", "-ua", "--by", "state"]),
        "ESTABLISHED\t5\nUNCONN\t4\n"
    );
    let v: Value = serde_json::from_str(&tw_out(&ns, &["-uan", "--format", "json"])).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|r| r["protocol"] == "udp"), "{v}");
    // -t with -u: JSON names each row's protocol; the columns have NETID
    // (compared with ss -tuan in tests/live_netid.rs).
    let v: Value = serde_json::from_str(&tw_out(&ns, &["-tuan", "--format", "json"])).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 9);
    let mixed = tw_out(&ns, &["-tuan", "--format", "plain"]);
    assert!(mixed.starts_with("NETID"), "{mixed}");
    assert_eq!(mixed.lines().filter(|l| l.starts_with("udp ")).count(), 9);
    // --netns from outside the namespace.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tw"))
        .args(["count", "-ua", "--netns", ns.name()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "9\n");
}
