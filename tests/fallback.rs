//! `--source auto` falls back to /proc when sock_diag is refused. The refusal
//! is real: a seccomp filter makes socket(AF_NETLINK, ...) fail with EACCES in
//! the tw process, as in a locked-down container. Needs root (a namespace).

mod common;

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use common::{Net, Netns, Population};

/// A classic-BPF seccomp program: socket(AF_NETLINK, ...) -> EACCES, all else
/// allowed. The test runs natively, so the syscall number needs no arch check.
fn deny_netlink() -> std::io::Result<()> {
    const fn stmt(code: u32, k: u32) -> libc::sock_filter {
        libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        }
    }
    const fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt,
            jf,
            k,
        }
    }
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let filter = [
        // seccomp_data.nr
        stmt(ld, 0),
        jeq(libc::SYS_socket as u32, 0, 3),
        // seccomp_data.args[0], low half (little-endian): the domain.
        stmt(ld, 16),
        jeq(libc::AF_NETLINK as u32, 0, 1),
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EACCES as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with a valid program that outlives the call; runs in the
    // forked child before exec, where only async-signal-safe calls are made.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Runs tw inside `ns`, with netlink denied when `deny` is set.
fn tw_in(ns: &Netns, deny: bool, args: &[&str]) -> Output {
    ns.run(|| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tw"));
        c.args(args);
        if deny {
            // SAFETY: deny_netlink only calls prctl.
            unsafe {
                c.pre_exec(deny_netlink);
            }
        }
        c.output().expect("running tw")
    })
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn auto_falls_back_to_proc_with_one_line_on_stderr() {
    let ns = Netns::new("fallback");
    let pop = Population::builder()
        .listeners(Net::V4, 1)
        .listeners(Net::V6, 1)
        .established(Net::V4, 2)
        .time_wait(Net::V4, 20)
        .time_wait(Net::V6, 5)
        .build(&ns);
    let by_state = ["count", "--by", "state"];

    let denied = tw_in(&ns, true, &by_state);
    let stderr = String::from_utf8(denied.stderr).unwrap();
    assert!(denied.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("tw: sock_diag netlink is not available: Permission denied")
            && stderr.contains("reading /proc/net/tcp instead"),
        "{stderr}"
    );

    let proc = tw_in(&ns, false, &["--source", "proc", "count", "--by", "state"]);
    let netlink = tw_in(
        &ns,
        false,
        &["--source", "netlink", "count", "--by", "state"],
    );
    assert_eq!(denied.stdout, proc.stdout);
    assert_eq!(denied.stdout, netlink.stdout);
    let lines = |b: &[u8]| -> BTreeSet<String> {
        String::from_utf8_lossy(b)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let want: BTreeSet<String> = pop
        .counts()
        .iter()
        .map(|(s, n)| format!("{s}\t{n}"))
        .collect();
    assert_eq!(lines(&denied.stdout), want);
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn netlink_only_fails_clearly_when_refused() {
    let ns = Netns::new("refused");
    let out = tw_in(&ns, true, &["--source", "netlink", "count"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("use --source proc"), "{stderr}");
}
