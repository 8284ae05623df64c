// The built-in coding model `tiny-coder` (issue 19): a small Llama with the character tokenizer,
// trained from scratch by supervised fine-tuning with the engine to answer the built-in code
// tasks (`code-functions-js`, main/engine/tasks/code-generators.ts) as method code-consensus
// reads a response (main/engine/code/response.ts): the function in a ```javascript block, then a
// second block of assert(...) lines that test it, then end of sequence. The prompt is the task's
// own (codeTaskPrompt, raw), so `autodidact run --model tiny-coder --dataset code-functions-js
// --method code-consensus` asks it what it was taught.
//
// The supervision is the generator's hidden reference of TRAINING-split tasks only (a fixed set
// of --tasks of them, seeded), as labelled sums pretrain tiny-arith: the reference function, and
// --tests asserts of small inputs with the outputs the task's family computes. The evaluation
// split (the descriptions the generator hashes there) is never seen, nor are the other training
// tasks, which self-play may then use unlabeled (bench/code-demo.ts). It is deliberately
// imperfect: at --label-noise the function shown is another task's of the same family (its
// constants redrawn, drawn afresh each time a task comes round; the tests stay the task's own),
// and it is trained for minutes, so its samples on unseen tasks are often wrong, and its tests
// (which need the function's value computed in its head) more often, while the most common
// function among its samples is more often right: the room CodeT's dual agreement has to work.
//
//   npx tsx resources/models/make-tiny-coder.ts                 # resources/models/tiny-coder
//   npx tsx resources/models/make-tiny-coder.ts --out /tmp/tc --steps 40 --tasks 32
//
// Measured (the committed model, the defaults; 2 cores shared with four other engineers' work,
// load 10-14): 407,040 parameters, 360 steps of 16 padded to 640 positions, final mean loss
// 0.120, 870 s wall (a 16×512 step of this size takes 0.76 s on an idle machine: about 6 min
// there). On 24 held-out eval-split tasks, 2 samples each at temperature 0.7: 3 of 48 functions
// pass the hidden tests (6%); greedy 2 of 24. It writes the response form every time (a fenced
// function of the right family and name, then asserts of the right shape), but it does NOT copy
// the task's constants from the description: "// Return 6 times the integer x, plus 3." and
// `return 8 * x + 7` for "Return 8 times the integer x, plus 8.", so the base is below the
// 15-60% the code demo wants, and most of its functions, and the tests that would tell them
// apart, are wrong in the constants. Tried, each one build (pass@1 of sampled functions on the
// same held-out tasks): 160 fixed tasks, 25% noise, 3 tests, 300 steps: 3% (temperature 1,
// with typos); all 380 fixed tasks, 10% noise, 2 tests, 400 steps: 6% (0.6); with the
// restated description: 4% (0.7); and half the rows fresh tasks (the defaults): 6% (0.7). The
// loss on the taught tasks goes low (0.10-0.13) through remembering them, and copying (an
// induction head over ~250 positions) did not form in these few hundred steps; what is left to
// try is a longer build, a curriculum of short description-to-function rows, or a larger model.
//
// JavaScript, because the sandbox runs QuickJS programs about 4× faster than Pyodide's Python
// (bench sandbox: ~2,000 against ~540 executions/s on 2 cores), and self-play runs k×k of them per
// task and step.
//
// Reproducible: the random init (make-builtin-models.ts), the tasks (the seeded train split), the
// noise, the tests and the batches are all seeded, so the same options give the same model; no
// optimizer state is kept.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModelFolder } from '../../main/engine/nn/hf-model.ts';
import type { TextTokenizer } from '../../main/engine/nn/tokenizer.ts';
import { fnv1a32, mulberry32Uniform } from '../../main/engine/runtime/rng.ts';
import type { BatchShape, SequenceExample } from '../../main/engine/runtime/trainer.ts';
import { CODE_FAMILIES, type CodeFamily, type GeneratedCodeTask, assertLine, codeSplitOf, generateCodeTasks } from '../../main/engine/tasks/code-generators.ts';
import { codeTaskPrompt } from '../../main/engine/tasks/code-tasks.ts';
import type { SandboxLanguage } from '../../main/sandbox/protocol.ts';
import { type BuiltinModelOptions, writeBuiltinModel } from './make-builtin-models.ts';
import { trainSupervised } from './sft.ts';

export interface TinyCoderOptions {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  seed: number;
  /** Distinct training-split tasks of the generator the model is taught (the first of the seeded split). */
  tasks: number;
  /**
   * Share of the rows that are fresh tasks instead: a family's constants drawn from wider ranges
   * (FRESH_RANGES), kept only where the description hashes to the training split, so no
   * evaluation task is ever among them. No two are alike, so the constants can only be learned
   * by copying them from the description, not by remembering tasks.
   */
  fresh: number;
  /** Asserts per response. */
  tests: number;
  /** Share of the functions shown that are another task's of the same family (noisy supervision). */
  labelNoise: number;
  steps: number;
  batch: number;
  lr: number;
}

export const TINY_CODER_DEFAULTS: TinyCoderOptions = {
  hidden: 128,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  intermediate: 384,
  seed: 1,
  tasks: 380,
  fresh: 0.5,
  tests: 2,
  labelNoise: 0.1,
  steps: 360,
  batch: 16,
  lr: 2e-3,
};

/** The language tiny-coder writes, and the built-in dataset that asks for it. */
export const TINY_CODER_LANGUAGE: SandboxLanguage = 'javascript';
export const TINY_CODER_DATASET = 'code-functions-js';
/** The settings a run of tiny-coder uses: its responses' length (the longest taught is about 300 characters). */
export const TINY_CODER_RUN_SETTINGS = { codeLanguage: TINY_CODER_LANGUAGE, maxNewTokens: 384, promptFormat: 'raw' } as const;

/** Positions the model is built for: the longest task prompt (about 260 characters), a response and room for a second turn's start. */
const MAX_POSITIONS = 768;
/**
 * Inputs of the taught tests are drawn from the family's own ranges narrowed to [-SMALL, SMALL],
 * and a range from 0 (a length, a letter, a limit) to [0, SHORT]: short tests, whose outputs a
 * small model can come to compute.
 */
const SMALL = 6;
const SHORT = 4;

const familyOf = (id: string): CodeFamily => {
  const f = CODE_FAMILIES.find((x) => x.id === id);
  if (!f) throw new Error(`no code family "${id}"`);
  return f;
};

/** The `tasks` distinct training-split tasks the model is limited to. */
export function trainingTasks(o: TinyCoderOptions): GeneratedCodeTask[] {
  return generateCodeTasks({ count: o.tasks, seed: o.seed, language: TINY_CODER_LANGUAGE, split: 'train' });
}

/** A response as code-consensus reads it: the function's block, then the tests' block. */
export function coderResponse(solution: string, tests: readonly string[], language: SandboxLanguage = TINY_CODER_LANGUAGE): string {
  const fence = language === 'python' ? 'python' : 'javascript';
  return `\`\`\`${fence}\n${solution.endsWith('\n') ? solution : `${solution}\n`}\`\`\`\n\`\`\`${fence}\n${tests.join('\n')}\n\`\`\``;
}

/**
 * The response taught for `task` at one draw: the reference function (or, at `labelNoise`, the
 * function of the same family with redrawn constants), and `tests` distinct asserts of small
 * inputs with the task's true outputs. `rand` is the draw's seeded stream.
 */
export function taughtResponse(task: GeneratedCodeTask, o: TinyCoderOptions, rand: () => number): string {
  const family = familyOf(task.family);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const small = (lo: number, hi: number) => {
    const a = Math.max(lo, -SMALL);
    return int(a, Math.max(a, Math.min(hi, lo >= 0 ? SHORT : SMALL)));
  };
  const name = task.hidden.entryPoint;
  let solution = task.hidden.reference!;
  if (rand() < o.labelNoise) {
    const description = family.description(task.constants);
    // Another task of the family: its constants redrawn until the description differs (the
    // one-letter families may have no other; then the true one stays).
    for (let attempt = 0; attempt < 20; attempt++) {
      const other = family.draw(int);
      if (family.description(other) !== description) {
        solution = family[TINY_CODER_LANGUAGE](other, name);
        break;
      }
    }
  }
  const tests = new Set<string>();
  for (let attempt = 0; tests.size < o.tests && attempt < 10 * o.tests; attempt++) {
    const args = family.input(small, task.constants);
    tests.add(assertLine(TINY_CODER_LANGUAGE, name, args, family.compute(task.constants, args)));
  }
  return coderResponse(`${restatement(task.description)}\n${solution}`, [...tests]);
}

/**
 * The comment a taught function starts with: the task's description, restated. Copying a whole
 * line is a dense signal a small model learns to copy from (every character a target, where the
 * function's constants are a few), and the constants then stand a line above the code.
 */
export function restatement(description: string): string {
  return `// ${description}`;
}

/** Each family's constants drawn from ranges wider than the generator's (its own, where a wider one makes no sense). */
const FRESH_RANGES: Record<string, (int: (lo: number, hi: number) => number) => Record<string, number | string>> = {
  affine: (int) => ({ a: int(2, 40), b: int(-40, 40) }),
  'count-char': (int) => ({ ch: 'abcdefghij'[int(0, 9)] }),
  clamp: (int) => {
    const lo = int(-40, 30);
    return { lo, hi: lo + int(1, 40) };
  },
  'sum-multiples': (int) => {
    const a = int(2, 15);
    let b = int(2, 15);
    if (b === a) b = a + 1;
    return { a, b };
  },
  'count-above': (int) => ({ t: int(-40, 40) }),
  'is-multiple': (int) => ({ k: int(2, 40) }),
  'scale-list': (int) => ({ k: int(2, 15), d: int(-15, 15) }),
  'repeat-word': (int) => ({ sep: ['-', '+', ',', '.', ':', ';', '|', '/', '_', '*'][int(0, 9)] }),
};

/** A fresh training task (FRESH_RANGES): its prompt, reference and constants as the generator's tasks have them. */
export function freshTask(rand: () => number): GeneratedCodeTask {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  for (;;) {
    const family = CODE_FAMILIES[int(0, CODE_FAMILIES.length - 1)];
    const constants = FRESH_RANGES[family.id](int);
    const description = family.description(constants);
    if (codeSplitOf(description) !== 'train') continue;
    const name = family.name[TINY_CODER_LANGUAGE];
    const signature = `function ${name}(${family.params.join(', ')})`;
    return {
      prompt: codeTaskPrompt(description, signature, TINY_CODER_LANGUAGE),
      family: family.id,
      description,
      signature,
      constants,
      hidden: { kind: 'code', language: TINY_CODER_LANGUAGE, entryPoint: name, setup: '', tests: '', reference: family[TINY_CODER_LANGUAGE](constants, name) },
      split: 'train',
    };
  }
}

/** A prompt and response as a training sequence: the response and its end of sequence are trained. */
export function coderExample(tok: TextTokenizer, prompt: string, response: string): SequenceExample {
  const ids = tok.encode(prompt);
  return { tokens: [...ids, ...tok.encode(response, { addSpecialTokens: false }), tok.eosTokenIds[0]], lossStart: ids.length };
}

/** Step `step`'s rows: `batch` tasks, fresh ones at `fresh` and the others drawn from the fixed set, each with its draw's response. Seeded by (seed, step). */
export function trainingRows(o: TinyCoderOptions, tasks: readonly GeneratedCodeTask[], step: number): { prompt: string; response: string }[] {
  const rand = mulberry32Uniform(fnv1a32(`tiny-coder/${o.seed}/${step}`));
  return Array.from({ length: o.batch }, () => {
    const task = rand() < o.fresh ? freshTask(rand) : tasks[Math.floor(rand() * tasks.length)];
    return { prompt: task.prompt, response: taughtResponse(task, o, rand) };
  });
}

/** The model into `dir`: a random init, then supervised training on the fixed task set. */
export async function makeTinyCoder(dir: string, o: TinyCoderOptions, log: (s: string) => void = console.log): Promise<{ finalLoss: number; seconds: number }> {
  const started = Date.now();
  const init = await fs.mkdtemp(path.join(os.tmpdir(), 'tiny-coder-init-'));
  try {
    const builtin: BuiltinModelOptions = { name: 'tiny-coder', hidden: o.hidden, layers: o.layers, heads: o.heads, kvHeads: o.kvHeads, intermediate: o.intermediate, seed: o.seed, maxPositions: MAX_POSITIONS, vocab: 0, tied: true };
    await writeBuiltinModel(init, builtin);
    const model = await loadModelFolder(init);
    const tok = model.tokenizer!;
    const tasks = trainingTasks(o);
    const families = new Map<string, number>();
    for (const t of tasks) families.set(t.family, (families.get(t.family) ?? 0) + 1);
    log(`tiny-coder: hidden ${o.hidden}, ${o.layers} layers, ${o.heads} heads, ${o.kvHeads} kv heads, intermediate ${o.intermediate} (${model.parameterCount} parameters), seed ${o.seed}`);
    log(`training by SFT on ${tasks.length} train-split tasks (${[...families].map(([f, c]) => `${f} ${c}`).join(', ')}) and, at ${o.fresh}, fresh ones of wider ranges; ${o.tests} tests each, label noise ${o.labelNoise}; ${o.steps} steps of ${o.batch}, lr ${o.lr} (cosine)`);
    const rows = Array.from({ length: o.steps }, (_, step) => trainingRows(o, tasks, step).map((r) => coderExample(tok, r.prompt, r.response)));
    const longest = Math.max(...rows.flat().map((r) => r.tokens.length));
    if (longest > MAX_POSITIONS) throw new Error(`a training sequence has ${longest} tokens, over the model's ${MAX_POSITIONS} positions`);
    // One shape for every step: the longest sequence, rounded up to 32 positions.
    const shape: BatchShape = { size: o.batch, seqLen: Math.min(MAX_POSITIONS, 32 * Math.ceil((longest - 1) / 32)) };
    const finalLoss = await trainSupervised(model, {
      out: dir,
      steps: o.steps,
      lr: o.lr,
      warmupSteps: Math.min(30, Math.floor(o.steps / 10)),
      seed: o.seed,
      shape,
      batch: (step) => ({ rows: rows[step] }),
      log,
      logEvery: 20,
      started,
    });
    const seconds = (Date.now() - started) / 1000;
    log(`wrote ${dir} (final mean loss ${finalLoss.toFixed(4)}, sequences padded to ${shape.seqLen}, ${seconds.toFixed(0)} s)`);
    return { finalLoss, seconds };
  } finally {
    await fs.rm(init, { recursive: true, force: true });
  }
}

const HERE = path.dirname(fileURLToPath(import.meta.url));

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      hidden: { type: 'string' },
      layers: { type: 'string' },
      seed: { type: 'string' },
      tasks: { type: 'string' },
      fresh: { type: 'string' },
      tests: { type: 'string' },
      'label-noise': { type: 'string' },
      steps: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: npx tsx resources/models/make-tiny-coder.ts [--out DIR] [--hidden N] [--layers N] [--seed N] [--tasks N] [--fresh P] [--tests N] [--label-noise P] [--steps N] [--batch N] [--lr X]');
    return;
  }
  const d = TINY_CODER_DEFAULTS;
  const option = (v: string | undefined, fallback: number, flag: string, valid: (n: number) => boolean, expected: string) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (v.trim() === '' || !valid(n)) throw new Error(`--${flag} must be ${expected}, got "${v}"`);
    return n;
  };
  const whole = (v: string | undefined, fallback: number, flag: string) => option(v, fallback, flag, (n) => Number.isInteger(n) && n > 0, 'a whole number > 0');
  const o: TinyCoderOptions = {
    ...d,
    hidden: whole(values.hidden, d.hidden, 'hidden'),
    layers: whole(values.layers, d.layers, 'layers'),
    seed: whole(values.seed, d.seed, 'seed'),
    tasks: whole(values.tasks, d.tasks, 'tasks'),
    tests: whole(values.tests, d.tests, 'tests'),
    fresh: option(values.fresh, d.fresh, 'fresh', (n) => n >= 0 && n <= 1, 'a share in [0, 1]'),
    labelNoise: option(values['label-noise'], d.labelNoise, 'label-noise', (n) => n >= 0 && n < 1, 'a share in [0, 1)'),
    steps: whole(values.steps, d.steps, 'steps'),
    batch: whole(values.batch, d.batch, 'batch'),
    lr: option(values.lr, d.lr, 'lr', (n) => Number.isFinite(n) && n > 0, 'a positive number'),
  };
  await makeTinyCoder(path.resolve(values.out ?? path.join(HERE, 'tiny-coder')), o);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e: Error) => {
    console.error(`make-tiny-coder: ${e.message}`);
    process.exit(1);
  });
}
