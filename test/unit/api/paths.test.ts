// No request reaches the file system by path (issue 21.4), in web mode and in the desktop app
// alike (the page is untrusted in both): runs name stored datasets and listed models only, and a
// refusal reads the same whether or not a file of that name exists; a model folder or the data
// folder comes from the desktop shell's dialog (a fake picker here) or, in web mode, from the
// command line; errors about a model folder never quote its files. And a preview reads only the
// first PREVIEW_MAX_BYTES of an upload, however large (issue 21.9).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { MAX_UPLOAD_BYTES, PREVIEW_MAX_BYTES } from '../../../contract/index.ts';
import { builtinModelsDir } from '../../../main/engine/model-paths.ts';
import { FakePicker, type Harness, createHarness, datasetTables } from './handlers-harness.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const FIXTURES = path.join(ROOT, 'test/fixtures');

let web: Harness;
beforeAll(() => {
  web = createHarness();
});
afterAll(() => web.close());
afterEach(() => vi.restoreAllMocks());

/** Every file-system call (sync and promise) whose arguments mention one of `paths`, while `fn` runs. */
async function fileCallsNaming(paths: string[], fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const watch = (target: object, names: string[]) => {
    for (const name of names) {
      const original = (target as Record<string, (...a: unknown[]) => unknown>)[name];
      vi.spyOn(target as Record<string, (...a: unknown[]) => unknown>, name).mockImplementation((...args: unknown[]) => {
        if (args.some((a) => typeof a === 'string' && paths.some((p) => a.includes(p)))) seen.push(`${name}(${String(args[0])})`);
        return original.apply(target, args);
      });
    }
  };
  watch(fs, ['existsSync', 'statSync', 'lstatSync', 'readFileSync', 'openSync', 'readdirSync', 'accessSync', 'realpathSync']);
  watch(fsp, ['stat', 'lstat', 'readFile', 'open', 'readdir', 'access']);
  try {
    await fn();
  } finally {
    vi.restoreAllMocks();
  }
  return seen;
}

describe('runs name stored datasets and listed models, never paths', () => {
  it('refuses a dataset path with the same words for a readable file, /etc/shadow and a missing file, reading none', async () => {
    const secret = path.join(web.home, 'secret.csv');
    fs.writeFileSync(secret, 'secret_column,answer\nwhat is 1+1?,2\n');
    const specs = [secret, '/etc/shadow', path.join(web.home, 'missing.csv'), '../../../etc/passwd'];
    const before = datasetTables(web.db);
    const messages: string[] = [];
    const touched = await fileCallsNaming(specs, async () => {
      for (const spec of specs) {
        const e = await web.refused('runs.create', { model: 'tiny-chars', dataset: spec, start: false });
        expect(e.code).toBe('SETUP');
        expect(e.message).not.toMatch(/secret_column/);
        messages.push(e.message.replaceAll(spec, 'SPEC'));
        const preview = await web.refused('runs.previewPrompt', { model: 'tiny-chars', dataset: spec });
        expect(preview.message.replaceAll(spec, 'SPEC')).toBe(messages.at(-1));
      }
    });
    expect(touched).toEqual([]);
    expect(new Set(messages).size).toBe(1);
    // It says how to get a file in.
    expect(messages[0]).toMatch(/autodidact datasets import FILE/);
    expect(messages[0]).toMatch(/autodidact run --dataset FILE/);
    expect(datasetTables(web.db)).toEqual(before);
    expect(await web.call('runs.list', {})).toEqual([]);
  });

  it('refuses a model path with the same words for a model folder, /etc and a missing folder, reading none', async () => {
    const specs = [path.join(FIXTURES, 'models/llama3'), '/etc', path.join(web.home, 'no-such-model'), './resources/models/tiny-chars'];
    const messages: string[] = [];
    const touched = await fileCallsNaming(specs, async () => {
      for (const spec of specs) {
        const e = await web.refused('runs.create', { model: spec, dataset: 'arithmetic', start: false });
        expect(e.code).toBe('SETUP');
        messages.push(e.message.replaceAll(spec, 'SPEC'));
        const preview = await web.refused('runs.previewPrompt', { model: spec, prompt: 'x' });
        expect(preview.message.replaceAll(spec, 'SPEC')).toBe(messages.at(-1));
      }
    });
    expect(touched).toEqual([]);
    expect(new Set(messages).size).toBe(1);
    // Web mode: the command that adds a folder on the server's machine, into this data folder.
    expect(messages[0]).toContain(`AUTODIDACT_HOME=${web.home} autodidact models add FOLDER`);
    expect(await web.call('runs.list', {})).toEqual([]);
  });

  it('takes a built-in model by name or by the path models.list gives, and an added model by name or path', async () => {
    const builtin = path.join(builtinModelsDir(), 'tiny-chars');
    const byName = await web.call('runs.create', { model: 'tiny-chars', dataset: 'arithmetic', difficulty: 1, start: false });
    expect(byName.config.model).toBe('tiny-chars');
    const byPath = await web.call('runs.create', { model: builtin, dataset: 'arithmetic', difficulty: 1, start: false });
    expect(byPath.config.model).toBe(builtin);
    const desktop = createHarness(web.home, { picker: new FakePicker([path.join(FIXTURES, 'models/llama3')]) });
    try {
      const { added } = await desktop.call('models.add', { name: 'my-llama' });
      expect(added).toMatchObject({ name: 'my-llama', path: path.join(FIXTURES, 'models/llama3'), error: null });
    } finally {
      desktop.close();
    }
    const listed = (await web.call('models.list', {})).find((m) => m.name === 'my-llama')!;
    const preview = await web.call('runs.previewPrompt', { model: 'my-llama', prompt: 'hi' });
    expect(preview.prompt).toBe('hi');
    expect((await web.call('runs.previewPrompt', { model: listed.path, prompt: 'hi' })).tokenCount).toBe(preview.tokenCount);
    for (const r of [byName, byPath]) await web.call('runs.delete', { id: r.id });
  });
});

describe('model folders come from the desktop dialog or the command line', () => {
  it('web mode: models.add says to run autodidact models add on the server, and asks nobody', async () => {
    const e = await web.refused('models.add', { name: 'x' });
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toContain(`AUTODIDACT_HOME=${web.home} autodidact models add FOLDER [--name NAME]`);
    // The old request shape (a path) is refused at the boundary.
    expect((await web.refused('models.add', { path: '/etc' })).issues?.map((i) => i.path)).toEqual(['path']);
  });

  it('desktop: adds the folder the person picks; cancelling adds nothing', async () => {
    const picker = new FakePicker([null, path.join(FIXTURES, 'models/qwen3')]);
    const desktop = createHarness(undefined, { picker });
    try {
      expect(await desktop.call('models.add', {})).toEqual({ added: null });
      expect(desktop.events.of('models.changed')).toEqual([]);
      const { added } = await desktop.call('models.add', { name: 'q3' });
      expect(added).toMatchObject({ name: 'q3', architecture: 'qwen3', builtin: false, error: null });
      expect(picker.asked).toEqual(['model', 'model']);
      expect((await desktop.call('models.list', {})).map((m) => m.name)).toContain('q3');
    } finally {
      desktop.close();
    }
  });

  it('a picked folder whose config.json is not JSON is refused without quoting it', async () => {
    const dir = path.join(web.home, 'not-a-model');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), 'root:x:0:0:root:/root:/bin/bash\nsecret:$6$salt$hash:19000:0:99999:7:::\n');
    const desktop = createHarness(web.home, { picker: new FakePicker([dir]) });
    try {
      const e = await desktop.refused('models.add', {});
      expect(e.code).toBe('SETUP');
      expect(e.message).toContain('config.json is not valid JSON (line 1, column 1)');
      expect(e.message).not.toMatch(/root:x|secret|\$6\$/);
    } finally {
      desktop.close();
    }
    // A fault further in is placed by line and column, the text around it left out.
    fs.writeFileSync(path.join(dir, 'config.json'), '{\n  "model_type": "llama",\n  "hidden_size": hunter2\n}\n');
    const again = createHarness(web.home, { picker: new FakePicker([dir]) });
    try {
      const e = await again.refused('models.add', {});
      expect(e.message).toContain('config.json is not valid JSON (line 3, column 18)');
      expect(e.message).not.toMatch(/hunter2/);
    } finally {
      again.close();
    }
  });
});

describe('the data folder', () => {
  it('settings.set takes no path: only null, back to the default', async () => {
    const e = await web.refused('settings.set', { dataFolder: '/tmp/elsewhere' });
    expect(e).toMatchObject({ code: 'BAD_REQUEST', issues: [{ path: 'dataFolder' }] });
    expect(e.message).toMatch(/only null/);
    expect(web.settings.get().dataFolder).toBeNull();
  });

  it('web mode: it cannot be chosen from the page; the message says how serve picks it', async () => {
    const e = await web.refused('settings.chooseDataFolder', {});
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toContain('AUTODIDACT_HOME=FOLDER autodidact serve');
    expect(e.message).toContain(web.home);
  });

  it('desktop: the person picks it in the dialog; cancelling changes nothing', async () => {
    const folder = path.join(web.home, 'picked');
    fs.mkdirSync(folder);
    const picker = new FakePicker([null, folder, path.join(web.home, 'autodidact.db')]);
    const desktop = createHarness(web.home, { picker });
    try {
      expect(await desktop.call('settings.chooseDataFolder', {})).toEqual({ chosen: false, settings: desktop.settings.get() });
      expect(desktop.settings.get().dataFolder).toBeNull();
      expect(await desktop.call('settings.chooseDataFolder', {})).toMatchObject({ chosen: true, settings: { dataFolder: folder } });
      // A picker that gives a file (not a folder) stores nothing.
      expect((await desktop.refused('settings.chooseDataFolder', {})).message).toMatch(/is not a folder/);
      expect(desktop.settings.get().dataFolder).toBe(folder);
      expect(picker.asked).toEqual(['dataFolder', 'dataFolder', 'dataFolder']);
      expect(await desktop.call('settings.set', { dataFolder: null })).toMatchObject({ dataFolder: null });
    } finally {
      desktop.close();
    }
  });
});

describe('datasets.preview reads only the first PREVIEW_MAX_BYTES', () => {
  const LINE = '{"prompt": "What is 1+1?", "answer": "2"}\n';
  /** About `mib` MiB of good lines, then one that is not JSON. */
  const big = (mib: number) => Buffer.concat([Buffer.alloc(Math.floor((mib * 1024 * 1024) / LINE.length) * LINE.length, LINE), Buffer.from('this line is not JSON\n')]);
  const linesIn = (bytes: number) => Math.floor(bytes / LINE.length);

  it('a 100 MB upload: the first lines, flagged partial, the bad last line never read, the event loop never held for long', async () => {
    const bytes = big(100);
    expect(bytes.length).toBeLessThan(MAX_UPLOAD_BYTES);
    const data = bytes.toString('base64');
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const p = await web.call('datasets.preview', { fileName: 'big.jsonl', data });
    // The delay timer records a block only once it runs again after it.
    await new Promise((r) => setTimeout(r, 50));
    delay.disable();
    expect(p).toMatchObject({ partial: true, error: null, total: linesIn(PREVIEW_MAX_BYTES), fields: ['prompt', 'answer'] });
    expect(p.items).toHaveLength(5);
    // Before, the whole file was parsed on this thread (12 s for 200 MB); a 1 MiB preview takes
    // well under a second even on a loaded machine: the bound is generous, the bytes decide.
    expect(delay.max / 1e9).toBeLessThan(5);
    // As text too; and the whole file, imported, does meet the bad line.
    const t = await web.call('datasets.preview', { fileName: 'big.jsonl', text: bytes.subarray(0, 8 * 1024 * 1024).toString('utf8') });
    expect(t).toMatchObject({ partial: true, error: null, total: linesIn(PREVIEW_MAX_BYTES) });
    const small = big(0.01);
    const whole = await web.call('datasets.preview', { fileName: 'small.jsonl', data: small.toString('base64') });
    expect(whole).toMatchObject({ partial: false, total: null, error: expect.stringMatching(/small\.jsonl, line \d+: invalid JSON/) });
  });

  it('is cut at a line boundary, in UTF-16 too, and leaves out a CSV record whose quoted field the cut splits', async () => {
    const text = big(2).toString('utf8');
    const utf16 = Buffer.from(`\ufeff${text}`, 'utf16le');
    const p = await web.call('datasets.preview', { fileName: 'wide.jsonl', data: utf16.toString('base64'), encoding: 'utf-16le' });
    // The byte-order mark takes one of the characters.
    expect(p).toMatchObject({ partial: true, error: null, total: linesIn(PREVIEW_MAX_BYTES / 2 - 1) });
    const row = '"What is\n1+1?",2\n';
    const rows = row.repeat(Math.ceil((PREVIEW_MAX_BYTES + 100) / row.length));
    // Padding the header (its names are trimmed) until the cut falls inside a quoted field.
    let csv = '';
    for (let pad = 0; pad < row.length; pad++) {
      csv = `prompt,answer${' '.repeat(pad)}\n${rows}`;
      if (csv.slice(0, csv.lastIndexOf('\n', PREVIEW_MAX_BYTES - 1) + 1).endsWith('"What is\n')) break;
    }
    expect(csv.slice(0, csv.lastIndexOf('\n', PREVIEW_MAX_BYTES - 1) + 1).endsWith('"What is\n')).toBe(true);
    const c = await web.call('datasets.preview', { fileName: 'multi.csv', text: csv });
    expect(c).toMatchObject({ partial: true, error: null, fields: ['prompt', 'answer'] });
    expect(c.total).toBeGreaterThan(PREVIEW_MAX_BYTES / row.length - 2);
    expect(c.items[0]).toEqual({ prompt: 'What is\n1+1?', answer: '2' });
    // One first line longer than the preview reads: said so, not parsed.
    const long = await web.call('datasets.preview', { fileName: 'one.jsonl', text: `{"prompt": "${'x'.repeat(PREVIEW_MAX_BYTES + 10)}"}\n` });
    expect(long.error).toMatch(/longer than 1 Mi characters/);
  });
});
