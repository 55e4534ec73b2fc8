#!/usr/bin/env python3
"""PyTorch baseline for `make bench`: the bench-seed-head workload, timed like mami times it.

The model and loop match configs/bench-seed-head.yaml: ReLU(text) ++ ReLU(image) (1024) -> Linear 512 ->
ReLU -> Dropout 0.2 -> Linear 1 -> BCE-with-logits, batch 64, Adam lr 1e-4, 10 epochs, shuffled each epoch.
Only the training loop is timed (forward, backward, optimizer step), as mami's perf/train_samples_per_s is.
Prints one JSON line: {"samples_per_s": ..., "seconds": ..., "threads": ...}.
"""
import argparse
import json
import time

import torch
from torch import nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=7200, help="training samples per epoch (mami's train split)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 was fastest on a 2-core machine)")
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    dim = 512
    img = nn.functional.normalize(torch.randn(args.samples, dim), dim=1)
    txt = nn.functional.normalize(torch.randn(args.samples, dim), dim=1)
    y = (torch.rand(args.samples) < 0.5).float()

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(2 * dim, 512)
            self.drop = nn.Dropout(0.2)
            self.fc2 = nn.Linear(512, 1)

        def forward(self, t, v):
            x = torch.cat([torch.relu(t), torch.relu(v)], dim=1)
            return self.fc2(self.drop(torch.relu(self.fc1(x)))).squeeze(1)

    model = Head()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    seconds = 0.0
    seen = 0
    for _ in range(args.epochs):
        perm = torch.randperm(args.samples)
        start = time.perf_counter()
        for i in range(0, args.samples, args.batch):
            idx = perm[i:i + args.batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(txt[idx], img[idx]), y[idx])
            loss.backward()
            opt.step()
            seen += len(idx)
        seconds += time.perf_counter() - start
    print(json.dumps({"samples_per_s": seen / seconds, "seconds": seconds, "threads": args.threads,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
