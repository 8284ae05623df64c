// The import probe: malformed dataset files of many kinds, each imported through the command
// line (`autodidact datasets import FILE`) and through the web API (`datasets.import` with the
// bytes as base64, on a running `autodidact serve`). Each must be refused with a message naming
// the file (and the line, where the problem is on one), leave no dataset and no staged rows, and
// crash nothing; a well-formed control file must import whole.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { ApiSocket, CRASH_SIGNS, type ProbeOptions, type ProbeReport, Rng, type Served, round, startCli, startServe, tempDir } from './common.ts';

export interface Case {
  kind: string;
  fileName: string;
  bytes?: Buffer;
  /** Files only the command line can be given (the API takes bytes, never a path). */
  special?: 'fifo' | 'zero-link' | 'directory' | 'sparse';
  /** The line a refusal must name; null where the problem is the whole file. */
  line: number | null;
  expect: 'refuse' | 'accept';
  /** What the refusal must also say (e.g. the encoding). */
  mentions?: RegExp;
  /** Items an accepted file holds. */
  items?: number;
}

const QUESTIONS = ['What is 2+3?', 'Name a prime above 10.', 'Spell "cat" backwards.', 'How many legs has a spider?', 'Ünïcödé ✓ question', '日本語の質問'];

function goodLines(rng: Rng, n: number): string[] {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ prompt: `${rng.pick(QUESTIONS)} #${i}`, answer: String(rng.int(0, 99)) }));
}

const jsonl = (lines: string[]) => Buffer.from(`${lines.join('\n')}\n`);

/** Line `k` (1-based) of `lines` replaced by the bytes `bad`. */
function withBadLine(lines: string[], k: number, bad: Buffer): Buffer {
  const before = Buffer.from(lines.slice(0, k - 1).map((l) => `${l}\n`).join(''));
  const after = Buffer.from(lines.slice(k).map((l) => `${l}\n`).join(''));
  return Buffer.concat([before, bad, Buffer.from('\n'), after]);
}

function utf16be(s: string): Buffer {
  const le = Buffer.from(s, 'utf16le');
  for (let i = 0; i < le.length; i += 2) [le[i], le[i + 1]] = [le[i + 1], le[i]];
  return le;
}

function utf32le(s: string): Buffer {
  const cps = [...s].map((c) => c.codePointAt(0)!);
  const b = Buffer.alloc(cps.length * 4);
  cps.forEach((cp, i) => b.writeUInt32LE(cp, i * 4));
  return b;
}

/** The kinds of malformed file, each a generator of one case from the seeded generator. */
const KINDS: Record<string, (rng: Rng, i: number) => Case> = {
  'truncated-json': (rng, i) => {
    const lines = goodLines(rng, rng.int(1, 12));
    const k = rng.int(1, lines.length);
    const cut = lines[k - 1].slice(0, rng.int(1, lines[k - 1].length - 1));
    // The cut line is the file's last: a file cut short.
    return { kind: 'truncated-json', fileName: `cut-${i}.jsonl`, bytes: Buffer.from([...lines.slice(0, k - 1), cut].join('\n')), line: k, expect: 'refuse' };
  },
  'wrong-type': (rng, i) => {
    const lines = goodLines(rng, rng.int(2, 10));
    const k = rng.int(2, lines.length);
    // A number or a boolean is read as its text (answers like 42 or true); these have none.
    const value = rng.pick([null, [1, 2], [], { text: 'nested' }, {}, 1e308, 2 ** 53 + 2]);
    return { kind: 'wrong-type', fileName: `types-${i}.jsonl`, bytes: withBadLine(lines, k, Buffer.from(JSON.stringify({ prompt: value, answer: '1' }))), line: k, expect: 'refuse' };
  },
  'missing-prompt': (rng, i) => {
    const lines = goodLines(rng, rng.int(2, 10));
    const k = rng.int(2, lines.length);
    return { kind: 'missing-prompt', fileName: `missing-${i}.jsonl`, bytes: withBadLine(lines, k, Buffer.from('{"answer": "4", "note": "no prompt here"}')), line: k, expect: 'refuse' };
  },
  'not-an-object': (rng, i) => {
    const lines = goodLines(rng, rng.int(1, 10));
    const k = rng.int(1, lines.length);
    return { kind: 'not-an-object', fileName: `scalar-${i}.jsonl`, bytes: withBadLine(lines, k, Buffer.from(rng.pick(['42', '"just text"', '[1, 2, 3]', 'null', 'true']))), line: k, expect: 'refuse' };
  },
  'trailing-garbage': (rng, i) => {
    const lines = goodLines(rng, rng.int(1, 10));
    const k = rng.int(1, lines.length);
    return { kind: 'trailing-garbage', fileName: `garbage-${i}.jsonl`, bytes: withBadLine(lines, k, Buffer.from(`${lines[k - 1]} ${rng.pick(['x', '}', '{"prompt":"b"}', ','])}`)), line: k, expect: 'refuse' };
  },
  'invalid-utf8': (rng, i) => {
    const lines = goodLines(rng, rng.int(1, 10));
    const k = rng.int(1, lines.length);
    const bad = rng.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80]]);
    const line = Buffer.concat([Buffer.from('{"prompt": "bad '), Buffer.from(bad), Buffer.from(' bytes"}')]);
    return { kind: 'invalid-utf8', fileName: `bytes-${i}.jsonl`, bytes: withBadLine(lines, k, line), line: k, expect: 'refuse' };
  },
  latin1: (rng, i) => {
    const lines = goodLines(rng, rng.int(1, 10));
    const k = rng.int(1, lines.length);
    return { kind: 'latin1', fileName: `latin1-${i}.jsonl`, bytes: withBadLine(lines, k, Buffer.from('{"prompt": "Caf\u00e9 cr\u00e8me: how much?"}', 'latin1')), line: k, expect: 'refuse', mentions: /Latin-1|Windows-1252/ };
  },
  cp1252: (rng, i) => {
    const lines = goodLines(rng, rng.int(1, 10));
    const k = rng.int(1, lines.length);
    const quoted = Buffer.concat([Buffer.from('{"prompt": "He said '), Buffer.from([0x93]), Buffer.from('hi'), Buffer.from([0x94]), Buffer.from('"}')]);
    return { kind: 'cp1252', fileName: `cp1252-${i}.jsonl`, bytes: withBadLine(lines, k, quoted), line: k, expect: 'refuse', mentions: /Windows-1252/ };
  },
  utf16: (rng, i) => {
    const text = `${goodLines(rng, rng.int(1, 5)).join('\n')}\n`;
    const variant = rng.pick(['le-bom', 'be-bom', 'le', 'be']);
    const body = variant.startsWith('le') ? Buffer.from(text, 'utf16le') : utf16be(text);
    const bom = variant === 'le-bom' ? Buffer.from([0xff, 0xfe]) : variant === 'be-bom' ? Buffer.from([0xfe, 0xff]) : Buffer.alloc(0);
    return { kind: 'utf16', fileName: `utf16${variant}-${i}.jsonl`, bytes: Buffer.concat([bom, body]), line: null, expect: 'refuse', mentions: /UTF-16/ };
  },
  utf32: (rng, i) => {
    const text = `${goodLines(rng, rng.int(1, 5)).join('\n')}\n`;
    const bom = rng.chance(0.5) ? Buffer.from([0xff, 0xfe, 0, 0]) : Buffer.alloc(0);
    return { kind: 'utf32', fileName: `utf32-${i}.jsonl`, bytes: Buffer.concat([bom, utf32le(text)]), line: null, expect: 'refuse', mentions: /UTF-32/ };
  },
  nul: (rng, i) => {
    const lines = goodLines(rng, rng.int(1, 10));
    const k = rng.int(1, lines.length);
    if (rng.chance(0.5)) return { kind: 'nul', fileName: `nul-${i}.jsonl`, bytes: withBadLine(lines, k, Buffer.from('{"prompt": "a\\u0000b"}')), line: k, expect: 'refuse', mentions: /NUL/ };
    // A raw NUL byte in a CSV field (line k + 1: the header is line 1).
    const rows = ['prompt,answer', ...lines.map((_, j) => (j === k - 1 ? 'a\u0000b,1' : `q${j},${j}`))];
    return { kind: 'nul', fileName: `nul-${i}.csv`, bytes: Buffer.from(`${rows.join('\n')}\n`), line: k + 1, expect: 'refuse', mentions: /NUL/ };
  },
  'lone-surrogate': (rng, i) => {
    const lines = goodLines(rng, rng.int(1, 10));
    const k = rng.int(1, lines.length);
    const s = rng.pick(['\\ud800', '\\udfff', '\\udc00x', 'x\\ud83d']);
    return { kind: 'lone-surrogate', fileName: `surrogate-${i}.jsonl`, bytes: withBadLine(lines, k, Buffer.from(`{"prompt": "q ${s}"}`)), line: k, expect: 'refuse', mentions: /surrogate/ };
  },
  'deep-nesting': (rng, i) => {
    const lines = goodLines(rng, rng.int(1, 5));
    const k = rng.int(1, lines.length);
    const depth = rng.int(5_000, 50_000);
    const [open, close] = rng.chance(0.5) ? ['[', ']'] : ['{"a":', '}'];
    const line = `{"prompt": "deep", "meta": ${open.repeat(depth)}1${close.repeat(depth)}}`;
    return { kind: 'deep-nesting', fileName: `deep-${i}.jsonl`, bytes: withBadLine(lines, k, Buffer.from(line)), line: k, expect: 'refuse' };
  },
  'huge-line': (rng, i) => {
    const lines = goodLines(rng, rng.int(1, 5));
    const k = rng.int(1, lines.length);
    // Several MiB on one line, its string never closed.
    const line = `{"prompt": "${'x'.repeat(rng.int(4, 12) * 1024 * 1024)}`;
    return { kind: 'huge-line', fileName: `huge-${i}.jsonl`, bytes: withBadLine(lines, k, Buffer.from(line)), line: k, expect: 'refuse' };
  },
  'csv-unbalanced-quote': (rng, i) => {
    const n = rng.int(2, 10);
    const k = rng.int(2, n + 1);
    const rows = ['prompt,answer', ...Array.from({ length: n }, (_, j) => (j + 2 === k ? '"an open quote,1' : `"q ${j}",${j}`))];
    return { kind: 'csv-unbalanced-quote', fileName: `quote-${i}.csv`, bytes: Buffer.from(`${rows.join('\n')}\n`), line: k, expect: 'refuse' };
  },
  'csv-columns': (rng, i) => {
    const n = rng.int(2, 10);
    const k = rng.int(2, n + 1);
    const rows = ['prompt,answer', ...Array.from({ length: n }, (_, j) => (j + 2 === k ? `q ${j},${j},extra,cells` : `q ${j},${j}`))];
    return { kind: 'csv-columns', fileName: `columns-${i}.csv`, bytes: Buffer.from(`${rows.join('\n')}\n`), line: k, expect: 'refuse' };
  },
  empty: (rng, i) => {
    const bytes = rng.pick(['', '\n\n\n', '   \n\t\n', '\ufeff']);
    return { kind: 'empty', fileName: `empty-${i}.${rng.pick(['jsonl', 'csv', 'tsv'])}`, bytes: Buffer.from(bytes), line: null, expect: 'refuse' };
  },
  'csv-header-only': (_rng, i) => ({ kind: 'csv-header-only', fileName: `header-${i}.csv`, bytes: Buffer.from('prompt,answer\n'), line: null, expect: 'refuse' }),
  'double-bom': (rng, i) => {
    const lines = goodLines(rng, rng.int(1, 5));
    // Two byte-order marks: the decoder drops one, the parser the other; imported, nothing stored of either.
    return { kind: 'double-bom', fileName: `bom2-${i}.jsonl`, bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]), jsonl(lines)]), line: null, expect: 'accept', items: lines.length };
  },
  'escape-bytes': (rng, i) => {
    // Terminal escapes in a field name and value: refused (no prompt field), and never echoed raw.
    const lines = Array.from({ length: rng.int(1, 4) }, () => '{"\u001b[2J\u001b[31mquestion\u001b]0;owned\u0007": "\u001b[1mhi"}');
    return { kind: 'escape-bytes', fileName: `escape-${i}.jsonl`, bytes: jsonl(lines), line: null, expect: 'refuse' };
  },
  fifo: (_rng, i) => ({ kind: 'fifo', fileName: `fifo-${i}.jsonl`, special: 'fifo', line: null, expect: 'refuse', mentions: /FIFO|regular file/i }),
  'zero-link': (_rng, i) => ({ kind: 'zero-link', fileName: `zero-${i}.jsonl`, special: 'zero-link', line: null, expect: 'refuse', mentions: /device|regular file/i }),
  directory: (_rng, i) => ({ kind: 'directory', fileName: `folder-${i}.jsonl`, special: 'directory', line: null, expect: 'refuse' }),
  'over-size': (_rng, i) => ({ kind: 'over-size', fileName: `sparse-${i}.jsonl`, special: 'sparse', line: null, expect: 'refuse', mentions: /MiB/ }),
  // Controls: files that must import, whole.
  'control-bom': (rng, i) => {
    const lines = goodLines(rng, rng.int(1, 8));
    return { kind: 'control-bom', fileName: `bom-${i}.jsonl`, bytes: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), jsonl(lines)]), line: null, expect: 'accept', items: lines.length };
  },
  control: (rng, i) => {
    const lines = goodLines(rng, rng.int(1, 8));
    return { kind: 'control', fileName: `good-${i}.jsonl`, bytes: jsonl(lines), line: null, expect: 'accept', items: lines.length };
  },
};

export const IMPORT_KINDS = Object.keys(KINDS);

/** Case `i` of the probe: the kinds in turn (all, or those asked for), each drawn from the seeded generator. */
function makeCase(rng: Rng, i: number, kinds: readonly string[]): Case {
  return KINDS[kinds[i % kinds.length]](rng, i);
}

/** Writes the case's file into `dir` (a FIFO, a link to /dev/zero, ... for the special ones). */
function writeCase(c: Case, dir: string): string {
  const file = path.join(dir, c.fileName);
  if (c.special === 'fifo') execFileSync('mkfifo', [file]);
  else if (c.special === 'zero-link') fs.symlinkSync('/dev/zero', file);
  else if (c.special === 'directory') fs.mkdirSync(file);
  else if (c.special === 'sparse') {
    // 600 MiB of nothing: sparse, so it costs no disk; over the importer's limit.
    const fd = fs.openSync(file, 'w');
    fs.ftruncateSync(fd, 600 * 1024 * 1024);
    fs.closeSync(fd);
  } else fs.writeFileSync(file, c.bytes!);
  return file;
}

export interface DbCounts {
  datasets: number;
  items: number;
  staged: number;
}

function counts(home: string): DbCounts {
  const db = new Database(path.join(home, 'autodidact.db'), { readonly: true });
  try {
    return {
      datasets: db.prepare('SELECT count(*) FROM datasets').pluck().get() as number,
      items: db.prepare('SELECT count(*) FROM dataset_items').pluck().get() as number,
      staged: db.prepare('SELECT count(*) FROM datasets WHERE import_owner IS NOT NULL').pluck().get() as number,
    };
  } finally {
    db.close();
  }
}

/** What is wrong with a refusal's message, or null: it must name the file, the line where there is one, and what `mentions` asks. */
export function badRefusal(c: Case, message: string, shownName: string): string | null {
  if (!message.includes(shownName)) return `the message does not name the file: ${JSON.stringify(message.slice(0, 300))}`;
  if (c.line !== null && !message.includes(`${shownName}:${c.line}:`) && !new RegExp(`\\bline ${c.line}\\b`).test(message)) {
    return `the message does not name line ${c.line}: ${JSON.stringify(message.slice(0, 300))}`;
  }
  if (c.mentions && !c.mentions.test(message)) return `the message does not say ${c.mentions}: ${JSON.stringify(message.slice(0, 300))}`;
  return null;
}

/** What is wrong after one import (nothing: null), from the database counts before and after. */
export function badOutcome(c: Case, refused: boolean, before: DbCounts, after: DbCounts): string | null {
  if (after.staged) return `${after.staged} staged datasets left behind`;
  if (c.expect === 'refuse') {
    if (!refused) return 'imported, should have been refused';
    if (after.datasets !== before.datasets || after.items !== before.items) {
      return `a partial import: datasets ${before.datasets} → ${after.datasets}, items ${before.items} → ${after.items}`;
    }
    return null;
  }
  if (refused) return 'refused a well-formed file';
  if (after.datasets !== before.datasets + 1 || after.items !== before.items + c.items!) {
    return `imported ${after.items - before.items} items in ${after.datasets - before.datasets} datasets, expected ${c.items} in 1`;
  }
  return null;
}

export interface ImportProbeOptions extends ProbeOptions {
  /** Only these kinds (IMPORT_KINDS), e.g. to replay one. */
  kinds?: readonly string[];
}

export async function probeImports(o: ImportProbeOptions): Promise<ProbeReport> {
  const t0 = performance.now();
  const chosen = o.kinds?.length ? o.kinds : IMPORT_KINDS;
  const unknown = chosen.filter((k) => !(k in KINDS));
  if (unknown.length) throw new Error(`unknown import kinds ${unknown.join(', ')}; the kinds are ${IMPORT_KINDS.join(', ')}`);
  const rng = new Rng(o.seed);
  const work = tempDir(o.workDir, 'imports-');
  const home = path.join(work, 'home');
  const files = path.join(work, 'files');
  fs.mkdirSync(files, { recursive: true });
  const failures: string[] = [];
  const tally = { cli: { refused: 0, named: 0, accepted: 0 }, api: { refused: 0, named: 0, accepted: 0 } };
  const kinds = new Set<string>();
  let served: Served | null = null;
  let socket: ApiSocket | null = null;
  let cliMs = 0;
  try {
    served = await startServe(home, work);
    socket = await ApiSocket.open(served);
    for (let i = 0; i < o.count; i++) {
      const c = makeCase(rng, i, chosen);
      kinds.add(c.kind);
      const file = writeCase(c, files);
      const fail = (via: string, why: string) => failures.push(`case ${i} (${c.kind}, ${c.fileName}) via ${via}: ${why}`);

      // The command line, as a person types it.
      let before = counts(home);
      const t = performance.now();
      const cli = startCli(['datasets', 'import', file, '--name', `case-${i}-cli`], { AUTODIDACT_HOME: home });
      const killer = setTimeout(() => cli.child.kill('SIGKILL'), 60_000);
      const r = await cli.done;
      clearTimeout(killer);
      cliMs += performance.now() - t;
      const refused = r.code !== 0;
      if (r.signal) fail('cli', `hung or died (${r.signal})`);
      else if (refused && r.code !== 1) fail('cli', `exit status ${r.code}`);
      if (CRASH_SIGNS.test(r.stderr)) fail('cli', `crashed: ${r.stderr.slice(0, 400)}`);
      // eslint-disable-next-line no-control-regex
      if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(r.stderr + r.stdout)) fail('cli', 'raw control characters reached the terminal');
      const outcome = badOutcome(c, refused, before, counts(home));
      if (outcome) fail('cli', outcome);
      if (refused) {
        tally.cli.refused++;
        const why = badRefusal(c, r.stderr, file);
        if (why) fail('cli', why);
        else if (c.expect === 'refuse') tally.cli.named++;
      } else tally.cli.accepted++;

      // The web API: the same bytes, as the page uploads them.
      if (c.special) continue;
      before = counts(home);
      const reply = await socket.request('datasets.import', { fileName: c.fileName, data: c.bytes!.toString('base64'), name: `case-${i}-api` });
      if (!reply) {
        fail('api', 'no answer within 60 s');
        socket.close();
        socket = await ApiSocket.open(served);
        continue;
      }
      const apiRefused = reply.type === 'error';
      if (apiRefused) {
        tally.api.refused++;
        const code = (reply as { error: { code: string } }).error.code;
        if (code === 'INTERNAL') fail('api', `INTERNAL: ${(reply as { error: { message: string } }).error.message.slice(0, 300)}`);
        const why = badRefusal(c, (reply as { error: { message: string } }).error.message, c.fileName);
        if (why) fail('api', why);
        else if (c.expect === 'refuse') tally.api.named++;
      } else tally.api.accepted++;
      const apiOutcome = badOutcome(c, apiRefused, before, counts(home));
      if (apiOutcome) fail('api', apiOutcome);
      if (served.exited()) throw new Error(`autodidact serve died at case ${i} (${c.kind}):\n${served.output().slice(-2000)}`);
    }
    const alive = await socket.request('app.info', {});
    if (alive?.type !== 'result') failures.push(`the server no longer answers app.info after the imports: ${JSON.stringify(alive)}`);
    if (CRASH_SIGNS.test(served.output())) failures.push(`the server's output shows a crash: ${CRASH_SIGNS.exec(served.output())![0]}`);
    return {
      probe: 'imports',
      seed: o.seed,
      passed: failures.length === 0,
      seconds: round((performance.now() - t0) / 1000, 1),
      failures,
      cases: o.count,
      kinds: kinds.size,
      cli: tally.cli,
      api: tally.api,
      refused_with_file_and_line: tally.cli.named + tally.api.named,
      partial_imports: failures.filter((f) => f.includes('partial import') || f.includes('staged')).length,
      cli_ms_per_import: round(cliMs / o.count, 0),
    };
  } catch (e) {
    failures.push((e as Error).message);
    return { probe: 'imports', seed: o.seed, passed: false, seconds: round((performance.now() - t0) / 1000, 1), failures };
  } finally {
    socket?.close();
    await served?.stop();
    if (!o.keep) fs.rmSync(work, { recursive: true, force: true });
  }
}
