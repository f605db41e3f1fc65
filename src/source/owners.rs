//! `-p`: which processes own each socket, from one walk of /proc/*/fd.
//! Socket inodes are unique across the system, so one walk serves every
//! namespace. TIME_WAIT sockets have no inode and so no owner.

use std::collections::HashMap;

use procfs::process::{all_processes, FDTarget};

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: i32,
    pub command: String,
}

/// Socket inode -> owners, and what could not be seen.
#[derive(Debug, Default)]
pub struct Procs {
    by_inode: HashMap<u64, Vec<Owner>>,
    /// Processes whose fds were not readable (another user's, without root).
    pub hidden: usize,
}

impl Procs {
    /// Walks /proc/*/fd once. Processes that end during the walk are skipped.
    pub fn scan() -> anyhow::Result<Procs> {
        let mut procs = Procs::default();
        let all = all_processes().map_err(|e| anyhow::anyhow!("-p: reading /proc: {e}"))?;
        for p in all.flatten() {
            let fds = match p.fd() {
                Ok(fds) => fds,
                Err(procfs::ProcError::PermissionDenied(_)) => {
                    procs.hidden += 1;
                    continue;
                }
                Err(_) => continue,
            };
            let mut command = None;
            for fd in fds.flatten() {
                if let FDTarget::Socket(inode) = fd.target {
                    let command = command.get_or_insert_with(|| {
                        p.stat().map(|s| s.comm).unwrap_or_else(|_| "?".to_string())
                    });
                    procs.add(inode, p.pid, command);
                }
            }
        }
        Ok(procs)
    }

    fn add(&mut self, inode: u64, pid: i32, command: &str) {
        let owners = self.by_inode.entry(inode).or_default();
        // One entry per process, however many fds it has on the socket.
        if !owners.iter().any(|o| o.pid == pid) {
            owners.push(Owner {
                pid,
                command: command.to_string(),
            });
        }
    }

    /// The owners of a socket, lowest PID first; none for inode 0.
    pub fn owners(&self, inode: u64) -> &[Owner] {
        if inode == 0 {
            return &[];
        }
        self.by_inode.get(&inode).map_or(&[], Vec::as_slice)
    }

    /// `nginx/1234`, `nginx/1234+3` when more processes share it (forked
    /// workers), `-` when none is known.
    pub fn label(&self, inode: u64) -> String {
        let mut owners: Vec<&Owner> = self.owners(inode).iter().collect();
        owners.sort_by_key(|o| o.pid);
        match owners.as_slice() {
            [] => "-".to_string(),
            [one] => format!("{}/{}", one.command, one.pid),
            [first, rest @ ..] => format!("{}/{}+{}", first.command, first.pid, rest.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let mut p = Procs::default();
        p.add(7, 200, "nginx");
        p.add(7, 100, "nginx");
        p.add(7, 100, "nginx");
        p.add(8, 42, "sshd");
        assert_eq!(p.label(7), "nginx/100+1");
        assert_eq!(p.label(8), "sshd/42");
        assert_eq!(p.label(9), "-");
        assert_eq!(p.label(0), "-");
        assert_eq!(p.owners(7).len(), 2);
    }

    #[test]
    fn scan_finds_a_socket_this_process_holds() {
        use std::os::unix::fs::MetadataExt;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = std::fs::metadata(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&l)
        ))
        .unwrap()
        .ino();
        let p = Procs::scan().unwrap();
        let me = std::process::id() as i32;
        assert!(
            p.owners(inode).iter().any(|o| o.pid == me),
            "{:?}",
            p.owners(inode)
        );
    }
}
