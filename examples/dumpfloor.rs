//! The reference floor for benchmarks (not part of tw): sends exactly the
//! sock_diag requests tw sends for the same `--state` and family flags (built
//! by tw's own request functions, with tw's choice between one walk for both
//! families and a request per family), and only counts what comes back. What
//! this costs is what the kernel's dump costs; tw's figures are ratios to it.
//!
//! ```text
//! dumpfloor --state time-wait      # as `tw count --state time-wait` asks
//! dumpfloor                        # every state, as `tw`, `tw ls`, `count --by`
//! ```
//!
//! It prints the number of socket messages received (listeners included,
//! since tw asks for them too), or fails on a kernel error.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;

use clap::Parser;
use tw::model::abi::{
    NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_DUMP_INTR, SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK,
};
use tw::model::state::parse_states;
use tw::model::Family;
use tw::query::Filter;
use tw::source::netlink::{one_walk, request, request_one_walk};
use tw::source::read_states;

/// Larger than the kernel's largest dump skb (32 KiB, netlink_recvmsg).
const RECV_BUF: usize = 64 * 1024;

#[derive(Debug, Parser)]
#[command(about = "Counts the sock_diag messages of the request tw sends")]
struct Args {
    /// States, as tw's --state takes them. Default: every state.
    #[arg(long)]
    state: Vec<String>,
    /// IPv4 only.
    #[arg(short = '4')]
    ipv4: bool,
    /// IPv6 only.
    #[arg(short = '6')]
    ipv6: bool,
    /// A SOCK_DIAG_BY_FAMILY request per family even for both, as tw did
    /// before it walked the hash once: what the one walk saves.
    #[arg(long)]
    per_family: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let states = match parse_states(&args.state) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dumpfloor: --state: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = Filter {
        states,
        family: match (args.ipv4, args.ipv6) {
            (true, false) => Some(Family::Inet),
            (false, true) => Some(Family::Inet6),
            _ => None,
        },
        ..Filter::default()
    };
    match count(filter.families(), read_states(&filter), args.per_family) {
        Ok(n) => {
            println!("{n}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dumpfloor: {e}");
            ExitCode::from(2)
        }
    }
}

/// The dump tw makes, counting socket messages.
fn count(families: &[Family], states: tw::model::StateSet, per_family: bool) -> io::Result<u64> {
    // SAFETY: socket() returns a new fd or -1; OwnedFd takes it over.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut buf = vec![0u8; RECV_BUF];
    let mut n = 0u64;
    // What tw's Dumper sends without a kernel-side filter: one walk for
    // both families, else a request per family.
    let requests: Vec<Vec<u8>> = if one_walk(families) && !per_family {
        vec![request_one_walk(states, 1)]
    } else {
        (1..)
            .zip(families)
            .map(|(seq, &family)| request(family, states, seq))
            .collect()
    };
    for req in requests {
        // SAFETY: a zeroed sockaddr_nl is the kernel's address (pid 0).
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        let sent = unsafe {
            libc::sendto(
                sock.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        'recv: loop {
            // SAFETY: recv writes at most buf.len() bytes into buf.
            let got =
                unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if got < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let got = got as usize;
            if got == 0 {
                return Err(io::Error::other(
                    "the kernel ended the dump without NLMSG_DONE",
                ));
            }
            let mut off = 0;
            while off + NLMSG_HDRLEN <= got {
                let h = &buf[off..];
                let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
                let kind = u16::from_ne_bytes([h[4], h[5]]);
                let flags = u16::from_ne_bytes([h[6], h[7]]);
                if len < NLMSG_HDRLEN || off + len > got {
                    return Err(io::Error::other("malformed netlink message"));
                }
                if flags & NLM_F_DUMP_INTR != 0 {
                    eprintln!("dumpfloor: the dump was interrupted (NLM_F_DUMP_INTR)");
                }
                match kind {
                    SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => n += 1,
                    NLMSG_DONE => break 'recv,
                    NLMSG_ERROR => {
                        if len < NLMSG_HDRLEN + 4 {
                            return Err(io::Error::other("truncated NLMSG_ERROR"));
                        }
                        let e = i32::from_ne_bytes([h[16], h[17], h[18], h[19]]);
                        if e != 0 {
                            return Err(io::Error::from_raw_os_error(-e));
                        }
                    }
                    _ => {}
                }
                off += (len + 3) & !3;
            }
        }
    }
    Ok(n)
}
