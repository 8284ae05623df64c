// The main bundle from a checkout, "inside Electron" (a stand-in electron module and a faked
// process.versions.electron): the database loads the Electron build of better-sqlite3 from
// out/native/electron-<version>-<platform>-<arch>/ (scripts/electron-native.ts makes it), and a
// missing or broken one ends in the error box naming the file and `npm start`. Electron's own
// binary cannot run in the tests, so the "Electron build" here is a copy of the Node build.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { electronNativeFile } from '../../../main/db/native-binding.ts';
import { buildMain, buildPreload } from '../../../scripts/build.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const outDir = path.join(root, 'out', `.native-test-${process.pid}`);
const loader = fileURLToPath(new URL('./fixtures/fake-electron-loader.mjs', import.meta.url));
const VERSION = '41.7.1-fake';
const FAKE_VERSIONS = `data:text/javascript,${encodeURIComponent(
  `Object.defineProperty(process.versions, 'electron', { value: ${JSON.stringify(VERSION)}, enumerable: true });`,
)}`;
const target = electronNativeFile(outDir, VERSION);
const nodeBuild = createRequire(import.meta.url).resolve('better-sqlite3/build/Release/better_sqlite3.node');
const homes: string[] = [];

interface Finding {
  what: string;
  [key: string]: unknown;
}

async function start(): Promise<{ findings: Finding[]; output: string }> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-native-shell-'));
  homes.push(home);
  const env: NodeJS.ProcessEnv = { ...process.env, AUTODIDACT_HOME: home, FAKE_APPDATA: home, FAKE_ELECTRON_DRIVE: '1', AUTODIDACT_THREADS: '1', VITE_DEV_SERVER_URL: '' };
  delete env.AUTODIDACT_NATIVE_SQLITE;
  const child = spawn(process.execPath, ['--import', FAKE_VERSIONS, '--import', loader, path.join(outDir, 'main', 'index.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  await new Promise((resolve) => child.on('exit', resolve));
  const findings = output
    .split('\n')
    .filter((l) => l.startsWith('FAKE '))
    .map((l) => JSON.parse(l.slice(5)) as Finding);
  return { findings, output };
}

beforeAll(async () => {
  await buildMain(path.join(outDir, 'main'));
  await buildPreload(path.join(outDir, 'preload', 'index.cjs'));
  fs.mkdirSync(path.join(outDir, 'renderer'), { recursive: true });
  fs.writeFileSync(path.join(outDir, 'renderer', 'index.html'), '<!doctype html><title>Autodidact</title>');
}, 120_000);

afterAll(() => {
  fs.rmSync(outDir, { recursive: true, force: true });
  for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
});

describe('the database module under Electron, from a checkout', () => {
  it('says which file is missing and that `npm start` builds it', async () => {
    const { findings, output } = await start();
    const box = findings.find((f) => f.what === 'errorBox');
    expect(box, output).toBeDefined();
    expect(box!.message).toContain(target);
    expect(box!.message).toContain('npm start');
  });

  it('names a build that does not load', async () => {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, 'not a shared library');
    const { findings, output } = await start();
    const box = findings.find((f) => f.what === 'errorBox');
    expect(box, output).toBeDefined();
    expect(box!.message).toMatch(/does not load/);
    expect(box!.message).toContain(target);
  });

  it('opens the database through the build in out/native/', async () => {
    fs.copyFileSync(nodeBuild, target);
    const { findings, output } = await start();
    expect(findings.find((f) => f.what === 'errorBox'), output).toBeUndefined();
    expect(findings.find((f) => f.what === 'ipc.info')?.reply, output).toMatchObject({ result: { mode: 'electron' } });
  });
});
