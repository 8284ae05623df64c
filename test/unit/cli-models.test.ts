// `autodidact models add | list | remove` as a user runs them: how web mode gets a model folder
// (its page never names a path on the server). The folder is checked as the app checks it, and
// the app's API lists what the command added.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CliResult, ROOT, runCli } from '../helpers/cli.ts';
import { tempDir } from './db/helpers.ts';
import { createHarness } from './api/handlers-harness.ts';

const tmp = tempDir('autodidact-cli-models-');
const HOME = tmp.file('home');
const LLAMA = path.join(ROOT, 'test/fixtures/models/llama3');

const cli = (args: string[]): Promise<CliResult> => runCli(args, { cwd: tmp.dir, env: { AUTODIDACT_HOME: HOME } });

afterAll(() => tmp.remove());

describe('autodidact models', () => {
  it('adds a folder, which the app then lists and a run can name; lists and removes it', async () => {
    const added = await cli(['models', 'add', LLAMA, '--name', 'my-llama', '--json']);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ name: 'my-llama', path: LLAMA, architecture: 'llama', builtin: false, error: null });

    // The web app on the same data folder sees it and takes it by name.
    const web = createHarness(HOME);
    try {
      expect((await web.call('models.list', {})).find((m) => m.name === 'my-llama')).toMatchObject({ path: LLAMA, error: null });
      expect((await web.call('runs.previewPrompt', { model: 'my-llama', prompt: 'hi' })).prompt).toBe('hi');
    } finally {
      web.close();
    }

    const list = await cli(['models', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/tiny-chars .*\(built-in\)/);
    expect(list.stdout).toMatch(new RegExp(`my-llama +llama .*${LLAMA.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

    const removed = await cli(['models', 'remove', 'my-llama']);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toMatch(/removed model "my-llama".*its files stay/);
    expect(fs.existsSync(path.join(LLAMA, 'config.json'))).toBe(true);
    const after = JSON.parse((await cli(['models', 'list', '--json'])).stdout) as { name: string }[];
    expect(after.map((m) => m.name)).not.toContain('my-llama');
    expect((await cli(['models', 'remove', 'my-llama'])).code).toBe(1);
  });

  it('a run names an added model by its name', async () => {
    const folder = tmp.file('downloads/good');
    fs.cpSync(path.join(ROOT, 'resources/models/tiny-chars'), folder, { recursive: true });
    expect((await cli(['models', 'add', folder, '--name', 'good'])).code).toBe(0);
    const tiny = ['--dataset', 'arithmetic', '--difficulty', '1', '--steps', '1', '--set', 'promptsPerStep=2', '--set', 'votes=4', '--set', 'trainSamples=2', '--set', 'maxNewTokens=4', '--set', 'valEvery=0'];
    const r = await runCli(['run', '--model', 'good', '--name', 'by-name', ...tiny], { cwd: tmp.dir, env: { AUTODIDACT_HOME: HOME, AUTODIDACT_THREADS: '1' } });
    expect(r.code, r.stderr).toBe(0);
    const shown = JSON.parse((await cli(['show', 'by-name', '--json'])).stdout) as { run: { model: string } };
    expect(shown.run.model).toBe(folder);
    // Added again it is refreshed under its name, never a second entry; a built-in name stays the built-in's.
    expect((await cli(['models', 'add', folder])).code).toBe(0);
    const renamed = await cli(['models', 'add', folder, '--name', 'better']);
    expect(renamed.code).toBe(1);
    expect(renamed.stderr).toContain(`${folder} is already added, as "good"; remove it first ('autodidact models remove good') to add it under another name.`);
    const shadow = await cli(['models', 'add', tmp.file('downloads/good'), '--name', 'tiny-arith']);
    expect(shadow.code).toBe(1);
    expect(JSON.parse((await cli(['models', 'list', '--json'])).stdout).filter((m: { path: string }) => m.path === folder)).toHaveLength(1);
    expect((await cli(['models', 'remove', 'good'])).code).toBe(0);
    const other = tmp.file('downloads/other');
    fs.cpSync(folder, other, { recursive: true });
    const builtinName = await cli(['models', 'add', other, '--name', 'tiny-arith']);
    expect(builtinName.code).toBe(1);
    expect(builtinName.stderr).toContain('"tiny-arith" is the name of a built-in model; give this one another name.');
  }, 60_000);

  it('refuses a folder that cannot load, naming the file and not quoting it', async () => {
    const dir = tmp.file('not-a-model');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), 'root:x:0:0:root:/root:/bin/bash\n');
    const r = await cli(['models', 'add', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('config.json is not valid JSON (line 1, column 1)');
    expect(r.stderr).not.toMatch(/root:x|set AUTODIDACT_DEBUG/);
    const missing = await cli(['models', 'add', tmp.file('nowhere')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/neither a folder nor a built-in model/);
    expect(JSON.parse((await cli(['models', 'list', '--json'])).stdout).map((m: { name: string }) => m.name)).toEqual(['tiny-agent', 'tiny-arith', 'tiny-chars', 'tiny-coder']);
  });
});
