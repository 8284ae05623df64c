// The New-run view's prompt preview: a dataset's first training prompt (or a given one) encoded
// exactly as the run loop will encode it (rl/prompts.ts), with its token count. It runs on the
// main thread: a tokenizer is plain JavaScript and one prompt takes milliseconds; the model's
// weights are never read.
import fs from 'node:fs';
import path from 'node:path';
import type { PromptPreview } from '../../contract/index.ts';
import { type ExperimentDb, getDataset, listItems } from '../db/index.ts';
import type { TextTokenizer } from '../engine/nn/tokenizer.ts';
import type { PromptFormat } from '../engine/rl/prompts.ts';
import { ARITHMETIC_DATASET_NAME, type ArithmeticDifficulty, arithmeticItems } from '../engine/tasks/generators.ts';
import { codeDatasetLanguage, codeTaskItems } from '../engine/tasks/code-generators.ts';
import { ARITHMETIC_TRAIN, RunSetupError, resolveModel } from './start.ts';

export interface PreviewRequest {
  model: string;
  dataset?: string;
  difficulty?: number;
  seed?: number;
  prompt?: string;
  promptFormat: PromptFormat;
}

/** Tokenizers of the models previewed lately, by folder (the form asks again on every change). */
const tokenizers = new Map<string, Promise<TextTokenizer | null>>();
const KEEP = 4;

function tokenizerOf(dir: string): Promise<TextTokenizer | null> {
  let t = tokenizers.get(dir);
  if (!t) {
    t = import('../engine/nn/tokenizer.ts').then(({ TextTokenizer }) => TextTokenizer.fromFolder(dir));
    // A failed load is not kept: the person may fix the folder and ask again.
    t.catch(() => tokenizers.delete(dir));
    tokenizers.set(dir, t);
    if (tokenizers.size > KEEP) tokenizers.delete(tokenizers.keys().next().value!);
  }
  return t;
}

function contextLength(dir: string): number | null {
  try {
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { max_position_embeddings?: unknown };
    return typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings : null;
  } catch {
    return null;
  }
}

/** The prompt to show: the one given, else the dataset's first training item (the built-in generator's, for "arithmetic"). */
function pickPrompt(db: ExperimentDb, req: PreviewRequest): { prompt: string; itemIdx: number | null } {
  if (req.prompt !== undefined) return { prompt: req.prompt, itemIdx: null };
  const spec = req.dataset!;
  if (spec === ARITHMETIC_DATASET_NAME) {
    const items = arithmeticItems({ difficulty: (req.difficulty ?? 2) as ArithmeticDifficulty, seed: req.seed ?? 0, count: ARITHMETIC_TRAIN, split: 'train' });
    return { prompt: items[0].prompt, itemIdx: 0 };
  }
  const codeLanguage = codeDatasetLanguage(spec);
  if (codeLanguage) return { prompt: codeTaskItems({ language: codeLanguage, seed: req.seed ?? 0, count: 1, split: 'train' })[0].prompt, itemIdx: 0 };
  const dataset = getDataset(db, spec);
  if (!dataset) throw new RunSetupError(`dataset "${spec}" is not imported; import it first (Datasets), or pick another`);
  const first = listItems(db, dataset.id, { split: 'train', limit: 1 }).items[0];
  if (!first) throw new RunSetupError(`dataset "${dataset.name}" has no training items`);
  return { prompt: first.prompt, itemIdx: first.idx };
}

export async function previewPrompt(db: ExperimentDb, home: string, req: PreviewRequest): Promise<PromptPreview> {
  const dir = resolveModel(req.model, home);
  const { prompt, itemIdx } = pickPrompt(db, req);
  let tokenizer: TextTokenizer | null;
  try {
    tokenizer = await tokenizerOf(dir);
  } catch (e) {
    throw new RunSetupError(`cannot load the tokenizer of ${dir}: ${(e as Error).message}`);
  }
  if (!tokenizer) throw new RunSetupError(`${dir} has no tokenizer.json; a run needs the model's tokenizer to read prompts`);
  const hasChatTemplate = tokenizer.chatTemplate !== null;
  if (req.promptFormat === 'chat' && !hasChatTemplate) {
    throw new RunSetupError(`${dir}: promptFormat "chat" needs a chat template, and this model has none (neither chat_template in tokenizer_config.json nor chat_template.jinja); use promptFormat "raw"`);
  }
  const { renderPrompt } = await import('../engine/rl/prompts.ts');
  let encoded;
  try {
    encoded = renderPrompt(tokenizer, prompt, req.promptFormat);
  } catch (e) {
    throw new RunSetupError((e as Error).message);
  }
  return { prompt, itemIdx, promptFormat: req.promptFormat, text: encoded.text, tokenCount: encoded.ids.length, hasChatTemplate, contextLength: contextLength(dir) };
}
