#!/usr/bin/env bash
# tests/conntrack.rs: conntrack-tools (`conntrack -L`, the reference view of the table) and
# nftables (a rule in the test's own namespace turns tracking on). nf_conntrack may be a
# module: load it, with nf_conntrack_netlink (ctnetlink), when the kernel has them as modules;
# a kernel with them built in (or without module support) needs nothing.
set -euo pipefail
need=()
command -v conntrack >/dev/null || need+=(conntrack)
command -v nft >/dev/null || need+=(nftables)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [ ! -e /proc/sys/net/netfilter/nf_conntrack_max ] && command -v modprobe >/dev/null; then
  modprobe nf_conntrack || true
  modprobe nf_conntrack_netlink || true
fi
if [ ! -e /proc/sys/net/netfilter/nf_conntrack_max ]; then
  echo "45-conntrack: nf_conntrack is not available in this kernel; tests/conntrack.rs will fail" >&2
fi
