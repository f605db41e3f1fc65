//! ss's flags on real sockets: `tw FLAGS` lists the sockets `ss FLAGS` lists
//! in the same namespace, as ss users type them. Needs root.

mod common;

use std::collections::BTreeSet;

use common::{parse_ss_text, tw_endpoint, Net, Netns, Population, Tuple};

/// (state, local, peer) of each row of `tw ARGS -H` (plain, no header).
fn tw_rows(ns: &Netns, args: &[&str]) -> BTreeSet<Tuple> {
    let all = [args, &["-H", "--format", "plain"]].concat();
    let out = ns.output(env!("CARGO_BIN_EXE_tw"), &all);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "tw {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f[0] != "STATE", "-H left the header: {l}");
            (f[0].to_string(), tw_endpoint(f[1]), tw_endpoint(f[2]))
        })
        .collect()
}

fn ss_rows(ns: &Netns, args: &[&str]) -> BTreeSet<Tuple> {
    let out = ns.output("ss", args);
    assert!(out.status.success(), "ss {args:?}");
    parse_ss_text(&String::from_utf8(out.stdout).unwrap())
        .into_iter()
        .map(|l| (l.state, l.local, l.peer))
        .collect()
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn ss_flags_give_the_rows_ss_gives() {
    let ns = Netns::new("ssflags");
    let _pop = Population::builder()
        .listeners(Net::V4, 2)
        .listeners(Net::V6, 1)
        .established(Net::V4, 3)
        .established(Net::V6, 2)
        .half_closed(Net::V4, 1)
        .time_wait(Net::V4, 5)
        .time_wait(Net::V6, 3)
        .build(&ns);
    let cases: &[(&[&str], &[&str])] = &[
        (&["-tan"], &["-tan"]),
        (&["-tn"], &["-tn"]),
        (&["-t"], &["-tn"]),
        (&["-ltn"], &["-ltn"]),
        (&["ls", "-lnt"], &["-ltn"]),
        (&["-tan4"], &["-tan4"]),
        (&["-6tn"], &["-6tn"]),
        (&["-t", "-a", "-n", "-o", "-e"], &["-taneo"]),
        (
            &["-tan", "dport", "=", ":5000"],
            &["-tan", "dport", "=", ":5000"],
        ),
        (
            &["-tn", "sport", "=", ":5000"],
            &["-tn", "sport", "=", ":5000"],
        ),
        (&["-A", "tcp", "-an"], &["-A", "tcp", "-an"]),
        (&["-f", "inet6", "-tan"], &["-f", "inet6", "-tan"]),
    ];
    for (ours, theirs) in cases {
        let (a, b) = (tw_rows(&ns, ours), ss_rows(&ns, theirs));
        assert!(!b.is_empty(), "ss {theirs:?} lists nothing");
        assert_eq!(a, b, "tw {ours:?} against ss {theirs:?}");
    }
    // ss's default set leaves TIME_WAIT and LISTEN out; -a has them.
    let tn = tw_rows(&ns, &["-tn"]);
    assert!(tn.iter().all(|t| t.0 != "TIME_WAIT" && t.0 != "LISTEN"));
    assert!(tw_rows(&ns, &["-tan"]).iter().any(|t| t.0 == "TIME_WAIT"));
    // -N NAME reads the namespace from outside it, as --netns does.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tw"))
        .args(["-tanH", "-N", ns.name(), "--format", "plain"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let rows = String::from_utf8(out.stdout).unwrap();
    assert_eq!(rows.lines().count(), ss_rows(&ns, &["-tan"]).len());
}
