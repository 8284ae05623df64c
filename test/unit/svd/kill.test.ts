// `autodidact run --method svd` killed with SIGKILL in the middle of a round's cascade, then
// `--resume`d (issue 17, acceptance 2): the run completes, and its candidates and every stage
// vote are those of an uninterrupted run with the same settings, each exactly once.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type ExperimentDb, getRun, listSteps, listSvdRounds, openDatabase, svdCandidates, svdVerdicts } from '../../../main/db/index.ts';
import { databasePath } from '../../../main/runs/home.ts';
import { tempDir } from '../db/helpers.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = path.join(ROOT, 'bin/autodidact.js');
const tmp = tempDir('autodidact-svd-kill-');
const HOME = tmp.file('home');
const DATA = tmp.file('sums.jsonl');
fs.writeFileSync(
  DATA,
  Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: `Compute ${11 + 7 * i}+${23 + 3 * i}. Answer: `, answer: String(34 + 10 * i) })).join('\n') + '\n',
);
const SETTINGS = ['--model', 'tiny-arith', '--dataset', DATA, '--steps', '2', '--set', 'svdQuestions=6', '--set', 'svdCandidates=3', '--set', 'svdJudgeVotes=2', '--set', 'svdJudgeChunk=2', '--set', 'svdVoteRule=majority'];
// Correctness first: the committed tiny-arith passes it often enough to leave survivors to train on.
const STAGES = ['--set', 'svdStages=["correctness","factuality","cycle"]', '--set', 'valEvery=0', '--set', 'maxNewTokens=4', '--set', 'svdBatch=4', '--set', 'svdEpochs=1'];

function start(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: tmp.dir, env: { ...process.env, AUTODIDACT_HOME: HOME, AUTODIDACT_THREADS: '1' } });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  return { child, done: new Promise((resolve, reject) => (child.on('error', reject), child.on('close', (code) => resolve({ code, stderr })))) };
}

function withDb<T>(fn: (db: ExperimentDb) => T): T {
  const db = openDatabase(databasePath(HOME));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** A run's rounds as stored, without row ids. */
const rounds = (db: ExperimentDb, runId: number) =>
  listSvdRounds(db, runId).map((r) => {
    const cs = svdCandidates(db, runId, r.round);
    const index = new Map(cs.map((c, i) => [c.id, i]));
    return {
      round: r.round,
      status: r.status,
      candidates: cs.map(({ id: _id, ...c }) => c),
      verdicts: svdVerdicts(db, runId, r.round).map((v) => ({ ...v, candidateId: index.get(v.candidateId) })),
    };
  });

afterAll(() => tmp.remove());

describe('a distillation run killed mid-round', () => {
  it('resumes without losing or duplicating a candidate or a verdict', async () => {
    const whole = await start(['run', '--method', 'svd', '--name', 'whole', ...SETTINGS, ...STAGES]).done;
    expect(whole.code, whole.stderr).toBe(0);

    const run = start(['run', '--method', 'svd', '--name', 'killed', ...SETTINGS, ...STAGES]);
    // Killed once round 2's cascade has stored some of its verdicts: the resume starts from round
    // 1's checkpoint and continues round 2 from what it stored.
    const killedAt = await new Promise<number>((resolve, reject) => {
      const timer = setInterval(() => {
        if (!fs.existsSync(databasePath(HOME))) return;
        const n = withDb((db) => (db.sql.prepare("SELECT count(*) AS n FROM svd_verdicts v JOIN svd_candidates c ON c.id = v.candidate_id JOIN runs r ON r.id = c.run_id WHERE r.name = 'killed' AND c.round = 2").get() as { n: number }).n);
        if (n > 0) {
          clearInterval(timer);
          run.child.kill('SIGKILL');
          resolve(n);
        }
      }, 10);
      void run.done.then(() => {
        clearInterval(timer);
        reject(new Error('the run ended before it could be killed'));
      });
    });
    await run.done;
    const ids = withDb((db) => db.sql.prepare("SELECT id, name FROM runs WHERE name IN ('whole', 'killed') ORDER BY name").all() as { id: number; name: string }[]);
    const killed = ids.find((r) => r.name === 'killed')!.id;
    const uninterrupted = ids.find((r) => r.name === 'whole')!.id;
    // Round 1 trained and checkpointed, round 2 part-way through its cascade.
    withDb((db) => {
      expect(listSteps(db, killed)).toEqual([1]);
      expect(listSvdRounds(db, killed).map((r) => [r.round, r.status])).toEqual([
        [1, 'trained'],
        [2, 'judging'],
      ]);
      expect(svdVerdicts(db, killed, 2).reduce((n, v) => n + v.votes.length, 0)).toBeGreaterThanOrEqual(killedAt);
    });

    const resumed = await start(['run', '--resume', 'killed']).done;
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming run \d+ "killed" after step 1/);
    withDb((db) => {
      expect(db.sql.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(getRun(db, killed)).toMatchObject({ status: 'completed', currentStep: 2 });
      expect(listSteps(db, killed)).toEqual([1, 2]);
      expect(rounds(db, killed)).toEqual(rounds(db, uninterrupted));
    });
  });
});
