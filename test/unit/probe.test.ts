// The robustness probes (scripts/probe.ts) at tiny counts, run as a person runs them, so the
// probe code itself is exercised and cannot rot; and their checks shown to catch what they look
// for (a differing record, a partial import, a refusal without its line, an error off the contract's shape).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { badErrorShape } from '../../scripts/probes/common.ts';
import { type Case, badOutcome, badRefusal } from '../../scripts/probes/imports.ts';
import { firstDifference } from '../../scripts/probes/kills.ts';
import { ROOT } from '../helpers/cli.ts';
import { tempDir } from './db/helpers.ts';

function probe(args: string[]): Promise<{ code: number | null; reports: Record<string, unknown>[]; stderr: string }> {
  const work = tempDir('autodidact-probe-test-');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/probe.ts'), ...args, '--work-dir', work.dir], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      work.remove();
      resolve({ code, stderr, reports: stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>) });
    });
  });
}

describe('scripts/probe.ts', () => {
  it('kills: a run killed twice and resumed matches the uninterrupted one', async () => {
    const r = await probe(['kills', '--count', '2', '--steps', '3', '--seed', '3']);
    expect(r.reports, r.stderr).toHaveLength(1);
    expect(r.reports[0]).toMatchObject({ probe: 'kills', seed: 3, passed: true, failures: [], kills: 2, steps_per_run: 3 });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^PASS {2}kills/m);
  }, 300_000);

  it('imports: malformed files refused through the command line and the API naming file and line, a good one imported', async () => {
    const r = await probe(['imports', '--count', '3', '--kinds', 'latin1,control,fifo', '--seed', '5']);
    expect(r.reports, r.stderr).toHaveLength(1);
    expect(r.reports[0]).toMatchObject({
      probe: 'imports',
      passed: true,
      failures: [],
      cases: 3,
      cli: { refused: 2, named: 2, accepted: 1 },
      api: { refused: 1, named: 1, accepted: 1 },
      partial_imports: 0,
    });
    expect(r.code).toBe(0);
  }, 300_000);

  it('frames: fuzzed messages answered in the contract shape, refusals and traversals refused', async () => {
    const r = await probe(['frames', '--count', '40', '--seed', '11', '--no-large']);
    expect(r.reports, r.stderr).toHaveLength(1);
    const report = r.reports[0] as { passed: boolean; messages: number; traversal_refused: number; traversal_variants: number; refused: Record<string, number> };
    expect(report, JSON.stringify(report)).toMatchObject({ probe: 'frames', passed: true, failures: [], messages: 40, batches: 1 });
    expect(report.traversal_refused).toBe(report.traversal_variants);
    expect(report.refused).toEqual({ 'no token': 401, 'wrong token': 401, 'foreign Origin': 403, 'rebinding Host': 421, 'other path': 404 });
    expect(r.code).toBe(0);
  }, 300_000);

  it('refuses an unknown probe or import kind with the usage', async () => {
    const r = await probe(['imports', '--kinds', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--kinds: unknown nope; the kinds are truncated-json, /);
    expect((await probe(['everything'])).stderr).toMatch(/unknown probe "everything"\nusage: /);
  });
});

describe("the probes' checks", () => {
  it('a run differing in one metric, a sample text or a blob is caught, naming the table and row', () => {
    const a = { metrics: [{ step: 1, key: 'train/entropy', value: 4.59214779734612 }], samples: [{ text: 'ab', logprobs: '00ff' }] };
    expect(firstDifference(a, structuredClone(a))).toBeNull();
    const b = structuredClone(a);
    b.metrics[0].value = 4.592147797346121;
    expect(firstDifference(a, b)).toMatch(/^metrics row 0: reference .*4\.59214779734612\b.* vs .*4\.592147797346121/);
    const c = structuredClone(a);
    c.samples[0].logprobs = '00fe';
    expect(firstDifference(a, c)).toMatch(/^samples row 0/);
    expect(firstDifference(a, { ...a, samples: [] })).toMatch(/^samples row 0: .* vs undefined/);
  });

  it('an import that left rows, a refusal without its line, and a refused good file are failures', () => {
    const bad: Case = { kind: 'latin1', fileName: 'x.jsonl', line: 3, expect: 'refuse', mentions: /Latin-1/ };
    const none = { datasets: 1, items: 10, staged: 0 };
    expect(badOutcome(bad, true, none, none)).toBeNull();
    expect(badOutcome(bad, true, none, { datasets: 1, items: 12, staged: 0 })).toMatch(/partial import: .*items 10 → 12/);
    expect(badOutcome(bad, true, none, { datasets: 2, items: 10, staged: 1 })).toMatch(/1 staged datasets left behind/);
    expect(badOutcome(bad, false, none, { datasets: 2, items: 15, staged: 0 })).toMatch(/imported, should have been refused/);
    expect(badOutcome({ ...bad, expect: 'accept', items: 5 }, false, none, { datasets: 2, items: 15, staged: 0 })).toBeNull();
    expect(badOutcome({ ...bad, expect: 'accept', items: 5 }, true, none, none)).toMatch(/refused a well-formed file/);
    expect(badRefusal(bad, 'x.jsonl:3: not UTF-8; Latin-1?', 'x.jsonl')).toBeNull();
    expect(badRefusal(bad, 'x.jsonl: not UTF-8; Latin-1?', 'x.jsonl')).toMatch(/does not name line 3/);
    expect(badRefusal(bad, 'line 3: not UTF-8; Latin-1?', 'x.jsonl')).toMatch(/does not name the file/);
    expect(badRefusal(bad, 'x.jsonl:3: not UTF-8', 'x.jsonl')).toMatch(/does not say \/Latin-1\//);
  });

  it("an error off the contract's shape is named", () => {
    expect(badErrorShape({ type: 'error', id: 1, error: { code: 'BAD_REQUEST', message: 'x', issues: [{ path: 'a', message: 'b' }] } })).toBeNull();
    expect(badErrorShape({ type: 'error', id: 1, error: { code: 'OOPS', message: 'x' } })).toMatch(/unknown code "OOPS"/);
    expect(badErrorShape({ type: 'error', id: 1, error: { code: 'CONFLICT', message: '' } })).toBe('no message');
    expect(badErrorShape({ type: 'error', id: 1, error: { code: 'CONFLICT', message: 'x', stack: 'at ...' } })).toBe('extra keys stack');
    expect(badErrorShape({ type: 'error', id: 1, error: { code: 'BAD_REQUEST', message: 'x', issues: [{ path: 1 }] } })).toBe('malformed issues');
    expect(badErrorShape({ type: 'error', id: 1 })).toBe('no error object');
  });
});
