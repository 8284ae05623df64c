#!/usr/bin/env python3
"""Reference for `npm run bench -- rl-step`: TRL's GRPOTrainer, one whole step (generation of
--prompts x --votes completions of up to --new-tokens tokens with transformers' generate(), the
rewards, the GRPO loss, backward and AdamW), on the same Hugging Face folder and the same
synthetic prompts as the engine's side (prompts() here is bench/rl-step.ts syntheticPrompts()).

    python bench/reference/grpo_step.py --model DIR [--prompts 4 --votes 16 --new-tokens 64]

Every completion is trained (TRL's GRPO trains them all; the engine's side sets trainSamples to
the votes), beta = --kl (0: no reference model), temperature 1, top-p 1. The reward is a seeded
0/1 coin per completion, as the engine's side gives where TTRL's vote labels nothing (a model
with random weights writes no answers); its values do not change a step's work. A step's time
is the Trainer's, from on_step_begin to on_step_end (generation included); rollout_ms is the
time in GRPOTrainer._generate (sampling alone).

Prints one JSON line with the keys the engine prints. Needs torch, transformers, trl (and peft
for --lora-rank).
"""
from __future__ import annotations

import argparse
import os
import random
import tempfile
import time

from _common import emit, load_model, peak_rss_mb, setup_torch, sync, tokens

ALPHABET = "abcdefghijklmnopqrstuvwxyz "


def prompts(count: int, length: int, seed: int) -> list[str]:
    ids = tokens(count * length, len(ALPHABET), seed)
    return ["".join(ALPHABET[c] for c in ids[i * length : (i + 1) * length]) for i in range(count)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a Hugging Face model folder")
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--votes", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--prompt-len", type=int, default=64, help="characters of each synthetic prompt")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--lora-rank", type=int, default=None)
    p.add_argument("--kl", type=float, default=0.0)
    p.add_argument("--lr", type=float, default=1e-6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="default: every core")
    p.add_argument("--precision", default="fp32", choices=["fp32", "mixed"], help="mixed: fp16 autocast with loss scaling (cuda)")
    a = p.parse_args()

    torch = setup_torch(a.threads)
    try:
        from datasets import Dataset
        from transformers import AutoTokenizer, TrainerCallback
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as e:
        raise SystemExit(f"the reference needs trl and datasets ({e}); install them with: pip install trl")
    if a.precision == "mixed" and a.device != "cuda":
        raise SystemExit("--precision mixed: fp16 training needs --device cuda")

    t0 = time.perf_counter()
    model = load_model(torch, a.model, a.device)
    # The model's own parameters, before LoRA adapters are added (as the engine reports them).
    params = sum(x.numel() for x in model.parameters())
    tokenizer = AutoTokenizer.from_pretrained(a.model)
    load_ms = (time.perf_counter() - t0) * 1000
    total = a.warmup + a.steps
    texts = prompts(a.prompts * total, a.prompt_len, a.seed)
    dataset = Dataset.from_dict({"prompt": texts})
    coin = random.Random(a.seed ^ 0x2545F491)

    def reward(completions, **_kwargs):
        return [float(coin.random() < 0.5) for _ in completions]

    peft_config = None
    if a.lora_rank is not None:
        from peft import LoraConfig

        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        peft_config = LoraConfig(r=a.lora_rank, lora_alpha=2 * a.lora_rank, target_modules=targets, lora_dropout=0.0)

    batch = a.prompts * a.votes
    out_dir = tempfile.mkdtemp(prefix="grpo-step-")
    config = GRPOConfig(
        output_dir=out_dir,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=1,
        num_generations=a.votes,
        max_completion_length=a.new_tokens,
        max_steps=total,
        learning_rate=a.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        beta=a.kl,
        temperature=1.0,
        top_p=1.0,
        seed=a.seed,
        shuffle_dataset=False,
        logging_steps=10**9,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=a.device == "cpu",
        bf16=False,
        fp16=a.precision == "mixed",
        gradient_checkpointing=False,
        dataloader_num_workers=0,
    )

    step_ms: list[float] = []
    rollout_ms: list[float] = []
    lengths: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            sync(torch, a.device)
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            sync(torch, a.device)
            step_ms.append((time.perf_counter() - self.start) * 1000)

    trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=reward, args=config, train_dataset=dataset, peft_config=peft_config, callbacks=[Timer()])

    # Time the sampling alone, and count what it generated.
    generate = trainer._generate

    def timed_generate(*args, **kwargs):
        sync(torch, a.device)
        s = time.perf_counter()
        result = generate(*args, **kwargs)
        sync(torch, a.device)
        rollout_ms.append((time.perf_counter() - s) * 1000)
        completion_ids = result[1] if isinstance(result, tuple) and len(result) > 1 else None
        if completion_ids is not None and len(completion_ids) > 0:
            lengths.append(sum(len(c) for c in completion_ids) / len(completion_ids))
        return result

    trainer._generate = timed_generate
    if a.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    if len(step_ms) != total:
        raise SystemExit(f"the trainer ran {len(step_ms)} steps; expected {total}")
    timed = step_ms[a.warmup :]
    timed_rollout = rollout_ms[a.warmup :] if len(rollout_ms) == total else []
    result = {
        "bench": "rl-step",
        "impl": f"trl {__import__('trl').__version__} GRPOTrainer (torch {torch.__version__})",
        "model": os.path.basename(os.path.normpath(a.model)),
        "device": a.device,
        "params": params,
        "prompts": a.prompts,
        "votes": a.votes,
        "new_tokens": a.new_tokens,
        "prompt_tokens": round(sum(len(tokenizer(t)["input_ids"]) for t in texts[: a.prompts]) / a.prompts, 1),
        "mode": "full" if a.lora_rank is None else "lora",
        **({"lora_rank": a.lora_rank} if a.lora_rank is not None else {}),
        "kl": a.kl,
        "precision": a.precision,
        "steps": a.steps,
        "warmup": a.warmup,
        "threads": torch.get_num_threads(),
        "ms_per_step": round(sum(timed) / len(timed), 1),
        "rollout_ms": round(sum(timed_rollout) / len(timed_rollout), 1) if timed_rollout else None,
        "update_ms": round((sum(timed) - sum(timed_rollout)) / len(timed), 1) if timed_rollout else None,
        "response_length": round(sum(lengths[a.warmup :]) / len(lengths[a.warmup :]), 2) if len(lengths) == total else None,
        "peak_rss_mb": peak_rss_mb(),
        **({"cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 1024**2, 1)} if a.device == "cuda" else {}),
        "load_ms": round(load_ms, 1),
    }
    if result["rollout_ms"]:
        result["rollout_tokens_per_s"] = round(batch * (result["response_length"] or a.new_tokens) / (result["rollout_ms"] / 1000), 1)
    emit(result)


if __name__ == "__main__":
    main()
