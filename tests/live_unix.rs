//! `-x`: UNIX sockets from unix_diag and /proc/net/unix, the same set
//! `ss -xan` lists in a namespace of the test's own (UNIX sockets belong to
//! the network namespace they were made in). Needs root.

mod common;

use std::collections::BTreeSet;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener, UnixStream};

use common::Netns;
use serde_json::Value;

/// (netid, state, path, inode, peer inode, recv-q, send-q), ss's spelling.
type Row = (String, String, String, String, String, String, String);

fn ss_rows(ns: &Netns, args: &[&str]) -> BTreeSet<Row> {
    let out = ns.output("ss", args);
    assert!(out.status.success(), "ss {args:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let s = |i: usize| f[i].to_string();
            (s(0), s(1), s(4), s(5), s(7), s(2), s(3))
        })
        .collect()
}

fn tw_json(ns: &Netns, args: &[&str]) -> Vec<Value> {
    let all = [args, &["--format", "json"]].concat();
    let out = ns.output(env!("CARGO_BIN_EXE_tw"), &all);
    assert!(
        out.status.success(),
        "tw {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn tw_rows(ns: &Netns, args: &[&str]) -> BTreeSet<Row> {
    tw_json(ns, args)
        .iter()
        .map(|r| {
            let state = match r["state"].as_str().unwrap() {
                "ESTABLISHED" => "ESTAB",
                s => s,
            };
            let text = |v: &Value| match v {
                Value::Null => "-".to_string(),
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            (
                text(&r["type"]),
                state.to_string(),
                r["path"].as_str().unwrap_or("*").to_string(),
                text(&r["inode"]),
                r["peer"].as_u64().unwrap_or(0).to_string(),
                text(&r["recv_q"]),
                text(&r["send_q"]),
            )
        })
        .collect()
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn unix_sockets_are_the_ones_ss_lists() {
    let ns = Netns::new("unix");
    let dir = std::env::temp_dir().join(format!("tw-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let path = dir.join("srv.sock");
    let _held = ns.run(|| {
        let l = UnixListener::bind(&path).unwrap();
        let mut held: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
        for _ in 0..3 {
            let c = UnixStream::connect(&path).unwrap();
            let (s, _) = l.accept().unwrap();
            held.push(Box::new(c));
            held.push(Box::new(s));
        }
        // One connection not yet accepted: the listener's queue holds it.
        held.push(Box::new(UnixStream::connect(&path).unwrap()));
        held.push(Box::new(l));
        held.push(Box::new(
            UnixDatagram::bind(dir.join("dgram.sock")).unwrap(),
        ));
        let (a, b) = UnixDatagram::pair().unwrap();
        held.push(Box::new(a));
        held.push(Box::new(b));
        let abs = SocketAddr::from_abstract_name(b"tw-test-abstract").unwrap();
        held.push(Box::new(UnixListener::bind_addr(&abs).unwrap()));
        held
    });
    let theirs = ss_rows(&ns, &["-xanH"]);
    assert!(theirs.len() >= 12, "{theirs:?}");
    assert_eq!(tw_rows(&ns, &["-xan"]), theirs);
    assert_eq!(tw_rows(&ns, &["-xn"]), ss_rows(&ns, &["-xnH"]));
    assert_eq!(tw_rows(&ns, &["ls", "-xl"]), ss_rows(&ns, &["-xlH"]));
    assert!(theirs.iter().any(|r| r.2 == "@tw-test-abstract"));
    // /proc/net/unix: the same sockets (type, state, path, inode), and no
    // peers or queues, which stderr says.
    let strip = |rows: BTreeSet<Row>| -> BTreeSet<(String, String, String, String)> {
        rows.into_iter().map(|r| (r.0, r.1, r.2, r.3)).collect()
    };
    let proc_rows = tw_rows(&ns, &["-xan", "--source", "proc"]);
    assert!(
        proc_rows.iter().all(|r| r.4 == "0" && r.5 == "-"),
        "{proc_rows:?}"
    );
    assert_eq!(strip(proc_rows), strip(theirs.clone()));
    let out = ns.output(env!("CARGO_BIN_EXE_tw"), &["-xan", "--source", "proc"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no peers or queues"));
    // count, --by state, and --netns from outside.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tw"))
        .args(["count", "-xa", "--netns", ns.name()])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}\n", theirs.len())
    );
    let by = ns.output(env!("CARGO_BIN_EXE_tw"), &["count", "-xa", "--by", "state"]);
    let by = String::from_utf8(by.stdout).unwrap();
    let listen = theirs.iter().filter(|r| r.1 == "LISTEN").count();
    assert!(by.contains(&format!("LISTEN\t{listen}\n")), "{by}");
    // An address filter is refused in one line.
    let out = ns.output(env!("CARGO_BIN_EXE_tw"), &["-xa", "dport", "=", ":80"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn path_filters_select_what_ss_selects() {
    let ns = Netns::new("ssrest-upath");
    let dir = std::env::temp_dir().join(format!("tw-ssrest-upath-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let d = dir.to_str().unwrap().to_string();
    let (srv, other) = (dir.join("srv.sock"), dir.join("Other.sock"));
    let _held = ns.run(|| {
        let mut held: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
        let l = UnixListener::bind(&srv).unwrap();
        for _ in 0..2 {
            let c = UnixStream::connect(&srv).unwrap();
            let (s, _) = l.accept().unwrap();
            held.push(Box::new(c));
            held.push(Box::new(s));
        }
        held.push(Box::new(l));
        held.push(Box::new(UnixDatagram::bind(&other).unwrap()));
        let abs = SocketAddr::from_abstract_name(b"tw-upath-abs").unwrap();
        held.push(Box::new(UnixListener::bind_addr(&abs).unwrap()));
        let (a, b) = UnixStream::pair().unwrap();
        held.push(Box::new(a));
        held.push(Box::new(b));
        held
    });
    let srv = srv.to_str().unwrap();
    // src: the socket's own path (a glob, case folded), as ss matches it.
    let filters: Vec<Vec<String>> = [
        vec!["src", srv],
        vec!["src", &format!("{d}/*")],
        vec!["src", &format!("{}/*", d.to_uppercase())],
        vec!["src", "@tw-upath-*"],
        vec!["src", &format!("unix:{srv}")],
        vec!["src", "*"],
        vec!["dst", "*"],
        vec!["not", "src", &format!("{d}/*")],
        vec![
            "src",
            "@tw-upath-abs",
            "or",
            "src",
            &format!("{d}/[o]ther.sock"),
        ],
    ]
    .iter()
    .map(|f| f.iter().map(|w| w.to_string()).collect())
    .collect();
    for f in &filters {
        let words: Vec<&str> = f.iter().map(String::as_str).collect();
        let theirs = ss_rows(&ns, &[&["-xanH"][..], &words].concat());
        let ours = tw_rows(&ns, &[&["-xan"][..], &words].concat());
        assert_eq!(ours, theirs, "{f:?}");
        let all = ss_rows(&ns, &["-xanH"]);
        if !f.contains(&"*".to_string()) && !f.contains(&"not".to_string()) {
            assert!(
                ours.len() < all.len() && !ours.is_empty(),
                "{f:?}: {ours:?}"
            );
        }
    }
    // With a state flag (ss drops its State column for one `state` word).
    let glob = format!("{d}/*");
    assert_eq!(
        tw_rows(&ns, &["-xln", "src", &glob]),
        ss_rows(&ns, &["-xlnH", "src", &glob])
    );
    // dst: the peer's path, the peer found by inode among ss's rows (ss's
    // unix_diag reader leaves the peer's name out, so it has no rows here).
    let all = ss_rows(&ns, &["-xanH"]);
    let path_of = |inode: &str| all.iter().find(|r| r.3 == inode).map(|r| r.2.clone());
    let want: BTreeSet<Row> = all
        .iter()
        .filter(|r| path_of(&r.4).as_deref() == Some(srv))
        .cloned()
        .collect();
    assert_eq!(want.len(), 2, "the two clients: {all:?}");
    assert_eq!(tw_rows(&ns, &["-xan", "dst", srv]), want);
    assert_eq!(tw_rows(&ns, &["-xn", "dst", srv]), want);
    // Counted the same, and an IP filter is refused in one line.
    let out = ns.output(
        env!("CARGO_BIN_EXE_tw"),
        &["count", "-xa", "src", &format!("{d}/*")],
    );
    let n = ss_rows(&ns, &["-xanH", "src", &format!("{d}/*")]).len();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{n}\n"));
    for bad in [
        &["-xa", "dport", "=", ":80"][..],
        &["-xa", "--dst", "10.0.0.0/8"],
    ] {
        let out = ns.output(env!("CARGO_BIN_EXE_tw"), bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    }
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn process_names_with_control_characters_are_escaped_in_x_and_i_listings() {
    // Regression: `tw -xap` and `tw ls -i -p` wrote an owner's command name
    // as it is, and anyone may name a process ESC[31m (prctl(PR_SET_NAME)).
    let ns = Netns::new("ssrest-ucomm");
    let script = "import ctypes,socket,sys,time\n\
        ctypes.CDLL(None).prctl(15, b'\\x1b[31mevil', 0, 0, 0)\n\
        a, b = socket.socketpair()\n\
        l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()\n\
        print('ready', flush=True)\n\
        sys.stdin.read(1)\n";
    let mut child = ns
        .cmd("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            // Closing stdin ends it; kill it by its PID if it lingers.
            drop(self.0.stdin.take());
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "ready\n");
    let _child = Kill(child);
    for (format, listing) in [
        ("plain", "-xap"),
        ("table", "-xap"),
        ("plain", "-tlip"),
        ("table", "-tlip"),
        ("plain", "-tuxap"),
    ] {
        let out = ns.output(
            env!("CARGO_BIN_EXE_tw"),
            &[listing, "--format", format, "--color", "never"],
        );
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains('\x1b'), "{listing} {format}: {text:?}");
        assert!(text.contains("\\x1b[31mevil"), "{listing} {format}: {text}");
    }
}
