#!/usr/bin/env python3
"""Reference for `npm run bench -- train`: PyTorch eager, the same Hugging Face folder, one full
fine-tuning (or LoRA, with --lora-rank) AdamW step per iteration on the same synthetic batch.

    python bench/reference/train_step.py --model DIR --batch 32 --seq 64 [--steps 10 --warmup 2]

Each step: forward, mean token cross-entropy of every position's next token (seq + 1 tokens per
row, as the engine), backward, global-norm clipping to 1.0, AdamW (betas 0.9/0.999, eps 1e-8,
weight decay 0.01: the engine's defaults). Prints one JSON line with the keys the engine prints.
--precision mixed runs the forward and loss under torch.autocast(float16) with a GradScaler (the
engine's mixed precision: float16 products, float32 master weights and moments, loss scaling).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from _common import emit, load_model, peak_rss_mb, setup_torch, sync, tokens

LINEAR_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a Hugging Face model folder")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--lora-rank", type=int, default=None)
    p.add_argument("--lora-alpha", type=float, default=None, help="default: 2 x rank")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="default: every core")
    p.add_argument("--precision", default="fp32", choices=["fp32", "mixed"])
    a = p.parse_args()

    torch = setup_torch(a.threads)
    import torch.nn.functional as F

    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    model = load_model(torch, a.model, a.device)
    load_ms = (time.perf_counter() - t0) * 1000
    params = sum(p.numel() for p in model.parameters())
    vocab = model.config.vocab_size

    t1 = time.perf_counter()
    if a.lora_rank is not None:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise SystemExit("--lora-rank needs peft: pip install peft")
        cfg = LoraConfig(r=a.lora_rank, lora_alpha=a.lora_alpha or 2 * a.lora_rank, lora_dropout=0.0, target_modules=LINEAR_MODULES, bias="none")
        model = get_peft_model(model, cfg)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    setup_ms = (time.perf_counter() - t1) * 1000

    mixed = a.precision == "mixed"
    scaler = torch.amp.GradScaler(a.device, enabled=mixed)
    ids = torch.tensor(tokens(a.batch * (a.seq + 1), vocab, a.seed), dtype=torch.long, device=a.device).view(a.batch, a.seq + 1)
    inputs, targets = ids[:, :-1], ids[:, 1:]

    losses, times = [], []
    for i in range(a.warmup + a.steps):
        sync(torch, a.device)
        s = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=a.device, dtype=torch.float16, enabled=mixed):
            logits = model(input_ids=inputs).logits
            loss = F.cross_entropy(logits.float().reshape(-1, vocab), targets.reshape(-1))
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        scaler.step(optimizer)
        scaler.update()
        value = loss.item()  # waits for the step, as the engine's step returns its loss
        ms = (time.perf_counter() - s) * 1000
        losses.append(value)
        if i >= a.warmup:
            times.append(ms)

    ms_per_step = sum(times) / len(times)
    emit({
        "bench": "train",
        "impl": "pytorch",
        "model": os.path.basename(os.path.abspath(a.model)),
        "device": a.device,
        "mode": "lora" if a.lora_rank is not None else "full",
        "lora_rank": a.lora_rank,
        "params": params,
        "trainable_params": sum(p.numel() for p in trainable),
        "batch": a.batch,
        "precision": a.precision,
        "seq": a.seq,
        "steps": a.steps,
        "warmup": a.warmup,
        "threads": torch.get_num_threads(),
        "ms_per_step": round(ms_per_step, 3),
        "ms_per_step_median": round(statistics.median(times), 3),
        "tokens_per_s": round(a.batch * a.seq / (ms_per_step / 1000), 1),
        "peak_rss_mb": peak_rss_mb(),
        "load_ms": round(load_ms, 1),
        "setup_ms": round(setup_ms, 1),
        "loss_first": round(losses[0], 6),
        "loss_last": round(losses[-1], 6),
        "attn_implementation": model.config._attn_implementation,
        "torch": torch.__version__,
    })


if __name__ == "__main__":
    main()
