// A chat model behind an OpenAI-compatible endpoint (`POST {url}/chat/completions`): how an
// analyzer or a judge reaches a bigger model a person runs next to the app (vLLM, llama.cpp's
// server, another `autodidact serve-model`). The key is read from an environment variable the
// setting names, never stored; every failure names the setting to fix and what the server said.

export interface ChatEndpointSettings {
  /** The API's base URL, e.g. http://127.0.0.1:8000/v1. */
  url: string;
  /** The model name the endpoint serves. */
  model: string;
  /** The environment variable holding the bearer token, if the endpoint wants one. */
  keyEnv?: string;
  /** Per request; default 120 s. */
  timeoutMs?: number;
}

export interface EndpointMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface EndpointCompletion {
  text: string;
  finishReason: string;
  promptTokens?: number;
  completionTokens?: number;
}

export class EndpointError extends Error {
  override name = 'EndpointError';
  constructor(
    message: string,
    /** The HTTP status, when the server answered. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export class ChatEndpoint {
  private readonly base: string;

  constructor(private readonly settings: ChatEndpointSettings) {
    let url: URL;
    try {
      url = new URL(settings.url);
    } catch {
      throw new EndpointError(`the chat endpoint URL "${settings.url}" is not a URL (e.g. http://127.0.0.1:8000/v1)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new EndpointError(`the chat endpoint URL "${settings.url}" must start with http:// or https://`);
    if (!settings.model.trim()) throw new EndpointError('the chat endpoint needs a model name');
    this.base = settings.url.replace(/\/+$/, '');
  }

  private key(): string | undefined {
    const name = this.settings.keyEnv;
    if (!name) return undefined;
    const value = process.env[name];
    if (!value) throw new EndpointError(`the environment variable ${name}, named as the chat endpoint's key, is not set`);
    return value;
  }

  async complete(
    messages: readonly EndpointMessage[],
    options: { temperature?: number; maxTokens?: number; stop?: string[]; seed?: number; signal?: AbortSignal } = {},
  ): Promise<EndpointCompletion> {
    const key = this.key();
    const url = `${this.base}/chat/completions`;
    const body = {
      model: this.settings.model,
      messages,
      ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
      ...(options.maxTokens !== undefined ? { max_tokens: options.maxTokens } : {}),
      ...(options.stop?.length ? { stop: options.stop } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
    };
    const timeout = AbortSignal.timeout(this.settings.timeoutMs ?? 120_000);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify(body),
        signal,
      });
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason ?? e;
      if (timeout.aborted) throw new EndpointError(`the chat endpoint ${url} did not answer within ${(this.settings.timeoutMs ?? 120_000) / 1000} s`);
      const cause = (e as { cause?: { message?: string } }).cause?.message;
      throw new EndpointError(`cannot reach the chat endpoint ${url}: ${cause ?? (e as Error).message}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const said = (json as { error?: { message?: unknown } } | undefined)?.error?.message;
      throw new EndpointError(`the chat endpoint ${url} answered ${res.status}: ${typeof said === 'string' ? said : text.slice(0, 300)}`, res.status);
    }
    const choice = (json as { choices?: { message?: { content?: unknown }; finish_reason?: unknown }[] } | undefined)?.choices?.[0];
    if (!choice || typeof choice.message?.content !== 'string') {
      throw new EndpointError(`the chat endpoint ${url} answered without choices[0].message.content: ${text.slice(0, 300)}`, res.status);
    }
    const usage = (json as { usage?: { prompt_tokens?: number; completion_tokens?: number } }).usage;
    return {
      text: choice.message.content,
      finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : 'stop',
      ...(usage?.prompt_tokens !== undefined ? { promptTokens: usage.prompt_tokens } : {}),
      ...(usage?.completion_tokens !== undefined ? { completionTokens: usage.completion_tokens } : {}),
    };
  }
}
