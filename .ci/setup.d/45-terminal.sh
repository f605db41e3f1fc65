#!/usr/bin/env bash
# tests/terminal.rs runs tw on a pseudo-terminal of a chosen size with
# script(1) (util-linux; bsdutils on Debian).
set -euo pipefail
if ! command -v script >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends bsdutils
fi
