// The tokenizer of the built-in tiny-chars model against what transformers'
// PreTrainedTokenizerFast gives for the same folder (recorded in tiny-chars.reference.json),
// and where chat templates are found.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChatMessage, TextTokenizer } from '../../../main/engine/nn/tokenizer.ts';

const TINY = path.resolve(import.meta.dirname, '../../../resources/models/tiny-chars');
const REFERENCE = path.resolve(import.meta.dirname, '../../fixtures/models/tiny-chars.reference.json');

interface TokenizerReference {
  text: string;
  text_ids: number[];
  text_decoded: string;
  text_decoded_skip_special: string;
  chat_messages: ChatMessage[];
  chat_rendered: string;
  chat_ids: number[];
  prompt_rendered: string;
}

let tok: TextTokenizer;
let ref: TokenizerReference;
let tmp: string;
beforeAll(async () => {
  tok = (await TextTokenizer.fromFolder(TINY))!;
  ref = JSON.parse(await fs.readFile(REFERENCE, 'utf8')) as TokenizerReference;
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'autodidact-tok-'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('TextTokenizer (tiny-chars)', () => {
  it('knows its special tokens', () => {
    expect(tok.vocabSize).toBe(103);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenIds).toEqual([2]);
    expect(tok.padTokenId).toBe(0);
    expect(tok.idToToken(7)).toBe('\n');
  });

  it('encodes and decodes as transformers does', () => {
    expect(tok.encode(ref.text)).toEqual(ref.text_ids);
    expect(tok.decode(ref.text_ids)).toBe(ref.text_decoded);
    expect(tok.decode(ref.text_ids, { skipSpecialTokens: true })).toBe(ref.text_decoded_skip_special);
  });

  it('round-trips every character it knows, one token per character', () => {
    const text = 'Hi there!\n  def f(x): return x ** 2  # {~`|}\n';
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(ids.length).toBe(text.length);
    expect(tok.decode(ids)).toBe(text);
    const withBos = tok.encode(text);
    expect(withBos[0]).toBe(1);
    expect(tok.decode(withBos, { skipSpecialTokens: true })).toBe(text);
    expect(tok.decode([])).toBe('');
  });

  it('renders the chat template as transformers does', () => {
    const chat = tok.applyChatTemplate(ref.chat_messages);
    expect(chat).toBe(ref.chat_rendered);
    expect(tok.encode(chat, { addSpecialTokens: false })).toEqual(ref.chat_ids);
    expect(tok.applyChatTemplate(ref.chat_messages.slice(0, 2), { addGenerationPrompt: true })).toBe(ref.prompt_rendered);
    expect(ref.prompt_rendered.endsWith('<|assistant|>\n')).toBe(true);
    expect(() => tok.applyChatTemplate([{ role: 'tool', content: 'x' }])).toThrow(/rendering the chat template failed: .*unknown chat role: tool/);
  });
});

describe('TextTokenizer.fromFolder', () => {
  async function folderWith(name: string, files: Record<string, string>): Promise<string> {
    const dir = path.join(tmp, name);
    await fs.mkdir(dir);
    await fs.copyFile(path.join(TINY, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
    for (const [f, text] of Object.entries(files)) await fs.writeFile(path.join(dir, f), text);
    return dir;
  }
  const config = (extra: Record<string, unknown>) => JSON.stringify({ bos_token: '<|bos|>', eos_token: { content: '<|eos|>', special: true }, ...extra });

  it('prefers chat_template.jinja, reads named template lists, and says when there is none', async () => {
    const jinja = await folderWith('jinja', { 'tokenizer_config.json': config({ chat_template: 'from config' }), 'chat_template.jinja': '{{ messages[0].content }}!' });
    expect((await TextTokenizer.fromFolder(jinja))!.applyChatTemplate([{ role: 'user', content: 'hi' }])).toBe('hi!');

    const named = await folderWith('named', {
      'tokenizer_config.json': config({ chat_template: [{ name: 'tool_use', template: 'tools' }, { name: 'default', template: '{{ bos_token }}{{ eos_token }}' }] }),
    });
    expect((await TextTokenizer.fromFolder(named))!.applyChatTemplate([])).toBe('<|bos|><|eos|>');

    const none = await folderWith('none', { 'tokenizer_config.json': config({}) });
    const t = (await TextTokenizer.fromFolder(none))!;
    expect(t.eosTokenIds).toEqual([2]);
    expect(() => t.applyChatTemplate([])).toThrow(`${none}: the model has no chat template`);
  });

  it('merges extra end-of-sequence ids and returns null without tokenizer.json', async () => {
    const dir = await folderWith('eos', { 'tokenizer_config.json': config({}) });
    expect((await TextTokenizer.fromFolder(dir, [6, 2]))!.eosTokenIds).toEqual([2, 6]);
    expect(await TextTokenizer.fromFolder(path.join(tmp))).toBeNull();
  });
});
