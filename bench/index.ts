// Benchmarks: `npm run bench -- <command> [options]`. Each measuring command prints ONE JSON line
// on stdout (progress and warnings go to stderr), so results can be collected with `>> file`.
//
//   train             a training step of the engine
//   generate          batched sampling with the engine
//   compare-train     the engine, then PyTorch eager (bench/reference/train_step.py), then a ratio line
//   compare-generate  the engine, then transformers generate() (bench/reference/generate.py), then a ratio line
//   rl-step           one step of the run loop at TTRL's shape (rollout, vote, update), with the GPU memory of its buffers
//   compare-rl-step   the engine, then TRL's GRPOTrainer (bench/reference/grpo_step.py), then a ratio line
//   gemm              the linear layers' products of a training step, in onnxruntime's kernel
//   compare-gemm      the same in onnxruntime, then in PyTorch (bench/reference/gemm.py), then ratios
//   make-model        write a built-in-style model folder (delegates to resources/models/make-builtin-models.ts)
//   graph-nodes       the nodes of a training step, a prefill and a decode step by op type, built from a config alone
//   ttrl-demo         TTRL on unlabeled arithmetic; base vs after avg@16 / maj@16 on a disjoint labeled set
//   methods           every label-free method on the same demo and budget, over seeds: a table and JSON lines
//   sandbox           executions per second of the code sandbox (Pyodide and QuickJS workers)
//   agent-demo        tiny-agent on held-out household and shop tasks: base, outcome-only GRPO and OPID, same budget, 3 seeds
//   code-demo         tiny-coder on held-out code tasks: hidden-test pass@1 of the base, after code-consensus self-play without and with the critic, 3 seeds
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type CliCommand, type Flags, UsageError, choiceFlag, command, intFlag, parseFor, required } from '../main/cli/args.ts';
import { resolveModelPath } from '../main/engine/model-paths.ts';
import type { DeviceRequest } from '../main/engine/runtime/devices.ts';
import { PRECISIONS } from '../main/engine/runtime/precision.ts';
import { round } from './common.ts';
import { benchGenerate, benchTrain } from './engine.ts';
import { benchRlStep } from './rl-step.ts';
import { type GemmTiming, benchGemm } from './gemm.ts';
import { TTRL_DEMO_DEFAULTS, type TtrlDemoOptions, summary, ttrlDemo } from './ttrl-demo.ts';
import { METHODS_BENCH_DEFAULTS, methodsBench, methodsTable } from './methods.ts';
import { listMethods } from '../main/engine/rl/methods/registry.ts';
import { ADVANTAGE_CHOICES } from '../main/engine/rl/common-settings.ts';
import { STAGE_IDS, type StageId } from '../main/engine/svd/cascade.ts';
import { SVD_DEMO_DEFAULTS, type SvdDemoOptions, svdDemo, svdSummary } from './svd-demo.ts';
import { SANDBOX_BENCH_DEFAULTS, sandboxBench } from './sandbox.ts';
import { AGENT_DEMO_DEFAULTS, agentDemo, agentDemoTable } from './agent-demo.ts';
import { CODE_DEMO_CONFIGS, CODE_DEMO_DEFAULTS, type CodeDemoConfig, codeDemo, codeDemoTable } from './code-demo.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const PROGRAM = 'npm run bench --';

const DEVICES = ['cpu', 'webgpu', 'cuda', 'auto'] as const;

const trainFlags = {
  model: { type: 'string', value: 'NAME|DIR', description: 'a Hugging Face model folder or a built-in model name' },
  batch: { type: 'string', value: 'B', description: 'sequences per step' },
  seq: { type: 'string', value: 'T', description: 'tokens per sequence (each trained to predict the next)' },
  steps: { type: 'string', value: 'N', default: '10', description: 'timed steps' },
  warmup: { type: 'string', value: 'W', default: '2', description: 'untimed steps first' },
  device: { type: 'string', value: 'DEVICE', default: 'cpu', description: 'cpu, webgpu, cuda or auto' },
  'lora-rank': { type: 'string', value: 'R', description: 'train LoRA adapters of this rank on every linear layer instead of every weight' },
  'micro-batch': { type: 'string', value: 'M', description: 'sequences per forward/backward pass, their gradients summed into one update (default: the whole batch at once)' },
  'lora-alpha': { type: 'string', value: 'A', description: 'LoRA alpha (default 2 x rank)' },
  lr: { type: 'string', value: 'LR', default: '1e-4', description: 'AdamW learning rate' },
  seed: { type: 'string', value: 'S', default: '0', description: 'seed of the synthetic batch (and LoRA init)' },
  precision: { type: 'string', value: 'P', default: 'fp32', description: 'fp32, or mixed (float16 activations and products, float32 masters and moments, loss scaling; webgpu or cuda only; the reference uses torch.autocast float16 and GradScaler)' },
} satisfies Flags;

/** The model-shape flags make-model and graph-nodes share. */
const modelShapeFlags = {
  hidden: { type: 'string', value: 'N', description: 'hidden size' },
  layers: { type: 'string', value: 'N', description: 'layers' },
  heads: { type: 'string', value: 'N', description: 'attention heads' },
  'kv-heads': { type: 'string', value: 'N', description: 'key/value heads' },
  intermediate: { type: 'string', value: 'N', description: 'MLP size' },
} satisfies Flags;

const generateFlags = {
  model: trainFlags.model,
  batch: { type: 'string', value: 'B', description: 'prompts sampled together (one sample each)' },
  'new-tokens': { type: 'string', value: 'N', description: 'tokens generated per row' },
  'prompt-len': { type: 'string', value: 'P', default: '8', description: 'synthetic prompt length' },
  repeats: { type: 'string', value: 'R', default: '3', description: 'timed generate calls' },
  warmup: { type: 'string', value: 'W', default: '1', description: 'untimed calls first' },
  device: trainFlags.device,
  seed: trainFlags.seed,
  precision: { type: 'string', value: 'P', default: 'fp32', description: 'fp32, or mixed (float16 weights, activations and KV cache; webgpu or cuda only; the reference runs the model in float16)' },
} satisfies Flags;

const rlStepFlags = {
  model: trainFlags.model,
  prompts: { type: 'string', value: 'P', default: '4', description: 'prompts a step' },
  votes: { type: 'string', value: 'N', default: '16', description: 'votes (samples) per prompt, every one trained' },
  'new-tokens': { type: 'string', value: 'T', default: '64', description: 'longest response' },
  'prompt-len': { type: 'string', value: 'C', default: '64', description: 'characters of each synthetic prompt' },
  steps: { type: 'string', value: 'N', default: '3', description: 'timed steps' },
  warmup: { type: 'string', value: 'W', default: '1', description: 'untimed steps first' },
  device: trainFlags.device,
  'lora-rank': trainFlags['lora-rank'],
  kl: { type: 'string', value: 'C', default: '0', description: 'KL coefficient to the frozen model (0: no reference pass, as TRL beta 0)' },
  lr: { type: 'string', value: 'LR', default: '1e-6', description: 'learning rate (constant)' },
  seed: trainFlags.seed,
  precision: { type: 'string', value: 'P', default: 'fp32', description: 'fp32, or mixed (webgpu or cuda; the reference trains with fp16 autocast and loss scaling)' },
} satisfies Flags;

function rlStepOptions(values: Values) {
  return {
    model: modelDir(values),
    device: choiceFlag(values, 'device', DEVICES, 'cpu') as DeviceRequest,
    prompts: intFlag(values, 'prompts', 4),
    votes: intFlag(values, 'votes', 16, 2),
    newTokens: intFlag(values, 'new-tokens', 64),
    promptLen: intFlag(values, 'prompt-len', 64),
    steps: intFlag(values, 'steps', 3),
    warmup: intFlag(values, 'warmup', 1, 0),
    loraRank: values['lora-rank'] === undefined ? null : intFlag(values, 'lora-rank', 8),
    kl: numberFlag(values, 'kl', 0),
    lr: numberFlag(values, 'lr', 1e-6),
    seed: intFlag(values, 'seed', 0, 0),
    precision: choiceFlag(values, 'precision', PRECISIONS, 'fp32'),
  };
}

const gemmFlags = {
  model: trainFlags.model,
  batch: trainFlags.batch,
  seq: trainFlags.seq,
  repeats: { type: 'string', value: 'R', default: '20', description: 'timed runs of each product' },
  warmup: { type: 'string', value: 'W', default: '5', description: 'untimed runs first' },
  device: { type: 'string', value: 'DEVICE', default: 'cpu', description: 'cpu (kernel times from onnxruntime\'s profile) or a GPU (wall time of runs on operands held on it; each product also as MatMul)' },
  precision: { type: 'string', value: 'P', default: 'fp32', description: 'fp32, or mixed (float16 operands; GPU only; the reference in float16 too)' },
} satisfies Flags;

const pythonFlag = {
  python: { type: 'string', value: 'PATH', description: 'Python with torch + transformers (default: $AUTODIDACT_PYTHON, bench/reference/.venv, python3)' },
} satisfies Flags;

type Values = Record<string, unknown>;

function modelDir(values: Values): string {
  try {
    return resolveModelPath(required(values, 'model'));
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--model: ${(e as Error).message}`);
  }
}

function requiredInt(values: Values, name: string): number {
  required(values, name);
  return intFlag(values, name, 0);
}

function numberFlag(values: Values, name: string, fallback: number): number {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a number ≥ 0, got "${String(v)}"`);
  return n;
}

/** A number of either sign (numberFlag takes none below 0). */
function signedNumberFlag(values: Values, name: string, fallback: number): number {
  const v = values[name];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${String(v)}"`);
  return n;
}

function trainOptions(values: Values) {
  const loraRank = values['lora-rank'] === undefined ? null : intFlag(values, 'lora-rank', 8);
  return {
    model: modelDir(values),
    device: choiceFlag(values, 'device', DEVICES, 'cpu') as DeviceRequest,
    batch: requiredInt(values, 'batch'),
    seq: requiredInt(values, 'seq'),
    steps: intFlag(values, 'steps', 10),
    warmup: intFlag(values, 'warmup', 2, 0),
    loraRank,
    loraAlpha: values['lora-alpha'] === undefined ? null : numberFlag(values, 'lora-alpha', 0),
    lr: numberFlag(values, 'lr', 1e-4),
    seed: intFlag(values, 'seed', 0, 0),
    microBatch: values['micro-batch'] === undefined ? null : intFlag(values, 'micro-batch', 1),
    precision: choiceFlag(values, 'precision', PRECISIONS, 'fp32'),
  };
}

function generateOptions(values: Values) {
  return {
    model: modelDir(values),
    device: choiceFlag(values, 'device', DEVICES, 'cpu') as DeviceRequest,
    batch: requiredInt(values, 'batch'),
    newTokens: requiredInt(values, 'new-tokens'),
    promptLen: intFlag(values, 'prompt-len', 8),
    repeats: intFlag(values, 'repeats', 3),
    warmup: intFlag(values, 'warmup', 1, 0),
    seed: intFlag(values, 'seed', 0, 0),
    precision: choiceFlag(values, 'precision', PRECISIONS, 'fp32'),
  };
}

function gemmOptions(values: Values) {
  return {
    model: modelDir(values),
    batch: requiredInt(values, 'batch'),
    seq: requiredInt(values, 'seq'),
    repeats: intFlag(values, 'repeats', 20),
    warmup: intFlag(values, 'warmup', 5, 0),
    device: choiceFlag(values, 'device', DEVICES, 'cpu') as DeviceRequest,
    precision: choiceFlag(values, 'precision', PRECISIONS, 'fp32'),
  };
}

function print(result: object): void {
  process.stdout.write(JSON.stringify(result) + '\n');
}

// ---------------------------------------------------------------------------------------------
// Side by side: each side in its own process, one after the other, so neither measures with the
// other's threads or memory around.

function python(values: Values): string {
  const flag = values.python;
  if (typeof flag === 'string') return flag;
  if (process.env.AUTODIDACT_PYTHON) return process.env.AUTODIDACT_PYTHON;
  const venv = path.join(ROOT, 'bench/reference/.venv/bin/python');
  return fs.existsSync(venv) ? venv : 'python3';
}

/** Run a command, pass its stderr through, and return the last JSON line it printed. */
function runForJson(cmd: string, args: string[], what: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', (e) => reject(new Error(`${what}: cannot start ${cmd}: ${e.message}`)));
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`${what} failed (exit code ${code}): ${cmd} ${args.join(' ')}`));
      try {
        resolve(JSON.parse(last) as Record<string, unknown>);
      } catch {
        reject(new Error(`${what} printed no JSON result line (last line: ${JSON.stringify(last.slice(0, 200))})`));
      }
    });
  });
}

/** The engine side, as a child process running this file's single-side command. */
function engineSide(sub: Side, args: string[]): Promise<Record<string, unknown>> {
  return runForJson(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), sub, ...args], `the engine's ${sub} benchmark`);
}

/** Flags to forward to a side: everything given except --python (and a model name resolved to its folder). */
function forward(values: Values, flags: Flags, model: string, skip: string[] = []): string[] {
  const out: string[] = [];
  for (const name of Object.keys(flags)) {
    if (name === 'python' || skip.includes(name)) continue;
    const v = name === 'model' ? model : values[name];
    if (v === undefined || v === false) continue;
    out.push(`--${name}`);
    if (v !== true) out.push(String(v));
  }
  return out;
}

/** The reference runs where PyTorch can: the engine's webgpu/auto have no PyTorch twin, so it runs on the CPU. */
function referenceDevice(values: Values): string {
  return values.device === 'cuda' ? 'cuda' : 'cpu';
}

type Side = 'train' | 'generate' | 'gemm' | 'rl-step';

async function compare(sub: Side, values: Values, flags: Flags, script: string): Promise<void> {
  const model = modelDir(values);
  const engine = await engineSide(sub, forward(values, flags, model));
  print(engine);
  // The same number of threads on both sides (every core unless AUTODIDACT_THREADS says otherwise).
  const refArgs = [
    path.join(ROOT, 'bench/reference', script),
    ...forward(values, flags, model, ['device']),
    // The reference runs on CUDA where the engine does, else on the CPU (referenceDevice).
    ...('device' in flags ? ['--device', referenceDevice(values)] : []),
    ...['--threads', String(engine.threads)],
  ];
  const reference = await runForJson(python(values), refArgs, `the PyTorch reference (${script})`);
  print(reference);
  const ratio: Record<string, unknown> = { bench: `compare-${sub}`, model: engine.model, batch: engine.batch };
  if (sub === 'train') {
    ratio.seq = engine.seq;
    ratio.ratio_ms_per_step = round(Number(engine.ms_per_step) / Number(reference.ms_per_step), 4);
    // Same weights, same batch, same loss: the first losses agree unless something is wrong.
    ratio.loss_first_abs_diff = round(Math.abs(Number(engine.loss_first) - Number(reference.loss_first)), 6);
  } else if (sub === 'gemm') {
    ratio.seq = engine.seq;
    ratio.ratio_gemm_ms_per_step = round(Number(engine.gemm_ms_per_step) / Number(reference.gemm_ms_per_step), 4);
    ratio.gemms = gemmRatios(engine.gemms as GemmTiming[], reference.gemms as GemmTiming[]);
  } else if (sub === 'rl-step') {
    for (const k of ['prompts', 'votes', 'new_tokens', 'mode', 'precision']) ratio[k] = engine[k];
    ratio.ratio_ms_per_step = round(Number(engine.ms_per_step) / Number(reference.ms_per_step), 4);
    ratio.ratio_rollout_ms = round(Number(engine.rollout_ms) / Number(reference.rollout_ms), 4);
  } else {
    ratio.new_tokens = engine.new_tokens;
    ratio.ratio_tokens_per_s = round(Number(engine.tokens_per_s) / Number(reference.tokens_per_s), 4);
  }
  ratio.engine_device = engine.device;
  ratio.reference_device = reference.device;
  print(ratio);
}

/** Entry by entry, engine ms / reference ms; the two sides must have listed the same products. */
function gemmRatios(engine: GemmTiming[], reference: GemmTiming[]): object[] {
  const key = (g: GemmTiming) => `${g.pass} ${g.m}x${g.n}x${g.k} ×${g.count}`;
  if (engine.map(key).join() !== reference.map(key).join()) {
    throw new Error(`the two sides timed different products:\n  engine:    ${engine.map(key).join(', ')}\n  reference: ${reference.map(key).join(', ')}`);
  }
  return engine.map((g, i) => ({ weight: g.weight, pass: g.pass, count: g.count, engine_ms: g.ms, reference_ms: reference[i].ms, ratio: round(g.ms / reference[i].ms, 3) }));
}

// ---------------------------------------------------------------------------------------------

/** A measurement the engine makes on its own (`name`) and side by side with its PyTorch twin (`compare-name`). */
interface Measurement<O> {
  name: Side;
  summary: string;
  synopsis: string;
  flags: Flags;
  details: string;
  /** Parses and validates the flags (before either side of a comparison starts). */
  options: (values: Values) => O;
  measure: (options: O) => Promise<object>;
  /** The reference script in bench/reference/, and what the comparison prints. */
  script: string;
  compareSummary: string;
  compareDetails: string;
}

function measured<O>(m: Measurement<O>): CliCommand[] {
  return [
    command({
      name: m.name,
      program: PROGRAM,
      summary: m.summary,
      synopsis: m.synopsis,
      flags: m.flags,
      details: m.details,
      async run(values) {
        print(await m.measure(m.options(values)));
        return 0;
      },
    }),
    command({
      name: `compare-${m.name}`,
      program: PROGRAM,
      summary: m.compareSummary,
      synopsis: m.synopsis,
      flags: { ...m.flags, ...pythonFlag },
      details: m.compareDetails,
      async run(values) {
        m.options(values);
        await compare(m.name, values, m.flags, m.script);
        return 0;
      },
    }),
  ].map((c) => c as unknown as CliCommand);
}

const commands: CliCommand[] = [
  ...measured({
    name: 'train',
    summary: 'Time training steps of the engine (full fine-tuning AdamW, or LoRA) on a synthetic batch.',
    synopsis: '--model NAME|DIR --batch B --seq T [options]',
    flags: trainFlags,
    details: 'Prints one JSON line: bench, impl, model, device, batch, seq, ms_per_step, tokens_per_s, peak_rss_mb, loss_first, ...',
    options: trainOptions,
    measure: benchTrain,
    script: 'train_step.py',
    compareSummary: 'Run `train` and then bench/reference/train_step.py (PyTorch eager) on the same model and batch; print both lines and their ratio.',
    compareDetails: 'The third line is {"bench": "compare-train", "ratio_ms_per_step": engine / reference, "loss_first_abs_diff": ...}.',
  }),
  ...measured({
    name: 'generate',
    summary: 'Time batched sampling with the engine (prefill + KV-cached decode), every row generating exactly N tokens.',
    synopsis: '--model NAME|DIR --batch B --new-tokens N [options]',
    flags: generateFlags,
    details: 'Prints one JSON line: bench, impl, model, device, batch, new_tokens, ms_per_step (per decode step), tokens_per_s, peak_rss_mb, ...',
    options: generateOptions,
    measure: benchGenerate,
    script: 'generate.py',
    compareSummary: 'Run `generate` and then bench/reference/generate.py (transformers generate()); print both lines and their ratio.',
    compareDetails: 'The third line is {"bench": "compare-generate", "ratio_tokens_per_s": engine / reference, ...}.',
  }),
  ...measured({
    name: 'rl-step',
    summary: "Time steps of the app's run loop at TTRL's shape: the rollout (prompts × votes × new tokens), the vote, the update of every vote; with the GPU memory of the engine's buffers.",
    synopsis: '--model NAME|DIR [--prompts 4 --votes 16 --new-tokens 64] [--lora-rank R] [--device D] [--precision P]',
    flags: rlStepFlags,
    details: 'Prints one JSON line: bench, impl, model, device, ms_per_step, rollout_ms, update_ms, rollout_tokens_per_s, response_length, max_abs_ppo_kl (the sampler\'s and trainer\'s gap: a check of the generation graphs), peak_rss_mb, device_buffers_mb (WebGPU), ...',
    options: rlStepOptions,
    measure: benchRlStep,
    script: 'grpo_step.py',
    compareSummary: "Run `rl-step` and then bench/reference/grpo_step.py (TRL's GRPOTrainer, one whole step) on the same model and prompts; print both lines and their ratio.",
    compareDetails: 'The third line is {"bench": "compare-rl-step", "ratio_ms_per_step": engine / reference, "ratio_rollout_ms": ...}.',
  }),
  ...measured({
    name: 'gemm',
    summary: "Time the linear layers' matrix products of one training step (forward, input and weight gradients) in onnxruntime's kernels, on the CPU or a GPU.",
    synopsis: '--model NAME|DIR --batch B --seq T [--repeats R --warmup W] [--device cpu|webgpu] [--precision fp32|mixed]',
    flags: gemmFlags,
    details: "Prints one JSON line: gemm_ms_per_step (Σ count · kernel ms), gflop_per_step, and each product's m, n, k, count, ms and gflop_per_s.",
    options: gemmOptions,
    measure: benchGemm,
    script: 'gemm.py',
    compareSummary: 'Run `gemm` and then bench/reference/gemm.py (torch.mm) on the same products; print both lines and their ratios.',
    compareDetails: 'The third line is {"bench": "compare-gemm", "ratio_gemm_ms_per_step": engine / reference, "gemms": [per-product ratios]}.',
  }),
  command({
    name: 'graph-nodes',
    program: PROGRAM,
    summary: 'Count the nodes of a training step, a prefill and a decode step by op type, as written for a provider (no weights are read or allocated).',
    synopsis: '(--model NAME|DIR | --name NAME [--hidden N --layers N --heads N --kv-heads N --intermediate N --vocab N --untied]) [--provider cpu|webgpu] [--precision fp32|mixed] [--batch B --seq T --lora-rank R] [--rows B --prompt-len P --cache-len L]',
    flags: {
      model: { type: 'string', value: 'NAME|DIR', description: 'a model folder (its config.json only) or a built-in model name' },
      name: { type: 'string', value: 'NAME', description: 'without --model: a make-model preset the shape flags adjust' },
      ...modelShapeFlags,
      vocab: { type: 'string', value: 'N', description: 'vocabulary size' },
      untied: { type: 'boolean', description: 'an output layer of its own instead of the tied embedding' },
      provider: { type: 'string', value: 'PROVIDER', default: 'webgpu', description: 'cpu or webgpu: whose lowerings the graphs are written with' },
      precision: { type: 'string', value: 'P', default: 'fp32', description: 'fp32, or mixed (float16 weights and activations; webgpu)' },
      batch: { type: 'string', value: 'B', default: '8', description: 'training sequences per step' },
      seq: { type: 'string', value: 'T', default: '256', description: 'training tokens per sequence' },
      'lora-rank': { type: 'string', value: 'R', description: 'train LoRA adapters of this rank on every linear layer instead of every weight' },
      rows: { type: 'string', value: 'B', default: '64', description: 'generation rows (prompts, one sample each)' },
      'prompt-len': { type: 'string', value: 'P', default: '64', description: 'padded prompt length of the prefill' },
      'cache-len': { type: 'string', value: 'L', default: '192', description: 'cache slots of prefill and decode' },
    },
    details:
      'Prints one JSON line per graph: {"bench": "graph-nodes", "graph": "train"|"prefill"|"decode", "nodes", "byOp": {op: count}}; with --lora-rank the prefill and decode graphs twice, "adapters": "unmerged" (each adapted layer reads its adapter) and "merged" (the weights with the adapters merged in, as a GPU run generates where memory allows).',
    async run(values) {
      const { parseConfig } = await import('../main/engine/nn/config.ts');
      const { graphNodes } = await import('./graph-nodes.ts');
      let config;
      if (values.model !== undefined) {
        config = parseConfig(JSON.parse(fs.readFileSync(path.join(modelDir(values), 'config.json'), 'utf8')), 'config.json');
      } else {
        const { optionsFromArgs, llamaConfigJson } = await import('../resources/models/make-builtin-models.ts');
        const given = values as Values;
        const shape = ['name', 'hidden', 'layers', 'heads', 'kv-heads', 'intermediate', 'vocab'].flatMap((k) => (typeof given[k] === 'string' ? [`--${k}`, given[k] as string] : []));
        let parsed;
        try {
          parsed = optionsFromArgs([...shape, ...(values.untied === true ? ['--untied'] : [])]);
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
        config = parseConfig(llamaConfigJson(parsed!.options));
      }
      const provider = choiceFlag(values, 'provider', ['cpu', 'webgpu'] as const, 'webgpu') as 'cpu' | 'webgpu';
      const counts = graphNodes({
        config,
        provider,
        batch: intFlag(values, 'batch', 8),
        seq: intFlag(values, 'seq', 256),
        loraRank: values['lora-rank'] === undefined ? null : intFlag(values, 'lora-rank', 8),
        rows: intFlag(values, 'rows', 64),
        promptLength: intFlag(values, 'prompt-len', 64),
        cacheLength: intFlag(values, 'cache-len', 192),
        precision: choiceFlag(values, 'precision', PRECISIONS, 'fp32'),
      });
      for (const c of counts) print({ bench: 'graph-nodes', provider, precision: values.precision ?? 'fp32', ...c });
      return 0;
    },
  }),
  command({
    name: 'make-model',
    program: PROGRAM,
    summary: 'Write a Llama model folder with random weights and the character-level tokenizer (e.g. the 256-hidden benchmark model).',
    synopsis: '--out DIR [--name bench-256] [--hidden N --layers N --heads N --kv-heads N --intermediate N --seed N --max-positions N --vocab N --untied]',
    flags: {
      out: { type: 'string', value: 'DIR', description: 'where to write the folder' },
      name: { type: 'string', value: 'NAME', description: 'a preset (tiny-chars, bench-256) the other flags adjust' },
      ...modelShapeFlags,
      seed: { type: 'string', value: 'N', description: 'weights seed' },
      'max-positions': { type: 'string', value: 'N', description: 'max_position_embeddings' },
      vocab: { type: 'string', value: 'N', description: 'vocabulary size (at least the tokenizer\'s; rows past it are never produced by the tokenizer)' },
      untied: { type: 'boolean', description: 'an output layer of its own instead of the tied embedding' },
    },
    details: 'Same flags as `npm run models:builtin`, which does the work.',
    async run(values) {
      required(values, 'out');
      const { optionsFromArgs, writeBuiltinModel } = await import('../resources/models/make-builtin-models.ts');
      const args = Object.entries(values).flatMap(([k, v]) => (typeof v === 'string' ? [`--${k}`, v] : v === true ? [`--${k}`] : []));
      let parsed;
      try {
        parsed = optionsFromArgs(args);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      if (!parsed) return 0;
      await writeBuiltinModel(parsed.dir, parsed.options);
      print({ bench: 'make-model', out: path.resolve(parsed.dir), ...parsed.options });
      return 0;
    },
  }),
  command({
    name: 'ttrl-demo',
    program: PROGRAM,
    summary: 'The TTRL effect: base avg@16/maj@16 on labeled level-1 `+` problems, TTRL on disjoint unlabeled ones, then avg@16/maj@16 again.',
    synopsis: '[--steps N] [--minutes M] [--seed S] [--device D] [--lr LR] [options]',
    flags: {
      model: { ...trainFlags.model, default: 'tiny-arith' },
      steps: { type: 'string', value: 'N', default: String(TTRL_DEMO_DEFAULTS.steps), description: 'training steps at most' },
      minutes: { type: 'string', value: 'M', default: String(TTRL_DEMO_DEFAULTS.minutes), description: 'training stops after this many minutes' },
      seed: { type: 'string', value: 'S', default: '0', description: 'seed of the run (prompt order, sampling) and of the evaluation sampling' },
      device: trainFlags.device,
      lr: { type: 'string', value: 'LR', default: String(TTRL_DEMO_DEFAULTS.lr), description: 'peak learning rate (cosine schedule)' },
      mode: { type: 'string', value: 'full|lora', default: TTRL_DEMO_DEFAULTS.mode, description: 'full fine-tuning or LoRA' },
      'lora-rank': { type: 'string', value: 'R', default: String(TTRL_DEMO_DEFAULTS.loraRank), description: 'LoRA rank (with --mode lora)' },
      kl: { type: 'string', value: 'C', default: String(TTRL_DEMO_DEFAULTS.klCoef), description: 'KL loss coefficient to the base model' },
      'kl-target': { type: 'string', value: 'KL', default: String(TTRL_DEMO_DEFAULTS.klTarget), description: 'adaptive KL: mean token KL to hold, starting from --kl (0 = fixed coefficient)' },
      'kl-horizon': { type: 'string', value: 'STEPS', default: String(TTRL_DEMO_DEFAULTS.klHorizon), description: 'adaptive KL: steps over which a sustained 20% error moves the coefficient by about 20%' },
      prompts: { type: 'string', value: 'B', default: String(TTRL_DEMO_DEFAULTS.promptsPerStep), description: 'prompts per step' },
      votes: { type: 'string', value: 'N', default: String(TTRL_DEMO_DEFAULTS.votes), description: 'votes per prompt' },
      'train-samples': { type: 'string', value: 'N', default: String(TTRL_DEMO_DEFAULTS.trainSamples), description: 'votes per prompt trained on' },
      temperature: { type: 'string', value: 'T', default: String(TTRL_DEMO_DEFAULTS.temperature), description: 'rollout sampling temperature' },
      'eval-temperature': { type: 'string', value: 'T', default: String(TTRL_DEMO_DEFAULTS.evalTemperature), description: 'sampling temperature of the avg@16 / maj@16 measurements (top-p 0.95)' },
      entropy: { type: 'string', value: 'C', default: String(TTRL_DEMO_DEFAULTS.entropyCoef), description: 'entropy coefficient of the policy loss: < 0 minimises entropy (sharpens), > 0 is a bonus, 0 = off' },
      srt: { type: 'string', value: 'TAU', default: String(TTRL_DEMO_DEFAULTS.srtThreshold), description: 'SRT confidence threshold: prompts whose majority ratio is below it get no pseudo-label (0 = off)' },
      advantage: { type: 'string', value: 'grpo|drgrpo|rloo|gae', default: TTRL_DEMO_DEFAULTS.advantage, description: 'advantage estimator (gae: PPO with a learned critic)' },
      'critic-lr': { type: 'string', value: 'LR', description: "the critic's learning rate (with --advantage gae; default: the run setting's)" },
      'val-every': { type: 'string', value: 'N', default: String(TTRL_DEMO_DEFAULTS.valEvery), description: 'avg@16/maj@16 on the labeled set every N steps for the trend (0 = never)' },
      count: { type: 'string', value: 'N', default: String(TTRL_DEMO_DEFAULTS.count), description: 'labeled evaluation problems' },
      'train-count': { type: 'string', value: 'N', default: String(TTRL_DEMO_DEFAULTS.trainCount), description: 'unlabeled training problems at most (all the free ones when larger)' },
    },
    details: 'Prints the numbers, then one JSON line: base_avg16, base_maj16, after_avg16, after_maj16, label_accuracy, wall_s, steps, trend, settings, ...',
    async run(values) {
      const d = TTRL_DEMO_DEFAULTS;
      const o: TtrlDemoOptions = {
        ...d,
        model: required(values, 'model'),
        device: choiceFlag(values, 'device', DEVICES, 'cpu') as DeviceRequest,
        steps: intFlag(values, 'steps', d.steps),
        minutes: numberFlag(values, 'minutes', d.minutes),
        seed: intFlag(values, 'seed', d.seed, 0),
        lr: numberFlag(values, 'lr', d.lr),
        mode: choiceFlag(values, 'mode', ['full', 'lora'] as const, d.mode),
        loraRank: intFlag(values, 'lora-rank', d.loraRank),
        klCoef: numberFlag(values, 'kl', d.klCoef),
        klTarget: numberFlag(values, 'kl-target', d.klTarget),
        klHorizon: numberFlag(values, 'kl-horizon', d.klHorizon),
        promptsPerStep: intFlag(values, 'prompts', d.promptsPerStep),
        votes: intFlag(values, 'votes', d.votes),
        trainSamples: intFlag(values, 'train-samples', d.trainSamples),
        temperature: numberFlag(values, 'temperature', d.temperature),
        evalTemperature: numberFlag(values, 'eval-temperature', d.evalTemperature),
        entropyCoef: signedNumberFlag(values, 'entropy', d.entropyCoef),
        srtThreshold: numberFlag(values, 'srt', d.srtThreshold),
        advantage: choiceFlag(values, 'advantage', ADVANTAGE_CHOICES, d.advantage),
        ...(values['critic-lr'] !== undefined && { criticLr: numberFlag(values, 'critic-lr', 0) }),
        valEvery: intFlag(values, 'val-every', d.valEvery, 0),
        count: intFlag(values, 'count', d.count),
        trainCount: intFlag(values, 'train-count', d.trainCount),
      };
      o.valCount = o.count;
      const r = await ttrlDemo(o);
      process.stdout.write(summary(r));
      print(r);
      return 0;
    },
  }),
  command({
    name: 'svd-demo',
    program: PROGRAM,
    summary: 'Self-verified distillation on tiny-arith: raw sample accuracy, the cascade’s precision and recall per stage, avg@16 before and after each round.',
    synopsis: '[--rounds N] [--questions N] [--seed S] [options]',
    flags: {
      model: { ...trainFlags.model, default: SVD_DEMO_DEFAULTS.model },
      device: trainFlags.device,
      seed: { type: 'string', value: 'S', default: String(SVD_DEMO_DEFAULTS.seed), description: 'seed of the run (question order, sampling, judges)' },
      rounds: { type: 'string', value: 'N', default: String(SVD_DEMO_DEFAULTS.rounds), description: 'rounds (each: candidates, cascade, SFT, avg@16)' },
      count: { type: 'string', value: 'N', default: String(SVD_DEMO_DEFAULTS.count), description: 'labeled evaluation problems' },
      questions: { type: 'string', value: 'N', default: String(SVD_DEMO_DEFAULTS.questions), description: 'unlabeled questions per round' },
      candidates: { type: 'string', value: 'K', default: String(SVD_DEMO_DEFAULTS.candidates), description: 'candidates per question' },
      votes: { type: 'string', value: 'V', default: String(SVD_DEMO_DEFAULTS.votes), description: 'judge votes per candidate and stage' },
      rule: { type: 'string', value: 'unanimous|majority', default: SVD_DEMO_DEFAULTS.rule, description: 'how a stage’s votes decide' },
      cap: { type: 'string', value: 'M', default: String(SVD_DEMO_DEFAULTS.cap), description: 'survivors per question at most (one per answer)' },
      stages: { type: 'string', value: 'LIST', default: SVD_DEMO_DEFAULTS.stages.join(','), description: 'the stages in order (cycle, factuality, correctness)' },
      temperature: { type: 'string', value: 'T', default: String(SVD_DEMO_DEFAULTS.temperature), description: 'candidate sampling temperature' },
      'judge-temperature': { type: 'string', value: 'T', default: String(SVD_DEMO_DEFAULTS.judgeTemperature), description: 'judge and ask sampling temperature' },
      lr: { type: 'string', value: 'LR', default: String(SVD_DEMO_DEFAULTS.lr), description: 'SFT peak learning rate (cosine over each round)' },
      epochs: { type: 'string', value: 'N', default: String(SVD_DEMO_DEFAULTS.epochs), description: 'SFT epochs a round' },
      batch: { type: 'string', value: 'N', default: String(SVD_DEMO_DEFAULTS.batch), description: 'SFT sequences a step' },
    },
    details: 'Prints the numbers per round, then one JSON line: base_avg16, after_round1_avg16, after_round2_avg16, rounds (raw_accuracy, per stage survivors/precision/recall, sft_set, sft_precision, sft_loss), wall_s, settings.',
    async run(values) {
      const d = SVD_DEMO_DEFAULTS;
      const stages = (values.stages ?? d.stages.join(',')).split(',').map((x) => x.trim());
      for (const s of stages) if (!(STAGE_IDS as readonly string[]).includes(s)) throw new UsageError(`--stages: "${s}" is not a stage; the stages are ${STAGE_IDS.join(', ')}`);
      const o: SvdDemoOptions = {
        model: required(values, 'model'),
        device: choiceFlag(values, 'device', DEVICES, 'cpu') as DeviceRequest,
        seed: intFlag(values, 'seed', d.seed, 0),
        rounds: intFlag(values, 'rounds', d.rounds),
        count: intFlag(values, 'count', d.count),
        questions: intFlag(values, 'questions', d.questions),
        candidates: intFlag(values, 'candidates', d.candidates),
        votes: intFlag(values, 'votes', d.votes),
        rule: choiceFlag(values, 'rule', ['unanimous', 'majority'] as const, d.rule),
        cap: intFlag(values, 'cap', d.cap),
        stages: stages as StageId[],
        temperature: numberFlag(values, 'temperature', d.temperature),
        judgeTemperature: numberFlag(values, 'judge-temperature', d.judgeTemperature),
        lr: numberFlag(values, 'lr', d.lr),
        epochs: intFlag(values, 'epochs', d.epochs),
        batch: intFlag(values, 'batch', d.batch),
      };
      const r = await svdDemo(o);
      process.stdout.write(svdSummary(r));
      print(r);
      return 0;
    },
  }),
  command({
    name: 'methods',
    program: PROGRAM,
    summary: 'Every label-free method on the TTRL demo with the same budget and seeds: base and after avg@16/maj@16, label and reward accuracy, reward–truth correlation, wall time.',
    synopsis: '[--methods A,B] [--seeds 0,1,2] [--steps N] [--minutes M] [--device D]',
    flags: {
      model: { ...trainFlags.model, default: 'tiny-arith' },
      methods: { type: 'string', value: 'A,B', description: 'method ids, comma-separated (default: every registered method)' },
      advantages: { type: 'string', value: 'A,B', description: 'advantage estimators to run each method with, comma-separated (grpo, drgrpo, rloo, gae; default: each method’s own)' },
      seeds: { type: 'string', value: 'S,S', default: METHODS_BENCH_DEFAULTS.seeds.join(','), description: 'seeds, comma-separated: each method runs once per seed' },
      steps: { type: 'string', value: 'N', default: String(METHODS_BENCH_DEFAULTS.steps), description: 'training steps per run (the shared budget)' },
      minutes: { type: 'string', value: 'M', default: String(METHODS_BENCH_DEFAULTS.minutes), description: 'training of one run stops after this many minutes' },
      device: trainFlags.device,
      count: { type: 'string', value: 'N', default: String(TTRL_DEMO_DEFAULTS.count), description: 'labeled evaluation problems' },
      'train-count': { type: 'string', value: 'N', default: String(TTRL_DEMO_DEFAULTS.trainCount), description: 'unlabeled training problems at most' },
    },
    details: 'Prints one JSON line per method and seed as each finishes (bench, method, seed, base_avg16, after_avg16, label_accuracy, reward_accuracy, reward_truth_correlation, wall_s, settings, ...), then the table.',
    async run(values) {
      const list = (v: string | undefined, what: string): string[] => {
        const items = (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        if (v !== undefined && items.length === 0) throw new UsageError(`--${what} needs at least one value`);
        return items;
      };
      // The RL methods: a distillation method has its own bench (svd-demo).
      // code-consensus rewards code, which the arithmetic demo's answers are not.
      const methods = values.methods !== undefined ? list(values.methods, 'methods') : listMethods().filter((m) => m.pipeline === 'group-reward' && m.id !== 'code-consensus').map((m) => m.id);
      const seeds = list(values.seeds, 'seeds').map((s) => {
        if (!/^\d+$/.test(s)) throw new UsageError(`--seeds: "${s}" is not a whole number`);
        return Number(s);
      });
      const d = TTRL_DEMO_DEFAULTS;
      const demo: TtrlDemoOptions = {
        ...d,
        model: required(values, 'model'),
        device: choiceFlag(values, 'device', DEVICES, 'cpu') as DeviceRequest,
        steps: intFlag(values, 'steps', METHODS_BENCH_DEFAULTS.steps),
        minutes: numberFlag(values, 'minutes', METHODS_BENCH_DEFAULTS.minutes),
        count: intFlag(values, 'count', d.count),
        trainCount: intFlag(values, 'train-count', d.trainCount),
        // The trend's validations would cost every run the same extra time and say nothing the after numbers do not.
        valEvery: 0,
      };
      const advantages = values.advantages !== undefined ? list(values.advantages, 'advantages').map((a) => choiceFlag({ advantages: a }, 'advantages', ADVANTAGE_CHOICES, 'grpo')) : undefined;
      const rows = await methodsBench({ methods, seeds, demo, ...(advantages && { advantages }) }, print);
      process.stdout.write(methodsTable(rows));
      return 0;
    },
  }),
  command({
    name: 'sandbox',
    program: PROGRAM,
    summary: 'Executions per second of the code sandbox (main/sandbox/): a small solution with its asserts, in Python (Pyodide) and JavaScript (QuickJS).',
    synopsis: '[--seconds S] [--workers N]',
    flags: {
      seconds: { type: 'string', value: 'S', default: String(SANDBOX_BENCH_DEFAULTS.seconds), description: 'timed seconds per language' },
      workers: { type: 'string', value: 'N', description: "the pool's workers per language (default: the machine's cores, at most 2)" },
    },
    details: 'Prints one JSON line per language (language, workers, cores, start_s, executions, executions_per_s, failed).',
    async run(values) {
      const workers = values.workers !== undefined ? intFlag(values, 'workers', 1) : undefined;
      if (workers !== undefined && workers < 1) throw new UsageError('--workers must be at least 1');
      await sandboxBench({ seconds: numberFlag(values, 'seconds', SANDBOX_BENCH_DEFAULTS.seconds), workers }, print);
      return 0;
    },
  }),
  command({
    name: 'agent-demo',
    program: PROGRAM,
    summary: 'The built-in tiny-agent on held-out household and shop tasks: warm-started base, after outcome-only GRPO and after OPID, same budget, over seeds.',
    synopsis: '[--envs household,shop] [--seeds 0,1,2] [--steps N] [--tasks N] [--episodes N] [--held-out N] [--lr LR]',
    flags: {
      model: { ...trainFlags.model, default: AGENT_DEMO_DEFAULTS.model },
      envs: { type: 'string', value: 'E,E', default: AGENT_DEMO_DEFAULTS.envs.join(','), description: 'environments, comma-separated (household, shop)' },
      seeds: { type: 'string', value: 'S,S', default: AGENT_DEMO_DEFAULTS.seeds.join(','), description: 'seeds, comma-separated: each method runs once per seed' },
      steps: { type: 'string', value: 'N', default: String(AGENT_DEMO_DEFAULTS.steps), description: 'training steps per run (the shared budget)' },
      tasks: { type: 'string', value: 'N', default: String(AGENT_DEMO_DEFAULTS.tasksPerStep), description: 'tasks per training step' },
      episodes: { type: 'string', value: 'N', default: String(AGENT_DEMO_DEFAULTS.episodesPerTask), description: 'episodes per task (the GRPO group)' },
      'held-out': { type: 'string', value: 'N', default: String(AGENT_DEMO_DEFAULTS.heldOut), description: 'held-out tasks per environment, one greedy episode each' },
      lr: { type: 'string', value: 'LR', default: String(AGENT_DEMO_DEFAULTS.lr), description: 'peak learning rate of both methods (cosine schedule)' },
    },
    details: 'Prints one JSON line per environment, method and seed as each finishes (bench, env, method, seed, base_success, base_reward, after_success, after_reward, after_length, train_success_first/last, and for OPID the mean over training steps of teacher_available, critical_step_ratio, delta_step_mean, delta_episode_mean and adv_std; wall_s), then the table.',
    async run(values) {
      const seeds = (values.seeds ?? '').split(',').map((s) => {
        if (!/^\d+$/.test(s.trim())) throw new UsageError(`--seeds: "${s}" is not a whole number`);
        return Number(s);
      });
      const envs = (values.envs ?? '').split(',').map((e) => e.trim());
      for (const e of envs) if (!AGENT_DEMO_DEFAULTS.envs.includes(e)) throw new UsageError(`--envs: "${e}" is not a built-in environment (${AGENT_DEMO_DEFAULTS.envs.join(', ')})`);
      const o = { ...AGENT_DEMO_DEFAULTS, model: required(values, 'model'), envs, seeds, steps: intFlag(values, 'steps', AGENT_DEMO_DEFAULTS.steps),
        tasksPerStep: intFlag(values, 'tasks', AGENT_DEMO_DEFAULTS.tasksPerStep),
        episodesPerTask: intFlag(values, 'episodes', AGENT_DEMO_DEFAULTS.episodesPerTask),
        heldOut: intFlag(values, 'held-out', AGENT_DEMO_DEFAULTS.heldOut),
        lr: numberFlag(values, 'lr', AGENT_DEMO_DEFAULTS.lr),
      };
      const rows = await agentDemo(o, print);
      process.stdout.write(agentDemoTable(rows, o));
      return 0;
    },
  }),
  command({
    name: 'code-demo',
    program: PROGRAM,
    summary: 'The built-in tiny-coder on held-out code tasks: hidden-test pass@1 of the base, after code-consensus self-play with GRPO and with the PPO + GAE critic, same budget, over seeds.',
    synopsis: '[--configs grpo,gae] [--seeds 0,1,2] [--steps N] [--tasks N] [--samples N] [--held-out N] [--val-samples K] [--lr LR] [--critic-warmup N]',
    flags: {
      model: { ...trainFlags.model, default: CODE_DEMO_DEFAULTS.model },
      configs: { type: 'string', value: 'C,C', default: CODE_DEMO_DEFAULTS.configs.join(','), description: 'advantage estimators, comma-separated: grpo (group-relative, no critic), gae (PPO with a learned critic)' },
      seeds: { type: 'string', value: 'S,S', default: CODE_DEMO_DEFAULTS.seeds.join(','), description: 'seeds, comma-separated: each configuration runs once per seed' },
      steps: { type: 'string', value: 'N', default: String(CODE_DEMO_DEFAULTS.steps), description: 'self-play steps per run (the shared budget)' },
      tasks: { type: 'string', value: 'N', default: String(CODE_DEMO_DEFAULTS.tasksPerStep), description: 'tasks per self-play step' },
      samples: { type: 'string', value: 'N', default: String(CODE_DEMO_DEFAULTS.samples), description: 'samples per task (each a function and its tests)' },
      'held-out': { type: 'string', value: 'N', default: String(CODE_DEMO_DEFAULTS.heldOut), description: 'held-out eval-split tasks measured' },
      'val-samples': { type: 'string', value: 'K', default: String(CODE_DEMO_DEFAULTS.valSamples), description: 'samples per held-out task for pass@1' },
      lr: { type: 'string', value: 'LR', default: String(CODE_DEMO_DEFAULTS.lr), description: 'learning rate of self-play (constant)' },
      'critic-warmup': { type: 'string', value: 'N', default: String(CODE_DEMO_DEFAULTS.criticWarmup), description: 'gae: the first N steps train only the critic (the policy waits), within --steps' },
    },
    details: 'Prints one JSON line per configuration and seed as each finishes (bench, config, seed, base_pass1, base_codet, after_pass1, after_codet, after_pass_k, labeled_share, consensus_accuracy, sample_pass_first/last, runnable_first/last, critic_explained_var, wall_s), then the table.',
    async run(values) {
      const seeds = (values.seeds ?? '').split(',').map((s) => {
        if (!/^\d+$/.test(s.trim())) throw new UsageError(`--seeds: "${s}" is not a whole number`);
        return Number(s);
      });
      const configs = (values.configs ?? '').split(',').map((c) => c.trim());
      for (const c of configs) if (!(CODE_DEMO_CONFIGS as readonly string[]).includes(c)) throw new UsageError(`--configs: "${c}" is not one of ${CODE_DEMO_CONFIGS.join(', ')}`);
      const o = {
        ...CODE_DEMO_DEFAULTS,
        model: required(values, 'model'),
        configs: configs as CodeDemoConfig[],
        seeds,
        steps: intFlag(values, 'steps', CODE_DEMO_DEFAULTS.steps),
        tasksPerStep: intFlag(values, 'tasks', CODE_DEMO_DEFAULTS.tasksPerStep),
        samples: intFlag(values, 'samples', CODE_DEMO_DEFAULTS.samples),
        heldOut: intFlag(values, 'held-out', CODE_DEMO_DEFAULTS.heldOut),
        valSamples: intFlag(values, 'val-samples', CODE_DEMO_DEFAULTS.valSamples),
        lr: numberFlag(values, 'lr', CODE_DEMO_DEFAULTS.lr),
        criticWarmup: intFlag(values, 'critic-warmup', CODE_DEMO_DEFAULTS.criticWarmup, 0),
      };
      if (o.configs.includes('gae') && o.criticWarmup >= o.steps) throw new UsageError(`--critic-warmup ${o.criticWarmup} leaves the gae runs' policy no step to learn in: it must be below --steps (${o.steps}); pass --critic-warmup 0 for short runs`);
      const rows = await codeDemo(o, print);
      process.stdout.write(codeDemoTable(rows, o));
      return 0;
    },
  }),
].map((c) => c as unknown as CliCommand);

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [`usage: ${PROGRAM} <command> [options]`, '', ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`), '', `Run '${PROGRAM} <command> --help' for its options.`, ''].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    process.stdout.write(overview());
    return name === undefined ? 2 : 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`bench: unknown command "${name}" (commands: ${commands.map((c) => c.name).join(', ')})\n`);
    return 2;
  }
  try {
    const parsed = parseFor(cmd, rest);
    if (!parsed) return 0;
    return await cmd.run(parsed.values, parsed.positionals);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`bench ${cmd.name}: ${e.message}\nRun '${PROGRAM} ${cmd.name} --help' for usage.\n`);
      return 2;
    }
    process.stderr.write(`bench ${cmd.name}: ${(e as Error).message}\n`);
    if (process.env.AUTODIDACT_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
