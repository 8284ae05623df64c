// The built-in coding model `tiny-coder` (issue 19): a small Llama with the character tokenizer,
// trained from scratch by supervised fine-tuning with the engine to answer the built-in code
// tasks (`code-functions-js`, main/engine/tasks/code-generators.ts) as method code-consensus
// reads a response (main/engine/code/response.ts): the function in a ```javascript block, then a
// second block of assert(...) lines that test it, then end of sequence. The prompt is the task's
// own (codeTaskPrompt, raw), so `autodidact run --model tiny-coder --dataset code-functions-js
// --method code-consensus` asks it what it was taught.
//
// The supervision is the generator's hidden reference of TRAINING-split tasks only (a fixed set
// of --tasks of them, seeded, and at --fresh of the rows fresh training-split tasks of wider
// ranges), as
// labelled sums pretrain tiny-arith: the description restated as a comment, the reference
// function, and --tests asserts of small inputs with the outputs the task's family computes. The
// evaluation split (the descriptions the generator hashes there) is never seen, nor are the
// other training tasks, which self-play may then use unlabeled (bench/code-demo.ts). It is
// deliberately imperfect: at --label-noise the function shown is another task's of the same
// family (its constants redrawn, drawn afresh each time a task comes round; the tests stay the
// task's own), so its samples put some weight on wrong constants while the most common function
// among them is more often right, and its tests (which need the function's value computed in its
// head) are more often wrong: the room CodeT's dual agreement has to work.
//
// Two stages, each its own cosine schedule. First --copy-steps of synthetic copying alone
// (copyRows: a text of up to 40 characters, a newline, the text again, the repeat trained; sft.ts
// copyExample), which forms induction heads: a task's constants are a few characters of a
// ~300-character response, too weak a signal to form them, and without them the model writes
// the family's usual constants, not the task's. Then --steps on the task rows, a --copy-share of
// them copying rows of up to 300 characters (the distances a response copies over).
//
//   npx tsx resources/models/make-tiny-coder.ts                 # resources/models/tiny-coder, then its measures below
//   npx tsx resources/models/make-tiny-coder.ts --out /tmp/tc --copy-steps 40 --steps 40 --tasks 32
//   npx tsx resources/models/make-tiny-coder.ts --no-build --out DIR   # measure a model folder only
//
// Measured (the committed model, the defaults, under the shared bench lock; 2 cores shared with
// other engineers' work): 407,040 parameters; 800 copying steps of 16 padded to 96 positions
// (loss 3.2 at step 100, 2.0 at 400, 1.0 at 600, 0.31 at 800: the phase change at steps
// 500-700), then 160 task steps of 16 padded to 640 (final mean loss 0.70, copying rows
// included); 140 s wall. The same options rebuild the same bytes (checked: two builds of one
// option set, cmp).
// On the code demo's held-out eval-split tasks: copyProbe (the taught response teacher-forced,
// 32 tasks) gives the constants' characters p 0.93 where the restated description copies them
// (over 0.5, so greedy writes them, for 97%) and p 0.71 in the function (over 0.5 for 88%); heldOutCoding (40 tasks × 4
// samples at temperature 0.7): 59.4% of the functions pass the hidden tests, 31.8% of the tests
// written hold for the reference, 100% parse. At label noise 0.1 (otherwise the defaults): p
// 0.82 in the function, pass 68.8%, tests right 33.6%; 0.25 keeps the base in the 15-60% the
// code demo wants and more spread among the samples' constants for the consensus to settle.
//
// Tried before (each one build): without the copying stage, 300-400 task steps (160 or all 380
// fixed tasks, 10-25% noise, with and without the restatement, with half the rows fresh): the
// response form every time but the family's usual constants ("return 8 * x + 7" for "Return 8
// times the integer x, plus 8."): constants' p over 0.5 for 22% restated, 18% in the function,
// pass@1 3-6% (the code demo's base was 4.6%, and self-play then had nothing right to
// reinforce). A copying stage of up to 120 characters from small alphabets (3-20 characters):
// still at loss 2.4 after 200 steps. 800 copying steps then 120 task steps under ONE cosine
// schedule over both: the task rows got the decayed rate (loss 1.50; constants 17% / 14%);
// hence a schedule per stage. Induction on 40-character repeats of large alphabets forms in
// ~550 steps at lr 2e-3 with this model (1,000 steps: loss 0.03).
//
// JavaScript, because the sandbox runs QuickJS programs about 4× faster than Pyodide's Python
// (bench sandbox: ~2,000 against ~540 executions/s on 2 cores), and self-play runs k×k of them per
// task and step.
//
// Reproducible: the random init (make-builtin-models.ts), the tasks (the seeded train split), the
// noise, the tests, the copying texts and the batches are all seeded, so the same options give the same model; no
// optimizer state is kept.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { executionMatrix, passesHidden } from '../../main/engine/code/execute.ts';
import { parseCodeResponse } from '../../main/engine/code/response.ts';
import { Generator } from '../../main/engine/generate/generator.ts';
import { loadModelFolder } from '../../main/engine/nn/hf-model.ts';
import type { TextTokenizer } from '../../main/engine/nn/tokenizer.ts';
import { fnv1a32, mulberry32Uniform } from '../../main/engine/runtime/rng.ts';
import { resolveDevice } from '../../main/engine/runtime/devices.ts';
import { TokenScorer } from '../../main/engine/runtime/token-logprobs.ts';
import type { BatchShape, SequenceExample } from '../../main/engine/runtime/trainer.ts';
import { HostWeights } from '../../main/engine/runtime/weights.ts';
import { CODE_FAMILIES, type CodeFamily, type GeneratedCodeTask, assertLine, codeSplitOf, generateCodeTasks } from '../../main/engine/tasks/code-generators.ts';
import { codeTaskPrompt } from '../../main/engine/tasks/code-tasks.ts';
import { SandboxPool } from '../../main/sandbox/pool.ts';
import type { SandboxLanguage } from '../../main/sandbox/protocol.ts';
import { type BuiltinModelOptions, writeBuiltinModel } from './make-builtin-models.ts';
import { copyExample, trainSupervised } from './sft.ts';

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
  /** Steps of the first stage, synthetic copying alone (copyText), before the task rows. */
  copySteps: number;
  /** Share of the second stage's rows that are copying rows too (so the copying is kept). */
  copyShare: number;
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
  labelNoise: 0.25,
  copySteps: 800,
  copyShare: 0.25,
  steps: 160,
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

/** The characters of the tasks' own text: every description and function the families write. */
let taskWords: string[] | null = null;
function wordsOfTasks(): string[] {
  if (taskWords) return taskWords;
  const rand = mulberry32Uniform(fnv1a32('tiny-coder/words'));
  const words = new Set<string>();
  for (let i = 0; i < 64; i++) {
    const t = freshTask(rand);
    for (const w of `${t.description} ${t.hidden.reference}`.split(/\s+/)) if (w) words.add(w);
  }
  taskWords = [...words].sort();
  return taskWords;
}

/** Printable characters a copying row draws from (the tokenizer's, newline aside: it separates the copies). */
const COPY_CHARACTERS = Array.from({ length: 0x7e - 0x20 + 1 }, (_, i) => String.fromCharCode(0x20 + i));

/**
 * A text to copy, of 8 to `maxLength` characters: half the time random characters of a large
 * random alphabet (40 to all 95 of them: one character mostly says where the copy stands, so an
 * induction head forms fast), else the tasks' own words and numbers in random order (a match
 * over several characters is needed there, as where a response copies a description's constants).
 */
export function copyText(rand: () => number, maxLength: number): string {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const length = int(8, maxLength);
  if (rand() < 0.5) {
    const alphabet = Array.from({ length: int(40, COPY_CHARACTERS.length) }, () => COPY_CHARACTERS[int(0, COPY_CHARACTERS.length - 1)]);
    return Array.from({ length }, () => alphabet[int(0, alphabet.length - 1)]).join('');
  }
  const words = wordsOfTasks();
  let text = '';
  while (text.length < length) {
    const w = rand() < 0.3 ? String(int(-40, 40)) : words[int(0, words.length - 1)];
    text += text ? ` ${w}` : w;
  }
  return text.slice(0, length);
}

/** A copying row: the text, a newline, the text again (copyExample); the repeat and its end of sequence trained. */
export function copyRow(tok: TextTokenizer, text: string): SequenceExample {
  return copyExample(tok.encode(text, { addSpecialTokens: false }), tok.encode('\n', { addSpecialTokens: false }), { prefix: [tok.bosTokenId!], suffix: [tok.eosTokenIds[0]] });
}

/** Longest text of a first-stage copying row (short: induction forms in a few hundred steps), and of one among the task rows (about a prompt and a response: the distances a response copies over). */
const COPY_LENGTH = { first: 40, mixed: 300 } as const;

/** Step `step`'s copying rows of the first stage. Seeded by (seed, step). */
export function copyRows(o: TinyCoderOptions, tok: TextTokenizer, step: number): SequenceExample[] {
  const rand = mulberry32Uniform(fnv1a32(`tiny-coder/copy/${o.seed}/${step}`));
  return Array.from({ length: o.batch }, () => copyRow(tok, copyText(rand, COPY_LENGTH.first)));
}

/** Step `step`'s rows of the second stage: the task rows (trainingRows), each replaced by a copying row at copyShare. */
export function mixedRows(o: TinyCoderOptions, tok: TextTokenizer, tasks: readonly GeneratedCodeTask[], step: number): SequenceExample[] {
  const rand = mulberry32Uniform(fnv1a32(`tiny-coder/mix/${o.seed}/${step}`));
  return trainingRows(o, tasks, step).map((r) => (rand() < o.copyShare ? copyRow(tok, copyText(rand, COPY_LENGTH.mixed)) : coderExample(tok, r.prompt, r.response)));
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
    log(`training by SFT, first ${o.copySteps} steps of synthetic copying, then on ${tasks.length} train-split tasks (${[...families].map(([f, c]) => `${f} ${c}`).join(', ')}) and, at ${o.fresh}, fresh ones of wider ranges; ${o.tests} tests each, label noise ${o.labelNoise}, copying rows at ${o.copyShare}; ${o.steps} steps of ${o.batch}, lr ${o.lr} (a cosine schedule per stage)`);
    const copying = Array.from({ length: o.copySteps }, (_, step) => copyRows(o, tok, step));
    const rows = Array.from({ length: o.steps }, (_, step) => mixedRows(o, tok, tasks, step));
    // One shape per stage: its longest sequence, rounded up to 32 positions.
    const shapeOf = (r: SequenceExample[][]): BatchShape => {
      const longest = Math.max(2, ...r.flat().map((x) => x.tokens.length));
      if (longest > MAX_POSITIONS) throw new Error(`a training sequence has ${longest} tokens, over the model's ${MAX_POSITIONS} positions`);
      return { size: o.batch, seqLen: Math.min(MAX_POSITIONS, 32 * Math.ceil((longest - 1) / 32)) };
    };
    const shape = shapeOf(rows);
    // Two stages, each its own cosine schedule (the second starts from the first's weights, a
    // fresh optimizer): one schedule over both would leave the task rows the copying's decayed rate.
    let taught = model;
    if (o.copySteps > 0) {
      const copyShape = shapeOf(copying);
      const copyLoss = await trainSupervised(model, {
        out: init,
        steps: o.copySteps,
        lr: o.lr,
        warmupSteps: Math.min(30, Math.floor(o.copySteps / 10)),
        seed: o.seed,
        shape: copyShape,
        batch: (step) => ({ rows: copying[step] }),
        log,
        logEvery: 100,
        started,
      });
      log(`copying stage: final mean loss ${copyLoss.toFixed(4)}, sequences padded to ${copyShape.seqLen}`);
      taught = await loadModelFolder(init);
    }
    const finalLoss = await trainSupervised(taught, {
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

/** The held-out tasks a build is measured on: the code demo's (bench/code-demo.ts), the first of the seeded evaluation split, never taught. */
export function heldOutTasks(count: number): GeneratedCodeTask[] {
  return generateCodeTasks({ count, seed: 7, language: TINY_CODER_LANGUAGE, split: 'eval' });
}

/**
 * `text` from a family's template with each constant in its place, and the character positions
 * the constants were written at (the template filled with markers says where).
 */
function withConstantPositions(render: (c: Record<string, number | string>) => string, constants: Record<string, number | string>): { text: string; at: number[] } {
  const markers = Object.fromEntries(Object.keys(constants).map((k) => [k, `\u00a7${k}\u00a7`]));
  const parts = render(markers).split(/\u00a7(\w+)\u00a7/);
  let text = '';
  const at: number[] = [];
  parts.forEach((part, i) => {
    if (i % 2 === 0) text += part;
    else {
      const value = String(constants[part]);
      for (let j = 0; j < value.length; j++) at.push(text.length + j);
      text += value;
    }
  });
  return { text, at };
}

export interface CopyProbe {
  tasks: number;
  /** Mean probability, teacher-forced, of the constants' characters where the restated description writes them, and where the function does. */
  restated: number;
  code: number;
  /** Share of those characters that greedy decoding would write (probability over one half). */
  restatedArgmax: number;
  codeArgmax: number;
}

/**
 * The cheap measure of copying: the taught response of `count` held-out tasks, teacher-forced,
 * and what the model gives the characters of the task's constants: in the restated description
 * (copied from the prompt) and in the function (from the restatement or the prompt).
 */
export async function copyProbe(dir: string, count: number, o: TinyCoderOptions = TINY_CODER_DEFAULTS): Promise<CopyProbe> {
  const model = await loadModelFolder(dir);
  const tok = model.tokenizer!;
  const scorer = new TokenScorer({ config: model.config, weights: new HostWeights(model.weights), device: await resolveDevice('cpu') });
  try {
    const p = { restated: [] as number[], code: [] as number[] };
    const tasks = heldOutTasks(count);
    const rand = mulberry32Uniform(fnv1a32('tiny-coder/probe'));
    const rows = tasks.map((task) => {
      const family = familyOf(task.family);
      const described = withConstantPositions((c) => restatement(family.description(c)), task.constants);
      const coded = withConstantPositions((c) => family[TINY_CODER_LANGUAGE](c, task.hidden.entryPoint), task.constants);
      const response = taughtResponse(task, { ...o, labelNoise: 0 }, rand);
      // The response opens with the fence line, then the restatement, then the function.
      const start = response.indexOf('\n') + 1;
      if (response.slice(start, start + described.text.length) !== described.text || !response.includes(coded.text)) throw new Error(`the probe's positions do not match the taught response of "${task.description}"`);
      const codeStart = start + described.text.length + 1;
      const ex = coderExample(tok, task.prompt, response);
      return { ex, restated: described.at.map((j) => ex.lossStart! + start + j), code: coded.at.map((j) => ex.lossStart! + codeStart + j) };
    });
    const scores = await scorer.score(rows.map((r) => r.ex.tokens));
    rows.forEach((r, i) => {
      // scores[i][t - 1] is log p(token t | tokens before it).
      for (const t of r.restated) p.restated.push(Math.exp(scores[i][t - 1]));
      for (const t of r.code) p.code.push(Math.exp(scores[i][t - 1]));
    });
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    return { tasks: tasks.length, restated: mean(p.restated), code: mean(p.code), restatedArgmax: mean(p.restated.map((x) => (x > 0.5 ? 1 : 0))), codeArgmax: mean(p.code.map((x) => (x > 0.5 ? 1 : 0))) };
  } finally {
    await scorer.release();
  }
}

export interface HeldOutCoding {
  tasks: number;
  samples: number;
  /** Share of the sampled functions that pass their task's hidden tests (pass@1). */
  pass: number;
  /** Share of the sampled tests (assert lines) that hold for the task's reference. */
  testsRight: number;
  /** Share of the samples whose function parses (a fenced block). */
  parsed: number;
  example: string;
}

/** `samples` responses per held-out task at `temperature` (0: greedy), their functions against the hidden tests and their tests against the reference, in the sandbox. */
export async function heldOutCoding(dir: string, count: number, samples: number, temperature: number): Promise<HeldOutCoding> {
  const model = await loadModelFolder(dir);
  const tok = model.tokenizer!;
  const gen = await Generator.create({ config: model.config, weights: new HostWeights(model.weights), device: await resolveDevice('cpu'), maxLength: model.config.maxPositionEmbeddings });
  const pool = new SandboxPool();
  try {
    const tasks = heldOutTasks(count);
    const out = await gen.generate({ promptIds: tasks.map((t) => tok.encode(t.prompt)), samplesPerPrompt: samples, maxNewTokens: TINY_CODER_RUN_SETTINGS.maxNewTokens, temperature, seed: 1, tokenizer: tok });
    let pass = 0;
    let parsed = 0;
    let tests = 0;
    let testsRight = 0;
    await Promise.all(
      out.samples.map(async (s) => {
        const task = tasks[s.promptIndex];
        const r = parseCodeResponse(s.text ?? '', TINY_CODER_LANGUAGE);
        if (r.solution === null) return;
        parsed++;
        if ((await passesHidden(pool, r.solution, task.hidden, { timeoutMs: 2000 })) === 'pass') pass++;
        if (r.tests.length) {
          const [row] = await executionMatrix(pool, TINY_CODER_LANGUAGE, [task.hidden.reference!], r.tests, { timeoutMs: 2000 });
          tests += row.length;
          testsRight += row.filter((x) => x === 'pass').length;
        }
      }),
    );
    const n = out.samples.length;
    return { tasks: tasks.length, samples, pass: pass / n, testsRight: testsRight / Math.max(1, tests), parsed: parsed / n, example: `${tasks[0].description}\n${out.samples[0].text}` };
  } finally {
    await gen.release();
    await pool.close();
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
      'copy-steps': { type: 'string' },
      'copy-share': { type: 'string' },
      probe: { type: 'string' },
      eval: { type: 'string' },
      'eval-samples': { type: 'string' },
      'no-build': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(
      'usage: npx tsx resources/models/make-tiny-coder.ts [--out DIR] [--hidden N] [--layers N] [--seed N] [--tasks N] [--fresh P] [--tests N] [--label-noise P] [--copy-steps N] [--copy-share P] [--steps N] [--batch N] [--lr X] [--probe N] [--eval N] [--eval-samples K] [--no-build]',
    );
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
    copySteps: option(values['copy-steps'], d.copySteps, 'copy-steps', (n) => Number.isInteger(n) && n >= 0, 'a whole number >= 0'),
    copyShare: option(values['copy-share'], d.copyShare, 'copy-share', (n) => n >= 0 && n < 1, 'a share in [0, 1)'),
  };
  const probe = option(values.probe, 32, 'probe', (n) => Number.isInteger(n) && n >= 0, 'a whole number >= 0');
  const evalTasks = option(values.eval, 24, 'eval', (n) => Number.isInteger(n) && n >= 0, 'a whole number >= 0');
  const evalSamples = whole(values['eval-samples'], 2, 'eval-samples');
  const out = path.resolve(values.out ?? path.join(HERE, 'tiny-coder'));
  if (!values['no-build']) await makeTinyCoder(out, o);
  if (probe > 0) {
    const c = await copyProbe(out, probe, o);
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    console.log(`copying, teacher-forced on ${c.tasks} held-out tasks: the constants restated p ${pct(c.restated)} (over 0.5 for ${pct(c.restatedArgmax)}), in the function p ${pct(c.code)} (over 0.5 for ${pct(c.codeArgmax)})`);
  }
  if (evalTasks > 0) {
    const e = await heldOutCoding(out, evalTasks, evalSamples, 0.7);
    console.log(`held-out: ${e.tasks} tasks × ${e.samples} samples at temperature 0.7: hidden tests passed ${(100 * e.pass).toFixed(1)}%, tests right ${(100 * e.testsRight).toFixed(1)}%, parsed ${(100 * e.parsed).toFixed(1)}%\n${e.example}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e: Error) => {
    console.error(`make-tiny-coder: ${e.message}`);
    process.exit(1);
  });
}
