#!/usr/bin/env bash
# Builds the fake CUDA driver (models/cuda/kernels/testdata/fake_libcuda.cpp) into DIR/libcuda.so.1:
# mami.cu's kernels run on the CPU behind the driver API, so that bin/mami-cuda and the mamicuda tests
# run their whole GPU path on a machine without a GPU:
#
#   scripts/fake-libcuda.sh .mami/fake-cuda
#   LD_LIBRARY_PATH=.mami/fake-cuda bin/mami-cuda gpu parity --rows 200
#
# Needs g++ with C++20 on x86-64. Used by `make gpu-rehearsal` and models/cuda's TestFakeDriver.
set -euo pipefail
dir=${1:?usage: scripts/fake-libcuda.sh DIR}
src="$(cd "$(dirname "$0")/.." && pwd)/models/cuda/kernels"
mkdir -p "$dir"
# One K(name) per kernel of mami.cu, for the fake's dispatch table.
sed -n 's/^extern "C" __global__ void \([A-Za-z0-9_]*\)(.*/K(\1)/p' "$src/mami.cu" >"$dir/fake_kernels.inc"
[ -s "$dir/fake_kernels.inc" ] || { echo "fake-libcuda: no kernels found in $src/mami.cu" >&2; exit 1; }
${CXX:-g++} -std=c++20 -O2 -g -fPIC -shared -pthread -Wall -Wno-unknown-pragmas -Wno-sign-compare -Wl,-soname,libcuda.so.1 \
  -I "$dir" -include "$src/testdata/fiber_shim.h" "$src/testdata/fake_libcuda.cpp" -o "$dir/libcuda.so.1.tmp"
mv "$dir/libcuda.so.1.tmp" "$dir/libcuda.so.1"
