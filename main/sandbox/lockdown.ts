// Hardening of a sandbox worker's own JavaScript realm, applied once its interpreter is loaded
// and before any untrusted program runs.
//
// The interpreters are the first wall: QuickJS sees nothing of the host, and Pyodide's Python
// gets an empty `js` module and an audit hook (python.ts). This is the second: should a Python
// program reach Pyodide's foreign-function interface anyway (it is a C module Python can
// re-create), every JavaScript object it could touch lives in this realm, so the realm must have
// no way to run new code from a string (which would reach `import()` and Node's modules) and no
// process-level powers.

const refuse = (what: string) =>
  function refused(): never {
    throw new EvalError(`${what} is disabled in the sandbox`);
  };

/** The four function constructors: Function, AsyncFunction, GeneratorFunction, AsyncGeneratorFunction. */
const FUNCTION_PROTOTYPES = [
  Object.getPrototypeOf(function () {}),
  Object.getPrototypeOf(async function () {}),
  Object.getPrototypeOf(function* () {}),
  Object.getPrototypeOf(async function* () {}),
] as object[];

/** `process` members that reach past the worker (native bindings, signals, the host's environment). */
const PROCESS_POWERS = [
  'binding', '_linkedBinding', 'dlopen', 'kill', 'chdir', 'setuid', 'setgid', 'seteuid', 'setegid',
  'setgroups', 'initgroups', 'abort', 'reallyExit', '_kill', '_rawDebug', 'openStdin', 'permission',
];

/** Globals a sandboxed program has no use for: the network and code loading. */
const GLOBAL_POWERS = ['fetch', 'WebSocket', 'XMLHttpRequest', 'EventSource', 'require', 'module', 'Worker', 'SharedWorker'];

export function lockDownRealm(): void {
  for (const proto of FUNCTION_PROTOTYPES) {
    const Ctor = (proto as { constructor: new (...a: string[]) => unknown }).constructor;
    // A proxy, not a plain thrower: `x instanceof Function` still works for the interpreter's own code.
    const blocked = new Proxy(Ctor, { apply: refuse('Function()'), construct: refuse('new Function()') });
    Object.defineProperty(proto, 'constructor', { value: blocked, writable: false, configurable: false });
    if ((globalThis as Record<string, unknown>)[Ctor.name] === Ctor) {
      Object.defineProperty(globalThis, Ctor.name, { value: blocked, writable: false, configurable: false });
    }
  }
  Object.defineProperty(globalThis, 'eval', { value: refuse('eval'), writable: false, configurable: false });
  for (const name of PROCESS_POWERS) {
    try {
      Object.defineProperty(process, name, { value: refuse(`process.${name}`), writable: false, configurable: false });
    } catch {
      // Some members are accessors Node does not let us replace; the rest still go.
    }
  }
  try {
    Object.defineProperty(process, 'env', { value: Object.freeze({}), writable: false, configurable: false });
  } catch {
    // Same as above.
  }
  for (const name of GLOBAL_POWERS) {
    if (name in globalThis) Object.defineProperty(globalThis, name, { value: undefined, writable: false, configurable: false });
  }
}

/**
 * Cap every WebAssembly memory of this worker at `limitBytes`: Emscripten grows its heap through
 * `Memory.prototype.grow`, and a refused grow is a failed malloc (MemoryError in Python), not a
 * crash. Worker `resourceLimits` do not count WebAssembly memory, so this is what bounds it.
 */
export function capWasmMemory(limitBytes: number): void {
  // @types/node declares no WebAssembly.Memory; this is the part of it used here.
  interface WasmMemory {
    buffer: ArrayBuffer;
  }
  const { Memory } = (globalThis as unknown as { WebAssembly: { Memory: { prototype: WasmMemory & { grow(delta: number): number } } } }).WebAssembly;
  const grow = Memory.prototype.grow;
  Object.defineProperty(Memory.prototype, 'grow', {
    value: function cappedGrow(this: WasmMemory, delta: number): number {
      if (this.buffer.byteLength + delta * 65_536 > limitBytes) {
        throw new RangeError(`the sandbox's memory limit (${Math.round(limitBytes / 2 ** 20)} MiB) is reached`);
      }
      return grow.call(this, delta);
    },
    writable: false,
    configurable: false,
  });
}
