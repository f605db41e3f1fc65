//! ss's flags on the command line, over captured fixtures: what they select,
//! `-H`, and the one-line refusals and usage errors. No root needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

fn tw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tw"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = tw(args);
    assert!(
        out.status.success(),
        "tw {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const SS1: &str = "iproute2/ss1.dump";

/// The states column of a plain listing, header dropped.
fn states(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn tan_lists_every_state_tn_the_connected_ones_ltn_the_listeners() {
    let d = fixture(SS1);
    let d = d.to_str().unwrap();
    let all = states(&ok(&["--from", d, "-tan"]));
    assert_eq!(all.len(), 7, "{all:?}");
    let conn = states(&ok(&["--from", d, "-tn"]));
    assert_eq!(conn.len(), 5);
    assert!(conn.iter().all(|s| s == "ESTABLISHED"), "{conn:?}");
    for args in [&["-ltn"][..], &["ls", "-lntp"], &["-l"], &["ls", "-l"]] {
        let args = [&["--from", d][..], args].concat();
        // -p needs the live /proc: refused with a capture, as before.
        if args.contains(&"-lntp") {
            let out = tw(&args);
            assert_eq!(out.status.code(), Some(2));
            continue;
        }
        let l = states(&ok(&args));
        assert_eq!(l, ["LISTEN", "LISTEN"], "{args:?}");
    }
    // `tw ls` alone keeps tw's default: every state.
    assert_eq!(states(&ok(&["--from", d, "ls"])).len(), 7);
    // A state word wins over ss's default, as in ss.
    let est = states(&ok(&["--from", d, "-tn", "state", "listening"]));
    assert_eq!(est, ["LISTEN", "LISTEN"]);
    assert_eq!(ok(&["--from", d, "count", "-t"]), "5\n");
    assert_eq!(ok(&["--from", d, "count", "-ta"]), "7\n");
}

#[test]
fn no_header_drops_only_the_header() {
    let d = fixture(SS1);
    let d = d.to_str().unwrap();
    let with = ok(&["--from", d, "-tan"]);
    let without = ok(&["--from", d, "-tanH"]);
    assert!(with.starts_with("STATE"));
    assert_eq!(without, with.split_once('\n').unwrap().1);
    assert_eq!(ok(&["--from", d, "ls", "--no-header"]), without);
    // Nothing to list: nothing at all.
    assert_eq!(ok(&["--from", d, "-H", "ls", "state", "time-wait"]), "");
}

#[test]
fn s_is_the_summary() {
    let d = fixture(SS1);
    let d = d.to_str().unwrap();
    assert_eq!(ok(&["--from", d, "-s"]), ok(&["--from", d]));
}

/// Every refusal and usage error: one `tw:` line naming the flag, exit 2.
#[test]
fn ss_flags_tw_does_not_take_are_refused_in_one_line_naming_them() {
    for (args, says) in [
        (&["-tanr"][..], "-r: "),
        (&["-K", "dport", "=", ":80"], "-K: "),
        (&["-D", "/tmp/x"], "-D: "),
        (&["ls", "-F", "/tmp/x"], "-F: "),
        (&["-E"], "-E: "),
        (&["-tZ"], "-Z: "),
        (&["-w"], "-w: "),
        (&["-S"], "-S: "),
        (&["-d"], "-d: "),
        (&["-0"], "-0: "),
        (&["-M"], "-M: "),
        (&["-O"], "-O: "),
        (&["-f", "link"], "-f link: "),
        (&["-A", "raw"], "-A raw: "),
        (&["count", "-i"], "-i is ss's display flag"),
        (&["count", "-m"], "use `tw ls -m`"),
        (&["ports", "-o"], "-o is ss's display flag"),
        (&["ls", "-s"], "-s is ss's summary"),
        (&["lss"], "`lss` is not a command"),
        (&["-tanq"], "'-q'"),
    ] {
        let out = tw(args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("tw: "), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn doctor_keeps_its_exit_code_for_a_refused_ss_flag() {
    let out = tw(&["doctor", "-r"]);
    assert_eq!(out.status.code(), Some(3));
}
