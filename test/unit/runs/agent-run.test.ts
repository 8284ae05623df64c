// An agent run end to end through the app's own path: `--dataset household` makes the
// environment's task set a dataset, executeRun drives the agent loop with an analyzer behind an
// OpenAI-compatible endpoint (a loopback HTTP server answering every analysis with the same
// skills), and the API opens a stored episode turn by turn and keeps the skill library.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDataset, getRun, listItems } from '../../../main/db/index.ts';
import { AGENT_METRICS } from '../../../main/engine/rl/methods/agent.ts';
import { keyMetricName } from '../../../main/runs/key-metric.ts';
import { RunSetupError, createRecordedRun, executeRun, parseStoredConfig } from '../../../main/runs/start.ts';
import { type Harness, createHarness } from '../api/handlers-harness.ts';
import { tinyAgentRunSettings } from '../../helpers/agent-run.ts';

let h: Harness;
let server: http.Server;
let url: string;
const asked: string[] = [];

beforeAll(async () => {
  h = createHarness();
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      asked.push(JSON.parse(body).messages[0].content);
      const content = JSON.stringify({ episode_skill: 'Open the receptacle before you look inside.', step_skills: [{ step: 1, skill: 'Go to the nearest cabinet.' }] });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content }, finish_reason: 'stop' }] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  h.close();
  await new Promise((resolve) => server.close(resolve));
});

const settings = (extra: Record<string, unknown> = {}) => ({ ...tinyAgentRunSettings(url, 'analyst'), ...extra });

describe('an agent run in the app', () => {
  it('refuses a dataset that is not an environment task set, naming the ones to use', async () => {
    const { config, target } = parseStoredConfig(settings({ dataset: 'arithmetic' }), 'test');
    await expect(createRecordedRun(h.db, h.home, config, target)).rejects.toThrow(RunSetupError);
    await expect(createRecordedRun(h.db, h.home, config, target)).rejects.toThrow('give --dataset household or shop, optionally with -easy|-medium|-hard');
  });

  it('stores episodes turn by turn with their skills; the API opens them, searches, edits and deletes skills', async () => {
    const { config, target } = parseStoredConfig(settings(), 'test');
    const { run, notes } = await createRecordedRun(h.db, h.home, config, target);
    expect(notes).toEqual([]);
    expect(keyMetricName(run.config as Record<string, unknown>)).toBe('val/success');
    // The environment's tasks as a dataset: goals as prompts, the task in each item's metadata.
    const dataset = getDataset(h.db, run.datasetId!)!;
    expect(dataset.name).toBe('household-easy-s0');
    const first = listItems(h.db, dataset.id, { split: 'train', limit: 1 }).items[0];
    expect(first.metadata).toMatchObject({ env: 'household', difficulty: 'easy' });
    expect(listItems(h.db, dataset.id, { split: 'eval' }).total).toBe(32);

    const result = await executeRun(h.db, h.home, run, false);
    expect(result.run.status).toBe('completed');
    expect(getRun(h.db, run.id)!.currentStep).toBe(1);
    expect(asked).toHaveLength(2);

    const episodes = await h.call('episodes.list', { runId: run.id, step: 1 });
    expect(episodes).toHaveLength(2);
    const e = await h.call('episodes.get', { sampleId: episodes[0].sampleId });
    expect(e.turns.length).toBeGreaterThan(0);
    expect(e.skills.map((s) => s.kind)).toEqual([e.success ? 'workflow' : 'avoidance', 'step']);
    // Turn 1 was taught by its step skill: each reply token shown as text with its Δ.
    const t1 = e.turns[0];
    expect(t1.skillId).toBe(e.skills[1].id);
    expect(t1.tokens!.join('').startsWith(t1.reply)).toBe(true);
    expect(t1.delta).toHaveLength(t1.tokens!.length);
    expect(e.skills[1].useCount).toBe(1);

    const all = await h.call('skills.list', { runId: run.id });
    expect(all.total).toBe(4);
    const found = await h.call('skills.list', { runId: run.id, query: 'NEAREST cabinet' });
    expect(found.skills.map((s) => s.kind)).toEqual(['step', 'step']);
    expect((await h.call('skills.list', { runId: run.id, query: '100%' })).total).toBe(0);

    const edited = await h.call('skills.edit', { id: e.skills[0].id, text: '  Check inside closed receptacles.  ' });
    expect(edited).toMatchObject({ text: 'Check inside closed receptacles.', editedByPerson: true });
    expect(edited.updatedAt).not.toBeNull();
    // Other windows hear of it: the run and the skill.
    expect(h.events.of('skills.changed')).toEqual([{ runId: run.id, skillId: e.skills[0].id, deleted: false }]);
    expect((await h.refused('skills.edit', { id: e.skills[0].id, text: ' ' })).issues).toEqual([{ path: 'text', message: 'a skill needs some text' }]);

    expect(await h.call('skills.delete', { id: e.skills[1].id })).toEqual({ deleted: true });
    expect(h.events.of('skills.changed').at(-1)).toEqual({ runId: run.id, skillId: e.skills[1].id, deleted: true });
    expect((await h.call('skills.list', { runId: run.id })).total).toBe(3);
    // The turn it taught keeps its Δ and loses the link.
    const after = await h.call('episodes.get', { sampleId: episodes[0].sampleId });
    expect(after.turns[0].skillId).toBeNull();
    expect(after.turns[0].delta).toEqual(t1.delta);
    expect((await h.refused('skills.delete', { id: e.skills[1].id })).code).toBe('NOT_FOUND');

    const metrics = await h.call('runs.metrics', { id: run.id, keys: [AGENT_METRICS.teacherAvailable, AGENT_METRICS.success] });
    expect(metrics.find((m) => m.key === AGENT_METRICS.teacherAvailable)!.value).toBe(1);
  }, 180_000);
});
