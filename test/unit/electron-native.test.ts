// scripts/electron-native.ts (run by `npm start`): where the Electron build of better-sqlite3
// goes, that an existing one is kept, and that with no network it fails quickly, saying what
// failed and what to do. (Electron itself and the real downloads cannot run in the tests.)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { electronNativeFile } from '../../main/db/native-binding.ts';
import { NativeBuildError, childEnv, ensureElectronSqlite, findNodeGyp, installedElectronVersion } from '../../scripts/electron-native.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-native-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A checkout with this one's node_modules and its own (empty) out/. */
function fakeCheckout(name: string): string {
  const root = path.join(tmp, name);
  fs.mkdirSync(root, { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'), 'junction');
  return root;
}

describe('electron-native', () => {
  it('reads the installed Electron version', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'electron', 'package.json'), 'utf8')) as { version: string };
    expect(installedElectronVersion(ROOT)).toBe(pkg.version);
    expect(() => installedElectronVersion(path.join(tmp, 'nowhere'))).toThrow(/npm install/);
  });

  it('does nothing when the build is there', () => {
    const root = path.join(tmp, 'present');
    const file = electronNativeFile(path.join(root, 'out'), '41.7.1', 'linux', 'x64');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'built before');
    const lines: string[] = [];
    expect(ensureElectronSqlite({ root, electronVersion: '41.7.1', platform: 'linux', arch: 'x64', log: (l) => lines.push(l) })).toEqual({ file, how: 'present' });
    expect(lines).toEqual([]);
    expect(fs.readFileSync(file, 'utf8')).toBe('built before');
  });

  it('keeps npm configuration that would redirect the build out of the children', () => {
    const env = childEnv({ PATH: '/bin', npm_config_nodedir: '/usr', NPM_CONFIG_BUILD_FROM_SOURCE: 'true', npm_config_cache: '/c' });
    expect(env).toEqual({ PATH: '/bin', npm_config_cache: '/c' });
  });

  it('finds node-gyp', () => {
    const gyp = findNodeGyp(ROOT);
    expect(gyp).not.toBeNull();
    expect(fs.existsSync(gyp!)).toBe(true);
  });

  it('fails fast with no network, naming both attempts and what to do', () => {
    const root = fakeCheckout('offline');
    const started = Date.now();
    let error: unknown;
    try {
      ensureElectronSqlite({
        root,
        electronVersion: installedElectronVersion(ROOT),
        // Nothing listens on the loopback's port 2 (and fetch does not bar it): "no network" without waiting for DNS.
        prebuiltUrl: 'http://127.0.0.1:2/better-sqlite3.tar.gz',
        headersUrl: 'http://127.0.0.1:2/headers',
        nodeGypDevDir: path.join(tmp, 'gyp-devdir'),
        prebuiltTimeoutMs: 60_000,
        compileTimeoutMs: 60_000,
        log: () => {},
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NativeBuildError);
    const message = (error as Error).message;
    expect(message).toMatch(/the prebuilt binary: .*(download failed|did not finish)/);
    expect(message).toMatch(/the compile \(node-gyp\): .*(headers failed|did not finish)/);
    expect(message).toContain('What to do');
    expect(fs.existsSync(path.join(root, 'out', 'native'))).toBe(false);
    expect(Date.now() - started).toBeLessThan(110_000);
  });
});
