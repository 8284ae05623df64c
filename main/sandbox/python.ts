// Python in a sandbox worker: Pyodide (CPython compiled to WebAssembly) from the npm package's
// own files (pyodide.asm.wasm, python_stdlib.zip in node_modules/pyodide; no package is ever
// loaded, so nothing is fetched), with
//   - an empty `js` module (`jsglobals`), no environment variables, no stdin;
//   - an audit hook (which Python code cannot remove) refusing the modules that reach the host
//     or the foreign-function interface (js, pyodide_js, ctypes, socket, ...) and the events of
//     sockets, processes and ctypes, even where a program re-creates a module under the hook;
//   - Emscripten's in-memory file system only, read-only for programs (nothing of the host is
//     mounted; Node's file system driver is removed so nothing can mount it; a file's data is
//     JavaScript memory, which no limit bounds, so programs do not write files);
//   - a fresh namespace per program, and after each program the interpreter's shared state
//     (sys.modules, builtins, the dicts of the modules loaded at start) put back, so one program
//     cannot change what the next one sees;
//   - interrupts: the pool writes SIGINT into `interrupt` at the deadline (KeyboardInterrupt);
//     a program that swallows it is terminated with its worker.
import { loadPyodide, type PyodideAPI } from 'pyodide';
import { MAX_OUTPUT_CHARS, type SandboxResult } from './protocol.ts';

/** Roots of the modules no sandboxed program may import. */
const BLOCKED_MODULES = [
  'js', 'pyodide_js', 'pyodide', '_pyodide', '_pyodide_core', 'micropip', 'ctypes', '_ctypes',
  'socket', '_socket', 'ssl', '_ssl', 'select', 'selectors', 'asyncio', 'subprocess',
  '_posixsubprocess', 'multiprocessing', '_multiprocessing', 'gc', 'signal', 'resource',
  'ftplib', 'smtplib', 'webbrowser', 'pty', 'fcntl', 'mmap', 'tracemalloc', 'faulthandler',
  'sqlite3', '_sqlite3',
  // Not threading (queue, logging and dataclasses import it; WebAssembly starts no thread) nor
  // urllib (urllib.parse is string work; its network half needs socket, which is refused).
];

/** Audit events refused (prefixes): the network, processes, native calls, object enumeration. */
const BLOCKED_EVENTS = [
  'socket.', 'ctypes.', 'subprocess.', 'os.system', 'os.exec', 'os.spawn', 'os.fork', 'os.posix_spawn',
  'os.kill', 'os.killpg', 'os.putenv', 'os.unsetenv', 'os.startfile', 'gc.', 'mmap.', 'webbrowser.',
  'urllib.', 'http.', 'ftplib.', 'smtplib.', 'sys.addaudithook', 'sys.setprofile', 'sys.settrace',
];

const LOCKDOWN = `
def _make():
    import sys, builtins
    # Pyodide's finder serves \`js\` and \`pyodide_js\` (the API object) to importlib, which
    # raises no audit event: unregister them and drop the finder.
    import _pyodide._importhook as importhook
    for name in ('js', 'pyodide_js'):
        try:
            importhook.unregister_js_module(name)
        except Exception:
            pass
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != 'JsFinder']
    del importhook
    _vars, _dict, _list, _str, _isinstance = vars, dict, list, str, isinstance
    blocked_modules = frozenset(${JSON.stringify(BLOCKED_MODULES)})
    blocked_events = tuple(${JSON.stringify(BLOCKED_EVENTS)})
    import os
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    del os
    def hook(event, args):
        if event == 'open':
            # Read-only: the in-memory file system's data is JavaScript memory no limit bounds.
            mode, flags = args[1], args[2]
            if (_isinstance(mode, _str) and any(c in mode for c in 'wax+')) or (_isinstance(flags, int) and flags & writing):
                raise PermissionError(f"open is not allowed in the sandbox for writing ({args[0]!r})")
        elif event == 'import':
            name = args[0] if args and _isinstance(args[0], _str) else ''
            if name.split('.')[0] in blocked_modules:
                raise ImportError(f"module {name!r} is not available in the sandbox")
        elif event.startswith(blocked_events):
            raise PermissionError(f"{event} is not allowed in the sandbox")
    for name in _list(sys.modules):
        if name.split('.')[0] in blocked_modules:
            del sys.modules[name]
    _vars(sys.modules['__main__']).pop('_make', None)
    modules = _dict(sys.modules)
    saved = [(_vars(m), _dict(_vars(m))) for m in modules.values() if m is not None]
    path = _list(sys.path)
    limit = sys.getrecursionlimit()
    live = sys.modules
    streams = (sys.stdout, sys.stderr)
    def reset():
        # Every value this needs is a local of _make: a program may have emptied builtins.
        # What a program left in the streams' buffers is its output, not the next program's.
        for stream in streams:
            try:
                stream.flush()
            except BaseException:
                pass
        for d, copy in saved:
            d.clear()
            d.update(copy)
        live.clear()
        live.update(modules)
        sys.path[:] = path
        sys.setrecursionlimit(limit)
    def namespace():
        return {'__name__': '__main__', '__builtins__': builtins}
    sys.addaudithook(hook)
    return reset, namespace
_make()
`;

type PyCallable = ((...args: unknown[]) => unknown) & { destroy?: () => void };

export class PythonRunner {
  private output = '';
  private truncated = false;

  private constructor(
    private readonly py: PyodideAPI,
    private readonly reset: PyCallable,
    private readonly namespace: PyCallable,
  ) {}

  static async start(interrupt: SharedArrayBuffer): Promise<PythonRunner> {
    let runner: PythonRunner | null = null;
    const write = (text: string) => runner?.collect(text);
    const py = await loadPyodide({
      jsglobals: Object.create(null) as object,
      env: {},
      stdin: () => null,
      stdout: write,
      stderr: write,
    });
    // Node's file system driver: without it nothing of the host can be mounted.
    const filesystems = (py.FS as unknown as { filesystems: Record<string, unknown> }).filesystems;
    delete filesystems.NODEFS;
    delete filesystems.NODERAWFS;
    py.setInterruptBuffer(new Int32Array(interrupt));
    // Node's stdin stream sits on the file system's stream table (and holds Node's fs module).
    py.setStdin({ error: true });
    // Host powers of the API object, should a program ever reach it.
    for (const name of ['mountNodeFS', 'mountNativeFS', 'loadPackage', 'loadPackagesFromImports', 'makeMemorySnapshot', 'registerJsModule']) {
      try {
        Object.defineProperty(py, name, { value: undefined, writable: false, configurable: false });
      } catch {
        // A member this Pyodide version does not have.
      }
    }
    const made = py.runPython(LOCKDOWN) as { toJs(): PyCallable[] };
    const [reset, namespace] = made.toJs();
    runner = new PythonRunner(py, reset, namespace);
    // Raw writes, not line-buffered callbacks: `print(x, end='')` in a loop must count too.
    py.setStdout({ write: (buf: Uint8Array) => runner!.collectBytes(buf) });
    py.setStderr({ write: (buf: Uint8Array) => runner!.collectBytes(buf) });
    return runner;
  }

  private collect(text: string): void {
    this.collectText(`${text}\n`);
  }

  private collectBytes(buf: Uint8Array): number {
    this.collectText(new TextDecoder().decode(buf));
    return buf.length;
  }

  private collectText(text: string): void {
    if (this.output.length >= MAX_OUTPUT_CHARS) {
      this.truncated = true;
      return;
    }
    this.output += text.slice(0, MAX_OUTPUT_CHARS - this.output.length);
    if (this.output.length >= MAX_OUTPUT_CHARS) this.truncated = true;
  }

  /** The WebAssembly heap's size now (it grows and never shrinks). */
  heapBytes(): number {
    return (this.py as unknown as { _module: { HEAP8: Uint8Array } })._module.HEAP8.length;
  }

  /**
   * Run one program. `recycle` is true when the interpreter may be unusable (a failure outside
   * Python: a WebAssembly stack overflow, Pyodide's fatal error) and the worker should go.
   */
  run(code: string): { result: SandboxResult; recycle: boolean } {
    this.output = '';
    this.truncated = false;
    const started = performance.now();
    let status: SandboxResult['status'] = 'ok';
    let error: string | undefined;
    let recycle = false;
    const globals = this.namespace() as { destroy(): void };
    try {
      this.py.runPython(code, { globals: globals as never, filename: '<program>' });
    } catch (e) {
      status = 'error';
      const message = e instanceof Error ? e.message : String(e);
      if ((e as { type?: string }).type === undefined || !(e instanceof this.py.ffi.PythonError)) recycle = true;
      const lines = message.trimEnd().split('\n');
      error = lines[lines.length - 1] || 'the program failed';
      if (/^KeyboardInterrupt\b/.test(error)) status = 'timeout';
      else if (e instanceof this.py.ffi.PythonError) this.collectText(message.endsWith('\n') ? message : `${message}\n`);
    } finally {
      globals.destroy();
    }
    if (!recycle) {
      try {
        this.reset();
      } catch {
        recycle = true;
      }
    }
    const output = this.truncated ? `${this.output}\n[output cut at ${MAX_OUTPUT_CHARS} characters]` : this.output;
    return { result: { status, output, ...(error !== undefined ? { error } : {}), ms: performance.now() - started }, recycle };
  }
}
