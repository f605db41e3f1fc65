//! tw on a terminal: a narrow one gets a table with fewer columns and every
//! address whole, one reporting 0x0 columns gets plain rows, and --color /
//! NO_COLOR decide colour. Runs tw on a pseudo-terminal of a set size with
//! script(1). No root needed.

use std::path::Path;
use std::process::Command;

fn fixture() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/proc")
        .to_str()
        .unwrap()
        .to_string()
}

/// tw ARGS on a terminal of `cols` columns (0: one that reports 0x0), its
/// output as the terminal got it, with `\r\n` made `\n`.
fn on_terminal(cols: u16, env: &[(&str, &str)], args: &[&str]) -> String {
    let tw = env!("CARGO_BIN_EXE_tw");
    let line = format!("stty cols {cols} rows 40; exec {tw} {}", args.join(" "));
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .expect("script(1), from util-linux, is installed");
    assert!(out.status.success(), "{line}: {out:?}");
    String::from_utf8(out.stdout).unwrap().replace("\r\n", "\n")
}

fn piped(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tw"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// The text without ANSI colour sequences.
fn visible(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn a_terminal_of_unknown_width_gets_plain_rows() {
    let f = fixture();
    let plain = piped(&["--from", &f, "ls"]);
    let tty = on_terminal(0, &[], &["--from", &f, "ls"]);
    assert_eq!(tty, plain);
    assert!(!tty.contains('│'));
}

#[test]
fn a_narrow_terminal_drops_columns_and_keeps_every_address_whole() {
    let f = fixture();
    let addresses: Vec<String> = piped(&["--from", &f, "ls", "-4"])
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(2)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(addresses.len() > 10);
    for cols in [60u16, 80] {
        let text = visible(&on_terminal(cols, &[], &["--from", &f, "ls", "-4"]));
        assert!(text.contains("│ STATE"), "{cols}: not a table:\n{text}");
        for l in text.lines().filter(|l| l.starts_with(['│', '┌', '╞', '└'])) {
            assert!(l.chars().count() <= usize::from(cols), "{cols}: {l}");
        }
        // Each row has its addresses whole, on one line.
        for a in &addresses {
            assert!(
                text.contains(&format!(" {a} ")),
                "{cols}: {a} broken:\n{text}"
            );
        }
        assert!(
            !text.contains("INODE"),
            "{cols}: the least useful column stays"
        );
    }
    // A wide terminal shows them all.
    let wide = visible(&on_terminal(200, &[], &["--from", &f, "ls", "-4"]));
    assert!(wide.contains("INODE") && wide.contains("TIMER"), "{wide}");
}

#[test]
fn colour_follows_the_flag_then_no_color() {
    let f = fixture();
    let ls = ["--from", &f, "ls", "-4"];
    let has_esc = |t: &str| t.contains('\x1b');
    assert!(has_esc(&on_terminal(200, &[], &ls)));
    assert!(!has_esc(&on_terminal(200, &[("NO_COLOR", "1")], &ls)));
    assert!(!has_esc(&on_terminal(
        200,
        &[],
        &[&ls[..], &["--color", "never"]].concat()
    )));
    let always = [&ls[..], &["--color", "always"]].concat();
    assert!(has_esc(&on_terminal(200, &[("NO_COLOR", "1")], &always)));
    // Piped, a table is coloured only when asked.
    assert!(has_esc(&piped(
        &[&always[..], &["--format", "table"]].concat()
    )));
    assert!(!has_esc(&piped(
        &[&ls[..], &["--format", "table"]].concat()
    )));
}

#[test]
fn plain_rows_are_one_field_per_column() {
    let f = fixture();
    let text = piped(&["--from", &f, "ls"]);
    let mut lines = text.lines();
    let n = lines.next().unwrap().split_whitespace().count();
    for l in lines {
        assert_eq!(l.split_whitespace().count(), n, "{l}");
    }
    assert!(text.contains("keepalive:"), "{text}");
}
