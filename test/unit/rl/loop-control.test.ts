// The run loop's controls beyond the plain run: reviewed labels replacing the vote, token ids in
// the sample records, and pausing at a step boundary with a checkpoint a resume continues from.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HfModel, loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { type RunConfigInput, parseRunConfig } from '../../../main/engine/rl/config.ts';
import { type LoopInput, type StepRecord, runLoop } from '../../../main/engine/rl/loop.ts';
import { encodePrompt } from '../../../main/engine/rl/prompts.ts';
import { arithmeticItems } from '../../../main/engine/tasks/generators.ts';
import { testDevice } from '../../helpers/device.ts';

const CONFIG: RunConfigInput = { method: 'ttrl', seed: 5, steps: 3, promptsPerStep: 2, votes: 4, trainSamples: 2, maxNewTokens: 6, lr: 1e-3, valEvery: 0, checkpointEvery: 0 };

let model: HfModel;
let tmp: string;
const items = arithmeticItems({ difficulty: 1, count: 5, seed: 2 });

/** The loop's input; `config` as a run gives it (partial), checked here as a run's creation checks it. */
async function input({ config = CONFIG, ...extra }: Partial<Omit<LoopInput, 'config'>> & { config?: RunConfigInput } = {}): Promise<LoopInput> {
  return { config: parseRunConfig(config), model: { ...model, tokenizer: model.tokenizer! }, device: await testDevice(), items, ...extra };
}

async function collect(inp: LoopInput, hooks: Parameters<typeof runLoop>[1] = {}) {
  const records: StepRecord[] = [];
  const result = await runLoop(inp, { ...hooks, onStep: async (r) => void records.push(r) });
  return { records, result };
}

beforeAll(async () => {
  model = await loadModelFolder(path.join(import.meta.dirname, '../../../resources/models/tiny-chars'));
  tmp = await mkdtemp(path.join(os.tmpdir(), 'rl-loop-control-'));
});
afterAll(async () => rm(tmp, { recursive: true, force: true }));

describe('runLoop controls', () => {
  let plain: StepRecord[];

  it('records the token ids of every sample, matching its per-token arrays', async () => {
    ({ records: plain } = await collect(await input({ config: { ...CONFIG, steps: 1 } })));
    for (const g of plain[0].groups) {
      expect(g.labelSource).toBe('vote');
      for (const s of g.samples) {
        expect(s.tokenIds).toBeInstanceOf(Int32Array);
        expect(s.tokenIds.length).toBe(s.logprobs.length);
        expect(model.tokenizer!.decode([...s.tokenIds], { skipSpecialTokens: true })).toBe(s.text);
      }
    }
  });

  it("a reviewed label replaces that group's vote and its rewards; other groups keep theirs", async () => {
    const [target, other] = plain[0].groups;
    // A label the vote did not pick, so the rewards must change: a dissenting answer, else one nobody gave.
    const dissent = target.samples.find((s) => s.extractedAnswer !== null && s.extractedAnswer !== target.pseudoLabel)?.extractedAnswer;
    const label = dissent ?? '987654';
    const { records } = await collect(await input({ config: { ...CONFIG, steps: 1 }, reviewedLabels: new Map([[target.itemIdx, label]]) }));
    const [g, h] = records[0].groups;
    expect(g.itemIdx).toBe(target.itemIdx);
    // Same seed: the same samples were drawn.
    expect(g.samples.map((s) => s.text)).toEqual(target.samples.map((s) => s.text));
    expect(g).toMatchObject({ pseudoLabel: label, labelSource: 'review', labeled: true });
    // Hard reward for agreeing with the person's label; the vote counts stay the model's.
    expect(g.samples.map((s) => s.reward)).toEqual(g.samples.map((s) => (s.extractedAnswer === label ? 1 : 0)));
    expect(g.samples.map((s) => s.reward)).not.toEqual(target.samples.map((s) => s.reward));
    expect(g.voteCounts).toEqual(target.voteCounts);
    expect(h.labelSource).toBe('vote');
    expect(h.samples.map((s) => s.reward)).toEqual(other.samples.map((s) => s.reward));
  });

  it('warns when a reviewed label matches none of its group\'s samples: that prompt gives no gradient (issue 15.6)', async () => {
    const [target, other] = plain[0].groups;
    // Seven characters: more than the 6 new tokens of this character-level model can write.
    const unreachable = '9876543';
    const reachable = other.samples.find((s) => s.extractedAnswer !== null)?.extractedAnswer;
    expect(reachable).toBeDefined();
    const overrides = new Map([
      [target.itemIdx, unreachable],
      [other.itemIdx, reachable!],
    ]);
    const { records } = await collect(await input({ config: { ...CONFIG, steps: 1 }, reviewedLabels: overrides }));
    const [g, h] = records[0].groups;
    expect(g.samples.every((s) => s.advantage === 0)).toBe(true);
    expect(h.samples.some((s) => s.reward === 1)).toBe(true);
    const alerts = records[0].alerts.filter((a) => a.kind === 'review_unmatched');
    expect(alerts).toHaveLength(1);
    expect(alerts[0].message).toBe(
      `a reviewed label matched none of the samples, so that prompt gives no gradient: ${JSON.stringify(items[target.itemIdx].prompt)} (label "9876543", 0 of 4 samples). ` +
        "Check the label in the reviewed run's inspector, or give the model more samples (votes) or tokens (maxNewTokens) to reach it.",
    );
    // Without reviewed labels there is nothing to warn about.
    expect(plain[0].alerts.filter((a) => a.kind === 'review_unmatched')).toEqual([]);
  });

  it('a pause asked for mid-step ends that step with a checkpoint; the resume continues as if uninterrupted', async () => {
    const dir = path.join(tmp, 'paused');
    await mkdir(dir); // as executeRun makes it: the loop lists it after each step
    let pause = false;
    const first: StepRecord[] = [];
    const r1 = await runLoop(await input({ checkpointDir: dir }), {
      pauseRequested: () => pause,
      onStep: (r) => {
        first.push(r);
        if (r.step === 1) pause = true;
      },
    });
    // Step 1 had no checkpoint (checkpointEvery 0), so step 2 is trained and saved before stopping.
    expect(r1).toMatchObject({ lastStep: 2, paused: true, aborted: false });
    expect(first.map((r) => r.step)).toEqual([1, 2]);
    expect(first[1].checkpoints).toEqual([{ kind: 'last', path: path.join(dir, 'last-2'), metric: null }]);
    expect(await readdir(dir)).toEqual(['last-2']);

    const { records: resumed, result: r2 } = await collect(await input({ checkpointDir: dir, resumeFrom: path.join(dir, 'last-2') }));
    expect(r2).toMatchObject({ lastStep: 3, paused: false, aborted: false });
    expect(resumed.map((r) => r.step)).toEqual([3]);
    const { records: straight } = await collect(await input());
    const view = (r: StepRecord) => r.groups.map((g) => ({ item: g.itemIdx, texts: g.samples.map((s) => s.text) }));
    expect(view(resumed[0])).toEqual(view(straight[2]));
    expect(view(first[1])).toEqual(view(straight[1]));
  });

  it("promptFormat 'chat' gives the model each prompt in its chat template (what the preview shows)", async () => {
    const tok = model.tokenizer!;
    const chat = await collect(await input({ config: { ...CONFIG, steps: 1, promptFormat: 'chat' } }));
    // The same prompts written out in the template by hand (the raw format adds the BOS itself) draw the very same samples.
    const byHand = items.map((it) => ({ ...it, prompt: `<|user|>\n${it.prompt}<|eos|><|assistant|>\n` }));
    expect(tok.encode(byHand[0].prompt)).toEqual(encodePrompt(tok, items[0].prompt, 'chat'));
    const manual = await collect(await input({ config: { ...CONFIG, steps: 1 }, items: byHand }));
    const texts = (r: StepRecord) => r.groups.map((g) => g.samples.map((s) => s.text));
    expect(texts(chat.records[0])).toEqual(texts(manual.records[0]));
    expect(texts(chat.records[0])).not.toEqual(texts(plain[0]));
  });

  it('a pause asked for before any step stops at once, with nothing trained', async () => {
    const { records, result } = await collect(await input({ checkpointDir: path.join(tmp, 'early') }), { pauseRequested: () => true });
    expect(result).toMatchObject({ lastStep: 0, paused: true });
    expect(records).toEqual([]);
  });
});
