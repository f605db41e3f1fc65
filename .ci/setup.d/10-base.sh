#!/usr/bin/env bash
# iproute2: ip netns and ss (the live tests compare against ss);
# net-tools: netstat, for the comparisons in README and benchmarks.
set -euo pipefail
need=()
command -v ip >/dev/null && command -v ss >/dev/null || need+=(iproute2)
command -v netstat >/dev/null || need+=(net-tools)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
