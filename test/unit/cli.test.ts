// The `autodidact` command line, run as a user runs it (node bin/autodidact.js ...): the
// logprobs output's shape, its values against an independent in-process computation and against
// Hugging Face's logits, and the errors for malformed input and unknown flags.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Graph } from '../../main/engine/graph/graph.ts';
import { type HfModel, loadModelFolder } from '../../main/engine/nn/hf-model.ts';
import { causalBias, forward, lmHead } from '../../main/engine/nn/llama.ts';
import { resolveDevice } from '../../main/engine/runtime/devices.ts';
import { CompiledGraph, cpuTensor } from '../../main/engine/runtime/session.ts';
import { HostWeights } from '../../main/engine/runtime/weights.ts';
import { type CliResult, runCli } from '../helpers/cli.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TEXTS = path.join(ROOT, 'test/fixtures/texts.jsonl');
const MODEL = path.join(ROOT, 'resources/models/tiny-chars');

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, { env: { AUTODIDACT_THREADS: '1' } });
}

interface Line {
  tokens: string[];
  ids: number[];
  logprobs: (number | null)[];
}

function parseLines(stdout: string): Line[] {
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);
}

/** log softmax of one row of logits, in float64. */
function logSoftmax(row: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]);
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(row, (v) => v - lse);
}

/** Expected log-probs from full logits [T, V]: out[i] = logsoftmax(logits[i - 1])[ids[i]], out[0] = null. */
function fromLogits(ids: readonly number[], logits: ArrayLike<number>, V: number): (number | null)[] {
  return ids.map((id, i) => (i === 0 ? null : logSoftmax(Array.prototype.slice.call(logits, (i - 1) * V, i * V))[id]));
}

/** Logits of one sequence from the plain forward graph (no padding, no batching), in this thread. */
async function logitsInProcess(model: HfModel, ids: number[]): Promise<Float32Array> {
  const T = ids.length;
  const weights = new HostWeights(model.weights);
  const g = new Graph('logits');
  const inputIds = g.input('input_ids', [1, T], 'int32');
  g.untaped(() => {
    const w = weights.bind(g);
    const positionIds = g.constant(Array.from({ length: T }, (_, i) => i), [1, T], 'int32');
    const { hidden } = forward(model.config, w, { inputIds, positionIds, attentionBias: causalBias(g, T) });
    g.output('logits', lmHead(model.config, w, hidden));
  });
  const compiled = await CompiledGraph.create(g, await resolveDevice('cpu'));
  try {
    const out = await compiled.run({ ...weights.feeds(compiled.inputNames), input_ids: cpuTensor(Int32Array.from(ids), [1, T]) });
    return out.logits.data as Float32Array;
  } finally {
    await compiled.release();
  }
}

function expectClose(actual: (number | null)[], expected: (number | null)[], tol: number): void {
  expect(actual.length).toBe(expected.length);
  expect(actual[0]).toBeNull();
  for (let i = 1; i < actual.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    if (!(Math.abs(a - e) <= tol)) expect.fail(`logprob ${i}: ${a} vs expected ${e}`);
  }
}

describe('autodidact logprobs', () => {
  let model: HfModel;
  let texts: string[];
  let run: CliResult;
  let tmp: string;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-cli-'));
    model = await loadModelFolder(MODEL);
    texts = fs
      .readFileSync(TEXTS, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => (JSON.parse(l) as { text: string }).text);
    // --batch 2 puts texts of different lengths in one padded run, and splits the file in batches.
    run = await cli(['logprobs', '--model', 'tiny-chars', '--input', TEXTS, '--batch', '2']);
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('prints one line per input text with tokens, ids and log-probs of equal length', () => {
    expect(run.stderr).not.toMatch(/autodidact logprobs:/);
    expect(run.code).toBe(0);
    const lines = parseLines(run.stdout);
    expect(lines).toHaveLength(texts.length);
    lines.forEach((line, i) => {
      expect(Object.keys(line).sort()).toEqual(['ids', 'logprobs', 'tokens']);
      expect(line.ids).toEqual(model.tokenizer!.encode(texts[i]));
      expect(line.ids[0]).toBe(model.tokenizer!.bosTokenId); // tiny-chars' post-processor adds BOS
      expect(line.tokens).toEqual(line.ids.map((id) => model.tokenizer!.idToToken(id)));
      expect(line.logprobs).toHaveLength(line.ids.length);
      expect(line.logprobs[0]).toBeNull();
      for (const lp of line.logprobs.slice(1)) {
        expect(typeof lp).toBe('number');
        expect(lp as number).toBeLessThanOrEqual(0);
      }
      expect(model.tokenizer!.decode(line.ids, { skipSpecialTokens: true })).toBe(texts[i]);
    });
  });

  it('matches an unbatched, unpadded in-process forward pass within 1e-4', async () => {
    const lines = parseLines(run.stdout);
    for (const line of lines) {
      if (line.ids.length < 2) continue;
      const logits = await logitsInProcess(model, line.ids);
      expectClose(line.logprobs, fromLogits(line.ids, logits, model.config.vocabSize), 1e-4);
    }
  });

  it('scores {"ids": [...]} lines as given and matches Hugging Face transformers within 1e-4', async () => {
    const ref = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/models/tiny-chars.reference.json'), 'utf8')) as {
      input_ids: number[][];
      logits: number[][][];
    };
    const file = path.join(tmp, 'ids.jsonl');
    fs.writeFileSync(file, ref.input_ids.map((ids) => JSON.stringify({ ids })).join('\n') + '\n');
    const r = await cli(['logprobs', '--model', MODEL, '--input', file]);
    expect(r.code).toBe(0);
    const lines = parseLines(r.stdout);
    expect(lines).toHaveLength(ref.input_ids.length);
    lines.forEach((line, b) => {
      expect(line.ids).toEqual(ref.input_ids[b]);
      expectClose(line.logprobs, fromLogits(ref.input_ids[b], ref.logits[b].flat(), model.config.vocabSize), 1e-4);
    });
  });

  it('gives the same log-probs on WebGPU where an adapter answers', async () => {
    const devices = JSON.parse((await cli(['devices', '--json'])).stdout) as { devices: { name: string; available: boolean }[] };
    if (!devices.devices.find((d) => d.name === 'webgpu')?.available) return;
    const r = await cli(['logprobs', '--model', 'tiny-chars', '--input', TEXTS, '--device', 'webgpu']);
    expect(r.code, r.stderr).toBe(0);
    const gpu = parseLines(r.stdout);
    parseLines(run.stdout).forEach((cpu, i) => {
      expect(gpu[i].ids).toEqual(cpu.ids);
      expectClose(gpu[i].logprobs, cpu.logprobs, 1e-4);
    });
  });

  it('names the file and line of a malformed line, and prints nothing', async () => {
    const file = path.join(tmp, 'bad.jsonl');
    fs.writeFileSync(file, '{"text": "fine"}\n\n{"text": "broken"\n');
    const r = await cli(['logprobs', '--model', 'tiny-chars', '--input', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${file}:3: not valid JSON`);

    fs.writeFileSync(file, '{"text": "fine"}\n{"prompt": "no text field"}\n');
    const r2 = await cli(['logprobs', '--model', 'tiny-chars', '--input', file]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain(`${file}:2: expected an object with a string "text" field`);
  });

  it('names the line of a text longer than the model accepts', async () => {
    const file = path.join(tmp, 'long.jsonl');
    fs.writeFileSync(file, `{"text": "short"}\n{"text": "${'a'.repeat(model.config.maxPositionEmbeddings + 5)}"}\n`);
    const r = await cli(['logprobs', '--model', 'tiny-chars', '--input', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:2: ${model.config.maxPositionEmbeddings + 6} tokens, more than the model's max_position_embeddings`);
  });

  it('rejects unknown flags, bad values and unknown models with a pointer to --help', async () => {
    const r = await cli(['logprobs', '--model', 'tiny-chars', '--input', TEXTS, '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown option --bogus');
    expect(r.stderr).toContain("Run 'autodidact logprobs --help'");
    const b = await cli(['logprobs', '--model', 'tiny-chars', '--input', TEXTS, '--batch', 'many']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('--batch must be an integer');
    // A negative number is the option's value, checked as such (not a missing value).
    const negative = await cli(['logprobs', '--model', 'tiny-chars', '--input', TEXTS, '--batch', '-3']);
    expect(negative.code).toBe(2);
    expect(negative.stderr).toContain('--batch must be an integer from 1 to 4096, got "-3"');
    const m = await cli(['logprobs', '--model', 'no-such-model', '--input', TEXTS]);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/no-such-model.*built-in models: .*tiny-chars/);
  });

  it('prints help for the program and for each command', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/logprobs/);
    expect(top.stdout).toMatch(/devices/);
    const h = await cli(['logprobs', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('usage: autodidact logprobs --model NAME|DIR --input FILE.jsonl');
    const u = await cli(['frobnicate']);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain('unknown command "frobnicate"');
  });
});

describe('autodidact devices', () => {
  it('reports the CPU as available, as JSON', async () => {
    const r = await cli(['devices', '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { devices: { name: string; available: boolean }[]; auto: string };
    expect(report.devices.find((d) => d.name === 'cpu')?.available).toBe(true);
    expect(['cpu', 'webgpu', 'cuda']).toContain(report.auto);
  });
});
