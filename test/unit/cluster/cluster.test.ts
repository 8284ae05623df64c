// Handing a run to verl and bringing it back: the export (parquet read back by hyparquet, and by
// arrow-rs through parquet-wasm, a reader that shares no code with hyparquet-writer, as pyarrow
// reads it for verl; the launch script's keys), the import of verl's
// file-logger metrics and rollout dump (test/fixtures/verl, made from verl's and TTRL's source:
// see its README), re-imports, truncated and malformed lines, --follow on growing files, and a
// review of the imported run written to the cluster's reviewed-labels file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet';
import { tableFromIPC } from 'apache-arrow';
import { readParquet } from 'parquet-wasm';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { exportForVerl } from '../../../main/cluster/export.ts';
import { ClusterReader, importClusterRun } from '../../../main/cluster/import.ts';
import { CLUSTER_FILES, verlOverrides } from '../../../main/cluster/launch.ts';
import { parseRunConfig } from '../../../main/engine/rl/config.ts';
import { ClusterFileError, JsonlTail } from '../../../main/cluster/verl-files.ts';
import { type ExperimentDb, createRun, getRun, getStep, importDataset, listRuns, listSteps, openDatabase, queryMetrics, stepTimeline } from '../../../main/db/index.ts';
import { liveRunOwner, requestControl } from '../../../main/runs/owner.ts';
import { createHarness } from '../api/handlers-harness.ts';
import { tempDir } from '../db/helpers.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/verl');
const tmp = tempDir('autodidact-cluster-');
let n = 0;
const freshDir = () => path.join(tmp.dir, `case-${++n}`);

const ITEMS = [
  { prompt: 'What is 2+3?', answer: '5' },
  { prompt: 'What is 4*2?', answer: '8' },
  { prompt: 'What is 10-7?', answer: '3' },
  { prompt: 'What is 6/2?', answer: '3' },
  { prompt: 'What is 9+1?', answer: '10', split: 'eval' as const },
  { prompt: 'What is 7*3?', answer: '21', split: 'eval' as const },
];
const SETTINGS = { model: 'tiny-chars', dataset: 'arith', steps: 3, votes: 4, trainSamples: 2, promptsPerStep: 2, valSamples: 4, voteTies: 'first', lr: 2e-6, klCoef: 0.005, temperature: 0.9 };

function setup(db: ExperimentDb) {
  const ds = importDataset(db, { name: 'arith' }, ITEMS);
  const run = createRun(db, { name: 'local-ttrl', method: 'ttrl', model: 'tiny-chars', dataset: 'arith', datasetId: ds.id, config: { method: 'ttrl', ...SETTINGS } });
  return { ds, run };
}

/** An exported folder with verl's output copied in (metrics, and the rollout dumps of `steps`). */
function exported(db: ExperimentDb, runId: number, steps: number[] = [1, 2, 3]): string {
  const dir = freshDir();
  exportForVerl(db, { run: getRun(db, runId)! }, dir);
  fs.copyFileSync(path.join(FIXTURES, 'metrics.jsonl'), path.join(dir, CLUSTER_FILES.metrics));
  for (const s of steps) fs.copyFileSync(path.join(FIXTURES, 'rollouts', `${s}.jsonl`), path.join(dir, CLUSTER_FILES.rollouts, `${s}.jsonl`));
  return dir;
}

let db: ExperimentDb;
beforeEach(() => {
  db = openDatabase(':memory:');
});
afterAll(() => tmp.remove());

describe('cluster export', () => {
  it("writes the dataset as verl's parquet, read back with the schema verl expects", async () => {
    const { run } = setup(db);
    const dir = freshDir();
    const result = exportForVerl(db, { run }, dir);
    expect(result).toMatchObject({ trainRows: 4, valRows: 2, warnings: [] });
    const bytes = fs.readFileSync(path.join(dir, CLUSTER_FILES.train));
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const schema = parquetSchema(parquetMetadata(file));
    const shape = (node: typeof schema): unknown => (node.children.length ? Object.fromEntries(node.children.map((c) => [c.element.name, shape(c)])) : node.element.type);
    expect(shape(schema)).toEqual({
      data_source: 'BYTE_ARRAY',
      prompt: { list: { element: { role: 'BYTE_ARRAY', content: 'BYTE_ARRAY' } } },
      ability: 'BYTE_ARRAY',
      reward_model: { style: 'BYTE_ARRAY', ground_truth: 'BYTE_ARRAY' },
      extra_info: { split: 'BYTE_ARRAY', index: 'INT64' },
    });
    expect(schema.children.find((c) => c.element.name === 'prompt')?.element.converted_type).toBe('LIST');
    const rows = await parquetReadObjects({ file });
    expect(rows).toHaveLength(4);
    expect(rows[1]).toEqual({
      data_source: 'autodidact/arith',
      prompt: [{ role: 'user', content: 'What is 4*2?' }],
      ability: 'math',
      reward_model: { style: 'rule', ground_truth: '8' },
      extra_info: { split: 'train', index: 1n },
    });
    const valBytes = fs.readFileSync(path.join(dir, CLUSTER_FILES.val));
    const val = await parquetReadObjects({ file: valBytes.buffer.slice(valBytes.byteOffset, valBytes.byteOffset + valBytes.byteLength) });
    expect(val.map((r) => [(r.extra_info as { index: bigint }).index, (r.reward_model as { ground_truth: string }).ground_truth, (r.extra_info as { split: string }).split])).toEqual([
      [4n, '10', 'test'],
      [5n, '21', 'test'],
    ]);
  });

  it('is read by arrow-rs (parquet-wasm) with the Arrow schema verl reads through pyarrow', () => {
    // hyparquet-writer depends on hyparquet, so a bug shared by both would pass the test above;
    // arrow-rs is the Apache Arrow project's own Rust implementation, as independent as a reader gets.
    const { run } = setup(db);
    const dir = freshDir();
    exportForVerl(db, { run }, dir);
    const read = (name: string) => tableFromIPC(readParquet(new Uint8Array(fs.readFileSync(path.join(dir, name)))).intoIPCStream());
    const train = read(CLUSTER_FILES.train);
    expect(train.schema.fields.map((f) => [f.name, String(f.type)])).toEqual([
      ['data_source', 'Utf8'],
      ['prompt', 'List<Struct<{role:Utf8, content:Utf8}>>'],
      ['ability', 'Utf8'],
      ['reward_model', 'Struct<{style:Utf8, ground_truth:Utf8}>'],
      ['extra_info', 'Struct<{split:Utf8, index:Int64}>'],
    ]);
    const rows = train.toArray().map((r) => r.toJSON() as Record<string, unknown>);
    expect(rows).toHaveLength(4);
    expect(JSON.parse(JSON.stringify(rows[2], (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)))).toEqual({
      data_source: 'autodidact/arith',
      prompt: [{ role: 'user', content: 'What is 10-7?' }],
      ability: 'math',
      reward_model: { style: 'rule', ground_truth: '3' },
      extra_info: { split: 'train', index: 2 },
    });
    const val = read(CLUSTER_FILES.val);
    expect(val.numRows).toBe(2);
    expect(String(val.getChild('reward_model')?.get(1)?.toJSON().ground_truth)).toBe('21');
  });

  it("maps the run's settings to verl's keys, lists the others, and sets the loggers the import reads", () => {
    const { run } = setup(db);
    const dir = freshDir();
    exportForVerl(db, { run }, dir);
    const script = fs.readFileSync(path.join(dir, CLUSTER_FILES.launch), 'utf8');
    for (const key of [
      'actor_rollout_ref.rollout.n=4',
      'data.train_batch_size=2',
      'actor_rollout_ref.rollout.temperature=0.9',
      'actor_rollout_ref.actor.optim.lr=0.000002',
      'actor_rollout_ref.actor.optim.lr_scheduler_type=cosine',
      'actor_rollout_ref.actor.use_kl_loss=True',
      'actor_rollout_ref.actor.kl_loss_coef=0.005',
      'actor_rollout_ref.actor.kl_loss_type=low_var_kl',
      'actor_rollout_ref.actor.clip_ratio_high=0.2',
      'actor_rollout_ref.rollout.val_kwargs.n=4',
      'actor_rollout_ref.rollout.val_kwargs.top_p=0.95',
      'trainer.total_training_steps=3',
      'reward_model.reward_manager=batch',
      'custom_reward_function.path="$HERE/reward_fn.py"',
      `trainer.logger='["console","file"]'`,
      'trainer.rollout_data_dir="$HERE/verl/rollouts"',
      'export VERL_FILE_LOGGER_PATH="$HERE/verl/metrics.jsonl"',
    ]) {
      expect(script, key).toContain(key);
    }
    // trainSamples < votes has no counterpart in plain verl: said, with TTRL's keys.
    expect(script).toMatch(/^# {3}trainSamples=2: .*ttrl\.n_votes_per_prompt=4 ttrl\.n_samples_per_prompt=2/m);
    expect(script).toMatch(/^# {3}promptFormat=raw: /m);
    expect(fs.statSync(path.join(dir, CLUSTER_FILES.launch)).mode & 0o111).not.toBe(0);
    const reward = fs.readFileSync(path.join(dir, CLUSTER_FILES.rewardFunction), 'utf8');
    expect(reward).toContain('def compute_score(data_sources, solution_strs, ground_truths, extra_infos, **kwargs)');
    expect(reward).toContain('VOTE_TIES = "first"');
    expect(JSON.parse(fs.readFileSync(path.join(dir, CLUSTER_FILES.reviewedLabels), 'utf8'))).toMatchObject({ labels: {} });
    expect(fs.readFileSync(path.join(dir, CLUSTER_FILES.readme), 'utf8')).toContain('autodidact cluster import');
  });

  it("maps the actor–critic (advantage gae) to verl's GAE and critic keys", () => {
    const { overrides, unmapped } = verlOverrides(parseRunConfig({ advantage: 'gae', gaeLambda: 0.95, criticLr: 0.002, valueClip: 0.2, criticEpochs: 2, criticWarmup: 2, steps: 10 }), true);
    expect(overrides).toEqual(
      expect.arrayContaining(['algorithm.adv_estimator=gae', 'algorithm.gamma=1', 'algorithm.lam=0.95', 'critic.model.path="$MODEL"', 'critic.optim.lr=0.002', 'critic.cliprange_value=0.2', 'critic.ppo_epochs=2', 'trainer.critic_warmup=3']),
    );
    expect(overrides.some((o) => o.startsWith('algorithm.norm_adv_by_std_in_grpo') || o === 'algorithm.adv_estimator=grpo')).toBe(false);
    expect(unmapped.some((u) => u.startsWith('criticLr=0.002: here the critic is a value head'))).toBe(true);
  });

  it('gives a dataset without hidden answers a placeholder and a warning; exports a configuration file too', () => {
    importDataset(db, { name: 'unlabeled' }, [{ prompt: 'p1' }, { prompt: 'p2' }]);
    const dir = freshDir();
    const result = exportForVerl(db, { configFile: 'exp.json', settings: { ...SETTINGS, dataset: 'unlabeled' } }, dir);
    expect(result.warnings.join('\n')).toMatch(/no hidden answers: .*placeholder.*accuracy metrics .* mean nothing/);
    expect(result.warnings.join('\n')).toMatch(/no labeled eval items/);
    expect(fs.readFileSync(path.join(dir, CLUSTER_FILES.launch), 'utf8')).toContain('trainer.test_freq=-1');
    expect(JSON.parse(fs.readFileSync(path.join(dir, CLUSTER_FILES.manifest), 'utf8'))).toMatchObject({ name: 'exp', dataset: { name: 'unlabeled' } });
  });
});

describe('cluster import', () => {
  it('brings the metrics and rollouts back as an external run, and a re-import adds nothing', async () => {
    const { run: local } = setup(db);
    const dir = exported(db, local.id);
    const first = await importClusterRun(db, dir, { home: tmp.dir });
    expect(first).toMatchObject({ steps: 4, skipped: 0 });
    const run = first.run;
    expect(run).toMatchObject({ kind: 'external', name: 'local-ttrl (verl)', method: 'ttrl', status: 'completed', currentStep: 3, datasetId: local.datasetId, bestMetric: 1, bestStep: 3 });
    expect(listSteps(db, run.id)).toEqual([0, 1, 2, 3]);
    const at = (key: string) => queryMetrics(db, run.id, { keys: [key] }).map((m) => [m.step, m.value]);
    // The app's chart keys from verl's, verl's own kept.
    expect(at('train/entropy')).toEqual([[1, 0.9], [2, 0.7], [3, 0.5]]);
    expect(at('actor/entropy')).toEqual(at('train/entropy'));
    expect(at('val/maj@4')).toEqual([[0, 0.5], [3, 1]]);
    expect(at('val/avg@4')).toEqual([[0, 0.25], [3, 0.5]]);
    expect(at('val/pass@4')).toEqual([[0, 0.5], [3, 1]]);
    // Tokens for the charts' tokens axis: verl's perf/total_num_tokens.
    expect(stepTimeline(db, run.id).map((t) => [t.step, t.tokens])).toEqual([[0, null], [1, 312], [2, 300], [3, 290]]);
    // The wall-time axis from verl's own step times (timing_s/step 5.0, 4.6, 4.4), not the import's moment.
    const times = stepTimeline(db, run.id).map((t) => Date.parse(t.recordedAt));
    expect(times.slice(1).map((t, i) => (t - times[i]) / 1000)).toEqual([5, 4.6, 4.4]);
    expect(at('actor/ppo_kl')).toEqual([[1, NaN]]);
    expect(at('train/majority_ratio')).toEqual([[1, 0.625], [2, 0.875], [3, 0.75]]);
    expect(at('train/label_accuracy')).toEqual([[1, 0.5], [2, 1], [3, 1]]);
    const step1 = getStep(db, run.id, 1)!;
    expect(step1.rollouts.map((r) => [r.itemIdx, r.pseudoLabel, r.voteCounts, r.majorityRatio, r.labelCorrect, r.samples.length])).toEqual([
      [0, '5', { 5: 3, 6: 1 }, 0.75, true, 4],
      [1, '6', { 6: 2, 8: 2 }, 0.5, false, 4],
    ]);
    expect(step1.rollouts[0].samples.map((s) => [s.text, s.extractedAnswer, s.reward])).toEqual([
      ['2+3 = 5. The answer is 5.', '5', 1],
      ['I think it is 6', '6', 0],
      ['#### 5', '5', 1],
      ['five: 5', '5', 1],
    ]);
    expect(getStep(db, run.id, 2)!.rollouts[1].samples[1].extractedAnswer).toBeNull();
    expect(getStep(db, run.id, 3)!.rollouts[0].labelSource).toBe('review');

    const again = await importClusterRun(db, dir, { home: tmp.dir });
    expect(again).toMatchObject({ steps: 0, skipped: 4 });
    expect(again.run.id).toBe(run.id);
    expect(listRuns(db).filter((r) => r.kind === 'external')).toHaveLength(1);
    expect(getStep(db, run.id, 1)!.rollouts).toHaveLength(2);
  });

  it('reads a truncated last line later, never as an error', async () => {
    const { run: local } = setup(db);
    const dir = exported(db, local.id);
    const metrics = path.join(dir, CLUSTER_FILES.metrics);
    const lines = fs.readFileSync(metrics, 'utf8').split('\n');
    fs.writeFileSync(metrics, `${lines.slice(0, 3).join('\n')}\n${lines[3].slice(0, 40)}`);
    const first = await importClusterRun(db, dir, { home: tmp.dir });
    expect(listSteps(db, first.run.id)).toEqual([0, 1, 2]);
    expect(first.run.status).toBe('stopped');
    expect(first.run.error).toMatch(/up to step 2; 'autodidact cluster import .*' .* brings the rest/);
    fs.appendFileSync(metrics, `${lines[3].slice(40)}\n`);
    const second = await importClusterRun(db, dir, { home: tmp.dir });
    expect(second).toMatchObject({ steps: 1, skipped: 3 });
    expect(listSteps(db, first.run.id)).toEqual([0, 1, 2, 3]);
    expect(second.run.status).toBe('completed');
  });

  it('names the file and line of a malformed metrics or rollout line and stores nothing of that import', async () => {
    const { run: local } = setup(db);
    const dir = exported(db, local.id);
    const metrics = path.join(dir, CLUSTER_FILES.metrics);
    const good = fs.readFileSync(metrics, 'utf8');
    const lines = good.split('\n');
    fs.writeFileSync(metrics, [lines[0], lines[1], '{"step": "two", "data": {}}', lines[3], ''].join('\n'));
    await expect(importClusterRun(db, dir, { home: tmp.dir })).rejects.toThrow(new ClusterFileError(`${metrics}:3: "step" must be an integer ≥ 0, got "two"`));
    const run = listRuns(db).find((r) => r.kind === 'external')!;
    expect(listSteps(db, run.id)).toEqual([]);

    fs.writeFileSync(metrics, good);
    const dump = path.join(dir, CLUSTER_FILES.rollouts, '2.jsonl');
    const dumpLines = fs.readFileSync(dump, 'utf8').split('\n');
    dumpLines[4] = '{"input": "x", "output": 3}';
    fs.writeFileSync(dump, dumpLines.join('\n'));
    await expect(importClusterRun(db, dir, { home: tmp.dir })).rejects.toThrow(`${dump}:5: "output" must be the response text, got 3`);
    expect(listSteps(db, run.id)).toEqual([]);
  });

  it('--follow reads files that grow while it reads them: every step once, none lost', async () => {
    const { run: local } = setup(db);
    const dir = exported(db, local.id, []);
    const metrics = path.join(dir, CLUSTER_FILES.metrics);
    fs.writeFileSync(metrics, '');
    const lines = fs.readFileSync(path.join(FIXTURES, 'metrics.jsonl'), 'utf8').trim().split('\n');
    const seen: number[] = [];
    const following = importClusterRun(db, dir, { home: tmp.dir, follow: true, pollMs: 5, onPass: (r) => seen.push(...r.recorded.map((s) => s.step)) });
    const tick = () => new Promise((r) => setTimeout(r, 12));
    // As verl writes: the step's rollout dump, then its metrics line, here in pieces.
    for (const [i, line] of lines.entries()) {
      if (i > 0) fs.copyFileSync(path.join(FIXTURES, 'rollouts', `${i}.jsonl`), path.join(dir, CLUSTER_FILES.rollouts, `${i}.jsonl`));
      fs.appendFileSync(metrics, line.slice(0, 25));
      await tick();
      fs.appendFileSync(metrics, `${line.slice(25)}\n`);
      await tick();
      if (i === 1) expect(getRun(db, listRuns(db).find((r) => r.kind === 'external')!.id)?.status).toBe('running');
    }
    const summary = await following;
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(summary).toMatchObject({ steps: 4 });
    expect(summary.run.status).toBe('completed');
    expect(getStep(db, summary.run.id, 3)!.rollouts.flatMap((r) => r.samples)).toHaveLength(8);
  });

  it('reads a metrics file again from its start when verl rewrote it (a restarted run)', () => {
    const file = path.join(freshDir() + '.jsonl');
    fs.writeFileSync(file, '{"step":1,"data":{}}\n{"step":2,"data":{}}\n');
    const tail = new JsonlTail(file);
    expect(tail.read().lines.map((l) => l.no)).toEqual([1, 2]);
    fs.writeFileSync(file, '{"step":2,"data":{"a":1}}\n');
    const again = tail.read();
    expect(again).toMatchObject({ restarted: true, lines: [{ no: 1, text: '{"step":2,"data":{"a":1}}' }] });
    expect(tail.read().lines).toEqual([]);
  });

  it('waits for a rollout dump that is still being copied', () => {
    const { run: local } = setup(db);
    const dir = exported(db, local.id, [1, 3]);
    const partial = fs.readFileSync(path.join(FIXTURES, 'rollouts', '2.jsonl'), 'utf8');
    fs.writeFileSync(path.join(dir, CLUSTER_FILES.rollouts, '2.jsonl'), partial.slice(0, partial.length - 30));
    const run = createRun(db, { name: 'x', kind: 'external', method: 'ttrl', model: 'm', dataset: 'arith', datasetId: local.datasetId, config: { ...SETTINGS, external: { source: 'verl', dir } } });
    const reader = new ClusterReader(db, run, dir);
    expect(reader.pass()).toMatchObject({ recorded: [{ step: 0 }, { step: 1 }, { step: 3 }], waiting: [2] });
    fs.writeFileSync(path.join(dir, CLUSTER_FILES.rollouts, '2.jsonl'), partial);
    expect(reader.pass()).toMatchObject({ recorded: [{ step: 2, rollouts: 2, samples: 8 }], waiting: [] });
  });
});

describe('an imported run in the app', () => {
  it('opens like any run, refuses resume and pause, and writes a review to the reviewed-labels file', async () => {
    const h = createHarness();
    const { run: local } = setup(h.db);
    const dir = exported(h.db, local.id);
    const { run } = await importClusterRun(h.db, dir, { home: h.home });
    const view = await h.call('runs.get', { id: run.id });
    expect(view.run).toMatchObject({ kind: 'external', status: 'completed', currentStep: 3, keyMetric: { name: 'val/maj@4', value: 1 } });
    expect(view.metricKeys).toEqual(expect.arrayContaining(['train/entropy', 'val/maj@4', 'critic/score/mean']));
    const resume = await h.refused('runs.resume', { id: run.id });
    expect(resume).toMatchObject({ code: 'CONFLICT' });
    expect(resume.message).toMatch(/trained by verl on a cluster and imported; it cannot resume here/);
    expect((await h.refused('runs.pause', { id: run.id })).code).toBe('CONFLICT');

    const { groups } = await h.call('steps.groups', { runId: run.id, step: 1, filter: 'all' });
    expect(groups.map((g) => [g.itemIdx, g.pseudoLabel, g.truth, g.voteCounts])).toEqual([
      [0, '5', '5', { 5: 3, 6: 1 }],
      [1, '6', '8', { 6: 2, 8: 2 }],
    ]);
    const detail = await h.call('steps.group', { rolloutId: groups[1].rolloutId });
    expect(detail.samples.map((s) => s.text)).toContain('4 times 2 = 8');
    const group = { id: groups[1].rolloutId };
    await h.call('reviews.set', { rolloutId: group.id, verdict: 'override', label: '8' });
    const labels = JSON.parse(fs.readFileSync(path.join(dir, CLUSTER_FILES.reviewedLabels), 'utf8')) as { labels: Record<string, string> };
    expect(labels.labels).toEqual({ 1: '8' });
    await h.call('reviews.clear', { rolloutId: group.id });
    expect((JSON.parse(fs.readFileSync(path.join(dir, CLUSTER_FILES.reviewedLabels), 'utf8')) as { labels: object }).labels).toEqual({});
    // A bulk agreement reaches the file too.
    const { asOf } = await h.call('steps.groups', { runId: run.id, step: 1 });
    expect(await h.call('reviews.agreeAll', { runId: run.id, step: 1, asOf: asOf! })).toMatchObject({ agreed: 2 });
    expect((JSON.parse(fs.readFileSync(path.join(dir, CLUSTER_FILES.reviewedLabels), 'utf8')) as { labels: object }).labels).toEqual({ 0: '5', 1: '6' });
    h.close();
  });
});

describe('following a cluster run', () => {
  it("ends when the app's Stop asks (a control request), the run left stopped with what to do next", async () => {
    const { run: local } = setup(db);
    const dir = exported(db, local.id, [1]);
    const metrics = path.join(dir, CLUSTER_FILES.metrics);
    fs.writeFileSync(metrics, fs.readFileSync(metrics, 'utf8').split('\n').slice(0, 2).join('\n') + '\n');
    const home = path.join(tmp.dir, 'home-follow');
    let runId = -1;
    const following = importClusterRun(db, dir, {
      home,
      follow: true,
      pollMs: 5,
      onPass: (_r, run) => {
        runId = run.id;
        if (liveRunOwner(home, run.id)?.pid === process.pid) requestControl(home, run.id, 'stop');
      },
    });
    const summary = await following;
    expect(summary.run).toMatchObject({ id: runId, status: 'stopped', currentStep: 1 });
    expect(summary.run.error).toMatch(/up to step 1; 'autodidact cluster import .* brings the rest/);
    expect(liveRunOwner(home, runId)).toBeNull();
  });
});

describe('two readers of one folder', () => {
  it('refuses to import a run another live process is following, naming it', async () => {
    const { run: local } = setup(db);
    const dir = exported(db, local.id);
    const first = await importClusterRun(db, dir, { home: path.join(tmp.dir, 'home-two') });
    // The parent of this test process stands in for a live `cluster import --follow`.
    const home = path.join(tmp.dir, 'home-two');
    fs.mkdirSync(path.join(home, 'runs', String(first.run.id)), { recursive: true });
    fs.writeFileSync(path.join(home, 'runs', String(first.run.id), 'owner.json'), JSON.stringify({ pid: process.ppid, hostname: os.hostname(), startedAt: '2026-12-04T12:00:00Z' }));
    expect(liveRunOwner(home, first.run.id)?.pid).toBe(process.ppid);
    await expect(importClusterRun(db, dir, { home })).rejects.toThrow(`run ${first.run.id} ("local-ttrl (verl)") is being followed by another process (pid ${process.ppid}, since 2026-12-04T12:00:00Z)`);
    expect(getRun(db, first.run.id)?.status).toBe('completed');
  });
});
