#!/usr/bin/env python3
"""Reference for `npm run bench -- gemm`: the matrix products of one full fine-tuning step of a
Hugging Face model, timed one by one in PyTorch (torch.mm into a preallocated result).

    python bench/reference/gemm.py --model DIR --batch 32 --seq 64 [--repeats 20 --warmup 5] [--device cuda] [--precision mixed]

The products are those of every nn.Linear (projections and LM head) over batch x seq rows:
y = x W^T, dx = dy W and dW = dy^T x, with the operands laid out as the training step has them
(transposes are views). Layers with the same weight shape share one entry. On CUDA each product
is timed between synchronizations (launch included, as the engine's GPU timing counts a run's
overhead); --precision mixed makes the operands float16. Prints one JSON line with the keys the
engine prints, so the two can be compared entry by entry.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from _common import emit, load_model, setup_torch, sync


def step_gemms(weights: list[tuple[int, int]], tokens: int) -> list[dict]:
    """The same list, in the same order, as stepGemms() in bench/gemm.ts."""
    counts: dict[tuple[int, int], int] = {}
    for w in weights:
        counts[w] = counts.get(w, 0) + 1
    out = []
    for (o, i), count in counts.items():
        out.append({"weight": [o, i], "pass": "forward", "m": tokens, "n": o, "k": i, "trans_a": False, "trans_b": True, "count": count})
        out.append({"weight": [o, i], "pass": "input_grad", "m": tokens, "n": i, "k": o, "trans_a": False, "trans_b": False, "count": count})
        out.append({"weight": [o, i], "pass": "weight_grad", "m": o, "n": i, "k": tokens, "trans_a": True, "trans_b": False, "count": count})
    return out


def time_gemm(torch, g: dict, repeats: int, warmup: int, device: str = "cpu", dtype=None) -> float:
    """Median milliseconds of one torch.mm of this shape and orientation."""
    dtype = dtype or torch.float32
    a = torch.rand(*(g["k"], g["m"]) if g["trans_a"] else (g["m"], g["k"]), device=device, dtype=dtype) - 0.5
    b = torch.rand(*(g["n"], g["k"]) if g["trans_b"] else (g["k"], g["n"]), device=device, dtype=dtype) - 0.5
    a = a.t() if g["trans_a"] else a
    b = b.t() if g["trans_b"] else b
    c = torch.empty(g["m"], g["n"], device=device, dtype=dtype)
    times = []
    for i in range(warmup + repeats):
        sync(torch, device)
        s = time.perf_counter()
        torch.mm(a, b, out=c)
        sync(torch, device)
        if i >= warmup:
            times.append((time.perf_counter() - s) * 1000)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a Hugging Face model folder")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="default: every core")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--precision", choices=["fp32", "mixed"], default="fp32", help="mixed: float16 operands")
    a = p.parse_args()

    torch = setup_torch(a.threads)
    model = load_model(torch, a.model, "cpu")
    # Modules, not parameters: a tied LM head is one more linear layer on the embedding's weight.
    weights = [tuple(m.weight.shape) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    gemms = step_gemms(weights, a.batch * a.seq)
    del model

    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    dtype = torch.float16 if a.precision == "mixed" else torch.float32
    for g in gemms:
        ms = time_gemm(torch, g, a.repeats, a.warmup, a.device, dtype)
        g["ms"] = round(ms, 3)
        g["gflop_per_s"] = round(2 * g["m"] * g["n"] * g["k"] / ms / 1e6, 1)

    emit({
        "bench": "gemm",
        "impl": "pytorch",
        "model": os.path.basename(os.path.abspath(a.model)),
        "device": a.device,
        "precision": a.precision,
        "batch": a.batch,
        "seq": a.seq,
        "threads": torch.get_num_threads(),
        "gemm_ms_per_step": round(sum(g["count"] * g["ms"] for g in gemms), 2),
        "gflop_per_step": round(sum(g["count"] * 2 * g["m"] * g["n"] * g["k"] / 1e9 for g in gemms), 3),
        "gemms": gemms,
        "torch": torch.__version__,
    })


if __name__ == "__main__":
    main()
