#!/usr/bin/env bash
# Prometheus and promtool (Debian's prometheus package) for tests/serve.rs,
# which starts a Prometheus server inside its own namespace to scrape
# `tw serve`, and tests/metrics.rs, where promtool checks `tw metrics` and
# the example alerting rules. No recommends (node-exporter); policy-rc.d 101
# keeps the package from starting its service on the host.
set -euo pipefail
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  apt-get update -qq
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get install -y -qq --no-install-recommends prometheus
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
