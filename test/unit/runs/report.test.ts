// Reading runs back: lookup by id or name, the summary `show` prints, the metrics CSV in both
// layouts and the samples JSONL, on a database populated through main/db (no training).
import fs from 'node:fs';
import path from 'node:path';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExperimentDb, createRun, importDataset, openDatabase, recordStep } from '../../../main/db/index.ts';
import { evalIndices, importDatasetFile } from '../../../main/runs/datasets.ts';
import { COMPLETION_COLUMNS, completionsParquet, exportRun, findRun, metricsCsv, sampleLines, samplesJsonl, summarizeRun } from '../../../main/runs/report.ts';
import { tempDir } from '../db/helpers.ts';

const tmp = tempDir('autodidact-runs-');
let db: ExperimentDb;
let runId: number;

beforeAll(() => {
  db = openDatabase(':memory:');
  const ds = importDataset(db, { name: 'toy' }, [
    { prompt: 'what is 1+1?', answer: '2' },
    { prompt: 'what is 2+2?', answer: '4' },
  ]);
  runId = createRun(db, { name: 'demo', method: 'ttrl', model: 'tiny-chars', dataset: 'toy', datasetId: ds.id, config: { steps: 3 } }).id;
  for (const step of [0, 1]) {
    recordStep(db, runId, step, {
      metrics: { 'train/majority_ratio': 0.5 + step / 4, 'train/entropy': 1 - step / 2, ...(step === 1 && { 'val/maj@16': 0.75 }) },
      rollouts: [
        {
          itemIdx: step,
          prompt: `what is ${step + 1}+${step + 1}?`,
          pseudoLabel: String(2 * (step + 1)),
          labelCorrect: true,
          samples: [
            { text: 'a', extractedAnswer: String(2 * (step + 1)), reward: 1, advantage: 0.5, usedForTraining: true },
            { text: 'b, "quoted"', extractedAnswer: '7', reward: 0, advantage: -0.5, usedForTraining: false, ...(step === 1 && { details: { certainty: 0.25 } }) },
          ],
        },
      ],
      checkpoints: step === 1 ? [{ kind: 'best', path: '/ck/best', metric: 0.75 }, { kind: 'last', path: '/ck/last' }] : [],
      alerts: step === 1 ? [{ kind: 'collapse', message: 'majority ratio near 1' }] : [],
    });
  }
});

afterAll(() => {
  db.close();
  tmp.remove();
});

describe('findRun', () => {
  it('finds a run by id or name and explains a missing one', () => {
    expect(findRun(db, String(runId)).name).toBe('demo');
    expect(findRun(db, 'demo').id).toBe(runId);
    expect(() => findRun(db, 'nope')).toThrow(/no run "nope".*autodidact runs/);
  });
});

describe('summarizeRun', () => {
  it('has the last value of each metric, the checkpoints and the alerts', () => {
    const s = summarizeRun(db, findRun(db, 'demo'));
    expect(s.lastMetrics['train/majority_ratio']).toEqual({ step: 1, value: 0.75 });
    expect(s.lastMetrics['val/maj@16']).toEqual({ step: 1, value: 0.75 });
    expect(s.bestCheckpoint).toMatchObject({ step: 1, path: '/ck/best', metric: 0.75 });
    expect(s.lastCheckpoint).toMatchObject({ step: 1, path: '/ck/last' });
    expect(s.alerts.map((a) => a.kind)).toEqual(['collapse']);
  });
});

describe('metricsCsv', () => {
  it('wide: a column per key, empty where a step lacks it', () => {
    expect(metricsCsv(db, runId, 'wide')).toBe('step,train/entropy,train/majority_ratio,val/maj@16\n0,1,0.5,\n1,0.5,0.75,0.75\n');
  });
  it('long: step,key,value by step then key', () => {
    const lines = metricsCsv(db, runId, 'long').trim().split('\n');
    expect(lines[0]).toBe('step,key,value');
    expect(lines.slice(1)).toEqual(['0,train/entropy,1', '0,train/majority_ratio,0.5', '1,train/entropy,0.5', '1,train/majority_ratio,0.75', '1,val/maj@16,0.75']);
  });
});

describe('samples export', () => {
  it('has one line per sample with the pseudo-label, hidden label, reward, advantage and used flag', () => {
    const lines = [...sampleLines(db, findRun(db, 'demo'))];
    expect(lines).toHaveLength(4);
    expect(lines[2]).toMatchObject({ step: 1, group: 0, item_idx: 1, pseudo_label: '4', label: '4', sample: 0, answer: '4', reward: 1, advantage: 0.5, used: true });
    expect(lines[3]).toMatchObject({ text: 'b, "quoted"', used: false, reward: 0 });
    expect(lines.some((l) => 'label_source' in l)).toBe(false);
  });
  it('marks the groups that took a person’s reviewed label instead of the vote', () => {
    const reviewed = createRun(db, { name: 'reviewed', method: 'ttrl', model: 'tiny-chars', dataset: 'toy', config: { steps: 1 } }).id;
    const sample = { text: 'x', extractedAnswer: '38', reward: 0, advantage: 0, usedForTraining: true };
    recordStep(db, reviewed, 1, {
      rollouts: [
        { itemIdx: 0, prompt: 'p0', pseudoLabel: '999', labelSource: 'review', samples: [sample] },
        { itemIdx: 1, prompt: 'p1', pseudoLabel: '38', samples: [sample] },
      ],
    });
    const lines = [...sampleLines(db, findRun(db, 'reviewed'))];
    expect(lines.map((l) => [l.pseudo_label, l.label_source])).toEqual([
      ['999', 'review'],
      ['38', undefined],
    ]);
  });
  it('writes metrics.csv, samples.jsonl and completions.parquet', async () => {
    const out = tmp.file('export');
    const r = exportRun(db, findRun(db, 'demo'), out, 'long');
    expect(r.samples).toBe(4);
    expect(fs.readFileSync(path.join(out, 'metrics.csv'), 'utf8')).toMatch(/^step,key,value\n/);
    const text = fs.readFileSync(path.join(out, 'samples.jsonl'), 'utf8');
    expect(text).toBe(samplesJsonl(db, findRun(db, 'demo')));
    const rows = text.trim().split('\n').map((l) => JSON.parse(l) as { step: number });
    expect(rows.map((x) => x.step)).toEqual([0, 0, 1, 1]);
    const file = fs.readFileSync(r.completionsFile);
    const parquet = file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength);
    expect(await parquetReadObjects({ file: parquet })).toHaveLength(4);
  });

  it('completions.parquet has TRL\'s completions columns (step, prompt, completion, rewards, advantage), read back by a Parquet reader', async () => {
    const bytes = completionsParquet(db, findRun(db, 'demo'));
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    const meta = parquetMetadata(file);
    expect(meta.schema.slice(1).map((c) => c.name)).toEqual(['step', 'prompt', 'completion', 'reward', 'reward/certainty', 'advantage', 'group', 'sample', 'answer', 'pseudo_label', 'used']);
    expect(COMPLETION_COLUMNS.slice(0, 4)).toEqual(['step', 'prompt', 'completion', 'reward']);
    expect(JSON.parse(meta.key_value_metadata!.find((k) => k.key === 'autodidact.run')!.value!)).toMatchObject({ id: runId, name: 'demo', method: 'ttrl' });
    const rows = await parquetReadObjects({ file });
    expect(rows).toEqual([
      { step: 0, prompt: 'what is 1+1?', completion: 'a', reward: 1, 'reward/certainty': null, advantage: 0.5, group: 0, sample: 0, answer: '2', pseudo_label: '2', used: true },
      { step: 0, prompt: 'what is 1+1?', completion: 'b, "quoted"', reward: 0, 'reward/certainty': null, advantage: -0.5, group: 0, sample: 1, answer: '7', pseudo_label: '2', used: false },
      { step: 1, prompt: 'what is 2+2?', completion: 'a', reward: 1, 'reward/certainty': null, advantage: 0.5, group: 0, sample: 0, answer: '4', pseudo_label: '4', used: true },
      { step: 1, prompt: 'what is 2+2?', completion: 'b, "quoted"', reward: 0, 'reward/certainty': 0.25, advantage: -0.5, group: 0, sample: 1, answer: '7', pseudo_label: '4', used: false },
    ]);
  });
});

describe('export of a code run', () => {
  it('carries each sample\'s hidden-test outcome and its group\'s execution record, in samples.jsonl and completions.parquet', async () => {
    const execution = {
      language: 'javascript' as const,
      solutions: ['function f(x) { return x; }\n', null],
      tests: ['assert(f(1) === 1);'],
      authors: [[0]],
      matrix: [['pass' as const], ['error' as const]],
      sets: [
        { solutions: [0], tests: [0], score: 1 },
        { solutions: [1], tests: [], score: 0 },
      ],
      top: 0,
      testRewards: [1],
      revisions: [{ sample: 1, feedback: 'Your function fails these tests: ...', text: 'still none', solution: null, row: ['error' as const], reward: 0, advantage: 0, hiddenResult: 'error' }],
    };
    const code = createRun(db, { name: 'code', method: 'code-consensus', model: 'tiny-chars', dataset: 'toy', datasetId: null, config: { steps: 1 } });
    recordStep(db, code.id, 1, {
      metrics: {},
      rollouts: [
        {
          prompt: 'write f',
          execution,
          samples: [
            { text: '```javascript\nfunction f(x) { return x; }\nassert(f(1) === 1);\n```', reward: 1, advantage: 0.5, usedForTraining: true, hiddenResult: 'pass' },
            { text: 'no code', reward: 0, advantage: -0.5, usedForTraining: true, hiddenResult: 'error' },
          ],
        },
      ],
    });
    const lines = [...sampleLines(db, code)];
    expect(lines.map((l) => l.hidden_result)).toEqual(['pass', 'error']);
    expect(lines.map((l) => l.execution)).toEqual([execution, execution]);
    expect(JSON.parse(samplesJsonl(db, code).split('\n')[1])).toMatchObject({ hidden_result: 'error', execution: { matrix: [['pass'], ['error']], top: 0 } });
    const bytes = completionsParquet(db, code);
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    expect(parquetMetadata(file).schema.slice(1).map((c) => c.name)).toEqual([...COMPLETION_COLUMNS, 'hidden_result', 'execution']);
    const rows = await parquetReadObjects({ file });
    expect(rows.map((r) => r.hidden_result)).toEqual(['pass', 'error']);
    expect(rows.map((r) => r.execution)).toEqual([execution, execution]);
    // A run without them (TTRL's above) keeps its lines and columns as they were.
    expect([...sampleLines(db, findRun(db, 'demo'))].some((l) => 'hidden_result' in l || 'execution' in l)).toBe(false);
  });
});

describe('importDatasetFile', () => {
  it('holds out a stable, exact share of labeled items for evaluation', () => {
    const items = Array.from({ length: 50 }, (_, i) => ({ prompt: `p${i}`, answer: String(i) }));
    const a = evalIndices(items, 0.2);
    expect(a.size).toBe(10);
    const reversed = evalIndices([...items].reverse(), 0.2);
    expect([...reversed].map((i) => items[49 - i].prompt).sort()).toEqual([...a].map((i) => items[i].prompt).sort());
  });

  it('imports an --eval-file as the eval split and refuses one without answers', () => {
    const d = openDatabase(':memory:');
    try {
      fs.writeFileSync(tmp.file('train.jsonl'), '{"prompt":"a"}\n{"prompt":"b"}\n');
      fs.writeFileSync(tmp.file('held.jsonl'), '{"prompt":"c","answer":"3"}\n');
      fs.writeFileSync(tmp.file('unlabeled.jsonl'), '{"prompt":"c"}\n');
      const r = importDatasetFile(d, tmp.file('train.jsonl'), { evalFile: tmp.file('held.jsonl') });
      expect([r.train, r.eval, r.dataset.labeledCount]).toEqual([2, 1, 1]);
      expect(() => importDatasetFile(d, tmp.file('train.jsonl'), { name: 'x', evalFile: tmp.file('unlabeled.jsonl') })).toThrow(/unlabeled\.jsonl.*no answer/);
      expect(() => importDatasetFile(d, tmp.file('train.jsonl'), { name: 'y', evalFraction: 0.5 })).toThrow(/needs 1 item with an answer, but 0/);
    } finally {
      d.close();
    }
  });
});
