// The data commands as a user runs them (node bin/autodidact.js ... with AUTODIDACT_HOME in a
// temporary folder): datasets import / list, runs, show and export, their exit codes and errors.
// Acceptance 4: importing a file with a malformed line names the line and leaves the database
// unchanged.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, deleteDataset, openDatabase, recordStep } from '../../main/db/index.ts';
import { databasePath } from '../../main/runs/home.ts';
import { tempDir } from './db/helpers.ts';
import { type CliResult, runCli } from '../helpers/cli.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = path.join(ROOT, 'test/fixtures/datasets');
const tmp = tempDir('autodidact-cli-');
const HOME = tmp.file('home');

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, { cwd: tmp.dir, env: { AUTODIDACT_HOME: HOME } });
}

/** Every row of the dataset tables, to show an import changed nothing. */
function snapshot(): unknown {
  const db = openDatabase(databasePath(HOME));
  try {
    return {
      datasets: db.sql.prepare('SELECT * FROM datasets ORDER BY id').all(),
      items: db.sql.prepare('SELECT * FROM dataset_items ORDER BY dataset_id, idx').all(),
    };
  } finally {
    db.close();
  }
}

afterAll(() => tmp.remove());

describe('the data folder', () => {
  it('is the one chosen in the app’s Settings when AUTODIDACT_HOME is not set, so a terminal’s runs show in the app', async () => {
    // The per-user settings file the desktop app and web mode write (Electron's userData on Linux: $XDG_CONFIG_HOME/Autodidact).
    const xdg = tmp.file('xdg');
    const chosen = tmp.file('chosen-data-folder');
    fs.mkdirSync(path.join(xdg, 'Autodidact'), { recursive: true });
    fs.writeFileSync(path.join(xdg, 'Autodidact', 'config.json'), JSON.stringify({ dataFolder: chosen, defaultDevice: 'auto', threads: null }));
    const r = await runCli(['datasets', 'import', path.join(FIXTURES, 'questions.jsonl')], {
      cwd: tmp.dir,
      env: { AUTODIDACT_HOME: '', XDG_CONFIG_HOME: xdg, HOME: tmp.file('user-home') },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(fs.existsSync(databasePath(chosen))).toBe(true);
    expect(fs.existsSync(databasePath(path.join(xdg, 'Autodidact')))).toBe(false);
  });
});

describe('autodidact datasets', () => {
  it('imports a JSONL file into the database in AUTODIDACT_HOME', async () => {
    const r = await cli(['datasets', 'import', path.join(FIXTURES, 'questions.jsonl')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/imported dataset "questions" \(id 1\): 3 train \+ 0 eval items, 2 with an answer/);
    expect(fs.existsSync(path.join(HOME, 'autodidact.db'))).toBe(true);
  });

  it('imports a CSV with a name, explicit fields and an evaluation share', async () => {
    const r = await cli(['datasets', 'import', path.join(FIXTURES, 'problems.csv'), '--name', 'probs', '--eval-fraction', '0.5', '--json']);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as { name: string; itemCount: number; train: number; eval: number };
    expect(d.name).toBe('probs');
    expect(d.train + d.eval).toBe(d.itemCount);
    expect(d.eval).toBe(Math.round(d.itemCount * 0.5));
  });

  it('refuses a file with a malformed line, naming FILE:LINE, and leaves the database unchanged', async () => {
    const before = snapshot();
    const file = path.join(FIXTURES, 'bad-json.jsonl');
    const r = await cli(['datasets', 'import', file, '--name', 'broken']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:4:`);
    expect(r.stderr).not.toMatch(/AUTODIDACT_DEBUG/);
    expect(snapshot()).toEqual(before);

    const csv = path.join(FIXTURES, 'short-row.csv');
    const r2 = await cli(['datasets', 'import', csv]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(new RegExp(`${csv.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:`));
    expect(snapshot()).toEqual(before);
  });

  it('refuses a duplicate name and explains usage mistakes', async () => {
    const dup = await cli(['datasets', 'import', path.join(FIXTURES, 'questions.jsonl')]);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain(`A dataset named "questions" already exists; give this one another name with --name NAME ('autodidact datasets list' lists them)`);
    // A folder is said to be one (not "cannot tell the format from the extension").
    const folder = tmp.file('a-folder');
    fs.mkdirSync(folder);
    const notFile = await cli(['datasets', 'import', folder]);
    expect(notFile.code).toBe(1);
    expect(notFile.stderr).toMatch(/a-folder: is a folder, not a file/);
    const missing = await cli(['datasets', 'import']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing FILE/);
    const both = await cli(['datasets', 'import', 'x.jsonl', '--eval-fraction', '0.1', '--eval-file', 'y.jsonl']);
    expect(both.code).toBe(2);
    const group = await cli(['datasets']);
    expect(group.code).toBe(2);
    expect(group.stdout).toMatch(/datasets import[\s\S]*datasets list/);
    expect((await cli(['datasets', 'import', '--help'])).stdout).toMatch(/^usage: autodidact datasets import FILE/);
  });

  it('refuses a Latin-1 file naming FILE:LINE and the encoding, imports it with --encoding; refuses a FIFO at once', async () => {
    const before = snapshot();
    const file = tmp.file('accents.csv');
    fs.writeFileSync(file, Buffer.from('question,answer\nCaf\xe9 au lait?,yes\n', 'latin1'));
    const refused = await cli(['datasets', 'import', file]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${file}:2: the bytes E9 20 61 75 at column 4 are not valid UTF-8`);
    expect(refused.stderr).toMatch(/legacy encoding such as Windows-1252 or Latin-1/);
    expect(snapshot()).toEqual(before);
    const fifo = tmp.file('pipe.jsonl');
    execFileSync('mkfifo', [fifo]);
    const pipe = await cli(['datasets', 'import', fifo]);
    expect(pipe.code).toBe(1);
    expect(pipe.stderr).toContain(`${fifo}: is a named pipe (FIFO), not a regular file`);
    expect(snapshot()).toEqual(before);
    const r = await cli(['datasets', 'import', file, '--encoding', 'latin1', '--json']);
    expect(r.stderr).toBe('');
    const d = JSON.parse(r.stdout) as { id: number; itemCount: number; fieldMapping: { encoding?: string } };
    expect(d.itemCount).toBe(1);
    expect(d.fieldMapping.encoding).toBe('latin1');
    const db = openDatabase(databasePath(HOME));
    try {
      expect(db.sql.prepare('SELECT prompt FROM dataset_items WHERE dataset_id = ?').get(d.id)).toEqual({ prompt: 'Café au lait?' });
      // The later tests count on the datasets above only.
      deleteDataset(db, d.id);
    } finally {
      db.close();
    }
  });

  it('shows a file\'s control characters escaped in its messages, never raw on the terminal', async () => {
    const file = tmp.file('escapes.jsonl');
    // An OSC sequence that would retitle the terminal, and a CSI that would clear it.
    fs.writeFileSync(file, '{"prompt": "fine"}\n\x1b]0;pwned\x07\x1b[2J{"prompt": 1\n');
    const r = await cli(['datasets', 'import', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}:2: invalid JSON`);
    expect(r.stderr).toContain("Unexpected token '\\x1b', \"\\x1b]0;pwned\\x07\"");
    // eslint-disable-next-line no-control-regex -- no control character may reach the terminal
    expect(r.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
  });

  it('lists the datasets', async () => {
    const r = await cli(['datasets', 'list', '--json']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { name: string }[]).map((d) => d.name)).toEqual(['probs', 'questions']);
    expect((await cli(['datasets', 'list'])).stdout).toMatch(/questions\s+3\s+2/);
  });
});

describe('autodidact runs / show / export', () => {
  beforeAll(() => {
    const db = openDatabase(databasePath(HOME));
    try {
      const run = createRun(db, { name: 'demo', method: 'ttrl', model: 'tiny-chars', dataset: 'questions', datasetId: 1, config: { steps: 5 } });
      for (const step of [0, 1]) {
        recordStep(db, run.id, step, {
          metrics: { 'train/majority_ratio': 0.5 + step / 4 },
          rollouts: [{ itemIdx: 0, prompt: 'What is 2+3?', pseudoLabel: '5', samples: [{ text: '5', extractedAnswer: '5', reward: 1, advantage: 0, usedForTraining: true }] }],
          ...(step === 1 && { checkpoints: [{ kind: 'best' as const, path: '/ck/1', metric: 0.5 }], alerts: [{ kind: 'collapse', message: 'entropy collapsed' }] }),
        });
      }
    } finally {
      db.close();
    }
  });

  it('lists runs as a table and as JSON', async () => {
    const table = await cli(['runs']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^id\s+name\s+status/);
    expect(table.stdout).toMatch(/1\s+demo\s+queued\s+ttrl\s+tiny-chars\s+questions\s+1\/5/);
    const json = JSON.parse((await cli(['runs', '--json'])).stdout) as { id: number; currentStep: number }[];
    expect(json).toMatchObject([{ id: 1, currentStep: 1 }]);
  });

  it('tags a run and untags it; runs lists the tags and filters by one (issue 15.9)', async () => {
    const tagged = await cli(['runs', 'tag', 'demo', 'baseline', ' lr-sweep ']);
    expect(tagged).toMatchObject({ code: 0, stdout: 'run 1 "demo": tags baseline, lr-sweep\n' });
    expect((await cli(['runs'])).stdout).toMatch(/\s+tags\n.*\s+baseline,lr-sweep\n$/s);
    expect((await cli(['runs', '--tag', 'baseline'])).stdout).toMatch(/^1\s+demo/m);
    expect((await cli(['runs', '--tag', 'other'])).stdout).toBe('no run has the tag "other"\n');
    expect((await cli(['show', '1'])).stdout).toMatch(/^ {2}tags baseline, lr-sweep$/m);
    expect(await cli(['runs', 'tag', '1', 'lr-sweep', '--untag'])).toMatchObject({ code: 0, stdout: 'run 1 "demo": tags baseline\n' });
    const json = JSON.parse((await cli(['runs', '--json'])).stdout) as { tags: string[] }[];
    expect(json[0].tags).toEqual(['baseline']);
    // Mistakes are named: no tag, a tag over the length, an unknown run.
    expect(await cli(['runs', 'tag', '1'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/missing TAG/) });
    expect(await cli(['runs', 'tag', '1', 'x'.repeat(41)])).toMatchObject({ code: 1, stderr: expect.stringMatching(/is 41 characters long; a tag has at most 40/) });
    expect(await cli(['runs', 'tag', '99', 'x'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/no run "99"/) });
  });

  it('shows a run by id or name', async () => {
    const r = await cli(['show', 'demo']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/run 1 "demo": queued/);
    expect(r.stdout).toMatch(/train\/majority_ratio\s+0\.75\s+\(step 1\)/);
    expect(r.stdout).toMatch(/best checkpoint: step 1, metric 0\.5: \/ck\/1/);
    expect(r.stdout).toMatch(/step 1 \[collapse\] entropy collapsed/);
    // A run whose best score is the base model's (step 0): no checkpoint holds it, and show says so.
    const db = openDatabase(databasePath(HOME));
    try {
      const base = createRun(db, { name: 'base-best', method: 'ttrl', model: 'tiny-chars', dataset: 'elsewhere', config: { steps: 5 } });
      recordStep(db, base.id, 0, { metrics: { 'val/maj@16': 0.4375 }, best: 0.4375 });
      recordStep(db, base.id, 1, { metrics: { 'train/majority_ratio': 0.5 } });
    } finally {
      db.close();
    }
    expect((await cli(['show', 'base-best'])).stdout).toContain("best checkpoint: none (the best score, 0.4375, is step 0's: the base model, which no checkpoint holds)");
    const json = JSON.parse((await cli(['show', '1', '--json'])).stdout) as { run: { config: unknown }; alerts: unknown[] };
    expect(json.run.config).toEqual({ steps: 5 });
    expect(json.alerts).toHaveLength(1);
    const missing = await cli(['show', '99']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no run "99"/);
  });

  it('exports metrics.csv, samples.jsonl and completions.parquet', async () => {
    const out = tmp.file('exported');
    const r = await cli(['export', '1', '--out', out]);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(out, 'metrics.csv'), 'utf8')).toBe('step,train/majority_ratio\n0,0.5\n1,0.75\n');
    const lines = fs.readFileSync(path.join(out, 'samples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ step: 0, prompt: 'What is 2+3?', pseudo_label: '5', label: '5', answer: '5', reward: 1, used: true });
    expect(r.stdout).toContain(`wrote ${path.join(out, 'completions.parquet')}`);
    expect(fs.readFileSync(path.join(out, 'completions.parquet')).subarray(0, 4).toString()).toBe('PAR1');
    expect((await cli(['export', '1', '--layout', 'tall'])).code).toBe(2);
  });

  it('says so when the data folder is a file', async () => {
    const file = tmp.file('home-is-a-file');
    fs.writeFileSync(file, 'x');
    const r = await runCli(['runs'], { cwd: tmp.dir, env: { AUTODIDACT_HOME: file } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`autodidact runs: the data folder ${file} (AUTODIDACT_HOME) is a file, not a folder; point AUTODIDACT_HOME at a folder (one that does not exist yet is created)\n`);
  });

  it('says why an export folder cannot be made, at once (a file in the way, a place no folder can be)', async () => {
    const file = tmp.file('a-file');
    fs.writeFileSync(file, 'x');
    const blocked = await cli(['export', '1', '--out', path.join(file, 'sub')]);
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toBe(`autodidact export: --out ${path.join(file, 'sub')}: ${file} is a file, not a folder\n`);
    // Node's recursive mkdir loops for ever under Linux's /proc; a level at a time it fails at once.
    if (process.platform !== 'linux') return;
    const proc = await cli(['export', '1', '--out', '/proc/autodidact-export']);
    expect(proc.code).toBe(1);
    expect(proc.stderr).toBe('autodidact export: --out /proc/autodidact-export: cannot create the folder /proc/autodidact-export: this file system does not allow a folder there\n');
  });
});

describe('autodidact datasets archive / restore / delete', () => {
  it('refuses to delete a dataset a run used, naming it, and archives and restores it instead', async () => {
    const before = snapshot();
    const refused = await cli(['datasets', 'delete', 'questions']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Dataset "questions" is used by 1 run (#1 "demo")');
    expect(refused.stderr).toContain('Archive it instead');
    expect(snapshot()).toEqual(before);

    const archived = await cli(['datasets', 'archive', 'questions']);
    expect(archived.code).toBe(0);
    expect(archived.stdout).toContain('archived dataset "questions" (id 1)');
    const active = JSON.parse((await cli(['datasets', 'list', '--json'])).stdout) as { name: string }[];
    expect(active.map((d) => d.name)).toEqual(['probs']);
    expect((await cli(['datasets', 'list', '--archived'])).stdout).toMatch(/questions\s+3\s+2\s+.*\(archived \d{4}-\d\d-\d\d\)/);
    // The run that used it still reads its dataset.
    expect((await cli(['show', 'demo'])).code).toBe(0);

    expect((await cli(['datasets', 'restore', '1'])).stdout).toContain('restored dataset "questions" (id 1)');
    expect(snapshot()).toEqual(before);
  });

  it('deletes a dataset nothing depends on, and names a missing one', async () => {
    const r = await cli(['datasets', 'delete', 'probs']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/deleted dataset "probs" \(id 2, \d+ items\)/);
    const missing = await cli(['datasets', 'delete', 'probs']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`no dataset "probs"`);
  });
});
