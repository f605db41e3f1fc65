#!/usr/bin/env bash
# Fuzzes each target under fuzz/ for a bounded time (TW_FUZZ_SECONDS, 60 by
# default) from a seed corpus built out of fixtures/; any crash, hang or
# failed check fails CI, and the input is printed for a regression test.
#
# cargo fuzz needs nightly-only flags; this machine's stable toolchain
# accepts them with RUSTC_BOOTSTRAP=1. No sanitizer: the code under test is
# safe Rust, so AddressSanitizer finds nothing the checks would not, and it
# doubles build time; overflow checks and debug assertions stay on.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
# cargo-fuzz itself; installed here rather than in setup.d, since the test
# suite (scripts/test) does not need it.
if ! command -v cargo-fuzz >/dev/null; then
  cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
secs=${TW_FUZZ_SECONDS:-60}
fixtures=../fixtures

targets=(proc_parse netlink_decode netlink_messages serve_request proc_facts plot_records)
# The filter language's parser, when the tree has one.
if grep -q '^name = "expr_parse"' Cargo.toml; then
  targets+=(expr_parse)
fi

# Seeds. proc_parse reads two bytes of state mask first: zeros keep every
# state. netlink_messages edits the fixture captures itself and needs none.
rm -rf corpus
mkdir -p "${targets[@]/#/corpus/}"
for f in "$fixtures"/proc/tcp* "$fixtures"/corrupt/tcp-* "$fixtures"/procroot/*/net/tcp*; do
  { printf '\0\0'; cat "$f"; } >"corpus/proc_parse/$(echo "${f#"$fixtures"/}" | tr / _)"
done
for f in "$fixtures"/netlink/*.dump "$fixtures"/iproute2/*.dump "$fixtures"/corrupt/*.dump; do
  cp "$f" "corpus/netlink_decode/$(echo "${f#"$fixtures"/}" | tr / _)"
done
if [ -d seeds/expr_parse ] && [ -d corpus/expr_parse ]; then
  cp seeds/expr_parse/* corpus/expr_parse/
fi
# serve_request: requests as Prometheus and curl send them, and broken ones.
printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n' >corpus/serve_request/scrape
printf 'HEAD /healthz HTTP/1.0\r\nConnection: close\r\n\r\n' >corpus/serve_request/health
printf 'POST /metrics?x=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\n' >corpus/serve_request/post
# proc_facts: one byte picks the file (its index in CAPTURE_FILES, src/source/facts.rs),
# then its text.
i=0
for pick in 0:sys/net/ipv4/ip_local_port_range 1:sys/net/ipv4/ip_local_reserved_ports \
    2:sys/net/ipv4/tcp_tw_reuse 12:net/sockstat 14:net/netstat 15:net/snmp; do
  for f in "$fixtures"/procroot/*/"${pick#*:}"; do
    [ -f "$f" ] || continue
    i=$((i + 1))
    { printf "\\$(printf %03o "${pick%%:*}")"; cat "$f"; } >"corpus/proc_facts/$i"
  done
done
# plot_records: the recorded fixture, whole and cut.
for f in "$fixtures"/watch/*.jsonl; do
  cp "$f" "corpus/plot_records/$(basename "$f")"
  head -c 3000 "$f" >"corpus/plot_records/cut-$(basename "$f")"
done

cargo fuzz build --sanitizer none
for t in "${targets[@]}"; do
  echo "== fuzz: $t for ${secs}s"
  if ! cargo fuzz run --sanitizer none "$t" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -print_final_stats=1; then
    for a in artifacts/"$t"/*; do
      [ -e "$a" ] || continue
      echo "== $a"
      od -A d -t x1 "$a" | head -40
      cargo fuzz fmt --sanitizer none "$t" "$a" || true
    done
    exit 1
  fi
done
