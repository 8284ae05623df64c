// The browser suite on run analysis (issue 15.7 and 15.8), over a data folder holding three
// recorded 40-step runs (written through main/db, no training, so the charts have a long,
// noisy history): smoothing, the wall-time and tokens axes, zoom and pan, log scale, a chart's
// PNG and CSV, a run's export (metrics CSV, samples JSONL, completions Parquet read back),
// comparing several metrics with the configuration diff, removing a run from the comparison,
// and cloning a run into New run. docs/screenshots/charts.png and compare.png come from here.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import type { Browser, Download, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, importDataset, openDatabase, recordStep, updateRunStatus } from '../../main/db/index.ts';
import { parseRunConfig } from '../../main/engine/rl/config.ts';
import { RUN_METRICS } from '../../main/engine/rl/metrics.ts';
import { databasePath } from '../../main/runs/home.ts';
import { ROOT } from '../helpers/cli.ts';
import { SCREENSHOTS, type WebMode, closeApp, openApp } from './harness.ts';

const STEPS = 40;
/** Seconds between two recorded steps, and the tokens of each. */
const STEP_SECONDS = 12;
const STEP_TOKENS = 2_000;
/** Every per-step metric a run view charts (validation aside), so every chart has a history. */
const CHARTED = RUN_METRICS.filter((m) => m.chart !== null && !m.key.startsWith('val/'));
const RUNS = [
  { name: 'baseline', lr: 1e-6, votes: 16, drift: 0.008 },
  { name: 'higher-lr', lr: 5e-6, votes: 32, drift: 0.012 },
  { name: 'no-kl', lr: 1e-6, votes: 16, drift: 0.004, klCoef: 0 },
];

let web: WebMode;
let browser: Browser;
let page: Page;
let home: string;
const pageErrors: string[] = [];

/** A deterministic noisy curve: a drift toward 1 with a few percent of noise. */
function noisy(seed: number, step: number, drift: number): number {
  const x = Math.sin(seed * 97.13 + step * 12.9898) * 43758.5453;
  const noise = (x - Math.floor(x) - 0.5) * 0.25;
  return Math.min(1, Math.max(0, 0.3 + (1 - Math.exp(-drift * step * 4)) * 0.5 + noise));
}

function seed(dir: string): void {
  const db = openDatabase(databasePath(dir));
  try {
    const ds = importDataset(db, { name: 'sums' }, Array.from({ length: 8 }, (_, i) => ({ prompt: `What is ${i} + ${i}?`, answer: String(2 * i) })));
    RUNS.forEach((spec, r) => {
      const config = parseRunConfig({ method: 'ttrl', steps: STEPS, lr: spec.lr, votes: spec.votes, ...(spec.klCoef !== undefined && { klCoef: spec.klCoef }) });
      const model = path.join(ROOT, 'resources/models/tiny-chars');
      const run = createRun(db, { name: spec.name, method: 'ttrl', model, dataset: 'sums', datasetId: ds.id, config: { ...config, model, dataset: 'sums', device: 'cpu' } });
      updateRunStatus(db, run.id, 'running');
      for (let step = 0; step <= STEPS; step++) {
        const metrics: Record<string, number> =
          step === 0
            ? { 'val/maj@16': 0.3 }
            : {
                ...Object.fromEntries(CHARTED.map((m, i) => [m.key, (m.unit || m.chart === 'reward' || m.chart === 'correlation' ? 1 : 2 + i) * noisy(r + 10 * i, step, spec.drift * (1 + (i % 3) / 2))])),
                'train/entropy': 2 * (1 - noisy(r + 40, step, spec.drift)),
                'actor/lr': spec.lr,
                ...(step % 10 === 0 && { 'val/maj@16': noisy(r + 50, step, spec.drift) }),
              };
        recordStep(db, run.id, step, {
          metrics,
          ...(step > 0 && {
            tokens: STEP_TOKENS,
            rollouts: [
              {
                itemIdx: step % 8,
                prompt: `What is ${step % 8} + ${step % 8}?`,
                pseudoLabel: String(2 * (step % 8)),
                samples: [
                  { text: `The answer is ${2 * (step % 8)}`, extractedAnswer: String(2 * (step % 8)), reward: 1, advantage: 0.5, usedForTraining: true },
                  { text: 'I do not know', extractedAnswer: null, reward: 0, advantage: -0.5, usedForTraining: true },
                ],
              },
            ],
          }),
        });
      }
      updateRunStatus(db, run.id, 'completed');
      // Steps recorded STEP_SECONDS apart from the run's start, as a real run's would be.
      const start = Date.parse('2026-03-01T09:00:00.000Z') + r * 3_600_000;
      db.sql.prepare('UPDATE runs SET started_at = ?, created_at = ? WHERE id = ?').run(new Date(start).toISOString(), new Date(start).toISOString(), run.id);
      const stamp = db.sql.prepare('UPDATE steps SET created_at = ? WHERE run_id = ? AND step = ?');
      for (let step = 0; step <= STEPS; step++) stamp.run(new Date(start + (step + 1) * STEP_SECONDS * 1000).toISOString(), run.id, step);
    });
  } finally {
    db.close();
  }
}

async function shot(file: string, target?: { locator: string }): Promise<void> {
  if (target) await page.locator(target.locator).screenshot({ path: path.join(SCREENSHOTS, file) });
  else await page.screenshot({ path: path.join(SCREENSHOTS, file), fullPage: true });
}

/** Clicks `button` and returns the file the page downloads. */
async function download(click: () => Promise<void>): Promise<{ name: string; bytes: Buffer }> {
  const [d] = await Promise.all([page.waitForEvent('download') as Promise<Download>, click()]);
  const file = path.join(home, 'downloads', d.suggestedFilename());
  await d.saveAs(file);
  return { name: d.suggestedFilename(), bytes: fs.readFileSync(file) };
}

const attr = async (testid: string, name: string) => (await page.getByTestId(testid).getAttribute(name)) ?? '';
const range = async (testid: string) => (await attr(testid, 'data-x-range')).split(',').map(Number);

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'autodidact-e2e-analysis-'));
  seed(home);
  ({ web, browser, page } = await openApp({ home, pageErrors, acceptDownloads: true }));
}, 120_000);

afterAll(async () => {
  await closeApp({ browser, web });
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

describe('run analysis in the run view (issue 15.7)', () => {
  it('smooths every chart with the debiased EMA, keeping the raw line faint', async () => {
    await page.goto(`${web.url}#/runs/1`);
    const reward = 'chart-reward';
    // Two series (pseudo reward, reward against hidden answers), one point per training step.
    await expect.poll(() => attr(reward, 'data-points'), { timeout: 30_000 }).toBe(String(2 * STEPS));
    expect(await attr(reward, 'data-drawn')).toBe(String(2 * STEPS));
    await page.getByTestId('chart-smoothing').fill('0.8');
    await expect.poll(() => page.getByTestId('chart-smoothing-value').textContent()).toBe('0.80');
    // Each series drawn twice: its raw points (faint) and its smoothed line.
    await expect.poll(() => attr(reward, 'data-drawn')).toBe(String(4 * STEPS));
    expect(await attr(reward, 'data-smoothing')).toBe('0.8');
    expect(await attr('chart-validation', 'data-smoothing')).toBe('0.8');
  });

  it('zooms into a box dragged on the chart, pans with shift, and resets with a double click', async () => {
    const reward = 'chart-reward';
    const [min, max] = await range(reward);
    expect(max - min).toBeGreaterThanOrEqual(STEPS - 1);
    const box = (await page.getByTestId('chart-canvas-reward').boundingBox())!;
    const y = box.y + box.height * 0.4;
    await page.mouse.move(box.x + box.width * 0.35, y - 30);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.6, y + 20, { steps: 8 });
    await page.mouse.up();
    await expect.poll(() => attr(reward, 'data-zoomed')).toBe('true');
    const [zMin, zMax] = await range(reward);
    expect(zMin).toBeGreaterThan(min);
    expect(zMax).toBeLessThan(max);
    expect(zMax - zMin).toBeLessThan((max - min) / 2);
    await page.getByTestId('chart-reset-reward').waitFor();
    // The run view's charts, smoothed (0.8) with the reward chart zoomed: docs/screenshots/charts.png.
    await page.setViewportSize({ width: 1280, height: 1400 });
    await page.mouse.move(0, 0);
    await shot('charts.png', { locator: '[data-testid=run-analysis]' });
    await page.setViewportSize({ width: 1280, height: 900 });

    // Shift-drag pans: the same width, further left. (The screenshot scrolled the page: measure again.)
    const at = (await page.getByTestId('chart-canvas-reward').boundingBox())!;
    await page.keyboard.down('Shift');
    await page.mouse.move(at.x + at.width * 0.3, at.y + at.height * 0.4);
    await page.mouse.down();
    await page.mouse.move(at.x + at.width * 0.6, at.y + at.height * 0.4, { steps: 10 });
    await page.mouse.up();
    await page.keyboard.up('Shift');
    await expect.poll(async () => (await range(reward))[0]).toBeLessThan(zMin);
    const [pMin, pMax] = await range(reward);
    expect(pMax - pMin).toBeCloseTo(zMax - zMin, 3);

    await page.getByTestId('chart-canvas-reward').dblclick();
    await expect.poll(() => attr(reward, 'data-zoomed')).toBe('false');
    expect(await range(reward)).toEqual([min, max]);
  });

  it('puts steps at their wall time or at the tokens seen, and draws a log scale', async () => {
    const reward = 'chart-reward';
    await page.getByTestId('chart-x-axis').selectOption('time');
    // Step s was recorded (s + 1) · 12 s after the run started.
    await expect.poll(async () => (await range(reward))[1]).toBeGreaterThanOrEqual((STEPS + 1) * STEP_SECONDS);
    expect((await range(reward))[0]).toBeLessThanOrEqual(2 * STEP_SECONDS);
    expect(await attr(reward, 'data-drawn')).toBe(String(4 * STEPS));
    await page.getByTestId('chart-x-axis').selectOption('tokens');
    await expect.poll(async () => (await range(reward))[1]).toBeGreaterThanOrEqual(STEPS * STEP_TOKENS);
    expect((await range(reward))[1]).toBeLessThan(STEPS * STEP_TOKENS * 1.2);
    // A log y-axis on one chart (its scale is Chart.js's logarithmic one); the others keep theirs.
    await page.getByTestId('chart-log-entropy').click();
    await expect.poll(() => attr('chart-entropy', 'data-y-scale')).toBe('logarithmic');
    expect(await attr(reward, 'data-y-scale')).toBe('linear');
    await shot('charts-tokens-log.png', { locator: '[data-testid=run-analysis]' });
    await page.getByTestId('chart-log-entropy').click();
    await expect.poll(() => attr('chart-entropy', 'data-y-scale')).toBe('linear');
    await page.getByTestId('chart-x-axis').selectOption('step');
    await expect.poll(async () => (await range(reward))[1]).toBeLessThanOrEqual(STEPS + 1);
  });

  it('downloads a chart as PNG and its data, raw and smoothed, as CSV', async () => {
    const png = await download(() => page.getByTestId('chart-png-reward').click());
    expect(png.name).toBe('reward.png');
    expect(png.bytes.subarray(1, 4).toString()).toBe('PNG');
    // Three times the chart's size on screen (a figure for a paper), the chart on screen as it was.
    const canvas = page.getByTestId('chart-reward').locator('canvas');
    const onScreen = await canvas.evaluate((c: HTMLCanvasElement) => ({ css: c.clientWidth, pixels: c.width, ratio: window.devicePixelRatio }));
    expect(png.bytes.readUInt32BE(16)).toBe(Math.round(onScreen.css * Math.max(3, onScreen.ratio)));
    expect(onScreen.pixels).toBe(Math.round(onScreen.css * onScreen.ratio));

    const csv = await download(() => page.getByTestId('chart-csv-reward').click());
    expect(csv.name).toBe('reward.csv');
    const lines = csv.bytes.toString().trim().split('\n');
    expect(lines[0]).toBe('step,Pseudo reward,Pseudo reward (smoothed 0.8),Reward against hidden answers,Reward against hidden answers (smoothed 0.8)');
    expect(lines).toHaveLength(STEPS + 1);
    const first = lines[1].split(',').map(Number);
    // Debiased: the first smoothed value is the first raw value.
    expect(first[0]).toBe(1);
    expect(first[2]).toBeCloseTo(first[1], 10);
  });

  it('exports the run as the command line does: metrics CSV, samples JSONL and completions Parquet', async () => {
    await page.getByTestId('run-export').locator('summary').click();
    const metrics = await download(() => page.getByTestId('export-metrics').click());
    expect(metrics.name).toBe('run-1-metrics.csv');
    const rows = metrics.bytes.toString().trim().split('\n');
    expect(rows[0]).toBe(['step', ...[...new Set([...CHARTED.map((m) => m.key), 'train/entropy', 'actor/lr', 'val/maj@16'])].sort()].join(','));
    expect(rows).toHaveLength(STEPS + 2);

    const samples = await download(() => page.getByTestId('export-samples').click());
    expect(samples.name).toBe('run-1-samples.jsonl');
    const lines = samples.bytes.toString().trim().split('\n').map((l) => JSON.parse(l) as { step: number; label: string | null });
    expect(lines).toHaveLength(2 * STEPS);
    expect(lines[0]).toMatchObject({ step: 1, label: '2' });

    const completions = await download(() => page.getByTestId('export-completions').click());
    expect(completions.name).toBe('run-1-completions.parquet');
    const file = completions.bytes.buffer.slice(completions.bytes.byteOffset, completions.bytes.byteOffset + completions.bytes.byteLength) as ArrayBuffer;
    const table = await parquetReadObjects({ file });
    expect(table).toHaveLength(2 * STEPS);
    expect(table[0]).toMatchObject({ step: 1, prompt: 'What is 1 + 1?', completion: 'The answer is 2', reward: 1, advantage: 0.5 });
    expect(pageErrors).toEqual([]);
  });
});

describe('comparing runs (issue 15.8)', () => {
  it('charts several metrics at once and shows how the configurations differ', async () => {
    await page.goto(`${web.url}#/compare?ids=1,2,3`);
    await expect.poll(() => page.getByTestId('compare-row').count()).toBe(3);
    // The key metric and the metrics most runs log, one chart each, every run a line.
    await expect.poll(() => page.getByTestId('compare-chart').evaluateAll((els) => els.map((e) => e.getAttribute('data-key')))).toEqual([
      'val/maj@16',
      'train/majority_voting_reward',
      'train/label_accuracy',
    ]);
    await expect.poll(() => attr('chart-compare-1', 'data-points')).toBe(String(3 * STEPS));
    await page.getByTestId('compare-add-metric').selectOption('train/entropy');
    await expect.poll(() => page.getByTestId('compare-chart').count()).toBe(4);
    await expect.poll(() => attr('chart-compare-3', 'data-points')).toBe(String(3 * STEPS));

    const diffKeys = () => page.getByTestId('config-diff-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-key')));
    await expect.poll(diffKeys).toEqual(['klCoef', 'lr', 'votes']);
    expect(await page.locator('[data-testid=config-diff-row][data-key=votes] td').allTextContents()).toEqual(['votes', '16', '32', '16']);
    // The whole view in one picture: docs/screenshots/compare.png.
    await page.setViewportSize({ width: 1280, height: 1400 });
    await shot('compare.png');
    await page.setViewportSize({ width: 1280, height: 900 });

    await page.getByTestId('config-show-all').check();
    await expect.poll(async () => (await diffKeys()).length).toBeGreaterThan(20);
    expect(await diffKeys()).toContain('steps');
    await page.getByTestId('config-show-all').uncheck();

    await page.locator('[data-testid=compare-chart][data-key="train/entropy"] [data-testid=compare-remove-metric]').click();
    await expect.poll(() => page.getByTestId('compare-chart').count()).toBe(3);
  });

  it('removes a run from the comparison', async () => {
    await page.locator('[data-testid=compare-row][data-id="3"] [data-testid=compare-remove]').click();
    await page.waitForURL(/#\/compare\?ids=1,2$/);
    await expect.poll(() => page.getByTestId('compare-row').count()).toBe(2);
    await expect.poll(() => attr('chart-compare-1', 'data-points')).toBe(String(2 * STEPS));
    // klCoef no longer differs between the two left.
    await expect.poll(() => page.getByTestId('config-diff-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-key')))).toEqual(['lr', 'votes']);
  });

  it('clones a run: New run opens with its model, dataset and settings', async () => {
    await page.locator('[data-testid=compare-row][data-id="2"] [data-testid=compare-clone]').click();
    await page.waitForURL(/#\/new\?cloneOf=2$/);
    await expect.poll(() => page.getByTestId('input-votes').inputValue()).toBe('32');
    expect(Number(await page.getByTestId('input-lr').inputValue())).toBe(5e-6);
    expect(await page.getByTestId('input-steps').inputValue()).toBe(String(STEPS));
    expect(await page.getByTestId('run-dataset').inputValue()).toBe('sums');
    expect(await page.getByTestId('run-name').inputValue()).toBe('higher-lr-clone');
    // A clone is a new run of its own: it does not take the first run's reviewed labels.
    expect(await page.getByTestId('run-use-reviews').locator('option:checked').textContent()).toMatch(/^none/);
    // From the run view too.
    await page.goto(`${web.url}#/runs/3`);
    await page.getByTestId('run-clone').click();
    await page.waitForURL(/#\/new\?cloneOf=3$/);
    await expect.poll(() => page.getByTestId('input-klCoef').inputValue()).toBe('0');
    expect(pageErrors).toEqual([]);
  });
});
