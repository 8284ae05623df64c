// The desktop transport of the API: one invoke channel for requests, one event channel for
// pushes (contract/index.ts). Errors are answered as data, `{ error }`: Electron would reduce
// a thrown error to its message, and the preload turns the shape back into an ApiError.
import { BrowserWindow, type IpcMainInvokeEvent, ipcMain } from 'electron';
import { type ApiService, IPC_EVENT, IPC_INVOKE } from '../../contract/index.ts';
import type { IpcReply } from '../../preload/bridge.ts';
import { toErrorShape } from '../server/errors.ts';

/** Serve requests from the app's own page only; returns what undoes it. */
export function registerIpc(api: ApiService, isAppUrl: (url: string | undefined) => boolean): () => void {
  ipcMain.handle(IPC_INVOKE, async (event: IpcMainInvokeEvent, channel: unknown, params: unknown): Promise<IpcReply> => {
    // A frame that is not the app (an iframe, a page navigated elsewhere) gets nothing.
    if (!isAppUrl(event.senderFrame?.url)) return { error: { code: 'BAD_REQUEST', message: 'requests are served to the app’s own page only' } };
    if (typeof channel !== 'string') return { error: { code: 'BAD_REQUEST', message: 'the channel must be a string' } };
    try {
      return { result: await api.handle(channel, params) };
    } catch (e) {
      const error = toErrorShape(e);
      if (error.code === 'INTERNAL') console.error(`autodidact: ${channel} failed:`, e);
      return { error };
    }
  });
  const unsubscribe = api.subscribe((event, payload) => {
    for (const win of BrowserWindow.getAllWindows()) {
      if (!win.isDestroyed() && !win.webContents.isDestroyed()) win.webContents.send(IPC_EVENT, event, payload);
    }
  });
  return () => {
    unsubscribe();
    ipcMain.removeHandler(IPC_INVOKE);
  };
}
