// The browser suite on a code run (issue 19, acceptance 4): a recorded step of code-consensus
// whose group holds its execution matrix and each function's hidden-test outcome (written to the
// data folder web mode serves); the inspector opens the step, the group's task view shows the
// matrix with the top consensus set marked, the hidden results beside the solutions, the
// solutions and tests highlighted side by side, and a self-debugging turn.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, openDatabase, recordStep, updateRunStatus } from '../../main/db/index.ts';
import { databasePath } from '../../main/runs/home.ts';
import { SCREENSHOTS, type WebMode, closeApp, openApp } from './harness.ts';

let web: WebMode;
let browser: Browser;
let page: Page;
let home: string;
let runId: number;
const pageErrors: string[] = [];

const right = 'def double(x):\n    return 2 * x\n';
const wrong = 'def double(x):\n    return x + 2\n';
// Responses 0 and 1 agree (pass all three tests), 2 passes only the test both functions satisfy, 3 wrote no code.
const execution = {
  language: 'python' as const,
  solutions: [right, right, wrong, null],
  tests: ['assert double(2) == 4', 'assert double(0) == 0', 'assert double(3) == 6'],
  authors: [[0, 2], [0], [1]],
  matrix: [
    ['pass', 'pass', 'pass'],
    ['pass', 'pass', 'pass'],
    ['pass', 'fail', 'timeout'],
    ['error', 'error', 'error'],
  ] as ('pass' | 'fail' | 'error' | 'timeout')[][],
  sets: [
    { solutions: [0, 1], tests: [0, 1, 2], score: 6 },
    { solutions: [2], tests: [0], score: 1 },
    { solutions: [3], tests: [], score: 0 },
  ],
  top: 0,
  testRewards: [0.5, 1, 1],
  // Response 2's second turn: it read its failing tests and fixed its function.
  revisions: [
    {
      sample: 2,
      feedback: 'Your function fails these tests:\nassert double(0) == 0  # AssertionError\nWrite the corrected function in a code block.',
      text: `\`\`\`python\n${right}\`\`\``,
      solution: right,
      row: ['pass', 'pass', 'pass'] as ('pass' | 'fail' | 'error' | 'timeout')[],
      reward: 0.6,
      advantage: 0.5,
      hiddenResult: 'pass',
    },
  ],
};
const response = (code: string | null, tests: string[]) => `${code === null ? 'I do not know.' : `\`\`\`python\n${code}\`\`\`\n`}${tests.length ? `\`\`\`python\n${tests.join('\n')}\n\`\`\`` : ''}`;

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-e2e-code-'));
  const db = openDatabase(databasePath(home));
  try {
    runId = createRun(db, { name: 'code-consensus', method: 'code-consensus', model: 'tiny-chars', dataset: 'code-functions', config: { method: 'code-consensus', steps: 1 } }).id;
    recordStep(db, runId, 1, {
      metrics: { 'code/hidden_pass_rate': 0.5, 'code/consensus_size': 2 },
      rollouts: [
        {
          itemIdx: 0,
          prompt: 'Write a Python function double(x) that returns twice x, and assert tests for it.',
          labeled: true,
          execution,
          samples: [
            { text: response(right, [execution.tests[0], execution.tests[1]]), reward: 0.875, advantage: 0.6, usedForTraining: true, hiddenResult: 'pass' },
            { text: response(right, [execution.tests[2]]), reward: 1, advantage: 0.8, usedForTraining: true, hiddenResult: 'pass' },
            { text: response(wrong, [execution.tests[0]]), reward: 0.33, advantage: -0.3, usedForTraining: true, hiddenResult: 'fail' },
            { text: response(null, []), reward: 0, advantage: -1.1, usedForTraining: true, hiddenResult: 'error' },
          ],
        },
      ],
    });
    updateRunStatus(db, runId, 'completed');
  } finally {
    db.close();
  }
  ({ web, browser, page } = await openApp({ home, pageErrors }));
});

afterAll(async () => {
  await closeApp({ browser, web });
});

describe('a code run’s step', () => {
  it('opens the task from the inspector and shows the execution matrix with the consensus sets and hidden results', async () => {
    await page.goto(`${web.url}#/runs/${runId}/inspect?step=1`);
    await page.getByTestId('open-task').click();
    await expect.poll(() => page.getByTestId('matrix-row').count()).toBe(4);

    // Rows by set, the top set first and marked; every cell as recorded.
    const rows = page.getByTestId('matrix-row');
    expect(await rows.evaluateAll((els) => els.map((e) => [e.getAttribute('data-sample'), e.getAttribute('data-top')]))).toEqual([
      ['0', 'true'],
      ['1', 'true'],
      ['2', 'false'],
      ['3', 'false'],
    ]);
    const cells = await rows.evaluateAll((els) => els.map((e) => Array.from(e.querySelectorAll('[data-testid="matrix-cell"]'), (c) => c.getAttribute('data-outcome'))));
    expect(cells).toEqual(execution.matrix);
    expect(await page.getByTestId('consensus-set').allTextContents()).toEqual(['★ top', '★ top', 'set 2', 'set 3']);
    expect(await page.getByTestId('matrix-test').count()).toBe(3);
    expect(await page.getByTestId('consensus-summary').textContent()).toContain('2 solutions passing 3 tests (score 6)');

    // The hidden tests' outcome beside each solution (measured, never rewarded).
    expect(await page.getByTestId('hidden-result').evaluateAll((els) => els.map((e) => e.getAttribute('data-outcome')))).toEqual(['pass', 'pass', 'fail', 'error']);

    // Solutions and tests side by side, highlighted (highlight.js marks the keyword).
    expect(await page.getByTestId('solution-card').count()).toBe(4);
    expect(await page.getByTestId('test-card').count()).toBe(3);
    expect(await page.getByTestId('solution-card').first().locator('.hljs-keyword').first().textContent()).toBe('def');
    expect(await page.getByTestId('test-card').first().textContent()).toContain('assert double(2) == 4');

    // The self-debugging turn: what the response read, and its revised function against the tests.
    expect(await page.getByTestId('debug-turn').count()).toBe(1);
    expect(await page.getByTestId('debug-turn').getAttribute('data-sample')).toBe('2');
    expect(await page.getByTestId('debug-feedback').textContent()).toContain('assert double(0) == 0  # AssertionError');
    expect(await page.getByTestId('debug-cell').evaluateAll((els) => els.map((e) => e.getAttribute('data-outcome')))).toEqual(['pass', 'pass', 'pass']);
    expect(await page.getByTestId('debug-hidden').textContent()).toBe('hidden: pass');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'code-task.png'), fullPage: true });

    // Back to the step's trajectories.
    await page.getByTestId('task-back').click();
    await expect.poll(() => page.url()).toContain(`#/runs/${runId}/inspect?step=1`);
    expect(pageErrors).toEqual([]);
  });
});
