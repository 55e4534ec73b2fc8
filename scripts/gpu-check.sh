#!/usr/bin/env bash
# GPU check of mami's CUDA backend, in one go, on a machine with an NVIDIA GPU (H100/H200 here), python3
# with PyTorch, and no Go or network. It needs only bin/mami-cuda.gz, built elsewhere by
# scripts/build-gpu-binary.sh (or bin/mami-cuda from `make build-cuda`), and this script. Total: a few
# minutes (budget about 8).
#
#   1. parity: every fusion (softmax_ce head, and concat with every head) trained 2 epochs on the GPU and on
#      the CPU backend side by side from the same weights, masks and batches: first-step gradients, epoch
#      1 and 2 training losses and the final eval loss within 1e-3 relative. Fails the script if not.
#   2. speed, the bench workload (configs/bench-seed-head.yaml: concat, bce, [512], Adam 1e-4, batch 64,
#      10 epochs of 7,200 memes): GPU backend vs CPU backend on this machine's cores vs PyTorch on the
#      same GPU with the same model and loop.
#   3. speed, the fusion × lr grid (7 fusions × 3 learning rates, 10 epochs each) on the GPU backend and
#      in PyTorch on the GPU; the CPU backend's time for it is measured on 1 epoch per fusion and scaled.
#   4. when compute-sanitizer is there: memcheck (every fusion, 1 epoch of 128 memes), racecheck and
#      synccheck (concat and gmu, 64 memes) on the GPU backend, at most 100 s each
#      (GPU_CHECK_SANITIZER_TIMEOUT); a reported error fails the script, a tool that cannot run is noted.
#
# Usage: scripts/gpu-check.sh [OUT_DIR]   (default .mami/gpu-check/)  → OUT_DIR/results.md (for docs/gpu.md),
# OUT_DIR/log.txt, the JSON and sanitizer files, and all of them in OUT_DIR/gpu-check.tgz (for tools that
# bring back only a few files). Environment: MAMI_BIN (default: bin/mami-cuda.gz unpacked, else
# bin/mami-cuda), PYTHON (python3).
# Rehearsals without a GPU (tiny sizes; PyTorch on the CPU, or skipped when it cannot run):
#   GPU_CHECK_DRY=1     the kernels' Go twin instead of the GPU (checks the script's plumbing);
#   GPU_CHECK_DRY=fake  bin/mami-cuda's whole GPU path against the fake driver in MAMI_FAKE_LIBCUDA (a folder
#                       with libcuda.so.1 from scripts/fake-libcuda.sh); `make gpu-rehearsal` runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.mami/gpu-check}
bin=${MAMI_BIN:-bin/mami-cuda}
py=${PYTHON:-python3}
mkdir -p "$out"
rm -f "$out"/*.json "$out"/sanitizer-*.txt "$out"/results.md "$out"/gpu-check.tgz
exec > >(tee "$out/log.txt") 2>&1

# scripts/build-gpu-binary.sh makes bin/mami-cuda.gz (OpenBLAS inside, compressed to carry): unpack it.
if [ -z "${MAMI_BIN:-}" ] && [ -f bin/mami-cuda.gz ]; then
  bin=$(mktemp -d)/mami-cuda
  gzip -dc bin/mami-cuda.gz >"$bin" && chmod +x "$bin"
fi
[ -x "$bin" ] || { echo "gpu-check: $bin not found or not executable (scripts/build-gpu-binary.sh or make build-cuda)"; exit 2; }

backend=cuda rows=2000 samples=7200 epochs=10 cpu_epochs=2
san_rows=128 race_rows=64
case "${GPU_CHECK_DRY:-}" in
  "")
    # The driver's libcuda may live outside the loader's default path on these machines.
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu; do
      [ -e "$d/libcuda.so.1" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" && break
    done ;;
  1)
    backend=ref rows=150 samples=256 epochs=2 cpu_epochs=1 dry_lrs=1e-3
    echo "gpu-check: DRY RUN on the Go reference backend; the numbers mean nothing" ;;
  fake)
    [ -e "${MAMI_FAKE_LIBCUDA:-}/libcuda.so.1" ] || { echo "gpu-check: GPU_CHECK_DRY=fake needs MAMI_FAKE_LIBCUDA=DIR holding libcuda.so.1 (scripts/fake-libcuda.sh DIR)"; exit 2; }
    export LD_LIBRARY_PATH="$MAMI_FAKE_LIBCUDA"
    rows=100 samples=256 epochs=2 cpu_epochs=1 dry_lrs=1e-3 san_rows=32 race_rows=16
    echo "gpu-check: DRY RUN against the fake CUDA driver (kernels on the CPU); the numbers mean nothing" ;;
  *) echo "gpu-check: GPU_CHECK_DRY=$GPU_CHECK_DRY: want 1 or fake"; exit 2 ;;
esac
export GPU_CHECK_DRY=${GPU_CHECK_DRY:-}

start=$(date +%s)
stamp() { echo "== $(( $(date +%s) - start ))s: $*"; }

stamp "device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$out/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" >"$out/nvidia-smi.txt"
cat "$out/nvidia-smi.txt"
if [ "$backend" = cuda ]; then
  "$bin" gpu info | tee "$out/device.json"
else
  echo '{"Name": "dry run (Go reference)", "Major": 0, "Minor": 0, "MemBytes": 0, "Driver": 0, "Target": "none"}' >"$out/device.json"
fi
"$bin" version | tee "$out/version.txt"

stamp "parity (2 epochs, $rows memes, tol 1e-3)"
parity_rc=0
"$bin" gpu parity --backend "$backend" --rows "$rows" --epochs 2 --tol 1e-3 --json "$out/parity.json" || parity_rc=$?

fusions=concat,late,align,cross,gmu,image_only,text_only
lrs=${dry_lrs:-1e-4,1e-3,1e-2}

stamp "bench workload: GPU backend"
"$bin" gpu bench --backend "$backend" --samples "$samples" --fusions concat --lrs 1e-4 --epochs "$epochs" --json "$out/bench-cuda.json" >/dev/null
stamp "bench workload: CPU backend, $(nproc) cores ($cpu_epochs epochs, scaled to $epochs)"
"$bin" gpu bench --backend cpu --samples "$samples" --fusions concat --lrs 1e-4 --epochs "$cpu_epochs" --json "$out/bench-cpu.json" >/dev/null

stamp "grid: GPU backend"
"$bin" gpu bench --backend "$backend" --samples "$samples" --fusions "$fusions" --lrs "$lrs" --epochs "$epochs" --json "$out/grid-cuda.json" >/dev/null
stamp "grid: CPU backend (1 epoch per fusion, scaled)"
"$bin" gpu bench --backend cpu --samples "$samples" --fusions "$fusions" --lrs 1e-4 --epochs 1 --json "$out/grid-cpu.json" >/dev/null

stamp "PyTorch on the GPU: bench workload and grid"
"$py" - "$out" "$fusions" "$lrs" "$samples" "$epochs" <<'PY' || echo "gpu-check: PyTorch comparison failed (results without it)"
# The same models as mami's registry (models/arch.go), the same loop as `mami gpu bench`: data resident on
# the GPU, shuffled batches of 64, BCE head, hidden [512], dropout 0.2, Adam, no clipping; only the training
# loop is timed (synchronised at each epoch's end).
import json, sys, time
import torch
from torch import nn
import torch.nn.functional as F

out, fusions, lrs = sys.argv[1], sys.argv[2].split(","), [float(x) for x in sys.argv[3].split(",")]
import os
# Rehearsals (GPU_CHECK_DRY) run on the CPU when there is no GPU; the real check needs one.
dev = torch.device("cuda" if torch.cuda.is_available() or not os.environ.get("GPU_CHECK_DRY") else "cpu")
D, H, P, B = 512, 512, 64, 64
N, E = int(sys.argv[4]), int(sys.argv[5])

def mlp(i):
    return nn.Sequential(nn.Linear(i, H), nn.ReLU(), nn.Dropout(0.2), nn.Linear(H, 1))

class Net(nn.Module):
    def __init__(self, fusion):
        super().__init__()
        self.f = fusion
        if fusion == "concat": self.m = mlp(2 * D)
        elif fusion == "late": self.t, self.i = mlp(D), mlp(D)
        elif fusion in ("align", "cross"):
            self.pi, self.pt = nn.Linear(D, P), nn.Linear(D, P)
            self.m = mlp(P * P if fusion == "cross" else P)
        elif fusion == "gmu":
            self.gi, self.gt, self.gz = nn.Linear(D, P), nn.Linear(D, P), nn.Linear(2 * D, P)
            self.m = mlp(P)
        else: self.m = mlp(D)
    def forward(self, v, t):
        f = self.f
        if f == "concat": return self.m(torch.cat([F.relu(t), F.relu(v)], 1))
        if f == "late": return 0.5 * (self.t(t) + self.i(v))
        if f in ("align", "cross"):
            a, b = F.normalize(self.pi(v), dim=1), F.normalize(self.pt(t), dim=1)
            return self.m(torch.einsum("ni,nj->nij", a, b).flatten(1) if f == "cross" else a * b)
        if f == "gmu":
            z = torch.sigmoid(self.gz(torch.cat([v, t], 1)))
            return self.m(z * torch.tanh(self.gi(v)) + (1 - z) * torch.tanh(self.gt(t)))
        return self.m(v if f == "image_only" else t)

torch.manual_seed(0)
img = F.normalize(torch.randn(N, D, device=dev), dim=1)
txt = F.normalize(torch.randn(N, D, device=dev), dim=1)
y = (torch.rand(N, device=dev) < 0.5).float()

def sync():
    if dev.type == "cuda": torch.cuda.synchronize()

def run(fusion, lr, epochs=E):
    model = Net(fusion).to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    secs = 0.0
    for _ in range(epochs):
        perm = torch.randperm(N, device=dev)
        sync(); t0 = time.perf_counter()
        for s in range(0, N, B):
            idx = perm[s:s + B]
            opt.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(model(img[idx], txt[idx]).squeeze(1), y[idx])
            loss.backward()
            opt.step()
        sync(); secs += time.perf_counter() - t0
    return {"backend": "pytorch", "fusion": fusion, "lr": lr, "epochs": epochs, "samples": N * epochs,
            "seconds": secs, "samples_per_s": N * epochs / secs}

run("concat", 1e-4, 1)  # warm-up: CUDA context, kernels, allocator
bench = [run("concat", 1e-4)]
grid = [run(f, lr) for f in fusions for lr in lrs]
json.dump(bench, open(f"{out}/bench-torch.json", "w"), indent=1)
json.dump(grid, open(f"{out}/grid-torch.json", "w"), indent=1)
print(json.dumps({"torch": torch.__version__, "bench_samples_per_s": bench[0]["samples_per_s"]}))
PY

# compute-sanitizer (CUDA's memcheck, racecheck, synccheck) on small runs of the GPU backend: out-of-bounds
# and misaligned accesses, shared-memory races, barriers in divergent code. A tool that reports errors fails
# the script; one that cannot run here is noted and skipped. Last, so that a slow sanitizer costs no
# parity or speed result.
san_rc=0
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ "$backend" = cuda ] && [ -n "$sanitizer" ] && [ "$GPU_CHECK_DRY" != fake ]; then
  for tool in memcheck racecheck synccheck; do
    if [ $tool = memcheck ]; then n=$san_rows f=""; else n=$race_rows f="--fusions concat,gmu"; fi
    stamp "compute-sanitizer --tool $tool ($n memes, 1 epoch)"
    rc=0
    # shellcheck disable=SC2086
    timeout -k 10 "${GPU_CHECK_SANITIZER_TIMEOUT:-100}" "$sanitizer" --tool "$tool" --error-exitcode 86 "$bin" gpu parity --rows "$n" --epochs 1 $f >"$out/sanitizer-$tool.txt" 2>&1 || rc=$?
    tail -n 3 "$out/sanitizer-$tool.txt"
    if [ "$rc" = 86 ] || grep -Eq 'ERROR SUMMARY: [1-9]' "$out/sanitizer-$tool.txt"; then
      echo "gpu-check: $tool REPORTED ERRORS (see $out/sanitizer-$tool.txt)"; san_rc=1
    elif [ "$rc" != 0 ]; then
      echo "gpu-check: $tool could not run here (exit $rc); skipped"
    fi
  done
else
  stamp "compute-sanitizer: skipped (${sanitizer:-not installed}; backend $backend${GPU_CHECK_DRY:+, dry run $GPU_CHECK_DRY})"
fi

stamp "results"
"$py" - "$out" "$parity_rc" "$epochs" <<'PY'
import json, subprocess, sys, datetime
import os
out, parity_rc, E = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def L(n, default=None):
    path = f"{out}/{n}.json"
    return json.load(open(path)) if os.path.exists(path) else default
nan = {"seconds": float("nan"), "samples_per_s": float("nan")}
dev, par = L("device"), L("parity", [])
bc, bp, bt = L("bench-cuda")[0], L("bench-cpu")[0], L("bench-torch", [nan])[0]
gc, gp, gt = L("grid-cuda"), L("grid-cpu"), L("grid-torch", [])
smi = open(f"{out}/nvidia-smi.txt").read().strip()
ver = open(f"{out}/version.txt").read().strip()
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
cpu10 = bp["seconds"] * E / bp["epochs"]
lines = [f"Measured {datetime.date.today()} by scripts/gpu-check.sh: {dev['Name']} (compute {dev['Major']}.{dev['Minor']}, "
         f"{dev['MemBytes'] / 2**30:.0f} GiB, CUDA driver {dev['Driver']}, PTX {dev['Target']}); nvidia-smi: {smi}; CPU backend on {cores} cores; {ver}.", "",
         "Parity (2 epochs on synthetic memes, AdamW, same weights/masks/batches; relative differences):", "",
         "| fusion | head | grad | loss e1/e2 | eval | ok |", "|---|---|---|---|---|---|"]
for r in par:
    lines.append(f"| {r['Fusion']} | {r['Head']} | {r['GradRelDiff']:.1e} | {r['LossRelDiff']:.1e} | {r['EvalRelDiff']:.1e} | {'yes' if r['ok'] else 'NO'} |")
san = []
for tool in ("memcheck", "racecheck", "synccheck"):
    path = f"{out}/sanitizer-{tool}.txt"
    if os.path.exists(path):
        summary = [l.strip().lstrip("= ") for l in open(path, errors="replace") if "ERROR SUMMARY" in l]
        san.append(f"{tool}: {summary[-1] if summary else f'did not run to the end (see sanitizer-{tool}.txt)'}")
lines += ["", "compute-sanitizer on the GPU backend: " + ("; ".join(san) if san else "not run") + "."]
lines += ["", f"Bench workload ({E} epochs × {bc['samples'] // E:,} memes, training loop only):", "",
          "| backend | seconds | samples/s | vs CPU backend |", "|---|---|---|---|",
          f"| mami CUDA | {bc['seconds']:.2f} | {bc['samples_per_s']:,.0f} | {cpu10 / bc['seconds']:.1f}× |",
          f"| PyTorch CUDA | {bt['seconds']:.2f} | {bt['samples_per_s']:,.0f} | {cpu10 / bt['seconds']:.1f}× |",
          f"| mami CPU ({cores} cores, from {bp['epochs']} epochs) | {cpu10:.2f} | {bp['samples_per_s']:,.0f} | 1× |",
          
          "", f"mami CUDA / PyTorch CUDA speed: {bt['seconds'] / bc['seconds']:.2f}× (targets: ≥ 20× the CPU backend, ≥ 1× PyTorch)", ""]
vs_cpu, vs_torch = cpu10 / bc["seconds"], bt["seconds"] / bc["seconds"]
met = lambda ok: "met" if ok else "NOT met"
lines += [f"Targets: ≥ 20× the CPU backend: {met(vs_cpu >= 20)} ({vs_cpu:.1f}×); at least PyTorch's speed on the GPU: "
          f"{met(vs_torch >= 1) if vs_torch == vs_torch else 'not measured (no PyTorch result)'} ({vs_torch:.2f}×).", ""]
cpu_per_epoch = {r["fusion"]: r["seconds"] / r["epochs"] for r in gp}
lines += [f"Fusion × lr grid ({len(gc)} runs of {E} epochs; CPU scaled from 1 epoch per fusion):", "",
          "| fusion | mami CUDA s (all lrs) | PyTorch CUDA s | mami CPU s (est.) |", "|---|---|---|---|"]
tot = [0.0, 0.0, 0.0]
for f in dict.fromkeys(r["fusion"] for r in gc):
    c = sum(r["seconds"] for r in gc if r["fusion"] == f)
    t = sum(r["seconds"] for r in gt if r["fusion"] == f) if gt else float("nan")
    p = cpu_per_epoch[f] * E * sum(1 for r in gc if r["fusion"] == f)
    tot = [tot[0] + c, tot[1] + t, tot[2] + p]
    lines.append(f"| {f} | {c:.2f} | {t:.2f} | {p:.1f} |")
lines.append(f"| **all {len(gc)} runs** | **{tot[0]:.1f}** | **{tot[1]:.1f}** | **{tot[2]:.0f}** |")
open(f"{out}/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
stamp "done"
# tar exits 1 when log.txt grows while it reads it (tee is still writing): that is expected.
{ tar czf "$out/gpu-check.tgz.tmp" --warning=no-file-changed -C "$out" --exclude 'gpu-check.tgz*' . || [ $? = 1 ]; } &&
  mv "$out/gpu-check.tgz.tmp" "$out/gpu-check.tgz"
if [ "$parity_rc" -ne 0 ]; then echo "gpu-check: PARITY FAILED (see above)"; exit 1; fi
if [ "$san_rc" -ne 0 ]; then echo "gpu-check: COMPUTE-SANITIZER REPORTED ERRORS (see above)"; exit 1; fi
echo "gpu-check: parity passed; paste $out/results.md into docs/gpu.md"
