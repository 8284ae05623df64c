// A distillation run's curated set as TRL's chat JSON Lines: the SFT set of each finished round,
// without the survivors a person rejected.
import { describe, expect, it } from 'vitest';
import { createRun, createSvdRound, openDatabase, recordSvdSelection, setSvdReview } from '../../../main/db/index.ts';
import { svdChatRows } from '../../../main/runs/svd-export.ts';

const cand = (question: number, idx: number, text: string) => ({ question, itemIdx: question, prompt: `Q${question}?`, idx, text, answer: text, tokenIds: [1, 2], correct: null });

describe('svdChatRows', () => {
  it('gives the SFT set less rejected survivors, as user/assistant messages, round by round', () => {
    const db = openDatabase(':memory:');
    const run = createRun(db, { name: 'svd', method: 'svd', model: 'm', dataset: 'd', config: {} });
    const [a, b, c] = createSvdRound(db, run.id, 1, ['factuality'], [cand(0, 0, '4'), cand(0, 1, '4'), cand(1, 0, '7')]);
    recordSvdSelection(db, run.id, 1, new Map([[a.id, 'sft'], [b.id, 'duplicate'], [c.id, 'sft']]), 'review');
    setSvdReview(db, c.id, 'reject', 'not 7');
    createSvdRound(db, run.id, 2, ['factuality'], [cand(0, 0, '5')]);
    expect(svdChatRows(db, run)).toEqual([{ messages: [{ role: 'user', content: 'Q0?' }, { role: 'assistant', content: '4' }] }]);
    expect(() => svdChatRows(db, run, 2)).toThrow('round 2 of run 1 is still being judged');
    expect(() => svdChatRows(db, run, 3)).toThrow('run 1 has no round 3; its rounds are 1, 2');
    // A duplicate survived the cascade too: a person may review it.
    expect(() => setSvdReview(db, b.id, 'accept')).not.toThrow();
    const other = createRun(db, { name: 'ttrl', method: 'ttrl', model: 'm', dataset: 'd', config: {} });
    expect(() => svdChatRows(db, other)).toThrow('only a run of method svd curates a set');
    db.close();
  });
});
