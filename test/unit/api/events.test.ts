// The event hub: live run data is coalesced to one delivery per channel per run per interval,
// nothing is lost, and status events never overtake a run's held-back data.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EventName, Events, RunView } from '../../../contract/index.ts';
import { createEventHub } from '../../../main/api/events.ts';

type Delivery = { event: EventName; payload: unknown; at: number };

function record(hub: ReturnType<typeof createEventHub>): Delivery[] {
  const out: Delivery[] = [];
  hub.subscribe((event, payload) => out.push({ event, payload, at: Date.now() }));
  return out;
}

const status = (id: number, s: RunView['status']): Events['run.status'] => ({ run: { id, status: s } as RunView });
const progress = (runId: number, step: number): Events['run.progress'] => ({ runId, progress: { step, steps: 100, phase: 'rollout', etaSeconds: null } });

afterEach(() => {
  vi.useRealTimers();
});

describe('event hub', () => {
  it('coalesces a burst to at most one delivery per channel per run, losing nothing', () => {
    vi.useFakeTimers();
    const hub = createEventHub();
    const got = record(hub);
    for (let step = 1; step <= 50; step++) {
      for (const runId of [1, 2]) {
        hub.emit('run.progress', progress(runId, step));
        hub.emit('run.metrics', { runId, points: [{ step, key: 'train/entropy', value: step / 10 }] });
        hub.emit('run.log', { runId, lines: [{ time: 't', level: 'info', message: `run ${runId} step ${step}` }] });
        hub.emit('run.step', { runId, step, groups: 2, labelAccuracy: null });
      }
      vi.advanceTimersByTime(1); // 50 ms in all: within one interval
    }
    expect(got).toHaveLength(0);
    vi.advanceTimersByTime(100);
    // One of each channel per run.
    expect(got.map((d) => `${d.event}:${(d.payload as { runId: number }).runId}`).sort()).toEqual(
      ['run.log:1', 'run.log:2', 'run.metrics:1', 'run.metrics:2', 'run.progress:1', 'run.progress:2', 'run.step:1', 'run.step:2'].sort(),
    );
    for (const runId of [1, 2]) {
      const of = <E extends EventName>(e: E) => got.find((d) => d.event === e && (d.payload as { runId: number }).runId === runId)!.payload as Events[E];
      // Progress and step: the latest; metrics and log: every point and line, in order.
      expect(of('run.progress').progress.step).toBe(50);
      expect(of('run.step').step).toBe(50);
      expect(of('run.metrics').points.map((p) => p.step)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(of('run.log').lines.map((l) => l.message)).toEqual(Array.from({ length: 50 }, (_, i) => `run ${runId} step ${i + 1}`));
    }
    // Channels go out in the order they first arrived.
    expect(got.filter((d) => (d.payload as { runId: number }).runId === 1).map((d) => d.event)).toEqual(['run.progress', 'run.metrics', 'run.log', 'run.step']);
    hub.close();
  });

  it('never delivers a channel of a run twice within the interval (real timers)', async () => {
    const hub = createEventHub({ intervalMs: 100 });
    const got = record(hub);
    const t0 = Date.now();
    while (Date.now() - t0 < 350) {
      hub.emit('run.progress', progress(7, Date.now() - t0));
      await new Promise((r) => setTimeout(r, 2));
    }
    hub.flush();
    const times = got.filter((d) => d.event === 'run.progress').map((d) => d.at);
    expect(times.length).toBeGreaterThanOrEqual(3);
    // The flush at the end may follow the last timer closely; the timed deliveries may not.
    for (let i = 1; i < times.length - 1; i++) expect(times[i] - times[i - 1]).toBeGreaterThanOrEqual(95);
    hub.close();
  });

  it("flushes a run's held data before its status and alerts, and passes other events straight through", () => {
    vi.useFakeTimers();
    const hub = createEventHub();
    const got = record(hub);
    hub.emit('run.metrics', { runId: 1, points: [{ step: 3, key: 'k', value: 1 }] });
    hub.emit('run.metrics', { runId: 2, points: [{ step: 9, key: 'k', value: 1 }] });
    hub.emit('run.step', { runId: 1, step: 3, groups: 2, labelAccuracy: 0.5 });
    hub.emit('run.alert', { runId: 1, alert: { id: 1, step: 3, kind: 'collapse', message: 'm', createdAt: 't' } });
    hub.emit('run.status', status(1, 'completed'));
    hub.emit('datasets.changed', {});
    // Run 1's data before its alert and status; run 2's stays held; the unrelated event passes.
    expect(got.map((d) => d.event)).toEqual(['run.metrics', 'run.step', 'run.alert', 'run.status', 'datasets.changed']);
    expect((got[0].payload as Events['run.metrics']).runId).toBe(1);
    hub.emit('reviews.changed', { runId: 2, count: 1 });
    expect(got.slice(5).map((d) => `${d.event}:${(d.payload as { runId: number }).runId}`)).toEqual(['run.metrics:2', 'reviews.changed:2']);
    vi.advanceTimersByTime(500);
    expect(got).toHaveLength(7); // nothing held is delivered twice
    hub.close();
  });

  it('close() delivers what is held, then nothing more; a throwing listener does not starve the others', () => {
    vi.useFakeTimers();
    const hub = createEventHub();
    const spy = vi.spyOn(console, 'error').mockImplementation(() => {});
    hub.subscribe(() => {
      throw new Error('broken transport');
    });
    const got = record(hub);
    hub.emit('run.log', { runId: 4, lines: [{ time: 't', level: 'info', message: 'a' }] });
    hub.close();
    expect(got.map((d) => d.event)).toEqual(['run.log']);
    expect(spy).toHaveBeenCalled();
    hub.emit('run.status', status(4, 'running'));
    vi.advanceTimersByTime(500);
    expect(got).toHaveLength(1);
    spy.mockRestore();
  });
});
