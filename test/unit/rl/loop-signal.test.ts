// The signal check inside the run loop: a model that cannot answer its prompts (the untrained
// tiny-chars on arithmetic: few extractable answers, spread like guesses) raises a weak-signal
// alert at the pre-flight check, before any update; with signalAction 'stop' the run stops there
// without an update, saved so a resume continues past the alert; a model that can answer
// (tiny-arith on the sums it was taught) raises none.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HfModel, loadModelFolder } from '../../../main/engine/nn/hf-model.ts';
import { type RunConfigInput, parseRunConfig } from '../../../main/engine/rl/config.ts';
import { type LoopInput, type StepRecord, runLoop } from '../../../main/engine/rl/loop.ts';
import { TRAIN_METRICS } from '../../../main/engine/rl/metrics.ts';
import { SIGNAL_METRICS } from '../../../main/engine/rl/signal.ts';
import { arithmeticItems } from '../../../main/engine/tasks/generators.ts';
import { testDevice } from '../../helpers/device.ts';

const CONFIG: RunConfigInput = { method: 'ttrl', seed: 1, steps: 3, promptsPerStep: 4, votes: 16, trainSamples: 8, maxNewTokens: 8, lr: 1e-3, valEvery: 0, checkpointEvery: 0 };

let noiseModel: HfModel;
let answeringModel: HfModel;
let tmp: string;
const items = arithmeticItems({ difficulty: 1, count: 64, seed: 1 });

const models = path.join(import.meta.dirname, '../../../resources/models');
/** The loop's input; `config` as a run gives it (partial), checked here as a run's creation checks it. */
async function input(model: HfModel, { config = CONFIG, ...extra }: Partial<Omit<LoopInput, 'config'>> & { config?: RunConfigInput } = {}): Promise<LoopInput> {
  return { config: parseRunConfig(config), model: { ...model, tokenizer: model.tokenizer! }, device: await testDevice(), items, ...extra };
}

async function collect(inp: LoopInput) {
  const records: StepRecord[] = [];
  const result = await runLoop(inp, { onStep: async (r) => void records.push(r) });
  return { records, result };
}

beforeAll(async () => {
  noiseModel = await loadModelFolder(path.join(models, 'tiny-chars'));
  answeringModel = await loadModelFolder(path.join(models, 'tiny-arith'));
  tmp = await mkdtemp(path.join(os.tmpdir(), 'rl-loop-signal-'));
});
afterAll(async () => rm(tmp, { recursive: true, force: true }));

describe('the signal check in the run loop', () => {
  it('a model that cannot answer: the pre-flight check warns at step 1, once, and the run trains on (warn)', async () => {
    const { records, result } = await collect(await input(noiseModel));
    expect(result).toMatchObject({ lastStep: 3, aborted: false, paused: false });
    expect(result.signalStop).toBeUndefined();
    for (const r of records) for (const k of Object.values(SIGNAL_METRICS)) expect(Number.isFinite(r.metrics[k]), `${k} at step ${r.step}`).toBe(true);
    const m = records[0].metrics;
    expect(m[SIGNAL_METRICS.extractionRate] < 0.5 || m[SIGNAL_METRICS.majorityLift] < 1.05).toBe(true);
    const alerts = records.flatMap((r) => r.alerts.filter((a) => a.kind === 'weak_signal'));
    expect(alerts).toHaveLength(1);
    expect(alerts[0].step).toBe(1);
    expect(alerts[0].message).toMatch(/^Pre-flight check \(step 1's rollout, before any update\): weak learning signal: /);
    // warn: the step was trained.
    expect(records[0].metrics[TRAIN_METRICS.lr]).toBeGreaterThan(0);
  });

  it("signalAction 'stop': stops after the pre-flight check without an update, saved; a resume continues past the alert", async () => {
    const dir = path.join(tmp, 'stop');
    const config = { ...CONFIG, signalAction: 'stop' as const };
    const first = await collect(await input(noiseModel, { config, checkpointDir: dir }));
    expect(first.result).toMatchObject({ lastStep: 1, aborted: false, paused: false, signalStop: { step: 1 } });
    expect(first.result.signalStop!.message).toMatch(/^Pre-flight check/);
    expect(first.records.map((r) => r.step)).toEqual([1]);
    const [stopped] = first.records;
    // Rolled out and recorded (for the inspector), but no update: no update figures, no trained sample changed anything.
    expect(stopped.groups).toHaveLength(4);
    expect(stopped.metrics[TRAIN_METRICS.lr]).toBeUndefined();
    expect(stopped.metrics[TRAIN_METRICS.gradNorm]).toBeUndefined();
    expect(stopped.alerts.map((a) => a.kind)).toEqual(['weak_signal']);
    expect(stopped.checkpoints.map((c) => c.kind)).toEqual(['last']);
    expect(await readdir(dir)).toEqual(['last-1']);

    // Resume: the alert already fired, so the run trains on (it would alert again only after a healthy step).
    const resumed = await collect(await input(noiseModel, { config, checkpointDir: dir, resumeFrom: path.join(dir, 'last-1') }));
    expect(resumed.result).toMatchObject({ lastStep: 3, aborted: false });
    expect(resumed.result.signalStop).toBeUndefined();
    expect(resumed.records.map((r) => r.step)).toEqual([2, 3]);
    expect(resumed.records[0].metrics[TRAIN_METRICS.lr]).toBeGreaterThan(0);
  });

  it('a model that answers its prompts raises no weak-signal alert, even set to stop', async () => {
    const { records, result } = await collect(await input(answeringModel, { config: { ...CONFIG, steps: 2, signalAction: 'stop' } }));
    expect(result).toMatchObject({ lastStep: 2, aborted: false });
    expect(result.signalStop).toBeUndefined();
    expect(records.flatMap((r) => r.alerts)).toEqual([]);
    expect(records[0].metrics[SIGNAL_METRICS.extractionRate]).toBe(1);
    expect(records[0].metrics[SIGNAL_METRICS.majorityLift]).toBeGreaterThan(1.05);
  });
});
