#!/usr/bin/env python3
"""Calibrate the synthetic-mami dataset against the original study.

Reimplements the study's training in PyTorch and prints the per-epoch mean
training loss, so that data.DefaultSynthetic can be tuned until the seed
preset reproduces the study's curve (first step 0.69, epoch 10 ~0.483).

    go run ./scripts/dumpsynthetic -out /tmp/syn
    /usr/bin/python3 scripts/calibrate_synthetic.py /tmp/syn [--seeds 42,1,2,3]
        [--head double_softmax|softmax_ce] [--fusion concat|hadamard|outer]

The study: ReLU(text) ++ ReLU(image) (1024) -> Linear(1024, 512) -> ReLU ->
Dropout(0.1) -> Linear(512, 2) -> softmax, loss = CrossEntropyLoss applied to
the softmax outputs (softmax twice; floor log(1 + e^-1) = 0.313). AdamW
(lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01), micro-batches of 4
with 16 accumulated (effective 64; the loss of each micro-batch is divided
by 16; the last, partial accumulation of an epoch also steps), gradient norm
clipped to 1.0, 10 epochs, seed 42. Split: stratified, 20% test, then 10% of
the rest validation -> 7,200 / 800 / 2,000.
"""
import argparse
import time

import numpy as np
import torch
import torch.nn as nn


def load(folder):
    img = np.load(f"{folder}/image_embeds.npy")
    txt = np.load(f"{folder}/text_embeds.npy")
    rows = [l.rstrip("\n").split("\t") for l in open(f"{folder}/labels.tsv")][1:]
    train = np.array([r[1] == "train" for r in rows])
    y = np.array([int(r[2]) for r in rows])
    return img[train], txt[train], y[train]


def stratified_split(y, test_frac, val_frac, seed):
    rng = np.random.RandomState(seed)
    tr, va, te = [], [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_te = int(round(test_frac * len(idx)))
        rest = idx[n_te:]
        n_va = int(round(val_frac * len(rest)))
        te += list(idx[:n_te])
        va += list(rest[:n_va])
        tr += list(rest[n_va:])
    return np.array(sorted(tr)), np.array(sorted(va)), np.array(sorted(te))


class Net(nn.Module):
    def __init__(self, fusion, head, dim=512, hidden=512, proj=64):
        super().__init__()
        self.fusion, self.head = fusion, head
        width = 2 * dim
        if fusion == "hadamard":
            self.pi, self.pt = nn.Linear(dim, proj), nn.Linear(dim, proj)
            width += proj
        elif fusion == "outer":
            self.pi, self.pt = nn.Linear(dim, 16), nn.Linear(dim, 16)
            width += 256
        self.fc1 = nn.Linear(width, hidden)
        self.drop = nn.Dropout(0.1)
        self.fc2 = nn.Linear(hidden, 2)

    def forward(self, img, txt):
        parts = [torch.relu(txt), torch.relu(img)]
        if self.fusion == "hadamard":
            parts.append(self.pi(img) * self.pt(txt))
        elif self.fusion == "outer":
            o = torch.einsum("bi,bj->bij", self.pi(img), self.pt(txt))
            parts.append(o.reshape(len(img), -1))
        h = self.drop(torch.relu(self.fc1(torch.cat(parts, 1))))
        out = self.fc2(h)
        return torch.softmax(out, 1) if self.head == "double_softmax" else out


def macro_f1(y, p):
    f = []
    for c in (0, 1):
        tp = np.sum((p == c) & (y == c))
        fp = np.sum((p == c) & (y != c))
        fn = np.sum((p != c) & (y == c))
        f.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f))


def train(img, txt, y, seed, head="double_softmax", fusion="concat", epochs=10, micro=4, accum=16, quiet=False):
    tr, va, _ = stratified_split(y, 0.2, 0.1, seed)
    torch.manual_seed(seed)
    net = Net(fusion, head)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    crit = nn.CrossEntropyLoss()
    Xi, Xt, Y = (torch.from_numpy(a) for a in (img[tr], txt[tr], y[tr]))
    Vi, Vt, VY = torch.from_numpy(img[va]), torch.from_numpy(txt[va]), y[va]
    gen = torch.Generator().manual_seed(seed)
    n = len(tr)
    first, losses, f1s = None, [], []
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(n, generator=gen)
        nmb = (n + micro - 1) // micro
        total, step_loss, step_n = 0.0, 0.0, 0
        opt.zero_grad()
        for i in range(nmb):
            b = perm[i * micro:(i + 1) * micro]
            loss = crit(net(Xi[b], Xt[b]), Y[b])
            (loss / accum).backward()
            total += loss.item() * len(b)
            step_loss += loss.item() * len(b)
            step_n += len(b)
            if (i + 1) % accum == 0 or i + 1 == nmb:
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                opt.zero_grad()
                if first is None:
                    first = step_loss / step_n
                step_loss, step_n = 0.0, 0
        net.eval()
        with torch.no_grad():
            pv = net(Vi, Vt).argmax(1).numpy()
        losses.append(total / n)
        f1s.append(macro_f1(VY, pv))
        if not quiet:
            print(f"  epoch {ep + 1:2d}: train loss {losses[-1]:.4f}  val macro-F1 {f1s[-1]:.4f}", flush=True)
    return first, losses, f1s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--seeds", default="42")
    ap.add_argument("--runs", default="double_softmax:concat",
                    help="comma-separated head:fusion pairs, e.g. double_softmax:concat,softmax_ce:hadamard")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--micro", type=int, default=4)
    ap.add_argument("--accum", type=int, default=16)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    img, txt, y = load(a.folder)
    n = len(y)
    print(f"{n} memes, {y.mean():.3f} misogynous; mean raw cosine image {np.mean(img[:500] @ img[500:1000].T):.3f} "
          f"text {np.mean(txt[:500] @ txt[500:1000].T):.3f} image-text {np.mean(img[:500] @ txt[500:1000].T):.3f} "
          f"matched image-text {np.mean(np.sum(img * txt, 1)):.3f}")
    for run in a.runs.split(","):
        head, fusion = run.split(":")
        for s in [int(x) for x in a.seeds.split(",")]:
            t0 = time.time()
            first, losses, f1s = train(img, txt, y, s, head, fusion, a.epochs, a.micro, a.accum, a.quiet)
            print(f"seed {s} head {head} fusion {fusion}: first step {first:.4f} epoch{a.epochs} {losses[-1]:.4f} "
                  f"best val F1 {max(f1s):.4f} last val F1 {f1s[-1]:.4f} "
                  f"losses {' '.join(f'{l:.3f}' for l in losses)} ({time.time() - t0:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
