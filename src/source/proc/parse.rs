//! The /proc/net/tcp and tcp6 line parser (the pure half of the /proc reader).
//!
//! procfs's TcpNetEntry drops the `tr` and `tm->when` columns, which carry the
//! TIME_WAIT time left, so tw parses the lines itself. Line formats:
//! tcp4_seq_show/get_tcp4_sock, get_timewait4_sock, get_openreq4 in
//! net/ipv4/tcp_ipv4.c, and their IPv6 twins in net/ipv6/tcp_ipv6.c.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::io::{self, BufRead};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::abi::USER_HZ;
use crate::model::{
    Endpoint, Family, Flow, Socket, StateSet, TcpState, Timer, TimerKind, SEND_Q_UNKNOWN,
};

/// A line that does not parse, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub what: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.line, self.what)
    }
}

/// The longest line accepted. The kernel pads each line to a fixed width
/// (TMPSZ, 150 bytes for tcp, about 180 for tcp6); anything far longer is not
/// a socket table, and is refused before it is held in memory.
pub const MAX_LINE: usize = 4096;

/// Parses a whole table, handing each socket whose state is in `states` to
/// `visit`, until it answers `Break` (the table is then left at the end of
/// that line). The header line is skipped; any other line that does not parse
/// is an error, since a silently skipped line would be a wrong count.
///
/// A socket listed twice is handed over once. The kernel writes the table a
/// page per read() and finds its place again by position (tcp_seq_start,
/// tcp_seek_last_pos), so sockets created meanwhile can push ones already
/// written past the resume point, and they come again (seen under churn, with
/// `cat` too). A socket is its 4-tuple plus inode (SO_REUSEPORT listeners
/// share the tuple, not the inode); [`Recent`] keeps a keyed 64-bit hash of
/// the latest ones, so telling two apart fails only on a hash collision.
pub fn parse(
    mut r: impl BufRead,
    states: StateSet,
    visit: &mut dyn FnMut(&Socket) -> Flow,
) -> Result<(), ParseError> {
    // Lines are parsed where they lie in the reader's buffer; one that
    // straddles two buffers is put together here first.
    let mut partial = Vec::with_capacity(256);
    let mut n = 0;
    let mut seen = Recent::default();
    let mut take = |line: &[u8], n: usize| match parse_line(line, states) {
        Ok(Some(s)) if seen.first_time(&s) => Ok(visit(&s)),
        Ok(_) => Ok(Flow::Continue(())),
        Err(what) => Err(ParseError { line: n, what }),
    };
    let too_long = |n: usize| ParseError {
        line: n,
        what: format!("line is longer than {MAX_LINE} bytes: not a /proc/net/tcp table"),
    };
    loop {
        let buf = match r.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ParseError {
                    line: n + 1,
                    what: format!("read failed: {e}"),
                })
            }
        };
        if buf.is_empty() {
            if partial.is_empty() {
                return Ok(());
            }
            if partial.len() > MAX_LINE {
                return Err(too_long(n + 1));
            }
            return Err(ParseError {
                line: n + 1,
                what: "line is cut off (no newline at the end; truncated capture?)".into(),
            });
        }
        let mut at = 0;
        while let Some(i) = find_newline(&buf[at..]) {
            let end = at + i + 1;
            n += 1;
            // A line may hold MAX_LINE bytes and its newline.
            if partial.is_empty() {
                if end - at > MAX_LINE + 1 {
                    return Err(too_long(n));
                }
                if take(&buf[at..end], n)?.is_break() {
                    return Ok(());
                }
            } else {
                partial.extend_from_slice(&buf[at..end]);
                if partial.len() > MAX_LINE + 1 {
                    return Err(too_long(n));
                }
                if take(&partial, n)?.is_break() {
                    return Ok(());
                }
                partial.clear();
            }
            at = end;
        }
        partial.extend_from_slice(&buf[at..]);
        let len = buf.len();
        r.consume(len);
        if partial.len() > MAX_LINE {
            return Err(too_long(n + 1));
        }
    }
}

/// The index of the first newline in `b`, a word at a time (the SWAR
/// zero-byte test on the bytes xor `\n`): a table's lines are 150 bytes.
fn find_newline(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_newline = |w: &[u8]| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(w);
        let x = u64::from_le_bytes(bytes) ^ (ONES * u64::from(b'\n'));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    // 32 bytes a step: four words tested, one branch.
    let mut skipped = 0;
    for block in b.chunks_exact(32) {
        let any = block.chunks_exact(8).fold(0, |acc, w| acc | has_newline(w));
        if any != 0 {
            break;
        }
        skipped += 32;
    }
    b[skipped..]
        .iter()
        .position(|c| *c == b'\n')
        .map(|i| skipped + i)
}

/// The sockets handed over lately, to drop one the kernel writes again. It
/// repeats only what it wrote just before a resume point: tcp_seek_last_pos
/// skips `st->offset` entries of the bucket it stopped in, and when it cannot,
/// tcp_get_idx counts `pos` entries from the start; either way the run that
/// comes again ends at the last line of the previous read() and is as long as
/// the sockets added ahead of it in between. A window of the last [`RECENT`]
/// keys catches those in bounded memory, where a set of every key would grow
/// with the table (about 18 MiB at a million sockets).
struct Recent {
    /// Random per run, so which sockets share a hash cannot be arranged.
    seed: [u64; 2],
    set: HashSet<u64, BuildHasherDefault<Prehashed>>,
    order: VecDeque<u64>,
}

/// Sockets the window holds: far more than can be pushed back past a resume
/// point by sockets created between two read()s (a page, about 27 lines,
/// each), and few enough that the window stays in the CPU's cache.
const RECENT: usize = 1 << 13;

impl Default for Recent {
    fn default() -> Self {
        let r = RandomState::new();
        Recent {
            seed: [r.hash_one(0u8), r.hash_one(1u8) | 1],
            set: HashSet::default(),
            order: VecDeque::new(),
        }
    }
}

impl Recent {
    fn first_time(&mut self, s: &Socket) -> bool {
        let h = self.key(s);
        if !self.set.insert(h) {
            return false;
        }
        if self.order.len() == RECENT {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.order.push_back(h);
        true
    }

    /// A keyed 64-bit hash of the 4-tuple and inode (SO_REUSEPORT listeners
    /// share a tuple, not an inode), each word folded in with a 128-bit
    /// multiply, as foldhash mixes: a table of a million lines hashes a
    /// million keys, which SipHash would spend most of the parse on.
    fn key(&self, s: &Socket) -> u64 {
        let addr = |e: &Endpoint| match e.addr {
            IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
            IpAddr::V6(a) => u128::from(a),
        };
        let (l, p) = (addr(&s.local), addr(&s.peer));
        let ports = u64::from(s.local.port) << 16 | u64::from(s.peer.port);
        let words = [l as u64, (l >> 64) as u64, p as u64, (p >> 64) as u64];
        words
            .into_iter()
            .chain([ports, s.inode])
            .fold(self.seed[0], |h, w| {
                let m = u128::from(h ^ w) * u128::from(self.seed[1]);
                m as u64 ^ (m >> 64) as u64
            })
    }
}

/// The set's keys are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Parses one line. `Ok(None)`: the header, a blank line, or a socket whose
/// state is not in `states` (checked before the addresses are decoded).
pub fn parse_line(line: &[u8], states: StateSet) -> Result<Option<Socket>, String> {
    match parse_kernel_layout(line, states) {
        Some(parsed) => Ok(parsed),
        None => parse_fields(line, states),
    }
}

/// The general reader: whitespace-separated fields, each checked, with an
/// error that says what is wrong.
fn parse_fields(line: &[u8], states: StateSet) -> Result<Option<Socket>, String> {
    let mut f = Fields(line);
    let Some(sl) = f.next() else {
        return Ok(None);
    };
    if sl == b"sl" {
        return Ok(None);
    }
    // The kernel's `%4d:`, digits only: `x:` or `:` is no slot.
    let digits = &sl[..sl.len().saturating_sub(1)];
    if sl.last() != Some(&b':') || digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(format!(
            "expected a slot number like '12:', found '{}'",
            show(sl)
        ));
    }
    let mut next = |name: &str| {
        f.next()
            .ok_or_else(|| format!("missing the {name} column (truncated line?)"))
    };
    let local = next("local_address")?;
    let peer = next("rem_address")?;
    let st = next("st")?;
    let queues = next("tx_queue:rx_queue")?;
    let timer = next("tr:tm->when")?;
    let retrnsmt = next("retrnsmt")?;
    let uid = next("uid")?;
    let _timeout = next("timeout")?;
    let inode = next("inode")?;

    if st.contains(&b':') {
        // Addresses and queues hold a colon, st never does: the line is short
        // of a column before it.
        return Err(format!(
            "found '{}' where the st column belongs: a column is missing",
            show(st)
        ));
    }
    let st = hex(st, "st")?;
    let state = u8::try_from(st)
        .ok()
        .and_then(TcpState::from_kernel)
        .ok_or_else(|| format!("unknown TCP state 0x{st:02X}"))?;
    if !states.contains(state) {
        return Ok(None);
    }
    let (family, local) = endpoint(local, "local_address")?;
    let (peer_family, peer) = endpoint(peer, "rem_address")?;
    if family != peer_family {
        return Err("local and remote addresses are of different families".into());
    }
    let (tx, rx) = pair(queues, "tx_queue:rx_queue")?;
    let (tr, when) = pair(timer, "tr:tm->when")?;
    let kind = u8::try_from(tr)
        .ok()
        .and_then(|t| TimerKind::from_code(t).ok())
        .ok_or_else(|| format!("unknown timer code {tr:X} in tr"))?;
    Ok(Some(
        Columns {
            family,
            state,
            local,
            peer,
            timer: kind,
            when,
            tx,
            rx,
            retrnsmt: hex(retrnsmt, "retrnsmt")?,
            uid: dec(uid, "uid")?,
            inode: dec(inode, "inode")?,
        }
        .socket(),
    ))
}

/// A line's columns as either reader takes them apart, raw: one place
/// turns them into a [`Socket`] (ticks to milliseconds, wide counters
/// clamped), so the two readers cannot disagree on it.
struct Columns {
    family: Family,
    state: TcpState,
    local: Endpoint,
    peer: Endpoint,
    timer: Option<TimerKind>,
    /// `tm->when`, USER_HZ ticks.
    when: u64,
    tx: u64,
    rx: u64,
    retrnsmt: u64,
    uid: u32,
    inode: u64,
}

impl Columns {
    fn socket(self) -> Socket {
        Socket {
            family: self.family,
            state: self.state,
            local: self.local,
            peer: self.peer,
            timer: self.timer.map(|kind| Timer {
                kind,
                ms: ticks_to_ms(self.when),
            }),
            retrans: u8::try_from(self.retrnsmt).unwrap_or(u8::MAX),
            recv_q: u32::try_from(self.rx).unwrap_or(u32::MAX),
            // A listener's backlog is not in /proc (tx_queue reads 0 there).
            send_q: if self.state == TcpState::Listen {
                SEND_Q_UNKNOWN
            } else {
                u32::try_from(self.tx).unwrap_or(u32::MAX - 1)
            },
            uid: self.uid,
            inode: self.inode,
            direction: None,
            netns: 0,
        }
    }
}

/// A line exactly as the kernel lays it out, read by position: `None` for
/// anything else, which [`parse_line`]'s general reader then parses (and
/// explains, if it is wrong), so both give the same answer. Tables of a
/// million lines spend most of their parse here.
///
/// tcp4_seq_show's helpers print `%4d: %08X:%04X %08X:%04X %02X
/// %08X:%08X %02X:%08lX %08X %5u %8d %lu ...` (get_tcp4_sock,
/// get_timewait4_sock, get_openreq4); tcp6 the same with 32 hex digits per
/// address.
fn parse_kernel_layout(line: &[u8], states: StateSet) -> Option<Option<Socket>> {
    // The slot: spaces, then digits, then ':'.
    let colon = line.iter().take(24).position(|c| *c == b':')?;
    let slot = line[..colon].trim_ascii_start();
    if slot.is_empty() || !slot.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let p = line.get(colon + 1..)?.strip_prefix(b" ")?;
    let (family, a) = match (p.get(8), p.get(32)) {
        (Some(b':'), _) => (Family::Inet, 8),
        (_, Some(b':')) => (Family::Inet6, 32),
        _ => return None,
    };
    // Separators at their places, then every fixed-width field.
    let q = 2 * a + 15;
    let seps = [
        (a, b':'),
        (a + 5, b' '),
        (2 * a + 6, b':'),
        (2 * a + 11, b' '),
        (2 * a + 14, b' '),
        (q + 8, b':'),
        (q + 17, b' '),
        (q + 20, b':'),
    ];
    if !seps.iter().all(|(i, c)| p.get(*i) == Some(c)) {
        return None;
    }
    let fixed = |at: usize, n: usize| parse_hex_exact(&p[at..at + n]);
    let state = TcpState::from_kernel(fixed(2 * a + 12, 2)? as u8)?;
    let addr = |at: usize| -> Option<IpAddr> {
        let word = |i: usize| Some((fixed(at + 8 * i, 8)? as u32).to_ne_bytes());
        Some(match family {
            Family::Inet => IpAddr::V4(Ipv4Addr::from(word(0)?)),
            Family::Inet6 => {
                let mut b = [0u8; 16];
                for i in 0..4 {
                    b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
                }
                IpAddr::V6(Ipv6Addr::from(b))
            }
        })
    };
    let local = Endpoint::new(addr(0)?, fixed(a + 1, 4)? as u16);
    let peer = Endpoint::new(addr(a + 6)?, fixed(2 * a + 7, 4)? as u16);
    let (tx, rx) = (fixed(q, 8)?, fixed(q + 9, 8)?);
    let kind = TimerKind::from_code(fixed(q + 18, 2)? as u8).ok()?;
    // `tm->when` is %08lX: 8 to 16 digits.
    let tail = &p[q + 21..];
    let end = tail.iter().position(|c| *c == b' ')?;
    if !(8..=16).contains(&end) {
        return None;
    }
    let when = parse_hex_exact(&tail[..end])?;
    // `%08X %5u %8d %lu`: retrnsmt, uid, timeout, inode. Only spaces part
    // them here; any other whitespace fails a field, and the general reader
    // takes the line.
    let mut rest = &tail[end..];
    let mut field = || {
        let start = rest.iter().position(|c| *c != b' ')?;
        let f = &rest[start..];
        let len = f.iter().position(|c| matches!(c, b' ' | b'\n'));
        let len = len.unwrap_or(f.len());
        rest = &f[len..];
        (len > 0).then_some(&f[..len])
    };
    let retrnsmt = parse_hex_exact(field().filter(|r| r.len() == 8)?)?;
    let uid = dec(field()?, "uid").ok()?;
    let timeout = field()?;
    let digits = timeout.strip_prefix(b"-").unwrap_or(timeout);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let inode = dec(field()?, "inode").ok()?;
    if !states.contains(state) {
        return Some(None);
    }
    Some(Some(
        Columns {
            family,
            state,
            local,
            peer,
            timer: kind,
            when,
            tx,
            rx,
            retrnsmt,
            uid,
            inode,
        }
        .socket(),
    ))
}

/// `tm->when` in USER_HZ ticks to milliseconds. Kernels before 4.x printed
/// an overdue timer as a negative long (ffff...); that means 0 left.
fn ticks_to_ms(ticks: u64) -> u32 {
    if ticks > i64::MAX as u64 {
        return 0;
    }
    u32::try_from(ticks.saturating_mul(1000) / USER_HZ).unwrap_or(u32::MAX)
}

/// A field for an error message: at most 40 bytes, and control characters
/// (NUL, ESC, ...) as U+FFFD, so the message stays one printable line.
fn show(b: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(&b[..b.len().min(40)])
        .chars()
        .map(|c| {
            if c.is_control() {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect();
    if b.len() > 40 {
        s + "..."
    } else {
        s
    }
}

/// 1 to 16 hex digits, read byte by byte: a table of a million lines holds
/// ten million. No sign: the kernel prints none (`%08X`), so a `+` is a sign
/// of a file that is not a copy of its table.
fn hex(b: &[u8], name: &str) -> Result<u64, String> {
    parse_hex(b).ok_or_else(|| format!("bad hex '{}' in {name}", show(b)))
}

fn parse_hex(b: &[u8]) -> Option<u64> {
    parse_hex_exact(b)
}

/// 1 to 16 hex digits and nothing else.
fn parse_hex_exact(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    let mut bad = 0;
    for &c in digits {
        let d = HEX_DIGIT[usize::from(c)];
        bad |= d;
        v = v << 4 | u64::from(d & 0xf);
    }
    (bad & 0x80 == 0).then_some(v)
}

/// Each byte's hex value, or 0x80 for a byte that is not a hex digit.
const HEX_DIGIT: [u8; 256] = {
    let mut t = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'A' as usize + i] = 10 + i as u8;
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// A decimal number: plain digits straight from the bytes, anything else
/// (and overflow) as `str::parse` judges it.
fn dec<T: std::str::FromStr + TryFrom<u64>>(b: &[u8], name: &str) -> Result<T, String> {
    if (1..=19).contains(&b.len()) && b.iter().all(u8::is_ascii_digit) {
        let v = b.iter().fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
        if let Ok(v) = T::try_from(v) {
            return Ok(v);
        }
    }
    // str::parse takes a leading `+`; the kernel never prints one.
    std::str::from_utf8(b)
        .ok()
        .filter(|s| !s.starts_with('+'))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad number '{}' in {name}", show(b)))
}

/// The whitespace-separated fields of a line.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.0.iter().position(|b| !b.is_ascii_whitespace())?;
        let rest = &self.0[start..];
        let end = rest
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(rest.len());
        self.0 = &rest[end..];
        Some(&rest[..end])
    }
}

fn pair(b: &[u8], name: &str) -> Result<(u64, u64), String> {
    let mut it = b.splitn(2, |c| *c == b':');
    match (it.next(), it.next()) {
        (Some(a), Some(c)) => Ok((hex(a, name)?, hex(c, name)?)),
        _ => Err(format!("expected '{name}', found '{}'", show(b))),
    }
}

/// `0100007F:0050` or `00000000000000000000000001000000:01BB`. The kernel
/// prints each 32-bit word of the (network-order) address with %08X, so the
/// words are in host byte order: decode them with the host's order.
fn endpoint(b: &[u8], name: &str) -> Result<(Family, Endpoint), String> {
    let bad = || format!("bad address '{}' in {name}", show(b));
    let colon = b.iter().position(|c| *c == b':').ok_or_else(bad)?;
    let (addr, port) = (&b[..colon], &b[colon + 1..]);
    if port.len() != 4 {
        return Err(bad());
    }
    let port = hex(port, name)? as u16;
    let word = |i: usize| -> Result<[u8; 4], String> {
        let w = hex(&addr[i * 8..i * 8 + 8], name)?;
        Ok((w as u32).to_ne_bytes())
    };
    match addr.len() {
        8 => {
            let a = Ipv4Addr::from(word(0)?);
            Ok((Family::Inet, Endpoint::new(IpAddr::V4(a), port)))
        }
        32 => {
            let mut a = [0u8; 16];
            for i in 0..4 {
                a[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let a = Ipv6Addr::from(a);
            Ok((Family::Inet6, Endpoint::new(IpAddr::V6(a), port)))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";

    fn one(line: &str) -> Socket {
        parse_line(line.as_bytes(), StateSet::ALL)
            .unwrap()
            .expect("a socket")
    }

    /// The positional reader agrees with the general one on every line of
    /// the captured tables, whatever states are asked for, and leaves lines
    /// off the kernel's layout to it.
    #[test]
    fn kernel_layout_reader_agrees_with_the_general_one() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/proc");
        let mut seen = 0;
        for name in ["tcp", "tcp6"] {
            let text = std::fs::read(format!("{dir}/{name}")).unwrap();
            for line in text.split_inclusive(|b| *b == b'\n').skip(1) {
                for states in [StateSet::ALL, StateSet::of(&[TcpState::TimeWait])] {
                    let fast = parse_kernel_layout(line, states).expect("kernel layout");
                    assert_eq!(Ok(fast), parse_fields(line, states));
                }
                seen += 1;
            }
        }
        assert!(seen > 10, "{seen} lines");
        let off_layout: &[&[u8]] = &[
            b"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 x 0 1\n",
            b"   0: 0100007F:1F90  00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n",
            b"   0: 0100007f:1f90 00000000:0000 0E 00000000:00000000 00:00000000 00000000 0 0 1\n",
            b"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 07:00000000 00000000 0 0 1\n",
            b"   0:\t0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n",
            b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt\n",
        ];
        for line in off_layout {
            assert_eq!(parse_kernel_layout(line, StateSet::ALL), None);
        }
    }

    #[test]
    fn newlines_are_found_eight_bytes_at_a_time() {
        let text = b"0123456789abcdef\n0123\n\n89abcdefghijklmnopq";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let b = &text[start..end];
                assert_eq!(find_newline(b), b.iter().position(|c| *c == b'\n'));
            }
        }
    }

    /// Lines split across reads, the longest line there may be, and one
    /// byte more, read through buffers of every small size.
    #[test]
    fn lines_straddling_reads_parse_alike() {
        let good =
            "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1";
        let longest = format!("{good:<MAX_LINE$}\n");
        let text = format!("{HEADER}\n{good}\n{longest}{good}\n");
        let whole = {
            let mut v = Vec::new();
            parse(text.as_bytes(), StateSet::ALL, &mut |s| {
                v.push(*s);
                Flow::Continue(())
            })
            .unwrap();
            v
        };
        assert_eq!(whole.len(), 1, "three copies of one socket count once");
        let too_long = format!("{HEADER}\n{good:<w$}\n{good}\n", w = MAX_LINE + 1);
        for cap in [1, 2, 7, 64, 150, 4096] {
            let mut v = Vec::new();
            let r = std::io::BufReader::with_capacity(cap, text.as_bytes());
            parse(r, StateSet::ALL, &mut |s| {
                v.push(*s);
                Flow::Continue(())
            })
            .unwrap();
            assert_eq!(v, whole, "buffer of {cap}");
            let r = std::io::BufReader::with_capacity(cap, too_long.as_bytes());
            let err = parse(r, StateSet::ALL, &mut |_| Flow::Continue(())).unwrap_err();
            assert_eq!(err.line, 2, "buffer of {cap}");
            assert!(err.what.contains("longer than"), "{err}");
            let cut = &too_long.as_bytes()[..HEADER.len() + 1 + MAX_LINE + 1];
            let r = std::io::BufReader::with_capacity(cap, cut);
            let err = parse(r, StateSet::ALL, &mut |_| Flow::Continue(())).unwrap_err();
            assert!(err.what.contains("longer than"), "{err}");
            let r = std::io::BufReader::with_capacity(cap, &cut[..cut.len() - 1]);
            let err = parse(r, StateSet::ALL, &mut |_| Flow::Continue(())).unwrap_err();
            assert!(err.what.contains("cut off"), "{err}");
        }
    }

    #[test]
    fn repeats_are_dropped_within_a_bounded_window() {
        let sock = |i: u32| {
            let peer = Endpoint::new(Ipv4Addr::LOCALHOST.into(), 80);
            Socket::new(
                Family::Inet,
                TcpState::TimeWait,
                Endpoint::new(Ipv4Addr::from(i).into(), 1),
                peer,
            )
        };
        let mut r = Recent::default();
        let n = RECENT as u32 + 10;
        for i in 0..n {
            assert!(r.first_time(&sock(i)));
        }
        assert_eq!((r.set.len(), r.order.len()), (RECENT, RECENT));
        // A run written again, and the oldest socket still held.
        assert!(!r.first_time(&sock(n - 1)));
        assert!(!r.first_time(&sock(10)));
        // Older ones have left the window: memory stays bounded.
        assert!(r.first_time(&sock(0)));
    }

    #[test]
    fn listener_v4() {
        let s = one("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000005 00:00000000 00000000   998        0 31337 1 0000000000000000 100 0 0 10 0");
        assert_eq!(s.family, Family::Inet);
        assert_eq!(s.state, TcpState::Listen);
        assert_eq!(s.local.to_string(), "127.0.0.1:8080");
        assert_eq!(s.peer.to_string(), "0.0.0.0:*");
        assert_eq!(
            (s.recv_q, s.send_q_known(), s.uid, s.inode),
            (5, None, 998, 31337)
        );
        assert_eq!(s.timer, None);
    }

    #[test]
    fn time_wait_v4_timer_in_ticks() {
        let s = one("   7: 0100007F:A2F4 0200007F:0050 06 00000000:00000000 03:00000FAB 00000000     0        0 0 3 0000000000000000");
        assert_eq!(s.state, TcpState::TimeWait);
        assert_eq!(s.peer.to_string(), "127.0.0.2:80");
        // 0xFAB = 4011 ticks of 10 ms.
        assert_eq!(s.timewait_ms(), Some(40_110));
        assert_eq!((s.uid, s.inode), (0, 0));
    }

    #[test]
    fn fin_wait2_minisocket() {
        let s = one("   2: 0100007F:9C40 0100007F:1F90 05 00000000:00000000 03:000016F9 00000000     0        0 0 3 0000000000000000");
        assert_eq!(s.state, TcpState::FinWait2);
        assert_eq!(s.timewait_ms(), Some(58_810));
    }

    #[test]
    fn keepalive_and_retransmit_timers() {
        let s = one("   1: 0100007F:0016 0100007F:D431 01 00000000:00000000 02:000AFC7F 00000003  1000        0 4242 1 0000000000000000 20 4 30 10 -1");
        assert_eq!(
            s.timer,
            Some(Timer {
                kind: TimerKind::Keepalive,
                ms: 7_199_990
            })
        );
        assert_eq!(s.retrans, 3);
    }

    #[test]
    fn overdue_timer_from_old_kernels_is_zero() {
        let s = one("   7: 0100007F:A2F4 0200007F:0050 06 00000000:00000000 03:FFFFFFFFFFFFFFF6 00000000     0        0 0 3 0000000000000000");
        assert_eq!(s.timewait_ms(), Some(0));
    }

    #[test]
    fn ipv6_loopback_and_mapped() {
        let s = one("   0: 00000000000000000000000001000000:01BB 00000000000000000000000001000000:D6D8 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 30 10 -1");
        assert_eq!(s.family, Family::Inet6);
        assert_eq!(s.local.to_string(), "[::1]:443");
        let m = one("   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:B5C2 06 00000000:00000000 03:00001000 00000000     0        0 0 3 0000000000000000");
        assert_eq!(m.local.to_string(), "[::ffff:127.0.0.1]:8080");
        assert_eq!(m.peer.addr.to_string(), "::ffff:127.0.0.1");
    }

    #[test]
    fn header_blank_and_unwanted_states_are_skipped() {
        assert_eq!(parse_line(HEADER.as_bytes(), StateSet::ALL), Ok(None));
        assert_eq!(parse_line(b"\n", StateSet::ALL), Ok(None));
        let listen = b"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000   0        0 1 1";
        let tw_only = StateSet::of(&[TcpState::TimeWait]);
        assert_eq!(parse_line(listen, tw_only), Ok(None));
    }

    #[test]
    fn corrupt_lines_say_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            ("   0: 0100007F:1F90 00000000:0000 0E 00000000:00000000 00:00000000 00000000 0 0 1", "unknown TCP state 0x0E"),
            ("   0: 0100007F:1F90 00000000:0000 0A", "missing the tx_queue:rx_queue column"),
            ("   0: 0100007G:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", "bad hex"),
            ("   0: 0100007F1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", "bad address"),
            ("   0: 0100007F:1F90 0A 00000000:00000000 00:00000000 00000000 0 0 1 1", "a column is missing"),
            ("   0: 0100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", "different families"),
            ("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 07:00000000 00000000 0 0 1", "unknown timer"),
            ("   0: 0100007F:1F90 00000000:0000 0A 0000000000000000 00:00000000 00000000 0 0 1", "tx_queue:rx_queue"),
            ("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 x 0 1", "bad number 'x' in uid"),
            ("garbage", "slot number"),
        ];
        for (line, want) in cases {
            let err = parse_line(line.as_bytes(), StateSet::ALL).unwrap_err();
            assert!(err.contains(want), "{line}\n  -> {err}");
        }
    }

    /// Issue 12 item 11: `+`-prefixed hex (from_str_radix takes a sign), a `+` on a decimal,
    /// and a slot like `x:` were accepted silently.
    #[test]
    fn signs_and_slots_the_kernel_never_prints_are_refused() {
        let good =
            "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1";
        assert!(parse_line(good.as_bytes(), StateSet::ALL)
            .unwrap()
            .is_some());
        let cases = [
            (good.replace("0100007F:1F90", "+100007F:1F90"), "bad hex"),
            (good.replace("0100007F:1F90", "0100007F:+F90"), "bad hex"),
            (good.replace(" 0A ", " +A "), "bad hex"),
            (good.replace("00:00000000 ", "00:+0000000 "), "bad hex"),
            (
                good.replace("00000000 0 0 1", "00000000 +0 0 1"),
                "bad number '+0'",
            ),
            (good.replace("   0:", "   x:"), "slot number"),
            (good.replace("   0:", "   :"), "slot number"),
            (good.replace("   0:", "  +0:"), "slot number"),
        ];
        for (line, want) in &cases {
            let err = parse_line(line.as_bytes(), StateSet::ALL).unwrap_err();
            assert!(err.contains(want), "{line}\n  -> {err}");
        }
    }

    #[test]
    fn parse_numbers_lines_and_rejects_a_cut_last_line() {
        let text = format!(
            "{HEADER}\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n   1: 0100007F:1F9"
        );
        let mut n = 0;
        let err = parse(text.as_bytes(), StateSet::ALL, &mut |_| {
            n += 1;
            Flow::Continue(())
        })
        .unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.what.contains("cut off"), "{err}");
        let good =
            "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n";
        let bytes = [
            HEADER.as_bytes(),
            b"\n",
            good.as_bytes(),
            b"\xff\xfe garbage\n",
        ]
        .concat();
        let err = parse(&bytes[..], StateSet::ALL, &mut |_| {
            n += 1;
            Flow::Continue(())
        })
        .unwrap_err();
        assert!(err.what.contains("slot number"), "{err}");
        assert_eq!(err.line, 3);
    }
}
