#!/usr/bin/env python3
"""Reference side of bench/checkpoint-parity.ts (issue 2, acceptance 5): do checkpoints the engine
saved open in the Python stack and give the engine's numbers?

    python3 bench/reference/check_checkpoint.py --base DIR --adapter OUT/lora --full OUT/full \
        --engine OUT/engine.json

--adapter is loaded onto --base with peft.PeftModel.from_pretrained, --full with
AutoModelForCausalLM.from_pretrained; both run in float32 eager on the token ids listed in
engine.json, one sequence at a time and unpadded (the engine ran them right-padded in a batch, so
padding is checked too). Besides the logit and log-prob differences it checks that:
  - every key of adapter_config.json is a LoraConfig field and loading raised no warning;
  - PEFT wrapped exactly the layers the engine trained, and holds exactly the saved tensors;
  - the full checkpoint loads with no missing or unexpected weights.
Prints one JSON line; exits 1 when a check fails, 3 when torch / transformers / peft are missing.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import warnings


def import_stack():
    try:
        import peft
        import safetensors.torch
        import torch
        import transformers
    except ImportError as e:
        print(
            f"check_checkpoint.py needs torch, transformers, peft and safetensors ({e}); "
            "install them with: pip install torch transformers peft safetensors",
            file=sys.stderr,
        )
        sys.exit(3)
    transformers.utils.logging.disable_progress_bar()
    return torch, transformers, peft, safetensors.torch


class Captured(logging.Handler):
    """Collects what the transformers / peft loggers say at WARNING and above."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def capturing(fn):
    """Run fn() and return (its result, every warning and logged warning it raised)."""
    handler = Captured()
    loggers = [logging.getLogger(n) for n in ("transformers", "peft")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn()
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    return result, [str(w.message) for w in caught] + handler.messages


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", required=True, help="the base model folder the engine trained from")
    p.add_argument("--adapter", required=True, help="the engine's PEFT adapter folder")
    p.add_argument("--full", required=True, help="the engine's full fine-tuning checkpoint folder")
    p.add_argument("--engine", required=True, help="engine.json written by bench/checkpoint-parity.ts")
    a = p.parse_args()

    torch, transformers, peft, st = import_stack()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    from peft import LoraConfig, PeftModel
    from peft.tuners.lora import LoraLayer

    with open(a.engine) as f:
        engine = json.load(f)
    sequences: list[list[int]] = engine["sequences"]
    engine_logits = st.load_file(os.path.join(os.path.dirname(os.path.abspath(a.engine)), engine["logits_file"]))
    problems: list[str] = []

    def load_base():
        # float32 eager whatever the checkpoint stores, as the engine computes.
        return transformers.AutoModelForCausalLM.from_pretrained(a.base, dtype=torch.float32, attn_implementation="eager").eval()

    @torch.no_grad()
    def run(model) -> list:
        """Logits [L - 1, V] of each sequence's first L - 1 tokens, one unpadded row at a time."""
        return [model(input_ids=torch.tensor([seq[:-1]])).logits[0].float() for seq in sequences]

    def compare(kind: str, logits: list) -> dict:
        worst_logit = worst_lp = 0.0
        for i, (seq, ours) in enumerate(zip(sequences, logits)):
            theirs = engine_logits[f"{kind}.seq{i}"]
            if tuple(theirs.shape) != tuple(ours.shape):
                problems.append(f"{kind} sequence {i}: engine logits {tuple(theirs.shape)}, reference {tuple(ours.shape)}")
                continue
            worst_logit = max(worst_logit, (theirs - ours).abs().max().item())
            lp = torch.log_softmax(ours, -1).gather(-1, torch.tensor(seq[1:])[:, None])[:, 0]
            worst_lp = max(worst_lp, (torch.tensor(engine[kind]["logprobs"][i]) - lp).abs().max().item())
        return {"logit": worst_logit, "logprob": worst_lp}

    def max_diff(x: list, y: list) -> float:
        return max((u - v).abs().max().item() for u, v in zip(x, y))

    base_logits = run(load_base())

    # --- LoRA: the config alone, then the adapter on a fresh base.
    with open(os.path.join(a.adapter, "adapter_config.json")) as f:
        adapter_config = json.load(f)
    unknown_keys = sorted(set(adapter_config) - {fld.name for fld in dataclasses.fields(LoraConfig)})
    if unknown_keys:
        problems.append(f"adapter_config.json keys LoraConfig does not know: {unknown_keys}")
    _, config_warnings = capturing(lambda: peft.PeftConfig.from_pretrained(a.adapter))
    base = load_base()
    peft_model, load_warnings = capturing(lambda: PeftModel.from_pretrained(base, a.adapter).eval())
    all_warnings = config_warnings + load_warnings
    if all_warnings:
        problems.append(f"loading the adapter warned: {all_warnings}")

    # PEFT wraps layers whose name matches target_modules: it must be exactly those the engine trained.
    prefix = "base_model.model."
    peft_modules = sorted(n[len(prefix):] if n.startswith(prefix) else n for n, m in peft_model.named_modules() if isinstance(m, LoraLayer))
    engine_modules = sorted(engine["lora"]["modules"])
    if peft_modules != engine_modules:
        problems.append(f"PEFT wrapped {len(peft_modules)} layers, the engine trained {len(engine_modules)}: "
                        f"only PEFT {sorted(set(peft_modules) - set(engine_modules))}, only engine {sorted(set(engine_modules) - set(peft_modules))}")

    # Every saved tensor is in the model bit for bit (a key PEFT failed to map would stay at its init).
    saved = st.load_file(os.path.join(a.adapter, "adapter_model.safetensors"))
    params = dict(peft_model.named_parameters())
    mismatched = []
    for name, t in saved.items():
        loaded = params.get(name.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight"))
        if loaded is None or not torch.equal(loaded.detach().float(), t.float()):
            mismatched.append(name)
    if mismatched:
        problems.append(f"{len(mismatched)} adapter tensors did not load as saved, e.g. {mismatched[:3]}")
    lora_b_min_max_abs = min(t.abs().max().item() for n, t in saved.items() if ".lora_B." in n)

    lora_logits = run(peft_model)
    lora = compare("lora", lora_logits)
    del peft_model, base

    # --- Full weights: an ordinary model folder.
    (full_model, info), full_warnings = capturing(
        lambda: transformers.AutoModelForCausalLM.from_pretrained(
            a.full, dtype=torch.float32, attn_implementation="eager", output_loading_info=True
        )
    )
    full_model.eval()
    for what in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        if info.get(what):
            problems.append(f"full checkpoint {what}: {sorted(info[what])[:5]}")
    full_logits = run(full_model)
    full = compare("full", full_logits)

    tol = float(engine.get("tolerance", 1e-4))
    for kind, r in (("lora", lora), ("full", full)):
        for what, v in r.items():
            if not v <= tol:
                problems.append(f"{kind} max abs {what} difference {v:.3g} > {tol:g}")

    print(json.dumps({
        "lora_max_abs_logit_diff": lora["logit"],
        "lora_max_abs_logprob_diff": lora["logprob"],
        "full_max_abs_logit_diff": full["logit"],
        "full_max_abs_logprob_diff": full["logprob"],
        # How far training moved the logits: parity is only meaningful when these are far above tol.
        "lora_vs_base_max_abs_logit_diff": max_diff(lora_logits, base_logits),
        "full_vs_base_max_abs_logit_diff": max_diff(full_logits, base_logits),
        "peft_lora_modules": len(peft_modules),
        "engine_lora_modules": len(engine_modules),
        "adapter_tensors": len(saved),
        "adapter_tensors_loaded_exactly": not mismatched,
        "lora_b_min_max_abs": lora_b_min_max_abs,
        "adapter_config_unknown_keys": unknown_keys,
        "load_warnings": all_warnings,
        "full_load_warnings": full_warnings,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "problems": problems,
    }), flush=True)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
