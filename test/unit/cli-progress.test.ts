// The progress display of long commands: a redrawn bar on a terminal, plain lines otherwise,
// with the ETA at the pace of training steps run by this process (setup and validations apart).
import { describe, expect, it } from 'vitest';
import { Progress, formatDuration, keyMetrics } from '../../main/cli/progress.ts';

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  const stream = { isTTY, columns: 60, write: (s: string) => chunks.push(s) > 0 } as unknown as NodeJS.WriteStream;
  return { stream, text: () => chunks.join('') };
}

describe('Progress', () => {
  it('prints one plain line per step when not on a terminal', () => {
    let now = 0;
    const out = sink(false);
    const p = new Progress({ total: 10, stream: out.stream, now: () => now });
    now = 20_000;
    // The first step (setup, graph compilation) gives no pace yet.
    p.update(1, { 'train/majority_ratio': 0.5, 'train/entropy': 1.23456, 'actor/lr': 1e-4 });
    now = 22_000;
    p.update(2, {});
    p.finish();
    expect(out.text()).toBe('step 1/10  ETA ?  maj_ratio 0.5  entropy 1.23\nstep 2/10  ETA 16s\n');
  });

  it('redraws a bar in place on a terminal, cut to its width, and ends the line on finish', () => {
    let now = 0;
    const out = sink(true);
    const p = new Progress({ total: 4, valEvery: 2, stream: out.stream, now: () => now });
    // A resumed run: its first step here marks the start; then one step of 10 s, then a 3 s validation.
    now = 5000;
    p.update(2, {});
    now = 15_000;
    p.phase('validation');
    now = 18_000;
    p.update(3, { 'val/maj@16': 0.25 });
    // One step at 10 s plus the validation at step 4.
    expect(out.text().endsWith('\r\x1b[2K[###############-----] 3/4  ETA 13s  val/maj@16 0.25')).toBe(true);
    p.update(4, {});
    p.finish();
    expect(out.text().endsWith('[####################] 4/4  done\n')).toBe(true);
  });

  it('formats durations and key metrics', () => {
    expect([formatDuration(5), formatDuration(125), formatDuration(3 * 3600 + 60), formatDuration(NaN)]).toEqual(['5s', '2m05s', '3h01m', '?']);
    expect(keyMetrics({ 'train/label_accuracy': 1, 'timing/step': 3 })).toBe('label_acc 1');
  });
});
