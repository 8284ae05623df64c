// Text <-> token ids for a Hugging Face model folder: `tokenizer.json` through
// @huggingface/tokenizers, and the chat template (Jinja) through @huggingface/jinja, rendered
// with the same variables `transformers`' apply_chat_template passes.
import fs from 'node:fs/promises';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { parseJsonText } from './json-text.ts';

// The package's .d.ts files use extensionless relative imports that NodeNext resolution cannot
// follow, so its classes type as `any`; this is the part of its API used here.
interface HfTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[] };
  decode(ids: number[], options: { skip_special_tokens: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
}

export interface ChatMessage {
  role: string;
  content: string;
}

export interface TokenizerFiles {
  /** Parsed tokenizer.json. */
  tokenizerJson: Record<string, unknown>;
  /** Parsed tokenizer_config.json ({} when the folder has none). */
  tokenizerConfig: Record<string, unknown>;
  /** The Jinja chat template, or null when the model has none. */
  chatTemplate: string | null;
  /** End-of-sequence ids named outside the tokenizer (config.json, generation_config.json). */
  extraEosTokenIds?: readonly number[];
  /** Where the files came from, for error messages. */
  source: string;
}

/** A special token in tokenizer_config.json is either its text or an AddedToken object. */
function tokenText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

export class TextTokenizer {
  private readonly tokenizer: HfTokenizer;
  private readonly template: Template | null;
  private readonly specialTokens: Record<string, string>;
  readonly vocabSize: number;
  readonly eosTokenIds: number[];
  readonly padTokenId: number | null;
  readonly bosTokenId: number | null;
  readonly chatTemplate: string | null;
  readonly source: string;

  constructor(files: TokenizerFiles) {
    this.source = files.source;
    const json = { added_tokens: [], ...files.tokenizerJson };
    const config = { ...files.tokenizerConfig };
    // tokenizer_config.json may hold several named templates; the tokenizer itself ignores them.
    delete config.chat_template;
    try {
      this.tokenizer = new Tokenizer(json, config) as HfTokenizer;
    } catch (e) {
      throw new Error(`${files.source}: cannot build the tokenizer from tokenizer.json: ${(e as Error).message}`);
    }
    const vocab = this.tokenizer.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    this.specialTokens = {};
    for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
      const text = tokenText(files.tokenizerConfig[key]);
      if (text !== null) this.specialTokens[key] = text;
    }
    const idOf = (key: string): number | null => {
      const text = this.specialTokens[key];
      return text === undefined ? null : (this.tokenizer.token_to_id(text) ?? null);
    };
    this.bosTokenId = idOf('bos_token');
    this.padTokenId = idOf('pad_token');
    const eos = new Set<number>(files.extraEosTokenIds ?? []);
    const eosId = idOf('eos_token');
    if (eosId !== null) eos.add(eosId);
    this.eosTokenIds = [...eos].sort((a, b) => a - b);

    this.chatTemplate = files.chatTemplate;
    try {
      this.template = files.chatTemplate === null ? null : new Template(files.chatTemplate);
    } catch (e) {
      throw new Error(`${files.source}: the chat template does not parse: ${(e as Error).message}`);
    }
  }

  /**
   * Load the tokenizer of a model folder; null when it has no tokenizer.json.
   * `extraEosTokenIds` adds end-of-sequence ids that config.json or generation_config.json name.
   */
  static async fromFolder(dir: string, extraEosTokenIds: readonly number[] = []): Promise<TextTokenizer | null> {
    const tokenizerJson = await readJsonIfExists(path.join(dir, 'tokenizer.json'));
    if (tokenizerJson === null) return null;
    const tokenizerConfig = (await readJsonIfExists(path.join(dir, 'tokenizer_config.json'))) ?? {};
    const chatTemplate = await readChatTemplate(dir, tokenizerConfig);
    return new TextTokenizer({ tokenizerJson, tokenizerConfig, chatTemplate, extraEosTokenIds, source: dir });
  }

  /** Token ids of `text`; `addSpecialTokens` (default true) applies the post-processor (e.g. BOS). */
  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    const { ids } = this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true });
    const bad = ids.findIndex((id) => typeof id !== 'number');
    if (bad >= 0) {
      throw new Error(`${this.source}: the tokenizer cannot encode part of the text near "${text.slice(0, 40)}" and has no unknown token`);
    }
    return ids;
  }

  /** The text of `ids`; `skipSpecialTokens` drops special tokens such as BOS and EOS. */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** The text of one token id, or null when the id is outside the vocabulary. */
  idToToken(id: number): string | null {
    return this.tokenizer.id_to_token(id) ?? null;
  }

  /**
   * Render `messages` with the model's chat template. The result already holds the template's
   * special tokens, so encode it with `addSpecialTokens: false`.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean; extra?: Record<string, unknown> } = {}): string {
    if (!this.template) {
      throw new Error(`${this.source}: the model has no chat template (neither chat_template in tokenizer_config.json nor chat_template.jinja)`);
    }
    try {
      return this.template.render({
        ...this.specialTokens,
        ...options.extra,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: options.addGenerationPrompt ?? false,
      });
    } catch (e) {
      throw new Error(`${this.source}: rendering the chat template failed: ${(e as Error).message}`);
    }
  }
}

async function readJsonIfExists(file: string): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  const json = parseJsonText(text, file);
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${file} must hold a JSON object`);
  return json as Record<string, unknown>;
}

/**
 * The chat template, where `transformers` looks for it: chat_template.jinja (newer saves), else
 * chat_template in tokenizer_config.json, either a string or a list of named templates of which
 * the one called "default" is used.
 */
async function readChatTemplate(dir: string, tokenizerConfig: Record<string, unknown>): Promise<string | null> {
  try {
    return await fs.readFile(path.join(dir, 'chat_template.jinja'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${path.join(dir, 'chat_template.jinja')}: ${(e as Error).message}`);
  }
  const t = tokenizerConfig.chat_template;
  if (t == null) return null;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t as { name?: unknown; template?: unknown }[];
    const pick = named.find((x) => x.name === 'default') ?? named[0];
    if (pick && typeof pick.template === 'string') return pick.template;
  }
  throw new Error(`${path.join(dir, 'tokenizer_config.json')}: field "chat_template" must be a string or a list of {name, template}`);
}
