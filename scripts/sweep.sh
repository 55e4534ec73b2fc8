#!/usr/bin/env bash
# `make sweep`: run a sweep (default: every fusion × learning rate, configs/sweeps/fusion-lr.yaml) with every
# trial recorded under the work directory and tracked to a W&B-compatible server. When WANDB_BASE_URL is not
# set, a local `mami serve` is started for the sweep on the work directory's server database, so that
# `make serve` shows the runs afterwards. Extra arguments go to `mami sweep` (e.g. --parallel 1).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MAMI_BIN:-bin/mami}
sweep=${SWEEP:-configs/sweeps/fusion-lr.yaml}
workdir=${MAMI_WORKDIR:-.mami}
export MAMI_WORKDIR=$workdir

server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; true; }
trap cleanup EXIT

if [ -z "${WANDB_BASE_URL:-}" ] && [ "${WANDB_MODE:-}" != disabled ] && [ "${WANDB_MODE:-}" != offline ]; then
  mkdir -p "$workdir/server"
  keyfile="$workdir/server/local-api-key"
  if [ ! -s "$keyfile" ]; then
    (umask 077; od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$keyfile")
  fi
  key=$(cat "$keyfile")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)
  "$bin" serve --addr "127.0.0.1:$port" --data "$workdir/server" --api-key "$key" >"$workdir/server/sweep-serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$workdir/server/sweep-serve.log" >&2; exit 1; }
    sleep 0.1
  done
  export WANDB_BASE_URL="http://127.0.0.1:$port" WANDB_API_KEY="$key"
  echo "sweep: tracking to a local mami serve at $WANDB_BASE_URL (database $workdir/server)"
fi

"$bin" sweep "$sweep" "$@"

if [ -n "$server_pid" ]; then
  echo "sweep: the runs are in the dashboard: make serve  (then open the URL it prints)"
fi
