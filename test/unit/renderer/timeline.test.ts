// A run's step timeline as the charts follow it: new steps fetched as they are announced, one
// fetch at a time, and a step recorded again (a resumed run rolled back to its checkpoint)
// refetching the whole timeline so the wall-time axis shows the steps' new times.
import { describe, expect, it } from 'vitest';
import type { StepTimeView } from '../../../contract/index.ts';
import { StepTimeline } from '../../../renderer/src/lib/timeline.ts';

const at = (step: number, seconds: number, tokens: number | null = 100): StepTimeView => ({ step, recordedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, seconds)).toISOString(), tokens });

/** A server whose steps the test sets, recording what was asked. */
function server(steps: StepTimeView[]) {
  const asked: number[] = [];
  return {
    steps,
    asked,
    fetch: async (afterStep: number) => {
      asked.push(afterStep);
      // Answered as of when it was asked; the answer arrives a little later.
      const answer = steps.filter((s) => s.step > afterStep);
      await new Promise((r) => setTimeout(r, 5));
      return answer;
    },
  };
}

describe('StepTimeline', () => {
  it('fetches all steps first, then only the new ones, and tells its listeners', async () => {
    const s = server([at(0, 10, null), at(1, 20), at(2, 30)]);
    const t = new StepTimeline(s.fetch);
    let heard = 0;
    t.subscribe(() => heard++);
    await t.refresh('2026-01-01T00:00:00.000Z');
    expect([...t.positions.entries()]).toEqual([[0, { time: 10, tokens: 0 }], [1, { time: 20, tokens: 100 }], [2, { time: 30, tokens: 200 }]]);
    s.steps.push(at(3, 40));
    await t.refresh(null, 3);
    expect(s.asked).toEqual([-1, 2]);
    expect(t.positions.get(3)).toEqual({ time: 40, tokens: 300 });
    expect(heard).toBe(2);
  });

  it('asks once at a time: refreshes during a fetch become one more fetch', async () => {
    const s = server([at(1, 20)]);
    const t = new StepTimeline(s.fetch);
    const first = t.refresh(null);
    s.steps.push(at(2, 30));
    void t.refresh(null, 2);
    void t.refresh(null, 2);
    await first;
    // The first fetch, then one more for both refreshes asked during it.
    expect(s.asked).toEqual([-1, 1]);
    expect([...t.positions.keys()]).toEqual([1, 2]);
  });

  it('refetches everything when a known step is recorded again, so its new time replaces the old', async () => {
    const s = server([at(1, 20), at(2, 30), at(3, 40)]);
    const t = new StepTimeline(s.fetch);
    await t.refresh('2026-01-01T00:00:00.000Z');
    // Resumed from step 1's checkpoint: steps 2 and 3 are trained again, later.
    s.steps.splice(1, 2, at(2, 300), at(3, 310));
    await t.refresh(null, 2);
    expect(s.asked).toEqual([-1, -1]);
    expect(t.positions.get(2)).toEqual({ time: 300, tokens: 200 });
    expect(t.positions.get(3)).toEqual({ time: 310, tokens: 300 });
  });
});
