//! Hostile and odd input: truncated and garbage captures, lines of megabytes and endless input,
//! bytes that are not UTF-8, a capture written while it is read, a /proc without tcp6, a user
//! without privileges, ENOBUFS from the kernel. Each gets one printable line on stderr starting
//! `tw: ` and a non-zero exit where the answer would be wrong; never a panic, never part of an
//! answer. And tw writes nothing but what `capture`, `watch --record` and `plot` are told to.
//!
//! The first tests need no root; the rest build namespaces (root, iproute2) and use strace
//! (.ci/setup.d/60-proxy.sh) and a C compiler (tests/support/nlshim.rs).

mod common;
#[path = "support/nlshim.rs"]
mod nlshim;
#[path = "support/run.rs"]
mod run;
#[path = "support/scratch.rs"]
mod scratch;

use scratch::Scratch;
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{run_bounded, Netns};
use run::{small_population, tw_in};
use serde_json::Value;

const TW: &str = env!("CARGO_BIN_EXE_tw");
const NOBODY: u32 = 65534;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn tw(args: &[&str]) -> Output {
    run_bounded(Command::new(TW).args(args))
}

/// The contract for bad input: exit `code`, nothing on stdout, one printable line on stderr
/// starting `tw: ` and holding each of `want`. Returns the line.
fn refused(out: &Output, code: i32, want: &[&str]) -> String {
    let mut err = String::from_utf8_lossy(&out.stderr).into_owned();
    // `ports` and `doctor` over a --from capture first say what they assume, on a line of
    // its own; the error is the line after it.
    const NOTE: &str = "tw: --from holds no sysctls or counters;";
    if err.starts_with(NOTE) {
        err = err
            .split_once('\n')
            .map(|x| x.1.to_string())
            .unwrap_or_default();
    }
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(
        out.stdout.is_empty(),
        "part of an answer: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        err.starts_with("tw: ") && err.ends_with('\n') && err.lines().count() == 1,
        "not one line: {err:?}"
    );
    assert!(
        !err.trim_end().chars().any(char::is_control),
        "control characters: {err:?}"
    );
    for w in want {
        assert!(err.contains(w), "{w:?} not in {err:?}");
    }
    err
}

/// Cuts of a real capture at every few bytes: every one is refused, except a cut right after a
/// dump's NLMSG_DONE, which is a whole capture of fewer families (ss -4 -D writes those).
#[test]
fn truncated_sock_diag_captures_are_refused() {
    let dump = fs::read(fixture("netlink/tcp.dump")).unwrap();
    let mut ends_of_dumps = BTreeSet::new();
    let mut at = 0;
    while at < dump.len() {
        let len = u32::from_ne_bytes(dump[at..at + 4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes([dump[at + 4], dump[at + 5]]);
        at += (len + 3) & !3;
        if kind == 3 {
            ends_of_dumps.insert(at);
        }
    }
    let s = Scratch::new("cut-dump");
    let mut refusals = 0;
    let cuts: BTreeSet<usize> = (1..dump.len())
        .step_by(7)
        .chain(ends_of_dumps.iter().copied().filter(|e| *e < dump.len()))
        .collect();
    for cut in cuts {
        let p = s.file(&format!("cut{cut}"), &dump[..cut]);
        let out = tw(&["--from", p.to_str().unwrap(), "count"]);
        if ends_of_dumps.contains(&cut) {
            assert!(out.status.success(), "cut at {cut}");
        } else {
            refused(&out, 2, &[p.to_str().unwrap()]);
            refusals += 1;
        }
    }
    assert!(refusals > 50);
}

/// /proc tables cut inside a line are refused with the line number; a cut between lines is a
/// shorter table and reads as one (nothing in the format tells them apart).
#[test]
fn truncated_proc_tables_are_refused_inside_a_line() {
    let table = fs::read(fixture("proc/tcp")).unwrap();
    let s = Scratch::new("cut-proc");
    for cut in (1..table.len()).step_by(13) {
        let p = s.file(&format!("cut{cut}"), &table[..cut]);
        let out = tw(&["--from", p.to_str().unwrap(), "count"]);
        if table[cut - 1] == b'\n' {
            assert!(out.status.success(), "cut at {cut}");
        } else {
            refused(&out, 2, &[p.to_str().unwrap(), ":"]);
        }
    }
}

/// Garbage of every size, alone and behind a header that makes it look like a sock_diag dump.
#[test]
fn garbage_captures_are_refused() {
    let s = Scratch::new("garbage");
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    };
    for n in [1, 15, 16, 17, 71, 72, 88, 1000, 100_000] {
        let noise = bytes(n);
        let p = s.file(&format!("noise{n}"), &noise);
        refused(&tw(&["--from", p.to_str().unwrap(), "count"]), 2, &[]);
        // An nlmsghdr of SOCK_DIAG_BY_FAMILY (20) claiming the whole file, then noise.
        let mut fake = ((16 + n) as u32).to_ne_bytes().to_vec();
        fake.extend_from_slice(&20u16.to_ne_bytes());
        fake.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        fake.extend_from_slice(&noise);
        let p = s.file(&format!("fake{n}"), &fake);
        refused(&tw(&["--from", p.to_str().unwrap(), "count"]), 2, &[]);
    }
    // The corrupt fixtures too, through each command that reads the table once.
    for name in ["tcp-garbage.bin", "netlink-truncated.dump", "tcp-bad-hex"] {
        let p = fixture(&format!("corrupt/{name}"));
        for cmd in [
            &["count"][..],
            &["ls"],
            &["ports"],
            &["summary"],
            &["metrics"],
        ] {
            let all = [&["--from", p.to_str().unwrap()], cmd].concat();
            refused(&tw(&all), 2, &[name]);
        }
        // doctor: 2 means critical, so a failure to read is 3 (Nagios's UNKNOWN).
        refused(&tw(&["--from", p.to_str().unwrap(), "doctor"]), 3, &[name]);
    }
}

/// Regression: a line of megabytes was read whole before being judged, and input without a
/// newline (/dev/zero) was read until memory ran out. Now both stop at 4 KiB.
#[test]
fn lines_of_megabytes_and_endless_input_are_refused_at_once() {
    let s = Scratch::new("long");
    let table = fs::read_to_string(fixture("proc/tcp")).unwrap();
    let first = table.lines().nth(1).unwrap();
    // A real line with 5 MB more on it, and 5 MB of one field.
    let long = format!(
        "{}\n{first} {}\n",
        table.lines().next().unwrap(),
        "x".repeat(5 << 20)
    );
    let junk = format!("   0: {}\n", "A".repeat(5 << 20));
    for (name, text) in [("long", long), ("junk", junk)] {
        let p = s.file(name, text.as_bytes());
        refused(
            &tw(&["--from", p.to_str().unwrap(), "count"]),
            2,
            &["longer than 4096 bytes"],
        );
    }
    let started = Instant::now();
    refused(
        &tw(&["--from", "/dev/zero", "count"]),
        2,
        &["/dev/zero:1: line is longer"],
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Regression: an `ss -D` capture was read whole before it was decoded, so a large one (or an
/// endless pipe) cost its size in memory. Now a stream of 64 MiB is counted with tw's peak RSS
/// well under the 16 MiB it keeps for counting.
#[test]
fn a_sock_diag_stream_is_counted_in_constant_memory() {
    const STREAM: usize = 64 << 20;
    let dump = fs::read(fixture("netlink/tcp.dump")).unwrap();
    let one = tw(&[
        "--from",
        fixture("netlink/tcp.dump").to_str().unwrap(),
        "count",
    ]);
    let per: usize = String::from_utf8_lossy(&one.stdout).trim().parse().unwrap();
    let copies = STREAM / dump.len();

    let mut child = Command::new(TW)
        .args(["--from", "/dev/stdin", "count"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    // The writer says how much it wrote, then holds the pipe open until told to close it.
    let (wrote, close) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let mut written = 0u64;
        for _ in 0..copies {
            if stdin.write_all(&dump).is_err() {
                break;
            }
            written += dump.len() as u64;
        }
        let _ = wrote.0.send(written);
        let _ = close.1.recv();
    });
    let left = deadline.saturating_duration_since(Instant::now());
    let written = wrote.1.recv_timeout(left).unwrap_or(0);
    // Once tw has read every byte, and before its input ends, its high-water RSS (VmHWM: this
    // process image's own, where a child's ru_maxrss would also carry the test process's RSS
    // from before exec) covers the whole stream.
    let proc_field = |file: &str, key: &str| -> u64 {
        let text = fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    while proc_field("io", "rchar:") < written && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let peak_kib = proc_field("status", "VmHWM:");
    let _ = close.0.send(());
    let out = common::wait_bounded(child, "tw --from /dev/stdin count", deadline);
    writer.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {err}", out.status);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n", per * copies),
        "{err}"
    );
    eprintln!(
        "{copies} dumps ({} MiB) counted with a peak RSS of {peak_kib} KiB",
        written >> 20
    );
    assert!(
        peak_kib > 0 && peak_kib < 16 * 1024,
        "peak RSS {peak_kib} KiB"
    );
}

/// Regression (found by fuzzing): a field's bytes went into the message as they were, NUL and
/// ESC included, so a hostile capture could write to the operator's terminal.
#[test]
fn bytes_that_are_not_utf8_or_printable_give_a_printable_line() {
    let s = Scratch::new("bytes");
    let table = fs::read(fixture("proc/tcp")).unwrap();
    let header_end = table.iter().position(|b| *b == b'\n').unwrap() + 1;
    for (name, field) in [
        ("latin1", &b"0100007F:1F\xe9\xff"[..]),
        ("escape", b"\x1b]0;owned\x07\x1b[2J"),
        ("nul", b"01\x0000007F:1F90"),
        ("vt", b"0100\x0b007F:1F90"),
    ] {
        let mut bytes = table[..header_end].to_vec();
        bytes.extend_from_slice(b"   0: ");
        bytes.extend_from_slice(field);
        bytes.extend_from_slice(
            b" 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n",
        );
        let p = s.file(name, &bytes);
        refused(&tw(&["--from", p.to_str().unwrap(), "count"]), 2, &[":2: "]);
    }
    // A file name that is not UTF-8 is named lossily, still on one line.
    use std::os::unix::ffi::OsStrExt;
    let odd = s.0.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    fs::write(&odd, b"garbage\n").unwrap();
    let out = run_bounded(Command::new(TW).arg("--from").arg(&odd).arg("count"));
    refused(&out, 2, &["caf"]);
}

/// Regression: a capture that grew while tw read it (a copy still being written) was read as far
/// as it had got, and the answer given as if complete.
#[test]
fn a_capture_written_while_read_is_refused() {
    let s = Scratch::new("growing");
    let table = fs::read_to_string(fixture("proc/tcp")).unwrap();
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let body: Vec<&str> = lines.collect();
    // Big enough that reading it takes a while (about 20 MB).
    let mut text = format!("{header}\n");
    for i in 0..140_000 {
        text.push_str(body[i % body.len()]);
        text.push('\n');
    }
    let p = s.file("tcp", text.as_bytes());
    let stop = AtomicBool::new(false);
    let out = thread::scope(|scope| {
        scope.spawn(|| {
            let mut f = fs::OpenOptions::new().append(true).open(&p).unwrap();
            while !stop.load(Ordering::Relaxed) {
                f.write_all(format!("{}\n", body[0]).as_bytes()).unwrap();
                thread::sleep(Duration::from_millis(1));
            }
        });
        let out = tw(&["--from", p.to_str().unwrap(), "count"]);
        stop.store(true, Ordering::Relaxed);
        out
    });
    refused(&out, 2, &["changed while tw read it", "read it again"]);
    // Left alone, the same file reads.
    assert!(tw(&["--from", p.to_str().unwrap(), "count"])
        .status
        .success());
}

/// /proc/net/tcp6 is absent when the kernel runs without IPv6 (ipv6.disable=1). That cannot be
/// made here: a namespace with net.ipv6.conf.all.disable_ipv6=1 still has tcp6, and booting
/// another kernel is out of reach. So a /proc tree without it stands in, through --proc-root
/// and --from. A tree with tcp6 but no tcp is a broken copy (every kernel has tcp) and is
/// refused rather than read as a box without IPv4 sockets.
#[test]
fn a_proc_without_tcp6_reads_as_a_box_without_ipv6() {
    let s = Scratch::new("no-ipv6");
    let root = s.0.join("root");
    copy_tree(&fixture("procroot/live"), &root);
    let v4 = tw(&["--proc-root", root.to_str().unwrap(), "count", "-4"]);
    assert!(v4.status.success());
    fs::remove_file(root.join("net/tcp6")).unwrap();
    fs::remove_file(root.join("net/sockstat6")).unwrap();
    let r = root.to_str().unwrap();
    for args in [
        &["--proc-root", r, "count"][..],
        &["--from", &format!("{r}/net"), "count"],
    ] {
        let out = tw(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, v4.stdout, "{args:?}: every socket is IPv4");
    }
    let six = tw(&["--proc-root", r, "count", "-6"]);
    assert_eq!(String::from_utf8_lossy(&six.stdout), "0\n");
    let summary: Value =
        serde_json::from_slice(&tw(&["--proc-root", r, "summary", "--format", "json"]).stdout)
            .unwrap();
    assert_eq!(summary["ipv6"], 0, "{summary}");
    let doctor = tw(&["--proc-root", r, "doctor"]);
    assert!(doctor.status.code().is_some_and(|c| c < 3), "{doctor:?}");

    // tcp6 without tcp: refused, unless only IPv6 was asked for.
    let only6 = s.0.join("only6");
    fs::create_dir_all(&only6).unwrap();
    fs::copy(fixture("proc/tcp6"), only6.join("tcp6")).unwrap();
    let o = only6.to_str().unwrap();
    refused(
        &tw(&["--from", o, "count"]),
        2,
        &[o, "has tcp6 but no tcp", "-6"],
    );
    assert!(tw(&["--from", o, "count", "-6"]).status.success());
    // Regression: an empty --proc-root was reported as a --from problem.
    let empty = s.0.join("empty");
    fs::create_dir_all(empty.join("net")).unwrap();
    let err = refused(
        &tw(&["--proc-root", empty.to_str().unwrap(), "count"]),
        2,
        &["holds neither tcp nor tcp6"],
    );
    assert!(!err.contains("--from"), "{err}");
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Without privileges tw sees what root sees: sock_diag and /proc/net show every socket of the
/// namespace to any user, and the sysctls doctor reads are world-readable.
#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn an_unprivileged_user_gets_the_same_answers_as_root() {
    let ns = Netns::new("nobody");
    let pop = small_population(&ns);
    let timerless = |out: &Output| -> Vec<Value> {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        for r in &mut rows {
            r.as_object_mut().unwrap().remove("timer");
        }
        rows.sort_by_key(|r| r.to_string());
        rows
    };
    for source in ["netlink", "proc"] {
        let args = ["ls", "--format", "json", "--source", source];
        let root = timerless(&tw_in(&ns, 0, &[], &args));
        assert_eq!(root.len(), pop.total());
        assert_eq!(
            timerless(&tw_in(&ns, NOBODY, &[], &args)),
            root,
            "--source {source}"
        );
        for cmd in [
            &["count", "--by", "state"][..],
            &["ports", "--format", "json"],
        ] {
            let all = [cmd, &["--source", source]].concat();
            let (r, n) = (tw_in(&ns, 0, &[], &all), tw_in(&ns, NOBODY, &[], &all));
            assert!(
                n.status.success(),
                "{all:?}: {}",
                String::from_utf8_lossy(&n.stderr)
            );
            assert_eq!(n.stdout, r.stdout, "{all:?}");
        }
    }
    let rules = |out: &Output| -> Vec<(String, String)> {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["rule"].to_string(), f["severity"].to_string()))
            .collect()
    };
    let (r, n) = (
        tw_in(&ns, 0, &[], &["doctor", "--format", "json"]),
        tw_in(&ns, NOBODY, &[], &["doctor", "--format", "json"]),
    );
    assert_eq!(
        n.status.code(),
        r.status.code(),
        "{}",
        String::from_utf8_lossy(&n.stderr)
    );
    assert_eq!(rules(&n), rules(&r));
    // capture into a folder nobody owns.
    let s = Scratch::new("nobody-capture");
    fs::set_permissions(&s.0, fs::Permissions::from_mode(0o777)).unwrap();
    let dir = s.0.join("cap");
    let out = tw_in(&ns, NOBODY, &[], &["capture", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("net/tcp").is_file() && dir.join("sock_diag.dump").is_file());
}

/// What an unprivileged user may not do gets one line naming what and why: entering another
/// namespace (setns needs CAP_SYS_ADMIN), reading a file it may not read, writing a capture
/// where it may not write.
#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn an_unprivileged_user_is_refused_in_one_line() {
    let ns = Netns::new("refused");
    let _pop = small_population(&ns);
    let s = Scratch::new("refused");
    // Only root may write here (0755, root's).
    let locked = s.0.join("locked");
    fs::create_dir_all(&locked).unwrap();
    let dir = locked.join("cap");
    let out = tw_in(&ns, NOBODY, &[], &["capture", dir.to_str().unwrap()]);
    refused(&out, 2, &["Permission denied"]);
    // A copied /proc whose table nobody may read.
    let root = s.0.join("root");
    copy_tree(&fixture("procroot/live"), &root);
    for d in [&s.0, &root, &root.join("net")] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(root.join("net/tcp"), fs::Permissions::from_mode(0o000)).unwrap();
    let out = tw_in(
        &ns,
        NOBODY,
        &[],
        &["--proc-root", root.to_str().unwrap(), "count"],
    );
    refused(&out, 2, &["net/tcp", "Permission denied", "run as root"]);
    let out = tw_in(
        &ns,
        NOBODY,
        &[],
        &["--proc-root", root.to_str().unwrap(), "doctor"],
    );
    refused(&out, 3, &["Permission denied"]);
    // Another namespace.
    let other = Netns::new("other");
    for cmd in [&["count"][..], &["doctor"]] {
        let all = [&["--netns", other.name()], cmd].concat();
        let code = if cmd == ["doctor"] { 3 } else { 2 };
        refused(&tw_in(&ns, NOBODY, &[], &all), code, &[other.name()]);
    }
}

/// ENOBUFS on the sock_diag socket (the kernel dropped replies, netlink_overrun) at the first
/// receive and in the middle of a dump: the answer would be short, so tw says so and stops;
/// --source auto does not quietly switch to /proc either.
#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn enobufs_from_the_kernel_gets_one_line_and_exit_2() {
    let ns = Netns::new("enobufs");
    // About 2000 sockets: several receive buffers, so the third recv() is mid-dump.
    let _pop = small_population(&ns);
    let preload = ("LD_PRELOAD", nlshim::path().display().to_string());
    for at in ["1", "3"] {
        let env = [preload.clone(), ("TW_SHIM_ENOBUFS", at.to_string())];
        for (args, code) in [
            (&["--source", "netlink", "count"][..], 2),
            (&["count", "--by", "state"], 2),
            (&["ls"], 2),
            (&["doctor"], 3),
        ] {
            let out = tw_in(&ns, 0, &env, args);
            refused(&out, code, &["No buffer space available", "try again"]);
        }
    }
    // Without the shim's error the same commands answer.
    let env = [preload, ("TW_SHIM_ENOBUFS", "0".to_string())];
    assert!(tw_in(&ns, 0, &env, &["count"]).status.success());
}

/// Every command, traced with strace: no file is opened for writing, created, removed, renamed
/// or changed anywhere but in the folder or file the command was told to write (`capture DIR`,
/// `watch --record FILE`, `plot -o FILE`). /proc and /proc/sys are only ever read. A command
/// added to tw without a line here fails this test, so that it is traced too.
#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn tw_never_writes_to_proc_or_sysctls() {
    require_strace();
    let ns = Netns::new("nowrite");
    let _pop = small_population(&ns);
    let s = Scratch::new("nowrite");
    let out_dir = s.0.join("out");
    fs::create_dir_all(&out_dir).unwrap();
    let od = out_dir.to_str().unwrap().to_string();
    let rec = format!("{od}/watch.jsonl");
    let cap = format!("{od}/capture");
    let svg = format!("{od}/chart.svg");
    let commands: Vec<(&str, Vec<String>)> = vec![
        ("", vec![]),
        ("summary", vec!["summary".into()]),
        ("ls", vec!["ls".into(), "-p".into()]),
        ("count", vec!["count".into(), "--by".into(), "state".into()]),
        ("ports", vec!["ports".into()]),
        ("doctor", vec!["doctor".into(), "--verbose".into()]),
        ("explain", vec!["explain".into(), "time-wait".into()]),
        ("capture", vec!["capture".into(), cap.clone()]),
        ("metrics", vec!["metrics".into()]),
        (
            "watch",
            [
                "watch",
                "--count",
                "2",
                "--interval",
                "100ms",
                "--record",
                &rec,
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "plot",
            ["plot", &rec, "-o", &svg].map(String::from).to_vec(),
        ),
        ("serve", vec!["serve".into()]),
        ("conntrack", vec!["conntrack".into()]),
        ("schema", vec!["schema".into(), "watch".into()]),
        ("completions", vec!["completions".into(), "bash".into()]),
        ("man", vec!["man".into(), "doctor".into()]),
        (
            "trace",
            ["trace", "--duration", "1"].map(String::from).to_vec(),
        ),
    ];
    let known: BTreeSet<&str> = commands.iter().map(|c| c.0).collect();
    for c in help_commands() {
        assert!(
            known.contains(c.as_str()),
            "tw {c} is not traced here: add it to this test"
        );
    }
    let mut read_sysctls = false;
    for (name, args) in &commands {
        let trace = s.0.join(format!(
            "trace-{}",
            if name.is_empty() { "none" } else { name }
        ));
        fs::create_dir_all(&trace).unwrap();
        let mut all: Vec<String> = vec!["--source".into(), "netlink".into()];
        if *name == "explain" || *name == "plot" {
            all.clear(); // no socket source
        }
        all.extend(args.iter().cloned());
        let ok = if *name == "serve" {
            trace_serve(&ns, &trace)
        } else {
            let out = ns.run(|| run_bounded(strace(&trace).arg(TW).args(&all)));
            out.status.code().is_some_and(|c| c < 3)
        };
        assert!(ok, "tw {all:?} failed under strace");
        let allowed: &[&str] = match *name {
            "capture" => &[&cap],
            "watch" => &[&rec],
            "plot" => &[&svg],
            _ => &[],
        };
        let written = writes(&trace);
        // The trace sees writes: capture's own are there.
        assert_eq!(
            *name == "capture",
            written.iter().any(|(_, p)| p.starts_with(&cap))
        );
        for (line, path) in written {
            assert!(
                allowed.iter().any(|a| Path::new(&path).starts_with(a)),
                "tw {name}: writes {path}: {line}"
            );
            assert!(!path.starts_with("/proc"), "tw {name}: {line}");
        }
        read_sysctls |= traced_lines(&trace).iter().any(|l| {
            l.contains("\"/proc/sys/net/ipv4/ip_local_port_range\"") && l.contains("O_RDONLY")
        });
    }
    // The trace did see the reads, so it would have seen writes.
    assert!(
        read_sysctls,
        "no command was seen reading ip_local_port_range"
    );
    assert!(Path::new(&cap).join("net/tcp").is_file());
    assert!(Path::new(&svg).is_file());
}

/// strace following every thread and child, one file per process under `trace`, logging the
/// calls that name a path, descriptors shown as the paths they stand for; run from `/`.
fn strace(trace: &Path) -> Command {
    let mut c = Command::new("strace");
    c.args([
        "-f",
        "-ff",
        "-qq",
        "-y",
        "-e",
        "trace=%file",
        "-e",
        "signal=none",
        "-o",
    ])
    .arg(trace.join("t"))
    .current_dir("/");
    c
}

fn require_strace() {
    let ok = Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "strace is needed (apt-get install strace, as scripts/test does)"
    );
}

/// The commands `tw --help` lists, `help` aside.
fn help_commands() -> Vec<String> {
    let out = tw(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

/// `tw serve` under strace: two scrapes, then SIGKILL to strace and tw (their process group).
fn trace_serve(ns: &Netns, trace: &Path) -> bool {
    let addr = "127.0.0.1:19464";
    let mut child = ns.run(|| {
        strace(trace)
            .args([TW, "serve", "--listen", addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("strace tw serve")
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut served = 0;
    while served < 2 && Instant::now() < deadline {
        served += ns.run(|| scrape(addr)) as usize;
        thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: a signal to the process group this test created (strace and tw under it).
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let _ = child.wait();
    served == 2
}

fn scrape(addr: &str) -> bool {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    got.starts_with("HTTP/1.1 200")
}

fn traced_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        lines.extend(
            fs::read_to_string(e.path())
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    lines
}

/// (line, path) of every traced call that writes to or changes a path.
fn writes(dir: &Path) -> Vec<(String, String)> {
    const CHANGE: &[&str] = &[
        "creat",
        "mkdir",
        "mkdirat",
        "unlink",
        "unlinkat",
        "rmdir",
        "rename",
        "renameat",
        "renameat2",
        "link",
        "linkat",
        "symlink",
        "symlinkat",
        "chmod",
        "fchmodat",
        "fchmodat2",
        "chown",
        "lchown",
        "fchownat",
        "truncate",
        "utime",
        "utimes",
        "utimensat",
        "futimesat",
        "mknod",
        "mknodat",
        "setxattr",
        "lsetxattr",
        "removexattr",
        "lremovexattr",
        "mount",
        "umount2",
        "chroot",
        "acct",
        "swapon",
    ];
    const WRITE_FLAGS: &[&str] = &["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"];
    let mut out = Vec::new();
    for line in traced_lines(dir) {
        let Some((call, rest)) = line.split_once('(') else {
            continue;
        };
        let call = call.trim();
        let opens = matches!(call, "open" | "openat" | "openat2");
        let writes = if opens {
            WRITE_FLAGS.iter().any(|f| rest.contains(f))
        } else {
            CHANGE.contains(&call)
        };
        // An attempt counts, whether or not it succeeded.
        if !writes {
            continue;
        }
        out.push((line.clone(), traced_path(rest)));
    }
    out
}

/// The path a traced call names: its first quoted string, joined to its directory argument
/// when that is a descriptor (`3</tmp/x>` under -y).
fn traced_path(args: &str) -> String {
    let quoted = args
        .split('"')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_default();
    if quoted.starts_with('/') {
        return quoted;
    }
    let base = args
        .split_once('<')
        .filter(|(fd, _)| fd.trim().parse::<i32>().is_ok())
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or("/", |(dir, _)| dir);
    Path::new(base).join(quoted).display().to_string()
}

// ---- issue 12: hardening against hostile input, one test per item ----

/// Whether this process runs as root (/proc/self belongs to the effective uid).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Issue 12 item 1: `tw capture DIR` followed symlinks planted in DIR and `tw capture /proc`
/// rewrote the sysctls it copies; `tw generate` had the same pattern. Both now write only into a
/// new or empty folder of their own, never on procfs or sysfs. (The paths tried here are ones the
/// old code would only have failed on, so running this against it changes nothing.)
#[test]
fn capture_and_generate_write_only_into_a_fresh_folder_of_their_own() {
    let s = Scratch::new("fresh");
    let root = fixture("procroot/live");
    let root = root.to_str().unwrap();
    let capture = |dir: &str| tw(&["--proc-root", root, "capture", dir]);
    let generate = |dir: &str| tw(&["generate", dir]);
    for (dir, fs_name) in [("/proc/sys/net", "procfs"), ("/sys/kernel", "sysfs")] {
        refused(&capture(dir), 2, &[dir, fs_name, "give a new folder"]);
        refused(&generate(dir), 2, &[dir, fs_name]);
    }
    // Symlinks planted in the folder, to a file and in place of `net/`.
    let victim = s.file("victim/keep", b"keep");
    let planted = s.0.join("planted");
    fs::create_dir(&planted).unwrap();
    std::os::unix::fs::symlink(victim.parent().unwrap(), planted.join("net")).unwrap();
    std::os::unix::fs::symlink(&victim, planted.join("tw.1")).unwrap();
    let p = planted.to_str().unwrap();
    refused(&capture(p), 2, &[p, "is not empty"]);
    refused(&generate(p), 2, &[p, "is not empty"]);
    assert_eq!(fs::read(&victim).unwrap(), b"keep");
    assert_eq!(fs::read_dir(victim.parent().unwrap()).unwrap().count(), 1);
    // The folder itself a symlink.
    let link = s.0.join("link");
    std::os::unix::fs::symlink(victim.parent().unwrap(), &link).unwrap();
    refused(&capture(link.to_str().unwrap()), 2, &["symbolic link"]);
    // A new folder, and an empty one, are written.
    let new = s.0.join("a/new");
    let out = capture(new.to_str().unwrap());
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        fs::read(new.join("net/tcp")).unwrap(),
        fs::read(fixture("procroot/live/net/tcp")).unwrap()
    );
    let empty = s.0.join("empty");
    fs::create_dir(&empty).unwrap();
    let out = generate(empty.to_str().unwrap());
    assert!(
        out.status.success() && empty.join("tw.1").exists(),
        "{out:?}"
    );
}

/// A `tw serve` of a fixture capture on a loopback port the kernel picks, killed (by PID) when
/// dropped.
struct Served {
    child: std::process::Child,
    addr: String,
}

impl Served {
    fn start() -> Served {
        let mut child = Command::new(TW)
            .args(["--proc-root", "fixtures/procroot/narrow-range"])
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.split("http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_string());
                }
            }
        });
        let mut served = Served {
            child,
            addr: String::new(),
        };
        served.addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("tw serve did not say where it listens");
        served
    }

    fn connect(&self) -> std::net::TcpStream {
        let c = std::net::TcpStream::connect(&self.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one request and reads one response (its head, and a body of Content-Length bytes);
/// returns the status, or `None` when the server closed the connection.
fn exchange(c: &mut std::net::TcpStream, request: &str) -> Option<u16> {
    use std::io::Read;
    c.write_all(request.as_bytes()).ok()?;
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match c.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&got).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).ok()?;
    head.split(' ').nth(1)?.parse().ok()
}

/// Issue 12 item 2: 16 idle keep-alive connections locked every scrape out (503) for the 120 s
/// idle timeout. A scrape now gets through, closing the connection idle the longest.
#[test]
fn idle_keep_alive_connections_do_not_lock_scrapes_out() {
    let served = Served::start();
    let health = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut idle: Vec<_> = (0..16).map(|_| served.connect()).collect();
    for c in &mut idle {
        assert_eq!(exchange(c, health), Some(200));
    }
    // Fresh connections that never send a request hold slots too.
    let silent: Vec<_> = (0..4).map(|_| served.connect()).collect();
    for _ in 0..3 {
        let mut scrape = served.connect();
        let status = exchange(
            &mut scrape,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, Some(200), "a scrape behind 16 idle connections");
    }
    // The ones idle longest were closed for them; the server still serves the rest.
    assert_eq!(exchange(&mut idle[0], health), None);
    assert_eq!(exchange(idle.last_mut().unwrap(), health), Some(200));
    drop(silent);
}

/// Issue 12 item 3: `X-Prometheus-Scrape-Timeout-Seconds: 1e300` panicked the connection's
/// thread (`Duration::from_secs_f64`); it is no limit of Prometheus's, and `--timeout` applies.
#[test]
fn a_scrape_timeout_of_1e300_gets_its_scrape() {
    let served = Served::start();
    let mut c = served.connect();
    for huge in ["1e300", "inf"] {
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Prometheus-Scrape-Timeout-Seconds: {huge}\r\n\r\n"
        );
        assert_eq!(exchange(&mut c, &request), Some(200), "{huge}");
    }
}

/// Issue 12 item 8: `tw watch --interval 1e20` panicked (an overflow before from_secs_f64).
#[test]
fn watch_interval_of_1e20_is_refused_in_one_line() {
    for bad in ["1e20", "1e300", "1e20ms", "1e30m"] {
        refused(
            &tw(&["watch", "--interval", bad]),
            2,
            &["--interval", "between 100ms and 30s"],
        );
    }
    for bad in ["inf", "NaN", "0x10"] {
        refused(&tw(&["watch", "--interval", bad]), 2, &["--interval"]);
    }
}

/// Issue 12 item 10: an NLMSG_DONE carrying -ENOMEM was taken for the end of a whole dump; a
/// capture holding one is refused, as ss refuses it.
#[test]
fn a_capture_whose_dump_ended_in_enomem_is_refused() {
    let p = fixture("corrupt/netlink-done-enomem.dump");
    let p = p.to_str().unwrap();
    for cmd in ["ls", "count", "summary"] {
        refused(
            &tw(&["--from", p, cmd]),
            2,
            &[
                "netlink-done-enomem.dump",
                "incomplete",
                "Cannot allocate memory",
            ],
        );
    }
}

/// Issue 12 item 11: `tw ls --limit N --from DUMP` read the whole dump. Fed an endless sock_diag
/// stream through a FIFO, it now ends once it has its rows.
#[test]
fn ls_limit_stops_reading_an_endless_dump() {
    let s = Scratch::new("endless");
    let fifo = s.0.join("endless.dump");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // The IPv4 socket messages of a real capture, over and over, with no NLMSG_DONE.
    let dump = fs::read(fixture("netlink/tcp.dump")).unwrap();
    let mut sockets = Vec::new();
    let mut off = 0;
    while off + 16 <= dump.len() {
        let len = u32::from_ne_bytes(dump[off..off + 4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(dump[off + 4..off + 6].try_into().unwrap());
        if kind == 3 {
            break;
        }
        sockets.extend_from_slice(&dump[off..off + ((len + 3) & !3)]);
        off += (len + 3) & !3;
    }
    assert!(!sockets.is_empty());
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (w, path) = (written.clone(), fifo.clone());
    let writer = thread::spawn(move || {
        let mut f = fs::OpenOptions::new().write(true).open(&path).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        // Ends when tw closes its end (EPIPE: Rust ignores SIGPIPE), or at the deadline.
        while Instant::now() < deadline && f.write_all(&sockets).is_ok() {
            w.fetch_add(sockets.len(), Ordering::Relaxed);
        }
    });
    let out = tw(&[
        "--from",
        fifo.to_str().unwrap(),
        "ls",
        "--limit",
        "5",
        "--format",
        "plain",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1 + 5);
    writer.join().unwrap();
    let bytes = written.load(Ordering::Relaxed);
    assert!(
        bytes < 64 << 20,
        "{bytes} bytes written before tw stopped reading"
    );
}

/// Issue 12 item 11: clap's usage errors were 3 to 6 lines with a misleading `-- -t` tip.
#[test]
fn usage_errors_are_one_line() {
    refused(
        &tw(&["--no-such-flag"]),
        2,
        &["'--no-such-flag'", "tw --help"],
    );
    // One of ss's flags that means nothing for tw, refused in one line too.
    refused(&tw(&["-K"]), 2, &["-K"]);
    refused(
        &tw(&["doctor", "--bogus"]),
        3,
        &["'--bogus'", "tw doctor --help"],
    );
    refused(&tw(&["ls", "--limit", "x"]), 2, &["--limit"]);
}

/// Issue 12 item 11: `--netns /proc/1/ns/net` said "does not exist" when reading it was
/// refused (EACCES), as it is to any user but root.
#[test]
fn another_users_namespace_is_permission_denied_not_absent() {
    let mut cmd = Command::new(TW);
    cmd.args(["--netns", "/proc/1/ns/net", "count"]);
    if is_root() {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let out = run_bounded(&mut cmd);
    let err = refused(&out, 2, &["--netns /proc/1/ns/net", "permission denied"]);
    assert!(!err.contains("does not exist"), "{err}");
    refused(
        &tw(&["--netns", "/run/netns/tw-no-such-namespace", "count"]),
        2,
        &["does not exist"],
    );
}

/// Issue 12 item 11: `sport = :65536` was "unknown service".
#[test]
fn a_port_past_65535_is_out_of_range() {
    let p = fixture("proc");
    refused(
        &tw(&["--from", p.to_str().unwrap(), "ls", "sport = :65536"]),
        2,
        &["port out of range", "column 9"],
    );
}

/// Issue 12 item 4: 15,000 nested parentheses overflowed the parser's stack (SIGABRT), and
/// errors echoed the whole expression back.
#[test]
fn a_deeply_nested_filter_is_refused_in_a_short_line() {
    let p = fixture("proc");
    let deep = format!("{}sport = :80{}", "( ".repeat(15_000), " )".repeat(15_000));
    let nots = format!("{}sport = :80", "not ".repeat(30_000));
    for expr in [&deep, &nots] {
        let err = refused(
            &tw(&["--from", p.to_str().unwrap(), "count", expr]),
            2,
            &["nested deeper than 64", "column "],
        );
        assert!(err.len() < 400, "{} bytes", err.len());
    }
}

/// Issue 12 item 5: a FIFO blocked every open for ever (`--from`, `--proc-root`, `--netns`,
/// `plot`), and a sysctl that is /dev/zero or a 2 GB file was read whole. `--from <(pipe)` still
/// works.
#[test]
fn fifos_devices_and_huge_files_never_hang_or_fill_memory() {
    let s = Scratch::new("fifos");
    let fifo = s.0.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let f = fifo.to_str().unwrap();
    let started = Instant::now();
    refused(&tw(&["--from", f, "count"]), 2, &[f, "nothing to read"]);
    refused(&tw(&["plot", f, "-o", "/dev/null"]), 2, &[f]);
    refused(
        &tw(&["--netns", f, "count"]),
        2,
        &[f, "not a network namespace"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    // A --proc-root tree whose sysctls are a FIFO, /dev/zero and a sparse 2 GB file.
    let tree = s.0.join("root");
    copy_tree(&fixture("procroot/live"), &tree);
    let sysctl = tree.join("sys/net/ipv4/tcp_fin_timeout");
    let t = tree.to_str().unwrap();
    for what in ["fifo", "/dev/zero", "2 GB"] {
        fs::remove_file(&sysctl).unwrap();
        match what {
            "fifo" => assert!(Command::new("mkfifo")
                .arg(&sysctl)
                .status()
                .unwrap()
                .success()),
            "/dev/zero" => std::os::unix::fs::symlink("/dev/zero", &sysctl).unwrap(),
            _ => fs::File::create(&sysctl).unwrap().set_len(2 << 30).unwrap(),
        }
        let started = Instant::now();
        let want = if what == "2 GB" {
            "larger than"
        } else {
            "not a regular file"
        };
        refused(
            &tw(&["--proc-root", t, "doctor"]),
            3,
            &["tcp_fin_timeout", want],
        );
        // capture copies through the same bound.
        let cap = s.0.join(format!("cap-{}", what.replace(['/', ' '], "")));
        refused(
            &tw(&["--proc-root", t, "capture", cap.to_str().unwrap()]),
            2,
            &["tcp_fin_timeout", want],
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{what}");
    }
    // On purpose: a pipe with a writer is read as it comes.
    let dump = fixture("netlink/tcp.dump");
    let out = run_bounded(Command::new("bash").args([
        "-c",
        &format!("{TW} --from <(cat {}) count", dump.display()),
    ]));
    assert!(out.status.success(), "{out:?}");
    let direct = tw(&["--from", dump.to_str().unwrap(), "count"]);
    assert_eq!(out.stdout, direct.stdout);
}

/// Issue 12 item 9: `tw ports --top 1` said "1 outbound destinations" when there were 3.
#[test]
fn ports_top_counts_destinations_before_cutting() {
    let dump = fixture("netlink/tcp.dump");
    let d = dump.to_str().unwrap();
    let title = |extra: &[&str]| {
        let out = tw(&[&["--from", d, "ports", "--format", "plain"][..], extra].concat());
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap()
            .to_string()
    };
    let all = title(&[]);
    let n: usize = all.split(' ').next().unwrap().parse().unwrap();
    assert!(n >= 2, "{all}");
    let top = title(&["--top", "1"]);
    assert!(
        top.starts_with(&format!("the busiest 1 of {n} outbound destinations")),
        "{top}"
    );
}

/// Issue 12 item 7: a process named with ESC, BEL and a newline (its comm comes from the name it
/// was executed by; prctl(PR_SET_NAME) does the same) reached root's terminal raw through
/// `tw ls -p` and split rows. Table and plain output now escape it.
#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn terminal_escapes_in_process_names_are_escaped() {
    let ns = Netns::new("escape");
    let s = Scratch::new("escape");
    let name = "ev\x1b]0;p\x07\nl";
    let evil = s.0.join(name);
    std::os::unix::fs::symlink("/bin/bash", &evil).unwrap();
    let listener = ns.run(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let port = listener.local_addr().unwrap().port();
    let mut child = ns
        .cmd(evil.to_str().unwrap())
        .args([
            "-c",
            &format!("exec 3<>/dev/tcp/127.0.0.1/{port}; read -t 30 -u 3"),
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _kill = Kill(&mut child);
    let (_conn, _) = listener.accept().unwrap();
    let comm = format!("{}/", name);
    for format in ["table", "plain"] {
        let out = tw(&["--netns", ns.name(), "ls", "-p", "--format", format]);
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains(&comm), "{format}: raw name in {text:?}");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{format}: control characters in {text:?}"
        );
        assert!(text.contains("ev\\x1b]0;p\\x07\\nl/"), "{format}: {text}");
        // Every row whole: one line per socket (ss -tan: header, listener, both ends).
        let rows = text.lines().filter(|l| l.contains("127.0.0.1")).count();
        assert_eq!(rows, 3, "{format}: {text}");
    }
    // JSON keeps the name as it is, escaped by JSON itself.
    let out = tw(&["--netns", ns.name(), "ls", "-p", "--format", "json"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ev\\u001b]0;p\\u0007\\nl"), "{text}");
}

/// Issue 12 item 11: without root, `--all-netns` gave up at the first named namespace it could
/// not enter; it now skips it with a note and reads the rest.
#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn all_netns_without_root_skips_what_it_cannot_enter() {
    let ns = Netns::new("skip");
    let out = run_bounded(
        Command::new(TW)
            .args(["--all-netns", "count"])
            .current_dir("/")
            .uid(NOBODY)
            .gid(NOBODY),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("tw: --all-netns: ")
            && l.contains(ns.name())
            && l.contains("skipped: permission denied")),
        "{err}"
    );
    // The answer is still a count.
    let count = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(count.parse::<u64>().is_ok(), "{count:?}");
}
