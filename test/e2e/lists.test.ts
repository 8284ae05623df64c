// The browser suite for lists, layout and forms (issue 15, points 9, 11 and 12), at 1024×768:
// the runs list's date, duration, sorting, filters and tags; a long run name without spaces and
// a long prompt cut with an ellipsis (the whole text in a title) instead of pushing statuses,
// actions and buttons out of the window; the Inspector's Clear button inside its panel; the New
// run form's checks across settings shown at their field before Launch; a launch keeping the
// chosen dataset; and Settings never saying "All changes saved" while a value on screen is invalid.
// Runs are recorded straight into a fresh data folder before web mode starts (nothing trains).
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import Database from 'better-sqlite3';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, importDataset, openDatabase, recordStep, tagRun, updateRunStatus } from '../../main/db/index.ts';
import { databasePath } from '../../main/runs/home.ts';
import { SCREENSHOTS, type WebMode, closeApp, openApp } from './harness.ts';

const WIDTH = 1024;
const HEIGHT = 768;
const LONG_NAME = `zz-${'a'.repeat(120)}-${'b'.repeat(100)}`;
const LONG_PROMPT = `What is ${'1+'.repeat(1500)}1?`;

let web: WebMode;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
let home: string;

function seed(): void {
  const db = openDatabase(databasePath(home));
  try {
    const items = (n: number) => Array.from({ length: n }, (_, i) => ({ prompt: `What is ${i}+${i}?`, answer: String(2 * i), split: 'train' as const }));
    const small = importDataset(db, { name: 'arith-small', source: 'test' }, items(8));
    importDataset(db, { name: 'arith-other', source: 'test' }, items(6));
    const long = importDataset(db, { name: 'long-prompts', source: 'test' }, [{ prompt: LONG_PROMPT, answer: '1501' }, ...items(3)]);
    const at = (id: number, created: string, started: string | null, finished: string | null) =>
      db.sql.prepare('UPDATE runs SET created_at = ?, started_at = ?, finished_at = ? WHERE id = ?').run(created, started, finished, id);

    // 1: a completed TTRL run with a long name without spaces, tagged, with one recorded step.
    const first = createRun(db, { name: LONG_NAME, method: 'ttrl', model: 'tiny-chars', dataset: 'arith-small', datasetId: small.id, config: { steps: 1 } });
    recordStep(db, first.id, 1, {
      metrics: { 'train/reward': 0.5 },
      rollouts: [
        {
          itemIdx: 0,
          prompt: LONG_PROMPT,
          pseudoLabel: '5',
          voteCounts: { '5': 3, '6': 1 },
          majorityRatio: 0.75,
          labeled: true,
          // Trained toward a person's reviewed label, which three samples gave.
          labelSource: 'review',
          samples: [0, 1, 2, 3].map((i) => ({ text: `the answer is ${i === 3 ? 6 : 5}`, extractedAnswer: i === 3 ? '6' : '5', reward: i === 3 ? 0 : 1, advantage: 0, usedForTraining: true })),
        },
      ],
    });
    updateRunStatus(db, first.id, 'completed');
    at(first.id, '2026-11-01T10:00:00.000Z', '2026-11-01T10:00:00.000Z', '2026-11-01T10:02:05.000Z');
    tagRun(db, first.id, { add: ['baseline'] });

    // 2: an SRT run, paused after a 30-second step.
    const second = createRun(db, { name: 'srt-sweep-1', method: 'srt', model: 'tiny-chars', dataset: 'arith-small', datasetId: small.id, config: { steps: 4 } });
    recordStep(db, second.id, 1, { metrics: { 'train/reward': 0.25 } });
    updateRunStatus(db, second.id, 'paused');
    at(second.id, '2026-11-02T10:00:00.000Z', '2026-11-02T10:00:00.000Z', null);
    db.sql.prepare('UPDATE steps SET created_at = ? WHERE run_id = ?').run('2026-11-02T10:00:30.000Z', second.id);
    tagRun(db, second.id, { add: ['sweep'] });

    // Run 2's alerts: a collapse at five steps and a weak signal once (one banner a kind).
    const alert = db.sql.prepare('INSERT INTO alerts (run_id, step, kind, message) VALUES (?, ?, ?, ?)');
    for (const step of [1, 2, 3, 4, 5]) alert.run(second.id, step, 'collapse', `majority ratio near 1 at step ${step}`);
    alert.run(second.id, 1, 'weak_signal', 'weak learning signal at step 1');

    // 3: a failed run on the long prompts, with a long error.
    const third = createRun(db, { name: 'failed-run', method: 'ttrl', model: 'tiny-chars', dataset: 'long-prompts', datasetId: long.id, config: { steps: 2 } });
    updateRunStatus(db, third.id, 'failed', `The prompt of item 0 is ${'very '.repeat(60)}long.`);
    at(third.id, '2026-11-03T10:00:00.000Z', '2026-11-03T10:00:00.000Z', '2026-11-03T10:00:07.000Z');
  } finally {
    db.close();
  }
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: false });
}

/** The element's box lies inside the window, and it is drawn (not clipped away by a scrolling parent). */
async function expectInWindow(locator: Locator, what: string): Promise<void> {
  const box = await locator.boundingBox();
  expect(box, what).not.toBeNull();
  expect(box!.x, what).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width, `${what}: right edge ${box!.x + box!.width} px`).toBeLessThanOrEqual(WIDTH);
  expect(box!.y + box!.height, what).toBeLessThanOrEqual(HEIGHT);
  // The point at its centre is the element itself (or inside it): nothing clips or covers it.
  const hit = await locator.evaluate((el) => {
    const r = el.getBoundingClientRect();
    const at = el.ownerDocument.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return !!at && (el === at || el.contains(at));
  });
  expect(hit, `${what} is covered or clipped`).toBe(true);
}

/** Cut with an ellipsis, its whole text in its title. */
async function expectCut(locator: Locator, full: string | null): Promise<void> {
  const m = await locator.evaluate((el) => ({ overflow: el.ownerDocument.defaultView!.getComputedStyle(el).textOverflow, cut: el.scrollWidth > el.clientWidth, title: el.getAttribute('title') }));
  expect(m).toEqual({ overflow: 'ellipsis', cut: true, title: full });
}

const rowIds = async () => page.getByTestId('run-row').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-id'))));

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-e2e-lists-'));
  seed();
  ({ web, browser, page } = await openApp({ home, pageErrors, viewport: { width: WIDTH, height: HEIGHT } }));
}, 120_000);

afterAll(async () => {
  await closeApp({ browser, web });
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

describe('the runs list at 1024×768 (issue 15.9, 15.11)', () => {
  it('keeps every row’s status and actions and the header’s buttons in the window, cutting a long name', async () => {
    await page.goto(`${web.url}#/runs`);
    await expect.poll(() => page.getByTestId('run-row').count()).toBe(3);
    await shot('lists-01-runs-1024');
    await expectInWindow(page.getByTestId('new-run-link'), 'the New run button');
    await expectInWindow(page.getByTestId('compare-button'), 'the Compare button');
    for (const id of [1, 2, 3]) {
      const row = page.locator(`[data-testid=run-row][data-id="${id}"]`);
      await expectInWindow(row.getByTestId('run-status'), `run ${id}'s status`);
      const actions = row.locator('td.actions button');
      for (let i = 0; i < (await actions.count()); i++) await expectInWindow(actions.nth(i), `run ${id}'s action ${await actions.nth(i).textContent()}`);
    }
    expect(await page.locator('[data-testid=run-row][data-id="2"]').getByTestId('run-resume').count()).toBe(1);
    // A paused run is not in the engine: it can be deleted (a saved, never-started one too).
    expect(await page.locator('[data-testid=run-row][data-id="2"]').getByTestId('run-delete').count()).toBe(1);
    await expectCut(page.locator('[data-testid=run-row][data-id="1"]').getByTestId('run-link'), `#1 ${LONG_NAME}`);
    // The table itself never scrolls sideways.
    const wrap = await page.getByTestId('runs-table').evaluate((t) => ({ table: t.scrollWidth, box: t.parentElement!.clientWidth }));
    expect(wrap.table).toBeLessThanOrEqual(wrap.box);
  });

  it('asks before resuming a run with no checkpoint, which a resume trains again from step 0', async () => {
    // Run 2 is paused after step 1 with no checkpoint (recorded so above).
    const row = page.locator('[data-testid=run-row][data-id="2"]');
    const resume = row.getByTestId('run-resume');
    expect(await resume.getAttribute('title')).toBe('No checkpoint yet: a resume trains run #2 again from step 0, replacing its step 1');
    await resume.click();
    expect(await resume.textContent()).toBe('Restart');
    await expectInWindow(resume, 'the restart confirmation');
    await expectInWindow(row.getByTestId('run-resume-cancel'), 'its cancel button');
    await shot('lists-01b-restart-confirm');
    await row.getByTestId('run-resume-cancel').click();
    expect(await resume.textContent()).toBe('Resume');
    expect(await row.getByTestId('run-status').textContent()).toMatch(/paused/);
    // The run's own view says which steps go.
    await page.goto(`${web.url}#/runs/2`);
    await page.getByTestId('run-resume').click();
    expect(await page.getByTestId('run-resume').textContent()).toBe('Restart from step 0 (replaces step 1)');
    await expectInWindow(page.getByTestId('run-resume'), 'the run view’s restart confirmation');
    await page.getByTestId('run-resume-cancel').click();
    expect(await page.getByTestId('run-resume').textContent()).toBe('Resume');
    // Its alerts: one banner a kind, the newest in front, the earlier ones folded under it.
    const banners = page.getByTestId('run-alert');
    await expect.poll(() => banners.count()).toBe(2);
    expect(await banners.evaluateAll((els) => els.map((e) => [e.getAttribute('data-kind'), e.getAttribute('data-count')]))).toEqual([
      ['weak_signal', '1'],
      ['collapse', '5'],
    ]);
    const collapse = page.locator('[data-testid=run-alert][data-kind=collapse]');
    expect(await collapse.locator('.alert-line').textContent()).toMatch(/Collapse\s*step 5\s*majority ratio near 1 at step 5/);
    expect(await collapse.getByTestId('run-alert-earlier').locator('summary').textContent()).toBe('4 earlier, at steps 1, 2, 3, 4');
    // A run that is not there is the page's message, once, with no toast for each thing it would have read.
    await page.goto(`${web.url}#/runs/998`);
    await expect.poll(() => page.locator('.empty').textContent()).toMatch(/Run #998 was not found/);
    await page.goto(`${web.url}#/runs/998/inspect`);
    await expect.poll(() => page.getByTestId('inspector-missing').textContent()).toMatch(/Run #998 was not found/);
    await page.goto(`${web.url}#/compare?ids=999,2`);
    await expect.poll(() => page.getByTestId('compare-missing').textContent()).toBe('(not found: #999)');
    expect(await page.locator('h1').textContent()).toBe('Compare 1 run');
    await page.waitForTimeout(300);
    expect(await page.getByTestId('toast').count()).toBe(0);
    await page.goto(`${web.url}#/runs`);
    await expect.poll(() => page.getByTestId('run-row').count()).toBe(3);
  });

  it('shows each run’s date and duration: to its finish, or to its last step while paused', async () => {
    const row = (id: number) => page.locator(`[data-testid=run-row][data-id="${id}"]`);
    expect(await row(1).getByTestId('run-duration').textContent()).toMatch(/^\s*2m 05s\s*$/);
    expect(await row(2).getByTestId('run-duration').textContent()).toMatch(/^\s*30s\s*$/);
    expect(await row(3).getByTestId('run-duration').textContent()).toMatch(/^\s*7s\s*$/);
    expect(await row(1).getByTestId('run-created').textContent()).toMatch(/2026/);
    expect(await row(1).getByTestId('run-created').getAttribute('title')).toBe('2026-11-01T10:00:00.000Z');
  });

  it('sorts by a column’s header, and the other way round on a second click', async () => {
    expect(await rowIds()).toEqual([3, 2, 1]);
    await page.getByTestId('sort-name').click();
    expect(await rowIds()).toEqual([3, 2, 1]);
    await page.getByTestId('sort-name').click();
    expect(await rowIds()).toEqual([1, 2, 3]);
    await page.getByTestId('sort-duration').click();
    expect(await rowIds()).toEqual([1, 2, 3]);
    await page.getByTestId('sort-duration').click();
    expect(await rowIds()).toEqual([3, 2, 1]);
    await page.getByTestId('sort-created').click();
    expect(await rowIds()).toEqual([3, 2, 1]);
  });

  it('filters by status, method, model, dataset, tag and name, and clears them', async () => {
    await page.getByTestId('runs-filter-status').selectOption('paused');
    expect(await rowIds()).toEqual([2]);
    expect(await page.getByTestId('runs-count').textContent()).toBe('1 of 3 runs');
    await page.getByTestId('runs-filter-clear').click();
    await page.getByTestId('runs-filter-method').selectOption('srt');
    expect(await rowIds()).toEqual([2]);
    await page.getByTestId('runs-filter-method').selectOption('');
    await page.getByTestId('runs-filter-dataset').selectOption('long-prompts');
    expect(await rowIds()).toEqual([3]);
    await page.getByTestId('runs-filter-dataset').selectOption('');
    await page.getByTestId('runs-filter-model').selectOption('tiny-chars');
    expect(await rowIds()).toEqual([3, 2, 1]);
    await page.getByTestId('runs-filter-tag').selectOption('sweep');
    expect(await rowIds()).toEqual([2]);
    await page.getByTestId('runs-filter-clear').click();
    await page.getByTestId('runs-filter-text').fill('FAILED');
    expect(await rowIds()).toEqual([3]);
    await page.getByTestId('runs-filter-clear').click();
    expect(await rowIds()).toEqual([3, 2, 1]);
  });

  it('tags a run and removes the tag; a tag filters the list when clicked', async () => {
    const row = page.locator('[data-testid=run-row][data-id="3"]');
    await row.getByTestId('run-tag-add').click();
    await row.getByTestId('run-tag-input').fill('needs-a-look');
    await row.getByTestId('run-tag-input').press('Enter');
    await row.locator('[data-testid=run-tag][data-tag="needs-a-look"]').waitFor();
    const tags = () => {
      const db = new Database(path.join(home, 'autodidact.db'), { readonly: true, fileMustExist: true });
      try {
        return db.prepare('SELECT run_id, tag FROM run_tags ORDER BY run_id, tag').all();
      } finally {
        db.close();
      }
    };
    expect(tags()).toEqual([
      { run_id: 1, tag: 'baseline' },
      { run_id: 2, tag: 'sweep' },
      { run_id: 3, tag: 'needs-a-look' },
    ]);
    await shot('lists-02-runs-tagged');
    await row.locator('[data-testid=run-tag][data-tag="needs-a-look"]').getByTestId('run-tag-remove').click();
    await expect.poll(() => row.getByTestId('run-tag').count()).toBe(0);
    expect(tags()).toHaveLength(2);
    await page.locator('[data-testid=run-row][data-id="1"] [data-testid=run-tag][data-tag="baseline"] button').first().click();
    expect(await rowIds()).toEqual([1]);
    expect(await page.getByTestId('runs-filter-tag').inputValue()).toBe('baseline');
    await page.getByTestId('runs-filter-clear').click();
  });
});

describe('long names and prompts elsewhere (issue 15.11)', () => {
  it('the run view cuts a long name and keeps its buttons in the window', async () => {
    await page.locator('[data-testid=run-row][data-id="1"]').getByTestId('run-link').click();
    await page.getByTestId('run-title').waitFor();
    await expectCut(page.getByTestId('run-title'), `#1 ${LONG_NAME}`);
    await expectInWindow(page.getByTestId('open-inspector'), 'the Inspect button');
    await shot('lists-03-run-detail-1024');
  });

  it('the comparison cuts a long name and keeps the page within the window', async () => {
    await page.goto(`${web.url}#/runs`);
    await page.locator('[data-testid=run-row][data-id="1"]').getByTestId('run-select').check();
    await page.locator('[data-testid=run-row][data-id="2"]').getByTestId('run-select').check();
    await page.getByTestId('compare-button').click();
    await page.getByTestId('compare-table').waitFor();
    await shot('lists-03b-compare-1024');
    await expectCut(page.getByTestId('compare-table').locator('td.name').first(), null);
    for (const remove of await page.getByTestId('compare-remove').all()) await expectInWindow(remove, 'a Remove button');
    for (const clone of await page.getByTestId('compare-clone').all()) await expectInWindow(clone, 'a Clone button');
    await page.locator('[data-testid=compare-table] a', { hasText: LONG_NAME.slice(0, 20) }).first().click();
    await page.getByTestId('run-title').waitFor();
  });

  it('the inspector keeps the Clear button in its panel, and a long prompt in its box', async () => {
    await page.getByTestId('open-inspector').click();
    await page.getByTestId('group-row').first().click();
    await page.getByTestId('sample-card').first().waitFor();
    await expectInWindow(page.getByTestId('clear-review'), 'the Clear button');
    await expectInWindow(page.getByTestId('override-button'), 'the Override button');
    // The group took a person's label: its bar says so, and the row marks it beside the vote's majority.
    expect(await page.getByTestId('label-mark').textContent()).toBe("person's label");
    expect(await page.getByTestId('group-row').first().locator('.label').textContent()).toBe('✎ 5');
    // The group list shows a prompt's start on one line, the whole prompt in its title.
    await expectCut(page.getByTestId('group-row').first().locator('.g-prompt'), LONG_PROMPT);
    const prompt = await page.getByTestId('group-prompt').evaluate((el) => ({ width: el.scrollWidth <= el.clientWidth, height: el.clientHeight }));
    expect(prompt.width).toBe(true);
    expect(prompt.height).toBeLessThanOrEqual(240);
    await shot('lists-04-inspector-1024');
  });

  it('the dataset tables cut a long prompt after three lines, the whole prompt in its title', async () => {
    await page.getByTestId('nav-datasets').click();
    await page.locator('[data-testid=dataset-row][data-name="long-prompts"]').click();
    const long = page.locator('[data-testid=item-prompt]', { hasText: 'What is 1+1+' });
    await long.waitFor();
    const m = await long.evaluate((el) => ({ clipped: el.scrollHeight > el.clientHeight, lines: Math.round(el.clientHeight / parseFloat(el.ownerDocument.defaultView!.getComputedStyle(el).lineHeight)), title: el.getAttribute('title') }));
    expect(m).toEqual({ clipped: true, lines: 3, title: LONG_PROMPT });
    await shot('lists-05-datasets-long-prompt');
  });
});

describe('forms (issue 15.12)', () => {
  async function setSetting(name: string, value: string): Promise<void> {
    const input = page.getByTestId(`input-${name}`);
    await input.fill(value);
    await input.dispatchEvent('change');
  }

  it('shows a check across settings at its field before Launch, worded for a person, and holds Launch until it is fixed', async () => {
    await page.getByTestId('nav-new').click();
    await page.getByTestId('launch-button').waitFor();
    await expect.poll(() => page.getByTestId('launch-button').isEnabled(), { timeout: 10_000 }).toBe(true);
    await setSetting('votes', '4');
    await setSetting('trainSamples', '8');
    await expect.poll(() => page.getByTestId('setting-problem-trainSamples').textContent()).toBe('trainSamples (8) cannot exceed votes (4)');
    expect(await page.getByTestId('launch-button').isDisabled()).toBe(true);
    expect(await page.getByTestId('launch-problems').textContent()).toMatch(/trainSamples \(8\) cannot exceed votes \(4\)/);
    await setSetting('steps', '0');
    await expect.poll(() => page.getByTestId('setting-problem-steps').textContent()).toBe('steps must be at least 1');
    await shot('lists-06-new-run-problems');
    // A fraction for a whole number is the app's check's to word; an empty box holds Launch too.
    await setSetting('steps', '2.5');
    await expect.poll(() => page.getByTestId('setting-problem-steps').textContent()).toBe('steps must be a whole number');
    await setSetting('steps', '');
    await page.getByTestId('setting-unreadable-steps').waitFor();
    expect(await page.getByTestId('launch-problems').textContent()).toMatch(/steps needs a number/);
    expect(await page.getByTestId('launch-button').isDisabled()).toBe(true);
    await setSetting('steps', '3');
    expect(await page.getByTestId('setting-unreadable-steps').count()).toBe(0);
    await setSetting('trainSamples', '4');
    await expect.poll(() => page.getByTestId('launch-button').isEnabled(), { timeout: 10_000 }).toBe(true);
    expect(await page.getByTestId('setting-problem-trainSamples').count()).toBe(0);
    expect(await page.getByTestId('toast').count()).toBe(0);
  });

  it('keeps the chosen dataset after a launch', async () => {
    await page.getByTestId('run-dataset').selectOption('arith-other');
    await page.getByTestId('save-run-button').click();
    await page.waitForURL(/#\/runs\/\d+$/);
    await page.getByTestId('nav-new').click();
    await page.getByTestId('launch-button').waitFor();
    await expect.poll(() => page.getByTestId('run-dataset').inputValue()).toBe('arith-other');
  });

  it('takes the click that commits a just-typed number: one click saves the run with it, or shows why not', async () => {
    await page.getByTestId('nav-new').click();
    await expect.poll(() => page.getByTestId('launch-button').isEnabled(), { timeout: 10_000 }).toBe(true);
    // Typed, not committed: the box commits when the click on the button takes the focus away.
    await page.getByTestId('input-trainSamples').fill('99');
    await page.getByTestId('save-run-button').click();
    await expect.poll(() => page.getByTestId('setting-problem-trainSamples').textContent()).toMatch(/^trainSamples \(99\) cannot exceed votes/);
    expect(page.url()).toMatch(/#\/new/);
    await page.getByTestId('input-trainSamples').fill('2');
    await page.getByTestId('input-steps').fill('7');
    const scrolled = () => page.locator('main.content').evaluate((e) => e.scrollTop);
    await page.getByTestId('save-run-button').scrollIntoViewIfNeeded();
    expect(await scrolled()).toBeGreaterThan(0);
    await page.getByTestId('save-run-button').click();
    await page.waitForURL(/#\/runs\/\d+$/, { timeout: 10_000 });
    // The run's view opens at its top, not at the form's scroll position.
    await page.getByTestId('run-title').waitFor();
    expect(await scrolled()).toBe(0);
    const id = Number(/#\/runs\/(\d+)$/.exec(page.url())![1]);
    const db = openDatabase(databasePath(home));
    try {
      const saved = db.sql.prepare('SELECT config FROM runs WHERE id = ?').get(id) as { config: string };
      expect(JSON.parse(saved.config)).toMatchObject({ steps: 7, trainSamples: 2 });
    } finally {
      db.close();
    }
  });

  it('Settings does not say “All changes saved” while an invalid value is on screen', async () => {
    await page.getByTestId('nav-settings').click();
    await page.getByTestId('settings-saved').waitFor();
    for (const bad of ['0', '1.5', '2000']) {
      await page.getByTestId('settings-threads').fill(bad);
      await page.getByTestId('settings-unsaved').waitFor();
      expect(await page.getByTestId('settings-saved').count(), bad).toBe(0);
      expect(await page.getByTestId('settings-save').isDisabled()).toBe(true);
    }
    await shot('lists-07-settings-invalid');
    await page.getByTestId('settings-revert').click();
    await page.getByTestId('settings-saved').waitFor();
    expect(await page.getByTestId('settings-unsaved').count()).toBe(0);
    expect(pageErrors).toEqual([]);
  });
});
