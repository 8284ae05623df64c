// Resuming a run that never trained (saved without starting, or paused while queued): with no
// checkpoint it starts over from step 0, and any step it recorded without one is dropped first.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ExperimentDb, createRun, getRun, listRuns, listSteps, openDatabase, recordStep, rolloutsAtStep, setRunConfig, updateRunStatus } from '../../../main/db/index.ts';
import { storedConfig } from '../../../main/runs/key-metric.ts';
import { runDir } from '../../../main/runs/home.ts';
import { RunSetupError, createRecordedRun, executeRun, parseStoredConfig, prepareResume, recordedRunConfig } from '../../../main/runs/start.ts';

let db: ExperimentDb;
beforeEach(() => {
  db = openDatabase(':memory:');
});
afterEach(() => db.close());

describe('prepareResume without a checkpoint', () => {
  it('starts a run saved without starting from the beginning', () => {
    const run = updateRunStatus(db, createRun(db, { name: 'saved', method: 'ttrl', model: 'm', dataset: 'd', config: { steps: 3 } }).id, 'paused');
    expect(run.status).toBe('paused');
    expect(prepareResume(db, run)).toEqual({ startAfter: 0 });
  });

  it('drops steps recorded before any checkpoint, so they are not recorded twice', () => {
    const run = createRun(db, { name: 'early', method: 'ttrl', model: 'm', dataset: 'd', config: { steps: 3 } });
    recordStep(db, run.id, 0, { metrics: { 'val/maj@4': 0.5 } });
    const paused = updateRunStatus(db, run.id, 'paused');
    expect(prepareResume(db, paused)).toEqual({ startAfter: 0 });
    expect(listSteps(db, run.id)).toEqual([]);
  });

  it('refuses a completed run', () => {
    const run = updateRunStatus(db, createRun(db, { name: 'done', method: 'ttrl', model: 'm', dataset: 'd', config: {} }).id, 'completed');
    expect(() => prepareResume(db, run)).toThrow(/has completed/);
  });
});

describe('executeRun and another live trainer', () => {
  it('refuses to resume a run another live process is training, and changes nothing', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-owner-'));
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      const run = updateRunStatus(db, createRun(db, { name: 'busy', method: 'ttrl', model: 'tiny-chars', dataset: 'd', datasetId: null, config: { model: 'tiny-chars', dataset: 'd' } }).id, 'running');
      recordStep(db, run.id, 0, { metrics: { 'val/maj@4': 0.5 } });
      fs.mkdirSync(runDir(home, run.id), { recursive: true });
      fs.writeFileSync(path.join(runDir(home, run.id), 'owner.json'), JSON.stringify({ pid: other.pid, hostname: os.hostname(), startedAt: 'now' }));
      await expect(executeRun(db, home, { ...run, datasetId: 1 }, true)).rejects.toThrow(RunSetupError);
      await expect(executeRun(db, home, { ...run, datasetId: 1 }, true)).rejects.toThrow(`pid ${other.pid}`);
      expect(getRun(db, run.id)!.status).toBe('running');
      expect(listSteps(db, run.id)).toEqual([0]);
    } finally {
      other.kill();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('precision', () => {
  it('"mixed" on the cpu device is refused at launch, naming the setting and the way out', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-precision-'));
    try {
      const { config, target } = parseStoredConfig({ model: 'tiny-chars', dataset: 'arithmetic', device: 'cpu', steps: 1, precision: 'mixed' }, 'test');
      await expect(createRecordedRun(db, home, config, target)).rejects.toThrow(/precision "mixed" needs a GPU device .* Set precision to "fp32", or choose device webgpu, cuda or auto/);
      expect(listRuns(db)).toEqual([]);
      const fp32 = parseStoredConfig({ model: 'tiny-chars', dataset: 'arithmetic', device: 'cpu', steps: 1 }, 'test');
      expect(fp32.config.precision).toBe('fp32');
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('prompts too long for the model', () => {
  let home: string;
  let file: string;
  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-long-'));
    file = path.join(home, 'long.jsonl');
    // tiny-chars reads 1,024 positions; a character is a token.
    const prompts = ['What is 1 + 1?', `What is ${'1 + '.repeat(375)}1?`, 'What is 2 + 2?', 'What is 3 + 3?'];
    fs.writeFileSync(file, prompts.map((prompt) => JSON.stringify({ prompt })).join('\n') + '\n');
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));
  const settings = (extra: Record<string, unknown> = {}) => parseStoredConfig({ model: 'tiny-chars', dataset: file, steps: 1, ...extra }, 'test');

  it('are refused at launch, naming the dataset item, its length and the way out', async () => {
    const { config, target } = settings();
    const launch = createRecordedRun(db, home, config, target);
    await expect(launch).rejects.toThrow(RunSetupError);
    await expect(createRecordedRun(db, home, config, target)).rejects.toThrow(
      /dataset "long": a prompt is too long for tiny-chars: item 1 \(train, "What is 1 \+ 1 \+ [^"]*"\) has 1,511 tokens\. .* at most 1,008\. Set longPrompts/,
    );
    // A longer answer leaves less room.
    const { config: c2, target: t2 } = settings({ maxNewTokens: 1020 });
    await expect(createRecordedRun(db, home, c2, t2)).rejects.toThrow(/item 0 .* has 15 tokens; item 1 .* has 1,511 tokens; item 2 .* has 15 tokens, and 1 more/);
    // Nothing was recorded.
    expect(listRuns(db)).toEqual([]);
  });

  it('are announced at launch and left out of the run when it skips them; each group is recorded under its own item', async () => {
    const { config, target } = settings({ longPrompts: 'skip', promptsPerStep: 3, votes: 2, trainSamples: 1, maxNewTokens: 4, valEvery: 0, klCoef: 0 });
    const { run, notes: launchNotes } = await createRecordedRun(db, home, config, target);
    expect(launchNotes).toEqual([expect.stringMatching(/^training prompts longer than 1,020 tokens: skipped 1 \(item 1 \(train, "What is 1 \+ 1 \+/)]);
    const notes: string[] = [];
    const result = await executeRun(db, home, run, false, { onStart: (_after, _run, info) => notes.push(...info.promptNotes) });
    expect(result.run.status).toBe('completed');
    expect(notes).toHaveLength(1);
    expect(rolloutsAtStep(db, run.id, 1).map((r) => r.itemIdx).sort()).toEqual([0, 2, 3]);
  });

  it('fail a run recorded without the launch check, with the reason, before any graph is built', async () => {
    // Recorded with prompts the launch check lets through, then told to refuse them.
    const { config, target } = settings({ longPrompts: 'skip' });
    const { run: recorded } = await createRecordedRun(db, home, config, target);
    const run = setRunConfig(db, recorded.id, { ...storedConfig(recorded), longPrompts: 'fail' });
    await expect(executeRun(db, home, run, false)).rejects.toThrow(/item 1 .* has 1,511 tokens/);
    const failed = getRun(db, run.id)!;
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/too long for tiny-chars: item 1/);
  });
});

describe('the stored config', () => {
  it("keeps a difficulty only for the built-in generator, whose problems it picks", async () => {
    // Issue 15.10: a run on a generated d1 dataset showed the default `difficulty 2`.
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-difficulty-'));
    try {
      const generated = parseStoredConfig({ model: 'tiny-chars', dataset: 'arithmetic', difficulty: 1, steps: 1 }, 'test');
      const { run: onGenerator } = await createRecordedRun(db, home, generated.config, generated.target);
      expect(onGenerator.config).toMatchObject({ dataset: 'arithmetic', difficulty: 1 });
      const imported = parseStoredConfig({ model: 'tiny-chars', dataset: onGenerator.dataset, steps: 1 }, 'test');
      const { run: onImported } = await createRecordedRun(db, home, imported.config, imported.target);
      expect(onImported.dataset).toBe('arithmetic-d1-s0');
      expect(onImported.config).not.toHaveProperty('difficulty');
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('a run recorded before a setting existed', () => {
  it('resumes with the tie rule it was trained with (the answer seen first), while a new run gets no label on a tie', () => {
    const before = { model: 'tiny-chars', dataset: 'arithmetic', method: 'ttrl', steps: 3 };
    expect(recordedRunConfig({ id: 1, config: before }).config.voteTies).toBe('first');
    expect(recordedRunConfig({ id: 2, config: { ...before, voteTies: 'no-label' } }).config.voteTies).toBe('no-label');
    expect(parseStoredConfig(before, 'run settings').config.voteTies).toBe('no-label');
  });
});
