#!/usr/bin/env python3
"""Regenerate the parity fixtures: tiny random checkpoints and the logits `transformers` gives.

    npm run models:builtin                      # first: writes resources/models/tiny-chars
    python bench/reference/make_parity_fixtures.py

Writes, under test/fixtures/models/:

  llama3/   Llama with rope_scaling "llama3", untied embeddings, float32, one model.safetensors.
            Its config.json is rewritten in the transformers-4 layout (rope_theta + rope_scaling)
            that most published checkpoints use; the others keep the transformers-5 layout
            (rope_parameters), so the loader is tested on both.
  qwen2/    Qwen2 with q/k/v biases and tied embeddings, saved in bfloat16 and sharded into two
            files with model.safetensors.index.json (lm_head is absent, as transformers saves
            tied models).
  qwen3/    Qwen3 with q/k RMSNorm and an explicit head_dim (32) unlike hidden/heads (16),
            untied embeddings, saved in float16.
  tiny-chars.reference.json
            Logits of the committed built-in model resources/models/tiny-chars, plus what its
            tokenizer gives in Python for a sample text and a chat, so the TypeScript tokenizer
            can be checked against transformers.PreTrainedTokenizerFast.

Every model uses grouped KV heads (kv heads < heads). Each folder gets the character-level
tokenizer.json and tokenizer_config.json copied from resources/models/tiny-chars (one tokenizer
definition, written by resources/models/make-builtin-models.ts), and a reference.json with:

  input_ids     [2][9] token ids
  position_ids  [2][9]: row 0 counts from 0, row 1 from 300, so RoPE is checked far from 0
                (and across the llama3 smoothing band)
  logits        [2][9][vocab] from transformers in float32, eager attention, causal mask

The reference model is loaded back from the saved folder in float32, so for the bf16/f16
checkpoints both sides compute with the same rounded weights. Weights are drawn from a seeded
torch.Generator and scaled so activations are O(1) (the default 0.02 init makes logits nearly
constant, which would make any comparison pass); reruns give identical files with the same
torch version.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import torch
import transformers
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER_SOURCE = ROOT / "resources" / "models" / "tiny-chars"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
TOKENIZER_VOCAB = 103  # 7 special tokens + newline + 95 printable ASCII characters
BATCH, SEQ = 2, 9
POSITION_STARTS = (0, 300)


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Overwrite every parameter with seeded values of a useful scale."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if name.endswith("norm.weight"):
                value = 1.0 + 0.2 * noise  # non-trivial norm gains
            elif name.endswith(".bias"):
                value = 0.5 * noise  # large enough to move attention scores
            elif "embed_tokens" in name:
                value = 0.5 * noise
            else:  # linear weights, [out, in]: keep activations O(1)
                value = noise / math.sqrt(p.shape[1])
            p.copy_(value)


def copy_tokenizer(folder: Path) -> None:
    for f in TOKENIZER_FILES:
        shutil.copyfile(TOKENIZER_SOURCE / f, folder / f)


def to_v4_rope_layout(folder: Path) -> None:
    """Rewrite config.json with rope_theta / rope_scaling instead of rope_parameters."""
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    rope = dict(cfg.pop("rope_parameters"))
    cfg["rope_theta"] = rope.pop("rope_theta")
    cfg["rope_scaling"] = None if rope.get("rope_type") == "default" else rope
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def fixed_inputs(vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (BATCH, SEQ), generator=gen)
    positions = torch.stack([torch.arange(s, s + SEQ) for s in POSITION_STARTS])
    return ids, positions


def f32_list(t: torch.Tensor) -> list:
    """Nested lists of floats printed with 9 significant digits (exact for float32)."""
    flat = [float(f"{v:.9g}") for v in t.reshape(-1).tolist()]

    def nest(values: list, shape: list[int]) -> list:
        if len(shape) == 1:
            return values
        step = len(values) // shape[0]
        return [nest(values[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]

    return nest(flat, list(t.shape))


def reference_logits(folder: Path, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        out = model(input_ids=ids, position_ids=positions, attention_mask=torch.ones_like(ids), use_cache=False)
    return out.logits.float()


def stored_dtypes(folder: Path) -> set[str]:
    dtypes = set()
    for f in sorted(folder.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            for k in st.keys():
                dtypes.add(str(st.get_slice(k).get_dtype()))
    return dtypes


def write_reference(folder: Path, name: str, vocab: int, seed: int, saved_dtype: str) -> None:
    ids, positions = fixed_inputs(vocab, seed)
    logits = reference_logits(folder, ids, positions)
    ref = {
        "model": name,
        "generated_by": "bench/reference/make_parity_fixtures.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "saved_dtype": saved_dtype,
        "input_ids": ids.tolist(),
        "position_ids": positions.tolist(),
        "logits_shape": list(logits.shape),
        "logits": f32_list(logits),
    }
    (folder / "reference.json").write_text(json.dumps(ref) + "\n")
    print(f"{name}: saved {saved_dtype} ({', '.join(sorted(stored_dtypes(folder)))}), "
          f"{sum(f.stat().st_size for f in folder.iterdir()) / 1024:.0f} KiB, max |logit| {logits.abs().max():.3f}")


def build(name: str, config: transformers.PretrainedConfig, seed: int, dtype: torch.dtype, out: Path,
          max_shard_size: str | None = None) -> Path:
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    torch.manual_seed(seed)  # module constructors draw from the global generator
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="eager")
    randomize(model, seed)
    if config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    model = model.to(dtype)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(folder, **kwargs)
    copy_tokenizer(folder)
    AutoTokenizer.from_pretrained(folder)  # the folder must be complete for transformers too
    return folder


def make_llama3(out: Path) -> None:
    config = transformers.LlamaConfig(
        vocab_size=TOKENIZER_VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-5,
        # head_dim 16 and theta 1e4 give wavelengths 6..2e4: with original 256 positions some
        # frequencies stay, one is smoothed and the rest are divided by the factor.
        rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 256},
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    folder = build("llama3", config, seed=11, dtype=torch.float32, out=out)
    to_v4_rope_layout(folder)
    write_reference(folder, "llama3", TOKENIZER_VOCAB, seed=12, saved_dtype="float32")


def make_qwen2(out: Path) -> None:
    vocab = 112  # Qwen pads its embedding table past the tokenizer; so does this fixture
    config = transformers.Qwen2Config(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        tie_word_embeddings=True, use_sliding_window=False, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    folder = build("qwen2", config, seed=21, dtype=torch.bfloat16, out=out, max_shard_size="120KB")
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) == 2 and (folder / "model.safetensors.index.json").exists(), f"expected 2 shards, got {shards}"
    write_reference(folder, "qwen2", vocab, seed=22, saved_dtype="bfloat16")


def make_qwen3(out: Path) -> None:
    config = transformers.Qwen3Config(
        vocab_size=TOKENIZER_VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=1024,
        rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        tie_word_embeddings=False, use_sliding_window=False, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    folder = build("qwen3", config, seed=31, dtype=torch.float16, out=out)
    write_reference(folder, "qwen3", TOKENIZER_VOCAB, seed=32, saved_dtype="float16")


TINY_TEXT = "Hello, world!\nThe answer is 42. Tabs\tand é are unknown."
TINY_CHAT = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is 6 * 7?"},
    {"role": "assistant", "content": "42"},
]


def make_tiny_chars_reference(out: Path) -> None:
    folder = TOKENIZER_SOURCE
    tok = AutoTokenizer.from_pretrained(folder)
    text_ids = tok(TINY_TEXT)["input_ids"]
    chat = tok.apply_chat_template(TINY_CHAT, tokenize=False, add_generation_prompt=False)
    prompt = tok.apply_chat_template(TINY_CHAT[:2], tokenize=False, add_generation_prompt=True)
    ids, positions = fixed_inputs(TOKENIZER_VOCAB, seed=42)
    logits = reference_logits(folder, ids, positions)
    ref = {
        "model": "resources/models/tiny-chars",
        "generated_by": "bench/reference/make_parity_fixtures.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "text": TINY_TEXT,
        "text_ids": text_ids,
        "text_decoded": tok.decode(text_ids),
        "text_decoded_skip_special": tok.decode(text_ids, skip_special_tokens=True),
        "chat_messages": TINY_CHAT,
        "chat_rendered": chat,
        "chat_ids": tok(chat, add_special_tokens=False)["input_ids"],
        "prompt_rendered": prompt,
        "input_ids": ids.tolist(),
        "position_ids": positions.tolist(),
        "logits_shape": list(logits.shape),
        "logits": f32_list(logits),
    }
    (out / "tiny-chars.reference.json").write_text(json.dumps(ref) + "\n")
    print(f"tiny-chars: max |logit| {logits.abs().max():.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "test" / "fixtures" / "models")
    args = parser.parse_args()
    if not (TOKENIZER_SOURCE / "tokenizer.json").exists():
        raise SystemExit(f"{TOKENIZER_SOURCE} has no tokenizer.json: run `npm run models:builtin` first")
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    make_llama3(args.out)
    make_qwen2(args.out)
    make_qwen3(args.out)
    make_tiny_chars_reference(args.out)


if __name__ == "__main__":
    main()
