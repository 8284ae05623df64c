// `autodidact serve-model NAME|DIR`: any model the engine can load, behind OpenAI's chat
// completions API on 127.0.0.1 (main/serve-model/), so a checkpoint can be another run's judge
// or analyzer, or be tried from any OpenAI client.
import crypto from 'node:crypto';
import path from 'node:path';
import { EngineHost } from '../engine/host.ts';
import { resolveModelPath } from '../engine/model-paths.ts';
import { DEFAULT_MODEL_PORT, startModelServer } from '../serve-model/server.ts';
import { UsageError, choiceFlag, command, intFlag, positionalArgs } from './args.ts';

export const TOKEN_ENV = 'AUTODIDACT_SERVE_TOKEN';

export const serveModelCommand = command({
  name: 'serve-model',
  summary: "Serve a model with OpenAI's chat completions API on 127.0.0.1 (streaming, bearer token).",
  synopsis: 'NAME|DIR [--port P] [--device D] [--name ID]',
  positionals: true,
  flags: {
    port: { type: 'string', value: 'P', description: `port on 127.0.0.1 (default: ${DEFAULT_MODEL_PORT}; 0 = any free port)` },
    device: { type: 'string', value: 'DEVICE', default: 'cpu', description: 'cpu, webgpu, cuda, or auto (prefers a GPU)' },
    name: { type: 'string', value: 'ID', description: "the model id clients send (default: the built-in name or the folder's name)" },
  },
  details: `
Answers POST /v1/chat/completions (plain, and streamed as server-sent chat.completion.chunk
events with "stream": true) and GET /v1/models, on 127.0.0.1 only. The model's chat template
renders the messages; temperature (0 = greedy), top_p, max_tokens (or max_completion_tokens),
stop (up to 4 strings), n (up to 16) and seed are honoured; logprobs, penalties, logit_bias and
tools are refused. One generation runs at a time, the others wait in order; a client that
disconnects is dropped from the queue or its generation is cancelled.
Every request needs "Authorization: Bearer TOKEN": the token is printed at start, new each
time, unless ${TOKEN_ENV} sets it (16 characters or more). With the openai package, for example:
  new OpenAI({ baseURL: 'http://127.0.0.1:P/v1', apiKey: TOKEN })
Ctrl-C stops the server.`,
  async run(values, positionals) {
    const [nameOrDir] = positionalArgs(positionals, ['NAME|DIR']);
    let model: string;
    try {
      model = resolveModelPath(nameOrDir);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const port = intFlag(values, 'port', DEFAULT_MODEL_PORT, 0, 65535);
    const device = choiceFlag(values, 'device', ['cpu', 'webgpu', 'cuda', 'auto'] as const, 'cpu');
    const modelId = values.name ?? path.basename(model);
    if (!modelId.trim()) throw new UsageError('--name must not be empty');
    const fromEnv = process.env[TOKEN_ENV];
    if (fromEnv !== undefined && fromEnv.trim().length < 16) throw new UsageError(`${TOKEN_ENV} must hold at least 16 characters (it has ${fromEnv.trim().length})`);
    const token = fromEnv?.trim() || crypto.randomBytes(32).toString('base64url');

    const host = await EngineHost.start();
    const stopped = new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    try {
      const server = await startModelServer({ host, model, modelId, device, port, token, log: (line) => process.stderr.write(`${line}\n`) });
      process.stdout.write(`serving ${modelId} (${model}, context ${server.contextLength} tokens) at ${server.url}\n`);
      process.stdout.write(fromEnv ? `token: from ${TOKEN_ENV}\n` : `token: ${token}\n`);
      await stopped;
      process.stderr.write('stopping\n');
      await server.close();
    } finally {
      await host.close();
    }
    return 0;
  },
});
