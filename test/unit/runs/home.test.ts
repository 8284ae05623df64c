// The data folder: AUTODIDACT_HOME wins; otherwise the folder Electron's userData gives for
// "Autodidact" on each platform, so the command line and the app share one database.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { databasePath, dataHome, modelsDir, runDir } from '../../../main/runs/home.ts';

describe('dataHome', () => {
  it('uses AUTODIDACT_HOME when set, made absolute', () => {
    expect(dataHome({ env: { AUTODIDACT_HOME: '/data/ad' }, platform: 'linux', homedir: '/home/u' })).toBe('/data/ad');
    expect(dataHome({ env: { AUTODIDACT_HOME: 'rel/dir' }, platform: 'linux', homedir: '/home/u' })).toBe(path.resolve('rel/dir'));
  });

  it('ignores an empty AUTODIDACT_HOME', () => {
    expect(dataHome({ env: { AUTODIDACT_HOME: '' }, platform: 'linux', homedir: '/home/u' })).toBe('/home/u/.config/Autodidact');
  });

  it('follows XDG_CONFIG_HOME on Linux when it is absolute', () => {
    expect(dataHome({ env: { XDG_CONFIG_HOME: '/xdg' }, platform: 'linux', homedir: '/home/u' })).toBe('/xdg/Autodidact');
    expect(dataHome({ env: { XDG_CONFIG_HOME: 'relative' }, platform: 'linux', homedir: '/home/u' })).toBe('/home/u/.config/Autodidact');
    expect(dataHome({ env: {}, platform: 'linux', homedir: '/home/u' })).toBe('/home/u/.config/Autodidact');
  });

  it('uses Application Support on macOS and APPDATA on Windows', () => {
    expect(dataHome({ env: {}, platform: 'darwin', homedir: '/Users/u' })).toBe('/Users/u/Library/Application Support/Autodidact');
    expect(dataHome({ env: { APPDATA: 'C:\\Users\\u\\AppData\\Roaming' }, platform: 'win32', homedir: 'C:\\Users\\u' })).toBe(
      'C:\\Users\\u\\AppData\\Roaming\\Autodidact',
    );
    expect(dataHome({ env: {}, platform: 'win32', homedir: 'C:\\Users\\u' })).toBe('C:\\Users\\u\\AppData\\Roaming\\Autodidact');
  });

  it('places the database, checkpoints and models inside it', () => {
    expect(databasePath('/h')).toBe(path.join('/h', 'autodidact.db'));
    expect(runDir('/h', 7)).toBe(path.join('/h', 'runs', '7'));
    expect(modelsDir('/h')).toBe(path.join('/h', 'models'));
  });
});
