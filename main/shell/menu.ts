// The application menu. "Import dataset…" imports through the same API the views use (with the
// guessed field mapping); the Datasets view offers the preview and mapping before importing.
import path from 'node:path';
import { type BrowserWindow, Menu, type MenuItemConstructorOptions, app, dialog, shell } from 'electron';
import type { ApiService, ResultOf } from '../../contract/index.ts';
import { toErrorShape } from '../server/errors.ts';
import { DatasetFileError, readDatasetBytes } from '../engine/tasks/dataset-file.ts';

/** readDatasetBytes with the file named in its error. */
function readDatasetFileBytes(file: string): Uint8Array {
  try {
    return readDatasetBytes(file);
  } catch (e) {
    throw e instanceof DatasetFileError ? new Error(`${file}: ${e.detail}`) : e;
  }
}

export interface MenuContext {
  api: ApiService;
  home: string;
  version: string;
  dev: boolean;
  window: () => BrowserWindow | null;
}

async function importDataset(ctx: MenuContext): Promise<void> {
  const win = ctx.window();
  const options = {
    title: 'Import dataset',
    properties: ['openFile'] as 'openFile'[],
    filters: [
      { name: 'Datasets', extensions: ['jsonl', 'csv', 'tsv'] },
      { name: 'All files', extensions: ['*'] },
    ],
  };
  const picked = win ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options);
  const file = picked.filePaths[0];
  if (picked.canceled || !file) return;
  try {
    // The bytes of a regular file of bounded size (a FIFO would never end), not text: the app
    // refuses a file that is not UTF-8 rather than store replacement characters.
    const data = Buffer.from(readDatasetFileBytes(file)).toString('base64');
    const done = (await ctx.api.handle('datasets.import', { fileName: path.basename(file), data })) as ResultOf<'datasets.import'>;
    const info = { type: 'info' as const, title: 'Dataset imported', message: `Imported “${done.dataset.name}”: ${done.train} training and ${done.eval} evaluation items.`, detail: done.mappingNote };
    if (win) await dialog.showMessageBox(win, info);
    else await dialog.showMessageBox(info);
  } catch (e) {
    // A BAD_REQUEST's message already words each of its issues, naming the field.
    dialog.showErrorBox('The dataset was not imported', toErrorShape(e).message);
  }
}

async function about(ctx: MenuContext): Promise<void> {
  const info = {
    type: 'info' as const,
    title: 'About Autodidact',
    message: `Autodidact ${ctx.version}`,
    detail: `A language model improving itself without an answer key.\n\nData folder: ${ctx.home}\nElectron ${process.versions.electron}, Node ${process.versions.node}`,
  };
  const win = ctx.window();
  if (win) await dialog.showMessageBox(win, info);
  else await dialog.showMessageBox(info);
}

export function buildMenu(ctx: MenuContext): Menu {
  const mac = process.platform === 'darwin';
  const template: MenuItemConstructorOptions[] = [
    ...(mac ? [{ role: 'appMenu' as const }] : []),
    {
      label: 'File',
      submenu: [
        { label: 'Import Dataset…', accelerator: 'CmdOrCtrl+O', click: () => void importDataset(ctx) },
        { label: 'Open Data Folder', click: () => void shell.openPath(ctx.home) },
        { type: 'separator' },
        mac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    // Copy, paste and select-all in text fields need the Edit menu's accelerators on macOS.
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        ...(ctx.dev ? ([{ role: 'reload' }, { role: 'forceReload' }, { role: 'toggleDevTools' }, { type: 'separator' }] as MenuItemConstructorOptions[]) : []),
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
    { role: 'windowMenu' },
    {
      role: 'help',
      submenu: [{ label: `About ${app.name}`, click: () => void about(ctx) }],
    },
  ];
  return Menu.buildFromTemplate(template);
}
