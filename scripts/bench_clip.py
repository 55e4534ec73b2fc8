#!/usr/bin/env python3
"""Time the reference CLIP ViT-B/32 forward pass in PyTorch on the CPU.

The counterpart of `go test -bench 'ViTB32|Preprocess' ./data/clip/`: the same
shapes (ViT-B/32: 224 px, patch 32, width 768, 12 layers, 12 heads; text width
512, 12 layers, 8 heads, context 77; projection 512), random weights, float32,
batch 8 by default. The model is written out here in plain torch following the
reference CLIP (pre-LayerNorm residual blocks, QuickGELU, causal text mask), so
only torch, numpy and Pillow are needed (Debian: python3-torch, python3-pil).

The reference text tower always runs all 77 positions; "texts/s (22 tok)" is
what the same tower gives when cut at the end-of-text token of a median MAMI
transcription (22 tokens), as the Go implementation does.

Usage: python3 scripts/bench_clip.py [--batch 8] [--iters 4] [--threads 1]
torch.set_num_threads(1) (the default here) leaves OpenBLAS/MKL's own threads to
use the cores; on the 2-core machine this is PyTorch's fastest setting.
"""

import argparse
import io
import json
import platform
import time

import numpy as np
import torch
from PIL import Image
from torch import nn


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self, width, heads, mask=None):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), QuickGELU(), nn.Linear(4 * width, width))
        self.ln_2 = nn.LayerNorm(width)
        self.mask = mask

    def forward(self, x):
        mask = None if self.mask is None else self.mask[: x.shape[0], : x.shape[0]]
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Vision(nn.Module):
    def __init__(self, res=224, patch=32, width=768, layers=12, heads=12, out=512):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.cls = nn.Parameter(torch.randn(width) * 0.02)
        self.pos = nn.Parameter(torch.randn((res // patch) ** 2 + 1, width) * 0.02)
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.Sequential(*[Block(width, heads) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, out) * 0.02)

    def forward(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)  # N, grid², width
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], dim=1) + self.pos
        x = self.ln_pre(x).permute(1, 0, 2)  # L, N, D
        x = self.blocks(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class Text(nn.Module):
    def __init__(self, ctx=77, vocab=49408, width=512, layers=12, heads=8, out=512):
        super().__init__()
        mask = torch.full((ctx, ctx), float("-inf")).triu_(1)
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Parameter(torch.randn(ctx, width) * 0.01)
        self.blocks = nn.Sequential(*[Block(width, heads, mask) for _ in range(layers)])
        self.ln_final = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, out) * 0.02)

    def forward(self, ids):
        x = self.tok(ids) + self.pos[: ids.shape[1]]
        x = self.blocks(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ self.proj


MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def preprocess(data, size=224):
    """Decode a JPEG and apply CLIP's transform (resize, centre crop, normalise)."""
    im = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    nl = int(size * long / short)
    im = im.resize((size, nl) if w <= h else (nl, size), Image.BICUBIC)
    w, h = im.size
    left, top = int(round((w - size) / 2)), int(round((h - size) / 2))
    im = im.crop((left, top, left + size, top + size))
    a = np.asarray(im, dtype=np.float32) / 255.0
    return torch.from_numpy(((a - MEAN) / STD).transpose(2, 0, 1).copy())


def timeit(fn, iters):
    """Seconds per call: (wall clock, CPU time of the whole process)."""
    fn()  # warm-up
    t, c = time.perf_counter(), time.process_time()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t) / iters, (time.process_time() - c) / iters


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    vision, text = Vision().eval(), Text().eval()
    b = args.batch
    px = torch.randn(b, 3, 224, 224)
    ids77 = torch.randint(1, 49000, (b, 77))
    ids77[:, -1] = 49407
    ids22 = ids77[:, :22].clone()
    ids22[:, -1] = 49407
    res = {"torch": torch.__version__, "threads": args.threads, "batch": b, "machine": platform.processor() or platform.machine()}
    with torch.no_grad():
        for key, fn in [("images", lambda: vision(px)), ("texts_77", lambda: text(ids77)), ("texts_22", lambda: text(ids22))]:
            wall, cpu = timeit(fn, args.iters)
            res[key + "_per_s"] = b / wall
            res[key + "_per_cpu_s"] = b / cpu
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    wall, cpu = timeit(lambda: preprocess(data), 20)
    res["preprocess_jpeg_640x480_ms"], res["preprocess_jpeg_640x480_cpu_ms"] = 1000 * wall, 1000 * cpu
    print(json.dumps(res))
    print(f"PyTorch {torch.__version__} ({args.threads} torch thread(s)), batch {b}: "
          f"{res['images_per_s']:.2f} images/s ({res['images_per_cpu_s']:.2f}/cpu-s), "
          f"{res['texts_77_per_s']:.2f} texts/s 77 tok ({res['texts_77_per_cpu_s']:.2f}/cpu-s), "
          f"{res['texts_22_per_s']:.2f} texts/s 22 tok ({res['texts_22_per_cpu_s']:.2f}/cpu-s), "
          f"preprocess 640x480 JPEG {res['preprocess_jpeg_640x480_ms']:.1f} ms "
          f"({res['preprocess_jpeg_640x480_cpu_ms']:.1f} cpu-ms)")


if __name__ == "__main__":
    main()
