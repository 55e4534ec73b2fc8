#!/usr/bin/env bash
# Training throughput of mami against PyTorch on this machine, side by side: the bench-seed-head workload
# (configs/bench-seed-head.yaml), each variant run REPS times interleaved (mami, mami streaming to a local
# mami serve, PyTorch, mami, ...), and the medians of samples/s inside the training loop compared: mami
# against PyTorch, and the tracking overhead (online vs disabled). Usage: scripts/bench.sh [REPS] (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
bin=${MAMI_BIN:-bin/mami}
py=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT

if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "bench: PyTorch is not importable by $py (Debian: apt-get install python3-torch); set PYTHON=..." >&2
  exit 1
fi

key=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" serve --addr "127.0.0.1:$port" --data "$work/server" --api-key "$key" >"$work/serve.log" 2>&1 &
server_pid=$!
until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done

perf() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["perf/train_samples_per_s"])' "$work/runs/$1/summary.json"; }
mami=() online=() torch=()
for i in $(seq 1 "$reps"); do
  "$bin" train -c configs/bench-seed-head.yaml --set workdir="$work" --set run.id="off-$i" >"$work/log-off-$i" 2>&1 ||
    { cat "$work/log-off-$i" >&2; exit 1; }
  WANDB_BASE_URL="http://127.0.0.1:$port" WANDB_API_KEY="$key" "$bin" train -c configs/bench-seed-head.yaml \
    --set workdir="$work" --set run.id="on-$i" --set tracking.mode=online >"$work/log-on-$i" 2>&1 ||
    { cat "$work/log-on-$i" >&2; exit 1; }
  t=$("$py" scripts/bench_torch.py --samples 7200 | "$py" -c 'import json,sys; print(json.load(sys.stdin)["samples_per_s"])')
  m=$(perf "off-$i") o=$(perf "on-$i")
  printf 'rep %d: mami %.0f samples/s, mami streaming %.0f samples/s, pytorch %.0f samples/s\n' "$i" "$m" "$o" "$t"
  mami+=("$m") online+=("$o") torch+=("$t")
done

"$py" - "${mami[*]}" "${torch[*]}" "${online[*]}" <<'PY'
import platform, statistics, subprocess, sys
m = [float(x) for x in sys.argv[1].split()]
t = [float(x) for x in sys.argv[2].split()]
o = [float(x) for x in sys.argv[3].split()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
mm, tm = statistics.median(m), statistics.median(t)
print(f"machine: {cpu}, {cores} cores")
print(f"bench-seed-head, median of {len(m)}: mami {mm:,.0f} samples/s (min {min(m):,.0f}, max {max(m):,.0f}); "
      f"PyTorch {tm:,.0f} samples/s (min {min(t):,.0f}, max {max(t):,.0f})")
print(f"ratio mami/PyTorch: {mm / tm:.2f}x")
om = statistics.median(o)
print(f"tracking overhead: streaming to a local mami serve {om:,.0f} samples/s vs disabled {mm:,.0f} "
      f"({(mm - om) / mm * 100:+.1f}% slower)")
PY
