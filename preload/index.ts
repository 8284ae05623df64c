// The preload of the desktop window: exposes the API contract as `window.autodidact` and nothing
// else (no ipcRenderer, no Node). The window is sandboxed, so this file is bundled to CommonJS
// (scripts/build.ts → out/preload/index.cjs): a sandboxed preload cannot load ES modules.
import { contextBridge, ipcRenderer } from 'electron';
import { exposedBridge } from './bridge.ts';

contextBridge.exposeInMainWorld('autodidact', exposedBridge(ipcRenderer));
