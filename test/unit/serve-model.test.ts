// `autodidact serve-model` as a real process on loopback with the built-in tiny-chars model,
// driven by the `openai` npm client: models, a chat completion, a streamed one (the same text),
// stop strings, n, seeds, errors in OpenAI's shape for bad requests, a refused token, and a
// client that disconnects mid-stream. And the app's own endpoint client (what an analyzer or a
// judge pointed at an OpenAI-compatible endpoint uses) against the same server, and an agent run
// whose OPID analyzer setting names this server.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analysisPrompt, analyzeEpisode } from '../../main/engine/agent/analyzer.ts';
import { ChatEndpoint, EndpointError } from '../../main/engine/agent/endpoint.ts';
import { type Episode, expertPolicy, runEpisode } from '../../main/engine/agent/episode.ts';
import { type EpisodeRecord, analysisFailureNote } from '../../main/engine/agent/records.ts';
import type { StepRecord } from '../../main/engine/rl/loop.ts';
import { AGENT_METRICS } from '../../main/engine/rl/methods/agent.ts';
import { createRecordedRun, executeRun, parseStoredConfig } from '../../main/runs/start.ts';
import { createHarness } from './api/handlers-harness.ts';
import { environment, taskSet } from '../../main/engine/envs/index.ts';
import { resolveModelPath } from '../../main/engine/model-paths.ts';
import { TextTokenizer } from '../../main/engine/nn/tokenizer.ts';
import { encodePrompt } from '../../main/engine/rl/prompts.ts';
import { tinyAgentRunSettings } from '../helpers/agent-run.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = path.join(ROOT, 'bin/autodidact.js');
const MODEL = 'tiny-chars';

let child: ChildProcess;
let stderr = '';
let baseURL = '';
let token = '';
let client: OpenAI;

beforeAll(async () => {
  const env: NodeJS.ProcessEnv = { ...process.env, AUTODIDACT_THREADS: '1' };
  delete env.AUTODIDACT_SERVE_TOKEN;
  child = spawn(process.execPath, [BIN, 'serve-model', MODEL, '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (d) => (stderr += d));
  let stdout = '';
  await new Promise<void>((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`serve-model exited with ${code}: ${stderr}`)));
    child.stdout!.on('data', (d) => {
      stdout += d;
      const url = /at (http:\/\/127\.0\.0\.1:\d+\/v1)\n/.exec(stdout);
      const tok = /^token: (\S+)$/m.exec(stdout);
      if (url && tok) {
        baseURL = url[1];
        token = tok[1];
        resolve();
      }
    });
  });
  client = new OpenAI({ baseURL, apiKey: token, maxRetries: 0 });
}, 60_000);

afterAll(async () => {
  if (!child || child.exitCode !== null) return;
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  await exited;
});

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const hello: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Hello' }];

describe('autodidact serve-model', () => {
  it('lists its model and prints a fresh token', async () => {
    expect(token.length).toBeGreaterThanOrEqual(40);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([MODEL]);
    expect((await client.models.retrieve(MODEL)).id).toBe(MODEL);
  });

  it('answers a chat completion through the chat template, and streams the same text', async () => {
    const plain = await client.chat.completions.create({ model: MODEL, messages: hello, temperature: 0, max_tokens: 24 });
    expect(plain.object).toBe('chat.completion');
    expect(plain.model).toBe(MODEL);
    expect(plain.choices).toHaveLength(1);
    const [choice] = plain.choices;
    expect(choice.message.role).toBe('assistant');
    expect(['stop', 'length']).toContain(choice.finish_reason);
    // The prompt is the user message in the model's chat template, as the run loop encodes it.
    const tokenizer = await TextTokenizer.fromFolder(resolveModelPath(MODEL));
    expect(plain.usage?.prompt_tokens).toBe(encodePrompt(tokenizer!, 'Hello', 'chat').length);
    expect(plain.usage?.completion_tokens).toBeGreaterThan(0);
    expect(plain.usage?.completion_tokens).toBeLessThanOrEqual(24);

    const stream = await client.chat.completions.create({ model: MODEL, messages: hello, temperature: 0, max_tokens: 24, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let chunks = 0;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      expect(c.object).toBe('chat.completion.chunk');
      chunks++;
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) {
        text += ch.delta.content ?? '';
        finish = ch.finish_reason ?? finish;
      }
    }
    expect(chunks).toBeGreaterThan(3);
    expect(text).toBe(choice.message.content);
    expect(finish).toBe(choice.finish_reason);
    expect(usage).toEqual(plain.usage);
  });

  it('honours seed, n and stop strings (cut before the stop, streamed or not)', async () => {
    const ask = (extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming>) =>
      client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 16, ...extra });
    // Two at once: they wait their turn in the queue, and the same seed gives the same text.
    const [a, b] = await Promise.all([ask({ seed: 7, temperature: 1 }), ask({ seed: 7, temperature: 1 })]);
    expect(b.choices[0].message.content).toBe(a.choices[0].message.content);
    const two = await ask({ seed: 7, temperature: 1, n: 2 });
    expect(two.choices.map((c) => c.index)).toEqual([0, 1]);

    const greedy = (await ask({ temperature: 0, max_tokens: 30 })).choices[0].message.content!;
    expect(greedy.length).toBeGreaterThan(4);
    const stop = greedy.slice(3, 5);
    const expected = greedy.slice(0, greedy.indexOf(stop));
    const stopped = await ask({ temperature: 0, max_tokens: 30, stop: [stop] });
    expect(stopped.choices[0]).toMatchObject({ finish_reason: 'stop', message: { content: expected } });
    const streamed = await client.chat.completions.create({ model: MODEL, messages: hello, temperature: 0, max_tokens: 30, stop, stream: true });
    let text = '';
    for await (const c of streamed) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe(expected);
  });

  it("refuses bad requests in OpenAI's error shape, naming the parameter", async () => {
    const bad = async (body: Record<string, unknown>) => {
      try {
        await client.chat.completions.create(body as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
      } catch (e) {
        return e as InstanceType<typeof OpenAI.APIError>;
      }
      throw new Error(`accepted ${JSON.stringify(body)}`);
    };
    const empty = await bad({ model: MODEL, messages: [] });
    expect(empty.status).toBe(400);
    expect(empty.error).toMatchObject({ type: 'invalid_request_error', param: 'messages' });
    const hot = await bad({ model: MODEL, messages: hello, temperature: 3 });
    expect(hot.status).toBe(400);
    expect(hot.error).toMatchObject({ param: 'temperature', message: expect.stringContaining('temperature') });
    const role = await bad({ model: MODEL, messages: [{ role: 'tool', content: 'x', tool_call_id: '1' }] });
    expect(role.error).toMatchObject({ param: 'messages[0].role' });
    const penalty = await bad({ model: MODEL, messages: hello, presence_penalty: 1 });
    expect(penalty.error).toMatchObject({ param: 'presence_penalty', message: expect.stringContaining('not supported') });
    const long = await bad({ model: MODEL, messages: hello, max_tokens: 5000 });
    expect(long.status).toBe(400);
    expect(long.error).toMatchObject({ code: 'context_length_exceeded', message: expect.stringContaining('maximum context length is 1024 tokens') });
    const other = await bad({ model: 'gpt-4o', messages: hello });
    expect(other.status).toBe(404);
    expect(other.error).toMatchObject({ code: 'model_not_found' });
    const raw = await fetch(`${baseURL}/chat/completions`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: '{"model":' });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as ErrorBody).error.message).toMatch(/^the request body is not JSON/);
  });

  it('refuses a missing or wrong token, and a foreign Host', async () => {
    const missing = await fetch(`${baseURL}/models`);
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as ErrorBody).error).toMatchObject({ code: 'invalid_api_key', message: expect.stringContaining('Missing bearer token') });
    const wrong = new OpenAI({ baseURL, apiKey: 'not-the-token', maxRetries: 0 });
    await expect(wrong.chat.completions.create({ model: MODEL, messages: hello })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const { port } = new URL(baseURL);
    const rebound = await new Promise<number>((resolve, reject) => {
      import('node:http').then(({ request }) => {
        const req = request({ host: '127.0.0.1', port, path: '/v1/models', headers: { Host: `evil.example:${port}`, Authorization: `Bearer ${token}` } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end();
      }, reject);
    });
    expect(rebound).toBe(421);
  });

  it('cancels the generation of a client that disconnects, and serves the next one', async () => {
    const controller = new AbortController();
    // Eight long samples: they cannot all end on their own before the client leaves.
    const stream = await client.chat.completions.create(
      { model: MODEL, messages: [{ role: 'user', content: 'Tell me everything' }], temperature: 1, seed: 3, n: 8, max_tokens: 900, stream: true },
      { signal: controller.signal },
    );
    const before = stderr.length;
    let chunks = 0;
    for await (const _ of stream) {
      chunks++;
      controller.abort();
    }
    expect(chunks).toBeGreaterThan(0);
    const next = await client.chat.completions.create({ model: MODEL, messages: hello, temperature: 0, max_tokens: 4 });
    expect(next.choices).toHaveLength(1);
    for (let i = 0; i < 100 && !stderr.slice(before).includes('cancelled'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(stderr.slice(before)).toContain('the client disconnected; generation cancelled');
  });

  it("the app's chat endpoint client gets the same answer, with the key from the environment, and names what failed", async () => {
    process.env.AUTODIDACT_TEST_ENDPOINT_KEY = token;
    const endpoint = new ChatEndpoint({ url: `${baseURL}/`, model: MODEL, keyEnv: 'AUTODIDACT_TEST_ENDPOINT_KEY' });
    const got = await endpoint.complete([{ role: 'user', content: 'Hello' }], { temperature: 0, maxTokens: 12 });
    const want = await client.chat.completions.create({ model: MODEL, messages: hello, temperature: 0, max_tokens: 12 });
    expect(got).toEqual({ text: want.choices[0].message.content, finishReason: want.choices[0].finish_reason, promptTokens: want.usage!.prompt_tokens, completionTokens: want.usage!.completion_tokens });

    process.env.AUTODIDACT_TEST_ENDPOINT_KEY = 'wrong-key';
    await expect(endpoint.complete([{ role: 'user', content: 'Hello' }])).rejects.toThrow(`the chat endpoint ${baseURL}/chat/completions answered 401: Incorrect bearer token`);
    delete process.env.AUTODIDACT_TEST_ENDPOINT_KEY;
    await expect(endpoint.complete([{ role: 'user', content: 'Hello' }])).rejects.toThrow('the environment variable AUTODIDACT_TEST_ENDPOINT_KEY, named as the chat endpoint\'s key, is not set');
    process.env.AUTODIDACT_TEST_ENDPOINT_KEY = token;
    const other = new ChatEndpoint({ url: baseURL, model: 'big-model', keyEnv: 'AUTODIDACT_TEST_ENDPOINT_KEY' });
    const err = await other.complete([{ role: 'user', content: 'Hello' }]).catch((e) => e);
    expect(err).toBeInstanceOf(EndpointError);
    expect(err).toMatchObject({ status: 404, message: expect.stringContaining("The model 'big-model' does not exist") });
    const closed = new ChatEndpoint({ url: 'http://127.0.0.1:9/v1', model: MODEL });
    await expect(closed.complete([{ role: 'user', content: 'Hello' }])).rejects.toThrow('cannot reach the chat endpoint http://127.0.0.1:9/v1/chat/completions');
    expect(() => new ChatEndpoint({ url: 'ftp://x', model: MODEL })).toThrow('must start with http:// or https://');
    delete process.env.AUTODIDACT_TEST_ENDPOINT_KEY;
  });

  it('an analyzer pointed at the endpoint asks it about an episode; an answer without an analysis gives no skill', async () => {
    process.env.AUTODIDACT_TEST_ENDPOINT_KEY = token;
    const endpoint = new ChatEndpoint({ url: baseURL, model: MODEL, keyEnv: 'AUTODIDACT_TEST_ENDPOINT_KEY' });
    const env = environment('household').create();
    const task = taskSet({ env: 'household', difficulty: 'easy', count: 1, seed: 2, split: 'train' })[0];
    const first = env.reset(task).observation;
    const episode = await runEpisode(env, task, expertPolicy(env));
    // A short template (the setting is editable): tiny-chars has 1,024 positions.
    const template = 'Task: {task}\nOutcome: {outcome} in {steps} steps.\nAnswer with JSON: {"episode_skill": "..."}';
    const asked: string[] = [];
    const analysis = await analyzeEpisode(
      episode,
      first,
      async (messages) => {
        asked.push(messages[0].content);
        return (await endpoint.complete(messages, { temperature: 0, maxTokens: 48 })).text;
      },
      template,
    );
    expect(asked).toEqual([`Task: ${episode.goal}\nOutcome: success in ${episode.turns.length} steps.\nAnswer with JSON: {"episode_skill": "..."}`]);
    // tiny-chars writes characters, not analyses: the episode gets no skill, and why is kept.
    const direct = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: asked[0] }], temperature: 0, max_tokens: 48 });
    expect(analysis).toMatchObject({ ok: false, raw: direct.choices[0].message.content });
    expect(analysis.ok ? '' : analysis.reason).toMatch(/^the answer/);
    delete process.env.AUTODIDACT_TEST_ENDPOINT_KEY;
  });

  it("an agent run's OPID analyzer set to this server (URL, model name, key from the environment) asks it about every finished episode; an answer that is no analysis gives no skill and is logged", async () => {
    process.env.AUTODIDACT_TEST_ENDPOINT_KEY = token;
    const h = createHarness();
    try {
      // A short template (the setting is editable): the analysis prompt must fit tiny-chars's 1,024 positions.
      const template = 'Task: {task}\nOutcome: {outcome} in {steps} steps.\n{trajectory}\nSkills as JSON:';
      const { config, target } = parseStoredConfig(
        {
          ...tinyAgentRunSettings(baseURL, MODEL),
          opidAnalyzerKeyEnv: 'AUTODIDACT_TEST_ENDPOINT_KEY',
          opidAnalyzerTemplate: template,
          opidAnalyzerMaxTokens: 32,
        },
        'test',
      );
      const { run } = await createRecordedRun(h.db, h.home, config, target);
      const records: StepRecord[] = [];
      const result = await executeRun(h.db, h.home, run, false, { onStep: (r) => void records.push(r) });
      expect(result.run.status).toBe('completed');
      const episodes = records.at(-1)!.groups.flatMap((g) => g.samples.map((sample) => sample.episode!));
      expect(episodes).toHaveLength(2);
      for (const e of episodes) {
        // The question the run put to the server, rebuilt from the recorded episode (the task
        // builds the same world, so its first observation is the one the episode began with).
        const first = environment(e.task.env).create().reset(e.task).observation;
        const prompt = analysisPrompt(template, { goal: e.goal, success: e.success, turns: e.turns } as unknown as Episode, first);
        const direct = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: prompt }], temperature: 0, max_tokens: 32 });
        // tiny-chars answers characters, not an analysis: the server's own answer is kept as the
        // reason the episode got no skill, and nothing teaches its turns.
        expect(e.analysisError).toEqual({ reason: 'the answer holds no JSON object', raw: direct.choices[0].message.content });
        expect(e.skills).toEqual([]);
        expect(e.turns.every((t) => t.skill === null && t.delta === null)).toBe(true);
      }
      expect(records.at(-1)!.metrics[AGENT_METRICS.analyzerFailed]).toBe(1);
      expect(records.at(-1)!.metrics[AGENT_METRICS.teacherAvailable]).toBe(0);
      // The run's log line (the app's and `autodidact run`'s warnings) names the count, the reason and the answer.
      const raw = episodes[0].analysisError!.raw;
      expect(analysisFailureNote(1, episodes)).toBe(
        `step 1: the analyzer gave 2 of 2 episodes no skill (the first: the answer holds no JSON object; it answered ${JSON.stringify(raw.length > 120 ? `${raw.slice(0, 120)}…` : raw)})`,
      );
      expect(analysisFailureNote(1, [{ ...episodes[0], analysisError: null } as EpisodeRecord])).toBeNull();
      // Stored: the episode view shows why, and the skill library stays empty.
      const listed = await h.call('episodes.list', { runId: run.id, step: 1 });
      expect((await h.call('episodes.get', { sampleId: listed[0].sampleId })).analysisError).toEqual(episodes[0].analysisError);
      expect((await h.call('skills.list', { runId: run.id })).total).toBe(0);
    } finally {
      h.close();
      delete process.env.AUTODIDACT_TEST_ENDPOINT_KEY;
    }
  }, 180_000);
});
