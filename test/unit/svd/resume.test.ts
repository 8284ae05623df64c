// What a resume keeps of a distillation run's rounds: the round after the checkpoint it starts
// from was sampled by that checkpoint's model, so it is continued (its candidates and verdicts
// kept); later rounds were sampled by models no checkpoint holds, so they go.
import { describe, expect, it } from 'vitest';
import { createRun, createSvdRound, listSvdRounds, openDatabase, recordStep, updateRunStatus } from '../../../main/db/index.ts';
import { prepareResume } from '../../../main/runs/start.ts';
import { checkpointLoopStep } from '../../../main/runs/sink.ts';

const cand = { question: 0, itemIdx: 0, prompt: 'Compute 1+1. Answer: ', idx: 0, text: '2', answer: '2', tokenIds: [1], correct: true };

describe('prepareResume of a distillation run', () => {
  it('without a checkpoint keeps round 1 (sampled by the base model) and drops the rounds after it', () => {
    const db = openDatabase(':memory:');
    const run = createRun(db, { name: 'svd', method: 'svd', model: 'm', dataset: 'd', config: { method: 'svd', steps: 3 } });
    recordStep(db, run.id, 0, { metrics: { 'val/avg@16': 0.5 } });
    for (const r of [1, 2]) createSvdRound(db, run.id, r, ['factuality'], [cand]);
    expect(prepareResume(db, updateRunStatus(db, run.id, 'stopped'))).toEqual({ startAfter: 0 });
    expect(listSvdRounds(db, run.id).map((r) => r.round)).toEqual([1]);
    db.close();
  });

  it('reads a distillation checkpoint’s round as its step', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svd-ckpt-'));
    fs.writeFileSync(path.join(dir, 'trainer_state.json'), JSON.stringify({ extra: { kind: 'autodidact-svd', step: 2, cursor: 10, itemCount: 20, best: null } }));
    expect(checkpointLoopStep(dir)).toBe(2);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
