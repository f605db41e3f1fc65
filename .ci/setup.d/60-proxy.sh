#!/usr/bin/env bash
# Real proxies for tests/proxy.rs: HAProxy and nginx from Debian, which the
# test starts inside its own namespace (policy-rc.d keeps the packages from
# starting their services on the host); strace for tests/hostile.rs, which
# proves that tw never writes under /proc; a C compiler for the netlink shim
# of tests/churn.rs and tests/hostile.rs (tests/support/nlshim.rs).
set -euo pipefail
need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx)
command -v strace >/dev/null || need+=(strace)
command -v cc >/dev/null && [ -e /usr/include/linux/netlink.h ] || need+=(gcc libc6-dev linux-libc-dev)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  # policy-rc.d 101: the packages' postinst must not start the services.
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}"
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
