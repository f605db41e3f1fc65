//! Network namespaces: `--netns NAME|PATH` and `--all-netns` (every named
//! namespace and every distinct namespace of a running process), entered one
//! after another with setns(2) so both readers see that namespace.

use std::collections::BTreeMap;
use std::fs::File;
use std::marker::PhantomData;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

/// Where `ip netns add` pins named namespaces.
const NAMED: &str = "/run/netns";

/// A namespace to read, and how to label it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub label: String,
    pub path: PathBuf,
}

/// `--netns NAME` (under /run/netns) or `--netns PATH` (any nsfs file, such
/// as /proc/PID/ns/net).
pub fn named(arg: &str) -> Result<Namespace> {
    let path = if arg.contains('/') {
        PathBuf::from(arg)
    } else {
        Path::new(NAMED).join(arg)
    };
    // Path::exists() is false on any error: /proc/PID/ns/net of another
    // user's process is EACCES (proc_ns_get_link, ptrace_may_access), not absent.
    match std::fs::metadata(&path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(anyhow!(
            "--netns {arg}: no such namespace ({} does not exist; `ip netns list` shows the names)",
            path.display()
        ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(anyhow!(
                "--netns {arg}: permission denied ({e}); reading another process's namespace \
                 needs root (CAP_SYS_PTRACE over it)"
            ))
        }
        Err(e) => return Err(anyhow!("--netns {arg}: {}: {e}", path.display())),
    }
    Ok(Namespace {
        label: arg.to_string(),
        path,
    })
}

/// What `--all-netns` found, and how many processes it could not look into.
#[derive(Debug)]
pub struct Listing {
    pub namespaces: Vec<Namespace>,
    /// Processes whose namespace link was unreadable (no permission).
    pub hidden: usize,
}

/// Every named namespace, then every other distinct namespace a process is
/// in, each once (by inode). Labels: the name; `init` for PID 1's; else
/// `pid:N` for the lowest PID in it.
pub fn all() -> Result<Listing> {
    // (dev, inode) -> (label, path); BTreeMap keeps the order stable.
    let mut seen: BTreeMap<(u64, u64), Namespace> = BTreeMap::new();
    let mut named: Vec<Namespace> = Vec::new();
    if let Ok(dir) = std::fs::read_dir(NAMED) {
        for entry in dir.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let ns = Namespace {
                label: entry.file_name().to_string_lossy().into_owned(),
                path,
            };
            if seen.insert((meta.dev(), meta.ino()), ns.clone()).is_none() {
                named.push(ns);
            }
        }
    }
    named.sort_by(|a, b| a.label.cmp(&b.label));
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .map_err(|e| anyhow!("--all-netns: reading /proc: {e}"))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let mut others = Vec::new();
    let mut hidden = 0;
    for pid in pids {
        let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            // The process ended meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => {
                hidden += 1;
                continue;
            }
        };
        let key = (meta.dev(), meta.ino());
        if seen.contains_key(&key) {
            continue;
        }
        let ns = Namespace {
            label: if pid == 1 {
                "init".to_string()
            } else {
                format!("pid:{pid}")
            },
            path,
        };
        seen.insert(key, ns.clone());
        others.push(ns);
    }
    named.extend(others);
    Ok(Listing {
        namespaces: named,
        hidden,
    })
}

/// Inside a namespace until dropped; then back in the one we came from.
///
/// setns(2) moves only the calling thread (switch_task_namespaces(current)
/// in kernel/nsproxy.c), so the guard is neither `Send` nor `Sync`: whatever
/// holds it (a `tw watch` sampler) stays on the thread that entered, and the
/// way back is taken by that same thread.
///
/// ```compile_fail,E0277
/// fn on_another_thread<T: Send>() {}
/// on_another_thread::<tw::source::netns::Entered>();
/// ```
pub struct Entered {
    home: File,
    _this_thread: PhantomData<*const ()>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        // Failing to return would leave the thread in the other namespace;
        // nothing reads after the last one.
        let _ = setns_net(&self.home);
    }
}

/// Moves this thread into `ns`. Only this thread moves, so sockets opened
/// and /proc/thread-self/net read afterwards belong to `ns`.
pub fn enter(ns: &Namespace) -> Result<Entered> {
    let home = File::open("/proc/thread-self/ns/net")
        .map_err(|e| anyhow!("reading this thread's namespace: {e}"))?;
    // O_NONBLOCK: a FIFO given as --netns must not block the open for ever
    // (fifo_open); it then fails setns like any file that is not a namespace.
    let target = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&ns.path)
        .map_err(|e| {
            denied_or(
                &e,
                format!(
                    "namespace {} ({}): {e}{}",
                    ns.label,
                    ns.path.display(),
                    permission_hint(&e)
                ),
            )
        })?;
    if let Err(e) = setns_net(&target) {
        return Err(denied_or(
            &e,
            format!(
                "entering namespace {} ({}): {e}{}",
                ns.label,
                ns.path.display(),
                permission_hint(&e)
            ),
        ));
    }
    Ok(Entered {
        home,
        _this_thread: PhantomData,
    })
}

/// setns(2) into the network namespace `ns` names; moves only the calling
/// thread.
fn setns_net(ns: &File) -> std::io::Result<()> {
    use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
    move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))?;
    Ok(())
}

/// An [`enter`] refused for want of privilege (EACCES, EPERM): `--all-netns`
/// skips such a namespace with a note rather than giving up on them all.
#[derive(Debug)]
pub struct Denied(String);

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Denied {}

fn denied_or(e: &std::io::Error, msg: String) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => Denied(msg).into(),
        _ => anyhow!(msg),
    }
}

fn permission_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => "; entering a namespace needs root (CAP_SYS_ADMIN)",
        // setns(2) on a file that is not a network namespace.
        std::io::ErrorKind::InvalidInput => {
            "; not a network namespace (give a name under /run/netns or /proc/PID/ns/net)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_under_run_netns_and_paths_stay() {
        let err = named("tw-no-such-namespace").unwrap_err().to_string();
        assert!(err.contains("/run/netns/tw-no-such-namespace"), "{err}");
        assert!(err.contains("ip netns list"), "{err}");
        let me = named("/proc/self/ns/net").unwrap();
        assert_eq!(me.path, PathBuf::from("/proc/self/ns/net"));
    }

    #[test]
    fn all_includes_this_process_namespace_once() {
        let l = all().unwrap();
        let mine = std::fs::metadata("/proc/self/ns/net").unwrap();
        let matching: Vec<&Namespace> = l
            .namespaces
            .iter()
            .filter(|n| {
                std::fs::metadata(&n.path)
                    .is_ok_and(|m| (m.dev(), m.ino()) == (mine.dev(), mine.ino()))
            })
            .collect();
        assert_eq!(matching.len(), 1, "{:?}", l.namespaces);
    }
}
