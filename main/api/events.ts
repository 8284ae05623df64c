// The event hub: every event the main process pushes to the windows goes through here. Live run
// data (progress, metric points, log lines, recorded steps) can arrive many times a second while
// a run trains; the hub holds it back per run and delivers at most one event per channel per run
// per interval (progress and step: the latest; metrics and log: everything, concatenated).
// Status changes, alerts and the `*.changed` events go out at once, but a run's held-back data
// goes first, so a listener never sees a run's 'completed' before its last step.
import type { Events, EventName, LogLine, MetricPoint } from '../../contract/index.ts';
import type { EventHub } from './interfaces.ts';

type Listener = <E extends EventName>(event: E, payload: Events[E]) => void;

/** The channels that are batched per run. */
const BATCHED = new Set<EventName>(['run.progress', 'run.metrics', 'run.log', 'run.step']);

interface Held {
  /** Channels in the order their first held event arrived, so a flush keeps that order. */
  order: EventName[];
  progress?: Events['run.progress'];
  step?: Events['run.step'];
  points: MetricPoint[];
  lines: LogLine[];
  timer: NodeJS.Timeout;
}

/** The run an event belongs to, or null. */
function runOf<E extends EventName>(event: E, payload: Events[E]): number | null {
  if (event === 'run.status') return (payload as Events['run.status']).run.id;
  if (event === 'reviews.changed') return (payload as Events['reviews.changed']).runId;
  const runId = (payload as { runId?: unknown }).runId;
  return typeof runId === 'number' ? runId : null;
}

export function createEventHub(options: { intervalMs?: number } = {}): EventHub {
  const intervalMs = options.intervalMs ?? 100;
  const listeners = new Set<Listener>();
  const held = new Map<number, Held>();
  let closed = false;

  const deliver = <E extends EventName>(event: E, payload: Events[E]) => {
    for (const l of [...listeners]) {
      try {
        l(event, payload);
      } catch (e) {
        // One broken transport must not starve the others of events.
        console.error(`event listener failed on ${event}: ${(e as Error).message}`);
      }
    }
  };

  const flushRun = (runId: number) => {
    const h = held.get(runId);
    if (!h) return;
    held.delete(runId);
    clearTimeout(h.timer);
    for (const channel of h.order) {
      if (channel === 'run.progress' && h.progress) deliver('run.progress', h.progress);
      else if (channel === 'run.step' && h.step) deliver('run.step', h.step);
      else if (channel === 'run.metrics') deliver('run.metrics', { runId, points: h.points });
      else if (channel === 'run.log') deliver('run.log', { runId, lines: h.lines });
    }
  };

  const hold = <E extends EventName>(runId: number, event: E, payload: Events[E]) => {
    let h = held.get(runId);
    if (!h) {
      // Trailing delivery: the first event of a quiet run waits one interval, gathering the rest.
      h = { order: [], points: [], lines: [], timer: setTimeout(() => flushRun(runId), intervalMs) };
      held.set(runId, h);
    }
    if (!h.order.includes(event)) h.order.push(event);
    if (event === 'run.progress') h.progress = payload as Events['run.progress'];
    else if (event === 'run.step') h.step = payload as Events['run.step'];
    else if (event === 'run.metrics') h.points.push(...(payload as Events['run.metrics']).points);
    else if (event === 'run.log') h.lines.push(...(payload as Events['run.log']).lines);
  };

  return {
    emit(event, payload) {
      if (closed) return;
      const runId = runOf(event, payload);
      if (runId !== null && BATCHED.has(event)) return hold(runId, event, payload);
      if (runId !== null) flushRun(runId);
      deliver(event, payload);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    flush() {
      for (const runId of [...held.keys()]) flushRun(runId);
    },
    close() {
      for (const runId of [...held.keys()]) flushRun(runId);
      listeners.clear();
      closed = true;
    },
  };
}
