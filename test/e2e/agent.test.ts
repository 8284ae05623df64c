// The browser suite on an agent run (issue 18, acceptance 3). The run is real and short: the
// built-in tiny-agent plays one step of household episodes (one task, two episodes, two turns at
// most) through the app's own executeRun, with OPID's analyzer behind an OpenAI-compatible
// endpoint: a loopback stand-in answering every analysis with the same skills, since no model
// small enough for this suite writes an analysis (test/unit/serve-model.test.ts shows what
// tiny-chars answers a real one). So each stored turn carries the policy's real Δ. Then web mode
// serves the data folder: the run's charts, an episode opened with its skill and Δ-shaded tokens,
// a skill edited in the library, the edit found in the database, a second window showing it
// without a reload, and a skill deleted.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../main/db/index.ts';
import { databasePath } from '../../main/runs/home.ts';
import { createRecordedRun, executeRun, parseStoredConfig } from '../../main/runs/start.ts';
import { SCREENSHOTS, type WebMode, closeApp, openApp } from './harness.ts';

const EPISODE_SKILL = 'Open the receptacle before you look inside.';
const STEP_SKILL = 'Go to the nearest cabinet.';

let web: WebMode;
let browser: Browser;
let page: Page;
let home: string;
let runId: number;
let analyst: http.Server;
const pageErrors: string[] = [];

beforeAll(async () => {
  analyst = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const content = JSON.stringify({ episode_skill: EPISODE_SKILL, step_skills: [{ step: 1, skill: STEP_SKILL }] });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content }, finish_reason: 'stop' }] }));
    });
  });
  await new Promise<void>((resolve) => analyst.listen(0, '127.0.0.1', resolve));
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-e2e-agent-'));
  const db = openDatabase(databasePath(home));
  try {
    const { config, target } = parseStoredConfig(
      {
        model: 'tiny-agent',
        dataset: 'household',
        method: 'agent',
        steps: 1,
        promptsPerStep: 1,
        votes: 2,
        // tiny-agent's own prompt form (make-tiny-agent.ts: TINY_AGENT_RUN_SETTINGS).
        agentPromptStyle: 'compact',
        agentHistory: 0,
        maxNewTokens: 96,
        agentMaxSteps: 2,
        agentMiniBatch: 4,
        valEvery: 0,
        opidAnalyzer: 'endpoint',
        opidAnalyzerUrl: `http://127.0.0.1:${(analyst.address() as AddressInfo).port}/v1`,
        opidAnalyzerName: 'analyst',
      },
      'test',
    );
    const { run } = await createRecordedRun(db, home, config, target, 'agent-household');
    runId = run.id;
    expect((await executeRun(db, home, run, false)).run.status).toBe('completed');
  } finally {
    db.close();
  }
  ({ web, browser, page } = await openApp({ home, pageErrors }));
}, 240_000);

afterAll(async () => {
  await closeApp({ browser, web });
  await new Promise((resolve) => analyst?.close(resolve));
});

describe('an agent run', () => {
  it('draws success and episode length, and opens an episode with the skill that guided each turn and its Δ-shaded tokens', async () => {
    await page.goto(`${web.url}#/runs/${runId}`);
    // The method's charts come from the registry: success rate and episode length, a point each.
    for (const chart of ['agent-success', 'agent-length']) {
      await expect.poll(async () => Number((await page.getByTestId(`chart-${chart}`).getAttribute('data-points')) ?? 0)).toBeGreaterThanOrEqual(1);
    }
    await page.getByTestId('open-episodes').click();
    await page.waitForURL(/#\/runs\/\d+\/episodes/);
    await expect.poll(() => page.getByTestId('episode-row').count()).toBe(2);
    await page.getByTestId('episode-row').first().click();
    await page.waitForURL(/episode=\d+/);

    const turns = page.getByTestId('episode-turn');
    await expect.poll(() => turns.count()).toBeGreaterThan(0);
    const first = turns.first();
    expect(await first.getByTestId('turn-observation').textContent()).toMatch(/^Your task is to: /);
    // Turn 1 was taught by its step skill: named, with the reply's tokens shaded by Δ.
    expect(await first.getByTestId('turn-skill').textContent()).toBe(STEP_SKILL);
    expect(await first.getByTestId('turn-skill-kind').textContent()).toBe('guided by the step skill (turn 1)');
    const tokens = first.getByTestId('delta-token');
    expect(await tokens.count()).toBeGreaterThan(1);
    const deltas = (await tokens.evaluateAll((els) => els.map((el) => Number(el.getAttribute('data-delta'))))) as number[];
    expect(deltas.every(Number.isFinite)).toBe(true);
    // The episode's token of the largest |Δ| gets the full shade (the scale is the episode's 90th percentile, at least 0.05 nats), green up or red down by its sign.
    const all = page.getByTestId('delta-token');
    const everyDelta = (await all.evaluateAll((els) => els.map((el) => Number(el.getAttribute('data-delta'))))) as number[];
    const strongest = everyDelta.reduce((best, d, i) => (Math.abs(d) > Math.abs(everyDelta[best]) ? i : best), 0);
    const peak = Math.abs(everyDelta[strongest]);
    const token = all.nth(strongest);
    expect(await token.evaluate((el) => el.ownerDocument.defaultView!.getComputedStyle(el).getPropertyValue('--a').trim())).toBe(peak >= 0.05 ? '1.000' : (peak / 0.05).toFixed(3));
    expect(await token.getAttribute('class')).toContain(everyDelta[strongest] > 0 ? 'up' : 'down');
    expect(await token.evaluate((el) => el.ownerDocument.defaultView!.getComputedStyle(el).backgroundColor)).not.toBe('rgba(0, 0, 0, 0)');
    expect(await page.getByTestId('delta-legend').textContent()).toContain('full shade at |Δ| ≥ ');
    // The episode's own skills, the episode skill first.
    expect(await page.getByTestId('skill-text').allTextContents()).toEqual([EPISODE_SKILL, STEP_SKILL]);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'agent-episode.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('edits a skill in the library: marked as a person’s, stored, and shown in another open window; deletes one', async () => {
    // A second window on the episode the skill came from, to see the edit arrive as an event.
    const other = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    other.on('pageerror', (e) => pageErrors.push(e.message));
    await other.goto(page.url());
    await expect.poll(() => other.getByTestId('skill-text').count()).toBe(2);

    await page.getByTestId('open-skills').click();
    await page.waitForURL(/#\/runs\/\d+\/skills/);
    // Two episodes, two skills each; the search keeps the step skills.
    await expect.poll(() => page.getByTestId('skills-count').textContent()).toBe('4 skills');
    await page.getByTestId('skills-search').fill('NEAREST cabinet');
    await expect.poll(() => page.getByTestId('skill-card').count()).toBe(2);
    await page.waitForURL(/\?q=NEAREST%20cabinet/);
    const otherSample = Number(new URL(other.url()).hash.match(/episode=(\d+)/)![1]);
    const card = page.locator(`[data-testid="skill-card"]:has([data-testid="skill-source"][href$="episode=${otherSample}"])`);
    const skillId = Number(await card.getAttribute('data-skill-id'));
    expect(await card.getByTestId('skill-source').textContent()).toBe(`from episode ${otherSample}`);

    await card.getByTestId('skill-edit').click();
    await card.getByTestId('skill-input').fill('   ');
    await card.getByTestId('skill-save').click();
    await expect.poll(() => card.getByTestId('skill-error').textContent()).toContain('a skill needs some text');
    await card.getByTestId('skill-input').fill('Go to the nearest cabinet, then open it.');
    await card.getByTestId('skill-save').click();
    await expect.poll(() => card.getByTestId('skill-text').textContent()).toBe('Go to the nearest cabinet, then open it.');
    expect(await card.getByTestId('skill-edited').textContent()).toBe('edited by a person');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'agent-skills.png'), fullPage: true });

    const db = openDatabase(databasePath(home));
    try {
      expect(db.sql.prepare('SELECT text, edited_by_person FROM skills WHERE id = ?').get(skillId)).toEqual({ text: 'Go to the nearest cabinet, then open it.', edited_by_person: 1 });
      expect(db.sql.prepare('SELECT count(*) AS n FROM skills WHERE edited_by_person = 1').get()).toEqual({ n: 1 });
    } finally {
      db.close();
    }

    // Still in the search (its words are in the new text), marked as edited.
    expect(await page.getByTestId('skill-card').count()).toBe(2);

    // The other window's episode view reloads on the event: the new text, at the turn it guided too.
    await expect.poll(() => other.getByTestId('turn-skill').first().textContent()).toBe('Go to the nearest cabinet, then open it.');
    expect(await other.getByTestId('skill-edited').count()).toBe(1);

    // Deleting the other step skill asks once more, then it is gone from the library and the database.
    const rest = page.locator(`[data-testid="skill-card"]:not([data-skill-id="${skillId}"])`);
    const restId = Number(await rest.getAttribute('data-skill-id'));
    await rest.getByTestId('skill-delete').click();
    await rest.getByTestId('skill-delete-confirm').click();
    await expect.poll(() => page.getByTestId('skill-card').count()).toBe(1);
    const db2 = openDatabase(databasePath(home));
    try {
      expect(db2.sql.prepare('SELECT count(*) AS n FROM skills WHERE id = ?').get(restId)).toEqual({ n: 0 });
    } finally {
      db2.close();
    }
    await other.close();
    expect(pageErrors).toEqual([]);
  });
});
