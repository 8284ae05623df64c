// The preload's `window.autodidact`, built over a fake ipcRenderer: only the contract's channels
// pass, errors come back as ApiErrors (or plain shapes across contextBridge), and events reach
// exactly their listeners.
import { describe, expect, it } from 'vitest';
import { ApiError, IPC_EVENT, IPC_INVOKE } from '../../../contract/index.ts';
import { type IpcRendererLike, createBridge, exposedBridge } from '../../../preload/bridge.ts';

type Handler = (event: unknown, ...args: unknown[]) => void;

function fakeIpc(answer: (channel: string, params: unknown) => unknown) {
  const invoked: unknown[][] = [];
  const handlers = new Map<string, Set<Handler>>();
  const ipc: IpcRendererLike = {
    async invoke(channel, ...args) {
      invoked.push([channel, ...args]);
      return answer(args[0] as string, args[1]);
    },
    on(channel, listener) {
      if (!handlers.has(channel)) handlers.set(channel, new Set());
      handlers.get(channel)!.add(listener);
    },
    removeListener(channel, listener) {
      handlers.get(channel)?.delete(listener);
    },
  };
  const send = (...args: unknown[]) => handlers.get(IPC_EVENT)?.forEach((h) => h({ sender: 'secret' }, ...args));
  return { ipc, invoked, handlers, send };
}

describe('preload bridge', () => {
  it('sends contract requests over the one invoke channel and unwraps results', async () => {
    const fake = fakeIpc((channel) => ({ result: { channel } }));
    const api = createBridge(fake.ipc);
    expect(await api.invoke('runs.list', {})).toEqual({ channel: 'runs.list' });
    expect(fake.invoked).toEqual([[IPC_INVOKE, 'runs.list', {}]]);
  });

  it('refuses channels outside the contract without touching IPC', async () => {
    const fake = fakeIpc(() => ({ result: null }));
    const api = createBridge(fake.ipc);
    for (const channel of ['shell.openExternal', 'autodidact:invoke', '__proto__', 'toString', 42]) {
      await expect(api.invoke(channel as never, {} as never)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    }
    expect(() => api.on('window.close' as never, () => {})).toThrow(ApiError);
    expect(() => api.on('constructor' as never, () => {})).toThrow(/unknown event channel/);
    expect(fake.invoked).toEqual([]);
    expect(fake.handlers.size).toBe(0);
  });

  it('rethrows error replies as ApiErrors, and as plain shapes across contextBridge', async () => {
    const error = { code: 'BAD_REQUEST', message: 'id: expected a number', issues: [{ path: 'id', message: 'expected a number' }] };
    const fake = fakeIpc(() => ({ error }));
    const thrown = await createBridge(fake.ipc).invoke('runs.get', { id: 1 }).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(ApiError);
    expect(thrown).toMatchObject(error);
    const exposed = await exposedBridge(fake.ipc).invoke('runs.get', { id: 1 }).catch((e: unknown) => e);
    expect(exposed).toEqual({ name: 'ApiError', ...error });
    const junk = await createBridge(fakeIpc(() => 'junk').ipc).invoke('runs.list', {}).catch((e: unknown) => e);
    expect(junk).toMatchObject({ code: 'INTERNAL' });
  });

  it('delivers events to their listeners only, without the IPC event object, and detaches', () => {
    const fake = fakeIpc(() => ({ result: null }));
    const api = createBridge(fake.ipc);
    const got: unknown[][] = [];
    const off = api.on('run.status', (...args) => got.push(['status', ...args]));
    const offAlso = api.on('run.status', (...args) => got.push(['status2', ...args]));
    const offOther = api.on('datasets.changed', (...args) => got.push(['datasets', ...args]));
    expect(fake.handlers.get(IPC_EVENT)?.size).toBe(1);
    fake.send('run.status', { run: { id: 1 } });
    expect(got).toEqual([
      ['status', { run: { id: 1 } }],
      ['status2', { run: { id: 1 } }],
    ]);
    off();
    off();
    fake.send('run.status', { run: { id: 2 } });
    expect(got.at(-1)).toEqual(['status2', { run: { id: 2 } }]);
    expect(got).toHaveLength(3);
    offAlso();
    offOther();
    expect(fake.handlers.get(IPC_EVENT)?.size).toBe(0);
  });
});
