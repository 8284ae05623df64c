// `autodidact svd export RUN`: a self-verified distillation run's curated set as chat JSON Lines.
import fs from 'node:fs';
import { findRun } from '../runs/report.ts';
import { svdChatRows } from '../runs/svd-export.ts';
import { command, intFlag, positionalArgs } from './args.ts';
import { withDatabase } from './db.ts';
import { writeLine } from './jsonl.ts';

export const svdExportCommand = command({
  name: 'svd export',
  summary: "Write a self-verified distillation run's curated set as chat JSON Lines (TRL SFTTrainer's messages format).",
  synopsis: 'RUN [--round N] [--out FILE]',
  positionals: true,
  flags: {
    round: { type: 'string', value: 'N', description: 'only round N (default: every round whose cascade has finished)' },
    out: { type: 'string', value: 'FILE', description: 'write to FILE instead of standard output' },
  },
  details: `Each line is {"messages": [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": CANDIDATE}]}:
the survivors of each round's cascade that its SFT set holds (at most svdMaxPerQuestion per question,
one per answer), less those a person rejected, in round, question and candidate order.`,
  async run(values, positionals) {
    const [ref] = positionalArgs(positionals, ['RUN']);
    const round = values.round === undefined ? undefined : intFlag(values, 'round', 1, 1);
    const rows = await withDatabase((db) => svdChatRows(db, findRun(db, ref), round));
    const text = rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');
    if (values.out !== undefined) {
      fs.writeFileSync(values.out, text);
      process.stderr.write(`wrote ${values.out} (${rows.length} conversations)\n`);
    } else for (const r of rows) await writeLine(JSON.stringify(r));
    return 0;
  },
});
