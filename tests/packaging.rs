//! Packaging: the man pages and completions `tw generate` makes from the
//! clap definition, the hardened systemd unit, and the .deb that
//! packaging/build-deb builds with cargo-deb (`dpkg -c` must list the
//! binary, man pages, completions and unit). The .deb test builds a release
//! binary in its own target folder (about 2 minutes on 2 cores).

mod common;
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
        for name in &want[..want.len() - 3] {
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
