// The engine's command table. Adding a command is one entry here: its zod parameter schema and its
// implementation; the host's `call()` takes its parameter, result and progress types from this
// table, so both sides stay in step without a second declaration. The worker serves these with
// the app's own (main/worker-commands.ts: `run`, which trains a recorded run).
import { z } from 'zod';
import { type CommandTable, defineCommand } from '../protocol.ts';
import { chat, chatLoad, chatLoadParams, chatParams, releaseChat } from './chat.ts';
import { logprobs, logprobsParams, releaseLogprobs } from './logprobs.ts';
import { listDevices, ping, pingParams, selftest, selftestParams } from './system.ts';

export const commands = {
  /** Liveness: answers as soon as the worker's event loop gets a turn. */
  ping: defineCommand({ params: pingParams, run: ping }),
  /** Which devices (cpu, webgpu, cuda) can run here, and what `auto` resolves to. */
  devices: defineCommand({ params: z.object({}), run: listDevices }),
  /** Keep a device busy with matrix products; reports GFLOP/s. Progress after every run. */
  selftest: defineCommand({ params: selftestParams, run: selftest }),
  /** Per-token log-probs of texts or token ids under a model folder (the model stays loaded). */
  logprobs: defineCommand({ params: logprobsParams, run: logprobs }),
  /** Load a model folder for chat completions (serve-model); says its context length. */
  chatLoad: defineCommand({ params: chatLoadParams, run: chatLoad }),
  /** A chat completion: the chat template, n samples, the text streamed as progress (the model stays loaded). */
  chat: defineCommand({ params: chatParams, run: chat }),
} satisfies CommandTable;

export type EngineCommands = typeof commands;
export type CommandName = keyof EngineCommands;

/** Release what the commands hold between calls (cached models and sessions). */
export async function disposeCommands(): Promise<void> {
  await releaseLogprobs();
  await releaseChat();
}
