// The part of OpenAI's chat completions API that `autodidact serve-model` answers: the request
// body (validated with zod, every problem named by its field), the response and stream-chunk
// shapes, and OpenAI's error shape ({"error": {"message", "type", "param", "code"}}).
import { z } from 'zod';
import { PHRASED } from '../issues.ts';

const textPart = z.object({ type: z.literal('text'), text: z.string() });

const message = z.object({
  // "developer" is OpenAI's newer name for "system"; tool messages need tools, which are not served.
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.union([z.string(), z.array(textPart)]),
  name: z.string().optional(),
});

export const chatRequestSchema = z.object({
  model: z.string().min(1),
  messages: z.array(message).min(1),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  n: z.number().int().min(1).max(16).nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(4)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  user: z.string().optional(),
  // Features the engine does not have: accepted only when they ask for nothing.
  logprobs: z.boolean().nullish(),
  presence_penalty: z.number().nullish(),
  frequency_penalty: z.number().nullish(),
  logit_bias: z.record(z.string(), z.number()).nullish(),
  tools: z.array(z.unknown()).nullish(),
  functions: z.array(z.unknown()).nullish(),
  response_format: z.object({ type: z.string() }).nullish(),
});

export type ChatRequest = z.output<typeof chatRequestSchema>;

export class OpenAiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A zod path as OpenAI names a parameter: messages[0].role. */
function paramOf(path: readonly PropertyKey[]): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`)).join('');
}

/** The request body checked, or an OpenAiError (400) naming the first wrong parameter. */
export function parseChatRequest(body: unknown): ChatRequest {
  const parsed = chatRequestSchema.safeParse(body, PHRASED);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = paramOf(issue.path);
    throw new OpenAiError(400, param ? `${param}: ${issue.message}` : issue.message, 'invalid_request_error', param || null);
  }
  const r = parsed.data;
  const unsupported = (param: string, asked: boolean) => {
    if (asked) throw new OpenAiError(400, `${param} is not supported by autodidact serve-model (the engine samples text only)`, 'invalid_request_error', param);
  };
  unsupported('logprobs', r.logprobs === true);
  unsupported('presence_penalty', !!r.presence_penalty);
  unsupported('frequency_penalty', !!r.frequency_penalty);
  unsupported('logit_bias', !!r.logit_bias && Object.keys(r.logit_bias).length > 0);
  unsupported('tools', !!r.tools?.length);
  unsupported('functions', !!r.functions?.length);
  unsupported('response_format', !!r.response_format && r.response_format.type !== 'text');
  return r;
}

/** The messages as the chat template takes them: text only, "developer" as "system". */
export function templateMessages(r: ChatRequest): { role: string; content: string }[] {
  return r.messages.map((m) => ({
    role: m.role === 'developer' ? 'system' : m.role,
    content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
  }));
}

/** The stop strings of a request, as a list. */
export function stopStrings(r: ChatRequest): string[] {
  if (r.stop === undefined || r.stop === null) return [];
  return typeof r.stop === 'string' ? [r.stop] : r.stop;
}

/** OpenAI takes any integer seed; the engine's is 32 bits. Without one, every request differs. */
export function engineSeed(r: ChatRequest, random: () => number): number {
  if (r.seed === undefined || r.seed === null) return Math.floor(random() * 0x100000000) >>> 0;
  return Number(BigInt.asUintN(32, BigInt(r.seed)));
}
