// The settings store over `conf` (web mode and the command line; the desktop app uses the same
// logic over electron-store): defaults, persistence, validation, and a damaged file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, createConfSettings, resolveDataHome, resolveThreads, settingsFolder } from '../../../main/settings.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-settings-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('settings', () => {
  it('starts from the defaults and keeps what is set, across instances', () => {
    expect(createConfSettings({ cwd: dir }).get()).toEqual(DEFAULT_SETTINGS);
    const set = createConfSettings({ cwd: dir }).set({ defaultDevice: 'cpu', threads: 4 });
    expect(set).toEqual({ dataFolder: null, defaultDevice: 'cpu', threads: 4 });
    const again = createConfSettings({ cwd: dir });
    expect(again.get()).toEqual(set);
    expect(again.set({ threads: null }).threads).toBeNull();
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'))).toMatchObject({ defaultDevice: 'cpu', threads: null });
  });

  it('refuses invalid values and reads hand-edited junk as the default', () => {
    const store = createConfSettings({ cwd: dir });
    expect(() => store.set({ threads: 0 })).toThrow();
    expect(() => store.set({ defaultDevice: 'tpu' as never })).toThrow();
    expect(() => store.set({ window: {} } as never)).toThrow();
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ defaultDevice: 'tpu', threads: -3, dataFolder: '/data/x' }));
    expect(createConfSettings({ cwd: dir }).get()).toEqual({ dataFolder: '/data/x', defaultDevice: 'auto', threads: null });
  });

  it('starts over from a file that is not JSON', () => {
    fs.writeFileSync(path.join(dir, 'config.json'), '{"defaultDevice": "cp');
    const store = createConfSettings({ cwd: dir });
    expect(store.get()).toEqual(DEFAULT_SETTINGS);
    expect(store.set({ defaultDevice: 'webgpu' }).defaultDevice).toBe('webgpu');
  });

  it('keeps the window bounds apart from the settings', () => {
    const store = createConfSettings({ cwd: dir });
    expect(store.windowBounds()).toBeNull();
    store.setWindowBounds({ x: -20, y: 40, width: 1200, height: 800, maximized: true });
    expect(createConfSettings({ cwd: dir }).windowBounds()).toEqual({ x: -20, y: 40, width: 1200, height: 800, maximized: true });
    expect(store.get()).toEqual(DEFAULT_SETTINGS);
  });

  it('picks the data folder: AUTODIDACT_HOME, then the setting, then the per-user folder', () => {
    const custom = { ...DEFAULT_SETTINGS, dataFolder: path.join(dir, 'data') };
    expect(resolveDataHome(custom, { AUTODIDACT_HOME: '/tmp/h' })).toBe(path.resolve('/tmp/h'));
    expect(resolveDataHome(custom, { HOME: dir })).toBe(path.join(dir, 'data'));
    // Electron's userData folder for "Autodidact" (on Linux: under XDG_CONFIG_HOME).
    if (process.platform === 'linux') expect(resolveDataHome(DEFAULT_SETTINGS, { XDG_CONFIG_HOME: '/xdg' })).toBe('/xdg/Autodidact');
    expect(settingsFolder({ AUTODIDACT_HOME: '/tmp/h' })).toBe(path.resolve('/tmp/h'));
  });

  it('picks the engine threads: AUTODIDACT_THREADS, then the setting, then every core', () => {
    const three = { ...DEFAULT_SETTINGS, threads: 3 };
    expect(resolveThreads(three, { AUTODIDACT_THREADS: '2' })).toBe(2);
    expect(resolveThreads(three, {})).toBe(3);
    expect(resolveThreads(three, { AUTODIDACT_THREADS: 'lots' })).toBe(3);
    expect(resolveThreads(DEFAULT_SETTINGS, {})).toBeUndefined();
  });
});
