//! `tw ... | head -c N`: the first bytes of a command's output, then the pipe closed while more
//! is still to come.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `cmd`, reads `n` bytes of its stdout, closes the pipe and waits for it (killing it by
/// PID after 30 s); returns the bytes, the exit status and what it wrote to stderr.
pub fn head(cmd: &mut Command, n: usize) -> (Vec<u8>, ExitStatus, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the command");
    let mut first = vec![0u8; n];
    let read = child.stdout.as_mut().unwrap().read_exact(&mut first);
    drop(child.stdout.take());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} went on after its output was closed");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    read.unwrap_or_else(|e| panic!("{cmd:?}: fewer than {n} bytes ({e}); stderr {err}"));
    (first, status, err)
}
