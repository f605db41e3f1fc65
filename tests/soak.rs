//! Differential soak: randomised stable populations (every socket kind the harness makes, in
//! IPv4, IPv6 and IPv4-mapped form), each in its own namespace, where tw's set of (state,
//! local, peer) must equal ss's and the population's, for both sources, along with the counts
//! per state. Seeds are fixed so a failure can be replayed; `TW_SOAK_SEEDS=N` runs N more.
//! Needs root and iproute2; see tests/common/mod.rs.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{ss_tuples, tw_endpoint, Net, Netns, Population, Tuple};

const TW: &str = env!("CARGO_BIN_EXE_tw");
/// Seeds per test; the two tests below split the work between both cores.
const SEEDS: u64 = 40;

/// xorshift64*: small, deterministic, good enough to pick counts.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// A population drawn from `seed`: for each address form, a few listeners and a random number
/// of each kind of connection, some kinds left out entirely.
fn draw(seed: u64) -> (String, common::Builder) {
    let mut rng = Rng::new(seed);
    let mut b = Population::builder();
    let mut what = Vec::new();
    for net in [Net::V4, Net::V6, Net::Mapped] {
        if rng.below(5) == 0 {
            continue; // this address form not at all
        }
        let listeners = 1 + rng.below(4);
        // Half the time a kind is absent, so every combination shows up across seeds.
        let mut some = |max: usize| {
            if rng.below(2) == 0 {
                0
            } else {
                rng.below(max + 1)
            }
        };
        let (est, half, orphan, tw) = (some(25), some(8), some(6), some(1500));
        what.push(format!(
            "{net:?}: {listeners} listeners, {est} established, {half} half-closed, {orphan} \
             orphaned FIN_WAIT2, {tw} TIME_WAIT"
        ));
        b = b
            .listeners(net, listeners)
            .established(net, est)
            .half_closed(net, half)
            .orphan_fin_wait2(net, orphan)
            .time_wait(net, tw);
    }
    (what.join("; "), b)
}

fn tw_out(ns: &Netns, args: &[&str]) -> String {
    let out = ns.output(TW, args);
    assert!(
        out.status.success(),
        "tw {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// tw's listing as (state, local, peer), each row once (a repeat fails the test).
fn tw_tuples(ns: &Netns, source: &str) -> BTreeSet<Tuple> {
    let text = tw_out(ns, &["ls", "--format", "json", "--source", source]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("JSON array");
    let mut set = BTreeSet::new();
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or_else(|| panic!("{k} in {r}"));
        let t = (
            s("state").to_string(),
            tw_endpoint(s("local")),
            tw_endpoint(s("peer")),
        );
        assert!(
            set.insert(t.clone()),
            "--source {source}: {t:?} listed twice"
        );
    }
    set
}

fn soak(seeds: impl Iterator<Item = u64>) {
    for seed in seeds {
        let (what, builder) = draw(seed);
        let ns = Netns::new(&format!("soak{seed}"));
        let pop = builder.build(&ns);
        let made = pop.tuples();
        let ss = ss_tuples(&ns, &[]);
        assert_eq!(
            ss, made,
            "seed {seed} ({what}): ss disagrees with what was made"
        );
        let mut by_state = BTreeMap::<String, usize>::new();
        for t in &made {
            *by_state.entry(t.0.clone()).or_default() += 1;
        }
        for source in ["netlink", "proc"] {
            let listed = tw_tuples(&ns, source);
            if listed != ss {
                panic!(
                    "seed {seed} ({what}), --source {source}: only tw: {:?}; only ss: {:?}",
                    listed.difference(&ss).take(10).collect::<Vec<_>>(),
                    ss.difference(&listed).take(10).collect::<Vec<_>>()
                );
            }
            let counted: BTreeMap<String, usize> =
                tw_out(&ns, &["count", "--by", "state", "--source", source])
                    .lines()
                    .map(|l| {
                        let (k, n) = l.split_once('\t').expect("KEY<TAB>COUNT");
                        (k.to_string(), n.parse().expect("a count"))
                    })
                    .collect();
            assert_eq!(counted, by_state, "seed {seed} ({what}), --source {source}");
        }
    }
}

fn extra_seeds() -> u64 {
    std::env::var("TW_SOAK_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn tw_lists_what_ss_lists_over_random_populations_odd_seeds() {
    soak((0..SEEDS + extra_seeds()).map(|i| 2 * i + 1));
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn tw_lists_what_ss_lists_over_random_populations_even_seeds() {
    soak((0..SEEDS + extra_seeds()).map(|i| 2 * i + 2));
}
