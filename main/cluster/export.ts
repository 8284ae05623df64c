// `autodidact cluster export`: a run (or a run configuration file) as a folder verl can train
// from on a cluster: the dataset as parquet in verl's shape, the launch script, the reward
// function, the reviewed-labels file, a README, and a manifest that `autodidact cluster import`
// reads back. The parquet layout is verl's (examples/data_preprocess/gsm8k.py at verl b178a3cd):
// data_source, prompt (chat messages), ability, reward_model {style, ground_truth}, extra_info
// {split, index}; extra_info.index is the item's dataset_items.idx, the key of every rollout
// brought back and of the reviewed labels.
import fs from 'node:fs';
import path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { type ExperimentDb, type RunInfo, evaluationAnswers, getDataset, listItems } from '../db/index.ts';
import type { RunConfig } from '../engine/rl/config.ts';
import { storedConfig } from '../runs/key-metric.ts';
import { RunSetupError, ensureDataset, parseStoredConfig, recordedSettings, reviewedLabels, type RunTarget } from '../runs/start.ts';
import { CLUSTER_FILES, launchScript, verlOverrides } from './launch.ts';
import { rewardFunctionSource } from './reward-function.ts';
import { writeReviewedLabelsFile } from './reviewed-labels.ts';

/** One row of train.parquet / val.parquet. */
export interface VerlRow {
  data_source: string;
  prompt: { role: string; content: string }[];
  ability: string;
  reward_model: { style: string; ground_truth: string };
  extra_info: { split: string; index: number };
}

/** What the import needs to know about the export (autodidact-cluster.json). */
export interface ClusterManifest {
  format: 'autodidact-cluster';
  version: 1;
  exportedAt: string;
  /** The run exported, or the configuration file. */
  source: { runId: number; runName: string } | { configFile: string };
  name: string;
  method: string;
  model: string;
  dataset: { id: number; name: string };
  /** The run's stored settings (model, dataset and the loop's), as a run records them. */
  config: Record<string, unknown>;
  files: typeof CLUSTER_FILES;
}

export interface ClusterExportResult {
  dir: string;
  files: string[];
  trainRows: number;
  valRows: number;
  /** Things a person should know (a dataset without hidden answers, ...). */
  warnings: string[];
}

export type ExportSource = { run: RunInfo } | { configFile: string; settings: Record<string, unknown> };

const STRING = { type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' } as const;

/** The rows as verl's parquet: prompt a list of {role, content} structs, reward_model and extra_info structs. */
export function verlParquet(rows: readonly VerlRow[]): Uint8Array {
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'data_source', data: rows.map((r) => r.data_source) },
      { name: 'prompt', data: rows.map((r) => r.prompt) },
      { name: 'ability', data: rows.map((r) => r.ability) },
      { name: 'reward_model', data: rows.map((r) => r.reward_model) },
      // int64, as pandas writes the index verl's examples make.
      { name: 'extra_info', data: rows.map((r) => ({ split: r.extra_info.split, index: BigInt(r.extra_info.index) })) },
    ],
    schema: [
      { name: 'root', num_children: 5 },
      { name: 'data_source', ...STRING },
      { name: 'prompt', repetition_type: 'REQUIRED', converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', repetition_type: 'REQUIRED', num_children: 2 },
      { name: 'role', ...STRING },
      { name: 'content', ...STRING },
      { name: 'ability', ...STRING },
      { name: 'reward_model', repetition_type: 'REQUIRED', num_children: 2 },
      { name: 'style', ...STRING },
      { name: 'ground_truth', ...STRING },
      { name: 'extra_info', repetition_type: 'REQUIRED', num_children: 2 },
      { name: 'split', ...STRING },
      { name: 'index', type: 'INT64', repetition_type: 'REQUIRED' },
    ],
    createdBy: 'autodidact',
  });
  return new Uint8Array(buffer);
}

/** A settings object without the keys an imported run adds to its stored config. */
function exportableSettings(stored: Record<string, unknown>): Record<string, unknown> {
  const { external: _external, ...rest } = stored;
  return rest;
}

/** Writes the folder; refuses a folder that already holds another export's files rather than mixing them. */
export function exportForVerl(db: ExperimentDb, source: ExportSource, dir: string): ClusterExportResult {
  const where = 'run' in source ? `run ${source.run.id}` : source.configFile;
  const settings = 'run' in source ? recordedSettings(exportableSettings(storedConfig(source.run))) : source.settings;
  const { config, target, name } = parseStoredConfig(settings, where);
  const datasetId = 'run' in source && source.run.datasetId !== null ? source.run.datasetId : ensureDataset(db, target.dataset, target, config.seed);
  const dataset = getDataset(db, datasetId);
  if (!dataset) throw new RunSetupError(`${where}: its dataset (id ${datasetId}) no longer exists`);
  if (fs.existsSync(path.join(dir, CLUSTER_FILES.metrics))) {
    throw new RunSetupError(`${dir} already holds a cluster run's metrics (${CLUSTER_FILES.metrics}); export into a new folder so they are not mixed up`);
  }

  const warnings: string[] = [];
  const { train, val, missing } = datasetRows(db, datasetId, dataset.name);
  if (train.length === 0) throw new RunSetupError(`dataset "${dataset.name}" has no training items`);
  if (missing === train.length) {
    warnings.push(`dataset "${dataset.name}" has no hidden answers: reward_model.ground_truth is an empty placeholder, so the accuracy metrics (train/label_accuracy, truth_correct) will mean nothing`);
  } else if (missing > 0) {
    warnings.push(`${missing} of ${train.length} training items of "${dataset.name}" have no hidden answer: their ground_truth is an empty placeholder and they count in no accuracy metric`);
  }
  const hasValidation = val.length > 0;
  if (!hasValidation) warnings.push(`dataset "${dataset.name}" has no labeled eval items: the cluster run will not validate (test_freq=-1)`);

  const runName = 'run' in source ? source.run.name : (name ?? path.basename(source.configFile, path.extname(source.configFile)));
  const stored = { ...config, ...targetSettings(target) };
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  fs.mkdirSync(path.join(dir, CLUSTER_FILES.rollouts), { recursive: true });
  const write = (rel: string, data: string | Uint8Array, mode?: number) => {
    const file = path.join(dir, rel);
    fs.writeFileSync(file, data, mode === undefined ? undefined : { mode });
    return file;
  };
  const files = [
    write(CLUSTER_FILES.train, verlParquet(train)),
    // verl needs a validation file even when it never validates.
    write(CLUSTER_FILES.val, verlParquet(hasValidation ? val : train.slice(0, 1))),
    write(CLUSTER_FILES.rewardFunction, rewardFunctionSource({ answerFormat: config.answerFormat, voteTies: config.voteTies, labelsFile: CLUSTER_FILES.reviewedLabels })),
    write(CLUSTER_FILES.launch, launchScript(`"${runName}"`, slug(runName), target.model, verlOverrides(config, hasValidation)), 0o755),
  ];
  // The labels a run was told to train with (reviewsOf) go with it; a review made later in the
  // app, on the imported run, rewrites the file.
  const labels = target.reviewsOf !== undefined ? reviewedLabels(db, target.reviewsOf, datasetId) : new Map<number, string>();
  files.push(writeReviewedLabelsFile(dir, labels));
  const manifest: ClusterManifest = {
    format: 'autodidact-cluster',
    version: 1,
    exportedAt: new Date().toISOString(),
    source: 'run' in source ? { runId: source.run.id, runName: source.run.name } : { configFile: path.resolve(source.configFile) },
    name: runName,
    method: config.method,
    model: target.model,
    dataset: { id: datasetId, name: dataset.name },
    config: stored,
    files: CLUSTER_FILES,
  };
  files.push(write(CLUSTER_FILES.manifest, JSON.stringify(manifest, null, 2) + '\n'));
  files.push(write(CLUSTER_FILES.readme, readme(runName, config, target.model, warnings)));
  return { dir, files, trainRows: train.length, valRows: hasValidation ? val.length : 0, warnings };
}

function targetSettings(target: RunTarget): Record<string, unknown> {
  const { difficulty: _difficulty, ...rest } = target;
  return rest;
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'run';

/** The dataset's training items and its labeled eval items as verl rows. */
function datasetRows(db: ExperimentDb, datasetId: number, datasetName: string): { train: VerlRow[]; val: VerlRow[]; missing: number } {
  // Hidden answers go to ground_truth only: verl's metrics and reward_fn.py's diagnostics read them there.
  const answers = evaluationAnswers(db, datasetId);
  const row = (idx: number, prompt: string, split: 'train' | 'test'): VerlRow => ({
    data_source: `autodidact/${datasetName}`,
    prompt: [{ role: 'user', content: prompt }],
    ability: 'math',
    reward_model: { style: 'rule', ground_truth: answers.get(idx) ?? '' },
    extra_info: { split, index: idx },
  });
  const train = listItems(db, datasetId, { split: 'train' }).items.map((it) => row(it.idx, it.prompt, 'train'));
  const val = listItems(db, datasetId, { split: 'eval' })
    .items.filter((it) => answers.has(it.idx))
    .map((it) => row(it.idx, it.prompt, 'test'));
  return { train, val, missing: train.filter((r) => r.reward_model.ground_truth === '').length };
}

function readme(runName: string, config: RunConfig, model: string, warnings: string[]): string {
  return `# ${runName} on verl

Written by \`autodidact cluster export\`. This folder trains the run with
[verl](https://github.com/volcengine/verl) on a cluster, and is what \`autodidact cluster import\`
reads back into the app.

| file | what it is |
|---|---|
| \`${CLUSTER_FILES.train}\`, \`${CLUSTER_FILES.val}\` | the dataset in verl's parquet shape (\`prompt\` as chat messages, \`reward_model.ground_truth\` the hidden answer, for diagnostics and validation only; \`extra_info.index\` the item's index in the app) |
| \`${CLUSTER_FILES.launch}\` | \`python3 -m verl.trainer.main_ppo\` with the run's settings as verl's keys; the settings verl has no counterpart for are listed in it as comments |
| \`${CLUSTER_FILES.rewardFunction}\` | the reward (\`custom_reward_function\`, batch reward manager): the majority vote of each prompt's ${config.votes} responses, or the label a person reviewed |
| \`${CLUSTER_FILES.reviewedLabels}\` | reviewed labels by \`extra_info.index\`; the app rewrites it when you review the imported run, and the reward function re-reads it when it changes |
| \`${CLUSTER_FILES.manifest}\` | what the import needs: the run's settings, model and dataset |
| \`verl/\` | what verl writes: \`metrics.jsonl\` (file logger), \`rollouts/<step>.jsonl\` (rollout dump), \`checkpoints/\` |

## Install (on the cluster)

verl with vLLM, e.g. \`pip install verl[vllm]\` (see verl's installation guide), and Ray across the nodes.
${config.method === 'ttrl' ? '' : `This run's method (${config.method}) may need TTRL's fork of verl (\`git clone -b urlvr-dev https://github.com/PRIME-RL/TTRL\`, then \`pip install -e TTRL/verl\`): \`launch.sh\` says so at its top.\n`}
## Launch

Copy this folder to the cluster (keep it where the app can read it back, e.g. a shared file
system, or copy \`verl/\` back later), then on the head node:

    MODEL=/path/to/model ./launch.sh                         # the run used: ${model}
    GPUS_PER_NODE=8 NODES=2 MODEL=Qwen/Qwen2.5-Math-7B ./launch.sh trainer.val_before_train=False

Any further verl override can follow the script's name.

## Bring it back

    autodidact cluster import ${'<this folder>'}            # what is there now
    autodidact cluster import ${'<this folder>'} --follow   # and keep reading as verl writes

The run appears in the app's runs list as an external run: charts, the inspector and reviews work
as for any run (it cannot be resumed from the app). A label you review there is written to
\`${CLUSTER_FILES.reviewedLabels}\`; a cluster run reading this folder uses it from its next step
(copy the file to the cluster if the folder is not shared).

verl opens its metrics file anew when it starts: resuming the cluster run from a checkpoint
rewrites \`verl/metrics.jsonl\` from the resumed step on; steps already imported stay in the app.

The cluster's answer extraction is the app's (boxed, "the answer is", \`####\`, last number, choice
letters); answers count as the same vote when equal as numbers or as normalised text (the app
also compares them as math expressions).
${warnings.length ? `\n## Warnings\n\n${warnings.map((w) => `- ${w}`).join('\n')}\n` : ''}`;
}
