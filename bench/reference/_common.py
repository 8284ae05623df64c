"""What the reference scripts share with the engine benchmarks (bench/common.ts): the synthetic
token data, the memory figure and the JSON line. Keep `tokens` in step with syntheticTokens()."""
from __future__ import annotations

import json
import os
import resource
import sys


def tokens(count: int, vocab_size: int, seed: int) -> list[int]:
    """The same 32-bit linear congruential sequence as bench/common.ts syntheticTokens()."""
    state = seed & 0xFFFFFFFF
    out = []
    for _ in range(count):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        out.append((state >> 8) % vocab_size)
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process (ru_maxrss: KiB on Linux, bytes on macOS), in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def setup_torch(threads: int | None):
    """Import torch with every core in use (the engine uses every core too)."""
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as e:
        sys.exit(f"the reference benchmark needs torch and transformers ({e}); install them with: pip install torch transformers")
    from transformers.utils import logging

    logging.disable_progress_bar()  # keep stderr to warnings and errors
    torch.set_num_threads(threads or os.cpu_count() or 1)
    return torch


def load_model(torch, model_dir: str, device: str):
    from transformers import AutoModelForCausalLM

    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        sys.exit(f"--model {model_dir}: not a Hugging Face model folder (no config.json)")
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device")
    # float32 whatever the checkpoint stores, as the engine computes.
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return model.to(device)


def sync(torch, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def emit(result: dict) -> None:
    print(json.dumps(result), flush=True)
