// Notices go away by themselves (issue 15.10: error toasts never dismissed and covered the run
// log), and one the pointer rests on stays until the pointer leaves.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DismissTimers, toastLifetime } from '../../../renderer/src/lib/toast-timers.ts';

describe('toast lifetimes', () => {
  it('every kind expires; errors stay longer, and longer messages longer still, up to 30 s', () => {
    expect(toastLifetime('info', 'Saved')).toBe(4000);
    expect(toastLifetime('warn', 'Careful')).toBe(8000);
    expect(toastLifetime('error', 'The dataset was not imported')).toBe(12_000);
    // 200 characters: 120 beyond the first 80, at 50 ms each.
    expect(toastLifetime('error', 'x'.repeat(150), 'y'.repeat(50))).toBe(12_000 + 120 * 50);
    expect(toastLifetime('error', 'x'.repeat(10_000))).toBe(30_000);
  });
});

describe('DismissTimers', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires a notice after its lifetime', () => {
    const gone: number[] = [];
    const t = new DismissTimers((id) => gone.push(id));
    t.start(1, 1000);
    t.start(2, 3000);
    vi.advanceTimersByTime(999);
    expect(gone).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(gone).toEqual([1]);
    vi.advanceTimersByTime(2000);
    expect(gone).toEqual([1, 2]);
  });

  it('holds while the pointer is on it, then resumes with the time it had left (at least the minimum)', () => {
    const gone: number[] = [];
    const t = new DismissTimers((id) => gone.push(id));
    t.start(1, 5000);
    vi.advanceTimersByTime(2000);
    t.hold(1);
    vi.advanceTimersByTime(60_000);
    expect(gone).toEqual([]);
    t.release(1);
    vi.advanceTimersByTime(2999);
    expect(gone).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(gone).toEqual([1]);

    t.start(2, 1000);
    vi.advanceTimersByTime(900);
    t.hold(2);
    t.release(2, 1500);
    vi.advanceTimersByTime(1499);
    expect(gone).toEqual([1]);
    vi.advanceTimersByTime(1);
    expect(gone).toEqual([1, 2]);
  });

  it('a dismissed notice never fires', () => {
    const gone: number[] = [];
    const t = new DismissTimers((id) => gone.push(id));
    t.start(1, 1000);
    t.clear(1);
    vi.advanceTimersByTime(5000);
    expect(gone).toEqual([]);
  });
});
