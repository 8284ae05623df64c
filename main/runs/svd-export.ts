// A distillation run's curated set as chat JSON Lines, the format TRL's SFTTrainer reads
// (a `messages` list per line: the question as the user's turn, the surviving candidate as the
// assistant's), so the set can be trained on elsewhere.
import { type ExperimentDb, type RunInfo, listSvdRounds, svdTrainingSet } from '../db/index.ts';
import { RunSetupError } from './start.ts';

export interface ChatRow {
  messages: { role: 'user' | 'assistant'; content: string }[];
}

/**
 * The SFT set of each round of `run` (or of one round), in round, question and candidate order:
 * the selected survivors less those a person rejected.
 */
export function svdChatRows(db: ExperimentDb, run: Pick<RunInfo, 'id' | 'method'>, round?: number): ChatRow[] {
  const rounds = listSvdRounds(db, run.id);
  if (rounds.length === 0) throw new RunSetupError(`run ${run.id} (method ${run.method}) has no distillation rounds; only a run of method svd curates a set`);
  const chosen = round === undefined ? rounds : rounds.filter((r) => r.round === round);
  if (chosen.length === 0) throw new RunSetupError(`run ${run.id} has no round ${round}; its rounds are ${rounds.map((r) => r.round).join(', ')}`);
  const unfinished = chosen.filter((r) => r.status === 'judging');
  if (round !== undefined && unfinished.length > 0) throw new RunSetupError(`round ${round} of run ${run.id} is still being judged; its set is not known yet`);
  return chosen
    .filter((r) => r.status !== 'judging')
    .flatMap((r) => svdTrainingSet(db, run.id, r.round))
    .map((c) => ({
      messages: [
        { role: 'user', content: c.prompt },
        { role: 'assistant', content: c.text },
      ],
    }));
}
