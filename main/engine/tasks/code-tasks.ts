// Programming problems as dataset items (issue 19): what the model reads is a description and a
// function signature; the hidden tests (and a reference solution, where the source has one) are
// the item's evaluation-only answer, like any hidden answer (datasets.ts), so no prompt, reward
// or metadata ever carries them. The answer is JSON (`HiddenCodeAnswer`), read back by
// `readHiddenCodeAnswer` for measurement (pass@1 on hidden tests) only.
//
// Import shapes (JSON Lines, recognised by their fields when no field mapping is given):
//   MBPP       {task_id, text | prompt, code, test_list, test_setup_code?, test_imports?}
//              (the original and the sanitized release); the signature is the `def` line of the
//              reference `code` that the tests call.
//   HumanEval  {task_id, prompt, canonical_solution?, test, entry_point}; the prompt (imports,
//              signature, docstring) is shown as it is; the hidden tests are `test` then
//              `check(entry_point)`.
import type { SandboxLanguage } from '../../sandbox/protocol.ts';
import type { HiddenTests } from '../code/execute.ts';

export type CodeTaskShape = 'mbpp' | 'humaneval';

/** The evaluation-only answer of a code task, stored as JSON in the item's answer. */
export interface HiddenCodeAnswer extends HiddenTests {
  kind: 'code';
  /** The function the tests call. */
  entryPoint: string;
  /** A solution known to pass (measurement and checks only); null where the source has none. */
  reference: string | null;
}

/** A problem with one record; the importer names the file and line. */
export class CodeTaskError extends Error {
  override name = 'CodeTaskError';
}

/** Which fields each shape reads as prompt and hidden answer (for the import's mapping note). */
export const CODE_TASK_FIELDS: Record<CodeTaskShape, { prompt: string; answer: string; note: string }> = {
  mbpp: {
    prompt: 'text',
    answer: 'test_list',
    note: 'MBPP-shaped code tasks: prompt = "text" (or "prompt") with the signature of the function the tests call; hidden, for evaluation only: "test_list" with its setup code and the reference "code"',
  },
  humaneval: {
    prompt: 'prompt',
    answer: 'test',
    note: 'HumanEval-shaped code tasks: prompt = "prompt" (signature and docstring); hidden, for evaluation only: "test" run with check(entry_point) and "canonical_solution"',
  },
};

const isString = (v: unknown): v is string => typeof v === 'string';

/** The shape a record has, or null for an ordinary dataset record. */
export function codeTaskShape(record: Record<string, unknown> | undefined): CodeTaskShape | null {
  if (!record) return null;
  if (Array.isArray(record.test_list) && isString(record.code) && (isString(record.text) || isString(record.prompt))) return 'mbpp';
  if (isString(record.prompt) && isString(record.test) && isString(record.entry_point)) return 'humaneval';
  return null;
}

/** What the model reads for a function to write: it answers with the function and tests of its own (method code-consensus). */
export function codeTaskPrompt(description: string, signature: string, language: SandboxLanguage): string {
  const lang = language === 'python' ? 'Python' : 'JavaScript';
  const fence = language === 'python' ? 'python' : 'javascript';
  const assertion = language === 'python' ? 'assert statements' : 'assert(condition) lines';
  return `${description.trim()}\n\nWrite the ${lang} function:\n${signature}\n\nAnswer with the function in a \`\`\`${fence} code block, then a second code block of ${assertion} that test it.\n`;
}

/** `def name(args):` lines of Python code, in order. */
function pythonDefs(code: string): { name: string; line: string }[] {
  return [...code.matchAll(/^def\s+([A-Za-z_]\w*)\s*\(.*$/gm)].map((m) => ({ name: m[1], line: m[0].trimEnd() }));
}

function mbppItem(record: Record<string, unknown>): { prompt: string; answer: string; metadata: Record<string, unknown> } {
  const description = isString(record.text) ? record.text : (record.prompt as string);
  const code = (record.code as string).replace(/\r\n/g, '\n');
  const tests = record.test_list as unknown[];
  if (tests.length === 0 || !tests.every(isString)) throw new CodeTaskError('"test_list" must be a non-empty list of assert statements (strings)');
  const testText = (tests as string[]).join('\n');
  const defs = pythonDefs(code);
  const entry = defs.find((d) => new RegExp(`\\b${d.name}\\s*\\(`).test(testText));
  if (!entry) throw new CodeTaskError(`no function of "code" (${defs.map((d) => d.name).join(', ') || 'none defined'}) is called by "test_list"`);
  const setup = [record.test_setup_code, ...(Array.isArray(record.test_imports) ? record.test_imports : [])].filter(isString).filter((s) => s.trim() !== '');
  const hidden: HiddenCodeAnswer = { kind: 'code', language: 'python', entryPoint: entry.name, setup: setup.join('\n'), tests: testText, reference: code };
  const metadata: Record<string, unknown> = { format: 'mbpp', language: 'python', entry_point: entry.name, signature: entry.line };
  if (record.task_id !== undefined) metadata.task_id = record.task_id;
  return { prompt: codeTaskPrompt(description, entry.line, 'python'), answer: JSON.stringify(hidden), metadata };
}

function humanEvalItem(record: Record<string, unknown>): { prompt: string; answer: string; metadata: Record<string, unknown> } {
  const prompt = record.prompt as string;
  const entryPoint = record.entry_point as string;
  if (!/^[A-Za-z_]\w*$/.test(entryPoint)) throw new CodeTaskError(`"entry_point" must be a Python function name, got ${JSON.stringify(entryPoint)}`);
  const def = pythonDefs(prompt).find((d) => d.name === entryPoint);
  if (!def) throw new CodeTaskError(`"prompt" defines no function "${entryPoint}" (the entry_point)`);
  const reference = isString(record.canonical_solution) ? `${prompt}${record.canonical_solution}` : null;
  const hidden: HiddenCodeAnswer = { kind: 'code', language: 'python', entryPoint, setup: '', tests: `${record.test as string}\n\ncheck(${entryPoint})\n`, reference };
  const metadata: Record<string, unknown> = { format: 'humaneval', language: 'python', entry_point: entryPoint, signature: def.line };
  if (record.task_id !== undefined) metadata.task_id = record.task_id;
  return { prompt, answer: JSON.stringify(hidden), metadata };
}

/** One record as a dataset item: the prompt, the hidden answer (JSON), metadata without tests or solutions. */
export function codeTaskItem(record: Record<string, unknown>, shape: CodeTaskShape): { prompt: string; answer: string; metadata: Record<string, unknown> } {
  if (codeTaskShape(record) !== shape) {
    const needs = shape === 'mbpp' ? '"text" (or "prompt"), "code" and "test_list"' : '"prompt", "test" and "entry_point"';
    throw new CodeTaskError(`this file's first record is a ${shape === 'mbpp' ? 'MBPP' : 'HumanEval'} task, so every record needs ${needs} as text`);
  }
  return shape === 'mbpp' ? mbppItem(record) : humanEvalItem(record);
}

/** A code task's hidden answer, or null when the answer is not one (an ordinary dataset's). */
export function readHiddenCodeAnswer(answer: string | null): HiddenCodeAnswer | null {
  if (answer === null || !answer.startsWith('{')) return null;
  let value: unknown;
  try {
    value = JSON.parse(answer);
  } catch {
    return null;
  }
  const v = value as Partial<HiddenCodeAnswer>;
  if (v?.kind !== 'code' || (v.language !== 'python' && v.language !== 'javascript') || !isString(v.tests) || !isString(v.setup) || !isString(v.entryPoint)) return null;
  return { kind: 'code', language: v.language, entryPoint: v.entryPoint, setup: v.setup, tests: v.tests, reference: isString(v.reference) ? v.reference : null };
}
