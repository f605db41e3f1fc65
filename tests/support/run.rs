//! Running the tw binary inside a test namespace as root or as another user, with extra
//! environment (the netlink shim's settings), and a small population of every socket kind.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use crate::common::{run_bounded, Net, Netns, Population};

/// Runs tw in `ns` as `uid` (0: root; otherwise that uid and gid, with no supplementary
/// groups), from `/`, with `env` added.
pub fn tw_in(ns: &Netns, uid: u32, env: &[(&str, String)], args: &[&str]) -> Output {
    ns.run(|| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tw"));
        c.args(args).current_dir("/");
        for (k, v) in env {
            c.env(k, v);
        }
        if uid != 0 {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                c.pre_exec(move || {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(uid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        run_bounded(&mut c)
    })
}

/// About 2,000 sockets: every kind the harness makes, IPv4, IPv6 and IPv4-mapped; a dump of
/// them spans several receive buffers.
pub fn small_population(ns: &Netns) -> Population {
    Population::builder()
        .listeners(Net::V4, 2)
        .listeners(Net::V6, 1)
        .established(Net::V4, 8)
        .established(Net::Mapped, 2)
        .half_closed(Net::V6, 2)
        .orphan_fin_wait2(Net::V4, 2)
        .time_wait(Net::V4, 1500)
        .time_wait(Net::V6, 400)
        .time_wait(Net::Mapped, 100)
        .build(ns)
}
