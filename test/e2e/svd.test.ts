// The browser suite on a self-verified distillation run (issue 17, acceptance 3): a round waiting
// for review before its SFT (written to the data folder web mode serves), its funnel opened, a
// survivor rejected by keyboard, and the rejection found in the database: the survivor is out
// of the round's SFT set.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, createSvdRound, openDatabase, recordSvdSelection, recordSvdVerdicts, svdTrainingSet, updateRunStatus } from '../../main/db/index.ts';
import { databasePath } from '../../main/runs/home.ts';
import { SCREENSHOTS, type WebMode, closeApp, openApp } from './harness.ts';

let web: WebMode;
let browser: Browser;
let page: Page;
let home: string;
let runId: number;
let ids: number[];
const pageErrors: string[] = [];

const cand = (question: number, idx: number, answer: string, correct: boolean) => ({ question, itemIdx: question, prompt: `Compute ${10 + question}+34. Answer: `, idx, text: answer, answer, tokenIds: [5, 6], correct });
const vote = (accept: boolean, prompt: string) => ({ accept, exchanges: [{ prompt, response: accept ? 'yes' : 'no' }] });

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-e2e-svd-'));
  const db = openDatabase(databasePath(home));
  try {
    const run = createRun(db, { name: 'svd-arith', method: 'svd', model: 'tiny-arith', dataset: 'arith', config: { method: 'svd', model: 'tiny-arith', dataset: 'arith', steps: 2 } });
    runId = run.id;
    ids = createSvdRound(db, runId, 1, ['cycle', 'factuality'], [cand(0, 0, '44', true), cand(0, 1, '54', false), cand(1, 0, '45', true), cand(1, 1, '35', false)]).map((c) => c.id);
    recordSvdVerdicts(db, runId, 1, [
      { candidateId: ids[0], stage: 0, votes: [vote(true, 'Compute ?+34=44. Answer: ')], accepted: true },
      { candidateId: ids[1], stage: 0, votes: [vote(true, 'Compute ?+34=54. Answer: ')], accepted: true },
      { candidateId: ids[2], stage: 0, votes: [vote(true, 'Compute ?+34=45. Answer: ')], accepted: true },
      { candidateId: ids[3], stage: 0, votes: [vote(false, 'Compute ?+34=35. Answer: ')], accepted: false },
    ]);
    recordSvdVerdicts(db, runId, 1, [
      { candidateId: ids[0], stage: 1, votes: [vote(true, 'Is it 44? Compute 10+34. Answer: ')], accepted: true },
      { candidateId: ids[1], stage: 1, votes: [vote(true, 'Is it 54? Compute 10+34. Answer: ')], accepted: true },
      { candidateId: ids[2], stage: 1, votes: [vote(true, 'Is it 45? Compute 11+34. Answer: ')], accepted: true },
    ]);
    recordSvdSelection(db, runId, 1, new Map([[ids[0], 'sft'], [ids[1], 'sft'], [ids[2], 'sft']]), 'review');
    updateRunStatus(db, runId, 'paused');
  } finally {
    db.close();
  }
  ({ web, browser, page } = await openApp({ home, pageErrors }));
});

afterAll(async () => {
  await closeApp({ browser, web });
});

describe('a distillation round waiting for review', () => {
  it('opens the funnel, rejects a survivor by keyboard, and the database keeps it out of the SFT set', async () => {
    await page.goto(`${web.url}#/runs/${runId}`);
    await page.getByTestId('open-funnel').click();
    await expect.poll(() => page.getByTestId('svd-candidate').count()).toBe(4);
    expect(await page.getByTestId('svd-stage-candidates').textContent()).toContain('4');
    expect(await page.getByTestId('svd-stage-0').textContent()).toContain('3');
    expect(await page.getByTestId('svd-sft-count').textContent()).toBe('3');

    // "Survived but wrong": the one survivor whose answer is wrong; its card shows each stage's prompt.
    await page.getByTestId('svd-filter').selectOption('survived-wrong');
    await expect.poll(() => page.getByTestId('svd-candidate').count()).toBe(1);
    const card = page.getByTestId('svd-candidate').first();
    expect(await card.getAttribute('data-candidate-id')).toBe(String(ids[1]));
    expect(await card.textContent()).toContain('Is it 54? Compute 10+34. Answer:');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'svd-funnel.png'), fullPage: true });

    // x rejects the selected survivor.
    await page.keyboard.press('x');
    await expect.poll(() => page.getByTestId('svd-review-badge').first().textContent()).toBe('review: reject');
    await expect.poll(() => page.getByTestId('svd-sft-count').textContent()).toBe('2');

    const db = openDatabase(databasePath(home));
    try {
      expect(svdTrainingSet(db, runId, 1).map((c) => c.id)).toEqual([ids[0], ids[2]]);
      expect(db.sql.prepare('SELECT candidate_id, verdict FROM svd_reviews').all()).toEqual([{ candidate_id: ids[1], verdict: 'reject' }]);
    } finally {
      db.close();
    }
    expect(pageErrors).toEqual([]);
  });

  it('New run offers the cascade’s settings, its stages in the order they are chosen', async () => {
    await page.goto(`${web.url}#/new`);
    await page.getByTestId('method-svd').click();
    const stages = page.getByTestId('input-svdStages');
    await stages.waitFor();
    expect(await page.getByTestId('order-svdStages-cycle').textContent()).toBe('1.');
    // Cleared and chosen again, cycle-consistency moves to the end of the cascade.
    await stages.getByText('cycle').click();
    await stages.getByText('cycle').click();
    await expect.poll(() => page.getByTestId('order-svdStages-cycle').textContent()).toBe('3.');
    expect(await page.getByTestId('order-svdStages-factuality').textContent()).toBe('1.');
    expect(await page.getByTestId('input-svdJudgeVotes').inputValue()).toBe('3');
    expect(pageErrors).toEqual([]);
  });
});
