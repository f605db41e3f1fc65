#!/usr/bin/env bash
# node_exporter (Debian's prometheus-node-exporter) for tests/serve.rs: the
# Grafana dashboard and the recording rules in packaging/ join tw's metrics
# with node_exporter's (tcpstat, netstat), and the test runs both inside its
# own namespace. policy-rc.d 101 keeps the package from starting its service
# on the host.
set -euo pipefail
if ! command -v prometheus-node-exporter >/dev/null; then
  apt-get update -qq
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get install -y -qq --no-install-recommends prometheus-node-exporter
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
