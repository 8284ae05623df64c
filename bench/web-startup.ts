// How long web mode takes from start to an interactive page (issue 4: within 2 seconds).
//
//   npm run build && npx tsx bench/web-startup.ts [--runs N] [--tsx]
//
// A browser is already open (as the user's would be); the clock starts when `autodidact serve`
// is spawned and stops when the page, opened at the printed address, shows the datasets view
// with the answer of its first request (the dataset list of a fresh data folder). The bundled
// command line (out/main/cli.js) is what `npm run serve` starts; `--tsx` measures the checkout's
// TypeScript sources through tsx instead. Prints one JSON line per run and a summary line.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { launchBrowser } from '../test/e2e/harness.ts';
import { ROOT } from '../test/helpers/cli.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, tsx: { type: 'boolean', default: false } } });
const entry = values.tsx ? path.join(ROOT, 'bin/autodidact.js') : path.join(ROOT, 'out/main/cli.js');
if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first`);

const browser = await launchBrowser();
const results: { listening_ms: number; interactive_ms: number }[] = [];
try {
  for (let i = 0; i < Number(values.runs); i++) {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-startup-'));
    const page = await browser.newPage();
    const t0 = performance.now();
    const child = spawn(process.execPath, [entry, 'serve', '--port', '0', '--no-open'], { cwd: ROOT, env: { ...process.env, AUTODIDACT_HOME: home }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
    });
    const listening = performance.now() - t0;
    await page.goto(`${url}#/datasets`);
    await page.getByText('No datasets yet').waitFor();
    const interactive = performance.now() - t0;
    results.push({ listening_ms: Math.round(listening), interactive_ms: Math.round(interactive) });
    console.log(JSON.stringify({ run: i + 1, entry: path.relative(ROOT, entry), ...results.at(-1) }));
    await page.close();
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await exited;
    fs.rmSync(home, { recursive: true, force: true });
  }
} finally {
  await browser.close();
}
const sorted = results.map((r) => r.interactive_ms).sort((a, b) => a - b);
console.log(JSON.stringify({ median_interactive_ms: sorted[Math.floor(sorted.length / 2)], max_interactive_ms: sorted.at(-1), load: os.loadavg()[0].toFixed(2) }));
