// Checkpoint parity (issue 2, acceptance 5): a checkpoint the engine saves must give the engine's
// logits when opened with the Python stack.
//
//   npx tsx bench/checkpoint-parity.ts [--model DIR|NAME] [--steps N] [--out DIR] [--device cpu]
//
// With the engine: train a LoRA adapter (rank 8, alpha 16, every linear layer) and, separately,
// every weight for N SFT steps on a few fixed texts, save each with Trainer.save, and record
// the logits and per-token log-probs of a fixed batch of other texts. Then
// bench/reference/check_checkpoint.py loads the adapter with peft.PeftModel.from_pretrained and
// the full checkpoint with AutoModelForCausalLM.from_pretrained and compares. Prints one JSON
// line; exits 1 when a difference exceeds 1e-4 or a check fails, 2 when Python cannot run it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { Graph } from '../main/engine/graph/graph.ts';
import * as op from '../main/engine/graph/ops.ts';
import { LINEAR_MODULES, type LlamaConfig } from '../main/engine/nn/config.ts';
import { type HfModel, loadModelFolder } from '../main/engine/nn/hf-model.ts';
import { MASKED, causalBias, forward, lmHead } from '../main/engine/nn/llama.ts';
import { loraTargets } from '../main/engine/nn/lora.ts';
import { type Float32Tensor, readSafetensors, writeSafetensors } from '../main/engine/nn/safetensors.ts';
import { resolveModelPath } from '../main/engine/model-paths.ts';
import { FILES } from '../main/engine/runtime/checkpoints.ts';
import { type Device, type DeviceRequest, resolveDevice } from '../main/engine/runtime/devices.ts';
import { CompiledGraph } from '../main/engine/runtime/session.ts';
import { type BatchShape, type TrainMode, Trainer, makeCausalBatch, positionsFromMask } from '../main/engine/runtime/trainer.ts';
import type { WeightBinding } from '../main/engine/runtime/weights.ts';
import { round, syntheticTokens } from './common.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TOLERANCE = 1e-4;
const LORA = { rank: 8, alpha: 16 };
// LoRA's B starts at zero: a larger rate makes it clearly non-zero within a few steps.
const LEARNING_RATE = { lora: 1e-2, full: 1e-3 };

const TRAIN_TEXTS = [
  'The quick brown fox jumps over the lazy dog.',
  'Question: 2 + 3 = ? Answer: 5',
  'Autodidact trains models on your own machine.',
  'Sphinx of black quartz, judge my vow!',
];
// Different lengths, so the engine's batch is right-padded (the reference runs each unpadded).
const EVAL_TEXTS = ['The lazy dog sleeps.', 'Question: 4 + 4 = ? Answer: 8', 'Pack my box with five dozen liquor jugs.', 'Hi!'];

interface Args {
  model: string;
  steps: number;
  out: string;
  device: DeviceRequest;
}

function parse(): Args {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'tiny-chars' },
      steps: { type: 'string', default: '20' },
      out: { type: 'string', default: path.join(ROOT, 'out/checkpoint-parity') },
      device: { type: 'string', default: 'cpu' },
    },
  });
  const steps = Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer, got "${values.steps}"`);
  const device = values.device as DeviceRequest;
  if (!['cpu', 'webgpu', 'cuda', 'auto'].includes(device)) throw new Error(`--device must be cpu, webgpu, cuda or auto, got "${device}"`);
  return { model: resolveModelPath(values.model), steps, out: path.resolve(values.out), device };
}

function encode(model: HfModel, text: string, seed: number): number[] {
  if (model.tokenizer) return model.tokenizer.encode(text);
  // A folder without tokenizer.json still gets a check, on token ids of the same lengths.
  return syntheticTokens(text.length, model.config.vocabSize, seed);
}

/** Right-padded causal batch of whole sequences (every prediction counts). */
function batchOf(sequences: number[][]) {
  const shape: BatchShape = { size: sequences.length, seqLen: Math.max(...sequences.map((s) => s.length)) - 1 };
  return { shape, batch: makeCausalBatch(sequences.map((tokens) => ({ tokens })), shape) };
}

/**
 * Logits [B, T, V] under `weights`, masked and positioned as the trainer's log-prob graph is
 * (padding keys masked, Hugging Face positions), so its rows agree with trainer.logprobs().
 */
function buildLogitsGraph(config: LlamaConfig, weights: WeightBinding, shape: BatchShape): Graph {
  const { size: B, seqLen: T } = shape;
  const g = new Graph('logits');
  g.recording = false;
  const inputIds = g.input('input_ids', [B, T], 'int32');
  const positionIds = g.input('position_ids', [B, T], 'int32');
  const mask = g.input('attention_mask', [B, T], 'float32');
  const padding = op.reshape(op.mul(op.sub(1, mask), MASKED), [B, 1, 1, 1, T]);
  const w = weights.bind(g);
  const { hidden } = forward(config, w, { inputIds, positionIds, attentionBias: op.add(causalBias(g, T), padding) });
  g.output('logits', lmHead(config, w, hidden));
  return g;
}

interface ModeResult {
  dir: string;
  losses: number[];
  /** Per eval sequence: log p(seq[t + 1] | seq[..t]) for t < L - 1. */
  logprobs: number[][];
  /** Per eval sequence: logits [L - 1, V]. */
  logits: Float32Tensor[];
  /** LoRA: the layers that carry an adapter (PEFT module paths without base_model.model.). */
  modules: string[];
}

async function trainAndScore(kind: TrainMode['kind'], model: HfModel, device: Device, args: Args, train: number[][], evalSeqs: number[][]): Promise<ModeResult> {
  const mode: TrainMode = kind === 'lora' ? { kind, ...LORA, targetModules: [...LINEAR_MODULES] } : { kind };
  const t = batchOf(train);
  const trainer = await Trainer.create({
    config: model.config,
    weights: model.weights,
    device,
    mode,
    loss: { kind: 'sft' },
    batch: t.shape,
    seed: 1234,
    source: { dir: model.dir },
  });
  let logitsGraph: CompiledGraph | null = null;
  try {
    const losses: number[] = [];
    for (let s = 0; s < args.steps; s++) losses.push((await trainer.step(t.batch, LEARNING_RATE[kind])).loss);
    const dir = path.join(args.out, kind);
    await trainer.save(dir, { bench: 'checkpoint-parity' });

    const e = batchOf(evalSeqs);
    // The training graph's path (what the policy loss sees) for log-probs; a forward+lmHead graph
    // on the same weight binding for the logits.
    const logprobs = await trainer.logprobs(e.batch, { shape: e.shape });
    logitsGraph = await CompiledGraph.create(buildLogitsGraph(model.config, trainer.weights(), e.shape), device);
    const dims = [e.shape.size, e.shape.seqLen];
    const out = await logitsGraph.run({
      ...trainer.weights().feeds(logitsGraph.inputNames),
      input_ids: new ort.Tensor('int32', Int32Array.from(e.batch.inputIds), dims),
      position_ids: new ort.Tensor('int32', positionsFromMask(e.batch.attentionMask, e.shape), dims),
      attention_mask: new ort.Tensor('float32', e.batch.attentionMask, dims),
    });
    const all = out.logits.data as Float32Array;
    const V = model.config.vocabSize;
    const T = e.shape.seqLen;
    return {
      dir,
      losses,
      logprobs: evalSeqs.map((s, b) => Array.from(logprobs.subarray(b * T, b * T + s.length - 1))),
      logits: evalSeqs.map((s, b) => ({ shape: [s.length - 1, V], data: all.slice(b * T * V, (b * T + s.length - 1) * V) })),
      modules: kind === 'lora' ? loraTargets(model.config, { ...LORA, targetModules: [...LINEAR_MODULES] }).map((x) => x.prefix) : [],
    };
  } finally {
    await logitsGraph?.release();
    await trainer.release();
  }
}

/** Whether every lora_A and lora_B the adapter file holds has a value clearly away from zero. */
async function adapterNonzero(dir: string): Promise<{ nonzero: boolean; minMaxAbs: number }> {
  const tensors = await readSafetensors(path.join(dir, FILES.adapter));
  let minMaxAbs = Infinity;
  for (const t of tensors.values()) {
    let m = 0;
    for (const x of t.data) m = Math.max(m, Math.abs(x));
    minMaxAbs = Math.min(minMaxAbs, m);
  }
  return { nonzero: tensors.size > 0 && minMaxAbs > 1e-3, minMaxAbs };
}

function pythonCommand(): string {
  if (process.env.AUTODIDACT_PYTHON) return process.env.AUTODIDACT_PYTHON;
  const venv = path.join(ROOT, 'bench/reference/.venv/bin/python');
  return fs.existsSync(venv) ? venv : 'python3';
}

/** Run the reference checker; its stderr passes through, its last stdout line is its JSON. */
function runReference(args: string[]): Promise<{ code: number | null; json: Record<string, unknown> | null }> {
  const python = pythonCommand();
  return new Promise((resolve, reject) => {
    const child = spawn(python, [path.join(ROOT, 'bench/reference/check_checkpoint.py'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', (e) => reject(new Error(`cannot run ${python} (${e.message}): install Python 3 with torch, transformers and peft (pip install torch transformers peft safetensors), or set AUTODIDACT_PYTHON`)));
    child.on('close', (code) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      let json: Record<string, unknown> | null = null;
      try {
        json = JSON.parse(last) as Record<string, unknown>;
      } catch {
        json = null;
      }
      resolve({ code, json });
    });
  });
}

async function main(): Promise<number> {
  const args = parse();
  const model = await loadModelFolder(args.model);
  const device = await resolveDevice(args.device);
  const train = TRAIN_TEXTS.map((s, i) => encode(model, s, i + 1));
  const evalSeqs = EVAL_TEXTS.map((s, i) => encode(model, s, i + 101));
  fs.mkdirSync(args.out, { recursive: true });

  const lora = await trainAndScore('lora', model, device, args, train, evalSeqs);
  const full = await trainAndScore('full', model, device, args, train, evalSeqs);
  const adapter = await adapterNonzero(lora.dir);
  console.error(`engine (${device.name}): lora loss ${round(lora.losses[0], 4)} -> ${round(lora.losses.at(-1)!, 4)}, full loss ${round(full.losses[0], 4)} -> ${round(full.losses.at(-1)!, 4)} over ${args.steps} steps`);

  // Logits go to safetensors (a vocabulary of 150k would make JSON huge); the rest is JSON.
  const logitsFile = 'engine_logits.safetensors';
  await writeSafetensors(path.join(args.out, logitsFile), [
    ...lora.logits.map((t, i): [string, Float32Tensor] => [`lora.seq${i}`, t]),
    ...full.logits.map((t, i): [string, Float32Tensor] => [`full.seq${i}`, t]),
  ]);
  const engineJson = path.join(args.out, 'engine.json');
  const summary = (r: ModeResult) => ({ dir: r.dir, losses: r.losses, logprobs: r.logprobs, modules: r.modules });
  fs.writeFileSync(
    engineJson,
    `${JSON.stringify({ model: args.model, device: device.name, steps: args.steps, tolerance: TOLERANCE, texts: EVAL_TEXTS, sequences: evalSeqs, logits_file: logitsFile, lora: summary(lora), full: summary(full) })}\n`,
  );

  const ref = await runReference(['--base', args.model, '--adapter', lora.dir, '--full', full.dir, '--engine', engineJson]);
  if (ref.code === 3 || !ref.json) {
    console.error(
      ref.code === 3
        ? 'the reference check needs torch, transformers and peft: pip install torch transformers peft safetensors (or set AUTODIDACT_PYTHON to a Python that has them)'
        : `bench/reference/check_checkpoint.py failed (exit ${ref.code}) without printing its result`,
    );
    return 2;
  }
  const r = ref.json;
  const diffs = {
    lora_max_abs_logit_diff: r.lora_max_abs_logit_diff as number,
    full_max_abs_logit_diff: r.full_max_abs_logit_diff as number,
    lora_max_abs_logprob_diff: r.lora_max_abs_logprob_diff as number,
    full_max_abs_logprob_diff: r.full_max_abs_logprob_diff as number,
  };
  const problems = [...((r.problems as string[] | undefined) ?? [])];
  for (const [k, v] of Object.entries(diffs)) if (!(typeof v === 'number' && v <= TOLERANCE)) problems.push(`${k} = ${v} > ${TOLERANCE}`);
  if (!adapter.nonzero) problems.push(`an adapter matrix stayed (near) zero: smallest max |value| ${adapter.minMaxAbs}`);
  if (ref.code !== 0 && problems.length === 0) problems.push(`check_checkpoint.py exited with ${ref.code}`);
  for (const p of [...new Set(problems)]) console.error(`FAIL: ${p}`);

  console.log(
    JSON.stringify({
      ...diffs,
      adapter_nonzero: adapter.nonzero,
      lora_vs_base_max_abs_logit_diff: r.lora_vs_base_max_abs_logit_diff,
      full_vs_base_max_abs_logit_diff: r.full_vs_base_max_abs_logit_diff,
      engine_lora_modules: lora.modules.length,
      peft_lora_modules: r.peft_lora_modules,
      adapter_min_max_abs: adapter.minMaxAbs,
      adapter_config_unknown_keys: r.adapter_config_unknown_keys,
      load_warnings: r.load_warnings,
      device: device.name,
      steps: args.steps,
      ok: problems.length === 0,
    }),
  );
  return problems.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`checkpoint-parity: ${(e as Error).message}`);
    process.exit(2);
  },
);
