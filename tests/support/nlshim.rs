//! A libc shim for the tw binary (LD_PRELOAD), for kernel behaviour a test cannot make happen on
//! demand: it wraps recv() on netlink sockets only and
//! - with `TW_SHIM_INTR=N`, sets NLM_F_DUMP_INTR on the first N NLMSG_DONE messages received, as
//!   netlink_dump's nl_dump_check_consistent does when a dump's sequence moved under it (the
//!   sock_diag TCP dump never does: it resumes by hash bucket and position, with no `cb->seq`);
//! - with `TW_SHIM_ENOBUFS=N`, makes the Nth netlink recv() fail with ENOBUFS, as a receive
//!   queue overrun does (netlink_overrun).
//!
//! Everything else passes through untouched. With `TW_SHIM_LOG=FILE` it appends one line per
//! NLMSG_DONE (`done intr=0|1`) and per injected error, so a test can count dump attempts.
//! Built with the machine's C compiler (gcc is on every machine, see the machine notes).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const SOURCE: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>

static ssize_t (*real_recv)(int, void *, size_t, int);
static long intr_left, enobufs_at, recvs;

static void init(void) {
    real_recv = (ssize_t (*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
    const char *s = getenv("TW_SHIM_INTR");
    intr_left = s ? atol(s) : 0;
    s = getenv("TW_SHIM_ENOBUFS");
    enobufs_at = s ? atol(s) : 0;
}

static void note(const char *line) {
    const char *path = getenv("TW_SHIM_LOG");
    if (!path) return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
    ssize_t w = write(fd, line, strlen(line));
    (void)w;
    close(fd);
}

/* sock_diag only: the dumps under test. Other netlink readers tw has (the
   conntrack table, NETLINK_NETFILTER) are left alone. */
static int is_sock_diag(int fd) {
    int domain = 0, proto = 0;
    socklen_t len = sizeof domain, plen = sizeof proto;
    return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_NETLINK
        && getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) == 0
        && proto == NETLINK_SOCK_DIAG;
}

ssize_t recv(int fd, void *buf, size_t len, int flags) {
    if (!real_recv) init();
    if (!is_sock_diag(fd)) return real_recv(fd, buf, len, flags);
    if (enobufs_at > 0 && ++recvs == enobufs_at) {
        note("enobufs\n");
        errno = ENOBUFS;
        return -1;
    }
    ssize_t n = real_recv(fd, buf, len, flags);
    for (size_t off = 0; n > 0 && off + NLMSG_HDRLEN <= (size_t)n;) {
        struct nlmsghdr *h = (struct nlmsghdr *)((char *)buf + off);
        if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > (size_t)n - off) break;
        if (h->nlmsg_type == NLMSG_DONE) {
            if (intr_left > 0) {
                intr_left--;
                h->nlmsg_flags |= NLM_F_DUMP_INTR;
                note("done intr=1\n");
            } else {
                note("done intr=0\n");
            }
        }
        off += NLMSG_ALIGN(h->nlmsg_len);
    }
    return n;
}
"#;

/// The shim, compiled once per test binary.
pub fn path() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            let src = dir.join(format!("tw-nlshim-{}.c", std::process::id()));
            let tmp = dir.join(format!("tw-nlshim-{}.so", std::process::id()));
            // Renamed into place, so test binaries running at once never load a half-written file.
            let so = dir.join("tw-nlshim.so");
            std::fs::write(&src, SOURCE).unwrap();
            let out = Command::new("cc")
                .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
                .arg(&tmp)
                .arg(&src)
                .arg("-ldl")
                .output()
                .unwrap_or_else(|e| panic!("running cc to build the netlink shim: {e}"));
            assert!(
                out.status.success(),
                "cc failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = std::fs::remove_file(&src);
            std::fs::rename(&tmp, &so).unwrap();
            so
        })
        .clone()
}
