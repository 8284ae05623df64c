// The browser suite, on what once took web mode down: a dataset with one prompt far longer than
// the model's context (it grew the process to 24 GB until the kernel killed it), and a server
// restarted under an open page (whose token it no longer takes).
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCREENSHOTS, type WebMode, launchBrowser, startWebMode } from './harness.ts';

let web: WebMode;
let restarted: WebMode | null = null;
let browser: Browser;
let page: Page;

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

beforeAll(async () => {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  // The engine may plan for 1 GB: a 1,008-token prompt on tiny-chars needs several.
  web = await startWebMode({ env: { AUTODIDACT_MEMORY_LIMIT: '1G' } });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await restarted?.stop();
  await web?.stop();
  if (web) fs.rmSync(web.home, { recursive: true, force: true });
});

describe('web mode survives', () => {
  it('a prompt longer than the model reads: the launch names it, a run that truncates it fails with its reason, and the app stays up', async () => {
    const file = path.join(web.home, 'long-prompts.jsonl');
    const long = `Add these up and give the total: ${'1 + '.repeat(1340)}1 = ?`;
    expect(long.length).toBeGreaterThan(5_000);
    const lines = [{ prompt: 'What is 2 + 3?', answer: '5' }, { prompt: long, answer: '1341' }, ...Array.from({ length: 6 }, (_, i) => ({ prompt: `What is ${i} + ${i}?`, answer: String(2 * i) }))];
    fs.writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');

    await page.goto(`${web.url}#/datasets`);
    await page.getByTestId('import-file').setInputFiles(file);
    await expect.poll(() => page.getByTestId('preview-row').count()).toBeGreaterThan(0);
    await page.getByTestId('import-eval-fraction').fill('0');
    await page.getByTestId('import-name').fill('long-prompts');
    await page.getByTestId('import-button').click();
    await page.locator('[data-testid=dataset-row][data-name="long-prompts"]').waitFor();

    await page.getByTestId('nav-new').click();
    await page.getByTestId('launch-button').waitFor();
    const tinyChars = await page.getByTestId('run-model').locator('option', { hasText: 'tiny-chars' }).first().getAttribute('value');
    await page.getByTestId('run-model').selectOption(tinyChars!);
    await page.getByTestId('run-dataset').selectOption('long-prompts');
    await page.getByTestId('run-device').selectOption('cpu');
    const steps = page.getByTestId('input-steps');
    await steps.fill('2');
    await steps.dispatchEvent('change');

    // Launch as it stands: refused before anything is recorded, naming the item and the way out.
    await page.getByTestId('launch-button').click();
    const refusal = page.locator('[data-testid=toast][data-kind=error]').getByTestId('toast-message');
    await refusal.waitFor();
    const message = (await refusal.textContent()) ?? '';
    expect(message).toContain('too long for tiny-chars');
    expect(message).toMatch(/item 1 \(train, "Add these up[^"]*"\) has 5,\d{3} tokens/);
    expect(message).toContain('longPrompts');
    expect(page.url()).toMatch(/#\/new/);
    await shot('survival-01-long-prompt-refused');
    await page.getByTestId('toast-dismiss').first().click();

    // Truncated to the context, and its whole update asked to go through one pass (microBatch
    // 32 = promptsPerStep × trainSamples; 0 would choose micro-batches that fit), the run would
    // need more memory than the engine may use: it fails at setup with that reason instead of
    // taking the server down.
    await page.getByTestId('input-longPrompts').selectOption('truncate');
    const micro = page.getByTestId('input-microBatch');
    await micro.fill('32');
    await micro.dispatchEvent('change');
    await page.getByTestId('launch-button').click();
    await page.waitForURL(/#\/runs\/\d+$/);
    await expect.poll(() => page.getByTestId('run-detail-status').textContent(), { timeout: 120_000 }).toMatch(/failed/);
    const reason = (await page.getByTestId('run-error').textContent()) ?? '';
    expect(reason).toMatch(/would need about [\d.]+ GB of memory, more than the 1\.0 GB it may use/);
    expect(reason).toContain('Lower microBatch');
    expect(reason).toContain('maxPromptTokens');
    // The log says what happened to the long prompt.
    await expect.poll(() => page.getByTestId('run-log').textContent()).toContain('truncated 1 to 1,008 tokens');
    await shot('survival-02-run-failed-with-reason');

    // Still up: the page's next requests are answered, and the page is served.
    await page.getByTestId('nav-runs').click();
    await expect.poll(() => page.locator('[data-testid=run-row]').count()).toBe(1);
    expect((await fetch(web.url)).status).toBe(200);
  });

  it('a restart under an open page: the page says so and how to get back in', async () => {
    const port = Number(new URL(web.url).port);
    await page.goto(`${web.url}#/runs`);
    await page.locator('[data-testid=run-row]').first().waitFor();
    await web.stop();
    // The same data folder and port, as a person restarting `autodidact serve` gets: a new token.
    restarted = await startWebMode({ home: web.home, port });
    expect(restarted.url).not.toBe(web.url);
    const banner = page.getByTestId('server-restarted-banner');
    await banner.waitFor({ timeout: 60_000 });
    expect(await banner.textContent()).toMatch(/Autodidact restarted.*Open the address/s);
    expect(await page.getByTestId('disconnected-banner').count()).toBe(0);
    await shot('survival-03-server-restarted');

    // The newly printed address gets back in, to the same runs.
    await page.goto(`${restarted.url}#/runs`);
    await page.locator('[data-testid=run-row]').first().waitFor();
    expect(await banner.count()).toBe(0);
  });
});
