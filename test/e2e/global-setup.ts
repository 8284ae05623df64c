// Builds the renderer once before the browser suite: web mode serves out/renderer/.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../helpers/cli.ts';

export default function setup(): void {
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
}
