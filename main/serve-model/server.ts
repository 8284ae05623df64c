// `autodidact serve-model`'s HTTP server: OpenAI's `POST /v1/chat/completions` (plain and
// streamed as server-sent `chat.completion.chunk` events) and `GET /v1/models`, for one model the
// engine has loaded, on loopback only. Every request needs the bearer token printed at start;
// the Host header must name this server (a web page cannot reach it through DNS rebinding, and
// without CORS headers no page can read its answers). Generations run one at a time in arrival
// order; a client that disconnects is dropped from the queue, or its generation is cancelled.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EngineHost } from '../engine/host.ts';
import { EngineError } from '../engine/protocol.ts';
import { OpenAiError, type ChatRequest, engineSeed, parseChatRequest, stopStrings, templateMessages } from './openai-api.ts';

export const DEFAULT_MODEL_PORT = 8000;
/** A chat request body larger than this is refused (413) before it is read whole. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;
const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];

export interface ModelServerOptions {
  host: EngineHost;
  /** The model folder (absolute). */
  model: string;
  /** The name clients put in `model` (the built-in name or the folder's name). */
  modelId: string;
  device: 'cpu' | 'webgpu' | 'cuda' | 'auto';
  port: number;
  token: string;
  /** Where one line per request goes (the command prints it on stderr). */
  log?: (line: string) => void;
}

export interface ModelServer {
  url: string;
  port: number;
  contextLength: number;
  close(): Promise<void>;
}

function sameSecret(given: string, token: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(token).digest();
  return crypto.timingSafeEqual(a, b);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

function sendError(res: http.ServerResponse, e: OpenAiError): void {
  if (res.headersSent) {
    // Inside a stream: the error is the last event, as OpenAI's streams report one.
    if (!res.writableEnded) res.end(`data: ${JSON.stringify(e.body())}\n\n`);
    return;
  }
  sendJson(res, e.status, e.body());
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new OpenAiError(413, `the request body is ${declared} bytes, more than the ${MAX_BODY_BYTES} this server reads`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new OpenAiError(413, `the request body is more than the ${MAX_BODY_BYTES} bytes this server reads`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new OpenAiError(400, `the request body is not JSON: ${(e as Error).message}`);
  }
}

/** An engine failure in OpenAI's terms. */
function fromEngine(e: unknown): OpenAiError {
  if (e instanceof OpenAiError) return e;
  if (e instanceof EngineError) {
    if (e.code === 'TOO_LONG') return new OpenAiError(400, e.message, 'invalid_request_error', 'messages', 'context_length_exceeded');
    if (e.code === 'BAD_PARAMS') return new OpenAiError(400, e.message, 'invalid_request_error', typeof e.details?.param === 'string' ? e.details.param : null);
  }
  return new OpenAiError(500, `the engine failed: ${e instanceof Error ? e.message : String(e)}`, 'server_error');
}

export async function startModelServer(options: ModelServerOptions): Promise<ModelServer> {
  const { host, model, modelId, device, token } = options;
  const log = options.log ?? (() => {});
  // Load now: a wrong folder fails the command, not the first request.
  const loaded = await host.call('chatLoad', { model, device });
  const created = Math.floor(Date.now() / 1000);
  let queue: Promise<void> = Promise.resolve();
  let port = 0;

  const modelObject = { id: modelId, object: 'model', created, owned_by: 'autodidact' };

  async function completion(r: ChatRequest, res: http.ServerResponse): Promise<void> {
    const gone = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) gone.abort();
    };
    res.on('close', onClose);
    const id = `chatcmpl-${crypto.randomBytes(12).toString('hex')}`;
    const stream = r.stream === true;
    const n = r.n ?? 1;
    const params = {
      model,
      device,
      messages: templateMessages(r),
      n,
      maxTokens: r.max_completion_tokens ?? r.max_tokens ?? undefined,
      temperature: r.temperature ?? 1,
      topP: r.top_p ?? 1,
      seed: engineSeed(r, Math.random),
      stop: stopStrings(r),
    };
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: modelId, choices, ...extra })}\n\n`;
    const sent = new Array<number>(n).fill(0);
    // A client that left mid-stream gets nothing more (its generation is being cancelled).
    const write = (text: string) => {
      if (!res.destroyed && !res.writableEnded) res.write(text);
    };
    // The stream starts with the first text, so an error before it (a prompt too long) is a
    // plain error response with its status.
    const startStream = () => {
      if (res.headersSent) return;
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      for (let index = 0; index < n; index++) write(chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]));
    };
    // One generation at a time: wait for the ones before, unless this client leaves first.
    const turn = queue.then(async () => {
      if (gone.signal.aborted) return;
      const started = Date.now();
      try {
        const result = await host.call('chat', params, {
          signal: gone.signal,
          onProgress: stream
            ? (p) => {
                startStream();
                for (const d of p.deltas) sent[d.index] += d.text.length;
                // One choice per chunk, as OpenAI streams several choices.
                for (const d of p.deltas) write(chunk([{ index: d.index, delta: { content: d.text }, logprobs: null, finish_reason: null }]));
              }
            : undefined,
        });
        const completionTokens = result.choices.reduce((s, c) => s + c.completionTokens, 0);
        const usage = { prompt_tokens: result.promptTokens, completion_tokens: completionTokens, total_tokens: result.promptTokens + completionTokens };
        log(`chat: ${result.promptTokens} prompt tokens, ${completionTokens} generated, n=${n}${stream ? ', streamed' : ''}, ${Date.now() - started} ms`);
        if (stream) {
          startStream();
          for (const c of result.choices) {
            const rest = c.text.slice(sent[c.index]);
            write(chunk([{ index: c.index, delta: rest ? { content: rest } : {}, logprobs: null, finish_reason: c.finishReason }]));
          }
          if (r.stream_options?.include_usage) write(chunk([], { usage }));
          if (!res.destroyed) res.end('data: [DONE]\n\n');
        } else {
          sendJson(res, 200, {
            id,
            object: 'chat.completion',
            created: Math.floor(Date.now() / 1000),
            model: modelId,
            choices: result.choices.map((c) => ({ index: c.index, message: { role: 'assistant', content: c.text, refusal: null }, logprobs: null, finish_reason: c.finishReason })),
            usage,
          });
        }
      } catch (e) {
        if (gone.signal.aborted) {
          log('chat: the client disconnected; generation cancelled');
          return;
        }
        const err = fromEngine(e);
        log(`chat: ${err.status} ${err.message}`);
        sendError(res, err);
      }
    });
    queue = turn.catch(() => {});
    await turn;
    res.off('close', onClose);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const hostHeader = (req.headers.host ?? '').toLowerCase();
    if (!LOOPBACK_NAMES.some((name) => hostHeader === `${name}:${port}`)) {
      throw new OpenAiError(421, `the Host header "${hostHeader}" does not name this server (http://127.0.0.1:${port})`);
    }
    const auth = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(auth);
    if (!m) {
      throw new OpenAiError(401, "Missing bearer token: send 'Authorization: Bearer TOKEN' with the token autodidact serve-model printed at start (or set in AUTODIDACT_SERVE_TOKEN).", 'invalid_request_error', null, 'invalid_api_key');
    }
    if (!sameSecret(m[1].trim(), token)) {
      throw new OpenAiError(401, 'Incorrect bearer token: use the one autodidact serve-model printed at start (it changes at every start unless AUTODIDACT_SERVE_TOKEN sets it).', 'invalid_request_error', null, 'invalid_api_key');
    }
    const url = new URL(req.url ?? '/', 'http://local');
    const route = url.pathname.replace(/\/+$/, '');
    if (route === '/v1/models' || route.startsWith('/v1/models/')) {
      if (req.method !== 'GET') throw new OpenAiError(405, `${req.method} is not allowed on ${route}; use GET`);
      if (route === '/v1/models') return sendJson(res, 200, { object: 'list', data: [modelObject] });
      const asked = decodeURIComponent(route.slice('/v1/models/'.length));
      if (asked !== modelId) throw new OpenAiError(404, `The model '${asked}' does not exist: this server serves '${modelId}'`, 'invalid_request_error', 'model', 'model_not_found');
      return sendJson(res, 200, modelObject);
    }
    if (route === '/v1/chat/completions') {
      if (req.method !== 'POST') throw new OpenAiError(405, `${req.method} is not allowed on ${route}; use POST`);
      const r = parseChatRequest(await readBody(req));
      if (r.model !== modelId) throw new OpenAiError(404, `The model '${r.model}' does not exist: this server serves '${modelId}'`, 'invalid_request_error', 'model', 'model_not_found');
      return completion(r, res);
    }
    throw new OpenAiError(404, `Invalid URL (${req.method} ${url.pathname}): this server answers GET /v1/models and POST /v1/chat/completions`);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => sendError(res, fromEngine(e)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new Error(`port ${options.port} on 127.0.0.1 is in use: choose another with --port (0 picks a free one)`) : e),
    );
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    contextLength: loaded.contextLength,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
