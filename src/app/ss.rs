//! ss's flags in ss's meanings: `tw -tan`, `tw ls -lntp`, `tw -s`. They are
//! turned into tw's own command and options here, before anything is read,
//! so every command after this sees one plain command line.

use anyhow::{bail, Result};

use crate::cli::{Cli, Command, LsArgs, Show, SummaryArgs};
use crate::model::{StateSet, TcpState};
use crate::query::Protocols;

/// What the ss flags decided besides the command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SsMode {
    /// The states to read when neither `--state` nor a `state` word says:
    /// ss's own defaults (`None`: tw's, every state).
    pub states: Option<StateSet>,
    /// `-H`: no header line.
    pub no_header: bool,
    /// `-t`, `-u`: TCP unless `-u` alone.
    pub protocols: Protocols,
    /// `-x`: UNIX sockets.
    pub unix: bool,
    /// `-t` or `-u` given: with `-x`, one listing of every protocol asked.
    pub inet: bool,
}

/// ss's default set without `-a` or `-l` (misc/ss.c, SS_CONN): every state
/// but LISTEN, CLOSE, TIME_WAIT and SYN_RECV.
pub fn connected() -> StateSet {
    StateSet::ALL.without(&[
        TcpState::Listen,
        TcpState::Close,
        TcpState::TimeWait,
        TcpState::SynRecv,
    ])
}

/// Rewrites `cli` so that ss's flags become tw's command and options.
pub fn resolve(cli: &mut Cli) -> Result<SsMode> {
    if let Some(why) = cli.unsupported.refusal() {
        bail!("{why}");
    }
    let g = &mut cli.global;
    if let Some(net) = g.net.take() {
        g.netns = Some(net);
    }
    for f in std::mem::take(&mut g.family) {
        match f.as_str() {
            "inet" => g.ipv4 = true,
            "inet6" => g.ipv6 = true,
            "unix" => g.unix = true,
            other => bail!(
                "-f {other}: tw reads the families inet, inet6 and unix; \
                 use -f inet, -f inet6 or -f unix (or -4, -6, -x)"
            ),
        }
    }
    for q in std::mem::take(&mut g.query) {
        match q.as_str() {
            "tcp" => g.tcp = true,
            "udp" => g.udp = true,
            "unix" | "unix_stream" | "unix_dgram" | "unix_seqpacket" => g.unix = true,
            "inet" => (g.tcp, g.udp) = (true, true),
            "all" => (g.tcp, g.udp, g.unix) = (true, true, true),
            other => bail!(
                "-A {other}: tw reads tcp, udp and unix sockets; use -A tcp, -A udp or -A unix \
                 (or -t, -u, -x)"
            ),
        }
    }
    let protocol = g.tcp || g.udp || g.unix;
    let listing_flags = protocol
        || g.all
        || g.listening
        || g.numeric
        || g.no_header
        || cli.show.any()
        || !cli.expr.words.is_empty();
    let mut implied = false;
    match &mut cli.command {
        None if cli.summary => {
            cli.command = Some(Command::Summary(SummaryArgs {
                expr: std::mem::take(&mut cli.expr),
            }))
        }
        None if listing_flags => {
            // An expression alone is most likely a mistyped command.
            let ss_like = protocol || g.all || g.listening || g.numeric;
            if !cli.expr.words.is_empty() && !ss_like {
                bail!(
                    "`{}` is not a command (ls, count, ports, doctor, explain, watch...); \
                     a filter goes after one: `tw ls {}`",
                    cli.expr.words[0],
                    cli.expr.words.join(" ")
                );
            }
            implied = true;
            cli.command = Some(Command::Ls(LsArgs {
                sort: None,
                limit: None,
                show: cli.show,
                expr: std::mem::take(&mut cli.expr),
            }));
        }
        None => {}
        Some(cmd) => {
            if cli.summary {
                bail!("-s is ss's summary, what `tw` alone shows; it does not go with a command");
            }
            if let Command::Ls(a) = cmd {
                a.show = a.show.or(cli.show);
            } else if cli.show.any() {
                bail!(
                    "{}: ss's display flags go with a listing: `tw ls {0}`",
                    show_flag(&cli.show)
                );
            }
            if !cli.expr.words.is_empty() {
                bail!("`{}`: a filter goes after the command", cli.expr.words[0]);
            }
        }
    }
    let states = if g.all {
        Some(StateSet::ALL)
    } else if g.listening {
        // ss's -l: LISTEN and CLOSE (misc/ss.c), the latter being a UDP
        // socket with no peer; TCP sockets in CLOSE are in no dump.
        Some(StateSet::of(&[TcpState::Listen, TcpState::Close]))
    } else if protocol || implied {
        Some(connected())
    } else {
        None
    };
    Ok(SsMode {
        states,
        no_header: g.no_header,
        protocols: Protocols {
            tcp: g.tcp || !g.udp,
            udp: g.udp,
        },
        unix: g.unix,
        inet: g.tcp || g.udp,
    })
}

fn show_flag(s: &Show) -> &'static str {
    if s.info {
        "-i"
    } else if s.memory {
        "-m"
    } else if s.options {
        "-o"
    } else {
        "-e"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn resolved(args: &[&str]) -> Result<(Cli, SsMode)> {
        let mut cli = Cli::try_parse_from(args).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mode = resolve(&mut cli)?;
        Ok((cli, mode))
    }

    #[test]
    fn ss_habits_parse_as_ss_users_type_them() {
        let table: &[(&[&str], &str, Option<StateSet>)] = &[
            (&["tw", "-tan"], "ls", Some(StateSet::ALL)),
            (&["tw", "-tn"], "ls", Some(connected())),
            (&["tw", "-t"], "ls", Some(connected())),
            (&["tw", "-n"], "ls", Some(connected())),
            (
                &["tw", "ls", "-lntp"],
                "ls",
                Some(StateSet::of(&[TcpState::Listen, TcpState::Close])),
            ),
            (
                &["tw", "-ltn"],
                "ls",
                Some(StateSet::of(&[TcpState::Listen, TcpState::Close])),
            ),
            (&["tw", "ls"], "ls", None),
            (&["tw", "ls", "-i"], "ls", None),
            (&["tw", "-s"], "summary", None),
            (&["tw"], "none", None),
            (&["tw", "-p"], "none", None),
            (&["tw", "count", "-t"], "count", Some(connected())),
            (
                &["tw", "-tan", "state", "established"],
                "ls",
                Some(StateSet::ALL),
            ),
            (&["tw", "-A", "tcp", "-n"], "ls", Some(connected())),
            (&["tw", "-tnoe"], "ls", Some(connected())),
        ];
        for (args, cmd, states) in table {
            let (cli, mode) = resolved(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let name = match &cli.command {
                None => "none",
                Some(Command::Ls(_)) => "ls",
                Some(Command::Summary(_)) => "summary",
                Some(Command::Count(_)) => "count",
                Some(_) => "other",
            };
            assert_eq!(name, *cmd, "{args:?}");
            assert_eq!(mode.states, *states, "{args:?}");
        }
    }

    #[test]
    fn the_expression_after_ss_flags_goes_to_the_listing() {
        let (cli, _) = resolved(&["tw", "-tan", "dport", "=", ":443"]).unwrap();
        let Some(Command::Ls(a)) = cli.command else {
            panic!("ls")
        };
        assert_eq!(a.expr.words, ["dport", "=", ":443"]);
    }

    #[test]
    fn display_flags_before_ls_reach_it() {
        let (cli, _) = resolved(&["tw", "-i", "ls"]).unwrap();
        let Some(Command::Ls(a)) = cli.command else {
            panic!("ls")
        };
        assert!(a.show.info);
        let (cli, mode) = resolved(&["tw", "-tniH"]).unwrap();
        let Some(Command::Ls(a)) = cli.command else {
            panic!("ls")
        };
        assert!(a.show.info && mode.no_header);
    }

    #[test]
    fn ss_net_is_netns() {
        let (cli, _) = resolved(&["tw", "-tn", "-N", "blue"]).unwrap();
        assert_eq!(cli.global.netns.as_deref(), Some("blue"));
        let (cli, _) = resolved(&["tw", "-f", "inet", "-t"]).unwrap();
        assert!(cli.global.ipv4);
    }

    #[test]
    fn unix_with_tcp_or_udp_is_one_listing_of_each() {
        let (_, m) = resolved(&["tw", "-xta"]).unwrap();
        assert!(m.unix && m.inet && m.protocols.tcp && !m.protocols.udp);
        let (_, m) = resolved(&["tw", "-tuxan"]).unwrap();
        assert!(m.unix && m.inet && m.protocols.tcp && m.protocols.udp);
        let (_, m) = resolved(&["tw", "-xa"]).unwrap();
        assert!(m.unix && !m.inet);
        let (_, m) = resolved(&["tw", "-A", "all"]).unwrap();
        assert!(m.unix && m.inet && m.protocols.udp);
    }

    #[test]
    fn flags_without_a_meaning_for_tw_say_so_in_one_line() {
        for (args, flag) in [
            (&["tw", "-tanr"][..], "-r"),
            (&["tw", "-K", "dport", "=", ":80"], "-K"),
            (&["tw", "ls", "-D", "x"], "-D"),
            (&["tw", "-F", "file"], "-F"),
            (&["tw", "-E"], "-E"),
            (&["tw", "-Z"], "-Z"),
            (&["tw", "-w"], "-w"),
            (&["tw", "-S"], "-S"),
            (&["tw", "-M"], "-M"),
            (&["tw", "-tO"], "-O"),
            (&["tw", "-f", "link"], "-f link"),
            (&["tw", "-A", "raw"], "-A raw"),
            (&["tw", "ls", "-s"], "-s"),
            (&["tw", "lss"], "lss"),
        ] {
            let e = match resolved(args) {
                Ok(_) => panic!("{args:?} accepted"),
                Err(e) => e.to_string(),
            };
            assert!(e.starts_with(flag) || e.contains(flag), "{args:?}: {e}");
            assert!(!e.contains('\n'), "{args:?}: {e}");
        }
    }
}
