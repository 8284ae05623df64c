// `autodidact cluster export` and `autodidact cluster import`: hand a run to verl on a cluster,
// and bring its metrics and rollouts back (the work is in main/cluster/).
import fs from 'node:fs';
import path from 'node:path';
import { exportForVerl } from '../cluster/export.ts';
import { importClusterRun } from '../cluster/import.ts';
import { CLUSTER_FILES } from '../cluster/launch.ts';
import { findRun } from '../runs/report.ts';
import { UsageError, command, intFlag, positionalArgs } from './args.ts';
import { withDatabase } from './db.ts';
import { writeLine } from './jsonl.ts';
import { readConfigFile } from './run.ts';

export const clusterExportCommand = command({
  name: 'cluster export',
  summary: 'Write a run (or a run configuration file) as a folder verl trains from on a cluster.',
  synopsis: 'RUN|CONFIG --out DIR',
  positionals: true,
  flags: {
    out: { type: 'string', value: 'DIR', description: 'folder to write into (created; must not hold a cluster run already)' },
  },
  details: `
RUN is a run id or name; CONFIG a JSON file of run settings (as 'autodidact run --config').
DIR gets:
  ${CLUSTER_FILES.train}, ${CLUSTER_FILES.val}  the dataset in verl's parquet shape (prompt as chat
      messages, data_source, reward_model.ground_truth = the hidden answer for diagnostics and
      validation only, extra_info.index = the item's index here)
  ${CLUSTER_FILES.launch}  python3 -m verl.trainer.main_ppo with the run's settings as verl's keys,
      the settings verl has no counterpart for listed as comments, and the file logger
      (VERL_FILE_LOGGER_PATH=${CLUSTER_FILES.metrics}) and rollout dump (${CLUSTER_FILES.rollouts}) set
  ${CLUSTER_FILES.rewardFunction}  the reward (majority vote, or the reviewed label), returning per
      response the answer, pseudo-label and vote counts into verl's rollout dump
  ${CLUSTER_FILES.reviewedLabels}  labels reviewed in the app, by extra_info.index
  ${CLUSTER_FILES.readme}, ${CLUSTER_FILES.manifest}
Then on the cluster: MODEL=... ./launch.sh; back here: autodidact cluster import DIR [--follow].`,
  async run(values, positionals) {
    const [ref] = positionalArgs(positionals, ['RUN|CONFIG']);
    if (!values.out) throw new UsageError('--out DIR is required (the folder to write the cluster run into)');
    const dir = path.resolve(values.out);
    const isFile = fs.existsSync(ref) && fs.statSync(ref).isFile();
    const result = await withDatabase((db) =>
      exportForVerl(db, isFile ? { configFile: ref, settings: readConfigFile(ref) } : { run: findRun(db, ref) }, dir),
    );
    for (const f of result.files) await writeLine(`wrote ${f}`);
    await writeLine(`${result.trainRows} training prompts, ${result.valRows} validation prompts`);
    for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
    await writeLine(`next: copy ${dir} to the cluster and run MODEL=... ./launch.sh there (see its README.md)`);
    return 0;
  },
});

export const clusterImportCommand = command({
  name: 'cluster import',
  summary: "Bring a cluster run's metrics and rollouts (verl's file logger and rollout dump) into the app as an external run.",
  synopsis: 'DIR [--follow] [--interval SECONDS]',
  positionals: true,
  flags: {
    follow: { type: 'boolean', description: 'keep reading as verl writes, until the run has all its steps (Ctrl-C or Stop in the app ends it)' },
    interval: { type: 'string', value: 'SECONDS', default: '2', description: 'with --follow, how often the files are read' },
  },
  details: `
DIR is a folder written by 'autodidact cluster export' that verl has trained in (or a copy of
it): ${CLUSTER_FILES.metrics} (verl's file logger, {"step": N, "data": {...}} per line) and
${CLUSTER_FILES.rollouts}/<step>.jsonl (verl's rollout dump). The first import creates the run
(kind external); importing again adds the steps that are new, never one twice. A last line still
being written is read at the next import; a malformed line is an error naming its file and line,
and nothing of that import is stored.`,
  async run(values, positionals) {
    const [dir] = positionalArgs(positionals, ['DIR']);
    const seconds = intFlag(values, 'interval', 2, 1, 3600);
    const controller = new AbortController();
    const stop = () => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const summary = await withDatabase((db, home) =>
        importClusterRun(db, dir, {
          home,
          follow: values.follow ?? false,
          pollMs: seconds * 1000,
          signal: controller.signal,
          onPass(r, run) {
            for (const s of r.recorded) process.stdout.write(`run ${run.id} step ${s.step}: ${s.metrics} metrics, ${s.rollouts} prompts, ${s.samples} responses\n`);
          },
        }),
      );
      const { run } = summary;
      await writeLine(`run ${run.id} "${run.name}" (external): ${summary.steps} step(s) imported${summary.skipped ? `, ${summary.skipped} already there` : ''}, now at step ${run.currentStep ?? '-'}, ${run.status}`);
      if (summary.waiting.length) await writeLine(`waiting for the rollout dump of step(s) ${summary.waiting.join(', ')} (still being written): import again to read them`);
      return 0;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  },
});
