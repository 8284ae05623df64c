// `autodidact logprobs`: per-token log-probabilities of each text of a JSONL file under a model.
import { EngineError } from '../engine/protocol.ts';
import { resolveModelPath } from '../engine/model-paths.ts';
import { UsageError, choiceFlag, command, intFlag, required } from './args.ts';
import { withEngine } from './engine.ts';
import { InputError, readJsonl, writeLine } from './jsonl.ts';

/** A line is {"text": string} (tokenized by the model) or {"ids": [int, ...]} (scored as given). */
function inputOfLine(v: unknown): string | number[] {
  const o = v && typeof v === 'object' && !Array.isArray(v) ? (v as { text?: unknown; ids?: unknown }) : null;
  if (o && typeof o.text === 'string') return o.text;
  if (o && Array.isArray(o.ids) && o.ids.every((x) => Number.isInteger(x) && x >= 0)) return o.ids as number[];
  throw new Error('expected an object with a string "text" field (e.g. {"text": "Hello"}) or an "ids" list of token ids');
}

export const logprobsCommand = command({
  name: 'logprobs',
  summary: 'Print the log-probability of every token of each input text under a model, one JSON line per input line.',
  synopsis: '--model NAME|DIR --input FILE.jsonl [options]',
  flags: {
    model: { type: 'string', value: 'NAME|DIR', description: 'a Hugging Face model folder, or the name of a built-in model' },
    input: { type: 'string', value: 'FILE', description: 'JSON Lines: {"text": "..."} or {"ids": [...]} per line; "-" reads stdin' },
    device: { type: 'string', value: 'DEVICE', default: 'cpu', description: 'cpu, webgpu, cuda, or auto (prefers a GPU)' },
    batch: { type: 'string', value: 'N', default: '8', description: 'texts per engine run' },
    'no-special-tokens': { type: 'boolean', description: "don't add the tokenizer's special tokens (e.g. BOS)" },
  },
  details: `
Each output line is {"tokens": [...], "ids": [...], "logprobs": [...]} for the input line of
the same position. For a text, "ids" are what Hugging Face's tokenizer(text).input_ids gives
(with the tokenizer's special tokens, e.g. a leading BOS, unless --no-special-tokens); an input
line may instead give {"ids": [...]} to score those ids as they are. "tokens" are the ids'
vocabulary entries, and logprobs[i] = log p(ids[i] | ids[0..i-1]) in nats. Nothing precedes the
first token, so logprobs[0] is null and all three arrays have the same length. Blank lines are
skipped; a malformed line stops the command before anything is printed, naming FILE:LINE.`,
  async run(values) {
    const modelArg = required(values, 'model');
    const input = required(values, 'input');
    const device = choiceFlag(values, 'device', ['cpu', 'webgpu', 'cuda', 'auto'] as const, 'cpu');
    const batch = intFlag(values, 'batch', 8, 1, 4096);
    let model: string;
    try {
      model = resolveModelPath(modelArg);
    } catch (e) {
      throw new UsageError(`--model: ${(e as Error).message}`);
    }
    const records = await readJsonl(input, inputOfLine);
    const name = input === '-' ? '<stdin>' : input;
    const showProgress = process.stderr.isTTY && records.length > batch;
    await withEngine(async (host, signal) => {
      for (let start = 0; start < records.length; start += batch) {
        const chunk = records.slice(start, start + batch);
        let result;
        try {
          result = await host.call(
            'logprobs',
            { model, device, inputs: chunk.map((r) => r.value), batchSize: batch, addSpecialTokens: !values['no-special-tokens'] },
            { signal },
          );
        } catch (e) {
          // Point at the input line when the engine says which text failed.
          const index = e instanceof EngineError ? e.details?.index : undefined;
          if (typeof index === 'number') throw new InputError(`${name}:${chunk[index].line}: ${(e as Error).message.replace(/^input \d+: /, '')}`);
          throw e;
        }
        for (const r of result.results) await writeLine(JSON.stringify({ tokens: r.tokens, ids: r.ids, logprobs: r.logprobs }));
        if (showProgress) process.stderr.write(`\rscored ${Math.min(start + batch, records.length)}/${records.length}`);
      }
      if (showProgress) process.stderr.write('\n');
    });
    return 0;
  },
});
