// The main window: its saved size and position, and the locked-down web preferences.
import { BrowserWindow, screen } from 'electron';
import type { DesktopSettingsStore, WindowBounds } from '../settings.ts';
import { APP_INDEX_URL } from './app-protocol.ts';
import type { AppOrigin } from './security.ts';

const DEFAULT_SIZE = { width: 1280, height: 840 };

/** Saved bounds, with the position dropped when no display shows enough of the window (a monitor was unplugged). */
function visibleBounds(saved: WindowBounds | null): WindowBounds {
  if (!saved) return DEFAULT_SIZE;
  const { x, y, width, height } = saved;
  if (x === undefined || y === undefined) return { width, height };
  const onScreen = screen.getAllDisplays().some(({ workArea: a }) => x + 100 <= a.x + a.width && x + width - 100 >= a.x && y >= a.y - 10 && y + 50 <= a.y + a.height);
  return onScreen ? saved : { width, height };
}

export function createMainWindow(options: { settings: DesktopSettingsStore; origin: AppOrigin; preload: string; devTools: boolean }): BrowserWindow {
  const { settings, origin } = options;
  const bounds = visibleBounds(settings.windowBounds());
  const win = new BrowserWindow({
    ...bounds,
    minWidth: 900,
    minHeight: 600,
    title: 'Autodidact',
    show: false,
    backgroundColor: '#111418',
    webPreferences: {
      preload: options.preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
      devTools: options.devTools,
    },
  });
  if (settings.windowBounds()?.maximized) win.maximize();
  win.once('ready-to-show', () => win.show());

  // Remember the normal (unmaximised) bounds, so a maximised window restores to its old size.
  let timer: NodeJS.Timeout | undefined;
  const save = () => {
    clearTimeout(timer);
    if (win.isDestroyed() || win.isMinimized() || win.isFullScreen()) return;
    const b = win.getNormalBounds();
    settings.setWindowBounds({ x: b.x, y: b.y, width: Math.max(b.width, 200), height: Math.max(b.height, 150), maximized: win.isMaximized() });
  };
  const saveSoon = () => {
    clearTimeout(timer);
    timer = setTimeout(save, 500);
  };
  win.on('resize', saveSoon);
  win.on('move', saveSoon);
  win.on('maximize', save);
  win.on('unmaximize', save);
  win.on('close', save);

  void win.loadURL(origin.devServerUrl ?? APP_INDEX_URL);
  return win;
}
