#!/usr/bin/env bash
# Builds the binary scripts/gpu-check.sh runs on a GPU machine, ready to carry there: bin/mami-cuda.gz.
# It is bin/mami-cuda (make build-cuda) with OpenBLAS linked in statically when libopenblas.a is installed
# (Debian: libopenblas-dev), so that the CPU backend the GPU is compared with on that machine is the fast
# one and the machine needs no OpenBLAS of its own; stripped and gzipped (the uncompressed binary is
# mostly zeros) to stay far under the device tool's 64 MiB. Its `version` line says which BLAS it has.
set -euo pipefail
cd "$(dirname "$0")/.."
tags=mamicuda
extld=""
lib=$(ls /usr/lib/x86_64-linux-gnu/libopenblas.a /usr/lib64/libopenblas.a /usr/lib/libopenblas.a 2>/dev/null | head -n 1 || true)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "$lib" ]; then
  # The linker takes the first libopenblas it finds along -L: a folder holding only the archive wins.
  ln -s "$(readlink -f "$lib")" "$tmp/libopenblas.a"
  export CGO_LDFLAGS="-L$tmp ${CGO_LDFLAGS:-}"
  tags=mamicuda,openblas extld='-extldflags "-lm"'
else
  echo "build-gpu-binary: no libopenblas.a; the CPU backend in this binary uses the pure-Go BLAS (several times slower)" >&2
fi
mkdir -p bin
go build -tags "$tags" -ldflags "-s -w $extld" -o "$tmp/mami-cuda" ./cmd/mami
if ldd "$tmp/mami-cuda" | grep -q libopenblas; then
  echo "build-gpu-binary: the binary still loads libopenblas.so dynamically" >&2
  exit 1
fi
"$tmp/mami-cuda" version 2>/dev/null | head -n 1 || true
gzip -9 -c "$tmp/mami-cuda" >bin/mami-cuda.gz.tmp
mv bin/mami-cuda.gz.tmp bin/mami-cuda.gz
ls -l bin/mami-cuda.gz
