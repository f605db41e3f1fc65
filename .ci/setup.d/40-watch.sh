#!/usr/bin/env bash
# tw watch and tw plot tests: tmux drives the live view (tests/watch.rs);
# rsvg-convert (librsvg2-bin) and pdftotext (poppler-utils) check that a stock
# renderer lays out the chart's text.
set -euo pipefail
need=()
command -v tmux >/dev/null || need+=(tmux)
command -v rsvg-convert >/dev/null || need+=(librsvg2-bin)
command -v pdftotext >/dev/null || need+=(poppler-utils)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
