// `autodidact run`: train a model on unlabeled prompts with a label-free method (the registry's:
// TTRL, SRT, ...), recording every step in the database the app reads; `--resume RUN` continues a
// run from its last checkpoint.
import fs from 'node:fs';
import path from 'node:path';
import { knownModel } from '../api/models.ts';
import { analysisFailureNote } from '../engine/agent/records.ts';
import { describeRunConfig } from '../engine/rl/config.ts';
import { DEFAULT_METHOD, listMethods } from '../engine/rl/methods/registry.ts';
import { findRun } from '../runs/report.ts';
import { restartRefusal, stepsLostOnResume } from '../runs/resume.ts';
import { RunSetupError, createRecordedRun, executeRun, parseStoredConfig } from '../runs/start.ts';
import { UsageError, command, intFlag } from './args.ts';
import { withDatabase } from './db.ts';
import { writeLine } from './jsonl.ts';
import { Progress } from './progress.ts';

/** "votes=8" → ["votes", 8]; values are JSON where they parse as JSON, else text. */
function setting(kv: string): [string, unknown] {
  const eq = kv.indexOf('=');
  if (eq <= 0) throw new UsageError(`--set expects KEY=VALUE, got "${kv}"`);
  const raw = kv.slice(eq + 1);
  try {
    return [kv.slice(0, eq), JSON.parse(raw)];
  } catch {
    return [kv.slice(0, eq), raw];
  }
}

/** A --config file's settings (a JSON object). */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`--config: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new RunSetupError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new RunSetupError(`${file}: expected a JSON object of settings`);
  return v as Record<string, unknown>;
}

const methodIds = () => listMethods().map((m) => m.id).join('|');

export const runCommand = command({
  name: 'run',
  summary: 'Train a model on rewards it derives itself from unlabeled prompts (a label-free method), recording every step in the database.',
  get synopsis() {
    return `--method ${methodIds()} --model NAME|DIR --dataset NAME|FILE [--steps N] [options] | --config run.json | --resume RUN`;
  },
  flags: {
    method: {
      type: 'string',
      get value() {
        return methodIds();
      },
      description: `label-free method (default ${DEFAULT_METHOD}; see Methods below)`,
    },
    model: { type: 'string', value: 'NAME|DIR', description: 'a built-in or imported model name, or a Hugging Face model folder' },
    dataset: { type: 'string', value: 'NAME|FILE', description: `an imported dataset, a JSONL/CSV/TSV file (imported first), "arithmetic" (built-in generator), or an environment's tasks for --method agent: household or shop, optionally -easy|-medium|-hard` },
    steps: { type: 'string', value: 'N', description: 'training steps (default 40)' },
    difficulty: { type: 'string', value: '1-4', description: 'difficulty of the built-in arithmetic dataset (default 2)' },
    device: { type: 'string', value: 'DEVICE', description: 'cpu, webgpu, cuda, or auto (default cpu)' },
    name: { type: 'string', value: 'TEXT', description: 'run name (default: method-model-dataset)' },
    config: { type: 'string', value: 'FILE', description: 'JSON object of settings (any below, and model, dataset, device, difficulty, name); flags override it' },
    set: { type: 'string', value: 'KEY=VALUE', multiple: true, description: 'one setting, e.g. --set votes=8 (repeatable; VALUE is JSON where it parses as JSON, else text; a list setting takes a JSON list, or one plain item)' },
    resume: { type: 'string', value: 'RUN', description: 'continue run RUN (id or name) from its last checkpoint, with its stored settings' },
    restart: { type: 'boolean', description: 'with --resume, for a run with no checkpoint yet: train it again from step 0, replacing its recorded steps (refused without this)' },
  },
  get details() {
    const described = describeRunConfig();
    const line = (d: (typeof described)[number]) => `  ${d.name} (${JSON.stringify(d.default)}): ${d.description}`;
    const methods = listMethods().flatMap((m) => {
      const changed = Object.entries(m.defaults ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
      return [
        `  ${m.id}: ${m.label}. ${m.description}${changed.length ? ` Defaults: ${changed.join(', ')}.` : ''}`,
        ...described.filter((d) => d.method === m.id).map((d) => `  ${line(d)}`),
      ];
    });
    return [
      'The run is recorded in the database of the data folder (AUTODIDACT_HOME, else the one chosen in the app\'s Settings, else the app\'s folder),',
      'its checkpoints under <data folder>/runs/<id>/. Progress goes to stderr: a bar on a terminal,',
      'one line per step otherwise. Ctrl-C stops after the current step, with a checkpoint there (status "stopped"); a',
      'stopped, failed or killed run continues with --resume: steps after its last checkpoint are',
      'deleted and trained again (a run with no checkpoint yet starts over, only with --restart). Stop or Pause in the app (or `autodidact serve`) on the same data',
      'folder reaches this process too: it ends after the current step, with a checkpoint there.',
      'Alerts (collapse, validation drop, weak learning signal) are printed',
      'as warnings. The signal check looks at every step\'s rollout before its update (step 1: a',
      'pre-flight check); with signalAction=stop a weak signal stops the run there (status "stopped",',
      'exit status 3), and --resume trains on past the alert.',
      '',
      'Methods (--method ID, each with its own settings):',
      ...methods,
      '',
      'Settings (--set KEY=VALUE, or keys of --config):',
      ...described.filter((d) => d.method === undefined).map(line),
    ].join('\n');
  },
  async run(values) {
    const resumeRef = values.resume;
    if (resumeRef !== undefined) {
      const extra = (['method', 'model', 'dataset', 'steps', 'difficulty', 'device', 'name', 'config', 'set'] as const).filter((k) => values[k] !== undefined);
      if (extra.length) throw new UsageError(`--resume continues with the run's stored settings; drop ${extra.map((k) => `--${k}`).join(', ')}`);
    } else if (values.restart) throw new UsageError('--restart goes with --resume RUN');
    return withDatabase(async (db, home) => {
      let run;
      if (resumeRef !== undefined) {
        run = findRun(db, resumeRef);
        // A completed run or one imported from a cluster is refused for what it is (executeRun).
        const lost = values.restart || run.status === 'completed' || run.kind === 'external' ? null : stepsLostOnResume(db, run);
        if (lost !== null) throw new RunSetupError(restartRefusal(run, lost, `Add --restart to do so, or leave it and start a new run with its settings (autodidact show ${run.id} lists them).`));
      } else {
        const input: Record<string, unknown> = values.config ? readConfigFile(values.config) : {};
        for (const k of ['method', 'model', 'dataset', 'device', 'name'] as const) if (values[k] !== undefined) input[k] = values[k];
        // A model added with `autodidact models add` is named as Models lists it (a folder of that name here comes first).
        if (typeof input.model === 'string' && !input.model.includes(path.sep) && !fs.existsSync(input.model)) input.model = knownModel(db, input.model) ?? input.model;
        if (values.steps !== undefined) input.steps = intFlag(values, 'steps', 0, 1);
        if (values.difficulty !== undefined) input.difficulty = intFlag(values, 'difficulty', 0, 1, 4);
        // A list setting given one plain value (--set stopStrings=Q:) is that one item; more take JSON.
        const lists = new Set(describeRunConfig().filter((d) => Array.isArray(d.default)).map((d) => d.name));
        for (const kv of values.set ?? []) {
          const [k, v] = setting(kv);
          input[k] = lists.has(k) && typeof v === 'string' ? [v] : v;
        }
        // The one check of the run's settings; createRecordedRun refuses what does not fit the
        // model (or announces how long prompts are handled) before it records the run.
        // A problem is named by where its settings came from: the file, or the file with --set on top.
        const where = values.config === undefined ? 'run settings' : values.set?.length ? `${values.config} with --set` : values.config;
        const { config, target, name } = parseStoredConfig(input, where);
        const created = await createRecordedRun(db, home, config, target, name);
        for (const note of created.notes) process.stderr.write(`${note}\n`);
        run = created.run;
      }
      const total = (run.config as { steps: number }).steps;
      let progress: Progress | null = null;
      const controller = new AbortController();
      // Ctrl-C finishes the step in progress and saves a checkpoint there (nothing trained is
      // lost); a second drops that step and stops at once; a third quits.
      let interrupts = 0;
      const onSigint = () => {
        interrupts++;
        if (interrupts === 1) progress?.note('interrupted: stopping after the current step, with a checkpoint there (Ctrl-C again to stop now, dropping that step; resume with --resume)');
        else if (interrupts === 2) {
          progress?.note('interrupted again: stopping now, the step in progress dropped');
          controller.abort();
        } else process.exit(130);
      };
      process.on('SIGINT', onSigint);
      try {
        const result = await executeRun(db, home, run, resumeRef !== undefined, {
          signal: controller.signal,
          stopRequested: () => interrupts > 0,
          onStart: (startAfter, r) => {
            process.stderr.write(`${resumeRef !== undefined ? 'resuming' : 'started'} run ${r.id} "${r.name}"${startAfter ? ` after step ${startAfter}` : ''}\n`);
            progress = new Progress({ total, valEvery: (run.config as { valEvery: number }).valEvery });
          },
          onStep: (record) => {
            for (const a of record.alerts) progress?.note(`warning: step ${record.step}: ${a.kind}: ${a.message}`);
            const analysis = analysisFailureNote(record.step, record.groups.flatMap((g) => g.samples.map((s) => s.episode)));
            if (analysis) progress?.note(`warning: ${analysis}`);
            progress?.update(record.step, record.metrics);
          },
          onProgress: (p) => progress?.phase(p.phase),
          onWait: (message) => (progress ? progress.note(message) : process.stderr.write(`${message}\n`)),
        });
        // TS cannot see the assignment inside the callback.
        (progress as Progress | null)?.finish();
        const r = result.run;
        if (result.requestedBy) {
          const by = result.requestedBy;
          process.stderr.write(`${r.status} at the request of process ${by.pid} (the app or another terminal) after step ${result.lastStep}, with a checkpoint there; continue with 'autodidact run --resume ${r.id}'\n`);
        }
        const best = result.best ? `, best ${result.best.metric} ${Number(result.best.value.toPrecision(4))} at step ${result.best.step}` : '';
        await writeLine(`run ${r.id} ${r.status} at step ${result.lastStep}/${total}${best}`);
        if (result.signalStop) {
          process.stderr.write(`${r.error}\n`);
          return 3;
        }
        return result.aborted || (interrupts > 0 && r.status === 'stopped') ? 130 : 0;
      } finally {
        (progress as Progress | null)?.finish();
        process.off('SIGINT', onSigint);
      }
    });
  },
});
