//! Opening files that come from outside (`--from`, `--proc-root`, `plot`'s
//! record) so that no file makes tw wait or grow for ever.
//!
//! open(2) of a FIFO blocks until a writer comes (fifo_open in
//! fs/pipe.c), and read(2) of one blocks while its writer is silent; a
//! sysctl that is really a 2 GB file or /dev/zero would be read whole. So
//! files are opened O_NONBLOCK and their type checked on the open
//! descriptor; a pipe or FIFO is read through poll(2) with a time limit
//! ([`PATIENCE`] without a byte), which keeps `--from <(ss -D /dev/stdout)`
//! working; and small files ([`read_small`]) are read through a bound.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};

/// How long a pipe or FIFO may stay silent before the read gives up.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// Largest sysctl or counter file read ([`read_small`]): /proc/net/netstat
/// and snmp are a few KiB.
pub const MAX_SMALL: u64 = 1 << 20;

/// A file opened to read: a regular file, a character device, or a pipe
/// (FIFO) read with patience.
pub struct Input {
    file: File,
    pipe: bool,
}

/// Opens `path` without blocking on a FIFO that has no writer.
pub fn open(path: &Path) -> io::Result<Input> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    let pipe = kind.is_fifo() || kind.is_socket();
    if kind.is_dir() {
        return Err(io::Error::other("is a folder, not a file"));
    }
    if !pipe {
        // Blocking reads again for what does not wait on a writer.
        let flags = fcntl_getfl(&file)?;
        fcntl_setfl(&file, flags - OFlags::NONBLOCK)?;
    }
    Ok(Input { file, pipe })
}

/// The whole of a small regular file (a sysctl, a counter table), at most
/// [`MAX_SMALL`] bytes; anything else (a FIFO, /dev/zero, a 2 GB file) is an
/// error saying what it is.
pub fn read_small(path: &Path) -> io::Result<Vec<u8>> {
    let input = open(path)?;
    if !input.file.metadata()?.is_file() {
        return Err(io::Error::other(
            "not a regular file (a FIFO or a device?); expected a copy of a /proc file",
        ));
    }
    let mut out = Vec::new();
    input.file.take(MAX_SMALL + 1).read_to_end(&mut out)?;
    if out.len() as u64 > MAX_SMALL {
        return Err(io::Error::other(format!(
            "larger than {} KiB; not a /proc file",
            MAX_SMALL / 1024
        )));
    }
    Ok(out)
}

impl Input {
    /// The open file, for its metadata.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The file itself, for a reader of its own; only for what is not a pipe.
    pub fn into_file(self) -> File {
        self.file
    }

    pub fn is_pipe(&self) -> bool {
        self.pipe
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.pipe {
            return self.file.read(buf);
        }
        loop {
            // Poll first: a FIFO whose writer has not come yet reads 0 (the
            // end) at once, while poll(2) waits for data, or for POLLHUP,
            // which comes only once a writer has been (pipe_poll).
            wait(&self.file)?;
            match self.file.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }
}

/// Waits up to [`PATIENCE`] for the pipe to have something to read.
fn wait(file: &File) -> io::Result<()> {
    let mut fds = [PollFd::new(file, PollFlags::IN)];
    let limit = Timespec {
        tv_sec: PATIENCE.as_secs() as i64,
        tv_nsec: 0,
    };
    loop {
        match poll(&mut fds, Some(&limit)) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "nothing to read for {} s (a FIFO without a writer?)",
                        PATIENCE.as_secs()
                    ),
                ))
            }
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
