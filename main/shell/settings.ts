// The desktop app's settings store: electron-store, in the same folder and file as web mode's
// `conf` store (main/settings.ts), so both see the same settings. Kept apart from main/settings.ts
// because electron-store imports Electron, which plain Node (the CLI, web mode) cannot load.
import path from 'node:path';
import Store from 'electron-store';
import { DEFAULT_SETTINGS, type DesktopSettingsStore, SETTINGS_NAME, settingsFolder, settingsOver } from '../settings.ts';

export function createElectronSettings(): DesktopSettingsStore {
  const store = new Store<Record<string, unknown>>({
    cwd: path.resolve(settingsFolder()),
    name: SETTINGS_NAME,
    // As in main/settings.ts: a corrupt file starts over instead of keeping the app from starting.
    clearInvalidConfig: true,
    defaults: { ...DEFAULT_SETTINGS },
  });
  return settingsOver(store);
}
