//! Packaging: the man pages and completions `tw generate` makes from the
//! clap definition, the hardened systemd unit, and the .deb that
//! packaging/build-deb builds with cargo-deb (`dpkg -c` must list the
//! binary, man pages, completions and unit). The .deb test builds a release
//! binary in its own target folder (about 2 minutes on 2 cores).

mod common;
#[path = "support/head.rs"]
mod head;
#[path = "support/scratch.rs"]
mod scratch;

use scratch::Scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use clap::CommandFactory;

const TW: &str = env!("CARGO_BIN_EXE_tw");

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs a build with a generous time limit; past it, ends its whole process
/// group (the script, cargo and rustc) by its id.
fn build_bounded(mut cmd: Command) -> Output {
    use std::os::unix::process::CommandExt;
    const LIMIT: Duration = Duration::from_secs(20 * 60);
    let what = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let pgid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(out) => out.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
        Err(_) => {
            // SAFETY: plain syscall on the process group this test started.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            panic!("{what} did not finish within {LIMIT:?}");
        }
    }
}

/// The commands a user sees: every visible subcommand of the clap definition.
fn visible_commands() -> Vec<String> {
    tw::cli::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect()
}

/// `man -l` of roff text, at 100 columns, failing on any groff warning.
fn rendered(roff: &[u8], what: &str) -> String {
    let dir = Scratch::new("man");
    let page = dir.0.join("page.1");
    std::fs::write(&page, roff).unwrap();
    let o = common::run_bounded(
        Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "100"),
    );
    assert!(
        o.stderr.is_empty(),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    ok(o, what)
}

#[test]
fn man_pages_carry_exit_status_and_keep_the_examples_aligned() {
    let page = |args: &[&str]| -> Vec<u8> {
        let o = common::run_bounded(Command::new(TW).arg("man").args(args));
        assert!(o.status.success(), "tw man {args:?}: {o:?}");
        o.stdout
    };
    let top = rendered(&page(&[]), "tw man");
    // Each example's description starts in the same column, as in --help.
    let examples: Vec<&str> = top
        .lines()
        .skip_while(|l| l.trim() != "EXAMPLES")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert!(examples.len() >= 10, "{top}");
    let col = |l: &str, word: &str| l.find(word).unwrap();
    let at = col(examples[0], "summary:");
    assert_eq!(
        col(
            examples.iter().find(|l| l.contains("tw ports")).unwrap(),
            "ephemeral"
        ),
        at
    );
    assert_eq!(
        col(
            examples.iter().find(|l| l.contains("tw doctor")).unwrap(),
            "findings"
        ),
        at
    );
    assert!(
        top.contains("EXIT STATUS") && top.contains("3  doctor could not run"),
        "{top}"
    );
    for c in visible_commands() {
        let text = rendered(&page(&[&c]), &c);
        assert!(text.contains("EXIT STATUS"), "tw-{c}(1): {text}");
    }
    let doctor = rendered(&page(&["doctor"]), "doctor");
    assert!(doctor.contains("2  a critical finding"), "{doctor}");
    let count = rendered(&page(&["count"]), "count");
    assert!(
        count.contains("1  the count is above --fail-above"),
        "{count}"
    );
    // What tw generate writes for the .deb is what tw man prints.
    let dir = Scratch::new("man-gen");
    ok(
        common::run_bounded(Command::new(TW).args(["generate", dir.0.to_str().unwrap()])),
        "tw generate",
    );
    assert_eq!(
        std::fs::read(dir.0.join("tw-doctor.1")).unwrap(),
        page(&["doctor"])
    );
    let o = common::run_bounded(Command::new(TW).args(["man", "nope"]));
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("tw: man: no command `nope`"));
}

#[test]
fn completions_and_man_into_a_closed_pipe_end_quietly() {
    // A regression: clap_complete panicked on the broken pipe.
    for args in [
        &["completions", "powershell"][..],
        &["completions", "bash"],
        &["man"],
    ] {
        let (_, status, err) = head::head(Command::new(TW).args(args), 8);
        assert!(status.success(), "{args:?}: {status:?} {err}");
        assert_eq!(err, "", "{args:?}");
    }
}

#[test]
fn completions_bash_loads_in_bash_and_completes_commands() {
    let o = common::run_bounded(Command::new(TW).args(["completions", "bash"]));
    let script = ok(o, "tw completions bash");
    let dir = Scratch::new("compl");
    let file = dir.0.join("tw.bash");
    std::fs::write(&file, &script).unwrap();
    // Source it, check `complete` registered it, and ask it for "tw sch".
    let probe = format!(
        "set -e; source {}; complete -p tw; \
         COMP_WORDS=(tw sch); COMP_CWORD=1; COMP_LINE='tw sch'; COMP_POINT=6; \
         _tw tw sch tw; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = ok(
        common::run_bounded(Command::new("bash").args(["--norc", "-c", &probe])),
        "bash",
    );
    assert!(out.lines().next().unwrap().ends_with("-F _tw tw"), "{out}");
    assert_eq!(out.lines().skip(1).collect::<Vec<_>>(), ["schema"], "{out}");
    // The other shells' scripts are there too.
    for (shell, start) in [("zsh", "#compdef tw"), ("fish", "# Print an optspec")] {
        let o = common::run_bounded(Command::new(TW).args(["completions", shell]));
        let text = ok(o, shell);
        assert!(
            text.starts_with(start) || text.contains("complete -c tw"),
            "{shell}"
        );
    }
}

#[test]
fn generate_writes_a_man_page_per_command_and_three_completions() {
    let dir = Scratch::new("gen");
    let out = ok(
        common::run_bounded(Command::new(TW).args(["generate", dir.0.to_str().unwrap()])),
        "tw generate",
    );
    let commands = visible_commands();
    assert!(commands.iter().any(|c| c == "serve") && commands.iter().any(|c| c == "metrics"));
    let mut want: Vec<String> = vec!["tw.1".into()];
    want.extend(commands.iter().map(|c| format!("tw-{c}.1")));
    want.extend(["tw.bash", "_tw", "tw.fish"].map(String::from));
    let schemas = [
        "ls",
        "ls-internals",
        "ls-unix",
        "count",
        "count-stats",
        "summary",
        "ports",
        "doctor",
        "explain",
        "watch",
        "conntrack",
        "trace",
    ];
    want.extend(schemas.map(|c| format!("tw-{c}.schema.json")));
    let listed: Vec<String> = out
        .lines()
        .map(|l| {
            Path::new(l)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(listed, want);

    let page = std::fs::read_to_string(dir.0.join("tw.1")).unwrap();
    assert!(page.contains(".TH tw 1"), "{page}");
    for c in &commands {
        assert!(
            page.contains(&format!("tw\\-{c}(1)")),
            "tw.1 names tw-{c}(1)"
        );
    }
    let serve = std::fs::read_to_string(dir.0.join("tw-serve.1")).unwrap();
    assert!(serve.contains("\\-\\-listen") && serve.contains("127.0.0.1:9838"));
    // man renders every page without a groff warning.
    if Command::new("man").arg("--version").output().is_ok() {
        for name in want.iter().filter(|n| n.ends_with(".1")) {
            let o = common::run_bounded(
                Command::new("man")
                    .args(["--warnings", "-l"])
                    .arg(dir.0.join(name))
                    .env("MANWIDTH", "80"),
            );
            let rendered = ok(o.clone(), name);
            assert!(
                o.stderr.is_empty(),
                "{name}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(rendered.contains("NAME"), "{name}");
        }
    }
    let bash = dir.0.join("tw.bash");
    ok(
        common::run_bounded(Command::new("bash").arg("-n").arg(&bash)),
        "bash -n",
    );
    let bash = std::fs::read_to_string(bash).unwrap();
    let zsh = std::fs::read_to_string(dir.0.join("_tw")).unwrap();
    let fish = std::fs::read_to_string(dir.0.join("tw.fish")).unwrap();
    assert!(zsh.starts_with("#compdef tw"), "{}", &zsh[..40]);
    for c in &commands {
        assert!(
            bash.contains(c) && zsh.contains(c) && fish.contains(c),
            "{c}"
        );
    }

    // The schemas are what `tw schema` prints.
    for c in schemas {
        let shipped = std::fs::read(dir.0.join(format!("tw-{c}.schema.json"))).unwrap();
        let printed = ok(
            common::run_bounded(Command::new(TW).args(["schema", c])),
            "tw schema",
        );
        assert_eq!(String::from_utf8(shipped).unwrap(), printed, "{c}");
    }

    // An unwritable folder is one clear line and exit 2.
    let o = common::run_bounded(Command::new(TW).args(["generate", "/proc/tw-nope"]));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("tw: creating /proc/tw-nope"), "{err}");
}

#[test]
fn the_unit_is_hardened_and_parses_cleanly() {
    let unit = manifest_dir().join("packaging/tw-serve.service");
    // Exposure on systemd's 0-100 scale ("1.1 OK" prints as 11); 15 leaves
    // room only for what tw needs: the host's network and netlink.
    let o = common::run_bounded(
        Command::new("systemd-analyze")
            .args(["security", "--offline=true", "--threshold=15"])
            .arg(&unit),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "systemd-analyze security (from the systemd package): {}{stderr}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!stderr.contains("Unknown"), "{stderr}");
    let text = String::from_utf8_lossy(&o.stdout);
    for granted in [
        "CapabilityBoundingSet=~CAP_NET_ADMIN",
        "CapabilityBoundingSet=~CAP_SYS_ADMIN",
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(granted))
            .unwrap_or_else(|| panic!("{granted} not assessed: {text}"));
        assert!(line.starts_with('✓'), "{line}");
    }
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn the_deb_holds_binary_man_pages_completions_unit_and_defaults() {
    let probe = Command::new("cargo").args(["deb", "--version"]).output();
    assert!(
        matches!(&probe, Ok(o) if o.status.success()),
        "needs cargo-deb: `cargo install --locked cargo-deb` (.ci/setup.d/55-cargo-deb.sh): {probe:?}"
    );
    // Its own target folder: this runs inside `cargo test`, which holds the
    // lock on the main one.
    let target = manifest_dir().join("target/packaging-test");
    let mut build = Command::new(manifest_dir().join("packaging/build-deb"));
    build.env("CARGO_TARGET_DIR", &target);
    let deb = ok(build_bounded(build), "packaging/build-deb")
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    assert!(deb.ends_with(".deb") && Path::new(&deb).exists(), "{deb}");

    let listing = ok(
        common::run_bounded(Command::new("dpkg").args(["-c", &deb])),
        "dpkg -c",
    );
    let paths: Vec<&str> = listing
        .lines()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    let mut want = vec![
        "./usr/bin/tw".to_string(),
        "./usr/share/man/man1/tw.1.gz".into(),
        "./usr/share/bash-completion/completions/tw".into(),
        "./usr/share/zsh/vendor-completions/_tw".into(),
        "./usr/share/fish/vendor_completions.d/tw.fish".into(),
        "./usr/lib/systemd/system/tw-serve.service".into(),
        "./etc/default/tw-serve".into(),
        "./usr/share/doc/tw/examples/prometheus/tw-alerts.yml".into(),
        "./usr/share/doc/tw/examples/prometheus/tw-rules.yml".into(),
        "./usr/share/doc/tw/examples/grafana/tw-dashboard.json".into(),
        "./usr/share/tw/schema/tw-ls.schema.json".into(),
        "./usr/share/tw/schema/tw-watch.schema.json".into(),
    ];
    want.extend(
        visible_commands()
            .iter()
            .map(|c| format!("./usr/share/man/man1/tw-{c}.1.gz")),
    );
    for p in &want {
        assert!(
            paths.contains(&p.as_str()),
            "{p} missing from the .deb:\n{listing}"
        );
    }
    let exe = listing
        .lines()
        .find(|l| l.ends_with("./usr/bin/tw"))
        .unwrap();
    assert!(exe.starts_with("-rwxr-xr-x 0/0 "), "{exe}");

    // The control side: /etc/default/tw-serve is a conffile, and the
    // maintainer scripts reload systemd without enabling the unit.
    let ctl = Scratch::new("ctl");
    ok(
        common::run_bounded(Command::new("dpkg-deb").args(["-e", &deb]).arg(&ctl.0)),
        "dpkg-deb -e",
    );
    let conffiles = std::fs::read_to_string(ctl.0.join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/default/tw-serve");
    let postinst = std::fs::read_to_string(ctl.0.join("postinst")).unwrap();
    assert!(postinst.contains("daemon-reload") && postinst.contains("tw-serve.service"));
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");

    // What it unpacks runs, and is what the tree holds.
    let root = Scratch::new("root");
    ok(
        common::run_bounded(Command::new("dpkg-deb").args(["-x", &deb]).arg(&root.0)),
        "dpkg-deb -x",
    );
    let version = ok(
        common::run_bounded(Command::new(root.0.join("usr/bin/tw")).arg("--version")),
        "tw --version",
    );
    assert_eq!(version.trim(), format!("tw {}", env!("CARGO_PKG_VERSION")));
    for (packaged, source) in [
        (
            "usr/lib/systemd/system/tw-serve.service",
            "packaging/tw-serve.service",
        ),
        ("etc/default/tw-serve", "packaging/tw-serve.default"),
    ] {
        assert_eq!(
            std::fs::read(root.0.join(packaged)).unwrap(),
            std::fs::read(manifest_dir().join(source)).unwrap(),
            "{packaged}"
        );
    }

    // README's other way: `cargo install --path .` (into a scratch root; the release build
    // above is reused, so this only installs).
    let installed = Scratch::new("install");
    let mut install = Command::new("cargo");
    install
        .args(["install", "--locked", "--path"])
        .arg(manifest_dir())
        .arg("--root")
        .arg(&installed.0)
        .env("CARGO_TARGET_DIR", &target);
    ok(build_bounded(install), "cargo install --path .");
    let capture = manifest_dir().join("fixtures/netlink/tcp.dump");
    let count = |tw: &Path| {
        ok(
            common::run_bounded(Command::new(tw).arg("--from").arg(&capture).arg("count")),
            "tw count",
        )
    };
    let from_install = count(&installed.0.join("bin/tw"));
    assert!(from_install.trim().parse::<u64>().unwrap() > 0);
    assert_eq!(from_install, count(Path::new(env!("CARGO_BIN_EXE_tw"))));
}
