// JSON from a model folder's files (config.json, tokenizer.json, a safetensors header), with a
// parse error that says where the text stops being JSON (line and column) but never quotes it.
// V8's own message shows the text around the fault ("Unexpected token 'r', "root:x:0:0"... is
// not valid JSON"): a file's contents must stay out of messages a request can read.

/** JSON.parse of `text`; a SyntaxError becomes "`what` is not valid JSON (line L, column C)". */
export function parseJsonText(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} is not valid JSON (${where(text, e instanceof Error ? e.message : '')})`);
  }
}

const ENDS_EARLY = /Unexpected end of JSON input/;

const POSITION = /at position (\d+)/;

/** Whether `text` fails to parse at a character it holds, rather than by ending too early. */
function failsInside(text: string): boolean {
  try {
    JSON.parse(text);
    return false;
  } catch (e) {
    const message = (e as Error).message;
    // "Expected property name or '}' in JSON at position 1" for "{" is an early end too.
    const at = POSITION.exec(message);
    return !ENDS_EARLY.test(message) && !(at && Number(at[1]) >= text.length);
  }
}

/** The fault's place in words, from the offset V8 names or, where it names none, by bisection. */
function where(text: string, message: string): string {
  if (text.trim() === '') return 'the file is empty';
  if (ENDS_EARLY.test(message)) return 'it ends before the JSON value does';
  const named = POSITION.exec(message);
  let offset: number;
  if (named) {
    offset = Number(named[1]);
    if (offset >= text.length) return 'it ends before the JSON value does';
  } else {
    // V8 names no position for an unexpected token. Every prefix shorter than the fault is valid
    // JSON so far (it fails only by ending); every longer one holds the fault. The shortest
    // failing prefix ends just after it. (Only on this error path: log2(length) parses.)
    let lo = 0;
    let hi = text.length;
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (failsInside(text.slice(0, mid))) hi = mid;
      else lo = mid;
    }
    offset = hi - 1;
  }
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}
