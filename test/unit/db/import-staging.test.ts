// An import writes its items in short transactions under a dataset no reader sees, then publishes
// it in one: another connection never sees a half-imported dataset, a failure mid-way leaves
// nothing (its staged rows are deleted), a dead importer's staging is swept by the next import,
// and a run's step write that finds the database busy waits and retries instead of failing.
import os from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatabaseError, type ExperimentDb, openDatabase } from '../../../main/db/database.ts';
import { type NewDatasetItem, getDataset, importDataset, listDatasets, sweepAbandonedImports } from '../../../main/db/datasets.ts';
import { createRun, listSteps } from '../../../main/db/index.ts';
import { databaseSink } from '../../../main/runs/sink.ts';
import type { StepRecord } from '../../../main/engine/rl/index.ts';
import { tempDir } from './helpers.ts';

const tmp = tempDir('autodidact-staging-');
let file: string;
let db: ExperimentDb;
let other: ExperimentDb;
let n = 0;
beforeEach(() => {
  file = tmp.file(`t${++n}.db`);
  db = openDatabase(file);
  other = openDatabase(file);
});
afterEach(() => {
  db.close();
  other.close();
});

const count = (c: ExperimentDb, table: string): number => (c.sql.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

/** `n` items; `spy(i)` runs as item i is taken. */
function* items(n: number, spy: (i: number) => void = () => {}): Generator<NewDatasetItem> {
  for (let i = 0; i < n; i++) {
    spy(i);
    yield { prompt: `prompt ${i}`, answer: String(i) };
  }
}

describe('a staged import', () => {
  it('commits in batches no other connection sees until the publish', () => {
    const seen: { datasets: number; items: number }[] = [];
    // batchMs 0: one transaction per 64 rows, so this import commits many times.
    const d = importDataset(db, { name: 'big' }, items(1000, (i) => i % 200 === 199 && seen.push({ datasets: listDatasets(other).length, items: count(other, 'dataset_items') })), { batchMs: 0, pauseMs: 0 });
    // Rows were committed (the other connection counts them) while the dataset stayed invisible.
    expect(seen.map((s) => s.datasets)).toEqual([0, 0, 0, 0, 0]);
    expect(seen.at(-1)!.items).toBeGreaterThan(0);
    expect(getDataset(other, 'big')).toMatchObject({ id: d.id, itemCount: 1000, labeledCount: 1000 });
    expect(db.sql.prepare('SELECT import_owner FROM datasets WHERE id = ?').get(d.id)).toEqual({ import_owner: null });
  });

  it('a failure after several batches leaves nothing, staged rows included', () => {
    const bad = function* () {
      yield* items(500);
      yield { prompt: '' };
    };
    expect(() => importDataset(db, { name: 'doomed' }, bad(), { batchMs: 0, pauseMs: 0 })).toThrow(/Dataset item 500 has no prompt/);
    expect([count(other, 'datasets'), count(other, 'dataset_items')]).toEqual([0, 0]);
    const parseError = function* () {
      yield* items(300);
      throw new Error('file.jsonl:301: invalid JSON');
    };
    expect(() => importDataset(db, { name: 'doomed' }, parseError(), { batchMs: 0, pauseMs: 0 })).toThrow(/file.jsonl:301/);
    expect([count(other, 'datasets'), count(other, 'dataset_items')]).toEqual([0, 0]);
    // The name is free again, and synchronous=FULL is back for every later write.
    expect(importDataset(db, { name: 'doomed' }, items(3)).itemCount).toBe(3);
    expect(db.sql.pragma('synchronous', { simple: true })).toBe(2);
  });

  it('sweeps the staging of a dead importer; a live one keeps its name reserved', () => {
    const stage = (name: string, pid: number) => {
      const owner = JSON.stringify({ pid, hostname: os.hostname(), startedAt: '2026-01-01T00:00:00Z' });
      const id = Number(db.sql.prepare('INSERT INTO datasets (name, import_owner) VALUES (?, ?)').run(name, owner).lastInsertRowid);
      const insert = db.sql.prepare('INSERT INTO dataset_items (dataset_id, idx, prompt) VALUES (?, ?, ?)');
      for (let i = 0; i < 50; i++) insert.run(id, i, `p${i}`);
    };
    // A pid no process has (above the kernel's pid_max of 2^22).
    stage('killed-mid-import', 2 ** 22 + 7);
    stage('still-importing', process.ppid);
    expect(listDatasets(db)).toEqual([]);
    expect(() => importDataset(db, { name: 'still-importing' }, items(1))).toThrow(
      new RegExp(`"still-importing" is being imported by another process \\(pid ${process.ppid}`),
    );
    expect(count(db, 'datasets')).toBe(1);
    expect(count(db, 'dataset_items')).toBe(50);
    expect(importDataset(db, { name: 'killed-mid-import' }, items(2)).itemCount).toBe(2);
    expect(sweepAbandonedImports(db)).toBe(0);
  });
});

describe("a run's step write on a busy database", () => {
  const record = (step: number): StepRecord => ({ step, metrics: { 'train/x': step }, groups: [], checkpoints: [], alerts: [] });

  it('waits for another connection’s long write, then saves the step', async () => {
    const shortWait = openDatabase(file, { busyTimeoutMs: 20 });
    try {
      const run = createRun(shortWait, { name: 'r', method: 'ttrl', model: 'm', dataset: 'd', config: {} });
      const waits: string[] = [];
      const sink = databaseSink(shortWait, run.id, { onWait: (m) => waits.push(m) });
      other.sql.exec('BEGIN IMMEDIATE');
      const release = setTimeout(() => other.sql.exec('COMMIT'), 300);
      await sink(record(1));
      clearTimeout(release);
      expect(listSteps(shortWait, run.id)).toEqual([1]);
      expect(waits.length).toBeGreaterThan(0);
      expect(waits[0]).toMatch(/^step 1: the database is busy \(another process is writing to it\); waiting to save the step/);
      // Past its patience it gives up with the database's own message, and nothing of the step is stored.
      const impatient = databaseSink(shortWait, run.id, { patienceMs: 100 });
      other.sql.exec('BEGIN IMMEDIATE');
      try {
        await expect(impatient(record(2))).rejects.toThrow(DatabaseError);
        await expect(impatient(record(2))).rejects.toThrow(/is locked by another process; step 2 of run \d+ was not saved\. It waited 0 s for another process/);
      } finally {
        other.sql.exec('COMMIT');
      }
      expect(listSteps(shortWait, run.id)).toEqual([1]);
    } finally {
      shortWait.close();
    }
  });
});
