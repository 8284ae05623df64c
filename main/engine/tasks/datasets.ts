// Dataset import: JSON Lines and CSV/TSV files turned into prompt items with an optional hidden
// answer. The answer is evaluation-only: it lives in its own field and is removed from the
// metadata, so nothing downstream can leak it into a prompt or a reward by accident.
// A parse returns every item or throws a DatasetError naming the file and line: an import must be
// all-or-nothing (a half-imported dataset silently changes what a run trains on).
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { type DatasetEncoding, DatasetFileError, decodeDatasetBytes, readDatasetBytes } from './dataset-file.ts';
import { CODE_TASK_FIELDS, CodeTaskError, codeTaskItem, codeTaskShape } from './code-tasks.ts';

export type DatasetFormat = 'jsonl' | 'csv' | 'tsv';

/** Which fields hold the prompt and the (evaluation-only) answer. Dotted paths reach nested JSON. */
export interface FieldMapping {
  prompt: string;
  /** A field name; `null` for "this dataset has no answers"; left out to guess. */
  answer?: string | null;
}

/** The mapping actually used, and which parts of it were guessed rather than given. */
export interface ResolvedMapping {
  prompt: string;
  answer: string | null;
  guessed: { prompt: boolean; answer: boolean };
}

export interface DatasetItem {
  prompt: string;
  /** The hidden label, for evaluation only; null where the item has none. */
  answer: string | null;
  /** Every other field of the record (never the prompt or answer fields). */
  metadata: Record<string, unknown>;
}

export interface ParsedDataset {
  items: DatasetItem[];
  /** Field names seen, in order of first appearance (nested JSON objects add dotted paths). */
  fields: string[];
  mapping: ResolvedMapping;
  format: DatasetFormat;
  /** One line for the user: which fields were used and whether they were guessed. */
  mappingNote: string;
}

export interface ParseOptions {
  /** Overrides detection from the file extension. */
  format?: DatasetFormat;
  mapping?: Partial<FieldMapping>;
  /** The file's encoding when it is not UTF-8 (files only; text has been decoded already). */
  encoding?: DatasetEncoding;
}

export type DatasetErrorKind =
  | 'io'
  | 'not-a-file'
  | 'too-large'
  | 'encoding'
  | 'bad-text'
  | 'too-deep'
  | 'empty'
  | 'format'
  | 'bad-json'
  | 'not-object'
  | 'csv'
  /** A quoted field still open at the end of the text (where a preview cut it, perhaps). */
  | 'csv-unclosed'
  | 'column-count'
  | 'header'
  | 'missing-prompt'
  | 'empty-prompt'
  | 'bad-value'
  | 'mapping';

/** An error the user can act on: it names the file and, where there is one, the line. */
export class DatasetError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly kind: DatasetErrorKind,
    readonly detail: string,
  ) {
    super(line === null ? `${file}: ${detail}` : `${file}, line ${line}: ${detail}`);
    this.name = 'DatasetError';
  }
}

// Order matters: the first name present wins (MATH has both "answer" and a worked "solution";
// the short answer is the better label).
export const PROMPT_FIELD_GUESSES = ['prompt', 'question', 'problem', 'input', 'instruction', 'query'];
export const ANSWER_FIELD_GUESSES = [
  'answer',
  'final_answer',
  'ground_truth',
  'solution',
  'target',
  'output',
  'label',
];

/** The format implied by a file name, or a DatasetError saying how to give it explicitly. */
export function detectFormat(file: string, explicit?: DatasetFormat): DatasetFormat {
  if (explicit) return explicit;
  const ext = path.extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') return 'jsonl';
  if (ext === '.csv') return 'csv';
  if (ext === '.tsv') return 'tsv';
  throw new DatasetError(
    file,
    null,
    'format',
    `cannot tell the format from the extension "${ext || '(none)'}"; use .jsonl, .csv or .tsv, or give the format explicitly`,
  );
}

/** One raw record and the (1-based) line it starts on. */
interface RawRecord {
  line: number;
  record: Record<string, unknown>;
}

/**
 * How deep a record's other fields (kept as metadata) may nest. Storing metadata serialises it
 * recursively, so a file nesting thousands of levels would overflow the stack; real records
 * nest a handful.
 */
export const MAX_METADATA_DEPTH = 100;

/** Parses a dataset file from disk: a regular file, UTF-8 unless `options.encoding` names another. */
export function loadDataset(filePath: string, options: ParseOptions = {}): ParsedDataset {
  // Read first: what the path is (missing, a folder) matters before what its extension says.
  let bytes: Uint8Array;
  try {
    bytes = readDatasetBytes(filePath);
  } catch (e) {
    throw e instanceof DatasetFileError ? new DatasetError(filePath, e.line, e.kind, e.detail) : e;
  }
  const format = detectFormat(filePath, options.format);
  return parseDataset(decodeDataset(bytes, path.basename(filePath), options.encoding), path.basename(filePath), { ...options, format });
}

/** A file's bytes as text (UTF-8, or the `encoding` given), or a DatasetError naming `file`, the line and the encoding. */
export function decodeDataset(bytes: Uint8Array, file: string, encoding?: DatasetEncoding): string {
  try {
    return decodeDatasetBytes(bytes, encoding);
  } catch (e) {
    throw e instanceof DatasetFileError ? new DatasetError(file, e.line, e.kind, e.detail) : e;
  }
}

/**
 * Parses dataset text. `file` is only used in messages (and for the format when none is given).
 * Returns every item or throws a DatasetError.
 */
export function parseDataset(text: string, file: string, options: ParseOptions = {}): ParsedDataset {
  const format = detectFormat(file, options.format);
  const { records, fields } = readRecords(text, file, format);
  const reader = itemReader(records, fields, format, options, file);
  const items = records.map(reader.toItem);
  return { items, fields, mapping: reader.mapping, format, mappingNote: reader.note };
}

/**
 * How records become items: by the field mapping, or, for JSON Lines in MBPP or HumanEval shape
 * with no mapping given, as code tasks (code-tasks.ts: the hidden tests become the answer).
 */
function itemReader(records: RawRecord[], fields: string[], format: DatasetFormat, options: ParseOptions, file: string): { mapping: ResolvedMapping; note: string; toItem: (r: RawRecord) => DatasetItem } {
  const shape = format === 'jsonl' && options.mapping === undefined ? codeTaskShape(records[0]?.record) : null;
  if (shape) {
    const f = CODE_TASK_FIELDS[shape];
    const toItem = (r: RawRecord): DatasetItem => {
      try {
        return codeTaskItem(r.record, shape);
      } catch (e) {
        if (e instanceof CodeTaskError) throw new DatasetError(file, r.line, 'bad-value', e.message);
        throw e;
      }
    };
    return { mapping: { prompt: f.prompt, answer: f.answer, guessed: { prompt: true, answer: true } }, note: f.note, toItem };
  }
  const mapping = resolveMapping(fields, options.mapping, file);
  return { mapping, note: describeMapping(mapping), toItem: (r) => toItem(r, mapping, file) };
}

export interface DatasetPreview {
  format: DatasetFormat;
  fields: string[];
  /** Null when no prompt field could be guessed (the UI then asks for one). */
  mapping: ResolvedMapping | null;
  mappingNote: string;
  /** The first items under the mapping (empty when there is no mapping). */
  items: DatasetItem[];
  /** How many items the whole file holds, when it parses. */
  total: number | null;
  /** Why the file would not import as it stands; null when it would. */
  error: DatasetError | null;
}

/**
 * What the import dialog shows: detected fields, the guessed (or given) mapping and the first
 * `n` items. It never throws a DatasetError; it returns it, so the user can fix the mapping.
 * `truncated`: the text is the first lines of a longer file (see leadingLines), so a CSV record
 * whose quoted field runs past its end is left out rather than called unclosed.
 */
export function previewDataset(text: string, file: string, n = 5, options: ParseOptions = {}, truncated = false): DatasetPreview {
  let format: DatasetFormat;
  try {
    format = detectFormat(file, options.format);
  } catch (e) {
    if (!(e instanceof DatasetError)) throw e;
    return { format: 'jsonl', fields: [], mapping: null, mappingNote: '', items: [], total: null, error: e };
  }
  let records: RawRecord[];
  let fields: string[];
  try {
    try {
      ({ records, fields } = readRecords(text, file, format));
    } catch (e) {
      if (!(truncated && e instanceof DatasetError && e.kind === 'csv-unclosed' && e.line !== null && e.line > 2)) throw e;
      // The cut fell inside the record opening on that line: preview the lines before it.
      ({ records, fields } = readRecords(firstLines(text, e.line - 1), file, format));
    }
  } catch (e) {
    if (!(e instanceof DatasetError)) throw e;
    return { format, fields: [], mapping: null, mappingNote: '', items: [], total: null, error: e };
  }
  let reader: ReturnType<typeof itemReader>;
  try {
    reader = itemReader(records, fields, format, options, file);
  } catch (e) {
    if (!(e instanceof DatasetError)) throw e;
    return { format, fields, mapping: null, mappingNote: '', items: [], total: null, error: e };
  }
  const { mapping, note: mappingNote } = reader;
  const items: DatasetItem[] = [];
  let error: DatasetError | null = null;
  // Convert every record, not just the first n: the preview must warn about a bad line 9000.
  for (const r of records) {
    try {
      const item = reader.toItem(r);
      if (items.length < n) items.push(item);
    } catch (e) {
      if (!(e instanceof DatasetError)) throw e;
      error = e;
      break;
    }
  }
  return { format, fields, mapping, mappingNote, items, total: error ? null : records.length, error };
}

/** The first `lines` lines of a text (with their line feeds). */
function firstLines(text: string, lines: number): string {
  let end = 0;
  for (let i = 0; i < lines && end >= 0; i++) end = text.indexOf('\n', end) + 1 || -1;
  return end < 0 ? text : text.slice(0, end);
}

function readRecords(text: string, file: string, format: DatasetFormat): { records: RawRecord[]; fields: string[] } {
  // Normalise once so both readers see LF lines and no byte-order mark.
  const clean = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).replace(/\r\n/g, '\n');
  if (clean.trim() === '') throw new DatasetError(file, null, 'empty', 'the file is empty');
  const records = format === 'jsonl' ? readJsonl(clean, file) : readDelimited(clean, file, format === 'tsv' ? '\t' : ',');
  return { records, fields: collectFields(records) };
}

function readJsonl(text: string, file: string): RawRecord[] {
  const lines = text.split('\n');
  const out: RawRecord[] = [];
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      // A pretty-printed JSON array is the commonest wrong file; say so rather than "bad JSON".
      const hint = /^\s*\[\s*$/.test(raw) || (out.length === 0 && /^\s*\[/.test(raw))
        ? ' (this looks like a JSON array; JSON Lines needs one object per line)'
        : '';
      throw new DatasetError(file, line, 'bad-json', `invalid JSON: ${(e as Error).message}${hint}`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      const what = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
      throw new DatasetError(file, line, 'not-object', `expected a JSON object like {"prompt": ...}, got ${what}`);
    }
    out.push({ line, record: value as Record<string, unknown> });
  });
  if (out.length === 0) throw new DatasetError(file, null, 'empty', 'the file has no records (only blank lines)');
  return out;
}

interface CsvRow {
  record: string[];
  raw: string;
  info: { lines: number };
}

function readDelimited(text: string, file: string, delimiter: string): RawRecord[] {
  let rows: CsvRow[];
  try {
    // Column counts are checked below, so the message can name the header's columns.
    rows = parseCsv(text, {
      delimiter,
      info: true,
      raw: true,
      relax_column_count: true,
      skip_empty_lines: true,
    }) as unknown as CsvRow[];
  } catch (e) {
    const err = e as { code?: unknown; lines?: unknown; raw?: unknown; message: string };
    if (typeof err.lines !== 'number') throw new DatasetError(file, null, 'csv', `malformed CSV: ${err.message}`);
    if (err.code === 'CSV_QUOTE_NOT_CLOSED' && typeof err.raw === 'string') {
      // csv-parse notices at the end of the file; the useful line is where the quote opened.
      const line = startLine({ record: [], raw: err.raw, info: { lines: err.lines } });
      throw new DatasetError(file, line, 'csv-unclosed', 'malformed CSV: a quoted field starting on this line is never closed');
    }
    if (err.code === 'CSV_INVALID_CLOSING_QUOTE' && typeof err.raw === 'string' && err.raw.replace(/^\n+/, '').includes('\n')) {
      // A quote left open swallows the line breaks after it; csv-parse notices only where a later
      // line quotes again, so name the line where the field opened (the one to fix) and that one.
      const line = startLine({ record: [], raw: err.raw, info: { lines: err.lines } });
      throw new DatasetError(file, line, 'csv-unclosed', `malformed CSV: the quoted field starting on this line runs on to line ${err.lines} (its closing quote is missing, or a quote inside it is not doubled)`);
    }
    throw new DatasetError(file, err.lines, 'csv', `malformed CSV: ${err.message.replace(/^[A-Za-z ]+: /, '')}`);
  }
  if (rows.length === 0) throw new DatasetError(file, null, 'empty', 'the file is empty');
  const [headerRow, ...dataRows] = rows;
  const header = headerRow.record.map((name, i) => name.trim() || `column${i + 1}`);
  const seen = new Map<string, number>();
  header.forEach((name, i) => {
    const first = seen.get(name);
    if (first !== undefined) {
      throw new DatasetError(file, startLine(headerRow), 'header', `column "${name}" appears twice in the header (columns ${first + 1} and ${i + 1})`);
    }
    seen.set(name, i);
  });
  if (dataRows.length === 0) throw new DatasetError(file, null, 'empty', 'the file has a header but no rows');
  return dataRows.map((row, r) => {
    const line = startLine(row);
    if (row.record.length !== header.length) {
      throw new DatasetError(
        file,
        line,
        'column-count',
        `row ${r + 1} has ${row.record.length} columns but the header has ${header.length} (${header.join(', ')}); quote fields that contain "${delimiter === '\t' ? '\\t' : delimiter}"`,
      );
    }
    // fromEntries defines own properties, so a column named "__proto__" stays a column.
    const record: Record<string, unknown> = Object.fromEntries(header.map((name, i) => [name, row.record[i]]));
    return { line, record };
  });
}

// csv-parse reports the line a record ends on; a quoted multi-line field starts earlier.
function startLine(row: CsvRow): number {
  const body = row.raw.replace(/^\n+/, '').replace(/\n$/, '');
  return row.info.lines - (body.match(/\n/g)?.length ?? 0);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function collectFields(records: RawRecord[]): string[] {
  const fields = new Set<string>();
  const walk = (obj: Record<string, unknown>, prefix: string, depth: number) => {
    for (const [k, v] of Object.entries(obj)) {
      const name = prefix + k;
      fields.add(name);
      if (depth < 4 && isPlainObject(v)) walk(v, name + '.', depth + 1);
    }
  };
  for (const r of records) walk(r.record, '', 0);
  return [...fields];
}

function resolveMapping(fields: string[], given: Partial<FieldMapping> | undefined, file: string): ResolvedMapping {
  const pick = (candidates: string[]) => {
    for (const c of candidates) {
      const hit = fields.find((f) => f.toLowerCase() === c);
      if (hit !== undefined) return hit;
    }
    return null;
  };
  const check = (role: string, name: string) => {
    if (!fields.includes(name)) {
      throw new DatasetError(file, null, 'mapping', `the ${role} field "${name}" is in no record; fields: ${fields.join(', ')}`);
    }
  };
  let prompt: string;
  let promptGuessed = false;
  if (given?.prompt !== undefined) {
    check('prompt', given.prompt);
    prompt = given.prompt;
  } else {
    const guess = pick(PROMPT_FIELD_GUESSES);
    if (guess === null) {
      throw new DatasetError(
        file,
        null,
        'mapping',
        `no prompt field found (looked for ${PROMPT_FIELD_GUESSES.join(', ')}); choose one of: ${fields.join(', ')}`,
      );
    }
    prompt = guess;
    promptGuessed = true;
  }
  let answer: string | null;
  let answerGuessed = false;
  if (given?.answer === null) answer = null;
  else if (given?.answer !== undefined) {
    check('answer', given.answer);
    answer = given.answer;
  } else {
    answer = pick(ANSWER_FIELD_GUESSES.filter((c) => c !== prompt.toLowerCase()));
    answerGuessed = true;
  }
  if (answer !== null && answer === prompt) {
    throw new DatasetError(file, null, 'mapping', `"${prompt}" cannot be both the prompt and the answer field`);
  }
  return { prompt, answer, guessed: { prompt: promptGuessed, answer: answerGuessed } };
}

function describeMapping(m: ResolvedMapping): string {
  const tag = (g: boolean) => (g ? ' (guessed)' : '');
  const answer = m.answer === null ? `no answer field${m.guessed.answer ? ' (none found)' : ''}` : `answer = "${m.answer}"${tag(m.guessed.answer)}`;
  return `prompt = "${m.prompt}"${tag(m.guessed.prompt)}, ${answer}`;
}

// An exact key wins over a dotted walk, so a flat CSV column named "a.b" still works.
function getPath(obj: Record<string, unknown>, p: string): unknown {
  if (Object.prototype.hasOwnProperty.call(obj, p)) return obj[p];
  let cur: unknown = obj;
  for (const part of p.split('.')) {
    if (!isPlainObject(cur) || !Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = cur[part];
  }
  return cur;
}

// Copies only the objects along the path, so the caller's record is left intact.
function withoutPath(obj: Record<string, unknown>, p: string): Record<string, unknown> {
  if (Object.prototype.hasOwnProperty.call(obj, p)) {
    const { [p]: _drop, ...rest } = obj;
    return rest;
  }
  const [head, ...tail] = p.split('.');
  const child = obj[head];
  if (tail.length === 0 || !isPlainObject(child)) return obj;
  return { ...obj, [head]: withoutPath(child, tail.join('.')) };
}

/** A scalar as text; throws (with the reason) for values that have no faithful text form. */
function asText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`${v} is not a finite number`);
    // JSON.parse has already rounded such a number; better to refuse than store a wrong label.
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) throw new Error(`the number ${v} is too large to read exactly; write it as a string`);
    return String(v);
  }
  if (typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  throw new Error(`expected text or a number, got ${Array.isArray(v) ? 'an array' : 'an object'}`);
}

/**
 * Why a value cannot be stored as text faithfully, or null: a NUL ends strings in many SQLite
 * readers, and an unpaired UTF-16 surrogate (a JSON escape like "\\ud800") has no UTF-8 form.
 */
function textFault(s: string): string | null {
  const nul = s.indexOf('\0');
  if (nul >= 0) return `holds a NUL character (U+0000) at character ${nul + 1}`;
  const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.exec(s);
  if (lone) {
    const code = lone[0].charCodeAt(0).toString(16).toUpperCase();
    return `holds an unpaired surrogate (\\u${code}) at character ${lone.index + 1}, which no UTF-8 text can store; fix that escape in the file`;
  }
  return null;
}

/** The first top-level field of `record` whose value nests deeper than `max` levels, or null (no recursion, so no stack to overflow). */
function tooDeepField(record: Record<string, unknown>, max: number): string | null {
  for (const [key, value] of Object.entries(record)) {
    const stack: [unknown, number][] = [[value, 1]];
    while (stack.length > 0) {
      const [v, depth] = stack.pop()!;
      if (v === null || typeof v !== 'object') continue;
      if (depth > max) return key;
      for (const child of Object.values(v as Record<string, unknown>)) stack.push([child, depth + 1]);
    }
  }
  return null;
}

function toItem(r: RawRecord, m: ResolvedMapping, file: string): DatasetItem {
  const rawPrompt = getPath(r.record, m.prompt);
  if (rawPrompt === undefined || rawPrompt === null) {
    throw new DatasetError(file, r.line, 'missing-prompt', `no prompt field "${m.prompt}" in this record`);
  }
  let prompt: string;
  try {
    prompt = asText(rawPrompt);
  } catch (e) {
    throw new DatasetError(file, r.line, 'bad-value', `prompt field "${m.prompt}": ${(e as Error).message}`);
  }
  if (prompt.trim() === '') throw new DatasetError(file, r.line, 'empty-prompt', `the prompt field "${m.prompt}" is empty`);
  const promptFault = textFault(prompt);
  if (promptFault) throw new DatasetError(file, r.line, 'bad-text', `the prompt field "${m.prompt}" ${promptFault}`);
  let answer: string | null = null;
  let metadata = withoutPath(r.record, m.prompt);
  if (m.answer !== null) {
    const rawAnswer = getPath(r.record, m.answer);
    // A missing or blank answer is an unlabeled item, not an error: partly labeled sets are common.
    if (rawAnswer !== undefined && rawAnswer !== null) {
      try {
        answer = asText(rawAnswer);
      } catch (e) {
        throw new DatasetError(file, r.line, 'bad-value', `answer field "${m.answer}": ${(e as Error).message}`);
      }
      if (answer.trim() === '') answer = null;
      const answerFault = answer === null ? null : textFault(answer);
      if (answerFault) throw new DatasetError(file, r.line, 'bad-text', `the answer field "${m.answer}" ${answerFault}`);
    }
    metadata = withoutPath(metadata, m.answer);
  }
  const deep = tooDeepField(metadata, MAX_METADATA_DEPTH);
  if (deep !== null) {
    throw new DatasetError(file, r.line, 'too-deep', `the field "${deep}" nests more than ${MAX_METADATA_DEPTH} levels of objects or arrays; flatten it or leave it out`);
  }
  return { prompt, answer, metadata };
}
