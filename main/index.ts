// The Electron entry (bundled by scripts/build.ts to out/main/index.js, package.json "main").
// Electron is only a shell here: the backend (main/backend.ts) is the same one `autodidact serve`
// runs, and the window reaches it through the preload's API over IPC (main/shell/ipc.ts).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BrowserWindow, Menu, app, dialog, protocol, session } from 'electron';
import { deferredApi, startBackend } from './backend.ts';
import { NATIVE_SQLITE_ENV, electronNativeFile } from './db/native-binding.ts';
import { APP_NAME } from './runs/home.ts';
import { APP_SCHEME, APP_SCHEME_PRIVILEGES, serveAppRequest } from './shell/app-protocol.ts';
import { folderPicker } from './shell/dialogs.ts';
import { buildMenu } from './shell/menu.ts';
import { registerIpc } from './shell/ipc.ts';
import { type AppOrigin, hardenContents, hardenSession, isAppUrl } from './shell/security.ts';
import { createElectronSettings } from './shell/settings.ts';
import { createMainWindow } from './shell/window.ts';

// Electron's userData must be the folder main/runs/home.ts computes without Electron, or a run
// started from the command line would not show in the app. Set before 'ready', which fixes it.
app.setName(APP_NAME);
app.setPath('userData', path.join(app.getPath('appData'), APP_NAME));

const here = path.dirname(fileURLToPath(import.meta.url));
const dev = !app.isPackaged;
const origin: AppOrigin = {
  rendererDir: path.join(here, '../renderer'),
  // Only a development checkout may load the page from elsewhere (vite's dev server).
  devServerUrl: dev && process.env.VITE_DEV_SERVER_URL ? process.env.VITE_DEV_SERVER_URL : null,
};
const preload = path.join(here, '../preload/index.cjs');
// The page is served as app://autodidact/ (main/shell/app-protocol.ts); a scheme's privileges
// must be declared before 'ready'.
protocol.registerSchemesAsPrivileged([APP_SCHEME_PRIVILEGES]);

// node_modules' better-sqlite3 is built for Node in a checkout (the command line and the tests
// use it); `npm start` builds Electron's copy into out/native/ (scripts/electron-native.ts), and
// the database (here and in the engine worker, which inherits the environment) loads that one.
// A packaged app's node_modules were rebuilt for Electron by electron-builder.
const electronVersion: string | undefined = process.versions.electron;
if (dev && electronVersion && !process.env[NATIVE_SQLITE_ENV]) {
  process.env[NATIVE_SQLITE_ENV] = electronNativeFile(path.join(here, '..'), electronVersion);
}

function describe(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  // A native module built for another ABI (Node's, or an older Electron's).
  if (/NODE_MODULE_VERSION|compiled against a different Node\.js version/.test(message)) {
    return dev
      ? `${message}\n\nA native module is built for Node or another Electron, not this one. \`npm start\` builds the database's module for Electron (\`npm run rebuild:electron\` builds it again).`
      : `${message}\n\nA native module of this installation does not fit this Electron: reinstall Autodidact.`;
  }
  return message;
}

async function run(): Promise<void> {
  // One app per data folder: a second instance would open the same database and engine.
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }
  app.on('web-contents-created', (_event, contents) => hardenContents(contents, origin));
  await app.whenReady();
  hardenSession(session.defaultSession, origin);
  protocol.handle(APP_SCHEME, (request) => serveAppRequest(origin.rendererDir, request));

  const settings = createElectronSettings();
  let mainWindow: BrowserWindow | null = null;
  // The page never names a path: the folders it needs, the person picks in the system's dialog.
  const ready = startBackend({ mode: 'electron', settings, version: app.getVersion(), pickFolder: folderPicker(() => mainWindow) });
  ready.then(
    (b) => {
      Menu.setApplicationMenu(buildMenu({ api: b.api, home: b.home, version: app.getVersion(), dev, window: () => mainWindow }));
    },
    (e: unknown) => {
      dialog.showErrorBox('Autodidact could not start', describe(e));
      app.exit(1);
    },
  );
  registerIpc(deferredApi(ready), (url) => isAppUrl(origin, url));

  const open = () => {
    mainWindow = createMainWindow({ settings, origin, preload, devTools: dev });
    mainWindow.on('closed', () => (mainWindow = null));
  };
  open();

  app.on('second-instance', () => {
    if (!mainWindow) return open();
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  // macOS keeps the app (and a running run) alive with no window; the dock icon reopens one.
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) open();
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });

  // Quitting pauses a running run at its next step (so it can resume), stops the engine worker
  // and closes the database before the process goes.
  let closing: Promise<void> | null = null;
  let closed = false;
  app.on('before-quit', (event) => {
    if (closed) return;
    event.preventDefault();
    closing ??= ready
      .then((b) => b.close())
      .catch((e: unknown) => console.error('autodidact: closing the backend failed:', e))
      .finally(() => {
        closed = true;
        app.quit();
      });
  });
}

run().catch((e: unknown) => {
  dialog.showErrorBox('Autodidact could not start', describe(e));
  app.exit(1);
});
