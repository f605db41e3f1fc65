#!/usr/bin/env bash
# tests/trace.rs: clang and llvm-strip (Debian's llvm) rebuild the eBPF
# object with scripts/build-bpf, to check that the committed bpf/tw.bpf.o is
# what bpf/tw.bpf.c builds (bpf/CLANG_VERSION names the clang it must be);
# setpriv (util-linux) runs `tw trace` without privilege. `cargo build`
# itself needs none of these: the object is committed.
set -euo pipefail
need=()
command -v clang >/dev/null || need+=(clang)
command -v llvm-strip >/dev/null || need+=(llvm)
command -v setpriv >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
