// The browser suite on a run brought back from a cluster (issue 20, acceptance 1): a folder
// written by the export, with verl's file-logger metrics and rollout dump in it
// (test/fixtures/verl), imported into the data folder web mode serves. The run opens like any
// other (its charts drawn from verl's metrics, the inspector showing its votes), offers no
// Resume, and a label overridden in the inspector lands in the folder's reviewed-labels.json.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportForVerl } from '../../main/cluster/export.ts';
import { importClusterRun } from '../../main/cluster/import.ts';
import { CLUSTER_FILES } from '../../main/cluster/launch.ts';
import { createRun, importDataset, openDatabase } from '../../main/db/index.ts';
import { databasePath } from '../../main/runs/home.ts';
import { ROOT } from '../helpers/cli.ts';
import { SCREENSHOTS, type WebMode, closeApp, openApp } from './harness.ts';

const FIXTURES = path.join(ROOT, 'test/fixtures/verl');
let web: WebMode;
let browser: Browser;
let page: Page;
let folder: string;
let runId: number;
const pageErrors: string[] = [];

beforeAll(async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-e2e-cluster-'));
  folder = path.join(home, 'cluster-run');
  const db = openDatabase(databasePath(home));
  try {
    const ds = importDataset(db, { name: 'arith' }, [
      { prompt: 'What is 2+3?', answer: '5' },
      { prompt: 'What is 4*2?', answer: '8' },
      { prompt: 'What is 10-7?', answer: '3' },
      { prompt: 'What is 6/2?', answer: '3' },
      { prompt: 'What is 9+1?', answer: '10', split: 'eval' },
    ]);
    const local = createRun(db, { name: 'arith-ttrl', method: 'ttrl', model: 'tiny-chars', dataset: 'arith', datasetId: ds.id, config: { method: 'ttrl', model: 'tiny-chars', dataset: 'arith', steps: 3, votes: 4, trainSamples: 4, valSamples: 4, voteTies: 'first' } });
    exportForVerl(db, { run: local }, folder);
    fs.copyFileSync(path.join(FIXTURES, 'metrics.jsonl'), path.join(folder, CLUSTER_FILES.metrics));
    for (const s of [1, 2, 3]) fs.copyFileSync(path.join(FIXTURES, `rollouts/${s}.jsonl`), path.join(folder, CLUSTER_FILES.rollouts, `${s}.jsonl`));
    runId = (await importClusterRun(db, folder, { home })).run.id;
  } finally {
    db.close();
  }
  ({ web, browser, page } = await openApp({ home, pageErrors }));
});

afterAll(async () => {
  await closeApp({ browser, web });
});

describe('a run brought back from verl', () => {
  it('opens with charts from its metrics, no Resume, and a review written to its reviewed-labels file', async () => {
    await page.goto(`${web.url}#/runs/${runId}`);
    await expect.poll(() => page.getByTestId('run-title').textContent()).toContain('arith-ttrl (verl)');
    await page.getByTestId('run-external').waitFor();
    expect(await page.getByTestId('run-resume').count()).toBe(0);
    expect(await page.getByTestId('run-pause').count()).toBe(0);
    // train/entropy (from verl's actor/entropy) at steps 1–3; maj@4 and avg@4 (from val-core) at 0 and 3.
    const points = (id: string) => page.getByTestId(`chart-${id}`).getAttribute('data-points').then(Number);
    await expect.poll(() => points('entropy')).toBe(3);
    await expect.poll(() => points('validation')).toBe(6);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'cluster-run.png'), fullPage: true });

    await page.goto(`${web.url}#/runs/${runId}/inspect?step=1`);
    await expect.poll(() => page.getByTestId('group-row').count()).toBe(2);
    const tied = page.getByTestId('group-row').nth(1);
    await tied.click();
    await expect.poll(() => page.getByTestId('sample-card').count()).toBe(4);
    expect(await page.getByTestId('vote-bar').count()).toBeGreaterThan(0);
    await page.getByTestId('override-input').fill('8');
    await page.getByTestId('override-button').click();
    await page.locator('[data-testid=review-badge][data-verdict=override]').first().waitFor();
    await page.screenshot({ path: path.join(SCREENSHOTS, 'cluster-inspector.png'), fullPage: true });
    const labels = () => (JSON.parse(fs.readFileSync(path.join(folder, CLUSTER_FILES.reviewedLabels), 'utf8')) as { labels: Record<string, string> }).labels;
    await expect.poll(labels).toEqual({ 1: '8' });
    expect(pageErrors).toEqual([]);
  });
});
