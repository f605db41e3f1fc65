//! ss's filter language: `dport = :443`, `( sport = :80 or sport = :443 )
//! and dst 10.0.0.0/8`, `sport gt :1024`, `not src [::1]`. Parsed into one
//! expression that is evaluated in user space (for every source) and compiled
//! to INET_DIAG_REQ_BYTECODE so the kernel sends only matching sockets.
//!
//! The grammar follows iproute2's misc/ssfilter.y: `or` binds loosest, then
//! `and` (also implied between two conditions), then `not`; `state NAME` and
//! `exclude NAME` may lead the expression.

use crate::model::state::parse_state_word;
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
    /// `-x`: `src PATTERN` matches a UNIX socket's path, `dst PATTERN` its
    /// peer's, as shell globs (fnmatch(3), case folded as ss does).
    Path {
        side: Side,
        glob: String,
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
            // A TCP or UDP socket has no path (and `parse_unix` alone
            // writes this condition).
            Expr::Path { .. } => false,
            Expr::Not(a) => !a.matches(s),
            Expr::And(a, b) => a.matches(s) && b.matches(s),
            Expr::Or(a, b) => a.matches(s) || b.matches(s),
        }
    }

    /// Whether a UNIX socket bound to `path` (`None`: unbound) whose peer
    /// is bound to `peer_path` matches. As ss's unix_match (misc/ss.c): an
    /// unbound end is the empty string, so `dst *` matches every socket.
    /// Address and port conditions never match a UNIX socket.
    pub fn matches_unix(&self, path: Option<&str>, peer_path: Option<&str>) -> bool {
        match self {
            Expr::Path { side, glob } => {
                let text = match side {
                    Side::Src => path,
                    Side::Dst => peer_path,
                };
                glob_match(glob.as_bytes(), text.unwrap_or("").as_bytes())
            }
            Expr::Port { .. } | Expr::Host { .. } => false,
            Expr::Not(a) => !a.matches_unix(path, peer_path),
            Expr::And(a, b) => a.matches_unix(path, peer_path) && b.matches_unix(path, peer_path),
            Expr::Or(a, b) => a.matches_unix(path, peer_path) || b.matches_unix(path, peer_path),
        }
    }

    /// Whether any condition is on a path (`side`: on that end only).
    pub fn has_path(&self, side: Option<Side>) -> bool {
        match self {
            Expr::Path { side: s, .. } => side.is_none_or(|w| w == *s),
            Expr::Port { .. } | Expr::Host { .. } => false,
            Expr::Not(a) => a.has_path(side),
            Expr::And(a, b) | Expr::Or(a, b) => a.has_path(side) || b.has_path(side),
        }
    }

    /// Whether any condition is on an address or a port.
    pub fn has_inet(&self) -> bool {
        match self {
            Expr::Port { .. } | Expr::Host { .. } => true,
            Expr::Path { .. } => false,
            Expr::Not(a) => a.has_inet(),
            Expr::And(a, b) | Expr::Or(a, b) => a.has_inet() || b.has_inet(),
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

/// fnmatch(3) with no flags but FNM_CASEFOLD, as current ss matches
/// UNIX paths: `*` any run of bytes, `/` included; `?` any one byte;
/// `[a-z]`, `[!x]` / `[^x]` a set; `\` takes the next byte as it is.
/// Iterative, with one backtrack point per `*`, so no pattern is
/// exponential.
pub fn glob_match(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: (pattern after it, text taken).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => match class(pat, p, text[t]) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                // No closing `]`: a literal `[`.
                None => (text[t] == b'[').then_some(p + 1),
            },
            Some(b'\\') if p + 1 < pat.len() => {
                fold(pat[p + 1]).eq(&fold(text[t])).then_some(p + 2)
            }
            Some(&c) => (fold(c) == fold(text[t])).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((sp, st))) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pat[p..].iter().all(|c| *c == b'*')
}

fn fold(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

/// The bracket expression at `pat[at]` (`[`) against `c`: whether it
/// matches and where the pattern goes on; `None` when it has no `]`.
fn class(pat: &[u8], at: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let negate = matches!(pat.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *pat.get(i)?;
        if lo == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        let lo = if lo == b'\\' {
            i += 1;
            *pat.get(i)?
        } else {
            lo
        };
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|h| *h != b']') {
            let hi = pat[i + 2];
            let (c, lo, hi) = (fold(c), fold(lo), fold(hi));
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= fold(lo) == fold(c);
            i += 1;
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
    /// Open parentheses and `not`s around the current token.
    depth: usize,
    /// Conditions so far.
    conditions: usize,
    /// `-x`: src and dst take a path pattern, and there are no ports.
    unix: bool,
}

/// Deepest nesting of parentheses and `not`s. The parser, the matcher and
/// the bytecode compiler recurse once per level: without a bound 15,000
/// parentheses overflow the stack.
pub const MAX_DEPTH: usize = 64;
/// Most conditions in one expression; `and`/`or` chains nest too, one level
/// per condition.
pub const MAX_CONDITIONS: usize = 1024;
/// Longest excerpt of the expression quoted in an error.
const QUOTE: usize = 60;

/// Parses the words after a command (`dport = :443`, `'( sport = :80 or
/// sport = :443 )'`). `service` resolves port names (`ssh`, `https`).
pub fn parse<S: AsRef<str>>(
    words: &[S],
    service: &dyn Fn(&str) -> Option<u16>,
) -> Result<Parsed, String> {
    parse_mode(words, service, false)
}

/// Parses a filter for UNIX sockets (`-x`): `src PATTERN` and `dst
/// PATTERN` (a path or a glob, `unix:` prefix allowed, as ss's
/// parse_hostcond) with states, `not`, `and`, `or` and parentheses.
pub fn parse_unix<S: AsRef<str>>(words: &[S]) -> Result<Parsed, String> {
    parse_mode(words, &|_| None, true)
}

fn parse_mode<S: AsRef<str>>(
    words: &[S],
    service: &dyn Fn(&str) -> Option<u16>,
    unix: bool,
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
        depth: 0,
        conditions: 0,
        unix,
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
            excerpt(&t.text, 0, QUOTE / 2),
            t.at + 1,
            excerpt(self.src, t.at, QUOTE)
        )
    }

    fn error_end(&self, what: &str) -> String {
        format!(
            "filter: at the end of \"{}\": {what}",
            excerpt(self.src, self.src.len(), QUOTE)
        )
    }

    /// One more level of parentheses or `not` at `t`, refused past [`MAX_DEPTH`].
    fn deeper(&mut self, t: &Token) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_at(
                t,
                &format!("nested deeper than {MAX_DEPTH} levels of parentheses and 'not'"),
            ));
        }
        Ok(())
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
            "not" | "!" => {
                self.deeper(&t)?;
                let e = self.unary()?.negate();
                self.depth -= 1;
                Ok(e)
            }
            "(" => {
                self.deeper(&t)?;
                let e = self.or()?;
                self.depth -= 1;
                match self.next() {
                    Some(c) if c.text == ")" => Ok(e),
                    Some(c) => Err(self.error_at(&c, "expected ')'")),
                    None => Err(self.error_end("expected ')' to close the '('")),
                }
            }
            "src" | "dst" | "sport" | "dport" if self.conditions >= MAX_CONDITIONS => Err(self
                .error_at(
                    &t,
                    &format!("more than {MAX_CONDITIONS} conditions; use a shorter expression"),
                )),
            "src" | "dst" if self.unix => {
                let side = if word == "src" { Side::Src } else { Side::Dst };
                if self.peek_is(&["=", "==", "eq"]) {
                    self.next();
                }
                let p = self.expect_word("expected a path or a pattern (/run/*.sock, @name)")?;
                let glob = p.text.strip_prefix("unix:").unwrap_or(&p.text).to_string();
                self.conditions += 1;
                Ok(Expr::Path { side, glob })
            }
            "sport" | "dport" if self.unix => Err(self.error_at(
                &t,
                "UNIX sockets have no ports; filter on src PATH or dst PATH",
            )),
            "src" | "dst" => {
                let side = if word == "src" { Side::Src } else { Side::Dst };
                if self.peek_is(&["=", "==", "eq"]) {
                    self.next();
                }
                let h = self
                    .expect_word("expected an address, a block or :PORT (10.0.0.0/8, [::1]:80)")?;
                let (net, port) = self.host(&h)?;
                self.conditions += 1;
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
                self.conditions += 1;
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
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.error_at(t, "port out of range (0-65535)"));
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

/// At most `max` characters of `s` around byte `at`, with `...` where cut:
/// an error names the column, it does not echo a megabyte back.
fn excerpt(s: &str, at: usize, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let at = (0..=at.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    let before: Vec<char> = s[..at].chars().rev().take(max / 2).collect();
    let start = at - before.iter().map(|c| c.len_utf8()).sum::<usize>();
    let text: String = s[start..].chars().take(max).collect();
    let end = start + text.len();
    format!(
        "{}{text}{}",
        if start > 0 { "..." } else { "" },
        if end < s.len() { "..." } else { "" }
    )
}

#[cfg(test)]
pub(crate) mod tests {
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

    pub(crate) fn e(src: &str) -> Expr {
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

    pub(crate) fn samples() -> Vec<Socket> {
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
    pub(crate) const CASES: &[(&str, &[usize])] = &[
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
    fn globs_match_as_fnmatch_with_casefold() {
        let m = |p: &str, t: &str| glob_match(p.as_bytes(), t.as_bytes());
        assert!(m("/run/a.sock", "/run/a.sock"));
        assert!(!m("/run/a.sock", "/run/a.socket"));
        assert!(
            m("/run/*", "/run/x/y.sock"),
            "* crosses /, as without FNM_PATHNAME"
        );
        assert!(m("*", ""), "an unbound socket is the empty string");
        assert!(!m("?", ""));
        assert!(m("/RUN/*.SOCK", "/run/dbus.sock"), "case folded");
        assert!(m("@tw-[a-c]?", "@tw-b1"));
        assert!(!m("@tw-[!a-c]?", "@tw-b1"));
        assert!(m("@tw-[^a-c]?", "@tw-z1"));
        assert!(m("[]]", "]"));
        assert!(m("a\\*", "a*"));
        assert!(!m("a\\*", "ab"));
        assert!(m("[", "["), "an unclosed [ is itself");
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c*d", "xxaxxbxxcxx"));
        // Many stars against a long miss: linear, not exponential.
        let text = "a".repeat(4000);
        assert!(!m(&format!("{}b", "*a".repeat(50)), &text));
    }

    #[test]
    fn unix_filters_take_paths_and_refuse_ports() {
        let e = parse_unix(&["src", "unix:/run/*.sock", "or", "not", "dst", "@x"])
            .unwrap()
            .expr
            .unwrap();
        assert!(e.has_path(Some(Side::Dst)) && !e.has_inet());
        assert!(e.matches_unix(Some("/run/a.sock"), None));
        assert!(!e.matches_unix(Some("/tmp/a.sock"), Some("@x")));
        assert!(e.matches_unix(None, Some("@y")));
        let p = parse_unix(&["state", "listening", "src", "=", "/a"]).unwrap();
        assert!(p.states.is_some());
        assert_eq!(
            p.expr,
            Some(Expr::Path {
                side: Side::Src,
                glob: "/a".into()
            })
        );
        let err = parse_unix(&["dport", "=", ":80"]).unwrap_err();
        assert!(err.contains("no ports"), "{err}");
        assert!(parse_unix(&["src"]).is_err());
        // A path condition never holds for a TCP socket.
        let path = parse_unix(&["src", "*"]).unwrap().expr.unwrap();
        assert!(samples().iter().all(|s| !path.matches(s)));
    }

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

    /// Issue 12 item 4: 15,000 parentheses or 30,000 `not`s overflowed the stack (SIGABRT).
    #[test]
    fn deep_nesting_is_refused_naming_the_column_without_echoing_it() {
        let parens = format!("{}sport = :80{}", "( ".repeat(15_000), " )".repeat(15_000));
        let nots = format!("{}sport = :80", "not ".repeat(30_000));
        let chain = vec!["sport = :80"; 100_000].join(" or ");
        for (src, col, what) in [
            (&parens, 2 * MAX_DEPTH + 1, "nested deeper than 64"),
            (&nots, 4 * MAX_DEPTH + 1, "nested deeper than 64"),
            (&chain, 15 * MAX_CONDITIONS + 1, "more than 1024 conditions"),
        ] {
            let err = p(src).unwrap_err();
            assert!(err.contains(&format!("(column {col} of ")), "{err}");
            assert!(err.contains(what), "{err}");
            assert!(err.len() < 300, "{} bytes: {err}", err.len());
        }
        // As deep as allowed still parses, and matches.
        let ok = format!(
            "{}sport = :22{}",
            "( ".repeat(MAX_DEPTH),
            " )".repeat(MAX_DEPTH)
        );
        assert!(e(&ok).matches(&samples()[3]));
        let ok = vec!["sport = :22"; MAX_CONDITIONS].join(" or ");
        assert!(e(&ok).matches(&samples()[3]));
    }

    /// Issue 12 item 11: `sport = :65536` said "unknown service".
    #[test]
    fn a_port_past_65535_is_out_of_range_not_an_unknown_service() {
        for src in ["sport = :65536", "dport = 99999", "dst 10.0.0.1:70000"] {
            let err = p(src).unwrap_err();
            assert!(err.contains("port out of range (0-65535)"), "{err}");
        }
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
