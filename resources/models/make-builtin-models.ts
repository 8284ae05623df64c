// Built-in tiny models: small Llama configs with a character-level tokenizer, written as an
// ordinary Hugging Face folder (config.json, model.safetensors, tokenizer.json,
// tokenizer_config.json with a chat template, generation_config.json), so demos and tests need
// no download and `transformers` / `peft` load them like any other checkpoint.
//
//   npm run models:builtin                                  # resources/models/tiny-chars
//   npm run models:builtin -- --name bench-256 --out /tmp/bench-256
//   npm run models:builtin -- --out DIR --hidden 64 --layers 2 --heads 4 --kv-heads 2 --intermediate 192 --seed 1
//
// The weights are random (normal, std 0.02, norms 1), drawn from a seeded generator, so the
// same options always give the same bytes. bench/reference/make_parity_fixtures.py copies the
// tokenizer files this script writes, so the TypeScript and Python sides share one tokenizer.
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseConfig, weightShapes } from '../../main/engine/nn/config.ts';
import { type Float32Tensor, writeSafetensors } from '../../main/engine/nn/safetensors.ts';
import { mulberry32 } from '../../main/engine/runtime/rng.ts';

export interface BuiltinModelOptions {
  name: string;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  seed: number;
  maxPositions: number;
  /** Embedding rows; at least the tokenizer's size (extra rows are ids no text maps to). */
  vocab: number;
  /** Share the output layer with the embeddings. */
  tied: boolean;
}

/** Named sizes; command-line flags override single fields. */
export const PRESETS: Record<string, Omit<BuiltinModelOptions, 'name'>> = {
  // Committed to the repository: the model demos and tests use.
  'tiny-chars': { hidden: 128, layers: 2, heads: 4, kvHeads: 2, intermediate: 384, seed: 1, maxPositions: 1024, vocab: 0, tied: true },
  // The benchmark configuration of the engine's acceptance criteria, with the character
  // vocabulary; created on demand.
  'bench-256': { hidden: 256, layers: 4, heads: 4, kvHeads: 4, intermediate: 1024, seed: 1, maxPositions: 1024, vocab: 0, tied: true },
  // The same sizes with transformers' LlamaConfig defaults for everything the criteria leave
  // open: a 32000-token vocabulary and an untied output layer, as in Llama 2.
  'bench-256-32k': { hidden: 256, layers: 4, heads: 4, kvHeads: 4, intermediate: 1024, seed: 1, maxPositions: 1024, vocab: 32000, tied: false },
};

export const SPECIAL_TOKENS = ['<|pad|>', '<|bos|>', '<|eos|>', '<|unk|>', '<|system|>', '<|user|>', '<|assistant|>'] as const;

/** Newline, then printable ASCII (space to tilde): every character the tokenizer knows. */
export function tokenizerCharacters(): string[] {
  const chars = ['\n'];
  for (let c = 0x20; c <= 0x7e; c++) chars.push(String.fromCharCode(c));
  return chars;
}

/**
 * A character-level tokenizer.json: a BPE model with one token per character and no merges
 * (both the Rust tokenizers and @huggingface/tokenizers read it), the chat roles and BOS/EOS as
 * special tokens, BOS prepended by the post-processor, and a Fuse decoder so decoding
 * concatenates characters instead of joining them with spaces.
 */
/** tokenizer.json's entries for SPECIAL_TOKENS, at ids 0.. (every built-in tokenizer starts with them). */
export function specialAddedTokens(): Record<string, unknown>[] {
  return SPECIAL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
}

/** A post-processor that prepends <|bos|> (to each sequence of a pair), at its id in `vocab`. */
export function bosPostProcessor(vocab: Record<string, number>): Record<string, unknown> {
  const bos = '<|bos|>';
  return {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: bos, type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: bos, type_id: 1 } },
      { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { [bos]: { id: bos, ids: [vocab[bos]], tokens: [bos] } },
  };
}

export function charTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  const tokens = [...SPECIAL_TOKENS, ...tokenizerCharacters()];
  tokens.forEach((t, i) => (vocab[t] = i));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialAddedTokens(),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: bosPostProcessor(vocab),
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<|unk|>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}" +
  "{% if message['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('unknown chat role: ' + message['role']) }}{% endif %}" +
  "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

export function charTokenizerConfig(maxPositions: number): Record<string, unknown> {
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: '<|bos|>',
    eos_token: '<|eos|>',
    pad_token: '<|pad|>',
    unk_token: '<|unk|>',
    // Character tokens must decode verbatim (no " ." -> "." clean-up).
    clean_up_tokenization_spaces: false,
    model_max_length: maxPositions,
    chat_template: CHAT_TEMPLATE,
  };
}

const VOCAB_SIZE = SPECIAL_TOKENS.length + tokenizerCharacters().length;
const ID = { pad: 0, bos: 1, eos: 2 };

export function llamaConfigJson(o: BuiltinModelOptions): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: Math.max(o.vocab, VOCAB_SIZE),
    hidden_size: o.hidden,
    intermediate_size: o.intermediate,
    num_hidden_layers: o.layers,
    num_attention_heads: o.heads,
    num_key_value_heads: o.kvHeads,
    head_dim: o.hidden / o.heads,
    hidden_act: 'silu',
    max_position_embeddings: o.maxPositions,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    // Small models tie the output layer to the embeddings (SmolLM, Qwen 0.5B do too).
    tie_word_embeddings: o.tied,
    initializer_range: 0.02,
    bos_token_id: ID.bos,
    eos_token_id: ID.eos,
    pad_token_id: ID.pad,
    torch_dtype: 'float32',
    use_cache: true,
  };
}

/** Uniforms in (0, 1] (never 0: Box-Muller takes a logarithm) from mulberry32. */
function uniforms(seed: number): () => number {
  const next = mulberry32(seed);
  return () => (next() + 1) / 4294967296;
}

/** Random-init weights: N(0, 0.02²) for matrices, ones for RMSNorm weights (as transformers inits). */
export function initWeights(o: BuiltinModelOptions): Map<string, Float32Tensor> {
  const config = parseConfig(llamaConfigJson(o), `built-in model ${o.name}`);
  const next = uniforms(o.seed);
  const normal = () => Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
  const out = new Map<string, Float32Tensor>();
  for (const [name, shape] of weightShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith('norm.weight')) data.fill(1);
    else for (let i = 0; i < data.length; i++) data[i] = 0.02 * normal();
    out.set(name, { shape, data });
  }
  return out;
}

function validate(o: BuiltinModelOptions): void {
  for (const key of ['hidden', 'layers', 'heads', 'kvHeads', 'intermediate', 'maxPositions'] as const) {
    if (!Number.isInteger(o[key]) || o[key] <= 0) throw new Error(`--${key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} must be a positive integer, got ${o[key]}`);
  }
  if (!Number.isInteger(o.vocab) || (o.vocab !== 0 && o.vocab < VOCAB_SIZE)) {
    throw new Error(`--vocab must be at least the tokenizer's ${VOCAB_SIZE} tokens, got ${o.vocab}`);
  }
  if (!Number.isInteger(o.seed)) throw new Error(`--seed must be an integer, got ${o.seed}`);
  if (o.hidden % o.heads !== 0) throw new Error(`--hidden ${o.hidden} must be a multiple of --heads ${o.heads}`);
  if (o.heads % o.kvHeads !== 0) throw new Error(`--heads ${o.heads} must be a multiple of --kv-heads ${o.kvHeads}`);
}

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

/** Write a complete model folder to `dir`. */
export async function writeBuiltinModel(dir: string, o: BuiltinModelOptions): Promise<void> {
  validate(o);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'config.json'), json(llamaConfigJson(o)));
  await fs.writeFile(path.join(dir, 'generation_config.json'), json({ bos_token_id: ID.bos, eos_token_id: ID.eos, pad_token_id: ID.pad }));
  await fs.writeFile(path.join(dir, 'tokenizer.json'), json(charTokenizerJson()));
  await fs.writeFile(path.join(dir, 'tokenizer_config.json'), json(charTokenizerConfig(o.maxPositions)));
  await writeSafetensors(path.join(dir, 'model.safetensors'), initWeights(o), { format: 'pt' });
}

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The output folder and model options a command line asks for; null for --help. */
export function optionsFromArgs(argv: string[]): { dir: string; options: BuiltinModelOptions } | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      name: { type: 'string', default: 'tiny-chars' },
      hidden: { type: 'string' },
      layers: { type: 'string' },
      heads: { type: 'string' },
      'kv-heads': { type: 'string' },
      intermediate: { type: 'string' },
      seed: { type: 'string' },
      'max-positions': { type: 'string' },
      vocab: { type: 'string' },
      untied: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return null;
  const name = values.name!;
  // An unknown name starts from the tiny-chars sizes; flags then set what differs.
  const preset = PRESETS[name] ?? PRESETS['tiny-chars'];
  const num = (flag: keyof typeof values, fallback: number) => {
    const v = values[flag];
    if (v === undefined) return fallback;
    const n = Number(v);
    if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) throw new Error(`--${flag} must be a number, got "${v}"`);
    return n;
  };
  const options: BuiltinModelOptions = {
    name,
    hidden: num('hidden', preset.hidden),
    layers: num('layers', preset.layers),
    heads: num('heads', preset.heads),
    kvHeads: num('kv-heads', preset.kvHeads),
    intermediate: num('intermediate', preset.intermediate),
    seed: num('seed', preset.seed),
    maxPositions: num('max-positions', preset.maxPositions),
    vocab: num('vocab', preset.vocab),
    tied: values.untied ? false : preset.tied,
  };
  validate(options);
  return { dir: path.resolve(values.out ?? path.join(HERE, name)), options };
}

async function main(argv: string[]): Promise<void> {
  const parsed = optionsFromArgs(argv);
  if (!parsed) {
    console.log(
      `usage: npm run models:builtin -- [--name ${Object.keys(PRESETS).join('|')}|NAME] [--out DIR] [--hidden N] [--layers N] [--heads N] [--kv-heads N] [--intermediate N] [--seed N] [--max-positions N] [--vocab N] [--untied]\n` +
        'Writes resources/models/NAME unless --out is given.',
    );
    return;
  }
  const { dir, options: o } = parsed;
  await writeBuiltinModel(dir, o);
  console.log(`wrote ${o.name} (hidden ${o.hidden}, ${o.layers} layers, ${o.heads} heads, ${o.kvHeads} kv heads, intermediate ${o.intermediate}, seed ${o.seed}) to ${dir}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e: Error) => {
    console.error(`make-builtin-models: ${e.message}`);
    process.exit(1);
  });
}
