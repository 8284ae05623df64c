// Every request channel of the API service against a real database: a good request and its
// result, malformed requests refused with BAD_REQUEST and the offending field, unknown ids with
// NOT_FOUND, and the errors a person can act on (a malformed dataset line, a model folder that
// cannot load, a run that is busy).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROMPT_FORMATS, REQUEST_CHANNELS, type RequestName } from '../../../contract/index.ts';
import { PROMPT_FORMATS as ENGINE_PROMPT_FORMATS } from '../../../main/engine/rl/prompts.ts';
import { createReview, createRun, getRun, listModels, listReviews, recordStep, updateRunStatus } from '../../../main/db/index.ts';
import { BUILTIN_METHODS } from '../../../main/engine/rl/methods/registry.ts';
import { runDir } from '../../../main/runs/home.ts';
import { addModelFolder } from '../../../main/api/models.ts';
import { builtinModelsDir } from '../../../main/engine/model-paths.ts';
import { DEVICES_RESULT, FakePicker, type Harness, createHarness, datasetTables } from './handlers-harness.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const FIXTURES = path.join(ROOT, 'test/fixtures');

let h: Harness;
beforeAll(() => {
  h = createHarness();
});
afterAll(() => h.close());

const QUESTIONS = ['{"question": "What is 2+2?", "answer": "4"}', '{"question": "What is 3+4?", "answer": "7"}', '{"question": "What is 5+5?", "answer": 10}', '{"question": "Name a colour"}'].join('\n');

describe('the request boundary', () => {
  it('refuses an unknown channel', async () => {
    expect(await h.refused('runs.explode', {})).toEqual({ code: 'BAD_REQUEST', message: 'unknown request channel "runs.explode"' });
    // Inherited object keys are not channels either.
    expect((await h.refused('toString', {})).code).toBe('BAD_REQUEST');
  });

  it('refuses wrong types, unknown keys and missing fields, naming the field', async () => {
    const wrongType = await h.refused('runs.get', { id: 'seven' });
    expect(wrongType.code).toBe('BAD_REQUEST');
    expect(wrongType.issues?.map((i) => i.path)).toEqual(['id']);
    const unknownKey = await h.refused('datasets.list', { sneaky: 1 });
    expect(unknownKey.issues?.map((i) => i.path)).toEqual(['sneaky']);
    const missing = await h.refused('datasets.items', {});
    expect(missing.issues?.map((i) => i.path)).toEqual(['datasetId']);
    const nested = await h.refused('datasets.preview', { fileName: 'a.jsonl', text: 'x', mapping: { prompt: 3 } });
    expect(nested.issues?.map((i) => i.path)).toEqual(['mapping.prompt']);
    const negative = await h.refused('runs.metrics', { id: -1 });
    expect(negative.issues?.map((i) => i.path)).toEqual(['id']);
    expect((await h.refused('app.info', 'not an object')).code).toBe('BAD_REQUEST');
    // Each problem worded for a person, naming its field (issue 15.12: zod's own words stay out).
    expect(wrongType.message).toBe('id must be a number');
    expect(missing.message).toBe('datasetId is required');
    expect(negative.message).toBe('id must be at least 0');
    expect((await h.refused('settings.set', { defaultDevice: 'tpu' })).message).toBe('defaultDevice must be one of "auto", "cpu", "webgpu", "cuda"');
  });

  it('validates every channel before its handler runs', async () => {
    const before = { tables: datasetTables(h.db), events: h.events.emitted.length, runs: h.runs.calls.length };
    for (const channel of REQUEST_CHANNELS as RequestName[]) {
      const e = await h.refused(channel, { definitelyNotAField: true });
      expect(e.code, channel).toBe('BAD_REQUEST');
      expect(e.issues?.map((i) => i.path), channel).toContain('definitelyNotAField');
      // Worded for a person, naming the field (issue 15.12), never zod's "Unrecognized key".
      expect(e.message, channel).toMatch(/"definitelyNotAField" is not a known field/);
    }
    expect({ tables: datasetTables(h.db), events: h.events.emitted.length, runs: h.runs.calls.length }).toEqual(before);
  });
});

describe('app, settings and devices', () => {
  it('app.info says where the data lives', async () => {
    const info = await h.call('app.info', {});
    expect(info).toEqual({ version: '9.9.9', mode: 'web', dataHome: h.home, databaseFile: path.join(h.home, 'autodidact.db'), platform: `${process.platform}-${process.arch}` });
  });

  it('settings.get / settings.set change only the fields given', async () => {
    expect(await h.call('settings.get', {})).toEqual({ dataFolder: null, defaultDevice: 'cpu', threads: null });
    expect(await h.call('settings.set', { threads: 3 })).toEqual({ dataFolder: null, defaultDevice: 'cpu', threads: 3 });
    expect(await h.call('settings.set', { threads: null, defaultDevice: 'auto' })).toEqual({ dataFolder: null, defaultDevice: 'auto', threads: null });
    expect((await h.refused('settings.set', { defaultDevice: 'tpu' })).issues?.[0].path).toBe('defaultDevice');
    expect((await h.refused('settings.set', { threads: 0 })).issues?.[0].path).toBe('threads');
    // The data folder: only back to the default (a folder is picked in a dialog: paths.test.ts).
    h.settings.set({ dataFolder: path.join(h.home, 'elsewhere') });
    expect(await h.call('settings.set', { dataFolder: null })).toMatchObject({ dataFolder: null });
    h.settings.set({ defaultDevice: 'cpu' });
  });

  it('devices.list probes once, answers from the cache, re-probes on refresh unless a run trains', async () => {
    const first = await h.call('devices.list', {});
    expect(first).toEqual({ devices: DEVICES_RESULT.devices, auto: 'cpu', threads: 4, onnxruntime: '1.22.0' });
    expect(first.devices[0].adapter).toBe('Test CPU · 4 cores');
    expect(await h.call('devices.list', {})).toEqual(first);
    expect(h.engineCalls).toEqual(['devices']);
    await h.call('devices.list', { refresh: true });
    expect(h.engineCalls).toEqual(['devices', 'devices']);

    const run = createRun(h.db, { name: 'busy', method: 'ttrl', model: 'tiny-chars', dataset: 'x', config: {} });
    updateRunStatus(h.db, run.id, 'running');
    h.runs.active.add(run.id);
    await h.call('devices.list', { refresh: true });
    expect(h.engineCalls).toHaveLength(2);
    h.runs.active.delete(run.id);
    updateRunStatus(h.db, run.id, 'stopped');
  });

  it('an unavailable device in the engine is UNAVAILABLE', async () => {
    const { EngineError } = await import('../../../main/engine/protocol.ts');
    const saved = h.probe.fn;
    h.probe.fn = async () => {
      throw new EngineError('webgpu: no adapter', 'DEVICE_UNAVAILABLE');
    };
    try {
      expect(await h.refused('devices.list', { refresh: true })).toEqual({ code: 'UNAVAILABLE', message: 'webgpu: no adapter' });
    } finally {
      h.probe.fn = saved;
    }
  });
});

describe('datasets', () => {
  let questionsId: number;

  it('previews a file with its guessed mapping and first items', async () => {
    const p = await h.call('datasets.preview', { fileName: 'questions.jsonl', text: QUESTIONS });
    expect(p.format).toBe('jsonl');
    expect(p.fields).toEqual(['question', 'answer']);
    expect(p.mapping).toEqual({ prompt: 'question', answer: 'answer', guessed: { prompt: true, answer: true } });
    expect(p.items[0]).toEqual({ prompt: 'What is 2+2?', answer: '4' });
    expect(p.total).toBe(4);
    expect(p.error).toBeNull();
    const bad = await h.call('datasets.preview', { fileName: 'bad.jsonl', text: fs.readFileSync(path.join(FIXTURES, 'datasets/bad-json.jsonl'), 'utf8') });
    expect(bad.error).toMatch(/bad\.jsonl, line 4: invalid JSON/);
  });

  it('imports a file’s text and announces it', async () => {
    const before = h.events.of('datasets.changed').length;
    const r = await h.call('datasets.import', { fileName: 'C:\\Users\\me\\questions.jsonl', text: QUESTIONS, evalFraction: 0.25 });
    questionsId = r.dataset.id;
    expect(r.dataset).toMatchObject({ name: 'questions', source: 'questions.jsonl', itemCount: 4, trainCount: 3, evalCount: 1, answerCount: 3 });
    expect([r.train, r.eval]).toEqual([3, 1]);
    expect(r.mappingNote).toBe('prompt = "question" (guessed), answer = "answer" (guessed)');
    expect(h.events.of('datasets.changed').length).toBe(before + 1);
    expect((await h.call('datasets.list', {})).map((d) => d.name)).toContain('questions');
    // The evaluation share is named as the form names it, in one sentence from 0 to below 1.
    for (const evalFraction of [1, 1.5, -0.1]) {
      const refused = await h.refused('datasets.import', { fileName: 'other.jsonl', text: QUESTIONS, evalFraction });
      expect(refused.issues).toEqual([{ path: 'evalFraction', message: 'the evaluation share must be at least 0 and below 1' }]);
    }
  });

  it('refuses a file with a malformed line, naming FILE:LINE, and leaves the database unchanged', async () => {
    const before = datasetTables(h.db);
    const text = fs.readFileSync(path.join(FIXTURES, 'datasets/bad-json.jsonl'), 'utf8');
    const e = await h.refused('datasets.import', { fileName: 'bad-json.jsonl', text });
    expect(e.code).toBe('SETUP');
    expect(e.message).toMatch(/^bad-json\.jsonl:4: invalid JSON/);
    const csv = await h.refused('datasets.import', { fileName: 'short.csv', text: fs.readFileSync(path.join(FIXTURES, 'datasets/short-row.csv'), 'utf8') });
    expect(csv.code).toBe('SETUP');
    expect(csv.message).toMatch(/^short\.csv:\d+: row \d+ has \d+ columns/);
    const mapping = await h.refused('datasets.import', { fileName: 'q.jsonl', text: QUESTIONS, mapping: { prompt: 'nope' } });
    expect(mapping.message).toMatch(/prompt field "nope" is in no record/);
    expect(datasetTables(h.db)).toEqual(before);
  });

  it('takes a file as bytes: refuses what is not UTF-8 naming the line and encoding, converts a given encoding', async () => {
    const latin1 = Buffer.from('{"question": "Caf\xe9?", "answer": "oui"}\n', 'latin1').toString('base64');
    const p = await h.call('datasets.preview', { fileName: 'cafe.jsonl', data: latin1 });
    expect(p.error).toMatch(/^cafe\.jsonl, line 1: the bytes E9 3F 22 2C at column 18 are not valid UTF-8.*Windows-1252 or Latin-1/);
    expect((await h.call('datasets.preview', { fileName: 'cafe.jsonl', data: latin1, encoding: 'latin1' })).items).toEqual([{ prompt: 'Café?', answer: 'oui' }]);
    // Not yet readable, a CSV is still shown as a CSV (its name says so), not as JSONL.
    const csv = Buffer.from('question,answer\nCaf\xe9?,oui\n', 'latin1').toString('base64');
    expect(await h.call('datasets.preview', { fileName: 'cafe.csv', data: csv })).toMatchObject({ format: 'csv', error: expect.stringMatching(/not valid UTF-8/) });
    const before = datasetTables(h.db);
    const e = await h.refused('datasets.import', { fileName: 'cafe.jsonl', data: latin1 });
    expect(e.code).toBe('SETUP');
    expect(e.message).toMatch(/^cafe\.jsonl:1: the bytes E9/);
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"prompt": "x"}\n', 'utf16le')]).toString('base64');
    expect((await h.refused('datasets.import', { fileName: 'wide.jsonl', data: utf16 })).message).toMatch(/encoding is UTF-16 \(little-endian\)/);
    expect(datasetTables(h.db)).toEqual(before);
    const r = await h.call('datasets.import', { fileName: 'cafe.jsonl', data: latin1, encoding: 'windows-1252' });
    expect(r.dataset).toMatchObject({ name: 'cafe', itemCount: 1 });
    expect((await h.call('datasets.items', { datasetId: r.dataset.id })).items[0].prompt).toBe('Café?');
    // The contents come once: as text or as bytes; an encoding only with bytes.
    expect((await h.refused('datasets.import', { fileName: 'x.jsonl', text: 'a', data: 'YQ==' })).issues?.map((i) => i.path)).toEqual(['data']);
    expect((await h.refused('datasets.import', { fileName: 'x.jsonl' })).issues?.map((i) => i.path)).toEqual(['data']);
    expect((await h.refused('datasets.preview', { fileName: 'x.jsonl', text: 'a', encoding: 'latin1' })).issues?.map((i) => i.path)).toEqual(['encoding']);
    expect((await h.refused('datasets.preview', { fileName: 'x.jsonl', data: 'not base64!' })).issues?.map((i) => i.path)).toEqual(['data']);
    await h.call('datasets.delete', { id: r.dataset.id });
  });

  it('refuses a taken name with CONFLICT', async () => {
    const e = await h.refused('datasets.import', { fileName: 'questions.jsonl', text: QUESTIONS });
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toMatch(/"questions" already exists/);
  });

  it('generates the built-in arithmetic dataset, the same one a run would use', async () => {
    const d = await h.call('datasets.generate', { difficulty: 1, seed: 3 });
    expect(d).toMatchObject({ name: 'arithmetic-d1-s3', source: 'generator:arithmetic', trainCount: 512, evalCount: 64, answerCount: 576 });
    expect((await h.call('datasets.generate', { difficulty: 1, seed: 3 })).id).toBe(d.id);
    const named = await h.call('datasets.generate', { difficulty: 2, name: 'my sums' });
    expect(named).toMatchObject({ name: 'my sums', itemCount: 576 });
    expect((await h.refused('datasets.generate', { difficulty: 5 })).issues?.[0].path).toBe('difficulty');
  });

  it('pages and searches items, with the evaluation-only answer', async () => {
    const all = await h.call('datasets.items', { datasetId: questionsId });
    expect(all.total).toBe(4);
    expect(all.items.map((i) => i.evalAnswer)).toEqual(['4', '7', '10', null]);
    expect(all.items.filter((i) => i.split === 'eval')).toHaveLength(1);
    const page = await h.call('datasets.items', { datasetId: questionsId, offset: 1, limit: 2 });
    expect(page).toEqual({ total: 4, items: all.items.slice(1, 3) });
    const found = await h.call('datasets.items', { datasetId: questionsId, search: '3+4' });
    expect(found).toEqual({ total: 1, items: [all.items[1]] });
    expect((await h.call('datasets.items', { datasetId: questionsId, split: 'eval' })).total).toBe(1);
    expect((await h.refused('datasets.items', { datasetId: 9999 })).code).toBe('NOT_FOUND');
    expect((await h.refused('datasets.items', { datasetId: questionsId, limit: 501 })).issues?.[0].path).toBe('limit');
  });

  it('deletes a dataset nothing depends on', async () => {
    const d = await h.call('datasets.import', { fileName: 'doomed.jsonl', text: QUESTIONS });
    expect(await h.call('datasets.usage', { id: d.dataset.id })).toEqual({ runs: [], reviews: 0, deletable: true });
    expect(await h.call('datasets.delete', { id: d.dataset.id })).toEqual({ deleted: true });
    expect((await h.refused('datasets.delete', { id: d.dataset.id })).code).toBe('NOT_FOUND');
    expect((await h.refused('datasets.usage', { id: d.dataset.id })).code).toBe('NOT_FOUND');
  });

  it('never deletes a dataset runs or reviews depend on: it names them and offers archiving, which keeps everything working', async () => {
    const d = await h.call('datasets.import', { fileName: 'reviewed.jsonl', text: QUESTIONS });
    const id = d.dataset.id;
    const run = createRun(h.db, { name: 'uses reviewed', method: 'ttrl', model: 'tiny-chars', dataset: 'reviewed', datasetId: id, config: {} });
    updateRunStatus(h.db, run.id, 'stopped');
    createReview(h.db, { runId: run.id, datasetId: id, itemIdx: 0, verdict: 'override', label: '5' });
    createReview(h.db, { runId: run.id, datasetId: id, itemIdx: 1, verdict: 'agree', label: '7' });
    const before = { tables: datasetTables(h.db), reviews: listReviews(h.db), run: getRun(h.db, run.id) };

    expect(await h.call('datasets.usage', { id })).toEqual({ runs: [{ id: run.id, name: 'uses reviewed', status: 'stopped', trainingPid: null }], reviews: 2, deletable: false });
    const refused = await h.refused('datasets.delete', { id });
    expect(refused.code).toBe('CONFLICT');
    expect(refused.message).toContain(`used by 1 run (#${run.id} "uses reviewed") and 2 reviews`);
    expect(refused.message).toContain('Archive it instead');
    // While a run trains on it (here in this app), the refusal says so.
    h.runs.active.add(run.id);
    expect(await h.refused('datasets.delete', { id })).toMatchObject({ code: 'CONFLICT', message: expect.stringContaining(`Run #${run.id} is training on it now (process ${process.pid})`) });
    h.runs.active.delete(run.id);
    expect({ tables: datasetTables(h.db), reviews: listReviews(h.db), run: getRun(h.db, run.id) }).toEqual(before);

    const changes = h.events.of('datasets.changed').length;
    const archived = await h.call('datasets.archive', { id });
    expect(archived.archivedAt).not.toBeNull();
    expect(h.events.of('datasets.changed').length).toBe(changes + 1);
    // Hidden from pickers, listed with the archived ones, and everything that uses it keeps working.
    expect((await h.call('datasets.list', {})).map((x) => x.id)).not.toContain(id);
    expect((await h.call('datasets.list', { includeArchived: true })).find((x) => x.id === id)?.archivedAt).toBe(archived.archivedAt);
    expect((await h.call('datasets.items', { datasetId: id })).items.map((i) => i.evalAnswer)).toEqual(['4', '7', '10', null]);
    expect((await h.call('runs.get', { id: run.id })).run.datasetId).toBe(id);
    expect(await h.call('reviews.list', { runId: run.id })).toHaveLength(2);
    expect(await h.refused('datasets.import', { fileName: 'reviewed.jsonl', text: QUESTIONS })).toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('archived') });
    expect((await h.refused('datasets.delete', { id })).code).toBe('CONFLICT');

    expect((await h.call('datasets.restore', { id })).archivedAt).toBeNull();
    expect((await h.call('datasets.list', {})).map((x) => x.id)).toContain(id);
    expect({ tables: datasetTables(h.db), reviews: listReviews(h.db), run: getRun(h.db, run.id) }).toEqual(before);
    expect((await h.refused('datasets.archive', { id: 9999 })).code).toBe('NOT_FOUND');
  });
});

describe('models', () => {
  it('lists the built-in models with architecture, size and dtype from the headers', async () => {
    const list = await h.call('models.list', {});
    const chars = list.find((m) => m.name === 'tiny-chars')!;
    expect(chars).toMatchObject({ id: null, builtin: true, architecture: 'llama', dtype: 'float32', error: null });
    // The same count the engine computes when it loads the folder.
    const { loadModelFolder } = await import('../../../main/engine/nn/hf-model.ts');
    const loaded = await loadModelFolder(chars.path);
    expect(chars.parameterCount).toBe(loaded.parameterCount);
  });

  it('adds a sharded Hugging Face folder and a built-in model picked in the dialog', async () => {
    // The desktop app: the folder comes from the shell's dialog, on the same database.
    const picker = new FakePicker([path.join(FIXTURES, 'models/qwen2'), path.join(builtinModelsDir(), 'tiny-chars')]);
    const desktop = createHarness(h.home, { picker });
    try {
      const qwen = (await desktop.call('models.add', {})).added!;
      expect(qwen).toMatchObject({ name: 'qwen2', builtin: false, architecture: 'qwen2', error: null });
      expect(qwen.id).toBeTypeOf('number');
      const builtin = (await desktop.call('models.add', {})).added!;
      expect(builtin).toMatchObject({ name: 'tiny-chars', builtin: true });
      const list = await h.call('models.list', {});
      expect(list.find((m) => m.name === 'tiny-chars')!.id).toBe(builtin.id);
      expect(list.find((m) => m.name === 'qwen2')!.parameterCount).toBe(qwen.parameterCount);
      expect(desktop.events.of('models.changed')).toHaveLength(2);
      expect(picker.asked).toEqual(['model', 'model']);
    } finally {
      desktop.close();
    }
  });

  it('refuses a folder that cannot load, naming the field, and records nothing', async () => {
    const dir = path.join(h.home, 'broken-model');
    fs.mkdirSync(dir);
    const config = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'models/llama3/config.json'), 'utf8')) as Record<string, unknown>;
    delete config.hidden_size;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
    const before = listModels(h.db);
    const desktop = createHarness(h.home, { picker: new FakePicker([dir, path.join(h.home, 'no-such-folder')]) });
    try {
      const e = await desktop.refused('models.add', {});
      expect(e.code).toBe('SETUP');
      expect(e.message).toMatch(/config\.json: hidden_size is required$/);
      const missing = await desktop.refused('models.add', {});
      expect(missing.code).toBe('SETUP');
    } finally {
      desktop.close();
    }
    expect(listModels(h.db)).toEqual(before);
  });

  it('shows an added folder that broke since with its error', async () => {
    const dir = path.join(h.home, 'fragile');
    fs.cpSync(path.join(FIXTURES, 'models/llama3'), dir, { recursive: true });
    await addModelFolder(h.db, dir, 'fragile');
    fs.rmSync(path.join(dir, 'model.safetensors'));
    const entry = (await h.call('models.list', {})).find((m) => m.name === 'fragile')!;
    expect(entry.error).toMatch(/no model\.safetensors/);
    // What was recorded at import still shows.
    expect(entry.architecture).toBe('llama');
  });

  it('removes a model', async () => {
    const m = (await h.call('models.list', {})).find((x) => x.name === 'fragile')!;
    expect(await h.call('models.remove', { id: m.id! })).toEqual({ removed: true });
    expect((await h.refused('models.remove', { id: m.id! })).code).toBe('NOT_FOUND');
  });
});

describe('runs', () => {
  it('describes every setting for the New-run form', async () => {
    const s = await h.call('runs.settings', {});
    const by = Object.fromEntries(s.map((x) => [x.name, x]));
    expect(by.method).toMatchObject({ kind: 'enum', options: BUILTIN_METHODS.map((m) => m.id), default: 'ttrl' });
    expect(by.steps).toMatchObject({ kind: 'integer', min: 1, default: 40 });
    expect(by.steps.max).toBeUndefined();
    expect(by.srtThreshold).toMatchObject({ kind: 'number', min: 0, max: 1 });
    expect(by.softReward.kind).toBe('boolean');
    expect(by.stopStrings.kind).toBe('string-list');
    expect(by.judgeTemplate).toMatchObject({ kind: 'text', method: 'consistency-judge' });
    expect(by.judgeTemplate.default).toContain('{response}');
    expect(by.loraTargets).toMatchObject({ kind: 'enum-list' });
    expect(by.loraTargets.options).toContain('q_proj');
    expect(by.lr.description).toMatch(/learning rate/);
  });

  it('previews a prompt exactly as the model will see it, raw or in the chat template, with its token count', async () => {
    const first = (await h.call('datasets.items', { datasetId: (await h.call('datasets.list', {})).find((d) => d.name === 'questions')!.id, split: 'train', limit: 1 })).items[0];
    // tiny-arith's tokenizer has one token per character, plus its special tokens.
    const raw = await h.call('runs.previewPrompt', { model: 'tiny-arith', dataset: 'questions' });
    expect(raw).toEqual({
      prompt: first.prompt,
      itemIdx: first.idx,
      promptFormat: 'raw',
      text: `<|bos|>${first.prompt}`,
      tokenCount: 1 + first.prompt.length,
      hasChatTemplate: true,
      contextLength: 64,
    });
    const chat = await h.call('runs.previewPrompt', { model: 'tiny-arith', prompt: 'What is 2+2?', promptFormat: 'chat' });
    expect(chat).toMatchObject({ itemIdx: null, text: '<|bos|><|user|>\nWhat is 2+2?<|eos|><|assistant|>\n', tokenCount: 12 + 6 });
    // The built-in generator's first training sum, as runs.create would generate it.
    const sums = await h.call('runs.previewPrompt', { model: 'tiny-arith', dataset: 'arithmetic', difficulty: 1, seed: 0 });
    expect(sums.itemIdx).toBe(0);
    expect(sums.text).toBe(`<|bos|>${sums.prompt}`);
    // The engine's formats and the contract's are the same list.
    expect(PROMPT_FORMATS).toEqual(ENGINE_PROMPT_FORMATS);
  });

  it('refuses a prompt preview it cannot make, saying why', async () => {
    expect((await h.refused('runs.previewPrompt', { model: 'tiny-arith' })).issues?.map((i) => i.path)).toEqual(['dataset']);
    expect((await h.refused('runs.previewPrompt', { model: 'tiny-arith', dataset: 'questions', promptFormat: 'jinja' as 'chat' })).code).toBe('BAD_REQUEST');
    const missing = await h.refused('runs.previewPrompt', { model: 'tiny-arith', dataset: 'no-such-dataset' });
    expect(missing).toMatchObject({ code: 'SETUP' });
    expect(missing.message).toMatch(/dataset "no-such-dataset" is not one of the app's datasets/);
    expect((await h.refused('runs.previewPrompt', { model: 'no-such-model', prompt: 'x' })).code).toBe('SETUP');
  });

  it('creates a run with the default device, and launches it unless told not to', async () => {
    const v = await h.call('runs.create', { model: 'tiny-chars', dataset: 'questions', config: { steps: 3 }, start: false });
    // Saved without starting: 'paused' (nothing queues it), with no steps and no start time.
    expect(v).toMatchObject({ name: 'ttrl-tiny-chars-questions', status: 'paused', steps: 3, dataset: 'questions', reviewCount: 0, currentStep: null, startedAt: null });
    expect(v.config).toMatchObject({ device: 'cpu', steps: 3, model: 'tiny-chars' });
    expect(h.runs.calls.filter((c) => c.runId === v.id)).toEqual([]);
    expect(getRun(h.db, v.id)?.status).toBe('paused');
    const announced = (h.events.of('run.status') as { run: { id: number; status: string } }[]).filter((e) => e.run.id === v.id);
    expect(announced.map((e) => e.run.status)).toEqual(['paused']);
    // Resuming it starts it from the beginning.
    await h.call('runs.resume', { id: v.id });
    expect(h.runs.calls.at(-1)).toEqual({ op: 'start', runId: v.id, options: { resume: true } });
    const started = await h.call('runs.create', { name: 'go', model: 'tiny-chars', dataset: 'questions', device: 'auto', reviewsOf: v.id });
    expect(started.config).toMatchObject({ device: 'auto', reviewsOf: v.id });
    expect(h.runs.calls.at(-1)).toEqual({ op: 'start', runId: started.id, options: { resume: false } });
  });

  it('refuses at launch a judge template whose prompts cannot fit the model with a response and the verdict, saying what to change', async () => {
    // tiny-arith reads 64 positions: the default template alone is longer.
    const long = await h.refused('runs.create', { model: 'tiny-arith', dataset: 'questions', config: { method: 'consistency-judge' }, start: false });
    expect(long.code).toBe('SETUP');
    expect(long.message).toMatch(
      /^consistency-judge: the judge's prompt \(judgeTemplate\) about the longest training prompt \(item \d+\) takes \d+ tokens before the response, up to 16 more with a response \(maxNewTokens\), and the judge writes 1 \(its verdict\): \d+ tokens, more than the 64 positions tiny-arith reads\. Shorten judgeTemplate or lower maxNewTokens$/,
    );
    const score = await h.refused('runs.create', { model: 'tiny-arith', dataset: 'questions', config: { method: 'consistency-judge', judgeMode: 'score', judgeTemplate: '{response}', maxNewTokens: 8 }, start: false });
    expect(score.message).toMatch(/and the judge writes 64 \(judgeMaxTokens\).*Shorten judgeTemplate, lower judgeMaxTokens or lower maxNewTokens$/);
    const fits = await h.call('runs.create', { name: 'judged', model: 'tiny-arith', dataset: 'questions', config: { method: 'consistency-judge', judgeTemplate: 'Check {question}{response}? ', maxNewTokens: 8 }, start: false });
    expect(fits).toMatchObject({ name: 'judged', method: 'consistency-judge', status: 'paused' });
  });

  it('runs.checkConfig gives the form every problem at its setting, as runs.create would refuse it', async () => {
    expect(await h.call('runs.checkConfig', { config: {} })).toEqual({ problems: [] });
    expect(await h.call('runs.checkConfig', { config: { votes: 4, trainSamples: 8, steps: 0 } })).toEqual({ problems: [{ setting: 'steps', message: 'steps must be at least 1' }] });
    // Once each setting is valid, the checks across them.
    expect(await h.call('runs.checkConfig', { config: { votes: 4, trainSamples: 8 } })).toEqual({ problems: [{ setting: 'trainSamples', message: 'trainSamples (8) cannot exceed votes (4)' }] });
    // A method's recipe counts: semantic clusters trains 16 of 16 votes by default, so votes 8 alone is a problem.
    expect(await h.call('runs.checkConfig', { config: { method: 'semantic-clusters', votes: 8 } })).toEqual({ problems: [{ setting: 'trainSamples', message: 'trainSamples (16) cannot exceed votes (8)' }] });
    expect(await h.call('runs.checkConfig', { config: { stepz: 1 } })).toEqual({ problems: [{ setting: 'stepz', message: '"stepz" is not a run setting' }] });
  });

  it('refuses bad settings at their field and records nothing', async () => {
    const count = (await h.call('runs.list', {})).length;
    const bad = await h.refused('runs.create', { model: 'tiny-chars', dataset: 'questions', config: { steps: 'many' } });
    expect(bad.code).toBe('BAD_REQUEST');
    expect(bad.issues?.map((i) => i.path)).toEqual(['config.steps']);
    const unknown = await h.refused('runs.create', { model: 'tiny-chars', dataset: 'questions', config: { stepz: 3 } });
    expect(unknown.issues?.map((i) => i.path)).toEqual(['config.stepz']);
    const misplaced = await h.refused('runs.create', { model: 'tiny-chars', dataset: 'questions', config: { model: 'other' } });
    expect(misplaced.issues?.map((i) => i.path)).toEqual(['config.model']);
    const model = await h.refused('runs.create', { model: 'no-such-model', dataset: 'questions' });
    expect(model.code).toBe('SETUP');
    expect(model.message).toMatch(/no-such-model/);
    const dataset = await h.refused('runs.create', { model: 'tiny-chars', dataset: 'no-such-dataset' });
    expect(dataset.code).toBe('SETUP');
    // Every dataset it could have named without an import is listed.
    expect(dataset.message).toContain('(nor a built-in one: "arithmetic" (generated sums), "code-functions", "code-functions-js" (code tasks), and for --method agent household or shop');
    // A check across settings is refused at the setting to change, as the form's runs.checkConfig shows it.
    const votes = await h.refused('runs.create', { model: 'tiny-chars', dataset: 'questions', config: { votes: 2, trainSamples: 4 } });
    expect(votes).toEqual({
      code: 'BAD_REQUEST',
      message: 'The run settings need a change: trainSamples (4) cannot exceed votes (2)',
      issues: [{ path: 'config.trainSamples', message: 'trainSamples (4) cannot exceed votes (2)' }],
    });
    expect((await h.refused('runs.create', { model: 'tiny-chars', dataset: 'questions', reviewsOf: 999 })).code).toBe('NOT_FOUND');
    expect((await h.refused('runs.create', { dataset: 'questions' })).issues?.map((i) => i.path)).toEqual(['model']);
    expect((await h.call('runs.list', {})).length).toBe(count);
  });

  it('runs.tag adds and removes tags, announces the run, and refuses a tag that is not one line of text (issue 15.9)', async () => {
    const run = createRun(h.db, { name: 'taggable', method: 'ttrl', model: 'tiny-chars', dataset: 'questions', config: {} });
    const before = h.events.emitted.length;
    const tagged = await h.call('runs.tag', { id: run.id, add: ['baseline', ' sweep '] });
    expect(tagged.tags).toEqual(['baseline', 'sweep']);
    expect(h.events.emitted.slice(before)).toEqual([{ event: 'run.status', payload: { run: tagged } }]);
    expect((await h.call('runs.tag', { id: run.id, remove: ['sweep'] })).tags).toEqual(['baseline']);
    expect((await h.call('runs.list', {})).find((r) => r.id === run.id)?.tags).toEqual(['baseline']);
    const bad = await h.refused('runs.tag', { id: run.id, add: ['a\tb'] });
    expect(bad).toMatchObject({ code: 'BAD_REQUEST', message: 'a tag is one line of text, without tabs or line breaks', issues: [{ path: 'add.0' }] });
    expect((await h.refused('runs.tag', { id: run.id, add: ['x'.repeat(41)] })).message).toBe('add item 1 must be at most 40 characters long');
    expect((await h.refused('runs.tag', { id: 999, add: ['x'] })).code).toBe('NOT_FOUND');
  });

  it('lists runs newest first and shows one with its steps, checkpoints and alerts', async () => {
    const run = createRun(h.db, { name: 'detailed', method: 'ttrl', model: 'tiny-chars', dataset: 'questions', config: { steps: 2, valSamples: 4 } });
    // The loop pruned step 0's folder when it saved step 1's: only step 1's are listed.
    const ckpt = (name: string) => path.join(runDir(h.home, run.id), name);
    fs.mkdirSync(ckpt('best-1'), { recursive: true });
    fs.mkdirSync(ckpt('last-1'), { recursive: true });
    recordStep(h.db, run.id, 0, {
      metrics: { 'val/maj@4': 0.5, 'train/reward': Number.NaN },
      alerts: [{ kind: 'collapse', message: 'all votes agree' }],
      checkpoints: [{ kind: 'last', path: ckpt('last-0') }],
    });
    recordStep(h.db, run.id, 1, { metrics: { 'val/maj@4': 0.75 }, checkpoints: [{ kind: 'best', path: ckpt('best-1'), metric: 0.75 }, { kind: 'last', path: ckpt('last-1'), metric: 0.75 }] });
    h.runs.progressOf.set(run.id, { step: 1, steps: 2, phase: 'rollout', etaSeconds: 4 });
    const list = await h.call('runs.list', {});
    expect(list[0].id).toBe(run.id);
    expect(list[0].progress).toEqual({ step: 1, steps: 2, phase: 'rollout', etaSeconds: 4 });
    const d = await h.call('runs.get', { id: run.id });
    expect(d.run.keyMetric).toEqual({ name: 'val/maj@4', value: 0.75, best: 0.75, bestStep: 1 });
    // Where a paused run's duration ends: its last step.
    expect(d.run.lastStepAt).toBe((h.db.sql.prepare('SELECT max(created_at) AS at FROM steps WHERE run_id = ?').get(run.id) as { at: string }).at);
    expect(d.steps).toEqual([0, 1]);
    expect(d.metricKeys).toEqual(['train/reward', 'val/maj@4']);
    expect(d.checkpoints.map((c) => `${c.kind}-${c.step}`).sort()).toEqual(['best-1', 'last-1']);
    expect(d.alerts).toMatchObject([{ step: 0, kind: 'collapse', message: 'all votes agree' }]);
    expect(await h.call('runs.metrics', { id: run.id, keys: ['train/reward'] })).toEqual([{ step: 0, key: 'train/reward', value: null }]);
    expect(await h.call('runs.metrics', { id: run.id, afterStep: 0 })).toEqual([{ step: 1, key: 'val/maj@4', value: 0.75 }]);
    expect((await h.refused('runs.get', { id: 4242 })).code).toBe('NOT_FOUND');
    expect((await h.refused('runs.metrics', { id: 4242 })).code).toBe('NOT_FOUND');
    h.runs.progressOf.delete(run.id);
  });

  it('exports a run as the CLI does: metrics CSV, samples JSONL and completions Parquet, as files the page can save', async () => {
    const run = createRun(h.db, { name: 'exported', method: 'ttrl', model: 'tiny-chars', dataset: 'questions', config: { steps: 1 } });
    recordStep(h.db, run.id, 0, { metrics: { 'val/maj@4': 0.5 } });
    recordStep(h.db, run.id, 1, {
      metrics: { 'train/majority_ratio': 0.75 },
      tokens: 321,
      rollouts: [{ prompt: 'What is 2+2?', pseudoLabel: '4', samples: [{ text: 'it is 4', extractedAnswer: '4', reward: 1, advantage: 0.5, usedForTraining: true }] }],
    });
    const metrics = await h.call('runs.export', { id: run.id, kind: 'metrics' });
    expect(metrics).toEqual({ fileName: `run-${run.id}-metrics.csv`, mediaType: 'text/csv', encoding: 'utf-8', data: 'step,train/majority_ratio,val/maj@4\n0,,0.5\n1,0.75,\n' });
    expect((await h.call('runs.export', { id: run.id, kind: 'metrics', layout: 'long' })).data).toBe('step,key,value\n0,val/maj@4,0.5\n1,train/majority_ratio,0.75\n');
    const samples = await h.call('runs.export', { id: run.id, kind: 'samples' });
    expect(samples.fileName).toBe(`run-${run.id}-samples.jsonl`);
    expect(JSON.parse(samples.data.trim())).toMatchObject({ step: 1, prompt: 'What is 2+2?', text: 'it is 4', reward: 1, used: true });
    const completions = await h.call('runs.export', { id: run.id, kind: 'completions' });
    expect(completions).toMatchObject({ fileName: `run-${run.id}-completions.parquet`, mediaType: 'application/vnd.apache.parquet', encoding: 'base64' });
    const bytes = Buffer.from(completions.data, 'base64');
    expect(await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) })).toMatchObject([{ step: 1, prompt: 'What is 2+2?', completion: 'it is 4', reward: 1, advantage: 0.5 }]);
    expect((await h.refused('runs.export', { id: run.id, kind: 'everything' })).issues?.[0].path).toBe('kind');
    expect((await h.refused('runs.export', { id: 4242, kind: 'metrics' })).code).toBe('NOT_FOUND');

    // The timeline the charts' wall-time and tokens axes read.
    const timeline = await h.call('runs.timeline', { id: run.id });
    expect(timeline.map((t) => [t.step, t.tokens])).toEqual([[0, null], [1, 321]]);
    expect(Number.isFinite(Date.parse(timeline[1].recordedAt))).toBe(true);
    expect((await h.call('runs.timeline', { id: run.id, afterStep: 0 })).map((t) => t.step)).toEqual([1]);
    expect((await h.refused('runs.timeline', { id: 4242 })).code).toBe('NOT_FOUND');
  });

  it('pauses, resumes (with its own reviews), stops and deletes through the run manager', async () => {
    const run = await h.call('runs.create', { name: 'lifecycle', model: 'tiny-chars', dataset: 'questions' });
    updateRunStatus(h.db, run.id, 'running');
    expect((await h.call('runs.pause', { id: run.id })).status).toBe('paused');
    expect(h.runs.calls.at(-1)).toEqual({ op: 'pause', runId: run.id });
    expect((await h.refused('runs.pause', { id: run.id })).code).toBe('CONFLICT');

    await h.call('runs.resume', { id: run.id, reviewsOfItself: true });
    expect(h.runs.calls.at(-1)).toEqual({ op: 'start', runId: run.id, options: { resume: true } });
    expect((getRun(h.db, run.id)!.config as Record<string, unknown>).reviewsOf).toBe(run.id);
    expect((await h.refused('runs.resume', { id: run.id })).code).toBe('CONFLICT');
    expect((await h.refused('runs.delete', { id: run.id })).code).toBe('CONFLICT');

    expect((await h.call('runs.stop', { id: run.id })).status).toBe('stopped');
    expect(h.runs.calls.at(-1)).toEqual({ op: 'stop', runId: run.id });
    await h.call('runs.resume', { id: run.id, reviewsOfItself: false });
    expect((getRun(h.db, run.id)!.config as Record<string, unknown>).reviewsOf).toBeUndefined();
    await h.call('runs.stop', { id: run.id });
    expect((await h.refused('runs.stop', { id: run.id })).code).toBe('CONFLICT');

    h.runs.logs.set(run.id, [1, 2, 3].map((i) => ({ time: `t${i}`, level: 'info' as const, message: `line ${i}` })));
    expect((await h.call('runs.log', { id: run.id, tail: 2 })).map((l) => l.message)).toEqual(['line 2', 'line 3']);

    fs.mkdirSync(runDir(h.home, run.id), { recursive: true });
    fs.writeFileSync(path.join(runDir(h.home, run.id), 'model.safetensors'), 'x');
    expect(await h.call('runs.delete', { id: run.id })).toEqual({ deleted: true });
    expect(fs.existsSync(runDir(h.home, run.id))).toBe(false);
    expect((await h.refused('runs.delete', { id: run.id })).code).toBe('NOT_FOUND');
    expect((await h.refused('runs.log', { id: run.id })).code).toBe('NOT_FOUND');
  });

  it('deletes a run with its reviews only when told to, and never one whose labels an unfinished run uses', async () => {
    const reviewed = await h.call('runs.create', { name: 'reviewed run', model: 'tiny-chars', dataset: 'questions', start: false });
    const datasetId = reviewed.datasetId!;
    createReview(h.db, { runId: reviewed.id, datasetId, itemIdx: 0, verdict: 'override', label: '5' });
    createReview(h.db, { runId: reviewed.id, datasetId, itemIdx: 1, verdict: 'agree', label: '7' });
    const follower = await h.call('runs.create', { name: 'follower', model: 'tiny-chars', dataset: 'questions', reviewsOf: reviewed.id, start: false });

    // An unfinished run trains with its reviewed labels: refused even with the reviews given up.
    const used = await h.refused('runs.delete', { id: reviewed.id, discardReviews: true });
    expect(used.code).toBe('CONFLICT');
    expect(used.message).toContain(`gives its reviewed labels to run #${follower.id} ("follower", paused)`);
    updateRunStatus(h.db, follower.id, 'completed');

    // The reviews are named and go only when the request says the person confirmed it.
    const reviewsOf = () => listReviews(h.db).filter((r) => r.runId === reviewed.id);
    const held = await h.refused('runs.delete', { id: reviewed.id });
    expect(held).toMatchObject({ code: 'CONFLICT', message: expect.stringContaining(`holds 2 reviews a person made`) });
    expect(reviewsOf()).toHaveLength(2);
    expect(getRun(h.db, reviewed.id)).toBeDefined();
    expect(await h.call('runs.delete', { id: reviewed.id, discardReviews: true })).toEqual({ deleted: true });
    expect(reviewsOf()).toHaveLength(0);
    expect(await h.call('runs.delete', { id: follower.id })).toEqual({ deleted: true });
  });

  it('stops a paused run that is not in the engine, and refuses to resume a completed one', async () => {
    const run = createRun(h.db, { name: 'idle', method: 'ttrl', model: 'tiny-chars', dataset: 'questions', config: {} });
    updateRunStatus(h.db, run.id, 'paused');
    const stopped = await h.call('runs.stop', { id: run.id });
    expect(stopped.status).toBe('stopped');
    expect(h.events.of('run.status').at(-1)).toEqual({ run: stopped });
    updateRunStatus(h.db, run.id, 'completed');
    const e = await h.refused('runs.resume', { id: run.id });
    expect(e.code).toBe('CONFLICT');
    expect(e.message).toMatch(/has completed/);
  });

  it('resumes a run with no checkpoint only when the person asks for the restart, which its view announces', async () => {
    const run = createRun(h.db, { name: 'stopped early', method: 'ttrl', model: 'tiny-chars', dataset: 'questions', config: { steps: 40, checkpointEvery: 20 } });
    updateRunStatus(h.db, run.id, 'stopped');
    const view = async () => (await h.call('runs.get', { id: run.id })).run;
    // Only the step-0 baseline recorded: a restart loses nothing.
    recordStep(h.db, run.id, 0, { metrics: { 'val/maj@4': 0.5 } });
    expect((await view()).stepsLostOnResume).toBeNull();
    for (const step of [1, 2, 3]) recordStep(h.db, run.id, step, { metrics: { 'train/loss': step } });
    expect((await view()).stepsLostOnResume).toBe(3);
    const refused = await h.refused('runs.resume', { id: run.id });
    expect(refused.code).toBe('CONFLICT');
    expect(refused.message).toBe(
      `Run ${run.id} has no checkpoint to continue from (it saves one every 20 steps, and it ended after step 3), so a resume trains it again from step 0 and replaces its recorded steps 1–3. Restart it to do so (Resume asks first), or keep its steps and train a copy (Clone).`,
    );
    expect(h.runs.calls.filter((c) => c.runId === run.id)).toEqual([]);
    await h.call('runs.resume', { id: run.id, restart: true });
    expect(h.runs.calls.at(-1)).toEqual({ op: 'start', runId: run.id, options: { resume: true } });

    // With a checkpoint, a resume continues from it: nothing to ask.
    const kept = createRun(h.db, { name: 'checkpointed', method: 'ttrl', model: 'tiny-chars', dataset: 'questions', config: {} });
    updateRunStatus(h.db, kept.id, 'stopped');
    recordStep(h.db, kept.id, 1, { metrics: {}, checkpoints: [{ kind: 'last', path: path.join(runDir(h.home, kept.id), 'last-1'), metric: null }] });
    recordStep(h.db, kept.id, 2, { metrics: {} });
    expect((await h.call('runs.get', { id: kept.id })).run.stepsLostOnResume).toBeNull();
    await h.call('runs.resume', { id: kept.id });
    expect(h.runs.calls.at(-1)).toEqual({ op: 'start', runId: kept.id, options: { resume: true } });
  });
});

describe('errors a person can act on', () => {
  it('a full database refuses the import with a clear message and keeps nothing of it', async () => {
    const full = createHarness();
    try {
      // SQLite's page limit makes the file "full" exactly as a full disk does (SQLITE_FULL).
      const pages = full.db.sql.pragma('page_count', { simple: true }) as number;
      full.db.sql.pragma(`max_page_count = ${pages + 2}`);
      const before = datasetTables(full.db);
      const text = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ prompt: `a fairly long prompt number ${i} `.repeat(4), answer: String(i) })).join('\n');
      const e = await full.refused('datasets.import', { fileName: 'big.jsonl', text });
      expect(e.code).toBe('UNAVAILABLE');
      expect(e.message).toMatch(/is full\. Nothing of importing dataset "big" was saved; free some space and retry/);
      expect(datasetTables(full.db)).toEqual(before);
    } finally {
      full.close();
    }
  });

  it('maps the other failures to codes', async () => {
    const { toApiError } = await import('../../../main/api/service.ts');
    const { DatabaseError } = await import('../../../main/db/index.ts');
    const { EngineError } = await import('../../../main/engine/protocol.ts');
    const where = { databaseFile: '/data/autodidact.db', home: '/data' };
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    expect(toApiError(enospc, where, 'runs.delete').toJSON()).toEqual({ code: 'UNAVAILABLE', message: 'The disk holding /data is full: ENOSPC: no space left on device, write. Free some space and retry.' });
    expect(toApiError(new DatabaseError('BUSY', 'locked'), where, 'x').code).toBe('UNAVAILABLE');
    expect(toApiError(new DatabaseError('STEP_EXISTS', 'twice'), where, 'x').code).toBe('CONFLICT');
    expect(toApiError(new EngineError('worker died', 'WORKER_EXITED'), where, 'x').code).toBe('UNAVAILABLE');
    expect(toApiError(new EngineError('bad graph'), where, 'x').toJSON()).toEqual({ code: 'INTERNAL', message: 'bad graph' });
    expect(toApiError('a string', where, 'x').toJSON()).toEqual({ code: 'INTERNAL', message: 'a string' });
  });
});
