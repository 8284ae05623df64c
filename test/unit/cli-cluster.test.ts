// `autodidact cluster export` and `autodidact cluster import` as a user runs them (bin/autodidact.js
// with AUTODIDACT_HOME in a temporary folder): the folder written, verl's output (test/fixtures/verl)
// brought back, a re-import, a malformed line named by file and line, and a resume refused.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, importDataset, listSteps, openDatabase } from '../../main/db/index.ts';
import { databasePath } from '../../main/runs/home.ts';
import { type CliResult, ROOT, runCli } from '../helpers/cli.ts';
import { tempDir } from './db/helpers.ts';

const tmp = tempDir('autodidact-cli-cluster-');
const HOME = tmp.file('home');
const OUT = tmp.file('cluster-run');
const FIXTURES = path.join(ROOT, 'test/fixtures/verl');
const cli = (args: string[]): Promise<CliResult> => runCli(args, { cwd: tmp.dir, env: { AUTODIDACT_HOME: HOME } });

beforeAll(() => {
  fs.mkdirSync(HOME, { recursive: true });
  const db = openDatabase(databasePath(HOME));
  const ds = importDataset(db, { name: 'arith' }, [
    { prompt: 'What is 2+3?', answer: '5' },
    { prompt: 'What is 4*2?', answer: '8' },
    { prompt: 'What is 10-7?', answer: '3' },
    { prompt: 'What is 6/2?', answer: '3' },
    { prompt: 'What is 9+1?', answer: '10', split: 'eval' },
  ]);
  createRun(db, { name: 'local', method: 'ttrl', model: 'tiny-chars', dataset: 'arith', datasetId: ds.id, config: { method: 'ttrl', model: 'tiny-chars', dataset: 'arith', steps: 3, votes: 4, trainSamples: 4, valSamples: 4, voteTies: 'first' } });
  db.close();
});
afterAll(() => tmp.remove());

describe('autodidact cluster', () => {
  it('exports a run, imports what verl wrote, and a second import adds nothing', async () => {
    const ex = await cli(['cluster', 'export', 'local', '--out', OUT]);
    expect(ex.stderr).toBe('');
    expect(ex.code).toBe(0);
    expect(ex.stdout).toContain(`wrote ${path.join(OUT, 'data/train.parquet')}`);
    expect(ex.stdout).toContain('4 training prompts, 1 validation prompts');
    expect(fs.existsSync(path.join(OUT, 'launch.sh'))).toBe(true);

    fs.copyFileSync(path.join(FIXTURES, 'metrics.jsonl'), path.join(OUT, 'verl/metrics.jsonl'));
    for (const s of [1, 2, 3]) fs.copyFileSync(path.join(FIXTURES, `rollouts/${s}.jsonl`), path.join(OUT, `verl/rollouts/${s}.jsonl`));
    const im = await cli(['cluster', 'import', OUT]);
    expect(im.stderr).toBe('');
    expect(im.code).toBe(0);
    expect(im.stdout).toMatch(/^run 2 step 1: \d+ metrics, 2 prompts, 8 responses$/m);
    expect(im.stdout).toMatch(/run 2 "local \(verl\)" \(external\): 4 step\(s\) imported, now at step 3, completed/);

    const again = await cli(['cluster', 'import', OUT]);
    expect(again.stdout).toMatch(/0 step\(s\) imported, 4 already there/);
    const runs = await cli(['runs', '--json']);
    expect((JSON.parse(runs.stdout) as { id: number; kind: string }[]).map((r) => [r.id, r.kind])).toEqual([
      [2, 'external'],
      [1, 'local'],
    ]);
  });

  it('refuses to resume the imported run, and names a malformed line without storing any of it', async () => {
    const resume = await cli(['run', '--resume', '2']);
    expect(resume.code).toBe(1);
    expect(resume.stderr).toMatch(/Run 2 \("local \(verl\)"\) was trained by verl on a cluster and imported; it cannot resume here/);

    const dir = tmp.file('broken');
    expect((await cli(['cluster', 'export', '1', '--out', dir])).code).toBe(0);
    fs.writeFileSync(path.join(dir, 'verl/metrics.jsonl'), '{"step":0,"data":{}}\n{"step":1,"data":{"x":1}\n{"step":2,"data":{}}\n');
    const bad = await cli(['cluster', 'import', dir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${path.join(dir, 'verl/metrics.jsonl')}:2: not a JSON line`);
    expect(bad.stderr).not.toContain('AUTODIDACT_DEBUG');
    const db = openDatabase(databasePath(HOME));
    try {
      expect(listSteps(db, 3)).toEqual([]);
    } finally {
      db.close();
    }

    const none = await cli(['cluster', 'import', tmp.dir]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/has no autodidact-cluster\.json: import a folder written by 'autodidact cluster export'/);
  });
});
