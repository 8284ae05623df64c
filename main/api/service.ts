// The API service both transports (Electron IPC, the WebSocket of web mode) call: it looks up a
// request's channel, validates its params with the channel's zod schema (the renderer is
// untrusted input), runs the handler and turns whatever goes wrong into an ApiError with a code
// the window can act on. Nothing a request sends can crash the process: every failure becomes
// an answer, and every write is one transaction, so a refused request leaves nothing behind.
import Database from 'better-sqlite3';
import type { ZodError } from 'zod';
import { ApiError, type ApiService, type RequestName, requests } from '../../contract/index.ts';
import { DatabaseError, translateError } from '../db/index.ts';
import { EngineError } from '../engine/protocol.ts';
import { DatasetError } from '../engine/tasks/datasets.ts';
import { ImportError } from '../runs/datasets.ts';
import { PHRASED, fieldIssues, issuesText } from '../issues.ts';
import { RunSetupError } from '../runs/start.ts';
import { ModelFolderError } from './models.ts';
import { agentHandlers } from './handlers/agent.ts';
import { svdHandlers } from './handlers/svd.ts';
import { appHandlers } from './handlers/app.ts';
import { datasetHandlers } from './handlers/datasets.ts';
import { modelHandlers } from './handlers/models.ts';
import { reviewHandlers } from './handlers/reviews.ts';
import { runHandlers } from './handlers/runs.ts';
import { stepHandlers } from './handlers/steps.ts';
import { type ApiDeps, type Handler, type HandlerTable } from './handlers/types.ts';

export type { ApiDeps } from './handlers/types.ts';

// Typed as the table of every channel: a channel of the contract without a handler does not compile.
const HANDLERS: HandlerTable<RequestName> = {
  ...appHandlers,
  ...datasetHandlers,
  ...modelHandlers,
  ...runHandlers,
  ...stepHandlers,
  ...reviewHandlers,
  ...agentHandlers,
  ...svdHandlers,
};

const isChannel = (c: string): c is RequestName => Object.prototype.hasOwnProperty.call(requests, c);

/** A zod failure (worded by PHRASED) as a BAD_REQUEST naming each offending field. */
function badRequest(err: ZodError): ApiError {
  const issues = fieldIssues(err.issues);
  return new ApiError('BAD_REQUEST', issuesText(issues), issues);
}

const isDiskFull = (e: unknown): boolean => (e as NodeJS.ErrnoException | null)?.code === 'ENOSPC';

/** Any failure of a handler as the ApiError the window shows. */
export function toApiError(e: unknown, deps: Pick<ApiDeps, 'databaseFile' | 'home'>, channel: string): ApiError {
  if (e instanceof ApiError) return e;
  // A SQLite error that escaped a repository function (outside db.write) gets the same wording.
  if (e instanceof Database.SqliteError) e = translateError(deps.databaseFile, e, `the request ${channel}`);
  if (e instanceof DatabaseError) {
    switch (e.code) {
      case 'NOT_FOUND':
        return new ApiError('NOT_FOUND', e.message);
      case 'STEP_EXISTS':
      case 'IN_USE':
        return new ApiError('CONFLICT', e.message);
      case 'INVALID':
        return new ApiError('SETUP', e.message);
      case 'DISK_FULL':
      case 'BUSY':
      case 'CANNOT_OPEN':
      case 'NOT_A_DATABASE':
      case 'TOO_NEW':
        return new ApiError('UNAVAILABLE', e.message);
      default:
        return new ApiError('INTERNAL', e.message);
    }
  }
  if (isDiskFull(e)) {
    return new ApiError('UNAVAILABLE', `The disk holding ${deps.home} is full: ${(e as Error).message}. Free some space and retry.`);
  }
  if (e instanceof RunSetupError || e instanceof ImportError || e instanceof DatasetError) return new ApiError('SETUP', e.message);
  if (e instanceof ModelFolderError) return new ApiError(e.code, e.message);
  if (e instanceof EngineError) {
    if (e.code === 'DEVICE_UNAVAILABLE' || e.code === 'WORKER_EXITED') return new ApiError('UNAVAILABLE', e.message);
    if (e.code === 'NOT_FOUND') return new ApiError('NOT_FOUND', e.message);
    return new ApiError('INTERNAL', e.message);
  }
  return new ApiError('INTERNAL', e instanceof Error ? e.message : String(e));
}

export function createApiService(deps: ApiDeps): ApiService {
  return {
    async handle(channel: string, params: unknown): Promise<unknown> {
      if (typeof channel !== 'string' || !isChannel(channel)) {
        throw new ApiError('BAD_REQUEST', `unknown request channel ${JSON.stringify(channel)}`);
      }
      const parsed = requests[channel].params.safeParse(params ?? {}, PHRASED);
      if (!parsed.success) throw badRequest(parsed.error);
      const handler = HANDLERS[channel] as Handler<RequestName>;
      try {
        return await handler(parsed.data as never, deps);
      } catch (e) {
        throw toApiError(e, deps, channel);
      }
    },
    subscribe: (listener) => deps.events.subscribe(listener),
  };
}
