// JavaScript in a sandbox worker: QuickJS compiled to WebAssembly (quickjs-emscripten). A
// program gets a new QuickJS runtime of its own (nothing carries over to the next one) whose
// globals are the language's built-ins and a `console` that collects output: no module loader,
// no timers, no file system, no network, nothing of the host. Its limits are QuickJS's own: an
// allocator limit, a stack limit and an interrupt handler at the deadline; the pool's
// termination of the worker is the backstop.
import { getQuickJS, type QuickJSContext, type QuickJSWASMModule, shouldInterruptAfterDeadline } from 'quickjs-emscripten';
import { MAX_OUTPUT_CHARS, type SandboxResult } from './protocol.ts';

/** QuickJS's own stack limit: deep recursion is a RangeError long before the worker's stack runs out. */
const MAX_STACK_BYTES = 512 * 1024;
/** Promise jobs run after the program's body, at most this many (a job queue can refill itself forever). */
const MAX_PENDING_JOBS = 100_000;

export class JavaScriptRunner {
  private constructor(
    private readonly quickjs: QuickJSWASMModule,
    private readonly memoryBytes: number,
  ) {}

  static async start(memoryBytes: number): Promise<JavaScriptRunner> {
    return new JavaScriptRunner(await getQuickJS(), memoryBytes);
  }

  run(code: string, timeoutMs: number): { result: SandboxResult; recycle: boolean } {
    const started = performance.now();
    let output = '';
    let truncated = false;
    const collect = (text: string) => {
      if (output.length >= MAX_OUTPUT_CHARS) {
        truncated = true;
        return;
      }
      output += text.slice(0, MAX_OUTPUT_CHARS - output.length);
    };
    let status: SandboxResult['status'] = 'ok';
    let error: string | undefined;
    let recycle = false;
    let timedOut = false;
    const deadline = shouldInterruptAfterDeadline(Date.now() + timeoutMs);
    const runtime = this.quickjs.newRuntime();
    try {
      runtime.setMemoryLimit(this.memoryBytes);
      runtime.setMaxStackSize(MAX_STACK_BYTES);
      runtime.setInterruptHandler((rt) => (timedOut = deadline(rt) === true));
      const vm = runtime.newContext();
      try {
        installConsole(vm, collect);
        const evaluated = vm.evalCode(code, 'program.js');
        if (evaluated.error) {
          error = describe(vm, evaluated.error);
          evaluated.error.dispose();
        } else {
          evaluated.value.dispose();
          const jobs = runtime.executePendingJobs(MAX_PENDING_JOBS);
          if (jobs.error) {
            error = describe(vm, jobs.error);
            jobs.error.dispose();
          } else if (runtime.hasPendingJob()) {
            error = `Error: more than ${MAX_PENDING_JOBS} promise jobs`;
          }
        }
      } finally {
        vm.dispose();
      }
    } catch (e) {
      // A failure of QuickJS itself (an allocation the host refused, an assertion): its
      // WebAssembly instance may be broken, so the worker goes.
      error = `${(e as Error).name ?? 'Error'}: ${(e as Error).message ?? String(e)}`;
      recycle = true;
    } finally {
      try {
        runtime.dispose();
      } catch {
        recycle = true;
      }
    }
    // Interrupted anywhere (the body, a promise job), the program timed out, whatever it threw.
    if (timedOut) {
      status = 'timeout';
      error ??= 'InternalError: interrupted';
    } else if (error !== undefined) status = 'error';
    if (truncated) output += `\n[output cut at ${MAX_OUTPUT_CHARS} characters]`;
    return { result: { status, output, ...(error !== undefined ? { error } : {}), ms: performance.now() - started }, recycle };
  }
}

function installConsole(vm: QuickJSContext, collect: (text: string) => void): void {
  const consoleObject = vm.newObject();
  for (const name of ['log', 'info', 'warn', 'error', 'debug']) {
    const fn = vm.newFunction(name, (...args) => {
      // Strings as they are, other values as QuickJS's String() of them.
      collect(`${args.map((a) => vm.getString(a)).join(' ')}\n`);
    });
    vm.setProp(consoleObject, name, fn);
    fn.dispose();
  }
  vm.setProp(vm.global, 'console', consoleObject);
  consoleObject.dispose();
}

/** `TypeError: x is not a function`, from the thrown value (an Error object or anything thrown). */
function describe(vm: QuickJSContext, handle: Parameters<QuickJSContext['dump']>[0]): string {
  const value: unknown = vm.dump(handle);
  if (value && typeof value === 'object' && 'message' in value) {
    const { name, message } = value as { name?: unknown; message?: unknown };
    return `${typeof name === 'string' ? name : 'Error'}: ${String(message)}`;
  }
  return `uncaught ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`;
}
