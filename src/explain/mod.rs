//! `tw explain`: what each TCP state and each relevant sysctl means.
//!
//! Pure: static text, lookup and rendering to a writer; no I/O of its own.
//! The bodies are wrapped by hand to 78 columns, ASCII only, so they print
//! the same on any terminal and in a pipe. Every number in them was checked
//! against the kernel source (net/ipv4/tcp*.c, inet_*sock.c,
//! Documentation/networking/ip-sysctl.rst) or a 6.18 box; versions name the
//! release where the behaviour changed.

mod topics;

use std::io::{self, Write};

use crate::render::text::wrap;
use topics::TOPICS;

/// What a topic explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    /// A TCP state, as netstat spells it.
    State,
    /// A sysctl, by its full dotted name.
    Sysctl,
}

impl TopicKind {
    /// A short label for titles and headings.
    pub fn label(self) -> &'static str {
        match self {
            TopicKind::State => "TCP state",
            TopicKind::Sysctl => "sysctl",
        }
    }
}

/// One explanation: a TCP state or a sysctl.
#[derive(Debug)]
pub struct Topic {
    /// netstat's spelling for states (TIME_WAIT), the full dotted name for
    /// sysctls (net.ipv4.tcp_tw_reuse).
    pub name: &'static str,
    /// Other names `find` accepts (ss spellings, short sysctl names).
    pub aliases: &'static [&'static str],
    pub kind: TopicKind,
    /// One line, at most 72 columns.
    pub summary: &'static str,
    /// Plain text, lines of at most 78 columns, ending in a newline.
    pub body: &'static str,
}

/// Every topic: states first, in the kernel's order, then sysctls.
pub fn topics() -> &'static [Topic] {
    TOPICS
}

/// Finds a topic by name or alias. Case does not matter, nor `-` vs `_`
/// (or leaving them out), nor dots vs slashes, nor a `/proc/sys/`,
/// `net.ipv4.`, `net.core.` or `net.netfilter.` prefix, nor a trailing
/// `=value`: `time-wait`, `TIME_WAIT`, `timewait`, `estab`,
/// `tcp_tw_reuse`, `net/ipv4/tcp_tw_reuse` and `net.ipv4.tcp_tw_reuse=1`
/// all work. An unknown query gets an error that lists every topic.
pub fn find(query: &str) -> Result<&'static Topic, String> {
    let key = normalize(query);
    if !key.is_empty() {
        let hit = TOPICS.iter().find(|t| {
            std::iter::once(t.name)
                .chain(t.aliases.iter().copied())
                .any(|n| normalize(n) == key)
        });
        if let Some(t) = hit {
            return Ok(t);
        }
    }
    Err(unknown_topic(query))
}

/// Every topic name with its summary: states, then sysctls.
pub fn render_list(out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "TCP states (tw explain STATE; ss or netstat spelling):"
    )?;
    render_group(out, TopicKind::State)?;
    writeln!(out)?;
    writeln!(
        out,
        "Sysctls (tw explain NAME; the net.ipv4. prefix is optional):"
    )?;
    render_group(out, TopicKind::Sysctl)
}

/// One topic: title, summary, body, and the other names it answers to.
pub fn render(topic: &Topic, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{} ({})", topic.name, topic.kind.label())?;
    writeln!(out, "{}", topic.summary)?;
    writeln!(out)?;
    out.write_all(topic.body.as_bytes())?;
    if !topic.aliases.is_empty() {
        writeln!(out)?;
        for line in comma_list("Also: ", "      ", topic.aliases) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

const WIDTH: usize = 78;

/// `words` joined by commas in lines of at most [`WIDTH`] columns, the
/// first starting with `first`, the rest with `indent`.
fn comma_list(first: &str, indent: &str, words: &[&str]) -> Vec<String> {
    let last = words.len().saturating_sub(1);
    let pieces: Vec<String> = (words.iter().enumerate())
        .map(|(i, w)| {
            if i < last {
                format!("{w},")
            } else {
                w.to_string()
            }
        })
        .collect();
    wrap(first, indent, pieces.iter().map(String::as_str), WIDTH)
}

fn render_group(out: &mut dyn Write, kind: TopicKind) -> io::Result<()> {
    let group: Vec<&Topic> = TOPICS.iter().filter(|t| t.kind == kind).collect();
    let w = group.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let one_line = group.iter().all(|t| 2 + w + 2 + t.summary.len() <= WIDTH);
    for t in group {
        if one_line {
            writeln!(out, "  {:<w$}  {}", t.name, t.summary)?;
        } else {
            writeln!(out, "  {}", t.name)?;
            writeln!(out, "      {}", t.summary)?;
        }
    }
    Ok(())
}

/// Lower case, without `-`, `_` or spaces, `/` read as `.`, and without a
/// `/proc/sys/` or well-known sysctl prefix or a trailing `=value`.
fn normalize(s: &str) -> String {
    let s = s.split('=').next().unwrap_or_default();
    let s: String = s
        .chars()
        .filter(|c| !matches!(c, '-' | '_') && !c.is_whitespace())
        .map(|c| {
            if c == '/' {
                '.'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let s = s.trim_matches('.');
    let s = s.strip_prefix("proc.sys.").unwrap_or(s);
    ["net.ipv4.", "net.core.", "net.netfilter."]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s)
        .to_string()
}

/// One line, like every tw error: the query and every topic name.
fn unknown_topic(query: &str) -> String {
    let names = |kind| -> String {
        TOPICS
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "unknown topic '{}'; states: {}; sysctls: {} (any spelling: time-wait, tcp_tw_reuse)",
        query.trim(),
        names(TopicKind::State),
        names(TopicKind::Sysctl)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(t: &Topic) -> impl Iterator<Item = &'static str> {
        t.body.lines()
    }

    fn all_names(t: &Topic) -> Vec<&'static str> {
        std::iter::once(t.name)
            .chain(t.aliases.iter().copied())
            .collect()
    }

    /// The spellings an operator may type for one name.
    fn spellings(name: &str) -> Vec<String> {
        let mut v = vec![
            name.to_string(),
            name.to_uppercase(),
            name.to_lowercase(),
            name.replace('_', "-"),
            name.replace('-', "_"),
            name.replace(['-', '_'], ""),
            format!("  {name}  "),
        ];
        if name.contains('.') {
            let slashed = name.replace('.', "/");
            v.push(format!("/proc/sys/{slashed}"));
            v.push(slashed);
            v.push(format!("{name}=1"));
            v.push(format!("{name} = 1"));
            if let Some((_, short)) = name.rsplit_once('.') {
                v.push(short.to_string());
            }
        }
        v
    }

    #[test]
    fn every_topic_is_found_by_every_name_in_every_spelling() {
        for t in topics() {
            for n in all_names(t) {
                for q in spellings(n) {
                    match find(&q) {
                        Ok(found) => assert_eq!(found.name, t.name, "query {q:?}"),
                        Err(e) => panic!("query {q:?} for {}: {e}", t.name),
                    }
                }
            }
        }
    }

    #[test]
    fn the_spellings_from_the_brief_work() {
        for q in ["time-wait", "TIME_WAIT", "timewait", "Time_Wait"] {
            assert_eq!(find(q).unwrap().name, "TIME_WAIT", "{q}");
        }
        for q in [
            "tcp_tw_reuse",
            "net.ipv4.tcp_tw_reuse",
            "net/ipv4/tcp_tw_reuse",
            "/proc/sys/net/ipv4/tcp_tw_reuse",
            "tcp-tw-reuse",
            "net.ipv4.tcp_tw_reuse=1",
        ] {
            assert_eq!(find(q).unwrap().name, "net.ipv4.tcp_tw_reuse", "{q}");
        }
        assert_eq!(find("estab").unwrap().name, "ESTABLISHED");
        assert_eq!(find("somaxconn").unwrap().name, "net.core.somaxconn");
        assert_eq!(
            find("net/netfilter/nf_conntrack_count").unwrap().name,
            "net.netfilter.nf_conntrack_max"
        );
    }

    #[test]
    fn ss_and_netstat_state_spellings_work() {
        // ss's names (model.rs ss_name) and netstat's, side by side.
        let pairs = [
            ("established", "ESTABLISHED"),
            ("syn-sent", "SYN_SENT"),
            ("syn-recv", "SYN_RECV"),
            ("new-syn-recv", "SYN_RECV"),
            ("fin-wait-1", "FIN_WAIT1"),
            ("FIN_WAIT_1", "FIN_WAIT1"),
            ("fin-wait-2", "FIN_WAIT2"),
            ("time-wait", "TIME_WAIT"),
            ("closed", "CLOSE"),
            ("UNCONN", "CLOSE"),
            ("close-wait", "CLOSE_WAIT"),
            ("last-ack", "LAST_ACK"),
            ("listening", "LISTEN"),
            ("LISTEN", "LISTEN"),
            ("closing", "CLOSING"),
        ];
        for (q, want) in pairs {
            assert_eq!(find(q).unwrap().name, want, "{q}");
        }
    }

    #[test]
    fn unknown_query_lists_every_topic() {
        for q in ["foo", "", "   ", "net.ipv4.", "tcp_tw"] {
            let e = find(q).unwrap_err();
            assert!(e.contains("unknown topic"), "{e}");
            for t in topics() {
                assert!(e.contains(t.name), "{q:?}: {} missing from {e}", t.name);
            }
            // One line, like every tw error.
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        assert!(find("foo").unwrap_err().contains("'foo'"));
    }

    #[test]
    fn aliases_add_something() {
        for t in topics() {
            for a in t.aliases {
                assert!(!a.eq_ignore_ascii_case(t.name), "{}: {a}", t.name);
            }
        }
    }

    #[test]
    fn no_two_topics_share_a_name() {
        let mut seen = std::collections::HashMap::new();
        for t in topics() {
            for n in all_names(t) {
                if let Some(other) = seen.insert(normalize(n), t.name) {
                    assert_eq!(other, t.name, "{n} is claimed twice");
                }
            }
        }
    }

    #[test]
    fn every_state_and_the_listed_sysctls_have_a_topic() {
        let states = [
            "ESTABLISHED",
            "SYN_SENT",
            "SYN_RECV",
            "FIN_WAIT1",
            "FIN_WAIT2",
            "TIME_WAIT",
            "CLOSE",
            "CLOSE_WAIT",
            "LAST_ACK",
            "LISTEN",
            "CLOSING",
        ];
        let sysctls = [
            "net.ipv4.ip_local_port_range",
            "net.ipv4.ip_local_reserved_ports",
            "net.ipv4.tcp_tw_reuse",
            "net.ipv4.tcp_tw_recycle",
            "net.ipv4.tcp_timestamps",
            "net.ipv4.tcp_fin_timeout",
            "net.ipv4.tcp_max_tw_buckets",
            "net.ipv4.tcp_max_orphans",
            "net.core.somaxconn",
            "net.netfilter.nf_conntrack_max",
            "net.netfilter.nf_conntrack_count",
            "net.netfilter.nf_conntrack_buckets",
            "net.netfilter.nf_conntrack_tcp_timeout_time_wait",
        ];
        for s in states {
            assert_eq!(find(s).unwrap().kind, TopicKind::State, "{s}");
        }
        for s in sysctls {
            assert_eq!(find(s).unwrap().kind, TopicKind::Sysctl, "{s}");
        }
        // States come first, so render_list's groups follow topics() order.
        let first_sysctl = topics()
            .iter()
            .position(|t| t.kind == TopicKind::Sysctl)
            .unwrap();
        assert!(topics()[first_sysctl..]
            .iter()
            .all(|t| t.kind == TopicKind::Sysctl));
        assert_eq!(first_sysctl, states.len());
    }

    #[test]
    fn text_fits_78_columns_and_is_plain() {
        for t in topics() {
            assert!(t.summary.len() <= 72, "{}: summary too long", t.name);
            // States list one per line: "  NAME_PADDED  summary".
            if t.kind == TopicKind::State {
                assert!(15 + t.summary.len() <= WIDTH, "{}: summary", t.name);
            }
            assert!(!t.summary.contains('\n'), "{}", t.name);
            assert!(t.body.ends_with('\n'), "{}", t.name);
            assert!(t.body.is_ascii(), "{}: non-ASCII in body", t.name);
            assert!(t.summary.is_ascii(), "{}", t.name);
            let n = lines_of(t).count();
            assert!((6..=22).contains(&n), "{}: {n} body lines", t.name);
            for line in lines_of(t) {
                assert!(line.len() <= WIDTH, "{}: {line:?}", t.name);
                assert_eq!(line, line.trim_end(), "{}: trailing space", t.name);
                assert!(!line.is_empty(), "{}: blank line in body", t.name);
                assert!(!line.contains('\t'), "{}: tab", t.name);
            }
        }
    }

    #[test]
    fn every_body_points_at_a_command() {
        for t in topics() {
            assert!(
                ["tw ls", "tw count", "tw ports", "tw doctor"]
                    .iter()
                    .any(|c| t.body.contains(c))
                    // tcp_tw_recycle is gone: nothing to look at.
                    || t.name == "net.ipv4.tcp_tw_recycle",
                "{}: no tw command",
                t.name
            );
        }
    }

    fn body(name: &str) -> &'static str {
        find(name).unwrap().body
    }

    #[test]
    fn key_facts_are_present() {
        let tw = body("TIME_WAIT");
        for fact in [
            "60 s",
            "TCP_TIMEWAIT_LEN",
            "tcp_fin_timeout",
            "Myth:",
            "file descriptors",
            "always bad",
            "28,232",
            "42,600",
            "IP_BIND_ADDRESS_NO_PORT",
            "tcp_tw_reuse = 1",
            "tcp_timestamps",
            "SO_LINGER 0",
            "HAProxy",
            "FIN_WAIT2 minisockets",
            "tw count --state time-wait --by peer",
        ] {
            assert!(tw.contains(fact), "TIME_WAIT lacks {fact:?}");
        }
        let facts: &[(&str, &[&str])] = &[
            ("tcp_tw_recycle", &["4.12", "NAT", "4.10", "Myth:"]),
            (
                "tcp_fin_timeout",
                &["Myth:", "FIN_WAIT2", "60", "TCP_LINGER2"],
            ),
            ("tcp_tw_reuse", &["4.18", "2 on for loopback", "timestamps"]),
            ("tcp_tw_reuse", &["connect()", "6.14", "TWRecycled"]),
            ("tcp_max_tw_buckets", &["TCPTimeWaitOverflow", "namespace"]),
            ("tcp_max_orphans", &["too many", "TCPAbortOnMemory"]),
            ("ip_local_port_range", &["32768 60999", "28,232", "470"]),
            ("ip_local_port_range", &["EADDRNOTAVAIL", "parity"]),
            ("somaxconn", &["4096", "5.4", "128", "ListenOverflows"]),
            (
                "nf_conntrack_max",
                &["table full, dropping packet", "432000"],
            ),
            (
                "nf_conntrack_tcp_timeout_time_wait",
                &["120", "60 s", "10 s"],
            ),
            ("tcp_timestamps", &["Myth:", "PAWS", "random offset"]),
            ("CLOSE_WAIT", &["close()", "application", "--fail-above"]),
            (
                "FIN_WAIT2",
                &["tcp_fin_timeout = 60 s", "shutdown(SHUT_WR)"],
            ),
            ("SYN_RECV", &["4.4", "63 s", "syncookies", "SYN flooding"]),
            ("SYN_SENT", &["131 s", "6.5", "127 s", "ETIMEDOUT"]),
            ("FIN_WAIT1", &["tcp_orphan_retries", "means 8"]),
            ("LAST_ACK", &["no TIME_WAIT", "tcp_orphan_retries"]),
            ("LISTEN", &["Recv-Q", "Send-Q", "somaxconn", "511"]),
            ("CLOSING", &["simultaneous", "TIME_WAIT"]),
            ("CLOSE", &["6.8", "bound-inactive", "UNCONN"]),
            ("ESTABLISHED", &["7200", "924.6", "tcp_retries2"]),
        ];
        for (name, want) in facts {
            for fact in *want {
                assert!(body(name).contains(fact), "{name} lacks {fact:?}");
            }
        }
    }

    #[test]
    fn the_arithmetic_in_the_text_holds() {
        use crate::model::abi::TIME_WAIT_SECS;
        use crate::model::ports::{port_capacity, DEFAULT_PORT_RANGE};
        use crate::model::PortRange;
        // Words as a reader sees them, whatever the line breaks.
        let text = topics()
            .iter()
            .flat_map(|t| t.body.split_whitespace())
            .collect::<Vec<_>>()
            .join(" ");
        let says = |what: String| assert!(text.contains(&what), "the text lacks {what:?}");
        let grouped = |n: u64| {
            let d = n.to_string();
            let (head, tail) = d.split_at(d.len() % 3);
            let groups: Vec<&str> = tail
                .as_bytes()
                .chunks(3)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            [head]
                .into_iter()
                .chain(groups)
                .filter(|g| !g.is_empty())
                .collect::<Vec<_>>()
                .join(",")
        };
        // The default range's ports, as tw's own port arithmetic counts them.
        let ports = u64::from(port_capacity(DEFAULT_PORT_RANGE, &[]).available);
        says(format!("{} ports", grouped(ports)));
        says(format!(
            "{} / 60 = about {} new connections",
            grouped(ports),
            ports / TIME_WAIT_SECS
        ));
        says(format!(
            "710 req/s x 60 s = {}",
            grouped(710 * TIME_WAIT_SECS)
        ));
        let wide = PortRange {
            lo: 10000,
            hi: 65535,
        };
        says(format!(
            "({} ports)",
            grouped(u64::from(port_capacity(wide, &[]).available))
        ));
        // Keepalive: 7200 s idle, then 9 probes 75 s apart.
        says(format!("({} s in all)", 7200 + 9 * 75));
        // SYN_SENT with 6.5+ defaults: 10 retransmissions (6 backed off, 4
        // linear), RTOs 1,1,1,1,1,2,4,8,16,32, then a final wait of 64; before
        // 6.5, 1 + 2 + ... + 64. SYN-ACK: 1 + 2 + 4 + 8 + 16 + 32.
        says(format!(
            "{} s with the defaults",
            [1, 1, 1, 1, 1, 2, 4, 8, 16, 32, 64].iter().sum::<u32>()
        ));
        says(format!(
            "{} s before",
            (0..7).map(|i| 1u32 << i).sum::<u32>()
        ));
        says(format!(
            "after about {} s",
            (0..6).map(|i| 1u32 << i).sum::<u32>()
        ));
        // Different parity for the widened range, as the body advises.
        assert_ne!(wide.lo % 2, wide.hi % 2);
        assert_ne!(DEFAULT_PORT_RANGE.lo % 2, DEFAULT_PORT_RANGE.hi % 2);
    }

    fn rendered(t: &Topic) -> String {
        let mut out = Vec::new();
        render(t, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn render_shows_title_summary_body_and_aliases() {
        let t = find("time-wait").unwrap();
        let s = rendered(t);
        let mut lines = s.lines();
        assert_eq!(lines.next(), Some("TIME_WAIT (TCP state)"));
        assert_eq!(lines.next(), Some(t.summary));
        assert_eq!(lines.next(), Some(""));
        assert!(s.contains(t.body));
        assert!(s.ends_with("Also: time-wait\n"), "{s}");
        assert!(!rendered(find("closing").unwrap()).contains("Also:"));
        for t in topics() {
            for line in rendered(t).lines() {
                assert!(line.len() <= WIDTH, "{}: {line:?}", t.name);
            }
        }
        let s = rendered(find("tcp_tw_reuse").unwrap());
        assert!(s.starts_with("net.ipv4.tcp_tw_reuse (sysctl)\n"), "{s}");
    }

    #[test]
    fn render_list_groups_states_then_sysctls() {
        let mut out = Vec::new();
        render_list(&mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        let sysctls_at = s.find("Sysctls").unwrap();
        for t in topics() {
            let at = s
                .find(t.name)
                .unwrap_or_else(|| panic!("{} missing", t.name));
            assert!(s.contains(t.summary), "{} summary missing", t.name);
            match t.kind {
                TopicKind::State => assert!(at < sysctls_at, "{}", t.name),
                TopicKind::Sysctl => assert!(at > sysctls_at, "{}", t.name),
            }
        }
        for line in s.lines() {
            assert!(line.len() <= WIDTH, "{line:?}");
            assert_eq!(line, line.trim_end(), "trailing space: {line:?}");
        }
        assert!(s.starts_with("TCP states"));
    }

    #[test]
    fn comma_lists_keep_lines_short_and_words_whole() {
        let words = ["alpha"; 40];
        let lines = comma_list("  x: ", "     ", &words);
        assert!(lines.len() > 1);
        for l in &lines {
            assert!(l.len() <= WIDTH, "{l:?}");
        }
        let joined = lines.join(" ");
        assert_eq!(joined.matches("alpha").count(), 40);
        assert!(lines.last().unwrap().ends_with("alpha"));
    }
}
