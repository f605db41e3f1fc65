//! A listing of several protocols (`tw -tuan`, `tw -tuxan`) has ss's Netid
//! column: the same rows as `ss -tuan` / `ss -tuxan` in a namespace of the
//! test's own, each with the same Netid, in plain and table output; JSON
//! rows name their protocol. Needs root.

mod common;

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};

use common::{netstat_state, ss_endpoint, tw_endpoint, Net, Netns, Population};
use serde_json::Value;

const TW: &str = env!("CARGO_BIN_EXE_tw");

/// (netid, state, local, peer) with netstat's state names; a UNIX socket's
/// local is `path inode` and its peer the peer's inode, as ss writes them.
type Row = (String, String, String, String);

fn ss_rows(ns: &Netns, args: &[&str]) -> BTreeSet<Row> {
    let out = ns.output("ss", args);
    assert!(out.status.success(), "ss {args:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let state = netstat_state(f[1]).to_string();
            if f[0].starts_with("u_") {
                // u_str ESTAB 0 0 PATH INODE * PEER
                assert_eq!(f.len(), 8, "{l}");
                (
                    f[0].into(),
                    state,
                    format!("{} {}", f[4], f[5]),
                    f[7].into(),
                )
            } else {
                let e = |s: &str| ss_endpoint(s);
                (f[0].into(), state, e(f[4]), e(f[5]))
            }
        })
        .collect()
}

fn tw_text(ns: &Netns, args: &[&str]) -> String {
    let out = ns.output(TW, args);
    assert!(
        out.status.success(),
        "tw {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// tw's plain rows: NETID STATE LOCAL PEER TIMER RECV-Q SEND-Q UID INODE.
fn tw_rows(ns: &Netns, args: &[&str]) -> BTreeSet<Row> {
    let all = [args, &["--format", "plain"]].concat();
    let text = tw_text(ns, &all);
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&head[..4], ["NETID", "STATE", "LOCAL", "PEER"], "{text}");
    lines
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let state = if f[1] == "UNCONN" { "CLOSE" } else { f[1] };
            if f[0].starts_with("u_") {
                let peer = if f[3] == "*" { "0" } else { f[3] };
                (
                    f[0].into(),
                    state.into(),
                    format!("{} {}", f[2], f[8]),
                    peer.into(),
                )
            } else {
                (
                    f[0].into(),
                    state.into(),
                    tw_endpoint(f[2]),
                    tw_endpoint(f[3]),
                )
            }
        })
        .collect()
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn netid_rows_are_the_ones_ss_lists_with_the_same_netid() {
    let ns = Netns::new("ssrest-netid");
    let _pop = Population::builder()
        .listeners(Net::V4, 2)
        .established(Net::V4, 3)
        .established(Net::V6, 2)
        .time_wait(Net::V4, 4)
        .build(&ns);
    let _held = ns.run(|| {
        let mut held: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
        for port in [5353u16, 5354] {
            held.push(Box::new(UdpSocket::bind(("127.0.0.1", port)).unwrap()));
        }
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.connect("127.0.0.1:5353").unwrap();
        held.push(Box::new(c));
        let c6 = UdpSocket::bind("[::1]:0").unwrap();
        c6.connect("[::1]:6000").unwrap();
        held.push(Box::new(c6));
        let (a, b) = UnixStream::pair().unwrap();
        held.push(Box::new(a));
        held.push(Box::new(b));
        let (a, b) = UnixDatagram::pair().unwrap();
        held.push(Box::new(a));
        held.push(Box::new(b));
        use std::os::linux::net::SocketAddrExt;
        let abs = std::os::unix::net::SocketAddr::from_abstract_name(b"tw-ssrest-netid").unwrap();
        held.push(Box::new(UnixListener::bind_addr(&abs).unwrap()));
        held
    });
    for (tw, ss) in [
        (&["-tuan"][..], &["-tuanH"][..]),
        (&["-tun"], &["-tunH"]),
        (&["-tuxan"], &["-tuxanH"]),
        (&["-txan"], &["-txanH"]),
        (&["-uxn"], &["-uxnH"]),
        (&["ls", "-tuln"], &["-tulnH"]),
    ] {
        let theirs = ss_rows(&ns, ss);
        let ours = tw_rows(&ns, tw);
        assert_eq!(ours, theirs, "tw {tw:?} vs ss {ss:?}");
    }
    // Every Netid is there in the -tuxan listing.
    let all = ss_rows(&ns, &["-tuxanH"]);
    for id in ["tcp", "udp", "u_str", "u_dgr"] {
        assert!(all.iter().any(|r| r.0 == id), "{id}: {all:?}");
    }
    // ss's order: UNIX sockets, then UDP and TCP.
    let text = tw_text(&ns, &["-tuxan", "--format", "plain", "-H"]);
    let ids: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    let first_inet = ids.iter().position(|i| !i.starts_with("u_")).unwrap();
    assert!(
        ids[first_inet..].iter().all(|i| !i.starts_with("u_")),
        "{ids:?}"
    );
    // The table has the same column, and one protocol alone has none.
    let table = tw_text(&ns, &["-tuan", "--format", "table"]);
    assert!(table.contains("NETID") && table.contains("udp") && table.contains("tcp"));
    let one = tw_text(&ns, &["-tan", "--format", "plain"]);
    assert!(one.starts_with("STATE"), "{one}");
    // JSON: every row names its protocol, the same count as ss's rows.
    let json: Value = serde_json::from_str(&tw_text(&ns, &["-tuxan", "--format", "json"])).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), all.len());
    let protos: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(protos, BTreeSet::from(["tcp", "udp", "unix"]));
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn a_listing_of_several_protocols_refuses_what_it_cannot_mean() {
    let ns = Netns::new("ssrest-netidno");
    for args in [
        &["-tuxan", "src", "/tmp/x"][..],
        &["count", "-tx"],
        &["ls", "-tx", "-i"],
        &["-tx4"],
    ] {
        let out = ns.output(TW, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.starts_with("tw: ") && err.lines().count() == 1,
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
