//! `-x`: UNIX sockets from unix_diag (net/unix/diag.c), or /proc/net/unix
//! when sock_diag is not available, in the current network namespace.

use anyhow::{anyhow, bail, Result};
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket as NlSocket, SocketAddr};

use super::netlink::frame::frames;
use crate::model::abi::{NLMSG_HDRLEN, NLM_F_DUMP, NLM_F_REQUEST, SOCK_DIAG_BY_FAMILY};
use crate::model::unix::{UnixKind, UnixSocket};
use crate::model::{Flow, StateSet, TcpState};

// include/uapi/linux/unix_diag.h
const UDIAG_SHOW_NAME: u32 = 0x01;
const UDIAG_SHOW_PEER: u32 = 0x04;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
/// sizeof(struct unix_diag_msg).
const UNIX_DIAG_MSG_LEN: usize = 16;

/// Where the sockets came from, for what the listing can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnixSource {
    Netlink,
    /// /proc/net/unix: no peers, no queues.
    Proc,
}

/// Reads the UNIX sockets in `states`; `proc_only` skips unix_diag.
/// Falls back to /proc/net/unix when unix_diag is refused, unless `netlink_only`.
pub fn read(
    states: StateSet,
    proc_only: bool,
    netlink_only: bool,
) -> Result<(Vec<UnixSocket>, UnixSource)> {
    let mut v = Vec::new();
    let from = read_each(states, proc_only, netlink_only, &mut |s| {
        v.push(s.clone());
        Flow::Continue(())
    })?;
    Ok((v, from))
}

/// The same, each socket handed to `sink` as it is decoded, none held: a
/// listing of 100,000 sockets streams. `sink` may end the read (`Break`).
/// unix_diag refused before its first socket falls back to /proc/net/unix;
/// after one it is an error, so no socket is handed over twice.
pub fn read_each(
    states: StateSet,
    proc_only: bool,
    netlink_only: bool,
    sink: &mut dyn FnMut(&UnixSocket) -> Flow,
) -> Result<UnixSource> {
    if !proc_only {
        let mut given = false;
        let mut counted = |s: &UnixSocket| {
            given = true;
            sink(s)
        };
        match dump(states, &mut counted) {
            Ok(()) => return Ok(UnixSource::Netlink),
            Err(Refused(e)) if given => bail!("unix_diag: {e}"),
            Err(Refused(e)) if !netlink_only => {
                let _ = e;
            }
            Err(Refused(e)) => bail!("unix_diag is not available: {e}; use --source proc"),
        }
    }
    let file = std::fs::File::open("/proc/thread-self/net/unix")
        .map_err(|e| anyhow!("reading /proc/net/unix: {e}"))?;
    each_proc_line(std::io::BufReader::new(file), &mut |s| {
        if states.contains(s.state) {
            sink(s)
        } else {
            Flow::Continue(())
        }
    })
    .map_err(|e| anyhow!("/proc/net/unix: {e}"))?;
    Ok(UnixSource::Proc)
}

struct Refused(String);

impl From<std::io::Error> for Refused {
    fn from(e: std::io::Error) -> Self {
        Refused(e.to_string())
    }
}

fn dump(states: StateSet, sink: &mut dyn FnMut(&UnixSocket) -> Flow) -> Result<(), Refused> {
    let mut sock = NlSocket::new(NETLINK_SOCK_DIAG)?;
    sock.bind_auto()?;
    let mut req = Vec::with_capacity(NLMSG_HDRLEN + 24);
    req.extend_from_slice(&((NLMSG_HDRLEN + 24) as u32).to_ne_bytes());
    req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    // struct unix_diag_req: family, protocol, pad; states; ino; show; cookie.
    req.extend_from_slice(&[libc::AF_UNIX as u8, 0, 0, 0]);
    req.extend_from_slice(&states.kernel_mask().to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&(UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN).to_ne_bytes());
    req.extend_from_slice(&[0xff; 8]);
    sock.send_to(&req, &SocketAddr::new(0, 0), 0)?;
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        let n = match sock.recv(&mut buf, 0) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(Refused(
                "the kernel closed the dump without NLMSG_DONE".into(),
            ));
        }
        if decode_each(&buf[..n.min(buf.len())], sink).map_err(Refused)? {
            return Ok(());
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes one buffer of replies into `out`; true at NLMSG_DONE.
pub fn decode(buf: &[u8], out: &mut Vec<UnixSocket>) -> Result<bool, String> {
    decode_each(buf, &mut |s| {
        out.push(s.clone());
        Flow::Continue(())
    })
}

/// Decodes one buffer of replies, each socket to `sink`; true at
/// NLMSG_DONE or when `sink` ends the read.
fn decode_each(buf: &[u8], sink: &mut dyn FnMut(&UnixSocket) -> Flow) -> Result<bool, String> {
    let mut stopped = false;
    let p = frames(buf, &mut |kind, body| {
        if kind == SOCK_DIAG_BY_FAMILY && sink(&decode_msg(body)?).is_break() {
            stopped = true;
            return Ok(Flow::Break(()));
        }
        Ok(Flow::Continue(()))
    })
    .map_err(|e| e.to_string())?;
    if stopped {
        return Ok(true);
    }
    if p.interrupted {
        return Err(
            "the socket table changed during the unix_diag dump (NLM_F_DUMP_INTR); \
                    try again"
                .into(),
        );
    }
    Ok(p.done)
}

/// One `struct unix_diag_msg` and its attributes.
pub fn decode_msg(b: &[u8]) -> Result<UnixSocket, String> {
    if b.len() < UNIX_DIAG_MSG_LEN {
        return Err(format!(
            "unix_diag_msg of {} bytes, expected {UNIX_DIAG_MSG_LEN}",
            b.len()
        ));
    }
    let state = TcpState::from_kernel(b[2]).ok_or_else(|| format!("unknown state {}", b[2]))?;
    let mut s = UnixSocket {
        kind: UnixKind::from_sock_type(b[1]),
        state,
        inode: u64::from(u32_at(b, 4)),
        peer: 0,
        path: None,
        recv_q: None,
        send_q: None,
    };
    let mut a = &b[UNIX_DIAG_MSG_LEN..];
    while a.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([a[0], a[1]]));
        let kind = u16::from_ne_bytes([a[2], a[3]]) & 0x3fff;
        if len < 4 || len > a.len() {
            return Err(format!("attribute length {len} does not fit"));
        }
        let p = &a[4..len];
        match kind {
            UNIX_DIAG_NAME if !p.is_empty() => s.path = Some(path_text(p)),
            UNIX_DIAG_PEER if p.len() >= 4 => s.peer = u64::from(u32_at(p, 0)),
            UNIX_DIAG_RQLEN if p.len() >= 8 => {
                s.recv_q = Some(u32_at(p, 0));
                s.send_q = Some(u32_at(p, 4));
            }
            _ => {}
        }
        a = &a[((len + 3) & !3).min(a.len())..];
    }
    Ok(s)
}

/// A socket's name as ss prints it: the path, or `@name` for the abstract
/// namespace (a leading NUL). Bytes that are not printable are escaped
/// (`\x1b`), so a name can never write control characters to a terminal.
pub fn path_text(p: &[u8]) -> String {
    let (at, p) = match p.split_first() {
        Some((0, rest)) => (true, rest),
        _ => (false, p),
    };
    let p = if at {
        p
    } else {
        p.split(|c| *c == 0).next().unwrap_or(p)
    };
    let mut t = String::with_capacity(p.len() + 1);
    if at {
        t.push('@');
    }
    for &c in p {
        if c.is_ascii_graphic() {
            t.push(c as char);
        } else {
            t.push_str(&format!("\\x{c:02x}"));
        }
    }
    t
}

/// /proc/net/unix: `Num RefCount Protocol Flags Type St Inode Path`
/// (net/unix/af_unix.c, unix_seq_show). St is the socket's SS_* state, and
/// __SO_ACCEPTCON (1 << 16) in Flags marks a listener.
pub fn parse_proc(text: &str) -> Result<Vec<UnixSocket>, String> {
    let mut v = Vec::new();
    each_proc_line(text.as_bytes(), &mut |s| {
        v.push(s.clone());
        Flow::Continue(())
    })?;
    Ok(v)
}

/// /proc/net/unix a line at a time, each socket to `sink`.
fn each_proc_line(
    mut r: impl std::io::BufRead,
    sink: &mut dyn FnMut(&UnixSocket) -> Flow,
) -> Result<(), String> {
    let mut line = String::new();
    let mut i = 0;
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Ok(());
        }
        i += 1;
        if i == 1 {
            continue;
        }
        if let Some(s) = proc_line(line.trim_end_matches('\n'), i)? {
            if sink(&s).is_break() {
                return Ok(());
            }
        }
    }
}

/// One line of /proc/net/unix (the `i`th); `None` for a socket unix_diag
/// would not list.
fn proc_line(line: &str, i: usize) -> Result<Option<UnixSocket>, String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 7 {
        return Err(format!("line {i}: {} fields, expected at least 7", f.len()));
    }
    let hex =
        |s: &str| u32::from_str_radix(s, 16).map_err(|_| format!("line {i}: {s:?} is not hex"));
    let flags = hex(f[3])?;
    let kind = u8::try_from(hex(f[4])?).unwrap_or(0);
    let st = hex(f[5])?;
    let inode: u64 = f[6]
        .parse()
        .map_err(|_| format!("line {i}: inode {:?}", f[6]))?;
    // Inode 0: the server's half of a connection not yet accepted, in
    // the listener's queue and with no file yet; unix_diag does not
    // list it, so neither does this.
    if inode == 0 {
        return Ok(None);
    }
    let state = if flags & (1 << 16) != 0 {
        TcpState::Listen
    } else if st == 3 {
        TcpState::Established
    } else {
        TcpState::Close
    };
    // The path is the rest of the line after the seventh field, spaces
    // and all (the abstract namespace's NUL is written as '@' already).
    let path = f
        .get(7)
        .map(|_| path_text(after_fields(line, 7).as_bytes()));
    Ok(Some(UnixSocket {
        kind: UnixKind::from_sock_type(kind),
        state,
        inode,
        peer: 0,
        path,
        recv_q: None,
        send_q: None,
    }))
}

/// `line` after its first `n` whitespace-separated fields, trimmed.
fn after_fields(line: &str, n: usize) -> &str {
    let mut rest = line.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest.trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_lines_give_type_state_inode_and_path() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000067818fe9: 00000002 00000000 00010000 0001 01 4028979 /run/x.sock\n\
            00000000d0f29aa1: 00000003 00000000 00000000 0001 03 4028821\n\
            00000000df32aff0: 00000002 00000000 00000000 0002 01 4028820 @abstract\n\
            00000000df32aff1: 00000002 00000000 00000000 0005 01 42 /tmp/with space\n";
        let v = parse_proc(text).unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(
            (v[0].kind, v[0].state),
            (UnixKind::Stream, TcpState::Listen)
        );
        assert_eq!(v[0].path.as_deref(), Some("/run/x.sock"));
        assert_eq!(
            (v[1].state, v[1].inode, v[1].path.as_deref()),
            (TcpState::Established, 4028821, None)
        );
        assert_eq!((v[2].kind, v[2].state), (UnixKind::Dgram, TcpState::Close));
        assert_eq!(v[2].path.as_deref(), Some("@abstract"));
        assert_eq!(v[3].kind, UnixKind::Seqpacket);
        assert_eq!(v[3].path.as_deref(), Some("/tmp/with\\x20space"));
        assert!(parse_proc("h\nshort line\n").is_err());
    }

    #[test]
    fn names_are_escaped_and_abstract_ones_marked() {
        assert_eq!(path_text(b"/run/a.sock"), "/run/a.sock");
        assert_eq!(path_text(b"\0hidden"), "@hidden");
        assert_eq!(path_text(b"/tmp/\x1b[31m"), "/tmp/\\x1b[31m");
        assert_eq!(path_text(b"/tmp/a\0\0"), "/tmp/a");
    }

    #[test]
    fn a_message_with_name_peer_and_queues_decodes() {
        let mut b = vec![1u8, 1, 1, 0];
        b.extend_from_slice(&77u32.to_ne_bytes());
        b.extend_from_slice(&[0; 8]);
        let attr = |t: u16, p: &[u8]| {
            let mut a = ((4 + p.len()) as u16).to_ne_bytes().to_vec();
            a.extend_from_slice(&t.to_ne_bytes());
            a.extend_from_slice(p);
            a.resize((a.len() + 3) & !3, 0);
            a
        };
        b.extend(attr(UNIX_DIAG_NAME, b"/run/s"));
        b.extend(attr(UNIX_DIAG_PEER, &78u32.to_ne_bytes()));
        let mut q = 5u32.to_ne_bytes().to_vec();
        q.extend_from_slice(&6u32.to_ne_bytes());
        b.extend(attr(UNIX_DIAG_RQLEN, &q));
        let s = decode_msg(&b).unwrap();
        assert_eq!(
            (s.inode, s.peer, s.recv_q, s.send_q),
            (77, 78, Some(5), Some(6))
        );
        assert_eq!(s.path.as_deref(), Some("/run/s"));
        assert_eq!(s.state_name(), "ESTABLISHED");
        assert!(decode_msg(&b[..10]).is_err());
        let mut bad = b[..16].to_vec();
        bad.extend_from_slice(&[200, 0, 0, 0]);
        assert!(decode_msg(&bad).is_err());
    }
}
