//! ss's filter language: `dport = :443`, `( sport = :80 or sport = :443 )
//! and dst 10.0.0.0/8`, `sport gt :1024`, `not src [::1]`. Parsed into one
//! expression that is evaluated in user space (for every source) and compiled
//! to INET_DIAG_REQ_BYTECODE so the kernel sends only matching sockets.
//!
//! The grammar follows iproute2's misc/ssfilter.y: `or` binds loosest, then
//! `and` (also implied between two conditions), then `not`; `state NAME` and
//! `exclude NAME` may lead the expression.

use std::net::IpAddr;

use crate::filter::parse_state_word;
use crate::model::{Cidr, PortRange, Socket, StateSet};

/// Which end of the connection a condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Src,
    Dst,
}

/// A port comparison the kernel can run (`>` and `<` are negations of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ge,
    Le,
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `sport >= :1024`, `dport = :443`.
    Port {
        side: Side,
        cmp: Cmp,
        port: u16,
    },
    /// `dst 10.0.0.0/8`, `src [::1]:80`, `dst :443`: an address block, a
    /// port, or both (an absent part matches anything).
    Host {
        side: Side,
        net: Option<Cidr>,
        port: Option<u16>,
    },
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    pub fn and(self, other: Expr) -> Expr {
        Expr::And(Box::new(self), Box::new(other))
    }

    pub fn or(self, other: Expr) -> Expr {
        Expr::Or(Box::new(self), Box::new(other))
    }

    pub fn negate(self) -> Expr {
        Expr::Not(Box::new(self))
    }

    /// A port range as an expression: `= lo` or `>= lo and <= hi`.
    pub fn port_range(side: Side, r: PortRange) -> Expr {
        if r.lo == r.hi {
            return Expr::Port {
                side,
                cmp: Cmp::Eq,
                port: r.lo,
            };
        }
        Expr::Port {
            side,
            cmp: Cmp::Ge,
            port: r.lo,
        }
        .and(Expr::Port {
            side,
            cmp: Cmp::Le,
            port: r.hi,
        })
    }

    pub fn matches(&self, s: &Socket) -> bool {
        match self {
            Expr::Port { side, cmp, port } => {
                let p = end(s, *side).port;
                match cmp {
                    Cmp::Eq => p == *port,
                    Cmp::Ge => p >= *port,
                    Cmp::Le => p <= *port,
                }
            }
            Expr::Host { side, net, port } => {
                let e = end(s, *side);
                port.is_none_or(|p| p == e.port) && net.is_none_or(|n| n.contains(e.addr))
            }
            Expr::Not(a) => !a.matches(s),
            Expr::And(a, b) => a.matches(s) && b.matches(s),
            Expr::Or(a, b) => a.matches(s) || b.matches(s),
        }
    }

    /// Ports the whole expression requires exactly (`sport = :N` in a
    /// top-level conjunction), for the request's idiag_sport/idiag_dport,
    /// which the kernel checks before any bytecode.
    pub fn exact_ports(&self) -> (Option<u16>, Option<u16>) {
        match self {
            Expr::Port {
                side,
                cmp: Cmp::Eq,
                port,
            } => match side {
                Side::Src => (Some(*port), None),
                Side::Dst => (None, Some(*port)),
            },
            Expr::And(a, b) => {
                let (a, b) = (a.exact_ports(), b.exact_ports());
                (a.0.or(b.0), a.1.or(b.1))
            }
            _ => (None, None),
        }
    }
}

fn end(s: &Socket, side: Side) -> crate::model::Endpoint {
    match side {
        Side::Src => s.local,
        Side::Dst => s.peer,
    }
}

/// What the trailing words of a command line asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// From leading `state NAME` / `exclude NAME` words, if any.
    pub states: Option<StateSet>,
    pub expr: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    /// Byte offset in the joined expression, for error messages.
    at: usize,
}

/// Operator characters: a run of them is one token (`>=`, `&&`, `!=`).
const OPS: &[char] = &['=', '!', '<', '>', '&', '|'];

fn tokenize(src: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' {
            chars.next();
            out.push(Token {
                text: c.to_string(),
                at: i,
            });
        } else if OPS.contains(&c) {
            let mut text = String::new();
            while let Some(&(_, c)) = chars.peek() {
                // `!` starts a new token after `=`/`<`/`>`: `>=!` is not a word.
                if !OPS.contains(&c) || (c == '!' && !text.is_empty()) {
                    break;
                }
                text.push(c);
                chars.next();
            }
            out.push(Token { text, at: i });
        } else {
            let mut text = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() || c == '(' || c == ')' || OPS.contains(&c) {
                    break;
                }
                text.push(c);
                chars.next();
            }
            out.push(Token { text, at: i });
        }
    }
    out
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    service: &'a dyn Fn(&str) -> Option<u16>,
}

/// Parses the words after a command (`dport = :443`, `'( sport = :80 or
/// sport = :443 )'`). `service` resolves port names (`ssh`, `https`).
pub fn parse<S: AsRef<str>>(
    words: &[S],
    service: &dyn Fn(&str) -> Option<u16>,
) -> Result<Parsed, String> {
    let src = words
        .iter()
        .map(|w| w.as_ref())
        .collect::<Vec<_>>()
        .join(" ");
    let mut p = Parser {
        toks: tokenize(&src),
        src: &src,
        pos: 0,
        service,
    };
    let states = p.states()?;
    let expr = if p.peek().is_some() {
        Some(p.or()?)
    } else {
        None
    };
    if let Some(t) = p.peek() {
        return Err(p.error_at(t, "expected 'and', 'or' or the end here"));
    }
    Ok(Parsed { states, expr })
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn peek_is(&self, words: &[&str]) -> bool {
        self.peek()
            .is_some_and(|t| words.iter().any(|w| t.text.eq_ignore_ascii_case(w)))
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn error_at(&self, t: &Token, what: &str) -> String {
        format!(
            "filter: at '{}' (column {} of \"{}\"): {what}",
            t.text,
            t.at + 1,
            self.src
        )
    }

    fn error_end(&self, what: &str) -> String {
        format!("filter: at the end of \"{}\": {what}", self.src)
    }

    fn expect_word(&mut self, what: &str) -> Result<Token, String> {
        match self.next() {
            Some(t) => Ok(t),
            None => Err(self.error_end(what)),
        }
    }

    /// Leading `state NAME` / `exclude NAME` pairs, as ss takes them.
    fn states(&mut self) -> Result<Option<StateSet>, String> {
        let mut include: Option<StateSet> = None;
        let mut exclude = StateSet::EMPTY;
        while self.peek_is(&["state", "exclude", "excl"]) {
            let kw = self.next().expect("peeked");
            let name = self.expect_word("expected a state name (time-wait, established ...)")?;
            let set = parse_state_word(&name.text).map_err(|e| self.error_at(&name, &e))?;
            if kw.text.eq_ignore_ascii_case("state") {
                include = Some(include.unwrap_or(StateSet::EMPTY).union(set));
            } else {
                exclude = exclude.union(set);
            }
        }
        if include.is_none() && exclude.is_empty() {
            return Ok(None);
        }
        let base = include.unwrap_or(StateSet::ALL);
        Ok(Some(base.minus(exclude)))
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.peek_is(&["or", "||", "|"]) {
            self.next();
            e = e.or(self.and()?);
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        loop {
            if self.peek_is(&["and", "&&", "&"]) {
                self.next();
            } else if self.peek().is_none() || self.peek_is(&["or", "||", "|", ")"]) {
                return Ok(e);
            }
            // Two conditions side by side are joined by `and`, as in ss.
            e = e.and(self.unary()?);
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        let Some(t) = self.next() else {
            return Err(
                self.error_end("expected a condition (src, dst, sport, dport), 'not' or '('")
            );
        };
        let word = t.text.to_ascii_lowercase();
        match word.as_str() {
            "not" | "!" => Ok(self.unary()?.negate()),
            "(" => {
                let e = self.or()?;
                match self.next() {
                    Some(c) if c.text == ")" => Ok(e),
                    Some(c) => Err(self.error_at(&c, "expected ')'")),
                    None => Err(self.error_end("expected ')' to close the '('")),
                }
            }
            "src" | "dst" => {
                let side = if word == "src" { Side::Src } else { Side::Dst };
                if self.peek_is(&["=", "==", "eq"]) {
                    self.next();
                }
                let h = self
                    .expect_word("expected an address, a block or :PORT (10.0.0.0/8, [::1]:80)")?;
                let (net, port) = self.host(&h)?;
                Ok(Expr::Host { side, net, port })
            }
            "sport" | "dport" => {
                let side = if word == "sport" {
                    Side::Src
                } else {
                    Side::Dst
                };
                // ssfilter.y: `>` is `not <=`, `<` is `not >=`, `!=` is `not =`;
                // no operator means `=`.
                let op = self.peek().map(|t| t.text.to_ascii_lowercase());
                let (cmp, negate, given) = match op.as_deref() {
                    Some("=" | "==" | "eq") => (Cmp::Eq, false, true),
                    Some("!=" | "ne" | "neq") => (Cmp::Eq, true, true),
                    Some(">=" | "ge" | "geq") => (Cmp::Ge, false, true),
                    Some("<=" | "le" | "leq") => (Cmp::Le, false, true),
                    Some(">" | "gt") => (Cmp::Le, true, true),
                    Some("<" | "lt") => (Cmp::Ge, true, true),
                    _ => (Cmp::Eq, false, false),
                };
                if given {
                    self.next();
                }
                let p = self.expect_word("expected a port such as :443")?;
                let port = self.port_only(&p)?;
                let e = Expr::Port { side, cmp, port };
                Ok(if negate { e.negate() } else { e })
            }
            "state" | "exclude" | "excl" => Err(self.error_at(
                &t,
                "state and exclude go before the rest of the expression, as in ss",
            )),
            "autobound" | "dev" | "fwmark" | "cgroup" | "inode" => Err(self.error_at(
                &t,
                "not supported by tw; it filters on src, dst, sport, dport and states",
            )),
            _ => Err(self.error_at(
                &t,
                "expected a condition (src, dst, sport, dport), 'not' or '('",
            )),
        }
    }

    /// `:443`, `443`, `:https`, `*:443`.
    fn port_only(&self, t: &Token) -> Result<u16, String> {
        let text = t.text.strip_prefix('*').unwrap_or(&t.text);
        let text = text.strip_prefix(':').unwrap_or(text);
        self.port(t, text)?
            .ok_or_else(|| self.error_at(t, "expected a port, not '*'"))
    }

    /// A port number, a service name, or `*` (any: `None`).
    fn port(&self, t: &Token, text: &str) -> Result<Option<u16>, String> {
        if text == "*" {
            return Ok(None);
        }
        if let Ok(p) = text.parse::<u16>() {
            return Ok(Some(p));
        }
        if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            if let Some(p) = (self.service)(text) {
                return Ok(Some(p));
            }
            return Err(self.error_at(t, &format!("unknown service '{text}'; use the port number")));
        }
        Err(self.error_at(t, "expected a port such as :443"))
    }

    /// `10.0.0.1`, `10.0.0.0/8`, `10.0.0.1:443`, `[::1]`, `[::1]:80`,
    /// `[fd00::]/8`, `fd00::/8`, `:443`, `*:443`, `*`.
    fn host(&self, t: &Token) -> Result<(Option<Cidr>, Option<u16>), String> {
        let text = t.text.as_str();
        let cidr = |s: &str| -> Result<Option<Cidr>, String> {
            if s.is_empty() || s == "*" {
                return Ok(None);
            }
            s.parse::<Cidr>()
                .map(Some)
                .map_err(|e| self.error_at(t, &e))
        };
        if let Some(rest) = text.strip_prefix('[') {
            // [v6]/len:port or [v6]:port or [v6]/len
            let Some((inside, after)) = rest.split_once(']') else {
                return Err(self.error_at(t, "expected ']' after an IPv6 address"));
            };
            let (prefix, port) = match after.split_once(':') {
                Some((p, port)) => (p, self.port(t, port)?),
                None => (after, None),
            };
            return Ok((cidr(&format!("{inside}{prefix}"))?, port));
        }
        // A bare address or block, IPv6 included, has no port.
        if text.parse::<Cidr>().is_ok() {
            return Ok((cidr(text)?, None));
        }
        match text.rsplit_once(':') {
            Some((addr, port)) => Ok((cidr(addr)?, self.port(t, port)?)),
            None => Ok((cidr(text)?, None)),
        }
    }
}

// --- INET_DIAG_REQ_BYTECODE (include/uapi/linux/inet_diag.h) -------------

const BC_JMP: u8 = 1;
const BC_S_GE: u8 = 2;
const BC_S_LE: u8 = 3;
const BC_D_GE: u8 = 4;
const BC_D_LE: u8 = 5;
const BC_S_COND: u8 = 7;
const BC_D_COND: u8 = 8;

/// One `struct inet_diag_bc_op`: code, yes (u8), no (u16). Jumps are byte
/// offsets from this op.
fn op(code: u8, yes: u8, no: u16) -> [u8; 4] {
    let n = no.to_ne_bytes();
    [code, yes, n[0], n[1]]
}

/// A compiled fragment. Convention (as ss's ssfilter_bytecompile): when the
/// condition holds, execution runs to the fragment's end; when it does not,
/// it jumps 4 bytes past the end. The kernel (inet_diag_bc_run) accepts a
/// socket when execution ends exactly at the program's end.
struct Frag {
    code: Vec<u8>,
    /// Offsets of ops whose `no` jumps to end + 4 (to relocate in `and`).
    fails: Vec<usize>,
}

impl Expr {
    /// Compiles to bytecode, or `None` when it would not fit the format's
    /// 16-bit jumps (then the filter runs in user space only).
    pub fn bytecode(&self) -> Option<Vec<u8>> {
        let f = self.compile()?;
        (f.code.len() <= usize::from(u16::MAX) - 8).then_some(f.code)
    }

    fn compile(&self) -> Option<Frag> {
        Some(match self {
            Expr::Port { side, cmp, port } => {
                // Equality as a hostcond with no address: valid on every
                // kernel (S_EQ/D_EQ came later).
                match cmp {
                    Cmp::Eq => hostcond(*side, None, Some(*port)),
                    Cmp::Ge | Cmp::Le => {
                        let code = match (side, cmp) {
                            (Side::Src, Cmp::Ge) => BC_S_GE,
                            (Side::Src, _) => BC_S_LE,
                            (Side::Dst, Cmp::Ge) => BC_D_GE,
                            (Side::Dst, _) => BC_D_LE,
                        };
                        let mut code_bytes = op(code, 8, 12).to_vec();
                        code_bytes.extend_from_slice(&op(0, 0, *port));
                        Frag {
                            code: code_bytes,
                            fails: vec![0],
                        }
                    }
                }
            }
            Expr::Host { side, net, port } => hostcond(*side, *net, *port),
            Expr::And(a, b) => {
                let (mut a, b) = (a.compile()?, b.compile()?);
                let shift = b.code.len();
                for &at in &a.fails {
                    relocate(&mut a.code, at, shift)?;
                }
                let base = a.code.len();
                a.fails.extend(b.fails.iter().map(|f| f + base));
                a.code.extend_from_slice(&b.code);
                a
            }
            Expr::Or(a, b) => {
                // a; JMP over b when a held; b. a's failures land on b.
                let (mut a, b) = (a.compile()?, b.compile()?);
                let over = u16::try_from(4 + b.code.len()).ok()?;
                a.code.extend_from_slice(&op(BC_JMP, 4, over));
                let base = a.code.len();
                Frag {
                    fails: b.fails.iter().map(|f| f + base).collect(),
                    code: [a.code, b.code].concat(),
                }
            }
            Expr::Not(a) => {
                // a; JMP to end + 4. a's failures (end of a + 4) fall on the
                // new end: success.
                let mut a = a.compile()?;
                let at = a.code.len();
                a.code.extend_from_slice(&op(BC_JMP, 4, 8));
                Frag {
                    code: a.code,
                    fails: vec![at],
                }
            }
        })
    }
}

/// Moves the `no` jump of the op at `at` `shift` bytes further.
fn relocate(code: &mut [u8], at: usize, shift: usize) -> Option<()> {
    let no = u16::from_ne_bytes([code[at + 2], code[at + 3]]);
    let no = u16::try_from(usize::from(no) + shift).ok()?;
    code[at + 2..at + 4].copy_from_slice(&no.to_ne_bytes());
    Some(())
}

/// `struct inet_diag_hostcond { u8 family; u8 prefix_len; int port;
/// __be32 addr[]; }` after its op. Port -1 matches any port. An AF_INET
/// block also matches IPv4-mapped addresses of AF_INET6 sockets in the
/// kernel, as in [`Cidr::contains`].
fn hostcond(side: Side, net: Option<Cidr>, port: Option<u16>) -> Frag {
    let code = match side {
        Side::Src => BC_S_COND,
        Side::Dst => BC_D_COND,
    };
    let (family, prefix, addr): (u8, u8, Vec<u8>) = match net {
        None => (libc::AF_UNSPEC as u8, 0, Vec::new()),
        Some(Cidr {
            addr: IpAddr::V4(a),
            prefix,
        }) => (libc::AF_INET as u8, prefix, a.octets().to_vec()),
        Some(Cidr {
            addr: IpAddr::V6(a),
            prefix,
        }) => (libc::AF_INET6 as u8, prefix, a.octets().to_vec()),
    };
    let len = 4 + 8 + addr.len();
    let mut c = op(code, len as u8, (len + 4) as u16).to_vec();
    c.extend_from_slice(&[family, prefix, 0, 0]);
    c.extend_from_slice(&port.map_or(-1i32, i32::from).to_ne_bytes());
    c.extend_from_slice(&addr);
    Frag {
        code: c,
        fails: vec![0],
    }
}

/// Runs bytecode over a socket as the kernel does (inet_diag_bc_run), for
/// tests: proves the compiled program and [`Expr::matches`] agree.
pub fn run_bytecode(bc: &[u8], s: &Socket) -> bool {
    let mut at: isize = 0;
    let len = bc.len() as isize;
    while at < len {
        let i = at as usize;
        let (code, yes, no) = (
            bc[i],
            isize::from(bc[i + 1]),
            u16::from_ne_bytes([bc[i + 2], bc[i + 3]]) as isize,
        );
        let port_arg = || u16::from_ne_bytes([bc[i + 6], bc[i + 7]]);
        let ok = match code {
            BC_JMP => false,
            BC_S_GE => s.local.port >= port_arg(),
            BC_S_LE => s.local.port <= port_arg(),
            BC_D_GE => s.peer.port >= port_arg(),
            BC_D_LE => s.peer.port <= port_arg(),
            BC_S_COND | BC_D_COND => {
                let e = if code == BC_S_COND { s.local } else { s.peer };
                let family = bc[i + 4];
                let prefix = bc[i + 5];
                let port = i32::from_ne_bytes([bc[i + 8], bc[i + 9], bc[i + 10], bc[i + 11]]);
                let addr = &bc[i + 12..i + usize::from(bc[i + 1])];
                let net = match family {
                    f if f == libc::AF_INET as u8 => Some(Cidr {
                        addr: IpAddr::from(<[u8; 4]>::try_from(addr).expect("4 bytes")),
                        prefix,
                    }),
                    f if f == libc::AF_INET6 as u8 => Some(Cidr {
                        addr: IpAddr::from(<[u8; 16]>::try_from(addr).expect("16 bytes")),
                        prefix,
                    }),
                    _ => None,
                };
                (port == -1 || port == i32::from(e.port)) && net.is_none_or(|n| n.contains(e.addr))
            }
            other => panic!("op {other} is never emitted"),
        };
        at += if ok { yes } else { no };
    }
    at == len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Family, TcpState};

    fn services(name: &str) -> Option<u16> {
        match name {
            "ssh" => Some(22),
            "https" => Some(443),
            _ => None,
        }
    }

    fn p(src: &str) -> Result<Parsed, String> {
        parse(&src.split(' ').collect::<Vec<_>>(), &services)
    }

    fn e(src: &str) -> Expr {
        p(src).unwrap().expr.unwrap()
    }

    fn sock(local: &str, peer: &str) -> Socket {
        let ep = |s: &str| {
            let sa: std::net::SocketAddr = s.parse().unwrap();
            Endpoint::new(sa.ip(), sa.port())
        };
        let family = if local.starts_with('[') {
            Family::Inet6
        } else {
            Family::Inet
        };
        Socket::new(family, TcpState::Established, ep(local), ep(peer))
    }

    fn samples() -> Vec<Socket> {
        vec![
            sock("10.0.0.1:80", "10.1.2.3:40000"),
            sock("10.0.0.1:443", "192.168.1.9:50000"),
            sock("10.0.0.1:41000", "10.0.0.9:443"),
            sock("127.0.0.1:22", "127.0.0.1:33333"),
            sock("[::1]:8080", "[::1]:51000"),
            sock("[::ffff:10.0.0.1]:80", "[::ffff:10.2.0.1]:1234"),
            sock("[fd00::1]:443", "[fd00::9]:1025"),
            sock("0.0.0.0:80", "0.0.0.0:0"),
        ]
    }

    /// Each expression with the sockets of `samples()` it must select.
    const CASES: &[(&str, &[usize])] = &[
        ("dport = :443", &[2]),
        ("dport == 443", &[2]),
        ("dport eq :https", &[2]),
        ("sport = :80", &[0, 5, 7]),
        ("sport != :80", &[1, 2, 3, 4, 6]),
        ("sport gt :1024", &[2, 4]),
        ("sport > :1024", &[2, 4]),
        ("sport >= :8080", &[2, 4]),
        ("sport lt :443", &[0, 3, 5, 7]),
        ("sport <= :443", &[0, 1, 3, 5, 6, 7]),
        (
            "( sport = :80 or sport = :443 ) and dst 10.0.0.0/8",
            &[0, 5],
        ),
        ("(sport = :80 || sport = :443) && dst 10.0.0.0/8", &[0, 5]),
        ("sport = :80 or sport = :443 and dst 10.0.0.0/8", &[0, 5, 7]),
        ("not dst 10.0.0.0/8", &[1, 3, 4, 6, 7]),
        ("! src 127.0.0.1", &[0, 1, 2, 4, 5, 6, 7]),
        ("src [::1]", &[4]),
        ("src [::1]:8080", &[4]),
        ("src [fd00::]/8", &[6]),
        ("src fd00::/8", &[6]),
        ("dst :443", &[2]),
        ("dst *:443", &[2]),
        ("dst 10.0.0.9:443", &[2]),
        ("dst 10.0.0.9:80", &[]),
        ("src 10.0.0.1", &[0, 1, 2, 5]),
        ("dst 192.168.1.9", &[1]),
        ("sport = :22 dport = :33333", &[3]),
        ("sport ge :1 and sport le :100", &[0, 3, 5, 7]),
        ("not ( sport = :80 or dport = :443 )", &[1, 3, 4, 6]),
        ("not not sport = :22", &[3]),
        ("dport = :0", &[7]),
        ("src 0.0.0.0/0", &[0, 1, 2, 3, 5, 7]),
        ("src ::/0", &[4, 5, 6]),
    ];

    #[test]
    fn expressions_select_what_ss_would() {
        let socks = samples();
        for (src, want) in CASES {
            let ex = e(src);
            let got: Vec<usize> = (0..socks.len())
                .filter(|&i| ex.matches(&socks[i]))
                .collect();
            assert_eq!(&got, want, "{src}");
        }
    }

    #[test]
    fn bytecode_agrees_with_user_space() {
        let socks = samples();
        for (src, _) in CASES {
            let ex = e(src);
            let bc = ex.bytecode().expect("fits");
            assert_eq!(bc.len() % 4, 0, "{src}");
            for s in &socks {
                assert_eq!(run_bytecode(&bc, s), ex.matches(s), "{src} on {s:?}");
            }
        }
    }

    #[test]
    fn bytecode_layout_matches_the_kernel_structs() {
        // dport >= 1024: D_GE {yes 8, no 12}, then {0, 0, 1024}.
        let bc = e("dport >= :1024").bytecode().unwrap();
        assert_eq!(bc.len(), 8);
        assert_eq!(&bc[..2], &[BC_D_GE, 8]);
        assert_eq!(u16::from_ne_bytes([bc[2], bc[3]]), 12);
        assert_eq!(u16::from_ne_bytes([bc[6], bc[7]]), 1024);
        // dst 10.0.0.0/8:443: D_COND {16, 20} + hostcond {AF_INET, 8, 443, 10.0.0.0}.
        let bc = e("dst 10.0.0.0/8:443").bytecode().unwrap();
        assert_eq!(bc.len(), 16);
        assert_eq!(&bc[..2], &[BC_D_COND, 16]);
        assert_eq!(&bc[4..6], &[libc::AF_INET as u8, 8]);
        assert_eq!(i32::from_ne_bytes([bc[8], bc[9], bc[10], bc[11]]), 443);
        assert_eq!(&bc[12..16], &[10, 0, 0, 0]);
        // IPv6: 4 + 8 + 16 bytes; any port is -1.
        let bc = e("src [::1]").bytecode().unwrap();
        assert_eq!(bc.len(), 28);
        assert_eq!(i32::from_ne_bytes([bc[8], bc[9], bc[10], bc[11]]), -1);
    }

    #[test]
    fn exact_ports_from_top_level_conjunctions() {
        assert_eq!(e("dport = :443").exact_ports(), (None, Some(443)));
        assert_eq!(
            e("sport = :80 and dst 10.0.0.0/8").exact_ports(),
            (Some(80), None)
        );
        assert_eq!(e("sport = :80 or sport = :443").exact_ports(), (None, None));
        assert_eq!(e("not sport = :80").exact_ports(), (None, None));
        assert_eq!(e("sport >= :80").exact_ports(), (None, None));
    }

    #[test]
    fn leading_state_and_exclude() {
        use TcpState::*;
        let got = p("state time-wait state close-wait dport = :443").unwrap();
        assert_eq!(got.states, Some(StateSet::of(&[TimeWait, CloseWait])));
        assert!(got.expr.is_some());
        let got = p("exclude time-wait").unwrap();
        assert_eq!(
            got.states,
            Some(StateSet::ALL.minus(StateSet::of(&[TimeWait])))
        );
        assert_eq!(got.expr, None);
        assert_eq!(p("").unwrap(), Parsed::default());
    }

    #[test]
    fn syntax_errors_point_at_the_token() {
        let cases: &[(&str, &str)] = &[
            (
                "dport = foo",
                "at 'foo' (column 9 of \"dport = foo\"): unknown service 'foo'",
            ),
            ("dport = :99999", "at ':99999' (column 9"),
            ("sport = :80 or", "at the end of"),
            ("( sport = :80", "expected ')' to close"),
            ("sport = :80 )", "at ')' (column 13"),
            ("dst 10.0.0.0/33", "prefix length"),
            ("dst [::1:80", "expected ']'"),
            ("port = :80", "at 'port' (column 1"),
            ("autobound", "not supported"),
            ("sport = :80 state listening", "go before"),
            ("state bogus", "unknown state 'bogus'"),
            ("dport =", "at the end of"),
        ];
        for (src, want) in cases {
            let err = p(src).unwrap_err();
            assert!(err.contains(want), "{src}: {err}");
            assert!(err.starts_with("filter: "), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }

    #[test]
    fn words_may_be_split_or_joined() {
        // `tw ls '( sport = :80 )'` and `tw ls ( sport = :80 )` and glued parens.
        let joined = parse(&["( sport = :80 or sport = :443 )"], &services).unwrap();
        let split = parse(
            &["(", "sport", "=", ":80", "or", "sport", "=", ":443", ")"],
            &services,
        )
        .unwrap();
        let glued = parse(&["(sport=:80", "or", "sport=:443)"], &services).unwrap();
        assert_eq!(joined, split);
        assert_eq!(joined, glued);
    }
}
