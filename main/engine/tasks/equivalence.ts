// Normalisation and equivalence of extracted answers.
//
// An answer is cleaned (LaTeX wrappers, units, separators), then parsed into one of:
//   scalar   a number or expression, stored as its values at fixed sample points;
//   tuple    (a, b) / [a, b) — ordered, bracket types must match (intervals);
//   list     a bare "a, b" or a set \{a, b\} — unordered (lists of solutions);
//   equation lhs = rhs, stored as lhs − rhs (equal up to sign);
//   choice   a multiple-choice letter (only in the multiple-choice format);
//   text     anything else: compared by normalised string, and not parseable (no vote).
//
// Choices worth knowing:
// - Percent is a unit and is stripped: "50%" ≡ "50", and "50%" ≢ "0.5". Treating 50% as both
//   50 and 0.5 would make equivalence intransitive (50 ≡ 50% ≡ 0.5 but 50 ≢ 0.5), and voting
//   clusters need a transitive relation. Degrees (^\circ) and currency ($) are stripped likewise.
// - Integral values compare exactly (1000000 ≢ 1000001); other values with a relative tolerance
//   of 1e-6 (0.3333333 ≡ 1/3, 0.333 ≢ 1/3).
// - Expressions with variables are compared by evaluation at 6 fixed pseudo-random points
//   (deterministic, so votes are reproducible): "2x+1" ≡ "1+2x", "(x+1)^2" ≡ "x^2+2x+1".
// - "3\frac{1}{2}" and "3 1/2" are mixed numbers (3.5), as in MATH answers.
// - "1,000" is one thousand (a comma followed by exactly three digits in a lone number).
import { createRequire } from 'node:module';
import type { MathJsInstance, MathNode } from 'mathjs';
import { readBraced } from './extract.ts';
import type { AnswerFormat } from './extract.ts';

// mathjs takes about a second to load; the app's main process and the command line import this
// module (through the run settings) long before they compare an answer, so load it on first use.
let mathjs: MathJsInstance | undefined;
const math = {
  parse(expr: string): MathNode {
    if (!mathjs) {
      const { create, all } = createRequire(import.meta.url)('mathjs') as typeof import('mathjs');
      mathjs = create(all, {});
    }
    return mathjs.parse(expr);
  },
};

export type ParsedAnswer =
  | { kind: 'scalar'; re: number[]; im: number[]; constant: boolean }
  | { kind: 'tuple'; open: string; close: string; items: ParsedAnswer[] }
  | { kind: 'list'; items: ParsedAnswer[] }
  | { kind: 'equation'; diff: ParsedAnswer & { kind: 'scalar' } }
  | { kind: 'choice'; letter: string }
  | { kind: 'text'; text: string };

export interface NormalizedAnswer {
  /** The cleaned string the parse started from (also the string compared for text answers). */
  normalized: string;
  parsed: ParsedAnswer;
  /** False for text: such answers are excluded from the vote. */
  parseable: boolean;
}

export interface EquivalenceOptions {
  format?: AnswerFormat;
  /** Relative tolerance for non-integral values (default 1e-6). */
  rtol?: number;
}

const MAX_LEN = 300; // longer "answers" are prose; do not hand them to the parser

const SAMPLE_POINTS = 6;

/** Deterministic value in [0.35, 2.65] for variable `name` at sample point `k` (no integers hit). */
function pointValue(name: string, k: number): number {
  // FNV-1a over "name#k", then a murmur3 finaliser so nearby inputs spread over the range.
  const key = `${name}#${k}`;
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  h = Math.imul(h ^ (h >>> 16), 2246822507);
  h = Math.imul(h ^ (h >>> 13), 3266489909);
  h = (h ^ (h >>> 16)) >>> 0;
  return 0.35 + (h / 4294967296) * 2.3;
}

const UNIT_WORDS_KEEP = new Set(['pi', 'sqrt', 'sin', 'cos', 'tan', 'log', 'ln', 'exp', 'infty', 'i', 'e']);

/** String-level cleanup: wrappers, spacing, units, separators. */
export function cleanAnswer(raw: string): string {
  let s = raw.trim();
  // An answer-is capture may still hold a box: "$\boxed{5}$".
  const box = /\\(?:boxed|fbox)\s*\{/.exec(s);
  if (box) {
    const g = readBraced(s, box.index + box[0].length - 1);
    if (g) s = g.content;
  }
  s = s
    .replace(/\*\*|__/g, '')
    .replace(/\\\$/g, '')
    .replace(/\$/g, '')
    .replace(/\\[()[\]]/g, '')
    .replace(/\\(?:left|right)(?:\.|\b)/g, '')
    .replace(/\\(?:displaystyle|textstyle)\b/g, '')
    .replace(/\\[dt]frac\b/g, '\\frac')
    .replace(/\{,\}/g, ',')
    // Thin spaces inside numbers are thousands separators: 1\,000 → 1000.
    .replace(/(\d)\\[,;:!]\s*(?=\d{3}(?!\d))/g, '$1')
    .replace(/\\[,;:! ]|\\q?quad\b|~/g, ' ')
    .replace(/\^\s*\{?\s*\\circ\s*\}?|°|\\degree\b/g, '')
    .replace(/\\%|%/g, '')
    .replace(/\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}/g, ' $1 ')
    .replace(/\s+/g, ' ')
    .trim();
  // "x = 5", "k=5", "x \in [1,2]": a single variable named on the left is not the answer.
  const assign = /^[a-zA-Z](?:_\{?\w+\}?)?\s*(?:=|\\in\b|\\approx\b)\s*(.+)$/.exec(s);
  if (assign && !assign[1].includes('=')) s = assign[1].trim();
  s = s.replace(/^\\approx\s*/, '');
  // Trailing unit words after a number: "5 dollars", "12 square feet", "3 cm^2".
  // (Words are separated by required spaces, so the pattern cannot backtrack exponentially.)
  const unit = /^(.*?(?:[\d})]|\\pi))\s+([a-zA-Z]{2,}\.?(?:\s+[a-zA-Z]+\.?)*)\s*(?:\^\{?[23]\}?)?$/.exec(s);
  if (unit && !unit[2].split(/\s+/).some((w) => UNIT_WORDS_KEEP.has(w.replace(/\.$/, '')))) {
    s = unit[1].trim();
  }
  s = s.replace(/[.\s]+$/, '').trim();
  // Lone numbers with separators: 1,000 / 1 000 / 12,345.67 → plain digits.
  if (/^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(s)) s = s.replace(/,/g, '');
  if (/^-?\d{1,3}(?: \d{3})+(?:\.\d+)?$/.test(s)) s = s.replace(/ /g, '');
  return s;
}

const COMMANDS: Readonly<Record<string, string>> = {
  pi: ' pi ',
  cdot: '*',
  times: '*',
  ast: '*',
  div: '/',
  infty: ' Infinity ',
  infinity: ' Infinity ',
  ln: ' log',
  log: ' log',
  exp: ' exp',
  sin: ' sin',
  cos: ' cos',
  tan: ' tan',
  e: ' e ',
};
const GREEK = new Set(['alpha', 'beta', 'gamma', 'delta', 'theta', 'lambda', 'mu', 'sigma', 'phi', 'omega', 'tau']);

class Unparseable extends Error {}

/** Reads one LaTeX argument: a braced group, a command, or a single character. */
function readArg(s: string, i: number): { arg: string; end: number } {
  while (s[i] === ' ') i++;
  if (s[i] === '{') {
    const g = readBraced(s, i);
    if (!g) throw new Unparseable('unbalanced braces');
    return { arg: g.content, end: g.end };
  }
  if (s[i] === '\\') {
    const m = /^\\[a-zA-Z]+/.exec(s.slice(i));
    if (m) return { arg: m[0], end: i + m[0].length };
  }
  if (i >= s.length) throw new Unparseable('missing argument');
  return { arg: s[i], end: i + 1 };
}

/** LaTeX math → mathjs syntax (\frac, \sqrt, ^{}, commands); throws Unparseable. */
export function latexToMathjs(s: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '\\') {
      const m = /^\\([a-zA-Z]+)/.exec(s.slice(i));
      if (!m) throw new Unparseable(`stray backslash in ${s}`);
      const name = m[1];
      i += m[0].length;
      if (name === 'frac') {
        const a = readArg(s, i);
        const b = readArg(s, a.end);
        out += `((${latexToMathjs(a.arg)})/(${latexToMathjs(b.arg)}))`;
        i = b.end;
      } else if (name === 'sqrt') {
        while (s[i] === ' ') i++;
        let index: string | null = null;
        if (s[i] === '[') {
          const close = s.indexOf(']', i);
          if (close < 0) throw new Unparseable('unclosed root index');
          index = s.slice(i + 1, close);
          i = close + 1;
        }
        const a = readArg(s, i);
        const body = latexToMathjs(a.arg);
        out += index === null ? ` sqrt(${body})` : ` nthRoot((${body}),(${latexToMathjs(index)}))`;
        i = a.end;
      } else if (name === 'log' && s[i] === '_') {
        // \log_b x → log(x, b)
        const b = readArg(s, i + 1);
        const x = readArg(s, b.end);
        out += ` log((${latexToMathjs(x.arg)}),(${latexToMathjs(b.arg)}))`;
        i = x.end;
      } else if (name in COMMANDS) out += COMMANDS[name];
      else if (GREEK.has(name)) out += ` ${name} `;
      else throw new Unparseable(`unknown command \\${name}`);
    } else if (c === '_') {
      // Subscripts name a variable (x_{12} → x_12); anything fancier is not arithmetic.
      const a = readArg(s, i + 1);
      if (!/^\w+$/.test(a.arg)) throw new Unparseable('subscript');
      out += `_${a.arg}`;
      i = a.end;
    } else if (c === '{') {
      out += '(';
      i++;
    } else if (c === '}') {
      out += ')';
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const ALLOWED_FUNCTIONS = new Set(['sqrt', 'nthRoot', 'log', 'exp', 'sin', 'cos', 'tan', 'abs']);
const CONSTANTS = new Set(['pi', 'e', 'i', 'Infinity']);
// Two-letter runs are products ("ab" = a·b) unless they are common words.
const PROSE_WORDS = new Set(['no', 'or', 'is', 'an', 'it', 'to', 'of', 'in', 'on', 'at', 'as', 'be', 'by', 'if', 'so', 'we']);
const ALLOWED_OPS = new Set(['+', '-', '*', '/', '^', '!']);

/** Parses a scalar expression and evaluates it at the sample points; throws Unparseable. */
function parseScalar(expr: string): ParsedAnswer & { kind: 'scalar' } {
  let src = expr.trim();
  if (src === '') throw new Unparseable('empty');
  // Mixed numbers: 3\frac{1}{2} and 3 1/2 are 3 + 1/2 (with the sign applying to the whole).
  const mixed = /^(-?)(\d+)\s*(\\frac\s*(?:\{\d+\}|\d)\s*(?:\{\d+\}|\d)|\d+\/\d+)$/.exec(src);
  if (mixed && (mixed[3].startsWith('\\') || /\s/.test(src))) {
    src = `${mixed[1]}(${mixed[2]}+${mixed[3]})`;
  }
  let node: MathNode;
  try {
    const converted = latexToMathjs(src);
    // Words are prose, not products of variables: "blue" is text, not b·l·u·e.
    for (const w of converted.match(/[a-zA-Z]+/g) ?? []) {
      if (ALLOWED_FUNCTIONS.has(w) || CONSTANTS.has(w) || GREEK.has(w)) continue;
      if (w.length >= 3 || PROSE_WORDS.has(w.toLowerCase())) throw new Unparseable(`word ${w}`);
    }
    node = math.parse(converted);
  } catch (e) {
    if (e instanceof Unparseable) throw e;
    throw new Unparseable(String(e));
  }
  // Only arithmetic: no assignments, indexing, units, matrices or unknown functions.
  const vars = new Set<string>();
  node.traverse((n, path, parent) => {
    if (n.type === 'SymbolNode') {
      const name = (n as unknown as { name: string }).name;
      if (path === 'fn' && parent?.type === 'FunctionNode') {
        if (!ALLOWED_FUNCTIONS.has(name)) throw new Unparseable(`function ${name}`);
      } else if (!CONSTANTS.has(name)) vars.add(name);
    } else if (n.type === 'OperatorNode') {
      const op = (n as unknown as { op: string; fn: string }).op;
      const fn = (n as unknown as { fn: string }).fn;
      if (!ALLOWED_OPS.has(op) && fn !== 'unaryMinus' && fn !== 'unaryPlus') throw new Unparseable(op);
    } else if (!['ConstantNode', 'ParenthesisNode', 'FunctionNode'].includes(n.type)) {
      throw new Unparseable(n.type);
    } else if (n.type === 'ConstantNode' && typeof (n as unknown as { value: unknown }).value !== 'number') {
      throw new Unparseable('non-numeric constant');
    }
  });
  // Multi-letter symbols are products of single letters ("ab" = a·b), as in written math.
  for (const v of [...vars]) {
    if (/^[a-zA-Z]{2,}$/.test(v) && !GREEK.has(v)) {
      vars.delete(v);
      for (const ch of v) vars.add(ch);
    }
  }
  if (vars.size > 0) {
    node = node.transform((n) => {
      const name = (n as unknown as { name?: string }).name;
      if (n.type === 'SymbolNode' && name && /^[a-zA-Z]{2,}$/.test(name) && !GREEK.has(name) && !CONSTANTS.has(name) && !ALLOWED_FUNCTIONS.has(name)) {
        return math.parse(name.split('').join('*'));
      }
      return n;
    });
  }
  const code = node.compile();
  const points = vars.size === 0 ? 1 : SAMPLE_POINTS;
  const re: number[] = [];
  const im: number[] = [];
  for (let k = 0; k < points; k++) {
    const scope: Record<string, number> = {};
    for (const v of vars) scope[v] = pointValue(v, k);
    let val: unknown;
    try {
      val = code.evaluate(scope);
    } catch {
      val = NaN;
    }
    if (typeof val === 'number') {
      re.push(val);
      im.push(0);
    } else if (val && typeof val === 'object' && 're' in val && 'im' in val) {
      re.push(Number((val as { re: number }).re));
      im.push(Number((val as { im: number }).im));
    } else throw new Unparseable('non-numeric value');
  }
  if (vars.size === 0 && Number.isNaN(re[0])) throw new Unparseable('NaN');
  return { kind: 'scalar', re, im, constant: vars.size === 0 };
}

/** Splits at top-level commas (outside (), [], {}). */
function splitTopLevel(s: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (depth === 0 && s.startsWith(sep, i)) {
      parts.push(s.slice(start, i));
      start = i + sep.length;
    }
  }
  parts.push(s.slice(start));
  return parts.map((p) => p.trim());
}

/** Index of the bracket closing the one at 0, or -1. */
function matchingClose(s: string): number {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if ('([{'.includes(s[i])) depth++;
    else if (')]}'.includes(s[i])) {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

function parseStructured(s: string, format: AnswerFormat): ParsedAnswer {
  if (format === 'multiple-choice') {
    const m = /^\(?([A-Ja-j])\)?[.:)]?$/.exec(s);
    if (m) return { kind: 'choice', letter: m[1].toUpperCase() };
    throw new Unparseable('not an option letter');
  }
  const unions = splitTopLevel(s, '\\cup');
  if (unions.length > 1) return { kind: 'tuple', open: '∪', close: '∪', items: unions.map((u) => parseStructured(u, format)) };
  // Sets \{1, 2\} are unordered lists.
  const set = /^\\\{(.*)\\\}$/.exec(s);
  if (set) return { kind: 'list', items: splitTopLevel(set[1], ',').map((p) => parseStructured(p, format)) };
  if ((s[0] === '(' || s[0] === '[') && matchingClose(s) === s.length - 1) {
    const inner = s.slice(1, -1);
    const items = splitTopLevel(inner, ',');
    if (items.length > 1) {
      return { kind: 'tuple', open: s[0], close: s[s.length - 1], items: items.map((p) => parseStructured(p, format)) };
    }
  }
  const items = splitTopLevel(s, ',');
  if (items.length > 1) return { kind: 'list', items: items.map((p) => parseStructured(p, format)) };
  const sides = splitTopLevel(s, '=');
  if (sides.length === 2) {
    const diff = parseScalar(`(${sides[0]})-(${sides[1]})`);
    return { kind: 'equation', diff };
  }
  if (sides.length > 2) throw new Unparseable('chained equation');
  return parseScalar(s);
}

/** Cleans and parses an answer; never throws (unparseable answers become text). */
export function normalizeAnswer(raw: string, format: AnswerFormat = 'auto'): NormalizedAnswer {
  // A whole paragraph is never a parseable answer; skip the cleanup regexes on it.
  const normalized = raw.length > 4 * MAX_LEN ? raw.trim() : cleanAnswer(raw);
  if (normalized.length <= MAX_LEN && normalized !== '') {
    try {
      return { normalized, parsed: parseStructured(normalized, format), parseable: true };
    } catch (e) {
      if (!(e instanceof Unparseable)) throw e;
    }
  }
  const text = normalized.toLowerCase().replace(/\s+/g, ' ').trim();
  return { normalized, parsed: { kind: 'text', text }, parseable: false };
}

function closeNumbers(a: number, b: number, rtol: number): boolean {
  if (a === b) return true; // also ±Infinity
  if (!Number.isFinite(a) || !Number.isFinite(b)) return Number.isNaN(a) && Number.isNaN(b);
  const ia = Math.abs(a - Math.round(a)) < 1e-9;
  const ib = Math.abs(b - Math.round(b)) < 1e-9;
  // Integers compare exactly (within float noise): 1000000 ≢ 1000001 despite the tolerance.
  if (ia && ib && Math.abs(a) < 1e15) return Math.round(a) === Math.round(b);
  return Math.abs(a - b) <= rtol * Math.max(Math.abs(a), Math.abs(b)) || Math.abs(a - b) < 1e-12;
}

function scalarsEqual(a: ParsedAnswer & { kind: 'scalar' }, b: ParsedAnswer & { kind: 'scalar' }, rtol: number, sign = 1): boolean {
  const n = Math.max(a.re.length, b.re.length);
  let compared = 0;
  for (let k = 0; k < n; k++) {
    // A constant has one value; it stands for itself at every point.
    const ka = a.constant ? 0 : k;
    const kb = b.constant ? 0 : k;
    const [ar, ai, br, bi] = [a.re[ka], a.im[ka], sign * b.re[kb], sign * b.im[kb]];
    if (Number.isNaN(ar) && Number.isNaN(br)) continue; // outside both domains at this point
    if (!closeNumbers(ar, br, rtol) || !closeNumbers(ai, bi, rtol)) return false;
    compared++;
  }
  return compared > 0;
}

export function parsedEqual(a: ParsedAnswer, b: ParsedAnswer, rtol = 1e-6): boolean {
  if (a.kind === 'scalar' && b.kind === 'scalar') return scalarsEqual(a, b, rtol);
  if (a.kind === 'equation' && b.kind === 'equation') {
    return scalarsEqual(a.diff, b.diff, rtol) || scalarsEqual(a.diff, b.diff, rtol, -1);
  }
  if (a.kind === 'choice' && b.kind === 'choice') return a.letter === b.letter;
  if (a.kind === 'text' && b.kind === 'text') return a.text === b.text;
  if (a.kind === 'tuple' && b.kind === 'tuple') {
    return (
      a.open === b.open &&
      a.close === b.close &&
      a.items.length === b.items.length &&
      a.items.every((x, i) => parsedEqual(x, b.items[i], rtol))
    );
  }
  if (a.kind === 'list' && b.kind === 'list') {
    if (a.items.length !== b.items.length) return false;
    // Unordered: match every item of a to a distinct item of b.
    const used = new Array<boolean>(b.items.length).fill(false);
    return a.items.every((x) => {
      const j = b.items.findIndex((y, k) => !used[k] && parsedEqual(x, y, rtol));
      if (j < 0) return false;
      used[j] = true;
      return true;
    });
  }
  return false;
}

/** Are two raw answers equivalent? Text answers compare by normalised string. */
export function answersEquivalent(a: string | NormalizedAnswer, b: string | NormalizedAnswer, opts: EquivalenceOptions = {}): boolean {
  const na = typeof a === 'string' ? normalizeAnswer(a, opts.format) : a;
  const nb = typeof b === 'string' ? normalizeAnswer(b, opts.format) : b;
  return parsedEqual(na.parsed, nb.parsed, opts.rtol ?? 1e-6);
}
