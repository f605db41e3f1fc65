//! The command line: commands, the options they share, and help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::analyze::aggregate::GroupBy;
use crate::model::{Cidr, Direction, PortRange};
use crate::render::Format;
use crate::source::SourceKind;

const ABOUT: &str = "Shows and explains TCP socket states: counts, TIME_WAIT timers, ports.";

const AFTER_HELP: &str = "\
Examples:
  tw                                  summary: states, TIME_WAIT expiry, top peers and ports
  tw ls --state time-wait --sort timer
  tw count --state time-wait          one number, for scripts
  tw count --by raddr --top 10        TAB-separated KEY COUNT lines
  tw count --state close-wait --fail-above 100 || alert
  tw ports                            ephemeral ports held per outbound destination
  tw doctor                           findings with evidence and fixes; exit 0/1/2 ok/warn/crit
  tw explain time-wait                what a state or sysctl means, myths corrected
  tw capture /tmp/box && tw --proc-root /tmp/box doctor    the same, on another machine
  tw metrics                          Prometheus text (node_exporter's textfile collector)
  tw serve --listen 127.0.0.1:9838    HTTP /metrics for Prometheus
  tw watch --record tw.jsonl          live view: TIME_WAIT inflow, forecast, ports running out
  tw plot tw.jsonl -o tw.svg          the recording as a chart
  tw conntrack --by dst --top 10      what fills the conntrack table

Exit status: 0 ok; 1 a check tripped (--fail-above, doctor warning); 2 error (doctor:
critical); 3 doctor could not run.";

#[derive(Debug, Parser)]
#[command(name = "tw", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub global: Global,

    /// ss's `-s`: the summary (what `tw` alone shows).
    #[arg(short = 's', long = "summary", global = true)]
    pub summary: bool,

    /// ss's display flags, before any command (`tw -tnoi`): a listing.
    #[command(flatten)]
    pub show: Show,

    /// ss's flags that tw does not take (`-r`, `-K`, `-D`...): each is
    /// refused with a line saying why and what to use instead.
    #[command(flatten)]
    pub unsupported: Unsupported,

    /// ss's filter after ss's flags and no command (`tw -tn state
    /// established`): the listing's expression.
    #[command(flatten)]
    pub expr: Expression,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The summary (what `tw` alone shows), with an optional expression.
    Summary(SummaryArgs),
    /// One row per socket: state, local, peer, timer, queues, uid, inode.
    Ls(LsArgs),
    /// Count sockets: one integer, or KEY<TAB>COUNT lines with --by.
    Count(CountArgs),
    /// Ephemeral ports held per outbound destination, against the range.
    Ports(PortsArgs),
    /// Check the box: port exhaustion, TIME_WAIT, conntrack, queues, sysctls.
    /// Exit 0 ok, 1 warning, 2 critical.
    Doctor(DoctorArgs),
    /// Explain a TCP state or sysctl (time-wait, tcp_tw_reuse, ...).
    Explain(ExplainArgs),
    /// Copy what tw reads (tables, sysctls, counters) into DIR, for bug
    /// reports and for `--proc-root DIR` elsewhere.
    Capture(CaptureArgs),
    /// Prometheus text: sockets by state, TIME_WAIT by direction and time
    /// left, ports per destination, sysctls, counters, doctor's findings.
    Metrics(MetricsArgs),
    /// Serve /metrics (computed afresh for each scrape, or from a background
    /// snapshot with --refresh; plus eBPF event counters when they can be
    /// had) and /healthz over HTTP.
    Serve(ServeArgs),
    /// Write the man pages and bash, zsh and fish completions into DIR.
    #[command(hide = true)]
    Generate(GenerateArgs),
    /// Sample every interval: counts per state, TIME_WAIT inflow per second
    /// and where it settles, and when each destination runs out of ports.
    /// A live view on a terminal, JSON Lines otherwise.
    Watch(WatchArgs),
    /// Draw a `tw watch --record` file as an SVG chart: sockets by state
    /// and TIME_WAIT inflow over time.
    Plot(PlotArgs),
    /// TCP events from the kernel (eBPF): connects, who closed first,
    /// TIME_WAIT made, ports that ran out, resets, retransmits, per process
    /// and destination. A live table on a terminal, JSON Lines otherwise.
    /// Needs root and a kernel with BTF.
    Trace(TraceArgs),
    /// The conntrack table: entries by state (with the time left), protocol,
    /// destination, source, zone and mark; the table's health (count against
    /// nf_conntrack_max, timeouts, buckets, per-CPU statistics) and what fills it.
    Conntrack(ConntrackArgs),
    /// Print the JSON Schema of a command's `--format json` output (watch:
    /// of its records). Every document carries its `schema_version`.
    Schema(SchemaArgs),
    /// Print the completion script of a shell (bash: `source <(tw
    /// completions bash)`).
    Completions(CompletionsArgs),
    /// Print a man page as roff: tw's, or one command's (`tw man doctor |
    /// man -l -`).
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print; tw's own without it.
    pub command: Option<String>,
}

/// Options every command takes, before or after the command name.
#[derive(Debug, Args)]
pub struct Global {
    /// Where live sockets are read from.
    #[arg(long, value_enum, default_value_t = SourceKind::Auto, global = true)]
    pub source: SourceKind,

    /// Read a capture instead of the live system: a copy of /proc/net/tcp or
    /// tcp6, a folder holding both, or a raw sock_diag dump (`ss -D FILE`).
    #[arg(long, value_name = "PATH", global = true)]
    pub from: Option<PathBuf>,

    /// Read tables, sysctls and counters from this copy of /proc (as written
    /// by `tw capture`) instead of the live system.
    #[arg(long, value_name = "DIR", global = true)]
    pub proc_root: Option<PathBuf>,

    /// Output format [default: table on a terminal, plain otherwise].
    #[arg(long, value_enum, global = true)]
    pub format: Option<Format>,

    /// States to show: ss spellings (time-wait), netstat spellings
    /// (TIME_WAIT), comma lists, or groups: all, connected, synchronized,
    /// bucket, big. Repeatable. Default: every state.
    #[arg(long, value_name = "STATES", global = true)]
    pub state: Vec<String>,

    /// IPv4 sockets only.
    #[arg(short = '4', long = "ipv4", global = true)]
    pub ipv4: bool,

    /// IPv6 sockets only.
    #[arg(short = '6', long = "ipv6", global = true)]
    pub ipv6: bool,

    /// Local port or range (80, 1024-65535). Repeatable, comma lists.
    #[arg(long, value_name = "PORT", value_delimiter = ',', global = true)]
    pub sport: Vec<PortRange>,

    /// Remote port or range. Repeatable, comma lists.
    #[arg(long, value_name = "PORT", value_delimiter = ',', global = true)]
    pub dport: Vec<PortRange>,

    /// Local address or CIDR block (127.0.0.1, 10.0.0.0/8, ::1). An IPv4
    /// block also matches IPv4-mapped IPv6 addresses. Repeatable.
    #[arg(long, value_name = "ADDR", value_delimiter = ',', global = true)]
    pub src: Vec<Cidr>,

    /// Remote address or CIDR block. Repeatable.
    #[arg(long, value_name = "ADDR", value_delimiter = ',', global = true)]
    pub dst: Vec<Cidr>,

    /// Inbound sockets (local port listening) or outbound (made by connect()).
    #[arg(long, value_enum, global = true)]
    pub direction: Option<Direction>,

    /// Read this network namespace: a name under /run/netns, or a path such
    /// as /proc/PID/ns/net. Needs root.
    #[arg(
        long,
        value_name = "NAME|PATH",
        global = true,
        conflicts_with = "all_netns"
    )]
    pub netns: Option<String>,

    /// Read every named network namespace and every namespace a process is
    /// in (containers), one after another, with a NETNS column.
    #[arg(long, global = true)]
    pub all_netns: bool,

    /// Name the process owning each socket (pid and command), from one walk
    /// of /proc/*/fd. TIME_WAIT sockets have no owner.
    #[arg(short = 'p', long, global = true)]
    pub processes: bool,

    /// TCP sockets (ss's -t). Without -a, -l or a state: ss's default set,
    /// the connected sockets (not LISTEN, TIME_WAIT, SYN_RECV or CLOSE).
    #[arg(short = 't', long = "tcp", global = true)]
    pub tcp: bool,

    /// UDP sockets (ss's -u).
    #[arg(short = 'u', long = "udp", global = true)]
    pub udp: bool,

    /// UNIX sockets (ss's -x).
    #[arg(short = 'x', long = "unix", global = true)]
    pub unix: bool,

    /// Every state (ss's -a): listening and TIME_WAIT sockets included.
    #[arg(short = 'a', long = "all", global = true)]
    pub all: bool,

    /// Listening sockets only (ss's -l).
    #[arg(short = 'l', long = "listening", global = true)]
    pub listening: bool,

    /// Numbers, not names (ss's -n): tw never resolves, so this is the
    /// default and the flag is accepted for ss's habits.
    #[arg(short = 'n', long = "numeric", global = true)]
    pub numeric: bool,

    /// No header line in listings (ss's -H); on a terminal the rows come
    /// as plain columns.
    #[arg(short = 'H', long = "no-header", global = true)]
    pub no_header: bool,

    /// Colour: auto (a terminal, NO_COLOR unset), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    /// ss's -N NAME: the same as --netns NAME.
    #[arg(
        short = 'N',
        long = "net",
        value_name = "NAME",
        global = true,
        conflicts_with_all = ["netns", "all_netns"]
    )]
    pub net: Option<String>,

    /// ss's -f FAMILY: inet (as -4), inet6 (as -6), unix (as -x).
    #[arg(short = 'f', long = "family", value_name = "FAMILY", global = true)]
    pub family: Vec<String>,

    /// ss's -A QUERY: comma list of tcp, udp, unix (unix_stream...), inet, all.
    #[arg(
        short = 'A',
        long = "query",
        value_name = "QUERY",
        value_delimiter = ',',
        global = true
    )]
    pub query: Vec<String>,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// ss's display flags. tw always shows the timer (`-o`), uid and inode
/// (`-e`); `-i` and `-m` add TCP internals and socket memory.
#[derive(Debug, Args, Default, Clone, Copy)]
pub struct Show {
    /// Timers (ss's -o): always shown by tw; accepted for ss's habits.
    #[arg(short = 'o', long = "options")]
    pub options: bool,

    /// Uid and inode (ss's -e): always shown by tw; accepted for ss's habits.
    #[arg(short = 'e', long = "extended")]
    pub extended: bool,

    /// TCP internals from tcp_info (ss's -i): rtt, cwnd, retransmits,
    /// bytes, delivery and pacing rates, congestion control.
    #[arg(short = 'i', long = "info")]
    pub info: bool,

    /// Socket memory (ss's -m): the kernel's skmeminfo.
    #[arg(short = 'm', long = "memory")]
    pub memory: bool,
}

impl Show {
    pub fn any(&self) -> bool {
        self.options || self.extended || self.info || self.memory
    }

    pub fn or(self, o: Show) -> Show {
        Show {
            options: self.options || o.options,
            extended: self.extended || o.extended,
            info: self.info || o.info,
            memory: self.memory || o.memory,
        }
    }
}

/// ss's flags that have no meaning for tw, taken only to be refused with a
/// reason (clap's own error would suggest `-- -r`, which is no help).
#[derive(Debug, Args, Default)]
pub struct Unsupported {
    #[arg(short = 'r', long = "resolve", hide = true, global = true)]
    pub resolve: bool,
    #[arg(short = 'K', long = "kill", hide = true, global = true)]
    pub kill: bool,
    #[arg(
        short = 'D',
        long = "diag",
        value_name = "FILE",
        hide = true,
        global = true
    )]
    pub diag: Option<PathBuf>,
    #[arg(
        short = 'F',
        long = "filter",
        value_name = "FILE",
        hide = true,
        global = true
    )]
    pub filter_file: Option<PathBuf>,
    // ss's -E, short only: `--events` is `tw watch`'s and `tw serve`'s (eBPF events).
    #[arg(short = 'E', id = "ss_events", hide = true, global = true)]
    pub events: bool,
    #[arg(short = 'Z', long = "context", hide = true, global = true)]
    pub context: bool,
    #[arg(short = 'z', long = "contexts", hide = true, global = true)]
    pub contexts: bool,
    #[arg(short = 'b', long = "bpf", hide = true, global = true)]
    pub bpf: bool,
    #[arg(short = 'w', long = "raw", hide = true, global = true)]
    pub raw: bool,
    #[arg(short = 'S', long = "sctp", hide = true, global = true)]
    pub sctp: bool,
    #[arg(short = 'd', long = "dccp", hide = true, global = true)]
    pub dccp: bool,
    #[arg(short = '0', long = "packet", hide = true, global = true)]
    pub packet: bool,
    #[arg(short = 'M', long = "mptcp", hide = true, global = true)]
    pub mptcp: bool,
    #[arg(short = 'O', long = "oneline", hide = true, global = true)]
    pub oneline: bool,
}

impl Unsupported {
    /// The first flag given, with why tw does not take it and what to do.
    pub fn refusal(&self) -> Option<String> {
        let say = |flag: &str, why: &str| Some(format!("{flag}: {why}"));
        if self.resolve {
            return say(
                "-r",
                "tw prints addresses and ports as numbers and never resolves names; leave -r out",
            );
        }
        if self.kill {
            return say(
                "-K",
                "tw only reads sockets and never closes them; use `ss -K` for that",
            );
        }
        if self.diag.is_some() {
            return say(
                "-D",
                "to save a raw sock_diag dump use `tw capture DIR` (or `ss -D FILE`), and read one                  with `tw --from FILE`",
            );
        }
        if self.filter_file.is_some() {
            return say(
                "-F",
                "tw takes the filter on the command line: `tw ls $(cat FILE)`",
            );
        }
        if self.events {
            return say(
                "-E",
                "tw has no socket event stream; `tw trace` shows TCP events, and `tw watch` counts \
                 TIME_WAIT inflow from them",
            );
        }
        if self.context || self.contexts {
            return say(
                if self.context { "-Z" } else { "-z" },
                "tw does not read SELinux contexts; use `ss -Z`",
            );
        }
        if self.bpf {
            return say(
                "-b",
                "tw does not read classic BPF filters of sockets; use `ss -b`",
            );
        }
        for (on, flag, what) in [
            (self.raw, "-w", "RAW"),
            (self.sctp, "-S", "SCTP"),
            (self.dccp, "-d", "DCCP"),
            (self.packet, "-0", "PACKET"),
            (self.mptcp, "-M", "MPTCP"),
        ] {
            if on {
                return Some(format!(
                    "{flag}: tw reads TCP sockets, not {what} sockets; use `ss {flag}`"
                ));
            }
        }
        if self.oneline {
            return say(
                "-O",
                "tw prints one line per socket already (plain when piped, or -H); leave -O out",
            );
        }
        None
    }
}

/// A filter in ss's language after the command: `dport = :443`,
/// `'( sport = :80 or sport = :443 ) and dst 10.0.0.0/8'`, `state
/// time-wait`. No word of the language starts with `-`, so options may come
/// before or after it.
#[derive(Debug, Args, Default)]
pub struct Expression {
    /// Filter expression, as ss takes it: dport = :443, sport gt :1024,
    /// dst 10.0.0.0/8, src [::1], not, and, or, ( ), state NAME.
    #[arg(value_name = "EXPRESSION")]
    pub words: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub expr: Expression,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Sort rows [default: the kernel's order].
    #[arg(long, value_enum)]
    pub sort: Option<SortKey>,

    /// Show at most N rows (after sorting).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    #[command(flatten)]
    pub show: Show,

    #[command(flatten)]
    pub expr: Expression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    /// By state, in the kernel's order (ESTABLISHED first).
    State,
    /// By local address and port.
    Local,
    /// By remote address and port.
    Peer,
    /// By time left on the timer, soonest first; no timer last.
    Timer,
}

#[derive(Debug, Args)]
pub struct CountArgs {
    /// Count per group instead of in total.
    #[arg(long, value_enum, value_name = "KEY")]
    pub by: Option<GroupBy>,

    /// With --by: only the N largest groups.
    #[arg(long, value_name = "N", requires = "by")]
    pub top: Option<usize>,

    /// With --by: per group, health from tcp_info: connections, rtt
    /// p50/p95/max, retransmitted share of segments sent, bytes sent and
    /// received (LISTEN, TIME_WAIT and request sockets have none).
    #[arg(long, requires = "by")]
    pub stats: bool,

    /// Exit 1 when the total is above N (for cron and monitoring checks).
    #[arg(long, value_name = "N")]
    pub fail_above: Option<u64>,

    #[command(flatten)]
    pub expr: Expression,
}

#[derive(Debug, Args)]
pub struct PortsArgs {
    /// Only the N busiest destinations.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,

    #[command(flatten)]
    pub expr: Expression,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Show every check, not only those that found something.
    #[arg(long, short)]
    pub verbose: bool,

    /// First trace TCP events for SECONDS (eBPF, root): name the process
    /// that fills a destination's ports and the connect() calls that failed.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub trace: Option<u64>,

    #[command(flatten)]
    pub expr: Expression,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A state (time-wait, CLOSE_WAIT) or sysctl (tcp_tw_reuse,
    /// net.ipv4.ip_local_port_range); without one, lists every topic.
    pub topic: Option<String>,
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// A new or empty folder to write (created if missing; never one on /proc
    /// or /sys, and nothing in it is followed).
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Per-destination series for only the N destinations holding the most
    /// ports, so that label cardinality stays bounded.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on: HOST:PORT, with a host name
    /// (localhost: every address it resolves to), an IPv4 address or a
    /// bracketed IPv6 one. Loopback by default; a fleet's Prometheus needs
    /// an address it can reach.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9838")]
    pub listen: String,

    /// Time limit of one scrape, in seconds (Prometheus's own scrape timeout
    /// wins when shorter); past it the scrape gets 503.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,

    /// eBPF event counters (TIME_WAIT entered, ports run out, resets, per
    /// destination, listening port and process): auto turns them on when tw
    /// reads the live kernel and may load eBPF, and otherwise says why in one
    /// line and serves the gauges; on fails instead; off never tries.
    #[arg(long = "events", id = "serve_events", value_enum, value_name = "WHEN",
          default_value_t = EventsWhen::Auto)]
    pub events: EventsWhen,

    /// Destinations, listening ports and processes with event series of
    /// their own, each; later ones count into `other`, so every series stays
    /// a counter that only grows.
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_series: u64,

    /// Take the snapshot of the socket table in the background every SECS
    /// seconds and answer scrapes from the latest one, so a scrape never
    /// waits for a dump (for large tables). 0, the default: a fresh snapshot
    /// per scrape.
    #[arg(long, value_name = "SECS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub refresh: u64,

    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// `tw serve --events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventsWhen {
    Auto,
    On,
    Off,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Time between samples: 1s, 500ms, 2.5s (100ms to 30s).
    #[arg(long, value_name = "DURATION", default_value = "1s",
          value_parser = parse_interval)]
    pub interval: Duration,

    /// Stop after N intervals.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Also write one JSON object per interval to FILE, for `tw plot`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Show the N destinations nearest to running out of ports (and, with
    /// events, the N processes making the most TIME_WAIT).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub top: usize,

    /// Where the TIME_WAIT inflow comes from: eBPF events (exact, with
    /// connect() failures, takeovers and the processes; needs root and a
    /// kernel with BTF), samples of the table (timer ages), or events when
    /// they can be had.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = EventsChoice::Auto)]
    pub events: EventsChoice,

    /// With events: seconds between full dumps of the table (states, ports
    /// held); between them TIME_WAIT comes from /proc/net/sockstat and the
    /// events. 0 dumps every interval. [default: auto: every interval while
    /// a dump costs under 1% of a core, at least every 60 s]
    #[arg(long, value_name = "SECONDS", value_parser = parse_dump_every)]
    pub dump_every: Option<Duration>,

    #[command(flatten)]
    pub expr: Expression,
}

/// `tw watch --events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EventsChoice {
    /// Events when the kernel allows them, else samples (said once).
    #[default]
    Auto,
    /// Events, or fail saying why not.
    On,
    /// Samples only: the inflow from 4-tuples new since the last sample.
    Off,
}

/// `--dump-every`: whole or fractional seconds, 0 to 600.
pub fn parse_dump_every(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let v: f64 = t
        .strip_suffix('s')
        .unwrap_or(t)
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && (0.0..=600.0).contains(v))
        .ok_or_else(|| {
            format!("expected seconds from 0 (every interval) to 600, such as 30, got {text:?}")
        })?;
    Ok(Duration::from_secs_f64(v))
}

#[derive(Debug, Args)]
pub struct ConntrackArgs {
    /// Count entries per group instead: state, proto, dst (address:port),
    /// daddr, dport, src, zone, mark. KEY<TAB>COUNT lines when piped.
    #[arg(long, value_enum, value_name = "KEY")]
    pub by: Option<crate::analyze::conntrack::CtBy>,

    /// Rows of each top list, and of --by [default: 10; --by: all].
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,

    /// Print one integer: the entries that pass the filters.
    #[arg(long)]
    pub count: bool,

    /// Protocols to keep: tcp, udp, icmp, icmpv6, sctp, gre, or a number.
    /// Comma lists. (--state takes conntrack's states: TIME_WAIT, SYN_SENT,
    /// FIN_WAIT, CLOSE ..., and UNREPLIED, ASSURED, REPLIED.)
    #[arg(long, value_name = "PROTO", value_delimiter = ',',
          value_parser = crate::model::conntrack::parse_proto)]
    pub proto: Vec<u8>,

    /// Exit 1 when more than N entries pass the filters.
    #[arg(long, value_name = "N")]
    pub fail_above: Option<u64>,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Length of one interval (one JSON record per key, one redraw): 1s,
    /// 500ms, 2.5s (100ms to 30s).
    #[arg(long, value_name = "DURATION", default_value = "1s",
          value_parser = parse_interval)]
    pub interval: std::time::Duration,

    /// Stop after SECONDS (the last, partial interval is reported).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub duration: Option<u64>,

    /// One row per process, destination or listener [default: process and
    /// destination].
    #[arg(long, value_enum, value_name = "KEY")]
    pub by: Option<crate::analyze::trace::By>,

    #[command(flatten)]
    pub expr: Expression,
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// A file written by `tw watch --record FILE` or `tw watch > FILE`.
    pub file: PathBuf,

    /// The SVG file to write.
    #[arg(short, long, value_name = "SVG")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The command whose JSON to describe.
    #[arg(value_enum)]
    pub command: SchemaCommand,
}

/// The commands with a JSON Schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaCommand {
    Ls,
    /// `tw ls -i` / `-m`: rows with tcp_info and socket memory.
    LsInternals,
    /// `tw ls -x`: UNIX sockets.
    LsUnix,
    Count,
    /// `tw count --by KEY --stats`.
    CountStats,
    Summary,
    Ports,
    Doctor,
    Explain,
    Watch,
    Conntrack,
    Trace,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A new or empty folder to write tw.1, tw-COMMAND.1, tw.bash, _tw,
    /// tw.fish and the tw-COMMAND.schema.json files into.
    pub dir: PathBuf,
}

/// Shortest and longest `--interval`. A TIME_WAIT socket lives 60 s, so any
/// interval below that sees each one at least once; 30 s leaves a margin for
/// slow dumps.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
pub const MAX_INTERVAL: Duration = Duration::from_secs(30);

/// Parses `--interval`: `1s`, `500ms`, `1.5s`, `2m`... or bare seconds.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (t, 1000.0)
    };
    let value: f64 = num
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("expected a duration such as 1s, 500ms or 2.5s, got {text:?}"))?;
    // try_: 1e20 s is no Duration at all, and says so as any other too long.
    let d = Duration::try_from_secs_f64(value * unit_ms / 1000.0).unwrap_or(Duration::MAX);
    if d < MIN_INTERVAL || d > MAX_INTERVAL {
        return Err(format!(
            "must be between 100ms and 30s (TIME_WAIT lasts 60 s: a longer interval would \
             miss sockets that come and go between samples), got {text}"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let a = Cli::try_parse_from(["tw", "--state", "time-wait", "count", "-4"]).unwrap();
        let b = Cli::try_parse_from(["tw", "count", "--state", "time-wait", "-4"]).unwrap();
        assert_eq!(a.global.state, b.global.state);
        assert!(a.global.ipv4 && b.global.ipv4);
        assert!(matches!(a.command, Some(Command::Count(_))));
    }

    #[test]
    fn options_may_follow_an_expression() {
        let c =
            Cli::try_parse_from(["tw", "ls", "dport", "=", ":443", "--format", "json"]).unwrap();
        assert_eq!(c.global.format, Some(Format::Json));
        let Some(Command::Ls(a)) = c.command else {
            panic!("ls")
        };
        assert_eq!(a.expr.words, ["dport", "=", ":443"]);
        let c = Cli::try_parse_from(["tw", "count", "!", "(", "sport", "<", ":1024", ")"]).unwrap();
        let Some(Command::Count(a)) = c.command else {
            panic!("count")
        };
        assert_eq!(a.expr.words.len(), 6);
    }

    #[test]
    fn ports_and_addresses_take_comma_lists() {
        let c =
            Cli::try_parse_from(["tw", "ls", "--dport", "80,443", "--dst", "10.0.0.0/8"]).unwrap();
        assert_eq!(c.global.dport.len(), 2);
        assert_eq!(c.global.dst.len(), 1);
        assert!(Cli::try_parse_from(["tw", "ls", "--dport", "http"]).is_err());
        assert!(Cli::try_parse_from(["tw", "count", "--top", "3"]).is_err());
    }
    #[test]
    fn intervals_parse_with_units_and_limits() {
        let ok = [
            ("1s", 1000),
            ("500ms", 500),
            ("2.5s", 2500),
            ("2", 2000),
            ("0.5m", 30_000),
            (" 100ms ", 100),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_interval(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in ["0s", "50ms", "31s", "1h", "fast", "-1s", "NaNs", ""] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
        assert!(parse_interval("90s").unwrap_err().contains("60 s"));
    }

    #[test]
    fn an_interval_too_large_for_a_duration_is_refused_not_a_panic() {
        for huge in ["1e20", "1e20s", "1e300m", "1e30ms"] {
            let e = parse_interval(huge).unwrap_err();
            assert!(e.contains("between 100ms and 30s"), "{huge}: {e}");
        }
    }
}
