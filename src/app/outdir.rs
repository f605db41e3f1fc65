//! A fresh folder of tw's own, for the commands that write many files
//! (`capture`, `generate`). tw runs as root, so the folder it is told to
//! write into must never lead its writes elsewhere: a symlink planted in it
//! (a file, or a subfolder such as `net/`) would have its target overwritten,
//! and `tw capture /proc` would rewrite the sysctls it copies.
//!
//! So: procfs, sysfs and the other kernel filesystems are refused; the folder
//! must be new or empty; it is opened once (O_NOFOLLOW) and every file and
//! subfolder is made relative to that descriptor, files with
//! O_CREAT|O_EXCL|O_NOFOLLOW. Whatever appears in the folder meanwhile makes
//! the write fail (EEXIST, ELOOP); it is never followed.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rustix::fs::{fstatfs, mkdirat, openat, Mode, OFlags};
use rustix::io::Errno;

/// Filesystems whose files are kernel settings or state, not storage
/// (include/uapi/linux/magic.h).
const KERNEL_FS: &[(i64, &str)] = &[
    (0x9fa0, "procfs"),
    (0x6265_6572, "sysfs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0xcafe_4a11, "bpffs"),
    (0x6265_6570, "configfs"),
    (0x1cd1, "devpts"),
    (0x6e73_6673, "nsfs"),
];

/// The open folder; files go in through [`OutDir::write`].
pub struct OutDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl OutDir {
    /// Makes `dir` (and its parents), or takes it if it is an empty folder.
    /// Refuses a symlink, a non-empty folder, and kernel filesystems.
    pub fn fresh(dir: &Path) -> Result<OutDir> {
        let shown = dir.display();
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => bail!(
                "{shown} is a symbolic link; give a new folder (tw writes only into one of its own)"
            ),
            Ok(m) if !m.is_dir() => bail!("{shown} exists and is not a folder; give a new folder"),
            Ok(_) => {}
            Err(_) => {
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).with_context(|| format!("creating {shown}"))?;
                }
                match std::fs::create_dir(dir) {
                    Ok(()) => {}
                    // Made meanwhile: checked below like any existing folder.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(anyhow!("creating {shown}: {e}")),
                }
            }
        }
        let fd = openat(
            rustix::fs::CWD,
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::LOOP | Errno::NOTDIR => {
                anyhow!("{shown} is not a folder of its own (a symbolic link?); give a new folder")
            }
            e => anyhow!("opening {shown}: {e}"),
        })?;
        let fs = fstatfs(&fd).map_err(|e| anyhow!("checking {shown}: {e}"))?;
        #[allow(clippy::unnecessary_cast)]
        let magic = fs.f_type as i64;
        if let Some((_, name)) = KERNEL_FS.iter().find(|(m, _)| *m == magic) {
            bail!(
                "{shown} is on {name}, which holds kernel settings, not files; give a new folder"
            );
        }
        // Read through the descriptor, so it is the folder just checked.
        let fd_path = PathBuf::from(format!("/proc/self/fd/{}", raw(&fd)));
        let listed = std::fs::read_dir(&fd_path).or_else(|_| std::fs::read_dir(dir));
        if listed
            .map_err(|e| anyhow!("reading {shown}: {e}"))?
            .next()
            .is_some()
        {
            bail!("{shown} is not empty; give a new folder (tw writes only into one of its own)");
        }
        Ok(OutDir {
            fd,
            path: dir.to_path_buf(),
        })
    }

    /// The folder as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a new file at `rel` (`net/tcp`), making its subfolders; never
    /// follows or replaces what is already there.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<PathBuf> {
        let shown = self.path.join(rel);
        let fail = |e: Errno| {
            let why = match e {
                Errno::EXIST | Errno::LOOP => " (it appeared while tw wrote; nothing was followed)",
                _ => "",
            };
            anyhow!("writing {}: {e}{why}", shown.display())
        };
        let mut parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        let name = parts
            .pop()
            .ok_or_else(|| anyhow!("no file name in {rel:?}"))?;
        let mut dirs: Vec<OwnedFd> = Vec::new();
        for part in parts {
            if part == ".." || part == "." {
                bail!("{rel}: not a plain path inside the folder");
            }
            let at = dirs.last().unwrap_or(&self.fd);
            match mkdirat(at, part, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(fail(e)),
            }
            let sub = openat(
                at,
                part,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(fail)?;
            dirs.push(sub);
        }
        let at = dirs.last().unwrap_or(&self.fd);
        let fd = openat(
            at,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(fail)?;
        File::from(fd)
            .write_all(bytes)
            .with_context(|| format!("writing {}", shown.display()))?;
        Ok(shown)
    }
}

fn raw(fd: &OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Tmp(PathBuf);
    impl Tmp {
        fn new(tag: &str) -> Tmp {
            let p = std::env::temp_dir().join(format!("tw-outdir-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Tmp(p)
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Issue 12 item 1: symlinks planted after the folder was checked (a file, and the `net/`
    /// subfolder) are never followed; their targets stay as they were.
    #[test]
    fn symlinks_planted_in_the_folder_are_never_followed() {
        let t = Tmp::new("planted");
        let victim_dir = t.0.join("victim");
        std::fs::create_dir(&victim_dir).unwrap();
        let victim_file = t.0.join("victim-file");
        std::fs::write(&victim_file, b"keep").unwrap();
        let out = OutDir::fresh(&t.0.join("out")).unwrap();
        symlink(&victim_dir, t.0.join("out/net")).unwrap();
        symlink(&victim_file, t.0.join("out/sock_diag.dump")).unwrap();
        symlink(t.0.join("victim-new"), t.0.join("out/dangling")).unwrap();
        let e = out.write("net/tcp", b"x").unwrap_err().to_string();
        assert!(e.contains("net/tcp"), "{e}");
        let e = out.write("sock_diag.dump", b"x").unwrap_err().to_string();
        assert!(e.contains("sock_diag.dump"), "{e}");
        assert!(out.write("dangling", b"x").is_err());
        assert!(out.write("../escape", b"x").is_err());
        assert_eq!(std::fs::read_dir(&victim_dir).unwrap().count(), 0);
        assert_eq!(std::fs::read(&victim_file).unwrap(), b"keep");
        assert!(!t.0.join("victim-new").exists() && !t.0.join("escape").exists());
        // What is its own is written.
        out.write("sys/net/ipv4/tcp_fin_timeout", b"60\n").unwrap();
        assert_eq!(
            std::fs::read(t.0.join("out/sys/net/ipv4/tcp_fin_timeout")).unwrap(),
            b"60\n"
        );
    }

    #[test]
    fn only_a_new_or_empty_folder_is_taken() {
        let t = Tmp::new("fresh");
        let empty = t.0.join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(OutDir::fresh(&empty).is_ok());
        assert!(OutDir::fresh(&t.0.join("a/b/new")).is_ok());
        std::fs::write(empty.join("f"), b"").unwrap();
        let e = OutDir::fresh(&empty).err().unwrap().to_string();
        assert!(e.contains("is not empty"), "{e}");
        symlink(t.0.join("a"), t.0.join("link")).unwrap();
        let e = OutDir::fresh(&t.0.join("link")).err().unwrap().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        for (dir, fs) in [("/proc/sys/net", "procfs"), ("/sys/kernel", "sysfs")] {
            let e = OutDir::fresh(Path::new(dir)).err().unwrap().to_string();
            assert!(e.contains(fs), "{e}");
        }
    }
}
