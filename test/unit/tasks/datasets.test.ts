import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import {
  detectFormat,
  loadDataset,
  parseDataset,
  previewDataset,
  type DatasetErrorKind,
} from '../../../main/engine/tasks/datasets.ts';
import { datasetError } from '../../helpers/datasets.ts';

const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/datasets/${name}`, import.meta.url));


function expectLineError(fn: () => unknown, file: string, line: number, kind: DatasetErrorKind, text?: RegExp) {
  const e = datasetError(fn);
  expect(e.file).toBe(file);
  expect(e.line).toBe(line);
  expect(e.kind).toBe(kind);
  expect(e.message).toContain(`${file}, line ${line}:`);
  if (text) expect(e.message).toMatch(text);
}

describe('JSONL', () => {
  it('guesses question/answer, skips blank lines, keeps answers out of metadata', () => {
    const ds = loadDataset(fixture('questions.jsonl'));
    expect(ds.format).toBe('jsonl');
    expect(ds.mapping).toEqual({ prompt: 'question', answer: 'answer', guessed: { prompt: true, answer: true } });
    expect(ds.mappingNote).toBe('prompt = "question" (guessed), answer = "answer" (guessed)');
    expect(ds.fields).toEqual(['question', 'answer', 'source', 'meta', 'meta.level']);
    expect(ds.items).toEqual([
      { prompt: 'What is 2+3?', answer: '5', metadata: { source: 'toy' } },
      { prompt: 'What is 7*6?', answer: '42', metadata: { source: 'toy', meta: { level: 2 } } },
      { prompt: 'Name a prime above 10.', answer: null, metadata: { source: 'toy' } },
    ]);
    for (const item of ds.items) {
      expect(JSON.stringify(item.metadata)).not.toContain('answer');
    }
  });

  it('follows dotted paths for nested fields and strips them from metadata', () => {
    const ds = loadDataset(fixture('nested.jsonl'), { mapping: { prompt: 'data.text', answer: 'data.gold.value' } });
    expect(ds.fields).toEqual(['id', 'data', 'data.text', 'data.gold', 'data.gold.value', 'tag']);
    expect(ds.mapping.guessed).toEqual({ prompt: false, answer: false });
    expect(ds.items[0]).toEqual({ prompt: 'Compute 1+1.', answer: '2', metadata: { id: 1, data: { gold: {} }, tag: 'a' } });
    expect(ds.items[1].answer).toBe('4');
  });

  it('answer: null means an unlabeled dataset even when an answer-like field exists', () => {
    const ds = parseDataset('{"prompt":"p","answer":"1","x":2}\n', 'a.jsonl', { mapping: { answer: null } });
    expect(ds.mapping.answer).toBeNull();
    expect(ds.items[0]).toEqual({ prompt: 'p', answer: null, metadata: { answer: '1', x: 2 } });
    expect(ds.mappingNote).toBe('prompt = "prompt" (guessed), no answer field');
  });

  it('guesses case-insensitively and reports when no answer field is found', () => {
    const ds = parseDataset('{"Problem":"p1"}\n{"Problem":"p2"}', 'x.ndjson');
    expect(ds.mapping).toEqual({ prompt: 'Problem', answer: null, guessed: { prompt: true, answer: true } });
    expect(ds.mappingNote).toContain('no answer field (none found)');
    expect(ds.items.map((i) => i.prompt)).toEqual(['p1', 'p2']);
  });

  it('handles a BOM and CRLF line endings', () => {
    const text = '\uFEFF{"prompt":"a","answer":"1"}\r\n\r\n{"prompt":"b","answer":"2"}\r\n';
    const ds = parseDataset(text, 'crlf.jsonl');
    expect(ds.items.map((i) => [i.prompt, i.answer])).toEqual([
      ['a', '1'],
      ['b', '2'],
    ]);
    // Line numbers still count physical lines.
    expectLineError(() => parseDataset('\uFEFF{"prompt":"a"}\r\n\r\n{"prompt":""}\r\n', 'crlf.jsonl'), 'crlf.jsonl', 3, 'empty-prompt');
  });

  it('reports bad JSON with the file name and the line number, counting blank lines', () => {
    expectLineError(() => loadDataset(fixture('bad-json.jsonl')), 'bad-json.jsonl', 4, 'bad-json', /invalid JSON/);
  });

  it('reports each kind of malformed line', () => {
    const ok = '{"prompt":"fine","answer":"1"}\n';
    expectLineError(() => parseDataset(ok + '[1,2]\n', 'f.jsonl'), 'f.jsonl', 2, 'not-object', /got an array/);
    expectLineError(() => parseDataset(ok + '"text"\n', 'f.jsonl'), 'f.jsonl', 2, 'not-object', /got a string/);
    expectLineError(() => parseDataset(ok + 'null\n', 'f.jsonl'), 'f.jsonl', 2, 'not-object', /got null/);
    expectLineError(() => parseDataset(ok + ok + '{"answer":"3"}\n', 'f.jsonl'), 'f.jsonl', 3, 'missing-prompt', /"prompt"/);
    expectLineError(() => parseDataset(ok + '{"prompt":"   "}\n', 'f.jsonl'), 'f.jsonl', 2, 'empty-prompt');
    expectLineError(() => parseDataset(ok + '{"prompt":{"a":1}}\n', 'f.jsonl'), 'f.jsonl', 2, 'bad-value', /prompt field.*object/);
    expectLineError(() => parseDataset(ok + '{"prompt":"p","answer":[1]}\n', 'f.jsonl'), 'f.jsonl', 2, 'bad-value', /answer field.*array/);
    expectLineError(
      () => parseDataset(ok + '{"prompt":"p","answer":12345678901234567890}\n', 'f.jsonl'),
      'f.jsonl',
      2,
      'bad-value',
      /too large.*string/,
    );
    expectLineError(() => parseDataset('[\n  {"prompt": "a"}\n]\n', 'arr.json'), 'arr.json', 1, 'bad-json', /JSON array/);
  });

  it('stringifies numbers and booleans, and treats blank answers as unlabeled', () => {
    const ds = parseDataset('{"prompt":7,"answer":0.5}\n{"prompt":"p","answer":true}\n{"prompt":"q","answer":"  "}', 'n.jsonl');
    expect(ds.items.map((i) => [i.prompt, i.answer])).toEqual([
      ['7', '0.5'],
      ['p', 'true'],
      ['q', null],
    ]);
  });

  it('rejects empty files and files of blank lines', () => {
    for (const text of ['', '\uFEFF', '\n\n  \r\n']) {
      const e = datasetError(() => parseDataset(text, 'empty.jsonl'));
      expect(e.kind).toBe('empty');
      expect(e.line).toBeNull();
      expect(e.message).toMatch(/^empty\.jsonl: /);
    }
  });

  it('rejects mappings that name no field, or no guessable prompt', () => {
    let e = datasetError(() => parseDataset('{"q":"a","a":"1"}', 'm.jsonl'));
    expect(e.kind).toBe('mapping');
    expect(e.message).toMatch(/no prompt field found.*q, a/);
    e = datasetError(() => parseDataset('{"q":"a","a":"1"}', 'm.jsonl', { mapping: { prompt: 'q', answer: 'ans' } }));
    expect(e.message).toContain('the answer field "ans" is in no record');
    e = datasetError(() => parseDataset('{"q":"a"}', 'm.jsonl', { mapping: { prompt: 'q', answer: 'q' } }));
    expect(e.kind).toBe('mapping');
  });
});

describe('CSV', () => {
  it('parses quoted commas, escaped quotes and multi-line fields with a guessed mapping', () => {
    const ds = loadDataset(fixture('problems.csv'));
    expect(ds.format).toBe('csv');
    expect(ds.fields).toEqual(['problem', 'solution', 'difficulty']);
    expect(ds.mapping).toMatchObject({ prompt: 'problem', answer: 'solution' });
    expect(ds.items).toEqual([
      { prompt: 'Add 2 and 3, then double it.', answer: '10', metadata: { difficulty: 'easy' } },
      { prompt: 'He said "hi" twice; how many words?', answer: '2', metadata: { difficulty: 'easy' } },
      { prompt: 'Line one\nline two: what is 4*4?', answer: '16', metadata: { difficulty: 'medium' } },
    ]);
  });

  it('uses an explicit mapping', () => {
    const ds = parseDataset('id,text,gold\n1,hello,x\n2,world,\n', 'd.csv', { mapping: { prompt: 'text', answer: 'gold' } });
    expect(ds.items).toEqual([
      { prompt: 'hello', answer: 'x', metadata: { id: '1' } },
      { prompt: 'world', answer: null, metadata: { id: '2' } },
    ]);
  });

  it('reports a wrong column count by line and row', () => {
    expectLineError(() => loadDataset(fixture('short-row.csv')), 'short-row.csv', 3, 'column-count', /row 2 has 2 columns but the header has 3 \(prompt, answer, id\)/);
  });

  it('reports the start line of a row after a multi-line field', () => {
    const text = 'prompt,answer\n"a\nb\nc",1\n\nd,2,extra\n';
    expectLineError(() => parseDataset(text, 'm.csv'), 'm.csv', 6, 'column-count', /row 2/);
  });

  it('reports an unclosed quote', () => {
    const e = datasetError(() => loadDataset(fixture('unclosed-quote.csv')));
    expect(e.kind).toBe('csv-unclosed');
    expect(e.file).toBe('unclosed-quote.csv');
    expect(e.line).toBe(3);
    expect(e.message).toMatch(/never closed/);
    expectLineError(() => parseDataset('prompt,answer\nok,1\nb,x"y"\n', 'q.csv'), 'q.csv', 3, 'csv', /quote/i);
  });

  it('names the line where a quote was left open when a later line quotes again (csv-parse stops there)', () => {
    expectLineError(() => parseDataset('prompt,answer\n"q 0",0\n"an open quote,1\n"q 2",2\n"q 3",3\n', 'o.csv'), 'o.csv', 3, 'csv-unclosed', /runs on to line 4 \(its closing quote is missing/);
  });

  it('reports an empty prompt cell with its line', () => {
    expectLineError(() => parseDataset('prompt,answer\nok,1\n"",2\n', 'e.csv'), 'e.csv', 3, 'empty-prompt');
  });

  it('handles a BOM, CRLF and CRLF inside quoted fields', () => {
    const text = '\uFEFFquestion,answer\r\n"two\r\nlines",1\r\n\r\nplain,2\r\n';
    const ds = parseDataset(text, 'w.csv');
    expect(ds.fields).toEqual(['question', 'answer']);
    expect(ds.items.map((i) => [i.prompt, i.answer])).toEqual([
      ['two\nlines', '1'],
      ['plain', '2'],
    ]);
    expectLineError(() => parseDataset('\uFEFFquestion,answer\r\n"two\r\nlines",1\r\n\r\nbad\r\n', 'w.csv'), 'w.csv', 5, 'column-count');
  });

  it('rejects empty files, header-only files and duplicate columns', () => {
    expect(datasetError(() => parseDataset('', 'e.csv')).kind).toBe('empty');
    expect(datasetError(() => parseDataset('prompt,answer\n', 'e.csv')).message).toContain('header but no rows');
    const dup = datasetError(() => parseDataset('prompt,answer,prompt\na,b,c\n', 'e.csv'));
    expect(dup.kind).toBe('header');
    expect(dup.line).toBe(1);
  });

  it('names unnamed columns (a pandas index) instead of failing', () => {
    const ds = parseDataset(',question,answer\n0,q,1\n', 'p.csv');
    expect(ds.fields).toEqual(['column1', 'question', 'answer']);
    expect(ds.items[0]).toEqual({ prompt: 'q', answer: '1', metadata: { column1: '0' } });
  });

  it('keeps a "__proto__" column as an ordinary field', () => {
    const ds = parseDataset('prompt,__proto__\nhi,x\n', 'p.csv');
    expect(Object.keys(ds.items[0].metadata)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(ds.items[0].metadata)).toBe(Object.prototype);
  });

  it('reads TSV', () => {
    const ds = parseDataset('input\ttarget\na, b\tc\n', 'x.tsv');
    expect(ds.items).toEqual([{ prompt: 'a, b', answer: 'c', metadata: {} }]);
  });
});

describe('format detection and preview', () => {
  it('detects formats by extension and accepts an explicit one', () => {
    expect(detectFormat('a.JSONL')).toBe('jsonl');
    expect(detectFormat('a.csv')).toBe('csv');
    expect(detectFormat('a.txt', 'csv')).toBe('csv');
    expect(datasetError(() => detectFormat('a.txt')).kind).toBe('format');
    expect(parseDataset('prompt\nhello\n', 'data.txt', { format: 'csv' }).items[0].prompt).toBe('hello');
  });

  it('previews the first items, fields and guessed mapping', () => {
    const text = Array.from({ length: 10 }, (_, i) => JSON.stringify({ question: `q${i}`, answer: String(i) })).join('\n');
    const p = previewDataset(text, 'p.jsonl', 3);
    expect(p.error).toBeNull();
    expect(p.total).toBe(10);
    expect(p.fields).toEqual(['question', 'answer']);
    expect(p.mapping?.prompt).toBe('question');
    expect(p.items.map((i) => i.prompt)).toEqual(['q0', 'q1', 'q2']);
  });

  it('returns, rather than throws, errors: late bad lines, and unguessable prompts with the fields', () => {
    const lines = Array.from({ length: 8 }, (_, i) => JSON.stringify({ prompt: `p${i}` }));
    lines.push('{"prompt": ""}');
    const late = previewDataset(lines.join('\n'), 'late.jsonl', 2);
    expect(late.items).toHaveLength(2);
    expect(late.total).toBeNull();
    expect(late.error?.line).toBe(9);

    const nope = previewDataset('{"a":"x","b":"y"}', 'n.jsonl');
    expect(nope.mapping).toBeNull();
    expect(nope.fields).toEqual(['a', 'b']);
    expect(nope.error?.kind).toBe('mapping');

    expect(previewDataset('{bad', 'b.jsonl').error?.line).toBe(1);
  });

  it('a missing file is a DatasetError', () => {
    const e = datasetError(() => loadDataset(fixture('does-not-exist.jsonl')));
    expect(e.kind).toBe('io');
    expect(e.message).toContain('no such file');
  });
});
