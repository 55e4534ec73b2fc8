#!/usr/bin/env bash
# Training throughput of mami against PyTorch on this machine, side by side: the bench-seed-head workload
# (configs/bench-seed-head.yaml), each side run REPS times interleaved (mami, torch, mami, torch, ...), and
# the medians of samples/s inside the training loop compared. Usage: scripts/bench.sh [REPS]  (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
bin=${MAMI_BIN:-bin/mami}
py=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "bench: PyTorch is not importable by $py (Debian: apt-get install python3-torch); set PYTHON=..." >&2
  exit 1
fi

mami=() torch=()
for i in $(seq 1 "$reps"); do
  "$bin" train -c configs/bench-seed-head.yaml --set workdir="$work" --set run.id="bench-$i" >"$work/log-$i" 2>&1 ||
    { cat "$work/log-$i" >&2; exit 1; }
  m=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["perf/train_samples_per_s"])' "$work/runs/bench-$i/summary.json")
  t=$("$py" scripts/bench_torch.py --samples 7200 | "$py" -c 'import json,sys; print(json.load(sys.stdin)["samples_per_s"])')
  printf 'rep %d: mami %.0f samples/s, pytorch %.0f samples/s\n' "$i" "$m" "$t"
  mami+=("$m") torch+=("$t")
done

"$py" - "${mami[*]}" "${torch[*]}" <<'PY'
import platform, statistics, subprocess, sys
m = [float(x) for x in sys.argv[1].split()]
t = [float(x) for x in sys.argv[2].split()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
mm, tm = statistics.median(m), statistics.median(t)
print(f"machine: {cpu}, {cores} cores")
print(f"bench-seed-head, median of {len(m)}: mami {mm:,.0f} samples/s (min {min(m):,.0f}, max {max(m):,.0f}); "
      f"PyTorch {tm:,.0f} samples/s (min {min(t):,.0f}, max {max(t):,.0f})")
print(f"ratio mami/PyTorch: {mm / tm:.2f}x")
PY
