// Acceptance 1 of issue 19: hostile programs in the sandbox. Each one would, if it got out,
// finish normally (or print what it stole); contained, it ends as `error` or `timeout`. After
// all of them the host is healthy: its memory has not grown with theirs, and an ordinary
// program still runs in each language.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxPool } from '../../../main/sandbox/pool.ts';
import { MAX_OUTPUT_CHARS, type SandboxLanguage } from '../../../main/sandbox/protocol.ts';

interface Hostile {
  name: string;
  language: SandboxLanguage;
  code: string;
  expect: 'error' | 'timeout';
  /** What the error must say (so a program that fails for another reason does not pass). */
  error?: RegExp;
  /** Its wall-clock limit (default `DEFAULT_MS`): loops get a short one, memory hogs a long one. */
  timeoutMs?: number;
}

/** A program that is meant to time out does so quickly. */
const LOOP_MS = 700;
/** Generous for the rest, so that a busy machine does not turn their errors into timeouts. */
const DEFAULT_MS = 3_000;
/** Enough to fill 192 MiB, or to format a JavaScript error's traceback, on a busy machine. */
const SLOW_MS = 8_000;

/** A secret in the host's environment: a program that reads it has reached the host. */
const CANARY = 'sandbox-canary-5f1e';

/** Reaches Pyodide's foreign-function interface without importing it (`_pyodide_core` re-created). */
const PY_CORE = `import _imp
class _Spec:
    name = '_pyodide_core'
core = _imp.create_builtin(_Spec())
`;

const PYTHON: Hostile[] = [
  { name: 'infinite loop', language: 'python', timeoutMs: LOOP_MS, code: 'while True:\n    pass', expect: 'timeout' },
  {
    name: 'a loop that swallows the interrupt',
    language: 'python',
    timeoutMs: LOOP_MS,
    code: 'while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass',
    expect: 'timeout',
  },
  { name: 'deep recursion', language: 'python', timeoutMs: SLOW_MS, code: 'def f(n):\n    return f(n + 1)\nf(0)', expect: 'error', error: /RecursionError/ },
  { name: 'one huge allocation', language: 'python', timeoutMs: SLOW_MS, code: 'x = bytearray(2 ** 31)', expect: 'error', error: /MemoryError|OverflowError/ },
  {
    name: 'allocation until memory runs out',
    language: 'python', timeoutMs: SLOW_MS,
    code: 'chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 2 ** 20))',
    expect: 'error',
    error: /MemoryError/,
  },
  { name: 'a string of ten gigabytes', language: 'python', code: "s = 'x' * 10 ** 10", expect: 'error', error: /MemoryError|OverflowError/ },
  {
    name: 'filling the in-memory file system',
    language: 'python', timeoutMs: SLOW_MS,
    code: "with open('/tmp/big', 'wb') as f:\n    for _ in range(64):\n        f.write(b'0' * 2 ** 24)",
    expect: 'error',
    error: /open is not allowed/,
  },
  {
    name: 'writing a file through os.open',
    language: 'python',
    code: "import os\nfd = os.open('/tmp/x', os.O_CREAT | os.O_WRONLY)\nos.write(fd, b'0' * 2 ** 20)",
    expect: 'error',
    error: /open is not allowed/,
  },
  { name: 'reading /etc/passwd', language: 'python', code: "print(open('/etc/passwd').read())", expect: 'error', error: /FileNotFoundError/ },
  {
    name: "reading the app's own files",
    language: 'python',
    code: `print(open(${JSON.stringify(new URL('../../../package.json', import.meta.url).pathname)}).read())`,
    expect: 'error',
    error: /FileNotFoundError/,
  },
  { name: 'listing the host root', language: 'python', code: "import os\nassert 'usr' in os.listdir('/'), os.listdir('/')", expect: 'error', error: /AssertionError/ },
  { name: "the host's environment", language: 'python', code: `import os\nassert os.environ.get('SANDBOX_CANARY') == ${JSON.stringify(CANARY)}`, expect: 'error', error: /AssertionError/ },
  { name: 'import socket', language: 'python', code: "import socket\nsocket.create_connection(('127.0.0.1', 22))", expect: 'error', error: /not available/ },
  {
    name: 'a socket through importlib (which raises no import event)',
    language: 'python',
    code: "import importlib\nimportlib.import_module('socket').create_connection(('127.0.0.1', 22))",
    expect: 'error',
    error: /'_socket' is not available/,
  },
  { name: 'urllib to the network', language: 'python', code: "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:7860')", expect: 'error', error: /not available/ },
  { name: 'import subprocess', language: 'python', code: "import subprocess\nsubprocess.run(['ls'])", expect: 'error', error: /not available/ },
  { name: 'os.system', language: 'python', code: "import os\nassert os.system('touch /tmp/pwned') == 0", expect: 'error', error: /not allowed/ },
  { name: 'os.fork', language: 'python', code: 'import os\nos.fork()', expect: 'error', error: /not allowed|not support|OSError/ },
  { name: 'os.execv', language: 'python', code: "import os\nos.execv('/bin/sh', ['sh', '-c', 'id'])", expect: 'error', error: /not allowed/ },
  { name: 'os.kill of the host', language: 'python', code: 'import os, signal\nos.kill(1, 9)', expect: 'error', error: /not available|not allowed/ },
  { name: 'import ctypes', language: 'python', code: "import ctypes\nctypes.CDLL(None).emscripten_run_script(b'1')", expect: 'error', error: /not available/ },
  { name: 'import js (the host globals)', language: 'python', code: 'import js\njs.process.exit(1)', expect: 'error', error: /not available/ },
  { name: 'import pyodide_js', language: 'python', code: "import pyodide_js\npyodide_js.mountNodeFS('/mnt', '/')", expect: 'error', error: /not available/ },
  { name: 'pyodide.code.run_js', language: 'python', code: "from pyodide.code import run_js\nrun_js('process.exit(1)')", expect: 'error', error: /not available/ },
  { name: 'js through importlib', language: 'python', code: "import importlib\nimportlib.import_module('js').process.exit(1)", expect: 'error', error: /No module named 'js'/ },
  {
    name: 'pyodide_js (the API object) through importlib',
    language: 'python',
    code: "import importlib\nimportlib.import_module('pyodide_js').mountNodeFS('/mnt', '/')",
    expect: 'error',
    error: /No module named 'pyodide_js'/,
  },
  {
    name: 'a JavaScript function from the re-created FFI, then its constructor',
    language: 'python',
    timeoutMs: SLOW_MS,
    code: `${PY_CORE}f = core.create_once_callable(lambda: 0)\nf.constructor('return process')().exit(1)`,
    expect: 'error',
    error: /disabled in the sandbox/,
  },
  {
    name: 'a JavaScript array from the re-created FFI, then the Function constructor',
    language: 'python',
    timeoutMs: SLOW_MS,
    code: `${PY_CORE}core.to_js([1]).constructor.constructor('return process')().exit(1)`,
    expect: 'error',
    error: /disabled in the sandbox/,
  },
  { name: 'gc.get_objects', language: 'python', code: 'import gc\nprint(len(gc.get_objects()))', expect: 'error', error: /not available/ },
  {
    name: 'another audit hook does not switch ours off',
    language: 'python',
    code: "import sys, importlib\nsys.addaudithook(lambda *a: None)\nimportlib.import_module('socket').socket()",
    expect: 'error',
    error: /not available/,
  },
  { name: 'threads', language: 'python', code: 'import threading\nthreading.Thread(target=lambda: None).start()', expect: 'error', error: /can't start new thread|not supported/ },
  { name: 'asyncio (the JavaScript event loop)', language: 'python', code: 'import asyncio\nasyncio.get_event_loop()', expect: 'error', error: /not available/ },
  { name: 'os._exit', language: 'python', timeoutMs: SLOW_MS, code: 'import os\nos._exit(0)', expect: 'error' },
  { name: 'printing for ever', language: 'python', timeoutMs: LOOP_MS, code: "while True:\n    print('x' * 1000)", expect: 'timeout' },
];

const JAVASCRIPT: Hostile[] = [
  { name: 'infinite loop', language: 'javascript', timeoutMs: LOOP_MS, code: 'while (true) {}', expect: 'timeout' },
  { name: 'a loop that catches the interrupt', language: 'javascript', timeoutMs: LOOP_MS, code: 'for (;;) { try { while (true) {} } catch (e) {} }', expect: 'timeout' },
  { name: 'deep recursion', language: 'javascript', code: 'function f(n) { return f(n + 1) + 1; }\nf(0);', expect: 'error', error: /stack overflow|RangeError/ },
  { name: 'one huge allocation', language: 'javascript', timeoutMs: SLOW_MS, code: 'const b = new ArrayBuffer(2 ** 31); new Uint8Array(b).fill(1);', expect: 'error', error: /memory|RangeError|InternalError/ },
  { name: 'a string doubled for ever', language: 'javascript', timeoutMs: SLOW_MS, code: "let s = 'x';\nwhile (true) s += s;", expect: 'error', error: /memory|RangeError|length|InternalError/ },
  { name: 'arrays until memory runs out', language: 'javascript', timeoutMs: SLOW_MS, code: 'const a = [];\nwhile (true) a.push(new Float64Array(2 ** 20));', expect: 'error', error: /memory|RangeError|InternalError/ },
  { name: 'require', language: 'javascript', code: "require('child_process').execSync('id');", expect: 'error', error: /ReferenceError/ },
  { name: 'a Node worker', language: 'javascript', code: "new Worker('data:text/javascript,1', { eval: true });", expect: 'error', error: /ReferenceError/ },
  { name: 'the process object', language: 'javascript', code: 'process.exit(1);', expect: 'error', error: /ReferenceError/ },
  { name: 'the global of new Function', language: 'javascript', code: "const g = new Function('return this')();\ng.process.binding('fs');", expect: 'error', error: /TypeError/ },
  { name: 'eval of require', language: 'javascript', code: "eval('globalThis.require(\"fs\")');", expect: 'error', error: /TypeError|ReferenceError/ },
  { name: 'fetch', language: 'javascript', code: "fetch('http://127.0.0.1:7860/');", expect: 'error', error: /ReferenceError/ },
  { name: 'a module import statement', language: 'javascript', code: "import * as os from 'os';\nos.exec(['id']);", expect: 'error', error: /could not load module|SyntaxError/ },
  { name: 'WebAssembly', language: 'javascript', code: 'new WebAssembly.Memory({ initial: 1 });', expect: 'error', error: /ReferenceError/ },
  { name: 'promise jobs that never end', language: 'javascript', timeoutMs: SLOW_MS, code: 'let n = 0;\nfunction f() { n++; Promise.resolve().then(f); }\nf();', expect: 'error', error: /promise jobs|memory/ },
  { name: 'Atomics.wait for ever', language: 'javascript', code: 'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);', expect: 'error' },
  { name: 'printing for ever', language: 'javascript', timeoutMs: LOOP_MS, code: "while (true) console.log('x'.repeat(1000));", expect: 'timeout' },
  { name: 'throwing a non-error', language: 'javascript', code: 'throw 42;', expect: 'error', error: /uncaught 42/ },
];

describe('the sandbox contains hostile programs', () => {
  let pool: SandboxPool;
  let heapBefore = 0;

  beforeAll(async () => {
    process.env.SANDBOX_CANARY = CANARY;
    // One worker per language: these programs test containment, not throughput. Short limits
    // keep the suite quick; the grace covers a busy machine.
    pool = new SandboxPool({ size: 1, timeoutMs: DEFAULT_MS, graceMs: 700, memoryMb: 192 });
    await Promise.all([pool.warm('python'), pool.warm('javascript')]);
    global.gc?.();
    heapBefore = process.memoryUsage().heapUsed;
  });

  afterAll(async () => {
    delete process.env.SANDBOX_CANARY;
    await pool?.close();
  });

  it('has at least 40 of them', () => {
    expect(PYTHON.length + JAVASCRIPT.length).toBeGreaterThanOrEqual(40);
  });

  it.each([...PYTHON, ...JAVASCRIPT].map((h) => [`${h.language}: ${h.name}`, h] as const))('%s', async (_label, h) => {
    const result = await pool.run(h.language, h.code, { timeoutMs: h.timeoutMs });
    expect(result.status, `${result.error ?? ''}\n${result.output}`).toBe(h.expect);
    if (h.error) expect(result.error).toMatch(h.error);
    expect(result.output).not.toContain(CANARY);
    expect(result.output).not.toContain('root:x:0:0');
    expect(result.output.length).toBeLessThanOrEqual(MAX_OUTPUT_CHARS + 100);
  });

  it('leaves the host healthy: ordinary programs run, no state leaked between programs, memory flat', async () => {
    const py = await pool.run('python', 'import math, builtins\nprint(math.sqrt(16), len([1, 2]), sum(range(5)))');
    expect(py).toMatchObject({ status: 'ok', output: '4.0 2 10\n' });
    const js = await pool.run('javascript', 'console.log([1, 2, 3].map((x) => x * x).join(","), typeof process)');
    expect(js).toMatchObject({ status: 'ok', output: '1,4,9 undefined\n' });
    global.gc?.();
    // The host's own heap; the workers' memory goes with them.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 2 ** 20);
    const stats = pool.stats();
    expect(stats.timeouts + stats.errors).toBeGreaterThanOrEqual(40);
  });

  it('lets ordinary programs import the standard library they use', async () => {
    const modules = ['collections', 'dataclasses', 'functools', 'itertools', 'heapq', 're', 'math', 'string', 'fractions', 'decimal', 'statistics', 'typing', 'logging', 'urllib.parse', 'json', 'random', 'datetime', 'bisect', 'queue', 'copy', 'operator', 'enum', 'textwrap', 'hashlib', 'unicodedata', 'difflib', 'struct', 'contextlib', 'io', 'time', 'csv', 'inspect', 'traceback'];
    const result = await pool.run('python', `import ${modules.join(', ')}\nprint(len([${modules.map((m) => m.split('.')[0]).join(', ')}]))`, { timeoutMs: 20_000 });
    expect(result, result.error).toMatchObject({ status: 'ok', output: `${modules.length}\n` });
  });

  it('keeps one program from changing what the next sees', async () => {
    const patch = await pool.run('python', "import math, builtins, sys\nmath.sqrt = lambda x: 42\nbuiltins.len = None\nsys.modules['json'] = None\nsys.path.clear()");
    expect(patch.status).toBe('ok');
    const after = await pool.run('python', 'import math, json\nprint(math.sqrt(4), len([1]), json.dumps(1))');
    expect(after).toMatchObject({ status: 'ok', output: '2.0 1 1\n' });
  });
});
