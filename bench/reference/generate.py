#!/usr/bin/env python3
"""Reference for `npm run bench -- generate`: transformers `generate()` with its KV cache on the
same Hugging Face folder, sampling (do_sample, temperature 1, no top-k / top-p) a batch of
synthetic prompts, min_new_tokens = max_new_tokens so every row generates exactly --new-tokens
tokens as the engine does.

    python bench/reference/generate.py --model DIR --batch 64 --new-tokens 64 [--prompt-len 8]

Prints one JSON line with the keys the engine prints.
"""
from __future__ import annotations

import argparse
import os
import time

from _common import emit, load_model, peak_rss_mb, setup_torch, sync, tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a Hugging Face model folder")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--new-tokens", type=int, required=True)
    p.add_argument("--prompt-len", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="default: every core")
    p.add_argument("--precision", default="fp32", choices=["fp32", "mixed"], help="mixed: the model in float16 (the engine's mixed-precision generation)")
    a = p.parse_args()

    torch = setup_torch(a.threads)
    t0 = time.perf_counter()
    model = load_model(torch, a.model, a.device)
    if a.precision == "mixed":
        model = model.half()
    model.eval()
    load_ms = (time.perf_counter() - t0) * 1000
    cfg = model.config
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else 0

    prompts = torch.tensor(tokens(a.batch * a.prompt_len, cfg.vocab_size, a.seed), dtype=torch.long, device=a.device).view(a.batch, a.prompt_len)
    mask = torch.ones_like(prompts)
    times = []
    with torch.inference_mode():
        for i in range(a.warmup + a.repeats):
            torch.manual_seed(a.seed + i)
            sync(torch, a.device)
            s = time.perf_counter()
            out = model.generate(
                input_ids=prompts,
                attention_mask=mask,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=a.new_tokens,
                min_new_tokens=a.new_tokens,
                pad_token_id=pad,
                use_cache=True,
            )
            sync(torch, a.device)
            ms = (time.perf_counter() - s) * 1000
            if tuple(out.shape) != (a.batch, a.prompt_len + a.new_tokens):
                raise SystemExit(f"generate() returned shape {tuple(out.shape)}; expected {(a.batch, a.prompt_len + a.new_tokens)}")
            if i >= a.warmup:
                times.append(ms)

    ms_per_call = sum(times) / len(times)
    emit({
        "bench": "generate",
        "impl": "pytorch",
        "model": os.path.basename(os.path.abspath(a.model)),
        "device": a.device,
        "params": sum(p.numel() for p in model.parameters()),
        "batch": a.batch,
        "prompt_len": a.prompt_len,
        "new_tokens": a.new_tokens,
        "precision": a.precision,
        "repeats": a.repeats,
        "warmup": a.warmup,
        "threads": torch.get_num_threads(),
        "ms_per_step": round(ms_per_call / a.new_tokens, 3),
        "tokens_per_s": round(a.batch * a.new_tokens / (ms_per_call / 1000), 1),
        "ms_per_call": round(ms_per_call, 1),
        "peak_rss_mb": peak_rss_mb(),
        "load_ms": round(load_ms, 1),
        "attn_implementation": model.config._attn_implementation,
        "torch": torch.__version__,
    })


if __name__ == "__main__":
    main()
