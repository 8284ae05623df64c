// The built-in coding model's recipe (resources/models/make-tiny-coder.ts): training-split tasks
// only, each response in the form code-consensus parses (a function block, then a block of
// asserts), the taught tests right for the task (they pass against its reference in the
// sandbox), the function another task's at the label noise; a tiny build gives a loadable model;
// and the committed model answers a held-out task with a function and tests that parse.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { executionMatrix } from '../../../main/engine/code/execute.ts';
import { parseCodeResponse } from '../../../main/engine/code/response.ts';
import { Generator } from '../../../main/engine/generate/generator.ts';
import { resolveModelPath } from '../../../main/engine/model-paths.ts';
import { loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { encodePrompt } from '../../../main/engine/rl/prompts.ts';
import { HostWeights } from '../../../main/engine/runtime/weights.ts';
import { codeSplitOf, generateCodeTasks } from '../../../main/engine/tasks/code-generators.ts';
import { SandboxPool } from '../../../main/sandbox/pool.ts';
import {
  TINY_CODER_DEFAULTS,
  TINY_CODER_LANGUAGE,
  TINY_CODER_RUN_SETTINGS,
  coderExample,
  copyProbe,
  copyRows,
  copyText,
  heldOutTasks,
  makeTinyCoder,
  mixedRows,
  restatement,
  trainingRows,
  trainingTasks,
} from '../../../resources/models/make-tiny-coder.ts';
import { fnv1a32, mulberry32Uniform } from '../../../main/engine/runtime/rng.ts';
import { testDevice } from '../../helpers/device.ts';

const pool = new SandboxPool({ size: 1 });
afterAll(() => pool.close());

describe('tiny-coder', () => {
  it('is taught training-split tasks only, in the form code-consensus parses, with tests right for the task; the same options give the same rows', async () => {
    const o = { ...TINY_CODER_DEFAULTS, tasks: 24, batch: 12, labelNoise: 0 };
    const tasks = trainingTasks(o);
    expect(tasks).toHaveLength(24);
    for (const t of tasks) expect([t.split, codeSplitOf(t.description)]).toEqual(['train', 'train']);
    const rows = trainingRows(o, tasks, 3);
    expect(trainingRows(o, tasks, 3)).toEqual(rows);
    expect(trainingRows(o, tasks, 4)).not.toEqual(rows);
    const evalPrompts = new Set(generateCodeTasks({ count: 100, seed: 0, language: TINY_CODER_LANGUAGE, split: 'eval' }).map((t) => t.prompt));
    let fresh = 0;
    for (const row of rows) {
      // A task of the fixed set, or a fresh one: either way of the training split, never an evaluation task.
      const description = row.prompt.split('\n')[0];
      expect(codeSplitOf(description)).toBe('train');
      expect(evalPrompts.has(row.prompt)).toBe(false);
      const known = tasks.find((t) => t.prompt === row.prompt);
      if (!known) fresh++;
      const parsed = parseCodeResponse(row.response, TINY_CODER_LANGUAGE);
      expect(parsed.solution).toBe(`${restatement(description)}\n${known ? known.hidden.reference : parsed.solution!.split('\n').slice(1).join('\n')}`);
      expect(parsed.tests.length).toBeGreaterThanOrEqual(1);
      expect(parsed.tests.length).toBeLessThanOrEqual(o.tests);
      // The taught tests hold for the task: its reference passes every one.
      const [cells] = await executionMatrix(pool, TINY_CODER_LANGUAGE, [parsed.solution!], parsed.tests, { timeoutMs: 2000 });
      expect(cells, row.response).toEqual(parsed.tests.map(() => 'pass'));
    }
    expect(fresh).toBeGreaterThan(0);
    expect(fresh).toBeLessThan(rows.length);
    // At the label noise, the function shown is often another task's (the tests stay the task's).
    const noisy = { ...o, fresh: 0, labelNoise: 0.5 };
    const drawn = Array.from({ length: 8 }, (_, step) => trainingRows(noisy, tasks, step)).flat();
    const wrong = drawn.filter((r) => {
      const task = tasks.find((t) => t.prompt === r.prompt)!;
      return parseCodeResponse(r.response, TINY_CODER_LANGUAGE).solution !== `${restatement(task.description)}\n${task.hidden.reference}`;
    }).length;
    expect(wrong / drawn.length).toBeGreaterThan(0.3);
    expect(wrong / drawn.length).toBeLessThan(0.6);
  }, 60_000);

  it('trains the response and its end of sequence only', async () => {
    const model = await loadModelFolder(resolveModelPath('tiny-coder'));
    const tok = model.tokenizer!;
    const [row] = trainingRows(TINY_CODER_DEFAULTS, trainingTasks(TINY_CODER_DEFAULTS), 0);
    const ex = coderExample(tok, row.prompt, row.response);
    expect(ex.tokens.slice(0, ex.lossStart)).toEqual(encodePrompt(tok, row.prompt, TINY_CODER_RUN_SETTINGS.promptFormat));
    expect(tok.decode(ex.tokens.slice(ex.lossStart), { skipSpecialTokens: false })).toBe(`${row.response}<|eos|>`);
  });

  it('copying rows: a seeded text, a newline and the text again, the repeat trained; the second stage mixes them in at copyShare', async () => {
    const model = await loadModelFolder(resolveModelPath('tiny-coder'));
    const tok = model.tokenizer!;
    const draw = (seed: number) => {
      const rand = mulberry32Uniform(fnv1a32(`copy-test/${seed}`));
      return Array.from({ length: 40 }, () => copyText(rand, 40));
    };
    const texts = draw(1);
    expect(draw(1)).toEqual(texts);
    for (const t of texts) {
      expect(t.length).toBeGreaterThanOrEqual(8);
      expect(t.length).toBeLessThanOrEqual(40);
      expect(t).not.toContain('\n');
    }
    const o = { ...TINY_CODER_DEFAULTS, tasks: 24 };
    for (const ex of copyRows(o, tok, 5)) {
      const text = tok.decode(ex.tokens, { skipSpecialTokens: false });
      const [first, second] = text.replace(/^<\|bos\|>/, '').replace(/<\|eos\|>$/, '').split('\n');
      expect(second).toBe(first);
      expect(tok.decode(ex.tokens.slice(ex.lossStart), { skipSpecialTokens: false })).toBe(`${first}<|eos|>`);
    }
    expect(copyRows(o, tok, 5)).toEqual(copyRows(o, tok, 5));
    // The second stage: the task rows of the step, a share of them replaced by copying rows.
    const tasks = trainingTasks(o);
    const steps = Array.from({ length: 10 }, (_, step) => ({ mixed: mixedRows(o, tok, tasks, step), taught: trainingRows(o, tasks, step).map((r) => coderExample(tok, r.prompt, r.response)) }));
    let copies = 0;
    for (const { mixed, taught } of steps)
      mixed.forEach((ex, i) => {
        if (ex.tokens.length === taught[i].tokens.length && ex.tokens.every((t, j) => t === taught[i].tokens[j])) return;
        copies++;
        expect(tok.decode(ex.tokens.slice(ex.lossStart, -1))).toBe(tok.decode(ex.tokens.slice(1, ex.lossStart! - 1)));
      });
    const share = copies / (10 * o.batch);
    expect(share).toBeGreaterThan(o.copyShare / 2);
    expect(share).toBeLessThan(o.copyShare * 1.6);
  });

  it("the committed model copies a held-out task's constants: into the restated description and into the function", async () => {
    for (const t of heldOutTasks(32)) expect(t.split).toBe('eval');
    const probe = await copyProbe(resolveModelPath('tiny-coder'), 32);
    expect(probe.tasks).toBe(32);
    expect(probe.restatedArgmax).toBeGreaterThan(0.8);
    expect(probe.codeArgmax).toBeGreaterThan(0.8);
  }, 60_000);

  it('a tiny build writes a model folder that loads', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tiny-coder-test-'));
    try {
      const r = await makeTinyCoder(dir, { ...TINY_CODER_DEFAULTS, hidden: 32, layers: 1, tasks: 8, copySteps: 2, steps: 2, batch: 2 }, () => {});
      expect(Number.isFinite(r.finalLoss)).toBe(true);
      const model = await loadModelFolder(dir);
      expect(model.config.hiddenSize).toBe(32);
      expect(await fs.readdir(dir)).not.toContain('optimizer.safetensors');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('the committed model answers a held-out task with a function and tests that parse', async () => {
    const model = await loadModelFolder(resolveModelPath('tiny-coder'));
    const tok = model.tokenizer!;
    const gen = await Generator.create({ config: model.config, weights: new HostWeights(model.weights), device: await testDevice(), maxLength: model.config.maxPositionEmbeddings });
    try {
      const tasks = generateCodeTasks({ count: 2, seed: 3, language: TINY_CODER_LANGUAGE, split: 'eval' });
      const out = await gen.generate({ promptIds: tasks.map((t) => encodePrompt(tok, t.prompt, 'raw')), maxNewTokens: TINY_CODER_RUN_SETTINGS.maxNewTokens, temperature: 0, tokenizer: tok });
      out.samples.forEach((s, i) => {
        const parsed = parseCodeResponse(s.text!, TINY_CODER_LANGUAGE);
        expect(parsed.solution, s.text!).toMatch(new RegExp(`^function ${tasks[i].hidden.entryPoint}\\(`, 'm'));
        expect(parsed.tests.length, s.text!).toBeGreaterThanOrEqual(1);
      });
    } finally {
      await gen.release();
    }
  }, 60_000);
});
