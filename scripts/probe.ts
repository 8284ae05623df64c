// The robustness probes of issue 21, as one reproducible command:
//
//   npx tsx scripts/probe.ts [kills|imports|frames|all] [--count N] [--seed S] [--steps N] [--keep]
//                            [--no-large] [--kinds K,K] [--work-dir DIR]
//
//   kills    SIGKILL an `autodidact run` at random moments (and mid-save), resume it until it
//            completes, and compare it with an uninterrupted run to the bit
//   imports  malformed dataset files through `autodidact datasets import` and the web API:
//            each refused naming the file (and line), nothing half imported, nothing crashed
//   frames   fuzzed WebSocket messages at `autodidact serve`: each answered in the contract's
//            error shape, the server alive and its memory bounded; refused upgrades and paths
//
// --steps sets the kill probe's run length (default 6), --kinds the import probe's kinds (to
// replay one), --no-large leaves out the frame probe's 120 MiB upload and over-cap frames, --keep
// keeps the data folders under --work-dir (default $TMPDIR/autodidact-probes).
//
// A summary goes to stderr, one JSON line per probe to stdout. Seeded: a failure names what it
// was, and the same --seed replays the same cases. Exit status 1 when any probe found a problem.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { type ProbeOptions, type ProbeReport, defaultWorkDir } from './probes/common.ts';
import { probeFrames } from './probes/frames.ts';
import { IMPORT_KINDS, probeImports } from './probes/imports.ts';
import { probeKills } from './probes/kills.ts';

const PROBES = ['kills', 'imports', 'frames'] as const;
/** Default counts: a few minutes each on two busy cores (imports: each kind once). */
const DEFAULT_COUNT: Record<(typeof PROBES)[number], number> = { kills: 12, imports: IMPORT_KINDS.length, frames: 2000 };

const USAGE = 'usage: npx tsx scripts/probe.ts [kills|imports|frames|all] [--count N] [--seed S] [--steps N] [--keep] [--no-large] [--kinds K,K] [--work-dir DIR]';

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        count: { type: 'string' },
        seed: { type: 'string' },
        steps: { type: 'string' },
        keep: { type: 'boolean' },
        'no-large': { type: 'boolean' },
        'work-dir': { type: 'string' },
        kinds: { type: 'string' },
        help: { type: 'boolean' },
      },
    });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const which = positionals[0] ?? 'all';
  if (positionals.length > 1 || (which !== 'all' && !(PROBES as readonly string[]).includes(which))) {
    process.stderr.write(`unknown probe "${positionals.join(' ')}"\n${USAGE}\n`);
    return 2;
  }
  const int = (name: 'count' | 'seed' | 'steps', min: number): number | undefined => {
    const v = values[name];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer of at least ${min}, got "${v}"`);
    return n;
  };
  let count: number | undefined;
  let seed: number;
  let steps: number;
  try {
    count = int('count', 1);
    seed = int('seed', 0) ?? Math.floor(Math.random() * 2 ** 31);
    steps = int('steps', 2) ?? 6;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const workDir = values['work-dir'] ?? defaultWorkDir();
  fs.mkdirSync(workDir, { recursive: true });
  const base = (probe: (typeof PROBES)[number]): ProbeOptions => ({
    count: count ?? DEFAULT_COUNT[probe],
    seed,
    workDir,
    keep: values.keep ?? false,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const reports: ProbeReport[] = [];
  for (const probe of which === 'all' ? PROBES : [which as (typeof PROBES)[number]]) {
    let report: ProbeReport;
    if (probe === 'imports' && values.kinds !== undefined) {
      const unknown = values.kinds.split(',').filter((k) => !IMPORT_KINDS.includes(k));
      if (unknown.length) {
        process.stderr.write(`--kinds: unknown ${unknown.join(', ')}; the kinds are ${IMPORT_KINDS.join(', ')}\n`);
        return 2;
      }
    }
    if (probe === 'kills') report = await probeKills({ ...base(probe), steps });
    else if (probe === 'imports') report = await probeImports({ ...base(probe), kinds: values.kinds?.split(',').filter((k) => k !== '') });
    else report = await probeFrames({ ...base(probe), large: !values['no-large'] });
    reports.push(report);
    process.stdout.write(`${JSON.stringify(report)}\n`);
  }
  process.stderr.write(`\nseed ${seed}\n`);
  for (const r of reports) {
    process.stderr.write(`${r.passed ? 'PASS' : 'FAIL'}  ${r.probe}  ${r.seconds} s\n`);
    for (const f of r.failures.slice(0, 20)) process.stderr.write(`      ${f}\n`);
    if (r.failures.length > 20) process.stderr.write(`      ... and ${r.failures.length - 20} more\n`);
  }
  return reports.every((r) => r.passed) ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
