#!/usr/bin/env bash
# cargo-deb for tests/packaging.rs, which builds the .deb with
# packaging/build-deb and lists it with dpkg -c. Pinned: the version the
# package metadata was written against. About 75 s to build on 2 cores.
set -euo pipefail
if ! cargo deb --version >/dev/null 2>&1; then
  cargo install --locked cargo-deb@3.8.0
fi
