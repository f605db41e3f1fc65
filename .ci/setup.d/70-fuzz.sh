#!/usr/bin/env bash
# cargo-fuzz for .ci/after.d/70-fuzz.sh (libFuzzer targets under fuzz/).
# It needs nightly-only flags (-Zsanitizer); this machine has only the stable
# toolchain, so the after-script runs it with RUSTC_BOOTSTRAP=1.
set -euo pipefail
if ! command -v cargo-fuzz >/dev/null; then
  cargo install --locked cargo-fuzz
fi
