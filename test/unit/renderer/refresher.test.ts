// The run view's refresh cannot be starved by a run that steps faster than its wait (issue 15.10:
// the checkpoints panel lagged the log mid-run).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Refresher } from '../../../renderer/src/lib/refresher.ts';

describe('Refresher', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('refreshes within the wait even when asked again every 200 ms', () => {
    let done = 0;
    const r = new Refresher(() => done++);
    for (let t = 0; t < 5000; t += 200) {
      r.request(1500);
      vi.advanceTimersByTime(200);
    }
    // 5 s of steps every 200 ms: a refresh about every 1.6 s, not none.
    expect(done).toBeGreaterThanOrEqual(3);
  });

  it('brings a pending refresh forward for a sooner request, never later', () => {
    let done = 0;
    const r = new Refresher(() => done++);
    r.request(1500);
    vi.advanceTimersByTime(100);
    r.request(300);
    vi.advanceTimersByTime(300);
    expect(done).toBe(1);
    r.request(300);
    r.request(1500);
    vi.advanceTimersByTime(300);
    expect(done).toBe(2);
    vi.advanceTimersByTime(5000);
    expect(done).toBe(2);
  });

  it('cancel drops a pending refresh', () => {
    let done = 0;
    const r = new Refresher(() => done++);
    r.request(100);
    r.cancel();
    vi.advanceTimersByTime(1000);
    expect(done).toBe(0);
  });
});
